/*
 * zos-load as a program: its JSON and text reports, exact call counts
 * (checked on the server: the in-process ztest Echo server's run counter,
 * zosd's Session/List total and Cache/Stats), the open-loop rate, the
 * per-caller data file, and its exit statuses. zos-load, zosd and zos-echo
 * come from meson (ZOS_LOAD, ZOSD, ZOS_ECHO); every server a test starts
 * is stopped by the test. Every wait is bounded.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kv_server.h"
#include "proc.h"
#include "testserver.h"
#include "zos/v1/zos.zrpc.h"
#include "zrpc/client.h"

extern char **environ;

/* How long one zos-load run may take before the test gives up on it. */
#define LOAD_RUN_LIMIT_MS 60000

/* What a zos-load run left behind. */
struct load_result {
	int          status; /* exit status, or -signal */
	char         out[65536];
	size_t       out_len;
	char         err[65536];
	size_t       err_len;
	json_object *json; /* stdout parsed, with --json; NULL otherwise */
};

static long
elapsed_ms(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - start->tv_sec) * 1000 +
	    (now.tv_nsec - start->tv_nsec) / 1000000;
}

/* Appends what FD has to BUF (what does not fit is read and dropped). */
static bool
drain_into(int fd, char *buf, size_t cap, size_t *len)
{
	char    scratch[4096];
	ssize_t n;

	if (*len + 1 < cap) {
		n = read(fd, buf + *len, cap - 1 - *len);
	} else {
		n = read(fd, scratch, sizeof(scratch));
	}
	if (n <= 0) {
		return false;
	}
	if (*len + 1 < cap) {
		*len += (size_t) n;
		buf[*len] = '\0';
	}
	return true;
}

/*
 * Runs zos-load with the NULL-terminated ARGS (without the program),
 * stdout and stderr kept apart, and waits for it (bounded). With --json
 * among ARGS and exit status 0, stdout must parse as JSON.
 */
