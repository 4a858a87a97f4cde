/*
 * Reply metadata for callers (struct zrpc_metadata, zrpc/client.h): the
 * client copies a zrpc.v1.Response's metadata map out of the unpacked
 * message, so that the caller can keep it after the reply is freed.
 *
 * The copy is one allocation (the struct, then the entries, then the
 * strings), made only when the caller asked for the metadata, so a call
 * that does not ask pays nothing and a caller frees it with one free.
 */
#ifndef ZRPC_CLIENT_METADATA_H
#define ZRPC_CLIENT_METADATA_H

#include <stddef.h>
#include <stdint.h>

#include "zrpc/client.h"
#include "zrpc/v1/envelope.pb-c.h"

/*
 * Copies the N_ENTRIES entries of ENTRIES into a new struct zrpc_metadata
 * in *OUT (caller frees with zrpc_metadata_free). A NULL key or value is
 * copied as "". Returns 0, or ENOMEM with *OUT NULL.
 */
int zrpc_metadata_copy(Zrpc__V1__Response__MetadataEntry *const *entries,
    size_t n_entries, struct zrpc_metadata **out);

/*
 * The most metadata entries a reply may carry. Each one costs protobuf-c
 * two allocations when the reply is unpacked, while it takes two bytes on
 * the wire, so a 4 MiB reply of empty entries would cost a client hundreds
 * of megabytes; the count is read off the bytes first.
 */
#define ZRPC_CLIENT_MAX_REPLY_METADATA 1024

/*
 * The metadata entries (field 4) of the packed zrpc.v1.Response in BUF
 * (LEN bytes), counted up to LIMIT + 1 at most. Malformed bytes end the
 * count; the unpack that follows reports them.
 */
size_t zrpc_metadata_count_packed(
    const uint8_t *buf, size_t len, size_t limit);

#endif /* ZRPC_CLIENT_METADATA_H */
