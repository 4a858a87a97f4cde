/*
 * Stress for the durable store's failure path, built to run under
 * ThreadSanitizer (a plain program: Criterion does not run under TSan).
 *
 * A state whose data directory is a 16 MiB tmpfs (so the program needs
 * root; without a mount it says so and exits 77, which meson counts as
 * skipped; 16 MiB, more than SQLite's WAL reaches before its automatic
 * checkpoint (1000 pages), so that the filler alone fills the disk), its
 * Session and Skills services on a zrpc server over inproc with 8 workers, one
 * client shared by 8 threads. Each thread owns a session and, until told to
 * stop, moves it one step (Transition), adds to a skill (Skills/Update) and,
 * every eighth round, starts a session (MAX_STARTS in all). Meanwhile the
 * main thread fills the disk (a filler file until ENOSPC), waits for writes to
 * fail, frees it, waits for writes to work again, and does so CYCLES times:
 * every failing commit undoes its changes in memory while the other threads
 * read and write the same tables, which is the path TSan watches here.
 *
 * Checked as it goes: every call answers OK or UNAVAILABLE, nothing else;
 * after an UNAVAILABLE Transition, Get shows the session at its last
 * acknowledged version and state (the change was undone). After the
 * threads joined: each session at its last acknowledged version and
 * state; the sessions List counts exactly those started with an OK; the
 * skill's attempts and the vector's version grew by exactly the updates
 * acknowledged. Then the server and state stop, a new state opens the
 * same directory, and all of that holds again (durable). Exit status 0
 * when every check held.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"
#include "services.h"
#include "state.h"
#include "stress_host.h"
#include "zos/v1/zos.zrpc.h"
#include "zrpc/client.h"
#include "zrpc/clock.h"

#define THREADS 8
#define WORKERS 8
#define CYCLES 20
#define MAX_ROUNDS 100000 /* per thread: a bound, never reached */
#define CALL_TIMEOUT_MS 60000
#define SKILL "induction"
#define MAX_STARTED 4096 /* started ids kept for the checks */
/* Starts in all: the run keeps adding rows, so that a full disk fails
 * writes (a write that only rewrites pages SQLite already has needs no
 * new block), yet stays well under the state's session limit. */
#define MAX_STARTS 50000
#define STATE_MAX_SESSIONS 100000

struct run {
	struct stress_host host;
	atomic_bool        broken;
	atomic_bool        stop;
	atomic_uint        ok;            /* OK writes */
	atomic_uint        unavailable;   /* UNAVAILABLE writes */
	atomic_uint        skill_updates; /* OK Skills/Update */
	/* Starts tried: at most MAX_STARTS, however fast the machine runs
	 * the rounds. */
	atomic_uint starts;
	/* Sessions started with an OK: the first MAX_STARTED ids. */
	pthread_mutex_t mtx;
	char            started[MAX_STARTED][ZOS_SESSION_ID_LEN + 1];
	unsigned        n_started; /* guarded by: mtx */
};

struct worker {
	struct run          *run;
	char                 id[ZOS_SESSION_ID_LEN + 1];
	uint64_t             version; /* last acknowledged */
	enum zos_proof_state state;   /* last acknowledged */
	unsigned             rounds;
};

static void stress_fail(struct run *run, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
stress_fail(struct run *run, const char *fmt, ...)
{
	char    line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "FAIL: %s\n", line);
	atomic_store(&run->broken, true);
}

static const zrpc_call_opts opts = { .timeout_ms = CALL_TIMEOUT_MS };

/* Counts a write's outcome; false (and a FAIL) unless OK or UNAVAILABLE. */
static bool
stress_outcome(struct run *run, const char *what, const zrpc_status *st)
{
	if (st->code == ZRPC_OK) {
		atomic_fetch_add(&run->ok, 1);
		return true;
	}
	if (st->code == ZRPC_UNAVAILABLE) {
		atomic_fetch_add(&run->unavailable, 1);
		return true;
	}
	stress_fail(run, "%s: code %d: %s", what, (int) st->code, st->message);
	return false;
}

static zrpc_status
stress_start_session(struct run *run, Zos__V1__ProofSession **out)
{
	Zos__V1__StartSessionRequest req =
	    ZOS__V1__START_SESSION_REQUEST__INIT;

	req.problem_id = "stress-faults";
	*out           = NULL;
	return zos_v1_session_start(run->host.client, &req, out, &opts);
}

static void
stress_record_start(struct run *run, const Zos__V1__ProofSession *s)
{
	pthread_mutex_lock(&run->mtx);
	if (run->n_started < MAX_STARTED) {
		snprintf(run->started[run->n_started], sizeof(run->started[0]),
		    "%s", s->id);
	}
	run->n_started++;
	pthread_mutex_unlock(&run->mtx);
}

