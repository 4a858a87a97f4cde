/*
 * The call lifecycle of the zrpc server: one zrpc_call, from the request's
 * bytes to the packed reply. The handler-facing functions (zrpc_call_*,
 * declared in the public zrpc/server.h) are implemented in call.c too.
 *
 * A call object is reused: the server keeps one per nng context (a slot)
 * for the server's whole life, and each request that the slot receives is
 * one turn of the cycle
 *
 *   zrpc_call_decode   the request envelope and input, into the arena;
 *   zrpc_call_run      the handler, on nng's thread or a worker's, which
 *                      may answer at once, suspend the call, or hand it on
 *                      to a worker (zrpc_call_continue_blocking);
 *   host->finish       the server packs the reply (zrpc_call_encode),
 *                      records it, runs its interceptors, calls
 *                      zrpc_call_reset and sends.
 *
 * Everything a call allocates comes from its arena, which the reset
 * rewinds but keeps, so that steady-state serving allocates nothing per
 * call. A call is used by one thread at a time (whichever serves it);
 * the one exception is a suspended call, whose handler's return and
 * zrpc_call_resume may race, and meet on an atomic count of two.
 *
 * The call reaches its server only through a zrpc_call_host, the table of
 * what the server does for its calls (answer, queue to a worker), so this
 * module needs the registry (which method, whose context) and nothing of
 * the server's sockets, slots or interceptors.
 */
#ifndef ZRPC_CALL_H
#define ZRPC_CALL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nng/nng.h>

#include "arena.h"
#include "registry.h"
#include "zrpc/auth.h"
#include "zrpc/server.h"
#include "zrpc/v1/envelope.pb-c.h"

/* Reply metadata entries a handler may set on one call. */
#define ZRPC_CALL_REPLY_METADATA_MAX 8

/* Longest x-request-id kept; longer ones are replaced. */
#define ZRPC_CALL_REQUEST_ID_MAX 128

/*
 * What the server does for its calls. One per server, filled in before its
 * first call and read-only afterwards (except the atomics); every call
 * points at it.
 */
struct zrpc_call_host {
	/*
	 * Answers CALL with STATUS and, when OK, REPLY (NULL for none):
	 * packs, records, resets and sends. Called exactly once per request,
	 * on the thread that ends the call, holding no lock.
	 */
	void (*finish)(struct zrpc_call *call, zrpc_status status,
	    const ProtobufCMessage *reply);
	/*
	 * Queues CALL to the worker pool; a worker then calls
	 * zrpc_call_work(CALL). Takes only the pool's own mutex.
	 */
	void (*submit)(struct zrpc_call *call);
	/* The application's check that the thread holds none of its
	 * locks (zrpc_server_config.thread_check); NULL = none. */
	void (*thread_check)(void *arg, const char *where);
	void *thread_check_arg;

	/* Request ids: a random per-server prefix and a counter. */
	uint64_t             request_id_prefix;
	atomic_uint_fast64_t request_id_next;
	/* Trace and span ids (zrpc_call_child_traceparent): splitmix64 of
	 * a random per-server seed and a counter. */
	uint64_t             trace_seed;
	atomic_uint_fast64_t trace_next;
	/* The server's log (zrpc_server_config.log; NULL = none), for the
	 * debug line about an invalid traceparent. */
	zrpc_log_fn    log;
	void          *log_arg;
	zrpc_log_level log_level;
	/* Calls suspended and not yet answered (stop waits for them). */
	atomic_uint suspended;

	/* The token table (zrpc_server_config.auth); NULL = no checks,
	 * every caller is admin. Calls refused by it, by reason. */
	zrpc_auth           *auth;
	atomic_uint_fast64_t denied_unauthenticated;
	atomic_uint_fast64_t denied_permission;
};

struct zrpc_call {
	struct zrpc_call_host *host;
	struct zrpc_registry  *registry;
	struct zrpc_arena      arena;

