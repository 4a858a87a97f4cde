/*
 * What the runtime tells about a call besides its answer: the time it
 * queued before its handler (zrpc_call_queue_ns, and the per-method queue
 * histogram), and its W3C trace context (zrpc_call_traceparent, the
 * trace id, the traceparent made for its outgoing calls). An interceptor
 * of the test's own records what the runtime says of each call.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "testserver.h"
#include "waiter.h"
#include "zrpc/clock.h"

#define SEEN_MAX 16

/* One call, as the test's interceptor saw it. */
struct seen_call {
	char     method[64];
	uint64_t queue_ns;
	uint64_t latency_ns;
	bool     has_traceparent;
	char     traceparent[ZRPC_TRACEPARENT_LEN + 1];
	bool     has_tracestate;
	char     tracestate[ZRPC_TRACESTATE_MAX + 1];
	bool     has_trace_id;
	char     trace_id[33];
	char     child[2][ZRPC_TRACEPARENT_LEN + 1]; /* made in BEFORE */
};

struct seen {
	pthread_mutex_t  mutex;
	pthread_cond_t   changed;
	struct seen_call calls[SEEN_MAX]; /* guarded by: mutex */
	size_t           n;               /* guarded by: mutex */
};

/* Per test (Criterion runs each in its own process). */
static struct seen seen = {
	.mutex   = PTHREAD_MUTEX_INITIALIZER,
	.changed = PTHREAD_COND_INITIALIZER,
};

/* Two child traceparents of the call, made before its handler and sent
 * back in the reply metadata (x-test-child-0 and -1). */
static zrpc_status
seen_before(void *arg, zrpc_call *call)
{
	char        child[2][ZRPC_TRACEPARENT_LEN + 1];
	zrpc_status status;

	(void) arg;
	zrpc_call_child_traceparent(call, child[0]);
	zrpc_call_child_traceparent(call, child[1]);
	status =
	    zrpc_call_set_reply_metadata(call, "x-test-child-0", child[0]);
	if (!zrpc_status_is_ok(&status)) {
		return status;
	}
	return zrpc_call_set_reply_metadata(call, "x-test-child-1", child[1]);
}

static void
seen_after(
    void *arg, zrpc_call *call, const zrpc_status *status, uint64_t latency_ns)
{
	struct seen_call c;
	const char      *s;

	(void) arg;
	(void) status;
	memset(&c, 0, sizeof(c));
	snprintf(c.method, sizeof(c.method), "%s", zrpc_call_method(call));
	c.queue_ns   = zrpc_call_queue_ns(call);
	c.latency_ns = latency_ns;
	if ((s = zrpc_call_traceparent(call)) != NULL) {
		c.has_traceparent = true;
		snprintf(c.traceparent, sizeof(c.traceparent), "%s", s);
	}
	if ((s = zrpc_call_tracestate(call)) != NULL) {
		c.has_tracestate = true;
		snprintf(c.tracestate, sizeof(c.tracestate), "%s", s);
	}
	if ((s = zrpc_call_trace_id(call)) != NULL) {
		c.has_trace_id = true;
		snprintf(c.trace_id, sizeof(c.trace_id), "%s", s);
	}
	pthread_mutex_lock(&seen.mutex);
	if (seen.n < SEEN_MAX) {
		seen.calls[seen.n++] = c;
	}
	pthread_cond_broadcast(&seen.changed);
	pthread_mutex_unlock(&seen.mutex);
}

/* Waits (at most 10 s) until N calls have been seen. */
static bool
seen_wait(size_t n)
{
	struct timespec until;
	bool            ok = true;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	pthread_mutex_lock(&seen.mutex);
	while (seen.n < n) {
		if (pthread_cond_timedwait(
		        &seen.changed, &seen.mutex, &until) != 0) {
			ok = seen.n >= n;
			break;
		}
	}
	pthread_mutex_unlock(&seen.mutex);
	return ok;
}

static const struct zrpc_interceptor seen_interceptor = {
	.name   = "test-seen",
	.after  = seen_after,
	.arg    = NULL,
	.before = NULL,
};

static const struct zrpc_interceptor seen_children_interceptor = {
	.name   = "test-seen-children",
	.before = seen_before,
	.after  = seen_after,
	.arg    = NULL,
};

/* ---- queue time ---- */

