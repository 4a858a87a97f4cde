/*
 * zosd's shared response cache (--cache-url) for real: two or three zosd
 * children and one redis-server of the test's own (support/redis.h), all
 * stopped by the test. The metrics endpoints listen on port 0 (a free one
 * each) so that suites running side by side do not collide.
 */
#include <criterion/criterion.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "proc.h"
#include "redis.h"
#include "shared_cache.h"
#include "zos/v1/zos.zrpc.h"
#include "zrpc/client.h"

#define CALL_TIMEOUT_MS 20000

struct node {
	struct proc  proc;
	char         url[256];
	zrpc_client *client;
	int          metrics_port;
};

/* The zosd children, then the test's redis-server, stopped by the fini
 * even when an assertion ended the test early. */
static void
suite_fini(void)
{
	proc_kill_left();
	test_redis_stop_left();
}

TestSuite(shared_cache_zosd, .init = NULL, .fini = suite_fini);

/* Starts node N of R's cluster; EXTRA (NULL-terminated) is appended. */
static void
node_start(struct node *n, const struct test_redis *r, int i,
    const char *const *extra)
{
	char  listen[256];
	char *argv[32];
	int   k = 0;

	snprintf(listen, sizeof(listen), "ipc://%s/node-%d.sock", r->dir, i);
	argv[k++] = (char *) env_path("ZOSD");
	argv[k++] = "--in-memory";
	argv[k++] = "--listen";
	argv[k++] = listen;
	argv[k++] = "--log-format";
	argv[k++] = "text";
	argv[k++] = "--shutdown-grace-ms";
	argv[k++] = "2000";
	argv[k++] = "--metrics-listen";
	argv[k++] = "http://127.0.0.1:0/metrics";
	argv[k++] = "--cache-url";
	argv[k++] = (char *) r->url;
	for (; extra != NULL && *extra != NULL; extra++) {
		argv[k++] = (char *) *extra;
	}
	argv[k] = NULL;
	proc_start(&n->proc, argv);
	cr_assert(
	    proc_wait_for(&n->proc, "metrics on"), "ready:\n%s", n->proc.text);
	proc_listen_url(&n->proc, n->url, sizeof(n->url));
	n->metrics_port = metrics_port_of(n->proc.text);
	cr_assert_gt(n->metrics_port, 0, "%s", n->proc.text);
	cr_assert_eq(zrpc_client_open(&n->client, n->url, NULL).code, ZRPC_OK);
}

static void
node_stop(struct node *n)
{
	zrpc_client_close(n->client);
	kill(n->proc.pid, SIGTERM);
	cr_assert_eq(proc_wait(&n->proc), 0, "clean exit:\n%s", n->proc.text);
}

/* One Complete without a session; returns the status code. */
static zrpc_code
complete(struct node *n, const char *prompt, bool *cached, char *text,
    size_t text_len, char *model, size_t model_len)
{
	Zos__V1__CompleteRequest   req = ZOS__V1__COMPLETE_REQUEST__INIT;
	Zos__V1__CompleteResponse *rep = NULL;
	zrpc_status                st;

	req.prompt = (char *) prompt;
	st         = zos_v1_assistant_complete(n->client, &req, &rep,
	            &(zrpc_call_opts) { .timeout_ms = CALL_TIMEOUT_MS });
	if (st.code == ZRPC_OK) {
		if (cached != NULL) {
			*cached = rep->cached;
		}
		if (text != NULL) {
			snprintf(text, text_len, "%s", rep->text);
		}
		if (model != NULL) {
			snprintf(model, model_len, "%s", rep->model);
		}
		zos__v1__complete_response__free_unpacked(rep, NULL);
	}
	return st.code;
}

/* Backend calls N made: the routing metrics' outcomes, summed. */
static uint64_t
backend_calls(struct node *n)
{
	Zos__V1__GetRoutingMetricsRequest req =
	    ZOS__V1__GET_ROUTING_METRICS_REQUEST__INIT;
	Zos__V1__RoutingMetrics *m = NULL;
	zrpc_status              st;
	uint64_t                 calls = 0;

	st = zos_v1_routing_get_metrics(n->client, &req, &m,
	    &(zrpc_call_opts) { .timeout_ms = CALL_TIMEOUT_MS });
	cr_assert_eq(st.code, ZRPC_OK, "%s", st.message);
	for (size_t i = 0; i < m->n_models; i++) {
		calls +=
		    m->models[i]->success_count + m->models[i]->failure_count;
	}
	zos__v1__routing_metrics__free_unpacked(m, NULL);
	return calls;
}

