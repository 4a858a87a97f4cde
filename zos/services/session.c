/*
 * zos.v1.Session: the proof state machine over the sessions table. Every
 * handler only touches the state (copies of sessions come back from the
 * module), so all run on nng's completion threads. Start, Transition and
 * Reset answer once their change is durable (zos_durable_reply):
 * the call is suspended meanwhile, so no thread waits for the disk.
 * Get, Transition and Reset first refuse a session of another node
 * (FAILED_PRECONDITION naming it, cluster.h): sessions are never copied.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "durable.h"
#include "services.h"
#include "zos/v1/zos.zrpc.h"

static zrpc_status
session_service_status(
    enum zos_session_code code, const char *what, const char *id)
{
	switch (code) {
	case ZOS_SESSION_OK:
		return zrpc_status_ok();
	case ZOS_SESSION_NOT_FOUND:
		return zrpc_status_make(
		    ZRPC_NOT_FOUND, "no session '%.64s'", id);
	case ZOS_SESSION_ABORTED:
		return zrpc_status_make(ZRPC_ABORTED,
		    "session '%.64s' changed since expected_version", id);
	case ZOS_SESSION_FAILED_PRECONDITION:
		return zrpc_status_make(ZRPC_FAILED_PRECONDITION,
		    "%s is not allowed from the session's state", what);
	case ZOS_SESSION_RESOURCE_EXHAUSTED:
		return zrpc_status_make(
		    ZRPC_RESOURCE_EXHAUSTED, "too many sessions");
	case ZOS_SESSION_INVALID_ARGUMENT:
		return zrpc_status_make(
		    ZRPC_INVALID_ARGUMENT, "%s: invalid argument", what);
	default:
		return zrpc_status_make(ZRPC_INTERNAL, "%s failed", what);
	}
}

/*
 * Who owns the sessions CALL starts: a 64-bit hash (FNV-1a) of its
 * `authorization` metadata value, so that the credential itself is never
 * stored; callers without one share the anonymous key. The one place that
 * says what an owner is: once the auth layer names principals, this hashes
 * the principal instead.
 */
static uint64_t
session_service_owner(const zrpc_call *call)
{
	const char *value = zrpc_call_metadata(call, "authorization");
	uint64_t    h     = 14695981039346656037u;

	if (value == NULL || value[0] == '\0') {
		return ZOS_SESSION_OWNER_ANONYMOUS;
	}
	for (; *value != '\0'; value++) {
		h ^= (unsigned char) *value;
		h *= 1099511628211u;
	}
	return h != ZOS_SESSION_OWNER_ANONYMOUS ? h : 1;
}

/* Copies S into REPLY (strings into the call's arena). */
static zrpc_status
session_service_fill(
    zrpc_call *call, const struct zos_session *s, Zos__V1__ProofSession *reply)
{
	reply->id              = zrpc_call_strdup(call, s->id);
	reply->problem_id      = zrpc_call_strdup(call, s->problem_id);
	reply->state           = (Zos__V1__ProofState) s->state;
	reply->version         = s->version;
	reply->created_unix_ms = s->created_unix_ms;
	reply->updated_unix_ms = s->updated_unix_ms;
	if (reply->id == NULL || reply->problem_id == NULL) {
		return zrpc_status_make(
		    ZRPC_RESOURCE_EXHAUSTED, "out of memory");
	}
	return zrpc_status_ok();
}

/* The reply for an accepted change, sent once the change is durable. */
static zrpc_status
session_service_durable(zrpc_call *call, struct zos_state *state,
    const struct zos_session *s, Zos__V1__ProofSession *reply)
{
	/* The number of this change, taken with it under the lock: a number
	 * read later could cover a change made after an undo. */
	uint64_t seq = s->change_seq;

	return zos_durable_reply(call, state, ZOS_STORE_SESSIONS, seq,
	    session_service_fill(call, s, reply));
}

static zrpc_status
session_service_start(zrpc_call        *call,
    const Zos__V1__StartSessionRequest *request, Zos__V1__ProofSession *reply)
{
	const struct zos_services *services = zrpc_call_service_ctx(call);
	struct zos_state          *state    = services->state;
	struct zos_session         s;
	enum zos_session_code      code;

	code = zos_sessions_start_owned(state->sessions, request->problem_id,
	    session_service_owner(call), &s);
	if (code == ZOS_SESSION_INVALID_ARGUMENT) {
		return zrpc_status_make(ZRPC_INVALID_ARGUMENT,
		    "problem_id must be 1 to %d bytes",
		    ZOS_SESSION_PROBLEM_ID_MAX);
	}
	if (code == ZOS_SESSION_OWNER_LIMIT) {
		return zrpc_status_make(ZRPC_RESOURCE_EXHAUSTED,
		    "this caller holds %zu sessions, the most "
		    "--max-sessions-per-token allows; finished sessions "
		    "expire after --session-ttl",
		    zos_sessions_max_per_owner(state->sessions));
	}
	if (code == ZOS_SESSION_RESOURCE_EXHAUSTED) {
		return zrpc_status_make(ZRPC_RESOURCE_EXHAUSTED,
		    "the session table is full (--max-sessions %zu)",
		    zos_sessions_max(state->sessions));
	}
	if (code != ZOS_SESSION_OK) {
		return session_service_status(code, "Start", "");
	}
	return session_service_durable(call, state, &s, reply);
}

