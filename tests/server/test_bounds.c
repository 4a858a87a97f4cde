/*
 * The per-peer bounds of the zrpc server (zrpc_server_config): the bound
 * on one connection's requests, the cap on connections, the idle timeout,
 * a connection's share of the byte budget, the metadata caps, the wire
 * count they use, and a stop that returns within its bound whatever a
 * handler does. Attacks against a whole zosd are tests/attack's.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "sockio.h"
#include "testserver.h"
#include "wire_check.h"
#include "zrpc/v1/envelope.pb-c.h"

/* Reads the server's stats until CHECK holds or 10 s pass. */
#define STATS_EVENTUALLY(server, stats, check)                             \
	({                                                                 \
		double until_ = test_now_ms() + 10000;                     \
		bool   held_;                                              \
		for (;;) {                                                 \
			zrpc_server_stats((server), &(stats));             \
			if ((held_ = (check)) || test_now_ms() > until_) { \
				break;                                     \
			}                                                  \
			usleep(10 * 1000); /* poll pacing */               \
		}                                                          \
		held_;                                                     \
	})

struct done {
	pthread_mutex_t mutex;
	pthread_cond_t  cond;
	unsigned        count; /* guarded by: mutex */
	unsigned        ok;    /* guarded by: mutex */
};

static void
done_echo(void *arg, const zrpc_status *status, Ztest__V1__EchoReply *reply)
{
	struct done *d = arg;

	pthread_mutex_lock(&d->mutex);
	d->count++;
	d->ok += status->code == ZRPC_OK;
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->mutex);
	if (reply != NULL) {
		ztest__v1__echo_reply__free_unpacked(reply, NULL);
	}
}

/* Waits (at most 20 s) for N completions. */
static bool
done_wait(struct done *d, unsigned n)
{
	struct timespec until;
	bool            ok = true;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 20;
	pthread_mutex_lock(&d->mutex);
	while (d->count < n) {
		if (pthread_cond_timedwait(&d->cond, &d->mutex, &until) != 0) {
			ok = d->count >= n;
			break;
		}
	}
	pthread_mutex_unlock(&d->mutex);
	return ok;
}

static zrpc_status
echo(zrpc_client *client, const char *text, const zrpc_call_opts *opts)
{
	Ztest__V1__EchoRequest req      = ZTEST__V1__ECHO_REQUEST__INIT;
	Ztest__V1__EchoReply  *reply    = NULL;
	zrpc_call_opts         fallback = { .timeout_ms = 5000 };
	zrpc_status            status;

	req.text = (char *) text;
	status   = ztest_v1_echo_echo(
	      client, &req, &reply, opts != NULL ? opts : &fallback);
	if (reply != NULL) {
		ztest__v1__echo_reply__free_unpacked(reply, NULL);
	}
	return status;
}

Test(bounds, requests_beyond_the_per_connection_bound_are_refused)
{
	struct test_server       ts;
	zrpc_server_config       config = { .max_inflight_per_conn = 2,
		      .workers                                     = 4 };
	zrpc_client             *client, *other;
	Ztest__V1__EchoRequest   req = ZTEST__V1__ECHO_REQUEST__INIT;
	struct done              held;
	struct zrpc_server_stats stats;
	zrpc_status              status;

	test_server_start(&ts, "inproc", &config);
	client = test_client_open(&ts);
	other  = test_client_open(&ts);
	memset(&held, 0, sizeof(held));
	pthread_mutex_init(&held.mutex, NULL);
	pthread_cond_init(&held.cond, NULL);
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(ztest_v1_echo_wait_async(
		                 client, &req, NULL, done_echo, &held)
		                 .code,
		    ZRPC_OK);
	}
	cr_assert(test_gate_wait_entered(&ts, 2));

	status = echo(client, "third", NULL);
	cr_assert_eq(
	    status.code, ZRPC_RESOURCE_EXHAUSTED, "%s", status.message);
	cr_assert(strstr(status.message, "this connection") != NULL, "%s",
	    status.message);
	/* Another connection is not held back by it. */
	status = echo(other, "other", NULL);
	cr_assert_eq(status.code, ZRPC_OK, "%s", status.message);
	zrpc_server_stats(ts.server, &stats);
	cr_assert_eq(stats.requests_conn_limited, 1);

	test_gate_open(&ts);
	cr_assert(done_wait(&held, 2));
	cr_assert_eq(held.ok, 2);
	status = echo(client, "room again", NULL);
	cr_assert_eq(status.code, ZRPC_OK, "%s", status.message);
	zrpc_client_close(other);
	zrpc_client_close(client);
	test_server_stop(&ts);
}

