/*
 * The log queue; see logq.h.
 *
 * The lines live in one ring of bytes (max_bytes) with their lengths in a
 * second ring (max_lines). Positions are running totals (bytes and lines
 * ever pushed, ever released), so full, empty and "written up to here"
 * are plain subtractions, and the physical index is the total modulo the
 * ring's size; a line may wrap round the end of the byte ring.
 *
 * Producers copy into the free part of the rings under mu and move the
 * heads. The writer takes a snapshot of the heads under mu, then reads and
 * writes the queued part without it: producers never touch bytes between
 * the tail and the head, and only the writer moves the tail, which it
 * does (under mu) as lines are written, so that room comes back while a
 * long backlog is still being written.
 *
 * Waking the writer for every line would cost a futex wake and two
 * context switches per line (measured with perf under 16 callers logging
 * every call: about a quarter of zosd's CPU in wake-ups). So after each
 * batch the writer lingers for LOGQ_LINGER_MS, gathering lines without
 * being signalled, and writes them together; only when a linger ends with
 * nothing queued does it sleep until signalled, and then the first push
 * wakes it. A push also cuts a linger short once a quarter of the queue
 * is used, and flush and close always do. So a busy queue costs a push no
 * system call, an idle one costs no wake-ups, and a line waits about
 * LOGQ_LINGER_MS at most (its timestamp is taken when it is formatted).
 *
 * A write never takes long: on a socket, sendmsg with MSG_DONTWAIT; on a
 * regular file, a writev of up to 64 KiB (a file is always writable); on
 * anything else (a pipe, a terminal), poll for POLLOUT in slices of
 * LOGQ_SLICE_MS (checking the stop flag between them), then a writev of
 * at most PIPE_BUF bytes, which a pipe that polled writable takes whole
 * without blocking. SIGPIPE is
 * blocked on the writer thread so that a reader that went away gives
 * EPIPE, not a dead process (the signal, directed at that thread, stays
 * pending on it and dies with it).
 */
#include "zrpc/logq.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define LOGQ_DEFAULT_LINES 8192
#define LOGQ_DEFAULT_BYTES (1u << 20)
#define LOGQ_MAX_LINES (1u << 24)
#define LOGQ_MAX_BYTES (1u << 30) /* a line's length fits its uint32_t */
#define LOGQ_SLICE_MS 50
#define LOGQ_LINGER_MS 10
#define LOGQ_CHUNK (64u * 1024) /* a write to a socket or a file */
/* After close's timeout, how long the writer has to notice the stop. */
#define LOGQ_JOIN_MS (4 * LOGQ_SLICE_MS)

struct zrpc_logq {
	int       fd;
	bool      is_socket; /* constant */
	bool      is_file;   /* constant: a regular file */
	size_t    max_lines; /* constant */
	size_t    max_bytes; /* constant */
	char     *bytes;     /* max_bytes; see the top of the file */
	uint32_t *lens;      /* max_lines */
	pthread_t writer;

	pthread_mutex_t mu;
	pthread_cond_t  work; /* writer: lines queued, or closing */
	pthread_cond_t  idle; /* flush and close: the tail moved */
	uint64_t        byte_head, byte_tail; /* guarded by: mu */
	uint64_t        line_head, line_tail; /* guarded by: mu */
	bool            writer_sleeping;      /* guarded by: mu */
	bool            writer_lingering;     /* guarded by: mu */
	bool            writer_hurried;       /* guarded by: mu */
	bool            closing;              /* guarded by: mu */
	unsigned        idle_waiters;         /* guarded by: mu */

	atomic_bool          stop; /* the writer returns at once */
	atomic_uint_fast64_t pushed;
	atomic_uint_fast64_t written;
	atomic_uint_fast64_t dropped;
	atomic_uint_fast64_t write_errors;
};

