/*
 * Built-in services of every zrpc server: zrpc.v1.Health and
 * zrpc.v1.Reflection, implemented with the code protoc-gen-zrpc generates
 * for proto/zrpc/v1 (the runtime uses its own generator).
 *
 * The second half of this header is the narrow view of the server that
 * the built-ins need, implemented in server.c.
 */
#ifndef ZRPC_BUILTIN_H
#define ZRPC_BUILTIN_H

#include <stdbool.h>
#include <stddef.h>

#include "zrpc/server.h"

/* Registers Health and Reflection on SERVER (before start). */
zrpc_status builtin_register(zrpc_server *server);

/* Health values, equal to zrpc.v1.HealthCheckResponse.ServingStatus. */
enum server_health {
	SERVER_HEALTH_SERVING     = 1,
	SERVER_HEALTH_NOT_SERVING = 2,
	SERVER_HEALTH_UNKNOWN     = 3,
};

/* Health of SERVICE ("" = the server): NOT_SERVING while draining. */
int server_health(const zrpc_server *server, const char *service);

/* Registered services, in registration order. */
size_t server_service_count(const zrpc_server *server);
const struct zrpc_service_desc *server_service_desc(
    const zrpc_server *server, size_t index);

/* Whether method M of service S was registered as blocking. */
bool server_method_blocking(const zrpc_server *server, size_t s, size_t m);

#endif /* ZRPC_BUILTIN_H */
