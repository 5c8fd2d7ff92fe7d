/* sockd.conf parser: Dante 1.4 syntax, without Dante's traps.
 *
 * A recursive-descent parser over conf_lex tokens.  Nothing nests beyond
 * "rule { keyword: values }", so there is no recursion and hostile input
 * (100 000 braces, 10 MB lines) costs linear time.  After an error the
 * parser skips to the end of the line and goes on, so one run reports
 * every problem (up to MAX_DIAGS). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "addr.h"
#include "conf.h"
#include "conf_image.h"
#include "conf_lex.h"
#include "names.h"

#define MAX_DIAGS 50
#define MAX_VALUES 64
#define MAX_WORD 1024
#define MAX_FILE (64u << 20)

struct parser {
	struct lexer lx;
	struct conf *c;
	struct conf_diags *d;
	size_t nrules_alloc;
	bool abort;
};

/* A value list of one keyword: the words up to the end of the line. */
struct values {
	struct token t[MAX_VALUES];
	size_t n;
};

static void diag(struct parser *p, enum diag_level lvl, const struct token *at,
		 const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void diag(struct parser *p, enum diag_level lvl, const struct token *at,
		 const char *fmt, ...)
{
	struct conf_diags *d = p->d;

	if (lvl == DIAG_ERROR)
		d->nerrors++;
	if (d->n >= MAX_DIAGS) {
		if (lvl == DIAG_ERROR)
			p->abort = true;
		return;
	}
	struct conf_diag *nv = realloc(d->v, (d->n + 1) * sizeof(*nv));
	if (!nv) {
		p->abort = true;
		return;
	}
	d->v = nv;
	struct conf_diag *g = &d->v[d->n++];
	g->level = lvl;
	g->line = at ? at->line : 0;
	g->col = at ? at->col : 0;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(g->msg, sizeof(g->msg), fmt, ap);
	va_end(ap);
	if (lvl == DIAG_ERROR && d->n == MAX_DIAGS)
		p->abort = true;
}

#define ERR(p, t, ...) diag((p), DIAG_ERROR, (t), __VA_ARGS__)
#define WARN(p, t, ...) diag((p), DIAG_WARNING, (t), __VA_ARGS__)

/* Copies a token's text, bounded, for messages and values. */
static const char *tstr(const struct token *t, char *buf, size_t len)
{
	size_t n = t->len < len - 1 ? t->len : len - 1;
	memcpy(buf, t->text, n);
	buf[n] = '\0';
	return buf;
}

#define TS(t) tstr((t), (char[80]){0}, 80)

static char *tdup(const struct token *t)
{
	char *s = malloc(t->len + 1);
	if (s) {
		memcpy(s, t->text, t->len);
		s[t->len] = '\0';
	}
	return s;
}

/* Skips the rest of a line after an error, stopping before a '}' so the
 * enclosing rule still closes. */
static void skip_line(struct parser *p)
{
	for (;;) {
		struct token t = lex_peek(&p->lx);
		if (t.type == TOK_EOF || t.type == TOK_RBRACE)
			return;
		lex_next(&p->lx);
		if (t.type == TOK_NEWLINE)
			return;
	}
}

/* Reads the words that follow a keyword, up to the end of the line, a '}'
 * or the next keyword (Dante requires the line to end; we do not). */
static int read_values(struct parser *p, const struct token *key,
		       struct values *v)
{
	v->n = 0;
	for (;;) {
		struct token t = lex_peek(&p->lx);
		if (t.type == TOK_EOF || t.type == TOK_NEWLINE ||
		    t.type == TOK_RBRACE || t.type == TOK_KEY)
			break;
		lex_next(&p->lx);
		if (t.type == TOK_BAD) {
			ERR(p, &t, "invalid byte 0x%02x", (unsigned char)t.text[0]);
			skip_line(p);
			return -1;
		}
		if (t.type != TOK_WORD && t.type != TOK_OP) {
			ERR(p, &t, "unexpected \"%s\" after \"%s:\"", TS(&t),
			    TS(key));
			skip_line(p);
			return -1;
		}
		if (t.len >= MAX_WORD) {
			ERR(p, &t, "value after \"%s:\" is too long (%zu bytes)",
			    TS(key), t.len);
			skip_line(p);
			return -1;
		}
		if (v->n == MAX_VALUES) {
			ERR(p, &t, "too many values for \"%s:\"", TS(key));
			skip_line(p);
			return -1;
		}
		v->t[v->n++] = t;
	}
	if (v->n == 0) {
		ERR(p, key, "\"%s:\" needs a value", TS(key));
		return -1;
	}
	return 0;
}

static int one_value(struct parser *p, const struct token *key,
		     struct values *v)
{
	if (read_values(p, key, v))
		return -1;
	if (v->n != 1) {
		ERR(p, &v->t[1], "\"%s:\" takes one value, not \"%s\"", TS(key),
		    TS(&v->t[1]));
		return -1;
	}
	return 0;
}

/* Decimal or 0x hex, as Dante's lexer accepts. */
static int parse_number(const struct token *t, unsigned long max,
			unsigned long *out)
{
	char buf[32], *end;

	if (t->len == 0 || t->len >= sizeof(buf))
		return -1;
	tstr(t, buf, sizeof(buf));
	if (buf[0] < '0' || buf[0] > '9')
		return -1;
	errno = 0;
	unsigned long v = strtoul(buf, &end, 0);
	if (errno || *end || v > max)
		return -1;
	*out = v;
	return 0;
}

/* ---- keyword value sets ------------------------------------------------ */

struct word_bit {
	const char *word;
	unsigned bit;
};

static const struct word_bit command_words[] = {
	{ "connect", CMD_CONNECT }, { "bind", CMD_BIND },
	{ "udpassociate", CMD_UDPASSOCIATE }, { "bindreply", CMD_BINDREPLY },
	{ "udpreply", CMD_UDPREPLY }, { NULL, 0 } };
static const struct word_bit protocol_words[] = {
	{ "tcp", PROTO_TCP }, { "udp", PROTO_UDP }, { NULL, 0 } };
static const struct word_bit proxyprotocol_words[] = {
	{ "socks_v4", PXP_SOCKS4 }, { "socks_v5", PXP_SOCKS5 }, { NULL, 0 } };
static const struct word_bit log_words[] = {
	{ "connect", LOG_CONNECT }, { "disconnect", LOG_DISCONNECT },
	{ "data", LOG_DATA }, { "error", LOG_ERROR },
	{ "iooperation", LOG_IOOPERATION }, { "ioop", LOG_IOOPERATION },
	{ "tcpinfo", LOG_TCPINFO }, { NULL, 0 } };
static const struct word_bit enctype_words[] = {
	{ "clear", ENC_CLEAR }, { "integrity", ENC_INTEGRITY },
	{ "confidentiality", ENC_CONFIDENTIALITY },
	{ "permessage", ENC_PERMESSAGE },
	{ "any", ENC_CLEAR | ENC_INTEGRITY | ENC_CONFIDENTIALITY | ENC_PERMESSAGE },
	{ NULL, 0 } };

static int parse_bits(struct parser *p, const struct token *key,
		      const struct word_bit *set, unsigned *out)
{
	struct values v;

	if (read_values(p, key, &v))
		return -1;
	unsigned bits = 0;
	for (size_t i = 0; i < v.n; i++) {
		const struct word_bit *w = set;
		while (w->word && !tok_is(&v.t[i], w->word))
			w++;
		if (!w->word) {
			ERR(p, &v.t[i], "\"%s\" is not a valid value for \"%s:\"",
			    TS(&v.t[i]), TS(key));
			return -1;
		}
		bits |= w->bit;
	}
	*out = bits;
	return 0;
}

/* Methods Dante knows that we do not implement: a clear error, never a
 * silent pass. */
static const char *const unimplemented_methods[] = {
	"rfc931", "pam.any", "bsdauth", "ldapauth", NULL };

static int parse_methods(struct parser *p, const struct token *key,
			 bool client_side, struct method_list *out)
{
	struct values v;

	if (read_values(p, key, &v))
		return -1;
	out->n = 0;
	for (size_t i = 0; i < v.n; i++) {
		char buf[64];
		enum method m;
		tstr(&v.t[i], buf, sizeof(buf));
		if (method_lookup(buf, &m)) {
			for (const char *const *u = unimplemented_methods; *u; u++) {
				if (strcmp(*u, buf) == 0) {
					ERR(p, &v.t[i], "method \"%s\" is not "
					    "implemented by sockd-session", buf);
					return -1;
				}
			}
			ERR(p, &v.t[i], "unknown method \"%s\"", buf);
			return -1;
		}
		if (strcmp(buf, "pam") == 0)
			WARN(p, &v.t[i], "method \"pam\" is deprecated; "
			     "it means \"pam.username\"");
		if (client_side && m != METHOD_NONE && m != METHOD_PAM_ADDRESS) {
			ERR(p, &v.t[i], "\"%s\" is not a valid method for "
			    "clientmethod (only none and pam.address are)", buf);
			return -1;
		}
		if (method_list_has(out, m)) {
			WARN(p, &v.t[i], "method \"%s\" listed twice", buf);
			continue;
		}
		out->m[out->n++] = m;
	}
	return 0;
}

static int parse_yes_no(struct parser *p, const struct token *key, int *out)
{
	struct values v;

	if (one_value(p, key, &v))
		return -1;
	if (tok_is(&v.t[0], "yes"))
		*out = 1;
	else if (tok_is(&v.t[0], "no"))
		*out = 0;
	else {
		ERR(p, &v.t[0], "\"%s:\" takes yes or no", TS(key));
		return -1;
	}
	return 0;
}

static int parse_timeout_value(struct parser *p, const struct token *key,
			       int *out)
{
	struct values v;
	unsigned long n;

	if (one_value(p, key, &v))
		return -1;
	if (parse_number(&v.t[0], 100000000ul, &n)) {
		ERR(p, &v.t[0], "\"%s\" is not a number of seconds (0 - "
		    "100000000)", TS(&v.t[0]));
		return -1;
	}
	*out = (int)n;
	return 0;
}

/* timeout.* keywords, global or per rule.  Returns 1 when KEY is not one. */
static int parse_timeout(struct parser *p, const struct token *key,
			 struct timeouts *to)
{
	char k[40];
	int v;

	tstr(key, k, sizeof(k));
	int *field = NULL, *field2 = NULL;
	if (!strcmp(k, "timeout.negotiate"))
		field = &to->negotiate;
	else if (!strcmp(k, "timeout.connect") || !strcmp(k, "connecttimeout"))
		field = &to->connect;
	else if (!strcmp(k, "timeout.io") || !strcmp(k, "iotimeout"))
		field = &to->io_tcp, field2 = &to->io_udp;
	else if (!strcmp(k, "timeout.io.tcp"))
		field = &to->io_tcp;
	else if (!strcmp(k, "timeout.io.udp"))
		field = &to->io_udp;
	else if (!strcmp(k, "timeout.tcp_fin_wait"))
		field = &to->tcp_fin_wait;
	else
		return 1;
	if (!strcmp(k, "connecttimeout") || !strcmp(k, "iotimeout"))
		WARN(p, key, "\"%s\" is deprecated; use timeout.%s", k,
		     k[0] == 'c' ? "connect" : "io");
	if (parse_timeout_value(p, key, &v))
		return -1;
	*field = v;
	if (field2)
		*field2 = v;
	return 0;
}

/* ---- addresses --------------------------------------------------------- */

static int parse_port_number(struct parser *p, const struct token *t,
			     uint16_t *out)
{
	unsigned long n;
	char buf[64];

	if (t->type == TOK_WORD && parse_number(t, 65535, &n) == 0) {
		*out = (uint16_t)n;
		return 0;
	}
	if (t->type == TOK_WORD && t->len < sizeof(buf)) {
		tstr(t, buf, sizeof(buf));
		struct servent *se = getservbyname(buf, "tcp");
		if (!se)
			se = getservbyname(buf, "udp");
		if (se) {
			*out = ntohs((uint16_t)se->s_port);
			return 0;
		}
	}
	ERR(p, t, "\"%s\" is not a port (0 - 65535) or a service name", TS(t));
	return -1;
}

static const struct { const char *op; enum port_op val; } port_ops[] = {
	{ "=", PORT_EQ }, { "eq", PORT_EQ }, { "!=", PORT_NE }, { "ne", PORT_NE },
	{ "<", PORT_LT }, { "lt", PORT_LT }, { ">", PORT_GT }, { "gt", PORT_GT },
	{ "<=", PORT_LE }, { "le", PORT_LE }, { ">=", PORT_GE }, { "ge", PORT_GE },
};

/* After "port": "= N", "eq N", "A-B", "A - B", or a lone "N". */
static int parse_port_spec(struct parser *p, struct port_spec *ps)
{
	struct token t = lex_next(&p->lx);

	for (size_t i = 0; i < sizeof(port_ops) / sizeof(port_ops[0]); i++) {
		if ((t.type == TOK_OP || t.type == TOK_WORD) &&
		    tok_is(&t, port_ops[i].op)) {
			struct token n = lex_next(&p->lx);
			ps->op = port_ops[i].val;
			return parse_port_number(p, &n, &ps->lo);
		}
	}
	if (t.type != TOK_WORD) {
		ERR(p, &t, "expected a port after \"port\", not \"%s\"", TS(&t));
		return -1;
	}
	const char *dash = memchr(t.text, '-', t.len);
	if (dash && dash != t.text && dash != t.text + t.len - 1) {
		struct token a = t, b = t;
		a.len = (size_t)(dash - t.text);
		b.text = dash + 1;
		b.len = t.len - a.len - 1;
		b.col = t.col + (unsigned)a.len + 1;
		if (parse_port_number(p, &a, &ps->lo) ||
		    parse_port_number(p, &b, &ps->hi))
			return -1;
	} else {
		if (parse_port_number(p, &t, &ps->lo))
			return -1;
		struct token n = lex_peek(&p->lx);
		if (!(n.type == TOK_WORD && tok_is(&n, "-"))) {
			ps->op = PORT_EQ;
			return 0;
		}
		lex_next(&p->lx);
		n = lex_next(&p->lx);
		if (parse_port_number(p, &n, &ps->hi))
			return -1;
	}
	ps->op = PORT_RANGE;
	if (ps->hi < ps->lo) {
		ERR(p, &t, "port range %u-%u is empty", ps->lo, ps->hi);
		return -1;
	}
	return 0;
}

static bool looks_numeric(const char *s)
{
	for (; *s; s++)
		if (!strchr("0123456789abcdefABCDEF.:", *s))
			return false;
	return true;
}

/* One address word: prefix, .domain, interface or host name. */
static int parse_addr_word(struct parser *p, const struct token *t,
			   struct rule_addr *ra)
{
	char buf[MAX_WORD], err[200], canon[NAME_MAX_LEN + 1];

	tstr(t, buf, sizeof(buf));
	if (strchr(buf, '/')) {
		if (addr_parse_prefix(buf, ra, err, sizeof(err))) {
			ERR(p, t, "%s", err);
			return -1;
		}
		if (err[0])
			WARN(p, t, "%s", err);
		return 0;
	}
	struct sockaddr_storage ss;
	if (addr_parse_literal(buf, &ss) == 0 || (strchr(buf, ':') &&
						  looks_numeric(buf))) {
		addr_parse_prefix(buf, ra, err, sizeof(err));
		ERR(p, t, "%s", err);
		return -1;
	}
	if (buf[0] == '.') {
		if (names_canonical(buf + 1, strlen(buf + 1), canon,
				    sizeof(canon))) {
			ERR(p, t, "\"%s\" is not a valid domain", buf);
			return -1;
		}
		ra->kind = ADDR_DOMAIN;
	} else if (names_is_interface(buf)) {
		snprintf(canon, sizeof(canon), "%.*s", IF_NAMESIZE, buf);
		ra->kind = ADDR_IFNAME;
	} else {
		if (names_canonical(buf, strlen(buf), canon, sizeof(canon))) {
			ERR(p, t, "\"%s\" is not a valid host name or address",
			    buf);
			return -1;
		}
		ra->kind = ADDR_HOST;
	}
	ra->name = strdup(canon);
	return ra->name ? 0 : -1;
}

/* "from:" / "to:" value: ADDRESS [port SPEC] */
static int parse_rule_addr(struct parser *p, const struct token *key,
			   struct rule_addr *ra)
{
	struct token t = lex_next(&p->lx);

	if (ra->kind != ADDR_NONE) {
		ERR(p, key, "\"%s:\" given twice in one rule", TS(key));
		return -1;
	}
	if (t.type != TOK_WORD) {
		ERR(p, &t, "\"%s:\" needs an address", TS(key));
		return -1;
	}
	if (t.len >= MAX_WORD) {
		ERR(p, &t, "address is too long (%zu bytes)", t.len);
		return -1;
	}
	if (parse_addr_word(p, &t, ra))
		return -1;
	struct token n = lex_peek(&p->lx);
	if (n.type == TOK_WORD && tok_is(&n, "port")) {
		lex_next(&p->lx);
		if (ra->kind == ADDR_IFNAME || ra->kind == ADDR_NONE) {
			/* fine: Dante allows ports on every form */
		}
		return parse_port_spec(p, &ra->port);
	}
	return 0;
}

/* ---- rules ------------------------------------------------------------- */

static struct rule *new_rule(struct parser *p, enum rule_set set, bool pass,
			     unsigned line)
{
	struct conf *c = p->c;
	size_t n = c->nclient + c->nsocks;

	if (n == p->nrules_alloc) {
		size_t na = p->nrules_alloc ? p->nrules_alloc * 2 : 16;
		struct rule *nr = realloc(c->rules, na * sizeof(*nr));
		if (!nr)
			return NULL;
		c->rules = nr;
		p->nrules_alloc = na;
	}
	struct rule *r = &c->rules[n];
	memset(r, 0, sizeof(*r));
	r->set = set;
	r->pass = pass;
	r->line = line;
	r->commands = CMD_ALL;
	r->protocols = PROTO_ALL;
	r->proxyprotocols = PXP_ALL;
	r->timeout = (struct timeouts){ -1, -1, -1, -1, -1 };
	r->pam_session = -1;
	if (set == RULE_CLIENT)
		c->nclient++;
	else
		c->nsocks++;
	return r;
}

static int add_names(struct parser *p, const struct token *key,
		     struct name_list *l)
{
	struct values v;

	if (read_values(p, key, &v))
		return -1;
	for (size_t i = 0; i < v.n; i++) {
		char **nv = realloc(l->v, (l->n + 1) * sizeof(*nv));
		if (!nv)
			return -1;
		l->v = nv;
		if (!(l->v[l->n] = tdup(&v.t[i])))
			return -1;
		l->n++;
	}
	return 0;
}

static int set_string(struct parser *p, const struct token *key, char **out)
{
	struct values v;

	if (one_value(p, key, &v))
		return -1;
	free(*out);
	*out = tdup(&v.t[0]);
	return *out ? 0 : -1;
}

static int parse_portrange(struct parser *p, const struct token *key,
			   struct rule *r)
{
	struct values v;
	struct port_spec ps = { 0 };

	if (one_value(p, key, &v))
		return -1;
	const char *dash = memchr(v.t[0].text, '-', v.t[0].len);
	if (!dash) {
		ERR(p, &v.t[0], "\"udp.portrange:\" takes a range A-B");
		return -1;
	}
	struct token a = v.t[0], b = v.t[0];
	a.len = (size_t)(dash - a.text);
	b.text = dash + 1;
	b.len = v.t[0].len - a.len - 1;
	if (parse_port_number(p, &a, &ps.lo) || parse_port_number(p, &b, &ps.hi))
		return -1;
	if (ps.lo == 0 || ps.hi < ps.lo) {
		ERR(p, &v.t[0], "udp.portrange %u-%u is not a range of ports",
		    ps.lo, ps.hi);
		return -1;
	}
	r->udp_port_lo = ps.lo;
	r->udp_port_hi = ps.hi;
	return 0;
}

/* Keywords Dante has that sockd-session does not implement.  An error, so
 * that nobody believes a limit or a filter is enforced when it is not. */
static bool unimplemented_keyword(const char *k)
{
	static const char *const exact[] = {
		"bandwidth", "redirect", "libwrap", "hostid", "hostindex",
		"bsdauth.stylename", "maxsessions", "srchost", "compatibility",
		"extension", "udp.connectdst", "resolveprotocol",
		"external.protocol", "route.maxfail", "route.badexpire",
		"libwrap.allow", "libwrap.deny", "libwrap.hosts_access", NULL };
	for (const char *const *e = exact; *e; e++)
		if (!strcmp(k, *e))
			return true;
	return !strncmp(k, "session.", 8) ||
	       !strncmp(k, "internal.", 9) || !strncmp(k, "external.", 9) ||
	       !strncmp(k, "socket.", 7);
}

static int rule_keyword(struct parser *p, struct rule *r, const struct token *key)
{
	char k[64];
	bool client = r->set == RULE_CLIENT;
	const char *other = client ? "socks" : "client";

	tstr(key, k, sizeof(k));
	if (!strcmp(k, "from"))
		return parse_rule_addr(p, key, &r->from);
	if (!strcmp(k, "to"))
		return parse_rule_addr(p, key, &r->to);
	if (!strcmp(k, "log")) {
		if (parse_bits(p, key, log_words, &r->log))
			return -1;
		/* accepted for Dante's sake, but nobody must think payloads or
		 * TCP statistics are being logged */
		if (r->log & (LOG_DATA | LOG_IOOPERATION | LOG_TCPINFO))
			WARN(p, key, "log: data, iooperation and tcpinfo are not "
			     "implemented and are ignored (connect, disconnect "
			     "and error are)");
		return 0;
	}
	if (!strcmp(k, "user"))
		return add_names(p, key, &r->users);
	if (!strcmp(k, "group"))
		return add_names(p, key, &r->groups);
	if (!strcmp(k, "pamservicename") || !strcmp(k, "pam.servicename"))
		return set_string(p, key, &r->pam_service);
	if (!strcmp(k, "gssapi.keytab"))
		return set_string(p, key, &r->gssapi_keytab);
	if (!strcmp(k, "gssapi.servicename"))
		return set_string(p, key, &r->gssapi_service);
	if (!strcmp(k, "gssapi.enctype"))
		return parse_bits(p, key, enctype_words, &r->gssapi_enctype);
	if (!strcmp(k, "clientmethod"))
		return parse_methods(p, key, true, &r->clientmethods);
	if (!strcmp(k, "socksmethod"))
		return parse_methods(p, key, false, &r->socksmethods);
	if (!strcmp(k, "method")) {
		WARN(p, key, "\"method:\" is deprecated; use \"%s:\"",
		     client ? "clientmethod" : "socksmethod");
		return client ? parse_methods(p, key, true, &r->clientmethods)
			      : parse_methods(p, key, false, &r->socksmethods);
	}
	int rc = parse_timeout(p, key, &r->timeout);
	if (rc <= 0)
		return rc;
	if (!client) {
		if (!strcmp(k, "command"))
			return parse_bits(p, key, command_words, &r->commands);
		if (!strcmp(k, "protocol"))
			return parse_bits(p, key, protocol_words, &r->protocols);
		if (!strcmp(k, "proxyprotocol"))
			return parse_bits(p, key, proxyprotocol_words,
					  &r->proxyprotocols);
		if (!strcmp(k, "udp.portrange"))
			return parse_portrange(p, key, r);
	} else if (!strcmp(k, "pam.session")) {
		return parse_yes_no(p, key, &r->pam_session);
	} else if (!strcmp(k, "clientcompatibility")) {
		struct values v;
		if (one_value(p, key, &v))
			return -1;
		if (!tok_is(&v.t[0], "necgssapi")) {
			ERR(p, &v.t[0], "clientcompatibility: only \"necgssapi\" "
			    "is known");
			return -1;
		}
		r->necgssapi = true;
		return 0;
	}
	if (unimplemented_keyword(k)) {
		ERR(p, key, "\"%s:\" is not implemented by sockd-session", k);
		return -1;
	}
	static const char *const c_only[] = { "clientcompatibility",
		"pam.session", NULL };
	static const char *const s_only[] = { "command", "protocol",
		"proxyprotocol", "udp.portrange", NULL };
	for (const char *const *o = client ? s_only : c_only; *o; o++) {
		if (!strcmp(k, *o)) {
			ERR(p, key, "\"%s:\" is not valid in a %s rule (only in "
			    "%s rules)", k, client ? "client" : "socks", other);
			return -1;
		}
	}
	ERR(p, key, "unknown keyword \"%s:\" in a %s rule", k,
	    client ? "client" : "socks");
	return -1;
}

/* Checks a rule once its '}' is read. */
static void rule_finish(struct parser *p, struct rule *r, const struct token *at)
{
	if (r->from.kind == ADDR_NONE)
		r->from.kind = ADDR_ANY;
	if (r->to.kind == ADDR_NONE)
		r->to.kind = ADDR_ANY;
	if ((r->users.n || r->groups.n) &&
	    method_list_has(&r->socksmethods, METHOD_NONE)) {
		ERR(p, at, "rule at line %u: user:/group: cannot be checked "
		    "with socksmethod \"none\" (no user name is known)", r->line);
	}
	if (r->set == RULE_SOCKS) {
		unsigned tcp_cmds = CMD_CONNECT | CMD_BIND | CMD_BINDREPLY;
		unsigned udp_cmds = CMD_UDPASSOCIATE | CMD_UDPREPLY;
		if (r->commands != CMD_ALL && r->protocols != PROTO_ALL &&
		    !((r->protocols & PROTO_TCP) && (r->commands & tcp_cmds)) &&
		    !((r->protocols & PROTO_UDP) && (r->commands & udp_cmds)))
			WARN(p, at, "rule at line %u can never match: its "
			     "commands and protocols exclude each other", r->line);
	}
}

static void parse_rule(struct parser *p, enum rule_set set,
		       const struct token *kw)
{
	struct token v = lex_next(&p->lx);
	bool pass;

	if (tok_is(&v, "pass"))
		pass = true;
	else if (tok_is(&v, "block"))
		pass = false;
	else {
		ERR(p, &v, "expected \"pass\" or \"block\" after \"%s\"", TS(kw));
		skip_line(p);
		return;
	}
	struct token lb = lex_next(&p->lx);
	while (lb.type == TOK_NEWLINE)
		lb = lex_next(&p->lx);
	if (lb.type != TOK_LBRACE) {
		ERR(p, &lb, "expected \"{\" after \"%s %s\"", TS(kw), TS(&v));
		skip_line(p);
		return;
	}
	struct rule *r = new_rule(p, set, pass, kw->line);
	if (!r) {
		p->abort = true;
		return;
	}
	for (;;) {
		if (p->abort)
			return;
		struct token t = lex_next(&p->lx);
		switch (t.type) {
		case TOK_NEWLINE:
			continue;
		case TOK_RBRACE:
			rule_finish(p, r, &t);
			return;
		case TOK_EOF:
			ERR(p, kw, "rule beginning here is not closed with \"}\"");
			return;
		case TOK_KEY:
			if (rule_keyword(p, r, &t))
				skip_line(p);
			continue;
		case TOK_LBRACE:
			ERR(p, &t, "\"{\" inside a rule: rules do not nest");
			skip_line(p);
			continue;
		case TOK_BAD:
			ERR(p, &t, "invalid byte 0x%02x", (unsigned char)t.text[0]);
			skip_line(p);
			continue;
		default:
			if (tok_is(&t, "redirect") || tok_is(&t, "bandwidth")) {
				ERR(p, &t, "\"%s\" is not implemented by "
				    "sockd-session", TS(&t));
			} else {
				ERR(p, &t, "expected a keyword (\"keyword: value\"), "
				    "not \"%s\"", TS(&t));
			}
			skip_line(p);
			continue;
		}
	}
}

/* ---- global settings --------------------------------------------------- */

static int parse_logoutput(struct parser *p, const struct token *key,
			   struct log_target **out, size_t *nout)
{
	struct values v;

	if (read_values(p, key, &v))
		return -1;
	for (size_t i = 0; i < *nout; i++)
		free((*out)[i].arg);
	free(*out);
	*out = calloc(v.n, sizeof(**out));
	*nout = 0;
	if (!*out)
		return -1;
	for (size_t i = 0; i < v.n; i++) {
		struct log_target *lt = &(*out)[(*nout)++];
		const struct token *t = &v.t[i];
		if (tok_is(t, "stderr")) {
			lt->kind = LOGT_STDERR;
		} else if (tok_is(t, "stdout")) {
			lt->kind = LOGT_STDOUT;
		} else if (t->len >= 6 && !memcmp(t->text, "syslog", 6) &&
			   (t->len == 6 || t->text[6] == '/')) {
			lt->kind = LOGT_SYSLOG;
			struct token f = *t;
			f.text += 7;
			f.len = t->len > 7 ? t->len - 7 : 0;
			lt->arg = t->len > 7 ? tdup(&f) : NULL;
		} else if (t->text[0] == '/') {
			lt->kind = LOGT_FILE;
			lt->arg = tdup(t);
		} else {
			ERR(p, t, "log output \"%s\" is not stderr, stdout, "
			    "syslog[/facility] or an absolute path", TS(t));
			return -1;
		}
	}
	return 0;
}

static int parse_external(struct parser *p, const struct token *key)
{
	struct values v;
	struct conf *c = p->c;

	if (one_value(p, key, &v))
		return -1;
	char buf[MAX_WORD];
	tstr(&v.t[0], buf, sizeof(buf));
	struct rule_addr ra = { 0 };
	struct sockaddr_storage ss;
	if (addr_parse_literal(buf, &ss) == 0) {
		if (ss.ss_family == AF_INET) {
			ra.kind = ADDR_IPV4;
			ra.prefix = 32;
			ra.a.v4 = ((struct sockaddr_in *)&ss)->sin_addr;
		} else {
			ra.kind = ADDR_IPV6;
			ra.prefix = 128;
			ra.a.v6 = ((struct sockaddr_in6 *)&ss)->sin6_addr;
		}
	} else if (strlen(buf) < IF_NAMESIZE && !strchr(buf, '.') &&
		   !strchr(buf, ':')) {
		/* an interface; it need not exist where the rules are tested */
		ra.kind = ADDR_IFNAME;
		if (!(ra.name = strdup(buf)))
			return -1;
	} else {
		ERR(p, &v.t[0], "external: \"%s\" is not an IPv4/IPv6 address or "
		    "an interface name", buf);
		return -1;
	}
	struct rule_addr *ne = realloc(c->external,
				       (c->nexternal + 1) * sizeof(*ne));
	if (!ne) {
		free(ra.name);
		return -1;
	}
	c->external = ne;
	c->external[c->nexternal++] = ra;
	return 0;
}

static int global_keyword(struct parser *p, const struct token *key)
{
	struct conf *c = p->c;
	struct values v;
	char k[64];

	tstr(key, k, sizeof(k));
	if (!strcmp(k, "logoutput"))
		return parse_logoutput(p, key, &c->logout, &c->nlogout);
	if (!strcmp(k, "errorlog"))
		return parse_logoutput(p, key, &c->errlog, &c->nerrlog);
	if (!strcmp(k, "debug")) {
		unsigned long n;
		if (one_value(p, key, &v))
			return -1;
		if (parse_number(&v.t[0], 9, &n)) {
			ERR(p, &v.t[0], "debug: expected a level 0 - 9");
			return -1;
		}
		c->debug = (int)n;
		return 0;
	}
	if (!strcmp(k, "user.privileged"))
		return set_string(p, key, &c->user_privileged);
	if (!strcmp(k, "user.unprivileged") || !strcmp(k, "user.notprivileged"))
		return set_string(p, key, &c->user_unprivileged);
	if (!strcmp(k, "pam.session")) {
		int yes;
		if (parse_yes_no(p, key, &yes))
			return -1;
		c->pam_session = yes;
		return 0;
	}
	if (!strcmp(k, "user.libwrap")) {
		WARN(p, key, "\"user.libwrap:\" ignored: libwrap is not supported");
		return read_values(p, key, &v);
	}
	if (!strcmp(k, "clientmethod"))
		return parse_methods(p, key, true, &c->clientmethods);
	if (!strcmp(k, "socksmethod") || !strcmp(k, "method")) {
		if (k[0] == 'm')
			WARN(p, key, "\"method:\" is deprecated; use \"socksmethod:\"");
		c->socksmethods_given = true;
		return parse_methods(p, key, false, &c->socksmethods);
	}
	int rc = parse_timeout(p, key, &c->timeout);
	if (rc <= 0)
		return rc;
	if (!strcmp(k, "external"))
		return parse_external(p, key);
	if (!strcmp(k, "external.rotation")) {
		if (one_value(p, key, &v))
			return -1;
		if (tok_is(&v.t[0], "none"))
			c->rotation = ROTATION_NONE;
		else if (tok_is(&v.t[0], "same-same"))
			c->rotation = ROTATION_SAME_SAME;
		else {
			ERR(p, &v.t[0], "external.rotation \"%s\" is not "
			    "implemented (none, same-same are)", TS(&v.t[0]));
			return -1;
		}
		return 0;
	}
	if (!strcmp(k, "internal") || !strcmp(k, "internal.protocol") ||
	    !strncmp(k, "child.", 6) || !strncmp(k, "cpu.", 4)) {
		WARN(p, key, "\"%s:\" ignored: with socket activation the "
		     "socket unit or inetd decides it", k);
		return read_values(p, key, &v);
	}
	if (!strcmp(k, "localdomain")) {
		WARN(p, key, "\"localdomain:\" is obsolete and ignored");
		return read_values(p, key, &v);
	}
	if (unimplemented_keyword(k)) {
		ERR(p, key, "\"%s:\" is not implemented by sockd-session", k);
		return -1;
	}
	static const char *const rule_only[] = { "from", "to", "command", "log",
		"user", "group", "protocol", "proxyprotocol", "pam.servicename",
		"pamservicename", NULL };
	for (const char *const *o = rule_only; *o; o++) {
		if (!strcmp(k, *o)) {
			ERR(p, key, "\"%s:\" belongs inside a rule", k);
			return -1;
		}
	}
	ERR(p, key, "unknown keyword \"%s:\"", k);
	return -1;
}

/* Skips an unimplemented block ("route { ... }") up to its '}'. */
static void skip_block(struct parser *p)
{
	unsigned long depth = 0;

	for (;;) {
		struct token t = lex_next(&p->lx);
		if (t.type == TOK_EOF)
			return;
		if (t.type == TOK_LBRACE)
			depth++;
		if (t.type == TOK_RBRACE && depth && --depth == 0)
			return;
	}
}

static void parse_top(struct parser *p)
{
	while (!p->abort) {
		struct token t = lex_next(&p->lx);
		switch (t.type) {
		case TOK_EOF:
			return;
		case TOK_NEWLINE:
			continue;
		case TOK_KEY:
			if (global_keyword(p, &t))
				skip_line(p);
			continue;
		case TOK_WORD:
			if (tok_is(&t, "client")) {
				parse_rule(p, RULE_CLIENT, &t);
			} else if (tok_is(&t, "socks")) {
				parse_rule(p, RULE_SOCKS, &t);
			} else if (tok_is(&t, "pass") || tok_is(&t, "block")) {
				WARN(p, &t, "a rule without \"client\" or \"socks\" "
				     "is deprecated; read as \"socks %s\"", TS(&t));
				p->lx.have_peek = 0;
				/* re-read the verdict as the rule's first word */
				p->lx.p = t.text;
				p->lx.col = t.col;
				p->lx.line = t.line;
				parse_rule(p, RULE_SOCKS, &t);
			} else if (tok_is(&t, "route") || tok_is(&t, "monitor") ||
				   tok_is(&t, "hostid")) {
				ERR(p, &t, "\"%s\" rules are not implemented by "
				    "sockd-session", TS(&t));
				skip_block(p);
			} else {
				ERR(p, &t, "expected a setting or a rule, not "
				    "\"%s\"", TS(&t));
				skip_line(p);
			}
			continue;
		case TOK_BAD:
			ERR(p, &t, "invalid byte 0x%02x", (unsigned char)t.text[0]);
			skip_line(p);
			continue;
		default:
			ERR(p, &t, "unexpected \"%s\"", TS(&t));
			skip_line(p);
			continue;
		}
	}
}

/* ---- whole-file checks and entry points -------------------------------- */

static void check_rule_methods(struct parser *p, const struct rule *r)
{
	const struct conf *c = p->c;
	struct token at = { .line = r->line, .col = 1 };

	for (size_t i = 0; i < r->socksmethods.n; i++) {
		if (!method_list_has(&c->socksmethods, r->socksmethods.m[i]))
			ERR(p, &at, "%s-rule at line %u: socksmethod \"%s\" is not "
			    "in the global socksmethod list", r->set == RULE_CLIENT
			    ? "client" : "socks", r->line,
			    method_name(r->socksmethods.m[i]));
	}
	for (size_t i = 0; i < r->clientmethods.n; i++) {
		if (!method_list_has(&c->clientmethods, r->clientmethods.m[i]))
			ERR(p, &at, "%s-rule at line %u: clientmethod \"%s\" is "
			    "not in the global clientmethod list",
			    r->set == RULE_CLIENT ? "client" : "socks", r->line,
			    method_name(r->clientmethods.m[i]));
	}
}

/* Client rules first, then socks rules, each in file order, numbered. */
static void order_rules(struct conf *c)
{
	size_t n = c->nclient + c->nsocks;
	struct rule *sorted = malloc(n * sizeof(*sorted));
	size_t k = 0;
	unsigned nc = 0, ns = 0;

	if (!sorted)
		return;  /* n == 0 or no memory: rules stay in file order */
	for (size_t i = 0; i < n; i++)
		if (c->rules[i].set == RULE_CLIENT)
			sorted[k++] = c->rules[i];
	for (size_t i = 0; i < n; i++)
		if (c->rules[i].set == RULE_SOCKS)
			sorted[k++] = c->rules[i];
	for (size_t i = 0; i < n; i++)
		sorted[i].number = sorted[i].set == RULE_CLIENT ? ++nc : ++ns;
	free(c->rules);
	c->rules = sorted;
}

static void finish(struct parser *p)
{
	struct conf *c = p->c;
	struct timeouts *t = &c->timeout;

	/* Dante's defaults */
	if (t->negotiate < 0) t->negotiate = 30;
	if (t->connect < 0) t->connect = 30;
	if (t->io_tcp < 0) t->io_tcp = 0;
	if (t->io_udp < 0) t->io_udp = 86400;
	if (t->tcp_fin_wait < 0) t->tcp_fin_wait = 0;
	if (c->clientmethods.n == 0) {
		c->clientmethods.m[0] = METHOD_NONE;
		c->clientmethods.n = 1;
	}
	for (size_t i = 0; i < c->nclient + c->nsocks; i++)
		check_rule_methods(p, &c->rules[i]);
	if (!c->socksmethods_given)
		WARN(p, NULL, "no \"socksmethod:\" given: every SOCKS request "
		     "will be blocked (as in Dante)");
	if (c->nclient == 0)
		WARN(p, NULL, "no client rules: every connection will be refused");
	order_rules(c);
}

struct conf *conf_parse_buffer(const char *name, const char *text, size_t len,
			       struct conf_diags *diags)
{
	struct parser p = { 0 };
	struct conf *c = calloc(1, sizeof(*c));

	memset(diags, 0, sizeof(*diags));
	if (!c || !(c->file = strdup(name))) {
		free(c);
		diags->nerrors = 1;
		return NULL;
	}
	c->timeout = (struct timeouts){ -1, -1, -1, -1, -1 };
	p.c = c;
	p.d = diags;
	lex_init(&p.lx, text, len);
	parse_top(&p);
	if (p.abort)
		ERR(&p, NULL, "too many errors; giving up");
	finish(&p);
	if (diags->nerrors) {
		conf_free(c);
		return NULL;
	}
	return c;
}

/* Reads the open file FD whole.  Refuses what is not a regular file (a
 * directory, a FIFO that would block, /dev/zero that never ends) and
 * absurd sizes.  Does not close FD. */
static char *read_fd(int fd, size_t *len, char *err, size_t errlen)
{
	struct stat st;

	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "not a regular file");
		return NULL;
	}
	if ((unsigned long long)st.st_size > MAX_FILE) {
		snprintf(err, errlen, "file is larger than %u MiB", MAX_FILE >> 20);
		return NULL;
	}
	size_t cap = (size_t)st.st_size + 1, n = 0;
	char *buf = malloc(cap);
	while (buf) {
		if (n == cap) {  /* the file grew while we read it */
			snprintf(err, errlen, "file changed while being read");
			free(buf);
			buf = NULL;
			break;
		}
		ssize_t r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(err, errlen, "read error: %s", strerror(errno));
			free(buf);
			buf = NULL;
			break;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (!buf && !err[0])
		snprintf(err, errlen, "out of memory");
	*len = n;
	return buf;
}

