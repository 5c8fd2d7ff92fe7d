/* soakgen: load and fault generator for bench/soak (issue 8).
 *
 *   soakgen target -p PORT
 *       Target server on 127.0.0.1:PORT (0: any free port; prints
 *       "port=N").  Per connection it reads a header (below), then sends
 *       DOWN bytes of one pseudo-random stream while it receives and
 *       checks UP bytes of another; with both done it sends a trailer
 *       (what it received and checksums) and half-closes.  A connection
 *       that ends before its streams did is printed ("conn_end ...").
 *   soakgen soak -x PROXY -t TPORT -n N [-c INFLIGHT] [-u UP] [-d DOWN]
 *                [-r RATE] [-W] [-v] [-k SECONDS -P SPAWNER]
 *       N concurrent SOCKS5 no-auth sessions through 127.0.0.1:PROXY to
 *       the target: all N are established first ("established ..."),
 *       then all stream at once, every byte checked; the sessions stay
 *       open until all are done ("streams ...") and are closed together
 *       ("result ...").  -W: wait for SIGUSR1 after "established" and
 *       after "streams", so that the caller can sample the peak.
 *       -r: bytes/s per session and direction (0: unpaced).
 *       -k: SECONDS into the streams, kill -9 the process of session N/2
 *       (the spawner's child holding the other end of its connection).
 *   soakgen fault KIND -x PROXY -P SPAWNER [-k BYTES] [-b ADDR:PORT]
 *                [-w SECONDS] [-H SECONDS]
 *       One session with one fault, the target in this process, and the
 *       session's process (the spawner's new child) watched until it
 *       exits.  KIND: target-reset, client-reset, blackhole, noread,
 *       halfclose.
 *   soakgen mon -P SPAWNER [-i MS] [-p MS]
 *       Counts the spawner's children every -i MS (250) until SIGTERM,
 *       and sums their PSS and RSS every -p MS (2000).
 *   Every command: -T SECONDS, a hard limit of the whole run (alarm).
 *
 * Header (client -> target, 40 bytes, big-endian): "SOK1", 4 zero bytes,
 * seed, up, down, down rate (bytes/s, 0 unpaced).  Trailer (target ->
 * client, 32 bytes): up bytes that matched, up bytes that did not, the
 * checksum of what it received, the checksum of what it sent.
 *
 * Streams are position-addressed (byte i is a function of the seed and
 * i), so a receiver checks any read at any offset without keeping state,
 * and a sender regenerates what a short write left unsent.  Checksums are
 * kept on both ends over the bytes actually moved, so a byte lost,
 * duplicated or reordered shows twice: in the byte check and in the sums.
 *
 * Every figure goes to stdout as key=value pairs on one line. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"

#define CHUNK (64 * 1024)
#define HDR_LEN 40
#define TRL_LEN 32
#define MAX_SESSIONS 20000
#define MAX_CHILDREN 65536
#define GOLDEN 0x9e3779b97f4a7c15ULL

static int opt_timeout = 300;

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static const char *errname(int e)
{
	switch (e) {
	case 0: return "none";
	case ECONNRESET: return "ECONNRESET";
	case EPIPE: return "EPIPE";
	case ECONNREFUSED: return "ECONNREFUSED";
	case ETIMEDOUT: return "ETIMEDOUT";
	case ECONNABORTED: return "ECONNABORTED";
	case EHOSTUNREACH: return "EHOSTUNREACH";
	case ENETUNREACH: return "ENETUNREACH";
	case EAGAIN: return "EAGAIN";
	case EMFILE: return "EMFILE";
	case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
	default: return strerror(e);
	}
}

static uint64_t parse_size(const char *s)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	switch (*end) {
	case 'k': case 'K': v <<= 10; break;
	case 'm': case 'M': v <<= 20; break;
	case 'g': case 'G': v <<= 30; break;
	case '\0': break;
	default: die("bad size %s", s);
	}
	return v;
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/* ---- streams and checksums --------------------------------------------- */

static uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Bytes OFF .. OFF+N of the stream SEED (N <= CHUNK). */
static void pattern(uint64_t seed, uint64_t off, uint8_t *buf, size_t n)
{
	static uint64_t w[CHUNK / 8 + 2];
	uint64_t first = off / 8;
	size_t skip = (size_t)(off % 8), nw = (skip + n + 7) / 8;

	for (size_t i = 0; i < nw; i++)
		w[i] = mix64(seed + (first + i) * GOLDEN);
	memcpy(buf, (uint8_t *)w + skip, n);
}

/* An order-sensitive 64-bit sum over 8-byte words of the stream, however
 * the stream was cut into reads and writes: both ends cut differently. */
struct sum {
	uint64_t h, pend;
	unsigned npend;
};

static void sum_word(struct sum *s, uint64_t w)
{
	s->h = (((s->h << 23) | (s->h >> 41)) ^ w) * GOLDEN;
}

static void sum_add(struct sum *s, const uint8_t *p, size_t n)
{
	while (n > 0 && s->npend > 0) {
		s->pend |= (uint64_t)*p++ << (8 * s->npend);
		n--;
		if (++s->npend == 8) {
			sum_word(s, s->pend);
			s->pend = 0;
			s->npend = 0;
		}
	}
	for (; n >= 8; p += 8, n -= 8) {
		uint64_t w = 0;
		for (int i = 7; i >= 0; i--)      /* little-endian, as pend */
			w = w << 8 | p[i];
		sum_word(s, w);
	}
	while (n > 0) {
		s->pend |= (uint64_t)*p++ << (8 * s->npend);
		s->npend++;
		n--;
	}
}

static uint64_t sum_final(const struct sum *s, uint64_t len)
{
	struct sum t = *s;
	if (t.npend)
		sum_word(&t, t.pend);
	sum_word(&t, len);
	return t.h;
}

/* One direction of one connection, as seen by one end. */
struct dir {
	uint64_t seed, total, done;   /* done: bytes sent, or received */
	uint64_t ok, bad;             /* receiver: bytes that matched, not */
	struct sum sum;
};

static uint8_t sbuf[CHUNK], rbuf[CHUNK], ebuf[CHUNK];

/* Sends what the socket takes, up to MAX bytes: >0 sent, 0 would block or
 * nothing left, -1 error (errno). */
static long dir_send(int fd, struct dir *d, uint64_t max)
{
	long sent = 0;

	while (d->done < d->total && (uint64_t)sent < max) {
		uint64_t left = d->total - d->done;
		if (left > max - (uint64_t)sent)
			left = max - (uint64_t)sent;
		size_t n = left < CHUNK ? (size_t)left : CHUNK;
		pattern(d->seed, d->done, sbuf, n);
		ssize_t r = send(fd, sbuf, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			return -1;
		}
		sum_add(&d->sum, sbuf, (size_t)r);
		d->done += (uint64_t)r;
		sent += r;
		if ((size_t)r < n)
			break;
	}
	return sent;
}

/* Receives and checks up to MAX bytes (never past the stream's end):
 * >0 received, 0 EOF, -1 error or would block (errno EAGAIN). */
static long dir_recv(int fd, struct dir *d, uint64_t max)
{
	long got = 0;

	while (d->done < d->total && (uint64_t)got < max) {
		uint64_t left = d->total - d->done;
		size_t n = left < CHUNK ? (size_t)left : CHUNK;
		ssize_t r = recv(fd, rbuf, n, MSG_DONTWAIT);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (got > 0 && r < 0 && errno == EAGAIN)
				return got;
			if (got > 0 && r == 0)
				return got;   /* the EOF shows on the next call */
			return r;
		}
		pattern(d->seed, d->done, ebuf, (size_t)r);
		uint64_t bad = 0;
		if (memcmp(rbuf, ebuf, (size_t)r))   /* the rare path counts */
			for (ssize_t i = 0; i < r; i++)
				bad += rbuf[i] != ebuf[i];
		d->ok += (uint64_t)r - bad;
		d->bad += bad;
		sum_add(&d->sum, rbuf, (size_t)r);
		d->done += (uint64_t)r;
		got += r;
	}
	return got;
}

