/* Unit tests: the compiled rules image.  It must say exactly what the text
 * says, be refused whenever it may not (stale, foreign, writable by
 * others, not a file, truncated), and never be trusted past its bounds:
 * every byte of an image is corrupted in turn and each load must either
 * be refused or give a conf that can be used safely (ASan watches). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "addr.h"
#include "conf.h"
#include "conf_image.h"
#include "rules_match.h"
#include "tap.h"

static char dir[] = "/tmp/sockd-image-XXXXXX";

static char *dump(const struct conf *c)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	conf_dump(c, f);
	fclose(f);
	return buf;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f || fputs(text, f) < 0 || fclose(f)) {
		perror(path);
		exit(1);
	}
}

static char *read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;

	*len = 0;
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	rewind(f);
	buf = malloc((size_t)n + 1);
	if (buf && fread(buf, 1, (size_t)n, f) == (size_t)n) {
		buf[n] = '\0';
		*len = (size_t)n;
	}
	fclose(f);
	return buf;
}

/* Compiles SRC (a rules file) and checks that the image loads, is what
 * conf_open takes, and dumps exactly as the text does. */
static void round_trip(const char *name, const char *src)
{
	char conf[600], image[700], err[300], why[300];
	struct conf_diags d;
	size_t len;
	char *text = read_all(src, &len);

	snprintf(conf, sizeof(conf), "%s/%s", dir, name);
	if (!text) {
		tap_ok(false, "read %s", src);
		return;
	}
	write_file(conf, text);
	free(text);
	conf_image_path(conf, image, sizeof(image));
	struct conf *t = conf_image_compile(conf, image, &d, err, sizeof(err));
	if (!tap_ok(t != NULL, "%s: compiles", name)) {
		tap_diag("%s", err);
		for (size_t i = 0; i < d.n; i++)
			tap_diag("%u:%u: %s", d.v[i].line, d.v[i].col, d.v[i].msg);
	}
	conf_diags_free(&d);
	if (!t)
		return;
	bool used;
	struct conf *c = conf_open(conf, &d, &used, why, sizeof(why));
	conf_diags_free(&d);
	if (!tap_ok(c && used, "%s: conf_open takes the image", name))
		tap_diag("%s", why);
	char *a = dump(t), *b = c ? dump(c) : NULL;
	tap_ok(b && !strcmp(a, b), "%s: the image dumps as the text does", name);
	tap_ok(c && !strcmp(c->file, conf), "%s: named as the caller names it",
	       name);
	free(a);
	free(b);
	conf_free(c);
	conf_free(t);
	unlink(image);
	unlink(conf);
}

/* Large files take the other allocation paths of the loader (a populated
 * mapping from 64 KiB, huge pages from 1 MiB): the same round trip. */
static void large_files(void)
{
	static const int sizes[] = { 400, 5000 };

	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		char src[600], name[64];
		snprintf(src, sizeof(src), "%s/large.src", dir);
		FILE *f = fopen(src, "w");
		if (!f)
			exit(1);
		fprintf(f, "socksmethod: none username\n"
			"client pass { from: 127.0.0.0/8 to: 0/0 }\n");
		for (int i = 0; i < sizes[k]; i++)
			fprintf(f, "socks block { from: 10.%d.%d.0/24 to: .d%d.example "
				"port = %d user: u%d log: error }\n", (i >> 8) & 255,
				i & 255, i, 1 + i % 65000, i);
		fprintf(f, "socks pass { from: 0/0 to: 0/0 }\n");
		fclose(f);
		snprintf(name, sizeof(name), "large-%d.conf", sizes[k]);
		round_trip(name, src);
		unlink(src);
	}
}

static void every_repository_conf(void)
{
	static const char *const dirs[] = { "conf", "conf/examples", "t/conf" };

	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		DIR *dp = opendir(dirs[i]);
		struct dirent *e;
		while (dp && (e = readdir(dp))) {
			size_t n = strlen(e->d_name);
			char src[600];
			if (n < 6 || strcmp(e->d_name + n - 5, ".conf") ||
			    !strcmp(e->d_name, "syntax-error.conf"))
				continue;
			snprintf(src, sizeof(src), "%s/%s", dirs[i], e->d_name);
			round_trip(e->d_name, src);
		}
		if (dp)
			closedir(dp);
	}
}

