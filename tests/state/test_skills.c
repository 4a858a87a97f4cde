/* The skill vector: snapshots, atomic updates, the skills file. */
#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "skills.h"

static struct zos_lock_domain domain_for_test;

static void
setup(struct zos_skills *s)
{
	zos_lock_domain_init(&domain_for_test, true, NULL, NULL);
	cr_assert_eq(zos_skills_init(s, &domain_for_test, NULL), 0);
}

static const struct zos_skill *
find(const struct zos_skill_vector *v, const char *name)
{
	for (size_t i = 0; i < v->n; i++) {
		if (strcmp(v->skills[i].name, name) == 0) {
			return &v->skills[i];
		}
	}
	return NULL;
}

Test(skills, a_fresh_state_has_the_six_default_skills_at_one_half)
{
	struct zos_skills        s;
	struct zos_skill_vector *v;
	const char              *names[] = { "direct_proof", "contradiction",
		             "contrapositive", "induction", "cases", "construction" };

	setup(&s);
	v = zos_skills_get(&s);
	cr_assert_eq(v->n, 6);
	cr_assert_eq(v->version, 0);
	for (size_t i = 0; i < 6; i++) {
		const struct zos_skill *k = find(v, names[i]);
		cr_assert_not_null(k, "%s", names[i]);
		cr_assert_eq(k->level, 0.5);
		cr_assert_eq(k->attempts, 0);
	}
	zos_skill_vector_unref(v);
	zos_skills_finish(&s);
}

Test(skills, update_applies_every_delta_clamps_and_counts_attempts)
{
	struct zos_skills        s;
	struct zos_skill_vector *v, *before;
	struct zos_skill_delta   d[] = { { "induction", 0.25 },
		  { "cases", -2.0 }, { "construction", 9.0 } };
	char                     err[128];

	setup(&s);
	before = zos_skills_get(&s);
	cr_assert_eq(zos_skills_update(&s, d, 3, 0, &v, err, sizeof(err)),
	    ZOS_SKILLS_OK, "%s", err);
	cr_assert_eq(v->version, 1);
	cr_assert_eq(find(v, "induction")->level, 0.75);
	cr_assert_eq(find(v, "cases")->level, 0.0, "clamped at 0");
	cr_assert_eq(find(v, "construction")->level, 1.0, "clamped at 1");
	cr_assert_eq(find(v, "induction")->attempts, 1);
	cr_assert_eq(find(v, "direct_proof")->attempts, 0, "not named");
	/* A snapshot taken before never changes. */
	cr_assert_eq(find(before, "induction")->level, 0.5);
	cr_assert_eq(before->version, 0);
	zos_skill_vector_unref(before);
	zos_skill_vector_unref(v);
	zos_skills_finish(&s);
}

Test(skills, a_bad_delta_changes_nothing)
{
	struct zos_skills        s;
	struct zos_skill_vector *v;
	char                     err[128];
	struct zos_skill_delta   unknown[] = { { "induction", 0.1 },
		  { "telepathy", 0.1 } };
	struct zos_skill_delta   nan[]     = { { "induction", NAN } };
	struct zos_skill_delta   inf[]     = { { "cases", INFINITY } };
	struct zos_skill_delta   twice[]   = { { "cases", 0.1 },
		    { "cases", 0.1 } };

	setup(&s);
	cr_assert_eq(
	    zos_skills_update(&s, unknown, 2, 0, NULL, err, sizeof(err)),
	    ZOS_SKILLS_INVALID);
	cr_assert(strstr(err, "telepathy") != NULL, "%s", err);
	cr_assert_eq(zos_skills_update(&s, nan, 1, 0, NULL, err, sizeof(err)),
	    ZOS_SKILLS_INVALID);
	cr_assert_eq(zos_skills_update(&s, inf, 1, 0, NULL, err, sizeof(err)),
	    ZOS_SKILLS_INVALID);
	cr_assert_eq(
	    zos_skills_update(&s, twice, 2, 0, NULL, err, sizeof(err)),
	    ZOS_SKILLS_INVALID);
	v = zos_skills_get(&s);
	cr_assert_eq(v->version, 0, "all or none");
	cr_assert_eq(find(v, "induction")->level, 0.5);
	cr_assert_eq(find(v, "induction")->attempts, 0);
	zos_skill_vector_unref(v);
	zos_skills_finish(&s);
}

Test(skills, a_stale_expected_version_is_aborted)
{
	struct zos_skills      s;
	char                   err[128];
	struct zos_skill_delta d[] = { { "induction", 0.1 } };

	setup(&s);
	cr_assert_eq(zos_skills_update(&s, d, 1, 0, NULL, err, sizeof(err)),
	    ZOS_SKILLS_OK);
	cr_assert_eq(zos_skills_update(&s, d, 1, 1, NULL, err, sizeof(err)),
	    ZOS_SKILLS_OK, "matching version");
	cr_assert_eq(zos_skills_update(&s, d, 1, 1, NULL, err, sizeof(err)),
	    ZOS_SKILLS_ABORTED);
	cr_assert(strstr(err, "current is 2") != NULL, "%s", err);
	zos_skills_finish(&s);
}

