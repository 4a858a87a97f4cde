/*
 * zrpc descriptors at run time: protobuf types read from serialized
 * google.protobuf.FileDescriptorProtos (reflection, a descriptor set, the
 * descriptors protoc-gen-zrpc embeds) and turned into ordinary protobuf-c
 * descriptors, so that protobuf_c_message_pack, unpack and free_unpacked
 * work on messages of types that were not compiled in.
 *
 * A pool holds files. Adding a file checks its structure (INVALID_ARGUMENT
 * for bytes that are not a FileDescriptorProto, or one protobuf-c cannot
 * represent, such as a group) and records its symbols; the descriptors
 * themselves are built when a lookup first needs them, so imports may be
 * added in any order. A lookup of a symbol whose file (or any file it
 * imports, directly or not) is missing an import answers
 * FAILED_PRECONDITION naming the import.
 *
 * The structures built follow protobuf-c 1.4's generated code exactly:
 * the same labels, flags, default values, quantifier offsets and struct
 * layout (the C struct protoc-c would have declared), so a message
 * unpacked with a built descriptor holds the same bytes as one unpacked
 * with the compiled descriptor of the same type. Their message_init is
 * NULL (protobuf-c has no way to give a generic init its descriptor):
 * protobuf_c_message_unpack handles that itself, and zrpc_message_init
 * initialises a message of any type, compiled or built.
 *
 * Locking: a pool is not thread-safe; use one from one thread at a time.
 * What a lookup returned is immutable and may be used from any thread for
 * as long as the pool lives.
 */
#ifndef ZRPC_DESCRIPTOR_H
#define ZRPC_DESCRIPTOR_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "zrpc/service.h"
#include "zrpc/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct zrpc_descriptor_pool zrpc_descriptor_pool;

/* A new, empty pool in *OUT. RESOURCE_EXHAUSTED when memory runs out. */
zrpc_status zrpc_descriptor_pool_new(zrpc_descriptor_pool **out);

/*
 * Frees POOL and every descriptor it built (NULL is a no-op). Messages of
 * its types must have been freed before.
 */
void zrpc_descriptor_pool_free(zrpc_descriptor_pool *pool);

/*
 * Adds one serialized google.protobuf.FileDescriptorProto (DATA, LEN
 * bytes; copied). A file already in the pool (same name) is skipped, and
 * OK. INVALID_ARGUMENT for malformed bytes, a file without a name, or a
 * symbol that another file of the pool already defines; the pool is then
 * unchanged. Imports may come in any order.
 */
zrpc_status zrpc_descriptor_pool_add_file(
    zrpc_descriptor_pool *pool, const uint8_t *data, size_t len);

/*
 * Adds every file of a serialized google.protobuf.FileDescriptorSet (what
 * protoc --descriptor_set_out --include_imports writes, zosctl --protoset
 * reads). Stops at the first file that cannot be added, with its status;
 * the files before it stay.
 */
zrpc_status zrpc_descriptor_pool_add_set(
    zrpc_descriptor_pool *pool, const uint8_t *data, size_t len);

/*
 * Adds the embedded file of a compiled-in SERVICE and the files it
 * imports (struct zrpc_file_descriptor; the bytes are not copied: they
 * are the program's const data). FAILED_PRECONDITION when SERVICE has no
 * embedded file (a description written by hand).
 */
zrpc_status zrpc_descriptor_pool_add_service(
    zrpc_descriptor_pool *pool, const struct zrpc_service_desc *service);

/* As add_service, for one embedded FILE and its imports. */
zrpc_status zrpc_descriptor_pool_add_embedded(
    zrpc_descriptor_pool *pool, const struct zrpc_file_descriptor *file);

/*
 * Lookups by full name without a leading dot ("zos.v1.Skill"); the
 * results live as long as the pool. NOT_FOUND names the symbol; a file
 * whose import is missing gives FAILED_PRECONDITION naming the import, a
 * field whose type is nowhere in the pool gives FAILED_PRECONDITION
 * naming the type.
 */