/* Every kind of pointer the structures hold, so a missed one shows. */
static const char rich[] =
	"logoutput: stderr syslog/daemon /tmp/sockd-image-test.log\n"
	"errorlog: syslog\n"
	"user.privileged: root\nuser.unprivileged: nobody\n"
	"external: 127.0.0.1\nexternal: lo\n"
	"clientmethod: none pam.address\n"
	"socksmethod: none username pam.username gssapi\n"
	"client pass { from: 127.0.0.0/8 to: 0/0 pamservicename: sockd-x\n"
	"  gssapi.keytab: /etc/sockd.keytab gssapi.servicename: rcmd\n"
	"  clientmethod: pam.address }\n"
	"client pass { from: ::1/128 port = 1080 to: lo }\n"
	"socks pass { from: 0/0 to: .example.com port ge 1024 user: alice bob\n"
	"  group: staff users log: connect disconnect }\n"
	"socks block { from: 0/0 to: host.example.org port 80-90\n"
	"  command: bind udpassociate timeout.io: 30 }\n"
	"socks pass { from: 10.0.0.0/8 to: 0.0.0.0/0 socksmethod: username\n"
	"  udp.portrange: 2000-3000 protocol: udp }\n";

static void rich_round_trip(void)
{
	char src[600];

	snprintf(src, sizeof(src), "%s/rich.src", dir);
	write_file(src, rich);
	round_trip("rich.conf", src);
	unlink(src);
}

/* Compiles TEXT into DIR/NAME; returns the image path in IMAGE. */
static bool compile_text(const char *name, const char *text, char *conf,
			 size_t clen, char *image, size_t ilen)
{
	char err[300];
	struct conf_diags d;

	snprintf(conf, clen, "%s/%s", dir, name);
	write_file(conf, text);
	conf_image_path(conf, image, ilen);
	struct conf *c = conf_image_compile(conf, image, &d, err, sizeof(err));
	conf_diags_free(&d);
	conf_free(c);
	return c != NULL;
}

static void refused(const char *conf, const char *image, const char *what,
		    const char *name)
{
	char why[300];
	struct conf *c = conf_image_load(conf, image, why, sizeof(why));

	if (!tap_ok(!c && strstr(why, what), "refused: %s", name))
		tap_diag("why: \"%s\", want \"%s\"", why, what);
	conf_free(c);
}

static void patch(const char *image, off_t at, const void *bytes, size_t n)
{
	int fd = open(image, O_WRONLY);

	if (fd < 0 || pwrite(fd, bytes, n, at) != (ssize_t)n || close(fd)) {
		perror(image);
		exit(1);
	}
}

