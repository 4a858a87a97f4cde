/*
 * zos-model-backend: a zos.v1.ModelBackend server that zosd can send
 * prompts to (--backend TASK=URL), and a worked example of a zrpc service
 * written with the generated server stubs. Read it top to bottom:
 *
 *   1. The service's state is one struct that main owns (no globals).
 *      Handlers run on many threads at once, so what they change is an
 *      atomic; what they only read is set before the server starts.
 *   2. One handler per method, with the typed signature that
 *      protoc-gen-zrpc emits in zos.zrpc.h; it finds the state with
 *      zrpc_call_service_ctx and takes the reply's memory from the call's
 *      arena (zrpc_call_alloc), which the runtime frees after sending.
 *   3. main fills the generated handler table (a handler that may block,
 *      here by sleeping, is marked so and runs on the worker pool) and
 *      registers it, listens, starts, and prints "listening on URL".
 *   4. SIGINT and SIGTERM are blocked before any thread exists and taken
 *      with sigwait: no signal handler, no global flag. Then a graceful
 *      stop lets calls in flight finish.
 *
 * Each Generate call writes one line to stderr with the caller's request
 * id and trace context, as a service that wants its logs joined with its
 * callers' would (--quiet turns it off):
 *
 *   zos-model-backend: generate request_id=R traceparent=00-...-01
 *
 * The runtime has checked the traceparent (zrpc_call_traceparent is NULL
 * unless it is valid W3C trace context, "-" is written then); the request
 * id is the caller's text, so bytes outside printable ASCII are written
 * as '?' and a line is always one line.
 *
 * The model itself is a stand-in for testing zosd: it answers "PREFIX
 * PROMPT" (PREFIX is "[MODEL]", the request's model name, unless --prefix
 * says otherwise), keeping only the prompt's first max_tokens words when
 * max_tokens > 0; it can pause before answering (a call whose deadline
 * comes sooner fails at once) and fail on purpose.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <protobuf-c/protobuf-c.h>

#include "zos/v1/zos.zrpc.h"
#include "zrpc/clock.h"
#include "zrpc/server.h"

#define MODEL_BACKEND_DEFAULT_LISTEN "tcp://127.0.0.1:7500"
#define MODEL_BACKEND_MAX_LISTENERS 16
#define MODEL_BACKEND_GRACE_MS 5000 /* for calls in flight at a stop */

/* Step 1: the service's state, reached through the ctx pointer. */
struct model_backend {
	/* From the flags; read-only once the server has started. */
	uint32_t    delay_ms;   /* pause before answering */
	uint64_t    fail_first; /* calls 1..fail_first fail */
	double      fail_rate;  /* then this fraction of calls fails */
	const char *prefix;     /* NULL: "[MODEL]" */
	bool        quiet;      /* no line per call */
	/* Calls so far; every handler thread counts here. */
	atomic_uint_fast64_t calls;
};

/* splitmix64: a fixed sequence, so --fail-rate runs are repeatable. */
static double
model_backend_draw(uint64_t n)
{
	uint64_t z = (n + 1) * UINT64_C(0x9e3779b97f4a7c15);

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	z = z ^ (z >> 31);
	return (double) (z >> 11) * 0x1.0p-53; /* in [0, 1) */
}

/* Sleeps MS milliseconds, whatever signals arrive meanwhile. */
static void
model_backend_sleep(uint32_t ms)
{
	struct timespec until;

	until = zrpc_timespec_after_ms(CLOCK_MONOTONIC, (uint32_t) ms);
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL) ==
	    EINTR) { }
}

/* The length of PROMPT up to the end of its MAX_WORDS-th word (0: all). */
static size_t
model_backend_words(const char *prompt, uint32_t max_words)
{
	const char *p = prompt, *end = prompt;

	if (max_words == 0) {
		return strlen(prompt);
	}
	for (uint32_t words = 0; words < max_words; words++) {
		p += strspn(p, " \t\n\r\f\v");
		if (*p == '\0') {
			break;
		}
		p += strcspn(p, " \t\n\r\f\v");
		end = p;
	}
	return (size_t) (end - prompt);
}

/* Copies TEXT into OUT (LEN bytes) with anything but printable ASCII as
 * '?', so that a caller's bytes cannot break or forge a log line. */
static void
model_backend_printable(const char *text, char *out, size_t len)
{
	size_t n = 0;

	for (; text[n] != '\0' && n + 1 < len; n++) {
		out[n] = text[n] >= 0x20 && text[n] <= 0x7e ? text[n] : '?';
	}
	out[n] = '\0';
}

