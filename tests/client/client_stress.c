/*
 * zrpc client stress program: a plain executable (Criterion aborts under
 * ThreadSanitizer), registered in the meson suite "stress".
 *
 * Phase 1: many threads share one client for blocking calls while the
 *          main thread keeps asynchronous calls (typed and raw) in flight;
 *          every reply must be the caller's own.
 * Phase 2: threads keep calling while the server is killed and restarted
 *          a few times; every call must end with OK, UNAVAILABLE or
 *          DEADLINE_EXCEEDED (never hang, never anything else). This runs
 *          over inproc: with ipc or tcp, nng 1.5.2's nng_close of the
 *          busy server socket can hang (nanomsg/nng#1543, #1813).
 * Phase 3: close with asynchronous and blocking calls in flight: every
 *          one ends CANCELLED, every callback has run when close returns.
 * Phase 4: phase 2 with a client of two servers, of which only the first
 *          is killed and restarted: the client's health probes, its moves
 *          of waiting calls and its choice of server run under the
 *          callers' load; every call ends OK, UNAVAILABLE or
 *          DEADLINE_EXCEEDED, and the second server takes calls.
 *
 * Every loop is bounded, every wait has a deadline, nothing sleeps to
 * synchronise. Exits 0 on success, 1 on failure.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "zrpc/client.h"
#include "zrpc/v1/health.pb-c.h"

#include "fake_server.h"
#include "waiter.h"

#define STRESS_THREADS 32
#define STRESS_CALLS 300
#define STRESS_ASYNC 2000
#define STRESS_CHURN_THREADS 16
#define STRESS_CHURN_CALLS 200
#define STRESS_RESTARTS 8
#define STRESS_CLOSE_ASYNC 500
#define STRESS_CLOSE_THREADS 8
#define STRESS_WAIT_MS 60000

/*
 * LeakSanitizer: killing a busy server over inproc leaks the server's
 * reply messages inside nng 1.5.2 (reproduced with plain nng req clients,
 * no zrpc code involved), so leaks allocated by the fake server's
 * fake_reply are not reported here. The Criterion suite, which kills no
 * busy inproc server, checks the client's replies without suppression.
 */
const char *__lsan_default_suppressions(void);
const char *
__lsan_default_suppressions(void)
{
	return "leak:fake_reply\n";
}

static const struct zrpc_method stress_echo  = { "Echo", FAKE_ECHO,
	 &zrpc__v1__health_check_request__descriptor,
	 &zrpc__v1__health_check_request__descriptor };
static const struct zrpc_method stress_never = { "Never", FAKE_NEVER,
	&zrpc__v1__health_check_request__descriptor,
	&zrpc__v1__health_check_request__descriptor };

/*
 * Starts a thread or ends the program: a stress run that cannot start its
 * threads has nothing to report but failure.
 */
static void
stress_spawn(pthread_t *thread, void *(*fn)(void *), void *arg)
{
	int rv;

	if ((rv = pthread_create(thread, NULL, fn, arg)) != 0) {
		fprintf(stderr, "pthread_create: %s\n", strerror(rv));
		exit(1);
	}
}

/* Blocking call of METHOD with TEXT; on OK the reply's text in OUT. */
static zrpc_status
stress_call(zrpc_client *client, const struct zrpc_method *method,
    const char *text, char *out, size_t out_len, const zrpc_call_opts *opts)
{
	Zrpc__V1__HealthCheckRequest request =
	    ZRPC__V1__HEALTH_CHECK_REQUEST__INIT;
	ProtobufCMessage *reply = NULL;
	zrpc_status       status;

	request.service = (char *) text;
	status = zrpc_client_call(client, method, &request.base, &reply, opts);
	if (status.code == ZRPC_OK) {
		snprintf(out, out_len, "%s",
		    ((Zrpc__V1__HealthCheckRequest *) reply)->service);
		protobuf_c_message_free_unpacked(reply, NULL);
	}
	return status;
}

