/* The index of a compiled rules image: what lets a session decide from
 * the few rules that can match its client instead of loading them all.
 *
 * A loaded conf costs time in proportion to its rules (10 000 rules:
 * 2.2 MB read, checked and relocated, ~0.85 ms in a new process), paid by
 * every connection.  A decision needs only the rules it visits: with
 * first-match semantics those are the ones whose addresses can contain
 * the client's (and the destination's), in file order.  The index lists,
 * for each rule set and each side (from:, to:), the rules whose address
 * is a literal prefix, sorted by prefix length and masked address, and
 * the others (0/0, names, domains, interfaces), which every decision
 * visits, as a bitmap or as runs of rules.  The rules themselves are stored again one by one, each
 * a self-contained record read with one pread() and checked on its own.
 *
 * The section after the body of the image:
 *   struct index_header
 *   the small part (checksummed as one, read at open with one pread, its
 *     size in the image's header): the header, the dimension table, the
 *     groups, the rules always visited and the globals (the conf without
 *     its rules, as img_serialize writes it);
 *   entries: struct index_entry, each with a check of its own, read a
 *     block (INDEX_BLOCK entries) at a time;
 *   fences: for each group of more than one block, the key of each
 *     block's first entry (4 bytes for IPv4, 16 for IPv6), so that a
 *     lookup reads the fences and then one block: two preads, where a
 *     binary search over the entries took one per halving (9 for 10 000
 *     entries, ~1.3 us each on a VM);
 *   records: struct index_record per rule, then the rules' blobs, each
 *     checked against its record's sum when read.
 * Damage anywhere is found where a decision reads it, and the decision is
 * then taken from the whole image or the text (conf_lazy.c). */
#ifndef SOCKD_CONF_INDEX_H
#define SOCKD_CONF_INDEX_H

#include <stdint.h>

#include "conf.h"
#include "conf_image_int.h"

enum { DIM_FROM, DIM_TO, DIM_COUNT };

/* Entries per block: one pread of 1.5 KB, on the stack. */
#define INDEX_BLOCK 64u

/* The bytes of a key that a family uses (the rest are zero). */
static inline unsigned index_key_width(unsigned family)
{
	return family == 4 ? 4u : 16u;
}

/* The rules of a set that a side always visits (0/0, names, domains,
 * interfaces), in the small part: as a bitmap of the set's rules, or as
 * runs of consecutive rules when that is smaller (a set whose rules all
 * say "to: 0/0" is one run, where its bitmap of 10 000 rules is 1.25 KB:
 * a page fewer for a session to touch). */
struct index_run {
	uint32_t first, count;
};

struct index_dim {
	uint64_t always_off;      /* the bitmap (uint64_t[(n + 63) / 64]),
				     or the runs (struct index_run[]) */
	uint64_t always_runs;     /* how many runs; 0: a bitmap */
	uint64_t groups_off;      /* struct index_group[ngroups] (small part) */
	uint64_t ngroups;
};

/* The literal prefixes of one family and length: entries [first,
 * first + count) of the entry array, sorted by key, then rule. */
struct index_group {
	uint8_t family;           /* 4 or 6 */
	uint8_t prefix;
	uint8_t pad[6];
	uint64_t first, count;
	uint64_t fences_off;      /* in the section: the first key of each
				     block, when there is more than one;
				     each is checked against its block */
};

static inline uint64_t index_group_blocks(const struct index_group *g)
{
	return (g->count + INDEX_BLOCK - 1) / INDEX_BLOCK;
}

struct index_entry {
	uint8_t key[16];          /* the prefix, host bits zero; IPv4 in the
				     first 4 bytes */
	uint32_t rule;            /* index within its set */
	uint32_t check;           /* index_entry_check() */
};

struct index_record {
	uint64_t off;             /* of the blob, from blobs_off */
	uint32_t len, pool;       /* its size; where its strings begin */
	uint64_t sum;             /* index_blob_sum() */
};

struct index_header {
	uint64_t small_size, small_sum;  /* the sum with this field zero */
	uint64_t nclient, nsocks;
	struct index_dim dims[2][DIM_COUNT];  /* [RULE_CLIENT/SOCKS][dim] */
	uint64_t globals_off, globals_size, globals_pool;
	uint64_t entries_off, nentries;
	uint64_t fences_off, fences_size;
	uint64_t records_off, blobs_off, blobs_size;
};

/* An entry's check binds it to its place: which set, side, group and
 * position it was written at. */
static inline uint32_t index_entry_check(const struct index_entry *e,
					 unsigned set, unsigned dim,
					 const struct index_group *g,
					 uint64_t pos)
{
	uint64_t h = 1469598103934665603ull;
	const uint8_t *k = e->key;

	for (int i = 0; i < 16; i++)
		h = (h ^ k[i]) * 1099511628211ull;
	uint64_t more[] = { e->rule, set, dim, g->family, g->prefix, pos };
	for (unsigned i = 0; i < sizeof(more) / sizeof(more[0]); i++)
		h = (h ^ more[i]) * 1099511628211ull;
	return (uint32_t)(h ^ h >> 32);
}

static inline uint64_t index_blob_sum(const void *blob, size_t len,
				      unsigned set, uint64_t rule)
{
	return image_checksum(blob, len) ^
	       (0x9e3779b97f4a7c15ull * (rule * 2 + set + 1));
}

/* Appends the index of C (its rules in file order) to B. */
int conf_index_write(const struct conf *c, struct imgbuf *b);

/* Recomputes the small part's checksum of the index at SECTION (LEN
 * bytes), for conf_image_reseal.  0, or -1 when it is not an index. */
int conf_index_reseal(char *section, size_t len);

#endif
