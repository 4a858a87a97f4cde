/*
 * Built-in services of every zrpc server: zrpc.v1.Health and
 * zrpc.v1.Reflection, implemented with the code protoc-gen-zrpc generates
 * for proto/zrpc/v1 (the runtime uses its own generator).
 *
 * Both answer from the service registry alone (registry.h) through the
 * public call API, so they know nothing of the server's sockets or slots.
 */
#ifndef ZRPC_BUILTIN_H
#define ZRPC_BUILTIN_H

#include "registry.h"
#include "zrpc/service.h"
#include "zrpc/status.h"

/*
 * Registers Health and Reflection on SERVER (before start); their
 * handlers read REGISTRY, the server's own, which must outlive them.
 */
zrpc_status zrpc_builtin_register(
    zrpc_server *server, const struct zrpc_registry *registry);

#endif /* ZRPC_BUILTIN_H */
