/*
 * zos-load's run engine; see run.h. It drives the asynchronous client
 * (zrpc_client_call_raw_async), as ghz does for gRPC.
 *
 * Closed loop (the default): C callers, each with one call in flight; the
 * completion callback of a call records it and issues the caller's next
 * one, so C calls are in flight at all times from no thread of ours. Open
 * loop (--rate R): one scheduler thread issues call k at start + k / R on
 * an absolute schedule (a late call does not push the later ones back, so
 * the rate over a run is R however the sleeps jitter), and at most C calls
 * are in flight: a scheduler that finds all C busy waits for one, falls
 * behind, and catches up after (the largest lag is reported).
 *
 * Calls only pick one of the packed payloads (payloads.h): the one there
 * is, the next one round robin, or with --data-per-caller the next of the
 * caller's own block. Callers are spread over K client connections (K
 * req0 sockets, each its own TCP connection).
 *
 * Completion callbacks run on nng's threads and stay cheap: the latency
 * goes into one lock-free log-linear histogram (7 precision bits, under 1%
 * relative error), the status into an atomic counter per code, and the
 * first message of each error code into a slot claimed with an
 * atomic_flag. Nothing in a callback takes a lock of ours.
 *
 * Ending. A count of holders ("outstanding") keeps the run alive: each
 * running caller (closed loop), each call in flight and the scheduler
 * (open loop), and main while it starts the callers. Whoever drops it to
 * zero notes the end time and wakes main through an eventfd. Main waits
 * on that eventfd and on a signalfd for SIGINT/SIGTERM (blocked in every
 * thread, so no handler and no global flag), and prints a progress line on
 * stderr every second meanwhile.
 */
#include "run.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "zrpc/clock.h"

#define LOAD_HISTOGRAM_PRECISION 7 /* under 1% relative error */
#define LOAD_PROGRESS_NS 1000000000u
#define LOAD_WAIT_SLICE_NS 100000000u /* scheduler checks for a stop */
#define LOAD_HEALTH_PATH "/zrpc.v1.Health/Check"

/* Drops one hold on the run; the last one ends it. Any thread. */
static void
load_run_release(struct load_run *run)
{
	uint64_t one = 1;

	if (atomic_fetch_sub(&run->outstanding, 1) == 1) {
		atomic_store(&run->end_ns, zrpc_now_ns());
		if (write(run->done_fd, &one, sizeof(one)) != sizeof(one)) {
			/* An eventfd write of 1 cannot fail short of a
			 * counter overflow; main would then time out on
			 * its poll and find outstanding at 0 anyway. */
		}
	}
}

/* Counts one finished call with STATUS (and its latency when timed). */
static void
load_run_count(struct load_run *run, const zrpc_status *status)
{
	zrpc_code code =
	    status->code < ZRPC_CODE_COUNT ? status->code : ZRPC_UNKNOWN;
	struct load_error_note *note = &run->notes[code];

	atomic_fetch_add_explicit(&run->codes[code], 1, memory_order_relaxed);
	if (code != ZRPC_OK && !atomic_flag_test_and_set(&note->taken)) {
		snprintf(note->message, sizeof(note->message), "%s",
		    status->message);
		atomic_store(&note->ready, true);
	}
	atomic_fetch_add_explicit(&run->completed, 1, memory_order_relaxed);
}

/* The payload caller C sends next. */
static const struct load_payload *
load_run_pick(struct load_run *run, struct load_caller *c)
{
	const struct load_payloads *payloads = run->payloads;
	size_t                      block;

	if (payloads->n == 1) {
		return &payloads->items[0];
	}
	if (run->opts->data_per_caller) {
		block = payloads->n / run->n_callers;
		return &payloads->items[c->index * block + c->seq++ % block];
	}
	return &payloads->items[atomic_fetch_add_explicit(&run->next_payload,
	                            1, memory_order_relaxed) %
	    payloads->n];
}

static void load_run_call_done(void *arg, const zrpc_status *status,
    const uint8_t *reply, size_t reply_len);

/*
 * Starts the next call of C. Returns true when it started; false when it
 * could not (the failure is counted as a call).
 */
