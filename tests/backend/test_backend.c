/*
 * Model backends (backend.h): the built-in echo model (text, max_tokens,
 * delay against the timeout, seeded failures) and remote models, served
 * here by an in-test zos.v1.ModelBackend on inproc:// through the
 * generated handler table. Timing is asserted only with generous bounds.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "zos/v1/zos.zrpc.h"
#include "zrpc/clock.h"
#include "zrpc/server.h"

#define LONG_TIMEOUT_MS 5000

static double
now_ms(void)
{
	return (double) zrpc_now_ns() / 1e6;
}

static struct zos_backends *
backends_create(const struct zos_backends_config *config)
{
	struct zos_backends *backends   = NULL;
	char                 error[256] = "";

	cr_assert_eq(
	    zos_backends_create(config, &backends, error, sizeof(error)), 0,
	    "%s", error);
	cr_assert_not_null(backends);
	return backends;
}

/* Generates and checks that it succeeded; returns the text (free it). */
static char *
generate_ok(struct zos_backends *backends, const char *model,
    const char *prompt, uint32_t max_tokens)
{
	char       *text = NULL;
	zrpc_status st;

	st = zos_backends_generate(
	    backends, model, prompt, max_tokens, LONG_TIMEOUT_MS, &text);
	cr_assert_eq(st.code, ZRPC_OK, "%s: %s", model, st.message);
	cr_assert_not_null(text);
	return text;
}

/* ---- builtin:echo ---- */

Test(backend, echo_answers_the_same_text_for_the_same_model_and_prompt)
{
	struct zos_backends *b = backends_create(NULL);
	char *first  = generate_ok(b, "builtin:echo", "prove that 2 > 1", 0);
	char *second = generate_ok(b, "builtin:echo", "prove that 2 > 1", 0);

	cr_assert_str_eq(first, second);
	cr_assert_str_eq(first, "[builtin:echo] prove that 2 > 1");
	free(first);
	free(second);
	zos_backends_destroy(b);
}

Test(backend, echo_text_differs_by_model_and_by_prompt)
{
	struct zos_backends *b = backends_create(NULL);
	char                *base, *model, *prompt;

	base   = generate_ok(b, "builtin:echo", "a b", 0);
	model  = generate_ok(b, "builtin:echo-large", "a b", 0);
	prompt = generate_ok(b, "builtin:echo", "a c", 0);
	cr_assert_str_neq(base, model);
	cr_assert_str_neq(base, prompt);
	cr_assert_str_eq(model, "[builtin:echo-large] a b");
	free(base);
	free(model);
	free(prompt);
	zos_backends_destroy(b);
}

Test(backend, echo_keeps_max_tokens_words_of_the_prompt)
{
	struct zos_backends *b      = backends_create(NULL);
	const char          *prompt = "one two\tthree  four";
	char                *text;

	text = generate_ok(b, "builtin:echo", prompt, 2);
	cr_assert_str_eq(text, "[builtin:echo] one two");
	free(text);
	text = generate_ok(b, "builtin:echo", prompt, 1);
	cr_assert_str_eq(text, "[builtin:echo] one");
	free(text);
	text = generate_ok(b, "builtin:echo", prompt, 4);
	cr_assert_str_eq(text, "[builtin:echo] one two\tthree  four");
	free(text);
	text = generate_ok(b, "builtin:echo", prompt, 100);
	cr_assert_str_eq(text, "[builtin:echo] one two\tthree  four");
	free(text);
	text = generate_ok(b, "builtin:echo", prompt, 0);
	cr_assert_str_eq(
	    text, "[builtin:echo] one two\tthree  four", "0 = all");
	free(text);
	text = generate_ok(b, "builtin:echo", "", 3);
	cr_assert_str_eq(text, "[builtin:echo] ");
	free(text);
	zos_backends_destroy(b);
}

Test(backend, echo_waits_its_delay_when_the_timeout_allows)
{
	struct zos_backends_config config = { .echo_delay_ms = 50 };
	struct zos_backends       *b      = backends_create(&config);
	double                     start  = now_ms();
	char                      *text;
	double                     took;

	text = generate_ok(b, "builtin:echo", "x", 0);
	took = now_ms() - start;
	cr_assert(took >= 49.0, "waited %.1f ms of a 50 ms delay", took);
	cr_assert(took < LONG_TIMEOUT_MS, "took %.1f ms", took);
	free(text);
	zos_backends_destroy(b);
}