static void
load_run(struct load_result *r, const char *const *args)
{
	posix_spawn_file_actions_t fa;
	char                      *argv[64];
	int                        out[2], err[2], status;
	size_t                     n        = 0;
	bool                       out_open = true, err_open = true;
	bool                       json = false;
	struct timespec            start;
	pid_t                      pid;

	memset(r, 0, sizeof(*r));
	argv[n++] = (char *) env_path("ZOS_LOAD");
	for (; *args != NULL; args++) {
		cr_assert_lt(n, 63);
		argv[n++] = (char *) *args;
		json      = json || strcmp(*args, "--json") == 0 ||
		    (strcmp(*args, "json") == 0 && n >= 2 &&
		        strcmp(argv[n - 2], "--format") == 0);
	}
	argv[n] = NULL;
	cr_assert_eq(pipe(out), 0);
	cr_assert_eq(pipe(err), 0);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	posix_spawn_file_actions_adddup2(&fa, err[1], 2);
	posix_spawn_file_actions_addclose(&fa, out[0]);
	posix_spawn_file_actions_addclose(&fa, err[0]);
	cr_assert_eq(posix_spawn(&pid, argv[0], &fa, NULL, argv, environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	close(out[1]);
	close(err[1]);

	clock_gettime(CLOCK_MONOTONIC, &start);
	while (out_open || err_open) {
		struct pollfd fds[2] = {
			{ .fd = out_open ? out[0] : -1, .events = POLLIN },
			{ .fd = err_open ? err[0] : -1, .events = POLLIN },
		};
		long left = LOAD_RUN_LIMIT_MS - elapsed_ms(&start);

		if (left <= 0 || poll(fds, 2, (int) left) <= 0) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			cr_assert(false,
			    "zos-load did not finish in %d ms:\n%s",
			    LOAD_RUN_LIMIT_MS, r->err);
		}
		if (fds[0].revents != 0 &&
		    !drain_into(out[0], r->out, sizeof(r->out), &r->out_len)) {
			out_open = false;
		}
		if (fds[1].revents != 0 &&
		    !drain_into(err[0], r->err, sizeof(r->err), &r->err_len)) {
			err_open = false;
		}
	}
	close(out[0]);
	close(err[0]);
	/* Both pipes are at EOF: the process has exited or is exiting. */
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	r->status =
	    WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
	if (json && r->status == 0) {
		r->json = json_tokener_parse(r->out);
		cr_assert_not_null(r->json, "stdout is JSON:\n%s\nstderr:\n%s",
		    r->out, r->err);
	}
}

static void
load_result_free(struct load_result *r)
{
	json_object_put(r->json);
	r->json = NULL;
}

/* The member KEY of OBJ (which must be there). */
static json_object *
member(json_object *obj, const char *key)
{
	json_object *value = NULL;

	cr_assert(json_object_object_get_ex(obj, key, &value),
	    "member \"%s\" in %s", key, json_object_to_json_string(obj));
	return value;
}

static uint64_t
member_u64(json_object *obj, const char *key)
{
	json_object *value = member(obj, key);

	cr_assert(
	    json_object_is_type(value, json_type_int), "%s is an int", key);
	return json_object_get_uint64(value);
}

static double
member_double(json_object *obj, const char *key)
{
	json_object *value = member(obj, key);

	cr_assert(json_object_is_type(value, json_type_double) ||
	        json_object_is_type(value, json_type_int),
	    "%s is a number", key);
	return json_object_get_double(value);
}

/* The sum of the counts by code, which must all be positive integers. */
static uint64_t
codes_sum(json_object *report)
{
	uint64_t sum = 0;

	json_object_object_foreach(member(report, "codes"), name, count)
	{
		zrpc_code code;

		cr_assert(zrpc_status_from_name(name, &code), "code %s", name);
		cr_assert(json_object_is_type(count, json_type_int));
		cr_assert_gt(json_object_get_uint64(count), 0);
		sum += json_object_get_uint64(count);
	}
	return sum;
}

/*
 * Servers this test started and has not stopped yet: a failed assertion
 * ends the test before its stop_server, so the fixture's fini kills them.
 */
#define MAX_SERVERS 4
static pid_t servers[MAX_SERVERS];

static void
servers_add(pid_t pid)
{
	for (size_t i = 0; i < MAX_SERVERS; i++) {
		if (servers[i] == 0) {
			servers[i] = pid;
			return;
		}
	}
	cr_assert(false, "too many servers");
}

static void
servers_remove(pid_t pid)
{
	for (size_t i = 0; i < MAX_SERVERS; i++) {
		if (servers[i] == pid) {
			servers[i] = 0;
		}
	}
}

/* Fixture fini: kills and reaps what a failed test left running. */
static void
servers_kill_left(void)
{
	for (size_t i = 0; i < MAX_SERVERS; i++) {
		if (servers[i] != 0) {
			kill(servers[i], SIGKILL);
			waitpid(servers[i], NULL, 0);
			servers[i] = 0;
		}
	}
}

TestSuite(load, .fini = servers_kill_left);

/* An ipc:// address no other test or run uses. */
static const char *
unique_ipc(char *buf, size_t len, const char *what)
{
	static unsigned next;

	snprintf(buf, len, "ipc:///tmp/zos-load-test-%d-%s-%u.sock",
	    (int) getpid(), what, next++);
	return buf;
}

static void
start_zosd(struct proc *p, char *url, size_t len)
{
	unique_ipc(url, len, "zosd");
	char *argv[] = { (char *) env_path("ZOSD"), "--in-memory", "--listen",
		url, "--metrics-listen", "off", "--log-level", "warn",
		"--max-sessions", "1000000", NULL };

	proc_start(p, argv);
	servers_add(p->pid);
	cr_assert(
	    proc_wait_for(p, "listening on"), "zosd ready:\n%s", p->text);
}

static void
start_echo(struct proc *p, char *url, size_t len)
{
	unique_ipc(url, len, "echo");
	char *argv[] = { (char *) env_path("ZOS_ECHO"), "--listen", url,
		NULL };

	proc_start(p, argv);
	servers_add(p->pid);
	cr_assert(
	    proc_wait_for(p, "listening on"), "zos-echo ready:\n%s", p->text);
}

/* SIGTERM, then a clean exit (bounded by proc_wait). */
static void
stop_server(struct proc *p)
{
	int status;

	kill(p->pid, SIGTERM);
	status = proc_wait(p);
	servers_remove(p->pid);
	cr_assert_eq(status, 0, "clean exit after SIGTERM:\n%s", p->text);
}

/* zosd's Session/List total. */
static uint64_t
zosd_session_total(const char *url)
{
	zrpc_client                 *client;
	Zos__V1__ListSessionsRequest req =
	    ZOS__V1__LIST_SESSIONS_REQUEST__INIT;
	Zos__V1__ListSessionsResponse *reply = NULL;
	zrpc_status                    status;
	uint64_t                       total;

	cr_assert_eq(zrpc_client_open(&client, url, NULL).code, ZRPC_OK);
	req.page_size = 1;
	status        = zos_v1_session_list(
	           client, &req, &reply, &(zrpc_call_opts) { .timeout_ms = 5000 });
	cr_assert_eq(status.code, ZRPC_OK, "%s", status.message);
	total = reply->total;
	zos__v1__list_sessions_response__free_unpacked(reply, NULL);
	zrpc_client_close(client);
	return total;
}

/* Writes LINES (NULL-terminated) to a new temporary file, path in PATH. */
static void
write_lines(char *path, size_t len, const char *const *lines)
{
	FILE *f;
	int   fd;

	snprintf(path, len, "/tmp/zos-load-test-%d-XXXXXX", (int) getpid());
	cr_assert((fd = mkstemp(path)) >= 0);
	cr_assert_not_null(f = fdopen(fd, "w"));
	for (; *lines != NULL; lines++) {
		fprintf(f, "%s\n", *lines);
	}
	cr_assert_eq(fclose(f), 0);
}

Test(load, json_report_has_the_documented_fields)
{
	struct proc        echo;
	struct load_result r;
	char               url[160];
	json_object       *latency;
	double             last = 0;

	start_echo(&echo, url, sizeof(url));
	load_run(&r,
	    (const char *[]) { "--url", url, "--echo", "--concurrency", "8",
	        "--requests", "500", "--json", NULL });
	stop_server(&echo);
	cr_assert_eq(r.status, 0, "%s", r.err);

	cr_assert_eq(strchr(r.out, '\n'), r.out + r.out_len - 1,
	    "one line on stdout: %s", r.out);
	cr_assert_str_eq(json_object_get_string(member(r.json, "url")), url);
	cr_assert(
	    json_object_is_type(member(r.json, "method"), json_type_string));
	cr_assert_eq(member_u64(r.json, "concurrency"), 8);
	cr_assert_eq(member_u64(r.json, "connections"), 1);
	cr_assert(json_object_is_type(member(r.json, "rate"), json_type_null));
	cr_assert_eq(member_u64(r.json, "calls"), 500);
	cr_assert_eq(member_u64(r.json, "ok"), 500);
	cr_assert_eq(member_u64(r.json, "errors"), 0);
	cr_assert_gt(member_double(r.json, "elapsed_s"), 0);
	cr_assert_gt(member_double(r.json, "calls_per_s"), 0);
	cr_assert_eq(codes_sum(r.json), 500);
	cr_assert_eq(member_u64(member(r.json, "codes"), "OK"), 500);
	cr_assert_eq(
	    json_object_object_length(member(r.json, "first_errors")), 0);

	latency = member(r.json, "latency_us");
	for (const char *const *q = (const char *const[]) { "p50", "p90",
	         "p99", "p999", "max", NULL };
	     *q != NULL; q++) {
		double v = member_double(latency, *q);

		cr_assert_gt(v, 0, "%s", *q);
		cr_assert_geq(v, last, "%s is not below the one before", *q);
		last = v;
	}
	cr_assert_gt(member_double(latency, "mean"), 0);
	load_result_free(&r);
}

Test(load, counts_by_code_sum_to_the_calls_the_server_ran)
{
	struct test_server ts;
	struct load_result r;

	test_server_start(&ts, "ipc", NULL);
	/* EchoRequest{text: "hi"}: zos-load does not know ztest, so raw. */
	load_run(&r,
	    (const char *[]) { "--url", ts.url, "--method",
	        "/ztest.v1.Echo/Echo", "--data-hex", "0a026869",
	        "--concurrency", "16", "--connections", "4", "--duration", "1",
	        "--json", NULL });
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_gt(member_u64(r.json, "calls"), 0);
	cr_assert_eq(codes_sum(r.json), member_u64(r.json, "calls"));
	cr_assert_eq(member_u64(r.json, "ok"), member_u64(r.json, "calls"));
	/* The connection check is a Health/Check, not an Echo. */
	cr_assert_eq(atomic_load(&ts.echo_runs), member_u64(r.json, "calls"),
	    "server ran %u, zos-load counted %" PRIu64,
	    atomic_load(&ts.echo_runs), member_u64(r.json, "calls"));
	load_result_free(&r);
	test_server_stop(&ts);
}

Test(load, requests_makes_exactly_n_calls)
{
	struct proc        zosd;
	struct load_result r;
	char               url[160];

	start_zosd(&zosd, url, sizeof(url));
	load_run(&r,
	    (const char *[]) { "--url", url, "--method",
	        "/zos.v1.Session/Start", "--data",
	        "{\"problem_id\": \"load\"}", "--concurrency", "8",
	        "--connections", "3", "--requests", "137", "--json", NULL });
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_eq(member_u64(r.json, "calls"), 137);
	cr_assert_eq(member_u64(member(r.json, "codes"), "OK"), 137);
	cr_assert_eq(codes_sum(r.json), 137);
	cr_assert_eq(zosd_session_total(url), 137);
	load_result_free(&r);

	/* Fewer requests than callers: still exactly N. */
	load_run(&r,
	    (const char *[]) { "--url", url, "--method",
	        "zos.v1.Session.Start", "--data", "{\"problemId\": \"few\"}",
	        "--concurrency", "64", "--requests", "5", "--json", NULL });
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_eq(member_u64(r.json, "calls"), 5);
	cr_assert_eq(member_u64(member(r.json, "codes"), "OK"), 5);
	cr_assert_eq(zosd_session_total(url), 142);
	load_result_free(&r);
	stop_server(&zosd);
}

Test(load, url_more_than_once_spreads_the_calls_over_the_servers)
{
	struct proc        a, b;
	struct load_result r;
	char               url_a[160], url_b[160];
	uint64_t           on_a, on_b;

	start_zosd(&a, url_a, sizeof(url_a));
	start_zosd(&b, url_b, sizeof(url_b));
	load_run(&r,
	    (const char *[]) { "--url", url_a, "--url", url_b, "--method",
	        "/zos.v1.Session/Start", "--data",
	        "{\"problem_id\": \"multi\"}", "--concurrency", "8",
	        "--requests", "100", "--json", NULL });
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_eq(member_u64(r.json, "calls"), 100);
	cr_assert_eq(member_u64(member(r.json, "codes"), "OK"), 100);
	load_result_free(&r);
	on_a = zosd_session_total(url_a);
	on_b = zosd_session_total(url_b);
	cr_assert_eq(on_a + on_b, 100);
	cr_assert_gt(on_a, 0, "no call reached the first server");
	cr_assert_gt(on_b, 0, "no call reached the second server");
	stop_server(&a);
	stop_server(&b);
}

Test(load, duration_run_counts_what_the_server_did)
{
	struct proc        zosd;
	struct load_result r;
	char               url[160];

	start_zosd(&zosd, url, sizeof(url));
	load_run(&r,
	    (const char *[]) { "--url", url, "--method",
	        "/zos.v1.Session/Start", "--data", "{\"problemId\": \"d\"}",
	        "--concurrency", "4", "--duration", "0.5", "--json", NULL });
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_gt(member_u64(r.json, "calls"), 0);
	cr_assert_eq(codes_sum(r.json), member_u64(r.json, "calls"));
	cr_assert_eq(member_u64(r.json, "ok"), member_u64(r.json, "calls"));
	cr_assert_eq(zosd_session_total(url), member_u64(r.json, "calls"));
	cr_assert_geq(member_double(r.json, "elapsed_s"), 0.5);
	load_result_free(&r);
	stop_server(&zosd);
}

Test(load, rpc_errors_are_counted_by_code_and_exit_zero)
{
	struct proc        zosd;
	struct load_result r;
	char               url[160];

	start_zosd(&zosd, url, sizeof(url));
	load_run(&r,
	    (const char *[]) { "--url", url, "--method", "/zos.v1.Session/Get",
	        "--data", "{\"id\": \"no-such-session\"}", "--concurrency",
	        "4", "--requests", "50", "--json", NULL });
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_eq(member_u64(r.json, "calls"), 50);
	cr_assert_eq(member_u64(r.json, "errors"), 50);
	cr_assert_eq(member_u64(r.json, "ok"), 0);
	cr_assert_eq(member_u64(member(r.json, "codes"), "NOT_FOUND"), 50);
	cr_assert_eq(codes_sum(r.json), 50);
	cr_assert_gt(strlen(json_object_get_string(
	                 member(member(r.json, "first_errors"), "NOT_FOUND"))),
	    0);
	load_result_free(&r);

	/* The text report names the code and its first message. */
	load_run(&r,
	    (const char *[]) { "--url", url, "--method", "/zos.v1.Session/Get",
	        "--data", "{\"id\": \"no-such-session\"}", "--concurrency",
	        "1", "--requests", "3", NULL });
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert(strstr(r.out, "NOT_FOUND 3") != NULL, "%s", r.out);
	cr_assert(strstr(r.out, "NOT_FOUND, first:") != NULL, "%s", r.out);
	stop_server(&zosd);
}

Test(load, rate_is_honoured_within_ten_percent)
{
	struct proc        echo;
	struct load_result r;
	char               url[160];
	uint64_t           calls;
	double             rate;

	start_echo(&echo, url, sizeof(url));
	load_run(&r,
	    (const char *[]) { "--url", url, "--echo", "--concurrency", "8",
	        "--duration", "2", "--rate", "200", "--json", NULL });
	cr_assert_eq(r.status, 0, "%s", r.err);
	calls = member_u64(r.json, "calls");
	rate  = member_double(r.json, "calls_per_s");
	cr_assert(calls >= 360 && calls <= 440, "%" PRIu64 " calls", calls);
	cr_assert(rate >= 180 && rate <= 220, "%.1f calls/s", rate);
	cr_assert_float_eq(member_double(r.json, "rate"), 200.0, 1e-9);
	member_double(r.json, "max_lag_ms");
	load_result_free(&r);

	/* With --requests the schedule spreads the calls out too. */
	load_run(&r,
	    (const char *[]) { "--url", url, "--echo", "--concurrency", "4",
	        "--requests", "50", "--rate", "100", "--json", NULL });
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_eq(member_u64(r.json, "calls"), 50);
	cr_assert_geq(member_double(r.json, "elapsed_s"), 0.49 * 0.9);
	load_result_free(&r);
	stop_server(&echo);
}

Test(load, data_file_lines_are_sent_in_turn)
{
	struct proc                zosd;
	struct load_result         r;
	char                       url[160], path[128];
	zrpc_client               *client;
	Zos__V1__CacheStats       *stats = NULL;
	Zos__V1__CacheStatsRequest req   = ZOS__V1__CACHE_STATS_REQUEST__INIT;

	write_lines(path, sizeof(path),
	    (const char *[]) { "# five distinct prompts",
	        "{\"model\": \"m\", \"prompt\": \"a\", \"response\": \"1\"}",
	        "{\"model\": \"m\", \"prompt\": \"b\", \"response\": \"2\"}",
	        "",
	        "{\"model\": \"m\", \"prompt\": \"c\", \"response\": \"3\"}",
	        "{\"model\": \"m\", \"prompt\": \"d\", \"response\": \"4\"}",
	        "{\"model\": \"m\", \"prompt\": \"e\", \"response\": \"5\"}",
	        NULL });
	start_zosd(&zosd, url, sizeof(url));
	load_run(&r,
	    (const char *[]) { "--url", url, "--method", "/zos.v1.Cache/Store",
	        "--data-file", path, "--concurrency", "2", "--requests", "10",
	        "--json", NULL });
	unlink(path);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_eq(member_u64(member(r.json, "codes"), "OK"), 10);
	load_result_free(&r);

	cr_assert_eq(zrpc_client_open(&client, url, NULL).code, ZRPC_OK);
	cr_assert_eq(zos_v1_cache_stats(client, &req, &stats,
	                 &(zrpc_call_opts) { .timeout_ms = 5000 })
	                 .code,
	    ZRPC_OK);
	cr_assert_eq(stats->size, 5, "every line was sent");
	zos__v1__cache_stats__free_unpacked(stats, NULL);
	zrpc_client_close(client);
	stop_server(&zosd);
}

enum { WALK_CALLERS = 16 };

/*
 * Starts WALK_CALLERS sessions on zosd at URL and writes
 * a --data-file of WALK_CALLERS blocks, block i the three moves of one
 * round of session i's proof state machine.
 */
static void
walk_file(const char *url, char *path, size_t len)
{
	static const char *const states[] = { "ANALYZING", "FEEDBACK_READY",
		"AWAITING_SOLUTION" };
	char                     lines[WALK_CALLERS * 3][160];
	const char              *line_ptrs[WALK_CALLERS * 3 + 1];
	zrpc_client             *client;

	cr_assert_eq(zrpc_client_open(&client, url, NULL).code, ZRPC_OK);
	for (int i = 0; i < WALK_CALLERS; i++) {
		Zos__V1__StartSessionRequest req =
		    ZOS__V1__START_SESSION_REQUEST__INIT;
		Zos__V1__ProofSession *session = NULL;

		req.problem_id = "walk";
		cr_assert_eq(zos_v1_session_start(client, &req, &session,
		                 &(zrpc_call_opts) { .timeout_ms = 5000 })
		                 .code,
		    ZRPC_OK);
		for (int k = 0; k < 3; k++) {
			snprintf(lines[i * 3 + k], sizeof(lines[0]),
			    "{\"id\": \"%s\", \"to_state\": \"%s\"}",
			    session->id, states[k]);
			line_ptrs[i * 3 + k] = lines[i * 3 + k];
		}
		zos__v1__proof_session__free_unpacked(session, NULL);
	}
	zrpc_client_close(client);
	line_ptrs[WALK_CALLERS * 3] = NULL;
	write_lines(path, len, line_ptrs);
}

Test(load, data_per_caller_walks_each_session_in_order)
{
	struct proc        zosd;
	struct load_result r;
	char               url[160], path[128], callers[16], requests[16];

	/*
	 * Each caller walks its own session, so every move is legal. Dealt
	 * out round robin instead, the same lines would put moves of one
	 * session on several callers at once, and some would fail.
	 */
	start_zosd(&zosd, url, sizeof(url));
	walk_file(url, path, sizeof(path));
	snprintf(callers, sizeof(callers), "%d", WALK_CALLERS);
	snprintf(requests, sizeof(requests), "%d", WALK_CALLERS * 60);
	load_run(&r,
	    (const char *[]) { "--url", url, "--method",
	        "/zos.v1.Session/Transition", "--data-file", path,
	        "--data-per-caller", "--concurrency", callers, "--requests",
	        requests, "--json", NULL });
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_eq(member_u64(member(r.json, "codes"), "OK"),
	    WALK_CALLERS * 60, "%s", r.out);
	load_result_free(&r);

	/* Blocks must split evenly. */
	load_run(&r,
	    (const char *[]) { "--url", url, "--method",
	        "/zos.v1.Session/Transition", "--data-file", path,
	        "--data-per-caller", "--concurrency", "5", "--requests", "5",
	        NULL });
	unlink(path);
	cr_assert_eq(r.status, 2, "%s", r.err);
	cr_assert(strstr(r.err, "equal blocks") != NULL, "%s", r.err);
	stop_server(&zosd);
}

Test(load, bad_flags_exit_two_with_usage)
{
	const char *const *const cases[] = {
		(const char *[]) { NULL },
		(const char *[]) { "--url", "ipc:///x", NULL },
		(const char *[]) { "--url", "ipc:///x", "--method",
		    "/zos.v1.Skills/Get", "--concurrency", "1", NULL },
		(const char *[]) { "--url", "ipc:///x", "--method",
		    "/zos.v1.Skills/Get", "--concurrency", "1", "--duration",
		    "1", "--requests", "1", NULL },
		(const char *[]) { "--url", "ipc:///x", "--method",
		    "/zos.v1.Skills/Get", "--concurrency", "0", "--requests",
		    "1", NULL },
		(const char *[]) { "--url", "ipc:///x", "--method",
		    "/zos.v1.Skills/Get", "--concurrency", "many",
		    "--requests", "1", NULL },
		(const char *[]) { "--url", "ipc:///x", "--method",
		    "/zos.v1.Skills/Get", "--concurrency", "1", "--requests",
		    "1", "--rate", "-5", NULL },
		(const char *[]) { "--url", "ipc:///x", "--method",
		    "/zos.v1.Skills/Get", "--concurrency", "2", "--requests",
		    "1", "--connections", "3", NULL },
		(const char *[]) { "--url", "ipc:///x", "--method",
		    "/zos.v1.Skills/Get", "--concurrency", "1", "--requests",
		    "1", "--frobnicate", NULL },
		(const char *[]) { "--url", "ipc:///x", "--method",
		    "/zos.v1.Skills/Get", "--concurrency", "1", "--requests",
		    "1", "--data", "{}", "--data-hex", "00", NULL },
		(const char *[]) { "--url", "ipc:///x", "--method",
		    "/zos.v1.Skills/Get", "--concurrency", "1", "--duration",
		    "soon", NULL },
		(const char *[]) { "--url", "ipc:///x", "--method",
		    "/zos.v1.Skills/Get", "--concurrency", "1", "--requests",
		    "1", "--data-per-caller", NULL },
		(const char *[]) { "--url", "ipc:///x", "--method",
		    "/zos.v1.Skills/Get", "--concurrency", "1", "--requests",
		    "1", "extra", NULL },
		(const char *[]) { "--url", "ipc:///x", "--method",
		    "/zos.v1.Skills/Get", "--concurrency", "1", "--requests",
		    "1", "--format", "xml", NULL },
		(const char *[]) { "--url", "ipc:///x", "--method",
		    "/zos.v1.Skills/Get", "--concurrency", "1", "--requests",
		    "1", "--percentiles", "50,0", NULL },
		(const char *[]) { "--url", "ipc:///x", "--method",
		    "/zos.v1.Skills/Get", "--concurrency", "1", "--requests",
		    "1", "--percentiles", "50,,99", NULL },
		(const char *[]) { "--url", "ipc:///x", "--method",
		    "/zos.v1.Skills/Get", "--concurrency", "1", "--requests",
		    "1", "--percentiles", "100.5", NULL },
		(const char *[]) { "--url", "ipc:///x", "--method",
		    "/zos.v1.Skills/Get", "--concurrency", "1", "--requests",
		    "1", "--rate", "100:300:100", NULL },
		(const char *[]) { "--url", "ipc:///x", "--method",
		    "/zos.v1.Skills/Get", "--concurrency", "1", "--requests",
		    "1", "--rate", "100:300:-100", "--step-duration", "1",
		    NULL },
		(const char *[]) { "--url", "ipc:///x", "--method",
		    "/zos.v1.Skills/Get", "--concurrency", "1", "--requests",
		    "1", "--rate", "100:300:0", "--step-duration", "1", NULL },
		(const char *[]) { "--url", "ipc:///x", "--method",
		    "/zos.v1.Skills/Get", "--concurrency", "1", "--requests",
		    "1", "--rate", "100", "--step-duration", "1", NULL },
		(const char *[]) { "--url", "ipc:///x", "--method",
		    "/zos.v1.Skills/Get", "--concurrency", "1", "--requests",
		    "1", "--rate", "1:100000:1", "--step-duration", "1",
		    NULL },
		(const char *[]) { "--url", "ipc:///x", "--method",
		    "/zos.v1.Skills/Get", "--concurrency", "1", "--requests",
		    "1", "--rate", "1:10:1", "--step-duration", "soon", NULL },
		(const char *[]) { "--url", "ipc:///x", "--method",
		    "/zos.v1.Skills/Get", "--concurrency", "1", "--requests",
		    "1", "--skip-first", "-3", NULL },
		(const char *[]) { "--url", "ipc:///x", "--method",
		    "/zos.v1.Skills/Get", "--concurrency", "1", "--requests",
		    "1", "-H", "no colon", NULL },
		(const char *[]) { "--url", "ipc:///x", "--method",
		    "/zos.v1.Skills/Get", "--concurrency", "1", "--requests",
		    "1", "-H", ": no key", NULL },
		(const char *[]) { "--url", "ipc:///x", "--method",
		    "/zos.v1.Skills/Get", "--concurrency", "1", "--requests",
		    "1", "--proto", "a.proto", "--protoset", "a.pb", NULL },
		(const char *[]) { "--url", "ipc:///x", "--method",
		    "/zos.v1.Skills/Get", "--concurrency", "1", "--requests",
		    "1", "-I", "/tmp", NULL },
	};
	struct load_result r;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		load_run(&r, cases[i]);
		cr_assert_eq(
		    r.status, 2, "case %zu: exit %d\n%s", i, r.status, r.err);
		cr_assert(strstr(r.err, "usage: zos-load") != NULL,
		    "case %zu: usage on stderr:\n%s", i, r.err);
		cr_assert_eq(r.out_len, 0, "case %zu: nothing on stdout", i);
	}

	/* A request that does not parse: exit 2, saying where (the server
	 * is not there: the compiled-in types say so). */
	load_run(&r,
	    (const char *[]) { "--url", "ipc:///x", "--method",
	        "/zos.v1.Session/Get", "--concurrency", "1", "--requests", "1",
	        "--connect-timeout-ms", "200", "--data",
	        "{\"no_such_field\": 1}", NULL });
	cr_assert_eq(r.status, 2, "%s", r.err);
	cr_assert(strstr(r.err, "--data") != NULL, "%s", r.err);
}

