/* The response cache: LRU, bounds, collisions, single flight, locking. */
#include "zrpc/clock.h"
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache.h"

/* Every wait in these tests gives up after this long. */
#define WAIT_SECONDS 10

static struct timespec
deadline(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += WAIT_SECONDS;
	return ts;
}

/* A flag threads can wait for, with a bounded wait. */
struct gate {
	pthread_mutex_t mtx;
	pthread_cond_t  cv;
	bool            open;
};

static void
gate_init(struct gate *g)
{
	pthread_mutex_init(&g->mtx, NULL);
	pthread_cond_init(&g->cv, NULL);
	g->open = false;
}

static void
gate_finish(struct gate *g)
{
	pthread_cond_destroy(&g->cv);
	pthread_mutex_destroy(&g->mtx);
}

static void
gate_open(struct gate *g)
{
	pthread_mutex_lock(&g->mtx);
	g->open = true;
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mtx);
}

/* True if G opened within the bound. */
static bool
gate_wait(struct gate *g)
{
	struct timespec until = deadline();
	int             rv    = 0;

	pthread_mutex_lock(&g->mtx);
	while (!g->open && rv != ETIMEDOUT) {
		rv = pthread_cond_timedwait(&g->cv, &g->mtx, &until);
	}
	bool open = g->open;
	pthread_mutex_unlock(&g->mtx);
	return open;
}

/* Waits (bounded) until COUNTER reaches WANT. */
static bool
wait_for_count(atomic_uint_fast64_t *counter, uint64_t want)
{
	struct timespec until = deadline(), now;
	struct timespec nap   = { 0, 100000 };

	for (;;) {
		if (atomic_load(counter) >= want) {
			return true;
		}
		clock_gettime(CLOCK_REALTIME, &now);
		if (now.tv_sec > until.tv_sec) {
			return false;
		}
		nanosleep(&nap, NULL);
	}
}

/* Waits (bounded) until CACHE has counted WANT misses. */
static bool
wait_for_misses(struct zos_cache *cache, uint64_t want)
{
	struct timespec        until = deadline(), now;
	struct timespec        nap   = { 0, 100000 };
	struct zos_cache_stats st;

	for (;;) {
		zos_cache_stats(cache, &st);
		if (st.misses >= want) {
			return true;
		}
		clock_gettime(CLOCK_REALTIME, &now);
		if (now.tv_sec > until.tv_sec) {
			return false;
		}
		nanosleep(&nap, NULL);
	}
}

/* A cache with its own lock domain (aborting on violations). */
struct fixture {
	struct zos_lock_domain domain;
	struct zos_cache       cache;
};

static struct zos_cache *
cache_new(size_t capacity, zos_cache_hash_fn hash)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	cr_assert_not_null(fx);
	zos_lock_domain_init(&fx->domain, true, NULL, NULL);
	cr_assert_eq(
	    zos_cache_init(&fx->cache, capacity, hash, &fx->domain), 0);
	return &fx->cache;
}

static void
cache_free(struct zos_cache *cache)
{
	zos_cache_finish(cache);
	free((char *) cache - offsetof(struct fixture, cache));
}

/* Asserts that (MODEL, PROMPT) hits with TEXT, or misses if TEXT NULL. */
static void
expect(struct zos_cache *cache, const char *model, const char *prompt,
    const char *text)
{
	struct zos_cached_response *r = zos_cache_lookup(cache, model, prompt);

	if (text == NULL) {
		cr_assert_null(r, "%s/%s should miss", model, prompt);
		return;
	}
	cr_assert_not_null(r, "%s/%s should hit", model, prompt);
	cr_assert_str_eq(r->text, text);
	cr_assert_eq(r->len, strlen(text));
	cr_assert_eq(r->error, 0);
	zos_cache_response_unref(r);
}

static uint64_t
constant_hash(const void *data, size_t len, uint64_t seed)
{
	return 42;
}

