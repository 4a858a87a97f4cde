/*
 * The wire check; see wire_check.h for what it checks and why on the
 * packed bytes.
 *
 * The walk follows the protobuf encoding: a varint tag (field number << 3
 * | wire type), then a varint, 8 bytes, a varint length and that many
 * bytes, or 4 bytes. Only length-delimited occurrences of known STRING
 * and MESSAGE fields are looked into; a known field sent with another wire
 * type is skipped like an unknown one (protobuf-c's unpack decides whether
 * that is acceptable). Strings are scanned ASCII-first, which is the
 * common case and a tight loop.
 */
#include "wire_check.h"

enum {
	WIRE_VARINT = 0,
	WIRE_FIXED64,
	WIRE_LENGTH,
	WIRE_START_GROUP,
	WIRE_END_GROUP,
	WIRE_FIXED32,
};

/* The largest field number protobuf allows (2^29 - 1). */
#define WIRE_FIELD_NUMBER_MAX 536870911u

struct wire_check_walk {
	const uint8_t          *start; /* the bytes checked, for offsets */
	struct zrpc_wire_fault *fault;
};

static enum zrpc_wire_fault_kind
wire_check_fail(struct wire_check_walk *walk, enum zrpc_wire_fault_kind kind,
    const ProtobufCMessageDescriptor *desc,
    const ProtobufCFieldDescriptor *field, const uint8_t *at)
{
	walk->fault->kind    = kind;
	walk->fault->message = desc;
	walk->fault->field   = field;
	walk->fault->offset  = (size_t) (at - walk->start);
	return kind;
}

/*
 * Reads a varint at *P (before END) into *VALUE and advances *P; false
 * when it is truncated or longer than 10 bytes.
 */
static bool
wire_check_varint(const uint8_t **p, const uint8_t *end, uint64_t *value)
{
	const uint8_t *q = *p;
	uint64_t       v = 0;

	for (unsigned shift = 0; shift < 70; shift += 7) {
		if (q == end) {
			return false;
		}
		v |= (uint64_t) (*q & 0x7f) << shift;
		if ((*q++ & 0x80) == 0) {
			*value = v;
			*p     = q;
			return true;
		}
	}
	return false;
}

/*
 * Checks the string at [P, END): ZRPC_WIRE_OK, or ZRPC_WIRE_NUL or
 * ZRPC_WIRE_INVALID_UTF8 with *AT at the offending byte.
 */
static enum zrpc_wire_fault_kind
wire_check_utf8(const uint8_t *p, const uint8_t *end, const uint8_t **at)
{
	while (p < end) {
		uint8_t  c = *p;
		uint8_t  lo, hi;
		unsigned n;

		if (c >= 0x01 && c < 0x80) {
			p++;
			continue;
		}
		*at = p;
		if (c == 0x00) {
			return ZRPC_WIRE_NUL;
		}
		/* The second byte's range excludes overlong forms, the
		 * surrogates (ED A0..BF) and code points above U+10FFFF. */
		lo = 0x80;
		hi = 0xbf;
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
		} else if (c >= 0xe0 && c <= 0xef) {
			n  = 2;
			lo = c == 0xe0 ? 0xa0 : 0x80;
			hi = c == 0xed ? 0x9f : 0xbf;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n  = 3;
			lo = c == 0xf0 ? 0x90 : 0x80;
			hi = c == 0xf4 ? 0x8f : 0xbf;
		} else {
			return ZRPC_WIRE_INVALID_UTF8;
		}
		if ((size_t) (end - p) <= n || p[1] < lo || p[1] > hi) {
			return ZRPC_WIRE_INVALID_UTF8;
		}
		for (unsigned i = 2; i <= n; i++) {
			if ((p[i] & 0xc0) != 0x80) {
				return ZRPC_WIRE_INVALID_UTF8;
			}
		}
		p += n + 1;
	}
	return ZRPC_WIRE_OK;
}