static bool
load_run_call_start(struct load_caller *c)
{
	struct load_run           *run = c->run;
	const struct load_payload *p   = load_run_pick(run, c);
	zrpc_status                status;

	c->started_ns = zrpc_now_ns();
	status = zrpc_client_call_raw_async(c->client, run->payloads->path,
	    p->bytes, p->len, &run->call_opts, load_run_call_done, c);
	if (!zrpc_status_is_ok(&status)) {
		load_run_count(run, &status);
		return false;
	}
	return true;
}

/* Closed loop: may caller C issue one more call? */
static bool
load_run_claim(struct load_run *run)
{
	if (atomic_load_explicit(&run->stopping, memory_order_relaxed)) {
		return false;
	}
	if (run->opts->requests > 0) {
		return atomic_fetch_add(&run->claimed, 1) <
		    run->opts->requests;
	}
	return zrpc_now_ns() < run->deadline_ns;
}

/*
 * Closed loop: issues caller C's next call, or retires the caller when
 * the run is over or a call cannot start (which only happens for a
 * lasting reason: out of memory, a closing client).
 */
static void
load_run_caller_next(struct load_caller *c)
{
	if (!load_run_claim(c->run) || !load_run_call_start(c)) {
		load_run_release(c->run);
	}
}

/* Completion of every call; runs on an nng thread. */
static void
load_run_call_done(void *arg, const zrpc_status *status, const uint8_t *reply,
    size_t reply_len)
{
	struct load_caller *c   = arg;
	struct load_run    *run = c->run;

	zrpc_histogram_record(run->latency, zrpc_now_ns() - c->started_ns);
	load_run_count(run, status);
	if (run->opts->rate > 0) {
		atomic_store_explicit(&c->busy, false, memory_order_release);
		sem_post(&run->slots);
		load_run_release(run);
	} else {
		load_run_caller_next(c);
	}
}

/*
 * Sleeps until AT_NS (CLOCK_MONOTONIC) in slices, so that a stop is seen
 * within one. Returns false when the run is stopping.
 */
