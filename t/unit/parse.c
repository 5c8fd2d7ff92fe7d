/* Unit tests: the sockd.conf grammar, every form and its errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conf.h"
#include "tap.h"

#define HEAD "socksmethod: none username pam.username pam.address gssapi\n" \
	     "clientmethod: none pam.address\n"

/* Loads TEXT; returns the conf or NULL; the first error (or warning when
 * WANT_WARNING) is copied to MSG as "line:col: msg". */
static struct conf *load(const char *text, char *msg, size_t len, bool warning)
{
	struct conf_diags d;
	struct conf *c = conf_parse_buffer("t.conf", text, strlen(text), &d);

	msg[0] = '\0';
	for (size_t i = 0; i < d.n; i++) {
		if ((d.v[i].level == DIAG_ERROR) != !warning)
			continue;
		snprintf(msg, len, "%u:%u: %s", d.v[i].line, d.v[i].col, d.v[i].msg);
		break;
	}
	conf_diags_free(&d);
	return c;
}

static void accepts(const char *name, const char *text)
{
	char msg[300];
	struct conf *c = load(text, msg, sizeof(msg), false);

	if (!tap_ok(c != NULL, "accepts: %s", name))
		tap_diag("%s", msg);
	conf_free(c);
}

static void refuses(const char *name, const char *text, const char *where,
		    const char *what)
{
	char msg[300];
	struct conf *c = load(text, msg, sizeof(msg), false);

	if (!tap_ok(!c && !strncmp(msg, where, strlen(where)) && strstr(msg, what),
		    "refuses: %s", name))
		tap_diag("got \"%s\", want %s ... %s", msg, where, what);
	conf_free(c);
}

static void warns(const char *name, const char *text, const char *what)
{
	char msg[300];
	struct conf *c = load(text, msg, sizeof(msg), true);

	if (!tap_ok(c && strstr(msg, what), "warns: %s", name))
		tap_diag("got \"%s\"", msg);
	conf_free(c);
}

