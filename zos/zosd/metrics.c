/*
 * zosd's metrics endpoint; see metrics.h.
 *
 * Rendering is a plain function of the live counters (zos_metrics_render),
 * so that tests can check the text without HTTP. The HTTP side is
 * http_metrics.h's server, with one thread that renders each scrape in
 * turn: stopping it joins that thread, so no scrape can read the sources
 * after zos_metrics_stop.
 */
#include "metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>

#include "http_metrics.h"

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define METRICS_INITIAL_BYTES (64u << 10)

/* Lock bounds in nanoseconds, and as the le label writes them (seconds,
 * as Go's strconv.FormatFloat(v, 'g', -1, 64) would). Calls use the
 * runtime's zrpc_histogram_latency_bounds. */
/* clang-format off */
static const uint64_t metrics_lock_ns[] = {
	1000, 2500, 10000, 25000, 100000, 250000,
	1000000, 2500000, 10000000, 25000000, 100000000, 250000000,
	1000000000,
};
static const char *const metrics_lock_le[] = {
	"1e-06", "2.5e-06", "1e-05", "2.5e-05", "0.0001", "0.00025",
	"0.001", "0.0025", "0.01", "0.025", "0.1", "0.25",
	"1",
};
/* clang-format on */

#define METRICS_COUNT(a) (sizeof(a) / sizeof((a)[0]))
_Static_assert(
    METRICS_COUNT(metrics_lock_ns) == METRICS_COUNT(metrics_lock_le),
    "one le text per lock bound");

const struct zrpc_histogram_bounds ZOS_METRICS_LOCK_BOUNDS = {
	.n      = METRICS_COUNT(metrics_lock_ns),
	.values = metrics_lock_ns,
	.le     = metrics_lock_le,
};

/* ---- the text ---- */

/* A growing buffer that refuses to pass ZOS_METRICS_MAX_BYTES. */
struct metrics_text {
	char  *data;
	size_t len;
	size_t cap;
	bool   failed; /* out of memory or over the limit: give up */
};

static bool
metrics_text_reserve(struct metrics_text *t, size_t more)
{
	size_t cap;
	char  *grown;

	if (t->failed) {
		return false;
	}
	if (t->len + more + 1 <= t->cap) {
		return true;
	}
	if (t->len + more + 1 > ZOS_METRICS_MAX_BYTES) {
		t->failed = true;
		return false;
	}
	cap = t->cap > 0 ? t->cap : METRICS_INITIAL_BYTES;
	while (cap < t->len + more + 1) {
		cap *= 2;
	}
	if (cap > ZOS_METRICS_MAX_BYTES) {
		cap = ZOS_METRICS_MAX_BYTES;
	}
	if ((grown = realloc(t->data, cap)) == NULL) {
		t->failed = true;
		return false;
	}
	t->data = grown;
	t->cap  = cap;
	return true;
}

static void
metrics_put(struct metrics_text *t, const char *s, size_t n)
{
	if (metrics_text_reserve(t, n)) {
		memcpy(t->data + t->len, s, n);
		t->len += n;
		t->data[t->len] = '\0';
	}
}

static void
metrics_puts(struct metrics_text *t, const char *s)
{
	metrics_put(t, s, strlen(s));
}

