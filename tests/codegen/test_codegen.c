/*
 * test_codegen: what protoc-gen-zrpc writes, and what it refuses to write.
 *
 * The generated code for the protos under tests/codegen/proto is compiled
 * into this suite, so the first thing these tests check is that it builds
 * with the project's warnings as errors, with protoc-c's names for types
 * from other files, other packages, nested messages and files with a
 * c_package option. The tests then check the service descriptions, and
 * drive the stubs and the typed trampolines through a fake runtime: the
 * suite is linked with `ld --wrap` for zrpc_client_call,
 * zrpc_client_call_async and zrpc_server_register, so the __wrap_
 * functions below receive exactly what the generated code passes.
 *
 * The last group runs protoc with the plugin (paths from the environment
 * that meson sets) on protos that must fail: streaming methods and
 * generated names that would collide. protoc must exit non-zero and name
 * the offending method.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "nopkg.zrpc.h"
#include "tmpdir.h"
#include "zrpctest/cpkg/renamed.zrpc.h"
#include "zrpctest/v1/keywords.zrpc.h"
#include "zrpctest/v1/roles.zrpc.h"
#include "zrpctest/v1/services.zrpc.h"

/* ---- the fake runtime ---- */

#define CODEGEN_MAX_BINDINGS 8

/* What the fake runtime was given, and how it answers. */
struct codegen_fake {
	int                             calls;
	zrpc_client                    *client;
	const struct zrpc_method       *method;
	const ProtobufCMessage         *request;
	const zrpc_call_opts           *opts;
	zrpc_code                       answer; /* status of calls */
	const struct zrpc_service_desc *desc;
	struct zrpc_method_binding      bindings[CODEGEN_MAX_BINDINGS];
	bool                            bindings_null;
	void                           *ctx;
};

/* What a typed handler or callback saw. */
struct codegen_seen {
	int                     calls;
	void                   *arg;
	zrpc_call              *call;
	const void             *request;
	void                   *reply;
	zrpc_code               code;
	const ProtobufCMessage *message; /* a reply handed to a callback */
};

/* Criterion runs each test in its own process: these start zeroed. */
static struct codegen_fake codegen_fake;
static struct codegen_seen codegen_seen;

zrpc_status __wrap_zrpc_client_call(zrpc_client *client,
    const struct zrpc_method *method, const ProtobufCMessage *request,
    ProtobufCMessage **reply, const zrpc_call_opts *opts);
zrpc_status __wrap_zrpc_client_call_async(zrpc_client *client,
    const struct zrpc_method *method, const ProtobufCMessage *request,
    const zrpc_call_opts *opts, zrpc_reply_invoke_fn invoke, void (*cb)(void),
    void *arg);
zrpc_status __wrap_zrpc_server_register(zrpc_server *server,
    const struct zrpc_service_desc                  *desc,
    const struct zrpc_method_binding *bindings, void *ctx);

/* A new, initialised message of type DESC (free_unpacked frees it). */
static ProtobufCMessage *
codegen_new_message(const ProtobufCMessageDescriptor *desc)
{
	ProtobufCMessage *message = calloc(1, desc->sizeof_message);

	cr_assert_not_null(message);
	protobuf_c_message_init(desc, message);
	return message;
}

/* Records the call; answers codegen_fake.answer with a fresh reply. */
static zrpc_status
codegen_fake_call(zrpc_client *client, const struct zrpc_method *method,
    const ProtobufCMessage *request, const zrpc_call_opts *opts,
    ProtobufCMessage **reply)
{
	codegen_fake.calls++;
	codegen_fake.client  = client;
	codegen_fake.method  = method;
	codegen_fake.request = request;
	codegen_fake.opts    = opts;
	*reply               = NULL;
	if (codegen_fake.answer != ZRPC_OK) {
		return zrpc_status_make(codegen_fake.answer, "fake failure");
	}
	*reply = codegen_new_message(method->output);
	return zrpc_status_ok();
}

zrpc_status
__wrap_zrpc_client_call(zrpc_client *client, const struct zrpc_method *method,
    const ProtobufCMessage *request, ProtobufCMessage **reply,
    const zrpc_call_opts *opts)
{
	ProtobufCMessage *message;
	zrpc_status       status;

	status = codegen_fake_call(client, method, request, opts, &message);
	if (reply == NULL) {
		if (message != NULL) {
			protobuf_c_message_free_unpacked(message, NULL);
		}
		return zrpc_status_make(
		    ZRPC_INVALID_ARGUMENT, "reply is NULL");
	}
	*reply = message;
	return status;
}

