/* Taking the connection from socket activation. */
#ifndef SOCKD_ACTIVATION_H
#define SOCKD_ACTIVATION_H

#include <stddef.h>
#include <sys/socket.h>

/* The LISTEN_FDS protocol of sd_listen_fds(3): the number of fds passed
 * from fd 3 on when LISTEN_PID names this process, else 0; -1 on a
 * malformed environment.  The variables are removed, as
 * sd_listen_fds(1) does, so no child inherits them.  Implemented here
 * (not linked from libsystemd) because linking libsystemd alone halves
 * the connection rate of a per-connection process; t/unit/activation
 * checks that both agree. */
int activation_listen_fds(void);

struct client_conn {
	int fd;
	struct sockaddr_storage peer, local;
};

/* Finds the connected TCP socket (fd 3 under systemd, else fd 0), checks
 * it is one, moves it to a private fd and points 0, 1 and 2 at /dev/null
 * wherever they were the client socket (inetd and xinetd pass it on all
 * three), so no stray write reaches the client.  Closes every other fd.
 * Returns 0, or -1 with a reason in ERR. */
int activation_take(struct client_conn *cc, char *err, size_t errlen);

#endif
