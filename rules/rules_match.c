/* First match wins; no match blocks. */
#include <ifaddrs.h>
#include <string.h>

#include "addr.h"
#include "conf_lazy.h"
#include "names.h"
#include "resolve.h"
#include "rules_match.h"

bool rules_in_interface(const char *ifname, const struct sockaddr_storage *ss)
{
	struct ifaddrs *ifs, *i;
	bool found = false;

	if (getifaddrs(&ifs))
		return false;
	for (i = ifs; i && !found; i = i->ifa_next) {
		if (!i->ifa_addr || !i->ifa_netmask || strcmp(i->ifa_name, ifname))
			continue;
		int fam = i->ifa_addr->sa_family;
		if (fam != ss->ss_family)
			continue;
		struct rule_addr net = { 0 };
		const uint8_t *m;
		size_t mlen;
		if (fam == AF_INET) {
			net.kind = ADDR_IPV4;
			net.a.v4 = ((struct sockaddr_in *)i->ifa_addr)->sin_addr;
			m = (const uint8_t *)&((struct sockaddr_in *)i->ifa_netmask)->sin_addr;
			mlen = 4;
		} else if (fam == AF_INET6) {
			net.kind = ADDR_IPV6;
			net.a.v6 = ((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr;
			m = ((struct sockaddr_in6 *)i->ifa_netmask)->sin6_addr.s6_addr;
			mlen = 16;
		} else {
			continue;
		}
		unsigned prefix = 0;
		for (size_t b = 0; b < mlen; b++)
			prefix += (unsigned)__builtin_popcount(m[b]);
		net.prefix = (uint8_t)prefix;
		found = addr_in_prefix(&net, ss);
	}
	freeifaddrs(ifs);
	return found;
}

/* A rule's host name against an address: forward lookup of the rule's
 * name only; the client's address is never looked up in reverse. */
static bool host_has_addr(const char *host, const struct sockaddr_storage *ss)
{
	struct sockaddr_storage addrs[RESOLVE_MAX];
	char err[200];
	int n = resolve_name(host, 0, addrs, RESOLVE_MAX, err, sizeof(err));

	for (int i = 0; i < n; i++) {
		struct sockaddr_storage a = *ss;
		addr_set_port(&a, 0);
		if (addr_equal(&addrs[i], &a))
			return true;
	}
	return false;
}

/* One address condition.  ADDR may be NULL (unknown) and NAME NULL (the
 * side was given by address). */
static enum match_result match_addr(const struct rule_addr *ra,
				    const struct sockaddr_storage *addr,
				    const char *name, bool port_known,
				    uint16_t port, const char *what,
				    const char *what_port,
				    const char **missing)
{
	bool hit;

	switch (ra->kind) {
	case ADDR_NONE:
	case ADDR_ANY:
		/* 0/0 is every address, so it matches one not yet known */
		hit = addr ? addr_in_prefix(ra, addr) : true;
		break;
	case ADDR_IPV4:
	case ADDR_IPV6:
	case ADDR_IFNAME:
		if (!addr) {
			*missing = what;
			return MATCH_MISSING;
		}
		hit = ra->kind == ADDR_IFNAME ? rules_in_interface(ra->name, addr)
					      : addr_in_prefix(ra, addr);
		break;
	case ADDR_HOST:
		hit = (name && strcmp(name, ra->name) == 0) ||
		      (addr && host_has_addr(ra->name, addr));
		break;
	case ADDR_DOMAIN:
		hit = name && names_in_domain(name, ra->name);
		break;
	default:
		hit = false;
	}
	if (!hit)
		return MATCH_NO;
	if (ra->port.op == PORT_ANY)
		return MATCH_YES;
	if (!port_known) {
		*missing = what_port;
		return MATCH_MISSING;
	}
	return port_match(&ra->port, port) ? MATCH_YES : MATCH_NO;
}

const struct method_list *rules_socks_methods(const struct conf *c,
					      const struct rule *r)
{
	return r && r->socksmethods.n ? &r->socksmethods : &c->socksmethods;
}

static bool user_in_groups(const struct facts *f, const struct name_list *g)
{
	for (size_t i = 0; i < g->n; i++) {
		if (f->groups) {
			for (size_t j = 0; j < f->ngroups; j++)
				if (strcmp(f->groups[j], g->v[i]) == 0)
					return true;
		} else if (names_user_in_group(f->user, g->v[i])) {
			return true;
		}
	}
	return false;
}

/* Method, user and group conditions of a socks rule.  A rule that names
 * users or groups needs a method that proved a user name: "none", SOCKS4
 * and pam.address never satisfy it, whatever the client claims. */
static enum match_result match_auth(const struct conf *c, const struct rule *r,
				    const struct facts *f, const char **missing)
{
	if (!method_list_has(rules_socks_methods(c, r), f->method))
		return MATCH_NO;
	if (r->clientmethods.n && !method_list_has(&r->clientmethods,
						   f->clientmethod))
		return MATCH_NO;
	/* A socks rule naming a PAM service only takes users that service
	 * authenticated (authentication happens before the socks rules, with
	 * the client rule's service). */
	if (r->pam_service && (f->method == METHOD_PAM_USERNAME ||
			       f->method == METHOD_PAM_ADDRESS) &&
	    (!f->pam_service || strcmp(r->pam_service, f->pam_service)))
		return MATCH_NO;
	if (!r->users.n && !r->groups.n)
		return MATCH_YES;
	if (!method_yields_user(f->method))
		return MATCH_NO;
	if (!f->user) {
		*missing = "user";
		return MATCH_MISSING;
	}
	if (r->users.n) {
		bool found = false;
		for (size_t i = 0; i < r->users.n && !found; i++)
			found = strcmp(r->users.v[i], f->user) == 0;
		if (!found)
			return MATCH_NO;
	}
	if (r->groups.n && !user_in_groups(f, &r->groups))
		return MATCH_NO;
	return MATCH_YES;
}

static unsigned protocol_of(unsigned command)
{
	return command & (CMD_UDPASSOCIATE | CMD_UDPREPLY) ? PROTO_UDP : PROTO_TCP;
}

static enum match_result match_client_rule(const struct rule *r,
					   const struct facts *f,
					   const char **missing)
{
	enum match_result m;

	m = match_addr(&r->from, f->client, NULL, f->client_port_known,
		       addr_port(f->client), "from", "fromport", missing);
	if (m != MATCH_YES)
		return m;
	return match_addr(&r->to, f->local, NULL, f->local_port_known,
			  f->local ? addr_port(f->local) : 0, "laddr", "lport",
			  missing);
}

static enum match_result match_socks_rule(const struct conf *c,
					  const struct rule *r,
					  const struct facts *f,
					  const char **missing)
{
	enum match_result m;
	unsigned pxp = f->version == 4 ? PXP_SOCKS4 : PXP_SOCKS5;

	if (!(r->proxyprotocols & pxp) || !(r->commands & f->command) ||
	    !(r->protocols & protocol_of(f->command)))
		return MATCH_NO;
	m = match_addr(&r->from, f->client, NULL, f->client_port_known,
		       addr_port(f->client), "from", "fromport", missing);
	if (m != MATCH_YES)
		return m;
	m = match_addr(&r->to, f->dest, f->dest_name, f->dest_port_known,
		       f->dest_port, "to", "port", missing);
	if (m != MATCH_YES)
		return m;
	return match_auth(c, r, f, missing);
}

/* The side the index may skip rules by, besides the client's address:
 * the local address (client rules) or the destination (socks rules).
 * Only when the client's port is known: a rule whose from: has a port
 * would otherwise report that fact missing before its to: is looked at,
 * and skipping it would change what sockd-check says. */
static const struct sockaddr_storage *skip_by(const struct facts *f,
					      bool client)
{
	if (!f->client_port_known)
		return NULL;
	return client ? f->local : f->dest;
}

static enum match_result decide(const struct conf *c, const struct facts *f,
				struct verdict *v, bool client)
{
	struct rule_walk w;
	const struct rule *r;

	memset(v, 0, sizeof(*v));
	rule_walk_begin(&w, c, client ? RULE_CLIENT : RULE_SOCKS, f->client,
			skip_by(f, client));
	while ((r = rule_walk_next(&w))) {
		const char *missing = NULL;
		enum match_result m = client
			? match_client_rule(r, f, &missing)
			: match_socks_rule(c, r, f, &missing);
		if (m == MATCH_MISSING) {
			v->missing = missing;
			v->missing_rule = r;
			return MATCH_MISSING;
		}
		if (m == MATCH_YES) {
			v->pass = r->pass;
			v->rule = r;
			return MATCH_YES;
		}
	}
	if (w.failed) {
		/* the image could not say: the whole rules decide (or nothing
		 * passes when they do not load) */
		const struct conf *whole = conf_lazy_whole(c);
		if (whole)
			return decide(whole, f, v, client);
	}
	v->pass = false;
	return MATCH_YES;
}

enum match_result rules_decide_client(const struct conf *c,
				      const struct facts *f, struct verdict *v)
{
	return decide(c, f, v, true);
}

enum match_result rules_decide_socks(const struct conf *c,
				     const struct facts *f, struct verdict *v)
{
	if ((f->command & (CMD_CONNECT | CMD_UDPASSOCIATE)) && f->dest &&
	    addr_is_unspecified_dest(f->dest)) {
		memset(v, 0, sizeof(*v));
		v->unspecified = true;
		return MATCH_YES;
	}
	return decide(c, f, v, false);
}

bool rules_client_allows_method(const struct conf *c, const struct rule *r,
				enum method m, int version)
{
	if (version == 4 && m != METHOD_NONE)
		return false;
	return method_list_has(rules_socks_methods(c, r), m);
}

const struct rule *rules_first_possible_pass(const struct conf *c,
					     const struct facts *f)
{
	struct rule_walk w;
	const struct rule *r, *found = NULL;

	rule_walk_begin(&w, c, RULE_SOCKS, f->client, skip_by(f, false));
	while ((r = rule_walk_next(&w))) {
		const char *missing = NULL;
		enum match_result m = match_socks_rule(c, r, f, &missing);
		/* the destination is what is unknown: the rest must match */
		if (m == MATCH_MISSING && match_auth(c, r, f, &missing) == MATCH_NO)
			m = MATCH_NO;
		if (m == MATCH_YES && !r->pass)
			break;          /* a block that holds whatever comes */
		if (m != MATCH_NO && r->pass) {
			found = r;
			break;
		}
	}
	if (w.failed) {
		const struct conf *whole = conf_lazy_whole(c);
		return whole ? rules_first_possible_pass(whole, f) : NULL;
	}
	return found;
}
