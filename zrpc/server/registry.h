/*
 * The service registry of a zrpc server: services by full name, methods by
 * wire path, each method's binding (handler, blocking or not) and its
 * statistics.
 *
 * Two phases. Before the server starts, services are added one at a time
 * (zrpc_registry_add, from zrpc_server_register; single-threaded, like all
 * server configuration). zrpc_registry_seal then builds the dispatch table,
 * an open-addressing hash of method paths, and from then on the registry's
 * shape is frozen: any thread may look methods up, and list services,
 * without a lock, because nothing it reads changes any more. What does
 * change after the seal is atomic: the calls, latencies and handler runs
 * of each method, and each service's serving flag.
 *
 * The registry knows nothing of sockets, calls or threads, so the built-in
 * services (builtin.c) answer Health and Reflection from it alone.
 */
#ifndef ZRPC_REGISTRY_H
#define ZRPC_REGISTRY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "zrpc/histogram.h"
#include "zrpc/server.h"
#include "zrpc/service.h"
#include "zrpc/status.h"

/* A method's counters; all atomics, recorded without a lock. */
struct zrpc_registry_stats {
	atomic_uint_fast64_t   calls_by_code[ZRPC_CODE_COUNT];
	atomic_uint_fast64_t   handler_runs;
	struct zrpc_histogram *latency_ns; /* owned; its sum is the total */
	struct zrpc_histogram *queue_ns;   /* owned: before the handler */
};

struct zrpc_registry_service;

/* One registered method. Fixed once added, except STATS. */
struct zrpc_registry_method {
	const struct zrpc_method           *desc;
	struct zrpc_method_binding          binding;
	const struct zrpc_registry_service *service;
	struct zrpc_registry_stats          stats;
};

/* One registered service. Fixed once added, except SERVING. */
struct zrpc_registry_service {
	const struct zrpc_service_desc *desc;
	void                           *ctx; /* the application's */
	atomic_bool                     serving;
	struct zrpc_registry_method    *methods; /* desc->n_methods */
};

struct zrpc_registry {
	struct zrpc_registry_service **services; /* in registration order */
	size_t                         n_services;

	/* Dispatch: open addressing on the method path, built by seal. */
	struct zrpc_registry_method **table;
	size_t                        table_mask;

	/* Calls whose path matched no method. */
	struct zrpc_registry_stats unmatched;

	/* Set when the server drains: every service reports NOT_SERVING. */
	atomic_bool stopping;
	/* The whole server's status (service ""), set with "". */
	atomic_bool serving;
	/* zrpc_server_config.node_id (owned copy), sent by Health/Check as
	 * x-zrpc-node; NULL = none. Set before the server starts. */
	char *node_id;
};

/* Health values, equal to zrpc.v1.HealthCheckResponse.ServingStatus. */
enum zrpc_registry_health {
	ZRPC_REGISTRY_SERVING         = 1,
	ZRPC_REGISTRY_NOT_SERVING     = 2,
	ZRPC_REGISTRY_SERVICE_UNKNOWN = 3,
};

/*
 * Sets up an empty registry. Returns 0 or ENOMEM (the registry is then
 * finished already; zrpc_registry_finish on it is still safe).
 */
int zrpc_registry_init(struct zrpc_registry *registry);

/* Frees every service and table. Safe on a zeroed registry. */
void zrpc_registry_finish(struct zrpc_registry *registry);

/*
 * Adds DESC with its BINDINGS (DESC->n_methods entries, copied) and CTX.
 * DESC must outlive the registry. Only before zrpc_registry_seal. Fails
 * with ALREADY_EXISTS when the service name or a method path is taken,
 * INTERNAL when out of memory (nothing is added then).
 */
zrpc_status zrpc_registry_add(struct zrpc_registry *registry,
    const struct zrpc_service_desc                 *desc,
    const struct zrpc_method_binding *bindings, void *ctx);

/*
 * Builds the dispatch table; the registry's shape is frozen from here on.
 * Returns INTERNAL when out of memory.
 */
zrpc_status zrpc_registry_seal(struct zrpc_registry *registry);

/*
 * The method at wire name PATH, or NULL. Lock-free after the seal (a hash
 * probe); before it, a linear search.
 */
struct zrpc_registry_method *zrpc_registry_find_method(
    const struct zrpc_registry *registry, const char *path);

/*
 * Counts a call of METHOD (NULL: a call that matched no method) that ended
 * with CODE after LATENCY_NS. Lock-free; any thread.
 */
void zrpc_registry_record(struct zrpc_registry *registry,
    struct zrpc_registry_method *method, zrpc_code code, uint64_t latency_ns);

/*
 * Records that a call of METHOD waited QUEUE_NS before its handler
 * started (zrpc_call_queue_ns). Lock-free; any thread.
 */
void zrpc_registry_record_queue(
    struct zrpc_registry_method *method, uint64_t queue_ns);

/*
 * Sets the serving flag of the service named SERVICE ("" = every service).
 * An unknown name is ignored. Any thread.
 */
void zrpc_registry_set_serving(
    struct zrpc_registry *registry, const char *service, bool serving);

/* From now on every service, and the server, report NOT_SERVING. */
void zrpc_registry_stop(struct zrpc_registry *registry);

/*
 * Health of SERVICE ("" = the whole server), a zrpc_registry_health:
 * SERVICE_UNKNOWN for a name that is not registered. Any thread.
 */
enum zrpc_registry_health zrpc_registry_health(
    const struct zrpc_registry *registry, const char *service);

/* Registered services, in registration order. */
size_t zrpc_registry_service_count(const struct zrpc_registry *registry);
const struct zrpc_service_desc *zrpc_registry_service_desc(
    const struct zrpc_registry *registry, size_t index);

/* Whether method M of service S was registered as blocking. */
bool zrpc_registry_method_blocking(
    const struct zrpc_registry *registry, size_t s, size_t m);

/*
 * Copies the statistics of the method at PATH ("" = the calls that matched
 * no method) into *OUT. Returns false when no such method is registered.
 */
bool zrpc_registry_method_stats(const struct zrpc_registry *registry,
    const char *path, struct zrpc_method_stats *out);

/* Visits every method's statistics, then the unmatched calls' (path ""). */
void zrpc_registry_foreach_method_stats(const struct zrpc_registry *registry,
    void (*visit)(void *arg, const struct zrpc_method_stats *stats),
    void *arg);

#endif /* ZRPC_REGISTRY_H */
