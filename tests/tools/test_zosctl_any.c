/*
 * zosctl with a service it does not know at build time: kv.v1.Store
 * (tests/tools/kv), served in this process by kv_server on an ipc://
 * socket named after the test's process. zosctl lists, describes and
 * calls it through reflection, then from --proto (protoc runs) and from
 * --protoset (kv.protoset, made at build time) against a server whose
 * reflection answers UNIMPLEMENTED; -H reaches the server (its replies
 * echo x-kv-echo), -v shows the metadata and the status, every status
 * code has its exit status, --format text, --emit-defaults and the JSON
 * edge cases. The suite's fini stops the server whatever the outcome.
 */
#include <criterion/criterion.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kv_server.h"
#include "proc.h"
#include "run_tool.h"

/* The test's server: Criterion runs each test in its own process. */
static struct kv_server *kv;
static char              kv_sock[128];
static char              kv_url[160];

/* Starts the kv server on this test's socket, reflection on or off. */
static const char *
start_kv(bool reflection)
{
	struct kv_server_opts opts = { .no_reflection = !reflection };
	zrpc_status           status;

	snprintf(kv_sock, sizeof(kv_sock), "/tmp/zosctl-any-%d.sock",
	    (int) getpid());
	snprintf(kv_url, sizeof(kv_url), "ipc://%s", kv_sock);
	status = kv_server_start(&kv, kv_url, &opts);
	cr_assert_eq(status.code, ZRPC_OK, "%s", status.message);
	return kv_url;
}

static void
stop_kv(void)
{
	kv_server_stop(kv);
	kv = NULL;
	unlink(kv_sock);
}

TestSuite(zosctl_any, .fini = stop_kv, .timeout = 60);

/* Runs zosctl with the arguments after INPUT, up to a NULL. */
#define zosctl(r, input, ...) \
	run_tool(r, env_path("ZOSCTL"), input, __VA_ARGS__, NULL)

/* The kv protos' source root (-I) and kv.proto in it. */
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

/* Asserts R exited STATUS and its stream (out or err) holds NEEDLE. */
static void
assert_has(const struct run *r, int status, const char *out_needle,
    const char *err_needle)
{
	cr_assert_eq(r->status, status,
	    "exit %d, not %d\nstdout: %s\nstderr: %s", r->status, status,
	    r->out, r->err);
	cr_assert(out_needle == NULL || strstr(r->out, out_needle) != NULL,
	    "stdout has '%s':\n%s", out_needle, r->out);
	cr_assert(err_needle == NULL || strstr(r->err, err_needle) != NULL,
	    "stderr has '%s':\n%s", err_needle, r->err);
}

/* A Put with every kind of field: nested message, enum, map, repeated. */
static const char kv_put_json[] =
    "{\"entry\": {\"key\": \"k1\", \"value\": \"v1\", \"kind\": "
    "\"KIND_NUMBER\", \"meta\": {\"owner\": \"ann\", \"createdUnixMs\": "
    "\"1700000000000\"}, \"labels\": {\"env\": \"test\"}, \"tags\": "
    "[\"a\", \"b\"], \"scores\": [3, -1], \"weight\": 0.5, \"blob\": "
    "\"AAE=\"}}";

/* The entry of kv_put_json as zosctl prints it. */
static const char kv_entry_printed[] =
    "\"entry\": {\n"
    "    \"key\": \"k1\",\n"
    "    \"value\": \"v1\",\n"
    "    \"kind\": \"KIND_NUMBER\",\n"
    "    \"meta\": {\n"
    "      \"owner\": \"ann\",\n"
    "      \"createdUnixMs\": \"1700000000000\"\n"
    "    },\n"
    "    \"labels\": {\n"
    "      \"env\": \"test\"\n"
    "    },\n"
    "    \"tags\": [\n"
    "      \"a\",\n"
    "      \"b\"\n"
    "    ],\n"
    "    \"scores\": [\n"
    "      3,\n"
    "      -1\n"
    "    ],\n"
    "    \"weight\": 0.5,\n"
    "    \"blob\": \"AAE=\"\n"
    "  }";

