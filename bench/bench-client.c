//
// zos-bench-client: a closed-loop load driver for zrpc servers and for the
// zos-echo baseline.
//
// C callers share one req0 socket (one connection); each caller is an nng
// context and an aio driven as a small state machine: send the request,
// receive the reply, record the latency, send the next. Nothing blocks and
// no thread is created per caller, so the driver costs little next to the
// server it measures. Every caller sends the same pre-packed
// zrpc.v1.Request, so zosd and zos-echo see identical bytes.
//
// Latencies go into a log-linear histogram per caller (64 buckets per
// power of two, under 1.6% error, a fixed 18 KiB each), merged when the run
// ends; memory does not grow with the number of calls. A caller's state is
// touched only by its own aio callback, which nng runs one at a time, so
// callers need no lock; the count of callers still running and the number
// of calls claimed (--requests) are the only shared state.
//
// A reply identical to the request came from an echo server and counts as
// a success; any other reply is decoded as a zrpc.v1.Response and counted
// by status code.
//
// The req0 protocol would re-send a request after NNG_OPT_REQ_RESENDTIME;
// a benchmark call must run exactly once, so re-sending is turned off and
// each call has its own timeout instead.
//

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "zrpc/v1/envelope.pb-c.h"

#define BENCH_DEFAULT_METHOD "/zrpc.v1.Health/Check"
#define BENCH_DEFAULT_TIMEOUT_MS 5000
#define BENCH_MAX_CONCURRENCY 1024
#define BENCH_MAX_PAYLOAD (4u << 20)

// Histogram: values below 2^BENCH_SUB_BITS ns are exact; above, each power
// of two is split into 2^BENCH_SUB_BITS buckets. Values are capped at
// 2^BENCH_MAX_EXPONENT ns (about 18 minutes).
#define BENCH_SUB_BITS 6
#define BENCH_SUB_COUNT (1u << BENCH_SUB_BITS)
#define BENCH_MAX_EXPONENT 40
#define BENCH_BUCKETS \
	((BENCH_MAX_EXPONENT - BENCH_SUB_BITS + 1) * BENCH_SUB_COUNT)

// Non-OK codes are counted per gRPC code; anything above 16 in the last.
#define BENCH_CODES 18

static const char *const bench_code_names[BENCH_CODES] = {
	"OK",
	"CANCELLED",
	"UNKNOWN",
	"INVALID_ARGUMENT",
	"DEADLINE_EXCEEDED",
	"NOT_FOUND",
	"ALREADY_EXISTS",
	"PERMISSION_DENIED",
	"RESOURCE_EXHAUSTED",
	"FAILED_PRECONDITION",
	"ABORTED",
	"OUT_OF_RANGE",
	"UNIMPLEMENTED",
	"INTERNAL",
	"UNAVAILABLE",
	"DATA_LOSS",
	"UNAUTHENTICATED",
	"OTHER",
};

struct bench_options {
	const char *url;
	const char *method;
	const char *payload_hex;
	size_t      concurrency;
	double      duration_s; // 0 when --requests is used
	uint64_t    requests;   // 0 when --duration is used
	int         timeout_ms;
	bool        json;
	bool        print_reply;   // write the reply payload as hex (1 call)
	bool        session_cycle; // each caller walks its own zos session
};

struct bench_histogram {
	uint64_t counts[BENCH_BUCKETS];
	uint64_t total;
	uint64_t sum_ns;
	uint64_t max_ns;
};

// What one caller saw. Merged into a total when the run ends.
struct bench_tally {
	struct bench_histogram latency;
	uint64_t               replies; // every reply received
	uint64_t               echoed;  // replies equal to the request
	uint64_t               codes[BENCH_CODES]; // decoded replies
	uint64_t               bad_replies;        // neither echo nor Response
	uint64_t               transport_errors;
};

enum bench_state {
	BENCH_SEND,
	BENCH_RECV,
};

struct bench_run;

