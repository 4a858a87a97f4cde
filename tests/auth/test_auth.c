/*
 * test_auth: zrpc's token table (zrpc/auth.h) and the server's check of
 * it, with a library user's own service: zrpctest.v1.Vault
 * (tests/codegen/proto/zrpctest/v1/roles.proto), whose methods carry
 * option (zrpc.v1.role), served over inproc.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tmpdir.h"
#include "zrpc/auth.h"
#include "zrpc/client.h"
#include "zrpc/server.h"
#include "zrpc/v1/health.zrpc.h"
#include "zrpc/v1/reflection.zrpc.h"
#include "zrpctest/v1/roles.zrpc.h"

#define READ_TOKEN "read-token-0123456789"
#define WRITE_TOKEN "write-token-012345678"
#define ADMIN_TOKEN "admin-token-012345678"
#define TOKENS                                              \
	"# tokens for the auth tests\n"                     \
	"\n" READ_TOKEN " read\n" WRITE_TOKEN "\twrite\r\n" \
	"   " ADMIN_TOKEN "   admin   \n"

static zrpc_auth *
parse_ok(const char *text)
{
	zrpc_auth  *auth;
	zrpc_status status = zrpc_auth_parse(&auth, "t", text, strlen(text));

	cr_assert_eq(status.code, ZRPC_OK, "%s", status.message);
	return auth;
}

/* Asserts that TEXT is refused with a message holding NEEDLE and not
 * SECRET (NULL: nothing to look for). */
static void
parse_bad(const char *text, const char *needle, const char *secret)
{
	zrpc_auth  *auth = (zrpc_auth *) 1;
	zrpc_status status =
	    zrpc_auth_parse(&auth, "tokens.txt", text, strlen(text));

	cr_assert_eq(status.code, ZRPC_INVALID_ARGUMENT, "%s: %s", text,
	    status.message);
	cr_assert_null(auth);
	cr_assert(strstr(status.message, needle) != NULL, "want \"%s\" in %s",
	    needle, status.message);
	if (secret != NULL) {
		cr_assert_null(strstr(status.message, secret),
		    "the message shows a token: %s", status.message);
	}
}

static enum zrpc_role
lookup(zrpc_auth *auth, const char *token)
{
	return zrpc_auth_lookup(auth, token, strlen(token));
}

/* ---- the tokens file ---- */

Test(auth, a_good_file_with_comments_blanks_tabs_and_crlf_parses)
{
	zrpc_auth *auth = parse_ok(TOKENS);

	cr_assert_eq(zrpc_auth_count(auth), 3);
	cr_assert_eq(lookup(auth, READ_TOKEN), ZRPC_ROLE_READ);
	cr_assert_eq(lookup(auth, WRITE_TOKEN), ZRPC_ROLE_WRITE);
	cr_assert_eq(lookup(auth, ADMIN_TOKEN), ZRPC_ROLE_ADMIN);
	zrpc_auth_destroy(auth);
}

Test(auth, an_empty_file_holds_no_tokens)
{
	zrpc_auth *auth = parse_ok("# nobody yet\n\n");

	cr_assert_eq(zrpc_auth_count(auth), 0);
	cr_assert_eq(lookup(auth, READ_TOKEN), ZRPC_ROLE_NONE);
	zrpc_auth_destroy(auth);
}

Test(auth, a_bad_line_is_named_by_file_and_number_without_its_text)
{
	parse_bad("# one\n" READ_TOKEN " read\nlonely-token-0123456789\n",
	    "tokens.txt:3:", "lonely-token");
	parse_bad(READ_TOKEN " read extra\n", "tokens.txt:1:", READ_TOKEN);
}

Test(auth, a_bad_role_is_refused_and_named)
{
	parse_bad("\n" READ_TOKEN " root\n",
	    "tokens.txt:2: the role must be "
	    "read, write or admin",
	    READ_TOKEN);
	parse_bad(READ_TOKEN " Read\n", "tokens.txt:1:", NULL);
	parse_bad(READ_TOKEN " readwrite\n", "tokens.txt:1:", NULL);
}

