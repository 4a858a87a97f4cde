/*
 * Test server; see testserver.h.
 */
#include "testserver.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_uint test_url_counter;

const char *
test_unique_url(const char *transport, char *buf, size_t len)
{
	unsigned n = atomic_fetch_add(&test_url_counter, 1);

	if (strcmp(transport, "inproc") == 0) {
		snprintf(buf, len, "inproc://zt-%d-%u", (int) getpid(), n);
	} else if (strcmp(transport, "ipc") == 0) {
		snprintf(
		    buf, len, "ipc:///tmp/zt-%d-%u.sock", (int) getpid(), n);
	} else {
		snprintf(buf, len, "tcp://127.0.0.1:0");
	}
	return buf;
}

double
test_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec * 1000.0 + (double) ts.tv_nsec / 1e6;
}

static void
test_fill_reply(zrpc_call *call, const Ztest__V1__EchoRequest *req,
    Ztest__V1__EchoReply *reply)
{
	const char *auth = zrpc_call_metadata(call, "authorization");

	reply->text          = req->text;
	reply->seq           = req->seq;
	reply->thread        = req->thread;
	reply->blob_len      = (uint32_t) req->blob.len;
	reply->request_id    = (char *) zrpc_call_request_id(call);
	reply->authorization = (char *) (auth != NULL ? auth : "");
	reply->remaining_ms  = zrpc_call_remaining_ms(call);
}

/* Request metadata x-ztest-echo comes back as reply metadata
 * x-ztest-echoed (zrpc_call_set_reply_metadata). */
static zrpc_status
test_echo_metadata(zrpc_call *call)
{
	const char *value = zrpc_call_metadata(call, "x-ztest-echo");

	if (value == NULL) {
		return zrpc_status_ok();
	}
	return zrpc_call_set_reply_metadata(call, "x-ztest-echoed", value);
}

static zrpc_status
test_echo(zrpc_call *call, const Ztest__V1__EchoRequest *req,
    Ztest__V1__EchoReply *reply)
{
	struct test_server *ts = zrpc_call_service_ctx(call);

	atomic_fetch_add(&ts->echo_runs, 1);
	test_fill_reply(call, req, reply);
	return test_echo_metadata(call);
}

static zrpc_status
test_blocking_echo(zrpc_call *call, const Ztest__V1__EchoRequest *req,
    Ztest__V1__EchoReply *reply)
{
	struct test_server *ts = zrpc_call_service_ctx(call);

	atomic_fetch_add(&ts->blocking_runs, 1);
	test_fill_reply(call, req, reply);
	return zrpc_status_ok();
}

static zrpc_status
test_wait(zrpc_call *call, const Ztest__V1__EchoRequest *req,
    Ztest__V1__EchoReply *reply)
{
	struct test_server *ts = zrpc_call_service_ctx(call);
	struct timespec     until;

	atomic_fetch_add(&ts->wait_runs, 1);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10; /* a test that forgets its gate still ends */
	pthread_mutex_lock(&ts->mutex);
	ts->waiting++;
	pthread_cond_broadcast(&ts->changed);
	while (!ts->gate_open) {
		if (pthread_cond_timedwait(&ts->changed, &ts->mutex, &until) !=
		    0) {
			break;
		}
	}
	ts->waiting--;
	pthread_mutex_unlock(&ts->mutex);
	test_fill_reply(call, req, reply);
	return zrpc_status_ok();
}

static zrpc_status
test_fail(zrpc_call *call, const Ztest__V1__EchoRequest *req,
    Ztest__V1__EchoReply *reply)
{
	zrpc_status status = test_echo_metadata(call);

	(void) reply;
	if (!zrpc_status_is_ok(&status)) {
		return status;
	}
	return zrpc_status_make((zrpc_code) req->code, "failed as asked: %s",
	    req->text != NULL ? req->text : "");
}

static zrpc_status
test_deferred(zrpc_call *call, const Ztest__V1__EchoRequest *req,
    Ztest__V1__EchoReply *reply)
{
	struct test_server *ts = zrpc_call_service_ctx(call);

	test_fill_reply(call, req, reply);
	zrpc_call_suspend(call);
	if (req->seq % 2 == 1) {
		zrpc_call_resume(call, zrpc_status_ok());
		/* The handler's own status is ignored once suspended. */
		return zrpc_status_make(ZRPC_INTERNAL, "must not be seen");
	}
	pthread_mutex_lock(&ts->mutex);
	if (ts->n_deferred == TEST_DEFERRED_MAX) {
		pthread_mutex_unlock(&ts->mutex);
		zrpc_call_resume(call,
		    zrpc_status_make(ZRPC_RESOURCE_EXHAUSTED, "too many"));
		return zrpc_status_ok();
	}
	ts->deferred[ts->n_deferred++] = call;
	pthread_cond_broadcast(&ts->changed);
	pthread_mutex_unlock(&ts->mutex);
	return zrpc_status_ok();
}

