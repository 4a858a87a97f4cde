/*
 * zosctl: the zos command-line client.
 *
 * Every command is one row of a const table (its name, operands, options,
 * help text and the function that runs it), so the overall help, each
 * command's --help and the parsing of its command line come from one place
 * and cannot drift apart. Typed commands build their request in C; `call`
 * builds it from proto3 JSON through the method's descriptors; both then
 * take one path: zrpc_client_call with the method's description, and the
 * reply printed as proto3 JSON (pbjson.h), as grpcurl prints it.
 *
 * Exit status, the contract scripts rely on: 0 when the call succeeded; 1
 * when it failed (the server's status or the client's own, such as
 * UNAVAILABLE when no server answers, printed as "CODE_NAME: message" on
 * stderr) or when `health` hears anything but SERVING; 2 for bad usage or
 * bad input (an unknown command, option, method or field, bad JSON), in
 * which case nothing is sent. Replies go to stdout, everything else to
 * stderr.
 *
 * A server's words are not trusted: every string from it that goes out
 * other than as JSON (an error's message, the names `list` prints) has its
 * control characters escaped, so that no escape sequence reaches the
 * terminal; a reply is accepted up to --max-reply-bytes and printed only
 * when it has at most ZOSCTL_MAX_PRINT_ELEMENTS fields and list items
 * (else RESOURCE_EXHAUSTED, exit 1), which bounds the JSON built from it;
 * and --timeout-ms 0 means ZOSCTL_LONGEST_TIMEOUT_MS, never forever.
 *
 * The global options are accepted after the command too, so that
 * `zosctl health --url URL` works as well as `zosctl --url URL health`.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <protobuf-c/protobuf-c.h>

#include "methods.h"
#include "pbjson.h"
#include "pbwire.h"
#include "zos/v1/zos.zrpc.h"
#include "zrpc/client.h"
#include "zrpc/v1/health.zrpc.h"
#include "zrpc/v1/reflection.zrpc.h"

#define ZOSCTL_DEFAULT_URL "tcp://127.0.0.1:7447"
#define ZOSCTL_DEFAULT_TIMEOUT_MS 5000
/* What --timeout-ms 0 means: long, but not forever. */
#define ZOSCTL_LONGEST_TIMEOUT_MS 30000
/* Largest reply accepted unless --max-reply-bytes says otherwise (the
 * client's default, zosd's default --max-message-bytes). */
#define ZOSCTL_DEFAULT_MAX_REPLY_BYTES (4u * 1024 * 1024)
#define ZOSCTL_MAX_MAX_REPLY_BYTES (256u * 1024 * 1024)
/* Most fields and list items of a reply that zosctl prints. */
#define ZOSCTL_MAX_PRINT_ELEMENTS 100000

/* Exit statuses. */
#define ZOSCTL_EXIT_OK 0
#define ZOSCTL_EXIT_FAILED 1 /* the call failed, or health not SERVING */
#define ZOSCTL_EXIT_USAGE 2  /* bad usage or input; nothing was sent */

/* Options of one command, at most. */
#define ZOSCTL_MAX_OPTIONS 3

/* Largest request JSON read from stdin. */
#define ZOSCTL_MAX_STDIN (64u * 1024 * 1024)

/* getopt_long values: command options are ZOSCTL_OPT_COMMAND + index. */
enum {
	ZOSCTL_OPT_URL = 256,
	ZOSCTL_OPT_TOKEN,
	ZOSCTL_OPT_TIMEOUT_MS,
	ZOSCTL_OPT_MAX_REPLY_BYTES,
	ZOSCTL_OPT_TLS_CA,
	ZOSCTL_OPT_CERT,
	ZOSCTL_OPT_KEY,
	ZOSCTL_OPT_VERSION,
	ZOSCTL_OPT_HELP,
	ZOSCTL_OPT_COMMAND,
};

/* The state of one run: global options and the client, once opened. */
struct zosctl {
	const char  *url;
	const char  *token;
	uint32_t     timeout_ms;
	uint32_t     max_reply_bytes;
	const char  *tls_ca; /* --tls-ca, --cert, --key; NULL = not given */
	const char  *cert;
	const char  *key;
	zrpc_client *client; /* NULL until the first call */
};

/* One option of a command. */
struct zosctl_option {
	const char *name; /* without "--" */
	const char *arg;  /* the value's name, "V" */
	const char *help; /* for COMMAND --help; may hold newlines */
};

/* What a command runs with: its operands and its options' values. */
struct zosctl_args {
	/* The command's method, for commands whose request is empty. */
	const struct zrpc_method *method;
	char                    **operands;
	int                       n_operands;
	const char *values[ZOSCTL_MAX_OPTIONS]; /* NULL when not given */
};

struct zosctl_command {
	const char          *name;     /* "session transition" */
	const char          *synopsis; /* what follows the name in the usage */
	const char          *summary;  /* one line, for the overall help */
	const char          *details;  /* COMMAND --help text */
	int                  min_operands;
	int                  max_operands; /* -1: any number */
	struct zosctl_option options[ZOSCTL_MAX_OPTIONS];
	int (*run)(struct zosctl *ctl, const struct zosctl_args *args);
	/* With run = zosctl_run_empty: the method, called with its empty
	 * request. */
	const struct zrpc_method *method;
};

static const struct option zosctl_global_options[] = {
	{ "url", required_argument, NULL, ZOSCTL_OPT_URL },
	{ "token", required_argument, NULL, ZOSCTL_OPT_TOKEN },
	{ "timeout-ms", required_argument, NULL, ZOSCTL_OPT_TIMEOUT_MS },
	{ "max-reply-bytes", required_argument, NULL,
	    ZOSCTL_OPT_MAX_REPLY_BYTES },
	{ "tls-ca", required_argument, NULL, ZOSCTL_OPT_TLS_CA },
	{ "cert", required_argument, NULL, ZOSCTL_OPT_CERT },
	{ "key", required_argument, NULL, ZOSCTL_OPT_KEY },
	{ "version", no_argument, NULL, ZOSCTL_OPT_VERSION },
	{ "help", no_argument, NULL, ZOSCTL_OPT_HELP },
	{ NULL, 0, NULL, 0 },
};

#define ZOSCTL_N_GLOBAL_OPTIONS 9

static const char zosctl_usage[] =
    "usage: zosctl [--url URL] [--token T] [--timeout-ms N]\n"
    "              [--max-reply-bytes N] [--tls-ca F] [--cert F --key F]\n"
    "              COMMAND [ARG]...\n"
    "       zosctl COMMAND --help\n";

