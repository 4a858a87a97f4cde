/*
 * Tests for the proof session table (zos/state/sessions.c).
 */
#include <criterion/criterion.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "sessions.h"

struct sessions_fixture {
	struct zos_lock_domain domain;
	struct zos_sessions   *s;
};

static void
sessions_fixture_init(struct sessions_fixture *f, size_t max)
{
	zos_lock_domain_init(&f->domain, true, NULL, NULL);
	cr_assert_eq(
	    zos_sessions_create(&f->s, &f->domain, max), ZOS_SESSION_OK);
}

static void
sessions_fixture_fini(struct sessions_fixture *f)
{
	cr_assert_eq(zos_locks_held_mask(), 0u);
	zos_sessions_destroy(f->s);
}

static const enum zos_proof_state all_states[] = {
	ZOS_PROOF_AWAITING_SOLUTION,
	ZOS_PROOF_ANALYZING,
	ZOS_PROOF_FEEDBACK_READY,
	ZOS_PROOF_SOLVED,
	ZOS_PROOF_ABANDONED,
};

/* Reference legality table, written independently of the code. */
static bool
expected_legal(enum zos_proof_state from, enum zos_proof_state to)
{
	static const bool legal[6][6] = {
		[ZOS_PROOF_AWAITING_SOLUTION] = { [ZOS_PROOF_ANALYZING] = true,
		    [ZOS_PROOF_ABANDONED] = true },
		[ZOS_PROOF_ANALYZING] = { [ZOS_PROOF_FEEDBACK_READY] = true,
		    [ZOS_PROOF_ABANDONED]                            = true },
		[ZOS_PROOF_FEEDBACK_READY] = { [ZOS_PROOF_AWAITING_SOLUTION] =
		                                   true,
		    [ZOS_PROOF_SOLVED]    = true,
		    [ZOS_PROOF_ABANDONED] = true },
	};
	return legal[from][to];
}

/* Brings a fresh session (AWAITING_SOLUTION) to STATE by a legal path. */
static void
drive_to(struct zos_sessions *s, const char *id, enum zos_proof_state state)
{
	static const enum zos_proof_state path_solved[] = {
		ZOS_PROOF_ANALYZING, ZOS_PROOF_FEEDBACK_READY, ZOS_PROOF_SOLVED
	};
	size_t steps = 0;

	switch (state) {
	case ZOS_PROOF_AWAITING_SOLUTION:
		steps = 0;
		break;
	case ZOS_PROOF_ANALYZING:
		steps = 1;
		break;
	case ZOS_PROOF_FEEDBACK_READY:
		steps = 2;
		break;
	case ZOS_PROOF_SOLVED:
		steps = 3;
		break;
	case ZOS_PROOF_ABANDONED:
		cr_assert_eq(zos_sessions_transition(
		                 s, id, ZOS_PROOF_ABANDONED, 0, NULL),
		    ZOS_SESSION_OK);
		return;
	default:
		cr_assert_fail("no such state");
	}
	for (size_t i = 0; i < steps; i++) {
		cr_assert_eq(
		    zos_sessions_transition(s, id, path_solved[i], 0, NULL),
		    ZOS_SESSION_OK);
	}
}

Test(sessions, start_gives_awaiting_solution_version_one)
{
	struct sessions_fixture f;
	struct zos_session      a, b, got;

	sessions_fixture_init(&f, 0);
	cr_assert_eq(zos_sessions_start(f.s, "p-1", &a), ZOS_SESSION_OK);
	cr_assert_eq(zos_sessions_start(f.s, "p-1", &b), ZOS_SESSION_OK);
	cr_assert_str_eq(a.problem_id, "p-1");
	cr_assert_eq(a.state, ZOS_PROOF_AWAITING_SOLUTION);
	cr_assert_eq(a.version, 1);
	cr_assert_gt(a.created_unix_ms, 1600000000000);
	cr_assert_eq(a.updated_unix_ms, a.created_unix_ms);
	/* No node id set: the plain shape of earlier versions. */
	cr_assert_eq(strlen(a.id), ZOS_SESSION_HEX_LEN);
	cr_assert(zos_session_id_valid(a.id));
	cr_assert_not(zos_session_id_node(a.id, NULL));
	cr_assert_str_neq(a.id, b.id);
	cr_assert_eq(zos_sessions_get(f.s, a.id, &got), ZOS_SESSION_OK);
	cr_assert_eq(memcmp(&got, &a, sizeof(a)), 0);
	sessions_fixture_fini(&f);
}

Test(sessions, ids_are_unique_across_many_sessions)
{
	struct sessions_fixture f;
	enum { N = 3000 };
	static char        ids[N][ZOS_SESSION_ID_LEN + 1];
	struct zos_session sess;

	sessions_fixture_init(&f, N);
	for (int i = 0; i < N; i++) {
		cr_assert_eq(
		    zos_sessions_start(f.s, "p", &sess), ZOS_SESSION_OK);
		memcpy(ids[i], sess.id, sizeof(ids[i]));
	}
	qsort(ids, N, sizeof(ids[0]),
	    (int (*)(const void *, const void *)) strcmp);
	for (int i = 1; i < N; i++) {
		cr_assert_str_neq(ids[i - 1], ids[i]);
	}
	sessions_fixture_fini(&f);
}

Test(sessions, problem_id_is_bounded_and_not_empty)
{
	struct sessions_fixture f;
	struct zos_session      sess;
	char                    id[ZOS_SESSION_PROBLEM_ID_MAX + 2];

	sessions_fixture_init(&f, 0);
	memset(id, 'x', sizeof(id) - 1);
	id[sizeof(id) - 1] = '\0';
	cr_assert_eq(
	    zos_sessions_start(f.s, id, &sess), ZOS_SESSION_INVALID_ARGUMENT);
	id[ZOS_SESSION_PROBLEM_ID_MAX] = '\0';
	cr_assert_eq(zos_sessions_start(f.s, id, &sess), ZOS_SESSION_OK);
	cr_assert_str_eq(sess.problem_id, id);
	cr_assert_eq(
	    zos_sessions_start(f.s, "", &sess), ZOS_SESSION_INVALID_ARGUMENT);
	cr_assert_eq(zos_sessions_start(f.s, NULL, &sess),
	    ZOS_SESSION_INVALID_ARGUMENT);
	sessions_fixture_fini(&f);
}

Test(sessions, every_transition_is_legal_or_illegal_as_specified)
{
	struct sessions_fixture f;
	struct zos_session      sess, before, after;

	sessions_fixture_init(&f, 0);
	for (size_t i = 0; i < 5; i++) {
		for (size_t j = 0; j < 5; j++) {
			enum zos_proof_state from  = all_states[i];
			enum zos_proof_state to    = all_states[j];
			bool                 legal = expected_legal(from, to);

			cr_assert_eq(zos_proof_transition_allowed(from, to),
			    legal, "%s -> %s", zos_proof_state_name(from),
			    zos_proof_state_name(to));
			cr_assert_eq(zos_sessions_start(f.s, "p", &sess),
			    ZOS_SESSION_OK);
			drive_to(f.s, sess.id, from);
			cr_assert_eq(zos_sessions_get(f.s, sess.id, &before),
			    ZOS_SESSION_OK);
			cr_assert_eq(before.state, from);
			enum zos_session_code rv = zos_sessions_transition(
			    f.s, sess.id, to, before.version, &after);
			cr_assert_eq(rv,
			    legal ? ZOS_SESSION_OK
			          : ZOS_SESSION_FAILED_PRECONDITION,
			    "%s -> %s gave %d", zos_proof_state_name(from),
			    zos_proof_state_name(to), rv);
			cr_assert_eq(after.state, legal ? to : from);
			cr_assert_eq(
			    after.version, before.version + (legal ? 1 : 0));
			cr_assert_geq(
			    after.updated_unix_ms, before.updated_unix_ms);
			cr_assert_eq(zos_sessions_get(f.s, sess.id, &sess),
			    ZOS_SESSION_OK);
			cr_assert_eq(memcmp(&sess, &after, sizeof(sess)), 0);
		}
	}
	sessions_fixture_fini(&f);
}

Test(sessions, unspecified_or_unknown_target_state_is_invalid_argument)
{
	struct sessions_fixture f;
	struct zos_session      sess;

	sessions_fixture_init(&f, 0);
	cr_assert_eq(zos_sessions_start(f.s, "p", &sess), ZOS_SESSION_OK);
	cr_assert_eq(zos_sessions_transition(
	                 f.s, sess.id, ZOS_PROOF_STATE_UNSPECIFIED, 0, NULL),
	    ZOS_SESSION_INVALID_ARGUMENT);
	cr_assert_eq(zos_sessions_transition(
	                 f.s, sess.id, (enum zos_proof_state) 6, 0, NULL),
	    ZOS_SESSION_INVALID_ARGUMENT);
	cr_assert_eq(zos_sessions_get(f.s, sess.id, &sess), ZOS_SESSION_OK);
	cr_assert_eq(sess.version, 1);
	sessions_fixture_fini(&f);
}

Test(sessions, versions_grow_by_one_per_change_and_never_otherwise)
{
	struct sessions_fixture f;
	struct zos_session      sess, out;
	uint64_t                v = 1;

	sessions_fixture_init(&f, 0);
	cr_assert_eq(zos_sessions_start(f.s, "p", &sess), ZOS_SESSION_OK);
	for (int round = 0; round < 10; round++) {
		cr_assert_eq(zos_sessions_transition(
		                 f.s, sess.id, ZOS_PROOF_ANALYZING, v, &out),
		    ZOS_SESSION_OK);
		cr_assert_eq(out.version, ++v);
		/* Illegal, stale and read-only calls change nothing. */
		cr_assert_eq(zos_sessions_transition(
		                 f.s, sess.id, ZOS_PROOF_SOLVED, 0, &out),
		    ZOS_SESSION_FAILED_PRECONDITION);
		cr_assert_eq(zos_sessions_transition(f.s, sess.id,
		                 ZOS_PROOF_FEEDBACK_READY, v - 1, &out),
		    ZOS_SESSION_ABORTED);
		cr_assert_eq(
		    zos_sessions_get(f.s, sess.id, &out), ZOS_SESSION_OK);
		cr_assert_eq(out.version, v);
		cr_assert_eq(zos_sessions_transition(f.s, sess.id,
		                 ZOS_PROOF_FEEDBACK_READY, 0, &out),
		    ZOS_SESSION_OK);
		cr_assert_eq(out.version, ++v);
		cr_assert_eq(zos_sessions_transition(f.s, sess.id,
		                 ZOS_PROOF_AWAITING_SOLUTION, v, &out),
		    ZOS_SESSION_OK);
		cr_assert_eq(out.version, ++v);
	}
	cr_assert_eq(v, 31);
	sessions_fixture_fini(&f);
}

