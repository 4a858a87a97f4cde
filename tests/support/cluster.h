/*
 * Several zosd nodes as child processes of a test (issue 14): node I + 1
 * listens on an ipc socket in the cluster's own temporary directory, so
 * that a node restarted comes back at the same URL and every node's peers
 * are known before any starts; node 1 is the skill vector's home. Every
 * zosd is stopped by the test (cluster_stop; after a failed assertion the
 * suite's .fini = proc_kill_left). Criterion tests only.
 */
#ifndef ZOS_TEST_CLUSTER_H
#define ZOS_TEST_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>

#include "proc.h"
#include "zrpc/client.h"

#define CLUSTER_NODES_MAX 3
#define CLUSTER_EXTRA_MAX 8

struct cluster {
	char        root[64];
	char        url[CLUSTER_NODES_MAX][128];  /* node i + 1 */
	char        data[CLUSTER_NODES_MAX][128]; /* its data directory */
	struct proc proc[CLUSTER_NODES_MAX];
	bool        running[CLUSTER_NODES_MAX];
	size_t      n;
	/* Flags every node gets (NULL-ended), e.g. --cache-url URL. */
	const char *extra[CLUSTER_EXTRA_MAX + 1];
};

/* N nodes (1..CLUSTER_NODES_MAX) in a new temporary directory; none
 * started. EXTRA (NULL-ended, may be NULL): flags for every node. */
void cluster_init(struct cluster *c, size_t n, const char *const *extra);

/*
 * Starts node I (0-based; --node-id I + 1 unless NODE_FLAG is false) with
 * every other node as a peer, node 1 as the others' skills home, the
 * cluster's flags and EXTRA (NULL-ended, may be NULL). Waits until it
 * listens.
 */
void cluster_start_node(
    struct cluster *c, size_t i, bool node_flag, const char *const *extra);

/* SIGTERM, and asserts a clean exit. */
void cluster_stop_node(struct cluster *c, size_t i);

/* SIGKILL: the node dies at once, mid-call. */
void cluster_kill9_node(struct cluster *c, size_t i);

/* cluster_init, then every node started with its node id. */
void cluster_start(struct cluster *c, size_t n, const char *const *extra);

/* Stops the nodes still running and removes the directory. */
void cluster_stop(struct cluster *c);

/* A client of URL alone, connect timeout 1 s. */
zrpc_client *cluster_client_of(const char *url);

/* Starts a session on CLIENT's server; its id into ID. */
void cluster_start_session(
    zrpc_client *client, const char *problem, char id[64]);

#endif /* ZOS_TEST_CLUSTER_H */
