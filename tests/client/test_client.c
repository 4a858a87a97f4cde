/*
 * zrpc client runtime tests, against a fake server written with raw nng
 * rep0 (fake_server.c), over inproc://, ipc:// and tcp://127.0.0.1.
 *
 * Every test starts its own server on a unique address (pid and a
 * counter) and stops it; every wait is bounded; no sleep synchronises
 * anything: slow calls are held at a gate that the test opens.
 */
#include <criterion/criterion.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "zrpc/client.h"
#include "zrpc/histogram.h"
#include "zrpc/v1/envelope.pb-c.h"
#include "zrpc/v1/health.pb-c.h"

#include "fake_server.h"
#include "nng_lost_request.h"
#include "waiter.h"

/* Every test is killed after this many seconds. */
#define TEST_TIMEOUT_S 120
/* Generous bound on how late a timed-out call may return. */
#define TEST_SLACK_MS 2000
/* Bound on any wait for the fake server or for callbacks. */
#define TEST_WAIT_MS 10000

#define TEST_METHOD(short_name, path)                            \
	{                                                        \
		short_name, path,                                \
		    &zrpc__v1__health_check_request__descriptor, \
		    &zrpc__v1__health_check_request__descriptor, \
	}

static const struct zrpc_method method_echo = TEST_METHOD("Echo", FAKE_ECHO);
static const struct zrpc_method method_fail = TEST_METHOD("Fail", FAKE_FAIL);
static const struct zrpc_method method_gate = TEST_METHOD("Gate", FAKE_GATE);
static const struct zrpc_method method_never =
    TEST_METHOD("Never", FAKE_NEVER);
static const struct zrpc_method method_garbage =
    TEST_METHOD("Garbage", FAKE_GARBAGE);
static const struct zrpc_method method_bad_payload =
    TEST_METHOD("BadPayload", FAKE_BAD_PAYLOAD);
static const struct zrpc_method method_big  = TEST_METHOD("Big", FAKE_BIG);
static const struct zrpc_method method_drop = TEST_METHOD("Drop", FAKE_DROP);
static const struct zrpc_method method_unknown =
    TEST_METHOD("Nope", "/zrpc.test.Fake/Nope");
static const struct zrpc_method method_metadata =
    TEST_METHOD("Metadata", FAKE_METADATA);
static const struct zrpc_method method_metadata_flood =
    TEST_METHOD("MetadataFlood", FAKE_METADATA_FLOOD);

/* A self-signed certificate for "localhost" (2000-2100) and its key. */
static const char test_cert_pem[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBYTCCAQegAwIBAgIBATAKBggqhkjOPQQDAjAUMRIwEAYDVQQDDAlsb2NhbGhv\n"
    "c3QwIBcNMDAwMTAxMDAwMDAwWhgPMjEwMDAxMDEwMDAwMDBaMBQxEjAQBgNVBAMM\n"
    "CWxvY2FsaG9zdDBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABOJjWd7+llR5wZQz\n"
    "eMmv/A1hB+iOlXJ3Dlj9st0S8Yu6mPQXI9UOC6C8KL0MN0E/T0JVbtsJw0QaUOYk\n"
    "b/GV1k+jSDBGMA8GA1UdEwEB/wQFMAMBAf8wFAYDVR0RBA0wC4IJbG9jYWxob3N0\n"
    "MB0GA1UdDgQWBBRuX6tNSrWfCsPeW1u8vYDkCryeuzAKBggqhkjOPQQDAgNIADBF\n"
    "AiEAxzossN87e33p/C+FrlbishmPy5jO8taSk/bp9Lp9qnwCIFughevJXNPE8D9h\n"
    "CW+N33+P/DD9wyaENUhdDTCG3U/+\n"
    "-----END CERTIFICATE-----\n";
static const char test_key_pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg1h6vI4LMMV9dLqnL\n"
    "q7funIA+/JwuaLKZcDqjUcvYlsihRANCAATiY1ne/pZUecGUM3jJr/wNYQfojpVy\n"
    "dw5Y/bLdEvGLupj0FyPVDgugvCi9DDdBP09CVW7bCcNEGlDmJG/xldZP\n"
    "-----END PRIVATE KEY-----\n";

/* Milliseconds on CLOCK_MONOTONIC, with a fraction. */
static double
test_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec * 1e3 + (double) ts.tv_nsec / 1e6;
}

/* Tells whether ID has the form of a request id the client makes. */
static bool
test_is_client_request_id(const char *id)
{
	size_t i;

	if (id == NULL) {
		return false;
	}
	for (i = 0; i < 16; i++) {
		if (!((id[i] >= '0' && id[i] <= '9') ||
		        (id[i] >= 'a' && id[i] <= 'f'))) {
			return false;
		}
	}
	if (id[16] != '-' || id[17] == '\0') {
		return false;
	}
	for (i = 17; id[i] != '\0'; i++) {
		if (!((id[i] >= '0' && id[i] <= '9') ||
		        (id[i] >= 'a' && id[i] <= 'f'))) {
			return false;
		}
	}
	return true;
}

/* A fresh address for TRANSPORT ("inproc", "ipc" or "tcp") in BUF. */
static void
test_url(char *buf, size_t len, const char *transport)
{
	static atomic_int counter;
	int               n = atomic_fetch_add(&counter, 1);

	if (strcmp(transport, "ipc") == 0) {
		snprintf(buf, len, "ipc:///tmp/zrpc-client-test-%d-%d.ipc",
		    (int) getpid(), n);
	} else if (strcmp(transport, "tcp") == 0) {
		snprintf(buf, len, "tcp://127.0.0.1:0");
	} else {
		snprintf(buf, len, "inproc://zrpc-client-test-%d-%d",
		    (int) getpid(), n);
	}
}

/* Starts a fake server on URL with WORKERS workers, or fails the test. */
static struct fake_server *
test_server(const char *url, int workers)
{
	struct fake_server_opts opts   = { .workers = workers };
	struct fake_server     *server = NULL;
	int                     rv = fake_server_start(&server, url, &opts);

	cr_assert_eq(rv, 0, "fake server on %s: %d", url, rv);
	return server;
}

/* Opens a client to URL, or fails the test. */
static zrpc_client *
test_client(const char *url, const zrpc_client_opts *opts)
{
	zrpc_client *client = NULL;
	zrpc_status  status = zrpc_client_open(&client, url, opts);

	cr_assert_eq(status.code, ZRPC_OK, "open %s: %s", url, status.message);
	cr_assert_not_null(client);
	return client;
}

/*
 * Calls METHOD with a HealthCheckRequest naming TEXT; on OK copies the
 * reply's service into OUT (when not NULL).
 */
static zrpc_status
test_call(zrpc_client *client, const struct zrpc_method *method,
    const char *text, char *out, size_t out_len, const zrpc_call_opts *opts)
{
	Zrpc__V1__HealthCheckRequest request =
	    ZRPC__V1__HEALTH_CHECK_REQUEST__INIT;
	ProtobufCMessage             *reply = NULL;
	Zrpc__V1__HealthCheckRequest *typed;
	zrpc_status                   status;

	request.service = (char *) text;
	status = zrpc_client_call(client, method, &request.base, &reply, opts);
	if (status.code != ZRPC_OK) {
		if (reply != NULL) {
			status = zrpc_status_make(
			    ZRPC_INTERNAL, "reply set on error");
		}
		return status;
	}
	if (reply == NULL) {
		return zrpc_status_make(ZRPC_INTERNAL, "no reply on OK");
	}
	typed = (Zrpc__V1__HealthCheckRequest *) reply;
	if (out != NULL) {
		snprintf(out, out_len, "%s", typed->service);
	}
	protobuf_c_message_free_unpacked(reply, NULL);
	return status;
}

/* One asynchronous call's outcome. */
struct test_slot {
	struct test_waiter *waiter;
	zrpc_status         status;
	char                text[64];
	bool                had_reply;
	atomic_int          calls; /* how often the callback ran */
	double              done_ms;
};

/* Typed callback (through zrpc_reply_invoke_generic). */
static void
test_slot_cb(void *arg, const zrpc_status *status, ProtobufCMessage *reply)
{
	struct test_slot *slot = arg;

	slot->status  = *status;
	slot->done_ms = test_now_ms();
	if (reply != NULL) {
		Zrpc__V1__HealthCheckRequest *typed =
		    (Zrpc__V1__HealthCheckRequest *) reply;
		slot->had_reply = true;
		snprintf(slot->text, sizeof(slot->text), "%s", typed->service);
		protobuf_c_message_free_unpacked(reply, NULL);
	}
	atomic_fetch_add(&slot->calls, 1);
	test_waiter_add(slot->waiter);
}

/* Raw callback: unpacks the reply bytes itself. */
static void
test_slot_raw_cb(
    void *arg, const zrpc_status *status, const uint8_t *reply, size_t len)
{
	struct test_slot             *slot = arg;
	Zrpc__V1__HealthCheckRequest *typed;

	slot->status  = *status;
	slot->done_ms = test_now_ms();
	if (reply != NULL) {
		slot->had_reply = true;
		typed =
		    zrpc__v1__health_check_request__unpack(NULL, len, reply);
		if (typed != NULL) {
			snprintf(slot->text, sizeof(slot->text), "%s",
			    typed->service);
			zrpc__v1__health_check_request__free_unpacked(
			    typed, NULL);
		}
	}
	atomic_fetch_add(&slot->calls, 1);
	test_waiter_add(slot->waiter);
}

/* Starts an asynchronous typed call of METHOD with TEXT into SLOT. */
static zrpc_status
test_call_async(zrpc_client *client, const struct zrpc_method *method,
    const char *text, struct test_slot *slot, const zrpc_call_opts *opts)
{
	Zrpc__V1__HealthCheckRequest request =
	    ZRPC__V1__HEALTH_CHECK_REQUEST__INIT;

	request.service = (char *) text;
	return zrpc_client_call_async(client, method, &request.base, opts,
	    zrpc_reply_invoke_generic, (void (*)(void)) test_slot_cb, slot);
}