/* Completes the call at once, through the generated INVOKE trampoline. */
zrpc_status
__wrap_zrpc_client_call_async(zrpc_client *client,
    const struct zrpc_method *method, const ProtobufCMessage *request,
    const zrpc_call_opts *opts, zrpc_reply_invoke_fn invoke, void (*cb)(void),
    void *arg)
{
	ProtobufCMessage *message;
	zrpc_status       status;

	status = codegen_fake_call(client, method, request, opts, &message);
	invoke(cb, arg, &status, message);
	return zrpc_status_ok();
}

zrpc_status
__wrap_zrpc_server_register(zrpc_server *server,
    const struct zrpc_service_desc      *desc,
    const struct zrpc_method_binding *bindings, void *ctx)
{
	cr_assert_leq(desc->n_methods, CODEGEN_MAX_BINDINGS);
	codegen_fake.calls++;
	codegen_fake.desc          = desc;
	codegen_fake.ctx           = ctx;
	codegen_fake.bindings_null = bindings == NULL;
	if (bindings != NULL) {
		memcpy(codegen_fake.bindings, bindings,
		    desc->n_methods * sizeof(bindings[0]));
	}
	return zrpc_status_ok();
}

/* ---- typed handlers and callbacks ---- */

/* A fake call handle: handlers only pass it on. */
static char codegen_call_storage;
#define CODEGEN_CALL ((zrpc_call *) (void *) &codegen_call_storage)

static zrpc_status
codegen_echo_say(zrpc_call *call, const Zrpctest__V1__Text *request,
    Zrpctest__V1__Text *reply)
{
	codegen_seen.calls++;
	codegen_seen.call    = call;
	codegen_seen.request = request;
	codegen_seen.reply   = reply;
	return zrpc_status_make(ZRPC_NOT_FOUND, "from say");
}

static zrpc_status
codegen_echo_fetch(zrpc_call             *call,
    const Zrpctest__OtherPkg__V2__Thing2 *request, Zt__Renamed__Ping *reply)
{
	codegen_seen.calls++;
	codegen_seen.call    = call;
	codegen_seen.request = request;
	codegen_seen.reply   = reply;
	reply->seq           = 42;
	return zrpc_status_ok();
}

static zrpc_status
codegen_keywords_default(zrpc_call *call, const Zrpctest__V1__Empty *request,
    Zrpctest__V1__Outer__Inner *reply)
{
	codegen_seen.calls++;
	codegen_seen.call    = call;
	codegen_seen.request = request;
	codegen_seen.reply   = reply;
	return zrpc_status_ok();
}

static void
codegen_on_nest(
    void *arg, const zrpc_status *status, Zrpctest__V1__Outer__Inner *reply)
{
	codegen_seen.calls++;
	codegen_seen.arg     = arg;
	codegen_seen.code    = status->code;
	codegen_seen.message = (const ProtobufCMessage *) reply;
	if (reply != NULL) {
		protobuf_c_message_free_unpacked(&reply->base, NULL);
	}
}

/* ---- compile-time checks of the generated API ---- */

#define CODEGEN_SAME_TYPE(expr, type) \
	__builtin_types_compatible_p(__typeof__(expr), type)

_Static_assert(CODEGEN_SAME_TYPE(&zrpctest_v1_echo_nest,
                   zrpc_status (*)(zrpc_client *, const Zrpctest__V1__Empty *,
                       Zrpctest__V1__Outer__Inner **, const zrpc_call_opts *)),
    "blocking stub takes the typed request and reply");
_Static_assert(
    CODEGEN_SAME_TYPE(&zrpctest_v1_echo_dive_async,
        zrpc_status (*)(zrpc_client *,
            const Zrpctest__V1__Outer__Inner__Deep *, const zrpc_call_opts *,
            zrpctest_v1_echo_dive_cb, void *)),
    "asynchronous stub takes the typed request and callback");
_Static_assert(
    CODEGEN_SAME_TYPE((zrpctest_v1_echo_dive_cb) NULL,
        void (*)(void *, const zrpc_status *, Zrpctest__V1__Empty *)),
    "callback gets the typed reply");
_Static_assert(
    CODEGEN_SAME_TYPE((zrpctest_v1_echo_fetch_fn) NULL,
        zrpc_status (*)(zrpc_call *, const Zrpctest__OtherPkg__V2__Thing2 *,
            Zt__Renamed__Ping *)),
    "handler uses protoc-c's names across packages and c_package");
_Static_assert(
    CODEGEN_SAME_TYPE(&zrpctest_v1_echo_get_http_status,
        zrpc_status (*)(zrpc_client *, const Zrpctest__V1__HTTPRequest *,
            Zrpctest__V1__SnakeCaseReply **, const zrpc_call_opts *)),
    "acronyms and snake_case message names");
