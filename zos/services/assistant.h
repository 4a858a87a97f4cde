/*
 * zos.v1.Assistant: Complete (route, cache, backend calls with retry and
 * fallback, session move); assistant.c describes the steps.
 *
 * The one service that works on more than the state, so it takes the
 * whole struct zos_services (context.h) as its context.
 */
#ifndef ZOS_ASSISTANT_H
#define ZOS_ASSISTANT_H

#include "context.h"
#include "zrpc/server.h"

/*
 * Registers zos.v1.Assistant with SERVER. SERVICES (not copied) must
 * outlive the server. Returns what zrpc_server_register returns.
 */
zrpc_status zos_assistant_service_register(
    zrpc_server *server, const struct zos_services *services);

#endif /* ZOS_ASSISTANT_H */