/* One asynchronous call's expectation and outcome. */
struct stress_slot {
	struct test_waiter *waiter;
	char                want[32];
	zrpc_code           code;
	atomic_int          calls;
	bool                matched;
};

static void
stress_typed_cb(void *arg, const zrpc_status *status, ProtobufCMessage *reply)
{
	struct stress_slot *slot = arg;

	slot->code = status->code;
	if (reply != NULL) {
		slot->matched =
		    strcmp(((Zrpc__V1__HealthCheckRequest *) reply)->service,
		        slot->want) == 0;
		protobuf_c_message_free_unpacked(reply, NULL);
	}
	atomic_fetch_add(&slot->calls, 1);
	test_waiter_add(slot->waiter);
}

static void
stress_raw_cb(
    void *arg, const zrpc_status *status, const uint8_t *reply, size_t len)
{
	struct stress_slot           *slot = arg;
	Zrpc__V1__HealthCheckRequest *typed;

	slot->code = status->code;
	if (reply != NULL) {
		typed =
		    zrpc__v1__health_check_request__unpack(NULL, len, reply);
		slot->matched =
		    typed != NULL && strcmp(typed->service, slot->want) == 0;
		zrpc__v1__health_check_request__free_unpacked(typed, NULL);
	}
	atomic_fetch_add(&slot->calls, 1);
	test_waiter_add(slot->waiter);
}

struct stress_thread {
	pthread_t    thread;
	zrpc_client *client;
	int          id;
	int          calls;
	int          ok, unavailable, deadline, other;
};

/* Phase 1 worker: echo calls that must all come back as sent. */
static void *
stress_echo_main(void *arg)
{
	struct stress_thread *t    = arg;
	zrpc_call_opts        opts = { .timeout_ms = 60000 };
	zrpc_status           status;
	char                  want[32], got[32];
	int                   i;

	for (i = 0; i < t->calls; i++) {
		snprintf(want, sizeof(want), "t%d-%d", t->id, i);
		status = stress_call(
		    t->client, &stress_echo, want, got, sizeof(got), &opts);
		if (status.code == ZRPC_OK && strcmp(want, got) == 0) {
			t->ok++;
		} else {
			t->other++;
		}
	}
	return NULL;
}

/* Phase 2 worker: calls while the server comes and goes. */
static void *
stress_churn_main(void *arg)
{
	struct stress_thread *t    = arg;
	zrpc_call_opts        opts = { .timeout_ms = 3000 };
	zrpc_status           status;
	char                  want[32], got[32];
	int                   i;

	for (i = 0; i < t->calls; i++) {
		snprintf(want, sizeof(want), "c%d-%d", t->id, i);
		status = stress_call(
		    t->client, &stress_echo, want, got, sizeof(got), &opts);
		if (status.code == ZRPC_OK) {
			if (strcmp(want, got) == 0) {
				t->ok++;
			} else {
				t->other++;
			}
		} else if (status.code == ZRPC_UNAVAILABLE) {
			t->unavailable++;
		} else if (status.code == ZRPC_DEADLINE_EXCEEDED) {
			t->deadline++;
		} else {
			fprintf(stderr, "churn: unexpected %s: %s\n",
			    zrpc_status_name(status.code), status.message);
			t->other++;
		}
	}
	return NULL;
}

/* Phase 3 worker: one blocking call that never gets a reply. */
static void *
stress_never_main(void *arg)
{
	struct stress_thread *t = arg;
	zrpc_status           status;
	char                  got[32];

	status = stress_call(
	    t->client, &stress_never, "never", got, sizeof(got), NULL);
	if (status.code == ZRPC_CANCELLED) {
		t->ok++;
	} else {
		t->other++;
	}
	return NULL;
}

