/*
 * zosd's metrics endpoint over HTTP: after known calls a scrape shows
 * exactly those counts, histograms are well formed, the whole text passes
 * the Prometheus client's parser, and the endpoint's edges (off, a port in
 * use, other paths and methods, shutdown during scrapes) behave. Every
 * zosd a test starts is stopped by the test.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "proc.h"
#include "zos/v1/zos.zrpc.h"
#include "zrpc/client.h"

#define CALL_OPTS (&(zrpc_call_opts) { .timeout_ms = 5000 })

/* A zosd left running by a failed assertion is killed after the test. */
TestSuite(metrics, .fini = leftover_kill_all);

struct zosd {
	struct proc proc;
	char        sock[128]; /* the ipc socket's path */
	char        url[160];  /* ipc://sock */
	int         metrics_port;
};

/* A fresh ipc path per zosd. */
static void
zosd_paths(struct zosd *z)
{
	static int n;

	snprintf(z->sock, sizeof(z->sock), "/tmp/zos-metrics-%d-%d.sock",
	    (int) getpid(), n++);
	snprintf(z->url, sizeof(z->url), "ipc://%s", z->sock);
	leftover_track_path(z->sock);
}

/*
 * Starts zosd with --metrics-listen METRICS and waits for READY. At
 * --log-level warn: nobody reads zosd's output while a test runs, and a
 * pipe full of access-log lines would block zosd's writes (the ready lines
 * come at any level).
 */
static void
zosd_start_with(struct zosd *z, const char *metrics, const char *ready)
{
	char *argv[] = { (char *) env_path("ZOSD"), "--in-memory", "--listen",
		z->url, "--metrics-listen", (char *) metrics, "--log-format",
		"text", "--log-level", "warn", "--shutdown-grace-ms", "2000",
		NULL };

	tracked_start(&z->proc, argv);
	cr_assert(proc_wait_for(&z->proc, ready), "ready line '%s':\n%s",
	    ready, z->proc.text);
}

/*
 * Starts zosd serving metrics on a port that was free a moment ago; if
 * another program took it in between (zosd exits 1 saying so), once more
 * with another.
 */
static void
zosd_start(struct zosd *z)
{
	zosd_paths(z);
	for (int attempt = 0; attempt < 2; attempt++) {
		char metrics[64];
		int  port = free_tcp_port();

		snprintf(metrics, sizeof(metrics),
		    "http://127.0.0.1:%d/metrics", port);
		char *argv[] = { (char *) env_path("ZOSD"), "--in-memory",
			"--listen", z->url, "--metrics-listen", metrics,
			"--log-format", "text", "--log-level", "warn",
			"--shutdown-grace-ms", "2000", NULL };
		tracked_start(&z->proc, argv);
		if (proc_wait_for(&z->proc, "metrics on ")) {
			z->metrics_port = metrics_port_of(z->proc.text);
			cr_assert_eq(
			    z->metrics_port, port, "%s", z->proc.text);
			return;
		}
		cr_assert_eq(tracked_wait(&z->proc), 1, "%s", z->proc.text);
		cr_assert(strstr(z->proc.text, "address already in use"), "%s",
		    z->proc.text);
	}
	cr_assert_fail("no free port for the metrics endpoint, twice");
}

static void
zosd_stop(struct zosd *z)
{
	kill(z->proc.pid, SIGTERM);
	cr_assert_eq(tracked_wait(&z->proc), 0,
	    "clean exit after SIGTERM:\n%s", z->proc.text);
	unlink(z->sock);
}

/* GET /metrics: 200 with the exposition's content type; the body is the
 * caller's to free. */
static char *
scrape(int port)
{
	struct http_reply reply;

	cr_assert(http_request(port, "GET", "/metrics", &reply),
	    "something listens on %d", port);
	cr_assert_eq(reply.status, 200, "%s\n%s", reply.headers, reply.body);
	cr_assert(strstr(reply.headers,
	              "Content-Type: text/plain; version=0.0.4") != NULL,
	    "%s", reply.headers);
	return reply.body;
}

static double
value_of(const char *text, const char *series)
{
	double v;

	cr_assert(
	    metric_value(text, series, &v), "no '%s' in:\n%s", series, text);
	return v;
}

