/*
 * Durable skills and sessions: snapshot files in a data directory, written
 * outside every lock by one flusher thread, with group commit.
 *
 * A change is made in memory first (skills.h, sessions.h: each part has a
 * sequence number that grows with every accepted change: the skill
 * vector's version, the session table's change count). The caller then asks
 * the store to make its part durable up to that number and answers its own
 * caller only when the store says so. The flusher takes a copy of the part
 * (a short read-locked copy), writes it to PART.snap.tmp, fsyncs the file,
 * renames it over PART.snap and fsyncs the directory; then every waiter
 * whose number the copy covers is told. Waiters that arrive while a write
 * is under way are all covered by the next one: however many callers
 * change sessions at once, each write costs one fsync pair (group commit).
 * One thread writes, and only a copy newer than what is on disk, so an
 * older snapshot never replaces a newer one.
 *
 * File format (both files): a 32-byte header, then the payload.
 *   bytes  0..7   magic "ZOSSNAP1"
 *   bytes  8..11  part: 1 skills, 2 sessions (little endian)
 *   bytes 12..15  payload length in bytes (little endian, <= 256 MiB)
 *   bytes 16..23  sequence number of the copy (little endian)
 *   bytes 24..27  CRC-32 (zlib) of bytes 8..23 and the payload
 *   bytes 28..31  zero
 *   payload: zos.storage.v1.SkillsSnapshot or SessionsSnapshot (protobuf)
 * rename(2) makes a snapshot replace the previous one whole, so a crash
 * leaves either the old file or the new one; a file that does not verify
 * (short, bad magic, bad CRC, undecodable payload, sequence mismatch) is
 * corruption, reported with its path; the store never repairs, replaces or
 * truncates it. Leftover PART.snap.tmp files were never acknowledged and
 * are removed at open (logged).
 *
 * The directory is locked (flock on DIR/LOCK) while a store has it open,
 * so two zosd never share one.
 *
 * Permissions: the store keeps what it holds to its owner. A directory it
 * creates is 0700 and every file it writes (snapshots, LOCK) is 0600. An
 * existing data directory that group or others may use is narrowed to
 * 0700 at open, with a warning naming the old mode (when that chmod is
 * not allowed, the warning says so and the store opens anyway).
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
};

/* Counters for the metrics endpoint; read with zos_store_stats. */
struct zos_store_stats {
	uint64_t commits;        /* snapshot files written and renamed in */
	uint64_t commit_waiters; /* commit requests answered OK */
	uint64_t failures;       /* writes that failed */
	uint64_t bytes_written;
	uint64_t fsync_ns_sum; /* time in fsync (file and directory) */
	uint64_t fsync_count;
	uint64_t fsync_ns_max;
};

struct zos_store; /* opaque */

/*
 * Opens the data directory in CONFIG: creates it if missing, locks it,
 * removes leftover temporary files and reads and verifies skills.snap and
 * sessions.snap when they exist. Performs I/O: call with no zOS lock held.
 * Returns 0 and *OUT, or -1 with ERROR naming the path and what is wrong
 * ("/d/sessions.snap: checksum mismatch (file is corrupt)", "/d: in use by
 * another zosd", "/d: Permission denied").
 */
int zos_store_open(const struct zos_store_config *config,
    struct zos_store **out, char *error, size_t error_len);

/*
 * The skill vector read at open (one reference, the caller's), or NULL
 * when the directory held no skills.snap. Call once, before start.
 */
struct zos_skill_vector *zos_store_take_skills(struct zos_store *store);

/*
 * Moves the sessions read at open into *OUT (the caller finishes it with
 * zos_sessions_image_finish). Returns false (and leaves *OUT empty) when
 * the directory held no sessions.snap. Call once, before start.
 */
bool zos_store_take_sessions(
    struct zos_store *store, struct zos_sessions_image *out);

/*
 * Starts the flusher thread, which copies from SKILLS and SESSIONS (both
 * must outlive the store or zos_store_close). Returns 0 or an errno value.
 */
int zos_store_start(struct zos_store *store, struct zos_skills *skills,
    struct zos_sessions *sessions);

/*
 * Called once when a commit request is settled: ERROR 0 means PART is
 * durable up to the requested sequence number; otherwise ERROR is an errno
 * value and MESSAGE says what failed ("write /d/sessions.snap.tmp: No space
 * left on device"). Runs on the flusher thread (or on the caller's thread
 * when the request is already covered); must not block.
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
 * unlocks the directory and frees STORE. NULL is a no-op.
 */
void zos_store_close(struct zos_store *store);

#endif /* ZOS_STORE_H */
