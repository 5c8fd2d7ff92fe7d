/* sockd-check: what would sockd-session do with this connection?
 * It loads the rules with the same parser and decides with the same
 * matcher; only the facts come from the command line. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "conf_image.h"
#include "conf_lazy.h"
#include "decide.h"
#include "lint.h"
#include "spec.h"

enum { EXIT_PASS = 0, EXIT_BLOCK = 1, EXIT_ERROR = 2 };

#define DEFAULT_CONF SOCKD_SYSCONFDIR "/sockd.conf"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: sockd-check [-f file] -t [--strict]   syntax and lint\n"
		"       sockd-check [-f file] -T              canonical form\n"
		"       sockd-check [-f file] -C SPEC         one decision\n"
		"       sockd-check [-f file] --test CASES    a file of decisions\n"
		"       sockd-check [-f file] --compile       write file.compiled\n"
		"SPEC: from=ADDR[,fromport=N][,laddr=ADDR][,lport=N][,to=ADDR|NAME]"
		"[,port=N]\n      [,addrs=A+B][,command=C][,method=M][,user=U]"
		"[,group=G][,version=4|5][,protocol=tcp|udp]\n");
}

/* Prints the diagnostics of a load; with QUIET_WARNINGS only errors. */
static void print_diags(const char *file, struct conf_diags *d,
			int quiet_warnings, int *nwarn)
{
	char line[400];

	*nwarn = 0;
	for (size_t i = 0; i < d->n; i++) {
		if (d->v[i].level == DIAG_WARNING) {
			(*nwarn)++;
			if (quiet_warnings)
				continue;
		}
		conf_diag_format(NULL, file, &d->v[i], line, sizeof(line));
		fprintf(stderr, "%s\n", line);
	}
	if (d->nerrors > d->n)
		fprintf(stderr, "%s: %zu more errors not shown\n", file,
			d->nerrors - d->n);
	conf_diags_free(d);
}

/* A decision the image could not answer (damage, an interface that
 * appeared since the compile) was taken from the whole rules. */
static void print_image_problem(const char *problem, void *arg)
{
	(void)arg;
	fprintf(stderr, "%s\n", problem);
}

/* Loads FILE the way sockd-session does: from its compiled image when
 * that is current, else from the text (printing its errors). */
static struct conf *load(const char *file, int *nwarn)
{
	struct conf_diags d;
	char why[300];
	bool image;
	struct conf *c = conf_open(file, &d, &image, why, sizeof(why));

	if (!image && why[0])
		fprintf(stderr, "%s.compiled: note: not used: %s\n", file, why);
	print_diags(file, &d, 1, nwarn);
	conf_lazy_on_problem(c, print_image_problem, NULL);
	return c;
}

/* The canonical form of C, as a string (for comparing two loads). */
static char *dump_string(const struct conf *c)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	conf_dump(c, f);
	fclose(f);
	return buf;
}

/* -t: the image sockd-session would load must be current and say what
 * the text says; a stale one only costs speed, but say so. */
static int lint_image(const struct conf *text, const char *file)
{
	char image[4096], why[300];

	if (conf_image_path(file, image, sizeof(image)))
		return 0;
	struct conf *c = conf_image_load(file, image, why, sizeof(why));
	if (!c) {
		if (!why[0])
			return 0;
		fprintf(stderr, "%s: warning: not used by sockd-session: %s; run "
			"sockd-check -f %s --compile\n", image, why, file);
		return 1;
	}
	char *a = dump_string(text), *b = dump_string(c);
	int differ = !a || !b || strcmp(a, b);
	if (differ)
		fprintf(stderr, "%s: warning: does not say what %s says; run "
			"sockd-check -f %s --compile\n", image, file, file);
	free(a);
	free(b);
	conf_free(c);
	return differ;
}

static int compile(const char *file)
{
	char image[4096], err[400];
	struct conf_diags d;
	int nwarn;

	if (conf_image_path(file, image, sizeof(image))) {
		fprintf(stderr, "sockd-check: %s: path too long\n", file);
		return EXIT_ERROR;
	}
	struct conf *c = conf_image_compile(file, image, &d, err, sizeof(err));
	print_diags(file, &d, 0, &nwarn);
	if (!c) {
		if (err[0])
			fprintf(stderr, "sockd-check: %s\n", err);
		return EXIT_ERROR;
	}
	printf("%s: %zu client rules, %zu socks rules\n", image, c->nclient,
	       c->nsocks);
	conf_free(c);
	return EXIT_PASS;
}

