/* loadgen: the benchmark's load generator and target server.
 *
 *   loadgen server  [-p PORT] [-A]            target server (prints "port=N");
 *                                             -A: on every address, not 127.0.0.1
 *   loadgen freeport                          prints a free loopback port
 *   loadgen bulk    -t TPORT [-x PROXY] -m up|down|both -b BYTES -n STREAMS
 *   loadgen conn    -t TPORT [-x PROXY] -n TOTAL -c CONCURRENCY
 *   loadgen idle    -t TPORT [-x PROXY] -n SESSIONS [-c CONCURRENCY]
 *   loadgen execloop -n COUNT -- PROGRAM ARGS...   fork+exec+wait, us each
 *   loadgen cpuid                             the cost of one CPUID (leaf 2)
 *   loadgen spawn   -n COUNT [-M METHOD] [-E VAR=VALUE]... -- PROGRAM ARGS...
 *                   fork+exec PROGRAM as systemd would (connection on fd 3,
 *                   LISTEN_FDS/LISTEN_PID) with a SOCKS5 greeting offering
 *                   METHOD already sent: time from fork to the method reply
 *
 * Client options: -x PORT  SOCKS5 proxy on 127.0.0.1 (0 or absent: direct)
 *                 -a USER:PASS  RFC 1929 username/password
 *                 -g LEVEL  RFC 1961 GSSAPI (KRB5_CONFIG, KRB5CCNAME from
 *                           the environment), protection 0/1/2; -S service
 *                 -T SECONDS  hard time limit of the whole run (alarm)
 *                 -s ADDR  client source address (127/8), -D ADDR  target
 *                          address (127/8; the target server runs with -A)
 *
 * Target protocol: after CONNECT the client sends a 9-byte header, a mode
 * byte and a big-endian 64-bit count:
 *   'D' the target sends COUNT bytes;  'U' the client sends COUNT bytes,
 *   the target answers the 8-byte count once it has them all;
 *   'B' both at once;  'E' the target echoes COUNT (<= 64) bytes;
 *   'I' idle until the client closes.
 * Ends are told by counts, not by half-closes (microsocks tears a session
 * down at the first EOF); the target half-closes when done and closes on
 * the client's EOF.
 * Sinks discard with recv(MSG_TRUNC): no copy to user space, so the load
 * generator leaves the CPU to the proxy under test.
 *
 * Every figure goes to stdout as key=value pairs on one line.
 * Every loop is bounded: the -T alarm ends any run (default 300 s). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <gssapi/gssapi.h>
#include <gssapi/gssapi_krb5.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"

#define CHUNK (256 * 1024)
#define SINK (4 * 1024 * 1024)
#define MAX_STREAMS 1024
#define MAX_CONNS 1000000
#define ECHO_LEN 32

static uint8_t *sendbuf;          /* CHUNK bytes of pattern */
static uint8_t *sinkbuf;          /* never read: MSG_TRUNC discards */

static struct {
	int tport, xport, streams, conc, level, timeout;
	struct in_addr src, dst;  /* -s: client source; -D: target address */
	long total;
	uint64_t bytes;
	char mode;
	const char *user, *pass, *service;
	int method;
} O = { .streams = 1, .conc = 1, .level = -1, .timeout = 300, .mode = 'D',
	.service = "rcmd@localhost", .method = 0 };

