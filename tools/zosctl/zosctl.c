/*
 * zosctl: the zos command-line client.
 *
 * Every command is one row of a const table (its name, operands, options,
 * help text and the function that runs it), so the overall help, each
 * command's --help and the parsing of its command line come from one place
 * and cannot drift apart. Typed commands build their request in C; `call`
 * builds it from proto3 JSON through the method's descriptors, found by
 * the tools' resolver (generic.c); both then take one path (call.c), and
 * the reply is printed as proto3 JSON (pbjson.h), as grpcurl prints it, or
 * in the text format (pbtext.h). The exit statuses are in zosctl.h.
 * Replies go to stdout, everything else to stderr.
 *
 * A server's words are not trusted (call.c says how); a reply is accepted
 * up to --max-reply-bytes and printed only when it has at most 100000
 * fields and list items (else RESOURCE_EXHAUSTED), which bounds the JSON
 * built from it; and --timeout-ms 0 means ZOSCTL_LONGEST_TIMEOUT_MS, never
 * forever.
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

#include "zos/v1/zos.zrpc.h"
#include "zosctl.h"
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
	ZOSCTL_OPT_FORMAT,
	ZOSCTL_OPT_EMIT_DEFAULTS,
	ZOSCTL_OPT_PROTO,
	ZOSCTL_OPT_PROTOSET,
	ZOSCTL_OPT_COMMAND,
};

/* One option of a command. */
struct zosctl_option {
	const char *name; /* without "--" */
	const char *arg;  /* the value's name, "V" */
	const char *help; /* for COMMAND --help; may hold newlines */
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
	{ "header", required_argument, NULL, 'H' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "format", required_argument, NULL, ZOSCTL_OPT_FORMAT },
	{ "emit-defaults", no_argument, NULL, ZOSCTL_OPT_EMIT_DEFAULTS },
	{ "proto", required_argument, NULL, ZOSCTL_OPT_PROTO },
	{ "import-path", required_argument, NULL, 'I' },
	{ "protoset", required_argument, NULL, ZOSCTL_OPT_PROTOSET },
	{ NULL, 0, NULL, 0 },
};

#define ZOSCTL_N_GLOBAL_OPTIONS 16

static const char zosctl_usage[] =
    "usage: zosctl [--url URL]... [--token T] [--timeout-ms N]\n"
    "              [--max-reply-bytes N] [--tls-ca F] [--cert F --key F]\n"
    "              [-H 'KEY: VALUE']... [-v] [--format json|text]\n"
    "              [--emit-defaults] [--proto F [-I DIR]... | --protoset F]\n"
    "              COMMAND [ARG]...\n"
    "       zosctl COMMAND --help\n";

static const char zosctl_global_help[] =
    "  --url URL        the server: any nng URL (tcp://, ipc://, ...)\n"
    "                   [default " ZOSCTL_DEFAULT_URL "]; more than\n"
    "                   once (or URL,URL,...) for several servers: a\n"
    "                   call goes to one healthy server of them\n"
    "  --token T        send 'authorization: Bearer T' with each call\n"
    "  --timeout-ms N   deadline of the call in milliseconds (0: the\n"
    "                   longest, 30000); also how long to wait for a\n"
    "                   connection [default 5000]\n"
    "  --max-reply-bytes N\n"
    "                   largest reply accepted [default 4194304]; a\n"
    "                   reply of over 100000 fields and list items is\n"
    "                   not printed (RESOURCE_EXHAUSTED, exit 72)\n"
    "  --tls-ca F       for tls+tcp:// and wss:// URLs: the CA\n"
    "                   certificates (PEM) the server's certificate must\n"
    "                   chain to [default: the system store]; the\n"
    "                   server is always verified, under the URL's host\n"
    "                   name (dial tls+tcp://localhost:PORT, not an IP)\n"
    "  --cert F         a client certificate (PEM) for a server that\n"
    "                   requires one (mTLS); needs --key\n"
    "  --key F          its private key (PEM, unencrypted)\n"
    "  -H, --header 'KEY: VALUE'\n"
    "                   send metadata KEY (lower-case letters, digits,\n"
    "                   '-', '_', '.') with VALUE (no control\n"
    "                   characters); repeatable. 'x-request-id: ID'\n"
    "                   sets the request id (else the client makes one);\n"
    "                   'traceparent: 00-...' passes W3C trace context\n"
    "  -v, --verbose    print the request and reply metadata (with the\n"
    "                   reply's x-request-id) and the status on stderr\n"
    "  --format F       how replies print: json (proto3 JSON) or text\n"
    "                   (the protobuf text format, as protoc --decode)\n"
    "                   [default json]\n"
    "  --emit-defaults  print fields at their default value too (0, \"\",\n"
    "                   false, [], {}), as grpcurl -emit-defaults\n"
    "  --proto F        take the descriptors of call, list and describe\n"
    "                   from the .proto file F (compiled by protoc, which\n"
    "                   must be in PATH), not from the server\n"
    "  -I, --import-path DIR\n"
    "                   where --proto's F and its imports are found;\n"
    "                   repeatable [default: the directory of F]\n"
    "  --protoset F     take them from the descriptor set F (protoc\n"
    "                   --include_imports --descriptor_set_out=F)\n";

