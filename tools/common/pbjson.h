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
 * "Infinity" and "-Infinity". Parsing is json-c's; an unknown field name,
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
 * ERROR set (out of memory).
 */
char *zos_pbjson_print(const ProtobufCMessage *message, bool pretty,
    char *error, size_t error_len);

#endif /* ZOS_PBJSON_H */
