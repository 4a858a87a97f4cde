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
 *
 * The Prometheus side (zrpc_histogram_write_prometheus) is here too: the
 * runtime keeps the data and knows its bounds, and any service's metrics
 * endpoint (zosd's is one) writes it out the same way. It formats into
 * small stack buffers and hands the pieces to the caller's writer, so it
 * allocates nothing and decides nothing about transport or limits.
 */
#include "zrpc/histogram.h"

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* ---- Prometheus ---- */

/*
 * 10^(k/4) microseconds rounded to two digits, k = 0 .. 30 (1 us .. 32
 * s), then 60 s; and the same in seconds as Go's
 * strconv.FormatFloat(v, 'g', -1, 64) writes them, as Prometheus's own
 * clients do.
 */
/* clang-format off */
static const uint64_t histogram_latency_ns[] = {
	1000, 1800, 3200, 5600,
	10000, 18000, 32000, 56000,
	100000, 180000, 320000, 560000,
	1000000, 1800000, 3200000, 5600000,
	10000000, 18000000, 32000000, 56000000,
	100000000, 180000000, 320000000, 560000000,
	1000000000, 1800000000, 3200000000, 5600000000,
	10000000000, 18000000000, 32000000000, 60000000000,
};
static const char *const histogram_latency_le[] = {
	"1e-06", "1.8e-06", "3.2e-06", "5.6e-06",
	"1e-05", "1.8e-05", "3.2e-05", "5.6e-05",
	"0.0001", "0.00018", "0.00032", "0.00056",
	"0.001", "0.0018", "0.0032", "0.0056",
	"0.01", "0.018", "0.032", "0.056",
	"0.1", "0.18", "0.32", "0.56",
	"1", "1.8", "3.2", "5.6",
	"10", "18", "32", "60",
};
/* clang-format on */

#define HISTOGRAM_COUNT(a) (sizeof(a) / sizeof((a)[0]))
_Static_assert(HISTOGRAM_COUNT(histogram_latency_ns) ==
        HISTOGRAM_COUNT(histogram_latency_le),
    "one le text per bound");
_Static_assert(
    HISTOGRAM_COUNT(histogram_latency_ns) <= ZRPC_HISTOGRAM_MAX_BOUNDS,
    "the bounds fit the writer");

const struct zrpc_histogram_bounds zrpc_histogram_latency_bounds = {
	.n      = HISTOGRAM_COUNT(histogram_latency_ns),
	.values = histogram_latency_ns,
	.le     = histogram_latency_le,
};

static void
histogram_puts(zrpc_text_fn emit, void *arg, const char *s)
{
	emit(arg, s, strlen(s));
}

/* NAME SUFFIX{LABELS,le="LE"} VALUE\n, with LE NULL for none. */
static void
histogram_sample(zrpc_text_fn emit, void *arg, const char *name,
    const char *suffix, const char *labels, const char *le, const char *value)
{
	bool has_labels = labels != NULL && labels[0] != '\0';

	histogram_puts(emit, arg, name);
	histogram_puts(emit, arg, suffix);
	if (has_labels || le != NULL) {
		histogram_puts(emit, arg, "{");
		if (has_labels) {
			histogram_puts(emit, arg, labels);
		}
		if (le != NULL) {
			histogram_puts(
			    emit, arg, has_labels ? ",le=\"" : "le=\"");
			histogram_puts(emit, arg, le);
			histogram_puts(emit, arg, "\"");
		}
		histogram_puts(emit, arg, "}");
	}
	histogram_puts(emit, arg, " ");
	histogram_puts(emit, arg, value);
	histogram_puts(emit, arg, "\n");
}

uint64_t
zrpc_histogram_write_prometheus(const struct zrpc_histogram *h,
    const char *name, const char *labels,
    const struct zrpc_histogram_bounds *bounds, zrpc_text_fn emit, void *arg)
{
	uint64_t counts[ZRPC_HISTOGRAM_MAX_BOUNDS];
	size_t   n = bounds->n < ZRPC_HISTOGRAM_MAX_BOUNDS
	      ? bounds->n
	      : ZRPC_HISTOGRAM_MAX_BOUNDS;
	uint64_t total, sum;
	char     value[48];

	total = zrpc_histogram_cumulative(h, bounds->values, n, counts);
	for (size_t i = 0; i < n; i++) {
		snprintf(value, sizeof(value), "%" PRIu64, counts[i]);
		histogram_sample(
		    emit, arg, name, "_bucket", labels, bounds->le[i], value);
	}
	snprintf(value, sizeof(value), "%" PRIu64, total);
	histogram_sample(emit, arg, name, "_bucket", labels, "+Inf", value);
	sum = zrpc_histogram_sum(h);
	snprintf(value, sizeof(value), "%" PRIu64 ".%09" PRIu64,
	    sum / 1000000000u, sum % 1000000000u);
	histogram_sample(emit, arg, name, "_sum", labels, NULL, value);
	snprintf(value, sizeof(value), "%" PRIu64, total);
	histogram_sample(emit, arg, name, "_count", labels, NULL, value);
	return total;
}