static const enum zos_proof_state next_state[] = {
	[ZOS_PROOF_AWAITING_SOLUTION] = ZOS_PROOF_ANALYZING,
	[ZOS_PROOF_ANALYZING]         = ZOS_PROOF_FEEDBACK_READY,
	[ZOS_PROOF_FEEDBACK_READY]    = ZOS_PROOF_AWAITING_SOLUTION,
};

/* W's session as the server has it must be its last acknowledged one. */
static void
stress_check_own(struct worker *w, const char *when)
{
	Zos__V1__GetSessionRequest req = ZOS__V1__GET_SESSION_REQUEST__INIT;
	Zos__V1__ProofSession     *s   = NULL;
	zrpc_status                st;

	req.id = w->id;
	st     = zos_v1_session_get(w->run->host.client, &req, &s, &opts);
	if (st.code != ZRPC_OK) {
		stress_fail(w->run, "%s: Get %s: %s", when, w->id, st.message);
		return;
	}
	if (s->version != w->version || (int) s->state != (int) w->state) {
		stress_fail(w->run,
		    "%s: %s at version %llu state %d, acknowledged %llu "
		    "state %d",
		    when, w->id, (unsigned long long) s->version,
		    (int) s->state, (unsigned long long) w->version,
		    (int) w->state);
	}
	zos__v1__proof_session__free_unpacked(s, NULL);
}

static void
stress_round(struct worker *w)
{
	struct run                  *run = w->run;
	Zos__V1__TransitionRequest   tr  = ZOS__V1__TRANSITION_REQUEST__INIT;
	Zos__V1__UpdateSkillsRequest up = ZOS__V1__UPDATE_SKILLS_REQUEST__INIT;
	Zos__V1__UpdateSkillsRequest__DeltasEntry e =
	    ZOS__V1__UPDATE_SKILLS_REQUEST__DELTAS_ENTRY__INIT;
	Zos__V1__UpdateSkillsRequest__DeltasEntry *entries[1] = { &e };
	Zos__V1__ProofSession                     *s          = NULL;
	Zos__V1__SkillVector                      *v          = NULL;
	zrpc_status                                st;

	tr.id       = w->id;
	tr.to_state = (Zos__V1__ProofState) next_state[w->state];
	st = zos_v1_session_transition(run->host.client, &tr, &s, &opts);
	if (stress_outcome(run, "Transition", &st)) {
		if (st.code == ZRPC_OK) {
			if (s->version != w->version + 1) {
				stress_fail(run, "%s: version %llu after %llu",
				    w->id, (unsigned long long) s->version,
				    (unsigned long long) w->version);
			}
			w->version = s->version;
			w->state   = (enum zos_proof_state) s->state;
			zos__v1__proof_session__free_unpacked(s, NULL);
		} else {
			stress_check_own(w, "after an UNAVAILABLE Transition");
		}
	}

	e.key       = SKILL;
	e.value     = w->rounds % 2 == 0 ? 0.001 : -0.001;
	up.n_deltas = 1;
	up.deltas   = entries;
	st          = zos_v1_skills_update(run->host.client, &up, &v, &opts);
	if (stress_outcome(run, "Skills/Update", &st) && st.code == ZRPC_OK) {
		atomic_fetch_add(&run->skill_updates, 1);
		zos__v1__skill_vector__free_unpacked(v, NULL);
	}

	if (w->rounds % 8 == 0 &&
	    atomic_fetch_add(&run->starts, 1) < MAX_STARTS) {
		st = stress_start_session(run, &s);
		if (stress_outcome(run, "Start", &st) && st.code == ZRPC_OK) {
			stress_record_start(run, s);
			zos__v1__proof_session__free_unpacked(s, NULL);
		}
	}
}

static void *
stress_thread(void *arg)
{
	struct worker *w = arg;

	while (!atomic_load(&w->run->stop) && !atomic_load(&w->run->broken) &&
	    w->rounds < MAX_ROUNDS) {
		stress_round(w);
		w->rounds++;
	}
	return NULL;
}

/* Starts the state on DIR and the services on URL; false on failure. */
static bool
stress_start(struct run *run, const char *dir, const char *url)
{
	struct zos_backends_config backend = { .echo_delay_ms = 0 };

	run->host.max_sessions = STATE_MAX_SESSIONS;
	return stress_host_start(&run->host, dir, url, 4, &backend, WORKERS);
}

/* Stops and frees whatever stress_start made. */
static void
stress_stop(struct run *run)
{
	if (stress_host_stop(&run->host) != 0) {
		stress_fail(run, "calls were still unfinished at stop");
	}
}

