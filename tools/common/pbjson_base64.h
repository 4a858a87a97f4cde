/*
 * Private to pbjson: base64, as proto3 JSON writes bytes fields (the
 * standard alphabet, padded) and reads them (either the standard or the
 * URL-safe alphabet, padding optional), as protoc's JSON parser does.
 */
#ifndef ZOS_PBJSON_BASE64_H
#define ZOS_PBJSON_BASE64_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

/*
 * Decodes base64 TEXT of LEN characters (standard or URL-safe alphabet,
 * padding optional) into OUT: OUT->data is malloc'd and the caller's, or
 * NULL when the decoded bytes are empty. Returns 0, -1 when TEXT is not
 * base64, -2 when out of memory; OUT holds nothing to free after either.
 */
int pbjson_base64_decode(
    const char *text, size_t len, ProtobufCBinaryData *out);

/*
 * Encodes the LEN bytes at DATA as standard padded base64. Returns a
 * malloc'd NUL-terminated string (the caller frees it) whose length goes
 * to *TEXT_LEN, or NULL when out of memory.
 */
char *pbjson_base64_encode(const uint8_t *data, size_t len, size_t *text_len);

#endif /* ZOS_PBJSON_BASE64_H */
