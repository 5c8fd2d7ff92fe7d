/* Session-wide helpers: rule locations, refusals, log lines, the relay. */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <unistd.h>

#include "conf_lazy.h"
#include "gss.h"
#include "log.h"
#include "netio.h"
#include "sandbox.h"
#include "session.h"

void session_rule_where(const struct session *s, const struct rule *r,
			char *buf, size_t len)
{
	if (r)
		snprintf(buf, len, "%s:%u %s-rule=#%u", s->conf->file, r->line,
			 r->set == RULE_CLIENT ? "client" : "socks", r->number);
	else
		snprintf(buf, len, "default");
}

void session_end(const struct session *s, const char *event,
		 const struct rule *r, int always, const char *reason)
{
	char where[300];

	if (always || !r || (r->log & (LOG_CONNECT | LOG_ERROR))) {
		session_rule_where(s, r, where, sizeof(where));
		log_msg(LOGL_INFO, "%s client=%s local=%s method=%s user=%s "
			"rule=%s reason=\"%s\"", event, s->client, s->local,
			method_name(s->neg.method), s->user, where, reason);
	}
	exit(EXIT_REFUSED);
}

void session_facts(const struct session *s, unsigned command, struct facts *f)
{
	*f = (struct facts){
		.client = &s->cc.peer, .local = &s->cc.local,
		.client_port_known = true, .local_port_known = true,
		.clientmethod = s->clientmethod, .method = s->neg.method,
		/* GSSAPI: the local name, "" for a principal that maps to
		 * none, which no user: rule matches */
		.user = s->neg.method == METHOD_GSSAPI || s->neg.user[0]
			? s->neg.user : NULL,
		.pam_service = s->auth.pam_service,
		.version = s->neg.version, .command = command,
	};
}

int64_t session_reply_deadline(const struct session *s)
{
	return netio_deadline(CONF_TIMEOUT(s->conf, s->client_rule, negotiate));
}

void session_log_start(const struct session *s, const struct rule *r,
		       const char *command, const struct sockaddr_storage *dest,
		       const struct sockaddr_storage *bound)
{
	char where[300], d[ADDR_STRLEN], b[ADDR_STRLEN];
	char userid[4 * SOCKS4_FIELD_MAX + 40] = "";

	if (!r || !(r->log & LOG_CONNECT))
		return;
	session_rule_where(s, r, where, sizeof(where));
	addr_format(dest, d, sizeof(d));
	addr_format(bound, b, sizeof(b));
	if (s->neg.version == 4) {
		char esc[4 * SOCKS4_FIELD_MAX + 1];
		log_escape(s->neg.req.userid, s->neg.req.userid_len, esc,
			   sizeof(esc));
		snprintf(userid, sizeof(userid), " socks4_userid=\"%s\"", esc);
	}
	log_msg(LOGL_INFO, "pass client=%s local=%s version=%d method=%s user=%s "
		"rule=%s command=%s dest=%s%s%s bound=%s%s", s->client, s->local,
		s->neg.version, method_name(s->neg.method), s->user, where,
		command, d, s->neg.req.atyp == SOCKS5_ATYP_NAME ? " name=" : "",
		s->neg.req.atyp == SOCKS5_ATYP_NAME ? s->neg.req.name : "", b,
		userid);
}

/* WHERE: the rule's session_rule_where(), NULL when it logs no end. */
static const char *end_where(const struct session *s, const struct rule *r,
			     char *where, size_t len)
{
	if (!r || !(r->log & LOG_DISCONNECT))
		return NULL;
	session_rule_where(s, r, where, len);
	return where;
}

static void log_end(const struct session *s, const char *where,
		    const struct sockaddr_storage *dest, uint64_t from_client,
		    uint64_t to_client, const char *reason)
{
	char d[ADDR_STRLEN];

	if (!where)
		return;
	addr_format(dest, d, sizeof(d));
	log_msg(LOGL_INFO, "end client=%s method=%s user=%s rule=%s dest=%s "
		"bytes_from_client=%llu bytes_to_client=%llu duration_ms=%lld "
		"reason=\"%s\"", s->client, method_name(s->neg.method), s->user,
		where, d, (unsigned long long)from_client,
		(unsigned long long)to_client,
		(long long)(netio_now_ms() - s->started), reason);
}

void session_log_end(const struct session *s, const struct rule *r,
		     const struct sockaddr_storage *dest, uint64_t from_client,
		     uint64_t to_client, const char *reason)
{
	char where[300];

	log_end(s, end_where(s, r, where, sizeof(where)), dest, from_client,
		to_client, reason);
}

