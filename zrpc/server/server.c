/*
 * zrpc server: the socket, its listeners and contexts, the bound on calls
 * in flight, the interceptor chain, and start, stop and drain. What a call
 * is (its arena, request, reply and handler) is call.c's; which services
 * and methods exist is registry.c's.
 *
 * One rep0 socket serves every listener. A call is served by a *slot*: an
 * nng context, an aio and a zrpc_call that live as long as the server. A
 * slot loops RECV -> (handler) -> SEND -> RECV. Slots are created on demand,
 * a few at a time, whenever fewer than SLOT_LOW_WATER are waiting to
 * receive, up to max_inflight + SLOT_SPARE; the spare slots exist so that
 * calls beyond max_inflight can still be answered RESOURCE_EXHAUSTED
 * instead of waiting silently in nng's queues.
 *
 * A handler that never blocks runs on nng's aio completion thread, right in
 * the slot's callback: no hand-off, which is the cheapest path. A method
 * declared blocking is queued to the worker pool. Either way the server is
 * the call's host: it answers (server_call_finish packs the reply into a
 * fresh nng message, records it, runs the after interceptors and rewinds
 * the call's arena before sending) and queues calls to the workers.
 *
 * Counters (calls in flight, replies being sent, suspended calls) are C11
 * atomics; the only mutexes are the worker queue's, the slot table's
 * (taken only when slots are added) and the drain condition's. No lock is
 * held while a handler runs. Draining: a call counts in `active` from its
 * admission until its reply is handed to nng, then in `sending` until nng
 * is done with it; stop waits (up to the grace) for both to reach zero.
 */
#include "zrpc/server.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>

#include "../common/tls.h"
#include "builtin.h"
#include "call.h"
#include "registry.h"
#include "workers.h"
#include "zrpc/clock.h"

#define SLOT_INITIAL 16  /* slots created at start */
#define SLOT_GROW 8      /* slots added at a time */
#define SLOT_LOW_WATER 4 /* add slots when fewer wait to receive */
#define SLOT_SPARE 8     /* slots beyond max_inflight, for rejections */

#define DEFAULT_MAX_INFLIGHT 1024
#define DEFAULT_MAX_MESSAGE_BYTES (4u * 1024 * 1024)
/*
 * max_message_bytes counts the envelope's bytes, but nng's
 * NNG_OPT_RECVMAXSZ counts its req/rep header too: 4 bytes of request id
 * plus 4 per device the request passed (at most 8 hops, nng's default
 * NNG_OPT_MAXTTL). nng's limit is max_message_bytes plus this much; the
 * exact limit is checked on the body (server_slot_received).
 */
#define SERVER_NNG_HEADER_BYTES 32u

/* Mode of an ipc:// socket file when the config leaves it at 0. */
#define SERVER_DEFAULT_IPC_PERMISSIONS 0600u

struct server_listener {
	nng_listener listener;
	char        *url; /* with an ephemeral port resolved */
};

enum slot_state {
	SLOT_RECV, /* waiting for a request */
	SLOT_SEND, /* reply handed to nng */
};

/* One nng context and the call it serves, for the server's life. */
struct server_slot {
	struct zrpc_call       call; /* what the host functions are given */
	struct zrpc_worker_job job;  /* queue node for the worker pool */
	zrpc_server           *server;
	nng_ctx                ctx;
	nng_aio               *aio;
	enum slot_state        state;
	bool                   counted; /* in server->active */
	bool                   sending; /* in server->sending */
};

#define SERVER_SLOT_OF(ptr, member)                                 \
	((struct server_slot *) (void *) ((char *) (ptr) -offsetof( \
	    struct server_slot, member)))

struct zrpc_server {
	zrpc_server_config config;
	nng_socket         socket;

	struct server_listener *listeners;
	size_t                  n_listeners;
	/* Shared by the TLS listeners; made by the first one (listen is
	 * called from one thread, before or after start). */
	nng_tls_config *tls;

	struct zrpc_registry     registry;
	struct zrpc_call_host    host;
	struct zrpc_interceptor *interceptors;
	size_t                   n_interceptors;