/* Completions of asynchronous echoes, and how many were OK. */
struct done {
	struct test_waiter waiter;
	atomic_uint        ok;
};

static void
done_echo(void *arg, const zrpc_status *status, Ztest__V1__EchoReply *reply)
{
	struct done *d = arg;

	if (status->code == ZRPC_OK) {
		atomic_fetch_add(&d->ok, 1);
	}
	if (reply != NULL) {
		ztest__v1__echo_reply__free_unpacked(reply, NULL);
	}
	test_waiter_add(&d->waiter);
}

/* Waits (at most 20 s) for N completions; false on time-out. */
static bool
done_wait(struct done *d, unsigned n)
{
	return test_waiter_wait(&d->waiter, (int) n, 20000) >= (int) n;
}

/* Waits (at most 10 s) until SERVER has N calls in flight. */
static bool
inflight_reaches(zrpc_server *server, unsigned n)
{
	for (int i = 0; i < 10000; i++) {
		if (zrpc_server_inflight(server) >= n) {
			return true;
		}
		nanosleep(&(struct timespec) { 0, 1000000 }, NULL);
	}
	return false;
}

Test(queue, a_call_behind_a_busy_worker_shows_its_wait_in_queue_time)
{
	struct test_server       ts;
	zrpc_server_config       config = { .workers = 1 };
	zrpc_client             *client;
	Ztest__V1__EchoRequest   req = ZTEST__V1__ECHO_REQUEST__INIT;
	struct done              d;
	struct zrpc_method_stats stats;
	uint64_t                 held_from;
	zrpc_status              status;

	test_waiter_init(&d.waiter);
	atomic_init(&d.ok, 0);
	test_server_start_with(&ts, "inproc", &config, &seen_interceptor);
	client = test_client_open(&ts);

	/* The only worker blocks in Wait... */
	status = ztest_v1_echo_wait_async(client, &req, NULL, done_echo, &d);
	cr_assert_eq(status.code, ZRPC_OK, "%s", status.message);
	cr_assert(test_gate_wait_entered(&ts, 1));
	/* ...so this blocking call queues behind it. */
	status = ztest_v1_echo_blocking_echo_async(
	    client, &req, NULL, done_echo, &d);
	cr_assert_eq(status.code, ZRPC_OK, "%s", status.message);
	cr_assert(inflight_reaches(ts.server, 2));
	/* It has arrived: hold the worker 5 ms more (a known wait, not a
	 * synchronisation), then let both go. */
	held_from = zrpc_now_ns();
	for (int i = 0; i < 1000 && zrpc_now_ns() - held_from < 5000000; i++) {
		nanosleep(&(struct timespec) { 0, 1000000 }, NULL);
	}
	cr_assert_geq(zrpc_now_ns() - held_from, 5000000);
	test_gate_open(&ts);
	cr_assert(done_wait(&d, 2));
	cr_assert_eq(atomic_load(&d.ok), 2);
	cr_assert(seen_wait(2));

	pthread_mutex_lock(&seen.mutex);
	for (size_t i = 0; i < seen.n; i++) {
		const struct seen_call *c = &seen.calls[i];

		cr_assert_geq(c->latency_ns, c->queue_ns,
		    "%s: latency %llu ns >= queue %llu ns", c->method,
		    (unsigned long long) c->latency_ns,
		    (unsigned long long) c->queue_ns);
		cr_assert_gt(c->queue_ns, 0, "%s", c->method);
		if (strcmp(c->method, "/ztest.v1.Echo/BlockingEcho") == 0) {
			cr_assert_geq(c->queue_ns, 5000000,
			    "it waited the 5 ms for the worker: %llu ns",
			    (unsigned long long) c->queue_ns);
		} else {
			cr_assert_lt(c->queue_ns, c->latency_ns / 2,
			    "Wait took a free worker at once");
		}
	}
	pthread_mutex_unlock(&seen.mutex);

	/* The method's queue histogram has it too. */
	cr_assert(zrpc_server_method_stats(
	    ts.server, "/ztest.v1.Echo/BlockingEcho", &stats));
	cr_assert_eq(zrpc_histogram_count(stats.queue_ns), 1);
	cr_assert_geq(zrpc_histogram_max(stats.queue_ns), 5000000);
	cr_assert_geq(zrpc_histogram_sum(stats.latency_ns),
	    zrpc_histogram_sum(stats.queue_ns));
	zrpc_client_close(client);
	test_server_stop(&ts);
}

