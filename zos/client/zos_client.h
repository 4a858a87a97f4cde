/*
 * The zos client: calls to several zosd nodes, each call that names a
 * session sent to the node that holds it.
 *
 * Sessions are sharded by id (zos/state/sessions.h): an id "<N>-<32 hex>"
 * lives on node N only, and any other node answers FAILED_PRECONDITION.
 * This client wraps a zrpc client of several servers (zrpc/client.h:
 * zrpc_client_open_list) and learns which node each server URL is by
 * zrpc.v1.Health/Check, whose reply names it (metadata x-zrpc-node, the
 * zrpc server option node_id). A call that names a session (Session/Get,
 * Transition, Reset; Assistant/Complete with a session id) is pinned to a
 * server of its node with zrpc_call_opts.server_url; every other call, and
 * a call naming an id of an old shape (no node), goes to any healthy
 * server, as the zrpc client chooses.
 *
 * Node ids are learned at creation (one bounded Health/Check per server)
 * and again, for the servers not known yet, when a call names a node
 * that no known server is: a node that was down at first is found once it
 * is up. A node that is down makes the calls naming its sessions
 * UNAVAILABLE (the pinned call finds no connection, or no server of that
 * node answers), and nothing else: other calls go to the other servers.
 *
 * Thread safety: a zos client is safe to share between threads, like the
 * zrpc client under it. The learned node ids are guarded by a mutex that
 * is never held across a call (probes run outside it).
 */
#ifndef ZOS_CLIENT_H
#define ZOS_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "zos/v1/zos.zrpc.h"
#include "zrpc/client.h"

struct zos_client;

/* Longest a Health/Check that learns a node id waits (ms). */
#define ZOS_CLIENT_PROBE_MS 1000u

/*
 * Wraps CLIENT (not owned: it must outlive the zos client; one server or
 * several) and learns the node id of each of its servers (bounded: a
 * server that does not answer within ZOS_CLIENT_PROBE_MS stays unknown
 * for now). On OK *OUT owns the wrapper (zos_client_close). Returns
 * INVALID_ARGUMENT for NULL arguments, RESOURCE_EXHAUSTED without memory.
 */
zrpc_status zos_client_create(struct zos_client **out, zrpc_client *client);

/*
 * Opens a zrpc client of the N_URLS servers URLS with OPTS
 * (zrpc_client_open_list) and wraps it, owned: zos_client_close closes
 * it. Errors as zrpc_client_open_list's and zos_client_create's.
 */
zrpc_status zos_client_open(struct zos_client **out, const char *const *urls,
    size_t n_urls, const zrpc_client_opts *opts);

/* Closes C (and its zrpc client, when C opened it). NULL is a no-op. */
void zos_client_close(struct zos_client *c);

/* The zrpc client under C, for calls of other services. */
zrpc_client *zos_client_zrpc(const struct zos_client *c);

/* The node id server I of C was learned to be; 0 when not known (yet). */
uint32_t zos_client_server_node(struct zos_client *c, size_t i);

/*
 * Where a call naming SESSION_ID goes: *OUT becomes a copy of GIVEN (NULL
 * = defaults) with server_url set to a server of the session's node, or
 * left as given for an id that names no node (NULL or "" included).
 * Servers whose node is not known yet are asked (Health/Check, within
 * ZOS_CLIENT_PROBE_MS and GIVEN's timeout) when no known one is of that
 * node. Returns OK, or UNAVAILABLE "node N of session S is not reachable"
 * when none of C's servers answered as that node.
 * Locking: takes C's mutex briefly; never across a call.
 */
zrpc_status zos_client_route(struct zos_client *c, const char *session_id,
    const zrpc_call_opts *given, zrpc_call_opts *out);

/*
 * zrpc_client_call of METHOD with REQUEST, routed for SESSION_ID as
 * zos_client_route says (NULL or "": any server). Reply and errors as
 * zrpc_client_call's, plus zos_client_route's UNAVAILABLE.
 */
zrpc_status zos_client_call(struct zos_client *c, const char *session_id,
    const struct zrpc_method *method, const ProtobufCMessage *request,
    ProtobufCMessage **reply, const zrpc_call_opts *opts);

/* The zos.v1 calls that name a session, routed (zos_client_call). */
zrpc_status zos_client_session_get(struct zos_client *c,
    const Zos__V1__GetSessionRequest *request, Zos__V1__ProofSession **reply,
    const zrpc_call_opts *opts);
zrpc_status zos_client_session_transition(struct zos_client *c,
    const Zos__V1__TransitionRequest *request, Zos__V1__ProofSession **reply,
    const zrpc_call_opts *opts);
zrpc_status zos_client_session_reset(struct zos_client *c,
    const Zos__V1__ResetSessionRequest *request, Zos__V1__ProofSession **reply,
    const zrpc_call_opts *opts);
zrpc_status zos_client_assistant_complete(struct zos_client *c,
    const Zos__V1__CompleteRequest *request, Zos__V1__CompleteResponse **reply,
    const zrpc_call_opts *opts);

/* Session/Start, on any server: the session lives where it started. */
zrpc_status zos_client_session_start(struct zos_client *c,
    const Zos__V1__StartSessionRequest *request, Zos__V1__ProofSession **reply,
    const zrpc_call_opts *opts);

#endif /* ZOS_CLIENT_H */