/* Put then Get through zosctl with the descriptor flags in FLAGS (up to
 * 4, NULL-terminated), checking both replies. */
static void
put_and_get(const char *url, const char *const *flags)
{
	const char *args[16];
	int         n = 0;
	struct run  r;

	args[n++] = "--url";
	args[n++] = url;
	args[n++] = "-v";
	for (int i = 0; flags[i] != NULL; i++) {
		args[n++] = flags[i];
	}
	args[n++] = "call";
	args[n++] = "kv.v1.Store/Put";
	args[n++] = kv_put_json;
	args[n]   = NULL;
	run_tool_argv(&r, env_path("ZOSCTL"), NULL, args);
	assert_has(&r, 0, kv_entry_printed, "Status: OK");
	assert_has(&r, 0, "\"version\": \"1\"", NULL);
	args[n - 2] = "kv.v1.Store.Get";
	args[n - 1] = "{\"key\": \"k1\"}";
	run_tool_argv(&r, env_path("ZOSCTL"), NULL, args);
	assert_has(&r, 0, kv_entry_printed, "Status: OK");
}

Test(zosctl_any, lists_and_calls_a_service_through_reflection)
{
	const char *url = start_kv(true);
	struct run  r;

	zosctl(&r, NULL, "--url", url, "list");
	assert_has(&r, 0, "kv.v1.Store\n", NULL);
	cr_assert(strstr(r.out, "zrpc.v1.Health\n") != NULL, "%s", r.out);
	zosctl(&r, NULL, "--url", url, "list", "kv.v1.Store");
	cr_assert_str_eq(r.out, "kv.v1.Store.Get\nkv.v1.Store.Put\n");
	put_and_get(url, (const char *const[]) { NULL });
	zosctl(&r, NULL, "--url", url, "-v", "call", "/kv.v1.Store/Get",
	    "{\"key\": \"k1\"}");
	assert_has(&r, 0, NULL, "Descriptors: reflection");
}

Test(zosctl_any, calls_from_a_proto_file_when_the_server_has_no_reflection)
{
	const char *url = start_kv(false);
	struct run  r;

	/* Without the file, zosctl cannot know the method. */
	zosctl(&r, NULL, "--url", url, "call", "kv.v1.Store/Get", "{}");
	assert_has(&r, 2, NULL, "unknown method 'kv.v1.Store/Get'");
	assert_has(&r, 2, NULL, "UNIMPLEMENTED");

	zosctl(&r, NULL, "--proto", "kv/v1/kv.proto", "-I", kv_root(), "list");
	cr_assert_str_eq(r.out, "kv.v1.Store\n", "%s", r.err);
	zosctl(&r, NULL, "--proto", "kv/v1/kv.proto", "-I", kv_root(), "list",
	    "kv.v1.Store");
	cr_assert_str_eq(
	    r.out, "kv.v1.Store.Get\nkv.v1.Store.Put\n", "%s", r.err);
	put_and_get(url,
	    (const char *const[]) {
	        "--proto", "kv/v1/kv.proto", "-I", kv_root(), NULL });
	zosctl(&r, NULL, "--url", url, "-v", "--proto", "kv/v1/kv.proto", "-I",
	    kv_root(), "call", "kv.v1.Store/Get", "{\"key\": \"k1\"}");
	assert_has(&r, 0, NULL, "Descriptors: --protoset/--proto");
}

Test(zosctl_any, calls_from_a_protoset_when_the_server_has_no_reflection)
{
	const char *url = start_kv(false);
	struct run  r;

	zosctl(&r, NULL, "--protoset", kv_protoset(), "list");
	cr_assert_str_eq(r.out, "kv.v1.Store\n", "%s", r.err);
	put_and_get(
	    url, (const char *const[]) { "--protoset", kv_protoset(), NULL });
	/* The files only: a method they do not define is unknown. */
	zosctl(&r, NULL, "--url", url, "--protoset", kv_protoset(), "call",
	    "zrpc.v1.Health/Check", "{}");
	assert_has(&r, 2, NULL, "not in the --proto or --protoset files");
}

