/*
 * A zrpc server for tests: the ztest.v1.Echo service on a fresh address,
 * with a gate that the Wait method holds on until the test opens it, and
 * counters of how often each handler ran. Echo and Fail answer request
 * metadata x-ztest-echo with reply metadata x-ztest-echoed (same value).
 */
#ifndef ZOS_TEST_SERVER_H
#define ZOS_TEST_SERVER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "zrpc/client.h"
#include "zrpc/server.h"
#include "ztest/v1/echo.zrpc.h"

#define TEST_DEFERRED_MAX 256

struct test_server {
	zrpc_server    *server;
	char            url[256];
	pthread_mutex_t mutex;
	pthread_cond_t  changed;
	bool            gate_open; /* guarded by: mutex */
	unsigned        waiting;   /* guarded by: mutex: Wait calls inside */
	char            log[8192]; /* guarded by: mutex: runtime log lines */
	/* guarded by: mutex: when the last BlockingEcho call that had a
	 * deadline expires, in test_now_ms() time; 0 = none yet */
	double      blocking_deadline_ms;
	atomic_uint echo_runs;
	atomic_uint blocking_runs;
	atomic_uint wait_runs;
	/* guarded by: mutex: Deferred calls waiting for test_deferred_resume
	 */
	zrpc_call *deferred[TEST_DEFERRED_MAX];
	unsigned   n_deferred;
	/* The thread each Continued handler ran on, by seq (callers use
	 * distinct seqs; the worker reads it after the hand-off). */
	pthread_t continued_by[TEST_DEFERRED_MAX];
};

/*
 * A URL no other test uses: "inproc", "ipc" (a socket under /tmp) or "tcp"
 * (127.0.0.1, port 0: read the bound port back from the server).
 */
const char *test_unique_url(const char *transport, char *buf, size_t len);

/*
 * Starts TS serving Echo on a unique TRANSPORT address with CONFIG (NULL
 * for defaults). Aborts the test (cr_assert) on failure.
 */
void test_server_start(struct test_server *ts, const char *transport,
    const zrpc_server_config *config);

/* The same, with EXTRA (copied; NULL = none) appended to the server's
 * interceptors. */
void test_server_start_with(struct test_server *ts, const char *transport,
    const zrpc_server_config *config, const struct zrpc_interceptor *extra);

/* Opens the gate, stops and frees the server. */
void test_server_stop(struct test_server *ts);

/* Lets every Wait call (present and future) through. */
void test_gate_open(struct test_server *ts);

/* Waits (at most 10 s) until N Wait calls are inside; false on time-out. */
bool test_gate_wait_entered(struct test_server *ts, unsigned n);

/*
 * Waits (at most 10 s) until the server has logged a line containing
 * NEEDLE; false on time-out. The runtime's log is captured at debug level.
 */
bool test_log_wait(struct test_server *ts, const char *needle);

/*
 * Waits (at most 10 s) until a BlockingEcho call with a deadline has
 * arrived, then until its deadline has passed on the server's clock.
 * False when no such call arrived.
 */
bool test_wait_blocking_deadline_passed(struct test_server *ts);

/*
 * Waits (at most 10 s) until N Deferred calls wait to be resumed; false on
 * time-out.
 */
bool test_deferred_wait(struct test_server *ts, unsigned n);

/* Resumes every waiting Deferred call with CODE; returns how many. */
unsigned test_deferred_resume(struct test_server *ts, zrpc_code code);

/* Opens a client on TS's URL; aborts the test on failure. */
zrpc_client *test_client_open(const struct test_server *ts);

/* Monotonic clock in milliseconds. */
double test_now_ms(void);

#endif /* ZOS_TEST_SERVER_H */