static const char zosctl_exit_help[] =
    "Exit status: 0 when the call succeeded. 64 + the status code when a\n"
    "call failed, with 'CODE_NAME: message' on stderr (as grpcurl):\n"
    "  65 CANCELLED            66 UNKNOWN             67 INVALID_ARGUMENT\n"
    "  68 DEADLINE_EXCEEDED    69 NOT_FOUND           70 ALREADY_EXISTS\n"
    "  71 PERMISSION_DENIED    72 RESOURCE_EXHAUSTED  73 FAILED_PRECONDITION\n"
    "  74 ABORTED              75 OUT_OF_RANGE        76 UNIMPLEMENTED\n"
    "  77 INTERNAL             78 UNAVAILABLE (no server answers)\n"
    "  79 DATA_LOSS            80 UNAUTHENTICATED\n"
    "1 for a local failure (out of memory, a reply that cannot be\n"
    "printed, protoc missing) or when health is not SERVING; 2 for bad\n"
    "usage or bad input (unknown command, option, method or field, bad\n"
    "JSON, a bad -H, a .proto protoc refuses), when nothing is sent; 130\n"
    "when interrupted. Control characters in the server's messages and\n"
    "names are printed escaped (\\n, \\xNN).\n";

/* ---------------------------------------------------------------------
 * Calling and printing
 * --------------------------------------------------------------------- */

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
	rv = zosctl_print(ctl, &reply->base);
	if (rv == ZOSCTL_EXIT_OK &&
	    reply->status !=
	        ZRPC__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING) {
		rv = ZOSCTL_EXIT_FAILED;
	}
	zrpc__v1__health_check_response__free_unpacked(reply, NULL);
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

	req.id          = args->operands[0];
	ctl->session_id = req.id;
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
	req.id          = args->operands[0];
	ctl->session_id = req.id;
	return zosctl_call_and_print(
	    ctl, &zos_v1_session_transition_method, &req.base);
}

