/*
 * The metrics endpoint's HTTP server; see http_metrics.h for why it is
 * ours and what it bounds.
 *
 * One thread polls a wake-up pipe (stop), the listener and every
 * connection. A connection lives in a fixed table of max_connections
 * entries and goes READING (the request head, into a buffer of
 * max_request_bytes) -> WRITING (one response, head and body) ->
 * LINGERING (shut for writing; what the client still sends is dropped)
 * -> closed, each step under a deadline that the poll timeout honours, so
 * no connection outlives request_timeout_ms + write_timeout_ms +
 * HTTP_LINGER_MS. Nothing is shared with other threads except the
 * wake-up pipe and, through the render callback, whatever it reads.
 */
#include "http_metrics.h"
#include "http_request.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define HTTP_LINGER_MS 1000               /* after a response: drop input */
#define HTTP_LINGER_MAX_BYTES (64u << 10) /* dropped at most */
#define HTTP_ACCEPT_BATCH 16              /* accepts per poll round */
#define HTTP_ACCEPT_PAUSE_MS 100          /* after EMFILE and the like */

enum http_conn_state {
	HTTP_CONN_FREE,
	HTTP_CONN_READING,   /* the request head */
	HTTP_CONN_WRITING,   /* the response */
	HTTP_CONN_LINGERING, /* shut for writing; input dropped */
};

struct http_conn {
	enum http_conn_state state;
	int                  fd;
	uint64_t             deadline_ms; /* of the current state */
	char                *in;          /* max_request_bytes; owned */
	size_t               in_len;
	char                 head[512]; /* the response's status and headers */
	size_t               head_len;
	const char          *body; /* owned when body_owned */
	size_t               body_len;
	bool                 body_owned;
	size_t               sent;    /* of head_len + body_len */
	size_t               dropped; /* while lingering */
};

struct zos_http {
	struct zos_http_config config; /* strings point to the copies */
	char                  *path;
	char                  *token;
	int                    listen_fd;
	int                    wake[2]; /* stop writes to wake[1] */
	unsigned               port;
	pthread_t              thread;
	bool                   thread_started;
	/* The server thread's own, from start to stop: */
	struct http_conn *conns; /* config.max_connections */
	size_t            n_conns;
	struct pollfd    *pfds;     /* 2 + max_connections */
	size_t           *pfd_conn; /* pfds[2 + k] is conns[pfd_conn[k]] */
	uint64_t          accept_paused_until_ms;
};

/* ---- small helpers ---- */

static uint64_t
http_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t) ts.tv_sec * 1000u + (uint64_t) ts.tv_nsec / 1000000u;
}

static const char *
http_reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 503:
		return "Service Unavailable";
	}
	return "Error";
}

bool
zos_http_bearer_matches(const char *value, size_t len, const char *token)
{
	size_t   token_len = strlen(token);
	unsigned diff;

	/* The scheme is not secret: checking it first leaks nothing. */
	if (token_len == 0 || len < 7 ||
	    strncasecmp(value, "Bearer ", 7) != 0) {
		return false;
	}
	value += 7;
	len -= 7;
	/* Every byte of VALUE is compared, whatever differs first. */
	diff = len != token_len;
	for (size_t i = 0; i < len; i++) {
		diff |= (unsigned char) value[i] ^
		    (unsigned char) token[i < token_len ? i : 0];
	}
	return diff == 0;
}