static const char zosctl_global_help[] =
    "  --url URL        the server: any nng URL (tcp://, ipc://, ...)\n"
    "                   [default " ZOSCTL_DEFAULT_URL "]\n"
    "  --token T        send 'authorization: Bearer T' with each call\n"
    "  --timeout-ms N   deadline of the call in milliseconds (0: the\n"
    "                   longest, 30000); also how long to wait for a\n"
    "                   connection [default 5000]\n"
    "  --max-reply-bytes N\n"
    "                   largest reply accepted [default 4194304]; a\n"
    "                   reply of over 100000 fields and list items is\n"
    "                   not printed (RESOURCE_EXHAUSTED, exit 1)\n"
    "  --tls-ca F       for tls+tcp:// and wss:// URLs: the CA\n"
    "                   certificates (PEM) the server's certificate must\n"
    "                   chain to [default: the system store]; the\n"
    "                   server is always verified, under the URL's host\n"
    "                   name (dial tls+tcp://localhost:PORT, not an IP)\n"
    "  --cert F         a client certificate (PEM) for a server that\n"
    "                   requires one (mTLS); needs --key\n"
    "  --key F          its private key (PEM, unencrypted)\n";

static const char zosctl_exit_help[] =
    "Exit status: 0 when the call succeeded; 1 when it failed, with\n"
    "'CODE_NAME: message' on stderr (the server's error, or UNAVAILABLE\n"
    "when no server answers), or when health is not SERVING; 2 for bad\n"
    "usage or bad input (unknown command, option, method or field, bad\n"
    "JSON), when nothing is sent. Control characters in the server's\n"
    "messages and names are printed escaped (\\n, \\xNN).\n";

/* ---------------------------------------------------------------------
 * Calling and printing
 * --------------------------------------------------------------------- */

/* Writes "zosctl: <message>" to stderr; returns ZOSCTL_EXIT_USAGE. */
static int zosctl_bad_input(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static int
zosctl_bad_input(const char *fmt, ...)
{
	va_list ap;

	fputs("zosctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n", stderr);
	return ZOSCTL_EXIT_USAGE;
}

/*
 * Writes TEXT (a server's) to OUT with every control character (below
 * 0x20, and 0x7f) and the backslash escaped, so that the server cannot
 * send escape sequences to the terminal.
 */
static void
zosctl_put_escaped(FILE *out, const char *text)
{
	for (const unsigned char *c = (const unsigned char *) text; *c != 0;
	     c++) {
		switch (*c) {
		case '\\':
			fputs("\\\\", out);
			break;
		case '\n':
			fputs("\\n", out);
			break;
		case '\r':
			fputs("\\r", out);
			break;
		case '\t':
			fputs("\\t", out);
			break;
		default:
			if (*c < 0x20 || *c == 0x7f) {
				fprintf(out, "\\x%02x", *c);
			} else {
				fputc(*c, out);
			}
		}
	}
}

/*
 * The fields (set or not) and list items of MESSAGE and its sub-messages,
 * counted up to a little over LIMIT: what printing it would cost.
 */
static size_t
zosctl_count_elements(const ProtobufCMessage *message, size_t limit)
{
	const ProtobufCMessageDescriptor *d    = message->descriptor;
	const char                       *base = (const char *) message;
	size_t                            n    = 0;

	for (unsigned i = 0; i < d->n_fields && n <= limit; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];

		if (f->label != PROTOBUF_C_LABEL_REPEATED) {
			n++;
			if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
				const ProtobufCMessage *sub =
				    *(ProtobufCMessage *const *) (base +
				        f->offset);

				if (sub != NULL && n <= limit) {
					n += zosctl_count_elements(
					    sub, limit - n);
				}
			}
			continue;
		}
		size_t count = *(const size_t *) (base + f->quantifier_offset);

		n += count;
		if (f->type != PROTOBUF_C_TYPE_MESSAGE) {
			continue;
		}
		ProtobufCMessage *const *items =
		    *(ProtobufCMessage *const *const *) (base + f->offset);
		for (size_t k = 0; k < count && n <= limit; k++) {
			n += zosctl_count_elements(items[k], limit - n);
		}
	}
	return n;
}

/*
 * The call itself: REQUEST goes out packed and the reply comes back as
 * bytes, which are unpacked into *REPLY only when they hold at most
 * ZOSCTL_MAX_PRINT_ELEMENTS field occurrences and list items. protobuf-c
 * allocates per element, not per byte (a 4 MiB reply of two million empty
 * items once cost 1.8 GB), so the count comes first.
 */
static zrpc_status
zosctl_call_bounded(zrpc_client *client, const struct zrpc_method *method,
    const ProtobufCMessage *request, ProtobufCMessage **reply,
    const zrpc_call_opts *opts)
{
	size_t      len    = protobuf_c_message_get_packed_size(request);
	uint8_t    *packed = malloc(len > 0 ? len : 1), *bytes = NULL;
	size_t      bytes_len = 0;
	zrpc_status status;

	*reply = NULL;
	if (packed == NULL) {
		return zrpc_status_make(ZRPC_RESOURCE_EXHAUSTED,
		    "out of memory for a request of %zu bytes", len);
	}
	protobuf_c_message_pack(request, packed);
	status = zrpc_client_call_raw(
	    client, method->path, packed, len, &bytes, &bytes_len, opts);
	free(packed);
	if (status.code != ZRPC_OK) {
		return status;
	}
	if (zos_pbwire_count(method->output, bytes, bytes_len,
	        ZOSCTL_MAX_PRINT_ELEMENTS) > ZOSCTL_MAX_PRINT_ELEMENTS) {
		status = zrpc_status_make(ZRPC_RESOURCE_EXHAUSTED,
		    "reply too large to print (over %d fields and list items "
		    "in its %zu bytes)",
		    ZOSCTL_MAX_PRINT_ELEMENTS, bytes_len);
	} else if ((*reply = protobuf_c_message_unpack(
	                method->output, NULL, bytes_len, bytes)) == NULL) {
		status = zrpc_status_make(ZRPC_INTERNAL,
		    "reply of %s (%zu bytes) is not a valid %s", method->path,
		    bytes_len, method->output->name);
	}
	free(bytes);
	return status;
}

/*
 * Calls METHOD with REQUEST. On success *REPLY is the reply (the caller
 * frees it) and the result is 0; otherwise the status is on stderr and the
 * result is the exit status.
 */
