/*
 * The request head of the metrics endpoint; see http_request.h.
 */
#include "http_request.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

/* RFC 9110 tchar: what a method or a header name is made of. */
static bool
http_is_tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') ||
	    (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* Finds "\r\n" in [P, END); NULL when there is none. */
static const char *
http_find_crlf(const char *p, const char *end)
{
	for (; p + 1 < end; p++) {
		if (p[0] == '\r' && p[1] == '\n') {
			return p;
		}
	}
	return NULL;
}

/* The request line [P, END): METHOD SP TARGET SP HTTP/1.x. */
static enum zos_http_parse
http_request_line(const char *p, const char *end, struct zos_http_request *req)
{
	const char *sp1, *sp2, *query;

	if ((sp1 = memchr(p, ' ', (size_t) (end - p))) == NULL ||
	    (sp2 = memchr(sp1 + 1, ' ', (size_t) (end - sp1 - 1))) == NULL) {
		return ZOS_HTTP_PARSE_BAD;
	}
	req->method     = p;
	req->method_len = (size_t) (sp1 - p);
	if (req->method_len == 0 || req->method_len > ZOS_HTTP_MAX_METHOD) {
		return ZOS_HTTP_PARSE_BAD;
	}
	for (const char *c = p; c < sp1; c++) {
		if (!http_is_tchar((unsigned char) *c)) {
			return ZOS_HTTP_PARSE_BAD;
		}
	}
	/* origin-form only: "/path[?query]" */
	if (sp2 - sp1 - 1 > ZOS_HTTP_MAX_TARGET || sp1[1] != '/') {
		return ZOS_HTTP_PARSE_BAD;
	}
	for (const char *c = sp1 + 1; c < sp2; c++) {
		if ((unsigned char) *c <= ' ' || *c == 0x7f || *c == '#') {
			return ZOS_HTTP_PARSE_BAD;
		}
	}
	query         = memchr(sp1 + 1, '?', (size_t) (sp2 - sp1 - 1));
	req->path     = sp1 + 1;
	req->path_len = (size_t) ((query != NULL ? query : sp2) - req->path);
	if ((size_t) (end - sp2 - 1) != 8 ||
	    (memcmp(sp2 + 1, "HTTP/1.1", 8) != 0 &&
	        memcmp(sp2 + 1, "HTTP/1.0", 8) != 0)) {
		return ZOS_HTTP_PARSE_BAD;
	}
	return ZOS_HTTP_PARSE_OK;
}

enum zos_http_parse
zos_http_parse_request(
    const char *buf, size_t len, struct zos_http_request *req)
{
	const char *p = buf, *end = buf + len;
	const char *line_end, *head_end, *q;
	bool        http11, host = false;

	memset(req, 0, sizeof(*req));
	/* RFC 9112 2.2: at least one empty line before the request line
	 * should be ignored; one is, a second is junk. */
	if (len > 0 && p[0] == '\r') {
		if (len < 2) {
			return ZOS_HTTP_PARSE_MORE;
		}
		if (p[1] != '\n') {
			return ZOS_HTTP_PARSE_BAD;
		}
		p += 2;
	}
	/* The request line so far: no control byte but its CRLF. */
	for (q = p; q < end; q++) {
		unsigned char c = (unsigned char) *q;

		if (c == '\r' && (q + 1 == end || q[1] == '\n')) {
			break;
		}
		if (c < ' ' || c == 0x7f) {
			return ZOS_HTTP_PARSE_BAD;
		}
	}
	if (q == p && q < end) {
		return ZOS_HTTP_PARSE_BAD; /* an empty request line */
	}
	if ((line_end = http_find_crlf(p, end)) == NULL) {
		return ZOS_HTTP_PARSE_MORE;
	}
	if (http_request_line(p, line_end, req) != ZOS_HTTP_PARSE_OK) {
		return ZOS_HTTP_PARSE_BAD;
	}
	http11 = memcmp(line_end - 8, "HTTP/1.1", 8) == 0;

	/* The head ends at the first empty line after the request line. */
	head_end = NULL;
	for (q = line_end + 2; q <= end; q = line_end + 2) {
		if ((line_end = http_find_crlf(q, end)) == NULL) {
			return ZOS_HTTP_PARSE_MORE;
		}
		if (line_end == q) {
			head_end = q;
			break;
		}
		/* "name: value"; no obs-fold, no space before the colon. */
		const char *colon = memchr(q, ':', (size_t) (line_end - q));
		const char *v, *v_end;

		if (colon == NULL || colon == q) {
			return ZOS_HTTP_PARSE_BAD;
		}
		for (const char *c = q; c < colon; c++) {
			if (!http_is_tchar((unsigned char) *c)) {
				return ZOS_HTTP_PARSE_BAD;
			}
		}
		for (v = colon + 1; v < line_end && (*v == ' ' || *v == '\t');
		     v++) { }
		for (v_end = line_end;
		     v_end > v && (v_end[-1] == ' ' || v_end[-1] == '\t');
		     v_end--) { }
		for (const char *c = v; c < v_end; c++) {
			unsigned char u = (unsigned char) *c;
			if ((u < ' ' && u != '\t') || u == 0x7f) {
				return ZOS_HTTP_PARSE_BAD;
			}
		}
		if ((size_t) (colon - q) == 13 &&
		    strncasecmp(q, "authorization", 13) == 0) {
			if (req->authorization != NULL) {
				return ZOS_HTTP_PARSE_BAD; /* two of them */
			}
			req->authorization     = v;
			req->authorization_len = (size_t) (v_end - v);
		} else if ((size_t) (colon - q) == 4 &&
		    strncasecmp(q, "host", 4) == 0) {
			if (host) {
				return ZOS_HTTP_PARSE_BAD;
			}
			host = true;
		}
	}
	if (head_end == NULL) {
		return ZOS_HTTP_PARSE_MORE;
	}
	/* RFC 9112 3.2: an HTTP/1.1 request without Host is a 400. */
	if (http11 && !host) {
		return ZOS_HTTP_PARSE_BAD;
	}
	return ZOS_HTTP_PARSE_OK;
}
