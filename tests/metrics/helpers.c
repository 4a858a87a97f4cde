/*
 * Helpers of the metrics and logs tests; see helpers.h.
 */
#include "helpers.h"
#include "proc.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define HTTP_MAX_REPLY (16u << 20)

static long
http_ms_since(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - start->tv_sec) * 1000 +
	    (now.tv_nsec - start->tv_nsec) / 1000000;
}

enum http_result
http_request_try(
    int port, const char *method, const char *path, struct http_reply *out)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct timespec    start;
	char               request[512];
	char              *raw = NULL, *end;
	size_t             len = 0, cap = 0;
	enum http_result   result = HTTP_FAILED;
	int                fd, n;

	memset(out, 0, sizeof(*out));
	sa.sin_port        = htons((uint16_t) port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
		return HTTP_FAILED;
	}
	if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) != 0) {
		result = errno == ECONNREFUSED ? HTTP_REFUSED : HTTP_FAILED;
		goto out;
	}
	n = snprintf(request, sizeof(request),
	    "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n"
	    "\r\n",
	    method, path, port);
	if (write(fd, request, (size_t) n) != n) {
		goto out;
	}

	/* Read to the end (the server closes: Connection: close), for at
	 * most 10 s and HTTP_MAX_REPLY bytes. */
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		struct pollfd pfd  = { .fd = fd, .events = POLLIN };
		long          left = 10000 - http_ms_since(&start);
		ssize_t       got;
		char         *grown;

		if (left <= 0 || poll(&pfd, 1, (int) left) != 1) {
			goto out;
		}
		if (cap - len < 65536) {
			cap = cap == 0 ? 65536 : cap * 2;
			if (cap > HTTP_MAX_REPLY ||
			    (grown = realloc(raw, cap + 1)) == NULL) {
				goto out;
			}
			raw = grown;
		}
		if ((got = read(fd, raw + len, cap - len)) < 0) {
			goto out;
		}
		if (got == 0) {
			break;
		}
		len += (size_t) got;
	}
	raw[len] = '\0';
	if (sscanf(raw, "HTTP/1.1 %d", &out->status) != 1 ||
	    (end = strstr(raw, "\r\n\r\n")) == NULL) {
		goto out;
	}
	snprintf(out->headers, sizeof(out->headers), "%.*s", (int) (end - raw),
	    raw);
	out->body_len = len - (size_t) (end + 4 - raw);
	if ((out->body = malloc(out->body_len + 1)) == NULL) {
		goto out;
	}
	memcpy(out->body, end + 4, out->body_len);
	out->body[out->body_len] = '\0';
	result                   = HTTP_OK;
out:
	free(raw);
	close(fd);
	return result;
}

bool
http_request(
    int port, const char *method, const char *path, struct http_reply *out)
{
	switch (http_request_try(port, method, path, out)) {
	case HTTP_OK:
		return true;
	case HTTP_REFUSED:
		return false;
	case HTTP_FAILED:
		break;
	}
	cr_assert_fail(
	    "%s %s on port %d: no complete reply in 10 s", method, path, port);
	return false;
}

void
http_reply_free(struct http_reply *out)
{
	free(out->body);
	out->body = NULL;
}

int
tcp_connect_loopback(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	int                fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert(fd >= 0);
	sa.sin_port        = htons((uint16_t) port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(connect(fd, (struct sockaddr *) &sa, sizeof(sa)), 0,
	    "connect to %d: %s", port, strerror(errno));
	return fd;
}

void
write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		/* send, so that a closed socket is an error, not SIGPIPE;
		 * write for a file. */
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == ENOTSOCK) {
			n = write(fd, p, len);
		}

		cr_assert(n > 0, "send: %s", strerror(errno));
		p += n;
		len -= (size_t) n;
	}
}

void
read_until_close(int fd, int timeout_ms, struct raw_reply *out)
{
	struct timespec start;
	char            chunk[65536];
	size_t          kept = 0;

	memset(out, 0, sizeof(*out));
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		struct pollfd pfd  = { .fd = fd, .events = POLLIN };
		long          left = timeout_ms - http_ms_since(&start);
		ssize_t       n;
		size_t        keep;

		if (left <= 0 || poll(&pfd, 1, (int) left) != 1) {
			break;
		}
		if ((n = recv(fd, chunk, sizeof(chunk), 0)) <= 0) {
			out->eof   = true;
			out->reset = n < 0;
			break;
		}
		keep = sizeof(out->data) - 1 - kept;
		if ((size_t) n < keep) {
			keep = (size_t) n;
		}
		memcpy(out->data + kept, chunk, keep);
		kept += keep;
		out->total += (size_t) n;
	}
	out->data[kept] = '\0';
	out->elapsed_ms = http_ms_since(&start);
}

