/*
 * The response cache's second level: one Redis shared by every zosd node,
 * so that a prompt answered on one node is a hit on the others, and a
 * prompt asked on several nodes at once reaches the model once.
 *
 * The local LRU (state/cache.h) stays the first level and keeps its own
 * single flight between the threads of one node; this level is consulted
 * from inside that single flight (the compute function of the local
 * get-or-compute), so at most one thread per node and key talks to Redis
 * at a time. Nothing here runs under a zOS lock: the callers hold none
 * (the local cache asserts it before computing), and the pool's own mutex
 * is never held across Redis I/O or a wait.
 *
 * Connections: a small pool of blocking hiredis connections used by the
 * worker threads (bench/redis-cost.c measured it against hiredis async on
 * an event thread; README "Running several nodes" has the numbers). Each
 * connect and command has a timeout.
 *
 * Keys and values: the key is "zos:c1:" and 32 hex digits, two seeded
 * 64-bit hashes of (model, prompt) with fixed seeds (every node must name
 * a prompt alike); the value carries the full model and prompt before the
 * response, and a read whose model or prompt differs is a miss, so a hash
 * collision never returns another prompt's answer. Values are written
 * with SET ... EX ttl.
 *
 * Single flight across nodes: on a miss, SET key:lock TOKEN NX PX ms.
 * The winner reads the value once more (the previous holder may have
 * stored it and unlocked between this caller's read and its SET NX),
 * computes only if it is still missing, stores the value, then deletes
 * the lock if it
 * still holds TOKEN (a Lua compare-and-delete). The others poll the value
 * with a bounded backoff (1 ms doubling to 25 ms), and stop at their
 * deadline. A lock whose holder died expires after PX (the holder's own
 * time to compute), and a waiter that then finds neither value nor lock
 * takes the lock itself.
 *
 * Outages: an I/O error, a timeout or a refused connection counts one
 * error, marks Redis down and logs one line (the first error of an
 * outage only); while down, calls skip Redis without I/O and compute on
 * their node (the local level still works), and one caller per retry
 * period (1 s) tries to connect again; the first success logs one line
 * and makes connections of the old generation reconnect. The caller
 * never sees a Redis error.
 *
 * hiredis writes with write(2): the process must ignore SIGPIPE (zosd
 * does), or a Redis that closed a connection kills it.
 */
#ifndef ZOS_SHARED_CACHE_H
#define ZOS_SHARED_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache.h"
#include "zrpc/log.h"

#define ZOS_SHARED_CACHE_DEFAULT_TTL_S 3600
#define ZOS_SHARED_CACHE_MAX_TTL_S (365u * 24u * 3600u)
#define ZOS_SHARED_CACHE_DEFAULT_POOL 4
#define ZOS_SHARED_CACHE_MAX_POOL 64
#define ZOS_SHARED_CACHE_DEFAULT_IO_TIMEOUT_MS 500
#define ZOS_SHARED_CACHE_DEFAULT_RETRY_MS 1000
/* Lock lifetime when the caller has no deadline: two backend calls of
 * 30 s (zosd's default --backend-timeout-ms, a try and its retry) and
 * a margin. */
#define ZOS_SHARED_CACHE_DEFAULT_LOCK_MS 65000
/* The longest a waiter without a deadline waits for another node. */
#define ZOS_SHARED_CACHE_MAX_WAIT_MS 60000
#define ZOS_SHARED_CACHE_URL_MAX 1024
#define ZOS_SHARED_CACHE_KEY_LEN 40 /* "zos:c1:" + 32 hex + NUL */

/* Return codes beyond the compute function's own. */
enum zos_shared_cache_result {
	ZOS_SHARED_CACHE_OK        = 0,
	ZOS_SHARED_CACHE_TIMED_OUT = -1, /* the deadline passed waiting */
	ZOS_SHARED_CACHE_NO_MEMORY = -2,
	ZOS_SHARED_CACHE_INVALID   = -3, /* NULL argument */
};

