/*
 * protobuf-c messages to proto3 JSON: zos_pbjson_print (see pbjson.h).
 *
 * The message is turned into a tree of json-c objects along its
 * descriptors (JSON names, maps and presence as pbjson_descriptor.h derives
 * them), and the tree is laid out by a small writer of this file's own,
 * because json-c's pretty printer writes "{\n}" for an empty object and
 * nothing like the layout of grpcurl's output. json-c still writes the
 * scalars, so strings are escaped as it escapes them.
 *
 * A field is printed when protobuf-c would pack it: set, and for proto3
 * scalars not at the default value. 64-bit integers are strings, floats
 * the shortest decimal that reads back as the same value. Out of memory
 * anywhere drops the whole tree and the call returns NULL.
 */
#include "pbjson.h"

#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <json-c/printbuf.h>

#include "pbjson_base64.h"
#include "pbjson_descriptor.h"

/* Field names up to this length are converted without an allocation. */
#define PBJSON_NAME_SMALL 128

/* Longest field path kept for error messages ("items[2].name"). */
#define PBJSON_PRINT_PATH_MAX 512

/* State of one print: the options, where in the message it is, and the
 * error when it is not out of memory. */
struct pbjson_printer {
	bool   emit_defaults;
	char   path[PBJSON_PRINT_PATH_MAX];
	size_t path_len;
	char  *error;
	size_t error_len;
	bool   refused; /* ERROR holds why (not out of memory) */
};

/* Appends ".NAME" (or "NAME" at the top) or "[I]" to the path; returns
 * the length to restore with pbjson_print_path_pop. */
static size_t
pbjson_print_path_push(
    struct pbjson_printer *p, const char *name, size_t index)
{
	size_t saved = p->path_len;
	int    n;

	if (p->path_len >= sizeof(p->path) - 1) {
		return saved;
	}
	if (name != NULL) {
		n = snprintf(p->path + p->path_len,
		    sizeof(p->path) - p->path_len, "%s%s",
		    p->path_len > 0 ? "." : "", name);
	} else {
		n = snprintf(p->path + p->path_len,
		    sizeof(p->path) - p->path_len, "[%zu]", index);
	}
	if (n > 0) {
		p->path_len += (size_t) n;
		if (p->path_len >= sizeof(p->path)) {
			p->path_len = sizeof(p->path) - 1;
		}
	}
	return saved;
}

static void
pbjson_print_path_pop(struct pbjson_printer *p, size_t saved)
{
	p->path_len    = saved;
	p->path[saved] = '\0';
}

/*
 * True when TEXT (LEN bytes) is well-formed UTF-8 (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF), which a JSON string must
 * be.
 */
