/*
 * The zrpc client with several servers (zrpc_client_open_list, a comma
 * list in zrpc_client_open, zrpc_call_opts.server_url): calls spread over
 * the healthy servers, a server that went away is skipped until it answers
 * zrpc.v1.Health/Check again, a call whose request reached a server that
 * dies is UNAVAILABLE and never sent to another one. The servers are the
 * raw-nng fake of the client tests (fake_server.c), in this process or,
 * where a test kills one with SIGKILL, as a child process
 * (fake-server-child), whose Gate handler logs each run to a file so that
 * the runs survive the kill.
 */
#include <criterion/criterion.h>

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "zrpc/client.h"

#include "fake_server.h"
#include "proc.h"
#include "tmpdir.h"
#include "waiter.h"

/* Bound on any wait for a server, a callback or a condition. */
#define TEST_WAIT_MS 10000
/* Generous bound on how late a call that fails on time may return. */
#define TEST_SLACK_MS 2000
/* Connect timeout of the clients that expect servers to be down. */
#define TEST_CONNECT_MS 300

/* Milliseconds on CLOCK_MONOTONIC. */
static double
test_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec * 1e3 + (double) ts.tv_nsec / 1e6;
}

/* Sleeps 5 ms: the step of the bounded polling loops below. */
static void
test_step(void)
{
	struct timespec step = { .tv_nsec = 5 * 1000 * 1000 };

	nanosleep(&step, NULL);
}

/* A fresh ipc:// address (a path under /tmp) in BUF. */
static void
test_ipc_url(char *buf, size_t len)
{
	static atomic_int counter;

	snprintf(buf, len, "ipc:///tmp/zrpc-multi-test-%d-%d.ipc",
	    (int) getpid(), atomic_fetch_add(&counter, 1));
}

/* Starts a fake server on URL, or fails the test. */
static struct fake_server *
test_fake(const char *url, bool not_serving)
{
	struct fake_server_opts opts   = { .workers = 4,
		  .not_serving                      = not_serving };
	struct fake_server     *server = NULL;
	int                     rv = fake_server_start(&server, url, &opts);

	cr_assert_eq(rv, 0, "fake server on %s: %d", url, rv);
	return server;
}

/* Opens a client on URL (a list), or fails the test. */
static zrpc_client *
test_open(const char *url, uint32_t connect_timeout_ms)
{
	zrpc_client_opts opts   = { .connect_timeout_ms = connect_timeout_ms };
	zrpc_client     *client = NULL;
	zrpc_status      status = zrpc_client_open(&client, url, &opts);

	cr_assert_eq(status.code, ZRPC_OK, "open %s: %s", url, status.message);
	return client;
}

/* A HealthCheckRequest { service: TEXT } packed into BUF; its length. */
static size_t
test_payload(uint8_t *buf, size_t len, const char *text)
{
	size_t n = strlen(text);

	cr_assert(n < 128 && n + 2 <= len);
	buf[0] = 0x0a;
	buf[1] = (uint8_t) n;
	memcpy(buf + 2, text, n);
	return n + 2;
}

/* A blocking raw call of PATH, to SERVER_URL (NULL: any). */
static zrpc_status
test_call(zrpc_client *client, const char *path, const char *server_url,
    uint32_t timeout_ms)
{
	zrpc_call_opts opts = { .timeout_ms = timeout_ms,
		.server_url                 = server_url };
	uint8_t        payload[64];
	uint8_t       *reply = NULL;
	size_t         reply_len, n;
	zrpc_status    status;

	n      = test_payload(payload, sizeof(payload), "x");
	status = zrpc_client_call_raw(
	    client, path, payload, n, &reply, &reply_len, &opts);
	free(reply);
	return status;
}

/* Echo calls: N of them, to any server, each must be OK. */
static void
test_echo_n(zrpc_client *client, int n)
{
	for (int i = 0; i < n; i++) {
		zrpc_status status = test_call(client, FAKE_ECHO, NULL, 5000);
		cr_assert_eq(
		    status.code, ZRPC_OK, "echo %d: %s", i, status.message);
	}
}