Test(backend, echo_delay_past_the_timeout_is_deadline_exceeded_at_the_timeout)
{
	struct zos_backends_config config = { .echo_delay_ms = 10000 };
	struct zos_backends       *b      = backends_create(&config);
	char                      *text   = (char *) "unchanged";
	double                     start  = now_ms();
	zrpc_status                st;
	double                     took;

	st   = zos_backends_generate(b, "builtin:echo", "x", 0, 100, &text);
	took = now_ms() - start;

	cr_assert_eq(st.code, ZRPC_DEADLINE_EXCEEDED, "%s", st.message);
	cr_assert_null(text);
	cr_assert(
	    took >= 99.0, "returned after %.1f ms, before the timeout", took);
	cr_assert(took < 3000.0, "returned after %.1f ms, not near 100", took);
	zos_backends_destroy(b);
}

Test(backend, echo_fail_rate_zero_never_fails)
{
	struct zos_backends_config config = {
		.echo_fail_rate = 0.0,
		.echo_seed      = 42,
	};
	struct zos_backends *b = backends_create(&config);

	for (int i = 0; i < 1000; i++) {
		free(generate_ok(b, "builtin:echo", "p", 0));
	}
	zos_backends_destroy(b);
}

Test(backend, echo_fail_rate_one_always_fails_unavailable)
{
	struct zos_backends_config config = {
		.echo_fail_rate = 1.0,
		.echo_seed      = 42,
	};
	struct zos_backends *b = backends_create(&config);

	for (int i = 0; i < 200; i++) {
		char       *text = (char *) "unchanged";
		zrpc_status st;

		st = zos_backends_generate(
		    b, "builtin:echo", "p", 0, LONG_TIMEOUT_MS, &text);
		cr_assert_eq(st.code, ZRPC_UNAVAILABLE, "call %d", i);
		cr_assert_str_eq(
		    st.message, "builtin:echo: simulated failure");
		cr_assert_null(text);
	}
	zos_backends_destroy(b);
}

/* Runs N echo calls on B; returns how many failed, and their pattern. */
static int
echo_failures(struct zos_backends *b, int n, char *pattern)
{
	int failures = 0;

	for (int i = 0; i < n; i++) {
		char       *text = NULL;
		zrpc_status st;

		st = zos_backends_generate(
		    b, "builtin:echo", "p", 0, LONG_TIMEOUT_MS, &text);
		cr_assert(st.code == ZRPC_OK || st.code == ZRPC_UNAVAILABLE,
		    "%s", st.message);
		failures += st.code == ZRPC_UNAVAILABLE;
		if (pattern != NULL) {
			pattern[i] = st.code == ZRPC_OK ? '.' : 'x';
		}
		free(text);
	}
	return failures;
}

Test(backend, echo_seeded_half_rate_fails_about_half_and_repeats)
{
	struct zos_backends_config config = {
		.echo_fail_rate = 0.5,
		.echo_seed      = 7,
	};
	char                 first[1001] = "";
	char                 again[1001] = "";
	char                 other[1001] = "";
	struct zos_backends *b           = backends_create(&config);
	int                  n           = echo_failures(b, 1000, first);

	zos_backends_destroy(b);
	cr_assert(n >= 400 && n <= 600, "%d failures in 1000 at rate 0.5", n);

	b = backends_create(&config);
	cr_assert_eq(
	    echo_failures(b, 1000, again), n, "same seed, same count");
	cr_assert_str_eq(first, again, "and the same calls fail");
	zos_backends_destroy(b);

	config.echo_seed = 8;
	b                = backends_create(&config);
	echo_failures(b, 1000, other);
	cr_assert_str_neq(first, other, "another seed, another sequence");
	zos_backends_destroy(b);
}

struct echo_thread {
	struct zos_backends *backends;
	int                  calls;
	int                  failures;
};

static void *
echo_thread_run(void *arg)
{
	struct echo_thread *t = arg;

	t->failures = echo_failures(t->backends, t->calls, NULL);
	return NULL;
}

Test(backend, echo_failure_count_is_the_same_from_many_threads)
{
	struct zos_backends_config config = {
		.echo_fail_rate = 0.3,
		.echo_seed      = 99,
	};
	struct zos_backends *b     = backends_create(&config);
	int                  alone = echo_failures(b, 1000, NULL);
	struct echo_thread   threads[4];
	pthread_t            ids[4];
	int                  together = 0;

	zos_backends_destroy(b);
	cr_assert(
	    alone > 200 && alone < 400, "%d failures at rate 0.3", alone);
	b = backends_create(&config);
	for (int i = 0; i < 4; i++) {
		threads[i] = (struct echo_thread) { b, 250, 0 };
		cr_assert_eq(pthread_create(
		                 &ids[i], NULL, echo_thread_run, &threads[i]),
		    0);
	}
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(pthread_join(ids[i], NULL), 0);
		together += threads[i].failures;
	}
	cr_assert_eq(together, alone, "4 x 250 calls fail as 1000 do");
	zos_backends_destroy(b);
}

