/*
 * The codec between the persisted parts of the state and their
 * zos.storage.v1 payloads (zos/proto/zos/v1/storage.proto): a skill vector
 * <-> SkillsSnapshot, a sessions image <-> SessionsSnapshot. Private to
 * the store.
 *
 * Pure functions: no I/O, no lock, no state. The caller takes the copy it
 * encodes (zos_skills_get, zos_sessions_snapshot) and frames or stores
 * the bytes as it likes; a decoded image is handed to the state's own
 * restore functions, which check it as they check a file.
 *
 * Errors come back as 0 or an errno value (encoding) or 0 / -1 (decoding)
 * with MESSAGE / ERROR filled: a sentence without a path ("payload does
 * not decode (file is corrupt)"), for the caller to prefix with where the
 * bytes came from.
 */
#ifndef ZOS_CODEC_H
#define ZOS_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "sessions.h"
#include "skills.h"

/*
 * Encodes V as a SkillsSnapshot (its version is the snapshot's) into a new
 * buffer *OUT (malloc'd, the caller's) of HEADROOM bytes, left for the
 * caller to fill, followed by the *LEN payload bytes. Returns 0, or ENOMEM
 * with MESSAGE filled; *OUT is NULL then.
 */
int zos_codec_encode_skills(const struct zos_skill_vector *v, size_t headroom,
    uint8_t **out, size_t *len, char *message, size_t message_len);

/*
 * As zos_codec_encode_skills, for IMAGE as a SessionsSnapshot (sequence
 * number and id key included). A payload over MAX_LEN bytes is EFBIG,
 * found before anything is allocated for it.
 */
int zos_codec_encode_sessions(const struct zos_sessions_image *image,
    size_t headroom, size_t max_len, uint8_t **out, size_t *len, char *message,
    size_t message_len);

/*
 * Decodes the LEN bytes at PAYLOAD as a SkillsSnapshot whose version must
 * be EXPECTED_SEQ (the number the bytes were stored under), and restores
 * it into *OUT (one reference, the caller's). Returns 0, or -1 with ERROR
 * filled and *OUT NULL: the payload does not decode, its version is not
 * EXPECTED_SEQ, or the vector is invalid (zos_skill_vector_restore).
 */
int zos_codec_decode_skills(const uint8_t *payload, size_t len,
    uint64_t expected_seq, struct zos_skill_vector **out, char *error,
    size_t error_len);

/*
 * Decodes the LEN bytes at PAYLOAD as a SessionsSnapshot whose sequence
 * number must be EXPECTED_SEQ into *OUT (the caller finishes it with
 * zos_sessions_image_finish). The sessions themselves are checked later,
 * by zos_sessions_restore; here only what does not fit an image (too many
 * sessions, an id too long) is refused. Returns 0, or -1 with ERROR
 * filled and *OUT empty.
 */
int zos_codec_decode_sessions(const uint8_t *payload, size_t len,
    uint64_t expected_seq, struct zos_sessions_image *out, char *error,
    size_t error_len);

#endif /* ZOS_CODEC_H */
