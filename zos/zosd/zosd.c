/*
 * zosd: the zos server program.
 *
 * main owns everything: it parses the flags, blocks SIGINT, SIGTERM,
 * SIGHUP, SIGUSR1, SIGUSR2 and SIGALRM before any thread exists (every
 * thread inherits the mask) and starts one signal thread that takes them
 * with sigwait for the whole life of the process. No signal handler and no
 * global variable is involved: the thread and main share a struct on
 * main's stack.
 *
 * - SIGHUP, SIGUSR1, SIGUSR2, SIGALRM: logged, nothing else (there is
 *   nothing to reload yet); they no longer kill zosd.
 * - SIGTERM or SIGINT during start-up (a store loading a large directory,
 *   a skills file that never ends): the process exits at once with
 *   128 + the signal's number, as if the signal had killed it, without
 *   touching the store any further; nothing was acknowledged yet.
 * - The first SIGTERM or SIGINT once serving: main drains the server (up
 *   to --shutdown-grace-ms), closes the store and exits 0.
 * - A second one during that drain: the store writes what is queued (an
 *   acknowledged change is already on disk; this covers the unacknowledged
 *   rest) and the process exits at once with 128 + the signal's number.
 */
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "http_metrics.h"
#include "log.h"
#include "metrics.h"
#include "options.h"
#include "services.h"
#include "state.h"
#include "zrpc/server.h"

/*
 * What main and the signal thread share; on main's stack. The thread is
 * never joined: it waits in sigwait until the process ends.
 */
struct zosd_signals {
	sigset_t              set; /* the signals taken; constant */
	const struct zos_log *log; /* constant */
	pthread_mutex_t       mu;
	pthread_cond_t        stop;     /* signalled when stop_sig is set */
	bool                  serving;  /* guarded by: mu */
	int                   stop_sig; /* guarded by: mu; 0 until asked */
	struct zos_state     *state;    /* guarded by: mu; NULL until made */
	bool                  closing;  /* guarded by: mu; store closing */
};

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
	}
	return "a signal";
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
	v          = zos_skills_get(&state->skills);
	skills_seq = v->version;
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

/* The signal thread: see the top of the file. */
static void *
zosd_signal_thread(void *arg)
{
	struct zosd_signals *s = arg;
	struct zos_state    *state;
	int                  sig;

	for (;;) {
		if (sigwait(&s->set, &sig) != 0) {
			continue;
		}
		if (sig == SIGHUP) {
			zos_log_printf(s->log, ZRPC_LOG_INFO,
			    "SIGHUP: nothing to reload yet");
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
			_exit(128 + sig);
		}
		zos_log_printf(s->log, ZRPC_LOG_WARN,
		    "received %s again; writing the store and exiting "
		    "without waiting for the calls in flight",
		    zosd_signal_name(sig));
		zosd_flush_state(s->log, state);
		_exit(128 + sig);
	}
	return NULL;
}