Test(auth, tokens_too_short_too_long_repeated_or_not_ascii_are_refused)
{
	char long_line[400];

	parse_bad("short read\n", "16 to 256", "short");
	memset(long_line, 'x', 300);
	snprintf(long_line + 300, sizeof(long_line) - 300, " admin\n");
	parse_bad(long_line, "tokens.txt:1:", NULL);
	parse_bad(READ_TOKEN " read\n" READ_TOKEN " admin\n",
	    "tokens.txt:2: the token of line 1 again", READ_TOKEN);
	parse_bad("t\xc3\xa9moin-0123456789ab read\n", "printable", NULL);
}

Test(auth, a_nul_byte_is_refused)
{
	static const char text[] = READ_TOKEN " read\n\0" ADMIN_TOKEN " admin";
	zrpc_auth        *auth;
	zrpc_status       status =
	    zrpc_auth_parse(&auth, "nul", text, sizeof(text) - 1);

	cr_assert_eq(status.code, ZRPC_INVALID_ARGUMENT);
	cr_assert_null(auth);
}

Test(auth, roles_have_names_and_parse_back)
{
	enum zrpc_role role = ZRPC_ROLE_NONE;

	cr_assert_str_eq(zrpc_role_name(ZRPC_ROLE_NONE), "");
	cr_assert_str_eq(zrpc_role_name(ZRPC_ROLE_READ), "read");
	cr_assert_str_eq(zrpc_role_name(ZRPC_ROLE_WRITE), "write");
	cr_assert_str_eq(zrpc_role_name(ZRPC_ROLE_ADMIN), "admin");
	cr_assert(zrpc_role_parse("admin", &role));
	cr_assert_eq(role, ZRPC_ROLE_ADMIN);
	cr_assert_not(zrpc_role_parse("", &role));
	cr_assert_not(zrpc_role_parse("ADMIN", &role));
	cr_assert(ZRPC_ROLE_ADMIN > ZRPC_ROLE_WRITE &&
	    ZRPC_ROLE_WRITE > ZRPC_ROLE_READ &&
	    ZRPC_ROLE_READ > ZRPC_ROLE_NONE);
}

/* ---- the file on disk ---- */

struct auth_dir {
	char dir[64];
	char path[128];
};

static void
write_file(struct auth_dir *d, const char *text, mode_t mode)
{
	int fd;

	if (d->dir[0] == '\0') {
		snprintf(d->dir, sizeof(d->dir), "/tmp/zrpc-auth.XXXXXX");
		cr_assert_not_null(mkdtemp(d->dir));
	}
	snprintf(d->path, sizeof(d->path), "%s/tokens", d->dir);
	unlink(d->path);
	fd = open(d->path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t) strlen(text));
	cr_assert_eq(fchmod(fd, mode), 0);
	close(fd);
}

Test(auth, load_reads_a_file_of_mode_0600_or_0400)
{
	struct auth_dir d = { 0 };
	zrpc_auth      *auth;
	zrpc_status     status;

	write_file(&d, TOKENS, 0600);
	status = zrpc_auth_load(&auth, d.path);
	cr_assert_eq(status.code, ZRPC_OK, "%s", status.message);
	cr_assert_eq(zrpc_auth_count(auth), 3);
	zrpc_auth_destroy(auth);
	write_file(&d, TOKENS, 0400);
	status = zrpc_auth_load(&auth, d.path);
	cr_assert_eq(status.code, ZRPC_OK, "%s", status.message);
	zrpc_auth_destroy(auth);
	cr_assert_eq(test_tmpdir_remove(d.dir), 0);
}