static void metrics_printf(struct metrics_text *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
metrics_printf(struct metrics_text *t, const char *fmt, ...)
{
	char    buf[128];
	va_list ap;
	int     n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	/* Only numbers go through here: they always fit. */
	if (n < 0 || (size_t) n >= sizeof(buf)) {
		t->failed = true;
		return;
	}
	metrics_put(t, buf, (size_t) n);
}

/* A label value, escaped as the format wants: \\, \" and \n. */
static void
metrics_label_value(struct metrics_text *t, const char *v)
{
	for (; *v != '\0'; v++) {
		switch (*v) {
		case '\\':
			metrics_puts(t, "\\\\");
			break;
		case '"':
			metrics_puts(t, "\\\"");
			break;
		case '\n':
			metrics_puts(t, "\\n");
			break;
		default:
			metrics_put(t, v, 1);
		}
	}
}

/* "# HELP" and "# TYPE" of a family (HELP texts are ours: no escapes). */
static void
metrics_family(struct metrics_text *t, const char *name, const char *type,
    const char *help)
{
	metrics_puts(t, "# HELP ");
	metrics_puts(t, name);
	metrics_puts(t, " ");
	metrics_puts(t, help);
	metrics_puts(t, "\n# TYPE ");
	metrics_puts(t, name);
	metrics_puts(t, " ");
	metrics_puts(t, type);
	metrics_puts(t, "\n");
}

struct metrics_label {
	const char *key;
	const char *value;
};

/* NAME{LABELS,le="LE"} with LE NULL for none; then a space. */
static void
metrics_series(struct metrics_text *t, const char *name,
    const struct metrics_label *labels, size_t n_labels, const char *le)
{
	metrics_puts(t, name);
	if (n_labels > 0 || le != NULL) {
		metrics_puts(t, "{");
		for (size_t i = 0; i < n_labels; i++) {
			metrics_puts(t, i > 0 ? "," : "");
			metrics_puts(t, labels[i].key);
			metrics_puts(t, "=\"");
			metrics_label_value(t, labels[i].value);
			metrics_puts(t, "\"");
		}
		if (le != NULL) {
			metrics_puts(t, n_labels > 0 ? ",le=\"" : "le=\"");
			metrics_puts(t, le);
			metrics_puts(t, "\"");
		}
		metrics_puts(t, "}");
	}
	metrics_puts(t, " ");
}

static void
metrics_u64(struct metrics_text *t, const char *name,
    const struct metrics_label *labels, size_t n_labels, uint64_t value)
{
	metrics_series(t, name, labels, n_labels, NULL);
	metrics_printf(t, "%" PRIu64 "\n", value);
}

/* NS nanoseconds as exact decimal seconds. */
static void
metrics_seconds(struct metrics_text *t, const char *name,
    const struct metrics_label *labels, size_t n_labels, uint64_t ns)
{
	metrics_series(t, name, labels, n_labels, NULL);
	metrics_printf(t, "%" PRIu64 ".%09" PRIu64 "\n", ns / 1000000000u,
	    ns % 1000000000u);
}

static void
metrics_text_write(void *arg, const char *text, size_t len)
{
	metrics_put(arg, text, len);
}

/*
 * LABELS as they go between the braces, escaped, into BUF (LEN bytes);
 * false when they do not fit.
 */
static bool
metrics_labels_text(
    char *buf, size_t len, const struct metrics_label *labels, size_t n_labels)
{
	size_t at = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n_labels; i++) {
		const char *v = labels[i].value;
		int         n = snprintf(buf + at, len - at, "%s%s=\"",
                    i > 0 ? "," : "", labels[i].key);

		if (n < 0 || (size_t) n >= len - at) {
			return false;
		}
		at += (size_t) n;
		for (; *v != '\0'; v++) {
			const char *esc  = *v == '\\' ? "\\\\"
			     : *v == '"'              ? "\\\""
			     : *v == '\n'             ? "\\n"
			                              : NULL;
			size_t      need = esc != NULL ? 2 : 1;

			if (at + need + 2 > len) { /* room for '"' and NUL */
				return false;
			}
			if (esc != NULL) {
				memcpy(buf + at, esc, 2);
			} else {
				buf[at] = *v;
			}
			at += need;
		}
		buf[at++] = '"';
		buf[at]   = '\0';
	}
	return true;
}

/*
 * One histogram's series, written by the runtime
 * (zrpc_histogram_write_prometheus): NAME_bucket for every bound and
 * +Inf, then NAME_sum (seconds) and NAME_count.
 */
