/*
 * Tests for the snapshot files (zos/state/snapshot.c) on their own. The
 * store no longer writes them (zos.db does that); it reads them once, to
 * import a data directory an earlier zosd left. So: the header's bytes
 * (zos_snapshot_frame, which the import tests use to make old files), and
 * a reader that refuses anything it cannot verify, and anything that is
 * not a regular file, without blocking. Payloads here are plain bytes;
 * what they mean is test_codec.c's business, the import is
 * test_store.c's.
 *
 * Each test works in its own directory under /tmp, removed by the fixture.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snapshot.h"
#include "tmpdir.h"

static struct {
	char                    root[64];
	char                    dir_path[128];
	char                    path[192];
	char                    tmp_path[192];
	struct zos_lock_domain  locks;
	struct zos_snapshot_dir dir;
} fx;

static void
fixture_init(void)
{
	snprintf(fx.root, sizeof(fx.root), "/tmp/zos-snapshot-XXXXXX");
	cr_assert_not_null(mkdtemp(fx.root));
	snprintf(fx.dir_path, sizeof(fx.dir_path), "%s/a/b", fx.root);
	snprintf(fx.path, sizeof(fx.path), "%s/part.snap", fx.dir_path);
	snprintf(
	    fx.tmp_path, sizeof(fx.tmp_path), "%s/part.snap.tmp", fx.dir_path);
	zos_lock_domain_init(&fx.locks, true, NULL, NULL);
	memset(&fx.dir, 0, sizeof(fx.dir));
	fx.dir.path  = fx.dir_path;
	fx.dir.fd    = -1;
	fx.dir.locks = &fx.locks;
}

static void
fixture_fini(void)
{
	zos_snapshot_dir_close(&fx.dir);
	test_tmpdir_remove(fx.root);
}

TestSuite(snapshot, .init = fixture_init, .fini = fixture_fini);

static void
spill(const uint8_t *buf, size_t len)
{
	FILE *f = fopen(fx.path, "wb");

	cr_assert_not_null(f);
	cr_assert_eq(fwrite(buf, 1, len, f), len);
	fclose(f);
}

/* Frames LEN bytes of TEXT as PART at SEQ and writes them to fx.path. */
static void
write_ok(uint32_t part, const char *text, size_t len, uint64_t seq)
{
	uint8_t buf[ZOS_SNAPSHOT_HEADER_LEN + 256];

	cr_assert_leq(len, 256);
	memcpy(buf + ZOS_SNAPSHOT_HEADER_LEN, text, len);
	zos_snapshot_frame(buf, part, len, seq);
	spill(buf, ZOS_SNAPSHOT_HEADER_LEN + len);
}

/* The whole of fx.path into BUF; returns its length. */
static size_t
slurp(uint8_t *buf, size_t size)
{
	FILE  *f = fopen(fx.path, "rb");
	size_t n;

	cr_assert_not_null(f);
	n = fread(buf, 1, size, f);
	fclose(f);
	return n;
}

/* Reads fx.path as PART, expecting -1 with WHAT in the error. */
static void
read_fails(uint32_t part, const char *what)
{
	uint8_t *payload = (uint8_t *) "";
	size_t   len;
	uint64_t seq;
	char     err[256];

	cr_assert_eq(zos_snapshot_read(&fx.dir, fx.path, part, &payload, &len,
	                 &seq, err, sizeof(err)),
	    -1);
	cr_assert_null(payload);
	cr_assert(strstr(err, what) != NULL, "%s", err);
	cr_assert(strstr(err, fx.path) != NULL, "%s", err);
}

Test(snapshot, the_directory_is_created_with_its_parents)
{
	struct stat st;

	cr_assert_eq(zos_snapshot_dir_open(&fx.dir), 0);
	cr_assert_geq(fx.dir.fd, 0);
	cr_assert_eq(stat(fx.dir_path, &st), 0);
	cr_assert(S_ISDIR(st.st_mode));
	/* One fsync for each directory made (a, b). */
	cr_assert_eq(atomic_load(&fx.dir.stats.fsync_count), 2);
}