Test(skills, the_file_format_is_parsed_and_errors_name_the_line)
{
	struct zos_skill_vector *v;
	char                     err[256];
	const char *good = "# my skills\n\ninduction 0.25\n  cases 1 # x\n";
	const char *bad[][2] = {
		{ "induction 0.5\ncases\n", "line 2" },
		{ "induction 1.5\n", "[0, 1]" },
		{ "Induction 0.5\n", "bad skill name" },
		{ "cases 0.1\ncases 0.2\n", "twice" },
		{ "cases 0.1 extra\n", "line 1" },
		{ "# nothing\n", "no skills" },
	};

	cr_assert_eq(
	    zos_skills_parse(good, strlen(good), &v, err, sizeof(err)),
	    ZOS_SKILLS_OK, "%s", err);
	cr_assert_eq(v->n, 2);
	cr_assert_str_eq(v->skills[0].name, "induction");
	cr_assert_eq(v->skills[0].level, 0.25);
	cr_assert_eq(v->skills[1].level, 1.0);
	zos_skill_vector_unref(v);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_neq(zos_skills_parse(bad[i][0], strlen(bad[i][0]),
		                  &v, err, sizeof(err)),
		    ZOS_SKILLS_OK, "%s", bad[i][0]);
		cr_assert_null(v);
		cr_assert(
		    strstr(err, bad[i][1]) != NULL, "%s: %s", bad[i][0], err);
	}
}

Test(skills, a_file_name_of_64_bytes_is_kept_whole_and_65_is_refused)
{
	struct zos_skill_vector *v;
	char                     err[256];
	char                     text[ZOS_SKILL_NAME_MAX + 16];

	memset(text, 'a', ZOS_SKILL_NAME_MAX);
	snprintf(text + ZOS_SKILL_NAME_MAX, 16, " 0.5\n");
	cr_assert_eq(
	    zos_skills_parse(text, strlen(text), &v, err, sizeof(err)),
	    ZOS_SKILLS_OK, "%s", err);
	cr_assert_eq(strlen(v->skills[0].name), ZOS_SKILL_NAME_MAX);
	cr_assert(strncmp(v->skills[0].name, text, ZOS_SKILL_NAME_MAX) == 0);
	zos_skill_vector_unref(v);

	memset(text, 'a', ZOS_SKILL_NAME_MAX + 1);
	snprintf(text + ZOS_SKILL_NAME_MAX + 1, 15, " 0.5\n");
	cr_assert_eq(
	    zos_skills_parse(text, strlen(text), &v, err, sizeof(err)),
	    ZOS_SKILLS_INVALID);
	cr_assert_null(v);
	cr_assert(strstr(err, "line 1") != NULL, "%s", err);
}

Test(skills, reload_from_a_file_swaps_in_the_next_version)
{
	struct zos_skills        s;
	struct zos_skill_vector *fresh, *now;
	char                     path[] = "/tmp/zos-skills-XXXXXX";
	char                     err[256];
	int                      fd = mkstemp(path);

	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, "induction 0.9\n", 14), 14);
	close(fd);
	setup(&s);
	cr_assert_eq(zos_skills_load_file(
	                 &domain_for_test, path, &fresh, err, sizeof(err)),
	    ZOS_SKILLS_OK, "%s", err);
	cr_assert_eq(zos_skills_replace(&s, fresh, &now), ZOS_SKILLS_OK);
	cr_assert_eq(now->version, 1);
	cr_assert_eq(now->n, 1);
	zos_skill_vector_unref(now);
	unlink(path);
	cr_assert_eq(zos_skills_load_file(
	                 &domain_for_test, path, &fresh, err, sizeof(err)),
	    ZOS_SKILLS_NOT_FOUND);
	cr_assert(strstr(err, path) != NULL, "%s", err);
	zos_skills_finish(&s);
}

Test(skills, reading_the_file_under_a_lock_aborts, .signal = SIGABRT)
{
	struct zos_skills        s;
	struct zos_skill_vector *fresh;
	char                     err[256];

	setup(&s);
	zos_lock_read(&s.lock);
	zos_skills_load_file(
	    &domain_for_test, "/dev/null", &fresh, err, sizeof(err));
}

/* Concurrent updates: attempts add up to the updates acknowledged. */
struct updater {
	struct zos_skills *s;
	unsigned           acked;
};

