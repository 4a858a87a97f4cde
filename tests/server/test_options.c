/* zosd's command line. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "node_id.h"
#include "options.h"

/* The help text outgrew 4 KiB. */
#define OPTIONS_TEXT_MAX 16384
static char out_buf[OPTIONS_TEXT_MAX], err_buf[OPTIONS_TEXT_MAX];

/* Parses a NULL-terminated argument list; captures both streams. */
static enum zos_options_result
parse(struct zos_options *opts, char *out, char *err, const char **args)
{
	char                   *argv[32];
	int                     argc = 0;
	FILE                   *o    = fmemopen(out, OPTIONS_TEXT_MAX, "w");
	FILE                   *e    = fmemopen(err, OPTIONS_TEXT_MAX, "w");
	enum zos_options_result r;

	argv[argc++] = "zosd";
	for (; *args != NULL; args++) {
		argv[argc++] = (char *) *args;
	}
	argv[argc] = NULL;
	memset(out, 0, OPTIONS_TEXT_MAX);
	memset(err, 0, OPTIONS_TEXT_MAX);
	r = zos_options_parse(opts, argc, argv, o, e, false);
	fclose(o);
	fclose(e);
	return r;
}

static char *const out = out_buf, *const err = err_buf;

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

Test(options, shared_cache_flags_are_read_and_checked)
{
	struct zos_options o;
	const char        *none[] = { NULL };
	const char        *args[] = { "--cache-url", "redis://127.0.0.1:6380",
		       "--cache-auth-file", "/tmp/a", "--cache-ttl-s", "60", NULL };
	const char *unix_url[] = { "--cache-url", "unix:///run/r.sock", NULL };
	const char *bad[][5]   = {
		  { "--cache-url", "http://x:1", NULL },
		  { "--cache-url", "redis://x:0", NULL },
		  { "--cache-url", "redis://u:p@x:1", NULL },
		  { "--cache-url", "unix://relative", NULL },
		  { "--cache-url", "redis://x", "--cache-ttl-s", "0", NULL },
		  { "--cache-ttl-s", "60", NULL },
		  { "--cache-auth-file", "/tmp/a", NULL },
	};

	cr_assert_eq(parse(&o, out, err, none), ZOS_OPTIONS_OK, "%s", err);
	cr_assert_null(o.cache_url);
	cr_assert_eq(parse(&o, out, err, args), ZOS_OPTIONS_OK, "%s", err);
	cr_assert_str_eq(o.cache_url, "redis://127.0.0.1:6380");
	cr_assert_str_eq(o.cache_auth_file, "/tmp/a");
	cr_assert_eq(o.cache_ttl_s, 60);
	cr_assert_eq(parse(&o, out, err, unix_url), ZOS_OPTIONS_OK, "%s", err);
	cr_assert_eq(o.cache_ttl_s, 3600, "the default TTL");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(parse(&o, out, err, bad[i]), ZOS_OPTIONS_USAGE,
		    "case %zu", i);
		cr_assert(strstr(err, "--cache-") != NULL, "%s", err);
	}
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

/* ---- tokens and exposure (--auth-tokens, --allow-unauthenticated) ---- */

Test(options, auth_flags_are_read)
{
	struct zos_options o;
	const char *args[] = { "--auth-tokens", "/etc/zos/tokens", NULL };
	const char *none[] = { NULL };

	cr_assert_eq(parse(&o, out, err, none), ZOS_OPTIONS_OK);
	cr_assert_null(o.auth_tokens);
	cr_assert_not(o.allow_unauthenticated);
	cr_assert_eq(parse(&o, out, err, args), ZOS_OPTIONS_OK, "%s", err);
	cr_assert_str_eq(o.auth_tokens, "/etc/zos/tokens");
	args[1] = "";
	cr_assert_eq(parse(&o, out, err, args), ZOS_OPTIONS_USAGE);
	cr_assert(strstr(err, "--auth-tokens") != NULL, "%s", err);
}

