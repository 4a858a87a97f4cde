/*
 * Stress for the session table's change tracking (sessions.h,
 * "Durability"), built to run under ThreadSanitizer (a plain program).
 * Four writers start, move and reset sessions while a "store" thread
 * takes their changes over and over and, at random, either commits them
 * (zos_sessions_changes_durable) or fails (zos_sessions_changes_failed),
 * keeping a model of what the store holds: the rows of every commit,
 * applied in order. Only that thread changes what readers see, so
 * between two of its own steps, readers must see exactly the model:
 *   - every session of the model is found by Get with the model's value
 *     (state, version, times, owner);
 *   - List's total and its walk hold the model's sessions and nothing
 *     else (no session that was never committed, none that was undone);
 *   - after a failure, the writers' view (get_latest) equals the model
 *     too for every session in it, and a session taken in the failed
 *     commit but never committed is gone.
 * Exit status 0 when every check held.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sessions.h"

#define WRITERS 4
#define ROUNDS 400
#define MAX_SESSIONS 4000
#define FAIL_ONE_IN 4

struct shared {
	struct zos_sessions *s;
	atomic_bool          stop;
	atomic_bool          broken;
	atomic_uint          changes;
	/* Writers hold it (read) for each change; the store thread (write)
	 * to look at the latest values with no change under way. */
	pthread_rwlock_t pause;
	/* Ids the writers made, for them to pick from (append only). */
	pthread_mutex_t mu;
	char (*ids)[ZOS_SESSION_ID_LEN + 1];
	size_t n_ids;
};

/* The store's model: what was committed, by id. Only the store thread
 * touches it. */
struct model {
	struct zos_session *rows;
	size_t              count;
};

static void
stress_fail(struct shared *sh, const char *what, const char *id)
{
	fprintf(stderr, "FAIL: %s (%s)\n", what, id);
	atomic_store(&sh->broken, true);
}

static int
model_compare(const void *a, const void *b)
{
	return strcmp(((const struct zos_session *) a)->id,
	    ((const struct zos_session *) b)->id);
}

/* The model's row of ID (the rows are sorted by id), or NULL. */
static struct zos_session *
model_find(struct model *m, const char *id)
{
	struct zos_session key;

	snprintf(key.id, sizeof(key.id), "%s", id);
	return bsearch(
	    &key, m->rows, m->count, sizeof(*m->rows), model_compare);
}

static void
model_apply(struct model *m, const struct zos_sessions_changes *c)
{
	size_t sorted = m->count, kept = 0;

	for (size_t i = 0; i < c->count; i++) {
		const struct zos_session_change *r = &c->rows[i];
		struct zos_session              *e = bsearch(
		                 &r->s, m->rows, sorted, sizeof(*m->rows), model_compare);

		if (r->removed) {
			if (e != NULL) {
				e->id[0] = '\0'; /* dropped below */
			}
		} else if (e != NULL) {
			*e = r->s;
		} else {
			m->rows[m->count++] = r->s;
		}
	}
	for (size_t i = 0; i < m->count; i++) {
		if (m->rows[i].id[0] != '\0') {
			m->rows[kept++] = m->rows[i];
		}
	}
	m->count = kept;
	qsort(m->rows, m->count, sizeof(*m->rows), model_compare);
}

/* The fields a reader sees (change_seq is the writer's bookkeeping). */
static bool
same_session(const struct zos_session *a, const struct zos_session *b)
{
	return strcmp(a->id, b->id) == 0 &&
	    strcmp(a->problem_id, b->problem_id) == 0 &&
	    a->state == b->state && a->version == b->version &&
	    a->created_unix_ms == b->created_unix_ms &&
	    a->updated_unix_ms == b->updated_unix_ms && a->owner == b->owner;
}

/* Readers see exactly the model. LATEST: the writers' view too. */
static void
check_model(struct shared *sh, struct model *m, bool latest)
{
	struct zos_session_page page;
	char                    token[ZOS_SESSION_ID_LEN + 1] = "";
	size_t                  seen                          = 0;

	for (size_t i = 0; i < m->count; i++) {
		struct zos_session got;

		if (zos_sessions_get(sh->s, m->rows[i].id, &got) !=
		        ZOS_SESSION_OK ||
		    !same_session(&got, &m->rows[i])) {
			stress_fail(sh, "Get differs from what was committed",
			    m->rows[i].id);
		}
		if (latest &&
		    (zos_sessions_get_latest(sh->s, m->rows[i].id, &got) !=
		            ZOS_SESSION_OK ||
		        !same_session(&got, &m->rows[i]))) {
			stress_fail(sh,
			    "after a failure the latest value is "
			    "not the committed one",
			    m->rows[i].id);
		}
	}
	for (int pages = 0; pages < MAX_SESSIONS; pages++) {
		if (zos_sessions_list(sh->s, 1000, token, &page) !=
		    ZOS_SESSION_OK) {
			stress_fail(sh, "List failed", token);
			return;
		}
		if (page.total != m->count) {
			stress_fail(
			    sh, "List's total is not the committed count", "");
		}
		for (size_t i = 0; i < page.count; i++) {
			struct zos_session *e =
			    model_find(m, page.sessions[i].id);
			if (e == NULL || !same_session(e, &page.sessions[i])) {
				stress_fail(sh,
				    "List shows what was not committed",
				    page.sessions[i].id);
			}
		}
		seen += page.count;
		snprintf(token, sizeof(token), "%s", page.next_page_token);
		zos_session_page_finish(&page);
		if (token[0] == '\0') {
			break;
		}
	}
	if (seen != m->count) {
		stress_fail(
		    sh, "a walk of List missed committed sessions", "");
	}
}

