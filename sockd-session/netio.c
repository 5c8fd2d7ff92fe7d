/* Deadline-bound I/O for the negotiation phase. */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "netio.h"

int64_t netio_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t netio_deadline(int seconds)
{
	return seconds > 0 ? netio_now_ms() + (int64_t)seconds * 1000 : INT64_MAX;
}

int netio_wait(int fd, short events, int watch, int64_t deadline)
{
	for (;;) {
		int64_t left = deadline == INT64_MAX ? -1 : deadline - netio_now_ms();
		if (deadline != INT64_MAX && left <= 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		/* POLLRDHUP, not POLLIN, on WATCH: bytes the client sends
		 * early are data for later, only its close matters here */
		struct pollfd pfd[2] = { { fd, events, 0 }, { watch, POLLRDHUP, 0 } };
		int rc = poll(pfd, watch >= 0 ? 2 : 1,
			      left > INT32_MAX ? INT32_MAX : (int)left);
		if (rc < 0 && errno != EINTR)
			return -1;
		if (rc > 0 && watch >= 0 && pfd[1].revents) {
			errno = ECONNABORTED;
			return -1;
		}
		if (rc > 0 && pfd[0].revents)
			return 0;
	}
}

int netio_read_exact(int fd, uint8_t *buf, size_t *have, size_t want,
		     int64_t deadline)
{
	while (*have < want) {
		ssize_t n = read(fd, buf + *have, want - *have);
		if (n > 0) {
			*have += (size_t)n;
			continue;
		}
		if (n == 0) {
			errno = ECONNRESET;
			return -1;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN || netio_wait(fd, POLLIN, -1, deadline))
			return -1;
	}
	return 0;
}

int netio_write_all(int fd, const void *buf, size_t len, int64_t deadline)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0 || errno != EAGAIN || netio_wait(fd, POLLOUT, -1, deadline))
			return -1;
	}
	return 0;
}

int netio_poll_ms(int seconds)
{
	if (seconds <= 0)
		return -1;
	int64_t ms = (int64_t)seconds * 1000;
	return ms > INT_MAX ? INT_MAX : (int)ms;
}

int netio_relay_timeout(int io_timeout, int half_closed, int fin_wait,
			int64_t *since)
{
	int timeout = netio_poll_ms(io_timeout);

	if (!half_closed || fin_wait <= 0)
		return timeout;
	if (!*since)
		*since = netio_now_ms();
	int64_t left = *since + (int64_t)fin_wait * 1000 - netio_now_ms();
	if (left <= 0)
		return NETIO_FIN_WAIT_EXPIRED;
	return timeout < 0 || left < timeout ? (int)left : timeout;
}