Test(load, unknown_method_exits_two_naming_it)
{
	struct proc        zosd;
	struct load_result r;
	char               url[160];

	/* Neither the server nor the compiled-in tables know it. */
	start_zosd(&zosd, url, sizeof(url));
	load_run(&r,
	    (const char *[]) { "--url", url, "--method",
	        "/zos.v1.Nothing/Here", "--concurrency", "1", "--requests",
	        "1", NULL });
	stop_server(&zosd);
	cr_assert_eq(r.status, 2, "%s", r.err);
	cr_assert(strstr(r.err, "/zos.v1.Nothing/Here") != NULL ||
	        strstr(r.err, "zos.v1.Nothing/Here") != NULL,
	    "%s", r.err);
	cr_assert(strstr(r.err, "unknown method") != NULL, "%s", r.err);

	/* No server to ask: the method cannot be resolved. */
	load_run(&r,
	    (const char *[]) { "--url", "ipc:///x", "--method",
	        "/zos.v1.Nothing/Here", "--concurrency", "1", "--requests",
	        "1", "--connect-timeout-ms", "200", NULL });
	cr_assert_eq(r.status, 1, "%s", r.err);
	cr_assert(strstr(r.err, "Nothing/Here") != NULL, "%s", r.err);

	/* Raw bytes need a wire name. */
	load_run(&r,
	    (const char *[]) { "--url", "ipc:///x", "--method", "Nothing",
	        "--data-hex", "00", "--concurrency", "1", "--requests", "1",
	        NULL });
	cr_assert_eq(r.status, 2, "%s", r.err);
	cr_assert(strstr(r.err, "'Nothing'") != NULL, "%s", r.err);
}

