/*
 * The flusher; see flusher.h for the interface and store.h for the promise
 * it keeps (a caller is answered OK only once its change is durable).
 *
 * Requests. Each part keeps a FIFO of commit requests that no copy has
 * been taken for yet ("incoming"). The flusher takes a part's whole
 * incoming list as its batch, lets go of the mutex, has the write function
 * take one copy of the part and write it (if it is newer than what is
 * durable), then settles the batch. Every request in a batch was made
 * after its caller's change, and the copy was taken after the request, so
 * the copy covers every request in its batch: one write answers them all,
 * and a request in a batch that the copy does not cover asks for a number
 * the part never reached (EINVAL), which is how a bad number cannot make
 * the flusher spin. Requests that arrive during a write wait in incoming
 * for the next batch, unless the write just made them durable, in which
 * case they are settled with it. A request already covered is settled in
 * zos_flusher_commit itself, on the caller's thread. However many callers
 * commit at once, each write serves all who asked before it began: group
 * commit without a timer, and without delaying a lone caller.
 *
 * Failure. A failed write settles its batch with the error; whatever the
 * write function left on disk is not counted as durable. Requests that
 * arrive later make the next attempt, with a fresh copy at least as new.
 * The flusher never retries on its own: a caller told "failed" was never
 * told "durable", and the next caller's write covers both changes.
 *
 * One thread writes, and only a copy newer than what is durable, so an
 * older copy never replaces a newer one.
 *
 * Threads. The flusher thread writes; a second, settling thread calls
 * the DONE callbacks of each write's requests (a resumed call encodes
 * and sends its reply there) while the flusher already makes the next
 * write, so answering N callers overlaps the next fsync instead of
 * delaying it. A failed request carries its own copy of the write's
 * message, since the flusher's result is overwritten by the next write.
 *
 * Locks. The mutex guards the request lists, the durable numbers and
 * closing; it is a leaf (flusher.h). The write function and every DONE
 * run without it.
 *
 * Invariants under the mutex: a part's durable number is that of the
 * newest copy written (or read at open), and never goes down; every
 * request is in exactly one of incoming, a batch in the flusher, or the
 * list being settled, and is settled exactly once.
 */
#include "flusher.h"

#include "zrpc/clock.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FLUSHER_MESSAGE_MAX 512

/* One commit request, from zos_flusher_commit until it is settled. */
struct flusher_request {
	struct flusher_request *next;
	uint64_t                seq;
	zos_store_done_fn       done;
	void                   *arg;
	/* The outcome, set just before it is settled. */
	int         error;
	const char *message; /* static, or OWNED */
	char       *owned;   /* a failure's message, freed with the request */
};

/* A FIFO of requests. */
struct flusher_queue {
	struct flusher_request  *head;
	struct flusher_request **tail; /* &head when empty */
};

/*
 * Numbers undone after failed writes: (lo, hi]. A request for one of
 * them, even one made after the undo (its caller changed the part just
 * before), is answered with the failure. Adjacent failures merge; the
 * oldest ranges are forgotten past FLUSHER_UNDONE_MAX, which would take
 * that many failed writes, each with a successful one between them,
 * during the few microseconds between a change and its commit request.
 */
#define FLUSHER_UNDONE_MAX 32

struct flusher_undone {
	uint64_t lo, hi;
};

struct flusher_part {
	bool                 on_disk;  /* guarded by: mtx; something durable */
	uint64_t             durable;  /* guarded by: mtx; its number */
	struct flusher_queue incoming; /* guarded by: mtx */
	bool                 failing;  /* guarded by: mtx; last write failed */
	int                  error; /* guarded by: mtx; of the last failure */
	char message[FLUSHER_MESSAGE_MAX]; /* guarded by: mtx; its message */
	struct flusher_undone undone[FLUSHER_UNDONE_MAX]; /* guarded by: mtx */
	size_t                n_undone;                   /* guarded by: mtx */
};

/* What one write of one part came to. */
struct flusher_result {
	int      error;  /* 0 or an errno value */
	bool     wrote;  /* a newer copy was made durable */
	uint64_t seq;    /* of the copy, when one was taken */
	uint64_t undone; /* on error: the highest number undone */
	char     message[FLUSHER_MESSAGE_MAX];
};

struct zos_flusher {
	/* Set by start, before the thread exists; read-only afterwards. */
	zos_flusher_write_fn write;
	void                *write_arg;
	pthread_t            thread;
	pthread_t            settler;
	bool                 started;

