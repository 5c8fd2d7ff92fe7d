/* RFC 1961 on MIT krb5's GSSAPI.  Authenticate (context), then authorize
 * separately (localname for user: rules), as OpenSSH's gss-serv does. */
#include <dlfcn.h>
#include <errno.h>
#include <gssapi/gssapi.h>
#include <gssapi/gssapi_ext.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gss.h"
#include "netio.h"
#include "socks_proto.h"

#define MAX_ROUNDS 8
#define MSG_MAX (4 + GSS_TOKEN_MAX)

/* krb5 mechanism and host-based service name type, by value: no symbol
 * of the library is needed before it is loaded. */
static gss_OID_desc krb5_oid = { 9, (void *)"\x2a\x86\x48\x86\xf7\x12\x01\x02\x02" };
static gss_OID_desc hostbased_oid = { 10,
	(void *)"\x2a\x86\x48\x86\xf7\x12\x01\x02\x01\x04" };

static struct {
	bool loaded;
	OM_uint32 (*acquire_cred_from)(OM_uint32 *, gss_name_t, OM_uint32,
				       gss_OID_set, gss_cred_usage_t,
				       gss_const_key_value_set_t, gss_cred_id_t *,
				       gss_OID_set *, OM_uint32 *);
	OM_uint32 (*import_name)(OM_uint32 *, gss_buffer_t, gss_OID, gss_name_t *);
	OM_uint32 (*release_name)(OM_uint32 *, gss_name_t *);
	OM_uint32 (*release_cred)(OM_uint32 *, gss_cred_id_t *);
	OM_uint32 (*release_buffer)(OM_uint32 *, gss_buffer_t);
	OM_uint32 (*accept)(OM_uint32 *, gss_ctx_id_t *, gss_cred_id_t,
			    gss_buffer_t, gss_channel_bindings_t, gss_name_t *,
			    gss_OID *, gss_buffer_t, OM_uint32 *, OM_uint32 *,
			    gss_cred_id_t *);
	OM_uint32 (*display_name)(OM_uint32 *, gss_name_t, gss_buffer_t, gss_OID *);
	OM_uint32 (*localname)(OM_uint32 *, gss_const_name_t, gss_const_OID,
			       gss_buffer_t);
	OM_uint32 (*wrap)(OM_uint32 *, gss_ctx_id_t, int, gss_qop_t, gss_buffer_t,
			  int *, gss_buffer_t);
	OM_uint32 (*unwrap)(OM_uint32 *, gss_ctx_id_t, gss_buffer_t, gss_buffer_t,
			    int *, gss_qop_t *);
	OM_uint32 (*wrap_size_limit)(OM_uint32 *, gss_ctx_id_t, int, gss_qop_t,
				     OM_uint32, OM_uint32 *);
	OM_uint32 (*display_status)(OM_uint32 *, OM_uint32, int, gss_OID,
				    OM_uint32 *, gss_buffer_t);
} G;

struct gss_sess {
	gss_ctx_id_t ctx;
	int level;
	bool nec;
	size_t max_plain;         /* largest input that wraps to <= 65535 */
	uint8_t *msg;             /* MSG_MAX bytes: one message being read */
};

static int load(char *err, size_t len)
{
	if (G.loaded)
		return 0;
	void *lib = dlopen("libgssapi_krb5.so.2", RTLD_NOW);
	if (!lib) {
		snprintf(err, len, "cannot load libgssapi_krb5: %s", dlerror());
		return -1;
	}
#define SYM(f, n) (*(void **)&G.f = dlsym(lib, n))
	if (!SYM(acquire_cred_from, "gss_acquire_cred_from") ||
	    !SYM(import_name, "gss_import_name") ||
	    !SYM(release_name, "gss_release_name") ||
	    !SYM(release_cred, "gss_release_cred") ||
	    !SYM(release_buffer, "gss_release_buffer") ||
	    !SYM(accept, "gss_accept_sec_context") ||
	    !SYM(display_name, "gss_display_name") ||
	    !SYM(localname, "gss_localname") || !SYM(wrap, "gss_wrap") ||
	    !SYM(unwrap, "gss_unwrap") ||
	    !SYM(wrap_size_limit, "gss_wrap_size_limit") ||
	    !SYM(display_status, "gss_display_status")) {
		snprintf(err, len, "libgssapi_krb5 lacks an entry point");
		return -1;
	}
#undef SYM
	G.loaded = true;
	return 0;
}