/*
 * The connection beyond the cap is a raw TCP peer, not a zrpc client: a
 * client's nng dialer redials the refused connection over and over, and
 * nng 1.5.2 leaks a TCP pipe (and its endpoint) for good when the dialer
 * is closed just as one of those redials finishes its SP handshake
 * (tcptran_pipe_nego_cb parks it on a closed endpoint; fixed upstream in
 * nng 5183093c). Under load LSan then failed this suite at the worker's
 * exit, after every test had passed.
 */
Test(bounds, a_connection_beyond_the_cap_is_closed)
{
	struct test_server         ts;
	zrpc_server_config         config = { .max_connections = 1 };
	zrpc_client               *first;
	struct zrpc_server_stats   stats;
	static const unsigned char header[8] = { 0, 'S', 'P', 0, 0, 0x30, 0,
		0 };
	struct sockaddr_in         addr      = { .sin_family = AF_INET };
	struct timeval             tv        = { .tv_sec = 5 };
	unsigned char              buf[64];
	size_t                     got = 0;
	ssize_t                    n   = -1;
	int                        fd, port;

	test_server_start(&ts, "tcp", &config);
	first = test_client_open(&ts);
	cr_assert_eq(echo(first, "first", NULL).code, ZRPC_OK);
	cr_assert(sscanf(strrchr(ts.url, ':') + 1, "%d", &port) == 1);
	addr.sin_port        = htons((uint16_t) port);
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_geq(fd = socket(AF_INET, SOCK_STREAM, 0), 0);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	cr_assert_eq(connect(fd, (struct sockaddr *) &addr, sizeof(addr)), 0);
	cr_assert(send_all(fd, header, sizeof(header)));
	/* The server answers the SP header, then closes: end of stream (or
	 * a reset), never a timeout, and nothing past the header. Bounded
	 * by the 5 s receive timeout and the buffer. */
	while (got < sizeof(buf) &&
	    (n = recv(fd, buf + got, sizeof(buf) - got, 0)) > 0) {
		got += (size_t) n;
	}
	cr_assert(n == 0 || errno == ECONNRESET, "recv: %s after %zu bytes",
	    n < 0 ? strerror(errno) : "data", got);
	cr_assert_leq(got, sizeof(header), "a second connection is served");
	close(fd);
	cr_assert(STATS_EVENTUALLY(
	    ts.server, stats, stats.connections_refused >= 1));
	cr_assert_eq(stats.connections, 1);
	cr_assert_eq(echo(first, "still", NULL).code, ZRPC_OK);
	cr_assert(test_log_wait(&ts, "connections open (max;"));
	zrpc_client_close(first);
	test_server_stop(&ts);
}

Test(bounds, an_idle_connection_is_closed_and_the_client_comes_back)
{
	struct test_server       ts;
	zrpc_server_config       config = { .idle_timeout_ms = 100 };
	zrpc_client             *client;
	struct zrpc_server_stats stats;

	test_server_start(&ts, "tcp", &config);
	client = test_client_open(&ts);
	cr_assert_eq(echo(client, "before", NULL).code, ZRPC_OK);
	cr_assert(STATS_EVENTUALLY(
	    ts.server, stats, stats.connections_idle_closed >= 1));
	/* The client dials again and is served. A call that meets the
	 * next idle close (100 ms here) fails fast as UNAVAILABLE: retry,
	 * bounded. */
	{
		double      until = test_now_ms() + 3000;
		zrpc_status status;

		do {
			status = echo(client, "after", NULL);
		} while (
		    status.code == ZRPC_UNAVAILABLE && test_now_ms() < until);
		cr_assert_eq(status.code, ZRPC_OK, "%s", status.message);
	}
	zrpc_client_close(client);
	test_server_stop(&ts);
}