	pthread_mutex_t     mtx;
	pthread_cond_t      wake;    /* the thread: a request, or closing */
	bool                closing; /* guarded by: mtx */
	struct flusher_part parts[ZOS_FLUSHER_PARTS];
	/* Requests settled by a write, for the settling thread to answer
	 * while the flusher goes on with the next write. */
	struct flusher_queue settling;     /* guarded by: mtx */
	pthread_cond_t       settle_wake;  /* the settling thread */
	bool                 flusher_done; /* guarded by: mtx */

	/* The thread's own, between taking a batch and settling it. */
	struct flusher_result results[ZOS_FLUSHER_PARTS];

	atomic_uint_fast64_t commit_waiters; /* answered OK */
};

/* What zos_flusher_commit_wait waits for; on the waiter's stack. */
struct flusher_waiter {
	struct zos_flusher *flusher;
	pthread_cond_t      cv;
	bool                done; /* guarded by: flusher->mtx */
	int                 error;
	char               *message;
	size_t              message_len;
};

static void
flusher_queue_init(struct flusher_queue *q)
{
	q->head = NULL;
	q->tail = &q->head;
}

static void
flusher_queue_push(struct flusher_queue *q, struct flusher_request *r)
{
	r->next  = NULL;
	*q->tail = r;
	q->tail  = &r->next;
}

/* Moves Q's requests to the end of TO; Q is left empty. */
static void
flusher_queue_move(struct flusher_queue *q, struct flusher_queue *to)
{
	if (q->head != NULL) {
		*to->tail = q->head;
		to->tail  = q->tail;
	}
	flusher_queue_init(q);
}

/* Moves the requests of Q whose SEQ is at most DURABLE to TO, as OK. */
static void
flusher_queue_take_covered(
    struct flusher_queue *q, uint64_t durable, struct flusher_queue *to)
{
	struct flusher_request **link = &q->head;
	struct flusher_request  *r;

	while ((r = *link) != NULL) {
		if (r->seq <= durable) {
			*link      = r->next;
			r->error   = 0;
			r->message = "";
			flusher_queue_push(to, r);
		} else {
			link = &r->next;
		}
	}
	q->tail = link;
}

/* Calls every request's DONE with its outcome and frees it. Called with
 * no lock held. */
static void
flusher_settle(struct zos_flusher *flusher, struct flusher_request *list)
{
	struct flusher_request *r;

	while ((r = list) != NULL) {
		list = r->next;
		if (r->error == 0) {
			atomic_fetch_add_explicit(
			    &flusher->commit_waiters, 1, memory_order_relaxed);
		}
		r->done(r->arg, r->error, r->message);
		free(r->owned);
		free(r);
	}
}

/*
 * Fails R with RESULT's error and a copy of its message: the result is
 * the flusher's, overwritten by the next write while the settling thread
 * may still be answering R.
 */
static void
flusher_request_fail(
    struct flusher_request *r, const struct flusher_result *result)
{
	r->error   = result->error;
	r->owned   = strdup(result->message);
	r->message = r->owned != NULL
	    ? r->owned
	    : "store: the commit failed (no memory to say why)";
}

/* True when SEQ of P was undone. Called with the mutex held. */
static bool
flusher_is_undone(const struct flusher_part *p, uint64_t seq)
{
	for (size_t i = 0; i < p->n_undone; i++) {
		if (seq > p->undone[i].lo && seq <= p->undone[i].hi) {
			return true;
		}
	}
	return false;
}

/* Records that (LO, HI] of P were undone. Called with the mutex held. */
static void
flusher_add_undone(struct flusher_part *p, uint64_t lo, uint64_t hi)
{
	struct flusher_undone *last =
	    p->n_undone > 0 ? &p->undone[p->n_undone - 1] : NULL;

	if (hi <= lo) {
		return;
	}
	if (last != NULL && last->lo == lo) {
		if (hi > last->hi) {
			last->hi = hi;
		}
		return;
	}
	if (p->n_undone == FLUSHER_UNDONE_MAX) {
		memmove(&p->undone[0], &p->undone[1],
		    (FLUSHER_UNDONE_MAX - 1) * sizeof(p->undone[0]));
		p->n_undone--;
	}
	p->undone[p->n_undone].lo = lo;
	p->undone[p->n_undone].hi = hi;
	p->n_undone++;
}