_Static_assert(CODEGEN_SAME_TYPE(&plain_ping,
                   zrpc_status (*)(zrpc_client *, const PingRequest *,
                       PingReply **, const zrpc_call_opts *)),
    "a file without a package");
_Static_assert(
    CODEGEN_SAME_TYPE(&zrpctest_v1_http_server_register,
        zrpc_status (*)(zrpc_server *,
            const struct zrpctest_v1_http_server_handlers *, void *)),
    "register takes the service's handler table");

/* ---- service descriptions ---- */

Test(codegen, service_descriptions_name_services_and_methods)
{
	static const char *const echo[][2] = {
		{ "Say", "/zrpctest.v1.Echo/Say" },
		{ "Nest", "/zrpctest.v1.Echo/Nest" },
		{ "Dive", "/zrpctest.v1.Echo/Dive" },
		{ "GetHTTPStatus", "/zrpctest.v1.Echo/GetHTTPStatus" },
		{ "Fetch", "/zrpctest.v1.Echo/Fetch" },
		{ "Local", "/zrpctest.v1.Echo/Local" },
	};
	const struct zrpc_service_desc *desc = &zrpctest_v1_echo_service;

	cr_assert_str_eq(desc->name, "zrpctest.v1.Echo");
	cr_assert_eq(desc->n_methods, 6);
	cr_assert_eq(desc->methods, zrpctest_v1_echo_methods);
	for (size_t i = 0; i < desc->n_methods; i++) {
		cr_assert_str_eq(desc->methods[i].name, echo[i][0]);
		cr_assert_str_eq(desc->methods[i].path, echo[i][1]);
	}

	cr_assert_str_eq(
	    zrpctest_v1_http_server_service.name, "zrpctest.v1.HTTPServer");
	cr_assert_eq(zrpctest_v1_http_server_service.n_methods, 2);
	cr_assert_str_eq(zrpctest_v1_http_server_methods[1].path,
	    "/zrpctest.v1.HTTPServer/GetV2Thing");

	cr_assert_str_eq(plain_service.name, "Plain");
	cr_assert_str_eq(plain_methods[0].path, "/Plain/Ping");

	cr_assert_str_eq(
	    zrpctest_cpkg_pinger_service.name, "zrpctest.cpkg.Pinger");
	cr_assert_str_eq(zrpctest_v1_keywords_methods[0].path,
	    "/zrpctest.v1.Keywords/Default");
}

Test(codegen, service_without_methods_has_an_empty_table)
{
	cr_assert_str_eq(zrpctest_v1_idle_service.name, "zrpctest.v1.Idle");
	cr_assert_eq(zrpctest_v1_idle_service.n_methods, 0);
	cr_assert_null(zrpctest_v1_idle_service.methods);
}

/* Checks that METHOD's input and output are the messages named so. */
static void
codegen_assert_types(const struct zrpc_method *method,
    const ProtobufCMessageDescriptor *input, const char *input_name,
    const ProtobufCMessageDescriptor *output, const char *output_name)
{
	cr_assert_eq(method->input, input, "%s input", method->path);
	cr_assert_eq(method->output, output, "%s output", method->path);
	cr_assert_str_eq(method->input->name, input_name);
	cr_assert_str_eq(method->output->name, output_name);
}

Test(codegen, method_tables_point_at_protobuf_c_descriptors)
{
	codegen_assert_types(&zrpctest_v1_echo_say_method,
	    &zrpctest__v1__text__descriptor, "zrpctest.v1.Text",
	    &zrpctest__v1__text__descriptor, "zrpctest.v1.Text");
	codegen_assert_types(&zrpctest_v1_echo_nest_method,
	    &zrpctest__v1__empty__descriptor, "zrpctest.v1.Empty",
	    &zrpctest__v1__outer__inner__descriptor,
	    "zrpctest.v1.Outer.Inner");
	codegen_assert_types(&zrpctest_v1_echo_dive_method,
	    &zrpctest__v1__outer__inner__deep__descriptor,
	    "zrpctest.v1.Outer.Inner.Deep", &zrpctest__v1__empty__descriptor,
	    "zrpctest.v1.Empty");
	codegen_assert_types(&zrpctest_v1_echo_get_http_status_method,
	    &zrpctest__v1__httprequest__descriptor, "zrpctest.v1.HTTPRequest",
	    &zrpctest__v1__snake_case_reply__descriptor,
	    "zrpctest.v1.snake_case_reply");
	codegen_assert_types(&zrpctest_v1_echo_fetch_method,
	    &zrpctest__other_pkg__v2__thing_2__descriptor,
	    "zrpctest.other_pkg.v2.Thing_2", &zt__renamed__ping__descriptor,
	    "zrpctest.cpkg.Ping");
	codegen_assert_types(&zrpctest_v1_echo_local_method,
	    &zrpctest__v1__local_request__descriptor,
	    "zrpctest.v1.LocalRequest", &zrpctest__v1__text__descriptor,
	    "zrpctest.v1.Text");
	codegen_assert_types(&plain_ping_method, &ping_request__descriptor,
	    "PingRequest", &ping_reply__descriptor, "PingReply");
	codegen_assert_types(&zrpctest_cpkg_pinger_bounce_method,
	    &zt__renamed__ping__descriptor, "zrpctest.cpkg.Ping",
	    &zt__renamed__ping__descriptor, "zrpctest.cpkg.Ping");
}

