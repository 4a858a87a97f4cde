/*
 * zosctl's commands for any zrpc service: `call METHOD JSON`, `list
 * [SERVICE]` and `describe [SYMBOL]`, through the tools' resolver
 * (resolve.h): descriptors from --protoset or --proto when given, else
 * from the server by reflection, else the compiled-in tables.
 *
 * `list` asks zrpc.v1.Reflection/ListServices, which every zrpc server
 * answers (descriptor reflection or not), unless files are given, in
 * which case it lists what they define, as grpcurl does. Everything these
 * commands print that came from a server (names, the .proto text
 * rebuilt from its descriptors) goes through zosctl_put_escaped.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pbjson.h"
#include "zosctl.h"
#include "zrpc/v1/reflection.zrpc.h"

/* Largest request JSON read from stdin. */
#define ZOSCTL_MAX_STDIN (64u * 1024 * 1024)

/* CTL's resolver, made on first use from --proto/--protoset/-I. */
static int
zosctl_resolver(struct zosctl *ctl)
{
	struct zos_resolve_opts opts = {
		.protoset       = ctl->protoset,
		.proto          = ctl->proto,
		.import_paths   = ctl->import_paths,
		.n_import_paths = ctl->n_import_paths,
	};
	zrpc_status status;

	if (ctl->resolver != NULL) {
		return ZOSCTL_EXIT_OK;
	}
	status = zos_resolver_new(&ctl->resolver, &opts);
	if (status.code == ZRPC_OK) {
		return ZOSCTL_EXIT_OK;
	}
	ctl->resolver = NULL;
	fputs("zosctl: ", stderr);
	zosctl_put_escaped(stderr, status.message, false);
	fputs("\n", stderr);
	return status.code == ZRPC_INVALID_ARGUMENT ? ZOSCTL_EXIT_USAGE
	                                            : ZOSCTL_EXIT_FAILED;
}

