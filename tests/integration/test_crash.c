/*
 * Crash test: zosd with a data directory is killed with SIGKILL while
 * writers change sessions and skills, then restarted; every change it
 * acknowledged must be there.
 *
 * Each writer owns one session and walks it round the proof states
 * (AWAITING_SOLUTION -> ANALYZING -> FEEDBACK_READY -> AWAITING_SOLUTION),
 * and adds to one skill; after each OK it records the version (and state)
 * the reply carried. The kill comes after a pseudo-random number of
 * acknowledged changes (so at a different point of the work each cycle),
 * with calls still in flight. After the restart each session's version
 * must be at least its last acknowledged one, with the acknowledged state
 * when equal (a change made but not yet acknowledged may or may not
 * survive), and the skill vector's version at least the last one
 * acknowledged.
 *
 * ZOS_CRASH_CYCLES sets the number of cycles (default 20);
 * scripts/crash-test runs 1000.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proc.h"
#include "zos/v1/zos.zrpc.h"
#include "zrpc/client.h"

#define WRITERS 8
#define SKILL_WRITERS 2 /* the first writers also update skills */

struct writer {
	const char *url;
	int         index;
	atomic_bool stop;
	/* Acknowledged: written by the writer, read by the test after join. */
	char                id[40];
	uint64_t            version;
	Zos__V1__ProofState state;
	uint64_t            skills_version;
	atomic_uint        *acks; /* shared count of acknowledged changes */
	/* Why the writer stopped before it was told to (read after join,
	 * for the failure message): "" while it has not. */
	char failure[ZRPC_STATUS_MESSAGE_MAX + 64];
};

static const Zos__V1__ProofState next_state[] = {
	[ZOS__V1__PROOF_STATE__AWAITING_SOLUTION] =
	    ZOS__V1__PROOF_STATE__ANALYZING,
	[ZOS__V1__PROOF_STATE__ANALYZING] =
	    ZOS__V1__PROOF_STATE__FEEDBACK_READY,
	[ZOS__V1__PROOF_STATE__FEEDBACK_READY] =
	    ZOS__V1__PROOF_STATE__AWAITING_SOLUTION,
};

static void
record(struct writer *w, const Zos__V1__ProofSession *s)
{
	w->version = s->version;
	w->state   = s->state;
	atomic_fetch_add(w->acks, 1);
}

static void *
writer_main(void *arg)
{
	struct writer               *w    = arg;
	const zrpc_call_opts         opts = { .timeout_ms = 3000 };
	zrpc_client                 *client;
	Zos__V1__TransitionRequest   req = ZOS__V1__TRANSITION_REQUEST__INIT;
	Zos__V1__UpdateSkillsRequest up = ZOS__V1__UPDATE_SKILLS_REQUEST__INIT;
	Zos__V1__UpdateSkillsRequest__DeltasEntry e =
	    ZOS__V1__UPDATE_SKILLS_REQUEST__DELTAS_ENTRY__INIT;
	Zos__V1__UpdateSkillsRequest__DeltasEntry *entries[1] = { &e };

	w->failure[0] = '\0';
	if (zrpc_client_open(&client, w->url, NULL).code != ZRPC_OK) {
		snprintf(w->failure, sizeof(w->failure), "cannot connect");
		return NULL;
	}
	e.key       = "induction";
	e.value     = w->index % 2 == 0 ? 0.01 : -0.01;
	up.n_deltas = 1;
	up.deltas   = entries;
	req.id      = w->id;
	while (!atomic_load(&w->stop)) {
		Zos__V1__ProofSession *s = NULL;
		Zos__V1__SkillVector  *v = NULL;
		zrpc_status            st;

		req.to_state = next_state[w->state];
		st = zos_v1_session_transition(client, &req, &s, &opts);
		if (st.code != ZRPC_OK) {
			/* The server is gone (or, if the test fails for
			 * want of progress, whatever this says). */
			snprintf(w->failure, sizeof(w->failure),
			    "Transition: code %d: %s", (int) st.code,
			    st.message);
			break;
		}
		record(w, s);
		zos__v1__proof_session__free_unpacked(s, NULL);
		if (w->index < SKILL_WRITERS) {
			st = zos_v1_skills_update(client, &up, &v, &opts);
			if (st.code != ZRPC_OK) {
				snprintf(w->failure, sizeof(w->failure),
				    "Skills/Update: code %d: %s",
				    (int) st.code, st.message);
				break;
			}
			if (v->version > w->skills_version) {
				w->skills_version = v->version;
			}
			atomic_fetch_add(w->acks, 1);
			zos__v1__skill_vector__free_unpacked(v, NULL);
		}
	}
	zrpc_client_close(client);
	return NULL;
}

