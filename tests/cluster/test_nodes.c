/*
 * Three zosd nodes and one Redis, as an operator runs them (issue 14):
 * sessions on every node, a prompt computed on one node a cache hit on
 * another, one node killed with SIGKILL under load while the others keep
 * serving, that node restarted with its sessions intact, and Redis stopped
 * and started under load with no caller seeing an error.
 *
 * The load is a few threads calling through one zos client of all three
 * nodes (zos/client): "session" threads Get and Transition a session of
 * node 1 or 2, "any" threads Complete prompts on whichever node the client
 * picks. The test waits for progress by counting the threads' OK calls
 * (bounded waits, never sleeps), and every process it starts it stops.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cluster.h"
#include "redis.h"
#include "waiter.h"
#include "zos/v1/zos.zrpc.h"
#include "zos_client.h"

#define SESSION_THREADS 4 /* two on node 1's sessions, two on node 2's */
#define ANY_THREADS 4
#define THREADS (SESSION_THREADS + ANY_THREADS)
#define PROGRESS 40        /* OK calls the load makes between two steps */
#define WAIT_MS 30000      /* the longest any step may take */
#define MAX_ROUNDS 1000000 /* per thread: a bound, never reached */

static const zrpc_call_opts opts = { .timeout_ms = 5000 };

static void
nodes_fini(void)
{
	proc_kill_left();
	test_redis_stop_left();
}

TestSuite(nodes, .fini = nodes_fini, .timeout = 240);

struct load {
	struct zos_client  *zc;
	struct test_waiter *ok; /* every OK call, all threads */
	atomic_bool        *stop;
	const char         *session; /* a session thread's, else NULL */
	int                 thread;
	int                 rounds;
	/* Written by the thread, read after the join. */
	int  errors;
	int  unavailable;
	int  deadline;
	char first_error[256];
};

static void
load_count(struct load *l, const char *what, zrpc_status st)
{
	if (st.code == ZRPC_OK) {
		test_waiter_add(l->ok);
		return;
	}
	if (st.code == ZRPC_UNAVAILABLE) {
		l->unavailable++;
	}
	if (st.code == ZRPC_DEADLINE_EXCEEDED) {
		l->deadline++;
	}
	if (l->errors++ == 0) {
		snprintf(l->first_error, sizeof(l->first_error),
		    "thread %d %s: code %d: %.160s", l->thread, what,
		    (int) st.code, st.message);
	}
}

static void
load_session_round(struct load *l)
{
	static const Zos__V1__ProofState next[] = {
		[ZOS__V1__PROOF_STATE__AWAITING_SOLUTION] =
		    ZOS__V1__PROOF_STATE__ANALYZING,
		[ZOS__V1__PROOF_STATE__ANALYZING] =
		    ZOS__V1__PROOF_STATE__FEEDBACK_READY,
		[ZOS__V1__PROOF_STATE__FEEDBACK_READY] =
		    ZOS__V1__PROOF_STATE__AWAITING_SOLUTION,
	};
	Zos__V1__GetSessionRequest get = ZOS__V1__GET_SESSION_REQUEST__INIT;
	Zos__V1__TransitionRequest tr  = ZOS__V1__TRANSITION_REQUEST__INIT;
	Zos__V1__ProofSession     *s   = NULL;
	zrpc_status                st;

	get.id = (char *) l->session;
	st     = zos_client_session_get(l->zc, &get, &s, &opts);
	load_count(l, "Session/Get", st);
	if (st.code != ZRPC_OK) {
		return;
	}
	tr.id       = (char *) l->session;
	tr.to_state = next[s->state];
	zos__v1__proof_session__free_unpacked(s, NULL);
	s  = NULL;
	st = zos_client_session_transition(l->zc, &tr, &s, &opts);
	load_count(l, "Session/Transition", st);
	if (s != NULL) {
		zos__v1__proof_session__free_unpacked(s, NULL);
	}
}

static void
load_any_round(struct load *l)
{
	Zos__V1__CompleteRequest   req = ZOS__V1__COMPLETE_REQUEST__INIT;
	Zos__V1__CompleteResponse *rep = NULL;
	char                       prompt[64];
	zrpc_status                st;

	/* A few prompts again and again (hits, local or shared) and fresh
	 * ones (misses: the model, and Redis's lock and store). */
	if (l->rounds % 2 == 0) {
		snprintf(
		    prompt, sizeof(prompt), "nodes again %d", l->rounds % 16);
	} else {
		snprintf(prompt, sizeof(prompt), "nodes fresh %d-%d",
		    l->thread, l->rounds);
	}
	req.task_type = "hint";
	req.prompt    = prompt;
	st = zos_client_assistant_complete(l->zc, &req, &rep, &opts);
	load_count(l, "Assistant/Complete", st);
	if (rep != NULL) {
		zos__v1__complete_response__free_unpacked(rep, NULL);
	}
}