static void
skills_get(zrpc_client *client)
{
	Zos__V1__GetSkillsRequest req = ZOS__V1__GET_SKILLS_REQUEST__INIT;
	Zos__V1__SkillVector     *v   = NULL;
	zrpc_status               st;

	st = zos_v1_skills_get(client, &req, &v, CALL_OPTS);
	cr_assert_eq(st.code, ZRPC_OK, "%s", st.message);
	zos__v1__skill_vector__free_unpacked(v, NULL);
}

static void
session_get_missing(zrpc_client *client)
{
	Zos__V1__GetSessionRequest req = ZOS__V1__GET_SESSION_REQUEST__INIT;
	Zos__V1__ProofSession     *s   = NULL;
	zrpc_status                st;

	req.id = "0123456789abcdef";
	st     = zos_v1_session_get(client, &req, &s, CALL_OPTS);
	cr_assert_eq(st.code, ZRPC_NOT_FOUND, "%s", st.message);
	cr_assert_null(s);
}

/*
 * Checks the histogram series of METHOD: buckets in the order written,
 * non-decreasing, ending with +Inf = _count = COUNT.
 */
static void
check_duration_histogram(const char *text, const char *method, double count)
{
	char        prefix[256], series[256];
	const char *line    = text;
	double      last    = 0, v;
	int         buckets = 0;
	bool        inf     = false;

	snprintf(prefix, sizeof(prefix),
	    "zrpc_server_call_duration_seconds_bucket{method=\"%s\",le=\"",
	    method);
	while ((line = strstr(line, prefix)) != NULL) {
		const char *le = line + strlen(prefix);
		const char *sp = strchr(line, ' ');

		cr_assert_not(inf, "+Inf is the last bucket");
		v = strtod(sp + 1, NULL);
		cr_assert_geq(v, last, "cumulative: %.80s", line);
		last = v;
		inf  = strncmp(le, "+Inf\"", 5) == 0;
		buckets++;
		line = sp;
	}
	cr_assert_eq(
	    buckets, 33, "32 bounds (1 us to 60 s) and +Inf for %s", method);
	cr_assert(inf, "ends with +Inf");
	cr_assert_eq(last, count, "+Inf counts every call of %s", method);
	snprintf(series, sizeof(series),
	    "zrpc_server_call_duration_seconds_count{method=\"%s\"}", method);
	cr_assert_eq(value_of(text, series), count);
	snprintf(series, sizeof(series),
	    "zrpc_server_call_duration_seconds_sum{method=\"%s\"}", method);
	v = value_of(text, series);
	cr_assert(count == 0 ? v == 0 : v > 0, "%s = %g", series, v);
}

