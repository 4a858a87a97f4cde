/*
 * The wire check (zrpc/server/wire_check.h) on hand-encoded bytes: UTF-8
 * and NULs in string fields, bytes fields left alone, nested messages and
 * map entries, unknown fields, malformed wire and nesting depth.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "wire_check.h"
#include "zrpc/v1/envelope.pb-c.h"
#include "ztest/v1/echo.pb-c.h"

/*
 * A self-nesting message the test protos lack: test.Node { Node child = 1;
 * string name = 2; }, described by hand as protoc-c would.
 */
extern const ProtobufCMessageDescriptor node_descriptor;
static const ProtobufCFieldDescriptor   node_fields[] = {
	  { "child", 1, PROTOBUF_C_LABEL_NONE, PROTOBUF_C_TYPE_MESSAGE, 0, 0,
	      &node_descriptor, NULL, 0, 0, NULL, NULL },
	  { "name", 2, PROTOBUF_C_LABEL_NONE, PROTOBUF_C_TYPE_STRING, 0, 0, NULL,
	      NULL, 0, 0, NULL, NULL },
};
static const unsigned            node_by_name[]  = { 0, 1 };
static const ProtobufCIntRange   node_ranges[]   = { { 1, 0 }, { 0, 2 } };
const ProtobufCMessageDescriptor node_descriptor = {
	PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC, "test.Node", "Node", "Node",
	"test", sizeof(ProtobufCMessage), 2, node_fields, node_by_name, 1,
	node_ranges, NULL, NULL, NULL, NULL
};

static const ProtobufCMessageDescriptor *const echo_desc =
    &ztest__v1__echo_request__descriptor;

/* Appends a length-delimited field NUMBER with LEN bytes of DATA. */
static size_t
put_field(
    uint8_t *buf, size_t off, unsigned number, const void *data, size_t len)
{
	cr_assert(len < 128 && number < 16);
	buf[off++] = (uint8_t) (number << 3 | 2);
	buf[off++] = (uint8_t) len;
	if (len > 0) { /* DATA may be NULL then */
		memcpy(buf + off, data, len);
	}
	return off + len;
}

/* The check of EchoRequest { text: BYTES } (LEN bytes). */
static enum zrpc_wire_fault_kind
check_text(const void *bytes, size_t len, struct zrpc_wire_fault *fault)
{
	uint8_t buf[160];
	size_t  n = put_field(buf, 0, 1, bytes, len);

	return zrpc_wire_check(echo_desc, buf, n, fault);
}

struct utf8_case {
	const char *bytes;
	size_t      len;
};
#define UTF8(s)                  \
	{                        \
		s, sizeof(s) - 1 \
	}

Test(wire_check, valid_utf8_strings_pass)
{
	static const struct utf8_case good[] = {
		UTF8(""), UTF8("plain ascii"), UTF8("\xc2\x80"), /* U+0080 */
		UTF8("caf\xc3\xa9"),                             /* é */
		UTF8("\xdf\xbf"),                                /* U+07FF */
		UTF8("\xe0\xa0\x80"),                            /* U+0800 */
		UTF8("\xe2\x82\xac"),                            /* € */
		UTF8("\xed\x9f\xbf"),                            /* U+D7FF */
		UTF8("\xee\x80\x80"),                            /* U+E000 */
		UTF8("\xef\xbf\xbf"),                            /* U+FFFF */
		UTF8("\xf0\x90\x80\x80"),                        /* U+10000 */
		UTF8("\xf0\x9f\x98\x80 smile"),                  /* 😀 */
		UTF8("\xf4\x8f\xbf\xbf"),                        /* U+10FFFF */
	};
	struct zrpc_wire_fault fault;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		cr_expect_eq(check_text(good[i].bytes, good[i].len, &fault),
		    ZRPC_WIRE_OK, "case %zu", i);
	}
}

