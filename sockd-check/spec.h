/* SPEC: the facts of one connection, as "key=value,key=value". */
#ifndef SOCKD_CHECK_SPEC_H
#define SOCKD_CHECK_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "conf.h"
#include "names.h"
#include "resolve.h"

#define SPEC_MAX_GROUPS 16

struct check_spec {
	struct sockaddr_storage from, laddr, to_addr;
	bool have_from, have_laddr, have_fromport, have_lport;
	bool have_to, to_is_name, have_port, have_addrs;
	char to_name[NAME_MAX_LEN + 1];
	uint16_t port;
	struct sockaddr_storage addrs[RESOLVE_MAX];
	size_t naddrs;
	unsigned command;           /* one CMD_* bit */
	unsigned protocol;          /* PROTO_* bit, 0 = from the command */
	enum method method;
	char user[NAME_MAX_LEN + 1];
	bool have_user;
	char groups_buf[SPEC_MAX_GROUPS][NAME_MAX_LEN + 1];
	const char *groups[SPEC_MAX_GROUPS];
	size_t ngroups;
	int version;
};

/* Parses TEXT.  Returns 0, or -1 with a message in ERR. */
int spec_parse(const char *text, struct check_spec *s, char *err, size_t errlen);

#endif
