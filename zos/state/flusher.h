/*
 * The flusher: one thread that turns many commit requests into few
 * writes (group commit), and answers each request exactly once. Private
 * to the store (store.c), which gives it a write function and forwards
 * zos_store_commit and zos_store_commit_wait to it.
 *
 * The flusher knows parts (ZOS_STORE_SKILLS, ZOS_STORE_SESSIONS), their
 * sequence numbers and who waits for which; it does not know how a part
 * is copied, encoded or stored. That is the write function's business,
 * so the same flusher serves snapshot files today and could serve a
 * database transaction tomorrow.
 *
 * Locking: the flusher's mutex is a leaf. It is never held across I/O,
 * the write function or a DONE callback, and no zOS lock is taken under
 * it. Callers of zos_flusher_commit and zos_flusher_commit_wait must hold
 * no zOS lock (the store asserts it).
 */
#ifndef ZOS_FLUSHER_H
#define ZOS_FLUSHER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define ZOS_FLUSHER_PARTS 2 /* parts 1 .. ZOS_FLUSHER_PARTS */

/*
 * Makes PART durable as far as it has come: takes its changes, and
 * writes them when they are newer than what is durable (ON_DISK false:
 * nothing is; otherwise up to DURABLE). Sets *SEQ to the number the
 * changes reach and *WROTE when they were written and are durable.
 * Returns 0 or an errno value with MESSAGE filled; on failure the write
 * function has undone, in memory, every change of PART that is not
 * durable, and sets *UNDONE to the highest number undone (DURABLE when
 * none). Runs on the flusher thread with no lock held; it may block
 * (I/O). It is also called with no request waiting, about once a
 * second while the last write of PART failed, to find out whether the
 * store can write again.
 */
typedef int (*zos_flusher_write_fn)(void *arg, enum zos_store_part part,
    bool on_disk, uint64_t durable, uint64_t *seq, bool *wrote,
    uint64_t *undone, char *message, size_t message_len);

/* How long the flusher waits before trying a failed part again. */
#define ZOS_FLUSHER_RETRY_MS 1000

struct zos_flusher; /* opaque */

/*
 * Creates a flusher (no thread yet) for parts whose durable state is
 * ON_DISK[i] and DURABLE[i] for part i + 1 (as read at open). Requests
 * may be made at once; they wait for zos_flusher_start. Returns 0 and
 * *OUT, or -1 with ERROR filled ("out of memory", "cannot create a
 * mutex").
 */
int zos_flusher_create(struct zos_flusher **out,
    const bool                              on_disk[ZOS_FLUSHER_PARTS],
    const uint64_t durable[ZOS_FLUSHER_PARTS], char *error, size_t error_len);

/*
 * Starts the thread, which calls WRITE(ARG, ...) for every batch. Returns
 * 0, EALREADY when started before, or an errno value from pthread_create.
 */
int zos_flusher_start(
    struct zos_flusher *flusher, zos_flusher_write_fn write, void *arg);

/*
 * Asks for PART to be durable up to SEQ and calls DONE(ARG, ...) once:
 * error 0 when it is; the write's error when the write that should have
 * covered it failed, or when SEQ was undone after a failed write (also
 * for a request made after the undo); EINVAL for a part that does not exist or
 * a number the part had not reached when the copy for it was taken; ECANCELED
 * when the flusher is closing; ENOMEM. DONE runs on the flusher's settling
 * thread (which answers one write's requests while the flusher makes the
 * next write), or on the caller's before this returns when the request is
 * already covered or refused. Never blocks on I/O.
 */
void zos_flusher_commit(struct zos_flusher *flusher, enum zos_store_part part,
    uint64_t seq, zos_store_done_fn done, void *arg);

/*
 * The blocking form: returns 0 once PART is durable up to SEQ, or an errno
 * value with MESSAGE filled.
 */
int zos_flusher_commit_wait(struct zos_flusher *flusher,
    enum zos_store_part part, uint64_t seq, char *message, size_t message_len);

/* Commit requests answered OK so far (relaxed). */
uint64_t zos_flusher_commit_waiters(const struct zos_flusher *flusher);

/*
 * Writes whatever is pending (when started), settles every request (with
 * ECANCELED when never started), stops the thread and frees FLUSHER. NULL
 * is a no-op. The write function's ARG must stay valid until this returns.
 */
void zos_flusher_destroy(struct zos_flusher *flusher);

#endif /* ZOS_FLUSHER_H */