	struct zrpc_worker_pool pool;

	pthread_mutex_t      slots_mutex;
	struct server_slot **slots;   /* guarded by: slots_mutex */
	size_t               n_slots; /* guarded by: slots_mutex */
	size_t               slot_limit;
	atomic_bool          closing; /* written under slots_mutex */
	atomic_int           idle_slots;

	atomic_uint     active;  /* calls admitted and not yet answered */
	atomic_uint     sending; /* replies handed to nng, not yet sent */
	atomic_bool     draining;
	pthread_mutex_t drain_mutex;
	pthread_cond_t  drained;

	bool started;
	bool stopped;
};

static void server_slot_cb(void *arg);
static void server_call_finish(
    struct zrpc_call *call, zrpc_status status, const ProtobufCMessage *reply);
static void server_call_submit(struct zrpc_call *call);

/* ---- small helpers ---- */

static void server_log(const zrpc_server *server, zrpc_log_level level,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
server_log(
    const zrpc_server *server, zrpc_log_level level, const char *fmt, ...)
{
	char    line[512];
	va_list ap;

	if (server->config.log == NULL || level < server->config.log_level) {
		return;
	}
	va_start(ap, fmt);
	(void) vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	server->config.log(server->config.log_arg, level, line);
}

/* Runs the application's check that the thread holds none of its locks. */
static void
server_thread_check(const zrpc_server *server, const char *where)
{
	if (server->config.thread_check != NULL) {
		server->config.thread_check(
		    server->config.thread_check_arg, where);
	}
}

/* ---- creation and configuration ---- */

zrpc_status
zrpc_server_create(zrpc_server **out, const zrpc_server_config *config)
{
	zrpc_server       *server;
	pthread_condattr_t cattr;
	zrpc_status        status;
	int                rv;

	*out = NULL;
	if ((server = calloc(1, sizeof(*server))) == NULL) {
		return zrpc_status_make(ZRPC_INTERNAL, "out of memory");
	}
	if (config != NULL) {
		server->config = *config;
	}
	if (server->config.workers == 0) {
		long cores             = sysconf(_SC_NPROCESSORS_ONLN);
		server->config.workers = cores > 0 ? (unsigned) cores * 2 : 2;
	}
	if (server->config.max_inflight == 0) {
		server->config.max_inflight = DEFAULT_MAX_INFLIGHT;
	}
	if (server->config.max_message_bytes == 0) {
		server->config.max_message_bytes = DEFAULT_MAX_MESSAGE_BYTES;
	}
	server->slot_limit = (size_t) server->config.max_inflight + SLOT_SPARE;

	pthread_mutex_init(&server->slots_mutex, NULL);
	pthread_mutex_init(&server->drain_mutex, NULL);
	pthread_condattr_init(&cattr);
	pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC);
	pthread_cond_init(&server->drained, &cattr);
	pthread_condattr_destroy(&cattr);

	server->host.finish           = server_call_finish;
	server->host.submit           = server_call_submit;
	server->host.thread_check     = server->config.thread_check;
	server->host.thread_check_arg = server->config.thread_check_arg;
	atomic_init(&server->host.request_id_next, 0);
	atomic_init(&server->host.suspended, 0);
	server->host.auth = server->config.auth;
	atomic_init(&server->host.denied_unauthenticated, 0);
	atomic_init(&server->host.denied_permission, 0);
	/* Request ids: a random per-server prefix and a counter, so ids
	 * from two servers (or two runs) never collide. */
	if (getrandom(&server->host.request_id_prefix,
	        sizeof(server->host.request_id_prefix),
	        0) != (ssize_t) sizeof(server->host.request_id_prefix)) {
		server->host.request_id_prefix = zrpc_now_ns();
	}

	if (zrpc_registry_init(&server->registry) != 0 ||
	    (server->slots = calloc(
	         server->slot_limit, sizeof(*server->slots))) == NULL) {
		status = zrpc_status_make(ZRPC_INTERNAL, "out of memory");
		goto fail;
	}
	if ((rv = nng_rep0_open(&server->socket)) != 0) {
		status = zrpc_status_from_nng(rv, "open rep0 socket");
		goto fail;
	}
	rv = nng_socket_set_size(server->socket, NNG_OPT_RECVMAXSZ,
	    server->config.max_message_bytes >
	            SIZE_MAX - SERVER_NNG_HEADER_BYTES
	        ? SIZE_MAX
	        : server->config.max_message_bytes + SERVER_NNG_HEADER_BYTES);
	if (rv != 0) {
		status = zrpc_status_from_nng(rv, "set max message size");
		goto fail;
	}
	status = zrpc_builtin_register(server, &server->registry);
	if (!zrpc_status_is_ok(&status)) {
		goto fail;
	}
	*out = server;
	return zrpc_status_ok();

fail:
	zrpc_server_destroy(server);
	return status;
}

