/*
 * Health and Reflection. Both handlers only read the registry (its shape
 * is fixed once the server starts; serving flags are atomics), so they
 * never block and run on nng's completion threads. Reply memory comes from
 * the call's arena (zrpc_call_alloc).
 *
 * The descriptor methods build a descriptor pool per call from the files
 * embedded in the registered services (zrpc/descriptor.h): nothing is
 * kept between calls, so the server holds no state for them, and a
 * reflection call, which is rare, pays for unpacking the files. The
 * reply's bytes are the embedded const data itself, never copied.
 */
#include "builtin.h"

#include <stdlib.h>
#include <string.h>

#include "../common/descriptor_pool.h"
#include "zrpc/descriptor.h"
#include "zrpc/server.h"
#include "zrpc/v1/health.zrpc.h"
#include "zrpc/v1/reflection.zrpc.h"

static zrpc_status
builtin_health_check(zrpc_call *call, const Zrpc__V1__HealthCheckRequest *req,
    Zrpc__V1__HealthCheckResponse *reply)
{
	const struct zrpc_registry *registry = zrpc_call_service_ctx(call);
	const char *service = req->service != NULL ? req->service : "";

	reply->status = (Zrpc__V1__HealthCheckResponse__ServingStatus)
	    zrpc_registry_health(registry, service);
	if (registry->node_id != NULL) {
		return zrpc_call_set_reply_metadata(
		    call, "x-zrpc-node", registry->node_id);
	}
	return zrpc_status_ok();
}

static int
builtin_compare_services(const void *a, const void *b)
{
	const Zrpc__V1__ServiceInfo *const *x = a;
	const Zrpc__V1__ServiceInfo *const *y = b;

	return strcmp((*x)->name, (*y)->name);
}

static zrpc_status
builtin_list_services(zrpc_call         *call,
    const Zrpc__V1__ListServicesRequest *req,
    Zrpc__V1__ListServicesResponse      *reply)
{
	const struct zrpc_registry *registry = zrpc_call_service_ctx(call);
	size_t                      n = zrpc_registry_service_count(registry);
	Zrpc__V1__ServiceInfo     **services;

	(void) req;
	services = zrpc_call_alloc(call, n * sizeof(*services));
	if (services == NULL && n > 0) {
		goto oom;
	}
	for (size_t s = 0; s < n; s++) {
		const struct zrpc_service_desc *desc =
		    zrpc_registry_service_desc(registry, s);
		Zrpc__V1__ServiceInfo *info;
		Zrpc__V1__MethodInfo **methods;

		info    = zrpc_call_alloc(call, sizeof(*info));
		methods = zrpc_call_alloc(
		    call, desc->n_methods * sizeof(*methods) + 1);
		if (info == NULL || methods == NULL) {
			goto oom;
		}
		zrpc__v1__service_info__init(info);
		info->name      = (char *) desc->name;
		info->n_methods = desc->n_methods;
		info->methods   = methods;
		for (size_t m = 0; m < desc->n_methods; m++) {
			const struct zrpc_method *method = &desc->methods[m];
			Zrpc__V1__MethodInfo     *mi;

			if ((mi = zrpc_call_alloc(call, sizeof(*mi))) ==
			    NULL) {
				goto oom;
			}
			zrpc__v1__method_info__init(mi);
			mi->name        = (char *) method->name;
			mi->full_name   = (char *) method->path;
			mi->input_type  = (char *) method->input->name;
			mi->output_type = (char *) method->output->name;
			mi->blocking =
			    zrpc_registry_method_blocking(registry, s, m);
			mi->role   = (char *) zrpc_role_name(method->role);
			methods[m] = mi;
		}
		services[s] = info;
	}
	if (n > 1) {
		qsort(
		    services, n, sizeof(*services), builtin_compare_services);
	}
	reply->n_services = n;
	reply->services   = services;
	return zrpc_status_ok();

oom:
	return zrpc_status_make(ZRPC_RESOURCE_EXHAUSTED, "out of memory");
}