/* An asynchronous call's outcome. */
struct test_async {
	struct test_waiter *waiter;
	zrpc_status         status;
};

static void
test_async_cb(void *arg, const zrpc_status *status, const uint8_t *reply,
    size_t reply_len)
{
	struct test_async *a = arg;

	(void) reply;
	(void) reply_len;
	a->status = *status;
	test_waiter_add(a->waiter);
}

/* Starts an asynchronous Gate call with payload ID to any server. */
static void
test_gate_async(zrpc_client *client, const char *id, uint32_t timeout_ms,
    struct test_async *a)
{
	zrpc_call_opts opts = { .timeout_ms = timeout_ms };
	uint8_t        payload[64];
	size_t         n = test_payload(payload, sizeof(payload), id);
	zrpc_status    status;

	status = zrpc_client_call_raw_async(
	    client, FAKE_GATE, payload, n, &opts, test_async_cb, a);
	cr_assert_eq(status.code, ZRPC_OK, "gate %s: %s", id, status.message);
}

/*
 * Unpinned Echo calls until each of SA and SB answered at least N more of
 * them (bounded): true when they did, that is, when calls spread over both
 * (both servers are UP then: a call goes to a server that is not UP only
 * when no server is).
 */
static bool
test_spread(
    zrpc_client *client, struct fake_server *sa, struct fake_server *sb, int n)
{
	int ea = fake_server_count(sa, FAKE_ECHOED);
	int eb = fake_server_count(sb, FAKE_ECHOED);

	for (int i = 0; i < 1000; i++) {
		if (fake_server_count(sa, FAKE_ECHOED) - ea >= n &&
		    fake_server_count(sb, FAKE_ECHOED) - eb >= n) {
			return true;
		}
		test_echo_n(client, 1);
	}
	return false;
}

Test(multi, a_comma_list_and_a_url_array_open_the_same_servers)
{
	char         a[128], b[128], list[300];
	const char  *urls[2] = { a, b };
	zrpc_client *client  = NULL;
	zrpc_status  status;

	test_ipc_url(a, sizeof(a));
	test_ipc_url(b, sizeof(b));
	snprintf(list, sizeof(list), " %s ,\t%s", a, b);
	client = test_open(list, 0);
	cr_assert_eq(zrpc_client_n_servers(client), 2);
	cr_assert_str_eq(zrpc_client_server_url(client, 0), a);
	cr_assert_str_eq(zrpc_client_server_url(client, 1), b);
	cr_assert_null(zrpc_client_server_url(client, 2));
	zrpc_client_close(client);

	status = zrpc_client_open_list(&client, urls, 2, NULL);
	cr_assert_eq(status.code, ZRPC_OK, "%s", status.message);
	cr_assert_eq(zrpc_client_n_servers(client), 2);
	cr_assert_str_eq(zrpc_client_server_url(client, 1), b);
	zrpc_client_close(client);

	client = test_open(a, 0);
	cr_assert_eq(zrpc_client_n_servers(client), 1);
	cr_assert_str_eq(zrpc_client_server_url(client, 0), a);
	zrpc_client_close(client);
	cr_assert_eq(zrpc_client_n_servers(NULL), 0);
	cr_assert_null(zrpc_client_server_url(NULL, 0));
}

