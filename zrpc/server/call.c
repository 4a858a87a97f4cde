/*
 * The call lifecycle; see call.h for the cycle a call goes through.
 *
 * Who answers. Every request ends in exactly one host->finish. A plain
 * handler's return answers the call; a suspended call is answered by
 * whichever of the handler's return and zrpc_call_resume comes second
 * (an atomic count of two, so neither needs a lock); a call handed on
 * with zrpc_call_continue_blocking is answered by its continuation, on a
 * worker, by the same rules. The call's fields are touched by one thread
 * at a time: the one serving it, then the worker it was handed to, then
 * (for a suspended call) whichever thread drops the last reference.
 *
 * Nothing here allocates from the heap: the request, its input, the reply
 * and their strings all come from the call's arena.
 *
 * Queue time. A call's latency counts from zrpc_call_arrived (the
 * receive completion); its queue time is the part of it before the
 * handler starts, from one clock read as the handler starts (which the
 * deadline check shares), plus, for a call handed on to a worker, the
 * wait between the hand-off and the worker taking it.
 *
 * Trace context. The traceparent is looked for while decoding, by one
 * scan of the request's metadata (none for a request without metadata),
 * checked strictly (W3C trace context, version 00) and kept as a pointer
 * into the decoded request. Ids for outgoing calls come
 * from splitmix64 over a random per-server seed and an atomic counter:
 * distinct for 2^64 draws, never zero, and no system call per id.
 */
#include "call.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "wire_check.h"
#include "zrpc/clock.h"

void
zrpc_call_init(struct zrpc_call *call, struct zrpc_call_host *host,
    struct zrpc_registry *registry)
{
	memset(call, 0, sizeof(*call));
	call->host     = host;
	call->registry = registry;
	atomic_init(&call->suspend_refs, 0);
	zrpc_arena_init(&call->arena);
}

void
zrpc_call_finish(struct zrpc_call *call)
{
	zrpc_arena_finish(&call->arena);
}

void
zrpc_call_arrived(struct zrpc_call *call, nng_pipe pipe, uint64_t now_ns)
{
	call->pipe     = pipe;
	call->start_ns = now_ns;
}

static const char *
call_request_metadata(const Zrpc__V1__Request *request, const char *key)
{
	for (size_t i = 0; i < request->n_metadata; i++) {
		const Zrpc__V1__Request__MetadataEntry *e =
		    request->metadata[i];
		if (e->key != NULL && strcmp(e->key, key) == 0) {
			return e->value != NULL ? e->value : "";
		}
	}
	return NULL;
}

/* The caller's x-request-id when it is sane, else a fresh one. */
static const char *
call_request_id(struct zrpc_call *call)
{
	struct zrpc_call_host *host = call->host;
	const char            *given;
	char                   id[40];

	given = call_request_metadata(call->request, "x-request-id");
	if (given != NULL && given[0] != '\0' &&
	    strlen(given) <= ZRPC_CALL_REQUEST_ID_MAX) {
		return given;
	}
	snprintf(id, sizeof(id), "%016" PRIx64 "-%" PRIx64,
	    host->request_id_prefix,
	    (uint64_t) atomic_fetch_add_explicit(
	        &host->request_id_next, 1, memory_order_relaxed));
	return zrpc_arena_strdup(&call->arena, id);
}

static void call_log(const struct zrpc_call *call, zrpc_log_level level,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Logs through the server's sink, when it takes LEVEL. */
static void
call_log(
    const struct zrpc_call *call, zrpc_log_level level, const char *fmt, ...)
{
	const struct zrpc_call_host *host = call->host;
	char                         line[256];
	va_list                      ap;

	if (host->log == NULL || level < host->log_level) {
		return;
	}
	va_start(ap, fmt);
	(void) vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	host->log(host->log_arg, level, line);
}

/* N lower-case hex digits at S, not all of them '0' unless ZERO_OK. */
static bool
call_hex(const char *s, size_t n, bool zero_ok)
{
	bool nonzero = false;

	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
			return false;
		}
		nonzero |= c != '0';
	}
	return zero_ok || nonzero;
}

bool
zrpc_traceparent_valid(const char *text)
{
	/* 00-<32 hex trace id>-<16 hex parent id>-<2 hex flags> */
	return text != NULL && strlen(text) == ZRPC_TRACEPARENT_LEN &&
	    text[0] == '0' && text[1] == '0' && text[2] == '-' &&
	    call_hex(text + 3, 32, false) && text[35] == '-' &&
	    call_hex(text + 36, 16, false) && text[52] == '-' &&
	    call_hex(text + 53, 2, true);
}

