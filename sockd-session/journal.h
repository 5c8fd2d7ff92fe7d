/* systemd's journal, spoken natively: when stderr is the journal
 * (JOURNAL_STREAM names it), each log line goes as one datagram of fields
 * to the journal socket, so that `journalctl SOCKD_USER=alice` finds it.
 * The wire format is sd_journal_send(3)'s; libsystemd is not loaded for it
 * (linking it halves the connection rate of a per-connection process). */
#ifndef SOCKD_JOURNAL_H
#define SOCKD_JOURNAL_H

/* Connects when JOURNAL_STREAM matches fd 2 (socket path: the systemd
 * default, or $SOCKD_JOURNAL_SOCKET).  Returns the socket, or -1 when the
 * journal is not in use here. */
int journal_open(void);

/* Sends MSG at syslog PRIORITY: MESSAGE, PRIORITY, SYSLOG_IDENTIFIER,
 * and for every key=value pair in MSG a SOCKD_KEY field (upper case;
 * quotes removed); the first word is SOCKD_EVENT.  Best effort. */
void journal_send(int fd, int priority, const char *msg);

#endif