Test(wire_check, invalid_utf8_in_a_string_field_is_named)
{
	static const struct utf8_case bad[] = {
		UTF8("\x80"),             /* lone continuation */
		UTF8("ab\xbf"),           /* lone continuation */
		UTF8("\xc0\x80"),         /* overlong NUL */
		UTF8("\xc1\xbf"),         /* overlong */
		UTF8("\xe0\x80\x80"),     /* overlong */
		UTF8("\xe0\x9f\xbf"),     /* overlong U+07FF */
		UTF8("\xf0\x80\x80\x80"), /* overlong */
		UTF8("\xf0\x8f\xbf\xbf"), /* overlong U+FFFF */
		UTF8("\xed\xa0\x80"),     /* surrogate U+D800 */
		UTF8("\xed\xbf\xbf"),     /* surrogate U+DFFF */
		UTF8("\xf4\x90\x80\x80"), /* U+110000 */
		UTF8("\xf5\x80\x80\x80"), /* beyond U+10FFFF */
		UTF8("\xff"), UTF8("\xfe"), UTF8("\xe2\x82"), /* cut short */
		UTF8("x\xf0\x9f\x98"),                        /* cut short */
		UTF8("\xc3"),                                 /* cut short */
		UTF8("\xe2\x28\xa1"),     /* bad continuation */
		UTF8("\xf0\x9f\x28\x80"), /* bad continuation */
		UTF8("\xc3\xa9\xc3"),     /* good, then cut short */
	};
	struct zrpc_wire_fault fault;
	zrpc_status            status;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_expect_eq(check_text(bad[i].bytes, bad[i].len, &fault),
		    ZRPC_WIRE_INVALID_UTF8, "case %zu", i);
		cr_expect_eq(fault.message, echo_desc);
		cr_expect(fault.field != NULL &&
		        strcmp(fault.field->name, "text") == 0,
		    "case %zu", i);
	}
	check_text("ok\xc3\x28", 4, &fault);
	cr_expect_eq(fault.offset, 4, "tag, length, 'o', 'k': byte 4");
	status = zrpc_wire_fault_status(&fault);
	cr_expect_eq(status.code, ZRPC_INVALID_ARGUMENT);
	cr_expect(strstr(status.message, "ztest.v1.EchoRequest.text") != NULL,
	    "%s", status.message);
	cr_expect(
	    strstr(status.message, "UTF-8") != NULL, "%s", status.message);
}

Test(wire_check, a_nul_in_a_string_field_is_named)
{
	struct zrpc_wire_fault fault;
	zrpc_status            status;

	cr_expect_eq(check_text("a\0b", 3, &fault), ZRPC_WIRE_NUL);
	cr_expect_eq(fault.offset, 3);
	cr_expect_eq(check_text("\0", 1, &fault), ZRPC_WIRE_NUL);
	cr_expect_eq(check_text("abc\0", 4, &fault), ZRPC_WIRE_NUL);
	status = zrpc_wire_fault_status(&fault);
	cr_expect_eq(status.code, ZRPC_INVALID_ARGUMENT);
	cr_expect(strstr(status.message, "ztest.v1.EchoRequest.text") != NULL,
	    "%s", status.message);
	cr_expect(strstr(status.message, "NUL") != NULL, "%s", status.message);
}

Test(wire_check, the_same_bytes_in_a_bytes_field_pass)
{
	static const uint8_t   junk[] = { 0x00, 0xff, 0xc0, 0x80, 0xed, 0xa0,
		  0x80, 0x00 };
	struct zrpc_wire_fault fault;
	uint8_t                buf[64];
	size_t                 n;

	n = put_field(buf, 0, 4, junk, sizeof(junk)); /* blob */
	cr_expect_eq(zrpc_wire_check(echo_desc, buf, n, &fault), ZRPC_WIRE_OK);
	cr_expect_eq(fault.kind, ZRPC_WIRE_OK);
	/* Request.payload is bytes: the envelope pass leaves it alone. */
	n = put_field(buf, 0, 2, junk, sizeof(junk));
	cr_expect_eq(
	    zrpc_wire_check(&zrpc__v1__request__descriptor, buf, n, &fault),
	    ZRPC_WIRE_OK);
}

