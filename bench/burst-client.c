/* burst-client: the load side of bench/burst (issue 8).
 *
 *   burst-client echo  -p PORT
 *       echo server on 127.0.0.1:PORT (epoll, one thread); runs until killed.
 *
 *   burst-client burst -x PROXYPORT -p TARGETPORT [-n COUNT] [-d MS]
 *                      [-s SOURCES] [-T SECONDS]
 *       opens COUNT (500) connections to the SOCKS5 proxy on
 *       127.0.0.1:PROXYPORT, one every MS/COUNT milliseconds, so that all of
 *       them are opened within MS (1000) ms; -d 0 opens them all at once.
 *       Each one: greeting 05 01 00, expects 05 00; CONNECT 127.0.0.1:
 *       TARGETPORT, expects a success reply; sends 32 bytes, expects the same
 *       32 bytes back; closes.  -s N binds the clients round-robin to N
 *       source addresses 127.0.0.1 .. 127.0.0.N (default 1).  -T bounds the
 *       whole run (default 60 s): what is unfinished then counts as timeout.
 *
 *       Every connection ends in exactly one class:
 *         ok        the 32 bytes came back intact
 *         refused   connect() failed, or the connection was closed/reset
 *                   before the proxy sent any byte (systemd drops extra
 *                   connections that way: MaxConnections=,
 *                   MaxConnectionsPerSource=, or a closed socket)
 *         failed    the proxy answered but the exchange went wrong
 *                   (bad method reply, CONNECT refused, echo mismatch,
 *                   reset after the first byte)
 *         timeout   unfinished at the -T deadline
 *       Output: one line of key=value pairs on stdout.  Exit 0 always after
 *       a run (the caller judges the figures), 2 on a usage or setup error.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define ECHO_LEN 32

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void die(const char *what)
{
	fprintf(stderr, "burst-client: %s: %s\n", what, strerror(errno));
	exit(2);
}

static void raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* ---- echo server ---- */

static _Noreturn void echo_server(int port)
{
	int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (ls < 0)
		die("socket");
	int one = 1;
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(ls, (struct sockaddr *)&a, sizeof a) < 0)
		die("bind");
	if (listen(ls, 4096) < 0)
		die("listen");
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		die("epoll_create1");
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = ls };
	epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
	printf("ready port=%d\n", port);
	fflush(stdout);
	signal(SIGPIPE, SIG_IGN);
	for (;;) {
		struct epoll_event evs[64];
		int n = epoll_wait(ep, evs, 64, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("epoll_wait");
		}
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			if (fd == ls) {
				int c;
				while ((c = accept4(ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
					struct epoll_event ce = { .events = EPOLLIN, .data.fd = c };
					epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
				}
				continue;
			}
			char buf[4096];
			ssize_t r = read(fd, buf, sizeof buf);
			if (r > 0) {
				/* Small payloads: the send buffer has room; what does not
				 * fit is dropped, and the client reports a mismatch. */
				if (write(fd, buf, (size_t)r) != r) {
					epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
					close(fd);
				}
			} else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
				epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
				close(fd);
			}
		}
	}
}

/* ---- burst client ---- */

enum state { S_CONNECTING, S_METHOD, S_REPLY, S_ECHO, S_DONE };
enum result { RES_NONE, RES_OK, RES_REFUSED, RES_FAILED, RES_TIMEOUT };

struct conn {
	int fd;
	enum state st;
	enum result res;
	unsigned char in[64];
	size_t got;      /* bytes of the current expected answer */
	size_t seen;     /* bytes received from the proxy in total */
	double t_open, t_done;
	const char *why; /* first failure reason */
};

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static void finish(struct conn *c, int ep, enum result r, const char *why)
{
	if (c->st == S_DONE)
		return;
	c->st = S_DONE;
	c->res = r;
	c->why = why;
	c->t_done = now_ms();
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
}

static int send_all(int fd, const void *p, size_t n)
{
	/* Tiny messages on a fresh socket: they fit in the send buffer. */
	return send(fd, p, n, MSG_NOSIGNAL) == (ssize_t)n ? 0 : -1;
}

