/*
 * test_names: protoc-gen-zrpc's identifier spelling (names.c), compiled
 * straight into this suite.
 *
 * The protobuf-c expectations were taken from protoc-c 1.4.1's own output
 * for the same names; the generated code in test_codegen checks the common
 * cases by compiling, these check the corners.
 */
#include <stdlib.h>

#include <criterion/criterion.h>

#include "names.h"

/* Asserts that FN(FULL_NAME, PACKAGE, C_PACKAGE) is EXPECTED. */
static void
names_check(char *(*fn)(const char *, const char *, const char *),
    const char *full_name, const char *package, const char *c_package,
    const char *expected)
{
	char *got = fn(full_name, package, c_package);

	cr_assert_not_null(got);
	cr_assert_str_eq(
	    got, expected, "%s (package \"%s\")", full_name, package);
	free(got);
}

/* Asserts that names_snake(NAME) is EXPECTED. */
static void
names_check_snake(const char *name, const char *expected)
{
	char *got = names_snake(name);

	cr_assert_not_null(got);
	cr_assert_str_eq(got, expected, "snake of %s", name);
	free(got);
}

Test(names, protobuf_c_type_names_are_camel_cased_pieces)
{
	names_check(names_pbc_type, "zos.v1.SkillVector", "zos.v1", NULL,
	    "Zos__V1__SkillVector");
	names_check(names_pbc_type, "zos.v1.Outer.Inner", "zos.v1", NULL,
	    "Zos__V1__Outer__Inner");
	names_check(
	    names_pbc_type, "a_b.C1d.m_N", "a_b.C1d", NULL, "AB__C1d__MN");
	names_check(names_pbc_type, "a_b.C1d.m_N.xY_z", "a_b.C1d", NULL,
	    "AB__C1d__MN__XYZ");
	names_check(names_pbc_type, "HTTPRequest", "", NULL, "HTTPRequest");
}

Test(names, protobuf_c_lower_names_split_camel_case)
{
	names_check(names_pbc_lower, "zos.v1.SkillVector", "zos.v1", NULL,
	    "zos__v1__skill_vector");
	names_check(
	    names_pbc_lower, "a_b.C1d.m_N", "a_b.C1d", NULL, "a_b__c1d__m__n");
	names_check(names_pbc_lower, "a_b.C1d.m_N.xY_z", "a_b.C1d", NULL,
	    "a_b__c1d__m__n__x_y_z");
	names_check(names_pbc_lower, "a_b.C1d.ABCdefGHi", "a_b.C1d", NULL,
	    "a_b__c1d__abcdef_ghi");
	names_check(names_pbc_lower, "a_b.C1d.V2Thing", "a_b.C1d", NULL,
	    "a_b__c1d__v2_thing");
	names_check(names_pbc_lower, "HTTPRequest", "", NULL, "httprequest");
}

Test(names, protobuf_c_package_option_replaces_the_package)
{
	names_check(names_pbc_type, "my_pkg.v2.HTTPRequest.Inner_thing",
	    "my_pkg.v2", "other.pkg", "Other__Pkg__HTTPRequest__InnerThing");
	names_check(names_pbc_lower, "my_pkg.v2.Foo_Bar2x", "my_pkg.v2",
	    "other.pkg", "other__pkg__foo__bar2x");
	names_check(names_pbc_type, "Msg", "", "x_y", "XY__Msg");
	names_check(names_pbc_lower, "Msg", "", "x_y", "x_y__msg");
	names_check(names_pbc_lower, "p.q.Msg", "p.q", "", "msg");
}

Test(names, snake_case_splits_words_and_acronyms)
{
	names_check_snake("Get", "get");
	names_check_snake("ListServices", "list_services");
	names_check_snake("ModelBackend", "model_backend");
	names_check_snake("HTTPServer", "http_server");
	names_check_snake("XMLHttpRequest", "xml_http_request");
	names_check_snake("GetV2Thing", "get_v2_thing");
	names_check_snake("getHTTP", "get_http");
	names_check_snake("already_snake", "already_snake");
	names_check_snake("Get_Thing", "get_thing");
	names_check_snake("V1", "v1");
}

Test(names, package_prefix_joins_lower_case_parts)
{
	char *prefix = names_package_prefix("Zos.V1");

	cr_assert_str_eq(prefix, "zos_v1");
	free(prefix);
	prefix = names_package_prefix("");
	cr_assert_str_eq(prefix, "");
	free(prefix);
}

Test(names, reserved_words_cover_keywords_and_macros)
{
	static const char *const reserved[]   = { "default", "switch", "bool",
		  "true", "linux", "unix", "errno", "asm", "typeof", "_Bool" };
	static const char *const free_names[] = { "get", "default_", "Default",
		"register_", "check" };

	for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
		cr_assert(names_is_reserved(reserved[i]), "%s", reserved[i]);
	}
	for (size_t i = 0; i < sizeof(free_names) / sizeof(free_names[0]);
	     i++) {
		cr_assert_not(
		    names_is_reserved(free_names[i]), "%s", free_names[i]);
	}
}

Test(names, include_guards_and_file_stems)
{
	char *guard = names_include_guard("zrpc/v1/health.zrpc.h");
	char *stem  = names_strip_proto("zos/v1/skills.proto");

	cr_assert_str_eq(guard, "ZRPC_V1_HEALTH_ZRPC_H");
	cr_assert_str_eq(stem, "zos/v1/skills");
	free(guard);
	free(stem);
	guard = names_include_guard("1st/my-file.zrpc.h");
	cr_assert_str_eq(guard, "ZRPC_1ST_MY_FILE_ZRPC_H");
	free(guard);
}
