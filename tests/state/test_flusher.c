/*
 * Tests for the flusher (zos/state/flusher.c) on its own: a fake write
 * function stands in for the files, so that group commit, the answers to
 * each request and the failure paths are seen without any disk.
 *
 * The fake part has a sequence number the test moves (as a change to the
 * state would); the write function copies it, may wait at a gate so that
 * a test can queue requests during a write, and records what it wrote.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "flusher.h"

/* The fake part and what the write function did. */
struct fake {
	atomic_uint_fast64_t seq; /* the part's number, as changes made it */
	pthread_mutex_t      mtx;
	pthread_cond_t       cv;
	bool                 gated;   /* guarded by: mtx; writes wait */
	unsigned             writing; /* guarded by: mtx; writes under way */
	unsigned             writes;  /* guarded by: mtx; copies written */
	unsigned             calls;   /* guarded by: mtx; write calls */
	int                  fail;    /* guarded by: mtx; next error */
	/* guarded by: mtx; a failed write undid up to this number (as
	 * the store's does: every change not durable, including those made
	 * during the write); 0 = none undone */
	uint64_t            undo_to;
	enum zos_store_part last_part; /* guarded by: mtx */
};

/* One request's answers; each must come exactly once. */
struct answer {
	atomic_int answers;
	int        error;
	char       message[128];
};

static void
fake_init(struct fake *f)
{
	memset(f, 0, sizeof(*f));
	atomic_init(&f->seq, 0);
	pthread_mutex_init(&f->mtx, NULL);
	pthread_cond_init(&f->cv, NULL);
}

static int
fake_write(void *arg, enum zos_store_part part, bool on_disk, uint64_t durable,
    uint64_t *seq, bool *wrote, uint64_t *undone, char *message,
    size_t message_len)
{
	struct fake *f = arg;
	int          rv;

	*seq = atomic_load(&f->seq);
	pthread_mutex_lock(&f->mtx);
	f->calls++;
	f->last_part = part;
	f->writing++;
	pthread_cond_broadcast(&f->cv);
	while (f->gated) {
		pthread_cond_wait(&f->cv, &f->mtx);
	}
	f->writing--;
	rv      = f->fail;
	f->fail = 0;
	if (rv != 0 && f->undo_to != 0) {
		*undone = f->undo_to;
	}
	if (rv == 0 && (!on_disk || *seq > durable)) {
		f->writes++;
		*wrote = true;
	}
	pthread_mutex_unlock(&f->mtx);
	if (rv != 0) {
		snprintf(message, message_len, "fake write failed");
	}
	return rv;
}

/* Waits until a write is under way (at the gate). */
static void
fake_wait_writing(struct fake *f)
{
	pthread_mutex_lock(&f->mtx);
	while (f->writing == 0) {
		pthread_cond_wait(&f->cv, &f->mtx);
	}
	pthread_mutex_unlock(&f->mtx);
}

static void
fake_gate(struct fake *f, bool gated)
{
	pthread_mutex_lock(&f->mtx);
	f->gated = gated;
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mtx);
}

static unsigned
fake_writes(struct fake *f)
{
	unsigned n;

	pthread_mutex_lock(&f->mtx);
	n = f->writes;
	pthread_mutex_unlock(&f->mtx);
	return n;
}

static void
answer_done(void *arg, int error, const char *message)
{
	struct answer *a = arg;

	a->error = error;
	snprintf(a->message, sizeof(a->message), "%s", message);
	atomic_fetch_add(&a->answers, 1);
}

/* A flusher with nothing durable yet. */
static struct zos_flusher *
flusher_new(void)
{
	const bool          on_disk[ZOS_FLUSHER_PARTS] = { false, false };
	const uint64_t      durable[ZOS_FLUSHER_PARTS] = { 0, 0 };
	struct zos_flusher *flusher                    = NULL;
	char                err[128];

	cr_assert_eq(
	    zos_flusher_create(&flusher, on_disk, durable, err, sizeof(err)),
	    0, "%s", err);
	return flusher;
}

Test(flusher, a_request_already_durable_is_answered_before_commit_returns)
{
	const bool          on_disk[ZOS_FLUSHER_PARTS] = { true, false };
	const uint64_t      durable[ZOS_FLUSHER_PARTS] = { 7, 0 };
	struct zos_flusher *flusher;
	struct answer       a = { 0 };
	char                err[128];

	cr_assert_eq(
	    zos_flusher_create(&flusher, on_disk, durable, err, sizeof(err)),
	    0);
	/* Not even started: nothing needs writing. */
	zos_flusher_commit(flusher, ZOS_STORE_SKILLS, 7, answer_done, &a);
	cr_assert_eq(atomic_load(&a.answers), 1);
	cr_assert_eq(a.error, 0);
	cr_assert_eq(zos_flusher_commit_waiters(flusher), 1);
	zos_flusher_destroy(flusher);
}

