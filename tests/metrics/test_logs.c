/*
 * zosd's logs as a program writes them: in JSON every line of stderr parses
 * and has the fields log.h documents, --access-log and
 * --access-log-sample pick the calls that get a line, --log-level filters,
 * and a stderr nobody reads costs log lines (counted on /metrics), never
 * calls or the exit. Every zosd a test starts is stopped by the test.
 */
#include <criterion/criterion.h>
#include <json-c/json.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
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

/* Starts zosd logging in FORMAT at LEVEL, with the flags in EXTRA (NULL
 * terminated; NULL for none), and waits for its ready lines. */
static void
zosd_start_with(struct zosd *z, const char *format, const char *level,
    const char *const *extra)
{
	static int  n;
	const char *argv[24] = { env_path("ZOSD"), "--in-memory", "--listen",
		z->url, "--metrics-listen", "http://127.0.0.1:0/metrics",
		"--log-format", format, "--log-level", level,
		"--shutdown-grace-ms", "1000" };
	size_t      argc     = 12;

	snprintf(z->sock, sizeof(z->sock), "/tmp/zos-logs-%d-%d.sock",
	    (int) getpid(), n++);
	snprintf(z->url, sizeof(z->url), "ipc://%s", z->sock);
	leftover_track_path(z->sock);
	for (; extra != NULL && *extra != NULL; extra++) {
		cr_assert_lt(argc, 23);
		argv[argc++] = *extra;
	}
	argv[argc] = NULL;
	tracked_start(&z->proc, (char *const *) argv);
	cr_assert(
	    proc_wait_for(&z->proc, "metrics on"), "ready:\n%s", z->proc.text);
}

/* zosd with every call in the access log. */
static void
zosd_start(struct zosd *z, const char *format, const char *level)
{
	static const char *const all[] = { "--access-log", "all", NULL };

	zosd_start_with(z, format, level, all);
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

/* The number FIELD of OBJ; fails the test when it is not a JSON number. */
static double
number_field(struct json_object *obj, const char *key)
{
	struct json_object *v;

	cr_assert(json_object_object_get_ex(obj, key, &v), "%s: %s", key,
	    json_object_to_json_string(obj));
	cr_assert(json_object_is_type(v, json_type_double) ||
	        json_object_is_type(v, json_type_int),
	    "%s is a JSON number: %s", key, json_object_to_json_string(obj));
	return json_object_get_double(v);
}

Test(logs, the_access_log_line_has_method_code_latency_request_id_and_peer)
{
	struct zosd         z;
	struct json_object *lines[64], *ok, *missing, *v;
	size_t              n;
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
	latency = number_field(ok, "latency_ms");
	cr_assert(latency > 0 && latency < 5000, "%g ms", latency);
	cr_assert_not(json_object_object_get_ex(ok, "message", &v),
	    "no message on an OK line");

	missing = call_line(lines, n, "/zos.v1.Session/Get");
	cr_assert_not_null(missing);
	cr_assert_str_eq(field(missing, "code"), "NOT_FOUND");
	cr_assert_not_null(field(missing, "request_id"));
	cr_assert_gt(strlen(field(missing, "request_id")), 8, "generated");
	cr_assert_str_neq(field(missing, "request_id"), "req-logs-1");
	latency = number_field(missing, "latency_ms");
	cr_assert(latency > 0 && latency < 5000, "%g ms", latency);
	cr_assert_not_null(field(missing, "peer"));
	/* An error line carries the status message the caller got. */
	cr_assert_not_null(field(missing, "message"), "%s",
	    json_object_to_json_string(missing));
	cr_assert_str_eq(
	    field(missing, "message"), "no session '0123456789abcdef'");
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

/* The access-log lines of TEXT (JSON) whose code is OK and not OK. */
static void
count_call_lines(char *text, size_t *ok, size_t *errors)
{
	struct json_object *lines[128];
	size_t              n = parse_lines(text, lines, 128);

	*ok     = 0;
	*errors = 0;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(field(lines[i], "msg"), "call") == 0) {
			const char *code = field(lines[i], "code");

			cr_assert_not_null(code);
			if (strcmp(code, "OK") == 0) {
				(*ok)++;
			} else {
				cr_assert_not_null(field(lines[i], "message"));
				(*errors)++;
			}
		}
		json_object_put(lines[i]);
	}
}

Test(logs, access_log_errors_is_the_default_and_writes_only_error_lines)
{
	struct zosd z;
	size_t      ok, errors;

	zosd_start_with(&z, "json", "info", NULL);
	two_calls(z.url);
	zosd_stop(&z);
	count_call_lines(z.proc.text, &ok, &errors);
	cr_assert_eq(ok, 0, "no OK line by default:\n%s", z.proc.text);
	cr_assert_eq(errors, 1, "the NOT_FOUND line");
}