/* "what: major text (minor text)" */
static void status_text(const char *what, OM_uint32 major, OM_uint32 minor,
			char *out, size_t len)
{
	OM_uint32 min2, ctx = 0;
	gss_buffer_desc a = GSS_C_EMPTY_BUFFER, b = GSS_C_EMPTY_BUFFER;

	G.display_status(&min2, major, GSS_C_GSS_CODE, GSS_C_NO_OID, &ctx, &a);
	ctx = 0;
	G.display_status(&min2, minor, GSS_C_MECH_CODE, &krb5_oid, &ctx, &b);
	snprintf(out, len, "%s: %.*s (%.*s)", what, (int)a.length,
		 (const char *)a.value, (int)b.length, (const char *)b.value);
	G.release_buffer(&min2, &a);
	G.release_buffer(&min2, &b);
}

static void send_abort(int fd, int64_t deadline)
{
	static const uint8_t abort_msg[2] = { 1, GSS_MTYP_ABORT };
	netio_write_all(fd, abort_msg, 2, deadline);
}

/* One write for header and token: two would leave the token waiting for
 * the client's delayed ACK (Nagle), 40 ms per message. */
static int send_msg(int fd, int mtyp, const void *tok, size_t n,
		    int64_t deadline)
{
	uint8_t *buf = malloc(4 + n);
	int rc;

	if (!buf)
		return -1;
	gss_msg_header(buf, mtyp, n);
	memcpy(buf + 4, tok, n);
	rc = netio_write_all(fd, buf, 4 + n, deadline);
	free(buf);
	return rc;
}

/* Reads one whole message of type MTYP into G->msg. */
static int read_msg(struct gss_sess *g, int fd, int mtyp, int64_t deadline,
		    const uint8_t **tok, size_t *n, char *reason, size_t len)
{
	size_t have = 0;
	int need;

	while ((need = gss_msg_decode(g->msg, have, mtyp, tok, n)) > 0) {
		if (netio_read_exact(fd, g->msg, &have, (size_t)need, deadline)) {
			snprintf(reason, len, "GSSAPI: %s after %zu bytes",
				 errno == ETIMEDOUT ? "timeout.negotiate expired"
						    : "client closed", have);
			return -1;
		}
	}
	if (need < 0) {
		snprintf(reason, len, "GSSAPI: %s", socks_proto_strerror(need));
		return -1;
	}
	return 0;
}

static gss_cred_id_t acquire(const struct gss_params *p, char *reason,
			     size_t len)
{
	OM_uint32 major, minor;
	gss_name_t name = GSS_C_NO_NAME;
	gss_cred_id_t cred = GSS_C_NO_CREDENTIAL;
	gss_buffer_desc svc = { strlen(p->service), (void *)p->service };
	gss_OID_set_desc mechs = { 1, &krb5_oid };
	gss_key_value_element_desc kv = { "keytab", p->keytab };
	gss_key_value_set_desc store = { 1, &kv };

	/* "rcmd" without a host accepts rcmd/<any host> in the keytab:
	 * clients name the proxy by whatever name they reached it by */
	OM_uint32 scratch;   /* release calls reset their minor to 0 */

	major = G.import_name(&minor, &svc, &hostbased_oid, &name);
	if (GSS_ERROR(major)) {
		status_text("gss_import_name", major, minor, reason, len);
		return GSS_C_NO_CREDENTIAL;
	}
	major = G.acquire_cred_from(&minor, name, GSS_C_INDEFINITE, &mechs,
				    GSS_C_ACCEPT, &store, &cred, NULL, NULL);
	G.release_name(&scratch, &name);
	if (GSS_ERROR(major)) {
		status_text("acquiring acceptor credentials", major, minor,
			    reason, len);
		return GSS_C_NO_CREDENTIAL;
	}
	return cred;
}