static void
metrics_histogram(struct metrics_text *t, const char *name,
    const struct metrics_label *labels, size_t n_labels,
    const struct zrpc_histogram *h, const struct zrpc_histogram_bounds *bounds)
{
	char text[1024];

	if (!metrics_labels_text(text, sizeof(text), labels, n_labels)) {
		t->failed = true;
		return;
	}
	zrpc_histogram_write_prometheus(
	    h, name, text, bounds, metrics_text_write, t);
}

/* ---- zrpc server ---- */

static const char *
metrics_method_label(const struct zrpc_method_stats *stats)
{
	return stats->path[0] != '\0' ? stats->path : "other";
}

static void
metrics_visit_calls(void *arg, const struct zrpc_method_stats *stats)
{
	struct metrics_text *t = arg;

	for (int c = 0; c < ZRPC_CODE_COUNT; c++) {
		struct metrics_label labels[2] = {
			{ "method", metrics_method_label(stats) },
			{ "code", zrpc_status_name((zrpc_code) c) },
		};
		/* Only the codes the method has answered with: all 17 for
		 * every method would be mostly zeros. */
		if (stats->calls_by_code[c] > 0) {
			metrics_u64(t, "zrpc_server_calls_total", labels, 2,
			    stats->calls_by_code[c]);
		}
	}
}

static void
metrics_visit_durations(void *arg, const struct zrpc_method_stats *stats)
{
	struct metrics_label label = { "method", metrics_method_label(stats) };

	metrics_histogram(arg, "zrpc_server_call_duration_seconds", &label, 1,
	    stats->latency_ns, &zrpc_histogram_latency_bounds);
}

static void
metrics_visit_queues(void *arg, const struct zrpc_method_stats *stats)
{
	struct metrics_label label = { "method", metrics_method_label(stats) };

	metrics_histogram(arg, "zrpc_server_queue_seconds", &label, 1,
	    stats->queue_ns, &zrpc_histogram_latency_bounds);
}

/*
 * What the per-peer bounds refused (zrpc_server_stats): one family per
 * kind of refusal, so that an alert can name the attack, and the
 * connections and bytes held now.
 */
static void
metrics_render_bounds(struct metrics_text *t, const zrpc_server *server)
{
	struct zrpc_server_stats st;
	struct metrics_label     reason;

	zrpc_server_stats(server, &st);

	const struct metrics_count {
		const char *reason;
		uint64_t    value;
	} closed[] = {
		{ "max_connections", st.connections_refused },
		{ "idle", st.connections_idle_closed },
		{ "ws_origin", st.connections_origin_refused },
		{ "flooding", st.connections_flooding_closed },
		{ "send_timeout", st.replies_dropped },
	},
	  refused[] = {
		  { "per_connection", st.requests_conn_limited },
		  { "buffered_bytes", st.requests_buffer_limited },
		  { "metadata", st.requests_metadata_limited },
	  };

	metrics_family(t, "zrpc_server_connections_closed_total", "counter",
	    "Connections the server closed or refused, by bound "
	    "(send_timeout: a reply the peer did not take in time).");
	for (size_t i = 0; i < sizeof(closed) / sizeof(closed[0]); i++) {
		reason = (struct metrics_label) { "reason", closed[i].reason };
		metrics_u64(t, "zrpc_server_connections_closed_total", &reason,
		    1, closed[i].value);
	}
	metrics_family(t, "zrpc_server_requests_refused_total", "counter",
	    "Requests answered RESOURCE_EXHAUSTED undecoded, by bound.");
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		reason =
		    (struct metrics_label) { "reason", refused[i].reason };
		metrics_u64(t, "zrpc_server_requests_refused_total", &reason,
		    1, refused[i].value);
	}
	metrics_family(
	    t, "zrpc_server_connections", "gauge", "Connections open now.");
	metrics_u64(t, "zrpc_server_connections", NULL, 0, st.connections);
	metrics_family(t, "zrpc_server_buffered_bytes", "gauge",
	    "Bytes held for calls now (requests in flight, replies unsent).");
	metrics_u64(
	    t, "zrpc_server_buffered_bytes", NULL, 0, st.buffered_bytes);
}

