/*
 * W3C trace context across processes: a caller's traceparent and
 * x-request-id given to zosd's Assistant/Complete reach the model server
 * (zos-model-backend, over ipc) with the same trace id, a new span id and
 * the same request id, and zosd's access log shows them. An invalid
 * traceparent is ignored, and a call without one starts a trace that
 * zosd's log and the model's share. Every process a test starts is
 * stopped by the test (or by the suite's fini after a failed assertion).
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../tools/run_tool.h"
#include "proc.h"
#include "zos/v1/zos.zrpc.h"
#include "zrpc/client.h"
#include "zrpc/server.h"

#define TRACE_ID "4bf92f3577b34da6a3ce929d0e0e4736"
#define SPAN_ID "00f067aa0ba902b7"
#define TRACEPARENT "00-" TRACE_ID "-" SPAN_ID "-01"

TestSuite(trace_zosd, .fini = proc_kill_left);

struct setup {
	char        dir[64];
	char        zosd_url[128];
	char        model_url[128];
	struct proc model;
	struct proc zosd;
};

static void
setup_start(struct setup *s)
{
	char backend[160];

	snprintf(s->dir, sizeof(s->dir), "/tmp/zos-trace-XXXXXX");
	cr_assert_not_null(mkdtemp(s->dir));
	snprintf(
	    s->zosd_url, sizeof(s->zosd_url), "ipc://%s/zosd.sock", s->dir);
	snprintf(
	    s->model_url, sizeof(s->model_url), "ipc://%s/model.sock", s->dir);
	char *model_argv[] = { (char *) env_path("ZOS_MODEL_BACKEND"),
		"--listen", s->model_url, NULL };
	proc_start(&s->model, model_argv);
	cr_assert(
	    proc_wait_for(&s->model, "listening on"), "%s", s->model.text);

	snprintf(backend, sizeof(backend), "hint=%s", s->model_url);
	char *zosd_argv[] = { (char *) env_path("ZOSD"), "--in-memory",
		"--listen", s->zosd_url, "--metrics-listen", "off",
		"--log-format", "json", "--log-level", "info", "--access-log",
		"all", "--backend", backend, NULL };
	proc_start(&s->zosd, zosd_argv);
	cr_assert(proc_wait_for(&s->zosd, "listening on"), "%s", s->zosd.text);
}

/* Stops both (zosd first) with the whole of their output read. */
static void
setup_stop(struct setup *s)
{
	char cmd[128];

	kill(s->zosd.pid, SIGTERM);
	cr_assert_eq(proc_wait(&s->zosd), 0, "%s", s->zosd.text);
	kill(s->model.pid, SIGTERM);
	cr_assert_eq(proc_wait(&s->model), 0, "%s", s->model.text);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s->dir);
	cr_assert_eq(system(cmd), 0);
}

/* Complete (task "hint", so the model server answers) with METADATA. */
static void
complete(struct setup *s, const char *prompt,
    const struct zrpc_metadata_entry *metadata, size_t n)
{
	Zos__V1__CompleteRequest   req = ZOS__V1__COMPLETE_REQUEST__INIT;
	Zos__V1__CompleteResponse *r   = NULL;
	zrpc_client               *c;
	zrpc_status                st;

	cr_assert_eq(zrpc_client_open(&c, s->zosd_url, NULL).code, ZRPC_OK);
	req.task_type = "hint";
	req.prompt    = (char *) prompt;
	st            = zos_v1_assistant_complete(c, &req, &r,
	               &(zrpc_call_opts) {
	                   .timeout_ms = 10000, .metadata = metadata, .n_metadata = n });
	cr_assert_eq(st.code, ZRPC_OK, "%s", st.message);
	cr_assert_str_eq(r->model, s->model_url, "the model server answered");
	zos__v1__complete_response__free_unpacked(r, NULL);
	zrpc_client_close(c);
}

/*
 * The model's line for request id REQUEST_ID: copies its traceparent
 * (ZRPC_TRACEPARENT_LEN characters, or "-") into OUT.
 */
