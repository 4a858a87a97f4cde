/*
 * zos-load: a load generator for zrpc servers, built on the asynchronous
 * client (zrpc_client_call_raw_async), as ghz is for gRPC.
 *
 * Closed loop (the default): C callers, each with one call in flight; the
 * completion callback of a call records it and issues the caller's next
 * one, so C calls are in flight at all times from no thread of ours. Open
 * loop (--rate R): one scheduler thread issues call k at start + k / R on
 * an absolute schedule (a late call does not push the later ones back, so
 * the rate over a run is R however the sleeps jitter), and at most C calls
 * are in flight: a scheduler that finds all C busy waits for one, falls
 * behind, and catches up after (the largest lag is reported).
 *
 * The request is packed once (from --data JSON through the method's input
 * descriptor, or --data-hex) or, with --data-file, once per line; calls
 * only pick a packed payload. Callers are spread over K client
 * connections (K req0 sockets, each its own TCP connection).
 *
 * Completion callbacks run on nng's threads and stay cheap: the latency
 * goes into one lock-free log-linear histogram (7 precision bits, under 1%
 * relative error), the status into an atomic counter per code, and the
 * first message of each error code into a slot claimed with an
 * atomic_flag. Nothing in a callback takes a lock of ours.
 *
 * Ending. A count of holders ("outstanding") keeps the run alive: each
 * running caller (closed loop), each call in flight and the scheduler
 * (open loop), and main while it starts the callers. Whoever drops it to
 * zero notes the end time and wakes main through an eventfd. Main waits
 * on that eventfd and on a signalfd for SIGINT/SIGTERM (blocked in every
 * thread, so no handler and no global flag), and prints a progress line on
 * stderr every second meanwhile.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "methods.h"
#include "pbjson.h"
#include "zrpc/client.h"
#include "zrpc/clock.h"
#include "zrpc/histogram.h"
#include "zrpc/status.h"

#define LOAD_DEFAULT_TIMEOUT_MS 5000u
#define LOAD_DEFAULT_CONNECT_TIMEOUT_MS 5000u
#define LOAD_MAX_CONCURRENCY 16384
#define LOAD_MAX_CONNECTIONS 1024
#define LOAD_MAX_RATE 10000000.0
#define LOAD_MAX_DURATION_S 86400.0
#define LOAD_MAX_PAYLOAD (4u << 20)
#define LOAD_MAX_DATA_LINES 10000000u
#define LOAD_HISTOGRAM_PRECISION 7 /* under 1% relative error */
#define LOAD_PROGRESS_NS 1000000000u
#define LOAD_WAIT_SLICE_NS 100000000u /* scheduler checks for a stop */
#define LOAD_HEALTH_PATH "/zrpc.v1.Health/Check"

/* Exit statuses. */
#define LOAD_EXIT_OK 0
#define LOAD_EXIT_FAILED 1
#define LOAD_EXIT_USAGE 2
#define LOAD_EXIT_INTERRUPTED 130

struct load_options {
	const char *url;
	const char *method;    /* as given; NULL with --echo alone */
	const char *data;      /* --data JSON; NULL = not given */
	const char *data_hex;  /* --data-hex; NULL = not given */
	const char *data_file; /* --data-file; NULL = not given */
	bool        data_per_caller;
	bool        echo;
	size_t      concurrency;
	size_t      connections;
	double      duration_s; /* 0 with --requests */
	uint64_t    requests;   /* 0 with --duration */
	double      rate;       /* 0 = closed loop */
	uint32_t    timeout_ms; /* 0 = none */
	uint32_t    connect_timeout_ms;
	const char *token;
	bool        json;
};

/* One packed input message. */
struct load_payload {
	uint8_t *bytes;
	size_t   len;
};

/* The first message seen for one status code. */
struct load_error_note {
	atomic_flag taken;
	atomic_bool ready;
	char        message[ZRPC_STATUS_MESSAGE_MAX];
};

struct load_run;

/*
 * A caller (closed loop) or a call slot (open loop). In the closed loop
 * only the callback of its own call in flight touches it; in the open
 * loop the scheduler claims a free slot (busy false -> true) and the
 * callback gives it back.
 */
struct load_caller {
	struct load_run *run;
	size_t           index;
	zrpc_client     *client;
	uint64_t         started_ns; /* when the call in flight was issued */
	uint64_t         seq;        /* calls issued (--data-per-caller) */
	atomic_bool      busy;       /* open loop: a call is in flight */
};

struct load_run {
	const struct load_options *opts;
	const char                *path; /* wire method name */
	zrpc_call_opts             call_opts;
	struct load_payload       *payloads;
	size_t                     n_payloads;
	zrpc_client              **clients;
	size_t                     n_clients;
	struct load_caller        *callers;
	size_t                     n_callers;

	struct zrpc_histogram  latency; /* ns, every completed call */
	atomic_uint_fast64_t   codes[ZRPC_CODE_COUNT];
	struct load_error_note notes[ZRPC_CODE_COUNT];
	atomic_uint_fast64_t   completed;
	atomic_uint_fast64_t   claimed;      /* --requests: calls issued */
	atomic_uint_fast64_t   next_payload; /* --data-file round robin */
	atomic_bool            stopping;     /* no new calls */

	uint64_t             start_ns;
	uint64_t             deadline_ns; /* --duration: stop issuing */
	atomic_uint_fast64_t end_ns;      /* set when outstanding hits 0 */
	atomic_size_t        outstanding; /* see the top of the file */
	int                  done_fd;     /* eventfd: written at the end */

	/* Open loop only. */
	sem_t     slots;       /* free call slots */
	bool      slots_ready; /* slots needs sem_destroy */
	size_t    cursor;      /* scheduler only: where to look for a slot */
	uint64_t  max_lag_ns;  /* scheduler only, read after it joined */
	pthread_t scheduler;
};

/* --- usage and options ------------------------------------------------ */