static void
metrics_render_server(struct metrics_text *t, const zrpc_server *server)
{
	metrics_family(t, "zrpc_server_calls_total", "counter",
	    "Calls answered, by method and status code.");
	zrpc_server_foreach_method_stats(server, metrics_visit_calls, t);
	metrics_family(t, "zrpc_server_call_duration_seconds", "histogram",
	    "Time from taking a request off the socket to handing its reply "
	    "to the transport (queue included), by method.");
	zrpc_server_foreach_method_stats(server, metrics_visit_durations, t);
	metrics_family(t, "zrpc_server_queue_seconds", "histogram",
	    "Time from taking a request off the socket to its handler "
	    "starting (decoding, waiting for a worker), by method.");
	zrpc_server_foreach_method_stats(server, metrics_visit_queues, t);
	metrics_family(t, "zrpc_server_calls_in_flight", "gauge",
	    "Calls being served right now.");
	metrics_u64(t, "zrpc_server_calls_in_flight", NULL, 0,
	    zrpc_server_inflight(server));

	/* Calls refused by the token check (--auth-tokens). */
	struct zrpc_auth_stats denials;
	struct metrics_label   reason;

	zrpc_server_auth_stats(server, &denials);
	metrics_family(t, "zrpc_auth_denials_total", "counter",
	    "Calls refused by the token check, by reason.");
	reason = (struct metrics_label) { "reason", "unauthenticated" };
	metrics_u64(
	    t, "zrpc_auth_denials_total", &reason, 1, denials.unauthenticated);
	reason = (struct metrics_label) { "reason", "permission_denied" };
	metrics_u64(t, "zrpc_auth_denials_total", &reason, 1,
	    denials.permission_denied);

	metrics_render_bounds(t, server);
}

/* ---- zOS state ---- */

static void
metrics_render_locks(struct metrics_text *t, struct zos_state *state)
{
	struct zos_lock *locks[ZOS_LOCK_RANKS];

	zos_state_locks(state, locks);
	metrics_family(t, "zos_lock_wait_seconds", "histogram",
	    "Time to acquire a state lock (one acquisition in 1024 per "
	    "thread is timed).");
	for (size_t i = 0; i < ZOS_LOCK_RANKS; i++) {
		struct metrics_label label = { "lock", locks[i]->name };
		metrics_histogram(t, "zos_lock_wait_seconds", &label, 1,
		    locks[i]->wait_ns, &ZOS_METRICS_LOCK_BOUNDS);
	}
	metrics_family(t, "zos_lock_hold_seconds", "histogram",
	    "Time a state lock is held (one acquisition in 1024 per thread "
	    "is timed).");
	for (size_t i = 0; i < ZOS_LOCK_RANKS; i++) {
		struct metrics_label label = { "lock", locks[i]->name };
		metrics_histogram(t, "zos_lock_hold_seconds", &label, 1,
		    locks[i]->hold_ns, &ZOS_METRICS_LOCK_BOUNDS);
	}
	metrics_family(t, "zos_lock_acquisitions_total", "counter",
	    "State lock acquisitions (behind by under 1024 per thread).");
	for (size_t i = 0; i < ZOS_LOCK_RANKS; i++) {
		struct metrics_label label = { "lock", locks[i]->name };
		metrics_u64(t, "zos_lock_acquisitions_total", &label, 1,
		    atomic_load_explicit(
		        &locks[i]->acquisitions, memory_order_relaxed));
	}
	metrics_family(t, "zos_lock_order_violations_total", "counter",
	    "Lock order violations and blocking calls under a lock "
	    "(counted in release builds; test builds abort).");
	metrics_u64(t, "zos_lock_order_violations_total", NULL, 0,
	    atomic_load_explicit(
	        &state->locks.violations, memory_order_relaxed));
}