static int
zosctl_invoke(struct zosctl *ctl, const struct zrpc_method *method,
    const ProtobufCMessage *request, ProtobufCMessage **reply)
{
	zrpc_status    status;
	zrpc_call_opts opts = {
		.timeout_ms = ctl->timeout_ms,
		.token      = ctl->token,
	};

	*reply = NULL;
	if (ctl->client == NULL) {
		zrpc_client_opts client_opts = {
			.connect_timeout_ms = ctl->timeout_ms,
			.max_message_bytes  = ctl->max_reply_bytes,
			.tls_ca_file        = ctl->tls_ca,
			.tls_cert_file      = ctl->cert,
			.tls_key_file       = ctl->key,
		};

		if ((ctl->cert == NULL) != (ctl->key == NULL)) {
			return zosctl_bad_input(
			    "--cert and --key go together");
		}

		status =
		    zrpc_client_open(&ctl->client, ctl->url, &client_opts);
		if (status.code != ZRPC_OK) {
			ctl->client = NULL;
			return zosctl_bad_input("--url: %s", status.message);
		}
	}
	status =
	    zosctl_call_bounded(ctl->client, method, request, reply, &opts);
	if (status.code != ZRPC_OK) {
		fputs(zrpc_status_name(status.code), stderr);
		if (status.message[0] != '\0') {
			fputs(": ", stderr);
			zosctl_put_escaped(stderr, status.message);
		}
		fputs("\n", stderr);
		return ZOSCTL_EXIT_FAILED;
	}
	if (zosctl_count_elements(*reply, ZOSCTL_MAX_PRINT_ELEMENTS) >
	    ZOSCTL_MAX_PRINT_ELEMENTS) {
		fprintf(stderr,
		    "RESOURCE_EXHAUSTED: reply too large to print (over %d "
		    "fields and list items)\n",
		    ZOSCTL_MAX_PRINT_ELEMENTS);
		protobuf_c_message_free_unpacked(*reply, NULL);
		*reply = NULL;
		return ZOSCTL_EXIT_FAILED;
	}
	return ZOSCTL_EXIT_OK;
}

/* Prints MESSAGE as indented proto3 JSON on stdout. */
static int
zosctl_print(const ProtobufCMessage *message)
{
	char  error[256];
	char *json = zos_pbjson_print(message, true, error, sizeof(error));

	if (json == NULL) {
		fprintf(stderr, "zosctl: printing the reply: %s\n", error);
		return ZOSCTL_EXIT_FAILED;
	}
	printf("%s\n", json);
	free(json);
	return ZOSCTL_EXIT_OK;
}

/* Calls METHOD with REQUEST and prints the reply. */
static int
zosctl_call_and_print(struct zosctl *ctl, const struct zrpc_method *method,
    const ProtobufCMessage *request)
{
	ProtobufCMessage *reply;
	int               rv = zosctl_invoke(ctl, method, request, &reply);

	if (rv != ZOSCTL_EXIT_OK) {
		return rv;
	}
	rv = zosctl_print(reply);
	protobuf_c_message_free_unpacked(reply, NULL);
	return rv;
}

/* Parses a whole decimal number up to MAX. */
static bool
zosctl_number(const char *text, uint64_t max, uint64_t *out)
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

/* --expected-version V, or 0 (any) when not given. */
static int
zosctl_expected_version(const char *text, uint64_t *out)
{
	*out = 0;
	if (text != NULL && !zosctl_number(text, UINT64_MAX, out)) {
		return zosctl_bad_input(
		    "--expected-version wants a version number, not '%s'",
		    text);
	}
	return ZOSCTL_EXIT_OK;
}

/* ---------------------------------------------------------------------
 * The commands
 * --------------------------------------------------------------------- */

static int
zosctl_run_health(struct zosctl *ctl, const struct zosctl_args *args)
{
	Zrpc__V1__HealthCheckRequest req =
	    ZRPC__V1__HEALTH_CHECK_REQUEST__INIT;
	Zrpc__V1__HealthCheckResponse *reply;
	int                            rv;

	if (args->n_operands > 0) {
		req.service = args->operands[0];
	}
	rv = zosctl_invoke(ctl, &zrpc_v1_health_check_method, &req.base,
	    (ProtobufCMessage **) &reply);
	if (rv != ZOSCTL_EXIT_OK) {
		return rv;
	}
	rv = zosctl_print(&reply->base);
	if (rv == ZOSCTL_EXIT_OK &&
	    reply->status !=
	        ZRPC__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING) {
		rv = ZOSCTL_EXIT_FAILED;
	}
	zrpc__v1__health_check_response__free_unpacked(reply, NULL);
	return rv;
}

static int
zosctl_run_list(struct zosctl *ctl, const struct zosctl_args *args)
{
	Zrpc__V1__ListServicesRequest req =
	    ZRPC__V1__LIST_SERVICES_REQUEST__INIT;
	Zrpc__V1__ListServicesResponse *reply;
	int                             rv;

	rv = zosctl_invoke(ctl, &zrpc_v1_reflection_list_services_method,
	    &req.base, (ProtobufCMessage **) &reply);
	if (rv != ZOSCTL_EXIT_OK) {
		return rv;
	}
	for (size_t s = 0; s < reply->n_services; s++) {
		const Zrpc__V1__ServiceInfo *service = reply->services[s];

		zosctl_put_escaped(stdout, service->name);
		fputs("\n", stdout);
		for (size_t m = 0; m < service->n_methods; m++) {
			const Zrpc__V1__MethodInfo *method =
			    service->methods[m];

			fputs("  ", stdout);
			zosctl_put_escaped(stdout, method->full_name);
			fputs("(", stdout);
			zosctl_put_escaped(stdout, method->input_type);
			fputs(") returns (", stdout);
			zosctl_put_escaped(stdout, method->output_type);
			fputs(")\n", stdout);
		}
	}
	zrpc__v1__list_services_response__free_unpacked(reply, NULL);
	return ZOSCTL_EXIT_OK;
}

