/*
 * Private to pbjson: what proto3 JSON needs to know about a field that the
 * descriptors of protobuf-c 1.4 do not carry, derived the way protoc
 * derives it, for both directions (pbjson_parse.c and pbjson_print.c).
 *
 * Nothing here allocates or fails; every function is a pure function of
 * the descriptors it is given.
 */
#ifndef ZOS_PBJSON_DESCRIPTOR_H
#define ZOS_PBJSON_DESCRIPTOR_H

#include <stdbool.h>
#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

/*
 * Matches NAME, converted to camel case, against the start of TEXT: an
 * underscore is dropped and upper-cases the letter after it, and so is the
 * first letter when UPPER_FIRST. Returns what follows the match in TEXT (a
 * pointer into TEXT), or NULL when TEXT does not start with it.
 */
const char *pbjson_camel_match(
    const char *name, bool upper_first, const char *text);

/*
 * Writes the JSON (lowerCamelCase) name of proto field NAME to OUT, which
 * the caller provides and which holds at least strlen(NAME) + 1 bytes.
 */
void pbjson_json_name(const char *name, char *out);

/*
 * The entry message of FIELD of message DESC when FIELD is a map, else
 * NULL: protoc makes map<K, V> name a repeated field of the nested message
 * "<Field>Entry" with fields key = 1 and value = 2. The result points into
 * the descriptors (static, not owned).
 */
const ProtobufCMessageDescriptor *pbjson_map_entry(
    const ProtobufCMessageDescriptor *desc,
    const ProtobufCFieldDescriptor   *field);

/*
 * True when FIELD keeps its presence in a has_ word (proto2 optional
 * scalars and bytes; not oneof members, strings or messages).
 */
bool pbjson_has_word(const ProtobufCFieldDescriptor *field);

/*
 * Size of one element of a repeated field of TYPE, as protobuf-c lays out
 * its arrays (enums are int-sized in generated code); 0 for a type
 * protobuf-c 1.4 does not have.
 */
size_t pbjson_element_size(ProtobufCType type);

/*
 * True when FIELD of MESSAGE is printed (as JSON or text): set, and for
 * proto3 scalars not at the default value (what protobuf-c would leave
 * out when packing, except -0.0, whose bits are not zero). With
 * EMIT_DEFAULTS, fields without presence (proto3 scalars, repeated
 * fields, maps) are printed at their default too.
 */
bool pbjson_field_present(const ProtobufCMessage *message,
    const ProtobufCFieldDescriptor *field, bool emit_defaults);

#endif /* ZOS_PBJSON_DESCRIPTOR_H */