Test(logs, access_log_errors_given_writes_only_error_lines)
{
	static const char *const errors_only[] = { "--access-log", "errors",
		NULL };
	struct zosd              z;

	zosd_start_with(&z, "text", "info", errors_only);
	two_calls(z.url);
	zosd_stop(&z);
	cr_assert_null(strstr(z.proc.text, "method=/zos.v1.Skills/Get"), "%s",
	    z.proc.text);
	cr_assert_not_null(
	    strstr(z.proc.text, "method=/zos.v1.Session/Get code=NOT_FOUND"),
	    "%s", z.proc.text);
	cr_assert_not_null(
	    strstr(z.proc.text, " message=\"no session '0123456789abcdef'\""),
	    "the message, quoted in text: %s", z.proc.text);
}

Test(logs, access_log_off_writes_no_call_line)
{
	static const char *const off[] = { "--access-log", "off", NULL };
	struct zosd              z;
	size_t                   ok, errors;

	zosd_start_with(&z, "json", "info", off);
	two_calls(z.url);
	zosd_stop(&z);
	cr_assert_not_null(strstr(z.proc.text, "\"msg\":\"stopped\""),
	    "other lines still come: %s", z.proc.text);
	count_call_lines(z.proc.text, &ok, &errors);
	cr_assert_eq(ok + errors, 0, "no call line");
}

/* N calls of Skills/Get (OK) and M of Session/Get for a missing session
 * (NOT_FOUND) on one client. */
static void
many_calls(const char *url, int n_ok, int n_missing)
{
	Zos__V1__GetSkillsRequest  sreq = ZOS__V1__GET_SKILLS_REQUEST__INIT;
	Zos__V1__GetSessionRequest greq = ZOS__V1__GET_SESSION_REQUEST__INIT;
	zrpc_client               *client;
	zrpc_status                st;

	cr_assert_eq(zrpc_client_open(&client, url, NULL).code, ZRPC_OK);
	for (int i = 0; i < n_ok; i++) {
		Zos__V1__SkillVector *v = NULL;

		st = zos_v1_skills_get(client, &sreq, &v,
		    &(zrpc_call_opts) { .timeout_ms = 5000 });
		cr_assert_eq(st.code, ZRPC_OK, "%s", st.message);
		zos__v1__skill_vector__free_unpacked(v, NULL);
	}
	greq.id = "0123456789abcdef";
	for (int i = 0; i < n_missing; i++) {
		Zos__V1__ProofSession *s = NULL;

		st = zos_v1_session_get(client, &greq, &s,
		    &(zrpc_call_opts) { .timeout_ms = 5000 });
		cr_assert_eq(st.code, ZRPC_NOT_FOUND, "%s", st.message);
	}
	zrpc_client_close(client);
}

/*
 * The sampler is deterministic (log.h): the n-th OK call is kept when
 * floor(n * R) steps, so 40 OK calls at 0.25 give exactly 10 lines. Error
 * lines are never sampled away.
 */
Test(logs, access_log_sample_keeps_a_fraction_of_ok_lines_and_every_error)
{
	static const char *const sampled[] = { "--access-log", "all",
		"--access-log-sample", "0.25", NULL };
	struct zosd              z;
	size_t                   ok, errors;

	zosd_start_with(&z, "json", "info", sampled);
	many_calls(z.url, 40, 8);
	zosd_stop(&z);
	count_call_lines(z.proc.text, &ok, &errors);
	cr_assert_eq(ok, 10, "40 x 0.25 OK lines");
	cr_assert_eq(errors, 8, "every error line");
}

Test(logs, access_log_sample_half_keeps_every_other_ok_line)
{
	static const char *const sampled[] = { "--access-log", "all",
		"--access-log-sample", "0.5", NULL };
	struct zosd              z;
	size_t                   ok, errors;

	zosd_start_with(&z, "json", "info", sampled);
	many_calls(z.url, 51, 0);
	zosd_stop(&z);
	count_call_lines(z.proc.text, &ok, &errors);
	cr_assert_eq(ok, 25, "floor(51 x 0.5)");
	cr_assert_eq(errors, 0);
}

/* ---- a stderr nobody reads ---- */

#define STALL_THREADS 8
#define STALL_CALLS 1000 /* per thread */

struct stall_caller {
	const char *url;
	int         failed;  /* calls not OK within their 2 s */
	long        slowest; /* ms */
	char        first_error[320];
};

