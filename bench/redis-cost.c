/*
 * zos-redis-cost: what one shared-cache read costs through each of the two
 * ways zosd could talk to Redis, on this machine, against a private
 * redis-server (tests/support/redis.c starts it on a unix socket).
 *
 *   pool   the way zosd does it (zos/cache/shared_cache.c): the worker
 *          thread takes a blocking hiredis connection from a small pool,
 *          runs GET, decodes the value (a hit of one 200-byte answer).
 *   local  the baseline: a hit in the node's own LRU (state/cache.h),
 *          what every hit after the first costs on each node.
 *   async  hiredis's async API on one event thread with a poll(2) loop:
 *          the worker queues its GET, wakes the event thread (eventfd),
 *          and sleeps on a condition variable until the reply callback
 *          signals it; the event thread sends and reads for every worker.
 *
 * C callers (threads, closed loop) each run GETs of the same key for S
 * seconds. Reported per mode and C: calls/s, mean latency, and the client
 * process's CPU time per call (user + system, getrusage): the per-call
 * cost the issue asks about, since on 2 cores the CPU a call burns is
 * what caps the node's throughput. Redis's own CPU is the same for both
 * (the same commands reach it) and is not counted.
 *
 * usage: zos-redis-cost [--seconds S] [--callers "1 4 16"] [--pool N]
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "redis.h"
#include "shared_cache.h"
#include "zrpc/clock.h"

#define COST_MAX_CALLERS 64
#define COST_MODEL "builtin:echo"
#define COST_PROMPT "is 91 a prime number? explain in one line"

/* ---- the async way: one event thread, hiredis async, a poll loop ---- */

struct async_req {
	struct async_req *next;
	pthread_mutex_t   mu;
	pthread_cond_t    cv;
	bool              done; /* guarded by: mu */
	size_t            len;  /* the reply's length */
	const char       *key;
};

struct async_loop {
	redisAsyncContext *ac;
	int                efd;
	bool               want_read;  /* event thread only */
	bool               want_write; /* event thread only */
	pthread_mutex_t    mu;
	struct async_req  *head; /* guarded by: mu */
	struct async_req  *tail; /* guarded by: mu */
	atomic_bool        stop;
	pthread_t          thread;
};

static void
async_add_read(void *data)
{
	((struct async_loop *) data)->want_read = true;
}

static void
async_del_read(void *data)
{
	((struct async_loop *) data)->want_read = false;
}

static void
async_add_write(void *data)
{
	((struct async_loop *) data)->want_write = true;
}

static void
async_del_write(void *data)
{
	((struct async_loop *) data)->want_write = false;
}

static void
async_cleanup(void *data)
{
	struct async_loop *loop = data;

	loop->want_read  = false;
	loop->want_write = false;
}

static void
async_on_reply(redisAsyncContext *ac, void *r, void *privdata)
{
	struct async_req *req   = privdata;
	redisReply       *reply = r;

	(void) ac;
	pthread_mutex_lock(&req->mu);
	req->len  = reply != NULL && reply->type == REDIS_REPLY_STRING
	     ? reply->len
	     : 0;
	req->done = true;
	pthread_cond_signal(&req->cv);
	pthread_mutex_unlock(&req->mu);
}

static void *
async_thread(void *arg)
{
	struct async_loop *loop = arg;

	while (!atomic_load(&loop->stop)) {
		struct pollfd pfd[2] = {
			{ .fd       = loop->ac->c.fd,
			    .events = (short) ((loop->want_read ? POLLIN : 0) |
			        (loop->want_write ? POLLOUT : 0)) },
			{ .fd = loop->efd, .events = POLLIN },
		};
		struct async_req *q;
		uint64_t          n;

		if (poll(pfd, 2, 100) < 0 && errno != EINTR) {
			break;
		}
		if (pfd[1].revents & POLLIN) {
			if (read(loop->efd, &n, sizeof(n)) < 0) {
				n = 0;
			}
			pthread_mutex_lock(&loop->mu);
			q          = loop->head;
			loop->head = loop->tail = NULL;
			pthread_mutex_unlock(&loop->mu);
			while (q != NULL) {
				struct async_req *next = q->next;

				redisAsyncCommand(loop->ac, async_on_reply, q,
				    "GET %s", q->key);
				q = next;
			}
		}
		if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			redisAsyncHandleRead(loop->ac);
		}
		if (pfd[0].revents & POLLOUT) {
			redisAsyncHandleWrite(loop->ac);
		}
	}
	return NULL;
}

