/* Log-linear histograms: exact small values, bounded relative error. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>

#include "zrpc/histogram.h"

Test(histogram, small_values_are_exact)
{
	struct zrpc_histogram *h;

	cr_assert_eq(zrpc_histogram_create(&h, 7), 0);
	for (uint64_t v = 0; v < 128; v++) {
		size_t b = zrpc_histogram_bucket(h, v);
		cr_assert_eq(zrpc_histogram_bucket_upper(h, b), v);
	}
	zrpc_histogram_destroy(h);
}

Test(histogram, every_bucket_holds_values_within_one_percent)
{
	struct zrpc_histogram *h;

	cr_assert_eq(zrpc_histogram_create(&h, 7), 0);
	for (uint64_t v = 1; v < (1ull << 40); v = v * 3 / 2 + 1) {
		size_t   b     = zrpc_histogram_bucket(h, v);
		uint64_t upper = zrpc_histogram_bucket_upper(h, b);
		cr_assert(upper >= v, "%llu in a bucket up to %llu",
		    (unsigned long long) v, (unsigned long long) upper);
		cr_assert((double) (upper - v) <= 0.01 * (double) v + 1.0,
		    "%llu vs %llu", (unsigned long long) v,
		    (unsigned long long) upper);
	}
	zrpc_histogram_destroy(h);
}

Test(histogram, quantiles_of_a_known_distribution)
{
	struct zrpc_histogram *h;

	cr_assert_eq(zrpc_histogram_create(&h, 7), 0);
	for (uint64_t v = 1; v <= 10000; v++) {
		zrpc_histogram_record(h, v * 1000);
	}
	cr_assert_eq(zrpc_histogram_count(h), 10000);
	cr_assert_eq(zrpc_histogram_max(h), 10000000);
	uint64_t p50 = zrpc_histogram_quantile(h, 0.5);
	uint64_t p99 = zrpc_histogram_quantile(h, 0.99);
	cr_assert(p50 >= 5000000 && p50 <= 5050000, "p50 %llu",
	    (unsigned long long) p50);
	cr_assert(p99 >= 9900000 && p99 <= 9999000, "p99 %llu",
	    (unsigned long long) p99);
	cr_assert_eq(zrpc_histogram_quantile(h, 1.0), 10000000);
	zrpc_histogram_reset(h);
	cr_assert_eq(zrpc_histogram_quantile(h, 0.5), 0);
	zrpc_histogram_destroy(h);
}

Test(histogram, huge_values_are_clamped_not_lost)
{
	struct zrpc_histogram *h;

	cr_assert_eq(zrpc_histogram_create(&h, 4), 0);
	zrpc_histogram_record(h, UINT64_MAX);
	cr_assert_eq(zrpc_histogram_count(h), 1);
	cr_assert_eq(zrpc_histogram_bucket(h, UINT64_MAX),
	    zrpc_histogram_bucket_count(h) - 1);
	zrpc_histogram_destroy(h);
	cr_assert_eq(zrpc_histogram_create(&h, 0), EINVAL);
	cr_assert_null(h);
	zrpc_histogram_destroy(NULL);
}