static void
model_traceparent(const struct proc *model, const char *request_id,
    char out[ZRPC_TRACEPARENT_LEN + 1])
{
	char        needle[192];
	const char *line;

	snprintf(needle, sizeof(needle),
	    "zos-model-backend: generate request_id=%s traceparent=",
	    request_id);
	line = strstr(model->text, needle);
	cr_assert_not_null(
	    line, "the model logged %s:\n%s", request_id, model->text);
	snprintf(out, ZRPC_TRACEPARENT_LEN + 1, "%.*s", ZRPC_TRACEPARENT_LEN,
	    line + strlen(needle));
	out[strcspn(out, "\n")] = '\0';
}

/* zosd's access-log line (JSON) of Complete with request id ID. */
static const char *
zosd_line(const struct proc *zosd, const char *id, char *line, size_t len)
{
	char        needle[160];
	const char *at, *start, *end;

	snprintf(needle, sizeof(needle), "\"request_id\":\"%s\"", id);
	at = strstr(zosd->text, needle);
	cr_assert_not_null(at, "zosd logged %s:\n%s", id, zosd->text);
	for (start = at; start > zosd->text && start[-1] != '\n'; start--) { }
	end = strchr(at, '\n');
	cr_assert_not_null(end);
	snprintf(line, len, "%.*s", (int) (end - start), start);
	cr_assert(strstr(line, "\"/zos.v1.Assistant/Complete\"") != NULL, "%s",
	    line);
	return line;
}

Test(trace_zosd, traceparent_and_request_id_reach_the_model_and_the_log)
{
	struct setup               s;
	struct zrpc_metadata_entry md[] = {
		{ "traceparent", TRACEPARENT },
		{ "tracestate", "zos=t61rcWkgMzE" },
		{ "x-request-id", "req-trace-1" },
	};
	char got[ZRPC_TRACEPARENT_LEN + 1], line[2048];

	setup_start(&s);
	complete(&s, "is 7 prime?", md, 3);
	setup_stop(&s);

	/* The model: same trace id and flags, a new span id, same id. */
	model_traceparent(&s.model, "req-trace-1", got);
	cr_assert(zrpc_traceparent_valid(got), "%s", got);
	cr_assert(strncmp(got, "00-" TRACE_ID "-", 36) == 0, "%s", got);
	cr_assert(strncmp(got + 36, SPAN_ID, 16) != 0, "a new span: %s", got);
	cr_assert_str_eq(got + 52, "-01");

	/* zosd's access log: what came in, and the trace. */
	zosd_line(&s.zosd, "req-trace-1", line, sizeof(line));
	cr_assert(strstr(line, "\"traceparent\":\"" TRACEPARENT "\"") != NULL,
	    "%s", line);
	cr_assert(
	    strstr(line, "\"trace_id\":\"" TRACE_ID "\"") != NULL, "%s", line);
	cr_assert(strstr(line, "\"code\":\"OK\"") != NULL, "%s", line);
}

Test(trace_zosd, an_invalid_traceparent_is_ignored_and_a_trace_started)
{
	struct setup               s;
	struct zrpc_metadata_entry md[] = {
		{ "traceparent", "00-" TRACE_ID "-" SPAN_ID "-1" },
		{ "x-request-id", "req-trace-2" },
	};
	char got[ZRPC_TRACEPARENT_LEN + 1], line[2048], want[64];

	setup_start(&s);
	complete(&s, "is 9 prime?", md, 2); /* OK, not an error */
	setup_stop(&s);

	model_traceparent(&s.model, "req-trace-2", got);
	cr_assert(zrpc_traceparent_valid(got), "%s", got);
	cr_assert(strncmp(got + 3, TRACE_ID, 32) != 0, "a new trace: %s", got);
	zosd_line(&s.zosd, "req-trace-2", line, sizeof(line));
	cr_assert_null(strstr(line, "\"traceparent\""), "%s", line);
	snprintf(want, sizeof(want), "\"trace_id\":\"%.32s\"", got + 3);
	cr_assert(strstr(line, want) != NULL, "the model's trace: %s", line);
}

