/*
 * zrpc authentication: a table of bearer tokens, each with a role, that a
 * server checks every call against (zrpc_server_config.auth).
 *
 * A caller sends `authorization: Bearer <token>` in its request metadata
 * (zrpc_call_opts.token does that). The server looks the token up before
 * it decodes the call's payload and compares the role it finds with the
 * role the method requires (struct zrpc_method.role, from the method's
 * `option (zrpc.v1.role)` in its .proto): no token, or one the table does
 * not hold, is UNAUTHENTICATED; a role below the method's is
 * PERMISSION_DENIED. A method without a role is open to every caller.
 *
 * The tokens file has one `token role` per line, the role being read,
 * write or admin; blank lines and lines whose first non-blank character
 * is '#' are ignored. A token is 16 to ZRPC_AUTH_TOKEN_MAX printable ASCII
 * characters without spaces, and appears once. The file must not be
 * readable or writable by its group or by others (mode 0600 or 0400).
 *
 * Tokens are secrets: no function here writes one into a message, and
 * error messages name the file and line, never the line's text.
 *
 * Timing: a lookup compares the presented token with every entry of the
 * table, all ZRPC_AUTH_TOKEN_MAX bytes of each (shorter tokens are padded
 * with zeros, their lengths compared too), and picks the role without a
 * branch on the outcome. Its time depends on the number of entries and
 * on whether the presented token is longer than ZRPC_AUTH_TOKEN_MAX
 * (which is never a match); not on which entry matched, how many of its
 * bytes did, or the length of any token up to the maximum.
 *
 * Reloading: zrpc_auth_reload parses a new file completely and only then
 * swaps it in, with one pointer exchange under a mutex held for nothing
 * else; a lookup takes a reference to the table it started with, so a
 * call in flight sees one table, old or new, never a mix, and a bad new
 * file leaves the old table in place. Lookups never wait on a reload's
 * file reading.
 */
#ifndef ZRPC_AUTH_H
#define ZRPC_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "zrpc/service.h"
#include "zrpc/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Longest token, in bytes. */
#define ZRPC_AUTH_TOKEN_MAX 256
/* Shortest token, in bytes. */
#define ZRPC_AUTH_TOKEN_MIN 16
/* Most tokens one table holds. */
#define ZRPC_AUTH_MAX_TOKENS 4096
/* Largest tokens file read. */
#define ZRPC_AUTH_MAX_FILE_BYTES (1u << 20)

/* A reloadable token table (opaque); safe to share between threads. */
typedef struct zrpc_auth zrpc_auth;

/* "read", "write", "admin", or "" for ZRPC_ROLE_NONE. Static. */
const char *zrpc_role_name(enum zrpc_role role);

/*
 * Parses "read", "write" or "admin" (exactly) into *OUT. Returns false,
 * leaving *OUT alone, for anything else.
 */
bool zrpc_role_parse(const char *text, enum zrpc_role *out);

/*
 * Loads the tokens file at PATH into a new table in *OUT (free it with
 * zrpc_auth_destroy). On failure *OUT is NULL and the status says why,
 * naming PATH: NOT_FOUND (no such file), PERMISSION_DENIED (readable or
 * writable by group or others, or not a regular file),
 * INVALID_ARGUMENT ("PATH:LINE: ..." for a bad line, or too large),
 * INTERNAL (out of memory, read error).
 */
zrpc_status zrpc_auth_load(zrpc_auth **out, const char *path);

/*
 * Builds a table from TEXT (LEN bytes, a tokens file's contents; NUL
 * bytes are an error), with NAME standing for the file in messages. No
 * permission check. Errors as zrpc_auth_load.
 */
zrpc_status zrpc_auth_parse(
    zrpc_auth **out, const char *name, const char *text, size_t len);

/*
 * Loads PATH like zrpc_auth_load and, when it is good, makes it AUTH's
 * table: later lookups use it, lookups under way finish with the old one.
 * When it is bad, AUTH keeps its table and the status says why (as
 * zrpc_auth_load). Reloads may run from any thread.
 */
zrpc_status zrpc_auth_reload(zrpc_auth *auth, const char *path);

/*
 * The role of TOKEN (LEN bytes, not NUL-terminated), or ZRPC_ROLE_NONE
 * when the table does not hold it. Constant time as described at the top.
 * Any thread.
 */
enum zrpc_role zrpc_auth_lookup(
    zrpc_auth *auth, const char *token, size_t len);

/*
 * The role of an `authorization` metadata value ("Bearer <token>"; the
 * scheme is case-insensitive), NULL meaning absent: ZRPC_ROLE_NONE when
 * absent, malformed or unknown.
 */
enum zrpc_role zrpc_auth_lookup_header(zrpc_auth *auth, const char *header);

/* Tokens in AUTH's current table. */
size_t zrpc_auth_count(zrpc_auth *auth);

/* Frees AUTH. No lookup may be under way. NULL is a no-op. */
void zrpc_auth_destroy(zrpc_auth *auth);

#ifdef __cplusplus
}
#endif

#endif /* ZRPC_AUTH_H */
