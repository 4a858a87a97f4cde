/*
 * zrpc service descriptions: what protoc-gen-zrpc emits for every service,
 * read by the server (dispatch, reflection) and the client (typed stubs).
 *
 * A description is const data: names, the wire path of each method and the
 * protobuf-c descriptors of its input and output. The server-side binding
 * of a method (which function runs it, and whether it may block) is a
 * separate table that the service implementation fills in; the generated
 * `<pkg>_<service>_register()` converts the typed table into the generic
 * one declared here.
 */
#ifndef ZRPC_SERVICE_H
#define ZRPC_SERVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "zrpc/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct zrpc_call   zrpc_call;   /* a call being served (opaque) */
typedef struct zrpc_server zrpc_server; /* a server (opaque) */
typedef struct zrpc_client zrpc_client; /* a client connection (opaque) */

/*
 * The role a method requires of its caller, from the method's
 * `option (zrpc.v1.role)` in its .proto (zrpc/v1/options.proto). Ordered:
 * a caller whose role is at least the method's may call it, so ADMIN may
 * call everything. NONE on a method means open to every caller, token or
 * not; as a caller's role it means no known token.
 */
enum zrpc_role {
	ZRPC_ROLE_NONE  = 0,
	ZRPC_ROLE_READ  = 1,
	ZRPC_ROLE_WRITE = 2,
	ZRPC_ROLE_ADMIN = 3,
};

/* One unary method of a service. */
struct zrpc_method {
	const char *name; /* short name, "Get" */
	const char *path; /* wire name, "/zos.v1.Skills/Get" */
	const ProtobufCMessageDescriptor *input;
	const ProtobufCMessageDescriptor *output;
	enum zrpc_role role; /* required of callers; NONE = open */
};

/*
 * The descriptor of one .proto file, embedded by protoc-gen-zrpc: DATA is
 * the file's serialized google.protobuf.FileDescriptorProto (without
 * source_code_info), DEPS the embedded descriptors of the files it
 * imports, in the order of its `import` lines. Const data; the graph
 * reaches every transitive import, so a reader (zrpc/descriptor.h, the
 * server's reflection) needs nothing else to rebuild the file's types.
 */
struct zrpc_file_descriptor {
	const char    *name; /* "zos/v1/zos.proto" */
	const uint8_t *data;
	size_t         len;
	size_t         n_deps;
	const struct zrpc_file_descriptor *const *deps;
};

/* One service: its full name and its methods, in .proto order. */
struct zrpc_service_desc {
	const char               *name; /* full name, "zos.v1.Skills" */
	size_t                    n_methods;
	const struct zrpc_method *methods;
	/*
	 * The file that defines the service (protoc-gen-zrpc fills it in);
	 * NULL for a description written by hand, whose types reflection
	 * then cannot describe.
	 */
	const struct zrpc_file_descriptor *file;
};

/*
 * Generic handler call, emitted per method by protoc-gen-zrpc: casts FN back
 * to the method's typed handler and calls it with typed messages. REQUEST
 * is the unpacked input; REPLY is an initialised output message that the
 * handler fills (memory for its strings, repeated fields and sub-messages
 * comes from zrpc_call_alloc and is freed with the call).
 */
typedef zrpc_status (*zrpc_invoke_fn)(void (*fn)(void), zrpc_call *call,
    const ProtobufCMessage *request, ProtobufCMessage *reply);

/* How one method is served. */
struct zrpc_method_binding {
	zrpc_invoke_fn invoke; /* the typed trampoline */
	void (*fn)(void);      /* the handler; NULL answers UNIMPLEMENTED */
	bool blocking;         /* may block: runs on the worker pool */
};

/* Per-call metadata entry (key and value are NUL-terminated strings). */
struct zrpc_metadata_entry {
	const char *key;
	const char *value;
};

/* Metadata a server sent with its reply (zrpc/client.h). */
struct zrpc_metadata;

/*
 * Per-call options for clients. A NULL options pointer means all defaults:
 * no timeout, no metadata, no token, reply metadata not wanted. The
 * options are read when the call starts; only REPLY_METADATA is used later.
 */
typedef struct zrpc_call_opts {
	uint32_t    timeout_ms; /* relative deadline; 0 = none */
	const char *token;      /* sent as "authorization: Bearer <token>" */
	const struct zrpc_metadata_entry *metadata;
	size_t                            n_metadata;
	/*
	 * Where to put the metadata of the server's reply; NULL = not
	 * wanted (and not copied). When set, the call stores NULL there as
	 * it starts, then, once a reply arrives from the server (with any
	 * status code, OK or not), a new struct zrpc_metadata that the
	 * caller owns and frees with zrpc_metadata_free. It stays NULL when
	 * no reply came (deadline, lost connection, malformed reply). An
	 * asynchronous call stores it before its callback runs, so the
	 * pointed-to location must stay valid until then (a field of the
	 * callback's ARG, say).
	 */
	struct zrpc_metadata **reply_metadata;
	/*
	 * NULL (default): the call goes to any healthy server of the client
	 * (zrpc_client_open_list). Else one of the client's URLs, compared
	 * as given (zrpc_client_server_url): the call goes to that server
	 * only, never elsewhere, healthy or not; another string fails the
	 * call with INVALID_ARGUMENT.
	 */
	const char *server_url;
} zrpc_call_opts;

/*
 * Generic reply call for asynchronous stubs, emitted per method: casts CB
 * back to the method's typed callback. The callback owns REPLY (NULL unless
 * STATUS is OK) and frees it with the type's free_unpacked.
 */
typedef void (*zrpc_reply_invoke_fn)(void (*cb)(void), void *arg,
    const zrpc_status *status, ProtobufCMessage *reply);

#ifdef __cplusplus
}
#endif

#endif /* ZRPC_SERVICE_H */
