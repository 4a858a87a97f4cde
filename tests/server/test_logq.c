/*
 * zrpc's log queue (zrpc/logq.h): lines keep their order, a full queue
 * drops and counts instead of waiting, close writes what is queued within
 * its bound, and a reader that stopped reading or went away never holds a
 * pusher or the close. A pipe whose reader "stalls" is a pipe the test
 * fills to the brim itself first: then no write can go through until the
 * test reads, so what is queued and what is dropped are exact.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "zrpc/logq.h"

static long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static zrpc_logq *
logq_new(int fd, size_t max_lines, size_t max_bytes)
{
	zrpc_logq       *q;
	zrpc_logq_config config = {
		.fd        = fd,
		.max_lines = max_lines,
		.max_bytes = max_bytes,
	};
	zrpc_status st = zrpc_logq_create(&q, &config);

	cr_assert_eq(st.code, ZRPC_OK, "%s", st.message);
	return q;
}

/* Pushes "line NNNN\n" (10 bytes), expecting EXPECT. */
static void
push_line(zrpc_logq *q, int n, bool expect)
{
	char line[64];
	int  len = snprintf(line, sizeof(line), "line %04d\n", n);

	cr_assert_eq(zrpc_logq_push(q, line, (size_t) len), expect,
	    "push of line %d", n);
}

/* A file in /tmp, already unlinked; its contents are read back from 0. */
static int
temp_file(void)
{
	char path[] = "/tmp/zos-logq-XXXXXX";
	int  fd     = mkstemp(path);

	cr_assert(fd >= 0);
	unlink(path);
	return fd;
}

static char *
read_back(int fd, size_t *len)
{
	off_t end = lseek(fd, 0, SEEK_END);
	char *buf = malloc((size_t) end + 1);

	cr_assert_not_null(buf);
	cr_assert_eq(pread(fd, buf, (size_t) end, 0), end);
	buf[end] = '\0';
	*len     = (size_t) end;
	return buf;
}

/* A pipe of one page, full: nothing written to fds[1] goes through until
 * the test reads fds[0]. */
static void
stalled_pipe(int fds[2])
{
	char fill[4096];
	int  size;

	cr_assert_eq(pipe(fds), 0);
	size = fcntl(fds[1], F_SETPIPE_SZ, 4096);
	cr_assert_eq(size, 4096, "a one-page pipe");
	memset(fill, '.', sizeof(fill));
	cr_assert_eq(write(fds[1], fill, sizeof(fill)), 4096);
}

/* Reads exactly LEN bytes of FDS[0] (the pipe is blocking). */
static void
read_exactly(int fd, char *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, buf + got, len - got);

		cr_assert_gt(n, 0, "read: %s", strerror(errno));
		got += (size_t) n;
	}
}

Test(logq, every_line_is_written_in_order_and_close_flushes_them)
{
	int                    fd = temp_file();
	zrpc_logq             *q  = logq_new(fd, 0, 0);
	struct zrpc_logq_stats st;
	char                  *text, *at;
	size_t                 len;

	for (int i = 0; i < 5000; i++) {
		push_line(q, i, true);
	}
	zrpc_logq_stats(q, &st);
	cr_assert_eq(st.pushed, 5000);
	cr_assert_eq(st.dropped, 0);
	cr_assert_eq(zrpc_logq_close(q, 5000), 0, "nothing left behind");
	text = read_back(fd, &len);
	at   = text;
	for (int i = 0; i < 5000; i++) {
		char want[32];
		int  n = snprintf(want, sizeof(want), "line %04d\n", i);

		cr_assert_eq(strncmp(at, want, (size_t) n), 0,
		    "line %d in order, found: %.20s", i, at);
		at += n;
	}
	cr_assert_eq(at, text + len, "nothing more");
	free(text);
	close(fd);
}