/* The access log: one line per call, at info level. */
static void
zosd_access_log(
    void *arg, zrpc_call *call, const zrpc_status *status, uint64_t latency_ns)
{
	const struct zos_log *log = arg;
	char                  latency[32];
	struct zos_log_field  fields[5];

	if (!zos_log_enabled(log, ZRPC_LOG_INFO)) {
		return;
	}
	snprintf(
	    latency, sizeof(latency), "%.3f", (double) latency_ns / 1000000.0);
	fields[0] =
	    (struct zos_log_field) { "method", zrpc_call_method(call) };
	fields[1] =
	    (struct zos_log_field) { "code", zrpc_status_name(status->code) };
	fields[2] = (struct zos_log_field) { "latency_ms", latency };
	fields[3] = (struct zos_log_field) { "request_id",
		zrpc_call_request_id(call) };
	fields[4] = (struct zos_log_field) { "peer", zrpc_call_peer(call) };
	zos_log_event(log, ZRPC_LOG_INFO, "call", fields, 5);
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
			{ "lock", locks[i]->name },
			{ "acquisitions", n },
			{ "wait_p99_us", wait },
			{ "hold_p99_us", hold },
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
	for (size_t i = 0; i < n_routes; i++) {
		const struct zos_route *route =
		    zos_routing_route_at(state->routing, i);
		const char *models[2] = { route->primary_model,
			route->fallback_model };

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
	free(urls);
	return backends;
}

int
main(int argc, char **argv)
{
	struct zos_options   opts;
	struct zos_log       log;
	zrpc_server         *server   = NULL;
	struct zos_state    *state    = NULL;
	struct zos_backends *backends = NULL;
	struct zos_metrics  *metrics  = NULL;
	const char          *route_tasks[ZOS_MAX_BACKENDS];
	const char          *route_primaries[ZOS_MAX_BACKENDS];
	char                 error[512];
	zrpc_status          status;
	struct zosd_signals  signals = {
		 .log  = &log,
		 .mu   = PTHREAD_MUTEX_INITIALIZER,
		 .stop = PTHREAD_COND_INITIALIZER,
	};
	pthread_t signal_thread;
	int       sig, exit_code = 1;

	switch (zos_options_parse(
	    &opts, argc, argv, stdout, stderr, isatty(STDERR_FILENO))) {
	case ZOS_OPTIONS_OK:
		break;
	case ZOS_OPTIONS_EXIT:
		return 0;
	case ZOS_OPTIONS_USAGE:
		return 2;
	}
	log.level  = opts.log_level;
	log.format = opts.log_format;
	log.fd     = STDERR_FILENO;

	/* Before any thread starts, so that all of them inherit the mask
	 * and the signals wait for the signal thread's sigwait. */
	sigemptyset(&signals.set);
	sigaddset(&signals.set, SIGINT);
	sigaddset(&signals.set, SIGTERM);
	sigaddset(&signals.set, SIGHUP);
	sigaddset(&signals.set, SIGUSR1);
	sigaddset(&signals.set, SIGUSR2);
	sigaddset(&signals.set, SIGALRM);
	pthread_sigmask(SIG_BLOCK, &signals.set, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (pthread_create(
	        &signal_thread, NULL, zosd_signal_thread, &signals) != 0) {
		zos_log_printf(
		    &log, ZRPC_LOG_ERROR, "cannot start: no signal thread");
		return 1;
	}
	pthread_detach(signal_thread);
	zos_log_printf(&log, ZRPC_LOG_DEBUG, "starting");

	for (size_t i = 0; i < opts.n_backends; i++) {
		route_tasks[i]     = opts.backends[i].task;
		route_primaries[i] = opts.backends[i].url;
	}
	struct zos_state_config state_config = {
		.cache_capacity     = opts.cache_capacity,
		.max_sessions       = opts.max_sessions,
		.skills_file        = opts.skills_file,
		.routing_file       = opts.routing_file,
		.data_dir           = opts.in_memory ? NULL : opts.data_dir,
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
	if ((backends = zosd_backends(&opts, state, error, sizeof(error))) ==
	    NULL) {
		zos_log_printf(
		    &log, ZRPC_LOG_ERROR, "cannot start: %s", error);
		goto out;
	}
	struct zos_services services = {
		.state              = state,
		.backends           = backends,
		.backend_timeout_ms = opts.backend_timeout_ms,
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
	};
	status = zrpc_server_create(&server, &config);
	if (!zrpc_status_is_ok(&status)) {
		zos_log_printf(&log, ZRPC_LOG_ERROR,
		    "cannot create server: %s", status.message);
		goto out;
	}
	struct zrpc_interceptor access_log = {
		.name  = "access-log",
		.after = zosd_access_log,
		.arg   = &log,
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
			.server = server,
			.state  = state,
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

	pthread_mutex_lock(&signals.mu);
	while (signals.stop_sig == 0) {
		pthread_cond_wait(&signals.stop, &signals.mu);
	}
	sig = signals.stop_sig;
	pthread_mutex_unlock(&signals.mu);
	zos_log_printf(&log, ZRPC_LOG_INFO,
	    "received %s; draining calls in flight (grace %u ms)",
	    zosd_signal_name(sig), opts.shutdown_grace_ms);
	unsigned left = zrpc_server_stop(server, opts.shutdown_grace_ms);
	if (left > 0) {
		zos_log_printf(&log, ZRPC_LOG_WARN,
		    "%u calls did not finish within the grace period", left);
	}
	/* Scrapes are answered until the calls have drained. */
	zos_metrics_stop(metrics);
	metrics = NULL;
	zosd_log_lock_times(&log, state);
	zos_log_printf(&log, ZRPC_LOG_INFO, "stopped");
	exit_code = 0;

out:
	zos_metrics_stop(metrics);
	zrpc_server_destroy(server);
	zos_backends_destroy(backends);
	pthread_mutex_lock(&signals.mu);
	signals.state   = NULL;
	signals.closing = true;
	pthread_mutex_unlock(&signals.mu);
	zos_state_destroy(state);
	return exit_code;
}
