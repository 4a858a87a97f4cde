/*
 * The store's database; see db.h for the schema and the contract.
 *
 * Opening. SQLite opens files by name and would block on a FIFO or
 * follow a symbolic link, so each file it may open (zos.db, -wal, -shm)
 * is first looked at through the locked directory's descriptor with
 * O_NOFOLLOW | O_NONBLOCK and must be a regular file (or missing); the
 * database itself is then opened with SQLITE_OPEN_NOFOLLOW. A new
 * database is made by us, empty and 0600, so that SQLite (which gives its
 * -wal and -shm the database's mode) never makes a file others can read.
 * PRAGMA quick_check runs before anything is written, so a corrupt file
 * is reported and left as it was.
 *
 * Writing. Every write is one transaction (BEGIN IMMEDIATE ... COMMIT)
 * of prepared statements; a failure rolls it back, so the file holds
 * either all of a commit or none of it. synchronous=FULL in WAL mode
 * makes COMMIT return only once the WAL is on disk.
 */
#include "db.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

/* Statements prepared once, at open. */
enum db_stmt {
	DB_META_GET,
	DB_META_SET,
	DB_SKILLS_CLEAR,
	DB_SKILL_PUT,
	DB_SESSION_PUT,
	DB_SESSION_DEL,
	DB_STMT_COUNT,
};

static const char *const db_sql[DB_STMT_COUNT] = {
	[DB_META_GET]     = "SELECT value FROM meta WHERE key = ?1",
	[DB_META_SET]     = "INSERT OR REPLACE INTO meta (key, value) "
	                    "VALUES (?1, ?2)",
	[DB_SKILLS_CLEAR] = "DELETE FROM skills",
	[DB_SKILL_PUT]    = "INSERT INTO skills (name, level, attempts) "
	                    "VALUES (?1, ?2, ?3)",
	[DB_SESSION_PUT]  = "INSERT OR REPLACE INTO sessions (id, problem_id, "
	                    "state, version, created_unix_ms, updated_unix_ms, "
	                    "owner) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	[DB_SESSION_DEL]  = "DELETE FROM sessions WHERE id = ?1",
};

/* SQLite's page cache, in KiB (a million sessions take about 75 MiB of
 * pages, their inner pages well under 1 MiB). */
#define DB_CACHE_KIB "16384"

/* WAL frames after which the checkpointer copies them into zos.db. */
#define DB_CHECKPOINT_FRAMES 1000
/* WAL frames at which the committing connection checkpoints itself
 * (about 64 MiB): the bound of the WAL when commits outrun the disk. */
#define DB_CHECKPOINT_HARD_FRAMES 16384

/* Why a database cannot be opened, when SQLite cannot read it at all. */
#define DB_UNREADABLE \
	"cannot be read (corrupt, or not a zosd database; left as it is)"

static const char db_schema[] =
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) "
    "WITHOUT ROWID;"
    "CREATE TABLE skills (name TEXT PRIMARY KEY, level REAL NOT NULL, "
    "attempts INTEGER NOT NULL);"
    "CREATE TABLE sessions (id TEXT PRIMARY KEY, problem_id TEXT NOT NULL, "
    "state INTEGER NOT NULL, version INTEGER NOT NULL, "
    "created_unix_ms INTEGER NOT NULL, updated_unix_ms INTEGER NOT NULL, "
    "owner INTEGER NOT NULL) WITHOUT ROWID;";

/* The checkpointer: a thread and a connection of its own that copy the
 * WAL back into zos.db, so that commits never wait for it. */
struct db_checkpointer {
	sqlite3        *conn;
	pthread_t       thread;
	bool            started;
	pthread_mutex_t mu;
	pthread_cond_t  cv;
	bool            wanted; /* guarded by: mu; the WAL has grown */
	bool            stop;   /* guarded by: mu */
};

