/*
 * What zos-load reports, read from the zrpc client's own metrics
 * (zrpc_client_stats, zrpc/client.h) rather than counted a second time:
 * a snapshot adds up, over the run's K client connections, the calls of
 * the method by status code and their latency histograms, bucket by
 * bucket (every client's histogram has the same precision, so the same
 * buckets). Two snapshots subtract, which gives the calls that completed
 * between them: a step of a --rate schedule, say.
 *
 * Quantiles are read off the buckets as zrpc_histogram_quantile does:
 * the upper edge of the bucket holding the rank, capped at the largest
 * value seen.
 */
#ifndef ZOS_LOAD_STATS_H
#define ZOS_LOAD_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "zrpc/client.h"
#include "zrpc/status.h"

/* The calls of one method over a set of clients, at one moment. */
struct load_snapshot {
	uint64_t  calls;
	uint64_t  codes[ZRPC_CODE_COUNT];
	uint64_t  sum_ns; /* latencies added up */
	uint64_t  max_ns; /* the largest (an upper bound after a diff) */
	size_t    n_buckets;
	uint64_t *counts; /* per bucket; malloc'd */
	/* bucket i holds latencies up to uppers[i] ns; shared, not owned */
	const uint64_t *uppers;
};

/* The bucket layout shared by a run's snapshots. */
struct load_buckets {
	size_t    n;
	uint64_t *uppers; /* malloc'd; NULL until a histogram was seen */
};

/*
 * Takes a snapshot of PATH over the N_CLIENTS CLIENTS into OUT (which
 * need not be initialised; free with load_snapshot_finish), learning the
 * bucket layout into BUCKETS on first use. Returns 0, or -1 when out of
 * memory.
 */
int load_snapshot_take(struct load_snapshot *out, struct load_buckets *buckets,
    zrpc_client *const *clients, size_t n_clients, const char *path);

/*
 * OUT = LATER - EARLIER (EARLIER may be an empty snapshot: n_buckets 0).
 * OUT->max_ns is the upper edge of the highest bucket left. Returns 0, or
 * -1 when out of memory.
 */
int load_snapshot_diff(struct load_snapshot *out,
    const struct load_snapshot *later, const struct load_snapshot *earlier);

/* The latency at quantile Q (0..1) of S, in ns; 0 when S is empty. */
uint64_t load_snapshot_quantile(const struct load_snapshot *s, double q);

/* Frees what S holds. */
void load_snapshot_finish(struct load_snapshot *s);

/* Frees the bucket layout. */
void load_buckets_finish(struct load_buckets *buckets);

#endif /* ZOS_LOAD_STATS_H */