// One caller: touched only by its aio callback once started.
struct bench_caller {
	struct bench_run  *run;
	nng_ctx            ctx;
	nng_aio           *aio;
	enum bench_state   state;
	uint64_t           started_ns; // when the current call was sent
	struct bench_tally tally;
	nng_msg           *cycle[3]; // --session-cycle: its Transitions
	unsigned           next;     // --session-cycle: the next of them
};

struct bench_run {
	const struct bench_options *opts;
	nng_socket                  sock;
	nng_msg                    *request; // template, duplicated per call
	uint64_t                    deadline_ns; // --duration mode
	atomic_uint_fast64_t        claimed;     // --requests mode
	pthread_mutex_t             lock;
	pthread_cond_t              all_done;
	size_t                      running; // guarded by: lock
	struct bench_caller        *callers;
	size_t                      ncallers;
};

static uint64_t
bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec);
}

static size_t
bench_histogram_index(uint64_t ns)
{
	unsigned exponent;

	if (ns < BENCH_SUB_COUNT) {
		return ((size_t) ns);
	}
	if (ns >= (UINT64_C(1) << BENCH_MAX_EXPONENT)) {
		ns = (UINT64_C(1) << BENCH_MAX_EXPONENT) - 1;
	}
	exponent = 63u - (unsigned) __builtin_clzll(ns);
	return ((size_t) (exponent - BENCH_SUB_BITS + 1) * BENCH_SUB_COUNT +
	    ((ns >> (exponent - BENCH_SUB_BITS)) & (BENCH_SUB_COUNT - 1)));
}

// bench_histogram_value is the middle of bucket index's range.
static uint64_t
bench_histogram_value(size_t index)
{
	unsigned shift;
	uint64_t low;

	if (index < BENCH_SUB_COUNT) {
		return (index);
	}
	shift = (unsigned) (index / BENCH_SUB_COUNT) - 1;
	low = (uint64_t) (BENCH_SUB_COUNT + index % BENCH_SUB_COUNT) << shift;
	return (low + ((UINT64_C(1) << shift) >> 1));
}

static void
bench_histogram_add(struct bench_histogram *h, uint64_t ns)
{
	h->counts[bench_histogram_index(ns)]++;
	h->total++;
	h->sum_ns += ns;
	if (ns > h->max_ns) {
		h->max_ns = ns;
	}
}

// bench_histogram_percentile returns the value at or below which a
// fraction q of the samples lie, or 0 for an empty histogram.
static uint64_t
bench_histogram_percentile(const struct bench_histogram *h, double q)
{
	uint64_t rank;
	uint64_t seen = 0;

	if (h->total == 0) {
		return (0);
	}
	rank = (uint64_t) (q * (double) h->total + 0.5);
	if (rank < 1) {
		rank = 1;
	}
	for (size_t i = 0; i < BENCH_BUCKETS; i++) {
		seen += h->counts[i];
		if (seen >= rank) {
			uint64_t value = bench_histogram_value(i);
			return (value < h->max_ns ? value : h->max_ns);
		}
	}
	return (h->max_ns);
}

static void
bench_tally_merge(struct bench_tally *into, const struct bench_tally *from)
{
	for (size_t i = 0; i < BENCH_BUCKETS; i++) {
		into->latency.counts[i] += from->latency.counts[i];
	}
	into->latency.total += from->latency.total;
	into->latency.sum_ns += from->latency.sum_ns;
	if (from->latency.max_ns > into->latency.max_ns) {
		into->latency.max_ns = from->latency.max_ns;
	}
	into->replies += from->replies;
	into->echoed += from->echoed;
	for (size_t i = 0; i < BENCH_CODES; i++) {
		into->codes[i] += from->codes[i];
	}
	into->bad_replies += from->bad_replies;
	into->transport_errors += from->transport_errors;
}

// bench_caller_finish marks the caller as done; the last one wakes main.
// Locking: takes run->lock.
static void
bench_caller_finish(struct bench_caller *c)
{
	struct bench_run *run = c->run;

	pthread_mutex_lock(&run->lock);
	if (--run->running == 0) {
		pthread_cond_signal(&run->all_done);
	}
	pthread_mutex_unlock(&run->lock);
}

