/* Lazy decisions from a compiled image (see conf_lazy.h, conf_index.h). */
#include <errno.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "addr.h"
#include "conf_image.h"
#include "conf_image_int.h"
#include "conf_index.h"
#include "conf_lazy.h"

/* Past this many rules read one by one in a decision, reading them all
 * at once is cheaper (a rule costs two preads and a check, ~100 times
 * what it costs inside a whole read). */
#define LAZY_MAX_VISITS 64
/* A section this small is read whole at open: a few syscalls fewer.  Not
 * larger: a page touched costs more than the preads it saves (~12 us
 * against ~1.3 us each on a VM). */
#define LAZY_READ_WHOLE (4u << 10)
/* A group's fences are read this many bytes at a time (on the stack);
 * more fences than that are first narrowed down one by one. */
#define FENCE_CHUNK 1024u
/* What a lazy conf may take in memory before its decisions go to the
 * whole rules: each rule read stays (verdicts point into it), so a long
 * run of decisions (sockd-check --test) would otherwise only grow. */
#define LAZY_MAX_BYTES (1u << 20)

#define SET_NAME(set) ((set) == RULE_CLIENT ? "client" : "socks")

/* Everything a lazy conf holds (itself, the parts of the image it read,
 * the rules it read) comes from a few large blocks of its own, returned
 * whole when it is freed: no small block is ever freed into glibc's
 * caches, where it would pin the heap's pages above it for the hours a
 * session may relay.
 *
 * The first block of the first conf a process opens (a session opens
 * one) is a reserve in .bss: on a VM a page costs ~12 us to touch, and a
 * new mapping costs one for its first byte, malloc's first use five (the
 * heap and glibc's own data); the reserve costs the pages it uses, which
 * conf_lazy_release_memory() gives back to the kernel once the conf is
 * freed (a TCP relay frees it before it idles for hours).  Other blocks
 * come from malloc. */
struct arena {
	struct arena *next;
	size_t size, used;
};
#define ARENA_MIN (4u << 10)
/* Used from its first page boundary on, so that a conf that needs under
 * 4 KB touches one page (aligning the array instead would align all of
 * .bss, and move its small variables off the page they share with .data:
 * a page more for every session). */
#define RESERVE_PAGE 4096u
static _Alignas(max_align_t) char reserve[(16u << 10) + RESERVE_PAGE];
static bool reserve_taken;
static size_t reserve_dirty;   /* bytes of it used since the last release */

static char *reserve_block(size_t *size)
{
	uintptr_t at = ((uintptr_t)reserve + RESERVE_PAGE - 1) &
		       ~(uintptr_t)(RESERVE_PAGE - 1);

	*size = (size_t)((uintptr_t)(reserve + sizeof(reserve)) - at);
	return (char *)at;
}

/* Under AddressSanitizer the unused parts of an arena and a gap after
 * each block are poisoned, so that a read past a block is reported as it
 * would be for malloc's. */
#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/asan_interface.h>
#define ARENA_REDZONE 32u
#else
#define ARENA_REDZONE 0u
#define ASAN_POISON_MEMORY_REGION(p, n) ((void)(p), (void)(n))
#define ASAN_UNPOISON_MEMORY_REGION(p, n) ((void)(p), (void)(n))
#endif

static struct arena *arena_map(size_t need)
{
	size_t size = sizeof(struct arena) + need + _Alignof(max_align_t);

	if (size < need)
		return NULL;
	size = size < ARENA_MIN ? ARENA_MIN : size;
	struct arena *a;
	size_t avail;
	char *block = reserve_block(&avail);
	if (!reserve_taken && size <= avail) {
		reserve_taken = true;
		a = (struct arena *)(void *)block;
		size = avail;
	} else if (!(a = malloc(size))) {  /* not zeroed: arena_alloc zeroes */
		return NULL;
	}
	a->next = NULL;
	a->size = size;
	a->used = sizeof(*a);
	ASAN_POISON_MEMORY_REGION((char *)a + a->used, size - a->used);
	return a;
}