Test(sessions, stale_expected_version_is_aborted_and_returns_current)
{
	struct sessions_fixture f;
	struct zos_session      sess, out;

	sessions_fixture_init(&f, 0);
	cr_assert_eq(zos_sessions_start(f.s, "p", &sess), ZOS_SESSION_OK);
	cr_assert_eq(zos_sessions_transition(
	                 f.s, sess.id, ZOS_PROOF_ANALYZING, 1, NULL),
	    ZOS_SESSION_OK);
	/* Version 1 is stale now; 3 is from the future. */
	cr_assert_eq(zos_sessions_transition(
	                 f.s, sess.id, ZOS_PROOF_FEEDBACK_READY, 1, &out),
	    ZOS_SESSION_ABORTED);
	cr_assert_eq(out.version, 2);
	cr_assert_eq(out.state, ZOS_PROOF_ANALYZING);
	cr_assert_eq(zos_sessions_transition(
	                 f.s, sess.id, ZOS_PROOF_FEEDBACK_READY, 3, &out),
	    ZOS_SESSION_ABORTED);
	/* Staleness is reported even for a move that is also illegal. */
	cr_assert_eq(
	    zos_sessions_transition(f.s, sess.id, ZOS_PROOF_SOLVED, 1, &out),
	    ZOS_SESSION_ABORTED);
	cr_assert_eq(zos_sessions_transition(
	                 f.s, sess.id, ZOS_PROOF_FEEDBACK_READY, 2, &out),
	    ZOS_SESSION_OK);
	cr_assert_eq(out.version, 3);
	sessions_fixture_fini(&f);
}

Test(sessions, unknown_id_is_not_found)
{
	struct sessions_fixture f;
	struct zos_session      sess, out;
	char                    other[ZOS_SESSION_ID_LEN + 1];

	sessions_fixture_init(&f, 0);
	cr_assert_eq(zos_sessions_start(f.s, "p", &sess), ZOS_SESSION_OK);
	memcpy(other, sess.id, sizeof(other));
	other[0]          = other[0] == '0' ? '1' : '0';
	const char *bad[] = { other, "", "nope", "0123456789abcdef0",
		"0123456789ABCDEF" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(zos_sessions_get(f.s, bad[i], &out),
		    ZOS_SESSION_NOT_FOUND);
		cr_assert_eq(zos_sessions_transition(
		                 f.s, bad[i], ZOS_PROOF_ANALYZING, 0, &out),
		    ZOS_SESSION_NOT_FOUND);
		cr_assert_eq(zos_sessions_reset(f.s, bad[i], &out),
		    ZOS_SESSION_NOT_FOUND);
	}
	cr_assert_eq(zos_sessions_get(f.s, NULL, &out), ZOS_SESSION_NOT_FOUND);
	sessions_fixture_fini(&f);
}

Test(sessions, reset_returns_to_awaiting_solution_from_every_state)
{
	struct sessions_fixture f;
	struct zos_session      sess, before, out;

	sessions_fixture_init(&f, 0);
	for (size_t i = 0; i < 5; i++) {
		cr_assert_eq(
		    zos_sessions_start(f.s, "p", &sess), ZOS_SESSION_OK);
		drive_to(f.s, sess.id, all_states[i]);
		cr_assert_eq(
		    zos_sessions_get(f.s, sess.id, &before), ZOS_SESSION_OK);
		cr_assert_eq(
		    zos_sessions_reset(f.s, sess.id, &out), ZOS_SESSION_OK);
		cr_assert_eq(out.state, ZOS_PROOF_AWAITING_SOLUTION);
		cr_assert_eq(out.version, before.version + 1);
		cr_assert_geq(out.updated_unix_ms, before.updated_unix_ms);
		cr_assert_eq(out.created_unix_ms, before.created_unix_ms);
	}
	sessions_fixture_fini(&f);
}

Test(sessions, start_at_max_sessions_is_resource_exhausted)
{
	struct sessions_fixture f;
	struct zos_session      sess;
	uint64_t                counts[ZOS_PROOF_STATE_COUNT];

	sessions_fixture_init(&f, 5);
	for (int i = 0; i < 5; i++) {
		cr_assert_eq(
		    zos_sessions_start(f.s, "p", &sess), ZOS_SESSION_OK);
	}
	cr_assert_eq(zos_sessions_start(f.s, "p", &sess),
	    ZOS_SESSION_RESOURCE_EXHAUSTED);
	cr_assert_eq(zos_sessions_count_by_state(f.s, counts), 5);
	sessions_fixture_fini(&f);
}

Test(sessions, create_rejects_a_bound_above_the_limit)
{
	struct zos_lock_domain domain;
	struct zos_sessions   *s = NULL;

	zos_lock_domain_init(&domain, true, NULL, NULL);
	cr_assert_eq(zos_sessions_create(
	                 &s, &domain, (size_t) ZOS_SESSIONS_LIMIT_MAX + 1),
	    ZOS_SESSION_INVALID_ARGUMENT);
	cr_assert_null(s);
	zos_sessions_destroy(NULL);
}

Test(sessions, paging_visits_each_session_once_in_creation_order)
{
	struct sessions_fixture f;
	enum { N = 237 };
	static struct zos_session made[N];
	struct zos_session_page   page;
	char                      token[ZOS_SESSION_ID_LEN + 1] = "";
	size_t                    seen                          = 0;
	char                      problem[32];

	sessions_fixture_init(&f, 0);
	for (int i = 0; i < N; i++) {
		snprintf(problem, sizeof(problem), "p%d", i);
		cr_assert_eq(zos_sessions_start(f.s, problem, &made[i]),
		    ZOS_SESSION_OK);
	}
	for (int pages = 0;; pages++) {
		cr_assert_lt(pages, 100);
		cr_assert_eq(
		    zos_sessions_list(f.s, 10, token, &page), ZOS_SESSION_OK);
		cr_assert_eq(page.total, N);
		for (size_t i = 0; i < page.count; i++) {
			cr_assert_lt(seen, N);
			cr_assert_str_eq(page.sessions[i].id, made[seen].id);
			cr_assert_str_eq(page.sessions[i].problem_id,
			    made[seen].problem_id);
			seen++;
		}
		if (page.next_page_token[0] == '\0') {
			cr_assert_eq(page.count, N % 10);
			zos_session_page_finish(&page);
			break;
		}
		cr_assert_eq(page.count, 10);
		/* The same token gives the same page (stable). */
		struct zos_session_page again;
		cr_assert_eq(
		    zos_sessions_list(f.s, 10, token, &again), ZOS_SESSION_OK);
		cr_assert_str_eq(again.next_page_token, page.next_page_token);
		cr_assert_eq(again.count, page.count);
		cr_assert_str_eq(again.sessions[0].id, page.sessions[0].id);
		zos_session_page_finish(&again);
		memcpy(token, page.next_page_token, sizeof(token));
		zos_session_page_finish(&page);
	}
	cr_assert_eq(seen, N);
	sessions_fixture_fini(&f);
}

Test(sessions, page_size_defaults_to_50_and_caps_at_1000)
{
	struct sessions_fixture f;
	struct zos_session      sess;
	struct zos_session_page page;

	sessions_fixture_init(&f, 0);
	for (int i = 0; i < 1100; i++) {
		cr_assert_eq(
		    zos_sessions_start(f.s, "p", &sess), ZOS_SESSION_OK);
	}
	cr_assert_eq(zos_sessions_list(f.s, 0, NULL, &page), ZOS_SESSION_OK);
	cr_assert_eq(page.count, 50);
	cr_assert_eq(page.total, 1100);
	zos_session_page_finish(&page);
	cr_assert_eq(zos_sessions_list(f.s, 5000, "", &page), ZOS_SESSION_OK);
	cr_assert_eq(page.count, 1000);
	cr_assert_str_neq(page.next_page_token, "");
	zos_session_page_finish(&page);
	sessions_fixture_fini(&f);
}

Test(sessions, list_of_an_empty_table_is_one_empty_page)
{
	struct sessions_fixture f;
	struct zos_session_page page;

	sessions_fixture_init(&f, 0);
	cr_assert_eq(zos_sessions_list(f.s, 10, "", &page), ZOS_SESSION_OK);
	cr_assert_eq(page.count, 0);
	cr_assert_eq(page.total, 0);
	cr_assert_str_eq(page.next_page_token, "");
	zos_session_page_finish(&page);
	zos_session_page_finish(&page);
	sessions_fixture_fini(&f);
}

Test(sessions, garbage_page_token_is_invalid_argument)
{
	struct sessions_fixture f;
	struct zos_session      sess;
	struct zos_session_page page;
	char                    forged[ZOS_SESSION_ID_LEN + 1];

	sessions_fixture_init(&f, 0);
	cr_assert_eq(zos_sessions_start(f.s, "p", &sess), ZOS_SESSION_OK);
	memcpy(forged, sess.id, sizeof(forged));
	forged[3]         = forged[3] == 'a' ? 'b' : 'a';
	const char *bad[] = { "garbage", "12", forged, "0123456789abcdef00",
		"zzzzzzzzzzzzzzzz" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(zos_sessions_list(f.s, 10, bad[i], &page),
		    ZOS_SESSION_INVALID_ARGUMENT, "token %s", bad[i]);
		cr_assert_null(page.sessions);
		cr_assert_eq(page.count, 0);
	}
	/* A session's own id is a token: the page starting at it. */
	cr_assert_eq(
	    zos_sessions_list(f.s, 10, sess.id, &page), ZOS_SESSION_OK);
	cr_assert_eq(page.count, 1);
	zos_session_page_finish(&page);
	sessions_fixture_fini(&f);
}

