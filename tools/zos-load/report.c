/*
 * zos-load's report; see report.h.
 *
 * The summary is computed once and both layouts print it, so the text and
 * the JSON report of a run always agree. Quantiles come from the run's
 * histogram, so each is the upper edge of its bucket (under 1% above the
 * exact value); max and mean are exact. The JSON numbers are printed
 * with a fixed number of decimals (json-c would otherwise write doubles
 * with up to 17 significant digits), and "rate" is null in the closed
 * loop. Counts by code list only the codes seen, by their names
 * ("DEADLINE_EXCEEDED").
 */
#include "report.h"

#include <inttypes.h>
#include <stdio.h>

#include <json-c/json.h>

void
load_report_summarize(const struct load_run *run, struct load_summary *s)
{
	const struct zrpc_histogram *h     = run->latency;
	uint64_t                     count = zrpc_histogram_count(h);
	uint64_t                     end   = atomic_load(&run->end_ns);

	s->calls = atomic_load(&run->completed);
	s->ok    = atomic_load(&run->codes[ZRPC_OK]);
	s->elapsed_s =
	    end > run->start_ns ? (double) (end - run->start_ns) / 1e9 : 0.0;
	s->calls_per_s =
	    s->elapsed_s > 0 ? (double) s->calls / s->elapsed_s : 0.0;
	s->p50_us  = (double) zrpc_histogram_quantile(h, 0.50) / 1e3;
	s->p90_us  = (double) zrpc_histogram_quantile(h, 0.90) / 1e3;
	s->p99_us  = (double) zrpc_histogram_quantile(h, 0.99) / 1e3;
	s->p999_us = (double) zrpc_histogram_quantile(h, 0.999) / 1e3;
	s->max_us  = (double) zrpc_histogram_max(h) / 1e3;
	s->mean_us = count > 0
	    ? (double) zrpc_histogram_sum(h) / (double) count / 1e3
	    : 0.0;
}

/* "closed loop" or "open loop at R calls/s", in BUF. */
static const char *
load_report_mode_text(const struct load_options *opts, char *buf, size_t len)
{
	if (opts->rate > 0) {
		snprintf(buf, len, "open loop at %.6g calls/s", opts->rate);
	} else {
		snprintf(buf, len, "closed loop");
	}
	return buf;
}

void
load_report_text(const struct load_run *run, const struct load_summary *s)
{
	const struct load_options *opts = run->opts;
	char                       mode[64];

	printf("zos-load: %s %s\n", opts->url,
	    opts->echo ? "(echo: empty method)" : run->payloads->path);
	printf("  %zu caller%s on %zu connection%s, %s\n", opts->concurrency,
	    opts->concurrency == 1 ? "" : "s", opts->connections,
	    opts->connections == 1 ? "" : "s",
	    load_report_mode_text(opts, mode, sizeof(mode)));
	printf("calls     %" PRIu64 " in %.3f s: %.1f calls/s\n", s->calls,
	    s->elapsed_s, s->calls_per_s);
	printf("latency   p50 %.1f us  p90 %.1f us  p99 %.1f us  p99.9 %.1f "
	       "us  max %.1f us  (mean %.1f us)\n",
	    s->p50_us, s->p90_us, s->p99_us, s->p999_us, s->max_us,
	    s->mean_us);
	if (opts->rate > 0) {
		printf("schedule  at most %.3f ms behind\n",
		    (double) run->max_lag_ns / 1e6);
	}
	printf("status   ");
	for (size_t i = 0; i < ZRPC_CODE_COUNT; i++) {
		uint64_t n = atomic_load(&run->codes[i]);

		if (n > 0) {
			printf(" %s %" PRIu64, zrpc_status_name((zrpc_code) i),
			    n);
		}
	}
	if (s->calls == 0) {
		printf(" (no calls)");
	}
	printf("\n");
	for (size_t i = 1; i < ZRPC_CODE_COUNT; i++) {
		if (atomic_load(&run->notes[i].ready)) {
			printf("          %s, first: %s\n",
			    zrpc_status_name((zrpc_code) i),
			    run->notes[i].message);
		}
	}
}

/* A json-c number printed with DIGITS decimals. */
static json_object *
load_report_json_number(double value, int digits)
{
	char text[64];

	snprintf(text, sizeof(text), "%.*f", digits, value);
	return json_object_new_double_s(value, text);
}

int
load_report_json(const struct load_run *run, const struct load_summary *s)
{
	const struct load_options *opts = run->opts;
	json_object *root = json_object_new_object(), *latency, *codes,
	            *errors;
	const char *text;

	if (root == NULL) {
		return -1;
	}
	json_object_object_add(root, "url", json_object_new_string(opts->url));
	json_object_object_add(
	    root, "method", json_object_new_string(run->payloads->path));
	json_object_object_add(root, "concurrency",
	    json_object_new_int64((int64_t) opts->concurrency));
	json_object_object_add(root, "connections",
	    json_object_new_int64((int64_t) opts->connections));
	json_object_object_add(root, "rate",
	    opts->rate > 0 ? load_report_json_number(opts->rate, 3) : NULL);
	json_object_object_add(
	    root, "calls", json_object_new_uint64(s->calls));
	json_object_object_add(root, "ok", json_object_new_uint64(s->ok));
	json_object_object_add(
	    root, "errors", json_object_new_uint64(s->calls - s->ok));
	json_object_object_add(
	    root, "elapsed_s", load_report_json_number(s->elapsed_s, 6));
	json_object_object_add(
	    root, "calls_per_s", load_report_json_number(s->calls_per_s, 3));
	latency = json_object_new_object();
	json_object_object_add(
	    latency, "p50", load_report_json_number(s->p50_us, 3));
	json_object_object_add(
	    latency, "p90", load_report_json_number(s->p90_us, 3));
	json_object_object_add(
	    latency, "p99", load_report_json_number(s->p99_us, 3));
	json_object_object_add(
	    latency, "p999", load_report_json_number(s->p999_us, 3));
	json_object_object_add(
	    latency, "max", load_report_json_number(s->max_us, 3));
	json_object_object_add(
	    latency, "mean", load_report_json_number(s->mean_us, 3));
	json_object_object_add(root, "latency_us", latency);
	codes  = json_object_new_object();
	errors = json_object_new_object();
	for (size_t i = 0; i < ZRPC_CODE_COUNT; i++) {
		uint64_t n = atomic_load(&run->codes[i]);

		if (n > 0) {
			json_object_object_add(codes,
			    zrpc_status_name((zrpc_code) i),
			    json_object_new_uint64(n));
		}
		if (i > 0 && atomic_load(&run->notes[i].ready)) {
			json_object_object_add(errors,
			    zrpc_status_name((zrpc_code) i),
			    json_object_new_string(run->notes[i].message));
		}
	}
	json_object_object_add(root, "codes", codes);
	json_object_object_add(root, "first_errors", errors);
	if (opts->rate > 0) {
		json_object_object_add(root, "max_lag_ms",
		    load_report_json_number(
		        (double) run->max_lag_ns / 1e6, 3));
	}
	text = json_object_to_json_string_ext(
	    root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	if (text == NULL) {
		json_object_put(root);
		return -1;
	}
	printf("%s\n", text);
	json_object_put(root);
	return 0;
}
