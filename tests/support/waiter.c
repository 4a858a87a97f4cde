/*
 * Completion counter for tests; see waiter.h.
 */
#include "waiter.h"

#include <time.h>

#include "zrpc/clock.h"

void
test_waiter_init(struct test_waiter *w)
{
	pthread_condattr_t attr;

	pthread_mutex_init(&w->mtx, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cv, &attr);
	pthread_condattr_destroy(&attr);
	w->done = 0;
}

void
test_waiter_fini(struct test_waiter *w)
{
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mtx);
}

void
test_waiter_add(struct test_waiter *w)
{
	pthread_mutex_lock(&w->mtx);
	w->done++;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mtx);
}

int
test_waiter_done(struct test_waiter *w)
{
	int done;

	pthread_mutex_lock(&w->mtx);
	done = w->done;
	pthread_mutex_unlock(&w->mtx);
	return done;
}

/* Waits until N completions, at most TIMEOUT_MS; returns the count. */
int
test_waiter_wait(struct test_waiter *w, int n, int timeout_ms)
{
	struct timespec deadline;
	int             done;

	deadline =
	    zrpc_timespec_after_ms(CLOCK_MONOTONIC, (uint32_t) timeout_ms);
	pthread_mutex_lock(&w->mtx);
	while (w->done < n &&
	    pthread_cond_timedwait(&w->cv, &w->mtx, &deadline) == 0) { }
	done = w->done;
	pthread_mutex_unlock(&w->mtx);
	return done;
}