/* Reads all of stdin into a malloc'd string; NULL with a message. */
static char *
zosctl_read_stdin(void)
{
	size_t len = 0, cap = 4096;
	char  *text = malloc(cap), *bigger;
	size_t n;

	if (text == NULL) {
		fputs("zosctl: out of memory\n", stderr);
		return NULL;
	}
	while ((n = fread(text + len, 1, cap - 1 - len, stdin)) > 0) {
		len += n;
		if (len == cap - 1) {
			if (cap > ZOSCTL_MAX_STDIN) {
				fprintf(stderr,
				    "zosctl: request JSON over %u bytes\n",
				    ZOSCTL_MAX_STDIN);
				free(text);
				return NULL;
			}
			bigger = realloc(text, cap * 2);
			if (bigger == NULL) {
				fputs("zosctl: out of memory\n", stderr);
				free(text);
				return NULL;
			}
			text = bigger;
			cap *= 2;
		}
	}
	if (ferror(stdin)) {
		fprintf(
		    stderr, "zosctl: reading stdin: %s\n", strerror(errno));
		free(text);
		return NULL;
	}
	text[len] = '\0';
	return text;
}

static int
zosctl_run_call(struct zosctl *ctl, const struct zosctl_args *args)
{
	const struct zrpc_method *method;
	const char               *json;
	char                     *from_stdin = NULL;
	char                      error[1024];
	ProtobufCMessage         *request;
	int                       rv;

	method = zos_tools_find_method(args->operands[0]);
	if (method == NULL) {
		return zosctl_bad_input("unknown method '%s' ('zosctl list' "
		                        "shows what the server has)",
		    args->operands[0]);
	}
	if (args->n_operands < 2 || strcmp(args->operands[1], "-") == 0) {
		from_stdin = zosctl_read_stdin();
		if (from_stdin == NULL) {
			return ZOSCTL_EXIT_FAILED;
		}
		json = from_stdin;
	} else {
		json = args->operands[1];
	}
	request = zos_pbjson_parse(method->input, json, error, sizeof(error));
	free(from_stdin);
	if (request == NULL) {
		return zosctl_bad_input(
		    "bad request for %s: %s", method->path, error);
	}
	rv = zosctl_call_and_print(ctl, method, request);
	protobuf_c_message_free_unpacked(request, NULL);
	return rv;
}

/* A method whose request is empty: skills get, cache stats, ... */
static int
zosctl_run_empty(struct zosctl *ctl, const struct zosctl_args *args)
{
	ProtobufCMessage *request =
	    calloc(1, args->method->input->sizeof_message);
	int rv;

	if (request == NULL) {
		fprintf(stderr, "zosctl: out of memory\n");
		return ZOSCTL_EXIT_FAILED;
	}
	protobuf_c_message_init(args->method->input, request);
	rv = zosctl_call_and_print(ctl, args->method, request);
	free(request);
	return rv;
}

static int
zosctl_run_skills_update(struct zosctl *ctl, const struct zosctl_args *args)
{
	Zos__V1__UpdateSkillsRequest req =
	    ZOS__V1__UPDATE_SKILLS_REQUEST__INIT;
	Zos__V1__UpdateSkillsRequest__DeltasEntry  *entries;
	Zos__V1__UpdateSkillsRequest__DeltasEntry **pointers;
	size_t n = (size_t) args->n_operands;
	int    rv;

	rv = zosctl_expected_version(args->values[0], &req.expected_version);
	if (rv != ZOSCTL_EXIT_OK) {
		return rv;
	}
	entries  = calloc(n, sizeof(*entries));
	pointers = calloc(n, sizeof(*pointers));
	if (entries == NULL || pointers == NULL) {
		fputs("zosctl: out of memory\n", stderr);
		rv = ZOSCTL_EXIT_FAILED;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		char *name = args->operands[i];
		char *eq   = strchr(name, '=');
		char *end;

		if (eq == NULL || eq == name || eq[1] == '\0') {
			rv = zosctl_bad_input(
			    "skills update wants NAME=DELTA, not '%s'", name);
			goto out;
		}
		*eq = '\0';
		zos__v1__update_skills_request__deltas_entry__init(
		    &entries[i]);
		entries[i].key   = name;
		errno            = 0;
		entries[i].value = strtod(eq + 1, &end);
		if (errno != 0 || *end != '\0') {
			rv = zosctl_bad_input(
			    "skills update: '%s' is not a number", eq + 1);
			goto out;
		}
		for (size_t j = 0; j < i; j++) {
			if (strcmp(entries[j].key, name) == 0) {
				rv = zosctl_bad_input(
				    "skills update: '%s' given twice", name);
				goto out;
			}
		}
		pointers[i] = &entries[i];
	}
	req.n_deltas = n;
	req.deltas   = pointers;
	rv           = zosctl_call_and_print(
	              ctl, &zos_v1_skills_update_method, &req.base);
out:
	free(pointers);
	free(entries);
	return rv;
}

static int
zosctl_run_session_start(struct zosctl *ctl, const struct zosctl_args *args)
{
	Zos__V1__StartSessionRequest req =
	    ZOS__V1__START_SESSION_REQUEST__INIT;

	req.problem_id = args->operands[0];
	return zosctl_call_and_print(
	    ctl, &zos_v1_session_start_method, &req.base);
}

static int
zosctl_run_session_get(struct zosctl *ctl, const struct zosctl_args *args)
{
	Zos__V1__GetSessionRequest req = ZOS__V1__GET_SESSION_REQUEST__INIT;

	req.id = args->operands[0];
	return zosctl_call_and_print(
	    ctl, &zos_v1_session_get_method, &req.base);
}

static int
zosctl_run_session_transition(
    struct zosctl *ctl, const struct zosctl_args *args)
{
	Zos__V1__TransitionRequest     req = ZOS__V1__TRANSITION_REQUEST__INIT;
	const ProtobufCEnumDescriptor *states =
	    &zos__v1__proof_state__descriptor;
	const char *state = args->operands[1];
	bool        found = false;
	int         rv;

	for (unsigned i = 0; i < states->n_values; i++) {
		if (states->values[i].value != 0 &&
		    strcasecmp(states->values[i].name, state) == 0) {
			req.to_state =
			    (Zos__V1__ProofState) states->values[i].value;
			found = true;
		}
	}
	if (!found) {
		return zosctl_bad_input(
		    "unknown state '%s' (AWAITING_SOLUTION, ANALYZING, "
		    "FEEDBACK_READY, SOLVED or ABANDONED)",
		    state);
	}
	rv = zosctl_expected_version(args->values[0], &req.expected_version);
	if (rv != ZOSCTL_EXIT_OK) {
		return rv;
	}
	req.id = args->operands[0];
	return zosctl_call_and_print(
	    ctl, &zos_v1_session_transition_method, &req.base);
}

