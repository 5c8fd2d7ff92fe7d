/* sockd-session: one SOCKS session, started per connection by systemd
 * (Accept=yes), inetd or xinetd.  main() reads as the checklist of
 * DESIGN.md; each step is one call. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "activation.h"
#include "auth_pam.h"
#include "addr.h"
#include "conf.h"
#include "connect.h"
#include "log.h"
#include "negotiate.h"
#include "netio.h"
#include "privdrop.h"
#include "relay.h"
#include "rules_match.h"

/* Exit codes (documented in sockd-session(8)). */
enum {
	EXIT_RELAYED = 0,
	EXIT_REFUSED = 1,
	EXIT_CONF = 2,
	EXIT_ACTIVATION = 3,
	EXIT_PRIVDROP = 4,
	EXIT_USAGE = 64,
};

#define DEFAULT_CONF SOCKD_SYSCONFDIR "/sockd.conf"

struct session {
	const char *conf_file;
	struct conf *conf;
	struct client_conn cc;
	char client[ADDR_STRLEN], local[ADDR_STRLEN];
	char client_ip[ADDR_STRLEN];       /* PAM_RHOST */
	char user[4 * 256];                /* authenticated name, escaped;
					      "-" when none */
	const struct rule *client_rule;
	struct negotiation neg;
	struct auth_ctx auth;
	enum method clientmethod;          /* none or pam.address */
	struct privdrop_target unpriv;
	struct relay_pipes pipes;
	int64_t started;
};

static void usage(FILE *out)
{
	fprintf(out, "usage: sockd-session [-f file] [-d] [-v]\n"
		"  -f file  rules file (default %s)\n"
		"  -d       debug logging\n"
		"  -v       print the version and exit\n", DEFAULT_CONF);
}

static void parse_args(struct session *s, int argc, char **argv, int *debug)
{
	int opt;

	s->conf_file = DEFAULT_CONF;
	while ((opt = getopt(argc, argv, "f:dvh")) != -1) {
		switch (opt) {
		case 'f': s->conf_file = optarg; break;
		case 'd': (*debug)++; break;
		case 'v':
			printf("sockd-session %s\n", SOCKD_VERSION);
			exit(0);
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			exit(EXIT_USAGE);
		}
	}
	if (optind != argc) {
		usage(stderr);
		exit(EXIT_USAGE);
	}
}