static void failed_io(struct conn *c, int ep, int err)
{
	/* Closed or reset before the proxy said anything: systemd's drop. */
	if (c->seen == 0)
		finish(c, ep, RES_REFUSED, err == 0 ? "eof-before-reply" :
		       err == ECONNRESET ? "reset-before-reply" :
		       err == ECONNREFUSED ? "connect-refused" : "error-before-reply");
	else
		finish(c, ep, RES_FAILED, err == 0 ? "eof-mid-exchange" : "reset-mid-exchange");
}

static void step(struct conn *c, int ep, uint32_t events, int tport, unsigned idx)
{
	if (c->st == S_CONNECTING) {
		int err = 0;
		socklen_t l = sizeof err;
		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
		if (err) {
			failed_io(c, ep, err);
			return;
		}
		if (!(events & EPOLLOUT))
			return;
		static const unsigned char greet[3] = { 5, 1, 0 };
		if (send_all(c->fd, greet, 3) < 0) {
			failed_io(c, ep, errno);
			return;
		}
		c->st = S_METHOD;
		c->got = 0;
		struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.u32 = idx };
		epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
		return;
	}
	if (!(events & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP)))
		return;
	size_t want = c->st == S_METHOD ? 2 : c->st == S_REPLY ? 10 : ECHO_LEN;
	ssize_t r = recv(c->fd, c->in + c->got, want - c->got, 0);
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (r <= 0) {
		failed_io(c, ep, r == 0 ? 0 : errno);
		return;
	}
	c->seen += (size_t)r;
	c->got += (size_t)r;
	if (c->got < want)
		return;
	c->got = 0;
	switch (c->st) {
	case S_METHOD: {
		if (c->in[0] != 5 || c->in[1] != 0) {
			finish(c, ep, RES_FAILED, "bad-method-reply");
			return;
		}
		unsigned char req[10] = { 5, 1, 0, 1, 127, 0, 0, 1,
					  (unsigned char)(tport >> 8), (unsigned char)tport };
		if (send_all(c->fd, req, sizeof req) < 0) {
			failed_io(c, ep, errno);
			return;
		}
		c->st = S_REPLY;
		return;
	}
	case S_REPLY: {
		if (c->in[0] != 5 || c->in[1] != 0 || c->in[3] != 1) {
			finish(c, ep, RES_FAILED, "connect-reply-not-success");
			return;
		}
		unsigned char msg[ECHO_LEN];
		for (int i = 0; i < ECHO_LEN; i++)
			msg[i] = (unsigned char)(idx * 7 + i);
		if (send_all(c->fd, msg, sizeof msg) < 0) {
			failed_io(c, ep, errno);
			return;
		}
		c->st = S_ECHO;
		return;
	}
	case S_ECHO:
		for (int i = 0; i < ECHO_LEN; i++)
			if (c->in[i] != (unsigned char)(idx * 7 + i)) {
				finish(c, ep, RES_FAILED, "echo-mismatch");
				return;
			}
		finish(c, ep, RES_OK, NULL);
		return;
	default:
		return;
	}
}

