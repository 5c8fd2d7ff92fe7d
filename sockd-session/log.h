/* Session logging: one line per event, to the targets of "logoutput".
 * Targets are opened before the privilege drop and kept open, so the
 * unprivileged relay can still write. */
#ifndef SOCKD_LOG_H
#define SOCKD_LOG_H

#include <stdbool.h>
#include <stddef.h>

#include "conf.h"

enum log_level { LOGL_ERROR, LOGL_WARNING, LOGL_NOTICE, LOGL_INFO, LOGL_DEBUG };

/* Targets per list (logoutput, errorlog): log_fds() gives at most twice. */
#define LOG_MAX_TARGETS 8

/* Before the rules are loaded: stderr (when it is not the client) and
 * syslog. */
void log_init_early(void);

/* Opens C's logoutput targets (replacing the early ones). */
void log_open(const struct conf *c);

/* Does a target stamp its lines with local time (files, stdout, stderr
 * that is not the journal, syslog(3))?  Only then is the time zone
 * loaded: reading it costs a new process ~0.2 ms. */
bool log_needs_time_zone(void);

/* Loads the time zone now, once (before the sandbox, which refuses the
 * file). */
void log_load_time_zone(void);

/* The descriptors logging writes to (files, stderr); returns the count. */
size_t log_fds(int *fds, size_t max);

/* The journal socket when logging goes there natively, else -1. */
int log_journal_fd(void);

/* Reconnects syslog (after descriptors were closed under it). */
void log_reopen_syslog(void);

/* -d: debug lines too, and stderr as a target whatever logoutput says. */
void log_set_debug(int level);

void log_msg(enum log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Copies LEN bytes of client-supplied data to OUT as printable ASCII,
 * escaping everything else as \xNN, and the quotes '"', '\'' and '\\' too. */
void log_escape(const char *in, size_t len, char *out, size_t outlen);

#endif
