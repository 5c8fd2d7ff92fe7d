/* Canonical form of a loaded conf (sockd-check -T).  Every value is
 * written explicitly, in one fixed order, so that loading the output again
 * prints the same text: a fixpoint the tests check. */
#include <arpa/inet.h>
#include <stdio.h>

#include "conf.h"
#include "conf_lazy.h"

static void dump_methods(FILE *out, const char *key, const struct method_list *l)
{
	if (!l->n)
		return;
	fprintf(out, "%s:", key);
	for (size_t i = 0; i < l->n; i++)
		fprintf(out, " %s", method_name(l->m[i]));
	fputc('\n', out);
}

static void dump_targets(FILE *out, const char *key,
			 const struct log_target *t, size_t n)
{
	if (!n)
		return;
	fprintf(out, "%s:", key);
	for (size_t i = 0; i < n; i++) {
		switch (t[i].kind) {
		case LOGT_STDERR: fputs(" stderr", out); break;
		case LOGT_STDOUT: fputs(" stdout", out); break;
		case LOGT_SYSLOG:
			fprintf(out, " syslog%s%s", t[i].arg ? "/" : "",
				t[i].arg ? t[i].arg : "");
			break;
		case LOGT_FILE: fprintf(out, " %s", t[i].arg); break;
		}
	}
	fputc('\n', out);
}

static const char *port_op_text(enum port_op op)
{
	static const char *const s[] = { "", "=", "!=", "<", ">", "<=", ">=", "" };
	return s[op];
}

static void dump_addr(FILE *out, const char *key, const struct rule_addr *a)
{
	char buf[INET6_ADDRSTRLEN];

	fprintf(out, "\t%s: ", key);
	switch (a->kind) {
	case ADDR_NONE:
	case ADDR_ANY:
		fputs("0/0", out);
		break;
	case ADDR_IPV4:
		fprintf(out, "%s/%u", inet_ntop(AF_INET, &a->a.v4, buf,
						sizeof(buf)), a->prefix);
		break;
	case ADDR_IPV6:
		fprintf(out, "%s/%u", inet_ntop(AF_INET6, &a->a.v6, buf,
						sizeof(buf)), a->prefix);
		break;
	case ADDR_DOMAIN:
		fprintf(out, ".%s", a->name);
		break;
	case ADDR_HOST:
	case ADDR_IFNAME:
		fputs(a->name, out);
		break;
	}
	if (a->port.op == PORT_RANGE)
		fprintf(out, " port %u-%u", a->port.lo, a->port.hi);
	else if (a->port.op != PORT_ANY)
		fprintf(out, " port %s %u", port_op_text(a->port.op), a->port.lo);
	fputc('\n', out);
}

static void dump_bits(FILE *out, const char *key, unsigned bits,
		      const char *const *names, unsigned all)
{
	if (bits == all || bits == 0)
		return;
	fprintf(out, "\t%s:", key);
	for (unsigned i = 0; names[i]; i++)
		if (bits & (1u << i))
			fprintf(out, " %s", names[i]);
	fputc('\n', out);
}

static void dump_timeouts(FILE *out, const char *indent,
			  const struct timeouts *t)
{
	if (t->negotiate >= 0)
		fprintf(out, "%stimeout.negotiate: %d\n", indent, t->negotiate);
	if (t->connect >= 0)
		fprintf(out, "%stimeout.connect: %d\n", indent, t->connect);
	if (t->io_tcp >= 0)
		fprintf(out, "%stimeout.io.tcp: %d\n", indent, t->io_tcp);
	if (t->io_udp >= 0)
		fprintf(out, "%stimeout.io.udp: %d\n", indent, t->io_udp);
	if (t->tcp_fin_wait >= 0)
		fprintf(out, "%stimeout.tcp_fin_wait: %d\n", indent, t->tcp_fin_wait);
}

static void dump_names(FILE *out, const char *key, const struct name_list *l)
{
	if (!l->n)
		return;
	fprintf(out, "\t%s:", key);
	for (size_t i = 0; i < l->n; i++)
		fprintf(out, " %s", l->v[i]);
	fputc('\n', out);
}