static bool
pbjson_valid_utf8(const unsigned char *text, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned char c = text[i];
		size_t        n;
		uint32_t      cp;

		if (c < 0x80) {
			i++;
			continue;
		} else if (c >= 0xc2 && c <= 0xdf) {
			n  = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n  = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n  = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (len - i - 1 < n) {
			return false;
		}
		for (size_t k = 1; k <= n; k++) {
			if ((text[i + k] & 0xc0) != 0x80) {
				return false;
			}
			cp = (cp << 6) | (text[i + k] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
			return false;
		}
		i += n + 1;
	}
	return true;
}

/* A string field's value S as a JSON string, or NULL: out of memory, or
 * refused (ERROR set) when S is not UTF-8. */
static json_object *
pbjson_string_json(struct pbjson_printer *p, const char *s)
{
	if (s == NULL) {
		s = "";
	}
	if (!pbjson_valid_utf8((const unsigned char *) s, strlen(s))) {
		if (p->error != NULL && p->error_len > 0) {
			snprintf(p->error, p->error_len,
			    "%s: string field holds invalid UTF-8, which "
			    "JSON cannot carry (a bytes field would)",
			    p->path_len > 0 ? p->path : "(message)");
		}
		p->refused = true;
		return NULL;
	}
	return json_object_new_string(s);
}

/* A float or double as JSON: the shortest decimal that reads back as the
 * same value, or the strings of NaN and the infinities. */
static json_object *
pbjson_real_json(double value, bool single)
{
	char text[40];

	if (isnan(value)) {
		return json_object_new_string("NaN");
	}
	if (isinf(value)) {
		return json_object_new_string(
		    value > 0 ? "Infinity" : "-Infinity");
	}
	if (value == 0 && signbit(value)) {
		/* "-0" would read back as the integer 0 in many parsers
		 * (Python's json among them); Python's json_format writes
		 * -0.0, and so do we. */
		return json_object_new_double_s(value, "-0.0");
	}
	for (int precision = 1; precision <= 17; precision++) {
		snprintf(text, sizeof(text), "%.*g", precision, value);
		if (single ? strtof(text, NULL) == (float) value
		           : strtod(text, NULL) == value) {
			break;
		}
	}
	return json_object_new_double_s(value, text);
}

/* BINARY as a standard base64 JSON string. */
static json_object *
pbjson_bytes_json(const ProtobufCBinaryData *binary)
{
	size_t       len;
	char        *text;
	json_object *value;

	text = pbjson_base64_encode(binary->data, binary->len, &len);
	if (text == NULL) {
		return NULL;
	}
	value = json_object_new_string_len(text, (int) len);
	free(text);
	return value;
}

static json_object *pbjson_message_json(
    struct pbjson_printer *p, const ProtobufCMessage *message);

/* One value of FIELD's type, held at MEMBER, as JSON; NULL when out of
 * memory or refused (P->refused). */
static json_object *
pbjson_value_json(struct pbjson_printer *p,
    const ProtobufCFieldDescriptor *field, const void *member)
{
	char text[32];

	switch (field->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		return json_object_new_int(*(const int32_t *) member);
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		return json_object_new_int64(*(const uint32_t *) member);
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		snprintf(
		    text, sizeof(text), "%" PRId64, *(const int64_t *) member);
		return json_object_new_string(text);
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		snprintf(text, sizeof(text), "%" PRIu64,
		    *(const uint64_t *) member);
		return json_object_new_string(text);
	case PROTOBUF_C_TYPE_FLOAT:
		return pbjson_real_json(*(const float *) member, true);
	case PROTOBUF_C_TYPE_DOUBLE:
		return pbjson_real_json(*(const double *) member, false);
	case PROTOBUF_C_TYPE_BOOL:
		return json_object_new_boolean(
		    *(const protobuf_c_boolean *) member != 0);
	case PROTOBUF_C_TYPE_ENUM: {
		int                       number = *(const int *) member;
		const ProtobufCEnumValue *known =
		    protobuf_c_enum_descriptor_get_value(
		        field->descriptor, number);

		return known != NULL ? json_object_new_string(known->name)
		                     : json_object_new_int(number);
	}
	case PROTOBUF_C_TYPE_STRING:
		return pbjson_string_json(p, *(char *const *) member);
	case PROTOBUF_C_TYPE_BYTES:
		return pbjson_bytes_json(member);
	case PROTOBUF_C_TYPE_MESSAGE: {
		const ProtobufCMessage *sub =
		    *(ProtobufCMessage *const *) member;

		return sub != NULL ? pbjson_message_json(p, sub)
		                   : json_object_new_object();
	}
	}
	return NULL;
}

/* The text of a map key of FIELD's type held at MEMBER: the string itself,
 * or TEXT filled in. */
static const char *
pbjson_map_key_text(const ProtobufCFieldDescriptor *field, const void *member,
    char *text, size_t len)
{
	switch (field->type) {
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(char *const *) member;

		return s != NULL ? s : "";
	}
	case PROTOBUF_C_TYPE_BOOL:
		return *(const protobuf_c_boolean *) member ? "true" : "false";
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		snprintf(text, len, "%" PRId32, *(const int32_t *) member);
		return text;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		snprintf(text, len, "%" PRIu32, *(const uint32_t *) member);
		return text;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		snprintf(text, len, "%" PRId64, *(const int64_t *) member);
		return text;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		snprintf(text, len, "%" PRIu64, *(const uint64_t *) member);
		return text;
	default:
		/* protoc allows no other key type. */
		snprintf(text, len, "?");
		return text;
	}
}