void conf_lazy_release_memory(void)
{
	size_t avail;
	char *block = reserve_block(&avail);
	/* whole pages of this system's size, inside the array only: the
	 * kernel rounds a length up to a page, and whatever .bss holds after
	 * the array would read as zeroes */
	uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t lo = ((uintptr_t)block + pg - 1) & ~(pg - 1);
	uintptr_t hi = ((uintptr_t)reserve + sizeof(reserve)) & ~(pg - 1);
	uintptr_t end = ((uintptr_t)block + reserve_dirty + pg - 1) & ~(pg - 1);

	if (reserve_taken || !reserve_dirty)
		return;
	if (end > hi)
		end = hi;
	/* they read as zeroes after, and arena_alloc zeroes what it hands
	 * out anyway */
	if (end > lo)
		(void)madvise((void *)lo, end - lo, MADV_DONTNEED);
	reserve_dirty = 0;
}

/* N zeroed bytes from the chain at *HEAD (zeroed as they are handed out,
 * so that only the pages used are touched). */
static void *arena_alloc(struct arena **head, size_t n)
{
	struct arena *a = *head;
	const size_t align = _Alignof(max_align_t);

	size_t want = n;
	n = (n + align - 1) / align * align + ARENA_REDZONE;
	size_t at = (a->used + align - 1) / align * align;
	if (at > a->size || n > a->size - at) {
		struct arena *b = arena_map(n);
		if (!b)
			return NULL;
		b->next = a;
		*head = a = b;
		at = (a->used + align - 1) / align * align;
	}
	a->used = at + n;
	ASAN_UNPOISON_MEMORY_REGION((char *)a + at, want);
	return memset((char *)a + at, 0, want);
}

static size_t arena_bytes(const struct arena *a)
{
	size_t total = 0;

	for (; a; a = a->next)
		total += a->used;
	return total;
}

static void arena_unmap(struct arena *a)
{
	while (a) {
		struct arena *next = a->next;
		ASAN_UNPOISON_MEMORY_REGION(a, a->size);
		size_t avail;
		if ((char *)a == reserve_block(&avail)) {
			if (a->used > reserve_dirty)
				reserve_dirty = a->used;
			reserve_taken = false;
		} else {
			free(a);
		}
		a = next;
	}
}

struct conf_lazy {
	int fd;
	uint64_t section, size;   /* the index section in the file */
	char *copy;               /* the whole section, when small */
	struct image_header image;
	struct index_header h;
	char *small;              /* the small part, checked */
	struct arena *arena;
	uint64_t *bits, *other;   /* the walks' candidates (one at a time),
				     and a side's when it has literals */
	size_t bits_words, other_words;
	struct conf *whole;       /* after a fall back */
	bool whole_tried;
	char *file;
	void (*report)(const char *, void *);
	void *report_arg;
};

/* ---- reading ------------------------------------------------------- */

static int lz_read(struct conf_lazy *lz, uint64_t off, void *buf, size_t len)
{
	if (off > lz->size || len > lz->size - off)
		return -1;
	if (lz->copy) {
		memcpy(buf, lz->copy + off, len);
		return 0;
	}
	return img_pread_exact(lz->fd, buf, len, lz->section + off);
}

