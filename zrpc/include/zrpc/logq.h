/*
 * zrpc log queue: log lines that never make a caller wait.
 *
 * A program that writes its log lines with write(2) on the thread that
 * serves a call stalls that call whenever the reader of the log is slow:
 * a terminal scrolled back, a pipe into a collector that paused, a full
 * disk. The queue takes formatted lines from any thread into a bounded
 * buffer and one writer thread of its own writes them to a file
 * descriptor. Pushing a line copies it under a short lock and never waits
 * for the writer; when the buffer is full (in lines or in bytes) the line
 * is dropped and counted, so a stalled reader costs lines, never calls.
 * The writer gathers lines for about 10 ms between writes (waking it for
 * every line would cost more than formatting it), so a line reaches the
 * descriptor up to that much later than it was pushed.
 *
 * The writer never blocks for long either, so that the queue can always
 * be closed in bounded time: on a socket it sends with MSG_DONTWAIT; to a
 * regular file it writes up to 64 KiB at a time; on anything else (a
 * pipe, a terminal) it waits with poll(2) until the descriptor is
 * writable, in slices that let it notice a close, and then writes at most
 * PIPE_BUF bytes, which a writable pipe takes whole. EAGAIN (a descriptor
 * someone made non-blocking) waits again; EPIPE (the reader is gone) and
 * other errors drop the line being written, counted as dropped. SIGPIPE
 * is blocked on the writer thread, so the process does not die of it even
 * when it does not ignore SIGPIPE. The queue never changes the
 * descriptor's flags: stderr's open file description is shared with the
 * parent process.
 *
 * Memory: the buffer (max_bytes) and one length per line (max_lines) are
 * allocated once at create; a push allocates nothing. Lines keep their
 * order. Every function is safe from any thread; close must be the last
 * call.
 */
#ifndef ZRPC_LOGQ_H
#define ZRPC_LOGQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "zrpc/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct zrpc_logq zrpc_logq;

typedef struct zrpc_logq_config {
	int    fd;        /* where lines go (not closed by the queue) */
	size_t max_lines; /* lines queued at most; 0 = 8192 */
	size_t max_bytes; /* bytes queued at most; 0 = 1 MiB */
} zrpc_logq_config;

/* What the queue has done so far; a consistent copy. */
struct zrpc_logq_stats {
	uint64_t pushed;  /* lines accepted by push */
	uint64_t written; /* lines written whole to the descriptor */
	/* Lines lost: refused by a full queue, failed writes (EPIPE, EIO),
	 * and those still queued when close gave up waiting. */
	uint64_t dropped;
	uint64_t write_errors; /* write(2)s that failed (not EAGAIN) */
	size_t   queued_lines; /* in the queue right now */
	size_t   queued_bytes;
};

/*
 * Creates a queue writing to CONFIG->fd and starts its writer thread
 * (which inherits the caller's signal mask: block signals first if a
 * signal thread should take them). *OUT is the caller's
 * (zrpc_logq_close). Returns INVALID_ARGUMENT for a negative fd, a line
 * bound over 2^24 or a byte bound over 2^30; RESOURCE_EXHAUSTED when
 * memory or the thread cannot be had (*OUT is NULL then).
 */
zrpc_status zrpc_logq_create(zrpc_logq **out, const zrpc_logq_config *config);

/*
 * Queues LEN bytes at LINE (copied; normally one line with its '\n', but
 * the queue does not look inside). Never blocks beyond a short lock held
 * by other pushes and the writer's bookkeeping. Returns true when queued;
 * false when the line is dropped: the queue is full, LEN is 0 or more than
 * max_bytes, or the queue is closing. A drop is counted.
 */
bool zrpc_logq_push(zrpc_logq *q, const char *line, size_t len);

/* Lines dropped so far (stats.dropped), read without the lock. */
uint64_t zrpc_logq_dropped(const zrpc_logq *q);

/* Fills *OUT with the queue's counters. */
void zrpc_logq_stats(zrpc_logq *q, struct zrpc_logq_stats *out);

/*
 * Waits until every line queued before the call has been written (or
 * dropped), for at most TIMEOUT_MS. Returns true when they have. For a
 * program about to _exit: the queue keeps running. NULL: true at once.
 */
bool zrpc_logq_flush(zrpc_logq *q, unsigned timeout_ms);

/*
 * Stops taking lines, lets the writer write what is queued for at most
 * TIMEOUT_MS, then stops the writer (joined: it is never stuck in a write
 * that does not return) and frees Q. Lines still queued then are counted
 * as dropped and lost. Returns how many lines that was (0: all written).
 * NULL is a no-op returning 0.
 */
size_t zrpc_logq_close(zrpc_logq *q, unsigned timeout_ms);

#ifdef __cplusplus
}
#endif

#endif /* ZRPC_LOGQ_H */
