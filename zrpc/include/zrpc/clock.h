/*
 * The one clock the runtime and the state time things with: CLOCK_MONOTONIC
 * in nanoseconds (deadlines, latencies, lock wait and hold times).
 */
#ifndef ZRPC_CLOCK_H
#define ZRPC_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Monotonic time in nanoseconds; only differences are meaningful. */
static inline uint64_t
zrpc_now_ns(void)
{
	struct timespec ts;

	(void) clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

#endif /* ZRPC_CLOCK_H */
