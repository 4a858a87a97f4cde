/*
 * The in-process zrpc host of the fuzz targets; see dispatch_host.h.
 */
#include "dispatch_host.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend.h"
#include "builtin.h"
#include "call.h"
#include "registry.h"
#include "services.h"
#include "state.h"
#include "zrpc/clock.h"
#include "zrpc/server.h"

/* As zosd's default (--max-message-bytes). */
#define FUZZ_MAX_MESSAGE_BYTES (4u * 1024 * 1024)
#define FUZZ_ANSWER_WAIT_S 10
#define FUZZ_MAX_METHODS 64

struct fuzz_host {
	struct zrpc_call_host host; /* first: finish and submit find us */
	struct zrpc_registry  registry;
	struct zrpc_call      call;
	bool                  work_pending; /* submit asked for a worker */

	pthread_mutex_t mutex;
	pthread_cond_t  answered_cond;
	bool            answered; /* guarded by: mutex */

	struct zos_state    *state;
	struct zos_backends *backends;
	struct zos_services  services;

	const struct zrpc_method *methods[FUZZ_MAX_METHODS];
};

/* zrpc_server_register as the services call it: SERVER is our host. */
zrpc_status __wrap_zrpc_server_register(zrpc_server *server,
    const struct zrpc_service_desc                  *desc,
    const struct zrpc_method_binding *bindings, void *ctx);

zrpc_status
__wrap_zrpc_server_register(zrpc_server *server,
    const struct zrpc_service_desc      *desc,
    const struct zrpc_method_binding *bindings, void *ctx)
{
	struct fuzz_host *h = (struct fuzz_host *) (void *) server;

	return zrpc_registry_add(&h->registry, desc, bindings, ctx);
}

static struct fuzz_host *
fuzz_host_of(struct zrpc_call *call)
{
	return (struct fuzz_host *) (void *) call->host;
}

/* The host's finish: as server_call_finish, with the reply checked and
 * dropped instead of sent. */
static void
fuzz_host_finish(
    struct zrpc_call *call, zrpc_status status, const ProtobufCMessage *reply)
{
	struct fuzz_host   *h = fuzz_host_of(call);
	Zrpc__V1__Response *response;
	nng_msg            *msg;
	size_t              size;

	if (zrpc_call_encode(call, &status, reply, &msg, &size) != 0) {
		fprintf(
		    stderr, "fuzz: cannot allocate a %zu-byte reply\n", size);
		abort();
	}
	zrpc_registry_record(&h->registry, call->method, status.code,
	    zrpc_now_ns() - call->start_ns);
	zrpc_call_reset(call);

	response = zrpc__v1__response__unpack(
	    NULL, nng_msg_len(msg), nng_msg_body(msg));
	if (response == NULL || response->code >= ZRPC_CODE_COUNT ||
	    (response->code != ZRPC_OK && response->payload.len > 0)) {
		fprintf(stderr, "fuzz: the reply is not a sane Response\n");
		abort();
	}
	zrpc__v1__response__free_unpacked(response, NULL);
	nng_msg_free(msg);

	pthread_mutex_lock(&h->mutex);
	h->answered = true;
	pthread_cond_broadcast(&h->answered_cond);
	pthread_mutex_unlock(&h->mutex);
}

/* The host's submit: the worker's turn comes when the handler returns. */
static void
fuzz_host_submit(struct zrpc_call *call)
{
	fuzz_host_of(call)->work_pending = true;
}

static void
fuzz_host_check_no_locks(void *arg, const char *where)
{
	struct zos_state *state = arg;

	zos_assert_no_locks_held(&state->locks, where);
}

static void
fuzz_host_fail(const char *what, const char *why)
{
	fprintf(stderr, "fuzz: %s: %s\n", what, why);
	abort();
}