static uint64_t dir_good(const struct dir *d)
{
	return d->ok;
}

static uint64_t stream_seed(uint64_t seed, int down)
{
	return mix64(seed * 2 + (uint64_t)down + 1);
}

/* ---- sockets ----------------------------------------------------------- */

static int tcp_listen(int port, int backlog, int *bound)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int one = 1;

	if (fd < 0)
		die("socket: %s", strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    listen(fd, backlog) < 0)
		die("listen on %d: %s", port, strerror(errno));
	getsockname(fd, (struct sockaddr *)&a, &len);
	*bound = ntohs(a.sin_port);
	return fd;
}

static int tcp_connect_nb(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int one = 1;

	if (fd < 0)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0 &&
	    errno != EINPROGRESS) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static void set_nonblock(int fd)
{
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

static void raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static void write_header(uint8_t *h, uint64_t seed, uint64_t up,
			 uint64_t down, uint64_t rate)
{
	memset(h, 0, HDR_LEN);
	memcpy(h, "SOK1", 4);
	put64(h + 8, seed);
	put64(h + 16, up);
	put64(h + 24, down);
	put64(h + 32, rate);
}

/* ---- target server ----------------------------------------------------- */

struct tconn {
	int fd;
	uint8_t hdr[HDR_LEN];
	size_t hlen;
	uint64_t seed, rate;
	struct dir up, down;
	uint8_t trl[TRL_LEN];
	size_t tsent;
	bool trl_ready, wr_shut, paused;
	double t_data;
	uint32_t events;
};

static volatile sig_atomic_t stop_flag;

static void on_stop(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static struct tconn *tconns[MAX_SESSIONS];
static int t_hiwater;          /* slots in use are below this */
static bool t_any_rate;        /* some connection is paced: scan for them */
static long t_completed, t_abnormal, t_accepted;
static uint64_t t_up_bad;

static void t_end(int ep, int slot, const char *how)
{
	struct tconn *c = tconns[slot];
	bool done = c->trl_ready && c->tsent == TRL_LEN;

	if (!done || how) {
		t_abnormal++;
		printf("conn_end seed=%016llx up_recv=%llu up_ok=%llu up_bad=%llu "
		       "down_sent=%llu down_total=%llu how=%s\n",
		       (unsigned long long)c->seed,
		       (unsigned long long)c->up.done,
		       (unsigned long long)dir_good(&c->up),
		       (unsigned long long)c->up.bad,
		       (unsigned long long)c->down.done,
		       (unsigned long long)c->down.total, how ? how : "eof");
		fflush(stdout);
	} else {
		t_completed++;
	}
	t_up_bad += c->up.bad;
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c);
	tconns[slot] = NULL;
}

static void t_interest(int ep, int slot)
{
	struct tconn *c = tconns[slot];
	uint32_t ev = EPOLLIN;
	if (c->hlen == HDR_LEN && !c->wr_shut &&
	    ((c->down.done < c->down.total && !c->paused) ||
	     (c->trl_ready && c->tsent < TRL_LEN)))
		ev |= EPOLLOUT;
	if (ev != c->events) {
		struct epoll_event e = { .events = ev, .data.u32 = (uint32_t)slot + 1 };
		epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
		c->events = ev;
	}
}

/* Returns false when the connection was ended. */
static bool t_progress(int ep, int slot, uint32_t revents)
{
	struct tconn *c = tconns[slot];

	if (revents & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
		if (c->hlen < HDR_LEN) {
			ssize_t r = recv(c->fd, c->hdr + c->hlen, HDR_LEN - c->hlen,
					 MSG_DONTWAIT);
			if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
				t_end(ep, slot, r == 0 ? "eof-in-header"
				      : errname(errno));
				return false;
			}
			if (r > 0)
				c->hlen += (size_t)r;
			if (c->hlen == HDR_LEN) {
				if (memcmp(c->hdr, "SOK1", 4)) {
					t_end(ep, slot, "bad-header");
					return false;
				}
				c->seed = get64(c->hdr + 8);
				c->up = (struct dir){ .seed = stream_seed(c->seed, 0),
						      .total = get64(c->hdr + 16) };
				c->down = (struct dir){ .seed = stream_seed(c->seed, 1),
							.total = get64(c->hdr + 24) };
				c->rate = get64(c->hdr + 32);
				c->t_data = now();
				t_any_rate |= c->rate > 0;
			}
		}
		if (c->hlen == HDR_LEN && c->up.done < c->up.total) {
			long r = dir_recv(c->fd, &c->up, 4 * CHUNK);
			if (r == 0 || (r < 0 && errno != EAGAIN)) {
				t_end(ep, slot, r == 0 ? "eof" : errname(errno));
				return false;
			}
		} else if (c->hlen == HDR_LEN) {
			/* all in: EOF is the normal end once the trailer is out;
			 * any byte more is a protocol error */
			uint8_t x;
			ssize_t k = recv(c->fd, &x, 1, MSG_DONTWAIT);
			if (k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR)) {
				bool done = c->trl_ready && c->tsent == TRL_LEN;
				t_end(ep, slot, k == 0 ? (done ? NULL : "eof")
				      : errname(errno));
				return false;
			}
			if (k > 0) {
				t_end(ep, slot, "extra-bytes");
				return false;
			}
		}
	}
	if (c->hlen == HDR_LEN && c->down.done < c->down.total) {
		uint64_t budget = UINT64_MAX;
		if (c->rate) {
			double allowed = (now() - c->t_data) * (double)c->rate;
			budget = allowed > (double)c->down.done
				 ? (uint64_t)(allowed - (double)c->down.done) : 0;
			c->paused = budget == 0;
		}
		if (budget && dir_send(c->fd, &c->down, budget < 4 * CHUNK ? budget
				       : 4 * CHUNK) < 0) {
			t_end(ep, slot, errname(errno));
			return false;
		}
	}
	if (c->hlen == HDR_LEN && !c->trl_ready && c->up.done == c->up.total &&
	    c->down.done == c->down.total) {
		put64(c->trl, dir_good(&c->up));
		put64(c->trl + 8, c->up.bad);
		put64(c->trl + 16, sum_final(&c->up.sum, c->up.done));
		put64(c->trl + 24, sum_final(&c->down.sum, c->down.done));
		c->trl_ready = true;
	}
	if (c->trl_ready && c->tsent < TRL_LEN) {
		ssize_t r = send(c->fd, c->trl + c->tsent, TRL_LEN - c->tsent,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (r < 0 && errno != EAGAIN && errno != EINTR) {
			t_end(ep, slot, errname(errno));
			return false;
		}
		if (r > 0)
			c->tsent += (size_t)r;
		if (c->tsent == TRL_LEN) {
			shutdown(c->fd, SHUT_WR);
			c->wr_shut = true;
		}
	}
	t_interest(ep, slot);
	return true;
}

