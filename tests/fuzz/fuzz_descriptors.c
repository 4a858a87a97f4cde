/*
 * Fuzz target: the descriptor pool (zrpc/descriptor.h) on bytes a peer
 * or a file could give it. The first byte picks the mode: bit 0 set, the
 * rest is a FileDescriptorSet (add_set), else one FileDescriptorProto
 * (add_file); bit 1 set, the embedded files of zrpc.v1.Reflection
 * (descriptor.proto among them) are in the pool first, so the input can
 * import them. Then every symbol is built, described and asked for its
 * file closure, and every message type built unpacks the input itself
 * and packs it again: a descriptor whose layout did not match protobuf-c's
 * use of it would show here as a sanitizer report.
 */
#include <stdlib.h>

#include "descriptor_pool.h"
#include "fuzz.h"
#include "zrpc/v1/reflection.zrpc.h"

/* Unpacks DATA as a message of type D, packs it again and frees it. */
static void
fuzz_unpack(
    const ProtobufCMessageDescriptor *d, const uint8_t *data, size_t size)
{
	ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, size, data);
	uint8_t          *out;
	size_t            len;

	if (m == NULL) {
		return;
	}
	len = protobuf_c_message_get_packed_size(m);
	if ((out = malloc(len + 1)) == NULL) {
		abort();
	}
	if (protobuf_c_message_pack(m, out) != len) {
		abort();
	}
	free(out);
	protobuf_c_message_free_unpacked(m, NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	zrpc_descriptor_pool *pool;
	zrpc_status           status;

	if (size == 0) {
		return 0;
	}
	status = zrpc_descriptor_pool_new(&pool);
	if (!zrpc_status_is_ok(&status)) {
		abort();
	}
	if ((data[0] & 2) != 0) {
		status = zrpc_descriptor_pool_add_service(
		    pool, &zrpc_v1_reflection_service);
		if (!zrpc_status_is_ok(&status)) {
			abort();
		}
	}
	status = (data[0] & 1) != 0
	    ? zrpc_descriptor_pool_add_set(pool, data + 1, size - 1)
	    : zrpc_descriptor_pool_add_file(pool, data + 1, size - 1);
	if (!zrpc_status_is_ok(&status) && status.message[0] == '\0') {
		abort(); /* a failure names its cause */
	}
	for (size_t i = 0; i < pool->table_cap; i++) {
		struct pool_symbol  *sym = pool->table[i];
		void                *built;
		char                *text = NULL;
		ProtobufCBinaryData *files;
		size_t               n;

		if (sym == NULL) {
			continue;
		}
		status = zrpc_dpool_build(pool, sym, &built);
		if (zrpc_status_is_ok(&status) && sym->kind == POOL_MESSAGE) {
			fuzz_unpack(built, data + 1, size - 1);
		}
		status = zrpc_descriptor_pool_describe(pool, sym->name, &text);
		free(text);
		status = zrpc_descriptor_pool_file_closure(
		    pool, sym->name, &files, &n);
		if (zrpc_status_is_ok(&status)) {
			free(files);
		}
	}
	zrpc_descriptor_pool_free(pool);
	return 0;
}