static int cmpd(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* percentile of a sorted array, nearest rank */
static double pct(const double *v, long n, double p)
{
	if (n <= 0)
		return 0;
	long i = (long)(p / 100.0 * (double)n + 0.999999) - 1;
	if (i < 0)
		i = 0;
	if (i >= n)
		i = n - 1;
	return v[i];
}

/* ---- plain socket helpers ---------------------------------------------- */

static int read_exact(int fd, void *buf, size_t n)
{
	size_t have = 0;
	while (have < n) {
		ssize_t r = recv(fd, (uint8_t *)buf + have, n - have, 0);
		if (r > 0)
			have += (size_t)r;
		else if (r == 0)
			return -1;
		else if (errno != EINTR)
			return -1;
	}
	return 0;
}

static int write_all(int fd, const void *buf, size_t n)
{
	size_t done = 0;
	while (done < n) {
		ssize_t r = send(fd, (const uint8_t *)buf + done, n - done,
				 MSG_NOSIGNAL);
		if (r > 0)
			done += (size_t)r;
		else if (r < 0 && errno != EINTR)
			return -1;
	}
	return 0;
}

/* Connects to ADDR:PORT from O.src (port chosen at connect time, so a
 * source address of its own gives every run its own pool of ports, free
 * of the TIME_WAIT sockets earlier runs left). */
static int tcp_connect_to(struct in_addr addr, int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int one = 1;

	if (fd < 0)
		return -1;
	a.sin_addr = addr;
	if (O.src.s_addr) {
		struct sockaddr_in s = { .sin_family = AF_INET, .sin_addr = O.src };
		setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		if (bind(fd, (struct sockaddr *)&s, sizeof(s)) < 0) {
			close(fd);
			return -1;
		}
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* no blocking call waits forever: 30 s without progress is an error */
	struct timeval tv = { 30, 0 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int tcp_connect(int port)
{
	struct in_addr lo = { htonl(INADDR_LOOPBACK) };
	return tcp_connect_to(lo, port);
}

static bool listen_any;           /* server -A: every local address (netns: lo) */

static int tcp_listen(int port, int *bound)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	socklen_t len = sizeof(a);
	int one = 1;

	if (fd < 0)
		die("socket: %s", strerror(errno));
	a.sin_addr.s_addr = htonl(listen_any ? INADDR_ANY : INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 4096) < 0)
		die("listen on %d: %s", port, strerror(errno));
	getsockname(fd, (struct sockaddr *)&a, &len);
	*bound = ntohs(a.sin_port);
	return fd;
}

/* ---- a client connection, plain or GSSAPI-protected -------------------- */

struct conn {
	int fd;
	int level;                /* -1: no GSSAPI; 0 clear; 1 integ; 2 conf */
	gss_ctx_id_t ctx;
	size_t max_plain;
	uint8_t *tok;             /* 65535 + 4: one message */
	uint8_t *left;            /* unwrapped plaintext not yet returned */
	size_t left_off, left_len;
	uint8_t *wbuf;            /* 4 + 65535: one message being written */
};

static bool protected(const struct conn *c)
{
	return c->level > 0;
}

static int gss_send_msg(int fd, int mtyp, const void *tok, size_t n)
{
	uint8_t hdr[4] = { 1, (uint8_t)mtyp, (uint8_t)(n >> 8), (uint8_t)n };
	if (n > 65535)
		return -1;
	return write_all(fd, hdr, 4) || write_all(fd, tok, n) ? -1 : 0;
}

/* Reads one message of type MTYP into c->tok; returns its length, -1 on
 * error, -2 on a clean EOF before the header. */
static long gss_recv_msg(struct conn *c, int mtyp)
{
	uint8_t hdr[4];
	ssize_t r;
	size_t have = 0;

	while (have < 4) {
		r = recv(c->fd, hdr + have, 4 - have, 0);
		if (r == 0)
			return have ? -1 : -2;
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		have += (size_t)r;
	}
	if (hdr[0] != 1 || hdr[1] != mtyp)
		return -1;
	size_t n = (size_t)hdr[2] << 8 | hdr[3];
	if (read_exact(c->fd, c->tok, n))
		return -1;
	return (long)n;
}

static int gss_wrap_send(struct conn *c, const uint8_t *p, size_t n)
{
	OM_uint32 maj, min;
	int conf = 0;
	gss_buffer_desc in = { n, (void *)p }, out = GSS_C_EMPTY_BUFFER;

	maj = gss_wrap(&min, c->ctx, c->level == 2, GSS_C_QOP_DEFAULT, &in, &conf, &out);
	if (GSS_ERROR(maj) || out.length > 65535) {
		gss_release_buffer(&min, &out);
		return -1;
	}
	c->wbuf[0] = 1;
	c->wbuf[1] = 3;
	c->wbuf[2] = (uint8_t)(out.length >> 8);
	c->wbuf[3] = (uint8_t)out.length;
	memcpy(c->wbuf + 4, out.value, out.length);
	int rc = write_all(c->fd, c->wbuf, out.length + 4);
	gss_release_buffer(&min, &out);
	return rc;
}

static int c_write(struct conn *c, const void *buf, size_t n)
{
	if (!protected(c))
		return write_all(c->fd, buf, n);
	const uint8_t *p = buf;
	while (n) {
		size_t k = n < c->max_plain ? n : c->max_plain;
		if (gss_wrap_send(c, p, k))
			return -1;
		p += k;
		n -= k;
	}
	return 0;
}

/* Returns plaintext bytes (> 0), 0 at EOF, -1 on error.  BUF NULL: the
 * bytes are only counted (plain: MSG_TRUNC). */
static long c_read(struct conn *c, void *buf, size_t cap)
{
	if (!protected(c)) {
		for (;;) {
			ssize_t r = buf ? recv(c->fd, buf, cap, 0)
					: recv(c->fd, sinkbuf, cap, MSG_TRUNC);
			if (r >= 0)
				return (long)r;
			if (errno != EINTR)
				return -1;
		}
	}
	if (c->left_off == c->left_len) {
		long n = gss_recv_msg(c, 3);
		if (n == -2)
			return 0;
		if (n < 0)
			return -1;
		OM_uint32 maj, min;
		int conf = 0;
		gss_buffer_desc in = { (size_t)n, c->tok }, out = GSS_C_EMPTY_BUFFER;
		maj = gss_unwrap(&min, c->ctx, &in, &out, &conf, NULL);
		if (GSS_ERROR(maj) || (c->level == 2 && !conf) || out.length > 65535) {
			gss_release_buffer(&min, &out);
			return -1;
		}
		memcpy(c->left, out.value, out.length);
		c->left_off = 0;
		c->left_len = out.length;
		gss_release_buffer(&min, &out);
		if (!c->left_len)
			return c_read(c, buf, cap);
	}
	size_t k = c->left_len - c->left_off;
	if (k > cap)
		k = cap;
	if (buf)
		memcpy(buf, c->left + c->left_off, k);
	c->left_off += k;
	return (long)k;
}

static int c_read_exact(struct conn *c, void *buf, size_t n)
{
	size_t have = 0;
	while (have < n) {
		long r = c_read(c, (uint8_t *)buf + have, n - have);
		if (r <= 0)
			return -1;
		have += (size_t)r;
	}
	return 0;
}

static void c_close(struct conn *c)
{
	OM_uint32 min;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	if (c->ctx != GSS_C_NO_CONTEXT)
		gss_delete_sec_context(&min, &c->ctx, GSS_C_NO_BUFFER);
	free(c->tok);
	free(c->left);
	free(c->wbuf);
	c->tok = c->left = c->wbuf = NULL;
}

/* RFC 1961: context, then protection level O.level. */
static int gss_negotiate(struct conn *c)
{
	OM_uint32 maj, min, ret_flags = 0;
	gss_name_t target = GSS_C_NO_NAME;
	gss_buffer_desc nb = { strlen(O.service), (void *)O.service };
	gss_buffer_desc in = GSS_C_EMPTY_BUFFER, out = GSS_C_EMPTY_BUFFER;
	OM_uint32 flags = GSS_C_MUTUAL_FLAG | GSS_C_REPLAY_FLAG |
			  GSS_C_SEQUENCE_FLAG | GSS_C_INTEG_FLAG | GSS_C_CONF_FLAG;
	int rc = -1;

	c->tok = malloc(65536);
	c->left = malloc(65536);
	c->wbuf = malloc(65536 + 4);
	if (!c->tok || !c->left || !c->wbuf)
		return -1;
	maj = gss_import_name(&min, &nb, GSS_C_NT_HOSTBASED_SERVICE, &target);
	if (GSS_ERROR(maj))
		return -1;
	for (int round = 0; round < 8; round++) {
		maj = gss_init_sec_context(&min, GSS_C_NO_CREDENTIAL, &c->ctx, target,
					   (gss_OID)gss_mech_krb5, flags, 0,
					   GSS_C_NO_CHANNEL_BINDINGS,
					   round ? &in : GSS_C_NO_BUFFER, NULL, &out,
					   &ret_flags, NULL);
		if (GSS_ERROR(maj)) {
			static atomic_int said;
			if (!atomic_exchange(&said, 1)) {
				OM_uint32 ctx = 0, m2;
				gss_buffer_desc t = GSS_C_EMPTY_BUFFER;
				gss_display_status(&m2, min, GSS_C_MECH_CODE,
						   (gss_OID)gss_mech_krb5, &ctx, &t);
				fprintf(stderr, "loadgen: gss_init_sec_context: %.*s\n",
					(int)t.length, (char *)t.value);
				gss_release_buffer(&m2, &t);
			}
			goto out;
		}
		if (out.length) {
			int w = gss_send_msg(c->fd, 1, out.value, out.length);
			gss_release_buffer(&min, &out);
			if (w)
				goto out;
		}
		if (maj == GSS_S_COMPLETE)
			break;
		long n = gss_recv_msg(c, 1);
		if (n < 0)
			goto out;
		in.length = (size_t)n;
		in.value = c->tok;
	}
	if (maj != GSS_S_COMPLETE)
		goto out;
	/* protection level: one byte wrapped without confidentiality */
	uint8_t lv = (uint8_t)O.level;
	int conf = 0;
	gss_buffer_desc lin = { 1, &lv };
	maj = gss_wrap(&min, c->ctx, 0, GSS_C_QOP_DEFAULT, &lin, &conf, &out);
	if (GSS_ERROR(maj))
		goto out;
	int w = gss_send_msg(c->fd, 2, out.value, out.length);
	gss_release_buffer(&min, &out);
	if (w)
		goto out;
	long n = gss_recv_msg(c, 2);
	if (n < 0)
		goto out;
	in.length = (size_t)n;
	in.value = c->tok;
	maj = gss_unwrap(&min, c->ctx, &in, &out, &conf, NULL);
	if (GSS_ERROR(maj) || out.length != 1 || ((uint8_t *)out.value)[0] != lv) {
		gss_release_buffer(&min, &out);
		goto out;
	}
	gss_release_buffer(&min, &out);
	c->level = O.level;
	OM_uint32 max = 0;
	if (c->level > 0) {
		maj = gss_wrap_size_limit(&min, c->ctx, c->level == 2,
					  GSS_C_QOP_DEFAULT, 65535, &max);
		if (GSS_ERROR(maj) || max == 0)
			goto out;
	}
	c->max_plain = max;
	rc = 0;
out:
	gss_release_name(&min, &target);
	return rc;
}

/* Connects (through the proxy when O.xport) and sends the target header.
 * T_REPLY gets the time the CONNECT reply arrived. */
static int open_session(struct conn *c, char mode, uint64_t count,
			double *t_reply)
{
	memset(c, 0, sizeof(*c));
	c->level = -1;
	c->ctx = GSS_C_NO_CONTEXT;
	c->fd = O.xport ? tcp_connect(O.xport) : tcp_connect_to(O.dst, O.tport);
	if (c->fd < 0)
		return -1;
	if (O.xport) {
		uint8_t m = O.level >= 0 ? 1 : O.user ? 2 : 0;
		uint8_t greet[3] = { 5, 1, m }, rep[10];
		if (write_all(c->fd, greet, 3) || read_exact(c->fd, rep, 2) ||
		    rep[0] != 5 || rep[1] != m)
			goto fail;
		if (m == 2) {
			uint8_t a[515];
			size_t ul = strlen(O.user), pl = strlen(O.pass), k = 0;
			a[k++] = 1;
			a[k++] = (uint8_t)ul;
			memcpy(a + k, O.user, ul);
			k += ul;
			a[k++] = (uint8_t)pl;
			memcpy(a + k, O.pass, pl);
			k += pl;
			if (write_all(c->fd, a, k) || read_exact(c->fd, rep, 2) ||
			    rep[0] != 1 || rep[1] != 0)
				goto fail;
		}
		if (m == 1 && gss_negotiate(c))
			goto fail;
		uint8_t req[10] = { 5, 1, 0, 1, 0, 0, 0, 0,
				    (uint8_t)(O.tport >> 8), (uint8_t)O.tport };
		memcpy(req + 4, &O.dst, 4);
		if (c_write(c, req, 10) || c_read_exact(c, rep, 4) ||
		    rep[0] != 5 || rep[1] != 0)
			goto fail;
		size_t rest = rep[3] == 1 ? 6 : rep[3] == 4 ? 18 : 0;
		if (!rest || c_read_exact(c, rep + 4, rest))
			goto fail;
	}
	if (t_reply)
		*t_reply = now();
	uint8_t h[9] = { (uint8_t)mode };
	for (int i = 0; i < 8; i++)
		h[1 + i] = (uint8_t)(count >> (56 - 8 * i));
	if (c_write(c, h, 9))
		goto fail;
	return 0;
fail:
	c_close(c);
	return -1;
}

/* ---- target server ----------------------------------------------------- */

struct sender {
	int fd;
	uint64_t n;
};

static void send_count(int fd, uint64_t n)
{
	while (n) {
		size_t k = n < CHUNK ? (size_t)n : CHUNK;
		ssize_t r = send(fd, sendbuf, k, MSG_NOSIGNAL);
		if (r > 0)
			n -= (uint64_t)r;
		else if (r < 0 && errno != EINTR)
			return;
	}
}

static void *sender_thread(void *arg)
{
	struct sender *s = arg;
	send_count(s->fd, s->n);
	return NULL;
}

/* discards exactly N bytes (fewer at EOF or error); returns the count */
static uint64_t sink_count(int fd, uint64_t n)
{
	uint64_t got = 0;
	while (got < n) {
		size_t k = n - got < SINK ? (size_t)(n - got) : SINK;
		ssize_t r = recv(fd, sinkbuf, k, MSG_TRUNC);
		if (r > 0)
			got += (uint64_t)r;
		else if (r == 0 || errno != EINTR)
			break;
	}
	return got;
}

/* counts bytes to EOF, discarding them */
static uint64_t sink_to_eof(int fd)
{
	uint64_t got = 0;
	for (;;) {
		ssize_t r = recv(fd, sinkbuf, SINK, MSG_TRUNC);
		if (r > 0)
			got += (uint64_t)r;
		else if (r == 0 || errno != EINTR)
			return got;
	}
}

static pthread_attr_t small_stack;

static void *serve(void *arg)
{
	int fd = (int)(intptr_t)arg;
	uint8_t h[9];

	if (read_exact(fd, h, 9))
		goto out;
	uint64_t n = 0;
	for (int i = 0; i < 8; i++)
		n = n << 8 | h[1 + i];
	switch (h[0]) {
	case 'D':
		send_count(fd, n);
		shutdown(fd, SHUT_WR);
		sink_to_eof(fd);
		break;
	case 'U': {
		uint64_t got = sink_count(fd, n);
		uint8_t b[8];
		for (int i = 0; i < 8; i++)
			b[i] = (uint8_t)(got >> (56 - 8 * i));
		write_all(fd, b, 8);
		shutdown(fd, SHUT_WR);
		sink_to_eof(fd);
		break;
	}
	case 'B': {
		struct sender s = { fd, n };
		pthread_t t;
		if (pthread_create(&t, &small_stack, sender_thread, &s))
			break;
		sink_count(fd, n);
		pthread_join(t, NULL);
		shutdown(fd, SHUT_WR);
		sink_to_eof(fd);
		break;
	}
	case 'E': {
		uint8_t b[64];
		if (n > sizeof(b) || read_exact(fd, b, (size_t)n) ||
		    write_all(fd, b, (size_t)n))
			break;
		shutdown(fd, SHUT_WR);
		sink_to_eof(fd);
		break;
	}
	case 'I':
		sink_to_eof(fd);
		break;
	}
out:
	close(fd);
	return NULL;
}

static int cmd_server(int port)
{
	int bound, lfd = tcp_listen(port, &bound);

	printf("port=%d\n", bound);
	fflush(stdout);
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE ||
			    errno == ENFILE) {
				if (errno == EMFILE || errno == ENFILE)
					usleep(1000);
				continue;
			}
			die("accept: %s", strerror(errno));
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		pthread_t t;
		if (pthread_create(&t, &small_stack, serve, (void *)(intptr_t)fd)) {
			close(fd);
			continue;
		}
		pthread_detach(t);
	}
	return 0;
}