Test(bounds, a_busy_connection_is_not_idle)
{
	struct test_server       ts;
	zrpc_server_config       config = { .idle_timeout_ms = 300 };
	zrpc_client             *client;
	struct zrpc_server_stats stats;
	double                   until;

	test_server_start(&ts, "tcp", &config);
	client = test_client_open(&ts);
	until  = test_now_ms() + 1000;
	while (test_now_ms() < until) {
		cr_assert_eq(echo(client, "busy", NULL).code, ZRPC_OK);
		usleep(20 * 1000); /* a call every 20 ms: never idle */
	}
	zrpc_server_stats(ts.server, &stats);
	cr_assert_eq(stats.connections_idle_closed, 0);
	zrpc_client_close(client);
	test_server_stop(&ts);
}

Test(bounds, a_connection_holds_at_most_a_quarter_of_the_byte_budget)
{
	struct test_server       ts;
	zrpc_server_config       config = { .max_buffered_bytes = 1u << 20 };
	zrpc_client             *client;
	struct zrpc_server_stats stats;
	char                    *text;
	zrpc_status              status;

	test_server_start(&ts, "inproc", &config);
	client = test_client_open(&ts);
	cr_assert_not_null(text = malloc(300 * 1024));
	memset(text, 'a', 300 * 1024 - 1);
	text[300 * 1024 - 1] = '\0';
	status               = echo(client, text, NULL);
	cr_assert_eq(
	    status.code, ZRPC_RESOURCE_EXHAUSTED, "%s", status.message);
	text[200 * 1024] = '\0';
	status           = echo(client, text, NULL);
	cr_assert_eq(status.code, ZRPC_OK, "%s", status.message);
	free(text);
	zrpc_server_stats(ts.server, &stats);
	cr_assert_eq(stats.requests_buffer_limited, 1);
	cr_assert(
	    STATS_EVENTUALLY(ts.server, stats, stats.buffered_bytes == 0),
	    "%llu bytes still held",
	    (unsigned long long) stats.buffered_bytes);
	zrpc_client_close(client);
	test_server_stop(&ts);
}

Test(bounds, metadata_beyond_the_caps_is_refused_before_decoding)
{
	struct test_server         ts;
	zrpc_server_config         config = { .max_metadata_entries = 3,
		        .max_metadata_bytes                         = 64 };
	zrpc_client               *client;
	struct zrpc_metadata_entry md[4]  = { { "a", "1" }, { "b", "2" },
		 { "c", "3" }, { "d", "4" } };
	struct zrpc_metadata_entry big[1] = { { "k", NULL } };
	char                       value[100];
	struct zrpc_server_stats   stats;
	zrpc_status                status;

	test_server_start(&ts, "inproc", &config);
	client = test_client_open(&ts);
	/* two entries (with any the client adds) are within the cap */
	status = echo(client, "ok",
	    &(zrpc_call_opts) {
	        .timeout_ms = 5000, .metadata = md, .n_metadata = 2 });
	cr_assert_eq(status.code, ZRPC_OK, "%s", status.message);
	status = echo(client, "too many",
	    &(zrpc_call_opts) {
	        .timeout_ms = 5000, .metadata = md, .n_metadata = 4 });
	cr_assert_eq(
	    status.code, ZRPC_RESOURCE_EXHAUSTED, "%s", status.message);
	memset(value, 'v', sizeof(value) - 1);
	value[sizeof(value) - 1] = '\0';
	big[0].value             = value;
	status                   = echo(client, "too big",
	                      &(zrpc_call_opts) {
	                          .timeout_ms = 5000, .metadata = big, .n_metadata = 1 });
	cr_assert_eq(
	    status.code, ZRPC_RESOURCE_EXHAUSTED, "%s", status.message);
	zrpc_server_stats(ts.server, &stats);
	cr_assert_eq(stats.requests_metadata_limited, 2);
	zrpc_client_close(client);
	test_server_stop(&ts);
}

