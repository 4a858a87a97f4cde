/*
 * Registers every zOS service (see services.h), and the durable reply that
 * the services changing skills or sessions answer through.
 */
#include <errno.h>

#include "services.h"

zrpc_status
zos_services_register(zrpc_server *server, const struct zos_services *services)
{
	zrpc_status (*const registers[])(zrpc_server *, struct zos_state *) = {
		zos_skills_service_register,
		zos_session_service_register,
		zos_routing_service_register,
		zos_cache_service_register,
	};
	zrpc_status status = zrpc_status_ok();

	for (size_t i = 0; i < sizeof(registers) / sizeof(registers[0]); i++) {
		status = registers[i](server, services->state);
		if (!zrpc_status_is_ok(&status)) {
			return status;
		}
	}
	return zos_assistant_service_register(server, services);
}

/* A call waiting for its change to be durable; lives in the call's arena. */
struct services_durable {
	zrpc_call  *call;
	zrpc_status status; /* the answer once durable */
};

/* The store's verdict (flusher thread): answer the suspended call. */
static void
services_durable_done(void *arg, int error, const char *message)
{
	struct services_durable *d = arg;

	if (error == 0) {
		zrpc_call_resume(d->call, d->status);
	} else if (error == ECANCELED) {
		zrpc_call_resume(d->call,
		    zrpc_status_make(ZRPC_UNAVAILABLE,
		        "server is shutting down; the change is not durable: "
		        "%s",
		        message));
	} else {
		zrpc_call_resume(d->call,
		    zrpc_status_make(ZRPC_INTERNAL,
		        "the change is made but not durable: %s", message));
	}
}

zrpc_status
zos_services_reply_durable(zrpc_call *call, struct zos_state *state,
    enum zos_store_part part, uint64_t seq, zrpc_status status)
{
	struct services_durable *d;

	if (state->store == NULL) {
		return status;
	}
	if ((d = zrpc_call_alloc(call, sizeof(*d))) == NULL) {
		char message[256];
		/* No memory to wait asynchronously: wait here instead. */
		if (zos_store_commit_wait(state->store, part, seq, message,
		        sizeof(message)) != 0) {
			return zrpc_status_make(ZRPC_INTERNAL,
			    "the change is made but not durable: %s", message);
		}
		return status;
	}
	d->call   = call;
	d->status = status;
	zrpc_call_suspend(call);
	zos_store_commit(state->store, part, seq, services_durable_done, d);
	return zrpc_status_ok(); /* ignored: the resume answers */
}