static int
async_start(struct async_loop *loop, const char *socket_path)
{
	memset(loop, 0, sizeof(*loop));
	loop->ac = redisAsyncConnectUnix(socket_path);
	if (loop->ac == NULL || loop->ac->err != 0) {
		fprintf(stderr, "async connect failed\n");
		return -1;
	}
	loop->ac->ev.data     = loop;
	loop->ac->ev.addRead  = async_add_read;
	loop->ac->ev.delRead  = async_del_read;
	loop->ac->ev.addWrite = async_add_write;
	loop->ac->ev.delWrite = async_del_write;
	loop->ac->ev.cleanup  = async_cleanup;
	loop->want_write      = true; /* finish the non-blocking connect */
	loop->efd             = eventfd(0, EFD_CLOEXEC);
	pthread_mutex_init(&loop->mu, NULL);
	atomic_init(&loop->stop, false);
	return pthread_create(&loop->thread, NULL, async_thread, loop);
}

static void
async_stop(struct async_loop *loop)
{
	uint64_t one = 1;

	atomic_store(&loop->stop, true);
	if (write(loop->efd, &one, sizeof(one)) < 0) {
		perror("eventfd");
	}
	pthread_join(loop->thread, NULL);
	redisAsyncFree(loop->ac);
	close(loop->efd);
	pthread_mutex_destroy(&loop->mu);
}

/* One GET through the event thread; returns the value's length. */
static size_t
async_get(struct async_loop *loop, const char *key)
{
	struct async_req req = { .key = key };
	uint64_t         one = 1;

	pthread_mutex_init(&req.mu, NULL);
	pthread_cond_init(&req.cv, NULL);
	pthread_mutex_lock(&loop->mu);
	if (loop->tail != NULL) {
		loop->tail->next = &req;
	} else {
		loop->head = &req;
	}
	loop->tail = &req;
	pthread_mutex_unlock(&loop->mu);
	if (write(loop->efd, &one, sizeof(one)) < 0) {
		perror("eventfd");
	}
	pthread_mutex_lock(&req.mu);
	while (!req.done) {
		pthread_cond_wait(&req.cv, &req.mu);
	}
	pthread_mutex_unlock(&req.mu);
	pthread_cond_destroy(&req.cv);
	pthread_mutex_destroy(&req.mu);
	return req.len;
}

/* ---- the driver ---- */

enum cost_mode { COST_LOCAL, COST_POOL, COST_ASYNC };

static const char *const cost_mode_names[] = { "local", "pool", "async" };

struct cost_run {
	enum cost_mode           mode;
	struct zos_shared_cache *sc;
	struct async_loop       *loop;
	struct zos_cache        *local;
	const char              *key;
	uint64_t                 until_ns;
	uint64_t                 calls;  /* out */
	uint64_t                 failed; /* out */
};

static int
cost_never(void *arg, const char *model, const char *prompt, char **out)
{
	(void) arg;
	(void) model;
	(void) prompt;
	*out = NULL;
	return 1; /* a miss would be a bug in the set-up */
}

static void *
cost_caller(void *arg)
{
	struct cost_run *run = arg;

	while (zrpc_now_ns() < run->until_ns) {
		if (run->mode == COST_LOCAL) {
			struct zos_cached_response *value  = NULL;
			bool                        cached = false;

			if (zos_cache_get_or_compute(run->local, COST_MODEL,
			        COST_PROMPT, cost_never, NULL, &value,
			        &cached) != 0 ||
			    !cached) {
				run->failed++;
			}
			zos_cache_response_unref(value);
		} else if (run->mode == COST_POOL) {
			char *text   = NULL;
			bool  shared = false;

			if (zos_shared_cache_get_or_compute(run->sc,
			        COST_MODEL, COST_PROMPT, cost_never, NULL, 0,
			        &text, &shared) != 0 ||
			    !shared) {
				run->failed++;
			}
			free(text);
		} else if (async_get(run->loop, run->key) == 0) {
			run->failed++;
		}
		run->calls++;
	}
	return NULL;
}