Test(metrics, a_scrape_counts_calls_by_method_and_code)
{
	struct zosd  z;
	zrpc_client *client;
	char        *text;

	zosd_start(&z);
	cr_assert_eq(zrpc_client_open(&client, z.url, NULL).code, ZRPC_OK);
	for (int i = 0; i < 7; i++) {
		skills_get(client);
	}
	for (int i = 0; i < 3; i++) {
		session_get_missing(client);
	}
	zrpc_client_close(client);

	text = scrape(z.metrics_port);
	cr_assert_eq(value_of(text,
	                 "zrpc_server_calls_total{method=\"/zos.v1.Skills/"
	                 "Get\",code=\"OK\"}"),
	    7);
	cr_assert_eq(value_of(text,
	                 "zrpc_server_calls_total{method=\"/zos.v1.Session/"
	                 "Get\",code=\"NOT_FOUND\"}"),
	    3);
	cr_assert_null(strstr(text,
	                   "zrpc_server_calls_total{method=\"/zos.v1.Skills/"
	                   "Get\",code=\"NOT_FOUND\"}"),
	    "only codes that happened");
	cr_assert_null(strstr(
	    text, "zrpc_server_calls_total{method=\"/zos.v1.Session/Start\""));
	check_duration_histogram(text, "/zos.v1.Skills/Get", 7);
	check_duration_histogram(text, "/zos.v1.Session/Get", 3);
	check_duration_histogram(text, "/zos.v1.Session/Start", 0);
	/* Every one of those calls ran its handler: each has a queue time,
	 * which is part of its duration. */
	cr_assert_eq(value_of(text,
	                 "zrpc_server_queue_seconds_count{method=\"/zos.v1."
	                 "Skills/Get\"}"),
	    7);
	cr_assert_eq(value_of(text,
	                 "zrpc_server_queue_seconds_bucket{method=\"/zos.v1."
	                 "Session/Get\",le=\"+Inf\"}"),
	    3);
	cr_assert_leq(value_of(text,
	                  "zrpc_server_queue_seconds_sum{method=\"/zos.v1."
	                  "Skills/Get\"}"),
	    value_of(text,
	        "zrpc_server_call_duration_seconds_sum{method=\"/zos.v1."
	        "Skills/Get\"}"));
	cr_assert_eq(value_of(text, "zrpc_server_calls_in_flight"), 0);
	cr_assert_eq(value_of(text, "zos_cache_capacity"), 200);
	cr_assert_eq(
	    value_of(text, "zos_sessions{state=\"AWAITING_SOLUTION\"}"), 0);
	cr_assert_eq(value_of(text, "zos_lock_order_violations_total"), 0);
	cr_assert_gt(value_of(text, "process_resident_memory_bytes"), 1e5);
	cr_assert_gt(value_of(text, "process_start_time_seconds"), 1.5e9);
	free(text);

	/* A scrape changes none of it. */
	text = scrape(z.metrics_port);
	cr_assert_eq(value_of(text,
	                 "zrpc_server_calls_total{method=\"/zos.v1.Skills/"
	                 "Get\",code=\"OK\"}"),
	    7);
	free(text);
	zosd_stop(&z);
}

/* Runs the Prometheus client's parser (and the checks of
 * check_exposition.py) on TEXT. */
static void
check_with_prometheus_parser(const char *text)
{
	const char *python = env_path("ZOS_PROM_PYTHON");
	char        path[] = "/tmp/zos-metrics-scrape-XXXXXX";
	struct proc p;
	int         fd;

	cr_assert(python[0] != '\0',
	    "no python3 with prometheus_client: install Debian's "
	    "python3-prometheus-client (scripts/setup does)");
	fd = mkstemp(path);
	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t) strlen(text));
	close(fd);
	char *argv[] = { (char *) python, (char *) env_path("ZOS_PROM_CHECK"),
		path, NULL };
	tracked_start(&p, argv);
	cr_assert_eq(tracked_wait(&p), 0, "%s", p.text);
	cr_assert(strstr(p.text, "all well") != NULL, "%s", p.text);
	unlink(path);
}

Test(metrics, the_whole_scrape_passes_the_prometheus_parser)
{
	struct zosd                z;
	zrpc_client               *client;
	Zos__V1__CompleteRequest   req = ZOS__V1__COMPLETE_REQUEST__INIT;
	Zos__V1__CompleteResponse *r   = NULL;
	char                      *text;

	zosd_start(&z);
	cr_assert_eq(zrpc_client_open(&client, z.url, NULL).code, ZRPC_OK);
	skills_get(client);
	session_get_missing(client);
	/* A model call, then the same from the cache. */
	req.task_type = "hint";
	req.prompt    = "prove 1+1=2";
	for (int i = 0; i < 2; i++) {
		zrpc_status st =
		    zos_v1_assistant_complete(client, &req, &r, CALL_OPTS);
		cr_assert_eq(st.code, ZRPC_OK, "%s", st.message);
		zos__v1__complete_response__free_unpacked(r, NULL);
	}
	/* A method nobody serves counts as "other". */
	uint8_t    *reply     = NULL;
	size_t      reply_len = 0;
	zrpc_status st        = zrpc_client_call_raw(client, "/no.Such/Method",
	           (const uint8_t *) "", 0, &reply, &reply_len, CALL_OPTS);
	cr_assert_eq(st.code, ZRPC_UNIMPLEMENTED, "%s", st.message);
	free(reply);
	zrpc_client_close(client);

	text = scrape(z.metrics_port);
	cr_assert_eq(value_of(text,
	                 "zrpc_server_calls_total{method=\"other\","
	                 "code=\"UNIMPLEMENTED\"}"),
	    1);
	cr_assert_eq(value_of(text,
	                 "zos_model_calls_total{model=\"builtin:echo-small\","
	                 "outcome=\"success\"}"),
	    1);
	cr_assert_eq(value_of(text, "zos_cache_hits_total"), 1);
	cr_assert_eq(value_of(text, "zos_cache_misses_total"), 1);
	cr_assert_eq(value_of(text, "zos_cache_entries"), 1);
	check_with_prometheus_parser(text);
	free(text);
	zosd_stop(&z);
}

