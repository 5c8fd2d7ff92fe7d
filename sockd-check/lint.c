/* sockd-check -t: warnings about rules that are legal but probably wrong. */
#include <errno.h>
#include <ifaddrs.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "addr.h"
#include "lint.h"
#include "names.h"
#include "rules_match.h"

struct interval {
	unsigned lo, hi;
};

/* A port spec as at most two closed intervals. */
static size_t port_intervals(const struct port_spec *p, struct interval iv[2])
{
	switch (p->op) {
	case PORT_ANY: iv[0] = (struct interval){ 0, 65535 }; return 1;
	case PORT_EQ: iv[0] = (struct interval){ p->lo, p->lo }; return 1;
	case PORT_RANGE: iv[0] = (struct interval){ p->lo, p->hi }; return 1;
	case PORT_LE: iv[0] = (struct interval){ 0, p->lo }; return 1;
	case PORT_GE: iv[0] = (struct interval){ p->lo, 65535 }; return 1;
	case PORT_LT:
		if (!p->lo)
			return 0;
		iv[0] = (struct interval){ 0, p->lo - 1u };
		return 1;
	case PORT_GT:
		if (p->lo == 65535)
			return 0;
		iv[0] = (struct interval){ p->lo + 1u, 65535 };
		return 1;
	case PORT_NE: {
		size_t n = 0;
		if (p->lo > 0)
			iv[n++] = (struct interval){ 0, p->lo - 1u };
		if (p->lo < 65535)
			iv[n++] = (struct interval){ p->lo + 1u, 65535 };
		return n;
	}
	}
	return 0;
}

static bool ports_cover(const struct port_spec *a, const struct port_spec *b)
{
	struct interval ia[2], ib[2];
	size_t na = port_intervals(a, ia), nb = port_intervals(b, ib);

	for (size_t i = 0; i < nb; i++) {
		bool inside = false;
		for (size_t j = 0; j < na && !inside; j++)
			inside = ib[i].lo >= ia[j].lo && ib[i].hi <= ia[j].hi;
		if (!inside)
			return false;
	}
	return true;
}

static bool addr_covers(const struct rule_addr *a, const struct rule_addr *b)
{
	if (!ports_cover(&a->port, &b->port))
		return false;
	switch (a->kind) {
	case ADDR_NONE:
	case ADDR_ANY:
		return true;
	case ADDR_IPV4:
	case ADDR_IPV6: {
		if (b->kind != a->kind || b->prefix < a->prefix)
			return false;
		struct sockaddr_storage ss = { 0 };
		if (b->kind == ADDR_IPV4) {
			ss.ss_family = AF_INET;
			((struct sockaddr_in *)&ss)->sin_addr = b->a.v4;
		} else {
			ss.ss_family = AF_INET6;
			((struct sockaddr_in6 *)&ss)->sin6_addr = b->a.v6;
		}
		return addr_in_prefix(a, &ss);
	}
	case ADDR_DOMAIN:
		return b->kind == ADDR_DOMAIN && names_in_domain(b->name, a->name);
	case ADDR_HOST:
	case ADDR_IFNAME:
		return b->kind == a->kind && !strcmp(a->name, b->name);
	}
	return false;
}

static bool names_cover(const struct name_list *a, const struct name_list *b)
{
	if (!a->n)
		return true;
	if (!b->n)
		return false;
	for (size_t i = 0; i < b->n; i++) {
		bool found = false;
		for (size_t j = 0; j < a->n && !found; j++)
			found = !strcmp(a->v[j], b->v[i]);
		if (!found)
			return false;
	}
	return true;
}

static bool methods_cover(const struct method_list *a,
			  const struct method_list *b)
{
	for (size_t i = 0; i < b->n; i++)
		if (!method_list_has(a, b->m[i]))
			return false;
	return true;
}

/* Does every connection that matches B match A as well? */
static bool rule_covers(const struct conf *c, const struct rule *a,
			const struct rule *b)
{
	const struct method_list *ca = a->clientmethods.n ? &a->clientmethods
							  : &c->clientmethods;
	const struct method_list *cb = b->clientmethods.n ? &b->clientmethods
							  : &c->clientmethods;
	if ((a->commands & b->commands) != b->commands ||
	    (a->protocols & b->protocols) != b->protocols ||
	    (a->proxyprotocols & b->proxyprotocols) != b->proxyprotocols)
		return false;
	if (!addr_covers(&a->from, &b->from) || !addr_covers(&a->to, &b->to))
		return false;
	if (a->set == RULE_SOCKS) {
		if (!methods_cover(rules_socks_methods(c, a),
				   rules_socks_methods(c, b)))
			return false;
		if (a->clientmethods.n && !methods_cover(ca, cb))
			return false;
	}
	return names_cover(&a->users, &b->users) &&
	       names_cover(&a->groups, &b->groups);
}

