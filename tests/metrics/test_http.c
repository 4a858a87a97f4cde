/*
 * The metrics endpoint's HTTP server (zos/zosd/http_metrics.h) in
 * process, with small bounds so that its timeouts are quick to see: what
 * it accepts, what it refuses (one response, then a close), its deadlines
 * and its cap, the token check and the token file.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"
#include "http_metrics.h"

#define TEST_REQUEST_MS 300
#define TEST_WRITE_MS 300
#define TEST_SLACK_MS 2000

TestSuite(http, .fini = leftover_kill_all);

struct body {
	size_t     len; /* of the body rendered; 0 = fail with NULL */
	atomic_int renders;
};

static char *
test_render(void *arg, size_t *len)
{
	struct body *b = arg;
	char        *text;

	atomic_fetch_add(&b->renders, 1);
	if (b->len == 0 || (text = malloc(b->len)) == NULL) {
		return NULL;
	}
	memset(text, 'm', b->len);
	text[b->len - 1] = '\n';
	*len             = b->len;
	return text;
}

/* A server on 127.0.0.1, a free port, serving /metrics from B. */
static struct zos_http *
test_start(struct body *b, const char *token)
{
	struct zos_http *http;
	char             error[256];

	struct zos_http_config config = {
		.host               = "127.0.0.1",
		.port               = "0",
		.path               = "/metrics",
		.token              = token,
		.render             = test_render,
		.render_arg         = b,
		.request_timeout_ms = TEST_REQUEST_MS,
		.write_timeout_ms   = TEST_WRITE_MS,
		.max_connections    = 2,
		.max_request_bytes  = 256,
	};
	cr_assert_eq(zos_http_start(&config, &http, error, sizeof(error)), 0,
	    "%s", error);
	cr_assert_gt(zos_http_port(http), 0);
	return http;
}

/* Sends REQUEST (LEN bytes) on a new connection; reads to the close. */
static void
exchange(struct zos_http *http, const char *request, size_t len,
    struct raw_reply *reply)
{
	int fd = tcp_connect_loopback((int) zos_http_port(http));

	write_all(fd, request, len);
	read_until_close(fd, 5000, reply);
	close(fd);
	cr_assert(reply->eof, "closed after one response: %s", reply->data);
}

#define EXCHANGE(http, text, reply) \
	exchange((http), (text), sizeof(text) - 1, (reply))

Test(http, a_get_is_answered_once_and_closed)
{
	struct body      b    = { .len = 100 };
	struct zos_http *http = test_start(&b, NULL);
	struct raw_reply r;

	EXCHANGE(http, "GET /metrics HTTP/1.1\r\nHost: h\r\n\r\n", &r);
	cr_assert_eq(raw_status(&r), 200, "%s", r.data);
	cr_assert(strstr(r.data, "Content-Length: 100\r\n") != NULL);
	cr_assert(strstr(r.data, "Connection: close\r\n") != NULL);
	cr_assert_str_eq(strstr(r.data, "\r\n\r\n") + 4 + 99, "\n");
	/* One empty line before the request line is allowed (RFC 9112),
	 * HTTP/1.0 needs no Host, and the query is not part of the path. */
	EXCHANGE(http, "\r\nGET /metrics?x=1 HTTP/1.0\r\n\r\n", &r);
	cr_assert_eq(raw_status(&r), 200, "%s", r.data);
	/* HEAD: the length, no body. */
	EXCHANGE(http, "HEAD /metrics HTTP/1.1\r\nhost: h\r\n\r\n", &r);
	cr_assert_eq(raw_status(&r), 200, "%s", r.data);
	cr_assert(strstr(r.data, "Content-Length: 100\r\n") != NULL);
	cr_assert_eq(strlen(strstr(r.data, "\r\n\r\n")), 4, "no body");
	zos_http_stop(http);
	cr_assert_eq(atomic_load(&b.renders), 3);
}

Test(http, other_paths_methods_and_failures_have_their_status)
{
	struct body      b    = { .len = 0 }; /* render fails */
	struct zos_http *http = test_start(&b, NULL);
	struct raw_reply r;

	EXCHANGE(http, "GET /metricsx HTTP/1.1\r\nHost: h\r\n\r\n", &r);
	cr_assert_eq(raw_status(&r), 404, "%s", r.data);
	EXCHANGE(http, "GET / HTTP/1.1\r\nHost: h\r\n\r\n", &r);
	cr_assert_eq(raw_status(&r), 404, "%s", r.data);
	EXCHANGE(http, "POST /metrics HTTP/1.1\r\nHost: h\r\n\r\n", &r);
	cr_assert_eq(raw_status(&r), 405, "%s", r.data);
	cr_assert(strstr(r.data, "Allow: GET, HEAD\r\n") != NULL);
	EXCHANGE(http, "GET /metrics HTTP/1.1\r\nHost: h\r\n\r\n", &r);
	cr_assert_eq(raw_status(&r), 500, "%s", r.data);
	zos_http_stop(http);
}

