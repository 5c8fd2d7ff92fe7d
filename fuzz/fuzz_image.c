/* libFuzzer: the compiled rules image loader never trusts what it reads.
 *
 * An input is a rules text, optionally followed by a NUL and patches of
 * four bytes each (offset, 24 bits little-endian; value) applied to the body
 * of the text's image: the fuzzer explores both what the writer produces
 * and what a damaged image holds, from plain rules files as seeds.  Every
 * load must be refused or give a conf that dumps and decides safely; an
 * unpatched image must load and dump exactly as its text does. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "addr.h"
#include "conf.h"
#include "conf_image.h"
#include "conf_lazy.h"
#include "rules_match.h"


static char conf_file[64], image[80];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* tmpfs: the writer's fsync costs nothing there */
	snprintf(conf_file, sizeof(conf_file), "/dev/shm/fuzz-image-%d.conf",
		 (int)getpid());
	snprintf(image, sizeof(image), "%s.compiled", conf_file);
	return 0;
}

static char *dump(const struct conf *c)
{
	char *buf = NULL;
	size_t len;
	FILE *f = open_memstream(&buf, &len);

	conf_dump(c, f);
	fclose(f);
	return buf;
}

/* Decides a few requests; returns the deciding rules as one number. */
static unsigned long exercise(const struct conf *c)
{
	struct sockaddr_storage cl, dst;
	struct verdict v;

	addr_parse_literal("192.0.2.1", &cl);
	addr_parse_literal("198.51.100.1", &dst);
	addr_set_port(&dst, 443);
	struct facts f = { .client = &cl, .local = &cl, .client_port_known = true,
			   .local_port_known = true, .version = 5,
			   .command = CMD_CONNECT, .dest = &dst,
			   .dest_name = "a.example.com", .dest_port = 443,
			   .dest_port_known = true, .method = METHOD_USERNAME,
			   .user = "u" };
	unsigned long sum = 0;
	rules_decide_client(c, &f, &v);
	sum = sum * 131 + (v.rule ? v.rule->number : 0) * 2 + v.pass;
	rules_decide_socks(c, &f, &v);
	sum = sum * 131 + (v.rule ? v.rule->number : 0) * 2 + v.pass;
	f.dest = NULL;
	f.client_port_known = false;
	rules_decide_socks(c, &f, &v);
	sum = sum * 131 + (v.rule ? v.rule->number : 0) * 2 + v.pass;
	const struct rule *r = rules_first_possible_pass(c, &f);
	sum = sum * 131 + (r ? r->number : 0);
	free(dump(c));  /* last: for a lazy conf it reads every rule */
	return sum;
}

/* A sound image reports no problem: only damage or drift would. */
static void no_problem(const char *problem, void *arg)
{
	(void)problem;
	(void)arg;
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, 0, size);
	size_t text_len = nul ? (size_t)(nul - data) : size;
	struct conf_diags d;
	char err[300], why[300];
	struct conf *c = conf_parse_buffer(conf_file, (const char *)data, text_len,
					   &d);

	conf_diags_free(&d);
	if (!c)
		return 0;
	/* a rules file for the image to be current against (both files are
	 * removed before returning: nothing is left when the run ends) */
	struct stat conf_st;
	int cfd = open(conf_file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (cfd < 0 || write(cfd, "#\n", 2) != 2 || fstat(cfd, &conf_st) ||
	    close(cfd))
		abort();
	if (conf_image_write(c, &conf_st, image, err, sizeof(err)))
		abort();
	size_t npatch = nul ? (size - text_len - 1) / 4 : 0;
	int fd = open(image, O_RDWR);
	struct stat ist;
	if (fd < 0 || fstat(fd, &ist))
		abort();
	size_t header = conf_image_header_size();
	size_t body = (size_t)ist.st_size - header;
	for (size_t i = 0; i < npatch && body; i++) {
		const uint8_t *p = nul + 1 + 4 * i;
		off_t at = (off_t)(header + (((size_t)p[0] | (size_t)p[1] << 8 |
					      (size_t)p[2] << 16) % body));
		if (pwrite(fd, &p[3], 1, at) != 1)
			abort();
	}
	close(fd);
	/* past the checksum, to the checks behind it */
	if (npatch && conf_image_reseal(image))
		abort();
	struct conf *img = conf_image_load(conf_file, image, why, sizeof(why));
	if (!img && npatch == 0)
		abort();                 /* a fresh image must load */
	if (img) {
		unsigned long want = exercise(img);
		if (npatch == 0) {       /* and say what the text says */
			char *a = dump(c), *b = dump(img);
			if (strcmp(a, b) || exercise(c) != want)
				abort();
			free(a);
			free(b);
		}
	}
	/* the index, rule by rule (conf_lazy.c): damage behind the resealed
	 * checksums must be caught or harmless, never read out of bounds */
	struct conf *lazy = conf_lazy_open(conf_file, image, why, sizeof(why));
	if (!lazy && npatch == 0)
		abort();
	if (lazy) {
		if (npatch == 0)
			conf_lazy_on_problem(lazy, no_problem, NULL);
		unsigned long got = exercise(lazy);
		if (npatch == 0 && got != exercise(c))
			abort();         /* a sound index decides as the text */
	}
	conf_free(lazy);
	conf_free(img);
	conf_free(c);
	unlink(image);
	unlink(conf_file);
	return 0;
}