/* Repeated FIELD of MESSAGE (of type DESC) as a JSON array, or as an
 * object when it is a map. */
static json_object *
pbjson_repeated_json(struct pbjson_printer *p,
    const ProtobufCMessageDescriptor       *desc,
    const ProtobufCFieldDescriptor *field, const ProtobufCMessage *message)
{
	size_t      count = *(const size_t *) ((const char *) message +
            field->quantifier_offset);
	const char *array =
	    *(char *const *) ((const char *) message + field->offset);
	const ProtobufCMessageDescriptor *entry_desc =
	    pbjson_map_entry(desc, field);
	size_t       size = pbjson_element_size(field->type);
	json_object *out  = entry_desc != NULL ? json_object_new_object()
	                                       : json_object_new_array();

	if (out == NULL) {
		return NULL;
	}
	for (size_t i = 0; i < count; i++) {
		const void  *element = array + i * size;
		json_object *value;
		int          rv;
		size_t       saved;

		if (entry_desc == NULL) {
			saved = pbjson_print_path_push(p, NULL, i);
			value = pbjson_value_json(p, field, element);
			pbjson_print_path_pop(p, saved);
			rv = value != NULL ? json_object_array_add(out, value)
			                   : -1;
		} else {
			const ProtobufCMessage *entry =
			    *(ProtobufCMessage *const *) element;
			const ProtobufCFieldDescriptor *key_field =
			    &entry_desc->fields[0];
			const ProtobufCFieldDescriptor *value_field =
			    &entry_desc->fields[1];
			char        key_text[32];
			const char *key;

			if (entry == NULL) {
				continue;
			}
			key   = pbjson_map_key_text(key_field,
			      (const char *) entry + key_field->offset, key_text,
			      sizeof(key_text));
			saved = pbjson_print_path_push(p, NULL, i);
			if (key_field->type == PROTOBUF_C_TYPE_STRING &&
			    !pbjson_valid_utf8(
			        (const unsigned char *) key, strlen(key))) {
				value = pbjson_string_json(p, key);
			} else {
				value = pbjson_value_json(p, value_field,
				    (const char *) entry +
				        value_field->offset);
			}
			pbjson_print_path_pop(p, saved);
			rv = value != NULL
			    ? json_object_object_add(out, key, value)
			    : -1;
		}
		if (rv != 0) {
			json_object_put(value);
			json_object_put(out);
			return NULL;
		}
	}
	return out;
}

/* MESSAGE as a JSON object; NULL when out of memory or refused. */
static json_object *
pbjson_message_json(struct pbjson_printer *p, const ProtobufCMessage *message)
{
	const ProtobufCMessageDescriptor *desc = message->descriptor;
	json_object                      *out  = json_object_new_object();

	if (out == NULL) {
		return NULL;
	}
	for (unsigned i = 0; i < desc->n_fields; i++) {
		const ProtobufCFieldDescriptor *field = &desc->fields[i];
		size_t                          len = strlen(field->name) + 1;
		char                            small[PBJSON_NAME_SMALL];
		char                           *name;
		json_object                    *value;
		int                             rv;
		size_t                          saved;

		if (!pbjson_field_present(message, field, p->emit_defaults)) {
			continue;
		}
		saved = pbjson_print_path_push(p, field->name, 0);
		value = field->label == PROTOBUF_C_LABEL_REPEATED
		    ? pbjson_repeated_json(p, desc, field, message)
		    : pbjson_value_json(
		          p, field, (const char *) message + field->offset);
		pbjson_print_path_pop(p, saved);
		name = len <= sizeof(small) ? small : malloc(len);
		if (value == NULL || name == NULL) {
			if (name != small) {
				free(name);
			}
			json_object_put(value);
			json_object_put(out);
			return NULL;
		}
		pbjson_json_name(field->name, name);
		rv = json_object_object_add(out, name, value);
		if (name != small) {
			free(name);
		}
		if (rv != 0) {
			json_object_put(value);
			json_object_put(out);
			return NULL;
		}
	}
	return out;
}

