/*
 * Stress for the zrpc runtime, built to run under ThreadSanitizer (a plain
 * program: Criterion does not run under TSan).
 *
 * 16 threads share one client and mix every kind of call: inline and
 * worker-pool handlers, blocking and asynchronous stubs, calls that time
 * out, unknown methods and garbage bodies on a raw socket. Each thread does
 * a fixed number of iterations; then the program checks that every reply
 * matched its request and that the server's counters add up to the calls
 * made, and finally stops the server while calls are still arriving.
 * Exit status 0 when every check held.
 */
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "zrpc/client.h"
#include "zrpc/server.h"
#include "ztest/v1/echo.zrpc.h"

#define THREADS 16
#define ITERATIONS 600

struct stress {
	zrpc_server *server;
	zrpc_client *client;
	const char  *url;
	atomic_uint  handler_runs;
	atomic_uint  ok, mismatched, errors;
	atomic_uint  async_pending;
	atomic_uint  calls_made;
};

static void
stress_fill(zrpc_call *call, const Ztest__V1__EchoRequest *req,
    Ztest__V1__EchoReply *reply)
{
	struct stress *s = zrpc_call_service_ctx(call);

	atomic_fetch_add(&s->handler_runs, 1);
	reply->seq    = req->seq;
	reply->thread = req->thread;
	reply->text   = zrpc_call_strdup(call, req->text);
}

static zrpc_status
stress_echo(zrpc_call *call, const Ztest__V1__EchoRequest *req,
    Ztest__V1__EchoReply *reply)
{
	stress_fill(call, req, reply);
	return zrpc_status_ok();
}

static zrpc_status
stress_fail(zrpc_call *call, const Ztest__V1__EchoRequest *req,
    Ztest__V1__EchoReply *reply)
{
	(void) reply;
	(void) req;
	atomic_fetch_add(
	    &((struct stress *) zrpc_call_service_ctx(call))->handler_runs, 1);
	return zrpc_status_make(ZRPC_NOT_FOUND, "nope");
}

struct async_arg {
	struct stress *s;
	uint64_t       seq;
	unsigned       thread;
};

static void
stress_async_done(
    void *arg, const zrpc_status *status, Ztest__V1__EchoReply *reply)
{
	struct async_arg *a = arg;

	if (status->code == ZRPC_OK) {
		if (reply->seq == a->seq && reply->thread == a->thread) {
			atomic_fetch_add(&a->s->ok, 1);
		} else {
			atomic_fetch_add(&a->s->mismatched, 1);
		}
		ztest__v1__echo_reply__free_unpacked(reply, NULL);
	} else {
		atomic_fetch_add(&a->s->errors, 1);
	}
	atomic_fetch_sub(&a->s->async_pending, 1);
	free(a);
}

struct worker {
	struct stress *s;
	unsigned       thread;
};