/* A blocking call run on its own thread. */
struct test_blocking {
	pthread_t                 thread;
	zrpc_client              *client;
	const struct zrpc_method *method;
	zrpc_call_opts            opts;
	zrpc_status               status;
	double                    elapsed_ms;
};

static void *
test_blocking_main(void *arg)
{
	struct test_blocking *b     = arg;
	double                start = test_now_ms();

	b->status =
	    test_call(b->client, b->method, "blocking", NULL, 0, &b->opts);
	b->elapsed_ms = test_now_ms() - start;
	return NULL;
}

Test(client, open_rejects_malformed_urls, .timeout = TEST_TIMEOUT_S)
{
	static const char *const bad[]  = { "not a url", "foo://bar", "tcp://",
		 "ipc://", "" };
	zrpc_client             *client = NULL;
	zrpc_status              status;
	size_t                   i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		status = zrpc_client_open(&client, bad[i], NULL);
		cr_expect_eq(status.code, ZRPC_INVALID_ARGUMENT,
		    "'%s' gave %s: %s", bad[i], zrpc_status_name(status.code),
		    status.message);
		cr_expect_null(client);
	}
	status = zrpc_client_open(&client, NULL, NULL);
	cr_expect_eq(status.code, ZRPC_INVALID_ARGUMENT);
	status = zrpc_client_open(NULL, "inproc://x", NULL);
	cr_expect_eq(status.code, ZRPC_INVALID_ARGUMENT);
	zrpc_client_close(NULL);
}

Test(client, round_trip_carries_metadata_token_and_timeout,
    .timeout = TEST_TIMEOUT_S)
{
	static const struct zrpc_metadata_entry md[] = {
		{ "x-request-id", "req-42" },
		{ "tenant", "blue" },
	};
	zrpc_call_opts      opts = { .timeout_ms = 5000 };
	struct fake_record  rec;
	struct fake_server *server;
	zrpc_client        *client;
	zrpc_status         status;
	char                url[128], text[64];
	bool                auth = false, rid = false, tenant = false;
	size_t              i;

	opts.token      = "s3cret";
	opts.metadata   = md;
	opts.n_metadata = 2;
	test_url(url, sizeof(url), "inproc");
	server = test_server(url, 2);
	client = test_client(url, NULL);

	status = test_call(
	    client, &method_echo, "hello", text, sizeof(text), &opts);
	cr_assert_eq(status.code, ZRPC_OK, "%s", status.message);
	cr_expect_str_eq(text, "hello");

	fake_server_last(server, &rec);
	cr_expect_str_eq(rec.method, FAKE_ECHO);
	cr_expect_eq(rec.timeout_ms, 5000);
	cr_expect_eq(rec.n_metadata, 3);
	for (i = 0; i < rec.n_metadata; i++) {
		if (strcmp(rec.keys[i], "authorization") == 0) {
			auth = strcmp(rec.values[i], "Bearer s3cret") == 0;
		} else if (strcmp(rec.keys[i], "x-request-id") == 0) {
			rid = strcmp(rec.values[i], "req-42") == 0;
		} else if (strcmp(rec.keys[i], "tenant") == 0) {
			tenant = strcmp(rec.values[i], "blue") == 0;
		}
	}
	cr_expect(auth, "authorization: Bearer s3cret reached the server");
	cr_expect(rid, "x-request-id reached the server");
	cr_expect(tenant, "tenant reached the server");

	/* No options: no timeout, and no metadata but the request id the
	 * client made. */
	status = test_call(client, &method_echo, "", text, sizeof(text), NULL);
	cr_assert_eq(status.code, ZRPC_OK, "%s", status.message);
	cr_expect_str_eq(text, "");
	fake_server_last(server, &rec);
	cr_expect_eq(rec.timeout_ms, 0);
	cr_expect_eq(rec.n_metadata, 1);
	cr_expect_str_eq(rec.keys[0], "x-request-id");

	zrpc_client_close(client);
	fake_server_stop(server);
}

Test(client, server_error_codes_and_messages_pass_through,
    .timeout = TEST_TIMEOUT_S)
{
	struct fake_server *server;
	zrpc_client        *client;
	zrpc_status         status;
	char                url[128], text[64], want[64];
	int                 code;

	test_url(url, sizeof(url), "ipc");
	server = test_server(url, 2);
	client = test_client(url, NULL);

	for (code = 1; code < ZRPC_CODE_COUNT; code++) {
		snprintf(text, sizeof(text), "%d:message %d", code, code);
		snprintf(want, sizeof(want), "message %d", code);
		status = test_call(client, &method_fail, text, NULL, 0, NULL);
		cr_expect_eq(status.code, (zrpc_code) code, "code %d gave %s",
		    code, zrpc_status_name(status.code));
		cr_expect_str_eq(status.message, want);
	}
	status = test_call(client, &method_fail, "99:odd", NULL, 0, NULL);
	cr_expect_eq(status.code, ZRPC_UNKNOWN);
	cr_expect(strstr(status.message, "99") != NULL, "%s", status.message);
	cr_expect(strstr(status.message, "odd") != NULL, "%s", status.message);

	status = test_call(client, &method_unknown, "x", NULL, 0, NULL);
	cr_expect_eq(status.code, ZRPC_UNIMPLEMENTED);
	cr_expect_str_eq(status.message, "no such method");

	zrpc_client_close(client);
	fake_server_stop(server);
}

Test(client, slow_server_gives_deadline_exceeded_and_late_reply_is_dropped,
    .timeout = TEST_TIMEOUT_S)
{
	zrpc_call_opts      opts = { .timeout_ms = 200 };
	struct fake_server *server;
	zrpc_client        *client;
	zrpc_status         status;
	char                url[128], text[64];
	double              start, elapsed;

	test_url(url, sizeof(url), "ipc");
	server = test_server(url, 2);
	client = test_client(url, NULL);

	start = test_now_ms();
	status =
	    test_call(client, &method_gate, "late", text, sizeof(text), &opts);
	elapsed = test_now_ms() - start;
	cr_expect_eq(status.code, ZRPC_DEADLINE_EXCEEDED, "%s: %s",
	    zrpc_status_name(status.code), status.message);
	cr_expect_geq(elapsed, 200.0, "returned after %.3f ms", elapsed);
	cr_expect_lt(elapsed, 200.0 + TEST_SLACK_MS, "took %.3f ms", elapsed);

	/* Let the late reply go out, then make sure it reaches no one. */
	fake_server_release(server, 1);
	cr_assert(
	    fake_server_wait(server, FAKE_GATE_REPLIED, 1, TEST_WAIT_MS));
	opts.timeout_ms = 5000;
	status =
	    test_call(client, &method_echo, "next", text, sizeof(text), &opts);
	cr_expect_eq(status.code, ZRPC_OK, "%s", status.message);
	cr_expect_str_eq(text, "next");

	zrpc_client_close(client);
	fake_server_stop(server);
}

Test(client, async_call_deadline_runs_callback_once, .timeout = TEST_TIMEOUT_S)
{
	zrpc_call_opts      opts = { .timeout_ms = 150 };
	struct test_waiter  waiter;
	struct test_slot    slot = { .waiter = &waiter };
	struct fake_server *server;
	zrpc_client        *client;
	zrpc_status         status;
	char                url[128];
	double              start;

	test_waiter_init(&waiter);
	test_url(url, sizeof(url), "inproc");
	server = test_server(url, 2);
	client = test_client(url, NULL);

	start  = test_now_ms();
	status = test_call_async(client, &method_gate, "slow", &slot, &opts);
	cr_assert_eq(status.code, ZRPC_OK, "%s", status.message);
	cr_assert_eq(test_waiter_wait(&waiter, 1, TEST_WAIT_MS), 1);
	cr_expect_eq(slot.status.code, ZRPC_DEADLINE_EXCEEDED, "%s",
	    slot.status.message);
	cr_expect_geq(slot.done_ms - start, 150.0);
	cr_expect_lt(slot.done_ms - start, 150.0 + TEST_SLACK_MS);
	cr_expect_not(slot.had_reply);

	fake_server_release(server, 1);
	cr_assert(
	    fake_server_wait(server, FAKE_GATE_REPLIED, 1, TEST_WAIT_MS));
	zrpc_client_close(client);
	cr_expect_eq(atomic_load(&slot.calls), 1);
	fake_server_stop(server);
	test_waiter_fini(&waiter);
}

Test(client, no_server_is_unavailable_within_connect_timeout,
    .timeout = TEST_TIMEOUT_S)
{
	zrpc_client_opts copts = { .connect_timeout_ms = 300 };
	zrpc_call_opts   opts  = { .timeout_ms = 100 };
	zrpc_client     *client;
	zrpc_status      status;
	char             url[128];
	double           start, elapsed;

	test_url(url, sizeof(url), "ipc");
	client = test_client(url, &copts);

	/* No deadline: the connect timeout bounds the wait. */
	start   = test_now_ms();
	status  = test_call(client, &method_echo, "x", NULL, 0, NULL);
	elapsed = test_now_ms() - start;
	cr_expect_eq(status.code, ZRPC_UNAVAILABLE, "%s: %s",
	    zrpc_status_name(status.code), status.message);
	cr_expect(strstr(status.message, "no connection") != NULL, "%s",
	    status.message);
	cr_expect(strstr(status.message, url) != NULL, "%s", status.message);
	/* nng's timers count whole milliseconds: up to 1 ms early here. */
	cr_expect_geq(elapsed, 299.0, "%.3f ms", elapsed);
	cr_expect_lt(elapsed, 300.0 + TEST_SLACK_MS, "%.3f ms", elapsed);

	/* A sooner deadline wins, still UNAVAILABLE. */
	start   = test_now_ms();
	status  = test_call(client, &method_echo, "x", NULL, 0, &opts);
	elapsed = test_now_ms() - start;
	cr_expect_eq(status.code, ZRPC_UNAVAILABLE, "%s", status.message);
	cr_expect_geq(elapsed, 99.0, "%.3f ms", elapsed);
	cr_expect_lt(elapsed, 100.0 + TEST_SLACK_MS, "%.3f ms", elapsed);

	zrpc_client_close(client);
}