static void
start_zosd(struct proc *p, const char *dir, const char *url)
{
	char *argv[] = { (char *) env_path("ZOSD"), "--data-dir", (char *) dir,
		"--listen", (char *) url, "--log-format", "text",
		"--log-level", "warn", "--metrics-listen", "off", NULL };

	proc_start(p, argv);
	cr_assert(proc_wait_for(p, "listening on"), "zosd did not start:\n%s",
	    p->text);
}

/* The session ID as the restarted server has it. */
static Zos__V1__ProofSession *
get_session(zrpc_client *client, const char *id)
{
	Zos__V1__GetSessionRequest req = ZOS__V1__GET_SESSION_REQUEST__INIT;
	Zos__V1__ProofSession     *s   = NULL;
	zrpc_call_opts             o   = { .timeout_ms = 5000 };
	zrpc_status                st;

	req.id = (char *) id;
	st     = zos_v1_session_get(client, &req, &s, &o);
	cr_assert_eq(st.code, ZRPC_OK, "session %s lost: %s", id, st.message);
	return s;
}

static uint64_t
skills_version(zrpc_client *client)
{
	Zos__V1__GetSkillsRequest req = ZOS__V1__GET_SKILLS_REQUEST__INIT;
	Zos__V1__SkillVector     *v   = NULL;
	zrpc_call_opts            o   = { .timeout_ms = 5000 };
	uint64_t                  version;

	cr_assert_eq(zos_v1_skills_get(client, &req, &v, &o).code, ZRPC_OK);
	version = v->version;
	zos__v1__skill_vector__free_unpacked(v, NULL);
	return version;
}

/* Checks every acknowledged change against the restarted server. */
static void
check_acknowledged(const char *url, struct writer *w, uint64_t acked_skills)
{
	zrpc_client *client;

	cr_assert_eq(zrpc_client_open(&client, url, NULL).code, ZRPC_OK);
	for (int i = 0; i < WRITERS; i++) {
		Zos__V1__ProofSession *s = get_session(client, w[i].id);

		cr_assert_geq(s->version, w[i].version,
		    "session %s: acknowledged version %llu, found %llu",
		    w[i].id, (unsigned long long) w[i].version,
		    (unsigned long long) s->version);
		if (s->version == w[i].version) {
			cr_assert_eq(
			    s->state, w[i].state, "session %s", w[i].id);
		}
		/* Go on from what survived. */
		w[i].version = s->version;
		w[i].state   = s->state;
		zos__v1__proof_session__free_unpacked(s, NULL);
	}
	cr_assert_geq(skills_version(client), acked_skills,
	    "skills: acknowledged version %llu lost",
	    (unsigned long long) acked_skills);
	zrpc_client_close(client);
}