static void *
updater_main(void *arg)
{
	struct updater        *u   = arg;
	struct zos_skill_delta d[] = { { "induction", 0.001 },
		{ "cases", -0.001 } };
	char                   err[128];

	for (int i = 0; i < 500; i++) {
		if (zos_skills_update(u->s, d, 2, 0, NULL, err, sizeof(err)) ==
		    ZOS_SKILLS_OK) {
			u->acked++;
		}
		zos_skill_vector_unref(zos_skills_get(u->s));
	}
	return NULL;
}

Test(skills, concurrent_updates_lose_nothing)
{
	struct zos_skills        s;
	struct updater           u[8];
	pthread_t                t[8];
	struct zos_skill_vector *v;
	unsigned                 acked = 0;

	setup(&s);
	for (int i = 0; i < 8; i++) {
		u[i] = (struct updater) { &s, 0 };
		pthread_create(&t[i], NULL, updater_main, &u[i]);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		acked += u[i].acked;
	}
	v = zos_skills_get(&s);
	cr_assert_eq(acked, 8 * 500);
	cr_assert_eq(find(v, "induction")->attempts, acked);
	cr_assert_eq(find(v, "cases")->attempts, acked);
	cr_assert_eq(v->version, acked);
	zos_skill_vector_unref(v);
	zos_skills_finish(&s);
}

Test(skills, a_restored_vector_keeps_its_version_attempts_and_order)
{
	const char              *names[]    = { "zeta", "alpha", "mid_1" };
	double                   levels[]   = { 0.125, 1.0, 0.0 };
	uint64_t                 attempts[] = { 3, 0, 41 };
	struct zos_skill_vector *v, *now;
	struct zos_skills        s;
	struct zos_skill_delta   d = { "alpha", -0.5 };
	char                     err[128];

	cr_assert_eq(zos_skill_vector_restore(
	                 3, names, levels, attempts, 17, &v, err, sizeof(err)),
	    ZOS_SKILLS_OK, "%s", err);
	cr_assert_eq(v->version, 17);
	cr_assert_eq(atomic_load(&v->refs), 1);
	for (size_t i = 0; i < 3; i++) {
		cr_assert_str_eq(v->skills[i].name, names[i]);
		cr_assert_eq(v->skills[i].level, levels[i]);
		cr_assert_eq(v->skills[i].attempts, attempts[i]);
	}
	/* Installed as it is, and versions go on from there. */
	zos_lock_domain_init(&domain_for_test, true, NULL, NULL);
	cr_assert_eq(zos_skills_init(&s, &domain_for_test, v), 0);
	now = zos_skills_get(&s);
	cr_assert_eq(now, v);
	cr_assert_eq(now->version, 17);
	zos_skill_vector_unref(now);
	cr_assert_eq(zos_skills_update(&s, &d, 1, 17, &now, err, sizeof(err)),
	    ZOS_SKILLS_OK, "%s", err);
	cr_assert_eq(now->version, 18);
	cr_assert_eq(now->skills[1].attempts, 1);
	cr_assert_eq(now->skills[1].level, 0.5);
	zos_skill_vector_unref(now);
	zos_skills_finish(&s);
}

Test(skills, a_restored_vector_is_checked_like_a_file)
{
	const char *good[]      = { "a", "b" };
	const char *bad_name[]  = { "a", "B" };
	const char *twice[]     = { "a", "a" };
	const char *null[]      = { "a", NULL };
	const char *long_name[] = { "a",
		"a234567890123456789012345678901234567890123456789012345678901"
		"2345" };
	double      ok[]        = { 0.5, 0.5 };
	double      high[]      = { 0.5, 1.5 };
	double      nan_[]      = { 0.5, NAN };
	uint64_t    attempts[]  = { 0, 0 };
	struct {
		const char        *what;
		size_t             n;
		const char *const *names;
		const double      *levels;
		const char        *message;
	} cases[] = {
		{ "no skills", 0, good, ok, "0 skills" },
		{ "too many", ZOS_SKILLS_MAX + 1, good, ok, "skills" },
		{ "bad name", 2, bad_name, ok, "bad name" },
		{ "null name", 2, null, ok, "bad name" },
		{ "65-byte name", 2, long_name, ok, "bad name" },
		{ "repeated", 2, twice, ok, "twice" },
		{ "level above 1", 2, good, high, "[0, 1]" },
		{ "level NaN", 2, good, nan_, "[0, 1]" },
	};
	struct zos_skill_vector *v;
	char                     err[128];

	cr_assert_eq(strlen(long_name[1]), ZOS_SKILL_NAME_MAX + 1);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		v = (struct zos_skill_vector *) 1;
		cr_assert_eq(
		    zos_skill_vector_restore(cases[i].n, cases[i].names,
		        cases[i].levels, attempts, 1, &v, err, sizeof(err)),
		    ZOS_SKILLS_INVALID, "%s", cases[i].what);
		cr_assert_null(v, "%s", cases[i].what);
		cr_assert(strstr(err, cases[i].message) != NULL, "%s: %s",
		    cases[i].what, err);
	}
}