int
zos_http_read_token(const char *path, char **out, bool *open_to_others,
    char *error, size_t error_len)
{
	char        buf[ZOS_HTTP_MAX_TOKEN + 2];
	struct stat st;
	ssize_t     got;
	size_t      len = 0, eq = 0;
	int         fd;

	*out = NULL;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		snprintf(error, error_len, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(error, error_len, "%s: not a regular file", path);
		close(fd);
		return -1;
	}
	*open_to_others = (st.st_mode & 0077) != 0;
	while (len < sizeof(buf) &&
	    (got = read(fd, buf + len, sizeof(buf) - len)) != 0) {
		if (got < 0) {
			if (errno == EINTR) {
				continue;
			}
			snprintf(
			    error, error_len, "%s: %s", path, strerror(errno));
			close(fd);
			explicit_bzero(buf, sizeof(buf));
			return -1;
		}
		len += (size_t) got;
	}
	close(fd);
	/* The first line, without its line end. */
	for (size_t i = 0; i < len; i++) {
		if (buf[i] == '\n') {
			len = i;
			break;
		}
	}
	if (len > 0 && buf[len - 1] == '\r') {
		len--;
	}
	if (len == 0 || len > ZOS_HTTP_MAX_TOKEN) {
		snprintf(error, error_len,
		    len == 0 ? "%s: no token on its first line"
		             : "%s: the token is over 1024 bytes",
		    path);
		explicit_bzero(buf, sizeof(buf));
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char) buf[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') ||
		    (c != '\0' && strchr("-._~+/", c) != NULL);

		if (c == '=') {
			eq++;
		} else if (!ok || eq > 0) {
			snprintf(error, error_len,
			    "%s: the token may hold only letters, digits, "
			    "- . _ ~ + / and a trailing =",
			    path);
			explicit_bzero(buf, sizeof(buf));
			return -1;
		}
	}
	if (eq == len || (*out = strndup(buf, len)) == NULL) {
		snprintf(error, error_len,
		    eq == len ? "%s: no token on its first line"
		              : "%s: out of memory",
		    path);
		explicit_bzero(buf, sizeof(buf));
		return -1;
	}
	explicit_bzero(buf, sizeof(buf));
	return 0;
}

/* ---- connections ---- */

static void
http_conn_close(struct zos_http *h, struct http_conn *c)
{
	close(c->fd);
	free(c->in);
	if (c->body_owned) {
		free((char *) c->body);
	}
	memset(c, 0, sizeof(*c));
	c->state = HTTP_CONN_FREE;
	c->fd    = -1;
	h->n_conns--;
	h->accept_paused_until_ms = 0; /* a descriptor is free again */
}

/* Sends what is left of the response; then lingers. */
static void
http_conn_send(struct zos_http *h, struct http_conn *c, uint64_t now)
{
	while (c->sent < c->head_len + c->body_len) {
		struct iovec  iov[2];
		struct msghdr msg = { .msg_iov = iov };
		ssize_t       n;

		if (c->sent < c->head_len) {
			iov[msg.msg_iovlen].iov_base = c->head + c->sent;
			iov[msg.msg_iovlen].iov_len  = c->head_len - c->sent;
			msg.msg_iovlen++;
			iov[msg.msg_iovlen].iov_base = (char *) c->body;
			iov[msg.msg_iovlen].iov_len  = c->body_len;
		} else {
			iov[msg.msg_iovlen].iov_base =
			    (char *) c->body + (c->sent - c->head_len);
			iov[msg.msg_iovlen].iov_len =
			    c->head_len + c->body_len - c->sent;
		}
		msg.msg_iovlen++;
		n = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				return; /* POLLOUT */
			}
			if (errno == EINTR) {
				continue;
			}
			http_conn_close(h, c);
			return;
		}
		c->sent += (size_t) n;
	}
	if (c->body_owned) {
		free((char *) c->body);
	}
	c->body       = NULL;
	c->body_owned = false;
	shutdown(c->fd, SHUT_WR);
	c->state       = HTTP_CONN_LINGERING;
	c->deadline_ms = now + HTTP_LINGER_MS;
}

/*
 * Answers C with STATUS: EXTRA header lines (each ending in CRLF, or ""),
 * BODY (LEN bytes; freed by the connection when OWNED) sent unless
 * HEAD_ONLY. Every response closes the connection.
 */
static void
http_conn_respond(struct zos_http *h, struct http_conn *c, uint64_t now,
    int status, const char *content_type, const char *extra, const char *body,
    size_t len, bool owned, bool head_only)
{
	int n = snprintf(c->head, sizeof(c->head),
	    "HTTP/1.1 %d %s\r\n"
	    "Content-Type: %s\r\n"
	    "Content-Length: %zu\r\n"
	    "Connection: close\r\n"
	    "%s"
	    "\r\n",
	    status, http_reason(status), content_type, len, extra);

	if (n < 0 || (size_t) n >= sizeof(c->head)) {
		if (owned) {
			free((char *) body);
		}
		http_conn_close(h, c);
		return;
	}
	c->head_len    = (size_t) n;
	c->body        = body;
	c->body_len    = head_only ? 0 : len;
	c->body_owned  = owned;
	c->sent        = 0;
	c->state       = HTTP_CONN_WRITING;
	c->deadline_ms = now + h->config.write_timeout_ms;
	http_conn_send(h, c, now);
}

