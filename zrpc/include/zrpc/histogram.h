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
 *
 * The histogram is an opaque handle (create/destroy), not a struct to
 * embed: its counters are C11 atomics, and C++ has no <stdatomic.h> (nor
 * a guarantee that std::atomic is laid out as _Atomic), so a public struct
 * holding them could not be read from C++. Behind a pointer the atomics
 * stay in zrpc/common/histogram.c, and recording costs one more load.
 */
#ifndef ZRPC_HISTOGRAM_H
#define ZRPC_HISTOGRAM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct zrpc_histogram;

/*
 * Creates an empty histogram with PRECISION bits (1..10) in *OUT, owned by
 * the caller (zrpc_histogram_destroy). Returns 0, or EINVAL for a bad
 * precision and ENOMEM; *OUT is NULL then.
 */
int zrpc_histogram_create(struct zrpc_histogram **out, unsigned precision);

/* Frees H. NULL is a no-op. */
void zrpc_histogram_destroy(struct zrpc_histogram *h);

/* Records VALUE. Lock-free; safe from any thread. */
void zrpc_histogram_record(struct zrpc_histogram *h, uint64_t value);

/* Clears every count (not atomic as a whole: for tests and reuse). */
void zrpc_histogram_reset(struct zrpc_histogram *h);

/*
 * Values recorded, their sum and the largest, each read atomically (but
 * not together: records in progress may show in one and not another).
 */
uint64_t zrpc_histogram_count(const struct zrpc_histogram *h);
uint64_t zrpc_histogram_sum(const struct zrpc_histogram *h);
uint64_t zrpc_histogram_max(const struct zrpc_histogram *h);

/*
 * The value at quantile Q (0..1): the upper edge of the bucket holding it,
 * capped at the largest value recorded. 0 when empty.
 */
uint64_t zrpc_histogram_quantile(const struct zrpc_histogram *h, double q);

/* Number of buckets; bucket indexes are 0 .. this - 1. */
size_t zrpc_histogram_bucket_count(const struct zrpc_histogram *h);

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
 * threads record; the total may differ from zrpc_histogram_count by
 * records in progress. BOUNDS not in increasing order give unspecified
 * counts.
 */
uint64_t zrpc_histogram_cumulative(const struct zrpc_histogram *h,
    const uint64_t *bounds, size_t n_bounds, uint64_t *counts);

/*
 * Fixed upper bounds for a Prometheus histogram (the `le` of its
 * cumulative buckets): N values in the histogram's unit, increasing, and
 * the same bounds as the text of the le label, in the exported unit.
 */
struct zrpc_histogram_bounds {
	size_t             n;
	const uint64_t    *values;
	const char *const *le;
};

/* The most bounds zrpc_histogram_write_prometheus takes. */
#define ZRPC_HISTOGRAM_MAX_BOUNDS 64

/*
 * Bounds for latencies recorded in nanoseconds and exported in seconds:
 * 1 us to 60 s, four per decade, 10^(k/4) rounded to two digits
 * (1, 1.8, 3.2, 5.6 times each power of ten from 1 us up to 32 s), and
 * 60 s last: 32 bounds. A bucket is at most 1.8 times as wide as its
 * lower edge, so Prometheus's histogram_quantile, which interpolates
 * within a bucket, is off by less than one bucket.
 */
extern const struct zrpc_histogram_bounds zrpc_histogram_latency_bounds;

/* Where zrpc_histogram_write_prometheus puts its text: LEN bytes. */
typedef void (*zrpc_text_fn)(void *arg, const char *text, size_t len);

/*
 * Writes H, whose values are nanoseconds, as the samples of one
 * Prometheus histogram (text format 0.0.4) through EMIT(ARG, ...):
 * NAME_bucket{LABELS,le="LE"} COUNT for every bound of BOUNDS (values in
 * nanoseconds, le in seconds) and for +Inf, then NAME_sum (seconds, exact
 * decimals) and NAME_count. LABELS is the series' own labels as they are
 * written between the braces, already escaped ("method=\"/a.B/C\""), or
 * NULL for none. The counts come from one pass over H's buckets
 * (zrpc_histogram_cumulative), so +Inf equals _count. The # HELP and
 * # TYPE lines are the caller's (one per family). BOUNDS->n is at most
 * ZRPC_HISTOGRAM_MAX_BOUNDS (more are left out). Returns the count.
 * Allocates nothing; safe from any thread while others record.
 */
uint64_t zrpc_histogram_write_prometheus(const struct zrpc_histogram *h,
    const char *name, const char *labels,
    const struct zrpc_histogram_bounds *bounds, zrpc_text_fn emit, void *arg);

#ifdef __cplusplus
}
#endif

#endif /* ZRPC_HISTOGRAM_H */
