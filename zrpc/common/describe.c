/*
 * describe: a symbol of the pool in .proto syntax, as `grpcurl describe`
 * prints it: one line naming what the symbol is ("zos.v1.Skills is a
 * service:"), then its definition. Types are written as the descriptor
 * holds them, fully qualified with a leading dot; a map field is written
 * `map<K, V>` and its generated entry message left out; a proto3
 * `optional` field is written so, not as the synthetic oneof protoc made
 * of it; a method shows its role option.
 *
 * It reads the FileDescriptorProtos alone (nothing is built), so it also
 * works on a file whose imports are missing. The text goes to a memory
 * stream (open_memstream), which grows as needed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "descriptor_pool.h"

#define F(name) GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_##name

/* The .proto spelling of a scalar TYPE, or NULL for messages and enums. */
static const char *
describe_scalar(Google__Protobuf__FieldDescriptorProto__Type type)
{
	switch (type) {
	case F(DOUBLE):
		return "double";
	case F(FLOAT):
		return "float";
	case F(INT64):
		return "int64";
	case F(UINT64):
		return "uint64";
	case F(INT32):
		return "int32";
	case F(FIXED64):
		return "fixed64";
	case F(FIXED32):
		return "fixed32";
	case F(BOOL):
		return "bool";
	case F(STRING):
		return "string";
	case F(BYTES):
		return "bytes";
	case F(UINT32):
		return "uint32";
	case F(SFIXED32):
		return "sfixed32";
	case F(SFIXED64):
		return "sfixed64";
	case F(SINT32):
		return "sint32";
	case F(SINT64):
		return "sint64";
	default:
		return NULL;
	}
}

/* Writes INDENT levels of two spaces. */
static void
describe_indent(FILE *out, unsigned indent)
{
	for (unsigned i = 0; i < indent; i++) {
		fputs("  ", out);
	}
}

/* Writes S as a .proto string literal. */
static void
describe_quoted(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char) *s;

		if (c == '"' || c == '\\') {
			fprintf(out, "\\%c", c);
		} else if (c < 0x20 || c == 0x7f) {
			fprintf(out, "\\%03o", c);
		} else {
			fputc(c, out);
		}
	}
	fputc('"', out);
}

/* The type of field F: a scalar's name, or its type name as written. */
static const char *
describe_type(const Google__Protobuf__FieldDescriptorProto *f)
{
	const char *scalar = f->has_type ? describe_scalar(f->type) : NULL;

	return scalar != NULL ? scalar
	                      : (f->type_name != NULL ? f->type_name : "?");
}

/*
 * The nested message of M that F's type names when it is a map entry
 * (the type name ends in ".<nested name>" and the nested type has
 * map_entry set), or NULL.
 */
static const Google__Protobuf__DescriptorProto *
describe_map_entry(const Google__Protobuf__DescriptorProto *m,
    const Google__Protobuf__FieldDescriptorProto           *f)
{
	const char *dot;

	if (f->label !=
	        GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__LABEL__LABEL_REPEATED ||
	    f->type_name == NULL ||
	    (dot = strrchr(f->type_name, '.')) == NULL) {
		return NULL;
	}
	for (size_t i = 0; i < m->n_nested_type; i++) {
		const Google__Protobuf__DescriptorProto *n = m->nested_type[i];

		if (n->options != NULL && n->options->has_map_entry &&
		    n->options->map_entry && strcmp(n->name, dot + 1) == 0 &&
		    n->n_field == 2) {
			return n;
		}
	}
	return NULL;
}

/* Writes field F of M (PROTO3: the file's syntax) as one line. */
static void
describe_field(FILE *out, const Google__Protobuf__DescriptorProto *m,
    const Google__Protobuf__FieldDescriptorProto *f, bool proto3,
    bool in_oneof, unsigned indent)
{
	const Google__Protobuf__DescriptorProto *entry =
	    describe_map_entry(m, f);
	const Google__Protobuf__FieldOptions *o   = f->options;
	const char                           *sep = " [";

	describe_indent(out, indent);
	if (entry != NULL) {
		fprintf(out, "map<%s, %s>", describe_type(entry->field[0]),
		    describe_type(entry->field[1]));
	} else {
		if (f->label ==
		    GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__LABEL__LABEL_REPEATED) {
			fputs("repeated ", out);
		} else if (f->label ==
		    GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__LABEL__LABEL_REQUIRED) {
			fputs("required ", out);
		} else if (!in_oneof && (!proto3 || f->proto3_optional)) {
			fputs("optional ", out);
		}
		fputs(describe_type(f), out);
	}
	fprintf(out, " %s = %d", f->name, f->number);
	if (f->default_value != NULL) {
		fprintf(out, "%sdefault = ", sep);
		if (f->has_type && (f->type == F(STRING))) {
			describe_quoted(out, f->default_value);
		} else if (f->has_type && f->type == F(BYTES)) {
			/* Already C-escaped by protoc. */
			fprintf(out, "\"%s\"", f->default_value);
		} else {
			fputs(f->default_value, out);
		}
		sep = ", ";
	}
	if (o != NULL && o->has_packed) {
		fprintf(
		    out, "%spacked = %s", sep, o->packed ? "true" : "false");
		sep = ", ";
	}
	if (o != NULL && o->has_deprecated && o->deprecated) {
		fprintf(out, "%sdeprecated = true", sep);
		sep = ", ";
	}
	fputs(sep[0] == ',' ? "];\n" : ";\n", out);
}

