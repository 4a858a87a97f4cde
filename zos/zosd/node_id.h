/*
 * A node's id on disk: DATA_DIR/node-id, one decimal number (1..65535)
 * and a newline, written the first time zosd runs on a data directory
 * and checked every time after, so that a directory's sessions (whose
 * ids carry the node id, sessions.h) are never served under another
 * node's name. zosd reads it before it opens the store and writes it
 * (a temporary file, fsync, rename, fsync of the directory) once the
 * store has made the directory; no lock is held (start-up).
 */
#ifndef ZOS_NODE_ID_H
#define ZOS_NODE_ID_H

#include <stddef.h>
#include <stdint.h>

#define ZOS_NODE_ID_FILE "node-id"

/*
 * Reads DIR/node-id into *NODE: 0 when there is no such file (or no
 * DIR). Returns 0, or -1 with ERROR naming the file when it cannot be
 * read or does not hold a node id.
 */
int zos_node_id_read(
    const char *dir, uint32_t *node, char *error, size_t error_len);

/*
 * Writes NODE to DIR/node-id durably. Returns 0, or -1 with ERROR.
 */
int zos_node_id_write(
    const char *dir, uint32_t node, char *error, size_t error_len);

/*
 * The node id to run as, from the --node-id FLAG (0 = not given) and
 * the one STORED in the data directory (0 = none): the stored one when
 * the flag is absent or agrees, the flag when nothing is stored, else 1.
 * A flag that differs from the stored id is refused: returns -1 with
 * ERROR saying both; otherwise 0 and *OUT.
 */
int zos_node_id_choose(uint32_t flag, uint32_t stored, const char *dir,
    uint32_t *out, char *error, size_t error_len);

#endif /* ZOS_NODE_ID_H */
