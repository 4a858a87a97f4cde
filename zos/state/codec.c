/*
 * The codec between the state and its zos.storage.v1 payloads; see
 * codec.h.
 *
 * Encoding borrows: the protobuf-c messages it packs point into the copy
 * it was given (names, ids), so the only allocations are two arrays for
 * the repeated field and the output buffer, and nothing is copied twice.
 * The output leaves HEADROOM bytes in front of the payload so that a
 * framing header (snapshot.h) can be written in place, and the whole
 * framed file goes to disk in one write from one buffer.
 *
 * Decoding is the other way round and trusts nothing: protobuf-c checks
 * the wire format, this module checks that the payload's own sequence
 * number is the one it was stored under (the header's: a mismatch means
 * a payload under a header that is not its own), and that every string
 * fits the fixed-size fields of the state; the state's restore functions
 * then check meaning (levels, states, versions), as for a file a user
 * wrote. Counts are checked against the state's bounds before anything
 * is allocated for them.
 */
#include "codec.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zos/v1/storage.pb-c.h"

/* SessionsSnapshot.format written now; see storage.proto. */
#define CODEC_SESSIONS_FORMAT 2

int
zos_codec_encode_skills(const struct zos_skill_vector *v, size_t headroom,
    uint8_t **out, size_t *len, char *message, size_t message_len)
{
	Zos__Storage__V1__SkillsSnapshot snap =
	    ZOS__STORAGE__V1__SKILLS_SNAPSHOT__INIT;
	Zos__V1__Skill  *items = NULL;
	Zos__V1__Skill **ptrs  = NULL;
	size_t           packed;
	int              rv = 0;

	*out = NULL;
	if ((items = calloc(v->n + 1, sizeof(*items))) == NULL ||
	    (ptrs = calloc(v->n + 1, sizeof(*ptrs))) == NULL) {
		rv = ENOMEM;
		snprintf(message, message_len, "encode skills: out of memory");
		goto done;
	}
	for (size_t i = 0; i < v->n; i++) {
		zos__v1__skill__init(&items[i]);
		items[i].name     = (char *) v->skills[i].name;
		items[i].level    = v->skills[i].level;
		items[i].attempts = v->skills[i].attempts;
		ptrs[i]           = &items[i];
	}
	snap.version  = v->version;
	snap.n_skills = v->n;
	snap.skills   = ptrs;
	packed = zos__storage__v1__skills_snapshot__get_packed_size(&snap);
	/* At least one byte: malloc(0) may be NULL. */
	if ((*out = malloc(headroom + packed + 1)) == NULL) {
		rv = ENOMEM;
		snprintf(message, message_len, "encode skills: out of memory");
		goto done;
	}
	zos__storage__v1__skills_snapshot__pack(&snap, *out + headroom);
	*len = packed;

done:
	free(ptrs);
	free(items);
	return rv;
}

int
zos_codec_encode_sessions(const struct zos_sessions_image *image,
    size_t headroom, size_t max_len, uint8_t **out, size_t *len, char *message,
    size_t message_len)
{
	Zos__Storage__V1__SessionsSnapshot snap =
	    ZOS__STORAGE__V1__SESSIONS_SNAPSHOT__INIT;
	Zos__V1__ProofSession  *items  = NULL;
	Zos__V1__ProofSession **ptrs   = NULL;
	uint64_t               *owners = NULL;
	size_t                  packed;
	int                     rv = 0;

	*out = NULL;
	if ((items = calloc(image->count + 1, sizeof(*items))) == NULL ||
	    (ptrs = calloc(image->count + 1, sizeof(*ptrs))) == NULL ||
	    (owners = calloc(image->count + 1, sizeof(*owners))) == NULL) {
		rv = ENOMEM;
		snprintf(
		    message, message_len, "encode sessions: out of memory");
		goto done;
	}
	for (size_t i = 0; i < image->count; i++) {
		const struct zos_session *s = &image->sessions[i];

		zos__v1__proof_session__init(&items[i]);
		items[i].id              = (char *) s->id;
		items[i].problem_id      = (char *) s->problem_id;
		items[i].state           = (Zos__V1__ProofState) s->state;
		items[i].version         = s->version;
		items[i].created_unix_ms = s->created_unix_ms;
		items[i].updated_unix_ms = s->updated_unix_ms;
		ptrs[i]                  = &items[i];
		owners[i]                = s->owner;
	}
	snap.seq        = image->seq;
	snap.id_key     = image->id_key;
	snap.n_sessions = image->count;
	snap.sessions   = ptrs;
	snap.format     = CODEC_SESSIONS_FORMAT;
	snap.n_owners   = image->count;
	snap.owners     = owners;
	packed = zos__storage__v1__sessions_snapshot__get_packed_size(&snap);
	if (packed > max_len) {
		rv = EFBIG;
		snprintf(message, message_len,
		    "encode sessions: %zu bytes, over the %zu MiB bound",
		    packed, max_len >> 20);
		goto done;
	}
	/* At least one byte: malloc(0) may be NULL. */
	if ((*out = malloc(headroom + packed + 1)) == NULL) {
		rv = ENOMEM;
		snprintf(
		    message, message_len, "encode sessions: out of memory");
		goto done;
	}
	zos__storage__v1__sessions_snapshot__pack(&snap, *out + headroom);
	*len = packed;

done:
	free(owners);
	free(ptrs);
	free(items);
	return rv;
}