Test(auth, load_refuses_a_file_others_or_the_group_can_read_or_write)
{
	static const mode_t modes[] = { 0644, 0640, 0604, 0620, 0602, 0666 };
	struct auth_dir     d       = { 0 };

	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		zrpc_auth  *auth;
		zrpc_status status;

		write_file(&d, TOKENS, modes[i]);
		status = zrpc_auth_load(&auth, d.path);
		cr_assert_eq(status.code, ZRPC_PERMISSION_DENIED,
		    "mode %o: %s", (unsigned) modes[i], status.message);
		cr_assert_null(auth);
		cr_assert(strstr(status.message, d.path) != NULL, "%s",
		    status.message);
		cr_assert(strstr(status.message, "group or others") != NULL,
		    "%s", status.message);
	}
	cr_assert_eq(test_tmpdir_remove(d.dir), 0);
}

Test(auth, load_names_a_missing_file_a_directory_and_a_bad_line)
{
	struct auth_dir d = { 0 };
	zrpc_auth      *auth;
	zrpc_status     status;
	char            want[160];

	write_file(&d, READ_TOKEN " read\n" ADMIN_TOKEN " superuser\n", 0600);
	status = zrpc_auth_load(&auth, d.path);
	cr_assert_eq(status.code, ZRPC_INVALID_ARGUMENT);
	snprintf(want, sizeof(want), "%s:2:", d.path);
	cr_assert(strstr(status.message, want) != NULL, "%s", status.message);
	cr_assert_null(strstr(status.message, ADMIN_TOKEN));

	status = zrpc_auth_load(&auth, d.dir);
	cr_assert_eq(
	    status.code, ZRPC_PERMISSION_DENIED, "%s", status.message);
	cr_assert(strstr(status.message, "not a regular file") != NULL);

	unlink(d.path);
	cr_assert_eq(mkfifo(d.path, 0600), 0);
	status = zrpc_auth_load(&auth, d.path); /* must not hang */
	cr_assert_eq(
	    status.code, ZRPC_PERMISSION_DENIED, "%s", status.message);

	unlink(d.path);
	status = zrpc_auth_load(&auth, d.path);
	cr_assert_eq(status.code, ZRPC_NOT_FOUND, "%s", status.message);
	cr_assert(strstr(status.message, d.path) != NULL);
	cr_assert_eq(test_tmpdir_remove(d.dir), 0);
}

/* ---- lookups ---- */

Test(auth, lookup_compares_tokens_of_equal_and_different_lengths)
{
	zrpc_auth *auth   = parse_ok(TOKENS);
	char       near[] = READ_TOKEN;
	char       longer[ZRPC_AUTH_TOKEN_MAX + 32];

	/* Equal length, one byte off: first, middle, last. */
	for (size_t i = 0; i < strlen(near); i += strlen(near) / 2) {
		near[i] ^= 1;
		cr_assert_eq(lookup(auth, near), ZRPC_ROLE_NONE, "%s", near);
		near[i] ^= 1;
	}
	near[strlen(near) - 1] ^= 1;
	cr_assert_eq(lookup(auth, near), ZRPC_ROLE_NONE);
	/* Different lengths: a prefix, an extension, empty, too long. */
	cr_assert_eq(
	    zrpc_auth_lookup(auth, READ_TOKEN, strlen(READ_TOKEN) - 1),
	    ZRPC_ROLE_NONE);
	cr_assert_eq(lookup(auth, READ_TOKEN "x"), ZRPC_ROLE_NONE);
	cr_assert_eq(lookup(auth, READ_TOKEN "\0"), ZRPC_ROLE_READ);
	cr_assert_eq(
	    zrpc_auth_lookup(auth, READ_TOKEN "\0", strlen(READ_TOKEN) + 1),
	    ZRPC_ROLE_NONE, "a padding NUL is not the padding");
	cr_assert_eq(zrpc_auth_lookup(auth, "", 0), ZRPC_ROLE_NONE);
	memset(longer, 'a', sizeof(longer));
	memcpy(longer, ADMIN_TOKEN, strlen(ADMIN_TOKEN));
	cr_assert_eq(
	    zrpc_auth_lookup(auth, longer, sizeof(longer)), ZRPC_ROLE_NONE);
	cr_assert_eq(lookup(auth, ADMIN_TOKEN), ZRPC_ROLE_ADMIN);
	zrpc_auth_destroy(auth);
}

