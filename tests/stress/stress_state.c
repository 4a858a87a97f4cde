/*
 * Stress for the zOS state, built to run under ThreadSanitizer (a plain
 * program). 16 threads mix every operation of the four parts for a fixed
 * number of iterations, taking locks in rank order where one operation
 * spans two parts; then the invariants are checked:
 *   - skill attempts equal the updates acknowledged;
 *   - a session's version as any thread saw it only grew, and the final
 *     version is 1 + the transitions and resets acknowledged;
 *   - the cache never held more than its capacity;
 *   - routing counts equal the outcomes recorded.
 * Exit status 0 when every invariant held.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state.h"

#define THREADS 16
#define ITERATIONS 2000
#define SESSIONS 4
#define CAPACITY 8

struct shared {
	struct zos_state *state;
	char              ids[SESSIONS][ZOS_SESSION_ID_LEN + 1];
	atomic_uint       skill_updates;
	atomic_uint       session_changes[SESSIONS];
	atomic_uint       outcomes;
	atomic_uint       successes;
	atomic_uint       failures;
	atomic_bool       broken;
};

static void
stress_fail(struct shared *sh, const char *what)
{
	fprintf(stderr, "FAIL: %s\n", what);
	atomic_store(&sh->broken, true);
}

struct worker {
	struct shared *sh;
	unsigned       n;
};

static void *
stress_worker(void *arg)
{
	struct worker    *w              = arg;
	struct shared    *sh             = w->sh;
	struct zos_state *st             = sh->state;
	uint64_t          seen[SESSIONS] = { 0 };
	unsigned          seed           = w->n * 2654435761u + 1;
	char              key[32], error[128];

	for (unsigned i = 0; i < ITERATIONS; i++) {
		unsigned r = (seed = seed * 1103515245u + 12345u) >> 8;
		unsigned k = r % SESSIONS;
		struct zos_session          s;
		struct zos_skill_delta      d = { "induction", 0.01 };
		struct zos_skill_vector    *v;
		struct zos_cached_response *hit;
		struct zos_cache_stats      cs;

		switch (r % 7) {
		case 0:
			if (zos_skills_update(&st->skills, &d, 1, 0, NULL,
			        error, sizeof(error)) == ZOS_SKILLS_OK) {
				atomic_fetch_add(&sh->skill_updates, 1);
			}
			break;
		case 1:
			v = zos_skills_get(&st->skills);
			zos_skill_vector_unref(v);
			break;
		case 2: {
			/* Transition along the cycle from whatever it is. */
			static const enum zos_proof_state next[] = {
				[ZOS_PROOF_AWAITING_SOLUTION] =
				    ZOS_PROOF_ANALYZING,
				[ZOS_PROOF_ANALYZING] =
				    ZOS_PROOF_FEEDBACK_READY,
				[ZOS_PROOF_FEEDBACK_READY] =
				    ZOS_PROOF_AWAITING_SOLUTION,
			};
			if (zos_sessions_get(st->sessions, sh->ids[k], &s) !=
			        ZOS_SESSION_OK ||
			    s.state < ZOS_PROOF_AWAITING_SOLUTION ||
			    s.state > ZOS_PROOF_FEEDBACK_READY) {
				break;
			}
			if (zos_sessions_transition(st->sessions, sh->ids[k],
			        next[s.state], s.version,
			        &s) == ZOS_SESSION_OK) {
				atomic_fetch_add(&sh->session_changes[k], 1);
			}
			break;
		}
		case 3:
			if (zos_sessions_get(st->sessions, sh->ids[k], &s) ==
			    ZOS_SESSION_OK) {
				if (s.version < seen[k]) {
					stress_fail(sh,
					    "a session version went "
					    "back");
				}
				seen[k] = s.version;
			}
			break;
		case 4:
			snprintf(key, sizeof(key), "prompt-%u", r % 20);
			if ((hit = zos_cache_lookup(&st->cache, "m", key)) ==
			    NULL) {
				zos_cache_store(&st->cache, "m", key, key);
			} else {
				if (strcmp(hit->text, key) != 0) {
					stress_fail(sh,
					    "cache answered another "
					    "prompt");
				}
				zos_cache_response_unref(hit);
			}
			zos_cache_stats(&st->cache, &cs);
			if (cs.size > CAPACITY) {
				stress_fail(sh, "cache above capacity");
			}
			break;
		case 5: {
			bool ok = (r & 1) != 0;
			if (zos_routing_record_outcome(st->routing,
			        "builtin:echo", ok, 3,
			        false) == ZOS_ROUTING_OK) {
				atomic_fetch_add(&sh->outcomes, 1);
				atomic_fetch_add(
				    ok ? &sh->successes : &sh->failures, 1);
			}
			break;
		}
		default: {
			/* Two parts in rank order: sessions, then cache. */
			if (zos_sessions_get(st->sessions, sh->ids[k], &s) ==
			    ZOS_SESSION_OK) {
				zos_cache_store(&st->cache, "m", s.id, "x");
			}
			break;
		}
		}
		if (zos_locks_held_mask() != 0) {
			stress_fail(sh, "a lock was left held");
		}
	}
	return NULL;
}

