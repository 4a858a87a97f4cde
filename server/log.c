/*
 * zosd's logger; see log.h. Lines are built in a stack buffer: JSON
 * escaping is done here (writing JSON is a few lines; parsing it is what
 * needs a library, and zosd never parses its own logs).
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 4096

static const char *const log_level_names[] = {
	[ZRPC_LOG_DEBUG] = "debug",
	[ZRPC_LOG_INFO]  = "info",
	[ZRPC_LOG_WARN]  = "warn",
	[ZRPC_LOG_ERROR] = "error",
};

bool
zos_log_parse_level(const char *name, zrpc_log_level *level)
{
	for (int i = ZRPC_LOG_DEBUG; i <= ZRPC_LOG_ERROR; i++) {
		if (strcasecmp(name, log_level_names[i]) == 0) {
			*level = (zrpc_log_level) i;
			return true;
		}
	}
	if (strcasecmp(name, "warning") == 0) {
		*level = ZRPC_LOG_WARN;
		return true;
	}
	return false;
}

bool
zos_log_parse_format(const char *name, enum zos_log_format *format)
{
	if (strcmp(name, "json") == 0) {
		*format = ZOS_LOG_JSON;
		return true;
	}
	if (strcmp(name, "text") == 0) {
		*format = ZOS_LOG_TEXT;
		return true;
	}
	return false;
}

bool
zos_log_enabled(const struct zos_log *log, zrpc_log_level level)
{
	return log != NULL && level >= log->level;
}

/*
 * A bounded line. Content may use all but LOG_RESERVE bytes; the reserve
 * is for what closes the line ("...", quotes, the brace, the newline), so
 * a long event is cut between whole characters and still closes properly.
 */
#define LOG_RESERVE 16

struct log_line {
	char   buf[LOG_LINE_MAX];
	size_t len;
	bool   full; /* content was cut */
};

/* Appends S[0..N) whole, or nothing (and marks the line full). */
static void
log_append(struct log_line *line, const char *s, size_t n)
{
	if (line->full || n > sizeof(line->buf) - LOG_RESERVE - line->len) {
		line->full = true;
		return;
	}
	memcpy(line->buf + line->len, s, n);
	line->len += n;
}

/* Appends into the reserve: only for the closing bytes. */
static void
log_append_closing(struct log_line *line, const char *s)
{
	size_t n = strlen(s);

	memcpy(line->buf + line->len, s, n);
	line->len += n;
}

/* Appends as much of S as fits (plain text: a cut anywhere is fine). */
static void
log_append_str(struct log_line *line, const char *s)
{
	size_t n    = strlen(s);
	size_t room = sizeof(line->buf) - LOG_RESERVE - line->len;

	if (line->full) {
		return;
	}
	if (n > room) {
		n          = room;
		line->full = true;
	}
	memcpy(line->buf + line->len, s, n);
	line->len += n;
}

static void
log_append_json_string(struct log_line *line, const char *s)
{
	static const char hex[] = "0123456789abcdef";

	log_append(line, "\"", 1);
	for (; *s != '\0' && !line->full; s++) {
		unsigned char c = (unsigned char) *s;
		char          esc[6];

		switch (c) {
		case '"':
			log_append(line, "\\\"", 2);
			break;
		case '\\':
			log_append(line, "\\\\", 2);
			break;
		case '\n':
			log_append(line, "\\n", 2);
			break;
		case '\r':
			log_append(line, "\\r", 2);
			break;
		case '\t':
			log_append(line, "\\t", 2);
			break;
		default:
			if (c < 0x20) {
				memcpy(esc, "\\u00", 4);
				esc[4] = hex[c >> 4];
				esc[5] = hex[c & 0xf];
				log_append(line, esc, 6);
			} else {
				log_append(line, (const char *) &c, 1);
			}
		}
	}
	if (!line->full) {
		log_append(line, "\"", 1);
	}
}

static void
log_append_timestamp(struct log_line *line)
{
	struct timespec ts;
	struct tm       tm;
	char            buf[40];
	size_t          n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, sizeof(buf) - n, ".%03ldZ", ts.tv_nsec / 1000000L);
	log_append_str(line, buf);
}

void
zos_log_event(const struct zos_log *log, zrpc_log_level level,
    const char *message, const struct zos_log_field *fields, int n_fields)
{
	struct log_line line;
	ssize_t         rv;

	if (!zos_log_enabled(log, level)) {
		return;
	}
	line.len  = 0;
	line.full = false;
	if (log->format == ZOS_LOG_JSON) {
		size_t field_start;

		log_append_str(&line, "{\"ts\":\"");
		log_append_timestamp(&line);
		log_append_str(&line, "\",\"level\":\"");
		log_append_str(&line, log_level_names[level]);
		log_append_str(&line, "\",\"msg\":");
		log_append_json_string(&line, message);
		if (line.full) {
			/* Cut inside the message: close its string. */
			log_append_closing(&line, "...\"}");
		} else {
			for (int i = 0; i < n_fields && !line.full; i++) {
				field_start = line.len;
				log_append_str(&line, ",");
				log_append_json_string(&line, fields[i].key);
				log_append_str(&line, ":");
				log_append_json_string(&line, fields[i].value);
				if (line.full) {
					/* Drop the field that did not fit. */
					line.len = field_start;
				}
			}
			log_append_closing(&line, "}");
		}
	} else {
		log_append_timestamp(&line);
		log_append_str(&line, " ");
		log_append_str(&line, log_level_names[level]);
		log_append_str(&line, " ");
		log_append_str(&line, message);
		for (int i = 0; i < n_fields; i++) {
			log_append_str(&line, " ");
			log_append_str(&line, fields[i].key);
			log_append_str(&line, "=");
			log_append_str(&line, fields[i].value);
		}
	}
	if (log->format == ZOS_LOG_TEXT && line.full) {
		log_append_closing(&line, "...");
	}
	log_append_closing(&line, "\n");
	rv = write(log->fd, line.buf, line.len);
	(void) rv; /* nowhere to report a failed log write */
}

void
zos_log_printf(
    const struct zos_log *log, zrpc_log_level level, const char *fmt, ...)
{
	char    message[LOG_LINE_MAX];
	va_list ap;

	if (!zos_log_enabled(log, level)) {
		return;
	}
	va_start(ap, fmt);
	(void) vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	zos_log_event(log, level, message, NULL, 0);
}

void
zos_log_sink(void *arg, zrpc_log_level level, const char *message)
{
	zos_log_event(arg, level, message, NULL, 0);
}
