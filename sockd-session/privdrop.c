/* Verified permanent drop, after OpenSSH's permanently_set_uid(). */
#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "privdrop.h"

/* NAME in /etc/passwd, read directly: NSS, which getpwnam(3) loads, stays
 * in every session's memory (its configuration, modules and buffers)
 * until the session ends.  NULL when it is not there. */
static struct passwd *local_user(const char *name, struct passwd *pw,
				 char *buf, size_t len)
{
	char fbuf[1024];
	struct passwd *entry, *match = NULL;
	FILE *f = fopen("/etc/passwd", "re");

	if (!f)
		return NULL;
	setvbuf(f, fbuf, _IOFBF, sizeof(fbuf));
	while (!match && fgetpwent_r(f, pw, buf, len, &entry) == 0)
		if (!strcmp(entry->pw_name, name))
			match = entry;
	fclose(f);
	return match;
}

int privdrop_lookup(const char *user, struct privdrop_target *t, char *err,
		    size_t errlen)
{
	const char *name = user ? user : "nobody";
	struct passwd pwbuf;
	char buf[1024];
	struct passwd *pw = local_user(name, &pwbuf, buf, sizeof(buf));

	if (!pw)
		pw = getpwnam(name);   /* not local: NSS (LDAP, sssd, ...) */

	if (!pw) {
		snprintf(err, errlen, "user.unprivileged: no user \"%s\"", name);
		return -1;
	}
	if (pw->pw_uid == 0 || pw->pw_gid == 0) {
		snprintf(err, errlen, "user.unprivileged \"%s\" has uid or gid 0; "
			 "refusing to relay as root", name);
		return -1;
	}
	t->uid = pw->pw_uid;
	t->gid = pw->pw_gid;
	snprintf(t->name, sizeof(t->name), "%s", name);
	return 0;
}

static int no_capabilities(void)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2];

	if (syscall(SYS_capget, &hdr, data) < 0)
		return 0;
	for (int i = 0; i < 2; i++)
		if (data[i].effective || data[i].permitted || data[i].inheritable)
			return 0;
	return 1;
}

static int fail(char *err, size_t errlen, const char *what)
{
	snprintf(err, errlen, "privilege drop: %s: %s", what,
		 errno ? strerror(errno) : "unexpected state");
	return -1;
}

int privdrop_permanently(const struct privdrop_target *t, char *err,
			 size_t errlen)
{
	uid_t ru, eu, su;
	gid_t rg, eg, sg;

	errno = 0;
	if (getuid() == 0 || geteuid() == 0) {
		if (setgroups(1, &t->gid) < 0)
			return fail(err, errlen, "setgroups");
		if (setresgid(t->gid, t->gid, t->gid) < 0)
			return fail(err, errlen, "setresgid");
		if (setresuid(t->uid, t->uid, t->uid) < 0)
			return fail(err, errlen, "setresuid");
	}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 &&
	    errno != EINVAL)
		return fail(err, errlen, "clearing ambient capabilities");
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return fail(err, errlen, "no_new_privs");
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		return fail(err, errlen, "dumpable");
	/* verify, do not assume */
	errno = 0;
	if (getresuid(&ru, &eu, &su) < 0 || getresgid(&rg, &eg, &sg) < 0)
		return fail(err, errlen, "getresuid");
	if (ru == 0 || eu == 0 || su == 0 || rg == 0 || eg == 0 || sg == 0)
		return fail(err, errlen, "still uid or gid 0");
	if (setuid(0) == 0 || seteuid(0) == 0)
		return fail(err, errlen, "setuid(0) succeeded");
	if (setgid(0) == 0 || setegid(0) == 0)
		return fail(err, errlen, "setgid(0) succeeded");
	gid_t groups[4];
	int ng = getgroups(4, groups);
	for (int i = 0; i < ng; i++)
		if (groups[i] == 0)
			return fail(err, errlen, "still in group 0");
	errno = 0;
	if (!no_capabilities())
		return fail(err, errlen, "capabilities left");
	if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
		return fail(err, errlen, "no_new_privs not set");
	return 0;
}
