/*
 * Log-linear histogram; see histogram.h.
 *
 * Bucket of v, with P precision bits: v < 2^P is its own bucket; otherwise
 * with e = msb(v) - P, the bucket is (e + 1) * 2^P + (v >> e) - 2^P, i.e.
 * the top P + 1 bits of v pick it, within the group of its power of two.
 */
#include "zrpc/histogram.h"

#include <errno.h>
#include <stdlib.h>

#define HISTOGRAM_MAX_BITS 44

int
zrpc_histogram_init(struct zrpc_histogram *h, unsigned precision)
{
	if (precision < 1 || precision > 10) {
		return EINVAL;
	}
	h->precision = precision;
	h->n_buckets = (size_t) (HISTOGRAM_MAX_BITS + 1 - precision)
	    << precision;
	h->buckets = calloc(h->n_buckets, sizeof(*h->buckets));
	if (h->buckets == NULL) {
		return ENOMEM;
	}
	atomic_init(&h->count, 0);
	atomic_init(&h->sum, 0);
	atomic_init(&h->max, 0);
	return 0;
}

void
zrpc_histogram_finish(struct zrpc_histogram *h)
{
	free(h->buckets);
	h->buckets   = NULL;
	h->n_buckets = 0;
}

size_t
zrpc_histogram_bucket(const struct zrpc_histogram *h, uint64_t value)
{
	unsigned p = h->precision;
	unsigned msb, e;
	size_t   b;

	if (value < ((uint64_t) 1 << p)) {
		return (size_t) value;
	}
	msb = 63u - (unsigned) __builtin_clzll(value);
	e   = msb - p;
	b   = ((size_t) (e + 1) << p) + (size_t) (value >> e) -
	    ((size_t) 1 << p);
	return b < h->n_buckets ? b : h->n_buckets - 1;
}

uint64_t
zrpc_histogram_bucket_upper(const struct zrpc_histogram *h, size_t bucket)
{
	unsigned p = h->precision;
	size_t   group, offset;

	if (bucket < ((size_t) 1 << p)) {
		return bucket;
	}
	group  = (bucket >> p) - 1; /* e */
	offset = bucket & (((size_t) 1 << p) - 1);
	return ((((uint64_t) 1 << p) + offset + 1) << group) - 1;
}

void
zrpc_histogram_record(struct zrpc_histogram *h, uint64_t value)
{
	uint64_t seen;

	atomic_fetch_add_explicit(&h->buckets[zrpc_histogram_bucket(h, value)],
	    1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum, value, memory_order_relaxed);
	seen = atomic_load_explicit(&h->max, memory_order_relaxed);
	while (value > seen &&
	    !atomic_compare_exchange_weak_explicit(&h->max, &seen, value,
	        memory_order_relaxed, memory_order_relaxed)) { }
}

void
zrpc_histogram_reset(struct zrpc_histogram *h)
{
	for (size_t i = 0; i < h->n_buckets; i++) {
		atomic_store(&h->buckets[i], 0);
	}
	atomic_store(&h->count, 0);
	atomic_store(&h->sum, 0);
	atomic_store(&h->max, 0);
}

uint64_t
zrpc_histogram_quantile(const struct zrpc_histogram *h, double q)
{
	uint64_t total = 0, rank, seen = 0, max;

	for (size_t i = 0; i < h->n_buckets; i++) {
		total +=
		    atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
	}
	if (total == 0) {
		return 0;
	}
	if (q < 0) {
		q = 0;
	}
	if (q > 1) {
		q = 1;
	}
	rank = (uint64_t) (q * (double) total + 0.5);
	if (rank == 0) {
		rank = 1;
	}
	max = atomic_load_explicit(&h->max, memory_order_relaxed);
	for (size_t i = 0; i < h->n_buckets; i++) {
		seen +=
		    atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
		if (seen >= rank) {
			uint64_t upper = zrpc_histogram_bucket_upper(h, i);
			return upper < max ? upper : max;
		}
	}
	return max;
}

uint64_t
zrpc_histogram_cumulative(const struct zrpc_histogram *h,
    const uint64_t *bounds, size_t n_bounds, uint64_t *counts)
{
	uint64_t seen = 0;
	size_t   next = 0; /* the first bound not yet reached */

	for (size_t i = 0; i < h->n_buckets; i++) {
		seen +=
		    atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
		while (next < n_bounds &&
		    zrpc_histogram_bucket(h, bounds[next]) <= i) {
			counts[next++] = seen;
		}
	}
	while (next < n_bounds) { /* a zeroed histogram has no buckets */
		counts[next++] = 0;
	}
	return seen;
}
