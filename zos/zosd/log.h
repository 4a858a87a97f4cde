/*
 * zosd's logger: one line per event on stderr, as JSON (the default when
 * stderr is not a terminal) or as text, filtered by level.
 *
 * The logger is a value created in main and handed to whoever logs (the
 * zrpc runtime takes it as its log sink); there is no global logger. Each
 * line goes out in a single write(2), so lines from different threads
 * never interleave.
 *
 * The fields of a line, which log readers rely on:
 *
 *   JSON  {"ts":"2024-05-01T12:00:00.123Z","level":"info","msg":"call",
 *          "method":"/zos.v1.Skills/Get","code":"OK",...}
 *   text  2024-05-01T12:00:00.123Z info call method=/zos.v1.Skills/Get ...
 *
 *   ts     the time, UTC, RFC 3339 with milliseconds
 *   level  "debug", "info", "warn" or "error"
 *   msg    what happened ("listening on tcp://127.0.0.1:7447", "call")
 *   then the event's own fields, every value a string.
 *
 * The access log (zosd.c) writes one line per call, at info level, with
 * msg "call" and the fields
 *
 *   method      the wire method name, "/zos.v1.Skills/Get" (as the caller
 *               sent it, also when no such method exists)
 *   code        the status code's name, "OK", "NOT_FOUND"
 *   latency_ms  from the request's arrival to its reply, "0.153"
 *   request_id  the x-request-id echoed to the caller (its own or one
 *               zosd generated)
 *   peer        the caller's address, "tcp://127.0.0.1:50012",
 *               "ipc:///tmp/zos.sock"; "" when unknown
 *
 * Lines at most 4 KiB: a longer message is cut (JSON stays valid, text
 * ends in "..."). JSON strings are escaped, and bytes that are not UTF-8
 * become U+FFFD; text lines escape control characters and quote values
 * with spaces, quotes or '=' ("a b" becomes key="a b").
 */
#ifndef ZOS_LOG_H
#define ZOS_LOG_H

#include <stdbool.h>

#include "zrpc/server.h"

enum zos_log_format {
	ZOS_LOG_TEXT,
	ZOS_LOG_JSON,
};

struct zos_log {
	zrpc_log_level      level;
	enum zos_log_format format;
	int                 fd; /* where lines go; 2 by default */
};

/* A key/value field of a structured log event. */
struct zos_log_field {
	const char *key;
	const char *value;
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

/* A zrpc_log_fn that writes to the struct zos_log given as ARG. */
void zos_log_sink(void *arg, zrpc_log_level level, const char *message);

#endif /* ZOS_LOG_H */