/* Starts one session per writer. */
static void
start_sessions(const char *url, struct writer *w)
{
	zrpc_client                 *client;
	Zos__V1__StartSessionRequest req =
	    ZOS__V1__START_SESSION_REQUEST__INIT;
	zrpc_call_opts o = { .timeout_ms = 5000 };

	cr_assert_eq(zrpc_client_open(&client, url, NULL).code, ZRPC_OK);
	req.problem_id = "crash";
	for (int i = 0; i < WRITERS; i++) {
		Zos__V1__ProofSession *s = NULL;

		cr_assert_eq(
		    zos_v1_session_start(client, &req, &s, &o).code, ZRPC_OK);
		snprintf(w[i].id, sizeof(w[i].id), "%s", s->id);
		w[i].version = s->version;
		w[i].state   = s->state;
		zos__v1__proof_session__free_unpacked(s, NULL);
	}
	zrpc_client_close(client);
}

/* A failed assertion ends a test before its stops: reap what it left. */
TestSuite(crash, .fini = proc_kill_left);

Test(crash, every_acknowledged_change_survives_kill_9, .timeout = 3600)
{
	const char   *env    = getenv("ZOS_CRASH_CYCLES");
	int           cycles = env != NULL ? atoi(env) : 20;
	char          dir[]  = "/tmp/zos-crash-XXXXXX";
	char          url[128], cmd[160];
	struct writer w[WRITERS];
	pthread_t     threads[WRITERS];
	atomic_uint   acks;
	uint64_t      acked_skills = 0;
	unsigned      seed         = (unsigned) getpid();
	struct proc   p;

	cr_assert_not_null(mkdtemp(dir));
	snprintf(url, sizeof(url), "ipc://%s/zosd.sock", dir);
	memset(w, 0, sizeof(w));
	start_zosd(&p, dir, url);
	start_sessions(url, w);

	for (int cycle = 0; cycle < cycles; cycle++) {
		/* Kill after 1..400 acknowledged changes this cycle. */
		unsigned target = 1 + (unsigned) rand_r(&seed) % 400;

		atomic_store(&acks, 0);
		for (int i = 0; i < WRITERS; i++) {
			w[i].url   = url;
			w[i].index = i;
			w[i].acks  = &acks;
			atomic_store(&w[i].stop, false);
			cr_assert_eq(pthread_create(&threads[i], NULL,
			                 writer_main, &w[i]),
			    0);
		}
		for (int i = 0; i < 20000 && atomic_load(&acks) < target;
		     i++) {
			usleep(500); /* bounded poll of the writers' count */
		}
		if (atomic_load(&acks) < target) {
			/* Say why: the writers' own failures, once they
			 * are joined (each call is bounded by its
			 * timeout), and zosd's output. */
			char   why[WRITERS * (ZRPC_STATUS_MESSAGE_MAX + 96)];
			size_t len = 0;

			why[0] = '\0';
			for (int i = 0; i < WRITERS; i++) {
				atomic_store(&w[i].stop, true);
				pthread_join(threads[i], NULL);
				if (len < sizeof(why)) {
					len += (size_t) snprintf(why + len,
					    sizeof(why) - len,
					    "writer %d: %s\n", i,
					    w[i].failure[0] != '\0'
					        ? w[i].failure
					        : "no failure");
				}
			}
			cr_assert_fail("cycle %d: writers made %u of %u "
			               "changes:\n%szosd:\n%s",
			    cycle, atomic_load(&acks), target, why, p.text);
		}
		proc_kill9(&p);
		for (int i = 0; i < WRITERS; i++) {
			atomic_store(&w[i].stop, true);
			pthread_join(threads[i], NULL);
			if (w[i].skills_version > acked_skills) {
				acked_skills = w[i].skills_version;
			}
		}
		start_zosd(&p, dir, url);
		check_acknowledged(url, w, acked_skills);
		if (getenv("ZOS_CRASH_PROGRESS") != NULL) {
			fprintf(stderr,
			    "crash-test: cycle %d/%d: %u changes "
			    "acknowledged before kill -9, all "
			    "found after restart\n",
			    cycle + 1, cycles, atomic_load(&acks));
		}
	}
	kill(p.pid, SIGTERM);
	cr_assert_eq(proc_wait(&p), 0, "%s", p.text);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}
