/*
 * The shared second level (zos/cache/shared_cache.h) against a real
 * redis-server of the test's own (tests/support/redis.h). Two or three
 * zos_shared_cache instances in one process stand for nodes: they share
 * nothing but Redis.
 */
#include <criterion/criterion.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "redis.h"
#include "shared_cache.h"
#include "zrpc/clock.h"

/* hiredis writes to a socket Redis may have closed: as zosd does, the
 * process ignores SIGPIPE (shared_cache.h). */
static void
suite_init(void)
{
	signal(SIGPIPE, SIG_IGN);
}

TestSuite(shared_cache, .init = suite_init, .fini = test_redis_stop_left);

/* A compute function that counts its calls and answers "ANSWER:prompt". */
struct counter {
	atomic_int calls;
	unsigned   delay_ms;
	int        fail; /* non-zero: fail with this code */
};

static int
counting_compute(void *arg, const char *model, const char *prompt, char **out)
{
	struct counter *c = arg;
	char            text[512];

	atomic_fetch_add(&c->calls, 1);
	if (c->delay_ms > 0) {
		struct timespec ts = { .tv_sec = c->delay_ms / 1000,
			.tv_nsec = (long) (c->delay_ms % 1000) * 1000000L };
		nanosleep(&ts, NULL);
	}
	if (c->fail != 0) {
		*out = strdup("backend failed");
		return c->fail;
	}
	snprintf(text, sizeof(text), "ANSWER(%s):%s", model, prompt);
	*out = strdup(text);
	return 0;
}

/* Log lines, counted by whether they say unavailable or back. */
struct log_count {
	atomic_int down;
	atomic_int back;
};

static void
count_log(void *arg, zrpc_log_level level, const char *message)
{
	struct log_count *l = arg;

	(void) level;
	if (getenv("SHARED_DEBUG") != NULL) {
		fprintf(stderr, "log: %s\n", message);
	}
	if (strstr(message, "unavailable") != NULL) {
		atomic_fetch_add(&l->down, 1);
	} else if (strstr(message, "is back") != NULL) {
		atomic_fetch_add(&l->back, 1);
	}
}

static struct zos_shared_cache *
make_cache(const struct test_redis *r, struct log_count *log)
{
	char                           error[256] = "";
	struct zos_shared_cache_config config     = {
		    .url      = r->url,
		    .ttl_s    = 120,
		    .retry_ms = 50,
		    .log      = log != NULL ? count_log : NULL,
		    .log_arg  = log,
	};
	struct zos_shared_cache *sc =
	    zos_shared_cache_create(&config, error, sizeof(error));

	cr_assert_not_null(sc, "create: %s", error);
	return sc;
}

/* A direct hiredis connection for looking at what the cache wrote. */
static redisContext *
peek_connect(const struct test_redis *r)
{
	redisContext *ctx = redisConnectUnix(r->socket);

	cr_assert(ctx != NULL && ctx->err == 0, "connect to test redis");
	if (r->password[0] != '\0') {
		redisReply *reply = redisCommand(ctx, "AUTH %s", r->password);
		cr_assert_not_null(reply);
		freeReplyObject(reply);
	}
	return ctx;
}

static long long
peek_integer(redisContext *ctx, const char *command, const char *key)
{
	redisReply *reply = redisCommand(ctx, command, key);
	long long   v;

	cr_assert(reply != NULL && reply->type == REDIS_REPLY_INTEGER, "%s %s",
	    command, key);
	v = reply->integer;
	freeReplyObject(reply);
	return v;
}

static int
ask(struct zos_shared_cache *sc, struct counter *c, const char *prompt,
    uint64_t deadline_ns, char **text, bool *shared)
{
	return zos_shared_cache_get_or_compute(
	    sc, "m1", prompt, counting_compute, c, deadline_ns, text, shared);
}

