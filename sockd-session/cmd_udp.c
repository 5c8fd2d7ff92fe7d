/* UDP ASSOCIATE (RFC 1928 sections 6-7): a relay socket for the client,
 * every datagram's destination checked against the udpassociate rules and
 * every answer against the udpreply rules, until the TCP control
 * connection closes. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addr.h"
#include "conf_lazy.h"
#include "connect.h"
#include "log.h"
#include "netio.h"
#include "resolve.h"
#include "session.h"

#define DGRAM_MAX 65535

struct udp_assoc {
	struct session *s;
	int cfd;                          /* faces the client */
	int out[2];                       /* IPv4, IPv6 towards destinations */
	struct sockaddr_storage client;   /* where the client sends from */
	bool client_port_known;
	uint64_t from_client, to_client;
	unsigned long dropped;
	uint8_t buf[SOCKS5_UDP_HEADER_MAX + DGRAM_MAX];
};

/* Binds FD to ADDR with a port from [LO, HI] (0, 0: any). */
static int bind_in_range(int fd, struct sockaddr_storage *addr, uint16_t lo,
			 uint16_t hi)
{
	if (!lo) {
		addr_set_port(addr, 0);
		return bind(fd, (struct sockaddr *)addr, addr_len(addr));
	}
	unsigned span = (unsigned)hi - lo + 1, start = arc4random_uniform(span);
	for (unsigned i = 0; i < span; i++) {
		addr_set_port(addr, (uint16_t)(lo + (start + i) % span));
		if (bind(fd, (struct sockaddr *)addr, addr_len(addr)) == 0)
			return 0;
	}
	return -1;
}

static int out_socket(struct udp_assoc *u, int family)
{
	int i = family == AF_INET6;
	struct sockaddr_storage src;

	if (u->out[i] >= 0)
		return u->out[i];
	int rc = connect_source_address(u->s->conf, &u->s->cc, family, &src);
	if (rc < 0)
		return -1;
	int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd >= 0 && rc > 0 && bind(fd, (struct sockaddr *)&src, addr_len(&src)) < 0) {
		close(fd);
		fd = -1;
	}
	return u->out[i] = fd;
}

static bool from_our_client(struct udp_assoc *u, const struct sockaddr_storage *from)
{
	struct sockaddr_storage a = *from, b = u->client;

	if (u->client_port_known)
		return addr_equal(&a, &b);
	addr_set_port(&a, 0);
	addr_set_port(&b, 0);
	if (!addr_equal(&a, &b))
		return false;
	u->client = *from;          /* the first datagram fixes the port */
	u->client_port_known = true;
	return true;
}

static bool decide(struct udp_assoc *u, unsigned command,
		   const struct sockaddr_storage *from,
		   const struct sockaddr_storage *to, const char *name)
{
	struct facts f;
	struct verdict v;

	session_facts(u->s, command, &f);
	f.client = from;
	f.dest = to;
	f.dest_name = name;
	f.dest_port = addr_port(to);
	f.dest_port_known = true;
	return rules_decide_socks(u->s->conf, &f, &v) == MATCH_YES && v.pass;
}

/* A datagram from the client: strip the header, decide, send on. */
static void from_client(struct udp_assoc *u)
{
	struct sockaddr_storage from, dst[RESOLVE_MAX];
	socklen_t len = sizeof(from);
	ssize_t n = recvfrom(u->cfd, u->buf, sizeof(u->buf), 0,
			     (struct sockaddr *)&from, &len);
	struct socks_request r;
	char err[200];
	int ndst = 1;

	if (n < 0)
		return;
	addr_unmap(&from);
	if (!from_our_client(u, &from)) {
		u->dropped++;        /* not our client: never relayed */
		return;
	}
	int hlen = socks5_udp_decode(u->buf, (size_t)n, &r);
	if (hlen < 0) {
		u->dropped++;        /* fragments, bad headers */
		return;
	}
	if (r.atyp == SOCKS5_ATYP_NAME) {
		ndst = resolve_name(r.name, r.port, dst, RESOLVE_MAX, err, sizeof(err));
		if (ndst < 0) {
			u->dropped++;
			return;
		}
	} else {
		dst[0] = r.addr;
	}
	/* the first address that passes, as for CONNECT */
	for (int i = 0; i < ndst; i++) {
		struct sockaddr_storage self = u->client;
		if (!decide(u, CMD_UDPASSOCIATE, &self, &dst[i],
			    r.atyp == SOCKS5_ATYP_NAME ? r.name : NULL))
			continue;
		int fd = out_socket(u, dst[i].ss_family);
		if (fd >= 0 && sendto(fd, u->buf + hlen, (size_t)n - (size_t)hlen, 0,
				      (struct sockaddr *)&dst[i],
				      addr_len(&dst[i])) >= 0)
			u->from_client += (uint64_t)(n - hlen);
		return;
	}
	u->dropped++;
}

/* A datagram from a destination: decide (udpreply), add the header. */
static void from_remote(struct udp_assoc *u, int fd)
{
	struct sockaddr_storage from;
	socklen_t len = sizeof(from);
	uint8_t *payload = u->buf + SOCKS5_UDP_HEADER_MAX;
	ssize_t n = recvfrom(fd, payload, DGRAM_MAX, 0, (struct sockaddr *)&from,
			     &len);

	if (n < 0)
		return;
	addr_unmap(&from);
	if (!u->client_port_known || !decide(u, CMD_UDPREPLY, &from, &u->client,
					     NULL)) {
		u->dropped++;
		return;
	}
	uint8_t hdr[SOCKS5_UDP_HEADER_MAX];
	size_t h = socks5_udp_header(hdr, &from);
	memcpy(payload - h, hdr, h);
	if (sendto(u->cfd, payload - h, h + (size_t)n, 0,
		   (struct sockaddr *)&u->client, addr_len(&u->client)) >= 0)
		u->to_client += (uint64_t)n;
}

