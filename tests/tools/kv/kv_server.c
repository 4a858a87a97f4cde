/*
 * The tests' kv.v1.Store server: see kv_server.h.
 *
 * Entries are kept packed (the bytes of a kv.v1.Entry) under a mutex and
 * unpacked into the call's arena when read, so a reply owns nothing that
 * outlives the call. The server's state is the struct kv_server handed
 * to the handlers as the service context: no global state.
 */
#include "kv_server.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv/v1/kv.zrpc.h"
#include "zrpc/server.h"

#define KV_SERVER_GRACE_MS 2000

struct kv_entry {
	char    *key;
	uint8_t *packed;
	size_t   len;
};

struct kv_server {
	zrpc_server    *server;
	bool            no_reflection;
	atomic_uint     calls;
	pthread_mutex_t mutex;
	uint64_t        version; /* guarded by: mutex */
	/* guarded by: mutex */
	struct kv_entry entries[KV_SERVER_MAX_ENTRIES];
	size_t          n_entries; /* guarded by: mutex */
};

/* protobuf-c allocations of a reply come from the call's arena. */
static void *
kv_arena_alloc(void *data, size_t size)
{
	return zrpc_call_alloc(data, size);
}

static void
kv_arena_free(void *data, void *ptr)
{
	(void) data;
	(void) ptr;
}

/* A copy of the packed entry BYTES in CALL's arena, or NULL. */
static Kv__V1__Entry *
kv_entry_unpack(zrpc_call *call, const uint8_t *bytes, size_t len)
{
	ProtobufCAllocator arena = {
		.alloc          = kv_arena_alloc,
		.free           = kv_arena_free,
		.allocator_data = call,
	};

	return kv__v1__entry__unpack(&arena, len, bytes);
}

/* Common to every call: counts it, fails it when x-kv-fail asks, and
 * sets `echoed` (*ECHOED) and reply metadata x-kv-echoed. */
static zrpc_status
kv_begin(zrpc_call *call, char **echoed)
{
	struct kv_server *kv    = zrpc_call_service_ctx(call);
	const char       *fail  = zrpc_call_metadata(call, "x-kv-fail");
	const char       *echo  = zrpc_call_metadata(call, "x-kv-echo");
	const char *traceparent = zrpc_call_metadata(call, "traceparent");
	zrpc_code   code;

	atomic_fetch_add(&kv->calls, 1);
	if (fail != NULL) {
		if (!zrpc_status_from_name(fail, &code)) {
			code = ZRPC_UNKNOWN;
		}
		return zrpc_status_make(code, "failed as asked");
	}
	if (traceparent != NULL) {
		zrpc_status status = zrpc_call_set_reply_metadata(
		    call, "x-kv-traceparent", traceparent);

		if (status.code != ZRPC_OK) {
			return status;
		}
	}
	if (echo != NULL) {
		*echoed = zrpc_call_strdup(call, echo);
		if (*echoed == NULL) {
			return zrpc_status_make(
			    ZRPC_RESOURCE_EXHAUSTED, "out of memory");
		}
		return zrpc_call_set_reply_metadata(call, "x-kv-echoed", echo);
	}
	return zrpc_status_ok();
}

static zrpc_status
kv_get(zrpc_call *call, const Kv__V1__GetRequest *request,
    Kv__V1__GetResponse *reply)
{
	struct kv_server *kv     = zrpc_call_service_ctx(call);
	zrpc_status       status = kv_begin(call, &reply->echoed);
	uint8_t          *copy   = NULL;
	size_t            len    = 0;
	bool              found  = false;

	if (status.code != ZRPC_OK) {
		return status;
	}
	if (strcmp(request->key, "bad-utf8") == 0) {
		reply->entry = zrpc_call_alloc(call, sizeof(*reply->entry));
		if (reply->entry == NULL) {
			return zrpc_status_make(
			    ZRPC_RESOURCE_EXHAUSTED, "out of memory");
		}
		kv__v1__entry__init(reply->entry);
		reply->entry->key   = "bad-utf8";
		reply->entry->value = "not \xff\xfe UTF-8";
		return zrpc_status_ok();
	}
	pthread_mutex_lock(&kv->mutex);
	for (size_t i = 0; i < kv->n_entries; i++) {
		if (strcmp(kv->entries[i].key, request->key) == 0) {
			len   = kv->entries[i].len;
			copy  = zrpc_call_alloc(call, len > 0 ? len : 1);
			found = true;
			if (copy != NULL) {
				memcpy(copy, kv->entries[i].packed, len);
			}
			break;
		}
	}
	pthread_mutex_unlock(&kv->mutex);
	if (!found) {
		return zrpc_status_make(
		    ZRPC_NOT_FOUND, "no entry under key '%s'", request->key);
	}
	if (copy == NULL ||
	    (reply->entry = kv_entry_unpack(call, copy, len)) == NULL) {
		return zrpc_status_make(
		    ZRPC_RESOURCE_EXHAUSTED, "out of memory");
	}
	return zrpc_status_ok();
}

