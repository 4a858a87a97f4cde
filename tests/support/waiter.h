/*
 * A completion counter for tests: callbacks add to it, the test waits for
 * a number of completions with a deadline (never unbounded). No Criterion
 * dependency, so stress programs under TSan use it too.
 */
#ifndef ZOS_TEST_WAITER_H
#define ZOS_TEST_WAITER_H

#include <pthread.h>

struct test_waiter {
	pthread_mutex_t mtx;
	pthread_cond_t  cv;
	int             done; /* guarded by: mtx */
};

void test_waiter_init(struct test_waiter *w);
void test_waiter_fini(struct test_waiter *w);

/* Counts one completion and wakes waiters. */
void test_waiter_add(struct test_waiter *w);

/* Completions so far. */
int test_waiter_done(struct test_waiter *w);

/* Waits until N completions, at most TIMEOUT_MS; returns the count. */
int test_waiter_wait(struct test_waiter *w, int n, int timeout_ms);

#endif /* ZOS_TEST_WAITER_H */
