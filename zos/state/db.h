/*
 * The store's database: DATA_DIR/zos.db, SQLite in WAL mode with
 * synchronous=FULL, and the statements the store runs on it. Private to
 * the store (store.c), which decides when; this module knows the schema,
 * the SQL and the checks made before SQLite opens anything.
 *
 * Schema (version ZOS_DB_SCHEMA_VERSION):
 *
 *   CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)
 *       WITHOUT ROWID;
 *       -- 'schema_version', 'skills_version', 'sessions_seq',
 *       -- 'imported_snapshots' (1 once old snapshot files were imported)
 *   CREATE TABLE skills (name TEXT PRIMARY KEY, level REAL NOT NULL,
 *       attempts INTEGER NOT NULL);
 *       -- rewritten whole by each commit, in the vector's order, which
 *       -- the rowids keep
 *   CREATE TABLE sessions (id TEXT PRIMARY KEY, problem_id TEXT NOT NULL,
 *       state INTEGER NOT NULL, version INTEGER NOT NULL,
 *       created_unix_ms INTEGER NOT NULL, updated_unix_ms INTEGER NOT NULL,
 *       owner INTEGER NOT NULL) WITHOUT ROWID;
 *
 * states are zos.v1.ProofState numbers; owner is the 64-bit owner key
 * stored as a signed integer; sessions_seq is the session table's change
 * count (at least the sum of the versions).
 *
 * Every function performs I/O: call with no zOS lock held. One thread at
 * a time uses a database (the connection is opened without SQLite's own
 * mutexes): the opening thread until the flusher starts, then the
 * flusher. Errors come back as -1 (or an errno value) with ERROR filled:
 * "PATH: what" for anything about the file.
 */
#ifndef ZOS_DB_H
#define ZOS_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sessions.h"
#include "skills.h"

#define ZOS_DB_SCHEMA_VERSION 1

struct zos_db; /* opaque */

/*
 * Checks that NAME in the directory open as DIR_FD is a regular file or
 * missing, without following a symbolic link and without blocking on a
 * FIFO. Returns 1 (a regular file), 0 (none) or -1 with ERROR naming
 * PATH (its full name, for the message).
 */
int zos_db_check_file(int dir_fd, const char *name, const char *path,
    char *error, size_t error_len);

/*
 * Opens PATH (DIR_FD/NAME, created 0600 when missing: *CREATED then) for
 * the store: checks the file and SQLite's -wal and -shm beside it, runs
 * PRAGMA quick_check before anything is written, and checks the schema's
 * version. A database with no tables is new (*EMPTY); its schema is made
 * by zos_db_create or zos_db_import. A corrupt or unreadable file, a
 * schema newer than this one or not ours: -1 with ERROR, and the file is
 * left as it was.
 */
int zos_db_open(int dir_fd, const char *name, const char *path,
    struct zos_db **out, bool *created, bool *empty, char *error,
    size_t error_len);

/* Makes the schema in a new database, in one transaction. */
int zos_db_create(struct zos_db *db, char *error, size_t error_len);

/* meta's value of KEY into *VALUE; 0 when there is none (*VALUE 0). */
int zos_db_meta(struct zos_db *db, const char *key, int64_t *value,
    char *error, size_t error_len);

/*
 * Reads the skill vector into *OUT (NULL when none was ever stored) and
 * its version into *VERSION.
 */
int zos_db_load_skills(struct zos_db *db, struct zos_skill_vector **out,
    uint64_t *version, char *error, size_t error_len);

/*
 * Reads every session into *OUT (in the table's key order: by id; no
 * sort, so that a million rows load in one pass) with the
 * change count as OUT->seq. Rows that do not fit a session (an id or a
 * problem id too long, a state out of range) are corruption.
 */
int zos_db_load_sessions(struct zos_db *db, struct zos_sessions_image *out,
    char *error, size_t error_len);

/* Replaces the stored vector by V in one transaction. 0 or an errno
 * value (ENOSPC: disk full; EROFS: read-only; EIO) with MESSAGE. */
int zos_db_write_skills(struct zos_db *db, const struct zos_skill_vector *v,
    char *message, size_t message_len);

/* Writes CHANGES (upserts, deletes and the change count) in one
 * transaction. 0 or an errno value with MESSAGE. */
int zos_db_write_sessions(struct zos_db *db,
    const struct zos_sessions_changes *changes, char *message,
    size_t message_len);

/*
 * Imports old snapshot contents into a new database in one transaction:
 * the schema, SKILLS (may be NULL), IMAGE (may be NULL) and the mark
 * 'imported_snapshots'. STEP(ARG, NAME) is called at "import-begun" and
 * "import-inserted" (a test hook may end the process there).
 */
int zos_db_import(struct zos_db *db, const struct zos_skill_vector *skills,
    const struct zos_sessions_image *image,
    void (*step)(void *arg, const char *name), void *arg, char *error,
    size_t error_len);

/*
 * Starts the checkpointer: a thread with a connection of its own that
 * copies the WAL back into zos.db (a PASSIVE checkpoint) whenever it has
 * grown by about 4 MiB, in place of SQLite's autocheckpoint, which would
 * run inside a commit and hold up every caller waiting for it. It stops
 * with zos_db_close. Returns 0 or -1 with ERROR.
 */
int zos_db_start_checkpointer(
    struct zos_db *db, char *error, size_t error_len);

/* Counters: commits made, bytes of pages written. */
void zos_db_stats(const struct zos_db *db, uint64_t *commits,
    uint64_t *bytes_written, uint64_t *commit_ns_sum, uint64_t *commit_ns_max);

/* Closes DB (checkpointing the WAL into the file). NULL is a no-op. */
void zos_db_close(struct zos_db *db);

#endif /* ZOS_DB_H */
