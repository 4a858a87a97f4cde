/*
 * proto3 JSON for protobuf-c messages, through their descriptors: what
 * `zosctl call` reads and prints and what `zos-load --data` sends, with
 * grpcurl's habits.
 *
 * The mapping is the proto3 canonical one: field names in lowerCamelCase
 * on output (the original names are accepted on input too), enums by name
 * (numbers accepted on input), 64-bit integers as strings (numbers
 * accepted on input), bytes as standard base64, maps as objects, repeated
 * fields as arrays, fields at their default value left out of the output.
 * NaN and infinities of float and double fields are the strings "NaN",
 * "Infinity" and "-Infinity"; negative zero prints as -0.0 (not the
 * default, and "-0" would read back as the integer 0). A string that is
 * not UTF-8 is refused on output, and a key given twice in one object is
 * refused on input. Parsing is json-c's; an unknown field name,
 * a value of the wrong type or out of range is an error that names the
 * field ("skills[2].level: expected a number, got a string").
 */
#ifndef ZOS_PBJSON_H
#define ZOS_PBJSON_H

#include <stdbool.h>
#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

/*
 * Builds a message of type DESC from the JSON text JSON (an object; ""
 * or only whitespace means the empty message). Returns the message (free it
 * with protobuf_c_message_free_unpacked(m, NULL)) or NULL with ERROR set.
 */
ProtobufCMessage *zos_pbjson_parse(const ProtobufCMessageDescriptor *desc,
    const char *json, char *error, size_t error_len);

/*
 * Prints MESSAGE as proto3 JSON: on one line, or indented by two spaces
 * when PRETTY. Returns a malloc'd NUL-terminated string, or NULL with
 * ERROR set (out of memory, or a string that is not UTF-8: see
 * zos_pbjson_print_ext).
 */
char *zos_pbjson_print(const ProtobufCMessage *message, bool pretty,
    char *error, size_t error_len);

/* How zos_pbjson_print_ext prints. */
struct zos_pbjson_print_opts {
	bool pretty; /* indented by two spaces, else on one line */
	/*
	 * Fields without presence print at their default value too (0, "",
	 * false, the enum's first value, [] and {}), as grpcurl's
	 * -emit-defaults and json_format's
	 * always_print_fields_with_no_presence do; fields with presence
	 * (messages, oneof members, proto2 optionals) still print only when
	 * set.
	 */
	bool emit_defaults;
};

/*
 * zos_pbjson_print with OPTS. Returns NULL with ERROR set when out of
 * memory, or when a string field (or a map's string key) holds bytes that
 * are not UTF-8, which JSON cannot carry: ERROR then names the field
 * ("items[2].name: string field holds invalid UTF-8 ...").
 */
char *zos_pbjson_print_ext(const ProtobufCMessage *message,
    const struct zos_pbjson_print_opts *opts, char *error, size_t error_len);

#endif /* ZOS_PBJSON_H */
