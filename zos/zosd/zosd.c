/*
 * zosd: the zos server program.
 *
 * main owns everything: it parses the flags, blocks SIGINT, SIGTERM,
 * SIGHUP, SIGUSR1, SIGUSR2, SIGALRM, SIGIO and SIGPWR before any thread
 * exists (every thread inherits the mask) and starts one signal thread
 * that takes them with sigwait for the whole life of the process; SIGPIPE
 * and SIGXFSZ are ignored (a write gets EPIPE or EFBIG instead). No signal
 * handler and no global variable is involved: the thread and main share a
 * struct on main's stack.
 *
 * - SIGHUP: re-reads the --auth-tokens file (zosd_reload_tokens) and the
 *   --routing-file (zosd_reload); a bad file keeps the one in use, and
 *   says why in the log.
 * - SIGUSR1, SIGUSR2, SIGALRM, SIGIO, SIGPWR: logged, nothing else; they
 *   never kill zosd.
 * - SIGTERM or SIGINT during start-up (a store loading a large directory,
 *   a skills file that never ends): the process exits at once with
 *   128 + the signal's number, as if the signal had killed it, without
 *   touching the store any further; nothing was acknowledged yet.
 * - The first SIGTERM or SIGINT once serving: main drains the server (up
 *   to --shutdown-grace-ms), closes the store and exits 0.
 * - A second one during that drain: the store writes what is queued (an
 *   acknowledged change is already on disk; this covers the unacknowledged
 *   rest) and the process exits at once with 128 + the signal's number.
 * - The watchdog: after the first one, the signal thread waits for
 *   further signals only until grace + 1.75 s have passed. If the process
 *   is still there then (a drain stuck in the network library, a backend that
 *   never answers), it logs so, writes the store as above and exits with
 *   status 3. So SIGTERM and SIGINT always end zosd within grace + 2 s,
 *   and never lose an acknowledged change: every acknowledged change was
 *   on disk before it was acknowledged.
 *
 * main also sweeps expired sessions (--session-ttl) once a minute, or
 * more often for a short TTL, while it waits for the stop signal.
 */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"
#include "http_metrics.h"
#include "log.h"
#include "metrics.h"
#include "node_id.h"
#include "options.h"
#include "services.h"
#include "state.h"
#include "zrpc/server.h"

/*
 * The watchdog fires this long after the grace, which leaves 250 ms of
 * the promised 2 s for writing the store and for the exit itself.
 */
#define ZOSD_WATCHDOG_MS 1750u

/*
 * The log queue (log.h): lines and bytes it holds for a slow stderr, and
 * how long an exit waits for it. _exit paths wait ZOSD_LOG_EXIT_MS at
 * most (the watchdog's exit has 250 ms for the store and itself); the
 * end of main waits up to ZOSD_LOG_FLUSH_MS, but never past grace +
 * 1.5 s after the stop signal, so that a stalled stderr cannot hold zosd
 * beyond its grace + 2 s.
 */
#define ZOSD_LOG_LINES 8192u
#define ZOSD_LOG_BYTES (1u << 20)
#define ZOSD_LOG_EXIT_MS 100u
#define ZOSD_LOG_FLUSH_MS 1000u
#define ZOSD_LOG_FLUSH_BY_MS 1500u

/*
 * What main and the signal thread share; on main's stack. The thread is
 * never joined: it waits in sigwait until the process ends.
 */
struct zosd_signals {
	sigset_t              set;      /* the signals taken; constant */
	const struct zos_log *log;      /* constant */
	unsigned              grace_ms; /* --shutdown-grace-ms; constant */
	pthread_mutex_t       mu;
	pthread_cond_t        stop;      /* signalled when stop_sig is set */
	bool                  serving;   /* guarded by: mu */
	int                   stop_sig;  /* guarded by: mu; 0 until asked */
	struct zos_state     *state;     /* guarded by: mu; NULL until made */
	bool                  closing;   /* guarded by: mu; store closing */
	bool                  done;      /* guarded by: mu; main returns */
	int                   exit_code; /* guarded by: mu; when done */
	/* --auth-tokens: the table SIGHUP reloads and its file. */
	zrpc_auth  *auth;      /* guarded by: mu; NULL = none */
	const char *auth_path; /* guarded by: mu */
};

/*
 * The store's health, passed on to the server's Health service: "" is
 * NOT_SERVING while the store cannot commit. The store is opened before
 * the server exists and may report from its flusher thread at any time,
 * so the server is attached once made and detached before it stops.
 */
struct zosd_store_health {
	pthread_mutex_t mu;
	zrpc_server    *server; /* guarded by: mu; NULL: not attached */
	bool            ok;     /* guarded by: mu; the store's last word */
};

/* The store's callback (state.h: store_health). Flusher thread. */
static void
zosd_store_health(void *arg, bool ok, const char *why)
{
	struct zosd_store_health *h = arg;

	(void) why; /* the store logs it */
	pthread_mutex_lock(&h->mu);
	h->ok = ok;
	if (h->server != NULL) {
		zrpc_server_set_serving(h->server, "", ok);
	}
	pthread_mutex_unlock(&h->mu);
}