Test(cache, least_recently_used_entry_is_evicted_at_capacity)
{
	struct zos_cache      *cache = cache_new(3, NULL);
	struct zos_cache_stats st;

	cr_assert_eq(zos_cache_store(cache, "m", "a", "A"), 0);
	cr_assert_eq(zos_cache_store(cache, "m", "b", "B"), 0);
	cr_assert_eq(zos_cache_store(cache, "m", "c", "C"), 0);
	expect(cache, "m", "a", "A"); /* order now: b, c, a */
	cr_assert_eq(zos_cache_store(cache, "m", "d", "D"), 0); /* evicts b */
	expect(cache, "m", "b", NULL);
	expect(cache, "m", "c", "C"); /* order now: a, d, c */
	cr_assert_eq(zos_cache_store(cache, "m", "e", "E"), 0); /* evicts a */
	expect(cache, "m", "a", NULL);
	expect(cache, "m", "d", "D");
	expect(cache, "m", "c", "C");
	expect(cache, "m", "e", "E");
	zos_cache_stats(cache, &st);
	cr_assert_eq(st.size, 3);
	cr_assert_eq(st.capacity, 3);
	cr_assert_eq(st.evictions, 2);
	cache_free(cache);
}

Test(cache, default_capacity_is_200_and_size_never_exceeds_it)
{
	struct zos_cache      *cache = cache_new(0, NULL);
	struct zos_cache_stats st;
	char                   prompt[32];

	for (int i = 0; i < 500; i++) {
		snprintf(prompt, sizeof(prompt), "p%d", i);
		cr_assert_eq(zos_cache_store(cache, "m", prompt, prompt), 0);
	}
	zos_cache_stats(cache, &st);
	cr_assert_eq(st.capacity, 200);
	cr_assert_eq(st.size, 200);
	cr_assert_eq(st.evictions, 300);
	expect(cache, "m", "p299", NULL);
	expect(cache, "m", "p300", "p300");
	expect(cache, "m", "p499", "p499");
	cache_free(cache);
}

Test(cache, stats_are_exact_after_a_known_sequence)
{
	struct zos_cache      *cache = cache_new(2, NULL);
	struct zos_cache_stats st;

	expect(cache, "m", "x", NULL);                           /* miss 1 */
	cr_assert_eq(zos_cache_store(cache, "m", "x", "X"), 0);  /* size 1 */
	expect(cache, "m", "x", "X");                            /* hit 1 */
	expect(cache, "m", "x", "X");                            /* hit 2 */
	cr_assert_eq(zos_cache_store(cache, "m", "y", "Y"), 0);  /* size 2 */
	cr_assert_eq(zos_cache_store(cache, "m", "y", "Y2"), 0); /* replace */
	cr_assert_eq(zos_cache_store(cache, "m", "z", "Z"), 0);  /* evict x */
	expect(cache, "m", "x", NULL);                           /* miss 2 */
	expect(cache, "other", "y", NULL);                       /* miss 3 */
	expect(cache, "m", "y", "Y2");                           /* hit 3 */
	zos_cache_stats(cache, &st);
	cr_assert_eq(st.size, 2);
	cr_assert_eq(st.capacity, 2);
	cr_assert_eq(st.hits, 3);
	cr_assert_eq(st.misses, 3);
	cr_assert_eq(st.evictions, 1);
	cache_free(cache);
}

Test(cache, colliding_hashes_never_mix_up_prompts_or_models)
{
	struct zos_cache *cache = cache_new(8, constant_hash);

	cr_assert_eq(zos_cache_store(cache, "m", "a", "m/a"), 0);
	cr_assert_eq(zos_cache_store(cache, "m", "ab", "m/ab"), 0);
	cr_assert_eq(zos_cache_store(cache, "ma", "b", "ma/b"), 0);
	cr_assert_eq(zos_cache_store(cache, "n", "a", "n/a"), 0);
	cr_assert_eq(zos_cache_store(cache, "", "", "empty"), 0);
	expect(cache, "m", "a", "m/a");
	expect(cache, "m", "ab", "m/ab");
	expect(cache, "ma", "b", "ma/b");
	expect(cache, "n", "a", "n/a");
	expect(cache, "", "", "empty");
	expect(cache, "m", "b", NULL);
	expect(cache, "m", "", NULL);
	expect(cache, "", "ma", NULL);
	expect(cache, "mab", "", NULL);
	/* Eviction and replacement work within one chain too. */
	for (int i = 0; i < 20; i++) {
		char p[16];
		snprintf(p, sizeof(p), "q%d", i);
		cr_assert_eq(zos_cache_store(cache, "m", p, p), 0);
	}
	expect(cache, "m", "a", NULL);
	expect(cache, "m", "q11", NULL);
	for (int i = 12; i < 20; i++) {
		char p[16];
		snprintf(p, sizeof(p), "q%d", i);
		expect(cache, "m", p, p);
	}
	cache_free(cache);
}

