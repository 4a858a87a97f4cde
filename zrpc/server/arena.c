/*
 * Per-call arena; see arena.h for why it exists.
 *
 * Chunks form a singly linked list from `first`. Allocation bumps `used`
 * in `current`; when it does not fit, a new chunk of at least
 * ZRPC_ARENA_CHUNK_BYTES (or the request's size) is linked after `current`.
 */
#include "arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_ALIGN 16

struct zrpc_arena_chunk {
	struct zrpc_arena_chunk *next;
	size_t                   size; /* usable bytes in data */
	_Alignas(ARENA_ALIGN) unsigned char data[];
};

static void *
arena_pb_alloc(void *data, size_t size)
{
	return zrpc_arena_alloc(data, size);
}

static void
arena_pb_free(void *data, void *ptr)
{
	/* Released with the whole arena. */
	(void) data;
	(void) ptr;
}

void
zrpc_arena_init(struct zrpc_arena *arena)
{
	arena->first                    = NULL;
	arena->current                  = NULL;
	arena->used                     = 0;
	arena->allocator.alloc          = arena_pb_alloc;
	arena->allocator.free           = arena_pb_free;
	arena->allocator.allocator_data = arena;
}

static struct zrpc_arena_chunk *
arena_chunk_new(size_t size)
{
	struct zrpc_arena_chunk *chunk;

	if (size > SIZE_MAX - sizeof(*chunk)) {
		return NULL;
	}
	if ((chunk = malloc(sizeof(*chunk) + size)) == NULL) {
		return NULL;
	}
	chunk->next = NULL;
	chunk->size = size;
	return chunk;
}

void *
zrpc_arena_alloc(struct zrpc_arena *arena, size_t size)
{
	struct zrpc_arena_chunk *chunk;
	size_t                   rounded;
	void                    *p;

	if (size > SIZE_MAX - ARENA_ALIGN) {
		return NULL;
	}
	rounded = (size + ARENA_ALIGN - 1) & ~(size_t) (ARENA_ALIGN - 1);
	if (rounded == 0) {
		rounded = ARENA_ALIGN;
	}
	chunk = arena->current;
	if (chunk == NULL || chunk->size - arena->used < rounded) {
		struct zrpc_arena_chunk *fresh;
		size_t want = rounded > ZRPC_ARENA_CHUNK_BYTES
		    ? rounded
		    : ZRPC_ARENA_CHUNK_BYTES;

		if ((fresh = arena_chunk_new(want)) == NULL) {
			return NULL;
		}
		/* current is always the last chunk: append. */
		if (chunk == NULL) {
			arena->first = fresh;
		} else {
			chunk->next = fresh;
		}
		chunk          = fresh;
		arena->current = chunk;
		arena->used    = 0;
	}
	p = chunk->data + arena->used;
	arena->used += rounded;
	memset(p, 0, size);
	return p;
}

char *
zrpc_arena_strdup(struct zrpc_arena *arena, const char *s)
{
	size_t len = strlen(s);
	char  *copy;

	if ((copy = zrpc_arena_alloc(arena, len + 1)) != NULL) {
		memcpy(copy, s, len + 1);
	}
	return copy;
}

void
zrpc_arena_reset(struct zrpc_arena *arena)
{
	struct zrpc_arena_chunk *chunk;

	if (arena->first == NULL) {
		return;
	}
	chunk              = arena->first->next;
	arena->first->next = NULL;
	while (chunk != NULL) {
		struct zrpc_arena_chunk *next = chunk->next;
		free(chunk);
		chunk = next;
	}
	/* Keep only a standard-size first chunk, so idle slots stay small. */
	if (arena->first->size > ZRPC_ARENA_CHUNK_BYTES) {
		free(arena->first);
		arena->first = NULL;
	}
	arena->current = arena->first;
	arena->used    = 0;
}

void
zrpc_arena_finish(struct zrpc_arena *arena)
{
	zrpc_arena_reset(arena);
	free(arena->first);
	arena->first   = NULL;
	arena->current = NULL;
}