Test(http, malformed_requests_get_one_400_and_a_close)
{
	static const char *const bad[] = {
		"\r\n\r\n",
		"\n\n",
		"GET\r\n\r\n",
		"GET /metrics\r\n\r\n",
		"GET  /metrics HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET /metrics HTTP/2.0\r\nHost: h\r\n\r\n",
		"GET /metrics HTTP/1.1 \r\nHost: h\r\n\r\n",
		"GET metrics HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET http://h/metrics HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET /metrics HTTP/1.1\r\n\r\n", /* 1.1 without Host */
		"GET /metrics HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
		"GET /metrics HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n",
		"GET /metrics HTTP/1.1\r\nHost : h\r\n\r\n",
		"GET /metrics HTTP/1.1\r\nHost h\r\n\r\n",
		"GET /metrics HTTP/1.1\nHost: h\n\n",
		"GET /met\x01rics HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET /metrics HTTP/1.1\r\nHost: h\x7f\r\n\r\n",
		"GET /metrics HTTP/1.1\r\nHost: h\rx\r\n\r\n",
		"G(T /metrics HTTP/1.1\r\nHost: h\r\n\r\n",
		("GET /metrics HTTP/1.1\r\nHost: h\r\nAuthorization: a\r\n"
		 "Authorization: b\r\n\r\n"),
	};
	struct body      b    = { .len = 10 };
	struct zos_http *http = test_start(&b, NULL);
	struct raw_reply r;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		exchange(http, bad[i], strlen(bad[i]), &r);
		cr_assert_eq(raw_status(&r), 400, "%zu: %s", i, r.data);
		cr_assert_null(strstr(r.data + 1, "HTTP/1.1"), "one response");
	}
	/* A NUL is as bad as any control byte. */
	exchange(http, "GET /m\0 HTTP/1.1\r\n\r\n", 20, &r);
	cr_assert_eq(raw_status(&r), 400, "%s", r.data);
	zos_http_stop(http);
	cr_assert_eq(atomic_load(&b.renders), 0, "nothing bad was served");
}

Test(http, a_head_over_the_bound_gets_431)
{
	struct body      b    = { .len = 10 };
	struct zos_http *http = test_start(&b, NULL);
	struct raw_reply r;
	char             big[300];

	memset(big, 'a', sizeof(big));
	memcpy(big, "GET /metrics HTTP/1.1\r\nX: ", 26);
	exchange(http, big, sizeof(big), &r);
	cr_assert_eq(raw_status(&r), 431, "%s", r.data);
	zos_http_stop(http);
}

Test(http, a_request_that_does_not_arrive_whole_in_time_gets_408)
{
	struct body      b    = { .len = 10 };
	struct zos_http *http = test_start(&b, NULL);
	struct raw_reply r;
	int              fd = tcp_connect_loopback((int) zos_http_port(http));

	write_all(fd, "GET /metrics HTTP/1.1\r\n", 23);
	read_until_close(fd, TEST_REQUEST_MS + TEST_SLACK_MS, &r);
	close(fd);
	cr_assert(r.eof, "closed within the bound");
	cr_assert_eq(raw_status(&r), 408, "%s", r.data);
	cr_assert_geq(r.elapsed_ms, TEST_REQUEST_MS - 50);
	/* A connection that sends nothing at all, the same. */
	fd = tcp_connect_loopback((int) zos_http_port(http));
	read_until_close(fd, TEST_REQUEST_MS + TEST_SLACK_MS, &r);
	close(fd);
	cr_assert(r.eof);
	cr_assert_eq(raw_status(&r), 408, "%s", r.data);
	zos_http_stop(http);
}

/* The sockets this process has open (the server's are in process). */
static int
count_sockets(void)
{
	DIR           *d = opendir("/proc/self/fd");
	struct dirent *e;
	int            n = 0;

	cr_assert_not_null(d);
	while ((e = readdir(d)) != NULL) {
		char    link[300], target[64];
		ssize_t len;

		snprintf(link, sizeof(link), "/proc/self/fd/%s", e->d_name);
		len = readlink(link, target, sizeof(target) - 1);
		if (len > 0) {
			target[len] = '\0';
			n += strncmp(target, "socket:", 7) == 0;
		}
	}
	closedir(d);
	return n;
}