Test(client, server_started_after_the_client_is_reached,
    .timeout = TEST_TIMEOUT_S)
{
	zrpc_client_opts    copts = { .connect_timeout_ms = 300 };
	zrpc_call_opts      opts  = { .timeout_ms = 5000 };
	struct fake_server *server;
	zrpc_client        *client;
	zrpc_status         status;
	char                url[128], text[64];
	int                 attempt;

	test_url(url, sizeof(url), "ipc");
	client = test_client(url, &copts);
	status = test_call(client, &method_echo, "x", NULL, 0, NULL);
	cr_expect_eq(status.code, ZRPC_UNAVAILABLE, "%s", status.message);

	server = test_server(url, 2);
	/* The dialer retries with back-off (<= 500 ms): a bounded retry. */
	for (attempt = 0; attempt < 20; attempt++) {
		status = test_call(
		    client, &method_echo, "up", text, sizeof(text), &opts);
		if (status.code != ZRPC_UNAVAILABLE) {
			break;
		}
	}
	cr_expect_eq(status.code, ZRPC_OK, "%s", status.message);
	cr_expect_str_eq(text, "up");

	zrpc_client_close(client);
	fake_server_stop(server);
}

Test(client, server_dying_mid_call_is_unavailable, .timeout = TEST_TIMEOUT_S)
{
	zrpc_call_opts       opts = { .timeout_ms = 10000 };
	struct test_waiter   waiter;
	struct test_slot     slot = { .waiter = &waiter };
	struct test_blocking blocking;
	struct fake_server  *server;
	zrpc_client         *client;
	zrpc_status          status;
	char                 url[128];
	double               start;

	test_waiter_init(&waiter);
	test_url(url, sizeof(url), "tcp");
	server = test_server(url, 4);
	client = test_client(fake_server_url(server), NULL);

	/* One asynchronous and one blocking call, both at the gate. */
	status = test_call_async(client, &method_gate, "a", &slot, &opts);
	cr_assert_eq(status.code, ZRPC_OK, "%s", status.message);
	memset(&blocking, 0, sizeof(blocking));
	blocking.client = client;
	blocking.method = &method_gate;
	blocking.opts   = opts;
	cr_assert_eq(pthread_create(&blocking.thread, NULL, test_blocking_main,
	                 &blocking),
	    0);
	cr_assert(fake_server_wait(server, FAKE_GATED, 2, TEST_WAIT_MS));

	start = test_now_ms();
	fake_server_kill(server);
	cr_assert_eq(test_waiter_wait(&waiter, 1, TEST_WAIT_MS), 1);
	pthread_join(blocking.thread, NULL);

	cr_expect_eq(slot.status.code, ZRPC_UNAVAILABLE, "%s: %s",
	    zrpc_status_name(slot.status.code), slot.status.message);
	cr_expect(strstr(slot.status.message, "lost") != NULL, "%s",
	    slot.status.message);
	cr_expect_lt(slot.done_ms - start, 5000.0);
	cr_expect_eq(blocking.status.code, ZRPC_UNAVAILABLE, "%s: %s",
	    zrpc_status_name(blocking.status.code), blocking.status.message);
	cr_expect_lt(blocking.elapsed_ms, 10000.0);

	zrpc_client_close(client);
	cr_expect_eq(atomic_load(&slot.calls), 1);
	fake_server_stop(server);
	test_waiter_fini(&waiter);
}

Test(client, dropped_connection_never_runs_a_call_twice,
    .timeout = TEST_TIMEOUT_S)
{
	zrpc_call_opts      opts = { .timeout_ms = 5000 };
	struct fake_server *server;
	zrpc_client        *client;
	zrpc_status         status;
	char                url[128], text[64];
	int                 i;

	test_url(url, sizeof(url), "ipc");
	server = test_server(url, 4);
	client = test_client(url, NULL);

	for (i = 0; i < 20; i++) {
		status =
		    test_call(client, &method_drop, "once", NULL, 0, &opts);
		cr_expect_eq(status.code, ZRPC_UNAVAILABLE, "%d: %s: %s", i,
		    zrpc_status_name(status.code), status.message);
		/* Reconnects; a re-sent Drop would arrive before this. */
		status = test_call(
		    client, &method_echo, "after", text, sizeof(text), &opts);
		cr_expect_eq(
		    status.code, ZRPC_OK, "%d: %s", i, status.message);
		cr_assert_eq(fake_server_count(server, FAKE_DROPPED), i + 1,
		    "Drop ran %d times after %d calls",
		    fake_server_count(server, FAKE_DROPPED), i + 1);
	}

	zrpc_client_close(client);
	fake_server_stop(server);
}

#define TEST_THREADS 64
#define TEST_CALLS_PER_THREAD 1000

struct test_worker {
	pthread_t    thread;
	zrpc_client *client;
	int          id;
	int          failures;
	zrpc_status  first_failure;
};

static void *
test_worker_main(void *arg)
{
	struct test_worker *w    = arg;
	zrpc_call_opts      opts = { .timeout_ms = 30000 };
	zrpc_status         status;
	char                want[64], got[64];
	int                 seq;

	for (seq = 0; seq < TEST_CALLS_PER_THREAD; seq++) {
		snprintf(want, sizeof(want), "t%d-s%d", w->id, seq);
		got[0] = '\0';
		status = test_call(
		    w->client, &method_echo, want, got, sizeof(got), &opts);
		if (status.code != ZRPC_OK || strcmp(want, got) != 0) {
			if (w->failures++ == 0) {
				w->first_failure = status.code != ZRPC_OK
				    ? status
				    : zrpc_status_make(ZRPC_INTERNAL,
				          "sent %s, got %s", want, got);
			}
		}
	}
	return NULL;
}

/* CLIENT's metrics count N calls of FAKE_ECHO, all OK, N latencies. */
static void
test_expect_echo_counted(zrpc_client *client, uint64_t n)
{
	struct zrpc_client_method_stats stats;
	zrpc_status                     status;

	status = zrpc_client_method_stats(client, FAKE_ECHO, &stats);
	cr_assert_eq(status.code, ZRPC_OK, "%s", status.message);
	cr_expect_eq(stats.calls, n);
	cr_expect_eq(stats.codes[ZRPC_OK], n);
	cr_expect_eq(stats.errors, 0);
	cr_expect_eq(zrpc_histogram_count(stats.latency), n);
}

Test(client, shared_client_matches_every_reply_across_64_threads,
    .timeout = TEST_TIMEOUT_S)
{
	static struct test_worker workers[TEST_THREADS];
	struct fake_server       *server;
	zrpc_client              *client;
	char                      url[128];
	int                       i, failures = 0;

	test_url(url, sizeof(url), "inproc");
	server = test_server(url, 8);
	client = test_client(url, NULL);

	for (i = 0; i < TEST_THREADS; i++) {
		workers[i] =
		    (struct test_worker) { .client = client, .id = i };
		cr_assert_eq(pthread_create(&workers[i].thread, NULL,
		                 test_worker_main, &workers[i]),
		    0);
	}
	for (i = 0; i < TEST_THREADS; i++) {
		pthread_join(workers[i].thread, NULL);
		if (workers[i].failures > 0) {
			cr_log_error("thread %d: %d failures, first %s: %s", i,
			    workers[i].failures,
			    zrpc_status_name(workers[i].first_failure.code),
			    workers[i].first_failure.message);
		}
		failures += workers[i].failures;
	}
	cr_expect_eq(failures, 0, "%d of %d calls failed", failures,
	    TEST_THREADS * TEST_CALLS_PER_THREAD);
	cr_expect_eq(fake_server_count(server, FAKE_RECEIVED),
	    TEST_THREADS * TEST_CALLS_PER_THREAD);
	/* Every call counted once in the client's metrics, from 64 threads. */
	test_expect_echo_counted(client, TEST_THREADS * TEST_CALLS_PER_THREAD);

	zrpc_client_close(client);
	fake_server_stop(server);
}

#define TEST_ASYNC_CALLS 1000

Test(client, thousand_async_calls_from_one_thread_get_their_own_replies,
    .timeout = TEST_TIMEOUT_S)
{
	static struct test_slot slots[TEST_ASYNC_CALLS];
	static struct test_slot raw_slots[TEST_ASYNC_CALLS];
	zrpc_call_opts          opts = { .timeout_ms = 30000 };
	struct test_waiter      waiter;
	struct fake_server     *server;
	zrpc_client            *client;
	zrpc_status             status;
	char                    url[128], text[64];
	uint8_t                 packed[64];
	int                     i, bad = 0;

	test_waiter_init(&waiter);
	test_url(url, sizeof(url), "ipc");
	server = test_server(url, 4);
	client = test_client(url, NULL);

	for (i = 0; i < TEST_ASYNC_CALLS; i++) {
		Zrpc__V1__HealthCheckRequest request =
		    ZRPC__V1__HEALTH_CHECK_REQUEST__INIT;
		size_t len;

		slots[i]     = (struct test_slot) { .waiter = &waiter };
		raw_slots[i] = (struct test_slot) { .waiter = &waiter };
		snprintf(text, sizeof(text), "a%d", i);
		status = test_call_async(
		    client, &method_echo, text, &slots[i], &opts);
		cr_assert_eq(
		    status.code, ZRPC_OK, "%d: %s", i, status.message);

		snprintf(text, sizeof(text), "r%d", i);
		request.service = text;
		len = zrpc__v1__health_check_request__pack(&request, packed);
		status = zrpc_client_call_raw_async(client, FAKE_ECHO, packed,
		    len, &opts, test_slot_raw_cb, &raw_slots[i]);
		cr_assert_eq(
		    status.code, ZRPC_OK, "%d: %s", i, status.message);
	}
	cr_assert_eq(test_waiter_wait(&waiter, 2 * TEST_ASYNC_CALLS, 60000),
	    2 * TEST_ASYNC_CALLS);
	for (i = 0; i < TEST_ASYNC_CALLS; i++) {
		char want[64], want_raw[64];

		snprintf(want, sizeof(want), "a%d", i);
		snprintf(want_raw, sizeof(want_raw), "r%d", i);
		if (slots[i].status.code != ZRPC_OK ||
		    strcmp(slots[i].text, want) != 0 ||
		    atomic_load(&slots[i].calls) != 1 ||
		    raw_slots[i].status.code != ZRPC_OK ||
		    strcmp(raw_slots[i].text, want_raw) != 0 ||
		    atomic_load(&raw_slots[i].calls) != 1) {
			if (bad++ == 0) {
				cr_log_error("call %d: %s '%s' / %s '%s'", i,
				    slots[i].status.message, slots[i].text,
				    raw_slots[i].status.message,
				    raw_slots[i].text);
			}
		}
	}
	cr_expect_eq(bad, 0, "%d calls went wrong", bad);

	zrpc_client_close(client);
	fake_server_stop(server);
	test_waiter_fini(&waiter);
}