static int burst(int pport, int tport, int count, double span_ms, int sources, double limit_s)
{
	raise_nofile();
	signal(SIGPIPE, SIG_IGN);
	struct conn *cs = calloc((size_t)count, sizeof *cs);
	double *lat = calloc((size_t)count, sizeof *lat);
	if (!cs || !lat)
		die("calloc");
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		die("epoll_create1");
	struct sockaddr_in pa = { .sin_family = AF_INET, .sin_port = htons(pport) };
	pa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

	double t0 = now_ms(), deadline = t0 + limit_s * 1e3, t_last_open = t0;
	int opened = 0, done = 0, open_errors = 0;
	while (done < count) {
		double t = now_ms();
		if (t >= deadline)
			break;
		/* Open every connection whose time has come. */
		while (opened < count && (span_ms <= 0 || t >= t0 + opened * span_ms / count)) {
			struct conn *c = &cs[opened];
			c->t_open = now_ms();
			c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
			if (c->fd < 0) {
				c->st = S_DONE;
				c->res = RES_FAILED;
				c->why = "client-socket";
				open_errors++;
				done++;
				opened++;
				continue;
			}
			int one = 1;
			setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
			if (sources > 1) {
				struct sockaddr_in sa = { .sin_family = AF_INET };
				sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK + (uint32_t)(opened % sources));
				if (bind(c->fd, (struct sockaddr *)&sa, sizeof sa) < 0)
					die("bind source");
			}
			c->st = S_CONNECTING;
			struct epoll_event ev = { .events = EPOLLOUT | EPOLLIN | EPOLLRDHUP,
						  .data.u32 = (uint32_t)opened };
			epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
			if (connect(c->fd, (struct sockaddr *)&pa, sizeof pa) < 0 && errno != EINPROGRESS) {
				int e = errno;
				failed_io(c, ep, e);
				done++;
			}
			opened++;
			t_last_open = now_ms();
		}
		int wait_ms = 50;
		if (opened < count && span_ms > 0) {
			double next = t0 + opened * span_ms / count - now_ms();
			wait_ms = next <= 0 ? 0 : (int)next;
		}
		struct epoll_event evs[256];
		int n = epoll_wait(ep, evs, 256, wait_ms);
		if (n < 0 && errno != EINTR)
			die("epoll_wait");
		for (int i = 0; i < n; i++) {
			unsigned idx = evs[i].data.u32;
			struct conn *c = &cs[idx];
			if (c->st == S_DONE)
				continue;
			step(c, ep, evs[i].events, tport, idx);
			if (c->st == S_DONE)
				done++;
		}
	}
	double t_end = now_ms();

	int ok = 0, refused = 0, failed = 0, timeout = 0, nl = 0;
	/* Reasons, counted by their (static) string. */
	const char *why[16] = { 0 };
	int whyn[16] = { 0 };
	for (int i = 0; i < count; i++) {
		struct conn *c = &cs[i];
		if (c->st != S_DONE) {
			if (c->fd >= 0)
				close(c->fd);
			c->res = RES_TIMEOUT;
			c->why = i < opened ? "timeout" : "never-opened";
		}
		switch (c->res) {
		case RES_OK: ok++; lat[nl++] = c->t_done - c->t_open; break;
		case RES_REFUSED: refused++; break;
		case RES_FAILED: failed++; break;
		default: timeout++; break;
		}
		if (c->why) {
			int k;
			for (k = 0; k < 16 && why[k] && strcmp(why[k], c->why); k++)
				;
			if (k < 16) {
				why[k] = c->why;
				whyn[k]++;
			}
		}
	}
	qsort(lat, (size_t)nl, sizeof *lat, cmp_double);
	printf("count=%d opened=%d open_span_ms=%.1f run_ms=%.1f ok=%d refused=%d failed=%d timeout=%d",
	       count, opened, t_last_open - t0, t_end - t0, ok, refused, failed, timeout);
	if (nl)
		printf(" ok_ms_p50=%.1f ok_ms_p90=%.1f ok_ms_p99=%.1f ok_ms_max=%.1f",
		       lat[nl / 2], lat[(nl * 9) / 10], lat[(nl * 99) / 100], lat[nl - 1]);
	for (int k = 0; k < 16 && why[k]; k++)
		printf(" why_%s=%d", why[k], whyn[k]);
	printf("\n");
	(void)open_errors;
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: burst-client echo -p PORT\n"
			"       burst-client burst -x PROXYPORT -p TARGETPORT [-n COUNT] [-d MS] [-s SOURCES] [-T SECONDS]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		usage();
	const char *mode = argv[1];
	int pport = 1080, tport = 0, count = 500, sources = 1, opt;
	double span = 1000, limit = 60;
	optind = 2;
	while ((opt = getopt(argc, argv, "x:p:n:d:s:T:")) != -1) {
		switch (opt) {
		case 'x': pport = atoi(optarg); break;
		case 'p': tport = atoi(optarg); break;
		case 'n': count = atoi(optarg); break;
		case 'd': span = atof(optarg); break;
		case 's': sources = atoi(optarg); break;
		case 'T': limit = atof(optarg); break;
		default: usage();
		}
	}
	if (tport <= 0 || tport > 65535 || count <= 0 || sources < 1 || sources > 254 || limit <= 0)
		usage();
	if (!strcmp(mode, "echo"))
		echo_server(tport);
	if (!strcmp(mode, "burst"))
		return burst(pport, tport, count, span, sources, limit);
	usage();
	return 2;
}