static uint64_t
stress_skills(struct run *run, uint64_t *attempts)
{
	Zos__V1__GetSkillsRequest req = ZOS__V1__GET_SKILLS_REQUEST__INIT;
	Zos__V1__SkillVector     *v   = NULL;
	zrpc_status               st;
	uint64_t                  version;

	st = zos_v1_skills_get(run->host.client, &req, &v, &opts);
	if (st.code != ZRPC_OK) {
		stress_fail(run, "Skills/Get: %s", st.message);
		*attempts = 0;
		return 0;
	}
	*attempts = 0;
	for (size_t i = 0; i < v->n_skills; i++) {
		if (strcmp(v->skills[i]->name, SKILL) == 0) {
			*attempts = v->skills[i]->attempts;
		}
	}
	version = v->version;
	zos__v1__skill_vector__free_unpacked(v, NULL);
	return version;
}

static uint64_t
stress_list_total(struct run *run)
{
	Zos__V1__ListSessionsRequest req =
	    ZOS__V1__LIST_SESSIONS_REQUEST__INIT;
	Zos__V1__ListSessionsResponse *r = NULL;
	zrpc_status                    st;
	uint64_t                       total;

	req.page_size = 1;
	st            = zos_v1_session_list(run->host.client, &req, &r, &opts);
	if (st.code != ZRPC_OK) {
		stress_fail(run, "List: %s", st.message);
		return 0;
	}
	total = r->total;
	zos__v1__list_sessions_response__free_unpacked(r, NULL);
	return total;
}

/* Every acknowledged thing holds on the server RUN serves now. */
static void
stress_check_all(struct run *run, struct worker *w, uint64_t version0,
    uint64_t attempts0, const char *when)
{
	uint64_t version, attempts, total;
	unsigned acked = atomic_load(&run->skill_updates);

	for (unsigned i = 0; i < THREADS; i++) {
		w[i].run = run;
		stress_check_own(&w[i], when);
	}
	total = stress_list_total(run);
	if (total != THREADS + run->n_started) {
		stress_fail(run, "%s: List total %llu, %u acknowledged", when,
		    (unsigned long long) total, THREADS + run->n_started);
	}
	for (unsigned i = 0; i < run->n_started && i < MAX_STARTED; i++) {
		Zos__V1__GetSessionRequest req =
		    ZOS__V1__GET_SESSION_REQUEST__INIT;
		Zos__V1__ProofSession *s = NULL;
		zrpc_status            st;

		req.id = run->started[i];
		st     = zos_v1_session_get(run->host.client, &req, &s, &opts);
		if (st.code != ZRPC_OK) {
			stress_fail(run, "%s: started %s: %s", when,
			    run->started[i], st.message);
			continue;
		}
		zos__v1__proof_session__free_unpacked(s, NULL);
	}
	version = stress_skills(run, &attempts);
	if (attempts != attempts0 + acked || version != version0 + acked) {
		stress_fail(run,
		    "%s: skills v%llu with %llu attempts; %u updates "
		    "acknowledged from v%llu with %llu",
		    when, (unsigned long long) version,
		    (unsigned long long) attempts, acked,
		    (unsigned long long) version0,
		    (unsigned long long) attempts0);
	}
}

static long
now_ms(void)
{
	return (long) (zrpc_now_ns() / 1000000u);
}

static void
pause_ms(int ms)
{
	struct timespec ts = { 0, (long) ms * 1000000 };

	nanosleep(&ts, NULL);
}

/* Waits (bounded by MS) until COUNTER passes FROM + N; false on time. */
static bool
stress_wait_count(atomic_uint *counter, unsigned from, unsigned n, int ms)
{
	long end = now_ms() + ms;

	while (atomic_load(counter) < from + n) {
		if (now_ms() >= end) {
			return false;
		}
		pause_ms(5);
	}
	return true;
}

/* Fills the tmpfs at DIR with DIR/filler until ENOSPC. */
static bool
stress_fill(struct run *run, const char *dir, char *filler, size_t len)
{
	static const char block[4096] = { 1 };
	int               fd;

	snprintf(filler, len, "%s/filler", dir);
	fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		stress_fail(run, "%s: %s", filler, strerror(errno));
		return false;
	}
	for (int i = 0; i < 1 << 16; i++) {
		if (write(fd, block, sizeof(block)) < 0) {
			close(fd);
			return errno == ENOSPC;
		}
	}
	close(fd);
	stress_fail(run, "the disk never filled");
	return false;
}