/* The context loop: at most MAX_ROUNDS tokens, all under DEADLINE. */
static int establish(struct gss_sess *g, int fd, gss_cred_id_t cred,
		     int64_t deadline, gss_name_t *client, OM_uint32 *flags,
		     char *reason, size_t len)
{
	OM_uint32 major = GSS_S_CONTINUE_NEEDED, minor;
	gss_OID mech = GSS_C_NO_OID;

	for (int round = 0; major == GSS_S_CONTINUE_NEEDED; round++) {
		const uint8_t *tok;
		size_t n;
		if (round == MAX_ROUNDS) {
			snprintf(reason, len, "GSSAPI: more than %d context "
				 "tokens", MAX_ROUNDS);
			return -1;
		}
		if (read_msg(g, fd, GSS_MTYP_AUTH, deadline, &tok, &n, reason, len))
			return -1;
		gss_buffer_desc in = { n, (void *)tok }, out = GSS_C_EMPTY_BUFFER;
		major = G.accept(&minor, &g->ctx, cred, &in,
				 GSS_C_NO_CHANNEL_BINDINGS, client, &mech, &out,
				 flags, NULL, NULL);
		OM_uint32 scratch;   /* keep MINOR for the error text */
		if (out.length > GSS_TOKEN_MAX) {
			G.release_buffer(&scratch, &out);
			snprintf(reason, len, "GSSAPI: output token too large");
			return -1;
		}
		if (out.length &&
		    send_msg(fd, GSS_MTYP_AUTH, out.value, out.length, deadline)) {
			G.release_buffer(&scratch, &out);
			snprintf(reason, len, "GSSAPI: client went away");
			return -1;
		}
		G.release_buffer(&scratch, &out);
		if (GSS_ERROR(major)) {
			status_text("gss_accept_sec_context", major, minor, reason,
				    len);
			return -1;
		}
	}
	if (!mech || mech->length != krb5_oid.length ||
	    memcmp(mech->elements, krb5_oid.elements, krb5_oid.length)) {
		snprintf(reason, len, "GSSAPI: a mechanism other than Kerberos 5");
		return -1;
	}
	return 0;
}

static int level_allowed(unsigned enctypes, int level)
{
	switch (level) {
	case GSS_LEVEL_CLEAR: return (enctypes & ENC_CLEAR) != 0;
	case GSS_LEVEL_INTEGRITY: return (enctypes & ENC_INTEGRITY) != 0;
	case GSS_LEVEL_CONFIDENTIALITY: return (enctypes & ENC_CONFIDENTIALITY) != 0;
	default: return 0;   /* 3 (per-message) is never offered */
	}
}

/* RFC 1961 section 4: the client's level, wrapped without confidentiality
 * (or raw, one byte, in NEC mode where the rule allows it); we answer the
 * same level the same way, or refuse. */
static int protection(struct gss_sess *g, int fd, const struct gss_params *p,
		      int64_t deadline, OM_uint32 flags, char *reason,
		      size_t len)
{
	const uint8_t *tok;
	size_t n;
	OM_uint32 major, minor;
	int level, conf = 0;

	if (read_msg(g, fd, GSS_MTYP_PROT, deadline, &tok, &n, reason, len))
		return -1;
	if (n == 1 && p->necgssapi) {
		g->nec = true;
		level = tok[0];
	} else {
		gss_buffer_desc in = { n, (void *)tok }, out = GSS_C_EMPTY_BUFFER;
		major = G.unwrap(&minor, g->ctx, &in, &out, &conf, NULL);
		if (GSS_ERROR(major) || out.length != 1 || conf) {
			const char *nec = n == 1 ? " (a NEC client sends the "
				"level unwrapped: see clientcompatibility: "
				"necgssapi)" : "";
			if (!GSS_ERROR(major)) {
				snprintf(reason, len, "GSSAPI: protection message "
					 "is not one unencrypted byte%s", nec);
			} else {
				char why[200];
				status_text("unwrapping the protection level",
					    major, minor, why, sizeof(why));
				snprintf(reason, len, "%s%s", why, nec);
			}
			OM_uint32 scratch;
			G.release_buffer(&scratch, &out);
			return -1;
		}
		level = ((uint8_t *)out.value)[0];
		G.release_buffer(&minor, &out);
	}
	if (!level_allowed(p->enctypes, level)) {
		snprintf(reason, len, "GSSAPI: protection level %d is not allowed "
			 "by gssapi.enctype", level);
		return -1;
	}
	if (level >= GSS_LEVEL_INTEGRITY &&
	    (!(flags & GSS_C_INTEG_FLAG) || !(flags & GSS_C_REPLAY_FLAG) ||
	     !(flags & GSS_C_SEQUENCE_FLAG) ||
	     (level == GSS_LEVEL_CONFIDENTIALITY && !(flags & GSS_C_CONF_FLAG)))) {
		snprintf(reason, len, "GSSAPI: the context lacks integrity, "
			 "replay or sequence detection%s", level == 2
			 ? " or confidentiality" : "");
		return -1;
	}
	g->level = level;
	uint8_t lv = (uint8_t)level;
	if (g->nec)
		return send_msg(fd, GSS_MTYP_PROT, &lv, 1, deadline);
	gss_buffer_desc in = { 1, &lv }, out = GSS_C_EMPTY_BUFFER;
	major = G.wrap(&minor, g->ctx, 0, GSS_C_QOP_DEFAULT, &in, &conf, &out);
	if (GSS_ERROR(major)) {
		status_text("wrapping the protection level", major, minor, reason,
			    len);
		return -1;
	}
	int rc = send_msg(fd, GSS_MTYP_PROT, out.value, out.length, deadline);
	G.release_buffer(&minor, &out);
	return rc;
}

