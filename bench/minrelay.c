/* minrelay: the yardstick of issue 7, a minimal per-connection SOCKS5
 * relay under socket activation: connection on fd 3, method none, CONNECT
 * to an IPv4 address, splice relay.  No rules, no authentication, no
 * privilege drop, no logging; linked against libc only.  What
 * sockd-session costs above this is what its features cost. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int read_exact(int fd, uint8_t *b, size_t n)
{
	size_t have = 0;
	while (have < n) {
		ssize_t r = read(fd, b + have, n - have);
		if (r > 0)
			have += (size_t)r;
		else if (r == 0 || errno != EINTR)
			return -1;
	}
	return 0;
}

static int write_all(int fd, const uint8_t *b, size_t n)
{
	size_t done = 0;
	while (done < n) {
		ssize_t r = write(fd, b + done, n - done);
		if (r > 0)
			done += (size_t)r;
		else if (r < 0 && errno != EINTR)
			return -1;
	}
	return 0;
}

struct dir {
	int from, to, pr, pw;
	size_t in_pipe;
	bool eof, shut;
};

/* drain the pipe before refilling it (a pipe full of small segments
 * refuses input while the source polls readable) */
static int pump(struct dir *d)
{
	for (int i = 0; i < 64; i++) {
		bool moved = false;
		if (d->in_pipe) {
			ssize_t n = splice(d->pr, NULL, d->to, NULL, d->in_pipe,
					   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			if (n > 0) {
				d->in_pipe -= (size_t)n;
				moved = true;
			} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
				return -1;
			}
		}
		if (!d->eof && !d->in_pipe) {
			ssize_t n = splice(d->from, NULL, d->pw, NULL, 1 << 20,
					   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			if (n > 0) {
				d->in_pipe = (size_t)n;
				moved = true;
			} else if (n == 0) {
				d->eof = moved = true;
			} else if (errno != EAGAIN && errno != EINTR) {
				return -1;
			}
		}
		if (d->eof && !d->in_pipe && !d->shut) {
			shutdown(d->to, SHUT_WR);
			d->shut = moved = true;
		}
		if (!moved)
			return 0;
	}
	return 0;
}

static short want(const struct dir *d, int fd)
{
	if (d->shut)
		return 0;
	if (d->in_pipe)
		return fd == d->to ? POLLOUT : 0;
	return !d->eof && fd == d->from ? POLLIN : 0;
}

int main(void)
{
	int c = 3;
	uint8_t b[262];

	if (read_exact(c, b, 2) || b[0] != 5 || read_exact(c, b + 2, b[1]))
		return 1;
	if (write_all(c, (const uint8_t *)"\x05\x00", 2) || read_exact(c, b, 10) ||
	    b[0] != 5 || b[1] != 1 || b[3] != 1)
		return 1;
	struct sockaddr_in a = { .sin_family = AF_INET };
	memcpy(&a.sin_addr, b + 4, 4);
	memcpy(&a.sin_port, b + 8, 2);
	int t = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (t < 0 || connect(t, (struct sockaddr *)&a, sizeof(a)) < 0) {
		write_all(c, (const uint8_t *)"\x05\x05\x00\x01\0\0\0\0\0\0", 10);
		return 1;
	}
	struct sockaddr_in l;
	socklen_t ll = sizeof(l);
	getsockname(t, (struct sockaddr *)&l, &ll);
	uint8_t rep[10] = { 5, 0, 0, 1 };
	memcpy(rep + 4, &l.sin_addr, 4);
	memcpy(rep + 8, &l.sin_port, 2);
	if (write_all(c, rep, 10))
		return 1;
	int up[2], down[2];
	if (pipe2(up, O_NONBLOCK | O_CLOEXEC) || pipe2(down, O_NONBLOCK | O_CLOEXEC))
		return 1;
	fcntl(up[1], F_SETPIPE_SZ, 1 << 20);
	fcntl(down[1], F_SETPIPE_SZ, 1 << 20);
	fcntl(c, F_SETFL, O_NONBLOCK);
	fcntl(t, F_SETFL, O_NONBLOCK);
	struct dir u = { c, t, up[0], up[1], 0, false, false };
	struct dir d = { t, c, down[0], down[1], 0, false, false };
	for (;;) {
		if (pump(&u) || pump(&d))
			return 1;
		if (u.shut && d.shut)
			return 0;
		struct pollfd p[2] = { { c, (short)(want(&u, c) | want(&d, c)), 0 },
				       { t, (short)(want(&u, t) | want(&d, t)), 0 } };
		for (int i = 0; i < 2; i++)
			if (!p[i].events)
				p[i].fd = -1;
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			return 1;
	}
}
