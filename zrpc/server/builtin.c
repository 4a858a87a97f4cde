/*
 * Health and Reflection. Both handlers only read the server's registration
 * (fixed once started) and atomics, so they never block and run on nng's
 * completion threads. Reply memory comes from the call's arena.
 */
#include "builtin.h"

#include <stdlib.h>
#include <string.h>

#include "zrpc/v1/health.zrpc.h"
#include "zrpc/v1/reflection.zrpc.h"

static zrpc_status
builtin_health_check(zrpc_call *call, const Zrpc__V1__HealthCheckRequest *req,
    Zrpc__V1__HealthCheckResponse *reply)
{
	const zrpc_server *server  = zrpc_call_service_ctx(call);
	const char        *service = req->service != NULL ? req->service : "";

	reply->status =
	    (Zrpc__V1__HealthCheckResponse__ServingStatus) server_health(
	        server, service);
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
	const zrpc_server      *server = zrpc_call_service_ctx(call);
	size_t                  n      = server_service_count(server);
	Zrpc__V1__ServiceInfo **services;

	(void) req;
	services = zrpc_call_alloc(call, n * sizeof(*services));
	if (services == NULL && n > 0) {
		goto oom;
	}
	for (size_t s = 0; s < n; s++) {
		const struct zrpc_service_desc *desc =
		    server_service_desc(server, s);
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
			mi->blocking    = server_method_blocking(server, s, m);
			methods[m]      = mi;
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

zrpc_status
builtin_register(zrpc_server *server)
{
	const struct zrpc_v1_health_handlers health = {
		.check = builtin_health_check,
	};
	const struct zrpc_v1_reflection_handlers reflection = {
		.list_services = builtin_list_services,
	};
	zrpc_status status;

	status = zrpc_v1_health_register(server, &health, server);
	if (!zrpc_status_is_ok(&status)) {
		return status;
	}
	return zrpc_v1_reflection_register(server, &reflection, server);
}