Test(flusher, requests_made_during_a_write_share_the_next_one)
{
	struct fake         f;
	struct zos_flusher *flusher = flusher_new();
	struct answer       first   = { 0 };
	struct answer       later[16];

	memset(later, 0, sizeof(later));
	fake_init(&f);
	fake_gate(&f, true);
	cr_assert_eq(zos_flusher_start(flusher, fake_write, &f), 0);
	atomic_store(&f.seq, 1);
	zos_flusher_commit(
	    flusher, ZOS_STORE_SESSIONS, 1, answer_done, &first);
	fake_wait_writing(&f);
	/* While the first write waits, sixteen more changes commit. */
	for (unsigned i = 0; i < 16; i++) {
		atomic_store(&f.seq, 2 + i);
		zos_flusher_commit(flusher, ZOS_STORE_SESSIONS, 2 + i,
		    answer_done, &later[i]);
	}
	cr_assert_eq(atomic_load(&first.answers), 0);
	fake_gate(&f, false);
	zos_flusher_destroy(flusher); /* writes what is queued first */

	cr_assert_eq(atomic_load(&first.answers), 1);
	cr_assert_eq(first.error, 0);
	for (unsigned i = 0; i < 16; i++) {
		cr_assert_eq(
		    atomic_load(&later[i].answers), 1, "request %u", i);
		cr_assert_eq(later[i].error, 0, "%s", later[i].message);
	}
	/* One write for the first, one for all sixteen. */
	cr_assert_eq(fake_writes(&f), 2);
	cr_assert_eq(f.last_part, ZOS_STORE_SESSIONS);
}

Test(flusher, a_failed_write_answers_its_batch_and_the_next_request_retries)
{
	struct fake         f;
	struct zos_flusher *flusher = flusher_new();
	char                message[128];

	fake_init(&f);
	cr_assert_eq(zos_flusher_start(flusher, fake_write, &f), 0);
	atomic_store(&f.seq, 3);
	f.fail = ENOSPC;
	cr_assert_eq(zos_flusher_commit_wait(flusher, ZOS_STORE_SKILLS, 3,
	                 message, sizeof(message)),
	    ENOSPC);
	cr_assert_str_eq(message, "fake write failed");
	cr_assert_eq(fake_writes(&f), 0);
	/* Nothing was counted durable: the same number is written now. */
	cr_assert_eq(zos_flusher_commit_wait(flusher, ZOS_STORE_SKILLS, 3,
	                 message, sizeof(message)),
	    0, "%s", message);
	cr_assert_eq(fake_writes(&f), 1);
	cr_assert_eq(zos_flusher_commit_waiters(flusher), 1);
	zos_flusher_destroy(flusher);
}

Test(flusher, a_number_the_part_never_reached_is_refused_not_left_waiting)
{
	struct fake         f;
	struct zos_flusher *flusher = flusher_new();
	char                message[128];

	fake_init(&f);
	cr_assert_eq(zos_flusher_start(flusher, fake_write, &f), 0);
	atomic_store(&f.seq, 2);
	cr_assert_eq(zos_flusher_commit_wait(flusher, ZOS_STORE_SKILLS, 5,
	                 message, sizeof(message)),
	    EINVAL);
	cr_assert(strstr(message, "not reached") != NULL, "%s", message);
	zos_flusher_destroy(flusher);
}

Test(flusher, a_part_that_does_not_exist_is_refused)
{
	struct zos_flusher *flusher = flusher_new();
	struct answer       a       = { 0 };

	zos_flusher_commit(
	    flusher, (enum zos_store_part) 9, 1, answer_done, &a);
	cr_assert_eq(atomic_load(&a.answers), 1);
	cr_assert_eq(a.error, EINVAL);
	zos_flusher_destroy(flusher);
}

Test(flusher, requests_wait_for_start_and_are_cancelled_if_it_never_comes)
{
	struct fake         f;
	struct zos_flusher *flusher = flusher_new();
	struct answer       early   = { 0 };
	struct answer       never   = { 0 };
	char                message[128];

	fake_init(&f);
	atomic_store(&f.seq, 1);
	zos_flusher_commit(flusher, ZOS_STORE_SKILLS, 1, answer_done, &early);
	cr_assert_eq(atomic_load(&early.answers), 0);
	cr_assert_eq(zos_flusher_start(flusher, fake_write, &f), 0);
	cr_assert_eq(zos_flusher_start(flusher, fake_write, &f), EALREADY);
	cr_assert_eq(zos_flusher_commit_wait(flusher, ZOS_STORE_SKILLS, 1,
	                 message, sizeof(message)),
	    0);
	/* Its callback runs on the flusher's thread, maybe just after the
	 * wait returned: the destroy joins that thread. */
	zos_flusher_destroy(flusher);
	cr_assert_eq(atomic_load(&early.answers), 1);
	cr_assert_eq(early.error, 0);

	flusher = flusher_new();
	zos_flusher_commit(
	    flusher, ZOS_STORE_SESSIONS, 1, answer_done, &never);
	zos_flusher_destroy(flusher);
	cr_assert_eq(atomic_load(&never.answers), 1);
	cr_assert_eq(never.error, ECANCELED);
	zos_flusher_destroy(NULL);
}