Test(client, garbage_replies_are_errors_not_crashes, .timeout = TEST_TIMEOUT_S)
{
	struct fake_server *server;
	zrpc_client        *client;
	zrpc_status         status;
	char                url[128], text[64];

	test_url(url, sizeof(url), "inproc");
	server = test_server(url, 2);
	client = test_client(url, NULL);

	status = test_call(client, &method_garbage, "x", NULL, 0, NULL);
	cr_expect_eq(status.code, ZRPC_INTERNAL, "%s: %s",
	    zrpc_status_name(status.code), status.message);
	cr_expect(
	    strstr(status.message, "malformed") != NULL, "%s", status.message);

	status = test_call(client, &method_bad_payload, "x", NULL, 0, NULL);
	cr_expect_eq(status.code, ZRPC_INTERNAL, "%s: %s",
	    zrpc_status_name(status.code), status.message);
	cr_expect(strstr(status.message, "zrpc.v1.HealthCheckRequest") != NULL,
	    "%s", status.message);

	/* The client is still fine. */
	status =
	    test_call(client, &method_echo, "ok", text, sizeof(text), NULL);
	cr_expect_eq(status.code, ZRPC_OK, "%s", status.message);
	cr_expect_str_eq(text, "ok");

	zrpc_client_close(client);
	fake_server_stop(server);
}

Test(client, oversized_request_is_refused_before_sending,
    .timeout = TEST_TIMEOUT_S)
{
	zrpc_client_opts    copts = { .max_message_bytes = 1024 };
	struct test_waiter  waiter;
	struct test_slot    slot = { .waiter = &waiter };
	struct fake_server *server;
	zrpc_client        *client;
	zrpc_status         status;
	uint8_t            *reply = NULL;
	size_t              reply_len;
	char                url[128], big[2048];

	test_waiter_init(&waiter);
	test_url(url, sizeof(url), "inproc");
	server = test_server(url, 2);
	client = test_client(url, &copts);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';

	status = test_call(client, &method_echo, big, NULL, 0, NULL);
	cr_expect_eq(
	    status.code, ZRPC_RESOURCE_EXHAUSTED, "%s", status.message);
	status = test_call_async(client, &method_echo, big, &slot, NULL);
	cr_expect_eq(
	    status.code, ZRPC_RESOURCE_EXHAUSTED, "%s", status.message);
	status = zrpc_client_call_raw(client, FAKE_ECHO, (const uint8_t *) big,
	    sizeof(big), &reply, &reply_len, NULL);
	cr_expect_eq(
	    status.code, ZRPC_RESOURCE_EXHAUSTED, "%s", status.message);
	cr_expect_null(reply);

	/* A request that fits still works; nothing else reached the server. */
	big[900] = '\0';
	status   = test_call(client, &method_echo, big, NULL, 0, NULL);
	cr_expect_eq(status.code, ZRPC_OK, "%s", status.message);
	cr_expect_eq(fake_server_count(server, FAKE_RECEIVED), 1);

	zrpc_client_close(client);
	cr_expect_eq(atomic_load(&slot.calls), 0, "no callback on refusal");
	fake_server_stop(server);
	test_waiter_fini(&waiter);
}

Test(client, oversized_reply_is_an_error, .timeout = TEST_TIMEOUT_S)
{
	zrpc_client_opts    copts = { .max_message_bytes = 1024 };
	zrpc_call_opts      opts  = { .timeout_ms = 5000 };
	struct fake_server *server;
	zrpc_client        *client;
	zrpc_status         status;
	char                url[128], text[64];
	const char *const   transports[] = { "inproc", "ipc" };
	size_t              t;

	for (t = 0; t < 2; t++) {
		test_url(url, sizeof(url), transports[t]);
		server = test_server(url, 2);
		client = test_client(url, &copts);

		status =
		    test_call(client, &method_big, "4096", NULL, 0, &opts);
		cr_expect_neq(status.code, ZRPC_OK, "%s", transports[t]);
		if (t == 0) {
			/* inproc hands the message over: the client checks. */
			cr_expect_eq(status.code, ZRPC_RESOURCE_EXHAUSTED,
			    "%s", status.message);
		}
		status = test_call(
		    client, &method_big, "100", text, sizeof(text), &opts);
		cr_expect_eq(status.code, ZRPC_OK, "%s: %s", transports[t],
		    status.message);

		zrpc_client_close(client);
		fake_server_stop(server);
	}
}

/* The service length of a HealthCheckRequest whose Response (REPLY) or
 * Request for FAKE_ECHO with TIMEOUT_MS (not REPLY) envelope is SIZE. */
static size_t
test_text_for_envelope(bool reply, uint32_t timeout_ms, size_t size)
{
	Zrpc__V1__HealthCheckRequest hc = ZRPC__V1__HEALTH_CHECK_REQUEST__INIT;
	Zrpc__V1__Response           resp = ZRPC__V1__RESPONSE__INIT;
	Zrpc__V1__Request            req  = ZRPC__V1__REQUEST__INIT;
	Zrpc__V1__Request__MetadataEntry id =
	    ZRPC__V1__REQUEST__METADATA_ENTRY__INIT;
	Zrpc__V1__Request__MetadataEntry *ids[] = { &id };
	char                             *text  = malloc(size + 1);
	size_t                            n, got;

	cr_assert_not_null(text);
	memset(text, 'x', size);
	req.method     = FAKE_ECHO;
	req.timeout_ms = timeout_ms;
	/* The request id of test_edge_opts. */
	id.key         = "x-request-id";
	id.value       = "edge";
	req.metadata   = ids;
	req.n_metadata = 1;
	for (n = size; n-- > 0;) {
		text[n]          = '\0';
		hc.service       = text;
		resp.payload.len = req.payload.len =
		    zrpc__v1__health_check_request__get_packed_size(&hc);
		got = reply ? zrpc__v1__response__get_packed_size(&resp)
		            : zrpc__v1__request__get_packed_size(&req);
		if (got == size) {
			free(text);
			return n;
		}
	}
	free(text);
	cr_assert_fail("no text gives a %zu-byte envelope", size);
	return 0;
}

/*
 * max_message_bytes counts envelope bytes, not nng's header: over ipc a
 * reply of exactly the limit is accepted and one of a byte more is
 * RESOURCE_EXHAUSTED; a request of exactly the limit is sent and one of a
 * byte more is refused before sending.
 */
Test(
    client, limit_edges_are_envelope_bytes_over_ipc, .timeout = TEST_TIMEOUT_S)
{
	static const struct zrpc_metadata_entry id[] = {
		{ "x-request-id", "edge" },
	};
	zrpc_client_opts    copts = { .max_message_bytes = 4096 };
	zrpc_call_opts      opts  = { .timeout_ms = 5000 };
	struct fake_server *server;
	zrpc_client        *client;
	zrpc_status         status;
	char                url[128], count[32], *text, *back;
	size_t              n;

	/* A request id of known size, so the envelope's size is known. */
	opts.metadata   = id;
	opts.n_metadata = 1;
	test_url(url, sizeof(url), "ipc");
	server = test_server(url, 2);
	client = test_client(url, &copts);
	text   = malloc(4096 + 1);
	back   = malloc(4096 + 1);
	cr_assert(text != NULL && back != NULL);

	/* Replies. */
	n = test_text_for_envelope(true, 0, 4096);
	snprintf(count, sizeof(count), "%zu", n);
	status = test_call(client, &method_big, count, back, 4096 + 1, &opts);
	cr_expect_eq(
	    status.code, ZRPC_OK, "reply of 4096: %s", status.message);
	cr_expect_eq(strlen(back), n);
	n = test_text_for_envelope(true, 0, 4097);
	snprintf(count, sizeof(count), "%zu", n);
	status = test_call(client, &method_big, count, NULL, 0, &opts);
	cr_expect_eq(status.code, ZRPC_RESOURCE_EXHAUSTED, "reply of 4097: %s",
	    status.message);

	/* Requests. */
	n = test_text_for_envelope(false, opts.timeout_ms, 4096);
	memset(text, 'r', n);
	text[n] = '\0';
	status  = test_call(client, &method_echo, text, back, 4096 + 1, &opts);
	cr_expect_eq(
	    status.code, ZRPC_OK, "request of 4096: %s", status.message);
	cr_expect_str_eq(back, text);
	cr_expect_eq(fake_server_count(server, FAKE_RECEIVED), 3);
	n = test_text_for_envelope(false, opts.timeout_ms, 4097);
	memset(text, 'r', n);
	text[n] = '\0';
	status  = test_call(client, &method_echo, text, NULL, 0, &opts);
	cr_expect_eq(status.code, ZRPC_RESOURCE_EXHAUSTED,
	    "request of 4097: %s", status.message);
	cr_expect_eq(fake_server_count(server, FAKE_RECEIVED), 3, "not sent");

	free(text);
	free(back);
	zrpc_client_close(client);
	fake_server_stop(server);
}

#define TEST_CLOSE_CALLS 100

