/* Writing the index of a compiled rules image (see conf_index.h). */
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "conf_index.h"

/* One literal prefix while the index is built. */
struct literal {
	uint8_t family, prefix;
	uint8_t key[16];
	uint32_t rule;
};

static int literal_cmp(const void *pa, const void *pb)
{
	const struct literal *a = pa, *b = pb;

	if (a->family != b->family)
		return a->family < b->family ? -1 : 1;
	if (a->prefix != b->prefix)
		return a->prefix < b->prefix ? -1 : 1;
	int k = memcmp(a->key, b->key, sizeof(a->key));
	if (k)
		return k;
	return a->rule < b->rule ? -1 : a->rule > b->rule;
}

/* The literal prefix of A, if it has one (else false: always visited). */
static bool literal_of(const struct rule_addr *a, struct literal *l)
{
	memset(l, 0, sizeof(*l));
	if (a->kind == ADDR_IPV4) {
		l->family = 4;
		memcpy(l->key, &a->a.v4, 4);
	} else if (a->kind == ADDR_IPV6) {
		l->family = 6;
		memcpy(l->key, &a->a.v6, 16);
	} else {
		return false;
	}
	l->prefix = a->prefix;
	addr_mask_prefix(l->key, sizeof(l->key), l->prefix);
	return true;
}

/* One set's side: its literals sorted, its bitmap of the rest. */
struct side {
	struct literal *lit;
	size_t nlit;
	uint64_t *always;
	size_t nwords, nrules;
};

static int build_side(const struct rule *rules, size_t n, int dim,
		      struct side *s)
{
	s->nwords = (n + 63) / 64;
	s->nrules = n;
	s->lit = malloc((n ? n : 1) * sizeof(*s->lit));
	s->always = calloc(s->nwords ? s->nwords : 1, sizeof(uint64_t));
	s->nlit = 0;
	if (!s->lit || !s->always)
		return -1;
	for (size_t i = 0; i < n; i++) {
		const struct rule_addr *a = dim == DIM_FROM ? &rules[i].from
							     : &rules[i].to;
		struct literal l;
		if (literal_of(a, &l)) {
			l.rule = (uint32_t)i;
			s->lit[s->nlit++] = l;
		} else {
			s->always[i / 64] |= 1ull << (i % 64);
		}
	}
	qsort(s->lit, s->nlit, sizeof(*s->lit), literal_cmp);
	return 0;
}

static size_t count_groups(const struct side *s)
{
	size_t g = 0;

	for (size_t i = 0; i < s->nlit; i++)
		if (i == 0 || s->lit[i].family != s->lit[i - 1].family ||
		    s->lit[i].prefix != s->lit[i - 1].prefix)
			g++;
	return g;
}

static void put_at(struct imgbuf *b, size_t off, const void *p, size_t n)
{
	if (!b->oom)
		memcpy(b->p + off, p, n);
}

/* The runs of consecutive set bits of S's bitmap of N rules: how many,
 * and, when OUT is not NULL, each. */
static size_t runs_of(const struct side *s, size_t n, struct index_run *out)
{
	size_t runs = 0;

	for (size_t i = 0; i < n;) {
		if (!(s->always[i / 64] >> (i % 64) & 1)) {
			i++;
			continue;
		}
		size_t j = i;
		while (j < n && (s->always[j / 64] >> (j % 64) & 1))
			j++;
		if (out)
			out[runs] = (struct index_run){ (uint32_t)i,
							 (uint32_t)(j - i) };
		runs++;
		i = j;
	}
	return runs;
}

/* S's rules always visited, as runs when they are smaller than its
 * bitmap (always for a side without them: no runs, no bitmap). */
static void put_always(struct imgbuf *b, const struct side *s,
		       struct index_dim *dim)
{
	size_t n = s->nrules, runs = runs_of(s, n, NULL);

	if (runs * sizeof(struct index_run) < s->nwords * sizeof(uint64_t) ||
	    n == 0) {
		struct index_run *r = malloc((runs ? runs : 1) * sizeof(*r));
		if (!r) {
			b->oom = true;
			return;
		}
		runs_of(s, n, r);
		dim->always_runs = runs;
		/* a bitmap is told apart by no runs: an empty one is one
		 * run of none */
		if (!runs) {
			r[0] = (struct index_run){ 0, 0 };
			dim->always_runs = 1;
		}
		dim->always_off = img_put(b, r, dim->always_runs * sizeof(*r), 8);
		free(r);
	} else {
		dim->always_runs = 0;
		dim->always_off = img_put(b, s->always,
					  s->nwords * sizeof(uint64_t), 8);
	}
}

/* Group GI of DIM as written in B (NULL when B ran out of memory). */
static struct index_group *group_at(struct imgbuf *b,
				    const struct index_dim *dim, size_t gi)
{
	if (b->oom)
		return NULL;
	return (struct index_group *)(b->p + dim->groups_off) + gi;
}

