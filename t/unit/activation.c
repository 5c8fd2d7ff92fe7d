/* Unit tests: our LISTEN_FDS reader agrees with libsystemd's
 * sd_listen_fds(3) on every environment, and unsets the variables. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "activation.h"
#include "tap.h"

static void setenv_case(const char *pid, const char *fds)
{
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	if (pid)
		setenv("LISTEN_PID", pid, 1);
	if (fds)
		setenv("LISTEN_FDS", fds, 1);
}

int main(void)
{
	char me[32], other[32];

	/* fd 3 must exist for a count of 1 */
	int fd = open("/dev/null", O_RDONLY);
	if (fd != 3)
		dup2(fd, 3);
	snprintf(me, sizeof(me), "%ld", (long)getpid());
	snprintf(other, sizeof(other), "%ld", (long)getpid() + 1);
	const struct { const char *name, *pid, *fds; } c[] = {
		{ "no environment", NULL, NULL },
		{ "one fd for us", me, "1" },
		{ "two fds for us", me, "2" },
		{ "zero fds", me, "0" },
		{ "another process's fds", other, "1" },
		{ "garbage count", me, "x" },
		{ "garbage pid", "x", "1" },
		{ "negative count", me, "-1" },
		{ "only LISTEN_FDS", NULL, "1" },
		{ "garbage count for another process", other, "x" },
	};
	if (fd != 3)
		close(fd);
	int fd4 = open("/dev/null", O_RDONLY);
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		setenv_case(c[i].pid, c[i].fds);
		int theirs = sd_listen_fds(0);
		int ours = activation_listen_fds();
		int agree = (theirs < 0 && ours < 0) || theirs == ours;
		if (!tap_ok(agree, "%s: sd_listen_fds %d, ours %d", c[i].name,
			    theirs, ours))
			continue;
		tap_ok(!getenv("LISTEN_PID") && !getenv("LISTEN_FDS"),
		       "%s: variables removed", c[i].name);
	}
	setenv_case(me, "1");
	activation_listen_fds();
	tap_ok(fcntl(3, F_GETFD) & FD_CLOEXEC, "passed fd made close-on-exec");
	if (fd4 >= 0)
		close(fd4);
	return tap_done();
}