Test(client, close_cancels_calls_in_flight, .timeout = TEST_TIMEOUT_S)
{
	static struct test_slot slots[TEST_CLOSE_CALLS];
	struct test_waiter      waiter;
	struct test_blocking    blocking;
	struct fake_server     *server;
	zrpc_client            *client;
	zrpc_status             status;
	char                    url[128];
	int                     i, cancelled = 0;

	test_waiter_init(&waiter);
	test_url(url, sizeof(url), "ipc");
	server = test_server(url, 4);
	client = test_client(url, NULL);

	for (i = 0; i < TEST_CLOSE_CALLS; i++) {
		slots[i] = (struct test_slot) { .waiter = &waiter };
		status   = test_call_async(
		      client, &method_never, "never", &slots[i], NULL);
		cr_assert_eq(status.code, ZRPC_OK, "%s", status.message);
	}
	memset(&blocking, 0, sizeof(blocking));
	blocking.client = client;
	blocking.method = &method_never;
	cr_assert_eq(pthread_create(&blocking.thread, NULL, test_blocking_main,
	                 &blocking),
	    0);
	cr_assert(fake_server_wait(
	    server, FAKE_RECEIVED, TEST_CLOSE_CALLS + 1, TEST_WAIT_MS));

	zrpc_client_close(client);
	/* Every callback has run by the time close returns. */
	cr_expect_eq(test_waiter_done(&waiter), TEST_CLOSE_CALLS);
	for (i = 0; i < TEST_CLOSE_CALLS; i++) {
		cancelled += slots[i].status.code == ZRPC_CANCELLED &&
		    atomic_load(&slots[i].calls) == 1;
	}
	cr_expect_eq(cancelled, TEST_CLOSE_CALLS);
	pthread_join(blocking.thread, NULL);
	cr_expect_eq(blocking.status.code, ZRPC_CANCELLED, "%s",
	    blocking.status.message);

	fake_server_stop(server);
	test_waiter_fini(&waiter);
}

Test(client, raw_calls_round_trip, .timeout = TEST_TIMEOUT_S)
{
	Zrpc__V1__HealthCheckRequest request =
	    ZRPC__V1__HEALTH_CHECK_REQUEST__INIT;
	Zrpc__V1__HealthCheckRequest *typed;
	struct fake_server           *server;
	zrpc_client                  *client;
	zrpc_status                   status;
	uint8_t                       packed[64], *reply = NULL;
	size_t                        len, reply_len     = 0;
	char                          url[128];

	test_url(url, sizeof(url), "inproc");
	server = test_server(url, 2);
	client = test_client(url, NULL);

	request.service = "raw";
	len    = zrpc__v1__health_check_request__pack(&request, packed);
	status = zrpc_client_call_raw(
	    client, FAKE_ECHO, packed, len, &reply, &reply_len, NULL);
	cr_assert_eq(status.code, ZRPC_OK, "%s", status.message);
	cr_assert_not_null(reply);
	cr_expect_eq(reply_len, len);
	typed = zrpc__v1__health_check_request__unpack(NULL, reply_len, reply);
	cr_assert_not_null(typed);
	cr_expect_str_eq(typed->service, "raw");
	zrpc__v1__health_check_request__free_unpacked(typed, NULL);
	free(reply);

	/* An empty reply is OK with a non-NULL, zero-length buffer. */
	reply  = NULL;
	status = zrpc_client_call_raw(
	    client, FAKE_ECHO, NULL, 0, &reply, &reply_len, NULL);
	cr_assert_eq(status.code, ZRPC_OK, "%s", status.message);
	cr_expect_not_null(reply);
	cr_expect_eq(reply_len, 0);
	free(reply);

	/* Errors leave *reply NULL. */
	reply  = (uint8_t *) packed;
	status = zrpc_client_call_raw(client, "/zrpc.test.Fake/Nope", packed,
	    len, &reply, &reply_len, NULL);
	cr_expect_eq(status.code, ZRPC_UNIMPLEMENTED);
	cr_expect_null(reply);

	zrpc_client_close(client);
	fake_server_stop(server);
}

Test(client, bad_arguments_are_invalid_argument, .timeout = TEST_TIMEOUT_S)
{
	Zrpc__V1__HealthCheckResponse wrong =
	    ZRPC__V1__HEALTH_CHECK_RESPONSE__INIT;
	Zrpc__V1__HealthCheckRequest request =
	    ZRPC__V1__HEALTH_CHECK_REQUEST__INIT;
	struct zrpc_metadata_entry md[]  = { { "k", NULL } };
	zrpc_call_opts             opts  = { .metadata = md, .n_metadata = 1 };
	ProtobufCMessage          *reply = NULL;
	struct test_waiter         waiter;
	struct test_slot           slot = { .waiter = &waiter };
	zrpc_client               *client;
	zrpc_status                status;
	char                       url[128];

	test_waiter_init(&waiter);
	test_url(url, sizeof(url), "inproc");
	client = test_client(url, NULL);

	status =
	    zrpc_client_call(client, &method_echo, &wrong.base, &reply, NULL);
	cr_expect_eq(status.code, ZRPC_INVALID_ARGUMENT, "%s", status.message);
	cr_expect_null(reply);
	status =
	    zrpc_client_call(client, &method_echo, &request.base, NULL, NULL);
	cr_expect_eq(status.code, ZRPC_INVALID_ARGUMENT);
	status =
	    zrpc_client_call(NULL, &method_echo, &request.base, &reply, NULL);
	cr_expect_eq(status.code, ZRPC_INVALID_ARGUMENT);
	status = zrpc_client_call(
	    client, &method_echo, &request.base, &reply, &opts);
	cr_expect_eq(status.code, ZRPC_INVALID_ARGUMENT, "%s", status.message);
	status = zrpc_client_call_async(client, &method_echo, &request.base,
	    NULL, zrpc_reply_invoke_generic, NULL, &slot);
	cr_expect_eq(status.code, ZRPC_INVALID_ARGUMENT);
	status = zrpc_client_call_raw_async(
	    client, FAKE_ECHO, NULL, 0, NULL, NULL, NULL);
	cr_expect_eq(status.code, ZRPC_INVALID_ARGUMENT);

	zrpc_client_close(client);
	cr_expect_eq(atomic_load(&slot.calls), 0);
	test_waiter_fini(&waiter);
}

Test(client, many_metadata_entries_and_a_long_token, .timeout = TEST_TIMEOUT_S)
{
	struct zrpc_metadata_entry md[FAKE_METADATA_MAX - 1];
	char                       keys[FAKE_METADATA_MAX][16];
	char                       token[600];
	zrpc_call_opts             opts = { .token = token };
	struct fake_record         rec;
	struct fake_server        *server;
	zrpc_client               *client;
	zrpc_status                status;
	char                       url[128];
	size_t                     i;

	for (i = 0; i < FAKE_METADATA_MAX - 1; i++) {
		snprintf(keys[i], sizeof(keys[i]), "k%zu", i);
		md[i] = (struct zrpc_metadata_entry) { keys[i], "v" };
	}
	memset(token, 't', sizeof(token) - 1);
	token[sizeof(token) - 1] = '\0';
	opts.metadata            = md;
	opts.n_metadata          = FAKE_METADATA_MAX - 1;

	test_url(url, sizeof(url), "inproc");
	server = test_server(url, 2);
	client = test_client(url, NULL);
	status = test_call(client, &method_echo, "md", NULL, 0, &opts);
	cr_expect_eq(status.code, ZRPC_OK, "%s", status.message);
	fake_server_last(server, &rec);
	cr_expect_eq(rec.n_metadata, FAKE_METADATA_MAX);
	for (i = 0; i < rec.n_metadata; i++) {
		if (strcmp(rec.keys[i], "authorization") == 0) {
			/* The record keeps FAKE_TEXT_MAX - 1 characters. */
			cr_expect_eq(
			    strncmp(rec.values[i], "Bearer ttt", 10), 0);
		}
	}

	zrpc_client_close(client);
	fake_server_stop(server);
}

Test(client, tls_verifies_the_server_certificate, .timeout = TEST_TIMEOUT_S)
{
	struct fake_server_opts sopts  = { .workers = 2 };
	zrpc_client_opts        copts  = { .connect_timeout_ms = 2000 };
	zrpc_call_opts          opts   = { .timeout_ms = 10000 };
	struct fake_server     *server = NULL;
	zrpc_client            *client;
	zrpc_status             status;
	char                    ca_path[] = "/tmp/zrpc-client-ca-XXXXXX";
	char                    text[64];
	int                     fd, rv;

	sopts.tls_cert_pem    = test_cert_pem;
	sopts.tls_key_pem     = test_key_pem;
	copts.tls_server_name = "localhost";
	fd                    = mkstemp(ca_path);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, test_cert_pem, strlen(test_cert_pem)),
	    (ssize_t) strlen(test_cert_pem));
	close(fd);
	copts.tls_ca_file = ca_path;

	rv = fake_server_start(&server, "tls+tcp://127.0.0.1:0", &sopts);
	cr_assert_eq(rv, 0, "TLS server: %d", rv);

	client = test_client(fake_server_url(server), &copts);
	status = test_call(
	    client, &method_echo, "secret", text, sizeof(text), &opts);
	cr_expect_eq(status.code, ZRPC_OK, "%s", status.message);
	cr_expect_str_eq(text, "secret");
	zrpc_client_close(client);

	/* A name the certificate does not carry never connects. */
	copts.tls_server_name    = "wrong.example";
	copts.connect_timeout_ms = 500;
	client = test_client(fake_server_url(server), &copts);
	status = test_call(client, &method_echo, "x", NULL, 0, &opts);
	cr_expect_eq(status.code, ZRPC_UNAVAILABLE, "%s: %s",
	    zrpc_status_name(status.code), status.message);
	zrpc_client_close(client);

	/* A missing CA file is refused at open. */
	copts.tls_ca_file = "/nonexistent/ca.pem";
	client            = NULL;
	status = zrpc_client_open(&client, fake_server_url(server), &copts);
	cr_expect_neq(status.code, ZRPC_OK);
	cr_expect_null(client);

	fake_server_stop(server);
	unlink(ca_path);
}