Test(http, a_client_that_never_reads_its_response_is_dropped)
{
	struct body      b    = { .len = 32u << 20 }; /* over any buffer */
	struct zos_http *http = test_start(&b, NULL);
	struct raw_reply r;
	const char       get[]  = "GET /metrics HTTP/1.1\r\nHost: h\r\n\r\n";
	int              before = count_sockets(), fd, rcvbuf = 4096;
	int              open = 0;

	fd = tcp_connect_loopback((int) zos_http_port(http));
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	write_all(fd, get, sizeof(get) - 1);
	/* Not reading: the server gives up after its write bound and
	 * closes its end (its socket goes: only ours is left). */
	for (int i = 0; i < (TEST_WRITE_MS + TEST_SLACK_MS) / 10; i++) {
		struct pollfd none = { .fd = -1 };

		if ((open = count_sockets() - before) == 1) {
			break;
		}
		poll(&none, 1, 10);
	}
	cr_assert_eq(open, 1, "the server closed its end");
	read_until_close(fd, 5000, &r);
	close(fd);
	cr_assert_eq(raw_status(&r), 200);
	cr_assert_lt(r.total, b.len, "cut short: %zu bytes", r.total);
	/* And it serves others meanwhile and after. */
	b.len = 10;
	EXCHANGE(http, "GET /metrics HTTP/1.0\r\n\r\n", &r);
	cr_assert_eq(raw_status(&r), 200, "%s", r.data);
	zos_http_stop(http);
}

Test(http, connections_over_the_cap_get_503)
{
	struct body      b    = { .len = 10 };
	struct zos_http *http = test_start(&b, NULL);
	struct raw_reply r;
	int              port = (int) zos_http_port(http);
	int              a    = tcp_connect_loopback(port);
	int              c    = tcp_connect_loopback(port);
	int              d    = tcp_connect_loopback(port);

	read_until_close(d, 2000, &r);
	close(d);
	cr_assert(r.eof);
	cr_assert_eq(raw_status(&r), 503, "%s", r.data);
	/* The held ones are still served. */
	write_all(a, "GET /metrics HTTP/1.0\r\n\r\n", 25);
	read_until_close(a, 5000, &r);
	cr_assert_eq(raw_status(&r), 200, "%s", r.data);
	close(a);
	close(c);
	zos_http_stop(http);
}

Test(http, with_a_token_only_its_bearer_is_served)
{
	struct body      b    = { .len = 10 };
	struct zos_http *http = test_start(&b, "tok-EN.1~+/=");
	struct raw_reply r;

	EXCHANGE(http, "GET /metrics HTTP/1.1\r\nHost: h\r\n\r\n", &r);
	cr_assert_eq(raw_status(&r), 401, "%s", r.data);
	EXCHANGE(http,
	    "GET /nope HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer x\r\n\r\n",
	    &r);
	cr_assert_eq(raw_status(&r), 401, "before the path: %s", r.data);
	EXCHANGE(http,
	    "GET /metrics HTTP/1.1\r\nHost: h\r\n"
	    "authorization:   Bearer tok-EN.1~+/=  \r\n\r\n",
	    &r);
	cr_assert_eq(raw_status(&r), 200, "%s", r.data);
	zos_http_stop(http);
	cr_assert_eq(atomic_load(&b.renders), 1);
}

Test(http, the_bearer_compare_wants_the_exact_token)
{
	const char *t = "abc123";

	cr_assert(zos_http_bearer_matches("Bearer abc123", 13, t));
	cr_assert(zos_http_bearer_matches("BEARER abc123", 13, t));
	cr_assert_not(zos_http_bearer_matches("Bearer abc12", 12, t));
	cr_assert_not(zos_http_bearer_matches("Bearer abc1234", 14, t));
	cr_assert_not(zos_http_bearer_matches("Bearer abc124", 13, t));
	cr_assert_not(zos_http_bearer_matches("Bearer  abc123", 14, t));
	cr_assert_not(zos_http_bearer_matches("Bearerabc123", 12, t));
	cr_assert_not(zos_http_bearer_matches("Basic abc123", 12, t));
	cr_assert_not(zos_http_bearer_matches("Bearer ", 7, t));
	cr_assert_not(zos_http_bearer_matches("", 0, t));
	cr_assert_not(zos_http_bearer_matches("Bearer ", 7, ""));
	/* LEN counts, not a NUL. */
	cr_assert_not(zos_http_bearer_matches("Bearer abc123", 12, t));
}

