/*
 * zosd with a data directory and an external model server, as programs:
 * what survives a restart, what a corrupt file does at start-up, how the
 * skills file seeds a new directory, and Assistant/Complete answered by
 * zos-model-backend over ipc (with a retry and a fallback).
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proc.h"
#include "zos/v1/zos.zrpc.h"
#include "zrpc/client.h"

static const zrpc_call_opts opts = { .timeout_ms = 5000 };

struct dir {
	char path[64];
	char url[128]; /* ipc socket inside it */
};

static void
dir_make(struct dir *d)
{
	snprintf(d->path, sizeof(d->path), "/tmp/zos-durable-XXXXXX");
	cr_assert_not_null(mkdtemp(d->path));
	snprintf(d->url, sizeof(d->url), "ipc://%s/zosd.sock", d->path);
}

static void
dir_remove(struct dir *d)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d->path);
	cr_assert_eq(system(cmd), 0);
}

/* Starts zosd on D with its data in D/data and EXTRA flags (NULL-ended). */
static void
zosd_start(struct proc *p, const struct dir *d, const char *const *extra)
{
	char  data[96];
	char *argv[32];
	int   n = 0;

	snprintf(data, sizeof(data), "%s/data", d->path);
	argv[n++] = (char *) env_path("ZOSD");
	argv[n++] = "--data-dir";
	argv[n++] = data;
	argv[n++] = "--listen";
	argv[n++] = (char *) d->url;
	argv[n++] = "--log-format";
	argv[n++] = "text";
	argv[n++] = "--metrics-listen";
	argv[n++] = "off";
	for (; extra != NULL && *extra != NULL; extra++) {
		argv[n++] = (char *) *extra;
	}
	argv[n] = NULL;
	proc_start(p, argv);
}

static void
zosd_ready(struct proc *p, const struct dir *d, const char *const *extra)
{
	zosd_start(p, d, extra);
	cr_assert(proc_wait_for(p, "listening on"), "%s", p->text);
}

static void
zosd_stop(struct proc *p)
{
	kill(p->pid, SIGTERM);
	cr_assert_eq(proc_wait(p), 0, "%s", p->text);
}

static zrpc_client *
client_open(const struct dir *d)
{
	zrpc_client *c;

	cr_assert_eq(zrpc_client_open(&c, d->url, NULL).code, ZRPC_OK);
	return c;
}

/* A failed assertion ends a test before its stops: reap what it left. */
TestSuite(durable, .fini = proc_kill_left);

Test(durable, sessions_and_skills_survive_a_restart)
{
	struct dir                   d;
	struct proc                  p;
	zrpc_client                 *c;
	Zos__V1__StartSessionRequest start =
	    ZOS__V1__START_SESSION_REQUEST__INIT;
	Zos__V1__TransitionRequest   tr  = ZOS__V1__TRANSITION_REQUEST__INIT;
	Zos__V1__GetSessionRequest   get = ZOS__V1__GET_SESSION_REQUEST__INIT;
	Zos__V1__UpdateSkillsRequest up = ZOS__V1__UPDATE_SKILLS_REQUEST__INIT;
	Zos__V1__UpdateSkillsRequest__DeltasEntry e =
	    ZOS__V1__UPDATE_SKILLS_REQUEST__DELTAS_ENTRY__INIT;
	Zos__V1__UpdateSkillsRequest__DeltasEntry *entries[1] = { &e };
	Zos__V1__GetSkillsRequest gs = ZOS__V1__GET_SKILLS_REQUEST__INIT;
	Zos__V1__ProofSession    *s  = NULL;
	Zos__V1__SkillVector     *v  = NULL;
	char                      id[40];
	uint64_t                  skills_version;

	dir_make(&d);
	zosd_ready(&p, &d, NULL);
	c                = client_open(&d);
	start.problem_id = "durable";
	cr_assert_eq(zos_v1_session_start(c, &start, &s, &opts).code, ZRPC_OK);
	snprintf(id, sizeof(id), "%s", s->id);
	zos__v1__proof_session__free_unpacked(s, NULL);
	tr.id       = id;
	tr.to_state = ZOS__V1__PROOF_STATE__ANALYZING;
	cr_assert_eq(
	    zos_v1_session_transition(c, &tr, &s, &opts).code, ZRPC_OK);
	zos__v1__proof_session__free_unpacked(s, NULL);
	e.key       = "induction";
	e.value     = 0.25;
	up.n_deltas = 1;
	up.deltas   = entries;
	cr_assert_eq(zos_v1_skills_update(c, &up, &v, &opts).code, ZRPC_OK);
	skills_version = v->version;
	zos__v1__skill_vector__free_unpacked(v, NULL);
	zrpc_client_close(c);
	zosd_stop(&p);

	zosd_ready(&p, &d, NULL);
	cr_assert(
	    strstr(p.text, "1 sessions (change 2)") != NULL, "%s", p.text);
	c      = client_open(&d);
	get.id = id;
	cr_assert_eq(zos_v1_session_get(c, &get, &s, &opts).code, ZRPC_OK);
	cr_assert_eq(s->state, ZOS__V1__PROOF_STATE__ANALYZING);
	cr_assert_eq(s->version, 2);
	cr_assert_str_eq(s->problem_id, "durable");
	zos__v1__proof_session__free_unpacked(s, NULL);
	cr_assert_eq(zos_v1_skills_get(c, &gs, &v, &opts).code, ZRPC_OK);
	cr_assert_eq(v->version, skills_version);
	for (size_t i = 0; i < v->n_skills; i++) {
		if (strcmp(v->skills[i]->name, "induction") == 0) {
			cr_assert_float_eq(v->skills[i]->level, 0.75, 1e-9);
			cr_assert_eq(v->skills[i]->attempts, 1);
		}
	}
	zos__v1__skill_vector__free_unpacked(v, NULL);
	zrpc_client_close(c);
	zosd_stop(&p);
	dir_remove(&d);
}

