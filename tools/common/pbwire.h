/*
 * What decoding a packed message would cost, read off its bytes before
 * protobuf-c unpacks it: a tool facing a server it does not trust counts
 * first and unpacks only what it is willing to hold.
 */
#ifndef ZOS_TOOLS_PBWIRE_H
#define ZOS_TOOLS_PBWIRE_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

/*
 * The field occurrences of the packed DESC message in BUF (LEN bytes),
 * every element of a packed repeated field and of every sub-message of
 * DESC's known MESSAGE fields included, counted up to a little over LIMIT
 * (the walk stops there). Unknown fields count once each. Malformed bytes
 * stop the walk; protobuf-c's unpack then reports them.
 */
size_t zos_pbwire_count(const ProtobufCMessageDescriptor *desc,
    const uint8_t *buf, size_t len, size_t limit);

#endif /* ZOS_TOOLS_PBWIRE_H */
