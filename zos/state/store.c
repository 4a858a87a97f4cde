/*
 * Durable skills and sessions; see store.h for the contract.
 *
 * The store is a facade over three modules, each with one reason to
 * change:
 *   snapshot.c  the file format and how a file is replaced safely
 *               (header, CRC, tmp + fsync + rename + fsync dir, the
 *               corrupt and torn checks);
 *   codec.c     what the bytes mean: a skill vector or a sessions image
 *               <-> a zos.storage.v1 payload;
 *   flusher.c   when to write: one thread, commit requests grouped into
 *               one write, each answered exactly once.
 * What is left here is what ties them to a data directory and to the
 * state: opening (create, lock, clean up, read back), the write function
 * the flusher calls (copy the part, encode it, frame it, write it), and
 * closing in the right order. Replacing the snapshot files by a database
 * means a new write function and a new open; the flusher and its promise
 * stay, and the reader and codec stay for importing an old directory.
 *
 * Locks. The store takes zOS locks only inside zos_skills_get and
 * zos_sessions_snapshot, for a copy, on the flusher thread; encoding,
 * writing and fsync run with no lock at all. Until zos_store_start gives
 * it the state's lock domain, the store checks its own I/O against a
 * domain of its own (same abort-or-count rule as zosd), so open is checked
 * as well. The flusher's mutex (flusher.h) is the only lock of the store's
 * own, and it is a leaf.
 *
 * Ownership. The store owns its paths, the directory's descriptors (the
 * flock lives as long as LOCK_FD), the flusher, and what it read at open
 * until zos_store_take_skills and zos_store_take_sessions hand it over.
 */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codec.h"
#include "flusher.h"
#include "snapshot.h"

#define STORE_MESSAGE_MAX 512

static const char *const store_part_names[ZOS_FLUSHER_PARTS] = { "skills",
	"sessions" };

struct store_part {
	char *path;     /* immutable; DIR/PART.snap */
	char *tmp_path; /* immutable; DIR/PART.snap.tmp */
};

struct zos_store {
	char       *dir;       /* immutable; as given */
	char       *lock_path; /* immutable; DIR/LOCK */
	int         lock_fd;   /* holds the flock */
	zrpc_log_fn log;
	void       *log_arg;

	/* I/O is checked against SNAPSHOTS.locks: OWN_LOCKS until start,
	 * then the state's. Set before the flusher runs; read-only after. */
	struct zos_lock_domain  own_locks;
	struct zos_snapshot_dir snapshots;
	struct store_part       parts[ZOS_FLUSHER_PARTS];

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