static zrpc_status
test_continued_next(
    zrpc_call *call, const ProtobufCMessage *request, ProtobufCMessage *reply)
{
	struct test_server           *ts  = zrpc_call_service_ctx(call);
	const Ztest__V1__EchoRequest *req = (const void *) request;
	Ztest__V1__EchoReply         *out = (void *) reply;
	pthread_t handler = ts->continued_by[req->seq % TEST_DEFERRED_MAX];

	test_fill_reply(call, req, out);
	out->text = pthread_equal(handler, pthread_self())
	    ? "on the handler's thread"
	    : "on a worker";
	if (req->seq % 2 == 1) {
		zrpc_call_suspend(call);
		zrpc_call_resume(call, zrpc_status_ok());
	}
	return zrpc_status_ok();
}

static zrpc_status
test_continued(zrpc_call *call, const Ztest__V1__EchoRequest *req,
    Ztest__V1__EchoReply *reply)
{
	struct test_server *ts = zrpc_call_service_ctx(call);

	(void) reply;
	ts->continued_by[req->seq % TEST_DEFERRED_MAX] = pthread_self();
	zrpc_call_continue_blocking(call, test_continued_next);
	return zrpc_status_make(ZRPC_INTERNAL, "must not be seen");
}

bool
test_deferred_wait(struct test_server *ts, unsigned n)
{
	struct timespec until;
	bool            ok = true;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	pthread_mutex_lock(&ts->mutex);
	while (ok && ts->n_deferred < n) {
		ok = pthread_cond_timedwait(
		         &ts->changed, &ts->mutex, &until) == 0;
	}
	ok = ts->n_deferred >= n;
	pthread_mutex_unlock(&ts->mutex);
	return ok;
}

unsigned
test_deferred_resume(struct test_server *ts, zrpc_code code)
{
	zrpc_call *calls[TEST_DEFERRED_MAX];
	unsigned   n;

	pthread_mutex_lock(&ts->mutex);
	n = ts->n_deferred;
	memcpy(calls, ts->deferred, n * sizeof(calls[0]));
	ts->n_deferred = 0;
	pthread_mutex_unlock(&ts->mutex);
	for (unsigned i = 0; i < n; i++) {
		zrpc_call_resume(calls[i],
		    code == ZRPC_OK ? zrpc_status_ok()
		                    : zrpc_status_make(code, "resumed with %s",
		                          zrpc_status_name(code)));
	}
	return n;
}

/* Keeps the runtime's log lines (the last 8 KiB) for test_log_wait. */
static void
test_log_capture(void *arg, zrpc_log_level level, const char *message)
{
	struct test_server *ts = arg;
	size_t              used, len = strlen(message);

	(void) level;
	pthread_mutex_lock(&ts->mutex);
	used = strlen(ts->log);
	if (used + len + 2 > sizeof(ts->log)) {
		used = 0; /* start over; tests wait for recent lines */
	}
	memcpy(ts->log + used, message, len);
	ts->log[used + len]     = '\n';
	ts->log[used + len + 1] = '\0';
	pthread_cond_broadcast(&ts->changed);
	pthread_mutex_unlock(&ts->mutex);
}

bool
test_log_wait(struct test_server *ts, const char *needle)
{
	struct timespec until;
	bool            found;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	pthread_mutex_lock(&ts->mutex);
	while (!(found = strstr(ts->log, needle) != NULL)) {
		if (pthread_cond_timedwait(&ts->changed, &ts->mutex, &until) !=
		    0) {
			found = strstr(ts->log, needle) != NULL;
			break;
		}
	}
	pthread_mutex_unlock(&ts->mutex);
	return found;
}

/* Interceptor: notes when an arriving BlockingEcho call will expire. */
static zrpc_status
test_note_deadline(void *arg, zrpc_call *call)
{
	struct test_server *ts   = arg;
	int64_t             left = zrpc_call_remaining_ms(call);

	if (left >= 0 &&
	    strcmp(zrpc_call_method(call), "/ztest.v1.Echo/BlockingEcho") ==
	        0) {
		pthread_mutex_lock(&ts->mutex);
		ts->blocking_deadline_ms = test_now_ms() + (double) left + 1.0;
		pthread_cond_broadcast(&ts->changed);
		pthread_mutex_unlock(&ts->mutex);
	}
	return zrpc_status_ok();
}

