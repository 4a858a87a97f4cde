/*
 * Client-side metrics (zrpc_client_stats, zrpc/client.h): per method
 * path, the calls by status code and a latency histogram, kept by each
 * client without a lock on the call path.
 *
 * A table of a fixed number of slots, open addressing on a hash of the
 * path. A slot is filled once, with a complete entry, by a compare and
 * swap from NULL, and never emptied while the client lives: a lookup
 * reads slot pointers, compares paths and never waits. A call looks its
 * entry up once, when it starts, and records into it when it ends (one
 * atomic add for the code, the histogram's own atomics for the latency).
 * Beyond ZRPC_CLIENT_STATS_MAX_METHODS distinct paths (or for a path
 * longer than ZRPC_CLIENT_STATS_MAX_PATH), calls are counted under the
 * one entry ZRPC_CLIENT_STATS_OTHER, so that memory stays bounded whatever
 * paths a program calls.
 */
#ifndef ZRPC_CLIENT_STATS_H
#define ZRPC_CLIENT_STATS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "zrpc/client.h"
#include "zrpc/histogram.h"
#include "zrpc/status.h"

/* Slots of the table (a power of two) and the paths it holds at most. */
#define ZRPC_CLIENT_STATS_SLOTS 128u
#define ZRPC_CLIENT_STATS_MAX_METHODS 96u
/* Longest path with an entry of its own, in bytes. */
#define ZRPC_CLIENT_STATS_MAX_PATH 256u
/* Where the calls of other paths are counted. */
#define ZRPC_CLIENT_STATS_OTHER "(other)"
/* Histogram precision when zrpc_client_opts.metrics_precision is 0. */
#define ZRPC_CLIENT_STATS_DEFAULT_PRECISION 5u

/* The metrics of one path. Immutable but for the atomics once published. */
struct zrpc_client_stats_entry {
	uint64_t               hash;
	struct zrpc_histogram *latency; /* ns, from start to completion */
	atomic_uint_fast64_t   codes[ZRPC_CODE_COUNT];
	char                   path[]; /* NUL-terminated */
};

/* The table of one client. */
struct zrpc_client_stats_table {
	unsigned precision;
	/* Filled once each (CAS from NULL); read without a lock. */
	_Atomic(struct zrpc_client_stats_entry *)
	    slots[ZRPC_CLIENT_STATS_SLOTS];
	_Atomic(struct zrpc_client_stats_entry *) other;
	atomic_size_t n_methods; /* entries claimed in slots */
};

/* Initialises T for histograms of PRECISION bits (1..10; 0 = default). */
void zrpc_client_stats_init(
    struct zrpc_client_stats_table *t, unsigned precision);

/* Frees every entry of T. No call may be recording. */
void zrpc_client_stats_finish(struct zrpc_client_stats_table *t);

/*
 * The entry of PATH in T, created on the first call of PATH (or the
 * ZRPC_CLIENT_STATS_OTHER entry, see above). NULL only when an entry
 * could not be allocated: that call is then not counted. Lock-free; safe
 * from any thread.
 */
struct zrpc_client_stats_entry *zrpc_client_stats_find(
    struct zrpc_client_stats_table *t, const char *path);

/*
 * Counts one call of ENTRY that ended with CODE after LATENCY_NS. NULL
 * ENTRY is a no-op. Lock-free.
 */
void zrpc_client_stats_record(struct zrpc_client_stats_entry *entry,
    zrpc_code code, uint64_t latency_ns);

/*
 * The public reading side (zrpc/client.h) on table T: zrpc_client_stats,
 * zrpc_client_method_stats and zrpc_client_stats_reset, with the same
 * contracts. Lock-free.
 */
size_t zrpc_client_stats_table_each(
    struct zrpc_client_stats_table *t, zrpc_client_stats_fn fn, void *arg);
zrpc_status zrpc_client_stats_table_get(struct zrpc_client_stats_table *t,
    const char *path, struct zrpc_client_method_stats *out);
void        zrpc_client_stats_table_reset(struct zrpc_client_stats_table *t);

#endif /* ZRPC_CLIENT_STATS_H */
