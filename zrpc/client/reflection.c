/*
 * reflection: descriptors fetched from a server (zrpc.v1.Reflection) into
 * a descriptor pool, through the generated blocking stubs.
 *
 * The server answers FileContainingSymbol with the defining file and all
 * its imports, so one call per symbol is enough; files the pool already
 * has are skipped by add_file. A server that predates the descriptor
 * methods answers UNIMPLEMENTED, which is passed on with a message that
 * says what it means.
 */
#include <stdlib.h>
#include <string.h>

#include "zrpc/client.h"
#include "zrpc/descriptor.h"
#include "zrpc/v1/reflection.zrpc.h"

/* Adds the files of REPLY to POOL. */
static zrpc_status
reflection_add(
    zrpc_descriptor_pool *pool, const Zrpc__V1__FileDescriptorResponse *reply)
{
	for (size_t i = 0; i < reply->n_file_descriptor_proto; i++) {
		zrpc_status status = zrpc_descriptor_pool_add_file(pool,
		    reply->file_descriptor_proto[i].data,
		    reply->file_descriptor_proto[i].len);

		if (!zrpc_status_is_ok(&status)) {
			return status;
		}
	}
	return zrpc_status_ok();
}

zrpc_status
zrpc_reflection_fetch(zrpc_client *client, const char *symbol,
    zrpc_descriptor_pool *pool, const zrpc_call_opts *opts)
{
	Zrpc__V1__FileContainingSymbolRequest request =
	    ZRPC__V1__FILE_CONTAINING_SYMBOL_REQUEST__INIT;
	Zrpc__V1__FileDescriptorResponse *reply = NULL;
	zrpc_status                       status;

	if (symbol == NULL || symbol[0] == '\0') {
		return zrpc_status_make(ZRPC_INVALID_ARGUMENT, "no symbol");
	}
	request.symbol = (char *) symbol;
	status         = zrpc_v1_reflection_file_containing_symbol(
	            client, &request, &reply, opts);
	if (status.code == ZRPC_UNIMPLEMENTED) {
		return zrpc_status_make(ZRPC_UNIMPLEMENTED,
		    "the server serves no descriptors (%s)", status.message);
	}
	if (!zrpc_status_is_ok(&status)) {
		return status;
	}
	status = reflection_add(pool, reply);
	zrpc__v1__file_descriptor_response__free_unpacked(reply, NULL);
	return status;
}

zrpc_status
zrpc_reflection_fetch_all(zrpc_client *client, zrpc_descriptor_pool *pool,
    const zrpc_call_opts *opts)
{
	Zrpc__V1__ListServicesRequest request =
	    ZRPC__V1__LIST_SERVICES_REQUEST__INIT;
	Zrpc__V1__ListServicesResponse *list = NULL;
	zrpc_status                     status;

	status =
	    zrpc_v1_reflection_list_services(client, &request, &list, opts);
	if (!zrpc_status_is_ok(&status)) {
		return status;
	}
	for (size_t i = 0; i < list->n_services; i++) {
		status = zrpc_reflection_fetch(
		    client, list->services[i]->name, pool, opts);
		if (status.code == ZRPC_NOT_FOUND) {
			continue; /* a service without descriptors */
		}
		if (!zrpc_status_is_ok(&status)) {
			break;
		}
	}
	zrpc__v1__list_services_response__free_unpacked(list, NULL);
	return status.code == ZRPC_NOT_FOUND ? zrpc_status_ok() : status;
}
