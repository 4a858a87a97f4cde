/*
 * proto3 JSON through the descriptors: every zos.v1 (and zrpc.v1) message
 * filled in, printed, parsed back and packed to the same bytes; every
 * scalar type, bytes, enums, maps, oneofs and proto2 presence against the
 * exact JSON expected; errors that name the field; and every allocation
 * failure of pbjson.c, which is an error and leaks nothing.
 */
#include <criterion/criterion.h>
#include <json-c/json.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "methods.h"
#include "pbjson.h"
#include "pbjson_legacy.pb-c.h"
#include "pbjson_test.pb-c.h"
#include "zos/v1/zos.pb-c.h"
#include "zrpc/v1/envelope.pb-c.h"
#include "zrpc/v1/health.pb-c.h"
#include "zrpc/v1/reflection.pb-c.h"

/*
 * Allocation failure injection. The test is linked with ld --wrap=malloc
 * and --wrap=calloc, so the calls in this file and in pbjson.c (not those
 * inside json-c or libc) come here. When fail_countdown is N > 0, the Nth
 * allocation from then on returns NULL and the countdown stays at 0. Each
 * Criterion test runs in its own process, so the state is per test.
 */
static unsigned fail_countdown;

void *__real_malloc(size_t size);
void *__real_calloc(size_t count, size_t size);
void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t count, size_t size);

static bool
fail_now(void)
{
	return fail_countdown > 0 && --fail_countdown == 0;
}

void *
__wrap_malloc(size_t size)
{
	return fail_now() ? NULL : __real_malloc(size);
}

void *
__wrap_calloc(size_t count, size_t size)
{
	return fail_now() ? NULL : __real_calloc(count, size);
}

/* ---------------------------------------------------------------------
 * Filling any message through its descriptor
 * --------------------------------------------------------------------- */

static void fill_message(
    ProtobufCMessage *m, unsigned seed, int depth, unsigned pick);

static ProtobufCMessage *
new_message(const ProtobufCMessageDescriptor *desc)
{
	ProtobufCMessage *m = malloc(desc->sizeof_message);

	cr_assert_not_null(m);
	protobuf_c_message_init(desc, m);
	return m;
}

static size_t
element_size(ProtobufCType type)
{
	switch (type) {
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
	case PROTOBUF_C_TYPE_DOUBLE:
		return 8;
	case PROTOBUF_C_TYPE_STRING:
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(void *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	default:
		return 4;
	}
}

/* A map field's entry type (named "...Entry", fields key and value). */
static const ProtobufCMessageDescriptor *
map_entry(const ProtobufCFieldDescriptor *f)
{
	const ProtobufCMessageDescriptor *d = f->descriptor;
	size_t                            n;

	if (f->label != PROTOBUF_C_LABEL_REPEATED ||
	    f->type != PROTOBUF_C_TYPE_MESSAGE || d->n_fields != 2) {
		return NULL;
	}
	n = strlen(d->short_name);
	if (n < 5 || strcmp(d->short_name + n - 5, "Entry") != 0 ||
	    strcmp(d->fields[0].name, "key") != 0 ||
	    strcmp(d->fields[1].name, "value") != 0) {
		return NULL;
	}
	return d;
}

/* A value other than the default of F's type, different for each SEED;
 * 64-bit values are beyond 2^53, so a double would lose them. */
static void
fill_value(const ProtobufCFieldDescriptor *f, void *member, unsigned seed,
    int depth, unsigned pick)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
		*(int32_t *) member = -(int32_t) (seed * 1000 + 7);
		break;
	case PROTOBUF_C_TYPE_SINT32:
		*(int32_t *) member = (int32_t) seed * 77 - 1000001;
		break;
	case PROTOBUF_C_TYPE_SFIXED32:
		*(int32_t *) member = INT32_MIN + (int32_t) seed;
		break;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		*(uint32_t *) member = UINT32_MAX - seed;
		break;
	case PROTOBUF_C_TYPE_INT64:
		*(int64_t *) member = INT64_MIN + seed;
		break;
	case PROTOBUF_C_TYPE_SINT64:
		*(int64_t *) member = -9007199254740993LL - seed;
		break;
	case PROTOBUF_C_TYPE_SFIXED64:
		*(int64_t *) member = INT64_MAX - seed;
		break;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		*(uint64_t *) member = UINT64_MAX - seed;
		break;
	case PROTOBUF_C_TYPE_FLOAT:
		*(float *) member = 0.1f * (float) (seed + 1);
		break;
	case PROTOBUF_C_TYPE_DOUBLE:
		*(double *) member = (seed + 1) / 3.0;
		break;
	case PROTOBUF_C_TYPE_BOOL:
		*(protobuf_c_boolean *) member = 1;
		break;
	case PROTOBUF_C_TYPE_ENUM: {
		const ProtobufCEnumDescriptor *e = f->descriptor;
		unsigned                       k = seed % (e->n_values - 1);

		for (unsigned i = 0; i < e->n_values; i++) {
			if (e->values[i].value != 0 && k-- == 0) {
				*(int *) member = e->values[i].value;
			}
		}
		break;
	}
	case PROTOBUF_C_TYPE_STRING: {
		char *s = malloc(64);

		cr_assert_not_null(s);
		snprintf(s, 64, "s%u \"q\" \\ \n\t é ✓ /", seed);
		*(char **) member = s;
		break;
	}
	case PROTOBUF_C_TYPE_BYTES: {
		ProtobufCBinaryData *b  = member;
		const uint8_t pattern[] = { 0x00, 0xff, 0x80, 0x3e, 0x3f };

		b->len  = seed % 5 + 1;
		b->data = malloc(b->len);
		cr_assert_not_null(b->data);
		for (size_t i = 0; i < b->len; i++) {
			b->data[i] = (uint8_t) (pattern[i] + seed);
		}
		break;
	}
	case PROTOBUF_C_TYPE_MESSAGE: {
		ProtobufCMessage *sub = new_message(f->descriptor);

		fill_message(sub, seed + 1, depth, pick);
		*(ProtobufCMessage **) member = sub;
		break;
	}
	}
}

/*
 * Fills every field of M with a value other than its default: repeated
 * fields and maps with two elements, message fields DEPTH levels down, and
 * of each oneof the member that PICK selects.
 */
