/*
 * zos.v1.Assistant/Complete over a real server: the cache, retry, fallback,
 * deadlines, single flight, the session's moves and the routing metrics,
 * against the built-in echo model and a model server run by the test (a
 * zos.v1.ModelBackend on inproc whose failures and delay the test sets).
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"
#include "services.h"
#include "state.h"
#include "zos/v1/zos.zrpc.h"
#include "zrpc/clock.h"

/* The test's model server. */
struct model {
	zrpc_server *server;
	char         url[96];
	atomic_uint  calls;     /* Generate calls received */
	atomic_uint  finished;  /* Generate calls answered */
	atomic_uint  fail_left; /* calls still to fail */
	atomic_uint  delay_ms;  /* pause before answering */
	/* Hold each call until CACHE has counted this many misses (at most
	 * 10 s): all identical callers have joined the compute by then. */
	struct zos_cache *cache;
	unsigned          wait_misses;
};

struct fixture {
	struct model         model;
	struct zos_state    *state;
	struct zos_backends *backends;
	struct zos_services  services;
	zrpc_server         *server;
	zrpc_client         *client;
};

static zrpc_status
model_generate(zrpc_call *call, const Zos__V1__GenerateRequest *request,
    Zos__V1__GenerateResponse *reply)
{
	struct model   *m = zrpc_call_service_ctx(call);
	unsigned        left;
	struct timespec pause;
	char            text[512];

	atomic_fetch_add(&m->calls, 1);
	for (int i = 0; m->wait_misses > 0 && i < 10000; i++) {
		struct zos_cache_stats stats;

		zos_cache_stats(m->cache, &stats);
		if (stats.misses >= m->wait_misses) {
			break;
		}
		usleep(1000);
	}
	pause.tv_sec  = atomic_load(&m->delay_ms) / 1000;
	pause.tv_nsec = (long) (atomic_load(&m->delay_ms) % 1000) * 1000000L;
	nanosleep(&pause, NULL);
	left = atomic_load(&m->fail_left);
	while (left > 0 &&
	    !atomic_compare_exchange_weak(&m->fail_left, &left, left - 1)) { }
	atomic_fetch_add(&m->finished, 1);
	if (left > 0) {
		return zrpc_status_make(ZRPC_UNAVAILABLE, "model overloaded");
	}
	snprintf(text, sizeof(text), "model says: %s", request->prompt);
	reply->text = zrpc_call_strdup(call, text);
	return zrpc_status_ok();
}

static void
model_start(struct model *m)
{
	const struct zos_v1_model_backend_handlers handlers = {
		.generate          = model_generate,
		.generate_blocking = true,
	};
	static atomic_uint counter;

	snprintf(m->url, sizeof(m->url), "inproc://zos-model-%d-%u",
	    (int) getpid(), atomic_fetch_add(&counter, 1));
	cr_assert_eq(zrpc_server_create(
	                 &m->server, &(zrpc_server_config) { .workers = 8 })
	                 .code,
	    ZRPC_OK);
	cr_assert_eq(
	    zos_v1_model_backend_register(m->server, &handlers, m).code,
	    ZRPC_OK);
	cr_assert_eq(zrpc_server_listen(m->server, m->url).code, ZRPC_OK);
	cr_assert_eq(zrpc_server_start(m->server).code, ZRPC_OK);
}

/*
 * Starts zOS with task "remote" routed to the test's model (fallback: the
 * default route's, builtin:echo-small), builtin:echo failing at
 * ECHO_FAIL_RATE, and WORKERS handler threads.
 */
static void
fixture_start(struct fixture *f, double echo_fail_rate, unsigned workers)
{
	const char        *tasks[1], *primaries[1], *urls[1];
	char               error[256], url[96];
	static atomic_uint counter;

	memset(f, 0, sizeof(*f));
	model_start(&f->model);
	tasks[0]     = "remote";
	primaries[0] = f->model.url;
	urls[0]      = f->model.url;

	struct zos_state_config config = {
		.abort_on_violation = true,
		.route_tasks        = tasks,
		.route_primaries    = primaries,
		.n_route_overrides  = 1,
	};
	f->state = zos_state_create(&config, error, sizeof(error));
	cr_assert_not_null(f->state, "%s", error);
	struct zos_backends_config bc = {
		.echo_fail_rate = echo_fail_rate,
		.echo_seed      = 7,
		.urls           = urls,
		.n_urls         = 1,
	};
	cr_assert_eq(
	    zos_backends_create(&bc, &f->backends, error, sizeof(error)), 0,
	    "%s", error);
	f->services = (struct zos_services) { .state = f->state,
		.backends                            = f->backends };

	cr_assert_eq(zrpc_server_create(&f->server,
	                 &(zrpc_server_config) { .workers = workers })
	                 .code,
	    ZRPC_OK);
	cr_assert_eq(
	    zos_services_register(f->server, &f->services).code, ZRPC_OK);
	snprintf(url, sizeof(url), "inproc://zos-assistant-%d-%u",
	    (int) getpid(), atomic_fetch_add(&counter, 1));
	cr_assert_eq(zrpc_server_listen(f->server, url).code, ZRPC_OK);
	cr_assert_eq(zrpc_server_start(f->server).code, ZRPC_OK);
	cr_assert_eq(zrpc_client_open(&f->client, url, NULL).code, ZRPC_OK);
}