/* The call's line: its request id and traceparent ("-" for none), in
 * one write so that lines from many threads never interleave. */
static void
model_backend_log_call(zrpc_call *call)
{
	const char *traceparent = zrpc_call_traceparent(call);
	char        request_id[129], line[256];
	int         n;

	model_backend_printable(
	    zrpc_call_request_id(call), request_id, sizeof(request_id));
	n = snprintf(line, sizeof(line),
	    "zos-model-backend: generate request_id=%s traceparent=%s\n",
	    request_id, traceparent != NULL ? traceparent : "-");
	if (n > 0) {
		fwrite(line, 1,
		    (size_t) n < sizeof(line) ? (size_t) n : sizeof(line) - 1,
		    stderr);
	}
}

/*
 * Step 2: the handler for /zos.v1.ModelBackend/Generate. REQUEST belongs
 * to the runtime; REPLY is initialised and ours to fill, with memory from
 * the call's arena. A non-OK status becomes the call's status.
 */
static zrpc_status
model_backend_generate(zrpc_call   *call,
    const Zos__V1__GenerateRequest *request, Zos__V1__GenerateResponse *reply)
{
	struct model_backend *backend = zrpc_call_service_ctx(call);
	uint64_t              n       = atomic_fetch_add(&backend->calls, 1);
	const char           *prefix  = backend->prefix;
	size_t                prefix_len, prompt_len;

	if (!backend->quiet) {
		model_backend_log_call(call);
	}
	if (n < backend->fail_first) {
		return zrpc_status_make(ZRPC_UNAVAILABLE,
		    "simulated failure (call %llu of the first %llu)",
		    (unsigned long long) n + 1,
		    (unsigned long long) backend->fail_first);
	}
	if (model_backend_draw(n) < backend->fail_rate) {
		return zrpc_status_make(ZRPC_UNAVAILABLE,
		    "simulated failure (rate %g)", backend->fail_rate);
	}

	/*
	 * Honour the caller's deadline (the runtime turns the call's
	 * timeout into one on receipt). A call that would outlive it fails
	 * at once instead of after a wait nobody listens to: the caller
	 * hears why, and the worker thread is free again.
	 */
	if (backend->delay_ms > 0) {
		int64_t left = zrpc_call_remaining_ms(call); /* -1: none */

		if (left >= 0 && left < (int64_t) backend->delay_ms) {
			return zrpc_status_make(ZRPC_DEADLINE_EXCEEDED,
			    "the deadline (%lld ms away) is sooner than the "
			    "%u ms delay",
			    (long long) left, (unsigned) backend->delay_ms);
		}
		model_backend_sleep(backend->delay_ms);
	}

	/* "PREFIX PROMPT", built in the call's arena. */
	if (prefix == NULL) {
		char *bracketed =
		    zrpc_call_alloc(call, strlen(request->model) + 3);

		if (bracketed == NULL) {
			return zrpc_status_make(
			    ZRPC_RESOURCE_EXHAUSTED, "out of memory");
		}
		sprintf(bracketed, "[%s]", request->model);
		prefix = bracketed;
	}
	prefix_len = strlen(prefix);
	prompt_len = model_backend_words(request->prompt, request->max_tokens);
	reply->text = zrpc_call_alloc(call, prefix_len + 1 + prompt_len + 1);
	if (reply->text == NULL) {
		return zrpc_status_make(
		    ZRPC_RESOURCE_EXHAUSTED, "out of memory");
	}
	memcpy(reply->text, prefix, prefix_len);
	reply->text[prefix_len] = ' ';
	memcpy(reply->text + prefix_len + 1, request->prompt, prompt_len);
	return zrpc_status_ok(); /* the arena was zeroed: text ends in NUL */
}

static const char model_backend_usage_text[] =
    "usage: zos-model-backend [--listen URL]... [--delay-ms N]\n"
    "                         [--fail-first N] [--fail-rate R]\n"
    "                         [--prefix TEXT] [--quiet] [--version] "
    "[--help]\n";