static void
fill_message(ProtobufCMessage *m, unsigned seed, int depth, unsigned pick)
{
	const ProtobufCMessageDescriptor *desc = m->descriptor;

	for (unsigned i = 0; i < desc->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &desc->fields[i];
		char *member                      = (char *) m + f->offset;
		const ProtobufCMessageDescriptor *entry = map_entry(f);

		if (f->type == PROTOBUF_C_TYPE_MESSAGE && entry == NULL &&
		    depth == 0) {
			continue;
		}
		if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) != 0) {
			unsigned index = 0, size = 0;

			for (unsigned j = 0; j < desc->n_fields; j++) {
				if (desc->fields[j].quantifier_offset ==
				        f->quantifier_offset &&
				    (desc->fields[j].flags &
				        PROTOBUF_C_FIELD_FLAG_ONEOF) != 0) {
					index += j < i;
					size++;
				}
			}
			if (pick % size != index) {
				continue;
			}
			*(uint32_t *) ((char *) m + f->quantifier_offset) =
			    f->id;
			fill_value(f, member, seed, depth - 1, pick);
		} else if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t size = element_size(f->type);
			char  *array;

			if (entry != NULL &&
			    entry->fields[1].type == PROTOBUF_C_TYPE_MESSAGE &&
			    depth == 0) {
				continue;
			}
			array = calloc(2, size);
			cr_assert_not_null(array);
			*(void **) member = array;
			*(size_t *) ((char *) m + f->quantifier_offset) = 2;
			for (unsigned k = 0; k < 2; k++) {
				ProtobufCMessage *e;

				if (entry == NULL) {
					fill_value(f, array + k * size,
					    seed + k, depth - 1, pick);
					continue;
				}
				e = new_message(entry);
				if (entry->fields[0].type ==
				    PROTOBUF_C_TYPE_BOOL) {
					*(protobuf_c_boolean *) ((char *) e +
					    entry->fields[0].offset) = k;
				} else {
					fill_value(&entry->fields[0],
					    (char *) e +
					        entry->fields[0].offset,
					    seed + k, depth - 1, pick);
				}
				fill_value(&entry->fields[1],
				    (char *) e + entry->fields[1].offset,
				    seed + k, depth - 1, pick);
				((ProtobufCMessage **) array)[k] = e;
			}
		} else {
			fill_value(f, member, seed, depth - 1, pick);
			if (f->label == PROTOBUF_C_LABEL_OPTIONAL &&
			    f->type != PROTOBUF_C_TYPE_STRING &&
			    f->type != PROTOBUF_C_TYPE_MESSAGE) {
				*(protobuf_c_boolean *) ((char *) m +
				    f->quantifier_offset) = 1;
			}
		}
	}
}

/* ---------------------------------------------------------------------
 * Round trips
 * --------------------------------------------------------------------- */

static uint8_t *
pack(const ProtobufCMessage *m, size_t *len)
{
	uint8_t *bytes;

	*len  = protobuf_c_message_get_packed_size(m);
	bytes = malloc(*len + 1);
	cr_assert_not_null(bytes);
	cr_assert_eq(protobuf_c_message_pack(m, bytes), *len);
	return bytes;
}

/*
 * M printed (compact and pretty) parses back to a message that packs to
 * the same bytes and prints to the same text; the text is valid JSON.
 */
static void
assert_round_trip(const ProtobufCMessage *m)
{
	const char *name = m->descriptor->name;
	char        error[512];
	size_t      len, back_len;
	uint8_t    *bytes = pack(m, &len);

	for (int pretty = 0; pretty <= 1; pretty++) {
		char *json = zos_pbjson_print(m, pretty, error, sizeof(error));
		ProtobufCMessage *back;
		uint8_t          *back_bytes;
		char             *again;
		json_object      *check;

		cr_assert_not_null(json, "%s: %s", name, error);
		check = json_tokener_parse(json);
		cr_assert_not_null(
		    check, "%s printed bad JSON: %s", name, json);
		json_object_put(check);
		back = zos_pbjson_parse(
		    m->descriptor, json, error, sizeof(error));
		cr_assert_not_null(back, "%s: %s\n%s", name, error, json);
		back_bytes = pack(back, &back_len);
		cr_assert_eq(back_len, len, "%s: %zu bytes, then %zu\n%s",
		    name, len, back_len, json);
		cr_assert_eq(memcmp(back_bytes, bytes, len), 0,
		    "%s: bytes differ\n%s", name, json);
		again = zos_pbjson_print(back, pretty, error, sizeof(error));
		cr_assert_not_null(again, "%s: %s", name, error);
		cr_assert_str_eq(
		    again, json, "%s: JSON -> protobuf -> JSON", name);
		free(again);
		free(back_bytes);
		protobuf_c_message_free_unpacked(back, NULL);
		free(json);
	}
	free(bytes);
}

/* Fills a message of DESC, checks its round trip, frees it. */
static void
assert_filled_round_trip(
    const ProtobufCMessageDescriptor *desc, unsigned seed, unsigned pick)
{
	ProtobufCMessage *m = new_message(desc);

	fill_message(m, seed, 3, pick);
	assert_round_trip(m);
	protobuf_c_message_free_unpacked(m, NULL);
}

/* Every message of zos/v1/zos.proto (protobuf-c generates no list of a
 * file's messages; the test below checks this one is complete). */
static const ProtobufCMessageDescriptor *const zos_messages[] = {
	&zos__v1__skill__descriptor,
	&zos__v1__skill_vector__descriptor,
	&zos__v1__proof_session__descriptor,
	&zos__v1__model_metrics__descriptor,
	&zos__v1__get_skills_request__descriptor,
	&zos__v1__update_skills_request__descriptor,
	&zos__v1__update_skills_request__deltas_entry__descriptor,
	&zos__v1__reload_skills_request__descriptor,
	&zos__v1__start_session_request__descriptor,
	&zos__v1__get_session_request__descriptor,
	&zos__v1__transition_request__descriptor,
	&zos__v1__reset_session_request__descriptor,
	&zos__v1__list_sessions_request__descriptor,
	&zos__v1__list_sessions_response__descriptor,
	&zos__v1__route_request__descriptor,
	&zos__v1__route_response__descriptor,
	&zos__v1__record_outcome_request__descriptor,
	&zos__v1__record_outcome_response__descriptor,
	&zos__v1__get_routing_metrics_request__descriptor,
	&zos__v1__routing_metrics__descriptor,
	&zos__v1__lookup_request__descriptor,
	&zos__v1__lookup_response__descriptor,
	&zos__v1__store_request__descriptor,
	&zos__v1__store_response__descriptor,
	&zos__v1__cache_stats_request__descriptor,
	&zos__v1__cache_stats__descriptor,
	&zos__v1__clear_cache_request__descriptor,
	&zos__v1__clear_cache_response__descriptor,
	&zos__v1__complete_request__descriptor,
	&zos__v1__complete_response__descriptor,
	&zos__v1__generate_request__descriptor,
	&zos__v1__generate_response__descriptor,
};

