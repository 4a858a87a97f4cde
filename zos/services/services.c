/*
 * Registers every zOS service (see services.h). Only this file knows the
 * whole set; each service knows only the state, its own context and the
 * durable reply (durable.h), never this file.
 */
#include "services.h"

#include "assistant.h"

zrpc_status
zos_services_register(zrpc_server *server, const struct zos_services *services)
{
	zrpc_status (*const registers[])(zrpc_server *, struct zos_state *) = {
		zos_routing_service_register,
		zos_cache_service_register,
	};
	zrpc_status status;

	/* Registration order is the fuzz corpus's method order: Skills,
	 * Session, then the rest. */
	status = zos_skills_service_register(server, services);
	if (!zrpc_status_is_ok(&status)) {
		return status;
	}
	status = zos_session_service_register(server, services);
	if (!zrpc_status_is_ok(&status)) {
		return status;
	}

	for (size_t i = 0; i < sizeof(registers) / sizeof(registers[0]); i++) {
		status = registers[i](server, services->state);
		if (!zrpc_status_is_ok(&status)) {
			return status;
		}
	}
	return zos_assistant_service_register(server, services);
}