/*
 * What LISTENER on URL needs before it starts: the TLS configuration for
 * a TLS URL, the socket file's mode for an ipc:// one.
 */
static zrpc_status
server_listener_options(
    zrpc_server *server, nng_listener listener, const char *url)
{
	unsigned mode = server->config.ipc_permissions;
	int      rv;

	if (zrpc_tls_url(url)) {
		if (server->tls == NULL) {
			struct zrpc_tls_files files = {
				.cert_file = server->config.tls.cert_file,
				.key_file  = server->config.tls.key_file,
				.ca_file   = server->config.tls.client_ca_file,
			};
			zrpc_status status =
			    zrpc_tls_server_config(&server->tls, &files);
			if (!zrpc_status_is_ok(&status)) {
				return zrpc_status_make(status.code,
				    "cannot listen on %s: %s", url,
				    status.message);
			}
		}
		if ((rv = nng_listener_set_ptr(
		         listener, NNG_OPT_TLS_CONFIG, server->tls)) != 0) {
			return zrpc_status_from_nng(rv, "TLS configuration");
		}
	} else if (strncmp(url, "ipc://", 6) == 0 ||
	    strncmp(url, "unix://", 7) == 0) {
		if (mode == 0) {
			mode = SERVER_DEFAULT_IPC_PERMISSIONS;
		}
		if ((rv = nng_listener_set_int(listener,
		         NNG_OPT_IPC_PERMISSIONS, (int) (mode & 07777))) !=
		    0) {
			return zrpc_status_make(ZRPC_INVALID_ARGUMENT,
			    "cannot listen on %s: socket mode %o: %s", url,
			    mode, nng_strerror(rv));
		}
	}
	return zrpc_status_ok();
}

zrpc_status
zrpc_server_listen(zrpc_server *server, const char *url)
{
	struct server_listener *grown, *l;
	nng_listener            listener;
	zrpc_status             status;
	char                    resolved[512];
	const char             *host;
	size_t                  len = strlen(url);
	int                     rv, port;

	if ((rv = nng_listener_create(&listener, server->socket, url)) != 0) {
		return zrpc_status_from_nng(rv, url);
	}
	status = server_listener_options(server, listener, url);
	if (!zrpc_status_is_ok(&status)) {
		nng_listener_close(listener);
		return status;
	}
	if ((rv = nng_listener_start(listener, 0)) != 0) {
		nng_listener_close(listener);
		if (rv == NNG_EADDRINUSE) {
			return zrpc_status_make(ZRPC_UNAVAILABLE,
			    "cannot listen on %s: address already in use",
			    url);
		}
		return zrpc_status_from_nng(rv, url);
	}

	/* Resolve "tcp://host:0" (or "wss://host:0/path") to the port the
	 * kernel picked. */
	snprintf(resolved, sizeof(resolved), "%s", url);
	if ((host = strstr(url, "://")) != NULL) {
		host += 3;
		len = strcspn(host, "/") + (size_t) (host - url);
	}
	if (host != NULL && len > 2 && strncmp(url + len - 2, ":0", 2) == 0 &&
	    nng_listener_get_int(listener, NNG_OPT_TCP_BOUND_PORT, &port) ==
	        0) {
		snprintf(resolved, sizeof(resolved), "%.*s:%d%s",
		    (int) (len - 2), url, port, url + len);
	}

	grown = realloc(server->listeners,
	    (server->n_listeners + 1) * sizeof(*server->listeners));
	if (grown == NULL) {
		nng_listener_close(listener);
		return zrpc_status_make(ZRPC_INTERNAL, "out of memory");
	}
	server->listeners = grown;
	l                 = &server->listeners[server->n_listeners];
	if ((l->url = strdup(resolved)) == NULL) {
		nng_listener_close(listener);
		return zrpc_status_make(ZRPC_INTERNAL, "out of memory");
	}
	l->listener = listener;
	server->n_listeners++;
	return zrpc_status_ok();
}

