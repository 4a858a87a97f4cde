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

#ifdef __cplusplus
}
#endif

#endif /* ZRPC_CLOCK_H */