static void
metrics_render_cache(struct metrics_text *t, struct zos_state *state)
{
	struct zos_cache_stats cs;

	zos_cache_stats(&state->cache, &cs);
	metrics_family(t, "zos_cache_entries", "gauge",
	    "Responses in the response cache.");
	metrics_u64(t, "zos_cache_entries", NULL, 0, cs.size);
	metrics_family(t, "zos_cache_capacity", "gauge",
	    "Responses the response cache holds at most.");
	metrics_u64(t, "zos_cache_capacity", NULL, 0, cs.capacity);
	metrics_family(t, "zos_cache_hits_total", "counter",
	    "Response cache lookups that found the response.");
	metrics_u64(t, "zos_cache_hits_total", NULL, 0, cs.hits);
	metrics_family(t, "zos_cache_misses_total", "counter",
	    "Response cache lookups that did not.");
	metrics_u64(t, "zos_cache_misses_total", NULL, 0, cs.misses);
	metrics_family(t, "zos_cache_evictions_total", "counter",
	    "Responses evicted to make room.");
	metrics_u64(t, "zos_cache_evictions_total", NULL, 0, cs.evictions);
}

/* The shared second level (--cache-url): its own counters. */
static void
metrics_render_shared_cache(
    struct metrics_text *t, const struct zos_shared_cache *sc)
{
	struct zos_shared_cache_stats ss;

	zos_shared_cache_stats(sc, &ss);
	metrics_family(t, "zos_cache_redis_hits_total", "counter",
	    "Shared (Redis) cache reads that found the response.");
	metrics_u64(t, "zos_cache_redis_hits_total", NULL, 0, ss.hits);
	metrics_family(t, "zos_cache_redis_misses_total", "counter",
	    "Shared (Redis) cache lookups that did not.");
	metrics_u64(t, "zos_cache_redis_misses_total", NULL, 0, ss.misses);
	metrics_family(t, "zos_cache_redis_errors_total", "counter",
	    "Redis commands or connects that failed (the call went on with "
	    "the local cache).");
	metrics_u64(t, "zos_cache_redis_errors_total", NULL, 0, ss.errors);
	metrics_family(t, "zos_cache_redis_outages_total", "counter",
	    "Times Redis went from reachable to unreachable.");
	metrics_u64(t, "zos_cache_redis_outages_total", NULL, 0, ss.outages);
	metrics_family(t, "zos_cache_redis_waits_total", "counter",
	    "Misses that waited for another node computing the same prompt.");
	metrics_u64(t, "zos_cache_redis_waits_total", NULL, 0, ss.waits);
	metrics_family(t, "zos_cache_redis_up", "gauge",
	    "1 while Redis answers, 0 during an outage.");
	metrics_u64(t, "zos_cache_redis_up", NULL, 0, ss.up ? 1 : 0);
}

/* Returns false when the routing metrics cannot be copied out. */
static bool
metrics_render_models(struct metrics_text *t, struct zos_state *state)
{
	struct zos_model_metrics *models = NULL;
	size_t                    n      = 0;

	if (zos_routing_get_metrics(state->routing, &models, &n) !=
	    ZOS_ROUTING_OK) {
		return false;
	}
	metrics_family(t, "zos_model_calls_total", "counter",
	    "Model backend calls, by model and outcome.");
	for (size_t i = 0; i < n; i++) {
		struct metrics_label labels[2] = {
			{ "model", models[i].model },
			{ "outcome", "success" },
		};
		metrics_u64(t, "zos_model_calls_total", labels, 2,
		    models[i].success_count);
		labels[1].value = "failure";
		metrics_u64(t, "zos_model_calls_total", labels, 2,
		    models[i].failure_count);
	}
	metrics_family(t, "zos_model_fallbacks_total", "counter",
	    "Calls a model answered as the fallback of another.");
	for (size_t i = 0; i < n; i++) {
		struct metrics_label label = { "model", models[i].model };
		metrics_u64(t, "zos_model_fallbacks_total", &label, 1,
		    models[i].fallback_count);
	}
	metrics_family(t, "zos_model_latency_seconds_total", "counter",
	    "Time spent in model backend calls, by model.");
	for (size_t i = 0; i < n; i++) {
		struct metrics_label label = { "model", models[i].model };
		uint64_t             ms    = models[i].total_latency_ms;
		metrics_series(
		    t, "zos_model_latency_seconds_total", &label, 1, NULL);
		metrics_printf(
		    t, "%" PRIu64 ".%03" PRIu64 "\n", ms / 1000u, ms % 1000u);
	}
	free(models);
	return true;
}