Test(sessions, count_by_state_follows_every_change)
{
	struct sessions_fixture f;
	struct zos_session      a, b, c;
	uint64_t                counts[ZOS_PROOF_STATE_COUNT];

	sessions_fixture_init(&f, 0);
	cr_assert_eq(zos_sessions_start(f.s, "p", &a), ZOS_SESSION_OK);
	cr_assert_eq(zos_sessions_start(f.s, "p", &b), ZOS_SESSION_OK);
	cr_assert_eq(zos_sessions_start(f.s, "p", &c), ZOS_SESSION_OK);
	drive_to(f.s, a.id, ZOS_PROOF_SOLVED);
	drive_to(f.s, b.id, ZOS_PROOF_ABANDONED);
	cr_assert_eq(zos_sessions_count_by_state(f.s, counts), 3);
	cr_assert_eq(counts[ZOS_PROOF_STATE_UNSPECIFIED], 0);
	cr_assert_eq(counts[ZOS_PROOF_AWAITING_SOLUTION], 1);
	cr_assert_eq(counts[ZOS_PROOF_ANALYZING], 0);
	cr_assert_eq(counts[ZOS_PROOF_FEEDBACK_READY], 0);
	cr_assert_eq(counts[ZOS_PROOF_SOLVED], 1);
	cr_assert_eq(counts[ZOS_PROOF_ABANDONED], 1);
	cr_assert_eq(zos_sessions_reset(f.s, a.id, NULL), ZOS_SESSION_OK);
	zos_sessions_count_by_state(f.s, counts);
	cr_assert_eq(counts[ZOS_PROOF_AWAITING_SOLUTION], 2);
	cr_assert_eq(counts[ZOS_PROOF_SOLVED], 0);
	sessions_fixture_fini(&f);
}

Test(sessions, operations_leave_no_lock_held)
{
	struct sessions_fixture f;
	struct zos_session      sess;
	struct zos_session_page page;
	uint64_t                counts[ZOS_PROOF_STATE_COUNT];

	sessions_fixture_init(&f, 1);
	zos_sessions_start(f.s, "p", &sess);
	zos_sessions_start(f.s, "p", &sess); /* exhausted path */
	zos_sessions_get(f.s, "0000000000000000", &sess);
	zos_sessions_transition(f.s, sess.id, ZOS_PROOF_SOLVED, 0, NULL);
	zos_sessions_transition(f.s, sess.id, ZOS_PROOF_ANALYZING, 9, NULL);
	zos_sessions_reset(f.s, "0000000000000000", NULL);
	zos_sessions_list(f.s, 1, "0000000000000000", &page);
	zos_sessions_count_by_state(f.s, counts);
	cr_assert_eq(zos_locks_held_mask(), 0u);
	cr_assert_eq(atomic_load(&f.domain.violations), 0);
	cr_assert_gt(atomic_load(&zos_sessions_lock(f.s)->acquisitions), 0);
	sessions_fixture_fini(&f);
}

/* Holding the routing lock (rank 3) and then taking session_state (rank
 * 2) breaks the order: the validator aborts. */
Test(sessions, taking_session_state_after_a_higher_rank_aborts,
    .signal = SIGABRT)
{
	struct sessions_fixture f;
	struct zos_lock         higher;
	struct zos_session      sess;

	sessions_fixture_init(&f, 0);
	cr_assert_eq(zos_lock_init(&higher, ZOS_RANK_ROUTING_METRICS,
	                 "routing_metrics", &f.domain),
	    0);
	zos_lock_write(&higher);
	zos_sessions_start(f.s, "p", &sess);
	zos_unlock_write(&higher); /* not reached */
}

/* Concurrency: 16 threads move and read the same 4 sessions. */
enum { CONC_THREADS = 16, CONC_ITERS = 4000, CONC_SESSIONS = 4 };

struct conc_shared {
	struct zos_sessions *s;
	char                 ids[CONC_SESSIONS][ZOS_SESSION_ID_LEN + 1];
	atomic_uint_fast64_t accepted[CONC_SESSIONS];
	atomic_bool          failed;
};

struct conc_thread {
	struct conc_shared *shared;
	unsigned            seed;
};

static void *
conc_worker(void *arg)
{
	struct conc_thread *t                        = arg;
	struct conc_shared *sh                       = t->shared;
	uint64_t            last_seen[CONC_SESSIONS] = { 0 };
	unsigned            x                        = t->seed;

	for (int i = 0; i < CONC_ITERS; i++) {
		struct zos_session    out;
		enum zos_session_code rv;

		x          = x * 1103515245u + 12345u;
		size_t k   = (x >> 8) % CONC_SESSIONS;
		int    op  = (int) ((x >> 16) % 8);
		int    tov = (int) ((x >> 20) % 5) + 1;

		if (op == 0) {
			rv = zos_sessions_reset(sh->s, sh->ids[k], &out);
		} else if (op == 1) {
			rv = zos_sessions_get(sh->s, sh->ids[k], &out);
		} else {
			/* Half the time, with the version just read. */
			uint64_t expect = 0;
			if (op >= 5) {
				struct zos_session cur;
				if (zos_sessions_get(sh->s, sh->ids[k],
				        &cur) != ZOS_SESSION_OK) {
					atomic_store(&sh->failed, true);
				}
				expect = cur.version;
			}
			rv = zos_sessions_transition(sh->s, sh->ids[k],
			    (enum zos_proof_state) tov, expect, &out);
			if (rv != ZOS_SESSION_OK &&
			    rv != ZOS_SESSION_FAILED_PRECONDITION &&
			    rv != ZOS_SESSION_ABORTED) {
				atomic_store(&sh->failed, true);
			}
		}
		if (op != 1 && rv == ZOS_SESSION_OK) {
			atomic_fetch_add(&sh->accepted[k], 1);
		}
		if (op == 1 && rv != ZOS_SESSION_OK) {
			atomic_store(&sh->failed, true);
		}
		/* Versions seen by one thread never go backwards. */
		if (out.version < last_seen[k]) {
			atomic_store(&sh->failed, true);
		}
		last_seen[k] = out.version;
	}
	if (zos_locks_held_mask() != 0) {
		atomic_store(&sh->failed, true);
	}
	return NULL;
}

Test(sessions, concurrent_changes_are_counted_exactly)
{
	struct sessions_fixture f;
	struct conc_shared      sh;
	struct conc_thread      th[CONC_THREADS];
	pthread_t               tid[CONC_THREADS];
	struct zos_session      sess;
	uint64_t                counts[ZOS_PROOF_STATE_COUNT];
	uint64_t                total_accepted = 0;

	sessions_fixture_init(&f, 0);
	memset(&sh, 0, sizeof(sh));
	sh.s = f.s;
	for (int k = 0; k < CONC_SESSIONS; k++) {
		cr_assert_eq(
		    zos_sessions_start(f.s, "p", &sess), ZOS_SESSION_OK);
		memcpy(sh.ids[k], sess.id, sizeof(sh.ids[k]));
		atomic_init(&sh.accepted[k], 0);
	}
	atomic_init(&sh.failed, false);
	for (int i = 0; i < CONC_THREADS; i++) {
		th[i].shared = &sh;
		th[i].seed   = 0x9e3779b9u * (unsigned) (i + 1);
		cr_assert_eq(
		    pthread_create(&tid[i], NULL, conc_worker, &th[i]), 0);
	}
	for (int i = 0; i < CONC_THREADS; i++) {
		cr_assert_eq(pthread_join(tid[i], NULL), 0);
	}
	cr_assert_not(atomic_load(&sh.failed));
	for (int k = 0; k < CONC_SESSIONS; k++) {
		uint64_t n = atomic_load(&sh.accepted[k]);
		cr_assert_eq(
		    zos_sessions_get(f.s, sh.ids[k], &sess), ZOS_SESSION_OK);
		cr_assert_eq(sess.version, 1 + n, "session %d: %lu vs 1 + %lu",
		    k, (unsigned long) sess.version, (unsigned long) n);
		cr_assert_gt(n, 100); /* the test did exercise changes */
		total_accepted += n;
	}
	cr_assert_eq(zos_sessions_count_by_state(f.s, counts), CONC_SESSIONS);
	uint64_t sum = 0;
	for (int st = 0; st < ZOS_PROOF_STATE_COUNT; st++) {
		sum += counts[st];
	}
	cr_assert_eq(sum, CONC_SESSIONS);
	cr_assert_gt(total_accepted, 0);
	/* One change per start and per accepted change, none lost. */
	cr_assert_eq(zos_sessions_seq(f.s), CONC_SESSIONS + total_accepted);
	sessions_fixture_fini(&f);
}

Test(sessions, seq_counts_every_accepted_change_and_nothing_else)
{
	struct sessions_fixture f;
	struct zos_session      a, out;

	sessions_fixture_init(&f, 2);
	cr_assert_eq(zos_sessions_seq(f.s), 0);
	cr_assert_eq(zos_sessions_start(f.s, "p", &a), ZOS_SESSION_OK);
	cr_assert_eq(zos_sessions_seq(f.s), 1);
	cr_assert_eq(
	    zos_sessions_transition(f.s, a.id, ZOS_PROOF_ANALYZING, 0, &out),
	    ZOS_SESSION_OK);
	cr_assert_eq(zos_sessions_seq(f.s), 2);
	cr_assert_eq(zos_sessions_reset(f.s, a.id, &out), ZOS_SESSION_OK);
	cr_assert_eq(zos_sessions_seq(f.s), 3);
	/* Refused: illegal, stale, unknown, invalid, full. */
	cr_assert_eq(
	    zos_sessions_transition(f.s, a.id, ZOS_PROOF_SOLVED, 0, &out),
	    ZOS_SESSION_FAILED_PRECONDITION);
	cr_assert_eq(
	    zos_sessions_transition(f.s, a.id, ZOS_PROOF_ANALYZING, 1, &out),
	    ZOS_SESSION_ABORTED);
	cr_assert_eq(zos_sessions_reset(f.s, "0123456789abcdef", &out),
	    ZOS_SESSION_NOT_FOUND);
	cr_assert_eq(
	    zos_sessions_start(f.s, "", &out), ZOS_SESSION_INVALID_ARGUMENT);
	cr_assert_eq(zos_sessions_start(f.s, "p", &out), ZOS_SESSION_OK);
	cr_assert_eq(zos_sessions_start(f.s, "p", &out),
	    ZOS_SESSION_RESOURCE_EXHAUSTED);
	cr_assert_eq(zos_sessions_seq(f.s), 4);
	sessions_fixture_fini(&f);
}

