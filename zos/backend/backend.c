/*
 * Model backends; see backend.h for the contract.
 *
 * The set is fixed at creation: the echo settings, and the table of
 * remote clients (one per distinct URL, in the order first given, searched
 * linearly: a routing table names a handful of models). The one thing
 * that changes afterwards is echo_calls, an atomic. So the set needs no
 * lock: a zrpc client is itself safe to share between threads.
 *
 * Simulated failures come from splitmix64 (Steele, Lea and Flood's
 * SplittableRandom finaliser): the Nth echo call (N from the atomic
 * counter) fails when the Nth output of the sequence seeded with
 * echo_seed, read as a fraction in [0, 1), is below echo_fail_rate. Which
 * thread gets which N depends on scheduling, but the number of failures
 * among the first N calls depends on the seed alone, so a run repeats.
 *
 * An echo call draws its number first: a failing call fails at once,
 * without the delay; a succeeding one sleeps the delay, cut short by the
 * timeout (then it answers DEADLINE_EXCEEDED, as a slow remote would).
 */
#include "backend.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>

#include "zos/v1/zos.zrpc.h"
#include "zrpc/client.h"
#include "zrpc/clock.h"

/* What separates the words max_tokens counts (isspace in the C locale). */
#define BACKEND_SPACE " \t\n\r\f\v"

/* One remote model server. */
struct backend_remote {
	char        *url;    /* immutable; owned */
	zrpc_client *client; /* shared by every caller of this URL */
};

struct zos_backends {
	/* The echo model's settings: immutable after create. */
	uint32_t echo_delay_ms;
	double   echo_fail_rate;
	uint64_t echo_seed;
	/* Echo calls drawn so far: numbers the failure sequence. */
	atomic_uint_fast64_t echo_calls;

	/* immutable after create */
	struct backend_remote *remotes;
	size_t                 n_remotes;
};