/* A tracestate worth passing on: at most 512 printable ASCII bytes. */
static bool
call_tracestate_valid(const char *text)
{
	size_t n = 0;

	for (; text[n] != '\0'; n++) {
		if (n == ZRPC_TRACESTATE_MAX || text[n] < 0x20 ||
		    text[n] > 0x7e) {
			return false;
		}
	}
	return true;
}

/* The caller's trace context, when valid (see zrpc/server.h). */
static void
call_trace_context(struct zrpc_call *call)
{
	const char *given, *state;

	given = call_request_metadata(call->request, "traceparent");
	if (given == NULL) {
		return;
	}
	if (!zrpc_traceparent_valid(given)) {
		call_log(call, ZRPC_LOG_DEBUG,
		    "request %s: ignoring an invalid traceparent '%.64s'",
		    call->request_id, given);
		return;
	}
	call->traceparent = given;
	memcpy(call->trace_id, given + 3, 32);
	call->trace_id[32] = '\0';
	memcpy(call->trace_flags, given + 53, 2);
	call->trace_flags[2] = '\0';
	state = call_request_metadata(call->request, "tracestate");
	if (state != NULL) {
		if (call_tracestate_valid(state)) {
			call->tracestate = state;
		} else {
			call_log(call, ZRPC_LOG_DEBUG,
			    "request %s: ignoring a tracestate that is not "
			    "%d printable ASCII characters at most",
			    call->request_id, ZRPC_TRACESTATE_MAX);
		}
	}
}

/*
 * Checks the caller's token against the role METHOD requires (METHOD NULL:
 * no such method) and records the caller's role in CALL. Returns OK or
 * the denial, which it counts.
 */
static zrpc_status
call_authorize(
    struct zrpc_call *call, const struct zrpc_registry_method *method)
{
	struct zrpc_call_host *host = call->host;
	const char            *header;
	enum zrpc_role         need;

	if (host->auth == NULL) {
		call->role = ZRPC_ROLE_ADMIN;
		return zrpc_status_ok();
	}
	need       = method != NULL ? method->desc->role : ZRPC_ROLE_READ;
	header     = call_request_metadata(call->request, "authorization");
	call->role = header != NULL
	    ? zrpc_auth_lookup_header(host->auth, header)
	    : ZRPC_ROLE_NONE;
	if (need == ZRPC_ROLE_NONE || call->role >= need) {
		return zrpc_status_ok();
	}
	if (call->role == ZRPC_ROLE_NONE) {
		atomic_fetch_add_explicit(
		    &host->denied_unauthenticated, 1, memory_order_relaxed);
		return zrpc_status_make(ZRPC_UNAUTHENTICATED,
		    header == NULL ? "%s needs a token (authorization: Bearer "
		                     "<token>)"
		                   : "%s: the token is not known",
		    call->request->method);
	}
	atomic_fetch_add_explicit(
	    &host->denied_permission, 1, memory_order_relaxed);
	return zrpc_status_make(ZRPC_PERMISSION_DENIED,
	    "%s needs role %s; the token has role %s", call->request->method,
	    zrpc_role_name(need), zrpc_role_name(call->role));
}