static int cmd_target(int argc, char **argv)
{
	int port = 0, opt;

	while ((opt = getopt(argc, argv, "p:T:")) != -1) {
		switch (opt) {
		case 'p': port = atoi(optarg); break;
		case 'T': opt_timeout = atoi(optarg); break;
		default: die("target: bad option");
		}
	}
	alarm((unsigned)opt_timeout);
	raise_nofile();
	struct sigaction sa = { .sa_handler = on_stop };
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	int bound, lfd = tcp_listen(port, 4096, &bound);
	set_nonblock(lfd);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event le = { .events = EPOLLIN, .data.u32 = 0 };
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &le);
	printf("port=%d\n", bound);
	fflush(stdout);

	struct epoll_event evs[256];
	while (!stop_flag) {
		/* paced connections are woken by the clock, not by the socket */
		bool paced = false;
		for (int s = 0; t_any_rate && s < t_hiwater; s++)
			if (tconns[s] && tconns[s]->paused) {
				paced = true;
				tconns[s]->paused = false;
				t_progress(ep, s, 0);
			}
		int n = epoll_wait(ep, evs, 256, paced ? 10 : 200);
		for (int i = 0; i < n; i++) {
			uint32_t id = evs[i].data.u32;
			if (id == 0) {
				for (;;) {
					int fd = accept4(lfd, NULL, NULL,
							 SOCK_NONBLOCK | SOCK_CLOEXEC);
					if (fd < 0)
						break;
					int s = 0;
					while (s < MAX_SESSIONS && tconns[s])
						s++;
					if (s == MAX_SESSIONS) {
						close(fd);
						continue;
					}
					tconns[s] = calloc(1, sizeof(struct tconn));
					if (!tconns[s])
						die("out of memory");
					tconns[s]->fd = fd;
					tconns[s]->events = EPOLLIN;
					if (s >= t_hiwater)
						t_hiwater = s + 1;
					struct epoll_event e = { .events = EPOLLIN,
								 .data.u32 = (uint32_t)s + 1 };
					epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
					t_accepted++;
				}
				continue;
			}
			if (tconns[id - 1])
				t_progress(ep, (int)id - 1, evs[i].events);
		}
	}
	printf("target_summary accepted=%ld completed=%ld abnormal=%ld up_bad=%llu\n",
	       t_accepted, t_completed, t_abnormal, (unsigned long long)t_up_bad);
	return 0;
}

/* ---- the session's process --------------------------------------------- */

static int children_of(pid_t parent, pid_t *out, int max)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)parent,
		 (int)parent);
	FILE *f = fopen(path, "r");
	int n = 0;
	long v;

	if (!f)
		return -1;
	while (n < max && fscanf(f, "%ld", &v) == 1)
		out[n++] = (pid_t)v;
	fclose(f);
	return n;
}

/* The spawner's child that is not in BEFORE, waiting up to 2 s. */
static pid_t new_child(pid_t spawner, const pid_t *before, int nbefore)
{
	static pid_t now_[MAX_CHILDREN];
	for (int tries = 0; tries < 400; tries++) {
		int n = children_of(spawner, now_, MAX_CHILDREN);
		for (int i = 0; i < n; i++) {
			bool old = false;
			for (int j = 0; j < nbefore && !old; j++)
				old = now_[i] == before[j];
			if (!old)
				return now_[i];
		}
		sleep_ms(5);
	}
	return 0;
}

/* Gone, or a zombie its parent has yet to reap: the session has exited. */
static bool has_exited(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return true;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return true;
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	return !p || p[1] == '\0' || p[2] == 'Z' || p[2] == 'X';
}

/* PSS and RSS of PID in KiB, from one read of smaps_rollup. */
static int smaps_rollup(pid_t pid, long *pss, long *rss)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	*pss = *rss = 0;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "Pss:", 4))
			*pss = atol(line + 4);
		else if (!strncmp(line, "Rss:", 4))
			*rss = atol(line + 4);
	}
	fclose(f);
	return 0;
}

static long pss_of(pid_t pid)
{
	long p, r;
	return smaps_rollup(pid, &p, &r) == 0 ? p : -1;
}

/* The session's end of our connection FD to the proxy, from
 * /proc/net/tcp (this network namespace): the socket whose local port is
 * the proxy's and whose peer is our address.  Gives its TCP state, its
 * receive queue (bytes the session has not read) and its inode. */
struct peer_sock {
	unsigned state;
	unsigned long rxq, inode;
};

static int peer_sock_at(const struct sockaddr_in *me, int proxy_port,
			struct peer_sock *ps)
{
	char line[512], want_local[32], want_peer[32];
	int found = -1;

	/* the kernel prints an address as the number its network-order
	 * bytes make on this host */
	snprintf(want_local, sizeof(want_local), "%08X:%04X",
		 (unsigned)htonl(INADDR_LOOPBACK), (unsigned)proxy_port);
	snprintf(want_peer, sizeof(want_peer), "%08X:%04X",
		 (unsigned)me->sin_addr.s_addr, (unsigned)ntohs(me->sin_port));
	FILE *f = fopen("/proc/net/tcp", "r");
	if (!f)
		return -1;
	while (found && fgets(line, sizeof(line), f)) {
		char local[64], peer[64];
		unsigned st;
		unsigned long txq, rxq, ino;
		if (sscanf(line, "%*d: %63s %63s %x %lx:%lx %*s %*s %*d %*d %lu",
			   local, peer, &st, &txq, &rxq, &ino) == 6 &&
		    !strcmp(local, want_local) && !strcmp(peer, want_peer)) {
			*ps = (struct peer_sock){ st, rxq, ino };
			found = 0;
		}
	}
	fclose(f);
	return found;
}

static int peer_sock_of(int fd, int proxy_port, struct peer_sock *ps)
{
	struct sockaddr_in me;
	socklen_t len = sizeof(me);

	if (getsockname(fd, (struct sockaddr *)&me, &len) < 0)
		return -1;
	return peer_sock_at(&me, proxy_port, ps);
}

static const char *tcp_state_name(unsigned st)
{
	static const char *const names[] = { "?", "ESTABLISHED", "SYN_SENT",
		"SYN_RECV", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT", "CLOSE",
		"CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING" };
	return st < sizeof(names) / sizeof(names[0]) ? names[st] : "?";
}

/* The spawner's child that holds the session's end of our connection. */
static pid_t session_of(pid_t spawner, int fd, int proxy_port)
{
	struct peer_sock ps;
	if (peer_sock_of(fd, proxy_port, &ps))
		return 0;
	char target[64];
	snprintf(target, sizeof(target), "socket:[%lu]", ps.inode);
	static pid_t kids[MAX_CHILDREN];
	int n = children_of(spawner, kids, MAX_CHILDREN);
	for (int i = 0; i < n; i++) {
		for (int d = 0; d < 64; d++) {
			char path[64], link[64];
			snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)kids[i], d);
			ssize_t k = readlink(path, link, sizeof(link) - 1);
			if (k <= 0)
				continue;
			link[k] = '\0';
			if (!strcmp(link, target))
				return kids[i];
		}
	}
	return 0;
}

/* ---- soak client ------------------------------------------------------- */

enum { S_IDLE, S_CONNECTING, S_GREET, S_REQ, S_EST, S_DATA, S_DONE, S_FAILED };
static const char *const state_name[] = { "idle", "connecting", "greeting",
	"request", "established", "data", "done", "failed" };

struct sess {
	int fd, state, failed_in;
	uint8_t io[16];
	size_t iolen;
	uint8_t hdr[HDR_LEN];
	size_t hsent;
	struct dir up, down;
	uint8_t trl[TRL_LEN];
	size_t trlen;
	bool paused, intact;
	double t0, t_est, t_fail;
	const char *why;
	int err;
};

static struct sess *S;
static int n_sess, n_open, max_open;
static int n_streaming;        /* sessions in S_DATA */

static void s_fail(int ep, struct sess *s, const char *why, int err)
{
	if (s->state == S_DATA)
		n_streaming--;
	s->failed_in = s->state;
	s->state = S_FAILED;
	s->why = why;
	s->err = err;
	s->t_fail = now();
	if (s->fd >= 0) {
		epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
		close(s->fd);
		s->fd = -1;
		n_open--;
	}
}