static void grammar_forms(void)
{
	accepts("minimal", HEAD "client pass { from: 0/0 to: 0/0 }\n");
	accepts("comments and blank lines",
		"# top\n\n" HEAD "client pass { # here\n from: 0/0 to: 0/0 # x\n}\n");
	accepts("line continuation", HEAD "client pass { from: 10.0.0.0/8 \\\n"
		" to: 0/0 }\n");
	accepts("keyword with a blank before the colon",
		HEAD "client pass { from : 0/0 to : 0/0 }\n");
	accepts("keyword glued to its value",
		HEAD "client pass { from:10.0.0.0/8 to:0/0 }\n");
	accepts("IPv6 prefixes", HEAD "socks pass { from: ::1/128 to: 2001:db8::/32 }\n"
		"socks pass { from: fe80::/10 to: ::/0 }\n");
	accepts("all port forms",
		HEAD "socks pass { from: 0/0 to: 0/0 port = 80 }\n"
		"socks pass { from: 0/0 to: 0/0 port eq 80 }\n"
		"socks pass { from: 0/0 to: 0/0 port != 25 }\n"
		"socks pass { from: 0/0 to: 0/0 port ne 25 }\n"
		"socks pass { from: 0/0 to: 0/0 port < 1024 }\n"
		"socks pass { from: 0/0 to: 0/0 port lt 1024 }\n"
		"socks pass { from: 0/0 to: 0/0 port > 1023 }\n"
		"socks pass { from: 0/0 to: 0/0 port gt 1023 }\n"
		"socks pass { from: 0/0 to: 0/0 port <= 1023 }\n"
		"socks pass { from: 0/0 to: 0/0 port le 1023 }\n"
		"socks pass { from: 0/0 to: 0/0 port >= 1024 }\n"
		"socks pass { from: 0/0 to: 0/0 port ge 1024 }\n"
		"socks pass { from: 0/0 to: 0/0 port 1024-65535 }\n"
		"socks pass { from: 0/0 to: 0/0 port 1024 - 65535 }\n"
		"socks pass { from: 0/0 to: 0/0 port=0x50 }\n"
		"socks pass { from: 0/0 port 1-65535 to: 0/0 }\n");
	accepts("hostnames, domains, interfaces",
		HEAD "socks pass { from: 0/0 to: www.example.org }\n"
		"socks pass { from: 0/0 to: .example.com port = 443 }\n"
		"socks block { from: 0/0 to: lo }\n");
	accepts("'}' right after list values",
		HEAD "socks pass { from: 0/0 to: 0/0 command: connect bind }\n"
		"socks pass { from: 0/0 to: 0/0 log: connect error }\n"
		"socks pass { from: 0/0 to: 0/0 socksmethod: username user: a b }\n");
	accepts("two list keywords on one line",
		HEAD "socks pass { from: 0/0 to: 0/0 command: connect log: error }\n");
	accepts("every rule keyword",
		HEAD "client pass { from: 0/0 to: 0/0 clientmethod: pam.address\n"
		" socksmethod: username log: connect pam.servicename: x\n"
		" gssapi.keytab: FILE:/k gssapi.servicename: rcmd\n"
		" gssapi.enctype: integrity confidentiality\n"
		" clientcompatibility: necgssapi timeout.negotiate: 5\n"
		" pam.session: yes }\n"
		"socks pass { from: 0/0 to: 0/0 command: connect bind udpassociate"
		" bindreply udpreply\n protocol: tcp udp\n"
		" proxyprotocol: socks_v4 socks_v5\n socksmethod: pam.username\n"
		" clientmethod: none\n user: alice\n group: staff\n"
		" log: connect disconnect data error iooperation tcpinfo\n"
		" pamservicename: sockd-web\n timeout.connect: 5 timeout.io: 60\n"
		" timeout.io.tcp: 60 timeout.io.udp: 60 timeout.tcp_fin_wait: 5\n"
		" udp.portrange: 40000-40100 }\n");
	accepts("every global keyword",
		"logoutput: stderr syslog/local0 /var/log/sockd.log\n"
		"errorlog: syslog\ndebug: 1\nuser.privileged: root\n"
		"user.unprivileged: nobody\nuser.notprivileged: nobody\n"
		"clientmethod: none\nsocksmethod: none\nmethod: none\n"
		"timeout.negotiate: 30\ntimeout.connect: 30\ntimeout.io: 0\n"
		"timeout.io.tcp: 0\ntimeout.io.udp: 86400\n"
		"timeout.tcp_fin_wait: 0\nexternal: 192.0.2.1\nexternal: eth9\n"
		"external: 2001:db8::1\nexternal.rotation: same-same\n"
		"pam.session: yes\n"
		"client pass { from: 0/0 to: 0/0 }\n");
	accepts("settings after the first rule",
		"client pass { from: 0/0 to: 0/0 }\nsocksmethod: none\n");
	accepts("CRLF line ends", HEAD "client pass {\r\n from: 0/0 to: 0/0\r\n}\r\n");
}

