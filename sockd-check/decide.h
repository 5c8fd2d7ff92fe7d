/* sockd-check's decision for one SPEC. */
#ifndef SOCKD_CHECK_DECIDE_H
#define SOCKD_CHECK_DECIDE_H

#include "conf.h"
#include "spec.h"

struct outcome {
	int rc;                         /* 0 pass, 1 block, 2 error */
	const struct rule *rule;        /* deciding rule; NULL = default */
	const struct rule *client_rule;
	char explain[4096];             /* indented lines, one per fact */
	char error[400];                /* with rc 2 */
};

/* Decides S against C as sockd-session would.  Returns o->rc. */
int decide_spec(const struct conf *c, const struct check_spec *s,
		struct outcome *o);

/* "socks-rule #3 FILE:12" or "default". */
void decide_where(const struct conf *c, const struct rule *r, char *buf,
		  size_t len);

#endif