struct zos_db {
	sqlite3               *conn;
	char                  *path;
	sqlite3_stmt          *stmt[DB_STMT_COUNT];
	int                    page_size;
	struct db_checkpointer ckpt;
	/* Written by the thread using the database; read by metrics. */
	atomic_uint_fast64_t commits;
	atomic_uint_fast64_t bytes_written;
	atomic_uint_fast64_t commit_ns_sum;
	atomic_uint_fast64_t commit_ns_max;
};

static uint64_t
db_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

/* An errno value for what SQLite said (RC on CONN). */
static int
db_errno(sqlite3 *conn, int rc)
{
	switch (rc & 0xff) {
	case SQLITE_FULL:
		return ENOSPC;
	case SQLITE_READONLY:
		return EROFS;
	case SQLITE_NOMEM:
		return ENOMEM;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return EBUSY;
	default:
		break;
	}
	if (conn != NULL && sqlite3_system_errno(conn) != 0) {
		return sqlite3_system_errno(conn);
	}
	return EIO;
}

/* "PATH: WHAT: SQLite's message (system error)" into ERROR. */
static void
db_error(const struct zos_db *db, const char *what, int rc, char *error,
    size_t error_len)
{
	int sys = db->conn != NULL ? sqlite3_system_errno(db->conn) : 0;

	snprintf(error, error_len, "%s: %s: %s%s%s%s", db->path, what,
	    db->conn != NULL ? sqlite3_errmsg(db->conn) : sqlite3_errstr(rc),
	    sys != 0 ? " (" : "", sys != 0 ? strerror(sys) : "",
	    sys != 0 ? ")" : "");
}

int
zos_db_check_file(int dir_fd, const char *name, const char *path, char *error,
    size_t error_len)
{
	struct stat st;
	int         fd;

	fd = openat(
	    dir_fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT) {
			return 0;
		}
		if (errno == ELOOP) {
			snprintf(error, error_len,
			    "%s: is a symbolic link; the store opens only "
			    "regular files",
			    path);
		} else {
			snprintf(
			    error, error_len, "%s: %s", path, strerror(errno));
		}
		return -1;
	}
	if (fstat(fd, &st) != 0) {
		snprintf(error, error_len, "%s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	if (!S_ISREG(st.st_mode)) {
		snprintf(error, error_len,
		    "%s: is not a regular file (a FIFO, device, directory or "
		    "socket); the store opens only regular files",
		    path);
		return -1;
	}
	return 1;
}

/* Runs SQL (no rows wanted). Returns SQLite's code. */
static int
db_exec(struct zos_db *db, const char *sql)
{
	return sqlite3_exec(db->conn, sql, NULL, NULL, NULL);
}

/* Runs PRAGMA quick_check. Returns 0 or -1 with ERROR. */
static int
db_quick_check(struct zos_db *db, char *error, size_t error_len)
{
	sqlite3_stmt *st;
	int           rc;

	rc = sqlite3_prepare_v2(db->conn, "PRAGMA quick_check", -1, &st, NULL);
	if (rc != SQLITE_OK) {
		db_error(db, DB_UNREADABLE, rc, error, error_len);
		return -1;
	}
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		db_error(db, DB_UNREADABLE, rc, error, error_len);
		sqlite3_finalize(st);
		return -1;
	}
	if (strcmp((const char *) sqlite3_column_text(st, 0), "ok") != 0) {
		snprintf(error, error_len,
		    "%s: is corrupt (quick_check: %.200s); left as it is: "
		    "restore a backup, or move it away to start empty",
		    db->path, (const char *) sqlite3_column_text(st, 0));
		sqlite3_finalize(st);
		return -1;
	}
	sqlite3_finalize(st);
	return 0;
}

/* The one integer SQL (a count) gives, into *N. Returns 0 or -1 with
 * ERROR. */
static int
db_scalar(struct zos_db *db, const char *sql, int64_t *n, char *error,
    size_t error_len)
{
	sqlite3_stmt *st = NULL;
	int           rc;

	rc = sqlite3_prepare_v2(db->conn, sql, -1, &st, NULL);
	if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		*n = sqlite3_column_int64(st, 0);
		rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_OK) {
		db_error(db, DB_UNREADABLE, rc, error, error_len);
		return -1;
	}
	return 0;
}