static double
cost_cpu_us(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double) (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
	    (double) (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static void
cost_measure(enum cost_mode mode, struct zos_shared_cache *sc,
    struct async_loop *loop, struct zos_cache *local, const char *key,
    int callers, double seconds)
{
	struct cost_run runs[COST_MAX_CALLERS];
	pthread_t       threads[COST_MAX_CALLERS];
	uint64_t        start = zrpc_now_ns();
	uint64_t        calls = 0, failed = 0;
	double          cpu0 = cost_cpu_us();
	double          wall_s, cpu;

	for (int i = 0; i < callers; i++) {
		runs[i] = (struct cost_run) { .mode = mode,
			.sc                         = sc,
			.loop                       = loop,
			.local                      = local,
			.key                        = key,
			.until_ns = start + (uint64_t) (seconds * 1e9) };
		pthread_create(&threads[i], NULL, cost_caller, &runs[i]);
	}
	for (int i = 0; i < callers; i++) {
		pthread_join(threads[i], NULL);
		calls += runs[i].calls;
		failed += runs[i].failed;
	}
	wall_s = (double) (zrpc_now_ns() - start) / 1e9;
	cpu    = cost_cpu_us() - cpu0;
	printf("| %-5s | %7d | %9.0f | %12.1f | %11.1f | %6llu |\n",
	    cost_mode_names[mode], callers, (double) calls / wall_s,
	    wall_s * 1e6 * callers / (double) calls, cpu / (double) calls,
	    (unsigned long long) failed);
	fflush(stdout);
}

static int
cost_answer(void *arg, const char *model, const char *prompt, char **out)
{
	char text[256];

	(void) arg;
	(void) model;
	snprintf(text, sizeof(text),
	    "echo: %s -- 91 = 7 x 13, so it is not prime; the answer is "
	    "two hundred bytes or so, as a short model answer would be.",
	    prompt);
	*out = strdup(text);
	return *out == NULL;
}

int
main(int argc, char **argv)
{
	struct test_redis        redis;
	struct async_loop        loop;
	struct zos_lock_domain   domain;
	struct zos_cache         local;
	struct zos_shared_cache *sc;
	char                     error[256];
	char                     key[ZOS_SHARED_CACHE_KEY_LEN];
	double                   seconds = 3;
	const char              *callers = "1 4 16";
	unsigned                 pool    = ZOS_SHARED_CACHE_DEFAULT_POOL;
	char                    *list, *save = NULL;
	char                    *text;
	bool                     shared;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--seconds") == 0) {
			seconds = atof(argv[i + 1]);
		} else if (strcmp(argv[i], "--callers") == 0) {
			callers = argv[i + 1];
		} else if (strcmp(argv[i], "--pool") == 0) {
			pool = (unsigned) atoi(argv[i + 1]);
		} else {
			fprintf(stderr,
			    "usage: zos-redis-cost [--seconds S] "
			    "[--callers \"1 4 16\"] [--pool N]\n");
			return 2;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	if (test_redis_start(&redis, NULL) != 0) {
		return 1;
	}
	struct zos_shared_cache_config config = {
		.url       = redis.url,
		.pool_size = pool,
	};
	sc = zos_shared_cache_create(&config, error, sizeof(error));
	if (sc == NULL) {
		fprintf(stderr, "%s\n", error);
		test_redis_stop(&redis);
		return 1;
	}
	if (zos_shared_cache_get_or_compute(sc, COST_MODEL, COST_PROMPT,
	        cost_answer, NULL, 0, &text, &shared) != 0) {
		fprintf(stderr, "cannot store the value\n");
		return 1;
	}
	/* The local level, holding the same answer: the baseline. */
	zos_lock_domain_init(&domain, false, NULL, NULL);
	if (zos_cache_init(&local, 0, NULL, &domain) != 0 ||
	    zos_cache_store(&local, COST_MODEL, COST_PROMPT, text) != 0) {
		fprintf(stderr, "cannot fill the local cache\n");
		return 1;
	}
	free(text);
	zos_shared_cache_key(sc, COST_MODEL, COST_PROMPT, key);
	if (async_start(&loop, redis.socket) != 0) {
		return 1;
	}
	printf("redis-server on a unix socket; pool of %u blocking "
	       "connections vs hiredis async on one event thread; %.1f s "
	       "per row\n\n",
	    pool, seconds);
	printf("| mode  | callers |   calls/s | wall us/call | CPU us/call | "
	       "failed |\n");
	printf("|-------|---------|-----------|--------------|-------------|"
	       "--------|\n");
	list = strdup(callers);
	for (char *tok = strtok_r(list, " ,", &save); tok != NULL;
	     tok       = strtok_r(NULL, " ,", &save)) {
		int c = atoi(tok);

		if (c < 1 || c > COST_MAX_CALLERS) {
			continue;
		}
		/* Alternate, so that drift hits both alike. */
		cost_measure(COST_LOCAL, sc, &loop, &local, key, c, seconds);
		cost_measure(COST_POOL, sc, &loop, &local, key, c, seconds);
		cost_measure(COST_ASYNC, sc, &loop, &local, key, c, seconds);
	}
	free(list);
	async_stop(&loop);
	zos_cache_finish(&local);
	zos_shared_cache_destroy(sc);
	test_redis_stop(&redis);
	return 0;
}