/* Now + MS on CLOCK (CLOCK_MONOTONIC for the queue's conditions). */
static struct timespec
logq_deadline(clockid_t clock, unsigned ms)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	ts.tv_sec += (time_t) (ms / 1000);
	ts.tv_nsec += (long) (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

static void
logq_count_drop(zrpc_logq *q, uint64_t n)
{
	atomic_fetch_add_explicit(&q->dropped, n, memory_order_relaxed);
}

bool
zrpc_logq_push(zrpc_logq *q, const char *line, size_t len)
{
	bool   wake;
	size_t at, first;

	if (len == 0 || len > q->max_bytes) {
		logq_count_drop(q, 1);
		return false;
	}
	pthread_mutex_lock(&q->mu);
	if (q->closing || q->line_head - q->line_tail >= q->max_lines ||
	    q->byte_head - q->byte_tail + len > q->max_bytes) {
		pthread_mutex_unlock(&q->mu);
		logq_count_drop(q, 1);
		return false;
	}
	at    = (size_t) (q->byte_head % q->max_bytes);
	first = q->max_bytes - at < len ? q->max_bytes - at : len;
	memcpy(q->bytes + at, line, first);
	memcpy(q->bytes, line + first, len - first);
	q->lens[q->line_head % q->max_lines] = (uint32_t) len;
	q->line_head++;
	q->byte_head += len;
	wake = q->writer_sleeping;
	if (q->writer_lingering && !q->writer_hurried &&
	    (q->line_head - q->line_tail >= q->max_lines / 4 ||
	        q->byte_head - q->byte_tail >= q->max_bytes / 4)) {
		q->writer_hurried = true; /* once per linger */
		wake              = true;
	}
	q->writer_sleeping = false;
	pthread_mutex_unlock(&q->mu);
	atomic_fetch_add_explicit(&q->pushed, 1, memory_order_relaxed);
	if (wake) {
		pthread_cond_signal(&q->work);
	}
	return true;
}

/*
 * The writer's view of one batch: lines [LINE, LINE_END) from byte
 * position POS (OFF bytes into line LINE already written).
 */
struct logq_cursor {
	uint64_t line, line_end;
	uint64_t pos; /* byte position of the next byte to write */
	size_t   off; /* bytes of line LINE written */
};

/*
 * Releases the lines from the tail up to DONE_LINE (whose bytes end at
 * DONE_POS): N_WRITTEN of them written, the rest lost to write errors.
 */
static void
logq_release(
    zrpc_logq *q, uint64_t done_line, uint64_t done_pos, uint64_t n_written)
{
	uint64_t n;

	pthread_mutex_lock(&q->mu);
	n = done_line - q->line_tail;
	/* Counted before the tail moves: a flush that sees the lines gone
	 * sees them counted as written or dropped too. */
	atomic_fetch_add_explicit(
	    &q->written, n_written, memory_order_relaxed);
	if (n > n_written) {
		logq_count_drop(q, n - n_written);
	}
	q->line_tail = done_line;
	q->byte_tail = done_pos;
	if (q->idle_waiters > 0) {
		pthread_cond_broadcast(&q->idle);
	}
	pthread_mutex_unlock(&q->mu);
}

/*
 * Fills IOV (two entries at most: the ring may wrap) with the next piece
 * to write from C: the rest of the current line, then whole lines, up to
 * CAP bytes (a line longer than CAP goes in CAP-sized pieces). Returns the
 * number of entries.
 */
static int
logq_piece(const zrpc_logq *q, const struct logq_cursor *c, size_t cap,
    struct iovec *iov)
{
	size_t   len = q->lens[c->line % q->max_lines] - c->off;
	size_t   at, first;
	uint64_t l;

	if (len > cap) {
		len = cap;
	} else {
		for (l = c->line + 1; l < c->line_end; l++) {
			size_t next = q->lens[l % q->max_lines];

			if (len + next > cap) {
				break;
			}
			len += next;
		}
	}
	at              = (size_t) (c->pos % q->max_bytes);
	first           = q->max_bytes - at < len ? q->max_bytes - at : len;
	iov[0].iov_base = q->bytes + at;
	iov[0].iov_len  = first;
	if (first == len) {
		return 1;
	}
	iov[1].iov_base = q->bytes;
	iov[1].iov_len  = len - first;
	return 2;
}

/* Moves C forward by N written bytes across line ends. */
static void
logq_advance(const zrpc_logq *q, struct logq_cursor *c, size_t n)
{
	c->pos += n;
	while (n > 0) {
		size_t rest = q->lens[c->line % q->max_lines] - c->off;

		if (n < rest) {
			c->off += n;
			return;
		}
		n -= rest;
		c->off = 0;
		c->line++;
	}
}

/*
 * Waits until Q's descriptor takes bytes, in slices, while the queue is
 * not stopped. Returns false when stopped. Sockets are not waited for
 * here: MSG_DONTWAIT says EAGAIN instead.
 */
static bool
logq_wait_writable(zrpc_logq *q)
{
	struct pollfd pfd = { .fd = q->fd, .events = POLLOUT };

	while (!atomic_load(&q->stop)) {
		int rv = poll(&pfd, 1, LOGQ_SLICE_MS);

		if (rv > 0 || (rv < 0 && errno != EINTR)) {
			/* Writable, or an error the write will report. */
			return true;
		}
	}
	return false;
}

/* One write of IOV; returns bytes written, or -1 with errno. */
static ssize_t
logq_write(zrpc_logq *q, struct iovec *iov, int n_iov)
{
	if (q->is_socket) {
		struct msghdr msg = { .msg_iov = iov,
			.msg_iovlen            = (size_t) n_iov };

		return sendmsg(q->fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
	}
	return writev(q->fd, iov, n_iov);
}

/*
 * Writes the batch in C, releasing lines as they are written. Returns
 * false when the queue was stopped before it was done.
 */
static bool
logq_write_batch(zrpc_logq *q, struct logq_cursor *c)
{
	size_t   cap = q->is_socket || q->is_file ? LOGQ_CHUNK : PIPE_BUF;
	uint64_t n_written = 0;

	while (c->line < c->line_end) {
		struct iovec iov[2];
		int          n_iov = logq_piece(q, c, cap, iov);
		uint64_t     before;
		ssize_t      n;

		if (!q->is_socket && !q->is_file && !logq_wait_writable(q)) {
			return false;
		}
		n = logq_write(q, iov, n_iov);
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			/* A full socket, or a descriptor someone else made
			 * non-blocking: wait for room, in slices. */
			struct pollfd pfd = { .fd = q->fd, .events = POLLOUT };

			if (atomic_load(&q->stop)) {
				return false;
			}
			(void) poll(&pfd, 1, LOGQ_SLICE_MS);
			continue;
		}
		before = c->line;
		if (n <= 0) {
			/* EPIPE, EIO, ENOSPC, EBADF...: this line is lost;
			 * the next ones are tried (the disk may have room
			 * again). */
			atomic_fetch_add_explicit(
			    &q->write_errors, 1, memory_order_relaxed);
			logq_advance(
			    q, c, q->lens[c->line % q->max_lines] - c->off);
		} else {
			logq_advance(q, c, (size_t) n);
			n_written += c->line - before;
		}
		if (c->line != before) {
			logq_release(q, c->line, c->pos - c->off, n_written);
			n_written = 0;
		}
	}
	return true;
}

static void *
logq_writer(void *arg)
{
	zrpc_logq *q = arg;
	sigset_t   pipe_set;

	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, NULL);
	for (bool lingering = false;; lingering = true) {
		struct logq_cursor c;

		pthread_mutex_lock(&q->mu);
		if (lingering) {
			/* After a batch: gather lines for a while. */
			struct timespec deadline =
			    logq_deadline(CLOCK_MONOTONIC, LOGQ_LINGER_MS);
			int rv = 0;

			q->writer_lingering = true;
			q->writer_hurried   = false;
			while (!q->closing && !q->writer_hurried &&
			    q->idle_waiters == 0 && rv != ETIMEDOUT) {
				rv = pthread_cond_timedwait(
				    &q->work, &q->mu, &deadline);
			}
			q->writer_lingering = false;
		}
		while (q->line_tail == q->line_head && !q->closing) {
			q->writer_sleeping = true;
			pthread_cond_wait(&q->work, &q->mu);
		}
		q->writer_sleeping = false;
		if (q->line_tail == q->line_head) {
			pthread_mutex_unlock(&q->mu); /* closing and empty */
			return NULL;
		}
		c.line     = q->line_tail;
		c.line_end = q->line_head;
		c.pos      = q->byte_tail;
		c.off      = 0;
		pthread_mutex_unlock(&q->mu);
		if (!logq_write_batch(q, &c)) {
			return NULL;
		}
	}
}