/* ---- bulk -------------------------------------------------------------- */

struct stream {
	struct conn c;
	pthread_t t;
	int ok;
	uint64_t got;
};

static pthread_barrier_t start_line;

static void *up_sender(void *arg)
{
	struct stream *s = arg;
	uint64_t n = O.bytes;
	while (n) {
		size_t k = n < CHUNK ? (size_t)n : CHUNK;
		if (c_write(&s->c, sendbuf, k))
			return NULL;
		n -= k;
	}
	return NULL;
}

/* reads exactly O.bytes of plaintext, discarding it */
static void down_sink(struct stream *s)
{
	long r = 1;
	while (s->got < O.bytes) {
		uint64_t left = O.bytes - s->got;
		r = c_read(&s->c, NULL, left < SINK ? (size_t)left : SINK);
		if (r <= 0)
			break;
		s->got += (uint64_t)r;
	}
}

static void *bulk_stream(void *arg)
{
	struct stream *s = arg;
	int opened = open_session(&s->c, O.mode == 'u' ? 'U' : O.mode == 'd' ? 'D' : 'B',
				  O.bytes, NULL) == 0;
	pthread_barrier_wait(&start_line);
	if (!opened)
		return NULL;
	if (O.mode == 'd') {
		down_sink(s);
		s->ok = s->got == O.bytes;
	} else if (O.mode == 'u') {
		uint8_t b[8];
		up_sender(s);
		if (c_read_exact(&s->c, b, 8) == 0) {
			uint64_t n = 0;
			for (int i = 0; i < 8; i++)
				n = n << 8 | b[i];
			s->ok = n == O.bytes;
			s->got = n;
		}
	} else {
		pthread_t t;
		if (pthread_create(&t, NULL, up_sender, s))
			return NULL;
		down_sink(s);
		pthread_join(t, NULL);
		s->ok = s->got == O.bytes;
	}
	return NULL;
}