int
main(void)
{
	struct zos_state_config config = { .cache_capacity = CAPACITY,
		.abort_on_violation                        = true };
	struct shared           sh;
	struct worker           w[THREADS];
	pthread_t               t[THREADS];
	char                    error[256];

	memset(&sh, 0, sizeof(sh));
	if ((sh.state = zos_state_create(&config, error, sizeof(error))) ==
	    NULL) {
		fprintf(stderr, "state: %s\n", error);
		return 1;
	}
	for (int k = 0; k < SESSIONS; k++) {
		struct zos_session s;
		if (zos_sessions_start(sh.state->sessions, "p", &s) !=
		    ZOS_SESSION_OK) {
			fprintf(stderr, "cannot start a session\n");
			return 1;
		}
		memcpy(sh.ids[k], s.id, sizeof(sh.ids[k]));
	}
	for (unsigned i = 0; i < THREADS; i++) {
		w[i] = (struct worker) { &sh, i };
		pthread_create(&t[i], NULL, stress_worker, &w[i]);
	}
	for (unsigned i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
	}

	struct zos_skill_vector *v = zos_skills_get(&sh.state->skills);
	for (size_t i = 0; i < v->n; i++) {
		if (strcmp(v->skills[i].name, "induction") == 0 &&
		    v->skills[i].attempts != atomic_load(&sh.skill_updates)) {
			stress_fail(&sh, "skill attempts differ from updates");
		}
	}
	if (v->version != atomic_load(&sh.skill_updates)) {
		stress_fail(&sh, "skill version differs from updates");
	}
	zos_skill_vector_unref(v);
	for (int k = 0; k < SESSIONS; k++) {
		struct zos_session s;
		zos_sessions_get(sh.state->sessions, sh.ids[k], &s);
		if (s.version != 1 + atomic_load(&sh.session_changes[k])) {
			stress_fail(
			    &sh, "session version differs from changes");
		}
	}
	struct zos_model_metrics *m = NULL;
	size_t                    n = 0;
	zos_routing_get_metrics(sh.state->routing, &m, &n);
	if (n != 1 || m[0].success_count != atomic_load(&sh.successes) ||
	    m[0].failure_count != atomic_load(&sh.failures) ||
	    m[0].total_latency_ms != 3ull * atomic_load(&sh.outcomes)) {
		stress_fail(&sh, "routing counts differ from outcomes");
	}
	free(m);
	printf("state: %u skill updates, %u outcomes, sessions %u/%u/%u/%u "
	       "changes\n",
	    atomic_load(&sh.skill_updates), atomic_load(&sh.outcomes),
	    atomic_load(&sh.session_changes[0]),
	    atomic_load(&sh.session_changes[1]),
	    atomic_load(&sh.session_changes[2]),
	    atomic_load(&sh.session_changes[3]));
	zos_state_destroy(sh.state);
	bool broken = atomic_load(&sh.broken);
	printf(broken ? "stress-state: FAILED\n"
	              : "stress-state: all invariants held\n");
	return broken ? 1 : 0;
}
