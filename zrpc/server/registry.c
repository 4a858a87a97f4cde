/*
 * The service registry; see registry.h for its two phases.
 *
 * Services live in a growing array of pointers, each with its methods in
 * one array, so that a method's address (which calls and the dispatch table
 * keep) never moves once added. The dispatch table is a power of two at
 * least twice the method count, probed linearly from an FNV-1a hash of the
 * path: a handful of compares per call and no allocation.
 *
 * Latency and queue histograms: 5 bits of precision keep a bucket within
 * 3.2 % of its values, in (45 - 5) * 32 buckets of 8 bytes (10 KiB) each,
 * two per method.
 */
#include "registry.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define REGISTRY_LATENCY_PRECISION 5

static int
registry_stats_init(struct zrpc_registry_stats *stats)
{
	for (int c = 0; c < ZRPC_CODE_COUNT; c++) {
		atomic_init(&stats->calls_by_code[c], 0);
	}
	atomic_init(&stats->handler_runs, 0);
	if (zrpc_histogram_create(
	        &stats->latency_ns, REGISTRY_LATENCY_PRECISION) != 0) {
		return ENOMEM;
	}
	if (zrpc_histogram_create(
	        &stats->queue_ns, REGISTRY_LATENCY_PRECISION) != 0) {
		zrpc_histogram_destroy(stats->latency_ns);
		stats->latency_ns = NULL;
		return ENOMEM;
	}
	return 0;
}

/* Frees what registry_stats_init made. */
static void
registry_stats_finish(struct zrpc_registry_stats *stats)
{
	zrpc_histogram_destroy(stats->latency_ns);
	zrpc_histogram_destroy(stats->queue_ns);
	stats->latency_ns = NULL;
	stats->queue_ns   = NULL;
}

/* FNV-1a: short keys, no allocation, good enough spread for a few
 * hundred method names. */
static uint64_t
registry_hash(const char *s)
{
	uint64_t h = 1469598103934665603u;

	while (*s != '\0') {
		h ^= (unsigned char) *s++;
		h *= 1099511628211u;
	}
	return h;
}

static struct zrpc_registry_service *
registry_find_service(const struct zrpc_registry *registry, const char *name)
{
	for (size_t i = 0; i < registry->n_services; i++) {
		if (strcmp(registry->services[i]->desc->name, name) == 0) {
			return registry->services[i];
		}
	}
	return NULL;
}

/* Frees SVC and the histograms of its first N_METHODS methods. */
static void
registry_service_free(struct zrpc_registry_service *svc, size_t n_methods)
{
	for (size_t m = 0; m < n_methods; m++) {
		registry_stats_finish(&svc->methods[m].stats);
	}
	free(svc->methods);
	free(svc);
}

int
zrpc_registry_init(struct zrpc_registry *registry)
{
	memset(registry, 0, sizeof(*registry));
	atomic_init(&registry->stopping, false);
	atomic_init(&registry->serving, true);
	return registry_stats_init(&registry->unmatched);
}

void
zrpc_registry_finish(struct zrpc_registry *registry)
{
	for (size_t i = 0; i < registry->n_services; i++) {
		registry_service_free(registry->services[i],
		    registry->services[i]->desc->n_methods);
	}
	free(registry->services);
	free(registry->table);
	free(registry->node_id);
	registry_stats_finish(&registry->unmatched);
	memset(registry, 0, sizeof(*registry));
}