static int cmd_bulk(void)
{
	int n = O.streams;
	struct stream *s = calloc((size_t)n, sizeof(*s));

	if (n < 1 || n > MAX_STREAMS || !s)
		die("bad stream count");
	if (O.level > 0 && O.mode == 'b')
		die("both ways at once is not supported with GSSAPI protection");
	pthread_barrier_init(&start_line, NULL, (unsigned)n + 1);
	for (int i = 0; i < n; i++)
		if (pthread_create(&s[i].t, NULL, bulk_stream, &s[i]))
			die("pthread_create");
	pthread_barrier_wait(&start_line);
	double t0 = now();
	int ok = 0;
	for (int i = 0; i < n; i++) {
		pthread_join(s[i].t, NULL);
		ok += s[i].ok;
		c_close(&s[i].c);
	}
	double t = now() - t0;
	double total = (double)O.bytes * n * (O.mode == 'b' ? 2 : 1);
	printf("bytes=%.0f seconds=%.6f gibps=%.4f streams=%d ok=%d errors=%d\n",
	       total, t, total / t / (1 << 30), n, ok, n - ok);
	return ok == n ? 0 : 1;
}

/* ---- connections ------------------------------------------------------- */

static atomic_long next_conn, errors;
static double *lat, *lat_reply;
static atomic_long done_conns;