Test(snapshot, the_header_is_as_documented)
{
	uint8_t buf[64];

	cr_assert_eq(zos_snapshot_dir_open(&fx.dir), 0);
	write_ok(2, "hello", 5, 0x0102030405060708ull);
	cr_assert_eq(slurp(buf, sizeof(buf)), ZOS_SNAPSHOT_HEADER_LEN + 5);
	cr_assert_arr_eq(buf, "ZOSSNAP1", 8);
	cr_assert_arr_eq(buf + 8, "\x02\0\0\0", 4);  /* part */
	cr_assert_arr_eq(buf + 12, "\x05\0\0\0", 4); /* length */
	cr_assert_arr_eq(buf + 16, "\x08\x07\x06\x05\x04\x03\x02\x01", 8);
	cr_assert_arr_eq(buf + 28, "\0\0\0\0", 4);
	cr_assert_arr_eq(buf + ZOS_SNAPSHOT_HEADER_LEN, "hello", 5);
}

Test(snapshot, an_empty_payload_is_a_valid_snapshot)
{
	uint8_t *payload;
	size_t   len;
	uint64_t seq;
	char     err[256];

	cr_assert_eq(zos_snapshot_dir_open(&fx.dir), 0);
	write_ok(1, "", 0, 9);
	cr_assert_eq(zos_snapshot_read(&fx.dir, fx.path, 1, &payload, &len,
	                 &seq, err, sizeof(err)),
	    1, "%s", err);
	cr_assert_eq(len, 0);
	cr_assert_eq(seq, 9);
	free(payload);
}

Test(snapshot, every_kind_of_damage_is_reported_as_corrupt)
{
	uint8_t good[64], buf[80];
	size_t  n;

	cr_assert_eq(zos_snapshot_dir_open(&fx.dir), 0);
	write_ok(1, "payload", 7, 4);
	n = slurp(good, sizeof(good));

	read_fails(2, "expected 2"); /* another part's file */

	memcpy(buf, good, n);
	buf[n - 1] ^= 0x01;
	spill(buf, n);
	read_fails(1, "checksum mismatch");

	memcpy(buf, good, n);
	buf[20] ^= 0x80; /* the sequence number is under the CRC too */
	spill(buf, n);
	read_fails(1, "checksum mismatch");

	spill(good, n - 1);
	read_fails(1, "truncated");

	spill(good, 10);
	read_fails(1, "truncated header");

	memcpy(buf, good, n);
	buf[n] = 0;
	spill(buf, n + 1);
	read_fails(1, "bytes after the payload");

	memcpy(buf, good, n);
	buf[0] = 'X';
	spill(buf, n);
	read_fails(1, "bad magic");

	memcpy(buf, good, n);
	buf[15] = 0x10; /* 256 MiB and more */
	spill(buf, n);
	read_fails(1, "256 MiB");

	/* None of it was repaired: the last damage is still there. */
	cr_assert_eq(slurp(buf, sizeof(buf)), n);
	cr_assert_eq(buf[15], 0x10);
}

Test(snapshot, a_leftover_tmp_file_is_removed_once)
{
	char err[256];

	cr_assert_eq(zos_snapshot_dir_open(&fx.dir), 0);
	cr_assert_eq(
	    zos_snapshot_remove_tmp(&fx.dir, fx.tmp_path, err, sizeof(err)),
	    0);
	spill((const uint8_t *) "half", 4);
	cr_assert_eq(rename(fx.path, fx.tmp_path), 0);
	cr_assert_eq(
	    zos_snapshot_remove_tmp(&fx.dir, fx.tmp_path, err, sizeof(err)),
	    1);
	cr_assert_eq(access(fx.tmp_path, F_OK), -1);
}

Test(snapshot, a_fifo_or_a_symbolic_link_is_refused_without_blocking,
    .timeout = 20)
{
	char real[256];

	cr_assert_eq(zos_snapshot_dir_open(&fx.dir), 0);
	/* A FIFO opened for reading would wait for a writer forever. */
	cr_assert_eq(mkfifo(fx.path, 0600), 0);
	read_fails(1, "not a regular file");
	cr_assert_eq(unlink(fx.path), 0);

	/* A link, even to a good snapshot, is not read through. */
	write_ok(1, "payload", 7, 4);
	snprintf(real, sizeof(real), "%s/real.snap", fx.dir_path);
	cr_assert_eq(rename(fx.path, real), 0);
	cr_assert_eq(symlink(real, fx.path), 0);
	read_fails(1, "symbolic link");
	cr_assert_eq(unlink(fx.path), 0);
	cr_assert_eq(symlink("/nonexistent/part.snap", fx.path), 0);
	read_fails(1, "symbolic link");
}
