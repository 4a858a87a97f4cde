/*
 * The response cache: a bounded LRU of (model, prompt) -> response, the
 * fourth and last lock in the state's order (response_cache, rank 4).
 *
 * Values are immutable, reference-counted snapshots: a lookup copies a
 * pointer and adds a reference under the read lock, and the caller formats
 * its reply after unlocking, then drops the reference. Lookups take the
 * lock for reading only (readers never wait on each other) and record
 * recency in an atomic stamp; eviction, under the write lock and only when
 * a new key is stored at capacity, scans for the oldest stamp.
 *
 * zos_cache_get_or_compute is the single-flight path: on a miss exactly
 * one caller per key computes, outside every lock, while concurrent callers
 * for that key wait for its result (or error) without holding the cache
 * lock.
 *
 * Strings (model, prompt, response) are NUL-terminated and compared byte
 * for byte with their lengths; the hash only picks the bucket.
 */
#ifndef ZOS_CACHE_H
#define ZOS_CACHE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lock.h"

/* Bounds (DESIGN.md section 5 rule 6). */
#define ZOS_CACHE_DEFAULT_CAPACITY 200
#define ZOS_CACHE_MAX_CAPACITY (1u << 20)
#define ZOS_CACHE_MAX_MODEL_BYTES 256
#define ZOS_CACHE_MAX_PROMPT_BYTES (64u * 1024u)
#define ZOS_CACHE_MAX_RESPONSE_BYTES (1024u * 1024u)

/* Return codes: 0 is success, every failure is a distinct value. */
enum zos_cache_result {
	ZOS_CACHE_OK             = 0,
	ZOS_CACHE_NO_MEMORY      = 1, /* an allocation failed */
	ZOS_CACHE_TOO_LARGE      = 2, /* model, prompt or response too long */
	ZOS_CACHE_INVALID        = 3, /* NULL argument or bad capacity */
	ZOS_CACHE_COMPUTE_FAILED = 4, /* the compute function failed */
	ZOS_CACHE_SYSTEM         = 5, /* a pthread primitive failed */
	ZOS_CACHE_TIMED_OUT =
	    6, /* the deadline passed waiting for a compute */
};

/*
 * A cached response: immutable once published, freed when the last
 * reference is dropped. ERROR is 0 for a response; for the result of a
 * failed compute it is the compute function's code and TEXT its message.
 * TEXT is NUL-terminated, LEN bytes long (not counting the NUL).
 */
struct zos_cached_response {
	atomic_uint refs;
	int         error;
	size_t      len;
	char        text[];
};

/*
 * Seeded 64-bit hash of LEN bytes at DATA. Injectable so that tests can
 * force collisions; it must be pure (same input, same output).
 */
typedef uint64_t (*zos_cache_hash_fn)(
    const void *data, size_t len, uint64_t seed);

/*
 * Computes the response for (MODEL, PROMPT) on a miss. Called with no zOS
 * lock held; may block (backend calls). On success returns 0 and sets
 * *OUT_TEXT to a malloc'd NUL-terminated string, which the cache takes
 * over. On failure returns a non-zero code of its own and may set
 * *OUT_TEXT to a malloc'd message (taken over too) or leave it NULL.
 */
typedef int (*zos_cache_compute_fn)(
    void *arg, const char *model, const char *prompt, char **out_text);

struct cache_entry;
struct cache_pending;

struct zos_cache {
	struct zos_lock lock; /* response_cache, rank 4 */
	/* Set by init, read-only after: domain to n_buckets. */
	struct zos_lock_domain *domain;
	zos_cache_hash_fn       hash;
	uint64_t                seed;
	size_t                  capacity;
	size_t                  n_buckets; /* a power of two >= capacity */
	struct cache_entry    **buckets;   /* guarded by: response_cache */
	struct cache_entry     *head;      /* all entries; guarded by same */
	size_t                  size;      /* guarded by: response_cache */
	struct cache_pending   *pending;   /* in-flight computes; same */
	/* Atomics, never locked. */
	atomic_uint_fast64_t clock; /* recency stamp source */
	atomic_uint_fast64_t evictions;
	/* Hits and misses, sharded by the lock's reader slots so that
	 * concurrent lookups write no shared line; summed by stats. */
	struct zos_cache_counters {
		atomic_uint_fast64_t hits;
		atomic_uint_fast64_t misses;
		char pad[64 - 2 * sizeof(atomic_uint_fast64_t)];
	} counters[ZOS_LOCK_SLOTS];
};