Test(zosctl_any, describes_from_reflection_proto_and_protoset)
{
	const char *url = start_kv(true);
	struct run  r;

	zosctl(&r, NULL, "--url", url, "describe", "kv.v1.Store");
	assert_has(&r, 0, "service Store", NULL);
	assert_has(&r, 0, "rpc Get", NULL);
	assert_has(&r, 0, "rpc Put", NULL);
	zosctl(&r, NULL, "--url", url, "describe", "kv.v1.Entry");
	assert_has(&r, 0, "message Entry", NULL);
	assert_has(&r, 0, "labels", NULL);
	assert_has(&r, 0, "Meta", NULL);
	zosctl(&r, NULL, "--url", url, "describe", "kv.v1.Kind");
	assert_has(&r, 0, "KIND_NUMBER", NULL);
	zosctl(&r, NULL, "--url", url, "describe", "kv.v1.Store.Get");
	assert_has(&r, 0, "Get", NULL);
	zosctl(&r, NULL, "--url", url, "describe", "kv.v1.Nope");
	assert_has(&r, 69, NULL, "NOT_FOUND: ");
	zosctl(&r, NULL, "--url", url, "describe");
	assert_has(&r, 0, "service Store", NULL);
	assert_has(&r, 0, "service Health", NULL);

	zosctl(&r, NULL, "--proto", "kv/v1/kv.proto", "-I", kv_root(),
	    "describe", "kv.v1.Entry.Meta");
	assert_has(&r, 0, "Meta", NULL);
	assert_has(&r, 0, "owner", NULL);
	zosctl(
	    &r, NULL, "--protoset", kv_protoset(), "describe", "kv.v1.Kind");
	assert_has(&r, 0, "KIND_TEXT", NULL);
	zosctl(&r, NULL, "--protoset", kv_protoset(), "describe");
	assert_has(&r, 0, "service Store", NULL);
}

Test(zosctl_any, without_reflection_the_compiled_in_tables_answer)
{
	const char *url = start_kv(false);
	struct run  r;

	zosctl(&r, NULL, "--url", url, "-v", "call", "zrpc.v1.Health/Check",
	    "{}");
	assert_has(
	    &r, 0, "\"status\": \"SERVING\"", "Descriptors: compiled-in");
	zosctl(&r, NULL, "--url", url, "describe", "zrpc.v1.Health");
	assert_has(&r, 0, "service Health", NULL);
	zosctl(&r, NULL, "--url", url, "describe", "kv.v1.Store");
	assert_has(&r, 69, NULL, "NOT_FOUND: unknown symbol 'kv.v1.Store'");
}

Test(zosctl_any, proto_errors_are_clear)
{
	struct run r;
	char       bad[256];
	FILE      *f;

	/* protoc's own message, then zosctl's. */
	zosctl(
	    &r, NULL, "--proto", "kv/v1/nope.proto", "-I", kv_root(), "list");
	assert_has(&r, 2, NULL, "nope.proto");
	assert_has(&r, 2, NULL, "protoc failed on kv/v1/nope.proto");
	snprintf(bad, sizeof(bad), "/tmp/zosctl-any-%d.proto", (int) getpid());
	f = fopen(bad, "w");
	cr_assert_not_null(f);
	fputs("syntax = \"proto3\";\nmessage M { Missing m = 1; }\n", f);
	fclose(f);
	zosctl(&r, NULL, "--proto", bad, "list");
	unlink(bad);
	assert_has(&r, 2, NULL, "\"Missing\" is not defined");
	zosctl(&r, NULL, "--proto", "kv/v1/kv.proto", "--protoset",
	    kv_protoset(), "list");
	assert_has(&r, 2, NULL, "do not go together");
	zosctl(&r, NULL, "--protoset", "/nonexistent.protoset", "list");
	assert_has(&r, 2, NULL, "cannot read /nonexistent.protoset");
	zosctl(&r, NULL, "--protoset", kv_root(), "list");
	assert_has(&r, 2, NULL, "not a regular file");
	/* No protoc at all. */
	setenv("PATH", "/nonexistent", 1);
	zosctl(&r, NULL, "--proto", "kv/v1/kv.proto", "-I", kv_root(), "list");
	assert_has(&r, 1, NULL, "protoc, which is not in PATH");
}