Test(sessions, snapshot_copies_every_session_in_order_with_its_seq)
{
	struct sessions_fixture   f;
	struct zos_sessions_image image;
	struct zos_session        made[40], got;

	sessions_fixture_init(&f, 0);
	cr_assert_eq(zos_sessions_snapshot(f.s, &image), ZOS_SESSION_OK);
	cr_assert_eq(image.count, 0);
	cr_assert_eq(image.seq, 0);
	zos_sessions_image_finish(&image);
	for (int i = 0; i < 40; i++) {
		char problem[16];

		snprintf(problem, sizeof(problem), "p-%d", i);
		cr_assert_eq(zos_sessions_start(f.s, problem, &made[i]),
		    ZOS_SESSION_OK);
	}
	drive_to(f.s, made[7].id, ZOS_PROOF_SOLVED);
	cr_assert_eq(zos_sessions_get(f.s, made[7].id, &got), ZOS_SESSION_OK);
	made[7] = got;
	cr_assert_eq(zos_sessions_snapshot(f.s, &image), ZOS_SESSION_OK);
	cr_assert_eq(image.count, 40);
	cr_assert_eq(image.seq, 43);
	cr_assert_eq(image.seq, zos_sessions_seq(f.s));
	for (int i = 0; i < 40; i++) {
		cr_assert_eq(
		    memcmp(&image.sessions[i], &made[i], sizeof(made[i])), 0,
		    "session %d", i);
	}
	zos_sessions_image_finish(&image);
	cr_assert_null(image.sessions);
	cr_assert_eq(image.count, 0);
	zos_sessions_image_finish(&image); /* twice is safe */
	sessions_fixture_fini(&f);
}

/* A table of N sessions in F, its image in *IMAGE. */
static void
image_of(struct sessions_fixture *f, int n, struct zos_sessions_image *image)
{
	struct zos_session out;

	for (int i = 0; i < n; i++) {
		cr_assert_eq(
		    zos_sessions_start(f->s, "p", &out), ZOS_SESSION_OK);
	}
	drive_to(f->s, out.id, ZOS_PROOF_FEEDBACK_READY);
	cr_assert_eq(zos_sessions_snapshot(f->s, image), ZOS_SESSION_OK);
}

Test(sessions, restore_rebuilds_the_table_and_new_ids_never_collide)
{
	struct sessions_fixture   f, g, h;
	struct zos_sessions_image image, again;
	struct zos_session        got, fresh_g, fresh_h;
	struct zos_session_page   page;
	uint64_t                  counts[ZOS_PROOF_STATE_COUNT];
	char                      err[256];

	sessions_fixture_init(&f, 0);
	image_of(&f, 5, &image);
	sessions_fixture_fini(&f);

	/* Two tables from one image. */
	sessions_fixture_init(&g, 0);
	sessions_fixture_init(&h, 0);
	cr_assert_eq(zos_sessions_restore(g.s, &image, err, sizeof(err)),
	    ZOS_SESSION_OK, "%s", err);
	cr_assert_eq(zos_sessions_restore(h.s, &image, err, sizeof(err)),
	    ZOS_SESSION_OK, "%s", err);
	cr_assert_eq(zos_sessions_seq(g.s), image.seq);
	for (size_t i = 0; i < image.count; i++) {
		cr_assert_eq(zos_sessions_get(g.s, image.sessions[i].id, &got),
		    ZOS_SESSION_OK);
		cr_assert_eq(memcmp(&got, &image.sessions[i], sizeof(got)), 0);
	}
	cr_assert_eq(zos_sessions_count_by_state(g.s, counts), 5);
	cr_assert_eq(counts[ZOS_PROOF_AWAITING_SOLUTION], 4);
	cr_assert_eq(counts[ZOS_PROOF_FEEDBACK_READY], 1);
	cr_assert_eq(zos_sessions_list(g.s, 0, NULL, &page), ZOS_SESSION_OK);
	cr_assert_eq(page.count, 5);
	cr_assert_str_eq(page.sessions[4].id, image.sessions[4].id);
	zos_session_page_finish(&page);
	cr_assert_eq(zos_sessions_snapshot(g.s, &again), ZOS_SESSION_OK);
	cr_assert_eq(again.id_key, image.id_key);
	zos_sessions_image_finish(&again);

	cr_assert_eq(zos_sessions_start(g.s, "q", &fresh_g), ZOS_SESSION_OK);
	cr_assert_eq(zos_sessions_start(h.s, "q", &fresh_h), ZOS_SESSION_OK);
	/* Ids are random now: two tables restored alike still differ. */
	cr_assert_str_neq(fresh_g.id, fresh_h.id);
	for (size_t i = 0; i < image.count; i++) {
		cr_assert_str_neq(fresh_g.id, image.sessions[i].id,
		    "id of session %zu reused", i);
	}
	cr_assert_eq(zos_sessions_seq(g.s), image.seq + 1);
	/* It grows past what was restored, up to the bound. */
	for (int i = 0; i < 100; i++) {
		cr_assert_eq(
		    zos_sessions_start(g.s, "r", &got), ZOS_SESSION_OK);
	}
	cr_assert_eq(zos_sessions_count_by_state(g.s, counts), 106);
	sessions_fixture_fini(&g);
	sessions_fixture_fini(&h);
	zos_sessions_image_finish(&image);
}

/* Ways to spoil session 2 (or the count) of a three-session image. */
static void
spoil_repeat_id(struct zos_sessions_image *image)
{
	memcpy(image->sessions[2].id, image->sessions[0].id,
	    sizeof(image->sessions[2].id));
}

static void
spoil_upper_id(struct zos_sessions_image *image)
{
	snprintf(image->sessions[2].id, sizeof(image->sessions[2].id), "%s",
	    "ABCDEF0123456789ABCDEF0123456789");
}

static void
spoil_short_id(struct zos_sessions_image *image)
{
	image->sessions[2].id[15] = '\0';
}

static void
spoil_state_zero(struct zos_sessions_image *image)
{
	image->sessions[2].state = ZOS_PROOF_STATE_UNSPECIFIED;
}

static void
spoil_state_six(struct zos_sessions_image *image)
{
	image->sessions[2].state = (enum zos_proof_state) 6;
}

static void
spoil_empty_problem(struct zos_sessions_image *image)
{
	image->sessions[2].problem_id[0] = '\0';
}

static void
spoil_long_problem(struct zos_sessions_image *image)
{
	memset(image->sessions[2].problem_id, 'x',
	    sizeof(image->sessions[2].problem_id));
}

static void
spoil_version_zero(struct zos_sessions_image *image)
{
	image->sessions[2].version = 0;
}

static void
spoil_seq(struct zos_sessions_image *image)
{
	image->seq = 1;
}

Test(sessions, restore_refuses_a_bad_image_and_leaves_the_table_empty)
{
	struct sessions_fixture   f;
	struct zos_sessions_image image;
	struct zos_session        saved, out;
	uint64_t                  counts[ZOS_PROOF_STATE_COUNT];
	char                      err[256];
	struct {
		const char *what;
		void (*spoil)(struct zos_sessions_image *);
		const char *message;
	} cases[] = {
		{ "repeated id", spoil_repeat_id, "repeated" },
		{ "upper-case id", spoil_upper_id, "hex" },
		{ "short id", spoil_short_id, "hex" },
		{ "state 0", spoil_state_zero, "state" },
		{ "state 6", spoil_state_six, "state" },
		{ "empty problem id", spoil_empty_problem, "problem id" },
		{ "unterminated problem id", spoil_long_problem,
		    "problem id" },
		{ "version 0", spoil_version_zero, "version" },
		{ "seq below the versions", spoil_seq, "change count" },
	};

	sessions_fixture_init(&f, 0);
	image_of(&f, 3, &image);
	sessions_fixture_fini(&f);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sessions_fixture g;
		uint64_t                seq = image.seq;

		saved = image.sessions[2];
		cases[i].spoil(&image);
		sessions_fixture_init(&g, 0);
		err[0] = '\0';
		cr_assert_eq(
		    zos_sessions_restore(g.s, &image, err, sizeof(err)),
		    ZOS_SESSION_INVALID_ARGUMENT, "%s", cases[i].what);
		cr_assert(strstr(err, cases[i].message) != NULL, "%s: %s",
		    cases[i].what, err);
		/* Nothing of the image stayed. */
		cr_assert_eq(zos_sessions_count_by_state(g.s, counts), 0);
		cr_assert_eq(zos_sessions_seq(g.s), 0);
		cr_assert_eq(zos_sessions_get(g.s, image.sessions[0].id, &out),
		    ZOS_SESSION_NOT_FOUND);
		cr_assert_eq(
		    zos_sessions_start(g.s, "p", &out), ZOS_SESSION_OK);
		sessions_fixture_fini(&g);
		image.sessions[2] = saved;
		image.seq         = seq;
	}
	zos_sessions_image_finish(&image);
}

