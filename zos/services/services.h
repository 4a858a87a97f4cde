/*
 * The zOS services (package zos.v1) over the zOS state.
 *
 * Each register function fills the generated handler table of one
 * service and registers it with the server; STATE is what every handler
 * reads and changes (zrpc_call_service_ctx). Handlers copy what they need
 * out of the state (short critical sections inside the state modules),
 * then build the reply in the call's arena. None of them holds a zOS lock
 * when it returns.
 */
#ifndef ZOS_SERVICES_H
#define ZOS_SERVICES_H

#include "backend.h"
#include "state.h"
#include "zrpc/server.h"

/* What the services work on; must outlive the server. */
struct zos_services {
	struct zos_state    *state;
	struct zos_backends *backends; /* Assistant's models */
	/* Backend calls of a Complete call without a deadline get this
	 * long; 0 = 30000. */
	uint32_t backend_timeout_ms;
	/* Pause before the retry of a failed primary call; 0 = 100. */
	uint32_t retry_pause_ms;
};

/* zos.v1.Skills: Get, Update (state only) and Reload (reads a file). */
zrpc_status zos_skills_service_register(
    zrpc_server *server, struct zos_state *state);

/* zos.v1.Session: Start, Get, Transition, Reset, List. */
zrpc_status zos_session_service_register(
    zrpc_server *server, struct zos_state *state);

/* zos.v1.Routing: Route, RecordOutcome, GetMetrics. */
zrpc_status zos_routing_service_register(
    zrpc_server *server, struct zos_state *state);

/* zos.v1.Cache: Lookup, Store, Stats, Clear. */
zrpc_status zos_cache_service_register(
    zrpc_server *server, struct zos_state *state);

/*
 * zos.v1.Assistant: Complete (route, cache, backend calls with retry and
 * fallback, session move). SERVICES must outlive the server.
 */
zrpc_status zos_assistant_service_register(
    zrpc_server *server, const struct zos_services *services);

/* All five. */
zrpc_status zos_services_register(
    zrpc_server *server, const struct zos_services *services);

/*
 * For handlers that changed persisted state: answers CALL with STATUS once
 * PART is durable up to SEQ (the call is suspended until the store's group
 * commit covers it), or at once when the state is in memory only. If the
 * change cannot be made durable the caller gets INTERNAL (write failed)
 * or UNAVAILABLE (shutting down) instead, with the store's message.
 * The handler returns what this returns.
 */
zrpc_status zos_services_reply_durable(zrpc_call *call,
    struct zos_state *state, enum zos_store_part part, uint64_t seq,
    zrpc_status status);

#endif /* ZOS_SERVICES_H */