/* Appends TEXT to PB; false when out of memory. */
static bool
pbjson_append(struct printbuf *pb, const char *text)
{
	return printbuf_memappend(pb, text, (int) strlen(text)) >= 0;
}

/* Appends a newline and the indentation of DEPTH when PRETTY. */
static bool
pbjson_newline(struct printbuf *pb, bool pretty, int depth)
{
	return !pretty ||
	    (pbjson_append(pb, "\n") &&
	        (depth == 0 || printbuf_memset(pb, -1, ' ', 2 * depth) >= 0));
}

/* Appends KEY as a quoted, escaped JSON string. */
static bool
pbjson_write_key(struct printbuf *pb, const char *key)
{
	json_object *string = json_object_new_string(key);
	bool         ok;

	if (string == NULL) {
		return false;
	}
	ok = pbjson_append(pb,
	    json_object_to_json_string_ext(string,
	        JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(string);
	return ok;
}

/* Appends VALUE at nesting DEPTH: on one line, or two spaces per level. */
static bool
pbjson_write(struct printbuf *pb, json_object *value, bool pretty, int depth)
{
	bool first = true;

	switch (json_object_get_type(value)) {
	case json_type_object: {
		if (json_object_object_length(value) == 0) {
			return pbjson_append(pb, "{}");
		}
		if (!pbjson_append(pb, "{")) {
			return false;
		}
		json_object_object_foreach(value, key, member)
		{
			if ((!first && !pbjson_append(pb, ",")) ||
			    !pbjson_newline(pb, pretty, depth + 1) ||
			    !pbjson_write_key(pb, key) ||
			    !pbjson_append(pb, pretty ? ": " : ":") ||
			    !pbjson_write(pb, member, pretty, depth + 1)) {
				return false;
			}
			first = false;
		}
		return pbjson_newline(pb, pretty, depth) &&
		    pbjson_append(pb, "}");
	}
	case json_type_array: {
		size_t n = json_object_array_length(value);

		if (n == 0) {
			return pbjson_append(pb, "[]");
		}
		if (!pbjson_append(pb, "[")) {
			return false;
		}
		for (size_t i = 0; i < n; i++) {
			if ((i > 0 && !pbjson_append(pb, ",")) ||
			    !pbjson_newline(pb, pretty, depth + 1) ||
			    !pbjson_write(pb,
			        json_object_array_get_idx(value, i), pretty,
			        depth + 1)) {
				return false;
			}
		}
		return pbjson_newline(pb, pretty, depth) &&
		    pbjson_append(pb, "]");
	}
	default:
		return pbjson_append(pb,
		    json_object_to_json_string_ext(value,
		        JSON_C_TO_STRING_PLAIN |
		            JSON_C_TO_STRING_NOSLASHESCAPE));
	}
}

char *
zos_pbjson_print(const ProtobufCMessage *message, bool pretty, char *error,
    size_t error_len)
{
	const struct zos_pbjson_print_opts opts = { .pretty = pretty };

	return zos_pbjson_print_ext(message, &opts, error, error_len);
}

char *
zos_pbjson_print_ext(const ProtobufCMessage *message,
    const struct zos_pbjson_print_opts *opts, char *error, size_t error_len)
{
	struct pbjson_printer p = {
		.emit_defaults = opts->emit_defaults,
		.error         = error,
		.error_len     = error_len,
	};
	bool             pretty = opts->pretty;
	json_object     *root;
	struct printbuf *pb;
	char            *text = NULL;

	if (error != NULL && error_len > 0) {
		error[0] = '\0';
	}
	root = pbjson_message_json(&p, message);
	pb   = printbuf_new();
	if (root != NULL && pb != NULL && pbjson_write(pb, root, pretty, 0)) {
		text = malloc((size_t) pb->bpos + 1);
		if (text != NULL) {
			memcpy(text, pb->buf, (size_t) pb->bpos);
			text[pb->bpos] = '\0';
		}
	}
	if (pb != NULL) {
		printbuf_free(pb);
	}
	json_object_put(root);
	if (text == NULL && !p.refused && error != NULL && error_len > 0) {
		snprintf(error, error_len, "out of memory");
	}
	return text;
}
