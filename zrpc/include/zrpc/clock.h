/*
 * The one clock the runtime and the state time things with: CLOCK_MONOTONIC
 * in nanoseconds (deadlines, latencies, lock wait and hold times).
 *
 * Public because the runtime hands out times on this clock (an
 * interceptor's latency_ns, the method histograms), and a program that
 * measures alongside them should read the same clock the same way. It is
 * static inline, so it adds no symbol to libzrpc and no ABI to keep; C and
 * C++ compile it alike.
 */
#ifndef ZRPC_CLOCK_H
#define ZRPC_CLOCK_H

#include <stdint.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Monotonic time in nanoseconds; only differences are meaningful. */
static inline uint64_t
zrpc_now_ns(void)
{
	struct timespec ts;

	(void) clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

/*
 * The time MS milliseconds from now on CLOCK, as the absolute timespec
 * that pthread_cond_timedwait (on a condition variable of that clock) and
 * clock_nanosleep with TIMER_ABSTIME want.
 */
static inline struct timespec
zrpc_timespec_after_ms(clockid_t clock, uint32_t ms)
{
	struct timespec ts;

	(void) clock_gettime(clock, &ts);
	ts.tv_sec += (time_t) (ms / 1000u);
	ts.tv_nsec += (long) (ms % 1000u) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

#ifdef __cplusplus
}
#endif

#endif /* ZRPC_CLOCK_H */
