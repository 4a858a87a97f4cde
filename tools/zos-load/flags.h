/*
 * zos-load's command line: the options, their limits and defaults, the
 * usage text (--help, and after every usage error) and the exit statuses
 * that text documents.
 *
 * Parsing checks every value and every combination before anything is
 * opened or packed, so that a bad command line always ends in a message,
 * the usage and exit status 2, and never half way through a run.
 */
#ifndef ZOS_LOAD_FLAGS_H
#define ZOS_LOAD_FLAGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "zrpc/service.h"

#define LOAD_DEFAULT_TIMEOUT_MS 5000u
#define LOAD_DEFAULT_CONNECT_TIMEOUT_MS 5000u
#define LOAD_MAX_CONCURRENCY 16384
#define LOAD_MAX_CONNECTIONS 1024
#define LOAD_MAX_RATE 10000000.0
#define LOAD_MAX_DURATION_S 86400.0
#define LOAD_MAX_HEADERS 64
#define LOAD_MAX_PERCENTILES 32
#define LOAD_MAX_IMPORT_PATHS 64
#define LOAD_MAX_STEPS 10000

/* Exit statuses (documented in the usage text). */
#define LOAD_EXIT_OK 0
#define LOAD_EXIT_FAILED 1
#define LOAD_EXIT_USAGE 2
#define LOAD_EXIT_INTERRUPTED 130

/* How the report is printed (--format). */
enum load_format {
	LOAD_FORMAT_TEXT,
	LOAD_FORMAT_JSON,
	LOAD_FORMAT_CSV,
};

/* Longest --url list (all --url values joined with commas), in bytes. */
#define LOAD_URL_LIST_MAX 4096

/*
 * The parsed command line. The strings point into argv (not owned) and
 * live as long as the program, but for the -H keys and values, which
 * load_flags_finish frees.
 */
struct load_options {
	const char *url; /* url_list once --url was given */
	/* --url, given once or more: the URLs joined with commas */
	char        url_list[LOAD_URL_LIST_MAX];
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
	double      rate;       /* 0 = closed loop; the first step's rate */
	/* --rate START:END:STEP with --step-duration D: STEP is added to
	 * the rate every D seconds until it reaches END, which then holds.
	 * STEP is 0 for a fixed rate. */
	double      rate_end;
	double      rate_step;
	double      step_duration_s;
	uint64_t    skip_first; /* --skip-first: warm-up calls, not counted */
	uint32_t    timeout_ms; /* 0 = none */
	uint32_t    connect_timeout_ms;
	const char *token;
	enum load_format format; /* --format; --json is --format json */
	/* --percentiles, in the order given, each in (0, 100] */
	double percentiles[LOAD_MAX_PERCENTILES];
	size_t n_percentiles;
	/* -H 'key: value', in the order given; strings malloc'd */
	struct zrpc_metadata_entry headers[LOAD_MAX_HEADERS];
	size_t                     n_headers;
	/* --protoset F, or --proto F with -I DIR...; NULL = not given */
	const char *protoset;
	const char *proto;
	const char *import_paths[LOAD_MAX_IMPORT_PATHS];
	size_t      n_import_paths;
	/* --tls-ca, --cert, --key; NULL = not given */
	const char *tls_ca;
	const char *cert;
	const char *key;
};

/*
 * Parses ARGC/ARGV into OPTS (which need not be initialised). Returns 0;
 * LOAD_EXIT_USAGE with the message and the usage on stderr; or -1 after
 * --help or --version printed their text on stdout (the caller exits 0).
 */
int load_flags_parse(int argc, char **argv, struct load_options *opts);

/* Frees what load_flags_parse allocated in OPTS (the -H strings). */
void load_flags_finish(struct load_options *opts);

/*
 * Number of steps of OPTS's --rate schedule: 1 for a fixed rate (or the
 * closed loop), else the steps up to and including the one at END.
 */
size_t load_flags_steps(const struct load_options *opts);

/* The target rate of step I (0-based) of OPTS's schedule. */
double load_flags_step_rate(const struct load_options *opts, size_t i);

/*
 * Reports a usage error found after parsing (a method or --data-hex that
 * turns out wrong): "zos-load: MESSAGE", a blank line and the usage on
 * stderr. Returns LOAD_EXIT_USAGE.
 */
int load_flags_usage_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

#endif /* ZOS_LOAD_FLAGS_H */
