/*
 * Snapshot files; see snapshot.h for the interface and store.h for the
 * contract the store builds on them.
 *
 * A snapshot is a 32-byte header and a payload:
 *   bytes  0..7   magic "ZOSSNAP1"
 *   bytes  8..11  part: 1 skills, 2 sessions (little endian)
 *   bytes 12..15  payload length in bytes (little endian, <= 256 MiB)
 *   bytes 16..23  sequence number of the copy (little endian)
 *   bytes 24..27  CRC-32 (zlib) of bytes 8..23 and the payload
 *   bytes 28..31  zero
 * The header is fixed-size and little endian so that a reader can tell a
 * torn or foreign file from a good one before it trusts a single length:
 * the magic says "ours", the part says "this file", the length is checked
 * against the bound and against the file's size before anything is
 * allocated for it, and the CRC covers everything after the magic, so a
 * flipped bit anywhere but in the unused tail is caught. The sequence
 * number lives in the header as well as in the payload so that the store
 * can cross-check the two (a payload pasted under another header).
 *
 * Snapshot files were the store's format before the database (db.h):
 * zosd now only reads them, to import an old data directory once
 * (store.c), and makes the data directory itself (0700). Framing
 * (zos_snapshot_frame) is kept so that tests and the fuzzer can build
 * the old files the import reads. A file that does not verify is
 * reported with its path, never repaired.
 */
#include "snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "zrpc/clock.h"

#define SNAPSHOT_MAGIC "ZOSSNAP1"

static void
snapshot_put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++) {
		p[i] = (uint8_t) (v >> (8 * i));
	}
}

static void
snapshot_put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++) {
		p[i] = (uint8_t) (v >> (8 * i));
	}
}

static uint32_t
snapshot_get32(const uint8_t *p)
{
	uint32_t v = 0;

	for (int i = 0; i < 4; i++) {
		v |= (uint32_t) p[i] << (8 * i);
	}
	return v;
}

static uint64_t
snapshot_get64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++) {
		v |= (uint64_t) p[i] << (8 * i);
	}
	return v;
}

/* CRC-32 of header bytes 8..23 and the LEN bytes of PAYLOAD. */
static uint32_t
snapshot_crc(const uint8_t *header, const uint8_t *payload, size_t len)
{
	uLong crc = crc32(0L, Z_NULL, 0);

	crc = crc32(crc, header + 8, 16);
	crc = crc32(crc, payload, (uInt) len); /* len <= 256 MiB */
	return (uint32_t) crc;
}

void
zos_snapshot_frame(uint8_t *buf, uint32_t part, size_t len, uint64_t seq)
{
	memcpy(buf, SNAPSHOT_MAGIC, 8);
	snapshot_put32(buf + 8, part);
	snapshot_put32(buf + 12, (uint32_t) len);
	snapshot_put64(buf + 16, seq);
	snapshot_put32(
	    buf + 24, snapshot_crc(buf, buf + ZOS_SNAPSHOT_HEADER_LEN, len));
	snapshot_put32(buf + 28, 0);
}

/* fsync(FD), timed into DIR's stats. Returns 0 or an errno value. */
static int
snapshot_fsync(struct zos_snapshot_dir *dir, int fd)
{
	uint64_t start = zrpc_now_ns(), took, max;
	int      rv    = 0;

	zos_assert_no_locks_held(dir->locks, "fsync");
	if (fsync(fd) != 0) {
		rv = errno;
	}
	took = zrpc_now_ns() - start;
	atomic_fetch_add_explicit(
	    &dir->stats.fsync_ns_sum, took, memory_order_relaxed);
	atomic_fetch_add_explicit(
	    &dir->stats.fsync_count, 1, memory_order_relaxed);
	max = atomic_load_explicit(
	    &dir->stats.fsync_ns_max, memory_order_relaxed);
	while (took > max &&
	    !atomic_compare_exchange_weak_explicit(&dir->stats.fsync_ns_max,
	        &max, took, memory_order_relaxed, memory_order_relaxed)) { }
	return rv;
}

/* Reads up to LEN bytes of FD into BUF, stopping early only at the end of
 * the file. Returns the count, or -1 with errno set. */
static ssize_t
snapshot_read_all(int fd, uint8_t *buf, size_t len)
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
 * Creates PATH and its missing parents, fsyncing the parent of each one
 * created. Returns 0 or an errno value.
 */