Test(multi, a_list_with_a_bad_url_is_invalid_argument_naming_it)
{
	static const char *const lists[] = {
		"inproc://multi-ok,foo://bad-scheme",
		"inproc://multi-ok, not a url",
		"inproc://multi-ok,,inproc://multi-other",
		"inproc://multi-ok,",
		"inproc://multi-ok,inproc://multi-ok",
	};
	static const char *const named[] = { "foo://bad-scheme", "not a url",
		"empty URL", "empty URL", "listed twice" };
	const char *const        array[] = { "inproc://multi-ok", "tcp://" };
	zrpc_client             *client  = (zrpc_client *) &client;
	zrpc_status              status;

	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
		status = zrpc_client_open(&client, lists[i], NULL);
		cr_assert_eq(status.code, ZRPC_INVALID_ARGUMENT, "%s: %s",
		    lists[i], status.message);
		cr_assert_null(client);
		cr_assert(strstr(status.message, named[i]) != NULL,
		    "'%s' does not name '%s'", status.message, named[i]);
		client = (zrpc_client *) &client;
	}
	status = zrpc_client_open_list(&client, array, 2, NULL);
	cr_assert_eq(status.code, ZRPC_INVALID_ARGUMENT);
	cr_assert(
	    strstr(status.message, "tcp://") != NULL, "%s", status.message);
	status = zrpc_client_open_list(&client, array, 0, NULL);
	cr_assert_eq(status.code, ZRPC_INVALID_ARGUMENT);
}

Test(multi, calls_spread_over_both_servers_and_are_counted_once)
{
	char                            a[128], b[128], list[300];
	struct fake_server             *sa, *sb;
	zrpc_client                    *client;
	zrpc_status                     status;
	struct zrpc_client_method_stats stats;
	int                             ea, eb, n;

	test_ipc_url(a, sizeof(a));
	test_ipc_url(b, sizeof(b));
	sa = test_fake(a, false);
	sb = test_fake(b, false);
	snprintf(list, sizeof(list), "%s,%s", a, b);
	client = test_open(list, 0);
	/* Both connected: a call pinned to each. */
	cr_assert_eq(test_call(client, FAKE_ECHO, a, 5000).code, ZRPC_OK);
	cr_assert_eq(test_call(client, FAKE_ECHO, b, 5000).code, ZRPC_OK);
	cr_assert_eq(fake_server_count(sa, FAKE_ECHOED) +
	        fake_server_count(sb, FAKE_ECHOED),
	    2);
	/* Both serve calls (their first connection is seen). */
	cr_assert(test_spread(client, sa, sb, 2), "calls did not spread");
	ea = fake_server_count(sa, FAKE_ECHOED);
	eb = fake_server_count(sb, FAKE_ECHOED);
	n  = ea + eb;

	test_echo_n(client, 20);
	/* Turns: one caller's calls alternate. */
	cr_assert_eq(fake_server_count(sa, FAKE_ECHOED) - ea, 10);
	cr_assert_eq(fake_server_count(sb, FAKE_ECHOED) - eb, 10);

	status = zrpc_client_method_stats(client, FAKE_ECHO, &stats);
	cr_assert_eq(status.code, ZRPC_OK);
	cr_assert_eq(stats.calls, (uint64_t) n + 20);
	cr_assert_eq(stats.codes[ZRPC_OK], (uint64_t) n + 20);
	status =
	    zrpc_client_method_stats(client, "/zrpc.v1.Health/Check", &stats);
	cr_assert_eq(status.code, ZRPC_NOT_FOUND);

	zrpc_client_close(client);
	fake_server_stop(sa);
	fake_server_stop(sb);
}

Test(multi, concurrent_calls_go_to_the_server_with_fewer_in_flight)
{
	char                a[128], b[128], list[300];
	struct fake_server *sa, *sb;
	zrpc_client        *client;
	struct test_waiter  waiter;
	struct test_async   calls[6];
	char                id[16];

	test_ipc_url(a, sizeof(a));
	test_ipc_url(b, sizeof(b));
	sa = test_fake(a, false);
	sb = test_fake(b, false);
	snprintf(list, sizeof(list), "%s,%s", a, b);
	client = test_open(list, 0);
	cr_assert(test_spread(client, sa, sb, 1), "calls did not spread");

	test_waiter_init(&waiter);
	for (int i = 0; i < 6; i++) {
		calls[i].waiter = &waiter;
		snprintf(id, sizeof(id), "g%d", i);
		test_gate_async(client, id, 10000, &calls[i]);
	}
	/* Three held at each server's gate. */
	cr_assert(fake_server_wait(sa, FAKE_GATED, 3, TEST_WAIT_MS));
	cr_assert(fake_server_wait(sb, FAKE_GATED, 3, TEST_WAIT_MS));
	fake_server_release(sa, 3);
	fake_server_release(sb, 3);
	cr_assert_eq(test_waiter_wait(&waiter, 6, TEST_WAIT_MS), 6);
	for (int i = 0; i < 6; i++) {
		cr_assert_eq(calls[i].status.code, ZRPC_OK, "%d: %s", i,
		    calls[i].status.message);
	}
	cr_assert_eq(fake_server_count(sa, FAKE_GATED), 3);
	cr_assert_eq(fake_server_count(sb, FAKE_GATED), 3);
	zrpc_client_close(client);
	test_waiter_fini(&waiter);
	fake_server_stop(sa);
	fake_server_stop(sb);
}

