/* The compiled rules image (see conf_image.h for when it is used).
 *
 * Layout: a header, then the body, which is the struct conf followed by
 * every array it points to, in a fixed order, and last the string pool.
 * In the body a pointer is stored as 1 + its offset from the start of the
 * body (0 stays NULL).  The loader checks each one before it turns it back
 * into an address:
 *   - arrays must lie in the structure part, in the writer's order and
 *     without overlap, so that no pointer is relocated twice;
 *   - strings must start in the pool, and the pool ends with a NUL, so
 *     every string ends inside the buffer;
 *   - enumerations, counts and flags must be values the parser produces. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "conf_image.h"
#include "conf_image_int.h"
#include "conf_index.h"
#include "conf_lazy.h"
#include "names.h"

/* A checksum of the body, against damage (a flipped bit in a rule's
 * pass flag or address is in range and would pass every other check).
 * Eight lanes of add-and-rotate over 8-byte words, so that it runs at
 * the speed of the loads: any single changed word changes the sum.  It is
 * computed while the body is read, chunk by chunk, when the bytes are in
 * the cache anyway.  Not a defence against someone who can write the
 * file: ownership and mode are. */
#define SUM_LANES 8
#define SUM_BLOCK (SUM_LANES * 8)

struct checksum {
	uint64_t lane[SUM_LANES];
};

static void sum_init(struct checksum *s)
{
	for (int k = 0; k < SUM_LANES; k++)
		s->lane[k] = 0x9e3779b97f4a7c15ull * (uint64_t)(k + 1);
}

/* N: a multiple of SUM_BLOCK. */
static void sum_blocks(struct checksum *s, const char *p, size_t n)
{
	uint64_t lane[SUM_LANES], w;

	memcpy(lane, s->lane, sizeof(lane));  /* registers: P may alias S */
	for (size_t i = 0; i < n; i += SUM_BLOCK)
		for (int k = 0; k < SUM_LANES; k++) {
			memcpy(&w, p + i + 8 * k, 8);
			w += lane[k];
			lane[k] = w << 23 | w >> 41;
		}
	memcpy(s->lane, lane, sizeof(lane));
}

static uint64_t sum_final(const struct checksum *s, const char *tail,
			  size_t ntail, size_t total)
{
	uint64_t h = total;

	for (int k = 0; k < SUM_LANES; k++)
		h = (h ^ s->lane[k]) * 0x100000001b3ull;
	for (size_t i = 0; i < ntail; i++)
		h = (h ^ (unsigned char)tail[i]) * 0x100000001b3ull;
	return h;
}

uint64_t image_checksum(const void *data, size_t n)
{
	const char *p = data;
	struct checksum s;
	size_t whole = n / SUM_BLOCK * SUM_BLOCK;

	sum_init(&s);
	sum_blocks(&s, p, whole);
	return sum_final(&s, p + whole, n - whole, n);
}

/* Sizes and offsets of everything the image stores raw: a build whose
 * structures differ (another compiler, a new field) gets a different
 * fingerprint and parses the text instead. */
uint64_t img_layout_fingerprint(void)
{
	static const size_t v[] = {
		sizeof(struct conf), sizeof(struct rule), sizeof(struct rule_addr),
		sizeof(struct log_target), sizeof(struct method_list),
		sizeof(struct name_list), sizeof(struct timeouts),
		sizeof(struct port_spec), sizeof(enum method), sizeof(void *),
		offsetof(struct rule, from), offsetof(struct rule, to),
		offsetof(struct rule, commands), offsetof(struct rule, clientmethods),
		offsetof(struct rule, socksmethods), offsetof(struct rule, users),
		offsetof(struct rule, groups), offsetof(struct rule, log),
		offsetof(struct rule, pam_service), offsetof(struct rule, pam_session),
		offsetof(struct rule, gssapi_keytab),
		offsetof(struct rule, gssapi_service),
		offsetof(struct rule, gssapi_enctype), offsetof(struct rule, timeout),
		offsetof(struct rule, udp_port_lo), offsetof(struct rule_addr, a),
		offsetof(struct rule_addr, name), offsetof(struct rule_addr, port),
		offsetof(struct conf, logout), offsetof(struct conf, errlog),
		offsetof(struct conf, user_privileged),
		offsetof(struct conf, clientmethods), offsetof(struct conf, timeout),
		offsetof(struct conf, external), offsetof(struct conf, rules),
		offsetof(struct conf, image_block),
		offsetof(struct conf, image_mapped), offsetof(struct conf, lazy),
		METHOD_COUNT, ADDR_IFNAME, PORT_RANGE, CMD_ALL, LOGT_FILE,
		ROTATION_SAME_SAME,
	};
	uint64_t h = 1469598103934665603ull;  /* FNV-1a */

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		for (size_t b = 0; b < sizeof(v[i]); b++) {
			h ^= (v[i] >> (8 * b)) & 0xff;
			h *= 1099511628211ull;
		}
	return h;
}