static void backend_error(char *error, size_t error_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Writes the printf-style message into ERROR, if there is room for one. */
static void
backend_error(char *error, size_t error_len, const char *fmt, ...)
{
	va_list ap;

	if (error == NULL || error_len == 0) {
		return;
	}
	va_start(ap, fmt);
	vsnprintf(error, error_len, fmt, ap);
	va_end(ap);
}

static bool
backend_is_builtin(const char *model)
{
	return strncmp(model, ZOS_BACKEND_BUILTIN_PREFIX,
	           strlen(ZOS_BACKEND_BUILTIN_PREFIX)) == 0;
}

/* The remote for URL, or NULL when the set was not configured with it. */
static struct backend_remote *
backend_find_remote(const struct zos_backends *backends, const char *url)
{
	for (size_t i = 0; i < backends->n_remotes; i++) {
		if (strcmp(backends->remotes[i].url, url) == 0) {
			return &backends->remotes[i];
		}
	}
	return NULL;
}

/*
 * Opens a client for URL (not yet in the set) and appends it; a call made
 * before it connects fails after CONNECT_TIMEOUT_MS.
 */
static int
backend_add_remote(struct zos_backends *backends, const char *url,
    uint32_t connect_timeout_ms, char *error, size_t error_len)
{
	struct backend_remote *remote =
	    &backends->remotes[backends->n_remotes];
	nng_url    *parsed;
	zrpc_status status;
	int         rv;

	/* zrpc_client_open parses the URL too; checking here first gives
	 * the caller nng's reason in a message of ours. */
	if ((rv = nng_url_parse(&parsed, url)) != 0) {
		backend_error(error, error_len, "%s: invalid URL (%s)", url,
		    nng_strerror(rv));
		return -1;
	}
	nng_url_free(parsed);
	if ((remote->url = strdup(url)) == NULL) {
		backend_error(error, error_len, "%s: out of memory", url);
		return -1;
	}
	/* nng's parser is lenient ("foo://bar" passes); the client's
	 * dialer knows the transports and their address forms. */
	status = zrpc_client_open(&remote->client, url,
	    &(zrpc_client_opts) { .connect_timeout_ms = connect_timeout_ms });
	if (!zrpc_status_is_ok(&status)) {
		const char *why = status.message;
		size_t      n   = strlen(url);

		/* The runtime's message starts with the URL too. */
		if (strncmp(why, url, n) == 0 &&
		    strncmp(why + n, ": ", 2) == 0) {
			why += n + 2;
		}
		backend_error(error, error_len, "%s: %s (%s)", url,
		    status.code == ZRPC_INVALID_ARGUMENT
		        ? "invalid URL"
		        : "cannot open a client",
		    why);
		free(remote->url);
		remote->url = NULL;
		return -1;
	}
	backends->n_remotes++;
	return 0;
}

int
zos_backends_create(const struct zos_backends_config *config,
    struct zos_backends **out, char *error, size_t error_len)
{
	const struct zos_backends_config defaults = { 0 };
	struct zos_backends             *backends;

	*out = NULL;
	if (config == NULL) {
		config = &defaults;
	}
	if (!(config->echo_fail_rate >= 0.0 &&
	        config->echo_fail_rate <= 1.0)) {
		backend_error(error, error_len,
		    "echo failure rate %g: not in [0, 1]",
		    config->echo_fail_rate);
		return -1;
	}
	if (config->n_urls > 0 && config->urls == NULL) {
		backend_error(
		    error, error_len, "%zu URLs but no list", config->n_urls);
		return -1;
	}
	if ((backends = calloc(1, sizeof(*backends))) == NULL) {
		backend_error(error, error_len, "out of memory");
		return -1;
	}
	backends->echo_delay_ms  = config->echo_delay_ms;
	backends->echo_fail_rate = config->echo_fail_rate;
	backends->echo_seed      = config->echo_seed;
	atomic_init(&backends->echo_calls, 0);
	if (config->n_urls > 0) {
		backends->remotes =
		    calloc(config->n_urls, sizeof(backends->remotes[0]));
		if (backends->remotes == NULL) {
			backend_error(error, error_len, "out of memory");
			goto fail;
		}
	}
	for (size_t i = 0; i < config->n_urls; i++) {
		const char *url = config->urls[i];

		if (url == NULL) {
			backend_error(error, error_len, "URL %zu is NULL", i);
			goto fail;
		}
		/* Built-in names may come along with a routing table's
		 * models; they need no client. */
		if (backend_is_builtin(url) ||
		    backend_find_remote(backends, url) != NULL) {
			continue;
		}
		if (backend_add_remote(backends, url,
		        config->connect_timeout_ms != 0
		            ? config->connect_timeout_ms
		            : ZOS_BACKEND_CONNECT_TIMEOUT_MS,
		        error, error_len) != 0) {
			goto fail;
		}
	}
	*out = backends;
	return 0;

fail:
	zos_backends_destroy(backends);
	return -1;
}

void
zos_backends_destroy(struct zos_backends *backends)
{
	if (backends == NULL) {
		return;
	}
	for (size_t i = 0; i < backends->n_remotes; i++) {
		zrpc_client_close(backends->remotes[i].client);
		free(backends->remotes[i].url);
	}
	free(backends->remotes);
	free(backends);
}

/* The splitmix64 output for STATE (the state already advanced). */
static uint64_t
backend_splitmix64(uint64_t state)
{
	uint64_t z = state;

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

/*
 * Draws the next echo call's number and says whether it fails: output N of
 * the splitmix64 sequence seeded with echo_seed (the state advances by the
 * golden gamma per output), as 53 bits of fraction, against the rate. A
 * rate of 0 never fails and a rate of 1 always does.
 */
static bool
backend_echo_fails(struct zos_backends *backends)
{
	uint64_t n = atomic_fetch_add_explicit(
	    &backends->echo_calls, 1, memory_order_relaxed);
	uint64_t state =
	    backends->echo_seed + (n + 1) * UINT64_C(0x9e3779b97f4a7c15);
	double fraction =
	    (double) (backend_splitmix64(state) >> 11) * 0x1.0p-53;

	return fraction < backends->echo_fail_rate;
}

/*
 * Sleeps DELAY_MS, but at most TIMEOUT_MS; returns false when the timeout
 * cut the sleep short. An absolute monotonic deadline makes a signal's
 * interruption harmless.
 */
static bool
backend_sleep(uint32_t delay_ms, uint32_t timeout_ms)
{
	uint32_t        ms = delay_ms <= timeout_ms ? delay_ms : timeout_ms;
	struct timespec until;

	if (ms == 0) {
		return delay_ms <= timeout_ms;
	}
	until = zrpc_timespec_after_ms(CLOCK_MONOTONIC, (uint32_t) ms);
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL) ==
	    EINTR) { }
	return delay_ms <= timeout_ms;
}

/*
 * The length of PROMPT kept for MAX_TOKENS: all of it for 0, otherwise up
 * to the end of its MAX_TOKENS-th whitespace-separated word.
 */
static size_t
backend_prompt_words(const char *prompt, uint32_t max_tokens)
{
	const char *p = prompt, *end = prompt;

	if (max_tokens == 0) {
		return strlen(prompt);
	}
	for (uint32_t words = 0; words < max_tokens; words++) {
		p += strspn(p, BACKEND_SPACE);
		if (*p == '\0') {
			break;
		}
		p += strcspn(p, BACKEND_SPACE);
		end = p;
	}
	return (size_t) (end - prompt);
}

