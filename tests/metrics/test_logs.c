/*
 * zosd's logs as a program writes them: in JSON every line of stderr parses
 * and has the fields log.h documents, each call has its access-log line,
 * and --log-level filters. Every zosd a test starts is stopped by the
 * test.
 */
#include <criterion/criterion.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"
#include "proc.h"
#include "zos/v1/zos.zrpc.h"
#include "zrpc/client.h"

/* A zosd left running by a failed assertion is killed after the test. */
TestSuite(logs, .fini = leftover_kill_all);

struct zosd {
	struct proc proc;
	char        sock[128];
	char        url[160];
};

static void
zosd_start(struct zosd *z, const char *format, const char *level)
{
	static int n;

	snprintf(z->sock, sizeof(z->sock), "/tmp/zos-logs-%d-%d.sock",
	    (int) getpid(), n++);
	snprintf(z->url, sizeof(z->url), "ipc://%s", z->sock);
	leftover_track_path(z->sock);
	char *argv[] = { (char *) env_path("ZOSD"), "--in-memory", "--listen",
		z->url, "--metrics-listen", "http://127.0.0.1:0/metrics",
		"--log-format", (char *) format, "--log-level", (char *) level,
		NULL };
	tracked_start(&z->proc, argv);
	cr_assert(
	    proc_wait_for(&z->proc, "metrics on"), "ready:\n%s", z->proc.text);
}

/* SIGTERM, a clean exit, and the whole output in z->proc.text. */
static void
zosd_stop(struct zosd *z)
{
	kill(z->proc.pid, SIGTERM);
	cr_assert_eq(tracked_wait(&z->proc), 0, "%s", z->proc.text);
	cr_assert_lt(z->proc.len, sizeof(z->proc.text) - 1,
	    "the whole output fits the buffer");
	unlink(z->sock);
}

/* Two calls: Skills/Get (OK, request id "req-logs-1") and Session/Get of
 * a missing session (NOT_FOUND, a generated request id). */
static void
two_calls(const char *url)
{
	struct zrpc_metadata_entry id   = { "x-request-id", "req-logs-1" };
	Zos__V1__GetSkillsRequest  sreq = ZOS__V1__GET_SKILLS_REQUEST__INIT;
	Zos__V1__GetSessionRequest greq = ZOS__V1__GET_SESSION_REQUEST__INIT;
	Zos__V1__SkillVector      *v    = NULL;
	Zos__V1__ProofSession     *s    = NULL;
	zrpc_client               *client;
	zrpc_status                st;

	cr_assert_eq(zrpc_client_open(&client, url, NULL).code, ZRPC_OK);
	st = zos_v1_skills_get(client, &sreq, &v,
	    &(zrpc_call_opts) {
	        .timeout_ms = 5000, .metadata = &id, .n_metadata = 1 });
	cr_assert_eq(st.code, ZRPC_OK, "%s", st.message);
	zos__v1__skill_vector__free_unpacked(v, NULL);
	greq.id = "0123456789abcdef";
	st      = zos_v1_session_get(
	         client, &greq, &s, &(zrpc_call_opts) { .timeout_ms = 5000 });
	cr_assert_eq(st.code, ZRPC_NOT_FOUND, "%s", st.message);
	zrpc_client_close(client);
}

static const char *
field(struct json_object *obj, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(obj, key, &v) ||
	    !json_object_is_type(v, json_type_string)) {
		return NULL;
	}
	return json_object_get_string(v);
}

/*
 * Parses every line of TEXT as a JSON object with the fields log.h
 * documents (ts, level, msg); returns them in OUT (at most MAX), the
 * caller puts each.
 */
static size_t
parse_lines(char *text, struct json_object **out, size_t max)
{
	size_t n = 0;

	for (char *line = strtok(text, "\n"); line != NULL;
	     line       = strtok(NULL, "\n")) {
		struct json_object *obj = json_tokener_parse(line);
		const char         *ts, *level;

		cr_assert_not_null(obj, "not JSON: %s", line);
		cr_assert(
		    json_object_is_type(obj, json_type_object), "%s", line);
		ts    = field(obj, "ts");
		level = field(obj, "level");
		cr_assert_not_null(ts, "ts: %s", line);
		/* 2024-05-01T12:00:00.123Z */
		cr_assert_eq(strlen(ts), 24, "%s", ts);
		cr_assert(
		    ts[10] == 'T' && ts[19] == '.' && ts[23] == 'Z', "%s", ts);
		cr_assert_not_null(level, "level: %s", line);
		cr_assert(strcmp(level, "debug") == 0 ||
		        strcmp(level, "info") == 0 ||
		        strcmp(level, "warn") == 0 ||
		        strcmp(level, "error") == 0,
		    "%s", level);
		cr_assert_not_null(field(obj, "msg"), "msg: %s", line);
		cr_assert_lt(n, max, "at most %zu lines", max);
		out[n++] = obj;
	}
	return n;
}