Test(shared_cache, another_node_hits_what_one_node_computed)
{
	struct test_redis             r;
	struct counter                c = { 0 };
	struct zos_shared_cache      *a, *b;
	char                         *text;
	bool                          shared;
	struct zos_shared_cache_stats st;

	cr_assert_eq(test_redis_start(&r, NULL), 0);
	a = make_cache(&r, NULL);
	b = make_cache(&r, NULL);
	cr_assert_eq(ask(a, &c, "is 7 prime?", 0, &text, &shared), 0);
	cr_assert_not(shared);
	cr_assert_str_eq(text, "ANSWER(m1):is 7 prime?");
	free(text);
	cr_assert_eq(ask(b, &c, "is 7 prime?", 0, &text, &shared), 0);
	cr_assert(shared, "the second node read Redis");
	cr_assert_str_eq(text, "ANSWER(m1):is 7 prime?");
	free(text);
	cr_assert_eq(atomic_load(&c.calls), 1, "computed once");
	zos_shared_cache_stats(b, &st);
	cr_assert_eq(st.hits, 1);
	cr_assert_eq(st.misses, 0);
	zos_shared_cache_stats(a, &st);
	cr_assert_eq(st.misses, 1);
	cr_assert(st.up);
	zos_shared_cache_destroy(a);
	zos_shared_cache_destroy(b);
	test_redis_stop(&r);
}

Test(shared_cache, values_get_the_ttl_and_the_lock_is_released)
{
	struct test_redis        r;
	struct counter           c = { 0 };
	struct zos_shared_cache *a;
	char                     key[ZOS_SHARED_CACHE_KEY_LEN];
	char                     lock[ZOS_SHARED_CACHE_KEY_LEN + 5];
	char                    *text;
	bool                     shared;
	redisContext            *ctx;
	long long                ttl;

	cr_assert_eq(test_redis_start(&r, NULL), 0);
	a = make_cache(&r, NULL);
	cr_assert_eq(ask(a, &c, "ttl?", 0, &text, &shared), 0);
	free(text);
	zos_shared_cache_key(a, "m1", "ttl?", key);
	snprintf(lock, sizeof(lock), "%s:lock", key);
	ctx = peek_connect(&r);
	ttl = peek_integer(ctx, "TTL %s", key);
	cr_assert(ttl > 100 && ttl <= 120, "TTL %lld of 120", ttl);
	cr_assert_eq(peek_integer(ctx, "EXISTS %s", lock), 0,
	    "the winner deleted its lock");
	redisFree(ctx);
	zos_shared_cache_destroy(a);
	test_redis_stop(&r);
}

/* Every key hashes alike: only the stored (model, prompt) tell apart. */
static uint64_t
constant_hash(const void *data, size_t len, uint64_t seed)
{
	(void) data;
	(void) len;
	(void) seed;
	return 42;
}

Test(shared_cache, a_hash_collision_never_returns_another_prompts_answer)
{
	struct test_redis        r;
	struct counter           c = { 0 };
	struct zos_shared_cache *a, *b;
	char                     error[256];
	char                     k1[ZOS_SHARED_CACHE_KEY_LEN];
	char                     k2[ZOS_SHARED_CACHE_KEY_LEN];
	char                    *text;
	bool                     shared;

	cr_assert_eq(test_redis_start(&r, NULL), 0);
	struct zos_shared_cache_config config = {
		.url  = r.url,
		.hash = constant_hash,
	};
	a = zos_shared_cache_create(&config, error, sizeof(error));
	b = zos_shared_cache_create(&config, error, sizeof(error));
	cr_assert(a != NULL && b != NULL, "%s", error);
	zos_shared_cache_key(a, "m1", "first", k1);
	zos_shared_cache_key(a, "m1", "second", k2);
	cr_assert_str_eq(k1, k2, "the keys collide");

	cr_assert_eq(ask(a, &c, "first", 0, &text, &shared), 0);
	free(text);
	cr_assert_eq(ask(b, &c, "second", 0, &text, &shared), 0);
	cr_assert_not(shared, "another prompt's value is a miss");
	cr_assert_str_eq(text, "ANSWER(m1):second");
	free(text);
	/* Another model, same prompt: a miss too. */
	cr_assert_eq(zos_shared_cache_get_or_compute(b, "m2", "second",
	                 counting_compute, &c, 0, &text, &shared),
	    0);
	cr_assert_not(shared);
	cr_assert_str_eq(text, "ANSWER(m2):second");
	free(text);
	cr_assert_eq(atomic_load(&c.calls), 3);
	zos_shared_cache_destroy(a);
	zos_shared_cache_destroy(b);
	test_redis_stop(&r);
}

