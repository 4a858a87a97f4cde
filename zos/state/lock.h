/*
 * Ranked reader/writer locks for the zOS state.
 *
 * The state has four locks, always taken in this order:
 *
 *   1 skills           the skill vector
 *   2 session_state    proof sessions
 *   3 routing_metrics  per-model outcome counters
 *   4 response_cache   the LRU of model responses
 *
 * The order follows how a request flows through zOS (who is the student,
 * where are they, which model answers, what did it say before), so that a
 * handler that needs two of them naturally takes them in rank order, and
 * one fixed order makes deadlock impossible.
 *
 * Each thread keeps a record of the ranks it holds (a thread-local: the
 * one piece of mutable static data the server allows). Taking a lock whose
 * rank is not above every rank held, which includes taking one already
 * held, is a violation: with ZOS_LOCK_CHECKS (debug and test builds) it
 * aborts naming both locks; otherwise it is counted
 * (zos_lock_order_violations_total) and logged once per call site.
 * zos_assert_no_locks_held() guards every blocking operation (I/O, nng
 * send and receive, backend calls) in the same way.
 *
 * Readers never write a shared cache line: each thread announces itself
 * in one of ZOS_LOCK_SLOTS padded per-slot counters and checks that no
 * writer is in (a "big reader" lock). A writer takes the pthread rwlock,
 * raises its flag and waits for the slots to drain; readers that see the
 * flag fall back to the rwlock and wait there. So readers scale with cores
 * and writers pay for it, which is the right trade for state that is read
 * on every call and written on few.
 *
 * Wait time (from asking to getting) and hold time (from getting to
 * releasing) are recorded per lock in log-linear histograms, for one
 * acquisition in ZOS_LOCK_SAMPLE of each thread (the first, then every
 * ZOS_LOCK_SAMPLE-th), so that timing adds no shared write to most reads.
 */
#ifndef ZOS_LOCK_H
#define ZOS_LOCK_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "zrpc/histogram.h"
#include "zrpc/log.h"

/* clang's thread-safety analysis (-Wthread-safety); no-ops elsewhere. */
#if defined(__clang__)
#define ZOS_CAPABILITY(x) __attribute__((capability(x)))
#define ZOS_ACQUIRE(...) __attribute__((acquire_capability(__VA_ARGS__)))
#define ZOS_ACQUIRE_SHARED(...) \
	__attribute__((acquire_shared_capability(__VA_ARGS__)))
#define ZOS_RELEASE(...) __attribute__((release_capability(__VA_ARGS__)))
#define ZOS_RELEASE_SHARED(...) \
	__attribute__((release_shared_capability(__VA_ARGS__)))
#define ZOS_REQUIRES(...) __attribute__((requires_capability(__VA_ARGS__)))
#define ZOS_REQUIRES_SHARED(...) \
	__attribute__((requires_shared_capability(__VA_ARGS__)))
#define ZOS_EXCLUDES(...) __attribute__((locks_excluded(__VA_ARGS__)))
#define ZOS_NO_THREAD_SAFETY_ANALYSIS \
	__attribute__((no_thread_safety_analysis))
#else
#define ZOS_CAPABILITY(x)
#define ZOS_ACQUIRE(...)
#define ZOS_ACQUIRE_SHARED(...)
#define ZOS_RELEASE(...)
#define ZOS_RELEASE_SHARED(...)
#define ZOS_REQUIRES(...)
#define ZOS_REQUIRES_SHARED(...)
#define ZOS_EXCLUDES(...)
#define ZOS_NO_THREAD_SAFETY_ANALYSIS
#endif

enum zos_lock_rank {
	ZOS_RANK_SKILLS          = 1,
	ZOS_RANK_SESSION_STATE   = 2,
	ZOS_RANK_ROUTING_METRICS = 3,
	ZOS_RANK_RESPONSE_CACHE  = 4,
};
#define ZOS_LOCK_RANKS 4

