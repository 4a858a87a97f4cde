/*
 * zos-load's report of a finished run: calls and calls/s, the latency
 * percentiles the user chose (--percentiles), max and mean, a latency
 * histogram, the calls by status code with the first message of each
 * error code, and a line per step of a --rate START:END:STEP schedule;
 * as text (the default), as one JSON object (--format json) or as CSV
 * (--format csv: a header, a row per step, a "total" row), on stdout.
 *
 * Everything is read from the run (run.h) after load_run_execute returned,
 * when no other thread touches it any more; the counts and latencies are
 * the zrpc clients' own metrics (stats.h).
 */
#ifndef ZOS_LOAD_REPORT_H
#define ZOS_LOAD_REPORT_H

#include <stdint.h>

#include "run.h"

/* What a report says of a set of calls. Times in microseconds. */
struct load_summary {
	uint64_t calls;
	uint64_t ok;
	double   elapsed_s;
	double   calls_per_s;
	double   percentiles_us[LOAD_MAX_PERCENTILES]; /* opts' order */
	double   max_us, mean_us;
};

/* Fills S from the finished RUN: the whole run. */
void load_report_summarize(const struct load_run *run, struct load_summary *s);

/*
 * Prints the report of RUN and S on stdout in the format of the run's
 * options. Returns 0, or -1 when out of memory (nothing printed).
 */
int load_report_print(
    const struct load_run *run, const struct load_summary *s);

#endif /* ZOS_LOAD_REPORT_H */