Test(codegen, method_names_are_the_table_entries)
{
	cr_assert_eq(
	    &zrpctest_v1_echo_say_method, &zrpctest_v1_echo_methods[0]);
	cr_assert_eq(
	    &zrpctest_v1_echo_local_method, &zrpctest_v1_echo_methods[5]);
	cr_assert_eq(&zrpctest_v1_keywords_errno_method,
	    &zrpctest_v1_keywords_methods[4]);
}

/* ---- client stubs ---- */

Test(codegen, role_options_are_in_the_method_table)
{
	const struct zrpc_method *m = zrpctest_v1_vault_methods;

	cr_assert_eq(zrpctest_v1_vault_service.n_methods, 5);
	cr_assert_str_eq(m[0].name, "Peek");
	cr_assert_eq(m[0].role, ZRPC_ROLE_NONE, "no option: open");
	cr_assert_eq(m[1].role, ZRPC_ROLE_READ);
	cr_assert_eq(m[2].role, ZRPC_ROLE_WRITE);
	cr_assert_eq(m[3].role, ZRPC_ROLE_WRITE, "next to deprecated");
	cr_assert_eq(m[4].role, ZRPC_ROLE_ADMIN);
	cr_assert_eq(&zrpctest_v1_vault_seal_method, &m[4]);
}

Test(codegen, methods_without_the_option_are_open)
{
	for (size_t i = 0; i < zrpctest_v1_echo_service.n_methods; i++) {
		cr_assert_eq(zrpctest_v1_echo_service.methods[i].role,
		    ZRPC_ROLE_NONE, "%s",
		    zrpctest_v1_echo_service.methods[i].path);
	}
}

Test(codegen, blocking_stub_passes_method_request_and_typed_reply)
{
	Zrpctest__V1__Empty         request = ZRPCTEST__V1__EMPTY__INIT;
	Zrpctest__V1__Outer__Inner *reply   = NULL;
	zrpc_call_opts              opts    = { .timeout_ms = 5 };
	zrpc_client                *client  = (zrpc_client *) (void *) &opts;
	zrpc_status                 status;

	status = zrpctest_v1_echo_nest(client, &request, &reply, &opts);
	cr_assert_eq(status.code, ZRPC_OK);
	cr_assert_eq(codegen_fake.calls, 1);
	cr_assert_eq(codegen_fake.client, client);
	cr_assert_eq(codegen_fake.method, &zrpctest_v1_echo_nest_method);
	cr_assert_eq(codegen_fake.request, &request.base);
	cr_assert_eq(codegen_fake.opts, &opts);
	cr_assert_not_null(reply);
	cr_assert_eq(
	    reply->base.descriptor, &zrpctest__v1__outer__inner__descriptor);
	protobuf_c_message_free_unpacked(&reply->base, NULL);
}

Test(codegen, blocking_stub_returns_the_runtime_status)
{
	Zrpctest__V1__Text  request = ZRPCTEST__V1__TEXT__INIT;
	Zrpctest__V1__Text *reply   = &request; /* must be overwritten */
	zrpc_status         status;

	codegen_fake.answer = ZRPC_UNAVAILABLE;
	status = zrpctest_v1_echo_say(NULL, &request, &reply, NULL);
	cr_assert_eq(status.code, ZRPC_UNAVAILABLE);
	cr_assert_str_eq(status.message, "fake failure");
	cr_assert_null(reply);
}

Test(codegen, blocking_stub_hands_a_null_reply_pointer_to_the_runtime)
{
	Zrpctest__V1__Text request = ZRPCTEST__V1__TEXT__INIT;
	zrpc_status        status;

	status = zrpctest_v1_echo_say(NULL, &request, NULL, NULL);
	cr_assert_eq(status.code, ZRPC_INVALID_ARGUMENT);
	cr_assert_eq(codegen_fake.calls, 1);
}

