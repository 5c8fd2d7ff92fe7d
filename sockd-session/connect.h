/* CONNECT: resolve, decide the socks rules on each concrete address, and
 * connect to the first address that passed. */
#ifndef SOCKD_CONNECT_H
#define SOCKD_CONNECT_H

#include <stdint.h>

#include "activation.h"
#include "conf.h"
#include "rules_match.h"
#include "socks_proto.h"

struct connect_result {
	int fd;                          /* connected, non-blocking; or -1 */
	struct sockaddr_storage dest;    /* the address connected to/tried */
	struct sockaddr_storage bound;   /* our end of it (the reply's BND) */
	struct verdict verdict;          /* the socks rule that decided */
	uint8_t rep;                     /* SOCKS5 reply code */
	char reason[200];
};

/* F arrives with the client, method and user facts; this fills in the
 * destination.  Runs unprivileged: the name resolution a client chose is
 * never done as root. */
void connect_destination(const struct conf *c, struct facts *f,
			 const struct socks_request *req,
			 const struct client_conn *cc,
			 struct connect_result *out);

/* The source address for a socket of FAMILY (external: or same-same
 * rotation): 1 = chosen (in SRC, port 0), 0 = let the kernel choose,
 * -1 = externals are given but none of FAMILY. */
int connect_source_address(const struct conf *c, const struct client_conn *cc,
			   int family, struct sockaddr_storage *src);

/* The SOCKS5 reply code for a connect(2)/socket(2) errno. */
uint8_t connect_errno_reply(int err);

#endif
