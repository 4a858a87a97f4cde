/*
 * strbuf: growable string buffer with a sticky allocation failure.
 *
 * Capacity doubles, so appending N bytes one at a time costs O(N). The
 * buffer is always NUL-terminated once it owns memory, which lets
 * strbuf_printf format straight into the free space and retry only when
 * the text did not fit.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"

void
strbuf_init(struct strbuf *buf)
{
	buf->data   = NULL;
	buf->len    = 0;
	buf->cap    = 0;
	buf->failed = false;
}

void
strbuf_finish(struct strbuf *buf)
{
	free(buf->data);
	strbuf_init(buf);
}

void
strbuf_clear(struct strbuf *buf)
{
	buf->len = 0;
	if (buf->data != NULL) {
		buf->data[0] = '\0';
	}
}

/*
 * Makes room for EXTRA more bytes plus the NUL. Returns false, and marks
 * BUF failed, when that cannot be allocated (or was already impossible).
 */
static bool
strbuf_reserve(struct strbuf *buf, size_t extra)
{
	size_t need;
	size_t cap;
	char  *data;

	if (buf->failed) {
		return false;
	}
	if (extra > SIZE_MAX - buf->len - 1) {
		buf->failed = true;
		return false;
	}
	need = buf->len + extra + 1;
	if (need <= buf->cap) {
		return true;
	}
	cap = buf->cap != 0 ? buf->cap : 256;
	while (cap < need) {
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	}
	if ((data = realloc(buf->data, cap)) == NULL) {
		buf->failed = true;
		return false;
	}
	buf->data = data;
	buf->cap  = cap;
	return true;
}

void
strbuf_append_len(struct strbuf *buf, const char *s, size_t n)
{
	if (!strbuf_reserve(buf, n)) {
		return;
	}
	memcpy(buf->data + buf->len, s, n);
	buf->len += n;
	buf->data[buf->len] = '\0';
}

void
strbuf_append(struct strbuf *buf, const char *s)
{
	strbuf_append_len(buf, s, strlen(s));
}

void
strbuf_append_char(struct strbuf *buf, char c)
{
	strbuf_append_len(buf, &c, 1);
}

void
strbuf_append_repeat(struct strbuf *buf, char c, size_t count)
{
	if (!strbuf_reserve(buf, count)) {
		return;
	}
	memset(buf->data + buf->len, c, count);
	buf->len += count;
	buf->data[buf->len] = '\0';
}

void
strbuf_vprintf(struct strbuf *buf, const char *fmt, va_list ap)
{
	va_list again;
	int     n;

	/* Make sure there is some room, so the first try usually fits. */
	if (!strbuf_reserve(buf, 64)) {
		return;
	}
	va_copy(again, ap);
	n = vsnprintf(buf->data + buf->len, buf->cap - buf->len, fmt, ap);
	if (n < 0) {
		buf->failed = true;
		goto done;
	}
	if ((size_t) n >= buf->cap - buf->len) {
		if (!strbuf_reserve(buf, (size_t) n)) {
			goto done;
		}
		(void) vsnprintf(
		    buf->data + buf->len, buf->cap - buf->len, fmt, again);
	}
	buf->len += (size_t) n;
done:
	va_end(again);
}

void
strbuf_printf(struct strbuf *buf, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	strbuf_vprintf(buf, fmt, ap);
	va_end(ap);
}

void
strbuf_fail(struct strbuf *buf)
{
	buf->failed = true;
}

bool
strbuf_failed(const struct strbuf *buf)
{
	return buf->failed;
}

const char *
strbuf_str(const struct strbuf *buf)
{
	if (buf->failed) {
		return NULL;
	}
	return buf->data != NULL ? buf->data : "";
}

char *
strbuf_steal(struct strbuf *buf)
{
	char *data;

	if (buf->failed) {
		strbuf_finish(buf);
		return NULL;
	}
	data = buf->data != NULL ? buf->data : strdup("");
	strbuf_init(buf);
	return data;
}

char *
strbuf_format(const char *fmt, ...)
{
	struct strbuf buf;
	va_list       ap;

	strbuf_init(&buf);
	va_start(ap, fmt);
	strbuf_vprintf(&buf, fmt, ap);
	va_end(ap);
	return strbuf_steal(&buf);
}
