/*
 * zos-load's requests; see payloads.h.
 *
 * The method's wire name and the input type that --data and --data-file
 * are parsed as come from the resolver (resolve.h), asked once, before
 * the run: with --protoset or --proto, from those files; else from the
 * server by reflection (a client of its own, with the run's TLS options,
 * token and -H metadata, waiting for the server at most
 * --connect-timeout-ms); else from the compiled-in tables (methods.h).
 * With --echo the server is zos-echo, which has no reflection: the files
 * or the tables only. When the server does not answer the reflection
 * call (it cannot be reached, it wants a token...), a method in the
 * tables is still parsed with them (the run then shows the failure call
 * by call); any other method cannot be. --data-hex needs no type at all: a
 * method zos-load does not know is driven with it, given its full wire name.
 * Each body is packed into a buffer of its own, of exactly its packed size,
 * and is at most LOAD_MAX_PAYLOAD bytes (zosd's default limit on a message);
 * --data-file grows its array by doubling and holds at most
 * LOAD_MAX_DATA_LINES requests. Every problem with a request names where it
 * came from ("--data", "FILE:3").
 */
#include "payloads.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "methods.h"
#include "pbjson.h"
#include "zrpc/client.h"
#include "zrpc/service.h"

#define LOAD_MAX_PAYLOAD (4u << 20)
#define LOAD_MAX_DATA_LINES 10000000u

