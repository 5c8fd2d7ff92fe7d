#!/usr/bin/python3
"""The relay sandbox: a relaying session runs under seccomp (Seccomp: 2)
with tight limits, and a forbidden system call ends it with a log line."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
from sockdtest import *  # noqa: E402,F403


def build_has_sandbox():
    r = run([SESSION_BIN, '-vv'])
    return 'seccomp=bpf' in r.stdout.decode()


def relaying(s, target):
    c, m, rep = socks_connect(s.addr, '127.0.0.1', target.port)
    is_(rep.rep, 0, 'CONNECT succeeds')
    c.send(b'ping')
    is_(c.recv_exact(4), b'ping', 'relaying')
    pids = wait_for(s.sessions, 5)
    return c, (pids or [None])[0]


def limit(pid, name):
    with open('/proc/%d/limits' % pid) as fh:
        for line in fh:
            if line.startswith(name):
                return line[len(name):].split()[0]
    return None


@test
def relaying_session_is_sandboxed():
    if not build_has_sandbox():
        skip('this build has no seccomp filter (sanitizers)', 5)
        return
    d = tmpdir()
    conf, log = make_conf(d)
    t = Target(h_echo)
    with Server(conf) as s:
        c, pid = relaying(s, t)
        st = proc_status(pid) or {}
        is_(st.get('Seccomp'), '2', 'Seccomp: 2 (filter mode)')
        is_(st.get('NoNewPrivs'), '1', 'NoNewPrivs: 1')
        is_(limit(pid, 'Max processes'), '0', 'RLIMIT_NPROC 0')
        is_(limit(pid, 'Max core file size'), '0', 'no core dumps')
        c.send(b'still')
        is_(c.recv_exact(5), b'still', 'the relay works under the filter')
        c.close()


def inject_syscall(pid, nr):
    """Make PID execute system call NR next, as an attacker who took the
    process over would: ptrace it (we are root), point it back at the
    syscall instruction it sleeps in (poll), with NR in rax. x86_64 only."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
    libc.ptrace.restype = ctypes.c_long
    PTRACE_GETREGS, PTRACE_SETREGS, PTRACE_ATTACH, PTRACE_DETACH = 12, 13, 16, 17
    regs = (ctypes.c_ulonglong * 27)()
    if libc.ptrace(PTRACE_ATTACH, pid, None, None) != 0:
        return 'attach: errno %d' % ctypes.get_errno()
    os.waitpid(pid, 0)
    libc.ptrace(PTRACE_GETREGS, pid, None, ctypes.byref(regs))
    RAX, RDI, RSI, RDX, ORIG_RAX, RIP = 10, 14, 13, 12, 15, 16
    regs[RIP] -= 2                     # back onto the syscall instruction
    regs[RAX] = nr
    regs[RDI] = regs[RSI] = regs[RDX] = 0
    regs[ORIG_RAX] = 0xffffffffffffffff   # no restart of the interrupted poll
    libc.ptrace(PTRACE_SETREGS, pid, None, ctypes.byref(regs))
    libc.ptrace(PTRACE_DETACH, pid, None, None)
    return None


@test
def forbidden_call_ends_the_session():
    if not build_has_sandbox():
        skip('this build has no seccomp filter (sanitizers)', 3)
        return
    if os.uname().machine != 'x86_64':
        skip('the injection is written for x86_64', 3)
        return
    d = tmpdir()
    conf, log = make_conf(d)
    t = Target(h_echo)
    with Server(conf) as s:
        c, pid = relaying(s, t)
        err = inject_syscall(pid, 59)      # execve
        ok(err is None, 'execve injected into the relaying process', err)
        codes = s.wait_exit_codes(1, 10)
        is_(codes, [5], 'the session exits with status 5 (sandbox)', s.stderr()[-800:])
        text = wait_for(lambda: 'sandbox' in open(log).read() and open(log).read(), 5) or ''
        like(text, r'error: sandbox: forbidden system call 59 \(execve\); session ended',
             'the log names the forbidden call')
        data, how = c.recv_until_eof(5)
        ok(how in ('eof', 'reset'), 'the client sees the connection end (%s)' % how)


main()