#define N_ZOS_MESSAGES (sizeof(zos_messages) / sizeof(zos_messages[0]))

/* Adds DESC and every message type its fields reach to SET. */
static void
reach(const ProtobufCMessageDescriptor *desc,
    const ProtobufCMessageDescriptor **set, size_t *n, size_t cap)
{
	for (size_t i = 0; i < *n; i++) {
		if (set[i] == desc) {
			return;
		}
	}
	cr_assert_lt(*n, cap);
	set[(*n)++] = desc;
	for (unsigned i = 0; i < desc->n_fields; i++) {
		if (desc->fields[i].type == PROTOBUF_C_TYPE_MESSAGE) {
			reach(desc->fields[i].descriptor, set, n, cap);
		}
	}
}

Test(pbjson, the_list_of_zos_messages_is_every_message_the_services_reach)
{
	const ProtobufCMessageDescriptor      *set[128];
	size_t                                 n = 0, n_services;
	const struct zrpc_service_desc *const *services =
	    zos_tools_services(&n_services);

	for (size_t s = 0; s < n_services; s++) {
		if (strncmp(services[s]->name, "zos.v1.", 7) != 0) {
			continue;
		}
		for (size_t m = 0; m < services[s]->n_methods; m++) {
			reach(services[s]->methods[m].input, set, &n, 128);
			reach(services[s]->methods[m].output, set, &n, 128);
		}
	}
	cr_assert_eq(
	    n, N_ZOS_MESSAGES, "%zu reachable, %zu listed", n, N_ZOS_MESSAGES);
	for (size_t i = 0; i < n; i++) {
		bool listed = false;

		for (size_t j = 0; j < N_ZOS_MESSAGES; j++) {
			listed = listed || zos_messages[j] == set[i];
		}
		cr_assert(listed, "%s is not in the list", set[i]->name);
	}
}

Test(pbjson, every_zos_message_filled_round_trips_to_the_same_bytes)
{
	for (size_t i = 0; i < N_ZOS_MESSAGES; i++) {
		for (unsigned seed = 0; seed < 3; seed++) {
			assert_filled_round_trip(zos_messages[i], seed, 0);
		}
	}
}

Test(pbjson, every_zos_message_at_its_defaults_prints_as_an_empty_object)
{
	for (size_t i = 0; i < N_ZOS_MESSAGES; i++) {
		ProtobufCMessage *m = new_message(zos_messages[i]);
		char              error[256];
		char             *json = zos_pbjson_print(m, true, error, 256);

		cr_assert_str_eq(json, "{}", "%s", zos_messages[i]->name);
		assert_round_trip(m);
		free(json);
		protobuf_c_message_free_unpacked(m, NULL);
	}
}

Test(pbjson, zrpc_messages_round_trip_too)
{
	const ProtobufCMessageDescriptor *const descs[] = {
		&zrpc__v1__request__descriptor,
		&zrpc__v1__response__descriptor,
		&zrpc__v1__health_check_request__descriptor,
		&zrpc__v1__health_check_response__descriptor,
		&zrpc__v1__list_services_request__descriptor,
		&zrpc__v1__list_services_response__descriptor,
		&zrpc__v1__service_info__descriptor,
		&zrpc__v1__method_info__descriptor,
	};

	for (size_t i = 0; i < sizeof(descs) / sizeof(descs[0]); i++) {
		assert_filled_round_trip(descs[i], (unsigned) i, 0);
	}
}

Test(pbjson, every_scalar_repeated_map_and_oneof_type_round_trips)
{
	for (unsigned seed = 0; seed < 4; seed++) {
		assert_filled_round_trip(
		    &ztest__pbjson__scalars__descriptor, seed, 0);
		assert_filled_round_trip(
		    &ztest__pbjson__repeated__descriptor, seed, 0);
		assert_filled_round_trip(
		    &ztest__pbjson__maps__descriptor, seed, 0);
		assert_filled_round_trip(
		    &ztest__pbjson__legacy__descriptor, seed, 0);
	}
	for (unsigned pick = 0; pick < 6; pick++) {
		assert_filled_round_trip(
		    &ztest__pbjson__choice__descriptor, pick, pick);
	}
}

/* ---------------------------------------------------------------------
 * The exact JSON
 * --------------------------------------------------------------------- */

/* Parses JSON into a message of DESC, asserting success. */
static ProtobufCMessage *
parse_ok(const ProtobufCMessageDescriptor *desc, const char *json)
{
	char              error[512];
	ProtobufCMessage *m =
	    zos_pbjson_parse(desc, json, error, sizeof(error));

	cr_assert_not_null(m, "%s: %s", json, error);
	cr_assert_str_eq(error, "", "no error text on success");
	return m;
}

/* Asserts that JSON fails to parse as DESC with exactly ERROR_TEXT. */
static void
assert_parse_error(const ProtobufCMessageDescriptor *desc, const char *json,
    const char *expected)
{
	char              error[512];
	ProtobufCMessage *m =
	    zos_pbjson_parse(desc, json, error, sizeof(error));

	cr_assert_null(m, "%s parsed", json);
	cr_assert_str_eq(error, expected, "for %s", json);
}

/* Asserts that M prints (compact) as EXPECTED. */
static void
assert_prints(const ProtobufCMessage *m, const char *expected)
{
	char  error[256];
	char *json = zos_pbjson_print(m, false, error, sizeof(error));

	cr_assert_not_null(json, "%s", error);
	cr_assert_str_eq(json, expected);
	free(json);
}

/* Parses JSON as DESC and asserts that it prints as EXPECTED. */
static void
assert_reprints(const ProtobufCMessageDescriptor *desc, const char *json,
    const char *expected)
{
	ProtobufCMessage *m = parse_ok(desc, json);

	assert_prints(m, expected);
	protobuf_c_message_free_unpacked(m, NULL);
}

