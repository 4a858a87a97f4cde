/*
 * What proto3 JSON needs to know about a field that the descriptors of
 * protobuf-c 1.4 do not carry; see pbjson_descriptor.h.
 *
 * Each fact is derived the way protoc derives it. A field's JSON name is
 * its name in lowerCamelCase (protoc's ToJsonName: an underscore
 * upper-cases the next letter). A map field is a repeated field of a
 * nested message named after the field in CamelCase plus "Entry", whose
 * fields are key = 1 and value = 2 (there is no map_entry flag to read, so
 * a hand-written message of exactly that name and shape reads as a map
 * too). Presence and element sizes follow protobuf-c's own layout of a
 * generated message, which protobuf_c_message_unpack relies on as well.
 */
#include "pbjson_descriptor.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* Size of one element of a repeated field of TYPE, as protobuf-c lays
 * out its arrays (enums are int-sized in generated code). */
size_t
pbjson_element_size(ProtobufCType type)
{
	switch (type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		return sizeof(uint32_t);
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return sizeof(uint64_t);
	case PROTOBUF_C_TYPE_FLOAT:
		return sizeof(float);
	case PROTOBUF_C_TYPE_DOUBLE:
		return sizeof(double);
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_ENUM:
		return sizeof(int);
	case PROTOBUF_C_TYPE_STRING:
		return sizeof(char *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(ProtobufCMessage *);
	}
	return 0;
}

/*
 * Matches NAME, converted to camel case, against the start of TEXT: an
 * underscore is dropped and upper-cases the letter after it, and so is the
 * first letter when UPPER_FIRST. Returns what follows the match in TEXT, or
 * NULL when TEXT does not start with it.
 */
const char *
pbjson_camel_match(const char *name, bool upper_first, const char *text)
{
	bool upper = upper_first;

	for (; *name != '\0'; name++) {
		char c = *name;

		if (c == '_') {
			upper = true;
			continue;
		}
		if (upper && c >= 'a' && c <= 'z') {
			c = (char) (c - 'a' + 'A');
		}
		upper = false;
		if (*text != c) {
			return NULL;
		}
		text++;
	}
	return text;
}

/* Writes the JSON (lowerCamelCase) name of proto field NAME to OUT, which
 * holds at least strlen(NAME) + 1 bytes. */
void
pbjson_json_name(const char *name, char *out)
{
	bool upper = false;

	for (; *name != '\0'; name++) {
		char c = *name;

		if (c == '_') {
			upper = true;
			continue;
		}
		if (upper && c >= 'a' && c <= 'z') {
			c = (char) (c - 'a' + 'A');
		}
		upper  = false;
		*out++ = c;
	}
	*out = '\0';
}

/*
 * The entry message of FIELD of message DESC when FIELD is a map, else NULL:
 * protoc makes map<K, V> name a repeated field of the nested message
 * "<Field>Entry" with fields key = 1 and value = 2.
 */
const ProtobufCMessageDescriptor *
pbjson_map_entry(const ProtobufCMessageDescriptor *desc,
    const ProtobufCFieldDescriptor                *field)
{
	const ProtobufCMessageDescriptor *entry = field->descriptor;
	size_t                            len   = strlen(desc->name);
	const char                       *rest;

	if (field->label != PROTOBUF_C_LABEL_REPEATED ||
	    field->type != PROTOBUF_C_TYPE_MESSAGE || entry == NULL ||
	    entry->n_fields != 2 ||
	    strncmp(entry->name, desc->name, len) != 0 ||
	    entry->name[len] != '.') {
		return NULL;
	}
	rest = pbjson_camel_match(field->name, true, entry->name + len + 1);
	if (rest == NULL || strcmp(rest, "Entry") != 0 ||
	    entry->fields[0].id != 1 ||
	    strcmp(entry->fields[0].name, "key") != 0 ||
	    entry->fields[1].id != 2 ||
	    strcmp(entry->fields[1].name, "value") != 0 ||
	    entry->fields[0].label == PROTOBUF_C_LABEL_REPEATED ||
	    entry->fields[1].label == PROTOBUF_C_LABEL_REPEATED) {
		return NULL;
	}
	return entry;
}

/* True when FIELD keeps its presence in a has_ word (proto2 optional
 * scalars and bytes; not oneof members, strings or messages). */
bool
pbjson_has_word(const ProtobufCFieldDescriptor *field)
{
	return field->label == PROTOBUF_C_LABEL_OPTIONAL &&
	    (field->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) == 0 &&
	    field->type != PROTOBUF_C_TYPE_STRING &&
	    field->type != PROTOBUF_C_TYPE_MESSAGE;
}

/* True when FIELD of MESSAGE is printed: set, and for proto3 scalars not
 * at the default value (what protobuf-c would leave out when packing). */
bool
pbjson_field_present(const ProtobufCMessage *message,
    const ProtobufCFieldDescriptor *field, bool emit_defaults)
{
	const char *member = (const char *) message + field->offset;

	if ((field->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) != 0) {
		return *(const uint32_t *) ((const char *) message +
		           field->quantifier_offset) == field->id;
	}
	switch (field->label) {
	case PROTOBUF_C_LABEL_REQUIRED:
		return true;
	case PROTOBUF_C_LABEL_REPEATED:
		return emit_defaults ||
		    *(const size_t *) ((const char *) message +
		        field->quantifier_offset) > 0;
	case PROTOBUF_C_LABEL_OPTIONAL:
		if (!pbjson_has_word(field)) {
			const void *ptr = *(void *const *) member;

			return ptr != NULL && ptr != field->default_value;
		}
		return *(const protobuf_c_boolean *) ((const char *) message +
		           field->quantifier_offset) != 0;
	case PROTOBUF_C_LABEL_NONE:
		break;
	}
	/* A proto3 field without presence: at its default it is left out,
	 * unless the defaults are wanted; a message is there or not. */
	if (emit_defaults && field->type != PROTOBUF_C_TYPE_MESSAGE) {
		return true;
	}
	switch (field->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		return *(const uint32_t *) member != 0;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return *(const uint64_t *) member != 0;
	case PROTOBUF_C_TYPE_FLOAT:
		/* -0.0 is not the default (its bits are not zero). */
		return *(const float *) member != 0 ||
		    signbit(*(const float *) member);
	case PROTOBUF_C_TYPE_DOUBLE:
		return *(const double *) member != 0 ||
		    signbit(*(const double *) member);
	case PROTOBUF_C_TYPE_BOOL:
		return *(const protobuf_c_boolean *) member != 0;
	case PROTOBUF_C_TYPE_ENUM:
		return *(const int *) member != 0;
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(char *const *) member;

		return s != NULL && s[0] != '\0';
	}
	case PROTOBUF_C_TYPE_BYTES:
		return ((const ProtobufCBinaryData *) member)->len > 0;
	case PROTOBUF_C_TYPE_MESSAGE:
		return *(ProtobufCMessage *const *) member != NULL;
	}
	return false;
}