static void
fixture_stop(struct fixture *f)
{
	zrpc_client_close(f->client);
	zrpc_server_destroy(f->server);
	zos_backends_destroy(f->backends);
	zos_state_destroy(f->state);
	zrpc_server_destroy(f->model.server);
}

/* Starts a session and returns its id (in ID). */
static void
start_session(struct fixture *f, char id[ZOS_SESSION_ID_LEN + 1])
{
	Zos__V1__StartSessionRequest req =
	    ZOS__V1__START_SESSION_REQUEST__INIT;
	Zos__V1__ProofSession *s = NULL;

	req.problem_id = "p1";
	cr_assert_eq(
	    zos_v1_session_start(f->client, &req, &s, NULL).code, ZRPC_OK);
	snprintf(id, ZOS_SESSION_ID_LEN + 1, "%s", s->id);
	zos__v1__proof_session__free_unpacked(s, NULL);
}

static enum zos_proof_state
session_state(struct fixture *f, const char *id)
{
	struct zos_session s;

	cr_assert_eq(
	    zos_sessions_get(f->state->sessions, id, &s), ZOS_SESSION_OK);
	return s.state;
}

static zrpc_status
complete(struct fixture *f, const char *session, const char *task,
    const char *prompt, uint32_t timeout_ms, Zos__V1__CompleteResponse **out)
{
	Zos__V1__CompleteRequest req = ZOS__V1__COMPLETE_REQUEST__INIT;
	zrpc_call_opts           o   = { .timeout_ms = timeout_ms };

	req.session_id = (char *) session;
	req.task_type  = (char *) task;
	req.prompt     = (char *) prompt;
	*out           = NULL;
	return zos_v1_assistant_complete(f->client, &req, out, &o);
}

/* The routing metrics of MODEL (zeros when it has none). */
static struct zos_model_metrics
metrics_of(struct fixture *f, const char *model)
{
	struct zos_model_metrics *all, found = { 0 };
	size_t                    n;

	cr_assert_eq(zos_routing_get_metrics(f->state->routing, &all, &n),
	    ZOS_ROUTING_OK);
	for (size_t i = 0; i < n; i++) {
		if (strcmp(all[i].model, model) == 0) {
			found = all[i];
		}
	}
	free(all);
	return found;
}

Test(assistant, a_miss_asks_the_model_and_a_repeat_hits_the_cache)
{
	struct fixture             f;
	Zos__V1__CompleteResponse *r = NULL;
	char                       id[ZOS_SESSION_ID_LEN + 1];
	zrpc_status                st;
	char                       first[256];

	fixture_start(&f, 0.0, 2);
	start_session(&f, id);
	st = complete(&f, id, "hint", "prove 1+1=2", 5000, &r);
	cr_assert_eq(st.code, ZRPC_OK, "%s", st.message);
	cr_assert_str_eq(r->model, "builtin:echo-small");
	cr_assert_not(r->cached);
	cr_assert_eq(r->attempts, 1);
	cr_assert_neq(strstr(r->text, "prove 1+1=2"), NULL, "%s", r->text);
	cr_assert_not_null(r->session);
	cr_assert_str_eq(r->session->id, id);
	cr_assert_eq(r->session->state, ZOS__V1__PROOF_STATE__FEEDBACK_READY);
	cr_assert_eq(r->session->version, 3, "awaiting -> analyzing -> ready");
	snprintf(first, sizeof(first), "%s", r->text);
	zos__v1__complete_response__free_unpacked(r, NULL);
	cr_assert_eq(session_state(&f, id), ZOS_PROOF_FEEDBACK_READY);

	/* The same prompt again, without a session: from the cache. */
	st = complete(&f, "", "hint", "prove 1+1=2", 5000, &r);
	cr_assert_eq(st.code, ZRPC_OK, "%s", st.message);
	cr_assert(r->cached);
	cr_assert_eq(r->attempts, 0);
	cr_assert_str_eq(r->text, first);
	cr_assert_str_eq(r->model, "builtin:echo-small");
	cr_assert_null(r->session);
	zos__v1__complete_response__free_unpacked(r, NULL);
	cr_assert_eq(metrics_of(&f, "builtin:echo-small").success_count, 1);
	fixture_stop(&f);
}

