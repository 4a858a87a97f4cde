/*
 * zos.v1.Assistant/Complete: a student's proof step answered by a model.
 *
 *   1. The session (when one is named) must be AWAITING_SOLUTION or
 *      ANALYZING; it is moved to ANALYZING, which is where it stays if
 *      no model answers, so the student can simply ask again.
 *   2. The task's route gives a primary and a fallback model.
 *   3. The cache's get-or-compute on (primary, prompt): a hit answers at
 *      once; on a miss one caller per key (single flight) asks the primary
 *      backend, and once more after a pause if that fails. Waiters share
 *      its answer, and stop waiting at their own deadline.
 *      With --cache-url, a local miss asks the shared level in Redis
 *      first (from inside the local single flight, on the worker), and
 *      the backend is called by one node only (shared_cache.h).
 *   4. If the primary failed, the same on (fallback, prompt) with one
 *      attempt. An answer is cached under the model that gave it, so a
 *      degraded answer never hides the primary's once it is back.
 *   5. The session moves ANALYZING -> FEEDBACK_READY, and the reply waits
 *      until that is durable.
 *
 * Every backend call happens with no zOS lock held (the cache asserts it),
 * carries the call's request id and a child of its trace context (same
 * trace id, a new span id per backend call: zrpc_call_child_traceparent,
 * which starts a trace when the caller sent none) with its tracestate,
 * and gets the call's remaining time as its timeout; a retry or a
 * fallback starts only when the time left covers the pause and the
 * model's mean latency so far (at least 1 ms). When the time runs out the
 * caller gets DEADLINE_EXCEEDED and the session does not move on: no late
 * answer and no late state change. Each backend call is recorded in the
 * routing metrics (success or failure, latency, fallback or not).
 *
 * Complete is declared non-blocking: a cache hit for a call with no
 * session is answered on nng's thread, and every other call is handed to
 * the worker pool (zrpc_call_continue_blocking), where the backends and
 * the retry pause may block.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "assistant.h"
#include "durable.h"
#include "zos/v1/zos.zrpc.h"
#include "zrpc/clock.h"

#define ASSISTANT_DEFAULT_TIMEOUT_MS 30000
#define ASSISTANT_DEFAULT_PAUSE_MS 100

/* One model's try at the prompt: the compute function's argument. */
struct assistant_try {
	const struct zos_services *services;
	zrpc_call                 *call;
	bool                       fallback; /* recorded as a fallback call */
	unsigned                   tries;    /* calls allowed: 1 + retries */
	/* Out: filled only when this call's compute ran (not a waiter). */
	bool     computed;
	unsigned attempts;    /* backend calls made */
	bool     out_of_time; /* stopped for the deadline */
};

/* The model's mean latency so far, for "does the time left cover it". */
static uint64_t
assistant_mean_latency_ms(struct zos_routing *routing, const char *model)
{
	struct zos_model_metrics *metrics;
	size_t                    n;
	uint64_t                  mean = 1;

	if (zos_routing_get_metrics(routing, &metrics, &n) != ZOS_ROUTING_OK) {
		return mean;
	}
	for (size_t i = 0; i < n; i++) {
		if (strcmp(metrics[i].model, model) == 0 &&
		    metrics[i].mean_latency_ms > 1.0) {
			mean = (uint64_t) metrics[i].mean_latency_ms;
		}
	}
	free(metrics);
	return mean;
}

/*
 * The timeout for the next backend call, or 0 when the time left cannot
 * cover PAUSE_MS and then one call of the model's mean latency.
 */
static uint32_t
assistant_budget_ms(const struct assistant_try *t, const char *model,
    uint32_t pause_ms, bool first)
{
	int64_t left = zrpc_call_remaining_ms(t->call);

	if (left < 0) {
		return t->services->backend_timeout_ms != 0
		    ? t->services->backend_timeout_ms
		    : ASSISTANT_DEFAULT_TIMEOUT_MS;
	}
	if (first) {
		return left > 0 ? (uint32_t) left : 0;
	}
	if ((uint64_t) left < pause_ms +
	        assistant_mean_latency_ms(
	            t->services->state->routing, model)) {
		return 0;
	}
	return (uint32_t) left - pause_ms;
}

