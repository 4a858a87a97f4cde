/*
 * Registers every zOS service (see services.h).
 */
#include "services.h"

zrpc_status
zos_services_register(zrpc_server *server, struct zos_state *state)
{
	zrpc_status (*const registers[])(zrpc_server *, struct zos_state *) = {
		zos_skills_service_register,
		zos_session_service_register,
		zos_routing_service_register,
		zos_cache_service_register,
	};
	zrpc_status status = zrpc_status_ok();

	for (size_t i = 0; i < sizeof(registers) / sizeof(registers[0]); i++) {
		status = registers[i](server, state);
		if (!zrpc_status_is_ok(&status)) {
			break;
		}
	}
	return status;
}
