/*
 * What a Prometheus server makes of the latency histogram: known mixes of
 * latencies are recorded into a runtime histogram, exported through
 * zrpc_histogram_write_prometheus with the latency bounds (1 us to 60 s),
 * parsed back from the text, and histogram_quantile is computed from the
 * cumulative buckets as Prometheus computes it (promql's bucketQuantile:
 * find the bucket holding the rank, interpolate linearly inside it, the
 * first bucket starting at 0, a rank in +Inf answered with the highest
 * bound). The answer must land within one bucket of the true quantile of
 * the recorded values.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zrpc/histogram.h"

#define N_VALUES 200000

/* ---- the exported text ---- */

struct text {
	char  *data;
	size_t len;
	size_t cap;
};

static void
text_write(void *arg, const char *s, size_t n)
{
	struct text *t = arg;

	if (t->len + n + 1 > t->cap) {
		t->cap  = (t->len + n + 1) * 2;
		t->data = realloc(t->data, t->cap);
		cr_assert_not_null(t->data);
	}
	memcpy(t->data + t->len, s, n);
	t->len += n;
	t->data[t->len] = '\0';
}

struct bucket {
	double le; /* seconds; INFINITY for +Inf */
	double count;
};

/* The NAME_bucket samples of TEXT, in order, as Prometheus reads them. */
static size_t
parse_buckets(
    const char *text, const char *name, struct bucket *out, size_t max)
{
	char        prefix[128];
	const char *line = text;
	size_t      n    = 0;

	snprintf(prefix, sizeof(prefix), "%s_bucket{le=\"", name);
	while ((line = strstr(line, prefix)) != NULL) {
		const char *le = line + strlen(prefix);
		const char *sp = strchr(le, ' ');

		cr_assert_not_null(sp);
		cr_assert_lt(n, max);
		out[n].le    = strncmp(le, "+Inf\"", 5) == 0 ? INFINITY
		                                             : strtod(le, NULL);
		out[n].count = strtod(sp + 1, NULL);
		n++;
		line = sp;
	}
	return n;
}

/* promql's bucketQuantile (Prometheus 2.x), for buckets sorted by le and
 * ending in +Inf. */
static double
histogram_quantile(double q, const struct bucket *b, size_t n)
{
	double rank, start, count;
	size_t i;

	cr_assert_geq(n, 2);
	cr_assert(isinf(b[n - 1].le), "+Inf last");
	if (b[n - 1].count == 0) {
		return NAN;
	}
	rank = q * b[n - 1].count;
	for (i = 0; i < n - 1 && b[i].count < rank; i++) { }
	if (i == n - 1) {
		return b[n - 2].le; /* in +Inf: the highest finite bound */
	}
	if (i == 0 && b[0].le <= 0) {
		return b[0].le;
	}
	start = i == 0 ? 0 : b[i - 1].le;
	count = b[i].count - (i == 0 ? 0 : b[i - 1].count);
	rank -= i == 0 ? 0 : b[i - 1].count;
	return start + (b[i].le - start) * (rank / count);
}

/* ---- the mixes ---- */

static uint64_t
splitmix64(uint64_t *state)
{
	uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

/* A uniform fraction in [0, 1). */
static double
uniform(uint64_t *state)
{
	return (double) (splitmix64(state) >> 11) * 0x1.0p-53;
}

/* Log-uniform between LO and HI nanoseconds. */
static uint64_t
log_uniform(uint64_t *state, double lo, double hi)
{
	return (uint64_t) exp(log(lo) + uniform(state) * (log(hi) - log(lo)));
}

enum mix {
	MIX_ISSUE,       /* issue 13's Cache/Lookup: 99.93 % under 2 us */
	MIX_LOG_UNIFORM, /* 1 us .. 10 s, evenly on a log scale */
	MIX_BIMODAL,     /* cache hits ~ 3 us, misses ~ 40 ms */
	MIX_QUEUEING,    /* mostly ~ 300 us, a tail out to 10 s */
	MIX_COUNT,
};

static const char *const mix_name[] = { "issue", "log-uniform", "bimodal",
	"queueing" };

static uint64_t
mix_value(enum mix mix, uint64_t *state)
{
	double u = uniform(state);

	switch (mix) {
	case MIX_ISSUE:
		/* 99.93 % between 1.2 and 2 us (mean about 1.6 us), the rest
		 * from 50 us to 10 ms. */
		return u < 0.9993 ? log_uniform(state, 1200, 2000)
		                  : log_uniform(state, 50000, 10000000);
	case MIX_LOG_UNIFORM:
		return log_uniform(state, 1000, 10e9);
	case MIX_BIMODAL:
		return u < 0.8 ? log_uniform(state, 2000, 4000)
		               : log_uniform(state, 20e6, 80e6);
	case MIX_QUEUEING:
		if (u < 0.95) {
			return log_uniform(state, 200000, 500000);
		}
		return u < 0.999 ? log_uniform(state, 500000, 50e6)
		                 : log_uniform(state, 50e6, 10e9);
	default:
		return 0;
	}
}

static int
compare_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;

	return x < y ? -1 : x > y;
}

/* The index of the bucket holding SECONDS: the first bound >= it. */
static size_t
bucket_of(double seconds)
{
	const struct zrpc_histogram_bounds *bounds =
	    &zrpc_histogram_latency_bounds;
	size_t i;

	for (i = 0; i < bounds->n; i++) {
		if (seconds <=
		    (double) bounds->values[i] / 1e9 * (1 + 1e-12)) {
			return i;
		}
	}
	return bounds->n;
}

