/*
 * zos-load's report; see report.h.
 *
 * A summary is computed once per set of calls (the run, each step) and
 * every layout prints it, so the text, JSON and CSV reports of a run
 * always agree. Quantiles come from the clients' histograms, so each is
 * the upper edge of its bucket (under 1% above the exact value); max and
 * mean are exact for the whole run (a step's max is its highest bucket's
 * edge). The JSON numbers are printed with a fixed number of decimals
 * (json-c would otherwise write doubles with up to 17 significant
 * digits), and "rate" is null in the closed loop. Counts by code list
 * only the codes seen, by their names ("DEADLINE_EXCEEDED").
 *
 * The histogram is ghz's: 11 marks evenly spaced from the fastest call
 * to the slowest, each with the calls above the mark before it and up to
 * it, and a bar of at most LOAD_BAR_WIDTH characters.
 */
#include "report.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#define LOAD_HISTOGRAM_MARKS 11
#define LOAD_BAR_WIDTH 40

/* Fills S from SNAP, calls that completed over ELAPSED_S seconds. */
static void
load_report_summary_of(const struct load_options *opts,
    const struct load_snapshot *snap, double elapsed_s, struct load_summary *s)
{
	memset(s, 0, sizeof(*s));
	s->calls       = snap->calls;
	s->ok          = snap->codes[ZRPC_OK];
	s->elapsed_s   = elapsed_s;
	s->calls_per_s = elapsed_s > 0 ? (double) s->calls / elapsed_s : 0.0;
	for (size_t i = 0; i < opts->n_percentiles; i++) {
		s->percentiles_us[i] = (double) load_snapshot_quantile(
		                           snap, opts->percentiles[i] / 100) /
		    1e3;
	}
	s->max_us  = (double) snap->max_ns / 1e3;
	s->mean_us = snap->calls > 0
	    ? (double) snap->sum_ns / (double) snap->calls / 1e3
	    : 0.0;
}

void
load_report_summarize(const struct load_run *run, struct load_summary *s)
{
	uint64_t end = atomic_load(&run->end_ns);

	load_report_summary_of(run->opts, &run->total,
	    end > run->start_ns ? (double) (end - run->start_ns) / 1e9 : 0.0,
	    s);
}

/* The summary of step STEP (its percentiles were read at its end). */
static void
load_report_step_summary(const struct load_run *run,
    const struct load_step *step, struct load_summary *s)
{
	load_report_summary_of(run->opts, &step->calls,
	    (double) (step->end_ns - step->start_ns) / 1e9, s);
	for (size_t i = 0; i < run->opts->n_percentiles; i++) {
		s->percentiles_us[i] = (double) step->percentiles_ns[i] / 1e3;
	}
}

/* "p99.9" for 99.9, in BUF; the JSON key drops the dot ("p999"). */
static const char *
load_report_percentile_name(double p, bool key, char *buf, size_t len)
{
	char   number[32];
	size_t o = 0;

	snprintf(number, sizeof(number), "%.6g", p);
	buf[o++] = 'p';
	for (const char *c = number; *c != '\0' && o + 1 < len; c++) {
		if (*c != '.' || !key) {
			buf[o++] = *c;
		}
	}
	buf[o] = '\0';
	return buf;
}

/* What the loop did: "closed loop", "open loop at R calls/s", ... */
static const char *
load_report_mode_text(const struct load_options *opts, char *buf, size_t len)
{
	if (opts->rate_step != 0) {
		snprintf(buf, len,
		    "open loop from %.6g to %.6g calls/s, %+.6g every %.6g s",
		    opts->rate, opts->rate_end, opts->rate_step,
		    opts->step_duration_s);
	} else if (opts->rate > 0) {
		snprintf(buf, len, "open loop at %.6g calls/s", opts->rate);
	} else {
		snprintf(buf, len, "closed loop");
	}
	return buf;
}

/* Prints the percentiles, max and mean of S as "p50 X us  p90 ...". */
static void
load_report_text_latency(
    const struct load_options *opts, const struct load_summary *s, bool mean)
{
	char name[32];

	for (size_t i = 0; i < opts->n_percentiles; i++) {
		printf("%s%s %.1f us", i > 0 ? "  " : "",
		    load_report_percentile_name(
		        opts->percentiles[i], false, name, sizeof(name)),
		    s->percentiles_us[i]);
	}
	printf("  max %.1f us", s->max_us);
	if (mean) {
		printf("  (mean %.1f us)", s->mean_us);
	}
}