Test(pbjson, scalars_print_in_the_proto3_mapping)
{
	Ztest__Pbjson__Scalars s      = ZTEST__PBJSON__SCALARS__INIT;
	Ztest__Pbjson__Inner   inner  = ZTEST__PBJSON__INNER__INIT;
	uint8_t                data[] = { 0x00, 0xff, 0xfe };

	s.i32                 = -5;
	s.s32                 = -2147483648;
	s.sf32                = 7;
	s.i64                 = -9007199254740993LL;
	s.s64                 = INT64_MIN;
	s.sf64                = 42;
	s.u32                 = UINT32_MAX;
	s.f32                 = 9;
	s.u64                 = UINT64_MAX;
	s.f64                 = 1;
	s.fl                  = 0.1f;
	s.db                  = 0.1;
	s.flag                = 1;
	s.text                = "h\xc3\xa9 \"q\" \\ / \n";
	s.data                = (ProtobufCBinaryData) { 3, data };
	s.color               = ZTEST__PBJSON__COLOR__GREEN;
	s.inner               = &inner;
	inner.name            = "x";
	s.snake_case_name     = "snake";
	s.field_with_2_digits = 2;
	assert_prints(&s.base,
	    "{\"i32\":-5,\"s32\":-2147483648,\"sf32\":7,"
	    "\"i64\":\"-9007199254740993\",\"s64\":\"-9223372036854775808\","
	    "\"sf64\":\"42\",\"u32\":4294967295,\"f32\":9,"
	    "\"u64\":\"18446744073709551615\",\"f64\":\"1\",\"fl\":0.1,"
	    "\"db\":0.1,\"flag\":true,\"text\":\"h\xc3\xa9 \\\"q\\\" \\\\ / "
	    "\\n\",\"data\":\"AP/+\",\"color\":\"GREEN\","
	    "\"inner\":{\"name\":\"x\"},\"snakeCaseName\":\"snake\","
	    "\"fieldWith2Digits\":2}");
	assert_round_trip(&s.base);
}

Test(pbjson, fields_at_their_default_are_left_out)
{
	Ztest__Pbjson__Scalars s     = ZTEST__PBJSON__SCALARS__INIT;
	Ztest__Pbjson__Inner   inner = ZTEST__PBJSON__INNER__INIT;

	assert_prints(&s.base, "{}");
	s.text  = "";
	s.color = ZTEST__PBJSON__COLOR__COLOR_UNSPECIFIED;
	s.db    = 0.0;
	assert_prints(&s.base, "{}");
	s.inner = &inner;
	assert_prints(&s.base, "{\"inner\":{}}");
}

/* Python's json_format prints -0.0 (and "-0" would read back as 0). */
Test(pbjson, negative_zero_is_kept_as_minus_zero_point_zero)
{
	Ztest__Pbjson__Scalars  s    = ZTEST__PBJSON__SCALARS__INIT;
	Ztest__Pbjson__Repeated r    = ZTEST__PBJSON__REPEATED__INIT;
	double                  db[] = { -0.0, 0.0, -1.5 };
	float                   fl[] = { -0.0f };

	s.db = -0.0;
	assert_prints(&s.base, "{\"db\":-0.0}");
	s.db = 0.0;
	s.fl = -0.0f;
	assert_prints(&s.base, "{\"fl\":-0.0}");
	r.n_db = 3;
	r.db   = db;
	r.n_fl = 1;
	r.fl   = fl;
	assert_prints(&r.base, "{\"fl\":[-0.0],\"db\":[-0.0,0,-1.5]}");
	assert_reprints(&ztest__pbjson__scalars__descriptor,
	    "{\"db\": -0.0, \"fl\": \"-0\"}", "{\"fl\":-0.0,\"db\":-0.0}");
}

/* Asserts that M is refused with ERROR. */
static void
assert_print_refused(const ProtobufCMessage *m, const char *expected)
{
	char  error[256];
	char *json = zos_pbjson_print(m, true, error, sizeof(error));

	cr_assert_null(json, "printed %s", json);
	cr_assert_str_eq(error, expected);
}

Test(pbjson, a_string_that_is_not_utf8_is_refused_naming_the_field)
{
	Ztest__Pbjson__Scalars  s       = ZTEST__PBJSON__SCALARS__INIT;
	Ztest__Pbjson__Inner    inner   = ZTEST__PBJSON__INNER__INIT;
	Ztest__Pbjson__Repeated r       = ZTEST__PBJSON__REPEATED__INIT;
	char                   *texts[] = { "ok", "bad \xc3(" };
	const char             *bad[]   = { "\xff", "\xc0\xaf", /* overlong */
		              "\xed\xa0\x80", /* a surrogate */
		              "\xf4\x90\x80\x80", /* above U+10FFFF */ "\xe2\x82" };
	const char *suffix = ": string field holds invalid UTF-8, which JSON "
	                     "cannot carry (a bytes field would)";
	char        expected[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		s.text = (char *) bad[i];
		snprintf(expected, sizeof(expected), "text%s", suffix);
		assert_print_refused(&s.base, expected);
	}
	s.text     = "fine \xe2\x82\xac \xf0\x9f\x98\x80";
	s.inner    = &inner;
	inner.name = "\x80";
	snprintf(expected, sizeof(expected), "inner.name%s", suffix);
	assert_print_refused(&s.base, expected);
	r.n_text = 2;
	r.text   = texts;
	snprintf(expected, sizeof(expected), "text[1]%s", suffix);
	assert_print_refused(&r.base, expected);
}

Test(pbjson, a_map_key_that_is_not_utf8_is_refused)
{
	Ztest__Pbjson__Maps              m = ZTEST__PBJSON__MAPS__INIT;
	Ztest__Pbjson__Maps__StrStrEntry e =
	    ZTEST__PBJSON__MAPS__STR_STR_ENTRY__INIT;
	Ztest__Pbjson__Maps__StrStrEntry *entries[] = { &e };

	e.key       = "k\xfe";
	e.value     = "v";
	m.n_str_str = 1;
	m.str_str   = entries;
	assert_print_refused(&m.base,
	    "str_str[0]: string field holds invalid UTF-8, which JSON cannot "
	    "carry (a bytes field would)");
	e.key   = "k";
	e.value = "\xfe";
	assert_print_refused(&m.base,
	    "str_str[0]: string field holds invalid UTF-8, which JSON cannot "
	    "carry (a bytes field would)");
}