Test(wire_check, map_entries_and_nested_messages_are_checked)
{
	const ProtobufCMessageDescriptor *request =
	    &zrpc__v1__request__descriptor;
	struct zrpc_wire_fault fault;
	uint8_t                entry[64], buf[128], inner[32];
	size_t                 e, n;
	zrpc_status            status;

	/* metadata (field 4) { key: "k", value: "\xff" } */
	e = put_field(entry, 0, 1, "k", 1);
	e = put_field(entry, e, 2, "\xff", 1);
	n = put_field(buf, 0, 1, "/a.B/C", 6);
	n = put_field(buf, n, 4, entry, e);
	cr_expect_eq(
	    zrpc_wire_check(request, buf, n, &fault), ZRPC_WIRE_INVALID_UTF8);
	cr_expect_str_eq(fault.message->name, "zrpc.v1.Request.MetadataEntry");
	cr_expect_str_eq(fault.field->name, "value");
	status = zrpc_wire_fault_status(&fault);
	cr_expect(strstr(status.message, "MetadataEntry.value") != NULL, "%s",
	    status.message);

	/* A NUL in a key. */
	e = put_field(entry, 0, 1, "k\0", 2);
	n = put_field(buf, 0, 4, entry, e);
	cr_expect_eq(zrpc_wire_check(request, buf, n, &fault), ZRPC_WIRE_NUL);
	cr_expect_str_eq(fault.field->name, "key");

	/* A good entry passes. */
	e = put_field(entry, 0, 1, "k\xc3\xa9", 3);
	e = put_field(entry, e, 2, "v", 1);
	n = put_field(buf, 0, 4, entry, e);
	cr_expect_eq(zrpc_wire_check(request, buf, n, &fault), ZRPC_WIRE_OK);

	/* Node { child { child { name: "\xc0\xaf" } } } */
	e = put_field(inner, 0, 2, "\xc0\xaf", 2);
	e = put_field(entry, 0, 1, inner, e);
	n = put_field(buf, 0, 1, entry, e);
	cr_expect_eq(zrpc_wire_check(&node_descriptor, buf, n, &fault),
	    ZRPC_WIRE_INVALID_UTF8);
	cr_expect_str_eq(fault.field->name, "name");
	cr_expect_eq(fault.offset, 6, "the bad byte, three headers in");
}

Test(wire_check, unknown_fields_of_every_wire_type_are_skipped)
{
	struct zrpc_wire_fault fault;
	uint8_t                buf[128];
	size_t                 n = 0;

	buf[n++] = 9 << 3 | 0; /* varint, 10 bytes */
	memcpy(buf + n, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 10);
	n += 10;
	buf[n++] = 10 << 3 | 1; /* fixed64 */
	memcpy(buf + n, "\x00\xff\x00\xff\x00\xff\x00\xff", 8);
	n += 8;
	n        = put_field(buf, n, 11, "\xff\x00\xc0", 3); /* unknown */
	buf[n++] = 12 << 3 | 5;                              /* fixed32 */
	memcpy(buf + n, "\x0a\x01\xff\x00", 4);
	n += 4;
	buf[n++] = 0xa2; /* field 100, length-delimited: a two-byte tag */
	buf[n++] = 0x06;
	buf[n++] = 2;
	buf[n++] = 0xff;
	buf[n++] = 0x00;
	/* A known string sent as a varint: not a string, skipped here. */
	buf[n++] = 1 << 3 | 0;
	buf[n++] = 0x00;
	n        = put_field(buf, n, 1, "fine", 4);
	cr_expect_eq(zrpc_wire_check(echo_desc, buf, n, &fault), ZRPC_WIRE_OK,
	    "fault %d at %zu", fault.kind, fault.offset);

	/* The walk stays aligned: a bad text after them is found. */
	n = put_field(buf, n, 1, "\xff", 1);
	cr_expect_eq(zrpc_wire_check(echo_desc, buf, n, &fault),
	    ZRPC_WIRE_INVALID_UTF8);
	cr_expect_eq(fault.offset, n - 1);
}