static void describe_enum(FILE                  *out,
    const Google__Protobuf__EnumDescriptorProto *e, unsigned indent);

/* Writes message M, nested types first. */
static void
describe_message(FILE *out, const Google__Protobuf__DescriptorProto *m,
    bool proto3, unsigned indent)
{
	describe_indent(out, indent);
	fprintf(out, "message %s {\n", m->name);
	for (size_t i = 0; i < m->n_enum_type; i++) {
		describe_enum(out, m->enum_type[i], indent + 1);
	}
	for (size_t i = 0; i < m->n_nested_type; i++) {
		const Google__Protobuf__DescriptorProto *n = m->nested_type[i];

		if (n->options != NULL && n->options->has_map_entry &&
		    n->options->map_entry) {
			continue; /* shown as map<K, V> */
		}
		describe_message(out, n, proto3, indent + 1);
	}
	for (size_t i = 0; i < m->n_field; i++) {
		const Google__Protobuf__FieldDescriptorProto *f = m->field[i];
		size_t                                        k;

		if (!f->has_oneof_index || f->proto3_optional) {
			describe_field(out, m, f, proto3, false, indent + 1);
			continue;
		}
		/* A oneof, where its first member is. */
		k = (size_t) f->oneof_index;
		for (size_t j = 0; j < i; j++) {
			if (m->field[j]->has_oneof_index &&
			    (size_t) m->field[j]->oneof_index == k) {
				k = SIZE_MAX; /* already written */
				break;
			}
		}
		if (k == SIZE_MAX || k >= m->n_oneof_decl) {
			continue;
		}
		describe_indent(out, indent + 1);
		fprintf(out, "oneof %s {\n", m->oneof_decl[k]->name);
		for (size_t j = i; j < m->n_field; j++) {
			if (m->field[j]->has_oneof_index &&
			    (size_t) m->field[j]->oneof_index == k) {
				describe_field(out, m, m->field[j], proto3,
				    true, indent + 2);
			}
		}
		describe_indent(out, indent + 1);
		fputs("}\n", out);
	}
	for (size_t i = 0; i < m->n_reserved_range; i++) {
		const Google__Protobuf__DescriptorProto__ReservedRange *r =
		    m->reserved_range[i];

		describe_indent(out, indent + 1);
		if (r->end - 1 == r->start) {
			fprintf(out, "reserved %d;\n", r->start);
		} else {
			fprintf(
			    out, "reserved %d to %d;\n", r->start, r->end - 1);
		}
	}
	for (size_t i = 0; i < m->n_reserved_name; i++) {
		describe_indent(out, indent + 1);
		fputs("reserved ", out);
		describe_quoted(out, m->reserved_name[i]);
		fputs(";\n", out);
	}
	describe_indent(out, indent);
	fputs("}\n", out);
}

static void
describe_enum(
    FILE *out, const Google__Protobuf__EnumDescriptorProto *e, unsigned indent)
{
	describe_indent(out, indent);
	fprintf(out, "enum %s {\n", e->name);
	if (e->options != NULL && e->options->has_allow_alias &&
	    e->options->allow_alias) {
		describe_indent(out, indent + 1);
		fputs("option allow_alias = true;\n", out);
	}
	for (size_t i = 0; i < e->n_value; i++) {
		describe_indent(out, indent + 1);
		fprintf(
		    out, "%s = %d;\n", e->value[i]->name, e->value[i]->number);
	}
	describe_indent(out, indent);
	fputs("}\n", out);
}