Test(cache, store_replaces_and_old_holders_keep_their_snapshot)
{
	struct zos_cache           *cache = cache_new(4, NULL);
	struct zos_cached_response *old;
	struct zos_cache_stats      st;

	cr_assert_eq(zos_cache_store(cache, "m", "p", "first"), 0);
	old = zos_cache_lookup(cache, "m", "p");
	cr_assert_not_null(old);
	cr_assert_eq(zos_cache_store(cache, "m", "p", "second"), 0);
	cr_assert_str_eq(old->text, "first");
	zos_cache_response_unref(old);
	expect(cache, "m", "p", "second");
	zos_cache_stats(cache, &st);
	cr_assert_eq(st.size, 1);
	cr_assert_eq(st.evictions, 0);
	cache_free(cache);
}

Test(cache, clear_empties_the_cache_and_keeps_counters)
{
	struct zos_cache      *cache = cache_new(4, NULL);
	struct zos_cache_stats st;

	cr_assert_eq(zos_cache_store(cache, "m", "p", "P"), 0);
	cr_assert_eq(zos_cache_store(cache, "m", "q", "Q"), 0);
	expect(cache, "m", "p", "P");
	zos_cache_clear(cache);
	zos_cache_stats(cache, &st);
	cr_assert_eq(st.size, 0);
	cr_assert_eq(st.hits, 1);
	cr_assert_eq(st.evictions, 0);
	expect(cache, "m", "p", NULL);
	expect(cache, "m", "q", NULL);
	cr_assert_eq(zos_cache_store(cache, "m", "p", "P2"), 0);
	expect(cache, "m", "p", "P2");
	cache_free(cache);
}

static int
compute_huge(void *arg, const char *model, const char *prompt, char **out)
{
	size_t n = ZOS_CACHE_MAX_RESPONSE_BYTES + 1;

	*out = malloc(n + 1);
	memset(*out, 'r', n);
	(*out)[n] = '\0';
	return 0;
}

static int
compute_fixed(void *arg, const char *model, const char *prompt, char **out)
{
	atomic_fetch_add((atomic_uint_fast64_t *) arg, 1);
	*out = strdup("computed");
	return 0;
}