zrpc_status
zrpc_call_decode(struct zrpc_call *call, const uint8_t *body, size_t len)
{
	zrpc_status status;

	struct zrpc_registry_method *method;
	struct zrpc_wire_fault       fault;

	/* protobuf-c checks neither UTF-8 nor NULs, and a NUL would cut
	 * the method name short before it is looked up: check the bytes. */
	if (zrpc_wire_check(&zrpc__v1__request__descriptor, body, len,
	        &fault) != ZRPC_WIRE_OK) {
		return zrpc_wire_fault_status(&fault);
	}
	call->request =
	    zrpc__v1__request__unpack(&call->arena.allocator, len, body);
	if (call->request == NULL) {
		return zrpc_status_make(ZRPC_INVALID_ARGUMENT,
		    "body is not a valid zrpc.v1.Request");
	}
	if (call->request->timeout_ms > 0) {
		call->deadline_ns = call->start_ns +
		    (uint64_t) call->request->timeout_ms * 1000000u;
	}
	call->request_id = call_request_id(call);
	if (call->request->n_metadata > 0) {
		call_trace_context(call);
	}
	method =
	    zrpc_registry_find_method(call->registry, call->request->method);
	call->method = method;
	/* Before the payload is looked at: a caller without the role gets
	 * nothing out of the decoder, not even its error messages. */
	status = call_authorize(call, method);
	if (!zrpc_status_is_ok(&status)) {
		return status;
	}
	if (method == NULL) {
		return zrpc_status_make(ZRPC_UNIMPLEMENTED,
		    "unknown method %s", call->request->method);
	}
	if (method->binding.fn == NULL) {
		return zrpc_status_make(ZRPC_UNIMPLEMENTED,
		    "method %s is not implemented", method->desc->path);
	}
	if (zrpc_wire_check(method->desc->input, call->request->payload.data,
	        call->request->payload.len, &fault) != ZRPC_WIRE_OK) {
		return zrpc_wire_fault_status(&fault);
	}
	call->input = protobuf_c_message_unpack(method->desc->input,
	    &call->arena.allocator, call->request->payload.len,
	    call->request->payload.data);
	if (call->input == NULL) {
		return zrpc_status_make(ZRPC_INVALID_ARGUMENT,
		    "payload is not a valid %s", method->desc->input->name);
	}
	return zrpc_status_ok();
}

/*
 * A handler (or its continuation) returned STATUS: answer, or leave the
 * call to zrpc_call_resume, or hand it to a worker to go on.
 */
static void
call_handled(struct zrpc_call *call, zrpc_status status)
{
	const struct zrpc_call_host *host = call->host;

	if (host->thread_check != NULL) {
		host->thread_check(
		    host->thread_check_arg, "return from a handler");
	}
	if (call->next != NULL) {
		call->handed_ns = zrpc_now_ns();
		host->submit(call);
		return;
	}
	if (call->suspended) {
		/* The reply goes when zrpc_call_resume has run too. */
		if (atomic_fetch_sub(&call->suspend_refs, 1) == 1) {
			host->finish(call, call->resumed, call->reply);
		}
		return;
	}
	host->finish(call, status, call->reply);
}

void
zrpc_call_run(struct zrpc_call *call)
{
	struct zrpc_registry_method *method = call->method;
	ProtobufCMessage            *reply;
	uint64_t                     now = zrpc_now_ns();

	/* Whether it runs or has expired, its wait ends here. */
	call->queue_ns += now - call->start_ns;
	call->queued = true;
	if (call->deadline_ns != 0 && now >= call->deadline_ns) {
		call->host->finish(call,
		    zrpc_status_make(ZRPC_DEADLINE_EXCEEDED,
		        "deadline exceeded before %s started",
		        method->desc->path),
		    NULL);
		return;
	}
	reply = zrpc_arena_alloc(
	    &call->arena, method->desc->output->sizeof_message);
	if (reply == NULL) {
		call->host->finish(call,
		    zrpc_status_make(ZRPC_RESOURCE_EXHAUSTED, "out of memory"),
		    NULL);
		return;
	}
	protobuf_c_message_init(method->desc->output, reply);
	atomic_fetch_add_explicit(
	    &method->stats.handler_runs, 1, memory_order_relaxed);
	call->reply = reply;
	call_handled(call,
	    method->binding.invoke(
	        method->binding.fn, call, call->input, reply));
}

void
zrpc_call_work(struct zrpc_call *call)
{
	zrpc_continue_fn next = call->next;

	if (next == NULL) {
		zrpc_call_run(call);
		return;
	}
	call->next = NULL;
	call->queue_ns += zrpc_now_ns() - call->handed_ns;
	call_handled(call, next(call, call->input, call->reply));
}