static void warn(struct lint *l, const struct rule *r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void warn(struct lint *l, const struct rule *r, const char *fmt, ...)
{
	char msg[600];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (r)
		fprintf(l->out, "%s:%u: warning: %s\n", l->conf->file, r->line, msg);
	else
		fprintf(l->out, "%s: warning: %s\n", l->conf->file, msg);
	l->warnings++;
}

static void lint_shadowed(struct lint *l)
{
	const struct conf *c = l->conf;

	for (size_t j = 0; j < c->nclient + c->nsocks; j++) {
		const struct rule *b = &c->rules[j];
		for (size_t i = 0; i < j; i++) {
			const struct rule *a = &c->rules[i];
			if (a->set != b->set || !rule_covers(c, a, b))
				continue;
			warn(l, b, "%s-rule #%u can never match: %s-rule #%u at "
			     "line %u matches everything it does",
			     b->set == RULE_CLIENT ? "client" : "socks", b->number,
			     a->set == RULE_CLIENT ? "client" : "socks", a->number,
			     a->line);
			break;
		}
	}
}

static bool uses_pam(const struct conf *c, const struct rule *r)
{
	const struct method_list *s = rules_socks_methods(c, r);
	const struct method_list *cm = r->clientmethods.n ? &r->clientmethods
							  : &c->clientmethods;
	return method_list_has(s, METHOD_PAM_USERNAME) ||
	       method_list_has(s, METHOD_PAM_ADDRESS) ||
	       method_list_has(cm, METHOD_PAM_ADDRESS);
}

static void lint_pam_services(struct lint *l)
{
	const struct conf *c = l->conf;
	const char *dir = getenv("SOCKD_CHECK_PAMDIR");

	if (!dir)
		dir = "/etc/pam.d";
	for (size_t i = 0; i < c->nclient + c->nsocks; i++) {
		const struct rule *r = &c->rules[i];
		const char *svc = r->pam_service ? r->pam_service : "sockd";
		char path[512];
		if (!uses_pam(c, r))
			continue;
		bool seen = false;   /* one warning per service */
		for (size_t j = 0; j < i && !seen; j++) {
			const struct rule *q = &c->rules[j];
			seen = uses_pam(c, q) && !strcmp(svc, q->pam_service
							 ? q->pam_service : "sockd");
		}
		if (seen)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, svc);
		if (access(path, F_OK) != 0)
			warn(l, r, "PAM service \"%s\" has no file %s: PAM would "
			     "fall back to \"other\"", svc, path);
	}
}

static void lint_open_client_rules(struct lint *l)
{
	const struct conf *c = l->conf;

	for (size_t i = 0; i < c->nclient; i++) {
		const struct rule *r = &c->rules[i];
		const struct method_list *cm = r->clientmethods.n
			? &r->clientmethods : &c->clientmethods;
		if (r->pass && r->from.kind == ADDR_ANY &&
		    r->from.port.op == PORT_ANY && r->to.kind == ADDR_ANY &&
		    method_list_has(cm, METHOD_NONE))
			warn(l, r, "client-rule #%u lets every address on the "
			     "Internet talk to the proxy", r->number);
	}
}

/* Which socks rule decides destination PROBE first (by address alone)? */
static void probe_destination(struct lint *l, const struct sockaddr_storage *p,
			      const char *what)
{
	const struct conf *c = l->conf;
	const struct rule *rules = conf_socks_rules(c);

	for (size_t i = 0; i < c->nsocks; i++) {
		const struct rule *r = &rules[i];
		bool hit;
		if (r->to.kind == ADDR_ANY || r->to.kind == ADDR_NONE ||
		    r->to.kind == ADDR_IPV4 || r->to.kind == ADDR_IPV6)
			hit = addr_in_prefix(&r->to, p);
		else if (r->to.kind == ADDR_IFNAME)
			hit = rules_in_interface(r->to.name, p);
		else
			continue;   /* names never match a bare address */
		if (!hit || !(r->commands & (CMD_CONNECT | CMD_BIND |
					     CMD_UDPASSOCIATE)))
			continue;
		if (r->pass) {
			char a[ADDR_STRLEN];
			addr_ntop(p, a, sizeof(a));
			warn(l, r, "socks-rule #%u passes connections to %s (%s)",
			     r->number, a, what);
			return;
		}
		/* only a block that holds for every client and port settles it */
		if (r->from.kind == ADDR_ANY && r->from.port.op == PORT_ANY &&
		    r->to.port.op == PORT_ANY && !r->users.n && !r->groups.n &&
		    (r->commands & CMD_CONNECT) && r->proxyprotocols == PXP_ALL &&
		    !r->socksmethods.n && !r->clientmethods.n)
			return;
	}
}