Test(sessions, restore_refuses_more_than_max_sessions_and_a_used_table)
{
	struct sessions_fixture   f, g;
	struct zos_sessions_image image;
	struct zos_session        out;
	char                      err[256];

	sessions_fixture_init(&f, 0);
	image_of(&f, 4, &image);
	sessions_fixture_fini(&f);

	sessions_fixture_init(&g, 3);
	cr_assert_eq(zos_sessions_restore(g.s, &image, err, sizeof(err)),
	    ZOS_SESSION_RESOURCE_EXHAUSTED);
	cr_assert(strstr(err, "4 sessions") != NULL, "%s", err);
	sessions_fixture_fini(&g);

	sessions_fixture_init(&g, 4);
	cr_assert_eq(zos_sessions_start(g.s, "p", &out), ZOS_SESSION_OK);
	cr_assert_eq(zos_sessions_restore(g.s, &image, err, sizeof(err)),
	    ZOS_SESSION_INVALID_ARGUMENT);
	cr_assert(strstr(err, "not empty") != NULL, "%s", err);
	sessions_fixture_fini(&g);

	/* Exactly at the bound is fine, and the table is then full. */
	sessions_fixture_init(&g, 4);
	cr_assert_eq(zos_sessions_restore(g.s, &image, err, sizeof(err)),
	    ZOS_SESSION_OK, "%s", err);
	cr_assert_eq(zos_sessions_start(g.s, "p", &out),
	    ZOS_SESSION_RESOURCE_EXHAUSTED);
	sessions_fixture_fini(&g);
	zos_sessions_image_finish(&image);
}

Test(sessions, an_empty_image_restores_an_empty_table)
{
	struct sessions_fixture   f;
	struct zos_sessions_image image = { 0 };
	struct zos_session        out;
	char                      err[256];

	image.seq    = 7; /* changes to sessions that are no more */
	image.id_key = 0x12345678u;
	sessions_fixture_init(&f, 0);
	cr_assert_eq(zos_sessions_restore(f.s, &image, err, sizeof(err)),
	    ZOS_SESSION_OK, "%s", err);
	cr_assert_eq(zos_sessions_seq(f.s), 7);
	cr_assert_eq(zos_sessions_start(f.s, "p", &out), ZOS_SESSION_OK);
	cr_assert_eq(zos_sessions_seq(f.s), 8);
	sessions_fixture_fini(&f);
}

/* The injectable clock: a number the test moves. */
static int64_t
fake_clock(void *arg)
{
	return *(const int64_t *) arg;
}

static void
lifecycle_init(struct sessions_fixture *f, size_t max, int64_t ttl_ms,
    size_t per_owner, int64_t *now)
{
	sessions_fixture_init(f, max);
	cr_assert_eq(
	    zos_sessions_configure(f->s, ttl_ms, per_owner, fake_clock, now),
	    ZOS_SESSION_OK);
}

Test(sessions, ids_are_32_hex_digits_of_which_every_bit_varies)
{
	struct sessions_fixture f;
	enum { N = 2000 };
	static char        ids[N][ZOS_SESSION_ID_LEN + 1];
	struct zos_session sess;
	uint8_t            ones[16] = { 0 }, zeros[16] = { 0 };

	sessions_fixture_init(&f, N);
	for (int i = 0; i < N; i++) {
		cr_assert_eq(
		    zos_sessions_start(f.s, "p", &sess), ZOS_SESSION_OK);
		cr_assert_eq(strlen(sess.id), 32, "%s", sess.id);
		cr_assert_eq(strspn(sess.id, "0123456789abcdef"), 32);
		memcpy(ids[i], sess.id, sizeof(ids[i]));
		/* Every one of the 128 bits must be seen both ways. */
		for (int b = 0; b < 16; b++) {
			unsigned v;
			sscanf(sess.id + 2 * b, "%2x", &v);
			ones[b] |= (uint8_t) v;
			zeros[b] |= (uint8_t) ~v;
		}
	}
	for (int b = 0; b < 16; b++) {
		cr_assert_eq(ones[b], 0xff, "byte %d", b);
		cr_assert_eq(zeros[b], 0xff, "byte %d", b);
	}
	qsort(ids, N, sizeof(ids[0]),
	    (int (*)(const void *, const void *)) strcmp);
	for (int i = 1; i < N; i++) {
		cr_assert_str_neq(ids[i - 1], ids[i]);
	}
	sessions_fixture_fini(&f);
}

Test(sessions, a_finished_session_expires_after_the_ttl_an_active_one_never)
{
	struct sessions_fixture f;
	struct zos_session      solved, abandoned, active, got;
	struct zos_session_page page;
	uint64_t                counts[ZOS_PROOF_STATE_COUNT];
	int64_t                 now = 1700000000000;

	lifecycle_init(&f, 0, 60000, 0, &now);
	cr_assert_eq(zos_sessions_start(f.s, "a", &solved), ZOS_SESSION_OK);
	cr_assert_eq(zos_sessions_start(f.s, "b", &abandoned), ZOS_SESSION_OK);
	cr_assert_eq(zos_sessions_start(f.s, "c", &active), ZOS_SESSION_OK);
	drive_to(f.s, solved.id, ZOS_PROOF_SOLVED);
	drive_to(f.s, abandoned.id, ZOS_PROOF_ABANDONED);
	drive_to(f.s, active.id, ZOS_PROOF_FEEDBACK_READY);

	now += 59999; /* one ms short of the TTL */
	cr_assert_eq(zos_sessions_get(f.s, solved.id, &got), ZOS_SESSION_OK);
	cr_assert_eq(zos_sessions_expire(f.s, 0), 0);
	now += 1;
	cr_assert_eq(
	    zos_sessions_get(f.s, solved.id, &got), ZOS_SESSION_NOT_FOUND);
	cr_assert_eq(
	    zos_sessions_get(f.s, abandoned.id, &got), ZOS_SESSION_NOT_FOUND);
	cr_assert_eq(
	    zos_sessions_reset(f.s, solved.id, &got), ZOS_SESSION_NOT_FOUND);
	cr_assert_eq(zos_sessions_list(f.s, 0, NULL, &page), ZOS_SESSION_OK);
	cr_assert_eq(page.count, 1);
	cr_assert_str_eq(page.sessions[0].id, active.id);
	zos_session_page_finish(&page);
	uint64_t seq = zos_sessions_seq(f.s);
	cr_assert_eq(zos_sessions_expire(f.s, 0), 2);
	cr_assert_eq(zos_sessions_seq(f.s), seq + 1, "a removal is a change");
	cr_assert_eq(zos_sessions_count_by_state(f.s, counts), 1);
	cr_assert_eq(counts[ZOS_PROOF_SOLVED], 0);
	cr_assert_eq(counts[ZOS_PROOF_ABANDONED], 0);

	/* Years later the active one is still there. */
	now += 10LL * 365 * 24 * 3600 * 1000;
	cr_assert_eq(zos_sessions_expire(f.s, 0), 0);
	cr_assert_eq(zos_sessions_get(f.s, active.id, &got), ZOS_SESSION_OK);
	sessions_fixture_fini(&f);
}

Test(sessions, a_reset_takes_a_finished_session_off_the_expiry_list)
{
	struct sessions_fixture f;
	struct zos_session      a, got;
	int64_t                 now = 1700000000000;

	lifecycle_init(&f, 0, 1000, 0, &now);
	cr_assert_eq(zos_sessions_start(f.s, "a", &a), ZOS_SESSION_OK);
	drive_to(f.s, a.id, ZOS_PROOF_SOLVED);
	now += 500;
	cr_assert_eq(zos_sessions_reset(f.s, a.id, &got), ZOS_SESSION_OK);
	now += 5000;
	cr_assert_eq(zos_sessions_expire(f.s, 0), 0);
	cr_assert_eq(zos_sessions_get(f.s, a.id, &got), ZOS_SESSION_OK);
	/* Abandoned again, it expires from its new finishing time. */
	drive_to(f.s, a.id, ZOS_PROOF_ABANDONED);
	now += 999;
	cr_assert_eq(zos_sessions_expire(f.s, 0), 0);
	now += 1;
	cr_assert_eq(zos_sessions_expire(f.s, 0), 1);
	sessions_fixture_fini(&f);
}

Test(sessions, a_sweep_removes_a_bounded_batch_and_start_sweeps_first)
{
	struct sessions_fixture f;
	enum { N = 600 };
	struct zos_session sess;
	uint64_t           counts[ZOS_PROOF_STATE_COUNT];
	int64_t            now = 1700000000000;

	lifecycle_init(&f, N, 1000, 0, &now);
	for (int i = 0; i < N; i++) {
		cr_assert_eq(
		    zos_sessions_start(f.s, "p", &sess), ZOS_SESSION_OK);
		drive_to(f.s, sess.id, ZOS_PROOF_ABANDONED);
	}
	cr_assert_eq(zos_sessions_start(f.s, "p", &sess),
	    ZOS_SESSION_RESOURCE_EXHAUSTED, "full, nothing expired yet");
	now += 1000;
	cr_assert_eq(zos_sessions_expire(f.s, 10), 10);
	cr_assert_eq(zos_sessions_count_by_state(f.s, counts), N - 10);
	cr_assert_eq(zos_sessions_expire(f.s, 100000), ZOS_SESSIONS_SWEEP_MAX);
	/* A full table of expired sessions is not full: start sweeps. */
	for (int i = 0; i < N; i++) {
		cr_assert_eq(zos_sessions_start(f.s, "q", &sess),
		    ZOS_SESSION_OK, "start %d", i);
	}
	cr_assert_eq(zos_sessions_count_by_state(f.s, counts), N);
	cr_assert_eq(counts[ZOS_PROOF_AWAITING_SOLUTION], N);
	cr_assert_eq(zos_sessions_start(f.s, "p", &sess),
	    ZOS_SESSION_RESOURCE_EXHAUSTED);
	sessions_fixture_fini(&f);
}