static void grammar_errors(void)
{
	refuses("address without prefix", HEAD "client pass { from: 10.0.0.1 to: 0/0 }\n",
		"3:21:", "needs a prefix length");
	refuses("prefix out of range", HEAD "client pass { from: 10.0.0.0/33 to: 0/0 }\n",
		"3:21:", "legal range is 0 - 32");
	refuses("port out of range", HEAD "socks pass { from: 0/0 to: 0/0 port = 65536 }\n",
		"3:", "not a port");
	refuses("empty port range", HEAD "socks pass { from: 0/0 to: 0/0 port 9-1 }\n",
		"3:", "is empty");
	refuses("unknown keyword", HEAD "client pass { from: 0/0 to: 0/0 frobnicate: 1 }\n",
		"3:", "unknown keyword \"frobnicate:\"");
	refuses("unknown global keyword", "frob: 1\n", "1:1:", "unknown keyword");
	refuses("unterminated block", HEAD "client pass { from: 0/0 to: 0/0\n",
		"3:1:", "not closed");
	refuses("nested block", HEAD "client pass { from: 0/0 { to: 0/0 }\n",
		"3:", "do not nest");
	refuses("command in a client rule",
		HEAD "client pass { from: 0/0 to: 0/0 command: connect }\n",
		"3:", "not valid in a client rule");
	refuses("clientcompatibility in a socks rule",
		HEAD "socks pass { from: 0/0 to: 0/0 clientcompatibility: necgssapi }\n",
		"3:", "not valid in a socks rule");
	refuses("bad command value",
		HEAD "socks pass { from: 0/0 to: 0/0 command: fly }\n", "3:",
		"not a valid value");
	refuses("session.max is not implemented",
		HEAD "client pass { from: 0/0 to: 0/0 session.max: 3 }\n", "3:",
		"\"session.max:\" is not implemented");
	refuses("bandwidth is not implemented",
		HEAD "socks pass { from: 0/0 to: 0/0 bandwidth: 100 }\n", "3:",
		"not implemented");
	refuses("redirect is not implemented",
		HEAD "socks pass { from: 0/0 to: 0/0 redirect from: 0/0 }\n", "3:",
		"not implemented");
	refuses("libwrap is not implemented",
		HEAD "socks pass { from: 0/0 to: 0/0 libwrap: spawn x }\n", "3:",
		"not implemented");
	refuses("route is not implemented",
		HEAD "route { from: 0/0 to: 0/0 via: 10.0.0.1 port = 1080 }\n", "3:1:",
		"not implemented");
	refuses("monitor is not implemented", HEAD "monitor { from: 0/0 to: 0/0 }\n",
		"3:1:", "not implemented");
	refuses("hostid is not implemented", HEAD "hostid pass { from: 0/0 to: 0/0 }\n",
		"3:1:", "not implemented");
	refuses("method rfc931 is not implemented", "socksmethod: rfc931\n",
		"1:14:", "not implemented");
	refuses("pam.username is no clientmethod", "clientmethod: pam.username\n",
		"1:15:", "not a valid method for clientmethod");
	refuses("rule method outside the global list",
		"socksmethod: none\nsocks pass { from: 0/0 to: 0/0 socksmethod: username }\n",
		"2:", "not in the global socksmethod list");
	refuses("user: with socksmethod none",
		HEAD "socks pass { from: 0/0 to: 0/0 socksmethod: none user: a }\n",
		"3:", "cannot be checked");
	refuses("NUL byte", HEAD "client pass { from: 0/0\0 to: 0/0 }\n", "3:",
		"");
	refuses("IPv4-mapped IPv6", HEAD "client pass { from: ::ffff:10.0.0.0/104 to: 0/0 }\n",
		"3:", "IPv4-mapped");
	refuses("bad verdict", HEAD "client allow { from: 0/0 to: 0/0 }\n", "3:8:",
		"expected \"pass\" or \"block\"");
	refuses("logoutput relative path", "logoutput: sockd.log\n", "1:12:",
		"absolute path");
	refuses("pam.session in a socks rule",
		HEAD "socks pass { from: 0/0 to: 0/0 pam.session: yes }\n", "3:",
		"not valid in a socks rule");
	refuses("pam.session not yes/no", "pam.session: maybe\n", "1:14:",
		"yes or no");
	refuses("timeout not a number", "timeout.io: soon\n", "1:13:",
		"not a number");
	refuses("host name with a bad byte",
		HEAD "socks pass { from: 0/0 to: exa$mple.com }\n", "3:", "not a valid");
}

static void warnings(void)
{
	warns("no socksmethod", "client pass { from: 0/0 to: 0/0 }\n",
	      "every SOCKS request will be blocked");
	warns("internal is decided by the socket unit",
	      HEAD "internal: 0.0.0.0 port = 1080\nclient pass { from: 0/0 to: 0/0 }\n",
	      "socket unit");
	warns("child.maxrequests", HEAD "child.maxrequests: 100\n"
	      "client pass { from: 0/0 to: 0/0 }\n", "ignored");
	warns("bare pass is deprecated", HEAD "client pass { from: 0/0 to: 0/0 }\n"
	      "pass { from: 0/0 to: 0/0 }\n", "deprecated");
	warns("host bits", HEAD "client pass { from: 10.1.0.0/8 to: 0/0 }\n",
	      "host bits");
	warns("no client rules", HEAD, "no client rules");
	warns("log: data is not implemented",
	      HEAD "client pass { from: 0/0 to: 0/0 log: connect data }\n",
	      "not implemented and are ignored");
}