Test(pbjson, a_key_given_twice_in_one_object_is_refused)
{
	const ProtobufCMessageDescriptor *d =
	    &zos__v1__get_session_request__descriptor;

	assert_parse_error(d, "{\"id\": \"a\", \"id\": \"b\"}",
	    "bad JSON at line 1, column 13: key \"id\" given twice in one "
	    "object");
	/* The same key once escaped. */
	assert_parse_error(d, "{\"id\": \"a\",\n \"\\u0069d\": \"b\"}",
	    "bad JSON at line 2, column 2: key \"id\" given twice in one "
	    "object");
	/* In a nested object, and a key that is not a field at all. */
	assert_parse_error(&zos__v1__skill_vector__descriptor,
	    "{\"skills\": [{\"name\": \"a\"}, {\"x\": 1, \"level\": 1, "
	    "\"x\": 2}]}",
	    "bad JSON at line 1, column 49: key \"x\" given twice in one "
	    "object");
	/* The same key in two objects, and keys that are values, are fine. */
	ProtobufCMessage *m = parse_ok(&zos__v1__skill_vector__descriptor,
	    "{\"skills\": [{\"name\": \"name\"}, {\"name\": \"name\"}]}");
	protobuf_c_message_free_unpacked(m, NULL);
	m = parse_ok(&ztest__pbjson__maps__descriptor,
	    "{\"strStr\": {\"a\": \"a\", \"b\": \"a\", \"a,\": \"\\\"a\"}}");
	protobuf_c_message_free_unpacked(m, NULL);
	/* Lone surrogates are U+FFFD to json-c: one key twice. */
	assert_parse_error(&ztest__pbjson__maps__descriptor,
	    "{\"strStr\": {\"\\ud800\": \"1\", \"\\udc00\": \"2\"}}",
	    "bad JSON at line 1, column 28: key \"\xef\xbf\xbd\" given twice "
	    "in one object");
	/* A map's keys are object keys too. */
	assert_parse_error(&ztest__pbjson__maps__descriptor,
	    "{\"strStr\": {\"a\": \"1\", \"a\": \"2\"}}",
	    "bad JSON at line 1, column 23: key \"a\" given twice in one "
	    "object");
}

Test(pbjson, emit_defaults_prints_fields_without_presence)
{
	Ztest__Pbjson__Inner               inner = ZTEST__PBJSON__INNER__INIT;
	const struct zos_pbjson_print_opts opts  = { .emit_defaults = true };
	char                               error[256];
	char                              *json;

	json = zos_pbjson_print_ext(&inner.base, &opts, error, sizeof(error));
	cr_assert_str_eq(json, "{\"name\":\"\",\"n\":0}");
	free(json);

	ProtobufCMessage *m =
	    parse_ok(&zos__v1__skill_vector__descriptor, "{\"skills\": [{}]}");
	json = zos_pbjson_print_ext(m, &opts, error, sizeof(error));
	cr_assert_str_eq(json,
	    "{\"skills\":[{\"name\":\"\",\"level\":0,\"attempts\":\"0\"}],"
	    "\"version\":\"0\"}");
	free(json);
	protobuf_c_message_free_unpacked(m, NULL);

	m    = parse_ok(&ztest__pbjson__maps__descriptor, "{}");
	json = zos_pbjson_print_ext(m, &opts, error, sizeof(error));
	cr_assert(strstr(json, "\"strStr\":{}") != NULL, "%s", json);
	free(json);
	protobuf_c_message_free_unpacked(m, NULL);

	/* Without the option, nothing. */
	assert_prints(&inner.base, "{}");
}

Test(pbjson, pretty_output_is_indented_by_two_spaces)
{
	ProtobufCMessage *m = parse_ok(&zos__v1__skill_vector__descriptor,
	    "{\"skills\":[{\"name\":\"induction\",\"level\":0.5},{}],"
	    "\"version\":\"3\"}");
	char              error[256];
	char *json = zos_pbjson_print(m, true, error, sizeof(error));

	cr_assert_str_eq(json,
	    "{\n"
	    "  \"skills\": [\n"
	    "    {\n"
	    "      \"name\": \"induction\",\n"
	    "      \"level\": 0.5\n"
	    "    },\n"
	    "    {}\n"
	    "  ],\n"
	    "  \"version\": \"3\"\n"
	    "}");
	free(json);
	protobuf_c_message_free_unpacked(m, NULL);
}

Test(pbjson, integers_are_read_from_numbers_and_strings)
{
	const ProtobufCMessageDescriptor *d =
	    &ztest__pbjson__scalars__descriptor;

	assert_reprints(d,
	    "{\"i64\": -9223372036854775808, \"u64\": 18446744073709551615,"
	    " \"s64\": \"-9007199254740993\", \"f64\": \"9007199254740993\","
	    " \"i32\": \"-12\", \"u32\": \"4294967295\", \"sf32\": 1e2,"
	    " \"s32\": \"-3e1\", \"f32\": 7.0, \"sf64\": -0}",
	    "{\"i32\":-12,\"s32\":-30,\"sf32\":100,"
	    "\"i64\":\"-9223372036854775808\",\"s64\":\"-9007199254740993\","
	    "\"u32\":4294967295,\"f32\":7,\"u64\":\"18446744073709551615\","
	    "\"f64\":\"9007199254740993\"}");
	assert_reprints(d, "{\"i32\": \"-0\", \"u64\": \"0\"}", "{}");
}

Test(pbjson, integers_out_of_range_or_with_a_fraction_are_errors)
{
	const ProtobufCMessageDescriptor *d =
	    &ztest__pbjson__scalars__descriptor;

	assert_parse_error(d, "{\"i32\": 2147483648}",
	    "i32: 2147483648 is out of range for int32");
	assert_parse_error(d, "{\"sf32\": -2147483649}",
	    "sf32: -2147483649 is out of range for sfixed32");
	assert_parse_error(
	    d, "{\"u32\": -1}", "u32: -1 is out of range for uint32");
	assert_parse_error(
	    d, "{\"u64\": \"-1\"}", "u64: -1 is out of range for uint64");
	assert_parse_error(d, "{\"u64\": \"18446744073709551616\"}",
	    "u64: 18446744073709551616 is out of range for uint64");
	assert_parse_error(d, "{\"i64\": \"9223372036854775808\"}",
	    "i64: 9223372036854775808 is out of range for int64");
	assert_parse_error(
	    d, "{\"i32\": 1.5}", "i32: expected an integer (int32), got 1.5");
	assert_parse_error(d, "{\"i64\": \"12x\"}",
	    "i64: expected an integer (int64), got the string \"12x\"");
	assert_parse_error(
	    d, "{\"u32\": 1e20}", "u32: 1e20 is out of range for uint32");
	assert_parse_error(d, "{\"s64\": true}",
	    "s64: expected an integer (sint64), got a boolean");
}

Test(pbjson, floats_take_nan_and_infinities_as_strings)
{
	ProtobufCMessage *m = parse_ok(&ztest__pbjson__repeated__descriptor,
	    "{\"fl\": [\"NaN\", \"Infinity\", \"-Infinity\", 1, \"2.5\"],"
	    " \"db\": [\"NaN\", \"-Infinity\", 1e308, -5e-324, 0.1]}");
	Ztest__Pbjson__Repeated *r = (Ztest__Pbjson__Repeated *) m;

	cr_assert_eq(r->n_fl, 5);
	cr_assert(isnan(r->fl[0]));
	cr_assert(isinf(r->fl[1]) && r->fl[1] > 0);
	cr_assert(isinf(r->fl[2]) && r->fl[2] < 0);
	cr_assert_eq(r->fl[4], 2.5f);
	cr_assert(isnan(r->db[0]));
	cr_assert_eq(r->db[2], 1e308);
	assert_prints(m,
	    "{\"fl\":[\"NaN\",\"Infinity\",\"-Infinity\",1,2.5],"
	    "\"db\":[\"NaN\",\"-Infinity\",1e+308,-5e-324,"
	    "0.1]}");
	assert_round_trip(m);
	protobuf_c_message_free_unpacked(m, NULL);
}