Test(cache, oversized_keys_and_responses_are_rejected)
{
	struct zos_cache           *cache = cache_new(4, NULL);
	struct zos_cached_response *v;
	struct zos_cache_stats      st;
	struct zos_cache            other;
	bool                        cached;
	char *model  = malloc(ZOS_CACHE_MAX_MODEL_BYTES + 2);
	char *prompt = malloc(ZOS_CACHE_MAX_PROMPT_BYTES + 2);
	char *resp   = malloc(ZOS_CACHE_MAX_RESPONSE_BYTES + 2);

	memset(model, 'm', ZOS_CACHE_MAX_MODEL_BYTES + 1);
	model[ZOS_CACHE_MAX_MODEL_BYTES + 1] = '\0';
	memset(prompt, 'p', ZOS_CACHE_MAX_PROMPT_BYTES + 1);
	prompt[ZOS_CACHE_MAX_PROMPT_BYTES + 1] = '\0';
	memset(resp, 'r', ZOS_CACHE_MAX_RESPONSE_BYTES + 1);
	resp[ZOS_CACHE_MAX_RESPONSE_BYTES + 1] = '\0';

	cr_assert_eq(
	    zos_cache_store(cache, model, "p", "r"), ZOS_CACHE_TOO_LARGE);
	cr_assert_eq(
	    zos_cache_store(cache, "m", prompt, "r"), ZOS_CACHE_TOO_LARGE);
	cr_assert_eq(
	    zos_cache_store(cache, "m", "p", resp), ZOS_CACHE_TOO_LARGE);
	cr_assert_null(zos_cache_lookup(cache, model, "p"));
	cr_assert_eq(zos_cache_get_or_compute(
	                 cache, "m", prompt, compute_fixed, NULL, &v, &cached),
	    ZOS_CACHE_TOO_LARGE);
	cr_assert_null(v);
	cr_assert_eq(zos_cache_get_or_compute(
	                 cache, "m", "p", compute_huge, NULL, &v, &cached),
	    ZOS_CACHE_TOO_LARGE);
	cr_assert_null(v);

	/* Exactly at the bounds is fine. */
	model[ZOS_CACHE_MAX_MODEL_BYTES]   = '\0';
	prompt[ZOS_CACHE_MAX_PROMPT_BYTES] = '\0';
	resp[ZOS_CACHE_MAX_RESPONSE_BYTES] = '\0';
	cr_assert_eq(zos_cache_store(cache, model, prompt, resp), 0);
	v = zos_cache_lookup(cache, model, prompt);
	cr_assert_not_null(v);
	cr_assert_eq(v->len, ZOS_CACHE_MAX_RESPONSE_BYTES);
	zos_cache_response_unref(v);

	/* NULLs and bad capacities. */
	cr_assert_eq(
	    zos_cache_store(cache, NULL, "p", "r"), ZOS_CACHE_INVALID);
	cr_assert_eq(
	    zos_cache_store(cache, "m", NULL, "r"), ZOS_CACHE_INVALID);
	cr_assert_eq(
	    zos_cache_store(cache, "m", "p", NULL), ZOS_CACHE_INVALID);
	cr_assert_null(zos_cache_lookup(cache, NULL, "p"));
	cr_assert_eq(
	    zos_cache_get_or_compute(cache, "m", "p", NULL, NULL, &v, &cached),
	    ZOS_CACHE_INVALID);
	cr_assert_eq(zos_cache_init(&other, ZOS_CACHE_MAX_CAPACITY + 1, NULL,
	                 cache->domain),
	    ZOS_CACHE_INVALID);
	cr_assert_eq(zos_cache_init(&other, 1, NULL, NULL), ZOS_CACHE_INVALID);
	zos_cache_finish(NULL);
	zos_cache_response_unref(NULL);

	zos_cache_stats(cache, &st);
	cr_assert_eq(st.size, 1);
	free(model);
	free(prompt);
	free(resp);
	cache_free(cache);
}

Test(cache, get_or_compute_computes_once_then_hits)
{
	struct zos_cache           *cache = cache_new(4, NULL);
	struct zos_cached_response *v;
	struct zos_cache_stats      st;
	atomic_uint_fast64_t        calls = 0;
	bool                        cached;

	cr_assert_eq(zos_cache_get_or_compute(
	                 cache, "m", "p", compute_fixed, &calls, &v, &cached),
	    0);
	cr_assert_not(cached);
	cr_assert_str_eq(v->text, "computed");
	zos_cache_response_unref(v);
	cr_assert_eq(zos_cache_get_or_compute(
	                 cache, "m", "p", compute_fixed, &calls, &v, &cached),
	    0);
	cr_assert(cached);
	cr_assert_str_eq(v->text, "computed");
	zos_cache_response_unref(v);
	cr_assert_eq(atomic_load(&calls), 1);
	expect(cache, "m", "p", "computed");
	zos_cache_stats(cache, &st);
	cr_assert_eq(st.hits, 2);
	cr_assert_eq(st.misses, 1);
	cache_free(cache);
}

/* A compute that waits on a gate, for the concurrency tests. */
struct gated {
	struct gate          gate;
	atomic_uint_fast64_t calls;
	atomic_uint_fast64_t started;
	atomic_bool          timed_out;
	int                  error; /* 0 = succeed */
	const char          *text;
};