static void
metrics_render_sessions(struct metrics_text *t, struct zos_state *state)
{
	uint64_t counts[ZOS_PROOF_STATE_COUNT];

	zos_sessions_count_by_state(state->sessions, counts);
	metrics_family(
	    t, "zos_sessions", "gauge", "Proof sessions, by state.");
	for (int s = 1; s < ZOS_PROOF_STATE_COUNT; s++) {
		struct metrics_label label = { "state",
			zos_proof_state_name((enum zos_proof_state) s) };
		metrics_u64(t, "zos_sessions", &label, 1, counts[s]);
	}
}

static void
metrics_render_store(struct metrics_text *t, struct zos_state *state)
{
	struct zos_store_stats ss;

	memset(&ss, 0, sizeof(ss));
	if (state->store != NULL) {
		zos_store_stats(state->store, &ss);
	}
	metrics_family(t, "zos_store_commits_total", "counter",
	    "Transactions committed to the data directory's database (0 in "
	    "memory).");
	metrics_u64(t, "zos_store_commits_total", NULL, 0, ss.commits);
	metrics_family(t, "zos_store_commit_failures_total", "counter",
	    "Commits that failed (their changes were undone).");
	metrics_u64(
	    t, "zos_store_commit_failures_total", NULL, 0, ss.failures);
	metrics_family(t, "zos_store_bytes_written_total", "counter",
	    "Bytes of database pages written by commits.");
	metrics_u64(
	    t, "zos_store_bytes_written_total", NULL, 0, ss.bytes_written);
	metrics_family(t, "zos_store_commit_seconds_total", "counter",
	    "Time spent in commits (fsync of the WAL included).");
	metrics_seconds(
	    t, "zos_store_commit_seconds_total", NULL, 0, ss.commit_ns_sum);
	metrics_family(t, "zos_store_healthy", "gauge",
	    "1 while the store can commit (or there is none), 0 while "
	    "commits fail.");
	metrics_u64(t, "zos_store_healthy", NULL, 0,
	    state->store == NULL || ss.healthy ? 1 : 0);
}

/* ---- the log queue ---- */

static void
metrics_render_log(struct metrics_text *t, zrpc_logq *queue)
{
	struct zrpc_logq_stats ls;

	zrpc_logq_stats(queue, &ls);
	metrics_family(t, "zos_log_lines_dropped_total", "counter",
	    "Log lines lost: the log queue was full (stderr is read too "
	    "slowly or not at all) or writing them failed.");
	metrics_u64(t, "zos_log_lines_dropped_total", NULL, 0, ls.dropped);
	metrics_family(t, "zos_log_lines_written_total", "counter",
	    "Log lines written to stderr.");
	metrics_u64(t, "zos_log_lines_written_total", NULL, 0, ls.written);
	metrics_family(t, "zos_log_queue_lines", "gauge",
	    "Log lines waiting in the queue for stderr.");
	metrics_u64(t, "zos_log_queue_lines", NULL, 0, ls.queued_lines);
}

/* ---- the process ---- */