size_t conf_image_header_size(void)
{
	return sizeof(struct image_header);
}

int conf_image_path(const char *conf_file, char *buf, size_t len)
{
	/* not snprintf: on every connection's path, and printf's code is
	 * three pages a new process would otherwise fault in (~12 us each
	 * on a VM) before it logs anything */
	static const char suffix[] = ".compiled";
	size_t n = strlen(conf_file);

	if (n >= len || sizeof(suffix) > len - n)
		return -1;
	memcpy(buf, conf_file, n);
	memcpy(buf + n, suffix, sizeof(suffix));
	return 0;
}

/* ---- writing ------------------------------------------------------- */

size_t img_put(struct imgbuf *b, const void *src, size_t n, size_t align)
{
	size_t off = (b->len + align - 1) / align * align;

	if (b->oom)
		return 0;
	if (off + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < off + n)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p) {
			b->oom = true;
			return 0;
		}
		b->p = p;
		b->cap = cap;
	}
	memset(b->p + b->len, 0, off - b->len);
	if (n && src)
		memcpy(b->p + off, src, n);
	else if (n)
		memset(b->p + off, 0, n);  /* room, filled in later */
	b->len = off + n;
	return off;
}

/* Makes the pointer field at FIELD refer to offset TARGET. */
static void link_field(struct imgbuf *b, size_t field, size_t target)
{
	uintptr_t v = target + 1;

	if (!b->oom)
		memcpy(b->p + field, &v, sizeof(v));
}

static void null_field(struct imgbuf *b, size_t field)
{
	uintptr_t v = 0;

	if (!b->oom)
		memcpy(b->p + field, &v, sizeof(v));
}

static size_t put_array(struct imgbuf *b, size_t field, const void *src,
			size_t n, size_t elem)
{
	if (n == 0) {
		null_field(b, field);
		return 0;
	}
	size_t off = img_put(b, src, n * elem, _Alignof(max_align_t));
	link_field(b, field, off);
	return off;
}

static void put_string(struct imgbuf *b, size_t field, const char *s)
{
	if (!s) {
		null_field(b, field);
		return;
	}
	link_field(b, field, img_put(b, s, strlen(s) + 1, 1));
}

#define RULE_AT(base, i) ((base) + (i) * sizeof(struct rule))
#define FIELD(base, type, f) ((base) + offsetof(type, f))

static void put_addr_name(struct imgbuf *b, size_t addr,
			  const struct rule_addr *a)
{
	put_string(b, FIELD(addr, struct rule_addr, name), a->name);
}

static void put_names_array(struct imgbuf *b, size_t list,
			    const struct name_list *l)
{
	put_array(b, FIELD(list, struct name_list, v), l->v, l->n,
		  sizeof(char *));
}

static void put_names_strings(struct imgbuf *b, size_t list,
			      const struct name_list *l)
{
	uintptr_t v;

	if (l->n == 0 || b->oom)
		return;
	memcpy(&v, b->p + FIELD(list, struct name_list, v), sizeof(v));
	for (size_t i = 0; i < l->n; i++)
		put_string(b, v - 1 + i * sizeof(char *), l->v[i]);
}

static void put_rule_arrays(struct imgbuf *b, size_t at, const struct rule *r)
{
	put_names_array(b, FIELD(at, struct rule, users), &r->users);
	put_names_array(b, FIELD(at, struct rule, groups), &r->groups);
}

static void put_rule_strings(struct imgbuf *b, size_t at, const struct rule *r)
{
	put_addr_name(b, FIELD(at, struct rule, from), &r->from);
	put_addr_name(b, FIELD(at, struct rule, to), &r->to);
	put_names_strings(b, FIELD(at, struct rule, users), &r->users);
	put_names_strings(b, FIELD(at, struct rule, groups), &r->groups);
	put_string(b, FIELD(at, struct rule, pam_service), r->pam_service);
	put_string(b, FIELD(at, struct rule, gssapi_keytab), r->gssapi_keytab);
	put_string(b, FIELD(at, struct rule, gssapi_service), r->gssapi_service);
}

