/*
 * The token table; see zrpc/auth.h for the file format, the timing
 * promise and the reload rules.
 *
 * A table is immutable once built, and reference-counted: zrpc_auth holds
 * one reference to its current table, and each lookup holds one for as
 * long as it compares. The mutex guards only the current pointer and is
 * held for a pointer copy and an increment (lookups) or a pointer
 * exchange (reloads), so a reload that reads a large file never makes a
 * call wait, and a call never sees half of a new table. The last
 * reference frees a table, zeroing its tokens first.
 *
 * Entries keep each token in a fixed ZRPC_AUTH_TOKEN_MAX-byte buffer,
 * zero-padded, with its length. A lookup pads the presented token the same
 * way and folds, for every entry, the XOR of all the bytes and of the
 * lengths into one difference, then turns it into a mask without a branch;
 * the role is selected with that mask. Nothing stops early.
 */
#include "zrpc/auth.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

struct auth_entry {
	unsigned char  token[ZRPC_AUTH_TOKEN_MAX]; /* zero-padded */
	size_t         len;
	enum zrpc_role role;
};

/* One immutable table; freed by its last reference. */
struct auth_table {
	atomic_uint        refs;
	size_t             n_entries;
	struct auth_entry *entries;
};

struct zrpc_auth {
	pthread_mutex_t    mutex;
	struct auth_table *table; /* guarded by: mutex */
};

const char *
zrpc_role_name(enum zrpc_role role)
{
	switch (role) {
	case ZRPC_ROLE_READ:
		return "read";
	case ZRPC_ROLE_WRITE:
		return "write";
	case ZRPC_ROLE_ADMIN:
		return "admin";
	case ZRPC_ROLE_NONE:
		break;
	}
	return "";
}

bool
zrpc_role_parse(const char *text, enum zrpc_role *out)
{
	static const enum zrpc_role roles[] = { ZRPC_ROLE_READ,
		ZRPC_ROLE_WRITE, ZRPC_ROLE_ADMIN };

	for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
		if (strcmp(text, zrpc_role_name(roles[i])) == 0) {
			*out = roles[i];
			return true;
		}
	}
	return false;
}

/* ---- tables ---- */

static void
auth_table_unref(struct auth_table *table)
{
	if (table == NULL ||
	    atomic_fetch_sub_explicit(&table->refs, 1, memory_order_acq_rel) !=
	        1) {
		return;
	}
	if (table->entries != NULL) {
		/* Secrets do not outlive their table in freed memory. */
		explicit_bzero(table->entries,
		    table->n_entries * sizeof(*table->entries));
	}
	free(table->entries);
	free(table);
}

/* A token byte: printable ASCII, no space. */
static bool
auth_token_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f;
}

/* Skips blanks (space, tab, CR) from P up to END. */
static const char *
auth_skip_blanks(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\r')) {
		p++;
	}
	return p;
}

/*
 * Parses one line [P, END) (no newline) into *ENTRY. Returns true for an
 * entry, false for a line to skip; on error sets *WHY (static) instead.
 * Never copies the line's text into a message.
 */
static bool
auth_parse_line(
    const char *p, const char *end, struct auth_entry *entry, const char **why)
{
	const char *token, *role;
	size_t      token_len, role_len;
	char        role_text[8];

	*why = NULL;
	p    = auth_skip_blanks(p, end);
	if (p == end || *p == '#') {
		return false;
	}
	token = p;
	while (p < end && auth_token_char((unsigned char) *p)) {
		p++;
	}
	token_len = (size_t) (p - token);
	if (p < end && *p != ' ' && *p != '\t' && *p != '\r') {
		*why = "a token is printable ASCII without spaces";
		return false;
	}
	p    = auth_skip_blanks(p, end);
	role = p;
	while (p < end && auth_token_char((unsigned char) *p)) {
		p++;
	}
	role_len = (size_t) (p - role);
	if (auth_skip_blanks(p, end) != end) {
		*why = "expected 'token role' and nothing more";
		return false;
	}
	if (role_len == 0) {
		*why = "expected 'token role': the role is missing";
		return false;
	}
	if (token_len < ZRPC_AUTH_TOKEN_MIN ||
	    token_len > ZRPC_AUTH_TOKEN_MAX) {
		*why = "a token has 16 to 256 characters";
		return false;
	}
	if (role_len >= sizeof(role_text)) {
		*why = "the role must be read, write or admin";
		return false;
	}
	memcpy(role_text, role, role_len);
	role_text[role_len] = '\0';
	if (!zrpc_role_parse(role_text, &entry->role)) {
		*why = "the role must be read, write or admin";
		return false;
	}
	memset(entry->token, 0, sizeof(entry->token));
	memcpy(entry->token, token, token_len);
	entry->len = token_len;
	return true;
}