Test(wire_check, malformed_wire_is_a_fault_and_never_read_past_the_end)
{
	static const struct utf8_case bad[] = {
		UTF8("\x80"),     /* tag cut short */
		UTF8("\x08"),     /* varint missing */
		UTF8("\x08\x80"), /* varint cut short */
		UTF8("\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"),
		UTF8("\x0a"), /* length missing */
		UTF8("\x0a\x05"
		     "abc"), /* length beyond the end */
		UTF8("\x0a\xff\xff\xff\xff\x0f"
		     "a"), /* huge length */
		UTF8("\x11"
		     "1234567"), /* fixed64 cut short */
		UTF8("\x15"
		     "123"),                      /* fixed32 cut short */
		UTF8("\x00\x00"),                 /* field number 0 */
		UTF8("\x02\x00"),                 /* field number 0 */
		UTF8("\x0b\x0c"),                 /* a group */
		UTF8("\x0c"),                     /* an end group */
		UTF8("\x0e\x00"),                 /* wire type 6 */
		UTF8("\x0f\x00"),                 /* wire type 7 */
		UTF8("\xf8\xff\xff\xff\x7f\x00"), /* field number 2^32 - 1 */
	};
	struct zrpc_wire_fault fault;
	zrpc_status            status;
	uint8_t                copy[64];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		/* An exact-size copy, so ASan sees any read past it. */
		uint8_t *heap = malloc(bad[i].len);
		cr_assert_not_null(heap);
		memcpy(heap, bad[i].bytes, bad[i].len);
		cr_expect_eq(
		    zrpc_wire_check(echo_desc, heap, bad[i].len, &fault),
		    ZRPC_WIRE_MALFORMED, "case %zu", i);
		cr_expect_leq(fault.offset, bad[i].len);
		free(heap);
	}
	status = zrpc_wire_fault_status(&fault);
	cr_expect_eq(status.code, ZRPC_INVALID_ARGUMENT);
	cr_expect(strstr(status.message, "ztest.v1.EchoRequest") != NULL, "%s",
	    status.message);

	/* A nested message cut short is malformed where it is. */
	memcpy(copy, "\x0a\x03\x0a\x05x", 5);
	cr_expect_eq(zrpc_wire_check(&node_descriptor, copy, 5, &fault),
	    ZRPC_WIRE_MALFORMED);
	cr_expect_eq(fault.offset, 2);

	/* An empty message is fine. */
	cr_expect_eq(
	    zrpc_wire_check(echo_desc, copy, 0, &fault), ZRPC_WIRE_OK);
}

/* Node nested DEPTH levels deep into BUF (from the end); returns start. */
static size_t
nest(uint8_t *buf, size_t cap, unsigned depth)
{
	size_t start = cap;

	for (unsigned i = 0; i < depth; i++) {
		size_t len = cap - start;
		cr_assert(len < 16384 && start >= 3);
		if (len >= 128) {
			buf[--start] = (uint8_t) (len >> 7);
			buf[--start] = (uint8_t) (0x80 | (len & 0x7f));
		} else {
			buf[--start] = (uint8_t) len;
		}
		buf[--start] = 0x0a;
	}
	return start;
}

Test(wire_check, nesting_is_bounded)
{
	struct zrpc_wire_fault fault;
	uint8_t                buf[256];
	size_t                 start;
	zrpc_status            status;

	start = nest(buf, sizeof(buf), ZRPC_WIRE_CHECK_DEPTH_MAX);
	cr_expect_eq(zrpc_wire_check(&node_descriptor, buf + start,
	                 sizeof(buf) - start, &fault),
	    ZRPC_WIRE_OK);
	start = nest(buf, sizeof(buf), ZRPC_WIRE_CHECK_DEPTH_MAX + 1);
	cr_expect_eq(zrpc_wire_check(&node_descriptor, buf + start,
	                 sizeof(buf) - start, &fault),
	    ZRPC_WIRE_TOO_DEEP);
	status = zrpc_wire_fault_status(&fault);
	cr_expect_eq(status.code, ZRPC_INVALID_ARGUMENT);
	cr_expect(
	    strstr(status.message, "nested") != NULL, "%s", status.message);
}

Test(wire_check, random_bytes_never_break_the_walk)
{
	struct zrpc_wire_fault fault;
	unsigned               seed = 4242;

	for (size_t round = 0; round < 20000; round++) {
		size_t   n    = 1 + round % 48;
		uint8_t *heap = malloc(n);
		cr_assert_not_null(heap);
		for (size_t i = 0; i < n; i++) {
			seed    = seed * 1103515245u + 12345u;
			heap[i] = (uint8_t) (seed >> 16);
		}
		if (zrpc_wire_check(&zrpc__v1__request__descriptor, heap, n,
		        &fault) != ZRPC_WIRE_OK) {
			cr_assert_leq(fault.offset, n);
		}
		(void) zrpc_wire_check(&node_descriptor, heap, n, &fault);
		free(heap);
	}
}