Test(trace_zosd, without_a_traceparent_zosd_and_the_model_share_a_new_trace)
{
	struct setup               s;
	struct zrpc_metadata_entry md[] = { { "x-request-id",
	    "req-trace-3" } };
	char got[ZRPC_TRACEPARENT_LEN + 1], line[2048], want[64];

	setup_start(&s);
	complete(&s, "is 11 prime?", md, 1);
	/* A call that makes no backend call starts no trace. */
	{
		Zos__V1__GetSkillsRequest req =
		    ZOS__V1__GET_SKILLS_REQUEST__INIT;
		Zos__V1__SkillVector      *v = NULL;
		zrpc_client               *c;
		struct zrpc_metadata_entry id[] = { { "x-request-id",
		    "req-trace-4" } };

		cr_assert_eq(
		    zrpc_client_open(&c, s.zosd_url, NULL).code, ZRPC_OK);
		cr_assert_eq(zos_v1_skills_get(c, &req, &v,
		                 &(zrpc_call_opts) { .timeout_ms = 5000,
		                     .metadata                   = id,
		                     .n_metadata                 = 1 })
		                 .code,
		    ZRPC_OK);
		zos__v1__skill_vector__free_unpacked(v, NULL);
		zrpc_client_close(c);
	}
	setup_stop(&s);

	model_traceparent(&s.model, "req-trace-3", got);
	cr_assert(zrpc_traceparent_valid(got), "%s", got);
	cr_assert_str_eq(got + 52, "-00", "a trace zosd started: not sampled");
	zosd_line(&s.zosd, "req-trace-3", line, sizeof(line));
	snprintf(want, sizeof(want), "\"trace_id\":\"%.32s\"", got + 3);
	cr_assert(strstr(line, want) != NULL, "%s", line);

	/* Skills/Get's line has neither field. */
	{
		const char *at = strstr(s.zosd.text, "req-trace-4");
		const char *end;

		cr_assert_not_null(at, "%s", s.zosd.text);
		end = strchr(at, '\n');
		cr_assert_not_null(end);
		cr_assert(memmem(at, (size_t) (end - at), "\"trace_id\"",
		              10) == NULL,
		    "%.*s", (int) (end - at), at);
		cr_assert(memmem(at, (size_t) (end - at), "\"traceparent\"",
		              13) == NULL,
		    "%.*s", (int) (end - at), at);
	}
}

/*
 * The whole path from the command line: zosctl -v -H sends a
 * request id and a traceparent; zosctl's -v shows the id the reply
 * carries back, zosd's access log shows both, and the model server gets
 * the same id and trace (a new span).
 */
Test(trace_zosd, zosctl_ids_reach_its_v_output_zosds_log_and_the_model)
{
	struct setup s;
	struct run   r;
	char         got[ZRPC_TRACEPARENT_LEN + 1], line[2048];

	setup_start(&s);
	run_tool(&r, env_path("ZOSCTL"), NULL, "--url", s.zosd_url,
	    "--timeout-ms", "10000", "-v", "-H", "x-request-id: req-ctl-1",
	    "-H", "traceparent: " TRACEPARENT, "call",
	    "zos.v1.Assistant/Complete",
	    "{\"taskType\":\"hint\",\"prompt\":\"is 13 prime?\"}", NULL);
	setup_stop(&s);

	cr_assert_eq(r.status, 0, "%.*s", (int) r.err_len, r.err);
	cr_assert(strstr(r.err,
	              "Reply metadata received:\nx-request-id: "
	              "req-ctl-1") != NULL,
	    "%.*s", (int) r.err_len, r.err);
	cr_assert(strstr(r.err, "traceparent: " TRACEPARENT) != NULL, "%.*s",
	    (int) r.err_len, r.err);
	cr_assert(strstr(r.out, s.model_url) != NULL, "the model answered: %s",
	    r.out);

	zosd_line(&s.zosd, "req-ctl-1", line, sizeof(line));
	cr_assert(strstr(line, "\"traceparent\":\"" TRACEPARENT "\"") != NULL,
	    "%s", line);
	model_traceparent(&s.model, "req-ctl-1", got);
	cr_assert(strncmp(got, "00-" TRACE_ID "-", 36) == 0, "%s", got);
	cr_assert(strncmp(got + 36, SPAN_ID, 16) != 0, "a new span: %s", got);
}
