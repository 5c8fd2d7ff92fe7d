/* Outgoing TCP connection under the socks rules and timeout.connect. */
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addr.h"
#include "connect.h"
#include "netio.h"
#include "resolve.h"

uint8_t connect_errno_reply(int err)
{
	switch (err) {
	case ENETUNREACH: case ENETDOWN: return REP_NET_UNREACHABLE;
	case EHOSTUNREACH: case EHOSTDOWN: return REP_HOST_UNREACHABLE;
	case ECONNREFUSED: case ECONNRESET: return REP_CONN_REFUSED;
	case ETIMEDOUT: return REP_TTL_EXPIRED;
	case EAFNOSUPPORT: return REP_ATYP_UNSUPPORTED;
	default: return REP_GENERAL_FAILURE;
	}
}

static int interface_addr(const char *ifname, int family,
			  struct sockaddr_storage *out)
{
	struct ifaddrs *ifs;
	int rc = -1;

	if (getifaddrs(&ifs))
		return -1;
	for (struct ifaddrs *i = ifs; i && rc; i = i->ifa_next) {
		if (i->ifa_addr && i->ifa_addr->sa_family == family &&
		    !strcmp(i->ifa_name, ifname)) {
			memset(out, 0, sizeof(*out));
			memcpy(out, i->ifa_addr, family == AF_INET
			       ? sizeof(struct sockaddr_in)
			       : sizeof(struct sockaddr_in6));
			rc = 0;
		}
	}
	freeifaddrs(ifs);
	return rc;
}

int connect_source_address(const struct conf *c, const struct client_conn *cc,
			  int family, struct sockaddr_storage *src)
{
	if (c->rotation == ROTATION_SAME_SAME) {
		if (cc->local.ss_family != family)
			return -1;
		*src = cc->local;
		addr_set_port(src, 0);
		return 1;
	}
	if (c->nexternal == 0)
		return 0;
	for (size_t i = 0; i < c->nexternal; i++) {
		const struct rule_addr *e = &c->external[i];
		memset(src, 0, sizeof(*src));
		if (e->kind == ADDR_IPV4 && family == AF_INET) {
			struct sockaddr_in *s4 = (struct sockaddr_in *)src;
			s4->sin_family = AF_INET;
			s4->sin_addr = e->a.v4;
			return 1;
		}
		if (e->kind == ADDR_IPV6 && family == AF_INET6) {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)src;
			s6->sin6_family = AF_INET6;
			s6->sin6_addr = e->a.v6;
			return 1;
		}
		if (e->kind == ADDR_IFNAME &&
		    interface_addr(e->name, family, src) == 0) {
			addr_set_port(src, 0);
			return 1;
		}
	}
	return -1;
}

/* Returns a connected fd, or -1 with errno. */
static int connect_one(const struct conf *c, const struct client_conn *cc,
		       const struct sockaddr_storage *dst, int timeout,
		       struct sockaddr_storage *bound)
{
	struct sockaddr_storage src;
	int have_src = connect_source_address(c, cc, dst->ss_family, &src);

	if (have_src < 0) {
		errno = EAFNOSUPPORT;
		return -1;
	}
	int fd = socket(dst->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
			IPPROTO_TCP);
	if (fd < 0)
		return -1;
	if (have_src && bind(fd, (struct sockaddr *)&src, addr_len(&src)) < 0)
		goto fail;
	if (connect(fd, (const struct sockaddr *)dst, addr_len(dst)) < 0) {
		if (errno != EINPROGRESS)
			goto fail;
		if (netio_wait(fd, POLLOUT, cc->fd, netio_deadline(timeout)) < 0)
			goto fail;
		int soerr = 0;
		socklen_t len = sizeof(soerr);
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
			goto fail;
		if (soerr) {
			errno = soerr;
			goto fail;
		}
	}
	socklen_t blen = sizeof(*bound);
	if (getsockname(fd, (struct sockaddr *)bound, &blen) < 0)
		goto fail;
	return fd;
fail:;
	int saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

static void describe_block(const struct verdict *v, char *buf, size_t len)
{
	if (v->rule)
		snprintf(buf, len, "blocked by socks-rule #%u", v->rule->number);
	else
		snprintf(buf, len, "no socks-rule matched; default block");
}

void connect_destination(const struct conf *c, struct facts *f,
			 const struct socks_request *req,
			 const struct client_conn *cc,
			 struct connect_result *out)
{
	struct sockaddr_storage cand[RESOLVE_MAX];
	int n = 1;
	bool any_pass = false;

	memset(out, 0, sizeof(*out));
	out->fd = -1;
	out->rep = REP_GENERAL_FAILURE;
	f->dest_name = req->atyp == SOCKS5_ATYP_NAME ? req->name : NULL;
	f->dest_port = req->port;
	f->dest_port_known = true;
	if (req->atyp == SOCKS5_ATYP_NAME) {
		n = resolve_name(req->name, req->port, cand, RESOLVE_MAX,
				 out->reason, sizeof(out->reason));
		if (n < 0) {
			out->rep = REP_HOST_UNREACHABLE;
			return;
		}
	} else {
		cand[0] = req->addr;
	}
	out->dest = cand[0];
	for (int i = 0; i < n; i++) {
		struct verdict v;
		f->dest = &cand[i];
		if (rules_decide_socks(c, f, &v) != MATCH_YES || !v.pass) {
			if (!any_pass && out->rep != REP_NOT_ALLOWED) {
				out->verdict = v;
				out->dest = cand[i];
				if (v.unspecified) {
					out->rep = REP_HOST_UNREACHABLE;
					snprintf(out->reason, sizeof(out->reason),
						 "unspecified address is no "
						 "destination");
				} else {
					out->rep = REP_NOT_ALLOWED;
					describe_block(&v, out->reason,
						       sizeof(out->reason));
				}
			}
			continue;
		}
		any_pass = true;
		out->verdict = v;
		out->dest = cand[i];
		int timeout = CONF_TIMEOUT(c, v.rule, connect);
		int fd = connect_one(c, cc, &cand[i], timeout, &out->bound);
		if (fd >= 0) {
			out->fd = fd;
			out->rep = REP_SUCCEEDED;
			out->reason[0] = '\0';
			f->dest = NULL;
			return;
		}
		if (errno == ECONNABORTED) {
			snprintf(out->reason, sizeof(out->reason), "client went "
				 "away while connecting");
			break;
		}
		out->rep = connect_errno_reply(errno);
		snprintf(out->reason, sizeof(out->reason), "%s",
			 errno == EAFNOSUPPORT && c->nexternal
			 ? "no external address of that family"
			 : strerror(errno));
	}
	f->dest = NULL;
}
