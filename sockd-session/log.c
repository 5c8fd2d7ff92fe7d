/* Log lines: "<time> sockd-session[pid]: <level>: <event> key=value ...". */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "journal.h"
#include "log.h"

#define MAX_TARGETS LOG_MAX_TARGETS

static struct {
	int fds[MAX_TARGETS];
	size_t nfds;
	int errfds[MAX_TARGETS];   /* errorlog: errors only */
	size_t nerrfds;
	int use_syslog;
	int journal;               /* journal socket, or -1 */
	int facility;
	int debug;
} logs = { .fds = { 2 }, .nfds = 1, .use_syslog = 1, .journal = -1,
	    .facility = LOG_DAEMON };

static const char *const level_name[] = { "error", "warning", "notice",
					  "info", "debug" };
static const int level_syslog[] = { LOG_ERR, LOG_WARNING, LOG_NOTICE,
				     LOG_INFO, LOG_DEBUG };

void log_init_early(void)
{
	logs.fds[0] = 2;
	logs.nfds = 1;
	logs.use_syslog = 1;
	openlog("sockd-session", LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

static int facility_of(const char *name)
{
	static const struct { const char *n; int f; } map[] = {
		{ "auth", LOG_AUTH }, { "authpriv", LOG_AUTHPRIV },
		{ "daemon", LOG_DAEMON }, { "user", LOG_USER },
		{ "local0", LOG_LOCAL0 }, { "local1", LOG_LOCAL1 },
		{ "local2", LOG_LOCAL2 }, { "local3", LOG_LOCAL3 },
		{ "local4", LOG_LOCAL4 }, { "local5", LOG_LOCAL5 },
		{ "local6", LOG_LOCAL6 }, { "local7", LOG_LOCAL7 } };
	for (size_t i = 0; name && i < sizeof(map) / sizeof(map[0]); i++)
		if (!strcmp(map[i].n, name))
			return map[i].f;
	return LOG_DAEMON;
}

/* "logoutput: /dev/null" is how logging is turned off: lines for it are
 * not even formatted (nor the time zone loaded for their stamps). */
static int unless_null_device(int fd)
{
	struct stat st;

	if (fd >= 0 && fstat(fd, &st) == 0 && S_ISCHR(st.st_mode) &&
	    st.st_rdev == makedev(1, 3)) {
		close(fd);
		return -1;
	}
	return fd;
}

void log_open(const struct conf *c)
{
	logs.nfds = 0;
	logs.use_syslog = 0;
	logs.debug = c->debug;
	closelog();
	for (size_t i = 0; i < c->nlogout && logs.nfds < MAX_TARGETS; i++) {
		const struct log_target *t = &c->logout[i];
		int fd = -1;
		switch (t->kind) {
		case LOGT_STDERR:
			/* stderr that is the journal: structured entries */
			if (logs.journal < 0)
				logs.journal = journal_open();
			fd = logs.journal >= 0 ? -1 : 2;
			break;
		case LOGT_STDOUT: fd = 1; break;
		case LOGT_FILE:
			fd = open(t->arg, O_WRONLY | O_APPEND | O_CREAT |
				  O_CLOEXEC | O_NOCTTY, 0640);
			if (fd < 0)
				log_msg(LOGL_WARNING, "cannot open log file %s: %s",
					t->arg, strerror(errno));
			fd = unless_null_device(fd);
			break;
		case LOGT_SYSLOG:
			/* connect now: after the drop /dev/log may be out of
			 * reach, and the sandbox allows no new sockets */
			logs.facility = facility_of(t->arg);
			openlog("sockd-session", LOG_PID | LOG_NDELAY,
				logs.facility);
			logs.use_syslog = 1;
			break;
		}
		if (fd >= 0)
			logs.fds[logs.nfds++] = fd;
	}
	logs.nerrfds = 0;
	for (size_t i = 0; i < c->nerrlog && logs.nerrfds < MAX_TARGETS; i++) {
		const struct log_target *t = &c->errlog[i];
		int fd = t->kind == LOGT_STDERR ? 2 : t->kind == LOGT_STDOUT ? 1
			: t->kind == LOGT_FILE ? open(t->arg, O_WRONLY | O_APPEND |
						      O_CREAT | O_CLOEXEC |
						      O_NOCTTY, 0640)
			: -1;
		if (t->kind == LOGT_FILE)
			fd = unless_null_device(fd);
		if (t->kind == LOGT_SYSLOG) {
			openlog("sockd-session", LOG_PID | LOG_NDELAY,
				facility_of(t->arg));
			logs.use_syslog = 1;
		}
		if (fd >= 0)
			logs.errfds[logs.nerrfds++] = fd;
	}
	/* no logoutput: syslog, as a daemon's logs are expected to be */
	if (c->nlogout == 0) {
		openlog("sockd-session", LOG_PID | LOG_NDELAY, LOG_DAEMON);
		logs.use_syslog = 1;
	}
}

bool log_needs_time_zone(void)
{
	return logs.use_syslog || logs.nfds || logs.nerrfds;
}

/* With no top pad the heap is one page and the zone file's 4 KiB stdio
 * buffer does not fit: it is mapped apart (threshold 4 KiB) and unmapped
 * at fclose, so the zone's data, which the session keeps, does not sit
 * above it on a second page.  Both settings go back to glibc's defaults
 * after. */
void log_load_time_zone(void)
{
	static bool loaded;   /* once: the session does not live long */
	time_t now = time(NULL);
	struct tm tm;

	if (loaded)
		return;
	loaded = true;
	mallopt(M_TOP_PAD, 0);
	mallopt(M_MMAP_THRESHOLD, 4096);
	tzset();
	localtime_r(&now, &tm);
	mallopt(M_MMAP_THRESHOLD, 128 * 1024);
	mallopt(M_TOP_PAD, 128 * 1024);
}

size_t log_fds(int *fds, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < logs.nfds && n < max; i++)
		fds[n++] = logs.fds[i];
	for (size_t i = 0; i < logs.nerrfds && n < max; i++)
		fds[n++] = logs.errfds[i];
	return n;
}

int log_journal_fd(void)
{
	return logs.journal;
}

void log_reopen_syslog(void)
{
	if (!logs.use_syslog)
		return;
	closelog();
	openlog("sockd-session", LOG_PID | LOG_NDELAY, logs.facility);
}

void log_set_debug(int level)
{
	if (level <= 0)
		return;
	logs.debug = level;
	/* stderr is the journal and already gets every line, debug too */
	if (logs.journal >= 0)
		return;
	for (size_t i = 0; i < logs.nfds; i++)
		if (logs.fds[i] == 2)
			return;
	if (logs.nfds < MAX_TARGETS)
		logs.fds[logs.nfds++] = 2;
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	char msg[2048], line[2200], stamp[32];
	va_list ap;

	if (lvl == LOGL_DEBUG && !logs.debug)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (logs.use_syslog)
		syslog(level_syslog[lvl], "%s: %s", level_name[lvl], msg);
	if (logs.journal >= 0)
		journal_send(logs.journal, level_syslog[lvl], msg);
	if (!logs.nfds && !(lvl == LOGL_ERROR && logs.nerrfds))
		return;
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%b %e %H:%M:%S", &tm);
	int n = snprintf(line, sizeof(line), "%s sockd-session[%ld]: %s: %s\n",
			 stamp, (long)getpid(), level_name[lvl], msg);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1;
	for (size_t i = 0; i < logs.nfds; i++) {
		/* one write per line keeps lines whole in a shared file */
		ssize_t w = write(logs.fds[i], line, (size_t)n);
		(void)w;  /* nowhere left to report a failed log write */
	}
	for (size_t i = 0; lvl == LOGL_ERROR && i < logs.nerrfds; i++) {
		ssize_t w = write(logs.errfds[i], line, (size_t)n);
		(void)w;
	}
}

void log_escape(const char *in, size_t len, char *out, size_t outlen)
{
	size_t o = 0;

	for (size_t i = 0; i < len && o + 5 < outlen; i++) {
		unsigned char ch = (unsigned char)in[i];
		if (ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\' && ch != '\'')
			out[o++] = (char)ch;
		else
			o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", ch);
	}
	if (outlen)
		out[o < outlen ? o : outlen - 1] = '\0';
}
