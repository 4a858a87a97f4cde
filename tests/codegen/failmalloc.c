/*
 * failmalloc: an LD_PRELOAD allocator that fails one chosen allocation and
 * counts the blocks left at exit, to test protoc-gen-zrpc's out-of-memory
 * paths (plugin-oom.sh drives it).
 *
 * glibc lets a program replace malloc, calloc, realloc and free, and then
 * uses the replacements for its own allocations too (strdup, ...). These
 * forward to glibc's allocator, except that allocation number
 * ZRPC_FAIL_ALLOCATION (1-based) returns NULL; "failmalloc: failed
 * allocation N" on stderr says that it happened. At exit, blocks still
 * allocated are reported and the exit status becomes 98. The plugin is
 * single-threaded, so the counters need no locking.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

void *__libc_malloc(size_t size);
void *__libc_calloc(size_t count, size_t size);
void *__libc_realloc(void *ptr, size_t size);
void  __libc_free(void *ptr);

static unsigned long failmalloc_count;  /* allocations so far */
static unsigned long failmalloc_target; /* 0: parse the environment */
static long          failmalloc_live;   /* blocks allocated, not freed */

/* True when this allocation is the one to fail. */
static bool
failmalloc_fail_now(void)
{
	if (failmalloc_target == 0) {
		const char *value = getenv("ZRPC_FAIL_ALLOCATION");

		failmalloc_target =
		    value != NULL ? strtoul(value, NULL, 10) : 0;
		if (failmalloc_target == 0) {
			failmalloc_target = (unsigned long) -1;
		}
	}
	if (++failmalloc_count != failmalloc_target) {
		return false;
	}
	/* No stdio: it may allocate. */
	{
		static const char msg[] = "failmalloc: failed allocation\n";

		(void) !write(STDERR_FILENO, msg, sizeof(msg) - 1);
	}
	return true;
}

void *
malloc(size_t size)
{
	void *p;

	if (failmalloc_fail_now()) {
		return NULL;
	}
	if ((p = __libc_malloc(size)) != NULL) {
		failmalloc_live++;
	}
	return p;
}

void *
calloc(size_t count, size_t size)
{
	void *p;

	if (failmalloc_fail_now()) {
		return NULL;
	}
	if ((p = __libc_calloc(count, size)) != NULL) {
		failmalloc_live++;
	}
	return p;
}

void *
realloc(void *ptr, size_t size)
{
	void *p;

	if (ptr != NULL && size == 0) {
		failmalloc_live--;
		return __libc_realloc(ptr, 0);
	}
	if (failmalloc_fail_now()) {
		return NULL;
	}
	if ((p = __libc_realloc(ptr, size)) != NULL && ptr == NULL) {
		failmalloc_live++;
	}
	return p;
}

void
free(void *ptr)
{
	if (ptr != NULL) {
		failmalloc_live--;
	}
	__libc_free(ptr);
}

/* Reports blocks still allocated when the program exits. */
__attribute__((destructor)) static void
failmalloc_check(void)
{
	if (failmalloc_live != 0) {
		fprintf(stderr, "failmalloc: %ld blocks leaked\n",
		    failmalloc_live);
		_exit(98);
	}
}