static void
model_backend_help(FILE *out)
{
	fputs("zos-model-backend - a zos.v1.ModelBackend server for testing "
	      "zosd\n\n",
	    out);
	fputs(model_backend_usage_text, out);
	fputs("\n"
	      "Answers /zos.v1.ModelBackend/Generate with \"PREFIX PROMPT\", "
	      "keeping\n"
	      "only the prompt's first max_tokens words when max_tokens > 0.\n"
	      "\n"
	      "  --listen URL     listen on URL; repeatable; any nng URL\n"
	      "                   [default " MODEL_BACKEND_DEFAULT_LISTEN "]\n"
	      "  --delay-ms N     pause N ms before answering; a call whose "
	      "deadline is\n"
	      "                   sooner fails at once with DEADLINE_EXCEEDED "
	      "[default 0]\n"
	      "  --fail-first N   fail the first N calls with UNAVAILABLE, "
	      "then\n"
	      "                   answer (for retry tests) [default 0]\n"
	      "  --fail-rate R    fail this fraction of the later calls, 0 "
	      "to 1, with\n"
	      "                   UNAVAILABLE; a fixed sequence, so runs "
	      "repeat [default 0]\n"
	      "  --prefix TEXT    start every answer with TEXT [default "
	      "\"[MODEL]\",\n"
	      "                   the model name of the request in brackets]\n"
	      "  --quiet          no line per call (by default each Generate "
	      "writes\n"
	      "                   'generate request_id=R traceparent=T' to "
	      "stderr)\n"
	      "  --version        print the version and exit\n"
	      "  --help           print this help and exit\n"
	      "\n"
	      "When ready it writes 'listening on URL' for each listener to "
	      "stderr.\n"
	      "SIGINT or SIGTERM stops it: calls in flight finish first.\n"
	      "Exit status: 0 after a clean stop, 1 when it cannot start (an "
	      "address\n"
	      "in use, say), 2 for bad usage.\n",
	    out);
}

enum model_backend_parsed {
	MODEL_BACKEND_RUN,
	MODEL_BACKEND_EXIT,  /* --help or --version answered */
	MODEL_BACKEND_USAGE, /* bad usage, reported on stderr */
};

