/*
 * zosd's metrics endpoint: the Prometheus text format (version 0.0.4),
 * served over HTTP (http_metrics.h) at the path of --metrics-listen.
 *
 * Nothing is kept between scrapes: each GET renders the whole text afresh
 * from the live counters. The zrpc runtime's counters and histograms are
 * atomics, read without any lock; each zOS state module copies its numbers
 * out under its own lock, one lock at a time and briefly (cache stats,
 * session counts, routing metrics); so a scrape holds no zOS lock while it
 * formats or writes, and never two at once. Memory is bounded: the text of
 * one scrape is at most ZOS_METRICS_MAX_BYTES (a scrape that would exceed
 * it answers 500), scrapes render one at a time on the endpoint's one
 * thread, and the HTTP server (http_metrics.h) bounds its connections, the
 * time a request may take to arrive and its size.
 *
 * The metrics, with Prometheus's conventions (base units, _total for
 * counters, _seconds, _bytes):
 *
 *   zrpc_server_calls_total{method,code}            counter
 *   zrpc_server_call_duration_seconds{method}       histogram
 *   zrpc_server_queue_seconds{method}               histogram
 *   zrpc_server_calls_in_flight                     gauge
 *   zrpc_auth_denials_total{reason}                 counter
 *     (reason: unauthenticated, permission_denied)
 *   zos_lock_wait_seconds{lock}                     histogram (sampled)
 *   zos_lock_hold_seconds{lock}                     histogram (sampled)
 *   zos_lock_acquisitions_total{lock}               counter
 *   zos_lock_order_violations_total                counter
 *   zos_cache_entries, zos_cache_capacity           gauges
 *   zos_cache_{hits,misses,evictions}_total         counters
 *   zos_model_calls_total{model,outcome}            counter
 *   zos_model_fallbacks_total{model}                counter
 *   zos_model_latency_seconds_total{model}          counter
 *   zos_sessions{state}                             gauge
 *   zos_store_commits_total, zos_store_commit_failures_total,
 *   zos_store_bytes_written_total, zos_store_fsyncs_total,
 *   zos_store_fsync_seconds_total                   counters (0 in memory)
 *   zos_log_lines_dropped_total, zos_log_lines_written_total
 *                                                   counters (log.h)
 *   zos_log_queue_lines                             gauge
 *   process_resident_memory_bytes, process_virtual_memory_bytes,
 *   process_start_time_seconds                      gauges
 *   process_cpu_seconds_total                       counter
 *
 * method is the wire name ("/zos.v1.Skills/Get"), or "other" for calls
 * that matched no registered method (as gRPC's metrics name them), so
 * that callers cannot create label values. Histogram buckets are fixed
 * (zrpc_histogram_latency_bounds for calls, 1 us to 60 s at four per
 * decade; ZOS_METRICS_LOCK_BOUNDS) and written from the runtime's
 * log-linear histograms by zrpc_histogram_write_prometheus. A call's
 * duration runs from the moment the server takes its request off the
 * socket to the reply being handed to nng, so it includes the queue; the
 * queue histogram is the part before the handler started (waiting for a
 * worker, decoding), see zrpc_call_queue_ns.
 */
#ifndef ZOS_METRICS_H
#define ZOS_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "shared_cache.h"
#include "state.h"
#include "zrpc/logq.h"
#include "zrpc/server.h"

#define ZOS_METRICS_MAX_BYTES (4u << 20) /* text of one scrape */

/* What a scrape reports; any may be NULL (its metrics are left out). */
struct zos_metrics_sources {
	const zrpc_server *server;
	struct zos_state  *state;
	zrpc_logq         *log_queue; /* the log's queue (log.h) */
	/* --cache-url's second level (shared_cache.h); NULL = none */
	const struct zos_shared_cache *shared_cache;
};

/* Lock wait and hold bounds: 1 us to 1 s, in nanoseconds, le in seconds.
 * Calls use the runtime's zrpc_histogram_latency_bounds (1 us to 60 s). */
extern const struct zrpc_histogram_bounds ZOS_METRICS_LOCK_BOUNDS;

struct zos_metrics; /* opaque */

/*
 * Starts serving SOURCES on URL (http://HOST:PORT/PATH; port 0 picks a
 * free port, see zos_metrics_url): GET (and HEAD) on PATH answer the
 * metrics, other methods 405, other paths 404, with the bounds of
 * http_metrics.h. With TOKEN (NULL: none; copied) every request must
 * carry "Authorization: Bearer TOKEN" or gets 401. SOURCES must stay
 * valid until zos_metrics_stop. Returns 0 and *OUT, or an nng error with
 * ERROR saying what failed ("cannot serve metrics on URL: address already
 * in use").
 * Locking: none held; takes none.
 */
int zos_metrics_start(const char     *url,
    const struct zos_metrics_sources *sources, const char *token,
    struct zos_metrics **out, char *error, size_t error_len);

/* The URL being served, with the port resolved (owned by M). */
const char *zos_metrics_url(const struct zos_metrics *m);

/*
 * Stops serving: waits for the scrape rendering right now, stops the
 * endpoint's thread (SOURCES may be freed once this returns), closes the
 * listener and every connection, and frees M. NULL is a no-op.
 */
void zos_metrics_stop(struct zos_metrics *m);

/*
 * Renders the whole exposition for SOURCES into a new NUL-terminated
 * string (the caller frees it) and sets *LEN to its length. Returns NULL
 * when memory runs out, when the text would exceed ZOS_METRICS_MAX_BYTES
 * or when a state module cannot copy its numbers out.
 * Locking: takes, one at a time and never nested, response_cache,
 * session_state and routing_metrics (read) to copy their numbers; must be
 * called holding no zOS lock.
 */
char *zos_metrics_render(
    const struct zos_metrics_sources *sources, size_t *len);

#endif /* ZOS_METRICS_H */