static void lint_sensitive_destinations(struct lint *l)
{
	static const struct { const char *a, *what; } probes[] = {
		{ "127.0.0.1", "loopback: services of the proxy host" },
		{ "::1", "loopback: services of the proxy host" },
		{ "169.254.169.254", "link-local: cloud metadata" },
		{ "fe80::1", "link-local" },
	};
	struct sockaddr_storage ss;
	struct ifaddrs *ifs;

	for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
		addr_parse_literal(probes[i].a, &ss);
		probe_destination(l, &ss, probes[i].what);
	}
	if (getifaddrs(&ifs))
		return;
	for (struct ifaddrs *i = ifs; i; i = i->ifa_next) {
		if (!i->ifa_addr || (i->ifa_addr->sa_family != AF_INET &&
				     i->ifa_addr->sa_family != AF_INET6))
			continue;
		memset(&ss, 0, sizeof(ss));
		memcpy(&ss, i->ifa_addr, i->ifa_addr->sa_family == AF_INET
		       ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		if (ss.ss_family == AF_INET6 && (IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr) ||
						 IN6_IS_ADDR_LINKLOCAL(&s6->sin6_addr)))
			continue;
		if (ss.ss_family == AF_INET &&
		    ((const uint8_t *)&((struct sockaddr_in *)&ss)->sin_addr)[0] == 127)
			continue;
		probe_destination(l, &ss, "an address of this host");
	}
	freeifaddrs(ifs);
}

/* The keytab holds the service's long-term key: root's alone. */
static void lint_keytab(struct lint *l, const struct rule *r)
{
	const char *kt = r->gssapi_keytab ? r->gssapi_keytab : "FILE:/etc/sockd.keytab";
	struct stat st;

	if (!strncmp(kt, "FILE:", 5))
		kt += 5;
	else if (strchr(kt, ':') && kt[0] != '/')
		return;            /* another keytab type: nothing to stat */
	if (lstat(kt, &st) < 0) {
		warn(l, r, "gssapi.keytab %s: %s", kt, strerror(errno));
		return;
	}
	if (S_ISLNK(st.st_mode))
		warn(l, r, "gssapi.keytab %s is a symbolic link", kt);
	else if (st.st_uid != 0 || (st.st_mode & 0037))
		warn(l, r, "gssapi.keytab %s should be owned by root with mode "
		     "0600 (or 0640), not uid %u mode %04o", kt,
		     (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
}

static void lint_misc(struct lint *l)
{
	const struct conf *c = l->conf;

	for (size_t i = 0; i < c->nclient + c->nsocks; i++) {
		const struct rule *r = &c->rules[i];
		if (r->gssapi_enctype & ENC_CLEAR)
			warn(l, r, "gssapi.enctype clear: the relayed data is not "
			     "protected");
		if (r->set == RULE_CLIENT &&
		    method_list_has(rules_socks_methods(c, r), METHOD_GSSAPI))
			lint_keytab(l, r);
		if (r->set == RULE_SOCKS && (r->gssapi_enctype || r->gssapi_keytab ||
					     r->gssapi_service))
			warn(l, r, "gssapi.* in a socks rule has no effect: GSSAPI "
			     "authenticates during negotiation, with the client "
			     "rule's settings");
	}
	for (size_t i = 0; i < c->nexternal; i++) {
		const struct rule_addr *e = &c->external[i];
		if (e->kind == ADDR_IFNAME) {
			struct ifaddrs *ifs;
			bool found = false;
			if (getifaddrs(&ifs) == 0) {
				for (struct ifaddrs *a = ifs; a && !found; a = a->ifa_next)
					found = !strcmp(a->ifa_name, e->name);
				freeifaddrs(ifs);
			}
			if (!found)
				warn(l, NULL, "external: interface %s does not exist "
				     "on this host", e->name);
			continue;
		}
		/* binding to it tells whether this host has it */
		struct sockaddr_storage ss = { 0 };
		if (e->kind == ADDR_IPV4) {
			ss.ss_family = AF_INET;
			((struct sockaddr_in *)&ss)->sin_addr = e->a.v4;
		} else {
			ss.ss_family = AF_INET6;
			((struct sockaddr_in6 *)&ss)->sin6_addr = e->a.v6;
		}
		int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		char a[ADDR_STRLEN];
		addr_ntop(&ss, a, sizeof(a));
		if (fd < 0 || bind(fd, (struct sockaddr *)&ss, addr_len(&ss)) < 0)
			warn(l, NULL, "external: %s is not an address of this host",
			     a);
		if (fd >= 0)
			close(fd);
	}
}

int lint_conf(struct lint *l)
{
	lint_shadowed(l);
	lint_pam_services(l);
	lint_open_client_rules(l);
	lint_sensitive_destinations(l);
	lint_misc(l);
	return l->warnings;
}