/* "sequence mismatch" in ERROR when STORED is not EXPECTED. */
static int
codec_check_seq(
    uint64_t expected, uint64_t stored, char *error, size_t error_len)
{
	if (stored == expected) {
		return 0;
	}
	snprintf(error, error_len,
	    "sequence mismatch: header %llu, payload %llu (file is corrupt)",
	    (unsigned long long) expected, (unsigned long long) stored);
	return -1;
}

int
zos_codec_decode_skills(const uint8_t *payload, size_t len,
    uint64_t expected_seq, struct zos_skill_vector **out, char *error,
    size_t error_len)
{
	Zos__Storage__V1__SkillsSnapshot *snap;
	const char                       *names[ZOS_SKILLS_MAX];
	double                            levels[ZOS_SKILLS_MAX];
	uint64_t                          attempts[ZOS_SKILLS_MAX];
	char                              message[256];
	int                               rv = -1;

	*out = NULL;
	snap = zos__storage__v1__skills_snapshot__unpack(NULL, len, payload);
	if (snap == NULL) {
		snprintf(error, error_len,
		    "payload does not decode (file is corrupt)");
		return -1;
	}
	if (codec_check_seq(expected_seq, snap->version, error, error_len) !=
	    0) {
		goto done;
	}
	if (snap->n_skills > ZOS_SKILLS_MAX) {
		snprintf(error, error_len,
		    "%zu skills, more than %d (invalid snapshot)",
		    snap->n_skills, ZOS_SKILLS_MAX);
		goto done;
	}
	for (size_t i = 0; i < snap->n_skills; i++) {
		names[i]    = snap->skills[i]->name;
		levels[i]   = snap->skills[i]->level;
		attempts[i] = snap->skills[i]->attempts;
	}
	if (zos_skill_vector_restore(snap->n_skills, names, levels, attempts,
	        snap->version, out, message,
	        sizeof(message)) != ZOS_SKILLS_OK) {
		snprintf(error, error_len, "%s (invalid snapshot)", message);
		goto done;
	}
	rv = 0;

done:
	zos__storage__v1__skills_snapshot__free_unpacked(snap, NULL);
	return rv;
}

/* Copies the NUL-terminated FROM into TO (SIZE bytes with the NUL); false
 * when it does not fit. */
static bool
codec_copy_string(char *to, size_t size, const char *from)
{
	size_t len = strnlen(from, size);

	if (len >= size) {
		return false;
	}
	memcpy(to, from, len + 1);
	return true;
}

int
zos_codec_decode_sessions(const uint8_t *payload, size_t len,
    uint64_t expected_seq, struct zos_sessions_image *out, char *error,
    size_t error_len)
{
	Zos__Storage__V1__SessionsSnapshot *snap;
	struct zos_sessions_image           image = { 0 };
	int                                 rv    = -1;

	memset(out, 0, sizeof(*out));
	snap = zos__storage__v1__sessions_snapshot__unpack(NULL, len, payload);
	if (snap == NULL) {
		snprintf(error, error_len,
		    "payload does not decode (file is corrupt)");
		return -1;
	}
	if (codec_check_seq(expected_seq, snap->seq, error, error_len) != 0) {
		goto fail_snap;
	}
	if (snap->format != 0 && snap->format != CODEC_SESSIONS_FORMAT) {
		snprintf(error, error_len,
		    "format %u is not one this zosd reads (0 or %d)",
		    snap->format, CODEC_SESSIONS_FORMAT);
		goto fail_snap;
	}
	if (snap->format == CODEC_SESSIONS_FORMAT &&
	    snap->n_owners != snap->n_sessions) {
		snprintf(error, error_len,
		    "%zu owners for %zu sessions (invalid snapshot)",
		    snap->n_owners, snap->n_sessions);
		goto fail_snap;
	}
	if (snap->n_sessions > ZOS_SESSIONS_LIMIT_MAX) {
		snprintf(error, error_len,
		    "%zu sessions, more than %d (invalid snapshot)",
		    snap->n_sessions, ZOS_SESSIONS_LIMIT_MAX);
		goto fail_snap;
	}
	if (snap->n_sessions > 0 &&
	    (image.sessions = calloc(
	         snap->n_sessions, sizeof(*image.sessions))) == NULL) {
		snprintf(error, error_len, "out of memory");
		goto fail_snap;
	}
	for (size_t i = 0; i < snap->n_sessions; i++) {
		const Zos__V1__ProofSession *from = snap->sessions[i];
		struct zos_session          *to   = &image.sessions[i];

		if (!codec_copy_string(to->id, sizeof(to->id), from->id) ||
		    !codec_copy_string(to->problem_id, sizeof(to->problem_id),
		        from->problem_id)) {
			snprintf(error, error_len,
			    "session %zu: id or problem id too long (invalid "
			    "snapshot)",
			    i);
			goto fail_image;
		}
		to->state           = (enum zos_proof_state) from->state;
		to->version         = from->version;
		to->created_unix_ms = from->created_unix_ms;
		to->updated_unix_ms = from->updated_unix_ms;
		to->owner           = snap->n_owners > 0 ? snap->owners[i]
		                                         : ZOS_SESSION_OWNER_ANONYMOUS;
	}
	image.seq    = snap->seq;
	image.id_key = snap->id_key;
	image.count  = snap->n_sessions;
	*out         = image;
	rv           = 0;
	goto fail_snap; /* the image is the caller's now */

fail_image:
	zos_sessions_image_finish(&image);
fail_snap:
	zos__storage__v1__sessions_snapshot__free_unpacked(snap, NULL);
	return rv;
}