static zrpc_status
kv_put(zrpc_call *call, const Kv__V1__PutRequest *request,
    Kv__V1__PutResponse *reply)
{
	struct kv_server *kv     = zrpc_call_service_ctx(call);
	zrpc_status       status = kv_begin(call, &reply->echoed);
	struct kv_entry   fresh  = { 0 };
	struct kv_entry   old    = { 0 };
	size_t            i;

	if (status.code != ZRPC_OK) {
		return status;
	}
	if (request->entry == NULL || request->entry->key[0] == '\0') {
		return zrpc_status_make(
		    ZRPC_INVALID_ARGUMENT, "an entry with a key is required");
	}
	fresh.len    = kv__v1__entry__get_packed_size(request->entry);
	fresh.packed = malloc(fresh.len > 0 ? fresh.len : 1);
	fresh.key    = strdup(request->entry->key);
	if (fresh.packed == NULL || fresh.key == NULL) {
		free(fresh.packed);
		free(fresh.key);
		return zrpc_status_make(
		    ZRPC_RESOURCE_EXHAUSTED, "out of memory");
	}
	kv__v1__entry__pack(request->entry, fresh.packed);
	/* The reply's copy, made while FRESH is still ours: once in the
	 * table, a concurrent Put of the same key may free it. */
	reply->entry = kv_entry_unpack(call, fresh.packed, fresh.len);
	if (reply->entry == NULL) {
		free(fresh.packed);
		free(fresh.key);
		return zrpc_status_make(
		    ZRPC_RESOURCE_EXHAUSTED, "out of memory");
	}

	pthread_mutex_lock(&kv->mutex);
	for (i = 0; i < kv->n_entries; i++) {
		if (strcmp(kv->entries[i].key, fresh.key) == 0) {
			break;
		}
	}
	if (i == kv->n_entries && i == KV_SERVER_MAX_ENTRIES) {
		pthread_mutex_unlock(&kv->mutex);
		free(fresh.packed);
		free(fresh.key);
		return zrpc_status_make(ZRPC_RESOURCE_EXHAUSTED,
		    "the store is full (%d entries)", KV_SERVER_MAX_ENTRIES);
	}
	if (i == kv->n_entries) {
		kv->n_entries++;
	} else {
		old = kv->entries[i];
	}
	kv->entries[i] = fresh;
	reply->version = ++kv->version;
	pthread_mutex_unlock(&kv->mutex);
	free(old.packed);
	free(old.key);

	return zrpc_status_ok();
}

/* With reflection off: zrpc.v1.Reflection is UNIMPLEMENTED. */
static zrpc_status
kv_no_reflection(void *arg, zrpc_call *call)
{
	(void) arg;
	if (strncmp(zrpc_call_method(call), "/zrpc.v1.Reflection/",
	        strlen("/zrpc.v1.Reflection/")) == 0) {
		return zrpc_status_make(
		    ZRPC_UNIMPLEMENTED, "this server has no reflection");
	}
	return zrpc_status_ok();
}

zrpc_status
kv_server_start(
    struct kv_server **out, const char *url, const struct kv_server_opts *opts)
{
	const struct kv_v1_store_handlers handlers = {
		.get = kv_get,
		.put = kv_put,
	};
	const struct zrpc_interceptor no_reflection = {
		.name   = "kv-no-reflection",
		.before = kv_no_reflection,
	};
	struct kv_server *kv = calloc(1, sizeof(*kv));
	zrpc_status       status;

	*out = NULL;
	if (kv == NULL) {
		return zrpc_status_make(
		    ZRPC_RESOURCE_EXHAUSTED, "out of memory");
	}
	pthread_mutex_init(&kv->mutex, NULL);
	kv->no_reflection = opts != NULL && opts->no_reflection;
	status            = zrpc_server_create(&kv->server, NULL);
	if (status.code == ZRPC_OK) {
		status = kv_v1_store_register(kv->server, &handlers, kv);
	}
	if (status.code == ZRPC_OK && kv->no_reflection) {
		status =
		    zrpc_server_add_interceptor(kv->server, &no_reflection);
	}
	if (status.code == ZRPC_OK) {
		status = zrpc_server_listen(kv->server, url);
	}
	if (status.code == ZRPC_OK) {
		status = zrpc_server_start(kv->server);
	}
	if (status.code != ZRPC_OK) {
		kv_server_stop(kv);
		return status;
	}
	*out = kv;
	return status;
}

const char *
kv_server_url(const struct kv_server *kv)
{
	return zrpc_server_listener_url(kv->server, 0);
}

unsigned
kv_server_calls(const struct kv_server *kv)
{
	return atomic_load(&((struct kv_server *) kv)->calls);
}

void
kv_server_stop(struct kv_server *kv)
{
	if (kv == NULL) {
		return;
	}
	if (kv->server != NULL) {
		zrpc_server_stop(kv->server, KV_SERVER_GRACE_MS);
		zrpc_server_destroy(kv->server);
	}
	for (size_t i = 0; i < kv->n_entries; i++) {
		free(kv->entries[i].packed);
		free(kv->entries[i].key);
	}
	pthread_mutex_destroy(&kv->mutex);
	free(kv);
}