Test(logq, a_full_queue_drops_and_counts_and_never_waits)
{
	int                    fds[2];
	zrpc_logq             *q;
	struct zrpc_logq_stats st;
	char                   buf[4096 + 64];
	long                   start;

	stalled_pipe(fds);
	q     = logq_new(fds[1], 4, 0);
	start = now_ms();
	for (int i = 0; i < 10000; i++) {
		push_line(q, i, i < 4);
	}
	cr_assert_lt(now_ms() - start, 2000, "10000 pushes never wait");
	cr_assert_eq(zrpc_logq_dropped(q), 9996);
	zrpc_logq_stats(q, &st);
	cr_assert_eq(st.pushed, 4);
	cr_assert_eq(st.queued_lines, 4);
	cr_assert_eq(st.queued_bytes, 40);
	cr_assert_eq(st.written, 0);

	/* The reader comes back: the four queued lines follow, in order. */
	read_exactly(fds[0], buf, 4096);
	cr_assert(zrpc_logq_flush(q, 5000), "written once stderr is read");
	read_exactly(fds[0], buf, 40);
	cr_assert_eq(
	    memcmp(buf, "line 0000\nline 0001\nline 0002\nline 0003\n", 40), 0,
	    "%.40s", buf);
	zrpc_logq_stats(q, &st);
	cr_assert_eq(st.written, 4);
	cr_assert_eq(st.queued_lines, 0);
	/* Room again. */
	push_line(q, 4, true);
	cr_assert_eq(zrpc_logq_close(q, 5000), 0);
	read_exactly(fds[0], buf, 10);
	cr_assert_eq(memcmp(buf, "line 0004\n", 10), 0);
	close(fds[0]);
	close(fds[1]);
}

Test(logq, the_byte_bound_drops_too)
{
	int        fds[2];
	zrpc_logq *q;

	stalled_pipe(fds);
	q = logq_new(fds[1], 100, 25);
	push_line(q, 0, true);
	push_line(q, 1, true);
	push_line(q, 2, false); /* 30 > 25 bytes */
	cr_assert_not(zrpc_logq_push(q, "x", 0), "an empty line");
	cr_assert_eq(zrpc_logq_dropped(q), 2);
	/* Closing with the reader still away: a bounded wait, and the two
	 * lines that never went out are counted. */
	long start = now_ms();
	cr_assert_eq(zrpc_logq_close(q, 200), 2);
	cr_assert_lt(now_ms() - start, 2000, "close is bounded");
	close(fds[0]);
	close(fds[1]);
}

Test(logq, lines_that_wrap_round_the_ring_come_out_whole)
{
	int        fd = temp_file();
	zrpc_logq *q  = logq_new(fd, 0, 25);
	char      *text;
	size_t     len;

	/* 10-byte lines in a 25-byte ring: the third, fifth... wrap. */
	for (int i = 0; i < 20; i++) {
		push_line(q, i, true);
		cr_assert(zrpc_logq_flush(q, 5000));
	}
	cr_assert_eq(zrpc_logq_close(q, 5000), 0);
	text = read_back(fd, &len);
	cr_assert_eq(len, 200);
	for (int i = 0; i < 20; i++) {
		char want[16];

		snprintf(want, sizeof(want), "line %04d\n", i);
		cr_assert_eq(memcmp(text + 10 * i, want, 10), 0, "line %d", i);
	}
	free(text);
	close(fd);
}

Test(logq, a_line_longer_than_pipe_buf_is_written_whole)
{
	int        fd = temp_file();
	zrpc_logq *q  = logq_new(fd, 0, 0);
	char      *line, *text;
	size_t     len;

	line = malloc(10000);
	cr_assert_not_null(line);
	for (size_t i = 0; i < 10000; i++) {
		line[i] = (char) ('a' + i % 26);
	}
	line[9999] = '\n';
	cr_assert(zrpc_logq_push(q, line, 10000));
	cr_assert(zrpc_logq_push(q, "after\n", 6));
	cr_assert_eq(zrpc_logq_close(q, 5000), 0);
	text = read_back(fd, &len);
	cr_assert_eq(len, 10006);
	cr_assert_eq(memcmp(text, line, 10000), 0);
	cr_assert_eq(memcmp(text + 10000, "after\n", 6), 0);
	free(text);
	free(line);
	close(fd);
}

Test(logq, a_reader_that_went_away_costs_lines_not_the_process)
{
	int                    fds[2];
	zrpc_logq             *q;
	struct zrpc_logq_stats st;

	/* SIGPIPE is not ignored here: the writer must not die of it. */
	cr_assert_eq(pipe(fds), 0);
	close(fds[0]);
	q = logq_new(fds[1], 0, 0);
	for (int i = 0; i < 100; i++) {
		push_line(q, i, true);
	}
	cr_assert(zrpc_logq_flush(q, 5000), "dropped, not stuck");
	zrpc_logq_stats(q, &st);
	cr_assert_eq(st.dropped, 100);
	cr_assert_eq(st.written, 0);
	cr_assert_gt(st.write_errors, 0);
	cr_assert_eq(zrpc_logq_close(q, 1000), 0);
	close(fds[1]);
}

