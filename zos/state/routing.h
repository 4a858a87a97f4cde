/*
 * Model routing: which model serves a task type, and how each model has
 * fared. Two parts with different lifetimes:
 *
 * - The routing table (task type -> primary and fallback model) is built
 *   by zos_routing_create(), from built-in defaults optionally overridden
 *   by a routes file and by zos_routing_set_primary(), and rebuilt the
 *   same way by zos_routing_reload() (SIGHUP in zosd), which keeps the old
 *   table when the file is bad. Readers get copies of routes.
 * - Per-model outcome counters (success, failure, total latency, fallback
 *   count) change on every backend call. Only models the table routes to
 *   are recorded (others are NOT_FOUND), and a reload forgets the
 *   counters of models the new table no longer names, so junk names can
 *   never fill the metrics. At most max_models models are tracked.
 * Both are guarded by the rank-3 lock "routing_metrics".
 *
 * Built-in routes (task type: primary, fallback):
 *
 *   proof_feedback  builtin:echo-large  builtin:echo-small
 *   hint            builtin:echo-small  builtin:echo
 *   grading         builtin:echo-large  builtin:echo
 *   default         builtin:echo        builtin:echo-small
 *
 * "default" is the route of every task type without one of its own.
 *
 * Routes file: one route per line, "task_type primary fallback", fields
 * separated by spaces or tabs; '#' starts a comment to the end of the line;
 * blank lines are ignored. A line for a built-in task type (including
 * "default") replaces the built-in route; other lines add routes. A line
 * with other than three fields, a name longer than ZOS_ROUTING_NAME_MAX
 * bytes, a line longer than ZOS_ROUTING_LINE_MAX bytes, a task type listed
 * twice or more than ZOS_ROUTING_MAX_ROUTES routes makes the whole file
 * invalid, reported as "PATH:LINE: what is wrong".
 */
#ifndef ZOS_ROUTING_H
#define ZOS_ROUTING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lock.h"

/* Result codes: the gRPC status codes of the same names and numbers. */
enum zos_routing_code {
	ZOS_ROUTING_OK                 = 0,
	ZOS_ROUTING_INVALID_ARGUMENT   = 3,
	ZOS_ROUTING_NOT_FOUND          = 5,
	ZOS_ROUTING_RESOURCE_EXHAUSTED = 8,
	ZOS_ROUTING_INTERNAL           = 13, /* out of memory, read error */
};

#define ZOS_ROUTING_NAME_MAX 256 /* bytes of a task type or model name */
#define ZOS_ROUTING_LINE_MAX 4096
#define ZOS_ROUTING_MAX_ROUTES 256
/* Every model of a full table fits: two per route. */
#define ZOS_ROUTING_DEFAULT_MAX_MODELS (2 * ZOS_ROUTING_MAX_ROUTES)
/* The longest latency RecordOutcome accepts: 10 minutes. A backend call
 * that took longer is not an outcome but an outage (and one huge value
 * would swamp a model's mean, which decides its retries and fallbacks). */
#define ZOS_ROUTING_LATENCY_MAX_MS (10u * 60 * 1000)
#define ZOS_ROUTING_LIMIT_MAX_MODELS 65536
#define ZOS_ROUTING_DEFAULT_TASK "default"

/* A route: the models serving one task type. */
struct zos_route {
	char task_type[ZOS_ROUTING_NAME_MAX + 1];
	char primary_model[ZOS_ROUTING_NAME_MAX + 1];
	char fallback_model[ZOS_ROUTING_NAME_MAX + 1];
};

/* One model's outcomes, as a value. */
struct zos_model_metrics {
	char     model[ZOS_ROUTING_NAME_MAX + 1];
	uint64_t success_count;
	uint64_t failure_count;
	uint64_t total_latency_ms; /* saturates at UINT64_MAX */
	uint64_t fallback_count;
	/* total_latency_ms / (success + failure); 0 with no outcomes. */
	double mean_latency_ms;
};

/* The routing object; opaque. */
struct zos_routing;

/*
 * Creates the routing object in *OUT: the built-in routes, overridden by
 * ROUTES_PATH when not NULL (kept for zos_routing_reload), and room for
 * MAX_MODELS models' metrics (0 = ZOS_ROUTING_DEFAULT_MAX_MODELS; above
 * ZOS_ROUTING_LIMIT_MAX_MODELS is INVALID_ARGUMENT). The
 * metrics lock is rank ZOS_RANK_ROUTING_METRICS in DOMAIN, which must
 * outlive the object. On failure, ERROR (ERROR_LEN bytes; may be NULL)
 * receives a message, for a bad file "PATH:LINE: reason".
 * Returns OK; NOT_FOUND (the file cannot be opened); INVALID_ARGUMENT
 * (malformed file, bad MAX_MODELS); INTERNAL (no memory, read error).
 * *OUT is set only on OK.
 * Locking: must be called holding no lock (it reads a file; asserted); it
 * takes none.
 */
