/*
 * Wire check: the input hygiene protobuf-c does not do, done on the packed
 * bytes before they are unpacked.
 *
 * protobuf-c copies a string field's bytes as they come: it accepts
 * invalid UTF-8 (which proto3 forbids, and strict peers then refuse to
 * read back) and an embedded NUL silently cuts the unpacked C string short,
 * so "/a.B/C\0junk" would be read as "/a.B/C". Neither can be seen once
 * the message is unpacked, so this module walks the packed message with
 * its descriptor instead: every occurrence of a STRING field must be valid
 * UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF) and hold
 * no NUL; MESSAGE fields (map entries included: they are messages of key
 * and value) are walked in turn, at most ZRPC_WIRE_CHECK_DEPTH_MAX deep;
 * unknown fields are skipped by their wire type. The walk is one linear
 * pass over the bytes and allocates nothing, as it runs on every call.
 * Anything that is not well-formed wire (a truncated varint or length, a
 * field number 0, a group, which protobuf-c refuses too, or a reserved
 * wire type) is a fault: the check never reads past LEN.
 */
#ifndef ZRPC_WIRE_CHECK_H
#define ZRPC_WIRE_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "zrpc/status.h"

/* How deep messages may nest inside the one checked. */
#define ZRPC_WIRE_CHECK_DEPTH_MAX 64

enum zrpc_wire_fault_kind {
	ZRPC_WIRE_OK = 0,
	ZRPC_WIRE_MALFORMED,    /* not well-formed protobuf wire */
	ZRPC_WIRE_TOO_DEEP,     /* nested beyond ZRPC_WIRE_CHECK_DEPTH_MAX */
	ZRPC_WIRE_INVALID_UTF8, /* a string field is not UTF-8 */
	ZRPC_WIRE_NUL,          /* a string field holds a NUL byte */
};

/* What was wrong, and where. */
struct zrpc_wire_fault {
	enum zrpc_wire_fault_kind kind;
	/* The message being walked when the fault was found. */
	const ProtobufCMessageDescriptor *message;
	/* The string field at fault (INVALID_UTF8, NUL), else NULL. */
	const ProtobufCFieldDescriptor *field;
	/* Offset of the fault in the bytes given to zrpc_wire_check. */
	size_t offset;
};

/*
 * Checks the LEN bytes at DATA, a packed DESC, as described above. Returns
 * ZRPC_WIRE_OK, or the fault's kind with *FAULT filled in. Reads only
 * DATA[0..LEN); allocates nothing; thread-safe.
 */
enum zrpc_wire_fault_kind zrpc_wire_check(
    const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
    struct zrpc_wire_fault *fault);

/*
 * Counts the occurrences of length-delimited field FIELD_NUMBER at the top
 * level of the packed message at DATA (LEN bytes) into *COUNT, and their
 * bytes (what follows each length) into *BYTES, without looking inside
 * them or decoding anything: one pass that skips every other field by its
 * length. For caps on a repeated or map field (request metadata) that must
 * hold before the message is unpacked. Stops early, returning true, once
 * *COUNT exceeds MAX_COUNT or *BYTES exceeds MAX_BYTES; returns false for
 * bytes that are not well-formed wire (zrpc_wire_check says where).
 */
bool zrpc_wire_count_field(const uint8_t *data, size_t len,
    uint32_t field_number, size_t max_count, size_t max_bytes, size_t *count,
    size_t *bytes);

/*
 * The INVALID_ARGUMENT status for FAULT, naming the field at fault or the
 * message that is malformed; OK for ZRPC_WIRE_OK.
 */
zrpc_status zrpc_wire_fault_status(const struct zrpc_wire_fault *fault);

#endif /* ZRPC_WIRE_CHECK_H */
