/*
 * DATA_DIR/node-id (node_id.h).
 */
#include "node_id.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NODE_ID_MAX 65535u
#define NODE_ID_FILE_MAX 16 /* bytes read: "65535\n" and some slack */

int
zos_node_id_read(
    const char *dir, uint32_t *node, char *error, size_t error_len)
{
	char          path[4096], text[NODE_ID_FILE_MAX + 1], *end;
	ssize_t       n;
	size_t        got = 0;
	unsigned long v;
	int           fd;

	*node = 0;
	if (dir == NULL) {
		return 0;
	}
	if ((size_t) snprintf(path, sizeof(path), "%s/%s", dir,
	        ZOS_NODE_ID_FILE) >= sizeof(path)) {
		snprintf(error, error_len, "data directory path too long");
		return -1;
	}
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		if (errno == ENOENT || errno == ENOTDIR) {
			return 0;
		}
		snprintf(error, error_len, "%s: %s", path, strerror(errno));
		return -1;
	}
	while (got < NODE_ID_FILE_MAX) {
		n = read(fd, text + got, NODE_ID_FILE_MAX - got);
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n <= 0) {
			break;
		}
		got += (size_t) n;
	}
	close(fd);
	text[got] = '\0';
	if (got > 0 && text[got - 1] == '\n') {
		text[--got] = '\0';
	}
	errno = 0;
	v     = strtoul(text, &end, 10);
	if (got == 0 || text[0] < '1' || text[0] > '9' || *end != '\0' ||
	    errno != 0 || v > NODE_ID_MAX) {
		snprintf(error, error_len,
		    "%s does not hold a node id (1 to 65535); fix or remove "
		    "it",
		    path);
		return -1;
	}
	*node = (uint32_t) v;
	return 0;
}

int
zos_node_id_write(
    const char *dir, uint32_t node, char *error, size_t error_len)
{
	char path[4096], tmp[4096 + 8], text[16];
	int  fd, len, dfd;

	if ((size_t) snprintf(path, sizeof(path), "%s/%s", dir,
	        ZOS_NODE_ID_FILE) >= sizeof(path)) {
		snprintf(error, error_len, "data directory path too long");
		return -1;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	len = snprintf(text, sizeof(text), "%u\n", node);
	fd  = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(error, error_len, "%s: %s", tmp, strerror(errno));
		return -1;
	}
	if (write(fd, text, (size_t) len) != len || fsync(fd) != 0) {
		snprintf(error, error_len, "%s: %s", tmp,
		    errno != 0 ? strerror(errno) : "short write");
		close(fd);
		unlink(tmp);
		return -1;
	}
	close(fd);
	if (rename(tmp, path) != 0) {
		snprintf(error, error_len, "%s: %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	/* The rename itself is durable once the directory is. */
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		(void) fsync(dfd);
		close(dfd);
	}
	return 0;
}

int
zos_node_id_choose(uint32_t flag, uint32_t stored, const char *dir,
    uint32_t *out, char *error, size_t error_len)
{
	if (flag != 0 && stored != 0 && flag != stored) {
		snprintf(error, error_len,
		    "--node-id %u, but the data directory %s belongs to "
		    "node %u (its %s file); its sessions carry that id: "
		    "start it as node %u, or give another --data-dir",
		    flag, dir != NULL ? dir : "", stored, ZOS_NODE_ID_FILE,
		    stored);
		return -1;
	}
	*out = stored != 0 ? stored : flag != 0 ? flag : 1;
	return 0;
}
