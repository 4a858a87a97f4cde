/* The methods the tools know: every zos.v1 and zrpc.v1 method, by name. */
#include <criterion/criterion.h>
#include <string.h>

#include "methods.h"
#include "zos/v1/zos.pb-c.h"
#include "zrpc/v1/health.pb-c.h"

Test(methods, a_method_is_found_by_any_spelling_of_its_name)
{
	const struct zrpc_method *m =
	    zos_tools_find_method("/zos.v1.Skills/Get");

	cr_assert_not_null(m);
	cr_assert_str_eq(m->path, "/zos.v1.Skills/Get");
	cr_assert_eq(m->input, &zos__v1__get_skills_request__descriptor);
	cr_assert_eq(m->output, &zos__v1__skill_vector__descriptor);
	cr_assert_eq(zos_tools_find_method("zos.v1.Skills/Get"), m);
	cr_assert_eq(zos_tools_find_method("zos.v1.Skills.Get"), m);
	m = zos_tools_find_method("zrpc.v1.Health/Check");
	cr_assert_not_null(m);
	cr_assert_eq(m->output, &zrpc__v1__health_check_response__descriptor);
	cr_assert_not_null(
	    zos_tools_find_method("/zrpc.v1.Reflection/ListServices"));
	cr_assert_not_null(
	    zos_tools_find_method("/zos.v1.ModelBackend/Generate"));
}

Test(methods, unknown_or_partial_names_are_not_found)
{
	const char *names[] = { "", "/", "zos.v1.Skills", "zos.v1.Skills/",
		"/zos.v1.Skills/get", "/zos.v1.Skill/Get",
		"/zos.v1.SkillsX/Get", "/zos.v1.Skills/GetX",
		"zos.v1.Skills//Get", "Get", "/zos.v1.Skills:Get" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		cr_assert_null(
		    zos_tools_find_method(names[i]), "%s", names[i]);
	}
	cr_assert_null(zos_tools_find_method(NULL));
}

Test(methods, every_listed_method_is_found_by_its_path)
{
	size_t                                 n, total = 0;
	const struct zrpc_service_desc *const *services =
	    zos_tools_services(&n);
	const char *expected[] = { "zos.v1.Skills", "zos.v1.Session",
		"zos.v1.Routing", "zos.v1.Cache", "zos.v1.Assistant",
		"zos.v1.ModelBackend", "zrpc.v1.Health",
		"zrpc.v1.Reflection" };

	cr_assert_eq(n, sizeof(expected) / sizeof(expected[0]));
	for (size_t s = 0; s < n; s++) {
		cr_assert_str_eq(services[s]->name, expected[s]);
		for (size_t m = 0; m < services[s]->n_methods; m++) {
			cr_assert_eq(zos_tools_find_method(
			                 services[s]->methods[m].path),
			    &services[s]->methods[m]);
			total++;
		}
	}
	cr_assert_eq(total, 3 + 5 + 3 + 4 + 1 + 1 + 1 + 3);
}