// bench_caller_next sends the next request, or finishes the caller when
// the run is over.
static void
bench_caller_next(struct bench_caller *c)
{
	struct bench_run           *run  = c->run;
	const struct bench_options *opts = run->opts;
	nng_msg                    *msg;

	if (opts->requests > 0) {
		if (atomic_fetch_add(&run->claimed, 1) >= opts->requests) {
			bench_caller_finish(c);
			return;
		}
	} else if (bench_now_ns() >= run->deadline_ns) {
		bench_caller_finish(c);
		return;
	}
	if (nng_msg_dup(&msg,
	        opts->session_cycle ? c->cycle[c->next++ % 3]
	                            : run->request) != 0) {
		c->tally.transport_errors++;
		bench_caller_finish(c);
		return;
	}
	c->state = BENCH_SEND;
	nng_aio_set_msg(c->aio, msg);
	c->started_ns = bench_now_ns();
	nng_ctx_send(c->ctx, c->aio);
}

// bench_caller_count classifies one reply.
static void
bench_caller_count(struct bench_caller *c, nng_msg *reply)
{
	nng_msg            *request = c->run->request;
	size_t              len     = nng_msg_len(reply);
	const uint8_t      *body    = nng_msg_body(reply);
	Zrpc__V1__Response *response;

	c->tally.replies++;
	if (len == nng_msg_len(request) &&
	    memcmp(body, nng_msg_body(request), len) == 0) {
		c->tally.echoed++;
		return;
	}
	response = zrpc__v1__response__unpack(NULL, len, body);
	if (response == NULL) {
		c->tally.bad_replies++;
		return;
	}
	c->tally.codes[response->code < BENCH_CODES - 1 ? response->code
	                                                : BENCH_CODES - 1]++;
	if (c->run->opts->print_reply) {
		// Only with --requests 1 (checked at parse time): one caller
		// prints, no other thread writes stdout.
		for (size_t i = 0; i < response->payload.len; i++) {
			printf("%02x", response->payload.data[i]);
		}
		printf("\n");
	}
	zrpc__v1__response__free_unpacked(response, NULL);
}

static void
bench_caller_cb(void *arg)
{
	struct bench_caller *c  = arg;
	int                  rv = nng_aio_result(c->aio);
	nng_msg             *reply;
	uint64_t             elapsed;

	switch (c->state) {
	case BENCH_SEND:
		if (rv != 0) {
			nng_msg_free(nng_aio_get_msg(c->aio));
			nng_aio_set_msg(c->aio, NULL);
			c->tally.transport_errors++;
			if (rv == NNG_ECLOSED || rv == NNG_ECANCELED) {
				bench_caller_finish(c);
				return;
			}
			bench_caller_next(c);
			return;
		}
		c->state = BENCH_RECV;
		nng_ctx_recv(c->ctx, c->aio);
		return;
	case BENCH_RECV:
		if (rv != 0) {
			c->tally.transport_errors++;
			if (rv == NNG_ECLOSED || rv == NNG_ECANCELED) {
				bench_caller_finish(c);
				return;
			}
			bench_caller_next(c);
			return;
		}
		elapsed = bench_now_ns() - c->started_ns;
		reply   = nng_aio_get_msg(c->aio);
		nng_aio_set_msg(c->aio, NULL);
		bench_histogram_add(&c->tally.latency, elapsed);
		bench_caller_count(c, reply);
		nng_msg_free(reply);
		bench_caller_next(c);
		return;
	}
}

static int
bench_hex_digit(char ch)
{
	if (ch >= '0' && ch <= '9') {
		return (ch - '0');
	}
	if (ch >= 'a' && ch <= 'f') {
		return (ch - 'a' + 10);
	}
	if (ch >= 'A' && ch <= 'F') {
		return (ch - 'A' + 10);
	}
	return (-1);
}