/* Moves the requests of Q that R undid to TO, failed with R's error. */
static void
flusher_queue_take_undone(struct flusher_queue *q,
    const struct flusher_result *r, struct flusher_queue *to)
{
	struct flusher_request **link = &q->head;
	struct flusher_request  *req;

	while ((req = *link) != NULL) {
		if (req->seq <= r->undone) {
			*link = req->next;
			flusher_request_fail(req, r);
			flusher_queue_push(to, req);
		} else {
			link = &req->next;
		}
	}
	q->tail = link;
}

/*
 * Settles BATCH (P's requests the copy in R was taken for) and the
 * requests of incoming that R made durable, moving them to DONE.
 * Called with the mutex held.
 */
static void
flusher_apply(struct flusher_part *p, const struct flusher_result *r,
    struct flusher_request *batch, struct flusher_queue *done)
{
	struct flusher_request *q;

	if (r->wrote) {
		p->on_disk = true;
		p->durable = r->seq;
	}
	p->failing = r->error != 0;
	if (r->error != 0) {
		p->error = r->error;
		snprintf(p->message, sizeof(p->message), "%s", r->message);
		flusher_add_undone(p, p->durable, r->undone);
		flusher_queue_take_undone(&p->incoming, r, done);
	}
	while ((q = batch) != NULL) {
		batch = q->next;
		if (r->error != 0) {
			flusher_request_fail(q, r);
		} else if (p->on_disk && q->seq <= p->durable) {
			q->error   = 0;
			q->message = "";
		} else {
			/* The copy was taken after the request was made
			 * and still does not reach its number. */
			q->error   = EINVAL;
			q->message = "commit of a sequence number the part "
			             "has not reached";
		}
		flusher_queue_push(done, q);
	}
	if (p->on_disk) {
		flusher_queue_take_covered(&p->incoming, p->durable, done);
	}
}

/* Has the write function make part INDEX + 1 durable, into R. */
static void
flusher_write_part(struct zos_flusher *flusher, size_t index, bool on_disk,
    uint64_t durable, struct flusher_result *r)
{
	r->wrote      = false;
	r->seq        = 0;
	r->undone     = durable;
	r->message[0] = '\0';
	r->error      = flusher->write(flusher->write_arg,
	         (enum zos_store_part)(index + 1), on_disk, durable, &r->seq,
	         &r->wrote, &r->undone, r->message, sizeof(r->message));
	if (r->error != 0) {
		r->wrote = false;
	}
}

/*
 * Waits ZOS_FLUSHER_RETRY_MS for a request or for closing. Returns true
 * when woken by one (the loop looks again), false when the retry is due.
 * Called with the mutex held.
 */
static bool
flusher_wait_retry(struct zos_flusher *flusher)
{
	struct timespec until =
	    zrpc_timespec_after_ms(CLOCK_MONOTONIC, ZOS_FLUSHER_RETRY_MS);

	return pthread_cond_timedwait(&flusher->wake, &flusher->mtx, &until) !=
	    ETIMEDOUT;
}

static void *
flusher_thread(void *arg)
{
	struct zos_flusher *flusher = arg;

	pthread_mutex_lock(&flusher->mtx);
	for (;;) {
		struct flusher_request *batch[ZOS_FLUSHER_PARTS];
		bool                    on_disk[ZOS_FLUSHER_PARTS];
		uint64_t                durable[ZOS_FLUSHER_PARTS];
		bool                    write[ZOS_FLUSHER_PARTS];
		struct flusher_queue    done;
		bool                    work = false, failing = false;

		for (size_t i = 0; i < ZOS_FLUSHER_PARTS; i++) {
			work = work || flusher->parts[i].incoming.head != NULL;
			failing = failing || flusher->parts[i].failing;
		}
		if (!work && flusher->closing) {
			break;
		}
		if (!work && !failing) {
			pthread_cond_wait(&flusher->wake, &flusher->mtx);
			continue;
		}
		if (!work && flusher_wait_retry(flusher)) {
			continue; /* woken before the retry was due */
		}
		for (size_t i = 0; i < ZOS_FLUSHER_PARTS; i++) {
			struct flusher_part *p = &flusher->parts[i];

			batch[i]   = p->incoming.head;
			write[i]   = batch[i] != NULL || p->failing;
			on_disk[i] = p->on_disk;
			durable[i] = p->durable;
			flusher_queue_init(&p->incoming);
		}
		pthread_mutex_unlock(&flusher->mtx);

		for (size_t i = 0; i < ZOS_FLUSHER_PARTS; i++) {
			if (write[i]) {
				flusher_write_part(flusher, i, on_disk[i],
				    durable[i], &flusher->results[i]);
			}
		}

		flusher_queue_init(&done);
		pthread_mutex_lock(&flusher->mtx);
		for (size_t i = 0; i < ZOS_FLUSHER_PARTS; i++) {
			if (write[i]) {
				flusher_apply(&flusher->parts[i],
				    &flusher->results[i], batch[i], &done);
			}
		}
		/* Answered by the settling thread, while this one writes
		 * the next batch (its fsync leaves the CPU to them). */
		if (done.head != NULL) {
			flusher_queue_move(&done, &flusher->settling);
			pthread_cond_signal(&flusher->settle_wake);
		}
	}
	flusher->flusher_done = true;
	pthread_cond_signal(&flusher->settle_wake);
	pthread_mutex_unlock(&flusher->mtx);
	return NULL;
}

