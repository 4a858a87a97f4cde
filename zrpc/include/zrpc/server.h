/*
 * zrpc server runtime: one rep0 socket, any number of listeners, services
 * registered by full name, and calls dispatched by wire method name.
 *
 * Each outstanding call owns one nng context; up to max_inflight calls are
 * served at once and the rest are answered RESOURCE_EXHAUSTED. A method
 * whose handler never blocks runs directly on nng's aio completion thread;
 * a method declared blocking runs on the worker pool. Every call passes
 * through the interceptor chain (request id, user interceptors such as the
 * access log, then metrics) and returns its per-call memory to the call's
 * arena, so a long-running server allocates nothing per call in steady
 * state.
 */
#ifndef ZRPC_SERVER_H
#define ZRPC_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "zrpc/auth.h"
#include "zrpc/histogram.h"
#include "zrpc/log.h"
#include "zrpc/service.h"
#include "zrpc/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * TLS for the server's tls+tcp:// and wss:// listeners: PEM files, read
 * once, when the first such listener is added (zrpc_server_listen), and
 * shared by all of them; the strings need only live until then. TLS 1.2
 * at least.
 */
struct zrpc_server_tls {
	/* Certificate chain, leaf first; required for a TLS listener. */
	const char *cert_file;
	/* Its private key, unencrypted; required for a TLS listener. */
	const char *key_file;
	/*
	 * CA certificates for client certificates. Set: every client must
	 * present a certificate that chains to one of them (mTLS), or its
	 * handshake fails. NULL: clients are not asked for one.
	 */
	const char *client_ca_file;
};

/* Server configuration; zero fields take the defaults shown. */
typedef struct zrpc_server_config {
	unsigned       workers;           /* worker threads; 0 = 2 x cores */
	unsigned       max_inflight;      /* calls served at once; 0 = 1024 */
	size_t         max_message_bytes; /* envelope bytes; 0 = 4 MiB */
	zrpc_log_fn    log;               /* NULL = no logging */
	void          *log_arg;
	zrpc_log_level log_level; /* events below this are dropped */
	/*
	 * Called on the serving thread each time a handler returns and
	 * before each reply is handed to nng, with WHERE naming the point;
	 * an application with its own locks checks there that none is held
	 * (zosd: zos_assert_no_locks_held). NULL = no check.
	 */
	void (*thread_check)(void *arg, const char *where);
	void                  *thread_check_arg;
	struct zrpc_server_tls tls; /* for tls+tcp:// and wss:// */
	/* Mode of an ipc:// listener's socket file, set before it is
	 * created; 0 = 0600 (owner only). */
	unsigned ipc_permissions;
	/*
	 * The tokens callers must present (zrpc/auth.h), checked against
	 * each method's role before its payload is decoded; not owned, and
	 * it must outlive the server (zrpc_auth_reload may swap its tokens
	 * at any time). NULL = no checks: every caller is admin.
	 */
	zrpc_auth *auth;

	/*
	 * Bounds per peer (zrpc_server_stats counts what each refuses). A
	 * "connection" is one nng pipe.
	 *
	 * send_timeout_ms: a reply that nng cannot send within it (the
	 * peer does not read) is dropped and the peer's connection closed,
	 * so that no other caller waits behind it. 0 = 10000.
	 *
	 * max_inflight_per_conn: requests of one connection that are being
	 * served or whose reply is still being sent; beyond it the
	 * connection's new requests get RESOURCE_EXHAUSTED undecoded, and a
	 * connection that goes on sending while it reads none of those
	 * replies (held beyond twice the bound) is closed. 0 = max_inflight,
	 * which never bites a client that the global bound lets through
	 * (zos-load puts up to 4096 callers on one connection).
	 *
	 * max_connections: connections at once; one more is closed as soon
	 * as nng reports it. 0 = 1024.
	 *
	 * idle_timeout_ms: a connection with nothing in flight that has
	 * delivered no complete request for this long is closed. nng reports
	 * only complete messages, so this is also the bound on a half-sent
	 * message (a peer that declared a large message and stalls). 0 =
	 * 300000; ZRPC_SERVER_NO_TIMEOUT turns it off.
	 *
	 * max_buffered_bytes: the bytes the server holds for calls: request
	 * messages of calls in flight plus replies not yet sent. A request
	 * that would take it beyond this gets RESOURCE_EXHAUSTED without
	 * being decoded, and so does a request of a connection that holds
	 * a quarter of it already (so that one peer that reads no replies
	 * cannot fill it for everyone). 0 = 256 MiB.
	 *
	 * max_metadata_entries, max_metadata_bytes: the request metadata of
	 * one call (entries; key and value bytes), counted on the wire
	 * before anything is decoded; beyond either the call gets
	 * RESOURCE_EXHAUSTED. 0 = 64 entries, 16 KiB.
	 *
	 * ws_allowed_origins: for a ws:// or wss:// connection whose
	 * handshake carried an Origin header (a browser's), the origins
	 * accepted (exact match, e.g. "https://app.example"); any other is
	 * closed. A handshake without Origin (not a browser) is accepted.
	 * N_WS_ALLOWED_ORIGINS 0 = no browser origin is accepted. The
	 * strings are copied.
	 */
	unsigned           send_timeout_ms;
	unsigned           max_inflight_per_conn;
	unsigned           max_connections;
	unsigned           idle_timeout_ms;
	size_t             max_buffered_bytes;
	unsigned           max_metadata_entries;
	size_t             max_metadata_bytes;
	const char *const *ws_allowed_origins;
	size_t             n_ws_allowed_origins;
	/*
	 * The name of this server among several serving one service (a
	 * node id, say "3"); copied. Set: every zrpc.v1.Health/Check reply
	 * carries reply metadata "x-zrpc-node: NODE_ID", so that a client
	 * learns which node a URL reaches. 1 to 64 printable ASCII bytes,
	 * no space (else zrpc_server_create: INVALID_ARGUMENT). NULL = none.
	 */
	const char *node_id;
} zrpc_server_config;

