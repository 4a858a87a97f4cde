/*
 * zos-load's view of the client metrics; see stats.h.
 *
 * A histogram hands out cumulative counts for any bounds
 * (zrpc_histogram_cumulative); with every bucket's upper edge as the
 * bounds, one pass per client gives all its bucket counts, which are
 * added up over the clients.
 */
#include "stats.h"

#include <stdlib.h>
#include <string.h>

#include "zrpc/histogram.h"

/* Learns the bucket layout of H into BUCKETS. Returns 0 or -1. */
static int
load_buckets_learn(
    struct load_buckets *buckets, const struct zrpc_histogram *h)
{
	size_t n = zrpc_histogram_bucket_count(h);

	if ((buckets->uppers = malloc(n * sizeof(*buckets->uppers))) == NULL) {
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		buckets->uppers[i] = zrpc_histogram_bucket_upper(h, i);
	}
	buckets->n = n;
	return 0;
}

int
load_snapshot_take(struct load_snapshot *out, struct load_buckets *buckets,
    zrpc_client *const *clients, size_t n_clients, const char *path)
{
	uint64_t *cumulative = NULL;

	memset(out, 0, sizeof(*out));
	for (size_t c = 0; c < n_clients; c++) {
		struct zrpc_client_method_stats stats;
		uint64_t                        below = 0;

		if (zrpc_client_method_stats(clients[c], path, &stats).code !=
		    ZRPC_OK) {
			continue; /* no call of PATH on this client yet */
		}
		for (size_t i = 0; i < ZRPC_CODE_COUNT; i++) {
			out->codes[i] += stats.codes[i];
		}
		out->calls += stats.calls;
		out->sum_ns += zrpc_histogram_sum(stats.latency);
		if (zrpc_histogram_max(stats.latency) > out->max_ns) {
			out->max_ns = zrpc_histogram_max(stats.latency);
		}
		if (buckets->uppers == NULL &&
		    load_buckets_learn(buckets, stats.latency) != 0) {
			goto fail;
		}
		if (out->counts == NULL) {
			out->n_buckets = buckets->n;
			out->uppers    = buckets->uppers;
			out->counts = calloc(buckets->n, sizeof(*out->counts));
			cumulative  = malloc(buckets->n * sizeof(*cumulative));
			if (out->counts == NULL || cumulative == NULL) {
				goto fail;
			}
		}
		(void) zrpc_histogram_cumulative(
		    stats.latency, buckets->uppers, buckets->n, cumulative);
		for (size_t i = 0; i < buckets->n; i++) {
			out->counts[i] += cumulative[i] - below;
			below = cumulative[i];
		}
	}
	free(cumulative);
	return 0;

fail:
	free(cumulative);
	load_snapshot_finish(out);
	return -1;
}

int
load_snapshot_diff(struct load_snapshot *out,
    const struct load_snapshot *later, const struct load_snapshot *earlier)
{
	memset(out, 0, sizeof(*out));
	out->calls  = later->calls - earlier->calls;
	out->sum_ns = later->sum_ns - earlier->sum_ns;
	for (size_t i = 0; i < ZRPC_CODE_COUNT; i++) {
		out->codes[i] = later->codes[i] - earlier->codes[i];
	}
	if (later->n_buckets == 0) {
		return 0;
	}
	out->n_buckets = later->n_buckets;
	out->uppers    = later->uppers;
	if ((out->counts = calloc(out->n_buckets, sizeof(*out->counts))) ==
	    NULL) {
		return -1;
	}
	for (size_t i = 0; i < out->n_buckets; i++) {
		out->counts[i] = later->counts[i] -
		    (i < earlier->n_buckets ? earlier->counts[i] : 0);
		if (out->counts[i] > 0) {
			out->max_ns = out->uppers[i] < later->max_ns
			    ? out->uppers[i]
			    : later->max_ns;
		}
	}
	return 0;
}

uint64_t
load_snapshot_quantile(const struct load_snapshot *s, double q)
{
	uint64_t total = 0, rank, seen = 0;

	for (size_t i = 0; i < s->n_buckets; i++) {
		total += s->counts[i];
	}
	if (total == 0) {
		return 0;
	}
	q    = q < 0 ? 0 : q > 1 ? 1 : q;
	rank = (uint64_t) (q * (double) total + 0.5);
	if (rank == 0) {
		rank = 1;
	}
	for (size_t i = 0; i < s->n_buckets; i++) {
		seen += s->counts[i];
		if (seen >= rank) {
			return s->uppers[i] < s->max_ns ? s->uppers[i]
			                                : s->max_ns;
		}
	}
	return s->max_ns;
}

void
load_snapshot_finish(struct load_snapshot *s)
{
	free(s->counts);
	s->counts    = NULL;
	s->n_buckets = 0;
}

void
load_buckets_finish(struct load_buckets *buckets)
{
	free(buckets->uppers);
	buckets->uppers = NULL;
	buckets->n      = 0;
}
