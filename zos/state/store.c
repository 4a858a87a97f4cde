/*
 * Durable skills and sessions; see store.h for the contract and the file
 * format.
 *
 * Requests. Each part keeps a FIFO of commit requests that no copy has
 * been taken for yet ("incoming"). The flusher takes a part's whole
 * incoming list as its batch, lets go of the mutex, takes one copy of the
 * part and writes it (if it is newer than the file), then settles the
 * batch. Every request in a batch was made after its caller's change, and
 * the copy was taken after the request, so the copy covers every request
 * in its batch: one write answers them all, and a request in a batch that
 * the copy does not cover asks for a number the part never reached
 * (EINVAL), which is how a bad number cannot make the flusher spin.
 * Requests that arrive during a write wait in incoming for the next
 * batch, unless the write just made them durable, in which case they are
 * settled with it. A request already covered by the file is settled in
 * zos_store_commit itself, on the caller's thread.
 *
 * Failure. A failed write settles its batch with the error; the file is
 * as it was (the temporary file is removed before any rename), except
 * when only the directory's fsync failed, when the new file is in place
 * but not known to be durable, so its number is not recorded. Requests
 * that arrive later make the next attempt, with a fresh copy at least as
 * new. The store never retries on its own: a caller told "failed" was
 * never told "durable", and the next caller's write covers both changes.
 *
 * Locks. The store's mutex guards the request lists, the durable numbers
 * and closing; it is a leaf (no zOS lock is taken under it, and it is
 * never held across I/O or a callback). The flusher takes zOS locks only
 * inside zos_skills_get and zos_sessions_snapshot, for a copy; encoding,
 * writing and fsync run with no lock at all. Until zos_store_start gives
 * it the state's lock domain, the store checks its own I/O against a
 * domain of its own (same abort-or-count rule as zosd), so open is checked
 * as well.
 *
 * Invariants under the mutex: a part's durable number is that of the
 * newest copy renamed in and fsync'd (or read at open), and never goes
 * down; every request is in exactly one of incoming, a batch in the
 * flusher, or the list being settled, and is settled exactly once.
 */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "zos/v1/storage.pb-c.h"
#include "zrpc/clock.h"

#define STORE_MAGIC "ZOSSNAP1"
#define STORE_HEADER_LEN 32
#define STORE_PAYLOAD_MAX (256u << 20) /* 256 MiB */
#define STORE_PARTS 2
#define STORE_MESSAGE_MAX 512

static const char *const store_part_names[STORE_PARTS] = { "skills",
	"sessions" };

/* One commit request, from zos_store_commit until it is settled. */
struct store_request {
	struct store_request *next;
	uint64_t              seq;
	zos_store_done_fn     done;
	void                 *arg;
	/* The outcome, set just before it is settled. */
	int         error;
	const char *message;
};

/* A FIFO of requests. */
struct store_queue {
	struct store_request  *head;
	struct store_request **tail; /* &head when empty */
};

struct store_part {
	enum zos_store_part id;       /* immutable */
	const char         *name;     /* immutable; "skills", "sessions" */
	char               *path;     /* immutable; DIR/PART.snap */
	char               *tmp_path; /* immutable; DIR/PART.snap.tmp */

	/* guarded by: mtx */
	bool               on_disk; /* PART.snap exists and verified */
	uint64_t           durable; /* its sequence number */
	struct store_queue incoming;
};

/* What one flush of one part came to. */
struct store_result {
	int      error; /* 0 or an errno value */
	bool     wrote; /* a newer copy was renamed in */
	uint64_t seq;   /* of the copy, when one was taken */
	char     message[STORE_MESSAGE_MAX];
};

struct zos_store {
	char       *dir;       /* immutable; as given */
	char       *lock_path; /* immutable; DIR/LOCK */
	int         dir_fd;    /* for fsync after a rename */
	int         lock_fd;   /* holds the flock */
	zrpc_log_fn log;
	void       *log_arg;

	/* I/O is checked against LOCKS: OWN_LOCKS until start, then the
	 * state's. Set before the flusher exists; read-only afterwards. */
	struct zos_lock_domain  own_locks;
	struct zos_lock_domain *locks;

	/* Read at open, until taken (before start). */
	struct zos_skill_vector  *loaded_skills;
	struct zos_sessions_image loaded_sessions;
	bool                      have_loaded_sessions;

	/* Set by start, before the flusher exists. */
	struct zos_skills   *skills;
	struct zos_sessions *sessions;
	pthread_t            thread;
	bool                 started;

	pthread_mutex_t   mtx;
	pthread_cond_t    wake;    /* flusher: a request, or closing */
	bool              closing; /* guarded by: mtx */
	struct store_part parts[STORE_PARTS];

	/* The flusher's own, between taking a batch and settling it. */
	struct store_result results[STORE_PARTS];

	struct {
		atomic_uint_fast64_t commits;
		atomic_uint_fast64_t commit_waiters;
		atomic_uint_fast64_t failures;
		atomic_uint_fast64_t bytes_written;
		atomic_uint_fast64_t fsync_ns_sum;
		atomic_uint_fast64_t fsync_count;
		atomic_uint_fast64_t fsync_ns_max;
	} stats;
};