// bench_request_build packs a zrpc.v1.Request for opts into a new message
// that the caller owns. Returns 0, or -1 with a message on stderr.
static int
bench_request_build(const struct bench_options *opts, nng_msg **out)
{
	Zrpc__V1__Request request = ZRPC__V1__REQUEST__INIT;
	size_t            hex_len = strlen(opts->payload_hex);
	uint8_t          *payload = NULL;
	nng_msg          *msg;
	size_t            size;
	int               rv;

	if (hex_len % 2 != 0 || hex_len / 2 > BENCH_MAX_PAYLOAD) {
		fprintf(stderr,
		    "zos-bench-client: --payload-hex wants an even number "
		    "of hex digits, at most %u bytes\n",
		    BENCH_MAX_PAYLOAD);
		return (-1);
	}
	if (hex_len > 0 && (payload = malloc(hex_len / 2)) == NULL) {
		fprintf(stderr, "zos-bench-client: out of memory\n");
		return (-1);
	}
	for (size_t i = 0; i < hex_len / 2; i++) {
		int high = bench_hex_digit(opts->payload_hex[2 * i]);
		int low  = bench_hex_digit(opts->payload_hex[2 * i + 1]);

		if (high < 0 || low < 0) {
			fprintf(stderr,
			    "zos-bench-client: --payload-hex: not a hex "
			    "digit at offset %zu\n",
			    2 * i);
			free(payload);
			return (-1);
		}
		payload[i] = (uint8_t) (high << 4 | low);
	}
	request.method       = (char *) opts->method;
	request.payload.data = payload;
	request.payload.len  = hex_len / 2;
	request.timeout_ms   = (uint32_t) opts->timeout_ms;

	size = zrpc__v1__request__get_packed_size(&request);
	if ((rv = nng_msg_alloc(&msg, size)) != 0) {
		fprintf(stderr, "zos-bench-client: %s\n", nng_strerror(rv));
		free(payload);
		return (-1);
	}
	zrpc__v1__request__pack(&request, nng_msg_body(msg));
	free(payload);
	*out = msg;
	return (0);
}

// bench_request_pack packs a zrpc.v1.Request for METHOD with PAYLOAD into
// a new message. Returns 0 or an nng error.
static int
bench_request_pack(const char *method, const uint8_t *payload, size_t len,
    int timeout_ms, nng_msg **out)
{
	Zrpc__V1__Request request = ZRPC__V1__REQUEST__INIT;
	int               rv;

	request.method       = (char *) method;
	request.payload.data = (uint8_t *) payload;
	request.payload.len  = len;
	request.timeout_ms   = (uint32_t) timeout_ms;
	if ((rv = nng_msg_alloc(
	         out, zrpc__v1__request__get_packed_size(&request))) == 0) {
		zrpc__v1__request__pack(&request, nng_msg_body(*out));
	}
	return (rv);
}

