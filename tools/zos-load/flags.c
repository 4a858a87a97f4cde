/*
 * zos-load's command line; see flags.h.
 *
 * getopt_long, long options only; zos-load takes no operands, so a word
 * that is not an option is an error. Each value is range-checked as it is
 * read (the message names the option and repeats the value); what depends
 * on several options (exactly one of --duration and --requests, at most
 * one request source, --connections within --concurrency,
 * --data-per-caller only with --data-file and the closed loop) is checked
 * once the whole line is read. --help is the program's manual: zos-load.1
 * is generated from it by help2man (scripts/man-page), which takes its
 * first line, "zos-load - what it is", for the page's NAME; so what --help
 * says is what the man page says.
 */
#include "flags.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The usage text, on OUT. */
static void
load_flags_usage(FILE *out)
{
	fprintf(out,
	    "usage: zos-load --url URL... --method METHOD [--data JSON | "
	    "--data-hex HEX |\n"
	    "                --data-file FILE [--data-per-caller]] "
	    "[--proto F [-I DIR]... |\n"
	    "                --protoset F] [-H 'KEY: VALUE']... "
	    "--concurrency C\n"
	    "                (--duration S | --requests N) [--rate R | "
	    "--rate A:B:STEP\n"
	    "                --step-duration D] [--skip-first N] "
	    "[--connections K]\n"
	    "                [--timeout-ms T] [--connect-timeout-ms T] "
	    "[--token T] [--echo]\n"
	    "                [--tls-ca F] [--cert F --key F] [--format "
	    "text|json|csv]\n"
	    "                [--percentiles LIST] [--json] [--version] "
	    "[--help]\n"
	    "\n"
	    "Drives one method of a zrpc server (zosd or any other) with "
	    "C calls in flight\n"
	    "and reports calls/s, latency percentiles, a latency histogram "
	    "and the calls\n"
	    "by status code.\n"
	    "\n"
	    "  --url URL            server address, any nng URL (required);\n"
	    "                       more than once (or URL,URL,...) for "
	    "several servers:\n"
	    "                       each call goes to one healthy server "
	    "of them\n"
	    "  --method METHOD      /pkg.Service/Method (also "
	    "pkg.Service/Method or\n"
	    "                       pkg.Service.Method); its types come from "
	    "--protoset or\n"
	    "                       --proto when given, else from the "
	    "server by reflection,\n"
	    "                       else from the tables compiled into "
	    "zos-load (zos.v1,\n"
	    "                       zrpc.v1); with --data-hex any wire name "
	    "will do\n"
	    "                       (required, except with --echo)\n"
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
	    "  --protoset F         the method's descriptors from F, a "
	    "FileDescriptorSet\n"
	    "                       (protoc --include_imports "
	    "--descriptor_set_out=F)\n"
	    "  --proto F            or from the .proto file F, compiled by "
	    "protoc (in PATH)\n"
	    "  -I DIR, --import-path DIR  where --proto's imports are found "
	    "(repeatable;\n"
	    "                       default: the directory of F)\n"
	    "  -H 'KEY: VALUE', --header 'KEY: VALUE'  metadata sent with "
	    "every call\n"
	    "                       (repeatable, at most %d); an "
	    "x-request-id given here\n"
	    "                       is sent on every call instead of one "
	    "per call\n"
	    "  --concurrency C      calls in flight at once, 1..%d "
	    "(required)\n"
	    "  --duration S         issue calls for S seconds, then wait for "
	    "those in flight\n"
	    "  --requests N         or make exactly N calls in all (not "
	    "counting --skip-first)\n"
	    "  --rate R             open loop: issue R calls/s in all on a "
	    "fixed schedule,\n"
	    "                       at most C in flight (default: closed "
	    "loop, each\n"
	    "                       completion issues the next call)\n"
	    "  --rate A:B:STEP      a stepped schedule (ghz's "
	    "--load-schedule=step): R\n"
	    "                       starts at A and grows by STEP (negative: "
	    "shrinks) every\n"
	    "                       --step-duration until it reaches B, "
	    "which then holds to\n"
	    "                       the end; the report has a line per "
	    "step\n"
	    "  --step-duration D    seconds per step, e.g. 10 or 500ms "
	    "(with --rate A:B:STEP)\n"
	    "  --skip-first N       warm up: make N calls first (same "
	    "concurrency, closed\n"
	    "                       loop) and leave them out of the report "
	    "(default 0)\n"
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
	    "  --tls-ca F           for tls+tcp:// and wss:// URLs: the CA "
	    "certificates (PEM)\n"
	    "                       the server's certificate must chain to "
	    "(default: the\n"
	    "                       system store); the server is always "
	    "verified, under\n"
	    "                       the URL's host name "
	    "(tls+tcp://localhost:PORT)\n"
	    "  --cert F             a client certificate (PEM) for a server "
	    "that requires\n"
	    "                       one (mTLS); needs --key\n"
	    "  --key F              its private key (PEM, unencrypted)\n"
	    "  --echo               the server is zos-echo (bench/echo.c), "
	    "which sends each\n"
	    "                       request back unchanged: send an empty "
	    "method name and no\n"
	    "                       timeout, so that the echoed request "
	    "reads as an OK reply\n"
	    "                       (--method then only names the type of "
	    "--data)\n"
	    "  --format F           the report on stdout: text (default), "
	    "json (one object)\n"
	    "                       or csv (a header, a row per step, a "
	    "\"total\" row)\n"
	    "  --json               the same as --format json\n"
	    "  --percentiles LIST   latency percentiles to report, comma "
	    "separated, in\n"
	    "                       (0, 100] (default 50,90,99,99.9; at "
	    "most %d)\n"
	    "  --version            print the version and exit\n"
	    "  --help               this text\n"
	    "\n"
	    "Before the run each connection is checked with one "
	    "/zrpc.v1.Health/Check\n"
	    "call (any reply will do). A progress line goes to stderr every "
	    "second. The\n"
	    "counts and latencies are the zrpc client's own metrics "
	    "(zrpc_client_stats):\n"
	    "a call's latency runs from the call to its completion, "
	    "percentiles are the\n"
	    "upper edge of their histogram bucket (under 1%% above the "
	    "exact value).\n"
	    "Exit status: 0 when the run completed (RPC errors are counted "
	    "and reported),\n"
	    "1 when it could not run (the server cannot be reached), 2 for "
	    "bad usage,\n"
	    "130 when interrupted (the report covers the calls made).\n",
	    LOAD_MAX_HEADERS, LOAD_MAX_CONCURRENCY, LOAD_DEFAULT_TIMEOUT_MS,
	    LOAD_DEFAULT_CONNECT_TIMEOUT_MS, LOAD_MAX_PERCENTILES);
}