static int identify(gss_name_t client, struct gss_identity *id, char *reason,
		    size_t len)
{
	OM_uint32 major, minor;
	gss_buffer_desc b = GSS_C_EMPTY_BUFFER;

	memset(id, 0, sizeof(*id));
	major = G.display_name(&minor, client, &b, NULL);
	if (GSS_ERROR(major) || b.length == 0 || b.length >= sizeof(id->principal) ||
	    memchr(b.value, 0, b.length)) {
		G.release_buffer(&minor, &b);
		snprintf(reason, len, "GSSAPI: unusable client name");
		return -1;
	}
	memcpy(id->principal, b.value, b.length);
	G.release_buffer(&minor, &b);
	for (char *c = id->principal; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f) {
			snprintf(reason, len, "GSSAPI: control byte in the client "
				 "name");
			return -1;
		}
	/* authorization is separate: the local name krb5 maps it to
	 * (auth_to_local), or none, which no user: rule matches */
	major = G.localname(&minor, client, &krb5_oid, &b);
	if (!GSS_ERROR(major) && b.length && b.length < sizeof(id->localname) &&
	    !memchr(b.value, 0, b.length))
		memcpy(id->localname, b.value, b.length);
	G.release_buffer(&minor, &b);
	return 0;
}

struct gss_sess *gss_authenticate(int fd, const struct gss_params *p,
				  int64_t deadline, struct gss_identity *id,
				  char *reason, size_t len)
{
	struct gss_sess *g = calloc(1, sizeof(*g));
	gss_cred_id_t cred = GSS_C_NO_CREDENTIAL;
	gss_name_t client = GSS_C_NO_NAME;
	OM_uint32 minor, flags = 0;

	if (!g || !(g->msg = malloc(MSG_MAX)) || load(reason, len))
		goto fail;
	g->ctx = GSS_C_NO_CONTEXT;
	cred = acquire(p, reason, len);
	if (cred == GSS_C_NO_CREDENTIAL)
		goto fail;
	if (establish(g, fd, cred, deadline, &client, &flags, reason, len) ||
	    identify(client, id, reason, len) ||
	    protection(g, fd, p, deadline, flags, reason, len))
		goto fail;
	G.release_name(&minor, &client);
	G.release_cred(&minor, &cred);
	OM_uint32 max = 0;
	if (g->level >= GSS_LEVEL_INTEGRITY &&
	    (GSS_ERROR(G.wrap_size_limit(&minor, g->ctx,
					 g->level == GSS_LEVEL_CONFIDENTIALITY,
					 GSS_C_QOP_DEFAULT, GSS_TOKEN_MAX, &max)) ||
	     max == 0)) {
		snprintf(reason, len, "GSSAPI: gss_wrap_size_limit failed");
		goto fail;
	}
	g->max_plain = max;
	return g;
fail:
	if (G.loaded) {
		if (client != GSS_C_NO_NAME)
			G.release_name(&minor, &client);
		if (cred != GSS_C_NO_CREDENTIAL)
			G.release_cred(&minor, &cred);
	}
	send_abort(fd, deadline);
	if (g)
		free(g->msg);
	free(g);
	return NULL;
}

int gss_level(const struct gss_sess *g)
{
	return g->level;
}

/* Unwraps TOK into OUT.  Replays, gaps, reordering and a missing
 * confidentiality are fatal: this is TCP, nothing may be lost or repeated. */
