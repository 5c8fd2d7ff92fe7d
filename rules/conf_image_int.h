/* Inside the compiled rules image: what conf_image.c (the whole image),
 * conf_index.c (the index written after it) and conf_lazy.c (decisions
 * that read only the rules they need) share.  Not for the programs. */
#ifndef SOCKD_CONF_IMAGE_INT_H
#define SOCKD_CONF_IMAGE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "conf.h"

#ifndef SOCKD_VERSION
#define SOCKD_VERSION "unversioned"  /* builds outside the Makefile (fuzz) */
#endif
/* The Makefile passes a hash of the rules engine's sources: a parser that
 * changed within one version must not take an image of the old one. */
#ifndef SOCKD_RULES_HASH
#define SOCKD_RULES_HASH "nohash"
#endif
#define IMAGE_BUILD SOCKD_VERSION "+" SOCKD_RULES_HASH

#define IMAGE_MAGIC "SOCKDIMG"
#define IMAGE_FORMAT 4u
#define IMAGE_MAX_BODY (256u << 20)

/* The file: this header, the body (the whole conf, conf_image.c), then
 * the index (conf_index.h), LAZY_SIZE bytes. */
struct image_header {
	char magic[8];
	uint32_t format;
	uint32_t header_size;
	char version[32];         /* IMAGE_BUILD of the writer */
	uint64_t layout;          /* img_layout_fingerprint() of the writer */
	uint64_t body_size, pool_start;
	uint64_t body_sum;        /* image_checksum() of the body */
	/* the rules file it was made from */
	uint64_t dev, ino, size;
	int64_t mtime_sec, mtime_nsec, ctime_sec, ctime_nsec;
	uint64_t lazy_size;       /* the index after the body */
	uint64_t lazy_small;      /* its small part (read at open in one
				     pread, before its own header is known) */
};

/* A checksum against damage (not against someone who can write the
 * file: ownership and mode are). */
uint64_t image_checksum(const void *p, size_t n);

uint64_t img_layout_fingerprint(void);

/* A growing buffer that structures are serialized into. */
struct imgbuf {
	char *p;
	size_t len, cap;
	bool oom;
};

/* Appends N bytes of SRC at ALIGN; returns their offset. */
size_t img_put(struct imgbuf *b, const void *src, size_t n, size_t align);

/* Serializes C (its rules too unless WITH_RULES is false) into B, every
 * pointer as 1 + its offset from the start of B; *POOL: where the
 * strings begin. */
int img_serialize(const struct conf *c, bool with_rules, struct imgbuf *b,
		  size_t *pool);

/* Serializes rule R alone in the same way: the struct, its name arrays,
 * then its strings. */
int img_serialize_rule(const struct rule *r, struct imgbuf *b, size_t *pool);

/* Checks and relocates, in place, a body that img_serialize wrote (SIZE
 * bytes at BASE, strings from POOL).  Returns the conf or NULL. */
struct conf *img_relocate(char *base, size_t pool, size_t size);

/* The same for one rule of SET that img_serialize_rule wrote. */
struct rule *img_relocate_rule(char *base, size_t pool, size_t size,
			       enum rule_set set);

int img_read_exact(int fd, void *p, size_t n);
int img_pread_exact(int fd, void *p, size_t n, uint64_t off);

/* Reads the body that H describes from FD's offset, checks and relocates
 * it: the whole conf, named CONF_FILE.  NULL with WHY. */
struct conf *img_load_body(int fd, const struct image_header *h,
			   const char *conf_file, char *why, size_t whylen);

/* Opens IMAGE and checks everything about it that does not need its
 * body: a regular file owned by root (or us), writable by nobody else,
 * of this build, of the rules file as it is now.  Returns the fd with *H
 * read, or -1 with WHY ("" when there is no image). */
int img_open(const char *conf_file, const char *image,
	     struct image_header *h, char *why, size_t whylen);

/* A bare word in from:/to: compiled as interface or host name that now
 * means the other (NULL when it still means the same). */
const char *img_interface_drift(const struct rule_addr *a);
const char *img_names_drift(const struct conf *c);

#endif
