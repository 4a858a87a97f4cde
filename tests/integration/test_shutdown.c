/*
 * zosd's signals as a program sees them: SIGHUP reloads the routing file,
 * the shutdown watchdog ends a drain that overruns, and SIGTERM under
 * durable load, cycle after cycle, always ends zosd within grace + 2 s
 * without losing an acknowledged session.
 *
 * Every test synchronises on log lines or call results, never on sleeps.
 * ZOS_SHUTDOWN_CYCLES sets the number of SIGTERM cycles (default 100).
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "proc.h"
#include "tmpdir.h"
#include "zos/v1/zos.zrpc.h"
#include "zrpc/client.h"

TestSuite(shutdown, .fini = proc_kill_left);

static long
now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	cr_assert_not_null(f, "%s", path);
	cr_assert(fputs(text, f) >= 0);
	cr_assert_eq(fclose(f), 0);
}

/* The primary model Routing/Route gives TASK. */
static void
route_primary(zrpc_client *client, const char *task, char *out, size_t len)
{
	Zos__V1__RouteRequest   req   = ZOS__V1__ROUTE_REQUEST__INIT;
	Zos__V1__RouteResponse *reply = NULL;
	zrpc_status             st;

	req.task_type = (char *) task;
	st            = zos_v1_routing_route(
	               client, &req, &reply, &(zrpc_call_opts) { .timeout_ms = 5000 });
	cr_assert_eq(st.code, ZRPC_OK, "%s", st.message);
	snprintf(out, len, "%s", reply->primary_model);
	zos__v1__route_response__free_unpacked(reply, NULL);
}

/* RecordOutcome for MODEL; returns the code. */
static zrpc_code
record(zrpc_client *client, const char *model)
{
	Zos__V1__RecordOutcomeRequest req =
	    ZOS__V1__RECORD_OUTCOME_REQUEST__INIT;
	Zos__V1__RecordOutcomeResponse *reply = NULL;
	zrpc_status                     st;

	req.model      = (char *) model;
	req.success    = true;
	req.latency_ms = 3;
	st             = zos_v1_routing_record_outcome(
	                client, &req, &reply, &(zrpc_call_opts) { .timeout_ms = 5000 });
	if (reply != NULL) {
		zos__v1__record_outcome_response__free_unpacked(reply, NULL);
	}
	return st.code;
}

