/* Name canonicalisation, label-boundary domain matching, group lookup. */
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <net/if.h>

#include "names.h"

int names_canonical(const char *name, size_t len, char *out, size_t outlen)
{
	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len == 0 || len >= outlen || len > NAME_MAX_LEN)
		return -1;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			   c == '-' || c == '_' || c == '.'))
			return -1;
		out[i] = c;
	}
	out[len] = '\0';
	/* empty labels ("a..b", ".a") are not names */
	if (out[0] == '.' || strstr(out, ".."))
		return -1;
	return 0;
}

bool names_in_domain(const char *name, const char *domain)
{
	size_t n = strlen(name), d = strlen(domain);

	if (n == d)
		return strcmp(name, domain) == 0;
	return n > d && name[n - d - 1] == '.' && strcmp(name + n - d, domain) == 0;
}

bool names_user_in_group(const char *user, const char *group)
{
	struct passwd *pw = getpwnam(user);
	struct group *gr = getgrnam(group);

	if (!pw || !gr)
		return false;
	if (pw->pw_gid == gr->gr_gid)
		return true;
	int n = 64;
	for (int tries = 0; tries < 3; tries++) {
		gid_t *groups = malloc(sizeof(gid_t) * (size_t)n);
		if (!groups)
			return false;
		int got = n;
		if (getgrouplist(user, pw->pw_gid, groups, &got) >= 0) {
			bool found = false;
			for (int i = 0; i < got; i++)
				if (groups[i] == gr->gr_gid)
					found = true;
			free(groups);
			return found;
		}
		free(groups);
		n = got > n ? got : n * 2;
	}
	return false;
}

bool names_is_interface(const char *word)
{
	return !strchr(word, '.') && strlen(word) < IF_NAMESIZE &&
	       if_nametoindex(word) != 0;
}