/* Attaches SERVER (NULL detaches), telling it the store's health. */
static void
zosd_store_health_attach(struct zosd_store_health *h, zrpc_server *server)
{
	pthread_mutex_lock(&h->mu);
	h->server = server;
	if (server != NULL && !h->ok) {
		zrpc_server_set_serving(server, "", false);
	}
	pthread_mutex_unlock(&h->mu);
}

static const char *
zosd_signal_name(int sig)
{
	switch (sig) {
	case SIGINT:
		return "SIGINT";
	case SIGTERM:
		return "SIGTERM";
	case SIGHUP:
		return "SIGHUP";
	case SIGUSR1:
		return "SIGUSR1";
	case SIGUSR2:
		return "SIGUSR2";
	case SIGALRM:
		return "SIGALRM";
	case SIGIO:
		return "SIGIO";
	case SIGPWR:
		return "SIGPWR";
	}
	return "a signal";
}

/* Before an _exit: gives the log queue a short while to write what is
 * queued (the last lines say why zosd exits). */
static void
zosd_log_flush_exit(const struct zos_log *log)
{
	if (log->queue != NULL) {
		(void) zrpc_logq_flush(log->queue, ZOSD_LOG_EXIT_MS);
	}
}

/*
 * How long the end of main waits for the log queue after a stop: until
 * grace + 1.5 s after the stop signal (at STOP_AT), between
 * ZOSD_LOG_EXIT_MS and ZOSD_LOG_FLUSH_MS.
 */
static unsigned
zosd_log_flush_ms(unsigned grace_ms, const struct timespec *stop_at)
{
	struct timespec now;
	int64_t         left;

	clock_gettime(CLOCK_MONOTONIC, &now);
	left = (int64_t) grace_ms + ZOSD_LOG_FLUSH_BY_MS -
	    ((int64_t) (now.tv_sec - stop_at->tv_sec) * 1000 +
	        (now.tv_nsec - stop_at->tv_nsec) / 1000000);
	if (left < (int64_t) ZOSD_LOG_EXIT_MS) {
		return ZOSD_LOG_EXIT_MS;
	}
	return left > (int64_t) ZOSD_LOG_FLUSH_MS ? ZOSD_LOG_FLUSH_MS
	                                          : (unsigned) left;
}

/*
 * Makes every durable part of STATE durable up to its latest change and
 * waits for it (the second-signal exit). No zOS lock may be held.
 */
static void
zosd_flush_state(const struct zos_log *log, struct zos_state *state)
{
	struct zos_skill_vector *v;
	uint64_t                 skills_seq;
	char                     message[256];

	if (state == NULL || state->store == NULL) {
		return;
	}
	v          = zos_skills_latest(&state->skills);
	skills_seq = v->change_seq;
	zos_skill_vector_unref(v);
	if (zos_store_commit_wait(state->store, ZOS_STORE_SKILLS, skills_seq,
	        message, sizeof(message)) != 0) {
		zos_log_printf(log, ZRPC_LOG_ERROR, "%s", message);
	}
	if (zos_store_commit_wait(state->store, ZOS_STORE_SESSIONS,
	        zos_sessions_seq(state->sessions), message,
	        sizeof(message)) != 0) {
		zos_log_printf(log, ZRPC_LOG_ERROR, "%s", message);
	}
}

/*
 * SIGHUP's part for --auth-tokens: re-reads the file and swaps it in, or
 * keeps the tokens in use when it is bad. Logs the outcome (file and line,
 * never a token). Holds mu throughout, so that main cannot free the table
 * under the reload; main only waits on mu at shutdown. Returns false when
 * zosd has no tokens file.
 */
static bool
zosd_reload_tokens(struct zosd_signals *s)
{
	zrpc_status status;
	bool        reloaded = false;

	pthread_mutex_lock(&s->mu);
	if (s->auth != NULL) {
		reloaded = true;
		status   = zrpc_auth_reload(s->auth, s->auth_path);
		if (zrpc_status_is_ok(&status)) {
			zos_log_printf(s->log, ZRPC_LOG_INFO,
			    "SIGHUP: reloaded %zu tokens from %s",
			    zrpc_auth_count(s->auth), s->auth_path);
		} else {
			zos_log_printf(s->log, ZRPC_LOG_WARN,
			    "SIGHUP: keeping the previous tokens: %s",
			    status.message);
		}
	}
	pthread_mutex_unlock(&s->mu);
	return reloaded;
}

/*
 * SIGHUP: re-reads the routing file; a bad one keeps the routes in use.
 * Holds S->mu, so that main cannot destroy the state meanwhile (main
 * takes it before it does); no zOS lock is held while the file is read.
 */
static void
zosd_reload(struct zosd_signals *s)
{
	const char *path;
	char        error[512];

	pthread_mutex_lock(&s->mu);
	if (s->state == NULL || s->closing) {
		zos_log_printf(s->log, ZRPC_LOG_INFO,
		    "SIGHUP: %s; nothing reloaded",
		    s->closing ? "shutting down" : "still starting");
	} else if ((path = zos_routing_path(s->state->routing)) == NULL) {
		zos_log_printf(s->log, ZRPC_LOG_INFO,
		    "SIGHUP: no --routing-file to reload");
	} else if (zos_routing_reload(s->state->routing, error,
	               sizeof(error)) != ZOS_ROUTING_OK) {
		zos_log_printf(s->log, ZRPC_LOG_ERROR,
		    "SIGHUP: routing file not reloaded, keeping the routes in "
		    "use: %s",
		    error);
	} else {
		zos_log_printf(s->log, ZRPC_LOG_INFO,
		    "SIGHUP: routing file %s reloaded: %zu routes", path,
		    zos_routing_route_count(s->state->routing));
	}
	pthread_mutex_unlock(&s->mu);
}