static enum model_backend_parsed model_backend_bad(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/* Reports a bad flag (a printf-style message) and the usage on stderr. */
static enum model_backend_parsed
model_backend_bad(const char *fmt, ...)
{
	va_list ap;

	fputs("zos-model-backend: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n", stderr);
	fputs(model_backend_usage_text, stderr);
	return MODEL_BACKEND_USAGE;
}

/* A whole decimal number no larger than MAX. */
static bool
model_backend_number(const char *text, uint64_t max, uint64_t *out)
{
	char              *end;
	unsigned long long v;

	if (text[0] < '0' || text[0] > '9') {
		return false;
	}
	errno = 0;
	v     = strtoull(text, &end, 10);
	if (errno != 0 || *end != '\0' || v > max) {
		return false;
	}
	*out = v;
	return true;
}

/* Reads the flags into BACKEND and URLS (pointers into ARGV). */
static enum model_backend_parsed
model_backend_parse(struct model_backend *backend, const char **urls,
    size_t *n_urls, int argc, char **argv)
{
	enum {
		OPT_LISTEN = 256,
		OPT_DELAY,
		OPT_FAIL_FIRST,
		OPT_FAIL_RATE,
		OPT_PREFIX,
		OPT_QUIET,
		OPT_VERSION,
		OPT_HELP
	};
	const struct option options[] = {
		{ "listen", required_argument, NULL, OPT_LISTEN },
		{ "delay-ms", required_argument, NULL, OPT_DELAY },
		{ "fail-first", required_argument, NULL, OPT_FAIL_FIRST },
		{ "fail-rate", required_argument, NULL, OPT_FAIL_RATE },
		{ "prefix", required_argument, NULL, OPT_PREFIX },
		{ "quiet", no_argument, NULL, OPT_QUIET },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ "help", no_argument, NULL, OPT_HELP },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t v;
	char    *end;
	int      c;

	opterr = 0; /* we report errors ourselves */
	while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (c) {
		case OPT_LISTEN:
			if (*n_urls == MODEL_BACKEND_MAX_LISTENERS) {
				return model_backend_bad(
				    "--listen: at most %d listeners",
				    MODEL_BACKEND_MAX_LISTENERS);
			}
			urls[(*n_urls)++] = optarg;
			break;
		case OPT_DELAY:
			if (!model_backend_number(optarg, 3600000, &v)) {
				return model_backend_bad(
				    "--delay-ms wants 0 to 3600000, not '%s'",
				    optarg);
			}
			backend->delay_ms = (uint32_t) v;
			break;
		case OPT_FAIL_FIRST:
			if (!model_backend_number(optarg, UINT64_MAX, &v)) {
				return model_backend_bad(
				    "--fail-first wants a count, not '%s'",
				    optarg);
			}
			backend->fail_first = v;
			break;
		case OPT_FAIL_RATE:
			errno              = 0;
			backend->fail_rate = strtod(optarg, &end);
			if (errno != 0 || end == optarg || *end != '\0' ||
			    !(backend->fail_rate >= 0.0 &&
			        backend->fail_rate <= 1.0)) {
				return model_backend_bad(
				    "--fail-rate wants 0 to 1, not '%s'",
				    optarg);
			}
			break;
		case OPT_PREFIX:
			backend->prefix = optarg;
			break;
		case OPT_QUIET:
			backend->quiet = true;
			break;
		case OPT_VERSION:
			printf(
			    "zos-model-backend %s (nng %s, protobuf-c %s)\n",
			    ZOS_VERSION, nng_version(), protobuf_c_version());
			return MODEL_BACKEND_EXIT;
		case OPT_HELP:
			model_backend_help(stdout);
			return MODEL_BACKEND_EXIT;
		default:
			if (optopt != 0) { /* a known flag, no value */
				return model_backend_bad(
				    "%s needs a value", argv[optind - 1]);
			}
			return model_backend_bad(
			    "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc) {
		return model_backend_bad(
		    "unexpected argument '%s'", argv[optind]);
	}
	if (*n_urls == 0) {
		urls[(*n_urls)++] = MODEL_BACKEND_DEFAULT_LISTEN;
	}
	return MODEL_BACKEND_RUN;
}

int
main(int argc, char **argv)
{
	struct model_backend backend = { 0 };
	const char          *urls[MODEL_BACKEND_MAX_LISTENERS];
	size_t               n_urls = 0;
	zrpc_server         *server = NULL;
	zrpc_status          status;
	sigset_t             signals;
	int                  sig, exit_code = 1;

	atomic_init(&backend.calls, 0);
	switch (model_backend_parse(&backend, urls, &n_urls, argc, argv)) {
	case MODEL_BACKEND_RUN:
		break;
	case MODEL_BACKEND_EXIT:
		return 0;
	case MODEL_BACKEND_USAGE:
		return 2;
	}

	/* Step 4, first half: before any thread exists, so that every
	 * thread inherits the mask and only sigwait sees the signals. */
	sigemptyset(&signals);
	sigaddset(&signals, SIGINT);
	sigaddset(&signals, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &signals, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* Step 3: NULL config = default workers, limits and no log. */
	status = zrpc_server_create(&server, NULL);
	if (!zrpc_status_is_ok(&status)) {
		fprintf(stderr, "zos-model-backend: %s\n", status.message);
		goto out;
	}
	const struct zos_v1_model_backend_handlers handlers = {
		.generate = model_backend_generate,
		/* It sleeps only with --delay-ms; otherwise it is quick
		 * enough for nng's completion thread. */
		.generate_blocking = backend.delay_ms > 0,
	};
	status = zos_v1_model_backend_register(server, &handlers, &backend);
	if (!zrpc_status_is_ok(&status)) {
		fprintf(stderr, "zos-model-backend: %s\n", status.message);
		goto out;
	}
	for (size_t i = 0; i < n_urls; i++) {
		/* "cannot listen on URL: address already in use" */
		status = zrpc_server_listen(server, urls[i]);
		if (!zrpc_status_is_ok(&status)) {
			fprintf(
			    stderr, "zos-model-backend: %s\n", status.message);
			goto out;
		}
	}
	status = zrpc_server_start(server);
	if (!zrpc_status_is_ok(&status)) {
		fprintf(stderr, "zos-model-backend: %s\n", status.message);
		goto out;
	}
	/* On stderr, as zosd logs it: scripts wait for these lines. */
	for (size_t i = 0; i < n_urls; i++) {
		fprintf(stderr, "zos-model-backend: listening on %s\n",
		    zrpc_server_listener_url(server, i));
	}

	/* Step 4, second half: wait for SIGINT or SIGTERM, then drain. */
	if (sigwait(&signals, &sig) != 0) {
		sig = SIGTERM;
	}
	fprintf(stderr, "zos-model-backend: received %s; stopping\n",
	    sig == SIGINT ? "SIGINT" : "SIGTERM");
	if (zrpc_server_stop(server, MODEL_BACKEND_GRACE_MS) > 0) {
		fprintf(stderr,
		    "zos-model-backend: calls still running after "
		    "%d ms\n",
		    MODEL_BACKEND_GRACE_MS);
	}
	fprintf(stderr, "zos-model-backend: stopped after %llu calls\n",
	    (unsigned long long) atomic_load(&backend.calls));
	exit_code = 0;

out:
	zrpc_server_destroy(server);
	return exit_code;
}