static void *
store_thread(void *arg)
{
	struct shared *sh  = arg;
	struct model   m   = { 0 };
	unsigned       rnd = 7;

	m.rows = calloc(MAX_SESSIONS, sizeof(*m.rows));
	for (int round = 0; round < ROUNDS && !atomic_load(&sh->broken);
	     round++) {
		struct zos_sessions_changes c;

		if (zos_sessions_take_changes(sh->s, &c) != ZOS_SESSION_OK) {
			stress_fail(sh, "take failed", "");
			break;
		}
		rnd = rnd * 1103515245u + 12345u;
		if ((rnd >> 16) % FAIL_ONE_IN == 0) {
			pthread_rwlock_wrlock(&sh->pause);
			(void) zos_sessions_changes_failed(sh->s, &c);
			check_model(sh, &m, true);
			pthread_rwlock_unlock(&sh->pause);
		} else {
			zos_sessions_changes_durable(sh->s, &c);
			model_apply(&m, &c);
			check_model(sh, &m, false);
		}
		zos_sessions_changes_finish(&c);
	}
	atomic_store(&sh->stop, true);
	free(m.rows);
	return NULL;
}

static void *
writer_thread(void *arg)
{
	struct shared *sh  = arg;
	unsigned       rnd = (unsigned) (uintptr_t) &rnd;

	/* Bounded: the store thread's rounds end it, or this many moves. */
	for (int i = 0; i < 200000 && !atomic_load(&sh->stop); i++) {
		struct zos_session s;
		char               id[ZOS_SESSION_ID_LEN + 1] = "";
		unsigned           op;

		rnd = rnd * 1103515245u + 12345u;
		op  = (rnd >> 16) % 8;
		pthread_mutex_lock(&sh->mu);
		if (sh->n_ids > 0) {
			snprintf(id, sizeof(id), "%s",
			    sh->ids[(rnd >> 8) % sh->n_ids]);
		}
		pthread_mutex_unlock(&sh->mu);
		pthread_rwlock_rdlock(&sh->pause);
		if (op == 0 || id[0] == '\0') {
			if (zos_sessions_start(sh->s, "p", &s) ==
			    ZOS_SESSION_OK) {
				pthread_mutex_lock(&sh->mu);
				if (sh->n_ids < MAX_SESSIONS) {
					memcpy(sh->ids[sh->n_ids++], s.id,
					    sizeof(s.id));
				}
				pthread_mutex_unlock(&sh->mu);
				atomic_fetch_add(&sh->changes, 1);
			}
		} else if (op == 1) {
			if (zos_sessions_reset(sh->s, id, &s) ==
			    ZOS_SESSION_OK) {
				atomic_fetch_add(&sh->changes, 1);
			}
		} else {
			static const enum zos_proof_state to[] = {
				ZOS_PROOF_ANALYZING,
				ZOS_PROOF_FEEDBACK_READY,
				ZOS_PROOF_AWAITING_SOLUTION,
			};
			if (zos_sessions_transition(sh->s, id, to[op % 3], 0,
			        &s) == ZOS_SESSION_OK) {
				atomic_fetch_add(&sh->changes, 1);
			}
		}
		pthread_rwlock_unlock(&sh->pause);
	}
	return NULL;
}

int
main(void)
{
	struct zos_lock_domain domain;
	struct shared          sh = { 0 };
	pthread_t              store, writers[WRITERS];

	zos_lock_domain_init(&domain, true, NULL, NULL);
	if (zos_sessions_create(&sh.s, &domain, MAX_SESSIONS) !=
	    ZOS_SESSION_OK) {
		fprintf(stderr, "cannot create the table\n");
		return 1;
	}
	zos_sessions_track_changes(sh.s, true);
	pthread_mutex_init(&sh.mu, NULL);
	pthread_rwlock_init(&sh.pause, NULL);
	sh.ids = calloc(MAX_SESSIONS, sizeof(*sh.ids));
	for (int i = 0; i < WRITERS; i++) {
		pthread_create(&writers[i], NULL, writer_thread, &sh);
	}
	pthread_create(&store, NULL, store_thread, &sh);
	pthread_join(store, NULL);
	for (int i = 0; i < WRITERS; i++) {
		pthread_join(writers[i], NULL);
	}
	printf("durability: %u changes, %zu sessions, %d commits or "
	       "failures\n",
	    atomic_load(&sh.changes), sh.n_ids, ROUNDS);
	zos_sessions_destroy(sh.s);
	free(sh.ids);
	pthread_mutex_destroy(&sh.mu);
	pthread_rwlock_destroy(&sh.pause);
	if (atomic_load(&sh.broken)) {
		fprintf(stderr, "stress-durability: FAILED\n");
		return 1;
	}
	printf("stress-durability: readers saw exactly what was committed\n");
	return 0;
}