static long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* STALL_CALLS Skills/Get calls with a 2 s deadline each; asserts nothing
 * (a thread). */
static void *
stall_caller_run(void *arg)
{
	struct stall_caller      *c   = arg;
	Zos__V1__GetSkillsRequest req = ZOS__V1__GET_SKILLS_REQUEST__INIT;
	zrpc_client              *client;

	if (zrpc_client_open(&client, c->url, NULL).code != ZRPC_OK) {
		c->failed = STALL_CALLS;
		return NULL;
	}
	for (int i = 0; i < STALL_CALLS; i++) {
		Zos__V1__SkillVector *v     = NULL;
		long                  start = now_ms();
		zrpc_status           st = zos_v1_skills_get(client, &req, &v,
		              &(zrpc_call_opts) { .timeout_ms = 2000 });
		long                  took = now_ms() - start;

		if (took > c->slowest) {
			c->slowest = took;
		}
		if (st.code != ZRPC_OK) {
			if (c->failed++ == 0) {
				snprintf(c->first_error,
				    sizeof(c->first_error), "%s: %s",
				    zrpc_status_name(st.code), st.message);
			}
		}
		zos__v1__skill_vector__free_unpacked(v, NULL);
		if (c->failed > 0) {
			break; /* one is enough, and each costs 2 s */
		}
	}
	zrpc_client_close(client);
	return NULL;
}

/*
 * zosd's stdout and stderr are a pipe the test stops reading once zosd
 * is ready, and every call is logged (info, --access-log all): 8000
 * lines of about 230 bytes, more than the pipe (64 KiB) and the log queue
 * (8192 lines, 1 MiB) hold together. Every call must still answer OK
 * within its 2 s deadline (a write(2) on the serving thread would block
 * for good once the pipe is full), the lines that did not fit are counted
 * on /metrics, and SIGTERM still ends zosd within grace + 2 s while
 * nobody reads.
 */
Test(logs, a_stderr_nobody_reads_costs_log_lines_never_calls)
{
	struct zosd         z;
	pthread_t           threads[STALL_THREADS];
	struct stall_caller callers[STALL_THREADS];
	struct http_reply   reply;
	double              dropped, queued;
	int                 port, pidfd, status;
	struct pollfd       pfd;
	long                start, took;

	zosd_start(&z, "json", "info");
	port = metrics_port_of(z.proc.text);
	cr_assert_gt(port, 0, "%s", z.proc.text);
	/* From here on the test reads nothing of zosd's output. */
	for (int t = 0; t < STALL_THREADS; t++) {
		callers[t] = (struct stall_caller) { .url = z.url };
		cr_assert_eq(pthread_create(&threads[t], NULL,
		                 stall_caller_run, &callers[t]),
		    0);
	}
	for (int t = 0; t < STALL_THREADS; t++) {
		pthread_join(threads[t], NULL);
	}
	for (int t = 0; t < STALL_THREADS; t++) {
		cr_assert_eq(callers[t].failed, 0,
		    "caller %d: %d calls failed, the first: %s (slowest %ld "
		    "ms)",
		    t, callers[t].failed, callers[t].first_error,
		    callers[t].slowest);
	}

	cr_assert(http_request(port, "GET", "/metrics", &reply));
	cr_assert_eq(reply.status, 200);
	cr_assert(
	    metric_value(reply.body, "zos_log_lines_dropped_total", &dropped));
	cr_assert(metric_value(reply.body, "zos_log_queue_lines", &queued));
	http_reply_free(&reply);
	cr_assert_gt(dropped, 0, "lines were dropped, not waited for");
	cr_assert_gt(queued, 0, "the queue is waiting for the pipe");

	/* SIGTERM while the pipe is still full: out within grace (1 s) +
	 * 2 s, without anyone reading (pidfd: exit seen, not reaped). */
	pidfd = (int) syscall(SYS_pidfd_open, z.proc.pid, 0);
	cr_assert(pidfd >= 0, "pidfd_open");
	start = now_ms();
	kill(z.proc.pid, SIGTERM);
	pfd = (struct pollfd) { .fd = pidfd, .events = POLLIN };
	cr_assert_eq(poll(&pfd, 1, 10000), 1, "zosd exited");
	took = now_ms() - start;
	close(pidfd);
	cr_assert_leq(took, 1000 + 2000, "exit took %ld ms", took);
	status = tracked_wait(&z.proc);
	cr_assert_eq(status, 0, "a clean stop: %s", z.proc.text);
	unlink(z.sock);
}
