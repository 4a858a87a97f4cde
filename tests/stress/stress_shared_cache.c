/*
 * The shared cache's second level under TSan: three instances (nodes) of
 * zos_shared_cache on one private redis-server, twelve threads asking the
 * same new prompt each round, stats read all along. While Redis is up,
 * each round computes exactly once across the nodes; then Redis is
 * stopped (every call must still succeed, computing locally) and started
 * again (every call succeeds, and sharing comes back). Exit 0 when all
 * held, 1 otherwise (with the reason on stderr).
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "redis.h"
#include "shared_cache.h"
#include "zrpc/clock.h"

#define STRESS_NODES 3
#define STRESS_THREADS 12
#define STRESS_ROUNDS 30
#define STRESS_DOWN_FROM 12
#define STRESS_DOWN_TO 18

struct stress {
	struct zos_shared_cache *nodes[STRESS_NODES];
	pthread_barrier_t        start;
	pthread_barrier_t        done;
	atomic_int               computes;
	atomic_int               failures;
	atomic_bool              stop;
	int                      round; /* written between the barriers */
};

static int
stress_compute(void *arg, const char *model, const char *prompt, char **out)
{
	struct stress  *s  = arg;
	struct timespec ts = { 0, 20 * 1000000L };
	char            text[128];

	(void) model;
	atomic_fetch_add(&s->computes, 1);
	nanosleep(&ts, NULL);
	snprintf(text, sizeof(text), "answer to %s", prompt);
	*out = strdup(text);
	return *out == NULL;
}

struct worker {
	struct stress *s;
	int            index;
};

static void *
stress_worker(void *arg)
{
	struct worker *w = arg;
	struct stress *s = w->s;
	char           prompt[64], want[128];

	for (;;) {
		char *text   = NULL;
		bool  shared = false;
		int   rv;

		pthread_barrier_wait(&s->start);
		if (atomic_load(&s->stop)) {
			return NULL;
		}
		snprintf(prompt, sizeof(prompt), "round %d", s->round);
		snprintf(want, sizeof(want), "answer to %s", prompt);
		rv = zos_shared_cache_get_or_compute(
		    s->nodes[w->index % STRESS_NODES], "m", prompt,
		    stress_compute, s, zrpc_now_ns() + 10000000000ull, &text,
		    &shared);
		if (rv != 0 || text == NULL || strcmp(text, want) != 0) {
			fprintf(stderr, "round %d thread %d: rv %d text %s\n",
			    s->round, w->index, rv, text ? text : "(null)");
			atomic_fetch_add(&s->failures, 1);
		}
		free(text);
		pthread_barrier_wait(&s->done);
	}
}

static void *
stress_stats(void *arg)
{
	struct stress *s = arg;

	while (!atomic_load(&s->stop)) {
		struct zos_shared_cache_stats st;

		for (int i = 0; i < STRESS_NODES; i++) {
			zos_shared_cache_stats(s->nodes[i], &st);
		}
		struct timespec ts = { 0, 1000000L };
		nanosleep(&ts, NULL);
	}
	return NULL;
}

int
main(void)
{
	struct stress     s = { 0 };
	struct test_redis r;
	struct worker     w[STRESS_THREADS];
	pthread_t         t[STRESS_THREADS], stats;
	char              error[256];
	int               bad = 0;

	signal(SIGPIPE, SIG_IGN);
	if (test_redis_start(&r, NULL) != 0) {
		return 1;
	}
	struct zos_shared_cache_config config = {
		.url = r.url, .retry_ms = 20, .io_timeout_ms = 200
	};
	for (int i = 0; i < STRESS_NODES; i++) {
		s.nodes[i] =
		    zos_shared_cache_create(&config, error, sizeof(error));
		if (s.nodes[i] == NULL) {
			fprintf(stderr, "create: %s\n", error);
			return 1;
		}
	}
	pthread_barrier_init(&s.start, NULL, STRESS_THREADS + 1);
	pthread_barrier_init(&s.done, NULL, STRESS_THREADS + 1);
	for (int i = 0; i < STRESS_THREADS; i++) {
		w[i] = (struct worker) { .s = &s, .index = i };
		pthread_create(&t[i], NULL, stress_worker, &w[i]);
	}
	pthread_create(&stats, NULL, stress_stats, &s);
	for (int round = 0; round < STRESS_ROUNDS; round++) {
		int before = atomic_load(&s.computes);

		if (round == STRESS_DOWN_FROM && test_redis_kill(&r) != 0) {
			bad = 1;
		}
		if (round == STRESS_DOWN_TO && test_redis_restart(&r) != 0) {
			bad = 1;
		}
		s.round = round;
		pthread_barrier_wait(&s.start);
		pthread_barrier_wait(&s.done);
		if (round < STRESS_DOWN_FROM &&
		    atomic_load(&s.computes) - before != 1) {
			fprintf(stderr, "round %d: %d computes, want 1\n",
			    round, atomic_load(&s.computes) - before);
			bad = 1;
		}
	}
	atomic_store(&s.stop, true);
	pthread_barrier_wait(&s.start);
	for (int i = 0; i < STRESS_THREADS; i++) {
		pthread_join(t[i], NULL);
	}
	pthread_join(stats, NULL);
	struct zos_shared_cache_stats st;
	zos_shared_cache_stats(s.nodes[0], &st);
	if (st.outages < 1 || !st.up) {
		fprintf(stderr,
		    "node 1: %llu outages, up %d after the restart\n",
		    (unsigned long long) st.outages, (int) st.up);
		bad = 1;
	}
	for (int i = 0; i < STRESS_NODES; i++) {
		zos_shared_cache_destroy(s.nodes[i]);
	}
	pthread_barrier_destroy(&s.start);
	pthread_barrier_destroy(&s.done);
	test_redis_stop(&r);
	if (atomic_load(&s.failures) != 0) {
		bad = 1;
	}
	printf("%s: %d rounds, %d computes\n", bad ? "FAIL" : "ok",
	    STRESS_ROUNDS, atomic_load(&s.computes));
	return bad;
}
