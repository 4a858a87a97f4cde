/*
 * zos-load's run engine: the client connections, the callers and their
 * calls in flight, the --rate schedule, the end of the run (--duration or
 * --requests, or a signal) and the progress line; and what the run
 * measured, which the report (report.h) reads once it is over.
 *
 * Threads: load_run_setup, load_run_execute and load_run_finish are
 * called from one thread (main), in that order. During load_run_execute
 * the calls complete on nng's threads and, with --rate, a scheduler thread
 * issues them; every field they share is atomic or owned by one of them,
 * as the comments below say. After load_run_execute returns no other
 * thread touches the run.
 */
#ifndef ZOS_LOAD_RUN_H
#define ZOS_LOAD_RUN_H

#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "flags.h"
#include "payloads.h"
#include "stats.h"
#include "zrpc/client.h"
#include "zrpc/status.h"

/* The first message seen for one status code. */
struct load_error_note {
	atomic_flag taken;
	atomic_bool ready;
	char        message[ZRPC_STATUS_MESSAGE_MAX];
};

struct load_run;

/*
 * One step of a --rate START:END:STEP schedule, as the report shows it:
 * its target rate, when it began and ended (relative to the start of the
 * run) and the calls that completed within it. (A run without steps has
 * none.)
 */
struct load_step {
	double   rate;
	uint64_t start_ns, end_ns;
	/* Completed in [start_ns, end_ns): counts, sum and max only (the
	 * buckets are freed once the percentiles are read off them). */
	struct load_snapshot calls;
	uint64_t             percentiles_ns[LOAD_MAX_PERCENTILES];
};

/*
 * A caller (closed loop) or a call slot (open loop). In the closed loop
 * only the callback of its own call in flight touches it; in the open
 * loop the scheduler claims a free slot (busy false -> true) and the
 * callback gives it back.
 */
struct load_caller {
	struct load_run *run;
	size_t           index;
	zrpc_client     *client;
	uint64_t         seq;  /* calls issued (--data-per-caller) */
	atomic_bool      busy; /* open loop: a call is in flight */
};

struct load_run {
	const struct load_options  *opts;
	const struct load_payloads *payloads; /* path and bodies */
	zrpc_call_opts              call_opts;
	zrpc_client               **clients;
	size_t                      n_clients;
	struct load_caller         *callers;
	size_t                      n_callers;

	/*
	 * What the report reads (after load_run_execute): the counts and
	 * latencies are the clients' own metrics (stats.h), read into
	 * TOTAL once the run is over; the first message of each error code
	 * is ours. STEPS (main thread only) holds the steps of a --rate
	 * schedule that the run reached.
	 */
	struct load_buckets    buckets;
	struct load_snapshot   total;
	struct load_step      *steps;
	size_t                 n_steps;
	struct load_error_note notes[ZRPC_CODE_COUNT];
	atomic_uint_fast64_t   claimed;      /* calls issued in this phase */
	atomic_uint_fast64_t   next_payload; /* --data-file round robin */
	atomic_bool            stopping;     /* no new calls */
	/* The phase running: the --skip-first warm-up (closed loop, LIMIT
	 * calls) or the measured run. Written by main between phases. */
	bool     open_loop;
	uint64_t limit; /* calls of the phase; 0 = until the deadline */

	uint64_t             start_ns;
	uint64_t             deadline_ns; /* --duration: stop issuing */
	atomic_uint_fast64_t end_ns;      /* set when outstanding hits 0 */
	atomic_size_t        outstanding; /* see the top of run.c */
	int                  done_fd;     /* eventfd: written at the end */

	/* Open loop only. */
	sem_t     slots;       /* free call slots */
	bool      slots_ready; /* slots needs sem_destroy */
	size_t    cursor;      /* scheduler only: where to look for a slot */
	uint64_t  max_lag_ns;  /* scheduler only, read after it joined */
	pthread_t scheduler;
};

/*
 * Sets RUN up for OPTS and PAYLOADS (both borrowed; they must outlive the
 * run): opens the --connections clients, sets the callers up and checks
 * that each client reaches the server with one /zrpc.v1.Health/Check (an
 * empty method with --echo), where any reply will do. RUN need not be
 * initialised. Returns 0, or an exit status (LOAD_EXIT_USAGE for a bad
 * --url, LOAD_EXIT_FAILED otherwise) with a message on stderr; either way
 * RUN is to be freed with load_run_finish.
 */
int load_run_setup(struct load_run *run, const struct load_options *opts,
    const struct load_payloads *payloads);

/*
 * Runs the load: starts the callers (or the --rate scheduler) and waits
 * for the end, printing a progress line on stderr every second. SIGFD is
 * a signalfd for SIGINT and SIGTERM, which the caller has blocked in every
 * thread: the first signal stops new calls and waits for those in flight,
 * a second one exits at once (status LOAD_EXIT_INTERRUPTED). Returns true
 * when a signal cut the run short. Exits the process (LOAD_EXIT_FAILED)
 * when it cannot start the scheduler thread or poll.
 */
bool load_run_execute(struct load_run *run, int sigfd);

/*
 * Closes the clients and frees what load_run_setup allocated. Safe after
 * a failed setup. The payloads are the caller's.
 */
void load_run_finish(struct load_run *run);

#endif /* ZOS_LOAD_RUN_H */