Test(auth, a_token_of_the_maximum_length_matches_only_itself)
{
	char       text[ZRPC_AUTH_TOKEN_MAX + 16];
	char       token[ZRPC_AUTH_TOKEN_MAX + 1];
	zrpc_auth *auth;

	memset(token, 'k', ZRPC_AUTH_TOKEN_MAX);
	token[ZRPC_AUTH_TOKEN_MAX] = '\0';
	snprintf(text, sizeof(text), "%s write\n", token);
	auth = parse_ok(text);
	cr_assert_eq(lookup(auth, token), ZRPC_ROLE_WRITE);
	token[ZRPC_AUTH_TOKEN_MAX - 1] = 'j';
	cr_assert_eq(lookup(auth, token), ZRPC_ROLE_NONE);
	zrpc_auth_destroy(auth);
}

Test(auth, the_authorization_header_wants_the_bearer_scheme)
{
	zrpc_auth *auth = parse_ok(TOKENS);

	cr_assert_eq(zrpc_auth_lookup_header(auth, "Bearer " WRITE_TOKEN),
	    ZRPC_ROLE_WRITE);
	cr_assert_eq(zrpc_auth_lookup_header(auth, "bearer " WRITE_TOKEN),
	    ZRPC_ROLE_WRITE);
	cr_assert_eq(
	    zrpc_auth_lookup_header(auth, WRITE_TOKEN), ZRPC_ROLE_NONE);
	cr_assert_eq(zrpc_auth_lookup_header(auth, "Basic " WRITE_TOKEN),
	    ZRPC_ROLE_NONE);
	cr_assert_eq(zrpc_auth_lookup_header(auth, "Bearer"), ZRPC_ROLE_NONE);
	cr_assert_eq(zrpc_auth_lookup_header(auth, NULL), ZRPC_ROLE_NONE);
	zrpc_auth_destroy(auth);
}

/* ---- reload ---- */

Test(auth, reload_swaps_in_a_good_file_and_keeps_the_old_on_a_bad_one)
{
	struct auth_dir d = { 0 };
	zrpc_auth      *auth;
	zrpc_status     status;

	write_file(&d, READ_TOKEN " read\n", 0600);
	cr_assert_eq(zrpc_auth_load(&auth, d.path).code, ZRPC_OK);
	write_file(&d, ADMIN_TOKEN " admin\n", 0600);
	cr_assert_eq(zrpc_auth_reload(auth, d.path).code, ZRPC_OK);
	cr_assert_eq(lookup(auth, ADMIN_TOKEN), ZRPC_ROLE_ADMIN);
	cr_assert_eq(lookup(auth, READ_TOKEN), ZRPC_ROLE_NONE, "old is gone");

	write_file(&d, WRITE_TOKEN " write\nbroken\n", 0600);
	status = zrpc_auth_reload(auth, d.path);
	cr_assert_eq(status.code, ZRPC_INVALID_ARGUMENT);
	cr_assert(strstr(status.message, ":2:") != NULL, "%s", status.message);
	cr_assert_eq(lookup(auth, ADMIN_TOKEN), ZRPC_ROLE_ADMIN, "kept");
	cr_assert_eq(lookup(auth, WRITE_TOKEN), ZRPC_ROLE_NONE);

	write_file(&d, WRITE_TOKEN " write\n", 0644);
	cr_assert_eq(
	    zrpc_auth_reload(auth, d.path).code, ZRPC_PERMISSION_DENIED);
	cr_assert_eq(lookup(auth, ADMIN_TOKEN), ZRPC_ROLE_ADMIN, "kept");
	zrpc_auth_destroy(auth);
	cr_assert_eq(test_tmpdir_remove(d.dir), 0);
}