Test(load, unreachable_server_exits_one)
{
	struct load_result r;
	char               url[160];

	unique_ipc(url, sizeof(url), "nobody");
	load_run(&r,
	    (const char *[]) { "--url", url, "--method", "/zos.v1.Skills/Get",
	        "--concurrency", "1", "--requests", "1",
	        "--connect-timeout-ms", "300", "--json", NULL });
	cr_assert_eq(r.status, 1, "%s", r.err);
	cr_assert(strstr(r.err, "cannot reach") != NULL, "%s", r.err);
	cr_assert_eq(r.out_len, 0, "no report");
}

Test(load, sigint_stops_the_run_and_reports_it)
{
	struct proc p;
	char        url[160];
	struct proc echo;
	int         status;

	start_echo(&echo, url, sizeof(url));
	char *argv[] = { (char *) env_path("ZOS_LOAD"), "--url", url, "--echo",
		"--concurrency", "4", "--duration", "60", NULL };
	proc_start(&p, argv);
	servers_add(p.pid);
	cr_assert(
	    proc_wait_for(&p, "calls/s"), "a progress line:\n%s", p.text);
	kill(p.pid, SIGINT);
	status = proc_wait(&p);
	servers_remove(p.pid);
	cr_assert_eq(status, 130, "%s", p.text);
	cr_assert(strstr(p.text, "latency   p50") != NULL, "%s", p.text);
	cr_assert(strstr(p.text, "status    OK") != NULL, "%s", p.text);
	stop_server(&echo);
}