static void *
stress_thread(void *arg)
{
	struct worker *w = arg;
	struct stress *s = w->s;
	nng_socket     raw;
	char           text[32];

	if (nng_req0_open(&raw) != 0 || nng_dial(raw, s->url, NULL, 0) != 0) {
		fprintf(stderr, "raw socket failed\n");
		atomic_fetch_add(&s->errors, 1);
		return NULL;
	}
	nng_socket_set_ms(raw, NNG_OPT_RECVTIMEO, 10000);
	for (unsigned i = 0; i < ITERATIONS; i++) {
		Ztest__V1__EchoRequest req   = ZTEST__V1__ECHO_REQUEST__INIT;
		Ztest__V1__EchoReply  *reply = NULL;
		zrpc_call_opts         opts  = { .timeout_ms = 20000 };
		zrpc_status            st;

		snprintf(text, sizeof(text), "t%u-%u", w->thread, i);
		req.text   = text;
		req.thread = w->thread;
		req.seq    = i;
		atomic_fetch_add(&s->calls_made, 1);
		switch (i % 6) {
		case 0:
			st =
			    ztest_v1_echo_echo(s->client, &req, &reply, &opts);
			break;
		case 1:
			st = ztest_v1_echo_blocking_echo(
			    s->client, &req, &reply, &opts);
			break;
		case 2:
			st =
			    ztest_v1_echo_fail(s->client, &req, &reply, &opts);
			if (st.code == ZRPC_NOT_FOUND) {
				atomic_fetch_add(&s->ok, 1);
			} else {
				atomic_fetch_add(&s->errors, 1);
			}
			continue;
		case 3: {
			struct async_arg *a = malloc(sizeof(*a));
			*a = (struct async_arg) { s, i, w->thread };
			atomic_fetch_add(&s->async_pending, 1);
			st = ztest_v1_echo_echo_async(
			    s->client, &req, &opts, stress_async_done, a);
			if (st.code != ZRPC_OK) {
				atomic_fetch_sub(&s->async_pending, 1);
				atomic_fetch_add(&s->errors, 1);
				free(a);
			}
			continue;
		}
		case 4: {
			/* Garbage on the raw socket: must be answered. */
			uint8_t junk[8] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
				0x02, (uint8_t) i };
			nng_msg *m;
			if (nng_msg_alloc(&m, sizeof(junk)) != 0) {
				atomic_fetch_add(&s->errors, 1);
				continue;
			}
			memcpy(nng_msg_body(m), junk, sizeof(junk));
			if (nng_sendmsg(raw, m, 0) != 0 ||
			    nng_recvmsg(raw, &m, 0) != 0) {
				atomic_fetch_add(&s->errors, 1);
				continue;
			}
			nng_msg_free(m);
			atomic_fetch_add(&s->ok, 1);
			continue;
		}
		default:
			/* A call that may or may not beat a 1 ms deadline. */
			opts.timeout_ms = 1;
			st              = ztest_v1_echo_blocking_echo(
			                 s->client, &req, &reply, &opts);
			if (st.code == ZRPC_OK) {
				ztest__v1__echo_reply__free_unpacked(
				    reply, NULL);
			}
			if (st.code == ZRPC_OK ||
			    st.code == ZRPC_DEADLINE_EXCEEDED) {
				atomic_fetch_add(&s->ok, 1);
			} else {
				atomic_fetch_add(&s->errors, 1);
			}
			continue;
		}
		if (st.code != ZRPC_OK) {
			fprintf(stderr, "call failed: %s: %s\n",
			    zrpc_status_name(st.code), st.message);
			atomic_fetch_add(&s->errors, 1);
			continue;
		}
		if (reply->seq == i && reply->thread == w->thread &&
		    strcmp(reply->text, text) == 0) {
			atomic_fetch_add(&s->ok, 1);
		} else {
			atomic_fetch_add(&s->mismatched, 1);
		}
		ztest__v1__echo_reply__free_unpacked(reply, NULL);
	}
	nng_close(raw);
	return NULL;
}