static void *
load_main(void *arg)
{
	struct load *l = arg;

	while (!atomic_load(l->stop) && l->rounds < MAX_ROUNDS) {
		if (l->session != NULL) {
			load_session_round(l);
		} else {
			load_any_round(l);
		}
		l->rounds++;
	}
	return NULL;
}

struct run {
	struct load        load[THREADS];
	pthread_t          tid[THREADS];
	struct test_waiter ok;
	atomic_bool        stop;
};

/* Starts the load: session thread i on SESSIONS[i], the rest "any". */
static void
run_start(struct run *r, struct zos_client *zc, char (*sessions)[64])
{
	memset(r, 0, sizeof(*r));
	test_waiter_init(&r->ok);
	atomic_init(&r->stop, false);
	for (int i = 0; i < THREADS; i++) {
		r->load[i] = (struct load) { .zc = zc,
			.ok                      = &r->ok,
			.stop                    = &r->stop,
			.session = i < SESSION_THREADS ? sessions[i] : NULL,
			.thread  = i };
		cr_assert_eq(
		    pthread_create(&r->tid[i], NULL, load_main, &r->load[i]),
		    0);
	}
}

/* Waits until the load made PROGRESS more OK calls. */
static void
run_progress(struct run *r, const char *when)
{
	int want = test_waiter_done(&r->ok) + PROGRESS;

	cr_assert_geq(test_waiter_wait(&r->ok, want, WAIT_MS), want,
	    "%s: the load made no progress in %d ms", when, WAIT_MS);
}

static void
run_stop(struct run *r)
{
	atomic_store(&r->stop, true);
	for (int i = 0; i < THREADS; i++) {
		cr_assert_eq(pthread_join(r->tid[i], NULL), 0);
	}
	test_waiter_fini(&r->ok);
}

/* Complete PROMPT on CLIENT's one server; whether it was a cache hit. */
static bool
complete_cached(zrpc_client *client, const char *prompt)
{
	Zos__V1__CompleteRequest   req = ZOS__V1__COMPLETE_REQUEST__INIT;
	Zos__V1__CompleteResponse *rep = NULL;
	zrpc_status                st;
	bool                       cached;

	req.task_type = "hint";
	req.prompt    = (char *) prompt;
	st            = zos_v1_assistant_complete(client, &req, &rep, &opts);
	cr_assert_eq(st.code, ZRPC_OK, "Complete %s: %s", prompt, st.message);
	cached = rep->cached;
	zos__v1__complete_response__free_unpacked(rep, NULL);
	return cached;
}

static uint64_t
session_version(struct zos_client *zc, const char *id, zrpc_status *st)
{
	Zos__V1__GetSessionRequest get = ZOS__V1__GET_SESSION_REQUEST__INIT;
	Zos__V1__ProofSession     *s   = NULL;
	uint64_t                   v   = 0;

	get.id = (char *) id;
	*st    = zos_client_session_get(zc, &get, &s, &opts);
	if (s != NULL) {
		v = s->version;
		zos__v1__proof_session__free_unpacked(s, NULL);
	}
	return v;
}

static long
now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

