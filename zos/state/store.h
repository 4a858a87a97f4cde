/*
 * Durable skills and sessions: a SQLite database in a data directory
 * (DIR/zos.db, WAL, synchronous=FULL; schema in db.h), written outside
 * every lock by one flusher thread, with group commit.
 *
 * A change is made in memory first (skills.h, sessions.h: each part has a
 * sequence number that grows with every accepted change: the skill
 * vector's version, the session table's change count). The caller then
 * asks the store to make its part durable up to that number and answers
 * its own caller only when the store says so. The flusher takes the
 * part's changes since the last commit (a short locked step: the rows
 * that changed, each once however often it changed, and the sessions
 * removed) and writes them in one transaction; then every waiter whose
 * number the commit covers is told. Waiters that arrive while a commit
 * is under way are all covered by the next one: however many callers
 * change sessions at once, each commit costs one fsync of the WAL, and
 * its size is what changed, not what is stored.
 *
 * What a reader sees. Readers (Session/Get and List, Skills/Get, the
 * assistant's skill vector) see a change only once it is durable: until
 * its commit returns, they see the value before it, and a new session is
 * not there. So a crash never takes back something another caller has
 * read. Writers work on the latest values, so changes chain without
 * waiting for each other's commits.
 *
 * Failure. When a commit fails (disk full, the directory read-only or
 * replaced), every change not durable is undone in memory (new sessions
 * go, changed ones get their durable value back), so readers keep seeing
 * what is on disk; the calls waiting on it, and any whose change was
 * undone, are told (ENOSPC, EROFS, ESTALE, EIO with the cause). The store
 * is then unhealthy (config.health is told: zosd's Health answers
 * NOT_SERVING) and tries a commit about once a second; the first that
 * succeeds makes it healthy again, with no restart. A data directory
 * whose device and inode changed (removed and made again, say) is never
 * written again by this store.
 *
 * Files. The store opens only regular files (no symbolic link, no FIFO:
 * checked before open, without blocking), through the directory it
 * locked (flock on DIR/LOCK), and checks before every commit that DIR
 * still names that directory. A corrupt or unreadable database, or a
 * schema newer than this zosd's, fails open with a message that names
 * the file, which is left untouched.
 *
 * Old directories. A directory with skills.snap / sessions.snap and no
 * database is imported once, in one transaction, and the files renamed
 * *.snap.imported (never deleted). A crash at any step leaves either the
 * old directory (imported again at the next start) or the new one (the
 * renames are finished at the next start).
 *
 * Permissions: the directory is 0700 and every file 0600; an existing
 * data directory that group or others may use is narrowed to 0700 at
 * open, with a warning (when that chmod is not allowed, the warning says
 * so and the store opens anyway).
 */
#ifndef ZOS_STORE_H
#define ZOS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "zrpc/log.h"

#include "sessions.h"
#include "skills.h"

/* The persisted parts. */
enum zos_store_part {
	ZOS_STORE_SKILLS   = 1,
	ZOS_STORE_SESSIONS = 2,
};

struct zos_store_config {
	const char
	    *dir; /* the data directory; created (with parents) if missing */
	zrpc_log_fn log; /* NULL = no logging */
	void       *log_arg;
	/* Told (on the flusher thread) when the store becomes unable to
	 * commit (OK false, WHY the cause) and when it can again; NULL =
	 * nobody. Must not block. */
	void (*health)(void *arg, bool ok, const char *why);
	void *health_arg;
};

/* Counters for the metrics endpoint; read with zos_store_stats. */
struct zos_store_stats {
	uint64_t commits;        /* transactions committed */
	uint64_t commit_waiters; /* commit requests answered OK */
	uint64_t failures;       /* commits that failed */
	uint64_t bytes_written;  /* database pages written */
	uint64_t commit_ns_sum;  /* time in those transactions */
	uint64_t commit_ns_max;
	bool     healthy; /* the last commit succeeded */
};

struct zos_store; /* opaque */

/*
 * Opens the data directory in CONFIG: creates it if missing, locks it,
 * opens (or creates, or imports) DIR/zos.db, checks it and reads every
 * row. Performs I/O: call with no zOS lock held. Returns 0 and *OUT, or
 * -1 with ERROR naming the path and what is wrong ("/d/zos.db: is
 * corrupt ...", "/d: in use by another zosd", "/d: Permission denied").
 */
int zos_store_open(const struct zos_store_config *config,
    struct zos_store **out, char *error, size_t error_len);

/*
 * The skill vector read at open (one reference, the caller's), or NULL
 * when the directory held none. Call once, before start.
 */
struct zos_skill_vector *zos_store_take_skills(struct zos_store *store);

/*
 * Moves the sessions read at open into *OUT (the caller finishes it with
 * zos_sessions_image_finish). Returns false (and leaves *OUT empty) when
 * the directory held none. Call once, before start.
 */
bool zos_store_take_sessions(
    struct zos_store *store, struct zos_sessions_image *out);

/*
 * Starts the flusher thread, which takes changes from SKILLS and SESSIONS
 * (both must outlive the store or zos_store_close, and track changes:
 * zos_store_open's caller restores them and turns tracking on before
 * sharing them). Returns 0 or an errno value.
 */
int zos_store_start(struct zos_store *store, struct zos_skills *skills,
    struct zos_sessions *sessions);

/*
 * Called once when a commit request is settled: ERROR 0 means PART is
 * durable up to the requested sequence number; otherwise ERROR is an errno
 * value and MESSAGE says what failed ("/d/zos.db: commit failed: database
 * or disk is full"): the change was undone. Runs on the flusher's
 * settling thread (or on the caller's thread when the request is already
 * covered); must not block.
 */
typedef void (*zos_store_done_fn)(void *arg, int error, const char *message);

/*
 * Asks for PART to be durable up to SEQ and calls DONE(ARG, ...) once when
 * it is, or when the write failed, or (ECANCELED) when the store is closing
 * and cannot write any more. DONE may run before this returns.
 * Never blocks on I/O. Locking: no zOS lock may be held.
 */
void zos_store_commit(struct zos_store *store, enum zos_store_part part,
    uint64_t seq, zos_store_done_fn done, void *arg);

/*
 * The blocking form: returns 0 once PART is durable up to SEQ, or an errno
 * value with MESSAGE filled. Locking: no zOS lock may be held.
 */
int zos_store_commit_wait(struct zos_store *store, enum zos_store_part part,
    uint64_t seq, char *message, size_t message_len);

/* Copies the store's counters into *OUT. */
void zos_store_stats(
    const struct zos_store *store, struct zos_store_stats *out);

/* The data directory's path (as given). */
const char *zos_store_dir(const struct zos_store *store);

/*
 * Writes whatever is pending, settles every waiter, stops the flusher,
 * closes the database, unlocks the directory and frees STORE. NULL is a
 * no-op.
 */
void zos_store_close(struct zos_store *store);

#endif /* ZOS_STORE_H */