struct lookup_race {
	zrpc_auth  *auth;
	atomic_int  wrong;
	atomic_bool stop;
};

static void *
lookup_race_thread(void *arg)
{
	struct lookup_race *r = arg;

	for (int i = 0; i < 200000 && !atomic_load(&r->stop); i++) {
		/* In both files, with one role: never anything else. */
		if (lookup(r->auth, ADMIN_TOKEN) != ZRPC_ROLE_ADMIN) {
			atomic_fetch_add(&r->wrong, 1);
		}
	}
	return NULL;
}

Test(auth, lookups_during_reloads_always_see_a_whole_table)
{
	struct auth_dir    a = { 0 }, b = { 0 };
	struct lookup_race r = { 0 };
	pthread_t          threads[2];

	write_file(&a, ADMIN_TOKEN " admin\n" READ_TOKEN " read\n", 0600);
	write_file(&b, WRITE_TOKEN " write\n" ADMIN_TOKEN " admin\n", 0600);
	cr_assert_eq(zrpc_auth_load(&r.auth, a.path).code, ZRPC_OK);
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(
		    pthread_create(&threads[i], NULL, lookup_race_thread, &r),
		    0);
	}
	for (int i = 0; i < 200; i++) {
		cr_assert_eq(
		    zrpc_auth_reload(r.auth, i % 2 ? a.path : b.path).code,
		    ZRPC_OK);
	}
	atomic_store(&r.stop, true);
	for (int i = 0; i < 2; i++) {
		pthread_join(threads[i], NULL);
	}
	cr_assert_eq(atomic_load(&r.wrong), 0);
	zrpc_auth_destroy(r.auth);
	cr_assert_eq(test_tmpdir_remove(a.dir), 0);
	cr_assert_eq(test_tmpdir_remove(b.dir), 0);
}

/* ---- a server that checks tokens ---- */

static zrpc_status
vault_peek(zrpc_call *call, const Zrpctest__V1__Empty *request,
    Zrpctest__V1__Text *reply)
{
	(void) request;
	reply->value = (char *) zrpc_role_name(zrpc_call_role(call));
	return zrpc_status_ok();
}

static zrpc_status
vault_read(zrpc_call *call, const Zrpctest__V1__Empty *request,
    Zrpctest__V1__Text *reply)
{
	(void) request;
	reply->value = (char *) zrpc_role_name(zrpc_call_role(call));
	return zrpc_status_ok();
}

static zrpc_status
vault_write(zrpc_call *call, const Zrpctest__V1__Text *request,
    Zrpctest__V1__Empty *reply)
{
	atomic_uint *runs = zrpc_call_service_ctx(call);

	(void) request;
	(void) reply;
	atomic_fetch_add(runs, 1);
	return zrpc_status_ok();
}

static zrpc_status
vault_empty(zrpc_call *call, const Zrpctest__V1__Empty *request,
    Zrpctest__V1__Empty *reply)
{
	(void) call;
	(void) request;
	(void) reply;
	return zrpc_status_ok();
}

struct vault {
	zrpc_server *server;
	zrpc_client *client;
	zrpc_auth   *auth;
	atomic_uint  write_runs;
};