Test(shared_cache, a_waiter_stops_at_its_deadline)
{
	struct test_redis        r;
	struct counter           c = { 0 };
	struct zos_shared_cache *a;
	char                     key[ZOS_SHARED_CACHE_KEY_LEN];
	char                    *text;
	bool                     shared;
	redisContext            *ctx;
	redisReply              *reply;
	uint64_t                 t0;
	uint64_t                 took_ms;

	cr_assert_eq(test_redis_start(&r, NULL), 0);
	a = make_cache(&r, NULL);
	/* Another node holds the lock for a minute. */
	zos_shared_cache_key(a, "m1", "slow", key);
	ctx   = peek_connect(&r);
	reply = redisCommand(ctx, "SET %s:lock other NX PX 60000", key);
	cr_assert(reply != NULL && reply->type == REDIS_REPLY_STATUS);
	freeReplyObject(reply);

	t0 = zrpc_now_ns();
	cr_assert_eq(ask(a, &c, "slow", t0 + 300 * 1000000ull, &text, &shared),
	    ZOS_SHARED_CACHE_TIMED_OUT);
	took_ms = (zrpc_now_ns() - t0) / 1000000u;
	cr_assert_null(text);
	cr_assert(took_ms >= 290 && took_ms < 2000, "stopped after %llu ms",
	    (unsigned long long) took_ms);
	cr_assert_eq(atomic_load(&c.calls), 0, "a waiter never computes");
	redisFree(ctx);
	zos_shared_cache_destroy(a);
	test_redis_stop(&r);
}

Test(shared_cache, a_dead_holders_lock_expires_and_a_waiter_takes_it)
{
	struct test_redis        r;
	struct counter           c = { 0 };
	struct zos_shared_cache *a;
	char                     key[ZOS_SHARED_CACHE_KEY_LEN];
	char                    *text;
	bool                     shared;
	redisContext            *ctx;
	redisReply              *reply;

	cr_assert_eq(test_redis_start(&r, NULL), 0);
	a = make_cache(&r, NULL);
	zos_shared_cache_key(a, "m1", "orphan", key);
	ctx   = peek_connect(&r);
	reply = redisCommand(ctx, "SET %s:lock dead NX PX 200", key);
	cr_assert(reply != NULL && reply->type == REDIS_REPLY_STATUS);
	freeReplyObject(reply);
	cr_assert_eq(ask(a, &c, "orphan", zrpc_now_ns() + 5000000000ull, &text,
	                 &shared),
	    0);
	cr_assert_str_eq(text, "ANSWER(m1):orphan");
	free(text);
	cr_assert_eq(atomic_load(&c.calls), 1);
	redisFree(ctx);
	zos_shared_cache_destroy(a);
	test_redis_stop(&r);
}

/* Many threads over three "nodes" asking one new prompt at once. */
struct flight {
	struct zos_shared_cache *sc;
	struct counter          *c;
	int                      rv;
	char                    *text;
};

static void *
flight_thread(void *arg)
{
	struct flight *f = arg;
	bool           shared;

	f->rv = ask(f->sc, f->c, "same prompt", zrpc_now_ns() + 10000000000ull,
	    &f->text, &shared);
	return NULL;
}