int
load_flags_usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "zos-load: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n\n");
	load_flags_usage(stderr);
	return LOAD_EXIT_USAGE;
}

/* Reads a decimal integer in [MIN, MAX]. Returns 0 or -1. */
static int
load_flags_parse_u64(
    const char *text, uint64_t min, uint64_t max, uint64_t *out)
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
static int load_flags_parse_positive(
    const char *text, double max, double *out);

/* Reads a finite number (any sign). Returns 0 or -1. */
static int
load_flags_parse_number(const char *text, double *out)
{
	char  *end;
	double value;

	errno = 0;
	value = strtod(text, &end);
	if (errno != 0 || end == text || *end != '\0' || !isfinite(value)) {
		return -1;
	}
	*out = value;
	return 0;
}

/*
 * Reads --rate: R, or START:END:STEP into OPTS. Returns 0 or -1.
 * START and END in (0, LOAD_MAX_RATE]; STEP non-zero, moving START
 * towards END; at most LOAD_MAX_STEPS steps.
 */
static int
load_flags_parse_rate(const char *text, struct load_options *opts)
{
	char   start[64], end[64], step[64];
	double steps;
	int    n = 0;

	if (strchr(text, ':') == NULL) {
		opts->rate_step = 0;
		return load_flags_parse_positive(
		    text, LOAD_MAX_RATE, &opts->rate);
	}
	if (strlen(text) >= sizeof(start) ||
	    sscanf(text, "%63[^:]:%63[^:]:%63[^:]%n", start, end, step, &n) !=
	        3 ||
	    text[n] != '\0' ||
	    load_flags_parse_positive(start, LOAD_MAX_RATE, &opts->rate) !=
	        0 ||
	    load_flags_parse_positive(end, LOAD_MAX_RATE, &opts->rate_end) !=
	        0 ||
	    load_flags_parse_number(step, &opts->rate_step) != 0 ||
	    opts->rate_step == 0 || opts->rate == opts->rate_end ||
	    (opts->rate_end > opts->rate) != (opts->rate_step > 0)) {
		return -1;
	}
	steps = ceil((opts->rate_end - opts->rate) / opts->rate_step) + 1;
	return steps <= LOAD_MAX_STEPS ? 0 : -1;
}

