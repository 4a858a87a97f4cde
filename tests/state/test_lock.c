/*
 * Ranked locks: the order rule (both orders of every pair), re-taking,
 * blocking operations under a lock, concurrent readers, writer exclusion,
 * and the release-build behaviour (count and log once per site).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "lock.h"

struct four {
	struct zos_lock_domain domain;
	struct zos_lock        lock[ZOS_LOCK_RANKS + 1]; /* by rank */
};

static const char *const lock_names[] = { "", "skills", "session_state",
	"routing_metrics", "response_cache" };

static void
four_init(
    struct four *f, bool abort_on_violation, zrpc_log_fn log, void *log_arg)
{
	zos_lock_domain_init(&f->domain, abort_on_violation, log, log_arg);
	for (int r = 1; r <= ZOS_LOCK_RANKS; r++) {
		cr_assert_eq(zos_lock_init(&f->lock[r], (enum zos_lock_rank) r,
		                 lock_names[r], &f->domain),
		    0);
	}
}

static void
four_finish(struct four *f)
{
	for (int r = 1; r <= ZOS_LOCK_RANKS; r++) {
		zos_lock_finish(&f->lock[r]);
	}
}

Test(lock, taking_locks_in_rank_order_is_allowed)
{
	struct four f;

	four_init(&f, true, NULL, NULL);
	zos_lock_read(&f.lock[1]);
	zos_lock_write(&f.lock[2]);
	zos_lock_read(&f.lock[4]);
	cr_assert_eq(zos_locks_held_mask(), (1u << 1) | (1u << 2) | (1u << 4));
	cr_assert(zos_lock_held(&f.lock[2]));
	cr_assert_not(zos_lock_held(&f.lock[3]));
	zos_unlock_read(&f.lock[4]);
	zos_unlock_write(&f.lock[2]);
	zos_unlock_read(&f.lock[1]);
	cr_assert_eq(zos_locks_held_mask(), 0);
	/* Skipping ranks and starting anywhere are fine too. */
	zos_lock_write(&f.lock[3]);
	zos_lock_write(&f.lock[4]);
	zos_unlock_write(&f.lock[4]);
	zos_unlock_write(&f.lock[3]);
	cr_assert_eq(atomic_load(&f.domain.violations), 0);
	four_finish(&f);
}

/* Takes FIRST then SECOND (by rank), for writing. */
static void
take_pair(int first, int second)
{
	struct four f;

	four_init(&f, true, NULL, NULL);
	zos_lock_write(&f.lock[first]);
	zos_lock_write(&f.lock[second]);
	/* Unreachable when the pair is out of order. */
	zos_unlock_write(&f.lock[second]);
	zos_unlock_write(&f.lock[first]);
	four_finish(&f);
}

#define OUT_OF_ORDER(a, b)                                            \
	Test(lock, taking_rank_##b##_while_holding_rank_##a##_aborts, \
	    .signal = SIGABRT)                                        \
	{                                                             \
		take_pair(a, b);                                      \
	}

OUT_OF_ORDER(2, 1)
OUT_OF_ORDER(3, 1)
OUT_OF_ORDER(4, 1)
OUT_OF_ORDER(3, 2)
OUT_OF_ORDER(4, 2)
OUT_OF_ORDER(4, 3)