zrpc_status
zrpc_registry_add(struct zrpc_registry *registry,
    const struct zrpc_service_desc     *desc,
    const struct zrpc_method_binding *bindings, void *ctx)
{
	struct zrpc_registry_service **grown;
	struct zrpc_registry_service  *svc;

	if (registry_find_service(registry, desc->name) != NULL) {
		return zrpc_status_make(ZRPC_ALREADY_EXISTS,
		    "service %s is already registered", desc->name);
	}
	for (size_t m = 0; m < desc->n_methods; m++) {
		if (zrpc_registry_find_method(
		        registry, desc->methods[m].path) != NULL) {
			return zrpc_status_make(ZRPC_ALREADY_EXISTS,
			    "method %s is already registered",
			    desc->methods[m].path);
		}
	}

	if ((svc = calloc(1, sizeof(*svc))) == NULL) {
		return zrpc_status_make(ZRPC_INTERNAL, "out of memory");
	}
	svc->methods = calloc(
	    desc->n_methods > 0 ? desc->n_methods : 1, sizeof(*svc->methods));
	if (svc->methods == NULL) {
		goto fail_service;
	}
	for (size_t m = 0; m < desc->n_methods; m++) {
		if (registry_stats_init(&svc->methods[m].stats) != 0) {
			registry_service_free(svc, m + 1);
			return zrpc_status_make(
			    ZRPC_INTERNAL, "out of memory");
		}
	}
	grown = realloc(registry->services,
	    (registry->n_services + 1) * sizeof(*registry->services));
	if (grown == NULL) {
		registry_service_free(svc, desc->n_methods);
		return zrpc_status_make(ZRPC_INTERNAL, "out of memory");
	}
	registry->services = grown;

	svc->desc = desc;
	svc->ctx  = ctx;
	atomic_init(&svc->serving, true);
	for (size_t m = 0; m < desc->n_methods; m++) {
		svc->methods[m].desc    = &desc->methods[m];
		svc->methods[m].binding = bindings[m];
		svc->methods[m].service = svc;
	}
	registry->services[registry->n_services++] = svc;
	return zrpc_status_ok();

fail_service:
	free(svc);
	return zrpc_status_make(ZRPC_INTERNAL, "out of memory");
}

zrpc_status
zrpc_registry_seal(struct zrpc_registry *registry)
{
	struct zrpc_registry_method **table;
	size_t                        n = 0, size = 8;

	for (size_t s = 0; s < registry->n_services; s++) {
		n += registry->services[s]->desc->n_methods;
	}
	while (size < 2 * n) {
		size *= 2;
	}
	if ((table = calloc(size, sizeof(*table))) == NULL) {
		return zrpc_status_make(ZRPC_INTERNAL, "out of memory");
	}
	for (size_t s = 0; s < registry->n_services; s++) {
		struct zrpc_registry_service *svc = registry->services[s];
		for (size_t m = 0; m < svc->desc->n_methods; m++) {
			struct zrpc_registry_method *method = &svc->methods[m];
			size_t i = (size_t) registry_hash(method->desc->path) &
			    (size - 1);
			while (table[i] != NULL) {
				i = (i + 1) & (size - 1);
			}
			table[i] = method;
		}
	}
	free(registry->table);
	registry->table      = table;
	registry->table_mask = size - 1;
	return zrpc_status_ok();
}

struct zrpc_registry_method *
zrpc_registry_find_method(
    const struct zrpc_registry *registry, const char *path)
{
	size_t i;

	if (registry->table == NULL) {
		/* Not sealed yet: search. */
		for (size_t s = 0; s < registry->n_services; s++) {
			struct zrpc_registry_service *svc =
			    registry->services[s];
			for (size_t m = 0; m < svc->desc->n_methods; m++) {
				if (strcmp(svc->methods[m].desc->path, path) ==
				    0) {
					return &svc->methods[m];
				}
			}
		}
		return NULL;
	}
	i = (size_t) registry_hash(path) & registry->table_mask;
	while (registry->table[i] != NULL) {
		if (strcmp(registry->table[i]->desc->path, path) == 0) {
			return registry->table[i];
		}
		i = (i + 1) & registry->table_mask;
	}
	return NULL;
}

void
zrpc_registry_record(struct zrpc_registry *registry,
    struct zrpc_registry_method *method, zrpc_code code, uint64_t latency_ns)
{
	struct zrpc_registry_stats *stats =
	    method != NULL ? &method->stats : &registry->unmatched;
	unsigned c =
	    (unsigned) code < ZRPC_CODE_COUNT ? (unsigned) code : ZRPC_UNKNOWN;

