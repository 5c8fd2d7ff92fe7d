/* Lint of a loaded conf: shadowed rules, open client rules, rules that
 * let clients reach the proxy host's own services, missing PAM services,
 * unprotected GSSAPI, external addresses this host lacks. */
#ifndef SOCKD_CHECK_LINT_H
#define SOCKD_CHECK_LINT_H

#include <stdio.h>

#include "conf.h"

struct lint {
	const struct conf *conf;
	FILE *out;
	int warnings;
};

/* Prints one "file:line: warning: ..." per finding.  Returns the count. */
int lint_conf(struct lint *l);

#endif