static int
compute_gated(void *arg, const char *model, const char *prompt, char **out)
{
	struct gated *g = arg;

	atomic_fetch_add(&g->calls, 1);
	atomic_fetch_add(&g->started, 1);
	if (!gate_wait(&g->gate)) {
		atomic_store(&g->timed_out, true);
	}
	*out = strdup(g->text);
	return g->error;
}

struct caller {
	struct zos_cache           *cache;
	struct gated               *gated;
	pthread_barrier_t          *start;
	const char                 *prompt;
	struct zos_cached_response *value;
	bool                        cached;
	int                         rv;
};

static void *
caller_main(void *arg)
{
	struct caller *c = arg;

	if (c->start != NULL) {
		pthread_barrier_wait(c->start);
	}
	c->rv = zos_cache_get_or_compute(c->cache, "m", c->prompt,
	    compute_gated, c->gated, &c->value, &c->cached);
	return NULL;
}

#define CALLERS 64

/* Starts CALLERS threads missing on one key at once, waits until every
 * one of them has claimed or joined the compute (counted as a miss), and
 * only then lets the compute finish. */
static void
run_single_flight(struct zos_cache *cache, struct gated *g,
    struct caller *callers, pthread_t *threads)
{
	pthread_barrier_t start;

	pthread_barrier_init(&start, NULL, CALLERS);
	for (int i = 0; i < CALLERS; i++) {
		callers[i] = (struct caller) { .cache = cache,
			.gated                        = g,
			.start                        = &start,
			.prompt                       = "same" };
		cr_assert_eq(pthread_create(
		                 &threads[i], NULL, caller_main, &callers[i]),
		    0);
	}
	cr_assert(wait_for_misses(cache, CALLERS),
	    "all callers should be waiting on the compute");
	cr_assert(wait_for_count(&g->started, 1), "the compute should start");
	cr_assert_eq(atomic_load(&g->calls), 1);
	gate_open(&g->gate);
	for (int i = 0; i < CALLERS; i++) {
		pthread_join(threads[i], NULL);
	}
	pthread_barrier_destroy(&start);
	cr_assert_not(atomic_load(&g->timed_out));
}

Test(cache, concurrent_misses_on_one_key_compute_it_once)
{
	struct zos_cache      *cache = cache_new(4, NULL);
	struct gated           g     = { .text = "the answer" };
	struct caller          callers[CALLERS];
	pthread_t              threads[CALLERS];
	struct zos_cache_stats st;

	gate_init(&g.gate);
	run_single_flight(cache, &g, callers, threads);
	cr_assert_eq(atomic_load(&g.calls), 1);
	for (int i = 0; i < CALLERS; i++) {
		cr_assert_eq(callers[i].rv, 0);
		cr_assert_not(callers[i].cached);
		cr_assert_eq(callers[i].value, callers[0].value,
		    "everyone shares one snapshot");
		cr_assert_str_eq(callers[i].value->text, "the answer");
	}
	for (int i = 0; i < CALLERS; i++) {
		zos_cache_response_unref(callers[i].value);
	}
	zos_cache_stats(cache, &st);
	cr_assert_eq(st.misses, CALLERS);
	cr_assert_eq(st.hits, 0);
	cr_assert_eq(st.size, 1);
	expect(cache, "m", "same", "the answer");
	gate_finish(&g.gate);
	cache_free(cache);
}

Test(cache, a_compute_error_reaches_every_waiter_and_is_not_cached)
{
	struct zos_cache      *cache = cache_new(4, NULL);
	struct gated           g     = { .text = "backend down", .error = 42 };
	struct caller          callers[CALLERS];
	pthread_t              threads[CALLERS];
	struct zos_cache_stats st;
	struct zos_cached_response *v;
	atomic_uint_fast64_t        calls = 0;
	bool                        cached;

	gate_init(&g.gate);
	run_single_flight(cache, &g, callers, threads);
	for (int i = 0; i < CALLERS; i++) {
		cr_assert_eq(callers[i].rv, ZOS_CACHE_COMPUTE_FAILED);
		cr_assert_not_null(callers[i].value);
		cr_assert_eq(callers[i].value->error, 42);
		cr_assert_str_eq(callers[i].value->text, "backend down");
		zos_cache_response_unref(callers[i].value);
	}
	zos_cache_stats(cache, &st);
	cr_assert_eq(st.size, 0);
	expect(cache, "m", "same", NULL);
	/* The next caller computes afresh. */
	cr_assert_eq(zos_cache_get_or_compute(cache, "m", "same",
	                 compute_fixed, &calls, &v, &cached),
	    0);
	cr_assert_eq(atomic_load(&calls), 1);
	cr_assert_str_eq(v->text, "computed");
	zos_cache_response_unref(v);
	gate_finish(&g.gate);
	cache_free(cache);
}