enum zos_routing_code zos_routing_create(struct zos_routing **out,
    struct zos_lock_domain *domain, const char *routes_path, size_t max_models,
    char *error, size_t error_len);

/*
 * Makes PRIMARY_MODEL the primary model of TASK_TYPE (zosd's --backend
 * TASK=URL), now and after every reload. A task type not in the table is
 * added, with the default route's fallback. Only before R is shared (the
 * list of overrides is not guarded); it re-reads the routes file.
 * Returns OK; INVALID_ARGUMENT (a name empty or too long);
 * RESOURCE_EXHAUSTED (the table is full); what reading the file returns.
 * ERROR says which.
 * Locking: takes routing_metrics (write) to publish; no lock may be held.
 */
enum zos_routing_code zos_routing_set_primary(struct zos_routing *r,
    const char *task_type, const char *primary_model, char *error,
    size_t error_len);

/*
 * Rebuilds the table from the routes file given at creation (re-read) and
 * the set_primary overrides, and swaps it in; the metrics of models the
 * new table does not route to are dropped. On any error the old table
 * stays, and ERROR says why ("PATH:LINE: reason"). Without a routes file
 * the table is rebuilt as it was.
 * Returns what zos_routing_create returns for a file.
 * Locking: reads a file: no lock may be held (asserted); takes
 * routing_metrics (write) for the swap only.
 */
enum zos_routing_code zos_routing_reload(
    struct zos_routing *r, char *error, size_t error_len);

/* The routes file R reads (as given at creation), or NULL. */
const char *zos_routing_path(const struct zos_routing *r);

/*
 * Destroys R. R == NULL is a no-op. No other thread may use R any more.
 * Locking: none.
 */
void zos_routing_destroy(struct zos_routing *r);

/* The metrics lock of R (owned by R), for order checks and histograms. */
struct zos_lock *zos_routing_lock(struct zos_routing *r);

/*
 * Copies the route for TASK_TYPE to *OUT (NULL or unknown = the default
 * route; its task_type then reads "default").
 * Locking: takes routing_metrics (read).
 */
void zos_routing_route(
    struct zos_routing *r, const char *task_type, struct zos_route *out);

/*
 * Number of routes in the table (built-ins included), and a copy of
 * route I (ordered by task type) into *OUT: false when I is past the end.
 * A reload between the two calls may change both.
 * Locking: takes routing_metrics (read).
 */
size_t zos_routing_route_count(struct zos_routing *r);
bool   zos_routing_route_at(
      struct zos_routing *r, size_t i, struct zos_route *out);

/*
 * Records one call to MODEL (1..256 bytes, NUL-terminated; a model the
 * table routes to): a success or a failure, its latency, and whether it
 * was a fallback call. The first outcome of a model starts tracking it.
 * Returns OK; INVALID_ARGUMENT (empty or too long name, or LATENCY_MS
 * above ZOS_ROUTING_LATENCY_MAX_MS: the wire's uint64 has no negative,
 * NaN or infinite value, and a negative number sent as a varint arrives
 * as a huge one, so this bound refuses those too); NOT_FOUND (no route
 * names MODEL); RESOURCE_EXHAUSTED (MODEL is new and max_models are
 * tracked already; nothing is recorded).
 * Locking: takes routing_metrics (write).
 */
enum zos_routing_code zos_routing_record_outcome(struct zos_routing *r,
    const char *model, bool success, uint64_t latency_ms, bool fallback);

/*
 * Copies every tracked model's metrics, sorted by model name (strcmp),
 * into a new array *OUT of *COUNT entries, which the caller frees with
 * free() (*OUT may be NULL when *COUNT is 0).
 * Returns OK or INTERNAL (no memory; *OUT = NULL, *COUNT = 0).
 * Locking: takes routing_metrics (read), possibly more than once; the
 * array is allocated outside the lock.
 */
enum zos_routing_code zos_routing_get_metrics(
    struct zos_routing *r, struct zos_model_metrics **out, size_t *count);

#endif /* ZOS_ROUTING_H */
