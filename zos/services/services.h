/*
 * The zOS services (package zos.v1) over the zOS state.
 *
 * Each register function fills the generated handler table of one
 * service and registers it with the server; STATE is what every handler
 * reads and changes (zrpc_call_service_ctx). Handlers copy what they need
 * out of the state (short critical sections inside the state modules),
 * then build the reply in the call's arena. None of them holds a zOS lock
 * when it returns. Those that change skills or sessions answer through
 * durable.h, once the change is on disk.
 */
#ifndef ZOS_SERVICES_H
#define ZOS_SERVICES_H

#include "context.h"
#include "state.h"
#include "zrpc/server.h"

/* zos.v1.Skills: Get, Update (state only) and Reload (reads a file);
 * all three forwarded to the skills home when SERVICES->cluster names
 * one (cluster.h). SERVICES must outlive the server. */
zrpc_status zos_skills_service_register(
    zrpc_server *server, const struct zos_services *services);

/* zos.v1.Session: Start, Get, Transition, Reset, List; a session of
 * another node is FAILED_PRECONDITION (cluster.h). SERVICES must outlive
 * the server. */
zrpc_status zos_session_service_register(
    zrpc_server *server, const struct zos_services *services);

/* zos.v1.Routing: Route, RecordOutcome, GetMetrics. */
zrpc_status zos_routing_service_register(
    zrpc_server *server, struct zos_state *state);

/* zos.v1.Cache: Lookup, Store, Stats, Clear. */
zrpc_status zos_cache_service_register(
    zrpc_server *server, struct zos_state *state);

/*
 * All five: the four above and zos.v1.Assistant (assistant.h). SERVICES
 * must outlive the server.
 */
zrpc_status zos_services_register(
    zrpc_server *server, const struct zos_services *services);

#endif /* ZOS_SERVICES_H */
