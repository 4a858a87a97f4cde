/*
 * A private redis-server for tests: started in a temporary directory of
 * its own, listening on a unix socket there only (--port 0, no TCP),
 * persisting nothing (--save '', no AOF), and stopped by its PID. It dies
 * with the test process too (PR_SET_PDEATHSIG), so a failed assertion
 * leaves no server behind. No Criterion dependency: stress programs may
 * use it. The binary is $ZOS_REDIS_SERVER (meson sets it), else
 * redis-server from PATH.
 */
#ifndef ZOS_TEST_REDIS_H
#define ZOS_TEST_REDIS_H

#include <stdbool.h>
#include <sys/types.h>

struct test_redis {
	pid_t pid;          /* 0 = not running */
	char  dir[128];     /* the temporary directory */
	char  socket[192];  /* DIR/redis.sock */
	char  url[208];     /* unix://SOCKET, for --cache-url */
	char  password[64]; /* "" = none */
};

/*
 * Starts a redis-server in a new temporary directory, with requirepass
 * PASSWORD unless it is NULL, and waits (at most 10 s) until it answers
 * on its socket. Returns 0, or -1 with the reason on stderr (nothing left
 * running or on disk then).
 */
int test_redis_start(struct test_redis *r, const char *password);

/*
 * Stops the server (SIGTERM, then SIGKILL after 5 s) and reaps it,
 * keeping the directory, so that test_redis_restart brings it back on
 * the same socket. Returns 0, or -1 if it was not running.
 */
int test_redis_kill(struct test_redis *r);

/* Starts the server again on the same socket (after test_redis_kill);
 * 0 or -1 as test_redis_start. */
int test_redis_restart(struct test_redis *r);

/* Stops the server if it runs and removes its directory. Safe to call
 * twice, and on a struct test_redis_start failed on. */
void test_redis_stop(struct test_redis *r);

/*
 * Stops every server started in this process and not stopped yet: a
 * suite's .fini, for a test that an assertion ended early.
 */
void test_redis_stop_left(void);

#endif /* ZOS_TEST_REDIS_H */
