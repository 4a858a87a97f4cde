/*
 * Ranked locks; see lock.h for the order and why it is that order.
 *
 * The held-rank record is a thread-local bit mask plus, per rank, the lock
 * and the time it was taken (for hold-time measurement). A rank can be
 * held once per thread, which is exactly what the order rule allows:
 * taking a lock whose rank is held already is itself a violation.
 */
#include "lock.h"
#include "zrpc/clock.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct lock_record {
	unsigned               mask;
	const struct zos_lock *held[ZOS_LOCK_RANKS + 1];
	uint64_t               since_ns[ZOS_LOCK_RANKS + 1]; /* 0: untimed */
	bool                   slow[ZOS_LOCK_RANKS + 1];  /* read via rwlock */
	unsigned               ticks[ZOS_LOCK_RANKS + 1]; /* acquisitions */
	unsigned               flushed[ZOS_LOCK_RANKS + 1]; /* ticks counted */
	int                    slot; /* reader slot + 1; 0 = not chosen */
};

/* The one mutable static in the server: each thread's own record. */
static _Thread_local struct lock_record lock_record;

void
zos_lock_domain_init(
    struct zos_lock_domain *domain, bool abort, zrpc_log_fn log, void *log_arg)
{
	atomic_init(&domain->violations, 0);
	atomic_init(&domain->next_slot, 0);
	domain->log                = log;
	domain->log_arg            = log_arg;
	domain->abort_on_violation = abort;
	for (size_t i = 0; i < 32; i++) {
		atomic_init(&domain->logged_sites[i], 0);
	}
}

int
zos_lock_init(struct zos_lock *lock, enum zos_lock_rank rank, const char *name,
    struct zos_lock_domain *domain)
{
	pthread_rwlockattr_t attr;
	int                  rv;

