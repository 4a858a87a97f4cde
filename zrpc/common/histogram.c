/*
 * Log-linear histogram; see histogram.h.
 *
 * Bucket of v, with P precision bits: v < 2^P is its own bucket; otherwise
 * with e = msb(v) - P, the bucket is (e + 1) * 2^P + (v >> e) - 2^P, i.e.
 * the top P + 1 bits of v pick it, within the group of its power of two.
 *
 * One allocation holds the header and the buckets (a flexible array), so a
 * record touches the handle and one bucket, as when the struct was
 * embedded with a pointer to its buckets.
 */
#include "zrpc/histogram.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>

#define HISTOGRAM_MAX_BITS 44

struct zrpc_histogram {
	unsigned             precision; /* P */
	size_t               n_buckets;
	atomic_uint_fast64_t count;
	atomic_uint_fast64_t sum;
	atomic_uint_fast64_t max;
	atomic_uint_fast64_t buckets[]; /* n_buckets */
};

int
zrpc_histogram_create(struct zrpc_histogram **out, unsigned precision)
{
	struct zrpc_histogram *h;
	size_t                 n;

	*out = NULL;
	if (precision < 1 || precision > 10) {
		return EINVAL;
	}
	n = (size_t) (HISTOGRAM_MAX_BITS + 1 - precision) << precision;
	if ((h = calloc(1, sizeof(*h) + n * sizeof(h->buckets[0]))) == NULL) {
		return ENOMEM;
	}
	h->precision = precision;
	h->n_buckets = n;
	for (size_t i = 0; i < n; i++) {
		atomic_init(&h->buckets[i], 0);
	}
	atomic_init(&h->count, 0);
	atomic_init(&h->sum, 0);
	atomic_init(&h->max, 0);
	*out = h;
	return 0;
}

void
zrpc_histogram_destroy(struct zrpc_histogram *h)
{
	free(h);
}

uint64_t
zrpc_histogram_count(const struct zrpc_histogram *h)
{
	return atomic_load_explicit(&h->count, memory_order_relaxed);
}

uint64_t
zrpc_histogram_sum(const struct zrpc_histogram *h)
{
	return atomic_load_explicit(&h->sum, memory_order_relaxed);
}

uint64_t
zrpc_histogram_max(const struct zrpc_histogram *h)
{
	return atomic_load_explicit(&h->max, memory_order_relaxed);
}

size_t
zrpc_histogram_bucket_count(const struct zrpc_histogram *h)
{
	return h->n_buckets;
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
	return seen;
}