Test(metrics, port_zero_serves_on_the_port_the_ready_line_names)
{
	struct zosd z;
	char       *text;

	zosd_paths(&z);
	zosd_start_with(&z, "http://127.0.0.1:0/metrics", "metrics on ");
	z.metrics_port = metrics_port_of(z.proc.text);
	cr_assert_gt(z.metrics_port, 0, "%s", z.proc.text);
	text = scrape(z.metrics_port);
	cr_assert(strstr(text, "# TYPE zrpc_server_calls_total counter\n"));
	free(text);
	zosd_stop(&z);
}

Test(metrics, other_paths_are_not_found_and_only_get_is_served)
{
	struct zosd       z;
	struct http_reply reply;

	zosd_start(&z);
	cr_assert(http_request(z.metrics_port, "GET", "/", &reply));
	cr_assert_eq(reply.status, 404);
	http_reply_free(&reply);
	cr_assert(http_request(z.metrics_port, "GET", "/metricsx", &reply));
	cr_assert_eq(reply.status, 404);
	http_reply_free(&reply);
	cr_assert(http_request(z.metrics_port, "POST", "/metrics", &reply));
	cr_assert_eq(reply.status, 405);
	http_reply_free(&reply);
	cr_assert(http_request(z.metrics_port, "HEAD", "/metrics", &reply));
	cr_assert_eq(reply.status, 200, "HEAD goes with GET");
	cr_assert_eq(reply.body_len, 0);
	http_reply_free(&reply);
	zosd_stop(&z);
}

Test(metrics, the_path_of_the_url_is_where_it_serves)
{
	struct zosd       z;
	struct http_reply reply;
	int               port = free_tcp_port();
	char              metrics[64];

	zosd_paths(&z);
	snprintf(metrics, sizeof(metrics), "http://127.0.0.1:%d/x/prom", port);
	zosd_start_with(&z, metrics, "metrics on ");
	cr_assert(strstr(z.proc.text, metrics) != NULL, "%s", z.proc.text);
	cr_assert(http_request(port, "GET", "/x/prom", &reply));
	cr_assert_eq(reply.status, 200);
	http_reply_free(&reply);
	cr_assert(http_request(port, "GET", "/metrics", &reply));
	cr_assert_eq(reply.status, 404);
	http_reply_free(&reply);
	zosd_stop(&z);
}

Test(metrics, off_serves_nothing)
{
	struct zosd z;
	int         ports[8];

	zosd_paths(&z);
	zosd_start_with(&z, "off", "listening on ");
	cr_assert_null(strstr(z.proc.text, "metrics on"), "%s", z.proc.text);
	/* Listening on ipc only, zosd has no TCP listener at all. */
	cr_assert_eq(tcp_listen_ports(z.proc.pid, ports, 8), 0);
	zosd_stop(&z);

	/* Whereas with the endpoint it has exactly that one. */
	zosd_start(&z);
	cr_assert_eq(tcp_listen_ports(z.proc.pid, ports, 8), 1);
	cr_assert_eq(ports[0], z.metrics_port);
	zosd_stop(&z);
}

Test(metrics, a_port_in_use_exits_one_with_a_clear_message)
{
	struct sockaddr_in sa  = { .sin_family = AF_INET };
	socklen_t          len = sizeof(sa);
	struct zosd        z;
	char               metrics[64];
	int                fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	/* Hold a port, listening, for the whole test. */
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(bind(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
	cr_assert_eq(listen(fd, 1), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *) &sa, &len), 0);
	snprintf(metrics, sizeof(metrics), "http://127.0.0.1:%d/metrics",
	    ntohs(sa.sin_port));

	zosd_paths(&z);
	char *argv[] = { (char *) env_path("ZOSD"), "--in-memory", "--listen",
		z.url, "--metrics-listen", metrics, NULL };
	tracked_start(&z.proc, argv);
	cr_assert_eq(tracked_wait(&z.proc), 1, "%s", z.proc.text);
	cr_assert(strstr(z.proc.text, "address already in use") != NULL, "%s",
	    z.proc.text);
	cr_assert(strstr(z.proc.text, metrics) != NULL, "names the URL: %s",
	    z.proc.text);
	cr_assert_null(strstr(z.proc.text, "listening on"), "never ready");
	close(fd);
	unlink(z.sock);
}