static bool
load_run_sleep_until(struct load_run *run, uint64_t at_ns)
{
	for (;;) {
		uint64_t        now = zrpc_now_ns(), wake = at_ns;
		struct timespec ts;

		if (atomic_load(&run->stopping)) {
			return false;
		}
		if (now >= at_ns) {
			return true;
		}
		if (wake - now > LOAD_WAIT_SLICE_NS) {
			wake = now + LOAD_WAIT_SLICE_NS;
		}
		ts.tv_sec  = (time_t) (wake / 1000000000u);
		ts.tv_nsec = (long) (wake % 1000000000u);
		(void) clock_nanosleep(
		    CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
	}
}

/* Waits for a free call slot. Returns false when the run is stopping. */
static bool
load_run_slot_wait(struct load_run *run)
{
	for (;;) {
		uint64_t        wake = zrpc_now_ns() + LOAD_WAIT_SLICE_NS;
		struct timespec ts   = {
			  .tv_sec  = (time_t) (wake / 1000000000u),
			  .tv_nsec = (long) (wake % 1000000000u),
		};

		if (atomic_load(&run->stopping)) {
			return false;
		}
		if (sem_clockwait(&run->slots, CLOCK_MONOTONIC, &ts) == 0) {
			return true;
		}
	}
}

/*
 * Open loop: the scheduler thread. Call k is due at start + k / rate; a
 * call that is late goes out at once, and the schedule stays where it was.
 */
static void *
load_run_scheduler_main(void *arg)
{
	struct load_run           *run       = arg;
	const struct load_options *opts      = run->opts;
	double                     period_ns = 1e9 / opts->rate;

	for (uint64_t k = 0;; k++) {
		uint64_t due =
		    run->start_ns + (uint64_t) llround((double) k * period_ns);
		uint64_t            now;
		struct load_caller *c;

		if (opts->requests > 0 ? k >= opts->requests
		                       : due >= run->deadline_ns) {
			break;
		}
		if (!load_run_sleep_until(run, due) ||
		    !load_run_slot_wait(run)) {
			break;
		}
		now = zrpc_now_ns();
		if (now - due > run->max_lag_ns) {
			run->max_lag_ns = now - due;
		}
		/* The semaphore guarantees a free slot; find it. */
		for (;;) {
			c           = &run->callers[run->cursor];
			run->cursor = (run->cursor + 1) % run->n_callers;
			if (!atomic_load_explicit(
			        &c->busy, memory_order_acquire)) {
				break;
			}
		}
		atomic_store_explicit(&c->busy, true, memory_order_relaxed);
		atomic_fetch_add(&run->outstanding, 1);
		if (!load_run_call_start(c)) {
			atomic_store(&c->busy, false);
			sem_post(&run->slots);
			load_run_release(run);
		}
	}
	load_run_release(run);
	return NULL;
}

/* Prints one progress line on stderr. */
static void
load_run_progress(struct load_run *run, uint64_t now, uint64_t *last_count,
    uint64_t *last_ns)
{
	uint64_t completed = atomic_load(&run->completed);
	uint64_t errors    = 0;
	double   dt        = (double) (now - *last_ns) / 1e9;

	/* Not completed - OK: the two are not read at one instant. */
	for (size_t i = 1; i < ZRPC_CODE_COUNT; i++) {
		errors += atomic_load(&run->codes[i]);
	}

	fprintf(stderr,
	    "zos-load: %6.1f s %10.0f calls/s %12" PRIu64 " calls %8" PRIu64
	    " errors   p99 %.1f us\n",
	    (double) (now - run->start_ns) / 1e9,
	    dt > 0 ? (double) (completed - *last_count) / dt : 0.0, completed,
	    errors,
	    (double) zrpc_histogram_quantile(run->latency, 0.99) / 1e3);
	*last_count = completed;
	*last_ns    = now;
}

bool
load_run_execute(struct load_run *run, int sigfd)
{
	const struct load_options *opts        = run->opts;
	bool                       interrupted = false;
	uint64_t                   last_count  = 0, last_ns, next_tick;
	int                        rv;

	run->start_ns = zrpc_now_ns();
	run->deadline_ns =
	    run->start_ns + (uint64_t) llround(opts->duration_s * 1e9);
	last_ns   = run->start_ns;
	next_tick = run->start_ns + LOAD_PROGRESS_NS;

	atomic_store(&run->outstanding, 1); /* main's (or the scheduler's) */
	if (opts->rate > 0) {
		if ((rv = pthread_create(&run->scheduler, NULL,
		         load_run_scheduler_main, run)) != 0) {
			fprintf(stderr, "zos-load: pthread_create: %s\n",
			    strerror(rv));
			exit(LOAD_EXIT_FAILED);
		}
	} else {
		atomic_fetch_add(&run->outstanding, run->n_callers);
		for (size_t i = 0; i < run->n_callers; i++) {
			load_run_caller_next(&run->callers[i]);
		}
		load_run_release(run);
	}

	while (atomic_load(&run->outstanding) > 0) {
		struct pollfd fds[2] = {
			{ .fd = run->done_fd, .events = POLLIN },
			{ .fd = sigfd, .events = POLLIN },
		};
		uint64_t now = zrpc_now_ns();
		int      wait_ms;

		if (now >= next_tick) {
			load_run_progress(run, now, &last_count, &last_ns);
			while (next_tick <= now) {
				next_tick += LOAD_PROGRESS_NS;
			}
		}
		wait_ms = (int) ((next_tick - now + 999999u) / 1000000u);
		if (poll(fds, 2, wait_ms) < 0 && errno != EINTR) {
			fprintf(
			    stderr, "zos-load: poll: %s\n", strerror(errno));
			exit(LOAD_EXIT_FAILED);
		}
		if (fds[1].revents & POLLIN) {
			struct signalfd_siginfo info;

			if (read(sigfd, &info, sizeof(info)) == sizeof(info)) {
				if (interrupted) {
					/* A second signal: leave now. */
					_exit(LOAD_EXIT_INTERRUPTED);
				}
				interrupted = true;
				atomic_store(&run->stopping, true);
				fprintf(stderr,
				    "zos-load: stopping: waiting for the "
				    "calls in flight (again to quit at "
				    "once)\n");
			}
		}
	}
	if (opts->rate > 0) {
		pthread_join(run->scheduler, NULL);
	}
	return interrupted;
}

/*
 * Checks that every client reaches the server: one Health/Check each
 * (empty method with --echo), where any reply will do. Returns 0, or -1
 * with a message on stderr.
 */
static int
load_run_check_servers(struct load_run *run)
{
	zrpc_call_opts opts = run->call_opts;

	opts.timeout_ms = run->opts->echo ? 0 : run->opts->connect_timeout_ms;
	for (size_t i = 0; i < run->n_clients; i++) {
		uint8_t    *reply = NULL;
		size_t      len;
		zrpc_status status = zrpc_client_call_raw(run->clients[i],
		    run->opts->echo ? "" : LOAD_HEALTH_PATH, NULL, 0, &reply,
		    &len, &opts);

		free(reply);
		if (status.code == ZRPC_UNAVAILABLE ||
		    status.code == ZRPC_DEADLINE_EXCEEDED) {
			fprintf(stderr, "zos-load: cannot reach %s: %s: %s\n",
			    run->opts->url, zrpc_status_name(status.code),
			    status.message);
			return -1;
		}
	}
	return 0;
}

int
load_run_setup(struct load_run *run, const struct load_options *opts,
    const struct load_payloads *payloads)
{
	zrpc_client_opts client_opts = {
		.connect_timeout_ms = opts->connect_timeout_ms,
		.tls_ca_file        = opts->tls_ca,
		.tls_cert_file      = opts->cert,
		.tls_key_file       = opts->key,
	};
	zrpc_status status;
	int         rv;

	memset(run, 0, sizeof(*run));
	run->opts                 = opts;
	run->payloads             = payloads;
	run->done_fd              = -1;
	run->call_opts.timeout_ms = opts->echo ? 0 : opts->timeout_ms;
	run->call_opts.token      = opts->token;
	if ((rv = zrpc_histogram_create(
	         &run->latency, LOAD_HISTOGRAM_PRECISION)) != 0) {
		fprintf(stderr, "zos-load: histogram: %s\n", strerror(rv));
		return LOAD_EXIT_FAILED;
	}
	for (size_t i = 0; i < ZRPC_CODE_COUNT; i++) {
		atomic_init(&run->codes[i], 0);
		atomic_flag_clear(&run->notes[i].taken);
		atomic_init(&run->notes[i].ready, false);
	}
	if ((run->done_fd = eventfd(0, EFD_CLOEXEC)) < 0) {
		fprintf(stderr, "zos-load: eventfd: %s\n", strerror(errno));
		return LOAD_EXIT_FAILED;
	}
	if (sem_init(&run->slots, 0, (unsigned) opts->concurrency) != 0) {
		fprintf(stderr, "zos-load: sem_init: %s\n", strerror(errno));
		return LOAD_EXIT_FAILED;
	}
	run->slots_ready = true;
	run->clients     = calloc(opts->connections, sizeof(*run->clients));
	run->callers     = calloc(opts->concurrency, sizeof(*run->callers));
	run->n_callers   = opts->concurrency;
	if (run->clients == NULL || run->callers == NULL) {
		fprintf(stderr, "zos-load: out of memory\n");
		return LOAD_EXIT_FAILED;
	}
	for (size_t i = 0; i < opts->connections; i++) {
		status = zrpc_client_open(
		    &run->clients[i], opts->url, &client_opts);
		if (!zrpc_status_is_ok(&status)) {
			fprintf(stderr, "zos-load: --url %s: %s\n", opts->url,
			    status.message);
			return status.code == ZRPC_INVALID_ARGUMENT
			    ? LOAD_EXIT_USAGE
			    : LOAD_EXIT_FAILED;
		}
		run->n_clients++;
	}
	for (size_t i = 0; i < run->n_callers; i++) {
		struct load_caller *c = &run->callers[i];

		c->run    = run;
		c->index  = i;
		c->client = run->clients[i % run->n_clients];
		atomic_init(&c->busy, false);
	}
	if (load_run_check_servers(run) != 0) {
		return LOAD_EXIT_FAILED;
	}
	return 0;
}

void
load_run_finish(struct load_run *run)
{
	for (size_t i = 0; i < run->n_clients; i++) {
		zrpc_client_close(run->clients[i]);
	}
	free(run->clients);
	free(run->callers);
	zrpc_histogram_destroy(run->latency);
	if (run->done_fd >= 0) {
		close(run->done_fd);
	}
	if (run->slots_ready) {
		sem_destroy(&run->slots);
	}
}