static void
vault_start(struct vault *v, const char *tokens)
{
	static unsigned                         n;
	const struct zrpctest_v1_vault_handlers h = {
		.peek  = vault_peek,
		.read  = vault_read,
		.write = vault_write,
		.wipe  = vault_empty,
		.seal  = vault_empty,
	};
	zrpc_server_config config = { .workers = 1 };
	char               url[64];

	memset(v, 0, sizeof(*v));
	if (tokens != NULL) {
		v->auth = parse_ok(tokens);
	}
	config.auth = v->auth;
	snprintf(url, sizeof(url), "inproc://auth-%d-%u", (int) getpid(), n++);
	cr_assert_eq(zrpc_server_create(&v->server, &config).code, ZRPC_OK);
	cr_assert_eq(
	    zrpctest_v1_vault_register(v->server, &h, &v->write_runs).code,
	    ZRPC_OK);
	cr_assert_eq(zrpc_server_listen(v->server, url).code, ZRPC_OK);
	cr_assert_eq(zrpc_server_start(v->server).code, ZRPC_OK);
	cr_assert_eq(zrpc_client_open(&v->client, url, NULL).code, ZRPC_OK);
}

static void
vault_stop(struct vault *v)
{
	zrpc_client_close(v->client);
	zrpc_server_destroy(v->server);
	zrpc_auth_destroy(v->auth);
}

/* Calls Seal, Write, Read or Peek (by METHOD) with TOKEN (NULL: none). */
static zrpc_status
vault_call(struct vault *v, const struct zrpc_method *method,
    const char *token, char *role, size_t role_len)
{
	Zrpctest__V1__Empty     empty = ZRPCTEST__V1__EMPTY__INIT;
	Zrpctest__V1__Text      text  = ZRPCTEST__V1__TEXT__INIT;
	ProtobufCMessage       *reply = NULL;
	zrpc_call_opts          opts  = { .timeout_ms = 5000, .token = token };
	const ProtobufCMessage *req =
	    method->input == &zrpctest__v1__text__descriptor ? &text.base
	                                                     : &empty.base;
	zrpc_status status =
	    zrpc_client_call(v->client, method, req, &reply, &opts);

	if (role != NULL) {
		snprintf(role, role_len, "%s",
		    status.code == ZRPC_OK
		        ? ((Zrpctest__V1__Text *) reply)->value
		        : "?");
	}
	if (reply != NULL) {
		protobuf_c_message_free_unpacked(reply, NULL);
	}
	return status;
}

Test(auth, each_role_reaches_its_methods_and_no_further)
{
	static const struct {
		const char *token;
		zrpc_code   peek, read, write, seal;
	} cases[] = {
		{ NULL, ZRPC_OK, ZRPC_UNAUTHENTICATED, ZRPC_UNAUTHENTICATED,
		    ZRPC_UNAUTHENTICATED },
		{ "not-a-known-token-at-all", ZRPC_OK, ZRPC_UNAUTHENTICATED,
		    ZRPC_UNAUTHENTICATED, ZRPC_UNAUTHENTICATED },
		{ READ_TOKEN, ZRPC_OK, ZRPC_OK, ZRPC_PERMISSION_DENIED,
		    ZRPC_PERMISSION_DENIED },
		{ WRITE_TOKEN, ZRPC_OK, ZRPC_OK, ZRPC_OK,
		    ZRPC_PERMISSION_DENIED },
		{ ADMIN_TOKEN, ZRPC_OK, ZRPC_OK, ZRPC_OK, ZRPC_OK },
	};
	struct vault v;

	vault_start(&v, TOKENS);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *t = cases[i].token;

		cr_assert_eq(
		    vault_call(&v, &zrpctest_v1_vault_peek_method, t, NULL, 0)
		        .code,
		    cases[i].peek, "Peek with %s", t);
		cr_assert_eq(
		    vault_call(&v, &zrpctest_v1_vault_read_method, t, NULL, 0)
		        .code,
		    cases[i].read, "Read with %s", t);
		cr_assert_eq(
		    vault_call(&v, &zrpctest_v1_vault_write_method, t, NULL, 0)
		        .code,
		    cases[i].write, "Write with %s", t);
		cr_assert_eq(
		    vault_call(&v, &zrpctest_v1_vault_wipe_method, t, NULL, 0)
		        .code,
		    cases[i].write, "Wipe with %s", t);
		cr_assert_eq(
		    vault_call(&v, &zrpctest_v1_vault_seal_method, t, NULL, 0)
		        .code,
		    cases[i].seal, "Seal with %s", t);
	}
	/* Only the write and admin tokens' Write calls ran. */
	cr_assert_eq(atomic_load(&v.write_runs), 2);
	vault_stop(&v);
}

