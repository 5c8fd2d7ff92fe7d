/* System password check: getspnam + crypt_r, constant-time compare. */
#include <crypt.h>
#include <dlfcn.h>
#include <pwd.h>
#include <shadow.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth_passwd.h"

typedef char *(*crypt_r_fn)(const char *, const char *, struct crypt_data *);

static crypt_r_fn load_crypt(void)
{
	static crypt_r_fn fn;

	if (!fn) {
		void *lib = dlopen("libcrypt.so.1", RTLD_NOW);
		if (lib)
			*(void **)&fn = dlsym(lib, "crypt_r");
	}
	return fn;
}

static int same(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned char diff = (unsigned char)(la != lb);

	for (size_t i = 0; i < la && i < lb; i++)
		diff |= (unsigned char)(a[i] ^ b[i]);
	return diff == 0;
}

int auth_passwd(const char *user, const char *password, char *reason,
		size_t len)
{
	struct passwd *pw = getpwnam(user);
	struct spwd *sp = pw ? getspnam(user) : NULL;
	const char *hash = sp ? sp->sp_pwdp : pw ? pw->pw_passwd : NULL;
	long today = (long)(time(NULL) / 86400);

	if (!pw || !hash) {
		snprintf(reason, len, "system password authentication failed: "
			 "unknown user");
		return -1;
	}
	if (hash[0] == '!' || hash[0] == '*' || hash[0] == '\0') {
		snprintf(reason, len, "system password authentication failed: "
			 "account locked or without a password");
		return -1;
	}
	/* -1 is "never"; 0 (chage -E 0) expired on 1970-01-01 */
	if (sp && sp->sp_expire >= 0 && today >= sp->sp_expire) {
		snprintf(reason, len, "system password authentication failed: "
			 "account expired");
		return -1;
	}
	if (sp && (sp->sp_lstchg == 0 ||
		   (sp->sp_max >= 0 && sp->sp_lstchg > 0 &&
		    today > sp->sp_lstchg + sp->sp_max))) {
		snprintf(reason, len, "system password authentication failed: "
			 "password must be changed");
		return -1;
	}
	crypt_r_fn crypt_fn = load_crypt();
	struct crypt_data *cd = calloc(1, sizeof(*cd));
	if (!crypt_fn || !cd) {
		free(cd);
		snprintf(reason, len, "system password authentication failed: "
			 "libcrypt unavailable");
		return -1;
	}
	const char *out = crypt_fn(password, hash, cd);
	int ok = out && out[0] != '*' && same(out, hash);
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	if (!ok) {
		snprintf(reason, len, "system password authentication failed: "
			 "wrong password");
		return -1;
	}
	return 0;
}