/* Reads up to LEN - 1 bytes of PATH into BUF; false when unreadable. */
static bool
metrics_read_file(const char *path, char *buf, size_t len)
{
	FILE  *f = fopen(path, "r");
	size_t n;

	if (f == NULL) {
		return false;
	}
	n = fread(buf, 1, len - 1, f);
	fclose(f);
	buf[n] = '\0';
	return n > 0;
}

/* The boot time, seconds since the epoch: the btime line of /proc/stat
 * (read by lines: the file grows with the number of CPUs). */
static bool
metrics_boot_time(unsigned long long *out)
{
	FILE *f = fopen("/proc/stat", "r");
	char  line[512];
	bool  at_start = true, found = false;

	if (f == NULL) {
		return false;
	}
	while (!found && fgets(line, sizeof(line), f) != NULL) {
		/* A long line comes in pieces: only a line's first piece
		 * can be the btime line. */
		found    = at_start && sscanf(line, "btime %llu", out) == 1;
		at_start = strchr(line, '\n') != NULL;
	}
	fclose(f);
	return found;
}

/* The process's start, in seconds since the epoch: its start in clock
 * ticks after boot (/proc/self/stat, field 22) plus the boot time. */
static bool
metrics_start_time(double *out)
{
	char               buf[1024];
	const char        *p;
	unsigned long long ticks, boot;
	long               hz = sysconf(_SC_CLK_TCK);

	if (hz <= 0 || !metrics_read_file("/proc/self/stat", buf, 1024) ||
	    (p = strrchr(buf, ')')) == NULL) {
		return false;
	}
	/* After the command's ')' come fields 3 (state) onwards. */
	p++;
	for (int field = 3; field < 22; field++) {
		while (*p == ' ') {
			p++;
		}
		while (*p != ' ' && *p != '\0') {
			p++;
		}
	}
	if (sscanf(p, " %llu", &ticks) != 1 || !metrics_boot_time(&boot)) {
		return false;
	}
	*out = (double) boot + (double) ticks / (double) hz;
	return true;
}

static void
metrics_render_process(struct metrics_text *t)
{
	char               buf[128];
	unsigned long long pages_total, pages_resident;
	long               page = sysconf(_SC_PAGESIZE);
	struct rusage      ru;
	double             start;

	if (page > 0 && metrics_read_file("/proc/self/statm", buf, 128) &&
	    sscanf(buf, "%llu %llu", &pages_total, &pages_resident) == 2) {
		metrics_family(t, "process_resident_memory_bytes", "gauge",
		    "Resident memory size in bytes.");
		metrics_u64(t, "process_resident_memory_bytes", NULL, 0,
		    (uint64_t) pages_resident * (uint64_t) page);
		metrics_family(t, "process_virtual_memory_bytes", "gauge",
		    "Virtual memory size in bytes.");
		metrics_u64(t, "process_virtual_memory_bytes", NULL, 0,
		    (uint64_t) pages_total * (uint64_t) page);
	}
	if (getrusage(RUSAGE_SELF, &ru) == 0) {
		uint64_t us = (uint64_t) ru.ru_utime.tv_sec * 1000000u +
		    (uint64_t) ru.ru_utime.tv_usec +
		    (uint64_t) ru.ru_stime.tv_sec * 1000000u +
		    (uint64_t) ru.ru_stime.tv_usec;
		metrics_family(t, "process_cpu_seconds_total", "counter",
		    "User and system CPU time spent in seconds.");
		metrics_seconds(
		    t, "process_cpu_seconds_total", NULL, 0, us * 1000u);
	}
	if (metrics_start_time(&start)) {
		metrics_family(t, "process_start_time_seconds", "gauge",
		    "Start time of the process since unix epoch in seconds.");
		metrics_series(t, "process_start_time_seconds", NULL, 0, NULL);
		metrics_printf(t, "%.2f\n", start);
	}
}