/* The fault cycles; then the threads are told to stop. */
static void
stress_faults(struct run *run, const char *data)
{
	char filler[256];

	/* Some work before the first fault. */
	if (!stress_wait_count(&run->ok, 0, 200, 30000)) {
		stress_fail(run, "no progress before the faults");
	}
	for (int cycle = 0; cycle < CYCLES && !atomic_load(&run->broken);
	     cycle++) {
		unsigned failed = atomic_load(&run->unavailable);
		unsigned ok;

		if (!stress_fill(run, data, filler, sizeof(filler))) {
			break;
		}
		if (!stress_wait_count(&run->unavailable, failed, 50, 30000)) {
			stress_fail(
			    run, "cycle %d: writes never failed", cycle);
		}
		if (unlink(filler) != 0) {
			stress_fail(
			    run, "unlink %s: %s", filler, strerror(errno));
			break;
		}
		ok = atomic_load(&run->ok);
		if (!stress_wait_count(&run->ok, ok, 100, 30000)) {
			char cmd[160];

			stress_fail(run,
			    "cycle %d: writes never worked again (30 s after "
			    "the filler went); the data directory:",
			    cycle);
			snprintf(cmd, sizeof(cmd),
			    "ls -la '%s' >&2; df -k '%s' >&2", data, data);
			if (system(cmd) != 0) {
				fprintf(stderr, "(ls failed)\n");
			}
			break;
		}
	}
	atomic_store(&run->stop, true);
}

int
main(void)
{
	static struct run run;
	struct worker     w[THREADS];
	pthread_t         t[THREADS];
	bool              started[THREADS] = { false };
	char              root[]           = "/tmp/zos-stress-faults-XXXXXX";
	char              data[64], url[96], cmd[160];
	uint64_t          version0, attempts0;
	uint64_t          began = zrpc_now_ns();

	if (mkdtemp(root) == NULL) {
		perror("FAIL: mkdtemp");
		return 1;
	}
	snprintf(data, sizeof(data), "%s/data", root);
	if (mkdir(data, 0700) != 0) {
		perror("FAIL: mkdir");
		return 1;
	}
	if (mount("tmpfs", data, "tmpfs", 0, "size=16m,mode=0700") != 0) {
		printf("SKIP: cannot mount a tmpfs on %s (%s): needs root\n",
		    data, strerror(errno));
		rmdir(data);
		rmdir(root);
		return 77;
	}
	pthread_mutex_init(&run.mtx, NULL);
	snprintf(
	    url, sizeof(url), "inproc://zos-stress-faults-%d", (int) getpid());
	if (!stress_start(&run, data, url)) {
		atomic_store(&run.broken, true);
		goto out;
	}
	version0 = stress_skills(&run, &attempts0);
	for (unsigned i = 0; i < THREADS; i++) {
		Zos__V1__ProofSession *s;
		zrpc_status            st = stress_start_session(&run, &s);

		w[i] = (struct worker) { .run = &run };
		if (st.code != ZRPC_OK) {
			stress_fail(&run, "Start: %s", st.message);
			goto stop;
		}
		snprintf(w[i].id, sizeof(w[i].id), "%s", s->id);
		w[i].version = s->version;
		w[i].state   = (enum zos_proof_state) s->state;
		zos__v1__proof_session__free_unpacked(s, NULL);
	}
	for (unsigned i = 0; i < THREADS; i++) {
		started[i] =
		    pthread_create(&t[i], NULL, stress_thread, &w[i]) == 0;
		if (!started[i]) {
			stress_fail(&run, "cannot start thread %u", i);
		}
	}
	stress_faults(&run, data);
	for (unsigned i = 0; i < THREADS; i++) {
		if (started[i]) {
			pthread_join(t[i], NULL);
		}
	}
	unsigned rounds = 0;
	for (unsigned i = 0; i < THREADS; i++) {
		rounds += w[i].rounds;
	}
	printf("calls: %u rounds, %u writes ok, %u unavailable, %u sessions "
	       "started, %u skill updates, %d fault cycles in %llu ms\n",
	    rounds, atomic_load(&run.ok), atomic_load(&run.unavailable),
	    run.n_started, atomic_load(&run.skill_updates), CYCLES,
	    (unsigned long long) ((zrpc_now_ns() - began) / 1000000u));
	stress_check_all(&run, w, version0, attempts0, "live");
	stress_stop(&run);

	/* Durable: a new state on the same directory holds the same. */
	snprintf(url, sizeof(url), "inproc://zos-stress-faults-%d-again",
	    (int) getpid());
	if (stress_start(&run, data, url)) {
		stress_check_all(&run, w, version0, attempts0, "restored");
	} else {
		atomic_store(&run.broken, true);
	}
stop:
	stress_stop(&run);
out:
	if (umount2(data, 0) != 0) {
		fprintf(stderr, "umount %s: %s\n", data, strerror(errno));
		umount2(data, MNT_DETACH);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	if (system(cmd) != 0) {
		fprintf(stderr, "cannot remove %s\n", root);
	}

	bool broken = atomic_load(&run.broken);
	printf(broken ? "stress-store-faults: FAILED\n"
	              : "stress-store-faults: all invariants held\n");
	return broken ? 1 : 0;
}
