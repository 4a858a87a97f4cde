/* zosd's command line. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "options.h"

/* Parses a NULL-terminated argument list; captures both streams. */
static enum zos_options_result
parse(struct zos_options *opts, char *out, char *err, const char **args)
{
	char                   *argv[32];
	int                     argc = 0;
	FILE                   *o    = fmemopen(out, 4096, "w");
	FILE                   *e    = fmemopen(err, 4096, "w");
	enum zos_options_result r;

	argv[argc++] = "zosd";
	for (; *args != NULL; args++) {
		argv[argc++] = (char *) *args;
	}
	argv[argc] = NULL;
	memset(out, 0, 4096);
	memset(err, 0, 4096);
	r = zos_options_parse(opts, argc, argv, o, e, false);
	fclose(o);
	fclose(e);
	return r;
}

static char out[4096], err[4096];

Test(options, defaults_follow_the_design)
{
	struct zos_options o;
	const char        *args[] = { NULL };

	cr_assert_eq(parse(&o, out, err, args), ZOS_OPTIONS_OK);
	cr_assert_eq(o.n_listen, 1);
	cr_assert_str_eq(o.listen[0], "tcp://127.0.0.1:7447");
	cr_assert_eq(o.workers, 0, "0 means 2 x cores");
	cr_assert_eq(o.max_inflight, 1024);
	cr_assert_eq(o.max_message_bytes, 4u * 1024 * 1024);
	cr_assert_eq(o.shutdown_grace_ms, 5000);
	cr_assert_eq(o.log_level, ZRPC_LOG_INFO);
	cr_assert_eq(o.log_format, ZOS_LOG_JSON, "json when not a tty");
	cr_assert_eq(o.cache_capacity, 200);
	cr_assert_eq(o.max_sessions, 10000);
	cr_assert_null(o.skills_file);
	cr_assert_str_eq(o.data_dir, "./zos-data");
	cr_assert_not(o.in_memory);
	cr_assert_eq(o.n_backends, 0);
	cr_assert_eq(o.backend_timeout_ms, 30000);
	cr_assert_eq(o.echo_delay_ms, 0);
	cr_assert(o.echo_fail_rate == 0.0);
	cr_assert_str_eq(o.metrics_listen, "http://127.0.0.1:9447/metrics");
	cr_assert_not(o.metrics_off);
}

Test(options, persistence_and_backend_flags_are_read_and_checked)
{
	struct zos_options o;
	const char *args[]     = { "--data-dir", "/var/lib/zos", "--backend",
		    "hint=ipc:///tmp/m.sock", "--backend",
		    "grading=tcp://127.0.0.1:7500", "--backend-timeout-ms", "250",
		    "--echo-delay-ms", "20", "--echo-fail-rate", "0.25", NULL };
	const char *both[]     = { "--data-dir", "/d", "--in-memory", NULL };
	const char *cases[][3] = {
		{ "--backend", "hint", NULL },
		{ "--backend", "=tcp://127.0.0.1:1", NULL },
		{ "--backend", "hint=", NULL },
		{ "--backend", "hint=not-a-url", NULL },
		{ "--echo-fail-rate", "1.5", NULL },
		{ "--echo-fail-rate", "nan", NULL },
		{ "--echo-fail-rate", "-0.1", NULL },
		{ "--backend-timeout-ms", "0", NULL },
		{ "--data-dir", "", NULL },
	};
	const char *twice[] = { "--backend", "hint=ipc:///a", "--backend",
		"hint=ipc:///b", NULL };

	cr_assert_eq(parse(&o, out, err, args), ZOS_OPTIONS_OK, "%s", err);
	cr_assert_str_eq(o.data_dir, "/var/lib/zos");
	cr_assert_eq(o.n_backends, 2);
	cr_assert_str_eq(o.backends[0].task, "hint");
	cr_assert_str_eq(o.backends[0].url, "ipc:///tmp/m.sock");
	cr_assert_str_eq(o.backends[1].task, "grading");
	cr_assert_eq(o.backend_timeout_ms, 250);
	cr_assert_eq(o.echo_delay_ms, 20);
	cr_assert(o.echo_fail_rate == 0.25);

	cr_assert_eq(parse(&o, out, err, both), ZOS_OPTIONS_USAGE);
	cr_assert(strstr(err, "exclude") != NULL, "%s", err);
	cr_assert_eq(parse(&o, out, err, twice), ZOS_OPTIONS_USAGE);
	cr_assert(strstr(err, "twice") != NULL, "%s", err);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cr_assert_eq(parse(&o, out, err, cases[i]), ZOS_OPTIONS_USAGE,
		    "%s %s", cases[i][0], cases[i][1]);
		cr_assert(strstr(err, cases[i][0]) != NULL, "%s", err);
	}
}

