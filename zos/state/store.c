/*
 * Durable skills and sessions; see store.h for the contract.
 *
 * The store is a facade over three modules, each with one reason to
 * change:
 *   db.c        the database: schema, checks before open, statements,
 *               one transaction per commit;
 *   flusher.c   when to write: one thread, commit requests grouped into
 *               one commit, each answered exactly once;
 *   snapshot.c  and codec.c: the old snapshot files, read once to import
 *               an old data directory.
 * What is left here is what ties them to a data directory and to the
 * state: opening (create, lock, import, read back), the write function
 * the flusher calls (take the part's changes, write them, tell the part
 * it is durable or undo it), the directory's identity check before each
 * commit, health, and closing in the right order.
 *
 * Locks. The store takes zOS locks only inside the parts' own functions
 * (zos_sessions_take_changes and friends, zos_skills_latest, ...), for
 * short in-memory steps on the flusher thread; every SQLite call runs
 * with no lock at all. Until zos_store_start gives it the state's lock
 * domain, the store checks its own I/O against a domain of its own (same
 * abort-or-count rule as zosd), so open is checked as well. The flusher's
 * mutex (flusher.h) is the only lock of the store's own, and it is a
 * leaf; the health flags are atomics written by the flusher thread only.
 *
 * Ownership. The store owns its paths, the directory's descriptors (the
 * flock lives as long as LOCK_FD), the database, the flusher, and what it
 * read at open until zos_store_take_skills and zos_store_take_sessions
 * hand it over.
 */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codec.h"
#include "db.h"
#include "flusher.h"
#include "snapshot.h"

#define STORE_MESSAGE_MAX 512

static const char *const store_part_names[ZOS_FLUSHER_PARTS] = { "skills",
	"sessions" };

#define STORE_DB_NAME "zos.db"

/* An old snapshot file of a part, for the import. */
struct store_part {
	char *path;          /* immutable; DIR/PART.snap */
	char *tmp_path;      /* immutable; DIR/PART.snap.tmp */
	char *imported_path; /* immutable; DIR/PART.snap.imported */
};

struct zos_store {
	char       *dir;       /* immutable; as given */
	char       *lock_path; /* immutable; DIR/LOCK */
	char       *db_path;   /* immutable; DIR/zos.db */
	int         lock_fd;   /* holds the flock */
	dev_t       dir_dev;   /* immutable; the directory locked */
	ino_t       dir_ino;
	zrpc_log_fn log;
	void       *log_arg;
	void (*health)(void *arg, bool ok, const char *why);
	void       *health_arg;
	const char *crash_point; /* test hook: ZOS_TEST_CRASH_POINT */

	/* I/O is checked against SNAPSHOTS.locks: OWN_LOCKS until start,
	 * then the state's. Set before the flusher runs; read-only after. */
	struct zos_lock_domain  own_locks;
	struct zos_snapshot_dir snapshots;
	struct store_part       parts[ZOS_FLUSHER_PARTS];
	struct zos_db          *db; /* the opener's, then the flusher's */

	/* Read at open, until taken (before start). */
	struct zos_skill_vector  *loaded_skills;
	struct zos_sessions_image loaded_sessions;
	bool                      have_loaded_sessions;
	bool                      on_disk[ZOS_FLUSHER_PARTS];
	uint64_t                  durable[ZOS_FLUSHER_PARTS];

	/* Set by start, before the flusher runs. */
	struct zos_skills   *skills;
	struct zos_sessions *sessions;
	bool                 started;

	struct zos_flusher *flusher;
	/* The flusher thread's own. */
	bool failing[ZOS_FLUSHER_PARTS];
	bool replaced; /* the directory is not the one locked any more */
	/* Written by the flusher thread; read by metrics. */
	atomic_bool          healthy;
	atomic_uint_fast64_t failures; /* commits that failed */
};

