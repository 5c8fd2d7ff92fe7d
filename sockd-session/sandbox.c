/* seccomp allowlist as a table, after OpenSSH's sandbox-seccomp-filter.c:
 * check the architecture, refuse x32, allow what the relay uses, trap the
 * rest.  Written as raw BPF so that no library is loaded per connection. */
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sandbox.h"

#if defined(__x86_64__)
#define SECCOMP_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define SECCOMP_ARCH AUDIT_ARCH_AARCH64
#endif

#if defined(__SANITIZE_ADDRESS__) || !defined(SECCOMP_ARCH)
#define SANDBOX_FILTER 0
#else
#define SANDBOX_FILTER 1
#endif

#define EXIT_SANDBOX 5

#if SANDBOX_FILTER
/* What every relay needs: move bytes, wait, end, allocate, tell time, log. */
static const int relay_calls[] = {
	SYS_read, SYS_write, SYS_writev, SYS_splice, SYS_ppoll,
	SYS_recvfrom, SYS_sendto, SYS_sendmsg, SYS_shutdown, SYS_close,
	SYS_exit, SYS_exit_group, SYS_rt_sigreturn, SYS_rt_sigprocmask,
	SYS_restart_syscall, SYS_clock_gettime, SYS_gettimeofday,
	SYS_clock_nanosleep, SYS_brk, SYS_mmap, SYS_munmap, SYS_mremap,
	SYS_madvise, SYS_futex, SYS_getpid, SYS_gettid, SYS_fcntl,
	SYS_getrandom,       /* krb5's confounders under GSSAPI */
#ifdef SYS_poll
	SYS_poll,
#endif
};

/* UDP relays also resolve names per datagram and open their outgoing
 * sockets lazily: the resolver reads files and talks to DNS servers. */
static const int udp_calls[] = {
	SYS_socket, SYS_connect, SYS_bind, SYS_getsockname, SYS_getsockopt,
	SYS_setsockopt, SYS_recvmsg, SYS_sendmmsg, SYS_newfstatat, SYS_fstat,
	SYS_lseek, SYS_ioctl, SYS_uname,
#ifdef SYS_stat
	SYS_stat,
#endif
};
#endif

/* names in place, not pointers: a table of pointers would be relocated at
 * start, and dirty a page of its own in every session */
static const struct { int nr; char name[8]; } names[] = {
	{ SYS_execve, "execve" }, { SYS_socket, "socket" },
	{ SYS_openat, "openat" }, { SYS_connect, "connect" },
	{ SYS_ptrace, "ptrace" }, { SYS_clone, "clone" },
};

static int log_targets[8];
static size_t nlog_targets;

/* SIGSYS: say which call was refused, where the logs go, and end. */
static void on_sigsys(int sig, siginfo_t *si, void *uc)
{
	char msg[160];
	int nr = si->si_syscall;
	const char *name = "?";
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].nr == nr)
			name = names[i].name;
	(void)sig;
	(void)uc;
	int n = snprintf(msg, sizeof(msg), "sockd-session[%ld]: error: sandbox: "
			 "forbidden system call %d (%s); session ended\n",
			 (long)getpid(), nr, name);
	for (size_t i = 0; i < nlog_targets && n > 0; i++) {
		ssize_t w = write(log_targets[i], msg, (size_t)n);
		(void)w;
	}
	_exit(EXIT_SANDBOX);
}

int sandbox_available(void)
{
	return SANDBOX_FILTER;
}

static void limits(int udp, int file_logging)
{
	struct rlimit none = { 0, 0 };

#if SANDBOX_FILTER
	/* no fork: nobody's count is shared, and fork checks it.  (Not in
	 * sanitizer builds: LeakSanitizer starts a thread at exit.) */
	setrlimit(RLIMIT_NPROC, &none);
#endif
	setrlimit(RLIMIT_CORE, &none);
	if (!file_logging)
		setrlimit(RLIMIT_FSIZE, &none);
	if (!udp) {
		/* no new descriptor beyond those open now */
		int top = 0;
		for (int fd = 0; fd < 64; fd++)
			if (fcntl(fd, F_GETFD) >= 0)
				top = fd;
		struct rlimit nf = { (rlim_t)top + 1, (rlim_t)top + 1 };
		setrlimit(RLIMIT_NOFILE, &nf);
	}
}

#if SANDBOX_FILTER
/* The allowlist as a balanced search over the sorted call numbers: the
 * kernel runs the filter once per call number when it is installed (to
 * cache the verdicts), so its depth, not its length, is what every
 * connection pays for. */
struct prog {
	struct sock_filter f[512];
	size_t n;
};