/* Reads a duration in seconds: N, Ns or Nms, in (0, MAX]. 0 or -1. */
static int
load_flags_parse_seconds(const char *text, double max, double *out)
{
	char   number[64];
	size_t len   = strlen(text);
	double scale = 1;

	if (len >= sizeof(number)) {
		return -1;
	}
	memcpy(number, text, len + 1);
	if (len > 2 && strcmp(number + len - 2, "ms") == 0) {
		number[len - 2] = '\0';
		scale           = 1e-3;
	} else if (len > 1 && number[len - 1] == 's') {
		number[len - 1] = '\0';
	}
	if (load_flags_parse_positive(number, max / scale, out) != 0) {
		return -1;
	}
	*out *= scale;
	return 0;
}

/* Reads --percentiles LIST into OPTS. Returns 0 or -1. */
static int
load_flags_parse_percentiles(const char *text, struct load_options *opts)
{
	const char *p = text;

	opts->n_percentiles = 0;
	for (;;) {
		char   item[64];
		size_t len = strcspn(p, ",");

		if (len == 0 || len >= sizeof(item) ||
		    opts->n_percentiles == LOAD_MAX_PERCENTILES) {
			return -1;
		}
		memcpy(item, p, len);
		item[len] = '\0';
		if (load_flags_parse_positive(item, 100,
		        &opts->percentiles[opts->n_percentiles]) != 0) {
			return -1;
		}
		opts->n_percentiles++;
		if (p[len] == '\0') {
			return 0;
		}
		p += len + 1;
	}
}

/*
 * Reads -H 'KEY: VALUE' into OPTS: KEY is what comes before the first
 * ':' (blanks trimmed, not empty, no blanks inside), VALUE what comes
 * after (blanks trimmed). Returns 0, -1 for a malformed header, or -2
 * when out of memory.
 */
static int
load_flags_parse_header(const char *text, struct load_options *opts)
{
	const char *colon = strchr(text, ':'), *k = text, *v, *k_end, *v_end;
	char       *key, *value;

	if (colon == NULL || opts->n_headers == LOAD_MAX_HEADERS) {
		return -1;
	}
	while (*k == ' ' || *k == '\t') {
		k++;
	}
	for (k_end = colon;
	     k_end > k && (k_end[-1] == ' ' || k_end[-1] == '\t'); k_end--) { }
	if (k_end == k) {
		return -1;
	}
	for (const char *c = k; c < k_end; c++) {
		if (*c == ' ' || *c == '\t' || (unsigned char) *c < 0x20) {
			return -1;
		}
	}
	for (v = colon + 1; *v == ' ' || *v == '\t'; v++) { }
	for (v_end = v + strlen(v);
	     v_end > v && (v_end[-1] == ' ' || v_end[-1] == '\t'); v_end--) { }
	key   = strndup(k, (size_t) (k_end - k));
	value = strndup(v, (size_t) (v_end - v));
	if (key == NULL || value == NULL) {
		free(key);
		free(value);
		return -2;
	}
	opts->headers[opts->n_headers].key   = key;
	opts->headers[opts->n_headers].value = value;
	opts->n_headers++;
	return 0;
}