Test(shared_cache, concurrent_misses_on_three_nodes_compute_once)
{
	struct test_redis        r;
	struct counter           c = { .delay_ms = 200 };
	struct zos_shared_cache *nodes[3];
	struct flight            f[12];
	pthread_t                t[12];

	cr_assert_eq(test_redis_start(&r, NULL), 0);
	for (int i = 0; i < 3; i++) {
		nodes[i] = make_cache(&r, NULL);
	}
	for (int i = 0; i < 12; i++) {
		f[i] = (struct flight) { .sc = nodes[i % 3], .c = &c };
		cr_assert_eq(
		    pthread_create(&t[i], NULL, flight_thread, &f[i]), 0);
	}
	for (int i = 0; i < 12; i++) {
		pthread_join(t[i], NULL);
		cr_assert_eq(f[i].rv, 0, "caller %d: %d", i, f[i].rv);
		cr_assert_str_eq(f[i].text, "ANSWER(m1):same prompt");
		free(f[i].text);
	}
	cr_assert_eq(atomic_load(&c.calls), 1, "one compute for 12 callers");
	for (int i = 0; i < 3; i++) {
		zos_shared_cache_destroy(nodes[i]);
	}
	test_redis_stop(&r);
}

Test(shared_cache, a_failed_compute_is_not_stored_and_releases_the_lock)
{
	struct test_redis        r;
	struct counter           bad  = { .fail = 14 };
	struct counter           good = { 0 };
	struct zos_shared_cache *a, *b;
	char                    *text;
	bool                     shared;

	cr_assert_eq(test_redis_start(&r, NULL), 0);
	a = make_cache(&r, NULL);
	b = make_cache(&r, NULL);
	cr_assert_eq(ask(a, &bad, "flaky", 0, &text, &shared), 14);
	cr_assert_str_eq(text, "backend failed");
	free(text);
	/* Not waiting for a lock that is gone: computes at once. */
	cr_assert_eq(ask(b, &good, "flaky", zrpc_now_ns() + 200000000ull,
	                 &text, &shared),
	    0);
	cr_assert_not(shared);
	free(text);
	cr_assert_eq(atomic_load(&good.calls), 1);
	zos_shared_cache_destroy(a);
	zos_shared_cache_destroy(b);
	test_redis_stop(&r);
}

/* Polls until PRED's call of get-or-compute is shared again (bounded). */
static bool
shared_within(struct zos_shared_cache *sc, struct counter *c,
    const char *prompt, int max_ms)
{
	for (int waited = 0; waited < max_ms; waited += 20) {
		char *text = NULL;
		bool  shared;

		cr_assert_eq(ask(sc, c, prompt, 0, &text, &shared), 0);
		free(text);
		if (shared) {
			return true;
		}
		struct timespec ts = { 0, 20 * 1000000L };
		nanosleep(&ts, NULL);
	}
	return false;
}