// bench_session_setup starts a zos.v1 session for caller C (synchronously,
// on its own context) and builds its cycle of Transitions on it:
// ANALYZING, FEEDBACK_READY, AWAITING_SOLUTION, a loop of legal moves.
// Returns 0, or -1 with a message on stderr.
static int
bench_session_setup(struct bench_caller *c, int timeout_ms)
{
	static const uint8_t start[] = { 0x0a, 0x05, 'b', 'e', 'n', 'c', 'h' };
	static const uint8_t states[] = { 2, 3, 1 };
	Zrpc__V1__Response  *response = NULL;
	nng_aio             *aio      = NULL;
	nng_msg             *msg      = NULL;
	uint8_t              payload[64];
	size_t               id_len;
	int                  rv;

	if ((rv = nng_aio_alloc(&aio, NULL, NULL)) != 0 ||
	    (rv = bench_request_pack("/zos.v1.Session/Start", start,
	         sizeof(start), timeout_ms, &msg)) != 0) {
		goto fail;
	}
	nng_aio_set_timeout(aio, timeout_ms);
	nng_aio_set_msg(aio, msg);
	nng_ctx_send(c->ctx, aio);
	nng_aio_wait(aio);
	if ((rv = nng_aio_result(aio)) != 0) {
		nng_msg_free(msg);
		goto fail;
	}
	nng_ctx_recv(c->ctx, aio);
	nng_aio_wait(aio);
	if ((rv = nng_aio_result(aio)) != 0) {
		goto fail;
	}
	msg      = nng_aio_get_msg(aio);
	response = zrpc__v1__response__unpack(
	    NULL, nng_msg_len(msg), nng_msg_body(msg));
	nng_msg_free(msg);
	// ProofSession field 1, the id: 0a <len> <id>.
	if (response == NULL || response->code != 0 ||
	    response->payload.len < 2 || response->payload.data[0] != 0x0a ||
	    (id_len = response->payload.data[1]) + 2 > response->payload.len ||
	    id_len + 4 > sizeof(payload)) {
		fprintf(stderr, "zos-bench-client: Session/Start failed\n");
		zrpc__v1__response__free_unpacked(response, NULL);
		nng_aio_free(aio);
		return (-1);
	}
	memcpy(payload, response->payload.data, id_len + 2);
	zrpc__v1__response__free_unpacked(response, NULL);
	for (int i = 0; i < 3; i++) {
		payload[id_len + 2] = 0x10; // to_state, field 2, varint
		payload[id_len + 3] = states[i];
		if ((rv = bench_request_pack("/zos.v1.Session/Transition",
		         payload, id_len + 4, timeout_ms, &c->cycle[i])) !=
		    0) {
			goto fail;
		}
	}
	nng_aio_free(aio);
	return (0);

fail:
	fprintf(stderr, "zos-bench-client: session set-up: %s\n",
	    nng_strerror(rv));
	nng_aio_free(aio);
	return (-1);
}

// bench_run_stop closes the socket, frees every caller and the request.
// Safe on a partly set up run.
static void
bench_run_stop(struct bench_run *run)
{
	nng_close(run->sock);
	for (size_t i = 0; i < run->ncallers; i++) {
		nng_aio_free(run->callers[i].aio);
		for (int k = 0; k < 3; k++) {
			nng_msg_free(run->callers[i].cycle[k]);
		}
	}
	free(run->callers);
	run->callers  = NULL;
	run->ncallers = 0;
	if (run->request != NULL) {
		nng_msg_free(run->request);
		run->request = NULL;
	}
	pthread_cond_destroy(&run->all_done);
	pthread_mutex_destroy(&run->lock);
}

// bench_run_setup connects to the server and prepares the callers.
// Returns 0, or -1 with a message on stderr and nothing left to free.
static int
bench_run_setup(struct bench_run *run, const struct bench_options *opts)
{
	int rv;

	memset(run, 0, sizeof(*run));
	run->opts = opts;
	atomic_init(&run->claimed, 0);
	pthread_mutex_init(&run->lock, NULL);
	pthread_cond_init(&run->all_done, NULL);
	if (bench_request_build(opts, &run->request) != 0) {
		pthread_cond_destroy(&run->all_done);
		pthread_mutex_destroy(&run->lock);
		return (-1);
	}
	// run->sock is zeroed, an id nng_close rejects harmlessly, until
	// the socket is opened.
	run->callers = calloc(opts->concurrency, sizeof(run->callers[0]));
	if (run->callers == NULL) {
		rv = NNG_ENOMEM;
		goto fail;
	}
	if ((rv = nng_req0_open(&run->sock)) != 0) {
		goto fail;
	}
	if ((rv = nng_socket_set_ms(run->sock, NNG_OPT_REQ_RESENDTIME,
	         NNG_DURATION_INFINITE)) != 0) {
		goto fail;
	}
	for (size_t i = 0; i < opts->concurrency; i++) {
		struct bench_caller *c = &run->callers[i];

		c->run = run;
		if ((rv = nng_aio_alloc(&c->aio, bench_caller_cb, c)) != 0) {
			goto fail;
		}
		run->ncallers++;
		nng_aio_set_timeout(c->aio, opts->timeout_ms);
		if ((rv = nng_ctx_open(&c->ctx, run->sock)) != 0 ||
		    (rv = nng_ctx_set_ms(c->ctx, NNG_OPT_REQ_RESENDTIME,
		         NNG_DURATION_INFINITE)) != 0) {
			goto fail;
		}
	}
	// Dial synchronously: a server that is not there is an error now,
	// not a run of timeouts.
	if ((rv = nng_dial(run->sock, opts->url, NULL, 0)) != 0) {
		fprintf(stderr, "zos-bench-client: cannot connect to %s: %s\n",
		    opts->url, nng_strerror(rv));
		bench_run_stop(run);
		return (-1);
	}
	for (size_t i = 0; opts->session_cycle && i < run->ncallers; i++) {
		if (bench_session_setup(&run->callers[i], opts->timeout_ms) !=
		    0) {
			bench_run_stop(run);
			return (-1);
		}
	}
	return (0);

fail:
	fprintf(stderr, "zos-bench-client: %s\n", nng_strerror(rv));
	bench_run_stop(run);
	return (-1);
}