Test(auth, denials_say_what_is_missing_and_never_show_the_token)
{
	struct vault v;
	zrpc_status  status;

	vault_start(&v, TOKENS);
	status = vault_call(&v, &zrpctest_v1_vault_seal_method, NULL, NULL, 0);
	cr_assert(strstr(status.message, "needs a token") != NULL, "%s",
	    status.message);
	status = vault_call(&v, &zrpctest_v1_vault_seal_method,
	    "wrong-token-0123456789", NULL, 0);
	cr_assert(
	    strstr(status.message, "not known") != NULL, "%s", status.message);
	cr_assert_null(strstr(status.message, "wrong-token"));
	status = vault_call(
	    &v, &zrpctest_v1_vault_seal_method, READ_TOKEN, NULL, 0);
	cr_assert_str_eq(status.message,
	    "/zrpctest.v1.Vault/Seal needs role admin; the token has role "
	    "read");
	vault_stop(&v);
}

Test(auth, the_handler_sees_the_callers_role)
{
	struct vault v;
	char         role[16];

	vault_start(&v, TOKENS);
	vault_call(
	    &v, &zrpctest_v1_vault_peek_method, NULL, role, sizeof(role));
	cr_assert_str_eq(role, "");
	vault_call(&v, &zrpctest_v1_vault_peek_method, WRITE_TOKEN, role,
	    sizeof(role));
	cr_assert_str_eq(role, "write");
	vault_call(&v, &zrpctest_v1_vault_read_method, ADMIN_TOKEN, role,
	    sizeof(role));
	cr_assert_str_eq(role, "admin");
	vault_stop(&v);
}

Test(auth, without_a_table_every_caller_is_admin)
{
	struct vault v;
	char         role[16];

	vault_start(&v, NULL);
	cr_assert_eq(
	    vault_call(&v, &zrpctest_v1_vault_seal_method, NULL, NULL, 0).code,
	    ZRPC_OK);
	vault_call(
	    &v, &zrpctest_v1_vault_peek_method, NULL, role, sizeof(role));
	cr_assert_str_eq(role, "admin");
	vault_stop(&v);
}

Test(auth, the_token_is_checked_before_the_payload_is_decoded)
{
	static const uint8_t junk[] = { 0xff, 0xff, 0xff, 0xff, 0x0f };
	struct vault         v;
	uint8_t             *reply = NULL;
	size_t               len;
	zrpc_status          status;
	zrpc_call_opts       opts = { .timeout_ms = 5000 };

	vault_start(&v, TOKENS);
	status = zrpc_client_call_raw(v.client, "/zrpctest.v1.Vault/Write",
	    junk, sizeof(junk), &reply, &len, &opts);
	cr_assert_eq(status.code, ZRPC_UNAUTHENTICATED, "%s", status.message);
	opts.token = READ_TOKEN;
	status     = zrpc_client_call_raw(v.client, "/zrpctest.v1.Vault/Write",
	        junk, sizeof(junk), &reply, &len, &opts);
	cr_assert_eq(
	    status.code, ZRPC_PERMISSION_DENIED, "%s", status.message);
	/* With the role, the same bytes reach the decoder, which refuses
	 * them. */
	opts.token = WRITE_TOKEN;
	status     = zrpc_client_call_raw(v.client, "/zrpctest.v1.Vault/Write",
	        junk, sizeof(junk), &reply, &len, &opts);
	cr_assert_eq(status.code, ZRPC_INVALID_ARGUMENT, "%s", status.message);
	cr_assert_eq(atomic_load(&v.write_runs), 0);
	free(reply);
	vault_stop(&v);
}