static void
load_usage(FILE *out)
{
	fprintf(out,
	    "usage: zos-load --url URL --method METHOD [--data JSON | "
	    "--data-hex HEX |\n"
	    "                --data-file FILE [--data-per-caller]] "
	    "--concurrency C\n"
	    "                (--duration S | --requests N) [--rate R] "
	    "[--connections K]\n"
	    "                [--timeout-ms T] [--connect-timeout-ms T] "
	    "[--token T] [--echo]\n"
	    "                [--json] [--help]\n"
	    "\n"
	    "Drives one method of a zrpc server (zosd or any other) with "
	    "C calls in flight\n"
	    "and reports calls/s, latency percentiles and the calls by "
	    "status code.\n"
	    "\n"
	    "  --url URL            server address, any nng URL (required)\n"
	    "  --method METHOD      wire name, /zos.v1.Skills/Get (also "
	    "zos.v1.Skills/Get or\n"
	    "                       zos.v1.Skills.Get); a method zos-load "
	    "does not know\n"
	    "                       needs --data-hex (required, except with "
	    "--echo)\n"
	    "  --data JSON          the request as proto3 JSON, packed once "
	    "through the\n"
	    "                       method's input type (default: the empty "
	    "message)\n"
	    "  --data-hex HEX       the packed request as hex digits, sent "
	    "as it is\n"
	    "  --data-file FILE     one JSON request per line (blank lines "
	    "and lines\n"
	    "                       starting with # skipped), each packed "
	    "once; calls take\n"
	    "                       the lines in turn, round robin\n"
	    "  --data-per-caller    with --data-file, closed loop: the lines "
	    "are C equal\n"
	    "                       blocks and caller i cycles through block "
	    "i in order\n"
	    "                       (its calls are sequential, so a block "
	    "can walk a state\n"
	    "                       machine)\n"
	    "  --concurrency C      calls in flight at once, 1..%d "
	    "(required)\n"
	    "  --duration S         issue calls for S seconds, then wait for "
	    "those in flight\n"
	    "  --requests N         or make exactly N calls in all\n"
	    "  --rate R             open loop: issue R calls/s in all on a "
	    "fixed schedule,\n"
	    "                       at most C in flight (default: closed "
	    "loop, each\n"
	    "                       completion issues the next call)\n"
	    "  --connections K      client connections the calls are spread "
	    "over, 1..C\n"
	    "                       (default 1)\n"
	    "  --timeout-ms T       deadline of each call; 0 = none "
	    "(default %u)\n"
	    "  --connect-timeout-ms T  how long to wait for the server at "
	    "the start\n"
	    "                       (default %u)\n"
	    "  --token T            bearer token sent with every call "
	    "(default none)\n"
	    "  --echo               the server is zos-echo (bench/echo.c), "
	    "which sends each\n"
	    "                       request back unchanged: send an empty "
	    "method name and no\n"
	    "                       timeout, so that the echoed request "
	    "reads as an OK reply\n"
	    "                       (--method then only names the type of "
	    "--data)\n"
	    "  --json               print the report as one JSON object on "
	    "stdout instead of\n"
	    "                       text\n"
	    "  --help               this text\n"
	    "\n"
	    "Before the run each connection is checked with one "
	    "/zrpc.v1.Health/Check\n"
	    "call (any reply will do). A progress line goes to stderr every "
	    "second.\n"
	    "Exit status: 0 when the run completed (RPC errors are counted "
	    "and reported),\n"
	    "1 when it could not run (the server cannot be reached), 2 for "
	    "bad usage,\n"
	    "130 when interrupted (the report covers the calls made).\n",
	    LOAD_MAX_CONCURRENCY, LOAD_DEFAULT_TIMEOUT_MS,
	    LOAD_DEFAULT_CONNECT_TIMEOUT_MS);
}

/* Reports a usage error: message and usage on stderr. Returns 2. */
static int load_usage_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static int
load_usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "zos-load: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n\n");
	load_usage(stderr);
	return LOAD_EXIT_USAGE;
}

/* Reads a decimal integer in [MIN, MAX]. Returns 0 or -1. */
static int
load_parse_u64(const char *text, uint64_t min, uint64_t max, uint64_t *out)
{
	char              *end;
	unsigned long long value;

	errno = 0;
	value = strtoull(text, &end, 10);
	if (errno != 0 || end == text || *end != '\0' || text[0] == '-' ||
	    text[0] == '+' || value < min || value > max) {
		return -1;
	}
	*out = (uint64_t) value;
	return 0;
}

/* Reads a finite number in (0, MAX]. Returns 0 or -1. */
static int
load_parse_positive(const char *text, double max, double *out)
{
	char  *end;
	double value;

	errno = 0;
	value = strtod(text, &end);
	if (errno != 0 || end == text || *end != '\0' || !isfinite(value) ||
	    !(value > 0) || value > max) {
		return -1;
	}
	*out = value;
	return 0;
}

/*
 * Parses the command line into OPTS. Returns 0, LOAD_EXIT_USAGE (message
 * printed) or -1 for --help (usage printed on stdout).
 */