static double
scrape(struct node *n, const char *series)
{
	struct http_reply reply;
	double            v = -1;

	cr_assert(http_request(n->metrics_port, "GET", "/metrics", &reply));
	cr_assert_eq(reply.status, 200);
	cr_assert(metric_value(reply.body, series, &v), "%s in\n%s", series,
	    reply.body);
	http_reply_free(&reply);
	return v;
}

static size_t
count_of(const char *text, const char *needle)
{
	size_t n = 0;

	for (const char *p = text; (p = strstr(p, needle)) != NULL; p++) {
		n++;
	}
	return n;
}

Test(shared_cache_zosd, a_prompt_computed_on_one_node_is_a_hit_on_another,
    .timeout = 120)
{
	struct test_redis r;
	struct node       a, b;
	bool              cached;
	char              ta[256], tb[256], model[128];
	char              key[ZOS_SHARED_CACHE_KEY_LEN], error[256];
	const char *const ttl[] = { "--cache-ttl-s", "77", NULL };

	signal(SIGPIPE, SIG_IGN);
	cr_assert_eq(test_redis_start(&r, NULL), 0);
	node_start(&a, &r, 1, ttl);
	node_start(&b, &r, 2, ttl);
	cr_assert_eq(complete(&a, "is 91 prime?", &cached, ta, sizeof(ta),
	                 model, sizeof(model)),
	    ZRPC_OK);
	cr_assert_not(cached);
	cr_assert_eq(
	    complete(&b, "is 91 prime?", &cached, tb, sizeof(tb), NULL, 0),
	    ZRPC_OK);
	cr_assert(cached, "node 2 answered from Redis");
	cr_assert_str_eq(ta, tb);
	cr_assert_eq(backend_calls(&a) + backend_calls(&b), 1);
	cr_assert_eq(scrape(&b, "zos_cache_redis_hits_total"), 1);
	cr_assert_eq(scrape(&a, "zos_cache_redis_misses_total"), 1);
	cr_assert_eq(scrape(&a, "zos_cache_redis_up"), 1);

	/* The value carries --cache-ttl-s. */
	struct zos_shared_cache_config config = { .url = r.url };
	struct zos_shared_cache       *sc =
	    zos_shared_cache_create(&config, error, sizeof(error));
	cr_assert_not_null(sc, "%s", error);
	zos_shared_cache_key(sc, model, "is 91 prime?", key);
	zos_shared_cache_destroy(sc);
	redisContext *ctx   = redisConnectUnix(r.socket);
	redisReply   *reply = redisCommand(ctx, "TTL %s", key);
	cr_assert(reply != NULL && reply->type == REDIS_REPLY_INTEGER);
	cr_assert(reply->integer > 60 && reply->integer <= 77, "TTL %lld",
	    reply->integer);
	freeReplyObject(reply);
	redisFree(ctx);

	node_stop(&a);
	node_stop(&b);
	test_redis_stop(&r);
}

struct caller {
	struct node *node;
	zrpc_code    code;
	char         text[256];
};

static void *
caller_thread(void *arg)
{
	struct caller *c = arg;

	c->code = complete(c->node, "one prompt for everyone", NULL, c->text,
	    sizeof(c->text), NULL, 0);
	return NULL;
}