Test(cache, different_keys_compute_without_waiting_for_each_other)
{
	struct zos_cache           *cache = cache_new(4, NULL);
	struct gated                a     = { .text = "A" };
	struct caller               ca    = { 0 };
	struct zos_cached_response *v;
	atomic_uint_fast64_t        calls = 0;
	pthread_t                   t;
	bool                        cached;

	gate_init(&a.gate);
	ca = (struct caller) { .cache = cache, .gated = &a, .prompt = "a" };
	cr_assert_eq(pthread_create(&t, NULL, caller_main, &ca), 0);
	cr_assert(wait_for_count(&a.started, 1));
	/* A's compute is blocked on its gate; B must complete anyway. */
	cr_assert_eq(zos_cache_get_or_compute(
	                 cache, "m", "b", compute_fixed, &calls, &v, &cached),
	    0);
	cr_assert_str_eq(v->text, "computed");
	zos_cache_response_unref(v);
	expect(cache, "m", "b", "computed");
	cr_assert_eq(atomic_load(&a.calls), 1);
	gate_open(&a.gate);
	pthread_join(t, NULL);
	cr_assert_not(atomic_load(&a.timed_out), "B waited for A");
	cr_assert_eq(ca.rv, 0);
	cr_assert_str_eq(ca.value->text, "A");
	zos_cache_response_unref(ca.value);
	gate_finish(&a.gate);
	cache_free(cache);
}

/* Holds the cache's read lock until DONE opens (bounded). */
struct reader {
	struct zos_cache *cache;
	struct gate       inside;
	struct gate       done;
	bool              saw_done;
};

static void *
reader_main(void *arg) ZOS_NO_THREAD_SAFETY_ANALYSIS
{
	struct reader *r = arg;

	zos_lock_read(&r->cache->lock);
	gate_open(&r->inside);
	r->saw_done = gate_wait(&r->done);
	zos_unlock_read(&r->cache->lock);
	return NULL;
}

Test(cache, lookups_run_while_another_reader_holds_the_lock)
{
	struct zos_cache *cache = cache_new(4, NULL);
	struct reader     r     = { .cache = cache };
	pthread_t         t;

	cr_assert_eq(zos_cache_store(cache, "m", "p", "P"), 0);
	gate_init(&r.inside);
	gate_init(&r.done);
	cr_assert_eq(pthread_create(&t, NULL, reader_main, &r), 0);
	cr_assert(gate_wait(&r.inside));
	/* The other thread holds response_cache (read): a lookup, hit or
	 * miss, and stats must not wait for it. */
	expect(cache, "m", "p", "P");
	expect(cache, "m", "q", NULL);
	struct zos_cache_stats st;
	zos_cache_stats(cache, &st);
	cr_assert_eq(st.hits, 1);
	gate_open(&r.done);
	pthread_join(t, NULL);
	cr_assert(r.saw_done, "the lookup waited for the other reader");
	gate_finish(&r.inside);
	gate_finish(&r.done);
	cache_free(cache);
}

/* Two threads inside the read lock together, met at a bounded rendezvous. */
struct rendezvous {
	struct zos_cache *cache;
	pthread_mutex_t  *mtx;
	pthread_cond_t   *cv;
	int              *inside;
	bool              met;
};