Test(sessions, removal_keeps_every_other_session_findable_and_listed_once)
{
	struct sessions_fixture f;
	enum { N = 1000 };
	static struct zos_session all[N];
	struct zos_session        got;
	struct zos_session_page   page;
	char                      token[ZOS_SESSION_ID_LEN + 1] = "";
	size_t                    seen                          = 0;
	int64_t                   now = 1700000000000;

	/* A small table, so that the index is crowded and removals shift
	 * long probe runs. */
	lifecycle_init(&f, N, 1000, 0, &now);
	for (int i = 0; i < N; i++) {
		cr_assert_eq(
		    zos_sessions_start(f.s, "p", &all[i]), ZOS_SESSION_OK);
		if (i % 3 != 0) {
			drive_to(f.s, all[i].id, ZOS_PROOF_ABANDONED);
		}
	}
	now += 1000;
	while (zos_sessions_expire(f.s, 0) > 0) { }
	for (int i = 0; i < N; i++) {
		cr_assert_eq(zos_sessions_get(f.s, all[i].id, &got),
		    i % 3 == 0 ? ZOS_SESSION_OK : ZOS_SESSION_NOT_FOUND,
		    "session %d", i);
	}
	/* New sessions take the freed slots; every live one is listed
	 * exactly once. */
	for (int i = 0; i < N; i++) {
		if (i % 3 != 0) {
			cr_assert_eq(zos_sessions_start(f.s, "n", &all[i]),
			    ZOS_SESSION_OK);
		}
	}
	for (int pages = 0; pages < 100; pages++) {
		cr_assert_eq(
		    zos_sessions_list(f.s, 64, token, &page), ZOS_SESSION_OK);
		seen += page.count;
		cr_assert_eq(page.total, N);
		memcpy(token, page.next_page_token, sizeof(token));
		zos_session_page_finish(&page);
		if (token[0] == '\0') {
			break;
		}
	}
	cr_assert_eq(seen, N);
	for (int i = 0; i < N; i++) {
		cr_assert_eq(zos_sessions_get(f.s, all[i].id, &got),
		    ZOS_SESSION_OK, "session %d", i);
	}
	sessions_fixture_fini(&f);
}

Test(sessions, an_owner_holds_at_most_its_cap_and_others_are_not_affected)
{
	struct sessions_fixture f;
	struct zos_session      sess, first;
	int64_t                 now = 1700000000000;

	lifecycle_init(&f, 100, 1000, 3, &now);
	cr_assert_eq(zos_sessions_max_per_owner(f.s), 3);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(zos_sessions_start_owned(f.s, "p", 7, &sess),
		    ZOS_SESSION_OK);
		if (i == 0) {
			first = sess;
		}
	}
	cr_assert_eq(zos_sessions_start_owned(f.s, "p", 7, &sess),
	    ZOS_SESSION_OWNER_LIMIT);
	cr_assert_eq(
	    zos_sessions_start_owned(f.s, "p", 8, &sess), ZOS_SESSION_OK);
	cr_assert_eq(zos_sessions_start(f.s, "p", &sess), ZOS_SESSION_OK);
	/* A finished session still counts until it expires. */
	drive_to(f.s, first.id, ZOS_PROOF_SOLVED);
	cr_assert_eq(zos_sessions_start_owned(f.s, "p", 7, &sess),
	    ZOS_SESSION_OWNER_LIMIT);
	now += 1000;
	cr_assert_eq(zos_sessions_start_owned(f.s, "p", 7, &sess),
	    ZOS_SESSION_OK, "the expired one made room");
	sessions_fixture_fini(&f);
}

Test(sessions, owners_and_the_expiry_order_survive_a_restore)
{
	struct sessions_fixture   f, g;
	struct zos_sessions_image image;
	struct zos_session        a, b, c, sess;
	char                      err[256];
	int64_t                   now = 1700000000000;

	lifecycle_init(&f, 100, 1000, 2, &now);
	cr_assert_eq(
	    zos_sessions_start_owned(f.s, "p", 5, &a), ZOS_SESSION_OK);
	cr_assert_eq(
	    zos_sessions_start_owned(f.s, "p", 5, &b), ZOS_SESSION_OK);
	cr_assert_eq(
	    zos_sessions_start_owned(f.s, "p", 6, &c), ZOS_SESSION_OK);
	/* b finishes before a: b expires first. */
	drive_to(f.s, b.id, ZOS_PROOF_ABANDONED);
	now += 500;
	drive_to(f.s, a.id, ZOS_PROOF_ABANDONED);
	cr_assert_eq(zos_sessions_snapshot(f.s, &image), ZOS_SESSION_OK);
	sessions_fixture_fini(&f);
	cr_assert_eq(image.sessions[0].owner, 5);

	lifecycle_init(&g, 100, 1000, 2, &now);
	cr_assert_eq(zos_sessions_restore(g.s, &image, err, sizeof(err)),
	    ZOS_SESSION_OK, "%s", err);
	cr_assert_eq(zos_sessions_start_owned(g.s, "p", 5, &sess),
	    ZOS_SESSION_OWNER_LIMIT);
	now += 500; /* b's TTL is up, a's is not */
	cr_assert_eq(zos_sessions_expire(g.s, 1), 1);
	cr_assert_eq(
	    zos_sessions_get(g.s, b.id, &sess), ZOS_SESSION_NOT_FOUND);
	cr_assert_eq(zos_sessions_get(g.s, a.id, &sess), ZOS_SESSION_OK);
	cr_assert_eq(
	    zos_sessions_start_owned(g.s, "p", 5, &sess), ZOS_SESSION_OK);
	sessions_fixture_fini(&g);
	zos_sessions_image_finish(&image);
}

Test(sessions, configure_refuses_a_negative_ttl)
{
	struct sessions_fixture f;

	sessions_fixture_init(&f, 0);
	cr_assert_eq(zos_sessions_configure(f.s, -1, 0, NULL, NULL),
	    ZOS_SESSION_INVALID_ARGUMENT);
	sessions_fixture_fini(&f);
}

Test(sessions, ids_of_earlier_versions_still_restore_and_resolve)
{
	struct sessions_fixture   f;
	struct zos_session        old   = { .state = ZOS_PROOF_ANALYZING,
		         .version                  = 2 };
	struct zos_sessions_image image = {
		.seq = 2, .sessions = &old, .count = 1
	};
	struct zos_session got;
	char               err[256];

	snprintf(old.id, sizeof(old.id), "0123456789abcdef");
	snprintf(old.problem_id, sizeof(old.problem_id), "p");
	sessions_fixture_init(&f, 0);
	cr_assert_eq(zos_sessions_restore(f.s, &image, err, sizeof(err)),
	    ZOS_SESSION_OK, "%s", err);
	cr_assert_eq(
	    zos_sessions_get(f.s, "0123456789abcdef", &got), ZOS_SESSION_OK);
	cr_assert_eq(got.owner, ZOS_SESSION_OWNER_ANONYMOUS);
	cr_assert_eq(zos_sessions_transition(f.s, "0123456789abcdef",
	                 ZOS_PROOF_FEEDBACK_READY, 2, &got),
	    ZOS_SESSION_OK);
	/* Neither a 17- nor a 31-digit id is one. */
	cr_assert_eq(zos_sessions_get(f.s, "0123456789abcdef0", &got),
	    ZOS_SESSION_NOT_FOUND);
	cr_assert_eq(
	    zos_sessions_get(f.s, "0123456789abcdef0123456789abcde", &got),
	    ZOS_SESSION_NOT_FOUND);
	sessions_fixture_fini(&f);
}

/*
 * Durability (sessions.h): with tracking on, readers see only what the
 * store made durable; the store takes each changed session once, and
 * undoes what it could not commit.
 */

/* A table that tracks its changes, as zosd's state makes it for a store
 * (TTL one hour on the clock *NOW, PER_OWNER cap). */
static void
tracked_init(struct sessions_fixture *f, int64_t *now, size_t per_owner)
{
	lifecycle_init(f, 0, 3600 * 1000, per_owner, now);
	zos_sessions_track_changes(f->s, true);
}

/* Takes the changes and reports them durable, as a commit that worked;
 * returns the number of rows taken. */
static size_t
commit_all(struct zos_sessions *s)
{
	struct zos_sessions_changes c;
	size_t                      n;

	cr_assert_eq(zos_sessions_take_changes(s, &c), ZOS_SESSION_OK);
	cr_assert_eq(c.seq, zos_sessions_seq(s));
	zos_sessions_changes_durable(s, &c);
	n = c.count;
	zos_sessions_changes_finish(&c);
	return n;
}

/* The total of a first page of List, and its count into *COUNT. */
static uint64_t
list_total(struct zos_sessions *s, size_t *count)
{
	struct zos_session_page page;
	uint64_t                total;

	cr_assert_eq(zos_sessions_list(s, 0, NULL, &page), ZOS_SESSION_OK);
	total  = page.total;
	*count = page.count;
	zos_session_page_finish(&page);
	return total;
}

Test(sessions, tracked_a_new_session_is_not_found_until_durable)
{
	struct sessions_fixture f;
	struct zos_session      s, got;
	uint64_t                counts[ZOS_PROOF_STATE_COUNT];
	int64_t                 now = 1700000000000;
	size_t                  count;

	tracked_init(&f, &now, 0);
	cr_assert_eq(zos_sessions_start(f.s, "p", &s), ZOS_SESSION_OK);
	cr_assert_eq(s.change_seq, 1);
	cr_assert_eq(zos_sessions_get(f.s, s.id, &got), ZOS_SESSION_NOT_FOUND);
	cr_assert_eq(list_total(f.s, &count), 0);
	cr_assert_eq(count, 0);
	/* Metrics count what was accepted; writers work on it. */
	cr_assert_eq(zos_sessions_count_by_state(f.s, counts), 1);
	cr_assert_eq(
	    zos_sessions_transition(f.s, s.id, ZOS_PROOF_ANALYZING, 1, &got),
	    ZOS_SESSION_OK);
	cr_assert_eq(zos_sessions_get(f.s, s.id, &got), ZOS_SESSION_NOT_FOUND);

	cr_assert_eq(commit_all(f.s), 1);
	cr_assert_eq(zos_sessions_get(f.s, s.id, &got), ZOS_SESSION_OK);
	cr_assert_eq(got.state, ZOS_PROOF_ANALYZING);
	cr_assert_eq(got.version, 2);
	cr_assert_eq(list_total(f.s, &count), 1);
	cr_assert_eq(count, 1);
	cr_assert_eq(commit_all(f.s), 0, "nothing changed since");
	sessions_fixture_fini(&f);
}

