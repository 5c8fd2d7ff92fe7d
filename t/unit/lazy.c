/* Unit tests: decisions from a compiled image read rule by rule through
 * its index (conf_lazy.c) must be the text's decisions, always.
 *
 * - Random rule files (nested and overlapping IPv4 and IPv6 prefixes of
 *   every length, 0/0, domains, ports, commands, client and socks rules)
 *   are compiled, and thousands of random requests are decided from the
 *   text and from the image: verdict, deciding rule and missing fact must
 *   be the same, for rules_first_possible_pass too.
 * - Every byte of the index's checked regions (entries, records, rule
 *   blobs) of a compiled file is damaged in turn: each decision must still
 *   be the text's (the damage is found where it is read and the whole
 *   rules decide), and damage that was read must have been reported.
 * - Files with groups of thousands of entries of one prefix length (the
 *   fences over blocks of entries, keys repeated across blocks, IPv6
 *   fences narrowed one by one before a chunk is read) decide as the
 *   text, and every byte of their fences damaged in turn changes no
 *   decision.
 * - Damage in the small part is refused at open (its checksum).
 * - A decision that would read too many rules one by one reads them all,
 *   silently; conf_dump() of a lazy conf prints every rule. */
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "addr.h"
#include "conf.h"
#include "conf_image.h"
#include "conf_image_int.h"
#include "conf_index.h"
#include "conf_lazy.h"
#include "rules_match.h"
#include "tap.h"

static char dir[] = "/tmp/sockd-lazy-XXXXXX";
static unsigned long long rng = 0x2545f4914f6cdd1dull;

static unsigned rnd(unsigned n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (unsigned)(rng % n);
}

/* Addresses drawn from a few small neighbourhoods, so that prefixes of
 * every length nest and overlap and requests fall inside them. */
static void rand_v4(char *buf, size_t len)
{
	static const char *bases[] = { "10.1", "10.2", "192.168", "127.0" };
	snprintf(buf, len, "%s.%u.%u", bases[rnd(4)], rnd(4), rnd(8));
}

static void rand_v6(char *buf, size_t len)
{
	snprintf(buf, len, "2001:db8:%x::%x", rnd(3), rnd(6));
}

static void rand_addr(char *buf, size_t len)
{
	char a[64];
	unsigned k = rnd(10);

	if (k == 0) {
		snprintf(buf, len, "0/0");
	} else if (k == 1) {
		snprintf(buf, len, ".example%u.com", rnd(2));
	} else if (k < 7) {
		rand_v4(a, sizeof(a));
		snprintf(buf, len, "%s/%u", a, rnd(33));
	} else {
		rand_v6(a, sizeof(a));
		snprintf(buf, len, "%s/%u", a, 16 + rnd(113));
	}
	/* host bits set are a warning the parser fixes: keep them */
}

static void rand_port(char *buf, size_t len)
{
	static const char *ops[] = { "eq", "ne", "lt", "gt", "le", "ge" };
	unsigned k = rnd(6);

	if (k < 3)
		buf[0] = '\0';
	else if (k < 5)
		snprintf(buf, len, " port %s %u", ops[rnd(6)], 1 + rnd(8));
	else
		snprintf(buf, len, " port %u - %u", 1 + rnd(4), 4 + rnd(4));
}

static const char *commands[] = {
	"", " command: connect", " command: bind udpassociate",
	" command: bindreply udpreply", " command: connect bind",
};

/* When set, rules come in blocks of 40 whose from: (and, shifted by 20,
 * whose to:) is 0/0: the rules a side always visits are then runs, which
 * the index stores as runs instead of a bitmap. */
static bool blocky;

static void block_addr(size_t i, size_t shift, char *buf, size_t len)
{
	char a[64];

	if (!blocky)
		return;
	if ((i + shift) / 40 % 2 == 0) {
		snprintf(buf, len, "0/0");
	} else if (buf[0] == '.' || strcmp(buf, "0/0") == 0) {
		rand_v4(a, sizeof(a));   /* the other blocks: literals only */
		snprintf(buf, len, "%s/%u", a, 8 + rnd(25));
	}
}

