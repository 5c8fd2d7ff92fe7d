/* Rules engine speed: load + decide on a generated N-rule file, the work
 * every connection does before its first byte is relayed, from the text
 * (parse) and from the compiled image (sockd-check --compile).
 *
 * Each sample is a fresh process, as a session is: a warm loop in one
 * process reuses its heap and hides the page faults that dominate a new
 * process's load on a VM (the text of 10 000 rules: 3 ms warm, 30 ms
 * fresh).  The page cache is warm, as it is for a busy proxy.
 *
 * For scale it also times a TCP handshake on loopback (connect + accept,
 * the yardstick issue 3 names) both ways a load is timed: the first one
 * of a new process, and one of a tight loop in this process (its code,
 * sockets and caches warm).  The loop is not interleaved with the
 * spawns: a handshake timed right after a fork measures the cache the
 * fork evicted (90 us here, against 11 us in a loop).
 *
 * usage: rules_load [N rules] [rounds] [work dir]
 *        rules_load --once text|image FILE    (one sample, in ns) */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "conf.h"
#include "conf_image.h"
#include "rules_match.h"

extern char **environ;

static long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;
	return x < y ? -1 : x > y;
}

/* Loads FILE (text or image) and decides one request that only the last
 * rule passes; returns the time taken in ns, or -1. */
static long long load_decide(const char *mode, const char *file)
{
	struct sockaddr_storage cl, dst;
	struct conf_diags d;
	struct verdict v;
	char why[300] = "";
	bool used = false, image = strcmp(mode, "image") == 0;

	addr_parse_literal("127.0.0.1", &cl);
	addr_parse_literal("192.0.2.1", &dst);
	addr_set_port(&dst, 443);
	long long t0 = now_ns();
	struct conf *c = image ? conf_open(file, &d, &used, why, sizeof(why))
			       : conf_load(file, &d);
	struct facts f = { .client = &cl, .local = &cl,
			   .client_port_known = true, .local_port_known = true,
			   .version = 5, .command = CMD_CONNECT, .dest = &dst,
			   .dest_port = 443, .dest_port_known = true };
	if (!c || used != image ||
	    rules_decide_client(c, &f, &v) != MATCH_YES || !v.pass ||
	    rules_decide_socks(c, &f, &v) != MATCH_YES || !v.pass) {
		fprintf(stderr, "rules_load: unexpected result (%s) %s\n", mode, why);
		return -1;
	}
	long long t = now_ns() - t0;
	conf_free(c);
	conf_diags_free(&d);
	return t;
}

/* One sample in this (new) process. */
static int once(const char *mode, const char *file)
{
	long long t = load_decide(mode, file);

	if (t < 0)
		return 1;
	printf("%lld\n", t);
	return 0;
}

/* One loopback handshake: connect() to a listener and accept() it, ns. */
static long long handshake(int lfd, const struct sockaddr_in *a)
{
	int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	long long t0 = now_ns();

	if (c < 0 || connect(c, (const struct sockaddr *)a, sizeof(*a)))
		return -1;
	int s = accept(lfd, NULL, NULL);
	long long t = now_ns() - t0;
	close(c);
	if (s < 0)
		return -1;
	close(s);
	return t;
}

static long long sample(const char *self, const char *mode, const char *file)
{
	int p[2];
	pid_t pid;
	posix_spawn_file_actions_t fa;
	char *argv[] = { (char *)self, "--once", (char *)mode, (char *)file, NULL };

	if (!file)
		argv[3] = NULL;  /* --once handshake */
	char buf[64] = "";
	int st;

	if (pipe(p))
		return -1;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	posix_spawn_file_actions_addclose(&fa, p[0]);
	if (posix_spawn(&pid, self, &fa, NULL, argv, environ))
		return -1;
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);
	ssize_t n = read(p[0], buf, sizeof(buf) - 1);
	close(p[0]);
	if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) || n <= 0)
		return -1;
	return atoll(buf);
}

/* One sample of the yardstick as a session would meet it: the first
 * loopback handshake of a new process (its listener set up untimed). */
