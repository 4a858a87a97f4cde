/*
 * Stress for the session table's lifecycle, built to run under
 * ThreadSanitizer (a plain program): 8 threads start sessions for three
 * owners (under a per-owner cap), move them, finish them, read and list
 * them, while one thread moves a fake clock forward and sweeps expired
 * sessions. Removal, slot reuse, the finished list and the owners' counts
 * all change under the threads' feet. Then, quiescent, the invariants:
 *   - count_by_state's total equals the sessions a snapshot holds, and a
 *     walk of List from "" visits each of them exactly once;
 *   - every session in the snapshot is found by Get with the same
 *     version; none is finished and expired after a full sweep;
 *   - no owner holds more than the cap;
 *   - a start that was refused for the cap or a full table was refused
 *     while that really was so (checked as it happens: the table never
 *     holds more than its bound).
 * Exit status 0 when every invariant held.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sessions.h"

#define THREADS 8
#define ITERATIONS 4000
#define MAX_SESSIONS 700
#define PER_OWNER 40
#define OWNERS 3
#define TTL_MS 1000

struct shared {
	struct zos_sessions *s;
	atomic_llong         now; /* the fake clock, ms */
	atomic_bool          stop;
	atomic_bool          broken;
	atomic_uint          started;
	atomic_uint          owner_refusals;
	atomic_uint          full_refusals;
};

static void
stress_fail(struct shared *sh, const char *what)
{
	fprintf(stderr, "FAIL: %s\n", what);
	atomic_store(&sh->broken, true);
}

static int64_t
stress_clock(void *arg)
{
	struct shared *sh = arg;

	return atomic_load(&sh->now);
}

struct worker {
	struct shared *sh;
	unsigned       n;
};

static void *
stress_worker(void *arg)
{
	struct worker *w    = arg;
	struct shared *sh   = w->sh;
	unsigned       seed = w->n * 2654435761u + 7;
	char           ids[16][ZOS_SESSION_ID_LEN + 1];
	size_t         n_ids = 0;

	memset(ids, 0, sizeof(ids));
	for (unsigned i = 0; i < ITERATIONS; i++) {
		unsigned r = (seed = seed * 1103515245u + 12345u) >> 8;
		struct zos_session      got;
		struct zos_session_page page;
		enum zos_session_code   code;
		const char             *id = ids[r % 16];

		atomic_fetch_add(&sh->now, 1); /* time passes as work does */
		switch (r % 6) {
		case 0:
		case 1:
			code = zos_sessions_start_owned(
			    sh->s, "p", (r >> 4) % OWNERS, &got);
			if (code == ZOS_SESSION_OK) {
				char *slot = ids[n_ids++ % 16];
				/* The one it replaces is given up: churn. */
				if (slot[0] != '\0') {
					(void) zos_sessions_transition(sh->s,
					    slot, ZOS_PROOF_ABANDONED, 0,
					    NULL);
				}
				memcpy(slot, got.id, sizeof(got.id));
				atomic_fetch_add(&sh->started, 1);
			} else if (code == ZOS_SESSION_OWNER_LIMIT) {
				atomic_fetch_add(&sh->owner_refusals, 1);
			} else if (code == ZOS_SESSION_RESOURCE_EXHAUSTED) {
				atomic_fetch_add(&sh->full_refusals, 1);
			} else {
				stress_fail(sh, "start failed");
			}
			break;
		case 2:
			if (id[0] != '\0') {
				(void) zos_sessions_transition(
				    sh->s, id, ZOS_PROOF_ABANDONED, 0, NULL);
			}
			break;
		case 3:
			if (id[0] != '\0') {
				code = zos_sessions_get(sh->s, id, &got);
				if (code == ZOS_SESSION_OK &&
				    strcmp(got.id, id) != 0) {
					stress_fail(sh, "get gave another id");
				}
			}
			break;
		case 4:
			if (id[0] != '\0' && (r >> 4) % 4 == 0) {
				(void) zos_sessions_reset(sh->s, id, NULL);
			} else if (id[0] != '\0') {
				(void) zos_sessions_transition(
				    sh->s, id, ZOS_PROOF_ANALYZING, 0, NULL);
			}
			break;
		default:
			if (zos_sessions_list(sh->s, 64, NULL, &page) ==
			    ZOS_SESSION_OK) {
				if (page.total > MAX_SESSIONS) {
					stress_fail(sh, "above the bound");
				}
				zos_session_page_finish(&page);
			}
			break;
		}
	}
	return NULL;
}