static void store_log(struct zos_store *store, zrpc_log_level level,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
store_log(struct zos_store *store, zrpc_log_level level, const char *fmt, ...)
{
	char    text[STORE_MESSAGE_MAX];
	va_list ap;

	if (store->log == NULL) {
		return;
	}
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	store->log(store->log_arg, level, text);
}

/* "DIR/NAME" in a new allocation, or NULL. */
static char *
store_path(const char *dir, const char *name)
{
	size_t len = strlen(dir) + 1 + strlen(name) + 1;
	char  *path;

	if ((path = malloc(len)) != NULL) {
		snprintf(path, len, "%s/%s", dir, name);
	}
	return path;
}

/* The test hook: dies by SIGKILL at step NAME of the import when the
 * environment asked for it (tests/integration: a crash at each step). */
static void
store_step(void *arg, const char *name)
{
	struct zos_store *store = arg;

	if (store->crash_point != NULL &&
	    strcmp(store->crash_point, name) == 0) {
		store_log(store, ZRPC_LOG_WARN,
		    "store: ZOS_TEST_CRASH_POINT=%s: killing myself", name);
		raise(SIGKILL);
	}
}

/*
 * Checks that DIR still names the directory the store locked (the
 * directory may have been removed and made again, by another zosd even,
 * and writing on would write into a file nobody will read). Returns 0 or
 * ESTALE with MESSAGE; once failed, always fails.
 */
static int
store_check_dir(struct zos_store *store, char *message, size_t message_len)
{
	struct stat st;

	if (!store->replaced &&
	    (stat(store->dir, &st) != 0 || st.st_dev != store->dir_dev ||
	        st.st_ino != store->dir_ino)) {
		store->replaced = true;
	}
	if (store->replaced) {
		snprintf(message, message_len,
		    "%s: the data directory was removed or replaced since "
		    "zosd locked it (device/inode changed); nothing more is "
		    "written: restart zosd",
		    store->dir);
		return ESTALE;
	}
	return 0;
}

/* Notes the outcome RV of a commit of PART; tells config.health when
 * the store's health changed. Flusher thread. */
static void
store_note_health(struct zos_store *store, enum zos_store_part part, int rv,
    const char *message)
{
	bool was = atomic_load_explicit(&store->healthy, memory_order_relaxed);
	bool now;

	store->failing[part - 1] = rv != 0;
	now = !store->replaced && !store->failing[0] && !store->failing[1];
	if (rv != 0) {
		atomic_fetch_add_explicit(
		    &store->failures, 1, memory_order_relaxed);
	}
	if (now == was) {
		return;
	}
	atomic_store_explicit(&store->healthy, now, memory_order_relaxed);
	if (now) {
		store_log(store, ZRPC_LOG_INFO,
		    "store: %s: commits work again", store->db_path);
	} else {
		store_log(store, ZRPC_LOG_ERROR,
		    "store: cannot commit (%s); changes are undone and "
		    "refused "
		    "until a commit works again (retried every %d ms)",
		    message, ZOS_FLUSHER_RETRY_MS);
	}
	if (store->health != NULL) {
		store->health(store->health_arg, now, now ? "" : message);
	}
}

/* Writes the latest skill vector when it is newer than what is durable
 * (or, while failing, to find out whether commits work again). */
static int
store_write_skills(struct zos_store *store, bool on_disk, uint64_t durable,
    uint64_t *seq, bool *wrote, uint64_t *undone, char *message,
    size_t message_len)
{
	struct zos_skill_vector *v = zos_skills_latest(store->skills);
	int                      rv;

	*seq = v->change_seq;
	if (on_disk && v->change_seq <= durable &&
	    !store->failing[ZOS_STORE_SKILLS - 1]) {
		zos_skill_vector_unref(v);
		return 0;
	}
	if ((rv = store_check_dir(store, message, message_len)) == 0) {
		rv = zos_db_write_skills(store->db, v, message, message_len);
	}
	if (rv == 0) {
		zos_skills_durable(store->skills, v);
		*wrote = true;
	} else {
		*undone = zos_skills_undo(store->skills);
	}
	zos_skill_vector_unref(v);
	return rv;
}

/* Writes the session rows changed since the last commit (or, while
 * failing, an empty commit to find out whether commits work again). */
static int
store_write_sessions(struct zos_store *store, bool on_disk, uint64_t durable,
    uint64_t *seq, bool *wrote, uint64_t *undone, char *message,
    size_t message_len)
{
	struct zos_sessions_changes changes;
	int                         rv;

	if (zos_sessions_take_changes(store->sessions, &changes) !=
	    ZOS_SESSION_OK) {
		snprintf(message, message_len,
		    "take the changed sessions: out of memory");
		return ENOMEM;
	}
	*seq = changes.seq;
	if (on_disk && changes.count == 0 && changes.seq <= durable &&
	    !store->failing[ZOS_STORE_SESSIONS - 1]) {
		zos_sessions_changes_finish(&changes);
		return 0;
	}
	if (on_disk && changes.seq < durable) {
		/* A table behind the database (not restored from it): its
		 * rows would set the change count back below the versions
		 * stored. Never written; its waiters hear EINVAL. */
		store_log(store, ZRPC_LOG_ERROR,
		    "store: the session table (change %llu) is behind %s "
		    "(change %llu); not written",
		    (unsigned long long) changes.seq, store->db_path,
		    (unsigned long long) durable);
		zos_sessions_changes_finish(&changes);
		return 0;
	}
	if ((rv = store_check_dir(store, message, message_len)) == 0) {
		rv = zos_db_write_sessions(
		    store->db, &changes, message, message_len);
	}
	if (rv == 0) {
		zos_sessions_changes_durable(store->sessions, &changes);
		*wrote = true;
	} else {
		*undone =
		    zos_sessions_changes_failed(store->sessions, &changes);
	}
	zos_sessions_changes_finish(&changes);
	return rv;
}

/*
 * The flusher's write function (flusher.h): one transaction of PART's
 * changes. Runs on the flusher thread with no lock held.
 */
static int
store_write_part(void *arg, enum zos_store_part part, bool on_disk,
    uint64_t durable, uint64_t *seq, bool *wrote, uint64_t *undone,
    char *message, size_t message_len)
{
	struct zos_store *store = arg;
	int               rv;

	*wrote = false;
	zos_assert_no_locks_held(store->snapshots.locks, "store commit");
	if (part == ZOS_STORE_SKILLS) {
		rv = store_write_skills(store, on_disk, durable, seq, wrote,
		    undone, message, message_len);
	} else {
		rv = store_write_sessions(store, on_disk, durable, seq, wrote,
		    undone, message, message_len);
	}
	store_note_health(store, part, rv, message);
	return rv;
}

/*
 * Reads old snapshot file of part INDEX + 1 and decodes it into
 * *SKILLS or *IMAGE (*HAVE). Returns 0 (also when there is none) or -1
 * with ERROR.
 */
static int
store_read_snapshot(struct zos_store *store, size_t index,
    struct zos_skill_vector **skills, struct zos_sessions_image *image,
    bool *have, char *error, size_t error_len)
{
	const struct store_part *p = &store->parts[index];
	char                     message[384];
	uint8_t                 *payload;
	size_t                   len;
	uint64_t                 seq;
	int                      rv;

	*have = false;
	if ((rv = zos_snapshot_read(&store->snapshots, p->path,
	         (uint32_t) (index + 1), &payload, &len, &seq, error,
	         error_len)) <= 0) {
		return rv;
	}
	if (index + 1 == ZOS_STORE_SKILLS) {
		rv = zos_codec_decode_skills(
		    payload, len, seq, skills, message, sizeof(message));
	} else {
		rv = zos_codec_decode_sessions(
		    payload, len, seq, image, message, sizeof(message));
	}
	free(payload);
	if (rv != 0) {
		snprintf(error, error_len, "%s: %s", p->path, message);
		return -1;
	}
	*have = true;
	return 0;
}

/* True when the old snapshot file of part INDEX + 1 is there. Sets
 * ERROR and returns -1 when it is there but not a regular file. */
static int
store_has_snapshot(
    struct zos_store *store, size_t index, char *error, size_t error_len)
{
	const char *name = strrchr(store->parts[index].path, '/') + 1;

	return zos_db_check_file(store->snapshots.fd, name,
	    store->parts[index].path, error, error_len);
}

/*
 * Renames the old snapshot files that were imported to *.snap.imported,
 * fsyncing the directory after each. AFTER_CRASH: the import committed
 * at an earlier start, which a crash cut short before its renames; a
 * part whose *.snap.imported is there already was renamed then, and a
 * *.snap beside it came later: it is left alone (never read, never
 * renamed over the first), with a warning. Returns 0 or -1 with ERROR.
 */
static int
store_retire_snapshots(
    struct zos_store *store, bool after_crash, char *error, size_t error_len)
{
	for (size_t i = 0; i < ZOS_FLUSHER_PARTS; i++) {
		const struct store_part *p = &store->parts[i];
		struct stat              st;
		int                      has;

		if ((has = store_has_snapshot(store, i, error, error_len)) <
		    0) {
			return -1;
		}
		if (has == 0) {
			continue;
		}
		if (after_crash && lstat(p->imported_path, &st) == 0) {
			store_log(store, ZRPC_LOG_WARN,
			    "store: %s is ignored: %s holds the data "
			    "(imported "
			    "from %s); move the file away",
			    p->path, store->db_path, p->imported_path);
			continue;
		}
		if (rename(p->path, p->imported_path) != 0 ||
		    fsync(store->snapshots.fd) != 0) {
			snprintf(error, error_len, "rename %s to %s: %s",
			    p->path, p->imported_path, strerror(errno));
			return -1;
		}
		store_log(store, ZRPC_LOG_INFO,
		    "store: %s imported into %s, kept as %s", p->path,
		    store->db_path, p->imported_path);
		if (i == 0) {
			store_step(store, "import-renamed-one");
		}
	}
	return 0;
}

/*
 * Imports the old snapshot files (when any) into the new, empty
 * database, in one transaction, then retires them; or makes the schema.
 * Returns 0 or -1 with ERROR.
 */
static int
store_import_or_create(struct zos_store *store, char *error, size_t error_len)
{
	struct zos_skill_vector  *skills = NULL;
	struct zos_sessions_image image  = { 0 };
	bool                      have_skills, have_sessions;
	int                       rv = -1;

	if (store_read_snapshot(store, 0, &skills, NULL, &have_skills, error,
	        error_len) != 0 ||
	    store_read_snapshot(store, 1, NULL, &image, &have_sessions, error,
	        error_len) != 0) {
		goto done;
	}
	if (!have_skills && !have_sessions) {
		rv = zos_db_create(store->db, error, error_len);
		goto done;
	}
	store_log(store, ZRPC_LOG_INFO,
	    "store: importing the snapshot files of %s (%zu sessions) into "
	    "%s",
	    store->dir, have_sessions ? image.count : 0, store->db_path);
	if (zos_db_import(store->db, have_skills ? skills : NULL,
	        have_sessions ? &image : NULL, store_step, store, error,
	        error_len) != 0) {
		goto done;
	}
	store_step(store, "import-committed");
	rv = store_retire_snapshots(store, false, error, error_len);
done:
	zos_skill_vector_unref(skills);
	zos_sessions_image_finish(&image);
	return rv;
}

/*
 * Narrows zos.db and SQLite's files beside it to 0600 when group or
 * others may read them (a backup copied in with cp is 0644, and SQLite
 * gives -wal and -shm the database's mode), with a warning. Only regular
 * files: anything else is refused by zos_db_open.
 */
static void
store_narrow_db_modes(struct zos_store *store)
{
	static const char *const names[] = { STORE_DB_NAME,
		STORE_DB_NAME "-wal", STORE_DB_NAME "-shm" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		struct stat st;

		if (fstatat(store->snapshots.fd, names[i], &st,
		        AT_SYMLINK_NOFOLLOW) != 0 ||
		    !S_ISREG(st.st_mode) || (st.st_mode & 077) == 0) {
			continue;
		}
		if (fchmodat(store->snapshots.fd, names[i], 0600, 0) == 0) {
			store_log(store, ZRPC_LOG_WARN,
			    "%s/%s had mode %04o (group or others could read "
			    "it); changed to 0600",
			    store->dir, names[i],
			    (unsigned) (st.st_mode & 07777));
		} else {
			store_log(store, ZRPC_LOG_WARN,
			    "%s/%s has mode %04o and cannot be changed: %s",
			    store->dir, names[i],
			    (unsigned) (st.st_mode & 07777), strerror(errno));
		}
	}
}

/*
 * Opens DIR/zos.db (importing an old directory into a new database, or
 * finishing an import a crash cut short) and reads every row into
 * loaded_skills and loaded_sessions. Returns 0 or -1 with ERROR.
 */
static int
store_open_db(struct zos_store *store, char *error, size_t error_len)
{
	uint64_t skills_version;
	int64_t  imported;
	bool     created, empty;

	store_narrow_db_modes(store);
	if (zos_db_open(store->snapshots.fd, STORE_DB_NAME, store->db_path,
	        &store->db, &created, &empty, error, error_len) != 0) {
		return -1;
	}
	/* SQLite opened it by name: the name must still lead into the
	 * directory locked (and checked) through its descriptor. */
	if (store_check_dir(store, error, error_len) != 0) {
		return -1;
	}
	if (empty && store_import_or_create(store, error, error_len) != 0) {
		return -1;
	}
	if (!empty &&
	    (zos_db_meta(store->db, "imported_snapshots", &imported, error,
	         error_len) != 0 ||
	        (imported != 0 &&
	            store_retire_snapshots(store, true, error, error_len) !=
	                0))) {
		return -1;
	}
	if (zos_db_load_skills(store->db, &store->loaded_skills,
	        &skills_version, error, error_len) != 0 ||
	    zos_db_load_sessions(
	        store->db, &store->loaded_sessions, error, error_len) != 0) {
		return -1;
	}
	store->have_loaded_sessions =
	    store->loaded_sessions.count > 0 || store->loaded_sessions.seq > 0;
	store->on_disk[ZOS_STORE_SKILLS - 1]   = store->loaded_skills != NULL;
	store->durable[ZOS_STORE_SKILLS - 1]   = skills_version;
	store->on_disk[ZOS_STORE_SESSIONS - 1] = true;
	store->durable[ZOS_STORE_SESSIONS - 1] = store->loaded_sessions.seq;
	return 0;
}

/* Removes the temporary snapshot files an older zosd's crash left.
 * Returns 0 or -1 with ERROR. */
static int
store_remove_leftovers(struct zos_store *store, char *error, size_t error_len)
{
	for (size_t i = 0; i < ZOS_FLUSHER_PARTS; i++) {
		const char *tmp_path = store->parts[i].tmp_path;

		switch (zos_snapshot_remove_tmp(
		    &store->snapshots, tmp_path, error, error_len)) {
		case 1:
			store_log(store, ZRPC_LOG_WARN,
			    "store: removed %s, left over by a write that was "
			    "never acknowledged",
			    tmp_path);
			break;
		case 0:
			break;
		default:
			return -1;
		}
	}
	return 0;
}

/* Opens and flocks DIR/LOCK. Returns 0 or -1 with ERROR. */
static int
store_lock_dir(struct zos_store *store, char *error, size_t error_len)
{
	struct stat st;

	if (zos_db_check_file(store->snapshots.fd, "LOCK", store->lock_path,
	        error, error_len) < 0) {
		return -1;
	}
	store->lock_fd = openat(store->snapshots.fd, "LOCK",
	    O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
	if (store->lock_fd < 0 || fstat(store->lock_fd, &st) != 0) {
		snprintf(error, error_len, "%s: %s", store->lock_path,
		    strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(error, error_len, "%s: is not a regular file",
		    store->lock_path);
		return -1;
	}
	/* One made by an earlier version may be 0644. */
	(void) fchmod(store->lock_fd, 0600);
	if (flock(store->lock_fd, LOCK_EX | LOCK_NB) != 0) {
		if (errno == EWOULDBLOCK) {
			snprintf(error, error_len,
			    "%s: in use by another zosd", store->dir);
		} else {
			snprintf(error, error_len, "%s: %s", store->lock_path,
			    strerror(errno));
		}
		return -1;
	}
	return 0;
}

/* Narrows the data directory to 0700 when group or others have any
 * access to it, with a warning (see store.h). */
static void
store_check_dir_mode(struct zos_store *store)
{
	struct stat st;
	mode_t      mode;

	if (fstat(store->snapshots.fd, &st) != 0 || (st.st_mode & 077) == 0) {
		return;
	}
	mode = st.st_mode & 07777;
	if (fchmod(store->snapshots.fd, mode & ~(mode_t) 077) == 0) {
		store_log(store, ZRPC_LOG_WARN,
		    "data directory %s had mode %04o (group or others could "
		    "use it); changed to %04o",
		    store->dir, (unsigned) mode,
		    (unsigned) (mode & ~(mode_t) 077));
	} else {
		store_log(store, ZRPC_LOG_WARN,
		    "data directory %s has mode %04o (group or others can "
		    "use it) and cannot be changed: %s",
		    store->dir, (unsigned) mode, strerror(errno));
	}
}

/* Frees the paths of STORE and STORE itself. */
static void
store_free(struct zos_store *store)
{
	for (size_t i = 0; i < ZOS_FLUSHER_PARTS; i++) {
		free(store->parts[i].path);
		free(store->parts[i].tmp_path);
		free(store->parts[i].imported_path);
	}
	free(store->db_path);
	free(store->lock_path);
	free(store->dir);
	free(store);
}

/* Makes STORE's paths. Returns 0 or -1 (out of memory). */
static int
store_make_paths(struct zos_store *store, const char *dir)
{
	if ((store->dir = strdup(dir)) == NULL ||
	    (store->lock_path = store_path(dir, "LOCK")) == NULL ||
	    (store->db_path = store_path(dir, STORE_DB_NAME)) == NULL) {
		return -1;
	}
	for (size_t i = 0; i < ZOS_FLUSHER_PARTS; i++) {
		struct store_part *p = &store->parts[i];
		char               name[32];

		snprintf(name, sizeof(name), "%s.snap", store_part_names[i]);
		if ((p->path = store_path(dir, name)) == NULL) {
			return -1;
		}
		snprintf(
		    name, sizeof(name), "%s.snap.tmp", store_part_names[i]);
		if ((p->tmp_path = store_path(dir, name)) == NULL) {
			return -1;
		}
		snprintf(name, sizeof(name), "%s.snap.imported",
		    store_part_names[i]);
		if ((p->imported_path = store_path(dir, name)) == NULL) {
			return -1;
		}
	}
	return 0;
}

int
zos_store_open(const struct zos_store_config *config, struct zos_store **out,
    char *error, size_t error_len)
{
	struct zos_store *store;
	struct stat       st;
	char              message[384];
	int               rv;

	if (config->dir == NULL || config->dir[0] == '\0') {
		snprintf(error, error_len, "no data directory given");
		return -1;
	}
	if ((store = calloc(1, sizeof(*store))) == NULL) {
		snprintf(error, error_len, "out of memory");
		return -1;
	}
	store->log         = config->log;
	store->log_arg     = config->log_arg;
	store->health      = config->health;
	store->health_arg  = config->health_arg;
	store->crash_point = getenv("ZOS_TEST_CRASH_POINT");
	store->lock_fd     = -1;
	atomic_init(&store->healthy, true);
	atomic_init(&store->failures, 0);
	zos_lock_domain_init(&store->own_locks, ZOS_LOCK_CHECKS != 0,
	    config->log, config->log_arg);
	store->snapshots.fd    = -1;
	store->snapshots.locks = &store->own_locks;
	if (store_make_paths(store, config->dir) != 0) {
		snprintf(error, error_len, "out of memory");
		goto fail_dir;
	}
	store->snapshots.path = store->dir;

	if ((rv = zos_snapshot_dir_open(&store->snapshots)) != 0) {
		snprintf(
		    error, error_len, "%s: %s", config->dir, strerror(rv));
		goto fail_dir;
	}
	if (fstat(store->snapshots.fd, &st) != 0) {
		snprintf(
		    error, error_len, "%s: %s", config->dir, strerror(errno));
		goto fail_lock;
	}
	store->dir_dev = st.st_dev;
	store->dir_ino = st.st_ino;
	store_check_dir_mode(store);
	if (store_lock_dir(store, error, error_len) != 0 ||
	    store_remove_leftovers(store, error, error_len) != 0 ||
	    store_open_db(store, error, error_len) != 0) {
		goto fail_db;
	}
	if (zos_flusher_create(&store->flusher, store->on_disk, store->durable,
	        message, sizeof(message)) != 0) {
		snprintf(error, error_len, "%s: %s", config->dir, message);
		goto fail_db;
	}
	store_log(store, ZRPC_LOG_INFO,
	    "data directory %s: %zu sessions (change %llu), skills at "
	    "version %llu",
	    store->db_path, store->loaded_sessions.count,
	    (unsigned long long) store->durable[ZOS_STORE_SESSIONS - 1],
	    (unsigned long long) store->durable[ZOS_STORE_SKILLS - 1]);
	*out = store;
	return 0;

fail_db:
	zos_sessions_image_finish(&store->loaded_sessions);
	zos_skill_vector_unref(store->loaded_skills);
	zos_db_close(store->db);
fail_lock:
	if (store->lock_fd >= 0) {
		close(store->lock_fd); /* drops the flock, if taken */
	}
	zos_snapshot_dir_close(&store->snapshots);
fail_dir:
	store_free(store);
	return -1;
}

struct zos_skill_vector *
zos_store_take_skills(struct zos_store *store)
{
	struct zos_skill_vector *v = store->loaded_skills;

	store->loaded_skills = NULL;
	return v;
}

bool
zos_store_take_sessions(
    struct zos_store *store, struct zos_sessions_image *out)
{
	bool had = store->have_loaded_sessions;

	*out = store->loaded_sessions;
	memset(&store->loaded_sessions, 0, sizeof(store->loaded_sessions));
	store->have_loaded_sessions = false;
	return had;
}

int
zos_store_start(struct zos_store *store, struct zos_skills *skills,
    struct zos_sessions *sessions)
{
	char message[384];
	int  rv;

	if (store->started) {
		return EALREADY;
	}
	if (zos_db_start_checkpointer(store->db, message, sizeof(message)) !=
	    0) {
		/* SQLite's own checkpoints, in the commits, then. */
		store_log(store, ZRPC_LOG_WARN, "store: %s", message);
	}
	store->skills          = skills;
	store->sessions        = sessions;
	store->snapshots.locks = skills->lock.domain;
	if ((rv = zos_flusher_start(
	         store->flusher, store_write_part, store)) != 0) {
		store->snapshots.locks = &store->own_locks;
		return rv;
	}
	store->started = true;
	return 0;
}

void
zos_store_commit(struct zos_store *store, enum zos_store_part part,
    uint64_t seq, zos_store_done_fn done, void *arg)
{
	zos_assert_no_locks_held(store->snapshots.locks, "store commit");
	zos_flusher_commit(store->flusher, part, seq, done, arg);
}

int
zos_store_commit_wait(struct zos_store *store, enum zos_store_part part,
    uint64_t seq, char *message, size_t message_len)
{
	zos_assert_no_locks_held(store->snapshots.locks, "store commit wait");
	return zos_flusher_commit_wait(
	    store->flusher, part, seq, message, message_len);
}

void
zos_store_stats(const struct zos_store *store, struct zos_store_stats *out)
{
	zos_db_stats(store->db, &out->commits, &out->bytes_written,
	    &out->commit_ns_sum, &out->commit_ns_max);
	out->commit_waiters = zos_flusher_commit_waiters(store->flusher);
	out->failures =
	    atomic_load_explicit(&store->failures, memory_order_relaxed);
	out->healthy =
	    atomic_load_explicit(&store->healthy, memory_order_relaxed);
}

const char *
zos_store_dir(const struct zos_store *store)
{
	return store->dir;
}

void
zos_store_close(struct zos_store *store)
{
	if (store == NULL) {
		return;
	}
	/* First: the flusher may still take changes and write. */
	zos_flusher_destroy(store->flusher);
	zos_db_close(store->db);
	zos_skill_vector_unref(store->loaded_skills);
	zos_sessions_image_finish(&store->loaded_sessions);
	close(store->lock_fd); /* drops the flock */
	zos_snapshot_dir_close(&store->snapshots);
	store_free(store);
}