static int
zosctl_run_session_reset(struct zosctl *ctl, const struct zosctl_args *args)
{
	Zos__V1__ResetSessionRequest req =
	    ZOS__V1__RESET_SESSION_REQUEST__INIT;

	req.id = args->operands[0];
	return zosctl_call_and_print(
	    ctl, &zos_v1_session_reset_method, &req.base);
}

static int
zosctl_run_session_list(struct zosctl *ctl, const struct zosctl_args *args)
{
	Zos__V1__ListSessionsRequest req =
	    ZOS__V1__LIST_SESSIONS_REQUEST__INIT;
	uint64_t page_size;

	if (args->values[0] != NULL) {
		if (!zosctl_number(args->values[0], UINT32_MAX, &page_size)) {
			return zosctl_bad_input(
			    "--page-size wants a number, not '%s'",
			    args->values[0]);
		}
		req.page_size = (uint32_t) page_size;
	}
	if (args->values[1] != NULL) {
		req.page_token = (char *) args->values[1];
	}
	return zosctl_call_and_print(
	    ctl, &zos_v1_session_list_method, &req.base);
}

static int
zosctl_run_routing_route(struct zosctl *ctl, const struct zosctl_args *args)
{
	Zos__V1__RouteRequest req = ZOS__V1__ROUTE_REQUEST__INIT;

	req.task_type = args->operands[0];
	return zosctl_call_and_print(
	    ctl, &zos_v1_routing_route_method, &req.base);
}

static int
zosctl_run_cache_lookup(struct zosctl *ctl, const struct zosctl_args *args)
{
	Zos__V1__LookupRequest req = ZOS__V1__LOOKUP_REQUEST__INIT;

	req.model  = args->operands[0];
	req.prompt = args->operands[1];
	return zosctl_call_and_print(
	    ctl, &zos_v1_cache_lookup_method, &req.base);
}

static int
zosctl_run_cache_store(struct zosctl *ctl, const struct zosctl_args *args)
{
	Zos__V1__StoreRequest req = ZOS__V1__STORE_REQUEST__INIT;

	req.model    = args->operands[0];
	req.prompt   = args->operands[1];
	req.response = args->operands[2];
	return zosctl_call_and_print(
	    ctl, &zos_v1_cache_store_method, &req.base);
}

static int
zosctl_run_complete(struct zosctl *ctl, const struct zosctl_args *args)
{
	Zos__V1__CompleteRequest req = ZOS__V1__COMPLETE_REQUEST__INIT;

	if (args->values[0] != NULL) {
		req.session_id = (char *) args->values[0];
	}
	if (args->values[1] != NULL) {
		req.task_type = (char *) args->values[1];
	}
	req.prompt = args->operands[0];
	return zosctl_call_and_print(
	    ctl, &zos_v1_assistant_complete_method, &req.base);
}

static int zosctl_run_help(struct zosctl *ctl, const struct zosctl_args *args);