Test(bounds, wire_count_counts_a_field_and_stops_at_the_cap)
{
	Zrpc__V1__Request                req = ZRPC__V1__REQUEST__INIT;
	Zrpc__V1__Request__MetadataEntry e[3], *ep[3];
	uint8_t                          buf[256];
	size_t                           len, count, bytes;
	uint32_t field = protobuf_c_message_descriptor_get_field_by_name(
	    &zrpc__v1__request__descriptor, "metadata")
	                     ->id;

	for (int i = 0; i < 3; i++) {
		zrpc__v1__request__metadata_entry__init(&e[i]);
		e[i].key   = "key";
		e[i].value = "value";
		ep[i]      = &e[i];
	}
	req.method     = "/a.B/C";
	req.metadata   = ep;
	req.n_metadata = 3;
	len            = zrpc__v1__request__pack(&req, buf);
	cr_assert(
	    zrpc_wire_count_field(buf, len, field, 100, 1000, &count, &bytes));
	cr_assert_eq(count, 3);
	cr_assert_eq(bytes, 3 * (2 + 3 + 2 + 5));
	cr_assert(
	    zrpc_wire_count_field(buf, len, field, 1, 1000, &count, &bytes));
	cr_assert_eq(count, 2, "stops once past the cap");
	cr_assert_not(zrpc_wire_count_field(
	    buf, len - 1, field, 100, 1000, &count, &bytes));
}

/* ---- a peer that reads no replies ---- */

