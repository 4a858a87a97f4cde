/*
 * The methods the command-line tools know; see methods.h.
 *
 * The table is the generated service descriptions themselves, so a method
 * added to a .proto is known here after a rebuild with nothing to edit; a
 * new service needs one line below.
 */
#include "methods.h"

#include <string.h>

#include "zos/v1/zos.zrpc.h"
#include "zrpc/v1/health.zrpc.h"
#include "zrpc/v1/reflection.zrpc.h"

static const struct zrpc_service_desc *const methods_services[] = {
	&zos_v1_skills_service,
	&zos_v1_session_service,
	&zos_v1_routing_service,
	&zos_v1_cache_service,
	&zos_v1_assistant_service,
	&zos_v1_model_backend_service,
	&zrpc_v1_health_service,
	&zrpc_v1_reflection_service,
};

#define METHODS_N_SERVICES \
	(sizeof(methods_services) / sizeof(methods_services[0]))

const struct zrpc_method *
zos_tools_find_method(const char *name)
{
	if (name == NULL) {
		return NULL;
	}
	if (name[0] == '/') {
		name++;
	}
	for (size_t s = 0; s < METHODS_N_SERVICES; s++) {
		const struct zrpc_service_desc *service = methods_services[s];
		size_t                          len = strlen(service->name);

		if (strncmp(name, service->name, len) != 0 ||
		    (name[len] != '/' && name[len] != '.')) {
			continue;
		}
		for (size_t m = 0; m < service->n_methods; m++) {
			if (strcmp(name + len + 1, service->methods[m].name) ==
			    0) {
				return &service->methods[m];
			}
		}
	}
	return NULL;
}

const struct zrpc_service_desc *const *
zos_tools_services(size_t *n)
{
	*n = METHODS_N_SERVICES;
	return methods_services;
}