static zrpc_status
session_service_get(zrpc_call *call, const Zos__V1__GetSessionRequest *request,
    Zos__V1__ProofSession *reply)
{
	const struct zos_services *services = zrpc_call_service_ctx(call);
	struct zos_state          *state    = services->state;
	struct zos_session         s;
	enum zos_session_code      code;
	zrpc_status                status;

	status = zos_cluster_check_session(services->cluster, request->id);
	if (!zrpc_status_is_ok(&status)) {
		return status;
	}
	code = zos_sessions_get(state->sessions, request->id, &s);
	if (code != ZOS_SESSION_OK) {
		return session_service_status(code, "Get", request->id);
	}
	return session_service_fill(call, &s, reply);
}

static zrpc_status
session_service_transition(zrpc_call *call,
    const Zos__V1__TransitionRequest *request, Zos__V1__ProofSession *reply)
{
	const struct zos_services *services = zrpc_call_service_ctx(call);
	struct zos_state          *state    = services->state;
	struct zos_session         s;
	enum zos_session_code      code;
	zrpc_status                status;
	char                       what[96];

	if ((unsigned) request->to_state >= ZOS_PROOF_STATE_COUNT ||
	    request->to_state ==
	        ZOS__V1__PROOF_STATE__PROOF_STATE_UNSPECIFIED) {
		return zrpc_status_make(ZRPC_INVALID_ARGUMENT,
		    "to_state %d is not a proof state",
		    (int) request->to_state);
	}
	status = zos_cluster_check_session(services->cluster, request->id);
	if (!zrpc_status_is_ok(&status)) {
		return status;
	}
	code = zos_sessions_transition(state->sessions, request->id,
	    (enum zos_proof_state) request->to_state,
	    request->expected_version, &s);
	snprintf(what, sizeof(what), "moving to %s",
	    zos_proof_state_name((enum zos_proof_state) request->to_state));
	if (code != ZOS_SESSION_OK) {
		return session_service_status(code, what, request->id);
	}
	return session_service_durable(call, state, &s, reply);
}

static zrpc_status
session_service_reset(zrpc_call        *call,
    const Zos__V1__ResetSessionRequest *request, Zos__V1__ProofSession *reply)
{
	const struct zos_services *services = zrpc_call_service_ctx(call);
	struct zos_state          *state    = services->state;
	struct zos_session         s;
	enum zos_session_code      code;
	zrpc_status                status;

	status = zos_cluster_check_session(services->cluster, request->id);
	if (!zrpc_status_is_ok(&status)) {
		return status;
	}
	code = zos_sessions_reset(state->sessions, request->id, &s);
	if (code != ZOS_SESSION_OK) {
		return session_service_status(code, "Reset", request->id);
	}
	return session_service_durable(call, state, &s, reply);
}

static zrpc_status
session_service_list(zrpc_call         *call,
    const Zos__V1__ListSessionsRequest *request,
    Zos__V1__ListSessionsResponse      *reply)
{
	const struct zos_services *services = zrpc_call_service_ctx(call);
	struct zos_state          *state    = services->state;
	struct zos_session_page    page     = { 0 };
	enum zos_session_code      code;
	zrpc_status                status = zrpc_status_ok();

	code = zos_sessions_list(
	    state->sessions, request->page_size, request->page_token, &page);
	if (code == ZOS_SESSION_INVALID_ARGUMENT) {
		return zrpc_status_make(ZRPC_INVALID_ARGUMENT,
		    "page_token '%.64s' is not one this server gave out",
		    request->page_token);
	}
	if (code != ZOS_SESSION_OK) {
		return session_service_status(code, "List", "");
	}
	reply->sessions =
	    zrpc_call_alloc(call, page.count * sizeof(*reply->sessions) + 1);
	Zos__V1__ProofSession *items =
	    zrpc_call_alloc(call, page.count * sizeof(*items) + 1);
	reply->next_page_token = zrpc_call_strdup(call, page.next_page_token);
	if (reply->sessions == NULL || items == NULL ||
	    reply->next_page_token == NULL) {
		status =
		    zrpc_status_make(ZRPC_RESOURCE_EXHAUSTED, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < page.count && zrpc_status_is_ok(&status); i++) {
		zos__v1__proof_session__init(&items[i]);
		status =
		    session_service_fill(call, &page.sessions[i], &items[i]);
		reply->sessions[i] = &items[i];
	}
	reply->n_sessions = page.count;
	reply->total      = page.total;
out:
	zos_session_page_finish(&page);
	return status;
}

zrpc_status
zos_session_service_register(
    zrpc_server *server, const struct zos_services *services)
{
	const struct zos_v1_session_handlers handlers = {
		.start      = session_service_start,
		.get        = session_service_get,
		.transition = session_service_transition,
		.reset      = session_service_reset,
		.list       = session_service_list,
	};

	return zos_v1_session_register(server, &handlers, (void *) services);
}