/* *TS = now (CLOCK_MONOTONIC: a clock step must not move the watchdog)
 * + MS. */
static void
zosd_deadline(struct timespec *ts, uint64_t ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += (time_t) (ms / 1000);
	ts->tv_nsec += (long) (ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/*
 * Waits for one of S's signals into *SIG. With ARMED (the watchdog is
 * running), gives up at DEADLINE (CLOCK_MONOTONIC) and returns false.
 */
static bool
zosd_wait_signal(struct zosd_signals *s, bool armed,
    const struct timespec *deadline, int *sig)
{
	for (;;) {
		struct timespec now, left;
		int             rv;

		if (!armed) {
			if (sigwait(&s->set, sig) == 0) {
				return true;
			}
			continue;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec > deadline->tv_sec ||
		    (now.tv_sec == deadline->tv_sec &&
		        now.tv_nsec >= deadline->tv_nsec)) {
			return false;
		}
		left.tv_sec  = deadline->tv_sec - now.tv_sec;
		left.tv_nsec = deadline->tv_nsec - now.tv_nsec;
		if (left.tv_nsec < 0) {
			left.tv_sec--;
			left.tv_nsec += 1000000000L;
		}
		if ((rv = sigtimedwait(&s->set, NULL, &left)) > 0) {
			*sig = rv;
			return true;
		}
		/* EAGAIN (time is up: checked above) or EINTR: again. */
	}
}

/*
 * The watchdog's end: the drain overran grace + 2 s. Writes the store
 * (unless main is closing it already) and exits with status 3.
 */
static void
zosd_watchdog_exit(struct zosd_signals *s)
{
	struct zos_state *state;
	bool              closing;

	pthread_mutex_lock(&s->mu);
	state   = s->state;
	closing = s->closing;
	if (s->done) {
		/* main has returned; exit() itself is what is slow. */
		_exit(s->exit_code);
	}
	pthread_mutex_unlock(&s->mu);
	zos_log_printf(s->log, ZRPC_LOG_ERROR,
	    "shutdown watchdog: still running %u ms after the stop signal "
	    "(grace %u ms + %u); %s and exiting with status 3",
	    s->grace_ms + ZOSD_WATCHDOG_MS, s->grace_ms, ZOSD_WATCHDOG_MS,
	    closing ? "the store is being written" : "writing the store");
	if (!closing) {
		zosd_flush_state(s->log, state);
	}
	zosd_log_flush_exit(s->log);
	_exit(3);
}

/* The signal thread: see the top of the file. */
static void *
zosd_signal_thread(void *arg)
{
	struct zosd_signals *s = arg;
	struct zos_state    *state;
	struct timespec      deadline = { 0, 0 };
	bool                 armed    = false;
	int                  sig;

	for (;;) {
		if (!zosd_wait_signal(s, armed, &deadline, &sig)) {
			zosd_watchdog_exit(s);
		}
		if (sig == SIGHUP) {
			zosd_reload_tokens(s);
			zosd_reload(s);
			continue;
		}
		if (sig != SIGTERM && sig != SIGINT) {
			zos_log_printf(s->log, ZRPC_LOG_INFO,
			    "received %s; ignored", zosd_signal_name(sig));
			continue;
		}
		pthread_mutex_lock(&s->mu);
		if (s->serving && s->stop_sig == 0) {
			s->stop_sig = sig;
			pthread_cond_signal(&s->stop);
			pthread_mutex_unlock(&s->mu);
			/* From now on the process ends by grace + 2 s. */
			zosd_deadline(&deadline,
			    (uint64_t) s->grace_ms + ZOSD_WATCHDOG_MS);
			armed = true;
			continue;
		}
		bool starting = !s->serving;
		bool closing  = s->closing;
		state         = s->state;
		pthread_mutex_unlock(&s->mu);
		if (closing) {
			/* The store is writing what is queued: the same as
			 * the flush below, which could not run on it now. */
			zos_log_printf(s->log, ZRPC_LOG_INFO,
			    "received %s; already closing the store",
			    zosd_signal_name(sig));
			continue;
		}
		if (starting) {
			zos_log_printf(s->log, ZRPC_LOG_WARN,
			    "received %s during start-up; exiting",
			    zosd_signal_name(sig));
			zosd_log_flush_exit(s->log);
			_exit(128 + sig);
		}
		zos_log_printf(s->log, ZRPC_LOG_WARN,
		    "received %s again; writing the store and exiting "
		    "without waiting for the calls in flight",
		    zosd_signal_name(sig));
		zosd_flush_state(s->log, state);
		zosd_log_flush_exit(s->log);
		_exit(128 + sig);
	}
	return NULL;
}

/*
 * Removes expired sessions (and asks the store to forget them), then sets
 * *NEXT (CLOCK_REALTIME, for the stop condition's wait) to the next time:
 * a minute on, or a quarter of TTL_MS when that is shorter, but at least
 * a second.
 */
static void
zosd_sweep(const struct zos_log *log, struct zos_state *state, int64_t ttl_ms,
    struct timespec *next)
{
	int64_t every = ttl_ms / 4;
	size_t  n     = zos_state_expire_sessions(state);

	if (n > 0) {
		zos_log_printf(log, ZRPC_LOG_INFO,
		    "sessions: %zu finished sessions expired and removed", n);
	}
	if (every > 60000) {
		every = 60000;
	} else if (every < 1000) {
		every = 1000;
	}
	clock_gettime(CLOCK_REALTIME, next);
	next->tv_sec += (time_t) (every / 1000);
	next->tv_nsec += (long) (every % 1000) * 1000000L;
	if (next->tv_nsec >= 1000000000L) {
		next->tv_sec++;
		next->tv_nsec -= 1000000000L;
	}
}

/*
 * The access log's trace fields, appended to FIELDS at N (room for two
 * more): `traceparent`, the valid one the caller sent, and `trace_id`, the
 * call's trace (the caller's, or the one started for its backend calls).
 * Returns the new count; a call without a trace adds none.
 */
static int
zosd_access_log_trace(zrpc_call *call, struct zos_log_field *fields, int n)
{
	const char *traceparent = zrpc_call_traceparent(call);
	const char *trace_id    = zrpc_call_trace_id(call);

	if (traceparent != NULL) {
		fields[n++] = (struct zos_log_field) { "traceparent",
			traceparent, false };
	}
	if (trace_id != NULL) {
		fields[n++] =
		    (struct zos_log_field) { "trace_id", trace_id, false };
	}
	return n;
}

/*
 * The access log: one line per call that --access-log and
 * --access-log-sample select, at info level, with the fields log.h lists
 * (latency_ms a number; message on error lines only).
 */
static void
zosd_access_log(
    void *arg, zrpc_call *call, const zrpc_status *status, uint64_t latency_ns)
{
	struct zos_access_log *a = arg;
	char                   latency[32];
	struct zos_log_field   fields[7 + 2];
	int                    n = 0;

	if (!zos_access_log_wanted(a, status->code)) {
		return;
	}
	snprintf(
	    latency, sizeof(latency), "%.3f", (double) latency_ns / 1000000.0);
	fields[n++] =
	    (struct zos_log_field) { "method", zrpc_call_method(call), false };
	fields[n++] = (struct zos_log_field) { "code",
		zrpc_status_name(status->code), false };
	fields[n++] = (struct zos_log_field) { "latency_ms", latency, true };
	fields[n++] = (struct zos_log_field) { "request_id",
		zrpc_call_request_id(call), false };
	fields[n++] =
	    (struct zos_log_field) { "peer", zrpc_call_peer(call), false };
	/* The caller's role from its token ("" without one); never the
	 * token. */
	fields[n++] = (struct zos_log_field) { "role",
		zrpc_role_name(zrpc_call_role(call)), false };
	if (status->code != ZRPC_OK) {
		fields[n++] = (struct zos_log_field) { "message",
			status->message, false };
	}
	n = zosd_access_log_trace(call, fields, n);
	zos_log_event(a->log, ZRPC_LOG_INFO, "call", fields, n);
}

/* One line per lock: how often it was taken, wait and hold p99. Written at
 * shutdown, at info level (the metrics endpoint exports them live). */
static void
zosd_log_lock_times(const struct zos_log *log, struct zos_state *state)
{
	struct zos_lock *locks[4];

	zos_state_locks(state, locks);
	for (int i = 0; i < 4; i++) {
		char                 n[32], wait[32], hold[32];
		struct zos_log_field fields[4] = {
			{ "lock", locks[i]->name, false },
			{ "acquisitions", n, true },
			{ "wait_p99_us", wait, true },
			{ "hold_p99_us", hold, true },
		};

		snprintf(n, sizeof(n), "%llu",
		    (unsigned long long) atomic_load(&locks[i]->acquisitions));
		snprintf(wait, sizeof(wait), "%.1f",
		    (double) zrpc_histogram_quantile(locks[i]->wait_ns, 0.99) /
		        1000.0);
		snprintf(hold, sizeof(hold), "%.1f",
		    (double) zrpc_histogram_quantile(locks[i]->hold_ns, 0.99) /
		        1000.0);
		zos_log_event(log, ZRPC_LOG_INFO, "lock times", fields, 4);
	}
}

/* The runtime's thread check: no zOS lock may be held there. */
static void
zosd_check_no_locks(void *arg, const char *where)
{
	struct zos_state *state = arg;

	zos_assert_no_locks_held(&state->locks, where);
}

/*
 * Warns when the TLS key file PATH can be read (or written) by group or
 * others: a private key should be the server user's alone. Not an error,
 * since a deployment may rely on a group it trusts.
 */
static void
zosd_check_key_mode(const struct zos_log *log, const char *path)
{
	struct stat st;

	if (path == NULL || stat(path, &st) != 0) {
		return; /* a missing key is reported when it is loaded */
	}
	if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
		zos_log_printf(log, ZRPC_LOG_WARN,
		    "TLS key file %s is accessible by group or others (mode "
		    "%04o); chmod 600 it",
		    path, (unsigned) (st.st_mode & 07777));
	}
}

/*
 * The model backends: the built-in echo as the flags set it, and a client
 * for every routed model that is a URL (the routing file's and
 * --backend's).
 */
static struct zos_backends *
zosd_backends(const struct zos_options *opts, struct zos_state *state,
    char *error, size_t error_len)
{
	size_t       n_routes = zos_routing_route_count(state->routing);
	const char **urls     = calloc(2 * n_routes + 1, sizeof(*urls));
	struct zos_backends *backends = NULL;
	size_t               n        = 0;

	if (urls == NULL) {
		snprintf(error, error_len, "out of memory");
		return NULL;
	}
	/* Copies, alive until the backends have made their own. */
	struct zos_route *routes = calloc(n_routes + 1, sizeof(*routes));

	if (routes == NULL) {
		free(urls);
		snprintf(error, error_len, "out of memory");
		return NULL;
	}
	for (size_t i = 0; i < n_routes &&
	     zos_routing_route_at(state->routing, i, &routes[i]);
	     i++) {
		const char *models[2] = { routes[i].primary_model,
			routes[i].fallback_model };

		for (size_t m = 0; m < 2; m++) {
			if (strncmp(models[m], ZOS_BACKEND_BUILTIN_PREFIX,
			        strlen(ZOS_BACKEND_BUILTIN_PREFIX)) != 0) {
				urls[n++] = models[m];
			}
		}
	}
	struct zos_backends_config config = {
		.echo_delay_ms  = opts->echo_delay_ms,
		.echo_fail_rate = opts->echo_fail_rate,
		.echo_seed      = 1,
		.urls           = urls,
		.n_urls         = n,
	};
	if (zos_backends_create(&config, &backends, error, error_len) != 0) {
		backends = NULL;
	}
	free(routes);
	free(urls);
	return backends;
}

/*
 * Memory goes back after an attack. glibc's mmap threshold is dynamic:
 * once a large block (a 1 MB reply, a 4 MiB request buffer) has been
 * freed, blocks of that size come from the heap instead, where freed
 * memory is kept, so RSS stays at its peak after a burst of big messages
 * (measured: 16 MB held for good after eight 4 MiB requests, more after
 * repeated bursts). A fixed threshold keeps every block of 128 KiB or
 * more in its own mapping, returned to the kernel when freed; smaller
 * blocks are unaffected. Setting it turns the dynamic adjustment off.
 */
#define ZOSD_MMAP_THRESHOLD (128 * 1024)

static void
zosd_malloc_tuning(void)
{
	(void) mallopt(M_MMAP_THRESHOLD, ZOSD_MMAP_THRESHOLD);
}

int
main(int argc, char **argv)
{
	struct zos_options   opts;
	struct zos_log       log;
	zrpc_server         *server      = NULL;
	struct zos_state    *state       = NULL;
	struct zos_backends *backends    = NULL;
	struct zos_metrics  *metrics     = NULL;
	zrpc_auth           *auth        = NULL;
	zrpc_logq           *logq        = NULL;
	zrpc_client         *skills_home = NULL; /* --skills-home */
	const char          *route_tasks[ZOS_MAX_BACKENDS];
	const char          *route_primaries[ZOS_MAX_BACKENDS];
	char                 error[512];
	zrpc_status          status;
	struct zosd_signals  signals = {
		 .log  = &log,
		 .mu   = PTHREAD_MUTEX_INITIALIZER,
		 .stop = PTHREAD_COND_INITIALIZER,
	};
	struct zosd_store_health store_health = {
		.mu = PTHREAD_MUTEX_INITIALIZER,
		.ok = true,
	};
	struct timespec next_sweep;
	pthread_t       signal_thread;
	int             sig, exit_code = 1;
	/* the log queue's last wait: see zosd_log_flush_ms */
	struct timespec stop_at      = { 0, 0 };
	unsigned        log_flush_ms = ZOSD_LOG_FLUSH_MS;

	/* --cache-url's shared second level; NULL = none */
	struct zos_shared_cache *shared_cache = NULL;

	zosd_malloc_tuning();
	switch (zos_options_parse(
	    &opts, argc, argv, stdout, stderr, isatty(STDERR_FILENO))) {
	case ZOS_OPTIONS_OK:
		break;
	case ZOS_OPTIONS_EXIT:
		return 0;
	case ZOS_OPTIONS_USAGE:
		return 2;
	}
	log.level        = opts.log_level;
	log.format       = opts.log_format;
	log.fd           = STDERR_FILENO;
	log.queue        = NULL;
	signals.grace_ms = opts.shutdown_grace_ms;

	/* Before any thread starts, so that all of them inherit the mask
	 * and the signals wait for the signal thread's sigwait. */
	sigemptyset(&signals.set);
	sigaddset(&signals.set, SIGINT);
	sigaddset(&signals.set, SIGTERM);
	sigaddset(&signals.set, SIGHUP);
	sigaddset(&signals.set, SIGUSR1);
	sigaddset(&signals.set, SIGUSR2);
	sigaddset(&signals.set, SIGALRM);
	sigaddset(&signals.set, SIGIO);
	sigaddset(&signals.set, SIGPWR);
	pthread_sigmask(SIG_BLOCK, &signals.set, NULL);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGXFSZ, SIG_IGN);
	/* Every line from here on goes through the queue; its writer thread
	 * inherits the mask. The queue is flushed at exit, never freed: the
	 * signal thread, never joined, may log until the process ends. */
	zrpc_logq_config logq_config = {
		.fd        = STDERR_FILENO,
		.max_lines = ZOSD_LOG_LINES,
		.max_bytes = ZOSD_LOG_BYTES,
	};
	status = zrpc_logq_create(&logq, &logq_config);
	if (!zrpc_status_is_ok(&status)) {
		zos_log_printf(
		    &log, ZRPC_LOG_ERROR, "cannot start: %s", status.message);
		return 1;
	}
	log.queue = logq;
	if (pthread_create(
	        &signal_thread, NULL, zosd_signal_thread, &signals) != 0) {
		zos_log_printf(
		    &log, ZRPC_LOG_ERROR, "cannot start: no signal thread");
		return 1;
	}
	pthread_detach(signal_thread);
	zos_log_printf(&log, ZRPC_LOG_DEBUG, "starting");

	/* --auth-tokens, or the warning that options.c let through. */
	if (opts.auth_tokens != NULL) {
		status = zrpc_auth_load(&auth, opts.auth_tokens);
		if (!zrpc_status_is_ok(&status)) {
			zos_log_printf(&log, ZRPC_LOG_ERROR,
			    "cannot start: --auth-tokens %s", status.message);
			goto out;
		}
		zos_log_printf(&log, ZRPC_LOG_INFO, "auth: %zu tokens from %s",
		    zrpc_auth_count(auth), opts.auth_tokens);
		pthread_mutex_lock(&signals.mu);
		signals.auth      = auth;
		signals.auth_path = opts.auth_tokens;
		pthread_mutex_unlock(&signals.mu);
	} else {
		for (size_t i = 0; i < opts.n_listen; i++) {
			if (!zos_options_url_is_loopback(opts.listen[i])) {
				zos_log_printf(&log, ZRPC_LOG_WARN,
				    "--allow-unauthenticated: %s is reachable "
				    "from other machines and every caller is "
				    "admin",
				    opts.listen[i]);
			}
		}
	}

	/* Several nodes: this node's id, kept in DATA_DIR/node-id and
	 * checked before the store is opened (node_id.h). */
	const char *node_dir    = opts.in_memory ? NULL : opts.data_dir;
	uint32_t    stored_node = 0, node_id = 1;
	char        node_text[8];
	if (zos_node_id_read(node_dir, &stored_node, error, sizeof(error)) !=
	        0 ||
	    zos_node_id_choose(opts.node_id, stored_node, node_dir, &node_id,
	        error, sizeof(error)) != 0) {
		zos_log_printf(
		    &log, ZRPC_LOG_ERROR, "cannot start: %s", error);
		goto out;
	}
	snprintf(node_text, sizeof(node_text), "%u", node_id);

	for (size_t i = 0; i < opts.n_backends; i++) {
		route_tasks[i]     = opts.backends[i].task;
		route_primaries[i] = opts.backends[i].url;
	}
	struct zos_state_config state_config = {
		.cache_capacity         = opts.cache_capacity,
		.max_sessions           = opts.max_sessions,
		.session_ttl_ms         = opts.session_ttl_ms,
		.max_sessions_per_owner = opts.max_sessions_per_token,
		.skills_file            = opts.skills_file,
		.routing_file           = opts.routing_file,
		.data_dir           = opts.in_memory ? NULL : opts.data_dir,
		.store_health       = zosd_store_health,
		.store_health_arg   = &store_health,
		.route_tasks        = route_tasks,
		.route_primaries    = route_primaries,
		.n_route_overrides  = opts.n_backends,
		.abort_on_violation = ZOS_LOCK_CHECKS,
		.log                = zos_log_sink,
		.log_arg            = &log,
	};
	if ((state = zos_state_create(&state_config, error, sizeof(error))) ==
	    NULL) {
		zos_log_printf(
		    &log, ZRPC_LOG_ERROR, "cannot start: %s", error);
		goto out;
	}
	pthread_mutex_lock(&signals.mu);
	signals.state = state;
	pthread_mutex_unlock(&signals.mu);
	/* The store has made the directory: record the node id in it the
	 * first time; the table puts it into every id from now on. */
	if (node_dir != NULL && stored_node == 0 &&
	    zos_node_id_write(node_dir, node_id, error, sizeof(error)) != 0) {
		zos_log_printf(
		    &log, ZRPC_LOG_ERROR, "cannot start: %s", error);
		goto out;
	}
	(void) zos_sessions_set_node(state->sessions, node_id);
	struct zos_peer peers[ZOS_MAX_PEERS];
	for (size_t i = 0; i < opts.n_peers; i++) {
		peers[i] = (struct zos_peer) { opts.peers[i].node,
			opts.peers[i].url };
	}
	struct zos_cluster cluster = {
		.node_id         = node_id,
		.peers           = peers,
		.n_peers         = opts.n_peers,
		.skills_home_url = opts.skills_home,
	};
	if (opts.skills_home != NULL) {
		/* A short connect timeout: a home that is down is UNAVAILABLE
		 * within it, not at the caller's deadline. */
		status = zrpc_client_open(&skills_home, opts.skills_home,
		    &(zrpc_client_opts) { .connect_timeout_ms = 1000 });
		if (!zrpc_status_is_ok(&status)) {
			zos_log_printf(&log, ZRPC_LOG_ERROR,
			    "cannot start: --skills-home %s: %s",
			    opts.skills_home, status.message);
			goto out;
		}
		cluster.skills_home = skills_home;
	}
	zos_log_printf(&log, ZRPC_LOG_INFO,
	    "node %u; %zu peers; skills home %s", node_id, opts.n_peers,
	    opts.skills_home != NULL ? opts.skills_home : "here");
	if ((backends = zosd_backends(&opts, state, error, sizeof(error))) ==
	    NULL) {
		zos_log_printf(
		    &log, ZRPC_LOG_ERROR, "cannot start: %s", error);
		goto out;
	}
	/* --cache-url: the response cache's shared second level. Redis
	 * unreachable is not a start-up error (it is an outage, logged). */
	if (opts.cache_url != NULL) {
		struct zos_shared_cache_config shared_config = {
			.url       = opts.cache_url,
			.auth_file = opts.cache_auth_file,
			.ttl_s     = opts.cache_ttl_s,
			.log       = zos_log_sink,
			.log_arg   = &log,
			.domain    = &state->locks,
		};
		shared_cache = zos_shared_cache_create(
		    &shared_config, error, sizeof(error));
		if (shared_cache == NULL) {
			zos_log_printf(
			    &log, ZRPC_LOG_ERROR, "cannot start: %s", error);
			goto out;
		}
		zos_log_printf(&log, ZRPC_LOG_INFO,
		    "shared cache: redis at %s, ttl %u s", opts.cache_url,
		    (unsigned) opts.cache_ttl_s);
	}
	struct zos_services services = {
		.state              = state,
		.backends           = backends,
		.backend_timeout_ms = opts.backend_timeout_ms,
		.shared_cache       = shared_cache,
		.cluster            = &cluster,
	};

	zrpc_server_config config = {
		.workers           = opts.workers,
		.max_inflight      = opts.max_inflight,
		.max_message_bytes = opts.max_message_bytes,
		.log               = zos_log_sink,
		.log_arg           = &log,
		.log_level         = opts.log_level,
		.thread_check      = zosd_check_no_locks,
		.thread_check_arg  = state,
		.auth              = auth,
		/* bounds per peer */
		.send_timeout_ms       = opts.send_timeout_ms,
		.max_inflight_per_conn = opts.max_inflight_per_conn,
		.max_connections       = opts.max_connections,
		.idle_timeout_ms       = opts.idle_timeout_ms == 0
		          ? ZRPC_SERVER_NO_TIMEOUT
		          : opts.idle_timeout_ms,
		.max_buffered_bytes    = opts.max_buffered_bytes,
		.max_metadata_entries  = opts.max_metadata_entries,
		.max_metadata_bytes    = opts.max_metadata_bytes,
		.ws_allowed_origins    = opts.ws_allowed_origins,
		.n_ws_allowed_origins  = opts.n_ws_allowed_origins,
		.node_id               = node_text, /* Health's x-zrpc-node */
	};
	config.tls.cert_file      = opts.tls_cert;
	config.tls.key_file       = opts.tls_key;
	config.tls.client_ca_file = opts.tls_client_ca;
	config.ipc_permissions    = opts.ipc_socket_mode;
	zosd_check_key_mode(&log, opts.tls_key);
	status = zrpc_server_create(&server, &config);
	if (!zrpc_status_is_ok(&status)) {
		zos_log_printf(&log, ZRPC_LOG_ERROR,
		    "cannot create server: %s", status.message);
		goto out;
	}
	/* The access log (--access-log, --access-log-sample). */
	struct zos_access_log access;
	zos_access_log_init(
	    &access, &log, opts.access_log, opts.access_log_sample);
	struct zrpc_interceptor access_log = {
		.name  = "access-log",
		.after = zosd_access_log,
		.arg   = &access,
	};
	status = zrpc_server_add_interceptor(server, &access_log);
	if (!zrpc_status_is_ok(&status)) {
		zos_log_printf(&log, ZRPC_LOG_ERROR, "%s", status.message);
		goto out;
	}
	status = zos_services_register(server, &services);
	if (!zrpc_status_is_ok(&status)) {
		zos_log_printf(&log, ZRPC_LOG_ERROR, "%s", status.message);
		goto out;
	}
	for (size_t i = 0; i < opts.n_listen; i++) {
		status = zrpc_server_listen(server, opts.listen[i]);
		if (!zrpc_status_is_ok(&status)) {
			zos_log_printf(
			    &log, ZRPC_LOG_ERROR, "%s", status.message);
			goto out;
		}
	}
	/* After the listeners, so that an address in use is reported for
	 * them first; before serving, so that nothing is served when the
	 * metrics address is taken. */
	if (!opts.metrics_off) {
		struct zos_metrics_sources sources = {
			.server       = server,
			.state        = state,
			.log_queue    = logq,
			.shared_cache = shared_cache,
		};
		char *token = NULL;
		bool  open_to_others;
		int   rv;

		if (opts.metrics_token_file != NULL) {
			if (zos_http_read_token(opts.metrics_token_file,
			        &token, &open_to_others, error,
			        sizeof(error)) != 0) {
				zos_log_printf(&log, ZRPC_LOG_ERROR,
				    "cannot start: --metrics-token %s", error);
				goto out;
			}
			if (open_to_others) {
				zos_log_printf(&log, ZRPC_LOG_WARN,
				    "--metrics-token %s can be read by group "
				    "or others (chmod 600 it)",
				    opts.metrics_token_file);
			}
		}
		rv = zos_metrics_start(opts.metrics_listen, &sources, token,
		    &metrics, error, sizeof(error));
		if (token != NULL) {
			explicit_bzero(token, strlen(token));
			free(token);
		}
		if (rv != 0) {
			zos_log_printf(&log, ZRPC_LOG_ERROR,
			    "%s (--metrics-listen URL picks another address, "
			    "--metrics-listen off serves none)",
			    error);
			goto out;
		}
	}
	status = zrpc_server_start(server);
	if (!zrpc_status_is_ok(&status)) {
		zos_log_printf(
		    &log, ZRPC_LOG_ERROR, "cannot start: %s", status.message);
		goto out;
	}
	zosd_store_health_attach(&store_health, server);
	/* Serving from here on: a signal now asks for a drain. Before the
	 * ready lines, which tell tests and supervisors that it does. */
	pthread_mutex_lock(&signals.mu);
	signals.serving = true;
	pthread_mutex_unlock(&signals.mu);
	/* The ready lines are written whatever --log-level says: scripts
	 * and supervisors wait for them. */
	struct zos_log ready = log;
	ready.level          = ZRPC_LOG_DEBUG;
	for (size_t i = 0; i < opts.n_listen; i++) {
		zos_log_printf(&ready, ZRPC_LOG_INFO, "listening on %s",
		    zrpc_server_listener_url(server, i));
	}
	if (metrics != NULL) {
		zos_log_printf(&ready, ZRPC_LOG_INFO, "metrics on %s",
		    zos_metrics_url(metrics));
	}

	/* Wait for the stop signal, sweeping expired sessions meanwhile
	 * (one at once: a data directory may hold some already). */
	zosd_sweep(&log, state, opts.session_ttl_ms, &next_sweep);
	pthread_mutex_lock(&signals.mu);
	while (signals.stop_sig == 0) {
		if (pthread_cond_timedwait(&signals.stop, &signals.mu,
		        &next_sweep) == ETIMEDOUT) {
			pthread_mutex_unlock(&signals.mu);
			zosd_sweep(
			    &log, state, opts.session_ttl_ms, &next_sweep);
			pthread_mutex_lock(&signals.mu);
		}
	}
	sig = signals.stop_sig;
	pthread_mutex_unlock(&signals.mu);
	clock_gettime(CLOCK_MONOTONIC, &stop_at);
	zos_log_printf(&log, ZRPC_LOG_INFO,
	    "received %s; draining calls in flight (grace %u ms)",
	    zosd_signal_name(sig), opts.shutdown_grace_ms);
	/* A store that recovers during the drain must not say SERVING. */
	zosd_store_health_attach(&store_health, NULL);
	unsigned left = zrpc_server_stop(server, opts.shutdown_grace_ms);
	if (left > 0) {
		zos_log_printf(&log, ZRPC_LOG_WARN,
		    "%u calls did not finish within the grace period", left);
	}
	{
		struct zrpc_server_stats server_stats;

		/* nng did not let go of the socket within the bound: leave
		 * the server behind (destroy would wait for it again) so
		 * that exit stays within grace + 2 s. */
		zrpc_server_stats(server, &server_stats);
		if (server_stats.close_abandoned) {
			server = NULL;
			/* a call left behind may still be forwarded */
			skills_home = NULL;
		}
	}
	/* Scrapes are answered until the calls have drained. */
	zos_metrics_stop(metrics);
	metrics = NULL;
	zosd_log_lock_times(&log, state);
	zos_log_printf(&log, ZRPC_LOG_INFO, "stopped");
	exit_code = 0;

out:
	zos_metrics_stop(metrics);
	zosd_store_health_attach(&store_health, NULL);
	/* Before the server: a Skills call still forwarded (a home slower
	 * than the grace) is answered CANCELLED by the close, and so
	 * resumed while its server still exists. */
	zrpc_client_close(skills_home);
	zrpc_server_destroy(server);
	zos_backends_destroy(backends);
	zos_shared_cache_destroy(shared_cache);
	pthread_mutex_lock(&signals.mu);
	signals.state   = NULL;
	signals.closing = true;
	pthread_mutex_unlock(&signals.mu);
	zos_state_destroy(state);
	pthread_mutex_lock(&signals.mu);
	signals.auth      = NULL; /* a SIGHUP from now on reloads nothing */
	signals.done      = true;
	signals.exit_code = exit_code;
	pthread_mutex_unlock(&signals.mu);
	zrpc_auth_destroy(auth);
	if (exit_code == 0) {
		log_flush_ms =
		    zosd_log_flush_ms(opts.shutdown_grace_ms, &stop_at);
	}
	(void) zrpc_logq_flush(logq, log_flush_ms);
	return exit_code;
}