/* An error response with its reason as a plain-text body. */
static void
http_conn_error(struct zos_http *h, struct http_conn *c, uint64_t now,
    int status, const char *extra)
{
	const char *reason = http_reason(status);
	char        body[64];
	int         n    = snprintf(body, sizeof(body), "%s\n", reason);
	char       *copy = malloc((size_t) n);

	if (copy == NULL) {
		http_conn_close(h, c);
		return;
	}
	memcpy(copy, body, (size_t) n);
	http_conn_respond(h, c, now, status, "text/plain; charset=utf-8",
	    extra, copy, (size_t) n, true, false);
}

/* A whole, well-formed request: auth, path, method, then the body. */
static void
http_conn_serve(struct zos_http *h, struct http_conn *c, uint64_t now,
    const struct zos_http_request *req)
{
	bool   get, head;
	char  *text;
	size_t len = 0;

	if (h->token != NULL &&
	    (req->authorization == NULL ||
	        !zos_http_bearer_matches(
	            req->authorization, req->authorization_len, h->token))) {
		http_conn_error(h, c, now, 401,
		    "WWW-Authenticate: Bearer realm=\"zosd metrics\"\r\n");
		return;
	}
	if (req->path_len != strlen(h->path) ||
	    memcmp(req->path, h->path, req->path_len) != 0) {
		http_conn_error(h, c, now, 404, "");
		return;
	}
	get  = req->method_len == 3 && memcmp(req->method, "GET", 3) == 0;
	head = req->method_len == 4 && memcmp(req->method, "HEAD", 4) == 0;
	if (!get && !head) {
		http_conn_error(h, c, now, 405, "Allow: GET, HEAD\r\n");
		return;
	}
	if ((text = h->config.render(h->config.render_arg, &len)) == NULL) {
		http_conn_error(h, c, now, 500, "");
		return;
	}
	http_conn_respond(
	    h, c, now, 200, h->config.content_type, "", text, len, true, head);
}

