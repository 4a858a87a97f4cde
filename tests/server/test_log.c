/* zosd's logger: JSON lines parse and carry the documented fields. */
#include <criterion/criterion.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

/* Logs through a pipe and returns what came out (static buffer). */
static const char *
capture(enum zos_log_format format, zrpc_log_level min, zrpc_log_level level,
    const char *message, const struct zos_log_field *fields, int n)
{
	static char    buf[8192];
	int            fds[2];
	ssize_t        got;
	struct zos_log log;

	cr_assert_eq(pipe(fds), 0);
	log =
	    (struct zos_log) { .level = min, .format = format, .fd = fds[1] };
	zos_log_event(&log, level, message, fields, n);
	close(fds[1]);
	got = read(fds[0], buf, sizeof(buf) - 1);
	close(fds[0]);
	buf[got < 0 ? 0 : got] = '\0';
	return buf;
}

Test(log, json_lines_parse_with_timestamp_level_message_and_fields)
{
	struct zos_log_field fields[] = { { "method", "/a.B/C" },
		{ "quote", "say \"hi\"\n\ttab\\ \x01" } };
	const char *line = capture(ZOS_LOG_JSON, ZRPC_LOG_DEBUG, ZRPC_LOG_WARN,
	    "listening on tcp://127.0.0.1:1", fields, 2);
	struct json_object *obj, *v;

	cr_assert_eq(line[strlen(line) - 1], '\n', "one line");
	cr_assert_eq(strchr(line, '\n'), line + strlen(line) - 1,
	    "exactly one newline");
	obj = json_tokener_parse(line);
	cr_assert_not_null(obj, "valid JSON: %s", line);
	cr_assert(json_object_object_get_ex(obj, "ts", &v));
	cr_assert(strlen(json_object_get_string(v)) >= 20);
	cr_assert(json_object_object_get_ex(obj, "level", &v));
	cr_assert_str_eq(json_object_get_string(v), "warn");
	cr_assert(json_object_object_get_ex(obj, "msg", &v));
	cr_assert_str_eq(
	    json_object_get_string(v), "listening on tcp://127.0.0.1:1");
	cr_assert(json_object_object_get_ex(obj, "quote", &v));
	cr_assert_str_eq(
	    json_object_get_string(v), "say \"hi\"\n\ttab\\ \x01");
	json_object_put(obj);
}

Test(log, text_lines_are_readable)
{
	struct zos_log_field fields[] = { { "code", "OK" } };
	const char          *line     = capture(
	                 ZOS_LOG_TEXT, ZRPC_LOG_INFO, ZRPC_LOG_INFO, "call", fields, 1);

	cr_assert(strstr(line, " info call code=OK\n") != NULL, "%s", line);
}