// bench_run_execute starts every caller and waits until all have
// finished. Returns the elapsed time in nanoseconds.
// Locking: takes run->lock.
static uint64_t
bench_run_execute(struct bench_run *run)
{
	uint64_t start = bench_now_ns();

	run->deadline_ns =
	    start + (uint64_t) (run->opts->duration_s * 1e9 + 0.5);
	pthread_mutex_lock(&run->lock);
	run->running = run->ncallers;
	pthread_mutex_unlock(&run->lock);
	for (size_t i = 0; i < run->ncallers; i++) {
		bench_caller_next(&run->callers[i]);
	}
	pthread_mutex_lock(&run->lock);
	while (run->running > 0) {
		pthread_cond_wait(&run->all_done, &run->lock);
	}
	pthread_mutex_unlock(&run->lock);
	return (bench_now_ns() - start);
}

static void
bench_report_text(const struct bench_options *opts,
    const struct bench_tally *t, double elapsed_s)
{
	const struct bench_histogram *h = &t->latency;

	printf("%s %s, %zu callers, %.2f s\n", opts->url, opts->method,
	    opts->concurrency, elapsed_s);
	printf("calls     %" PRIu64 " replies, %.1f calls/s\n", t->replies,
	    (double) t->replies / elapsed_s);
	printf("latency   p50 %.1f us  p90 %.1f us  p99 %.1f us  "
	       "p99.9 %.1f us  max %.1f us  mean %.1f us\n",
	    bench_histogram_percentile(h, 0.50) / 1e3,
	    bench_histogram_percentile(h, 0.90) / 1e3,
	    bench_histogram_percentile(h, 0.99) / 1e3,
	    bench_histogram_percentile(h, 0.999) / 1e3, h->max_ns / 1e3,
	    h->total > 0 ? (double) h->sum_ns / (double) h->total / 1e3 : 0.0);
	printf("replies  ");
	if (t->echoed > 0) {
		printf(" echoed %" PRIu64, t->echoed);
	}
	for (size_t i = 0; i < BENCH_CODES; i++) {
		if (t->codes[i] > 0) {
			printf(
			    " %s %" PRIu64, bench_code_names[i], t->codes[i]);
		}
	}
	if (t->bad_replies > 0) {
		printf(" undecodable %" PRIu64, t->bad_replies);
	}
	printf("\nerrors    %" PRIu64 " (timeouts and transport errors)\n",
	    t->transport_errors);
}