Test(durable, a_corrupt_file_stops_start_up_with_its_path_and_stays_as_it_was)
{
	struct dir  d;
	struct proc p;
	static char before[1 << 16], after[1 << 16];
	char        path[128];
	FILE       *f;
	size_t      n_before, n_after;

	dir_make(&d);
	zosd_ready(&p, &d, NULL);
	zosd_stop(&p);
	/* The second page of zos.db (a table's root page), overwritten. */
	snprintf(path, sizeof(path), "%s/data/zos.db", d.path);
	f = fopen(path, "r+");
	cr_assert_not_null(f);
	cr_assert_eq(fseek(f, 4096, SEEK_SET), 0);
	for (int i = 0; i < 64; i++) {
		cr_assert_eq(fputc('#', f), '#');
	}
	cr_assert_eq(fclose(f), 0);
	f        = fopen(path, "r");
	n_before = fread(before, 1, sizeof(before), f);
	fclose(f);
	cr_assert_lt(n_before, sizeof(before));

	zosd_start(&p, &d, NULL);
	cr_assert_eq(proc_wait(&p), 1, "%s", p.text);
	cr_assert(strstr(p.text, path) != NULL, "%s", p.text);
	cr_assert(strstr(p.text, "corrupt") != NULL, "%s", p.text);
	f       = fopen(path, "r");
	n_after = fread(after, 1, sizeof(after), f);
	fclose(f);
	cr_assert_eq(n_after, n_before);
	cr_assert_eq(memcmp(before, after, n_before), 0, "left untouched");
	dir_remove(&d);
}

Test(durable, the_skills_file_seeds_a_new_directory_and_reload_persists)
{
	struct dir                   d;
	struct proc                  p;
	zrpc_client                 *c;
	Zos__V1__GetSkillsRequest    gs = ZOS__V1__GET_SKILLS_REQUEST__INIT;
	Zos__V1__ReloadSkillsRequest rl = ZOS__V1__RELOAD_SKILLS_REQUEST__INIT;
	Zos__V1__SkillVector        *v  = NULL;
	char                         file[128];
	const char                  *extra[] = { "--skills-file", file, NULL };
	FILE                        *f;

	dir_make(&d);
	snprintf(file, sizeof(file), "%s/skills.txt", d.path);
	f = fopen(file, "w");
	fputs("induction 0.1\ncases 0.2\n", f);
	fclose(f);
	zosd_ready(&p, &d, extra);
	zosd_stop(&p);

	/* The file changes; the data directory's skills win at start... */
	f = fopen(file, "w");
	fputs("induction 0.9\n", f);
	fclose(f);
	zosd_ready(&p, &d, extra);
	c = client_open(&d);
	cr_assert_eq(zos_v1_skills_get(c, &gs, &v, &opts).code, ZRPC_OK);
	cr_assert_eq(v->n_skills, 2);
	zos__v1__skill_vector__free_unpacked(v, NULL);
	/* ...and Reload re-reads the file, durably. */
	cr_assert_eq(zos_v1_skills_reload(c, &rl, &v, &opts).code, ZRPC_OK);
	cr_assert_eq(v->n_skills, 1);
	zos__v1__skill_vector__free_unpacked(v, NULL);
	zrpc_client_close(c);
	zosd_stop(&p);

	zosd_ready(&p, &d, NULL); /* no skills file this time */
	c = client_open(&d);
	cr_assert_eq(zos_v1_skills_get(c, &gs, &v, &opts).code, ZRPC_OK);
	cr_assert_eq(v->n_skills, 1);
	cr_assert_float_eq(v->skills[0]->level, 0.9, 1e-9);
	zos__v1__skill_vector__free_unpacked(v, NULL);
	zrpc_client_close(c);
	zosd_stop(&p);
	dir_remove(&d);
}

