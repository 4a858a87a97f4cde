/*
 * Reply metadata; see metadata.h. The layout of one copy:
 *
 *   struct zrpc_metadata | entries[n] | "key\0value\0" ...
 *
 * The sizes come from an unpacked reply that already fit within the
 * client's max_message_bytes, so they cannot overflow; they are checked
 * anyway, because the check is cheap and the bytes came from the network.
 */
#include "metadata.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *
metadata_text(const char *s)
{
	return s != NULL ? s : "";
}

int
zrpc_metadata_copy(Zrpc__V1__Response__MetadataEntry *const *entries,
    size_t n_entries, struct zrpc_metadata **out)
{
	struct zrpc_metadata       *md;
	struct zrpc_metadata_entry *copy;
	size_t                      size, len;
	char                       *text;

	*out = NULL;
	if (n_entries > (SIZE_MAX - sizeof(*md)) / sizeof(*copy)) {
		return ENOMEM;
	}
	size = sizeof(*md) + n_entries * sizeof(*copy);
	for (size_t i = 0; i < n_entries; i++) {
		len = strlen(metadata_text(entries[i]->key)) +
		    strlen(metadata_text(entries[i]->value)) + 2;
		if (len > SIZE_MAX - size) {
			return ENOMEM;
		}
		size += len;
	}
	if ((md = malloc(size)) == NULL) {
		return ENOMEM;
	}
	copy = (struct zrpc_metadata_entry *) (md + 1);
	text = (char *) (copy + n_entries);
	for (size_t i = 0; i < n_entries; i++) {
		const char *key   = metadata_text(entries[i]->key);
		const char *value = metadata_text(entries[i]->value);

		len = strlen(key) + 1;
		memcpy(text, key, len);
		copy[i].key = text;
		text += len;
		len = strlen(value) + 1;
		memcpy(text, value, len);
		copy[i].value = text;
		text += len;
	}
	md->n_entries = n_entries;
	md->entries   = copy;
	*out          = md;
	return 0;
}

const char *
zrpc_metadata_get(const struct zrpc_metadata *md, const char *key)
{
	if (md == NULL || key == NULL) {
		return NULL;
	}
	for (size_t i = 0; i < md->n_entries; i++) {
		if (strcmp(md->entries[i].key, key) == 0) {
			return md->entries[i].value;
		}
	}
	return NULL;
}

void
zrpc_metadata_free(struct zrpc_metadata *md)
{
	free(md);
}

/* Reads a varint at *P (before END); false when truncated or too long. */
static bool
metadata_varint(const uint8_t **p, const uint8_t *end, uint64_t *value)
{
	uint64_t v = 0;

	for (unsigned shift = 0; shift < 70 && *p < end; shift += 7) {
		uint8_t b = *(*p)++;

		v |= (uint64_t) (b & 0x7f) << shift;
		if ((b & 0x80) == 0) {
			*value = v;
			return true;
		}
	}
	return false;
}

size_t
zrpc_metadata_count_packed(const uint8_t *buf, size_t len, size_t limit)
{
	const uint8_t *p = buf, *end = buf + len;
	size_t         n = 0;
	uint64_t       tag, value;

	while (p < end && n <= limit && metadata_varint(&p, end, &tag)) {
		switch (tag & 7) {
		case 0: /* varint */
			if (!metadata_varint(&p, end, &value)) {
				return n;
			}
			break;
		case 1: /* 8 bytes */
		case 5: /* 4 bytes */
			value = (tag & 7) == 1 ? 8 : 4;
			if (value > (uint64_t) (end - p)) {
				return n;
			}
			p += value;
			break;
		case 2: /* length-delimited */
			if (!metadata_varint(&p, end, &value) ||
			    value > (uint64_t) (end - p)) {
				return n;
			}
			p += value;
			n += (tag >> 3) == 4;
			break;
		default:
			return n;
		}
	}
	return n;
}