static char *random_conf(size_t nclient, size_t nsocks)
{
	size_t cap = (nclient + nsocks) * 200 + 200, len = 0;
	char *t = malloc(cap);
	char from[80], to[80], fp[40], tp[40];

	len += (size_t)snprintf(t + len, cap - len, "socksmethod: none\n");
	for (size_t i = 0; i < nclient; i++) {
		rand_addr(from, sizeof(from));
		if (from[0] == '.')
			strcpy(from, "0/0");  /* a client has no name */
		rand_port(fp, sizeof(fp));
		rand_addr(to, sizeof(to));
		if (to[0] == '.')
			strcpy(to, "0/0");
		len += (size_t)snprintf(t + len, cap - len,
			"client %s { from: %s%s to: %s }\n",
			rnd(3) ? "pass" : "block", from, fp, to);
	}
	for (size_t i = 0; i < nsocks; i++) {
		rand_addr(from, sizeof(from));
		if (from[0] == '.')
			strcpy(from, "0/0");
		block_addr(i, 0, from, sizeof(from));
		rand_port(fp, sizeof(fp));
		rand_addr(to, sizeof(to));
		block_addr(i, 20, to, sizeof(to));
		rand_port(tp, sizeof(tp));
		len += (size_t)snprintf(t + len, cap - len,
			"socks %s { from: %s%s to: %s%s%s }\n",
			rnd(2) ? "pass" : "block", from, fp, to, tp,
			commands[rnd(5)]);
	}
	return t;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f || fputs(text, f) < 0 || fclose(f)) {
		perror(path);
		exit(1);
	}
}

/* A random request, with some facts left out as sockd-check allows. */
struct request {
	struct sockaddr_storage client, local, dest;
	char name[64];
	struct facts f;
};

static void rand_request(struct request *r)
{
	char a[64];
	static const unsigned cmds[] = { CMD_CONNECT, CMD_BIND, CMD_UDPASSOCIATE,
					 CMD_BINDREPLY, CMD_UDPREPLY };

	memset(r, 0, sizeof(*r));
	(rnd(4) ? rand_v4 : rand_v6)(a, sizeof(a));
	addr_parse_literal(a, &r->client);
	addr_set_port(&r->client, (uint16_t)(1 + rnd(8)));
	(rnd(4) ? rand_v4 : rand_v6)(a, sizeof(a));
	addr_parse_literal(a, &r->local);
	addr_set_port(&r->local, (uint16_t)(1 + rnd(8)));
	r->f.client = &r->client;
	r->f.client_port_known = rnd(4) != 0;
	r->f.local = rnd(5) ? &r->local : NULL;
	r->f.local_port_known = r->f.local && rnd(4);
	r->f.version = 5;
	r->f.method = METHOD_NONE;
	r->f.command = cmds[rnd(5)];
	unsigned k = rnd(6);
	if (k == 0) {
		snprintf(r->name, sizeof(r->name), "www.example%u.com", rnd(2));
		r->f.dest_name = r->name;
	} else if (k > 1) {
		(rnd(3) ? rand_v4 : rand_v6)(a, sizeof(a));
		addr_parse_literal(a, &r->dest);
		r->f.dest = &r->dest;
	}
	r->f.dest_port = (uint16_t)(1 + rnd(8));
	r->f.dest_port_known = rnd(5) != 0;
}

/* The deciding rule as "set:number", for comparing two confs. */
static void describe(enum match_result m, const struct verdict *v, char *buf,
		     size_t len)
{
	const struct rule *r = m == MATCH_MISSING ? v->missing_rule : v->rule;

	snprintf(buf, len, "%d %d %s %s%u %s", m, v->pass,
		 v->unspecified ? "unspec" : "",
		 r ? (r->set == RULE_CLIENT ? "c" : "s") : "-",
		 r ? r->number : 0, v->missing ? v->missing : "");
}

static int decide_all(const struct conf *c, const struct request *r, char *buf,
		      size_t len)
{
	struct verdict v;
	char a[100], b[100], d[40];
	enum match_result m = rules_decide_client(c, &r->f, &v);

	describe(m, &v, a, sizeof(a));
	m = rules_decide_socks(c, &r->f, &v);
	describe(m, &v, b, sizeof(b));
	const struct rule *p = rules_first_possible_pass(c, &r->f);
	snprintf(d, sizeof(d), "%u", p ? p->number : 0);
	return snprintf(buf, len, "[%s] [%s] [%s]", a, b, d);
}