Test(client, blocking_call_hands_back_the_reply_metadata,
    .timeout = TEST_TIMEOUT_S)
{
	static const struct zrpc_metadata_entry md[] = {
		{ "x-request-id", "req-7" },
	};
	struct zrpc_metadata *reply_md = (struct zrpc_metadata *) &reply_md;
	zrpc_call_opts        opts     = { .reply_metadata = &reply_md };
	struct fake_server   *server;
	zrpc_client          *client;
	zrpc_status           status;
	char                  url[128], text[64];

	test_url(url, sizeof(url), "inproc");
	server = test_server(url, 2);
	client = test_client(url, NULL);

	/* The server echoes x-request-id and adds a key of its own. */
	opts.metadata   = md;
	opts.n_metadata = 1;
	status =
	    test_call(client, &method_metadata, "", text, sizeof(text), &opts);
	cr_assert_eq(status.code, ZRPC_OK, "%s", status.message);
	cr_assert_not_null(reply_md);
	cr_expect_eq(reply_md->n_entries, 2);
	cr_expect_str_eq(zrpc_metadata_get(reply_md, "x-request-id"), "req-7");
	cr_expect_str_eq(
	    zrpc_metadata_get(reply_md, "x-fake-custom"), "custom value");
	cr_expect_null(zrpc_metadata_get(reply_md, "absent"));
	cr_expect_str_eq(reply_md->entries[0].key, "x-request-id");
	zrpc_metadata_free(reply_md);

	/* An error reply still carries its metadata. */
	status = test_call(
	    client, &method_metadata, "5", text, sizeof(text), &opts);
	cr_assert_eq(status.code, ZRPC_NOT_FOUND, "%s", status.message);
	cr_assert_not_null(reply_md);
	cr_expect_str_eq(
	    zrpc_metadata_get(reply_md, "x-fake-custom"), "custom value");
	zrpc_metadata_free(reply_md);

	/* A reply without metadata gives an empty set, not NULL. */
	status = test_call(
	    client, &method_echo, "plain", text, sizeof(text), &opts);
	cr_assert_eq(status.code, ZRPC_OK, "%s", status.message);
	cr_assert_not_null(reply_md);
	cr_expect_eq(reply_md->n_entries, 0);
	zrpc_metadata_free(reply_md);

	/* No reply at all: NULL. */
	opts.timeout_ms = 50;
	reply_md        = (struct zrpc_metadata *) &reply_md;
	status          = test_call(client, &method_never, "", NULL, 0, &opts);
	cr_expect_eq(
	    status.code, ZRPC_DEADLINE_EXCEEDED, "%s", status.message);
	cr_expect_null(reply_md);

	/* Without the out-pointer nothing is copied (LeakSanitizer checks
	 * that nothing leaks). */
	opts.timeout_ms     = 0;
	opts.reply_metadata = NULL;
	status =
	    test_call(client, &method_metadata, "", text, sizeof(text), &opts);
	cr_expect_eq(status.code, ZRPC_OK, "%s", status.message);
	status =
	    test_call(client, &method_metadata, "", text, sizeof(text), NULL);
	cr_expect_eq(status.code, ZRPC_OK, "%s", status.message);

	zrpc_client_close(client);
	fake_server_stop(server);
}

/* An asynchronous call's outcome with its reply metadata. */
struct test_md_slot {
	struct test_slot      slot;
	struct zrpc_metadata *md; /* set by the client before the callback */
	char                  custom[64];
	bool                  md_seen; /* md was set when the callback ran */
};

static void
test_md_slot_cb(void *arg, const zrpc_status *status, ProtobufCMessage *reply)
{
	struct test_md_slot *s  = arg;
	const char          *cv = zrpc_metadata_get(s->md, "x-fake-custom");

	s->md_seen = s->md != NULL;
	snprintf(s->custom, sizeof(s->custom), "%s", cv != NULL ? cv : "");
	test_slot_cb(&s->slot, status, reply);
}

static void
test_md_slot_raw_cb(
    void *arg, const zrpc_status *status, const uint8_t *reply, size_t len)
{
	struct test_md_slot *s  = arg;
	const char          *cv = zrpc_metadata_get(s->md, "x-fake-custom");

	s->md_seen = s->md != NULL;
	snprintf(s->custom, sizeof(s->custom), "%s", cv != NULL ? cv : "");
	test_slot_raw_cb(&s->slot, status, reply, len);
}

Test(client, async_call_hands_back_the_reply_metadata,
    .timeout = TEST_TIMEOUT_S)
{
	Zrpc__V1__HealthCheckRequest request =
	    ZRPC__V1__HEALTH_CHECK_REQUEST__INIT;
	struct test_waiter  waiter;
	struct test_md_slot typed = { .slot.waiter = &waiter };
	struct test_md_slot raw   = { .slot.waiter = &waiter };
	struct test_md_slot never = { .slot.waiter = &waiter };
	zrpc_call_opts      opts  = { .reply_metadata = &typed.md };
	struct fake_server *server;
	zrpc_client        *client;
	zrpc_status         status;
	uint8_t             packed[64];
	size_t              len;
	char                url[128];

	test_waiter_init(&waiter);
	test_url(url, sizeof(url), "inproc");
	server = test_server(url, 2);
	client = test_client(url, NULL);

	request.service = "async";
	status          = zrpc_client_call_async(client, &method_metadata,
	             &request.base, &opts, zrpc_reply_invoke_generic,
	             (void (*)(void)) test_md_slot_cb, &typed);
	cr_assert_eq(status.code, ZRPC_OK, "%s", status.message);

	request.service = "";
	len = zrpc__v1__health_check_request__pack(&request, packed);
	opts.reply_metadata = &raw.md;
	status = zrpc_client_call_raw_async(client, FAKE_METADATA, packed, len,
	    &opts, test_md_slot_raw_cb, &raw);
	cr_assert_eq(status.code, ZRPC_OK, "%s", status.message);

	/* A call that gets no reply leaves it NULL. */
	opts.reply_metadata = &never.md;
	opts.timeout_ms     = 50;
	never.md            = (struct zrpc_metadata *) &never;
	status = zrpc_client_call_async(client, &method_never, &request.base,
	    &opts, zrpc_reply_invoke_generic, (void (*)(void)) test_md_slot_cb,
	    &never);
	cr_assert_eq(status.code, ZRPC_OK, "%s", status.message);

	cr_assert_eq(test_waiter_wait(&waiter, 3, TEST_WAIT_MS), 3);
	cr_expect_eq(
	    typed.slot.status.code, ZRPC_OK, "%s", typed.slot.status.message);
	cr_expect_str_eq(typed.slot.text, "async");
	cr_expect(typed.md_seen, "metadata set before the callback");
	cr_expect_str_eq(typed.custom, "custom value");
	/* The server echoes the request id the client made. */
	cr_expect(test_is_client_request_id(
	              zrpc_metadata_get(typed.md, "x-request-id")),
	    "%s", zrpc_metadata_get(typed.md, "x-request-id"));
	cr_expect_eq(
	    raw.slot.status.code, ZRPC_OK, "%s", raw.slot.status.message);
	cr_expect(raw.md_seen, "metadata set before the raw callback");
	cr_expect_str_eq(raw.custom, "custom value");
	cr_expect_eq(never.slot.status.code, ZRPC_DEADLINE_EXCEEDED);
	cr_expect_not(never.md_seen);
	zrpc_metadata_free(typed.md);
	zrpc_metadata_free(raw.md);

	zrpc_client_close(client);
	fake_server_stop(server);
	test_waiter_fini(&waiter);
}

Test(client, a_flood_of_reply_metadata_is_bounded, .timeout = TEST_TIMEOUT_S)
{
	zrpc_client_opts      small    = { .max_message_bytes = 8 * 1024 };
	struct zrpc_metadata *reply_md = NULL;
	zrpc_call_opts        opts     = { .reply_metadata = &reply_md };
	struct fake_server   *server;
	zrpc_client          *client, *limited;
	zrpc_status           status;
	char                  url[128];

	test_url(url, sizeof(url), "inproc");
	server  = test_server(url, 2);
	client  = test_client(url, NULL);
	limited = test_client(url, &small);

	/* 1024 entries, the most a reply may carry, come through (the
	 * fake server adds x-request-id to the count). */
	status =
	    test_call(client, &method_metadata_flood, "1023", NULL, 0, &opts);
	cr_assert_eq(status.code, ZRPC_OK, "%s", status.message);
	cr_assert_not_null(reply_md);
	cr_expect_geq(reply_md->n_entries, 1023);
	cr_expect_str_eq(zrpc_metadata_get(reply_md, "k1022"), "v");
	zrpc_metadata_free(reply_md);

	/* More are refused before anything is unpacked: two million empty
	 * entries would fit in 4 MiB and cost hundreds of megabytes. */
	reply_md = (struct zrpc_metadata *) &reply_md;
	status   = test_call(
	      client, &method_metadata_flood, "100000", NULL, 0, &opts);
	cr_expect_eq(
	    status.code, ZRPC_RESOURCE_EXHAUSTED, "%s", status.message);
	cr_expect(strstr(status.message, "metadata entries") != NULL, "%s",
	    status.message);
	cr_expect_null(reply_md);
	status =
	    test_call(client, &method_metadata_flood, "100000", NULL, 0, NULL);
	cr_expect_eq(
	    status.code, ZRPC_RESOURCE_EXHAUSTED, "%s", status.message);

	/* Over a client's byte limit the reply is refused, metadata and all.
	 */
	reply_md = (struct zrpc_metadata *) &reply_md;
	status =
	    test_call(limited, &method_metadata_flood, "1000", NULL, 0, &opts);
	cr_expect_eq(
	    status.code, ZRPC_RESOURCE_EXHAUSTED, "%s", status.message);
	cr_expect_null(reply_md);

	zrpc_client_close(limited);
	zrpc_client_close(client);
	fake_server_stop(server);
}