static const struct zosctl_command zosctl_commands[] = {
	{
	    .name     = "health",
	    .synopsis = "[SERVICE]",
	    .summary  = "is the server (or SERVICE) serving? exit 1 if not",
	    .details  = "Calls zrpc.v1.Health/Check for the server as a "
	                "whole, or for SERVICE\n"
	                "(e.g. zos.v1.Skills), and prints the status. "
	                "Exits 1 unless it is\n"
	                "SERVING.\n",
	    .max_operands = 1,
	    .run          = zosctl_run_health,
	},
	{
	    .name     = "list",
	    .synopsis = "",
	    .summary  = "the server's services and methods, with their types",
	    .details = "Calls zrpc.v1.Reflection/ListServices and prints each "
	               "service, then its\n"
	               "methods as METHOD(INPUT) returns (OUTPUT); METHOD is "
	               "what 'call' takes.\n",
	    .run     = zosctl_run_list,
	},
	{
	    .name     = "call",
	    .synopsis = "METHOD [JSON]",
	    .summary  = "any known method, with its request as proto3 JSON",
	    .details  = "Calls METHOD (/zos.v1.Skills/Get, "
	                "zos.v1.Skills/Get or zos.v1.Skills.Get)\n"
	                "with the request given as proto3 JSON: JSON, or "
	                "stdin when JSON is\n"
	                "absent or '-' (empty means the empty message). "
	                "Field names may be\n"
	                "lowerCamelCase or as in the .proto; 64-bit "
	                "integers may be strings,\n"
	                "enums names or numbers, bytes base64. Prints the "
	                "reply as JSON.\n"
	                "Known: every zos.v1 method, zrpc.v1.Health/Check "
	                "and\n"
	                "zrpc.v1.Reflection/ListServices. An unknown method "
	                "or field, or bad\n"
	                "JSON, exits 2 before anything is sent.\n",
	    .min_operands = 1,
	    .max_operands = 2,
	    .run          = zosctl_run_call,
	},
	{
	    .name     = "skills get",
	    .synopsis = "",
	    .summary  = "the skill vector",
	    .details =
	        "Calls zos.v1.Skills/Get and prints the skill vector.\n",
	    .run    = zosctl_run_empty,
	    .method = &zos_v1_skills_get_method,
	},
	{
	    .name     = "skills update",
	    .synopsis = "NAME=DELTA... [--expected-version V]",
	    .summary  = "add DELTA to each named skill's level, atomically",
	    .details  = "Calls zos.v1.Skills/Update: adds each DELTA (a "
	                "number, e.g. induction=0.1\n"
	                "or cases=-0.05) to the level of skill NAME, all or "
	                "none, and prints\n"
	                "the new skill vector.\n",
	    .min_operands = 1,
	    .max_operands = -1,
	    .options      = { { "expected-version", "V",
	             "fail with ABORTED unless the skills are at version V\n"
	                  "[default 0: any version]" } },
	    .run          = zosctl_run_skills_update,
	},
	{
	    .name     = "skills reload",
	    .synopsis = "",
	    .summary  = "re-read the server's skills file (admin)",
	    .details  = "Calls zos.v1.Skills/Reload and prints the skill "
	                "vector it loaded.\n",
	    .run      = zosctl_run_empty,
	    .method   = &zos_v1_skills_reload_method,
	},
	{
	    .name         = "session start",
	    .synopsis     = "PROBLEM_ID",
	    .summary      = "open a proof session for PROBLEM_ID",
	    .details      = "Calls zos.v1.Session/Start and prints the new "
	                    "session (in\n"
	                    "AWAITING_SOLUTION).\n",
	    .min_operands = 1,
	    .max_operands = 1,
	    .run          = zosctl_run_session_start,
	},
	{
	    .name         = "session get",
	    .synopsis     = "ID",
	    .summary      = "the session ID",
	    .details      = "Calls zos.v1.Session/Get and prints the session; "
	                    "NOT_FOUND (exit 1)\n"
	                    "for an unknown ID.\n",
	    .min_operands = 1,
	    .max_operands = 1,
	    .run          = zosctl_run_session_get,
	},
	{
	    .name     = "session transition",
	    .synopsis = "ID STATE [--expected-version V]",
	    .summary  = "move session ID to STATE",
	    .details  = "Calls zos.v1.Session/Transition: moves session ID to "
	                "STATE, one of\n"
	                "AWAITING_SOLUTION, ANALYZING, FEEDBACK_READY, "
	                "SOLVED or ABANDONED,\n"
	                "and prints the session. An illegal move is "
	                "FAILED_PRECONDITION.\n",
	    .min_operands = 2,
	    .max_operands = 2,
	    .options      = { { "expected-version", "V",
	             "fail with ABORTED unless the session is at version V\n"
	                  "[default 0: any version]" } },
	    .run          = zosctl_run_session_transition,
	},
	{
	    .name     = "session reset",
	    .synopsis = "ID",
	    .summary  = "put session ID back to AWAITING_SOLUTION",
	    .details  = "Calls zos.v1.Session/Reset and prints the session.\n",
	    .min_operands = 1,
	    .max_operands = 1,
	    .run          = zosctl_run_session_reset,
	},
	{
	    .name     = "session list",
	    .synopsis = "[--page-size N] [--page-token T]",
	    .summary  = "a page of sessions, in the order they were started",
	    .details  = "Calls zos.v1.Session/List and prints the page, its "
	                "nextPageToken\n"
	                "(absent on the last page) and the total.\n",
	    .options  = { { "page-size", "N",
	                      "sessions per page [default 50, at most 1000]" },
	         { "page-token", "T",
	             "the nextPageToken of the previous page" } },
	    .run      = zosctl_run_session_list,
	},
	{
	    .name     = "routing route",
	    .synopsis = "TASK",
	    .summary  = "the primary and fallback model of task type TASK",
	    .details  = "Calls zos.v1.Routing/Route and prints the route; an "
	                "unknown task type\n"
	                "gets the default route.\n",
	    .min_operands = 1,
	    .max_operands = 1,
	    .run          = zosctl_run_routing_route,
	},
	{
	    .name     = "routing metrics",
	    .synopsis = "",
	    .summary  = "every model's call counts and latency",
	    .details =
	        "Calls zos.v1.Routing/GetMetrics and prints the metrics "
	        "of every model.\n",
	    .run    = zosctl_run_empty,
	    .method = &zos_v1_routing_get_metrics_method,
	},
	{
	    .name     = "cache stats",
	    .synopsis = "",
	    .summary  = "the response cache's size, capacity and counters",
	    .details  = "Calls zos.v1.Cache/Stats and prints the cache's "
	                "statistics.\n",
	    .run      = zosctl_run_empty,
	    .method   = &zos_v1_cache_stats_method,
	},
	{
	    .name     = "cache lookup",
	    .synopsis = "MODEL PROMPT",
	    .summary  = "the cached response of MODEL to PROMPT, if any",
	    .details  = "Calls zos.v1.Cache/Lookup and prints whether it hit, "
	                "and the response.\n",
	    .min_operands = 2,
	    .max_operands = 2,
	    .run          = zosctl_run_cache_lookup,
	},
	{
	    .name         = "cache store",
	    .synopsis     = "MODEL PROMPT RESPONSE",
	    .summary      = "put RESPONSE in the cache for MODEL and PROMPT",
	    .details      = "Calls zos.v1.Cache/Store.\n",
	    .min_operands = 3,
	    .max_operands = 3,
	    .run          = zosctl_run_cache_store,
	},
	{
	    .name     = "cache clear",
	    .synopsis = "",
	    .summary  = "empty the response cache (admin)",
	    .details  = "Calls zos.v1.Cache/Clear.\n",
	    .run      = zosctl_run_empty,
	    .method   = &zos_v1_cache_clear_method,
	},
	{
	    .name         = "complete",
	    .synopsis     = "[--session ID] [--task T] PROMPT",
	    .summary      = "ask the assistant; moves the session, if one",
	    .details      = "Calls zos.v1.Assistant/Complete with PROMPT and "
	                    "prints the answer, the\n"
	                    "model that gave it, whether it was cached, the "
	                    "attempts and the\n"
	                    "latency. With --session, the session (in "
	                    "AWAITING_SOLUTION or\n"
	                    "ANALYZING) moves to FEEDBACK_READY and is printed "
	                    "too. A PROMPT that\n"
	                    "starts with '-' goes after '--'.\n",
	    .min_operands = 1,
	    .max_operands = 1,
	    .options      = { { "session", "ID", "the student's session" },
	             { "task", "T",
	                 "the task type, which picks the model [default: "
	                      "the\n"
	                      "default route]" } },
	    .run          = zosctl_run_complete,
	},
	{
	    .name         = "help",
	    .synopsis     = "[COMMAND]",
	    .summary      = "this help, or COMMAND's",
	    .details      = "Prints the help of zosctl, or of COMMAND (e.g. "
	                    "'zosctl help session get').\n",
	    .max_operands = 2,
	    .run          = zosctl_run_help,
	},
};

#define ZOSCTL_N_COMMANDS \
	(sizeof(zosctl_commands) / sizeof(zosctl_commands[0]))

/* ---------------------------------------------------------------------
 * Help and the command line
 * --------------------------------------------------------------------- */

static void
zosctl_help(FILE *out)
{
	fputs("zosctl - the zos command-line client\n\n", out);
	fputs(zosctl_usage, out);
	fputs("\nCalls a zos server (zosd) and prints the reply as proto3 "
	      "JSON.\n\nGlobal options (before or after the command):\n",
	    out);
	fputs(zosctl_global_help, out);
	fputs("  --version        print the version and exit\n"
	      "  --help           print this help and exit\n\nCommands:\n",
	    out);
	for (size_t i = 0; i < ZOSCTL_N_COMMANDS; i++) {
		const struct zosctl_command *c = &zosctl_commands[i];

		fprintf(out, "  %s%s%s\n      %s\n", c->name,
		    c->synopsis[0] != '\0' ? " " : "", c->synopsis,
		    c->summary);
	}
	fputs("\n'zosctl COMMAND --help' tells more about COMMAND.\n\n", out);
	fputs(zosctl_exit_help, out);
}

