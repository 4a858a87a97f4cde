/*
 * strbuf: a growable, NUL-terminated string buffer for protoc-gen-zrpc.
 *
 * The generator writes a whole file through dozens of appends, so checking
 * each one would bury the code it writes under error handling. Instead a
 * buffer remembers its first allocation failure: later appends do nothing,
 * and the owner checks strbuf_failed() (or the NULL from strbuf_steal())
 * once, when the text is complete. Nothing here aborts.
 */
#ifndef ZRPC_GEN_STRBUF_H
#define ZRPC_GEN_STRBUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

struct strbuf {
	char  *data;   /* NUL-terminated once anything was appended */
	size_t len;    /* bytes in data, without the NUL */
	size_t cap;    /* bytes allocated */
	bool   failed; /* an allocation failed: the contents are incomplete */
};

/* Initialises BUF as empty; it owns no memory until the first append. */
void strbuf_init(struct strbuf *buf);

/* Frees the memory of BUF and leaves it empty. */
void strbuf_finish(struct strbuf *buf);

/* Empties BUF, keeping its memory (and its failure, if any). */
void strbuf_clear(struct strbuf *buf);

/* Appends the N bytes at S. */
void strbuf_append_len(struct strbuf *buf, const char *s, size_t n);

/* Appends the NUL-terminated string S. */
void strbuf_append(struct strbuf *buf, const char *s);

/* Appends the character C. */
void strbuf_append_char(struct strbuf *buf, char c);

/* Appends C, COUNT times. */
void strbuf_append_repeat(struct strbuf *buf, char c, size_t count);

/* Appends printf-style formatted text. */
void strbuf_printf(struct strbuf *buf, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* As strbuf_printf, with a va_list. */
void strbuf_vprintf(struct strbuf *buf, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/*
 * Marks BUF failed, for a writer whose own scratch allocation failed: the
 * text in BUF is then incomplete too.
 */
void strbuf_fail(struct strbuf *buf);

/* True when an append failed for lack of memory. */
bool strbuf_failed(const struct strbuf *buf);

/*
 * The contents of BUF ("" when empty), valid until the next append. NULL
 * when an append failed.
 */
const char *strbuf_str(const struct strbuf *buf);

/*
 * Hands the contents to the caller, who frees them with free(), and leaves
 * BUF empty and usable. Returns NULL, and frees the contents, when an
 * append failed or the empty string cannot be allocated.
 */
char *strbuf_steal(struct strbuf *buf);

/*
 * A newly allocated printf-style formatted string (the caller frees it), or
 * NULL when memory runs out.
 */
char *strbuf_format(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

#endif /* ZRPC_GEN_STRBUF_H */