/*
 * A server that refuses every connection (a zrpc server at its
 * max_connections): the client connects, is closed at once, reconnects.
 * Half the threads make blocking calls, half asynchronous ones, each one
 * at a time; the pipe comes and goes under every one of them. Each call
 * fails UNAVAILABLE (its connection lost, or none within the connect
 * timeout, well before its deadline), and nothing leaks.
 */
#define TEST_REFUSED_THREADS 8
#define TEST_REFUSED_CALLS 100
#define TEST_REFUSED_CONNECT_MS 100
#define TEST_REFUSED_TIMEOUT_MS 2000

struct test_refused {
	pthread_t    thread;
	zrpc_client *client;
	bool         async;
	int          n_calls;
	int          n_started; /* asynchronous calls started */
	int          n_unavailable;
	zrpc_status  other; /* the first outcome that is not UNAVAILABLE */
	double       slowest_ms;
	/* Asynchronous calls: they outlive the thread if one never called
	 * back (zrpc_client_close then runs the callback). */
	struct test_waiter waiter;
	struct test_slot   slot;
};

/* One call of R's kind; its outcome. */
static zrpc_status
test_refused_call(struct test_refused *r, const zrpc_call_opts *opts)
{
	zrpc_status status;

	if (!r->async) {
		return test_call(
		    r->client, &method_echo, "refused", NULL, 0, opts);
	}
	r->slot.had_reply = false;
	status            = test_call_async(
	               r->client, &method_echo, "refused", &r->slot, opts);
	if (status.code != ZRPC_OK) {
		return status; /* and no callback */
	}
	r->n_started++;
	if (test_waiter_wait(&r->waiter, r->n_started, TEST_WAIT_MS) <
	    r->n_started) {
		return zrpc_status_make(ZRPC_INTERNAL, "no callback");
	}
	return r->slot.had_reply ? zrpc_status_make(ZRPC_INTERNAL, "a reply")
	                         : r->slot.status;
}

static void *
test_refused_main(void *arg)
{
	struct test_refused *r    = arg;
	zrpc_call_opts       opts = { .timeout_ms = TEST_REFUSED_TIMEOUT_MS };
	zrpc_status          status;
	double               start, took;

	for (int i = 0; i < TEST_REFUSED_CALLS; i++) {
		start  = test_now_ms();
		status = test_refused_call(r, &opts);
		took   = test_now_ms() - start;
		if (took > r->slowest_ms) {
			r->slowest_ms = took;
		}
		r->n_calls++;
		if (status.code == ZRPC_UNAVAILABLE) {
			r->n_unavailable++;
		} else if (r->other.code == ZRPC_OK) {
			r->other = status;
		}
		if (strcmp(status.message, "no callback") == 0) {
			break; /* the slot is still in use */
		}
	}
	return NULL;
}

Test(client, calls_to_a_server_refusing_every_connection_fail_cleanly,
    .timeout = TEST_TIMEOUT_S)
{
	struct fake_server_opts sopts = { .workers = 1, .refuse = true };
	zrpc_client_opts        copts = {
		       .connect_timeout_ms = TEST_REFUSED_CONNECT_MS,
	};
	zrpc_call_opts      opts = { .timeout_ms = TEST_REFUSED_TIMEOUT_MS };
	struct test_refused threads[TEST_REFUSED_THREADS];
	struct fake_server *server = NULL;
	zrpc_client        *client;
	zrpc_status         status;
	char                url[128];
	int                 i;

	/* nng 1.5.2 loses a request now and then in exactly this case. */
	test_forgive_nng_lost_requests();
	test_url(url, sizeof(url), "tcp");
	cr_assert_eq(fake_server_start(&server, url, &sopts), 0);
	client = test_client(fake_server_url(server), &copts);

	memset(threads, 0, sizeof(threads));
	for (i = 0; i < TEST_REFUSED_THREADS; i++) {
		threads[i].client = client;
		threads[i].async  = i % 2 == 1;
		test_waiter_init(&threads[i].waiter);
		threads[i].slot.waiter = &threads[i].waiter;
		cr_assert_eq(pthread_create(&threads[i].thread, NULL,
		                 test_refused_main, &threads[i]),
		    0);
	}
	for (i = 0; i < TEST_REFUSED_THREADS; i++) {
		pthread_join(threads[i].thread, NULL);
	}
	for (i = 0; i < TEST_REFUSED_THREADS; i++) {
		cr_expect_eq(threads[i].n_unavailable, TEST_REFUSED_CALLS,
		    "thread %d (%s): %d of %d calls UNAVAILABLE; another: "
		    "%s: %s",
		    i, threads[i].async ? "async" : "blocking",
		    threads[i].n_unavailable, threads[i].n_calls,
		    zrpc_status_name(threads[i].other.code),
		    threads[i].other.message);
		cr_expect_lt(threads[i].slowest_ms,
		    TEST_REFUSED_TIMEOUT_MS + TEST_SLACK_MS,
		    "thread %d: %.0f ms", i, threads[i].slowest_ms);
	}
	cr_expect_gt(fake_server_count(server, FAKE_REFUSED), 0);

	/*
	 * The client is let in before anything closes: nng 1.5.2 leaks a TCP
	 * pipe for good when a dialer, or a listener, closes just as a
	 * connection finishes its SP handshake (see tests/server/
	 * test_bounds.c), which closing either side while the client is
	 * being refused and redials does now and then. Once a call is
	 * served the client holds one connection and redials no more.
	 */
	fake_server_refuse(server, false);
	for (i = 0; i < 100; i++) {
		status =
		    test_call(client, &method_echo, "let in", NULL, 0, &opts);
		if (status.code == ZRPC_OK) {
			break;
		}
		cr_assert_eq(status.code, ZRPC_UNAVAILABLE, "%s: %s",
		    zrpc_status_name(status.code), status.message);
	}
	cr_assert_lt(i, 100, "the client was never served");
	zrpc_client_close(client);
	for (i = 0; i < TEST_REFUSED_THREADS; i++) {
		cr_expect_eq(atomic_load(&threads[i].slot.calls),
		    threads[i].n_started, "thread %d: callbacks", i);
		test_waiter_fini(&threads[i].waiter);
	}
	fake_server_stop(server);
}

/* The x-request-id the fake server saw in its last request, into ID. */
static void
test_last_request_id(struct fake_server *server, char *id, size_t len)
{
	struct fake_record rec;
	int                seen = 0;

	fake_server_last(server, &rec);
	id[0] = '\0';
	for (size_t i = 0; i < rec.n_metadata; i++) {
		if (strcmp(rec.keys[i], "x-request-id") == 0) {
			snprintf(id, len, "%s", rec.values[i]);
			seen++;
		}
	}
	cr_expect_eq(seen, 1, "one x-request-id per request");
}

#define TEST_ID_CALLS 50

Test(client, request_ids_differ_per_call_and_between_clients,
    .timeout = TEST_TIMEOUT_S)
{
	static char         ids[2 * TEST_ID_CALLS][FAKE_TEXT_MAX];
	struct fake_server *server;
	zrpc_client        *clients[2];
	zrpc_status         status;
	char                url[128];
	size_t              i, j;

	test_url(url, sizeof(url), "inproc");
	server     = test_server(url, 1);
	clients[0] = test_client(url, NULL);
	clients[1] = test_client(url, NULL);
	for (i = 0; i < 2 * TEST_ID_CALLS; i++) {
		status =
		    test_call(clients[i % 2], &method_echo, "", NULL, 0, NULL);
		cr_assert_eq(status.code, ZRPC_OK, "%s", status.message);
		test_last_request_id(server, ids[i], sizeof(ids[i]));
		cr_expect(
		    test_is_client_request_id(ids[i]), "id '%s'", ids[i]);
	}
	for (i = 0; i < 2 * TEST_ID_CALLS; i++) {
		for (j = i + 1; j < 2 * TEST_ID_CALLS; j++) {
			cr_expect_str_neq(
			    ids[i], ids[j], "calls %zu and %zu", i, j);
		}
	}
	/* A client's ids share its prefix; the two clients' differ. */
	cr_expect_eq(strncmp(ids[0], ids[2], 17), 0, "%s %s", ids[0], ids[2]);
	cr_expect_neq(strncmp(ids[0], ids[1], 16), 0, "%s %s", ids[0], ids[1]);

	zrpc_client_close(clients[0]);
	zrpc_client_close(clients[1]);
	fake_server_stop(server);
}

Test(client, a_given_request_id_is_kept_and_sent_once,
    .timeout = TEST_TIMEOUT_S)
{
	static const struct zrpc_metadata_entry md[] = {
		{ "tenant", "blue" },
		{ "x-request-id", "mine-1" },
	};
	Zrpc__V1__HealthCheckRequest request =
	    ZRPC__V1__HEALTH_CHECK_REQUEST__INIT;
	zrpc_call_opts      opts = { .metadata = md, .n_metadata = 2 };
	struct test_waiter  waiter;
	struct test_slot    slot = { .waiter = &waiter };
	struct fake_server *server;
	zrpc_client        *client;
	zrpc_status         status;
	uint8_t             packed[32];
	size_t              len;
	char                url[128], id[FAKE_TEXT_MAX];

	test_waiter_init(&waiter);
	test_url(url, sizeof(url), "inproc");
	server = test_server(url, 1);
	client = test_client(url, NULL);

	status = test_call(client, &method_echo, "", NULL, 0, &opts);
	cr_assert_eq(status.code, ZRPC_OK, "%s", status.message);
	test_last_request_id(server, id, sizeof(id));
	cr_expect_str_eq(id, "mine-1");

	/* And on an asynchronous raw call. */
	request.service = "raw";
	len    = zrpc__v1__health_check_request__pack(&request, packed);
	status = zrpc_client_call_raw_async(
	    client, FAKE_ECHO, packed, len, &opts, test_slot_raw_cb, &slot);
	cr_assert_eq(status.code, ZRPC_OK, "%s", status.message);
	cr_assert_eq(test_waiter_wait(&waiter, 1, TEST_WAIT_MS), 1);
	cr_expect_eq(slot.status.code, ZRPC_OK, "%s", slot.status.message);
	test_last_request_id(server, id, sizeof(id));
	cr_expect_str_eq(id, "mine-1");

	zrpc_client_close(client);
	fake_server_stop(server);
	test_waiter_fini(&waiter);
}