	atomic_fetch_add_explicit(
	    &stats->calls_by_code[c], 1, memory_order_relaxed);
	zrpc_histogram_record(stats->latency_ns, latency_ns);
}

void
zrpc_registry_record_queue(
    struct zrpc_registry_method *method, uint64_t queue_ns)
{
	zrpc_histogram_record(method->stats.queue_ns, queue_ns);
}

void
zrpc_registry_set_serving(
    struct zrpc_registry *registry, const char *service, bool serving)
{
	struct zrpc_registry_service *svc;

	if (service[0] == '\0') {
		atomic_store(&registry->serving, serving);
		for (size_t i = 0; i < registry->n_services; i++) {
			atomic_store(&registry->services[i]->serving, serving);
		}
	} else if ((svc = registry_find_service(registry, service)) != NULL) {
		atomic_store(&svc->serving, serving);
	}
}

void
zrpc_registry_stop(struct zrpc_registry *registry)
{
	atomic_store(&registry->stopping, true);
}

enum zrpc_registry_health
zrpc_registry_health(const struct zrpc_registry *registry, const char *service)
{
	const struct zrpc_registry_service *svc = NULL;

	if (service[0] != '\0' &&
	    (svc = registry_find_service(registry, service)) == NULL) {
		return ZRPC_REGISTRY_SERVICE_UNKNOWN;
	}
	if (atomic_load(&registry->stopping)) {
		return ZRPC_REGISTRY_NOT_SERVING;
	}
	if (svc == NULL ? atomic_load(&registry->serving)
	                : atomic_load(&svc->serving)) {
		return ZRPC_REGISTRY_SERVING;
	}
	return ZRPC_REGISTRY_NOT_SERVING;
}

size_t
zrpc_registry_service_count(const struct zrpc_registry *registry)
{
	return registry->n_services;
}

const struct zrpc_service_desc *
zrpc_registry_service_desc(const struct zrpc_registry *registry, size_t index)
{
	return registry->services[index]->desc;
}

bool
zrpc_registry_method_blocking(
    const struct zrpc_registry *registry, size_t s, size_t m)
{
	return registry->services[s]->methods[m].binding.blocking;
}

static void
registry_stats_copy(const char *path, const struct zrpc_registry_stats *from,
    struct zrpc_method_stats *to)
{
	to->path = path;
	for (int c = 0; c < ZRPC_CODE_COUNT; c++) {
		to->calls_by_code[c] = atomic_load_explicit(
		    &from->calls_by_code[c], memory_order_relaxed);
	}
	to->latency_ns_sum = zrpc_histogram_sum(from->latency_ns);
	to->handler_runs =
	    atomic_load_explicit(&from->handler_runs, memory_order_relaxed);
	to->latency_ns = from->latency_ns;
	to->queue_ns   = from->queue_ns;
}

bool
zrpc_registry_method_stats(const struct zrpc_registry *registry,
    const char *path, struct zrpc_method_stats *out)
{
	const struct zrpc_registry_method *method;

	if (path[0] == '\0') {
		registry_stats_copy("", &registry->unmatched, out);
		return true;
	}
	if ((method = zrpc_registry_find_method(registry, path)) == NULL) {
		return false;
	}
	registry_stats_copy(method->desc->path, &method->stats, out);
	return true;
}

void
zrpc_registry_foreach_method_stats(const struct zrpc_registry *registry,
    void (*visit)(void *arg, const struct zrpc_method_stats *stats), void *arg)
{
	struct zrpc_method_stats stats;

	for (size_t s = 0; s < registry->n_services; s++) {
		const struct zrpc_registry_service *svc =
		    registry->services[s];
		for (size_t m = 0; m < svc->desc->n_methods; m++) {
			registry_stats_copy(svc->methods[m].desc->path,
			    &svc->methods[m].stats, &stats);
			visit(arg, &stats);
		}
	}
	registry_stats_copy("", &registry->unmatched, &stats);
	visit(arg, &stats);
}
