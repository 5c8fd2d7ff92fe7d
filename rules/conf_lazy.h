/* Rules read from a compiled image as decisions need them (conf_index.h
 * says why and how the image is laid out for it).
 *
 * conf_open() gives sessions and sockd-check a conf whose rules stay in
 * the image: the conf holds the global settings and an open descriptor of
 * the image, and a decision reads, checks and relocates only the rules it
 * visits (its client's, found through the index).  Whatever goes wrong on
 * the way (damage, a host name that became an interface, a decision that
 * would visit too many rules to be worth reading one by one) makes the
 * decision start again on the whole rules (the whole image, else the
 * text), so the answer is always the one the text gives. */
#ifndef SOCKD_CONF_LAZY_H
#define SOCKD_CONF_LAZY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "conf.h"

/* Opens IMAGE of CONF_FILE for lazy decisions.  NULL with WHY when it is
 * not usable ("" when there is none). */
struct conf *conf_lazy_open(const char *conf_file, const char *image,
			    char *why, size_t whylen);

void conf_lazy_free(struct conf_lazy *lz);

/* The descriptor a lazy conf reads from (-1 for any other conf): a
 * session that closes what it does not need must keep it. */
int conf_lazy_fd(const struct conf *c);

/* Reads every rule now, for decisions made where no file may be read
 * (under the UDP relay's sandbox).  0, or -1 when neither the image nor
 * the text gave them (decisions then block). */
int conf_lazy_load_all(const struct conf *c);

/* Gives the pages that freed lazy confs used back to the kernel: for a
 * process that freed its conf and will idle (a TCP relay). */
void conf_lazy_release_memory(void);

/* Called with the reason each time a lazy decision had to fall back
 * because the image is damaged or out of step (not when it merely chose
 * to read all rules). */
void conf_lazy_on_problem(const struct conf *c,
			  void (*fn)(const char *problem, void *arg),
			  void *arg);

/* Walks the rules of one set that may match, in file order.  For a
 * conf that is not lazy (or has fallen back) that is every rule. */
struct rule_walk {
	const struct conf *c;
	enum rule_set set;
	size_t next, n;
	uint64_t *bits;           /* lazy: the candidates (the conf's one
				     buffer: walks go one at a time) */
	size_t visited;
	bool failed;              /* start again on conf_lazy_whole() */
};

/* FROM: the client's address (required); TO: the local address (client
 * rules) or the destination (socks rules), NULL when unknown or when
 * rules may not be skipped by it (see rules_match.c). */
void rule_walk_begin(struct rule_walk *w, const struct conf *c,
		     enum rule_set set, const struct sockaddr_storage *from,
		     const struct sockaddr_storage *to);
const struct rule *rule_walk_next(struct rule_walk *w);

/* The conf to decide on after a walk failed: C's rules read whole (the
 * image's body, else the text), loaded once.  NULL when neither loads. */
const struct conf *conf_lazy_whole(const struct conf *c);

#endif
