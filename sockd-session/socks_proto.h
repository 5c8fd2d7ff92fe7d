/* SOCKS 4, 4a and 5 messages (RFC 1928, SOCKS4/4a): pure encoders and
 * incremental decoders.  Each decoder is given the bytes read so far and
 * says how many it needs in total, so the session reads exactly one
 * message and never a byte past it: whatever the client sent after the
 * request stays in the socket for the relay.  Fed whole or byte by byte,
 * a decoder gives the same result. */
#ifndef SOCKD_SOCKS_PROTO_H
#define SOCKD_SOCKS_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "names.h"

#define SOCKS5_GREETING_MAX 257
#define SOCKS5_REQUEST_MAX 262   /* 4 + 1 + 255 + 2 */
#define SOCKS_REPLY_MAX 22
#define SOCKS4_FIELD_MAX 255     /* user id, SOCKS4a host name */
#define SOCKS4_REQUEST_MAX (8 + 2 * (SOCKS4_FIELD_MAX + 1))

enum { SOCKS5_ATYP_IPV4 = 1, SOCKS5_ATYP_NAME = 3, SOCKS5_ATYP_IPV6 = 4 };
enum { SOCKS_CMD_CONNECT = 1, SOCKS_CMD_BIND = 2, SOCKS_CMD_UDP = 3 };

enum socks5_rep {
	REP_SUCCEEDED = 0x00,
	REP_GENERAL_FAILURE = 0x01,
	REP_NOT_ALLOWED = 0x02,
	REP_NET_UNREACHABLE = 0x03,
	REP_HOST_UNREACHABLE = 0x04,
	REP_CONN_REFUSED = 0x05,
	REP_TTL_EXPIRED = 0x06,
	REP_CMD_UNSUPPORTED = 0x07,
	REP_ATYP_UNSUPPORTED = 0x08,
};

/* Decoder status: > 0 = total bytes needed (read more until HAVE equals
 * it), 0 = complete, < 0 = malformed (a PROTO_* code). */
enum {
	PROTO_BAD_VERSION = -1,
	PROTO_NO_METHODS = -2,
	PROTO_BAD_RESERVED = -3,
	PROTO_BAD_ATYP = -4,     /* reply 08 */
	PROTO_BAD_NAME = -5,     /* reply 04: a name we refuse to resolve */
	PROTO_FIELD_TOO_LONG = -6,  /* SOCKS4 user id or host name */
};

struct socks5_greeting {
	uint8_t nmethods;
	uint8_t methods[255];
};

struct socks_request {
	int version;            /* 4 or 5 */
	uint8_t command;        /* SOCKS_CMD_* as sent */
	uint8_t atyp;
	struct sockaddr_storage addr;   /* ATYP 1/4 (port set too) */
	char name[NAME_MAX_LEN + 1];    /* ATYP 3, canonical */
	uint16_t port;
	char userid[SOCKS4_FIELD_MAX + 1];   /* SOCKS4: logged, not trusted */
	size_t userid_len;
};

/* Greeting: VER NMETHODS METHODS. */
int socks5_greeting_decode(const uint8_t *buf, size_t have,
			   struct socks5_greeting *g);

/* Request: VER CMD RSV ATYP DST.ADDR DST.PORT.  The command byte is not
 * judged here (the caller answers 07); a bad ATYP gives PROTO_BAD_ATYP. */
int socks5_request_decode(const uint8_t *buf, size_t have,
			  struct socks_request *r);

/* SOCKS4 and 4a: VN CD DSTPORT DSTIP USERID NUL [HOSTNAME NUL].  The
 * fields end at a NUL, so until one arrives the decoder asks for one more
 * byte; each field is bounded.  DSTIP 0.0.0.x (x != 0) is SOCKS4a: the
 * name that follows is resolved by us, 0.0.0.x is never connected to. */
int socks4_request_decode(const uint8_t *buf, size_t have,
			  struct socks_request *r);

/* SOCKS4 reply: 00 5A|5B DSTPORT DSTIP (8 bytes).  Success carries BND
 * when it is IPv4. */
size_t socks4_reply_encode(uint8_t *out, int granted,
			   const struct sockaddr_storage *bnd);

/* The length of the SOCKS5 request that BUF begins with (one that
 * socks5_request_decode accepted). */
size_t socks5_request_length(const uint8_t *buf);

/* Writes VER REP RSV ATYP BND.ADDR BND.PORT for BND (NULL: 0.0.0.0:0).
 * Returns its length. */
size_t socks5_reply_encode(uint8_t *out, uint8_t rep,
			   const struct sockaddr_storage *bnd);

/* RFC 1929 username/password request: VER=1 ULEN UNAME PLEN PASSWD. */
#define RFC1929_MAX (1 + 1 + 255 + 1 + 255)
enum {
	PROTO_BAD_SUBVERSION = -7,   /* VER != 1 */
	PROTO_EMPTY_FIELD = -8,      /* ULEN or PLEN 0 */
	PROTO_BAD_BYTES = -9,        /* NUL or control byte in the name, NUL
					in the password: a C string would cut
					them short */
};

struct rfc1929_creds {
	char user[256];
	char pass[256];
};

/* Decodes into C (both NUL-terminated).  The caller wipes C->pass. */
int rfc1929_decode(const uint8_t *buf, size_t have, struct rfc1929_creds *c);

/* RFC 1961 message: VER=1 MTYP LEN(2) TOKEN; "01 FF" alone is an abort. */
#define GSS_MTYP_AUTH 1
#define GSS_MTYP_PROT 2
#define GSS_MTYP_DATA 3
#define GSS_MTYP_ABORT 0xff
#define GSS_TOKEN_MAX 65535
enum {
	PROTO_GSS_ABORT = -10,       /* the peer sent 01 FF */
	PROTO_GSS_BAD_MTYP = -11,    /* not the message type expected */
	PROTO_GSS_EMPTY = -12,       /* zero-length token */
	PROTO_GSS_BAD_VERSION = -14, /* VER != 1 */
};

/* Decodes a message of type WANT_MTYP; *TOKEN points into BUF. */
int gss_msg_decode(const uint8_t *buf, size_t have, int want_mtyp,
		   const uint8_t **token, size_t *len);

/* Writes the 4-byte header of a message carrying LEN bytes. */
void gss_msg_header(uint8_t out[4], int mtyp, size_t len);

/* RFC 1928 section 7 UDP header: RSV(2) FRAG ATYP DST.ADDR DST.PORT. */
#define SOCKS5_UDP_HEADER_MAX (4 + 1 + 255 + 2)
enum { PROTO_UDP_FRAGMENT = -13 };

/* Decodes the header of a LEN-byte datagram into R (atyp, addr or name,
 * port).  Returns the header length (the payload follows), or < 0:
 * truncated (PROTO_BAD_RESERVED for a short or malformed header),
 * PROTO_UDP_FRAGMENT (FRAG != 0: dropped, as the RFC allows), bad ATYP or
 * name. */
int socks5_udp_decode(const uint8_t *buf, size_t len, struct socks_request *r);

/* Writes the header for a datagram from FROM.  Returns its length. */
size_t socks5_udp_header(uint8_t *out, const struct sockaddr_storage *from);

/* Readable name of a PROTO_* code. */
const char *socks_proto_strerror(int code);

#endif