/* Prepares every statement. Returns 0 or -1 with ERROR (the schema is
 * not ours). */
static int
db_prepare(struct zos_db *db, char *error, size_t error_len)
{
	for (int i = 0; i < DB_STMT_COUNT; i++) {
		int rc;

		if (db->stmt[i] != NULL) {
			continue;
		}
		rc = sqlite3_prepare_v3(db->conn, db_sql[i], -1,
		    SQLITE_PREPARE_PERSISTENT, &db->stmt[i], NULL);
		if (rc != SQLITE_OK) {
			db_error(db,
			    "is not a zosd database (or not of this version)",
			    rc, error, error_len);
			return -1;
		}
	}
	return 0;
}

/* Checks the schema's version. Returns 0 or -1 with ERROR. */
static int
db_check_schema(struct zos_db *db, char *error, size_t error_len)
{
	int64_t version;

	if (db_prepare(db, error, error_len) != 0 ||
	    zos_db_meta(db, "schema_version", &version, error, error_len) !=
	        0) {
		return -1;
	}
	if (version > ZOS_DB_SCHEMA_VERSION) {
		snprintf(error, error_len,
		    "%s: schema version %" PRId64
		    " is newer than this zosd knows (%d); left as it is: "
		    "run the zosd that wrote it",
		    db->path, version, ZOS_DB_SCHEMA_VERSION);
		return -1;
	}
	if (version < 1) {
		snprintf(error, error_len,
		    "%s: no schema version (not a zosd database?); left as "
		    "it is",
		    db->path);
		return -1;
	}
	return 0;
}

/*
 * SQLite's WAL hook on the committing connection: after a commit that
 * leaves FRAMES frames in the WAL, wakes the checkpointer once there are
 * DB_CHECKPOINT_FRAMES (what SQLite's own autocheckpoint would wait for),
 * and checkpoints itself past DB_CHECKPOINT_HARD_FRAMES.
 */