/* Records the mix, exports it, and checks the four quantiles. */
static void
check_mix(enum mix mix)
{
	static uint64_t        values[N_VALUES];
	static const double    qs[] = { 0.5, 0.9, 0.99, 0.999 };
	struct zrpc_histogram *h;
	struct text            text = { 0 };
	struct bucket          b[ZRPC_HISTOGRAM_MAX_BOUNDS + 1];
	uint64_t               state = 13 + (uint64_t) mix;
	size_t                 n;

	/* The runtime's own precision for call latencies (registry.c). */
	cr_assert_eq(zrpc_histogram_create(&h, 5), 0);
	for (size_t i = 0; i < N_VALUES; i++) {
		values[i] = mix_value(mix, &state);
		zrpc_histogram_record(h, values[i]);
	}
	qsort(values, N_VALUES, sizeof(values[0]), compare_u64);
	cr_assert_eq(zrpc_histogram_write_prometheus(h, "lat", NULL,
	                 &zrpc_histogram_latency_bounds, text_write, &text),
	    N_VALUES);
	n = parse_buckets(text.data, "lat", b, ZRPC_HISTOGRAM_MAX_BOUNDS + 1);
	cr_assert_eq(n, zrpc_histogram_latency_bounds.n + 1);
	cr_assert_eq(b[n - 1].count, N_VALUES);

	for (size_t k = 0; k < sizeof(qs) / sizeof(qs[0]); k++) {
		/* The true quantile: the value at rank ceil(q * N). */
		size_t rank  = (size_t) ceil(qs[k] * N_VALUES);
		double truth = (double) values[rank - 1] / 1e9;
		double est   = histogram_quantile(qs[k], b, n);
		size_t bt = bucket_of(truth), be = bucket_of(est);

		cr_log_info("%s p%g: true %.3g s, histogram_quantile %.3g s",
		    mix_name[mix], qs[k] * 100, truth, est);
		cr_assert((be > bt ? be - bt : bt - be) <= 1,
		    "%s p%g: histogram_quantile %.4g s is more than one "
		    "bucket from the true %.4g s (buckets %zu and %zu)",
		    mix_name[mix], qs[k] * 100, est, truth, be, bt);
	}
	free(text.data);
	zrpc_histogram_destroy(h);
}

Test(quantile, issue_mix_with_most_calls_under_two_microseconds)
{
	check_mix(MIX_ISSUE);
}

Test(quantile, log_uniform_from_one_microsecond_to_ten_seconds)
{
	check_mix(MIX_LOG_UNIFORM);
}

Test(quantile, bimodal_hits_and_misses)
{
	check_mix(MIX_BIMODAL);
}

Test(quantile, a_queueing_tail_out_to_ten_seconds)
{
	check_mix(MIX_QUEUEING);
}

/*
 * The issue's numbers: with the old bounds (50 us first) Prometheus said
 * p50 25 us and p99 49.5 us for calls whose mean was 1.67 us. Now both
 * land among the microseconds, and _sum / _count is the true mean.
 */
Test(quantile, the_issue_case_reads_microseconds_not_tens_of_them)
{
	struct zrpc_histogram *h;
	struct text            text = { 0 };
	struct bucket          b[ZRPC_HISTOGRAM_MAX_BOUNDS + 1];
	uint64_t               state = 7, sum = 0;
	size_t                 n;
	const char            *p;
	double                 est_sum;

	cr_assert_eq(zrpc_histogram_create(&h, 5), 0);
	for (size_t i = 0; i < N_VALUES; i++) {
		uint64_t v = mix_value(MIX_ISSUE, &state);

		sum += v;
		zrpc_histogram_record(h, v);
	}
	zrpc_histogram_write_prometheus(
	    h, "lat", NULL, &zrpc_histogram_latency_bounds, text_write, &text);
	n = parse_buckets(text.data, "lat", b, ZRPC_HISTOGRAM_MAX_BOUNDS + 1);
	cr_assert_lt(histogram_quantile(0.5, b, n), 2e-6);
	/* The true p99 is just under 2 us, in the 1.8 .. 3.2 us bucket. */
	cr_assert_leq(histogram_quantile(0.99, b, n), 3.2e-6);
	cr_assert_gt(histogram_quantile(0.99, b, n), 1.8e-6);
	p = strstr(text.data, "lat_sum ");
	cr_assert_not_null(p);
	est_sum = strtod(p + 8, NULL);
	cr_assert_float_eq(est_sum, (double) sum / 1e9, 1e-9, "exact sum");
	free(text.data);
	zrpc_histogram_destroy(h);
}

Test(quantile, labels_go_before_le_and_on_sum_and_count)
{
	struct zrpc_histogram *h;
	struct text            text = { 0 };

	cr_assert_eq(zrpc_histogram_create(&h, 5), 0);
	zrpc_histogram_record(h, 1500); /* 1.5 us */
	zrpc_histogram_write_prometheus(h, "x_seconds", "method=\"/a.B/C\"",
	    &zrpc_histogram_latency_bounds, text_write, &text);
	cr_assert(strstr(text.data,
	    "x_seconds_bucket{method=\"/a.B/C\",le=\"1e-06\"} 0\n"
	    "x_seconds_bucket{method=\"/a.B/C\",le=\"1.8e-06\"} 1\n"));
	cr_assert(strstr(text.data,
	    "x_seconds_bucket{method=\"/a.B/C\",le=\"60\"} 1\n"
	    "x_seconds_bucket{method=\"/a.B/C\",le=\"+Inf\"} 1\n"
	    "x_seconds_sum{method=\"/a.B/C\"} 0.000001500\n"
	    "x_seconds_count{method=\"/a.B/C\"} 1\n"));
	free(text.data);
	zrpc_histogram_destroy(h);
}