/* Walks the packed DESC at [P, END), DEPTH messages deep. */
static enum zrpc_wire_fault_kind
wire_check_message(struct wire_check_walk *walk,
    const ProtobufCMessageDescriptor *desc, const uint8_t *p,
    const uint8_t *end, unsigned depth)
{
	if (depth > ZRPC_WIRE_CHECK_DEPTH_MAX) {
		return wire_check_fail(
		    walk, ZRPC_WIRE_TOO_DEEP, desc, NULL, p);
	}
	while (p < end) {
		const uint8_t                  *tag_at = p;
		const ProtobufCFieldDescriptor *field;
		uint64_t                        tag, len;
		enum zrpc_wire_fault_kind       kind;
		const uint8_t                  *bad;

		if (!wire_check_varint(&p, end, &tag) || (tag >> 3) == 0 ||
		    (tag >> 3) > WIRE_FIELD_NUMBER_MAX) {
			return wire_check_fail(
			    walk, ZRPC_WIRE_MALFORMED, desc, NULL, tag_at);
		}
		switch (tag & 7) {
		case WIRE_VARINT:
			if (!wire_check_varint(&p, end, &len)) {
				return wire_check_fail(walk,
				    ZRPC_WIRE_MALFORMED, desc, NULL, tag_at);
			}
			continue;
		case WIRE_FIXED64:
			len = 8;
			break;
		case WIRE_FIXED32:
			len = 4;
			break;
		case WIRE_LENGTH:
			if (!wire_check_varint(&p, end, &len)) {
				return wire_check_fail(walk,
				    ZRPC_WIRE_MALFORMED, desc, NULL, tag_at);
			}
			break;
		default: /* groups (protobuf-c refuses them), 6, 7 */
			return wire_check_fail(
			    walk, ZRPC_WIRE_MALFORMED, desc, NULL, tag_at);
		}
		if (len > (uint64_t) (end - p)) {
			return wire_check_fail(
			    walk, ZRPC_WIRE_MALFORMED, desc, NULL, tag_at);
		}
		if ((tag & 7) == WIRE_LENGTH &&
		    (field = protobuf_c_message_descriptor_get_field(
		         desc, (unsigned) (tag >> 3))) != NULL) {
			if (field->type == PROTOBUF_C_TYPE_STRING) {
				kind = wire_check_utf8(p, p + len, &bad);
				if (kind != ZRPC_WIRE_OK) {
					return wire_check_fail(
					    walk, kind, desc, field, bad);
				}
			} else if (field->type == PROTOBUF_C_TYPE_MESSAGE) {
				kind = wire_check_message(walk,
				    field->descriptor, p, p + len, depth + 1);
				if (kind != ZRPC_WIRE_OK) {
					return kind;
				}
			}
		}
		p += len;
	}
	return ZRPC_WIRE_OK;
}

enum zrpc_wire_fault_kind
zrpc_wire_check(const ProtobufCMessageDescriptor *desc, const uint8_t *data,
    size_t len, struct zrpc_wire_fault *fault)
{
	struct wire_check_walk walk = { .start = data, .fault = fault };

	fault->kind    = ZRPC_WIRE_OK;
	fault->message = desc;
	fault->field   = NULL;
	fault->offset  = 0;
	if (len == 0) {
		return ZRPC_WIRE_OK;
	}
	return wire_check_message(&walk, desc, data, data + len, 0);
}

bool
zrpc_wire_count_field(const uint8_t *data, size_t len, uint32_t field_number,
    size_t max_count, size_t max_bytes, size_t *count, size_t *bytes)
{
	const uint8_t *p = data, *end = data + len;

	*count = 0;
	*bytes = 0;
	while (p < end) {
		uint64_t tag, n;

		if (!wire_check_varint(&p, end, &tag)) {
			return false;
		}
		switch (tag & 7) {
		case WIRE_VARINT:
			if (!wire_check_varint(&p, end, &n)) {
				return false;
			}
			continue;
		case WIRE_FIXED64:
			n = 8;
			break;
		case WIRE_FIXED32:
			n = 4;
			break;
		case WIRE_LENGTH:
			if (!wire_check_varint(&p, end, &n)) {
				return false;
			}
			break;
		default:
			return false;
		}
		if (n > (uint64_t) (end - p)) {
			return false;
		}
		if ((tag & 7) == WIRE_LENGTH && (tag >> 3) == field_number) {
			(*count)++;
			*bytes += (size_t) n;
			if (*count > max_count || *bytes > max_bytes) {
				return true;
			}
		}
		p += n;
	}
	return true;
}

zrpc_status
zrpc_wire_fault_status(const struct zrpc_wire_fault *fault)
{
	const char *message = fault->message->name;
	const char *field   = fault->field != NULL ? fault->field->name : "";

	switch (fault->kind) {
	case ZRPC_WIRE_OK:
		return zrpc_status_ok();
	case ZRPC_WIRE_TOO_DEEP:
		return zrpc_status_make(ZRPC_INVALID_ARGUMENT,
		    "messages nested more than %d deep (at %s, byte %zu)",
		    ZRPC_WIRE_CHECK_DEPTH_MAX, message, fault->offset);
	case ZRPC_WIRE_INVALID_UTF8:
		return zrpc_status_make(ZRPC_INVALID_ARGUMENT,
		    "string field %s.%s is not valid UTF-8 (byte %zu)",
		    message, field, fault->offset);
	case ZRPC_WIRE_NUL:
		return zrpc_status_make(ZRPC_INVALID_ARGUMENT,
		    "string field %s.%s holds a NUL byte (byte %zu)", message,
		    field, fault->offset);
	case ZRPC_WIRE_MALFORMED:
	default:
		return zrpc_status_make(ZRPC_INVALID_ARGUMENT,
		    "malformed %s: bad protobuf wire at byte %zu", message,
		    fault->offset);
	}
}