static int
stress_phase_shared(const char *url)
{
	static struct stress_thread threads[STRESS_THREADS];
	static struct stress_slot   slots[STRESS_ASYNC];
	struct fake_server_opts     sopts = { .workers = 8 };
	zrpc_call_opts              opts  = { .timeout_ms = 60000 };
	struct test_waiter          waiter;
	struct fake_server         *server;
	zrpc_client                *client;
	zrpc_status                 status;
	int                         i, bad = 0;

	test_waiter_init(&waiter);
	if (fake_server_start(&server, url, &sopts) != 0) {
		fprintf(stderr, "shared: cannot start server\n");
		return 1;
	}
	status = zrpc_client_open(&client, url, NULL);
	if (status.code != ZRPC_OK) {
		fprintf(stderr, "shared: open: %s\n", status.message);
		fake_server_stop(server);
		return 1;
	}
	for (i = 0; i < STRESS_THREADS; i++) {
		threads[i] = (struct stress_thread) {
			.client = client, .id = i, .calls = STRESS_CALLS
		};
		stress_spawn(
		    &threads[i].thread, stress_echo_main, &threads[i]);
	}
	for (i = 0; i < STRESS_ASYNC; i++) {
		Zrpc__V1__HealthCheckRequest request =
		    ZRPC__V1__HEALTH_CHECK_REQUEST__INIT;
		uint8_t packed[64];
		size_t  len;

		slots[i] = (struct stress_slot) { .waiter = &waiter };
		snprintf(slots[i].want, sizeof(slots[i].want), "a%d", i);
		request.service = slots[i].want;
		if (i % 2 == 0) {
			status = zrpc_client_call_async(client, &stress_echo,
			    &request.base, &opts, zrpc_reply_invoke_generic,
			    (void (*)(void)) stress_typed_cb, &slots[i]);
		} else {
			len = zrpc__v1__health_check_request__pack(
			    &request, packed);
			status = zrpc_client_call_raw_async(client, FAKE_ECHO,
			    packed, len, &opts, stress_raw_cb, &slots[i]);
		}
		if (status.code != ZRPC_OK) {
			fprintf(stderr, "shared: async %d: %s\n", i,
			    status.message);
			bad++;
			test_waiter_add(&waiter);
		}
	}
	for (i = 0; i < STRESS_THREADS; i++) {
		pthread_join(threads[i].thread, NULL);
		bad += threads[i].other;
	}
	if (test_waiter_wait(&waiter, STRESS_ASYNC, STRESS_WAIT_MS) !=
	    STRESS_ASYNC) {
		fprintf(stderr, "shared: async calls did not complete\n");
		bad++;
	}
	zrpc_client_close(client);
	for (i = 0; i < STRESS_ASYNC; i++) {
		if (slots[i].code != ZRPC_OK || !slots[i].matched ||
		    atomic_load(&slots[i].calls) != 1) {
			bad++;
		}
	}
	fake_server_stop(server);
	test_waiter_fini(&waiter);
	printf("shared: %d blocking + %d async calls, %d bad\n",
	    STRESS_THREADS * STRESS_CALLS, STRESS_ASYNC, bad);
	return bad != 0;
}