Test(queue, a_handed_on_call_counts_its_wait_for_a_worker)
{
	struct test_server       ts;
	zrpc_server_config       config = { .workers = 1 };
	zrpc_client             *client;
	Ztest__V1__EchoRequest   req = ZTEST__V1__ECHO_REQUEST__INIT;
	struct done              d;
	struct zrpc_method_stats stats;
	uint64_t                 held_from;

	test_waiter_init(&d.waiter);
	atomic_init(&d.ok, 0);
	test_server_start_with(&ts, "inproc", &config, &seen_interceptor);
	client = test_client_open(&ts);
	cr_assert_eq(
	    ztest_v1_echo_wait_async(client, &req, NULL, done_echo, &d).code,
	    ZRPC_OK);
	cr_assert(test_gate_wait_entered(&ts, 1));
	/* Continued starts on nng's thread and is handed to the (busy)
	 * worker: that wait is queue time too. */
	req.seq = 2;
	cr_assert_eq(
	    ztest_v1_echo_continued_async(client, &req, NULL, done_echo, &d)
	        .code,
	    ZRPC_OK);
	cr_assert(inflight_reaches(ts.server, 2));
	held_from = zrpc_now_ns();
	for (int i = 0; i < 1000 && zrpc_now_ns() - held_from < 5000000; i++) {
		nanosleep(&(struct timespec) { 0, 1000000 }, NULL);
	}
	test_gate_open(&ts);
	cr_assert(done_wait(&d, 2));
	cr_assert_eq(atomic_load(&d.ok), 2);
	cr_assert(zrpc_server_method_stats(
	    ts.server, "/ztest.v1.Echo/Continued", &stats));
	cr_assert_eq(zrpc_histogram_count(stats.queue_ns), 1);
	cr_assert_geq(zrpc_histogram_max(stats.queue_ns), 5000000, "%llu ns",
	    (unsigned long long) zrpc_histogram_max(stats.queue_ns));
	cr_assert_geq(zrpc_histogram_max(stats.latency_ns),
	    zrpc_histogram_max(stats.queue_ns));
	zrpc_client_close(client);
	test_server_stop(&ts);
}

Test(queue, a_call_refused_before_its_handler_has_no_queue_time)
{
	struct test_server       ts;
	zrpc_client             *client;
	Ztest__V1__EchoRequest   req   = ZTEST__V1__ECHO_REQUEST__INIT;
	Ztest__V1__EchoReply    *reply = NULL;
	struct zrpc_method_stats stats;
	uint8_t                  junk[] = { 0x0a, 0x02, 0xff, 0xff };
	uint8_t                 *out    = NULL;
	size_t                   out_len;

	test_server_start_with(&ts, "inproc", NULL, &seen_interceptor);
	client = test_client_open(&ts);
	/* A payload that does not decode: answered before any handler. */
	cr_assert_eq(zrpc_client_call_raw(client, "/ztest.v1.Echo/Echo", junk,
	                 sizeof(junk), &out, &out_len, NULL)
	                 .code,
	    ZRPC_INVALID_ARGUMENT);
	cr_assert_eq(
	    ztest_v1_echo_echo(client, &req, &reply, NULL).code, ZRPC_OK);
	ztest__v1__echo_reply__free_unpacked(reply, NULL);
	cr_assert(zrpc_server_method_stats(
	    ts.server, "/ztest.v1.Echo/Echo", &stats));
	cr_assert_eq(stats.calls_by_code[ZRPC_INVALID_ARGUMENT], 1);
	cr_assert_eq(zrpc_histogram_count(stats.latency_ns), 2);
	cr_assert_eq(zrpc_histogram_count(stats.queue_ns), 1, "only the run");
	cr_assert(seen_wait(2));
	pthread_mutex_lock(&seen.mutex);
	cr_assert_eq(seen.calls[0].queue_ns, 0, "never queued for a handler");
	pthread_mutex_unlock(&seen.mutex);
	zrpc_client_close(client);
	test_server_stop(&ts);
}

/* ---- trace context ---- */

#define TRACE_ID "4bf92f3577b34da6a3ce929d0e0e4736"
#define PARENT_ID "00f067aa0ba902b7"
#define GOOD "00-" TRACE_ID "-" PARENT_ID "-01"

