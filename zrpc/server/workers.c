/*
 * Worker pool; see workers.h. Signals are blocked in every worker so that
 * the program's signal thread (sigwait in main) receives them.
 */
#include "workers.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>

static void *
workers_main(void *arg)
{
	struct zrpc_worker_pool *pool = arg;

	for (;;) {
		struct zrpc_worker_job *job;

		pthread_mutex_lock(&pool->mutex);
		while (pool->head == NULL && !pool->stopping) {
			pthread_cond_wait(&pool->ready, &pool->mutex);
		}
		if (pool->stopping) {
			pthread_mutex_unlock(&pool->mutex);
			return NULL;
		}
		job        = pool->head;
		pool->head = job->next;
		if (pool->head == NULL) {
			pool->tail = NULL;
		}
		pthread_mutex_unlock(&pool->mutex);

		job->next = NULL;
		job->run(job);
	}
}

int
zrpc_worker_pool_start(struct zrpc_worker_pool *pool, unsigned n)
{
	sigset_t all, old;
	int      rv;

	pool->head      = NULL;
	pool->tail      = NULL;
	pool->stopping  = false;
	pool->n_threads = 0;
	if ((pool->threads = calloc(n, sizeof(*pool->threads))) == NULL) {
		return ENOMEM;
	}
	pthread_mutex_init(&pool->mutex, NULL);
	pthread_cond_init(&pool->ready, NULL);

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (unsigned i = 0; i < n; i++) {
		rv = pthread_create(
		    &pool->threads[i], NULL, workers_main, pool);
		if (rv != 0) {
			pthread_sigmask(SIG_SETMASK, &old, NULL);
			zrpc_worker_pool_stop(pool);
			return rv;
		}
		pool->n_threads++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return 0;
}

void
zrpc_worker_pool_submit(
    struct zrpc_worker_pool *pool, struct zrpc_worker_job *job)
{
	job->next = NULL;
	pthread_mutex_lock(&pool->mutex);
	if (pool->tail == NULL) {
		pool->head = job;
	} else {
		pool->tail->next = job;
	}
	pool->tail = job;
	pthread_cond_signal(&pool->ready);
	pthread_mutex_unlock(&pool->mutex);
}

void
zrpc_worker_pool_stop(struct zrpc_worker_pool *pool)
{
	if (pool->threads == NULL) {
		return;
	}
	pthread_mutex_lock(&pool->mutex);
	pool->stopping = true;
	pthread_cond_broadcast(&pool->ready);
	pthread_mutex_unlock(&pool->mutex);
	for (unsigned i = 0; i < pool->n_threads; i++) {
		pthread_join(pool->threads[i], NULL);
	}
	free(pool->threads);
	pool->threads   = NULL;
	pool->n_threads = 0;
	pthread_mutex_destroy(&pool->mutex);
	pthread_cond_destroy(&pool->ready);
}
