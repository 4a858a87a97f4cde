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
 * (taken only when slots are added), the connection table's and the drain
 * condition's. No lock is held while a handler runs. Draining: a call
 * counts in `active` from its admission until its reply is handed to nng,
 * then in `sending` until nng is done with it; stop waits (up to the
 * grace) for both to reach zero.
 *
 * Bounds per peer. nng tells the server of each connection (pipe) through
 * pipe notifications; the server keeps a small table of them, keyed by
 * pipe id, under conns_mutex: how many of its requests a slot holds (from
 * receipt until the reply has left) and when it last delivered a complete
 * request. That gives the per-connection bound on requests held, the cap
 * on connections (refused at ADD_PRE, before the protocol sees them), the
 * ws Origin check (at ADD_PRE too, where the handshake's headers are
 * readable) and the idle timeout (a reaper thread closes connections that
 * hold nothing and have sent no complete request for idle_timeout_ms; as
 * nng reports only complete messages, that is also all that bounds a
 * half-sent message). A reply send has a timeout: a peer that does not
 * read loses its reply and its connection, so its stuck replies pin at
 * most twice max_inflight_per_conn slots, which the slot table has room
 * for beyond max_inflight + SLOT_SPARE. The bytes held for calls (request
 * messages of calls in flight, replies not yet sent) are one atomic
 * budget, of which one connection may hold a quarter (counted in its
 * entry), so that a peer sitting on its replies is refused before it has
 * filled the budget for everyone.
 *
 * Stop. nng 1.5.2 can hang in nng_close; the teardown after the grace
 * runs on a helper thread that stop waits for at most STOP_CLOSE_WAIT_MS,
 * past which the server is abandoned (leaked) rather than freed under nng.
 */
#include "zrpc/server.h"

#include <errno.h>
#include <inttypes.h>
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
#include "wire_check.h"
#include "workers.h"
#include "zrpc/clock.h"

#define SLOT_INITIAL 16  /* slots created at start */
#define SLOT_GROW 8      /* slots added at a time */
#define SLOT_LOW_WATER 4 /* add slots when fewer wait to receive */
#define SLOT_SPARE 8     /* slots beyond max_inflight, for rejections */

#define DEFAULT_MAX_INFLIGHT 1024
#define DEFAULT_MAX_MESSAGE_BYTES (4u * 1024 * 1024)
#define DEFAULT_SEND_TIMEOUT_MS 10000u
#define DEFAULT_MAX_CONNECTIONS 1024u
#define DEFAULT_IDLE_TIMEOUT_MS 300000u
#define DEFAULT_MAX_BUFFERED_BYTES ((size_t) 256 * 1024 * 1024)
#define SERVER_NODE_ID_MAX 64 /* bytes of zrpc_server_config.node_id */
#define DEFAULT_MAX_METADATA_ENTRIES 64u
#define DEFAULT_MAX_METADATA_BYTES ((size_t) 16 * 1024)

/* How long stop waits for the teardown after the grace (nng_close). */
#define STOP_CLOSE_WAIT_MS 2000
/* The reaper's tick bounds: a quarter of the idle timeout, within these. */
#define REAPER_TICK_MIN_MS 10u
#define REAPER_TICK_MAX_MS 1000u
/* Connections the reaper closes per pass (the rest on the next pass). */
#define REAPER_BATCH 64
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
	/* The request's connection (nng_pipe_id), counted in its entry's
	 * `held` while conn_held; 0 = none. */
	uint32_t conn_id;
	bool     conn_held;
	size_t   conn_bytes;    /* counted in its connection's `bytes` */
	size_t   request_bytes; /* in server->buffered, until answered */
	size_t   reply_bytes;   /* in server->buffered, until sent */
};

/* One connection (nng pipe) the server knows of. id 0 = a free entry. */
struct server_conn {
	uint32_t id;
	unsigned held;    /* requests received, reply not yet gone */
	size_t   bytes;   /* their request and reply bytes */
	uint64_t last_ns; /* connected, or last complete request */
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

	/* Connections: an open-addressing table (linear probing, a power
	 * of two at least twice max_connections). */
	pthread_mutex_t     conns_mutex;
	pthread_cond_t      reaper_wake; /* with conns_mutex */
	struct server_conn *conns;       /* guarded by: conns_mutex */
	size_t              conns_cap;
	size_t              n_conns;        /* guarded by: conns_mutex */
	bool                reaper_stop;    /* guarded by: conns_mutex */
	bool                reaper_running; /* guarded by: conns_mutex */
	pthread_t           reaper;
	char              **ws_origins;     /* copies of the config's */
	uint32_t            metadata_field; /* zrpc.v1.Request.metadata */