/* A timeout field of zrpc_server_config that is off. */
#define ZRPC_SERVER_NO_TIMEOUT UINT32_MAX

/*
 * Creates a server (not yet listening). CONFIG may be NULL. The built-in
 * services zrpc.v1.Health and zrpc.v1.Reflection are registered. Returns
 * INTERNAL (nng or memory failure) with a message.
 */
zrpc_status zrpc_server_create(
    zrpc_server **out, const zrpc_server_config *config);

/*
 * Adds a listener on URL (any nng URL) and starts it, so that its address
 * is bound when this returns. Fails with UNAVAILABLE when the address is in
 * use, INVALID_ARGUMENT for a malformed URL. May be called before or after
 * zrpc_server_start. For tcp:// URLs with port 0 the bound port can be read
 * with zrpc_server_listener_url.
 *
 * A tls+tcp:// or wss:// listener uses the config's tls files (read and
 * checked by the first such listener, then shared): INVALID_ARGUMENT when
 * no certificate or key is configured, or when a file cannot be read or
 * parsed (the message names it). An ipc:// listener's socket file gets
 * the config's ipc_permissions.
 */
zrpc_status zrpc_server_listen(zrpc_server *server, const char *url);

/*
 * The URL of listener INDEX (0-based, in zrpc_server_listen order), with an
 * ephemeral tcp port resolved; NULL when there is no such listener. The
 * string lives as long as the server.
 */
const char *zrpc_server_listener_url(const zrpc_server *server, size_t index);

/*
 * Registers DESC with its BINDINGS (DESC->n_methods entries, copied) and
 * CTX, the service's own state, handed to each handler through
 * zrpc_call_service_ctx. Only before zrpc_server_start. Fails with
 * ALREADY_EXISTS when the service name or a method path is taken.
 * Generated code calls this from <pkg>_<service>_register().
 */
zrpc_status zrpc_server_register(zrpc_server *server,
    const struct zrpc_service_desc           *desc,
    const struct zrpc_method_binding *bindings, void *ctx);