static long unwrap_data(struct gss_sess *g, const uint8_t *tok, size_t n,
			uint8_t *out, size_t cap, char *reason, size_t len)
{
	OM_uint32 major, minor;
	int conf = 0;
	gss_buffer_desc in = { n, (void *)tok }, pt = GSS_C_EMPTY_BUFFER;

	major = G.unwrap(&minor, g->ctx, &in, &pt, &conf, NULL);
	if (GSS_ERROR(major) || GSS_SUPPLEMENTARY_INFO(major)) {
		if (GSS_ERROR(major))
			status_text("gss_unwrap", major, minor, reason, len);
		else
			snprintf(reason, len, "gss_unwrap: duplicate, old, "
				 "out-of-sequence or missing token");
		G.release_buffer(&minor, &pt);
		return -1;
	}
	if (g->level == GSS_LEVEL_CONFIDENTIALITY && !conf) {
		G.release_buffer(&minor, &pt);
		snprintf(reason, len, "gss_unwrap: token without confidentiality "
			 "at level 2");
		return -1;
	}
	if (pt.length > cap) {
		G.release_buffer(&minor, &pt);
		snprintf(reason, len, "gss_unwrap: %zu bytes do not fit",
			 (size_t)pt.length);
		return -1;
	}
	memcpy(out, pt.value, pt.length);
	long got = (long)pt.length;
	G.release_buffer(&minor, &pt);
	return got;
}

long gss_recv(struct gss_sess *g, int fd, int64_t deadline, uint8_t *out,
	      size_t cap, char *reason, size_t len)
{
	const uint8_t *tok;
	size_t n;

	if (read_msg(g, fd, GSS_MTYP_DATA, deadline, &tok, &n, reason, len))
		return -1;
	return unwrap_data(g, tok, n, out, cap, reason, len);
}

/* Wraps LEN (<= max_plain) bytes into one framed message in OUT (at least
 * MSG_MAX bytes).  Returns the message length or -1. */
static long wrap_msg(struct gss_sess *g, const uint8_t *data, size_t len,
		     uint8_t *out)
{
	OM_uint32 major, minor;
	int conf = 0;
	gss_buffer_desc in = { len, (void *)data }, tok = GSS_C_EMPTY_BUFFER;

	major = G.wrap(&minor, g->ctx, g->level == GSS_LEVEL_CONFIDENTIALITY,
		       GSS_C_QOP_DEFAULT, &in, &conf, &tok);
	if (GSS_ERROR(major) || tok.length > GSS_TOKEN_MAX || tok.length == 0) {
		G.release_buffer(&minor, &tok);
		return -1;
	}
	gss_msg_header(out, GSS_MTYP_DATA, tok.length);
	memcpy(out + 4, tok.value, tok.length);
	long n = (long)tok.length + 4;
	G.release_buffer(&minor, &tok);
	return n;
}

int gss_send(struct gss_sess *g, int fd, int64_t deadline, const uint8_t *data,
	     size_t len)
{
	uint8_t *buf = malloc(MSG_MAX);
	int rc = buf ? 0 : -1;

	while (rc == 0 && len) {
		size_t chunk = len < g->max_plain ? len : g->max_plain;
		long n = wrap_msg(g, data, chunk, buf);
		if (n < 0 || netio_write_all(fd, buf, (size_t)n, deadline))
			rc = -1;
		data += chunk;
		len -= chunk;
	}
	free(buf);
	return rc;
}

/* ---- the protected relay ------------------------------------------------ */

/* A buffer with a write cursor: bytes [off, len) are still to be written. */
struct outbuf {
	uint8_t *b;
	size_t off, len;
};