Test(sessions, tracked_readers_see_the_old_state_until_a_change_is_durable)
{
	struct sessions_fixture f;
	struct zos_session      s, got;
	struct zos_session_page page;
	int64_t                 now = 1700000000000;

	tracked_init(&f, &now, 0);
	cr_assert_eq(zos_sessions_start(f.s, "p", &s), ZOS_SESSION_OK);
	cr_assert_eq(commit_all(f.s), 1);
	cr_assert_eq(
	    zos_sessions_transition(f.s, s.id, ZOS_PROOF_ANALYZING, 0, NULL),
	    ZOS_SESSION_OK);
	cr_assert_eq(zos_sessions_get(f.s, s.id, &got), ZOS_SESSION_OK);
	cr_assert_eq(got.state, ZOS_PROOF_AWAITING_SOLUTION);
	cr_assert_eq(got.version, 1);
	cr_assert_eq(zos_sessions_list(f.s, 0, NULL, &page), ZOS_SESSION_OK);
	cr_assert_eq(page.count, 1);
	cr_assert_eq(page.sessions[0].state, ZOS_PROOF_AWAITING_SOLUTION);
	zos_session_page_finish(&page);
	/* A writer with the reader's version is behind the latest. */
	cr_assert_eq(
	    zos_sessions_transition(f.s, s.id, ZOS_PROOF_ABANDONED, 1, &got),
	    ZOS_SESSION_ABORTED);
	cr_assert_eq(got.version, 2);

	cr_assert_eq(commit_all(f.s), 1);
	cr_assert_eq(zos_sessions_get(f.s, s.id, &got), ZOS_SESSION_OK);
	cr_assert_eq(got.state, ZOS_PROOF_ANALYZING);
	cr_assert_eq(got.version, 2);
	sessions_fixture_fini(&f);
}

Test(sessions, a_session_changed_several_times_is_taken_once_at_its_latest)
{
	struct sessions_fixture     f;
	struct zos_session          a, b;
	struct zos_sessions_changes c;
	int64_t                     now = 1700000000000;

	tracked_init(&f, &now, 0);
	cr_assert_eq(zos_sessions_start(f.s, "a", &a), ZOS_SESSION_OK);
	cr_assert_eq(commit_all(f.s), 1);
	cr_assert_eq(
	    zos_sessions_transition(f.s, a.id, ZOS_PROOF_ANALYZING, 0, NULL),
	    ZOS_SESSION_OK);
	cr_assert_eq(zos_sessions_transition(
	                 f.s, a.id, ZOS_PROOF_FEEDBACK_READY, 0, NULL),
	    ZOS_SESSION_OK);
	cr_assert_eq(zos_sessions_reset(f.s, a.id, NULL), ZOS_SESSION_OK);
	cr_assert_eq(zos_sessions_start(f.s, "b", &b), ZOS_SESSION_OK);
	cr_assert_eq(
	    zos_sessions_transition(f.s, b.id, ZOS_PROOF_ABANDONED, 0, NULL),
	    ZOS_SESSION_OK);

	cr_assert_eq(zos_sessions_take_changes(f.s, &c), ZOS_SESSION_OK);
	cr_assert_eq(c.count, 2, "%zu rows for two sessions", c.count);
	cr_assert_eq(c.seq, 6);
	for (size_t i = 0; i < c.count; i++) {
		const struct zos_session *r = &c.rows[i].s;

		cr_assert_not(c.rows[i].removed);
		if (strcmp(r->id, a.id) == 0) {
			cr_assert_eq(r->version, 4);
			cr_assert_eq(r->state, ZOS_PROOF_AWAITING_SOLUTION);
		} else {
			cr_assert_str_eq(r->id, b.id);
			cr_assert_eq(r->version, 2);
			cr_assert_eq(r->state, ZOS_PROOF_ABANDONED);
		}
	}
	zos_sessions_changes_durable(f.s, &c);
	zos_sessions_changes_finish(&c);
	sessions_fixture_fini(&f);
}

Test(sessions, a_change_made_after_the_take_waits_for_the_next_commit)
{
	struct sessions_fixture     f;
	struct zos_session          s, got;
	struct zos_sessions_changes c;
	int64_t                     now = 1700000000000;

	tracked_init(&f, &now, 0);
	cr_assert_eq(zos_sessions_start(f.s, "p", &s), ZOS_SESSION_OK);
	cr_assert_eq(zos_sessions_take_changes(f.s, &c), ZOS_SESSION_OK);
	/* While that commit is under way, the session moves on. */
	cr_assert_eq(
	    zos_sessions_transition(f.s, s.id, ZOS_PROOF_ANALYZING, 0, NULL),
	    ZOS_SESSION_OK);
	zos_sessions_changes_durable(f.s, &c);
	zos_sessions_changes_finish(&c);
	/* What was committed is seen, not what came after. */
	cr_assert_eq(zos_sessions_get(f.s, s.id, &got), ZOS_SESSION_OK);
	cr_assert_eq(got.state, ZOS_PROOF_AWAITING_SOLUTION);
	cr_assert_eq(got.version, 1);
	cr_assert_eq(commit_all(f.s), 1);
	cr_assert_eq(zos_sessions_get(f.s, s.id, &got), ZOS_SESSION_OK);
	cr_assert_eq(got.state, ZOS_PROOF_ANALYZING);
	sessions_fixture_fini(&f);
}

Test(sessions, a_failed_commit_undoes_new_and_changed_sessions)
{
	struct sessions_fixture     f;
	struct zos_session          a, d, b, e, got;
	struct zos_sessions_changes c;
	uint64_t                    counts[ZOS_PROOF_STATE_COUNT];
	int64_t                     now = 1700000000000;
	uint64_t                    undone;
	size_t                      count;

	tracked_init(&f, &now, 0);
	cr_assert_eq(zos_sessions_start(f.s, "a", &a), ZOS_SESSION_OK);
	cr_assert_eq(zos_sessions_start(f.s, "d", &d), ZOS_SESSION_OK);
	cr_assert_eq(
	    zos_sessions_transition(f.s, d.id, ZOS_PROOF_ABANDONED, 0, NULL),
	    ZOS_SESSION_OK);
	cr_assert_eq(commit_all(f.s), 2);

	/* Taken for the commit that fails: A moved, B new. */
	cr_assert_eq(
	    zos_sessions_transition(f.s, a.id, ZOS_PROOF_ANALYZING, 0, NULL),
	    ZOS_SESSION_OK);
	cr_assert_eq(zos_sessions_start(f.s, "b", &b), ZOS_SESSION_OK);
	cr_assert_eq(zos_sessions_take_changes(f.s, &c), ZOS_SESSION_OK);
	/* Made during it: A moved again, D reset, E new. */
	cr_assert_eq(zos_sessions_transition(
	                 f.s, a.id, ZOS_PROOF_FEEDBACK_READY, 0, NULL),
	    ZOS_SESSION_OK);
	cr_assert_eq(zos_sessions_reset(f.s, d.id, NULL), ZOS_SESSION_OK);
	cr_assert_eq(zos_sessions_start(f.s, "e", &e), ZOS_SESSION_OK);
	undone = zos_sessions_changes_failed(f.s, &c);
	zos_sessions_changes_finish(&c);
	cr_assert_eq(undone, zos_sessions_seq(f.s));
	cr_assert_eq(undone, 8);

	/* Everything since the last commit is gone, for readers and
	 * writers alike. */
	cr_assert_eq(zos_sessions_get(f.s, b.id, &got), ZOS_SESSION_NOT_FOUND);
	cr_assert_eq(zos_sessions_get(f.s, e.id, &got), ZOS_SESSION_NOT_FOUND);
	cr_assert_eq(
	    zos_sessions_reset(f.s, e.id, NULL), ZOS_SESSION_NOT_FOUND);
	cr_assert_eq(zos_sessions_get(f.s, a.id, &got), ZOS_SESSION_OK);
	cr_assert_eq(got.state, ZOS_PROOF_AWAITING_SOLUTION);
	cr_assert_eq(got.version, 1);
	cr_assert_eq(
	    zos_sessions_transition(f.s, a.id, ZOS_PROOF_ABANDONED, 2, &got),
	    ZOS_SESSION_ABORTED, "the writer still sees the undone version");
	cr_assert_eq(got.version, 1);
	cr_assert_eq(zos_sessions_get(f.s, d.id, &got), ZOS_SESSION_OK);
	cr_assert_eq(got.state, ZOS_PROOF_ABANDONED);
	cr_assert_eq(got.version, 2);
	cr_assert_eq(zos_sessions_count_by_state(f.s, counts), 2);
	cr_assert_eq(counts[ZOS_PROOF_AWAITING_SOLUTION], 1);
	cr_assert_eq(counts[ZOS_PROOF_ANALYZING], 0);
	cr_assert_eq(counts[ZOS_PROOF_FEEDBACK_READY], 0);
	cr_assert_eq(counts[ZOS_PROOF_ABANDONED], 1);
	cr_assert_eq(list_total(f.s, &count), 2);
	cr_assert_eq(count, 2);
	/* Nothing undone is written again; the new sessions' rows are
	 * deleted (a commit under way might have written them). */
	cr_assert_eq(zos_sessions_take_changes(f.s, &c), ZOS_SESSION_OK);
	for (size_t i = 0; i < c.count; i++) {
		cr_assert(c.rows[i].removed, "undone %s is written again",
		    c.rows[i].s.id);
		cr_assert(strcmp(c.rows[i].s.id, b.id) == 0 ||
		        strcmp(c.rows[i].s.id, e.id) == 0,
		    "%s removed", c.rows[i].s.id);
	}
	zos_sessions_changes_durable(f.s, &c);
	zos_sessions_changes_finish(&c);

	/* And the table goes on from there. */
	cr_assert_eq(
	    zos_sessions_transition(f.s, a.id, ZOS_PROOF_ANALYZING, 1, NULL),
	    ZOS_SESSION_OK);
	cr_assert_eq(zos_sessions_start(f.s, "f", &got), ZOS_SESSION_OK);
	cr_assert_eq(commit_all(f.s), 2);
	cr_assert_eq(list_total(f.s, &count), 3);
	sessions_fixture_fini(&f);
}

