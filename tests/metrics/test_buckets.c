/*
 * The metrics text without HTTP: Prometheus buckets computed from the
 * log-linear histograms (zrpc_histogram_cumulative), and the exposition
 * zos_metrics_render writes for a real state and server.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "zrpc/histogram.h"

Test(buckets, bounds_on_bucket_edges_count_exactly)
{
	struct zrpc_histogram *h;
	uint64_t               counts[4];
	/* Upper edges of buckets at precision 4: exact boundaries. */
	uint64_t bounds[] = { 15, 1023, 65535, (1ull << 30) - 1 };

	cr_assert_eq(zrpc_histogram_create(&h, 4), 0);
	for (size_t i = 0; i < 4; i++) {
		size_t b = zrpc_histogram_bucket(h, bounds[i]);
		cr_assert_eq(zrpc_histogram_bucket_upper(h, b), bounds[i]);
	}
	/* On each bound and just past it. */
	for (size_t i = 0; i < 4; i++) {
		zrpc_histogram_record(h, bounds[i]);
		zrpc_histogram_record(h, bounds[i] + 1);
	}
	cr_assert_eq(zrpc_histogram_cumulative(h, bounds, 4, counts), 8);
	cr_assert_eq(counts[0], 1, "15, not 16");
	cr_assert_eq(counts[1], 3);
	cr_assert_eq(counts[2], 5);
	cr_assert_eq(counts[3], 7);
	zrpc_histogram_destroy(h);
}

Test(buckets, a_bound_inside_a_bucket_counts_that_whole_bucket)
{
	struct zrpc_histogram *h;
	uint64_t               count;
	uint64_t               bound = 50000; /* 50 us, inside a bucket */
	size_t                 b;
	uint64_t               upper;

	cr_assert_eq(zrpc_histogram_create(&h, 5), 0);
	b     = zrpc_histogram_bucket(h, bound);
	upper = zrpc_histogram_bucket_upper(h, b);
	cr_assert_gt(upper, bound, "the bound is not an edge");
	cr_assert_lt(upper - bound, bound / 32, "within 2^-5");

	zrpc_histogram_record(h, bound - 1); /* below: counted */
	zrpc_histogram_record(h, bound);     /* on it: counted */
	zrpc_histogram_record(h, upper);     /* same bucket: counted too */
	zrpc_histogram_record(h, upper + 1); /* next bucket: not */
	cr_assert_eq(zrpc_histogram_cumulative(h, &bound, 1, &count), 4);
	cr_assert_eq(count, 3);
	zrpc_histogram_destroy(h);
}

Test(buckets, counts_are_cumulative_and_end_at_the_total)
{
	const struct zrpc_histogram_bounds *bounds =
	    &zrpc_histogram_latency_bounds;
	struct zrpc_histogram *h;
	uint64_t               counts[32], total, expect;

	cr_assert_leq(bounds->n, 32);
	cr_assert_eq(zrpc_histogram_create(&h, 5), 0);
	/* 1 us to 100 s, in small steps: every bucket gets some. */
	for (uint64_t v = 1000; v < 100000000000ull; v += v / 64 + 1) {
		zrpc_histogram_record(h, v);
	}
	total =
	    zrpc_histogram_cumulative(h, bounds->values, bounds->n, counts);
	cr_assert_eq(total, zrpc_histogram_count(h));
	for (size_t i = 0; i < bounds->n; i++) {
		cr_assert_leq(counts[i], total);
		if (i > 0) {
			cr_assert_geq(counts[i], counts[i - 1], "cumulative");
		}
		/* Every value <= the bound is counted, and nothing beyond
		 * 2^-5 of it. */
		expect = 0;
		for (uint64_t v = 1000; v < 100000000000ull; v += v / 64 + 1) {
			expect += v <= bounds->values[i];
		}
		cr_assert_geq(counts[i], expect, "le=%s", bounds->le[i]);
		uint64_t slack = 0;
		for (uint64_t v = 1000; v < 100000000000ull; v += v / 64 + 1) {
			slack += v > bounds->values[i] &&
			    v <= bounds->values[i] + bounds->values[i] / 32;
		}
		cr_assert_leq(
		    counts[i], expect + slack, "le=%s", bounds->le[i]);
	}
	cr_assert_lt(counts[bounds->n - 1], total, "some above 60 s");
	zrpc_histogram_destroy(h);
}