static unsigned problems;
static void count_problem(const char *problem, void *arg)
{
	(void)problem;
	(void)arg;
	problems++;
}

static struct conf *open_image(const char *conf, bool *used)
{
	struct conf_diags d;
	char why[300];
	struct conf *c = conf_open(conf, &d, used, why, sizeof(why));

	conf_diags_free(&d);
	conf_lazy_on_problem(c, count_problem, NULL);
	return c;
}

static void compile(const char *conf)
{
	char image[4096], err[300];
	struct conf_diags d;

	conf_image_path(conf, image, sizeof(image));
	struct conf *c = conf_image_compile(conf, image, &d, err, sizeof(err));
	if (!c) {
		fprintf(stderr, "compile %s: %s %s\n", conf, err,
			d.n ? d.v[0].msg : "");
		exit(1);
	}
	conf_free(c);
	conf_diags_free(&d);
}

/* N random files, M requests each: the image says what the text says. */
static void differential(unsigned files, unsigned requests)
{
	char conf[4096];
	unsigned differ = 0, decided = 0, lazy = 0;

	snprintf(conf, sizeof(conf), "%s/random.conf", dir);
	for (unsigned n = 0; n < files; n++) {
		blocky = n % 3 == 1;
		char *text = random_conf(1 + rnd(20), blocky ? 200 + rnd(400) :
					 1 + rnd(n % 4 == 0 ? 400 : 60));
		write_file(conf, text);
		free(text);
		struct conf_diags d;
		struct conf *t = conf_load(conf, &d);
		if (!t) {
			for (size_t k = 0; k < d.n && differ < 3; k++)
				if (d.v[k].level == DIAG_ERROR)
					tap_diag("random file: line %u: %s", d.v[k].line,
						 d.v[k].msg);
			differ++;
			conf_diags_free(&d);
			continue;
		}
		conf_diags_free(&d);
		compile(conf);
		bool used;
		struct conf *c = open_image(conf, &used);
		if (!c || !used || !c->lazy) {
			differ++;
			conf_free(t);
			conf_free(c);
			continue;
		}
		for (unsigned i = 0; i < requests; i++) {
			struct request r;
			char a[400], b[400];
			rand_request(&r);
			decide_all(t, &r, a, sizeof(a));
			decide_all(c, &r, b, sizeof(b));
			decided++;
			if (strcmp(a, b)) {
				if (differ++ < 5)
					tap_diag("file %u request %u: text %s image %s",
						 n, i, a, b);
			}
		}
		lazy += conf_lazy_fd(c) >= 0;   /* never fell back */
		conf_free(t);
		conf_free(c);
	}
	blocky = false;
	tap_ok(differ == 0, "%u random files, %u decisions: the image decides "
	       "as the text (%u differ; a third of the files with runs of "
	       "rules always visited)", files, decided, differ);
	tap_ok(lazy > 0, "and most decided rule by rule (%u of %u files never "
	       "read the rules whole)", lazy, files);
	tap_ok(problems == 0, "no problem reported on sound images");
}

static long file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) ? -1 : (long)st.st_size;
}

/* Flips one bit of the byte at AT of FD (which bit: by AT), keeping the
 * byte as it was in *ORIG for the caller to write back. */
static bool flip_bit(int fd, long at, unsigned char *orig)
{
	unsigned char bad;

	if (pread(fd, orig, 1, at) != 1)
		return false;
	bad = *orig ^ (unsigned char)(1u << (at % 8));
	return pwrite(fd, &bad, 1, at) == 1;
}

/* Where the index section begins, and its small part's size. */
static void section_bounds(const char *image, long *section, long *small)
{
	int fd = open(image, O_RDONLY);
	struct image_header h = { 0 };
	struct index_header x = { 0 };

	if (img_pread_exact(fd, &h, sizeof(h), 0))
		h.body_size = 0;
	*section = (long)(sizeof(h) + h.body_size);
	if (img_pread_exact(fd, &x, sizeof(x), (uint64_t)*section))
		x.small_size = 0;
	*small = (long)x.small_size;
	close(fd);
}

/* Writes a random rules file NAME (NCLIENT and NSOCKS rules) to CONF,
 * compiles it and returns it loaded from the text. */