	/* The request being served; cleared by zrpc_call_reset. */
	nng_pipe                     pipe;
	uint64_t                     start_ns;
	uint64_t                     deadline_ns; /* 0 = none */
	Zrpc__V1__Request           *request;
	struct zrpc_registry_method *method; /* NULL: matched none */
	ProtobufCMessage            *input;
	ProtobufCMessage            *reply; /* the handler's */
	const char                  *request_id;
	enum zrpc_role               role; /* the caller's, once decoded */
	/*
	 * Queue time (zrpc_call_queue_ns): added up when the handler starts
	 * and when a worker takes a handed-on call (HANDED_NS: when it was
	 * handed on).
	 */
	uint64_t queue_ns;
	uint64_t handed_ns;
	bool     queued; /* the handler started, or expired waiting */
	/*
	 * Trace context: the valid traceparent and tracestate received
	 * (in the request; NULL = none), and the trace id, received or
	 * started by zrpc_call_child_traceparent ("" = none).
	 */
	const char *traceparent;
	const char *tracestate;
	char        trace_id[33];
	char        trace_flags[3];
	Zrpc__V1__Response__MetadataEntry
	         reply_metadata[ZRPC_CALL_REPLY_METADATA_MAX];
	size_t   n_reply_metadata;
	char     peer[160]; /* zrpc_call_peer's text, made on first use */
	uint32_t peer_pipe; /* the pipe id PEER was made for */

	/*
	 * A suspended call (zrpc_call_suspend): the handler's return and
	 * zrpc_call_resume each drop one of two references; whichever
	 * comes second finishes the call with RESUMED.
	 */
	bool        suspended;
	atomic_int  suspend_refs;
	zrpc_status resumed;

	/* Set by zrpc_call_continue_blocking: what a worker runs next. */
	zrpc_continue_fn next;
};

/*
 * Sets CALL up for HOST and REGISTRY, both of which outlive it, with an
 * empty arena. Allocates nothing.
 */
void zrpc_call_init(struct zrpc_call *call, struct zrpc_call_host *host,
    struct zrpc_registry *registry);

/* Frees the arena. The call must not be in use. */
void zrpc_call_finish(struct zrpc_call *call);

/* A request arrived at NOW_NS over PIPE: its latency counts from here. */
void zrpc_call_arrived(struct zrpc_call *call, nng_pipe pipe, uint64_t now_ns);

/*
 * Decodes the request BODY (LEN bytes, not kept) into the arena: the
 * envelope, the deadline, the request id (the caller's x-request-id when
 * sane, else a new one), the method, the caller's role, and the input.
 * The role is checked against the method's before the input is decoded
 * (zrpc/auth.h): UNAUTHENTICATED for a missing or unknown token (also for
 * an unknown method, which an unauthenticated caller cannot tell from a
 * forbidden one), PERMISSION_DENIED for too low a role. Returns OK, or the
 * status to answer with: INVALID_ARGUMENT for bytes that are not a
 * zrpc.v1.Request or a payload that is not the method's input, or for a
 * string field in either that is not UTF-8 or holds a NUL (wire_check.h),
 * UNIMPLEMENTED for an unknown method or one without a handler,
 * RESOURCE_EXHAUSTED when out of memory.
 */
zrpc_status zrpc_call_decode(
    struct zrpc_call *call, const uint8_t *body, size_t len);

/*
 * Runs the decoded call's handler (unless its deadline has passed:
 * DEADLINE_EXCEEDED), then answers it through the host, or leaves it to
 * zrpc_call_resume, or has the host queue it for a worker. Called on nng's
 * thread for a non-blocking method, on a worker for a blocking one.
 */
void zrpc_call_run(struct zrpc_call *call);

/*
 * What a worker does with a call the host queued: runs the handler, or the
 * continuation zrpc_call_continue_blocking set.
 */
void zrpc_call_work(struct zrpc_call *call);

/*
 * Packs the zrpc.v1.Response for *STATUS (and REPLY when OK) into a new nng
 * message in *OUT, with x-request-id and the handler's reply metadata.
 * When the reply does not fit in memory *STATUS becomes
 * RESOURCE_EXHAUSTED. Returns 0, or the nng error when no message could be
 * allocated (*OUT is NULL; the packed size is in *SIZE for the log).
 */
int zrpc_call_encode(struct zrpc_call *call, zrpc_status *status,
    const ProtobufCMessage *reply, nng_msg **out, size_t *size);

/*
 * Forgets the request (after zrpc_call_encode, or when it is abandoned)
 * and rewinds the arena, ready for the next one.
 */
void zrpc_call_reset(struct zrpc_call *call);

#endif /* ZRPC_CALL_H */