static int
stress_phase_churn(const char *url)
{
	static struct stress_thread threads[STRESS_CHURN_THREADS];
	struct fake_server_opts     sopts = { .workers = 4 };
	zrpc_client_opts            copts = { .connect_timeout_ms = 1000 };
	struct fake_server         *server;
	zrpc_client                *client;
	zrpc_status                 status;
	int ok = 0, unavailable = 0, deadline = 0, bad = 0, received = 0;
	int restarts, i;

	if (fake_server_start(&server, url, &sopts) != 0) {
		fprintf(stderr, "churn: cannot start server\n");
		return 1;
	}
	status = zrpc_client_open(&client, url, &copts);
	if (status.code != ZRPC_OK) {
		fprintf(stderr, "churn: open: %s\n", status.message);
		fake_server_stop(server);
		return 1;
	}
	for (i = 0; i < STRESS_CHURN_THREADS; i++) {
		threads[i] = (struct stress_thread) {
			.client = client, .id = i, .calls = STRESS_CHURN_CALLS
		};
		stress_spawn(
		    &threads[i].thread, stress_churn_main, &threads[i]);
	}
	/* Kill the server each time it has taken some calls; restart it. */
	for (restarts = 0; restarts < STRESS_RESTARTS; restarts++) {
		if (!fake_server_wait(server, FAKE_RECEIVED, 100, 10000)) {
			break; /* the callers are done */
		}
		received += fake_server_count(server, FAKE_RECEIVED);
		fake_server_stop(server);
		server = NULL;
		if (fake_server_start(&server, url, &sopts) != 0) {
			fprintf(stderr, "churn: cannot restart server\n");
			bad++;
			break;
		}
	}
	for (i = 0; i < STRESS_CHURN_THREADS; i++) {
		pthread_join(threads[i].thread, NULL);
		ok += threads[i].ok;
		unavailable += threads[i].unavailable;
		deadline += threads[i].deadline;
		bad += threads[i].other;
	}
	zrpc_client_close(client);
	fake_server_stop(server);
	printf("churn: %d calls, %d restarts (%d received before them): "
	       "%d ok, %d unavailable, %d deadline, %d bad\n",
	    STRESS_CHURN_THREADS * STRESS_CHURN_CALLS, restarts, received, ok,
	    unavailable, deadline, bad);
	return bad != 0 || ok == 0;
}

static int
stress_phase_multi(const char *url_a, const char *url_b)
{
	static struct stress_thread threads[STRESS_CHURN_THREADS];
	struct fake_server_opts     sopts = { .workers = 4 };
	zrpc_client_opts            copts = { .connect_timeout_ms = 1000 };
	struct fake_server         *a, *b;
	zrpc_client                *client;
	zrpc_status                 status;
	char                        list[300];
	int ok = 0, unavailable = 0, deadline = 0, bad = 0, restarts, i;

	if (fake_server_start(&a, url_a, &sopts) != 0) {
		fprintf(stderr, "multi: cannot start server\n");
		return 1;
	}
	if (fake_server_start(&b, url_b, &sopts) != 0) {
		fprintf(stderr, "multi: cannot start server\n");
		fake_server_stop(a);
		return 1;
	}
	snprintf(list, sizeof(list), "%s,%s", url_a, url_b);
	status = zrpc_client_open(&client, list, &copts);
	if (status.code != ZRPC_OK) {
		fprintf(stderr, "multi: open: %s\n", status.message);
		fake_server_stop(a);
		fake_server_stop(b);
		return 1;
	}
	for (i = 0; i < STRESS_CHURN_THREADS; i++) {
		threads[i] = (struct stress_thread) {
			.client = client, .id = i, .calls = STRESS_CHURN_CALLS
		};
		stress_spawn(
		    &threads[i].thread, stress_churn_main, &threads[i]);
	}
	for (restarts = 0; restarts < STRESS_RESTARTS; restarts++) {
		if (!fake_server_wait(a, FAKE_RECEIVED, 50, 2000)) {
			break; /* the callers are done */
		}
		fake_server_stop(a);
		a = NULL;
		if (fake_server_start(&a, url_a, &sopts) != 0) {
			fprintf(stderr, "multi: cannot restart server\n");
			bad++;
			break;
		}
	}
	for (i = 0; i < STRESS_CHURN_THREADS; i++) {
		pthread_join(threads[i].thread, NULL);
		ok += threads[i].ok;
		unavailable += threads[i].unavailable;
		deadline += threads[i].deadline;
		bad += threads[i].other;
	}
	zrpc_client_close(client);
	printf("multi: %d calls, %d restarts of one of two servers "
	       "(the other took %d): %d ok, %d unavailable, %d deadline, "
	       "%d bad\n",
	    STRESS_CHURN_THREADS * STRESS_CHURN_CALLS, restarts,
	    fake_server_count(b, FAKE_RECEIVED), ok, unavailable, deadline,
	    bad);
	bad += fake_server_count(b, FAKE_RECEIVED) == 0;
	fake_server_stop(a);
	fake_server_stop(b);
	return bad != 0 || ok == 0;
}

