/*
 * The zOS application state: everything mutable in zosd, created in main
 * and handed explicitly to every service (no global state).
 *
 * Four parts, each behind its own ranked reader/writer lock (lock.h), in
 * the order a handler that needs several must take them:
 *
 *   1 skills           struct zos_skills    (skills.h)
 *   2 session_state    struct zos_sessions  (sessions.h)
 *   3 routing_metrics  struct zos_routing   (routing.h)
 *   4 response_cache   struct zos_cache     (cache.h)
 *
 * Each module takes its own lock inside its functions and keeps the
 * critical section to a copy; a handler that needs two parts calls the
 * modules in rank order, and the lock module aborts (test builds) or
 * counts (release) any other order.
 */
#ifndef ZOS_STATE_H
#define ZOS_STATE_H

#include <stdbool.h>
#include <stddef.h>

#include "cache.h"
#include "lock.h"
#include "routing.h"
#include "sessions.h"
#include "skills.h"
#include "store.h"

struct zos_state_config {
	size_t cache_capacity; /* 0 = 200 */
	size_t max_sessions;   /* 0 = 10000 */
	/* Finished sessions expire this long after they finished; 0 = 24 h
	 * (sessions.h). */
	int64_t session_ttl_ms;
	/* Sessions one owner may hold; 0 = no cap but max_sessions. */
	size_t max_sessions_per_owner;
	/* The sessions' wall clock; NULL = the real one (tests set it). */
	zos_clock_ms_fn clock;
	void           *clock_arg;
	const char     *skills_file;        /* NULL = the default skills */
	const char     *routing_file;       /* NULL = the default routes */
	bool            abort_on_violation; /* lock rules: abort, else count */
	/*
	 * Persistence (store.h): skills and sessions live in DATA_DIR; NULL
	 * keeps them in memory only. With a data directory, the skills file
	 * seeds the skills only when the directory has none yet.
	 */
	const char *data_dir;
	/* Told when the store can no longer commit, and when it can again
	 * (store.h: config.health); NULL = nobody. */
	void (*store_health)(void *arg, bool ok, const char *why);
	void *store_health_arg;
	/* Routes set on top of the defaults or the routing file: task
	 * ROUTE_TASKS[i] gets primary model ROUTE_PRIMARIES[i]. */
	const char *const *route_tasks;
	const char *const *route_primaries;
	size_t             n_route_overrides;
	zrpc_log_fn        log;
	void              *log_arg;
};

struct zos_state {
	struct zos_lock_domain locks;
	struct zos_skills      skills;      /* rank 1 */
	struct zos_sessions   *sessions;    /* rank 2 */
	struct zos_routing    *routing;     /* rank 3 */
	struct zos_cache       cache;       /* rank 4 */
	char                  *skills_file; /* for Skills/Reload; NULL: none */
	struct zos_store      *store;       /* NULL: in memory only */
};

/*
 * Creates the state from CONFIG: reads the skills and routing files (no
 * lock held), builds every part. On failure returns NULL and writes why
 * (naming the file and line for a bad file) to ERROR.
 */
struct zos_state *zos_state_create(
    const struct zos_state_config *config, char *error, size_t error_len);

/*
 * The four locks, in rank order (OUT[0] is skills), for reports of their
 * wait and hold times.
 */
void zos_state_locks(struct zos_state *state, struct zos_lock *out[4]);

/*
 * Removes every expired finished session (in batches: one short write
 * lock per ZOS_SESSIONS_SWEEP_MAX) and, when any was removed and the
 * state has a store, asks the store to write the table (without waiting
 * for it). Returns how many were removed. zosd calls it now and then;
 * Session/Start sweeps on its own as well.
 * Locking: takes session_state (write) per batch; call with no lock held.
 */
size_t zos_state_expire_sessions(struct zos_state *state);

/*
 * Asks the store (when the state has one) to make PART durable up to SEQ
 * without waiting for it: for a change nobody waits for but readers
 * should see soon (they see only durable values, store.h). A failure is
 * logged and counted by the store, and undoes the change.
 * Locking: call with no lock held.
 */
void zos_state_commit_soon(
    struct zos_state *state, enum zos_store_part part, uint64_t seq);

/* Frees the state; no thread may still use it. NULL is a no-op. */
void zos_state_destroy(struct zos_state *state);

#endif /* ZOS_STATE_H */