struct zos_shared_cache_config {
	/* redis://HOST:PORT (PORT default 6379) or unix://PATH. */
	const char *url;
	/* NULL = no AUTH; else a file whose first line is PASSWORD or
	 * USER PASSWORD (an ACL user). */
	const char *auth_file;
	uint32_t    ttl_s;         /* 0 = 3600 */
	unsigned    pool_size;     /* 0 = 4; at most 64 */
	uint32_t    io_timeout_ms; /* connect and each command; 0 = 500 */
	uint32_t    retry_ms;      /* reconnect period when down; 0 = 1000 */
	/* The key hash, as the local cache's (NULL = the built-in one with
	 * fixed seeds); injectable so that tests can force collisions. */
	zos_cache_hash_fn hash;
	zrpc_log_fn       log; /* NULL = no log lines */
	void             *log_arg;
	/* The state's lock domain: every Redis command first asserts that
	 * the thread holds no zOS lock (zos_assert_no_locks_held). NULL =
	 * not checked. */
	struct zos_lock_domain *domain;
};

struct zos_shared_cache_stats {
	uint64_t hits;    /* reads that found this prompt's value */
	uint64_t misses;  /* first reads of a get-or-compute that did not */
	uint64_t errors;  /* I/O errors, timeouts, refused connections */
	uint64_t outages; /* times Redis went from up to down */
	uint64_t waits;   /* get-or-computes that waited for another node */
	bool     up;
};

struct zos_shared_cache; /* opaque */

/*
 * Parses URL into a host and port (redis://) or a socket path (unix://,
 * *PORT = 0). Returns true, or false with the reason in WHY. HOST gets
 * at most HOST_LEN bytes with the NUL.
 */
bool zos_shared_cache_parse_url(const char *url, char *host, size_t host_len,
    int *port, char *why, size_t why_len);

/*
 * Creates the shared level for CONFIG (copied). Reads the auth file and
 * tries one connection: a file that cannot be read, a bad URL or a
 * password Redis refuses is an error (message in ERROR, returns NULL);
 * a Redis that cannot be reached is not (it starts down, logs one line
 * and reconnects by itself).
 * Locking: none.
 */
struct zos_shared_cache *zos_shared_cache_create(
    const struct zos_shared_cache_config *config, char *error,
    size_t error_len);

/* Closes every connection and frees SC. No call may be in progress. Safe
 * on NULL. */
void zos_shared_cache_destroy(struct zos_shared_cache *sc);

/*
 * Returns the response for (MODEL, PROMPT) from Redis, or computes it
 * once across every node sharing Redis (see the top of this file), then
 * stores it there with the TTL.
 *
 * DEADLINE_NS (zrpc_now_ns() time, 0 = none) bounds the waiting for
 * another node and sets the lock's lifetime; it does not bound COMPUTE,
 * which gets its own from the caller. On success returns 0 with *OUT_TEXT
 * malloc'd (the caller frees it) and *OUT_SHARED true when Redis had the
 * answer (false when COMPUTE ran here). On COMPUTE's failure returns its
 * code with *OUT_TEXT as COMPUTE left it (nothing is stored). Returns
 * ZOS_SHARED_CACHE_TIMED_OUT (nothing computed, *OUT_TEXT NULL) when the
 * deadline passed while another node held the lock. A Redis failure is
 * never returned: COMPUTE runs here instead.
 * Locking: must be called with no zOS lock held (asserted before each
 * Redis command when the config names the lock domain); takes the pool's
 * mutex only around taking and giving back a connection.
 */
int zos_shared_cache_get_or_compute(struct zos_shared_cache *sc,
    const char *model, const char *prompt, zos_cache_compute_fn compute,
    void *compute_arg, uint64_t deadline_ns, char **out_text,
    bool *out_shared);

/*
 * Writes the Redis key of (MODEL, PROMPT) into KEY (at least
 * ZOS_SHARED_CACHE_KEY_LEN bytes); the lock is KEY followed by ":lock".
 * For tests and for inspecting the cache with redis-cli.
 */
void zos_shared_cache_key(const struct zos_shared_cache *sc, const char *model,
    const char *prompt, char *key);

/* Fills *OUT from atomics. Locking: none. */
void zos_shared_cache_stats(
    const struct zos_shared_cache *sc, struct zos_shared_cache_stats *out);

/* The URL it was created with. */
const char *zos_shared_cache_url(const struct zos_shared_cache *sc);

#endif /* ZOS_SHARED_CACHE_H */
