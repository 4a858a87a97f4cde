/* The per-call arena. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "arena.h"

Test(arena, allocations_are_zeroed_aligned_and_distinct)
{
	struct zrpc_arena arena;
	uint8_t          *a, *b;

	zrpc_arena_init(&arena);
	a = zrpc_arena_alloc(&arena, 3);
	b = zrpc_arena_alloc(&arena, 100);
	cr_assert_not_null(a);
	cr_assert_not_null(b);
	cr_assert_eq((uintptr_t) a % 16, 0);
	cr_assert_eq((uintptr_t) b % 16, 0);
	cr_assert(b >= a + 3, "no overlap");
	for (int i = 0; i < 100; i++) {
		cr_assert_eq(b[i], 0);
	}
	zrpc_arena_finish(&arena);
}

Test(arena, large_allocations_get_their_own_chunk_and_are_freed_on_reset)
{
	struct zrpc_arena arena;
	uint8_t          *small, *big;

	zrpc_arena_init(&arena);
	small = zrpc_arena_alloc(&arena, 10);
	cr_assert_not_null(small);
	big = zrpc_arena_alloc(&arena, 1 << 20);
	cr_assert_not_null(big);
	memset(big, 0xab, 1 << 20);
	zrpc_arena_reset(&arena);
	/* The standard first chunk survives; the big one is freed (the
	 * sanitizer build's leak check would catch it otherwise). */
	cr_assert_eq(zrpc_arena_alloc(&arena, 100), small);
	cr_assert_eq(arena.current, arena.first);
	zrpc_arena_finish(&arena);
}

Test(arena, an_oversized_first_chunk_is_not_kept)
{
	struct zrpc_arena arena;

	zrpc_arena_init(&arena);
	cr_assert_not_null(zrpc_arena_alloc(&arena, 1 << 16));
	zrpc_arena_reset(&arena);
	cr_assert_null(arena.first, "an idle slot keeps no big chunk");
	zrpc_arena_finish(&arena);
}

Test(arena, reset_reuses_the_first_chunk)
{
	struct zrpc_arena arena;
	void             *first, *again;

	zrpc_arena_init(&arena);
	first = zrpc_arena_alloc(&arena, 64);
	zrpc_arena_reset(&arena);
	again = zrpc_arena_alloc(&arena, 64);
	cr_assert_eq(first, again, "no malloc in steady state");
	zrpc_arena_finish(&arena);
}

Test(arena, strdup_copies_and_overflowing_sizes_fail)
{
	struct zrpc_arena arena;
	char             *s;

	zrpc_arena_init(&arena);
	s = zrpc_arena_strdup(&arena, "hello");
	cr_assert_str_eq(s, "hello");
	cr_assert_null(zrpc_arena_alloc(&arena, SIZE_MAX));
	cr_assert_null(zrpc_arena_alloc(&arena, SIZE_MAX - 8));
	zrpc_arena_finish(&arena);
}

Test(arena, protobuf_allocator_draws_from_the_arena)
{
	struct zrpc_arena arena;
	void             *p;

	zrpc_arena_init(&arena);
	p = arena.allocator.alloc(arena.allocator.allocator_data, 32);
	cr_assert_not_null(p);
	arena.allocator.free(arena.allocator.allocator_data, p); /* no-op */
	zrpc_arena_finish(&arena);
}