static void *conn_worker(void *arg)
{
	(void)arg;
	for (;;) {
		long i = atomic_fetch_add(&next_conn, 1);
		if (i >= O.total)
			return NULL;
		struct conn c;
		uint8_t msg[ECHO_LEN], back[ECHO_LEN];
		double t_reply = 0, t0 = now();
		for (int k = 0; k < ECHO_LEN; k++)
			msg[k] = (uint8_t)(i + k);
		if (open_session(&c, 'E', ECHO_LEN, &t_reply)) {
			atomic_fetch_add(&errors, 1);
			continue;
		}
		if (c_write(&c, msg, ECHO_LEN) || c_read_exact(&c, back, ECHO_LEN) ||
		    memcmp(msg, back, ECHO_LEN)) {
			atomic_fetch_add(&errors, 1);
			c_close(&c);
			continue;
		}
		double t1 = now();
		c_close(&c);
		long j = atomic_fetch_add(&done_conns, 1);
		lat[j] = t1 - t0;
		lat_reply[j] = t_reply - t0;
	}
}

static int cmd_conn(void)
{
	if (O.total < 1 || O.total > MAX_CONNS || O.conc < 1 || O.conc > 4096)
		die("bad -n or -c");
	lat = calloc((size_t)O.total, sizeof(double));
	lat_reply = calloc((size_t)O.total, sizeof(double));
	pthread_t *t = calloc((size_t)O.conc, sizeof(*t));
	if (!lat || !lat_reply || !t)
		die("out of memory");
	double t0 = now();
	for (int i = 0; i < O.conc; i++)
		if (pthread_create(&t[i], &small_stack, conn_worker, NULL))
			die("pthread_create");
	for (int i = 0; i < O.conc; i++)
		pthread_join(t[i], NULL);
	double wall = now() - t0;
	long n = atomic_load(&done_conns);
	qsort(lat, (size_t)n, sizeof(double), cmpd);
	qsort(lat_reply, (size_t)n, sizeof(double), cmpd);
	printf("conns=%ld errors=%ld seconds=%.6f cps=%.1f p50_ms=%.4f p99_ms=%.4f "
	       "max_ms=%.4f reply_p50_ms=%.4f reply_p99_ms=%.4f\n", n,
	       atomic_load(&errors), wall, (double)n / wall, pct(lat, n, 50) * 1e3,
	       pct(lat, n, 99) * 1e3, n ? lat[n - 1] * 1e3 : 0,
	       pct(lat_reply, n, 50) * 1e3, pct(lat_reply, n, 99) * 1e3);
	return atomic_load(&errors) ? 1 : 0;
}

