/*
 * The protobuf text format printer (pbtext.h) against the exact text
 * protoc --decode prints for the same messages.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pbjson_test.pb-c.h"
#include "pbtext.h"

static void
assert_text(
    const ProtobufCMessage *m, bool emit_defaults, const char *expected)
{
	char  error[256];
	char *text = zos_pbtext_print(m, emit_defaults, error, sizeof(error));

	cr_assert_not_null(text, "%s", error);
	cr_assert_str_eq(text, expected);
	free(text);
}

Test(pbtext, scalars_nested_messages_and_escapes_as_protoc_prints_them)
{
	Ztest__Pbjson__Scalars s      = ZTEST__PBJSON__SCALARS__INIT;
	Ztest__Pbjson__Inner   inner  = ZTEST__PBJSON__INNER__INIT;
	Ztest__Pbjson__Inner   child  = ZTEST__PBJSON__INNER__INIT;
	uint8_t                data[] = { 0x00, 'a', 0xff, '\'' };

	assert_text(&s.base, false, "");
	s.i32       = -5;
	s.i64       = -9007199254740993LL;
	s.u64       = UINT64_MAX;
	s.fl        = 0.1f;
	s.db        = -INFINITY;
	s.flag      = 1;
	s.text      = "h\xc3\xa9 \"q\" \\ \n\x1b[31m";
	s.data      = (ProtobufCBinaryData) { sizeof(data), data };
	s.color     = 7; /* unknown */
	s.inner     = &inner;
	inner.n     = 3;
	inner.child = &child;
	child.name  = "c";
	assert_text(&s.base, false,
	    "i32: -5\n"
	    "i64: -9007199254740993\n"
	    "u64: 18446744073709551615\n"
	    "fl: 0.1\n"
	    "db: -inf\n"
	    "flag: true\n"
	    "text: \"h\\303\\251 \\\"q\\\" \\\\ \\n\\033[31m\"\n"
	    "data: \"\\000a\\377\\'\"\n"
	    "color: 7\n"
	    "inner {\n"
	    "  n: 3\n"
	    "  child {\n"
	    "    name: \"c\"\n"
	    "  }\n"
	    "}\n");
}

Test(pbtext, repeated_fields_and_maps_one_line_or_block_per_element)
{
	Ztest__Pbjson__Repeated          r = ZTEST__PBJSON__REPEATED__INIT;
	Ztest__Pbjson__Maps              m = ZTEST__PBJSON__MAPS__INIT;
	Ztest__Pbjson__Maps__StrStrEntry e =
	    ZTEST__PBJSON__MAPS__STR_STR_ENTRY__INIT;
	Ztest__Pbjson__Maps__StrStrEntry *entries[] = { &e };
	int32_t                           i32[]     = { 1, -2 };
	int                               colors[]  = { 1, 2 };

	r.n_i32   = 2;
	r.i32     = i32;
	r.n_color = 2;
	r.color   = colors;
	assert_text(
	    &r.base, false, "i32: 1\ni32: -2\ncolor: RED\ncolor: GREEN\n");
	e.key       = "k";
	e.value     = "v";
	m.n_str_str = 1;
	m.str_str   = entries;
	assert_text(
	    &m.base, false, "str_str {\n  key: \"k\"\n  value: \"v\"\n}\n");
}

Test(pbtext, emit_defaults_prints_scalars_without_presence)
{
	Ztest__Pbjson__Inner inner = ZTEST__PBJSON__INNER__INIT;

	assert_text(&inner.base, true, "name: \"\"\nn: 0\n");
	assert_text(&inner.base, false, "");
}