Test(metrics, a_bad_url_is_a_usage_error)
{
	const char *bad[] = { "127.0.0.1:9447", "http://127.0.0.1/metrics",
		"http://127.0.0.1:9447", "https://127.0.0.1:9447/metrics",
		"http://127.0.0.1:99999/metrics" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct proc p;
		char *argv[] = { (char *) env_path("ZOSD"), "--in-memory",
			"--metrics-listen", (char *) bad[i], NULL };

		tracked_start(&p, argv);
		cr_assert_eq(tracked_wait(&p), 2, "%s: %s", bad[i], p.text);
		cr_assert(
		    strstr(p.text, "--metrics-listen") != NULL, "%s", p.text);
	}
}

/* Scrapes (and checks that the calls count never goes down) until told
 * to stop; asserts nothing itself (it runs on its own thread). */
struct scraper {
	int         port;
	atomic_bool stopping; /* zosd is being stopped: failures are fine */
	atomic_bool stop;
	atomic_int  scrapes;
	bool        went_backwards;
	bool        failed; /* a scrape failed before stopping */
};

static void *
scraper_run(void *arg)
{
	struct scraper *s    = arg;
	double          last = 0;

	while (!atomic_load(&s->stop)) {
		struct http_reply reply;
		double            v = 0;

		if (http_request_try(s->port, "GET", "/metrics", &reply) !=
		    HTTP_OK) {
			s->failed |= !atomic_load(&s->stopping);
			continue;
		}
		if (reply.status == 200 &&
		    metric_value(reply.body,
		        "zrpc_server_calls_total{method=\"/zos.v1.Skills/"
		        "Get\",code=\"OK\"}",
		        &v)) {
			s->went_backwards |= v < last;
			last = v;
		} else if (reply.status != 503 || !atomic_load(&s->stopping)) {
			s->failed |= reply.status != 200;
		}
		http_reply_free(&reply);
		atomic_fetch_add(&s->scrapes, 1);
	}
	return NULL;
}

Test(metrics, scrapes_during_calls_and_shutdown_are_safe)
{
	struct zosd     z;
	struct scraper  s = { 0 };
	pthread_t       thread;
	zrpc_client    *client;
	struct timespec start, now;

	zosd_start(&z);
	s.port = z.metrics_port;
	cr_assert_eq(pthread_create(&thread, NULL, scraper_run, &s), 0);
	cr_assert_eq(zrpc_client_open(&client, z.url, NULL).code, ZRPC_OK);
	/* Calls until the scraper has scraped a few times meanwhile
	 * (at most 10 s). */
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (int i = 0; i < 200 || atomic_load(&s.scrapes) < 5; i++) {
		skills_get(client);
		session_get_missing(client);
		clock_gettime(CLOCK_MONOTONIC, &now);
		cr_assert_lt(now.tv_sec - start.tv_sec, 10,
		    "%d scrapes in 10 s", atomic_load(&s.scrapes));
	}
	zrpc_client_close(client);
	/* Stop zosd while the scraper keeps going: it must exit cleanly
	 * (a scrape in progress finishes; later ones find nobody). */
	atomic_store(&s.stopping, true);
	zosd_stop(&z);
	atomic_store(&s.stop, true);
	pthread_join(thread, NULL);
	cr_assert_not(s.failed, "a scrape failed while zosd was up");
	cr_assert_not(s.went_backwards, "a counter went down");
}

/* ---- the endpoint's bounds (http_metrics.h) ---- */

/* The bound on a request's arrival, and slack for a loaded machine. */
#define REQUEST_BOUND_MS 5000
#define SLACK_MS 2500