static int
db_wal_hook(void *arg, sqlite3 *conn, const char *name, int frames)
{
	struct db_checkpointer *c = arg;

	if (frames >= DB_CHECKPOINT_HARD_FRAMES) {
		/* Commits outrun the checkpointer: this one copies the WAL
		 * itself, holding up the next commit, as SQLite's own
		 * autocheckpoint would have (so the WAL stays bounded). */
		(void) sqlite3_wal_checkpoint_v2(
		    conn, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
		return SQLITE_OK;
	}
	if (frames >= DB_CHECKPOINT_FRAMES) {
		pthread_mutex_lock(&c->mu);
		c->wanted = true;
		pthread_cond_signal(&c->cv);
		pthread_mutex_unlock(&c->mu);
	}
	return SQLITE_OK;
}

/*
 * One checkpoint: PASSIVE, so it never waits for the writer nor the
 * writer for it. Under steady commits it may not reach the WAL's end (and
 * SQLite restarts the WAL only once one has); the committing connection
 * then checkpoints itself past DB_CHECKPOINT_HARD_FRAMES (db_wal_hook),
 * which bounds the WAL.
 */
static void
db_checkpoint(struct db_checkpointer *c)
{
	(void) sqlite3_wal_checkpoint_v2(
	    c->conn, "main", SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
}

/* The checkpointer's thread: a PASSIVE checkpoint (it never waits for
 * the writer, nor the writer for it) each time the WAL has grown. A
 * failed one (disk full) is tried again at the next wake; meanwhile the
 * WAL grows, and commits still work while it can. */
static void *
db_checkpointer_main(void *arg)
{
	struct db_checkpointer *c = arg;

	pthread_mutex_lock(&c->mu);
	for (;;) {
		while (!c->wanted && !c->stop) {
			pthread_cond_wait(&c->cv, &c->mu);
		}
		if (c->stop) {
			break;
		}
		c->wanted = false;
		pthread_mutex_unlock(&c->mu);
		db_checkpoint(c);
		pthread_mutex_lock(&c->mu);
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

/* Stops DB's checkpointer, if started, and closes its connection. */
static void
db_checkpointer_stop(struct zos_db *db)
{
	struct db_checkpointer *c = &db->ckpt;

	if (!c->started) {
		return;
	}
	pthread_mutex_lock(&c->mu);
	c->stop = true;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
	pthread_join(c->thread, NULL);
	sqlite3_wal_hook(db->conn, NULL, NULL);
	sqlite3_close(c->conn);
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
	c->started = false;
}

int
zos_db_start_checkpointer(struct zos_db *db, char *error, size_t error_len)
{
	struct db_checkpointer *c = &db->ckpt;
	int                     rc;

	if (c->started) {
		return 0;
	}
	rc = sqlite3_open_v2(db->path, &c->conn,
	    SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW | SQLITE_OPEN_NOMUTEX,
	    NULL);
	if (rc != SQLITE_OK) {
		snprintf(error, error_len,
		    "%s: cannot open for checkpoints: %s", db->path,
		    c->conn != NULL ? sqlite3_errmsg(c->conn)
		                    : sqlite3_errstr(rc));
		sqlite3_close(c->conn);
		c->conn = NULL;
		return -1;
	}
	/* A connection knows the database is in WAL mode (and so has a WAL
	 * to checkpoint) only once it has read it. */
	rc = sqlite3_exec(
	    c->conn, "SELECT count(*) FROM sqlite_schema", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		snprintf(error, error_len,
		    "%s: cannot read for checkpoints: %s", db->path,
		    sqlite3_errmsg(c->conn));
		sqlite3_close(c->conn);
		c->conn = NULL;
		return -1;
	}
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	c->wanted = c->stop = false;
	if ((rc = pthread_create(&c->thread, NULL, db_checkpointer_main, c)) !=
	    0) {
		snprintf(error, error_len,
		    "%s: cannot start the checkpointer: %s", db->path,
		    strerror(rc));
		pthread_cond_destroy(&c->cv);
		pthread_mutex_destroy(&c->mu);
		sqlite3_close(c->conn);
		c->conn = NULL;
		return -1;
	}
	c->started = true;
	/* Replaces SQLite's autocheckpoint, which ran in the commit. */
	sqlite3_wal_hook(db->conn, db_wal_hook, c);
	return 0;
}

/* Creates NAME in DIR_FD, empty and 0600. Returns 0 or -1 with ERROR. */
static int
db_create_file(int dir_fd, const char *name, const char *path, char *error,
    size_t error_len)
{
	int fd = openat(dir_fd, name,
	    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);

	if (fd < 0) {
		snprintf(error, error_len, "%s: %s", path, strerror(errno));
		return -1;
	}
	close(fd);
	return 0;
}

/* Frees DB without touching its file. */
static void
db_free(struct zos_db *db)
{
	db_checkpointer_stop(db);
	for (int i = 0; i < DB_STMT_COUNT; i++) {
		sqlite3_finalize(db->stmt[i]);
	}
	sqlite3_close(db->conn);
	free(db->path);
	free(db);
}

int
zos_db_open(int dir_fd, const char *name, const char *path,
    struct zos_db **out, bool *created, bool *empty, char *error,
    size_t error_len)
{
	static const char *const side[] = { "-wal", "-shm" };
	struct zos_db           *db;
	int64_t                  tables = 0;
	int                      rc;

	*created = false;
	*empty   = false;
	switch (zos_db_check_file(dir_fd, name, path, error, error_len)) {
	case 0:
		if (db_create_file(dir_fd, name, path, error, error_len) !=
		    0) {
			return -1;
		}
		*created = true;
		break;
	case 1:
		break;
	default:
		return -1;
	}
	for (size_t i = 0; i < sizeof(side) / sizeof(side[0]); i++) {
		char side_name[64], side_path[4096];

		snprintf(side_name, sizeof(side_name), "%s%s", name, side[i]);
		snprintf(side_path, sizeof(side_path), "%s%s", path, side[i]);
		if (zos_db_check_file(
		        dir_fd, side_name, side_path, error, error_len) < 0) {
			return -1;
		}
	}
	if ((db = calloc(1, sizeof(*db))) == NULL ||
	    (db->path = strdup(path)) == NULL) {
		free(db);
		snprintf(error, error_len, "out of memory");
		return -1;
	}
	rc = sqlite3_open_v2(path, &db->conn,
	    SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW | SQLITE_OPEN_NOMUTEX,
	    NULL);
	if (rc != SQLITE_OK) {
		db_error(db, "cannot open", rc, error, error_len);
		goto fail;
	}
	sqlite3_extended_result_codes(db->conn, 1);
	/* Read before anything is written. */
	if (db_quick_check(db, error, error_len) != 0 ||
	    db_scalar(db,
	        "SELECT count(*) FROM sqlite_schema WHERE type = 'table'",
	        &tables, error, error_len) != 0) {
		goto fail;
	}
	if (tables > 0 && db_check_schema(db, error, error_len) != 0) {
		goto fail;
	}
	if (db_exec(db, "PRAGMA journal_mode = WAL") != SQLITE_OK ||
	    db_exec(db, "PRAGMA synchronous = FULL") != SQLITE_OK ||
	    db_exec(db, "PRAGMA trusted_schema = OFF") != SQLITE_OK ||
	    /* Room for the inner pages of a large table: a commit then
	     * reads no more than the leaves it changes. */
	    db_exec(db, "PRAGMA cache_size = -" DB_CACHE_KIB) != SQLITE_OK ||
	    /* The WAL file shrinks back to this after a checkpoint. */
	    db_exec(db, "PRAGMA journal_size_limit = 4194304") != SQLITE_OK) {
		db_error(db, "cannot be set up (WAL, synchronous=FULL)",
		    SQLITE_ERROR, error, error_len);
		goto fail;
	}
	sqlite3_busy_timeout(db->conn, 5000);
	db->page_size = 4096;
	{
		sqlite3_stmt *st;
		if (sqlite3_prepare_v2(db->conn, "PRAGMA page_size", -1, &st,
		        NULL) == SQLITE_OK &&
		    sqlite3_step(st) == SQLITE_ROW) {
			db->page_size = sqlite3_column_int(st, 0);
		}
		sqlite3_finalize(st);
	}
	*empty = tables == 0;
	*out   = db;
	return 0;

fail:
	db_free(db);
	return -1;
}

/* Runs STMT to its end and resets it. Returns SQLite's code. */
static int
db_run(sqlite3_stmt *stmt)
{
	int rc = sqlite3_step(stmt);

	sqlite3_reset(stmt);
	sqlite3_clear_bindings(stmt);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

static int
db_meta_set(struct zos_db *db, const char *key, int64_t value)
{
	sqlite3_stmt *st = db->stmt[DB_META_SET];

	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, value);
	return db_run(st);
}

int
zos_db_meta(struct zos_db *db, const char *key, int64_t *value, char *error,
    size_t error_len)
{
	sqlite3_stmt *st = db->stmt[DB_META_GET];
	int           rc;

	*value = 0;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*value = sqlite3_column_int64(st, 0);
		rc     = SQLITE_DONE;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE) {
		db_error(db, "cannot be read", rc, error, error_len);
		return -1;
	}
	return 0;
}

/* Opens a write transaction. Returns SQLite's code. */
static int
db_begin(struct zos_db *db)
{
	return db_exec(db, "BEGIN IMMEDIATE");
}

/*
 * Ends the transaction begun at START_NS: commits when RC is OK, else (or
 * when the commit fails) rolls back. Returns 0 or an errno value with
 * MESSAGE ("PATH: commit: ...").
 */
static int
db_end(struct zos_db *db, int rc, uint64_t start_ns, char *message,
    size_t message_len)
{
	int      err;
	uint64_t ns, max;
	int      cur = 0, hi = 0;

	if (rc == SQLITE_OK) {
		rc = db_exec(db, "COMMIT");
	}
	if (rc != SQLITE_OK) {
		err = db_errno(db->conn, rc);
		db_error(db, "commit failed", rc, message, message_len);
		if (!sqlite3_get_autocommit(db->conn)) {
			(void) db_exec(db, "ROLLBACK");
		}
		return err;
	}
	ns = db_now_ns() - start_ns;
	atomic_fetch_add_explicit(&db->commits, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(
	    &db->commit_ns_sum, ns, memory_order_relaxed);
	max = atomic_load_explicit(&db->commit_ns_max, memory_order_relaxed);
	if (ns > max) {
		atomic_store_explicit(
		    &db->commit_ns_max, ns, memory_order_relaxed);
	}
	if (sqlite3_db_status(db->conn, SQLITE_DBSTATUS_CACHE_WRITE, &cur, &hi,
	        1) == SQLITE_OK) {
		atomic_fetch_add_explicit(&db->bytes_written,
		    (uint64_t) cur * (uint64_t) db->page_size,
		    memory_order_relaxed);
	}
	return 0;
}

/* Inserts V's skills and its version (inside a transaction). */
static int
db_put_skills(struct zos_db *db, const struct zos_skill_vector *v)
{
	int rc = db_run(db->stmt[DB_SKILLS_CLEAR]);

	for (size_t i = 0; rc == SQLITE_OK && i < v->n; i++) {
		sqlite3_stmt *st = db->stmt[DB_SKILL_PUT];

		sqlite3_bind_text(st, 1, v->skills[i].name, -1, SQLITE_STATIC);
		sqlite3_bind_double(st, 2, v->skills[i].level);
		sqlite3_bind_int64(st, 3, (int64_t) v->skills[i].attempts);
		rc = db_run(st);
	}
	if (rc == SQLITE_OK) {
		rc = db_meta_set(db, "skills_version", (int64_t) v->version);
	}
	return rc;
}

/* Upserts session E (inside a transaction). */
static int
db_put_session(struct zos_db *db, const struct zos_session *e)
{
	sqlite3_stmt *st = db->stmt[DB_SESSION_PUT];

	sqlite3_bind_text(st, 1, e->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, e->problem_id, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, (int) e->state);
	sqlite3_bind_int64(st, 4, (int64_t) e->version);
	sqlite3_bind_int64(st, 5, e->created_unix_ms);
	sqlite3_bind_int64(st, 6, e->updated_unix_ms);
	sqlite3_bind_int64(st, 7, (int64_t) e->owner);
	return db_run(st);
}

/* Makes the schema and its statements (inside a transaction). Returns
 * SQLite's code; ERROR is filled when the statements do not prepare. */
static int
db_make_schema(struct zos_db *db, char *error, size_t error_len)
{
	int rc = db_exec(db, db_schema);

	if (rc == SQLITE_OK && db_prepare(db, error, error_len) != 0) {
		rc = SQLITE_ERROR;
	}
	if (rc == SQLITE_OK) {
		rc = db_meta_set(db, "schema_version", ZOS_DB_SCHEMA_VERSION);
	}
	return rc;
}

int
zos_db_create(struct zos_db *db, char *error, size_t error_len)
{
	uint64_t start = db_now_ns();
	int      rc    = db_begin(db);

	if (rc == SQLITE_OK) {
		rc = db_make_schema(db, error, error_len);
	}
	return db_end(db, rc, start, error, error_len) == 0 ? 0 : -1;
}

int
zos_db_load_skills(struct zos_db *db, struct zos_skill_vector **out,
    uint64_t *version, char *error, size_t error_len)
{
	sqlite3_stmt *st;
	const char   *names[ZOS_SKILLS_MAX];
	char         *owned[ZOS_SKILLS_MAX];
	double        levels[ZOS_SKILLS_MAX];
	uint64_t      attempts[ZOS_SKILLS_MAX];
	size_t        n = 0;
	int64_t       v;
	int           rc, result = -1;
	char          message[256];

	*out     = NULL;
	*version = 0;
	if (zos_db_meta(db, "skills_version", &v, error, error_len) != 0) {
		return -1;
	}
	rc = sqlite3_prepare_v2(db->conn,
	    "SELECT name, level, attempts FROM skills ORDER BY rowid", -1, &st,
	    NULL);
	if (rc != SQLITE_OK) {
		db_error(db, "cannot be read", rc, error, error_len);
		return -1;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *name = (const char *) sqlite3_column_text(st, 0);

		if (n == ZOS_SKILLS_MAX) {
			snprintf(error, error_len,
			    "%s: more than %d skills (database is corrupt)",
			    db->path, ZOS_SKILLS_MAX);
			goto done;
		}
		if ((owned[n] = strdup(name != NULL ? name : "")) == NULL) {
			snprintf(error, error_len, "out of memory");
			goto done;
		}
		names[n]    = owned[n];
		levels[n]   = sqlite3_column_double(st, 1);
		attempts[n] = (uint64_t) sqlite3_column_int64(st, 2);
		n++;
	}
	if (rc != SQLITE_DONE) {
		db_error(db, "cannot be read", rc, error, error_len);
		goto done;
	}
	if (n == 0) {
		result = 0; /* none stored yet */
		goto done;
	}
	if (zos_skill_vector_restore(n, names, levels, attempts, (uint64_t) v,
	        out, message, sizeof(message)) != ZOS_SKILLS_OK) {
		snprintf(error, error_len,
		    "%s: skills: %s (database is corrupt)", db->path, message);
		goto done;
	}
	*version = (uint64_t) v;
	result   = 0;
done:
	sqlite3_finalize(st);
	for (size_t i = 0; i < n; i++) {
		free(owned[i]);
	}
	return result;
}

/* Copies column COL of ST (text) into DST of CAP bytes. False when it
 * does not fit. */
static bool
db_copy_text(sqlite3_stmt *st, int col, char *dst, size_t cap)
{
	const unsigned char *text = sqlite3_column_text(st, col);
	int                  len  = sqlite3_column_bytes(st, col);

	if (text == NULL || len < 0 || (size_t) len >= cap) {
		return false;
	}
	memcpy(dst, text, (size_t) len);
	dst[len] = '\0';
	return true;
}

int
zos_db_load_sessions(struct zos_db *db, struct zos_sessions_image *out,
    char *error, size_t error_len)
{
	sqlite3_stmt *st    = NULL;
	int64_t       count = 0, seq = 0;
	size_t        n = 0;
	int           rc;

	memset(out, 0, sizeof(*out));
	if (zos_db_meta(db, "sessions_seq", &seq, error, error_len) != 0) {
		return -1;
	}
	if (db_scalar(db, "SELECT count(*) FROM sessions", &count, error,
	        error_len) != 0) {
		return -1;
	}
	if (count < 0 || (uint64_t) count > ZOS_SESSIONS_LIMIT_MAX) {
		snprintf(error, error_len,
		    "%s: %" PRId64 " sessions, more than any zosd keeps (%d)",
		    db->path, count, ZOS_SESSIONS_LIMIT_MAX);
		return -1;
	}
	if (count > 0 &&
	    (out->sessions = calloc((size_t) count, sizeof(*out->sessions))) ==
	        NULL) {
		snprintf(error, error_len,
		    "out of memory for %" PRId64 " sessions", count);
		return -1;
	}
	rc = sqlite3_prepare_v2(db->conn,
	    "SELECT id, problem_id, state, version, created_unix_ms, "
	    "updated_unix_ms, owner FROM sessions",
	    -1, &st, NULL);
	if (rc != SQLITE_OK) {
		db_error(db, "cannot be read", rc, error, error_len);
		zos_sessions_image_finish(out);
		return -1;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct zos_session *e;

		if (n == (size_t) count) {
			break; /* rows added since the count: cannot be */
		}
		e = &out->sessions[n];
		if (!db_copy_text(st, 0, e->id, sizeof(e->id)) ||
		    !db_copy_text(
		        st, 1, e->problem_id, sizeof(e->problem_id))) {
			snprintf(error, error_len,
			    "%s: session row %zu: id or problem id too long "
			    "(database is corrupt)",
			    db->path, n + 1);
			goto fail;
		}
		e->state   = (enum zos_proof_state) sqlite3_column_int(st, 2);
		e->version = (uint64_t) sqlite3_column_int64(st, 3);
		e->created_unix_ms = sqlite3_column_int64(st, 4);
		e->updated_unix_ms = sqlite3_column_int64(st, 5);
		e->owner           = (uint64_t) sqlite3_column_int64(st, 6);
		n++;
	}
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		db_error(db, "cannot be read", rc, error, error_len);
		goto fail;
	}
	sqlite3_finalize(st);
	out->count = n;
	out->seq   = (uint64_t) seq;
	return 0;

fail:
	sqlite3_finalize(st);
	zos_sessions_image_finish(out);
	return -1;
}

int
zos_db_write_skills(struct zos_db *db, const struct zos_skill_vector *v,
    char *message, size_t message_len)
{
	uint64_t start = db_now_ns();
	int      rc    = db_begin(db);

	if (rc == SQLITE_OK) {
		rc = db_put_skills(db, v);
	}
	return db_end(db, rc, start, message, message_len);
}

int
zos_db_write_sessions(struct zos_db   *db,
    const struct zos_sessions_changes *changes, char *message,
    size_t message_len)
{
	uint64_t start = db_now_ns();
	int      rc    = db_begin(db);

	for (size_t i = 0; rc == SQLITE_OK && i < changes->count; i++) {
		const struct zos_session_change *r = &changes->rows[i];

		if (r->removed) {
			sqlite3_stmt *st = db->stmt[DB_SESSION_DEL];

			sqlite3_bind_text(st, 1, r->s.id, -1, SQLITE_STATIC);
			rc = db_run(st);
		} else {
			rc = db_put_session(db, &r->s);
		}
	}
	if (rc == SQLITE_OK) {
		rc = db_meta_set(db, "sessions_seq", (int64_t) changes->seq);
	}
	return db_end(db, rc, start, message, message_len);
}

int
zos_db_import(struct zos_db *db, const struct zos_skill_vector *skills,
    const struct zos_sessions_image *image,
    void (*step)(void *arg, const char *name), void *arg, char *error,
    size_t error_len)
{
	uint64_t start = db_now_ns();
	int      rc    = db_begin(db);

	if (rc == SQLITE_OK) {
		rc = db_make_schema(db, error, error_len);
	}
	if (rc == SQLITE_OK) {
		step(arg, "import-begun");
	}
	if (rc == SQLITE_OK && skills != NULL) {
		rc = db_put_skills(db, skills);
	}
	for (size_t i = 0;
	     rc == SQLITE_OK && image != NULL && i < image->count; i++) {
		rc = db_put_session(db, &image->sessions[i]);
	}
	if (rc == SQLITE_OK && image != NULL) {
		rc = db_meta_set(db, "sessions_seq", (int64_t) image->seq);
	}
	if (rc == SQLITE_OK) {
		rc = db_meta_set(db, "imported_snapshots", 1);
	}
	if (rc == SQLITE_OK) {
		step(arg, "import-inserted");
	}
	return db_end(db, rc, start, error, error_len) == 0 ? 0 : -1;
}

void
zos_db_stats(const struct zos_db *db, uint64_t *commits,
    uint64_t *bytes_written, uint64_t *commit_ns_sum, uint64_t *commit_ns_max)
{
	*commits = atomic_load_explicit(&db->commits, memory_order_relaxed);
	*bytes_written =
	    atomic_load_explicit(&db->bytes_written, memory_order_relaxed);
	*commit_ns_sum =
	    atomic_load_explicit(&db->commit_ns_sum, memory_order_relaxed);
	*commit_ns_max =
	    atomic_load_explicit(&db->commit_ns_max, memory_order_relaxed);
}

void
zos_db_close(struct zos_db *db)
{
	if (db == NULL) {
		return;
	}
	db_free(db);
}
