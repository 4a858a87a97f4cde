/*
 * The test redis-server (redis.h). Readiness is polled, not slept for: a
 * bounded loop connects to the socket and sends PING until a reply line
 * comes back ("+PONG", or "-NOAUTH" when a password is set: either way
 * the server is serving).
 */
#include "redis.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tmpdir.h"

#define REDIS_READY_MS 10000
#define REDIS_STOP_MS 5000
#define REDIS_POLL_MS 10

static void
redis_pause_ms(int ms)
{
	struct timespec ts = { .tv_sec = 0, .tv_nsec = ms * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) { }
}

/* One PING on the socket: true when a reply line came back. */
static bool
redis_answers(const struct test_redis *r)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	char               buf[64];
	struct pollfd      pfd;
	bool               ok = false;
	int                fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		return false;
	}
	if (strlen(r->socket) >= sizeof(addr.sun_path)) {
		close(fd);
		return false;
	}
	memcpy(addr.sun_path, r->socket, strlen(r->socket) + 1);
	if (connect(fd, (struct sockaddr *) &addr, sizeof(addr)) == 0 &&
	    write(fd, "PING\r\n", 6) == 6) {
		pfd = (struct pollfd) { .fd = fd, .events = POLLIN };
		if (poll(&pfd, 1, 1000) == 1 &&
		    read(fd, buf, sizeof(buf)) > 0) {
			ok = buf[0] == '+' || buf[0] == '-';
		}
	}
	close(fd);
	return ok;
}

static int
redis_spawn(struct test_redis *r)
{
	const char *bin = getenv("ZOS_REDIS_SERVER");
	char        log[200];
	pid_t       parent = getpid();
	pid_t       pid;
	int         waited;

	if (bin == NULL || bin[0] == '\0') {
		bin = "redis-server";
	}
	snprintf(log, sizeof(log), "%s/redis.log", r->dir);
	char *argv[] = { (char *) bin, "--port", "0", "--unixsocket",
		r->socket, "--unixsocketperm", "700", "--save", "",
		"--appendonly", "no", "--dir", r->dir, "--logfile", log,
		"--daemonize", "no",
		r->password[0] != '\0' ? "--requirepass" : NULL, r->password,
		NULL };

	unlink(r->socket);
	if ((pid = fork()) < 0) {
		perror("test redis: fork");
		return -1;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent) {
			_exit(127);
		}
		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 1);
			dup2(null, 2);
		}
		execvp(bin, argv);
		_exit(127);
	}
	r->pid = pid;
	for (waited = 0; waited < REDIS_READY_MS; waited += REDIS_POLL_MS) {
		int status;

		if (waitpid(pid, &status, WNOHANG) == pid) {
			fprintf(stderr,
			    "test redis: %s exited before serving (see %s)\n",
			    bin, log);
			r->pid = 0;
			return -1;
		}
		if (redis_answers(r)) {
			return 0;
		}
		redis_pause_ms(REDIS_POLL_MS);
	}
	fprintf(stderr, "test redis: %s did not answer within %d ms\n", bin,
	    REDIS_READY_MS);
	test_redis_kill(r);
	return -1;
}

/*
 * The servers started and not stopped yet, by copy (a test's struct may be
 * gone when its suite's fini runs after a failed assertion), for
 * test_redis_stop_left. Test code: one test at a time per process.
 */
#define REDIS_LEFT_MAX 8
static struct {
	pid_t pid;
	char  dir[128];
} redis_left[REDIS_LEFT_MAX];

/* Records R's pid under its directory (pid 0: not running; dir "":
 * forget it). */
static void
redis_track(const char *dir, pid_t pid, bool forget)
{
	int free_slot = -1;

	for (int i = 0; i < REDIS_LEFT_MAX; i++) {
		if (redis_left[i].dir[0] == '\0') {
			free_slot = free_slot < 0 ? i : free_slot;
		} else if (strcmp(redis_left[i].dir, dir) == 0) {
			redis_left[i].pid = pid;
			if (forget) {
				redis_left[i].dir[0] = '\0';
			}
			return;
		}
	}
	if (!forget && free_slot >= 0) {
		redis_left[free_slot].pid = pid;
		snprintf(redis_left[free_slot].dir,
		    sizeof(redis_left[free_slot].dir), "%s", dir);
	}
}

void
test_redis_stop_left(void)
{
	for (int i = 0; i < REDIS_LEFT_MAX; i++) {
		struct test_redis r = { .pid = redis_left[i].pid };

		if (redis_left[i].dir[0] == '\0') {
			continue;
		}
		snprintf(r.dir, sizeof(r.dir), "%s", redis_left[i].dir);
		test_redis_stop(&r);
	}
}

int
test_redis_start(struct test_redis *r, const char *password)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->dir, sizeof(r->dir), "/tmp/zos-redis-XXXXXX");
	if (mkdtemp(r->dir) == NULL) {
		perror("test redis: mkdtemp");
		r->dir[0] = '\0';
		return -1;
	}
	snprintf(r->socket, sizeof(r->socket), "%s/redis.sock", r->dir);
	snprintf(r->url, sizeof(r->url), "unix://%s", r->socket);
	if (password != NULL) {
		snprintf(r->password, sizeof(r->password), "%s", password);
	}
	if (redis_spawn(r) != 0) {
		test_redis_stop(r);
		return -1;
	}
	redis_track(r->dir, r->pid, false);
	return 0;
}

int
test_redis_kill(struct test_redis *r)
{
	int status;

	if (r->pid <= 0) {
		return -1;
	}
	kill(r->pid, SIGTERM);
	for (int waited = 0; waited < REDIS_STOP_MS; waited += REDIS_POLL_MS) {
		if (waitpid(r->pid, &status, WNOHANG) == r->pid) {
			r->pid = 0;
			redis_track(r->dir, 0, false);
			return 0;
		}
		redis_pause_ms(REDIS_POLL_MS);
	}
	kill(r->pid, SIGKILL);
	waitpid(r->pid, &status, 0);
	r->pid = 0;
	redis_track(r->dir, 0, false);
	return 0;
}

int
test_redis_restart(struct test_redis *r)
{
	if (r->pid > 0 || r->dir[0] == '\0') {
		return -1;
	}
	if (redis_spawn(r) != 0) {
		return -1;
	}
	redis_track(r->dir, r->pid, false);
	return 0;
}

void
test_redis_stop(struct test_redis *r)
{
	(void) test_redis_kill(r);
	if (r->dir[0] != '\0') {
		redis_track(r->dir, 0, true);
		(void) test_tmpdir_remove(r->dir);
		r->dir[0] = '\0';
	}
}
