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
	cr_assert_eq(buckets, 18, "17 bounds and +Inf for %s", method);
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
