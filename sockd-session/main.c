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
#include "conf_image.h"
#include "conf_lazy.h"
#include "connect.h"
#include "log.h"
#include "negotiate.h"
#include "netio.h"
#include "privdrop.h"
#include "relay.h"
#include "rules_match.h"
#include "sandbox.h"
#include "session.h"

#define DEFAULT_CONF SOCKD_SYSCONFDIR "/sockd.conf"

static void usage(FILE *out)
{
	fprintf(out, "usage: sockd-session [-f file] [-d] [-v]\n"
		"  -f file  rules file (default %s)\n"
		"  -d       debug logging\n"
		"  -v       print the version and exit (-vv: and the build)\n",
		DEFAULT_CONF);
}

/* -v: the version; -vv: also what is built in and the defaults. */
static void print_version(int level)
{
	printf("sockd-session %s\n", SOCKD_VERSION);
	if (level < 2)
		return;
	printf("build: pam=dlopen(libpam.so.0) crypt=dlopen(libcrypt.so.1) "
	       "gssapi=dlopen(libgssapi_krb5.so.2) "
	       "libsystemd=no(LISTEN_FDS read directly) seccomp=%s%s\n",
	       sandbox_available() ? "bpf" : "off",
#ifdef __SANITIZE_ADDRESS__
	       " sanitizers=address,undefined"
#else
	       ""
#endif
	       );
	printf("defaults: conf=%s pam.servicename=sockd gssapi.keytab=%s "
	       "gssapi.servicename=%s user.unprivileged=nobody\n",
	       DEFAULT_CONF, GSS_DEFAULT_KEYTAB, GSS_DEFAULT_SERVICE);
}