Test(bounds, a_reply_not_taken_in_time_is_dropped_and_its_peer_closed)
{
	struct test_server         ts;
	zrpc_server_config         config = { .send_timeout_ms = 300 };
	zrpc_client               *client;
	struct zrpc_server_stats   stats;
	Zrpc__V1__Request          env       = ZRPC__V1__REQUEST__INIT;
	Ztest__V1__EchoRequest     req       = ZTEST__V1__ECHO_REQUEST__INIT;
	static const unsigned char header[8] = { 0, 'S', 'P', 0, 0, 0x30, 0,
		0 };
	struct sockaddr_in         addr      = { .sin_family = AF_INET };
	struct timeval             tv        = { .tv_sec = 5 };
	unsigned char              peer[8], head[12];
	uint8_t                   *payload, *body;
	size_t                     len;
	char                      *text;
	int                        fd, port, rcvbuf = 4096;

	test_server_start(&ts, "tcp", &config);
	client = test_client_open(&ts);
	cr_assert(sscanf(strrchr(ts.url, ':') + 1, "%d", &port) == 1);

	/* Echo requests of 64 KiB, whose replies are as large. */
	cr_assert_not_null(text = malloc(64 * 1024));
	memset(text, 't', 64 * 1024 - 1);
	text[64 * 1024 - 1] = '\0';
	req.text            = text;
	env.method          = "/ztest.v1.Echo/Echo";
	env.payload.len     = ztest__v1__echo_request__get_packed_size(&req);
	cr_assert_not_null(payload = malloc(env.payload.len));
	ztest__v1__echo_request__pack(&req, payload);
	env.payload.data = payload;
	len              = zrpc__v1__request__get_packed_size(&env);
	cr_assert_not_null(body = malloc(len));
	zrpc__v1__request__pack(&env, body);
	free(payload);
	free(text);

	addr.sin_port        = htons((uint16_t) port);
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_geq(fd = socket(AF_INET, SOCK_STREAM, 0), 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	cr_assert_eq(connect(fd, (struct sockaddr *) &addr, sizeof(addr)), 0);
	cr_assert(send_all(fd, header, sizeof(header)));
	cr_assert_eq(recv(fd, peer, sizeof(peer), MSG_WAITALL), 8);
	/* 256 of them: 16 MiB of replies, more than loopback buffers. */
	for (uint32_t i = 0; i < 256; i++) {
		uint64_t total = (uint64_t) len + 4;
		uint32_t id    = 0x80000000u | (i + 1);

		for (int b = 0; b < 8; b++) {
			head[b] = (unsigned char) (total >> (56 - 8 * b));
		}
		for (int b = 0; b < 4; b++) {
			head[8 + b] = (unsigned char) (id >> (24 - 8 * b));
		}
		if (!send_all(fd, head, sizeof(head)) ||
		    !send_all(fd, body, len)) {
			break; /* closed already */
		}
	}
	free(body);
	/* Others are served while it sits on its replies. */
	cr_assert_eq(echo(client, "meanwhile", NULL).code, ZRPC_OK);
	cr_assert(
	    STATS_EVENTUALLY(ts.server, stats, stats.replies_dropped >= 1));
	cr_assert(test_log_wait(&ts, "not sent within 300 ms"));
	/* Its connection is gone, and what it held with it. */
	cr_assert(STATS_EVENTUALLY(ts.server, stats,
	    stats.connections == 1 && stats.buffered_bytes == 0));
	cr_assert_eq(echo(client, "after", NULL).code, ZRPC_OK);
	close(fd);
	zrpc_client_close(client);
	test_server_stop(&ts);
}

/* ---- stop ---- */

struct stopper {
	zrpc_server *server;
	unsigned     grace_ms;
	unsigned     left;
	double       took_ms;
	void        *owner; /* whatever a wrapper of stopper_main needs */
};

static void *
stopper_main(void *arg)
{
	struct stopper *s     = arg;
	double          start = test_now_ms();

	s->left    = zrpc_server_stop(s->server, s->grace_ms);
	s->took_ms = test_now_ms() - start;
	return NULL;
}

Test(bounds, stop_returns_within_grace_plus_two_seconds_when_a_handler_hangs)
{
	struct test_server       ts;
	zrpc_server_config       config = { .workers = 2 };
	zrpc_client             *client;
	Ztest__V1__EchoRequest   req = ZTEST__V1__ECHO_REQUEST__INIT;
	struct done              held;
	struct zrpc_server_stats stats;
	double                   start, took;

	test_server_start(&ts, "inproc", &config);
	client = test_client_open(&ts);
	memset(&held, 0, sizeof(held));
	pthread_mutex_init(&held.mutex, NULL);
	pthread_cond_init(&held.cond, NULL);
	cr_assert_eq(
	    ztest_v1_echo_wait_async(client, &req, NULL, done_echo, &held)
	        .code,
	    ZRPC_OK);
	cr_assert(test_gate_wait_entered(&ts, 1));
	/* The Wait handler holds its worker (up to 10 s): before, stop
	 * waited for it, however long. */
	start = test_now_ms();
	cr_assert_eq(zrpc_server_stop(ts.server, 200), 1);
	took = test_now_ms() - start;
	cr_assert_lt(took, 200 + 2000 + 500, "stop took %.0f ms", took);
	zrpc_server_stats(ts.server, &stats);
	cr_assert(stats.close_abandoned);
	/* Once the handler lets go, destroy frees everything (LSan). */
	test_gate_open(&ts);
	cr_assert(done_wait(&held, 1));
	zrpc_client_close(client);
	test_server_stop(&ts);
}

/*
 * A handler on nng's thread that suspends its call late: only once the
 * test lets it go, after stop has begun stopping the contexts.
 */
struct late {
	pthread_mutex_t mutex;
	pthread_cond_t  cond;
	bool            entered;   /* guarded by: mutex */
	bool            go;        /* guarded by: mutex */
	zrpc_call      *call;      /* guarded by: mutex */
	char            log[8192]; /* guarded by: mutex */
	atomic_bool     stopped;
};

static zrpc_status
late_echo(zrpc_call *call, const Ztest__V1__EchoRequest *req,
    Ztest__V1__EchoReply *reply)
{
	struct late    *l = zrpc_call_service_ctx(call);
	struct timespec until;

	(void) req;
	reply->text = "late";
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	pthread_mutex_lock(&l->mutex);
	l->entered = true;
	pthread_cond_broadcast(&l->cond);
	while (!l->go) {
		if (pthread_cond_timedwait(&l->cond, &l->mutex, &until) != 0) {
			break;
		}
	}
	zrpc_call_suspend(call);
	l->call = call;
	pthread_mutex_unlock(&l->mutex);
	return zrpc_status_ok();
}

static void
late_log(void *arg, zrpc_log_level level, const char *message)
{
	struct late *l = arg;
	size_t       len;

	(void) level;
	pthread_mutex_lock(&l->mutex);
	len = strlen(l->log);
	snprintf(l->log + len, sizeof(l->log) - len, "%s\n", message);
	pthread_cond_broadcast(&l->cond);
	pthread_mutex_unlock(&l->mutex);
}

/* Waits (at most 10 s) for NEEDLE in the log, or for the handler. */
static bool
late_wait(struct late *l, const char *needle)
{
	struct timespec until;
	bool            seen;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	pthread_mutex_lock(&l->mutex);
	while (!(seen = needle != NULL ? strstr(l->log, needle) != NULL
	                               : l->entered)) {
		if (pthread_cond_timedwait(&l->cond, &l->mutex, &until) != 0) {
			seen = needle != NULL ? strstr(l->log, needle) != NULL
			                      : l->entered;
			break;
		}
	}
	pthread_mutex_unlock(&l->mutex);
	return seen;
}

static void *
late_stopper(void *arg)
{
	struct stopper *s = arg;
	struct late    *l = (struct late *) (void *) s->owner;

	stopper_main(s);
	atomic_store(&l->stopped, true);
	return NULL;
}

Test(bounds, a_call_suspended_while_contexts_stop_is_waited_for_and_freed)
{
	const struct ztest_v1_echo_handlers handlers = { .echo = late_echo };
	struct late                         late;
	zrpc_server                        *server;
	zrpc_client                        *client;
	Ztest__V1__EchoRequest req = ZTEST__V1__ECHO_REQUEST__INIT;
	struct done            held;
	struct stopper         stopper;
	pthread_t              thread;
	char                   url[256];

	memset(&late, 0, sizeof(late));
	pthread_mutex_init(&late.mutex, NULL);
	pthread_cond_init(&late.cond, NULL);
	cr_assert_eq(zrpc_server_create(&server,
	                 &(zrpc_server_config) { .workers = 1,
	                     .log                         = late_log,
	                     .log_arg                     = &late,
	                     .log_level                   = ZRPC_LOG_DEBUG })
	                 .code,
	    ZRPC_OK);
	cr_assert_eq(
	    ztest_v1_echo_register(server, &handlers, &late).code, ZRPC_OK);
	cr_assert_eq(zrpc_server_listen(
	                 server, test_unique_url("inproc", url, sizeof(url)))
	                 .code,
	    ZRPC_OK);
	cr_assert_eq(zrpc_server_start(server).code, ZRPC_OK);
	cr_assert_eq(zrpc_client_open(&client, url, NULL).code, ZRPC_OK);
	memset(&held, 0, sizeof(held));
	pthread_mutex_init(&held.mutex, NULL);
	pthread_cond_init(&held.cond, NULL);
	cr_assert_eq(
	    ztest_v1_echo_echo_async(client, &req, NULL, done_echo, &held)
	        .code,
	    ZRPC_OK);
	cr_assert(late_wait(&late, NULL), "the handler runs");

	stopper = (struct stopper) {
		.server = server, .grace_ms = 0, .owner = &late
	};
	cr_assert_eq(pthread_create(&thread, NULL, late_stopper, &stopper), 0);
	cr_assert(late_wait(&late, "stop: stopping"), "%s", late.log);
	pthread_mutex_lock(&late.mutex);
	late.go = true;
	pthread_cond_broadcast(&late.cond);
	pthread_mutex_unlock(&late.mutex);
	/* Before, stop went on and returned with the call suspended. */
	cr_assert(late_wait(&late, "suspended late"), "%s", late.log);
	cr_assert_not(atomic_load(&late.stopped), "stop waits for it");
	/* The reply goes to a stopped aio: never sent, and freed (LSan). */
	zrpc_call_resume(late.call, zrpc_status_ok());
	pthread_join(thread, NULL);
	cr_assert_lt(stopper.took_ms, 2500);
	cr_assert(done_wait(&held, 1));
	zrpc_client_close(client);
	zrpc_server_destroy(server);
}