/* Writes TEXT into a new file of MODE; returns its path (static). */
static const char *
token_file(const char *text, size_t len, mode_t mode)
{
	static char path[64];
	int         fd;

	snprintf(path, sizeof(path), "/tmp/zos-http-token-XXXXXX");
	cr_assert((fd = mkstemp(path)) >= 0);
	leftover_track_path(path);
	write_all(fd, text, len);
	close(fd);
	cr_assert_eq(chmod(path, mode), 0);
	return path;
}

Test(http, the_token_file_holds_one_token_on_its_first_line)
{
	static const struct {
		const char *text;
		const char *want; /* NULL: refused */
	} cases[] = {
		{ "abc\n", "abc" },
		{ "abc\r\nsecond line\n", "abc" },
		{ "a-b.c_d~e+f/g==", "a-b.c_d~e+f/g==" },
		{ "", NULL },
		{ "\nabc\n", NULL },
		{ "a b\n", NULL },
		{ "abc=d\n", NULL },
		{ "==\n", NULL },
		{ "ab\x01\n", NULL },
	};
	char *token;
	char  error[256];
	bool  open_to_others;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *path =
		    token_file(cases[i].text, strlen(cases[i].text), 0600);
		int rv = zos_http_read_token(
		    path, &token, &open_to_others, error, sizeof(error));

		if (cases[i].want == NULL) {
			cr_assert_eq(rv, -1, "%zu", i);
			cr_assert_null(token);
			cr_assert(strstr(error, path) != NULL, "%s", error);
		} else {
			cr_assert_eq(rv, 0, "%zu: %s", i, error);
			cr_assert_str_eq(token, cases[i].want);
			cr_assert_not(open_to_others);
			free(token);
		}
		unlink(path);
	}
	/* Too long; readable by others; not there. */
	char long_token[1100];
	memset(long_token, 'a', sizeof(long_token));
	const char *path = token_file(long_token, sizeof(long_token), 0600);
	cr_assert_eq(zos_http_read_token(
	                 path, &token, &open_to_others, error, sizeof(error)),
	    -1);
	unlink(path);
	path = token_file("abc\n", 4, 0644);
	cr_assert_eq(zos_http_read_token(
	                 path, &token, &open_to_others, error, sizeof(error)),
	    0);
	cr_assert(open_to_others);
	free(token);
	unlink(path);
	cr_assert_eq(zos_http_read_token("/nonexistent/t", &token,
	                 &open_to_others, error, sizeof(error)),
	    -1);
	cr_assert(strstr(error, "No such file") != NULL, "%s", error);
}

Test(http, a_port_in_use_is_a_clear_error)
{
	struct body      b    = { .len = 10 };
	struct zos_http *http = test_start(&b, NULL);
	struct zos_http *second;
	char             port[16], error[256];

	snprintf(port, sizeof(port), "%u", zos_http_port(http));
	struct zos_http_config config = {
		.host       = "127.0.0.1",
		.port       = port,
		.path       = "/metrics",
		.render     = test_render,
		.render_arg = &b,
	};
	cr_assert_eq(zos_http_start(&config, &second, error, sizeof(error)),
	    EADDRINUSE);
	cr_assert_null(second);
	cr_assert_str_eq(error, "address already in use");
	zos_http_stop(http);
}

Test(http, stop_closes_connections_in_every_state)
{
	struct body      b       = { .len = 8u << 20 };
	struct zos_http *http    = test_start(&b, NULL);
	int              port    = (int) zos_http_port(http);
	int              reading = tcp_connect_loopback(port);
	int              writing = tcp_connect_loopback(port);
	const char       get[]   = "GET /metrics HTTP/1.1\r\nHost: h\r\n\r\n";
	struct raw_reply r;

	write_all(reading, "GET /", 5);
	write_all(writing, get, sizeof(get) - 1);
	/* The response has started: the server is writing. */
	struct pollfd pfd = { .fd = writing, .events = POLLIN };
	cr_assert_eq(poll(&pfd, 1, 5000), 1);
	zos_http_stop(http);
	read_until_close(reading, 2000, &r);
	cr_assert(r.eof);
	close(reading);
	close(writing);
}