Test(assistant, a_failed_primary_is_retried_after_the_pause_then_answers)
{
	struct fixture             f;
	Zos__V1__CompleteResponse *r = NULL;
	struct zos_model_metrics   m;
	zrpc_status                st;

	fixture_start(&f, 0.0, 2);
	atomic_store(&f.model.fail_left, 1);
	st = complete(&f, "", "remote", "retry me", 5000, &r);
	cr_assert_eq(st.code, ZRPC_OK, "%s", st.message);
	cr_assert_str_eq(r->model, f.model.url);
	cr_assert_eq(r->attempts, 2);
	cr_assert_not(r->cached);
	cr_assert_str_eq(r->text, "model says: retry me");
	cr_assert_geq(r->latency_ms, 100, "the retry waits 100 ms first");
	zos__v1__complete_response__free_unpacked(r, NULL);
	cr_assert_eq(atomic_load(&f.model.calls), 2);
	m = metrics_of(&f, f.model.url);
	cr_assert_eq(m.failure_count, 1);
	cr_assert_eq(m.success_count, 1);
	cr_assert_eq(m.fallback_count, 0);
	fixture_stop(&f);
}

Test(assistant, a_primary_that_stays_down_falls_back)
{
	struct fixture             f;
	Zos__V1__CompleteResponse *r = NULL;
	struct zos_model_metrics   m;
	zrpc_status                st;

	fixture_start(&f, 0.0, 2);
	atomic_store(&f.model.fail_left, 1000);
	st = complete(&f, "", "remote", "fall back", 5000, &r);
	cr_assert_eq(st.code, ZRPC_OK, "%s", st.message);
	cr_assert_str_eq(r->model, "builtin:echo-small");
	cr_assert_eq(r->attempts, 3, "primary twice, fallback once");
	zos__v1__complete_response__free_unpacked(r, NULL);
	m = metrics_of(&f, f.model.url);
	cr_assert_eq(m.failure_count, 2);
	cr_assert_eq(m.success_count, 0);
	m = metrics_of(&f, "builtin:echo-small");
	cr_assert_eq(m.success_count, 1);
	cr_assert_eq(m.fallback_count, 1);
	/* The fallback's answer is cached under the fallback, not the
	 * primary: the primary is asked again next time. */
	atomic_store(&f.model.fail_left, 0);
	st = complete(&f, "", "remote", "fall back", 5000, &r);
	cr_assert_eq(st.code, ZRPC_OK, "%s", st.message);
	cr_assert_str_eq(r->model, f.model.url);
	zos__v1__complete_response__free_unpacked(r, NULL);
	fixture_stop(&f);
}

Test(assistant, every_model_down_is_unavailable_and_the_student_can_retry)
{
	struct fixture             f;
	Zos__V1__CompleteResponse *r = NULL;
	char                       id[ZOS_SESSION_ID_LEN + 1];
	zrpc_status                st;

	fixture_start(&f, 1.0, 2); /* builtin:echo always fails */
	atomic_store(&f.model.fail_left, 1000);
	start_session(&f, id);
	st = complete(&f, id, "remote", "nobody home", 5000, &r);
	cr_assert_eq(st.code, ZRPC_UNAVAILABLE, "%s", st.message);
	cr_assert_neq(strstr(st.message, "simulated failure"), NULL,
	    "the last backend error: %s", st.message);
	cr_assert_null(r);
	cr_assert_eq(session_state(&f, id), ZOS_PROOF_ANALYZING);
	cr_assert_eq(metrics_of(&f, f.model.url).failure_count, 2);
	cr_assert_eq(metrics_of(&f, "builtin:echo-small").failure_count, 1);

	/* The model recovers: the same session asks again and moves on. */
	atomic_store(&f.model.fail_left, 0);
	st = complete(&f, id, "remote", "nobody home", 5000, &r);
	cr_assert_eq(st.code, ZRPC_OK, "%s", st.message);
	cr_assert_eq(r->session->state, ZOS__V1__PROOF_STATE__FEEDBACK_READY);
	zos__v1__complete_response__free_unpacked(r, NULL);
	fixture_stop(&f);
}