	atomic_size_t        buffered;
	atomic_uint_fast64_t n_connections_refused;
	atomic_uint_fast64_t n_idle_closed;
	atomic_uint_fast64_t n_origin_refused;
	atomic_uint_fast64_t n_flooding_closed;
	atomic_uint_fast64_t n_replies_dropped;
	atomic_uint_fast64_t n_conn_limited;
	atomic_uint_fast64_t n_buffer_limited;
	atomic_uint_fast64_t n_metadata_limited;

	/* stop's teardown helper (server_close_main) */
	pthread_mutex_t close_mutex;
	pthread_cond_t  close_cond;
	bool            close_done;      /* guarded by: close_mutex */
	bool            close_abandoned; /* guarded by: close_mutex */
	atomic_bool     abandoned;

	bool started;
	bool stopped;
};

static void server_slot_cb(void *arg);
static void server_call_finish(
    struct zrpc_call *call, zrpc_status status, const ProtobufCMessage *reply);
static void server_call_submit(struct zrpc_call *call);
static void server_pipe_event(nng_pipe pipe, nng_pipe_ev ev, void *arg);

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

/* Fills the per-peer bounds that CONFIG leaves at 0 with the defaults. */
static void
server_config_defaults(zrpc_server_config *config)
{
	if (config->send_timeout_ms == 0) {
		config->send_timeout_ms = DEFAULT_SEND_TIMEOUT_MS;
	}
	if (config->max_inflight_per_conn == 0 ||
	    config->max_inflight_per_conn > config->max_inflight) {
		config->max_inflight_per_conn = config->max_inflight;
	}
	if (config->max_connections == 0) {
		config->max_connections = DEFAULT_MAX_CONNECTIONS;
	}
	if (config->idle_timeout_ms == 0) {
		config->idle_timeout_ms = DEFAULT_IDLE_TIMEOUT_MS;
	}
	if (config->max_buffered_bytes == 0) {
		config->max_buffered_bytes = DEFAULT_MAX_BUFFERED_BYTES;
	}
	if (config->max_metadata_entries == 0) {
		config->max_metadata_entries = DEFAULT_MAX_METADATA_ENTRIES;
	}
	if (config->max_metadata_bytes == 0) {
		config->max_metadata_bytes = DEFAULT_MAX_METADATA_BYTES;
	}
}

/* True when ID is a node id zrpc_server_config accepts: 1 to
 * SERVER_NODE_ID_MAX printable ASCII bytes (a metadata value). */
static bool
server_node_id_valid(const char *id)
{
	size_t n = 0;

	for (; id[n] != '\0'; n++) {
		if (n == SERVER_NODE_ID_MAX || id[n] < 0x21 || id[n] > 0x7e) {
			return false;
		}
	}
	return n > 0;
}

/* Copies CONFIG's allowed ws origins into SERVER; -1 when out of memory. */
static int
server_copy_origins(zrpc_server *server, const zrpc_server_config *config)
{
	size_t n = server->config.n_ws_allowed_origins;

	if (n == 0) {
		return 0;
	}
	if ((server->ws_origins = calloc(n, sizeof(char *))) == NULL) {
		server->config.n_ws_allowed_origins = 0;
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if ((server->ws_origins[i] =
		            strdup(config->ws_allowed_origins[i])) == NULL) {
			return -1;
		}
	}
	return 0;
}

