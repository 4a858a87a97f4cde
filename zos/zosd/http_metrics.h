/*
 * The HTTP server of zosd's metrics endpoint: a small HTTP/1.1 server on
 * one thread, with poll() and a deadline on every connection, that serves
 * one path (GET and HEAD) from a render callback.
 *
 * Why not nng's HTTP server, which served this endpoint before: nng 1.5's
 * server (src/supplemental/http/http_server.c) has no read timeout, no
 * bound on the connections it holds and no way to add them; it answers a
 * malformed request (a bare CRLF, say) with a 400 and keeps reading the
 * same connection, so 20 KB of CRLFs drew 4.6 MB of 400 responses, and a
 * client that sent half a request was held forever. A scrape endpoint
 * needs very little of HTTP, so this one does that little with hard
 * bounds:
 *
 *   - one request per connection: every response carries
 *     "Connection: close" and the connection is closed after it (a
 *     Prometheus scrape is one request every few seconds);
 *   - the whole request head must arrive within request_timeout_ms of the
 *     accept (408, then close), and fit in max_request_bytes (431);
 *   - anything that is not a well-formed HTTP/1.0 or 1.1 request line
 *     and headers gets one 400, then close;
 *   - at most max_connections at once; one beyond gets a 503 and is
 *     closed at once;
 *   - a response must be taken by the client within write_timeout_ms;
 *   - after its response the connection is shut for writing and what the
 *     client still sends is read and dropped for a short while (at most
 *     64 KiB), so that the kernel does not reset the connection under a
 *     response the client has not read yet.
 *
 * With a token set, every request must carry "Authorization: Bearer
 * TOKEN" (compared in constant time) or gets 401 before anything else is
 * looked at. The path is matched exactly (a query string is ignored);
 * other paths get 404, other methods on the path 405.
 *
 * Threads and locks: the server's thread does all the I/O and calls the
 * render callback, one request at a time, holding nothing of ours. The
 * handle is used from the thread that created it only (start, port,
 * stop). No global state.
 */
#ifndef ZOS_HTTP_METRICS_H
#define ZOS_HTTP_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ZOS_HTTP_REQUEST_TIMEOUT_MS 5000 /* accept to whole request */
#define ZOS_HTTP_WRITE_TIMEOUT_MS 10000  /* a response to be taken */
#define ZOS_HTTP_MAX_CONNECTIONS 16
#define ZOS_HTTP_MAX_REQUEST_BYTES 8192 /* request line and headers */

/*
 * Renders the body of a 200 response: returns malloc'd text (the server
 * frees it) and sets *LEN, or returns NULL for a 500. Called on the
 * server's thread.
 */
typedef char *(*zos_http_render_fn)(void *arg, size_t *len);

struct zos_http_config {
	const char *host;         /* to bind: an address or a name; copied */
	const char *port;         /* decimal; "0" picks a free one; copied */
	const char *path;         /* served, "/metrics"; copied */
	const char *token;        /* NULL: no Authorization wanted; copied */
	const char *content_type; /* of a 200; must outlive the server;
	                           * NULL = text/plain */
	zos_http_render_fn render;
	void              *render_arg;
	/* 0 picks the ZOS_HTTP_ default of each. */
	unsigned request_timeout_ms;
	unsigned write_timeout_ms;
	unsigned max_connections;
	size_t   max_request_bytes;
};

struct zos_http; /* opaque */

/*
 * Binds and listens on CONFIG's host and port and starts the server's
 * thread. Returns 0 and *OUT, or an errno value with ERROR saying what
 * failed ("address already in use", "cannot resolve HOST: ...").
 */
int zos_http_start(const struct zos_http_config *config, struct zos_http **out,
    char *error, size_t error_len);

/* The port the server listens on (the one picked for "0"). */
unsigned zos_http_port(const struct zos_http *http);

/*
 * Stops the thread (a request being rendered finishes first), closes the
 * listener and every connection, and frees HTTP. After it returns the
 * render callback is never called again. NULL is a no-op.
 */
void zos_http_stop(struct zos_http *http);

#define ZOS_HTTP_MAX_TOKEN 1024

/*
 * Reads a bearer token from the file at PATH: its first line (a final CR
 * dropped), 1 to ZOS_HTTP_MAX_TOKEN bytes of RFC 6750's b64token
 * (letters, digits, - . _ ~ + / and trailing =). Returns 0 with *OUT
 * (malloc'd; the caller wipes and frees it) and *OPEN_TO_OTHERS set when group
 * or others may read the file (worth a warning), or -1 with ERROR saying what
 * is wrong (never quoting the file's contents).
 */
int zos_http_read_token(const char *path, char **out, bool *open_to_others,
    char *error, size_t error_len);

/*
 * Whether VALUE (LEN bytes, the value of an Authorization header) is
 * "Bearer TOKEN" for TOKEN; the scheme's case is ignored. Takes the same
 * time for every VALUE of a given length, whatever TOKEN is (it never
 * stops at the first difference). For the tests too.
 */
bool zos_http_bearer_matches(const char *value, size_t len, const char *token);

#endif /* ZOS_HTTP_METRICS_H */