zrpc_status
zrpc_auth_parse(
    zrpc_auth **out, const char *name, const char *text, size_t len)
{
	struct auth_table *table;
	struct zrpc_auth  *auth;
	const char        *p = text, *end = text + len;
	size_t             line = 0, cap = 0;
	size_t            *lines = NULL; /* line of each entry */
	zrpc_status        status;

	*out = NULL;
	if (len > ZRPC_AUTH_MAX_FILE_BYTES) {
		return zrpc_status_make(ZRPC_INVALID_ARGUMENT,
		    "%s: larger than %u bytes", name,
		    ZRPC_AUTH_MAX_FILE_BYTES);
	}
	if (len > 0 && memchr(text, '\0', len) != NULL) {
		return zrpc_status_make(
		    ZRPC_INVALID_ARGUMENT, "%s: holds a NUL byte", name);
	}
	if ((table = calloc(1, sizeof(*table))) == NULL) {
		return zrpc_status_make(ZRPC_INTERNAL, "out of memory");
	}
	atomic_init(&table->refs, 1);
	while (p < end) {
		const char       *nl  = memchr(p, '\n', (size_t) (end - p));
		const char       *eol = nl != NULL ? nl : end;
		struct auth_entry entry;
		const char       *why;

		line++;
		if (!auth_parse_line(p, eol, &entry, &why)) {
			if (why != NULL) {
				status =
				    zrpc_status_make(ZRPC_INVALID_ARGUMENT,
				        "%s:%zu: %s", name, line, why);
				goto fail;
			}
			p = nl != NULL ? nl + 1 : end;
			continue;
		}
		for (size_t i = 0; i < table->n_entries; i++) {
			if (table->entries[i].len == entry.len &&
			    memcmp(table->entries[i].token, entry.token,
			        entry.len) == 0) {
				explicit_bzero(&entry, sizeof(entry));
				status =
				    zrpc_status_make(ZRPC_INVALID_ARGUMENT,
				        "%s:%zu: the token of line %zu again",
				        name, line, lines[i]);
				goto fail;
			}
		}
		if (table->n_entries == ZRPC_AUTH_MAX_TOKENS) {
			explicit_bzero(&entry, sizeof(entry));
			status = zrpc_status_make(ZRPC_INVALID_ARGUMENT,
			    "%s:%zu: more than %d tokens", name, line,
			    ZRPC_AUTH_MAX_TOKENS);
			goto fail;
		}
		if (table->n_entries == cap) {
			size_t             grown_cap = cap > 0 ? cap * 2 : 8;
			struct auth_entry *grown;
			size_t            *grown_lines;

			/* calloc + copy + wipe, not realloc: realloc could
			 * leave a copy of the tokens in freed memory. */
			grown = calloc(grown_cap, sizeof(*grown));
			grown_lines =
			    reallocarray(lines, grown_cap, sizeof(*lines));
			if (grown == NULL || grown_lines == NULL) {
				free(grown);
				if (grown_lines != NULL) {
					lines = grown_lines;
				}
				explicit_bzero(&entry, sizeof(entry));
				status = zrpc_status_make(
				    ZRPC_INTERNAL, "out of memory");
				goto fail;
			}
			if (table->entries != NULL) {
				memcpy(grown, table->entries,
				    table->n_entries * sizeof(*grown));
				explicit_bzero(table->entries,
				    table->n_entries * sizeof(*grown));
				free(table->entries);
			}
			table->entries = grown;
			lines          = grown_lines;
			cap            = grown_cap;
		}
		lines[table->n_entries]            = line;
		table->entries[table->n_entries++] = entry;
		explicit_bzero(&entry, sizeof(entry));
		p = nl != NULL ? nl + 1 : end;
	}
	free(lines);
	if ((auth = calloc(1, sizeof(*auth))) == NULL) {
		auth_table_unref(table);
		return zrpc_status_make(ZRPC_INTERNAL, "out of memory");
	}
	pthread_mutex_init(&auth->mutex, NULL);
	auth->table = table;
	*out        = auth;
	return zrpc_status_ok();

fail:
	free(lines);
	auth_table_unref(table);
	return status;
}