Test(codegen, async_stub_calls_the_typed_callback)
{
	Zrpctest__V1__Empty request = ZRPCTEST__V1__EMPTY__INIT;
	int                 arg;
	zrpc_status         status;

	status = zrpctest_v1_echo_nest_async(
	    NULL, &request, NULL, codegen_on_nest, &arg);
	cr_assert_eq(status.code, ZRPC_OK);
	cr_assert_eq(codegen_fake.method, &zrpctest_v1_echo_nest_method);
	cr_assert_eq(codegen_fake.request, &request.base);
	cr_assert_eq(codegen_seen.calls, 1);
	cr_assert_eq(codegen_seen.arg, &arg);
	cr_assert_eq(codegen_seen.code, ZRPC_OK);
	cr_assert_not_null(codegen_seen.message);
}

Test(codegen, async_stub_reports_a_failed_call_to_the_callback)
{
	Zrpctest__V1__Empty request = ZRPCTEST__V1__EMPTY__INIT;
	zrpc_status         status;

	codegen_fake.answer = ZRPC_DEADLINE_EXCEEDED;
	status              = zrpctest_v1_echo_nest_async(
	                 NULL, &request, NULL, codegen_on_nest, NULL);
	cr_assert_eq(status.code, ZRPC_OK);
	cr_assert_eq(codegen_seen.calls, 1);
	cr_assert_eq(codegen_seen.code, ZRPC_DEADLINE_EXCEEDED);
	cr_assert_null(codegen_seen.message);
}

Test(codegen, async_stub_refuses_a_null_callback)
{
	Zrpctest__V1__Empty request = ZRPCTEST__V1__EMPTY__INIT;
	zrpc_status         status;

	status = zrpctest_v1_echo_nest_async(NULL, &request, NULL, NULL, NULL);
	cr_assert_eq(status.code, ZRPC_INVALID_ARGUMENT);
	cr_assert(strstr(status.message, "/zrpctest.v1.Echo/Nest") != NULL);
	cr_assert_eq(codegen_fake.calls, 0);
}

/* ---- server bindings ---- */

Test(codegen, register_binds_typed_handlers_in_method_order)
{
	struct zrpctest_v1_echo_handlers handlers = {
		.say            = codegen_echo_say,
		.say_blocking   = true,
		.fetch          = codegen_echo_fetch,
		.fetch_blocking = false,
	};
	Zrpctest__OtherPkg__V2__Thing2 thing =
	    ZRPCTEST__OTHER_PKG__V2__THING_2__INIT;
	Zt__Renamed__Ping           ping = ZT__RENAMED__PING__INIT;
	Zrpctest__V1__Text          text = ZRPCTEST__V1__TEXT__INIT;
	Zrpctest__V1__Text          said = ZRPCTEST__V1__TEXT__INIT;
	struct zrpc_method_binding *b    = codegen_fake.bindings;
	int                         ctx;
	zrpc_status                 status;

	status = zrpctest_v1_echo_register(NULL, &handlers, &ctx);
	cr_assert_eq(status.code, ZRPC_OK);
	cr_assert_eq(codegen_fake.desc, &zrpctest_v1_echo_service);
	cr_assert_eq(codegen_fake.ctx, &ctx);
	cr_assert_not(codegen_fake.bindings_null);

	/* Say is bound first, blocking; unset handlers are NULL. */
	cr_assert_not_null(b[0].invoke);
	cr_assert_not_null(b[0].fn);
	cr_assert(b[0].blocking);
	for (size_t i = 1; i < 4; i++) {
		cr_assert_null(b[i].fn, "method %zu", i);
		cr_assert_not_null(b[i].invoke, "method %zu", i);
		cr_assert_not(b[i].blocking, "method %zu", i);
	}
	cr_assert_not(b[4].blocking);
	cr_assert_null(b[5].fn);

	/* The trampolines call the typed handlers with the typed messages. */
	status = b[0].invoke(b[0].fn, CODEGEN_CALL,
	    (const ProtobufCMessage *) &text, (ProtobufCMessage *) &said);
	cr_assert_eq(status.code, ZRPC_NOT_FOUND);
	cr_assert_str_eq(status.message, "from say");
	cr_assert_eq(codegen_seen.call, CODEGEN_CALL);
	cr_assert_eq(codegen_seen.request, &text);
	cr_assert_eq(codegen_seen.reply, &said);

	status = b[4].invoke(b[4].fn, CODEGEN_CALL,
	    (const ProtobufCMessage *) &thing, (ProtobufCMessage *) &ping);
	cr_assert_eq(status.code, ZRPC_OK);
	cr_assert_eq(codegen_seen.calls, 2);
	cr_assert_eq(codegen_seen.request, &thing);
	cr_assert_eq(ping.seq, 42);
}

