/* Linux-PAM, loaded on first use: a session that authenticates nobody
 * never maps libpam (linking it would cost every connection). */
#ifndef SOCKD_AUTH_PAM_H
#define SOCKD_AUTH_PAM_H

#include <stdbool.h>
#include <stddef.h>

/* PAM_USER and PAM_RUSER when no user name is known (pam.address), as
 * Dante sets them. */
#define PAM_ADDRESS_USER "rhostusr"

struct pam_request {
	const char *service;      /* the PAM service (file in /etc/pam.d) */
	const char *user;         /* RFC 1929 name, or PAM_ADDRESS_USER */
	const char *password;     /* NULL: pam.address (no credentials) */
	const char *rhost;        /* the client's address, as text */
	bool open_session;        /* pam_setcred + pam_open_session */
};

struct pam_result {
	char user[256];           /* PAM_USER after the stack: a module may
				     have mapped the name */
	char reason[240];         /* why it failed, safe to log */
};

/* Runs the PAM lifecycle as root: pam_start, PAM_RHOST/PAM_RUSER,
 * pam_authenticate(PAM_DISALLOW_NULL_AUTHTOK), pam_acct_mgmt (expired,
 * locked or must-change accounts are refused), and with open_session
 * pam_setcred + pam_open_session.  Returns 0 when PAM said yes, -1 with
 * res->reason.  Without a session the handle is ended before return. */
int auth_pam(const struct pam_request *rq, struct pam_result *res);

/* True when the service has a file of its own: Linux-PAM would otherwise
 * use "other", and a typo must fail, not fall through. */
bool auth_pam_service_exists(const char *service);

/* When auth_pam opened a session: forks.  The child returns 0 and goes on
 * to relay (it will drop privileges); the parent stays root, closes
 * CLIENT_FD, waits for the child, then pam_close_session, pam_setcred
 * (delete) and pam_end exactly once, and exits with the child's status.
 * Without a session it returns 0 at once.  -1 when fork fails. */
int auth_pam_session_fork(int client_fd);

#endif
