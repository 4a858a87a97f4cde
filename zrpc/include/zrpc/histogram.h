/*
 * Log-linear histogram of non-negative integers (latencies in
 * nanoseconds), with atomic buckets so that many threads record into one
 * histogram without a lock.
 *
 * Values below 2^P land in exact buckets; above, each power of two is cut
 * into 2^P equal buckets, so a bucket's width is at most 1/2^P of its
 * value: P = 7 gives a relative error under 1 %, P = 4 under 7 %. Values
 * from 2^44 ns (about 4.9 hours) up are clamped into the last bucket.
 * Memory: (45 - P) * 2^P buckets of 8 bytes.
 */
#ifndef ZRPC_HISTOGRAM_H
#define ZRPC_HISTOGRAM_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct zrpc_histogram {
	unsigned              precision; /* P */
	size_t                n_buckets;
	atomic_uint_fast64_t *buckets;
	atomic_uint_fast64_t  count;
	atomic_uint_fast64_t  sum;
	atomic_uint_fast64_t  max;
};

/* Sets H up with PRECISION bits (1..10). Returns 0 or ENOMEM/EINVAL. */
int zrpc_histogram_init(struct zrpc_histogram *h, unsigned precision);

/* Frees the buckets. Safe on a zeroed or finished histogram. */
void zrpc_histogram_finish(struct zrpc_histogram *h);

/* Records VALUE. Lock-free; safe from any thread. */
void zrpc_histogram_record(struct zrpc_histogram *h, uint64_t value);

/* Clears every count (not atomic as a whole: for tests and reuse). */
void zrpc_histogram_reset(struct zrpc_histogram *h);

/*
 * The value at quantile Q (0..1): the upper edge of the bucket holding it,
 * capped at the largest value recorded. 0 when empty.
 */
uint64_t zrpc_histogram_quantile(const struct zrpc_histogram *h, double q);

/* Index of VALUE's bucket, and the largest value a bucket holds. */
size_t   zrpc_histogram_bucket(const struct zrpc_histogram *h, uint64_t value);
uint64_t zrpc_histogram_bucket_upper(
    const struct zrpc_histogram *h, size_t bucket);

/*
 * Counts for fixed upper bounds, as a Prometheus histogram's cumulative
 * buckets: COUNTS[i] is the number of values recorded in the buckets up to
 * and including BOUNDS[i]'s own bucket (N_BOUNDS bounds, in increasing
 * order). A bound that falls inside a bucket counts that whole bucket, as
 * HdrHistogram's getCountBetweenValues does: every value <= BOUNDS[i] is
 * counted, and so may be values above it by at most the bucket width (a
 * relative 2^-P). Returns the count of every bucket (the +Inf bucket).
 * All of it comes from one pass over the buckets, so the counts are
 * non-decreasing and end at most at the returned total even while other
 * threads record; the total may differ from H->count by records in
 * progress. BOUNDS not in increasing order give unspecified counts.
 */
uint64_t zrpc_histogram_cumulative(const struct zrpc_histogram *h,
    const uint64_t *bounds, size_t n_bounds, uint64_t *counts);

#endif /* ZRPC_HISTOGRAM_H */
