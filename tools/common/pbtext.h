/*
 * protobuf-c messages in the protobuf text format, as `protoc --decode`
 * prints them: what `zosctl call --format text` writes.
 *
 * One field per line, "name: value", nested messages and map entries as
 * "name {" ... "}" indented by two spaces, repeated fields as one line per
 * element, in field-number order. Strings and bytes are quoted and escaped
 * as protoc's CEscape does: \n \r \t \" \' \\ and every other byte below
 * 0x20 or from 0x7f up as three octal digits, so that the output is
 * printable ASCII whatever the peer sent. Enums by name (the number when
 * unknown), floats the shortest that reads back ("inf", "-inf", "nan" as
 * protoc), 64-bit integers as numbers. Unknown fields are not printed.
 */
#ifndef ZOS_TOOLS_PBTEXT_H
#define ZOS_TOOLS_PBTEXT_H

#include <stdbool.h>
#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

/*
 * MESSAGE as text format (each line ending in a newline; the empty
 * message is ""). With EMIT_DEFAULTS, scalar fields without presence print
 * at their default too. Returns a malloc'd string, or NULL with ERROR set
 * (out of memory).
 */
char *zos_pbtext_print(const ProtobufCMessage *message, bool emit_defaults,
    char *error, size_t error_len);

#endif /* ZOS_TOOLS_PBTEXT_H */