static void refusals(void)
{
	char conf[600], image[700], why[300], copy[800];
	const char *text = "socksmethod: none\n"
			   "client pass { from: 0/0 to: 0/0 }\n"
			   "socks block { from: 0/0 to: 0/0 }\n";

	if (!compile_text("r.conf", text, conf, sizeof(conf), image,
			  sizeof(image))) {
		tap_ok(false, "compile r.conf");
		return;
	}
	snprintf(copy, sizeof(copy), "%s.good", image);
	size_t len;
	char *good = read_all(image, &len);
	write_file(copy, "");
	struct conf *c = conf_image_load(conf, image, why, sizeof(why));
	tap_ok(c != NULL && why[0] == '\0', "a fresh image loads");
	conf_free(c);

	char none[800];
	snprintf(none, sizeof(none), "%s/absent.conf", dir);
	c = conf_image_load(none, "/nonexistent/x.compiled", why, sizeof(why));
	tap_ok(!c && why[0] == '\0', "no image: nothing to say");

	chmod(image, 0664);
	refused(conf, image, "writable by group or others", "group-writable");
	chmod(image, 0646);
	refused(conf, image, "writable by group or others", "world-writable");
	chmod(image, 0644);

	unlink(copy);
	if (symlink(image, copy) == 0)
		refused(conf, copy, strerror(ELOOP), "a symbolic link");
	unlink(copy);
	mkdir(copy, 0755);
	refused(conf, copy, "not a regular file", "a directory");
	rmdir(copy);

	patch(image, 0, "X", 1);
	refused(conf, image, "not a sockd rules image", "bad magic");
	patch(image, 0, good, len);

	patch(image, 16, "9.9.9", 6);  /* the version field */
	refused(conf, image, "another build", "another program version");
	patch(image, 0, good, len);

	if (truncate(image, (off_t)len - 1) == 0)
		refused(conf, image, "truncated", "truncated by one byte");
	patch(image, 0, good, len);

	/* one bit of the body: in range for every field, caught by the sum */
	size_t at = conf_image_header_size() + 64;
	unsigned char flip = (unsigned char)good[at] ^ 1;
	patch(image, (off_t)at, &flip, 1);
	refused(conf, image, "damaged (checksum)", "one flipped bit in the body");
	patch(image, 0, good, len);

	c = conf_image_load(conf, image, why, sizeof(why));
	tap_ok(c != NULL, "restored image loads again");
	conf_free(c);

	/* an edit of the same size right after compiling is still seen: the
	 * compiler waited for the clock to pass the file's change time (on
	 * kernels with fine-grained timestamps, 6.13 on, the kernel alone
	 * already gives a later one after a stat; Debian 12's 6.1 does not) */
	write_file(conf, "socksmethod: none\n"
			 "client pass { from: 0/0 to: 0/0 }\n"
			 "socks pass  { from: 0/0 to: 0/0 }\n");
	refused(conf, image, "out of date", "an edit of the same size");
	bool used;
	struct conf_diags d;
	c = conf_open(conf, &d, &used, why, sizeof(why));
	conf_diags_free(&d);
	tap_ok(c && !used && c->nsocks == 1 && c->rules[c->nclient].pass,
	       "conf_open then reads the edited text");
	conf_free(c);
	free(good);
	unlink(image);
	unlink(conf);
}

/* Uses C the way the session and the checker do. */
static void exercise(const struct conf *c)
{
	struct sockaddr_storage cl, dst;
	struct verdict v;
	FILE *null = fopen("/dev/null", "w");

	conf_dump(c, null);
	fclose(null);
	addr_parse_literal("127.0.0.1", &cl);
	addr_parse_literal("192.0.2.1", &dst);
	struct facts f = { .client = &cl, .local = &cl,
			   .client_port_known = true, .local_port_known = true,
			   .version = 5, .command = CMD_CONNECT, .dest = &dst,
			   .dest_port = 80, .dest_port_known = true,
			   .method = METHOD_USERNAME, .user = "alice" };
	rules_decide_client(c, &f, &v);
	rules_decide_socks(c, &f, &v);
}

static void corruption_sweep(void)
{
	char conf[600], image[700], why[300];
	size_t len;
	static const unsigned char values[] = { 0x00, 0x01, 0x7f, 0xff };

	if (!compile_text("sweep.conf", rich, conf, sizeof(conf), image,
			  sizeof(image))) {
		tap_ok(false, "compile sweep.conf");
		return;
	}
	char *good = read_all(image, &len);
	unsigned loads = 0, refusals_seen = 0;
	for (size_t at = 0; at < len; at++) {
		for (size_t k = 0; k < sizeof(values); k++) {
			if ((unsigned char)good[at] == values[k])
				continue;
			patch(image, (off_t)at, &values[k], 1);
			conf_image_reseal(image);  /* past the checksum */
			struct conf *c = conf_image_load(conf, image, why,
							 sizeof(why));
			if (c) {
				exercise(c);
				loads++;
			} else {
				refusals_seen++;
			}
			conf_free(c);
		}
		patch(image, (off_t)at, &good[at], 1);
	}
	conf_image_reseal(image);
	tap_ok(refusals_seen > 0 && loads + refusals_seen > 3 * len - len,
	       "every byte of a %zu-byte image corrupted 3-4 ways: %u refused, "
	       "%u loaded and used safely", len, refusals_seen, loads);
	struct conf *c = conf_image_load(conf, image, why, sizeof(why));
	tap_ok(c != NULL, "the restored image loads");
	conf_free(c);
	free(good);
	unlink(image);
	unlink(conf);
}

int main(void)
{
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	every_repository_conf();
	rich_round_trip();
	large_files();
	refusals();
	corruption_sweep();
	rmdir(dir);
	return tap_done();
}