zrpc_status zrpc_descriptor_pool_find_message(zrpc_descriptor_pool *pool,
    const char *name, const ProtobufCMessageDescriptor **out);

/* The enum type NAME ("zos.v1.ProofState"); as find_message. */
zrpc_status zrpc_descriptor_pool_find_enum(zrpc_descriptor_pool *pool,
    const char *name, const ProtobufCEnumDescriptor **out);

/*
 * The service NAME ("zos.v1.Skills") as a protobuf-c service descriptor
 * (its methods' input and output types built); as find_message.
 */
zrpc_status zrpc_descriptor_pool_find_service(zrpc_descriptor_pool *pool,
    const char *name, const ProtobufCServiceDescriptor **out);

/*
 * METHOD as "/pkg.Svc/M", "pkg.Svc/M" or "pkg.Svc.M": a zrpc_method
 * (short name, wire path "/pkg.Svc/M", input, output, and the role from
 * the method's option (zrpc.v1.role)), usable with zrpc_client_call.
 */
zrpc_status zrpc_descriptor_pool_find_method(zrpc_descriptor_pool *pool,
    const char *name, const struct zrpc_method **out);

/*
 * The full names of the services in the pool, sorted, in *NAMES (N of
 * them). The array and its strings belong to the pool and stay valid
 * until the next add or the pool's free.
 */
zrpc_status zrpc_descriptor_pool_services(
    zrpc_descriptor_pool *pool, const char *const **names, size_t *n);

/*
 * SYMBOL (a service, a method in any form find_method takes, a message,
 * an enum, or a file name) in .proto syntax, as `grpcurl describe` prints
 * it; a method's role option is shown. *TEXT is malloc'd and the caller
 * frees it. NOT_FOUND names the symbol.
 */
zrpc_status zrpc_descriptor_pool_describe(
    zrpc_descriptor_pool *pool, const char *symbol, char **text);

/*
 * The serialized FileDescriptorProtos of the file that defines SYMBOL (as
 * describe takes it) and of every file it imports, directly or not: the
 * defining file first, each file once. *FILES (an array of *N entries) is
 * malloc'd, and the caller frees the array only: the bytes belong to the
 * pool. NOT_FOUND names the symbol; FAILED_PRECONDITION names a missing
 * import.
 */
zrpc_status zrpc_descriptor_pool_file_closure(zrpc_descriptor_pool *pool,
    const char *symbol, ProtobufCBinaryData **files, size_t *n);

/*
 * Asks the server, by reflection (zrpc.v1.Reflection/FileContainingSymbol),
 * for the files defining SYMBOL (a service, method "pkg.Svc/M" or
 * "/pkg.Svc/M", message, enum, or a file name) with their imports, and
 * adds them to POOL. UNIMPLEMENTED when the server serves no descriptors
 * (an older server); otherwise the call's or the server's status
 * (NOT_FOUND naming the symbol), or add_file's.
 */
zrpc_status zrpc_reflection_fetch(zrpc_client *client, const char *symbol,
    zrpc_descriptor_pool *pool, const zrpc_call_opts *opts);

/*
 * Fetches, as zrpc_reflection_fetch, the files of every service the
 * server lists (Reflection/ListServices). Services the server has no
 * descriptors for are skipped; UNIMPLEMENTED when it serves none at all.
 */
zrpc_status zrpc_reflection_fetch_all(zrpc_client *client,
    zrpc_descriptor_pool *pool, const zrpc_call_opts *opts);

/*
 * Initialises MESSAGE (DESC->sizeof_message bytes, allocated by the
 * caller) as an empty message of type DESC with its default values, for a
 * compiled descriptor (its message_init) or one a pool built (which has
 * none). Use it instead of protobuf_c_message_init, which needs
 * message_init.
 */
void zrpc_message_init(const ProtobufCMessageDescriptor *desc, void *message);

#ifdef __cplusplus
}
#endif

#endif /* ZRPC_DESCRIPTOR_H */