Test(multi, server_url_pins_a_call_to_that_server_only)
{
	char                a[128], b[128], list[300];
	struct fake_server *sa, *sb;
	zrpc_client        *client;
	zrpc_status         status;
	int                 ea, eb;

	test_ipc_url(a, sizeof(a));
	test_ipc_url(b, sizeof(b));
	sa = test_fake(a, false);
	sb = test_fake(b, false);
	snprintf(list, sizeof(list), "%s,%s", a, b);
	client = test_open(list, TEST_CONNECT_MS);
	cr_assert_eq(test_call(client, FAKE_ECHO, a, 5000).code, ZRPC_OK);
	ea = fake_server_count(sa, FAKE_ECHOED);
	eb = fake_server_count(sb, FAKE_ECHOED);
	for (int i = 0; i < 10; i++) {
		status = test_call(client, FAKE_ECHO, b, 5000);
		cr_assert_eq(status.code, ZRPC_OK, "%s", status.message);
	}
	cr_assert_eq(fake_server_count(sb, FAKE_ECHOED) - eb, 10);
	cr_assert_eq(fake_server_count(sa, FAKE_ECHOED) - ea, 0);

	/* Not one of the client's URLs (compared as given). */
	status = test_call(client, FAKE_ECHO, "ipc:///nowhere", 5000);
	cr_assert_eq(status.code, ZRPC_INVALID_ARGUMENT);
	cr_assert(strstr(status.message, "ipc:///nowhere") != NULL);

	/* Pinned to a server that is gone: UNAVAILABLE, never elsewhere. */
	fake_server_stop(sa);
	eb = fake_server_count(sb, FAKE_ECHOED);
	for (int i = 0; i < 3; i++) {
		status = test_call(client, FAKE_ECHO, a, 0);
		cr_assert_eq(
		    status.code, ZRPC_UNAVAILABLE, "%s", status.message);
	}
	cr_assert_eq(fake_server_count(sb, FAKE_ECHOED), eb);

	zrpc_client_close(client);
	fake_server_stop(sb);
}

Test(multi, a_dropped_server_is_skipped_until_it_answers_health_check)
{
	char                a[128], b[128], list[300];
	struct fake_server *sa, *sb;
	zrpc_client        *client;
	zrpc_status         status;
	int                 eb, i;

	test_ipc_url(a, sizeof(a));
	test_ipc_url(b, sizeof(b));
	sa = test_fake(a, false);
	sb = test_fake(b, false);
	snprintf(list, sizeof(list), "%s,%s", a, b);
	client = test_open(list, TEST_CONNECT_MS);
	cr_assert_eq(test_call(client, FAKE_ECHO, a, 5000).code, ZRPC_OK);
	cr_assert_eq(test_call(client, FAKE_ECHO, b, 5000).code, ZRPC_OK);

	/* A goes away; a call pinned to it fails once the drop is seen. */
	fake_server_stop(sa);
	status = test_call(client, FAKE_ECHO, a, 0);
	cr_assert_eq(status.code, ZRPC_UNAVAILABLE, "%s", status.message);
	eb = fake_server_count(sb, FAKE_ECHOED);
	test_echo_n(client, 10);
	cr_assert_eq(fake_server_count(sb, FAKE_ECHOED) - eb, 10);

	/* A is back, connected and probed, but not serving: still skipped. */
	sa = test_fake(a, true);
	cr_assert(fake_server_wait(sa, FAKE_HEALTHS, 2, TEST_WAIT_MS),
	    "no probe reached the restarted server");
	test_echo_n(client, 10);
	cr_assert_eq(fake_server_count(sa, FAKE_ECHOED), 0);

	/* It answers SERVING: calls come back to it. */
	fake_server_serving(sa, true);
	for (i = 0; i < TEST_WAIT_MS / 5; i++) {
		test_echo_n(client, 1);
		if (fake_server_count(sa, FAKE_ECHOED) > 0) {
			break;
		}
		test_step();
	}
	cr_assert_gt(fake_server_count(sa, FAKE_ECHOED), 0,
	    "calls never came back to the healthy server");
	cr_assert_gt(fake_server_count(sa, FAKE_HEALTHS), 2);

	zrpc_client_close(client);
	fake_server_stop(sa);
	fake_server_stop(sb);
}