/* The settling thread: answers what the flusher settled, in order,
 * until the flusher is done and nothing is left. */
static void *
flusher_settler(void *arg)
{
	struct zos_flusher *flusher = arg;

	pthread_mutex_lock(&flusher->mtx);
	for (;;) {
		struct flusher_request *list = flusher->settling.head;

		if (list == NULL) {
			if (flusher->flusher_done) {
				break;
			}
			pthread_cond_wait(
			    &flusher->settle_wake, &flusher->mtx);
			continue;
		}
		flusher_queue_init(&flusher->settling);
		pthread_mutex_unlock(&flusher->mtx);
		flusher_settle(flusher, list);
		pthread_mutex_lock(&flusher->mtx);
	}
	pthread_mutex_unlock(&flusher->mtx);
	return NULL;
}

/* Initialises CV on CLOCK_MONOTONIC (the retry's timed wait). */
static int
flusher_cond_init(pthread_cond_t *cv)
{
	pthread_condattr_t attr;
	int                rv;

	if ((rv = pthread_condattr_init(&attr)) != 0) {
		return rv;
	}
	if ((rv = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC)) == 0) {
		rv = pthread_cond_init(cv, &attr);
	}
	pthread_condattr_destroy(&attr);
	return rv;
}

int
zos_flusher_create(struct zos_flusher **out,
    const bool                          on_disk[ZOS_FLUSHER_PARTS],
    const uint64_t durable[ZOS_FLUSHER_PARTS], char *error, size_t error_len)
{
	struct zos_flusher *flusher;

	if ((flusher = calloc(1, sizeof(*flusher))) == NULL) {
		snprintf(error, error_len, "out of memory");
		return -1;
	}
	if (pthread_mutex_init(&flusher->mtx, NULL) != 0) {
		snprintf(error, error_len, "cannot create a mutex");
		goto fail_flusher;
	}
	if (flusher_cond_init(&flusher->wake) != 0) {
		snprintf(
		    error, error_len, "cannot create a condition variable");
		goto fail_mutex;
	}
	if (pthread_cond_init(&flusher->settle_wake, NULL) != 0) {
		snprintf(
		    error, error_len, "cannot create a condition variable");
		pthread_cond_destroy(&flusher->wake);
		goto fail_mutex;
	}
	flusher_queue_init(&flusher->settling);
	for (size_t i = 0; i < ZOS_FLUSHER_PARTS; i++) {
		flusher->parts[i].on_disk = on_disk[i];
		flusher->parts[i].durable = durable[i];
		flusher_queue_init(&flusher->parts[i].incoming);
	}
	atomic_init(&flusher->commit_waiters, 0);
	*out = flusher;
	return 0;

fail_mutex:
	pthread_mutex_destroy(&flusher->mtx);
fail_flusher:
	free(flusher);
	return -1;
}

int
zos_flusher_start(
    struct zos_flusher *flusher, zos_flusher_write_fn write, void *arg)
{
	int rv;

	if (flusher->started) {
		return EALREADY;
	}
	flusher->write     = write;
	flusher->write_arg = arg;
	if ((rv = pthread_create(
	         &flusher->settler, NULL, flusher_settler, flusher)) != 0) {
		return rv;
	}
	if ((rv = pthread_create(
	         &flusher->thread, NULL, flusher_thread, flusher)) != 0) {
		pthread_mutex_lock(&flusher->mtx);
		flusher->flusher_done = true;
		pthread_cond_signal(&flusher->settle_wake);
		pthread_mutex_unlock(&flusher->mtx);
		pthread_join(flusher->settler, NULL);
		return rv;
	}
	flusher->started = true;
	return 0;
}

/* The part named ID, or NULL. */
static struct flusher_part *
flusher_part_get(struct zos_flusher *flusher, enum zos_store_part id)
{
	if ((int) id < 1 || (int) id > ZOS_FLUSHER_PARTS) {
		return NULL;
	}
	return &flusher->parts[id - 1];
}

