/*
 * The durable reply; see durable.h.
 *
 * A handler that changed skills or sessions has its answer ready at once,
 * but may not send it until the change is on disk (DESIGN.md, section 7).
 * Rather than block a thread on the store, the call is suspended and its
 * answer parked in the call's own arena (struct durable_wait, freed with
 * the call); the store's flusher settles the commit request, and its
 * callback resumes the call with the parked answer or with the reason the
 * change is not durable. Group commit thus costs no thread per waiting
 * call. Only when the arena cannot hold the parked answer does the
 * handler fall back to waiting for the commit on its own thread.
 */
#include "durable.h"

#include <errno.h>

/* A call waiting for its change to be durable; lives in the call's arena. */
struct durable_wait {
	zrpc_call  *call;
	zrpc_status status; /* the answer once durable */
};

/*
 * The answer when the store could not make a change durable (ERROR, an
 * errno value, and MESSAGE): the change was undone, so the caller may
 * retry; UNAVAILABLE says so (disk full, read-only or replaced
 * directory, I/O error), RESOURCE_EXHAUSTED when memory ran out.
 */
static zrpc_status
durable_failure(int error, const char *message)
{
	if (error == ENOMEM) {
		return zrpc_status_make(ZRPC_RESOURCE_EXHAUSTED,
		    "the change was not made: out of memory: %s", message);
	}
	return zrpc_status_make(ZRPC_UNAVAILABLE,
	    "the change was not made durable and was undone: %s", message);
}

/* The store's verdict (flusher thread): answer the suspended call. */
static void
durable_done(void *arg, int error, const char *message)
{
	struct durable_wait *d = arg;

	if (error == 0) {
		zrpc_call_resume(d->call, d->status);
	} else if (error == ECANCELED) {
		zrpc_call_resume(d->call,
		    zrpc_status_make(ZRPC_UNAVAILABLE,
		        "server is shutting down; the change is not durable: "
		        "%s",
		        message));
	} else {
		zrpc_call_resume(d->call, durable_failure(error, message));
	}
}

zrpc_status
zos_durable_reply(zrpc_call *call, struct zos_state *state,
    enum zos_store_part part, uint64_t seq, zrpc_status status)
{
	struct durable_wait *d;

	if (state->store == NULL) {
		return status;
	}
	if ((d = zrpc_call_alloc(call, sizeof(*d))) == NULL) {
		char message[256];
		/* No memory to wait asynchronously: wait here instead. */
		int error = zos_store_commit_wait(
		    state->store, part, seq, message, sizeof(message));
		if (error != 0) {
			return durable_failure(error, message);
		}
		return status;
	}
	d->call   = call;
	d->status = status;
	zrpc_call_suspend(call);
	zos_store_commit(state->store, part, seq, durable_done, d);
	return zrpc_status_ok(); /* ignored: the resume answers */
}