/* The client reflection needs, unless the descriptors come from files. */
static int
zosctl_lookup_client(struct zosctl *ctl, zrpc_client **client)
{
	int rv = zosctl_resolver(ctl);

	*client = NULL;
	if (rv != ZOSCTL_EXIT_OK || zos_resolver_has_files(ctl->resolver)) {
		return rv;
	}
	rv      = zosctl_open_client(ctl);
	*client = ctl->client;
	return rv;
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

int
zosctl_run_call(struct zosctl *ctl, const struct zosctl_args *args)
{
	const struct zrpc_method  *method;
	const char                *json;
	char                      *from_stdin = NULL;
	char                       error[1024];
	ProtobufCMessage          *request;
	zrpc_client               *client;
	struct zrpc_metadata_entry reflect_md[ZOSCTL_MAX_HEADERS];
	zrpc_call_opts          opts = zosctl_reflection_opts(ctl, reflect_md);
	enum zos_resolve_source source;
	zrpc_status             status;
	int                     rv;

	if ((rv = zosctl_lookup_client(ctl, &client)) != ZOSCTL_EXIT_OK) {
		return rv;
	}
	status = zos_resolve_method(
	    ctl->resolver, client, &opts, args->operands[0], &method, &source);
	if (status.code == ZRPC_NOT_FOUND) {
		fputs("zosctl: ", stderr);
		zosctl_put_escaped(stderr, status.message, false);
		fputs(" ('zosctl list' shows what the server has)\n", stderr);
		return ZOSCTL_EXIT_USAGE;
	}
	if (status.code != ZRPC_OK) {
		return zosctl_report(&status);
	}
	if (ctl->verbose) {
		fprintf(stderr, "Descriptors: %s\n",
		    zos_resolve_source_name(source));
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

/* The server's services, by zrpc.v1.Reflection/ListServices. */
static int
zosctl_list_services(
    struct zosctl *ctl, Zrpc__V1__ListServicesResponse **reply)
{
	Zrpc__V1__ListServicesRequest req =
	    ZRPC__V1__LIST_SERVICES_REQUEST__INIT;

	return zosctl_invoke(ctl, &zrpc_v1_reflection_list_services_method,
	    &req.base, (ProtobufCMessage **) reply);
}

/* Prints the methods of SERVICE as the files define them. */
static int
zosctl_list_file_methods(zrpc_descriptor_pool *pool, const char *service)
{
	const ProtobufCServiceDescriptor *desc;
	zrpc_status                       status =
	    zrpc_descriptor_pool_find_service(pool, service, &desc);

	if (status.code != ZRPC_OK) {
		return zosctl_report(&status);
	}
	for (unsigned m = 0; m < desc->n_methods; m++) {
		zosctl_put_escaped(stdout, service, false);
		fputs(".", stdout);
		zosctl_put_escaped(stdout, desc->methods[m].name, false);
		fputs("\n", stdout);
	}
	return ZOSCTL_EXIT_OK;
}

/* Writes a wire method name "/pkg.Svc/M" as grpcurl does: pkg.Svc.M. */
static void
zosctl_put_method_name(const char *path)
{
	char *copy = strdup(path[0] == '/' ? path + 1 : path);
	char *slash;

	if (copy == NULL) {
		zosctl_put_escaped(stdout, path, false);
		return;
	}
	if ((slash = strchr(copy, '/')) != NULL) {
		*slash = '.';
	}
	zosctl_put_escaped(stdout, copy, false);
	free(copy);
}

int
zosctl_run_list(struct zosctl *ctl, const struct zosctl_args *args)
{
	const char *service = args->n_operands > 0 ? args->operands[0] : NULL;
	Zrpc__V1__ListServicesResponse *reply;
	zrpc_descriptor_pool           *pool;
	zrpc_client                    *client;
	bool                            found = false;
	int                             rv;

	if ((rv = zosctl_lookup_client(ctl, &client)) != ZOSCTL_EXIT_OK) {
		return rv;
	}
	if (zos_resolver_has_files(ctl->resolver)) {
		const char *const *names;
		size_t             n;
		zrpc_status        status;

		zos_resolve_symbol(
		    ctl->resolver, NULL, NULL, NULL, &pool, NULL);
		if (service != NULL) {
			return zosctl_list_file_methods(pool, service);
		}
		status = zrpc_descriptor_pool_services(pool, &names, &n);
		if (status.code != ZRPC_OK) {
			return zosctl_report(&status);
		}
		for (size_t i = 0; i < n; i++) {
			zosctl_put_escaped(stdout, names[i], false);
			fputs("\n", stdout);
		}
		return ZOSCTL_EXIT_OK;
	}
	if ((rv = zosctl_list_services(ctl, &reply)) != ZOSCTL_EXIT_OK) {
		return rv;
	}
	for (size_t s = 0; s < reply->n_services; s++) {
		const Zrpc__V1__ServiceInfo *info = reply->services[s];

		if (service == NULL) {
			zosctl_put_escaped(stdout, info->name, false);
			fputs("\n", stdout);
			continue;
		}
		if (strcmp(info->name, service) != 0) {
			continue;
		}
		found = true;
		for (size_t m = 0; m < info->n_methods; m++) {
			zosctl_put_method_name(info->methods[m]->full_name);
			fputs("\n", stdout);
		}
	}
	zrpc__v1__list_services_response__free_unpacked(reply, NULL);
	if (service != NULL && !found) {
		zrpc_status status = zrpc_status_make(ZRPC_NOT_FOUND,
		    "the server has no service '%s' ('zosctl list' lists "
		    "them)",
		    service);

		return zosctl_report(&status);
	}
	return ZOSCTL_EXIT_OK;
}

/* Prints the .proto text of SYMBOL, from the resolver's sources. */
static int
zosctl_describe_one(
    struct zosctl *ctl, zrpc_client *client, const char *symbol, bool first)
{
	zrpc_call_opts        opts = zosctl_call_opts(ctl);
	zrpc_descriptor_pool *pool;
	char                 *text = NULL;
	zrpc_status           status;

	if (symbol[0] == '/') {
		symbol++; /* "/pkg.Svc/M" as a wire name */
	}
	status = zos_resolve_symbol(
	    ctl->resolver, client, &opts, symbol, &pool, NULL);
	if (status.code == ZRPC_OK) {
		status = zrpc_descriptor_pool_describe(pool, symbol, &text);
	}
	if (status.code != ZRPC_OK) {
		return zosctl_report(&status);
	}
	if (!first) {
		fputs("\n", stdout);
	}
	zosctl_put_escaped(stdout, text, true);
	if (text[0] != '\0' && text[strlen(text) - 1] != '\n') {
		fputs("\n", stdout);
	}
	free(text);
	return ZOSCTL_EXIT_OK;
}

int
zosctl_run_describe(struct zosctl *ctl, const struct zosctl_args *args)
{
	zrpc_client                    *client;
	Zrpc__V1__ListServicesResponse *reply;
	int                             rv;

	if ((rv = zosctl_lookup_client(ctl, &client)) != ZOSCTL_EXIT_OK) {
		return rv;
	}
	if (args->n_operands > 0) {
		return zosctl_describe_one(
		    ctl, client, args->operands[0], true);
	}
	/* No symbol: every service, as grpcurl describe does. */
	if (zos_resolver_has_files(ctl->resolver)) {
		zrpc_descriptor_pool *pool;
		const char *const    *names;
		size_t                n;
		zrpc_status           status;

		zos_resolve_symbol(
		    ctl->resolver, NULL, NULL, NULL, &pool, NULL);
		status = zrpc_descriptor_pool_services(pool, &names, &n);
		if (status.code != ZRPC_OK) {
			return zosctl_report(&status);
		}
		for (size_t i = 0; i < n && rv == ZOSCTL_EXIT_OK; i++) {
			rv = zosctl_describe_one(ctl, NULL, names[i], i == 0);
		}
		return rv;
	}
	if ((rv = zosctl_list_services(ctl, &reply)) != ZOSCTL_EXIT_OK) {
		return rv;
	}
	for (size_t s = 0; s < reply->n_services && rv == ZOSCTL_EXIT_OK;
	     s++) {
		rv = zosctl_describe_one(
		    ctl, client, reply->services[s]->name, s == 0);
	}
	zrpc__v1__list_services_response__free_unpacked(reply, NULL);
	return rv;
}
