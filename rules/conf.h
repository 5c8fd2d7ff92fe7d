/* The loaded rules file: global settings and the two rule sets.
 *
 * conf_load() turns a Dante-compatible sockd.conf into an immutable
 * struct conf.  It is pure: it reads the file and nothing else, never logs
 * and never exits; every problem comes back as a struct conf_diag with
 * file:line:col, errors and warnings alike.  Both sockd-session and
 * sockd-check link this code, so what the checker says is what the session
 * does. */
#ifndef SOCKD_CONF_H
#define SOCKD_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "methods.h"

enum addr_kind {
	ADDR_NONE = 0,  /* not given */
	ADDR_ANY,       /* 0/0: every IPv4 and IPv6 address */
	ADDR_IPV4,      /* prefix */
	ADDR_IPV6,      /* prefix */
	ADDR_HOST,      /* a host name, matched by name and by its addresses */
	ADDR_DOMAIN,    /* .example.com: the domain and every name below it */
	ADDR_IFNAME,    /* a local interface: every address it has */
};

enum port_op { PORT_ANY = 0, PORT_EQ, PORT_NE, PORT_LT, PORT_GT, PORT_LE,
	       PORT_GE, PORT_RANGE };

struct port_spec {
	enum port_op op;
	uint16_t lo, hi;          /* hi only for PORT_RANGE */
};

struct rule_addr {
	enum addr_kind kind;
	uint8_t prefix;           /* IPv4/IPv6 prefix length */
	union {
		struct in_addr v4;
		struct in6_addr v6;
	} a;
	char *name;               /* HOST, DOMAIN (lower case, no trailing
				     dot, DOMAIN without its leading dot),
				     IFNAME */
	struct port_spec port;
};

/* Commands, as bits. */
enum {
	CMD_CONNECT = 1 << 0,
	CMD_BIND = 1 << 1,
	CMD_UDPASSOCIATE = 1 << 2,
	CMD_BINDREPLY = 1 << 3,
	CMD_UDPREPLY = 1 << 4,
	CMD_ALL = (1 << 5) - 1,
};
enum { PROTO_TCP = 1, PROTO_UDP = 2, PROTO_ALL = 3 };
enum { PXP_SOCKS4 = 1, PXP_SOCKS5 = 2, PXP_ALL = 3 };
enum {
	LOG_CONNECT = 1 << 0,
	LOG_DISCONNECT = 1 << 1,
	LOG_DATA = 1 << 2,
	LOG_ERROR = 1 << 3,
	LOG_IOOPERATION = 1 << 4,
	LOG_TCPINFO = 1 << 5,
};
enum { ENC_CLEAR = 1, ENC_INTEGRITY = 2, ENC_CONFIDENTIALITY = 4,
       ENC_PERMESSAGE = 8 };

/* Timeouts: -1 means "not set here" (a rule inherits the global value). */
struct timeouts {
	int negotiate, connect, io_tcp, io_udp, tcp_fin_wait;
};

struct name_list {
	char **v;
	size_t n;
};

enum rule_set { RULE_CLIENT, RULE_SOCKS };

struct rule {
	enum rule_set set;
	bool pass;
	unsigned number;          /* 1-based within its set, as Dante counts */
	unsigned line;            /* line the rule begins on */
	struct rule_addr from, to;
	unsigned commands;        /* CMD_* bits; CMD_ALL when not given */
	unsigned protocols;       /* PROTO_* bits */
	unsigned proxyprotocols;  /* PXP_* bits */
	struct method_list clientmethods;  /* empty = inherit global */
	struct method_list socksmethods;   /* empty = inherit global */
	struct name_list users, groups;
	unsigned log;             /* LOG_* bits */
	char *pam_service;        /* NULL = "sockd" */
	int pam_session;          /* pam.session: -1 inherit, 0 no, 1 yes */
	char *gssapi_keytab;      /* NULL = default */
	char *gssapi_service;     /* NULL = default */
	unsigned gssapi_enctype;  /* ENC_* bits; 0 = default */
	bool necgssapi;
	struct timeouts timeout;
	uint16_t udp_port_lo, udp_port_hi;  /* 0 = any */
};

enum ext_rotation { ROTATION_NONE, ROTATION_SAME_SAME };

struct log_target {
	enum { LOGT_STDERR, LOGT_STDOUT, LOGT_SYSLOG, LOGT_FILE } kind;
	char *arg;                /* syslog facility or file path */
};

struct conf {
	char *file;
	struct log_target *logout;
	size_t nlogout;
	struct log_target *errlog;
	size_t nerrlog;
	int debug;
	char *user_privileged;    /* NULL = the starting user */
	char *user_unprivileged;  /* NULL = the starting user (root: refused) */
	struct method_list clientmethods;  /* default: none */
	struct method_list socksmethods;   /* default: empty = block all */
	bool socksmethods_given;
	bool pam_session;         /* pam.session: open a PAM session */
	struct timeouts timeout;  /* resolved defaults, never -1 */
	struct rule_addr *external;
	size_t nexternal;
	enum ext_rotation rotation;
	struct rule *rules;       /* client rules first, then socks rules,
				     each in file order */
	size_t nclient, nsocks;
	/* Non-NULL when the conf came from a compiled image (conf_image.h):
	 * then everything lives in this one allocation.  Every pointer added
	 * to these structures must also be handled by conf_image.c. */
	void *image_block;
	size_t image_mapped;      /* its mapping's size; 0: from malloc */
	/* Non-NULL when the rules are read from the image one at a time, as
	 * decisions need them (conf_lazy.c): then RULES is NULL, NCLIENT and
	 * NSOCKS still count them, and only rules_match.c walks them. */
	struct conf_lazy *lazy;
};

enum diag_level { DIAG_WARNING, DIAG_ERROR };

struct conf_diag {
	enum diag_level level;
	unsigned line, col;
	char msg[240];
};

struct conf_diags {
	struct conf_diag *v;
	size_t n, nerrors;
};

/* Loads FILE.  Returns the conf, or NULL when any error was found (the
 * reasons are in *diags, which the caller frees with conf_diags_free). */
struct conf *conf_load(const char *file, struct conf_diags *diags);

/* Loads the open file FD (read from its current offset), called NAME in
 * messages. */
struct conf *conf_load_fd(int fd, const char *name, struct conf_diags *diags);

/* Parses TEXT (LEN bytes) as if read from a file called NAME. */
struct conf *conf_parse_buffer(const char *name, const char *text, size_t len,
			       struct conf_diags *diags);

void conf_free(struct conf *c);
void conf_diags_free(struct conf_diags *d);

/* Formats one diagnostic as "file:line:col: error|warning: msg". */
void conf_diag_format(const struct conf *c, const char *file,
		      const struct conf_diag *d, char *buf, size_t len);

/* The PAM service a client rule authenticates with ("sockd" by default). */
const char *conf_pam_service(const struct rule *client_rule);

static inline const struct rule *conf_client_rules(const struct conf *c)
{
	return c->rules;
}

static inline const struct rule *conf_socks_rules(const struct conf *c)
{
	return c->rules ? c->rules + c->nclient : NULL;  /* no rules at all */
}

/* The effective timeout of rule R (or the global one when R is NULL). */
int conf_timeout(const struct conf *c, const struct rule *r,
		 size_t offset_in_struct);
#define CONF_TIMEOUT(c, r, field) \
	conf_timeout((c), (r), offsetof(struct timeouts, field))

/* Writes the canonical form of C: loading it again gives the same output. */
void conf_dump(const struct conf *c, FILE *out);

#endif