static void *
rendezvous_main(void *arg) ZOS_NO_THREAD_SAFETY_ANALYSIS
{
	struct rendezvous *r     = arg;
	struct timespec    until = deadline();
	int                rv    = 0;

	zos_lock_read(&r->cache->lock);
	pthread_mutex_lock(r->mtx);
	(*r->inside)++;
	pthread_cond_broadcast(r->cv);
	while (*r->inside < 2 && rv != ETIMEDOUT) {
		rv = pthread_cond_timedwait(r->cv, r->mtx, &until);
	}
	r->met = *r->inside >= 2;
	pthread_mutex_unlock(r->mtx);
	zos_unlock_read(&r->cache->lock);
	return NULL;
}

Test(cache, readers_hold_the_read_lock_at_once)
{
	struct zos_cache *cache  = cache_new(4, NULL);
	pthread_mutex_t   mtx    = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t    cv     = PTHREAD_COND_INITIALIZER;
	int               inside = 0;
	struct rendezvous r[2];
	pthread_t         t[2];

	for (int i = 0; i < 2; i++) {
		r[i] =
		    (struct rendezvous) { cache, &mtx, &cv, &inside, false };
		cr_assert_eq(
		    pthread_create(&t[i], NULL, rendezvous_main, &r[i]), 0);
	}
	for (int i = 0; i < 2; i++) {
		pthread_join(t[i], NULL);
		cr_assert(r[i].met, "reader %d was alone in the lock", i);
	}
	cache_free(cache);
}

static int
compute_never(void *arg, const char *model, const char *prompt, char **out)
{
	*out = strdup("unreachable");
	return 0;
}

/* Takes a rank-3 lock and, still holding it, computes through CACHE. */
static void
compute_holding_metrics(struct zos_cache *cache) ZOS_NO_THREAD_SAFETY_ANALYSIS
{
	struct zos_lock             metrics;
	struct zos_cached_response *v;
	bool                        cached;

	cr_assert_eq(zos_lock_init(&metrics, ZOS_RANK_ROUTING_METRICS,
	                 "routing_metrics", cache->domain),
	    0);
	zos_lock_read(&metrics);
	/* Lookups (rank 4 after 3) are in order; the compute is not. */
	expect(cache, "m", "p", NULL);
	zos_cache_get_or_compute(
	    cache, "m", "p", compute_never, NULL, &v, &cached);
}

/* Computing while holding any zOS lock is a violation: it aborts. */
Test(cache, computing_while_holding_a_lock_aborts, .signal = SIGABRT)
{
	compute_holding_metrics(cache_new(4, NULL));
	cr_assert_fail("should have aborted");
}

Test(cache, a_waiter_stops_at_its_deadline_while_the_compute_goes_on)
{
	struct zos_cache           *cache = cache_new(4, NULL);
	struct gated                a     = { .text = "slow answer" };
	struct caller               ca    = { 0 };
	struct zos_cached_response *v     = NULL;
	atomic_uint_fast64_t        calls = 0;
	pthread_t                   t;
	bool                        cached;
	uint64_t                    before;

	gate_init(&a.gate);
	ca = (struct caller) { .cache = cache, .gated = &a, .prompt = "p" };
	cr_assert_eq(pthread_create(&t, NULL, caller_main, &ca), 0);
	cr_assert(wait_for_count(&a.started, 1));
	/* The same key, a deadline 20 ms away: the wait ends there. */
	before = zrpc_now_ns();
	cr_assert_eq(
	    zos_cache_get_or_compute_until(cache, "m", "p", compute_fixed,
	        &calls, before + 20000000u, &v, &cached),
	    ZOS_CACHE_TIMED_OUT);
	cr_assert_geq(zrpc_now_ns(), before + 20000000u);
	cr_assert_null(v);
	cr_assert_eq(atomic_load(&calls), 0, "the waiter never computes");
	/* The compute was not disturbed and still fills the cache. */
	gate_open(&a.gate);
	pthread_join(t, NULL);
	cr_assert_eq(ca.rv, 0);
	cr_assert_str_eq(ca.value->text, "slow answer");
	zos_cache_response_unref(ca.value);
	expect(cache, "m", "p", "slow answer");
	gate_finish(&a.gate);
	cache_free(cache);
}