Test(codegen, register_refuses_null_handlers)
{
	zrpc_status status = zrpctest_v1_echo_register(NULL, NULL, NULL);

	cr_assert_eq(status.code, ZRPC_INVALID_ARGUMENT);
	cr_assert(strstr(status.message, "zrpctest.v1.Echo") != NULL);
	cr_assert_eq(codegen_fake.calls, 0);
}

Test(codegen, register_of_a_service_without_methods_binds_nothing)
{
	struct zrpctest_v1_idle_handlers handlers = { 0 };
	zrpc_status status = zrpctest_v1_idle_register(NULL, &handlers, NULL);

	cr_assert_eq(status.code, ZRPC_OK);
	cr_assert_eq(codegen_fake.desc, &zrpctest_v1_idle_service);
	cr_assert(codegen_fake.bindings_null);
}

/* ---- C keywords and macros as method names ---- */

Test(codegen, keyword_methods_get_fields_with_an_underscore)
{
	struct zrpctest_v1_keywords_handlers handlers = {
		.default_         = codegen_keywords_default,
		.default_blocking = true,
		.switch_          = NULL,
		.bool_            = NULL,
		.linux_           = NULL,
		.errno_           = NULL,
		.errno_blocking   = true,
	};
	Zrpctest__V1__Empty         empty = ZRPCTEST__V1__EMPTY__INIT;
	Zrpctest__V1__Outer__Inner  inner = ZRPCTEST__V1__OUTER__INNER__INIT;
	struct zrpc_method_binding *b     = codegen_fake.bindings;
	zrpc_status                 status;

	status = zrpctest_v1_keywords_register(NULL, &handlers, NULL);
	cr_assert_eq(status.code, ZRPC_OK);
	cr_assert(b[0].blocking);
	cr_assert_not(b[1].blocking);
	cr_assert(b[4].blocking);
	status = b[0].invoke(b[0].fn, CODEGEN_CALL,
	    (const ProtobufCMessage *) &empty, (ProtobufCMessage *) &inner);
	cr_assert_eq(status.code, ZRPC_OK);
	cr_assert_eq(codegen_seen.request, &empty);
	cr_assert_eq(codegen_seen.reply, &inner);
}

Test(codegen, keyword_header_restores_the_macros_it_hides)
{
	bool flag = true; /* <stdbool.h>'s bool */

	errno = ERANGE; /* <errno.h>'s errno */
	cr_assert_eq(errno, ERANGE);
	cr_assert(flag);
#ifdef __GNUC__
	cr_assert_eq(linux, 1); /* gcc's and clang's in GNU C */
#endif
}

/* ---- protoc runs ---- */

/* The outcome of one protoc run. */
struct codegen_run {
	int  status;       /* exit status, 128 + signal when killed */
	char dir[64];      /* the --zrpc_out directory */
	char errors[8192]; /* protoc's stderr, truncated */
};

/* The value of the environment variable NAME, which meson sets. */
static const char *
codegen_env(const char *name)
{
	const char *value = getenv(name);

	cr_assert_not_null(
	    value, "%s is not set (run through meson test)", name);
	return value;
}

/* Runs protoc with the plugin on PROTO into a new directory. */
static void
codegen_protoc(
    struct codegen_run *run, const char *parameter, const char *proto)
{
	const char *protoc = codegen_env("ZRPC_CODEGEN_PROTOC");
	char        plugin[4096];
	char        out[4096];
	char        proto_path[4096];
	char        system_path[4096];
	char        zrpc_path[4096];
	char *const argv[] = { (char *) protoc, plugin, out, proto_path,
		system_path, zrpc_path, (char *) proto, NULL };
	int         pipe_fds[2];
	pid_t       pid;
	int         wstatus;
	size_t      used = 0;

	memset(run, 0, sizeof(*run));
	snprintf(run->dir, sizeof(run->dir), "%s", "/tmp/zrpc-codegen.XXXXXX");
	cr_assert_not_null(mkdtemp(run->dir));
	snprintf(plugin, sizeof(plugin), "--plugin=protoc-gen-zrpc=%s",
	    codegen_env("ZRPC_CODEGEN_PLUGIN"));
	snprintf(out, sizeof(out), "--zrpc_out=%s%s%s",
	    parameter != NULL ? parameter : "", parameter != NULL ? ":" : "",
	    run->dir);
	snprintf(proto_path, sizeof(proto_path), "--proto_path=%s",
	    codegen_env("ZRPC_CODEGEN_PROTO_DIR"));
	snprintf(system_path, sizeof(system_path), "--proto_path=%s",
	    codegen_env("ZRPC_CODEGEN_SYSTEM_PROTO_DIR"));
	snprintf(zrpc_path, sizeof(zrpc_path), "--proto_path=%s",
	    codegen_env("ZRPC_CODEGEN_ZRPC_PROTO_DIR"));

