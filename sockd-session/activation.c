/* Socket activation: systemd (LISTEN_FDS, fd 3) or inetd/xinetd (fd 0). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "activation.h"

#define SD_LISTEN_FDS_START 3

static int parse_env_num(const char *s, long *out)
{
	char *end;

	if (!s || !*s)
		return -1;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || v < 0)
		return -1;
	*out = v;
	return 0;
}

int activation_listen_fds(void)
{
	long pid, n;
	int rc = 0;

	const char *e_pid = getenv("LISTEN_PID");
	const char *e_fds = getenv("LISTEN_FDS");
	if (!e_pid || !e_fds)
		goto out;
	if (parse_env_num(e_pid, &pid)) {
		rc = -1;
		goto out;
	}
	if (pid != (long)getpid())
		goto out;       /* meant for another process: not ours */
	if (parse_env_num(e_fds, &n) || n == 0 ||
	    n > INT_MAX - SD_LISTEN_FDS_START) {
		rc = -1;
		goto out;
	}
	for (int fd = SD_LISTEN_FDS_START; fd < SD_LISTEN_FDS_START + n; fd++) {
		int fl = fcntl(fd, F_GETFD);
		if (fl < 0 || fcntl(fd, F_SETFD, fl | FD_CLOEXEC) < 0) {
			rc = -1;
			goto out;
		}
	}
	rc = (int)n;
out:
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return rc;
}

static int same_file(int a, int b)
{
	struct stat sa, sb;

	return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 &&
	       sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* Points fd 0, 1 or 2 at /dev/null when it is closed or is the client. */
static int tame_std_fds(int client, char *err, size_t errlen)
{
	for (int fd = 0; fd <= 2; fd++) {
		if (fcntl(fd, F_GETFD) >= 0 && !same_file(fd, client))
			continue;
		int nul = open("/dev/null", O_RDWR | O_NOCTTY);
		if (nul < 0 || (nul != fd && dup2(nul, fd) < 0)) {
			snprintf(err, errlen, "cannot open /dev/null: %s",
				 strerror(errno));
			return -1;
		}
		if (nul != fd)
			close(nul);
	}
	return 0;
}

static int check_tcp_socket(int fd, struct client_conn *cc, char *err,
			    size_t errlen)
{
	int type = 0, proto = 0;
	socklen_t len = sizeof(type);

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0) {
		snprintf(err, errlen, "fd %d is not a socket (%s)", fd,
			 strerror(errno));
		return -1;
	}
	len = sizeof(proto);
	if (type != SOCK_STREAM ||
	    getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &len) < 0 ||
	    proto != IPPROTO_TCP) {
		snprintf(err, errlen, "fd %d is not a TCP socket", fd);
		return -1;
	}
	len = sizeof(cc->local);
	if (getsockname(fd, (struct sockaddr *)&cc->local, &len) < 0 ||
	    (cc->local.ss_family != AF_INET && cc->local.ss_family != AF_INET6)) {
		snprintf(err, errlen, "fd %d is not an IPv4/IPv6 socket", fd);
		return -1;
	}
	len = sizeof(cc->peer);
	if (getpeername(fd, (struct sockaddr *)&cc->peer, &len) < 0) {
		snprintf(err, errlen, "fd %d is not a connected socket (%s)", fd,
			 strerror(errno));
		return -1;
	}
	return 0;
}

int activation_take(struct client_conn *cc, char *err, size_t errlen)
{
	int n = activation_listen_fds();
	int fd;

	memset(cc, 0, sizeof(*cc));
	if (n < 0) {
		snprintf(err, errlen, "malformed LISTEN_PID/LISTEN_FDS");
		return -1;
	}
	if (n > 1) {
		snprintf(err, errlen, "%d sockets passed; expected one connection "
			 "(the socket unit needs Accept=yes)", n);
		return -1;
	}
	fd = n == 1 ? SD_LISTEN_FDS_START : 0;
	if (check_tcp_socket(fd, cc, err, errlen))
		return -1;
	/* A private fd above the standard ones, close-on-exec. */
	cc->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (cc->fd < 0) {
		snprintf(err, errlen, "dup: %s", strerror(errno));
		return -1;
	}
	if (fd >= 3)
		close(fd);
	if (tame_std_fds(cc->fd, err, errlen))
		return -1;
	/* Everything else we inherited is closed. */
	if (close_range((unsigned)cc->fd + 1, ~0u, 0) < 0 ||
	    (cc->fd > 3 && close_range(3, (unsigned)cc->fd - 1, 0) < 0)) {
		snprintf(err, errlen, "close_range: %s", strerror(errno));
		return -1;
	}
	return 0;
}