static void emit(struct prog *p, struct sock_filter ins)
{
	if (p->n < sizeof(p->f) / sizeof(p->f[0]))
		p->f[p->n++] = ins;
}

static void tree(struct prog *p, const int *nr, size_t lo, size_t hi)
{
	if (hi - lo <= 4) {
		for (size_t i = lo; i < hi; i++) {
			emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
							     (unsigned)nr[i], 0, 1));
			emit(p, (struct sock_filter)BPF_STMT(BPF_RET | BPF_K,
							     SECCOMP_RET_ALLOW));
		}
		emit(p, (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP));
		return;
	}
	size_t mid = lo + (hi - lo) / 2;
	size_t at = p->n;
	emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K,
					     (unsigned)nr[mid], 0, 0));
	tree(p, nr, lo, mid);                 /* below nr[mid]: fall through */
	p->f[at].jt = (unsigned char)(p->n - at - 1);
	tree(p, nr, mid, hi);
}

static int cmp_nr(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

static int install(enum sandbox_profile pr)
{
	struct prog p = { .n = 0 };
	int nr[64];
	size_t k = 0;

	emit(&p, (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
		offsetof(struct seccomp_data, arch)));
	emit(&p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
		SECCOMP_ARCH, 1, 0));
	emit(&p, (struct sock_filter)BPF_STMT(BPF_RET | BPF_K,
		SECCOMP_RET_KILL_PROCESS));
	emit(&p, (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
		offsetof(struct seccomp_data, nr)));
#ifdef __x86_64__
	/* x32 system calls have this bit: another table, refuse it whole */
	emit(&p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K,
		0x40000000u, 0, 1));
	emit(&p, (struct sock_filter)BPF_STMT(BPF_RET | BPF_K,
		SECCOMP_RET_KILL_PROCESS));
#endif
	if (pr == SANDBOX_UDP) {
		/* openat, read-only: the resolver's files, nothing written */
		struct sock_filter o[] = {
			BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_openat, 0, 5),
			BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
				 offsetof(struct seccomp_data, args[2])),
			BPF_STMT(BPF_ALU | BPF_AND | BPF_K, O_ACCMODE),
			BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, O_RDONLY, 0, 1),
			BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
			BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP),
		};
		for (size_t i = 0; i < sizeof(o) / sizeof(o[0]); i++)
			emit(&p, o[i]);
	} else {
		/* refused quietly rather than fatally: libc's syslog() tries
		 * to reconnect when journald restarts, and must not take the
		 * session down with it; the call still fails */
		static const int quiet[] = { SYS_socket, SYS_connect, SYS_openat,
#ifdef SYS_open
			SYS_open,
#endif
		};
		for (size_t i = 0; i < sizeof(quiet) / sizeof(quiet[0]); i++) {
			emit(&p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
							      (unsigned)quiet[i], 0, 1));
			emit(&p, (struct sock_filter)BPF_STMT(BPF_RET | BPF_K,
							      SECCOMP_RET_ERRNO | EACCES));
		}
	}
	for (size_t i = 0; i < sizeof(relay_calls) / sizeof(relay_calls[0]); i++)
		nr[k++] = relay_calls[i];
	if (pr == SANDBOX_UDP)
		for (size_t i = 0; i < sizeof(udp_calls) / sizeof(udp_calls[0]); i++)
			nr[k++] = udp_calls[i];
	qsort(nr, k, sizeof(nr[0]), cmp_nr);
	tree(&p, nr, 0, k);
	if (p.n >= sizeof(p.f) / sizeof(p.f[0])) {
		errno = E2BIG;
		return -1;
	}
	struct sock_fprog prog = { (unsigned short)p.n, p.f };
	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0);
}
#endif

int sandbox_enter(enum sandbox_profile p, const int *log_fds, size_t nlog,
		  char *err, size_t len)
{
	nlog_targets = 0;
	for (size_t i = 0; i < nlog && i < sizeof(log_targets) / sizeof(log_targets[0]); i++)
		log_targets[nlog_targets++] = log_fds[i];
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigsys;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL) < 0) {
		snprintf(err, len, "sigaction: %s", strerror(errno));
		return -1;
	}
	/* RLIMIT_FSIZE would stop log writes to a regular file (stderr may
	 * be one too) */
	bool file_logging = false;
	for (size_t i = 0; i < nlog; i++) {
		struct stat st;
		if (fstat(log_fds[i], &st) == 0 && S_ISREG(st.st_mode))
			file_logging = true;
	}
	limits(p == SANDBOX_UDP, file_logging);
#if SANDBOX_FILTER
	/* no_new_privs is set by the privilege drop, which comes first */
	if (install(p) < 0) {
		snprintf(err, len, "seccomp: %s", strerror(errno));
		return -1;
	}
#endif
	return 0;
}
