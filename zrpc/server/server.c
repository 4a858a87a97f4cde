/*
 * zrpc server runtime.
 *
 * One rep0 socket serves every listener. A call is served by a *slot*: an
 * nng context, an aio and an arena that live as long as the server. A slot
 * loops RECV -> (handler) -> SEND -> RECV. Slots are created on demand, a
 * few at a time, whenever fewer than SLOT_LOW_WATER are waiting to receive,
 * up to max_inflight + SLOT_SPARE; the spare slots exist so that calls
 * beyond max_inflight can still be answered RESOURCE_EXHAUSTED instead of
 * waiting silently in nng's queues.
 *
 * A handler that never blocks runs on nng's aio completion thread, right in
 * the slot's callback: no hand-off, which is the cheapest path. A method
 * declared blocking is queued to the worker pool. Either way the reply is
 * packed into a fresh nng message and the arena is reset before sending.
 *
 * Counters (per-method calls by code and latency histogram, calls in
 * flight) are C11 atomics; the only mutexes are the worker queue's, the
 * slot table's (taken only when slots are added) and the drain condition's.
 * No lock is held while a handler runs.
 */
#include "zrpc/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/supplemental/util/platform.h>

#include "arena.h"
#include "builtin.h"
#include "workers.h"
#include "zrpc/clock.h"
#include "zrpc/v1/envelope.pb-c.h"

#define SLOT_INITIAL 16  /* slots created at start */
#define SLOT_GROW 8      /* slots added at a time */
#define SLOT_LOW_WATER 4 /* add slots when fewer wait to receive */
#define SLOT_SPARE 8     /* slots beyond max_inflight, for rejections */
#define REPLY_METADATA_MAX 8
#define REQUEST_ID_MAX 128 /* longer x-request-id values are replaced */

#define DEFAULT_MAX_INFLIGHT 1024
#define DEFAULT_MAX_MESSAGE_BYTES (4u * 1024 * 1024)

/*
 * Latency histograms: 5 bits of precision keep a bucket within 3.2 % of
 * its values, in (45 - 5) * 32 buckets of 8 bytes (10 KiB) per method.
 */
#define LATENCY_PRECISION 5

struct server_method_stats {
	atomic_uint_fast64_t   calls_by_code[ZRPC_CODE_COUNT];
	struct zrpc_histogram *latency_ns; /* owned; sum = latency_ns_sum */
	atomic_uint_fast64_t   handler_runs;
};

struct server_service;

struct server_method {
	const struct zrpc_method  *desc;
	struct zrpc_method_binding binding;
	struct server_service     *service;
	struct server_method_stats stats;
};

struct server_service {
	const struct zrpc_service_desc *desc;
	void                           *ctx;
	atomic_bool                     serving;
	struct server_method           *methods; /* desc->n_methods */
};

struct server_listener {
	nng_listener listener;
	char        *url; /* with an ephemeral port resolved */
};

enum call_state {
	CALL_RECV, /* waiting for a request */
	CALL_SEND, /* reply handed to nng */
};

struct zrpc_call {
	struct worker_job job; /* queue node for blocking methods */
	zrpc_server      *server;
	nng_ctx           ctx;
	nng_aio          *aio;
	enum call_state   state;
	struct arena      arena;

	/* The call being served; reset after every reply. */
	nng_pipe                          pipe;
	uint64_t                          start_ns;
	uint64_t                          deadline_ns; /* 0 = none */
	Zrpc__V1__Request                *request;
	const struct server_method       *method; /* NULL: matched no method */
	ProtobufCMessage                 *input;
	const char                       *request_id;
	Zrpc__V1__Response__MetadataEntry reply_metadata[REPLY_METADATA_MAX];
	size_t                            n_reply_metadata;
	bool                              counted; /* in server->active */
	bool                              sending; /* in server->sending */
	char                              peer[160];

	/* A suspended call (zrpc_call_suspend): the handler's return and
	 * zrpc_call_resume each drop one of two references; whichever comes
	 * second sends REPLY with RESUMED. */
	bool              suspended;
	atomic_int        suspend_refs;
	zrpc_status       resumed;
	ProtobufCMessage *reply;

	/* Set by zrpc_call_continue_blocking: what a worker runs next. */
	zrpc_continue_fn next;
};

struct zrpc_server {
	zrpc_server_config config;
	nng_socket         socket;