Test(buckets, values_beyond_the_range_land_only_in_inf)
{
	struct zrpc_histogram              *h;
	uint64_t                            counts[32], total;
	const struct zrpc_histogram_bounds *bounds = &ZOS_METRICS_LOCK_BOUNDS;

	cr_assert_eq(zrpc_histogram_create(&h, 4), 0);
	zrpc_histogram_record(h, UINT64_MAX); /* clamped in the last */
	zrpc_histogram_record(h, 0);
	total =
	    zrpc_histogram_cumulative(h, bounds->values, bounds->n, counts);
	cr_assert_eq(total, 2);
	for (size_t i = 0; i < bounds->n; i++) {
		cr_assert_eq(counts[i], 1, "le=%s", bounds->le[i]);
	}
	zrpc_histogram_destroy(h);
}

Test(buckets, an_empty_histogram_counts_zero)
{
	struct zrpc_histogram *h;
	uint64_t               bounds[]  = { 10, 100 };
	uint64_t               counts[2] = { 7, 7 };

	cr_assert_eq(zrpc_histogram_create(&h, 7), 0);
	cr_assert_eq(zrpc_histogram_cumulative(h, bounds, 2, counts), 0);
	cr_assert_eq(counts[0], 0);
	cr_assert_eq(counts[1], 0);
	zrpc_histogram_destroy(h);
}

Test(buckets, the_le_texts_are_the_bounds_in_seconds)
{
	const struct zrpc_histogram_bounds *all[] = {
		&zrpc_histogram_latency_bounds, &ZOS_METRICS_LOCK_BOUNDS
	};

	for (size_t t = 0; t < 2; t++) {
		for (size_t i = 0; i < all[t]->n; i++) {
			double s = strtod(all[t]->le[i], NULL);
			cr_assert_float_eq(s * 1e9, (double) all[t]->values[i],
			    1e-3, "%s", all[t]->le[i]);
			if (i > 0) {
				cr_assert_gt(
				    all[t]->values[i], all[t]->values[i - 1]);
			}
		}
	}
	cr_assert_eq(zrpc_histogram_latency_bounds.values[0], 1000, "1 us");
	cr_assert_eq(zrpc_histogram_latency_bounds
	                 .values[zrpc_histogram_latency_bounds.n - 1],
	    60000000000ull, "60 s");
	/* Four per decade or finer: no bound more than 10^(1/4) (with the
	 * two-digit rounding, 1.875 at most) times the one before. */
	for (size_t i = 1; i < zrpc_histogram_latency_bounds.n; i++) {
		cr_assert_leq(zrpc_histogram_latency_bounds.values[i] * 1000,
		    zrpc_histogram_latency_bounds.values[i - 1] * 1875, "%s",
		    zrpc_histogram_latency_bounds.le[i]);
	}
}

/* ---- the rendered text ---- */

static struct zos_state *
render_state(void)
{
	struct zos_state_config config = { .abort_on_violation = true };
	char                    error[256];
	struct zos_state       *state;

	state = zos_state_create(&config, error, sizeof(error));
	cr_assert_not_null(state, "%s", error);
	return state;
}

/* Every sample's family has "# HELP" and "# TYPE" lines before it. */
static void
check_help_and_type(const char *text)
{
	char        family[128] = "";
	const char *line        = text;

	while (*line != '\0') {
		const char *eol = strchr(line, '\n');
		char        name[128];

		cr_assert_not_null(eol, "every line ends in a newline");
		if (strncmp(line, "# HELP ", 7) == 0) {
			cr_assert_eq(sscanf(line, "# HELP %127s", name), 1);
			cr_assert(strncmp(eol + 1, "# TYPE ", 7) == 0 &&
			        strncmp(eol + 8, name, strlen(name)) == 0,
			    "TYPE after HELP of %s", name);
		} else if (strncmp(line, "# TYPE ", 7) == 0) {
			cr_assert_eq(sscanf(line, "# TYPE %127s", family), 1);
		} else {
			cr_assert_neq(family[0], '\0', "%.80s", line);
			cr_assert(strncmp(line, family, strlen(family)) == 0,
			    "%.80s is in family %s", line, family);
		}
		line = eol + 1;
	}
}