static unsigned
fake_calls(struct fake *f)
{
	unsigned n;

	pthread_mutex_lock(&f->mtx);
	n = f->calls;
	pthread_mutex_unlock(&f->mtx);
	return n;
}

Test(flusher, numbers_a_failed_write_undid_are_refused_even_asked_later)
{
	struct fake         f;
	struct zos_flusher *flusher = flusher_new();
	struct answer       late    = { 0 };
	char                message[128];

	fake_init(&f);
	cr_assert_eq(zos_flusher_start(flusher, fake_write, &f), 0);
	atomic_store(&f.seq, 3);
	f.fail    = ENOSPC;
	f.undo_to = 3;
	cr_assert_eq(zos_flusher_commit_wait(flusher, ZOS_STORE_SESSIONS, 3,
	                 message, sizeof(message)),
	    ENOSPC);
	/* A caller whose change (2) was undone asks only now: refused at
	 * once, on its own thread, with the failure's cause. */
	zos_flusher_commit(flusher, ZOS_STORE_SESSIONS, 2, answer_done, &late);
	cr_assert_eq(atomic_load(&late.answers), 1);
	cr_assert_eq(late.error, ENOSPC);
	cr_assert_str_eq(late.message, "fake write failed");
	/* A change made after the undo is written and answered. */
	atomic_store(&f.seq, 4);
	cr_assert_eq(zos_flusher_commit_wait(flusher, ZOS_STORE_SESSIONS, 4,
	                 message, sizeof(message)),
	    0, "%s", message);
	/* Durable past it now, yet 3 never was. */
	cr_assert_eq(zos_flusher_commit_wait(flusher, ZOS_STORE_SESSIONS, 3,
	                 message, sizeof(message)),
	    ENOSPC);
	cr_assert_eq(zos_flusher_commit_wait(flusher, ZOS_STORE_SESSIONS, 4,
	                 message, sizeof(message)),
	    0);
	zos_flusher_destroy(flusher);
}

Test(flusher, requests_that_a_failed_write_undid_while_queued_fail_with_it)
{
	struct fake         f;
	struct zos_flusher *flusher = flusher_new();
	struct answer       first = { 0 }, during = { 0 };

	fake_init(&f);
	fake_gate(&f, true);
	cr_assert_eq(zos_flusher_start(flusher, fake_write, &f), 0);
	atomic_store(&f.seq, 1);
	zos_flusher_commit(
	    flusher, ZOS_STORE_SESSIONS, 1, answer_done, &first);
	fake_wait_writing(&f);
	/* Changed during the write, which then fails and undoes it too. */
	atomic_store(&f.seq, 2);
	zos_flusher_commit(
	    flusher, ZOS_STORE_SESSIONS, 2, answer_done, &during);
	pthread_mutex_lock(&f.mtx);
	f.fail    = EROFS;
	f.undo_to = 2;
	pthread_mutex_unlock(&f.mtx);
	fake_gate(&f, false);
	zos_flusher_destroy(flusher);
	cr_assert_eq(atomic_load(&first.answers), 1);
	cr_assert_eq(first.error, EROFS);
	cr_assert_eq(atomic_load(&during.answers), 1);
	cr_assert_eq(during.error, EROFS, "%s", during.message);
	cr_assert_eq(fake_writes(&f), 0);
}

Test(flusher, a_failing_part_is_tried_again_by_itself_until_it_works,
    .timeout = 30)
{
	struct fake         f;
	struct zos_flusher *flusher = flusher_new();
	char                message[128];

	fake_init(&f);
	cr_assert_eq(zos_flusher_start(flusher, fake_write, &f), 0);
	atomic_store(&f.seq, 1);
	f.fail = EIO;
	cr_assert_eq(zos_flusher_commit_wait(flusher, ZOS_STORE_SKILLS, 1,
	                 message, sizeof(message)),
	    EIO);
	cr_assert_eq(fake_calls(&f), 1);
	/* No request: the flusher tries on its own (about once a second)
	 * and, the cause gone, writes. Bounded: 10 s. */
	for (int i = 0; i < 1000 && fake_writes(&f) == 0; i++) {
		struct timespec ms = { 0, 10 * 1000000 };

		nanosleep(&ms, NULL);
	}
	cr_assert_eq(fake_writes(&f), 1);
	cr_assert_geq(fake_calls(&f), 2);
	/* Healthy again, it stops trying. */
	{
		unsigned        calls = fake_calls(&f);
		struct timespec wait  = { 2 * ZOS_FLUSHER_RETRY_MS / 1000, 0 };

		nanosleep(&wait, NULL);
		cr_assert_eq(fake_calls(&f), calls, "it kept writing");
	}
	zos_flusher_destroy(flusher);
}