static struct conf *load_failed(struct conf_diags *diags, const char *err)
{
	memset(diags, 0, sizeof(*diags));
	diags->v = calloc(1, sizeof(*diags->v));
	diags->nerrors = 1;
	if (diags->v) {
		diags->n = 1;
		diags->v[0].level = DIAG_ERROR;
		snprintf(diags->v[0].msg, sizeof(diags->v[0].msg), "%s", err);
	}
	return NULL;
}

struct conf *conf_load_fd(int fd, const char *name, struct conf_diags *diags)
{
	char err[200] = "";
	size_t len;
	char *text = read_fd(fd, &len, err, sizeof(err));

	if (!text)
		return load_failed(diags, err);
	struct conf *c = conf_parse_buffer(name, text, len, diags);
	free(text);
	return c;
}

struct conf *conf_load(const char *file, struct conf_diags *diags)
{
	char err[200];
	int fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

	if (fd < 0) {
		snprintf(err, sizeof(err), "cannot open: %s", strerror(errno));
		return load_failed(diags, err);
	}
	struct conf *c = conf_load_fd(fd, file, diags);
	close(fd);
	return c;
}

static void free_addr(struct rule_addr *a)
{
	free(a->name);
}

static void free_names(struct name_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
}

static void free_targets(struct log_target *t, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(t[i].arg);
	free(t);
}