Test(options, loopback_ipc_and_inproc_urls_are_local)
{
	static const char *const local[]  = { "tcp://127.0.0.1:7447",
		 "tcp://127.8.9.10:1", "tcp://localhost:7447",
		 "tcp://LOCALHOST:1", "tcp://[::1]:7447", "tcp4://127.0.0.1:0",
		 "tls+tcp://localhost:7447", "tls+tcp://127.0.0.1:0",
		 "ws://127.0.0.1:8080/zos", "ws://[::1]:80/",
		 "ipc:///tmp/zos.sock", "inproc://zos" };
	static const char *const remote[] = { "tcp://0.0.0.0:7447",
		"tcp://*:7447", "tcp://:7447", "tcp://192.168.1.2:7447",
		"tcp://[::]:7447", "tcp://[::ffff:10.0.0.1]:1",
		"tcp://zos.example:7447", "tcp://128.0.0.1:1",
		"tls+tcp://0.0.0.0:7447", "ws://0.0.0.0:8080/zos",
		"ws://*:8080/", "wss://example.com:443/zos", "tcp://[::1:7447",
		"abstract://zos", "zt://x" };

	for (size_t i = 0; i < sizeof(local) / sizeof(local[0]); i++) {
		cr_assert(
		    zos_options_url_is_loopback(local[i]), "%s", local[i]);
	}
	for (size_t i = 0; i < sizeof(remote) / sizeof(remote[0]); i++) {
		cr_assert_not(
		    zos_options_url_is_loopback(remote[i]), "%s", remote[i]);
	}
}

Test(options, a_non_loopback_listener_needs_tokens_or_the_override)
{
	struct zos_options o;
	const char *bare[]   = { "--listen", "ipc:///tmp/x.sock", "--listen",
		  "tcp://0.0.0.0:0", NULL };
	const char *tokens[] = { "--listen", "tcp://0.0.0.0:0",
		"--auth-tokens", "t", NULL };
	const char *allow[]  = { "--listen", "ws://*:0/x",
		 "--allow-unauthenticated", NULL };
	const char *local[]  = { "--listen", "tcp://127.0.0.1:0", NULL };

	cr_assert_eq(parse(&o, out, err, bare), ZOS_OPTIONS_USAGE);
	cr_assert(strstr(err, "tcp://0.0.0.0:0") != NULL, "%s", err);
	cr_assert(strstr(err, "--auth-tokens") != NULL, "%s", err);
	cr_assert(strstr(err, "--allow-unauthenticated") != NULL, "%s", err);
	cr_assert_eq(parse(&o, out, err, tokens), ZOS_OPTIONS_OK, "%s", err);
	cr_assert_eq(parse(&o, out, err, allow), ZOS_OPTIONS_OK, "%s", err);
	cr_assert(o.allow_unauthenticated);
	cr_assert_eq(parse(&o, out, err, local), ZOS_OPTIONS_OK, "%s", err);
}

Test(options, help_describes_tokens_and_exposure)
{
	struct zos_options o;
	const char        *args[] = { "--help", NULL };

	cr_assert_eq(parse(&o, out, err, args), ZOS_OPTIONS_EXIT);
	cr_assert(strstr(out, "--auth-tokens FILE") != NULL, "%s", out);
	cr_assert(strstr(out, "--allow-unauthenticated") != NULL, "%s", out);
}