Test(backend, create_rejects_a_fail_rate_outside_zero_to_one)
{
	const double bad[] = { -0.1, 1.5, NAN, INFINITY };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct zos_backends_config config = { 0 };
		struct zos_backends       *b;
		char                       error[256] = "";

		config.echo_fail_rate = bad[i];
		cr_assert_eq(
		    zos_backends_create(&config, &b, error, sizeof(error)),
		    -1);
		cr_assert_null(b);
		cr_assert(strstr(error, "rate") != NULL, "%s", error);
	}
}

Test(backend, generate_refuses_a_zero_timeout_and_destroy_null_is_safe)
{
	struct zos_backends *b    = backends_create(NULL);
	char                *text = NULL;
	zrpc_status          st;

	st = zos_backends_generate(b, "builtin:echo", "p", 0, 0, &text);
	cr_assert_eq(st.code, ZRPC_INVALID_ARGUMENT, "%s", st.message);
	cr_assert_null(text);
	zos_backends_destroy(b);
	zos_backends_destroy(NULL);
}

/* ---- remote models ---- */

/*
 * The in-test model server. Its Generate answers "remote(MODEL): PROMPT";
 * the prompt "refuse" gets FAILED_PRECONDITION, "huge" a text one byte
 * over ZOS_BACKEND_TEXT_MAX. It records the deadline it saw.
 */
struct fake_model {
	zrpc_server *server;
	char         url[128];
	atomic_uint  calls;
	atomic_llong remaining_ms; /* of the last call; -1: no deadline */
};

static zrpc_status
fake_model_generate(zrpc_call *call, const Zos__V1__GenerateRequest *request,
    Zos__V1__GenerateResponse *reply)
{
	struct fake_model *fake = zrpc_call_service_ctx(call);
	size_t             len;

	atomic_fetch_add(&fake->calls, 1);
	atomic_store(
	    &fake->remaining_ms, (long long) zrpc_call_remaining_ms(call));
	if (strcmp(request->prompt, "refuse") == 0) {
		return zrpc_status_make(
		    ZRPC_FAILED_PRECONDITION, "model is warming up");
	}
	if (strcmp(request->prompt, "huge") == 0) {
		len = ZOS_BACKEND_TEXT_MAX + 1;
		if ((reply->text = zrpc_call_alloc(call, len + 1)) == NULL) {
			return zrpc_status_make(
			    ZRPC_RESOURCE_EXHAUSTED, "arena");
		}
		memset(reply->text, 'x', len);
		return zrpc_status_ok();
	}
	len = strlen(request->model) + strlen(request->prompt) + 16;
	if ((reply->text = zrpc_call_alloc(call, len)) == NULL) {
		return zrpc_status_make(ZRPC_RESOURCE_EXHAUSTED, "arena");
	}
	snprintf(reply->text, len, "remote(%s): %s", request->model,
	    request->prompt);
	return zrpc_status_ok();
}

static void
fake_model_start(struct fake_model *fake)
{
	static atomic_int                          counter;
	const struct zos_v1_model_backend_handlers handlers = {
		.generate = fake_model_generate,
	};
	zrpc_status st;

	memset(fake, 0, sizeof(*fake));
	atomic_init(&fake->calls, 0);
	atomic_init(&fake->remaining_ms, 0);
	snprintf(fake->url, sizeof(fake->url), "inproc://zos-backend-%d-%d",
	    (int) getpid(), atomic_fetch_add(&counter, 1));
	cr_assert_eq(zrpc_server_create(&fake->server, NULL).code, ZRPC_OK);
	st = zos_v1_model_backend_register(fake->server, &handlers, fake);
	cr_assert_eq(st.code, ZRPC_OK, "%s", st.message);
	st = zrpc_server_listen(fake->server, fake->url);
	cr_assert_eq(st.code, ZRPC_OK, "%s", st.message);
	cr_assert_eq(zrpc_server_start(fake->server).code, ZRPC_OK);
}

static void
fake_model_stop(struct fake_model *fake)
{
	zrpc_server_destroy(fake->server);
}

Test(backend, remote_generate_returns_the_servers_text)
{
	struct fake_model fake;

	fake_model_start(&fake);
	/* The same URL twice, and a built-in name: both accepted. */
	const char *urls[] = { fake.url, "builtin:echo", fake.url };
	struct zos_backends_config config = { .urls = urls, .n_urls = 3 };
	struct zos_backends       *b      = backends_create(&config);
	char                      *text   = generate_ok(b, fake.url, "hi", 0);
	char                       want[256];

	snprintf(want, sizeof(want), "remote(%s): hi", fake.url);
	cr_assert_str_eq(text, want);
	cr_assert_eq(atomic_load(&fake.calls), 1);
	long long remaining = atomic_load(&fake.remaining_ms);
	cr_assert(remaining > 0 && remaining <= LONG_TIMEOUT_MS,
	    "the timeout travels as the call's deadline: %lld ms", remaining);
	free(text);
	zos_backends_destroy(b);
	fake_model_stop(&fake);
}

