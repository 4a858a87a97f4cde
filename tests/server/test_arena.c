/* The per-call arena. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "arena.h"

Test(arena, allocations_are_zeroed_aligned_and_distinct)
{
	struct arena arena;
	uint8_t     *a, *b;

	arena_init(&arena);
	a = arena_alloc(&arena, 3);
	b = arena_alloc(&arena, 100);
	cr_assert_not_null(a);
	cr_assert_not_null(b);
	cr_assert_eq((uintptr_t) a % 16, 0);
	cr_assert_eq((uintptr_t) b % 16, 0);
	cr_assert(b >= a + 3, "no overlap");
	for (int i = 0; i < 100; i++) {
		cr_assert_eq(b[i], 0);
	}
	arena_finish(&arena);
}

Test(arena, large_allocations_get_their_own_chunk_and_are_freed_on_reset)
{
	struct arena arena;
	uint8_t     *small, *big;

	arena_init(&arena);
	small = arena_alloc(&arena, 10);
	cr_assert_not_null(small);
	big = arena_alloc(&arena, 1 << 20);
	cr_assert_not_null(big);
	memset(big, 0xab, 1 << 20);
	arena_reset(&arena);
	/* The standard first chunk survives; the big one is freed (the
	 * sanitizer build's leak check would catch it otherwise). */
	cr_assert_eq(arena_alloc(&arena, 100), small);
	cr_assert_eq(arena.current, arena.first);
	arena_finish(&arena);
}

Test(arena, an_oversized_first_chunk_is_not_kept)
{
	struct arena arena;

	arena_init(&arena);
	cr_assert_not_null(arena_alloc(&arena, 1 << 16));
	arena_reset(&arena);
	cr_assert_null(arena.first, "an idle slot keeps no big chunk");
	arena_finish(&arena);
}

Test(arena, reset_reuses_the_first_chunk)
{
	struct arena arena;
	void        *first, *again;

	arena_init(&arena);
	first = arena_alloc(&arena, 64);
	arena_reset(&arena);
	again = arena_alloc(&arena, 64);
	cr_assert_eq(first, again, "no malloc in steady state");
	arena_finish(&arena);
}

Test(arena, strdup_copies_and_overflowing_sizes_fail)
{
	struct arena arena;
	char        *s;

	arena_init(&arena);
	s = arena_strdup(&arena, "hello");
	cr_assert_str_eq(s, "hello");
	cr_assert_null(arena_alloc(&arena, SIZE_MAX));
	cr_assert_null(arena_alloc(&arena, SIZE_MAX - 8));
	arena_finish(&arena);
}

Test(arena, protobuf_allocator_draws_from_the_arena)
{
	struct arena arena;
	void        *p;

	arena_init(&arena);
	p = arena.allocator.alloc(arena.allocator.allocator_data, 32);
	cr_assert_not_null(p);
	arena.allocator.free(arena.allocator.allocator_data, p); /* no-op */
	arena_finish(&arena);
}