static void dump_rule(FILE *out, const struct rule *r)
{
	static const char *const cmds[] = { "connect", "bind", "udpassociate",
		"bindreply", "udpreply", NULL };
	static const char *const protos[] = { "tcp", "udp", NULL };
	static const char *const pxps[] = { "socks_v4", "socks_v5", NULL };
	static const char *const logs[] = { "connect", "disconnect", "data",
		"error", "iooperation", "tcpinfo", NULL };
	static const char *const encs[] = { "clear", "integrity",
		"confidentiality", "permessage", NULL };

	fprintf(out, "%s %s {\n", r->set == RULE_CLIENT ? "client" : "socks",
		r->pass ? "pass" : "block");
	dump_addr(out, "from", &r->from);
	dump_addr(out, "to", &r->to);
	dump_bits(out, "command", r->commands, cmds, CMD_ALL);
	dump_bits(out, "protocol", r->protocols, protos, PROTO_ALL);
	dump_bits(out, "proxyprotocol", r->proxyprotocols, pxps, PXP_ALL);
	if (r->clientmethods.n) {
		fputc('\t', out);
		dump_methods(out, "clientmethod", &r->clientmethods);
	}
	if (r->socksmethods.n) {
		fputc('\t', out);
		dump_methods(out, "socksmethod", &r->socksmethods);
	}
	dump_names(out, "user", &r->users);
	dump_names(out, "group", &r->groups);
	dump_bits(out, "log", r->log, logs, 0);
	if (r->pam_service)
		fprintf(out, "\tpam.servicename: %s\n", r->pam_service);
	if (r->pam_session >= 0)
		fprintf(out, "\tpam.session: %s\n", r->pam_session ? "yes" : "no");
	if (r->gssapi_keytab)
		fprintf(out, "\tgssapi.keytab: %s\n", r->gssapi_keytab);
	if (r->gssapi_service)
		fprintf(out, "\tgssapi.servicename: %s\n", r->gssapi_service);
	dump_bits(out, "gssapi.enctype", r->gssapi_enctype, encs, 0);
	if (r->necgssapi)
		fputs("\tclientcompatibility: necgssapi\n", out);
	dump_timeouts(out, "\t", &r->timeout);
	if (r->udp_port_lo)
		fprintf(out, "\tudp.portrange: %u-%u\n", r->udp_port_lo,
			r->udp_port_hi);
	fputs("}\n", out);
}

void conf_dump(const struct conf *c, FILE *out)
{
	char buf[INET6_ADDRSTRLEN];

	dump_targets(out, "logoutput", c->logout, c->nlogout);
	dump_targets(out, "errorlog", c->errlog, c->nerrlog);
	if (c->debug)
		fprintf(out, "debug: %d\n", c->debug);
	if (c->user_privileged)
		fprintf(out, "user.privileged: %s\n", c->user_privileged);
	if (c->user_unprivileged)
		fprintf(out, "user.unprivileged: %s\n", c->user_unprivileged);
	dump_methods(out, "clientmethod", &c->clientmethods);
	dump_methods(out, "socksmethod", &c->socksmethods);
	dump_timeouts(out, "", &c->timeout);
	if (c->pam_session)
		fputs("pam.session: yes\n", out);
	for (size_t i = 0; i < c->nexternal; i++) {
		const struct rule_addr *a = &c->external[i];
		if (a->kind == ADDR_IFNAME)
			fprintf(out, "external: %s\n", a->name);
		else
			fprintf(out, "external: %s\n",
				inet_ntop(a->kind == ADDR_IPV4 ? AF_INET : AF_INET6,
					  &a->a, buf, sizeof(buf)));
	}
	if (c->rotation == ROTATION_SAME_SAME)
		fputs("external.rotation: same-same\n", out);
	if (c->lazy) {
		/* rules read as decisions need them: read them all */
		c = conf_lazy_whole(c);
		if (!c) {
			fputs("# the rules could not be read\n", out);
			return;
		}
	}
	for (size_t i = 0; i < c->nclient + c->nsocks; i++) {
		fputc('\n', out);
		fprintf(out, "# %s-rule #%u\n",
			c->rules[i].set == RULE_CLIENT ? "client" : "socks",
			c->rules[i].number);
		dump_rule(out, &c->rules[i]);
	}
}