static int
snapshot_mkdirs(struct zos_snapshot_dir *dir, const char *dir_path)
{
	char  *path;
	size_t len = strlen(dir_path);
	int    rv  = 0;

	if ((path = strdup(dir_path)) == NULL) {
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
		/* Owner only: sessions and skills are nobody else's. */
		if (mkdir(path, 0700) != 0) {
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
				rv = snapshot_fsync(dir, fd);
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

int
zos_snapshot_dir_open(struct zos_snapshot_dir *dir)
{
	int rv;

	dir->fd = -1;
	zos_assert_no_locks_held(dir->locks, "open data directory");
	if ((rv = snapshot_mkdirs(dir, dir->path)) != 0) {
		return rv;
	}
	dir->fd = open(dir->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return dir->fd < 0 ? errno : 0;
}

void
zos_snapshot_dir_close(struct zos_snapshot_dir *dir)
{
	if (dir->fd >= 0) {
		close(dir->fd);
		dir->fd = -1;
	}
}

int
zos_snapshot_read(struct zos_snapshot_dir *dir, const char *path,
    uint32_t part, uint8_t **payload, size_t *len, uint64_t *seq, char *error,
    size_t error_len)
{
	uint8_t     header[ZOS_SNAPSHOT_HEADER_LEN];
	struct stat st;
	ssize_t     got;
	uint32_t    named, length;
	int         fd;

	*payload = NULL;
	zos_assert_no_locks_held(dir->locks, "read snapshot");
	/* No symbolic link, and no blocking on a FIFO: the file type is
	 * checked below, before any read. */
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)) <
	    0) {
		if (errno == ENOENT) {
			return 0;
		}
		snprintf(error, error_len, "%s: %s", path,
		    errno == ELOOP
		        ? "is a symbolic link; the store reads only "
		          "regular files"
		        : strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0) {
		snprintf(error, error_len, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(error, error_len, "%s: not a regular file", path);
		goto fail;
	}
	if ((got = snapshot_read_all(fd, header, sizeof(header))) < 0) {
		snprintf(error, error_len, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if (got < ZOS_SNAPSHOT_HEADER_LEN) {
		snprintf(error, error_len,
		    "%s: truncated header (%zd of %d bytes; file is corrupt)",
		    path, got, ZOS_SNAPSHOT_HEADER_LEN);
		goto fail;
	}
	if (memcmp(header, SNAPSHOT_MAGIC, 8) != 0) {
		snprintf(error, error_len,
		    "%s: bad magic, not a zos snapshot (file is corrupt)",
		    path);
		goto fail;
	}
	named  = snapshot_get32(header + 8);
	length = snapshot_get32(header + 12);
	if (named != part || snapshot_get32(header + 28) != 0) {
		snprintf(error, error_len,
		    "%s: header names part %u, expected %d (file is corrupt)",
		    path, named, (int) part);
		goto fail;
	}
	if (length > ZOS_SNAPSHOT_PAYLOAD_MAX) {
		snprintf(error, error_len,
		    "%s: payload of %u bytes is over the 256 MiB bound (file "
		    "is corrupt)",
		    path, length);
		goto fail;
	}
	if ((uint64_t) st.st_size !=
	    (uint64_t) ZOS_SNAPSHOT_HEADER_LEN + length) {
		snprintf(error, error_len,
		    "%s: %s (%lld bytes, the header says %llu; file is "
		    "corrupt)",
		    path,
		    (uint64_t) st.st_size <
		            (uint64_t) ZOS_SNAPSHOT_HEADER_LEN + length
		        ? "truncated"
		        : "bytes after the payload",
		    (long long) st.st_size,
		    (unsigned long long) ZOS_SNAPSHOT_HEADER_LEN + length);
		goto fail;
	}
	if ((*payload = malloc(length > 0 ? length : 1)) == NULL) {
		snprintf(error, error_len, "%s: out of memory", path);
		goto fail;
	}
	if ((got = snapshot_read_all(fd, *payload, length)) < 0) {
		snprintf(error, error_len, "%s: %s", path, strerror(errno));
		goto fail_payload;
	}
	if ((size_t) got != length) {
		snprintf(error, error_len,
		    "%s: truncated (%zd of %u payload bytes; file is corrupt)",
		    path, got, length);
		goto fail_payload;
	}
	if (snapshot_get32(header + 24) !=
	    snapshot_crc(header, *payload, length)) {
		snprintf(error, error_len,
		    "%s: checksum mismatch (file is corrupt)", path);
		goto fail_payload;
	}
	close(fd);
	*len = length;
	*seq = snapshot_get64(header + 16);
	return 1;

fail_payload:
	free(*payload);
	*payload = NULL;
fail:
	close(fd);
	return -1;
}

int
zos_snapshot_remove_tmp(struct zos_snapshot_dir *dir, const char *tmp_path,
    char *error, size_t error_len)
{
	zos_assert_no_locks_held(dir->locks, "remove leftover snapshot");
	if (unlink(tmp_path) == 0) {
		return 1;
	}
	if (errno == ENOENT) {
		return 0;
	}
	snprintf(error, error_len, "%s: cannot remove leftover file: %s",
	    tmp_path, strerror(errno));
	return -1;
}