static void s_watch(int ep, struct sess *s, uint32_t ev)
{
	struct epoll_event e = { .events = ev, .data.u32 = (uint32_t)(s - S) };
	epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &e);
}

/* Reads up to WANT handshake bytes into s->io: 1 complete, 0 not yet,
 * -1 failed (the session is failed). */
static int s_read_io(int ep, struct sess *s, size_t want)
{
	ssize_t r = recv(s->fd, s->io + s->iolen, want - s->iolen, MSG_DONTWAIT);
	if (r == 0) {
		s_fail(ep, s, "eof in handshake", 0);
		return -1;
	}
	if (r < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		s_fail(ep, s, "recv in handshake", errno);
		return -1;
	}
	s->iolen += (size_t)r;
	return s->iolen == want;
}

static void s_handshake(int ep, struct sess *s, uint32_t ev, int tport,
			int *inflight)
{
	if (ev & EPOLLERR && s->state == S_CONNECTING) {
		int e = 0;
		socklen_t l = sizeof(e);
		getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &e, &l);
		s_fail(ep, s, "connect to proxy", e);
		(*inflight)--;
		return;
	}
	switch (s->state) {
	case S_CONNECTING: {
		int e = 0;
		socklen_t l = sizeof(e);
		getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &e, &l);
		if (e) {
			s_fail(ep, s, "connect to proxy", e);
			(*inflight)--;
			return;
		}
		static const uint8_t greet[3] = { 5, 1, 0 };
		if (send(s->fd, greet, 3, MSG_NOSIGNAL) != 3) {
			s_fail(ep, s, "send greeting", errno);
			(*inflight)--;
			return;
		}
		s->state = S_GREET;
		s->iolen = 0;
		s_watch(ep, s, EPOLLIN);
		return;
	}
	case S_GREET: {
		int r = s_read_io(ep, s, 2);
		if (r < 0) {
			(*inflight)--;
			return;
		}
		if (r == 0)
			return;
		if (s->io[0] != 5 || s->io[1] != 0) {
			s_fail(ep, s, "method refused", 0);
			(*inflight)--;
			return;
		}
		uint8_t req[10] = { 5, 1, 0, 1, 127, 0, 0, 1,
				    (uint8_t)(tport >> 8), (uint8_t)tport };
		if (send(s->fd, req, 10, MSG_NOSIGNAL) != 10) {
			s_fail(ep, s, "send request", errno);
			(*inflight)--;
			return;
		}
		s->state = S_REQ;
		s->iolen = 0;
		return;
	}
	case S_REQ: {
		/* the session binds IPv4 toward an IPv4 target: 10 bytes */
		int r = s_read_io(ep, s, 10);
		if (r < 0) {
			(*inflight)--;
			return;
		}
		if (r == 0)
			return;
		(*inflight)--;
		if (s->io[0] != 5 || s->io[1] != 0) {
			s_fail(ep, s, "request refused", 0);
			s->err = -s->io[1];
			return;
		}
		s->state = S_EST;
		s->t_est = now();
		/* idle until the data phase; ERR/HUP still report a death */
		s_watch(ep, s, 0);
		return;
	}
	default:
		if (ev & (EPOLLERR | EPOLLHUP | EPOLLIN))
			s_fail(ep, s, "closed while idle", 0);
	}
}