static void
bench_report_json(const struct bench_options *opts,
    const struct bench_tally *t, double elapsed_s)
{
	const struct bench_histogram *h   = &t->latency;
	const char                   *sep = "";

	// The URL and method come from the command line: printed as JSON
	// strings only when they need no escaping, which main checks.
	printf("{\"url\":\"%s\",\"method\":\"%s\",\"concurrency\":%zu,"
	       "\"elapsed_s\":%.6f,\"replies\":%" PRIu64 ",\"ok\":%" PRIu64
	       ",\"echoed\":%" PRIu64 ",\"bad_replies\":%" PRIu64
	       ",\"transport_errors\":%" PRIu64
	       ",\"calls_per_s\":%.3f,\"codes\":{",
	    opts->url, opts->method, opts->concurrency, elapsed_s, t->replies,
	    t->codes[0] + t->echoed, t->echoed, t->bad_replies,
	    t->transport_errors, (double) t->replies / elapsed_s);
	for (size_t i = 1; i < BENCH_CODES; i++) {
		if (t->codes[i] > 0) {
			printf("%s\"%s\":%" PRIu64, sep, bench_code_names[i],
			    t->codes[i]);
			sep = ",";
		}
	}
	printf("},\"latency_us\":{\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,"
	       "\"p999\":%.3f,\"max\":%.3f,\"mean\":%.3f}}\n",
	    bench_histogram_percentile(h, 0.50) / 1e3,
	    bench_histogram_percentile(h, 0.90) / 1e3,
	    bench_histogram_percentile(h, 0.99) / 1e3,
	    bench_histogram_percentile(h, 0.999) / 1e3, h->max_ns / 1e3,
	    h->total > 0 ? (double) h->sum_ns / (double) h->total / 1e3 : 0.0);
}

static void
bench_usage(FILE *out)
{
	fprintf(out,
	    "usage: zos-bench-client --url URL --concurrency C\n"
	    "           (--duration S | --requests N) [--method PATH]\n"
	    "           [--payload-hex HEX] [--timeout-ms MS] [--json]\n"
	    "\n"
	    "Closed-loop load: C callers on one req0 socket, each sending\n"
	    "the same zrpc.v1.Request and the next one as soon as the reply\n"
	    "arrives. Prints calls/s and latency percentiles.\n"
	    "\n"
	    "  --url URL          server address (required)\n"
	    "  --concurrency C    callers in flight, 1..%d (required)\n"
	    "  --duration S       run for S seconds\n"
	    "  --requests N       or send N requests in all\n"
	    "  --method PATH      default %s\n"
	    "  --payload-hex HEX  packed input message (default empty)\n"
	    "  --timeout-ms MS    per call, also sent as timeout_ms "
	    "(default %d)\n"
	    "  --json             one JSON object instead of text\n"
	    "  --session-cycle    zos: each caller starts a session, then\n"
	    "                     calls Session/Transition round its proof\n"
	    "                     state machine (every move legal)\n"
	    "  --print-reply      with --requests 1 --concurrency 1: print\n"
	    "                     the reply's payload as hex, nothing else\n"
	    "\n"
	    "A reply equal to the request (an echo server) counts as OK;\n"
	    "others are decoded as zrpc.v1.Response and counted by code.\n"
	    "Exit status 1 when any call failed in transport or timed out.\n",
	    BENCH_MAX_CONCURRENCY, BENCH_DEFAULT_METHOD,
	    BENCH_DEFAULT_TIMEOUT_MS);
}

// bench_parse_u64 reads a decimal number in [min, max].
static int
bench_parse_u64(const char *text, uint64_t min, uint64_t max, uint64_t *out)
{
	char              *end;
	unsigned long long value;

	errno = 0;
	value = strtoull(text, &end, 10);
	if (errno != 0 || end == text || *end != '\0' || text[0] == '-' ||
	    value < min || value > max) {
		return (-1);
	}
	*out = (uint64_t) value;
	return (0);
}

// bench_json_safe tells whether s can be printed inside a JSON string as
// it is.
static bool
bench_json_safe(const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\' || (unsigned char) *s < 0x20) {
			return (false);
		}
	}
	return (true);
}