static void zero_field(struct imgbuf *b, size_t field, size_t n)
{
	if (!b->oom)
		memset(b->p + field, 0, n);
}

/* First every structure and array, then every string.  Without its
 * rules the conf is stored with none (the index counts them). */
int img_serialize(const struct conf *c, bool with_rules, struct imgbuf *b,
		  size_t *pool)
{
	size_t nrules = with_rules ? c->nclient + c->nsocks : 0;
	size_t conf_off = img_put(b, c, sizeof(*c), _Alignof(max_align_t));
	size_t rules = put_array(b, FIELD(conf_off, struct conf, rules),
				 c->rules, nrules, sizeof(struct rule));
	size_t ext = put_array(b, FIELD(conf_off, struct conf, external),
			       c->external, c->nexternal, sizeof(struct rule_addr));
	size_t lo = put_array(b, FIELD(conf_off, struct conf, logout), c->logout,
			      c->nlogout, sizeof(struct log_target));
	size_t le = put_array(b, FIELD(conf_off, struct conf, errlog), c->errlog,
			      c->nerrlog, sizeof(struct log_target));

	null_field(b, FIELD(conf_off, struct conf, image_block));
	null_field(b, FIELD(conf_off, struct conf, lazy));
	zero_field(b, FIELD(conf_off, struct conf, image_mapped), sizeof(size_t));
	if (!with_rules) {
		zero_field(b, FIELD(conf_off, struct conf, nclient), sizeof(size_t));
		zero_field(b, FIELD(conf_off, struct conf, nsocks), sizeof(size_t));
	}
	for (size_t i = 0; i < nrules; i++)
		put_rule_arrays(b, RULE_AT(rules, i), &c->rules[i]);

	*pool = b->len;
	put_string(b, FIELD(conf_off, struct conf, file), c->file);
	put_string(b, FIELD(conf_off, struct conf, user_privileged),
		   c->user_privileged);
	put_string(b, FIELD(conf_off, struct conf, user_unprivileged),
		   c->user_unprivileged);
	for (size_t i = 0; i < c->nexternal; i++)
		put_addr_name(b, ext + i * sizeof(struct rule_addr),
			      &c->external[i]);
	for (size_t i = 0; i < c->nlogout; i++)
		put_string(b, lo + i * sizeof(struct log_target) +
			   offsetof(struct log_target, arg), c->logout[i].arg);
	for (size_t i = 0; i < c->nerrlog; i++)
		put_string(b, le + i * sizeof(struct log_target) +
			   offsetof(struct log_target, arg), c->errlog[i].arg);
	for (size_t i = 0; i < nrules; i++)
		put_rule_strings(b, RULE_AT(rules, i), &c->rules[i]);
	/* the pool ends with a NUL even when it holds no string */
	img_put(b, "", 1, 1);
	return b->oom ? -1 : 0;
}

int img_serialize_rule(const struct rule *r, struct imgbuf *b, size_t *pool)
{
	size_t at = img_put(b, r, sizeof(*r), _Alignof(max_align_t));

	put_rule_arrays(b, at, r);
	*pool = b->len;
	put_rule_strings(b, at, r);
	img_put(b, "", 1, 1);
	return b->oom ? -1 : 0;
}

static void fill_identity(struct image_header *h, const struct stat *st)
{
	h->dev = (uint64_t)st->st_dev;
	h->ino = (uint64_t)st->st_ino;
	h->size = (uint64_t)st->st_size;
	h->mtime_sec = st->st_mtim.tv_sec;
	h->mtime_nsec = st->st_mtim.tv_nsec;
	h->ctime_sec = st->st_ctim.tv_sec;
	h->ctime_nsec = st->st_ctim.tv_nsec;
}

static bool same_identity(const struct image_header *h, const struct stat *st)
{
	struct image_header now;

	fill_identity(&now, st);
	return h->dev == now.dev && h->ino == now.ino && h->size == now.size &&
	       h->mtime_sec == now.mtime_sec && h->mtime_nsec == now.mtime_nsec &&
	       h->ctime_sec == now.ctime_sec && h->ctime_nsec == now.ctime_nsec;
}