	struct server_listener *listeners;
	size_t                  n_listeners;

	struct server_service **services;
	size_t                  n_services;

	/* Dispatch: open addressing on the method path, built at start. */
	struct server_method     **table;
	size_t                     table_mask;
	struct server_method_stats unmatched;

	struct zrpc_interceptor *interceptors;
	size_t                   n_interceptors;

	struct worker_pool pool;

	pthread_mutex_t    slots_mutex;
	struct zrpc_call **slots;   /* guarded by: slots_mutex */
	size_t             n_slots; /* guarded by: slots_mutex */
	size_t             slot_limit;
	atomic_bool        closing; /* written under slots_mutex */
	atomic_int         idle_slots;

	atomic_uint     active;    /* calls admitted and not yet answered */
	atomic_uint     sending;   /* replies handed to nng, not yet sent */
	atomic_uint     suspended; /* suspended calls not yet finished */
	atomic_bool     draining;
	pthread_mutex_t drain_mutex;
	pthread_cond_t  drained;

	uint64_t             request_id_prefix;
	atomic_uint_fast64_t request_id_next;

	bool started;
	bool stopped;
};

static void server_call_cb(void *arg);

static int
server_stats_init(struct server_method_stats *stats)
{
	for (int c = 0; c < ZRPC_CODE_COUNT; c++) {
		atomic_init(&stats->calls_by_code[c], 0);
	}
	atomic_init(&stats->handler_runs, 0);
	return zrpc_histogram_create(&stats->latency_ns, LATENCY_PRECISION);
}

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

/* FNV-1a: short keys, no allocation, good enough spread for a few
 * hundred method names. */
static uint64_t
server_hash(const char *s)
{
	uint64_t h = 1469598103934665603u;

	while (*s != '\0') {
		h ^= (unsigned char) *s++;
		h *= 1099511628211u;
	}
	return h;
}

static struct server_method *
server_find_method(const zrpc_server *server, const char *path)
{
	size_t i;

	if (server->table == NULL) {
		return NULL;
	}
	i = (size_t) server_hash(path) & server->table_mask;
	while (server->table[i] != NULL) {
		if (strcmp(server->table[i]->desc->path, path) == 0) {
			return server->table[i];
		}
		i = (i + 1) & server->table_mask;
	}
	return NULL;
}

static struct server_service *
server_find_service(const zrpc_server *server, const char *name)
{
	for (size_t i = 0; i < server->n_services; i++) {
		if (strcmp(server->services[i]->desc->name, name) == 0) {
			return server->services[i];
		}
	}
	return NULL;
}

/* Builds the dispatch table: a power of two at least twice the method
 * count, so probes stay short. */
static zrpc_status
server_build_table(zrpc_server *server)
{
	size_t n = 0, size = 8;

	for (size_t s = 0; s < server->n_services; s++) {
		n += server->services[s]->desc->n_methods;
	}
	while (size < 2 * n) {
		size *= 2;
	}
	free(server->table);
	if ((server->table = calloc(size, sizeof(*server->table))) == NULL) {
		return zrpc_status_make(ZRPC_INTERNAL, "out of memory");
	}
	server->table_mask = size - 1;
	for (size_t s = 0; s < server->n_services; s++) {
		struct server_service *svc = server->services[s];
		for (size_t m = 0; m < svc->desc->n_methods; m++) {
			struct server_method *method = &svc->methods[m];
			size_t i = (size_t) server_hash(method->desc->path) &
			    server->table_mask;
			while (server->table[i] != NULL) {
				i = (i + 1) & server->table_mask;
			}
			server->table[i] = method;
		}
	}
	return zrpc_status_ok();
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

	/* Request ids: a random per-server prefix and a counter, so ids
	 * from two servers (or two runs) never collide. */
	if (getrandom(&server->request_id_prefix,
	        sizeof(server->request_id_prefix),
	        0) != (ssize_t) sizeof(server->request_id_prefix)) {
		server->request_id_prefix = zrpc_now_ns();
	}

	if ((server->slots = calloc(
	         server->slot_limit, sizeof(*server->slots))) == NULL ||
	    server_stats_init(&server->unmatched) != 0) {
		status = zrpc_status_make(ZRPC_INTERNAL, "out of memory");
		goto fail;
	}
	if ((rv = nng_rep0_open(&server->socket)) != 0) {
		status = zrpc_status_from_nng(rv, "open rep0 socket");
		goto fail;
	}
	rv = nng_socket_set_size(server->socket, NNG_OPT_RECVMAXSZ,
	    server->config.max_message_bytes);
	if (rv != 0) {
		status = zrpc_status_from_nng(rv, "set max message size");
		goto fail;
	}
	status = builtin_register(server);
	if (!zrpc_status_is_ok(&status)) {
		goto fail;
	}
	*out = server;
	return zrpc_status_ok();

fail:
	zrpc_server_destroy(server);
	return status;
}