/*
 * The histogram of SNAP: MARKS[i] (ns) and COUNTS[i], i <
 * LOAD_HISTOGRAM_MARKS. Returns the number of marks (0 when empty).
 */
static size_t
load_report_histogram(
    const struct load_snapshot *snap, uint64_t *marks, uint64_t *counts)
{
	uint64_t fastest = 0, slowest = snap->max_ns, step;
	bool     seen = false;
	size_t   m;

	for (size_t i = 0; i < snap->n_buckets && !seen; i++) {
		if (snap->counts[i] > 0) {
			fastest = i > 0 ? snap->uppers[i - 1] + 1 : 0;
			seen    = true;
		}
	}
	if (!seen) {
		return 0;
	}
	if (fastest > slowest) {
		fastest = slowest;
	}
	step = (slowest - fastest) / (LOAD_HISTOGRAM_MARKS - 1);
	for (m = 0; m < LOAD_HISTOGRAM_MARKS; m++) {
		marks[m]  = m + 1 == LOAD_HISTOGRAM_MARKS ? slowest
		                                          : fastest + step * m;
		counts[m] = 0;
	}
	/* A bucket goes to the first mark at or above its lower edge. */
	m = 0;
	for (size_t i = 0; i < snap->n_buckets; i++) {
		uint64_t lower = i > 0 ? snap->uppers[i - 1] + 1 : 0;

		if (snap->counts[i] == 0) {
			continue;
		}
		while (m + 1 < LOAD_HISTOGRAM_MARKS && marks[m] < lower) {
			m++;
		}
		counts[m] += snap->counts[i];
	}
	return LOAD_HISTOGRAM_MARKS;
}