Test(shared_cache, redis_down_degrades_counts_logs_once_and_comes_back)
{
	struct test_redis             r;
	struct counter                c   = { 0 };
	struct log_count              log = { 0 };
	struct zos_shared_cache      *a, *b;
	struct zos_shared_cache_stats st;
	char                          prompt[64];
	char                         *text;
	bool                          shared;

	cr_assert_eq(test_redis_start(&r, NULL), 0);
	a = make_cache(&r, &log);
	b = make_cache(&r, NULL);
	cr_assert_eq(ask(a, &c, "before", 0, &text, &shared), 0);
	free(text);

	cr_assert_eq(test_redis_kill(&r), 0);
	for (int i = 0; i < 20; i++) {
		snprintf(prompt, sizeof(prompt), "during %d", i);
		cr_assert_eq(ask(a, &c, prompt, 0, &text, &shared), 0,
		    "never an error to the caller");
		cr_assert_str_eq(text + strlen("ANSWER(m1):"), prompt);
		free(text);
	}
	zos_shared_cache_stats(a, &st);
	cr_assert_geq(st.errors, 1);
	cr_assert_eq(st.outages, 1);
	cr_assert_not(st.up);
	cr_assert_eq(atomic_load(&log.down), 1, "one line per outage");

	cr_assert_eq(test_redis_restart(&r), 0);
	/* Redis restarted empty: A stores again once it reconnects (within
	 * its 50 ms retry period), then B reads it. */
	for (int waited = 0; waited < 3000 && atomic_load(&log.back) == 0;
	     waited += 20) {
		cr_assert_eq(ask(a, &c, "after", 0, &text, &shared), 0);
		free(text);
		struct timespec ts = { 0, 20 * 1000000L };
		nanosleep(&ts, NULL);
	}
	cr_assert_eq(atomic_load(&log.back), 1, "one line when it is back");
	cr_assert_eq(ask(a, &c, "after 2", 0, &text, &shared), 0);
	free(text);
	cr_assert(shared_within(b, &c, "after 2", 3000),
	    "shared again after the restart");
	zos_shared_cache_stats(a, &st);
	cr_assert(st.up);
	cr_assert_eq(atomic_load(&log.down), 1);
	zos_shared_cache_destroy(a);
	zos_shared_cache_destroy(b);
	test_redis_stop(&r);
}

Test(shared_cache, unreachable_at_start_is_an_outage_not_an_error)
{
	struct log_count               log = { 0 };
	struct counter                 c   = { 0 };
	char                           error[256];
	char                          *text;
	bool                           shared;
	struct zos_shared_cache_config config = {
		.url     = "unix:///nonexistent/zos-redis.sock",
		.log     = count_log,
		.log_arg = &log,
	};
	struct zos_shared_cache *sc =
	    zos_shared_cache_create(&config, error, sizeof(error));

	cr_assert_not_null(sc, "%s", error);
	cr_assert_eq(ask(sc, &c, "x", 0, &text, &shared), 0);
	free(text);
	cr_assert_eq(atomic_load(&log.down), 1);
	zos_shared_cache_destroy(sc);
}

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
}

Test(shared_cache, auth_file_with_password_or_acl_user)
{
	struct test_redis             r;
	struct counter                c = { 0 };
	char                          file[256], error[256];
	char                         *text;
	bool                          shared;
	struct zos_shared_cache      *sc;
	struct zos_shared_cache_stats st;
	redisContext                 *ctx;
	redisReply                   *reply;

	cr_assert_eq(test_redis_start(&r, "s3cret-pw"), 0);
	snprintf(file, sizeof(file), "%s/auth", r.dir);
	struct zos_shared_cache_config config = {
		.url       = r.url,
		.auth_file = file,
	};

	write_file(file, "s3cret-pw\n");
	sc = zos_shared_cache_create(&config, error, sizeof(error));
	cr_assert_not_null(sc, "%s", error);
	cr_assert_eq(ask(sc, &c, "auth", 0, &text, &shared), 0);
	free(text);
	zos_shared_cache_stats(sc, &st);
	cr_assert_eq(st.errors, 0, "authenticated");
	cr_assert_eq(st.misses, 1);
	zos_shared_cache_destroy(sc);

	/* An ACL user. */
	ctx   = peek_connect(&r);
	reply = redisCommand(ctx, "ACL SETUSER zos on >user-pw ~zos:* +@all");
	cr_assert(reply != NULL && reply->type == REDIS_REPLY_STATUS);
	freeReplyObject(reply);
	redisFree(ctx);
	write_file(file, "zos user-pw\n");
	sc = zos_shared_cache_create(&config, error, sizeof(error));
	cr_assert_not_null(sc, "%s", error);
	cr_assert_eq(ask(sc, &c, "auth", 0, &text, &shared), 0);
	cr_assert(shared, "the user reads what the password wrote");
	free(text);
	zos_shared_cache_destroy(sc);

	/* A wrong password is a start-up error naming the refusal. */
	write_file(file, "wrong\n");
	cr_assert_null(zos_shared_cache_create(&config, error, sizeof(error)));
	cr_assert(strstr(error, "AUTH refused") != NULL, "%s", error);

	/* No file at all: Redis says NOAUTH, which degrades. */
	config.auth_file = NULL;
	sc = zos_shared_cache_create(&config, error, sizeof(error));
	cr_assert_not_null(sc, "%s", error);
	cr_assert_eq(ask(sc, &c, "noauth", 0, &text, &shared), 0);
	free(text);
	zos_shared_cache_stats(sc, &st);
	cr_assert_geq(st.errors, 1);
	zos_shared_cache_destroy(sc);
	test_redis_stop(&r);
}

