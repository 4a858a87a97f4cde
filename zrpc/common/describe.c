/*
 * describe: descriptors in .proto syntax (work in progress).
 */
#include "descriptor_pool.h"

zrpc_status
zrpc_descriptor_pool_describe(
    zrpc_descriptor_pool *pool, const char *symbol, char **text)
{
	(void) pool;
	(void) symbol;
	*text = NULL;
	return zrpc_status_make(ZRPC_UNIMPLEMENTED, "describe: not yet");
}