Test(shared_cache_zosd, sixty_four_completes_over_three_nodes_call_once,
    .timeout = 120)
{
	struct test_redis r;
	struct node       n[3];
	struct caller     c[64];
	pthread_t         t[64];
	const char *const slow[] = { "--echo-delay-ms", "300", NULL };
	uint64_t          calls  = 0;

	signal(SIGPIPE, SIG_IGN);
	cr_assert_eq(test_redis_start(&r, NULL), 0);
	for (int i = 0; i < 3; i++) {
		node_start(&n[i], &r, i + 1, slow);
	}
	for (int i = 0; i < 64; i++) {
		c[i] = (struct caller) { .node = &n[i % 3] };
		cr_assert_eq(
		    pthread_create(&t[i], NULL, caller_thread, &c[i]), 0);
	}
	for (int i = 0; i < 64; i++) {
		pthread_join(t[i], NULL);
	}
	for (int i = 0; i < 64; i++) {
		cr_assert_eq(
		    c[i].code, ZRPC_OK, "caller %d: %d", i, (int) c[i].code);
		cr_assert_str_eq(c[i].text, c[0].text);
	}
	for (int i = 0; i < 3; i++) {
		calls += backend_calls(&n[i]);
	}
	cr_assert_eq(calls, 1, "%llu backend calls for 64 Completes",
	    (unsigned long long) calls);
	for (int i = 0; i < 3; i++) {
		node_stop(&n[i]);
	}
	test_redis_stop(&r);
}

struct slow_call {
	struct node *node;
	uint32_t     timeout_ms;
	zrpc_code    code;
	uint64_t     took_ms;
};

static void *
slow_call_thread(void *arg)
{
	struct slow_call          *c   = arg;
	Zos__V1__CompleteRequest   req = ZOS__V1__COMPLETE_REQUEST__INIT;
	Zos__V1__CompleteResponse *rep = NULL;
	struct timespec            t0, t1;
	zrpc_status                st;

	req.prompt = "a slow one";
	clock_gettime(CLOCK_MONOTONIC, &t0);
	st = zos_v1_assistant_complete(c->node->client, &req, &rep,
	    &(zrpc_call_opts) { .timeout_ms = c->timeout_ms });
	clock_gettime(CLOCK_MONOTONIC, &t1);
	c->code    = st.code;
	c->took_ms = (uint64_t) ((t1.tv_sec - t0.tv_sec) * 1000 +
	    (t1.tv_nsec - t0.tv_nsec) / 1000000);
	if (rep != NULL) {
		zos__v1__complete_response__free_unpacked(rep, NULL);
	}
	return NULL;
}

Test(shared_cache_zosd, a_waiting_node_stops_at_its_callers_deadline,
    .timeout = 120)
{
	struct test_redis r;
	struct node       a, b;
	struct slow_call  first, second;
	pthread_t         t;
	const char *const slow[] = { "--echo-delay-ms", "3000", NULL };
	bool              cached = false;

	signal(SIGPIPE, SIG_IGN);
	cr_assert_eq(test_redis_start(&r, NULL), 0);
	node_start(&a, &r, 1, slow);
	node_start(&b, &r, 2, slow);
	first = (struct slow_call) { .node = &a, .timeout_ms = 20000 };
	cr_assert_eq(pthread_create(&t, NULL, slow_call_thread, &first), 0);
	/* Node 2 asks once node 1 holds the lock (it waits, bounded). */
	for (int i = 0;
	     i < 200 && scrape(&a, "zos_cache_redis_misses_total") < 1; i++) {
		struct timespec ts = { 0, 10 * 1000000L };
		nanosleep(&ts, NULL);
	}
	second = (struct slow_call) { .node = &b, .timeout_ms = 500 };
	slow_call_thread(&second);
	cr_assert_eq(second.code, ZRPC_DEADLINE_EXCEEDED);
	cr_assert(second.took_ms < 2500, "stopped after %llu ms",
	    (unsigned long long) second.took_ms);
	cr_assert_eq(scrape(&b, "zos_cache_redis_waits_total"), 1);
	cr_assert_eq(backend_calls(&b), 0, "the waiter never called");
	pthread_join(t, NULL);
	cr_assert_eq(first.code, ZRPC_OK);
	/* Node 1's answer is then node 2's too. */
	cr_assert_eq(
	    complete(&b, "a slow one", &cached, NULL, 0, NULL, 0), ZRPC_OK);
	cr_assert(cached);
	cr_assert_eq(backend_calls(&a) + backend_calls(&b), 1);
	node_stop(&a);
	node_stop(&b);
	test_redis_stop(&r);
}