static int
zosctl_run_session_reset(struct zosctl *ctl, const struct zosctl_args *args)
{
	Zos__V1__ResetSessionRequest req =
	    ZOS__V1__RESET_SESSION_REQUEST__INIT;

	req.id          = args->operands[0];
	ctl->session_id = req.id;
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
		req.session_id  = (char *) args->values[0];
		ctl->session_id = req.session_id;
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
	    .name         = "list",
	    .synopsis     = "[SERVICE]",
	    .summary      = "the server's services, or the methods of SERVICE",
	    .details      = "Prints the name of every service the server has "
	                    "(zrpc.v1.Reflection/\n"
	                    "ListServices), or with SERVICE its methods as "
	                    "pkg.Service.Method,\n"
	                    "what 'call' and 'describe' take. With --proto or "
	                    "--protoset: what\n"
	                    "the files define, without asking the server.\n",
	    .max_operands = 1,
	    .run          = zosctl_run_list,
	},
	{
	    .name     = "describe",
	    .synopsis = "[SYMBOL]",
	    .summary = "SYMBOL (a service, method, message or enum) as .proto",
	    .details = "Prints SYMBOL (kv.v1.Store, kv.v1.Store.Get, "
	               "kv.v1.GetRequest, ...),\n"
	               "or every service when none is given, in .proto "
	               "syntax, from the\n"
	               "descriptors the server serves by reflection, or "
	               "from --proto or\n"
	               "--protoset; zosctl's own compiled-in tables when "
	               "the server has no\n"
	               "reflection. An unknown symbol is NOT_FOUND (exit "
	               "69).\n",
	    .max_operands = 1,
	    .run          = zosctl_run_describe,
	},
	{
	    .name     = "call",
	    .synopsis = "METHOD [JSON]",
	    .summary  = "any method of any service, its request as JSON",
	    .details  = "Calls METHOD (/kv.v1.Store/Get, kv.v1.Store/Get or "
	                "kv.v1.Store.Get)\n"
	                "with the request given as proto3 JSON: JSON, or "
	                "stdin when JSON is\n"
	                "absent or '-' (empty means the empty message). "
	                "Field names may be\n"
	                "lowerCamelCase or as in the .proto; 64-bit "
	                "integers may be strings,\n"
	                "enums names or numbers, bytes base64; a key given "
	                "twice is refused.\n"
	                "Prints the reply as JSON (or --format text). The "
	                "method's types come\n"
	                "from --proto or --protoset when given, else from "
	                "the server by\n"
	                "reflection, else from zosctl's compiled-in tables "
	                "(zos.v1, zrpc.v1).\n"
	                "An unknown method or field, or bad JSON, exits 2 "
	                "before the call.\n",
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
	                    "NOT_FOUND (exit 69)\n"
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
	fputs("\nCalls a zos server (zosd), or any zrpc server, and prints "
	      "the reply as\nproto3 JSON or in the protobuf text format."
	      "\n\nGlobal options (before or after the command):\n",
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

/*
 * -H 'KEY: VALUE': splits ARG in place into CTL's next header. KEY is a
 * token of lower-case letters, digits, '-', '_' and '.' (gRPC's metadata
 * keys); VALUE, after the spaces that follow the colon, holds no control
 * character. authorization goes with --token, not both.
 */
static int
zosctl_header(struct zosctl *ctl, char *arg)
{
	char  *colon = strchr(arg, ':'), *value;
	size_t key_len;

	if (colon == NULL) {
		return zosctl_usage_error(
		    NULL, "-H wants 'KEY: VALUE', not '%s'", arg);
	}
	key_len = (size_t) (colon - arg);
	while (key_len > 0 && arg[key_len - 1] == ' ') {
		key_len--;
	}
	if (key_len == 0) {
		return zosctl_usage_error(NULL, "-H '%s': no key", arg);
	}
	for (size_t i = 0; i < key_len; i++) {
		char c = arg[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		        c == '-' || c == '_' || c == '.')) {
			return zosctl_usage_error(NULL,
			    "-H '%.*s': a key is lower-case letters, digits, "
			    "'-', '_' and '.'",
			    (int) key_len, arg);
		}
	}
	value = colon + 1;
	value += strspn(value, " ");
	for (const unsigned char *c = (const unsigned char *) value; *c; c++) {
		if (*c < 0x20 || *c == 0x7f) {
			return zosctl_usage_error(NULL,
			    "-H '%.*s': the value holds a control character",
			    (int) key_len, arg);
		}
	}
	if (ctl->n_headers == ZOSCTL_MAX_HEADERS) {
		return zosctl_usage_error(
		    NULL, "at most %d -H", ZOSCTL_MAX_HEADERS);
	}
	arg[key_len] = '\0';
	if (zosctl_has_header(ctl, arg)) {
		return zosctl_usage_error(NULL, "-H '%s' given twice", arg);
	}
	ctl->headers[ctl->n_headers++] =
	    (struct zrpc_metadata_entry) { .key = arg, .value = value };
	return ZOSCTL_EXIT_OK;
}

/* Applies global option C (a getopt_long result) with value ARG. */
static int
zosctl_global_option(struct zosctl *ctl, int c, char *arg)
{
	uint64_t v;

	switch (c) {
	case 'H':
		return zosctl_header(ctl, arg);
	case 'v':
		ctl->verbose = true;
		return ZOSCTL_EXIT_OK;
	case 'I':
		if (ctl->n_import_paths == ZOSCTL_MAX_IMPORT_PATHS) {
			return zosctl_usage_error(
			    NULL, "at most %d -I", ZOSCTL_MAX_IMPORT_PATHS);
		}
		ctl->import_paths[ctl->n_import_paths++] = arg;
		return ZOSCTL_EXIT_OK;
	case ZOSCTL_OPT_PROTO:
		ctl->proto = arg;
		return ZOSCTL_EXIT_OK;
	case ZOSCTL_OPT_PROTOSET:
		ctl->protoset = arg;
		return ZOSCTL_EXIT_OK;
	case ZOSCTL_OPT_EMIT_DEFAULTS:
		ctl->emit_defaults = true;
		return ZOSCTL_EXIT_OK;
	case ZOSCTL_OPT_FORMAT:
		if (strcmp(arg, "json") == 0) {
			ctl->format = ZOSCTL_FORMAT_JSON;
		} else if (strcmp(arg, "text") == 0) {
			ctl->format = ZOSCTL_FORMAT_TEXT;
		} else {
			return zosctl_usage_error(NULL,
			    "--format wants json or text, not '%s'", arg);
		}
		return ZOSCTL_EXIT_OK;
	case ZOSCTL_OPT_URL: {
		/* Each --url adds servers (a comma list adds several). */
		size_t used =
		    ctl->url == ctl->url_list ? strlen(ctl->url_list) : 0;
		int n = snprintf(ctl->url_list + used,
		    sizeof(ctl->url_list) - used, "%s%s", used > 0 ? "," : "",
		    arg);
		if (n < 0 || (size_t) n >= sizeof(ctl->url_list) - used) {
			return zosctl_usage_error(NULL,
			    "--url: the URLs come to over %d bytes",
			    ZOSCTL_URL_LIST_MAX - 1);
		}
		ctl->url = ctl->url_list;
		return ZOSCTL_EXIT_OK;
	}
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
	while (
	    (opt = getopt_long(argc, argv, ":hvH:I:", options, NULL)) != -1) {
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
	if (ctl->token != NULL && zosctl_has_header(ctl, "authorization")) {
		return zosctl_usage_error(c,
		    "--token and -H 'authorization: ...' do not go together");
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
	while ((opt = getopt_long(argc, argv,
	            "+:hvH:I:", zosctl_global_options, NULL)) != -1) {
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
	zos_resolver_free(ctl.resolver);
	zrpc_client_close(ctl.client);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "zosctl: writing to stdout: %s\n",
		    strerror(errno));
		return ZOSCTL_EXIT_FAILED;
	}
	return rv;
}