static void s_data(int ep, struct sess *s, uint32_t ev, uint64_t rate,
		   double t_data)
{
	if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
		if (s->down.done < s->down.total) {
			long r = dir_recv(s->fd, &s->down, 4 * CHUNK);
			if (r == 0) {
				s_fail(ep, s, "eof", 0);
				return;
			}
			if (r < 0 && errno != EAGAIN) {
				s_fail(ep, s, "recv", errno);
				return;
			}
		}
		if (s->down.done == s->down.total && s->trlen < TRL_LEN) {
			ssize_t r = recv(s->fd, s->trl + s->trlen, TRL_LEN - s->trlen,
					 MSG_DONTWAIT);
			if (r == 0) {
				s_fail(ep, s, "eof before trailer", 0);
				return;
			}
			if (r < 0 && errno != EAGAIN && errno != EINTR) {
				s_fail(ep, s, "recv trailer", errno);
				return;
			}
			if (r > 0)
				s->trlen += (size_t)r;
			if (s->trlen == TRL_LEN) {
				s->state = S_DONE;
				n_streaming--;
				s->intact =
					get64(s->trl) == s->up.total &&
					get64(s->trl + 8) == 0 &&
					get64(s->trl + 16) == sum_final(&s->up.sum, s->up.done) &&
					get64(s->trl + 24) == sum_final(&s->down.sum, s->down.done) &&
					dir_good(&s->down) == s->down.total &&
					s->down.bad == 0;
				s_watch(ep, s, 0);
				return;
			}
		}
	}
	if (s->hsent < HDR_LEN) {
		ssize_t r = send(s->fd, s->hdr + s->hsent, HDR_LEN - s->hsent,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (r < 0 && errno != EAGAIN && errno != EINTR) {
			s_fail(ep, s, "send header", errno);
			return;
		}
		if (r > 0)
			s->hsent += (size_t)r;
	}
	if (s->hsent == HDR_LEN && s->up.done < s->up.total) {
		uint64_t budget = 4 * CHUNK;
		if (rate) {
			double allowed = (now() - t_data) * (double)rate;
			budget = allowed > (double)s->up.done
				 ? (uint64_t)(allowed - (double)s->up.done) : 0;
			if (budget > 4 * CHUNK)
				budget = 4 * CHUNK;
			s->paused = budget == 0;
		}
		if (budget && dir_send(s->fd, &s->up, budget) < 0) {
			s_fail(ep, s, "send", errno);
			return;
		}
	}
	bool want_out = s->hsent < HDR_LEN ||
			(s->up.done < s->up.total && !s->paused);
	s_watch(ep, s, EPOLLIN | (want_out ? EPOLLOUT : 0));
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double pctl(const double *v, int n, double p)
{
	if (n <= 0)
		return 0;
	int i = (int)(p / 100.0 * n + 0.999999) - 1;
	return v[i < 0 ? 0 : i >= n ? n - 1 : i];
}

/* Waits for SIGUSR1 (blocked since the start), at most SECONDS. */
static void wait_go(int seconds)
{
	sigset_t set;
	struct timespec ts = { seconds, 0 };
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigtimedwait(&set, NULL, &ts);
}

static int cmd_soak(int argc, char **argv)
{
	int xport = 0, tport = 0, inflight_max = 64, opt;
	uint64_t up = 1 << 20, down = 1 << 20, rate = 0;
	bool wait_signal = false, verbose = false;
	double kill_after = -1;
	pid_t spawner = 0;

	n_sess = 1;
	while ((opt = getopt(argc, argv, "x:t:n:c:u:d:r:WvT:k:P:")) != -1) {
		switch (opt) {
		case 'x': xport = atoi(optarg); break;
		case 't': tport = atoi(optarg); break;
		case 'n': n_sess = atoi(optarg); break;
		case 'c': inflight_max = atoi(optarg); break;
		case 'u': up = parse_size(optarg); break;
		case 'd': down = parse_size(optarg); break;
		case 'r': rate = parse_size(optarg); break;
		case 'W': wait_signal = true; break;
		case 'v': verbose = true; break;
		case 'T': opt_timeout = atoi(optarg); break;
		case 'k': kill_after = atof(optarg); break;
		case 'P': spawner = (pid_t)atoi(optarg); break;
		default: die("soak: bad option");
		}
	}
	if (!xport || !tport || n_sess < 1 || n_sess > MAX_SESSIONS)
		die("soak: -x, -t and -n (1..%d) are needed", MAX_SESSIONS);
	if (kill_after >= 0 && !spawner)
		die("soak: -k needs -P, the spawner");
	alarm((unsigned)opt_timeout);
	raise_nofile();
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL);
	S = calloc((size_t)n_sess, sizeof(*S));
	if (!S)
		die("out of memory");
	int ep = epoll_create1(EPOLL_CLOEXEC);
	double t_start = now();
	uint64_t base = mix64((uint64_t)getpid() ^ (uint64_t)(t_start * 1e9));

	/* phase 1: every session up to its CONNECT reply, INFLIGHT at a time
	 * (a burst of 1 000 connects would measure the listen backlog) */
	double t1 = now(), deadline = t1 + 120;
	int next = 0, inflight = 0, resolved = 0;
	struct epoll_event evs[256];
	while (resolved < n_sess && now() < deadline) {
		while (inflight < inflight_max && next < n_sess) {
			struct sess *s = &S[next++];
			s->t0 = now();
			s->fd = tcp_connect_nb(xport);
			if (s->fd < 0) {
				s->state = S_CONNECTING;
				s_fail(ep, s, "connect to proxy", errno);
				continue;
			}
			n_open++;
			if (n_open > max_open)
				max_open = n_open;
			s->state = S_CONNECTING;
			struct epoll_event e = { .events = EPOLLOUT,
						 .data.u32 = (uint32_t)(s - S) };
			epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &e);
			inflight++;
		}
		int n = epoll_wait(ep, evs, 256, 100);
		for (int i = 0; i < n; i++) {
			struct sess *s = &S[evs[i].data.u32];
			if (s->state != S_FAILED)
				s_handshake(ep, s, evs[i].events, tport, &inflight);
		}
		resolved = 0;
		for (int i = 0; i < next; i++)
			resolved += S[i].state == S_EST || S[i].state == S_FAILED;
	}
	for (int i = 0; i < n_sess; i++)
		if (S[i].state != S_EST && S[i].state != S_FAILED) {
			if (S[i].state == S_IDLE)
				S[i].fd = -1;
			s_fail(ep, &S[i], "handshake timeout", ETIMEDOUT);
		}
	double hs_s = now() - t1;
	double *hs = calloc((unsigned)n_sess, sizeof(double));
	int est = 0;
	for (int i = 0; i < n_sess; i++)
		if (S[i].state == S_EST)
			hs[est++] = (S[i].t_est - S[i].t0) * 1000;
	qsort(hs, (size_t)est, sizeof(double), cmp_double);
	printf("established sessions=%d established=%d failed_handshakes=%d "
	       "open=%d handshake_s=%.2f hs_p50_ms=%.1f hs_p99_ms=%.1f "
	       "hs_max_ms=%.1f\n", n_sess, est, n_sess - est, n_open, hs_s,
	       pctl(hs, est, 50), pctl(hs, est, 99), pctl(hs, est, 100));
	fflush(stdout);
	if (wait_signal)
		wait_go(120);

	/* phase 2: every established session streams at once */
	double t2 = now();
	for (int i = 0; i < n_sess; i++) {
		struct sess *s = &S[i];
		if (s->state != S_EST)
			continue;
		uint64_t seed = base + (uint64_t)i;
		write_header(s->hdr, seed, up, down, rate);
		s->up = (struct dir){ .seed = stream_seed(seed, 0), .total = up };
		s->down = (struct dir){ .seed = stream_seed(seed, 1), .total = down };
		s->state = S_DATA;
		n_streaming++;
		s_watch(ep, s, EPOLLIN | EPOLLOUT);
	}
	deadline = t_start + opt_timeout - 5;   /* before the alarm */
	/* -k: the session process of the middle session is killed from in
	 * here, at a known moment of the streams (a shell is too slow to
	 * aim: seconds, on a loaded machine) */
	int victim = n_sess / 2;
	pid_t victim_pid = 0;
	double t_kill = 0, t_gone = 0;
	while (n_streaming > 0 && now() < deadline) {
		if (kill_after >= 0 && !t_kill && now() - t2 >= kill_after) {
			t_kill = now();
			if (S[victim].state == S_DATA)
				victim_pid = session_of(spawner, S[victim].fd, xport);
			if (victim_pid)
				kill(victim_pid, SIGKILL);
		}
		if (victim_pid && !t_gone && has_exited(victim_pid))
			t_gone = now();
		/* paced sessions are woken by the clock, not by the socket */
		bool paced = false;
		for (int i = 0; rate && i < n_sess; i++)
			if (S[i].state == S_DATA && S[i].paused) {
				paced = true;
				S[i].paused = false;
				s_data(ep, &S[i], 0, rate, t2);
			}
		int n = epoll_wait(ep, evs, 256, paced ? 10 : 200);
		for (int i = 0; i < n; i++) {
			struct sess *s = &S[evs[i].data.u32];
			if (s->state == S_DATA)
				s_data(ep, s, evs[i].events, rate, t2);
			else if (s->state == S_DONE)
				/* done; a reset or hang-up now would only fire
				 * again and again: stop watching, keep it open */
				epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
		}
	}
	double data_s = now() - t2;
	if (kill_after >= 0) {
		for (int i = 0; i < 200 && victim_pid && !t_gone; i++) {
			sleep_ms(5);
			if (has_exited(victim_pid))
				t_gone = now();
		}
		printf("killed idx=%d pid=%d at_ms=%.0f gone_ms=%.1f noticed_ms=%.1f\n",
		       victim, (int)victim_pid, (t_kill - t2) * 1000,
		       t_gone ? (t_gone - t_kill) * 1000 : -1,
		       S[victim].t_fail ? (S[victim].t_fail - t_kill) * 1000 : -1);
		fflush(stdout);
	}
	for (int i = 0; i < n_sess; i++)
		if (S[i].state == S_DATA)
			s_fail(ep, &S[i], "data timeout", ETIMEDOUT);

	long intact = 0, corrupt = 0, incomplete = 0;
	uint64_t up_exp = 0, up_ok = 0, down_exp = 0, down_ok = 0, bad = 0;
	long sum_mismatch = 0;
	for (int i = 0; i < n_sess; i++) {
		struct sess *s = &S[i];
		if (s->state == S_FAILED && s->failed_in < S_EST)
			continue;
		up_exp += up;
		down_exp += down;
		down_ok += dir_good(&s->down);
		bad += s->down.bad;
		if (s->state == S_DONE) {
			up_ok += get64(s->trl) < up ? get64(s->trl) : up;
			bad += get64(s->trl + 8);
			if (s->intact) {
				intact++;
			} else {
				corrupt++;
				sum_mismatch++;
			}
		} else {
			incomplete++;
		}
	}
	printf("streams intact=%ld corrupt=%ld incomplete=%ld open=%d data_s=%.2f "
	       "mib_s=%.1f\n", intact, corrupt, incomplete, n_open, data_s,
	       (double)(up_ok + down_ok) / 1048576.0 / (data_s > 0 ? data_s : 1));
	fflush(stdout);
	if (wait_signal)
		wait_go(120);
	for (int i = 0; i < n_sess; i++)
		if (S[i].fd >= 0) {
			close(S[i].fd);
			S[i].fd = -1;
		}
	if (verbose)
		for (int i = 0; i < n_sess; i++) {
			struct sess *s = &S[i];
			if (s->state == S_DONE && s->intact)
				continue;
			printf("session idx=%d state=%s failed_in=%s why=\"%s\" err=%s "
			       "rep=%d up_sent=%llu down_recv=%llu down_ok=%llu "
			       "down_bad=%llu trailer=%zu after_ms=%.0f\n", i,
			       state_name[s->state], state_name[s->failed_in],
			       s->why ? s->why : "", s->err > 0 ? errname(s->err) : "none",
			       s->err < 0 ? -s->err : 0,
			       (unsigned long long)s->up.done,
			       (unsigned long long)s->down.done,
			       (unsigned long long)dir_good(&s->down),
			       (unsigned long long)s->down.bad, s->trlen,
			       s->t_fail ? (s->t_fail - t2) * 1000 : 0);
		}
	printf("result sessions=%d established=%d failed_handshakes=%d "
	       "max_open=%d intact=%ld corrupt=%ld incomplete=%ld "
	       "up_expected=%llu up_ok=%llu down_expected=%llu down_ok=%llu "
	       "bad_bytes=%llu sum_mismatch=%ld lost_bytes=%llu data_s=%.2f "
	       "handshake_s=%.2f\n", n_sess, est, n_sess - est, max_open,
	       intact, corrupt, incomplete,
	       (unsigned long long)up_exp, (unsigned long long)up_ok,
	       (unsigned long long)down_exp, (unsigned long long)down_ok,
	       (unsigned long long)bad, sum_mismatch,
	       (unsigned long long)(up_exp + down_exp - up_ok - down_ok),
	       data_s, hs_s);
	free(hs);
	return 0;
}