/* What the locks of one state share: the violation counter and the log. */
struct zos_lock_domain {
	atomic_uint_fast64_t violations; /* zos_lock_order_violations_total */
	zrpc_log_fn          log;
	void                *log_arg;
	bool                 abort_on_violation;
	/* Hands each thread its reader slot, round robin. */
	atomic_uint next_slot;
	/* Hashes of call sites already logged (log once per site). */
	atomic_uint_fast64_t logged_sites[32];
};

#define ZOS_LOCK_SLOTS 16    /* reader slots per lock */
#define ZOS_LOCK_SAMPLE 1024 /* one timed acquisition in this many */

/* A reader slot: its count, alone on a 64-byte cache line. */
struct zos_lock_slot {
	atomic_uint readers;
	char        pad[64 - sizeof(atomic_uint)];
};

struct ZOS_CAPABILITY("rwlock") zos_lock {
	pthread_rwlock_t        rwlock; /* writers; readers while one is in */
	atomic_bool             writer; /* a writer holds or is taking it */
	struct zos_lock_slot    slots[ZOS_LOCK_SLOTS];
	enum zos_lock_rank      rank;
	const char             *name;
	struct zos_lock_domain *domain;
	struct zrpc_histogram  *wait_ns; /* time to acquire; owned */
	struct zrpc_histogram  *hold_ns; /* time held; owned */
	/* Acquisitions, added at each timed one: behind the truth by less
	 * than ZOS_LOCK_SAMPLE per thread, never ahead. */
	atomic_uint_fast64_t acquisitions;
};

/*
 * Sets up DOMAIN: ABORT selects abort (debug/test) or count-and-log
 * (release) on violations; LOG may be NULL.
 */
void zos_lock_domain_init(struct zos_lock_domain *domain, bool abort,
    zrpc_log_fn log, void *log_arg);

/*
 * Initialises LOCK with its RANK and NAME (static string) in DOMAIN.
 * Writers are preferred, so a stream of readers cannot starve a writer.
 * Returns 0 or an errno value.
 */
int zos_lock_init(struct zos_lock *lock, enum zos_lock_rank rank,
    const char *name, struct zos_lock_domain *domain);

/* Destroys LOCK (not held by anyone). */
void zos_lock_finish(struct zos_lock *lock);

/*
 * Take LOCK for reading (shared) or writing (exclusive), checking the
 * rank order first. Use the macros, which pass the call site.
 */
void zos_lock_read_at(struct zos_lock *lock, const char *file, int line)
    ZOS_ACQUIRE_SHARED(lock);
void zos_lock_write_at(struct zos_lock *lock, const char *file, int line)
    ZOS_ACQUIRE(lock);
#define zos_lock_read(lock) zos_lock_read_at((lock), __FILE__, __LINE__)
#define zos_lock_write(lock) zos_lock_write_at((lock), __FILE__, __LINE__)

/* Release LOCK, recording how long it was held. */
void zos_unlock_read(struct zos_lock *lock) ZOS_RELEASE_SHARED(lock);
void zos_unlock_write(struct zos_lock *lock) ZOS_RELEASE(lock);

/*
 * The calling thread's reader slot (0 .. ZOS_LOCK_SLOTS - 1) in DOMAIN,
 * for counters that are sharded the same way. Lock-free.
 */
unsigned zos_lock_thread_slot(struct zos_lock_domain *domain);

/* True when the calling thread holds LOCK (either way). */
bool zos_lock_held(const struct zos_lock *lock);

/* Bit mask of the ranks the calling thread holds (bit r = rank r). */
unsigned zos_locks_held_mask(void);

/*
 * Checks that the calling thread holds no zOS lock before WHAT, a blocking
 * operation ("fsync", "backend call", "nng send"). A violation aborts with
 * ZOS_LOCK_CHECKS semantics or is counted and logged, as for order.
 */
void zos_assert_no_locks_held_at(struct zos_lock_domain *domain,
    const char *what, const char *file, int line);
#define zos_assert_no_locks_held(domain, what) \
	zos_assert_no_locks_held_at((domain), (what), __FILE__, __LINE__)

#endif /* ZOS_LOCK_H */
