/* zrpc status values. */
#include <criterion/criterion.h>
#include <nng/nng.h>
#include <string.h>

#include "zrpc/status.h"

Test(status, names_match_grpc)
{
	cr_assert_str_eq(zrpc_status_name(ZRPC_OK), "OK");
	cr_assert_str_eq(
	    zrpc_status_name(ZRPC_DEADLINE_EXCEEDED), "DEADLINE_EXCEEDED");
	cr_assert_str_eq(
	    zrpc_status_name(ZRPC_UNAUTHENTICATED), "UNAUTHENTICATED");
	cr_assert_str_eq(zrpc_status_name((zrpc_code) 99), "UNKNOWN");
	cr_assert_eq(ZRPC_RESOURCE_EXHAUSTED, 8);
	cr_assert_eq(ZRPC_UNAVAILABLE, 14);
}

Test(status, every_name_parses_back)
{
	for (int c = 0; c < ZRPC_CODE_COUNT; c++) {
		zrpc_code parsed;
		cr_assert(zrpc_status_from_name(
		    zrpc_status_name((zrpc_code) c), &parsed));
		cr_assert_eq(parsed, (zrpc_code) c);
	}
	zrpc_code code = ZRPC_OK;
	cr_assert(zrpc_status_from_name("not_found", &code));
	cr_assert_eq(code, ZRPC_NOT_FOUND);
	cr_assert_not(zrpc_status_from_name("NOPE", &code));
	cr_assert_eq(code, ZRPC_NOT_FOUND, "left alone");
}

Test(status, messages_are_formatted_and_truncated)
{
	char        big[1000];
	zrpc_status s = zrpc_status_make(ZRPC_NOT_FOUND, "no %s %d", "x", 7);

	cr_assert_eq(s.code, ZRPC_NOT_FOUND);
	cr_assert_str_eq(s.message, "no x 7");
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	s                    = zrpc_status_make(ZRPC_INTERNAL, "%s", big);
	cr_assert_eq(strlen(s.message), ZRPC_STATUS_MESSAGE_MAX - 1);
	s = zrpc_status_ok();
	cr_assert(zrpc_status_is_ok(&s));
	cr_assert_str_eq(s.message, "");
}

Test(status, nng_errors_map_to_what_a_caller_expects)
{
	cr_assert_eq(zrpc_status_from_nng(NNG_ETIMEDOUT, "x").code,
	    ZRPC_DEADLINE_EXCEEDED);
	cr_assert_eq(zrpc_status_from_nng(NNG_ECONNREFUSED, "x").code,
	    ZRPC_UNAVAILABLE);
	cr_assert_eq(
	    zrpc_status_from_nng(NNG_ECONNRESET, "x").code, ZRPC_UNAVAILABLE);
	cr_assert_eq(
	    zrpc_status_from_nng(NNG_ECLOSED, "x").code, ZRPC_CANCELLED);
	cr_assert_eq(zrpc_status_from_nng(NNG_EADDRINVAL, "x").code,
	    ZRPC_INVALID_ARGUMENT);
	cr_assert_eq(zrpc_status_from_nng(0, "x").code, ZRPC_OK);
	zrpc_status s = zrpc_status_from_nng(NNG_ETIMEDOUT, "dial");
	cr_assert(strncmp(s.message, "dial: ", 6) == 0, "%s", s.message);
}