/* ---- idle sessions ----------------------------------------------------- */

static struct conn *idle;
static atomic_long idle_ok;

static void *idle_worker(void *arg)
{
	(void)arg;
	for (;;) {
		long i = atomic_fetch_add(&next_conn, 1);
		if (i >= O.total)
			return NULL;
		if (open_session(&idle[i], 'I', 0, NULL) == 0)
			atomic_fetch_add(&idle_ok, 1);
		else
			idle[i].fd = -1;
	}
}

static int cmd_idle(void)
{
	sigset_t set;

	if (O.total < 1 || O.total > 100000)
		die("bad -n");
	idle = calloc((size_t)O.total, sizeof(*idle));
	pthread_t *t = calloc((size_t)O.conc, sizeof(*t));
	if (!idle || !t)
		die("out of memory");
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGALRM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	double t0 = now();
	for (int i = 0; i < O.conc; i++)
		if (pthread_create(&t[i], &small_stack, idle_worker, NULL))
			die("pthread_create");
	for (int i = 0; i < O.conc; i++)
		pthread_join(t[i], NULL);
	printf("ready sessions=%ld errors=%ld seconds=%.3f\n", atomic_load(&idle_ok),
	       O.total - atomic_load(&idle_ok), now() - t0);
	fflush(stdout);
	int sig;
	sigwait(&set, &sig);      /* SIGTERM from the harness, or the -T alarm */
	for (long i = 0; i < O.total; i++)
		if (idle[i].fd >= 0)
			c_close(&idle[i]);
	return sig == SIGALRM ? 1 : 0;
}