Test(metrics, a_crlf_flood_gets_one_400_and_a_close)
{
	struct zosd      z;
	struct raw_reply reply;
	char             flood[20 * 1024];
	int              fd;

	zosd_start(&z);
	for (size_t i = 0; i < sizeof(flood); i += 2) {
		flood[i]     = '\r';
		flood[i + 1] = '\n';
	}
	fd = tcp_connect_loopback(z.metrics_port);
	write_all(fd, flood, sizeof(flood));
	read_until_close(fd, 10000, &reply);
	close(fd);
	cr_assert(
	    reply.eof, "closed after the 400 (%ld ms)", reply.elapsed_ms);
	cr_assert_eq(raw_status(&reply), 400, "%s", reply.data);
	cr_assert_lt(
	    reply.total, 512, "one short response: %zu bytes", reply.total);
	cr_assert_null(strstr(reply.data + 1, "HTTP/1.1"),
	    "exactly one response:\n%s", reply.data);
	/* And the endpoint still serves. */
	free(scrape(z.metrics_port));
	zosd_stop(&z);
}

Test(metrics, a_slowloris_is_closed_within_the_bound_while_scrapes_succeed)
{
	struct zosd      z;
	struct raw_reply reply;
	struct pollfd    pfd;
	const char partial[] = "GET /metrics HTTP/1.1\r\nHost: x\r\nX-A: ";
	struct timespec start, now;
	int             fd;

	zosd_start(&z);
	clock_gettime(CLOCK_MONOTONIC, &start);
	fd = tcp_connect_loopback(z.metrics_port);
	write_all(fd, partial, sizeof(partial) - 1);
	/* Meanwhile, normal scrapes are served, and the slow one is held. */
	for (int i = 0; i < 3; i++) {
		char *text = scrape(z.metrics_port);

		cr_assert(strstr(text, "zrpc_server_calls_in_flight") != NULL);
		free(text);
	}
	pfd = (struct pollfd) { .fd = fd, .events = POLLIN };
	clock_gettime(CLOCK_MONOTONIC, &now);
	if ((now.tv_sec - start.tv_sec) * 1000 < REQUEST_BOUND_MS - 1000) {
		cr_assert_eq(
		    poll(&pfd, 1, 0), 0, "not closed before the bound");
	}
	/* A trickle does not extend the bound (on a slow machine the
	 * server may have closed already: not an error here). */
	(void) !send(fd, "a", 1, MSG_NOSIGNAL);
	read_until_close(fd, REQUEST_BOUND_MS + SLACK_MS, &reply);
	close(fd);
	clock_gettime(CLOCK_MONOTONIC, &now);
	cr_assert(
	    reply.eof, "closed within %d ms", REQUEST_BOUND_MS + SLACK_MS);
	cr_assert_eq(raw_status(&reply), 408, "%s", reply.data);
	cr_assert_leq((now.tv_sec - start.tv_sec) * 1000 +
	        (now.tv_nsec - start.tv_nsec) / 1000000,
	    REQUEST_BOUND_MS + SLACK_MS);
	zosd_stop(&z);
}

Test(metrics, connections_beyond_sixteen_get_503_and_a_close)
{
	struct zosd       z;
	struct raw_reply  reply;
	struct http_reply ok;
	int               held[16], fd;
	int               status = 0;

	zosd_start(&z);
	for (int i = 0; i < 16; i++) {
		held[i] = tcp_connect_loopback(z.metrics_port);
	}
	/* The server takes its backlog in order: the 17th comes last. */
	fd = tcp_connect_loopback(z.metrics_port);
	read_until_close(fd, 3000, &reply);
	close(fd);
	cr_assert(reply.eof, "the 17th connection is closed at once");
	cr_assert_eq(raw_status(&reply), 503, "%s", reply.data);
	/* Once those go, scrapes are served again (bounded retries: the
	 * server sees the closes on its next round). */
	for (int i = 0; i < 16; i++) {
		close(held[i]);
	}
	for (int attempt = 0; attempt < 100 && status != 200; attempt++) {
		if (http_request_try(z.metrics_port, "GET", "/metrics", &ok) ==
		    HTTP_OK) {
			status = ok.status;
			http_reply_free(&ok);
		}
	}
	cr_assert_eq(status, 200);
	zosd_stop(&z);
}

