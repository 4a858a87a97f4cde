/*
 * zosctl's parts, shared by its files: the state of one run (struct
 * zosctl), the exit statuses, calling and printing (call.c), and the
 * commands that work with any zrpc service through descriptors
 * (generic.c: call, list, describe). zosctl.c holds the command table,
 * the typed commands, the help and the command line.
 *
 * Exit status, the contract scripts rely on (ZOSCTL_EXIT_*): 0 when the
 * call succeeded; 64 + the gRPC code when a call (or the reflection call
 * that looked its method up) ended with a status, so 65 CANCELLED ...
 * 68 DEADLINE_EXCEEDED, 69 NOT_FOUND ... 78 UNAVAILABLE ... 80
 * UNAUTHENTICATED, with "CODE_NAME: message" on stderr (grpcurl's values);
 * 1 for a local failure (out of memory, a reply that cannot be printed,
 * protoc missing) or `health` hearing anything but SERVING; 2 for bad
 * usage or bad input (unknown command, option, method or field, bad JSON,
 * a bad -H, a .proto that protoc refuses), in which case no call is made;
 * 130 when interrupted (the shell's value for SIGINT).
 */
#ifndef ZOSCTL_H
#define ZOSCTL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <protobuf-c/protobuf-c.h>

#include "resolve.h"
#include "zrpc/client.h"

#define ZOSCTL_EXIT_OK 0
#define ZOSCTL_EXIT_FAILED 1     /* a local failure, or health not SERVING */
#define ZOSCTL_EXIT_USAGE 2      /* bad usage or input; nothing was sent */
#define ZOSCTL_EXIT_CODE_BASE 64 /* + a status code: the call's status */

/* Most -H entries (zosd takes at most 64 metadata entries per call). */
#define ZOSCTL_MAX_HEADERS 32
/* Most -I directories. */
#define ZOSCTL_MAX_IMPORT_PATHS 32

/* Longest --url list (all --url values joined with commas), in bytes. */
#define ZOSCTL_URL_LIST_MAX 4096

enum zosctl_format {
	ZOSCTL_FORMAT_JSON,
	ZOSCTL_FORMAT_TEXT,
};

/* The state of one run: global options, the client and the resolver,
 * once opened. */
struct zosctl {
	const char *url; /* the default, or url_list */
	/* --url, given once or more: the URLs joined with commas */
	char               url_list[ZOSCTL_URL_LIST_MAX];
	const char        *token;
	uint32_t           timeout_ms;
	uint32_t           max_reply_bytes;
	const char        *tls_ca; /* --tls-ca, --cert, --key; NULL = none */
	const char        *cert;
	const char        *key;
	bool               verbose;       /* -v */
	enum zosctl_format format;        /* --format */
	bool               emit_defaults; /* --emit-defaults */
	/* -H 'key: value', split in place in argv */
	struct zrpc_metadata_entry headers[ZOSCTL_MAX_HEADERS];
	size_t                     n_headers;
	const char                *proto;                  /* --proto */
	const char                *protoset;               /* --protoset */
	const char *import_paths[ZOSCTL_MAX_IMPORT_PATHS]; /* -I */
	size_t      n_import_paths;
	/* The session the typed command names (session get, transition,
	 * reset; complete --session): with several --url servers, the call
	 * goes to that session's node (zos/client). NULL = none. */
	const char   *session_id;
	zrpc_client  *client;   /* NULL until the first call */
	zos_resolver *resolver; /* NULL until the first lookup */
};

/* Writes "zosctl: <message>" to stderr; returns ZOSCTL_EXIT_USAGE. */
int zosctl_bad_input(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/*
 * Writes TEXT (a server's) to OUT with every control character (below
 * 0x20, and 0x7f) and the backslash escaped (\n, \xNN), so that the server
 * cannot send escape sequences to the terminal; with KEEP_LINES, newlines
 * and tabs go out as they are (for multi-line text such as describe's).
 */
void zosctl_put_escaped(FILE *out, const char *text, bool keep_lines);

/* The exit status for a call that ended with STATUS (not OK). */
int zosctl_exit_for(const zrpc_status *status);

/* Prints "CODE_NAME: message" on stderr and returns zosctl_exit_for. */
int zosctl_report(const zrpc_status *status);

/* Opens CTL's client if it is not open; returns an exit status. */
int zosctl_open_client(struct zosctl *ctl);

/* True when -H gave KEY. */
bool zosctl_has_header(const struct zosctl *ctl, const char *key);

/* The call options of CTL's calls (timeout, token, -H metadata). */
zrpc_call_opts zosctl_call_opts(const struct zosctl *ctl);

/*
 * The options of the reflection calls that find a call's types: CTL's,
 * less the entries that name the call itself (x-request-id, traceparent,
 * tracestate), so that an id given with -H names one call in the
 * server's log. BUF holds ZOSCTL_MAX_HEADERS entries.
 */
zrpc_call_opts zosctl_reflection_opts(
    const struct zosctl *ctl, struct zrpc_metadata_entry *buf);

/*
 * Calls METHOD with REQUEST. On success *REPLY is the reply (the caller
 * frees it) and the result is 0; otherwise the status is on stderr and the
 * result is the exit status. With -v, the request and reply metadata and
 * the status go to stderr.
 */
int zosctl_invoke(struct zosctl *ctl, const struct zrpc_method *method,
    const ProtobufCMessage *request, ProtobufCMessage **reply);

/* Prints MESSAGE on stdout in CTL's --format; returns an exit status. */
int zosctl_print(const struct zosctl *ctl, const ProtobufCMessage *message);

/* Calls METHOD with REQUEST and prints the reply. */
int zosctl_call_and_print(struct zosctl *ctl, const struct zrpc_method *method,
    const ProtobufCMessage *request);

/* The commands of generic.c; ARGS->operands as the command table says. */
struct zosctl_args;
int zosctl_run_call(struct zosctl *ctl, const struct zosctl_args *args);
int zosctl_run_list(struct zosctl *ctl, const struct zosctl_args *args);
int zosctl_run_describe(struct zosctl *ctl, const struct zosctl_args *args);

/* Options of one command, at most. */
#define ZOSCTL_MAX_OPTIONS 3

/* What a command runs with: its operands and its options' values. */
struct zosctl_args {
	/* The command's method, for commands whose request is empty. */
	const struct zrpc_method *method;
	char                    **operands;
	int                       n_operands;
	const char *values[ZOSCTL_MAX_OPTIONS]; /* NULL when not given */
};

#endif /* ZOSCTL_H */