Test(shutdown, sighup_reloads_the_routing_file_and_keeps_it_when_bad)
{
	struct proc  p;
	zrpc_client *client;
	char         dir[64], routes[128], url[256], model[300];

	snprintf(dir, sizeof(dir), "/tmp/zos-hup-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(routes, sizeof(routes), "%s/routes", dir);
	write_file(routes, "hint builtin:first-a builtin:first-b\n");
	char *argv[] = { (char *) env_path("ZOSD"), "--in-memory", "--listen",
		"tcp://127.0.0.1:0", "--routing-file", routes, "--log-format",
		"text", "--metrics-listen", "off", NULL };
	proc_start(&p, argv);
	cr_assert(proc_wait_for(&p, "listening on"), "%s", p.text);
	proc_listen_url(&p, url, sizeof(url));
	cr_assert_eq(zrpc_client_open(&client, url, NULL).code, ZRPC_OK);
	route_primary(client, "hint", model, sizeof(model));
	cr_assert_str_eq(model, "builtin:first-a");
	cr_assert_eq(record(client, "builtin:first-a"), ZRPC_OK);

	/* A new file: 5 routes (4 built in, one added). */
	write_file(routes,
	    "hint builtin:second-a builtin:second-b\nsummary builtin:s-a "
	    "builtin:s-b\n");
	kill(p.pid, SIGHUP);
	cr_assert(proc_wait_for(&p, "reloaded: 5 routes"), "%s", p.text);
	route_primary(client, "hint", model, sizeof(model));
	cr_assert_str_eq(model, "builtin:second-a");
	route_primary(client, "summary", model, sizeof(model));
	cr_assert_str_eq(model, "builtin:s-a");
	cr_assert_eq(record(client, "builtin:first-a"), ZRPC_NOT_FOUND);
	cr_assert_eq(record(client, "builtin:second-b"), ZRPC_OK);

	/* A bad one: the routes in use stay, and the log says why. */
	write_file(routes, "hint builtin:only-two\n");
	kill(p.pid, SIGHUP);
	cr_assert(
	    proc_wait_for(&p, "keeping the routes in use"), "%s", p.text);
	cr_assert(strstr(p.text, ":1: expected") != NULL, "%s", p.text);
	route_primary(client, "hint", model, sizeof(model));
	cr_assert_str_eq(model, "builtin:second-a");

	/* And a missing one likewise; then a good one works again. */
	unlink(routes);
	kill(p.pid, SIGHUP);
	cr_assert(proc_wait_for(&p, "cannot open"), "%s", p.text);
	route_primary(client, "summary", model, sizeof(model));
	cr_assert_str_eq(model, "builtin:s-a");
	write_file(routes,
	    "hint builtin:third-a builtin:third-b\nx builtin:x1 builtin:x2\ny "
	    "builtin:y1 builtin:y2\n");
	kill(p.pid, SIGHUP);
	cr_assert(proc_wait_for(&p, "reloaded: 6 routes"), "%s", p.text);
	route_primary(client, "hint", model, sizeof(model));
	cr_assert_str_eq(model, "builtin:third-a");

	zrpc_client_close(client);
	kill(p.pid, SIGTERM);
	cr_assert_eq(proc_wait(&p), 0, "%s", p.text);
	test_tmpdir_remove(dir);
}

/*
 * The watchdog: a Complete held for 30 s by the echo model's delay keeps
 * a worker busy past the 300 ms grace; the server's teardown waits for
 * it, so only the watchdog ends the process, at grace + 2 s, status 3.
 */
Test(shutdown, the_watchdog_ends_a_drain_that_overruns_the_grace)
{
	struct proc                  z, ctl;
	zrpc_client                 *client;
	Zos__V1__StartSessionRequest start =
	    ZOS__V1__START_SESSION_REQUEST__INIT;
	Zos__V1__ProofSession *s = NULL;
	char                   dir[64], url[256], id[64];
	zrpc_status            st;
	long                   deadline, sent, took;
	int                    status;

	snprintf(dir, sizeof(dir), "/tmp/zos-watchdog-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	char *argv[] = { (char *) env_path("ZOSD"), "--data-dir", dir,
		"--listen", "tcp://127.0.0.1:0", "--log-level", "warn",
		"--log-format", "text", "--shutdown-grace-ms", "300",
		"--echo-delay-ms", "30000", "--metrics-listen", "off", NULL };
	proc_start(&z, argv);
	cr_assert(proc_wait_for(&z, "listening on"), "%s", z.text);
	proc_listen_url(&z, url, sizeof(url));
	cr_assert_eq(zrpc_client_open(&client, url, NULL).code, ZRPC_OK);
	start.problem_id = "p1";
	st               = zos_v1_session_start(
	                  client, &start, &s, &(zrpc_call_opts) { .timeout_ms = 5000 });
	cr_assert_eq(st.code, ZRPC_OK, "%s", st.message);
	snprintf(id, sizeof(id), "%s", s->id);
	zos__v1__proof_session__free_unpacked(s, NULL);

	char *complete[] = { (char *) env_path("ZOSCTL"), "--url", url,
		"--timeout-ms", "30000", "complete", "--session", id, "hi",
		NULL };
	proc_start(&ctl, complete);
	deadline = now_ms() + 10000;
	for (;;) {
		Zos__V1__GetSessionRequest get =
		    ZOS__V1__GET_SESSION_REQUEST__INIT;
		bool analyzing;

		get.id = id;
		st     = zos_v1_session_get(client, &get, &s,
		        &(zrpc_call_opts) { .timeout_ms = 5000 });
		cr_assert_eq(st.code, ZRPC_OK, "%s", st.message);
		analyzing = s->state == ZOS__V1__PROOF_STATE__ANALYZING;
		zos__v1__proof_session__free_unpacked(s, NULL);
		if (analyzing) {
			break;
		}
		cr_assert_lt(now_ms(), deadline, "the call never started");
	}
	zrpc_client_close(client);

	sent = now_ms();
	kill(z.pid, SIGTERM);
	status = proc_wait(&z);
	took   = now_ms() - sent;
	cr_assert(
	    status == 3 || status == 0, "status %d:\n%s", status, z.text);
	cr_assert_lt(
	    took, 300 + 2000 + 1000, "took %ld ms:\n%s", took, z.text);
	if (status == 3) {
		cr_assert(
		    strstr(z.text, "shutdown watchdog") != NULL, "%s", z.text);
		cr_assert_geq(took, 2000, "not before grace + 2 s");
	}
	proc_wait(&ctl);

	/* The session survived, acknowledged before the signal. */
	proc_start(&z, argv);
	cr_assert(proc_wait_for(&z, "listening on"), "%s", z.text);
	proc_listen_url(&z, url, sizeof(url));
	cr_assert_eq(zrpc_client_open(&client, url, NULL).code, ZRPC_OK);
	Zos__V1__GetSessionRequest get = ZOS__V1__GET_SESSION_REQUEST__INIT;
	get.id                         = id;
	st                             = zos_v1_session_get(
	                                client, &get, &s, &(zrpc_call_opts) { .timeout_ms = 5000 });
	cr_assert_eq(st.code, ZRPC_OK, "%s", st.message);
	zos__v1__proof_session__free_unpacked(s, NULL);
	zrpc_client_close(client);
	kill(z.pid, SIGTERM);
	proc_wait(&z);
	test_tmpdir_remove(dir);
}

/* SIGTERM under load, many times over. */
#define CYCLE_WRITERS 8
#define CYCLE_IDS_MAX 4096 /* acknowledged ids one writer keeps */
#define CYCLE_GRACE_MS 300
/* The watchdog ends a drain at grace + 2 s; the bound allows a loaded
 * machine (sanitizers, two cores) this long to end and reap the process. */
#define CYCLE_EXIT_BOUND_MS (CYCLE_GRACE_MS + 2000 + 1000)
#define CYCLE_MIN_ACKS 24 /* acknowledged Starts before the signal */

/* The acknowledged Starts of a cycle, counted by every writer. */
struct cycle_acks {
	pthread_mutex_t mu;
	pthread_cond_t  cv;
	int             n; /* guarded by: mu */
	/* Set just before SIGTERM: from then on a failed call means the
	 * server is going; before, it is a slow machine, and the writer
	 * tries again. */
	atomic_bool signalled;
};

struct cycle_writer {
	const char        *url;
	atomic_bool        stop;
	struct cycle_acks *acks;
	/* Acknowledged ids: the writer's, read by the test after join. */
	char (*ids)[40];
	size_t n_ids;
	int    failures; /* calls that failed (the server going away) */
};

static void *
cycle_writer_main(void *arg)
{
	struct cycle_writer         *w = arg;
	zrpc_client                 *client;
	Zos__V1__StartSessionRequest req =
	    ZOS__V1__START_SESSION_REQUEST__INIT;
	/* Short: a call that reaches a server that is already gone waits
	 * out its deadline. */
	const zrpc_call_opts opts = { .timeout_ms = 300 };

	if (zrpc_client_open(&client, w->url, NULL).code != ZRPC_OK) {
		return NULL;
	}
	req.problem_id = "cycle";
	while (!atomic_load(&w->stop) && w->n_ids < CYCLE_IDS_MAX) {
		Zos__V1__ProofSession *s = NULL;
		zrpc_status st = zos_v1_session_start(client, &req, &s, &opts);

		if (st.code != ZRPC_OK) {
			w->failures++;
			if (st.code != ZRPC_RESOURCE_EXHAUSTED &&
			    atomic_load(&w->acks->signalled)) {
				break; /* the server is going */
			}
			continue;
		}
		snprintf(w->ids[w->n_ids++], 40, "%s", s->id);
		zos__v1__proof_session__free_unpacked(s, NULL);
		pthread_mutex_lock(&w->acks->mu);
		w->acks->n++;
		pthread_cond_signal(&w->acks->cv);
		pthread_mutex_unlock(&w->acks->mu);
	}
	zrpc_client_close(client);
	return NULL;
}

static void
cycle_start_zosd(struct proc *p, const char *dir)
{
	char grace[16];

	snprintf(grace, sizeof(grace), "%d", CYCLE_GRACE_MS);
	char *argv[] = { (char *) env_path("ZOSD"), "--data-dir", (char *) dir,
		"--listen", "tcp://127.0.0.1:0", "--log-level", "warn",
		"--log-format", "text", "--shutdown-grace-ms", grace,
		"--max-sessions", "1000000", "--metrics-listen", "off", NULL };
	proc_start(p, argv);
	cr_assert(proc_wait_for(p, "listening on"), "%s", p->text);
}

/* Every id in IDS (N of them) is a session of the server at URL. */
static void
cycle_check(const char *url, char (*ids)[40], size_t n, int cycle)
{
	zrpc_client *client;

	cr_assert_eq(zrpc_client_open(&client, url, NULL).code, ZRPC_OK);
	for (size_t i = 0; i < n; i++) {
		Zos__V1__GetSessionRequest req =
		    ZOS__V1__GET_SESSION_REQUEST__INIT;
		Zos__V1__ProofSession *s = NULL;
		zrpc_status            st;

		req.id = ids[i];
		st     = zos_v1_session_get(client, &req, &s,
		        &(zrpc_call_opts) { .timeout_ms = 5000 });
		cr_assert_eq(st.code, ZRPC_OK,
		    "cycle %d: acknowledged session %s lost: %s", cycle,
		    ids[i], st.message);
		zos__v1__proof_session__free_unpacked(s, NULL);
	}
	zrpc_client_close(client);
}

Test(shutdown, sigterm_under_load_always_exits_in_time_and_loses_nothing,
    .timeout = 280)
{
	const char *env    = getenv("ZOS_SHUTDOWN_CYCLES");
	int         cycles = env != NULL ? atoi(env) : 100;
	char        dir[64], url[256];
	char(*acked)[40];
	size_t      n_acked = 0, total_acked = 0;
	long        max_exit = 0, sum_exit = 0, started = now_ms();
	long        join_ms = 0, start_ms = 0, t0;
	int         watchdog_exits = 0;
	struct proc z;

	snprintf(dir, sizeof(dir), "/tmp/zos-cycles-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	acked = calloc((size_t) CYCLE_WRITERS * CYCLE_IDS_MAX, sizeof(*acked));
	cr_assert_not_null(acked);
	for (int c = 0; c < cycles; c++) {
		struct cycle_writer writers[CYCLE_WRITERS];
		pthread_t           tid[CYCLE_WRITERS];
		struct cycle_acks   acks = { .mu = PTHREAD_MUTEX_INITIALIZER,
			  .cv                    = PTHREAD_COND_INITIALIZER };
		long                sent, took;
		struct timespec     deadline;
		int                 status;

		atomic_init(&acks.signalled, false);

		t0 = now_ms();
		cycle_start_zosd(&z, dir);
		proc_listen_url(&z, url, sizeof(url));
		/* What the last cycle acknowledged survived its SIGTERM. */
		cycle_check(url, acked, n_acked, c);
		start_ms += now_ms() - t0;
		n_acked = 0;
		for (int i = 0; i < CYCLE_WRITERS; i++) {
			writers[i] = (struct cycle_writer) { .url = url,
				.acks                             = &acks,
				.ids = &acked[(size_t) i * CYCLE_IDS_MAX] };
			atomic_init(&writers[i].stop, false);
			cr_assert_eq(pthread_create(&tid[i], NULL,
			                 cycle_writer_main, &writers[i]),
			    0);
		}
		/* Mid-load: once some Starts are acknowledged, with more in
		 * flight. */
		clock_gettime(CLOCK_REALTIME, &deadline);
		deadline.tv_sec += 10;
		pthread_mutex_lock(&acks.mu);
		while (acks.n < CYCLE_MIN_ACKS) {
			if (pthread_cond_timedwait(
			        &acks.cv, &acks.mu, &deadline) != 0) {
				break; /* asserted below */
			}
		}
		int got = acks.n;
		pthread_mutex_unlock(&acks.mu);
		cr_assert_geq(
		    got, CYCLE_MIN_ACKS, "cycle %d: no load:\n%s", c, z.text);
		/* The writers keep calling through the drain: what the
		 * server acknowledges then must survive as well. */
		sent = now_ms();
		atomic_store(&acks.signalled, true);
		kill(z.pid, SIGTERM);
		status = proc_wait(&z);
		took   = now_ms() - sent;
		for (int i = 0; i < CYCLE_WRITERS; i++) {
			atomic_store(&writers[i].stop, true);
		}
		for (int i = 0; i < CYCLE_WRITERS; i++) {
			cr_assert_eq(pthread_join(tid[i], NULL), 0);
		}
		join_ms += now_ms() - sent - took;
		cr_assert(status == 0 || status == 3,
		    "cycle %d: status %d:\n%s", c, status, z.text);
		cr_assert_leq(took, CYCLE_EXIT_BOUND_MS,
		    "cycle %d: exit took %ld ms:\n%s", c, took, z.text);
		watchdog_exits += status == 3;
		max_exit = took > max_exit ? took : max_exit;
		sum_exit += took;
		/* Gather this cycle's acknowledged ids at the front. */
		for (int i = 0; i < CYCLE_WRITERS; i++) {
			memmove(acked[n_acked],
			    acked[(size_t) i * CYCLE_IDS_MAX],
			    writers[i].n_ids * sizeof(*acked));
			n_acked += writers[i].n_ids;
		}
		total_acked += n_acked;
	}
	/* The last cycle's, after one more restart. */
	cycle_start_zosd(&z, dir);
	proc_listen_url(&z, url, sizeof(url));
	cycle_check(url, acked, n_acked, cycles);
	kill(z.pid, SIGTERM);
	cr_assert_eq(proc_wait(&z), 0, "%s", z.text);
	fprintf(stderr,
	    "shutdown cycles: %d, acknowledged sessions %zu (all found), "
	    "exit after SIGTERM max %ld ms, mean %ld ms (bound %d ms), "
	    "watchdog exits %d, %ld ms in all (starts and checks %ld, "
	    "writers' ends %ld)\n",
	    cycles, total_acked, max_exit,
	    sum_exit / (cycles > 0 ? cycles : 1), CYCLE_EXIT_BOUND_MS,
	    watchdog_exits, now_ms() - started, start_ms, join_ms);
	free(acked);
	test_tmpdir_remove(dir);
}