static struct conf *random_file(const char *name, size_t nclient,
				size_t nsocks, char *conf, size_t len)
{
	struct conf_diags d;

	snprintf(conf, len, "%s/%s", dir, name);
	char *text = random_conf(nclient, nsocks);
	write_file(conf, text);
	free(text);
	struct conf *t = conf_load(conf, &d);
	conf_diags_free(&d);
	compile(conf);
	return t;
}

static void damage_sweep(void)
{
	char conf[4096], image[4096];
	struct request reqs[40];
	char want[40][400];

	struct conf *t = random_file("damage.conf", 4, 40, conf, sizeof(conf));
	conf_image_path(conf, image, sizeof(image));
	for (int i = 0; i < 40; i++) {
		rand_request(&reqs[i]);
		reqs[i].f.client_port_known = true;
		decide_all(t, &reqs[i], want[i], sizeof(want[i]));
	}
	long size = file_size(image), section, small;
	section_bounds(image, &section, &small);
	int fd = open(image, O_RDWR);
	unsigned tried = 0, wrong = 0, reported = 0, refused = 0;
	for (long at = section + small; at < size; at++) {
		unsigned char orig;
		if (!flip_bit(fd, at, &orig))
			break;
		bool used;
		unsigned before = problems;
		struct conf *c = open_image(conf, &used);
		tried++;
		if (!c || !used) {
			refused++;
		} else {
			for (int i = 0; i < 40; i++) {
				char got[400];
				decide_all(c, &reqs[i], got, sizeof(got));
				if (strcmp(got, want[i]) && wrong++ < 5)
					tap_diag("byte %ld: want %s got %s", at - section,
						 want[i], got);
			}
			reported += problems != before;
			conf_free(c);
		}
		if (pwrite(fd, &orig, 1, at) != 1)
			break;
	}
	tap_ok(tried > 1000 && wrong == 0,
	       "every byte of the index's entries, records and rules damaged in "
	       "turn (%u): every decision is still the text's", tried);
	tap_ok(reported > tried / 4, "damage that decisions read was reported "
	       "(%u of %u; the rest lay where no request looked)", reported,
	       tried);
	(void)refused;

	/* the small part: refused at open by its checksum */
	unsigned char orig, bad;
	long at = section + small / 2;
	if (pread(fd, &orig, 1, at) == 1) {
		bad = orig ^ 4;
		(void)!pwrite(fd, &bad, 1, at);
		char why[300];
		struct conf *c = conf_lazy_open(conf, image, why, sizeof(why));
		tap_ok(!c && strstr(why, "checksum"),
		       "a flipped bit in the index's small part is refused (%s)",
		       why);
		conf_free(c);
		bool used;
		c = open_image(conf, &used);
		char got[400];
		decide_all(c, &reqs[0], got, sizeof(got));
		tap_ok(c && !used && strcmp(got, want[0]) == 0,
		       "and conf_open decides from the text instead");
		conf_free(c);
		(void)!pwrite(fd, &orig, 1, at);
	}
	/* a table of the small part laid over the globals, resealed past
	 * every checksum: the globals are relocated in place, so it would be
	 * read back as pointers (a crash, found by helper-15's review) */
	struct index_header x;
	if (img_pread_exact(fd, &x, sizeof(x), (uint64_t)section) == 0) {
		struct index_header y = x;
		y.dims[RULE_SOCKS][DIM_FROM].always_runs = 1;
		y.dims[RULE_SOCKS][DIM_FROM].always_off =
			x.globals_off + offsetof(struct conf, image_block);
		(void)!pwrite(fd, &y, sizeof(y), section);
		conf_image_reseal(image);
		char why[300];
		struct conf *c = conf_lazy_open(conf, image, why, sizeof(why));
		tap_ok(!c && strstr(why, "corrupt (index)"),
		       "rules always visited laid over the globals are refused "
		       "(%s)", why);
		conf_free(c);
		(void)!pwrite(fd, &x, sizeof(x), section);
		conf_image_reseal(image);
	}
	close(fd);
	conf_free(t);
}