/*
 * An interceptor sees every call. BEFORE runs ahead of the handler; a
 * non-OK status ends the call with that status without running the
 * handler. AFTER runs once the reply status is known (also for calls ended
 * by BEFORE or by the runtime), with the call's latency in nanoseconds.
 * Either may be NULL. Both run on the thread serving the call and must not
 * block.
 */
struct zrpc_interceptor {
	const char *name;
	zrpc_status (*before)(void *arg, zrpc_call *call);
	void (*after)(void *arg, zrpc_call *call, const zrpc_status *status,
	    uint64_t latency_ns);
	void *arg;
};

/* Appends INTERCEPTOR (copied) to the chain. Only before start. */
zrpc_status zrpc_server_add_interceptor(
    zrpc_server *server, const struct zrpc_interceptor *interceptor);

/* Starts serving calls on every listener. */
zrpc_status zrpc_server_start(zrpc_server *server);

/*
 * Graceful stop: health turns NOT_SERVING, new calls get UNAVAILABLE,
 * calls in flight get up to GRACE_MS to finish; then the socket closes.
 * A handler still running on a worker after the grace is waited for (it
 * should honour its deadline); its reply is still sent.
 * Returns within GRACE_MS + 2 s whatever nng and the handlers do: the
 * teardown after the grace (workers, suspended calls, contexts, the
 * socket) runs on a helper thread, and when it has not finished within
 * 2 s stop returns anyway and the server's memory is left behind on
 * purpose (zrpc_server_stats reports close_abandoned):
 * zrpc_server_destroy then waits up to 2 s more for the teardown and frees
 * the server only if it finished, since nng may still call into it.
 * Returns the number of calls still unfinished when the grace ran out (0
 * when everything drained). Safe to call more than once.
 */
unsigned zrpc_server_stop(zrpc_server *server, unsigned grace_ms);

/* Stops (with no grace) if needed and frees SERVER. NULL is a no-op. */
void zrpc_server_destroy(zrpc_server *server);

/*
 * Sets the health status reported for SERVICE; "" is the whole server:
 * Health/Check of "" and of every registered service.
 * Registered services start SERVING.
 */
void zrpc_server_set_serving(
    zrpc_server *server, const char *service, bool serving);

/* Calls being served right now. */
unsigned zrpc_server_inflight(const zrpc_server *server);

/*
 * What the per-peer bounds did, since the server was created (counters)
 * and right now (gauges). Read with atomics; a copy, not live.
 */
struct zrpc_server_stats {
	uint64_t connections_refused;         /* beyond max_connections */
	uint64_t connections_idle_closed;     /* idle_timeout_ms */
	uint64_t connections_origin_refused;  /* ws Origin not allowed */
	uint64_t connections_flooding_closed; /* held 2 x per-conn bound */
	uint64_t replies_dropped;             /* send_timeout_ms ran out */
	uint64_t requests_conn_limited;       /* max_inflight_per_conn */
	uint64_t requests_buffer_limited;     /* max_buffered_bytes */
	uint64_t requests_metadata_limited;   /* metadata caps */
	uint64_t connections;                 /* open now */
	uint64_t buffered_bytes;              /* held now */
	/* true once zrpc_server_stop gave up waiting for nng to close the
	 * socket (its memory is then left behind on purpose) */
	bool close_abandoned;
};

/* Copies the server's bound statistics into *OUT. */
void zrpc_server_stats(
    const zrpc_server *server, struct zrpc_server_stats *out);

/*
 * Per-method statistics, kept in atomics. A call's latency runs from the
 * moment the server takes its request off the socket (nng's receive
 * completion) to its reply being handed to nng, so it includes the time
 * the call queued before its handler; that queue time is also kept on its
 * own (zrpc_call_queue_ns).
 */