char *
zos_metrics_render(const struct zos_metrics_sources *sources, size_t *len)
{
	struct metrics_text t = { 0 };

	if (!metrics_text_reserve(&t, METRICS_INITIAL_BYTES - 1)) {
		return NULL;
	}
	t.data[0] = '\0';
	if (sources->server != NULL) {
		metrics_render_server(&t, sources->server);
	}
	if (sources->state != NULL) {
		metrics_render_locks(&t, sources->state);
		metrics_render_cache(&t, sources->state);
		if (!metrics_render_models(&t, sources->state)) {
			t.failed = true;
		}
		metrics_render_sessions(&t, sources->state);
		metrics_render_store(&t, sources->state);
	}
	if (sources->shared_cache != NULL) {
		metrics_render_shared_cache(&t, sources->shared_cache);
	}
	if (sources->log_queue != NULL) {
		metrics_render_log(&t, sources->log_queue);
	}
	metrics_render_process(&t);
	if (t.failed) {
		free(t.data);
		return NULL;
	}
	*len = t.len;
	return t.data;
}

/* ---- HTTP ---- */

/*
 * The endpoint: our own small HTTP server (http_metrics.h says why not
 * nng's), whose one thread renders each scrape through this callback.
 * zos_http_stop joins that thread, so once it returns no scrape reads the
 * sources any more.
 */
struct zos_metrics {
	struct zos_http           *http;
	struct zos_metrics_sources sources;
	char                       url[320];
};

/* A GET on the metrics path; runs on the HTTP server's thread. */
static char *
metrics_http_render(void *arg, size_t *len)
{
	struct zos_metrics *m    = arg;
	char               *text = zos_metrics_render(&m->sources, len);

	if (m->sources.state != NULL) {
		zos_assert_no_locks_held(
		    &m->sources.state->locks, "metrics reply");
	}
	return text;
}

int
zos_metrics_start(const char         *url_text,
    const struct zos_metrics_sources *sources, const char *token,
    struct zos_metrics **out, char *error, size_t error_len)
{
	struct zos_metrics *m   = NULL;
	nng_url            *url = NULL;
	const char         *path;
	char                why[256];
	bool                v6;
	int                 rv;

	*out = NULL;
	if ((rv = nng_url_parse(&url, url_text)) != 0 ||
	    strcmp(url->u_scheme, "http") != 0) {
		snprintf(error, error_len,
		    "cannot serve metrics on %s: not an http:// URL",
		    url_text);
		nng_url_free(url);
		return rv != 0 ? rv : NNG_EADDRINVAL;
	}
	if ((m = calloc(1, sizeof(*m))) == NULL) {
		snprintf(error, error_len, "cannot serve metrics on %s: %s",
		    url_text, nng_strerror(NNG_ENOMEM));
		nng_url_free(url);
		return NNG_ENOMEM;
	}
	m->sources = *sources;
	path       = url->u_path[0] != '\0' ? url->u_path : "/";
	struct zos_http_config config = {
		.host         = url->u_hostname,
		.port         = url->u_port,
		.path         = path,
		.token        = token,
		.content_type = METRICS_CONTENT_TYPE,
		.render       = metrics_http_render,
		.render_arg   = m,
	};
	if ((rv = zos_http_start(&config, &m->http, why, sizeof(why))) != 0) {
		snprintf(error, error_len, "cannot serve metrics on %s: %s",
		    url_text, why);
		free(m);
		nng_url_free(url);
		return rv == EADDRINUSE ? NNG_EADDRINUSE : NNG_EADDRINVAL;
	}
	v6 = strchr(url->u_hostname, ':') != NULL;
	snprintf(m->url, sizeof(m->url), "http://%s%s%s:%u%s", v6 ? "[" : "",
	    url->u_hostname, v6 ? "]" : "", zos_http_port(m->http), path);
	nng_url_free(url);
	*out = m;
	return 0;
}

const char *
zos_metrics_url(const struct zos_metrics *m)
{
	return m->url;
}

void
zos_metrics_stop(struct zos_metrics *m)
{
	if (m == NULL) {
		return;
	}
	zos_http_stop(m->http);
	free(m);
}