static int
stress_run(const char *listen)
{
	const struct ztest_v1_echo_handlers handlers = {
		.echo                   = stress_echo,
		.blocking_echo          = stress_echo,
		.blocking_echo_blocking = true,
		.wait                   = stress_echo,
		.fail                   = stress_fail,
	};
	struct stress s;
	struct worker workers[THREADS];
	pthread_t     threads[THREADS];
	zrpc_status   st;
	int           failed = 0;

	memset(&s, 0, sizeof(s));
	st = zrpc_server_create(
	    &s.server, &(zrpc_server_config) { .workers = 4 });
	if (st.code == ZRPC_OK) {
		st = ztest_v1_echo_register(s.server, &handlers, &s);
	}
	if (st.code == ZRPC_OK) {
		st = zrpc_server_listen(s.server, listen);
	}
	if (st.code == ZRPC_OK) {
		st = zrpc_server_start(s.server);
	}
	if (st.code != ZRPC_OK) {
		fprintf(stderr, "server: %s\n", st.message);
		zrpc_server_destroy(s.server);
		return 1;
	}
	s.url = zrpc_server_listener_url(s.server, 0);
	st    = zrpc_client_open(&s.client, s.url, NULL);
	if (st.code != ZRPC_OK) {
		fprintf(stderr, "client: %s\n", st.message);
		zrpc_server_destroy(s.server);
		return 1;
	}
	for (unsigned i = 0; i < THREADS; i++) {
		workers[i] = (struct worker) { &s, i };
		pthread_create(&threads[i], NULL, stress_thread, &workers[i]);
	}
	for (unsigned i = 0; i < THREADS; i++) {
		pthread_join(threads[i], NULL);
	}
	/* Close waits for asynchronous calls still in flight. */
	zrpc_client_close(s.client);

	unsigned made = atomic_load(&s.calls_made);
	unsigned ok   = atomic_load(&s.ok);
	printf("%s: %u calls, %u ok, %u mismatched, %u errors, %u handler "
	       "runs\n",
	    listen, made, ok, atomic_load(&s.mismatched),
	    atomic_load(&s.errors), atomic_load(&s.handler_runs));
	if (atomic_load(&s.mismatched) != 0 || atomic_load(&s.errors) != 0 ||
	    ok != made || atomic_load(&s.async_pending) != 0) {
		fprintf(
		    stderr, "FAIL: every call must be answered correctly\n");
		failed = 1;
	}

	/* Server counters: a handler ran exactly for the calls it answered
	 * (expired ones were refused before it), and every call the
	 * clients made to a method was counted once (a 1 ms call may not
	 * have reached the server at all). */
	struct zrpc_method_stats stats;
	uint64_t                 counted = 0, runs = 0;
	const char *paths[] = { "/ztest.v1.Echo/Echo", "/ztest.v1.Echo/Fail",
		"/ztest.v1.Echo/BlockingEcho" };
	for (size_t p = 0; p < 3; p++) {
		uint64_t answered = 0;
		zrpc_server_method_stats(s.server, paths[p], &stats);
		for (int c = 0; c < ZRPC_CODE_COUNT; c++) {
			counted += stats.calls_by_code[c];
		}
		answered = stats.calls_by_code[ZRPC_OK] +
		    stats.calls_by_code[ZRPC_NOT_FOUND];
		if (stats.handler_runs != answered) {
			fprintf(stderr,
			    "FAIL: %s ran %llu times for %llu answers\n",
			    paths[p], (unsigned long long) stats.handler_runs,
			    (unsigned long long) answered);
			failed = 1;
		}
		runs += stats.handler_runs;
	}
	uint64_t per_kind = (uint64_t) THREADS * ITERATIONS / 6;
	if (counted < 4 * per_kind || counted > 5 * per_kind ||
	    runs != atomic_load(&s.handler_runs)) {
		fprintf(stderr,
		    "FAIL: server counted %llu calls (expected %llu..%llu), "
		    "%llu runs vs %u\n",
		    (unsigned long long) counted,
		    (unsigned long long) (4 * per_kind),
		    (unsigned long long) (5 * per_kind),
		    (unsigned long long) runs, atomic_load(&s.handler_runs));
		failed = 1;
	}
	zrpc_server_stop(s.server, 1000);
	zrpc_server_destroy(s.server);
	return failed;
}

/*
 * Connection churn against the per-peer bounds: threads open a client,
 * call, and close it, over and over, against a server that allows only a
 * few connections and closes idle ones after 20 ms, while another thread
 * reads the server's stats. Calls may be refused (the cap) or lose their
 * connection (the idle close); what is checked is that the connection
 * table, the reaper and the pipe notifications race cleanly (TSan) and
 * that the table is empty once every client has gone.
 */
#define CHURN_THREADS 6
#define CHURN_ROUNDS 40

struct churn {
	zrpc_server *server;
	const char  *url;
	atomic_bool  done;
	atomic_uint  ok;
};

static void *
churn_thread(void *arg)
{
	struct churn *c = arg;

	for (unsigned i = 0; i < CHURN_ROUNDS; i++) {
		Ztest__V1__EchoRequest req   = ZTEST__V1__ECHO_REQUEST__INIT;
		Ztest__V1__EchoReply  *reply = NULL;
		zrpc_client           *client;

		req.text = "churn";
		if (zrpc_client_open(&client, c->url, NULL).code != ZRPC_OK) {
			continue;
		}
		if (ztest_v1_echo_echo(client, &req, &reply,
		        &(zrpc_call_opts) { .timeout_ms = 200 })
		        .code == ZRPC_OK) {
			atomic_fetch_add(&c->ok, 1);
		}
		ztest__v1__echo_reply__free_unpacked(reply, NULL);
		zrpc_client_close(client);
	}
	return NULL;
}