Test(options, session_lifecycle_flags_default_and_parse)
{
	struct zos_options o;
	const char        *none[] = { NULL };
	const char        *set[]  = { "--session-ttl", "90s",
		        "--max-sessions-per-token", "25", NULL };

	cr_assert_eq(parse(&o, out, err, none), ZOS_OPTIONS_OK);
	cr_assert_eq(o.session_ttl_ms, 24LL * 3600 * 1000);
	cr_assert_eq(o.max_sessions_per_token, 0, "no cap by default");
	cr_assert_eq(parse(&o, out, err, set), ZOS_OPTIONS_OK, "%s", err);
	cr_assert_eq(o.session_ttl_ms, 90000);
	cr_assert_eq(o.max_sessions_per_token, 25);

	const struct {
		const char *text;
		int64_t     ms;
	} good[] = { { "1s", 1000 }, { "30m", 1800000 }, { "24h", 86400000 },
		{ "87600h", 87600LL * 3600000 } };
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		int64_t ms = 0;
		cr_assert(zos_options_duration(good[i].text, &ms), "%s",
		    good[i].text);
		cr_assert_eq(ms, good[i].ms, "%s", good[i].text);
	}
	const char *bad[] = { "24", "0s", "1d", "-1h", "h", "", "87601h",
		"1.5h", "10 s", "99999999999999999999s" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int64_t     ms     = 0;
		const char *args[] = { "--session-ttl", bad[i], NULL };
		cr_assert_not(zos_options_duration(bad[i], &ms), "%s", bad[i]);
		cr_assert_eq(parse(&o, out, err, args), ZOS_OPTIONS_USAGE);
		cr_assert(strstr(err, "--session-ttl") != NULL, "%s", err);
	}
	const char *neg[] = { "--max-sessions-per-token", "-1", NULL };
	cr_assert_eq(parse(&o, out, err, neg), ZOS_OPTIONS_USAGE);
	cr_assert(strstr(err, "--max-sessions-per-token") != NULL, "%s", err);
}

Test(options, per_peer_bounds_have_defaults_and_are_read)
{
	struct zos_options o;
	const char        *none[] = { NULL };
	const char        *args[] = { "--send-timeout-ms", "250",
		       "--max-inflight-per-conn", "8", "--max-connections", "32",
		       "--idle-timeout-ms", "0", "--max-buffered-bytes", "2097152",
		       "--max-metadata-entries", "5", "--max-metadata-bytes", "128",
		       "--ws-allowed-origin", "https://a.example",
		       "--ws-allowed-origin", "https://b.example", NULL };

	cr_assert_eq(parse(&o, out, err, none), ZOS_OPTIONS_OK);
	cr_assert_eq(o.send_timeout_ms, 10000);
	cr_assert_eq(o.max_inflight_per_conn, 0, "0 means --max-inflight");
	cr_assert_eq(o.max_connections, 1024);
	cr_assert_eq(o.idle_timeout_ms, 300000);
	cr_assert_eq(o.max_buffered_bytes, (size_t) 256 * 1024 * 1024);
	cr_assert_eq(o.max_metadata_entries, 64);
	cr_assert_eq(o.max_metadata_bytes, 16 * 1024);
	cr_assert_eq(
	    o.n_ws_allowed_origins, 0, "no browser origin by default");

	cr_assert_eq(parse(&o, out, err, args), ZOS_OPTIONS_OK, "%s", err);
	cr_assert_eq(o.send_timeout_ms, 250);
	cr_assert_eq(o.max_inflight_per_conn, 8);
	cr_assert_eq(o.max_connections, 32);
	cr_assert_eq(o.idle_timeout_ms, 0);
	cr_assert_eq(o.max_buffered_bytes, 2097152);
	cr_assert_eq(o.max_metadata_entries, 5);
	cr_assert_eq(o.max_metadata_bytes, 128);
	cr_assert_eq(o.n_ws_allowed_origins, 2);
	cr_assert_str_eq(o.ws_allowed_origins[1], "https://b.example");
}