/* Where the fences of IMAGE's index lie, from the start of the file. */
static void fence_bounds(const char *image, long *start, long *len)
{
	long section, small;
	int fd = open(image, O_RDONLY);
	struct index_header x = { 0 };

	section_bounds(image, &section, &small);
	if (img_pread_exact(fd, &x, sizeof(x), (uint64_t)section))
		x.fences_size = 0;
	close(fd);
	*start = section + (long)x.fences_off;
	*len = (long)x.fences_size;
}

/* NRULES socks rules whose from: is one of KEYS prefixes of one length
 * (IPv4 /24 or IPv6 /48), some with a port; a request from one of
 * KEYS + 2 networks (two match nothing). */
static char *big_group_conf(bool v6, unsigned nrules, unsigned keys)
{
	size_t cap = (size_t)nrules * 100 + 200, len = 0;
	char *t = malloc(cap);

	len += (size_t)snprintf(t + len, cap - len, "socksmethod: none\n"
				"client pass { from: 0/0 to: 0/0 }\n");
	for (unsigned i = 0; i < nrules; i++) {
		char from[64], port[32] = "";
		if (v6)
			snprintf(from, sizeof(from), "2001:db8:%x::/48", rnd(keys));
		else
			snprintf(from, sizeof(from), "10.1.%u.0/24", rnd(keys));
		if (rnd(2))
			snprintf(port, sizeof(port), " port = %u", 1 + rnd(8));
		len += (size_t)snprintf(t + len, cap - len,
			"socks %s { from: %s to: %s%s }\n",
			rnd(2) ? "pass" : "block", from,
			rnd(4) ? "0/0" : "192.168.1.0/24", port);
	}
	return t;
}

static void big_request(bool v6, unsigned keys, struct request *r)
{
	char a[64];

	memset(r, 0, sizeof(*r));
	if (v6)
		snprintf(a, sizeof(a), "2001:db8:%x::%x", rnd(keys + 2), 1 + rnd(9));
	else
		snprintf(a, sizeof(a), "10.1.%u.%u", rnd(keys + 2), 1 + rnd(250));
	addr_parse_literal(a, &r->client);
	addr_set_port(&r->client, 4000);
	addr_parse_literal(rnd(2) ? "192.168.1.7" : "198.51.100.1", &r->dest);
	r->f.client = &r->client;
	r->f.client_port_known = true;
	r->f.version = 5;
	r->f.method = METHOD_NONE;
	r->f.command = CMD_CONNECT;
	r->f.dest = &r->dest;
	r->f.dest_port = (uint16_t)(1 + rnd(8));
	r->f.dest_port_known = true;
}

static void big_groups(void)
{
	static const struct { bool v6; unsigned rules, keys; } files[] = {
		{ false, 3000, 48 },   /* 47 blocks, ~62 rules a key */
		{ true, 5000, 100 },   /* 79 blocks: more fences than a chunk */
		{ false, 200, 3 },     /* every block one key */
	};
	char conf[4096], image[4096];

	for (unsigned f = 0; f < sizeof(files) / sizeof(files[0]); f++) {
		snprintf(conf, sizeof(conf), "%s/big%u.conf", dir, f);
		char *text = big_group_conf(files[f].v6, files[f].rules,
					    files[f].keys);
		write_file(conf, text);
		free(text);
		struct conf_diags d;
		struct conf *t = conf_load(conf, &d);
		conf_diags_free(&d);
		compile(conf);
		conf_image_path(conf, image, sizeof(image));
		enum { NREQ = 60 };
		struct request reqs[NREQ];
		char want[NREQ][400];
		for (int i = 0; i < NREQ; i++) {
			big_request(files[f].v6, files[f].keys, &reqs[i]);
			decide_all(t, &reqs[i], want[i], sizeof(want[i]));
		}
		bool used;
		unsigned differ = 0, before = problems;
		struct conf *c = open_image(conf, &used);
		for (int i = 0; c && i < NREQ; i++) {
			char got[400];
			decide_all(c, &reqs[i], got, sizeof(got));
			if (strcmp(got, want[i]) && differ++ < 3)
				tap_diag("request %d: want %s got %s", i, want[i], got);
		}
		tap_ok(c && used && differ == 0 && conf_lazy_fd(c) >= 0 &&
		       problems == before,
		       "%u %s rules over %u prefixes: %d decisions through the "
		       "fences as the text's (%u differ)", files[f].rules,
		       files[f].v6 ? "IPv6" : "IPv4", files[f].keys, NREQ, differ);
		conf_free(c);

		/* every byte of the fences damaged in turn */
		long start, len;
		unsigned wrong = 0, reported = 0;
		fence_bounds(image, &start, &len);
		int fd = open(image, O_RDWR);
		long step = len > 400 ? 3 : 1;   /* bounded time */
		for (long at = start; at < start + len; at += step) {
			unsigned char orig;
			if (!flip_bit(fd, at, &orig))
				break;
			before = problems;
			c = open_image(conf, &used);
			for (int i = 0; c && i < NREQ; i++) {
				char got[400];
				decide_all(c, &reqs[i], got, sizeof(got));
				if (strcmp(got, want[i]) && wrong++ < 3)
					tap_diag("fence byte %ld: want %s got %s",
						 at - start, want[i], got);
			}
			reported += problems != before;
			conf_free(c);
			if (pwrite(fd, &orig, 1, at) != 1)
				break;
		}
		close(fd);
		tap_ok(len > 0 && wrong == 0 && reported > 0,
		       "and its %ld fence bytes damaged in turn (every %ld.): "
		       "every decision still the text's (%u of them reported)",
		       len, step, reported);
		conf_free(t);
	}
}