/* ---- spawn: exec to first byte ----------------------------------------- */

static char *child_env[16];       /* -E VAR=VALUE: for the spawned program only */
static int n_child_env;

static int cmd_spawn(char **argv)
{
	int port, lfd = tcp_listen(0, &port);
	double *v = calloc((size_t)O.total, sizeof(double));
	long ok = 0;

	if (O.total < 1 || O.total > 100000 || !v)
		die("bad -n");
	for (long i = 0; i < O.total; i++) {
		int cfd = tcp_connect(port);
		int sfd = accept4(lfd, NULL, NULL, 0);
		uint8_t greet[3] = { 5, 1, (uint8_t)O.method }, rep[2];
		if (cfd < 0 || sfd < 0 || write_all(cfd, greet, 3))
			die("spawn: connection: %s", strerror(errno));
		double t0 = now();
		pid_t pid = fork();
		if (pid < 0)
			die("fork: %s", strerror(errno));
		if (pid == 0) {
			char p[32];
			close(cfd);
			close(lfd);          /* fd 3 itself, probably */
			if (sfd != 3) {
				dup2(sfd, 3);
				close(sfd);
			}
			for (int k = 0; k < n_child_env; k++)
				putenv(child_env[k]);
			snprintf(p, sizeof(p), "%d", (int)getpid());
			setenv("LISTEN_PID", p, 1);
			setenv("LISTEN_FDS", "1", 1);
			execv(argv[0], argv);
			_exit(127);
		}
		close(sfd);
		struct pollfd pf = { cfd, POLLIN, 0 };
		if (poll(&pf, 1, 10000) == 1 && read_exact(cfd, rep, 2) == 0 &&
		    rep[0] == 5) {
			v[ok++] = now() - t0;
		}
		close(cfd);
		waitpid(pid, NULL, 0);
	}
	qsort(v, (size_t)ok, sizeof(double), cmpd);
	printf("spawns=%ld errors=%ld p50_ms=%.4f p10_ms=%.4f p90_ms=%.4f min_ms=%.4f "
	       "max_ms=%.4f\n", ok, O.total - ok, pct(v, ok, 50) * 1e3,
	       pct(v, ok, 10) * 1e3, pct(v, ok, 90) * 1e3, ok ? v[0] * 1e3 : 0,
	       ok ? v[ok - 1] * 1e3 : 0);
	return ok == O.total ? 0 : 1;
}

/* ---- exec floor: fork+exec+exit, and what one CPUID costs -------------- */

static int cmd_execloop(char **argv)
{
	double t0 = now();
	long ok = 0;

	if (O.total < 1 || O.total > 100000 || !argv[0])
		die("execloop -n N -- PROGRAM [ARGS]");
	for (long i = 0; i < O.total; i++) {
		pid_t pid = fork();
		if (pid < 0)
			die("fork: %s", strerror(errno));
		if (pid == 0) {
			int nul = open("/dev/null", O_WRONLY);
			if (nul >= 0) {
				dup2(nul, 1);
				dup2(nul, 2);
			}
			execv(argv[0], argv);
			_exit(127);
		}
		int st;
		if (waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) != 127)
			ok++;
	}
	printf("execs=%ld errors=%ld us_per_exec=%.1f\n", ok, O.total - ok,
	       (now() - t0) / (double)O.total * 1e6);
	return ok == O.total ? 0 : 1;
}