Test(options, per_peer_bounds_refuse_bad_values_by_name)
{
	struct zos_options o;
	const char        *bad[][3] = {
		       { "--send-timeout-ms", "0", NULL },
		       { "--max-inflight-per-conn", "0", NULL },
		       { "--max-connections", "x", NULL },
		       { "--idle-timeout-ms", "-1", NULL },
		       { "--max-buffered-bytes", "1000", NULL },
		       { "--max-metadata-entries", "0", NULL },
		       { "--max-metadata-bytes", "10", NULL },
		       { "--ws-allowed-origin", "evil", NULL },
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(parse(&o, out, err, bad[i]), ZOS_OPTIONS_USAGE,
		    "%s %s", bad[i][0], bad[i][1]);
		cr_assert(strstr(err, bad[i][0]) != NULL, "%s", err);
	}
}

Test(options, access_log_flags_are_read_and_checked)
{
	struct zos_options o;
	const char        *none[] = { NULL };
	const char *all[]    = { "--access-log", "all", "--access-log-sample",
		   "0.01", NULL };
	const char *off[]    = { "--access-log", "off", NULL };
	const char *errors[] = { "--access-log", "errors", NULL };
	const char *cases[][3] = {
		{ "--access-log", "some", NULL },
		{ "--access-log", "ALL", NULL },
		{ "--access-log-sample", "0", NULL },
		{ "--access-log-sample", "1.5", NULL },
		{ "--access-log-sample", "-0.5", NULL },
		{ "--access-log-sample", "nan", NULL },
		{ "--access-log-sample", "half", NULL },
	};

	cr_assert_eq(parse(&o, out, err, none), ZOS_OPTIONS_OK);
	cr_assert_eq(o.access_log, ZOS_ACCESS_LOG_ERRORS, "errors by default");
	cr_assert(o.access_log_sample == 1.0);
	cr_assert_eq(parse(&o, out, err, all), ZOS_OPTIONS_OK, "%s", err);
	cr_assert_eq(o.access_log, ZOS_ACCESS_LOG_ALL);
	cr_assert(o.access_log_sample == 0.01);
	cr_assert_eq(parse(&o, out, err, off), ZOS_OPTIONS_OK);
	cr_assert_eq(o.access_log, ZOS_ACCESS_LOG_OFF);
	cr_assert_eq(parse(&o, out, err, errors), ZOS_OPTIONS_OK);
	cr_assert_eq(o.access_log, ZOS_ACCESS_LOG_ERRORS);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cr_assert_eq(parse(&o, out, err, cases[i]), ZOS_OPTIONS_USAGE,
		    "%s %s", cases[i][0], cases[i][1]);
		cr_assert(strstr(err, cases[i][0]) != NULL, "%s", err);
	}
}

Test(options, help_documents_the_access_log)
{
	struct zos_options o;
	const char        *help[] = { "--help", NULL };

	cr_assert_eq(parse(&o, out, err, help), ZOS_OPTIONS_EXIT);
	cr_assert(
	    strstr(out, "[--access-log all|errors|off]") != NULL, "%s", out);
	cr_assert(strstr(out, "--access-log-sample R") != NULL);
	cr_assert(strstr(out, "[default errors]") != NULL);
	cr_assert(strstr(out, "zos_log_lines_dropped_total") != NULL);
}