int
raw_status(const struct raw_reply *reply)
{
	int status = 0;

	if (sscanf(reply->data, "HTTP/1.1 %d", &status) != 1) {
		return 0;
	}
	return status;
}

int
free_tcp_port(void)
{
	struct sockaddr_in sa  = { .sin_family = AF_INET };
	socklen_t          len = sizeof(sa);
	int                fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert(fd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(bind(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *) &sa, &len), 0);
	close(fd);
	return ntohs(sa.sin_port);
}

/* The inodes of PID's sockets; returns how many (at most MAX). */
static size_t
http_socket_inodes(pid_t pid, unsigned long *inodes, size_t max)
{
	char           dir[64], link[384], target[128];
	DIR           *d;
	struct dirent *e;
	size_t         n = 0;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int) pid);
	d = opendir(dir);
	cr_assert_not_null(d, "%s: %s", dir, strerror(errno));
	while ((e = readdir(d)) != NULL && n < max) {
		ssize_t len;

		snprintf(link, sizeof(link), "%s/%s", dir, e->d_name);
		len = readlink(link, target, sizeof(target) - 1);
		if (len <= 0) {
			continue;
		}
		target[len] = '\0';
		if (sscanf(target, "socket:[%lu]", &inodes[n]) == 1) {
			n++;
		}
	}
	closedir(d);
	return n;
}

size_t
tcp_listen_ports(pid_t pid, int *ports, size_t max)
{
	static const char *const tables[] = { "/proc/net/tcp",
		"/proc/net/tcp6" };
	unsigned long            inodes[256];
	size_t n_inodes = http_socket_inodes(pid, inodes, 256), found = 0;

	for (size_t t = 0; t < 2; t++) {
		FILE *f = fopen(tables[t], "r");
		char  line[512];

		if (f == NULL) {
			continue; /* no IPv6 */
		}
		while (fgets(line, sizeof(line), f) != NULL) {
			unsigned      port, state;
			unsigned long inode;

			if (sscanf(line,
			        " %*u: %*[0-9A-Fa-f]:%x %*[0-9A-Fa-f]:%*x %x "
			        "%*x:%*x %*x:%*x %*x %*u %*u %lu",
			        &port, &state, &inode) != 3 ||
			    state != 0x0a) { /* TCP_LISTEN */
				continue;
			}
			for (size_t i = 0; i < n_inodes; i++) {
				if (inodes[i] == inode && found < max) {
					ports[found++] = (int) port;
				}
			}
		}
		fclose(f);
	}
	return found;
}

bool
metric_value(const char *text, const char *series, double *value)
{
	size_t      n    = strlen(series);
	const char *line = text;

	while (line != NULL && *line != '\0') {
		if (strncmp(line, series, n) == 0 && line[n] == ' ') {
			*value = strtod(line + n + 1, NULL);
			return true;
		}
		line = strchr(line, '\n');
		line = line != NULL ? line + 1 : NULL;
	}
	return false;
}

int
metrics_port_of(const char *output)
{
	const char *at = strstr(output, "metrics on http://127.0.0.1:");
	int         port;

	if (at == NULL ||
	    sscanf(at, "metrics on http://127.0.0.1:%d/", &port) != 1) {
		return -1;
	}
	return port;
}

/* The processes a test started and has not reaped; each test runs in its
 * own process (Criterion forks), so this is per test. */
static pid_t leftover_pids[16];
static char  leftover_paths[16][128];

void
leftover_track(pid_t pid)
{
	for (size_t i = 0; i < 16; i++) {
		if (leftover_pids[i] == 0) {
			leftover_pids[i] = pid;
			return;
		}
	}
	cr_assert_fail("more than 16 processes at once");
}

void
leftover_forget(pid_t pid)
{
	for (size_t i = 0; i < 16; i++) {
		if (leftover_pids[i] == pid) {
			leftover_pids[i] = 0;
		}
	}
}

void
leftover_track_path(const char *path)
{
	for (size_t i = 0; i < 16; i++) {
		if (leftover_paths[i][0] == '\0') {
			snprintf(leftover_paths[i], sizeof(leftover_paths[i]),
			    "%s", path);
			return;
		}
	}
	cr_assert_fail("more than 16 files");
}

void
leftover_kill_all(void)
{
	for (size_t i = 0; i < 16; i++) {
		if (leftover_pids[i] != 0) {
			kill(leftover_pids[i], SIGKILL);
			waitpid(leftover_pids[i], NULL, 0);
			leftover_pids[i] = 0;
		}
		if (leftover_paths[i][0] != '\0') {
			unlink(leftover_paths[i]);
			leftover_paths[i][0] = '\0';
		}
	}
}

void
tracked_start(struct proc *p, char *const argv[])
{
	proc_start(p, argv);
	leftover_track(p->pid);
}

int
tracked_wait(struct proc *p)
{
	int status = proc_wait(p);

	leftover_forget(p->pid);
	return status;
}
