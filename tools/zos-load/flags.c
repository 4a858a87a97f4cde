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
	    "usage: zos-load --url URL --method METHOD [--data JSON | "
	    "--data-hex HEX |\n"
	    "                --data-file FILE [--data-per-caller]] "
	    "--concurrency C\n"
	    "                (--duration S | --requests N) [--rate R] "
	    "[--connections K]\n"
	    "                [--timeout-ms T] [--connect-timeout-ms T] "
	    "[--token T] [--echo]\n"
	    "                [--tls-ca F] [--cert F --key F] [--json] "
	    "[--version] [--help]\n"
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
	    "  --json               print the report as one JSON object on "
	    "stdout instead of\n"
	    "                       text\n"
	    "  --version            print the version and exit\n"
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
		{ "version", no_argument, NULL, OPT_VERSION },
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
			if (load_flags_parse_positive(
			        optarg, LOAD_MAX_RATE, &opts->rate) != 0) {
				return load_flags_usage_error(
				    "--rate wants calls/s, 0 < R <= %.0f, not "
				    "'%s'",
				    LOAD_MAX_RATE, optarg);
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
			opts->json = true;
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
