/*
 * The tools' method resolver (tools/common/resolve.h), without a server
 * (the zosctl-any suite drives it with one): files first, the compiled-in
 * tables when there is no server, and the errors of each.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proc.h"
#include "resolve.h"

static const char *
kv_root(void)
{
	static char path[1024];

	snprintf(path, sizeof(path), "%s/tests/tools/kv",
	    env_path("ZOS_SOURCE_ROOT"));
	return path;
}

static const char *
kv_protoset(void)
{
	static char path[1024];

	snprintf(path, sizeof(path), "%s/tests/tools/kv/kv/v1/kv.protoset",
	    env_path("ZOS_BUILD_ROOT"));
	return path;
}

/* Resolves NAME with R and no server; asserts it is METHOD's path. */
static void
assert_resolves(zos_resolver *r, const char *name, const char *path,
    enum zos_resolve_source expected)
{
	const struct zrpc_method *m;
	enum zos_resolve_source   source;
	zrpc_status               status =
	    zos_resolve_method(r, NULL, NULL, name, &m, &source);

	cr_assert_eq(status.code, ZRPC_OK, "%s: %s", name, status.message);
	cr_assert_str_eq(m->path, path);
	cr_assert_eq(source, expected);
}

Test(resolve, a_protoset_gives_every_method_it_defines)
{
	struct zos_resolve_opts   opts = { .protoset = kv_protoset() };
	zos_resolver             *r;
	const struct zrpc_method *m;
	zrpc_status               status = zos_resolver_new(&r, &opts);

	cr_assert_eq(status.code, ZRPC_OK, "%s", status.message);
	cr_assert(zos_resolver_has_files(r));
	assert_resolves(
	    r, "/kv.v1.Store/Get", "/kv.v1.Store/Get", ZOS_RESOLVE_FILES);
	assert_resolves(
	    r, "kv.v1.Store.Put", "/kv.v1.Store/Put", ZOS_RESOLVE_FILES);
	status =
	    zos_resolve_method(r, NULL, NULL, "kv.v1.Store/Get", &m, NULL);
	cr_assert_str_eq(m->input->name, "kv.v1.GetRequest");
	cr_assert_str_eq(m->output->name, "kv.v1.GetResponse");
	/* The files only: not the compiled-in tables. */
	status = zos_resolve_method(
	    r, NULL, NULL, "zrpc.v1.Health/Check", &m, NULL);
	cr_assert_eq(status.code, ZRPC_NOT_FOUND);
	cr_assert(strstr(status.message, "zrpc.v1.Health/Check") != NULL, "%s",
	    status.message);
	zos_resolver_free(r);
}

Test(resolve, a_proto_file_is_compiled_by_protoc)
{
	const char             *dirs[] = { kv_root() };
	struct zos_resolve_opts opts   = {
		  .proto          = "kv/v1/kv.proto",
		  .import_paths   = dirs,
		  .n_import_paths = 1,
	};
	zos_resolver *r;
	zrpc_status   status = zos_resolver_new(&r, &opts);

	cr_assert_eq(status.code, ZRPC_OK, "%s", status.message);
	assert_resolves(
	    r, "kv.v1.Store/Get", "/kv.v1.Store/Get", ZOS_RESOLVE_FILES);
	zos_resolver_free(r);
}

Test(resolve, without_files_or_server_the_compiled_in_tables_answer)
{
	zos_resolver             *r;
	const struct zrpc_method *m;
	zrpc_status               status = zos_resolver_new(&r, NULL);

	cr_assert_eq(status.code, ZRPC_OK, "%s", status.message);
	cr_assert_not(zos_resolver_has_files(r));
	assert_resolves(
	    r, "zos.v1.Skills/Get", "/zos.v1.Skills/Get", ZOS_RESOLVE_BUILTIN);
	status =
	    zos_resolve_method(r, NULL, NULL, "kv.v1.Store/Get", &m, NULL);
	cr_assert_eq(status.code, ZRPC_NOT_FOUND);
	cr_assert(strstr(status.message, "give --proto or --protoset") != NULL,
	    "%s", status.message);
	zos_resolver_free(r);
}

Test(resolve, bad_files_are_errors_that_say_why)
{
	struct zos_resolve_opts opts = { .protoset = "/nonexistent" };
	zos_resolver           *r;
	zrpc_status             status = zos_resolver_new(&r, &opts);
	char                    garbage[256];
	FILE                   *f;

	cr_assert_eq(status.code, ZRPC_INVALID_ARGUMENT);
	cr_assert_null(r);
	cr_assert(strstr(status.message, "cannot read /nonexistent") != NULL,
	    "%s", status.message);

	snprintf(garbage, sizeof(garbage), "/tmp/resolve-test-%d.protoset",
	    (int) getpid());
	f = fopen(garbage, "w");
	cr_assert_not_null(f);
	fputs("not a descriptor set", f);
	fclose(f);
	opts.protoset = garbage;
	status        = zos_resolver_new(&r, &opts);
	unlink(garbage);
	cr_assert_neq(status.code, ZRPC_OK);
	cr_assert(strstr(status.message, "--protoset") != NULL, "%s",
	    status.message);

	opts =
	    (struct zos_resolve_opts) { .proto = "a.proto", .protoset = "b" };
	status = zos_resolver_new(&r, &opts);
	cr_assert_eq(status.code, ZRPC_INVALID_ARGUMENT);

	opts   = (struct zos_resolve_opts) { .proto = "/nonexistent/x.proto" };
	status = zos_resolver_new(&r, &opts);
	cr_assert_eq(status.code, ZRPC_INVALID_ARGUMENT);
	cr_assert(strstr(status.message, "protoc failed") != NULL, "%s",
	    status.message);

	setenv("PATH", "/nonexistent", 1);
	opts   = (struct zos_resolve_opts) { .proto = "kv/v1/kv.proto" };
	status = zos_resolver_new(&r, &opts);
	cr_assert_eq(status.code, ZRPC_FAILED_PRECONDITION);
	cr_assert(
	    strstr(status.message, "protoc") != NULL, "%s", status.message);
}