static void *
churn_stats_thread(void *arg)
{
	struct churn            *c = arg;
	struct zrpc_server_stats stats;

	while (!atomic_load(&c->done)) {
		zrpc_server_stats(c->server, &stats);
		usleep(1000);
	}
	return NULL;
}

static int
stress_churn(void)
{
	const struct ztest_v1_echo_handlers handlers = {
		.echo                   = stress_echo,
		.blocking_echo          = stress_echo,
		.blocking_echo_blocking = true,
		.wait                   = stress_echo,
		.fail                   = stress_fail,
	};
	struct stress            s;
	struct churn             c;
	struct zrpc_server_stats stats;
	pthread_t                threads[CHURN_THREADS], watcher;
	zrpc_status              st;

	memset(&s, 0, sizeof(s));
	memset(&c, 0, sizeof(c));
	st = zrpc_server_create(&c.server,
	    &(zrpc_server_config) {
	        .workers = 2, .max_connections = 4, .idle_timeout_ms = 20 });
	if (st.code == ZRPC_OK) {
		st = ztest_v1_echo_register(c.server, &handlers, &s);
	}
	if (st.code == ZRPC_OK) {
		st = zrpc_server_listen(c.server, "tcp://127.0.0.1:0");
	}
	if (st.code == ZRPC_OK) {
		st = zrpc_server_start(c.server);
	}
	if (st.code != ZRPC_OK) {
		fprintf(stderr, "churn server: %s\n", st.message);
		zrpc_server_destroy(c.server);
		return 1;
	}
	c.url = zrpc_server_listener_url(c.server, 0);
	pthread_create(&watcher, NULL, churn_stats_thread, &c);
	for (unsigned i = 0; i < CHURN_THREADS; i++) {
		pthread_create(&threads[i], NULL, churn_thread, &c);
	}
	for (unsigned i = 0; i < CHURN_THREADS; i++) {
		pthread_join(threads[i], NULL);
	}
	atomic_store(&c.done, true);
	pthread_join(watcher, NULL);
	/* Every client has closed: the table empties (bounded wait). */
	for (int i = 0; i < 500; i++) {
		zrpc_server_stats(c.server, &stats);
		if (stats.connections == 0) {
			break;
		}
		usleep(10 * 1000);
	}
	printf("churn: %u of %u calls ok, %llu refused, %llu idle-closed, "
	       "%llu open at the end\n",
	    atomic_load(&c.ok), CHURN_THREADS * CHURN_ROUNDS,
	    (unsigned long long) stats.connections_refused,
	    (unsigned long long) stats.connections_idle_closed,
	    (unsigned long long) stats.connections);
	zrpc_server_stop(c.server, 1000);
	zrpc_server_destroy(c.server);
	if (stats.connections != 0 || atomic_load(&c.ok) == 0) {
		fprintf(
		    stderr, "FAIL: churn left connections or served none\n");
		return 1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	char ipc[128];
	int  failed = 0;

	/* "churn" runs the connection churn alone: it is its own test, whose
	 * leak check under ASan knows of nng's (see tests/stress/meson.build).
	 */
	if (argc > 1 && strcmp(argv[1], "churn") == 0) {
		failed = stress_churn();
		printf(
		    failed ? "stress: FAILED\n" : "stress: all checks held\n");
		return failed;
	}
	snprintf(
	    ipc, sizeof(ipc), "ipc:///tmp/zos-stress-%d.sock", (int) getpid());
	failed |= stress_run("inproc://zos-stress");
	failed |= stress_run("tcp://127.0.0.1:0");
	failed |= stress_run(ipc);
	unlink(ipc + 6);
	printf(failed ? "stress: FAILED\n" : "stress: all checks held\n");
	return failed;
}