static int
load_parse_options(int argc, char **argv, struct load_options *opts)
{
	enum {
		OPT_URL = 256,
		OPT_METHOD,
		OPT_DATA,
		OPT_DATA_HEX,
		OPT_DATA_FILE,
		OPT_DATA_PER_CALLER,
		OPT_CONCURRENCY,
		OPT_DURATION,
		OPT_REQUESTS,
		OPT_RATE,
		OPT_CONNECTIONS,
		OPT_TIMEOUT,
		OPT_CONNECT_TIMEOUT,
		OPT_TOKEN,
		OPT_ECHO,
		OPT_JSON,
		OPT_HELP,
	};
	static const struct option options[] = {
		{ "url", required_argument, NULL, OPT_URL },
		{ "method", required_argument, NULL, OPT_METHOD },
		{ "data", required_argument, NULL, OPT_DATA },
		{ "data-hex", required_argument, NULL, OPT_DATA_HEX },
		{ "data-file", required_argument, NULL, OPT_DATA_FILE },
		{ "data-per-caller", no_argument, NULL, OPT_DATA_PER_CALLER },
		{ "concurrency", required_argument, NULL, OPT_CONCURRENCY },
		{ "duration", required_argument, NULL, OPT_DURATION },
		{ "requests", required_argument, NULL, OPT_REQUESTS },
		{ "rate", required_argument, NULL, OPT_RATE },
		{ "connections", required_argument, NULL, OPT_CONNECTIONS },
		{ "timeout-ms", required_argument, NULL, OPT_TIMEOUT },
		{ "connect-timeout-ms", required_argument, NULL,
		    OPT_CONNECT_TIMEOUT },
		{ "token", required_argument, NULL, OPT_TOKEN },
		{ "echo", no_argument, NULL, OPT_ECHO },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "help", no_argument, NULL, OPT_HELP },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t value;
	int      opt, n_data = 0;

	memset(opts, 0, sizeof(*opts));
	opts->connections        = 1;
	opts->timeout_ms         = LOAD_DEFAULT_TIMEOUT_MS;
	opts->connect_timeout_ms = LOAD_DEFAULT_CONNECT_TIMEOUT_MS;
	opterr                   = 0;
	while ((opt = getopt_long(argc, argv, ":", options, NULL)) != -1) {
		switch (opt) {
		case OPT_URL:
			opts->url = optarg;
			break;
		case OPT_METHOD:
			opts->method = optarg;
			break;
		case OPT_DATA:
			opts->data = optarg;
			n_data++;
			break;
		case OPT_DATA_HEX:
			opts->data_hex = optarg;
			n_data++;
			break;
		case OPT_DATA_FILE:
			opts->data_file = optarg;
			n_data++;
			break;
		case OPT_DATA_PER_CALLER:
			opts->data_per_caller = true;
			break;
		case OPT_CONCURRENCY:
			if (load_parse_u64(optarg, 1, LOAD_MAX_CONCURRENCY,
			        &value) != 0) {
				return load_usage_error(
				    "--concurrency wants 1..%d, not '%s'",
				    LOAD_MAX_CONCURRENCY, optarg);
			}
			opts->concurrency = (size_t) value;
			break;
		case OPT_DURATION:
			if (load_parse_positive(optarg, LOAD_MAX_DURATION_S,
			        &opts->duration_s) != 0) {
				return load_usage_error(
				    "--duration wants seconds, 0 < S <= %.0f, "
				    "not '%s'",
				    LOAD_MAX_DURATION_S, optarg);
			}
			break;
		case OPT_REQUESTS:
			if (load_parse_u64(optarg, 1, UINT64_MAX / 4,
			        &opts->requests) != 0) {
				return load_usage_error(
				    "--requests wants a positive count, not "
				    "'%s'",
				    optarg);
			}
			break;
		case OPT_RATE:
			if (load_parse_positive(
			        optarg, LOAD_MAX_RATE, &opts->rate) != 0) {
				return load_usage_error(
				    "--rate wants calls/s, 0 < R <= %.0f, not "
				    "'%s'",
				    LOAD_MAX_RATE, optarg);
			}
			break;
		case OPT_CONNECTIONS:
			if (load_parse_u64(optarg, 1, LOAD_MAX_CONNECTIONS,
			        &value) != 0) {
				return load_usage_error(
				    "--connections wants 1..%d, not '%s'",
				    LOAD_MAX_CONNECTIONS, optarg);
			}
			opts->connections = (size_t) value;
			break;
		case OPT_TIMEOUT:
			if (load_parse_u64(optarg, 0, INT32_MAX, &value) !=
			    0) {
				return load_usage_error(
				    "--timeout-ms wants milliseconds (0 = "
				    "none), not '%s'",
				    optarg);
			}
			opts->timeout_ms = (uint32_t) value;
			break;
		case OPT_CONNECT_TIMEOUT:
			if (load_parse_u64(optarg, 1, INT32_MAX, &value) !=
			    0) {
				return load_usage_error(
				    "--connect-timeout-ms wants positive "
				    "milliseconds, not '%s'",
				    optarg);
			}
			opts->connect_timeout_ms = (uint32_t) value;
			break;
		case OPT_TOKEN:
			opts->token = optarg;
			break;
		case OPT_ECHO:
			opts->echo = true;
			break;
		case OPT_JSON:
			opts->json = true;
			break;
		case OPT_HELP:
			load_usage(stdout);
			return -1;
		case ':':
			return load_usage_error(
			    "%s wants a value", argv[optind - 1]);
		default:
			return load_usage_error(
			    "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind != argc) {
		return load_usage_error(
		    "unexpected argument '%s'", argv[optind]);
	}
	if (opts->url == NULL) {
		return load_usage_error("--url is required");
	}
	if (opts->method == NULL && !opts->echo) {
		return load_usage_error("--method is required");
	}
	if (opts->concurrency == 0) {
		return load_usage_error("--concurrency is required");
	}
	if ((opts->duration_s > 0) == (opts->requests > 0)) {
		return load_usage_error(
		    "give exactly one of --duration and --requests");
	}
	if (n_data > 1) {
		return load_usage_error(
		    "give at most one of --data, --data-hex and --data-file");
	}
	if (opts->connections > opts->concurrency) {
		return load_usage_error(
		    "--connections (%zu) must not exceed --concurrency (%zu)",
		    opts->connections, opts->concurrency);
	}
	if (opts->data_per_caller && opts->data_file == NULL) {
		return load_usage_error("--data-per-caller needs --data-file");
	}
	if (opts->data_per_caller && opts->rate > 0) {
		return load_usage_error(
		    "--data-per-caller is for the closed loop, not --rate");
	}
	if (opts->echo && opts->method == NULL && opts->data_hex == NULL &&
	    n_data > 0) {
		return load_usage_error(
		    "--echo with --data or --data-file needs --method to "
		    "name the input type");
	}
	return 0;
}

/* --- requests ----------------------------------------------------------- */

static int
load_hex_digit(char ch)
{
	if (ch >= '0' && ch <= '9') {
		return ch - '0';
	}
	if (ch >= 'a' && ch <= 'f') {
		return ch - 'a' + 10;
	}
	if (ch >= 'A' && ch <= 'F') {
		return ch - 'A' + 10;
	}
	return -1;
}

/*
 * Decodes HEX into OUT (malloc'd, NULL when empty). Returns 0, or
 * LOAD_EXIT_USAGE / LOAD_EXIT_FAILED with a message on stderr.
 */
static int
load_payload_from_hex(const char *hex, struct load_payload *out)
{
	size_t len = strlen(hex);

	out->bytes = NULL;
	out->len   = 0;
	if (len % 2 != 0 || len / 2 > LOAD_MAX_PAYLOAD) {
		return load_usage_error(
		    "--data-hex wants an even number of hex digits, at "
		    "most %u bytes",
		    LOAD_MAX_PAYLOAD);
	}
	if (len == 0) {
		return 0;
	}
	if ((out->bytes = malloc(len / 2)) == NULL) {
		fprintf(stderr, "zos-load: out of memory\n");
		return LOAD_EXIT_FAILED;
	}
	for (size_t i = 0; i < len / 2; i++) {
		int high = load_hex_digit(hex[2 * i]);
		int low  = load_hex_digit(hex[2 * i + 1]);

		if (high < 0 || low < 0) {
			free(out->bytes);
			out->bytes = NULL;
			return load_usage_error(
			    "--data-hex: '%c%c' at offset %zu is not hex",
			    hex[2 * i], hex[2 * i + 1], 2 * i);
		}
		out->bytes[i] = (uint8_t) (high << 4 | low);
	}
	out->len = len / 2;
	return 0;
}

/*
 * Packs the proto3 JSON text JSON as a DESC message into OUT. WHERE names
 * the source in messages ("--data", "FILE:3"). Returns 0, or
 * LOAD_EXIT_USAGE / LOAD_EXIT_FAILED with a message on stderr.
 */
static int
load_payload_from_json(const ProtobufCMessageDescriptor *desc,
    const char *json, const char *where, struct load_payload *out)
{
	char              error[512];
	ProtobufCMessage *message;
	size_t            size;

	out->bytes = NULL;
	out->len   = 0;
	message    = zos_pbjson_parse(desc, json, error, sizeof(error));
	if (message == NULL) {
		fprintf(stderr, "zos-load: %s: not a valid %s: %s\n", where,
		    desc->name, error);
		return LOAD_EXIT_USAGE;
	}
	size = protobuf_c_message_get_packed_size(message);
	if (size > LOAD_MAX_PAYLOAD) {
		protobuf_c_message_free_unpacked(message, NULL);
		fprintf(stderr,
		    "zos-load: %s: %zu bytes packed, more than %u\n", where,
		    size, LOAD_MAX_PAYLOAD);
		return LOAD_EXIT_USAGE;
	}
	if (size > 0) {
		if ((out->bytes = malloc(size)) == NULL) {
			protobuf_c_message_free_unpacked(message, NULL);
			fprintf(stderr, "zos-load: out of memory\n");
			return LOAD_EXIT_FAILED;
		}
		out->len = protobuf_c_message_pack(message, out->bytes);
	}
	protobuf_c_message_free_unpacked(message, NULL);
	return 0;
}

/* Tells whether LINE holds nothing but blanks, or is a # comment. */
static bool
load_line_is_blank(const char *line)
{
	while (
	    *line == ' ' || *line == '\t' || *line == '\r' || *line == '\n') {
		line++;
	}
	return *line == '\0' || *line == '#';
}

/*
 * Reads --data-file: packs each line into RUN->payloads. Returns 0, or
 * LOAD_EXIT_USAGE / LOAD_EXIT_FAILED with a message on stderr.
 */
static int
load_payloads_from_file(struct load_run *run,
    const ProtobufCMessageDescriptor *desc, const char *file)
{
	FILE   *in;
	char   *line = NULL, where[512];
	size_t  cap = 0, allocated = 0, lineno = 0;
	ssize_t n;
	int     rv = 0;

	if ((in = fopen(file, "r")) == NULL) {
		fprintf(stderr, "zos-load: --data-file %s: %s\n", file,
		    strerror(errno));
		return LOAD_EXIT_USAGE;
	}
	while ((n = getline(&line, &cap, in)) != -1) {
		lineno++;
		if (load_line_is_blank(line)) {
			continue;
		}
		if (run->n_payloads == LOAD_MAX_DATA_LINES) {
			fprintf(stderr,
			    "zos-load: --data-file %s: more than %u "
			    "requests\n",
			    file, LOAD_MAX_DATA_LINES);
			rv = LOAD_EXIT_USAGE;
			goto out;
		}
		if (run->n_payloads == allocated) {
			size_t more = allocated ? allocated * 2 : 64;
			struct load_payload *grown = realloc(
			    run->payloads, more * sizeof(*run->payloads));

			if (grown == NULL) {
				fprintf(stderr, "zos-load: out of memory\n");
				rv = LOAD_EXIT_FAILED;
				goto out;
			}
			run->payloads = grown;
			allocated     = more;
		}
		snprintf(where, sizeof(where), "%s:%zu", file, lineno);
		if ((rv = load_payload_from_json(desc, line, where,
		         &run->payloads[run->n_payloads])) != 0) {
			goto out;
		}
		run->n_payloads++;
	}
	if (ferror(in)) {
		fprintf(stderr, "zos-load: --data-file %s: %s\n", file,
		    strerror(errno));
		rv = LOAD_EXIT_USAGE;
	} else if (run->n_payloads == 0) {
		fprintf(stderr, "zos-load: --data-file %s holds no request\n",
		    file);
		rv = LOAD_EXIT_USAGE;
	}
out:
	free(line);
	fclose(in);
	return rv;
}

/*
 * Finds the method and packs the request(s) into RUN. Returns 0, or
 * LOAD_EXIT_USAGE / LOAD_EXIT_FAILED with a message on stderr.
 */
static int
load_prepare_requests(struct load_run *run)
{
	const struct load_options *opts   = run->opts;
	const struct zrpc_method  *method = NULL;
	const char                *slash;
	int                        rv;

	if (opts->method != NULL) {
		method = zos_tools_find_method(opts->method);
		slash  = opts->method[0] == '/' ? strchr(opts->method + 1, '/')
		                                : NULL;
		if (method == NULL &&
		    (opts->data_hex == NULL || slash == NULL ||
		        slash == opts->method + 1 || slash[1] == '\0')) {
			if (opts->data_hex == NULL) {
				return load_usage_error(
				    "unknown method '%s' (for a method "
				    "zos-load does not know, give its full "
				    "wire name, /package.Service/Method, and "
				    "the request with --data-hex)",
				    opts->method);
			}
			return load_usage_error(
			    "unknown method '%s': not a wire name "
			    "/package.Service/Method",
			    opts->method);
		}
	}
	run->path = opts->echo ? ""
	    : method != NULL   ? method->path
	                       : opts->method;

	if (opts->data_file != NULL) {
		rv = load_payloads_from_file(
		    run, method->input, opts->data_file);
		if (rv == 0 && opts->data_per_caller &&
		    run->n_payloads % opts->concurrency != 0) {
			return load_usage_error(
			    "--data-per-caller: %zu requests in %s do not "
			    "split into %zu equal blocks",
			    run->n_payloads, opts->data_file,
			    opts->concurrency);
		}
		return rv;
	}
	if ((run->payloads = calloc(1, sizeof(*run->payloads))) == NULL) {
		fprintf(stderr, "zos-load: out of memory\n");
		return LOAD_EXIT_FAILED;
	}
	run->n_payloads = 1;
	if (opts->data_hex != NULL) {
		return load_payload_from_hex(
		    opts->data_hex, &run->payloads[0]);
	}
	if (method == NULL) {
		/* --echo without --method: the empty payload. */
		return 0;
	}
	return load_payload_from_json(method->input,
	    opts->data != NULL ? opts->data : "", "--data", &run->payloads[0]);
}

/* --- the run ------------------------------------------------------------ */

/* Drops one hold on the run; the last one ends it. Any thread. */
static void
load_run_release(struct load_run *run)
{
	uint64_t one = 1;

	if (atomic_fetch_sub(&run->outstanding, 1) == 1) {
		atomic_store(&run->end_ns, zrpc_now_ns());
		if (write(run->done_fd, &one, sizeof(one)) != sizeof(one)) {
			/* An eventfd write of 1 cannot fail short of a
			 * counter overflow; main would then time out on
			 * its poll and find outstanding at 0 anyway. */
		}
	}
}

/* Counts one finished call with STATUS (and its latency when timed). */
static void
load_run_count(struct load_run *run, const zrpc_status *status)
{
	zrpc_code code =
	    status->code < ZRPC_CODE_COUNT ? status->code : ZRPC_UNKNOWN;
	struct load_error_note *note = &run->notes[code];

	atomic_fetch_add_explicit(&run->codes[code], 1, memory_order_relaxed);
	if (code != ZRPC_OK && !atomic_flag_test_and_set(&note->taken)) {
		snprintf(note->message, sizeof(note->message), "%s",
		    status->message);
		atomic_store(&note->ready, true);
	}
	atomic_fetch_add_explicit(&run->completed, 1, memory_order_relaxed);
}

/* The payload caller C sends next. */
static const struct load_payload *
load_run_pick(struct load_run *run, struct load_caller *c)
{
	size_t block;

	if (run->n_payloads == 1) {
		return &run->payloads[0];
	}
	if (run->opts->data_per_caller) {
		block = run->n_payloads / run->n_callers;
		return &run->payloads[c->index * block + c->seq++ % block];
	}
	return &run->payloads[atomic_fetch_add_explicit(&run->next_payload, 1,
	                          memory_order_relaxed) %
	    run->n_payloads];
}

static void load_call_done(void *arg, const zrpc_status *status,
    const uint8_t *reply, size_t reply_len);

/*
 * Starts the next call of C. Returns true when it started; false when it
 * could not (the failure is counted as a call).
 */
static bool
load_call_start(struct load_caller *c)
{
	struct load_run           *run = c->run;
	const struct load_payload *p   = load_run_pick(run, c);
	zrpc_status                status;

	c->started_ns = zrpc_now_ns();
	status = zrpc_client_call_raw_async(c->client, run->path, p->bytes,
	    p->len, &run->call_opts, load_call_done, c);
	if (!zrpc_status_is_ok(&status)) {
		load_run_count(run, &status);
		return false;
	}
	return true;
}

/* Closed loop: may caller C issue one more call? */
static bool
load_run_claim(struct load_run *run)
{
	if (atomic_load_explicit(&run->stopping, memory_order_relaxed)) {
		return false;
	}
	if (run->opts->requests > 0) {
		return atomic_fetch_add(&run->claimed, 1) <
		    run->opts->requests;
	}
	return zrpc_now_ns() < run->deadline_ns;
}

/*
 * Closed loop: issues caller C's next call, or retires the caller when
 * the run is over or a call cannot start (which only happens for a
 * lasting reason: out of memory, a closing client).
 */
static void
load_caller_next(struct load_caller *c)
{
	if (!load_run_claim(c->run) || !load_call_start(c)) {
		load_run_release(c->run);
	}
}

/* Completion of every call; runs on an nng thread. */
static void
load_call_done(void *arg, const zrpc_status *status, const uint8_t *reply,
    size_t reply_len)
{
	struct load_caller *c   = arg;
	struct load_run    *run = c->run;

	zrpc_histogram_record(&run->latency, zrpc_now_ns() - c->started_ns);
	load_run_count(run, status);
	if (run->opts->rate > 0) {
		atomic_store_explicit(&c->busy, false, memory_order_release);
		sem_post(&run->slots);
		load_run_release(run);
	} else {
		load_caller_next(c);
	}
}

/*
 * Sleeps until AT_NS (CLOCK_MONOTONIC) in slices, so that a stop is seen
 * within one. Returns false when the run is stopping.
 */
static bool
load_sleep_until(struct load_run *run, uint64_t at_ns)
{
	for (;;) {
		uint64_t        now = zrpc_now_ns(), wake = at_ns;
		struct timespec ts;

		if (atomic_load(&run->stopping)) {
			return false;
		}
		if (now >= at_ns) {
			return true;
		}
		if (wake - now > LOAD_WAIT_SLICE_NS) {
			wake = now + LOAD_WAIT_SLICE_NS;
		}
		ts.tv_sec  = (time_t) (wake / 1000000000u);
		ts.tv_nsec = (long) (wake % 1000000000u);
		(void) clock_nanosleep(
		    CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
	}
}

/* Waits for a free call slot. Returns false when the run is stopping. */
static bool
load_slot_wait(struct load_run *run)
{
	for (;;) {
		uint64_t        wake = zrpc_now_ns() + LOAD_WAIT_SLICE_NS;
		struct timespec ts   = {
			  .tv_sec  = (time_t) (wake / 1000000000u),
			  .tv_nsec = (long) (wake % 1000000000u),
		};

		if (atomic_load(&run->stopping)) {
			return false;
		}
		if (sem_clockwait(&run->slots, CLOCK_MONOTONIC, &ts) == 0) {
			return true;
		}
	}
}

/*
 * Open loop: the scheduler thread. Call k is due at start + k / rate; a
 * call that is late goes out at once, and the schedule stays where it was.
 */
static void *
load_scheduler_main(void *arg)
{
	struct load_run           *run       = arg;
	const struct load_options *opts      = run->opts;
	double                     period_ns = 1e9 / opts->rate;

	for (uint64_t k = 0;; k++) {
		uint64_t due =
		    run->start_ns + (uint64_t) llround((double) k * period_ns);
		uint64_t            now;
		struct load_caller *c;

		if (opts->requests > 0 ? k >= opts->requests
		                       : due >= run->deadline_ns) {
			break;
		}
		if (!load_sleep_until(run, due) || !load_slot_wait(run)) {
			break;
		}
		now = zrpc_now_ns();
		if (now - due > run->max_lag_ns) {
			run->max_lag_ns = now - due;
		}
		/* The semaphore guarantees a free slot; find it. */
		for (;;) {
			c           = &run->callers[run->cursor];
			run->cursor = (run->cursor + 1) % run->n_callers;
			if (!atomic_load_explicit(
			        &c->busy, memory_order_acquire)) {
				break;
			}
		}
		atomic_store_explicit(&c->busy, true, memory_order_relaxed);
		atomic_fetch_add(&run->outstanding, 1);
		if (!load_call_start(c)) {
			atomic_store(&c->busy, false);
			sem_post(&run->slots);
			load_run_release(run);
		}
	}
	load_run_release(run);
	return NULL;
}

/* Prints one progress line on stderr. */
static void
load_progress(struct load_run *run, uint64_t now, uint64_t *last_count,
    uint64_t *last_ns)
{
	uint64_t completed = atomic_load(&run->completed);
	uint64_t errors    = 0;
	double   dt        = (double) (now - *last_ns) / 1e9;

	/* Not completed - OK: the two are not read at one instant. */
	for (size_t i = 1; i < ZRPC_CODE_COUNT; i++) {
		errors += atomic_load(&run->codes[i]);
	}

	fprintf(stderr,
	    "zos-load: %6.1f s %10.0f calls/s %12" PRIu64 " calls %8" PRIu64
	    " errors   p99 %.1f us\n",
	    (double) (now - run->start_ns) / 1e9,
	    dt > 0 ? (double) (completed - *last_count) / dt : 0.0, completed,
	    errors,
	    (double) zrpc_histogram_quantile(&run->latency, 0.99) / 1e3);
	*last_count = completed;
	*last_ns    = now;
}

/*
 * Runs the load: starts the callers or the scheduler and waits for the
 * end, printing progress; SIGFD delivers SIGINT/SIGTERM. Returns true
 * when a signal cut the run short.
 */
static bool
load_run_execute(struct load_run *run, int sigfd)
{
	const struct load_options *opts        = run->opts;
	bool                       interrupted = false;
	uint64_t                   last_count  = 0, last_ns, next_tick;
	int                        rv;

	run->start_ns = zrpc_now_ns();
	run->deadline_ns =
	    run->start_ns + (uint64_t) llround(opts->duration_s * 1e9);
	last_ns   = run->start_ns;
	next_tick = run->start_ns + LOAD_PROGRESS_NS;

	atomic_store(&run->outstanding, 1); /* main's (or the scheduler's) */
	if (opts->rate > 0) {
		if ((rv = pthread_create(&run->scheduler, NULL,
		         load_scheduler_main, run)) != 0) {
			fprintf(stderr, "zos-load: pthread_create: %s\n",
			    strerror(rv));
			exit(LOAD_EXIT_FAILED);
		}
	} else {
		atomic_fetch_add(&run->outstanding, run->n_callers);
		for (size_t i = 0; i < run->n_callers; i++) {
			load_caller_next(&run->callers[i]);
		}
		load_run_release(run);
	}

	while (atomic_load(&run->outstanding) > 0) {
		struct pollfd fds[2] = {
			{ .fd = run->done_fd, .events = POLLIN },
			{ .fd = sigfd, .events = POLLIN },
		};
		uint64_t now = zrpc_now_ns();
		int      wait_ms;

		if (now >= next_tick) {
			load_progress(run, now, &last_count, &last_ns);
			while (next_tick <= now) {
				next_tick += LOAD_PROGRESS_NS;
			}
		}
		wait_ms = (int) ((next_tick - now + 999999u) / 1000000u);
		if (poll(fds, 2, wait_ms) < 0 && errno != EINTR) {
			fprintf(
			    stderr, "zos-load: poll: %s\n", strerror(errno));
			exit(LOAD_EXIT_FAILED);
		}
		if (fds[1].revents & POLLIN) {
			struct signalfd_siginfo info;

			if (read(sigfd, &info, sizeof(info)) == sizeof(info)) {
				if (interrupted) {
					/* A second signal: leave now. */
					_exit(LOAD_EXIT_INTERRUPTED);
				}
				interrupted = true;
				atomic_store(&run->stopping, true);
				fprintf(stderr,
				    "zos-load: stopping: waiting for the "
				    "calls in flight (again to quit at "
				    "once)\n");
			}
		}
	}
	if (opts->rate > 0) {
		pthread_join(run->scheduler, NULL);
	}
	return interrupted;
}

/*
 * Checks that every client reaches the server: one Health/Check each
 * (empty method with --echo), where any reply will do. Returns 0, or -1
 * with a message on stderr.
 */
static int
load_run_check_servers(struct load_run *run)
{
	zrpc_call_opts opts = run->call_opts;

	opts.timeout_ms = run->opts->echo ? 0 : run->opts->connect_timeout_ms;
	for (size_t i = 0; i < run->n_clients; i++) {
		uint8_t    *reply = NULL;
		size_t      len;
		zrpc_status status = zrpc_client_call_raw(run->clients[i],
		    run->opts->echo ? "" : LOAD_HEALTH_PATH, NULL, 0, &reply,
		    &len, &opts);

		free(reply);
		if (status.code == ZRPC_UNAVAILABLE ||
		    status.code == ZRPC_DEADLINE_EXCEEDED) {
			fprintf(stderr, "zos-load: cannot reach %s: %s: %s\n",
			    run->opts->url, zrpc_status_name(status.code),
			    status.message);
			return -1;
		}
	}
	return 0;
}

/*
 * Opens the clients and sets the callers up. Returns 0, or an exit status
 * with a message on stderr.
 */
static int
load_run_setup(struct load_run *run)
{
	const struct load_options *opts        = run->opts;
	zrpc_client_opts           client_opts = { .connect_timeout_ms =
		                                       opts->connect_timeout_ms };
	zrpc_status                status;
	int                        rv;

	run->call_opts.timeout_ms = opts->echo ? 0 : opts->timeout_ms;
	run->call_opts.token      = opts->token;
	if ((rv = zrpc_histogram_init(
	         &run->latency, LOAD_HISTOGRAM_PRECISION)) != 0) {
		fprintf(stderr, "zos-load: histogram: %s\n", strerror(rv));
		return LOAD_EXIT_FAILED;
	}
	for (size_t i = 0; i < ZRPC_CODE_COUNT; i++) {
		atomic_init(&run->codes[i], 0);
		atomic_flag_clear(&run->notes[i].taken);
		atomic_init(&run->notes[i].ready, false);
	}
	if ((run->done_fd = eventfd(0, EFD_CLOEXEC)) < 0) {
		fprintf(stderr, "zos-load: eventfd: %s\n", strerror(errno));
		return LOAD_EXIT_FAILED;
	}
	if (sem_init(&run->slots, 0, (unsigned) opts->concurrency) != 0) {
		fprintf(stderr, "zos-load: sem_init: %s\n", strerror(errno));
		return LOAD_EXIT_FAILED;
	}
	run->slots_ready = true;
	run->clients     = calloc(opts->connections, sizeof(*run->clients));
	run->callers     = calloc(opts->concurrency, sizeof(*run->callers));
	run->n_callers   = opts->concurrency;
	if (run->clients == NULL || run->callers == NULL) {
		fprintf(stderr, "zos-load: out of memory\n");
		return LOAD_EXIT_FAILED;
	}
	for (size_t i = 0; i < opts->connections; i++) {
		status = zrpc_client_open(
		    &run->clients[i], opts->url, &client_opts);
		if (!zrpc_status_is_ok(&status)) {
			fprintf(stderr, "zos-load: --url %s: %s\n", opts->url,
			    status.message);
			return status.code == ZRPC_INVALID_ARGUMENT
			    ? LOAD_EXIT_USAGE
			    : LOAD_EXIT_FAILED;
		}
		run->n_clients++;
	}
	for (size_t i = 0; i < run->n_callers; i++) {
		struct load_caller *c = &run->callers[i];

		c->run    = run;
		c->index  = i;
		c->client = run->clients[i % run->n_clients];
		atomic_init(&c->busy, false);
	}
	if (load_run_check_servers(run) != 0) {
		return LOAD_EXIT_FAILED;
	}
	return 0;
}

/* Closes the clients and frees everything. Safe on a partial setup. */
static void
load_run_finish(struct load_run *run)
{
	for (size_t i = 0; i < run->n_clients; i++) {
		zrpc_client_close(run->clients[i]);
	}
	free(run->clients);
	free(run->callers);
	for (size_t i = 0; i < run->n_payloads; i++) {
		free(run->payloads[i].bytes);
	}
	free(run->payloads);
	zrpc_histogram_finish(&run->latency);
	if (run->done_fd >= 0) {
		close(run->done_fd);
	}
	if (run->slots_ready) {
		sem_destroy(&run->slots);
	}
}

/* --- reports ------------------------------------------------------------ */

/* What a report says, computed once from the run. */
struct load_summary {
	uint64_t calls;
	uint64_t ok;
	double   elapsed_s;
	double   calls_per_s;
	double   p50_us, p90_us, p99_us, p999_us, max_us, mean_us;
};

static void
load_summarize(const struct load_run *run, struct load_summary *s)
{
	const struct zrpc_histogram *h     = &run->latency;
	uint64_t                     count = atomic_load(&h->count);
	uint64_t                     end   = atomic_load(&run->end_ns);

	s->calls = atomic_load(&run->completed);
	s->ok    = atomic_load(&run->codes[ZRPC_OK]);
	s->elapsed_s =
	    end > run->start_ns ? (double) (end - run->start_ns) / 1e9 : 0.0;
	s->calls_per_s =
	    s->elapsed_s > 0 ? (double) s->calls / s->elapsed_s : 0.0;
	s->p50_us  = (double) zrpc_histogram_quantile(h, 0.50) / 1e3;
	s->p90_us  = (double) zrpc_histogram_quantile(h, 0.90) / 1e3;
	s->p99_us  = (double) zrpc_histogram_quantile(h, 0.99) / 1e3;
	s->p999_us = (double) zrpc_histogram_quantile(h, 0.999) / 1e3;
	s->max_us  = (double) atomic_load(&h->max) / 1e3;
	s->mean_us = count > 0
	    ? (double) atomic_load(&h->sum) / (double) count / 1e3
	    : 0.0;
}

static const char *
load_mode_text(const struct load_options *opts, char *buf, size_t len)
{
	if (opts->rate > 0) {
		snprintf(buf, len, "open loop at %.6g calls/s", opts->rate);
	} else {
		snprintf(buf, len, "closed loop");
	}
	return buf;
}

static void
load_report_text(const struct load_run *run, const struct load_summary *s)
{
	const struct load_options *opts = run->opts;
	char                       mode[64];

	printf("zos-load: %s %s\n", opts->url,
	    opts->echo ? "(echo: empty method)" : run->path);
	printf("  %zu caller%s on %zu connection%s, %s\n", opts->concurrency,
	    opts->concurrency == 1 ? "" : "s", opts->connections,
	    opts->connections == 1 ? "" : "s",
	    load_mode_text(opts, mode, sizeof(mode)));
	printf("calls     %" PRIu64 " in %.3f s: %.1f calls/s\n", s->calls,
	    s->elapsed_s, s->calls_per_s);
	printf("latency   p50 %.1f us  p90 %.1f us  p99 %.1f us  p99.9 %.1f "
	       "us  max %.1f us  (mean %.1f us)\n",
	    s->p50_us, s->p90_us, s->p99_us, s->p999_us, s->max_us,
	    s->mean_us);
	if (opts->rate > 0) {
		printf("schedule  at most %.3f ms behind\n",
		    (double) run->max_lag_ns / 1e6);
	}
	printf("status   ");
	for (size_t i = 0; i < ZRPC_CODE_COUNT; i++) {
		uint64_t n = atomic_load(&run->codes[i]);

		if (n > 0) {
			printf(" %s %" PRIu64, zrpc_status_name((zrpc_code) i),
			    n);
		}
	}
	if (s->calls == 0) {
		printf(" (no calls)");
	}
	printf("\n");
	for (size_t i = 1; i < ZRPC_CODE_COUNT; i++) {
		if (atomic_load(&run->notes[i].ready)) {
			printf("          %s, first: %s\n",
			    zrpc_status_name((zrpc_code) i),
			    run->notes[i].message);
		}
	}
}

/* A json-c number printed with DIGITS decimals. */
static json_object *
load_json_number(double value, int digits)
{
	char text[64];

	snprintf(text, sizeof(text), "%.*f", digits, value);
	return json_object_new_double_s(value, text);
}

/* Prints the report as one JSON object. Returns 0, or -1 (no memory). */
static int
load_report_json(const struct load_run *run, const struct load_summary *s)
{
	const struct load_options *opts = run->opts;
	json_object *root = json_object_new_object(), *latency, *codes,
	            *errors;
	const char *text;

	if (root == NULL) {
		return -1;
	}
	json_object_object_add(root, "url", json_object_new_string(opts->url));
	json_object_object_add(
	    root, "method", json_object_new_string(run->path));
	json_object_object_add(root, "concurrency",
	    json_object_new_int64((int64_t) opts->concurrency));
	json_object_object_add(root, "connections",
	    json_object_new_int64((int64_t) opts->connections));
	json_object_object_add(root, "rate",
	    opts->rate > 0 ? load_json_number(opts->rate, 3) : NULL);
	json_object_object_add(
	    root, "calls", json_object_new_uint64(s->calls));
	json_object_object_add(root, "ok", json_object_new_uint64(s->ok));
	json_object_object_add(
	    root, "errors", json_object_new_uint64(s->calls - s->ok));
	json_object_object_add(
	    root, "elapsed_s", load_json_number(s->elapsed_s, 6));
	json_object_object_add(
	    root, "calls_per_s", load_json_number(s->calls_per_s, 3));
	latency = json_object_new_object();
	json_object_object_add(latency, "p50", load_json_number(s->p50_us, 3));
	json_object_object_add(latency, "p90", load_json_number(s->p90_us, 3));
	json_object_object_add(latency, "p99", load_json_number(s->p99_us, 3));
	json_object_object_add(
	    latency, "p999", load_json_number(s->p999_us, 3));
	json_object_object_add(latency, "max", load_json_number(s->max_us, 3));
	json_object_object_add(
	    latency, "mean", load_json_number(s->mean_us, 3));
	json_object_object_add(root, "latency_us", latency);
	codes  = json_object_new_object();
	errors = json_object_new_object();
	for (size_t i = 0; i < ZRPC_CODE_COUNT; i++) {
		uint64_t n = atomic_load(&run->codes[i]);

		if (n > 0) {
			json_object_object_add(codes,
			    zrpc_status_name((zrpc_code) i),
			    json_object_new_uint64(n));
		}
		if (i > 0 && atomic_load(&run->notes[i].ready)) {
			json_object_object_add(errors,
			    zrpc_status_name((zrpc_code) i),
			    json_object_new_string(run->notes[i].message));
		}
	}
	json_object_object_add(root, "codes", codes);
	json_object_object_add(root, "first_errors", errors);
	if (opts->rate > 0) {
		json_object_object_add(root, "max_lag_ms",
		    load_json_number((double) run->max_lag_ns / 1e6, 3));
	}
	text = json_object_to_json_string_ext(
	    root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	if (text == NULL) {
		json_object_put(root);
		return -1;
	}
	printf("%s\n", text);
	json_object_put(root);
	return 0;
}

int
main(int argc, char **argv)
{
	struct load_options opts;
	struct load_run     run;
	struct load_summary summary;
	sigset_t            signals;
	bool                interrupted;
	int                 sigfd, rv;

	if ((rv = load_parse_options(argc, argv, &opts)) != 0) {
		return rv < 0 ? LOAD_EXIT_OK : rv;
	}
	memset(&run, 0, sizeof(run));
	run.opts    = &opts;
	run.done_fd = -1;
	if ((rv = load_prepare_requests(&run)) != 0) {
		load_run_finish(&run);
		return rv;
	}

	/*
	 * Block the signals before nng starts a thread, so that every thread
	 * inherits the mask and only the signalfd sees them.
	 */
	sigemptyset(&signals);
	sigaddset(&signals, SIGINT);
	sigaddset(&signals, SIGTERM);
	if ((rv = pthread_sigmask(SIG_BLOCK, &signals, NULL)) != 0 ||
	    (sigfd = signalfd(-1, &signals, SFD_CLOEXEC)) < 0) {
		fprintf(stderr, "zos-load: signals: %s\n",
		    strerror(rv != 0 ? rv : errno));
		load_run_finish(&run);
		return LOAD_EXIT_FAILED;
	}
	if ((rv = load_run_setup(&run)) != 0) {
		load_run_finish(&run);
		close(sigfd);
		return rv;
	}
	interrupted = load_run_execute(&run, sigfd);
	close(sigfd);
	load_summarize(&run, &summary);

	rv = interrupted ? LOAD_EXIT_INTERRUPTED : LOAD_EXIT_OK;
	if (opts.json) {
		if (load_report_json(&run, &summary) != 0) {
			fprintf(stderr, "zos-load: out of memory\n");
			rv = LOAD_EXIT_FAILED;
		}
	} else {
		load_report_text(&run, &summary);
	}
	if (fflush(stdout) != 0) {
		fprintf(stderr, "zos-load: stdout: %s\n", strerror(errno));
		rv = LOAD_EXIT_FAILED;
	}
	load_run_finish(&run);
	return rv;
}