Test(multi, all_servers_down_is_unavailable_within_the_connect_timeout)
{
	char         a[128], b[128], list[300];
	zrpc_client *client;
	zrpc_status  status;
	double       t0, elapsed;

	test_ipc_url(a, sizeof(a));
	test_ipc_url(b, sizeof(b));
	snprintf(list, sizeof(list), "%s,%s", a, b);
	client = test_open(list, TEST_CONNECT_MS);
	for (int i = 0; i < 3; i++) {
		t0      = test_ms();
		status  = test_call(client, FAKE_ECHO, NULL, 0);
		elapsed = test_ms() - t0;
		cr_assert_eq(
		    status.code, ZRPC_UNAVAILABLE, "%s", status.message);
		cr_assert(strstr(status.message, "no connection") != NULL,
		    "%s", status.message);
		cr_assert_lt(elapsed, TEST_CONNECT_MS + TEST_SLACK_MS,
		    "took %.0f ms", elapsed);
	}
	zrpc_client_close(client);
}

Test(multi, a_server_that_never_connects_does_not_hold_calls)
{
	char                a[128], b[128], list[300];
	struct fake_server *sb;
	zrpc_client        *client;
	double              t0, elapsed;

	test_ipc_url(a, sizeof(a)); /* nobody listens there */
	test_ipc_url(b, sizeof(b));
	sb = test_fake(b, false);
	snprintf(list, sizeof(list), "%s,%s", a, b);
	/* A connect timeout far above the bound below. */
	client = test_open(list, 20000);
	t0     = test_ms();
	test_echo_n(client, 10);
	elapsed = test_ms() - t0;
	cr_assert_lt(elapsed, 5000, "10 calls took %.0f ms", elapsed);
	cr_assert_eq(fake_server_count(sb, FAKE_ECHOED), 10);
	zrpc_client_close(client);
	fake_server_stop(sb);
}

Test(multi, a_call_waiting_for_a_connection_moves_to_a_server_that_comes_up)
{
	char                a[128], b[128], list[300];
	struct fake_server *sb;
	zrpc_client        *client;
	struct test_waiter  waiter;
	struct test_async   call = { 0 };
	zrpc_call_opts      opts = { .timeout_ms = 15000 };
	uint8_t             payload[16];
	size_t              n;
	zrpc_status         status;
	double              t0, elapsed;

	test_ipc_url(a, sizeof(a)); /* nobody listens there */
	test_ipc_url(b, sizeof(b)); /* nobody yet */
	snprintf(list, sizeof(list), "%s,%s", a, b);
	client = test_open(list, 20000);
	/* Neither is up: the call waits for a connection to the first. */
	test_waiter_init(&waiter);
	call.waiter = &waiter;
	n           = test_payload(payload, sizeof(payload), "x");
	t0          = test_ms();
	status      = zrpc_client_call_raw_async(
	         client, FAKE_ECHO, payload, n, &opts, test_async_cb, &call);
	cr_assert_eq(status.code, ZRPC_OK, "%s", status.message);
	/* The second comes up and takes it over, long before the timeouts. */
	sb = test_fake(b, false);
	cr_assert_eq(test_waiter_wait(&waiter, 1, TEST_WAIT_MS), 1);
	elapsed = test_ms() - t0;
	cr_assert_eq(call.status.code, ZRPC_OK, "%s", call.status.message);
	cr_assert_eq(fake_server_count(sb, FAKE_ECHOED), 1);
	cr_assert_lt(elapsed, 5000, "the call took %.0f ms", elapsed);
	zrpc_client_close(client);
	test_waiter_fini(&waiter);
	fake_server_stop(sb);
}