static int flush(int fd, struct outbuf *o)
{
	while (o->off < o->len) {
		ssize_t n = write(fd, o->b + o->off, o->len - o->off);
		if (n > 0) {
			o->off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		return n < 0 && errno == EAGAIN ? 0 : -1;
	}
	o->off = o->len = 0;
	return 0;
}

void gss_relay_run(struct gss_sess *g, int client, int target,
		   const uint8_t *early, size_t nearly, int io_timeout,
		   int fin_wait, struct gss_relay_stats *st)
{
	/* client -> target: one message being assembled, its plaintext out */
	uint8_t *in_msg = malloc(MSG_MAX);
	struct outbuf to_target = { malloc(MSG_MAX), 0, 0 };
	size_t in_have = 0;
	/* target -> client: plaintext read, wrapped into one message out */
	uint8_t *plain = malloc(g->max_plain ? g->max_plain : 1);
	struct outbuf to_client = { malloc(MSG_MAX), 0, 0 };
	bool client_eof = false, target_eof = false;
	bool target_shut = false, client_shut = false;
	int64_t half_closed_at = 0;
	char why[240];

	memset(st, 0, sizeof(*st));
	st->reason = "both sides closed";
	if (!in_msg || !to_target.b || !plain || !to_client.b) {
		st->reason = "out of memory";
		goto out;
	}
	if (nearly) {
		memcpy(to_target.b, early, nearly);
		to_target.len = nearly;
		st->from_client += nearly;
	}
	for (;;) {
		/* client -> target: unwrap only when the last plaintext is out */
		while (!client_eof && to_target.len == 0) {
			const uint8_t *tok;
			size_t n;
			int need = gss_msg_decode(in_msg, in_have, GSS_MTYP_DATA,
						  &tok, &n);
			if (need == 0) {
				long got = unwrap_data(g, tok, n, to_target.b,
						       MSG_MAX, why, sizeof(why));
				if (got < 0) {
					st->reason = "bad GSSAPI token from client";
					goto out;
				}
				to_target.len = (size_t)got;
				st->from_client += (uint64_t)got;
				in_have = 0;
				break;
			}
			if (need < 0) {
				st->reason = need == PROTO_GSS_ABORT
					? "client aborted GSSAPI"
					: "bad GSSAPI framing from client";
				goto out;
			}
			ssize_t r = read(client, in_msg + in_have,
					 (size_t)need - in_have);
			if (r > 0) {
				in_have += (size_t)r;
				continue;
			}
			if (r == 0) {
				if (in_have) {
					st->reason = "client closed inside a token";
					goto out;
				}
				client_eof = true;
			} else if (errno != EAGAIN && errno != EINTR) {
				st->reason = "client read error";
				goto out;
			}
			break;
		}
		if (flush(target, &to_target) < 0) {
			st->reason = "target write error";
			goto out;
		}
		if (client_eof && to_target.len == 0 && !target_shut) {
			shutdown(target, SHUT_WR);
			target_shut = true;
		}
		/* target -> client: wrap only when the last message is out */
		while (!target_eof && to_client.len == 0) {
			ssize_t r = read(target, plain, g->max_plain);
			if (r > 0) {
				long n = wrap_msg(g, plain, (size_t)r, to_client.b);
				if (n < 0) {
					st->reason = "gss_wrap failed";
					goto out;
				}
				to_client.len = (size_t)n;
				st->to_client += (uint64_t)r;
			} else if (r == 0) {
				target_eof = true;
			} else if (errno != EAGAIN && errno != EINTR) {
				st->reason = "target read error";
				goto out;
			}
			break;
		}
		if (flush(client, &to_client) < 0) {
			st->reason = "client write error";
			goto out;
		}
		if (target_eof && to_client.len == 0 && !client_shut) {
			shutdown(client, SHUT_WR);
			client_shut = true;
		}
		if (target_shut && client_shut)
			goto out;
		struct pollfd pfd[2] = { { client, 0, 0 }, { target, 0, 0 } };
		if (to_target.len)
			pfd[1].events |= POLLOUT;
		else if (!client_eof)
			pfd[0].events |= POLLIN;
		if (to_client.len)
			pfd[0].events |= POLLOUT;
		else if (!target_eof)
			pfd[1].events |= POLLIN;
		for (int i = 0; i < 2; i++)
			if (!pfd[i].events)
				pfd[i].fd = -1;
		/* timeout.tcp_fin_wait bounds the half-closed state, as in
		 * the splice relay */
		int timeout = netio_relay_timeout(io_timeout,
						  target_shut || client_shut,
						  fin_wait, &half_closed_at);
		if (timeout == NETIO_FIN_WAIT_EXPIRED) {
			st->reason = "timeout.tcp_fin_wait expired";
			goto out;
		}
		int rc = poll(pfd, 2, timeout);
		if (rc < 0 && errno != EINTR) {
			st->reason = "poll error";
			goto out;
		}
		if (rc == 0) {
			if (half_closed_at && netio_now_ms() - half_closed_at >=
					      (int64_t)fin_wait * 1000)
				continue;   /* the fin_wait check above ends it */
			st->reason = "timeout.io expired";
			goto out;
		}
	}
out:
	free(in_msg);
	free(to_target.b);
	free(plain);
	free(to_client.b);
}
