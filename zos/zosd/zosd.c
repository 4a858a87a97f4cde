/*
 * zosd: the zos server program.
 *
 * main owns everything: it parses the flags, blocks SIGINT and SIGTERM
 * before any thread exists (every thread inherits the mask), creates the
 * server, and then waits for a signal with sigwait. No signal handler and
 * no global variable is involved: the shutdown request arrives as a return
 * value in main, which drains the server and exits 0.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "log.h"
#include "metrics.h"
#include "options.h"
#include "services.h"
#include "state.h"
#include "zrpc/server.h"

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
	sigset_t             signals;
	int                  sig, exit_code = 1;

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
	 * and the signals wait for sigwait below. */
	sigemptyset(&signals);
	sigaddset(&signals, SIGINT);
	sigaddset(&signals, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &signals, NULL);
	signal(SIGPIPE, SIG_IGN);

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
		if (zos_metrics_start(opts.metrics_listen, &sources, &metrics,
		        error, sizeof(error)) != 0) {
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

	if (sigwait(&signals, &sig) != 0) {
		sig = SIGTERM;
	}
	zos_log_printf(&log, ZRPC_LOG_INFO,
	    "received %s; draining calls in flight (grace %u ms)",
	    sig == SIGINT ? "SIGINT" : "SIGTERM", opts.shutdown_grace_ms);
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
	zos_state_destroy(state);
	return exit_code;
}