Test(metrics, a_request_head_over_8_kib_gets_431)
{
	struct zosd      z;
	struct raw_reply reply;
	char             big[9000];
	int              fd;

	zosd_start(&z);
	memset(big, 'a', sizeof(big));
	memcpy(big, "GET /metrics HTTP/1.1\r\nX-Big: ", 30);
	fd = tcp_connect_loopback(z.metrics_port);
	write_all(fd, big, sizeof(big));
	read_until_close(fd, 5000, &reply);
	close(fd);
	cr_assert(reply.eof);
	cr_assert_eq(raw_status(&reply), 431, "%s", reply.data);
	zosd_stop(&z);
}

/* Starts zosd with --metrics-token FILE (and port 0). */
static void
zosd_start_token(struct zosd *z, const char *file)
{
	char *argv[] = { (char *) env_path("ZOSD"), "--in-memory", "--listen",
		z->url, "--metrics-listen", "http://127.0.0.1:0/metrics",
		"--metrics-token", (char *) file, "--log-format", "text",
		"--log-level", "warn", "--shutdown-grace-ms", "2000", NULL };

	tracked_start(&z->proc, argv);
	cr_assert(proc_wait_for(&z->proc, "metrics on "), "%s", z->proc.text);
	z->metrics_port = metrics_port_of(z->proc.text);
}

/* GET /metrics with AUTHORIZATION (NULL: none); the status. */
static int
get_with_authorization(int port, const char *authorization)
{
	struct raw_reply reply;
	char             request[512];
	int              fd, n;

	n  = snprintf(request, sizeof(request),
	     "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n%s%s%s\r\n",
            authorization != NULL ? "Authorization: " : "",
            authorization != NULL ? authorization : "",
            authorization != NULL ? "\r\n" : "");
	fd = tcp_connect_loopback(port);
	write_all(fd, request, (size_t) n);
	read_until_close(fd, 10000, &reply);
	close(fd);
	cr_assert(reply.eof);
	if (raw_status(&reply) == 401) {
		cr_assert(
		    strstr(reply.data, "WWW-Authenticate: Bearer") != NULL,
		    "%s", reply.data);
	}
	return raw_status(&reply);
}

Test(metrics, with_a_token_requests_without_it_get_401)
{
	struct zosd z;
	char        file[]  = "/tmp/zos-metrics-token-XXXXXX";
	const char  token[] = "s3cr3t-Token_0123456789\n";
	int         fd      = mkstemp(file);

	cr_assert(fd >= 0);
	leftover_track_path(file);
	write_all(fd, token, sizeof(token) - 1);
	close(fd);
	zosd_paths(&z);
	zosd_start_token(&z, file);
	cr_assert_null(strstr(z.proc.text, "s3cr3t"), "never logged");

	cr_assert_eq(get_with_authorization(z.metrics_port, NULL), 401);
	cr_assert_eq(
	    get_with_authorization(z.metrics_port, "Bearer wrong"), 401);
	cr_assert_eq(get_with_authorization(
	                 z.metrics_port, "Bearer s3cr3t-Token_012345678"),
	    401, "a prefix is not the token");
	cr_assert_eq(get_with_authorization(
	                 z.metrics_port, "Bearer s3cr3t-Token_01234567890"),
	    401, "nor is a longer one");
	cr_assert_eq(get_with_authorization(
	                 z.metrics_port, "Basic s3cr3t-Token_0123456789"),
	    401);
	cr_assert_eq(get_with_authorization(
	                 z.metrics_port, "Bearer s3cr3t-Token_0123456789"),
	    200);
	cr_assert_eq(get_with_authorization(
	                 z.metrics_port, "bearer s3cr3t-Token_0123456789"),
	    200, "the scheme's case does not matter");
	/* The plain helper sends no token: 401 for any path. */
	struct http_reply reply;
	cr_assert(http_request(z.metrics_port, "GET", "/nope", &reply));
	cr_assert_eq(reply.status, 401);
	http_reply_free(&reply);
	zosd_stop(&z);
	unlink(file);
}