/* Moves the clock on and sweeps until the workers are done. */
static void *
stress_sweeper(void *arg)
{
	struct shared *sh = arg;

	while (!atomic_load(&sh->stop)) {
		atomic_fetch_add(&sh->now, 37);
		(void) zos_sessions_expire(sh->s, 16);
	}
	return NULL;
}

/* The quiescent checks; see the top of the file. */
static void
stress_check(struct shared *sh)
{
	struct zos_sessions_image image;
	uint64_t                  counts[ZOS_PROOF_STATE_COUNT];
	uint64_t                  owners[OWNERS]                = { 0 };
	char                      token[ZOS_SESSION_ID_LEN + 1] = "";
	size_t                    walked                        = 0;

	/* Everything finished expires, then the clock stands still. */
	atomic_fetch_add(&sh->now, 2 * TTL_MS);
	while (zos_sessions_expire(sh->s, 0) > 0) { }
	if (zos_sessions_snapshot(sh->s, &image) != ZOS_SESSION_OK) {
		stress_fail(sh, "snapshot");
		return;
	}
	if (zos_sessions_count_by_state(sh->s, counts) != image.count) {
		stress_fail(sh, "count and snapshot differ");
	}
	if (counts[ZOS_PROOF_SOLVED] + counts[ZOS_PROOF_ABANDONED] != 0) {
		stress_fail(sh, "a finished session outlived its TTL");
	}
	for (size_t i = 0; i < image.count; i++) {
		struct zos_session got;

		if (zos_sessions_get(sh->s, image.sessions[i].id, &got) !=
		        ZOS_SESSION_OK ||
		    got.version != image.sessions[i].version) {
			stress_fail(sh, "a listed session is not found");
		}
		if (image.sessions[i].owner < OWNERS) {
			owners[image.sessions[i].owner]++;
		}
	}
	for (int o = 0; o < OWNERS; o++) {
		if (owners[o] > PER_OWNER) {
			stress_fail(sh, "an owner above the cap");
		}
	}
	for (int pages = 0; pages < 100; pages++) {
		struct zos_session_page page;

		if (zos_sessions_list(sh->s, 50, token, &page) !=
		    ZOS_SESSION_OK) {
			stress_fail(sh, "list");
			break;
		}
		walked += page.count;
		memcpy(token, page.next_page_token, sizeof(token));
		zos_session_page_finish(&page);
		if (token[0] == '\0') {
			break;
		}
	}
	if (walked != image.count) {
		stress_fail(sh, "a walk of List missed or repeated sessions");
	}
	printf("sessions: %u started, %zu left, refused %u for the cap and "
	       "%u for a full table\n",
	    atomic_load(&sh->started), image.count,
	    atomic_load(&sh->owner_refusals), atomic_load(&sh->full_refusals));
	zos_sessions_image_finish(&image);
}

int
main(void)
{
	struct zos_lock_domain domain;
	struct shared          sh = { 0 };
	struct worker          workers[THREADS];
	pthread_t              tid[THREADS], sweeper;

	zos_lock_domain_init(&domain, true, NULL, NULL);
	atomic_init(&sh.now, 1700000000000LL);
	if (zos_sessions_create(&sh.s, &domain, MAX_SESSIONS) !=
	        ZOS_SESSION_OK ||
	    zos_sessions_configure(sh.s, TTL_MS, PER_OWNER, stress_clock,
	        &sh) != ZOS_SESSION_OK) {
		fprintf(stderr, "cannot create the table\n");
		return 1;
	}
	pthread_create(&sweeper, NULL, stress_sweeper, &sh);
	for (unsigned i = 0; i < THREADS; i++) {
		workers[i] = (struct worker) { .sh = &sh, .n = i };
		pthread_create(&tid[i], NULL, stress_worker, &workers[i]);
	}
	for (unsigned i = 0; i < THREADS; i++) {
		pthread_join(tid[i], NULL);
	}
	atomic_store(&sh.stop, true);
	pthread_join(sweeper, NULL);
	stress_check(&sh);
	zos_sessions_destroy(sh.s);
	return atomic_load(&sh.broken) ? 1 : 0;
}