/* What zos_store_commit_wait waits for; on the waiter's stack. */
struct store_waiter {
	struct zos_store *store;
	pthread_cond_t    cv;
	bool              done; /* guarded by: store->mtx */
	int               error;
	char             *message;
	size_t            message_len;
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

static void
store_put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++) {
		p[i] = (uint8_t) (v >> (8 * i));
	}
}

static void
store_put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++) {
		p[i] = (uint8_t) (v >> (8 * i));
	}
}

static uint32_t
store_get32(const uint8_t *p)
{
	uint32_t v = 0;

	for (int i = 0; i < 4; i++) {
		v |= (uint32_t) p[i] << (8 * i);
	}
	return v;
}

static uint64_t
store_get64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++) {
		v |= (uint64_t) p[i] << (8 * i);
	}
	return v;
}

/* CRC-32 of header bytes 8..23 and the LEN bytes of PAYLOAD. */
static uint32_t
store_crc(const uint8_t *header, const uint8_t *payload, size_t len)
{
	uLong crc = crc32(0L, Z_NULL, 0);

	crc = crc32(crc, header + 8, 16);
	crc = crc32(crc, payload, (uInt) len); /* len <= 256 MiB */
	return (uint32_t) crc;
}

/* Fills the header at BUF for a payload of LEN bytes at BUF + 32. */
static void
store_frame(uint8_t *buf, enum zos_store_part part, size_t len, uint64_t seq)
{
	memcpy(buf, STORE_MAGIC, 8);
	store_put32(buf + 8, (uint32_t) part);
	store_put32(buf + 12, (uint32_t) len);
	store_put64(buf + 16, seq);
	store_put32(buf + 24, store_crc(buf, buf + STORE_HEADER_LEN, len));
	store_put32(buf + 28, 0);
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

static void
store_queue_init(struct store_queue *q)
{
	q->head = NULL;
	q->tail = &q->head;
}

static void
store_queue_push(struct store_queue *q, struct store_request *r)
{
	r->next  = NULL;
	*q->tail = r;
	q->tail  = &r->next;
}

/* Moves Q's requests to the end of TO; Q is left empty. */
static void
store_queue_move(struct store_queue *q, struct store_queue *to)
{
	if (q->head != NULL) {
		*to->tail = q->head;
		to->tail  = q->tail;
	}
	store_queue_init(q);
}

/* Moves the requests of Q whose SEQ is at most DURABLE to TO, as OK. */
static void
store_queue_take_covered(
    struct store_queue *q, uint64_t durable, struct store_queue *to)
{
	struct store_request **link = &q->head;
	struct store_request  *r;

	while ((r = *link) != NULL) {
		if (r->seq <= durable) {
			*link      = r->next;
			r->error   = 0;
			r->message = "";
			store_queue_push(to, r);
		} else {
			link = &r->next;
		}
	}
	q->tail = link;
}

/* Calls every request's DONE with its outcome and frees it. Called with
 * no lock held. */
static void
store_settle(struct zos_store *store, struct store_request *list)
{
	struct store_request *r;

	while ((r = list) != NULL) {
		list = r->next;
		if (r->error == 0) {
			atomic_fetch_add_explicit(&store->stats.commit_waiters,
			    1, memory_order_relaxed);
		}
		r->done(r->arg, r->error, r->message);
		free(r);
	}
}

/* fsync(FD), timed into the stats. Returns 0 or an errno value. */
static int
store_fsync(struct zos_store *store, int fd)
{
	uint64_t start = zrpc_now_ns(), took, max;
	int      rv    = 0;

	zos_assert_no_locks_held(store->locks, "fsync");
	if (fsync(fd) != 0) {
		rv = errno;
	}
	took = zrpc_now_ns() - start;
	atomic_fetch_add_explicit(
	    &store->stats.fsync_ns_sum, took, memory_order_relaxed);
	atomic_fetch_add_explicit(
	    &store->stats.fsync_count, 1, memory_order_relaxed);
	max = atomic_load_explicit(
	    &store->stats.fsync_ns_max, memory_order_relaxed);
	while (took > max &&
	    !atomic_compare_exchange_weak_explicit(&store->stats.fsync_ns_max,
	        &max, took, memory_order_relaxed, memory_order_relaxed)) { }
	return rv;
}

/* Writes all LEN bytes of BUF to FD. Returns 0 or an errno value. */
static int
store_write_all(int fd, const uint8_t *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			return errno;
		}
		buf += n;
		len -= (size_t) n;
	}
	return 0;
}

/* Reads up to LEN bytes of FD into BUF, stopping early only at the end of
 * the file. Returns the count, or -1 with errno set. */
static ssize_t
store_read_all(int fd, uint8_t *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, buf + got, len - got);
		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			return -1;
		}
		if (n == 0) {
			break;
		}
		got += (size_t) n;
	}
	return (ssize_t) got;
}

/*
 * Writes the framed snapshot BUF (LEN bytes, header included) to P's
 * temporary file, fsyncs it, renames it over P's file and fsyncs the
 * directory. Returns 0 or an errno value with MESSAGE filled; on failure
 * P's file is as it was. Called with no lock held.
 */