const char *
zrpc_server_listener_url(const zrpc_server *server, size_t index)
{
	return index < server->n_listeners ? server->listeners[index].url
	                                   : NULL;
}

zrpc_status
zrpc_server_register(zrpc_server *server, const struct zrpc_service_desc *desc,
    const struct zrpc_method_binding *bindings, void *ctx)
{
	if (server->started) {
		return zrpc_status_make(ZRPC_FAILED_PRECONDITION,
		    "register %s: server already started", desc->name);
	}
	return zrpc_registry_add(&server->registry, desc, bindings, ctx);
}

zrpc_status
zrpc_server_add_interceptor(
    zrpc_server *server, const struct zrpc_interceptor *interceptor)
{
	struct zrpc_interceptor *grown;

	if (server->started) {
		return zrpc_status_make(ZRPC_FAILED_PRECONDITION,
		    "add interceptor: server already started");
	}
	grown = realloc(server->interceptors,
	    (server->n_interceptors + 1) * sizeof(*grown));
	if (grown == NULL) {
		return zrpc_status_make(ZRPC_INTERNAL, "out of memory");
	}
	server->interceptors                           = grown;
	server->interceptors[server->n_interceptors++] = *interceptor;
	return zrpc_status_ok();
}

void
zrpc_server_set_serving(zrpc_server *server, const char *service, bool serving)
{
	zrpc_registry_set_serving(&server->registry, service, serving);
}

unsigned
zrpc_server_inflight(const zrpc_server *server)
{
	return atomic_load(&server->active);
}

bool
zrpc_server_method_stats(
    const zrpc_server *server, const char *path, struct zrpc_method_stats *out)
{
	return zrpc_registry_method_stats(&server->registry, path, out);
}

void
zrpc_server_foreach_method_stats(const zrpc_server *server,
    void (*visit)(void *arg, const struct zrpc_method_stats *stats), void *arg)
{
	zrpc_registry_foreach_method_stats(&server->registry, visit, arg);
}

void
zrpc_server_auth_stats(const zrpc_server *server, struct zrpc_auth_stats *out)
{
	out->unauthenticated = atomic_load_explicit(
	    &server->host.denied_unauthenticated, memory_order_relaxed);
	out->permission_denied = atomic_load_explicit(
	    &server->host.denied_permission, memory_order_relaxed);
}

/* ---- slots ---- */

static void
server_slot_recv(struct server_slot *slot)
{
	slot->state = SLOT_RECV;
	atomic_fetch_add(&slot->server->idle_slots, 1);
	nng_ctx_recv(slot->ctx, slot->aio);
}

/* Adds up to WANT slots, each posting a receive. Called at start and from
 * callbacks when few slots are waiting. Locking: takes slots_mutex. */
static void
server_grow_slots(zrpc_server *server, size_t want)
{
	pthread_mutex_lock(&server->slots_mutex);
	for (size_t i = 0; i < want && !atomic_load(&server->closing) &&
	     server->n_slots < server->slot_limit;
	     i++) {
		struct server_slot *slot;

		if ((slot = calloc(1, sizeof(*slot))) == NULL) {
			break;
		}
		slot->server = server;
		zrpc_call_init(&slot->call, &server->host, &server->registry);
		if (nng_ctx_open(&slot->ctx, server->socket) != 0) {
			free(slot);
			break;
		}
		if (nng_aio_alloc(&slot->aio, server_slot_cb, slot) != 0) {
			nng_ctx_close(slot->ctx);
			free(slot);
			break;
		}
		server->slots[server->n_slots++] = slot;
		server_slot_recv(slot);
	}
	pthread_mutex_unlock(&server->slots_mutex);
}

