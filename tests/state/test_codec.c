/*
 * Tests for the codec (zos/state/codec.c): the state's parts survive a
 * round trip through their zos.storage.v1 payloads, and a payload that
 * is not what it claims to be is refused with a reason. No files: the
 * bytes stay in memory.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "zos/v1/storage.pb-c.h"

#define HEADROOM 32

Test(codec, a_skill_vector_round_trips_with_version_attempts_and_order)
{
	const char *const        names[]    = { "zeta", "alpha", "mid" };
	const double             levels[]   = { 0.25, 1.0, 0.0 };
	const uint64_t           attempts[] = { 3, 0, 41 };
	struct zos_skill_vector *v, *back;
	uint8_t                 *buf;
	size_t                   len;
	char                     err[256];

	cr_assert_eq(zos_skill_vector_restore(
	                 3, names, levels, attempts, 17, &v, err, sizeof(err)),
	    ZOS_SKILLS_OK, "%s", err);
	cr_assert_eq(
	    zos_codec_encode_skills(v, HEADROOM, &buf, &len, err, sizeof(err)),
	    0, "%s", err);
	cr_assert_gt(len, 0);
	cr_assert_eq(zos_codec_decode_skills(
	                 buf + HEADROOM, len, 17, &back, err, sizeof(err)),
	    0, "%s", err);
	cr_assert_eq(back->version, 17);
	cr_assert_eq(back->n, 3);
	for (size_t i = 0; i < 3; i++) {
		cr_assert_str_eq(back->skills[i].name, names[i]);
		cr_assert_eq(back->skills[i].level, levels[i]);
		cr_assert_eq(back->skills[i].attempts, attempts[i]);
	}
	free(buf);
	zos_skill_vector_unref(back);
	zos_skill_vector_unref(v);
}

Test(codec, a_sessions_image_round_trips_with_its_change_count_and_key)
{
	struct zos_session        sessions[2];
	struct zos_sessions_image image = { .seq = 9,
		.id_key                          = 0xdeadbeef,
		.sessions                        = sessions,
		.count                           = 2 };
	struct zos_sessions_image back;
	uint8_t                  *buf;
	size_t                    len;
	char                      err[256];

	memset(sessions, 0, sizeof(sessions));
	snprintf(sessions[0].id, sizeof(sessions[0].id), "0123456789abcdef");
	snprintf(
	    sessions[0].problem_id, sizeof(sessions[0].problem_id), "p-1");
	sessions[0].state           = ZOS_PROOF_SOLVED;
	sessions[0].version         = 5;
	sessions[0].created_unix_ms = 1000;
	sessions[0].updated_unix_ms = 2000;
	sessions[0].owner           = 0x0123456789abcdefu;
	snprintf(sessions[1].id, sizeof(sessions[1].id), "fedcba9876543210");
	snprintf(
	    sessions[1].problem_id, sizeof(sessions[1].problem_id), "p-2");
	sessions[1].state   = ZOS_PROOF_ANALYZING;
	sessions[1].version = 4;

	cr_assert_eq(zos_codec_encode_sessions(&image, HEADROOM, 1u << 20,
	                 &buf, &len, err, sizeof(err)),
	    0, "%s", err);
	cr_assert_eq(zos_codec_decode_sessions(
	                 buf + HEADROOM, len, 9, &back, err, sizeof(err)),
	    0, "%s", err);
	cr_assert_eq(back.seq, 9);
	cr_assert_eq(back.id_key, 0xdeadbeef);
	cr_assert_eq(back.count, 2);
	cr_assert_arr_eq(back.sessions, sessions, sizeof(sessions));
	free(buf);
	zos_sessions_image_finish(&back);
}

Test(codec, an_empty_table_round_trips)
{
	struct zos_sessions_image image = { .seq = 0 };
	struct zos_sessions_image back;
	uint8_t                  *buf;
	size_t                    len;
	char                      err[256];

	cr_assert_eq(zos_codec_encode_sessions(
	                 &image, 0, 1u << 20, &buf, &len, err, sizeof(err)),
	    0, "%s", err);
	cr_assert_lt(len, 8); /* the format number, no more */
	cr_assert_eq(
	    zos_codec_decode_sessions(buf, len, 0, &back, err, sizeof(err)), 0,
	    "%s", err);
	cr_assert_eq(back.count, 0);
	free(buf);
	zos_sessions_image_finish(&back);
}

/* A SessionsSnapshot of FORMAT with one session and N_OWNERS owners,
 * packed into *BUF (malloc'd). */
static size_t
pack_sessions_snapshot(uint32_t format, size_t n_owners, uint8_t **buf)
{
	Zos__Storage__V1__SessionsSnapshot snap =
	    ZOS__STORAGE__V1__SESSIONS_SNAPSHOT__INIT;
	Zos__V1__ProofSession  one       = ZOS__V1__PROOF_SESSION__INIT;
	Zos__V1__ProofSession *ptr[]     = { &one };
	uint64_t               owners[2] = { 42, 43 };
	size_t                 len;

	one.id          = "0123456789abcdef";
	one.problem_id  = "p";
	one.state       = ZOS__V1__PROOF_STATE__ANALYZING;
	one.version     = 2;
	snap.seq        = 3;
	snap.n_sessions = 1;
	snap.sessions   = ptr;
	snap.format     = format;
	snap.n_owners   = n_owners;
	snap.owners     = owners;
	len  = zos__storage__v1__sessions_snapshot__get_packed_size(&snap);
	*buf = malloc(len + 1);
	cr_assert_not_null(*buf);
	zos__storage__v1__sessions_snapshot__pack(&snap, *buf);
	return len;
}