static int
store_write_file(struct zos_store *store, const struct store_part *p,
    const uint8_t *buf, size_t len, char *message, size_t message_len)
{
	int fd, rv;

	zos_assert_no_locks_held(store->locks, "write snapshot");
	fd = open(p->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		rv = errno;
		snprintf(message, message_len, "open %s: %s", p->tmp_path,
		    strerror(rv));
		return rv;
	}
	if ((rv = store_write_all(fd, buf, len)) != 0) {
		snprintf(message, message_len, "write %s: %s", p->tmp_path,
		    strerror(rv));
		goto fail_fd;
	}
	if ((rv = store_fsync(store, fd)) != 0) {
		snprintf(message, message_len, "fsync %s: %s", p->tmp_path,
		    strerror(rv));
		goto fail_fd;
	}
	if (close(fd) != 0) {
		rv = errno;
		snprintf(message, message_len, "close %s: %s", p->tmp_path,
		    strerror(rv));
		goto fail_tmp;
	}
	if (rename(p->tmp_path, p->path) != 0) {
		rv = errno;
		snprintf(message, message_len, "rename %s to %s: %s",
		    p->tmp_path, p->path, strerror(rv));
		goto fail_tmp;
	}
	/* The new file is in place; until the directory is synced it may
	 * not survive a crash, so this is a failure too (and the next
	 * write, of this copy or a newer one, makes it good). */
	if ((rv = store_fsync(store, store->dir_fd)) != 0) {
		snprintf(message, message_len, "fsync %s: %s", store->dir,
		    strerror(rv));
		return rv;
	}
	atomic_fetch_add_explicit(
	    &store->stats.commits, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(
	    &store->stats.bytes_written, len, memory_order_relaxed);
	return 0;

fail_fd:
	close(fd);
fail_tmp:
	unlink(p->tmp_path);
	return rv;
}

/*
 * Copies the skill vector and, when its version is newer than the file
 * (ON_DISK, DURABLE), encodes it framed into *OUT (LEN bytes; NULL when
 * not newer). *SEQ is the copy's version. Returns 0 or an errno value.
 */
static int
store_encode_skills(struct zos_store *store, bool on_disk, uint64_t durable,
    uint8_t **out, size_t *out_len, uint64_t *seq, char *message,
    size_t message_len)
{
	Zos__Storage__V1__SkillsSnapshot snap =
	    ZOS__STORAGE__V1__SKILLS_SNAPSHOT__INIT;
	Zos__V1__Skill          *items = NULL;
	Zos__V1__Skill         **ptrs  = NULL;
	struct zos_skill_vector *v;
	size_t                   len;
	int                      rv = 0;

	*out = NULL;
	v    = zos_skills_get(store->skills);
	*seq = v->version;
	if (on_disk && v->version <= durable) {
		goto done; /* the file already has it, or newer */
	}
	if ((items = calloc(v->n + 1, sizeof(*items))) == NULL ||
	    (ptrs = calloc(v->n + 1, sizeof(*ptrs))) == NULL) {
		rv = ENOMEM;
		snprintf(message, message_len, "encode skills: out of memory");
		goto done;
	}
	for (size_t i = 0; i < v->n; i++) {
		zos__v1__skill__init(&items[i]);
		items[i].name     = (char *) v->skills[i].name;
		items[i].level    = v->skills[i].level;
		items[i].attempts = v->skills[i].attempts;
		ptrs[i]           = &items[i];
	}
	snap.version  = v->version;
	snap.n_skills = v->n;
	snap.skills   = ptrs;
	len = zos__storage__v1__skills_snapshot__get_packed_size(&snap);
	if ((*out = malloc(STORE_HEADER_LEN + len)) == NULL) {
		rv = ENOMEM;
		snprintf(message, message_len, "encode skills: out of memory");
		goto done;
	}
	zos__storage__v1__skills_snapshot__pack(
	    &snap, *out + STORE_HEADER_LEN);
	store_frame(*out, ZOS_STORE_SKILLS, len, v->version);
	*out_len = STORE_HEADER_LEN + len;

done:
	free(ptrs);
	free(items);
	zos_skill_vector_unref(v);
	return rv;
}

/* As store_encode_skills, for the session table. */
static int
store_encode_sessions(struct zos_store *store, bool on_disk, uint64_t durable,
    uint8_t **out, size_t *out_len, uint64_t *seq, char *message,
    size_t message_len)
{
	Zos__Storage__V1__SessionsSnapshot snap =
	    ZOS__STORAGE__V1__SESSIONS_SNAPSHOT__INIT;
	struct zos_sessions_image image;
	Zos__V1__ProofSession    *items = NULL;
	Zos__V1__ProofSession   **ptrs  = NULL;
	size_t                    len;
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
	if ((items = calloc(image.count + 1, sizeof(*items))) == NULL ||
	    (ptrs = calloc(image.count + 1, sizeof(*ptrs))) == NULL) {
		rv = ENOMEM;
		snprintf(
		    message, message_len, "encode sessions: out of memory");
		goto done;
	}
	for (size_t i = 0; i < image.count; i++) {
		struct zos_session *s = &image.sessions[i];

		zos__v1__proof_session__init(&items[i]);
		items[i].id              = s->id;
		items[i].problem_id      = s->problem_id;
		items[i].state           = (Zos__V1__ProofState) s->state;
		items[i].version         = s->version;
		items[i].created_unix_ms = s->created_unix_ms;
		items[i].updated_unix_ms = s->updated_unix_ms;
		ptrs[i]                  = &items[i];
	}
	snap.seq        = image.seq;
	snap.id_key     = image.id_key;
	snap.n_sessions = image.count;
	snap.sessions   = ptrs;
	len = zos__storage__v1__sessions_snapshot__get_packed_size(&snap);
	if (len > STORE_PAYLOAD_MAX) {
		rv = EFBIG;
		snprintf(message, message_len,
		    "encode sessions: %zu bytes, over the 256 MiB bound", len);
		goto done;
	}
	if ((*out = malloc(STORE_HEADER_LEN + len)) == NULL) {
		rv = ENOMEM;
		snprintf(
		    message, message_len, "encode sessions: out of memory");
		goto done;
	}
	zos__storage__v1__sessions_snapshot__pack(
	    &snap, *out + STORE_HEADER_LEN);
	store_frame(*out, ZOS_STORE_SESSIONS, len, image.seq);
	*out_len = STORE_HEADER_LEN + len;

done:
	free(ptrs);
	free(items);
	zos_sessions_image_finish(&image);
	return rv;
}

/*
 * Makes P durable as far as its part has come: one copy, written when it
 * is newer than the file described by ON_DISK and DURABLE. Called by the
 * flusher with no lock held.
 */
static void
store_flush_part(struct zos_store *store, const struct store_part *p,
    bool on_disk, uint64_t durable, struct store_result *r)
{
	uint8_t *buf = NULL;
	size_t   len = 0;

	r->wrote      = false;
	r->seq        = 0;
	r->message[0] = '\0';
	if (p->id == ZOS_STORE_SKILLS) {
		r->error = store_encode_skills(store, on_disk, durable, &buf,
		    &len, &r->seq, r->message, sizeof(r->message));
	} else {
		r->error = store_encode_sessions(store, on_disk, durable, &buf,
		    &len, &r->seq, r->message, sizeof(r->message));
	}
	if (r->error == 0 && buf != NULL) {
		r->error = store_write_file(
		    store, p, buf, len, r->message, sizeof(r->message));
		r->wrote = r->error == 0;
	}
	free(buf);
	if (r->error != 0) {
		atomic_fetch_add_explicit(
		    &store->stats.failures, 1, memory_order_relaxed);
		store_log(store, ZRPC_LOG_ERROR, "store: %s", r->message);
	}
}

/*
 * Settles BATCH (P's requests the copy in R was taken for) and the
 * requests of incoming that R made durable, moving them to DONE.
 * Called with the mutex held.
 */
static void
store_apply(struct store_part *p, const struct store_result *r,
    struct store_request *batch, struct store_queue *done)
{
	struct store_request *q;

	if (r->wrote) {
		p->on_disk = true;
		p->durable = r->seq;
	}
	while ((q = batch) != NULL) {
		batch = q->next;
		if (r->error != 0) {
			q->error   = r->error;
			q->message = r->message;
		} else if (p->on_disk && q->seq <= p->durable) {
			q->error   = 0;
			q->message = "";
		} else {
			/* The copy was taken after the request was made
			 * and still does not reach its number. */
			q->error   = EINVAL;
			q->message = "commit of a sequence number the part "
			             "has not reached";
		}
		store_queue_push(done, q);
	}
	if (p->on_disk) {
		store_queue_take_covered(&p->incoming, p->durable, done);
	}
}

static void *
store_flusher(void *arg)
{
	struct zos_store *store = arg;

	pthread_mutex_lock(&store->mtx);
	for (;;) {
		struct store_request *batch[STORE_PARTS];
		bool                  on_disk[STORE_PARTS];
		uint64_t              durable[STORE_PARTS];
		struct store_queue    done;
		bool                  work = false;

		for (size_t i = 0; i < STORE_PARTS; i++) {
			work = work || store->parts[i].incoming.head != NULL;
		}
		if (!work) {
			if (store->closing) {
				break;
			}
			pthread_cond_wait(&store->wake, &store->mtx);
			continue;
		}
		for (size_t i = 0; i < STORE_PARTS; i++) {
			struct store_part *p = &store->parts[i];

			batch[i]   = p->incoming.head;
			on_disk[i] = p->on_disk;
			durable[i] = p->durable;
			store_queue_init(&p->incoming);
		}
		pthread_mutex_unlock(&store->mtx);

		for (size_t i = 0; i < STORE_PARTS; i++) {
			if (batch[i] != NULL) {
				store_flush_part(store, &store->parts[i],
				    on_disk[i], durable[i],
				    &store->results[i]);
			}
		}

		store_queue_init(&done);
		pthread_mutex_lock(&store->mtx);
		for (size_t i = 0; i < STORE_PARTS; i++) {
			if (batch[i] != NULL) {
				store_apply(&store->parts[i],
				    &store->results[i], batch[i], &done);
			}
		}
		pthread_mutex_unlock(&store->mtx);
		store_settle(store, done.head);
		pthread_mutex_lock(&store->mtx);
	}
	pthread_mutex_unlock(&store->mtx);
	return NULL;
}

/*
 * Creates DIR and its missing parents, fsyncing the parent of each one
 * created so that the new entries survive a crash. Returns 0 or an errno
 * value.
 */
static int
store_mkdirs(struct zos_store *store, const char *dir)
{
	char  *path;
	size_t len = strlen(dir);
	int    rv  = 0;

	if ((path = strdup(dir)) == NULL) {
		return ENOMEM;
	}
	while (len > 1 && path[len - 1] == '/') {
		path[--len] = '\0';
	}
	for (size_t i = 1; i <= len && rv == 0; i++) {
		int fd;

		if (path[i] != '/' && path[i] != '\0') {
			continue;
		}
		path[i] = '\0';
		if (mkdir(path, 0755) != 0) {
			rv = errno == EEXIST ? 0 : errno;
		} else {
			/* Created: make its entry in the parent durable. */
			char *slash = strrchr(path, '/');
			char  saved = '\0';

			if (slash == NULL) {
				fd = open(
				    ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			} else if (slash == path) {
				fd = open(
				    "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			} else {
				saved  = *slash;
				*slash = '\0';
				fd     = open(
				        path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
				*slash = saved;
			}
			if (fd >= 0) {
				rv = store_fsync(store, fd);
				close(fd);
			} else {
				rv = errno;
			}
		}
		if (i < len) {
			path[i] = '/';
		}
	}
	free(path);
	return rv;
}

/*
 * Reads and verifies P's file: *PAYLOAD (malloc'd, *LEN bytes) and the
 * header's sequence number *SEQ. Returns 1 when read, 0 when there is no
 * file, -1 with ERROR filled when it cannot be read or does not verify.
 */
static int
store_read_file(struct zos_store *store, const struct store_part *p,
    uint8_t **payload, size_t *len, uint64_t *seq, char *error,
    size_t error_len)
{
	uint8_t     header[STORE_HEADER_LEN];
	struct stat st;
	ssize_t     got;
	uint32_t    part, length;
	int         fd;

	*payload = NULL;
	zos_assert_no_locks_held(store->locks, "read snapshot");
	if ((fd = open(p->path, O_RDONLY | O_CLOEXEC)) < 0) {
		if (errno == ENOENT) {
			return 0;
		}
		snprintf(error, error_len, "%s: %s", p->path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0) {
		snprintf(error, error_len, "%s: %s", p->path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(error, error_len, "%s: not a regular file", p->path);
		goto fail;
	}
	if ((got = store_read_all(fd, header, sizeof(header))) < 0) {
		snprintf(error, error_len, "%s: %s", p->path, strerror(errno));
		goto fail;
	}
	if (got < STORE_HEADER_LEN) {
		snprintf(error, error_len,
		    "%s: truncated header (%zd of %d bytes; file is corrupt)",
		    p->path, got, STORE_HEADER_LEN);
		goto fail;
	}
	if (memcmp(header, STORE_MAGIC, 8) != 0) {
		snprintf(error, error_len,
		    "%s: bad magic, not a zos snapshot (file is corrupt)",
		    p->path);
		goto fail;
	}
	part   = store_get32(header + 8);
	length = store_get32(header + 12);
	if (part != (uint32_t) p->id || store_get32(header + 28) != 0) {
		snprintf(error, error_len,
		    "%s: header names part %u, expected %d (file is corrupt)",
		    p->path, part, (int) p->id);
		goto fail;
	}
	if (length > STORE_PAYLOAD_MAX) {
		snprintf(error, error_len,
		    "%s: payload of %u bytes is over the 256 MiB bound (file "
		    "is corrupt)",
		    p->path, length);
		goto fail;
	}
	if ((uint64_t) st.st_size != (uint64_t) STORE_HEADER_LEN + length) {
		snprintf(error, error_len,
		    "%s: %s (%lld bytes, the header says %llu; file is "
		    "corrupt)",
		    p->path,
		    (uint64_t) st.st_size <
		            (uint64_t) STORE_HEADER_LEN + length
		        ? "truncated"
		        : "bytes after the payload",
		    (long long) st.st_size,
		    (unsigned long long) STORE_HEADER_LEN + length);
		goto fail;
	}
	if ((*payload = malloc(length > 0 ? length : 1)) == NULL) {
		snprintf(error, error_len, "%s: out of memory", p->path);
		goto fail;
	}
	if ((got = store_read_all(fd, *payload, length)) < 0) {
		snprintf(error, error_len, "%s: %s", p->path, strerror(errno));
		goto fail_payload;
	}
	if ((size_t) got != length) {
		snprintf(error, error_len,
		    "%s: truncated (%zd of %u payload bytes; file is corrupt)",
		    p->path, got, length);
		goto fail_payload;
	}
	if (store_get32(header + 24) != store_crc(header, *payload, length)) {
		snprintf(error, error_len,
		    "%s: checksum mismatch (file is corrupt)", p->path);
		goto fail_payload;
	}
	close(fd);
	*len = length;
	*seq = store_get64(header + 16);
	return 1;

fail_payload:
	free(*payload);
	*payload = NULL;
fail:
	close(fd);
	return -1;
}

/*
 * Reads P's file and decodes its payload as DESC into *OUT (freed with
 * protobuf_c_message_free_unpacked), checking that the payload's field 1
 * (the sequence number in both snapshot messages, storage.proto) matches
 * the header's, returned in *SEQ. Returns 1, 0 when there is no file, or
 * -1 with ERROR filled.
 */
static int
store_read_snapshot(struct zos_store *store, const struct store_part *p,
    const ProtobufCMessageDescriptor *desc, ProtobufCMessage **out,
    uint64_t *seq, char *error, size_t error_len)
{
	const ProtobufCFieldDescriptor *field =
	    protobuf_c_message_descriptor_get_field(desc, 1);
	uint8_t *payload;
	size_t   len;
	uint64_t inner;
	int      rv;

	if ((rv = store_read_file(
	         store, p, &payload, &len, seq, error, error_len)) <= 0) {
		return rv;
	}
	*out = protobuf_c_message_unpack(desc, NULL, len, payload);
	free(payload);
	if (*out == NULL) {
		snprintf(error, error_len,
		    "%s: payload does not decode (file is corrupt)", p->path);
		return -1;
	}
	memcpy(&inner, (const char *) *out + field->offset, sizeof(inner));
	if (inner != *seq) {
		snprintf(error, error_len,
		    "%s: sequence mismatch: header %llu, payload %llu (file "
		    "is corrupt)",
		    p->path, (unsigned long long) *seq,
		    (unsigned long long) inner);
		protobuf_c_message_free_unpacked(*out, NULL);
		*out = NULL;
		return -1;
	}
	return 1;
}

/* Reads skills.snap into loaded_skills. Returns 0 or -1 with ERROR. */
static int
store_load_skills(struct zos_store *store, char *error, size_t error_len)
{
	const struct store_part          *p    = &store->parts[0];
	Zos__Storage__V1__SkillsSnapshot *snap = NULL;
	const char                       *names[ZOS_SKILLS_MAX];
	double                            levels[ZOS_SKILLS_MAX];
	uint64_t                          attempts[ZOS_SKILLS_MAX];
	char                              message[256];
	uint64_t                          seq;
	int                               rv;

	if ((rv = store_read_snapshot(store, p,
	         &zos__storage__v1__skills_snapshot__descriptor,
	         (ProtobufCMessage **) &snap, &seq, error, error_len)) <= 0) {
		return rv;
	}
	rv = -1;
	if (snap->n_skills > ZOS_SKILLS_MAX) {
		snprintf(error, error_len,
		    "%s: %zu skills, more than %d (invalid snapshot)", p->path,
		    snap->n_skills, ZOS_SKILLS_MAX);
		goto fail_snap;
	}
	for (size_t i = 0; i < snap->n_skills; i++) {
		names[i]    = snap->skills[i]->name;
		levels[i]   = snap->skills[i]->level;
		attempts[i] = snap->skills[i]->attempts;
	}
	if (zos_skill_vector_restore(snap->n_skills, names, levels, attempts,
	        snap->version, &store->loaded_skills, message,
	        sizeof(message)) != ZOS_SKILLS_OK) {
		snprintf(error, error_len, "%s: %s (invalid snapshot)",
		    p->path, message);
		goto fail_snap;
	}
	store->parts[0].on_disk = true;
	store->parts[0].durable = seq;
	rv                      = 0;

fail_snap:
	zos__storage__v1__skills_snapshot__free_unpacked(snap, NULL);
	return rv;
}

/* Copies the NUL-terminated FROM into TO (SIZE bytes with the NUL); false
 * when it does not fit. */
static bool
store_copy_string(char *to, size_t size, const char *from)
{
	size_t len = strnlen(from, size);

	if (len >= size) {
		return false;
	}
	memcpy(to, from, len + 1);
	return true;
}

/* Reads sessions.snap into loaded_sessions. Returns 0 or -1 with ERROR.
 * The sessions themselves are checked by zos_sessions_restore. */
static int
store_load_sessions(struct zos_store *store, char *error, size_t error_len)
{
	const struct store_part            *p     = &store->parts[1];
	Zos__Storage__V1__SessionsSnapshot *snap  = NULL;
	struct zos_sessions_image           image = { 0 };
	uint64_t                            seq;
	int                                 rv;

	if ((rv = store_read_snapshot(store, p,
	         &zos__storage__v1__sessions_snapshot__descriptor,
	         (ProtobufCMessage **) &snap, &seq, error, error_len)) <= 0) {
		return rv;
	}
	rv = -1;
	if (snap->n_sessions > ZOS_SESSIONS_LIMIT_MAX) {
		snprintf(error, error_len,
		    "%s: %zu sessions, more than %d (invalid snapshot)",
		    p->path, snap->n_sessions, ZOS_SESSIONS_LIMIT_MAX);
		goto fail_snap;
	}
	if (snap->n_sessions > 0 &&
	    (image.sessions = calloc(
	         snap->n_sessions, sizeof(*image.sessions))) == NULL) {
		snprintf(error, error_len, "%s: out of memory", p->path);
		goto fail_snap;
	}
	for (size_t i = 0; i < snap->n_sessions; i++) {
		const Zos__V1__ProofSession *from = snap->sessions[i];
		struct zos_session          *to   = &image.sessions[i];

		if (!store_copy_string(to->id, sizeof(to->id), from->id) ||
		    !store_copy_string(to->problem_id, sizeof(to->problem_id),
		        from->problem_id)) {
			snprintf(error, error_len,
			    "%s: session %zu: id or problem id too long "
			    "(invalid snapshot)",
			    p->path, i);
			goto fail_image;
		}
		to->state           = (enum zos_proof_state) from->state;
		to->version         = from->version;
		to->created_unix_ms = from->created_unix_ms;
		to->updated_unix_ms = from->updated_unix_ms;
	}
	image.seq                   = snap->seq;
	image.id_key                = snap->id_key;
	image.count                 = snap->n_sessions;
	store->loaded_sessions      = image;
	store->have_loaded_sessions = true;
	store->parts[1].on_disk     = true;
	store->parts[1].durable     = seq;
	rv                          = 0;
	goto fail_snap; /* the image is the store's now */

fail_image:
	zos_sessions_image_finish(&image);
fail_snap:
	zos__storage__v1__sessions_snapshot__free_unpacked(snap, NULL);
	return rv;
}

/* Removes PATH if it exists (a temporary file never renamed in). Returns
 * 0 or -1 with ERROR. */
static int
store_remove_leftover(
    struct zos_store *store, const char *path, char *error, size_t error_len)
{
	if (unlink(path) == 0) {
		store_log(store, ZRPC_LOG_WARN,
		    "store: removed %s, left over by a write that was never "
		    "acknowledged",
		    path);
		return 0;
	}
	if (errno == ENOENT) {
		return 0;
	}
	snprintf(error, error_len, "%s: cannot remove leftover file: %s", path,
	    strerror(errno));
	return -1;
}

int
zos_store_open(const struct zos_store_config *config, struct zos_store **out,
    char *error, size_t error_len)
{
	struct zos_store *store;
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
	store->dir_fd  = -1;
	store->lock_fd = -1;
	zos_lock_domain_init(&store->own_locks, ZOS_LOCK_CHECKS != 0,
	    config->log, config->log_arg);
	store->locks = &store->own_locks;
	snprintf(error, error_len, "out of memory");
	if ((store->dir = strdup(config->dir)) == NULL ||
	    (store->lock_path = store_path(config->dir, "LOCK")) == NULL) {
		goto fail_dir;
	}
	for (size_t i = 0; i < STORE_PARTS; i++) {
		struct store_part *p = &store->parts[i];
		char               name[32];

		p->id   = (enum zos_store_part)(i + 1);
		p->name = store_part_names[i];
		store_queue_init(&p->incoming);
		snprintf(name, sizeof(name), "%s.snap", p->name);
		if ((p->path = store_path(config->dir, name)) == NULL) {
			goto fail_dir;
		}
		snprintf(name, sizeof(name), "%s.snap.tmp", p->name);
		if ((p->tmp_path = store_path(config->dir, name)) == NULL) {
			goto fail_dir;
		}
	}

	zos_assert_no_locks_held(store->locks, "open data directory");
	if ((rv = store_mkdirs(store, config->dir)) != 0) {
		snprintf(
		    error, error_len, "%s: %s", config->dir, strerror(rv));
		goto fail_dir;
	}
	store->dir_fd = open(config->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (store->dir_fd < 0) {
		snprintf(
		    error, error_len, "%s: %s", config->dir, strerror(errno));
		goto fail_dir;
	}
	store->lock_fd =
	    open(store->lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (store->lock_fd < 0) {
		snprintf(error, error_len, "%s: %s", store->lock_path,
		    strerror(errno));
		goto fail_lock;
	}
	if (flock(store->lock_fd, LOCK_EX | LOCK_NB) != 0) {
		if (errno == EWOULDBLOCK) {
			snprintf(error, error_len,
			    "%s: in use by another zosd", config->dir);
		} else {
			snprintf(error, error_len, "%s: %s", store->lock_path,
			    strerror(errno));
		}
		goto fail_lock;
	}
	for (size_t i = 0; i < STORE_PARTS; i++) {
		if (store_remove_leftover(store, store->parts[i].tmp_path,
		        error, error_len) != 0) {
			goto fail_lock;
		}
	}
	if (store_load_skills(store, error, error_len) != 0) {
		goto fail_lock;
	}
	if (store_load_sessions(store, error, error_len) != 0) {
		goto fail_skills;
	}
	if (pthread_mutex_init(&store->mtx, NULL) != 0) {
		snprintf(error, error_len, "%s: cannot create a mutex",
		    config->dir);
		goto fail_sessions;
	}
	if (pthread_cond_init(&store->wake, NULL) != 0) {
		snprintf(error, error_len,
		    "%s: cannot create a condition variable", config->dir);
		goto fail_mutex;
	}
	if (!store->parts[0].on_disk && !store->parts[1].on_disk) {
		store_log(store, ZRPC_LOG_INFO,
		    "data directory %s: new, nothing stored yet", config->dir);
	} else {
		store_log(store, ZRPC_LOG_INFO,
		    "data directory %s: skills at version %llu, sessions at "
		    "change %llu",
		    config->dir, (unsigned long long) store->parts[0].durable,
		    (unsigned long long) store->parts[1].durable);
	}
	*out = store;
	return 0;

fail_mutex:
	pthread_mutex_destroy(&store->mtx);
fail_sessions:
	zos_sessions_image_finish(&store->loaded_sessions);
fail_skills:
	zos_skill_vector_unref(store->loaded_skills);
fail_lock:
	if (store->lock_fd >= 0) {
		close(store->lock_fd); /* drops the flock, if taken */
	}
	if (store->dir_fd >= 0) {
		close(store->dir_fd);
	}
fail_dir:
	for (size_t i = 0; i < STORE_PARTS; i++) {
		free(store->parts[i].path);
		free(store->parts[i].tmp_path);
	}
	free(store->lock_path);
	free(store->dir);
	free(store);
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
	store->skills   = skills;
	store->sessions = sessions;
	store->locks    = skills->lock.domain;
	if ((rv = pthread_create(
	         &store->thread, NULL, store_flusher, store)) != 0) {
		store->locks = &store->own_locks;
		return rv;
	}
	store->started = true;
	return 0;
}

/* The part named ID, or NULL. */
static struct store_part *
store_part_get(struct zos_store *store, enum zos_store_part id)
{
	if (id != ZOS_STORE_SKILLS && id != ZOS_STORE_SESSIONS) {
		return NULL;
	}
	return &store->parts[id - 1];
}

void
zos_store_commit(struct zos_store *store, enum zos_store_part part,
    uint64_t seq, zos_store_done_fn done, void *arg)
{
	struct store_part    *p = store_part_get(store, part);
	struct store_request *r;

	zos_assert_no_locks_held(store->locks, "store commit");
	if (p == NULL) {
		done(arg, EINVAL, "store: no such part");
		return;
	}
	r = malloc(sizeof(*r));
	pthread_mutex_lock(&store->mtx);
	if (p->on_disk && seq <= p->durable) {
		pthread_mutex_unlock(&store->mtx);
		free(r);
		atomic_fetch_add_explicit(
		    &store->stats.commit_waiters, 1, memory_order_relaxed);
		done(arg, 0, "");
		return;
	}
	if (store->closing || r == NULL) {
		bool closing = store->closing;

		pthread_mutex_unlock(&store->mtx);
		free(r);
		if (closing) {
			done(arg, ECANCELED,
			    "store: closing, nothing more is "
			    "written");
		} else {
			done(arg, ENOMEM, "store: out of memory");
		}
		return;
	}
	r->seq  = seq;
	r->done = done;
	r->arg  = arg;
	store_queue_push(&p->incoming, r);
	pthread_cond_signal(&store->wake);
	pthread_mutex_unlock(&store->mtx);
}

static void
store_waiter_done(void *arg, int error, const char *message)
{
	struct store_waiter *w = arg;

	pthread_mutex_lock(&w->store->mtx);
	w->error = error;
	if (w->message_len > 0) {
		snprintf(w->message, w->message_len, "%s", message);
	}
	w->done = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->store->mtx);
}

int
zos_store_commit_wait(struct zos_store *store, enum zos_store_part part,
    uint64_t seq, char *message, size_t message_len)
{
	struct store_waiter w = {
		.store       = store,
		.done        = false,
		.message     = message,
		.message_len = message_len,
	};

	zos_assert_no_locks_held(store->locks, "store commit wait");
	if (pthread_cond_init(&w.cv, NULL) != 0) {
		snprintf(message, message_len, "store: out of memory");
		return ENOMEM;
	}
	zos_store_commit(store, part, seq, store_waiter_done, &w);
	pthread_mutex_lock(&store->mtx);
	while (!w.done) {
		pthread_cond_wait(&w.cv, &store->mtx);
	}
	pthread_mutex_unlock(&store->mtx);
	pthread_cond_destroy(&w.cv);
	return w.error;
}

void
zos_store_stats(const struct zos_store *store, struct zos_store_stats *out)
{
	out->commits =
	    atomic_load_explicit(&store->stats.commits, memory_order_relaxed);
	out->commit_waiters = atomic_load_explicit(
	    &store->stats.commit_waiters, memory_order_relaxed);
	out->failures =
	    atomic_load_explicit(&store->stats.failures, memory_order_relaxed);
	out->bytes_written = atomic_load_explicit(
	    &store->stats.bytes_written, memory_order_relaxed);
	out->fsync_ns_sum = atomic_load_explicit(
	    &store->stats.fsync_ns_sum, memory_order_relaxed);
	out->fsync_count = atomic_load_explicit(
	    &store->stats.fsync_count, memory_order_relaxed);
	out->fsync_ns_max = atomic_load_explicit(
	    &store->stats.fsync_ns_max, memory_order_relaxed);
}

const char *
zos_store_dir(const struct zos_store *store)
{
	return store->dir;
}

void
zos_store_close(struct zos_store *store)
{
	struct store_queue left;

	if (store == NULL) {
		return;
	}
	pthread_mutex_lock(&store->mtx);
	store->closing = true;
	pthread_cond_signal(&store->wake);
	pthread_mutex_unlock(&store->mtx);
	if (store->started) {
		/* The flusher writes what is queued, then returns. */
		pthread_join(store->thread, NULL);
	}
	/* Never started: nothing can write what was asked for. */
	store_queue_init(&left);
	pthread_mutex_lock(&store->mtx);
	for (size_t i = 0; i < STORE_PARTS; i++) {
		struct store_request *r;

		for (r = store->parts[i].incoming.head; r != NULL;
		     r = r->next) {
			r->error = ECANCELED;
			r->message =
			    "store: closed before the flusher started";
		}
		store_queue_move(&store->parts[i].incoming, &left);
	}
	pthread_mutex_unlock(&store->mtx);
	store_settle(store, left.head);

	pthread_cond_destroy(&store->wake);
	pthread_mutex_destroy(&store->mtx);
	zos_skill_vector_unref(store->loaded_skills);
	zos_sessions_image_finish(&store->loaded_sessions);
	close(store->lock_fd); /* drops the flock */
	close(store->dir_fd);
	for (size_t i = 0; i < STORE_PARTS; i++) {
		free(store->parts[i].path);
		free(store->parts[i].tmp_path);
	}
	free(store->lock_path);
	free(store->dir);
	free(store);
}