struct fuzz_host *
fuzz_host_create(void)
{
	struct fuzz_host *h = calloc(1, sizeof(*h));
	char              error[256];
	zrpc_status       status;

	if (h == NULL) {
		fuzz_host_fail("host", "out of memory");
	}
	pthread_mutex_init(&h->mutex, NULL);
	pthread_cond_init(&h->answered_cond, NULL);
	/* A small session table, so that inputs reach its bound. */
	struct zos_state_config state_config = {
		.cache_capacity     = 16,
		.max_sessions       = 64,
		.abort_on_violation = true,
	};
	if ((h->state = zos_state_create(
	         &state_config, error, sizeof(error))) == NULL) {
		fuzz_host_fail("state", error);
	}
	struct zos_backends_config backends_config = { .echo_seed = 1 };
	if (zos_backends_create(
	        &backends_config, &h->backends, error, sizeof(error)) != 0) {
		fuzz_host_fail("backends", error);
	}
	h->services = (struct zos_services) {
		.state              = h->state,
		.backends           = h->backends,
		.backend_timeout_ms = 1000,
		.retry_pause_ms     = 1,
	};

	h->host.finish            = fuzz_host_finish;
	h->host.submit            = fuzz_host_submit;
	h->host.thread_check      = fuzz_host_check_no_locks;
	h->host.thread_check_arg  = h->state;
	h->host.request_id_prefix = 0x5eed;
	atomic_init(&h->host.request_id_next, 0);
	atomic_init(&h->host.suspended, 0);
	if (zrpc_registry_init(&h->registry) != 0) {
		fuzz_host_fail("registry", "out of memory");
	}
	/* What zrpc_server_create and zosd register, in that order. */
	status =
	    zrpc_builtin_register((zrpc_server *) (void *) h, &h->registry);
	if (!zrpc_status_is_ok(&status)) {
		fuzz_host_fail("built-in services", status.message);
	}
	status =
	    zos_services_register((zrpc_server *) (void *) h, &h->services);
	if (!zrpc_status_is_ok(&status)) {
		fuzz_host_fail("zOS services", status.message);
	}
	status = zrpc_registry_seal(&h->registry);
	if (!zrpc_status_is_ok(&status)) {
		fuzz_host_fail("registry", status.message);
	}
	zrpc_call_init(&h->call, &h->host, &h->registry);
	return h;
}

/* Waits for the call's answer, at most FUZZ_ANSWER_WAIT_S. */
static void
fuzz_host_wait(struct fuzz_host *h)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += FUZZ_ANSWER_WAIT_S;
	pthread_mutex_lock(&h->mutex);
	while (!h->answered) {
		if (pthread_cond_timedwait(
		        &h->answered_cond, &h->mutex, &until) != 0 &&
		    !h->answered) {
			fuzz_host_fail("call", "not answered within 10 s");
		}
	}
	h->answered = false;
	pthread_mutex_unlock(&h->mutex);
}

void
fuzz_host_serve(struct fuzz_host *h, const uint8_t *body, size_t len)
{
	struct zrpc_call *call = &h->call;
	zrpc_status       status;

	zrpc_call_arrived(
	    call, (nng_pipe) NNG_PIPE_INITIALIZER, zrpc_now_ns());
	status = len > FUZZ_MAX_MESSAGE_BYTES
	    ? zrpc_status_make(ZRPC_RESOURCE_EXHAUSTED, "too large")
	    : zrpc_call_decode(call, body, len);
	if (!zrpc_status_is_ok(&status)) {
		fuzz_host_finish(call, status, NULL);
	} else if (call->method->binding.blocking) {
		fuzz_host_submit(call);
	} else {
		zrpc_call_run(call);
	}
	/* The worker's turns, each of which may queue another. */
	while (h->work_pending) {
		h->work_pending = false;
		zrpc_call_work(call);
	}
	fuzz_host_wait(h);
	zos_assert_no_locks_held(&h->state->locks, "after a call");
}

const struct zrpc_method *const *
fuzz_host_methods(struct fuzz_host *h, const char *prefix, size_t *n)
{
	size_t count = 0;

	for (size_t s = 0; s < zrpc_registry_service_count(&h->registry);
	     s++) {
		const struct zrpc_service_desc *desc =
		    zrpc_registry_service_desc(&h->registry, s);

		if (strncmp(desc->name, prefix, strlen(prefix)) != 0) {
			continue;
		}
		for (size_t m = 0; m < desc->n_methods; m++) {
			if (count == FUZZ_MAX_METHODS) {
				fuzz_host_fail("methods", "too many");
			}
			h->methods[count++] = &desc->methods[m];
		}
	}
	*n = count;
	return h->methods;
}
