/*
 * The log queue (zrpc/logq.h) under ThreadSanitizer: pushers on several
 * threads, a reader that reads the pipe in bursts and pauses (so the queue
 * fills, drops, drains and lingers), stats and flush from yet another
 * thread, then a close. Checks that every line that came out is whole and
 * that each pusher's accepted lines came out in its order, and that
 * pushed = written + the lines dropped after being queued. Exits 0 when
 * all is well, 1 with a message otherwise.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "zrpc/logq.h"

#define PUSHERS 4
#define LINES 20000 /* per pusher */

struct pusher {
	zrpc_logq *q;
	int        id;
	char       accepted[LINES]; /* 1: the queue took line i */
};

static void *
pusher_run(void *arg)
{
	struct pusher *p = arg;

	for (int i = 0; i < LINES; i++) {
		char line[48];
		int  n = snprintf(
		     line, sizeof(line), "p%d %06d xxxxxxxx\n", p->id, i);

		p->accepted[i] = zrpc_logq_push(p->q, line, (size_t) n);
	}
	return NULL;
}

struct reader {
	int    fd;
	char  *text;
	size_t len, cap;
};

static void *
reader_run(void *arg)
{
	struct reader  *r     = arg;
	struct timespec pause = { 0, 2000000 };

	for (int burst = 0;; burst++) {
		ssize_t n;

		if (r->len + 65536 > r->cap) {
			r->cap  = r->cap * 2 + 65536;
			r->text = realloc(r->text, r->cap);
			if (r->text == NULL) {
				abort();
			}
		}
		n = read(r->fd, r->text + r->len, 65536);
		if (n <= 0) {
			return NULL;
		}
		r->len += (size_t) n;
		if (burst % 8 == 0) {
			nanosleep(&pause, NULL); /* the queue fills */
		}
	}
}

static atomic_bool watching_done;

static void *
watcher_run(void *arg)
{
	zrpc_logq *q = arg;

	while (!atomic_load(&watching_done)) {
		struct zrpc_logq_stats st;

		zrpc_logq_stats(q, &st);
		(void) zrpc_logq_dropped(q);
		(void) zrpc_logq_flush(q, 1);
	}
	return NULL;
}

int
main(void)
{
	static struct pusher   pushers[PUSHERS];
	pthread_t              threads[PUSHERS], reader_thread, watcher;
	struct reader          r = { 0 };
	struct zrpc_logq_stats st;
	zrpc_logq             *q;
	int                    fds[2], next[PUSHERS] = { 0 };
	zrpc_status            status;
	size_t                 lost;

	if (pipe(fds) != 0) {
		perror("pipe");
		return 1;
	}
	status = zrpc_logq_create(&q,
	    &(zrpc_logq_config) {
	        .fd = fds[1], .max_lines = 512, .max_bytes = 16384 });
	if (status.code != ZRPC_OK) {
		fprintf(stderr, "create: %s\n", status.message);
		return 1;
	}
	r.fd = fds[0];
	pthread_create(&reader_thread, NULL, reader_run, &r);
	pthread_create(&watcher, NULL, watcher_run, q);
	for (int t = 0; t < PUSHERS; t++) {
		pushers[t].q  = q;
		pushers[t].id = t;
		pthread_create(&threads[t], NULL, pusher_run, &pushers[t]);
	}
	for (int t = 0; t < PUSHERS; t++) {
		pthread_join(threads[t], NULL);
	}
	atomic_store(&watching_done, true);
	pthread_join(watcher, NULL);
	zrpc_logq_stats(q, &st);
	lost = zrpc_logq_close(q, 10000);
	close(fds[1]);
	pthread_join(reader_thread, NULL);
	close(fds[0]);
	if (lost != 0) {
		fprintf(stderr, "close left %zu lines\n", lost);
		return 1;
	}
	/* Every line whole, each pusher's in order, none that was refused. */
	size_t out = 0;
	for (char *line = r.text; line < r.text + r.len;) {
		char *end =
		    memchr(line, '\n', (size_t) (r.text + r.len - line));
		int id, i;

		if (end == NULL || sscanf(line, "p%d %d", &id, &i) != 2 ||
		    id < 0 || id >= PUSHERS || end - line != 18) {
			fprintf(stderr, "a broken line at byte %zu\n",
			    (size_t) (line - r.text));
			return 1;
		}
		while (next[id] < i && !pushers[id].accepted[next[id]]) {
			next[id]++;
		}
		if (i != next[id] || !pushers[id].accepted[i]) {
			fprintf(stderr, "pusher %d: line %d out of order\n",
			    id, i);
			return 1;
		}
		next[id]++;
		out++;
		line = end + 1;
	}
	if (out != st.pushed) {
		fprintf(stderr, "%zu lines out, %llu pushed\n", out,
		    (unsigned long long) st.pushed);
		return 1;
	}
	printf("stress-logq: %zu lines written, %llu dropped when full\n", out,
	    (unsigned long long) st.dropped);
	free(r.text);
	return 0;
}