struct zos_cache_stats {
	uint64_t size;
	uint64_t capacity;
	uint64_t hits;
	uint64_t misses;
	uint64_t evictions;
};

/*
 * Sets up CACHE holding at most CAPACITY entries (0 = the default, 200),
 * hashing keys with HASH (NULL = the built-in seeded hash, seeded per
 * cache). DOMAIN is the state's lock domain and must outlive the cache.
 * Returns 0, ZOS_CACHE_INVALID (NULL cache or domain, capacity above
 * ZOS_CACHE_MAX_CAPACITY), ZOS_CACHE_NO_MEMORY or ZOS_CACHE_SYSTEM; on
 * failure nothing needs finishing.
 * Locking: none (the cache is not shared yet).
 */
int zos_cache_init(struct zos_cache *cache, size_t capacity,
    zos_cache_hash_fn hash, struct zos_lock_domain *domain);

/*
 * Frees every entry and the lock. No other thread may be using CACHE and
 * no compute may be in flight. Responses handed out stay valid until
 * their holders drop them. Safe on NULL.
 * Locking: none.
 */
void zos_cache_finish(struct zos_cache *cache);

/*
 * Looks (MODEL, PROMPT) up. Returns the response with one reference added
 * (the caller owns it and must zos_cache_response_unref it), or NULL on a
 * miss. Counts one hit or one miss; a key over the bounds or a NULL
 * argument is a miss (it can never be cached).
 * Locking: takes response_cache (read); marks recency with an atomic
 * stamp, so concurrent lookups never wait on each other.
 */
struct zos_cached_response *zos_cache_lookup(struct zos_cache *cache,
    const char *model, const char *prompt) ZOS_EXCLUDES(&cache->lock);

/*
 * Looks (MODEL, PROMPT) up and, on a hit, copies the response into memory
 * from ALLOC(ARG, len + 1) (NUL-terminated, *LEN = len) while the read
 * lock is held: no reference is taken, so concurrent lookups write no
 * shared memory. ALLOC must not block (an arena). Returns NULL on a miss
 * or when ALLOC fails (*LEN = 0 then). Counts one hit or one miss.
 * Locking: takes response_cache (read).
 */
char *zos_cache_lookup_copy(struct zos_cache *cache, const char *model,
    const char *prompt, void *(*alloc)(void *arg, size_t size), void *arg,
    size_t *len) ZOS_EXCLUDES(&cache->lock);

/*
 * zos_cache_lookup_copy for a caller that falls back to
 * zos_cache_get_or_compute on a miss: a hit counts as one, a miss is not
 * counted here (the get-or-compute that follows counts it).
 * Locking: takes response_cache (read).
 */
char *zos_cache_peek_copy(struct zos_cache *cache, const char *model,
    const char *prompt, void *(*alloc)(void *arg, size_t size), void *arg,
    size_t *len) ZOS_EXCLUDES(&cache->lock);

/*
 * Stores RESPONSE (copied) under (MODEL, PROMPT), replacing an existing
 * value (holders of the old one keep it until they drop it). Storing a
 * new key at capacity evicts the least recently used entry (an
 * O(capacity) scan of the recency stamps; capacity is small) and counts
 * an eviction. Returns 0, ZOS_CACHE_INVALID (NULL argument),
 * ZOS_CACHE_TOO_LARGE (model > 256 bytes, prompt > 64 KiB, response >
 * 1 MiB) or ZOS_CACHE_NO_MEMORY; on failure the cache is unchanged.
 * Locking: takes response_cache (write); copies are made before and
 * old values freed after.
 */
