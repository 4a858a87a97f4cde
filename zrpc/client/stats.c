/*
 * Client-side metrics; see stats.h for the table and client.h for the
 * public reading side (zrpc_client_stats, zrpc_client_method_stats,
 * zrpc_client_stats_reset, which live in client.c next to the client).
 *
 * Why a fixed table and a compare and swap rather than a lock: the lookup
 * runs on every call, from every thread that calls, and the set of paths
 * a program calls is small and settles after its first calls. A slot
 * holds a pointer to a complete entry, written once; a thread that loses
 * the race to fill a slot frees its own entry and either uses the
 * winner's (same path) or probes on. Entries are freed only when the
 * client is closed, after every call has ended, so a pointer read from a
 * slot stays valid for as long as any call can hold it.
 */
#include "stats.h"

#include <stdlib.h>
#include <string.h>

/* FNV-1a of PATH; its length in *LEN. */
static uint64_t
client_stats_hash(const char *path, size_t *len)
{
	uint64_t    h = 1469598103934665603u;
	const char *p = path;

	for (; *p != '\0'; p++) {
		h ^= (uint8_t) *p;
		h *= 1099511628211u;
	}
	*len = (size_t) (p - path);
	return h;
}

/* A new entry for PATH (LEN bytes), or NULL when out of memory. */
static struct zrpc_client_stats_entry *
client_stats_entry_new(const struct zrpc_client_stats_table *t,
    const char *path, size_t len, uint64_t hash)
{
	struct zrpc_client_stats_entry *e;

	if ((e = malloc(sizeof(*e) + len + 1)) == NULL) {
		return NULL;
	}
	if (zrpc_histogram_create(&e->latency, t->precision) != 0) {
		free(e);
		return NULL;
	}
	e->hash = hash;
	for (size_t i = 0; i < ZRPC_CODE_COUNT; i++) {
		atomic_init(&e->codes[i], 0);
	}
	memcpy(e->path, path, len);
	e->path[len] = '\0';
	return e;
}

static void
client_stats_entry_free(struct zrpc_client_stats_entry *e)
{
	if (e != NULL) {
		zrpc_histogram_destroy(e->latency);
		free(e);
	}
}

void
zrpc_client_stats_init(struct zrpc_client_stats_table *t, unsigned precision)
{
	t->precision =
	    precision != 0 ? precision : ZRPC_CLIENT_STATS_DEFAULT_PRECISION;
	for (size_t i = 0; i < ZRPC_CLIENT_STATS_SLOTS; i++) {
		atomic_init(&t->slots[i], NULL);
	}
	atomic_init(&t->other, NULL);
	atomic_init(&t->n_methods, 0);
}

void
zrpc_client_stats_finish(struct zrpc_client_stats_table *t)
{
	for (size_t i = 0; i < ZRPC_CLIENT_STATS_SLOTS; i++) {
		client_stats_entry_free(atomic_load(&t->slots[i]));
	}
	client_stats_entry_free(atomic_load(&t->other));
}

/* The "(other)" entry, created on first use; NULL when out of memory. */
static struct zrpc_client_stats_entry *
client_stats_other(struct zrpc_client_stats_table *t)
{
	struct zrpc_client_stats_entry *seen, *mine;
	size_t                          len;
	uint64_t                        hash;

	seen = atomic_load_explicit(&t->other, memory_order_acquire);
	if (seen != NULL) {
		return seen;
	}
	hash = client_stats_hash(ZRPC_CLIENT_STATS_OTHER, &len);
	mine = client_stats_entry_new(t, ZRPC_CLIENT_STATS_OTHER, len, hash);
	if (mine == NULL) {
		return NULL;
	}
	if (atomic_compare_exchange_strong_explicit(&t->other, &seen, mine,
	        memory_order_acq_rel, memory_order_acquire)) {
		return mine;
	}
	client_stats_entry_free(mine);
	return seen;
}

struct zrpc_client_stats_entry *
zrpc_client_stats_find(struct zrpc_client_stats_table *t, const char *path)
{
	struct zrpc_client_stats_entry *seen, *mine = NULL;
	size_t                          len, slot, probes;
	uint64_t                        hash = client_stats_hash(path, &len);

	if (len > ZRPC_CLIENT_STATS_MAX_PATH) {
		return client_stats_other(t);
	}
	slot = (size_t) hash & (ZRPC_CLIENT_STATS_SLOTS - 1);
	for (probes = 0; probes < ZRPC_CLIENT_STATS_SLOTS; probes++) {
		seen = atomic_load_explicit(
		    &t->slots[slot], memory_order_acquire);
		if (seen == NULL) {
			if (mine == NULL) {
				/* A new path: claim room for it first. */
				if (atomic_fetch_add(&t->n_methods, 1) >=
				    ZRPC_CLIENT_STATS_MAX_METHODS) {
					atomic_fetch_sub(&t->n_methods, 1);
					return client_stats_other(t);
				}
				mine =
				    client_stats_entry_new(t, path, len, hash);
				if (mine == NULL) {
					atomic_fetch_sub(&t->n_methods, 1);
					return NULL;
				}
			}
			if (atomic_compare_exchange_strong_explicit(
			        &t->slots[slot], &seen, mine,
			        memory_order_acq_rel, memory_order_acquire)) {
				return mine;
			}
			/* Another thread filled it: SEEN is its entry. */
		}
		if (seen->hash == hash && strcmp(seen->path, path) == 0) {
			if (mine != NULL) {
				client_stats_entry_free(mine);
				atomic_fetch_sub(&t->n_methods, 1);
			}
			return seen;
		}
		slot = (slot + 1) & (ZRPC_CLIENT_STATS_SLOTS - 1);
	}
	/* Unreachable: at most MAX_METHODS < SLOTS slots are ever filled. */
	if (mine != NULL) {
		client_stats_entry_free(mine);
		atomic_fetch_sub(&t->n_methods, 1);
	}
	return client_stats_other(t);
}