/* One Echo call with METADATA (N entries); the call the server saw. */
static struct seen_call
call_with(const struct zrpc_metadata_entry *metadata, size_t n)
{
	struct test_server     ts;
	zrpc_client           *client;
	Ztest__V1__EchoRequest req   = ZTEST__V1__ECHO_REQUEST__INIT;
	Ztest__V1__EchoReply  *reply = NULL;
	struct zrpc_metadata  *md    = NULL;
	struct seen_call       c;
	zrpc_status            status;

	test_server_start_with(
	    &ts, "inproc", NULL, &seen_children_interceptor);
	client = test_client_open(&ts);
	status = ztest_v1_echo_echo(client, &req, &reply,
	    &(zrpc_call_opts) { .timeout_ms = 5000,
	        .metadata                   = metadata,
	        .n_metadata                 = n,
	        .reply_metadata             = &md });
	cr_assert_eq(status.code, ZRPC_OK, "%s", status.message);
	ztest__v1__echo_reply__free_unpacked(reply, NULL);
	cr_assert(seen_wait(1));
	pthread_mutex_lock(&seen.mutex);
	c      = seen.calls[0];
	seen.n = 0;
	pthread_mutex_unlock(&seen.mutex);
	for (int i = 0; i < 2; i++) {
		char        key[32];
		const char *v;

		snprintf(key, sizeof(key), "x-test-child-%d", i);
		v = zrpc_metadata_get(md, key);
		cr_assert_not_null(v, "%s", key);
		snprintf(c.child[i], sizeof(c.child[i]), "%s", v);
	}
	zrpc_metadata_free(md);
	zrpc_client_close(client);
	test_server_stop(&ts);
	return c;
}

Test(trace, a_valid_traceparent_is_accepted_and_children_keep_its_trace)
{
	struct zrpc_metadata_entry md[] = {
		{ "traceparent", GOOD },
		{ "tracestate", "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7" },
	};
	struct seen_call c = call_with(md, 2);

	cr_assert(c.has_traceparent);
	cr_assert_str_eq(c.traceparent, GOOD);
	cr_assert(c.has_tracestate);
	cr_assert_str_eq(
	    c.tracestate, "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7");
	cr_assert(c.has_trace_id);
	cr_assert_str_eq(c.trace_id, TRACE_ID);
	for (int i = 0; i < 2; i++) {
		cr_assert(
		    zrpc_traceparent_valid(c.child[i]), "%s", c.child[i]);
		cr_assert(strncmp(c.child[i], "00-" TRACE_ID "-", 36) == 0,
		    "same trace id: %s", c.child[i]);
		cr_assert(strncmp(c.child[i] + 36, PARENT_ID, 16) != 0,
		    "a new span id: %s", c.child[i]);
		cr_assert_str_eq(c.child[i] + 52, "-01", "the flags kept");
	}
	cr_assert(strncmp(c.child[0] + 36, c.child[1] + 36, 16) != 0,
	    "each outgoing call its own span id");
}

Test(trace, invalid_traceparents_are_ignored_not_refused)
{
	const char *bad[] = {
		"",                                   /* empty */
		"01-" TRACE_ID "-" PARENT_ID "-01",   /* another version */
		"00-" TRACE_ID "-" PARENT_ID "-01-x", /* longer */
		"00-" TRACE_ID "-" PARENT_ID "-1",    /* short flags */
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-" PARENT_ID
		"-01", /* upper */
		"00-00000000000000000000000000000000-" PARENT_ID
		"-01",                                 /* zero */
		"00-" TRACE_ID "-0000000000000000-01", /* zero parent */
		"00_" TRACE_ID "-" PARENT_ID "-01",    /* separator */
		"00-" TRACE_ID "-" PARENT_ID "-0g",    /* not hex */
		"ff-" TRACE_ID "-" PARENT_ID "-01",    /* forbidden version */
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct zrpc_metadata_entry md[] = {
			{ "traceparent", bad[i] },
			{ "tracestate", "congo=t61rcWkgMzE" },
		};
		struct seen_call c;

		cr_assert_not(zrpc_traceparent_valid(bad[i]), "%s", bad[i]);
		c = call_with(md, 2);
		cr_assert_not(c.has_traceparent, "%s", bad[i]);
		cr_assert_not(c.has_tracestate, "dropped with it: %s", bad[i]);
		/* A child starts a trace of its own (see below). */
		cr_assert(c.has_trace_id);
		cr_assert(strstr(bad[i], c.trace_id) == NULL, "%s", bad[i]);
	}
	cr_assert(zrpc_traceparent_valid(GOOD));
	cr_assert_not(zrpc_traceparent_valid(NULL));
}