/* Wakes zrpc_server_stop when the last call or reply is done. */
static void
server_drain_signal(zrpc_server *server)
{
	if (atomic_load(&server->draining) &&
	    atomic_load(&server->active) == 0 &&
	    atomic_load(&server->sending) == 0) {
		pthread_mutex_lock(&server->drain_mutex);
		pthread_cond_broadcast(&server->drained);
		pthread_mutex_unlock(&server->drain_mutex);
	}
}

/*
 * The call has its answer: it no longer counts against max_inflight, so
 * a caller that got the reply can call again at once, even before nng
 * reports the send complete.
 */
static void
server_slot_answered(struct server_slot *slot)
{
	if (slot->counted) {
		slot->counted = false;
		atomic_fetch_sub(&slot->server->active, 1);
		server_drain_signal(slot->server);
	}
}

/*
 * The reply has left (or could not be sent): the slot waits for the next
 * request unless the server is closing.
 */
static void
server_slot_done(struct server_slot *slot)
{
	zrpc_server *server = slot->server;

	if (slot->sending) {
		slot->sending = false;
		atomic_fetch_sub(&server->sending, 1);
		server_drain_signal(server);
	}
	if (!atomic_load(&server->closing)) {
		server_slot_recv(slot);
	}
}

/*
 * A suspended call's reply has been handed to nng (or dropped): stop
 * waits for that, so that it never closes a context under the send.
 */
static void
server_call_unsuspended(zrpc_server *server, bool was_suspended)
{
	if (was_suspended &&
	    atomic_fetch_sub(&server->host.suspended, 1) == 1 &&
	    atomic_load(&server->draining)) {
		pthread_mutex_lock(&server->drain_mutex);
		pthread_cond_broadcast(&server->drained);
		pthread_mutex_unlock(&server->drain_mutex);
	}
}

/* ---- the server as its calls' host ---- */

/*
 * Answers CALL (the host's finish): packs the Response for STATUS (and
 * REPLY when OK), records it, runs the after interceptors, resets the call
 * and hands the message to nng. Runs on whichever thread ends the call;
 * holds no lock.
 */
static void
server_call_finish(
    struct zrpc_call *call, zrpc_status status, const ProtobufCMessage *reply)
{
	struct server_slot *slot   = SERVER_SLOT_OF(call, call);
	zrpc_server        *server = slot->server;
	nng_msg            *msg;
	uint64_t            latency_ns;
	size_t              size;
	bool                was_suspended;

	if (zrpc_call_encode(call, &status, reply, &msg, &size) != 0) {
		server_log(server, ZRPC_LOG_ERROR,
		    "cannot allocate a %zu-byte reply; call dropped", size);
	}
	latency_ns = zrpc_now_ns() - call->start_ns;
	zrpc_registry_record(
	    &server->registry, call->method, status.code, latency_ns);
	was_suspended = call->suspended;
	for (size_t i = 0; i < server->n_interceptors; i++) {
		const struct zrpc_interceptor *ic = &server->interceptors[i];
		if (ic->after != NULL) {
			ic->after(ic->arg, call, &status, latency_ns);
		}
	}
	zrpc_call_reset(call);

	if (msg == NULL) {
		/* Nothing to send: the caller's deadline will tell it. */
		server_slot_answered(slot);
		server_slot_done(slot);
		server_call_unsuspended(server, was_suspended);
		return;
	}
	/* Counted as sending before it stops counting as in flight, so
	 * that a drain never sees both at zero in between. */
	slot->sending = true;
	atomic_fetch_add(&server->sending, 1);
	server_slot_answered(slot);
	slot->state = SLOT_SEND;
	server_thread_check(server, "nng send of a reply");
	nng_aio_set_msg(slot->aio, msg);
	nng_ctx_send(slot->ctx, slot->aio);
	server_call_unsuspended(server, was_suspended);
}