struct zrpc_method_stats {
	const char *path;
	uint64_t    calls_by_code[ZRPC_CODE_COUNT];
	uint64_t    latency_ns_sum;
	uint64_t    handler_runs; /* times the handler actually ran */
	/*
	 * The method's live latency histogram (nanoseconds, 5 bits of
	 * precision), owned by the server and valid as long as it: read it
	 * (zrpc_histogram_quantile, zrpc_histogram_cumulative), never record
	 * into it. Unlike the copied counters above, it keeps moving.
	 */
	const struct zrpc_histogram *latency_ns;
	/*
	 * The method's live queue histogram (nanoseconds, same precision):
	 * for each call whose handler started, or whose deadline passed
	 * while it waited, zrpc_call_queue_ns. Read it, never record.
	 */
	const struct zrpc_histogram *queue_ns;
};

/*
 * Copies the statistics of the method at wire name PATH into *OUT.
 * Returns false when no such method is registered.
 */
bool zrpc_server_method_stats(const zrpc_server *server, const char *path,
    struct zrpc_method_stats *out);

/*
 * Visits every registered method's statistics (for the metrics endpoint),
 * and the calls that matched no method (path "" in the visit).
 */
void zrpc_server_foreach_method_stats(const zrpc_server *server,
    void (*visit)(void *arg, const struct zrpc_method_stats *stats),
    void *arg);

/* Calls refused by the token check (zrpc_server_config.auth). */
struct zrpc_auth_stats {
	uint64_t unauthenticated;   /* no token, or an unknown one */
	uint64_t permission_denied; /* a known token with too low a role */
};

/* Copies the counts of calls refused by the token check into *OUT. */
void zrpc_server_auth_stats(
    const zrpc_server *server, struct zrpc_auth_stats *out);

/* ---- inside a handler ---- */

/* The CTX given to zrpc_server_register for this call's service. */
void *zrpc_call_service_ctx(const zrpc_call *call);

/* The wire method name, "/zos.v1.Skills/Get". */
const char *zrpc_call_method(const zrpc_call *call);

/*
 * The caller's role, from its token: ZRPC_ROLE_NONE without a known
 * token; ZRPC_ROLE_ADMIN for every call when the server has no token
 * table. Also valid in interceptors' AFTER (NONE for a call refused
 * before its envelope was decoded).
 */
enum zrpc_role zrpc_call_role(const zrpc_call *call);

/* The call's request id (echoed or generated). */
const char *zrpc_call_request_id(const zrpc_call *call);

/*
 * Value of request metadata KEY (lower-case), or NULL. Valid for the
 * call's lifetime.
 */
const char *zrpc_call_metadata(const zrpc_call *call, const char *key);

/*
 * Adds KEY: VALUE to the reply metadata (both copied into the call's
 * arena). Returns RESOURCE_EXHAUSTED when the arena cannot grow.
 */
zrpc_status zrpc_call_set_reply_metadata(
    zrpc_call *call, const char *key, const char *value);

/*
 * Nanoseconds the call waited, from the moment its request was taken off
 * the socket, before its handler started: decoding and interceptors, and
 * for a blocking method the wait for a free worker; for a call handed on
 * (zrpc_call_continue_blocking), the wait for a worker to take it too.
 * Never more than the call's latency. Meant for interceptors' AFTER (it
 * is final there); 0 for a call whose handler never started and whose
 * deadline did not pass in the queue.
 */
uint64_t zrpc_call_queue_ns(const zrpc_call *call);

/*
 * W3C trace context (https://www.w3.org/TR/trace-context/). A request
 * metadata entry `traceparent` of version 00, written exactly as the
 * specification says ("00-" 32 lower-case hex digits of trace id, not all
 * zero, "-" 16 of parent id, not all zero, "-" 2 of flags: 55
 * characters), is accepted; anything else is ignored (logged at debug),
 * never an error. `tracestate` is kept, unchanged, only along with a
 * valid traceparent, and only when it is at most 512 printable ASCII
 * characters. Checking costs nothing for a request without metadata and
 * one string compare per entry otherwise.
 */
#define ZRPC_TRACEPARENT_LEN 55 /* characters, without the NUL */
#define ZRPC_TRACESTATE_MAX 512 /* longest tracestate kept */