Test(render, every_family_has_help_and_type_and_the_state_is_there)
{
	struct zos_state          *state = render_state();
	zrpc_server               *server;
	struct zos_metrics_sources sources;
	size_t                     len;
	char                      *text;

	cr_assert_eq(zrpc_server_create(&server, NULL).code, ZRPC_OK);
	sources = (struct zos_metrics_sources) { server, state };
	text    = zos_metrics_render(&sources, &len);
	cr_assert_not_null(text);
	cr_assert_eq(strlen(text), len);
	check_help_and_type(text);
	cr_assert(strstr(text,
	    "zrpc_server_call_duration_seconds_count{"
	    "method=\"/zrpc.v1.Health/Check\"} 0\n"));
	cr_assert(strstr(text,
	    "zrpc_server_call_duration_seconds_count{"
	    "method=\"other\"} 0\n"));
	cr_assert(strstr(text, "zos_cache_capacity 200\n"));
	cr_assert(
	    strstr(text, "zos_lock_acquisitions_total{lock=\"skills\"}"));
	cr_assert(strstr(text,
	    "zos_lock_wait_seconds_bucket{lock=\""
	    "response_cache\",le=\"+Inf\"}"));
	cr_assert(strstr(text, "zos_sessions{state=\"SOLVED\"} 0\n"));
	cr_assert(strstr(text, "zos_store_commits_total 0\n"));
	cr_assert(
	    strstr(text, "# TYPE process_resident_memory_bytes gauge\n"));
	free(text);
	zrpc_server_destroy(server);
	zos_state_destroy(state);
}

Test(render, label_values_are_escaped)
{
	struct zos_state          *state   = render_state();
	struct zos_metrics_sources sources = { NULL, state };
	size_t                     len;
	char                      *text;

	char error[256];

	/* Only routed models are recorded: route one with that name. */
	cr_assert_eq(zos_routing_set_primary(state->routing, "weird",
	                 "a\"quoted\\model\nname", error, sizeof(error)),
	    ZOS_ROUTING_OK, "%s", error);
	cr_assert_eq(zos_routing_record_outcome(state->routing,
	                 "a\"quoted\\model\nname", true, 1500, true),
	    ZOS_ROUTING_OK);
	text = zos_metrics_render(&sources, &len);
	cr_assert_not_null(text);
	check_help_and_type(text);
	cr_assert(strstr(text,
	              "zos_model_calls_total{model=\"a\\\"quoted\\\\model\\n"
	              "name\",outcome=\"success\"} 1\n"),
	    "%s", text);
	cr_assert(strstr(text,
	    "zos_model_fallbacks_total{model=\"a\\\"quoted"
	    "\\\\model\\nname\"} 1\n"));
	cr_assert(strstr(text,
	    "zos_model_latency_seconds_total{model=\"a\\\""
	    "quoted\\\\model\\nname\"} 1.500\n"));
	cr_assert_null(strstr(text, "zrpc_server_"), "no server given");
	free(text);
	zos_state_destroy(state);
}

Test(render, lock_order_violations_counted_in_release_builds_show)
{
	struct zos_state_config    config = { .abort_on_violation = false };
	struct zos_metrics_sources sources;
	struct zos_state          *state;
	char                       error[256];
	size_t                     len;
	char                      *text;

	state = zos_state_create(&config, error, sizeof(error));
	cr_assert_not_null(state, "%s", error);
	sources = (struct zos_metrics_sources) { NULL, state };
	/* Rank 4, then rank 1: out of order, counted (not aborted). */
	zos_lock_read(&state->cache.lock);
	zos_lock_read(&state->skills.lock);
	zos_unlock_read(&state->skills.lock);
	zos_unlock_read(&state->cache.lock);
	text = zos_metrics_render(&sources, &len);
	cr_assert_not_null(text);
	cr_assert(
	    strstr(text, "\nzos_lock_order_violations_total 1\n"), "%s", text);
	free(text);
	zos_state_destroy(state);
}

Test(render, nothing_but_the_process_without_sources)
{
	struct zos_metrics_sources sources = { NULL, NULL };
	size_t                     len;
	char                      *text = zos_metrics_render(&sources, &len);

	cr_assert_not_null(text);
	check_help_and_type(text);
	cr_assert_null(strstr(text, "zos_"));
	cr_assert(strstr(text, "process_start_time_seconds "));
	free(text);
}
