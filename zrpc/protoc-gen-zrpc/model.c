/*
 * model: resolves one .proto file into the names protoc-gen-zrpc writes.
 *
 * A builder walks the file's services and methods in .proto order. For
 * each method it finds the input and output messages among all the files
 * protoc sent (imports included), because protoc-c names a message after
 * the file that declares it (its package and its `c_package` option), not
 * after the file that uses it. Every name the generated code will define
 * is recorded with what owns it; once the file is walked, the names are
 * sorted and any name defined twice fails the build with both owners
 * named, so that protoc reports a clear error instead of the C compiler
 * reporting a confusing one (or, worse, the linker picking one silently).
 *
 * Errors for the user (EINVAL) carry a message that starts with the
 * .proto file name, as protoc's own messages do.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "names.h"
#include "strbuf.h"

/* Field numbers used in SourceCodeInfo paths (descriptor.proto). */
#define MODEL_FILE_SERVICE_FIELD 6   /* FileDescriptorProto.service */
#define MODEL_SERVICE_METHOD_FIELD 2 /* ServiceDescriptorProto.method */

/*
 * protobuf-c's file option: `extend google.protobuf.FileOptions {
 * ProtobufCFileOptions pb_c_file = 1019; }`, whose `c_package` is field 6
 * (protobuf-c/protobuf-c.proto).
 */
#define MODEL_PB_C_FILE_EXTENSION 1019
#define MODEL_PB_C_C_PACKAGE_FIELD 6

/*
 * zrpc's method option: `extend google.protobuf.MethodOptions { string
 * role = 50711; }` (zrpc/v1/options.proto).
 */
#define MODEL_ZRPC_ROLE_EXTENSION 50711

/*
 * Prefixes of the zrpc runtime's own functions and types: a generated name
 * starting with one of these could collide with the runtime.
 */
static const char *const model_runtime_prefixes[] = {
	"zrpc_call_",
	"zrpc_client_",
	"zrpc_file_",
	"zrpc_invoke_",
	"zrpc_metadata_",
	"zrpc_method_",
	"zrpc_reply_",
	"zrpc_server_",
	"zrpc_service_",
	"zrpc_status_",
};

/* A name the generated code defines, and what defines it. */
struct model_symbol {
	const char *scope; /* "" (file scope), "struct" (tags), or a service */
	const char *name;  /* borrowed from the model */
	const char *kind;  /* "service" or "method" */
	const char *owner; /* full name of the service or method */
	const char *role;  /* "blocking stub", ... */
	size_t      order; /* definition order, for stable reports */
};

/* State of one model_build() call. */
struct model_builder {
	const Google__Protobuf__Compiler__CodeGeneratorRequest *request;
	const Google__Protobuf__FileDescriptorProto            *file;
	struct model_file                                      *model;
	const char          *package;        /* "zos.v1", or "" */
	char                *package_prefix; /* "zos_v1", or "" */
	struct model_symbol *symbols;
	size_t               n_symbols;
	size_t               symbols_cap;
	char                *error; /* message for EINVAL */
};

/*
 * Records a user-facing error: "<file>: <message>". Returns EINVAL, or
 * ENOMEM when the message cannot be formatted.
 */