/* The built-in echo model: "[MODEL] PROMPT", see backend.h. */
static zrpc_status
backend_echo(struct zos_backends *backends, const char *model,
    const char *prompt, uint32_t max_tokens, uint32_t timeout_ms,
    char **out_text)
{
	size_t model_len  = strlen(model);
	size_t prompt_len = backend_prompt_words(prompt, max_tokens);
	size_t len        = model_len + 3 + prompt_len; /* "[" "] " */
	char  *text;

	if (backend_echo_fails(backends)) {
		return zrpc_status_make(
		    ZRPC_UNAVAILABLE, "%s: simulated failure", model);
	}
	if (!backend_sleep(backends->echo_delay_ms, timeout_ms)) {
		return zrpc_status_make(ZRPC_DEADLINE_EXCEEDED,
		    "%s: no answer within %u ms (delay %u ms)", model,
		    (unsigned) timeout_ms, (unsigned) backends->echo_delay_ms);
	}
	if (len > ZOS_BACKEND_TEXT_MAX) {
		return zrpc_status_make(ZRPC_RESOURCE_EXHAUSTED,
		    "%s: text of %zu bytes is over the %u-byte limit", model,
		    len, (unsigned) ZOS_BACKEND_TEXT_MAX);
	}
	if ((text = malloc(len + 1)) == NULL) {
		return zrpc_status_make(
		    ZRPC_RESOURCE_EXHAUSTED, "%s: out of memory", model);
	}
	text[0] = '[';
	memcpy(text + 1, model, model_len);
	memcpy(text + 1 + model_len, "] ", 2);
	memcpy(text + 3 + model_len, prompt, prompt_len);
	text[len] = '\0';
	*out_text = text;
	return zrpc_status_ok();
}

/*
 * A remote model: one Generate call through the URL's shared client, with
 * CONTEXT's fields (those set) as its metadata.
 */
static zrpc_status
backend_remote_generate(struct backend_remote *remote,
    const struct zos_backend_context *context, const char *prompt,
    uint32_t max_tokens, uint32_t timeout_ms, char **out_text)
{
	Zos__V1__GenerateRequest   request = ZOS__V1__GENERATE_REQUEST__INIT;
	Zos__V1__GenerateResponse *reply   = NULL;
	struct zrpc_metadata_entry metadata[3];
	zrpc_call_opts             opts = { .timeout_ms = timeout_ms };
	zrpc_status                status;
	size_t                     len;

	if (context != NULL) {
		const struct zrpc_metadata_entry given[3] = {
			{ "x-request-id", context->request_id },
			{ "traceparent", context->traceparent },
			{ "tracestate", context->tracestate },
		};

		for (size_t i = 0; i < 3; i++) {
			if (given[i].value != NULL) {
				metadata[opts.n_metadata++] = given[i];
			}
		}
		opts.metadata = metadata;
	}

	/* The server knows itself by URL only: that is the model name. */
	request.model      = remote->url;
	request.prompt     = (char *) prompt;
	request.max_tokens = max_tokens;

	status = zos_v1_model_backend_generate(
	    remote->client, &request, &reply, &opts);
	if (!zrpc_status_is_ok(&status)) {
		return zrpc_status_make(
		    status.code, "%s: %s", remote->url, status.message);
	}
	len = strlen(reply->text);
	if (len > ZOS_BACKEND_TEXT_MAX) {
		status = zrpc_status_make(ZRPC_RESOURCE_EXHAUSTED,
		    "%s: text of %zu bytes is over the %u-byte limit",
		    remote->url, len, (unsigned) ZOS_BACKEND_TEXT_MAX);
	} else if ((*out_text = strdup(reply->text)) == NULL) {
		status = zrpc_status_make(
		    ZRPC_RESOURCE_EXHAUSTED, "%s: out of memory", remote->url);
	}
	zos__v1__generate_response__free_unpacked(reply, NULL);
	return status;
}

zrpc_status
zos_backends_generate(struct zos_backends *backends, const char *model,
    const char *prompt, uint32_t max_tokens, uint32_t timeout_ms,
    char **out_text)
{
	return zos_backends_generate_for(
	    backends, NULL, model, prompt, max_tokens, timeout_ms, out_text);
}

zrpc_status
zos_backends_generate_for(struct zos_backends *backends,
    const struct zos_backend_context *context, const char *model,
    const char *prompt, uint32_t max_tokens, uint32_t timeout_ms,
    char **out_text)
{
	struct backend_remote *remote;

	if (out_text == NULL) {
		return zrpc_status_make(
		    ZRPC_INVALID_ARGUMENT, "no place for the text");
	}
	*out_text = NULL;
	if (backends == NULL || model == NULL) {
		return zrpc_status_make(
		    ZRPC_INVALID_ARGUMENT, "no backend set or no model");
	}
	if (timeout_ms == 0) {
		return zrpc_status_make(ZRPC_INVALID_ARGUMENT,
		    "%s: a timeout of 0 ms leaves no time to answer", model);
	}
	if (prompt == NULL) {
		prompt = "";
	}
	if (backend_is_builtin(model)) {
		return backend_echo(
		    backends, model, prompt, max_tokens, timeout_ms, out_text);
	}
	if ((remote = backend_find_remote(backends, model)) == NULL) {
		return zrpc_status_make(
		    ZRPC_UNAVAILABLE, "no backend for model %s", model);
	}
	return backend_remote_generate(
	    remote, context, prompt, max_tokens, timeout_ms, out_text);
}