Test(options, every_flag_is_read)
{
	struct zos_options o;
	const char        *args[] = { "--listen", "ipc:///tmp/a", "--listen",
		       "inproc://b", "--workers", "3", "--max-inflight", "7",
		       "--max-message-bytes", "65536", "--shutdown-grace-ms", "0",
		       "--log-level", "debug", "--log-format", "text", "--in-memory",
		       "--metrics-listen", "off", NULL };

	cr_assert_eq(parse(&o, out, err, args), ZOS_OPTIONS_OK, "%s", err);
	cr_assert_eq(o.n_listen, 2);
	cr_assert_str_eq(o.listen[1], "inproc://b");
	cr_assert_eq(o.workers, 3);
	cr_assert_eq(o.max_inflight, 7);
	cr_assert_eq(o.max_message_bytes, 65536);
	cr_assert_eq(o.shutdown_grace_ms, 0);
	cr_assert_eq(o.log_level, ZRPC_LOG_DEBUG);
	cr_assert_eq(o.log_format, ZOS_LOG_TEXT);
	cr_assert(o.in_memory);
	cr_assert(o.metrics_off);
}

Test(options, state_flags_are_read_and_checked)
{
	struct zos_options o;
	const char *args[] = { "--cache-capacity", "16", "--max-sessions", "5",
		"--skills-file", "/tmp/s", "--routing-file", "/tmp/r", NULL };
	const char *bad[]  = { "--cache-capacity", "0", NULL };

	cr_assert_eq(parse(&o, out, err, args), ZOS_OPTIONS_OK, "%s", err);
	cr_assert_eq(o.cache_capacity, 16);
	cr_assert_eq(o.max_sessions, 5);
	cr_assert_str_eq(o.skills_file, "/tmp/s");
	cr_assert_str_eq(o.routing_file, "/tmp/r");
	cr_assert_eq(parse(&o, out, err, bad), ZOS_OPTIONS_USAGE);
	cr_assert(strstr(err, "--cache-capacity") != NULL, "%s", err);
}

Test(options, metrics_listen_takes_an_http_url_with_host_port_and_path)
{
	struct zos_options o;
	const char        *good[] = { "http://127.0.0.1:9447/metrics",
		       "http://localhost:0/m", "http://[::1]:9447/metrics",
		       "http://0.0.0.0:80/", "http://zos.example:65535/a/b" };

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		/* A token, which the last two need (see below). */
		const char *args[] = { "--metrics-listen", good[i],
			"--metrics-token", "/run/zos/metrics.token", NULL };
		cr_assert_eq(
		    parse(&o, out, err, args), ZOS_OPTIONS_OK, "%s", err);
		cr_assert_str_eq(o.metrics_listen, good[i]);
		cr_assert_str_eq(
		    o.metrics_token_file, "/run/zos/metrics.token");
		cr_assert_not(o.metrics_off);
	}
}