Test(pbjson, float_errors_name_the_field)
{
	const ProtobufCMessageDescriptor *d =
	    &ztest__pbjson__scalars__descriptor;

	assert_parse_error(
	    d, "{\"fl\": 1e39}", "fl: 1e39 is out of range for float");
	assert_parse_error(d, "{\"db\": 1e999}",
	    "db: 1e999 is out of range for double (write infinities as the "
	    "strings \"Infinity\" and \"-Infinity\")");
	assert_parse_error(d, "{\"db\": NaN}",
	    "db: NaN is not a JSON number; write it as the string \"NaN\"");
	assert_parse_error(d, "{\"db\": \"nan\"}",
	    "db: expected a number (double), got the string \"nan\"");
	assert_parse_error(
	    d, "{\"fl\": [1]}", "fl: expected a number (float), got an array");
}

Test(pbjson, bools_strings_and_bytes)
{
	const ProtobufCMessageDescriptor *d =
	    &ztest__pbjson__scalars__descriptor;
	ProtobufCMessage       *m;
	Ztest__Pbjson__Scalars *s;

	m = parse_ok(d,
	    "{\"flag\": true, \"text\": \"\\u00e9\\ud83d\\ude00\","
	    " \"data\": \"AP8\"}");
	s = (Ztest__Pbjson__Scalars *) m;
	cr_assert_eq(s->flag, 1);
	cr_assert_str_eq(s->text, "\xc3\xa9\xf0\x9f\x98\x80");
	cr_assert_eq(s->data.len, 2);
	cr_assert_eq(s->data.data[0], 0x00);
	cr_assert_eq(s->data.data[1], 0xff);
	assert_prints(m,
	    "{\"flag\":true,\"text\":\"\xc3\xa9\xf0\x9f\x98\x80\","
	    "\"data\":\"AP8=\"}");
	protobuf_c_message_free_unpacked(m, NULL);

	/* URL-safe base64 too; every length of padding. */
	assert_reprints(d, "{\"data\": \"-_-_\"}", "{\"data\":\"+/+/\"}");
	assert_reprints(d, "{\"data\": \"QQ==\"}", "{\"data\":\"QQ==\"}");
	assert_reprints(d, "{\"data\": \"QUI=\"}", "{\"data\":\"QUI=\"}");
	assert_reprints(d, "{\"data\": \"QUJD\"}", "{\"data\":\"QUJD\"}");
	assert_reprints(d, "{\"data\": \"\", \"flag\": false}", "{}");

	assert_parse_error(d, "{\"flag\": \"true\"}",
	    "flag: expected true or false, got a string");
	assert_parse_error(
	    d, "{\"flag\": 1}", "flag: expected true or false, got a number");
	assert_parse_error(
	    d, "{\"text\": 5}", "text: expected a string, got a number");
	assert_parse_error(d, "{\"text\": \"a\\u0000b\"}",
	    "text: a string field cannot hold a NUL character");
	assert_parse_error(
	    d, "{\"data\": \"Q\"}", "data: \"Q\" is not base64 (bytes)");
	assert_parse_error(
	    d, "{\"data\": \"QQ=\"}", "data: \"QQ=\" is not base64 (bytes)");
	assert_parse_error(d, "{\"data\": \"QQ==QQ==\"}",
	    "data: \"QQ==QQ==\" is not base64 (bytes)");
	assert_parse_error(
	    d, "{\"data\": \"Q Q=\"}", "data: \"Q Q=\" is not base64 (bytes)");
	assert_parse_error(d, "{\"data\": 1}",
	    "data: expected a base64 string (bytes), got a number");
}

Test(pbjson, enums_by_name_or_number)
{
	const ProtobufCMessageDescriptor *d =
	    &ztest__pbjson__scalars__descriptor;

	assert_reprints(d, "{\"color\": \"GREEN\"}", "{\"color\":\"GREEN\"}");
	assert_reprints(d, "{\"color\": 1}", "{\"color\":\"RED\"}");
	assert_reprints(
	    d, "{\"color\": \"INFRARED\"}", "{\"color\":\"INFRARED\"}");
	assert_reprints(d, "{\"color\": -1}", "{\"color\":\"INFRARED\"}");
	/* proto3 enums are open: an unknown number is kept, as a number. */
	assert_reprints(d, "{\"color\": 7}", "{\"color\":7}");
	assert_reprints(d, "{\"color\": \"COLOR_UNSPECIFIED\"}", "{}");
	assert_parse_error(d, "{\"color\": \"BLUE\"}",
	    "color: \"BLUE\" is not a value of ztest.pbjson.Color");
	assert_parse_error(d, "{\"color\": \"green\"}",
	    "color: \"green\" is not a value of ztest.pbjson.Color");
	assert_parse_error(d, "{\"color\": true}",
	    "color: expected a name or number of ztest.pbjson.Color, got a "
	    "boolean");
	assert_reprints(&zos__v1__transition_request__descriptor,
	    "{\"id\": \"s1\", \"to_state\": \"ANALYZING\"}",
	    "{\"id\":\"s1\",\"toState\":\"ANALYZING\"}");
}

Test(pbjson, maps_are_objects_keyed_by_the_key_text)
{
	const ProtobufCMessageDescriptor *d = &ztest__pbjson__maps__descriptor;

	assert_reprints(d,
	    "{\"str_str\": {\"a\": \"1\", \"\": \"empty\"},"
	    " \"i32I64\": {\"-5\": 7, \"6\": \"-8\"},"
	    " \"u64Db\": {\"18446744073709551615\": \"NaN\"},"
	    " \"boolColor\": {\"true\": \"RED\", \"false\": 2},"
	    " \"s64Inner\": {\"-1\": {\"name\": \"n\"}},"
	    " \"f32Bytes\": {\"4294967295\": \"AQI=\"},"
	    " \"strFloat\": {\"x\": 0.5},"
	    " \"sf64Flag\": {\"-9223372036854775808\": true},"
	    " \"u32U64\": {\"0\": \"0\"}}",
	    "{\"strStr\":{\"a\":\"1\",\"\":\"empty\"},"
	    "\"i32I64\":{\"-5\":\"7\",\"6\":\"-8\"},"
	    "\"u64Db\":{\"18446744073709551615\":\"NaN\"},"
	    "\"boolColor\":{\"true\":\"RED\",\"false\":\"GREEN\"},"
	    "\"s64Inner\":{\"-1\":{\"name\":\"n\"}},"
	    "\"f32Bytes\":{\"4294967295\":\"AQI=\"},"
	    "\"strFloat\":{\"x\":0.5},"
	    "\"sf64Flag\":{\"-9223372036854775808\":true},"
	    "\"u32U64\":{\"0\":\"0\"}}");
	assert_reprints(&zos__v1__update_skills_request__descriptor,
	    "{\"deltas\": {\"induction\": 0.25, \"cases\": -0.5},"
	    " \"expectedVersion\": 3}",
	    "{\"deltas\":{\"induction\":0.25,\"cases\":-0.5},"
	    "\"expectedVersion\":\"3\"}");
	assert_reprints(d, "{\"strStr\": {}, \"u32U64\": null}", "{}");
}