static void
describe_method(FILE *out, const Google__Protobuf__MethodDescriptorProto *m,
    unsigned indent)
{
	const char *role;

	zrpc_dpool_method_role(m->options, &role);
	describe_indent(out, indent);
	fprintf(out, "rpc %s ( %s%s ) returns ( %s%s )", m->name,
	    m->has_client_streaming && m->client_streaming ? "stream " : "",
	    m->input_type,
	    m->has_server_streaming && m->server_streaming ? "stream " : "",
	    m->output_type);
	if (role[0] == '\0') {
		fputs(";\n", out);
		return;
	}
	fputs(" {\n", out);
	describe_indent(out, indent + 1);
	fprintf(out, "option (zrpc.v1.role) = \"%s\";\n", role);
	describe_indent(out, indent);
	fputs("}\n", out);
}

static void
describe_service(FILE *out, const Google__Protobuf__ServiceDescriptorProto *s,
    unsigned indent)
{
	describe_indent(out, indent);
	fprintf(out, "service %s {\n", s->name);
	for (size_t i = 0; i < s->n_method; i++) {
		describe_method(out, s->method[i], indent + 1);
	}
	describe_indent(out, indent);
	fputs("}\n", out);
}

/* Writes the whole FILE. */
static void
describe_file(FILE *out, const struct pool_file *file)
{
	const Google__Protobuf__FileDescriptorProto *p = file->proto;

	fprintf(out, "syntax = \"%s\";\n",
	    p->syntax != NULL && p->syntax[0] != '\0' ? p->syntax : "proto2");
	if (file->package[0] != '\0') {
		fprintf(out, "\npackage %s;\n", file->package);
	}
	if (p->n_dependency > 0) {
		fputc('\n', out);
	}
	for (size_t i = 0; i < p->n_dependency; i++) {
		fputs("import ", out);
		describe_quoted(out, p->dependency[i]);
		fputs(";\n", out);
	}
	for (size_t i = 0; i < p->n_message_type; i++) {
		fputc('\n', out);
		describe_message(out, p->message_type[i], file->proto3, 0);
	}
	for (size_t i = 0; i < p->n_enum_type; i++) {
		fputc('\n', out);
		describe_enum(out, p->enum_type[i], 0);
	}
	for (size_t i = 0; i < p->n_service; i++) {
		fputc('\n', out);
		describe_service(out, p->service[i], 0);
	}
}

zrpc_status
zrpc_descriptor_pool_describe(
    zrpc_descriptor_pool *pool, const char *symbol, char **text)
{
	struct pool_file   *file = NULL;
	struct pool_symbol *sym  = NULL;
	char               *buf  = NULL;
	size_t              len  = 0;
	FILE               *out;

	*text = NULL;
	if (symbol == NULL || symbol[0] == '\0') {
		return zrpc_status_make(ZRPC_INVALID_ARGUMENT, "no symbol");
	}
	if ((sym = zrpc_dpool_lookup_any(pool, symbol)) == NULL &&
	    (file = zrpc_dpool_find_file(pool, symbol)) == NULL) {
		return zrpc_status_make(
		    ZRPC_NOT_FOUND, "symbol %s not found", symbol);
	}
	if ((out = open_memstream(&buf, &len)) == NULL) {
		return zrpc_status_make(
		    ZRPC_RESOURCE_EXHAUSTED, "out of memory");
	}
	if (file != NULL) {
		fprintf(out, "%s is a file:\n", file->name);
		describe_file(out, file);
	} else {
		switch (sym->kind) {
		case POOL_MESSAGE:
			fprintf(out, "%s is a message:\n", sym->name);
			describe_message(
			    out, sym->proto, sym->file->proto3, 0);
			break;
		case POOL_ENUM:
			fprintf(out, "%s is an enum:\n", sym->name);
			describe_enum(out, sym->proto, 0);
			break;
		case POOL_SERVICE:
			fprintf(out, "%s is a service:\n", sym->name);
			describe_service(out, sym->proto, 0);
			break;
		case POOL_METHOD:
			fprintf(out, "%s is a method:\n", sym->name);
			describe_method(out, sym->proto, 0);
			break;
		}
	}
	if (ferror(out)) {
		fclose(out);
		free(buf);
		return zrpc_status_make(
		    ZRPC_RESOURCE_EXHAUSTED, "out of memory");
	}
	if (fclose(out) != 0 || buf == NULL) {
		free(buf);
		return zrpc_status_make(
		    ZRPC_RESOURCE_EXHAUSTED, "out of memory");
	}
	*text = buf;
	return zrpc_status_ok();
}
