/*
 * An in-process zrpc host for the fuzz targets: the server's request path
 * (envelope decode, method lookup, input decode, handler, reply encode)
 * without sockets, over a zOS state in memory with every zOS service and
 * the built-in Health and Reflection registered, as zosd registers them.
 *
 * The server (zrpc/server/server.c) serves a request in
 * server_slot_received: admit it, check its size, zrpc_call_decode, then
 * zrpc_call_run here or on a worker (zrpc_call_work), ending in the host's
 * finish (zrpc_call_encode, zrpc_registry_record, zrpc_call_reset). This
 * host does the same steps with the same call.c and registry.c functions,
 * on the fuzzer's thread: a call queued for a worker runs right after the
 * handler returns, and a suspended call (none is, with the state in
 * memory) is waited for. What it leaves out is what needs a socket: the
 * slots, the bound on calls in flight and the drain.
 *
 * The services reach the registry through zrpc_server_register, which the
 * fuzz executables wrap (ld --wrap, see meson.build) to add to this
 * host's registry instead of a real server's.
 */
#ifndef ZOS_FUZZ_DISPATCH_HOST_H
#define ZOS_FUZZ_DISPATCH_HOST_H

#include <stddef.h>
#include <stdint.h>

#include "zrpc/service.h"

struct fuzz_host; /* opaque */

/* Sets up the host (the state, the services, the registry) or aborts. */
struct fuzz_host *fuzz_host_create(void);

/*
 * Serves the request envelope BODY (LEN bytes) as the server would and
 * checks that the reply is one well-formed zrpc.v1.Response; aborts when
 * it is not or when the call is not answered within 10 s.
 */
void fuzz_host_serve(struct fuzz_host *h, const uint8_t *body, size_t len);

/* The registered methods of the services whose full name starts with
 * PREFIX ("zos.v1."), in registration order; *N receives their number. */
const struct zrpc_method *const *fuzz_host_methods(
    struct fuzz_host *h, const char *prefix, size_t *n);

#endif /* ZOS_FUZZ_DISPATCH_HOST_H */