static void semantics(void)
{
	char msg[300];
	struct conf *c = load(HEAD "socks pass { from: 0/0 to: 0/0 }\n"
			      "client pass { from: 0/0 to: 0/0 }\n"
			      "socks block { from: 0/0 to: 0/0 }\n"
			      "client block { from: 0/0 to: 0/0 }\n",
			      msg, sizeof(msg), false);
	tap_ok(c && c->nclient == 2 && c->nsocks == 2 &&
	       conf_client_rules(c)[1].number == 2 &&
	       conf_client_rules(c)[1].line == 6 &&
	       conf_socks_rules(c)[1].line == 5 && !conf_socks_rules(c)[1].pass,
	       "rules split into sets, numbered and lined in file order");
	tap_ok(c && c->timeout.negotiate == 30 && c->timeout.connect == 30 &&
	       c->timeout.io_tcp == 0 && c->timeout.io_udp == 86400,
	       "Dante's default timeouts");
	conf_free(c);
	c = load(HEAD "timeout.io: 7\nsocks pass { from: 0/0 to: WWW.Example.ORG. }\n"
		 "client pass { from: 0/0 to: 0/0 timeout.negotiate: 4 }\n",
		 msg, sizeof(msg), false);
	tap_ok(c && c->timeout.io_tcp == 7 && c->timeout.io_udp == 7,
	       "timeout.io sets tcp and udp");
	tap_ok(c && !strcmp(conf_socks_rules(c)[0].to.name, "www.example.org"),
	       "host names stored in canonical form");
	tap_ok(c && CONF_TIMEOUT(c, &conf_client_rules(c)[0], negotiate) == 4 &&
	       CONF_TIMEOUT(c, &conf_client_rules(c)[0], connect) == 30,
	       "per-rule timeouts override, others inherit");
	conf_free(c);
}

static void hostile(void)
{
	size_t n = 100000;
	char *text = malloc(n + 200);
	char msg[300];

	strcpy(text, HEAD "client pass ");
	memset(text + strlen(text), '{', n);
	text[strlen(HEAD "client pass ") + n] = '\0';
	clock_t t0 = clock();
	struct conf *c = load(text, msg, sizeof(msg), false);
	tap_ok(!c && msg[0], "100 000 '{': refused (%s)", msg);
	free(text);

	n = 10 << 20;
	text = malloc(n + 200);
	strcpy(text, HEAD "client pass { from: 0/0 to: 0/0 }\nsocks pass { log: ");
	size_t at = strlen(text);
	for (size_t i = at; i < at + n; i++)
		text[i] = (i % 8 == 0) ? ' ' : 'x';
	strcpy(text + at + n, " }\n");
	c = load(text, msg, sizeof(msg), false);
	tap_ok(!c && strstr(msg, "4:"), "10 MB line: refused at its line (%.60s)", msg);
	free(text);
	double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
	tap_ok(secs < 2.0, "hostile inputs parsed in %.3f s", secs);
}

static void files(void)
{
	struct conf_diags d;
	struct conf *c;

	c = conf_load("/", &d);
	tap_ok(!c && d.n && strstr(d.v[0].msg, "not a regular file"),
	       "a directory is refused");
	conf_diags_free(&d);
	c = conf_load("/dev/zero", &d);
	tap_ok(!c && d.n && strstr(d.v[0].msg, "not a regular file"),
	       "/dev/zero is refused");
	conf_diags_free(&d);
	c = conf_load("/nonexistent/sockd.conf", &d);
	tap_ok(!c && d.n && strstr(d.v[0].msg, "cannot open"),
	       "a missing file is refused");
	conf_diags_free(&d);
}

int main(void)
{
	grammar_forms();
	grammar_errors();
	warnings();
	semantics();
	hostile();
	files();
	return tap_done();
}