zrpc_status
zrpc_auth_load(zrpc_auth **out, const char *path)
{
	struct stat st;
	char       *text = NULL;
	size_t      len  = 0;
	zrpc_status status;
	int         fd;

	*out = NULL;
	/* O_NONBLOCK: a FIFO in its place must not hang the open (it is
	 * then refused as not a regular file). */
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)) <
	    0) {
		return zrpc_status_make(errno == ENOENT ? ZRPC_NOT_FOUND
		        : errno == EACCES ? ZRPC_PERMISSION_DENIED
		                          : ZRPC_INTERNAL,
		    "%s: %s", path, strerror(errno));
	}
	/* The file that was opened is the one checked (no race with a
	 * rename between a stat and the open). */
	if (fstat(fd, &st) != 0) {
		status = zrpc_status_make(
		    ZRPC_INTERNAL, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		status = zrpc_status_make(
		    ZRPC_PERMISSION_DENIED, "%s: not a regular file", path);
		goto out;
	}
	if ((st.st_mode & 077) != 0) {
		status = zrpc_status_make(ZRPC_PERMISSION_DENIED,
		    "%s: mode %04o lets group or others read or write it "
		    "(chmod 600 %s)",
		    path, (unsigned) (st.st_mode & 07777), path);
		goto out;
	}
	if (st.st_size > (off_t) ZRPC_AUTH_MAX_FILE_BYTES) {
		status = zrpc_status_make(ZRPC_INVALID_ARGUMENT,
		    "%s: larger than %u bytes", path,
		    ZRPC_AUTH_MAX_FILE_BYTES);
		goto out;
	}
	/* One byte more than the limit, to see a file that grew. */
	if ((text = malloc(ZRPC_AUTH_MAX_FILE_BYTES + 1)) == NULL) {
		status = zrpc_status_make(ZRPC_INTERNAL, "out of memory");
		goto out;
	}
	for (;;) {
		ssize_t n =
		    read(fd, text + len, ZRPC_AUTH_MAX_FILE_BYTES + 1 - len);

		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n < 0) {
			status = zrpc_status_make(
			    ZRPC_INTERNAL, "%s: %s", path, strerror(errno));
			goto out;
		}
		if (n == 0 || (len += (size_t) n) > ZRPC_AUTH_MAX_FILE_BYTES) {
			break;
		}
	}
	status = zrpc_auth_parse(out, path, text, len);
out:
	if (text != NULL) {
		explicit_bzero(text, len);
		free(text);
	}
	close(fd);
	return status;
}

zrpc_status
zrpc_auth_reload(zrpc_auth *auth, const char *path)
{
	zrpc_auth         *fresh;
	struct auth_table *old;
	zrpc_status        status;

	status = zrpc_auth_load(&fresh, path);
	if (!zrpc_status_is_ok(&status)) {
		return status;
	}
	pthread_mutex_lock(&auth->mutex);
	old          = auth->table;
	auth->table  = fresh->table;
	fresh->table = NULL;
	pthread_mutex_unlock(&auth->mutex);
	auth_table_unref(old);
	zrpc_auth_destroy(fresh);
	return zrpc_status_ok();
}

/* The current table, with a reference the caller drops. */
static struct auth_table *
auth_acquire(zrpc_auth *auth)
{
	struct auth_table *table;

	pthread_mutex_lock(&auth->mutex);
	table = auth->table;
	atomic_fetch_add_explicit(&table->refs, 1, memory_order_relaxed);
	pthread_mutex_unlock(&auth->mutex);
	return table;
}

/*
 * Hides V's value from the optimiser, so that it cannot turn the folds
 * below into comparisons that stop early.
 */
static inline uint32_t
auth_opaque(uint32_t v)
{
#if defined(__GNUC__) || defined(__clang__)
	__asm__ volatile("" : "+r"(v));
#endif
	return v;
}

enum zrpc_role
zrpc_auth_lookup(zrpc_auth *auth, const char *token, size_t len)
{
	unsigned char      given[ZRPC_AUTH_TOKEN_MAX];
	struct auth_table *table;
	uint32_t           role     = ZRPC_ROLE_NONE;
	uint32_t           too_long = len > ZRPC_AUTH_TOKEN_MAX;
	size_t             copy     = too_long ? ZRPC_AUTH_TOKEN_MAX : len;

	memset(given, 0, sizeof(given));
	if (copy > 0) {
		memcpy(given, token, copy);
	}
	table = auth_acquire(auth);
	for (size_t i = 0; i < table->n_entries; i++) {
		const struct auth_entry *e    = &table->entries[i];
		uint32_t                 diff = too_long;
		uint32_t                 mask;

		for (size_t b = 0; b < ZRPC_AUTH_TOKEN_MAX; b++) {
			diff |= (uint32_t) (e->token[b] ^ given[b]);
		}
		diff |= (uint32_t) ((e->len ^ copy) & 0xffffu) |
		    (uint32_t) ((e->len ^ copy) >> 16);
		diff = auth_opaque(diff);
		/* diff == 0 -> all ones, else 0, without a branch. */
		mask = (uint32_t) (((uint64_t) diff - 1u) >> 32);
		role |= mask & (uint32_t) e->role;
	}
	auth_table_unref(table);
	explicit_bzero(given, sizeof(given));
	return (enum zrpc_role) role;
}

enum zrpc_role
zrpc_auth_lookup_header(zrpc_auth *auth, const char *header)
{
	static const char scheme[] = "Bearer ";
	size_t            n        = sizeof(scheme) - 1;

	if (header == NULL || strncasecmp(header, scheme, n) != 0) {
		return ZRPC_ROLE_NONE;
	}
	header += n;
	while (*header == ' ') {
		header++;
	}
	return zrpc_auth_lookup(auth, header, strlen(header));
}

size_t
zrpc_auth_count(zrpc_auth *auth)
{
	struct auth_table *table = auth_acquire(auth);
	size_t             n     = table->n_entries;

	auth_table_unref(table);
	return n;
}

void
zrpc_auth_destroy(zrpc_auth *auth)
{
	if (auth == NULL) {
		return;
	}
	auth_table_unref(auth->table);
	pthread_mutex_destroy(&auth->mutex);
	free(auth);
}