Test(
    options, a_metrics_url_off_loopback_needs_a_token_or_allow_unauthenticated)
{
	struct zos_options o;
	const char        *loopback[] = { "http://127.0.0.1:9447/metrics",
		       "http://127.9.9.9:1/m", "http://localhost:0/m",
		       "http://LOCALHOST:0/m", "http://[::1]:9447/metrics",
		       "http://[::ffff:127.0.0.1]:1/m" };
	const char        *other[] = { "http://0.0.0.0:80/", "http://[::]:1/m",
		       "http://10.0.0.1:9447/metrics", "http://zos.example:1/a",
		       "http://128.0.0.1:1/m", "http://[::2]:1/m",
		       "http://localhost.evil.example:1/m" };

	for (size_t i = 0; i < sizeof(loopback) / sizeof(loopback[0]); i++) {
		const char *args[] = { "--metrics-listen", loopback[i], NULL };

		cr_assert(zos_options_metrics_url_loopback(loopback[i]), "%s",
		    loopback[i]);
		cr_assert_eq(parse(&o, out, err, args), ZOS_OPTIONS_OK,
		    "%s: %s", loopback[i], err);
		cr_assert_null(o.metrics_token_file);
		cr_assert_not(o.allow_unauthenticated);
	}
	for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
		const char *bare[]  = { "--metrics-listen", other[i], NULL };
		const char *token[] = { "--metrics-listen", other[i],
			"--metrics-token", "t.txt", NULL };
		const char *allow[] = { "--allow-unauthenticated",
			"--metrics-listen", other[i], NULL };

		cr_assert_not(zos_options_metrics_url_loopback(other[i]), "%s",
		    other[i]);
		cr_assert_eq(parse(&o, out, err, bare), ZOS_OPTIONS_USAGE,
		    "%s", other[i]);
		cr_assert(strstr(err, "not a loopback address") != NULL &&
		        strstr(err, "--metrics-token FILE") != NULL &&
		        strstr(err, "--allow-unauthenticated") != NULL,
		    "%s", err);
		cr_assert_eq(parse(&o, out, err, token), ZOS_OPTIONS_OK,
		    "%s: %s", other[i], err);
		cr_assert_eq(parse(&o, out, err, allow), ZOS_OPTIONS_OK,
		    "%s: %s", other[i], err);
		cr_assert(o.allow_unauthenticated);
	}
	/* Off needs nothing; an empty file name is refused. */
	const char *off[]   = { "--metrics-listen", "off", NULL };
	const char *empty[] = { "--metrics-token", "", NULL };
	cr_assert_eq(parse(&o, out, err, off), ZOS_OPTIONS_OK, "%s", err);
	cr_assert_eq(parse(&o, out, err, empty), ZOS_OPTIONS_USAGE);
	cr_assert(strstr(err, "--metrics-token") != NULL, "%s", err);
}

Test(options, metrics_listen_off_turns_the_endpoint_off)
{
	struct zos_options o;
	const char        *off[] = { "--metrics-listen", "off", NULL };
	const char *last[] = { "--metrics-listen", "off", "--metrics-listen",
		"http://127.0.0.1:1/m", NULL };

	cr_assert_eq(parse(&o, out, err, off), ZOS_OPTIONS_OK, "%s", err);
	cr_assert(o.metrics_off);
	cr_assert_null(o.metrics_listen);
	cr_assert_eq(parse(&o, out, err, last), ZOS_OPTIONS_OK, "%s", err);
	cr_assert_not(o.metrics_off, "the last one counts");
	cr_assert_str_eq(o.metrics_listen, "http://127.0.0.1:1/m");
}