Test(durable, a_second_zosd_on_the_same_directory_is_refused)
{
	struct dir  d, other;
	struct proc first, second;
	char        data[96];

	dir_make(&d);
	dir_make(&other);
	zosd_ready(&first, &d, NULL);
	snprintf(data, sizeof(data), "%s/data", d.path);
	char *argv[] = { (char *) env_path("ZOSD"), "--data-dir", data,
		"--listen", other.url, "--metrics-listen", "off", NULL };
	proc_start(&second, argv);
	cr_assert_eq(proc_wait(&second), 1, "%s", second.text);
	cr_assert(strstr(second.text, "in use") != NULL, "%s", second.text);
	zosd_stop(&first);
	dir_remove(&d);
	dir_remove(&other);
}

/* Starts zos-model-backend on ipc in D with EXTRA flags. */
static void
model_start(struct proc *m, const struct dir *d, char *url, size_t len,
    const char *extra)
{
	snprintf(url, len, "ipc://%s/model.sock", d->path);
	char *argv[] = { (char *) env_path("ZOS_MODEL_BACKEND"), "--listen",
		url, (char *) extra, extra != NULL ? "1" : NULL, NULL };
	proc_start(m, argv);
	cr_assert(proc_wait_for(m, "listening on"), "%s", m->text);
}

static Zos__V1__CompleteResponse *
complete_ok(zrpc_client *c, const char *task, const char *prompt)
{
	Zos__V1__CompleteRequest   req = ZOS__V1__COMPLETE_REQUEST__INIT;
	Zos__V1__CompleteResponse *r   = NULL;
	zrpc_status                st;

	req.task_type = (char *) task;
	req.prompt    = (char *) prompt;
	st            = zos_v1_assistant_complete(c, &req, &r, &opts);
	cr_assert_eq(st.code, ZRPC_OK, "%s", st.message);
	return r;
}

Test(durable, complete_is_answered_by_an_external_model_over_ipc)
{
	struct dir                 d;
	struct proc                model, p;
	zrpc_client               *c;
	Zos__V1__CompleteResponse *r;
	char                       url[128], backend[160];

	dir_make(&d);
	model_start(&model, &d, url, sizeof(url), "--fail-first");
	snprintf(backend, sizeof(backend), "hint=%s", url);
	const char *extra[] = { "--backend", backend, NULL };
	zosd_ready(&p, &d, extra);
	c = client_open(&d);

	/* The model fails its first call: zosd retries it after 100 ms. */
	r = complete_ok(c, "hint", "is 7 prime?");
	cr_assert_str_eq(r->model, url);
	cr_assert_eq(r->attempts, 2);
	cr_assert_neq(strstr(r->text, "is 7 prime?"), NULL, "%s", r->text);
	zos__v1__complete_response__free_unpacked(r, NULL);

	/* The model goes away: the fallback answers. */
	kill(model.pid, SIGTERM);
	cr_assert_eq(proc_wait(&model), 0, "%s", model.text);
	r = complete_ok(c, "hint", "is 9 prime?");
	cr_assert_str_eq(r->model, "builtin:echo");
	cr_assert_eq(r->attempts, 3);
	zos__v1__complete_response__free_unpacked(r, NULL);
	zrpc_client_close(c);
	zosd_stop(&p);
	dir_remove(&d);
}