Test(log, json_replaces_bytes_that_are_not_utf8_and_keeps_those_that_are)
{
	/* é (2 bytes), € (3), 𝄞 (4); then a stray continuation byte, a cut
	 * sequence, an overlong '/', a surrogate and 0xff. */
	struct zos_log_field fields[] = {
		{ "good", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9d\x84\x9e" },
		{ "bad",
		    "a\x80"
		    "b\xe2\x82"
		    "c\xc0\xaf"
		    "d\xed\xa0\x80"
		    "e\xff" },
	};
	const char *line = capture(ZOS_LOG_JSON, ZRPC_LOG_DEBUG, ZRPC_LOG_INFO,
	    "/\xfe.Bad/Method", fields, 2);
	struct json_object *obj, *v;

	obj = json_tokener_parse(line);
	cr_assert_not_null(obj, "valid JSON: %s", line);
	cr_assert(json_object_object_get_ex(obj, "good", &v));
	cr_assert_str_eq(json_object_get_string(v),
	    "caf\xc3\xa9 \xe2\x82\xac \xf0\x9d\x84\x9e");
	cr_assert(json_object_object_get_ex(obj, "bad", &v));
	cr_assert_str_eq(json_object_get_string(v),
	    "a\xef\xbf\xbd"
	    "b\xef\xbf\xbd\xef\xbf\xbd"
	    "c\xef\xbf\xbd\xef\xbf\xbd"
	    "d\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
	    "e\xef\xbf\xbd");
	cr_assert(json_object_object_get_ex(obj, "msg", &v));
	cr_assert_str_eq(
	    json_object_get_string(v), "/\xef\xbf\xbd.Bad/Method");
	json_object_put(obj);
}

Test(log, text_lines_escape_control_characters_and_quote_spaced_values)
{
	struct zos_log_field fields[] = {
		{ "method", "/a\nb" },
		{ "message", "two words" },
		{ "quote", "say \"hi\"" },
		{ "empty", "" },
		{ "plain", "tcp://127.0.0.1:1" },
	};
	const char *line = capture(ZOS_LOG_TEXT, ZRPC_LOG_DEBUG, ZRPC_LOG_INFO,
	    "one\ntwo", fields, 5);

	cr_assert_eq(strchr(line, '\n'), line + strlen(line) - 1,
	    "exactly one newline: %s", line);
	cr_assert(strstr(line,
	              " info one\\ntwo method=\"/a\\nb\" "
	              "message=\"two words\" "
	              "quote=\"say \\\"hi\\\"\" empty=\"\" "
	              "plain=tcp://127.0.0.1:1\n") != NULL,
	    "%s", line);
}

Test(log, events_below_the_level_are_dropped)
{
	const char *line = capture(
	    ZOS_LOG_JSON, ZRPC_LOG_WARN, ZRPC_LOG_INFO, "chatter", NULL, 0);

	cr_assert_str_eq(line, "");
}

Test(log, overlong_lines_stay_one_json_object)
{
	static char         big[10000];
	const char         *line;
	struct json_object *obj;

	memset(big, 'x', sizeof(big) - 1);
	line = capture(
	    ZOS_LOG_JSON, ZRPC_LOG_DEBUG, ZRPC_LOG_ERROR, big, NULL, 0);
	obj = json_tokener_parse(line);
	cr_assert_not_null(obj, "truncated but valid");
	json_object_put(obj);
}

Test(log, levels_and_formats_parse)
{
	zrpc_log_level      level;
	enum zos_log_format format;

	cr_assert(zos_log_parse_level("ERROR", &level));
	cr_assert_eq(level, ZRPC_LOG_ERROR);
	cr_assert(zos_log_parse_level("warning", &level));
	cr_assert_eq(level, ZRPC_LOG_WARN);
	cr_assert_not(zos_log_parse_level("trace", &level));
	cr_assert(zos_log_parse_format("text", &format));
	cr_assert_eq(format, ZOS_LOG_TEXT);
	cr_assert_not(zos_log_parse_format("yaml", &format));
}

Test(log, number_fields_are_json_numbers_and_bad_numbers_stay_strings)
{
	struct zos_log_field fields[] = {
		{ "latency_ms", "0.153", true },
		{ "count", "12", true },
		{ "big", "-1.5e+10", true },
		{ "not", "0.1.2", true },
		{ "lead", "01", true },
		{ "empty", "", true },
		{ "text", "12", false },
	};
	const char *line = capture(
	    ZOS_LOG_JSON, ZRPC_LOG_DEBUG, ZRPC_LOG_INFO, "call", fields, 7);
	struct json_object *obj, *v;

	cr_assert(strstr(line,
	              "\"latency_ms\":0.153,\"count\":12,\"big\":-1.5e+10,"
	              "\"not\":\"0.1.2\",\"lead\":\"01\",\"empty\":\"\","
	              "\"text\":\"12\"}") != NULL,
	    "%s", line);
	obj = json_tokener_parse(line);
	cr_assert_not_null(obj, "valid JSON: %s", line);
	cr_assert(json_object_object_get_ex(obj, "latency_ms", &v));
	cr_assert(json_object_is_type(v, json_type_double));
	cr_assert(json_object_get_double(v) == 0.153);
	cr_assert(json_object_object_get_ex(obj, "count", &v));
	cr_assert(json_object_is_type(v, json_type_int));
	json_object_put(obj);

	/* Text lines write numbers as any value. */
	line = capture(
	    ZOS_LOG_TEXT, ZRPC_LOG_DEBUG, ZRPC_LOG_INFO, "call", fields, 1);
	cr_assert(
	    strstr(line, " info call latency_ms=0.153\n") != NULL, "%s", line);
}

Test(log, a_queued_log_writes_through_the_queue)
{
	int            fds[2];
	char           buf[256];
	ssize_t        got;
	zrpc_logq     *q;
	struct zos_log log;

	cr_assert_eq(pipe(fds), 0);
	cr_assert_eq(
	    zrpc_logq_create(&q, &(zrpc_logq_config) { .fd = fds[1] }).code,
	    ZRPC_OK);
	/* fd -1: a line that went to write(2) would be lost. */
	log = (struct zos_log) { .level = ZRPC_LOG_INFO,
		.format                 = ZOS_LOG_TEXT,
		.fd                     = -1,
		.queue                  = q };
	zos_log_printf(&log, ZRPC_LOG_INFO, "through %s", "the queue");
	cr_assert_eq(zrpc_logq_close(q, 5000), 0);
	close(fds[1]);
	got = read(fds[0], buf, sizeof(buf) - 1);
	close(fds[0]);
	cr_assert_gt(got, 0);
	buf[got] = '\0';
	cr_assert(strstr(buf, " info through the queue\n") != NULL, "%s", buf);
}

Test(log, access_log_modes_select_calls_and_the_sampler_is_exact)
{
	struct zos_log log = {
		.level = ZRPC_LOG_INFO, .format = ZOS_LOG_JSON, .fd = -1
	};
	struct zos_log quiet = {
		.level = ZRPC_LOG_WARN, .format = ZOS_LOG_JSON, .fd = -1
	};
	struct zos_access_log    a;
	enum zos_access_log_mode mode;
	int                      kept = 0;

	cr_assert(zos_access_log_parse_mode("all", &mode));
	cr_assert_eq(mode, ZOS_ACCESS_LOG_ALL);
	cr_assert(zos_access_log_parse_mode("errors", &mode));
	cr_assert_eq(mode, ZOS_ACCESS_LOG_ERRORS);
	cr_assert(zos_access_log_parse_mode("off", &mode));
	cr_assert_eq(mode, ZOS_ACCESS_LOG_OFF);
	cr_assert_not(zos_access_log_parse_mode("none", &mode));

	zos_access_log_init(&a, &log, ZOS_ACCESS_LOG_ERRORS, 1.0);
	cr_assert_not(zos_access_log_wanted(&a, ZRPC_OK));
	cr_assert(zos_access_log_wanted(&a, ZRPC_NOT_FOUND));
	zos_access_log_init(&a, &log, ZOS_ACCESS_LOG_OFF, 1.0);
	cr_assert_not(zos_access_log_wanted(&a, ZRPC_INTERNAL));
	zos_access_log_init(&a, &quiet, ZOS_ACCESS_LOG_ALL, 1.0);
	cr_assert_not(zos_access_log_wanted(&a, ZRPC_INTERNAL),
	    "info lines are below --log-level warn");

	/* 0.01: exactly one OK call in 100, the 100th, 200th...; every
	 * error kept whatever the rate. */
	zos_access_log_init(&a, &log, ZOS_ACCESS_LOG_ALL, 0.01);
	for (int i = 1; i <= 1000; i++) {
		bool want = zos_access_log_wanted(&a, ZRPC_OK);

		cr_assert_eq(want, i % 100 == 0, "call %d", i);
		kept += want;
		cr_assert(zos_access_log_wanted(&a, ZRPC_UNAVAILABLE));
	}
	cr_assert_eq(kept, 10);
	zos_access_log_init(&a, &log, ZOS_ACCESS_LOG_ALL, 0.3);
	kept = 0;
	for (int i = 0; i < 1000; i++) {
		kept += zos_access_log_wanted(&a, ZRPC_OK);
	}
	cr_assert(kept == 300 || kept == 299, "%d of 1000 at 0.3", kept);
}

/*
 * The timestamp's calendar arithmetic agrees with gmtime_r and strftime
 * at every midnight, and a second before it, from 1970 to 2400 (leap
 * years, centuries, 2000 and 2400 included), and before 1970.
 */
Test(log, timestamps_match_gmtime_every_day_from_1900_to_2400)
{
	char want[64], got[ZOS_LOG_TIME_LEN + 1];

	for (long long day = -25567; day <= 157113; day++) {
		for (int k = 0; k < 2; k++) {
			long long sec = day * 86400 - k;
			time_t    t   = (time_t) sec;
			struct tm tm;
			size_t    n;

			cr_assert_not_null(gmtime_r(&t, &tm));
			n = strftime(
			    want, sizeof(want), "%Y-%m-%dT%H:%M:%S", &tm);
			snprintf(want + n, sizeof(want) - n, ".%03dZ", 789);
			zos_log_format_time(sec, 789000000L, got);
			cr_assert_str_eq(got, want, "day %lld", day);
		}
	}
}
