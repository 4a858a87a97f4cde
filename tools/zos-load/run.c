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
 * Counting is the zrpc client's: every client counts its calls by code,
 * with a latency histogram of 7 precision bits (under 1% relative
 * error), lock-free (zrpc_client_stats); the report and the progress
 * line read those (stats.h). Completion callbacks only keep the first
 * message of each error code, in a slot claimed with an atomic_flag, and
 * issue the next call. Nothing in a callback takes a lock of ours.
 *
 * Phases. With --skip-first N, N calls run first, closed loop at the
 * same concurrency, and end before the measured run starts; then the
 * clients' metrics and the error messages are cleared (no call is in
 * flight, so the clearing is exact) and the run proper begins. The
 * Health/Check of each connection before the run is cleared the same way.
 *
 * Steps. With --rate START:END:STEP, the scheduler moves to the next
 * rate every --step-duration, and main takes a snapshot of the metrics
 * at each step's end: the calls that completed between two snapshots are
 * the step's.
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
#define LOAD_STEP_NS(opts) ((uint64_t) llround((opts)->step_duration_s * 1e9))
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

/*
 * Notes the message of a finished call's STATUS when it is the first of
 * its error code. (The client's metrics count the call itself.)
 */
static void
load_run_note(struct load_run *run, const zrpc_status *status)
{
	zrpc_code code =
	    status->code < ZRPC_CODE_COUNT ? status->code : ZRPC_UNKNOWN;
	struct load_error_note *note = &run->notes[code];

	if (code != ZRPC_OK && !atomic_flag_test_and_set(&note->taken)) {
		snprintf(note->message, sizeof(note->message), "%s",
		    status->message);
		atomic_store(&note->ready, true);
	}
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
 * could not (the client counts the failure as a call).
 */
static bool
load_run_call_start(struct load_caller *c)
{
	struct load_run           *run = c->run;
	const struct load_payload *p   = load_run_pick(run, c);
	zrpc_status                status;

	status = zrpc_client_call_raw_async(c->client, run->payloads->path,
	    p->bytes, p->len, &run->call_opts, load_run_call_done, c);
	if (!zrpc_status_is_ok(&status)) {
		load_run_note(run, &status);
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
	if (run->limit > 0) {
		return atomic_fetch_add(&run->claimed, 1) < run->limit;
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

	(void) reply;
	(void) reply_len;
	load_run_note(run, status);
	if (run->open_loop) {
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
 * Open loop: the scheduler thread. Call k of a step is due at the step's
 * start + k / its rate; a call that is late goes out at once, and the
 * schedule stays where it was. A step of a --rate START:END:STEP schedule
 * lasts --step-duration; the last one (at END) lasts to the end.
 */
static void *
load_run_scheduler_main(void *arg)
{
	struct load_run           *run     = arg;
	const struct load_options *opts    = run->opts;
	size_t                     n_steps = load_flags_steps(opts), step = 0;
	uint64_t step_ns    = n_steps > 1 ? LOAD_STEP_NS(opts) : 0;
	uint64_t step_start = run->start_ns, in_step = 0;
	double   period_ns = 1e9 / load_flags_step_rate(opts, 0);

	for (uint64_t k = 0;; k++, in_step++) {
		uint64_t due = step_start +
		    (uint64_t) llround((double) in_step * period_ns);
		uint64_t            now;
		struct load_caller *c;

		while (step + 1 < n_steps && due >= step_start + step_ns) {
			step++;
			step_start += step_ns;
			in_step   = 0;
			period_ns = 1e9 / load_flags_step_rate(opts, step);
			due       = step_start;
		}
		if (run->limit > 0 ? k >= run->limit
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

/* The calls and errors so far, and the p99, over every client. */
static void
load_run_progress(struct load_run *run, uint64_t now, uint64_t *last_count,
    uint64_t *last_ns)
{
	struct load_snapshot snap;
	double               dt = (double) (now - *last_ns) / 1e9;

	if (load_snapshot_take(&snap, &run->buckets, run->clients,
	        run->n_clients, run->payloads->path) != 0) {
		return; /* out of memory: no progress line this time */
	}
	fprintf(stderr,
	    "zos-load: %6.1f s %10.0f calls/s %12" PRIu64 " calls %8" PRIu64
	    " errors   p99 %.1f us\n",
	    (double) (now - run->start_ns) / 1e9,
	    dt > 0 ? (double) (snap.calls - *last_count) / dt : 0.0,
	    snap.calls, snap.calls - snap.codes[ZRPC_OK],
	    (double) load_snapshot_quantile(&snap, 0.99) / 1e3);
	*last_count = snap.calls;
	*last_ns    = now;
	load_snapshot_finish(&snap);
}

/*
 * Ends step run->n_steps - 1 at NOW: its calls are those completed since
 * *MARK, the snapshot at its start, which becomes the snapshot at NOW.
 * Exits (LOAD_EXIT_FAILED) when out of memory.
 */
static void
load_run_step_end(
    struct load_run *run, uint64_t now, struct load_snapshot *mark)
{
	struct load_step    *step = &run->steps[run->n_steps - 1];
	struct load_snapshot snap;

	if (load_snapshot_take(&snap, &run->buckets, run->clients,
	        run->n_clients, run->payloads->path) != 0 ||
	    load_snapshot_diff(&step->calls, &snap, mark) != 0) {
		fprintf(stderr, "zos-load: out of memory\n");
		exit(LOAD_EXIT_FAILED);
	}
	step->end_ns = now - run->start_ns;
	for (size_t i = 0; i < run->opts->n_percentiles; i++) {
		step->percentiles_ns[i] = load_snapshot_quantile(
		    &step->calls, run->opts->percentiles[i] / 100);
	}
	/* A step keeps its figures, not its buckets (38 KiB each). */
	load_snapshot_finish(&step->calls);
	load_snapshot_finish(mark);
	*mark = snap;
}

/* Begins step number run->n_steps at NOW (relative times). */
static void
load_run_step_begin(struct load_run *run, uint64_t now)
{
	struct load_step *step = &run->steps[run->n_steps++];

	memset(step, 0, sizeof(*step));
	step->rate     = load_flags_step_rate(run->opts, run->n_steps - 1);
	step->start_ns = now - run->start_ns;
}

/*
 * Waits for the end of the phase running: prints a progress line every
 * second when PROGRESS, ends and begins steps at their boundaries (when
 * the measured run has steps), and handles SIGFD. Returns true when a
 * signal cut the phase short.
 */
static bool
load_run_wait(struct load_run *run, int sigfd, bool progress)
{
	bool     interrupted = false, stepped = progress && run->steps != NULL;
	uint64_t last_count = 0, last_ns = run->start_ns;
	uint64_t next_tick        = run->start_ns + LOAD_PROGRESS_NS;
	uint64_t step_ns          = stepped ? LOAD_STEP_NS(run->opts) : 0;
	size_t   n_steps          = load_flags_steps(run->opts);
	uint64_t next_step        = run->start_ns + step_ns;
	struct load_snapshot mark = { 0 };

	if (stepped) {
		load_run_step_begin(run, run->start_ns);
	}
	while (atomic_load(&run->outstanding) > 0) {
		struct pollfd fds[2] = {
			{ .fd = run->done_fd, .events = POLLIN },
			{ .fd = sigfd, .events = POLLIN },
		};
		uint64_t now = zrpc_now_ns(), wake;
		int      wait_ms;

		if (progress && now >= next_tick) {
			load_run_progress(run, now, &last_count, &last_ns);
			while (next_tick <= now) {
				next_tick += LOAD_PROGRESS_NS;
			}
		}
		while (stepped && run->n_steps < n_steps && now >= next_step) {
			load_run_step_end(run, next_step, &mark);
			load_run_step_begin(run, next_step);
			next_step += step_ns;
		}
		wake = next_tick;
		if (stepped && run->n_steps < n_steps && next_step < wake) {
			wake = next_step;
		}
		wait_ms =
		    wake > now ? (int) ((wake - now + 999999u) / 1000000u) : 0;
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
	if (stepped) {
		uint64_t end = atomic_load(&run->end_ns);

		load_run_step_end(
		    run, end > run->start_ns ? end : zrpc_now_ns(), &mark);
	}
	load_snapshot_finish(&mark);
	return interrupted;
}

/*
 * Runs one phase: the closed loop (C callers) or the --rate scheduler,
 * from now on, until its end; see load_run_wait for the rest.
 */
static bool
load_run_phase(struct load_run *run, int sigfd, bool progress)
{
	const struct load_options *opts = run->opts;
	bool                       interrupted;
	uint64_t                   drained;
	int                        rv;

	atomic_store(&run->claimed, 0);
	atomic_store(&run->end_ns, 0);
	/* The phase before left its wake-up in the (non-blocking) eventfd. */
	if (read(run->done_fd, &drained, sizeof(drained)) < 0 &&
	    errno != EAGAIN) {
		fprintf(stderr, "zos-load: eventfd: %s\n", strerror(errno));
		exit(LOAD_EXIT_FAILED);
	}
	run->start_ns = zrpc_now_ns();
	run->deadline_ns =
	    run->start_ns + (uint64_t) llround(opts->duration_s * 1e9);

	atomic_store(&run->outstanding, 1); /* main's (or the scheduler's) */
	if (run->open_loop) {
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
	interrupted = load_run_wait(run, sigfd, progress);
	if (run->open_loop) {
		pthread_join(run->scheduler, NULL);
	}
	return interrupted;
}

/* Forgets every call made so far: the metrics and the first errors. */
static void
load_run_clear(struct load_run *run)
{
	for (size_t i = 0; i < run->n_clients; i++) {
		zrpc_client_stats_reset(run->clients[i]);
	}
	for (size_t i = 0; i < ZRPC_CODE_COUNT; i++) {
		atomic_flag_clear(&run->notes[i].taken);
		atomic_store(&run->notes[i].ready, false);
	}
}

bool
load_run_execute(struct load_run *run, int sigfd)
{
	const struct load_options *opts = run->opts;
	bool                       interrupted;

	/* The connection checks are not part of the run. */
	load_run_clear(run);
	if (opts->skip_first > 0) {
		run->open_loop = false;
		run->limit     = opts->skip_first;
		if (load_run_phase(run, sigfd, false)) {
			return true;
		}
		load_run_clear(run);
	}
	run->open_loop = opts->rate > 0;
	run->limit     = opts->requests;
	if (load_flags_steps(opts) > 1) {
		run->steps =
		    calloc(load_flags_steps(opts), sizeof(*run->steps));
		if (run->steps == NULL) {
			fprintf(stderr, "zos-load: out of memory\n");
			exit(LOAD_EXIT_FAILED);
		}
	}
	interrupted = load_run_phase(run, sigfd, true);
	if (load_snapshot_take(&run->total, &run->buckets, run->clients,
	        run->n_clients, run->payloads->path) != 0) {
		fprintf(stderr, "zos-load: out of memory\n");
		exit(LOAD_EXIT_FAILED);
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
		.metrics_precision  = LOAD_HISTOGRAM_PRECISION,
	};
	zrpc_status status;

	memset(run, 0, sizeof(*run));
	run->opts                 = opts;
	run->payloads             = payloads;
	run->done_fd              = -1;
	run->call_opts.timeout_ms = opts->echo ? 0 : opts->timeout_ms;
	run->call_opts.token      = opts->token;
	run->call_opts.metadata   = opts->headers;
	run->call_opts.n_metadata = opts->n_headers;
	for (size_t i = 0; i < ZRPC_CODE_COUNT; i++) {
		atomic_flag_clear(&run->notes[i].taken);
		atomic_init(&run->notes[i].ready, false);
	}
	if ((run->done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
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
	for (size_t i = 0; i < run->n_steps; i++) {
		load_snapshot_finish(&run->steps[i].calls);
	}
	free(run->steps);
	load_snapshot_finish(&run->total);
	load_buckets_finish(&run->buckets);
	if (run->done_fd >= 0) {
		close(run->done_fd);
	}
	if (run->slots_ready) {
		sem_destroy(&run->slots);
	}
}