void conf_free(struct conf *c)
{
	if (!c)
		return;
	if (c->image_block) {  /* a compiled image: one allocation */
		conf_image_free(c);
		return;
	}
	for (size_t i = 0; i < c->nclient + c->nsocks; i++) {
		struct rule *r = &c->rules[i];
		free_addr(&r->from);
		free_addr(&r->to);
		free_names(&r->users);
		free_names(&r->groups);
		free(r->pam_service);
		free(r->gssapi_keytab);
		free(r->gssapi_service);
	}
	free(c->rules);
	for (size_t i = 0; i < c->nexternal; i++)
		free_addr(&c->external[i]);
	free(c->external);
	free_targets(c->logout, c->nlogout);
	free_targets(c->errlog, c->nerrlog);
	free(c->user_privileged);
	free(c->user_unprivileged);
	free(c->file);
	free(c);
}

void conf_diags_free(struct conf_diags *d)
{
	free(d->v);
	memset(d, 0, sizeof(*d));
}

void conf_diag_format(const struct conf *c, const char *file,
		      const struct conf_diag *d, char *buf, size_t len)
{
	const char *f = file ? file : c ? c->file : "?";
	const char *lvl = d->level == DIAG_ERROR ? "error" : "warning";

	if (d->line == 0)
		snprintf(buf, len, "%s: %s: %s", f, lvl, d->msg);
	else if (d->col == 0)
		snprintf(buf, len, "%s:%u: %s: %s", f, d->line, lvl, d->msg);
	else
		snprintf(buf, len, "%s:%u:%u: %s: %s", f, d->line, d->col, lvl,
			 d->msg);
}

const char *conf_pam_service(const struct rule *client_rule)
{
	return client_rule && client_rule->pam_service ? client_rule->pam_service
						       : "sockd";
}

int conf_timeout(const struct conf *c, const struct rule *r,
		 size_t offset_in_struct)
{
	if (r) {
		int v = *(const int *)((const char *)&r->timeout + offset_in_struct);
		if (v >= 0)
			return v;
	}
	return *(const int *)((const char *)&c->timeout + offset_in_struct);
}
