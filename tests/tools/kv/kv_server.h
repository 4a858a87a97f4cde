/*
 * The tests' kv.v1.Store server (kv/v1/kv.proto): a zrpc service that the
 * tools (zosctl, zos-load) know nothing of at build time, for the tests
 * that show they work with any zrpc service.
 *
 * Store keeps up to KV_SERVER_MAX_ENTRIES entries (RESOURCE_EXHAUSTED
 * beyond). What tests lean on:
 *  - every reply's `echoed` field holds the request's x-kv-echo metadata
 *    (so -H is seen to reach the server), and every reply carries reply
 *    metadata x-kv-echoed with the same value; a request's traceparent
 *    comes back as reply metadata x-kv-traceparent;
 *  - request metadata x-kv-fail: CODE_NAME (e.g. NOT_FOUND) makes the
 *    call fail with that code and the message "failed as asked";
 *  - Get of the key "bad-utf8" answers an entry whose value is not UTF-8
 *    (protobuf-c does not check), which JSON cannot carry;
 *  - Get of a key never Put is NOT_FOUND, Put of an empty key
 *    INVALID_ARGUMENT.
 * With reflection off, every zrpc.v1.Reflection method answers
 * UNIMPLEMENTED, as a server without reflection would.
 */
#ifndef ZOS_TESTS_KV_SERVER_H
#define ZOS_TESTS_KV_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include "zrpc/status.h"

#define KV_SERVER_MAX_ENTRIES 64

struct kv_server;

struct kv_server_opts {
	bool no_reflection; /* zrpc.v1.Reflection answers UNIMPLEMENTED */
};

/*
 * Starts a kv.v1.Store server on URL (any nng URL; tcp port 0 works: read
 * the port back with kv_server_url). OPTS may be NULL. On success *OUT owns
 * the server (stop it with kv_server_stop); otherwise the status says why.
 */
zrpc_status kv_server_start(struct kv_server **out, const char *url,
    const struct kv_server_opts *opts);

/* The URL it listens on (an ephemeral tcp port resolved). */
const char *kv_server_url(const struct kv_server *kv);

/* Calls served so far (every method, failed ones too). */
unsigned kv_server_calls(const struct kv_server *kv);

/* Stops and frees KV (calls in flight get 2 s). NULL is a no-op. */
void kv_server_stop(struct kv_server *kv);

#endif /* ZOS_TESTS_KV_SERVER_H */