/*
 * Answers with the files of SYMBOL (a file name only, when BY_FILENAME)
 * and their imports, from the embedded files of every registered service.
 */
static zrpc_status
builtin_file_descriptors(zrpc_call *call, const char *symbol, bool by_filename,
    Zrpc__V1__FileDescriptorResponse *reply)
{
	const struct zrpc_registry *registry = zrpc_call_service_ctx(call);
	size_t                      n = zrpc_registry_service_count(registry);
	zrpc_descriptor_pool       *pool;
	ProtobufCBinaryData        *files   = NULL;
	size_t                      n_files = 0;
	zrpc_status                 status;

	if (symbol == NULL || symbol[0] == '\0') {
		return zrpc_status_make(ZRPC_INVALID_ARGUMENT,
		    by_filename ? "no file name" : "no symbol");
	}
	status = zrpc_descriptor_pool_new(&pool);
	if (!zrpc_status_is_ok(&status)) {
		return status;
	}
	for (size_t s = 0; s < n; s++) {
		const struct zrpc_service_desc *desc =
		    zrpc_registry_service_desc(registry, s);

		if (desc->file == NULL) {
			continue; /* written by hand: nothing to serve */
		}
		status = zrpc_descriptor_pool_add_service(pool, desc);
		if (status.code == ZRPC_RESOURCE_EXHAUSTED) {
			goto out;
		}
		/*
		 * Otherwise a file that clashes with one added before (two
		 * services built from different versions of one .proto) is
		 * left out, and the others are still served.
		 */
	}
	if (by_filename && zrpc_dpool_find_file(pool, symbol) == NULL) {
		status = zrpc_status_make(
		    ZRPC_NOT_FOUND, "file %s not found", symbol);
		goto out;
	}
	status =
	    zrpc_descriptor_pool_file_closure(pool, symbol, &files, &n_files);
	if (!zrpc_status_is_ok(&status)) {
		goto out;
	}
	reply->file_descriptor_proto =
	    zrpc_call_alloc(call, n_files * sizeof(files[0]) + 1);
	if (reply->file_descriptor_proto == NULL) {
		status =
		    zrpc_status_make(ZRPC_RESOURCE_EXHAUSTED, "out of memory");
		goto out;
	}
	/* The bytes are the services' const data: they outlive the call. */
	memcpy(
	    reply->file_descriptor_proto, files, n_files * sizeof(files[0]));
	reply->n_file_descriptor_proto = n_files;

out:
	free(files);
	zrpc_descriptor_pool_free(pool);
	return status;
}

static zrpc_status
builtin_file_containing_symbol(zrpc_call        *call,
    const Zrpc__V1__FileContainingSymbolRequest *req,
    Zrpc__V1__FileDescriptorResponse            *reply)
{
	return builtin_file_descriptors(call, req->symbol, false, reply);
}

static zrpc_status
builtin_file_by_filename(zrpc_call        *call,
    const Zrpc__V1__FileByFilenameRequest *req,
    Zrpc__V1__FileDescriptorResponse      *reply)
{
	return builtin_file_descriptors(call, req->filename, true, reply);
}

zrpc_status
zrpc_builtin_register(
    zrpc_server *server, const struct zrpc_registry *registry)
{
	const struct zrpc_v1_health_handlers health = {
		.check = builtin_health_check,
	};
	const struct zrpc_v1_reflection_handlers reflection = {
		.list_services          = builtin_list_services,
		.file_containing_symbol = builtin_file_containing_symbol,
		.file_by_filename       = builtin_file_by_filename,
	};
	zrpc_status status;

	/* The handlers only read the registry; the context is not const. */
	status = zrpc_v1_health_register(
	    server, &health, (struct zrpc_registry *) registry);
	if (!zrpc_status_is_ok(&status)) {
		return status;
	}
	return zrpc_v1_reflection_register(
	    server, &reflection, (struct zrpc_registry *) registry);
}
