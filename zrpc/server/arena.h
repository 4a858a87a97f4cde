/*
 * Per-call arena: bump allocation for everything a call needs (the
 * unpacked request, the reply and its strings), released all at once when
 * the reply has been packed.
 *
 * Each call slot keeps one arena for its whole life and resets it after
 * every call, so steady-state serving does no malloc at all: the first
 * chunk (ZRPC_ARENA_CHUNK_BYTES) is kept across resets; chunks added for a
 * large call are freed at the reset, which keeps an idle slot's memory
 * bounded. An arena is used by one thread at a time (the thread serving its
 * call).
 */
#ifndef ZRPC_ARENA_H
#define ZRPC_ARENA_H

#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

#define ZRPC_ARENA_CHUNK_BYTES 4096

struct zrpc_arena_chunk;

struct zrpc_arena {
	struct zrpc_arena_chunk *first;     /* kept across resets */
	struct zrpc_arena_chunk *current;   /* where allocation happens */
	size_t                   used;      /* bytes used in current */
	ProtobufCAllocator       allocator; /* protobuf-c view of this arena */
};

/* Initialises an empty arena (no memory until the first allocation). */
void zrpc_arena_init(struct zrpc_arena *arena);

/* Frees every chunk. Safe on an initialised, never-used arena. */
void zrpc_arena_finish(struct zrpc_arena *arena);

/*
 * Returns SIZE bytes, zeroed and 16-byte aligned, valid until the next
 * arena_reset; NULL when memory is exhausted or SIZE overflows.
 */
void *zrpc_arena_alloc(struct zrpc_arena *arena, size_t size);

/* Copies the NUL-terminated S; NULL when memory is exhausted. */
char *zrpc_arena_strdup(struct zrpc_arena *arena, const char *s);

/* Forgets every allocation; keeps the first chunk, frees the others. */
void zrpc_arena_reset(struct zrpc_arena *arena);

#endif /* ZRPC_ARENA_H */