void
load_flags_finish(struct load_options *opts)
{
	for (size_t i = 0; i < opts->n_headers; i++) {
		free((char *) opts->headers[i].key);
		free((char *) opts->headers[i].value);
	}
	opts->n_headers = 0;
}

size_t
load_flags_steps(const struct load_options *opts)
{
	if (opts->rate_step == 0) {
		return 1;
	}
	return (size_t) ceil((opts->rate_end - opts->rate) / opts->rate_step) +
	    1;
}

double
load_flags_step_rate(const struct load_options *opts, size_t i)
{
	double rate = opts->rate + (double) i * opts->rate_step;

	if (opts->rate_step > 0 ? rate > opts->rate_end
	                        : rate < opts->rate_end) {
		rate = opts->rate_end;
	}
	return opts->rate_step == 0 ? opts->rate : rate;
}

/* Reads a finite number in (0, MAX]. Returns 0 or -1. */
static int
load_flags_parse_positive(const char *text, double max, double *out)
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

int
load_flags_parse(int argc, char **argv, struct load_options *opts)
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
		OPT_TLS_CA,
		OPT_CERT,
		OPT_KEY,
		OPT_ECHO,
		OPT_JSON,
		OPT_FORMAT,
		OPT_PERCENTILES,
		OPT_SKIP_FIRST,
		OPT_STEP_DURATION,
		OPT_PROTOSET,
		OPT_PROTO,
		OPT_VERSION,
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
		{ "tls-ca", required_argument, NULL, OPT_TLS_CA },
		{ "cert", required_argument, NULL, OPT_CERT },
		{ "key", required_argument, NULL, OPT_KEY },
		{ "echo", no_argument, NULL, OPT_ECHO },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "format", required_argument, NULL, OPT_FORMAT },
		{ "percentiles", required_argument, NULL, OPT_PERCENTILES },
		{ "skip-first", required_argument, NULL, OPT_SKIP_FIRST },
		{ "step-duration", required_argument, NULL,
		    OPT_STEP_DURATION },
		{ "protoset", required_argument, NULL, OPT_PROTOSET },
		{ "proto", required_argument, NULL, OPT_PROTO },
		{ "import-path", required_argument, NULL, 'I' },
		{ "header", required_argument, NULL, 'H' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ "help", no_argument, NULL, OPT_HELP },
		{ NULL, 0, NULL, 0 },
	};
	static const double default_percentiles[] = { 50, 90, 99, 99.9 };
	uint64_t            value;
	int                 opt, n_data = 0, rv;

	memset(opts, 0, sizeof(*opts));
	opts->connections        = 1;
	opts->timeout_ms         = LOAD_DEFAULT_TIMEOUT_MS;
	opts->connect_timeout_ms = LOAD_DEFAULT_CONNECT_TIMEOUT_MS;
	opts->format             = LOAD_FORMAT_TEXT;
	memcpy(opts->percentiles, default_percentiles,
	    sizeof(default_percentiles));
	opts->n_percentiles =
	    sizeof(default_percentiles) / sizeof(default_percentiles[0]);
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":H:I:", options, NULL)) != -1) {
		switch (opt) {
		case 'H':
			if ((rv = load_flags_parse_header(optarg, opts)) ==
			    -2) {
				fprintf(stderr, "zos-load: out of memory\n");
				return LOAD_EXIT_FAILED;
			}
			if (rv != 0) {
				return load_flags_usage_error(
				    "-H wants 'KEY: VALUE' (a key without "
				    "blanks; at most %d), not '%s'",
				    LOAD_MAX_HEADERS, optarg);
			}
			break;
		case 'I':
			if (opts->n_import_paths == LOAD_MAX_IMPORT_PATHS) {
				return load_flags_usage_error(
				    "at most %d -I directories",
				    LOAD_MAX_IMPORT_PATHS);
			}
			opts->import_paths[opts->n_import_paths++] = optarg;
			break;
		case OPT_PROTOSET:
			opts->protoset = optarg;
			break;
		case OPT_PROTO:
			opts->proto = optarg;
			break;
		case OPT_FORMAT:
			if (strcmp(optarg, "text") == 0) {
				opts->format = LOAD_FORMAT_TEXT;
			} else if (strcmp(optarg, "json") == 0) {
				opts->format = LOAD_FORMAT_JSON;
			} else if (strcmp(optarg, "csv") == 0) {
				opts->format = LOAD_FORMAT_CSV;
			} else {
				return load_flags_usage_error(
				    "--format wants text, json or csv, not "
				    "'%s'",
				    optarg);
			}
			break;
		case OPT_PERCENTILES:
			if (load_flags_parse_percentiles(optarg, opts) != 0) {
				return load_flags_usage_error(
				    "--percentiles wants a comma-separated "
				    "list of at most %d numbers in (0, 100], "
				    "not '%s'",
				    LOAD_MAX_PERCENTILES, optarg);
			}
			break;
		case OPT_SKIP_FIRST:
			if (load_flags_parse_u64(optarg, 0, UINT64_MAX / 4,
			        &opts->skip_first) != 0) {
				return load_flags_usage_error(
				    "--skip-first wants a count, not '%s'",
				    optarg);
			}
			break;
		case OPT_STEP_DURATION:
			if (load_flags_parse_seconds(optarg,
			        LOAD_MAX_DURATION_S,
			        &opts->step_duration_s) != 0) {
				return load_flags_usage_error(
				    "--step-duration wants seconds (10, 10s "
				    "or 500ms), not '%s'",
				    optarg);
			}
			break;
		case OPT_URL: {
			/* Each --url adds servers (a comma list, several). */
			size_t used =
			    opts->url != NULL ? strlen(opts->url_list) : 0;
			int n = snprintf(opts->url_list + used,
			    sizeof(opts->url_list) - used, "%s%s",
			    used > 0 ? "," : "", optarg);
			if (n < 0 ||
			    (size_t) n >= sizeof(opts->url_list) - used) {
				return load_flags_usage_error(
				    "--url: the URLs come to over %d bytes",
				    LOAD_URL_LIST_MAX - 1);
			}
			opts->url = opts->url_list;
			break;
		}
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
			if (load_flags_parse_u64(optarg, 1,
			        LOAD_MAX_CONCURRENCY, &value) != 0) {
				return load_flags_usage_error(
				    "--concurrency wants 1..%d, not '%s'",
				    LOAD_MAX_CONCURRENCY, optarg);
			}
			opts->concurrency = (size_t) value;
			break;
		case OPT_DURATION:
			if (load_flags_parse_positive(optarg,
			        LOAD_MAX_DURATION_S, &opts->duration_s) != 0) {
				return load_flags_usage_error(
				    "--duration wants seconds, 0 < S <= %.0f, "
				    "not '%s'",
				    LOAD_MAX_DURATION_S, optarg);
			}
			break;
		case OPT_REQUESTS:
			if (load_flags_parse_u64(optarg, 1, UINT64_MAX / 4,
			        &opts->requests) != 0) {
				return load_flags_usage_error(
				    "--requests wants a positive count, not "
				    "'%s'",
				    optarg);
			}
			break;
		case OPT_RATE:
			if (load_flags_parse_rate(optarg, opts) != 0) {
				return load_flags_usage_error(
				    "--rate wants calls/s, 0 < R <= %.0f, or "
				    "START:END:STEP (STEP towards END, at "
				    "most "
				    "%d steps), not '%s'",
				    LOAD_MAX_RATE, LOAD_MAX_STEPS, optarg);
			}
			break;
		case OPT_CONNECTIONS:
			if (load_flags_parse_u64(optarg, 1,
			        LOAD_MAX_CONNECTIONS, &value) != 0) {
				return load_flags_usage_error(
				    "--connections wants 1..%d, not '%s'",
				    LOAD_MAX_CONNECTIONS, optarg);
			}
			opts->connections = (size_t) value;
			break;
		case OPT_TIMEOUT:
			if (load_flags_parse_u64(
			        optarg, 0, INT32_MAX, &value) != 0) {
				return load_flags_usage_error(
				    "--timeout-ms wants milliseconds (0 = "
				    "none), not '%s'",
				    optarg);
			}
			opts->timeout_ms = (uint32_t) value;
			break;
		case OPT_CONNECT_TIMEOUT:
			if (load_flags_parse_u64(
			        optarg, 1, INT32_MAX, &value) != 0) {
				return load_flags_usage_error(
				    "--connect-timeout-ms wants positive "
				    "milliseconds, not '%s'",
				    optarg);
			}
			opts->connect_timeout_ms = (uint32_t) value;
			break;
		case OPT_TOKEN:
			opts->token = optarg;
			break;
		case OPT_TLS_CA:
			opts->tls_ca = optarg;
			break;
		case OPT_CERT:
			opts->cert = optarg;
			break;
		case OPT_KEY:
			opts->key = optarg;
			break;
		case OPT_ECHO:
			opts->echo = true;
			break;
		case OPT_JSON:
			opts->format = LOAD_FORMAT_JSON;
			break;
		case OPT_VERSION:
			printf("zos-load %s\n", ZOS_VERSION);
			return -1;
		case OPT_HELP:
			printf("zos-load - the zos load generator\n\n");
			load_flags_usage(stdout);
			return -1;
		case ':':
			return load_flags_usage_error(
			    "%s wants a value", argv[optind - 1]);
		default:
			return load_flags_usage_error(
			    "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind != argc) {
		return load_flags_usage_error(
		    "unexpected argument '%s'", argv[optind]);
	}
	if (opts->url == NULL) {
		return load_flags_usage_error("--url is required");
	}
	if (opts->method == NULL && !opts->echo) {
		return load_flags_usage_error("--method is required");
	}
	if (opts->concurrency == 0) {
		return load_flags_usage_error("--concurrency is required");
	}
	if ((opts->duration_s > 0) == (opts->requests > 0)) {
		return load_flags_usage_error(
		    "give exactly one of --duration and --requests");
	}
	if (n_data > 1) {
		return load_flags_usage_error(
		    "give at most one of --data, --data-hex and --data-file");
	}
	if (opts->connections > opts->concurrency) {
		return load_flags_usage_error(
		    "--connections (%zu) must not exceed --concurrency (%zu)",
		    opts->connections, opts->concurrency);
	}
	if (opts->rate_step != 0 && opts->step_duration_s == 0) {
		return load_flags_usage_error(
		    "--rate START:END:STEP needs --step-duration");
	}
	if (opts->rate_step == 0 && opts->step_duration_s > 0) {
		return load_flags_usage_error(
		    "--step-duration goes with --rate START:END:STEP");
	}
	if (opts->proto != NULL && opts->protoset != NULL) {
		return load_flags_usage_error(
		    "give at most one of --proto and --protoset");
	}
	if (opts->n_import_paths > 0 && opts->proto == NULL) {
		return load_flags_usage_error("-I goes with --proto");
	}
	if ((opts->cert == NULL) != (opts->key == NULL)) {
		return load_flags_usage_error("--cert and --key go together");
	}
	if (opts->data_per_caller && opts->data_file == NULL) {
		return load_flags_usage_error(
		    "--data-per-caller needs --data-file");
	}
	if (opts->data_per_caller && opts->rate > 0) {
		return load_flags_usage_error(
		    "--data-per-caller is for the closed loop, not --rate");
	}
	if (opts->echo && opts->method == NULL && opts->data_hex == NULL &&
	    n_data > 0) {
		return load_flags_usage_error(
		    "--echo with --data or --data-file needs --method to "
		    "name the input type");
	}
	return 0;
}