zrpc_status
zrpc_logq_create(zrpc_logq **out, const zrpc_logq_config *config)
{
	zrpc_logq         *q;
	pthread_condattr_t attr;
	int                type;
	socklen_t          type_len = sizeof(type);
	struct stat        st;

	*out = NULL;
	if (config->fd < 0 || config->max_lines > LOGQ_MAX_LINES ||
	    config->max_bytes > LOGQ_MAX_BYTES) {
		return zrpc_status_make(ZRPC_INVALID_ARGUMENT,
		    "log queue: fd %d, max_lines %zu (at most %u), max_bytes "
		    "%zu (at most %u)",
		    config->fd, config->max_lines, LOGQ_MAX_LINES,
		    config->max_bytes, LOGQ_MAX_BYTES);
	}
	if ((q = calloc(1, sizeof(*q))) == NULL) {
		goto fail;
	}
	q->fd = config->fd;
	q->max_lines =
	    config->max_lines > 0 ? config->max_lines : LOGQ_DEFAULT_LINES;
	q->max_bytes =
	    config->max_bytes > 0 ? config->max_bytes : LOGQ_DEFAULT_BYTES;
	q->is_socket =
	    getsockopt(q->fd, SOL_SOCKET, SO_TYPE, &type, &type_len) == 0;
	q->is_file = fstat(q->fd, &st) == 0 && S_ISREG(st.st_mode);
	atomic_init(&q->stop, false);
	atomic_init(&q->pushed, 0);
	atomic_init(&q->written, 0);
	atomic_init(&q->dropped, 0);
	atomic_init(&q->write_errors, 0);
	if ((q->bytes = malloc(q->max_bytes)) == NULL ||
	    (q->lens = malloc(q->max_lines * sizeof(*q->lens))) == NULL) {
		goto fail_mem;
	}
	pthread_mutex_init(&q->mu, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&q->work, &attr);
	pthread_cond_init(&q->idle, &attr);
	pthread_condattr_destroy(&attr);
	if (pthread_create(&q->writer, NULL, logq_writer, q) != 0) {
		pthread_cond_destroy(&q->idle);
		pthread_cond_destroy(&q->work);
		pthread_mutex_destroy(&q->mu);
		goto fail_mem;
	}
	*out = q;
	return zrpc_status_ok();

fail_mem:
	free(q->lens);
	free(q->bytes);
	free(q);
fail:
	return zrpc_status_make(ZRPC_RESOURCE_EXHAUSTED,
	    "log queue: no memory or no thread for %zu lines",
	    config->max_lines);
}

