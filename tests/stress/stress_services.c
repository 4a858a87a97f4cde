/*
 * Stress for the zOS services end to end, built to run under
 * ThreadSanitizer (a plain program: Criterion does not run under TSan).
 *
 * A state with a data directory (so every change is answered only once the
 * store's flusher has made it durable: the handler suspends the call and
 * the flusher thread resumes it), the built-in echo backends (1 ms delay,
 * a fifth of the calls failing, fixed seed) and every service on a zrpc
 * server over inproc with 8 workers, one client shared by 16 threads.
 * Each thread owns a session and, for a fixed number of iterations:
 *   - Skills/Update with a small delta on "induction";
 *   - Assistant/Complete without a session, on a prompt and task type
 *     drawn from a small set, so identical concurrent calls meet in the
 *     cache's single flight (and a small cache keeps evicting);
 *   - one step of its session's walk AWAITING_SOLUTION -> ANALYZING ->
 *     FEEDBACK_READY -> AWAITING_SOLUTION, by Session/Transition or, from
 *     AWAITING_SOLUTION or ANALYZING, by Assistant/Complete on the
 *     session (which moves it to FEEDBACK_READY; a Complete that no
 *     model answered leaves it ANALYZING, read back with Session/Get).
 * Every acknowledged change is recorded and checked as it comes back
 * (versions grow by exactly the moves made, texts belong to their
 * prompt). After the threads joined:
 *   - each session's version and state equal the last acknowledged ones,
 *     and the table's change count is the sum of the versions;
 *   - the skills version and "induction"'s attempts grew by exactly the
 *     updates acknowledged;
 *   - the routing metrics count at least the backend calls that OK
 *     Completes reported (failed Completes made calls too), at most three
 *     per Complete, and at least one success per answer computed;
 *   - the cache holds at most its capacity and counted one or two
 *     lookups per Complete;
 *   - the store answered exactly one commit request per call that
 *     changed something (its reply waited for it) and no write failed;
 * then the server is stopped, the state destroyed (closing the store), a
 * new state opened on the same directory, and every session's version and
 * state, the skills version and attempts and the change count must have
 * survived. Exit status 0 when every check held.
 */
#include <dirent.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "services.h"
#include "state.h"
#include "stress_host.h"
#include "zos/v1/zos.zrpc.h"
#include "zrpc/client.h"
#include "zrpc/clock.h"

#define THREADS 16
#define ITERATIONS 400
#define WORKERS 8
#define CAPACITY 6
#define CALL_TIMEOUT_MS 60000 /* never reached: every call must answer */
#define SKILL "induction"

static const char *const prompts[] = {
	"prove that sqrt 2 is irrational",
	"show n^2 + n is even",
	"is every prime odd",
	"sum of the first n odd numbers",
	"pigeonhole on 13 socks",
};
#define N_PROMPTS (sizeof(prompts) / sizeof(prompts[0]))

static const char *const tasks[] = { "hint", "grading", "default" };
#define N_TASKS (sizeof(tasks) / sizeof(tasks[0]))

struct run {
	struct stress_host host;
	atomic_bool        broken;
	/* Acknowledged outcomes, summed over the threads. */
	atomic_uint skill_updates;   /* OK Skills/Update */
	atomic_uint completes;       /* Complete calls made */
	atomic_uint completes_ok;    /* OK Completes */
	atomic_uint computed;        /* OK and cached = false */
	atomic_uint attempts;        /* attempts over OK replies */
	atomic_uint computed_tries;  /* attempts over OK, cached = false */
	atomic_uint unavailable;     /* Completes no model answered */
	atomic_uint durable_replies; /* commit requests of changing calls */
};

