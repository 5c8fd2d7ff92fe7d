/* One decision, the way sockd-session takes it: client rules, then the
 * method, then the socks rules on every address the destination has, the
 * first address that passes being the one the session connects to. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "addr.h"
#include "decide.h"
#include "rules_match.h"

static void explain(struct outcome *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void explain(struct outcome *o, const char *fmt, ...)
{
	size_t used = strlen(o->explain);
	va_list ap;

	if (used + 4 >= sizeof(o->explain))
		return;
	o->explain[used++] = ' ';
	o->explain[used++] = ' ';
	va_start(ap, fmt);
	vsnprintf(o->explain + used, sizeof(o->explain) - used - 1, fmt, ap);
	va_end(ap);
	used = strlen(o->explain);
	o->explain[used] = '\n';
	o->explain[used + 1] = '\0';
}

void decide_where(const struct conf *c, const struct rule *r, char *buf,
		  size_t len)
{
	if (r)
		snprintf(buf, len, "%s-rule #%u %s:%u",
			 r->set == RULE_CLIENT ? "client" : "socks", r->number,
			 c->file, r->line);
	else
		snprintf(buf, len, "default");
}

static int missing(struct outcome *o, const struct conf *c,
		   const struct verdict *v)
{
	char where[300];

	decide_where(c, v->missing_rule, where, sizeof(where));
	snprintf(o->error, sizeof(o->error), "%s needs %s= to decide, and SPEC "
		 "does not give it", where, v->missing);
	return o->rc = 2;
}

static int client_stage(const struct conf *c, const struct check_spec *s,
			struct facts *f, struct outcome *o)
{
	struct verdict v;
	char where[300];

	if (rules_decide_client(c, f, &v) == MATCH_MISSING)
		return missing(o, c, &v);
	decide_where(c, v.rule, where, sizeof(where));
	o->client_rule = v.rule;
	if (!v.pass) {
		o->rule = v.rule;
		o->rc = 1;
		explain(o, "%s blocks the client%s", where,
			v.rule ? "" : " (no client-rule matched)");
		return 1;
	}
	explain(o, "%s passes the client", where);
	const struct method_list *cm = v.rule->clientmethods.n
		? &v.rule->clientmethods : &c->clientmethods;
	if (!method_list_has(cm, METHOD_NONE)) {
		explain(o, "clientmethod pam.address: PAM decides on the client "
			"address at run time (assumed to say yes)");
		f->clientmethod = METHOD_PAM_ADDRESS;
	}
	if (!rules_client_allows_method(c, v.rule, s->method, s->version)) {
		o->rule = v.rule;
		o->rc = 1;
		if (s->version == 4)
			explain(o, "a SOCKS4 client can only use method none, which "
				"%s does not offer", where);
		else
			explain(o, "method %s is not offered to this client (%s "
				"socksmethod list)", method_name(s->method),
				v.rule->socksmethods.n ? "the client-rule's"
						       : "the global");
		return 1;
	}
	return 0;
}

int decide_spec(const struct conf *c, const struct check_spec *s,
		struct outcome *o)
{
	struct facts f = {
		.client = &s->from, .client_port_known = s->have_fromport,
		.local = s->have_laddr ? &s->laddr : NULL,
		.local_port_known = s->have_lport,
		.clientmethod = METHOD_NONE, .method = s->method,
		.user = s->have_user ? s->user : NULL,
		.groups = s->ngroups ? s->groups : NULL, .ngroups = s->ngroups,
		.version = s->version, .command = s->command,
	};
	struct sockaddr_storage cand[RESOLVE_MAX];
	char where[300], a[ADDR_STRLEN];
	int n;

	memset(o, 0, sizeof(*o));
	if (client_stage(c, s, &f, o))
		return o->rc;
	/* the session authenticates with the client rule's PAM service */
	f.pam_service = conf_pam_service(o->client_rule);
	if (s->have_user && !method_yields_user(s->method))
		explain(o, "user=%s is an unverified claim with method %s: it "
			"satisfies no user:/group: condition", s->user,
			method_name(s->method));
	if (!s->have_to && s->command == CMD_UDPASSOCIATE) {
		/* as the session: the association is refused only by a rule
		 * that blocks whatever the datagrams' destinations */
		struct verdict v;
		enum match_result m = rules_decide_socks(c, &f, &v);
		if (m == MATCH_YES) {
			o->rule = v.rule;
			o->rc = v.pass ? 0 : 1;
		} else {
			o->rule = rules_first_possible_pass(c, &f);
			o->rc = o->rule ? 0 : 1;
			if (o->rule)
				explain(o, "each datagram is decided by its "
					"destination (give to= and port= to "
					"decide one)");
		}
		decide_where(c, o->rule, where, sizeof(where));
		explain(o, "%s %s the association", where,
			o->rc ? "refuses" : "allows");
		return o->rc;
	}
	if (!s->have_to) {
		snprintf(o->error, sizeof(o->error), "to= (the destination) is "
			 "needed for the socks-rules");
		return o->rc = 2;
	}
	f.dest_port = s->port;
	f.dest_port_known = s->have_port;
	if (!s->to_is_name) {
		cand[0] = s->to_addr;
		n = 1;
	} else if (s->have_addrs) {
		n = (int)s->naddrs;
		memcpy(cand, s->addrs, s->naddrs * sizeof(cand[0]));
		f.dest_name = s->to_name;
	} else {
		f.dest_name = s->to_name;
		n = resolve_name(s->to_name, s->port, cand, RESOLVE_MAX, o->error,
				 sizeof(o->error));
		if (n < 0) {
			explain(o, "%s; the session replies 04 (host unreachable)",
				o->error);
			o->error[0] = '\0';
			o->rc = 1;
			return 1;
		}
	}
	const struct rule *first_block = NULL;
	bool any_block = false;
	/* bindreply, udpreply: the remote peer (to=) sends to the client
	 * (from=), so the rules' from: is the peer and to: the client */
	bool reply = s->command & (CMD_BINDREPLY | CMD_UDPREPLY);
	for (int i = 0; i < n; i++) {
		struct verdict v;
		addr_set_port(&cand[i], s->port);
		f.dest = &cand[i];
		if (reply) {
			f.client = &cand[i];
			f.client_port_known = s->have_port;
			f.dest = &s->from;
			f.dest_name = NULL;
			f.dest_port = addr_port(&s->from);
			f.dest_port_known = s->have_fromport;
		}
		if (rules_decide_socks(c, &f, &v) == MATCH_MISSING)
			return missing(o, c, &v);
		addr_ntop(&cand[i], a, sizeof(a));
		if (v.unspecified) {
			explain(o, "%s means this host and is never a destination "
				"(the session replies 04)", a);
			any_block = true;
			continue;
		}
		decide_where(c, v.rule, where, sizeof(where));
		explain(o, "%s %s %s%s%s", where, v.pass ? "passes" : "blocks", a,
			f.dest_name ? " for " : "", f.dest_name ? f.dest_name : "");
		if (v.pass && !o->rule) {
			o->rule = v.rule;
			o->rc = 0;
		}
		if (!v.pass && !any_block) {
			first_block = v.rule;
			any_block = true;
		}
	}
	if (!o->rule) {
		o->rule = first_block;
		o->rc = 1;
	}
	return o->rc;
}
