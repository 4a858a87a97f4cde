/*
 * The request head of the metrics endpoint's HTTP server (http_metrics.h):
 * request line and headers, as RFC 9112 has them, with only what a scrape
 * needs kept. A pure function of the bytes, so that it can be fuzzed
 * (tests/fuzz, target http) and tested apart from the sockets.
 *
 * Strict on purpose: origin-form targets only, HTTP/1.0 or 1.1, no
 * obs-fold, no space before a header's colon, no control byte anywhere
 * but the CRLFs (and tabs in values), Host required by HTTP/1.1 and never
 * twice, Authorization at most once. One empty line before the request
 * line is ignored (RFC 9112 2.2); a second is junk.
 */
#ifndef ZOS_HTTP_REQUEST_H
#define ZOS_HTTP_REQUEST_H

#include <stddef.h>

#define ZOS_HTTP_MAX_METHOD 16
#define ZOS_HTTP_MAX_TARGET 2048

enum zos_http_parse {
	ZOS_HTTP_PARSE_MORE, /* not all of the head yet */
	ZOS_HTTP_PARSE_BAD,  /* not a request we accept: 400 */
	ZOS_HTTP_PARSE_OK,
};

/* What a parsed head holds; every pointer points into the parsed bytes. */
struct zos_http_request {
	const char *method;
	size_t      method_len;
	const char *path; /* the target without its query */
	size_t      path_len;
	const char *authorization; /* its value, trimmed; NULL: none */
	size_t      authorization_len;
};

/*
 * Parses the request head at the start of BUF (LEN bytes received so
 * far): OK when it is whole and well-formed (*REQ filled), MORE when it
 * may yet become so, BAD when it cannot. A request line that is already
 * wrong is BAD before the head is complete, so that a stream of junk is
 * answered at its first line; a well-formed head is never BAD while it is
 * incomplete. Bytes after the head are not looked at.
 */
enum zos_http_parse zos_http_parse_request(
    const char *buf, size_t len, struct zos_http_request *req);

#endif /* ZOS_HTTP_REQUEST_H */
