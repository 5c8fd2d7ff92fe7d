/* Parsing of sockd-check's SPEC strings. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "spec.h"

static int parse_port(const char *v, uint16_t *out)
{
	char *end;
	unsigned long n = strtoul(v, &end, 10);

	if (!*v || *end || n > 65535)
		return -1;
	*out = (uint16_t)n;
	return 0;
}

static int parse_addr(const char *v, struct sockaddr_storage *ss)
{
	if (addr_parse_literal(v, ss))
		return -1;
	return 0;
}

static const struct { const char *name; unsigned bit; } commands[] = {
	{ "connect", CMD_CONNECT }, { "bind", CMD_BIND },
	{ "udpassociate", CMD_UDPASSOCIATE }, { "bindreply", CMD_BINDREPLY },
	{ "udpreply", CMD_UDPREPLY } };

static int split_list(char *v, char sep, char **out, size_t max, size_t *n)
{
	*n = 0;
	for (char *tok = strtok(v, (char[]){ sep, 0 }); tok;
	     tok = strtok(NULL, (char[]){ sep, 0 })) {
		if (*n == max)
			return -1;
		out[(*n)++] = tok;
	}
	return 0;
}

static int set_key(struct check_spec *s, const char *k, char *v, char *err,
		   size_t errlen)
{
	if (!strcmp(k, "from")) {
		if (parse_addr(v, &s->from))
			goto bad_addr;
		s->have_from = true;
	} else if (!strcmp(k, "fromport")) {
		uint16_t p;
		if (parse_port(v, &p))
			goto bad_port;
		s->have_fromport = true;
		addr_set_port(&s->from, p);
	} else if (!strcmp(k, "laddr")) {
		if (parse_addr(v, &s->laddr))
			goto bad_addr;
		s->have_laddr = true;
	} else if (!strcmp(k, "lport")) {
		uint16_t p;
		if (parse_port(v, &p))
			goto bad_port;
		s->have_lport = true;
		addr_set_port(&s->laddr, p);
	} else if (!strcmp(k, "to")) {
		s->have_to = true;
		if (addr_parse_literal(v, &s->to_addr) == 0) {
			s->to_is_name = false;
		} else if (names_canonical(v, strlen(v), s->to_name,
					   sizeof(s->to_name)) == 0) {
			s->to_is_name = true;
		} else {
			snprintf(err, errlen, "to=%s: not an address or a valid "
				 "host name (the session refuses such names)", v);
			return -1;
		}
	} else if (!strcmp(k, "port")) {
		if (parse_port(v, &s->port))
			goto bad_port;
		s->have_port = true;
	} else if (!strcmp(k, "addrs")) {
		char *parts[RESOLVE_MAX];
		size_t n;
		if (split_list(v, '+', parts, RESOLVE_MAX, &n) || n == 0) {
			snprintf(err, errlen, "addrs=: 1 to %d addresses joined "
				 "by '+'", RESOLVE_MAX);
			return -1;
		}
		for (size_t i = 0; i < n; i++) {
			if (parse_addr(parts[i], &s->addrs[i])) {
				v = parts[i];
				goto bad_addr;
			}
		}
		s->naddrs = n;
		s->have_addrs = true;
	} else if (!strcmp(k, "command")) {
		size_t i;
		for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
			if (!strcmp(v, commands[i].name))
				break;
		if (i == sizeof(commands) / sizeof(commands[0])) {
			snprintf(err, errlen, "command=%s: one of connect, bind, "
				 "udpassociate, bindreply, udpreply", v);
			return -1;
		}
		s->command = commands[i].bit;
	} else if (!strcmp(k, "method")) {
		if (method_lookup(v, &s->method)) {
			snprintf(err, errlen, "method=%s: one of none, username, "
				 "pam.address, pam.username, gssapi", v);
			return -1;
		}
	} else if (!strcmp(k, "user")) {
		if (!*v || strlen(v) >= sizeof(s->user)) {
			snprintf(err, errlen, "user=: a name of 1 to 255 bytes");
			return -1;
		}
		strcpy(s->user, v);
		s->have_user = true;
	} else if (!strcmp(k, "group")) {
		char *parts[SPEC_MAX_GROUPS];
		size_t n;
		if (split_list(v, '+', parts, SPEC_MAX_GROUPS - s->ngroups, &n)) {
			snprintf(err, errlen, "group=: at most %d groups",
				 SPEC_MAX_GROUPS);
			return -1;
		}
		for (size_t i = 0; i < n; i++) {
			snprintf(s->groups_buf[s->ngroups], NAME_MAX_LEN + 1, "%s",
				 parts[i]);
			s->groups[s->ngroups] = s->groups_buf[s->ngroups];
			s->ngroups++;
		}
	} else if (!strcmp(k, "version")) {
		if (strcmp(v, "4") && strcmp(v, "5")) {
			snprintf(err, errlen, "version=%s: 4 or 5", v);
			return -1;
		}
		s->version = v[0] - '0';
	} else if (!strcmp(k, "protocol")) {
		if (!strcmp(v, "tcp"))
			s->protocol = PROTO_TCP;
		else if (!strcmp(v, "udp"))
			s->protocol = PROTO_UDP;
		else {
			snprintf(err, errlen, "protocol=%s: tcp or udp", v);
			return -1;
		}
	} else {
		snprintf(err, errlen, "unknown key \"%s\" (from, fromport, laddr, "
			 "lport, to, port, addrs, command, method, user, group, "
			 "version, protocol)", k);
		return -1;
	}
	return 0;
bad_addr:
	snprintf(err, errlen, "%s=%s: not an IPv4 or IPv6 address", k, v);
	return -1;
bad_port:
	snprintf(err, errlen, "%s=%s: not a port (0 - 65535)", k, v);
	return -1;
}

int spec_parse(const char *text, struct check_spec *s, char *err, size_t errlen)
{
	char buf[4096];
	char *save = NULL;

	memset(s, 0, sizeof(*s));
	s->command = CMD_CONNECT;
	s->method = METHOD_NONE;
	s->version = 5;
	if (strlen(text) >= sizeof(buf)) {
		snprintf(err, errlen, "SPEC is too long");
		return -1;
	}
	strcpy(buf, text);
	/* fromport may come before from: keep the port across the address */
	uint16_t fromport = 0, lport = 0;
	for (char *kv = strtok_r(buf, ",", &save); kv;
	     kv = strtok_r(NULL, ",", &save)) {
		while (*kv == ' ')
			kv++;
		char *eq = strchr(kv, '=');
		if (!eq) {
			snprintf(err, errlen, "\"%s\": expected key=value", kv);
			return -1;
		}
		*eq = '\0';
		if (set_key(s, kv, eq + 1, err, errlen))
			return -1;
		if (!strcmp(kv, "fromport"))
			fromport = addr_port(&s->from);
		if (!strcmp(kv, "lport"))
			lport = addr_port(&s->laddr);
	}
	if (!s->have_from) {
		snprintf(err, errlen, "from= (the client address) is required");
		return -1;
	}
	if (s->have_fromport)
		addr_set_port(&s->from, fromport);
	if (s->have_lport) {
		if (!s->have_laddr) {
			snprintf(err, errlen, "lport= needs laddr=");
			return -1;
		}
		addr_set_port(&s->laddr, lport);
	}
	if (s->have_addrs && !(s->have_to && s->to_is_name)) {
		snprintf(err, errlen, "addrs= is what to=NAME resolves to: give "
			 "to= a name");
		return -1;
	}
	unsigned proto = s->command & (CMD_UDPASSOCIATE | CMD_UDPREPLY)
			 ? PROTO_UDP : PROTO_TCP;
	if (s->protocol && s->protocol != proto) {
		snprintf(err, errlen, "protocol= contradicts command=");
		return -1;
	}
	if (s->version == 4 && s->method != METHOD_NONE) {
		snprintf(err, errlen, "version=4 has no authentication: method "
			 "must be none");
		return -1;
	}
	return 0;
}