static int cmd_cpuid(void)
{
	unsigned a = 0, b = 0, c = 0, d = 0, sink = 0;
	double t0 = now();

	for (int i = 0; i < 2000; i++) {
		__asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d)
				 : "a"(2), "c"(0));
		sink += a;
	}
	printf("cpuid_us=%.3f sink=%u\n", (now() - t0) / 2000 * 1e6, sink & 1);
	return 0;
}

/* ---- main -------------------------------------------------------------- */

static uint64_t parse_size(const char *s)
{
	char *end;
	double v = strtod(s, &end);
	switch (*end) {
	case 'k': case 'K': v *= 1024; break;
	case 'm': case 'M': v *= 1024 * 1024; break;
	case 'g': case 'G': v *= 1024.0 * 1024 * 1024; break;
	}
	return (uint64_t)v;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		die("usage: loadgen server|freeport|bulk|conn|idle|spawn [options]");
	const char *cmd = argv[1];
	int port = 0, opt;

	signal(SIGPIPE, SIG_IGN);
	O.dst.s_addr = htonl(INADDR_LOOPBACK);
	sendbuf = malloc(CHUNK);
	sinkbuf = malloc(SINK);
	if (!sendbuf || !sinkbuf)
		die("out of memory");
	for (int i = 0; i < CHUNK; i++)
		sendbuf[i] = (uint8_t)(i * 7);
	pthread_attr_init(&small_stack);
	pthread_attr_setstacksize(&small_stack, 128 * 1024);

	optind = 2;
	while ((opt = getopt(argc, argv, "Ap:t:x:m:b:n:c:a:g:S:T:M:E:s:D:")) != -1) {
		switch (opt) {
		case 'p': port = atoi(optarg); break;
		case 'A': listen_any = true; break;
		case 's':
		case 'D': {
			struct in_addr a;
			if (inet_pton(AF_INET, optarg, &a) != 1 ||
			    (ntohl(a.s_addr) >> 24) != 127)
				die("-%c: a 127.0.0.0/8 address", opt);
			if (opt == 's')
				O.src = a;
			else
				O.dst = a;
			break;
		}
		case 't': O.tport = atoi(optarg); break;
		case 'x': O.xport = atoi(optarg); break;
		case 'm': O.mode = optarg[0]; break;
		case 'b': O.bytes = parse_size(optarg); break;
		case 'n': O.total = atol(optarg); O.streams = atoi(optarg); break;
		case 'c': O.conc = atoi(optarg); break;
		case 'a': {
			char *colon = strchr(optarg, ':');
			if (!colon)
				die("-a USER:PASS");
			*colon = 0;
			O.user = optarg;
			O.pass = colon + 1;
			if (strlen(O.user) > 255 || strlen(O.pass) > 255)
				die("-a too long");
			break;
		}
		case 'g': O.level = atoi(optarg); break;
		case 'S': O.service = optarg; break;
		case 'T': O.timeout = atoi(optarg); break;
		case 'M': O.method = atoi(optarg); break;
		case 'E':
			if (n_child_env == 16 || !strchr(optarg, '='))
				die("-E VAR=VALUE, at most 16");
			child_env[n_child_env++] = optarg;
			break;
		default: die("bad option");
		}
	}
	if (strcmp(cmd, "server") && strcmp(cmd, "idle"))
		alarm((unsigned)O.timeout);      /* SIGALRM kills: bounded run */
	else if (!strcmp(cmd, "idle"))
		alarm((unsigned)O.timeout);      /* caught by sigwait */

	if (!strcmp(cmd, "server"))
		return cmd_server(port);
	if (!strcmp(cmd, "freeport")) {
		int b, fd = tcp_listen(0, &b);
		close(fd);
		printf("%d\n", b);
		return 0;
	}
	if (!strcmp(cmd, "spawn"))
		return cmd_spawn(argv + optind);
	if (!strcmp(cmd, "execloop"))
		return cmd_execloop(argv + optind);
	if (!strcmp(cmd, "cpuid"))
		return cmd_cpuid();
	if (!O.tport)
		die("-t TARGET_PORT is required");
	if (!strcmp(cmd, "bulk")) {
		if (O.mode != 'u' && O.mode != 'd' && O.mode != 'b')
			die("-m up|down|both");
		return cmd_bulk();
	}
	if (!strcmp(cmd, "conn"))
		return cmd_conn();
	if (!strcmp(cmd, "idle"))
		return cmd_idle();
	die("unknown command %s", cmd);
}
