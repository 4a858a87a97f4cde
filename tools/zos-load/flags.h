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

#define LOAD_DEFAULT_TIMEOUT_MS 5000u
#define LOAD_DEFAULT_CONNECT_TIMEOUT_MS 5000u
#define LOAD_MAX_CONCURRENCY 16384
#define LOAD_MAX_CONNECTIONS 1024
#define LOAD_MAX_RATE 10000000.0
#define LOAD_MAX_DURATION_S 86400.0

/* Exit statuses (documented in the usage text). */
#define LOAD_EXIT_OK 0
#define LOAD_EXIT_FAILED 1
#define LOAD_EXIT_USAGE 2
#define LOAD_EXIT_INTERRUPTED 130

/*
 * The parsed command line. The strings point into argv (not owned) and
 * live as long as the program.
 */
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

/*
 * Reports a usage error found after parsing (a method or --data-hex that
 * turns out wrong): "zos-load: MESSAGE", a blank line and the usage on
 * stderr. Returns LOAD_EXIT_USAGE.
 */
int load_flags_usage_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

#endif /* ZOS_LOAD_FLAGS_H */