static void fill_header(struct image_header *h, const char *body, size_t len,
			size_t pool, const struct stat *st)
{
	memset(h, 0, sizeof(*h));
	memcpy(h->magic, IMAGE_MAGIC, sizeof(h->magic));
	h->format = IMAGE_FORMAT;
	h->header_size = sizeof(*h);
	snprintf(h->version, sizeof(h->version), "%s", IMAGE_BUILD);
	h->layout = img_layout_fingerprint();
	h->body_size = len;
	h->pool_start = pool;
	h->body_sum = image_checksum(body, len);
	fill_identity(h, st);
}

static int write_all(int fd, const void *p, size_t n)
{
	const char *q = p;

	while (n) {
		ssize_t w = write(fd, q, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		q += w;
		n -= (size_t)w;
	}
	return 0;
}

int conf_image_write(const struct conf *c, const struct stat *source,
		     const char *image, char *err, size_t errlen)
{
	struct imgbuf b = { 0 }, x = { 0 };
	struct image_header h;
	size_t pool;
	char tmp[4096];

	if (img_serialize(c, true, &b, &pool) || conf_index_write(c, &x)) {
		free(b.p);
		free(x.p);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	fill_header(&h, b.p, b.len, pool, source);
	h.lazy_size = x.len;
	h.lazy_small = ((const struct index_header *)x.p)->small_size;
	if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", image) >= (int)sizeof(tmp)) {
		free(b.p);
		free(x.p);
		snprintf(err, errlen, "%s: path too long", image);
		return -1;
	}
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		free(b.p);
		free(x.p);
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		return -1;
	}
	/* readable as the rules file is (its group too), writable by its
	 * owner alone */
	int rc = fchown(fd, (uid_t)-1, source->st_gid);
	if (rc)
		rc = fchmod(fd, source->st_mode & 0600);  /* not the group's */
	else
		rc = fchmod(fd, source->st_mode & 0644);
	if (!rc)
		rc = write_all(fd, &h, sizeof(h));
	if (!rc)
		rc = write_all(fd, b.p, b.len);
	if (!rc)
		rc = write_all(fd, x.p, x.len);
	if (!rc)
		rc = fsync(fd);
	if (close(fd) && !rc)
		rc = -1;
	if (!rc)
		rc = rename(tmp, image);
	if (rc) {
		snprintf(err, errlen, "%s: %s", image, strerror(errno));
		unlink(tmp);
	}
	free(b.p);
	free(x.p);
	return rc;
}

/* ---- loading ------------------------------------------------------- */

struct loader {
	char *base;
	size_t pool, size;
	size_t next;      /* arrays must start at or after this offset */
};

/* Stores P in a pointer field of any pointer type (all have the same
 * representation here; memcpy keeps the compiler's aliasing rules). */
static void set_pointer(void *field, void *p)
{
	memcpy(field, &p, sizeof(p));
}

/* Turns the stored array pointer *FIELD (COUNT elements of ELEM bytes)
 * back into an address.  Returns false when it does not lie in the
 * structure part, after every array before it. */
static bool rel_array(struct loader *l, void *field, size_t count, size_t elem)
{
	uintptr_t v;

	memcpy(&v, field, sizeof(v));
	if (count == 0) {
		set_pointer(field, NULL);
		return v == 0;
	}
	if (v == 0)
		return false;
	size_t off = v - 1;
	if (off < l->next || off % _Alignof(max_align_t) || off > l->pool ||
	    count > (l->pool - off) / elem)
		return false;
	l->next = off + count * elem;
	set_pointer(field, l->base + off);
	return true;
}

/* The same for a string: it must start in the pool.  NEED: NULL is not
 * acceptable here. */
static bool rel_string(struct loader *l, char **field, bool need)
{
	uintptr_t v;

	memcpy(&v, field, sizeof(v));
	if (v == 0) {
		*field = NULL;
		return !need;
	}
	size_t off = v - 1;
	if (off < l->pool || off >= l->size)
		return false;
	*field = l->base + off;
	return true;
}

static bool valid_flag(const void *p)
{
	unsigned char v;

	memcpy(&v, p, 1);
	return v <= 1;
}

static bool valid_methods(const struct method_list *m)
{
	if (m->n > METHOD_LIST_MAX)
		return false;
	for (size_t i = 0; i < m->n; i++)
		if ((unsigned)m->m[i] >= METHOD_COUNT)
			return false;
	return true;
}

/* The parser's bounds: -1 (rules: not set) or 0 .. 100000000 seconds. */
static bool valid_timeout(int v, int min)
{
	return v >= min && v <= 100000000;
}