Test(auth, an_unknown_method_is_unauthenticated_without_a_token)
{
	struct vault   v;
	uint8_t       *reply = NULL;
	size_t         len;
	zrpc_call_opts opts = { .timeout_ms = 5000 };

	vault_start(&v, TOKENS);
	cr_assert_eq(zrpc_client_call_raw(v.client, "/zrpctest.v1.Vault/Nope",
	                 NULL, 0, &reply, &len, &opts)
	                 .code,
	    ZRPC_UNAUTHENTICATED);
	opts.token = READ_TOKEN;
	cr_assert_eq(zrpc_client_call_raw(v.client, "/zrpctest.v1.Vault/Nope",
	                 NULL, 0, &reply, &len, &opts)
	                 .code,
	    ZRPC_UNIMPLEMENTED);
	free(reply);
	vault_stop(&v);
}

Test(auth, denials_are_counted_by_reason)
{
	struct vault           v;
	struct zrpc_auth_stats stats;

	vault_start(&v, TOKENS);
	zrpc_server_auth_stats(v.server, &stats);
	cr_assert_eq(stats.unauthenticated, 0);
	cr_assert_eq(stats.permission_denied, 0);
	vault_call(&v, &zrpctest_v1_vault_seal_method, NULL, NULL, 0);
	vault_call(
	    &v, &zrpctest_v1_vault_seal_method, "x-0123456789abcdef", NULL, 0);
	vault_call(&v, &zrpctest_v1_vault_seal_method, READ_TOKEN, NULL, 0);
	vault_call(&v, &zrpctest_v1_vault_peek_method, NULL, NULL, 0);
	vault_call(&v, &zrpctest_v1_vault_seal_method, ADMIN_TOKEN, NULL, 0);
	zrpc_server_auth_stats(v.server, &stats);
	cr_assert_eq(stats.unauthenticated, 2);
	cr_assert_eq(stats.permission_denied, 1);
	vault_stop(&v);
}

Test(auth, health_is_open_and_reflection_wants_read_and_shows_roles)
{
	struct vault                 v;
	Zrpc__V1__HealthCheckRequest hreq =
	    ZRPC__V1__HEALTH_CHECK_REQUEST__INIT;
	Zrpc__V1__HealthCheckResponse *hreply = NULL;
	Zrpc__V1__ListServicesRequest  lreq =
	    ZRPC__V1__LIST_SERVICES_REQUEST__INIT;
	Zrpc__V1__ListServicesResponse *lreply = NULL;
	zrpc_call_opts                  opts   = { .timeout_ms = 5000 };
	bool                            seen   = false;

	vault_start(&v, TOKENS);
	cr_assert_eq(
	    zrpc_v1_health_check(v.client, &hreq, &hreply, &opts).code,
	    ZRPC_OK);
	zrpc__v1__health_check_response__free_unpacked(hreply, NULL);
	cr_assert_eq(
	    zrpc_v1_reflection_list_services(v.client, &lreq, &lreply, &opts)
	        .code,
	    ZRPC_UNAUTHENTICATED);
	opts.token = READ_TOKEN;
	cr_assert_eq(
	    zrpc_v1_reflection_list_services(v.client, &lreq, &lreply, &opts)
	        .code,
	    ZRPC_OK);
	for (size_t s = 0; s < lreply->n_services; s++) {
		const Zrpc__V1__ServiceInfo *info = lreply->services[s];

		if (strcmp(info->name, "zrpctest.v1.Vault") != 0) {
			continue;
		}
		seen = true;
		cr_assert_str_eq(info->methods[0]->role, "");
		cr_assert_str_eq(info->methods[1]->role, "read");
		cr_assert_str_eq(info->methods[2]->role, "write");
		cr_assert_str_eq(info->methods[4]->role, "admin");
	}
	cr_assert(seen);
	zrpc__v1__list_services_response__free_unpacked(lreply, NULL);
	vault_stop(&v);
}
