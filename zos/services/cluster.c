/*
 * What one node knows of the others (cluster.h).
 */
#include "cluster.h"

#include "sessions.h"

const char *
zos_cluster_peer_url(const struct zos_cluster *cluster, uint32_t node)
{
	if (cluster == NULL) {
		return NULL;
	}
	for (size_t i = 0; i < cluster->n_peers; i++) {
		if (cluster->peers[i].node == node) {
			return cluster->peers[i].url;
		}
	}
	return NULL;
}

zrpc_status
zos_cluster_check_session(const struct zos_cluster *cluster, const char *id)
{
	uint32_t    node;
	const char *url;

	if (cluster == NULL || !zos_session_id_node(id, &node) ||
	    node == cluster->node_id) {
		return zrpc_status_ok();
	}
	url = zos_cluster_peer_url(cluster, node);
	if (url != NULL) {
		return zrpc_status_make(ZRPC_FAILED_PRECONDITION,
		    "session %s lives on node %u at %.200s", id, node, url);
	}
	return zrpc_status_make(
	    ZRPC_FAILED_PRECONDITION, "session %s lives on node %u", id, node);
}