Test(assistant, a_deadline_shorter_than_the_model_ends_the_call_on_time)
{
	struct fixture             f;
	Zos__V1__CompleteResponse *r = NULL;
	char                       id[ZOS_SESSION_ID_LEN + 1];
	zrpc_status                st;
	uint64_t                   started, took_ms;

	fixture_start(&f, 0.0, 2);
	atomic_store(&f.model.delay_ms, 600);
	start_session(&f, id);
	started = zrpc_now_ns();
	st      = complete(&f, id, "remote", "too slow", 150, &r);
	took_ms = (zrpc_now_ns() - started) / 1000000u;
	cr_assert_eq(st.code, ZRPC_DEADLINE_EXCEEDED, "%s", st.message);
	cr_assert_lt(took_ms, 450, "answered after %llu ms",
	    (unsigned long long) took_ms);
	/* Let the model finish its late answer; nothing may change. */
	for (int i = 0; i < 200 && atomic_load(&f.model.finished) < 1; i++) {
		usleep(10000);
	}
	cr_assert_eq(atomic_load(&f.model.finished), 1);
	cr_assert_eq(atomic_load(&f.model.calls), 1, "no retry, no fallback");
	cr_assert_eq(session_state(&f, id), ZOS_PROOF_ANALYZING);
	cr_assert_eq(metrics_of(&f, "builtin:echo-small").success_count, 0);
	fixture_stop(&f);
}

Test(assistant, no_retry_starts_when_the_time_left_cannot_cover_it)
{
	struct fixture             f;
	Zos__V1__CompleteResponse *r = NULL;
	zrpc_status                st;

	fixture_start(&f, 0.0, 2);
	atomic_store(&f.model.fail_left, 1); /* fails at once */
	st = complete(&f, "", "remote", "no time", 60, &r);
	cr_assert_eq(st.code, ZRPC_DEADLINE_EXCEEDED, "%s", st.message);
	cr_assert_eq(atomic_load(&f.model.calls), 1);
	cr_assert_eq(metrics_of(&f, f.model.url).failure_count, 1);
	cr_assert_eq(metrics_of(&f, "builtin:echo-small").success_count +
	        metrics_of(&f, "builtin:echo-small").failure_count,
	    0, "no fallback either");
	fixture_stop(&f);
}

#define SAME 64

struct same_caller {
	struct fixture            *f;
	zrpc_status                status;
	Zos__V1__CompleteResponse *reply;
};

static void *
same_caller_main(void *arg)
{
	struct same_caller *c = arg;

	c->status = complete(
	    c->f, "", "remote", "the same question", 10000, &c->reply);
	return NULL;
}

Test(assistant, identical_concurrent_calls_reach_the_model_once)
{
	struct fixture         f;
	struct same_caller     callers[SAME];
	pthread_t              threads[SAME];
	struct zos_cache_stats stats;
	unsigned               computed = 0;

	fixture_start(&f, 0.0, SAME + 4);
	/* The model answers only once all SAME callers have missed: the
	 * first computes, the others wait on its compute. */
	f.model.cache       = &f.state->cache;
	f.model.wait_misses = SAME;
	for (int i = 0; i < SAME; i++) {
		callers[i] = (struct same_caller) { .f = &f };
		cr_assert_eq(pthread_create(&threads[i], NULL,
		                 same_caller_main, &callers[i]),
		    0);
	}
	for (int i = 0; i < SAME; i++) {
		pthread_join(threads[i], NULL);
	}
	zos_cache_stats(&f.state->cache, &stats);
	cr_assert_eq(atomic_load(&f.model.calls), 1);
	for (int i = 0; i < SAME; i++) {
		cr_assert_eq(callers[i].status.code, ZRPC_OK, "%s",
		    callers[i].status.message);
		cr_assert_str_eq(
		    callers[i].reply->text, "model says: the same question");
		computed += !callers[i].reply->cached;
		zos__v1__complete_response__free_unpacked(
		    callers[i].reply, NULL);
	}
	cr_assert_eq(computed, 1, "one call asked, the others shared");
	cr_assert_eq(metrics_of(&f, f.model.url).success_count, 1);
	cr_assert_eq(stats.misses, SAME, "all of them met the compute");
	fixture_stop(&f);
}

Test(assistant, bad_requests_and_sessions_get_their_codes)
{
	struct fixture             f;
	Zos__V1__CompleteResponse *r = NULL;
	char                       id[ZOS_SESSION_ID_LEN + 1];
	struct zos_session         s;

	fixture_start(&f, 0.0, 2);
	cr_assert_eq(complete(&f, "", "hint", "", 5000, &r).code,
	    ZRPC_INVALID_ARGUMENT);
	cr_assert_eq(
	    complete(&f, "0123456789abcdef", "hint", "q", 5000, &r).code,
	    ZRPC_NOT_FOUND);
	start_session(&f, id);
	cr_assert_eq(zos_sessions_transition(
	                 f.state->sessions, id, ZOS_PROOF_ABANDONED, 0, &s),
	    ZOS_SESSION_OK);
	cr_assert_eq(complete(&f, id, "hint", "q", 5000, &r).code,
	    ZRPC_FAILED_PRECONDITION);
	cr_assert_eq(atomic_load(&f.model.calls), 0);
	cr_assert_eq(metrics_of(&f, "builtin:echo-small").success_count, 0,
	    "no model asked for a refused call");
	fixture_stop(&f);
}
