/*
 * What the services' stress programs run against: zosd's state over a
 * data directory, the services on a real zrpc server, and one client of
 * it. Plain C (the programs run under ThreadSanitizer, without
 * Criterion).
 */
#ifndef ZOS_STRESS_HOST_H
#define ZOS_STRESS_HOST_H

#include <stdbool.h>
#include <stddef.h>

#include "services.h"
#include "state.h"
#include "zrpc/client.h"
#include "zrpc/server.h"

struct stress_host {
	struct zos_state    *state;
	struct zos_backends *backends;
	struct zos_services  services;
	zrpc_server         *server;
	zrpc_client         *client;
	/* Set before the start: the state's session limit (0 = its
	 * default, 10000). */
	size_t max_sessions;
};

/*
 * Starts the state on DIR (a cache of CACHE_CAPACITY, lock rules
 * enforced), the backends of BACKEND, the services on a server of WORKERS
 * listening on URL, and a client of it. False (and a line on stderr) when
 * anything failed; stress_host_stop then frees what was made.
 */
bool stress_host_start(struct stress_host *h, const char *dir, const char *url,
    size_t cache_capacity, const struct zos_backends_config *backend,
    unsigned workers);

/* stress_host_start as a node of CLUSTER (NULL: alone; it must outlive
 * the host), its sessions made with CLUSTER's node id. */
bool stress_host_start_node(struct stress_host *h, const char *dir,
    const char *url, size_t cache_capacity,
    const struct zos_backends_config *backend, unsigned workers,
    const struct zos_cluster *cluster);

/* Stops (1 s of grace) and frees everything; returns the calls still
 * unfinished at the stop (0 when all were). */
unsigned stress_host_stop(struct stress_host *h);

#endif /* ZOS_STRESS_HOST_H */