Test(pbjson, map_errors_name_the_key)
{
	const ProtobufCMessageDescriptor *d = &ztest__pbjson__maps__descriptor;

	assert_parse_error(d, "{\"i32I64\": {\"x\": 1}}",
	    "i32I64[x]: expected an integer (int32), got the string \"x\"");
	assert_parse_error(d, "{\"boolColor\": {\"yes\": 1}}",
	    "boolColor[yes]: a bool map key is \"true\" or \"false\"");
	assert_parse_error(d, "{\"strStr\": {\"k\": 1}}",
	    "strStr[\"k\"]: expected a string, got a number");
	assert_parse_error(d, "{\"strStr\": {\"k\": null}}",
	    "strStr[\"k\"]: a map value cannot be null");
	assert_parse_error(d,
	    "{\"s64Inner\": {\"5\": {\"child\": {\"x\": 1}}}}",
	    "s64Inner[5].child.x: unknown field of ztest.pbjson.Inner");
	assert_parse_error(d, "{\"strStr\": [\"a\"]}",
	    "strStr: expected an object (a map), got an array");
	assert_parse_error(&zos__v1__update_skills_request__descriptor,
	    "{\"deltas\": {\"induction\": \"lots\"}}",
	    "deltas[\"induction\"]: expected a number (double), got the "
	    "string \"lots\"");
}

Test(pbjson, repeated_fields_are_arrays)
{
	const ProtobufCMessageDescriptor *d =
	    &ztest__pbjson__repeated__descriptor;

	assert_reprints(d,
	    "{\"i32\": [1, \"-2\"], \"text\": [\"a\", \"\"],"
	    " \"inner\": [{}, {\"n\": 3}], \"color\": [\"RED\", 0],"
	    " \"data\": [\"\", \"AA==\"], \"flag\": [false, true]}",
	    "{\"i32\":[1,-2],\"flag\":[false,true],\"text\":[\"a\",\"\"],"
	    "\"data\":[\"\",\"AA==\"],\"color\":[\"RED\",\"COLOR_"
	    "UNSPECIFIED\"],"
	    "\"inner\":[{},{\"n\":3}]}");
	assert_reprints(d, "{\"i32\": [], \"inner\": null}", "{}");
	assert_parse_error(d, "{\"i32\": 1}",
	    "i32: expected an array (repeated), got a number");
	assert_parse_error(d, "{\"text\": [\"a\", null]}",
	    "text[1]: null is not allowed in a repeated field");
	assert_parse_error(d,
	    "{\"inner\": [{\"name\": \"a\"}, {\"n\": \"x\"}]}",
	    "inner[1].n: expected an integer (int32), got the string \"x\"");
	assert_parse_error(&zos__v1__skill_vector__descriptor,
	    "{\"skills\": [{}, {}, {\"level\": \"high\"}]}",
	    "skills[2].level: expected a number (double), got the string "
	    "\"high\"");
	assert_parse_error(&zos__v1__complete_response__descriptor,
	    "{\"session\": {\"state\": \"LOST\"}}",
	    "session.state: \"LOST\" is not a value of zos.v1.ProofState");
}

Test(pbjson, oneof_members_print_when_set_even_at_their_default)
{
	const ProtobufCMessageDescriptor *d =
	    &ztest__pbjson__choice__descriptor;

	assert_reprints(d, "{\"number\": 0}", "{\"number\":\"0\"}");
	assert_reprints(d, "{\"text\": \"\"}", "{\"text\":\"\"}");
	assert_reprints(d, "{\"inner\": {}}", "{\"inner\":{}}");
	assert_reprints(d, "{\"data\": \"\"}", "{\"data\":\"\"}");
	assert_reprints(d, "{\"color\": \"COLOR_UNSPECIFIED\"}",
	    "{\"color\":\"COLOR_UNSPECIFIED\"}");
	assert_reprints(d, "{\"real\": \"-Infinity\", \"plain\": 0}",
	    "{\"real\":\"-Infinity\"}");
	assert_reprints(
	    d, "{\"text\": null, \"number\": 5}", "{\"number\":\"5\"}");
	assert_parse_error(d, "{\"text\": \"a\", \"number\": 1}",
	    "number: only one field of a oneof may be set, and \"text\" is "
	    "set too");
	assert_parse_error(d, "{\"inner\": {\"n\": 1}, \"data\": \"AA==\"}",
	    "data: only one field of a oneof may be set, and \"inner\" is "
	    "set too");
	assert_parse_error(d, "{\"inner\": {\"n\": \"x\"}}",
	    "inner.n: expected an integer (int32), got the string \"x\"");
}

Test(pbjson, proto2_presence_defaults_and_required_fields)
{
	const ProtobufCMessageDescriptor *d =
	    &ztest__pbjson__legacy__descriptor;
	ProtobufCMessage      *m;
	Ztest__Pbjson__Legacy *l;

	assert_reprints(d, "{\"id\": 0}", "{\"id\":0}");
	/* Present, so printed, even at the declared default. */
	assert_reprints(d,
	    "{\"id\": 1, \"big\": \"7\", \"label\": \"none\", \"on\": false,"
	    " \"blob\": \"YWI=\"}",
	    "{\"id\":1,\"label\":\"none\",\"big\":\"7\",\"blob\":\"YWI=\","
	    "\"on\":false}");
	m = parse_ok(d, "{\"id\": 2}");
	l = (Ztest__Pbjson__Legacy *) m;
	cr_assert_str_eq(l->label, "none", "the declared default");
	cr_assert_eq(l->big, 7);
	cr_assert(!l->has_big);
	protobuf_c_message_free_unpacked(m, NULL);
	assert_parse_error(d, "{\"label\": \"x\"}",
	    "id: required field of ztest.pbjson.Legacy is missing");
	assert_parse_error(d, "{\"id\": 1, \"next\": {}}",
	    "next.id: required field of ztest.pbjson.Legacy is missing");
}

