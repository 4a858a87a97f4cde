/* Whole sends and receives on a raw socket; see sockio.h. */
#include "sockio.h"

#include <sys/socket.h>
#include <sys/types.h>

bool
send_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n <= 0) {
			return false;
		}
		p += n;
		len -= (size_t) n;
	}
	return true;
}

bool
recv_all(int fd, void *data, size_t len)
{
	char *p = data;

	while (len > 0) {
		ssize_t n = recv(fd, p, len, 0);

		if (n <= 0) {
			return false;
		}
		p += n;
		len -= (size_t) n;
	}
	return true;
}