int conf_index_write(const struct conf *c, struct imgbuf *b)
{
	struct side sides[2][DIM_COUNT] = { 0 };
	struct index_header h = { .nclient = c->nclient, .nsocks = c->nsocks };
	size_t nrules = c->nclient + c->nsocks;
	struct imgbuf g = { 0 };
	size_t gpool;
	int rc = -1;

	if (c->nclient > UINT32_MAX || c->nsocks > UINT32_MAX)
		return -1;
	for (int set = 0; set < 2; set++)
		for (int d = 0; d < DIM_COUNT; d++)
			if (build_side(set ? conf_socks_rules(c) : conf_client_rules(c),
				       set ? c->nsocks : c->nclient, d,
				       &sides[set][d]))
				goto out;

	size_t at = img_put(b, &h, sizeof(h), _Alignof(max_align_t));
	/* the small part: groups and bitmaps, then the globals */
	size_t first = 0;
	for (int set = 0; set < 2; set++)
		for (int d = 0; d < DIM_COUNT; d++) {
			struct side *s = &sides[set][d];
			struct index_dim *dim = &h.dims[set][d];
			dim->ngroups = count_groups(s);
			dim->groups_off = img_put(b, NULL, 0, 8);
			for (size_t i = 0; i < s->nlit; i++) {
				if (i && s->lit[i].family == s->lit[i - 1].family &&
				    s->lit[i].prefix == s->lit[i - 1].prefix)
					continue;
				struct index_group grp = {
					.family = s->lit[i].family,
					.prefix = s->lit[i].prefix,
					.first = first + i,
				};
				size_t j = i;
				while (j < s->nlit && s->lit[j].family == grp.family &&
				       s->lit[j].prefix == grp.prefix)
					j++;
				grp.count = j - i;
				img_put(b, &grp, sizeof(grp), 8);
			}
			put_always(b, s, dim);
			first += s->nlit;
		}
	if (img_serialize(c, false, &g, &gpool))
		goto out;
	h.globals_off = img_put(b, g.p, g.len, _Alignof(max_align_t));
	h.globals_size = g.len;
	h.globals_pool = gpool;
	h.small_size = b->len;

	/* the entries, each checked against its place */
	h.entries_off = img_put(b, NULL, 0, 8);
	h.nentries = first;
	size_t pos = 0;
	for (int set = 0; set < 2; set++)
		for (int d = 0; d < DIM_COUNT; d++) {
			const struct side *s = &sides[set][d];
			struct index_group grp = { 0 };
			for (size_t i = 0; i < s->nlit; i++, pos++) {
				struct index_entry e = { .rule = s->lit[i].rule };
				memcpy(e.key, s->lit[i].key, sizeof(e.key));
				grp.family = s->lit[i].family;
				grp.prefix = s->lit[i].prefix;
				e.check = index_entry_check(&e, (unsigned)set,
							    (unsigned)d, &grp, pos);
				img_put(b, &e, sizeof(e), 4);
			}
		}

	/* the fences of the groups of more than one block */
	h.fences_off = img_put(b, NULL, 0, 8);
	for (int set = 0; set < 2; set++)
		for (int d = 0; d < DIM_COUNT; d++) {
			const struct side *s = &sides[set][d];
			size_t i = 0;
			for (size_t gi = 0; gi < h.dims[set][d].ngroups && !b->oom;
			     gi++) {
				size_t count = (size_t)group_at(b, &h.dims[set][d],
								gi)->count;
				if (count > INDEX_BLOCK) {
					size_t off = img_put(b, NULL, 0, 8);
					for (size_t k = 0; k < count; k += INDEX_BLOCK)
						img_put(b, s->lit[i + k].key,
							index_key_width(s->lit[i].family), 1);
					if (!b->oom)  /* B may have moved */
						group_at(b, &h.dims[set][d],
							 gi)->fences_off = off;
				}
				i += count;
			}
		}
	h.fences_size = b->len - h.fences_off;

	/* a record per rule, then each rule on its own */
	h.records_off = img_put(b, NULL, nrules * sizeof(struct index_record),
				8);
	h.blobs_off = img_put(b, NULL, 0, _Alignof(max_align_t));
	for (size_t i = 0; i < nrules && !b->oom; i++) {
		struct imgbuf r = { 0 };
		size_t pool;
		unsigned set = i < c->nclient ? RULE_CLIENT : RULE_SOCKS;
		uint64_t in_set = set == RULE_CLIENT ? i : i - c->nclient;
		if (img_serialize_rule(&c->rules[i], &r, &pool) ||
		    r.len > UINT32_MAX) {
			free(r.p);
			goto out;
		}
		size_t off = img_put(b, r.p, r.len, _Alignof(max_align_t));
		struct index_record rec = {
			.off = off - h.blobs_off, .len = (uint32_t)r.len,
			.pool = (uint32_t)pool,
			.sum = index_blob_sum(r.p, r.len, set, in_set),
		};
		put_at(b, h.records_off + i * sizeof(rec), &rec, sizeof(rec));
		free(r.p);
	}
	h.blobs_size = b->len - h.blobs_off;
	put_at(b, at, &h, sizeof(h));
	if (!b->oom) {
		struct index_header *w = (struct index_header *)(b->p + at);
		w->small_sum = image_checksum(b->p + at, h.small_size);
	}
	rc = b->oom ? -1 : 0;
out:
	for (int set = 0; set < 2; set++)
		for (int d = 0; d < DIM_COUNT; d++) {
			free(sides[set][d].lit);
			free(sides[set][d].always);
		}
	free(g.p);
	return rc;
}

int conf_index_reseal(char *section, size_t len)
{
	struct index_header h;

	if (len < sizeof(h))
		return -1;
	memcpy(&h, section, sizeof(h));
	if (h.small_size < sizeof(h) || h.small_size > len)
		return -1;
	h.small_sum = 0;
	memcpy(section, &h, sizeof(h));
	h.small_sum = image_checksum(section, h.small_size);
	memcpy(section, &h, sizeof(h));
	return 0;
}
