/*
 * Worker pool for handlers that may block.
 *
 * Calls whose method is declared blocking are handed here from nng's aio
 * completion thread, so that a slow handler (a backend call, an fsync)
 * never stalls the threads that move messages. The queue is a FIFO of
 * intrusive nodes; it needs no bound of its own because every queued item
 * is a call slot, and slots are bounded by max_inflight.
 *
 * Locking: the pool's mutex guards the queue and the stopping flag; it is
 * an internal runtime lock, never held while a job runs.
 */
#ifndef ZRPC_WORKERS_H
#define ZRPC_WORKERS_H

#include <pthread.h>
#include <stdbool.h>

struct zrpc_worker_job {
	struct zrpc_worker_job *next;
	void (*run)(struct zrpc_worker_job *job);
};

struct zrpc_worker_pool {
	pthread_mutex_t         mutex;
	pthread_cond_t          ready;
	struct zrpc_worker_job *head;     /* guarded by: mutex */
	struct zrpc_worker_job *tail;     /* guarded by: mutex */
	bool                    stopping; /* guarded by: mutex */
	unsigned                n_threads;
	pthread_t              *threads;
};

/*
 * Starts N threads. Returns 0, or an errno value (nothing is left running
 * on failure).
 */
int zrpc_worker_pool_start(struct zrpc_worker_pool *pool, unsigned n);

/* Queues JOB; one worker will call JOB->run(JOB). */
void zrpc_worker_pool_submit(
    struct zrpc_worker_pool *pool, struct zrpc_worker_job *job);

/*
 * Stops the pool: workers finish the job they are running, jobs still
 * queued are not run; joins every thread. Safe on a pool that failed to
 * start or was already stopped.
 */
void zrpc_worker_pool_stop(struct zrpc_worker_pool *pool);

#endif /* ZRPC_WORKERS_H */
