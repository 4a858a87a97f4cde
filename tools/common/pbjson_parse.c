/*
 * proto3 JSON to protobuf-c messages: zos_pbjson_parse (see pbjson.h).
 *
 * json-c does the JSON text: its tokener (strict, with UTF-8 checked)
 * turns the text into a tree of json_objects, which this file walks along
 * the message's descriptors, keeping the path of the field it is in
 * ("skills[2].level") so that every error names it.
 *
 * A parsed message is laid out exactly as protobuf_c_message_unpack would
 * lay it out: every string, bytes buffer, repeated array and sub-message is
 * its own malloc'd block, so protobuf_c_message_free_unpacked(m, NULL)
 * frees it. The message stays consistent for that free at every step (an
 * array's count grows only over initialised elements, a sub-message is
 * linked in before it is filled, a oneof's case is set before its member),
 * so an error anywhere frees the partial message whole and leaks nothing.
 * The members of one oneof share the offset of its case word, which holds
 * the number of the member set. Field names are matched by their proto
 * name or their JSON name, and maps are found, as pbjson_descriptor.h
 * derives them.
 *
 * json-c keeps the last value of a key given twice in one object; the
 * text is checked for that first (pbjson_keys.h) and refused, as proto3
 * JSON parsers do.
 *
 * json-c 0.16 clamps an integer literal beyond 64 bits to the nearest
 * 64-bit value instead of failing; 64-bit values written as strings, the
 * canonical form that print writes, are range-checked exactly.
 */
#include "pbjson.h"

#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "pbjson_base64.h"
#include "pbjson_descriptor.h"
#include "pbjson_keys.h"
#include "zrpc/descriptor.h"

/* Longest field path kept for error messages ("skills[2].level"). */
#define PBJSON_PATH_MAX 512

/* State of one parse: where in the document it is, where errors go. */
struct pbjson_parser {
	char   path[PBJSON_PATH_MAX];
	size_t path_len;
	char  *error;
	size_t error_len;
};

/* The result of reading an integer from text. */
enum pbjson_integer {
	PBJSON_INTEGER_OK,
	PBJSON_INTEGER_NOT,      /* not a decimal integer */
	PBJSON_INTEGER_OVERFLOW, /* more than 64 bits */
};

