/*
 * Private to pbjson: the check that no JSON object repeats a key, which
 * json-c does not make (its objects keep the last value of a repeated key
 * and forget the others), while proto3 JSON parsers such as Python's
 * json_format refuse such input.
 */
#ifndef ZOS_PBJSON_KEYS_H
#define ZOS_PBJSON_KEYS_H

#include <stdbool.h>
#include <stddef.h>

/* What pbjson_duplicate_key found. */
enum pbjson_keys_result {
	PBJSON_KEYS_UNIQUE,        /* no object repeats a key */
	PBJSON_KEYS_DUPLICATE,     /* *OFFSET and KEY say where and which */
	PBJSON_KEYS_OUT_OF_MEMORY, /* nothing is known */
};

/*
 * Scans TEXT (LEN bytes), which json-c's strict tokener has accepted as
 * JSON nested at most 64 deep, for an object that holds one key twice
 * (keys compared after their escapes are decoded, so "a" and "\u0061"
 * are the same key). On a duplicate, *OFFSET is the byte offset of its
 * second occurrence in TEXT and KEY (KEY_LEN bytes, at least 1) holds the
 * key, decoded and cut to fit. Runs in O(n log n) of the number of keys.
 */
enum pbjson_keys_result pbjson_duplicate_key(
    const char *text, size_t len, size_t *offset, char *key, size_t key_len);

#endif /* ZOS_PBJSON_KEYS_H */