/* The value of the hex digit CH, or -1 when it is not one. */
static int
load_payloads_hex_digit(char ch)
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
load_payloads_from_hex(const char *hex, struct load_payload *out)
{
	size_t len = strlen(hex);

	out->bytes = NULL;
	out->len   = 0;
	if (len % 2 != 0 || len / 2 > LOAD_MAX_PAYLOAD) {
		return load_flags_usage_error(
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
		int high = load_payloads_hex_digit(hex[2 * i]);
		int low  = load_payloads_hex_digit(hex[2 * i + 1]);

		if (high < 0 || low < 0) {
			free(out->bytes);
			out->bytes = NULL;
			return load_flags_usage_error(
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
load_payloads_from_json(const ProtobufCMessageDescriptor *desc,
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
load_payloads_line_is_blank(const char *line)
{
	while (
	    *line == ' ' || *line == '\t' || *line == '\r' || *line == '\n') {
		line++;
	}
	return *line == '\0' || *line == '#';
}

/*
 * Reads --data-file: packs each line into PAYLOADS. Returns 0, or
 * LOAD_EXIT_USAGE / LOAD_EXIT_FAILED with a message on stderr.
 */
static int
load_payloads_from_file(struct load_payloads *payloads,
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
		if (load_payloads_line_is_blank(line)) {
			continue;
		}
		if (payloads->n == LOAD_MAX_DATA_LINES) {
			fprintf(stderr,
			    "zos-load: --data-file %s: more than %u "
			    "requests\n",
			    file, LOAD_MAX_DATA_LINES);
			rv = LOAD_EXIT_USAGE;
			goto out;
		}
		if (payloads->n == allocated) {
			size_t more = allocated ? allocated * 2 : 64;
			struct load_payload *grown = realloc(
			    payloads->items, more * sizeof(*payloads->items));

			if (grown == NULL) {
				fprintf(stderr, "zos-load: out of memory\n");
				rv = LOAD_EXIT_FAILED;
				goto out;
			}
			payloads->items = grown;
			allocated       = more;
		}
		snprintf(where, sizeof(where), "%s:%zu", file, lineno);
		if ((rv = load_payloads_from_json(desc, line, where,
		         &payloads->items[payloads->n])) != 0) {
			goto out;
		}
		payloads->n++;
	}
	if (ferror(in)) {
		fprintf(stderr, "zos-load: --data-file %s: %s\n", file,
		    strerror(errno));
		rv = LOAD_EXIT_USAGE;
	} else if (payloads->n == 0) {
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
 * Resolves --method through the resolver into *METHOD (see the top of the
 * file). Returns 0, or an exit status with a message on stderr.
 */
static int
load_payloads_resolve(const struct load_options *opts,
    struct load_payloads *payloads, const struct zrpc_method **method)
{
	struct zos_resolve_opts ropts = {
		.protoset       = opts->protoset,
		.proto          = opts->proto,
		.import_paths   = opts->import_paths,
		.n_import_paths = opts->n_import_paths,
	};
	zrpc_client_opts copts = {
		.connect_timeout_ms = opts->connect_timeout_ms,
		.tls_ca_file        = opts->tls_ca,
		.tls_cert_file      = opts->cert,
		.tls_key_file       = opts->key,
	};
	zrpc_call_opts call = {
		.timeout_ms = opts->connect_timeout_ms,
		.token      = opts->token,
		.metadata   = opts->headers,
		.n_metadata = opts->n_headers,
	};
	zrpc_client *client = NULL;
	zrpc_status  status;

	*method = NULL;
	status  = zos_resolver_new(&payloads->resolver, &ropts);
	if (status.code == ZRPC_RESOURCE_EXHAUSTED) {
		fprintf(stderr, "zos-load: %s\n", status.message);
		return LOAD_EXIT_FAILED;
	}
	if (status.code != ZRPC_OK) {
		return load_flags_usage_error("%s", status.message);
	}
	if (!opts->echo && !zos_resolver_has_files(payloads->resolver)) {
		status = zrpc_client_open(&client, opts->url, &copts);
		if (status.code != ZRPC_OK) {
			fprintf(stderr, "zos-load: --url %s: %s\n", opts->url,
			    status.message);
			return status.code == ZRPC_INVALID_ARGUMENT
			    ? LOAD_EXIT_USAGE
			    : LOAD_EXIT_FAILED;
		}
	}
	status = zos_resolve_method(
	    payloads->resolver, client, &call, opts->method, method, NULL);
	zrpc_client_close(client);
	if (status.code == ZRPC_OK) {
		return 0;
	}
	if (status.code == ZRPC_NOT_FOUND ||
	    status.code == ZRPC_INVALID_ARGUMENT ||
	    status.code == ZRPC_FAILED_PRECONDITION) {
		return load_flags_usage_error("%s", status.message);
	}
	/* The server did not answer (unreachable, no token...): the run
	 * will show why, call by call, for a method the tables know. */
	if ((*method = zos_tools_find_method(opts->method)) != NULL) {
		return 0;
	}
	fprintf(stderr, "zos-load: cannot resolve %s through %s: %s: %s\n",
	    opts->method, opts->url, zrpc_status_name(status.code),
	    status.message);
	return LOAD_EXIT_FAILED;
}

int
load_payloads_prepare(
    const struct load_options *opts, struct load_payloads *payloads)
{
	const struct zrpc_method *method = NULL;
	const char               *slash;
	int                       rv;

	memset(payloads, 0, sizeof(*payloads));
	if (opts->method != NULL && opts->data_hex == NULL) {
		if ((rv = load_payloads_resolve(opts, payloads, &method)) !=
		    0) {
			return rv;
		}
	} else if (opts->method != NULL) {
		method = zos_tools_find_method(opts->method);
		slash  = opts->method[0] == '/' ? strchr(opts->method + 1, '/')
		                                : NULL;
		if (method == NULL &&
		    (opts->data_hex == NULL || slash == NULL ||
		        slash == opts->method + 1 || slash[1] == '\0')) {
			if (opts->data_hex == NULL) {
				return load_flags_usage_error(
				    "unknown method '%s' (for a method "
				    "zos-load does not know, give its full "
				    "wire name, /package.Service/Method, and "
				    "the request with --data-hex)",
				    opts->method);
			}
			return load_flags_usage_error(
			    "unknown method '%s': not a wire name "
			    "/package.Service/Method",
			    opts->method);
		}
	}
	payloads->path = opts->echo ? ""
	    : method != NULL        ? method->path
	                            : opts->method;

	if (opts->data_file != NULL) {
		rv = load_payloads_from_file(
		    payloads, method->input, opts->data_file);
		if (rv == 0 && opts->data_per_caller &&
		    payloads->n % opts->concurrency != 0) {
			return load_flags_usage_error(
			    "--data-per-caller: %zu requests in %s do not "
			    "split into %zu equal blocks",
			    payloads->n, opts->data_file, opts->concurrency);
		}
		return rv;
	}
	if ((payloads->items = calloc(1, sizeof(*payloads->items))) == NULL) {
		fprintf(stderr, "zos-load: out of memory\n");
		return LOAD_EXIT_FAILED;
	}
	payloads->n = 1;
	if (opts->data_hex != NULL) {
		return load_payloads_from_hex(
		    opts->data_hex, &payloads->items[0]);
	}
	if (method == NULL) {
		/* --echo without --method: the empty payload. */
		return 0;
	}
	return load_payloads_from_json(method->input,
	    opts->data != NULL ? opts->data : "", "--data",
	    &payloads->items[0]);
}

void
load_payloads_finish(struct load_payloads *payloads)
{
	for (size_t i = 0; i < payloads->n; i++) {
		free(payloads->items[i].bytes);
	}
	free(payloads->items);
	payloads->items = NULL;
	payloads->n     = 0;
	zos_resolver_free(payloads->resolver);
	payloads->resolver = NULL;
}