bool
test_wait_blocking_deadline_passed(struct test_server *ts)
{
	struct timespec until;
	double          deadline = 0;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	pthread_mutex_lock(&ts->mutex);
	while ((deadline = ts->blocking_deadline_ms) == 0) {
		if (pthread_cond_timedwait(&ts->changed, &ts->mutex, &until) !=
		    0) {
			break;
		}
	}
	pthread_mutex_unlock(&ts->mutex);
	if (deadline == 0) {
		return false;
	}
	/* Waiting for a known instant on the same clock is the behaviour
	 * under test (time passing), not a guess at another thread. */
	struct timespec at = { .tv_sec = (time_t) (deadline / 1000.0),
		.tv_nsec               = (long) ((deadline -
                                       (double) (time_t) (deadline / 1000.0) *
                                           1000.0) *
                    1e6) };
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL) !=
	    0) { }
	return true;
}

void
test_server_start(struct test_server *ts, const char *transport,
    const zrpc_server_config *given)
{
	test_server_start_with(ts, transport, given, NULL);
}

void
test_server_start_with(struct test_server *ts, const char *transport,
    const zrpc_server_config *given, const struct zrpc_interceptor *extra)
{
	zrpc_server_config                  config   = { 0 };
	const struct ztest_v1_echo_handlers handlers = {
		.echo                   = test_echo,
		.blocking_echo          = test_blocking_echo,
		.blocking_echo_blocking = true,
		.wait                   = test_wait,
		.wait_blocking          = true,
		.fail                   = test_fail,
		.deferred               = test_deferred,
		.continued              = test_continued,
	};
	zrpc_status status;
	char        url[256];

	memset(ts, 0, sizeof(*ts));
	pthread_mutex_init(&ts->mutex, NULL);
	pthread_cond_init(&ts->changed, NULL);
	if (given != NULL) {
		config = *given;
	}
	config.log       = test_log_capture;
	config.log_arg   = ts;
	config.log_level = ZRPC_LOG_DEBUG;

	status = zrpc_server_create(&ts->server, &config);
	cr_assert_eq(status.code, ZRPC_OK, "create: %s", status.message);
	status = ztest_v1_echo_register(ts->server, &handlers, ts);
	cr_assert_eq(status.code, ZRPC_OK, "register: %s", status.message);
	status = zrpc_server_add_interceptor(ts->server,
	    &(struct zrpc_interceptor) { .name = "note-deadline",
	        .before                        = test_note_deadline,
	        .arg                           = ts });
	cr_assert_eq(status.code, ZRPC_OK, "register: %s", status.message);
	if (extra != NULL) {
		status = zrpc_server_add_interceptor(ts->server, extra);
		cr_assert_eq(
		    status.code, ZRPC_OK, "interceptor: %s", status.message);
	}
	status = zrpc_server_listen(
	    ts->server, test_unique_url(transport, url, sizeof(url)));
	cr_assert_eq(
	    status.code, ZRPC_OK, "listen %s: %s", url, status.message);
	snprintf(ts->url, sizeof(ts->url), "%s",
	    zrpc_server_listener_url(ts->server, 0));
	status = zrpc_server_start(ts->server);
	cr_assert_eq(status.code, ZRPC_OK, "start: %s", status.message);
}

void
test_server_stop(struct test_server *ts)
{
	test_gate_open(ts);
	test_deferred_resume(ts, ZRPC_UNAVAILABLE);
	zrpc_server_destroy(ts->server);
	ts->server = NULL;
	if (strncmp(ts->url, "ipc://", 6) == 0) {
		unlink(ts->url + 6);
	}
	pthread_mutex_destroy(&ts->mutex);
	pthread_cond_destroy(&ts->changed);
}

void
test_gate_open(struct test_server *ts)
{
	pthread_mutex_lock(&ts->mutex);
	ts->gate_open = true;
	pthread_cond_broadcast(&ts->changed);
	pthread_mutex_unlock(&ts->mutex);
}

bool
test_gate_wait_entered(struct test_server *ts, unsigned n)
{
	struct timespec until;
	bool            ok = true;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	pthread_mutex_lock(&ts->mutex);
	while (ts->waiting < n) {
		if (pthread_cond_timedwait(&ts->changed, &ts->mutex, &until) !=
		    0) {
			ok = ts->waiting >= n;
			break;
		}
	}
	pthread_mutex_unlock(&ts->mutex);
	return ok;
}

zrpc_client *
test_client_open(const struct test_server *ts)
{
	zrpc_client *client = NULL;
	zrpc_status  status = zrpc_client_open(&client, ts->url, NULL);

	cr_assert_eq(status.code, ZRPC_OK, "client open %s: %s", ts->url,
	    status.message);
	return client;
}