Test(multi, a_drop_mid_call_is_unavailable_and_not_sent_again)
{
	char                a[128], b[128], list[300];
	struct fake_server *sa, *sb, *hit, *other;
	zrpc_client        *client;
	struct test_waiter  waiter;
	struct test_async   call = { 0 };

	test_ipc_url(a, sizeof(a));
	test_ipc_url(b, sizeof(b));
	sa = test_fake(a, false);
	sb = test_fake(b, false);
	snprintf(list, sizeof(list), "%s,%s", a, b);
	client = test_open(list, TEST_CONNECT_MS);
	cr_assert_eq(test_call(client, FAKE_ECHO, a, 5000).code, ZRPC_OK);
	cr_assert_eq(test_call(client, FAKE_ECHO, b, 5000).code, ZRPC_OK);

	test_waiter_init(&waiter);
	call.waiter = &waiter;
	test_gate_async(client, "victim", 10000, &call);
	for (int i = 0; i < TEST_WAIT_MS / 5; i++) {
		if (fake_server_count(sa, FAKE_GATED) +
		        fake_server_count(sb, FAKE_GATED) >
		    0) {
			break;
		}
		test_step();
	}
	hit   = fake_server_count(sa, FAKE_GATED) > 0 ? sa : sb;
	other = hit == sa ? sb : sa;
	cr_assert_eq(fake_server_count(hit, FAKE_GATED), 1);
	fake_server_kill(hit);
	cr_assert_eq(test_waiter_wait(&waiter, 1, TEST_WAIT_MS), 1);
	cr_assert_eq(
	    call.status.code, ZRPC_UNAVAILABLE, "%s", call.status.message);
	cr_assert_eq(fake_server_count(other, FAKE_GATED), 0);
	cr_assert_eq(fake_server_count(hit, FAKE_GATED), 1);
	test_echo_n(client, 4);

	zrpc_client_close(client);
	test_waiter_fini(&waiter);
	fake_server_stop(sa);
	fake_server_stop(sb);
}

/* A child fake server: its process, URL and run log. */
struct test_child {
	struct proc proc;
	char        url[160];
	char        log[160];
	bool        alive;
};

static void
test_child_start(struct test_child *c, const char *dir, const char *name)
{
	char *argv[4];

	snprintf(c->url, sizeof(c->url), "ipc://%s/%s.ipc", dir, name);
	snprintf(c->log, sizeof(c->log), "%s/%s.log", dir, name);
	argv[0] = (char *) env_path("ZRPC_FAKE_SERVER_CHILD");
	argv[1] = c->url;
	argv[2] = c->log;
	argv[3] = NULL;
	proc_start(&c->proc, argv);
	cr_assert(proc_wait_for(&c->proc, "listening on"), "%s: %.*s", name,
	    (int) c->proc.len, c->proc.text);
	c->alive = true;
}

/* How many times the child's Gate handler ran the call named ID. */
static int
test_child_runs(const struct test_child *c, const char *id)
{
	char  line[256], want[64];
	FILE *f = fopen(c->log, "r");
	int   n = 0;

	if (f == NULL) {
		return 0;
	}
	snprintf(want, sizeof(want), "gate %s\n", id);
	while (fgets(line, sizeof(line), f) != NULL) {
		n += strcmp(line, want) == 0;
	}
	fclose(f);
	return n;
}

