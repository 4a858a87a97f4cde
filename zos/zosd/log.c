/*
 * zosd's logger; see log.h. Lines are built in a stack buffer: JSON
 * escaping is done here (writing JSON is a few lines; parsing it is what
 * needs a library, and zosd never parses its own logs).
 *
 * Values can come from callers (an unknown method name, a request id), so
 * nothing they contain may break a line: JSON strings escape control
 * characters and replace bytes that are not UTF-8 with U+FFFD; text lines
 * escape control characters and quote a value that has a space, a quote
 * or an '=' (logfmt style).
 */
#include "log.h"

#include <stdarg.h>
#include <stdint.h>
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

/*
 * Length of the well-formed UTF-8 sequence at S (2 to 4 bytes), or 0 when
 * S does not start one (a stray continuation byte, an overlong form, a
 * surrogate, a code point above U+10FFFF, a cut sequence).
 */
static size_t
log_utf8_length(const unsigned char *s)
{
	size_t   n;
	uint32_t cp;

	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n  = 2;
		cp = s[0] & 0x1fu;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n  = 3;
		cp = s[0] & 0x0fu;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n  = 4;
		cp = s[0] & 0x07u;
	} else {
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80) {
			return 0; /* also stops at the NUL */
		}
		cp = (cp << 6) | (s[i] & 0x3fu);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) {
		return 0;
	}
	return n;
}

/* Appends the escape for control character C ("\n", "\u0001"). */
static void
log_append_control(struct log_line *line, unsigned char c)
{
	static const char hex[] = "0123456789abcdef";
	char              esc[6];

	switch (c) {
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
		memcpy(esc, "\\u00", 4);
		esc[4] = hex[c >> 4];
		esc[5] = hex[c & 0xf];
		log_append(line, esc, 6);
	}
}

static void
log_append_json_string(struct log_line *line, const char *s)
{
	log_append(line, "\"", 1);
	while (*s != '\0' && !line->full) {
		unsigned char c = (unsigned char) *s;
		size_t        n;

		if (c >= 0x80) {
			/* Whole characters, or U+FFFD for a bad byte. */
			if ((n = log_utf8_length((const unsigned char *) s)) ==
			    0) {
				log_append(line, "\\ufffd", 6);
				s++;
			} else {
				log_append(line, s, n);
				s += n;
			}
			continue;
		}
		s++;
		switch (c) {
		case '"':
			log_append(line, "\\\"", 2);
			break;
		case '\\':
			log_append(line, "\\\\", 2);
			break;
		default:
			if (c < 0x20 || c == 0x7f) {
				log_append_control(line, c);
			} else {
				log_append(line, (const char *) &c, 1);
			}
		}
	}
	if (!line->full) {
		log_append(line, "\"", 1);
	}
}

/*
 * Appends S to a text line with its control characters escaped, between
 * double quotes (with '"' and '\\' escaped too) when QUOTE.
 */
static void
log_append_text(struct log_line *line, const char *s, bool quote)
{
	if (quote) {
		log_append(line, "\"", 1);
	}
	for (; *s != '\0' && !line->full; s++) {
		unsigned char c = (unsigned char) *s;

		if (c < 0x20 || c == 0x7f) {
			log_append_control(line, c);
		} else if (quote && (c == '"' || c == '\\')) {
			log_append(line, "\\", 1);
			log_append(line, s, 1);
		} else {
			log_append(line, s, 1);
		}
	}
	if (quote && !line->full) {
		log_append(line, "\"", 1);
	}
}

/* A text value is quoted when empty or when it has a space, a quote or
 * an '=' (or anything below a space), so that key=value splits on
 * spaces. */
static bool
log_text_needs_quotes(const char *s)
{
	if (*s == '\0') {
		return true;
	}
	for (; *s != '\0'; s++) {
		if ((unsigned char) *s <= ' ' || *s == '"' || *s == '=' ||
		    *s == 0x7f) {
			return true;
		}
	}
	return false;
}

/*
 * True when S is a JSON number (RFC 8259: -?(0|[1-9][0-9]*)(.[0-9]+)?
 * ([eE][+-]?[0-9]+)?), so that a field said to be one can go unquoted.
 */
static bool
log_is_json_number(const char *s)
{
	if (*s == '-') {
		s++;
	}
	if (*s == '0') {
		s++;
	} else if (*s >= '1' && *s <= '9') {
		while (*s >= '0' && *s <= '9') {
			s++;
		}
	} else {
		return false;
	}
	if (*s == '.') {
		if (*++s < '0' || *s > '9') {
			return false;
		}
		while (*s >= '0' && *s <= '9') {
			s++;
		}
	}
	if (*s == 'e' || *s == 'E') {
		s++;
		if (*s == '+' || *s == '-') {
			s++;
		}
		if (*s < '0' || *s > '9') {
			return false;
		}
		while (*s >= '0' && *s <= '9') {
			s++;
		}
	}
	return *s == '\0';
}