Test(codec, a_first_format_snapshot_loads_with_anonymous_owners)
{
	struct zos_sessions_image back;
	uint8_t                  *buf;
	size_t                    len = pack_sessions_snapshot(0, 0, &buf);
	char                      err[256];

	cr_assert_eq(
	    zos_codec_decode_sessions(buf, len, 3, &back, err, sizeof(err)), 0,
	    "%s", err);
	cr_assert_eq(back.count, 1);
	cr_assert_str_eq(back.sessions[0].id, "0123456789abcdef");
	cr_assert_eq(back.sessions[0].owner, ZOS_SESSION_OWNER_ANONYMOUS);
	zos_sessions_image_finish(&back);
	free(buf);

	len = pack_sessions_snapshot(2, 1, &buf);
	cr_assert_eq(
	    zos_codec_decode_sessions(buf, len, 3, &back, err, sizeof(err)), 0,
	    "%s", err);
	cr_assert_eq(back.sessions[0].owner, 42);
	zos_sessions_image_finish(&back);
	free(buf);
}

Test(codec, an_unknown_format_or_owner_count_is_refused)
{
	struct zos_sessions_image back;
	uint8_t                  *buf;
	size_t                    len = pack_sessions_snapshot(3, 1, &buf);
	char                      err[256];

	cr_assert_eq(
	    zos_codec_decode_sessions(buf, len, 3, &back, err, sizeof(err)),
	    -1);
	cr_assert(strstr(err, "format 3") != NULL, "%s", err);
	cr_assert_eq(back.count, 0);
	free(buf);
	len = pack_sessions_snapshot(2, 2, &buf);
	cr_assert_eq(
	    zos_codec_decode_sessions(buf, len, 3, &back, err, sizeof(err)),
	    -1);
	cr_assert(strstr(err, "2 owners for 1 sessions") != NULL, "%s", err);
	free(buf);
}

Test(codec, a_payload_under_another_number_is_a_sequence_mismatch)
{
	struct zos_skill_vector  *v     = zos_skill_vector_default(), *back;
	struct zos_sessions_image image = { .seq = 3 }, img;
	uint8_t                  *buf;
	size_t                    len;
	char                      err[256];

	v->version = 4;
	cr_assert_eq(
	    zos_codec_encode_skills(v, 0, &buf, &len, err, sizeof(err)), 0);
	cr_assert_eq(
	    zos_codec_decode_skills(buf, len, 5, &back, err, sizeof(err)), -1);
	cr_assert_null(back);
	cr_assert(
	    strstr(err, "sequence mismatch: header 5, payload 4") != NULL,
	    "%s", err);
	free(buf);
	zos_skill_vector_unref(v);

	cr_assert_eq(zos_codec_encode_sessions(
	                 &image, 0, 1u << 20, &buf, &len, err, sizeof(err)),
	    0);
	cr_assert_eq(
	    zos_codec_decode_sessions(buf, len, 2, &img, err, sizeof(err)),
	    -1);
	cr_assert_eq(img.count, 0);
	cr_assert(strstr(err, "sequence mismatch") != NULL, "%s", err);
	free(buf);
}

Test(codec, bytes_that_are_not_a_snapshot_do_not_decode)
{
	const uint8_t             junk[] = { 0xff, 0xff, 0xff, 0xff, 0x0f };
	struct zos_skill_vector  *v;
	struct zos_sessions_image image;
	char                      err[256];

	cr_assert_eq(zos_codec_decode_skills(
	                 junk, sizeof(junk), 0, &v, err, sizeof(err)),
	    -1);
	cr_assert(strstr(err, "does not decode") != NULL, "%s", err);
	cr_assert_eq(zos_codec_decode_sessions(
	                 junk, sizeof(junk), 0, &image, err, sizeof(err)),
	    -1);
	cr_assert(strstr(err, "does not decode") != NULL, "%s", err);
}

Test(codec, an_invalid_vector_decodes_but_is_refused)
{
	const char *const        names[]  = { "ok", "ok" };
	const double             levels[] = { 0.5, 0.5 };
	struct zos_skill_vector *v = zos_skill_vector_new(2, names, levels);
	struct zos_skill_vector *back;
	uint8_t                 *buf;
	size_t                   len;
	char                     err[256];

	cr_assert_not_null(v);
	cr_assert_eq(
	    zos_codec_encode_skills(v, 0, &buf, &len, err, sizeof(err)), 0);
	cr_assert_eq(
	    zos_codec_decode_skills(buf, len, 0, &back, err, sizeof(err)), -1);
	cr_assert_null(back);
	cr_assert(strstr(err, "invalid snapshot") != NULL, "%s", err);
	free(buf);
	zos_skill_vector_unref(v);
}

Test(codec, a_table_over_the_bound_is_refused_before_it_is_allocated)
{
	struct zos_session        session;
	struct zos_sessions_image image = {
		.seq = 1, .sessions = &session, .count = 1
	};
	uint8_t *buf = (uint8_t *) "";
	size_t   len;
	char     err[256];

	memset(&session, 0, sizeof(session));
	snprintf(session.id, sizeof(session.id), "0123456789abcdef");
	snprintf(session.problem_id, sizeof(session.problem_id), "p");
	session.version = 1;
	cr_assert_eq(zos_codec_encode_sessions(
	                 &image, 0, 8, &buf, &len, err, sizeof(err)),
	    EFBIG);
	cr_assert_null(buf);
	cr_assert(strstr(err, "over the") != NULL, "%s", err);
}
