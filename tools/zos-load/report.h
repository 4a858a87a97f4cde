/*
 * zos-load's report of a finished run: calls and calls/s, latency
 * quantiles (p50, p90, p99, p99.9, max, mean) and the calls by status
 * code with the first message of each error code; as text (the default)
 * or as one JSON object (--json), on stdout.
 *
 * Everything is read from the run (run.h) after load_run_execute returned,
 * when no other thread touches it any more.
 */
#ifndef ZOS_LOAD_REPORT_H
#define ZOS_LOAD_REPORT_H

#include <stdint.h>

#include "run.h"

/* What a report says, computed once from the run. Times in microseconds. */
struct load_summary {
	uint64_t calls;
	uint64_t ok;
	double   elapsed_s;
	double   calls_per_s;
	double   p50_us, p90_us, p99_us, p999_us, max_us, mean_us;
};

/* Fills S from the finished RUN. */
void load_report_summarize(const struct load_run *run, struct load_summary *s);

/* Prints the text report of RUN and S on stdout. */
void load_report_text(
    const struct load_run *run, const struct load_summary *s);

/*
 * Prints the report of RUN and S as one JSON object on a line of stdout.
 * Returns 0, or -1 when out of memory (nothing printed).
 */
int load_report_json(const struct load_run *run, const struct load_summary *s);

#endif /* ZOS_LOAD_REPORT_H */