/* Writes V as N decimal digits, zero-padded, at OUT. */
static void
log_put_digits(char *out, unsigned long v, int n)
{
	for (int i = n - 1; i >= 0; i--) {
		out[i] = (char) ('0' + v % 10);
		v /= 10;
	}
}

/*
 * The calendar date comes from the day number by arithmetic (the
 * civil-from-days algorithm of Howard Hinnant's date library): glibc's
 * gmtime_r takes a process-wide lock, which every serving thread logging a
 * call would contend for.
 */
void
zos_log_format_time(long long sec, long nsec, char out[ZOS_LOG_TIME_LEN + 1])
{
	long long days = sec / 86400, secs = sec % 86400;
	long long era, doe, yoe, doy, mp, y, m, d;

	if (secs < 0) {
		secs += 86400;
		days--;
	}
	days += 719468; /* from 1970-01-01 to 0000-03-01 */
	era = (days >= 0 ? days : days - 146096) / 146097;
	doe = days - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp  = (5 * doy + 2) / 153;
	d   = doy - (153 * mp + 2) / 5 + 1;
	m   = mp < 10 ? mp + 3 : mp - 9;
	y   = yoe + era * 400 + (m <= 2);
	if (y < 0 || y > 9999) {
		y = y < 0 ? 0 : 9999; /* RFC 3339 has four digits */
	}
	log_put_digits(out, (unsigned long) y, 4);
	out[4] = '-';
	log_put_digits(out + 5, (unsigned long) m, 2);
	out[7] = '-';
	log_put_digits(out + 8, (unsigned long) d, 2);
	out[10] = 'T';
	log_put_digits(out + 11, (unsigned long) (secs / 3600), 2);
	out[13] = ':';
	log_put_digits(out + 14, (unsigned long) (secs / 60 % 60), 2);
	out[16] = ':';
	log_put_digits(out + 17, (unsigned long) (secs % 60), 2);
	out[19] = '.';
	log_put_digits(out + 20, (unsigned long) (nsec / 1000000L), 3);
	out[23] = 'Z';
	out[24] = '\0';
}

static void
log_append_timestamp(struct log_line *line)
{
	struct timespec ts;
	char            buf[ZOS_LOG_TIME_LEN + 1];

	clock_gettime(CLOCK_REALTIME, &ts);
	zos_log_format_time(ts.tv_sec, ts.tv_nsec, buf);
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
				if (fields[i].number &&
				    log_is_json_number(fields[i].value)) {
					log_append(&line, fields[i].value,
					    strlen(fields[i].value));
				} else {
					log_append_json_string(
					    &line, fields[i].value);
				}
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
		log_append_text(&line, message, false);
		for (int i = 0; i < n_fields; i++) {
			log_append_str(&line, " ");
			log_append_text(&line, fields[i].key, false);
			log_append_str(&line, "=");
			log_append_text(&line, fields[i].value,
			    log_text_needs_quotes(fields[i].value));
		}
	}
	if (log->format == ZOS_LOG_TEXT && line.full) {
		log_append_closing(&line, "...");
	}
	log_append_closing(&line, "\n");
	if (log->queue != NULL) {
		/* A refused line is counted by the queue. */
		(void) zrpc_logq_push(log->queue, line.buf, line.len);
		return;
	}
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

bool
zos_access_log_parse_mode(const char *name, enum zos_access_log_mode *mode)
{
	static const struct {
		const char              *name;
		enum zos_access_log_mode mode;
	} modes[] = {
		{ "all", ZOS_ACCESS_LOG_ALL },
		{ "errors", ZOS_ACCESS_LOG_ERRORS },
		{ "off", ZOS_ACCESS_LOG_OFF },
	};

	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		if (strcmp(name, modes[i].name) == 0) {
			*mode = modes[i].mode;
			return true;
		}
	}
	return false;
}

void
zos_access_log_init(struct zos_access_log *a, const struct zos_log *log,
    enum zos_access_log_mode mode, double sample)
{
	a->log    = log;
	a->mode   = mode;
	a->sample = sample;
	atomic_init(&a->ok_calls, 0);
}

bool
zos_access_log_wanted(struct zos_access_log *a, zrpc_code code)
{
	uint64_t n;

	if (a->mode == ZOS_ACCESS_LOG_OFF ||
	    (code == ZRPC_OK && a->mode != ZOS_ACCESS_LOG_ALL) ||
	    !zos_log_enabled(a->log, ZRPC_LOG_INFO)) {
		return false;
	}
	if (code != ZRPC_OK || a->sample >= 1.0) {
		return true;
	}
	/* The n-th OK call is kept when floor(n * R) steps: exactly
	 * floor(N * R) or one more of N, evenly spread. */
	n = atomic_fetch_add_explicit(&a->ok_calls, 1, memory_order_relaxed);
	return (uint64_t) ((double) (n + 1) * a->sample) !=
	    (uint64_t) ((double) n * a->sample);
}