static void
http_conn_read(struct zos_http *h, struct http_conn *c, uint64_t now)
{
	struct zos_http_request req;
	ssize_t                 n;

	n = recv(c->fd, c->in + c->in_len,
	    h->config.max_request_bytes - c->in_len, MSG_DONTWAIT);
	if (n < 0 &&
	    (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
		return;
	}
	if (n <= 0) {
		http_conn_close(h, c); /* gone before asking anything */
		return;
	}
	c->in_len += (size_t) n;
	switch (zos_http_parse_request(c->in, c->in_len, &req)) {
	case ZOS_HTTP_PARSE_MORE:
		if (c->in_len == h->config.max_request_bytes) {
			http_conn_error(h, c, now, 431, "");
		}
		return;
	case ZOS_HTTP_PARSE_BAD:
		http_conn_error(h, c, now, 400, "");
		return;
	case ZOS_HTTP_PARSE_OK:
		http_conn_serve(h, c, now, &req);
		return;
	}
}

/* Reads and drops what a client sends after its response. */
static void
http_conn_drop_input(struct zos_http *h, struct http_conn *c)
{
	char    scratch[4096];
	ssize_t n = recv(c->fd, scratch, sizeof(scratch), MSG_DONTWAIT);

	if (n < 0 &&
	    (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
		return;
	}
	if (n <= 0 || (c->dropped += (size_t) n) > HTTP_LINGER_MAX_BYTES) {
		http_conn_close(h, c);
	}
}

static void
http_conn_io(
    struct zos_http *h, struct http_conn *c, short revents, uint64_t now)
{
	switch (c->state) {
	case HTTP_CONN_READING:
		http_conn_read(h, c, now);
		break;
	case HTTP_CONN_WRITING:
		if ((revents & (POLLERR | POLLHUP)) != 0 &&
		    (revents & POLLOUT) == 0) {
			http_conn_close(h, c);
		} else {
			http_conn_send(h, c, now);
		}
		break;
	case HTTP_CONN_LINGERING:
		http_conn_drop_input(h, c);
		break;
	case HTTP_CONN_FREE:
		break;
	}
}

/* A deadline passed: a request that did not arrive gets 408; anything
 * else is closed. */
static void
http_conn_expire(struct zos_http *h, struct http_conn *c, uint64_t now)
{
	if (c->state == HTTP_CONN_READING) {
		http_conn_error(h, c, now, 408, "");
	} else {
		http_conn_close(h, c);
	}
}

/* Takes the connections waiting on the listener. */
static void
http_accept(struct zos_http *h, uint64_t now)
{
	static const char busy[] =
	    "HTTP/1.1 503 Service Unavailable\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n"
	    "Content-Length: 20\r\n"
	    "Connection: close\r\n"
	    "\r\n"
	    "Service Unavailable\n";

	for (int i = 0; i < HTTP_ACCEPT_BATCH; i++) {
		struct http_conn *c = NULL;
		int               fd;

		fd = accept4(
		    h->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE ||
			    errno == ENOBUFS || errno == ENOMEM) {
				/* The listener stays readable: do not spin
				 * on it. */
				h->accept_paused_until_ms =
				    now + HTTP_ACCEPT_PAUSE_MS;
			}
			return;
		}
		if (h->n_conns == h->config.max_connections) {
			/* Over the cap: told so, in one try, and closed. */
			(void) !send(fd, busy, sizeof(busy) - 1,
			    MSG_NOSIGNAL | MSG_DONTWAIT);
			close(fd);
			continue;
		}
		for (size_t k = 0; k < h->config.max_connections; k++) {
			if (h->conns[k].state == HTTP_CONN_FREE) {
				c = &h->conns[k];
				break;
			}
		}
		if (c == NULL ||
		    (c->in = malloc(h->config.max_request_bytes)) == NULL) {
			close(fd);
			continue;
		}
		c->fd          = fd;
		c->in_len      = 0;
		c->state       = HTTP_CONN_READING;
		c->deadline_ms = now + h->config.request_timeout_ms;
		h->n_conns++;
	}
}

static void *
http_thread(void *arg)
{
	struct zos_http *h = arg;

	for (;;) {
		uint64_t now     = http_now_ms();
		int      timeout = -1;
		nfds_t   n       = 2;

		h->pfds[0] =
		    (struct pollfd) { .fd = h->wake[0], .events = POLLIN };
		h->pfds[1] =
		    (struct pollfd) { .fd = h->listen_fd, .events = POLLIN };
		if (now < h->accept_paused_until_ms) {
			h->pfds[1].fd = -1; /* ignored by poll */
			timeout = (int) (h->accept_paused_until_ms - now);
		}
		for (size_t k = 0; k < h->config.max_connections; k++) {
			struct http_conn *c = &h->conns[k];
			int               left;

			if (c->state == HTTP_CONN_FREE) {
				continue;
			}
			h->pfds[n]         = (struct pollfd) { .fd = c->fd,
				        .events = c->state == HTTP_CONN_WRITING
				            ? POLLOUT
				            : POLLIN };
			h->pfd_conn[n - 2] = k;
			n++;
			left = c->deadline_ms > now
			    ? (int) (c->deadline_ms - now)
			    : 0;
			if (timeout < 0 || left < timeout) {
				timeout = left;
			}
		}
		if (poll(h->pfds, n, timeout) < 0 && errno != EINTR) {
			/* ENOMEM: try again after a pause, never spin. */
			struct timespec pause = { 0, 10 * 1000000 };
			nanosleep(&pause, NULL);
			continue;
		}
		if (h->pfds[0].revents != 0) {
			return NULL; /* stop */
		}
		now = http_now_ms();
		for (nfds_t i = 2; i < n; i++) {
			struct http_conn *c = &h->conns[h->pfd_conn[i - 2]];

			if (h->pfds[i].revents != 0 &&
			    c->state != HTTP_CONN_FREE) {
				http_conn_io(h, c, h->pfds[i].revents, now);
			}
		}
		now = http_now_ms();
		for (size_t k = 0; k < h->config.max_connections; k++) {
			struct http_conn *c = &h->conns[k];

			if (c->state != HTTP_CONN_FREE &&
			    now >= c->deadline_ms) {
				http_conn_expire(h, c, now);
			}
		}
		if ((h->pfds[1].revents & POLLIN) != 0) {
			http_accept(h, now);
		}
	}
}

/* ---- start and stop ---- */

/* Binds and listens on HOST:PORT; 0 or an errno value with ERROR. */
static int
http_listen(struct zos_http *h, const char *host, const char *port,
    char *error, size_t error_len)
{
	struct addrinfo hints = {
		.ai_family   = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_flags    = AI_PASSIVE | AI_NUMERICSERV,
	};
	struct addrinfo        *found, *ai;
	struct sockaddr_storage sa;
	socklen_t               sa_len = sizeof(sa);
	int                     rv, err = EADDRNOTAVAIL, one = 1;

	if ((rv = getaddrinfo(host, port, &hints, &found)) != 0) {
		snprintf(error, error_len, "cannot resolve %s: %s", host,
		    gai_strerror(rv));
		return EADDRNOTAVAIL;
	}
	h->listen_fd = -1;
	for (ai = found; ai != NULL; ai = ai->ai_next) {
		int fd = socket(ai->ai_family,
		    ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    ai->ai_protocol);

		if (fd < 0) {
			err = errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 ||
		    listen(fd, 64) != 0) {
			err = errno;
			close(fd);
			continue;
		}
		h->listen_fd = fd;
		break;
	}
	freeaddrinfo(found);
	if (h->listen_fd < 0) {
		snprintf(error, error_len, "%s",
		    err == EADDRINUSE ? "address already in use"
		                      : strerror(err));
		return err;
	}
	if (getsockname(h->listen_fd, (struct sockaddr *) &sa, &sa_len) == 0) {
		h->port = sa.ss_family == AF_INET6
		    ? ntohs(((struct sockaddr_in6 *) &sa)->sin6_port)
		    : ntohs(((struct sockaddr_in *) &sa)->sin_port);
	}
	return 0;
}

int
zos_http_start(const struct zos_http_config *config, struct zos_http **out,
    char *error, size_t error_len)
{
	struct zos_http *h;
	size_t           max;
	int              rv;

	*out = NULL;
	if ((h = calloc(1, sizeof(*h))) == NULL) {
		snprintf(error, error_len, "out of memory");
		return ENOMEM;
	}
	h->config    = *config;
	h->listen_fd = -1;
	h->wake[0] = h->wake[1] = -1;
	if (h->config.request_timeout_ms == 0) {
		h->config.request_timeout_ms = ZOS_HTTP_REQUEST_TIMEOUT_MS;
	}
	if (h->config.write_timeout_ms == 0) {
		h->config.write_timeout_ms = ZOS_HTTP_WRITE_TIMEOUT_MS;
	}
	if (h->config.max_connections == 0) {
		h->config.max_connections = ZOS_HTTP_MAX_CONNECTIONS;
	}
	if (h->config.max_request_bytes == 0) {
		h->config.max_request_bytes = ZOS_HTTP_MAX_REQUEST_BYTES;
	}
	if (h->config.content_type == NULL) {
		h->config.content_type = "text/plain; charset=utf-8";
	}
	max = h->config.max_connections;
	if ((h->path = strdup(config->path)) == NULL ||
	    (config->token != NULL &&
	        (h->token = strdup(config->token)) == NULL) ||
	    (h->conns = calloc(max, sizeof(*h->conns))) == NULL ||
	    (h->pfds = calloc(max + 2, sizeof(*h->pfds))) == NULL ||
	    (h->pfd_conn = calloc(max, sizeof(*h->pfd_conn))) == NULL) {
		snprintf(error, error_len, "out of memory");
		rv = ENOMEM;
		goto fail;
	}
	for (size_t k = 0; k < max; k++) {
		h->conns[k].fd = -1;
	}
	if ((rv = http_listen(
	         h, config->host, config->port, error, error_len)) != 0) {
		goto fail;
	}
	if (pipe2(h->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
		rv = errno;
		snprintf(error, error_len, "pipe: %s", strerror(rv));
		goto fail;
	}
	if ((rv = pthread_create(&h->thread, NULL, http_thread, h)) != 0) {
		snprintf(error, error_len, "cannot start a thread: %s",
		    strerror(rv));
		goto fail;
	}
	h->thread_started = true;
	*out              = h;
	return 0;

fail:
	zos_http_stop(h);
	return rv;
}

unsigned
zos_http_port(const struct zos_http *http)
{
	return http->port;
}

void
zos_http_stop(struct zos_http *h)
{
	if (h == NULL) {
		return;
	}
	if (h->thread_started) {
		while (write(h->wake[1], "x", 1) < 0 && errno == EINTR) { }
		pthread_join(h->thread, NULL);
	}
	for (size_t k = 0; h->conns != NULL && k < h->config.max_connections;
	     k++) {
		if (h->conns[k].state != HTTP_CONN_FREE) {
			http_conn_close(h, &h->conns[k]);
		}
	}
	if (h->listen_fd >= 0) {
		close(h->listen_fd);
	}
	for (int i = 0; i < 2; i++) {
		if (h->wake[i] >= 0) {
			close(h->wake[i]);
		}
	}
	free(h->pfd_conn);
	free(h->pfds);
	free(h->conns);
	if (h->token != NULL) {
		explicit_bzero(h->token, strlen(h->token));
		free(h->token);
	}
	free(h->path);
	free(h);
}