/* ---- faults ------------------------------------------------------------ */

struct fault {
	int xport, lport, lfd, c, t;
	pid_t spawner, pid;
	double t0;
};

static int poll1(int fd, short ev, int ms)
{
	struct pollfd p = { fd, ev, 0 };
	int r = poll(&p, 1, ms);
	return r > 0 ? p.revents : r;
}

/* Greeting, method reply, CONNECT to ADDR:PORT; returns the request's send
 * time.  The reply is left to the caller. */
static double f_request(struct fault *f, struct in_addr addr, int port)
{
	static pid_t before[MAX_CHILDREN];
	int nb = children_of(f->spawner, before, MAX_CHILDREN);
	if (nb < 0)
		die("cannot read the children of spawner %d", (int)f->spawner);
	f->c = tcp_connect_nb(f->xport);
	if (f->c < 0 || !(poll1(f->c, POLLOUT, 5000) & POLLOUT))
		die("connect to the proxy failed");
	uint8_t greet[3] = { 5, 1, 0 }, rep[2];
	if (send(f->c, greet, 3, MSG_NOSIGNAL) != 3 ||
	    !(poll1(f->c, POLLIN, 5000) & POLLIN) ||
	    recv(f->c, rep, 2, MSG_WAITALL) != 2 || rep[0] != 5 || rep[1] != 0)
		die("greeting failed");
	f->pid = new_child(f->spawner, before, nb);
	if (!f->pid)
		die("no session process found under spawner %d", (int)f->spawner);
	uint8_t req[10] = { 5, 1, 0, 1, 0, 0, 0, 0, (uint8_t)(port >> 8),
			    (uint8_t)port };
	memcpy(req + 4, &addr, 4);
	double t = now();
	if (send(f->c, req, 10, MSG_NOSIGNAL) != 10)
		die("send request: %s", strerror(errno));
	return t;
}

/* Reads the 10-byte reply within MS; returns its length. */
static int f_reply(struct fault *f, uint8_t *rep, int ms)
{
	size_t have = 0;
	double end = now() + ms / 1000.0;
	while (have < 10 && now() < end) {
		int r = poll1(f->c, POLLIN, (int)((end - now()) * 1000) + 1);
		if (r <= 0)
			continue;
		ssize_t n = recv(f->c, rep + have, 10 - have, MSG_DONTWAIT);
		if (n <= 0)
			break;
		have += (size_t)n;
	}
	return (int)have;
}

static void f_connect_target(struct fault *f)
{
	struct in_addr lo = { htonl(INADDR_LOOPBACK) };
	uint8_t rep[10];
	f_request(f, lo, f->lport);
	if (f_reply(f, rep, 5000) != 10 || rep[1] != 0)
		die("CONNECT through the proxy failed");
	if (!(poll1(f->lfd, POLLIN, 5000) & POLLIN))
		die("the target saw no connection");
	f->t = accept4(f->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (f->t < 0)
		die("accept: %s", strerror(errno));
}

static double ms_since(double t0, double t)
{
	return t > 0 ? (t - t0) * 1000 : -1;
}

/* One end of a fault's connection: what it sent, received, and how its
 * reads and writes ended. */
struct end {
	int fd;
	struct dir tx, rx;
	int rd_err, wr_err;     /* 0 open; -1 EOF (reads); errno */
	double rd_at, wr_at;
	bool writing;
	const char *peer;       /* how the peer ended: FIN or RST */
};

/* A reset is reported once, to whichever call comes first (a read then
 * says EOF): the TCP state tells a FIN from a RST. */
static const char *peer_close(int fd)
{
	struct tcp_info ti;
	socklen_t l = sizeof(ti);
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &l) < 0)
		return "?";
	switch (ti.tcpi_state) {
	case TCP_CLOSE_WAIT: case TCP_LAST_ACK: return "FIN";
	case TCP_CLOSE: return "RST";
	case TCP_ESTABLISHED: return "none";
	default: return "other";
	}
}

static void end_step(struct end *e)
{
	if (e->fd < 0)
		return;
	if (!e->rd_err) {
		long r = dir_recv(e->fd, &e->rx, 4 * CHUNK);
		if (r == 0 || (r < 0 && errno != EAGAIN)) {
			e->rd_err = r == 0 ? -1 : errno;
			e->rd_at = now();
			if (!e->peer)
				e->peer = peer_close(e->fd);
		}
	}
	if (e->writing && !e->wr_err) {
		if (dir_send(e->fd, &e->tx, 4 * CHUNK) < 0) {
			e->wr_err = errno;
			e->wr_at = now();
			if (!e->peer)
				e->peer = peer_close(e->fd);
		}
	}
}

static const char *end_how(int err)
{
	return err == -1 ? "EOF" : err == 0 ? "open" : errname(err);
}

/* Moves data both ways until STOP says so, at most SECONDS. */
static void f_stream(struct end *cl, struct end *tg, bool (*stop)(struct end *,
		     struct end *), int seconds)
{
	double end = now() + seconds;
	while (!stop(cl, tg) && now() < end) {
		struct pollfd p[2] = {
			{ cl->fd, POLLIN | POLLOUT, 0 },
			{ tg->fd, POLLIN | (tg->writing ? POLLOUT : 0), 0 } };
		poll(p, 2, 10);
		end_step(cl);
		end_step(tg);
	}
}

static uint64_t fault_k;

/* Mid-stream: the resetting end has written K bytes and the other end has
 * received at least K/2 of what comes its way, so bytes are in flight
 * both ways when the reset comes. */
static bool stop_target_sent(struct end *cl, struct end *tg)
{
	return tg->tx.done >= fault_k && cl->rx.done >= fault_k / 2 &&
	       tg->rx.done >= fault_k / 2;
}

static bool stop_client_sent(struct end *cl, struct end *tg)
{
	return cl->tx.done >= fault_k && tg->rx.done >= fault_k / 2 &&
	       cl->rx.done >= fault_k / 2;
}

/* Watches E (which may be closed) and the session's process until both
 * have ended, at most SECONDS; returns the exit time, 0 if it did not. */