void
zrpc_client_stats_record(
    struct zrpc_client_stats_entry *entry, zrpc_code code, uint64_t latency_ns)
{
	if (entry == NULL) {
		return;
	}
	if ((unsigned) code >= ZRPC_CODE_COUNT) {
		code = ZRPC_UNKNOWN;
	}
	atomic_fetch_add_explicit(
	    &entry->codes[code], 1, memory_order_relaxed);
	zrpc_histogram_record(entry->latency, latency_ns);
}

/* Fills OUT from E. */
static void
client_stats_snapshot(const struct zrpc_client_stats_entry *e,
    struct zrpc_client_method_stats                        *out)
{
	memset(out, 0, sizeof(*out));
	out->path    = e->path;
	out->latency = e->latency;
	for (size_t i = 0; i < ZRPC_CODE_COUNT; i++) {
		out->codes[i] =
		    atomic_load_explicit(&e->codes[i], memory_order_relaxed);
		out->calls += out->codes[i];
	}
	out->errors = out->calls - out->codes[ZRPC_OK];
}

/* qsort order of entry pointers: by path. */
static int
client_stats_by_path(const void *a, const void *b)
{
	const struct zrpc_client_stats_entry *const *x = a;
	const struct zrpc_client_stats_entry *const *y = b;

	return strcmp((*x)->path, (*y)->path);
}

size_t
zrpc_client_stats_table_each(
    struct zrpc_client_stats_table *t, zrpc_client_stats_fn fn, void *arg)
{
	struct zrpc_client_stats_entry *found[ZRPC_CLIENT_STATS_SLOTS + 1];
	struct zrpc_client_method_stats stats;
	size_t                          n = 0;

	for (size_t i = 0; i < ZRPC_CLIENT_STATS_SLOTS; i++) {
		if ((found[n] = atomic_load_explicit(
		         &t->slots[i], memory_order_acquire)) != NULL) {
			n++;
		}
	}
	if ((found[n] = atomic_load_explicit(
	         &t->other, memory_order_acquire)) != NULL) {
		n++;
	}
	qsort(found, n, sizeof(found[0]), client_stats_by_path);
	for (size_t i = 0; i < n; i++) {
		client_stats_snapshot(found[i], &stats);
		fn(arg, &stats);
	}
	return n;
}

zrpc_status
zrpc_client_stats_table_get(struct zrpc_client_stats_table *t,
    const char *path, struct zrpc_client_method_stats *out)
{
	struct zrpc_client_stats_entry *e;
	size_t                          len, slot;
	uint64_t                        hash = client_stats_hash(path, &len);

	memset(out, 0, sizeof(*out));
	out->path = path;
	e         = strcmp(path, ZRPC_CLIENT_STATS_OTHER) == 0
	            ? atomic_load_explicit(&t->other, memory_order_acquire)
	            : NULL;
	slot      = (size_t) hash & (ZRPC_CLIENT_STATS_SLOTS - 1);
	for (size_t probes = 0; e == NULL && probes < ZRPC_CLIENT_STATS_SLOTS;
	     probes++) {
		struct zrpc_client_stats_entry *seen = atomic_load_explicit(
		    &t->slots[slot], memory_order_acquire);

		if (seen == NULL) {
			break;
		}
		if (seen->hash == hash && strcmp(seen->path, path) == 0) {
			e = seen;
		}
		slot = (slot + 1) & (ZRPC_CLIENT_STATS_SLOTS - 1);
	}
	if (e == NULL) {
		return zrpc_status_make(
		    ZRPC_NOT_FOUND, "no call of %s counted", path);
	}
	client_stats_snapshot(e, out);
	return zrpc_status_ok();
}

/* Zeroes E's counts; NULL is a no-op. */
static void
client_stats_entry_reset(struct zrpc_client_stats_entry *e)
{
	if (e == NULL) {
		return;
	}
	for (size_t i = 0; i < ZRPC_CODE_COUNT; i++) {
		atomic_store_explicit(&e->codes[i], 0, memory_order_relaxed);
	}
	zrpc_histogram_reset(e->latency);
}

void
zrpc_client_stats_table_reset(struct zrpc_client_stats_table *t)
{
	for (size_t i = 0; i < ZRPC_CLIENT_STATS_SLOTS; i++) {
		client_stats_entry_reset(
		    atomic_load_explicit(&t->slots[i], memory_order_acquire));
	}
	client_stats_entry_reset(
	    atomic_load_explicit(&t->other, memory_order_acquire));
}