static void parse_args(struct session *s, int argc, char **argv, int *debug)
{
	int opt, version = 0;
	int *version_p = &version;

	s->conf_file = DEFAULT_CONF;
	while ((opt = getopt(argc, argv, "f:dvh")) != -1) {
		switch (opt) {
		case 'f': s->conf_file = optarg; break;
		case 'd': (*debug)++; break;
		case 'v':
			(*version_p)++;
			break;
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
	if (version) {
		print_version(version);
		exit(0);
	}
}

/* Secrets (passwords, keys) pass through this process: no core files. */
static void no_core_dumps(void)
{
	struct rlimit rl = { 0, 0 };

	setrlimit(RLIMIT_CORE, &rl);
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

static __attribute__((noinline)) void take_connection(struct session *s)
{
	char err[200];

	if (activation_take(&s->cc, err, sizeof(err))) {
		log_msg(LOGL_ERROR, "activation: %s", err);
		exit(EXIT_ACTIVATION);
	}
	/* a dual-stack listener gives IPv4 clients as ::ffff:a.b.c.d: rules
	 * and logs both see the plain IPv4 address */
	addr_unmap(&s->cc.peer);
	addr_unmap(&s->cc.local);
	addr_format(&s->cc.peer, s->client, sizeof(s->client));
	addr_format(&s->cc.local, s->local, sizeof(s->local));
	addr_ntop(&s->cc.peer, s->client_ip, sizeof(s->client_ip));
	strcpy(s->user, "-");
}

/* The compiled image could not answer (damage, or an interface that
 * appeared): the decision was taken from the whole rules instead. */
static void report_image_problem(const char *problem, void *arg)
{
	const struct session *s = arg;

	log_msg(LOGL_ERROR, "client=%s rules: %s", s->client, problem);
}

/* DEBUG: -d given on the command line (adds to the file's debug:). */
static __attribute__((noinline)) void load_rules(struct session *s, int debug)
{
	struct conf_diags d;
	char line[400], why[300];
	bool image;

	s->conf = conf_open(s->conf_file, &d, &image, why, sizeof(why));
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
	log_set_debug(debug);
	/* first thing on the heap (a compiled image's rules keep off it), so
	 * that its data stays on the heap's first page */
	if (log_needs_time_zone())
		log_load_time_zone();
	conf_lazy_on_problem(s->conf, report_image_problem, s);
	if (image)
		log_msg(LOGL_DEBUG, "rules: %s.compiled", s->conf_file);
	else if (why[0])  /* only speed is lost: the text says the same */
		log_msg(LOGL_DEBUG, "rules: %s.compiled not used: %s",
			s->conf_file, why);
}

/* The unprivileged user and the relay's pipes, before anything is read
 * from the client.  This and the other steps run in frames of their own
 * (noinline): main's frame, under the relay for the session's life, keeps
 * none of their buffers, and the relay's stack reaches a page less deep. */
static __attribute__((noinline)) void prepare_relay(struct session *s)
{
	char err[200];

	if (privdrop_lookup(s->conf->user_unprivileged, &s->unpriv, err,
			    sizeof(err))) {
		log_msg(LOGL_ERROR, "%s", err);
		exit(EXIT_PRIVDROP);
	}
	if (relay_pipes_open(&s->pipes)) {
		log_msg(LOGL_ERROR, "pipe: %s", strerror(errno));
		exit(EXIT_REFUSED);
	}
	fcntl(s->cc.fd, F_SETFL, fcntl(s->cc.fd, F_GETFL) | O_NONBLOCK);
}

/* Client rules decide before a single SOCKS byte is read. */
static __attribute__((noinline)) void check_client_rules(struct session *s)
{
	struct facts f = { .client = &s->cc.peer, .local = &s->cc.local,
			   .client_port_known = true, .local_port_known = true,
			   .version = 5 };
	struct verdict v;

	if (rules_decide_client(s->conf, &f, &v) != MATCH_YES || !v.pass)
		session_end(s, "block", v.rule, 0, v.rule ? "blocked by client-rule"
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
		session_end(s, "block", v.rule, 1, why);
	}
	s->clientmethod = METHOD_PAM_ADDRESS;
}

static __attribute__((noinline)) void negotiate_request(struct session *s)
{
	int64_t deadline = netio_deadline(CONF_TIMEOUT(s->conf, s->client_rule,
						       negotiate));

	int rc = negotiate(s->cc.fd, s->conf, s->client_rule, &s->auth, deadline,
			   &s->neg);
	/* With a PAM session open, a root parent stays behind from here on
	 * to close it whenever and however the session ends; the child goes
	 * on and will drop everything. */
	if (auth_pam_session_fork(s->cc.fd)) {
		log_msg(LOGL_ERROR, "client=%s fork: %s", s->client,
			strerror(errno));
		exit(EXIT_REFUSED);
	}
	/* the log names who authenticated: the principal for GSSAPI */
	const char *who = s->neg.principal[0] ? s->neg.principal : s->neg.user;
	if (who[0])
		log_escape(who, strlen(who), s->user, sizeof(s->user));
	if (rc)
		session_end(s, "block", s->client_rule, s->neg.method != METHOD_NONE,
			    s->neg.reason);
	uint8_t cmd = s->neg.req.command;
	if (cmd != SOCKS_CMD_CONNECT && cmd != SOCKS_CMD_BIND &&
	    (cmd != SOCKS_CMD_UDP || s->neg.version == 4)) {
		negotiate_reply(s->cc.fd, s->neg.version, REP_CMD_UNSUPPORTED,
				NULL, deadline);
		char why[80];
		snprintf(why, sizeof(why), "command 0x%02x is not supported",
			 s->neg.req.command);
		session_end(s, "block", s->client_rule, 0, why);
	}
}

static int cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

/* PAM, NSS and krb5 may have left descriptors open (shadow, an audit
 * socket, the keytab): keep only the client, the relay pipes and the log
 * files.  syslog is reconnected after. */
static void close_unneeded_fds(const struct session *s)
{
	/* the client, four pipe ends, every log file, the journal, the
	 * rules image: room for all (a log file left out would be closed and
	 * its lines lost) */
	int keep[5 + 2 * LOG_MAX_TARGETS + 2];
	size_t n = 0;

	keep[n++] = s->cc.fd;
	keep[n++] = s->pipes.up[0];
	keep[n++] = s->pipes.up[1];
	keep[n++] = s->pipes.down[0];
	keep[n++] = s->pipes.down[1];
	n += log_fds(keep + n, 2 * LOG_MAX_TARGETS);
	if (log_journal_fd() >= 0)
		keep[n++] = log_journal_fd();
	if (conf_lazy_fd(s->conf) >= 0)  /* the rules image, read as needed */
		keep[n++] = conf_lazy_fd(s->conf);
	qsort(keep, n, sizeof(keep[0]), cmp_int);
	unsigned from = 3;
	for (size_t i = 0; i < n; i++) {
		if (keep[i] < 3)
			continue;
		if ((unsigned)keep[i] > from)
			close_range(from, (unsigned)keep[i] - 1, 0);
		from = (unsigned)keep[i] + 1;
	}
	close_range(from, ~0u, 0);
	log_reopen_syslog();
}

static __attribute__((noinline)) void drop_privileges(struct session *s)
{
	char err[200];

	close_unneeded_fds(s);
	if (privdrop_permanently(&s->unpriv, err, sizeof(err))) {
		log_msg(LOGL_ERROR, "client=%s %s", s->client, err);
		exit(EXIT_PRIVDROP);
	}
}

/* 8-11: resolve, decide on the concrete address, carry out, relay, log */
static int run_command(struct session *s)
{
	switch (s->neg.req.command) {
	case SOCKS_CMD_CONNECT: return cmd_connect(s);
	case SOCKS_CMD_BIND: return cmd_bind(s);
	default: return cmd_udp_associate(s);
	}
}

int main(int argc, char **argv)
{
	/* static, not on main's stack: 3 KiB less between the top of the
	 * stack and the relay's frames, a page less per idle session on
	 * average (.bss has room for it on the page it already dirties) */
	static struct session s;
	int debug = 0;

	parse_args(&s, argc, argv, &debug);
	log_init_early();
	no_core_dumps();
	s.started = netio_now_ms();
	take_connection(&s);                       /* 1. the socket */
	load_rules(&s, debug);                     /* 2. the rules */
	prepare_relay(&s);
	check_client_rules(&s);                    /* 3. client rules */
	negotiate_request(&s);                     /* 4-6. negotiate, request */
	drop_privileges(&s);                       /* 7. for good */
	int rc = run_command(&s);                  /* 8-11. resolve, rules,
						      connect, relay, log */
	conf_free(s.conf);
	return rc;
}