Test(sessions, an_undone_session_gives_its_owner_its_place_back)
{
	struct sessions_fixture     f;
	struct zos_session          s;
	struct zos_sessions_changes c;
	int64_t                     now = 1700000000000;

	tracked_init(&f, &now, 1);
	cr_assert_eq(
	    zos_sessions_start_owned(f.s, "p", 7, &s), ZOS_SESSION_OK);
	cr_assert_eq(zos_sessions_start_owned(f.s, "p", 7, &s),
	    ZOS_SESSION_OWNER_LIMIT);
	cr_assert_eq(zos_sessions_take_changes(f.s, &c), ZOS_SESSION_OK);
	(void) zos_sessions_changes_failed(f.s, &c);
	zos_sessions_changes_finish(&c);
	cr_assert_eq(
	    zos_sessions_start_owned(f.s, "p", 7, &s), ZOS_SESSION_OK);
	sessions_fixture_fini(&f);
}

Test(sessions, a_removal_is_kept_for_the_next_commit_when_one_fails)
{
	struct sessions_fixture     f;
	struct zos_session          s;
	struct zos_sessions_changes c;
	int64_t                     now     = 1700000000000;
	bool                        removed = false;

	tracked_init(&f, &now, 0);
	cr_assert_eq(zos_sessions_start(f.s, "p", &s), ZOS_SESSION_OK);
	cr_assert_eq(
	    zos_sessions_transition(f.s, s.id, ZOS_PROOF_ABANDONED, 0, NULL),
	    ZOS_SESSION_OK);
	cr_assert_eq(commit_all(f.s), 1);
	now += 3600 * 1000;
	cr_assert_eq(zos_sessions_expire(f.s, 0), 1);
	cr_assert_eq(zos_sessions_take_changes(f.s, &c), ZOS_SESSION_OK);
	cr_assert_eq(c.count, 1);
	cr_assert(c.rows[0].removed);
	(void) zos_sessions_changes_failed(f.s, &c);
	zos_sessions_changes_finish(&c);

	cr_assert_eq(zos_sessions_take_changes(f.s, &c), ZOS_SESSION_OK);
	for (size_t i = 0; i < c.count; i++) {
		removed = removed ||
		    (c.rows[i].removed && strcmp(c.rows[i].s.id, s.id) == 0);
	}
	cr_assert(removed, "the removal was lost with the failed commit");
	zos_sessions_changes_durable(f.s, &c);
	zos_sessions_changes_finish(&c);
	sessions_fixture_fini(&f);
}

Test(sessions, untracked_every_change_is_seen_at_once_and_nothing_recorded)
{
	struct sessions_fixture     f;
	struct zos_session          s, got;
	struct zos_sessions_changes c;

	sessions_fixture_init(&f, 0);
	cr_assert_eq(zos_sessions_start(f.s, "p", &s), ZOS_SESSION_OK);
	cr_assert_eq(zos_sessions_get(f.s, s.id, &got), ZOS_SESSION_OK);
	cr_assert_eq(
	    zos_sessions_transition(f.s, s.id, ZOS_PROOF_ANALYZING, 0, NULL),
	    ZOS_SESSION_OK);
	cr_assert_eq(zos_sessions_get(f.s, s.id, &got), ZOS_SESSION_OK);
	cr_assert_eq(got.state, ZOS_PROOF_ANALYZING);
	cr_assert_eq(zos_sessions_take_changes(f.s, &c), ZOS_SESSION_OK);
	cr_assert_eq(c.count, 0);
	zos_sessions_changes_finish(&c);
	sessions_fixture_fini(&f);
}

/*
 * A slot the table grows into holds whatever malloc left there. Made
 * deterministic with glibc's M_PERTURB (meson test sets MALLOC_PERTURB_,
 * ASan fills new memory too): every new session must be found, and with
 * tracking, taken once for the store and then seen.
 */
Test(sessions, new_slots_start_clean_whatever_malloc_hands_out)
{
	struct sessions_fixture f;
	struct zos_session      s[100], got;
	int64_t                 now = 1700000000000;

	/* Under ASan (which fills new memory itself) this is refused. */
	(void) mallopt(M_PERTURB, 0xa5);
	sessions_fixture_init(&f, 0);
	for (int i = 0; i < 100; i++) {
		cr_assert_eq(
		    zos_sessions_start(f.s, "p", &s[i]), ZOS_SESSION_OK);
	}
	for (int i = 0; i < 100; i++) {
		cr_assert_eq(zos_sessions_get(f.s, s[i].id, &got),
		    ZOS_SESSION_OK, "untracked session %d", i);
	}
	sessions_fixture_fini(&f);

	tracked_init(&f, &now, 0);
	for (int i = 0; i < 100; i++) {
		cr_assert_eq(
		    zos_sessions_start(f.s, "p", &s[i]), ZOS_SESSION_OK);
	}
	cr_assert_eq(commit_all(f.s), 100, "a new session was not taken");
	for (int i = 0; i < 100; i++) {
		cr_assert_eq(zos_sessions_get(f.s, s[i].id, &got),
		    ZOS_SESSION_OK, "tracked session %d", i);
	}
	sessions_fixture_fini(&f);
	(void) mallopt(M_PERTURB, 0);
}

/* ---- node ids (sessions sharded by id) ---- */

Test(sessions, ids_carry_the_node_id_and_are_found_by_it)
{
	struct sessions_fixture f;
	struct zos_session      a, got;
	uint32_t                node = 0;
	char                    want[16];

	sessions_fixture_init(&f, 0);
	cr_assert_eq(
	    zos_sessions_set_node(f.s, 65536), ZOS_SESSION_INVALID_ARGUMENT);
	cr_assert_eq(zos_sessions_set_node(f.s, 3), ZOS_SESSION_OK);
	cr_assert_eq(zos_sessions_node(f.s), 3);
	cr_assert_eq(zos_sessions_start(f.s, "p", &a), ZOS_SESSION_OK);
	cr_assert_eq(strncmp(a.id, "3-", 2), 0, "%s", a.id);
	cr_assert_eq(strlen(a.id), 2 + ZOS_SESSION_HEX_LEN);
	cr_assert(zos_session_id_node(a.id, &node));
	cr_assert_eq(node, 3);
	cr_assert_eq(zos_sessions_get(f.s, a.id, &got), ZOS_SESSION_OK);
	cr_assert_eq(
	    zos_sessions_transition(f.s, a.id, ZOS_PROOF_ANALYZING, 0, &got),
	    ZOS_SESSION_OK);
	cr_assert_eq(zos_sessions_reset(f.s, a.id, &got), ZOS_SESSION_OK);
	sessions_fixture_fini(&f);

	/* The largest node id fills the id buffer exactly. */
	sessions_fixture_init(&f, 0);
	cr_assert_eq(zos_sessions_set_node(f.s, 65535), ZOS_SESSION_OK);
	cr_assert_eq(zos_sessions_start(f.s, "p", &a), ZOS_SESSION_OK);
	snprintf(want, sizeof(want), "%u-", 65535u);
	cr_assert_eq(strncmp(a.id, want, strlen(want)), 0, "%s", a.id);
	cr_assert_eq(strlen(a.id), ZOS_SESSION_ID_LEN);
	cr_assert(zos_session_id_node(a.id, &node));
	cr_assert_eq(node, 65535);
	sessions_fixture_fini(&f);
}

Test(sessions, id_shapes_old_and_new_are_told_apart)
{
	static const char hex32[] = "0123456789abcdef0123456789abcdef";
	uint32_t          node    = 0;
	char              id[64];

	/* Old shapes: valid, no node. */
	cr_assert(zos_session_id_valid(hex32));
	cr_assert_not(zos_session_id_node(hex32, &node));
	cr_assert(zos_session_id_valid("0123456789abcdef"));
	cr_assert_not(zos_session_id_node("0123456789abcdef", &node));
	/* The new one. */
	snprintf(id, sizeof(id), "12-%s", hex32);
	cr_assert(zos_session_id_valid(id));
	cr_assert(zos_session_id_node(id, &node));
	cr_assert_eq(node, 12);
	/* Not ids: a node of 0, above 65535, a leading zero, upper case, a
	 * short tail, no dash, a sign, an empty string. */
	const char *bad[] = { "0-", "65536-", "012-", "1-ABC", "1-0123", "1",
		"-1-", "+1-", "" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(id, sizeof(id), "%s%s", bad[i], hex32);
		if (strcmp(bad[i], "1-ABC") == 0) {
			snprintf(id, sizeof(id), "1-%s",
			    "ABCDEF0123456789abcdef0123456789");
		} else if (strcmp(bad[i], "1-0123") == 0) {
			snprintf(id, sizeof(id), "1-0123");
		} else if (strcmp(bad[i], "") == 0) {
			id[0] = '\0';
		}
		if (strcmp(bad[i], "1") != 0) {
			cr_assert_not(zos_session_id_valid(id), "%s", id);
		}
		cr_assert_not(zos_session_id_node(id, &node), "%s", id);
	}
	cr_assert_not(zos_session_id_valid(NULL));
	cr_assert_not(zos_session_id_node(NULL, &node));
}

Test(sessions, restore_accepts_old_and_new_shapes_together)
{
	struct sessions_fixture   f, g;
	struct zos_sessions_image image;
	struct zos_session        got, mine;
	char                      err[256];

	sessions_fixture_init(&f, 0);
	image_of(&f, 3, &image);
	sessions_fixture_fini(&f);
	/* One 16-digit id of the oldest shape, one of node 2, one plain. */
	snprintf(image.sessions[0].id, sizeof(image.sessions[0].id), "%s",
	    "00112233445566ff");
	snprintf(image.sessions[1].id, sizeof(image.sessions[1].id), "2-%s",
	    "00112233445566778899aabbccddeeff");

	sessions_fixture_init(&g, 0);
	cr_assert_eq(zos_sessions_set_node(g.s, 2), ZOS_SESSION_OK);
	cr_assert_eq(zos_sessions_restore(g.s, &image, err, sizeof(err)),
	    ZOS_SESSION_OK, "%s", err);
	for (size_t i = 0; i < image.count; i++) {
		cr_assert_eq(zos_sessions_get(g.s, image.sessions[i].id, &got),
		    ZOS_SESSION_OK, "%s", image.sessions[i].id);
	}
	cr_assert_eq(zos_sessions_start(g.s, "new", &mine), ZOS_SESSION_OK);
	cr_assert_eq(strncmp(mine.id, "2-", 2), 0);
	zos_sessions_image_finish(&image);
	sessions_fixture_fini(&g);
}