static bool valid_timeouts(const struct timeouts *t, int min)
{
	return valid_timeout(t->negotiate, min) && valid_timeout(t->connect, min) &&
	       valid_timeout(t->io_tcp, min) && valid_timeout(t->io_udp, min) &&
	       valid_timeout(t->tcp_fin_wait, min);
}

static bool rel_addr(struct loader *l, struct rule_addr *a)
{
	bool named = a->kind == ADDR_HOST || a->kind == ADDR_DOMAIN ||
		     a->kind == ADDR_IFNAME;

	if ((unsigned)a->kind > ADDR_IFNAME || (unsigned)a->port.op > PORT_RANGE)
		return false;
	if ((a->kind == ADDR_IPV4 && a->prefix > 32) ||
	    (a->kind == ADDR_IPV6 && a->prefix > 128))
		return false;
	return rel_string(l, &a->name, named) && (named || !a->name);
}

static bool rel_names_array(struct loader *l, struct name_list *n)
{
	return rel_array(l, &n->v, n->n, sizeof(char *));
}

static bool rel_names_strings(struct loader *l, struct name_list *n)
{
	for (size_t i = 0; i < n->n; i++)
		if (!rel_string(l, &n->v[i], true))
			return false;
	return true;
}

static bool rel_targets(struct loader *l, struct log_target *t, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if ((unsigned)t[i].kind > LOGT_FILE ||
		    !rel_string(l, &t[i].arg, t[i].kind == LOGT_FILE))
			return false;
	}
	return true;
}

static bool rel_rule(struct loader *l, struct rule *r, enum rule_set set)
{
	bool ports = (r->udp_port_lo == 0 && r->udp_port_hi == 0) ||
		     (r->udp_port_lo != 0 && r->udp_port_lo <= r->udp_port_hi);

	return r->set == set && ports && valid_flag(&r->pass) &&
	       valid_flag(&r->necgssapi) && r->commands <= CMD_ALL &&
	       r->protocols <= PROTO_ALL && r->proxyprotocols <= PXP_ALL &&
	       r->pam_session >= -1 && r->pam_session <= 1 &&
	       valid_methods(&r->clientmethods) &&
	       valid_methods(&r->socksmethods) &&
	       valid_timeouts(&r->timeout, -1) && rel_addr(l, &r->from) &&
	       rel_addr(l, &r->to) && rel_names_strings(l, &r->users) &&
	       rel_names_strings(l, &r->groups) &&
	       rel_string(l, &r->pam_service, false) &&
	       rel_string(l, &r->gssapi_keytab, false) &&
	       rel_string(l, &r->gssapi_service, false);
}

/* Checks and relocates the body in L; returns the conf or NULL. */
static struct conf *relocate(struct loader *l)
{
	struct conf *c = (struct conf *)l->base;

	if (l->pool < sizeof(*c) || l->pool >= l->size ||
	    l->base[l->size - 1] != '\0')
		return NULL;
	l->next = sizeof(*c);
	if (c->nclient > SIZE_MAX / 2 || c->nsocks > SIZE_MAX / 2)
		return NULL;
	size_t nrules = c->nclient + c->nsocks;
	if (!rel_array(l, &c->rules, nrules, sizeof(struct rule)) ||
	    !rel_array(l, &c->external, c->nexternal, sizeof(struct rule_addr)) ||
	    !rel_array(l, &c->logout, c->nlogout, sizeof(struct log_target)) ||
	    !rel_array(l, &c->errlog, c->nerrlog, sizeof(struct log_target)))
		return NULL;
	for (size_t i = 0; i < nrules; i++)
		if (!rel_names_array(l, &c->rules[i].users) ||
		    !rel_names_array(l, &c->rules[i].groups))
			return NULL;
	if (!rel_string(l, &c->file, true) ||
	    !rel_string(l, &c->user_privileged, false) ||
	    !rel_string(l, &c->user_unprivileged, false) ||
	    !valid_flag(&c->socksmethods_given) || !valid_flag(&c->pam_session) ||
	    !valid_methods(&c->clientmethods) || !valid_methods(&c->socksmethods) ||
	    !valid_timeouts(&c->timeout, 0) ||
	    (unsigned)c->rotation > ROTATION_SAME_SAME ||
	    !rel_targets(l, c->logout, c->nlogout) ||
	    !rel_targets(l, c->errlog, c->nerrlog))
		return NULL;
	for (size_t i = 0; i < c->nexternal; i++)
		if (!rel_addr(l, &c->external[i]))
			return NULL;
	for (size_t i = 0; i < nrules; i++)
		if (!rel_rule(l, &c->rules[i],
			      i < c->nclient ? RULE_CLIENT : RULE_SOCKS))
			return NULL;
	set_pointer(&c->image_block, NULL);
	set_pointer(&c->lazy, NULL);
	return c;
}