static int pbjson_fail(struct pbjson_parser *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Sets the parse error to "PATH: message" (or the message alone at the top)
 * and returns -1. */
static int
pbjson_fail(struct pbjson_parser *p, const char *fmt, ...)
{
	char    message[384];
	va_list ap;

	if (p->error == NULL || p->error_len == 0) {
		return -1;
	}
	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	if (p->path_len > 0) {
		snprintf(p->error, p->error_len, "%s: %s", p->path, message);
	} else {
		snprintf(p->error, p->error_len, "%s", message);
	}
	return -1;
}

static int
pbjson_out_of_memory(struct pbjson_parser *p)
{
	return pbjson_fail(p, "out of memory");
}

static size_t pbjson_path_push(struct pbjson_parser *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Appends a segment to the path; returns the length to restore. */
static size_t
pbjson_path_push(struct pbjson_parser *p, const char *fmt, ...)
{
	size_t  saved = p->path_len;
	va_list ap;
	int     n;

	va_start(ap, fmt);
	n = vsnprintf(p->path + saved, sizeof(p->path) - saved, fmt, ap);
	va_end(ap);
	if (n < 0) {
		p->path[saved] = '\0';
	} else if ((size_t) n >= sizeof(p->path) - saved) {
		p->path_len = sizeof(p->path) - 1;
	} else {
		p->path_len = saved + (size_t) n;
	}
	return saved;
}

/* Pushes a field name: "name" at the top, ".name" below it. */
static size_t
pbjson_path_push_field(struct pbjson_parser *p, const char *name)
{
	return pbjson_path_push(p, "%s%s", p->path_len > 0 ? "." : "", name);
}

static void
pbjson_path_pop(struct pbjson_parser *p, size_t saved)
{
	p->path_len    = saved;
	p->path[saved] = '\0';
}

/* How a JSON value is named in errors ("got a string"). */
static const char *
pbjson_json_type_name(json_object *value)
{
	switch (json_object_get_type(value)) {
	case json_type_null:
		return "null";
	case json_type_boolean:
		return "a boolean";
	case json_type_double:
	case json_type_int:
		return "a number";
	case json_type_object:
		return "an object";
	case json_type_array:
		return "an array";
	case json_type_string:
		return "a string";
	}
	return "a value";
}

/* The .proto name of a scalar type, for errors. */
static const char *
pbjson_type_name(ProtobufCType type)
{
	switch (type) {
	case PROTOBUF_C_TYPE_INT32:
		return "int32";
	case PROTOBUF_C_TYPE_SINT32:
		return "sint32";
	case PROTOBUF_C_TYPE_SFIXED32:
		return "sfixed32";
	case PROTOBUF_C_TYPE_INT64:
		return "int64";
	case PROTOBUF_C_TYPE_SINT64:
		return "sint64";
	case PROTOBUF_C_TYPE_SFIXED64:
		return "sfixed64";
	case PROTOBUF_C_TYPE_UINT32:
		return "uint32";
	case PROTOBUF_C_TYPE_FIXED32:
		return "fixed32";
	case PROTOBUF_C_TYPE_UINT64:
		return "uint64";
	case PROTOBUF_C_TYPE_FIXED64:
		return "fixed64";
	case PROTOBUF_C_TYPE_FLOAT:
		return "float";
	case PROTOBUF_C_TYPE_DOUBLE:
		return "double";
	case PROTOBUF_C_TYPE_BOOL:
		return "bool";
	case PROTOBUF_C_TYPE_ENUM:
		return "enum";
	case PROTOBUF_C_TYPE_STRING:
		return "string";
	case PROTOBUF_C_TYPE_BYTES:
		return "bytes";
	case PROTOBUF_C_TYPE_MESSAGE:
		return "message";
	}
	return "value";
}

/* A new message of type DESC at its defaults, or NULL (out of memory). */
static ProtobufCMessage *
pbjson_message_new(const ProtobufCMessageDescriptor *desc)
{
	ProtobufCMessage *m = malloc(desc->sizeof_message);

	if (m != NULL) {
		/* Not protobuf_c_message_init: a descriptor built at run time
		 * (zrpc/descriptor.h) has no message_init. */
		zrpc_message_init(desc, m);
	}
	return m;
}

/* Reads TEXT, a whole decimal integer with an optional '-'. */
static enum pbjson_integer
pbjson_text_integer(const char *text, bool *negative, uint64_t *magnitude)
{
	uint64_t v = 0;

	*negative = text[0] == '-';
	if (*negative) {
		text++;
	}
	if (*text < '0' || *text > '9') {
		return PBJSON_INTEGER_NOT;
	}
	for (; *text != '\0'; text++) {
		unsigned digit;

		if (*text < '0' || *text > '9') {
			return PBJSON_INTEGER_NOT;
		}
		digit = (unsigned) (*text - '0');
		if (v > (UINT64_MAX - digit) / 10) {
			/* Still say "not an integer" for
			 * "99999999999999999999x".
			 */
			while (*text >= '0' && *text <= '9') {
				text++;
			}
			return *text == '\0' ? PBJSON_INTEGER_OVERFLOW
			                     : PBJSON_INTEGER_NOT;
		}
		v = v * 10 + digit;
	}
	*magnitude = v;
	return PBJSON_INTEGER_OK;
}

/* Reads TEXT as a JSON number ("1.5e3"): only the characters of one, and
 * all of TEXT. */
static bool
pbjson_text_number(const char *text, double *out)
{
	char *end;

	if (text[0] == '\0' || text[strspn(text, "0123456789+-.eE")] != '\0') {
		return false;
	}
	*out = strtod(text, &end);
	return end != text && *end == '\0';
}

/*
 * Reads an integer from VALUE (a JSON number without a fraction, or a
 * string holding one) as a sign and a magnitude. TYPE names the field's
 * type in errors.
 */
static int
pbjson_get_integer(struct pbjson_parser *p, json_object *value,
    ProtobufCType type, bool *negative, uint64_t *magnitude)
{
	double d;

	switch (json_object_get_type(value)) {
	case json_type_int: {
		int64_t i = json_object_get_int64(value);

		*negative  = i < 0;
		*magnitude = i < 0 ? (uint64_t) (-(i + 1)) + 1
		                   : json_object_get_uint64(value);
		return 0;
	}
	case json_type_double:
		d = json_object_get_double(value);
		break;
	case json_type_string: {
		const char *text = json_object_get_string(value);

		switch (pbjson_text_integer(text, negative, magnitude)) {
		case PBJSON_INTEGER_OK:
			return 0;
		case PBJSON_INTEGER_OVERFLOW:
			return pbjson_fail(p, "%s is out of range for %s",
			    text, pbjson_type_name(type));
		case PBJSON_INTEGER_NOT:
			break;
		}
		if (!pbjson_text_number(text, &d)) {
			return pbjson_fail(p,
			    "expected an integer (%s), got the string \"%s\"",
			    pbjson_type_name(type), text);
		}
		break;
	}
	default:
		return pbjson_fail(p, "expected an integer (%s), got %s",
		    pbjson_type_name(type), pbjson_json_type_name(value));
	}
	if (isnan(d) || d != trunc(d)) {
		return pbjson_fail(p, "expected an integer (%s), got %s",
		    pbjson_type_name(type), json_object_get_string(value));
	}
	if (!(fabs(d) < 18446744073709551616.0)) {
		return pbjson_fail(p, "%s is out of range for %s",
		    json_object_get_string(value), pbjson_type_name(type));
	}
	*negative  = d < 0;
	*magnitude = (uint64_t) fabs(d);
	return 0;
}

/* A signed integer of TYPE in [MIN, MAX] from VALUE. */
static int
pbjson_get_signed(struct pbjson_parser *p, json_object *value,
    ProtobufCType type, int64_t min, int64_t max, int64_t *out)
{
	bool     negative;
	uint64_t magnitude;

	if (pbjson_get_integer(p, value, type, &negative, &magnitude) != 0) {
		return -1;
	}
	if (magnitude == 0) {
		negative = false; /* "-0" */
	}
	if (negative ? magnitude - 1 > (uint64_t) (-(min + 1))
	             : magnitude > (uint64_t) max) {
		return pbjson_fail(p, "%s is out of range for %s",
		    json_object_get_string(value), pbjson_type_name(type));
	}
	*out = negative ? -(int64_t) (magnitude - 1) - 1 : (int64_t) magnitude;
	return 0;
}

/* An unsigned integer of TYPE up to MAX from VALUE. */
static int
pbjson_get_unsigned(struct pbjson_parser *p, json_object *value,
    ProtobufCType type, uint64_t max, uint64_t *out)
{
	bool     negative;
	uint64_t magnitude;

	if (pbjson_get_integer(p, value, type, &negative, &magnitude) != 0) {
		return -1;
	}
	if ((negative && magnitude != 0) || magnitude > max) {
		return pbjson_fail(p, "%s is out of range for %s",
		    json_object_get_string(value), pbjson_type_name(type));
	}
	*out = magnitude;
	return 0;
}

/* A float or double (SINGLE: float) from VALUE: a number, or the strings
 * "NaN", "Infinity", "-Infinity" or a number in a string. */
static int
pbjson_get_real(
    struct pbjson_parser *p, json_object *value, bool single, double *out)
{
	const char *type = single ? "float" : "double";
	const char *text;
	double      d;

	switch (json_object_get_type(value)) {
	case json_type_int: {
		int64_t i = json_object_get_int64(value);

		d = i < 0 ? (double) i
		          : (double) json_object_get_uint64(value);
		break;
	}
	case json_type_double:
		d = json_object_get_double(value);
		if (isnan(d)) {
			return pbjson_fail(p,
			    "NaN is not a JSON number; write it as the string "
			    "\"NaN\"");
		}
		if (isinf(d)) {
			return pbjson_fail(p,
			    "%s is out of range for %s (write infinities as "
			    "the strings \"Infinity\" and \"-Infinity\")",
			    json_object_get_string(value), type);
		}
		break;
	case json_type_string:
		text = json_object_get_string(value);
		if (strcmp(text, "NaN") == 0) {
			d = NAN;
		} else if (strcmp(text, "Infinity") == 0) {
			d = INFINITY;
		} else if (strcmp(text, "-Infinity") == 0) {
			d = -INFINITY;
		} else if (!pbjson_text_number(text, &d)) {
			return pbjson_fail(p,
			    "expected a number (%s), got the string \"%s\"",
			    type, text);
		} else if (isinf(d)) {
			return pbjson_fail(
			    p, "%s is out of range for %s", text, type);
		}
		break;
	default:
		return pbjson_fail(p, "expected a number (%s), got %s", type,
		    pbjson_json_type_name(value));
	}
	if (single && isfinite(d) && fabs(d) > FLT_MAX) {
		return pbjson_fail(p, "%s is out of range for float",
		    json_object_get_string(value));
	}
	*out = d;
	return 0;
}

/* An enum value of DESC from VALUE: its name, or its number. */
static int
pbjson_get_enum(struct pbjson_parser *p, const ProtobufCEnumDescriptor *desc,
    json_object *value, int *out)
{
	const ProtobufCEnumValue *known;
	int64_t                   number = 0;

	switch (json_object_get_type(value)) {
	case json_type_string:
		known = protobuf_c_enum_descriptor_get_value_by_name(
		    desc, json_object_get_string(value));
		if (known == NULL) {
			return pbjson_fail(p, "\"%s\" is not a value of %s",
			    json_object_get_string(value), desc->name);
		}
		*out = known->value;
		return 0;
	case json_type_int:
	case json_type_double:
		if (pbjson_get_signed(p, value, PROTOBUF_C_TYPE_ENUM,
		        INT32_MIN, INT32_MAX, &number) != 0) {
			return -1;
		}
		*out = (int) number;
		return 0;
	default:
		return pbjson_fail(p,
		    "expected a name or number of %s, got %s", desc->name,
		    pbjson_json_type_name(value));
	}
}

static int pbjson_parse_fields(struct pbjson_parser *p,
    const ProtobufCMessageDescriptor *desc, json_object *object,
    ProtobufCMessage *message);

/*
 * Reads VALUE (not null) as one value of FIELD's type into MEMBER, which
 * holds that type's C representation and is at its zero value.
 */
static int
pbjson_parse_value(struct pbjson_parser *p,
    const ProtobufCFieldDescriptor *field, json_object *value, void *member)
{
	int64_t  i = 0; /* set by the getters on success; zeroed for -O3 */
	uint64_t u = 0;
	double   d = 0.0;

	switch (field->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		if (pbjson_get_signed(p, value, field->type, INT32_MIN,
		        INT32_MAX, &i) != 0) {
			return -1;
		}
		*(int32_t *) member = (int32_t) i;
		return 0;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		if (pbjson_get_signed(p, value, field->type, INT64_MIN,
		        INT64_MAX, &i) != 0) {
			return -1;
		}
		*(int64_t *) member = i;
		return 0;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		if (pbjson_get_unsigned(
		        p, value, field->type, UINT32_MAX, &u) != 0) {
			return -1;
		}
		*(uint32_t *) member = (uint32_t) u;
		return 0;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		if (pbjson_get_unsigned(
		        p, value, field->type, UINT64_MAX, &u) != 0) {
			return -1;
		}
		*(uint64_t *) member = u;
		return 0;
	case PROTOBUF_C_TYPE_FLOAT:
		if (pbjson_get_real(p, value, true, &d) != 0) {
			return -1;
		}
		*(float *) member = (float) d;
		return 0;
	case PROTOBUF_C_TYPE_DOUBLE:
		if (pbjson_get_real(p, value, false, &d) != 0) {
			return -1;
		}
		*(double *) member = d;
		return 0;
	case PROTOBUF_C_TYPE_BOOL:
		if (json_object_get_type(value) != json_type_boolean) {
			return pbjson_fail(p, "expected true or false, got %s",
			    pbjson_json_type_name(value));
		}
		*(protobuf_c_boolean *) member =
		    json_object_get_boolean(value) ? 1 : 0;
		return 0;
	case PROTOBUF_C_TYPE_ENUM:
		return pbjson_get_enum(p, field->descriptor, value, member);
	case PROTOBUF_C_TYPE_STRING: {
		const char *text;
		size_t      len;
		char       *copy;

		if (json_object_get_type(value) != json_type_string) {
			return pbjson_fail(p, "expected a string, got %s",
			    pbjson_json_type_name(value));
		}
		text = json_object_get_string(value);
		len  = (size_t) json_object_get_string_len(value);
		if (memchr(text, '\0', len) != NULL) {
			return pbjson_fail(
			    p, "a string field cannot hold a NUL character");
		}
		copy = malloc(len + 1);
		if (copy == NULL) {
			return pbjson_out_of_memory(p);
		}
		memcpy(copy, text, len + 1);
		*(char **) member = copy;
		return 0;
	}
	case PROTOBUF_C_TYPE_BYTES: {
		int rv;

		if (json_object_get_type(value) != json_type_string) {
			return pbjson_fail(p,
			    "expected a base64 string (bytes), got %s",
			    pbjson_json_type_name(value));
		}
		rv = pbjson_base64_decode(json_object_get_string(value),
		    (size_t) json_object_get_string_len(value), member);
		if (rv == -2) {
			return pbjson_out_of_memory(p);
		}
		if (rv != 0) {
			return pbjson_fail(p, "\"%s\" is not base64 (bytes)",
			    json_object_get_string(value));
		}
		return 0;
	}
	case PROTOBUF_C_TYPE_MESSAGE: {
		const ProtobufCMessageDescriptor *desc = field->descriptor;
		ProtobufCMessage                 *sub;

		if (json_object_get_type(value) != json_type_object) {
			return pbjson_fail(p,
			    "expected an object (%s), got %s", desc->name,
			    pbjson_json_type_name(value));
		}
		sub = pbjson_message_new(desc);
		if (sub == NULL) {
			return pbjson_out_of_memory(p);
		}
		*(ProtobufCMessage **) member = sub;
		return pbjson_parse_fields(p, desc, value, sub);
	}
	}
	return pbjson_fail(p, "field type %d is not supported", field->type);
}

/* Reads the JSON array VALUE into repeated FIELD of MESSAGE. */
static int
pbjson_parse_repeated(struct pbjson_parser *p,
    const ProtobufCFieldDescriptor *field, json_object *value,
    ProtobufCMessage *message)
{
	size_t *count =
	    (size_t *) ((char *) message + field->quantifier_offset);
	void **array = (void **) ((char *) message + field->offset);
	size_t size  = pbjson_element_size(field->type), n;

	if (json_object_get_type(value) != json_type_array) {
		return pbjson_fail(p, "expected an array (repeated), got %s",
		    pbjson_json_type_name(value));
	}
	n = json_object_array_length(value);
	if (n == 0) {
		return 0;
	}
	*array = calloc(n, size);
	if (*array == NULL) {
		return pbjson_out_of_memory(p);
	}
	for (size_t i = 0; i < n; i++) {
		json_object *element = json_object_array_get_idx(value, i);
		size_t       saved   = pbjson_path_push(p, "[%zu]", i);

		if (element == NULL) {
			return pbjson_fail(
			    p, "null is not allowed in a repeated field");
		}
		/* Counted first: a zero element frees cleanly. */
		(*count)++;
		if (pbjson_parse_value(
		        p, field, element, (char *) *array + i * size) != 0) {
			return -1;
		}
		pbjson_path_pop(p, saved);
	}
	return 0;
}

/* Marks FIELD of MESSAGE present when it has a has_ word. */
static void
pbjson_mark_present(
    ProtobufCMessage *message, const ProtobufCFieldDescriptor *field)
{
	if (pbjson_has_word(field)) {
		*(protobuf_c_boolean *) ((char *) message +
		    field->quantifier_offset) = 1;
	}
}

/* Reads the JSON object VALUE into map FIELD (of entry type ENTRY) of
 * MESSAGE: one entry per member, keyed by the member's name. */
static int
pbjson_parse_map(struct pbjson_parser *p,
    const ProtobufCFieldDescriptor    *field,
    const ProtobufCMessageDescriptor *entry_desc, json_object *value,
    ProtobufCMessage *message)
{
	size_t *count =
	    (size_t *) ((char *) message + field->quantifier_offset);
	ProtobufCMessage ***array =
	    (ProtobufCMessage ***) ((char *) message + field->offset);
	const ProtobufCFieldDescriptor *key_field   = &entry_desc->fields[0];
	const ProtobufCFieldDescriptor *value_field = &entry_desc->fields[1];
	size_t                          n;

	if (json_object_get_type(value) != json_type_object) {
		return pbjson_fail(p, "expected an object (a map), got %s",
		    pbjson_json_type_name(value));
	}
	n = (size_t) json_object_object_length(value);
	if (n == 0) {
		return 0;
	}
	*array = calloc(n, sizeof(**array));
	if (*array == NULL) {
		return pbjson_out_of_memory(p);
	}
	json_object_object_foreach(value, key, element)
	{
		ProtobufCMessage *entry = pbjson_message_new(entry_desc);
		size_t            saved;
		json_object      *key_json;
		int               rv;

		if (entry == NULL) {
			return pbjson_out_of_memory(p);
		}
		(*array)[(*count)++] = entry;
		saved = key_field->type == PROTOBUF_C_TYPE_STRING
		    ? pbjson_path_push(p, "[\"%s\"]", key)
		    : pbjson_path_push(p, "[%s]", key);
		if (key_field->type == PROTOBUF_C_TYPE_BOOL) {
			if (strcmp(key, "true") != 0 &&
			    strcmp(key, "false") != 0) {
				return pbjson_fail(p,
				    "a bool map key is \"true\" or "
				    "\"false\"");
			}
			*(protobuf_c_boolean *) ((char *) entry +
			    key_field->offset) = key[0] == 't';
		} else {
			/* Every other key type reads from a string, as a
			 * JSON string value would. */
			key_json = json_object_new_string(key);
			if (key_json == NULL) {
				return pbjson_out_of_memory(p);
			}
			rv = pbjson_parse_value(p, key_field, key_json,
			    (char *) entry + key_field->offset);
			json_object_put(key_json);
			if (rv != 0) {
				return -1;
			}
		}
		pbjson_mark_present(entry, key_field);
		if (element == NULL) {
			return pbjson_fail(p, "a map value cannot be null");
		}
		if (pbjson_parse_value(p, value_field, element,
		        (char *) entry + value_field->offset) != 0) {
			return -1;
		}
		pbjson_mark_present(entry, value_field);
		pbjson_path_pop(p, saved);
	}
	return 0;
}

/* Reads VALUE (not null) into FIELD of MESSAGE (of type DESC). */
static int
pbjson_parse_field(struct pbjson_parser *p,
    const ProtobufCMessageDescriptor    *desc,
    const ProtobufCFieldDescriptor *field, json_object *value,
    ProtobufCMessage *message)
{
	const ProtobufCMessageDescriptor *entry;

	if (field->label == PROTOBUF_C_LABEL_REPEATED) {
		entry = pbjson_map_entry(desc, field);
		return entry != NULL
		    ? pbjson_parse_map(p, field, entry, value, message)
		    : pbjson_parse_repeated(p, field, value, message);
	}
	if ((field->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) != 0) {
		uint32_t *which =
		    (uint32_t *) ((char *) message + field->quantifier_offset);

		if (*which != 0 && *which != field->id) {
			const ProtobufCFieldDescriptor *other =
			    protobuf_c_message_descriptor_get_field(
			        desc, *which);

			return pbjson_fail(p,
			    "only one field of a oneof may be set, and \"%s\" "
			    "is set too",
			    other != NULL ? other->name : "another");
		}
		/* Set first: the member is freed with the message from now
		 * on, and it is still zero. */
		*which = field->id;
	}
	if (pbjson_parse_value(
	        p, field, value, (char *) message + field->offset) != 0) {
		return -1;
	}
	pbjson_mark_present(message, field);
	return 0;
}

/* The field of DESC named KEY: by its proto name or its JSON name. */
static const ProtobufCFieldDescriptor *
pbjson_find_field(const ProtobufCMessageDescriptor *desc, const char *key)
{
	const ProtobufCFieldDescriptor *field =
	    protobuf_c_message_descriptor_get_field_by_name(desc, key);

	for (unsigned i = 0; field == NULL && i < desc->n_fields; i++) {
		const char *rest =
		    pbjson_camel_match(desc->fields[i].name, false, key);

		if (rest != NULL && *rest == '\0') {
			field = &desc->fields[i];
		}
	}
	return field;
}

/* Reads the members of the JSON object OBJECT into MESSAGE (of type DESC,
 * at its defaults). */
static int
pbjson_parse_fields(struct pbjson_parser *p,
    const ProtobufCMessageDescriptor *desc, json_object *object,
    ProtobufCMessage *message)
{
	/* The key that set each field, to refuse a second one. */
	const char **seen = calloc(desc->n_fields + 1, sizeof(*seen));
	int          rv   = 0;

	if (seen == NULL) {
		return pbjson_out_of_memory(p);
	}
	json_object_object_foreach(object, key, value)
	{
		const ProtobufCFieldDescriptor *field =
		    pbjson_find_field(desc, key);
		size_t saved = pbjson_path_push_field(p, key);

		if (field == NULL) {
			rv = pbjson_fail(p, "unknown field of %s", desc->name);
			goto out;
		}
		if (seen[field - desc->fields] != NULL) {
			rv =
			    pbjson_fail(p, "field given twice (as \"%s\" too)",
			        seen[field - desc->fields]);
			goto out;
		}
		seen[field - desc->fields] = key;
		/* null is the field's default value. */
		if (value != NULL) {
			rv =
			    pbjson_parse_field(p, desc, field, value, message);
			if (rv != 0) {
				goto out;
			}
		}
		pbjson_path_pop(p, saved);
	}
	for (unsigned i = 0; i < desc->n_fields; i++) {
		if (desc->fields[i].label == PROTOBUF_C_LABEL_REQUIRED &&
		    seen[i] == NULL) {
			size_t saved =
			    pbjson_path_push_field(p, desc->fields[i].name);

			rv = pbjson_fail(
			    p, "required field of %s is missing", desc->name);
			pbjson_path_pop(p, saved);
			goto out;
		}
	}
out:
	free(seen);
	return rv;
}

/* Line and column (from 1) of byte OFFSET of TEXT. */
static void
pbjson_position(
    const char *text, size_t offset, unsigned *line, unsigned *column)
{
	*line   = 1;
	*column = 1;
	for (size_t i = 0; i < offset && text[i] != '\0'; i++) {
		if (text[i] == '\n') {
			(*line)++;
			*column = 1;
		} else {
			(*column)++;
		}
	}
}

ProtobufCMessage *
zos_pbjson_parse(const ProtobufCMessageDescriptor *desc, const char *json,
    char *error, size_t error_len)
{
	struct pbjson_parser    p = { .error = error, .error_len = error_len };
	size_t                  len = strlen(json), end;
	json_tokener           *tok;
	json_object            *root;
	enum json_tokener_error jerr;
	ProtobufCMessage       *message;
	unsigned                line, column;
	char                    key[128];

	if (error != NULL && error_len > 0) {
		error[0] = '\0';
	}
	if (json[strspn(json, " \t\r\n")] == '\0') {
		message = pbjson_message_new(desc);
		if (message == NULL) {
			pbjson_out_of_memory(&p);
		}
		return message;
	}
	if (len >= INT_MAX) {
		pbjson_fail(&p, "JSON text of %zu bytes is too long", len);
		return NULL;
	}
	tok = json_tokener_new();
	if (tok == NULL) {
		pbjson_out_of_memory(&p);
		return NULL;
	}
	json_tokener_set_flags(
	    tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	/* The terminating NUL goes in too: it ends a number or a literal. */
	root = json_tokener_parse_ex(tok, json, (int) len + 1);
	jerr = json_tokener_get_error(tok);
	end  = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (jerr != json_tokener_success) {
		if (end > len) {
			end = len;
		}
		pbjson_position(json, end, &line, &column);
		pbjson_fail(&p, "bad JSON at line %u, column %u: %s", line,
		    column, json_tokener_error_desc(jerr));
		json_object_put(root);
		return NULL;
	}
	switch (pbjson_duplicate_key(json, len, &end, key, sizeof(key))) {
	case PBJSON_KEYS_UNIQUE:
		break;
	case PBJSON_KEYS_DUPLICATE:
		pbjson_position(json, end, &line, &column);
		pbjson_fail(&p,
		    "bad JSON at line %u, column %u: key \"%s\" given twice "
		    "in one object",
		    line, column, key);
		json_object_put(root);
		return NULL;
	case PBJSON_KEYS_OUT_OF_MEMORY:
		pbjson_out_of_memory(&p);
		json_object_put(root);
		return NULL;
	}
	if (json_object_get_type(root) != json_type_object) {
		pbjson_fail(&p, "expected a JSON object (%s), got %s",
		    desc->name, pbjson_json_type_name(root));
		json_object_put(root);
		return NULL;
	}
	message = pbjson_message_new(desc);
	if (message == NULL) {
		pbjson_out_of_memory(&p);
	} else if (pbjson_parse_fields(&p, desc, root, message) != 0) {
		protobuf_c_message_free_unpacked(message, NULL);
		message = NULL;
	}
	json_object_put(root);
	return message;
}