zrpc_status
zrpc_server_create(zrpc_server **out, const zrpc_server_config *config)
{
	zrpc_server       *server;
	pthread_condattr_t cattr;
	zrpc_status        status;
	int                rv;

	*out = NULL;
	if (config != NULL && config->node_id != NULL &&
	    !server_node_id_valid(config->node_id)) {
		return zrpc_status_make(ZRPC_INVALID_ARGUMENT,
		    "node_id must be 1 to %d printable ASCII bytes",
		    SERVER_NODE_ID_MAX);
	}
	if ((server = calloc(1, sizeof(*server))) == NULL) {
		return zrpc_status_make(ZRPC_INTERNAL, "out of memory");
	}
	if (config != NULL) {
		server->config = *config;
	}
	server->config.node_id = NULL; /* copied into the registry below */
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
	server_config_defaults(&server->config);
	/* Room for one connection's stuck replies (it is closed beyond
	 * twice its bound) on top of the slots that serve everyone. */
	server->slot_limit = (size_t) server->config.max_inflight +
	    SLOT_SPARE + 2 * (size_t) server->config.max_inflight_per_conn;
	/* The caller's strings are copied below. */
	server->config.ws_allowed_origins = NULL;
	server->config.n_ws_allowed_origins =
	    config != NULL ? config->n_ws_allowed_origins : 0;

	pthread_mutex_init(&server->slots_mutex, NULL);
	pthread_mutex_init(&server->drain_mutex, NULL);
	pthread_mutex_init(&server->conns_mutex, NULL);
	pthread_mutex_init(&server->close_mutex, NULL);
	pthread_condattr_init(&cattr);
	pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC);
	pthread_cond_init(&server->drained, &cattr);
	pthread_cond_init(&server->reaper_wake, &cattr);
	pthread_cond_init(&server->close_cond, &cattr);
	pthread_condattr_destroy(&cattr);
	server->metadata_field =
	    protobuf_c_message_descriptor_get_field_by_name(
	        &zrpc__v1__request__descriptor, "metadata")
	        ->id;

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
	/* Trace and span ids: the same, from a seed of their own. */
	if (getrandom(&server->host.trace_seed,
	        sizeof(server->host.trace_seed),
	        0) != (ssize_t) sizeof(server->host.trace_seed)) {
		server->host.trace_seed =
		    server->host.request_id_prefix ^ zrpc_now_ns();
	}
	atomic_init(&server->host.trace_next, 0);
	server->host.log       = server->config.log;
	server->host.log_arg   = server->config.log_arg;
	server->host.log_level = server->config.log_level;

	server->conns_cap = 16;
	while (
	    server->conns_cap < 2 * (size_t) server->config.max_connections) {
		server->conns_cap *= 2;
	}
	if (zrpc_registry_init(&server->registry) != 0 ||
	    (server->slots = calloc(
	         server->slot_limit, sizeof(*server->slots))) == NULL ||
	    (server->conns = calloc(
	         server->conns_cap, sizeof(*server->conns))) == NULL ||
	    server_copy_origins(server, config) != 0) {
		status = zrpc_status_make(ZRPC_INTERNAL, "out of memory");
		goto fail;
	}
	if (config != NULL && config->node_id != NULL &&
	    (server->registry.node_id = strdup(config->node_id)) == NULL) {
		status = zrpc_status_make(ZRPC_INTERNAL, "out of memory");
		goto fail;
	}
	if ((rv = nng_rep0_open(&server->socket)) != 0) {
		status = zrpc_status_from_nng(rv, "open rep0 socket");
		goto fail;
	}
	if ((rv = nng_pipe_notify(server->socket, NNG_PIPE_EV_ADD_PRE,
	         server_pipe_event, server)) != 0 ||
	    (rv = nng_pipe_notify(server->socket, NNG_PIPE_EV_REM_POST,
	         server_pipe_event, server)) != 0) {
		status = zrpc_status_from_nng(rv, "pipe notifications");
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

/* ---- connections ---- */

/*
 * Counts one more refusal in COUNTER; true when it should be logged: the
 * 1st, 2nd, 4th, 8th... so that a flood of them cannot flood the log.
 */
static bool
server_count_refusal(atomic_uint_fast64_t *counter)
{
	uint64_t n = atomic_fetch_add(counter, 1) + 1;

	return (n & (n - 1)) == 0;
}

/* The table index ID hashes to (Fibonacci hashing of the pipe id). */
static size_t
server_conn_home(const zrpc_server *server, uint32_t id)
{
	return (
	    size_t) ((id * UINT32_C(2654435769)) & (server->conns_cap - 1));
}

/* The entry of connection ID, or NULL. Locking: requires conns_mutex. */
static struct server_conn *
server_conn_find(zrpc_server *server, uint32_t id)
{
	size_t mask = server->conns_cap - 1;

	for (size_t i = server_conn_home(server, id), n = 0;
	     n < server->conns_cap; i = (i + 1) & mask, n++) {
		if (server->conns[i].id == id) {
			return &server->conns[i];
		}
		if (server->conns[i].id == 0) {
			return NULL;
		}
	}
	return NULL;
}

/*
 * Adds connection ID, unless max_connections are open: false then.
 * Locking: requires conns_mutex.
 */
static bool
server_conn_add(zrpc_server *server, uint32_t id, uint64_t now_ns)
{
	size_t mask = server->conns_cap - 1;
	size_t i    = server_conn_home(server, id);

	if (server->n_conns >= server->config.max_connections) {
		return false;
	}
	/* At most half full, so a free entry is always found. */
	while (server->conns[i].id != 0) {
		i = (i + 1) & mask;
	}
	server->conns[i] =
	    (struct server_conn) { .id = id, .held = 0, .last_ns = now_ns };
	server->n_conns++;
	return true;
}

/*
 * Removes connection ID (when present), shifting the entries after it
 * back so that no probe sequence is broken. Locking: requires conns_mutex.
 */
static void
server_conn_remove(zrpc_server *server, uint32_t id)
{
	struct server_conn *conn = server_conn_find(server, id);
	size_t              mask = server->conns_cap - 1;
	size_t              hole, i;

	if (conn == NULL) {
		return;
	}
	hole = (size_t) (conn - server->conns);
	for (i = (hole + 1) & mask; server->conns[i].id != 0;
	     i = (i + 1) & mask) {
		size_t home = server_conn_home(server, server->conns[i].id);

		/* Entry i may move to the hole when its home is not in the
		 * cyclic range (hole, i]. */
		if (((i - home) & mask) >= ((i - hole) & mask)) {
			server->conns[hole] = server->conns[i];
			hole                = i;
		}
	}
	server->conns[hole].id = 0;
	server->n_conns--;
}

/*
 * True when PIPE may stay by the ws Origin rule: not a websocket, or a
 * handshake without Origin, or an allowed origin.
 */
static bool
server_origin_allowed(zrpc_server *server, nng_pipe pipe)
{
	char *origin = NULL;
	bool  allowed;

	/* nng 1.5.2's ws transport answers this for a ws or wss pipe (the
	 * handshake's header; ENOENT when absent); any other transport
	 * answers ENOTSUP. */
	if (nng_pipe_get_string(
	        pipe, NNG_OPT_WS_REQUEST_HEADER "Origin", &origin) != 0) {
		return true;
	}
	allowed = false;
	for (size_t i = 0; i < server->config.n_ws_allowed_origins; i++) {
		if (strcmp(origin, server->ws_origins[i]) == 0) {
			allowed = true;
			break;
		}
	}
	if (!allowed && server_count_refusal(&server->n_origin_refused)) {
		server_log(server, ZRPC_LOG_WARN,
		    "ws connection from origin '%.200s' refused (not allowed; "
		    "%" PRIu64 " so far)",
		    origin, (uint64_t) atomic_load(&server->n_origin_refused));
	}
	nng_strfree(origin);
	return allowed;
}

/*
 * nng's pipe notifications: ADD_PRE checks the ws Origin and the cap on
 * connections, then tracks the pipe; REM_POST forgets it. Runs on nng's
 * threads (also inside nng_close). Locking: takes conns_mutex.
 */
static void
server_pipe_event(nng_pipe pipe, nng_pipe_ev ev, void *arg)
{
	zrpc_server *server = arg;
	uint32_t     id     = (uint32_t) nng_pipe_id(pipe);
	bool         added;

	switch (ev) {
	case NNG_PIPE_EV_ADD_PRE:
		if (!server_origin_allowed(server, pipe)) {
			nng_pipe_close(pipe);
			return;
		}
		pthread_mutex_lock(&server->conns_mutex);
		added = server_conn_add(server, id, zrpc_now_ns());
		pthread_mutex_unlock(&server->conns_mutex);
		if (!added) {
			if (server_count_refusal(
			        &server->n_connections_refused)) {
				server_log(server, ZRPC_LOG_WARN,
				    "connection refused: %u connections open "
				    "(max; %" PRIu64 " refused so far)",
				    server->config.max_connections,
				    (uint64_t) atomic_load(
				        &server->n_connections_refused));
			}
			nng_pipe_close(pipe);
		}
		return;
	case NNG_PIPE_EV_REM_POST:
		pthread_mutex_lock(&server->conns_mutex);
		server_conn_remove(server, id);
		pthread_mutex_unlock(&server->conns_mutex);
		return;
	default:
		return;
	}
}

/* The share of max_buffered_bytes one connection may hold. */
#define SERVER_CONN_BYTES_SHARE 4

enum server_admit {
	ADMIT_OK,
	ADMIT_CONN_LIMIT, /* beyond max_inflight_per_conn */
	ADMIT_CONN_BYTES, /* beyond its share of max_buffered_bytes */
	ADMIT_FLOODING,   /* beyond twice that: close the connection */
};

/*
 * A request from SLOT's connection arrived: counts it held by the
 * connection and notes the time. Connections the table does not know
 * (closed meanwhile) are let through. Locking: takes conns_mutex.
 */
static enum server_admit
server_conn_admit(
    struct server_slot *slot, nng_pipe pipe, uint64_t now_ns, size_t len)
{
	zrpc_server        *server = slot->server;
	unsigned            bound  = server->config.max_inflight_per_conn;
	struct server_conn *conn;
	enum server_admit   admit = ADMIT_OK;

	slot->conn_id = (uint32_t) nng_pipe_id(pipe);
	pthread_mutex_lock(&server->conns_mutex);
	if ((conn = server_conn_find(server, slot->conn_id)) != NULL) {
		conn->held++;
		conn->last_ns   = now_ns;
		slot->conn_held = true;
		if (conn->held > 2 * bound) {
			admit = ADMIT_FLOODING;
		} else if (conn->held > bound) {
			admit = ADMIT_CONN_LIMIT;
		} else if (conn->bytes + len >
		    server->config.max_buffered_bytes /
		        SERVER_CONN_BYTES_SHARE) {
			admit = ADMIT_CONN_BYTES;
		} else {
			conn->bytes += len;
			slot->conn_bytes = len;
		}
	}
	pthread_mutex_unlock(&server->conns_mutex);
	return admit;
}

/* SLOT's request no longer holds anything. Locking: takes conns_mutex. */
static void
server_conn_release(struct server_slot *slot)
{
	zrpc_server        *server = slot->server;
	struct server_conn *conn;

	if (!slot->conn_held) {
		return;
	}
	slot->conn_held = false;
	pthread_mutex_lock(&server->conns_mutex);
	if ((conn = server_conn_find(server, slot->conn_id)) != NULL &&
	    conn->held > 0) {
		conn->held--;
		conn->bytes -= slot->conn_bytes < conn->bytes
		    ? slot->conn_bytes
		    : conn->bytes;
		/* Idle time counts from the last reply too. */
		conn->last_ns = zrpc_now_ns();
	}
	pthread_mutex_unlock(&server->conns_mutex);
	slot->conn_bytes = 0;
}

/*
 * SLOT's reply of LEN bytes waits to be sent: its connection holds it.
 * Locking: takes conns_mutex.
 */
static void
server_conn_charge(struct server_slot *slot, size_t len)
{
	zrpc_server        *server = slot->server;
	struct server_conn *conn;

	if (!slot->conn_held) {
		return;
	}
	pthread_mutex_lock(&server->conns_mutex);
	if ((conn = server_conn_find(server, slot->conn_id)) != NULL) {
		conn->bytes += len;
		slot->conn_bytes += len;
	}
	pthread_mutex_unlock(&server->conns_mutex);
}

/*
 * The reaper: every tick, closes the connections that hold nothing and
 * have delivered no complete request for idle_timeout_ms.
 */
static void *
server_reaper_main(void *arg)
{
	zrpc_server *server = arg;
	uint64_t     idle_ns =
	    (uint64_t) server->config.idle_timeout_ms * 1000000u;
	unsigned        tick_ms = server->config.idle_timeout_ms / 4;
	uint32_t        batch[REAPER_BATCH];
	struct timespec until;

	if (tick_ms < REAPER_TICK_MIN_MS) {
		tick_ms = REAPER_TICK_MIN_MS;
	}
	if (tick_ms > REAPER_TICK_MAX_MS) {
		tick_ms = REAPER_TICK_MAX_MS;
	}
	pthread_mutex_lock(&server->conns_mutex);
	while (!server->reaper_stop) {
		uint64_t now = zrpc_now_ns();
		size_t   n   = 0;

		for (size_t i = 0; i < server->conns_cap && n < REAPER_BATCH;
		     i++) {
			struct server_conn *conn = &server->conns[i];

			if (conn->id != 0 && conn->held == 0 &&
			    now - conn->last_ns >= idle_ns) {
				/* Not again before the pipe is gone. */
				conn->last_ns = now;
				batch[n++]    = conn->id;
			}
		}
		if (n > 0) {
			pthread_mutex_unlock(&server->conns_mutex);
			for (size_t i = 0; i < n; i++) {
				nng_pipe pipe = NNG_PIPE_INITIALIZER;

				pipe.id = batch[i];
				nng_pipe_close(pipe);
			}
			atomic_fetch_add(&server->n_idle_closed, n);
			server_log(server, ZRPC_LOG_DEBUG,
			    "closed %zu idle connections", n);
			pthread_mutex_lock(&server->conns_mutex);
			if (n == REAPER_BATCH) {
				continue;
			}
		}
		until = zrpc_timespec_after_ms(
		    CLOCK_MONOTONIC, (uint32_t) tick_ms);
		(void) pthread_cond_timedwait(
		    &server->reaper_wake, &server->conns_mutex, &until);
	}
	pthread_mutex_unlock(&server->conns_mutex);
	return NULL;
}

void
zrpc_server_stats(const zrpc_server *server, struct zrpc_server_stats *out)
{
	zrpc_server *mut = (zrpc_server *) server;

	memset(out, 0, sizeof(*out));
	out->connections_refused = atomic_load(&server->n_connections_refused);
	out->connections_idle_closed = atomic_load(&server->n_idle_closed);
	out->connections_origin_refused =
	    atomic_load(&server->n_origin_refused);
	out->connections_flooding_closed =
	    atomic_load(&server->n_flooding_closed);
	out->replies_dropped         = atomic_load(&server->n_replies_dropped);
	out->requests_conn_limited   = atomic_load(&server->n_conn_limited);
	out->requests_buffer_limited = atomic_load(&server->n_buffer_limited);
	out->requests_metadata_limited =
	    atomic_load(&server->n_metadata_limited);
	out->buffered_bytes  = atomic_load(&server->buffered);
	out->close_abandoned = atomic_load(&server->abandoned);
	if (!out->close_abandoned) {
		pthread_mutex_lock(&mut->conns_mutex);
		out->connections = server->n_conns;
		pthread_mutex_unlock(&mut->conns_mutex);
	}
}

/* ---- slots ---- */

static void
server_slot_recv(struct server_slot *slot)
{
	slot->state = SLOT_RECV;
	atomic_fetch_add(&slot->server->idle_slots, 1);
	nng_aio_set_timeout(slot->aio, NNG_DURATION_INFINITE);
	nng_ctx_recv(slot->ctx, slot->aio);
}

/* Adds up to WANT slots, each posting a receive. Called at start and from
 * callbacks when few slots are waiting. Locking: takes slots_mutex. */
static void
server_grow_slots(zrpc_server *server, size_t want)
{
	pthread_mutex_lock(&server->slots_mutex);
	/* Slots whose reply is stuck in a send do not serve anyone: the
	 * bound on serving slots leaves them out. */
	for (size_t i = 0; i < want && !atomic_load(&server->closing) &&
	     server->n_slots < server->slot_limit &&
	     server->n_slots - atomic_load(&server->sending) <
	         (size_t) server->config.max_inflight + SLOT_SPARE;
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

	if (slot->reply_bytes > 0) {
		atomic_fetch_sub(&server->buffered, slot->reply_bytes);
		slot->reply_bytes = 0;
	}
	server_conn_release(slot);
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
	if (call->queued) {
		zrpc_registry_record_queue(call->method, call->queue_ns);
	}
	was_suspended = call->suspended;
	for (size_t i = 0; i < server->n_interceptors; i++) {
		const struct zrpc_interceptor *ic = &server->interceptors[i];
		if (ic->after != NULL) {
			ic->after(ic->arg, call, &status, latency_ns);
		}
	}
	zrpc_call_reset(call);
	if (slot->request_bytes > 0) {
		atomic_fetch_sub(&server->buffered, slot->request_bytes);
		slot->request_bytes = 0;
	}

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
	slot->state       = SLOT_SEND;
	slot->reply_bytes = nng_msg_len(msg);
	atomic_fetch_add(&server->buffered, slot->reply_bytes);
	server_conn_charge(slot, slot->reply_bytes);
	server_thread_check(server, "nng send of a reply");
	nng_aio_set_msg(slot->aio, msg);
	/* A peer that does not read must not hold the slot for long. */
	nng_aio_set_timeout(slot->aio,
	    server->config.send_timeout_ms == ZRPC_SERVER_NO_TIMEOUT
	        ? NNG_DURATION_INFINITE
	        : (nng_duration) server->config.send_timeout_ms);
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
	nng_pipe          pipe   = nng_msg_get_pipe(msg);
	uint64_t          now    = zrpc_now_ns();
	zrpc_status       status;
	unsigned          active;
	size_t            n_meta, meta_bytes;

	zrpc_call_arrived(call, pipe, now);

	switch (server_conn_admit(slot, pipe, now, len)) {
	case ADMIT_OK:
		break;
	case ADMIT_CONN_BYTES:
		/* Its replies pile up unread (or its requests are huge):
		 * it, not everyone, is refused. */
		atomic_fetch_add(&server->n_buffer_limited, 1);
		nng_msg_free(msg);
		server_call_finish(call,
		    zrpc_status_make(ZRPC_RESOURCE_EXHAUSTED,
		        "this connection holds its share of the server's "
		        "buffers (%zu bytes)",
		        server->config.max_buffered_bytes /
		            SERVER_CONN_BYTES_SHARE),
		    NULL);
		return;
	case ADMIT_CONN_LIMIT:
		atomic_fetch_add(&server->n_conn_limited, 1);
		nng_msg_free(msg);
		server_call_finish(call,
		    zrpc_status_make(ZRPC_RESOURCE_EXHAUSTED,
		        "too many calls in flight on this connection (max %u)",
		        server->config.max_inflight_per_conn),
		    NULL);
		return;
	case ADMIT_FLOODING:
		/* It sends on while reading none of its replies: no reply
		 * (it would only queue behind the others), and it goes. */
		if (server_count_refusal(&server->n_flooding_closed)) {
			server_log(server, ZRPC_LOG_WARN,
			    "closing a connection that holds %u requests and "
			    "reads no replies",
			    2 * server->config.max_inflight_per_conn);
		}
		nng_msg_free(msg);
		nng_pipe_close(pipe);
		zrpc_call_reset(call);
		server_slot_done(slot);
		return;
	}

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
	/* The request's bytes are held (as the message, then decoded in
	 * the arena) until it is answered. */
	if (atomic_fetch_add(&server->buffered, len) + len >
	    server->config.max_buffered_bytes) {
		atomic_fetch_sub(&server->buffered, len);
		atomic_fetch_add(&server->n_buffer_limited, 1);
		nng_msg_free(msg);
		server_call_finish(call,
		    zrpc_status_make(ZRPC_RESOURCE_EXHAUSTED,
		        "server buffers full (%zu bytes held for calls)",
		        server->config.max_buffered_bytes),
		    NULL);
		return;
	}
	slot->request_bytes = len;
	/* Metadata caps on the wire bytes, before the arena decodes them
	 * (malformed bytes are left to the decoder to report). */
	if (zrpc_wire_count_field(nng_msg_body(msg), len,
	        server->metadata_field, server->config.max_metadata_entries,
	        server->config.max_metadata_bytes, &n_meta, &meta_bytes) &&
	    (n_meta > server->config.max_metadata_entries ||
	        meta_bytes > server->config.max_metadata_bytes)) {
		atomic_fetch_add(&server->n_metadata_limited, 1);
		nng_msg_free(msg);
		server_call_finish(call,
		    zrpc_status_make(ZRPC_RESOURCE_EXHAUSTED,
		        "request metadata beyond %u entries or %zu bytes",
		        server->config.max_metadata_entries,
		        server->config.max_metadata_bytes),
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
	nng_msg            *msg;

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
		msg = nng_aio_get_msg(slot->aio);
		/* Ours now: a message left on the aio is one nng did not
		 * take (see zrpc_server_stop). */
		nng_aio_set_msg(slot->aio, NULL);
		server_slot_received(slot, msg);
		return;
	case SLOT_SEND:
		if (rv != 0) {
			/* nng did not take the reply: it is ours to free. */
			nng_msg_free(nng_aio_get_msg(slot->aio));
			nng_aio_set_msg(slot->aio, NULL);
		}
		if (rv == NNG_ETIMEDOUT) {
			/* The peer reads nothing: everything it has queued
			 * would wait as long, so it goes. */
			nng_pipe pipe = NNG_PIPE_INITIALIZER;

			pipe.id = slot->conn_id;
			if (server_count_refusal(&server->n_replies_dropped)) {
				server_log(server, ZRPC_LOG_WARN,
				    "reply not sent within %u ms; dropped, "
				    "and the connection closed (%" PRIu64
				    " so far)",
				    server->config.send_timeout_ms,
				    (uint64_t) atomic_load(
				        &server->n_replies_dropped));
			}
			nng_pipe_close(pipe);
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
	if (server->config.idle_timeout_ms != ZRPC_SERVER_NO_TIMEOUT) {
		if ((rv = pthread_create(&server->reaper, NULL,
		         server_reaper_main, server)) != 0) {
			zrpc_worker_pool_stop(&server->pool);
			return zrpc_status_make(ZRPC_INTERNAL,
			    "cannot start the idle reaper: %s", strerror(rv));
		}
		server->reaper_running = true;
	}
	server->started = true;
	server_grow_slots(server, SLOT_INITIAL);
	return zrpc_status_ok();
}

/*
 * The teardown after the grace, in an order nng 1.5.2 is safe with: first
 * the workers (a handler still running finishes and sends its reply while
 * the socket is open), then every slot's aio and context, and the socket
 * last. Closing the socket under contexts still in use, or sending on a
 * context the socket closed, crashes or hangs that version. Any of it can
 * hang (a handler, nng_close), so it runs here, on a helper thread that
 * zrpc_server_stop waits for with a bound.
 */
/* Waits until no call is suspended. Locking: takes drain_mutex. */
static void
server_wait_suspended(zrpc_server *server)
{
	pthread_mutex_lock(&server->drain_mutex);
	while (atomic_load(&server->host.suspended) > 0) {
		pthread_cond_wait(&server->drained, &server->drain_mutex);
	}
	pthread_mutex_unlock(&server->drain_mutex);
}

static void
server_teardown(zrpc_server *server)
{
	unsigned suspended;

	zrpc_worker_pool_stop(&server->pool);
	/* Suspended calls are waited for like running handlers: whatever
	 * resumes them (a commit to disk, say) is about to, and their
	 * replies are sent. */
	server_wait_suspended(server);
	/* Stopping an aio waits for its callback, so a handler still
	 * running on nng's thread has returned after this. */
	server_log(server, ZRPC_LOG_DEBUG, "stop: stopping %zu contexts",
	    server->n_slots);
	for (size_t i = 0; i < server->n_slots; i++) {
		nng_aio_stop(server->slots[i]->aio);
	}
	/*
	 * Such a handler may have suspended its call after the wait above:
	 * wait again, so that nothing resumes a call of a server that is
	 * gone. Its reply goes to nng_ctx_send on a stopped aio, which
	 * neither sends it nor calls back: nng leaves the message on the
	 * aio, and it is freed below. (Before, stop returned with such a
	 * call suspended; the store's flusher resumed it while the server
	 * was being freed, and its reply leaked.)
	 */
	if ((suspended = atomic_load(&server->host.suspended)) > 0) {
		server_log(server, ZRPC_LOG_DEBUG,
		    "stop: waiting for %u calls suspended late", suspended);
	}
	server_wait_suspended(server);
	for (size_t i = 0; i < server->n_slots; i++) {
		nng_aio *aio = server->slots[i]->aio;

		nng_msg_free(nng_aio_get_msg(aio));
		nng_aio_set_msg(aio, NULL);
		nng_ctx_close(server->slots[i]->ctx);
	}
	nng_close(server->socket);
}

static void *
server_close_main(void *arg)
{
	zrpc_server *server = arg;

	server_teardown(server);
	pthread_mutex_lock(&server->close_mutex);
	server->close_done = true;
	pthread_cond_broadcast(&server->close_cond);
	/* Nothing of the server is touched after this unlock: a destroy
	 * waiting for close_done may free it at once. */
	pthread_mutex_unlock(&server->close_mutex);
	return NULL;
}

/*
 * Waits at most WAIT_MS for the teardown helper to finish; true when it
 * has. Locking: takes close_mutex.
 */
static bool
server_close_wait(zrpc_server *server, int wait_ms)
{
	struct timespec until;
	bool            done;

	until = zrpc_timespec_after_ms(CLOCK_MONOTONIC, (uint32_t) wait_ms);
	pthread_mutex_lock(&server->close_mutex);
	while (!server->close_done) {
		if (pthread_cond_timedwait(&server->close_cond,
		        &server->close_mutex, &until) == ETIMEDOUT) {
			break;
		}
	}
	done = server->close_done;
	pthread_mutex_unlock(&server->close_mutex);
	return done;
}

/* Stops and joins the idle reaper. Locking: takes conns_mutex. */
static void
server_reaper_stop(zrpc_server *server)
{
	bool running;

	pthread_mutex_lock(&server->conns_mutex);
	running                = server->reaper_running;
	server->reaper_stop    = true;
	server->reaper_running = false;
	pthread_cond_signal(&server->reaper_wake);
	pthread_mutex_unlock(&server->conns_mutex);
	if (running) {
		pthread_join(server->reaper, NULL);
	}
}

unsigned
zrpc_server_stop(zrpc_server *server, unsigned grace_ms)
{
	struct timespec until;
	unsigned        left;
	pthread_t       closer;
	bool            done;

	if (!server->started || server->stopped) {
		return 0;
	}
	atomic_store(&server->draining, true);
	zrpc_registry_stop(&server->registry);
	server_log(server, ZRPC_LOG_DEBUG,
	    "draining: %u calls in flight, grace %u ms",
	    atomic_load(&server->active), grace_ms);

	until = zrpc_timespec_after_ms(CLOCK_MONOTONIC, (uint32_t) grace_ms);
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
	server_reaper_stop(server);
	server->stopped = true;

	if (pthread_create(&closer, NULL, server_close_main, server) != 0) {
		server_teardown(server);
		return left;
	}
	done = server_close_wait(server, STOP_CLOSE_WAIT_MS);
	pthread_mutex_lock(&server->close_mutex);
	server->close_abandoned = !done;
	pthread_mutex_unlock(&server->close_mutex);
	if (done) {
		pthread_join(closer, NULL);
		return left;
	}
	/*
	 * nng (or a handler) did not let go within the bound. The helper
	 * thread, nng's threads and the pipe notifications may still use
	 * the server, so it is left behind on purpose: destroy frees
	 * nothing of it. The process is about to exit in practice.
	 */
	pthread_detach(closer);
	atomic_store(&server->abandoned, true);
	server_log(server, ZRPC_LOG_ERROR,
	    "closing the socket did not finish within %d ms; left behind",
	    STOP_CLOSE_WAIT_MS);
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
	if (atomic_load(&server->abandoned) &&
	    !server_close_wait(server, STOP_CLOSE_WAIT_MS)) {
		return; /* see zrpc_server_stop: deliberately leaked */
	}
	for (size_t i = 0; i < server->n_slots; i++) {
		struct server_slot *slot = server->slots[i];
		nng_msg_free(nng_aio_get_msg(slot->aio));
		nng_aio_free(slot->aio);
		zrpc_call_finish(&slot->call);
		free(slot);
	}
	free(server->slots);
	free(server->conns);
	for (size_t i = 0; i < server->n_listeners; i++) {
		free(server->listeners[i].url);
	}
	free(server->listeners);
	if (server->tls != NULL) {
		nng_tls_config_free(server->tls);
	}
	if (server->ws_origins != NULL) {
		for (size_t i = 0; i < server->config.n_ws_allowed_origins;
		     i++) {
			free(server->ws_origins[i]);
		}
		free(server->ws_origins);
	}
	zrpc_registry_finish(&server->registry);
	free(server->interceptors);
	pthread_mutex_destroy(&server->slots_mutex);
	pthread_mutex_destroy(&server->drain_mutex);
	pthread_mutex_destroy(&server->conns_mutex);
	pthread_mutex_destroy(&server->close_mutex);
	pthread_cond_destroy(&server->drained);
	pthread_cond_destroy(&server->reaper_wake);
	pthread_cond_destroy(&server->close_cond);
	free(server);
}