int
zrpc_call_encode(struct zrpc_call *call, zrpc_status *status,
    const ProtobufCMessage *reply, nng_msg **out, size_t *size)
{
	Zrpc__V1__Response response = ZRPC__V1__RESPONSE__INIT;
	Zrpc__V1__Response__MetadataEntry
	    *entries[ZRPC_CALL_REPLY_METADATA_MAX + 1];
	Zrpc__V1__Response__MetadataEntry id_entry =
	    ZRPC__V1__RESPONSE__METADATA_ENTRY__INIT;
	nng_msg *msg;
	size_t   len;
	int      rv;

	*out = NULL;
	if (zrpc_status_is_ok(status) && reply != NULL) {
		len = protobuf_c_message_get_packed_size(reply);
		response.payload.len = len;
		if (len > 0) {
			response.payload.data =
			    zrpc_arena_alloc(&call->arena, len);
			if (response.payload.data == NULL) {
				*status =
				    zrpc_status_make(ZRPC_RESOURCE_EXHAUSTED,
				        "reply too large for memory");
				response.payload.len = 0;
			} else {
				protobuf_c_message_pack(
				    reply, response.payload.data);
			}
		}
	}
	response.code    = (uint32_t) status->code;
	response.message = status->message;

	if (call->request_id != NULL) {
		id_entry.key        = "x-request-id";
		id_entry.value      = (char *) call->request_id;
		entries[0]          = &id_entry;
		response.n_metadata = 1;
	}
	for (size_t i = 0; i < call->n_reply_metadata; i++) {
		entries[response.n_metadata++] = &call->reply_metadata[i];
	}
	response.metadata = entries;

	*size = zrpc__v1__response__get_packed_size(&response);
	if ((rv = nng_msg_alloc(&msg, *size)) != 0) {
		return rv;
	}
	zrpc__v1__response__pack(&response, nng_msg_body(msg));
	*out = msg;
	return 0;
}

void
zrpc_call_reset(struct zrpc_call *call)
{
	call->request          = NULL;
	call->method           = NULL;
	call->input            = NULL;
	call->reply            = NULL;
	call->request_id       = NULL;
	call->role             = ZRPC_ROLE_NONE;
	call->queue_ns         = 0;
	call->queued           = false;
	call->traceparent      = NULL;
	call->tracestate       = NULL;
	call->trace_id[0]      = '\0';
	call->deadline_ns      = 0;
	call->n_reply_metadata = 0;
	call->suspended        = false;
	call->next             = NULL;
	zrpc_arena_reset(&call->arena);
}

/* ---- inside a handler (zrpc/server.h) ---- */

void *
zrpc_call_service_ctx(const zrpc_call *call)
{
	return call->method != NULL ? call->method->service->ctx : NULL;
}

const char *
zrpc_call_method(const zrpc_call *call)
{
	return call->request != NULL && call->request->method != NULL
	    ? call->request->method
	    : "";
}

enum zrpc_role
zrpc_call_role(const zrpc_call *call)
{
	return call->role;
}

const char *
zrpc_call_request_id(const zrpc_call *call)
{
	return call->request_id != NULL ? call->request_id : "";
}

const char *
zrpc_call_metadata(const zrpc_call *call, const char *key)
{
	return call->request != NULL
	    ? call_request_metadata(call->request, key)
	    : NULL;
}

zrpc_status
zrpc_call_set_reply_metadata(
    zrpc_call *call, const char *key, const char *value)
{
	Zrpc__V1__Response__MetadataEntry *e;

	if (call->n_reply_metadata == ZRPC_CALL_REPLY_METADATA_MAX) {
		return zrpc_status_make(ZRPC_RESOURCE_EXHAUSTED,
		    "at most %d reply metadata entries",
		    ZRPC_CALL_REPLY_METADATA_MAX);
	}
	e = &call->reply_metadata[call->n_reply_metadata];
	zrpc__v1__response__metadata_entry__init(e);
	e->key   = zrpc_arena_strdup(&call->arena, key);
	e->value = zrpc_arena_strdup(&call->arena, value);
	if (e->key == NULL || e->value == NULL) {
		return zrpc_status_make(
		    ZRPC_RESOURCE_EXHAUSTED, "out of memory");
	}
	call->n_reply_metadata++;
	return zrpc_status_ok();
}

uint64_t
zrpc_call_queue_ns(const zrpc_call *call)
{
	return call->queue_ns;
}

const char *
zrpc_call_traceparent(const zrpc_call *call)
{
	return call->traceparent;
}

const char *
zrpc_call_tracestate(const zrpc_call *call)
{
	return call->tracestate;
}

const char *
zrpc_call_trace_id(const zrpc_call *call)
{
	return call->trace_id[0] != '\0' ? call->trace_id : NULL;
}

/* The next id of the server's sequence: splitmix64, never zero. */
static uint64_t
call_next_id(struct zrpc_call_host *host)
{
	uint64_t z;

	do {
		uint64_t n = atomic_fetch_add_explicit(
		    &host->trace_next, 1, memory_order_relaxed);
		z = host->trace_seed + (n + 1) * UINT64_C(0x9e3779b97f4a7c15);
		z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
		z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
		z = z ^ (z >> 31);
	} while (z == 0); /* splitmix64 is a bijection: once in 2^64 */
	return z;
}