/* Rules the index cannot skip (0/0 everywhere): past LAZY_MAX_VISITS the
 * decision reads them all, silently, and decides the same. */
static void many_visits(void)
{
	char conf[4096];
	size_t cap = 200 * 100 + 200, len = 0;
	char *text = malloc(cap);

	snprintf(conf, sizeof(conf), "%s/many.conf", dir);
	len += (size_t)snprintf(text + len, cap - len,
		"socksmethod: none\nclient pass { from: 0/0 to: 0/0 }\n");
	for (int i = 0; i < 199; i++)
		len += (size_t)snprintf(text + len, cap - len,
			"socks block { from: 0/0 to: 0/0 port = %d }\n", 1000 + i);
	snprintf(text + len, cap - len, "socks pass { from: 0/0 to: 0/0 }\n");
	write_file(conf, text);
	free(text);
	compile(conf);
	bool used;
	unsigned before = problems;
	struct conf *c = open_image(conf, &used);
	struct request r;
	rand_request(&r);
	r.f.command = CMD_CONNECT;
	r.f.dest_port = 80;
	r.f.dest_port_known = true;
	struct verdict v;
	tap_ok(c && used && conf_lazy_fd(c) >= 0,
	       "200 rules of 0/0: opened lazily");
	tap_ok(c && rules_decide_socks(c, &r.f, &v) == MATCH_YES && v.pass &&
	       v.rule && v.rule->number == 200 && conf_lazy_fd(c) < 0 &&
	       problems == before,
	       "a decision past 64 rules reads them all, silently, and finds "
	       "rule 200");
	/* the dump of a lazy conf has every rule */
	c = c ? c : NULL;
	conf_free(c);
	c = open_image(conf, &used);
	char *buf = NULL;
	size_t blen = 0;
	FILE *f = open_memstream(&buf, &blen);
	conf_dump(c, f);
	fclose(f);
	tap_ok(buf && strstr(buf, "# socks-rule #200\n") &&
	       strstr(buf, "port = 1198"), "conf_dump of a lazy conf prints "
	       "every rule");
	free(buf);
	conf_free(c);
}

/* A long run of decisions on one lazy conf (sockd-check --test) keeps
 * what it read for its verdicts: past a budget it reads the rules whole
 * instead of growing, and still decides as the text. */
static void long_run(void)
{
	char conf[4096];
	bool used;
	unsigned differ = 0;

	struct conf *t = random_file("long.conf", 10, 400, conf, sizeof(conf));
	struct conf *c = open_image(conf, &used);
	bool lazy_at_first = c && conf_lazy_fd(c) >= 0;
	for (int i = 0; i < 20000 && t && c; i++) {
		struct request r;
		char a[400], b[400];
		rand_request(&r);
		decide_all(t, &r, a, sizeof(a));
		decide_all(c, &r, b, sizeof(b));
		differ += strcmp(a, b) != 0;
	}
	tap_ok(t && c && lazy_at_first && conf_lazy_fd(c) < 0 && differ == 0,
	       "20 000 decisions on one lazy conf: past its memory budget it "
	       "reads the rules whole, and all decide as the text (%u differ)",
	       differ);
	conf_free(c);
	conf_free(t);
}