uint64_t
zrpc_logq_dropped(const zrpc_logq *q)
{
	return atomic_load_explicit(&q->dropped, memory_order_relaxed);
}

void
zrpc_logq_stats(zrpc_logq *q, struct zrpc_logq_stats *out)
{
	pthread_mutex_lock(&q->mu);
	out->queued_lines = (size_t) (q->line_head - q->line_tail);
	out->queued_bytes = (size_t) (q->byte_head - q->byte_tail);
	pthread_mutex_unlock(&q->mu);
	out->pushed       = atomic_load(&q->pushed);
	out->written      = atomic_load(&q->written);
	out->dropped      = atomic_load(&q->dropped);
	out->write_errors = atomic_load(&q->write_errors);
}

/*
 * Waits (mu held) until the tail reaches LINE or DEADLINE passes. Returns
 * true when it did.
 */
static bool
logq_wait_tail(zrpc_logq *q, uint64_t line, const struct timespec *deadline)
{
	int rv = 0;

	q->idle_waiters++;
	pthread_cond_signal(&q->work); /* a lingering writer: write now */
	while (q->line_tail < line && rv != ETIMEDOUT) {
		rv = pthread_cond_timedwait(&q->idle, &q->mu, deadline);
	}
	q->idle_waiters--;
	return q->line_tail >= line;
}

bool
zrpc_logq_flush(zrpc_logq *q, unsigned timeout_ms)
{
	struct timespec deadline;
	bool            done;

	if (q == NULL) {
		return true;
	}
	deadline = logq_deadline(CLOCK_MONOTONIC, timeout_ms);
	pthread_mutex_lock(&q->mu);
	done = logq_wait_tail(q, q->line_head, &deadline);
	pthread_mutex_unlock(&q->mu);
	return done;
}

size_t
zrpc_logq_close(zrpc_logq *q, unsigned timeout_ms)
{
	struct timespec deadline;
	size_t          left;

	if (q == NULL) {
		return 0;
	}
	deadline = logq_deadline(CLOCK_MONOTONIC, timeout_ms);
	pthread_mutex_lock(&q->mu);
	q->closing = true;
	pthread_cond_signal(&q->work);
	(void) logq_wait_tail(q, q->line_head, &deadline);
	left = (size_t) (q->line_head - q->line_tail);
	atomic_store(&q->stop, true);
	pthread_mutex_unlock(&q->mu);
	logq_count_drop(q, left);
	/* pthread_timedjoin_np's deadline is on CLOCK_REALTIME. */
	deadline = logq_deadline(CLOCK_REALTIME, LOGQ_JOIN_MS);
	if (pthread_timedjoin_np(q->writer, NULL, &deadline) != 0) {
		/* Stuck in a write that does not return (a terminal held by
		 * ^S, a hung network file system): leave it the queue. */
		pthread_detach(q->writer);
		return left;
	}
	pthread_cond_destroy(&q->idle);
	pthread_cond_destroy(&q->work);
	pthread_mutex_destroy(&q->mu);
	free(q->lens);
	free(q->bytes);
	free(q);
	return left;
}