struct worker {
	struct run          *run;
	unsigned             n;
	unsigned             seed;
	char                 id[ZOS_SESSION_ID_LEN + 1];
	uint64_t             version; /* last acknowledged */
	enum zos_proof_state state;   /* last acknowledged */
	uint64_t             skills_seen;
	unsigned             transitions, session_completes;
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

static zrpc_call_opts
stress_opts(void)
{
	return (zrpc_call_opts) { .timeout_ms = CALL_TIMEOUT_MS };
}

static unsigned
stress_random(struct worker *w)
{
	w->seed = w->seed * 1103515245u + 12345u;
	return w->seed >> 8;
}

/* Session/Get of W's session into *OUT; false (and a FAIL) if not OK. */
static bool
stress_get(struct worker *w, Zos__V1__ProofSession **out)
{
	Zos__V1__GetSessionRequest req  = ZOS__V1__GET_SESSION_REQUEST__INIT;
	zrpc_call_opts             opts = stress_opts();
	zrpc_status                st;

	req.id = w->id;
	st     = zos_v1_session_get(w->run->host.client, &req, out, &opts);
	if (st.code != ZRPC_OK) {
		stress_fail(w->run, "thread %u: Get: %s: %s", w->n,
		    zrpc_status_name(st.code), st.message);
		return false;
	}
	return true;
}

/* Reads the session back and takes it as the last acknowledged. */
static void
stress_resync(struct worker *w)
{
	Zos__V1__ProofSession *s = NULL;

	if (stress_get(w, &s)) {
		w->version = s->version;
		w->state   = (enum zos_proof_state) s->state;
		zos__v1__proof_session__free_unpacked(s, NULL);
	}
}

static void
stress_skills_update(struct worker *w, double delta)
{
	struct run                  *run = w->run;
	Zos__V1__UpdateSkillsRequest req =
	    ZOS__V1__UPDATE_SKILLS_REQUEST__INIT;
	Zos__V1__UpdateSkillsRequest__DeltasEntry entry =
	    ZOS__V1__UPDATE_SKILLS_REQUEST__DELTAS_ENTRY__INIT;
	Zos__V1__UpdateSkillsRequest__DeltasEntry *entries[1] = { &entry };
	Zos__V1__SkillVector                      *reply      = NULL;
	zrpc_call_opts                             opts       = stress_opts();
	zrpc_status                                st;

	entry.key    = SKILL;
	entry.value  = delta;
	req.n_deltas = 1;
	req.deltas   = entries;
	st = zos_v1_skills_update(run->host.client, &req, &reply, &opts);
	if (st.code != ZRPC_OK) {
		stress_fail(run, "thread %u: Skills/Update: %s: %s", w->n,
		    zrpc_status_name(st.code), st.message);
		return;
	}
	atomic_fetch_add(&run->skill_updates, 1);
	atomic_fetch_add(&run->durable_replies, 1);
	/* This thread's updates are in order: each sees a newer vector. */
	if (reply->version <= w->skills_seen) {
		stress_fail(run, "thread %u: skills version %llu after %llu",
		    w->n, (unsigned long long) reply->version,
		    (unsigned long long) w->skills_seen);
	}
	w->skills_seen = reply->version;
	zos__v1__skill_vector__free_unpacked(reply, NULL);
}

/* Session/Transition of W's session to TO from the last acknowledged. */
static void
stress_transition(struct worker *w, enum zos_proof_state to)
{
	struct run                *run  = w->run;
	Zos__V1__TransitionRequest req  = ZOS__V1__TRANSITION_REQUEST__INIT;
	Zos__V1__ProofSession     *s    = NULL;
	zrpc_call_opts             opts = stress_opts();
	zrpc_status                st;

	req.id               = w->id;
	req.to_state         = (Zos__V1__ProofState) to;
	req.expected_version = w->version;
	st = zos_v1_session_transition(run->host.client, &req, &s, &opts);
	if (st.code != ZRPC_OK) {
		stress_fail(run,
		    "thread %u: Transition to %s at v%llu: %s: %s", w->n,
		    zos_proof_state_name(to), (unsigned long long) w->version,
		    zrpc_status_name(st.code), st.message);
		stress_resync(w);
		return;
	}
	atomic_fetch_add(&run->durable_replies, 1);
	if (strcmp(s->id, w->id) != 0 ||
	    s->state != (Zos__V1__ProofState) to ||
	    s->version != w->version + 1) {
		stress_fail(run,
		    "thread %u: Transition answered %s %s v%llu, expected %s "
		    "v%llu",
		    w->n, s->id,
		    zos_proof_state_name((enum zos_proof_state) s->state),
		    (unsigned long long) s->version, zos_proof_state_name(to),
		    (unsigned long long) w->version + 1);
	}
	w->version = s->version;
	w->state   = (enum zos_proof_state) s->state;
	w->transitions++;
	zos__v1__proof_session__free_unpacked(s, NULL);
}

/* Assistant/Complete on a prompt drawn by R, on W's session if asked. */
static void
stress_complete(struct worker *w, bool with_session, unsigned r)
{
	struct run                *run    = w->run;
	Zos__V1__CompleteRequest   req    = ZOS__V1__COMPLETE_REQUEST__INIT;
	Zos__V1__CompleteResponse *reply  = NULL;
	zrpc_call_opts             opts   = stress_opts();
	const char                *prompt = prompts[r % N_PROMPTS];
	zrpc_status                st;
	char                       want[256];
	/* From AWAITING_SOLUTION a Complete makes two moves, else one. */
	unsigned moves = w->state == ZOS_PROOF_AWAITING_SOLUTION ? 2 : 1;

	req.session_id = with_session ? w->id : "";
	req.task_type  = (char *) tasks[(r / N_PROMPTS) % N_TASKS];
	req.prompt     = (char *) prompt;
	atomic_fetch_add(&run->completes, 1);
	st = zos_v1_assistant_complete(run->host.client, &req, &reply, &opts);
	if (st.code == ZRPC_UNAVAILABLE) {
		/* Every model failed (the echo's simulated failures): the
		 * session stays ANALYZING, moved there durably. */
		atomic_fetch_add(&run->unavailable, 1);
		if (with_session) {
			uint64_t expect = w->version + moves - 1;

			if (moves == 2) {
				/* The move to ANALYZING asks for its own
				 * commit (readers see it once durable), and
				 * the reply waits for it. */
				atomic_fetch_add(&run->durable_replies, 2);
			}
			stress_resync(w);
			if (w->state != ZOS_PROOF_ANALYZING ||
			    w->version != expect) {
				stress_fail(run,
				    "thread %u: after an unanswered Complete "
				    "the session is %s v%llu, expected "
				    "ANALYZING v%llu",
				    w->n, zos_proof_state_name(w->state),
				    (unsigned long long) w->version,
				    (unsigned long long) expect);
			}
		}
		return;
	}
	if (st.code != ZRPC_OK) {
		stress_fail(run, "thread %u: Complete (%s, %s): %s: %s", w->n,
		    req.task_type, with_session ? "session" : "no session",
		    zrpc_status_name(st.code), st.message);
		if (with_session) {
			stress_resync(w);
		}
		return;
	}
	atomic_fetch_add(&run->completes_ok, 1);
	atomic_fetch_add(&run->attempts, reply->attempts);
	if (!reply->cached) {
		atomic_fetch_add(&run->computed, 1);
		atomic_fetch_add(&run->computed_tries, reply->attempts);
	}
	snprintf(want, sizeof(want), "[%s] %s", reply->model, prompt);
	if (strcmp(reply->text, want) != 0 || reply->attempts > 3) {
		stress_fail(run,
		    "thread %u: Complete answered '%s' (%u attempts) for "
		    "'%s'",
		    w->n, reply->text, reply->attempts, want);
	}
	if (!with_session) {
		if (reply->session != NULL) {
			stress_fail(run,
			    "thread %u: a Complete without a session "
			    "answered one",
			    w->n);
		}
	} else if (reply->session == NULL) {
		stress_fail(run, "thread %u: Complete gave no session", w->n);
		stress_resync(w);
	} else {
		Zos__V1__ProofSession *s = reply->session;

		/* The reply's commit, and the move to ANALYZING's own. */
		atomic_fetch_add(&run->durable_replies, moves == 2 ? 2 : 1);
		if (strcmp(s->id, w->id) != 0 ||
		    s->state != ZOS__V1__PROOF_STATE__FEEDBACK_READY ||
		    s->version != w->version + moves) {
			stress_fail(run,
			    "thread %u: Complete left %s %s v%llu, expected "
			    "FEEDBACK_READY v%llu",
			    w->n, s->id,
			    zos_proof_state_name(
			        (enum zos_proof_state) s->state),
			    (unsigned long long) s->version,
			    (unsigned long long) w->version + moves);
		}
		w->version = s->version;
		w->state   = (enum zos_proof_state) s->state;
		w->session_completes++;
	}
	zos__v1__complete_response__free_unpacked(reply, NULL);
}

static void *
stress_thread(void *arg)
{
	struct worker               *w   = arg;
	struct run                  *run = w->run;
	Zos__V1__StartSessionRequest req =
	    ZOS__V1__START_SESSION_REQUEST__INIT;
	Zos__V1__ProofSession *s    = NULL;
	zrpc_call_opts         opts = stress_opts();
	zrpc_status            st;
	char                   problem[32];

	snprintf(problem, sizeof(problem), "stress-%u", w->n);
	req.problem_id = problem;
	st = zos_v1_session_start(run->host.client, &req, &s, &opts);
	if (st.code != ZRPC_OK) {
		stress_fail(run, "thread %u: Start: %s: %s", w->n,
		    zrpc_status_name(st.code), st.message);
		return NULL;
	}
	atomic_fetch_add(&run->durable_replies, 1);
	snprintf(w->id, sizeof(w->id), "%s", s->id);
	w->version = s->version;
	w->state   = (enum zos_proof_state) s->state;
	zos__v1__proof_session__free_unpacked(s, NULL);
	if (w->version != 1 || w->state != ZOS_PROOF_AWAITING_SOLUTION) {
		stress_fail(run, "thread %u: a new session is %s v%llu", w->n,
		    zos_proof_state_name(w->state),
		    (unsigned long long) w->version);
	}

	for (unsigned i = 0; i < ITERATIONS; i++) {
		unsigned r = stress_random(w);

		stress_skills_update(w, (i & 1) != 0 ? 0.01 : -0.01);
		stress_complete(w, false, r);
		switch (w->state) {
		case ZOS_PROOF_AWAITING_SOLUTION:
		case ZOS_PROOF_ANALYZING:
			if ((r >> 12) % 3 == 0) {
				stress_complete(w, true, r >> 4);
			} else {
				stress_transition(w,
				    w->state == ZOS_PROOF_ANALYZING
				        ? ZOS_PROOF_FEEDBACK_READY
				        : ZOS_PROOF_ANALYZING);
			}
			break;
		case ZOS_PROOF_FEEDBACK_READY:
			stress_transition(w, ZOS_PROOF_AWAITING_SOLUTION);
			break;
		default:
			stress_fail(run, "thread %u: session is %s", w->n,
			    zos_proof_state_name(w->state));
			return NULL;
		}
		/* Now and then: the server agrees with what was answered. */
		if (i % 8 == 7 && stress_get(w, &s)) {
			if (s->version != w->version ||
			    s->state != (Zos__V1__ProofState) w->state) {
				stress_fail(run,
				    "thread %u: Get says v%llu, acknowledged "
				    "v%llu",
				    w->n, (unsigned long long) s->version,
				    (unsigned long long) w->version);
			}
			zos__v1__proof_session__free_unpacked(s, NULL);
		}
	}
	return NULL;
}

/* The skills version and SKILL's attempts, read from STATE. */
static void
stress_skills(struct zos_state *state, uint64_t *version, uint64_t *attempts)
{
	struct zos_skill_vector *v = zos_skills_get(&state->skills);

	*version  = v->version;
	*attempts = UINT64_MAX;
	for (size_t i = 0; i < v->n; i++) {
		if (strcmp(v->skills[i].name, SKILL) == 0) {
			*attempts = v->skills[i].attempts;
		}
	}
	zos_skill_vector_unref(v);
}

/* Checks every session of W against STATE; WHEN names the phase. */
static void
stress_check_sessions(struct run *run, struct zos_state *state,
    const struct worker *w, const char *when)
{
	uint64_t sum = 0;

	for (unsigned i = 0; i < THREADS; i++) {
		struct zos_session s;

		if (zos_sessions_get(state->sessions, w[i].id, &s) !=
		    ZOS_SESSION_OK) {
			stress_fail(run, "%s: session %u ('%s') is missing",
			    when, i, w[i].id);
			continue;
		}
		sum += s.version;
		if (s.version != w[i].version || s.state != w[i].state) {
			stress_fail(run,
			    "%s: session %u is %s v%llu, last acknowledged "
			    "%s v%llu",
			    when, i, zos_proof_state_name(s.state),
			    (unsigned long long) s.version,
			    zos_proof_state_name(w[i].state),
			    (unsigned long long) w[i].version);
		}
	}
	/* Start counts one change, each move one: the sum of versions. */
	if (zos_sessions_seq(state->sessions) != sum) {
		stress_fail(run,
		    "%s: sessions change count %llu, versions %llu", when,
		    (unsigned long long) zos_sessions_seq(state->sessions),
		    (unsigned long long) sum);
	}
}

/* Removes DIR and the files in it. */
static void
stress_remove_dir(const char *dir)
{
	DIR           *d = opendir(dir);
	struct dirent *e;
	char           path[512];

	if (d != NULL) {
		while ((e = readdir(d)) != NULL) {
			if (strcmp(e->d_name, ".") == 0 ||
			    strcmp(e->d_name, "..") == 0) {
				continue;
			}
			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
			if (unlink(path) != 0) {
				fprintf(stderr, "cannot remove %s\n", path);
			}
		}
		closedir(d);
	}
	if (rmdir(dir) != 0) {
		fprintf(stderr, "cannot remove %s\n", dir);
	}
}

/* Starts the state, backends, server and client; false on failure. */
static bool
stress_start(struct run *run, const char *dir, const char *url)
{
	struct zos_backends_config backend = {
		.echo_delay_ms  = 1,
		.echo_fail_rate = 0.2,
		.echo_seed      = 42,
	};

	return stress_host_start(
	    &run->host, dir, url, CAPACITY, &backend, WORKERS);
}

/* Stops and frees whatever stress_start made. */
static void
stress_stop(struct run *run)
{
	if (stress_host_stop(&run->host) != 0) {
		stress_fail(run, "calls were still unfinished at stop");
	}
}

/* The checks on the live server once every call has been answered. */
static void
stress_check_live(struct run *run, const struct worker *w,
    uint64_t skills_version0, uint64_t attempts0, uint64_t waiters0)
{
	struct zos_state         *state = run->host.state;
	struct zos_model_metrics *m     = NULL;
	struct zos_cache_stats    cs;
	struct zos_store_stats    ss;
	size_t                    n     = 0;
	uint64_t                  calls = 0, successes = 0;
	uint64_t                  version, attempts;
	unsigned                  updates   = atomic_load(&run->skill_updates);
	unsigned                  completes = atomic_load(&run->completes);

	stress_check_sessions(run, state, w, "live");

	stress_skills(state, &version, &attempts);
	if (version != skills_version0 + updates ||
	    attempts != attempts0 + updates) {
		stress_fail(run,
		    "skills at v%llu with %llu attempts after %u updates "
		    "from v%llu with %llu",
		    (unsigned long long) version,
		    (unsigned long long) attempts, updates,
		    (unsigned long long) skills_version0,
		    (unsigned long long) attempts0);
	}

	if (zos_routing_get_metrics(state->routing, &m, &n) !=
	    ZOS_ROUTING_OK) {
		stress_fail(run, "routing metrics unreadable");
	}
	for (size_t i = 0; i < n; i++) {
		calls += m[i].success_count + m[i].failure_count;
		successes += m[i].success_count;
	}
	free(m);
	printf("routing: %llu backend calls (%llu ok) over %zu models; OK "
	       "Completes reported %u attempts (%u when computed)\n",
	    (unsigned long long) calls, (unsigned long long) successes, n,
	    atomic_load(&run->attempts), atomic_load(&run->computed_tries));
	if (calls < atomic_load(&run->attempts) ||
	    atomic_load(&run->attempts) < atomic_load(&run->computed_tries) ||
	    calls > 3ull * completes ||
	    successes < atomic_load(&run->computed)) {
		stress_fail(run,
		    "routing counts %llu calls, %llu successes for %u "
		    "Completes, %u computed, %u attempts reported",
		    (unsigned long long) calls, (unsigned long long) successes,
		    completes, atomic_load(&run->computed),
		    atomic_load(&run->attempts));
	}

	zos_cache_stats(&state->cache, &cs);
	printf("cache: size %llu/%llu, %llu hits, %llu misses, %llu "
	       "evictions\n",
	    (unsigned long long) cs.size, (unsigned long long) cs.capacity,
	    (unsigned long long) cs.hits, (unsigned long long) cs.misses,
	    (unsigned long long) cs.evictions);
	if (cs.size > cs.capacity || cs.capacity != CAPACITY ||
	    cs.hits + cs.misses < completes ||
	    cs.hits + cs.misses > 2ull * completes) {
		stress_fail(run,
		    "cache size %llu, capacity %llu, %llu lookups for %u "
		    "Completes",
		    (unsigned long long) cs.size,
		    (unsigned long long) cs.capacity,
		    (unsigned long long) (cs.hits + cs.misses), completes);
	}

	zos_store_stats(state->store, &ss);
	printf("store: %llu commits for %llu waiters, %llu failures\n",
	    (unsigned long long) ss.commits,
	    (unsigned long long) ss.commit_waiters,
	    (unsigned long long) ss.failures);
	if (ss.failures != 0 ||
	    ss.commit_waiters !=
	        waiters0 + atomic_load(&run->durable_replies)) {
		stress_fail(run,
		    "store answered %llu commits for %u changing calls "
		    "(%llu before), %llu failures",
		    (unsigned long long) (ss.commit_waiters - waiters0),
		    atomic_load(&run->durable_replies),
		    (unsigned long long) waiters0,
		    (unsigned long long) ss.failures);
	}
}

int
main(void)
{
	static struct run      run;
	struct worker          w[THREADS];
	pthread_t              t[THREADS];
	bool                   started[THREADS] = { false };
	char                   dir[] = "/tmp/zos-stress-services-XXXXXX";
	char                   url[96], error[512];
	uint64_t               version0, attempts0, version, attempts;
	struct zos_store_stats ss;
	uint64_t               began = zrpc_now_ns();

	if (mkdtemp(dir) == NULL) {
		perror("FAIL: mkdtemp");
		return 1;
	}
	snprintf(url, sizeof(url), "inproc://zos-stress-services-%d",
	    (int) getpid());
	if (!stress_start(&run, dir, url)) {
		stress_stop(&run);
		stress_remove_dir(dir);
		return 1;
	}
	stress_skills(run.host.state, &version0, &attempts0);
	zos_store_stats(run.host.state->store, &ss);

	for (unsigned i = 0; i < THREADS; i++) {
		w[i] = (struct worker) {
			.run = &run, .n = i, .seed = i * 2654435761u + 1
		};
		started[i] =
		    pthread_create(&t[i], NULL, stress_thread, &w[i]) == 0;
		if (!started[i]) {
			stress_fail(&run, "cannot start thread %u", i);
		}
	}
	for (unsigned i = 0; i < THREADS; i++) {
		if (started[i]) {
			pthread_join(t[i], NULL);
		}
	}
	unsigned transitions = 0, session_completes = 0;
	for (unsigned i = 0; i < THREADS; i++) {
		transitions += w[i].transitions;
		session_completes += w[i].session_completes;
	}
	printf("calls: %u skill updates, %u transitions, %u Completes (%u "
	       "on a session, %u ok, %u computed, %u unanswered) in %llu "
	       "ms\n",
	    atomic_load(&run.skill_updates), transitions,
	    atomic_load(&run.completes), session_completes,
	    atomic_load(&run.completes_ok), atomic_load(&run.computed),
	    atomic_load(&run.unavailable),
	    (unsigned long long) ((zrpc_now_ns() - began) / 1000000u));
	stress_check_live(&run, w, version0, attempts0, ss.commit_waiters);
	stress_skills(run.host.state, &version, &attempts);
	stress_stop(&run);

	/* Restore: a new state on the same directory. */
	struct zos_state_config config = { .cache_capacity = CAPACITY,
		.abort_on_violation                        = true,
		.data_dir                                  = dir };
	struct zos_state       *again =
	    zos_state_create(&config, error, sizeof(error));
	if (again == NULL) {
		stress_fail(&run, "restore: %s", error);
	} else {
		uint64_t v, a;

		stress_check_sessions(&run, again, w, "restored");
		stress_skills(again, &v, &a);
		if (v != version || a != attempts) {
			stress_fail(&run,
			    "restored skills v%llu with %llu attempts, "
			    "acknowledged v%llu with %llu",
			    (unsigned long long) v, (unsigned long long) a,
			    (unsigned long long) version,
			    (unsigned long long) attempts);
		}
		zos_state_destroy(again);
	}
	stress_remove_dir(dir);

	bool broken = atomic_load(&run.broken);
	printf(broken ? "stress-services: FAILED\n"
	              : "stress-services: all invariants held\n");
	return broken ? 1 : 0;
}
