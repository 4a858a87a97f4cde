/*
 * Whole sends and receives on a raw socket, for tests that play a peer by
 * hand (an attacker, a half-sent message): each loops until LEN bytes have
 * gone or come, and is false when the peer is gone or the socket's own
 * timeout (SO_SNDTIMEO, SO_RCVTIMEO) ran out. Sends never raise SIGPIPE.
 */
#ifndef ZOS_TEST_SOCKIO_H
#define ZOS_TEST_SOCKIO_H

#include <stdbool.h>
#include <stddef.h>

bool send_all(int fd, const void *data, size_t len);
bool recv_all(int fd, void *data, size_t len);

#endif /* ZOS_TEST_SOCKIO_H */
