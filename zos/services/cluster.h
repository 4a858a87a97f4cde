/*
 * Several zosd nodes: what one node knows of the others.
 *
 * Sessions are sharded by id: a session's id names the node that made it
 * ("<N>-<32 hex>", sessions.h), and only that node holds it. A call that
 * names another node's session is answered FAILED_PRECONDITION "session
 * S lives on node M" (with " at URL" when --peer told this node where M
 * serves), never served from a copy; the zos client (zos/client) routes
 * such calls to the right node in the first place. Ids of the old shapes
 * name no node and belong to whichever node has them.
 *
 * The skill vector is the one piece of state all nodes share, so it has
 * one home: the node named by --skills-home (none: this node). The other
 * nodes forward Skills/Get, Update and Reload to it through a zrpc client,
 * on a worker thread, with no zOS lock held, and with the caller's
 * deadline, authorization and request id; an unreachable home is
 * UNAVAILABLE. (Complete reads no skill, so it forwards nothing.)
 *
 * Everything here is set up in main before the server starts and only
 * read afterwards: no lock.
 */
#ifndef ZOS_SERVICES_CLUSTER_H
#define ZOS_SERVICES_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include "zrpc/client.h"
#include "zrpc/status.h"

/* Where another node serves (--peer N=URL). */
struct zos_peer {
	uint32_t    node;
	const char *url; /* not owned */
};

/* What the services know of the cluster; must outlive the server. */
struct zos_cluster {
	uint32_t               node_id; /* this node, 1..65535 */
	const struct zos_peer *peers;   /* not owned */
	size_t                 n_peers;
	/* The skill vector's home: a client of it, NULL when this node is
	 * the home (not owned). */
	zrpc_client *skills_home;
	const char  *skills_home_url; /* for messages */
	/* Forwarded calls without a deadline get this long; 0 = 30000. */
	uint32_t forward_timeout_ms;
};

/*
 * Whether a call naming session ID may be served here: OK when CLUSTER is
 * NULL, when ID names no node (an old shape, or not an id at all: the
 * table answers NOT_FOUND), or names this node; otherwise
 * FAILED_PRECONDITION "session ID lives on node M" and, when a peer M is
 * known, " at URL".
 * Locking: none.
 */
zrpc_status zos_cluster_check_session(
    const struct zos_cluster *cluster, const char *id);

/* The URL of peer NODE, or NULL when CLUSTER knows none. */
const char *zos_cluster_peer_url(
    const struct zos_cluster *cluster, uint32_t node);

#endif /* ZOS_SERVICES_CLUSTER_H */