static double f_observe(struct fault *f, struct end *e, int seconds)
{
	double end = now() + seconds, exited = 0;
	while (now() < end) {
		if (!exited && has_exited(f->pid))
			exited = now();
		bool e_done = e->fd < 0 || e->rd_err;
		if (exited && e_done)
			break;
		if (e->fd >= 0)
			poll1(e->fd, POLLIN | (e->writing && !e->wr_err ? POLLOUT : 0), 1);
		else
			sleep_ms(1);
		end_step(e);
	}
	return exited;
}

static void linger0_close(int fd)
{
	struct linger l = { 1, 0 };
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	close(fd);
}

static int cmd_fault(int argc, char **argv)
{
	struct fault f = { .lfd = -1, .c = -1, .t = -1 };
	const char *kind = argc > 1 ? argv[1] : "";
	const char *bh = NULL;
	int wait_s = 20, hold_s = 3, opt;

	fault_k = 1 << 20;
	optind = 2;
	while ((opt = getopt(argc, argv, "x:P:k:b:w:H:T:")) != -1) {
		switch (opt) {
		case 'x': f.xport = atoi(optarg); break;
		case 'P': f.spawner = (pid_t)atoi(optarg); break;
		case 'k': fault_k = parse_size(optarg); break;
		case 'b': bh = optarg; break;
		case 'w': wait_s = atoi(optarg); break;
		case 'H': hold_s = atoi(optarg); break;
		case 'T': opt_timeout = atoi(optarg); break;
		default: die("fault: bad option");
		}
	}
	if (!f.xport || !f.spawner)
		die("fault: -x and -P are needed");
	alarm((unsigned)opt_timeout);
	signal(SIGPIPE, SIG_IGN);
	uint64_t seed = mix64((uint64_t)getpid() ^ (uint64_t)(now() * 1e9));
	/* the client sends stream 0 and receives stream 1, the target the
	 * other way round; "infinite" streams: the fault ends them */
	struct end cl = { .tx = { .seed = stream_seed(seed, 0), .total = UINT64_MAX / 2 },
			  .rx = { .seed = stream_seed(seed, 1), .total = UINT64_MAX / 2 },
			  .writing = true };
	struct end tg = { .tx = cl.rx, .rx = cl.tx, .writing = true };

	if (!strcmp(kind, "target-reset") || !strcmp(kind, "client-reset")) {
		bool target = kind[0] == 't';
		f.lfd = tcp_listen(0, 16, &f.lport);
		f_connect_target(&f);
		set_nonblock(f.c);
		cl.fd = f.c;
		tg.fd = f.t;
		f_stream(&cl, &tg, target ? stop_target_sent : stop_client_sent, 20);
		/* what the reset throws away on our side: never sent */
		int unsent = 0;
		ioctl(target ? f.t : f.c, SIOCOUTQ, &unsent);
		f.t0 = now();
		struct end *seen;
		if (target) {
			linger0_close(f.t);
			tg.fd = -1;
			seen = &cl;
		} else {
			linger0_close(f.c);
			cl.fd = -1;
			seen = &tg;
		}
		double exited = f_observe(&f, seen, wait_s);
		printf("fault=%s pid=%d fault_after_bytes=%llu unsent_at_reset=%d "
		       "client_sent=%llu client_recv=%llu client_recv_ok=%llu "
		       "client_recv_bad=%llu client_read_end=%s client_read_end_ms=%.1f "
		       "client_write_end=%s client_write_end_ms=%.1f "
		       "target_sent=%llu target_recv=%llu target_recv_ok=%llu "
		       "target_recv_bad=%llu target_read_end=%s target_read_end_ms=%.1f "
		       "target_write_end=%s target_write_end_ms=%.1f peer_close=%s "
		       "session_exited=%d session_exit_ms=%.1f\n",
		       kind, (int)f.pid, (unsigned long long)fault_k, unsent,
		       (unsigned long long)cl.tx.done, (unsigned long long)cl.rx.done,
		       (unsigned long long)dir_good(&cl.rx),
		       (unsigned long long)cl.rx.bad,
		       target ? end_how(cl.rd_err) : "reset-by-us",
		       ms_since(f.t0, cl.rd_at),
		       target ? end_how(cl.wr_err) : "reset-by-us",
		       ms_since(f.t0, cl.wr_at),
		       (unsigned long long)tg.tx.done, (unsigned long long)tg.rx.done,
		       (unsigned long long)dir_good(&tg.rx),
		       (unsigned long long)tg.rx.bad,
		       target ? "reset-by-us" : end_how(tg.rd_err),
		       ms_since(f.t0, tg.rd_at),
		       target ? "reset-by-us" : end_how(tg.wr_err),
		       ms_since(f.t0, tg.wr_at), seen->peer ? seen->peer : "none",
		       exited > 0, ms_since(f.t0, exited));
		if (seen->fd >= 0)
			close(seen->fd);
		return 0;
	}

	if (!strcmp(kind, "blackhole")) {
		struct in_addr addr = { htonl(INADDR_LOOPBACK) };
		int port;
		int fillers[16], nfill = 0;
		if (bh) {
			char host[64];
			if (sscanf(bh, "%63[^:]:%d", host, &port) != 2 ||
			    inet_pton(AF_INET, host, &addr) != 1)
				die("-b ADDR:PORT");
		} else {
			/* No way to drop packets here: a listener whose accept
			 * queue is full drops every further SYN unanswered. */
			f.lfd = tcp_listen(0, 0, &port);
			while (nfill < 16) {
				int fd = tcp_connect_nb(port);
				if (fd < 0)
					die("filler: %s", strerror(errno));
				fillers[nfill++] = fd;
				if (!(poll1(fd, POLLOUT, 300) & POLLOUT))
					break;    /* its SYN went unanswered: full */
			}
		}
		uint8_t rep[10] = { 0 };
		f.t0 = f_request(&f, addr, port);
		int got = f_reply(&f, rep, wait_s * 1000);
		double t_reply = got ? now() : 0;
		set_nonblock(f.c);
		cl.fd = f.c;
		cl.writing = false;
		double exited = f_observe(&f, &cl, 5);
		char hex[40] = "";
		size_t hl = 0;
		for (int i = 0; i < got; i++)
			hl += (size_t)snprintf(hex + hl, sizeof(hex) - hl, "%s%02x",
					       i ? " " : "", rep[i]);
		printf("fault=blackhole pid=%d dest=%s:%d method=%s reply_len=%d "
		       "reply=\"%s\" rep=0x%02x reply_ms=%.1f client_read_end=%s "
		       "client_read_end_ms=%.1f peer_close=%s session_exited=%d "
		       "session_exit_ms=%.1f\n", (int)f.pid, inet_ntoa(addr), port,
		       bh ? "route" : "full-accept-queue", got, hex,
		       got > 1 ? rep[1] : 0xff, ms_since(f.t0, t_reply),
		       end_how(cl.rd_err), ms_since(f.t0, cl.rd_at),
		       cl.peer ? cl.peer : "none", exited > 0, ms_since(f.t0, exited));
		for (int i = 0; i < nfill; i++)
			close(fillers[i]);
		close(f.c);
		return 0;
	}

	if (!strcmp(kind, "noread")) {
		f.lfd = tcp_listen(0, 16, &f.lport);
		f_connect_target(&f);
		set_nonblock(f.c);
		cl.fd = f.c;
		cl.tx.total = UINT64_MAX / 2;
		long pss0 = pss_of(f.pid), pss_max = pss0;
		double t_start = now(), last = now(), blocked = 0;
		/* the client writes until 2 s pass without progress (30 s cap) */
		while (now() - t_start < 30) {
			poll1(f.c, POLLOUT, 100);
			long r = dir_send(f.c, &cl.tx, 4 * CHUNK);
			if (r < 0)
				die("client write failed: %s", strerror(errno));
			if (r > 0)
				last = now();
			long p = pss_of(f.pid);
			if (p > pss_max)
				pss_max = p;
			if (now() - last >= 2) {
				blocked = last;
				break;
			}
		}
		uint64_t written = cl.tx.done;
		int outq = 0, inq = 0;
		ioctl(f.c, SIOCOUTQ, &outq);
		ioctl(f.t, FIONREAD, &inq);
		printf("blocked pid=%d written=%llu blocked_after_ms=%.0f "
		       "client_sendq=%d target_recvq=%d in_session=%lld pss0_kb=%ld "
		       "pss_max_kb=%ld\n", (int)f.pid, (unsigned long long)written,
		       blocked ? (blocked - t_start) * 1000 : -1, outq, inq,
		       (long long)written - outq - inq, pss0, pss_max);
		fflush(stdout);
		/* held: the caller samples ss and the cgroup; writes go on */
		double hold_end = now() + hold_s;
		while (now() < hold_end) {
			poll1(f.c, POLLOUT, 100);
			if (dir_send(f.c, &cl.tx, 4 * CHUNK) < 0)
				die("client write failed: %s", strerror(errno));
			long p = pss_of(f.pid);
			if (p > pss_max)
				pss_max = p;
		}
		long pss_end = pss_of(f.pid);
		/* 1: the client gives up and closes (FIN) */
		f.t0 = now();
		close(f.c);
		cl.fd = -1;
		struct end none = { .fd = -1 };
		double exited = f_observe(&f, &none, wait_s);
		double exit_after_fin = exited;
		/* 2: still there: the target goes away too (close with unread
		 * data: a reset) */
		double t_tclose = now();
		close(f.t);
		if (!exited)
			exited = f_observe(&f, &none, 10);
		printf("fault=noread pid=%d written=%llu extra_written_while_held=%llu "
		       "pss0_kb=%ld pss_max_kb=%ld pss_end_kb=%ld "
		       "exit_after_client_fin=%d exit_after_client_fin_ms=%.1f "
		       "wait_after_fin_s=%d session_exited=%d "
		       "session_exit_after_target_close_ms=%.1f\n",
		       (int)f.pid, (unsigned long long)written,
		       (unsigned long long)(cl.tx.done - written), pss0, pss_max,
		       pss_end, exit_after_fin > 0, ms_since(f.t0, exit_after_fin),
		       wait_s, exited > 0,
		       exit_after_fin > 0 ? 0.0 : ms_since(t_tclose, exited));
		return 0;
	}
	if (!strcmp(kind, "halfclose")) {
		/* As noread, but the client stops writing as soon as the session
		 * stops reading (bytes pile up in the session's receive queue)
		 * and closes with nothing unsent: its FIN then reaches the
		 * session's socket, behind the bytes the session has yet to
		 * read.  (In noread the FIN stays in the client's own send
		 * queue, behind bytes that cannot move: nothing can reach the
		 * session.) */
		f.lfd = tcp_listen(0, 16, &f.lport);
		f_connect_target(&f);
		set_nonblock(f.c);
		cl.fd = f.c;
		cl.tx.total = UINT64_MAX / 2;
		struct peer_sock ps = { 0, 0, 0 };
		double t_start = now();
		int outq = 0;
		while (now() - t_start < 30) {
			if (dir_send(f.c, &cl.tx, 16 * 1024) < 0)
				die("client write failed: %s", strerror(errno));
			/* each piece through to the session before the next */
			for (int i = 0; i < 50; i++) {
				ioctl(f.c, SIOCOUTQ, &outq);
				if (!outq)
					break;
				sleep_ms(10);
			}
			if (peer_sock_of(f.c, f.xport, &ps))
				die("the session's socket is not in /proc/net/tcp");
			if (outq || ps.rxq >= 64 * 1024)
				break;
		}
		for (int i = 0; i < 300 && outq; i++) {
			sleep_ms(10);
			ioctl(f.c, SIOCOUTQ, &outq);
		}
		uint64_t written = cl.tx.done;
		struct sockaddr_in me;
		socklen_t mlen = sizeof(me);
		getsockname(f.c, (struct sockaddr *)&me, &mlen);
		f.t0 = now();
		close(f.c);
		cl.fd = -1;
		/* did the FIN get there?  The session's socket says so */
		sleep_ms(100);
		struct peer_sock after = { 0, 0, 0 };
		peer_sock_at(&me, f.xport, &after);
		struct end none = { .fd = -1 };
		double exited = f_observe(&f, &none, wait_s);
		double t_tclose = now();
		close(f.t);
		double exited2 = exited ? exited : f_observe(&f, &none, 10);
		printf("fault=halfclose pid=%d written=%llu client_unsent_at_close=%d "
		       "session_recvq_at_close=%lu session_socket_after_fin=%s "
		       "exit_after_client_fin=%d "
		       "exit_after_client_fin_ms=%.1f wait_after_fin_s=%d "
		       "session_exited=%d session_exit_after_target_close_ms=%.1f\n",
		       (int)f.pid, (unsigned long long)written, outq, ps.rxq,
		       tcp_state_name(after.state),
		       exited > 0, ms_since(f.t0, exited), wait_s, exited2 > 0,
		       exited ? 0.0 : ms_since(t_tclose, exited2));
		return 0;
	}
	die("fault: unknown kind '%s'", kind);
	return 2;
}