Test(shared_cache_zosd, redis_down_calls_ok_counted_one_line_then_shared_again,
    .timeout = 120)
{
	struct test_redis r;
	struct node       a, b;
	bool              cached = false;
	char              prompt[64];
	int               i;

	signal(SIGPIPE, SIG_IGN);
	cr_assert_eq(test_redis_start(&r, NULL), 0);
	node_start(&a, &r, 1, NULL);
	node_start(&b, &r, 2, NULL);
	cr_assert_eq(complete(&a, "warm", NULL, NULL, 0, NULL, 0), ZRPC_OK);

	cr_assert_eq(test_redis_kill(&r), 0);
	for (i = 0; i < 10; i++) {
		snprintf(prompt, sizeof(prompt), "while down %d", i);
		cr_assert_eq(complete(&a, prompt, NULL, NULL, 0, NULL, 0),
		    ZRPC_OK, "never an error to the caller");
	}
	/* The local level still answers. */
	cr_assert_eq(
	    complete(&a, "while down 3", &cached, NULL, 0, NULL, 0), ZRPC_OK);
	cr_assert(cached);
	cr_assert_geq(scrape(&a, "zos_cache_redis_errors_total"), 1);
	cr_assert_eq(scrape(&a, "zos_cache_redis_up"), 0);

	cr_assert_eq(test_redis_restart(&r), 0);
	/* Bounded: node 1 reconnects within its 1 s retry period. */
	cached = false;
	for (i = 0; i < 100 && !cached; i++) {
		snprintf(prompt, sizeof(prompt), "after %d", i);
		cr_assert_eq(
		    complete(&a, prompt, NULL, NULL, 0, NULL, 0), ZRPC_OK);
		cr_assert_eq(
		    complete(&b, prompt, &cached, NULL, 0, NULL, 0), ZRPC_OK);
		if (!cached) {
			struct timespec ts = { 0, 50 * 1000000L };
			nanosleep(&ts, NULL);
		}
	}
	cr_assert(cached, "shared again after Redis came back");
	cr_assert_eq(scrape(&a, "zos_cache_redis_up"), 1);
	node_stop(&a);
	node_stop(&b);
	cr_assert_eq(count_of(a.proc.text, "unavailable ("), 1,
	    "one line per outage:\n%s", a.proc.text);
	cr_assert_eq(count_of(a.proc.text, "is back"), 1, "%s", a.proc.text);
	test_redis_stop(&r);
}

Test(shared_cache_zosd, auth_file_opens_a_password_protected_redis,
    .timeout = 120)
{
	struct test_redis r;
	struct node       a, b;
	struct proc       bad;
	char              file[256];
	bool              cached;
	FILE             *f;

	signal(SIGPIPE, SIG_IGN);
	cr_assert_eq(test_redis_start(&r, "pw-for-zos"), 0);
	snprintf(file, sizeof(file), "%s/auth", r.dir);
	f = fopen(file, "w");
	cr_assert_not_null(f);
	fputs("pw-for-zos\n", f);
	fclose(f);
	const char *const auth[] = { "--cache-auth-file", file, NULL };

	node_start(&a, &r, 1, auth);
	node_start(&b, &r, 2, auth);
	cr_assert_eq(complete(&a, "secret", NULL, NULL, 0, NULL, 0), ZRPC_OK);
	cr_assert_eq(
	    complete(&b, "secret", &cached, NULL, 0, NULL, 0), ZRPC_OK);
	cr_assert(cached);
	cr_assert_eq(scrape(&a, "zos_cache_redis_errors_total"), 0);
	node_stop(&a);
	node_stop(&b);

	f = fopen(file, "w");
	cr_assert_not_null(f);
	fputs("not-the-password\n", f);
	fclose(f);
	char *argv[] = { (char *) env_path("ZOSD"), "--in-memory",
		"--metrics-listen", "off", "--listen", "tcp://127.0.0.1:0",
		"--cache-url", r.url, "--cache-auth-file", file, NULL };
	proc_start(&bad, argv);
	cr_assert_eq(proc_wait(&bad), 1, "%s", bad.text);
	cr_assert(strstr(bad.text, "AUTH refused") != NULL, "%s", bad.text);
	test_redis_stop(&r);
}