Test(load, help_explains_every_flag)
{
	static const char *const flags[] = { "--url", "--method", "--data ",
		"--data-hex", "--data-file", "--data-per-caller",
		"--concurrency", "--duration", "--requests", "--rate",
		"--connections", "--timeout-ms", "--connect-timeout-ms",
		"--token", "--echo", "--json", "--help", "default", "-H ",
		"--header", "--percentiles", "--format", "--skip-first",
		"--step-duration", "--rate A:B:STEP", "--proto ", "--protoset",
		"-I DIR", NULL };
	struct load_result       r;

	load_run(&r, (const char *[]) { "--help", NULL });
	cr_assert_eq(r.status, 0);
	for (const char *const *f = flags; *f != NULL; f++) {
		cr_assert(strstr(r.out, *f) != NULL, "%s in:\n%s", *f, r.out);
	}
}

/* Writes a zosd --auth-tokens file with TOKEN as a reader into PATH. */
static void
write_tokens(char *path, size_t len, const char *token)
{
	char line[128];

	snprintf(line, sizeof(line), "%s read", token);
	write_lines(path, len, (const char *[]) { line, NULL });
}

Test(load, header_metadata_reaches_the_server)
{
	static const char *const token = "zt-load-header-5e2d81c4a9";
	struct proc              zosd;
	struct load_result       r;
	char                     url[160], tokens[128], header[128];

	write_tokens(tokens, sizeof(tokens), token);
	unique_ipc(url, sizeof(url), "auth");
	char *argv[] = { (char *) env_path("ZOSD"), "--in-memory", "--listen",
		url, "--metrics-listen", "off", "--log-level", "warn",
		"--auth-tokens", tokens, NULL };
	proc_start(&zosd, argv);
	servers_add(zosd.pid);
	cr_assert(proc_wait_for(&zosd, "listening on"), "zosd ready:\n%s",
	    zosd.text);

	/* The token as -H metadata: every call is let in. */
	snprintf(header, sizeof(header), "authorization:  Bearer %s ", token);
	load_run(&r,
	    (const char *[]) { "--url", url, "--method", "/zos.v1.Skills/Get",
	        "-H", header, "--header", "x-tenant: blue", "--concurrency",
	        "2", "--requests", "20", "--json", NULL });
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_eq(
	    member_u64(member(r.json, "codes"), "OK"), 20, "%s", r.out);
	load_result_free(&r);

	/* Without it, none is. */
	load_run(&r,
	    (const char *[]) { "--url", url, "--method", "/zos.v1.Skills/Get",
	        "--header", "x-tenant: blue", "--concurrency", "2",
	        "--requests", "20", "--json", NULL });
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_eq(member_u64(r.json, "ok"), 0, "%s", r.out);
	cr_assert_eq(member_u64(r.json, "errors"), 20, "%s", r.out);
	load_result_free(&r);
	unlink(tokens);
	stop_server(&zosd);
}

