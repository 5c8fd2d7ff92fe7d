/* The relay-phase sandbox: a seccomp allowlist and tight resource limits,
 * entered after the privilege drop, once every descriptor the relay needs
 * exists.  A compromised relay can then relay and nothing else: no exec,
 * no new files, no new sockets (TCP). */
#ifndef SOCKD_SANDBOX_H
#define SOCKD_SANDBOX_H

#include <stddef.h>

enum sandbox_profile {
	SANDBOX_TCP,    /* splice or GSSAPI relay of one connection */
	SANDBOX_UDP,    /* UDP relay: may resolve names (read-only files,
			   resolver sockets) and open its outgoing sockets */
};

/* Installs the filter (raw BPF: no library to load per connection) and
 * the limits.  A forbidden system call raises SIGSYS, whose handler logs
 * the call's number and exits with status 5.  Returns 0 or -1 with a
 * reason.  Sanitizer builds skip the filter (their runtime needs more). */
int sandbox_enter(enum sandbox_profile p, const int *log_fds, size_t nlog,
		  char *err, size_t len);

/* Whether this build installs the filter. */
int sandbox_available(void);

#endif