static void problem(struct conf_lazy *lz, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void problem(struct conf_lazy *lz, const char *fmt, ...)
{
	char msg[300];
	va_list ap;

	if (!lz->report)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	lz->report(msg, lz->report_arg);
}

/* ---- opening ------------------------------------------------------- */

static size_t set_size(const struct index_header *h, int set)
{
	return (size_t)(set == RULE_CLIENT ? h->nclient : h->nsocks);
}

static bool in_small(const struct index_header *h, uint64_t off, uint64_t n,
		     uint64_t elem)
{
	return off % 8 == 0 && off <= h->small_size &&
	       (elem == 0 || n <= (h->small_size - off) / elem);
}

/* A table of the small part (groups, runs, bitmap): after its header and
 * wholly before the globals, which are relocated in place (pointers are
 * written there: a table over them would be read back changed). */
static bool table_in_small(const struct index_header *h, uint64_t off,
			   uint64_t n, uint64_t elem)
{
	return in_small(h, off, n, elem) && off >= sizeof(*h) &&
	       off <= h->globals_off && n <= (h->globals_off - off) / elem;
}

static bool in_section(const struct conf_lazy *lz, uint64_t off, uint64_t n,
		       uint64_t elem)
{
	return off <= lz->size && n <= (lz->size - off) / elem;
}

/* Every offset and count of the small part points where it may. */
static bool valid_small(const struct conf_lazy *lz)
{
	const struct index_header *h = &lz->h;

	if (h->nclient > UINT32_MAX || h->nsocks > UINT32_MAX ||
	    !in_small(h, h->globals_off, h->globals_size, 1) ||
	    h->globals_off % _Alignof(max_align_t) ||
	    !in_section(lz, h->entries_off, h->nentries,
			sizeof(struct index_entry)) ||
	    !in_section(lz, h->records_off, h->nclient + h->nsocks,
			sizeof(struct index_record)) ||
	    !in_section(lz, h->blobs_off, h->blobs_size, 1) ||
	    h->blobs_off % _Alignof(max_align_t))
		return false;
	for (int set = 0; set < 2; set++)
		for (int d = 0; d < DIM_COUNT; d++) {
			const struct index_dim *dim = &h->dims[set][d];
			size_t n = set_size(h, set), words = (n + 63) / 64;
			if (dim->always_runs
				    ? !table_in_small(h, dim->always_off, dim->always_runs,
						      sizeof(struct index_run))
				    : !table_in_small(h, dim->always_off, words, 8))
				return false;
			/* runs in order, apart, within the set: filling and
			 * masking by them must agree */
			const struct index_run *r =
				(const void *)(lz->small + dim->always_off);
			uint64_t next = 0;
			for (uint64_t i = 0; i < dim->always_runs; i++) {
				if (r[i].first < next || r[i].first > n ||
				    r[i].count > n - r[i].first)
					return false;
				next = (uint64_t)r[i].first + r[i].count;
			}
			if (!table_in_small(h, dim->groups_off, dim->ngroups,
					    sizeof(struct index_group)))
				return false;
			const struct index_group *g =
				(const void *)(lz->small + dim->groups_off);
			for (uint64_t i = 0; i < dim->ngroups; i++)
				if ((g[i].family != 4 && g[i].family != 6) ||
				    g[i].prefix > (g[i].family == 4 ? 32 : 128) ||
				    g[i].first > h->nentries ||
				    g[i].count > h->nentries - g[i].first ||
				    (index_group_blocks(&g[i]) > 1 &&
				     !in_section(lz, g[i].fences_off,
						 index_group_blocks(&g[i]),
						 index_key_width(g[i].family))))
					return false;
		}
	return true;
}

#define WHY(...) (snprintf(why, whylen, __VA_ARGS__), false)

/* The small part, in one read: its size is in the image's header. */
static bool read_small(struct conf_lazy *lz, char *why, size_t whylen)
{
	size_t n = (size_t)lz->image.lazy_small;

	if (n < sizeof(lz->h))
		return WHY("corrupt (index)");
	if (lz->copy) {
		lz->small = lz->copy;
	} else {
		lz->small = arena_alloc(&lz->arena, n);
		if (!lz->small)
			return WHY("out of memory");
		if (lz_read(lz, 0, lz->small, n))
			return WHY("truncated or corrupt");
	}
	memcpy(&lz->h, lz->small, sizeof(lz->h));
	if (lz->h.small_size != n)
		return WHY("corrupt (index)");
	struct index_header zero = lz->h;
	zero.small_sum = 0;
	memcpy(lz->small, &zero, sizeof(zero));
	if (image_checksum(lz->small, (size_t)lz->h.small_size) != lz->h.small_sum)
		return WHY("damaged (index checksum)");
	if (!valid_small(lz))
		return WHY("corrupt (index)");
	return true;
}

/* The global settings: the conf without its rules, stored in the small
 * part and relocated where it lies (nothing else reads those bytes); the
 * rules are counted but stay in the file. */
static struct conf *read_globals(struct conf_lazy *lz, char *why,
				 size_t whylen)
{
	size_t n = (size_t)lz->h.globals_size;
	char *base = lz->small + lz->h.globals_off;
	struct conf *c = img_relocate(base, (size_t)lz->h.globals_pool, n);

	if (!c || c->nclient || c->nsocks) {
		(void)WHY("corrupt (globals)");
		return NULL;
	}
	c->file = lz->file;
	c->nclient = (size_t)lz->h.nclient;
	c->nsocks = (size_t)lz->h.nsocks;
	c->image_block = base;
	c->image_mapped = 0;
	return c;
}

/* What a lazy conf of image H takes at open: its first block (the
 * reserve when that is enough: what it needs later, candidates and rules,
 * comes from the rest of the reserve, then from more blocks). */
static size_t first_block(const struct image_header *h, size_t name)
{
	size_t slack = 8 * _Alignof(max_align_t) + ARENA_REDZONE * 8;
	size_t part = h->lazy_size <= LAZY_READ_WHOLE ? (size_t)h->lazy_size
						       : (size_t)h->lazy_small;

	return sizeof(struct conf_lazy) + part + name + slack;
}

struct conf *conf_lazy_open(const char *conf_file, const char *image,
			    char *why, size_t whylen)
{
	struct image_header h;

	why[0] = '\0';
	int fd = img_open(conf_file, image, &h, why, whylen);
	if (fd < 0)
		return NULL;
	size_t name = strlen(conf_file) + 1;
	struct arena *arena = arena_map(first_block(&h, name));
	struct conf_lazy *lz = arena ? arena_alloc(&arena, sizeof(*lz)) : NULL;
	if (!lz) {
		arena_unmap(arena);
		close(fd);
		(void)WHY("out of memory");
		return NULL;
	}
	lz->arena = arena;
	lz->fd = fd;
	lz->image = h;
	lz->section = sizeof(lz->image) + lz->image.body_size;
	lz->size = lz->image.lazy_size;
	if (lz->size <= LAZY_READ_WHOLE) {
		char *copy = arena_alloc(&lz->arena, (size_t)lz->size);
		if (copy && lz_read(lz, 0, copy, (size_t)lz->size) == 0)
			lz->copy = copy;
	}
	lz->file = arena_alloc(&lz->arena, name);
	if (lz->file)
		memcpy(lz->file, conf_file, name);
	struct conf *c = NULL;
	if (!lz->file)
		(void)WHY("out of memory");
	else if (read_small(lz, why, whylen))
		c = read_globals(lz, why, whylen);
	if (!c) {
		conf_lazy_free(lz);
		return NULL;
	}
	c->lazy = lz;
	return c;
}

/* Frees LZ and the conf that holds it (which lives in LZ's arena). */
void conf_lazy_free(struct conf_lazy *lz)
{
	if (!lz)
		return;
	if (lz->fd >= 0)
		close(lz->fd);
	if (lz->whole)
		conf_free(lz->whole);
	arena_unmap(lz->arena);
}

int conf_lazy_fd(const struct conf *c)
{
	return c && c->lazy ? c->lazy->fd : -1;
}

void conf_lazy_on_problem(const struct conf *c,
			  void (*fn)(const char *problem, void *arg), void *arg)
{
	if (c && c->lazy) {
		c->lazy->report = fn;
		c->lazy->report_arg = arg;
	}
}

/* ---- falling back -------------------------------------------------- */

const struct conf *conf_lazy_whole(const struct conf *c)
{
	struct conf_lazy *lz = c->lazy;
	char why[300] = "";

	if (!lz)
		return c;
	if (lz->whole_tried)
		return lz->whole;
	lz->whole_tried = true;
	/* the body, through the descriptor already open (the file may no
	 * longer be openable: privileges are dropped by then) */
	if (lseek(lz->fd, (off_t)sizeof(lz->image), SEEK_SET) >= 0)
		lz->whole = img_load_body(lz->fd, &lz->image, lz->file, why,
					  sizeof(why));
	if (!lz->whole) {
		struct conf_diags d;
		problem(lz, "%s.compiled: not used: %s; reading the text",
			lz->file, why[0] ? why : "unreadable");
		lz->whole = conf_load(lz->file, &d);
		if (!lz->whole)
			problem(lz, "%s: does not load now (%s): blocking",
				lz->file, d.n ? d.v[0].msg : "unreadable");
		conf_diags_free(&d);
	}
	/* nothing is read one by one any more: a session that closes what
	 * it does not need may reuse the number, which must not be closed
	 * again when the conf is freed */
	close(lz->fd);
	lz->fd = -1;
	return lz->whole;
}

int conf_lazy_load_all(const struct conf *c)
{
	return !c->lazy || conf_lazy_whole(c) ? 0 : -1;
}

/* ---- the index ----------------------------------------------------- */

static void addr_key(const struct sockaddr_storage *ss, int *family,
		     uint8_t key[16])
{
	memset(key, 0, 16);
	*family = 0;
	if (ss->ss_family == AF_INET) {
		*family = 4;
		memcpy(key, &((const struct sockaddr_in *)ss)->sin_addr, 4);
	} else if (ss->ss_family == AF_INET6) {
		*family = 6;
		memcpy(key, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
	}
}

struct lookup {
	struct conf_lazy *lz;
	unsigned set, dim;
	const struct index_group *g;
	size_t nrules;
};

/* Reads entries [POS, POS + N) and checks each against its place. */
static int read_entries(const struct lookup *q, uint64_t pos,
			struct index_entry *e, size_t n)
{
	if (lz_read(q->lz, q->lz->h.entries_off + pos * sizeof(*e), e,
		    n * sizeof(*e)))
		return -1;
	for (size_t i = 0; i < n; i++)
		if (e[i].check != index_entry_check(&e[i], q->set, q->dim, q->g,
						    pos + i) ||
		    e[i].rule >= q->nrules)
			return -1;
	return 0;
}

/* Fence I of group G (its width W bytes) into F. */
static int read_fence(const struct lookup *q, uint64_t i, unsigned w,
		      uint8_t *f)
{
	return lz_read(q->lz, q->g->fences_off + i * w, f, w);
}

/* The block of group G where a scan for KEY starts: the last one whose
 * first key (its fence) is below KEY, or the first.  Every entry before
 * that block is below KEY too, since entries are sorted.  *FENCE gets the
 * chosen block's fence, for the caller to check against the block. */
static int start_block(const struct lookup *q, const uint8_t *key,
		       uint64_t *block, uint8_t fence[16])
{
	uint8_t chunk[FENCE_CHUNK];
	const unsigned w = index_key_width(q->g->family);
	uint64_t lo = 0, hi = index_group_blocks(q->g);  /* fences [0, lo)
							     are below KEY,
							     [hi, ...) not */
	*block = 0;
	if (hi <= 1)
		return 0;
	while ((hi - lo) * w > sizeof(chunk)) {
		uint64_t mid = lo + (hi - lo) / 2;
		if (read_fence(q, mid, w, chunk))
			return -1;
		if (memcmp(chunk, key, w) < 0) {
			lo = mid + 1;
			memcpy(fence, chunk, w);  /* fence lo - 1 */
		} else {
			hi = mid;
		}
	}
	if (lo < hi && lz_read(q->lz, q->g->fences_off + lo * w, chunk,
			       (size_t)(hi - lo) * w))
		return -1;
	uint64_t below = lo;
	while (below < hi && memcmp(chunk + (below - lo) * w, key, w) < 0)
		below++;
	if (below > lo)
		memcpy(fence, chunk + (below - 1 - lo) * w, w);
	*block = below ? below - 1 : 0;
	return 0;
}

/* Sets the bit of every rule of group G whose prefix holds KEY (already
 * masked to G's length): the block the fences point to, and the blocks
 * after it while their keys are not above KEY. */
static int lookup_group(const struct lookup *q, const uint8_t *key,
			uint64_t *bits)
{
	struct index_entry blk[INDEX_BLOCK];
	uint8_t fence[16];
	uint64_t block;

	if (start_block(q, key, &block, fence))
		return -1;
	const unsigned w = index_key_width(q->g->family);
	uint64_t end = q->g->first + q->g->count;
	for (uint64_t at = q->g->first + block * INDEX_BLOCK; at < end;) {
		size_t n = end - at < INDEX_BLOCK ? (size_t)(end - at) : INDEX_BLOCK;
		if (read_entries(q, at, blk, n))
			return -1;
		/* the fence that chose this block must be its first key:
		 * a damaged fence could otherwise skip entries */
		if (block && memcmp(blk[0].key, fence, w))
			return -1;
		block = 0;
		for (size_t i = 0; i < n; i++) {
			int k = memcmp(blk[i].key, key, 16);
			if (k > 0)
				return 0;
			if (k == 0)
				bits[blk[i].rule / 64] |= 1ull << (blk[i].rule % 64);
		}
		at += n;
	}
	return 0;
}

/* Whether side DIM of SET has literal prefixes of ADDR's family (else
 * its candidates are its bitmap of rules always visited). */
static bool has_literals(const struct conf_lazy *lz, unsigned set,
			 unsigned dim, const struct sockaddr_storage *addr)
{
	const struct index_dim *d = &lz->h.dims[set][dim];
	const struct index_group *g = (const void *)(lz->small + d->groups_off);
	uint8_t key[16];
	int family;

	addr_key(addr, &family, key);
	for (uint64_t i = 0; i < d->ngroups; i++)
		if (g[i].family == family && g[i].count)
			return true;
	return false;
}

/* Bits [A, B) of BITS set to V. */
static void fill_range(uint64_t *bits, size_t a, size_t b, bool v)
{
	while (a < b) {  /* a word at a time */
		size_t w = a / 64, end = (w + 1) * 64 < b ? (w + 1) * 64 : b;
		uint64_t m = (end - a == 64 ? ~0ull : (1ull << (end - a)) - 1)
			     << (a % 64);
		bits[w] = v ? bits[w] | m : bits[w] & ~m;
		a = end;
	}
}

/* BITS = (AND ? BITS and : ) the rules side DIM of SET always visits. */
static void always_bits(const struct conf_lazy *lz, unsigned set,
			unsigned dim, uint64_t *bits, bool and)
{
	const struct index_dim *d = &lz->h.dims[set][dim];
	size_t n = set_size(&lz->h, (int)set), words = (n + 63) / 64;
	const void *at = lz->small + d->always_off;

	if (!d->always_runs) {
		const uint64_t *a = at;
		for (size_t k = 0; k < words; k++)
			bits[k] = and ? bits[k] & a[k] : a[k];
		return;
	}
	const struct index_run *r = at;
	size_t next = 0;  /* the first rule not yet set or cleared */
	if (!and)
		memset(bits, 0, words * sizeof(uint64_t));
	for (uint64_t i = 0; i < d->always_runs; i++) {
		if (and && r[i].first > next)
			fill_range(bits, next, r[i].first, false);
		if (!and)
			fill_range(bits, r[i].first,
				   (size_t)r[i].first + r[i].count, true);
		if ((size_t)r[i].first + r[i].count > next)
			next = (size_t)r[i].first + r[i].count;
	}
	if (and)
		fill_range(bits, next, n, false);
}

/* BITS = the set's rules that ADDR does not rule out on side DIM. */
static int candidates(struct conf_lazy *lz, unsigned set, unsigned dim,
		      const struct sockaddr_storage *addr, uint64_t *bits)
{
	const struct index_dim *d = &lz->h.dims[set][dim];
	size_t nrules = set_size(&lz->h, (int)set);
	uint8_t key[16];
	int family;

	always_bits(lz, set, dim, bits, false);
	addr_key(addr, &family, key);
	struct lookup q = { .lz = lz, .set = set, .dim = dim,
			    .nrules = nrules };
	const struct index_group *g = (const void *)(lz->small + d->groups_off);
	for (uint64_t i = 0; i < d->ngroups; i++) {
		if (g[i].family != family || g[i].count == 0)
			continue;
		uint8_t k[16];
		memcpy(k, key, 16);
		addr_mask_prefix(k, sizeof(k), g[i].prefix);
		q.g = &g[i];
		if (lookup_group(&q, k, bits))
			return -1;
	}
	return 0;
}

/* ---- reading one rule ---------------------------------------------- */

static const struct rule *read_rule(struct conf_lazy *lz, unsigned set,
				    size_t i)
{
	size_t idx = set == RULE_CLIENT ? i : (size_t)lz->h.nclient + i;
	struct index_record rec;

	if (lz_read(lz, lz->h.records_off + idx * sizeof(rec), &rec,
		    sizeof(rec)) ||
	    rec.off > lz->h.blobs_size || rec.len > lz->h.blobs_size - rec.off) {
		problem(lz, "%s.compiled: not used: corrupt (%s-rule #%zu's record)",
			lz->file, SET_NAME(set), i + 1);
		return NULL;
	}
	char *data = arena_alloc(&lz->arena, rec.len ? rec.len : 1);
	if (!data)
		return NULL;
	if (lz_read(lz, lz->h.blobs_off + rec.off, data, rec.len) ||
	    index_blob_sum(data, rec.len, set, i) != rec.sum) {
		problem(lz, "%s.compiled: not used: damaged (%s-rule #%zu)",
			lz->file, SET_NAME(set), i + 1);
		return NULL;
	}
	struct rule *r = img_relocate_rule(data, rec.pool, rec.len,
					   (enum rule_set)set);
	if (!r) {
		problem(lz, "%s.compiled: not used: corrupt (%s-rule #%zu)",
			lz->file, SET_NAME(set), i + 1);
		return NULL;
	}
	const char *drift = img_interface_drift(&r->from);
	if (!drift)
		drift = img_interface_drift(&r->to);
	if (drift) {
		problem(lz, "%s.compiled: not used: \"%s\" changed between "
			"interface and host name since it was compiled; "
			"compile it again", lz->file, drift);
		return NULL;
	}
	return r;
}

/* ---- walking ------------------------------------------------------- */

/* *BUF, a candidate buffer of the conf's, with room for WORDS (NULL when
 * out of memory). */
static void grow_bits(struct conf_lazy *lz, uint64_t **buf, size_t *cap,
		      size_t words)
{
	if (*buf && *cap >= words)
		return;
	*buf = arena_alloc(&lz->arena, (words ? words : 1) * sizeof(uint64_t));
	*cap = *buf ? words : 0;
}

void rule_walk_begin(struct rule_walk *w, const struct conf *c,
		     enum rule_set set, const struct sockaddr_storage *from,
		     const struct sockaddr_storage *to)
{
	memset(w, 0, sizeof(*w));
	w->c = c;
	w->set = set;
	w->n = set == RULE_CLIENT ? c->nclient : c->nsocks;
	struct conf_lazy *lz = c->lazy;
	if (!lz || lz->whole_tried) {
		if (lz)
			w->failed = true;  /* decide on the whole rules */
		return;
	}
	if (arena_bytes(lz->arena) > LAZY_MAX_BYTES) {
		w->failed = true;  /* enough read one by one: the whole rules */
		return;
	}
	size_t words = (w->n + 63) / 64;
	/* a side without literals of the address's family is its bitmap,
	 * which the small part holds: only a side with them needs a second
	 * buffer (a page fewer to touch for 10 000 rules) */
	bool to_literals = to && has_literals(lz, set, DIM_TO, to);
	grow_bits(lz, &lz->bits, &lz->bits_words, words);  /* one walk at */
	if (to_literals)                                    /* a time */
		grow_bits(lz, &lz->other, &lz->other_words, words);
	w->bits = lz->bits;
	if (!w->bits || (to_literals && !lz->other)) {
		w->failed = true;  /* out of memory: the whole rules may load */
		return;
	}
	if (!from)
		memset(w->bits, 0xff, words * sizeof(uint64_t));
	else if (candidates(lz, set, DIM_FROM, from, w->bits))
		w->failed = true;
	if (!w->failed && to) {
		if (!to_literals)
			always_bits(lz, set, DIM_TO, w->bits, true);
		else if (candidates(lz, set, DIM_TO, to, lz->other))
			w->failed = true;
		else
			for (size_t k = 0; k < words; k++)
				w->bits[k] &= lz->other[k];
	}
	if (w->failed)
		problem(lz, "%s.compiled: not used: damaged (index)", lz->file);
}

const struct rule *rule_walk_next(struct rule_walk *w)
{
	if (w->failed)
		return NULL;
	struct conf_lazy *lz = w->c->lazy;
	if (!lz)
		return w->next < w->n ? &(w->set == RULE_CLIENT
						  ? conf_client_rules(w->c)
						  : conf_socks_rules(w->c))[w->next++]
				      : NULL;
	while (w->next < w->n) {
		size_t i = w->next++;
		if (!(w->bits[i / 64] >> (i % 64) & 1)) {
			if (w->bits[i / 64] >> (i % 64) == 0)  /* skip the word */
				w->next = (i / 64 + 1) * 64;
			continue;
		}
		if (++w->visited > LAZY_MAX_VISITS) {
			w->failed = true;   /* cheaper whole; no problem */
			return NULL;
		}
		const struct rule *r = read_rule(lz, w->set, i);
		if (!r)
			w->failed = true;
		return r;
	}
	return NULL;
}
