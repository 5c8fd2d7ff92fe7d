/* GSSAPI (RFC 1961) with MIT Kerberos, loaded on first use. */
#ifndef SOCKD_GSS_H
#define SOCKD_GSS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"

/* Protection levels on the wire. */
enum { GSS_LEVEL_CLEAR = 0, GSS_LEVEL_INTEGRITY = 1,
       GSS_LEVEL_CONFIDENTIALITY = 2, GSS_LEVEL_PERMESSAGE = 3 };

#define GSS_DEFAULT_KEYTAB "FILE:/etc/sockd.keytab"
#define GSS_DEFAULT_SERVICE "rcmd"

struct gss_params {
	const char *keytab;       /* gssapi.keytab */
	const char *service;      /* gssapi.servicename */
	unsigned enctypes;        /* ENC_* bits the rule allows */
	bool necgssapi;           /* clientcompatibility: necgssapi */
};

struct gss_sess;

struct gss_identity {
	char principal[256];      /* client principal, for logs */
	char localname[256];      /* local user it maps to; "" if none */
};

/* Runs RFC 1961 after method 01 was chosen: the context loop, then the
 * protection-level sub-negotiation.  As root (the keytab).  Returns the
 * session (level in gss_level) or NULL with REASON; on failure an abort
 * (01 FF) has been sent where the protocol allows it. */
struct gss_sess *gss_authenticate(int fd, const struct gss_params *p,
				  int64_t deadline, struct gss_identity *id,
				  char *reason, size_t len);

int gss_level(const struct gss_sess *g);

/* Reads one mtyp 3 message and unwraps it into OUT (at most CAP bytes).
 * Returns the plaintext length, or -1 with REASON (a duplicate, replayed,
 * out-of-order or tampered token is fatal). */
long gss_recv(struct gss_sess *g, int fd, int64_t deadline, uint8_t *out,
	      size_t cap, char *reason, size_t len);

/* Wraps LEN bytes (split to fit 65535-byte tokens) and writes them as
 * mtyp 3 messages.  Returns 0 or -1. */
int gss_send(struct gss_sess *g, int fd, int64_t deadline, const uint8_t *data,
	     size_t len);

struct gss_relay_stats {
	uint64_t from_client, to_client;
	const char *reason;
};

/* The relay of a protected session: client tokens unwrapped towards the
 * target, target bytes wrapped towards the client; bounded buffers, the
 * same half-close and idle-timeout rules as the splice relay.  EARLY is
 * plaintext that came with the request and goes to the target first. */
void gss_relay_run(struct gss_sess *g, int client, int target,
		   const uint8_t *early, size_t nearly, int io_timeout,
		   int fin_wait, struct gss_relay_stats *st);

#endif
