/*
 * The element count of zos_pbwire_count; see pbwire.h.
 *
 * A protobuf field occurrence is a varint tag (number << 3 | wire type)
 * then a varint, 8 bytes, 4 bytes, or a varint length and that many bytes.
 * A length-delimited occurrence of a known MESSAGE field is walked in
 * turn; one of a known repeated scalar field that is packed counts one
 * element per varint or fixed value it holds. What protobuf-c allocates
 * grows with these counts, not with the bytes: an empty sub-message is
 * two bytes on the wire and a struct of its own once unpacked.
 */
#include "pbwire.h"

#include <stdbool.h>

enum {
	PBWIRE_VARINT  = 0,
	PBWIRE_FIXED64 = 1,
	PBWIRE_LENGTH  = 2,
	PBWIRE_FIXED32 = 5,
};

/* Reads a varint at *P (before END); false when truncated or too long. */
static bool
pbwire_varint(const uint8_t **p, const uint8_t *end, uint64_t *value)
{
	uint64_t v = 0;

	for (unsigned shift = 0; shift < 70 && *p < end; shift += 7) {
		uint8_t b = *(*p)++;

		v |= (uint64_t) (b & 0x7f) << shift;
		if ((b & 0x80) == 0) {
			*value = v;
			return true;
		}
	}
	return false;
}

/* The elements of a packed repeated scalar of TYPE in LEN bytes at P. */
static size_t
pbwire_packed(ProtobufCType type, const uint8_t *p, size_t len)
{
	const uint8_t *end = p + len;
	size_t         n   = 0;
	uint64_t       ignored;

	switch (type) {
	case PROTOBUF_C_TYPE_FIXED64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_DOUBLE:
		return len / 8;
	case PROTOBUF_C_TYPE_FIXED32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_FLOAT:
		return len / 4;
	case PROTOBUF_C_TYPE_STRING:
	case PROTOBUF_C_TYPE_BYTES:
	case PROTOBUF_C_TYPE_MESSAGE:
		return 1;
	default:
		while (p < end && pbwire_varint(&p, end, &ignored)) {
			n++;
		}
		return n;
	}
}

size_t
zos_pbwire_count(const ProtobufCMessageDescriptor *desc, const uint8_t *buf,
    size_t len, size_t limit)
{
	const uint8_t *p = buf, *end = buf + len;
	size_t         n = 0;

	while (p < end && n <= limit) {
		uint64_t tag, value;

		if (!pbwire_varint(&p, end, &tag)) {
			break;
		}
		n++;
		switch (tag & 7) {
		case PBWIRE_VARINT:
			if (!pbwire_varint(&p, end, &value)) {
				return n;
			}
			continue;
		case PBWIRE_FIXED64:
		case PBWIRE_FIXED32: {
			size_t size = (tag & 7) == PBWIRE_FIXED64 ? 8 : 4;

			if ((size_t) (end - p) < size) {
				return n;
			}
			p += size;
			continue;
		}
		case PBWIRE_LENGTH:
			break;
		default:
			return n; /* groups or garbage: unpack decides */
		}
		if (!pbwire_varint(&p, end, &value) ||
		    value > (uint64_t) (end - p)) {
			return n;
		}
		const ProtobufCFieldDescriptor *field =
		    desc == NULL || tag >> 3 > UINT32_MAX
		    ? NULL
		    : protobuf_c_message_descriptor_get_field(
		          desc, (unsigned) (tag >> 3));

		if (field != NULL && field->type == PROTOBUF_C_TYPE_MESSAGE) {
			n += zos_pbwire_count(
			    (const ProtobufCMessageDescriptor *)
			        field->descriptor,
			    p, (size_t) value, limit - n);
		} else if (field != NULL &&
		    field->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t elements =
			    pbwire_packed(field->type, p, (size_t) value);

			n += elements > 0 ? elements - 1 : 0;
		}
		p += value;
	}
	return n;
}
