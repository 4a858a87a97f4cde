/* The stress programs' host; see stress_host.h. */
#include "stress_host.h"

#include <stdio.h>

bool
stress_host_start(struct stress_host *h, const char *dir, const char *url,
    size_t cache_capacity, const struct zos_backends_config *backend,
    unsigned workers)
{
	return stress_host_start_node(
	    h, dir, url, cache_capacity, backend, workers, NULL);
}

bool
stress_host_start_node(struct stress_host *h, const char *dir, const char *url,
    size_t cache_capacity, const struct zos_backends_config *backend,
    unsigned workers, const struct zos_cluster *cluster)
{
	struct zos_state_config config = { .cache_capacity = cache_capacity,
		.abort_on_violation                        = true,
		.data_dir                                  = dir,
		.max_sessions                              = h->max_sessions };
	char                    error[512], node[16];
	zrpc_status             st;

	if ((h->state = zos_state_create(&config, error, sizeof(error))) ==
	    NULL) {
		fprintf(stderr, "FAIL: state: %s\n", error);
		return false;
	}
	if (zos_backends_create(backend, &h->backends, error, sizeof(error)) !=
	    0) {
		fprintf(stderr, "FAIL: backends: %s\n", error);
		return false;
	}
	h->services = (struct zos_services) { .state = h->state,
		.backends                            = h->backends,
		.retry_pause_ms                      = 2,
		.cluster                             = cluster };
	if (cluster != NULL) {
		(void) zos_sessions_set_node(
		    h->state->sessions, cluster->node_id);
	}
	/* A node says which it is in Health/Check (x-zrpc-node). */
	snprintf(node, sizeof(node), "%u",
	    cluster != NULL ? (unsigned) cluster->node_id : 0u);
	st = zrpc_server_create(&h->server,
	    &(zrpc_server_config) { .workers = workers,
	        .node_id = cluster != NULL ? node : NULL });
	if (st.code == ZRPC_OK) {
		st = zos_services_register(h->server, &h->services);
	}
	if (st.code == ZRPC_OK) {
		st = zrpc_server_listen(h->server, url);
	}
	if (st.code == ZRPC_OK) {
		st = zrpc_server_start(h->server);
	}
	if (st.code == ZRPC_OK) {
		st = zrpc_client_open(&h->client, url, NULL);
	}
	if (st.code != ZRPC_OK) {
		fprintf(stderr, "FAIL: server: %s\n", st.message);
		return false;
	}
	return true;
}

unsigned
stress_host_stop(struct stress_host *h)
{
	unsigned left = 0;

	zrpc_client_close(h->client);
	h->client = NULL;
	if (h->server != NULL) {
		left = zrpc_server_stop(h->server, 1000);
	}
	zrpc_server_destroy(h->server);
	h->server = NULL;
	zos_backends_destroy(h->backends);
	h->backends = NULL;
	zos_state_destroy(h->state); /* closes the store */
	h->state = NULL;
	return left;
}