static void
server_slot_work(struct zrpc_worker_job *job)
{
	zrpc_call_work(&SERVER_SLOT_OF(job, job)->call);
}

/* Queues CALL to the worker pool (the host's submit). */
static void
server_call_submit(struct zrpc_call *call)
{
	struct server_slot *slot = SERVER_SLOT_OF(call, call);

	slot->job.run = server_slot_work;
	zrpc_worker_pool_submit(&slot->server->pool, &slot->job);
}

/* ---- receiving ---- */

/*
 * A request arrived in MSG: admit it, decode it, run the before
 * interceptors, then run the handler here or queue it for a worker. Every
 * path ends in exactly one server_call_finish.
 */
static void
server_slot_received(struct server_slot *slot, nng_msg *msg)
{
	zrpc_server      *server = slot->server;
	struct zrpc_call *call   = &slot->call;
	size_t            len    = nng_msg_len(msg);
	zrpc_status       status;
	unsigned          active;

	zrpc_call_arrived(call, nng_msg_get_pipe(msg), zrpc_now_ns());

	if (atomic_load(&server->draining)) {
		nng_msg_free(msg);
		server_call_finish(call,
		    zrpc_status_make(
		        ZRPC_UNAVAILABLE, "server is shutting down"),
		    NULL);
		return;
	}
	active        = atomic_fetch_add(&server->active, 1) + 1;
	slot->counted = true;
	if (active > server->config.max_inflight) {
		nng_msg_free(msg);
		server_call_finish(call,
		    zrpc_status_make(ZRPC_RESOURCE_EXHAUSTED,
		        "too many calls in flight (max %u)",
		        server->config.max_inflight),
		    NULL);
		return;
	}
	/* Stream transports enforce NNG_OPT_RECVMAXSZ (the limit plus the
	 * header) before reading; inproc hands messages over by reference.
	 * The envelope's own limit is checked here, for both. */
	if (len > server->config.max_message_bytes) {
		nng_msg_free(msg);
		server_call_finish(call,
		    zrpc_status_make(ZRPC_RESOURCE_EXHAUSTED,
		        "request of %zu bytes exceeds the %zu-byte limit", len,
		        server->config.max_message_bytes),
		    NULL);
		return;
	}

	status = zrpc_call_decode(call, nng_msg_body(msg), len);
	nng_msg_free(msg);
	if (!zrpc_status_is_ok(&status)) {
		server_call_finish(call, status, NULL);
		return;
	}
	for (size_t i = 0; i < server->n_interceptors; i++) {
		const struct zrpc_interceptor *ic = &server->interceptors[i];

		if (ic->before == NULL) {
			continue;
		}
		status = ic->before(ic->arg, call);
		if (!zrpc_status_is_ok(&status)) {
			server_call_finish(call, status, NULL);
			return;
		}
	}
	if (call->method->binding.blocking) {
		server_call_submit(call);
		return;
	}
	zrpc_call_run(call);
}

static void
server_slot_cb(void *arg)
{
	struct server_slot *slot   = arg;
	zrpc_server        *server = slot->server;
	int                 rv     = nng_aio_result(slot->aio);

	switch (slot->state) {
	case SLOT_RECV:
		atomic_fetch_sub(&server->idle_slots, 1);
		if (rv != 0) {
			if (rv != NNG_ECLOSED && rv != NNG_ECANCELED) {
				server_log(server, ZRPC_LOG_WARN,
				    "receive failed: %s", nng_strerror(rv));
				server_slot_done(slot);
			}
			return;
		}
		if (atomic_load(&server->idle_slots) < SLOT_LOW_WATER) {
			server_grow_slots(server, SLOT_GROW);
		}
		server_slot_received(slot, nng_aio_get_msg(slot->aio));
		return;
	case SLOT_SEND:
		if (rv != 0) {
			/* The caller is gone; the reply goes nowhere. */
			nng_msg_free(nng_aio_get_msg(slot->aio));
			nng_aio_set_msg(slot->aio, NULL);
		}
		server_slot_done(slot);
		return;
	}
}