	memset(lock, 0, sizeof(*lock));
	atomic_init(&lock->writer, false);
	for (size_t i = 0; i < ZOS_LOCK_SLOTS; i++) {
		atomic_init(&lock->slots[i].readers, 0);
	}
	lock->rank   = rank;
	lock->name   = name;
	lock->domain = domain;
	if ((rv = zrpc_histogram_create(&lock->wait_ns, 4)) != 0) {
		return rv;
	}
	if ((rv = zrpc_histogram_create(&lock->hold_ns, 4)) != 0) {
		zrpc_histogram_destroy(lock->wait_ns);
		return rv;
	}
	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(
	    &attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	rv = pthread_rwlock_init(&lock->rwlock, &attr);
	pthread_rwlockattr_destroy(&attr);
	if (rv != 0) {
		zrpc_histogram_destroy(lock->wait_ns);
		zrpc_histogram_destroy(lock->hold_ns);
	}
	return rv;
}

void
zos_lock_finish(struct zos_lock *lock)
{
	pthread_rwlock_destroy(&lock->rwlock);
	zrpc_histogram_destroy(lock->wait_ns);
	zrpc_histogram_destroy(lock->hold_ns);
}

/* Site hash for "log once per site". */
static uint64_t
lock_site_hash(const char *file, int line)
{
	uint64_t h = 1469598103934665603u ^ (uint64_t) line;

	while (*file != '\0') {
		h ^= (unsigned char) *file++;
		h *= 1099511628211u;
	}
	return h != 0 ? h : 1;
}

/* True the first time SITE is seen in DOMAIN (and when the table is
 * full: better a repeated line than a lost one). */
static bool
lock_site_first(struct zos_lock_domain *domain, uint64_t site)
{
	for (size_t i = 0; i < 32; i++) {
		uint64_t seen = atomic_load(&domain->logged_sites[i]);
		if (seen == site) {
			return false;
		}
		if (seen == 0 &&
		    atomic_compare_exchange_strong(
		        &domain->logged_sites[i], &seen, site)) {
			return true;
		}
		if (seen == site) {
			return false;
		}
	}
	return true;
}

/* Reports a violation described by MESSAGE at FILE:LINE. */
static void
lock_violation(struct zos_lock_domain *domain, const char *message,
    const char *file, int line)
{
	char text[384];

	snprintf(text, sizeof(text), "%s (at %s:%d)", message, file, line);
	if (domain->abort_on_violation) {
		fprintf(stderr, "zos: %s\n", text);
		abort();
	}
	atomic_fetch_add(&domain->violations, 1);
	if (domain->log != NULL &&
	    lock_site_first(domain, lock_site_hash(file, line))) {
		domain->log(domain->log_arg, ZRPC_LOG_ERROR, text);
	}
}

static void
lock_check_order(const struct zos_lock *lock, const char *file, int line)
{
	unsigned mask = lock_record.mask;
	char     message[256];

	if (mask == 0 || (mask >> lock->rank) == 0) {
		/* Nothing held at this rank or above: in order. */
		return;
	}
	/* The highest rank held names the lock in the way. */
	unsigned               top  = 31u - (unsigned) __builtin_clz(mask);
	const struct zos_lock *held = lock_record.held[top];
	if (held == lock) {
		snprintf(message, sizeof(message),
		    "lock order violation: lock '%s' (rank %d) taken again "
		    "while already held",
		    lock->name, lock->rank);
	} else {
		snprintf(message, sizeof(message),
		    "lock order violation: taking '%s' (rank %d) while "
		    "holding "
		    "'%s' (rank %d)",
		    lock->name, lock->rank, held->name, held->rank);
	}
	lock_violation(lock->domain, message, file, line);
}

unsigned
zos_lock_thread_slot(struct zos_lock_domain *domain)
{
	/* Handed out round robin at a thread's first use. */
	if (lock_record.slot == 0) {
		unsigned n       = atomic_fetch_add(&domain->next_slot, 1);
		lock_record.slot = (int) (n % ZOS_LOCK_SLOTS) + 1;
	}
	return (unsigned) lock_record.slot - 1;
}

/* This thread's reader slot of LOCK. */
static struct zos_lock_slot *
lock_slot(struct zos_lock *lock)
{
	return &lock->slots[zos_lock_thread_slot(lock->domain)];
}

/* True when this acquisition is one of the timed ones. */
static bool
lock_sampled(const struct zos_lock *lock)
{
	return lock_record.ticks[lock->rank]++ % ZOS_LOCK_SAMPLE == 0;
}

static void
lock_acquired(struct zos_lock *lock, uint64_t asked_ns)
{
	uint64_t now = 0;

	if (asked_ns != 0) {
		now = zrpc_now_ns();
		zrpc_histogram_record(lock->wait_ns, now - asked_ns);
		/* Count the acquisitions since the last timed one: the
		 * shared counter lags, never runs ahead. */
		atomic_fetch_add_explicit(&lock->acquisitions,
		    lock_record.ticks[lock->rank] -
		        lock_record.flushed[lock->rank],
		    memory_order_relaxed);
		lock_record.flushed[lock->rank] =
		    lock_record.ticks[lock->rank];
	}
	/* A (counted) re-take in release builds keeps the first record. */
	if ((lock_record.mask & (1u << lock->rank)) == 0) {
		lock_record.mask |= 1u << lock->rank;
		lock_record.held[lock->rank]     = lock;
		lock_record.since_ns[lock->rank] = now;
	}
}

static void
lock_released(struct zos_lock *lock)
{
	uint64_t since = lock_record.since_ns[lock->rank];

	lock_record.mask &= ~(1u << lock->rank);
	lock_record.held[lock->rank] = NULL;
	if (since != 0) {
		zrpc_histogram_record(lock->hold_ns, zrpc_now_ns() - since);
	}
}

void
zos_lock_read_at(struct zos_lock *lock, const char *file,
    int line) ZOS_NO_THREAD_SAFETY_ANALYSIS
{
	struct zos_lock_slot *slot  = lock_slot(lock);
	uint64_t              asked = lock_sampled(lock) ? zrpc_now_ns() : 0;

	lock_check_order(lock, file, line);
	/* Announce, then look for a writer; the writer raises its flag,
	 * then looks for readers (both sequentially consistent), so at
	 * least one of the two sees the other. */
	atomic_fetch_add(&slot->readers, 1);
	if (atomic_load(&lock->writer)) {
		atomic_fetch_sub(&slot->readers, 1);
		pthread_rwlock_rdlock(&lock->rwlock);
		lock_record.slow[lock->rank] = true;
	} else {
		lock_record.slow[lock->rank] = false;
	}
	lock_acquired(lock, asked);
}

void
zos_lock_write_at(struct zos_lock *lock, const char *file,
    int line) ZOS_NO_THREAD_SAFETY_ANALYSIS
{
	uint64_t asked = lock_sampled(lock) ? zrpc_now_ns() : 0;

	lock_check_order(lock, file, line);
	pthread_rwlock_wrlock(&lock->rwlock);
	atomic_store(&lock->writer, true);
	/* Readers hold the lock only to copy: wait for them to leave. */
	for (size_t i = 0; i < ZOS_LOCK_SLOTS; i++) {
		while (atomic_load(&lock->slots[i].readers) != 0) {
			sched_yield();
		}
	}
	lock_acquired(lock, asked);
}

void
zos_unlock_read(struct zos_lock *lock) ZOS_NO_THREAD_SAFETY_ANALYSIS
{
	bool slow = lock_record.slow[lock->rank];

	lock_released(lock);
	if (slow) {
		pthread_rwlock_unlock(&lock->rwlock);
	} else {
		atomic_fetch_sub_explicit(
		    &lock_slot(lock)->readers, 1, memory_order_release);
	}
}

void
zos_unlock_write(struct zos_lock *lock) ZOS_NO_THREAD_SAFETY_ANALYSIS
{
	lock_released(lock);
	atomic_store(&lock->writer, false);
	pthread_rwlock_unlock(&lock->rwlock);
}

bool
zos_lock_held(const struct zos_lock *lock)
{
	return lock_record.held[lock->rank] == lock;
}

unsigned
zos_locks_held_mask(void)
{
	return lock_record.mask;
}

void
zos_assert_no_locks_held_at(struct zos_lock_domain *domain, const char *what,
    const char *file, int line)
{
	unsigned mask = lock_record.mask;
	char     message[256];

	if (mask == 0) {
		return;
	}
	unsigned top = 31u - (unsigned) __builtin_clz(mask);
	snprintf(message, sizeof(message),
	    "blocking operation '%s' while holding lock '%s' (rank %u)", what,
	    lock_record.held[top]->name, top);
	lock_violation(domain, message, file, line);
}