	cr_assert_eq(pipe(pipe_fds), 0);
	pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		int null_fd = open("/dev/null", O_WRONLY);

		dup2(pipe_fds[1], STDERR_FILENO);
		dup2(null_fd, STDOUT_FILENO);
		close(pipe_fds[0]);
		close(pipe_fds[1]);
		execv(protoc, argv);
		_exit(127);
	}
	close(pipe_fds[1]);
	for (;;) {
		char    chunk[512];
		ssize_t n = read(pipe_fds[0], chunk, sizeof(chunk));

		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n <= 0) {
			break;
		}
		if (used < sizeof(run->errors) - 1) {
			size_t room = sizeof(run->errors) - 1 - used;
			size_t take = (size_t) n < room ? (size_t) n : room;

			memcpy(run->errors + used, chunk, take);
			used += take;
		}
	}
	close(pipe_fds[0]);
	cr_assert_eq(waitpid(pid, &wstatus, 0), pid);
	run->status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus)
	                                 : 128 + WTERMSIG(wstatus);
}

/* Removes RUN's output directory and everything in it. */
static void
codegen_cleanup(const struct codegen_run *run)
{
	cr_assert_eq(test_tmpdir_remove(run->dir), 0);
}

/* Asserts that PROTO fails and that stderr names each of NAMES. */
static void
codegen_assert_rejected(const char *proto, const char *const *names)
{
	struct codegen_run run;

	codegen_protoc(&run, NULL, proto);
	cr_assert_neq(run.status, 0, "protoc accepted %s", proto);
	cr_assert_neq(run.status, 127, "could not run protoc");
	for (const char *const *name = names; *name != NULL; name++) {
		cr_assert(strstr(run.errors, *name) != NULL,
		    "stderr lacks \"%s\":\n%s", *name, run.errors);
	}
	/* A failed run writes nothing. */
	cr_assert_eq(rmdir(run.dir), 0, "%s is not empty", run.dir);
}

Test(codegen, client_streaming_method_is_rejected)
{
	static const char *const names[] = { "zrpctest.v1.Chat.Upload",
		"is streaming", "unary methods only", NULL };

	codegen_assert_rejected("zrpctest/v1/streaming.proto", names);
}

Test(codegen, server_streaming_method_is_rejected)
{
	static const char *const names[] = { "zrpctest.v1.Feed.Watch",
		"is streaming", NULL };

	codegen_assert_rejected("zrpctest/v1/server_streaming.proto", names);
}

Test(codegen, method_named_like_the_register_function_is_rejected)
{
	static const char *const names[] = { "zrpctest.v1.Skills.Register",
		"zrpctest_v1_skills_register", "register function", NULL };

	codegen_assert_rejected("zrpctest/v1/collision_register.proto", names);
}

Test(codegen, methods_with_one_snake_case_name_are_rejected)
{
	static const char *const names[] = { "zrpctest.v1.Names.GetThing",
		"zrpctest.v1.Names.Get_Thing", "zrpctest_v1_names_get_thing",
		NULL };

	codegen_assert_rejected("zrpctest/v1/collision_snake.proto", names);
}

Test(codegen, method_named_like_an_async_stub_is_rejected)
{
	static const char *const names[] = { "zrpctest.v1.Jobs.RunAsync",
		"zrpctest_v1_jobs_run_async", NULL };

	codegen_assert_rejected("zrpctest/v1/collision_async.proto", names);
}

Test(codegen, methods_of_two_services_with_one_name_are_rejected)
{
	static const char *const names[] = { "zrpctest.v1.Foo.BarBaz",
		"zrpctest.v1.FooBar.Baz", "zrpctest_v1_foo_bar_baz", NULL };

	codegen_assert_rejected("zrpctest/v1/collision_services.proto", names);
}

Test(codegen, methods_with_one_handler_field_are_rejected)
{
	static const char *const names[] = { "zrpctest.v1.Settings.Default_",
		"handler field", NULL };

	codegen_assert_rejected("zrpctest/v1/collision_field.proto", names);
}

Test(codegen, names_in_the_runtime_namespace_are_rejected)
{
	static const char *const names[] = { "zrpc.Client.Call",
		"zrpc_client_", NULL };

	codegen_assert_rejected("zrpc/runtime_namespace.proto", names);
}

Test(codegen, names_of_the_embedded_descriptors_are_reserved)
{
	static const char *const names[] = { "zrpc.File", "zrpc_file_", NULL };

	codegen_assert_rejected("zrpc/file_namespace.proto", names);
}