/* The set-up ran deep (rules, logging, the seccomp program); the relay
 * runs shallow, maybe for hours: the stack pages below this frame go back
 * to the kernel (touched again, they read as zeroes).  The range stops
 * short of what madvise's own call pushes; below the stack's mapping lies
 * the kernel's stack guard gap, where nothing is mapped. */
static __attribute__((noinline)) void release_stack(void)
{
	const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t end = ((uintptr_t)__builtin_frame_address(0) - 256) & ~(page - 1);
	size_t span = 64 * page;

	(void)madvise((void *)(end - span), span, MADV_DONTNEED);
}

/* What exec put at the top of the stack: the argument and environment
 * strings, read during the set-up only (getopt, LISTEN_FDS, the journal).
 * The kernel leaves a random gap of up to 8 KiB between them and what it
 * puts below (the random bytes, auxv, the argv[] and envp[] arrays, then
 * the frames), so that in about half of the sessions they are on a page
 * of their own: it goes back to the kernel for a splice relay.  argv[]
 * and environ still point there and read as empty strings after: nothing
 * in the relay reads them (syslog's ident is set, the time zone loaded).
 * The range is from the page above the random bytes and the platform
 * string (the highest things below the gap) to the end of AT_EXECFN, the
 * last string, at the stack's very top. */
static void release_exec_strings(void)
{
	const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	const char *execfn = (const char *)getauxval(AT_EXECFN);
	const char *platform = (const char *)getauxval(AT_PLATFORM);
	uintptr_t low = (uintptr_t)getauxval(AT_RANDOM);

	if (!execfn || !low)
		return;
	low += 16;
	if (platform && (uintptr_t)platform + strlen(platform) + 1 > low)
		low = (uintptr_t)platform + strlen(platform) + 1;
	low = (low + page - 1) & ~(page - 1);
	uintptr_t high = ((uintptr_t)execfn + strlen(execfn) + 1 + page - 1) &
			 ~(page - 1);
	if (high > low && high - low <= 64 * page)
		(void)madvise((void *)low, high - low, MADV_DONTNEED);
}

void session_sandbox(const struct session *s, enum sandbox_profile p)
{
	int fds[8];
	size_t n = log_fds(fds, sizeof(fds) / sizeof(fds[0]));
	char err[200];

	/* what libc would otherwise do lazily under the filter, which
	 * refuses the file: load the time zone for log time stamps */
	if (log_needs_time_zone())
		log_load_time_zone();
	if (sandbox_enter(p, fds, n, err, sizeof(err))) {
		log_msg(LOGL_ERROR, "client=%s sandbox: %s", s->client, err);
		exit(EXIT_REFUSED);
	}
	/* what the set-up freed (rules text, stdio and NSS buffers, a
	 * compiled image's rules) goes back to the kernel: a session may
	 * idle for hours */
	malloc_trim(0);
	conf_lazy_release_memory();
	release_stack();
}

void session_relay(struct session *s, const struct rule *r, int target,
		   const char *command, const struct sockaddr_storage *dest,
		   const struct sockaddr_storage *bound)
{
	int io = CONF_TIMEOUT(s->conf, r, io_tcp);
	int fin_wait = CONF_TIMEOUT(s->conf, r, tcp_fin_wait);
	char buf[300];
	const char *where = end_where(s, r, buf, sizeof(buf));

	session_log_start(s, r, command, dest, bound);
	/* A TCP relay decides nothing more: the rules (a few hundred bytes
	 * each) need not stay in memory while it runs. */
	conf_free(s->conf);
	s->conf = NULL;
	s->client_rule = NULL;
	s->auth = (struct auth_ctx){ 0 };   /* its names were the rules' */
	session_sandbox(s, SANDBOX_TCP);
	if (s->neg.gss && gss_level(s->neg.gss) >= GSS_LEVEL_INTEGRITY) {
		/* protected data cannot be spliced: wrap and unwrap */
		struct gss_relay_stats gs;
		gss_relay_run(s->neg.gss, s->cc.fd, target, s->neg.early,
			      s->neg.nearly, io, fin_wait, &gs);
		log_end(s, where, dest, gs.from_client, gs.to_client, gs.reason);
		return;
	}
	struct relay_stats st;
	release_exec_strings();
	relay_run(s->cc.fd, target, &s->pipes, io, fin_wait, &st);
	log_end(s, where, dest, st.from_client, st.to_client, st.reason);
}