Test(options, metrics_listen_refuses_anything_else_and_says_why)
{
	struct zos_options o;
	const char        *bad[][2] = {
		       { "", "not an http:// URL" },
		       { "on", "not an http:// URL" },
		       { "127.0.0.1:9447/metrics", "not an http:// URL" },
		       { "tcp://127.0.0.1:9447/metrics", "not an http:// URL" },
		       { "https://127.0.0.1:9447/metrics", "https" },
		       { "http://127.0.0.1/metrics", "no port" },
		       { "http://127.0.0.1:9447", "no path" },
		       { "http://:9447/metrics", "no host" },
		       { "http://127.0.0.1:/metrics", "bad port" },
		       { "http://127.0.0.1:65536/metrics", "0 to 65535" },
		       { "http://127.0.0.1:94x7/metrics", "0 to 65535" },
		       { "http://u@127.0.0.1:9447/metrics", "user" },
		       { "http://127.0.0.1:9447/metrics?x=1", "query" },
		       { "http://127.0.0.1:9447/metrics#top", "fragment" },
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *args[] = { "--metrics-listen", bad[i][0], NULL };
		cr_assert_eq(parse(&o, out, err, args), ZOS_OPTIONS_USAGE,
		    "'%s'", bad[i][0]);
		cr_assert(strstr(err,
		              "--metrics-listen wants "
		              "http://HOST:PORT/PATH or off") != NULL,
		    "%s", err);
		cr_assert(strstr(err, bad[i][1]) != NULL, "'%s': %s",
		    bad[i][0], err);
		cr_assert(strstr(err, "usage: zosd") != NULL);
	}
}

Test(options, bad_values_are_usage_errors_that_name_the_flag)
{
	struct zos_options o;
	const char        *cases[][3] = {
		       { "--workers", "0", NULL },
		       { "--workers", "lots", NULL },
		       { "--max-inflight", "-1", NULL },
		       { "--max-message-bytes", "12x", NULL },
		       { "--shutdown-grace-ms", "99999999999", NULL },
		       { "--log-level", "loud", NULL },
		       { "--log-format", "xml", NULL },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cr_assert_eq(parse(&o, out, err, cases[i]), ZOS_OPTIONS_USAGE,
		    "%s %s", cases[i][0], cases[i][1]);
		cr_assert(strstr(err, cases[i][0]) != NULL, "%s", err);
		cr_assert(strstr(err, "usage: zosd") != NULL);
	}
}

Test(options, unknown_flags_missing_values_and_stray_arguments_are_refused)
{
	struct zos_options o;
	const char        *unknown[] = { "--frobnicate", NULL };
	const char        *missing[] = { "--listen", NULL };
	const char        *stray[]   = { "serve", NULL };

	cr_assert_eq(parse(&o, out, err, unknown), ZOS_OPTIONS_USAGE);
	cr_assert(strstr(err, "--frobnicate") != NULL, "%s", err);
	cr_assert_eq(parse(&o, out, err, missing), ZOS_OPTIONS_USAGE);
	cr_assert(strstr(err, "--listen") != NULL, "%s", err);
	cr_assert_eq(parse(&o, out, err, stray), ZOS_OPTIONS_USAGE);
	cr_assert(strstr(err, "serve") != NULL, "%s", err);
}

Test(options, help_and_version_exit_zero_with_text_on_stdout)
{
	struct zos_options o;
	const char        *help[]    = { "--help", NULL };
	const char        *version[] = { "--version", NULL };

	cr_assert_eq(parse(&o, out, err, help), ZOS_OPTIONS_EXIT);
	cr_assert(strstr(out, "--max-inflight") != NULL);
	cr_assert(strstr(out, "RESOURCE_EXHAUSTED") != NULL);
	cr_assert(strstr(out, "--metrics-listen URL") != NULL, "%s", out);
	cr_assert(strstr(out, "http://127.0.0.1:9447/metrics") != NULL);
	cr_assert_eq(err[0], '\0');
	cr_assert_eq(parse(&o, out, err, version), ZOS_OPTIONS_EXIT);
	cr_assert(strncmp(out, "zosd ", 5) == 0, "%s", out);
	cr_assert(strstr(out, "nng") != NULL);
}
