/* The journal's native protocol: "FIELD=value\n" lines in one datagram. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "journal.h"

#define JOURNAL_SOCKET "/run/systemd/journal/socket"

int journal_open(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2 || fstat(2, &st) ||
	    (unsigned long long)st.st_dev != dev ||
	    (unsigned long long)st.st_ino != ino)
		return -1;
	const char *path = getenv("SOCKD_JOURNAL_SOCKET");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (!path)
		path = JOURNAL_SOCKET;
	if (strlen(path) >= sizeof(sa.sun_path))
		return -1;
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/* Appends "NAME=value\n"; the value ends at END (or its NUL). */
static size_t field(char *buf, size_t at, size_t cap, const char *name,
		    const char *val, size_t len)
{
	int n = snprintf(buf + at, at < cap ? cap - at : 0, "%s=%.*s\n", name,
			 (int)len, val);
	return n > 0 ? at + (size_t)n : at;
}

void journal_send(int fd, int priority, const char *msg)
{
	char buf[6144], name[64], pri[4];
	size_t at = 0;

	snprintf(pri, sizeof(pri), "%d", priority);
	at = field(buf, at, sizeof(buf), "MESSAGE", msg, strlen(msg));
	at = field(buf, at, sizeof(buf), "PRIORITY", pri, strlen(pri));
	at = field(buf, at, sizeof(buf), "SYSLOG_IDENTIFIER", "sockd-session", 13);
	/* "event key=value key=\"quoted value\" ..." (values are escaped:
	 * no newline, no raw quote inside) */
	const char *p = msg;
	size_t w = strcspn(p, " ");
	at = field(buf, at, sizeof(buf), "SOCKD_EVENT", p, w);
	for (p += w; *p;) {
		p += strspn(p, " ");
		size_t k = strcspn(p, "= ");
		if (p[k] != '=' || k == 0 || k > 40) {
			p += strcspn(p, " ");
			continue;
		}
		strcpy(name, "SOCKD_");
		for (size_t i = 0; i < k; i++)
			name[6 + i] = isalnum((unsigned char)p[i])
				? (char)toupper((unsigned char)p[i]) : '_';
		name[6 + k] = '\0';
		const char *v = p + k + 1;
		size_t vl;
		if (*v == '"') {
			v++;
			vl = strcspn(v, "\"");
			p = v + vl + (v[vl] == '"');
		} else {
			vl = strcspn(v, " ");
			p = v + vl;
		}
		at = field(buf, at, sizeof(buf), name, v, vl);
	}
	if (at >= sizeof(buf))
		at = sizeof(buf) - 1;
	ssize_t r = send(fd, buf, at, MSG_NOSIGNAL);
	(void)r;
}