Test(load, skip_first_calls_are_made_but_not_counted)
{
	struct test_server ts;
	struct load_result r;

	test_server_start(&ts, "ipc", NULL);
	load_run(&r,
	    (const char *[]) { "--url", ts.url, "--method",
	        "/ztest.v1.Echo/Echo", "--data-hex", "0a026869",
	        "--concurrency", "4", "--requests", "50", "--skip-first", "23",
	        "--json", NULL });
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_eq(member_u64(r.json, "calls"), 50, "%s", r.out);
	cr_assert_eq(member_u64(member(r.json, "codes"), "OK"), 50);
	cr_assert_eq(member_u64(r.json, "skip_first"), 23);
	cr_assert_eq(atomic_load(&ts.echo_runs), 73, "the server ran all");
	load_result_free(&r);

	/* With a duration too: the warm-up comes first, then the run. */
	atomic_store(&ts.echo_runs, 0);
	load_run(&r,
	    (const char *[]) { "--url", ts.url, "--method",
	        "/ztest.v1.Echo/Echo", "--data-hex", "0a026869",
	        "--concurrency", "2", "--duration", "0.3", "--skip-first",
	        "40", "--json", NULL });
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_eq(atomic_load(&ts.echo_runs),
	    member_u64(r.json, "calls") + 40, "%s", r.out);
	load_result_free(&r);
	test_server_stop(&ts);
}