static void
load_report_text(const struct load_run *run, const struct load_summary *s)
{
	const struct load_options *opts = run->opts;
	uint64_t marks[LOAD_HISTOGRAM_MARKS], counts[LOAD_HISTOGRAM_MARKS];
	uint64_t most = 0;
	size_t   n_marks;
	char     mode[128];

	printf("zos-load: %s %s\n", opts->url,
	    opts->echo ? "(echo: empty method)" : run->payloads->path);
	printf("  %zu caller%s on %zu connection%s, %s\n", opts->concurrency,
	    opts->concurrency == 1 ? "" : "s", opts->connections,
	    opts->connections == 1 ? "" : "s",
	    load_report_mode_text(opts, mode, sizeof(mode)));
	if (opts->skip_first > 0) {
		printf("warm-up   %" PRIu64 " calls first, not counted\n",
		    opts->skip_first);
	}
	printf("calls     %" PRIu64 " in %.3f s: %.1f calls/s\n", s->calls,
	    s->elapsed_s, s->calls_per_s);
	printf("latency   ");
	load_report_text_latency(opts, s, true);
	printf("\n");
	if (opts->rate > 0) {
		printf("schedule  at most %.3f ms behind\n",
		    (double) run->max_lag_ns / 1e6);
	}
	printf("status   ");
	for (size_t i = 0; i < ZRPC_CODE_COUNT; i++) {
		uint64_t n = run->total.codes[i];

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
	for (size_t i = 0; i < run->n_steps; i++) {
		const struct load_step *step = &run->steps[i];
		struct load_summary     ss;

		load_report_step_summary(run, step, &ss);
		printf("step %-4zu at %.6g calls/s  %.3f-%.3f s: %" PRIu64
		       " calls, %.1f calls/s, %" PRIu64 " errors  ",
		    i + 1, step->rate, (double) step->start_ns / 1e9,
		    (double) step->end_ns / 1e9, ss.calls, ss.calls_per_s,
		    ss.calls - ss.ok);
		load_report_text_latency(opts, &ss, false);
		printf("\n");
	}
	n_marks = load_report_histogram(&run->total, marks, counts);
	if (n_marks > 0) {
		printf("latency histogram (us):\n");
		for (size_t m = 0; m < n_marks; m++) {
			most = counts[m] > most ? counts[m] : most;
		}
		for (size_t m = 0; m < n_marks; m++) {
			size_t bar = most > 0
			    ? (size_t) (counts[m] * LOAD_BAR_WIDTH / most)
			    : 0;

			printf("  %10.1f [%" PRIu64 "]%*s|",
			    (double) marks[m] / 1e3, counts[m],
			    (int) (10 -
			        snprintf(NULL, 0, "%" PRIu64, counts[m])),
			    "");
			for (size_t b = 0; b < bar; b++) {
				printf("\u220e");
			}
			printf("\n");
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

/* {"p50": X, ..., "max": X, "mean": X} of S. */
static json_object *
load_report_json_latency(
    const struct load_options *opts, const struct load_summary *s)
{
	json_object *latency = json_object_new_object();
	char         name[32];

	for (size_t i = 0; i < opts->n_percentiles; i++) {
		json_object_object_add(latency,
		    load_report_percentile_name(
		        opts->percentiles[i], true, name, sizeof(name)),
		    load_report_json_number(s->percentiles_us[i], 3));
	}
	json_object_object_add(
	    latency, "max", load_report_json_number(s->max_us, 3));
	json_object_object_add(
	    latency, "mean", load_report_json_number(s->mean_us, 3));
	return latency;
}

/* {"OK": N, ...}: the codes of SNAP that were seen. */
static json_object *
load_report_json_codes(const struct load_snapshot *snap)
{
	json_object *codes = json_object_new_object();

	for (size_t i = 0; i < ZRPC_CODE_COUNT; i++) {
		if (snap->codes[i] > 0) {
			json_object_object_add(codes,
			    zrpc_status_name((zrpc_code) i),
			    json_object_new_uint64(snap->codes[i]));
		}
	}
	return codes;
}

static int
load_report_json(const struct load_run *run, const struct load_summary *s)
{
	const struct load_options *opts = run->opts;
	json_object *root = json_object_new_object(), *errors, *list, *steps,
	            *histogram;
	uint64_t    marks[LOAD_HISTOGRAM_MARKS], counts[LOAD_HISTOGRAM_MARKS];
	size_t      n_marks;
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
	    root, "skip_first", json_object_new_uint64(opts->skip_first));
	json_object_object_add(
	    root, "calls", json_object_new_uint64(s->calls));
	json_object_object_add(root, "ok", json_object_new_uint64(s->ok));
	json_object_object_add(
	    root, "errors", json_object_new_uint64(s->calls - s->ok));
	json_object_object_add(
	    root, "elapsed_s", load_report_json_number(s->elapsed_s, 6));
	json_object_object_add(
	    root, "calls_per_s", load_report_json_number(s->calls_per_s, 3));
	json_object_object_add(
	    root, "latency_us", load_report_json_latency(opts, s));
	list = json_object_new_array();
	for (size_t i = 0; i < opts->n_percentiles; i++) {
		json_object *item = json_object_new_object();

		json_object_object_add(item, "percentile",
		    load_report_json_number(opts->percentiles[i], 3));
		json_object_object_add(item, "latency_us",
		    load_report_json_number(s->percentiles_us[i], 3));
		json_object_array_add(list, item);
	}
	json_object_object_add(root, "percentiles", list);
	histogram = json_object_new_array();
	n_marks   = load_report_histogram(&run->total, marks, counts);
	for (size_t m = 0; m < n_marks; m++) {
		json_object *item = json_object_new_object();

		json_object_object_add(item, "mark_us",
		    load_report_json_number((double) marks[m] / 1e3, 3));
		json_object_object_add(
		    item, "count", json_object_new_uint64(counts[m]));
		json_object_array_add(histogram, item);
	}
	json_object_object_add(root, "histogram", histogram);
	json_object_object_add(
	    root, "codes", load_report_json_codes(&run->total));
	errors = json_object_new_object();
	for (size_t i = 1; i < ZRPC_CODE_COUNT; i++) {
		if (atomic_load(&run->notes[i].ready)) {
			json_object_object_add(errors,
			    zrpc_status_name((zrpc_code) i),
			    json_object_new_string(run->notes[i].message));
		}
	}
	json_object_object_add(root, "first_errors", errors);
	if (opts->rate > 0) {
		json_object_object_add(root, "max_lag_ms",
		    load_report_json_number(
		        (double) run->max_lag_ns / 1e6, 3));
	}
	if (opts->rate_step != 0) {
		json_object *schedule = json_object_new_object();

		json_object_object_add(
		    schedule, "start", load_report_json_number(opts->rate, 3));
		json_object_object_add(schedule, "end",
		    load_report_json_number(opts->rate_end, 3));
		json_object_object_add(schedule, "step",
		    load_report_json_number(opts->rate_step, 3));
		json_object_object_add(schedule, "step_duration_s",
		    load_report_json_number(opts->step_duration_s, 3));
		json_object_object_add(root, "rate_schedule", schedule);
		steps = json_object_new_array();
		for (size_t i = 0; i < run->n_steps; i++) {
			const struct load_step *step = &run->steps[i];
			json_object        *item = json_object_new_object();
			struct load_summary ss;

			load_report_step_summary(run, step, &ss);
			json_object_object_add(item, "rate",
			    load_report_json_number(step->rate, 3));
			json_object_object_add(item, "start_s",
			    load_report_json_number(
			        (double) step->start_ns / 1e9, 6));
			json_object_object_add(item, "end_s",
			    load_report_json_number(
			        (double) step->end_ns / 1e9, 6));
			json_object_object_add(
			    item, "calls", json_object_new_uint64(ss.calls));
			json_object_object_add(
			    item, "ok", json_object_new_uint64(ss.ok));
			json_object_object_add(item, "errors",
			    json_object_new_uint64(ss.calls - ss.ok));
			json_object_object_add(item, "calls_per_s",
			    load_report_json_number(ss.calls_per_s, 3));
			json_object_object_add(item, "latency_us",
			    load_report_json_latency(opts, &ss));
			json_object_object_add(item, "codes",
			    load_report_json_codes(&step->calls));
			json_object_array_add(steps, item);
		}
		json_object_object_add(root, "steps", steps);
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

/* One CSV row: PHASE, the target RATE (0: none), times, S and CODES. */
static void
load_report_csv_row(const struct load_options *opts, const char *phase,
    double rate, double start_s, double end_s, const struct load_summary *s,
    const struct load_snapshot *snap, const bool *columns)
{
	printf("%s,%.3f,%.6f,%.6f,%" PRIu64 ",%" PRIu64 ",%" PRIu64
	       ",%.3f,%.3f",
	    phase, rate, start_s, end_s, s->calls, s->ok, s->calls - s->ok,
	    s->calls_per_s, s->mean_us);
	for (size_t i = 0; i < opts->n_percentiles; i++) {
		printf(",%.3f", s->percentiles_us[i]);
	}
	printf(",%.3f", s->max_us);
	for (size_t i = 0; i < ZRPC_CODE_COUNT; i++) {
		if (columns[i]) {
			printf(",%" PRIu64, snap->codes[i]);
		}
	}
	printf("\n");
}

/*
 * CSV: a header, then a row per step ("step1", ...) and a "total" row;
 * one column per status code seen in the run.
 */
static void
load_report_csv(const struct load_run *run, const struct load_summary *s)
{
	const struct load_options *opts = run->opts;
	bool                       columns[ZRPC_CODE_COUNT];
	char                       name[32];

	printf("phase,target_rate,start_s,end_s,calls,ok,errors,calls_per_s,"
	       "mean_us");
	for (size_t i = 0; i < opts->n_percentiles; i++) {
		printf(",%s_us",
		    load_report_percentile_name(
		        opts->percentiles[i], false, name, sizeof(name)));
	}
	printf(",max_us");
	for (size_t i = 0; i < ZRPC_CODE_COUNT; i++) {
		columns[i] = run->total.codes[i] > 0;
		if (columns[i]) {
			printf(",%s", zrpc_status_name((zrpc_code) i));
		}
	}
	printf("\n");
	for (size_t i = 0; i < run->n_steps; i++) {
		const struct load_step *step = &run->steps[i];
		struct load_summary     ss;
		char                    phase[32];

		load_report_step_summary(run, step, &ss);
		snprintf(phase, sizeof(phase), "step%zu", i + 1);
		load_report_csv_row(opts, phase, step->rate,
		    (double) step->start_ns / 1e9, (double) step->end_ns / 1e9,
		    &ss, &step->calls, columns);
	}
	load_report_csv_row(opts, "total", opts->rate, 0, s->elapsed_s, s,
	    &run->total, columns);
}

int
load_report_print(const struct load_run *run, const struct load_summary *s)
{
	switch (run->opts->format) {
	case LOAD_FORMAT_JSON:
		return load_report_json(run, s);
	case LOAD_FORMAT_CSV:
		load_report_csv(run, s);
		return 0;
	case LOAD_FORMAT_TEXT:
	default:
		load_report_text(run, s);
		return 0;
	}
}