/* True when TEXT is a valid version-00 traceparent (see above). */
bool zrpc_traceparent_valid(const char *text);

/* The call's valid traceparent as received, or NULL. Valid for the
 * call's lifetime (also in interceptors' AFTER). */
const char *zrpc_call_traceparent(const zrpc_call *call);

/* The call's tracestate as received (with a valid traceparent), or NULL. */
const char *zrpc_call_tracestate(const zrpc_call *call);

/*
 * The call's trace id, 32 hex digits: the received traceparent's, or the
 * one zrpc_call_child_traceparent started; NULL when there is none.
 * Valid for the call's lifetime (also in interceptors' AFTER).
 */
const char *zrpc_call_trace_id(const zrpc_call *call);

/*
 * Writes into OUT the traceparent to send with an outgoing call made for
 * CALL (a backend call): the call's trace id and flags, and a new parent
 * id (a fresh span id, different for every outgoing call). A call that
 * came without a valid traceparent starts a trace here, as W3C lets a
 * participant do: a new trace id, flags 00, kept for the call's later
 * outgoing calls and its access log (zrpc_call_trace_id). Ids come from a
 * per-server random seed and counter (splitmix64): unique, never zero,
 * no system call. Send it as metadata `traceparent`, with
 * zrpc_call_tracestate (when not NULL) as `tracestate`. From the thread
 * serving the call.
 */
void zrpc_call_child_traceparent(
    zrpc_call *call, char out[ZRPC_TRACEPARENT_LEN + 1]);

/*
 * Milliseconds left before the call's deadline: -1 when it has none, 0
 * when it has passed.
 */
int64_t zrpc_call_remaining_ms(const zrpc_call *call);

/* True when the call has a deadline and it has passed. */
bool zrpc_call_expired(const zrpc_call *call);

/*
 * Allocates SIZE bytes, zeroed, that live until the reply is sent; for the
 * strings, repeated fields and sub-messages of the reply. Returns NULL
 * only when memory is exhausted.
 */
void *zrpc_call_alloc(zrpc_call *call, size_t size);

/* Copies the string S into the call's arena; NULL when out of memory. */
char *zrpc_call_strdup(zrpc_call *call, const char *s);

/* The peer's address as text ("tcp://127.0.0.1:50012"), or "". */
const char *zrpc_call_peer(const zrpc_call *call);

/*
 * What a worker runs for a call a non-blocking handler handed over: its
 * REQUEST and the REPLY to fill, as the handler had them; returns the
 * call's status like a handler (and may suspend it, or hand it on again).
 */
typedef zrpc_status (*zrpc_continue_fn)(
    zrpc_call *call, const ProtobufCMessage *request, ProtobufCMessage *reply);

/*
 * For a method declared non-blocking whose handler finds, on this call,
 * that it must block (a cache miss that calls a backend): once the
 * handler returns (its status is ignored), NEXT runs on the worker pool
 * and answers the call. The cheap case stays on nng's thread with no
 * hand-off; only the calls that need it pay for one.
 */
void zrpc_call_continue_blocking(zrpc_call *call, zrpc_continue_fn next);

/*
 * Defers the reply: the handler may return before its answer is final (its
 * return status is then ignored), and the call is answered when
 * zrpc_call_resume is called, from any thread, once. The REPLY message the
 * handler was given, and everything allocated with zrpc_call_alloc, stay
 * valid until then; the call still counts as in flight (drain waits for
 * it). For a handler waiting on something that completes elsewhere, such
 * as a group commit to disk, without holding a thread meanwhile.
 * Call it at most once per call, from the handler, before arranging the
 * resume.
 */
void zrpc_call_suspend(zrpc_call *call);

/*
 * Answers a suspended call with STATUS (and, when OK, the REPLY its handler
 * filled). May run before the handler has returned; the reply is sent when
 * both have happened. Holds no lock of the caller's when it sends: call it
 * with no application lock held.
 */
void zrpc_call_resume(zrpc_call *call, zrpc_status status);

#ifdef __cplusplus
}
#endif

#endif /* ZRPC_SERVER_H */