Test(logq, a_non_blocking_descriptor_that_is_full_is_waited_for)
{
	int        fds[2];
	zrpc_logq *q;
	char       buf[4096 + 16];

	/* EAGAIN instead of a blocking write: the writer waits, in slices,
	 * and writes once there is room. */
	stalled_pipe(fds);
	cr_assert_eq(fcntl(fds[1], F_SETFL, O_NONBLOCK), 0);
	q = logq_new(fds[1], 0, 0);
	push_line(q, 0, true);
	cr_assert_not(zrpc_logq_flush(q, 100), "the pipe is still full");
	read_exactly(fds[0], buf, 4096);
	cr_assert(zrpc_logq_flush(q, 5000));
	read_exactly(fds[0], buf, 10);
	cr_assert_eq(memcmp(buf, "line 0000\n", 10), 0);
	cr_assert_eq(zrpc_logq_close(q, 1000), 0);
	close(fds[0]);
	close(fds[1]);
}

Test(logq, a_socket_that_is_not_read_drops_and_then_delivers)
{
	int                    sv[2];
	zrpc_logq             *q;
	struct zrpc_logq_stats st;
	char                   buf[256];
	int                    small = 4096;
	size_t                 got   = 0;

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	q = logq_new(sv[0], 16, 0);
	for (int i = 0; i < 100000; i++) {
		char line[16];

		snprintf(line, sizeof(line), "line %06d\n", i);
		if (!zrpc_logq_push(q, line, 12)) {
			break;
		}
	}
	cr_assert_gt(zrpc_logq_dropped(q), 0, "the socket filled up");
	/* Read until every line pushed has come out. */
	zrpc_logq_stats(q, &st);
	for (long deadline = now_ms() + 10000;
	     got < st.pushed * 12 && now_ms() < deadline;) {
		ssize_t n = recv(sv[1], buf, sizeof(buf), MSG_DONTWAIT);

		if (n > 0) {
			got += (size_t) n;
		} else {
			(void) zrpc_logq_flush(q, 10);
		}
	}
	cr_assert_eq(got, st.pushed * 12, "every line pushed arrives");
	cr_assert_eq(zrpc_logq_close(q, 1000), 0);
	close(sv[0]);
	close(sv[1]);
}

struct pusher {
	zrpc_logq *q;
	int        id;
};

static void *
pusher_run(void *arg)
{
	struct pusher *p = arg;

	for (int i = 0; i < 2000; i++) {
		char line[32];
		int  n = snprintf(line, sizeof(line), "%d %d\n", p->id, i);

		if (!zrpc_logq_push(p->q, line, (size_t) n)) {
			return (void *) 1;
		}
	}
	return NULL;
}

Test(logq, lines_of_many_threads_never_interleave_and_keep_their_order)
{
	int           fd = temp_file();
	zrpc_logq    *q  = logq_new(fd, 16384, 0);
	pthread_t     threads[4];
	struct pusher pushers[4];
	int           next[4] = { 0 };
	char         *text, *line, *save;
	size_t        len;

	for (int t = 0; t < 4; t++) {
		pushers[t] = (struct pusher) { q, t };
		pthread_create(&threads[t], NULL, pusher_run, &pushers[t]);
	}
	for (int t = 0; t < 4; t++) {
		void *rv;

		pthread_join(threads[t], &rv);
		cr_assert_null(rv, "room for all 8000 lines");
	}
	cr_assert_eq(zrpc_logq_close(q, 5000), 0);
	text = read_back(fd, &len);
	for (line = strtok_r(text, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		int id, i;

		cr_assert_eq(sscanf(line, "%d %d", &id, &i), 2, "%s", line);
		cr_assert(id >= 0 && id < 4);
		cr_assert_eq(i, next[id], "thread %d's order", id);
		next[id]++;
	}
	for (int t = 0; t < 4; t++) {
		cr_assert_eq(next[t], 2000);
	}
	free(text);
	close(fd);
}

Test(logq, bad_arguments_and_null)
{
	zrpc_logq       *q;
	zrpc_logq_config config = { .fd = -1 };

	cr_assert_eq(
	    zrpc_logq_create(&q, &config).code, ZRPC_INVALID_ARGUMENT);
	cr_assert_null(q);
	config = (zrpc_logq_config) { .fd = 2, .max_bytes = (size_t) 2 << 30 };
	cr_assert_eq(
	    zrpc_logq_create(&q, &config).code, ZRPC_INVALID_ARGUMENT);
	config = (zrpc_logq_config) { .fd = 2, .max_lines = 1u << 25 };
	cr_assert_eq(
	    zrpc_logq_create(&q, &config).code, ZRPC_INVALID_ARGUMENT);
	cr_assert_eq(zrpc_logq_close(NULL, 10), 0);
	cr_assert(zrpc_logq_flush(NULL, 10));
}
