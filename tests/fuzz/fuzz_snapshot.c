/*
 * Fuzz target: the store's loader, as zosd runs it at start-up on an
 * earlier data directory's snapshot files: zos_snapshot_read (header,
 * bounds, CRC), then the codec (zos_codec_decode_skills or _sessions),
 * then the state's own checks (zos_sessions_restore into a fresh table).
 *
 * The first byte is the mode: bit 0 picks the part (skills.snap or
 * sessions.snap); with bit 1 clear the rest is the whole file, with it set
 * the next 8 bytes are a sequence number (little endian) and the rest the
 * payload, framed here with a correct header and CRC (zos_snapshot_frame)
 * so that the fuzzer reaches the codec and the restore without having to
 * forge a CRC-32. The file lives on tmpfs (/dev/shm) when there is one,
 * so the target does no disk I/O.
 */
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec.h"
#include "fuzz.h"
#include "lock.h"
#include "sessions.h"
#include "skills.h"
#include "snapshot.h"
#include "store.h"

#define FUZZ_MAX_SESSIONS 1000

struct fuzz_snapshot {
	struct zos_lock_domain  locks;
	struct zos_snapshot_dir dir;
	int                     fd;
	char                    dir_path[64];
	char                    path[96];
};

/* The one target's file, for the exit handler. */
static struct fuzz_snapshot fuzz_snapshot_files;

static void
fuzz_snapshot_cleanup(void)
{
	unlink(fuzz_snapshot_files.path);
	rmdir(fuzz_snapshot_files.dir_path);
}

/*
 * The reader opens only regular files, never through a symbolic link
 * (so not /proc/self/fd/N of a memfd): the file is a real one, in a
 * directory of its own on tmpfs (/dev/shm) when there is one, removed at
 * exit. Checked once: a framed empty payload must read back, or every
 * input would stop at the open and the target would fuzz nothing.
 */
static void
fuzz_snapshot_init(struct fuzz_snapshot *f)
{
	uint8_t  header[ZOS_SNAPSHOT_HEADER_LEN];
	uint8_t *payload;
	size_t   len;
	uint64_t seq;
	char     error[512];

	zos_lock_domain_init(&f->locks, true, NULL, NULL);
	snprintf(f->dir_path, sizeof(f->dir_path), "%s/zos-fuzz-XXXXXX",
	    access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
	if (mkdtemp(f->dir_path) == NULL) {
		perror("fuzz: mkdtemp");
		abort();
	}
	snprintf(f->path, sizeof(f->path), "%s/part.snap", f->dir_path);
	f->dir.path  = f->dir_path;
	f->dir.fd    = -1;
	f->dir.locks = &f->locks;
	if ((f->fd = open(f->path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0) {
		perror("fuzz: create the snapshot file");
		abort();
	}
	atexit(fuzz_snapshot_cleanup);
	zos_snapshot_frame(header, ZOS_STORE_SKILLS, 0, 0);
	if (pwrite(f->fd, header, sizeof(header), 0) !=
	        (ssize_t) sizeof(header) ||
	    zos_snapshot_read(&f->dir, f->path, ZOS_STORE_SKILLS, &payload,
	        &len, &seq, error, sizeof(error)) != 1) {
		fprintf(stderr, "fuzz: a valid snapshot does not read: %s\n",
		    error);
		abort();
	}
	free(payload);
}

/* Replaces the file's contents with LEN bytes at BUF. */
static void
fuzz_snapshot_put(struct fuzz_snapshot *f, const uint8_t *buf, size_t len)
{
	if (ftruncate(f->fd, 0) != 0 ||
	    (len > 0 && pwrite(f->fd, buf, len, 0) != (ssize_t) len)) {
		perror("fuzz: write the snapshot file");
		abort();
	}
}

/* The file as the store would load it, for PART. */
static void
fuzz_snapshot_load(struct fuzz_snapshot *f, uint32_t part)
{
	char     error[512];
	uint8_t *payload;
	size_t   len;
	uint64_t seq;

	if (zos_snapshot_read(&f->dir, f->path, part, &payload, &len, &seq,
	        error, sizeof(error)) != 1) {
		return;
	}
	if (part == ZOS_STORE_SKILLS) {
		struct zos_skill_vector *v = NULL;

		if (zos_codec_decode_skills(
		        payload, len, seq, &v, error, sizeof(error)) == 0) {
			zos_skill_vector_unref(v);
		}
	} else {
		struct zos_sessions_image image;
		struct zos_sessions      *sessions;

		memset(&image, 0, sizeof(image));
		if (zos_codec_decode_sessions(payload, len, seq, &image, error,
		        sizeof(error)) == 0) {
			if (zos_sessions_create(&sessions, &f->locks,
			        FUZZ_MAX_SESSIONS) != ZOS_SESSION_OK) {
				abort();
			}
			zos_sessions_restore(
			    sessions, &image, error, sizeof(error));
			zos_sessions_destroy(sessions);
			zos_sessions_image_finish(&image);
		}
	}
	free(payload);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool                 ready;
	struct fuzz_snapshot *const f = &fuzz_snapshot_files;
	uint32_t                    part;

	if (!ready) {
		fuzz_snapshot_init(f);
		ready = true;
	}
	if (size == 0) {
		return 0;
	}
	part = (data[0] & 1) != 0 ? ZOS_STORE_SESSIONS : ZOS_STORE_SKILLS;
	if ((data[0] & 2) == 0) {
		fuzz_snapshot_put(f, data + 1, size - 1);
	} else {
		uint64_t seq = 0;
		size_t   len;
		uint8_t *buf;

		if (size < 9) {
			return 0;
		}
		for (int i = 0; i < 8; i++) {
			seq |= (uint64_t) data[1 + i] << (8 * i);
		}
		len = size - 9;
		if ((buf = malloc(ZOS_SNAPSHOT_HEADER_LEN + len)) == NULL) {
			abort();
		}
		memcpy(buf + ZOS_SNAPSHOT_HEADER_LEN, data + 9, len);
		zos_snapshot_frame(buf, part, len, seq);
		fuzz_snapshot_put(f, buf, ZOS_SNAPSHOT_HEADER_LEN + len);
		free(buf);
	}
	fuzz_snapshot_load(f, part);
	return 0;
}
