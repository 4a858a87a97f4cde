/*
 * Helpers of the metrics and logs tests. Just enough HTTP/1.1: one request
 * over a plain TCP socket to 127.0.0.1, the reply read to the end (bounded
 * in time and size), and the Prometheus text picked apart by lines. A free
 * TCP port, and the TCP ports a process listens on. And a record of the
 * zosd processes a test started, so that its fini can kill those a failed
 * assertion left behind.
 */
#ifndef ZOS_TEST_METRICS_HELPERS_H
#define ZOS_TEST_METRICS_HELPERS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct http_reply {
	int    status;        /* 200, 404, ...; 0 when nothing came back */
	char   headers[2048]; /* the header lines, NUL-terminated */
	char  *body;          /* malloc'd, NUL-terminated */
	size_t body_len;
};

enum http_result {
	HTTP_OK,      /* a whole reply came back */
	HTTP_REFUSED, /* nothing listens there */
	HTTP_FAILED,  /* reset, cut short, not HTTP, or 10 s passed */
};

/*
 * Sends METHOD PATH to 127.0.0.1:PORT ("Connection: close") and reads the
 * reply, for at most 10 s. Asserts nothing (safe from any thread); on
 * HTTP_OK the caller frees OUT with http_reply_free.
 */
enum http_result http_request_try(
    int port, const char *method, const char *path, struct http_reply *out);

/*
 * Sends METHOD PATH to 127.0.0.1:PORT ("Connection: close") and reads the
 * reply, for at most 10 s. Returns false when the connection is refused
 * (nothing listens there); other failures fail the test.
 */
bool http_request(
    int port, const char *method, const char *path, struct http_reply *out);

/* Frees OUT's body. */
void http_reply_free(struct http_reply *out);

/* A TCP connection to 127.0.0.1:PORT (asserts that it connects). */
int tcp_connect_loopback(int port);

/* Writes all LEN bytes at DATA to FD, a socket or a file (asserts). */
void write_all(int fd, const void *data, size_t len);

struct raw_reply {
	char   data[4096]; /* the first bytes, NUL-terminated */
	size_t total;      /* every byte read, kept or not */
	bool   eof;        /* the peer closed (or reset) the connection */
	bool   reset;      /* ... with a reset */
	long   elapsed_ms; /* from the call to the close, or to the bound */
};

/*
 * Reads FD until the peer closes it or TIMEOUT_MS pass, keeping the first
 * bytes and counting all of them. Asserts nothing.
 */
void read_until_close(int fd, int timeout_ms, struct raw_reply *out);

/* The status of the first response in REPLY ("HTTP/1.1 NNN"), 0 if none. */
int raw_status(const struct raw_reply *reply);

/* A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0,
 * read back, closed). */
int free_tcp_port(void);

/* Fills PORTS (at most MAX) with the TCP ports process PID listens on and
 * returns how many there are. */
size_t tcp_listen_ports(pid_t pid, int *ports, size_t max);

/*
 * The value of the sample whose series is exactly SERIES (name and
 * labels, as written: "zos_cache_entries", "x_total{code=\"OK\"}") in the
 * exposition TEXT; false when there is no such line.
 */
bool metric_value(const char *text, const char *series, double *value);

/* The port of "http://127.0.0.1:PORT/..." in the "metrics on" ready line
 * of OUTPUT; -1 when there is none. */
int metrics_port_of(const char *output);

struct proc;

/* proc_start and proc_wait (proc.h), with the process tracked between
 * the two. */
void tracked_start(struct proc *p, char *const argv[]);
int  tracked_wait(struct proc *p);

/*
 * Records that the test started PID (at most 16 at once), or that it has
 * reaped it (forget).
 */
void leftover_track(pid_t pid);
void leftover_forget(pid_t pid);

/* Records a file the test creates (an ipc socket), to be removed. */
void leftover_track_path(const char *path);

/* Kills (SIGKILL) and reaps every tracked process and removes every
 * tracked file: the fini of the suites, which runs also when an assertion
 * ended the test early. */
void leftover_kill_all(void);

#endif /* ZOS_TEST_METRICS_HELPERS_H */