/* The offset of NEEDLE in HAYSTACK, which must hold it. */
static size_t
offset_of(const char *haystack, const char *needle)
{
	const char *at = strstr(haystack, needle);

	cr_assert_not_null(at, "'%s' in:\n%s", needle, haystack);
	return (size_t) (at - haystack);
}

Test(load, percentiles_are_reported_in_the_order_given)
{
	struct proc         echo;
	struct load_result  r;
	char                url[160];
	json_object        *list;
	static const double want[] = { 99, 50, 99.9, 75 };

	start_echo(&echo, url, sizeof(url));
	load_run(&r,
	    (const char *[]) { "--url", url, "--echo", "--concurrency", "2",
	        "--requests", "100", "--percentiles", "99,50,99.9,75", NULL });
	cr_assert_eq(r.status, 0, "%s", r.err);
	{
		size_t line = offset_of(r.out, "latency   p99 ");
		size_t p50  = offset_of(r.out + line, " p50 ");
		size_t p999 = offset_of(r.out + line, " p99.9 ");
		size_t p75  = offset_of(r.out + line, " p75 ");

		cr_assert(p50 < p999 && p999 < p75, "%s", r.out);
		cr_assert_null(strstr(r.out, " p90 "), "only those asked for");
	}

	load_run(&r,
	    (const char *[]) { "--url", url, "--echo", "--concurrency", "2",
	        "--requests", "100", "--percentiles", "99,50,99.9,75",
	        "--format", "json", NULL });
	cr_assert_eq(r.status, 0, "%s", r.err);
	list = member(r.json, "percentiles");
	cr_assert_eq(json_object_array_length(list), 4);
	for (size_t i = 0; i < 4; i++) {
		json_object *item = json_object_array_get_idx(list, i);

		cr_assert_float_eq(
		    member_double(item, "percentile"), want[i], 1e-9);
		cr_assert_gt(member_double(item, "latency_us"), 0);
	}
	cr_assert_geq(member_double(member(r.json, "latency_us"), "p999"),
	    member_double(member(r.json, "latency_us"), "p50"));
	load_result_free(&r);
	stop_server(&echo);
}

/* Splits LINE (modified) at commas into FIELDS; returns how many. */
static size_t
csv_split(char *line, char **fields, size_t max)
{
	size_t n = 0;

	for (char *p = line; n < max;) {
		fields[n++] = p;
		if ((p = strchr(p, ',')) == NULL) {
			break;
		}
		*p++ = '\0';
	}
	return n;
}

Test(load, csv_report_is_a_header_and_rows)
{
	struct proc        echo;
	struct load_result r;
	char               url[160], *lines[8], *header[64], *row[64];
	size_t             n_lines = 0, n_header, calls_col = 0, phase_col = 9;
	uint64_t           step_sum = 0, total = 0;

	start_echo(&echo, url, sizeof(url));
	load_run(&r,
	    (const char *[]) { "--url", url, "--echo", "--concurrency", "2",
	        "--duration", "0.5", "--rate", "100:200:100",
	        "--step-duration", "0.2", "--format", "csv", NULL });
	stop_server(&echo);
	cr_assert_eq(r.status, 0, "%s", r.err);
	for (char *p = r.out, *nl; (nl = strchr(p, '\n')) != NULL;
	     p       = nl + 1) {
		cr_assert_lt(n_lines, 8, "%s", r.out);
		*nl              = '\0';
		lines[n_lines++] = p;
	}
	/* A header, step1, step2 and the total. */
	cr_assert_eq(n_lines, 4, "%s", r.out);
	n_header = csv_split(lines[0], header, 64);
	for (size_t i = 0; i < n_header; i++) {
		if (strcmp(header[i], "calls") == 0) {
			calls_col = i;
		}
		if (strcmp(header[i], "phase") == 0) {
			phase_col = i;
		}
	}
	cr_assert_eq(phase_col, 0);
	cr_assert_gt(calls_col, 0, "a calls column");
	for (size_t i = 0; i < n_header; i++) {
		cr_assert_neq(header[i][0], '\0', "column %zu named", i);
	}
	cr_assert_str_eq(header[n_header - 1], "OK", "a column per code");
	for (size_t l = 1; l < n_lines; l++) {
		char              *end;
		unsigned long long v;

		cr_assert_eq(csv_split(lines[l], row, 64), n_header,
		    "row %zu has every column", l);
		v = strtoull(row[calls_col], &end, 10);
		cr_assert_eq(
		    *end, '\0', "calls is a number: %s", row[calls_col]);
		if (l < n_lines - 1) {
			char want[16];

			snprintf(want, sizeof(want), "step%zu", l);
			cr_assert_str_eq(row[0], want);
			step_sum += v;
		} else {
			cr_assert_str_eq(row[0], "total");
			total = v;
		}
	}
	cr_assert_gt(total, 0);
	cr_assert_eq(step_sum, total, "the steps add up to the run");
}

