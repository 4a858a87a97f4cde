/*
 * Snapshot files: the on-disk format of one persisted part, and how such a
 * file is written and read without ever leaving a half-written one in its
 * place. Private to the store (store.c); the format is described in
 * store.h and restated in snapshot.c.
 *
 * This module knows bytes, paths and file descriptors, not skills or
 * sessions: it frames an opaque payload under a checksummed header and
 * hands it back verified. What the payload means is codec.h's business,
 * when to write is the flusher's (flusher.h).
 *
 * Every function here does I/O and asserts that the calling thread holds
 * no zOS lock of DIR->locks. None takes a lock of its own; the statistics
 * are relaxed atomics.
 */
#ifndef ZOS_SNAPSHOT_H
#define ZOS_SNAPSHOT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "lock.h"

#define ZOS_SNAPSHOT_HEADER_LEN 32
#define ZOS_SNAPSHOT_PAYLOAD_MAX (256u << 20) /* 256 MiB */

/* The data directory as the snapshot files see it; owned by the store. */
struct zos_snapshot_dir {
	const char *path; /* as given; for messages; not owned */
	int         fd;   /* open on the directory (fsync after a rename) */
	/* I/O is checked against this domain. Set before the flusher
	 * exists; read-only afterwards. */
	struct zos_lock_domain *locks;
	struct {
		atomic_uint_fast64_t commits; /* files renamed in, durable */
		atomic_uint_fast64_t bytes_written;
		atomic_uint_fast64_t fsync_ns_sum; /* files and directory */
		atomic_uint_fast64_t fsync_count;
		atomic_uint_fast64_t fsync_ns_max;
	} stats;
};

/*
 * Creates DIR->path and its missing parents (mode 0700), fsyncing the
 * parent of each one created so that the new entries survive a crash,
 * then opens it into DIR->fd. Returns 0 or an errno value (DIR->fd stays
 * -1).
 */
int zos_snapshot_dir_open(struct zos_snapshot_dir *dir);

/* Closes DIR->fd, if open. */
void zos_snapshot_dir_close(struct zos_snapshot_dir *dir);

/*
 * Fills the ZOS_SNAPSHOT_HEADER_LEN bytes at BUF for the LEN payload bytes
 * that follow them (at BUF + ZOS_SNAPSHOT_HEADER_LEN): magic, PART, length,
 * sequence number SEQ and the CRC-32 over them and the payload. LEN must
 * be at most ZOS_SNAPSHOT_PAYLOAD_MAX. No I/O.
 */
void zos_snapshot_frame(uint8_t *buf, uint32_t part, size_t len, uint64_t seq);

/*
 * Reads and verifies the snapshot at PATH, which must name PART: its
 * payload into *PAYLOAD (malloc'd, the caller's; *LEN bytes) and the
 * header's sequence number into *SEQ. Returns 1 when read, 0 when there is
 * no file, -1 with ERROR filled when it cannot be read or does not verify
 * (short, bad magic, wrong part, over the bound, bytes after the payload,
 * bad CRC: each "PATH: what (file is corrupt)"). Never changes the file.
 */
int zos_snapshot_read(struct zos_snapshot_dir *dir, const char *path,
    uint32_t part, uint8_t **payload, size_t *len, uint64_t *seq, char *error,
    size_t error_len);

/*
 * Removes TMP_PATH, a temporary file that a crash left before it was
 * renamed in (so it was never acknowledged). Returns 1 when one was
 * removed, 0 when there was none, -1 with ERROR filled.
 */
int zos_snapshot_remove_tmp(struct zos_snapshot_dir *dir, const char *tmp_path,
    char *error, size_t error_len);

#endif /* ZOS_SNAPSHOT_H */
