/* splice relay.
 *
 * Each direction moves bytes socket -> pipe -> socket.  While the pipe
 * holds data the loop keeps reading into it, so that the source's receive
 * window stays open while the destination is slow, until a read finds
 * nothing to take; from then on it waits only for output until the pipe
 * is empty.  It never polls the source while the pipe holds data: a
 * pipe's capacity counts page slots, not bytes, so a pipe full of small
 * segments refuses more input while the source polls readable, and the
 * loop would spin. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <unistd.h>

#include "netio.h"
#include "relay.h"

#define PIPE_SIZE (1 << 20)

struct direction {
	int from, to;
	int pipe_r, pipe_w;
	size_t in_pipe;
	size_t cap;
	bool drain;      /* a read into the non-empty pipe took nothing: no
			    more reads until it is empty */
	bool eof;        /* source said end of file */
	bool fin_in;     /* the source's FIN has arrived (maybe behind bytes
			    we have not read yet) */
	bool shut;       /* passed on as shutdown(SHUT_WR) */
	uint64_t bytes;
};

int relay_pipes_open(struct relay_pipes *p)
{
	if (pipe2(p->up, O_CLOEXEC | O_NONBLOCK) < 0)
		return -1;
	if (pipe2(p->down, O_CLOEXEC | O_NONBLOCK) < 0) {
		close(p->up[0]);
		close(p->up[1]);
		return -1;
	}
	/* best effort: a smaller pipe only costs more system calls */
	fcntl(p->up[1], F_SETPIPE_SZ, PIPE_SIZE);
	fcntl(p->down[1], F_SETPIPE_SZ, PIPE_SIZE);
	return 0;
}

static size_t pipe_cap(int fd)
{
	int n = fcntl(fd, F_GETPIPE_SZ);
	return n > 0 ? (size_t)n : 65536;
}

/* Moves what it can without blocking.  Returns 1 on progress, 0 on none,
 * -1 on a fatal error (errno set). */
static int pump(struct direction *d)
{
	int progress = 0;

	for (;;) {
		bool moved = false;
		if (d->in_pipe > 0) {
			ssize_t n = splice(d->pipe_r, NULL, d->to, NULL, d->in_pipe,
					   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			if (n > 0) {
				d->in_pipe -= (size_t)n;
				d->bytes += (uint64_t)n;
				if (d->in_pipe == 0)
					d->drain = false;
				moved = true;
			} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
				return -1;
			}
		}
		if (!d->eof && !d->drain && d->in_pipe < d->cap) {
			ssize_t n = splice(d->from, NULL, d->pipe_w, NULL,
					   d->cap - d->in_pipe,
					   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			if (n > 0) {
				d->in_pipe += (size_t)n;
				moved = true;
			} else if (n == 0) {
				d->eof = d->fin_in = true;
				moved = true;
			} else if (errno != EAGAIN && errno != EINTR) {
				return -1;
			} else if (d->in_pipe > 0) {
				d->drain = true;  /* no data, or no free slot */
			}
		}
		if (d->eof && d->in_pipe == 0 && !d->shut) {
			/* ENOTCONN: the peer is already gone; nothing to tell */
			if (shutdown(d->to, SHUT_WR) < 0 && errno != ENOTCONN)
				return -1;
			d->shut = true;
			moved = true;
		}
		if (!moved)
			return progress;
		progress = 1;
	}
}

static short wanted(const struct direction *d, int fd)
{
	short ev = 0;

	if (d->shut)
		return 0;
	/* the source's FIN, even while we take nothing from it: a pipe
	 * that cannot drain must not hide that the source is done (the
	 * fin-wait clock starts then); asked until it came, since it
	 * stays raised */
	if (fd == d->from && !d->fin_in)
		ev |= POLLRDHUP;
	if (d->in_pipe > 0)
		return (short)(ev | (fd == d->to ? POLLOUT : 0));
	if (!d->eof && fd == d->from)
		ev |= POLLIN;
	return ev;
}

void relay_run(int client, int target, struct relay_pipes *p, int io_timeout,
	       int fin_wait, struct relay_stats *st)
{
	struct direction up = { .from = client, .to = target,
				.pipe_r = p->up[0], .pipe_w = p->up[1],
				.cap = pipe_cap(p->up[1]) };
	struct direction down = { .from = target, .to = client,
				  .pipe_r = p->down[0], .pipe_w = p->down[1],
				  .cap = pipe_cap(p->down[1]) };
	int64_t half_closed_at = 0;
	bool hung_up[2] = { false, false };

	st->reason = "closed";
	for (;;) {
		if (pump(&up) < 0 || pump(&down) < 0) {
			st->reason = errno == ECONNRESET ? "connection reset"
			      : errno == EPIPE ? "peer stopped reading"
			      : "i/o error";
			break;
		}
		if (up.shut && down.shut) {
			st->reason = "both sides closed";
			break;
		}
		/* half-closed from the first FIN in (a shut direction saw one) */
		int timeout = netio_relay_timeout(io_timeout,
						  up.fin_in || down.fin_in,
						  fin_wait, &half_closed_at);
		if (timeout == NETIO_FIN_WAIT_EXPIRED) {
			st->reason = "timeout.tcp_fin_wait expired";
			break;
		}
		struct pollfd pfd[2] = {
			{ client, (short)(wanted(&up, client) | wanted(&down, client)), 0 },
			{ target, (short)(wanted(&up, target) | wanted(&down, target)), 0 },
		};
		/* A socket that hung up (its peer's FIN in, our own FIN out)
		 * while the other direction still drains reports POLLHUP on
		 * every poll: leave it out until we need it again, or the
		 * loop would spin. */
		for (int i = 0; i < 2; i++)
			if (!pfd[i].events && hung_up[i])
				pfd[i].fd = -1;
		int rc = poll(pfd, 2, timeout);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc < 0) {
			st->reason = "poll error";
			break;
		}
		/* An error on a socket we are not waiting on (a reset while
		 * the other direction idles) ends the session now; when we
		 * wait on it, the next splice reports the error itself. */
		if (rc > 0 && ((!pfd[0].events && (pfd[0].revents & POLLERR)) ||
			       (!pfd[1].events && (pfd[1].revents & POLLERR)))) {
			st->reason = "connection reset";
			break;
		}
		for (int i = 0; i < 2; i++)
			if (pfd[i].revents & POLLHUP)
				hung_up[i] = true;
		if (pfd[0].revents & POLLRDHUP)
			up.fin_in = true;      /* the client's FIN */
		if (pfd[1].revents & POLLRDHUP)
			down.fin_in = true;    /* the target's FIN */
		if (rc == 0 && !(half_closed_at && fin_wait > 0 &&
				 netio_now_ms() - half_closed_at >= (int64_t)fin_wait * 1000)) {
			st->reason = "timeout.io expired";
			break;
		}
	}
	st->from_client = up.bytes;
	st->to_client = down.bytes;
}