static int
stress_phase_close(const char *url)
{
	static struct stress_slot   slots[STRESS_CLOSE_ASYNC];
	static struct stress_thread threads[STRESS_CLOSE_THREADS];
	struct fake_server_opts     sopts = { .workers = 4 };
	struct test_waiter          waiter;
	struct fake_server         *server;
	zrpc_client                *client;
	zrpc_status                 status;
	int                         i, bad = 0, started = 0;

	test_waiter_init(&waiter);
	if (fake_server_start(&server, url, &sopts) != 0) {
		fprintf(stderr, "close: cannot start server\n");
		return 1;
	}
	status = zrpc_client_open(&client, url, NULL);
	if (status.code != ZRPC_OK) {
		fprintf(stderr, "close: open: %s\n", status.message);
		fake_server_stop(server);
		return 1;
	}
	for (i = 0; i < STRESS_CLOSE_ASYNC; i++) {
		Zrpc__V1__HealthCheckRequest request =
		    ZRPC__V1__HEALTH_CHECK_REQUEST__INIT;

		slots[i]        = (struct stress_slot) { .waiter = &waiter };
		request.service = "never";
		status          = zrpc_client_call_async(client, &stress_never,
		             &request.base, NULL, zrpc_reply_invoke_generic,
		             (void (*)(void)) stress_typed_cb, &slots[i]);
		started += status.code == ZRPC_OK;
	}
	for (i = 0; i < STRESS_CLOSE_THREADS; i++) {
		threads[i] = (struct stress_thread) { .client = client };
		stress_spawn(
		    &threads[i].thread, stress_never_main, &threads[i]);
	}
	if (!fake_server_wait(server, FAKE_RECEIVED,
	        STRESS_CLOSE_ASYNC + STRESS_CLOSE_THREADS, STRESS_WAIT_MS)) {
		fprintf(stderr, "close: calls did not reach the server\n");
		bad++;
	}
	zrpc_client_close(client);
	if (test_waiter_wait(&waiter, started, 0) != started) {
		fprintf(stderr, "close: callbacks missing after close\n");
		bad++;
	}
	for (i = 0; i < STRESS_CLOSE_ASYNC; i++) {
		if (slots[i].code != ZRPC_CANCELLED ||
		    atomic_load(&slots[i].calls) != 1) {
			bad++;
		}
	}
	for (i = 0; i < STRESS_CLOSE_THREADS; i++) {
		pthread_join(threads[i].thread, NULL);
		bad += threads[i].other;
	}
	fake_server_stop(server);
	test_waiter_fini(&waiter);
	printf("close: %d async + %d blocking calls cancelled, %d bad\n",
	    started, STRESS_CLOSE_THREADS, bad);
	return bad != 0;
}

int
main(void)
{
	char url[128];
	int  failed = 0;

	snprintf(url, sizeof(url), "inproc://zrpc-client-stress-%d",
	    (int) getpid());
	failed |= stress_phase_shared(url);
	snprintf(url, sizeof(url), "inproc://zrpc-client-stress-churn-%d",
	    (int) getpid());
	failed |= stress_phase_churn(url);
	snprintf(url, sizeof(url), "inproc://zrpc-client-stress-close-%d",
	    (int) getpid());
	failed |= stress_phase_close(url);
	{
		char url_b[128];
		snprintf(url, sizeof(url), "inproc://zrpc-client-stress-a-%d",
		    (int) getpid());
		snprintf(url_b, sizeof(url_b),
		    "inproc://zrpc-client-stress-b-%d", (int) getpid());
		failed |= stress_phase_multi(url, url_b);
	}
	printf("%s\n", failed ? "FAILED" : "ok");
	return failed;
}
