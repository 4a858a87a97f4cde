/*
 * zos.v1.Cache over the response cache. Lookup reads under the cache's
 * read lock (readers never wait on each other); the text of a hit is
 * copied into the reply after the lock is gone, from the reference the
 * cache handed out. State only: completion threads.
 */
#include <string.h>

#include "services.h"
#include "zos/v1/zos.zrpc.h"

static zrpc_status
cache_service_result(int result)
{
	switch (result) {
	case ZOS_CACHE_OK:
		return zrpc_status_ok();
	case ZOS_CACHE_TOO_LARGE:
		return zrpc_status_make(ZRPC_INVALID_ARGUMENT,
		    "model, prompt or response too long (at most %u, %u and "
		    "%u bytes)",
		    (unsigned) ZOS_CACHE_MAX_MODEL_BYTES,
		    (unsigned) ZOS_CACHE_MAX_PROMPT_BYTES,
		    (unsigned) ZOS_CACHE_MAX_RESPONSE_BYTES);
	case ZOS_CACHE_NO_MEMORY:
		return zrpc_status_make(
		    ZRPC_RESOURCE_EXHAUSTED, "out of memory");
	case ZOS_CACHE_INVALID:
		return zrpc_status_make(ZRPC_INVALID_ARGUMENT, "invalid key");
	default:
		return zrpc_status_make(
		    ZRPC_INTERNAL, "cache failure %d", result);
	}
}

static void *
cache_service_alloc(void *arg, size_t size)
{
	return zrpc_call_alloc(arg, size);
}

static zrpc_status
cache_service_lookup(zrpc_call *call, const Zos__V1__LookupRequest *request,
    Zos__V1__LookupResponse *reply)
{
	struct zos_state *state = zrpc_call_service_ctx(call);
	size_t            len;

	/* Copied into the call's arena under the read lock: concurrent
	 * lookups of a hot key write no shared memory. */
	reply->response = zos_cache_lookup_copy(&state->cache, request->model,
	    request->prompt, cache_service_alloc, call, &len);
	reply->hit      = reply->response != NULL;
	return zrpc_status_ok();
}

static zrpc_status
cache_service_store(zrpc_call *call, const Zos__V1__StoreRequest *request,
    Zos__V1__StoreResponse *reply)
{
	struct zos_state *state = zrpc_call_service_ctx(call);

	(void) reply;
	return cache_service_result(zos_cache_store(&state->cache,
	    request->model, request->prompt, request->response));
}

static zrpc_status
cache_service_stats(zrpc_call *call, const Zos__V1__CacheStatsRequest *request,
    Zos__V1__CacheStats *reply)
{
	struct zos_state      *state = zrpc_call_service_ctx(call);
	struct zos_cache_stats stats;

	(void) request;
	zos_cache_stats(&state->cache, &stats);
	reply->size      = stats.size;
	reply->capacity  = stats.capacity;
	reply->hits      = stats.hits;
	reply->misses    = stats.misses;
	reply->evictions = stats.evictions;
	return zrpc_status_ok();
}

static zrpc_status
cache_service_clear(zrpc_call *call, const Zos__V1__ClearCacheRequest *request,
    Zos__V1__ClearCacheResponse *reply)
{
	struct zos_state *state = zrpc_call_service_ctx(call);

	(void) request;
	(void) reply;
	zos_cache_clear(&state->cache);
	return zrpc_status_ok();
}

zrpc_status
zos_cache_service_register(zrpc_server *server, struct zos_state *state)
{
	const struct zos_v1_cache_handlers handlers = {
		.lookup = cache_service_lookup,
		.store  = cache_service_store,
		.stats  = cache_service_stats,
		.clear  = cache_service_clear,
	};

	return zos_v1_cache_register(server, &handlers, state);
}