Test(load, a_stepped_rate_reports_each_step)
{
	struct proc         echo;
	struct load_result  r;
	char                url[160];
	json_object        *steps;
	uint64_t            sum     = 0;
	static const double rates[] = { 300, 200, 100 };

	start_echo(&echo, url, sizeof(url));
	/* Downwards, 300 -> 100 by -100 every 0.2 s, for 0.9 s. */
	load_run(&r,
	    (const char *[]) { "--url", url, "--echo", "--concurrency", "4",
	        "--duration", "0.9", "--rate", "300:100:-100",
	        "--step-duration", "200ms", "--json", NULL });
	cr_assert_eq(r.status, 0, "%s", r.err);
	steps = member(r.json, "steps");
	cr_assert_eq(json_object_array_length(steps), 3, "%s", r.out);
	for (size_t i = 0; i < 3; i++) {
		json_object *step = json_object_array_get_idx(steps, i);

		cr_assert_float_eq(
		    member_double(step, "rate"), rates[i], 1e-9);
		cr_assert_float_eq(
		    member_double(step, "start_s"), 0.2 * (double) i, 0.05);
		cr_assert_eq(member_u64(step, "errors"), 0);
		member(member(step, "latency_us"), "p99");
		sum += member_u64(step, "calls");
	}
	cr_assert_eq(sum, member_u64(r.json, "calls"), "%s", r.out);
	cr_assert_float_eq(
	    member_double(member(r.json, "rate_schedule"), "step_duration_s"),
	    0.2, 1e-9);
	load_result_free(&r);

	/* The text report has a line per step; --requests ends the run. */
	load_run(&r,
	    (const char *[]) { "--url", url, "--echo", "--concurrency", "4",
	        "--requests", "40", "--rate", "100:200:100", "--step-duration",
	        "0.2", NULL });
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert(strstr(r.out, "calls     40 in") != NULL, "%s", r.out);
	cr_assert(
	    strstr(r.out, "step 1    at 100 calls/s") != NULL, "%s", r.out);
	cr_assert(
	    strstr(r.out, "step 2    at 200 calls/s") != NULL, "%s", r.out);
	cr_assert(
	    strstr(r.out, "latency histogram (us):") != NULL, "%s", r.out);
	stop_server(&echo);
}

/* The path of the build's kv.protoset, or kv's .proto root, into BUF. */
static const char *
kv_path(char *buf, size_t len, bool protoset)
{
	if (protoset) {
		snprintf(buf, len, "%s/tests/tools/kv/kv/v1/kv.protoset",
		    env_path("ZOS_BUILD_ROOT"));
	} else {
		snprintf(buf, len, "%s/tests/tools/kv",
		    env_path("ZOS_SOURCE_ROOT"));
	}
	return buf;
}

/* Starts the tests' kv.v1.Store, a service zos-load does not know. */
static struct kv_server *
start_kv(char *url, size_t len, bool reflection)
{
	struct kv_server_opts opts = { .no_reflection = !reflection };
	struct kv_server     *kv   = NULL;
	zrpc_status           status;

	unique_ipc(url, len, "kv");
	status = kv_server_start(&kv, url, &opts);
	cr_assert_eq(status.code, ZRPC_OK, "%s", status.message);
	return kv;
}

Test(load, data_json_drives_a_service_known_only_by_reflection)
{
	struct kv_server  *kv;
	struct load_result r;
	char               url[160];
	unsigned           before;

	kv = start_kv(url, sizeof(url), true);
	load_run(&r,
	    (const char *[]) { "--url", url, "--method", "/kv.v1.Store/Put",
	        "--data",
	        "{\"entry\": {\"key\": \"k1\", \"value\": \"v\", \"kind\": "
	        "\"KIND_TEXT\", \"labels\": {\"a\": \"b\"}, \"tags\": "
	        "[\"x\"]}}",
	        "--concurrency", "4", "--requests", "40", "--json", NULL });
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_str_eq(json_object_get_string(member(r.json, "method")),
	    "/kv.v1.Store/Put");
	cr_assert_eq(
	    member_u64(member(r.json, "codes"), "OK"), 40, "%s", r.out);
	load_result_free(&r);

	/* Get finds what Put stored (NOT_FOUND otherwise); -H reaches the
	 * service too: x-kv-fail makes every call fail as asked. */
	before = kv_server_calls(kv);
	load_run(&r,
	    (const char *[]) { "--url", url, "--method", "kv.v1.Store.Get",
	        "--data", "{\"key\": \"k1\"}", "--concurrency", "2",
	        "--requests", "10", "--json", NULL });
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_eq(
	    member_u64(member(r.json, "codes"), "OK"), 10, "%s", r.out);
	load_result_free(&r);
	cr_assert_geq(kv_server_calls(kv) - before, 10);
	load_run(&r,
	    (const char *[]) { "--url", url, "--method", "kv.v1.Store/Get",
	        "--data", "{\"key\": \"k1\"}", "-H", "x-kv-fail: NOT_FOUND",
	        "--concurrency", "2", "--requests", "10", "--json", NULL });
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_eq(
	    member_u64(member(r.json, "codes"), "NOT_FOUND"), 10, "%s", r.out);
	load_result_free(&r);

	/* A field kv.v1.GetRequest does not have: exit 2, naming it. */
	load_run(&r,
	    (const char *[]) { "--url", url, "--method", "/kv.v1.Store/Get",
	        "--data", "{\"nope\": 1}", "--concurrency", "1", "--requests",
	        "1", NULL });
	cr_assert_eq(r.status, 2, "%s", r.err);
	cr_assert(strstr(r.err, "nope") != NULL, "%s", r.err);
	kv_server_stop(kv);
}

Test(load, data_json_through_protoset_and_proto_without_reflection)
{
	struct kv_server  *kv;
	struct load_result r;
	char               url[160], protoset[512], root[512], proto[600];

	kv = start_kv(url, sizeof(url), false);
	kv_path(protoset, sizeof(protoset), true);
	kv_path(root, sizeof(root), false);
	snprintf(proto, sizeof(proto), "%s/kv/v1/kv.proto", root);

	/* Without reflection and without files the method is unknown. */
	load_run(&r,
	    (const char *[]) { "--url", url, "--method", "/kv.v1.Store/Put",
	        "--data", "{\"entry\": {\"key\": \"k\"}}", "--concurrency",
	        "1", "--requests", "1", NULL });
	cr_assert_eq(r.status, 2, "%s", r.err);
	cr_assert(strstr(r.err, "unknown method") != NULL, "%s", r.err);

	load_run(&r,
	    (const char *[]) { "--url", url, "--method", "/kv.v1.Store/Put",
	        "--protoset", protoset, "--data",
	        "{\"entry\": {\"key\": \"k\", \"weight\": 1.5}}",
	        "--concurrency", "2", "--requests", "12", "--json", NULL });
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_eq(
	    member_u64(member(r.json, "codes"), "OK"), 12, "%s", r.out);
	load_result_free(&r);

	load_run(&r,
	    (const char *[]) { "--url", url, "--method", "/kv.v1.Store/Get",
	        "--proto", proto, "-I", root, "--data", "{\"key\": \"k\"}",
	        "--concurrency", "2", "--requests", "12", "--json", NULL });
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_eq(
	    member_u64(member(r.json, "codes"), "OK"), 12, "%s", r.out);
	load_result_free(&r);
	kv_server_stop(kv);
}
