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
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
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

static const char *const names[] = {
	[SYS_execve] = "execve", [SYS_socket] = "socket",
	[SYS_openat] = "openat", [SYS_connect] = "connect",
	[SYS_ptrace] = "ptrace", [SYS_clone] = "clone",
};

static int log_targets[8];
static size_t nlog_targets;

/* SIGSYS: say which call was refused, where the logs go, and end. */
static void on_sigsys(int sig, siginfo_t *si, void *uc)
{
	char msg[160];
	int nr = si->si_syscall;
	const char *name = nr >= 0 && (size_t)nr < sizeof(names) / sizeof(names[0]) &&
			   names[nr] ? names[nr] : "?";
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
#define ALLOW_NR(nr) \
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)(nr), 0, 1), \
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)

static int install(enum sandbox_profile p)
{
	struct sock_filter f[256];
	size_t n = 0;

	f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
		offsetof(struct seccomp_data, arch));
	f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
		SECCOMP_ARCH, 1, 0);
	f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K,
		SECCOMP_RET_KILL_PROCESS);
	f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
		offsetof(struct seccomp_data, nr));
#ifdef __x86_64__
	/* x32 system calls have this bit: another table, refuse it whole */
	f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K,
		0x40000000u, 0, 1);
	f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K,
		SECCOMP_RET_KILL_PROCESS);
#endif
	for (size_t i = 0; i < sizeof(relay_calls) / sizeof(relay_calls[0]); i++) {
		struct sock_filter a[] = { ALLOW_NR(relay_calls[i]) };
		memcpy(f + n, a, sizeof(a));
		n += 2;
	}
	if (p == SANDBOX_UDP) {
		for (size_t i = 0; i < sizeof(udp_calls) / sizeof(udp_calls[0]); i++) {
			struct sock_filter a[] = { ALLOW_NR(udp_calls[i]) };
			memcpy(f + n, a, sizeof(a));
			n += 2;
		}
		/* openat, read-only: the resolver's files, nothing written */
		struct sock_filter o[] = {
			BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_openat, 0, 4),
			BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
				 offsetof(struct seccomp_data, args[2])),
			BPF_STMT(BPF_ALU | BPF_AND | BPF_K, O_ACCMODE),
			BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, O_RDONLY, 0, 1),
			BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		};
		memcpy(f + n, o, sizeof(o));
		n += sizeof(o) / sizeof(o[0]);
	}
	if (p == SANDBOX_TCP) {
		/* refused quietly rather than fatally: libc's syslog() tries
		 * to reconnect when journald restarts, and must not take the
		 * session down with it; the call still fails */
		static const int quiet[] = { SYS_socket, SYS_connect, SYS_openat,
#ifdef SYS_open
			SYS_open,
#endif
		};
		for (size_t i = 0; i < sizeof(quiet) / sizeof(quiet[0]); i++) {
			struct sock_filter q[] = {
				BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)quiet[i], 0, 1),
				BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EACCES),
			};
			memcpy(f + n, q, sizeof(q));
			n += 2;
		}
	}
	f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP);
	struct sock_fprog prog = { (unsigned short)n, f };
	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0);
}
#endif

int sandbox_enter(enum sandbox_profile p, const int *log_fds, size_t nlog,
		  char *err, size_t len)
{
	/* what libc would otherwise do lazily, under the filter: load the
	 * time zone for log time stamps */
	time_t now = time(NULL);
	struct tm tm;
	tzset();
	localtime_r(&now, &tm);
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