Test(options, cluster_flags_are_read_and_checked)
{
	struct zos_options o;
	const char        *none[] = { NULL };
	const char        *good[] = { "--node-id", "3", "--peer",
		       "1=tcp://127.0.0.1:7001", "--peer", "2=ipc:///tmp/n2",
		       "--skills-home", "tcp://127.0.0.1:7001", NULL };

	cr_assert_eq(parse(&o, out, err, none), ZOS_OPTIONS_OK);
	cr_assert_eq(o.node_id, 0, "not given: the data dir's, else 1");
	cr_assert_eq(o.n_peers, 0);
	cr_assert_null(o.skills_home);

	cr_assert_eq(parse(&o, out, err, good), ZOS_OPTIONS_OK, "%s", err);
	cr_assert_eq(o.node_id, 3);
	cr_assert_eq(o.n_peers, 2);
	cr_assert_eq(o.peers[0].node, 1);
	cr_assert_str_eq(o.peers[0].url, "tcp://127.0.0.1:7001");
	cr_assert_eq(o.peers[1].node, 2);
	cr_assert_str_eq(o.peers[1].url, "ipc:///tmp/n2");
	cr_assert_str_eq(o.skills_home, "tcp://127.0.0.1:7001");

	const char *bad[][5] = {
		{ "--node-id", "0", NULL },
		{ "--node-id", "65536", NULL },
		{ "--node-id", "x", NULL },
		{ "--peer", "1", NULL },
		{ "--peer", "=tcp://a:1", NULL },
		{ "--peer", "0=tcp://a:1", NULL },
		{ "--peer", "1=nourl", NULL },
		{ "--peer", "1=tcp://a:1", "--peer", "1=tcp://b:2", NULL },
		{ "--skills-home", "nourl", NULL },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(parse(&o, out, err, bad[i]), ZOS_OPTIONS_USAGE,
		    "%s %s accepted", bad[i][0], bad[i][1]);
		cr_assert_not_null(strstr(err, bad[i][0]), "%s", err);
	}
}

Test(options, help_documents_the_cluster_flags)
{
	struct zos_options o;
	const char        *args[] = { "--help", NULL };

	cr_assert_eq(parse(&o, out, err, args), ZOS_OPTIONS_EXIT);
	cr_assert_not_null(strstr(out, "--node-id N"));
	cr_assert_not_null(strstr(out, "--peer N=URL"));
	cr_assert_not_null(strstr(out, "--skills-home URL"));
}

Test(options, the_node_id_file_is_written_read_and_checked)
{
	char     dir[] = "/tmp/zos-node-id-XXXXXX", path[64], error[256];
	uint32_t node  = 99;
	FILE    *f;

	cr_assert_not_null(mkdtemp(dir));
	/* None yet: 0, no error; no directory at all (in memory) too. */
	cr_assert_eq(zos_node_id_read(dir, &node, error, sizeof(error)), 0);
	cr_assert_eq(node, 0);
	cr_assert_eq(zos_node_id_read(NULL, &node, error, sizeof(error)), 0);
	cr_assert_eq(node, 0);
	/* Written, read back. */
	cr_assert_eq(zos_node_id_write(dir, 4242, error, sizeof(error)), 0,
	    "%s", error);
	cr_assert_eq(zos_node_id_read(dir, &node, error, sizeof(error)), 0);
	cr_assert_eq(node, 4242);
	/* Choosing: stored wins when the flag agrees or is absent; a
	 * different flag is refused naming both; nothing: the flag, else 1. */
	cr_assert_eq(zos_node_id_choose(0, 7, dir, &node, error, 256), 0);
	cr_assert_eq(node, 7);
	cr_assert_eq(zos_node_id_choose(7, 7, dir, &node, error, 256), 0);
	cr_assert_eq(zos_node_id_choose(3, 0, dir, &node, error, 256), 0);
	cr_assert_eq(node, 3);
	cr_assert_eq(zos_node_id_choose(0, 0, NULL, &node, error, 256), 0);
	cr_assert_eq(node, 1);
	cr_assert_eq(zos_node_id_choose(8, 7, dir, &node, error, 256), -1);
	cr_assert_not_null(strstr(error, "--node-id 8"), "%s", error);
	cr_assert_not_null(strstr(error, "belongs to node 7"), "%s", error);
	/* A file that holds no node id: an error naming it. */
	const char *bad[] = { "", "0\n", "65536\n", "12x\n", "-3\n", "007\n" };
	snprintf(path, sizeof(path), "%s/node-id", dir);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_not_null(f = fopen(path, "w"));
		fputs(bad[i], f);
		fclose(f);
		cr_assert_eq(
		    zos_node_id_read(dir, &node, error, sizeof(error)), -1,
		    "'%s' accepted", bad[i]);
		cr_assert_not_null(strstr(error, path), "%s", error);
	}
	unlink(path);
	rmdir(dir);
}