static int
bench_parse_options(int argc, char **argv, struct bench_options *opts)
{
	static const struct option options[] = {
		{ "url", required_argument, NULL, 'u' },
		{ "concurrency", required_argument, NULL, 'c' },
		{ "duration", required_argument, NULL, 'd' },
		{ "requests", required_argument, NULL, 'n' },
		{ "method", required_argument, NULL, 'm' },
		{ "payload-hex", required_argument, NULL, 'p' },
		{ "timeout-ms", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },
		{ "print-reply", no_argument, NULL, 'r' },
		{ "session-cycle", no_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t value;
	char    *end;
	int      opt;

	memset(opts, 0, sizeof(*opts));
	opts->method      = BENCH_DEFAULT_METHOD;
	opts->payload_hex = "";
	opts->timeout_ms  = BENCH_DEFAULT_TIMEOUT_MS;
	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (opt) {
		case 'u':
			opts->url = optarg;
			break;
		case 'c':
			if (bench_parse_u64(optarg, 1, BENCH_MAX_CONCURRENCY,
			        &value) != 0) {
				fprintf(stderr,
				    "zos-bench-client: --concurrency wants "
				    "1..%d\n",
				    BENCH_MAX_CONCURRENCY);
				return (2);
			}
			opts->concurrency = (size_t) value;
			break;
		case 'd':
			errno            = 0;
			opts->duration_s = strtod(optarg, &end);
			if (errno != 0 || end == optarg || *end != '\0' ||
			    !(opts->duration_s > 0 &&
			        opts->duration_s <= 86400)) {
				fprintf(stderr,
				    "zos-bench-client: --duration wants "
				    "seconds, 0 < S <= 86400\n");
				return (2);
			}
			break;
		case 'n':
			if (bench_parse_u64(optarg, 1, UINT64_MAX / 2,
			        &opts->requests) != 0) {
				fprintf(stderr,
				    "zos-bench-client: --requests wants a "
				    "positive count\n");
				return (2);
			}
			break;
		case 'm':
			opts->method = optarg;
			break;
		case 'p':
			opts->payload_hex = optarg;
			break;
		case 't':
			if (bench_parse_u64(optarg, 1, INT32_MAX, &value) !=
			    0) {
				fprintf(stderr,
				    "zos-bench-client: --timeout-ms wants a "
				    "positive count\n");
				return (2);
			}
			opts->timeout_ms = (int) value;
			break;
		case 'r':
			opts->print_reply = true;
			break;
		case 's':
			opts->session_cycle = true;
			opts->method        = "/zos.v1.Session/Transition";
			break;
		case 'j':
			opts->json = true;
			break;
		case 'h':
			bench_usage(stdout);
			return (1);
		default:
			bench_usage(stderr);
			return (2);
		}
	}
	if (optind != argc || opts->url == NULL || opts->concurrency == 0 ||
	    (opts->duration_s > 0) == (opts->requests > 0)) {
		bench_usage(stderr);
		return (2);
	}
	if (opts->print_reply &&
	    (opts->requests != 1 || opts->concurrency != 1)) {
		fprintf(stderr,
		    "zos-bench-client: --print-reply goes with "
		    "--requests 1 --concurrency 1\n");
		return (2);
	}
	if (!bench_json_safe(opts->url) || !bench_json_safe(opts->method)) {
		fprintf(stderr,
		    "zos-bench-client: quotes, backslashes and control "
		    "characters are not allowed in --url and --method\n");
		return (2);
	}
	return (0);
}

int
main(int argc, char **argv)
{
	struct bench_options opts;
	struct bench_run     run;
	struct bench_tally  *total;
	double               elapsed_s;
	int                  rv;

	if ((rv = bench_parse_options(argc, argv, &opts)) != 0) {
		return (rv == 1 ? 0 : rv);
	}
	if ((total = calloc(1, sizeof(*total))) == NULL) {
		fprintf(stderr, "zos-bench-client: out of memory\n");
		return (1);
	}
	if (bench_run_setup(&run, &opts) != 0) {
		free(total);
		return (1);
	}
	elapsed_s = (double) bench_run_execute(&run) / 1e9;
	for (size_t i = 0; i < run.ncallers; i++) {
		bench_tally_merge(total, &run.callers[i].tally);
	}
	bench_run_stop(&run);

	if (opts.print_reply) {
		// The reply was the output; its code decides the status.
		rv = total->codes[0] == 1 ? 0 : 1;
		free(total);
		return (rv);
	}
	if (opts.json) {
		bench_report_json(&opts, total, elapsed_s);
	} else {
		bench_report_text(&opts, total, elapsed_s);
	}
	rv = (total->transport_errors > 0 || total->replies == 0) ? 1 : 0;
	free(total);
	return (rv);
}