/* Until the control connection closes (or timeout.io.udp of silence). */
static const char *relay_datagrams(struct udp_assoc *u, int idle)
{
	for (;;) {
		struct pollfd p[4] = {
			{ u->s->cc.fd, POLLIN, 0 }, { u->cfd, POLLIN, 0 },
			{ u->out[0], POLLIN, 0 }, { u->out[1], POLLIN, 0 } };
		int rc = poll(p, 4, netio_poll_ms(idle));
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc < 0)
			return "poll error";
		if (rc == 0)
			return "timeout.io.udp expired";
		if (p[0].revents) {
			char c;
			ssize_t r = recv(u->s->cc.fd, &c, 1, MSG_DONTWAIT);
			if (r == 0 || (r < 0 && errno != EAGAIN))
				return "client closed the control connection";
			if (r > 0)
				return "data on the control connection";
		}
		if (p[1].revents)
			from_client(u);
		for (int i = 0; i < 2; i++)
			if (p[2 + i].revents)
				from_remote(u, u->out[i]);
	}
}

int cmd_udp_associate(struct session *s)
{
	struct udp_assoc *u;
	struct facts f;
	struct verdict v;
	int64_t deadline = session_reply_deadline(s);
	struct sockaddr_storage bound = s->cc.local;
	char text[200];

	if (s->neg.gss && gss_level(s->neg.gss) >= GSS_LEVEL_INTEGRITY) {
		negotiate_reply(s->cc.fd, 5, REP_CMD_UNSUPPORTED, NULL, deadline);
		session_end(s, "fail", NULL, 1, "UDP ASSOCIATE under GSSAPI "
			    "protection is not supported");
	}
	/* the destination is not known yet: a rule that needs it may still
	 * match later datagrams; only a definite block refuses now */
	session_facts(s, CMD_UDPASSOCIATE, &f);
	enum match_result m = rules_decide_socks(s->conf, &f, &v);
	if ((m == MATCH_YES && !v.pass) ||
	    (m == MATCH_MISSING && !rules_first_possible_pass(s->conf, &f))) {
		negotiate_reply(s->cc.fd, 5, REP_NOT_ALLOWED, NULL, deadline);
		session_end(s, "block", m == MATCH_YES ? v.rule : NULL, 1,
			    "no socks-rule allows udpassociate for this client");
	}
	/* the rule that logs the association: the one that passed it, or
	 * when that depends on the datagrams, the client rule */
	const struct rule *rule = m == MATCH_YES ? v.rule : s->client_rule;
	/* 64 KiB of datagram buffer: allocated, not static, so that only UDP
	 * sessions map it and it pushes no other variable onto a page of its own */
	u = calloc(1, sizeof(*u));
	if (!u) {
		negotiate_reply(s->cc.fd, 5, REP_GENERAL_FAILURE, NULL, deadline);
		session_end(s, "fail", rule, 1, "UDP relay: out of memory");
	}
	u->s = s;
	u->out[0] = u->out[1] = -1;
	/* the client's announced address; 0.0.0.0:0 or a name: from the
	 * client's own IP, port fixed by its first datagram */
	u->client = s->cc.peer;
	addr_set_port(&u->client, 0);
	if (s->neg.req.atyp != SOCKS5_ATYP_NAME && !addr_is_any(&s->neg.req.addr) &&
	    s->neg.req.port) {
		struct sockaddr_storage ip = s->neg.req.addr;
		addr_set_port(&ip, 0);
		if (addr_equal(&ip, &u->client)) {
			u->client = s->neg.req.addr;
			u->client_port_known = true;
		}
	} else if (s->neg.req.port) {
		addr_set_port(&u->client, s->neg.req.port);
		u->client_port_known = true;
	}
	u->cfd = socket(bound.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	socklen_t blen = sizeof(bound);
	const struct rule *pr = m == MATCH_YES ? v.rule
			      : rules_first_possible_pass(s->conf, &f);
	if (u->cfd < 0 || bind_in_range(u->cfd, &bound, pr ? pr->udp_port_lo : 0,
				       pr ? pr->udp_port_hi : 0) < 0 ||
	    getsockname(u->cfd, (struct sockaddr *)&bound, &blen) < 0) {
		snprintf(text, sizeof(text), "UDP relay socket: %s", strerror(errno));
		negotiate_reply(s->cc.fd, 5, REP_GENERAL_FAILURE, NULL, deadline);
		session_end(s, "fail", rule, 1, text);
	}
	addr_unmap(&bound);
	if (negotiate_reply(s->cc.fd, 5, REP_SUCCEEDED, &bound, deadline))
		session_end(s, "fail", rule, 0, "client went away");
	session_log_start(s, rule, "udpassociate", &u->client, &bound);
	/* each datagram is decided under the sandbox, where the rules
	 * image can no longer be read rule by rule: read it all now */
	conf_lazy_load_all(s->conf);
	session_sandbox(s, SANDBOX_UDP);
	const char *why = relay_datagrams(u, CONF_TIMEOUT(s->conf, rule, io_udp));
	close(u->cfd);   /* the relay port is gone with the control connection */
	if (u->dropped)
		log_msg(LOGL_DEBUG, "client=%s udp datagrams dropped=%lu",
			s->client, u->dropped);
	session_log_end(s, rule, &u->client, u->from_client, u->to_client, why);
	free(u);
	return EXIT_RELAYED;
}