#define TEST_KILL_CALLS 6

Test(multi, a_server_killed_mid_call_runs_each_call_at_most_once,
    .fini = proc_kill_left)
{
	char               dir[] = "/tmp/zrpc-multi-kill-XXXXXX";
	char               list[400], id[16];
	struct test_child  kids[2];
	struct test_child *victim, *survivor;
	struct test_waiter waiter;
	struct test_async  calls[TEST_KILL_CALLS];
	zrpc_client       *client;
	zrpc_status        status;
	int                runs, i, k, on_victim = 0;

	cr_assert_not_null(mkdtemp(dir));
	test_child_start(&kids[0], dir, "a");
	test_child_start(&kids[1], dir, "b");
	snprintf(list, sizeof(list), "%s,%s", kids[0].url, kids[1].url);
	client = test_open(list, TEST_CONNECT_MS);
	cr_assert_eq(
	    test_call(client, FAKE_ECHO, kids[0].url, 5000).code, ZRPC_OK);
	cr_assert_eq(
	    test_call(client, FAKE_ECHO, kids[1].url, 5000).code, ZRPC_OK);

	/* Calls held inside both servers' handlers. */
	test_waiter_init(&waiter);
	for (i = 0; i < TEST_KILL_CALLS; i++) {
		calls[i].waiter = &waiter;
		snprintf(id, sizeof(id), "c%d", i);
		test_gate_async(client, id, 30000, &calls[i]);
	}
	for (k = 0; k < TEST_WAIT_MS / 5; k++) {
		runs = 0;
		for (i = 0; i < TEST_KILL_CALLS; i++) {
			snprintf(id, sizeof(id), "c%d", i);
			runs += test_child_runs(&kids[0], id) +
			    test_child_runs(&kids[1], id);
		}
		if (runs == TEST_KILL_CALLS) {
			break;
		}
		test_step();
	}
	cr_assert_eq(
	    runs, TEST_KILL_CALLS, "only %d calls reached a handler", runs);
	/* The victim: the first server, unless it holds none of them. */
	for (i = 0; i < TEST_KILL_CALLS; i++) {
		snprintf(id, sizeof(id), "c%d", i);
		on_victim += test_child_runs(&kids[0], id);
	}
	victim   = on_victim > 0 ? &kids[0] : &kids[1];
	survivor = on_victim > 0 ? &kids[1] : &kids[0];
	if (on_victim == 0) {
		on_victim = TEST_KILL_CALLS;
	}

	/* SIGKILL mid-call: the calls it held fail UNAVAILABLE. */
	proc_kill9(&victim->proc);
	victim->alive = false;
	cr_assert_eq(
	    test_waiter_wait(&waiter, on_victim, TEST_WAIT_MS), on_victim);
	/* The next calls go to the survivor. */
	test_echo_n(client, 4);
	/* The survivor goes too: its calls fail UNAVAILABLE as well. */
	proc_kill9(&survivor->proc);
	survivor->alive = false;
	cr_assert_eq(test_waiter_wait(&waiter, TEST_KILL_CALLS, TEST_WAIT_MS),
	    TEST_KILL_CALLS);

	for (i = 0; i < TEST_KILL_CALLS; i++) {
		snprintf(id, sizeof(id), "c%d", i);
		cr_assert_eq(calls[i].status.code, ZRPC_UNAVAILABLE, "%s: %s",
		    id, calls[i].status.message);
		runs = test_child_runs(victim, id) +
		    test_child_runs(survivor, id);
		cr_assert_eq(runs, 1, "%s ran %d times", id, runs);
	}
	status = test_call(client, FAKE_ECHO, NULL, 0);
	cr_assert_eq(status.code, ZRPC_UNAVAILABLE, "%s", status.message);

	zrpc_client_close(client);
	test_waiter_fini(&waiter);
	cr_assert_eq(test_tmpdir_remove(dir), 0);
}