	struct zos_flusher  *flusher;
	atomic_uint_fast64_t failures; /* writes that failed */
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

/*
 * Copies the skill vector and, when its version is newer than what is
 * durable, encodes and frames it into *OUT (LEN bytes; NULL when not
 * newer). *SEQ is the copy's version. Returns 0 or an errno value.
 */
static int
store_encode_skills(struct zos_store *store, bool on_disk, uint64_t durable,
    uint8_t **out, size_t *len, uint64_t *seq, char *message,
    size_t message_len)
{
	struct zos_skill_vector *v = zos_skills_get(store->skills);
	size_t                   payload_len;
	int                      rv = 0;

	*out = NULL;
	*seq = v->version;
	if (on_disk && v->version <= durable) {
		goto done; /* the file already has it, or newer */
	}
	if ((rv = zos_codec_encode_skills(v, ZOS_SNAPSHOT_HEADER_LEN, out,
	         &payload_len, message, message_len)) != 0) {
		goto done;
	}
	zos_snapshot_frame(*out, ZOS_STORE_SKILLS, payload_len, v->version);
	*len = ZOS_SNAPSHOT_HEADER_LEN + payload_len;

done:
	zos_skill_vector_unref(v);
	return rv;
}

/* As store_encode_skills, for the session table. */
static int
store_encode_sessions(struct zos_store *store, bool on_disk, uint64_t durable,
    uint8_t **out, size_t *len, uint64_t *seq, char *message,
    size_t message_len)
{
	struct zos_sessions_image image;
	size_t                    payload_len;
	int                       rv = 0;

	*out = NULL;
	if (zos_sessions_snapshot(store->sessions, &image) != ZOS_SESSION_OK) {
		snprintf(message, message_len, "copy sessions: out of memory");
		return ENOMEM;
	}
	*seq = image.seq;
	if (on_disk && image.seq <= durable) {
		goto done;
	}
	if ((rv = zos_codec_encode_sessions(&image, ZOS_SNAPSHOT_HEADER_LEN,
	         ZOS_SNAPSHOT_PAYLOAD_MAX, out, &payload_len, message,
	         message_len)) != 0) {
		goto done;
	}
	zos_snapshot_frame(*out, ZOS_STORE_SESSIONS, payload_len, image.seq);
	*len = ZOS_SNAPSHOT_HEADER_LEN + payload_len;

done:
	zos_sessions_image_finish(&image);
	return rv;
}

/*
 * The flusher's write function (flusher.h): one copy of PART, written to
 * its snapshot file when it is newer than the file. Runs on the flusher
 * thread with no lock held.
 */
static int
store_write_part(void *arg, enum zos_store_part part, bool on_disk,
    uint64_t durable, uint64_t *seq, bool *wrote, char *message,
    size_t message_len)
{
	struct zos_store        *store = arg;
	const struct store_part *p     = &store->parts[part - 1];
	uint8_t                 *buf   = NULL;
	size_t                   len   = 0;
	int                      rv;

	*wrote = false;
	if (part == ZOS_STORE_SKILLS) {
		rv = store_encode_skills(store, on_disk, durable, &buf, &len,
		    seq, message, message_len);
	} else {
		rv = store_encode_sessions(store, on_disk, durable, &buf, &len,
		    seq, message, message_len);
	}
	if (rv == 0 && buf != NULL) {
		rv     = zos_snapshot_write(&store->snapshots, p->path,
		        p->tmp_path, buf, len, message, message_len);
		*wrote = rv == 0;
	}
	free(buf);
	if (rv != 0) {
		atomic_fetch_add_explicit(
		    &store->failures, 1, memory_order_relaxed);
		store_log(store, ZRPC_LOG_ERROR, "store: %s", message);
	}
	return rv;
}

/*
 * Reads and verifies part INDEX + 1's file. Returns 1 with *PAYLOAD
 * (malloc'd, *LEN bytes) and *SEQ, 0 when there is none, or -1 with ERROR.
 */
static int
store_read_part(struct zos_store *store, size_t index, uint8_t **payload,
    size_t *len, uint64_t *seq, char *error, size_t error_len)
{
	return zos_snapshot_read(&store->snapshots, store->parts[index].path,
	    (uint32_t) (index + 1), payload, len, seq, error, error_len);
}

/* Reads skills.snap into loaded_skills. Returns 0 or -1 with ERROR. */
static int
store_load_skills(struct zos_store *store, char *error, size_t error_len)
{
	const struct store_part *p = &store->parts[ZOS_STORE_SKILLS - 1];
	char                     message[384];
	uint8_t                 *payload;
	size_t                   len;
	uint64_t                 seq;
	int                      rv;

	if ((rv = store_read_part(store, ZOS_STORE_SKILLS - 1, &payload, &len,
	         &seq, error, error_len)) <= 0) {
		return rv;
	}
	rv = zos_codec_decode_skills(payload, len, seq, &store->loaded_skills,
	    message, sizeof(message));
	free(payload);
	if (rv != 0) {
		snprintf(error, error_len, "%s: %s", p->path, message);
		return -1;
	}
	store->on_disk[ZOS_STORE_SKILLS - 1] = true;
	store->durable[ZOS_STORE_SKILLS - 1] = seq;
	return 0;
}

/* Reads sessions.snap into loaded_sessions. Returns 0 or -1 with ERROR.
 * The sessions themselves are checked by zos_sessions_restore. */
static int
store_load_sessions(struct zos_store *store, char *error, size_t error_len)
{
	const struct store_part *p = &store->parts[ZOS_STORE_SESSIONS - 1];
	char                     message[384];
	uint8_t                 *payload;
	size_t                   len;
	uint64_t                 seq;
	int                      rv;

	if ((rv = store_read_part(store, ZOS_STORE_SESSIONS - 1, &payload,
	         &len, &seq, error, error_len)) <= 0) {
		return rv;
	}
	rv = zos_codec_decode_sessions(payload, len, seq,
	    &store->loaded_sessions, message, sizeof(message));
	free(payload);
	if (rv != 0) {
		snprintf(error, error_len, "%s: %s", p->path, message);
		return -1;
	}
	store->have_loaded_sessions            = true;
	store->on_disk[ZOS_STORE_SESSIONS - 1] = true;
	store->durable[ZOS_STORE_SESSIONS - 1] = seq;
	return 0;
}

/* Removes the temporary files a crash left. Returns 0 or -1 with ERROR. */
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
	store->lock_fd =
	    open(store->lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (store->lock_fd < 0) {
		snprintf(error, error_len, "%s: %s", store->lock_path,
		    strerror(errno));
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
	}
	free(store->lock_path);
	free(store->dir);
	free(store);
}

int
zos_store_open(const struct zos_store_config *config, struct zos_store **out,
    char *error, size_t error_len)
{
	struct zos_store *store;
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
	store->log     = config->log;
	store->log_arg = config->log_arg;
	store->lock_fd = -1;
	zos_lock_domain_init(&store->own_locks, ZOS_LOCK_CHECKS != 0,
	    config->log, config->log_arg);
	store->snapshots.fd    = -1;
	store->snapshots.locks = &store->own_locks;
	snprintf(error, error_len, "out of memory");
	if ((store->dir = strdup(config->dir)) == NULL ||
	    (store->lock_path = store_path(config->dir, "LOCK")) == NULL) {
		goto fail_dir;
	}
	store->snapshots.path = store->dir;
	for (size_t i = 0; i < ZOS_FLUSHER_PARTS; i++) {
		struct store_part *p = &store->parts[i];
		char               name[32];

		snprintf(name, sizeof(name), "%s.snap", store_part_names[i]);
		if ((p->path = store_path(config->dir, name)) == NULL) {
			goto fail_dir;
		}
		snprintf(
		    name, sizeof(name), "%s.snap.tmp", store_part_names[i]);
		if ((p->tmp_path = store_path(config->dir, name)) == NULL) {
			goto fail_dir;
		}
	}

	if ((rv = zos_snapshot_dir_open(&store->snapshots)) != 0) {
		snprintf(
		    error, error_len, "%s: %s", config->dir, strerror(rv));
		goto fail_dir;
	}
	store_check_dir_mode(store);
	if (store_lock_dir(store, error, error_len) != 0 ||
	    store_remove_leftovers(store, error, error_len) != 0 ||
	    store_load_skills(store, error, error_len) != 0) {
		goto fail_lock;
	}
	if (store_load_sessions(store, error, error_len) != 0) {
		goto fail_skills;
	}
	if (zos_flusher_create(&store->flusher, store->on_disk, store->durable,
	        message, sizeof(message)) != 0) {
		snprintf(error, error_len, "%s: %s", config->dir, message);
		goto fail_sessions;
	}
	if (!store->on_disk[0] && !store->on_disk[1]) {
		store_log(store, ZRPC_LOG_INFO,
		    "data directory %s: new, nothing stored yet", config->dir);
	} else {
		store_log(store, ZRPC_LOG_INFO,
		    "data directory %s: skills at version %llu, sessions at "
		    "change %llu",
		    config->dir, (unsigned long long) store->durable[0],
		    (unsigned long long) store->durable[1]);
	}
	*out = store;
	return 0;

fail_sessions:
	zos_sessions_image_finish(&store->loaded_sessions);
fail_skills:
	zos_skill_vector_unref(store->loaded_skills);
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
	int rv;

	if (store->started) {
		return EALREADY;
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
	const struct zos_snapshot_dir *d = &store->snapshots;

	out->commits =
	    atomic_load_explicit(&d->stats.commits, memory_order_relaxed);
	out->commit_waiters = zos_flusher_commit_waiters(store->flusher);
	out->failures =
	    atomic_load_explicit(&store->failures, memory_order_relaxed);
	out->bytes_written = atomic_load_explicit(
	    &d->stats.bytes_written, memory_order_relaxed);
	out->fsync_ns_sum =
	    atomic_load_explicit(&d->stats.fsync_ns_sum, memory_order_relaxed);
	out->fsync_count =
	    atomic_load_explicit(&d->stats.fsync_count, memory_order_relaxed);
	out->fsync_ns_max =
	    atomic_load_explicit(&d->stats.fsync_ns_max, memory_order_relaxed);
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
	/* First: the flusher may still copy from the parts and write. */
	zos_flusher_destroy(store->flusher);
	zos_skill_vector_unref(store->loaded_skills);
	zos_sessions_image_finish(&store->loaded_sessions);
	close(store->lock_fd); /* drops the flock */
	zos_snapshot_dir_close(&store->snapshots);
	store_free(store);
}