/* The access-log line of METHOD, or NULL. */
static struct json_object *
call_line(struct json_object **lines, size_t n, const char *method)
{
	for (size_t i = 0; i < n; i++) {
		const char *m = field(lines[i], "method");
		if (strcmp(field(lines[i], "msg"), "call") == 0 && m != NULL &&
		    strcmp(m, method) == 0) {
			return lines[i];
		}
	}
	return NULL;
}

Test(logs, every_json_line_parses_and_has_the_documented_fields)
{
	struct zosd         z;
	struct json_object *lines[64];
	size_t              n;
	bool                listening = false, metrics = false;

	zosd_start(&z, "json", "info");
	two_calls(z.url);
	zosd_stop(&z);
	n = parse_lines(z.proc.text, lines, 64);
	for (size_t i = 0; i < n; i++) {
		const char *msg = field(lines[i], "msg");
		listening |= strncmp(msg, "listening on ipc://", 19) == 0;
		metrics |= strncmp(msg, "metrics on http://", 18) == 0;
	}
	cr_assert(listening && metrics, "both ready lines");
	cr_assert_not_null(call_line(lines, n, "/zos.v1.Skills/Get"));
	cr_assert_not_null(call_line(lines, n, "/zos.v1.Session/Get"));
	for (size_t i = 0; i < n; i++) {
		json_object_put(lines[i]);
	}
}

Test(logs, the_access_log_line_has_method_code_latency_request_id_and_peer)
{
	struct zosd         z;
	struct json_object *lines[64], *ok, *missing;
	size_t              n;
	char               *end;
	double              latency;

	zosd_start(&z, "json", "info");
	two_calls(z.url);
	zosd_stop(&z);
	n = parse_lines(z.proc.text, lines, 64);

	ok = call_line(lines, n, "/zos.v1.Skills/Get");
	cr_assert_not_null(ok);
	cr_assert_str_eq(field(ok, "level"), "info");
	cr_assert_str_eq(field(ok, "code"), "OK");
	cr_assert_str_eq(field(ok, "request_id"), "req-logs-1");
	cr_assert_str_eq(field(ok, "peer"), z.url, "the ipc socket");
	cr_assert_not_null(field(ok, "latency_ms"));
	latency = strtod(field(ok, "latency_ms"), &end);
	cr_assert_eq(*end, '\0', "a number: %s", field(ok, "latency_ms"));
	cr_assert(latency > 0 && latency < 5000, "%g ms", latency);

	missing = call_line(lines, n, "/zos.v1.Session/Get");
	cr_assert_not_null(missing);
	cr_assert_str_eq(field(missing, "code"), "NOT_FOUND");
	cr_assert_not_null(field(missing, "request_id"));
	cr_assert_gt(strlen(field(missing, "request_id")), 8, "generated");
	cr_assert_str_neq(field(missing, "request_id"), "req-logs-1");
	cr_assert_not_null(field(missing, "latency_ms"));
	cr_assert_not_null(field(missing, "peer"));
	for (size_t i = 0; i < n; i++) {
		json_object_put(lines[i]);
	}
}

Test(logs, log_level_warn_drops_info_lines_but_not_the_ready_lines)
{
	struct zosd         z;
	struct json_object *lines[64];
	size_t              n;

	zosd_start(&z, "json", "warn");
	two_calls(z.url);
	zosd_stop(&z);
	n = parse_lines(z.proc.text, lines, 64);
	cr_assert_geq(n, 2, "the ready lines: %s", z.proc.text);
	for (size_t i = 0; i < n; i++) {
		const char *level = field(lines[i], "level");
		const char *msg   = field(lines[i], "msg");

		if (strcmp(level, "info") == 0 ||
		    strcmp(level, "debug") == 0) {
			/* Written at any level: supervisors wait for them. */
			cr_assert(strncmp(msg, "listening on ", 13) == 0 ||
			        strncmp(msg, "metrics on ", 11) == 0,
			    "an info line at --log-level warn: %s", msg);
		}
		cr_assert_str_neq(msg, "call");
		json_object_put(lines[i]);
	}
}

Test(logs, text_lines_carry_the_same_fields)
{
	struct zosd z;
	const char *line;

	zosd_start(&z, "text", "info");
	two_calls(z.url);
	zosd_stop(&z);
	line = strstr(z.proc.text, " info call method=/zos.v1.Skills/Get ");
	cr_assert_not_null(line, "%s", z.proc.text);
	cr_assert(strstr(line, " code=OK latency_ms=") != NULL, "%s", line);
	cr_assert(strstr(line, " request_id=req-logs-1 peer=ipc://") != NULL,
	    "%s", line);
	cr_assert_null(strstr(z.proc.text, "{\""), "no JSON in text mode");
}