/* Writes TEXT with every line after the first indented by INDENT. */
static void
zosctl_put_indented(FILE *out, const char *text, int indent)
{
	for (; *text != '\0'; text++) {
		fputc(*text, out);
		if (*text == '\n') {
			fprintf(out, "%*s", indent, "");
		}
	}
}

static void
zosctl_command_usage(FILE *out, const struct zosctl_command *c)
{
	fprintf(out, "usage: zosctl [OPTIONS] %s%s%s\n", c->name,
	    c->synopsis[0] != '\0' ? " " : "", c->synopsis);
}

static void
zosctl_command_help(FILE *out, const struct zosctl_command *c)
{
	zosctl_command_usage(out, c);
	fprintf(out, "\n%s\n", c->details);
	for (int i = 0; i < ZOSCTL_MAX_OPTIONS && c->options[i].name; i++) {
		char left[64];

		snprintf(left, sizeof(left), "--%s %s", c->options[i].name,
		    c->options[i].arg);
		fprintf(out, "  %-22s ", left);
		zosctl_put_indented(out, c->options[i].help, 25);
		fputs("\n", out);
	}
	fprintf(out, "  %-22s %s\n\nGlobal options:\n", "--help",
	    "print this help and exit");
	fputs(zosctl_global_help, out);
	fputs("\n", out);
	fputs(zosctl_exit_help, out);
}

/* Bad usage of C (NULL: of zosctl): the message, then the usage. */
static int zosctl_usage_error(const struct zosctl_command *c, const char *fmt,
    ...) __attribute__((format(printf, 2, 3)));

static int
zosctl_usage_error(const struct zosctl_command *c, const char *fmt, ...)
{
	va_list ap;

	fputs("zosctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n", stderr);
	if (c != NULL) {
		zosctl_command_usage(stderr, c);
		fprintf(stderr, "('zosctl %s --help' for more)\n", c->name);
	} else {
		fputs(zosctl_usage, stderr);
		fputs("('zosctl --help' lists the commands)\n", stderr);
	}
	return ZOSCTL_EXIT_USAGE;
}

/* The words of C's name: 1 or 2; *FIRST_LEN is the first one's length. */
static int
zosctl_command_words(const struct zosctl_command *c, size_t *first_len)
{
	const char *space = strchr(c->name, ' ');

	*first_len =
	    space != NULL ? (size_t) (space - c->name) : strlen(c->name);
	return space != NULL ? 2 : 1;
}

/*
 * The command that ARGV (N words) starts with, or NULL; *WORDS receives
 * how many words it took. *GROUP is true when ARGV[0] names a group of
 * commands ("session") without a known command of it after.
 */
static const struct zosctl_command *
zosctl_find_command(int n, char **argv, int *words, bool *group)
{
	*group = false;
	for (size_t i = 0; i < ZOSCTL_N_COMMANDS; i++) {
		const struct zosctl_command *c = &zosctl_commands[i];
		size_t                       len;
		int                          k = zosctl_command_words(c, &len);

		if (strlen(argv[0]) != len ||
		    strncmp(argv[0], c->name, len) != 0) {
			continue;
		}
		if (k == 1) {
			*words = 1;
			return c;
		}
		*group = true;
		if (n > 1 && strcmp(argv[1], c->name + len + 1) == 0) {
			*words = 2;
			return c;
		}
	}
	return NULL;
}

/* The commands of group NAME, for "zosctl session" and its errors. */
static void
zosctl_group_help(FILE *out, const char *name)
{
	fprintf(out,
	    "usage: zosctl [OPTIONS] %s COMMAND ...\n\n"
	    "Commands:\n",
	    name);
	for (size_t i = 0; i < ZOSCTL_N_COMMANDS; i++) {
		const struct zosctl_command *c = &zosctl_commands[i];
		size_t                       len;

		if (zosctl_command_words(c, &len) == 2 &&
		    strlen(name) == len && strncmp(name, c->name, len) == 0) {
			fprintf(out, "  %s%s%s\n      %s\n", c->name,
			    c->synopsis[0] != '\0' ? " " : "", c->synopsis,
			    c->summary);
		}
	}
	fprintf(out, "\n'zosctl %s COMMAND --help' tells more.\n", name);
}

/* Applies global option C (a getopt_long result) with value ARG. */
static int
zosctl_global_option(struct zosctl *ctl, int c, const char *arg)
{
	uint64_t v;

	switch (c) {
	case ZOSCTL_OPT_URL:
		ctl->url = arg;
		return ZOSCTL_EXIT_OK;
	case ZOSCTL_OPT_TOKEN:
		ctl->token = arg;
		return ZOSCTL_EXIT_OK;
	case ZOSCTL_OPT_TLS_CA:
		ctl->tls_ca = arg;
		return ZOSCTL_EXIT_OK;
	case ZOSCTL_OPT_CERT:
		ctl->cert = arg;
		return ZOSCTL_EXIT_OK;
	case ZOSCTL_OPT_KEY:
		ctl->key = arg;
		return ZOSCTL_EXIT_OK;
	case ZOSCTL_OPT_TIMEOUT_MS:
		if (!zosctl_number(arg, 86400000, &v)) {
			return zosctl_usage_error(NULL,
			    "--timeout-ms wants milliseconds from 0 to "
			    "86400000, not '%s'",
			    arg);
		}
		ctl->timeout_ms =
		    v == 0 ? ZOSCTL_LONGEST_TIMEOUT_MS : (uint32_t) v;
		return ZOSCTL_EXIT_OK;
	case ZOSCTL_OPT_MAX_REPLY_BYTES:
		if (!zosctl_number(arg, ZOSCTL_MAX_MAX_REPLY_BYTES, &v) ||
		    v == 0) {
			return zosctl_usage_error(NULL,
			    "--max-reply-bytes wants bytes from 1 to %u, not "
			    "'%s'",
			    ZOSCTL_MAX_MAX_REPLY_BYTES, arg);
		}
		ctl->max_reply_bytes = (uint32_t) v;
		return ZOSCTL_EXIT_OK;
	}
	return ZOSCTL_EXIT_USAGE;
}

/* Names the option getopt_long could not take, from ARGV and OPTOPT. */
static void
zosctl_bad_option_name(char **argv, char *name, size_t len)
{
	if (optopt != 0 && optopt < 256) {
		snprintf(name, len, "-%c", optopt);
	} else {
		snprintf(name, len, "%s", argv[optind - 1]);
	}
}