static void
assistant_pause(uint32_t ms)
{
	struct timespec ts = { .tv_sec = ms / 1000,
		.tv_nsec               = (long) (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) { }
}

/*
 * zos_cache_compute_fn: asks MODEL up to T->tries times. Returns 0 and the
 * text, or the last failure's code and message.
 */
static int
assistant_compute(void *arg, const char *model, const char *prompt, char **out)
{
	struct assistant_try *t        = arg;
	struct zos_routing   *routing  = t->services->state->routing;
	uint32_t              pause_ms = t->services->retry_pause_ms != 0
	                 ? t->services->retry_pause_ms
	                 : ASSISTANT_DEFAULT_PAUSE_MS;
	zrpc_status           status   = zrpc_status_make(
	                ZRPC_DEADLINE_EXCEEDED, "no time left to ask %s", model);
	char                             traceparent[ZRPC_TRACEPARENT_LEN + 1];
	const struct zos_backend_context context = {
		.request_id  = zrpc_call_request_id(t->call),
		.traceparent = traceparent,
		.tracestate  = zrpc_call_tracestate(t->call),
	};

	t->computed = true;
	for (unsigned i = 0; i < t->tries; i++) {
		uint32_t budget = assistant_budget_ms(
		    t, model, i == 0 ? 0 : pause_ms, i == 0);
		uint64_t started;
		uint64_t latency_ms;

		if (budget == 0) {
			t->out_of_time = true;
			status = zrpc_status_make(ZRPC_DEADLINE_EXCEEDED,
			    "no time left to %s %s", i == 0 ? "ask" : "retry",
			    model);
			break;
		}
		if (i > 0) {
			assistant_pause(pause_ms);
		}
		zrpc_call_child_traceparent(t->call, traceparent);
		started    = zrpc_now_ns();
		status     = zos_backends_generate_for(t->services->backends,
		        &context, model, prompt, 0, budget, out);
		latency_ms = (zrpc_now_ns() - started) / 1000000u;
		t->attempts++;
		zos_routing_record_outcome(routing, model,
		    zrpc_status_is_ok(&status), latency_ms, t->fallback);
		if (zrpc_status_is_ok(&status)) {
			return 0;
		}
		if (zrpc_call_expired(t->call)) {
			t->out_of_time = true;
			break;
		}
	}
	*out = strdup(status.message);
	return (int) status.code;
}

/*
 * zos_cache_compute_fn when a shared level is configured: the local
 * cache's single flight calls this on a local miss, with no lock held;
 * it asks Redis, or computes once across the nodes (shared_cache.h). A
 * value from Redis leaves T->computed false, so the reply says cached.
 * A waiter that runs out of time answers DEADLINE_EXCEEDED.
 */
static int
assistant_compute_shared(
    void *arg, const char *model, const char *prompt, char **out)
{
	struct assistant_try *t    = arg;
	int64_t               left = zrpc_call_remaining_ms(t->call);
	uint64_t              until =
            left < 0 ? 0 : zrpc_now_ns() + (uint64_t) left * 1000000u;
	bool shared;
	int  rv;

	rv = zos_shared_cache_get_or_compute(t->services->shared_cache, model,
	    prompt, assistant_compute, t, until, out, &shared);
	if (rv == ZOS_SHARED_CACHE_TIMED_OUT) {
		t->out_of_time = true;
		*out = strdup("deadline exceeded waiting for another "
		              "node's answer");
		return (int) ZRPC_DEADLINE_EXCEEDED;
	}
	if (rv < 0) {
		*out = strdup("shared cache failure");
		return (int) ZRPC_INTERNAL;
	}
	return rv;
}

/* Outcome of asking one model through the cache. */
struct assistant_answer {
	struct zos_cached_response *value; /* text or error; owned */
	int                         rv;    /* zos_cache_get_or_compute's */
};

static struct assistant_answer
assistant_ask(struct assistant_try *t, const char *model, const char *prompt,
    bool *cached)
{
	struct assistant_answer a    = { NULL, 0 };
	int64_t                 left = zrpc_call_remaining_ms(t->call);
	uint64_t                until =
            left < 0 ? 0 : zrpc_now_ns() + (uint64_t) left * 1000000u;

	a.rv = zos_cache_get_or_compute_until(&t->services->state->cache,
	    model, prompt,
	    t->services->shared_cache != NULL ? assistant_compute_shared
	                                      : assistant_compute,
	    t, until, &a.value, cached);
	return a;
}

/* What a failed ask answers the caller: deadline, or the backend error. */
static zrpc_status
assistant_failure(const struct assistant_try *t,
    const struct assistant_answer *a, const char *model)
{
	if (a->rv == ZOS_CACHE_TIMED_OUT || t->out_of_time ||
	    zrpc_call_expired(t->call)) {
		return zrpc_status_make(ZRPC_DEADLINE_EXCEEDED,
		    "deadline exceeded waiting for %s", model);
	}
	if (a->rv == ZOS_CACHE_COMPUTE_FAILED) {
		if (a->value->error == ZRPC_DEADLINE_EXCEEDED) {
			return zrpc_status_make(
			    ZRPC_DEADLINE_EXCEEDED, "%s", a->value->text);
		}
		return zrpc_status_make(
		    ZRPC_UNAVAILABLE, "%s", a->value->text);
	}
	if (a->rv == ZOS_CACHE_TOO_LARGE) {
		return zrpc_status_make(ZRPC_INVALID_ARGUMENT,
		    "prompt longer than %u bytes, or answer over 1 MiB",
		    ZOS_CACHE_MAX_PROMPT_BYTES);
	}
	return zrpc_status_make(ZRPC_INTERNAL, "cache failure %d", a->rv);
}

static zrpc_status
assistant_session_status(enum zos_session_code code, const char *id)
{
	switch (code) {
	case ZOS_SESSION_NOT_FOUND:
		return zrpc_status_make(
		    ZRPC_NOT_FOUND, "no session '%.64s'", id);
	case ZOS_SESSION_ABORTED:
		return zrpc_status_make(ZRPC_ABORTED,
		    "session '%.64s' changed while it was being answered", id);
	case ZOS_SESSION_FAILED_PRECONDITION:
		return zrpc_status_make(ZRPC_FAILED_PRECONDITION,
		    "session '%.64s' is not awaiting a solution or analyzing "
		    "one: move it to AWAITING_SOLUTION first",
		    id);
	default:
		return zrpc_status_make(
		    ZRPC_INTERNAL, "session '%.64s': failure %d", id, code);
	}
}

/*
 * Step 1: the session must exist and await or be analyzing a solution; it
 * is moved to ANALYZING. *CHANGED tells whether that was a change.
 */
static zrpc_status
assistant_session_begin(struct zos_state *state, const char *id,
    struct zos_session *s, bool *changed)
{
	struct zos_sessions  *sessions = state->sessions;
	enum zos_session_code code;

	*changed = false;
	/* A read to change: the latest value, as the transition sees it. */
	if ((code = zos_sessions_get_latest(sessions, id, s)) !=
	    ZOS_SESSION_OK) {
		return assistant_session_status(code, id);
	}
	if (s->state == ZOS_PROOF_ANALYZING) {
		return zrpc_status_ok();
	}
	if (s->state != ZOS_PROOF_AWAITING_SOLUTION) {
		return assistant_session_status(
		    ZOS_SESSION_FAILED_PRECONDITION, id);
	}
	code = zos_sessions_transition(
	    sessions, id, ZOS_PROOF_ANALYZING, s->version, s);
	if (code != ZOS_SESSION_OK) {
		return assistant_session_status(code, id);
	}
	/* Readers see ANALYZING once it is durable: ask for that now, not
	 * waiting (the reply waits for the change at the end). */
	zos_state_commit_soon(state, ZOS_STORE_SESSIONS, s->change_seq);
	*changed = true;
	return zrpc_status_ok();
}

/* Fills the reply's session from S. */
static zrpc_status
assistant_fill_session(zrpc_call *call, const struct zos_session *s,
    Zos__V1__CompleteResponse *reply)
{
	Zos__V1__ProofSession *out = zrpc_call_alloc(call, sizeof(*out));

	if (out == NULL) {
		return zrpc_status_make(
		    ZRPC_RESOURCE_EXHAUSTED, "out of memory");
	}
	zos__v1__proof_session__init(out);
	out->id              = zrpc_call_strdup(call, s->id);
	out->problem_id      = zrpc_call_strdup(call, s->problem_id);
	out->state           = (Zos__V1__ProofState) s->state;
	out->version         = s->version;
	out->created_unix_ms = s->created_unix_ms;
	out->updated_unix_ms = s->updated_unix_ms;
	if (out->id == NULL || out->problem_id == NULL) {
		return zrpc_status_make(
		    ZRPC_RESOURCE_EXHAUSTED, "out of memory");
	}
	reply->session = out;
	return zrpc_status_ok();
}

/*
 * Steps 2 to 4: the answer from the primary or the fallback model. On OK
 * REPLY's text, model, cached and attempts are set.
 */
static zrpc_status
assistant_answer(zrpc_call *call, const struct zos_services *services,
    const Zos__V1__CompleteRequest *request, Zos__V1__CompleteResponse *reply)
{
	struct zos_route     route;
	struct assistant_try primary = {
		.services = services, .call = call, .tries = 2
	};
	struct assistant_try    fallback = { .services = services,
		   .call                               = call,
		   .fallback                           = true,
		   .tries                              = 1 };
	struct assistant_try   *used     = &primary;
	const char             *model;
	struct assistant_answer a;
	bool                    cached;
	zrpc_status             status;

	/* A copy: a reload may replace the table while the models work. */
	zos_routing_route(
	    services->state->routing, request->task_type, &route);
	model = route.primary_model;

	a = assistant_ask(&primary, model, request->prompt, &cached);
	if (a.rv == ZOS_CACHE_COMPUTE_FAILED && !primary.out_of_time &&
	    a.value->error != ZRPC_DEADLINE_EXCEEDED &&
	    !zrpc_call_expired(call) &&
	    strcmp(route.fallback_model, route.primary_model) != 0) {
		zrpc_status first = assistant_failure(&primary, &a, model);

		zos_cache_response_unref(a.value);
		used  = &fallback;
		model = route.fallback_model;
		if (assistant_budget_ms(&fallback, model, 0, false) == 0) {
			return zrpc_status_make(ZRPC_DEADLINE_EXCEEDED,
			    "no time left for the fallback %s after: %s",
			    model, first.message);
		}
		a = assistant_ask(&fallback, model, request->prompt, &cached);
	}
	if (a.rv != 0) {
		status = assistant_failure(used, &a, model);
		if (status.code == ZRPC_UNAVAILABLE) {
			status = zrpc_status_make(ZRPC_UNAVAILABLE,
			    "every model failed for task '%s'; last: %s",
			    route.task_type, a.value->text);
		}
		zos_cache_response_unref(a.value);
		return status;
	}
	reply->text     = zrpc_call_strdup(call, a.value->text);
	reply->model    = zrpc_call_strdup(call, model);
	reply->cached   = !used->computed;
	reply->attempts = primary.attempts + fallback.attempts;
	zos_cache_response_unref(a.value);
	if (reply->text == NULL || reply->model == NULL) {
		return zrpc_status_make(
		    ZRPC_RESOURCE_EXHAUSTED, "out of memory");
	}
	return zrpc_status_ok();
}

/* The whole of Complete, on a worker: it may call backends and pause. */
static zrpc_status
assistant_complete_blocking(
    zrpc_call *call, const ProtobufCMessage *input, ProtobufCMessage *output)
{
	const Zos__V1__CompleteRequest *request  = (const void *) input;
	Zos__V1__CompleteResponse      *reply    = (void *) output;
	const struct zos_services      *services = zrpc_call_service_ctx(call);
	struct zos_state               *state    = services->state;
	uint64_t                        started  = zrpc_now_ns();
	bool                  has_session = request->session_id[0] != '\0';
	bool                  changed     = false;
	struct zos_session    s;
	enum zos_session_code code;
	zrpc_status           status;

	if (has_session) {
		status = assistant_session_begin(
		    state, request->session_id, &s, &changed);
		if (!zrpc_status_is_ok(&status)) {
			return status;
		}
	}
	status = assistant_answer(call, services, request, reply);
	if (zrpc_status_is_ok(&status) && zrpc_call_expired(call)) {
		status = zrpc_status_make(ZRPC_DEADLINE_EXCEEDED,
		    "deadline exceeded before the answer was delivered");
	}
	if (zrpc_status_is_ok(&status) && has_session) {
		code = zos_sessions_transition(state->sessions,
		    request->session_id, ZOS_PROOF_FEEDBACK_READY, s.version,
		    &s);
		if (code == ZOS_SESSION_OK) {
			changed = true;
			status  = assistant_fill_session(call, &s, reply);
		} else {
			status = assistant_session_status(
			    code, request->session_id);
		}
	}
	reply->latency_ms = (zrpc_now_ns() - started) / 1000000u;
	if (!changed) {
		return status;
	}
	return zos_durable_reply(
	    call, state, ZOS_STORE_SESSIONS, s.change_seq, status);
}

/* The cache's copy lands in the call's arena. */
static void *
assistant_alloc(void *arg, size_t size)
{
	return zrpc_call_alloc(arg, size);
}

/*
 * Complete as it arrives, on nng's thread: a cache hit with no session to
 * move is answered here; anything else goes on on a worker.
 */
static zrpc_status
assistant_complete(zrpc_call *call, const Zos__V1__CompleteRequest *request,
    Zos__V1__CompleteResponse *reply)
{
	const struct zos_services *services = zrpc_call_service_ctx(call);
	struct zos_route           route;
	size_t                     len;

	zrpc_status status;

	if (request->prompt[0] == '\0') {
		return zrpc_status_make(
		    ZRPC_INVALID_ARGUMENT, "prompt must not be empty");
	}
	/* Another node's session: refused before anything is asked. */
	status =
	    zos_cluster_check_session(services->cluster, request->session_id);
	if (!zrpc_status_is_ok(&status)) {
		return status;
	}
	if (request->session_id[0] == '\0') {
		zos_routing_route(
		    services->state->routing, request->task_type, &route);
		reply->text = zos_cache_peek_copy(&services->state->cache,
		    route.primary_model, request->prompt, assistant_alloc,
		    call, &len);
		if (reply->text != NULL) {
			reply->model =
			    zrpc_call_strdup(call, route.primary_model);
			reply->cached = true;
			if (reply->model == NULL) {
				return zrpc_status_make(
				    ZRPC_RESOURCE_EXHAUSTED, "out of memory");
			}
			return zrpc_status_ok();
		}
	}
	zrpc_call_continue_blocking(call, assistant_complete_blocking);
	return zrpc_status_ok(); /* ignored: the worker answers */
}

zrpc_status
zos_assistant_service_register(
    zrpc_server *server, const struct zos_services *services)
{
	const struct zos_v1_assistant_handlers handlers = {
		.complete = assistant_complete,
	};

	return zos_v1_assistant_register(server, &handlers, (void *) services);
}