/* ---- monitor ----------------------------------------------------------- */

static int cmd_mon(int argc, char **argv)
{
	pid_t spawner = 0;
	int interval = 250, pss_every = 2000, opt;
	static pid_t kids[MAX_CHILDREN];

	while ((opt = getopt(argc, argv, "P:i:p:T:")) != -1) {
		switch (opt) {
		case 'P': spawner = (pid_t)atoi(optarg); break;
		case 'i': interval = atoi(optarg); break;
		case 'p': pss_every = atoi(optarg); break;
		case 'T': opt_timeout = atoi(optarg); break;
		default: die("mon: bad option");
		}
	}
	if (!spawner)
		die("mon: -P is needed");
	alarm((unsigned)opt_timeout);
	struct sigaction sa = { .sa_handler = on_stop };
	sigaction(SIGTERM, &sa, NULL);
	double t0 = now(), last_sweep = 0;
	while (!stop_flag) {
		double ts = now();
		int n = children_of(spawner, kids, MAX_CHILDREN);
		if (n < 0)
			break;
		printf("t=%.2f n=%d", ts - t0, n);
		/* a PSS sweep reads every process's page tables: over 1 000
		 * processes that takes a core for a while, so it runs less
		 * often than the count */
		if ((ts - last_sweep) * 1000 >= pss_every) {
			long pss = 0, rss = 0;
			for (int i = 0; i < n; i++) {
				long p, r;
				if (smaps_rollup(kids[i], &p, &r) == 0) {
					pss += p;
					rss += r;
				}
			}
			last_sweep = ts;
			printf(" pss_kb=%ld rss_kb=%ld sweep_ms=%.0f", pss, rss,
			       (now() - ts) * 1000);
		}
		printf("\n");
		fflush(stdout);
		sleep_ms(interval);
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		die("usage: soakgen target|soak|fault|mon ...");
	const char *cmd = argv[1];
	if (!strcmp(cmd, "target"))
		return cmd_target(argc - 1, argv + 1);
	if (!strcmp(cmd, "soak"))
		return cmd_soak(argc - 1, argv + 1);
	if (!strcmp(cmd, "fault"))
		return cmd_fault(argc - 1, argv + 1);
	if (!strcmp(cmd, "mon"))
		return cmd_mon(argc - 1, argv + 1);
	die("unknown command %s", cmd);
	return 2;
}