/*
 * Parses the options and operands of command C in ARGV (ARGV[0] is the
 * command's last word) into *ARGS and CTL, and runs it. --help prints C's
 * help instead.
 */
static int
zosctl_run_command(
    struct zosctl *ctl, const struct zosctl_command *c, int argc, char **argv)
{
	struct option
	    options[ZOSCTL_N_GLOBAL_OPTIONS + ZOSCTL_MAX_OPTIONS + 1];
	struct zosctl_args args = { 0 };
	int                n    = 0, opt, rv;
	char               name[64];

	for (int i = 0; i < ZOSCTL_N_GLOBAL_OPTIONS; i++) {
		options[n++] = zosctl_global_options[i];
	}
	for (int i = 0; i < ZOSCTL_MAX_OPTIONS && c->options[i].name; i++) {
		options[n++] = (struct option) { c->options[i].name,
			required_argument, NULL, ZOSCTL_OPT_COMMAND + i };
	}
	options[n] = (struct option) { NULL, 0, NULL, 0 };

	optind = 0; /* full reset: this is getopt's second run */
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
		switch (opt) {
		case 'h':
		case ZOSCTL_OPT_HELP:
			zosctl_command_help(stdout, c);
			return ZOSCTL_EXIT_OK;
		case ZOSCTL_OPT_VERSION:
			printf("zosctl %s\n", ZOS_VERSION);
			return ZOSCTL_EXIT_OK;
		case ':':
			zosctl_bad_option_name(argv, name, sizeof(name));
			return zosctl_usage_error(
			    c, "option '%s' wants a value", name);
		case '?':
			zosctl_bad_option_name(argv, name, sizeof(name));
			return zosctl_usage_error(
			    c, "unknown option '%s' for '%s'", name, c->name);
		default:
			if (opt >= ZOSCTL_OPT_COMMAND) {
				args.values[opt - ZOSCTL_OPT_COMMAND] = optarg;
			} else if ((rv = zosctl_global_option(
			                ctl, opt, optarg)) != ZOSCTL_EXIT_OK) {
				return rv;
			}
		}
	}
	args.method     = c->method;
	args.operands   = argv + optind;
	args.n_operands = argc - optind;
	if (args.n_operands < c->min_operands) {
		return zosctl_usage_error(
		    c, "'%s' wants %s", c->name, c->synopsis);
	}
	if (c->max_operands >= 0 && args.n_operands > c->max_operands) {
		return zosctl_usage_error(c, "'%s' takes %s, not '%s'",
		    c->name,
		    c->max_operands == 0 ? "no operands" : c->synopsis,
		    args.operands[c->max_operands]);
	}
	return c->run(ctl, &args);
}

static int
zosctl_run_help(struct zosctl *ctl, const struct zosctl_args *args)
{
	const struct zosctl_command *c;
	int                          words;
	bool                         group;

	if (args->n_operands == 0) {
		zosctl_help(stdout);
		return ZOSCTL_EXIT_OK;
	}
	c = zosctl_find_command(
	    args->n_operands, args->operands, &words, &group);
	if (c != NULL && words == args->n_operands) {
		zosctl_command_help(stdout, c);
		return ZOSCTL_EXIT_OK;
	}
	if (c == NULL && group && args->n_operands == 1) {
		zosctl_group_help(stdout, args->operands[0]);
		return ZOSCTL_EXIT_OK;
	}
	return zosctl_usage_error(NULL, "no command '%s%s%s'",
	    args->operands[0], args->n_operands > 1 ? " " : "",
	    args->n_operands > 1 ? args->operands[1] : "");
}

int
main(int argc, char **argv)
{
	struct zosctl ctl = {
		.url             = ZOSCTL_DEFAULT_URL,
		.timeout_ms      = ZOSCTL_DEFAULT_TIMEOUT_MS,
		.max_reply_bytes = ZOSCTL_DEFAULT_MAX_REPLY_BYTES,
	};
	const struct zosctl_command *c;
	int                          opt, words, rv;
	bool                         group;
	char                         name[64];

	opterr = 0;
	while ((opt = getopt_long(
	            argc, argv, "+:h", zosctl_global_options, NULL)) != -1) {
		switch (opt) {
		case 'h':
		case ZOSCTL_OPT_HELP:
			zosctl_help(stdout);
			return ZOSCTL_EXIT_OK;
		case ZOSCTL_OPT_VERSION:
			printf("zosctl %s\n", ZOS_VERSION);
			return ZOSCTL_EXIT_OK;
		case ':':
			zosctl_bad_option_name(argv, name, sizeof(name));
			return zosctl_usage_error(
			    NULL, "option '%s' wants a value", name);
		case '?':
			zosctl_bad_option_name(argv, name, sizeof(name));
			return zosctl_usage_error(
			    NULL, "unknown option '%s'", name);
		default:
			rv = zosctl_global_option(&ctl, opt, optarg);
			if (rv != ZOSCTL_EXIT_OK) {
				return rv;
			}
		}
	}
	if (optind == argc) {
		return zosctl_usage_error(NULL, "no command given");
	}
	c = zosctl_find_command(argc - optind, argv + optind, &words, &group);
	if (c == NULL && group) {
		if (optind + 1 < argc &&
		    (strcmp(argv[optind + 1], "--help") == 0 ||
		        strcmp(argv[optind + 1], "-h") == 0)) {
			zosctl_group_help(stdout, argv[optind]);
			return ZOSCTL_EXIT_OK;
		}
		if (optind + 1 == argc) {
			fprintf(stderr, "zosctl: '%s' wants a command\n",
			    argv[optind]);
		} else {
			fprintf(stderr, "zosctl: unknown command '%s %s'\n",
			    argv[optind], argv[optind + 1]);
		}
		zosctl_group_help(stderr, argv[optind]);
		return ZOSCTL_EXIT_USAGE;
	}
	if (c == NULL) {
		return zosctl_usage_error(
		    NULL, "unknown command '%s'", argv[optind]);
	}
	/* The command's own argv starts at its last word, getopt's argv[0]. */
	rv = zosctl_run_command(
	    &ctl, c, argc - optind - words + 1, argv + optind + words - 1);
	zrpc_client_close(ctl.client);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "zosctl: writing to stdout: %s\n",
		    strerror(errno));
		return ZOSCTL_EXIT_FAILED;
	}
	return rv;
}