void
zos_flusher_commit(struct zos_flusher *flusher, enum zos_store_part part,
    uint64_t seq, zos_store_done_fn done, void *arg)
{
	struct flusher_part    *p = flusher_part_get(flusher, part);
	struct flusher_request *r;

	if (p == NULL) {
		done(arg, EINVAL, "store: no such part");
		return;
	}
	r = malloc(sizeof(*r));
	pthread_mutex_lock(&flusher->mtx);
	if (flusher_is_undone(p, seq)) {
		char message[FLUSHER_MESSAGE_MAX];
		int  error = p->error;

		snprintf(message, sizeof(message), "%s", p->message);
		pthread_mutex_unlock(&flusher->mtx);
		free(r);
		done(arg, error, message);
		return;
	}
	if (p->on_disk && seq <= p->durable) {
		pthread_mutex_unlock(&flusher->mtx);
		free(r);
		atomic_fetch_add_explicit(
		    &flusher->commit_waiters, 1, memory_order_relaxed);
		done(arg, 0, "");
		return;
	}
	if (flusher->closing || r == NULL) {
		bool closing = flusher->closing;

		pthread_mutex_unlock(&flusher->mtx);
		free(r);
		if (closing) {
			done(arg, ECANCELED,
			    "store: closing, nothing more is written");
		} else {
			done(arg, ENOMEM, "store: out of memory");
		}
		return;
	}
	r->seq   = seq;
	r->done  = done;
	r->arg   = arg;
	r->owned = NULL;
	flusher_queue_push(&p->incoming, r);
	pthread_cond_signal(&flusher->wake);
	pthread_mutex_unlock(&flusher->mtx);
}

static void
flusher_waiter_done(void *arg, int error, const char *message)
{
	struct flusher_waiter *w = arg;

	pthread_mutex_lock(&w->flusher->mtx);
	w->error = error;
	if (w->message_len > 0) {
		snprintf(w->message, w->message_len, "%s", message);
	}
	w->done = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->flusher->mtx);
}

int
zos_flusher_commit_wait(struct zos_flusher *flusher, enum zos_store_part part,
    uint64_t seq, char *message, size_t message_len)
{
	struct flusher_waiter w = {
		.flusher     = flusher,
		.done        = false,
		.message     = message,
		.message_len = message_len,
	};

	if (pthread_cond_init(&w.cv, NULL) != 0) {
		snprintf(message, message_len, "store: out of memory");
		return ENOMEM;
	}
	zos_flusher_commit(flusher, part, seq, flusher_waiter_done, &w);
	pthread_mutex_lock(&flusher->mtx);
	while (!w.done) {
		pthread_cond_wait(&w.cv, &flusher->mtx);
	}
	pthread_mutex_unlock(&flusher->mtx);
	pthread_cond_destroy(&w.cv);
	return w.error;
}

uint64_t
zos_flusher_commit_waiters(const struct zos_flusher *flusher)
{
	return atomic_load_explicit(
	    &flusher->commit_waiters, memory_order_relaxed);
}

void
zos_flusher_destroy(struct zos_flusher *flusher)
{
	struct flusher_queue left;

	if (flusher == NULL) {
		return;
	}
	pthread_mutex_lock(&flusher->mtx);
	flusher->closing = true;
	pthread_cond_signal(&flusher->wake);
	pthread_mutex_unlock(&flusher->mtx);
	if (flusher->started) {
		/* The thread writes what is queued, then returns; the
		 * settling thread answers it all, then returns. */
		pthread_join(flusher->thread, NULL);
		pthread_join(flusher->settler, NULL);
	}
	/* Never started: nothing can write what was asked for. */
	flusher_queue_init(&left);
	pthread_mutex_lock(&flusher->mtx);
	for (size_t i = 0; i < ZOS_FLUSHER_PARTS; i++) {
		struct flusher_request *r;

		for (r = flusher->parts[i].incoming.head; r != NULL;
		     r = r->next) {
			r->error = ECANCELED;
			r->message =
			    "store: closed before the flusher started";
		}
		flusher_queue_move(&flusher->parts[i].incoming, &left);
	}
	pthread_mutex_unlock(&flusher->mtx);
	flusher_settle(flusher, left.head);

	pthread_cond_destroy(&flusher->settle_wake);
	pthread_cond_destroy(&flusher->wake);
	pthread_mutex_destroy(&flusher->mtx);
	free(flusher);
}