Test(zosctl_any, headers_reach_the_server_and_v_shows_metadata_and_status)
{
	const char *url = start_kv(true);
	struct run  r;

	zosctl(&r, NULL, "--url", url, "-v", "-H", "x-kv-echo: hello there",
	    "-H", "x-request-id: req-42", "-H",
	    "traceparent: "
	    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
	    "call", "kv.v1.Store/Get", "{\"key\": \"bad-utf8\"}");
	/* bad-utf8: the reply is refused (below); its metadata is shown. */
	assert_has(
	    &r, 1, NULL, "Request metadata sent:\nx-kv-echo: hello there\n");
	assert_has(&r, 1, NULL, "x-request-id: req-42\n");
	assert_has(&r, 1, NULL, "Reply metadata received:\n");
	assert_has(&r, 1, NULL, "x-kv-echoed: hello there\n");
	assert_has(&r, 1, NULL,
	    "x-kv-traceparent: "
	    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\n");
	assert_has(&r, 1, NULL, "Status: OK (0, exit status 0)");
	cr_assert(strstr(strstr(r.err, "Reply metadata received:"),
	              "x-request-id: req-42\n") != NULL,
	    "the reply's x-request-id: %s", r.err);

	zosctl(&r, NULL, "--url", url, "-H", "x-kv-echo: e2", "call",
	    "kv.v1.Store/Put", "{\"entry\": {\"key\": \"k\"}}");
	assert_has(&r, 0, "\"echoed\": \"e2\"", NULL);

	/* No x-request-id given: the reply carries one all the same. */
	zosctl(&r, NULL, "--url", url, "-v", "call", "kv.v1.Store/Get",
	    "{\"key\": \"k\"}");
	assert_has(&r, 0, NULL, "Reply metadata received:\n");
	cr_assert(strstr(strstr(r.err, "Reply metadata received:"),
	              "x-request-id: ") != NULL,
	    "the reply's x-request-id: %s", r.err);

	/* An error's status too. */
	zosctl(&r, NULL, "--url", url, "-v", "call", "kv.v1.Store/Get",
	    "{\"key\": \"none\"}");
	assert_has(&r, 69, NULL, "Status: NOT_FOUND (5, exit status 69)");
	assert_has(&r, 69, NULL, "NOT_FOUND: no entry under key 'none'");
}

Test(zosctl_any, bad_headers_are_refused_before_any_call)
{
	struct run r;

	zosctl(&r, NULL, "-H", "X-Upper: v", "list");
	assert_has(&r, 2, NULL, "a key is lower-case letters");
	zosctl(&r, NULL, "-H", "novalue", "list");
	assert_has(&r, 2, NULL, "-H wants 'KEY: VALUE'");
	zosctl(&r, NULL, "-H", ": v", "list");
	assert_has(&r, 2, NULL, "no key");
	zosctl(&r, NULL, "-H", "k: a\x1b[31mb", "list");
	assert_has(&r, 2, NULL, "control character");
	zosctl(&r, NULL, "-H", "k: 1", "-H", "k: 2", "list");
	assert_has(&r, 2, NULL, "given twice");
	zosctl(
	    &r, NULL, "--token", "t", "-H", "authorization: Bearer x", "list");
	assert_has(&r, 2, NULL, "do not go together");
}

Test(zosctl_any, the_exit_status_is_64_plus_each_status_code)
{
	const char *url = start_kv(true);
	struct run  r;

	for (int code = 1; code < ZRPC_CODE_COUNT; code++) {
		char header[64], expected[64];

		snprintf(header, sizeof(header), "x-kv-fail: %s",
		    zrpc_status_name((zrpc_code) code));
		snprintf(expected, sizeof(expected), "%s: failed as asked",
		    zrpc_status_name((zrpc_code) code));
		zosctl(&r, NULL, "--url", url, "-H", header, "call",
		    "kv.v1.Store/Get", "{}");
		assert_has(&r, 64 + code, NULL, expected);
		cr_assert_str_eq(r.out, "");
	}
	zosctl(&r, NULL, "--url", url, "call", "kv.v1.Store/Get", "{}");
	assert_has(&r, 69, NULL, "NOT_FOUND: ");
	zosctl(&r, NULL, "--url", url, "call", "kv.v1.Store/Put", "{}");
	assert_has(&r, 67, NULL, "INVALID_ARGUMENT: ");
	stop_kv();
	zosctl(&r, NULL, "--url", url, "--timeout-ms", "300", "call",
	    "kv.v1.Store/Get", "{}");
	assert_has(&r, 78, NULL, "UNAVAILABLE: ");
}

Test(zosctl_any, format_text_and_emit_defaults)
{
	const char *url = start_kv(true);
	struct run  r;

	zosctl(&r, NULL, "--url", url, "call", "kv.v1.Store/Put", kv_put_json);
	zosctl(&r, NULL, "--url", url, "--format", "text", "call",
	    "kv.v1.Store/Get", "{\"key\": \"k1\"}");
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_str_eq(r.out,
	    "entry {\n"
	    "  key: \"k1\"\n"
	    "  value: \"v1\"\n"
	    "  kind: KIND_NUMBER\n"
	    "  meta {\n"
	    "    owner: \"ann\"\n"
	    "    created_unix_ms: 1700000000000\n"
	    "  }\n"
	    "  labels {\n"
	    "    key: \"env\"\n"
	    "    value: \"test\"\n"
	    "  }\n"
	    "  tags: \"a\"\n"
	    "  tags: \"b\"\n"
	    "  scores: 3\n"
	    "  scores: -1\n"
	    "  weight: 0.5\n"
	    "  blob: \"\\000\\001\"\n"
	    "}\n");
	zosctl(&r, NULL, "--url", url, "--format", "yaml", "list");
	assert_has(&r, 2, NULL, "--format wants json or text");

	zosctl(&r, NULL, "--url", url, "call", "kv.v1.Store/Put",
	    "{\"entry\": {\"key\": \"bare\"}}");
	zosctl(&r, NULL, "--url", url, "--emit-defaults", "call",
	    "kv.v1.Store/Get", "{\"key\": \"bare\"}");
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_str_eq(r.out,
	    "{\n"
	    "  \"entry\": {\n"
	    "    \"key\": \"bare\",\n"
	    "    \"value\": \"\",\n"
	    "    \"kind\": \"KIND_UNSPECIFIED\",\n"
	    "    \"labels\": {},\n"
	    "    \"tags\": [],\n"
	    "    \"scores\": [],\n"
	    "    \"weight\": 0,\n"
	    "    \"blob\": \"\"\n"
	    "  },\n"
	    "  \"echoed\": \"\"\n"
	    "}\n");
	zosctl(&r, NULL, "--url", url, "call", "kv.v1.Store/Get",
	    "{\"key\": \"bare\"}");
	cr_assert_str_eq(
	    r.out, "{\n  \"entry\": {\n    \"key\": \"bare\"\n  }\n}\n");
}

Test(zosctl_any, json_edge_cases_invalid_utf8_and_duplicate_keys)
{
	const char *url = start_kv(true);
	struct run  r;

	zosctl(&r, NULL, "--url", url, "call", "kv.v1.Store/Get",
	    "{\"key\": \"bad-utf8\"}");
	assert_has(&r, 1, NULL,
	    "zosctl: cannot print the reply: entry.value: string field "
	    "holds invalid UTF-8");
	cr_assert_str_eq(r.out, "");
	/* The text format escapes it instead, as protoc does. */
	zosctl(&r, NULL, "--url", url, "--format", "text", "call",
	    "kv.v1.Store/Get", "{\"key\": \"bad-utf8\"}");
	assert_has(&r, 0, "value: \"not \\377\\376 UTF-8\"", NULL);

	zosctl(&r, NULL, "--url", url, "call", "kv.v1.Store/Get",
	    "{\"key\": \"a\", \"key\": \"b\"}");
	assert_has(&r, 2, NULL, "key \"key\" given twice in one object");
	cr_assert_eq(kv_server_calls(kv), 2, "the bad request was not sent");
}