struct conf *img_relocate(char *base, size_t pool, size_t size)
{
	struct loader l = { .base = base, .pool = pool, .size = size };

	return relocate(&l);
}

struct rule *img_relocate_rule(char *base, size_t pool, size_t size,
			       enum rule_set set)
{
	struct loader l = { .base = base, .pool = pool, .size = size,
			    .next = sizeof(struct rule) };
	struct rule *r = (struct rule *)base;

	if (pool < sizeof(*r) || pool >= size || base[size - 1] != '\0')
		return NULL;
	if (!rel_names_array(&l, &r->users) || !rel_names_array(&l, &r->groups) ||
	    !rel_rule(&l, r, set))
		return NULL;
	return r;
}


/* N bytes from FD at its offset (OFF < 0) or at OFF: 0, or -1 on an
 * error or a short file. */
static int read_exact_at(int fd, void *p, size_t n, off_t off)
{
	char *q = p;

	while (n) {
		ssize_t r = off < 0 ? read(fd, q, n) : pread(fd, q, n, off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		q += r;
		n -= (size_t)r;
		if (off >= 0)
			off += r;
	}
	return 0;
}

int img_read_exact(int fd, void *p, size_t n)
{
	return read_exact_at(fd, p, n, -1);
}

int img_pread_exact(int fd, void *p, size_t n, uint64_t off)
{
	return off > (uint64_t)INT64_MAX ? -1 : read_exact_at(fd, p, n, (off_t)off);
}

/* A bare word in from:/to: is an interface when this host has one of that
 * name, else a host name (conf_parse.c).  The image froze that decision
 * when it was compiled, perhaps at boot before a tun0 or wg0 existed: it
 * holds only while every such word still means the same.  Returns the
 * first word that changed, or NULL. */
const char *img_interface_drift(const struct rule_addr *a)
{
	if (a->kind == ADDR_IFNAME)
		return names_is_interface(a->name) ? NULL : a->name;
	if (a->kind == ADDR_HOST && names_is_interface(a->name))
		return a->name;
	return NULL;
}

const char *img_names_drift(const struct conf *c)
{
	const char *w = NULL;

	/* external: takes no host names: a word there is an interface
	 * whether or not this host has it, so it cannot drift */
	for (size_t i = 0; !w && i < c->nclient + c->nsocks; i++) {
		w = img_interface_drift(&c->rules[i].from);
		if (!w)
			w = img_interface_drift(&c->rules[i].to);
	}
	return w;
}

/* Why not: the first check that fails, for the log. */
#define WHY(...) (snprintf(why, whylen, __VA_ARGS__), (struct conf *)NULL)

/* Memory for a body of N bytes.  Small ones come from malloc.  Large
 * ones (thousands of rules) are read into fresh pages, and a fault per
 * 4 KiB page is what loading them costs: on the 2-core VM of bench/
 * each costs ~10 us, and 10 000 rules (2.8 MB) took 9.5 ms to read.
 * Transparent huge pages, where the system offers them, turn that into
 * two faults (0.5 ms).  *MAPPED: the size to munmap, 0 for malloc. */
#define HUGE_PAGE (2u << 20)
static char *alloc_body(size_t n, size_t *mapped)
{
	*mapped = 0;
	if (n < 64 * 1024)
		return malloc(n);
	if (n < HUGE_PAGE / 2) {
		/* populated in one call: cheaper than a fault per page */
		size_t len = (n + 4095) & ~(size_t)4095;
		char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
		if (p == MAP_FAILED)
			return NULL;
		*mapped = len;
		return p;
	}
	size_t len = (n + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE + HUGE_PAGE;
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	/* keep only the aligned part (a huge page must be aligned) */
	uintptr_t a = ((uintptr_t)p + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1);
	size_t head = a - (uintptr_t)p;
	if (head)
		munmap(p, head);
	len -= head;
	size_t keep = (n + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
	if (len > keep)
		munmap((char *)a + keep, len - keep);
	madvise((char *)a, keep, MADV_HUGEPAGE);  /* advice: may be refused */
	*mapped = keep;
	return (char *)a;
}

static void free_body(char *p, size_t mapped)
{
	if (mapped)
		munmap(p, mapped);
	else
		free(p);
}

void conf_image_free(struct conf *c)
{
	if (c->lazy)
		conf_lazy_free(c->lazy);  /* C lives in its memory */
	else
		free_body(c->image_block, c->image_mapped);
}

struct conf *img_load_body(int fd, const struct image_header *h,
			      const char *conf_file, char *why, size_t whylen)
{
	size_t body = (size_t)h->body_size, name = strlen(conf_file) + 1;
	size_t mapped;
	char *base = alloc_body(body + name, &mapped);

	if (!base)
		return WHY("out of memory");
	/* read in chunks, summing each while it is in the cache */
	struct checksum sum;
	size_t done = 0, summed = 0;
	sum_init(&sum);
	while (done < body) {
		size_t n = body - done < (256u << 10) ? body - done : 256u << 10;
		if (img_read_exact(fd, base + done, n)) {
			free_body(base, mapped);
			return WHY("truncated");
		}
		done += n;
		size_t upto = done / SUM_BLOCK * SUM_BLOCK;
		sum_blocks(&sum, base + summed, upto - summed);
		summed = upto;
	}
	if (sum_final(&sum, base + summed, body - summed, body) != h->body_sum) {
		free_body(base, mapped);
		return WHY("damaged (checksum)");
	}
	struct conf *c = img_relocate(base, (size_t)h->pool_start, body);
	if (!c) {
		free_body(base, mapped);
		return WHY("corrupt");
	}
	const char *drift = img_names_drift(c);
	if (drift) {
		snprintf(why, whylen, "\"%s\" changed between interface and "
			 "host name since it was compiled; compile it again",
			 drift);
		free_body(base, mapped);
		return NULL;
	}
	/* name the file as this caller does, as conf_load would */
	c->file = memcpy(base + body, conf_file, name);
	c->image_block = base;
	c->image_mapped = mapped;
	return c;
}

#define WHYFD(...) (snprintf(why, whylen, __VA_ARGS__), -1)

int img_open(const char *conf_file, const char *image,
	     struct image_header *h, char *why, size_t whylen)
{
	struct stat ist, cst;
	int rc;

	why[0] = '\0';
	int fd = open(image, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK |
			     O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? -1 : WHYFD("%s", strerror(errno));
	if (fstat(fd, &ist) || !S_ISREG(ist.st_mode))
		rc = WHYFD("not a regular file");
	else if (ist.st_uid != 0 && ist.st_uid != geteuid())
		rc = WHYFD("owned by uid %u, not by root or uid %u",
			   (unsigned)ist.st_uid, (unsigned)geteuid());
	else if (ist.st_mode & 022)
		rc = WHYFD("writable by group or others (mode %o)",
			   (unsigned)(ist.st_mode & 07777));
	else if (img_read_exact(fd, h, sizeof(*h)) ||
		 memcmp(h->magic, IMAGE_MAGIC, sizeof(h->magic)))
		rc = WHYFD("not a sockd rules image");
	else if (h->format != IMAGE_FORMAT || h->header_size != sizeof(*h) ||
		 strncmp(h->version, IMAGE_BUILD, sizeof(h->version)) ||
		 h->layout != img_layout_fingerprint())
		rc = WHYFD("made by another build (%.32s); compile it again",
			   h->version);
	else if (h->body_size > IMAGE_MAX_BODY || h->lazy_size > IMAGE_MAX_BODY ||
		 h->body_size + h->lazy_size + sizeof(*h) != (uint64_t)ist.st_size ||
		 h->lazy_small > h->lazy_size)
		rc = WHYFD("truncated or corrupt");
	else if (stat(conf_file, &cst) || !same_identity(h, &cst))
		rc = WHYFD("out of date: the rules file changed since it was "
			   "compiled");
	else
		return fd;
	close(fd);
	return rc;
}

struct conf *conf_image_load(const char *conf_file, const char *image,
			     char *why, size_t whylen)
{
	struct image_header h;
	int fd = img_open(conf_file, image, &h, why, whylen);

	if (fd < 0)
		return NULL;
	struct conf *c = img_load_body(fd, &h, conf_file, why, whylen);
	close(fd);
	return c;
}

int conf_image_reseal(const char *image)
{
	struct image_header h;
	struct stat st;
	int fd = open(image, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	int rc = -1;

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) == 0 && (size_t)st.st_size >= sizeof(h) &&
	    img_read_exact(fd, &h, sizeof(h)) == 0) {
		size_t n = (size_t)st.st_size - sizeof(h);
		size_t body = h.body_size < n ? (size_t)h.body_size : n;
		char *all = malloc(n ? n : 1);
		if (all && img_read_exact(fd, all, n) == 0) {
			h.body_sum = image_checksum(all, body);
			/* the index's small part too, when it is one */
			bool ok = conf_index_reseal(all + body, n - body) ||
				  pwrite(fd, all + body, sizeof(struct index_header),
					 (off_t)(sizeof(h) + body)) ==
					  (ssize_t)sizeof(struct index_header);
			if (ok && pwrite(fd, &h, sizeof(h), 0) == (ssize_t)sizeof(h))
				rc = 0;
		}
		free(all);
	}
	close(fd);
	return rc;
}

struct conf *conf_open(const char *conf_file, struct conf_diags *diags,
		       bool *used_image, char *why, size_t whylen)
{
	/* a short buffer for the usual path: a 4 KB one pushed what runs
	 * below it onto a stack page that a session touched for nothing else
	 * (~12 us on a VM) */
	char small[256], *image = small;
	size_t len = strlen(conf_file) + sizeof(".compiled");
	struct conf *c = NULL;

	why[0] = '\0';
	if (len > sizeof(small))
		image = malloc(len);
	if (image && conf_image_path(conf_file, image, len) == 0)
		c = conf_lazy_open(conf_file, image, why, whylen);
	if (image != small)
		free(image);
	*used_image = c != NULL;
	if (c) {
		memset(diags, 0, sizeof(*diags));
		return c;
	}
	return conf_load(conf_file, diags);
}

/* ---- compiling ----------------------------------------------------- */

/* Waits until the real-time clock the kernel stamps files with has moved
 * past ST's change time (at most ~2 s): from then on any change to the
 * file gets a later change time, so the image cannot match an edited file
 * that happens to keep its size.  Filesystems that keep whole seconds
 * only (no nanoseconds in either time) get a whole second of margin. */
static bool wait_past_ctime(const struct stat *st)
{
	bool coarse = st->st_ctim.tv_nsec == 0 && st->st_mtim.tv_nsec == 0;
	struct timespec limit = st->st_ctim;

	if (coarse)
		limit.tv_sec += 1;
	for (int i = 0; i < 250; i++) {
		struct timespec now;
		clock_gettime(CLOCK_REALTIME_COARSE, &now);
		if (now.tv_sec > limit.tv_sec ||
		    (now.tv_sec == limit.tv_sec && now.tv_nsec > limit.tv_nsec))
			return true;
		nanosleep(&(struct timespec){ 0, 10 * 1000 * 1000 }, NULL);
	}
	return false;  /* a change time in the future: the clock was set back */
}

struct conf *conf_image_compile(const char *conf_file, const char *image,
				struct conf_diags *diags, char *err,
				size_t errlen)
{
	err[0] = '\0';
	memset(diags, 0, sizeof(*diags));
	for (int attempt = 0; attempt < 3; attempt++) {
		struct stat before, after;
		int fd = open(conf_file, O_RDONLY | O_CLOEXEC | O_NOCTTY |
						O_NONBLOCK);
		if (fd < 0 || fstat(fd, &before)) {
			snprintf(err, errlen, "%s: %s", conf_file, strerror(errno));
			if (fd >= 0)
				close(fd);
			return NULL;
		}
		if (!wait_past_ctime(&before)) {
			close(fd);
			snprintf(err, errlen, "%s: its change time is in the future "
				 "(was the clock set back?): not compiled",
				 conf_file);
			return NULL;
		}
		struct conf *c = conf_load_fd(fd, conf_file, diags);
		int rc = fstat(fd, &after);
		close(fd);
		if (!c)
			return NULL;
		struct image_header h;
		fill_identity(&h, &before);
		if (rc == 0 && same_identity(&h, &after)) {
			if (conf_image_write(c, &after, image, err, errlen)) {
				conf_free(c);
				return NULL;
			}
			return c;
		}
		conf_free(c);
		conf_diags_free(diags);
	}
	snprintf(err, errlen, "%s kept changing while it was read; not "
		 "compiled", conf_file);
	return NULL;
}