/* ---- start, stop, destroy ---- */

zrpc_status
zrpc_server_start(zrpc_server *server)
{
	zrpc_status status;
	int         rv;

	if (server->started) {
		return zrpc_status_make(
		    ZRPC_FAILED_PRECONDITION, "server already started");
	}
	status = zrpc_registry_seal(&server->registry);
	if (!zrpc_status_is_ok(&status)) {
		return status;
	}
	if ((rv = zrpc_worker_pool_start(
	         &server->pool, server->config.workers)) != 0) {
		return zrpc_status_make(ZRPC_INTERNAL,
		    "cannot start %u workers: %s", server->config.workers,
		    strerror(rv));
	}
	server->started = true;
	server_grow_slots(server, SLOT_INITIAL);
	return zrpc_status_ok();
}

unsigned
zrpc_server_stop(zrpc_server *server, unsigned grace_ms)
{
	struct timespec until;
	unsigned        left;

	if (!server->started || server->stopped) {
		return 0;
	}
	atomic_store(&server->draining, true);
	zrpc_registry_stop(&server->registry);
	server_log(server, ZRPC_LOG_DEBUG,
	    "draining: %u calls in flight, grace %u ms",
	    atomic_load(&server->active), grace_ms);

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += grace_ms / 1000;
	until.tv_nsec += (long) (grace_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&server->drain_mutex);
	while (atomic_load(&server->active) > 0 ||
	    atomic_load(&server->sending) > 0) {
		if (pthread_cond_timedwait(&server->drained,
		        &server->drain_mutex, &until) == ETIMEDOUT) {
			break;
		}
	}
	pthread_mutex_unlock(&server->drain_mutex);
	left = atomic_load(&server->active);
	if (left > 0) {
		server_log(server, ZRPC_LOG_WARN,
		    "shutdown grace of %u ms ran out with %u calls in flight",
		    grace_ms, left);
	}

	pthread_mutex_lock(&server->slots_mutex);
	atomic_store(&server->closing, true);
	pthread_mutex_unlock(&server->slots_mutex);

	/*
	 * Tear down in an order nng 1.5.2 is safe with: first the workers
	 * (a handler still running finishes and sends its reply while the
	 * socket is open), then every slot's aio and context, and the socket
	 * last. Closing the socket under contexts still in use, or sending
	 * on a context the socket closed, crashes or hangs that version.
	 */
	zrpc_worker_pool_stop(&server->pool);
	/* Suspended calls are waited for like running handlers: whatever
	 * resumes them (a commit to disk, say) is about to. */
	pthread_mutex_lock(&server->drain_mutex);
	while (atomic_load(&server->host.suspended) > 0) {
		pthread_cond_wait(&server->drained, &server->drain_mutex);
	}
	pthread_mutex_unlock(&server->drain_mutex);
	for (size_t i = 0; i < server->n_slots; i++) {
		nng_aio_stop(server->slots[i]->aio);
		nng_ctx_close(server->slots[i]->ctx);
	}
	nng_close(server->socket);
	server->stopped = true;
	return left;
}

void
zrpc_server_destroy(zrpc_server *server)
{
	if (server == NULL) {
		return;
	}
	if (server->started) {
		zrpc_server_stop(server, 0);
	} else if (server->slots != NULL) {
		nng_close(server->socket);
	}
	for (size_t i = 0; i < server->n_slots; i++) {
		struct server_slot *slot = server->slots[i];
		nng_msg_free(nng_aio_get_msg(slot->aio));
		nng_aio_free(slot->aio);
		zrpc_call_finish(&slot->call);
		free(slot);
	}
	free(server->slots);
	for (size_t i = 0; i < server->n_listeners; i++) {
		free(server->listeners[i].url);
	}
	free(server->listeners);
	if (server->tls != NULL) {
		nng_tls_config_free(server->tls);
	}
	zrpc_registry_finish(&server->registry);
	free(server->interceptors);
	pthread_mutex_destroy(&server->slots_mutex);
	pthread_mutex_destroy(&server->drain_mutex);
	pthread_cond_destroy(&server->drained);
	free(server);
}
