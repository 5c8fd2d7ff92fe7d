/* Reads and writes under one absolute deadline (the negotiation's). */
#ifndef SOCKD_NETIO_H
#define SOCKD_NETIO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Monotonic milliseconds. */
int64_t netio_now_ms(void);

/* Deadline SECONDS from now; 0 seconds means none (INT64_MAX). */
int64_t netio_deadline(int seconds);

/* Reads until BUF holds exactly WANT bytes (starting from *HAVE).  Returns
 * 0; -1 on EOF, error or deadline, with errno ETIMEDOUT for the deadline
 * and ECONNRESET for EOF.  The socket is non-blocking. */
int netio_read_exact(int fd, uint8_t *buf, size_t *have, size_t want,
		     int64_t deadline);

/* Writes all LEN bytes before DEADLINE.  Returns 0 or -1. */
int netio_write_all(int fd, const void *buf, size_t len, int64_t deadline);

/* Waits until FD has one of EVENTS, before DEADLINE, while watching
 * WATCH (the client, or -1): when WATCH hangs up it gives up at once.
 * Returns 0, or -1 with errno ETIMEDOUT, or ECONNABORTED when WATCH went
 * away.  (A non-blocking connect: POLLOUT; BIND's accept: POLLIN.) */
int netio_wait(int fd, short events, int watch, int64_t deadline);

/* The poll timeout of a relay: IO_TIMEOUT seconds of silence (0: none),
 * bounded once HALF_CLOSED by FIN_WAIT seconds (0: none) counted from
 * *SINCE (set on the first call that sees the half-close).  Returns
 * milliseconds, -1 for none, or NETIO_FIN_WAIT_EXPIRED. */
#define NETIO_FIN_WAIT_EXPIRED (-2)
/* SECONDS (a timeout.* value; 0 or less: none) as a poll(2) timeout:
 * -1 for none; values past INT_MAX ms (24.8 days) are capped there, as
 * poll cannot wait longer in one call. */
int netio_poll_ms(int seconds);

int netio_relay_timeout(int io_timeout, int half_closed, int fin_wait,
			int64_t *since);

#endif