Test(trace, without_a_traceparent_a_child_starts_a_trace)
{
	struct zrpc_metadata_entry md[] = { { "x-request-id", "r-1" } };
	struct seen_call           c    = call_with(md, 1);

	cr_assert_not(c.has_traceparent);
	cr_assert_not(c.has_tracestate);
	cr_assert(c.has_trace_id, "started by the first child");
	cr_assert_eq(strlen(c.trace_id), 32);
	for (int i = 0; i < 2; i++) {
		cr_assert(
		    zrpc_traceparent_valid(c.child[i]), "%s", c.child[i]);
		cr_assert(strncmp(c.child[i] + 3, c.trace_id, 32) == 0,
		    "both children in the started trace: %s", c.child[i]);
		cr_assert_str_eq(c.child[i] + 52, "-00", "not sampled");
	}
	cr_assert(strncmp(c.child[0] + 36, c.child[1] + 36, 16) != 0);
}

Test(trace, a_call_that_makes_no_child_has_no_trace_of_its_own)
{
	struct test_server     ts;
	zrpc_client           *client;
	Ztest__V1__EchoRequest req   = ZTEST__V1__ECHO_REQUEST__INIT;
	Ztest__V1__EchoReply  *reply = NULL;

	test_server_start_with(&ts, "inproc", NULL, &seen_interceptor);
	client = test_client_open(&ts);
	cr_assert_eq(
	    ztest_v1_echo_echo(client, &req, &reply, NULL).code, ZRPC_OK);
	ztest__v1__echo_reply__free_unpacked(reply, NULL);
	cr_assert(seen_wait(1));
	pthread_mutex_lock(&seen.mutex);
	cr_assert_not(seen.calls[0].has_traceparent);
	cr_assert_not(seen.calls[0].has_trace_id, "nothing invented");
	pthread_mutex_unlock(&seen.mutex);
	zrpc_client_close(client);
	test_server_stop(&ts);
}

Test(trace, a_tracestate_too_long_or_not_ascii_is_dropped)
{
	char                       longer[ZRPC_TRACESTATE_MAX + 2];
	struct zrpc_metadata_entry md[] = {
		{ "traceparent", GOOD },
		{ "tracestate", longer },
	};
	struct seen_call c;

	memset(longer, 'a', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = '\0';
	c                          = call_with(md, 2);
	cr_assert(c.has_traceparent);
	cr_assert_not(c.has_tracestate, "513 characters");

	longer[ZRPC_TRACESTATE_MAX] = '\0';
	c                           = call_with(md, 2);
	cr_assert(c.has_tracestate, "512 characters are kept");
	cr_assert_eq(strlen(c.tracestate), ZRPC_TRACESTATE_MAX);

	md[1].value = "k=v\tw";
	c           = call_with(md, 2);
	cr_assert_not(c.has_tracestate, "a control character");
}

Test(trace, an_invalid_traceparent_is_logged_at_debug)
{
	struct test_server         ts;
	zrpc_client               *client;
	Ztest__V1__EchoRequest     req   = ZTEST__V1__ECHO_REQUEST__INIT;
	Ztest__V1__EchoReply      *reply = NULL;
	struct zrpc_metadata_entry md[]  = {
		 { "traceparent", "00-nonsense" },
		 { "x-request-id", "req-bad-trace" },
	};

	test_server_start(&ts, "inproc", NULL); /* logs at debug */
	client = test_client_open(&ts);
	cr_assert_eq(ztest_v1_echo_echo(client, &req, &reply,
	                 &(zrpc_call_opts) { .metadata = md, .n_metadata = 2 })
	                 .code,
	    ZRPC_OK);
	ztest__v1__echo_reply__free_unpacked(reply, NULL);
	cr_assert(test_log_wait(&ts,
	    "request req-bad-trace: ignoring an invalid traceparent "
	    "'00-nonsense'"));
	zrpc_client_close(client);
	test_server_stop(&ts);
}
