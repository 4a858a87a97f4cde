/*
 * pool-oom: the descriptor pool's work from adding files to describing
 * them, as one run that pool-oom.sh repeats with each allocation failing
 * in turn (failmalloc, through LD_PRELOAD). Exits 0 when everything
 * worked, 1 after an error that says RESOURCE_EXHAUSTED (the only one an
 * allocation failure may cause), 2 after any other error; failmalloc
 * turns a leak into exit 98. Single-threaded, no sockets: only the pool.
 */
#include <stdio.h>
#include <stdlib.h>

#include "zdesc/v1/types.zrpc.h"
#include "zos/v1/zos.zrpc.h"
#include "zrpc/descriptor.h"

/* Exits when STATUS is not OK, after freeing POOL. */
static void
pool_oom_check(
    zrpc_status status, zrpc_descriptor_pool *pool, const char *what)
{
	if (zrpc_status_is_ok(&status)) {
		return;
	}
	fprintf(stderr, "pool-oom: %s: %s: %s\n", what,
	    zrpc_status_name(status.code), status.message);
	zrpc_descriptor_pool_free(pool);
	exit(status.code == ZRPC_RESOURCE_EXHAUSTED ? 1 : 2);
}

int
main(void)
{
	static const char *const          symbols[] = { "zdesc.v1.Types",
		         "zdesc.v1.Legacy", "zdesc/v1/types.proto",
		         "zos.v1.Skills/Get" };
	zrpc_descriptor_pool             *pool      = NULL;
	const struct zrpc_method         *method;
	const ProtobufCMessageDescriptor *message;
	const ProtobufCServiceDescriptor *service;
	ProtobufCBinaryData              *files;
	size_t                            n;
	char                             *text;

	pool_oom_check(zrpc_descriptor_pool_new(&pool), pool, "new");
	pool_oom_check(
	    zrpc_descriptor_pool_add_service(pool, &zdesc_v1_types_service),
	    pool, "add_service");
	pool_oom_check(
	    zrpc_descriptor_pool_add_service(pool, &zos_v1_skills_service),
	    pool, "add_service");
	pool_oom_check(zrpc_descriptor_pool_find_method(
	                   pool, "zdesc.v1.Types/Echo", &method),
	    pool, "find_method");
	pool_oom_check(zrpc_descriptor_pool_find_message(
	                   pool, "zdesc.v1.Legacy", &message),
	    pool, "find_message");
	pool_oom_check(
	    zrpc_descriptor_pool_find_service(pool, "zos.v1.Skills", &service),
	    pool, "find_service");
	for (size_t i = 0; i < sizeof(symbols) / sizeof(symbols[0]); i++) {
		pool_oom_check(
		    zrpc_descriptor_pool_describe(pool, symbols[i], &text),
		    pool, "describe");
		free(text);
		pool_oom_check(zrpc_descriptor_pool_file_closure(
		                   pool, symbols[i], &files, &n),
		    pool, "file_closure");
		free(files);
	}
	zrpc_descriptor_pool_free(pool);
	return 0;
}
