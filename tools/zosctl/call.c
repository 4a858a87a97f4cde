/*
 * zosctl: calling and printing (see zosctl.h).
 *
 * Every call, typed or generic, takes one path: the request goes out
 * packed with zrpc_client_call_raw, with the -H metadata and the token,
 * and the reply comes back as bytes, which are unpacked only once their
 * cost is known to be bounded (zosctl_call_bounded), then printed as JSON
 * or text. -v shows what went out and what came back, on stderr.
 *
 * A server's words are not trusted: every string from it that goes out
 * other than as JSON or text format (an error's message, metadata, the
 * names `list` prints) has its control characters escaped, so that no
 * escape sequence reaches the terminal.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "pbjson.h"
#include "pbtext.h"
#include "pbwire.h"
#include "zos_client.h"
#include "zosctl.h"

/* Most fields and list items of a reply that zosctl prints. */
#define ZOSCTL_MAX_PRINT_ELEMENTS 100000

int
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

void
zosctl_put_escaped(FILE *out, const char *text, bool keep_lines)
{
	for (const unsigned char *c = (const unsigned char *) text; *c != 0;
	     c++) {
		if (keep_lines && (*c == '\n' || *c == '\t')) {
			fputc(*c, out);
			continue;
		}
		switch (*c) {
		case '\\':
			fputs(keep_lines ? "\\" : "\\\\", out);
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

int
zosctl_exit_for(const zrpc_status *status)
{
	unsigned code = (unsigned) status->code;

	if (code == ZRPC_OK) {
		return ZOSCTL_EXIT_OK;
	}
	if (code >= ZRPC_CODE_COUNT) {
		code = ZRPC_UNKNOWN;
	}
	return ZOSCTL_EXIT_CODE_BASE + (int) code;
}

int
zosctl_report(const zrpc_status *status)
{
	fputs(zrpc_status_name(status->code), stderr);
	if (status->message[0] != '\0') {
		fputs(": ", stderr);
		zosctl_put_escaped(stderr, status->message, false);
	}
	fputs("\n", stderr);
	return zosctl_exit_for(status);
}

int
zosctl_open_client(struct zosctl *ctl)
{
	zrpc_client_opts client_opts = {
		.connect_timeout_ms = ctl->timeout_ms,
		.max_message_bytes  = ctl->max_reply_bytes,
		.tls_ca_file        = ctl->tls_ca,
		.tls_cert_file      = ctl->cert,
		.tls_key_file       = ctl->key,
	};
	zrpc_status status;

	if (ctl->client != NULL) {
		return ZOSCTL_EXIT_OK;
	}
	if ((ctl->cert == NULL) != (ctl->key == NULL)) {
		return zosctl_bad_input("--cert and --key go together");
	}
	status = zrpc_client_open(&ctl->client, ctl->url, &client_opts);
	if (status.code != ZRPC_OK) {
		ctl->client = NULL;
		return zosctl_bad_input("--url: %s", status.message);
	}
	return ZOSCTL_EXIT_OK;
}

zrpc_call_opts
zosctl_call_opts(const struct zosctl *ctl)
{
	return (zrpc_call_opts) {
		.timeout_ms = ctl->timeout_ms,
		.token      = ctl->token,
		.metadata   = ctl->n_headers > 0 ? ctl->headers : NULL,
		.n_metadata = ctl->n_headers,
	};
}

zrpc_call_opts
zosctl_reflection_opts(
    const struct zosctl *ctl, struct zrpc_metadata_entry *buf)
{
	zrpc_call_opts opts = zosctl_call_opts(ctl);
	size_t         n    = 0;

	for (size_t i = 0; i < ctl->n_headers; i++) {
		const char *key = ctl->headers[i].key;

		if (strcmp(key, "x-request-id") != 0 &&
		    strcmp(key, "traceparent") != 0 &&
		    strcmp(key, "tracestate") != 0) {
			buf[n++] = ctl->headers[i];
		}
	}
	opts.metadata   = n > 0 ? buf : NULL;
	opts.n_metadata = n;
	return opts;
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

bool
zosctl_has_header(const struct zosctl *ctl, const char *key)
{
	for (size_t i = 0; i < ctl->n_headers; i++) {
		if (strcmp(ctl->headers[i].key, key) == 0) {
			return true;
		}
	}
	return false;
}

/* Prints the N entries of metadata ENTRIES for -v, escaped. */
static void
zosctl_put_metadata(const struct zrpc_metadata_entry *entries, size_t n)
{
	if (n == 0) {
		fputs("(none)\n", stderr);
	}
	for (size_t i = 0; i < n; i++) {
		zosctl_put_escaped(stderr, entries[i].key, false);
		fputs(": ", stderr);
		zosctl_put_escaped(stderr, entries[i].value, false);
		fputs("\n", stderr);
	}
}

/* -v: what went out, what came back (REPLY_MD: NULL when no reply came),
 * and the status. */
static void
zosctl_verbose(const struct zosctl *ctl, const struct zrpc_method *method,
    const struct zrpc_metadata *reply_md, const zrpc_status *status)
{
	fputs("Method: ", stderr);
	zosctl_put_escaped(stderr, method->path, false);
	fputs("\n\nRequest metadata sent:\n", stderr);
	if (ctl->token != NULL) {
		fputs("authorization: Bearer (--token, not shown)\n", stderr);
	}
	if (ctl->n_headers > 0 || ctl->token == NULL) {
		zosctl_put_metadata(ctl->headers, ctl->n_headers);
	}
	if (zrpc_metadata_get(reply_md, "x-request-id") != NULL &&
	    !zosctl_has_header(ctl, "x-request-id")) {
		fputs("(no -H x-request-id: the reply says which id the call "
		      "got)\n",
		    stderr);
	}
	fputs("\nReply metadata received:\n", stderr);
	if (reply_md == NULL) {
		fputs("(no reply)\n", stderr);
	} else {
		zosctl_put_metadata(reply_md->entries, reply_md->n_entries);
	}
	fprintf(stderr, "\nStatus: %s (%d, exit status %d)\n\n",
	    zrpc_status_name(status->code), (int) status->code,
	    zosctl_exit_for(status));
}

int
zosctl_invoke(struct zosctl *ctl, const struct zrpc_method *method,
    const ProtobufCMessage *request, ProtobufCMessage **reply)
{
	struct zrpc_metadata *reply_md = NULL;
	zrpc_call_opts        opts     = zosctl_call_opts(ctl);
	zrpc_call_opts        given    = opts;
	struct zos_client    *router   = NULL;
	zrpc_status           status;
	int                   rv;

	*reply = NULL;
	if ((rv = zosctl_open_client(ctl)) != ZOSCTL_EXIT_OK) {
		return rv;
	}
	/* A call naming a session goes to its node (several servers). */
	if (ctl->session_id != NULL &&
	    zrpc_client_n_servers(ctl->client) > 1) {
		status = zos_client_create(&router, ctl->client);
		if (status.code == ZRPC_OK) {
			status = zos_client_route(
			    router, ctl->session_id, &given, &opts);
		}
		zos_client_close(router);
		if (status.code != ZRPC_OK) {
			return zosctl_report(&status);
		}
	}
	if (ctl->verbose) {
		opts.reply_metadata = &reply_md;
	}
	status =
	    zosctl_call_bounded(ctl->client, method, request, reply, &opts);
	if (ctl->verbose) {
		zosctl_verbose(ctl, method, reply_md, &status);
		zrpc_metadata_free(reply_md);
	}
	if (status.code != ZRPC_OK) {
		return zosctl_report(&status);
	}
	if (zosctl_count_elements(*reply, ZOSCTL_MAX_PRINT_ELEMENTS) >
	    ZOSCTL_MAX_PRINT_ELEMENTS) {
		status = zrpc_status_make(ZRPC_RESOURCE_EXHAUSTED,
		    "reply too large to print (over %d fields and list items)",
		    ZOSCTL_MAX_PRINT_ELEMENTS);
		protobuf_c_message_free_unpacked(*reply, NULL);
		*reply = NULL;
		return zosctl_report(&status);
	}
	return ZOSCTL_EXIT_OK;
}

int
zosctl_print(const struct zosctl *ctl, const ProtobufCMessage *message)
{
	char  error[512];
	char *text;

	if (ctl->format == ZOSCTL_FORMAT_TEXT) {
		text = zos_pbtext_print(
		    message, ctl->emit_defaults, error, sizeof(error));
	} else {
		const struct zos_pbjson_print_opts opts = {
			.pretty        = true,
			.emit_defaults = ctl->emit_defaults,
		};

		text =
		    zos_pbjson_print_ext(message, &opts, error, sizeof(error));
	}
	if (text == NULL) {
		fputs("zosctl: cannot print the reply: ", stderr);
		zosctl_put_escaped(stderr, error, false);
		fputs("\n", stderr);
		return ZOSCTL_EXIT_FAILED;
	}
	if (ctl->format == ZOSCTL_FORMAT_TEXT) {
		fputs(text, stdout); /* each line ends in a newline */
	} else {
		printf("%s\n", text);
	}
	free(text);
	return ZOSCTL_EXIT_OK;
}

int
zosctl_call_and_print(struct zosctl *ctl, const struct zrpc_method *method,
    const ProtobufCMessage *request)
{
	ProtobufCMessage *reply;
	int               rv = zosctl_invoke(ctl, method, request, &reply);

	if (rv != ZOSCTL_EXIT_OK) {
		return rv;
	}
	rv = zosctl_print(ctl, reply);
	protobuf_c_message_free_unpacked(reply, NULL);
	return rv;
}