Test(codegen, a_role_that_is_not_read_write_or_admin_is_rejected)
{
	static const char *const names[] = { "zrpctest.v1.Locks.Open",
		"zrpc.v1.role", "\"root\"", "read", NULL };

	codegen_assert_rejected("zrpctest/v1/bad_role.proto", names);
}

Test(codegen, plugin_options_are_rejected)
{
	static const char *const names[] = { "takes no options", NULL };
	struct codegen_run       run;

	codegen_protoc(&run, "verbose", "zrpctest/v1/services.proto");
	cr_assert_neq(run.status, 0);
	cr_assert(strstr(run.errors, names[0]) != NULL, "%s", run.errors);
	codegen_cleanup(&run);
}

Test(codegen, file_without_services_generates_nothing)
{
	struct codegen_run run;

	codegen_protoc(&run, NULL, "zrpctest/v1/common.proto");
	cr_assert_eq(run.status, 0, "%s", run.errors);
	cr_assert_eq(rmdir(run.dir), 0, "%s is not empty", run.dir);
}

Test(codegen, proto3_optional_fields_are_accepted)
{
	struct codegen_run run;
	char               file[256];

	codegen_protoc(&run, NULL, "zrpctest/v1/proto3_optional.proto");
	cr_assert_eq(run.status, 0, "%s", run.errors);
	snprintf(file, sizeof(file), "%s/zrpctest/v1/proto3_optional.zrpc.h",
	    run.dir);
	cr_assert_eq(access(file, R_OK), 0, "%s is missing", file);
	snprintf(file, sizeof(file), "%s/zrpctest/v1/proto3_optional.zrpc.c",
	    run.dir);
	cr_assert_eq(access(file, R_OK), 0, "%s is missing", file);
	codegen_cleanup(&run);
}

/* Reads the file at PATH into BUF (NUL-terminated, truncated to fit). */
static void
codegen_read(const char *path, char *buf, size_t size)
{
	FILE  *f = fopen(path, "r");
	size_t n;

	cr_assert_not_null(f, "cannot open %s", path);
	n      = fread(buf, 1, size - 1, f);
	buf[n] = '\0';
	cr_assert_eq(ferror(f), 0, "cannot read %s", path);
	fclose(f);
}

Test(codegen, header_includes_the_client_api_and_not_the_server_runtime)
{
	struct codegen_run run;
	char               file[256];
	static char        text[1 << 16];

	codegen_protoc(&run, NULL, "zrpctest/v1/services.proto");
	cr_assert_eq(run.status, 0, "%s", run.errors);

	snprintf(
	    file, sizeof(file), "%s/zrpctest/v1/services.zrpc.h", run.dir);
	codegen_read(file, text, sizeof(text));
	cr_assert(strstr(text, "#include \"zrpc/client.h\"") != NULL,
	    "the header lacks zrpc/client.h");
	cr_assert(strstr(text, "#include \"zrpc/service.h\"") != NULL,
	    "the header lacks zrpc/service.h");
	cr_assert(strstr(text, "zrpc/server.h") == NULL,
	    "the header includes zrpc/server.h");
	cr_assert(strstr(text, "extern \"C\" {") != NULL,
	    "the header's declarations are not extern \"C\"");

	/* The source registers with the server: it includes it itself. */
	snprintf(
	    file, sizeof(file), "%s/zrpctest/v1/services.zrpc.c", run.dir);
	codegen_read(file, text, sizeof(text));
	cr_assert(strstr(text, "#include \"zrpc/server.h\"") != NULL,
	    "the source lacks zrpc/server.h");
	codegen_cleanup(&run);
}

Test(codegen, the_header_says_which_role_a_method_needs)
{
	struct codegen_run run;
	char               file[256];
	char               text[16384];
	FILE              *f;
	size_t             n;

	codegen_protoc(&run, NULL, "zrpctest/v1/roles.proto");
	cr_assert_eq(run.status, 0, "%s", run.errors);
	snprintf(file, sizeof(file), "%s/zrpctest/v1/roles.zrpc.h", run.dir);
	cr_assert_not_null(f = fopen(file, "r"), "%s", file);
	n       = fread(text, 1, sizeof(text) - 1, f);
	text[n] = '\0';
	fclose(f);
	/* The comment wraps at 80 columns: look for both halves. */
	cr_assert(
	    strstr(text, "/zrpctest.v1.Vault/Seal; the caller needs") != NULL,
	    "%s", text);
	cr_assert(strstr(text, " * role admin.") != NULL, "%s", text);
	cr_assert(strstr(text, "called as /zrpctest.v1.Vault/Peek.") != NULL,
	    "an open method says nothing:\n%s", text);
	codegen_cleanup(&run);
}