zrpc_status
zrpc_server_listen(zrpc_server *server, const char *url)
{
	struct server_listener *grown, *l;
	nng_listener            listener;
	char                    resolved[512];
	size_t                  len = strlen(url);
	int                     rv, port;

	if ((rv = nng_listener_create(&listener, server->socket, url)) != 0) {
		return zrpc_status_from_nng(rv, url);
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

	/* Resolve "tcp://host:0" to the port the kernel picked. */
	snprintf(resolved, sizeof(resolved), "%s", url);
	if (len > 2 && strcmp(url + len - 2, ":0") == 0 &&
	    nng_listener_get_int(listener, NNG_OPT_TCP_BOUND_PORT, &port) ==
	        0) {
		snprintf(resolved, sizeof(resolved), "%.*s:%d",
		    (int) (len - 2), url, port);
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

/* Frees SVC and the histograms of its first N_METHODS methods. */
static void
server_service_free(struct server_service *svc, size_t n_methods)
{
	for (size_t m = 0; m < n_methods; m++) {
		zrpc_histogram_destroy(svc->methods[m].stats.latency_ns);
	}
	free(svc->methods);
	free(svc);
}

zrpc_status
zrpc_server_register(zrpc_server *server, const struct zrpc_service_desc *desc,
    const struct zrpc_method_binding *bindings, void *ctx)
{
	struct server_service **grown;
	struct server_service  *svc;

	if (server->started) {
		return zrpc_status_make(ZRPC_FAILED_PRECONDITION,
		    "register %s: server already started", desc->name);
	}
	if (server_find_service(server, desc->name) != NULL) {
		return zrpc_status_make(ZRPC_ALREADY_EXISTS,
		    "service %s is already registered", desc->name);
	}
	for (size_t m = 0; m < desc->n_methods; m++) {
		for (size_t s = 0; s < server->n_services; s++) {
			const struct zrpc_service_desc *other =
			    server->services[s]->desc;
			for (size_t k = 0; k < other->n_methods; k++) {
				if (strcmp(other->methods[k].path,
				        desc->methods[m].path) == 0) {
					return zrpc_status_make(
					    ZRPC_ALREADY_EXISTS,
					    "method %s is already registered",
					    desc->methods[m].path);
				}
			}
		}
	}

	if ((svc = calloc(1, sizeof(*svc))) == NULL) {
		return zrpc_status_make(ZRPC_INTERNAL, "out of memory");
	}
	svc->methods = calloc(
	    desc->n_methods > 0 ? desc->n_methods : 1, sizeof(*svc->methods));
	grown = realloc(server->services,
	    (server->n_services + 1) * sizeof(*server->services));
	if (svc->methods == NULL || grown == NULL) {
		free(svc->methods);
		free(svc);
		if (grown != NULL) {
			server->services = grown;
		}
		return zrpc_status_make(ZRPC_INTERNAL, "out of memory");
	}
	server->services = grown;
	for (size_t m = 0; m < desc->n_methods; m++) {
		if (server_stats_init(&svc->methods[m].stats) != 0) {
			server_service_free(svc, m + 1);
			return zrpc_status_make(
			    ZRPC_INTERNAL, "out of memory");
		}
	}
	svc->desc = desc;
	svc->ctx  = ctx;
	atomic_init(&svc->serving, true);
	for (size_t m = 0; m < desc->n_methods; m++) {
		svc->methods[m].desc    = &desc->methods[m];
		svc->methods[m].binding = bindings[m];
		svc->methods[m].service = svc;
	}
	server->services[server->n_services++] = svc;
	return zrpc_status_ok();
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
	struct server_service *svc;

	if (service[0] == '\0') {
		for (size_t i = 0; i < server->n_services; i++) {
			atomic_store(&server->services[i]->serving, serving);
		}
	} else if ((svc = server_find_service(server, service)) != NULL) {
		atomic_store(&svc->serving, serving);
	}
}

/* Health as builtin.c reports it: the name of a registered service, or
 * "" for the whole server. */
int
server_health(const zrpc_server *server, const char *service)
{
	const struct server_service *svc;

	if (atomic_load(&server->draining)) {
		return service[0] == '\0' ||
		        server_find_service(server, service) != NULL
		    ? SERVER_HEALTH_NOT_SERVING
		    : SERVER_HEALTH_UNKNOWN;
	}
	if (service[0] == '\0') {
		return SERVER_HEALTH_SERVING;
	}
	if ((svc = server_find_service(server, service)) == NULL) {
		return SERVER_HEALTH_UNKNOWN;
	}
	return atomic_load(&svc->serving) ? SERVER_HEALTH_SERVING
	                                  : SERVER_HEALTH_NOT_SERVING;
}

size_t
server_service_count(const zrpc_server *server)
{
	return server->n_services;
}

const struct zrpc_service_desc *
server_service_desc(const zrpc_server *server, size_t index)
{
	return server->services[index]->desc;
}

bool
server_method_blocking(const zrpc_server *server, size_t service, size_t m)
{
	return server->services[service]->methods[m].binding.blocking;
}

unsigned
zrpc_server_inflight(const zrpc_server *server)
{
	return atomic_load(&server->active);
}

static void
server_stats_copy(const char *path, const struct server_method_stats *from,
    struct zrpc_method_stats *to)
{
	to->path = path;
	for (int c = 0; c < ZRPC_CODE_COUNT; c++) {
		to->calls_by_code[c] = atomic_load(&from->calls_by_code[c]);
	}
	to->latency_ns_sum = zrpc_histogram_sum(from->latency_ns);
	to->handler_runs   = atomic_load(&from->handler_runs);
	to->latency_ns     = from->latency_ns;
}

bool
zrpc_server_method_stats(
    const zrpc_server *server, const char *path, struct zrpc_method_stats *out)
{
	const struct server_method *method;

	if (path[0] == '\0') {
		server_stats_copy("", &server->unmatched, out);
		return true;
	}
	if ((method = server_find_method(server, path)) == NULL) {
		/* Not started yet: the table is not built; search. */
		for (size_t s = 0; s < server->n_services; s++) {
			const struct server_service *svc = server->services[s];
			for (size_t m = 0; m < svc->desc->n_methods; m++) {
				if (strcmp(svc->methods[m].desc->path, path) ==
				    0) {
					method = &svc->methods[m];
				}
			}
		}
	}
	if (method == NULL) {
		return false;
	}
	server_stats_copy(method->desc->path, &method->stats, out);
	return true;
}

void
zrpc_server_foreach_method_stats(const zrpc_server *server,
    void (*visit)(void *arg, const struct zrpc_method_stats *stats), void *arg)
{
	struct zrpc_method_stats stats;

	for (size_t s = 0; s < server->n_services; s++) {
		const struct server_service *svc = server->services[s];
		for (size_t m = 0; m < svc->desc->n_methods; m++) {
			server_stats_copy(svc->methods[m].desc->path,
			    &svc->methods[m].stats, &stats);
			visit(arg, &stats);
		}
	}
	server_stats_copy("", &server->unmatched, &stats);
	visit(arg, &stats);
}

/* ---- the call state machine ---- */

static void
server_call_recv(struct zrpc_call *call)
{
	call->state = CALL_RECV;
	atomic_fetch_add(&call->server->idle_slots, 1);
	nng_ctx_recv(call->ctx, call->aio);
}

/* Adds up to SLOT_GROW slots, each posting a receive. Called at start
 * and from callbacks when few slots are waiting. */
static void
server_grow_slots(zrpc_server *server, size_t want)
{
	pthread_mutex_lock(&server->slots_mutex);
	for (size_t i = 0; i < want && !atomic_load(&server->closing) &&
	     server->n_slots < server->slot_limit;
	     i++) {
		struct zrpc_call *call;
		int               rv;

		if ((call = calloc(1, sizeof(*call))) == NULL) {
			break;
		}
		call->server = server;
		arena_init(&call->arena);
		if ((rv = nng_ctx_open(&call->ctx, server->socket)) != 0) {
			free(call);
			break;
		}
		if ((rv = nng_aio_alloc(&call->aio, server_call_cb, call)) !=
		    0) {
			nng_ctx_close(call->ctx);
			free(call);
			break;
		}
		server->slots[server->n_slots++] = call;
		server_call_recv(call);
	}
	pthread_mutex_unlock(&server->slots_mutex);
}

/* Per-call cleanup once the reply is packed (or the call abandoned). */
static void
server_call_reset(struct zrpc_call *call)
{
	call->request          = NULL;
	call->method           = NULL;
	call->input            = NULL;
	call->request_id       = NULL;
	call->deadline_ns      = 0;
	call->n_reply_metadata = 0;
	call->peer[0]          = '\0';
	call->suspended        = false;
	call->reply            = NULL;
	call->next             = NULL;
	arena_reset(&call->arena);
}

static void
server_record(zrpc_server *server, struct zrpc_call *call,
    const zrpc_status *status, uint64_t latency_ns)
{
	struct server_method_stats *stats = call->method != NULL
	    ? &((struct server_method *) call->method)->stats
	    : &server->unmatched;
	unsigned code = (unsigned) status->code < ZRPC_CODE_COUNT
	    ? (unsigned) status->code
	    : ZRPC_UNKNOWN;

	atomic_fetch_add_explicit(
	    &stats->calls_by_code[code], 1, memory_order_relaxed);
	zrpc_histogram_record(stats->latency_ns, latency_ns);
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
server_call_answered(struct zrpc_call *call)
{
	if (call->counted) {
		call->counted = false;
		atomic_fetch_sub(&call->server->active, 1);
		server_drain_signal(call->server);
	}
}

/*
 * The reply has left (or could not be sent): the slot waits for the next
 * request unless the server is closing.
 */
static void
server_call_done(struct zrpc_call *call)
{
	zrpc_server *server = call->server;

	if (call->sending) {
		call->sending = false;
		atomic_fetch_sub(&server->sending, 1);
		server_drain_signal(server);
	}
	if (!atomic_load(&server->closing)) {
		server_call_recv(call);
	}
}

/*
 * A suspended call's reply has been handed to nng (or dropped): stop
 * waits for that, so that it never closes a context under the send.
 */
static void
server_call_unsuspended(zrpc_server *server, bool was_suspended)
{
	if (was_suspended && atomic_fetch_sub(&server->suspended, 1) == 1 &&
	    atomic_load(&server->draining)) {
		pthread_mutex_lock(&server->drain_mutex);
		pthread_cond_broadcast(&server->drained);
		pthread_mutex_unlock(&server->drain_mutex);
	}
}

/*
 * Packs the Response for STATUS (and REPLY when OK), runs the after
 * interceptors, resets the arena and hands the message to nng. Runs on
 * whichever thread served the call; holds no lock.
 */
static void
server_call_finish(
    struct zrpc_call *call, zrpc_status status, const ProtobufCMessage *reply)
{
	zrpc_server                       *server   = call->server;
	Zrpc__V1__Response                 response = ZRPC__V1__RESPONSE__INIT;
	Zrpc__V1__Response__MetadataEntry *entries[REPLY_METADATA_MAX + 1];
	Zrpc__V1__Response__MetadataEntry  id_entry =
	    ZRPC__V1__RESPONSE__METADATA_ENTRY__INIT;
	nng_msg *msg = NULL;
	uint64_t latency_ns;
	size_t   size;
	bool     was_suspended;

	if (zrpc_status_is_ok(&status) && reply != NULL) {
		size = protobuf_c_message_get_packed_size(reply);
		response.payload.len = size;
		if (size > 0) {
			response.payload.data =
			    arena_alloc(&call->arena, size);
			if (response.payload.data == NULL) {
				status =
				    zrpc_status_make(ZRPC_RESOURCE_EXHAUSTED,
				        "reply too large for memory");
				response.payload.len = 0;
			} else {
				protobuf_c_message_pack(
				    reply, response.payload.data);
			}
		}
	}
	response.code    = (uint32_t) status.code;
	response.message = status.message;

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

	size = zrpc__v1__response__get_packed_size(&response);
	if (nng_msg_alloc(&msg, size) == 0) {
		zrpc__v1__response__pack(&response, nng_msg_body(msg));
	} else {
		server_log(server, ZRPC_LOG_ERROR,
		    "cannot allocate a %zu-byte reply; call dropped", size);
	}

	latency_ns = zrpc_now_ns() - call->start_ns;
	server_record(server, call, &status, latency_ns);
	was_suspended = call->suspended;
	for (size_t i = 0; i < server->n_interceptors; i++) {
		const struct zrpc_interceptor *ic = &server->interceptors[i];
		if (ic->after != NULL) {
			ic->after(ic->arg, call, &status, latency_ns);
		}
	}
	server_call_reset(call);

	if (msg == NULL) {
		/* Nothing to send: the caller's deadline will tell it. */
		server_call_answered(call);
		server_call_done(call);
		server_call_unsuspended(server, was_suspended);
		return;
	}
	/* Counted as sending before it stops counting as in flight, so
	 * that a drain never sees both at zero in between. */
	call->sending = true;
	atomic_fetch_add(&server->sending, 1);
	server_call_answered(call);
	call->state = CALL_SEND;
	server_thread_check(server, "nng send of a reply");
	nng_aio_set_msg(call->aio, msg);
	nng_ctx_send(call->ctx, call->aio);
	server_call_unsuspended(server, was_suspended);
}

/* Runs the handler of an accepted, unpacked call, then replies. */
static void server_call_handled(struct zrpc_call *call, zrpc_status status);
static void server_worker_continue(struct worker_job *job);

static void
server_call_run(struct zrpc_call *call)
{
	const struct server_method *method = call->method;
	ProtobufCMessage           *reply;
	zrpc_status                 status;

	if (zrpc_call_expired(call)) {
		server_call_finish(call,
		    zrpc_status_make(ZRPC_DEADLINE_EXCEEDED,
		        "deadline exceeded before %s started",
		        method->desc->path),
		    NULL);
		return;
	}
	reply =
	    arena_alloc(&call->arena, method->desc->output->sizeof_message);
	if (reply == NULL) {
		server_call_finish(call,
		    zrpc_status_make(ZRPC_RESOURCE_EXHAUSTED, "out of memory"),
		    NULL);
		return;
	}
	protobuf_c_message_init(method->desc->output, reply);
	atomic_fetch_add_explicit(
	    &((struct server_method *) method)->stats.handler_runs, 1,
	    memory_order_relaxed);
	call->reply = reply;
	status      = method->binding.invoke(
	         method->binding.fn, call, call->input, reply);
	server_call_handled(call, status);
}

/*
 * A handler (or its continuation) returned STATUS: answer, or leave the
 * call to zrpc_call_resume, or hand it to a worker to go on.
 */
static void
server_call_handled(struct zrpc_call *call, zrpc_status status)
{
	server_thread_check(call->server, "return from a handler");
	if (call->next != NULL) {
		call->job.run = server_worker_continue;
		worker_pool_submit(&call->server->pool, &call->job);
		return;
	}
	if (call->suspended) {
		/* The reply goes when zrpc_call_resume has run too. */
		if (atomic_fetch_sub(&call->suspend_refs, 1) == 1) {
			server_call_finish(call, call->resumed, call->reply);
		}
		return;
	}
	server_call_finish(call, status, call->reply);
}

/* A worker goes on with a call zrpc_call_continue_blocking handed over. */
static void
server_worker_continue(struct worker_job *job)
{
	struct zrpc_call *call = (struct zrpc_call *) job;
	zrpc_continue_fn  next = call->next;

	call->next = NULL;
	server_call_handled(call, next(call, call->input, call->reply));
}

static void
server_worker_run(struct worker_job *job)
{
	server_call_run((struct zrpc_call *) job);
}

static const char *
server_request_metadata(const Zrpc__V1__Request *request, const char *key)
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
server_request_id(struct zrpc_call *call)
{
	zrpc_server *server = call->server;
	const char  *given;
	char         id[40];

	given = server_request_metadata(call->request, "x-request-id");
	if (given != NULL && given[0] != '\0' &&
	    strlen(given) <= REQUEST_ID_MAX) {
		return given;
	}
	snprintf(id, sizeof(id), "%016" PRIx64 "-%" PRIx64,
	    server->request_id_prefix,
	    (uint64_t) atomic_fetch_add_explicit(
	        &server->request_id_next, 1, memory_order_relaxed));
	return arena_strdup(&call->arena, id);
}

/*
 * A request arrived in MSG: admit it, parse it, find its method, then run
 * the handler here or queue it for a worker. Every path ends in exactly one
 * server_call_finish.
 */
static void
server_call_received(struct zrpc_call *call, nng_msg *msg)
{
	zrpc_server *server = call->server;
	size_t       len    = nng_msg_len(msg);
	unsigned     active;

	call->start_ns = zrpc_now_ns();
	call->pipe     = nng_msg_get_pipe(msg);

	if (atomic_load(&server->draining)) {
		nng_msg_free(msg);
		server_call_finish(call,
		    zrpc_status_make(
		        ZRPC_UNAVAILABLE, "server is shutting down"),
		    NULL);
		return;
	}
	active        = atomic_fetch_add(&server->active, 1) + 1;
	call->counted = true;
	if (active > server->config.max_inflight) {
		nng_msg_free(msg);
		server_call_finish(call,
		    zrpc_status_make(ZRPC_RESOURCE_EXHAUSTED,
		        "too many calls in flight (max %u)",
		        server->config.max_inflight),
		    NULL);
		return;
	}
	/* Stream transports enforce NNG_OPT_RECVMAXSZ before reading;
	 * inproc hands messages over by reference, so check here too. */
	if (len > server->config.max_message_bytes) {
		nng_msg_free(msg);
		server_call_finish(call,
		    zrpc_status_make(ZRPC_RESOURCE_EXHAUSTED,
		        "request of %zu bytes exceeds the %zu-byte limit", len,
		        server->config.max_message_bytes),
		    NULL);
		return;
	}

	call->request = zrpc__v1__request__unpack(
	    &call->arena.allocator, len, nng_msg_body(msg));
	nng_msg_free(msg);
	if (call->request == NULL) {
		server_call_finish(call,
		    zrpc_status_make(ZRPC_INVALID_ARGUMENT,
		        "body is not a valid zrpc.v1.Request"),
		    NULL);
		return;
	}
	if (call->request->timeout_ms > 0) {
		call->deadline_ns = call->start_ns +
		    (uint64_t) call->request->timeout_ms * 1000000u;
	}
	call->request_id = server_request_id(call);
	call->method     = server_find_method(server, call->request->method);
	if (call->method == NULL) {
		server_call_finish(call,
		    zrpc_status_make(ZRPC_UNIMPLEMENTED, "unknown method %s",
		        call->request->method),
		    NULL);
		return;
	}
	if (call->method->binding.fn == NULL) {
		server_call_finish(call,
		    zrpc_status_make(ZRPC_UNIMPLEMENTED,
		        "method %s is not implemented",
		        call->method->desc->path),
		    NULL);
		return;
	}
	call->input = protobuf_c_message_unpack(call->method->desc->input,
	    &call->arena.allocator, call->request->payload.len,
	    call->request->payload.data);
	if (call->input == NULL) {
		server_call_finish(call,
		    zrpc_status_make(ZRPC_INVALID_ARGUMENT,
		        "payload is not a valid %s",
		        call->method->desc->input->name),
		    NULL);
		return;
	}
	for (size_t i = 0; i < server->n_interceptors; i++) {
		const struct zrpc_interceptor *ic = &server->interceptors[i];
		zrpc_status                    status;

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
		call->job.run = server_worker_run;
		worker_pool_submit(&server->pool, &call->job);
		return;
	}
	server_call_run(call);
}

static void
server_call_cb(void *arg)
{
	struct zrpc_call *call   = arg;
	zrpc_server      *server = call->server;
	int               rv     = nng_aio_result(call->aio);

	switch (call->state) {
	case CALL_RECV:
		atomic_fetch_sub(&server->idle_slots, 1);
		if (rv != 0) {
			if (rv != NNG_ECLOSED && rv != NNG_ECANCELED) {
				server_log(server, ZRPC_LOG_WARN,
				    "receive failed: %s", nng_strerror(rv));
				server_call_done(call);
			}
			return;
		}
		if (atomic_load(&server->idle_slots) < SLOT_LOW_WATER) {
			server_grow_slots(server, SLOT_GROW);
		}
		server_call_received(call, nng_aio_get_msg(call->aio));
		return;
	case CALL_SEND:
		if (rv != 0) {
			/* The caller is gone; the reply goes nowhere. */
			nng_msg_free(nng_aio_get_msg(call->aio));
			nng_aio_set_msg(call->aio, NULL);
		}
		server_call_done(call);
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
	status = server_build_table(server);
	if (!zrpc_status_is_ok(&status)) {
		return status;
	}
	if ((rv = worker_pool_start(&server->pool, server->config.workers)) !=
	    0) {
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
	worker_pool_stop(&server->pool);
	/* Suspended calls are waited for like running handlers: whatever
	 * resumes them (a commit to disk, say) is about to. */
	pthread_mutex_lock(&server->drain_mutex);
	while (atomic_load(&server->suspended) > 0) {
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
		struct zrpc_call *call = server->slots[i];
		nng_msg_free(nng_aio_get_msg(call->aio));
		nng_aio_free(call->aio);
		arena_finish(&call->arena);
		free(call);
	}
	free(server->slots);
	for (size_t i = 0; i < server->n_listeners; i++) {
		free(server->listeners[i].url);
	}
	free(server->listeners);
	for (size_t i = 0; i < server->n_services; i++) {
		server_service_free(
		    server->services[i], server->services[i]->desc->n_methods);
	}
	free(server->services);
	zrpc_histogram_destroy(server->unmatched.latency_ns);
	free(server->table);
	free(server->interceptors);
	pthread_mutex_destroy(&server->slots_mutex);
	pthread_mutex_destroy(&server->drain_mutex);
	pthread_cond_destroy(&server->drained);
	free(server);
}

/* ---- inside a handler ---- */

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

const char *
zrpc_call_request_id(const zrpc_call *call)
{
	return call->request_id != NULL ? call->request_id : "";
}

const char *
zrpc_call_metadata(const zrpc_call *call, const char *key)
{
	return call->request != NULL
	    ? server_request_metadata(call->request, key)
	    : NULL;
}

zrpc_status
zrpc_call_set_reply_metadata(
    zrpc_call *call, const char *key, const char *value)
{
	Zrpc__V1__Response__MetadataEntry *e;

	if (call->n_reply_metadata == REPLY_METADATA_MAX) {
		return zrpc_status_make(ZRPC_RESOURCE_EXHAUSTED,
		    "at most %d reply metadata entries", REPLY_METADATA_MAX);
	}
	e = &call->reply_metadata[call->n_reply_metadata];
	zrpc__v1__response__metadata_entry__init(e);
	e->key   = arena_strdup(&call->arena, key);
	e->value = arena_strdup(&call->arena, value);
	if (e->key == NULL || e->value == NULL) {
		return zrpc_status_make(
		    ZRPC_RESOURCE_EXHAUSTED, "out of memory");
	}
	call->n_reply_metadata++;
	return zrpc_status_ok();
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
	return arena_alloc(&call->arena, size);
}

char *
zrpc_call_strdup(zrpc_call *call, const char *s)
{
	return arena_strdup(&call->arena, s);
}

const char *
zrpc_call_peer(const zrpc_call *call)
{
	struct zrpc_call *mut = (struct zrpc_call *) call;
	nng_sockaddr      sa;
	char              host[64];

	if (mut->peer[0] != '\0') {
		return mut->peer;
	}
	if (nng_pipe_get_addr(mut->pipe, NNG_OPT_REMADDR, &sa) != 0) {
		return "";
	}
	switch (sa.s_family) {
	case NNG_AF_INET: {
		uint32_t a = ntohl(sa.s_in.sa_addr);
		snprintf(host, sizeof(host), "%u.%u.%u.%u", a >> 24,
		    (a >> 16) & 0xff, (a >> 8) & 0xff, a & 0xff);
		snprintf(mut->peer, sizeof(mut->peer), "tcp://%s:%u", host,
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
	call->suspended = true;
	atomic_store(&call->suspend_refs, 2);
	atomic_fetch_add(&call->server->suspended, 1);
}

void
zrpc_call_resume(zrpc_call *call, zrpc_status status)
{
	call->resumed = status;
	if (atomic_fetch_sub(&call->suspend_refs, 1) == 1) {
		server_call_finish(call, call->resumed, call->reply);
	}
}

void
zrpc_call_continue_blocking(zrpc_call *call, zrpc_continue_fn next)
{
	call->next = next;
}