static int print_decision(const struct conf *c, const char *spec_text)
{
	struct check_spec s;
	struct outcome o;
	char err[400], where[300];

	if (spec_parse(spec_text, &s, err, sizeof(err))) {
		fprintf(stderr, "sockd-check: SPEC: %s\n", err);
		return EXIT_ERROR;
	}
	if (decide_spec(c, &s, &o) == EXIT_ERROR) {
		fprintf(stderr, "sockd-check: %s\n", o.error);
		return EXIT_ERROR;
	}
	decide_where(c, o.rule, where, sizeof(where));
	printf("%s %s%s\n%s", o.rc == 0 ? "pass" : "block", where,
	       o.rule ? "" : " (no rule matched)", o.explain);
	return o.rc;
}

/* One case line: "pass|block SPEC [@LINE|@default]". */
static int run_case(const struct conf *c, char *line, unsigned lineno,
		    const char *file)
{
	char *p = line + strspn(line, " \t");
	char *verb = strsep(&p, " \t");
	int want;

	if (!strcmp(verb, "pass"))
		want = EXIT_PASS;
	else if (!strcmp(verb, "block"))
		want = EXIT_BLOCK;
	else {
		printf("error %s:%u: a case begins with pass or block\n", file,
		       lineno);
		return -1;
	}
	p += p ? strspn(p, " \t") : 0;
	char *at = p ? strchr(p, '@') : NULL;
	if (at) {
		*at++ = '\0';
		at[strcspn(at, " \t\r")] = '\0';
	}
	if (!p || !*p) {
		printf("error %s:%u: no SPEC\n", file, lineno);
		return -1;
	}
	p[strcspn(p, " \t\r")] = '\0';
	struct check_spec s;
	struct outcome o;
	char err[400], where[300];
	if (spec_parse(p, &s, err, sizeof(err))) {
		printf("error %s:%u: %s\n", file, lineno, err);
		return -1;
	}
	if (decide_spec(c, &s, &o) == EXIT_ERROR) {
		printf("error %s:%u: %s\n", file, lineno, o.error);
		return -1;
	}
	decide_where(c, o.rule, where, sizeof(where));
	bool ok = o.rc == want;
	if (ok && at) {
		if (!strcmp(at, "default"))
			ok = o.rule == NULL;
		else
			ok = o.rule && o.rule->line == strtoul(at, NULL, 10);
	}
	printf("%s %s:%u: %s %s -> %s %s\n", ok ? "ok" : "FAIL", file, lineno,
	       want == EXIT_PASS ? "pass" : "block", p,
	       o.rc == 0 ? "pass" : "block", where);
	if (!ok)
		printf("%s", o.explain);
	return ok ? 0 : -1;
}

static int run_cases(const struct conf *c, const char *file)
{
	FILE *in = fopen(file, "r");
	char line[4096];
	unsigned lineno = 0, passed = 0, failed = 0;

	if (!in) {
		perror(file);
		return EXIT_ERROR;
	}
	while (fgets(line, sizeof(line), in)) {
		lineno++;
		line[strcspn(line, "\n")] = '\0';
		char *p = line + strspn(line, " \t");
		if (!*p || *p == '#')
			continue;
		if (run_case(c, p, lineno, file) == 0)
			passed++;
		else
			failed++;
	}
	fclose(in);
	printf("%u passed, %u failed\n", passed, failed);
	return failed ? EXIT_BLOCK : EXIT_PASS;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "test", required_argument, NULL, 'X' },
		{ "strict", no_argument, NULL, 'S' },
		{ "compile", no_argument, NULL, 'K' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 } };
	const char *file = DEFAULT_CONF, *spec = NULL, *cases = NULL;
	int mode = 0, strict = 0, opt, nwarn;

	while ((opt = getopt_long(argc, argv, "f:tTC:hv", longopts, NULL)) != -1) {
		switch (opt) {
		case 'f': file = optarg; break;
		case 't': mode = 't'; break;
		case 'T': mode = 'T'; break;
		case 'C': mode = 'C'; spec = optarg; break;
		case 'X': mode = 'X'; cases = optarg; break;
		case 'S': strict = 1; break;
		case 'K': mode = 'K'; break;
		case 'v': printf("sockd-check %s\n", SOCKD_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return EXIT_ERROR;
		}
	}
	if (!mode || optind != argc) {
		usage(stderr);
		return EXIT_ERROR;
	}
	if (mode == 'K')
		return compile(file);
	struct conf *c;
	if (mode == 't') {  /* the text itself, with its warnings */
		struct conf_diags d;
		c = conf_load(file, &d);
		print_diags(file, &d, 0, &nwarn);
	} else {
		c = load(file, &nwarn);
	}
	if (!c)
		return EXIT_ERROR;
	int rc = EXIT_PASS;
	if (mode == 't') {
		struct lint l = { c, stderr, 0 };
		nwarn += lint_conf(&l);
		nwarn += lint_image(c, file);
		if (strict && nwarn)
			rc = EXIT_ERROR;
	} else if (mode == 'T') {
		conf_dump(c, stdout);
	} else if (mode == 'C') {
		rc = print_decision(c, spec);
	} else {
		rc = run_cases(c, cases);
	}
	conf_free(c);
	return rc;
}
