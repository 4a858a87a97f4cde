/*
 * The method resolver of the command-line tools (zosctl, zos-load): turns
 * a method's name into a struct zrpc_method, whose input and output
 * descriptors pbjson and protobuf-c then encode and decode with, for any
 * zrpc service, not only those compiled in.
 *
 * Where the descriptors come from, in this order:
 *  1. files, when given: --protoset FILE (a FileDescriptorSet, as
 *     `protoc --include_imports --descriptor_set_out` writes it) or
 *     --proto FILE with -I DIR... (compiled by running protoc, which must
 *     be in PATH, into such a set); the server is not asked;
 *  2. else the server, by reflection (zrpc_reflection_fetch);
 *  3. else, when the server has no descriptor reflection (UNIMPLEMENTED)
 *     or does not know the name (NOT_FOUND), the tables compiled into the
 *     tools (methods.h): zos.v1 and zrpc.v1's built-in services.
 * A server that cannot be reached is an error (its status), not a reason
 * to fall back.
 *
 * The descriptors live in a zrpc_descriptor_pool that the resolver owns:
 * every struct zrpc_method and descriptor it hands out lives until
 * zos_resolver_free. A resolver is used from one thread.
 */
#ifndef ZOS_TOOLS_RESOLVE_H
#define ZOS_TOOLS_RESOLVE_H

#include <stdbool.h>
#include <stddef.h>

#include "zrpc/client.h"
#include "zrpc/descriptor.h"
#include "zrpc/service.h"
#include "zrpc/status.h"

/* The files to take the descriptors from; all NULL/0 = none. */
struct zos_resolve_opts {
	const char *protoset; /* --protoset FILE */
	const char *proto;    /* --proto FILE (with IMPORT_PATHS) */
	/* -I DIR..., for --proto; none = the directory of FILE */
	const char *const *import_paths;
	size_t             n_import_paths;
};

/* Where a resolved method's descriptors came from. */
enum zos_resolve_source {
	ZOS_RESOLVE_NONE = 0,   /* nothing resolved yet */
	ZOS_RESOLVE_FILES,      /* --protoset or --proto */
	ZOS_RESOLVE_REFLECTION, /* the server */
	ZOS_RESOLVE_BUILTIN,    /* the tables compiled into the tools */
};

typedef struct zos_resolver zos_resolver;

/*
 * Creates a resolver. With --protoset or --proto in OPTS (NULL: none),
 * the files are read now (protoc runs now, its own messages going to
 * stderr), so that a bad file is reported before anything is sent.
 * Returns OK with *OUT set (free it with zos_resolver_free); else
 * *OUT is NULL and the status says why: INVALID_ARGUMENT for both
 * --proto and --protoset, a file that cannot be read or that is not a
 * descriptor set, or protoc's failure on the .proto (protoc's own errors
 * are on stderr above it); FAILED_PRECONDITION when protoc is not in PATH,
 * or a file's import is missing; RESOURCE_EXHAUSTED when out of memory.
 */
zrpc_status zos_resolver_new(
    zos_resolver **out, const struct zos_resolve_opts *opts);

/* Frees R and every descriptor and method it handed out. NULL is safe. */
void zos_resolver_free(zos_resolver *r);

/* True when R takes its descriptors from files (--proto, --protoset). */
bool zos_resolver_has_files(const zos_resolver *r);

/*
 * Resolves method NAME ("/pkg.Svc/M", "pkg.Svc/M" or "pkg.Svc.M") into
 * *OUT (valid until zos_resolver_free), in the order above. CLIENT (NULL:
 * no reflection) and CALL_OPTS (the timeout, token and metadata of the
 * reflection call; NULL = none) are used only when R has no files.
 * *SOURCE, when SOURCE is not NULL, says where the method came from.
 * Errors: NOT_FOUND naming the method (and why each source did not have
 * it); the reflection call's own status when the server could not answer
 * (UNAVAILABLE, DEADLINE_EXCEEDED, ...); FAILED_PRECONDITION for a file
 * whose import is missing.
 */
zrpc_status zos_resolve_method(zos_resolver *r, zrpc_client *client,
    const zrpc_call_opts *call_opts, const char *name,
    const struct zrpc_method **out, enum zos_resolve_source *source);

/*
 * Makes sure SYMBOL (a service, "pkg.Svc/M", a message, an enum or a file
 * name) is in R's pool, from the same sources in the same order, and
 * returns the pool in *POOL (owned by R), for
 * zrpc_descriptor_pool_describe and zrpc_descriptor_pool_services.
 * SYMBOL NULL only returns the pool (with the files, or empty). Errors as
 * zos_resolve_method's.
 */
zrpc_status zos_resolve_symbol(zos_resolver *r, zrpc_client *client,
    const zrpc_call_opts *call_opts, const char *symbol,
    zrpc_descriptor_pool **pool, enum zos_resolve_source *source);

/* "--protoset/--proto", "reflection" or "compiled-in", for messages. */
const char *zos_resolve_source_name(enum zos_resolve_source source);

#endif /* ZOS_TOOLS_RESOLVE_H */