#define RETAKE(a)                                                 \
	Test(lock, retaking_rank_##a##_aborts, .signal = SIGABRT) \
	{                                                         \
		take_pair(a, a);                                  \
	}

RETAKE(1)
RETAKE(2)
RETAKE(3)
RETAKE(4)

Test(lock, retaking_a_read_lock_for_reading_aborts, .signal = SIGABRT)
{
	struct four f;

	four_init(&f, true, NULL, NULL);
	zos_lock_read(&f.lock[2]);
	zos_lock_read(&f.lock[2]);
}

Test(lock, blocking_operation_under_a_lock_aborts, .signal = SIGABRT)
{
	struct four f;

	four_init(&f, true, NULL, NULL);
	zos_lock_read(&f.lock[3]);
	zos_assert_no_locks_held(&f.domain, "fsync");
}

Test(lock, blocking_operation_without_locks_is_fine)
{
	struct four f;

	four_init(&f, true, NULL, NULL);
	zos_lock_read(&f.lock[3]);
	zos_unlock_read(&f.lock[3]);
	zos_assert_no_locks_held(&f.domain, "fsync");
	cr_assert_eq(atomic_load(&f.domain.violations), 0);
	four_finish(&f);
}

/* Release builds: counted, and logged once per call site. */
struct log_capture {
	int  lines;
	char last[512];
};

static void
capture_log(void *arg, zrpc_log_level level, const char *message)
{
	struct log_capture *c = arg;

	cr_assert_eq(level, ZRPC_LOG_ERROR);
	c->lines++;
	snprintf(c->last, sizeof(c->last), "%s", message);
}

Test(lock, release_builds_count_violations_and_log_each_site_once)
{
	struct four        f;
	struct log_capture c = { 0 };

	four_init(&f, false, capture_log, &c);
	for (int i = 0; i < 3; i++) {
		zos_lock_read(&f.lock[4]);
		zos_lock_read(&f.lock[1]); /* the same site each time */
		zos_unlock_read(&f.lock[1]);
		zos_unlock_read(&f.lock[4]);
	}
	cr_assert_eq(atomic_load(&f.domain.violations), 3);
	cr_assert_eq(c.lines, 1, "one line per site");
	cr_assert(strstr(c.last, "'skills'") != NULL, "%s", c.last);
	cr_assert(strstr(c.last, "'response_cache'") != NULL, "%s", c.last);
	cr_assert(strstr(c.last, "test_lock.c") != NULL, "%s", c.last);

	zos_lock_write(&f.lock[2]);
	zos_assert_no_locks_held(&f.domain, "backend call");
	zos_unlock_write(&f.lock[2]);
	cr_assert_eq(atomic_load(&f.domain.violations), 4);
	cr_assert_eq(c.lines, 2, "another site, another line");
	cr_assert(strstr(c.last, "backend call") != NULL, "%s", c.last);
	four_finish(&f);
}

/* Two readers inside the same read section at once. */
struct readers {
	struct zos_lock *lock;
	pthread_mutex_t  mutex;
	pthread_cond_t   cond;
	int              inside; /* guarded by: mutex */
	bool             both;   /* guarded by: mutex */
};

static void *
reader_main(void *arg)
{
	struct readers *r = arg;
	struct timespec until;

	zos_lock_read(r->lock);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 5;
	pthread_mutex_lock(&r->mutex);
	r->inside++;
	pthread_cond_broadcast(&r->cond);
	while (r->inside < 2) {
		if (pthread_cond_timedwait(&r->cond, &r->mutex, &until) != 0) {
			break;
		}
	}
	if (r->inside == 2) {
		r->both = true;
	}
	pthread_mutex_unlock(&r->mutex);
	zos_unlock_read(r->lock);
	return NULL;
}

Test(lock, two_readers_hold_the_same_lock_at_once)
{
	struct four    f;
	struct readers r;
	pthread_t      a, b;

	four_init(&f, true, NULL, NULL);
	memset(&r, 0, sizeof(r));
	r.lock = &f.lock[1];
	pthread_mutex_init(&r.mutex, NULL);
	pthread_cond_init(&r.cond, NULL);
	pthread_create(&a, NULL, reader_main, &r);
	pthread_create(&b, NULL, reader_main, &r);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	cr_assert(r.both, "both readers were inside together");
	four_finish(&f);
}

/* A writer that records when it got in. */
struct writer {
	struct zos_lock *lock;
	atomic_bool      entered;
};

static void *
writer_main(void *arg)
{
	struct writer *w = arg;

	zos_lock_write(w->lock);
	atomic_store(&w->entered, true);
	zos_unlock_write(w->lock);
	return NULL;
}

Test(lock, a_writer_waits_for_readers_and_excludes_them)
{
	struct four   f;
	struct writer w;
	pthread_t     t;

	four_init(&f, true, NULL, NULL);
	w.lock = &f.lock[4];
	atomic_init(&w.entered, false);

	zos_lock_read(&f.lock[4]);
	pthread_create(&t, NULL, writer_main, &w);
	/* The writer raises its flag before it waits for the reader. */
	for (int i = 0; i < 10000 && !atomic_load(&f.lock[4].writer); i++) {
		struct timespec ms = { 0, 1000000 };
		nanosleep(&ms, NULL); /* bounded polling of a flag */
	}
	cr_assert(atomic_load(&f.lock[4].writer), "the writer is waiting");
	cr_assert_not(atomic_load(&w.entered), "not while a reader is in");
	zos_unlock_read(&f.lock[4]);
	pthread_join(t, NULL);
	cr_assert(atomic_load(&w.entered));

	/* While a writer holds it, readers are kept out (they wait on the
	 * rwlock, which the writer holds). */
	zos_lock_write(&f.lock[4]);
	cr_assert_eq(pthread_rwlock_tryrdlock(&f.lock[4].rwlock), EBUSY);
	zos_unlock_write(&f.lock[4]);
	cr_assert_eq(pthread_rwlock_tryrdlock(&f.lock[4].rwlock), 0);
	pthread_rwlock_unlock(&f.lock[4].rwlock);
	four_finish(&f);
}

Test(lock, wait_and_hold_times_are_recorded)
{
	struct four f;

	four_init(&f, true, NULL, NULL);
	/* One acquisition in ZOS_LOCK_SAMPLE is timed: the first, then
	 * every ZOS_LOCK_SAMPLE-th. */
	for (int i = 0; i < 10 * ZOS_LOCK_SAMPLE; i++) {
		zos_lock_write(&f.lock[2]);
		zos_unlock_write(&f.lock[2]);
		zos_lock_read(&f.lock[1]);
		zos_unlock_read(&f.lock[1]);
	}
	cr_assert_eq(zrpc_histogram_count(f.lock[2].wait_ns), 10);
	cr_assert_eq(zrpc_histogram_count(f.lock[2].hold_ns), 10);
	/* Counted up to the last timed acquisition, the 9 * SAMPLE + 1-th. */
	cr_assert_eq(
	    atomic_load(&f.lock[2].acquisitions), 9 * ZOS_LOCK_SAMPLE + 1);
	cr_assert_eq(zrpc_histogram_count(f.lock[1].hold_ns), 10);
	cr_assert_eq(zrpc_histogram_count(f.lock[3].hold_ns), 0);
	four_finish(&f);
}