static int once_handshake(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) ||
	    listen(lfd, 4) || getsockname(lfd, (struct sockaddr *)&a, &al))
		return 1;
	long long t = handshake(lfd, &a);
	if (t < 0)
		return 1;
	printf("%lld\n", t);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--once") == 0 &&
	    strcmp(argv[2], "handshake") == 0)
		return once_handshake();
	if (argc == 4 && strcmp(argv[1], "--once") == 0)
		return once(argv[2], argv[3]);

	int n = argc > 1 ? atoi(argv[1]) : 10000;
	int rounds = argc > 2 ? atoi(argv[2]) : 50;
	size_t cap = (size_t)n * 128 + 1024, len = 0;
	char *text = malloc(cap);

	if (n < 2 || rounds < 1 || !text)
		return 64;
	len += (size_t)snprintf(text + len, cap - len,
		"socksmethod: none\nclient pass { from: 127.0.0.0/8 to: 0/0 }\n");
	/* worst case: the request matches only the last rule */
	for (int i = 0; i < n - 1; i++)
		len += (size_t)snprintf(text + len, cap - len,
			"socks block { from: 10.%d.%d.0/24 to: 0/0 port = %d "
			"log: error }\n", (i >> 8) & 255, i & 255, 1 + i % 65000);
	len += (size_t)snprintf(text + len, cap - len,
		"socks pass { from: 0/0 to: 0/0 log: connect }\n");

	char path[4096], image[4096], self[4096];
	ssize_t sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (sl <= 0)
		return 1;
	self[sl] = '\0';
	snprintf(path, sizeof(path), "%s/rules-%d.conf", argc > 3 ? argv[3] : "/tmp", n);
	FILE *fp = fopen(path, "w");
	if (!fp || fwrite(text, 1, len, fp) != len || fclose(fp)) {
		perror(path);
		return 1;
	}
	conf_image_path(path, image, sizeof(image));
	struct conf_diags d;
	char err[300];
	struct conf *cc = conf_image_compile(path, image, &d, err, sizeof(err));
	if (!cc) {
		fprintf(stderr, "rules_load: compile failed: %s\n", err);
		return 1;
	}
	conf_free(cc);
	conf_diags_free(&d);

	long long *t[4] = { calloc((size_t)rounds, sizeof(long long)),
			    calloc((size_t)rounds, sizeof(long long)),
			    calloc((size_t)rounds, sizeof(long long)),
			    calloc((size_t)rounds, sizeof(long long)) };
	static const char *const modes[2] = { "text", "image" };
	int rc = 0;
	struct sockaddr_in la = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t ll = sizeof(la);
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&la, sizeof(la)) ||
	    listen(lfd, 16) || getsockname(lfd, (struct sockaddr *)&la, &ll))
		rc = 1;
	for (int r = 0; r < rounds && !rc; r++) {  /* interleaved */
		for (int m = 0; m < 2 && !rc; m++)
			if ((t[m][r] = sample(self, modes[m], path)) < 0)
				rc = 1;
		if (!rc && (t[3][r] = sample(self, "handshake", NULL)) < 0)
			rc = 1;
	}
	/* the yardstick warm: handshakes back to back in this process */
	for (int r = 0; r < rounds * 4 && !rc; r++)  /* warm-up, untimed */
		if (handshake(lfd, &la) < 0)
			rc = 1;
	for (int r = 0; r < rounds && !rc; r++)
		if ((t[2][r] = handshake(lfd, &la)) < 0)
			rc = 1;
	/* the same work repeated in this process: code, libc, page cache and
	 * heap warm, as the handshake above is measured */
	long long *warm[2] = { calloc((size_t)rounds, sizeof(long long)),
			       calloc((size_t)rounds, sizeof(long long)) };
	for (int m = 0; m < 2 && !rc; m++)  /* one mode at a time: the text's
					       3 ms would evict the image's */
		for (int r = -5; r < rounds && !rc; r++) {  /* 5 to warm up */
			long long x = load_decide(modes[m], path);
			if (x < 0)
				rc = 1;
			else if (r >= 0)
				warm[m][r] = x;
		}
	if (lfd >= 0)
		close(lfd);
	if (!rc) {
		qsort(t[2], (size_t)rounds, sizeof(long long), cmp);
		printf("loopback_handshake median=%.1f us min=%.1f us\n",
		       t[2][rounds / 2] / 1e3, t[2][0] / 1e3);
		qsort(t[3], (size_t)rounds, sizeof(long long), cmp);
		printf("loopback_handshake_new_process median=%.1f us min=%.1f us\n",
		       t[3][rounds / 2] / 1e3, t[3][0] / 1e3);
	}
	for (int m = 0; m < 2 && !rc; m++) {
		qsort(t[m], (size_t)rounds, sizeof(long long), cmp);
		printf("rules=%d bytes=%zu rounds=%d from=%s load+decide "
		       "median=%.3f ms min=%.3f ms max=%.3f ms\n", n, len, rounds,
		       modes[m], t[m][rounds / 2] / 1e6, t[m][0] / 1e6,
		       t[m][rounds - 1] / 1e6);
	}
	for (int m = 0; m < 2 && !rc; m++) {
		qsort(warm[m], (size_t)rounds, sizeof(long long), cmp);
		printf("rules=%d rounds=%d from=%s-warm load+decide median=%.3f ms "
		       "min=%.3f ms\n", n, rounds, modes[m],
		       warm[m][rounds / 2] / 1e6, warm[m][0] / 1e6);
	}
	free(warm[0]);
	free(warm[1]);
	unlink(image);
	unlink(path);
	free(t[0]);
	free(t[1]);
	free(t[2]);
	free(t[3]);
	free(text);
	return rc;
}