/*
 * Redis I/O under a zOS lock aborts (test builds: ZOS_LOCK_CHECKS). The
 * "Redis" is a listening socket of the test's own, removed before the
 * abort, so that nothing is left behind: the check comes before any I/O.
 */
Test(shared_cache, redis_io_under_a_zos_lock_aborts, .signal = SIGABRT)
{
	struct counter         c = { 0 };
	struct zos_lock_domain domain;
	struct zos_lock        lock;
	struct sockaddr_un     addr = { .sun_family = AF_UNIX };
	char                   url[160], error[256];
	char                  *text;
	bool                   shared;
	int                    fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(addr.sun_path, sizeof(addr.sun_path),
	    "/tmp/zos-shared-death-%d.sock", (int) getpid());
	unlink(addr.sun_path);
	cr_assert(fd >= 0 &&
	    bind(fd, (struct sockaddr *) &addr, sizeof(addr)) == 0 &&
	    listen(fd, 8) == 0);
	snprintf(url, sizeof(url), "unix://%s", addr.sun_path);
	zos_lock_domain_init(&domain, true, NULL, NULL);
	cr_assert_eq(zos_lock_init(&lock, ZOS_RANK_RESPONSE_CACHE,
	                 "response_cache", &domain),
	    0);
	struct zos_shared_cache_config config = {
		.url    = url,
		.domain = &domain,
	};
	struct zos_shared_cache *sc =
	    zos_shared_cache_create(&config, error, sizeof(error));
	unlink(addr.sun_path);
	cr_assert_not_null(sc, "%s", error);
	zos_lock_read(&lock);
	(void) ask(sc, &c, "under a lock", 0, &text, &shared);
	cr_assert_fail("not reached: the assertion aborts");
}

Test(shared_cache, urls_are_checked)
{
	char host[256], why[256];
	int  port;

	cr_assert(zos_shared_cache_parse_url("redis://127.0.0.1:6380", host,
	    sizeof(host), &port, why, sizeof(why)));
	cr_assert_str_eq(host, "127.0.0.1");
	cr_assert_eq(port, 6380);
	cr_assert(zos_shared_cache_parse_url(
	    "redis://cache", host, sizeof(host), &port, why, sizeof(why)));
	cr_assert_eq(port, 6379);
	cr_assert(zos_shared_cache_parse_url("unix:///run/redis.sock", host,
	    sizeof(host), &port, why, sizeof(why)));
	cr_assert_str_eq(host, "/run/redis.sock");
	cr_assert_eq(port, 0);
	cr_assert_not(zos_shared_cache_parse_url(
	    "http://x:1", host, sizeof(host), &port, why, sizeof(why)));
	cr_assert_not(zos_shared_cache_parse_url(
	    "redis://x:99999", host, sizeof(host), &port, why, sizeof(why)));
	cr_assert_not(zos_shared_cache_parse_url(
	    "redis://u:p@x:1", host, sizeof(host), &port, why, sizeof(why)));
	cr_assert_not(zos_shared_cache_parse_url(
	    "unix://relative", host, sizeof(host), &port, why, sizeof(why)));
	cr_assert(strstr(why, "absolute") != NULL, "%s", why);
}