Test(metrics, a_bad_token_file_stops_the_start)
{
	struct zosd z;
	char        file[] = "/tmp/zos-metrics-token-XXXXXX";
	int         fd     = mkstemp(file);

	cr_assert(fd >= 0);
	leftover_track_path(file);
	write_all(fd, "has space\n", 10);
	close(fd);
	zosd_paths(&z);
	char *argv[] = { (char *) env_path("ZOSD"), "--in-memory", "--listen",
		z.url, "--metrics-listen", "http://127.0.0.1:0/metrics",
		"--metrics-token", file, NULL };
	tracked_start(&z.proc, argv);
	cr_assert_eq(tracked_wait(&z.proc), 1, "%s", z.proc.text);
	cr_assert(
	    strstr(z.proc.text, "--metrics-token") != NULL, "%s", z.proc.text);
	cr_assert_null(strstr(z.proc.text, "has space"), "contents not shown");
	cr_assert_null(strstr(z.proc.text, "listening on"), "never ready");
	unlink(file);

	char *missing[] = { (char *) env_path("ZOSD"), "--in-memory",
		"--listen", z.url, "--metrics-token", "/nonexistent/token",
		NULL };
	tracked_start(&z.proc, missing);
	cr_assert_eq(tracked_wait(&z.proc), 1, "%s", z.proc.text);
	cr_assert(strstr(z.proc.text, "/nonexistent/token") != NULL, "%s",
	    z.proc.text);
	unlink(z.sock);
}

Test(metrics, a_non_loopback_endpoint_without_a_token_exits_two)
{
	const char *urls[] = { "http://0.0.0.0:0/metrics",
		"http://[::]:0/metrics" };

	for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
		struct proc p;
		char *argv[] = { (char *) env_path("ZOSD"), "--in-memory",
			"--listen", "inproc://zos-metrics-exposure",
			"--metrics-listen", (char *) urls[i], NULL };

		tracked_start(&p, argv);
		cr_assert_eq(tracked_wait(&p), 2, "%s: %s", urls[i], p.text);
		cr_assert(strstr(p.text, "not a loopback address") != NULL,
		    "%s", p.text);
		cr_assert(
		    strstr(p.text, "--metrics-token") != NULL, "%s", p.text);
	}
}

/*
 * What the per-peer bounds refuse is counted in /metrics by bound: here a
 * call with more metadata entries than --max-metadata-entries (64).
 */
Test(metrics, refusals_of_the_per_peer_bounds_are_counted_by_reason)
{
	struct zrpc_metadata_entry md[65];
	char                       keys[65][8];
	Zos__V1__GetSkillsRequest  req  = ZOS__V1__GET_SKILLS_REQUEST__INIT;
	Zos__V1__SkillVector      *v    = NULL;
	zrpc_call_opts             opts = { .timeout_ms = 5000 };
	struct zosd                z;
	zrpc_client               *client;
	zrpc_status                st;
	char                      *text;

	for (int i = 0; i < 65; i++) {
		snprintf(keys[i], sizeof(keys[i]), "k%d", i);
		md[i] = (struct zrpc_metadata_entry) { keys[i], "v" };
	}
	opts.metadata   = md;
	opts.n_metadata = 65;
	zosd_start(&z);
	cr_assert_eq(zrpc_client_open(&client, z.url, NULL).code, ZRPC_OK);
	st = zos_v1_skills_get(client, &req, &v, &opts);
	cr_assert_eq(st.code, ZRPC_RESOURCE_EXHAUSTED, "%s", st.message);
	skills_get(client); /* the connection still serves */

	text = scrape(z.metrics_port);
	cr_assert_eq(value_of(text,
	                 "zrpc_server_requests_refused_total{reason="
	                 "\"metadata\"}"),
	    1);
	cr_assert_eq(value_of(text,
	                 "zrpc_server_requests_refused_total{reason="
	                 "\"per_connection\"}"),
	    0);
	cr_assert_eq(value_of(text,
	                 "zrpc_server_connections_closed_total{reason="
	                 "\"send_timeout\"}"),
	    0);
	cr_assert_eq(value_of(text, "zrpc_server_connections"), 1);
	free(text);
	zrpc_client_close(client);
	zosd_stop(&z);
}