int zos_cache_store(struct zos_cache *cache, const char *model,
    const char *prompt, const char *response) ZOS_EXCLUDES(&cache->lock);

/*
 * Fills *OUT with the current size and the counters. The counters are
 * read individually (atomics), not as one snapshot.
 * Locking: takes response_cache (read) for the size.
 */
void zos_cache_stats(struct zos_cache *cache, struct zos_cache_stats *out)
    ZOS_EXCLUDES(&cache->lock);

/*
 * Removes every entry (counters are kept; removals are not evictions).
 * In-flight computes are not affected and store their result when done.
 * Locking: takes response_cache (write); entries are freed after.
 */
void zos_cache_clear(struct zos_cache *cache) ZOS_EXCLUDES(&cache->lock);

/*
 * Returns the response for (MODEL, PROMPT), computing it on a miss.
 *
 * On a hit sets *OUT_VALUE (one reference, caller owns) and
 * *OUT_WAS_CACHED = true and returns 0. On a miss exactly one caller per
 * key (single flight) calls COMPUTE(COMPUTE_ARG, ...) with no lock held;
 * callers arriving for the same key meanwhile wait for it (on a per-key
 * record, not holding the cache lock) and all receive the same result.
 * Different keys never wait for each other. A successful result is
 * stored in the cache; an error is not.
 *
 * Returns 0 with *OUT_VALUE set (*OUT_WAS_CACHED false after a compute);
 * ZOS_CACHE_COMPUTE_FAILED with *OUT_VALUE set to a snapshot whose error
 * is COMPUTE's code and whose text is its message ("" if none), owned by
 * the caller; ZOS_CACHE_TOO_LARGE (key over the bounds, or a computed
 * response over 1 MiB), ZOS_CACHE_INVALID, ZOS_CACHE_NO_MEMORY or
 * ZOS_CACHE_SYSTEM with *OUT_VALUE NULL (ZOS_CACHE_INVALID too when
 * COMPUTE returns 0 without text). Counts one hit or one miss per
 * call. If only storing the computed value fails (no memory), the value
 * is still returned, just not cached.
 * Locking: takes response_cache (read, then write for the bookkeeping);
 * must be called with no zOS lock held (asserted before computing).
 */
int zos_cache_get_or_compute(struct zos_cache *cache, const char *model,
    const char *prompt, zos_cache_compute_fn compute, void *compute_arg,
    struct zos_cached_response **out_value, bool *out_was_cached)
    ZOS_EXCLUDES(&cache->lock);

/*
 * zos_cache_get_or_compute with a deadline for waiting: a caller that
 * joins another caller's compute of its key stops waiting at DEADLINE_NS
 * (zrpc_now_ns() time; 0 = no deadline) and returns ZOS_CACHE_TIMED_OUT
 * with *OUT_VALUE NULL; the compute goes on for the others. The deadline
 * does not bound COMPUTE itself: the compute function is given its own.
 */
int zos_cache_get_or_compute_until(struct zos_cache *cache, const char *model,
    const char *prompt, zos_cache_compute_fn compute, void *compute_arg,
    uint64_t deadline_ns, struct zos_cached_response **out_value,
    bool *out_was_cached) ZOS_EXCLUDES(&cache->lock);

/* Adds a reference to RESPONSE (not NULL) and returns it. Locking: none. */
struct zos_cached_response *zos_cache_response_ref(
    struct zos_cached_response *response);

/*
 * Drops a reference; the last one frees RESPONSE. Safe on NULL.
 * Locking: none (atomic).
 */
void zos_cache_response_unref(struct zos_cached_response *response);

/* The built-in seeded 64-bit hash (exposed for tests). Locking: none. */
uint64_t zos_cache_default_hash(const void *data, size_t len, uint64_t seed);

#endif /* ZOS_CACHE_H */