static int model_fail(struct model_builder *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
model_fail(struct model_builder *b, const char *fmt, ...)
{
	struct strbuf msg;
	va_list       ap;

	strbuf_init(&msg);
	strbuf_printf(&msg,
	    "%s: ", b->file->name != NULL ? b->file->name : "(unnamed file)");
	va_start(ap, fmt);
	strbuf_vprintf(&msg, fmt, ap);
	va_end(ap);
	free(b->error);
	if ((b->error = strbuf_steal(&msg)) == NULL) {
		return ENOMEM;
	}
	return EINVAL;
}

/*
 * Sets *OUT to a newly formatted string. Returns 0, or ENOMEM (leaving
 * *OUT NULL).
 */
static int model_format(char **out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
model_format(char **out, const char *fmt, ...)
{
	struct strbuf buf;
	va_list       ap;

	strbuf_init(&buf);
	va_start(ap, fmt);
	strbuf_vprintf(&buf, fmt, ap);
	va_end(ap);
	*out = strbuf_steal(&buf);
	return *out != NULL ? 0 : ENOMEM;
}

/* Takes ownership of VALUE as *OUT: 0, or ENOMEM when VALUE is NULL. */
static int
model_take(char **out, char *value)
{
	*out = value;
	return value != NULL ? 0 : ENOMEM;
}

/* ---- comments ---- */

/*
 * The leading comment of the element at PATH (N_PATH numbers) in FILE's
 * SourceCodeInfo, borrowed; NULL when it has none.
 */
static const char *
model_leading_comment(const Google__Protobuf__FileDescriptorProto *file,
    const int32_t *path, size_t n_path)
{
	const Google__Protobuf__SourceCodeInfo *info = file->source_code_info;

	if (info == NULL) {
		return NULL;
	}
	for (size_t i = 0; i < info->n_location; i++) {
		const Google__Protobuf__SourceCodeInfo__Location *loc =
		    info->location[i];

		if (loc->n_path != n_path ||
		    memcmp(loc->path, path, n_path * sizeof(path[0])) != 0) {
			continue;
		}
		if (loc->leading_comments != NULL &&
		    loc->leading_comments[0] != '\0') {
			return loc->leading_comments;
		}
	}
	return NULL;
}

/* ---- protobuf-c's c_package option ---- */

/*
 * Reads a varint at *P (before END) into *VALUE and advances *P. Returns
 * false when the data ends first or the varint is too long.
 */
static bool
model_read_varint(const uint8_t **p, const uint8_t *end, uint64_t *value)
{
	uint64_t v = 0;

	for (unsigned shift = 0; shift < 64 && *p < end; shift += 7) {
		uint8_t byte = *(*p)++;

		v |= (uint64_t) (byte & 0x7f) << shift;
		if ((byte & 0x80) == 0) {
			*value = v;
			return true;
		}
	}
	return false;
}

/*
 * Looks for `c_package` in one serialised ProtobufCFileOptions (DATA, LEN
 * bytes) and, when present, replaces *C_PACKAGE with a copy (a later value
 * wins, as protobuf merging does). Malformed data is ignored: protoc wrote
 * it. Returns 0 or ENOMEM.
 */
static int
model_scan_pb_c_options(const uint8_t *data, size_t len, char **c_package)
{
	const uint8_t *p   = data;
	const uint8_t *end = data + len;
	uint64_t       key;
	uint64_t       size;

	while (p < end && model_read_varint(&p, end, &key)) {
		switch (key & 7) {
		case PROTOBUF_C_WIRE_TYPE_VARINT:
			if (!model_read_varint(&p, end, &size)) {
				return 0;
			}
			break;
		case PROTOBUF_C_WIRE_TYPE_64BIT:
			if (end - p < 8) {
				return 0;
			}
			p += 8;
			break;
		case PROTOBUF_C_WIRE_TYPE_32BIT:
			if (end - p < 4) {
				return 0;
			}
			p += 4;
			break;
		case PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED:
			if (!model_read_varint(&p, end, &size) ||
			    size > (uint64_t) (end - p)) {
				return 0;
			}
			if ((key >> 3) == MODEL_PB_C_C_PACKAGE_FIELD) {
				char *copy = strndup((const char *) p, size);

				if (copy == NULL) {
					return ENOMEM;
				}
				free(*c_package);
				*c_package = copy;
			}
			p += size;
			break;
		default: /* groups: not in ProtobufCFileOptions */
			return 0;
		}
	}
	return 0;
}

/*
 * FILE's `option (pb_c_file).c_package`, which protoc-c uses instead of
 * the package in C names. protobuf-c does not know the extension, so it
 * is among the unknown fields of FileOptions, length prefix included.
 * Sets *C_PACKAGE to a copy, or NULL when the option is absent. Returns 0
 * or ENOMEM.
 */
static int
model_c_package(
    const Google__Protobuf__FileDescriptorProto *file, char **c_package)
{
	const ProtobufCMessage *options =
	    (const ProtobufCMessage *) file->options;
	int rv;

	*c_package = NULL;
	if (options == NULL) {
		return 0;
	}
	for (unsigned i = 0; i < options->n_unknown_fields; i++) {
		const ProtobufCMessageUnknownField *field =
		    &options->unknown_fields[i];
		const uint8_t *p   = field->data;
		const uint8_t *end = field->data + field->len;
		uint64_t       size;

		if (field->tag != MODEL_PB_C_FILE_EXTENSION ||
		    field->wire_type != PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED) {
			continue;
		}
		if (!model_read_varint(&p, end, &size) ||
		    size > (uint64_t) (end - p)) {
			continue;
		}
		if ((rv = model_scan_pb_c_options(p, size, c_package)) != 0) {
			free(*c_package);
			*c_package = NULL;
			return rv;
		}
	}
	return 0;
}

/* ---- zrpc's role option ---- */

/* The values of option (zrpc.v1.role), and their enum zrpc_role names. */
static const struct {
	const char *value;
	const char *constant;
} model_roles[] = {
	{ "read", "ZRPC_ROLE_READ" },
	{ "write", "ZRPC_ROLE_WRITE" },
	{ "admin", "ZRPC_ROLE_ADMIN" },
};

/*
 * Sets M->role from `option (zrpc.v1.role)` in OPTIONS (NULL: none). The
 * extension is unknown to protobuf-c, so it arrives among the unknown
 * fields of MethodOptions, length prefix included; a later value wins, as
 * protobuf merging does. Returns 0, or EINVAL naming the method when the
 * value is not a role.
 */
static int
model_method_role(struct model_builder    *b,
    const Google__Protobuf__MethodOptions *options, struct model_method *m)
{
	const ProtobufCMessage *message = (const ProtobufCMessage *) options;
	const uint8_t          *value   = NULL;
	uint64_t                len     = 0;
	size_t n_roles = sizeof(model_roles) / sizeof(model_roles[0]);

	m->role      = "ZRPC_ROLE_NONE";
	m->role_name = "";
	if (message == NULL) {
		return 0;
	}
	for (unsigned i = 0; i < message->n_unknown_fields; i++) {
		const ProtobufCMessageUnknownField *field =
		    &message->unknown_fields[i];
		const uint8_t *p   = field->data;
		const uint8_t *end = field->data + field->len;
		uint64_t       size;

		if (field->tag != MODEL_ZRPC_ROLE_EXTENSION) {
			continue;
		}
		if (field->wire_type != PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED ||
		    !model_read_varint(&p, end, &size) ||
		    size > (uint64_t) (end - p)) {
			return model_fail(b,
			    "method %s: option (zrpc.v1.role) is not a string",
			    m->full_name);
		}
		value = p;
		len   = size;
	}
	if (value == NULL) {
		return 0;
	}
	for (size_t i = 0; i < n_roles; i++) {
		if (strlen(model_roles[i].value) == len &&
		    memcmp(model_roles[i].value, value, len) == 0) {
			m->role      = model_roles[i].constant;
			m->role_name = model_roles[i].value;
			return 0;
		}
	}
	return model_fail(b,
	    "method %s: option (zrpc.v1.role) is \"%.*s\"; it must be "
	    "\"read\", \"write\" or \"admin\" (or absent: open to every "
	    "caller)",
	    m->full_name, len > 64 ? 64 : (int) len, (const char *) value);
}

/* ---- message types ---- */

/*
 * Finds the message named by the dotted PATH (LEN bytes, "Outer.Inner")
 * among the top-level MESSAGES of a file. Returns false when there is
 * none.
 */
static bool
model_find_nested(Google__Protobuf__DescriptorProto *const *messages,
    size_t n_messages, const char *path, size_t len)
{
	size_t piece = 0;

	while (piece < len && path[piece] != '.') {
		piece++;
	}
	for (size_t i = 0; i < n_messages; i++) {
		const Google__Protobuf__DescriptorProto *message = messages[i];

		if (message->name == NULL || strlen(message->name) != piece ||
		    memcmp(message->name, path, piece) != 0) {
			continue;
		}
		if (piece == len) {
			return true;
		}
		return model_find_nested(message->nested_type,
		    message->n_nested_type, path + piece + 1, len - piece - 1);
	}
	return false;
}

/*
 * The file of REQUEST that declares the message TYPE_NAME (".pkg.Msg", as
 * protoc writes method types), or NULL when no file does.
 */
static const Google__Protobuf__FileDescriptorProto *
model_find_message(
    const Google__Protobuf__Compiler__CodeGeneratorRequest *request,
    const char                                             *type_name)
{
	if (type_name[0] != '.') {
		return NULL;
	}
	for (size_t i = 0; i < request->n_proto_file; i++) {
		const Google__Protobuf__FileDescriptorProto *file =
		    request->proto_file[i];
		const char *package =
		    file->package != NULL ? file->package : "";
		size_t      len  = strlen(package);
		const char *rest = type_name + 1;

		if (len > 0) {
			if (strncmp(rest, package, len) != 0 ||
			    rest[len] != '.') {
				continue;
			}
			rest += len + 1;
		}
		if (model_find_nested(file->message_type, file->n_message_type,
		        rest, strlen(rest))) {
			return file;
		}
	}
	return NULL;
}

/*
 * Resolves TYPE_NAME, the ROLE ("input" or "output") of METHOD, into
 * protoc-c's names. Returns 0, EINVAL (not a known message) or ENOMEM.
 */
static int
model_resolve_type(struct model_builder *b, const struct model_method *method,
    const char *role, const char *type_name, struct model_type *out)
{
	const Google__Protobuf__FileDescriptorProto *file;
	const char                                  *package;
	char                                        *c_package;
	char                                        *lower = NULL;
	int                                          rv;

	if (type_name == NULL ||
	    (file = model_find_message(b->request, type_name)) == NULL) {
		return model_fail(b, "method %s: %s type %s is not a message",
		    method->full_name, role,
		    type_name != NULL ? type_name : "(none)");
	}
	package = file->package != NULL ? file->package : "";
	if ((rv = model_c_package(file, &c_package)) != 0) {
		return rv;
	}
	if ((rv = model_format(&out->full_name, "%s", type_name + 1)) != 0 ||
	    (rv = model_take(&out->c_type,
	         names_pbc_type(out->full_name, package, c_package))) != 0 ||
	    (rv = model_take(&lower,
	         names_pbc_lower(out->full_name, package, c_package))) != 0) {
		goto out;
	}
	/* protoc-c names a message's descriptor <lower name>__descriptor. */
	rv = model_format(&out->descriptor, "%s__descriptor", lower);
out:
	free(lower);
	free(c_package);
	return rv;
}

/* ---- generated names and their collisions ---- */

/*
 * Records that the generated code defines NAME in SCOPE, owned by the
 * KIND ("service", "method") called OWNER, as ROLE. Returns 0 or ENOMEM.
 */
static int
model_define(struct model_builder *b, const char *scope, const char *name,
    const char *kind, const char *owner, const char *role)
{
	struct model_symbol *symbol;

	if (b->n_symbols == b->symbols_cap) {
		size_t cap = b->symbols_cap ? b->symbols_cap * 2 : 64;
		struct model_symbol *symbols;

		symbols = reallocarray(b->symbols, cap, sizeof(*symbols));
		if (symbols == NULL) {
			return ENOMEM;
		}
		b->symbols     = symbols;
		b->symbols_cap = cap;
	}
	symbol        = &b->symbols[b->n_symbols];
	symbol->scope = scope;
	symbol->name  = name;
	symbol->kind  = kind;
	symbol->owner = owner;
	symbol->role  = role;
	symbol->order = b->n_symbols++;
	return 0;
}

/* qsort order of symbols: by scope, name, then definition order. */
static int
model_symbol_compare(const void *a, const void *b)
{
	const struct model_symbol *x = a;
	const struct model_symbol *y = b;
	int                        rv;

	if ((rv = strcmp(x->scope, y->scope)) != 0 ||
	    (rv = strcmp(x->name, y->name)) != 0) {
		return rv;
	}
	return x->order < y->order ? -1 : x->order > y->order;
}

/*
 * Fails when two things would get one generated name, or a name lies in
 * the zrpc runtime's namespace. Methods are named first in the message:
 * renaming a method is usually the fix.
 */
static int
model_check_symbols(struct model_builder *b)
{
	size_t n_prefixes =
	    sizeof(model_runtime_prefixes) / sizeof(model_runtime_prefixes[0]);

	qsort(b->symbols, b->n_symbols, sizeof(b->symbols[0]),
	    model_symbol_compare);
	for (size_t i = 0; i < b->n_symbols; i++) {
		const struct model_symbol *s = &b->symbols[i];

		if (s->scope[0] != '\0') {
			continue;
		}
		for (size_t j = 0; j < n_prefixes; j++) {
			const char *prefix = model_runtime_prefixes[j];

			if (strncmp(s->name, prefix, strlen(prefix)) == 0) {
				return model_fail(b,
				    "%s %s: its %s would be named %s, "
				    "which is in the zrpc runtime's "
				    "namespace (%s*); rename the %s or its "
				    "package",
				    s->kind, s->owner, s->role, s->name,
				    prefix, s->kind);
			}
		}
	}
	for (size_t i = 1; i < b->n_symbols; i++) {
		const struct model_symbol *first  = &b->symbols[i - 1];
		const struct model_symbol *second = &b->symbols[i];

		if (strcmp(first->scope, second->scope) != 0 ||
		    strcmp(first->name, second->name) != 0) {
			continue;
		}
		if (strcmp(first->kind, "method") != 0 &&
		    strcmp(second->kind, "method") == 0) {
			const struct model_symbol *swap = first;

			first  = second;
			second = swap;
		}
		return model_fail(b,
		    "%s %s: its %s would be named %s, which collides with "
		    "the %s of %s %s; rename one of them",
		    first->kind, first->owner, first->role, first->name,
		    second->role, second->kind, second->owner);
	}
	return 0;
}

/* ---- services and methods ---- */

/* Names the generated code defines for METHOD of SERVICE. */
static int
model_method_names(const struct model_service *service, struct model_method *m)
{
	char *snake;
	int   rv;

	if ((snake = names_snake(m->name)) == NULL) {
		return ENOMEM;
	}
	if ((rv = model_format(
	         &m->full_name, "%s.%s", service->full_name, m->name)) != 0 ||
	    (rv = model_format(
	         &m->path, "/%s/%s", service->full_name, m->name)) != 0 ||
	    (rv = model_format(&m->call, "%s_%s", service->prefix, snake)) !=
	        0 ||
	    (rv = model_format(&m->method_macro, "%s_method", m->call)) != 0 ||
	    (rv = model_format(&m->call_async, "%s_async", m->call)) != 0 ||
	    (rv = model_format(&m->callback_type, "%s_cb", m->call)) != 0 ||
	    (rv = model_format(&m->handler_type, "%s_fn", m->call)) != 0 ||
	    (rv = model_format(
	         &m->invoke_handler, "%s_invoke_handler", m->call)) != 0 ||
	    (rv = model_format(
	         &m->invoke_callback, "%s_invoke_callback", m->call)) != 0 ||
	    (rv = model_format(&m->field, "%s%s", snake,
	         names_is_reserved(snake) ? "_" : "")) != 0 ||
	    (rv = model_format(&m->blocking_field, "%s_blocking", snake)) !=
	        0) {
		goto out;
	}
	rv = 0;
out:
	free(snake);
	return rv;
}

/* Records the names METHOD of SERVICE defines. */
static int
model_method_define(struct model_builder *b,
    const struct model_service *service, const struct model_method *m)
{
	const char *owner = m->full_name;
	int         rv;

	if ((rv = model_define(b, "", m->method_macro, "method", owner,
	         "method entry")) != 0 ||
	    (rv = model_define(
	         b, "", m->call, "method", owner, "blocking stub")) != 0 ||
	    (rv = model_define(b, "", m->call_async, "method", owner,
	         "asynchronous stub")) != 0 ||
	    (rv = model_define(b, "", m->callback_type, "method", owner,
	         "callback type")) != 0 ||
	    (rv = model_define(b, "", m->handler_type, "method", owner,
	         "handler type")) != 0 ||
	    (rv = model_define(b, "", m->invoke_handler, "method", owner,
	         "handler trampoline")) != 0 ||
	    (rv = model_define(b, "", m->invoke_callback, "method", owner,
	         "callback trampoline")) != 0 ||
	    (rv = model_define(b, service->full_name, m->field, "method",
	         owner, "handler field")) != 0 ||
	    (rv = model_define(b, service->full_name, m->blocking_field,
	         "method", owner, "blocking flag field")) != 0) {
		return rv;
	}
	return 0;
}

/*
 * Notes the name protoc-c gives METHOD's member in its service struct when
 * that name is not usable in C, once per file. Returns 0 or ENOMEM.
 */
static int
model_note_pbc_member(struct model_builder *b, const char *method)
{
	struct model_file *model = b->model;
	char             **names;
	char              *lower;

	/* protoc-c: CamelToLower(method name), as for one name piece. */
	if ((lower = names_pbc_lower(method, "", NULL)) == NULL) {
		return ENOMEM;
	}
	if (!names_is_reserved(lower)) {
		free(lower);
		return 0;
	}
	for (size_t i = 0; i < model->n_pbc_hidden; i++) {
		if (strcmp(model->pbc_hidden[i], lower) == 0) {
			free(lower);
			return 0;
		}
	}
	names = reallocarray(model->pbc_hidden, model->n_pbc_hidden + 1,
	    sizeof(model->pbc_hidden[0]));
	if (names == NULL) {
		free(lower);
		return ENOMEM;
	}
	model->pbc_hidden                        = names;
	model->pbc_hidden[model->n_pbc_hidden++] = lower;
	return 0;
}

/* Builds method INDEX of service S_INDEX into M. */
static int
model_method_build(struct model_builder *b, struct model_service *service,
    size_t s_index, size_t index, struct model_method *m)
{
	const Google__Protobuf__MethodDescriptorProto *proto =
	    b->file->service[s_index]->method[index];
	const int32_t path[] = { MODEL_FILE_SERVICE_FIELD, (int32_t) s_index,
		MODEL_SERVICE_METHOD_FIELD, (int32_t) index };
	int           rv;

	if (proto->name == NULL || proto->name[0] == '\0') {
		return model_fail(b, "service %s: method %zu has no name",
		    service->full_name, index);
	}
	m->name    = proto->name;
	m->comment = model_leading_comment(b->file, path, 4);
	if ((rv = model_method_names(service, m)) != 0) {
		return rv;
	}
	if ((proto->has_client_streaming && proto->client_streaming) ||
	    (proto->has_server_streaming && proto->server_streaming)) {
		return model_fail(b,
		    "method %s is streaming; protoc-gen-zrpc supports unary "
		    "methods only",
		    m->full_name);
	}
	if ((rv = model_method_role(b, proto->options, m)) != 0) {
		return rv;
	}
	if ((rv = model_resolve_type(
	         b, m, "input", proto->input_type, &m->input)) != 0 ||
	    (rv = model_resolve_type(
	         b, m, "output", proto->output_type, &m->output)) != 0 ||
	    (rv = model_note_pbc_member(b, m->name)) != 0) {
		return rv;
	}
	return model_method_define(b, service, m);
}

/* Builds service INDEX of the file into S, methods included. */
static int
model_service_build(
    struct model_builder *b, size_t index, struct model_service *s)
{
	const Google__Protobuf__ServiceDescriptorProto *proto =
	    b->file->service[index];
	const int32_t path[] = { MODEL_FILE_SERVICE_FIELD, (int32_t) index };
	char         *snake;
	int           rv;

	if (proto->name == NULL || proto->name[0] == '\0') {
		return model_fail(b, "service %zu has no name", index);
	}
	s->name    = proto->name;
	s->comment = model_leading_comment(b->file, path, 2);
	if ((snake = names_snake(s->name)) == NULL) {
		return ENOMEM;
	}
	rv = b->package[0] != '\0'
	    ? model_format(&s->full_name, "%s.%s", b->package, s->name)
	    : model_format(&s->full_name, "%s", s->name);
	if (rv == 0) {
		rv = b->package_prefix[0] != '\0'
		    ? model_format(
		          &s->prefix, "%s_%s", b->package_prefix, snake)
		    : model_format(&s->prefix, "%s", snake);
	}
	free(snake);
	if (rv != 0 ||
	    (rv = model_format(&s->desc, "%s_service", s->prefix)) != 0 ||
	    (rv = model_format(&s->methods, "%s_methods", s->prefix)) != 0 ||
	    (rv = model_format(&s->handlers, "%s_handlers", s->prefix)) != 0 ||
	    (rv = model_format(&s->register_fn, "%s_register", s->prefix)) !=
	        0) {
		return rv;
	}
	if ((rv = model_define(b, "", s->desc, "service", s->full_name,
	         "service description")) != 0 ||
	    (rv = model_define(b, "", s->register_fn, "service", s->full_name,
	         "register function")) != 0 ||
	    (rv = model_define(b, "struct", s->handlers, "service",
	         s->full_name, "handler table")) != 0) {
		return rv;
	}
	if (proto->n_method > 0 &&
	    (rv = model_define(b, "", s->methods, "service", s->full_name,
	         "method table")) != 0) {
		return rv;
	}

	if (proto->n_method > 0) {
		s->method = calloc(proto->n_method, sizeof(s->method[0]));
		if (s->method == NULL) {
			return ENOMEM;
		}
	}
	s->n_methods = proto->n_method;
	for (size_t i = 0; i < s->n_methods; i++) {
		if ((rv = model_method_build(b, s, index, i, &s->method[i])) !=
		    0) {
			return rv;
		}
	}
	return 0;
}

/*
 * Checks that the .proto file's name can be written in an #include
 * directive and a comment: generated code includes its .pb-c.h by path.
 */
static int
model_check_file_name(struct model_builder *b)
{
	const char *name = b->file->name;

	if (name == NULL || name[0] == '\0') {
		return model_fail(b, "file has no name");
	}
	for (const char *p = name; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\' || (unsigned char) *p < 0x20 ||
		    (p[0] == '*' && p[1] == '/')) {
			return model_fail(
			    b, "file name cannot be used in a C #include");
		}
	}
	return 0;
}

/* Names of the generated files and the include guard. */
static int
model_file_names(struct model_builder *b)
{
	struct model_file *model = b->model;
	char              *stem;
	int                rv;

	if ((stem = names_strip_proto(b->file->name)) == NULL) {
		return ENOMEM;
	}
	if ((rv = model_format(&model->pbc_header, "%s.pb-c.h", stem)) == 0 &&
	    (rv = model_format(&model->header_name, "%s.zrpc.h", stem)) == 0 &&
	    (rv = model_format(&model->source_name, "%s.zrpc.c", stem)) == 0) {
		rv = model_take(
		    &model->guard, names_include_guard(model->header_name));
	}
	free(stem);
	return rv;
}

/* ---- embedded file descriptors ---- */

/* The index of the file named NAME in MODEL->embedded, or SIZE_MAX. */
static size_t
model_embedded_index(const struct model_file *model, const char *name)
{
	for (size_t i = 0; i < model->n_embedded; i++) {
		if (strcmp(model->embedded[i].name, name) == 0) {
			return i;
		}
	}
	return SIZE_MAX;
}

/*
 * Serializes FILE without its source_code_info (comments and spans, which
 * reflection does not need) into E->data. Returns 0 or ENOMEM.
 */
static int
model_embedded_pack(const Google__Protobuf__FileDescriptorProto *file,
    struct model_embedded                                       *e)
{
	Google__Protobuf__FileDescriptorProto copy = *file;

	copy.source_code_info = NULL;
	e->len =
	    google__protobuf__file_descriptor_proto__get_packed_size(&copy);
	if ((e->data = malloc(e->len != 0 ? e->len : 1)) == NULL) {
		return ENOMEM;
	}
	google__protobuf__file_descriptor_proto__pack(&copy, e->data);
	return 0;
}

/*
 * Appends FILE to the model's embedded files after its imports (found
 * among the request's files), unless it is there already; DEPTH guards
 * against an import cycle, which protoc would have refused. Sets *INDEX
 * to its index. Returns 0, EINVAL or ENOMEM.
 */
static int
model_embed_file(struct model_builder           *b,
    const Google__Protobuf__FileDescriptorProto *file, size_t depth,
    size_t *index)
{
	struct model_file     *model = b->model;
	struct model_embedded *grown;
	size_t                *deps = NULL;
	size_t                 i;
	int                    rv;

	if (file->name == NULL) {
		return model_fail(b, "an imported file has no name");
	}
	if ((*index = model_embedded_index(model, file->name)) != SIZE_MAX) {
		return 0;
	}
	if (depth > b->request->n_proto_file) {
		return model_fail(b, "import cycle through %s", file->name);
	}
	if (file->n_dependency > 0 &&
	    (deps = calloc(file->n_dependency, sizeof(deps[0]))) == NULL) {
		return ENOMEM;
	}
	for (i = 0; i < file->n_dependency; i++) {
		const Google__Protobuf__FileDescriptorProto *dep = NULL;

		for (size_t j = 0; j < b->request->n_proto_file; j++) {
			const Google__Protobuf__FileDescriptorProto *f =
			    b->request->proto_file[j];

			if (f->name != NULL &&
			    strcmp(f->name, file->dependency[i]) == 0) {
				dep = f;
				break;
			}
		}
		if (dep == NULL) {
			rv = model_fail(b,
			    "import %s: not among the files "
			    "protoc sent",
			    file->dependency[i]);
			goto fail;
		}
		if ((rv = model_embed_file(b, dep, depth + 1, &deps[i])) !=
		    0) {
			goto fail;
		}
	}
	grown = reallocarray(model->embedded, model->n_embedded + 1,
	    sizeof(model->embedded[0]));
	if (grown == NULL) {
		rv = ENOMEM;
		goto fail;
	}
	model->embedded = grown;
	*index          = model->n_embedded;
	grown           = &model->embedded[model->n_embedded++];
	memset(grown, 0, sizeof(*grown));
	grown->name   = file->name;
	grown->n_deps = file->n_dependency;
	grown->deps   = deps;
	if ((rv = model_format(&grown->symbol, "zrpc_file_%zu", *index)) !=
	        0 ||
	    (rv = model_embedded_pack(file, grown)) != 0) {
		return rv; /* model_free frees what GROWN holds */
	}
	return 0;

fail:
	free(deps);
	return rv;
}

int
model_build(const Google__Protobuf__Compiler__CodeGeneratorRequest *request,
    const Google__Protobuf__FileDescriptorProto *file, struct model_file **out,
    char **error)
{
	struct model_builder b;
	struct model_file   *model;
	int                  rv;

	*out   = NULL;
	*error = NULL;
	memset(&b, 0, sizeof(b));
	b.request = request;
	b.file    = file;
	b.package = file->package != NULL ? file->package : "";

	if ((rv = model_check_file_name(&b)) != 0) {
		goto fail;
	}
	if ((model = calloc(1, sizeof(*model))) == NULL) {
		rv = ENOMEM;
		goto fail;
	}
	b.model           = model;
	model->proto_name = file->name;
	if ((rv = model_file_names(&b)) != 0 ||
	    (rv = model_take(
	         &b.package_prefix, names_package_prefix(b.package))) != 0) {
		goto fail;
	}
	if (file->n_service > 0) {
		model->service =
		    calloc(file->n_service, sizeof(model->service[0]));
		if (model->service == NULL) {
			rv = ENOMEM;
			goto fail;
		}
	}
	model->n_services = file->n_service;
	for (size_t i = 0; i < model->n_services; i++) {
		if ((rv = model_service_build(&b, i, &model->service[i])) !=
		    0) {
			goto fail;
		}
	}
	if ((rv = model_check_symbols(&b)) != 0) {
		goto fail;
	}
	{
		size_t self;

		if ((rv = model_embed_file(&b, file, 0, &self)) != 0) {
			goto fail;
		}
	}

	free(b.symbols);
	free(b.package_prefix);
	*out = model;
	return 0;

fail:
	free(b.symbols);
	free(b.package_prefix);
	model_free(b.model);
	if (rv == EINVAL) {
		*error = b.error;
	} else {
		free(b.error);
	}
	return rv;
}

/* Frees the strings of TYPE. */
static void
model_type_finish(struct model_type *type)
{
	free(type->full_name);
	free(type->c_type);
	free(type->descriptor);
}

/* Frees the strings of METHOD. */
static void
model_method_finish(struct model_method *m)
{
	free(m->full_name);
	free(m->path);
	free(m->method_macro);
	free(m->call);
	free(m->call_async);
	free(m->callback_type);
	free(m->handler_type);
	free(m->invoke_handler);
	free(m->invoke_callback);
	free(m->field);
	free(m->blocking_field);
	model_type_finish(&m->input);
	model_type_finish(&m->output);
}

/* Frees the strings and methods of SERVICE. */
static void
model_service_finish(struct model_service *s)
{
	if (s->method != NULL) {
		for (size_t i = 0; i < s->n_methods; i++) {
			model_method_finish(&s->method[i]);
		}
	}
	free(s->method);
	free(s->full_name);
	free(s->prefix);
	free(s->desc);
	free(s->methods);
	free(s->handlers);
	free(s->register_fn);
}

void
model_free(struct model_file *model)
{
	if (model == NULL) {
		return;
	}
	if (model->service != NULL) {
		for (size_t i = 0; i < model->n_services; i++) {
			model_service_finish(&model->service[i]);
		}
	}
	free(model->service);
	for (size_t i = 0; i < model->n_pbc_hidden; i++) {
		free(model->pbc_hidden[i]);
	}
	free(model->pbc_hidden);
	for (size_t i = 0; i < model->n_embedded; i++) {
		free(model->embedded[i].symbol);
		free(model->embedded[i].data);
		free(model->embedded[i].deps);
	}
	free(model->embedded);
	free(model->pbc_header);
	free(model->header_name);
	free(model->source_name);
	free(model->guard);
	free(model);
}