Test(backend, remote_error_status_passes_through_with_the_url)
{
	struct fake_model fake;

	fake_model_start(&fake);
	const char                *urls[] = { fake.url };
	struct zos_backends_config config = { .urls = urls, .n_urls = 1 };
	struct zos_backends       *b      = backends_create(&config);
	char                      *text   = (char *) "unchanged";
	zrpc_status                st;

	st = zos_backends_generate(
	    b, fake.url, "refuse", 0, LONG_TIMEOUT_MS, &text);
	cr_assert_eq(st.code, ZRPC_FAILED_PRECONDITION, "%s", st.message);
	cr_assert_null(text);
	cr_assert(strncmp(st.message, fake.url, strlen(fake.url)) == 0, "%s",
	    st.message);
	cr_assert(strstr(st.message, "model is warming up") != NULL, "%s",
	    st.message);
	zos_backends_destroy(b);
	fake_model_stop(&fake);
}

Test(backend, remote_text_over_the_limit_is_resource_exhausted)
{
	struct fake_model fake;

	fake_model_start(&fake);
	const char                *urls[] = { fake.url };
	struct zos_backends_config config = { .urls = urls, .n_urls = 1 };
	struct zos_backends       *b      = backends_create(&config);
	char                      *text   = (char *) "unchanged";
	zrpc_status                st;

	st = zos_backends_generate(
	    b, fake.url, "huge", 0, LONG_TIMEOUT_MS, &text);
	cr_assert_eq(st.code, ZRPC_RESOURCE_EXHAUSTED, "%s", st.message);
	cr_assert_null(text);
	cr_assert(strstr(st.message, fake.url) != NULL, "%s", st.message);
	zos_backends_destroy(b);
	fake_model_stop(&fake);
}

Test(backend, remote_that_is_down_fails_within_the_timeout)
{
	char url[128];

	snprintf(url, sizeof(url), "ipc:///tmp/zos-backend-nobody-%d.sock",
	    (int) getpid());
	const char                *urls[] = { url };
	struct zos_backends_config config = { .urls = urls, .n_urls = 1 };
	struct zos_backends       *b      = backends_create(&config);
	char                      *text   = (char *) "unchanged";
	double                     start  = now_ms();
	zrpc_status                st;
	double                     took;

	st   = zos_backends_generate(b, url, "hi", 0, 300, &text);
	took = now_ms() - start;
	cr_assert(
	    st.code == ZRPC_UNAVAILABLE || st.code == ZRPC_DEADLINE_EXCEEDED,
	    "%s: %s", zrpc_status_name(st.code), st.message);
	cr_assert_null(text);
	cr_assert(strstr(st.message, url) != NULL, "%s", st.message);
	cr_assert(took < 3000.0, "took %.1f ms for a 300 ms timeout", took);
	zos_backends_destroy(b);
}

Test(backend, unknown_model_is_unavailable_and_named)
{
	struct zos_backends *b    = backends_create(NULL);
	char                *text = (char *) "unchanged";
	zrpc_status          st;

	st = zos_backends_generate(
	    b, "tcp://127.0.0.1:1", "hi", 0, LONG_TIMEOUT_MS, &text);
	cr_assert_eq(st.code, ZRPC_UNAVAILABLE, "%s", st.message);
	cr_assert_str_eq(st.message, "no backend for model tcp://127.0.0.1:1");
	cr_assert_null(text);
	zos_backends_destroy(b);
}

Test(backend, create_rejects_an_invalid_url_and_names_it)
{
	/* Rejected by nng_url_parse, then by the transports. */
	const char *bad[] = { "not a url", "tcp://[::1", "foo://bar",
		"ipc://" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char                *urls[] = { "builtin:echo", bad[i] };
		struct zos_backends_config config = { .urls = urls };
		struct zos_backends       *b;
		char                       error[256] = "";

		config.n_urls = 2;
		cr_assert_eq(
		    zos_backends_create(&config, &b, error, sizeof(error)), -1,
		    "%s is accepted", bad[i]);
		cr_assert_null(b);
		cr_assert(strstr(error, bad[i]) != NULL, "%s", error);
		cr_assert(strstr(error, "invalid URL") != NULL, "%s", error);
	}
}