/* Secrets (passwords, keys) pass through this process: no core files. */
static void no_core_dumps(void)
{
	struct rlimit rl = { 0, 0 };

	setrlimit(RLIMIT_CORE, &rl);
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

static void take_connection(struct session *s)
{
	char err[200];

	if (activation_take(&s->cc, err, sizeof(err))) {
		log_msg(LOGL_ERROR, "activation: %s", err);
		exit(EXIT_ACTIVATION);
	}
	addr_format(&s->cc.peer, s->client, sizeof(s->client));
	addr_format(&s->cc.local, s->local, sizeof(s->local));
	addr_unmap(&s->cc.peer);
	addr_unmap(&s->cc.local);
	addr_ntop(&s->cc.peer, s->client_ip, sizeof(s->client_ip));
	strcpy(s->user, "-");
}

static void load_rules(struct session *s)
{
	struct conf_diags d;
	char line[400];

	s->conf = conf_load(s->conf_file, &d);
	for (size_t i = 0; i < d.n; i++) {
		if (!s->conf && d.v[i].level != DIAG_ERROR)
			continue;
		conf_diag_format(NULL, s->conf_file, &d.v[i], line, sizeof(line));
		log_msg(d.v[i].level == DIAG_ERROR ? LOGL_ERROR : LOGL_DEBUG,
			"%s", line);
	}
	conf_diags_free(&d);
	if (!s->conf) {
		log_msg(LOGL_ERROR, "block client=%s local=%s reason=\"rules file "
			"%s does not load\"", s->client, s->local, s->conf_file);
		exit(EXIT_CONF);
	}
	log_open(s->conf);
}

static void rule_where(const struct session *s, const struct rule *r,
		       char *buf, size_t len)
{
	if (r)
		snprintf(buf, len, "%s:%u %s-rule=#%u", s->conf->file, r->line,
			 r->set == RULE_CLIENT ? "client" : "socks", r->number);
	else
		snprintf(buf, len, "default");
}

/* Ends a session that will not relay.  EVENT is "block" when a rule (or
 * the default) said no, "fail" when a rule passed but the request could
 * not be carried out.  Explicit rules log per their log: keywords; the
 * default block and ALWAYS events are always logged. */
static void end_refused(const struct session *s, const char *event,
			const struct rule *r, int always, const char *reason)
{
	char where[300];

	if (always || !r || (r->log & (LOG_CONNECT | LOG_ERROR))) {
		rule_where(s, r, where, sizeof(where));
		log_msg(LOGL_INFO, "%s client=%s local=%s method=%s user=%s "
			"rule=%s reason=\"%s\"", event, s->client, s->local,
			method_name(s->neg.method), s->user, where, reason);
	}
	exit(EXIT_REFUSED);
}

static void refuse(const struct session *s, const struct rule *r, int always,
		   const char *reason)
{
	end_refused(s, "block", r, always, reason);
}

/* Client rules decide before a single SOCKS byte is read. */
static void check_client_rules(struct session *s)
{
	struct facts f = { .client = &s->cc.peer, .local = &s->cc.local,
			   .client_port_known = true, .local_port_known = true,
			   .version = 5 };
	struct verdict v;

	if (rules_decide_client(s->conf, &f, &v) != MATCH_YES || !v.pass)
		refuse(s, v.rule, 0, v.rule ? "blocked by client-rule"
					     : "no client-rule matched");
	s->client_rule = v.rule;
	s->auth.rhost = s->client_ip;
	s->auth.pam_service = conf_pam_service(v.rule);
	s->auth.pam_session = v.rule->pam_session >= 0 ? v.rule->pam_session
						       : s->conf->pam_session;
	s->auth.gss = (struct gss_params){
		.keytab = v.rule->gssapi_keytab ? v.rule->gssapi_keytab
						: GSS_DEFAULT_KEYTAB,
		.service = v.rule->gssapi_service ? v.rule->gssapi_service
						  : GSS_DEFAULT_SERVICE,
		.enctypes = v.rule->gssapi_enctype ? v.rule->gssapi_enctype
			: ENC_INTEGRITY | ENC_CONFIDENTIALITY,
		.necgssapi = v.rule->necgssapi,
	};
	const struct method_list *cm = v.rule->clientmethods.n
		? &v.rule->clientmethods : &s->conf->clientmethods;
	if (method_list_has(cm, METHOD_NONE))
		return;
	/* clientmethod pam.address: PAM decides on the address alone,
	 * before a byte of SOCKS is read */
	struct pam_request rq = { s->auth.pam_service, PAM_ADDRESS_USER, NULL,
				  s->client_ip, false };
	struct pam_result res;
	if (auth_pam(&rq, &res)) {
		char why[300];
		snprintf(why, sizeof(why), "clientmethod pam.address service %s: "
			 "%s", s->auth.pam_service, res.reason);
		refuse(s, v.rule, 1, why);
	}
	s->clientmethod = METHOD_PAM_ADDRESS;
}

static void negotiate_request(struct session *s)
{
	int64_t deadline = netio_deadline(CONF_TIMEOUT(s->conf, s->client_rule,
						       negotiate));

	if (negotiate(s->cc.fd, s->conf, s->client_rule, &s->auth, deadline,
		      &s->neg))
		refuse(s, s->client_rule, s->neg.method != METHOD_NONE,
		       s->neg.reason);
	/* the log names who authenticated: the principal for GSSAPI */
	const char *who = s->neg.principal[0] ? s->neg.principal : s->neg.user;
	if (who[0])
		log_escape(who, strlen(who), s->user, sizeof(s->user));
	if (s->neg.req.command != SOCKS_CMD_CONNECT) {
		negotiate_reply(s->cc.fd, s->neg.version, REP_CMD_UNSUPPORTED,
				NULL, deadline);
		char why[80];
		snprintf(why, sizeof(why), "command 0x%02x is not supported",
			 s->neg.req.command);
		refuse(s, s->client_rule, 0, why);
	}
}

static void drop_privileges(struct session *s)
{
	char err[200];

	/* With a PAM session a root parent stays behind to close it when
	 * the relay ends; the child goes on and drops everything. */
	if (auth_pam_session_fork(s->cc.fd)) {
		log_msg(LOGL_ERROR, "client=%s fork: %s", s->client,
			strerror(errno));
		exit(EXIT_REFUSED);
	}
	if (privdrop_permanently(&s->unpriv, err, sizeof(err))) {
		log_msg(LOGL_ERROR, "client=%s %s", s->client, err);
		exit(EXIT_PRIVDROP);
	}
}

static void log_relay_start(const struct session *s,
			    const struct connect_result *cr)
{
	char where[300], dest[ADDR_STRLEN], bound[ADDR_STRLEN];

	if (!(cr->verdict.rule->log & LOG_CONNECT))
		return;
	rule_where(s, cr->verdict.rule, where, sizeof(where));
	addr_format(&cr->dest, dest, sizeof(dest));
	addr_format(&cr->bound, bound, sizeof(bound));
	char userid[4 * SOCKS4_FIELD_MAX + 40] = "";
	if (s->neg.version == 4) {
		char esc[4 * SOCKS4_FIELD_MAX + 1];
		log_escape(s->neg.req.userid, s->neg.req.userid_len, esc,
			   sizeof(esc));
		snprintf(userid, sizeof(userid), " socks4_userid=\"%s\"", esc);
	}
	log_msg(LOGL_INFO, "pass client=%s local=%s version=%d method=%s user=%s "
		"rule=%s command=connect dest=%s%s%s bound=%s%s", s->client,
		s->local, s->neg.version, method_name(s->neg.method), s->user,
		where, dest,
		s->neg.req.atyp == SOCKS5_ATYP_NAME ? " name=" : "",
		s->neg.req.atyp == SOCKS5_ATYP_NAME ? s->neg.req.name : "", bound,
		userid);
}

static void log_relay_end(const struct session *s,
			  const struct connect_result *cr,
			  const struct relay_stats *st)
{
	char where[300], dest[ADDR_STRLEN];

	if (!(cr->verdict.rule->log & LOG_DISCONNECT))
		return;
	rule_where(s, cr->verdict.rule, where, sizeof(where));
	addr_format(&cr->dest, dest, sizeof(dest));
	log_msg(LOGL_INFO, "end client=%s method=%s user=%s rule=%s dest=%s "
		"bytes_from_client=%llu bytes_to_client=%llu duration_ms=%lld "
		"reason=\"%s\"", s->client, method_name(s->neg.method), s->user,
		where,
		dest, (unsigned long long)st->from_client,
		(unsigned long long)st->to_client,
		(long long)(netio_now_ms() - s->started), st->reason);
}

static int run_connect(struct session *s)
{
	struct facts f = { .client = &s->cc.peer, .local = &s->cc.local,
			   .client_port_known = true, .local_port_known = true,
			   .clientmethod = s->clientmethod, .method = s->neg.method,
			   /* GSSAPI: the local name, "" for a principal that
			      maps to none, which no user: rule matches */
			   .user = s->neg.method == METHOD_GSSAPI || s->neg.user[0]
				   ? s->neg.user : NULL,
			   .pam_service = s->auth.pam_service,
			   .version = s->neg.version, .command = CMD_CONNECT };
	struct connect_result cr;
	struct relay_stats st;
	int64_t deadline = netio_deadline(CONF_TIMEOUT(s->conf, s->client_rule,
						       negotiate));

	connect_destination(s->conf, &f, &s->neg.req, &s->cc, &cr);
	if (cr.fd < 0) {
		char dest[ADDR_STRLEN], why[640];
		addr_format(&cr.dest, dest, sizeof(dest));
		negotiate_reply(s->cc.fd, s->neg.version, cr.rep, NULL, deadline);
		snprintf(why, sizeof(why), "%s%s%s (dest=%s reply=%02x)",
			 cr.reason, s->neg.req.atyp == SOCKS5_ATYP_NAME ? " name=" : "",
			 s->neg.req.atyp == SOCKS5_ATYP_NAME ? s->neg.req.name : "",
			 dest, cr.rep);
		end_refused(s, cr.rep == REP_NOT_ALLOWED ? "block" : "fail",
			    cr.verdict.rule, !cr.verdict.rule, why);
	}
	if (negotiate_reply(s->cc.fd, s->neg.version, REP_SUCCEEDED, &cr.bound,
			    deadline))
		refuse(s, cr.verdict.rule, 0, "client went away before the reply");
	log_relay_start(s, &cr);
	if (s->neg.gss && gss_level(s->neg.gss) >= GSS_LEVEL_INTEGRITY) {
		/* protected data cannot be spliced: wrap and unwrap */
		struct gss_relay_stats gs;
		gss_relay_run(s->neg.gss, s->cc.fd, cr.fd, s->neg.early,
			      s->neg.nearly,
			      CONF_TIMEOUT(s->conf, cr.verdict.rule, io_tcp), &gs);
		st.from_client = gs.from_client;
		st.to_client = gs.to_client;
		st.reason = gs.reason;
	} else {
		relay_run(s->cc.fd, cr.fd, &s->pipes,
			  CONF_TIMEOUT(s->conf, cr.verdict.rule, io_tcp),
			  CONF_TIMEOUT(s->conf, cr.verdict.rule, tcp_fin_wait),
			  &st);
	}
	log_relay_end(s, &cr, &st);
	return EXIT_RELAYED;
}

int main(int argc, char **argv)
{
	struct session s = { 0 };
	char err[200];
	int debug = 0;

	parse_args(&s, argc, argv, &debug);
	log_init_early();
	no_core_dumps();
	s.started = netio_now_ms();
	take_connection(&s);                       /* 1. the socket */
	load_rules(&s);                            /* 2. the rules */
	log_set_debug(debug);
	if (privdrop_lookup(s.conf->user_unprivileged, &s.unpriv, err,
			    sizeof(err))) {
		log_msg(LOGL_ERROR, "%s", err);
		exit(EXIT_PRIVDROP);
	}
	if (relay_pipes_open(&s.pipes)) {
		log_msg(LOGL_ERROR, "pipe: %s", strerror(errno));
		exit(EXIT_REFUSED);
	}
	fcntl(s.cc.fd, F_SETFL, fcntl(s.cc.fd, F_GETFL) | O_NONBLOCK);
	check_client_rules(&s);                    /* 3. client rules */
	negotiate_request(&s);                     /* 4-6. negotiate, request */
	drop_privileges(&s);                       /* 7. for good */
	int rc = run_connect(&s);                  /* 8-11. resolve, rules,
						      connect, relay, log */
	conf_free(s.conf);
	return rc;
}
