/*
 * zosd's logger: one line per event on stderr, as JSON (the default when
 * stderr is not a terminal) or as text, filtered by level.
 *
 * The logger is a value created in main and handed to whoever logs (the
 * zrpc runtime takes it as its log sink); there is no global logger. A
 * line is formatted on the thread that logs, then handed whole to a
 * zrpc_logq (zrpc/logq.h), whose writer thread writes it: logging never
 * makes a call wait for stderr. When the queue is full (a reader that
 * stopped reading, a burst beyond its 8192 lines or 1 MiB) the line is
 * dropped and counted: zos_log_lines_dropped_total on /metrics. Without a
 * queue (tests, the start before it exists) each line goes out in a
 * single write(2). Either way lines from different threads never
 * interleave.
 *
 * The fields of a line, which log readers rely on:
 *
 *   JSON  {"ts":"2024-05-01T12:00:00.123Z","level":"info","msg":"call",
 *          "method":"/zos.v1.Skills/Get","code":"OK","latency_ms":0.153,
 *          ...}
 *   text  2024-05-01T12:00:00.123Z info call method=/zos.v1.Skills/Get ...
 *
 *   ts     the time, UTC, RFC 3339 with milliseconds
 *   level  "debug", "info", "warn" or "error"
 *   msg    what happened ("listening on tcp://127.0.0.1:7447", "call")
 *   then the event's own fields: strings, except those documented as
 *   numbers, which are JSON numbers (text lines write both as key=value).
 *
 * The access log (zosd.c, zos_access_log below) writes one line per
 * selected call, at info level, with msg "call" and the fields
 *
 *   method      the wire method name, "/zos.v1.Skills/Get" (as the caller
 *               sent it, also when no such method exists)
 *   code        the status code's name, "OK", "NOT_FOUND"
 *   latency_ms  a number: from the request's arrival to its reply, in
 *               milliseconds with 3 decimals, 0.153
 *   request_id  the x-request-id echoed to the caller (its own or one
 *               zosd generated)
 *   peer        the caller's address, "tcp://127.0.0.1:50012",
 *               "ipc:///tmp/zos.sock"; "" when unknown
 *   role        the caller's role from its token ("read", "write",
 *               "admin"; "" without one); never the token
 *   message     on error lines only (code not OK): the status message the
 *               caller got, escaped like any string
 *   traceparent when the caller sent a valid W3C traceparent: as received
 *   trace_id    when the call has a trace (the caller's, or one started
 *               for its backend calls): 32 hex digits
 *
 * --access-log picks the calls: "errors" (the default) every call whose
 * code is not OK, "all" every call, "off" none. --access-log-sample R
 * (0 < R <= 1, default 1) keeps a fraction R of the OK lines that "all"
 * selects; error lines are never sampled away, since a demanding reader
 * wants every one of them (a flood of errors is bounded by the queue,
 * which drops and counts). The sampler is deterministic, not random: a
 * counter over the OK calls keeps the n-th call when floor(n * R) steps,
 * so the first N OK calls give N * R lines (within one, for rounding),
 * evenly spread: every 100th OK call for 0.01, whatever its method (a
 * client that alternates methods in step with 1/R sees one of them).
 *
 * The lines at shutdown: "lock times" with the numbers acquisitions,
 * wait_p99_us and hold_p99_us.
 *
 * Lines at most 4 KiB: a longer message is cut (JSON stays valid, text
 * ends in "..."). JSON strings are escaped, and bytes that are not UTF-8
 * become U+FFFD; text lines escape control characters and quote values
 * with spaces, quotes or '=' ("a b" becomes key="a b").
 */
#ifndef ZOS_LOG_H
#define ZOS_LOG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "zrpc/logq.h"
#include "zrpc/server.h"

enum zos_log_format {
	ZOS_LOG_TEXT,
	ZOS_LOG_JSON,
};

struct zos_log {
	zrpc_log_level      level;
	enum zos_log_format format;
	int                 fd; /* where lines go; 2 by default */
	/* When set, lines go to this queue (its writer writes them to its
	 * own descriptor) instead of write(2) on fd. Not owned. */
	zrpc_logq *queue;
};

/* A key/value field of a structured log event. */
struct zos_log_field {
	const char *key;
	const char *value;
	/* VALUE is a number ("0.153", "12"), written unquoted in JSON. A
	 * value that is not a JSON number is written as a string. */
	bool number;
};

/* Parses "debug", "info", "warn" or "error"; false when unknown. */
bool zos_log_parse_level(const char *name, zrpc_log_level *level);

/* Parses "json" or "text"; false when unknown. */
bool zos_log_parse_format(const char *name, enum zos_log_format *format);

/* True when an event at LEVEL would be written. */
bool zos_log_enabled(const struct zos_log *log, zrpc_log_level level);

/*
 * Writes one event: timestamp, level, MESSAGE and N_FIELDS fields. Values
 * are escaped as needed; lines longer than 4 KiB are truncated.
 */
void zos_log_event(const struct zos_log *log, zrpc_log_level level,
    const char *message, const struct zos_log_field *fields, int n_fields);

/* printf-style convenience for events without fields. */
void zos_log_printf(const struct zos_log *log, zrpc_log_level level,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Length of a line's time, "2024-05-01T12:00:00.123Z". */
#define ZOS_LOG_TIME_LEN 24

/*
 * Writes the time SEC.NSEC (seconds since the epoch) as RFC 3339 UTC with
 * milliseconds to OUT, as gmtime_r and strftime would, without their
 * process-wide lock; years outside 0..9999 are clamped.
 */
void zos_log_format_time(
    long long sec, long nsec, char out[ZOS_LOG_TIME_LEN + 1]);

/* A zrpc_log_fn that writes to the struct zos_log given as ARG. */
void zos_log_sink(void *arg, zrpc_log_level level, const char *message);

/* ---- the access log's choices (--access-log, --access-log-sample) ---- */

enum zos_access_log_mode {
	ZOS_ACCESS_LOG_ERRORS = 0, /* the default */
	ZOS_ACCESS_LOG_ALL,
	ZOS_ACCESS_LOG_OFF,
};

/* Parses "all", "errors" or "off"; false when unknown. */
bool zos_access_log_parse_mode(
    const char *name, enum zos_access_log_mode *mode);

/*
 * The access log of one server: where its lines go, which calls get one,
 * and the sampler's counter. Made by main (zos_access_log_init), used by
 * the interceptor from any thread.
 */
struct zos_access_log {
	const struct zos_log    *log;
	enum zos_access_log_mode mode;
	double                   sample;   /* (0, 1]: OK lines kept */
	atomic_uint_fast64_t     ok_calls; /* OK calls seen by the sampler */
};

void zos_access_log_init(struct zos_access_log *a, const struct zos_log *log,
    enum zos_access_log_mode mode, double sample);

/*
 * True when a call that ended with CODE gets a line: the mode selects it,
 * the log's level lets info through, and, for OK, the sampler keeps it
 * (every error line is kept). Lock-free; one atomic add per OK call when
 * sampling, none otherwise.
 */
bool zos_access_log_wanted(struct zos_access_log *a, zrpc_code code);

#endif /* ZOS_LOG_H */