/* After the load-all that the UDP relay does before its sandbox, no more
 * reading: the descriptor is no longer needed. */
static void load_all(void)
{
	char conf[4096];
	bool used;

	snprintf(conf, sizeof(conf), "%s/random.conf", dir);
	struct conf *c = open_image(conf, &used);
	tap_ok(c && conf_lazy_fd(c) >= 0 && conf_lazy_load_all(c) == 0 &&
	       conf_lazy_fd(c) < 0, "conf_lazy_load_all reads the rules whole");
	conf_free(c);
}

static long anonymous_kb(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/self/smaps_rollup", "r");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "Anonymous: %ld kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb;
}

/* The pages of the reserve a lazy conf starts in go back to the kernel
 * when asked after it is freed (a TCP relay, idling for hours), not while
 * a conf still uses them. */
static void release_memory(void)
{
	char conf[4096];
	bool used;
	struct request r;
	char want[400], got[400];

	snprintf(conf, sizeof(conf), "%s/small.conf", dir);  /* fits it */
	char *text = random_conf(1, 3);
	write_file(conf, text);
	free(text);
	compile(conf);
	struct conf_diags d;
	struct conf *t = conf_load(conf, &d);
	conf_diags_free(&d);
	struct conf *c = open_image(conf, &used);
	rand_request(&r);
	decide_all(t, &r, want, sizeof(want));
	conf_lazy_release_memory();            /* in use: kept */
	decide_all(c, &r, got, sizeof(got));
	tap_ok(c && used && strcmp(want, got) == 0,
	       "asked to give back memory while a conf is open, it still "
	       "decides as the text");
	conf_free(c);
	conf_free(t);
	/* measured in a new process, as a session's is: this one's long
	 * history blurs its counts */
	long kb[2] = { -1, -1 };
	int p[2];
	if (pipe(p) == 0) {
		pid_t pid = fork();
		if (pid == 0) {
			struct conf *x = open_image(conf, &used);
			decide_all(x, &r, got, sizeof(got));
			conf_free(x);
			anonymous_kb();        /* stdio's buffers settle */
			kb[0] = anonymous_kb();
			conf_lazy_release_memory();
			kb[1] = anonymous_kb();
			_exit(write(p[1], kb, sizeof(kb)) != sizeof(kb));
		}
		close(p[1]);
		if (pid < 0 || read(p[0], kb, sizeof(kb)) != sizeof(kb))
			kb[0] = kb[1] = -1;
		close(p[0]);
		if (pid > 0)
			waitpid(pid, NULL, 0);
	}
	tap_ok(kb[0] > 0 && kb[1] > 0 && kb[0] - kb[1] >= 4,
	       "once it is freed, its pages go back to the kernel (anonymous "
	       "memory %ld -> %ld kB)", kb[0], kb[1]);
	c = open_image(conf, &used);
	decide_all(c, &r, got, sizeof(got));
	tap_ok(c && used && strcmp(want, got) == 0,
	       "and the next conf uses them again");
	conf_free(c);
}

/* external: takes an interface name whether or not the host has it:
 * an image with one is current (it once was refused as "drifted"). */
static void external_interface(void)
{
	char conf[4096];
	bool used;

	snprintf(conf, sizeof(conf), "%s/external.conf", dir);
	write_file(conf, "external: sockdnoif0\nsocksmethod: none\n"
		   "client pass { from: 0/0 to: 0/0 }\n");
	compile(conf);
	struct conf *c = open_image(conf, &used);
	tap_ok(c && used, "an image naming a missing interface in external: "
	       "is used");
	conf_free(c);
	char image[4096], why[300];
	conf_image_path(conf, image, sizeof(image));
	c = conf_image_load(conf, image, why, sizeof(why));
	tap_ok(c != NULL, "and loads whole (%s)", why);
	conf_free(c);
}

int main(void)
{
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	differential(60, 400);
	damage_sweep();
	big_groups();
	many_visits();
	load_all();
	release_memory();
	long_run();
	external_interface();
	char cmd[4200];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd))
		tap_diag("could not remove %s", dir);
	return tap_done();
}