Test(pbjson, names_in_proto_or_lower_camel_case)
{
	const ProtobufCMessageDescriptor *d =
	    &ztest__pbjson__scalars__descriptor;

	assert_reprints(d,
	    "{\"snake_case_name\": \"a\", \"field_with_2_digits\": 1}",
	    "{\"snakeCaseName\":\"a\",\"fieldWith2Digits\":1}");
	assert_reprints(d,
	    "{\"snakeCaseName\": \"a\", \"fieldWith2Digits\": 1}",
	    "{\"snakeCaseName\":\"a\",\"fieldWith2Digits\":1}");
	assert_parse_error(d,
	    "{\"snake_case_name\": \"a\", \"snakeCaseName\": \"b\"}",
	    "snakeCaseName: field given twice (as \"snake_case_name\" too)");
	assert_parse_error(d, "{\"SnakeCaseName\": \"a\"}",
	    "SnakeCaseName: unknown field of ztest.pbjson.Scalars");
	assert_reprints(&zos__v1__list_sessions_request__descriptor,
	    "{\"pageSize\": 10, \"page_token\": \"t\"}",
	    "{\"pageSize\":10,\"pageToken\":\"t\"}");
}

Test(pbjson, unknown_fields_and_wrong_types_are_named)
{
	assert_parse_error(&zos__v1__get_session_request__descriptor,
	    "{\"id\": \"x\", \"nope\": 1}",
	    "nope: unknown field of zos.v1.GetSessionRequest");
	assert_parse_error(&zos__v1__get_session_request__descriptor,
	    "{\"id\": 5}", "id: expected a string, got a number");
	assert_parse_error(&zos__v1__complete_response__descriptor,
	    "{\"session\": \"s1\"}",
	    "session: expected an object (zos.v1.ProofSession), got a string");
	assert_parse_error(&zos__v1__complete_response__descriptor,
	    "{\"session\": {\"created_unix_ms\": \"soon\"}}",
	    "session.created_unix_ms: expected an integer (int64), got the "
	    "string \"soon\"");
}

Test(pbjson, the_document_must_be_one_json_object)
{
	const ProtobufCMessageDescriptor *d =
	    &zos__v1__get_session_request__descriptor;
	ProtobufCMessage *m;

	m = parse_ok(d, "");
	assert_prints(m, "{}");
	protobuf_c_message_free_unpacked(m, NULL);
	m = parse_ok(d, " \n\t ");
	protobuf_c_message_free_unpacked(m, NULL);
	m = parse_ok(d, "\n {\"id\": \"a\"}\n\n");
	protobuf_c_message_free_unpacked(m, NULL);

	assert_parse_error(d, "[1]",
	    "expected a JSON object (zos.v1.GetSessionRequest), got an array");
	assert_parse_error(d, "null",
	    "expected a JSON object (zos.v1.GetSessionRequest), got null");
	assert_parse_error(d, "42",
	    "expected a JSON object (zos.v1.GetSessionRequest), got a number");
	assert_parse_error(d, "{\"id\": \"a\"",
	    "bad JSON at line 1, column 11: unexpected end of data");
	assert_parse_error(d, "{\n  \"id\": \"a\",\n}",
	    "bad JSON at line 3, column 1: unexpected character");
	assert_parse_error(
	    d, "{} {}", "bad JSON at line 1, column 4: unexpected character");
	assert_parse_error(d, "{\"id\": \"\xff\"}",
	    "bad JSON at line 1, column 9: invalid utf-8 string");
}

Test(pbjson, error_buffer_may_be_null_or_short)
{
	char              small[8];
	ProtobufCMessage *m;

	m = zos_pbjson_parse(
	    &zos__v1__get_session_request__descriptor, "{\"x\":1}", NULL, 0);
	cr_assert_null(m);
	m = zos_pbjson_parse(&zos__v1__get_session_request__descriptor,
	    "{\"x\":1}", small, sizeof(small));
	cr_assert_null(m);
	cr_assert_str_eq(small, "x: unkn");
}

/* ---------------------------------------------------------------------
 * Allocation failure
 * --------------------------------------------------------------------- */

/* Fails each allocation of pbjson.c in turn while parsing JSON as DESC;
 * each one must be an error ("out of memory"), and none may leak (ASan). */
static void
assert_parse_survives_every_failure(
    const ProtobufCMessageDescriptor *desc, const char *json)
{
	for (unsigned n = 1;; n++) {
		char              error[512];
		ProtobufCMessage *m;
		bool              failed;

		cr_assert_lt(n, 10000);
		fail_countdown = n;
		m      = zos_pbjson_parse(desc, json, error, sizeof(error));
		failed = fail_countdown == 0;
		fail_countdown = 0;
		if (!failed) {
			cr_assert_not_null(m, "%s", error);
			protobuf_c_message_free_unpacked(m, NULL);
			cr_assert_gt(n, 1, "allocations were made");
			return;
		}
		cr_assert_null(
		    m, "allocation %u failed but parse succeeded", n);
		cr_assert(strstr(error, "out of memory") != NULL,
		    "allocation %u: %s", n, error);
	}
}

Test(pbjson, every_allocation_failure_is_an_error_without_a_leak)
{
	const ProtobufCMessageDescriptor *descs[] = {
		&ztest__pbjson__scalars__descriptor,
		&ztest__pbjson__repeated__descriptor,
		&ztest__pbjson__maps__descriptor,
		&zos__v1__list_sessions_response__descriptor,
	};

	for (size_t i = 0; i < sizeof(descs) / sizeof(descs[0]); i++) {
		ProtobufCMessage *m = new_message(descs[i]);
		char              error[256];
		char             *json;

		fill_message(m, 1, 2, 0);
		json = zos_pbjson_print(m, false, error, sizeof(error));
		cr_assert_not_null(json);
		assert_parse_survives_every_failure(descs[i], json);

		for (unsigned n = 1;; n++) {
			char *again;
			bool  failed;

			fail_countdown = n;
			again          = zos_pbjson_print(m, true, error, 256);
			failed         = fail_countdown == 0;
			fail_countdown = 0;
			if (!failed) {
				cr_assert_not_null(again);
				free(again);
				break;
			}
			cr_assert_null(again);
			cr_assert_str_eq(error, "out of memory");
		}
		free(json);
		protobuf_c_message_free_unpacked(m, NULL);
	}
	assert_parse_survives_every_failure(
	    &zos__v1__get_session_request__descriptor, "");
}