Test(nodes, three_nodes_and_redis_outlive_a_kill_9_and_a_redis_restart)
{
	struct test_redis  redis;
	struct cluster     c;
	struct run         r;
	struct zos_client *zc;
	zrpc_client       *one[CLUSTER_NODES_MAX];
	char               sessions[SESSION_THREADS][64];
	char               third[2][64]; /* node 3's */
	uint64_t           third_version[2];
	const char        *urls[CLUSTER_NODES_MAX];
	zrpc_status        st;

	cr_assert_eq(test_redis_start(&redis, NULL), 0);
	const char *extra[] = { "--cache-url", redis.url, NULL };
	cluster_start(&c, 3, extra);
	for (size_t i = 0; i < 3; i++) {
		one[i]  = cluster_client_of(c.url[i]);
		urls[i] = c.url[i];
	}
	cr_assert_eq(zos_client_open(&zc, urls, 3,
	                 &(zrpc_client_opts) { .connect_timeout_ms = 1000 })
	                 .code,
	    ZRPC_OK);

	/* Sessions on every node, each id naming its node. */
	for (int i = 0; i < SESSION_THREADS; i++) {
		cluster_start_session(one[i / 2], "nodes", sessions[i]);
		cr_assert(
		    strncmp(sessions[i], i / 2 == 0 ? "1-" : "2-", 2) == 0,
		    "%s", sessions[i]);
	}
	for (int i = 0; i < 2; i++) {
		cluster_start_session(one[2], "nodes", third[i]);
		cr_assert(strncmp(third[i], "3-", 2) == 0, "%s", third[i]);
		third_version[i] = session_version(zc, third[i], &st);
		cr_assert_eq(st.code, ZRPC_OK, "%s", st.message);
	}

	/* A prompt computed on node 1 is a hit on node 2 and node 3. */
	cr_assert_not(complete_cached(one[0], "nodes cross-node prompt"));
	cr_assert(complete_cached(one[1], "nodes cross-node prompt"));
	cr_assert(complete_cached(one[2], "nodes cross-node prompt"));

	/* Node 3 killed with -9 under load: the others keep serving. */
	run_start(&r, zc, sessions);
	run_progress(&r, "before the kill");
	cluster_kill9_node(&c, 2);
	run_progress(&r, "after the kill");
	run_progress(&r, "well after the kill");
	/* Node 3's sessions are UNAVAILABLE, never another node's copy. */
	session_version(zc, third[0], &st);
	cr_assert_eq(st.code, ZRPC_UNAVAILABLE, "%s", st.message);
	run_stop(&r);
	for (int i = 0; i < SESSION_THREADS; i++) {
		cr_assert_eq(r.load[i].errors, 0, "%s", r.load[i].first_error);
		cr_assert_gt(r.load[i].rounds, 0);
	}
	for (int i = SESSION_THREADS; i < THREADS; i++) {
		/* Only a Complete in flight to node 3 as it died may fail:
		 * UNAVAILABLE (it is never run twice), or DEADLINE_EXCEEDED
		 * for one that waited on a prompt node 3 was computing (its
		 * Redis lock outlives the waiter's deadline). */
		cr_assert_eq(r.load[i].errors,
		    r.load[i].unavailable + r.load[i].deadline, "%s",
		    r.load[i].first_error);
	}

	/* Restarted, node 3 has its sessions as they were. */
	cluster_start_node(&c, 2, true, NULL);
	long deadline = now_ms() + WAIT_MS;
	for (int i = 0; i < 2; i++) {
		uint64_t v;

		for (;;) {
			v = session_version(zc, third[i], &st);
			if (st.code == ZRPC_OK || now_ms() > deadline) {
				break;
			}
			cr_assert_eq(
			    st.code, ZRPC_UNAVAILABLE, "%s", st.message);
		}
		cr_assert_eq(st.code, ZRPC_OK, "%s after the restart: %s",
		    third[i], st.message);
		cr_assert_eq(v, third_version[i]);
	}

	/* Redis stopped and started under load: no caller sees an error. */
	run_start(&r, zc, sessions);
	run_progress(&r, "before Redis stops");
	cr_assert_eq(test_redis_kill(&redis), 0);
	run_progress(&r, "while Redis is down");
	run_progress(&r, "while Redis is still down");
	cr_assert_eq(test_redis_restart(&redis), 0);
	run_progress(&r, "after Redis is back");
	run_stop(&r);
	for (int i = 0; i < THREADS; i++) {
		cr_assert_eq(r.load[i].errors, 0, "%s", r.load[i].first_error);
	}
	/* And the nodes share again once they have reconnected. */
	bool shared = false;
	deadline    = now_ms() + WAIT_MS;
	for (int k = 0; !shared && now_ms() < deadline && k < 100000; k++) {
		char prompt[64];

		snprintf(prompt, sizeof(prompt), "nodes after redis %d", k);
		complete_cached(one[0], prompt);
		shared = complete_cached(one[1], prompt);
	}
	cr_assert(shared, "node 2 never hit what node 1 computed again");

	zos_client_close(zc);
	for (size_t i = 0; i < 3; i++) {
		zrpc_client_close(one[i]);
	}
	cluster_stop(&c);
	test_redis_stop(&redis);
}
