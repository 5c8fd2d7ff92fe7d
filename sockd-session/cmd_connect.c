/* CONNECT: resolve, decide, connect, reply, relay. */
#include <stdio.h>

#include "connect.h"
#include "session.h"

int cmd_connect(struct session *s)
{
	struct facts f;
	struct connect_result cr;
	int64_t deadline = session_reply_deadline(s);

	session_facts(s, CMD_CONNECT, &f);
	connect_destination(s->conf, &f, &s->neg.req, &s->cc, &cr);
	if (cr.fd < 0) {
		char dest[ADDR_STRLEN], why[640];
		addr_format(&cr.dest, dest, sizeof(dest));
		negotiate_reply(s->cc.fd, s->neg.version, cr.rep, NULL, deadline);
		snprintf(why, sizeof(why), "%s%s%s (dest=%s reply=%02x)",
			 cr.reason, s->neg.req.atyp == SOCKS5_ATYP_NAME ? " name=" : "",
			 s->neg.req.atyp == SOCKS5_ATYP_NAME ? s->neg.req.name : "",
			 dest, cr.rep);
		session_end(s, cr.rep == REP_NOT_ALLOWED ? "block" : "fail",
			    cr.verdict.rule, !cr.verdict.rule, why);
	}
	if (negotiate_reply(s->cc.fd, s->neg.version, REP_SUCCEEDED, &cr.bound,
			    deadline))
		session_end(s, "fail", cr.verdict.rule, 0,
			    "client went away before the reply");
	session_relay(s, cr.verdict.rule, cr.fd, "connect", &cr.dest, &cr.bound);
	return EXIT_RELAYED;
}