void
zrpc_call_child_traceparent(
    zrpc_call *call, char out[ZRPC_TRACEPARENT_LEN + 1])
{
	if (call->trace_id[0] == '\0') {
		uint64_t hi = call_next_id(call->host);
		uint64_t lo = call_next_id(call->host);

		snprintf(call->trace_id, sizeof(call->trace_id),
		    "%016" PRIx64 "%016" PRIx64, hi, lo);
		memcpy(call->trace_flags, "00", 3);
	}
	snprintf(out, ZRPC_TRACEPARENT_LEN + 1, "00-%s-%016" PRIx64 "-%s",
	    call->trace_id, call_next_id(call->host), call->trace_flags);
}

int64_t
zrpc_call_remaining_ms(const zrpc_call *call)
{
	uint64_t now;

	if (call->deadline_ns == 0) {
		return -1;
	}
	now = zrpc_now_ns();
	return now >= call->deadline_ns
	    ? 0
	    : (int64_t) ((call->deadline_ns - now) / 1000000u);
}

bool
zrpc_call_expired(const zrpc_call *call)
{
	return call->deadline_ns != 0 && zrpc_now_ns() >= call->deadline_ns;
}

void *
zrpc_call_alloc(zrpc_call *call, size_t size)
{
	return zrpc_arena_alloc(&call->arena, size);
}

char *
zrpc_call_strdup(zrpc_call *call, const char *s)
{
	return zrpc_arena_strdup(&call->arena, s);
}

const char *
zrpc_call_peer(const zrpc_call *call)
{
	struct zrpc_call *mut = (struct zrpc_call *) call;
	nng_sockaddr      sa;
	char              addr[64];

	/*
	 * Kept from the slot's previous call when it came over the same
	 * connection (nng does not reuse a pipe id soon): asking nng costs a
	 * getpeername(2) under its locks, measured at 5 % of zosd's CPU
	 * with every call logged.
	 */
	if (mut->peer[0] != '\0' &&
	    mut->peer_pipe == (uint32_t) nng_pipe_id(mut->pipe)) {
		return mut->peer;
	}
	mut->peer[0] = '\0';
	if (nng_pipe_get_addr(mut->pipe, NNG_OPT_REMADDR, &sa) != 0) {
		return "";
	}
	mut->peer_pipe = (uint32_t) nng_pipe_id(mut->pipe);
	switch (sa.s_family) {
	case NNG_AF_INET: {
		uint32_t a = ntohl(sa.s_in.sa_addr);
		snprintf(addr, sizeof(addr), "%u.%u.%u.%u", a >> 24,
		    (a >> 16) & 0xff, (a >> 8) & 0xff, a & 0xff);
		snprintf(mut->peer, sizeof(mut->peer), "tcp://%s:%u", addr,
		    ntohs(sa.s_in.sa_port));
		break;
	}
	case NNG_AF_INET6:
		snprintf(mut->peer, sizeof(mut->peer), "tcp6://port:%u",
		    ntohs(sa.s_in6.sa_port));
		break;
	case NNG_AF_IPC:
		snprintf(mut->peer, sizeof(mut->peer), "ipc://%s",
		    sa.s_ipc.sa_path);
		break;
	case NNG_AF_INPROC:
		snprintf(mut->peer, sizeof(mut->peer), "inproc://%s",
		    sa.s_inproc.sa_name);
		break;
	default:
		snprintf(mut->peer, sizeof(mut->peer), "unknown");
		break;
	}
	return mut->peer;
}

void
zrpc_call_suspend(zrpc_call *call)
{
	struct zrpc_call_host *host = call->host;

	call->suspended = true;
	atomic_store(&call->suspend_refs, 2);
	atomic_fetch_add(&host->suspended, 1);
}

void
zrpc_call_resume(zrpc_call *call, zrpc_status status)
{
	call->resumed = status;
	if (atomic_fetch_sub(&call->suspend_refs, 1) == 1) {
		call->host->finish(call, call->resumed, call->reply);
	}
}

void
zrpc_call_continue_blocking(zrpc_call *call, zrpc_continue_fn next)
{
	call->next = next;
}