/* What zrpc_client_stats handed out, copied. */
struct test_stats_seen {
	size_t                          n;
	char                            paths[8][64];
	struct zrpc_client_method_stats stats[8];
};

static void
test_stats_collect(void *arg, const struct zrpc_client_method_stats *stats)
{
	struct test_stats_seen *seen = arg;

	if (seen->n < 8) {
		snprintf(seen->paths[seen->n], sizeof(seen->paths[0]), "%s",
		    stats->path);
		seen->stats[seen->n++] = *stats;
	}
}

Test(client, metrics_count_every_kind_of_call_by_code_with_latencies,
    .timeout = TEST_TIMEOUT_S)
{
	Zrpc__V1__HealthCheckRequest request =
	    ZRPC__V1__HEALTH_CHECK_REQUEST__INIT;
	static const char *const paths[] = { FAKE_ECHO, FAKE_FAIL, FAKE_NEVER,
		"/zrpc.test.Fake/Nope" };
	static const uint64_t    calls[] = { 6, 3, 1, 1 };
	struct zrpc_client_method_stats one;
	struct test_stats_seen          seen = { 0 };
	struct test_waiter              waiter;
	struct test_slot                slots[3];
	zrpc_call_opts                  short_opts = { .timeout_ms = 50 };
	struct fake_server             *server;
	zrpc_client                    *client;
	zrpc_status                     status;
	uint8_t                         packed[32], *reply;
	size_t                          len, reply_len, i;
	char                            url[128];

	test_waiter_init(&waiter);
	test_url(url, sizeof(url), "inproc");
	server = test_server(url, 2);
	client = test_client(url, NULL);
	cr_expect_eq(zrpc_client_stats(client, test_stats_collect, &seen), 0);

	/* Echo: 3 blocking typed, 2 asynchronous typed, 1 asynchronous raw. */
	for (i = 0; i < 3; i++) {
		status = test_call(client, &method_echo, "e", NULL, 0, NULL);
		cr_assert_eq(status.code, ZRPC_OK, "%s", status.message);
	}
	memset(slots, 0, sizeof(slots));
	for (i = 0; i < 3; i++) {
		slots[i].waiter = &waiter;
	}
	cr_assert_eq(
	    test_call_async(client, &method_echo, "a", &slots[0], NULL).code,
	    ZRPC_OK);
	cr_assert_eq(
	    test_call_async(client, &method_echo, "b", &slots[1], NULL).code,
	    ZRPC_OK);
	request.service = "r";
	len = zrpc__v1__health_check_request__pack(&request, packed);
	cr_assert_eq(zrpc_client_call_raw_async(client, FAKE_ECHO, packed, len,
	                 NULL, test_slot_raw_cb, &slots[2])
	                 .code,
	    ZRPC_OK);
	cr_assert_eq(test_waiter_wait(&waiter, 3, TEST_WAIT_MS), 3);

	/* Fail: 2 NOT_FOUND typed, 1 INVALID_ARGUMENT raw blocking. */
	for (i = 0; i < 2; i++) {
		status =
		    test_call(client, &method_fail, "5:nf", NULL, 0, NULL);
		cr_assert_eq(status.code, ZRPC_NOT_FOUND);
	}
	request.service = "3:bad";
	len    = zrpc__v1__health_check_request__pack(&request, packed);
	status = zrpc_client_call_raw(
	    client, FAKE_FAIL, packed, len, &reply, &reply_len, NULL);
	cr_assert_eq(status.code, ZRPC_INVALID_ARGUMENT);

	/* The client's own verdict counts too: a deadline of 50 ms. */
	status = test_call(client, &method_never, "", NULL, 0, &short_opts);
	cr_assert_eq(status.code, ZRPC_DEADLINE_EXCEEDED);
	status = test_call(client, &method_unknown, "", NULL, 0, NULL);
	cr_assert_eq(status.code, ZRPC_UNIMPLEMENTED);

	cr_assert_eq(zrpc_client_stats(client, test_stats_collect, &seen), 4);
	for (i = 0; i < 4; i++) {
		const struct zrpc_client_method_stats *s = &seen.stats[i];

		cr_expect_str_eq(seen.paths[i], paths[i], "in path order");
		cr_expect_eq(s->calls, calls[i], "%s", paths[i]);
		cr_expect_eq(zrpc_histogram_count(s->latency), calls[i],
		    "%s: one latency per call", paths[i]);
	}
	cr_expect_eq(seen.stats[0].codes[ZRPC_OK], 6);
	cr_expect_eq(seen.stats[0].errors, 0);
	cr_expect_eq(seen.stats[1].codes[ZRPC_NOT_FOUND], 2);
	cr_expect_eq(seen.stats[1].codes[ZRPC_INVALID_ARGUMENT], 1);
	cr_expect_eq(seen.stats[1].errors, 3);
	cr_expect_eq(seen.stats[2].codes[ZRPC_DEADLINE_EXCEEDED], 1);
	cr_expect_geq(zrpc_histogram_max(seen.stats[2].latency),
	    50u * 1000000u, "the deadline's wait is in the latency");
	cr_expect_eq(seen.stats[3].codes[ZRPC_UNIMPLEMENTED], 1);

	/* One method by path; one never called. */
	status = zrpc_client_method_stats(client, FAKE_FAIL, &one);
	cr_assert_eq(status.code, ZRPC_OK, "%s", status.message);
	cr_expect_eq(one.calls, 3);
	status = zrpc_client_method_stats(client, FAKE_GATE, &one);
	cr_expect_eq(status.code, ZRPC_NOT_FOUND);
	cr_expect_eq(one.calls, 0);
	cr_expect_null(one.latency);

	/* Reset: zero counts, the paths stay. */
	zrpc_client_stats_reset(client);
	seen.n = 0;
	cr_assert_eq(zrpc_client_stats(client, test_stats_collect, &seen), 4);
	for (i = 0; i < 4; i++) {
		cr_expect_eq(seen.stats[i].calls, 0);
		cr_expect_eq(zrpc_histogram_count(seen.stats[i].latency), 0);
	}
	test_expect_echo_counted(client, 0);

	zrpc_client_close(client);
	fake_server_stop(server);
	test_waiter_fini(&waiter);
}

/* Callback that reads the metrics of its own call's method. */
struct test_stats_in_cb {
	zrpc_client        *client;
	struct test_waiter *waiter;
	uint64_t            calls_seen;
};

static void
test_stats_in_cb(
    void *arg, const zrpc_status *status, const uint8_t *reply, size_t len)
{
	struct test_stats_in_cb        *t = arg;
	struct zrpc_client_method_stats stats;

	(void) status;
	(void) reply;
	(void) len;
	if (zrpc_client_method_stats(t->client, FAKE_ECHO, &stats).code ==
	    ZRPC_OK) {
		t->calls_seen = stats.calls;
	}
	test_waiter_add(t->waiter);
}

Test(client, async_call_is_counted_before_its_callback_runs,
    .timeout = TEST_TIMEOUT_S)
{
	struct test_waiter      waiter;
	struct test_stats_in_cb t = { .waiter = &waiter };
	struct fake_server     *server;
	char                    url[128];

	test_waiter_init(&waiter);
	test_url(url, sizeof(url), "inproc");
	server   = test_server(url, 1);
	t.client = test_client(url, NULL);
	cr_assert_eq(zrpc_client_call_raw_async(t.client, FAKE_ECHO, NULL, 0,
	                 NULL, test_stats_in_cb, &t)
	                 .code,
	    ZRPC_OK);
	cr_assert_eq(test_waiter_wait(&waiter, 1, TEST_WAIT_MS), 1);
	cr_expect_eq(t.calls_seen, 1);

	zrpc_client_close(t.client);
	fake_server_stop(server);
	test_waiter_fini(&waiter);
}

static void
test_count_paths(void *arg, const struct zrpc_client_method_stats *stats)
{
	uint64_t *other = arg;

	if (strcmp(stats->path, "(other)") == 0) {
		*other = stats->calls;
	}
}

Test(client, metrics_keep_96_paths_apart_and_count_the_rest_together,
    .timeout = TEST_TIMEOUT_S)
{
	struct fake_server *server;
	zrpc_client        *client;
	zrpc_status         status;
	uint8_t            *reply;
	size_t              reply_len;
	uint64_t            other = 0;
	char                url[128], path[400];
	int                 i;

	test_url(url, sizeof(url), "inproc");
	server = test_server(url, 2);
	client = test_client(url, NULL);
	for (i = 0; i < 100; i++) {
		snprintf(path, sizeof(path), "/zrpc.test.Fake/P%d", i);
		status = zrpc_client_call_raw(
		    client, path, NULL, 0, &reply, &reply_len, NULL);
		cr_assert_eq(status.code, ZRPC_UNIMPLEMENTED);
	}
	/* A path longer than 256 bytes never gets an entry of its own. */
	memset(path, 'x', sizeof(path) - 1);
	path[0]                = '/';
	path[sizeof(path) - 1] = '\0';
	status                 = zrpc_client_call_raw(
	                    client, path, NULL, 0, &reply, &reply_len, NULL);
	cr_assert_eq(status.code, ZRPC_UNIMPLEMENTED);

	cr_expect_eq(zrpc_client_stats(client, test_count_paths, &other), 97);
	cr_expect_eq(other, 5);

	zrpc_client_close(client);
	fake_server_stop(server);
}

Test(client, open_refuses_a_metrics_precision_above_ten,
    .timeout = TEST_TIMEOUT_S)
{
	zrpc_client_opts opts   = { .metrics_precision = 11 };
	zrpc_client     *client = NULL;
	zrpc_status      status;

	status = zrpc_client_open(&client, "inproc://nobody", &opts);
	cr_expect_eq(status.code, ZRPC_INVALID_ARGUMENT);
	cr_expect_null(client);
	cr_expect(strstr(status.message, "metrics_precision") != NULL, "%s",
	    status.message);
}
