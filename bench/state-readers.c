/*
 * zos-state-readers: do readers of the zOS state wait on each other?
 *
 * Runs Skills/Get's and Cache/Lookup's state operations (zos_skills_get,
 * zos_cache_lookup of a hit) in a tight loop on 1 thread, then on N
 * threads, for a fixed time each, and prints reads/s and the ratio. With
 * reader/writer locks and atomic recency stamps, N readers should scale
 * with cores (DESIGN.md section 9: 2 readers >= 1.7 x one on 2 cores).
 * Also prints each lock's wait and hold p99 from its own histograms.
 *
 *   zos-state-readers [--threads N] [--seconds S]
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "state.h"

struct readers_run {
	struct zos_state    *state;
	int                  kind; /* 0 skills, 1 cache */
	atomic_bool          stop;
	atomic_uint_fast64_t reads;
};

/* The arena stand-in for Cache/Lookup's copy: a per-thread buffer. */
static void *
readers_alloc(void *arg, size_t size)
{
	return size <= 256 ? arg : NULL;
}

/* What Skills/Get copies out, minus the arena: size and version. */
static void
readers_visit(void *arg, const struct zos_skill_vector *v)
{
	uint64_t *sum = arg;

	*sum += v->version + v->n + (uint64_t) v->skills[0].level;
}

static void *
readers_main(void *arg)
{
	struct readers_run *run   = arg;
	uint64_t            reads = 0, sum = 0;
	char                buf[256];

	while (!atomic_load_explicit(&run->stop, memory_order_relaxed)) {
		for (int i = 0; i < 256; i++) {
			if (run->kind == 0) {
				zos_skills_read(
				    &run->state->skills, readers_visit, &sum);
			} else {
				size_t len;
				zos_cache_lookup_copy(&run->state->cache,
				    "model", "prompt", readers_alloc, buf,
				    &len);
				sum += len;
			}
		}
		reads += 256;
	}
	atomic_fetch_add(&run->reads, reads + (sum & 0)); /* keep sum */
	return NULL;
}

/* Reads per second with THREADS readers of KIND over SECONDS. */
static double
readers_measure(struct zos_state *state, int kind, int threads, double seconds)
{
	struct readers_run run = { .state = state, .kind = kind };
	pthread_t          t[64];
	struct timespec    pause = { (time_t) seconds,
		   (long) ((seconds - (double) (time_t) seconds) * 1e9) };

	for (int i = 0; i < threads; i++) {
		pthread_create(&t[i], NULL, readers_main, &run);
	}
	nanosleep(&pause, NULL); /* the measurement window itself */
	atomic_store(&run.stop, true);
	for (int i = 0; i < threads; i++) {
		pthread_join(t[i], NULL);
	}
	return (double) atomic_load(&run.reads) / seconds;
}

static void
readers_lock_line(const struct zos_lock *lock)
{
	printf("| %s | %llu | %llu ns | %llu ns |\n", lock->name,
	    (unsigned long long) atomic_load(&lock->acquisitions),
	    (unsigned long long) zrpc_histogram_quantile(lock->wait_ns, 0.99),
	    (unsigned long long) zrpc_histogram_quantile(lock->hold_ns, 0.99));
}

int
main(int argc, char **argv)
{
	struct zos_state_config config  = { 0 };
	int                     threads = 2;
	double                  seconds = 2.0;
	char                    error[256];
	const char             *names[] = { "Skills/Get (zos_skills_read)",
		            "Cache/Lookup hit (zos_cache_lookup_copy)" };

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
			threads = atoi(argv[++i]);
		} else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
			seconds = atof(argv[++i]);
		} else {
			fprintf(stderr,
			    "usage: zos-state-readers [--threads N] "
			    "[--seconds S]\n");
			return 2;
		}
	}
	if (threads < 1 || threads > 64 || seconds <= 0) {
		fprintf(stderr, "zos-state-readers: 1..64 threads, S > 0\n");
		return 2;
	}
	struct zos_state *state =
	    zos_state_create(&config, error, sizeof(error));
	if (state == NULL) {
		fprintf(stderr, "zos-state-readers: %s\n", error);
		return 1;
	}
	zos_cache_store(&state->cache, "model", "prompt", "a cached answer");

	printf("| read | 1 thread reads/s | %d threads reads/s | ratio |\n",
	    threads);
	printf("|---|---:|---:|---:|\n");
	for (int kind = 0; kind < 2; kind++) {
		double one  = readers_measure(state, kind, 1, seconds);
		double many = readers_measure(state, kind, threads, seconds);
		printf("| %s | %.0f | %.0f | %.2f |\n", names[kind], one, many,
		    many / one);
	}
	printf("\n| lock | acquisitions | wait p99 | hold p99 |\n");
	printf("|---|---:|---:|---:|\n");
	readers_lock_line(&state->skills.lock);
	readers_lock_line(&state->cache.lock);
	zos_state_destroy(state);
	return 0;
}
