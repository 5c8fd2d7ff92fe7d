"""sockdtest: helpers for the sockd-session integration tests (TAP, stdlib only).

Every test file is a small script:

    #!/usr/bin/python3
    import os, sys
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
    from sockdtest import *

    @test
    def something():
        ok(1 + 1 == 2, 'arithmetic')

    main()

main() re-executes the script inside a fresh network namespace (only `lo`,
up), runs every @test function in order, turns an exception into a failed
test point with the traceback as diagnostics, cleans up what the test
started (processes, threads, temp dirs) and prints the TAP plan at the end.
The exit code is the number of failed test points (capped at 254); 255
after a bail out.  A watchdog bails out when a file runs for too long.

Environment:
    SOCKD_BUILD       build directory holding sockd-session/sockd-session
                      (default: the source tree containing this file)
    SOCKD_TEST_KEEP=1 keep the temporary directories (for debugging)
    SOCKD_TEST_VERBOSE=1 print notes about what is started
"""

import atexit
import hashlib
import http.server
import ipaddress
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback

__all__ = [
    # TAP
    'plan', 'ok', 'is_', 'isnt', 'like', 'unlike', 'cmp_ok', 'diag', 'note',
    'skip', 'bail_out', 'done_testing', 'test', 'main', 'failed_count',
    # environment
    'SRCDIR', 'BUILD', 'SESSION_BIN', 'CONFDIR', 'PYTHON', 'enter_netns',
    'defer', 'tmpdir', 'free_port', 'run', 'clean_env', 'wait_for',
    # servers and processes
    'Server', 'Xinetd', 'Target', 'Blackhole', 'HttpServer', 'DirectSession',
    'listening_inode', 'descendants', 'proc_status', 'session_pids',
    'wait_session_pid', 'pid_alive',
    # target handlers
    'h_echo', 'h_sink', 'h_source', 'h_duplex', 'h_read_then_reply',
    'h_send_then_read', 'h_silent', 'pattern_bytes',
    # SOCKS
    'RawClient', 'Reply', 'greeting', 'request', 'req_ipv4', 'req_ipv6',
    'req_domain', 'socks_connect', 'CMD_CONNECT', 'CMD_BIND', 'CMD_UDP',
    'ATYP_IPV4', 'ATYP_DOMAIN', 'ATYP_IPV6', 'REPLY_NAMES',
    # configuration and logs
    'conf_text', 'make_conf', 'render_template', 'line_of', 'read_log',
    'log_lines', 'wait_log', 'sha256',
]

PYTHON = '/usr/bin/python3'
_HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.path.dirname(os.path.dirname(_HERE))
CONFDIR = os.path.join(SRCDIR, 't', 'conf')
BUILD = os.path.abspath(os.environ.get('SOCKD_BUILD') or SRCDIR)
SESSION_BIN = os.path.join(BUILD, 'sockd-session', 'sockd-session')
NETNS_MARK = 'SOCKD_TEST_NETNS'
VERBOSE = os.environ.get('SOCKD_TEST_VERBOSE') == '1'
KEEP = os.environ.get('SOCKD_TEST_KEEP') == '1'

# ---------------------------------------------------------------------------
# TAP
# ---------------------------------------------------------------------------

_tap_lock = threading.RLock()
_state = {'n': 0, 'failed': 0, 'planned': None, 'done': False}


def _out(line):
    with _tap_lock:
        sys.stdout.write(line + '\n')
        sys.stdout.flush()


def _comment(msg, stream):
    with _tap_lock:
        for line in str(msg).splitlines() or ['']:
            stream.write('# ' + line + '\n')
        stream.flush()


def diag(msg):
    """A diagnostic line (stderr, shown by prove)."""
    _comment(msg, sys.stderr)


def note(msg):
    """A comment on stdout (shown by prove -v)."""
    _comment(msg, sys.stdout)


def plan(n):
    with _tap_lock:
        _state['planned'] = n
        _out('1..%d' % n)


def _clean_name(name):
    return str(name).replace('#', '\\#').replace('\n', ' ')


def ok(cond, name='', *diags):
    """One test point; the extra arguments are printed as diagnostics on failure."""
    with _tap_lock:
        _state['n'] += 1
        n = _state['n']
        if cond:
            _out('ok %d - %s' % (n, _clean_name(name)))
        else:
            _state['failed'] += 1
            _out('not ok %d - %s' % (n, _clean_name(name)))
            here = os.path.abspath(__file__)
            frames = [f for f in traceback.extract_stack()[:-1]
                      if os.path.abspath(f.filename) != here]
            where = ('%s line %d' % (os.path.basename(frames[-1].filename), frames[-1].lineno)
                     if frames else '?')
            diag('  Failed test \'%s\'\n  at %s.' % (name, where))
            for d in diags:
                if d is not None and d != '':
                    diag(d)
    return bool(cond)


def is_(got, expected, name='', *diags):
    return ok(got == expected, name,
              '         got: %r\n    expected: %r' % (_short(got), _short(expected)), *diags)


def isnt(got, unexpected, name='', *diags):
    return ok(got != unexpected, name,
              '         got: %r\n    expected: anything else' % (_short(got),), *diags)


def like(text, pattern, name='', *diags):
    text = '' if text is None else text
    if isinstance(text, bytes):
        text = text.decode('utf-8', 'replace')
    return ok(re.search(pattern, text, re.M) is not None, name,
              '    %r\n    does not match /%s/' % (_short(text, 2000), pattern), *diags)


def unlike(text, pattern, name='', *diags):
    text = '' if text is None else text
    if isinstance(text, bytes):
        text = text.decode('utf-8', 'replace')
    return ok(re.search(pattern, text, re.M) is None, name,
              '    %r\n    matches /%s/' % (_short(text, 2000), pattern), *diags)


def cmp_ok(got, op, expected, name='', *diags):
    ops = {'<': lambda a, b: a < b, '<=': lambda a, b: a <= b,
           '>': lambda a, b: a > b, '>=': lambda a, b: a >= b,
           '==': lambda a, b: a == b, '!=': lambda a, b: a != b}
    try:
        res = ops[op](got, expected)
    except TypeError:
        res = False
    return ok(res, name, '    %r\n        %s\n    %r' % (got, op, expected), *diags)


def skip(reason, count=1):
    with _tap_lock:
        for _ in range(count):
            _state['n'] += 1
            _out('ok %d # SKIP %s' % (_state['n'], reason))


def failed_count():
    return _state['failed']


def _short(v, limit=400):
    if isinstance(v, (bytes, str)) and len(v) > limit:
        more = '...(%d more)' % (len(v) - limit)
        return v[:limit] + (more.encode() if isinstance(v, bytes) else more)
    return v


def bail_out(reason):
    """Stop the whole file: prove reports it as a failure."""
    with _tap_lock:
        _out('Bail out!  %s' % reason)
    _cleanup_all()
    os._exit(255)


def done_testing():
    with _tap_lock:
        if _state['done']:
            return
        _state['done'] = True
        if _state['planned'] is None:
            _out('1..%d' % _state['n'])
        elif _state['planned'] != _state['n']:
            diag('planned %d tests but ran %d' % (_state['planned'], _state['n']))
            _state['failed'] += 1


# ---------------------------------------------------------------------------
# cleanup
# ---------------------------------------------------------------------------

_cleanups = []          # stack of callables, run in reverse order
_cleanup_lock = threading.Lock()


def defer(fn, *args, **kw):
    """Run fn(*args, **kw) when the current @test function ends (or at exit)."""
    with _cleanup_lock:
        _cleanups.append((fn, args, kw))
    return fn


def _run_cleanups(down_to=0):
    while True:
        with _cleanup_lock:
            if len(_cleanups) <= down_to:
                return
            fn, args, kw = _cleanups.pop()
        try:
            fn(*args, **kw)
        except Exception:
            diag('cleanup %r failed:\n%s' % (fn, traceback.format_exc()))


def _cleanup_all():
    _run_cleanups(0)


atexit.register(_cleanup_all)


def tmpdir(prefix='sockd-t-'):
    """A temporary directory, world-searchable (the session drops to nobody), removed at test end."""
    d = tempfile.mkdtemp(prefix=prefix)
    os.chmod(d, 0o755)
    if KEEP:
        diag('keeping %s' % d)
    else:
        defer(shutil.rmtree, d, True)
    return d


# ---------------------------------------------------------------------------
# network namespace and process helpers
# ---------------------------------------------------------------------------

def enter_netns():
    """Re-exec this script under `unshare --net` (fresh namespace, only lo, up).

    unshare(1) without --fork execs in place, so the marker holds our own
    pid once we are inside; anything else (a parent's marker) re-enters.
    """
    if os.environ.get(NETNS_MARK) == str(os.getpid()):
        r = subprocess.run(['ip', 'link', 'set', 'lo', 'up'], capture_output=True, text=True)
        if r.returncode != 0:
            bail_out('cannot bring lo up in the test namespace: %s' % r.stderr.strip())
        names = [n for _, n in socket.if_nameindex()]
        if names != ['lo']:
            bail_out('not in a private network namespace (interfaces: %s)' % names)
        return
    if not shutil.which('unshare'):
        bail_out('unshare(1) not found: cannot make a private network namespace')
    os.environ[NETNS_MARK] = str(os.getpid())
    script = os.path.abspath(sys.argv[0])
    try:
        os.execvp('unshare', ['unshare', '--net', '--', PYTHON, script] + sys.argv[1:])
    except OSError as e:
        bail_out('cannot exec unshare --net: %s' % e)


def clean_env(extra=None):
    """The environment for client programs: no proxy variables, C locale."""
    env = {k: v for k, v in os.environ.items()
           if not k.lower().endswith('_proxy') and k != NETNS_MARK}
    env['LC_ALL'] = 'C'
    if extra:
        env.update(extra)
    return env


def run(cmd, timeout=15, input=None, env=None, **kw):
    """subprocess.run with a bounded time; never raises on timeout.

    Returns the CompletedProcess; on timeout returncode is None and
    .timed_out is True.
    """
    if VERBOSE:
        note('run: %s' % ' '.join(cmd))
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=env if env is not None else clean_env(),
                         start_new_session=True, **kw)
    timed_out = False
    try:
        out, err = p.communicate(input=input, timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        _killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
    res = subprocess.CompletedProcess(cmd, None if timed_out else p.returncode, out, err)
    res.timed_out = timed_out
    return res


def wait_for(pred, timeout, interval=0.02):
    """Poll pred() until it returns a true value or timeout seconds pass; return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


def free_port(host='127.0.0.1'):
    """A TCP port that nothing listens on right now (we are alone in our namespace)."""
    fam = socket.AF_INET6 if ':' in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _killpg(pid, sig):
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def pid_alive(pid):
    try:
        with open('/proc/%d/stat' % pid) as f:
            st = f.read()
    except OSError:
        return False
    return st[st.rindex(')') + 2] != 'Z'


def _ppid_map():
    m = {}
    for name in os.listdir('/proc'):
        if not name.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % name) as f:
                st = f.read()
        except OSError:
            continue
        rest = st[st.rindex(')') + 2:].split()
        m[int(name)] = int(rest[1])
    return m


def descendants(pid):
    """All live descendants of pid (children first)."""
    m = _ppid_map()
    out, frontier = [], [pid]
    while frontier:
        nxt = [c for c, p in m.items() if p in frontier]
        out.extend(nxt)
        frontier = nxt
    return out


def proc_status(pid):
    """/proc/PID/status as a dict of field -> value string, or None when gone."""
    try:
        with open('/proc/%d/status' % pid) as f:
            text = f.read()
    except OSError:
        return None
    d = {}
    for line in text.splitlines():
        k, _, v = line.partition(':')
        d[k.strip()] = v.strip()
    return d


def _is_session(pid):
    st = proc_status(pid)
    if not st:
        return False
    if st.get('Name') == 'sockd-session':
        return True
    try:
        with open('/proc/%d/cmdline' % pid, 'rb') as f:
            argv = f.read().split(b'\0')
    except OSError:
        return False
    # the activator's child between fork and exec has the activator's name
    return st.get('Name') not in ('systemd-socket-', 'xinetd') and \
        any(a.endswith(b'sockd-session') for a in argv)


def session_pids(root_pid):
    """Descendants of root_pid that run sockd-session."""
    return [p for p in descendants(root_pid) if _is_session(p)]


def wait_session_pid(root_pid, timeout=5):
    pids = wait_for(lambda: session_pids(root_pid), timeout)
    return pids[0] if pids else None


def listening_inode(port, owner_pid=None):
    """Inode of the TCP socket listening on port (any address), optionally only if owner_pid holds it."""
    inodes = set()
    for path in ('/proc/net/tcp', '/proc/net/tcp6'):
        try:
            with open(path) as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            local, state, inode = parts[1], parts[3], parts[9]
            if state == '0A' and int(local.rsplit(':', 1)[1], 16) == port:
                inodes.add(inode)
    if not inodes:
        return None
    if owner_pid is None:
        return inodes.pop()
    try:
        fds = os.listdir('/proc/%d/fd' % owner_pid)
    except OSError:
        return None
    for fd in fds:
        try:
            target = os.readlink('/proc/%d/fd/%s' % (owner_pid, fd))
        except OSError:
            continue
        m = re.match(r'socket:\[(\d+)\]', target)
        if m and m.group(1) in inodes:
            return m.group(1)
    return None


_live_procs = []


def _kill_pids(pids, sig):
    for k in pids:
        try:
            os.kill(k, sig)
        except (ProcessLookupError, PermissionError):
            pass


def _exited_unreaped(pid):
    """True once pid has exited (it stays a zombie: not reaped, so its group id stays ours)."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _terminate(proc, grace=2.0):
    """Kill a process we started (leader of its own group) and everything under it, then reap.

    The descendants (sessions) go first, while their parent (the activator)
    still lives to reap them; then the leader; then whatever is left in its
    group, while the unreaped leader still holds the group id.
    """
    if proc.returncode is not None:
        return
    if not _exited_unreaped(proc.pid):
        kids = descendants(proc.pid)
        if kids:
            _kill_pids(kids, signal.SIGKILL)
            wait_for(lambda: not any(pid_alive(k) for k in kids), 1.0)
        _killpg(proc.pid, signal.SIGTERM)
        if not wait_for(lambda: _exited_unreaped(proc.pid), grace):
            _killpg(proc.pid, signal.SIGKILL)
            wait_for(lambda: _exited_unreaped(proc.pid), 5)
    _killpg(proc.pid, signal.SIGKILL)   # stragglers of the group
    proc.wait(timeout=5)


class _Activator:
    """Common part of Server and Xinetd: a listening process in its own group."""

    name = 'activator'

    def __init__(self):
        self.proc = None
        self.dir = None
        self.stderr_path = None

    def _start(self, argv, port, env=None):
        self.dir = self.dir or tmpdir('sockd-act-')
        self.stderr_path = os.path.join(self.dir, '%s.stderr' % self.name)
        if VERBOSE:
            note('start: %s' % ' '.join(argv))
        with open(self.stderr_path, 'wb') as err:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=err,
                                         stderr=err, start_new_session=True,
                                         env=env if env is not None else clean_env())
        _live_procs.append(self.proc)
        defer(self.stop)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError('%s exited with %s before listening:\n%s'
                                   % (self.name, self.proc.returncode, self.stderr()))
            if listening_inode(port, self.proc.pid):
                return self
            time.sleep(0.02)
        raise RuntimeError('%s does not listen on port %d after 10 s:\n%s'
                           % (self.name, port, self.stderr()))

    def stop(self):
        if self.proc is not None:
            _terminate(self.proc)
            if self.proc in _live_procs:
                _live_procs.remove(self.proc)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    @property
    def pid(self):
        return self.proc.pid

    def stderr(self):
        try:
            with open(self.stderr_path, 'rb') as f:
                return f.read().decode('utf-8', 'replace')
        except (OSError, TypeError):
            return ''

    def sessions(self):
        return session_pids(self.proc.pid)

    def wait_session_pid(self, timeout=5):
        return wait_session_pid(self.proc.pid, timeout)

    def wait_no_sessions(self, timeout=5):
        return wait_for(lambda: not self.sessions(), timeout)


class Server(_Activator):
    """systemd-socket-activate --accept [--inetd] -l HOST:PORT BIN -f CONF.

    Use as a context manager (it is also stopped at the end of the test).
    .port, .host, .addr (for socket.connect), .pid of the activator,
    .stderr() (the activator's messages and the sessions' stderr),
    .exit_codes() (from the activator's "Child N died with code C" lines).
    """

    name = 'systemd-socket-activate'

    def __init__(self, conf, host='127.0.0.1', inetd=False, binary=None, args=None,
                 port=None, env=None):
        super().__init__()
        self.host = host
        self.port = port or free_port(host)
        self.conf = conf
        lhost = '[%s]' % host if ':' in host else host
        argv = ['systemd-socket-activate', '--accept', '-l', '%s:%d' % (lhost, self.port)]
        if inetd:
            argv.append('--inetd')
        for var in ('ASAN_OPTIONS', 'UBSAN_OPTIONS', 'LSAN_OPTIONS'):
            if var in os.environ:
                argv += ['-E', var]
        for k, v in (env or {}).items():
            argv += ['-E', '%s=%s' % (k, v)]
        argv.append(binary or SESSION_BIN)
        argv += args if args is not None else ['-f', conf]
        self.argv = argv
        self._start(argv, self.port)

    @property
    def addr(self):
        return (self.host, self.port)

    def exit_codes(self):
        """Exit codes of finished children, in order (from the activator's log)."""
        return [int(c) for c in re.findall(r'Child \d+ died with code (\d+)', self.stderr())]

    def wait_exit_codes(self, n, timeout=5):
        return wait_for(lambda: len(self.exit_codes()) >= n and self.exit_codes(), timeout)


class Xinetd(_Activator):
    """xinetd -dontfork with one UNLISTED service running BIN -f CONF on 127.0.0.1:PORT."""

    name = 'xinetd'

    def __init__(self, conf, binary=None, host='127.0.0.1'):
        super().__init__()
        self.host = host
        self.port = free_port(host)
        self.conf = conf
        self.dir = tmpdir('sockd-xinetd-')
        self.xconf = os.path.join(self.dir, 'xinetd.conf')
        self.pidfile = os.path.join(self.dir, 'xinetd.pid')
        with open(self.xconf, 'w') as f:
            f.write('defaults\n{\n\tlog_type = FILE %s\n}\n'
                    'service sockd-test\n{\n'
                    '\ttype = UNLISTED\n'
                    '\tport = %d\n'
                    '\tbind = %s\n'
                    '\tprotocol = tcp\n'
                    '\tsocket_type = stream\n'
                    '\twait = no\n'
                    '\tuser = root\n'
                    '\tserver = %s\n'
                    '\tserver_args = -f %s\n'
                    '\tinstances = 20\n'
                    '\tper_source = UNLIMITED\n'
                    '\tcps = 1000 1\n'
                    '}\n' % (os.path.join(self.dir, 'xinetd.log'), self.port, host,
                             binary or SESSION_BIN, conf))
        self._start(['xinetd', '-dontfork', '-f', self.xconf, '-pidfile', self.pidfile],
                    self.port)

    @property
    def addr(self):
        return (self.host, self.port)


class DirectSession:
    """Run the binary directly on one end of a real loopback TCP connection.

    The accepted socket becomes fd 0 (like inetd, without LISTEN_*);
    stdout and stderr are captured separately, so the exit code and the
    messages are visible exactly.  .client is the client socket.  prefix
    is put before the binary (for example setpriv ... to start unprivileged).
    """

    def __init__(self, conf, args=None, binary=None, env=None, client_source=None, prefix=None):
        lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        lsock.bind(('127.0.0.1', 0))
        lsock.listen(1)
        self.client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.client.settimeout(10)
        if client_source:
            self.client.bind((client_source, 0))
        self.client.connect(lsock.getsockname())
        conn, _ = lsock.accept()
        lsock.close()
        env2 = clean_env()
        for k in ('LISTEN_FDS', 'LISTEN_PID', 'LISTEN_FDNAMES'):
            env2.pop(k, None)
        env2.update(env or {})
        self.proc = subprocess.Popen(list(prefix or []) + [binary or SESSION_BIN] +
                                     (args if args is not None else ['-f', conf]),
                                     stdin=conn.fileno(), stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env2, start_new_session=True)
        conn.close()
        _live_procs.append(self.proc)
        defer(self.close)
        self.raw = RawClient.from_socket(self.client, timeout=5.0)
        self.stdout = self.stderr = b''
        self.returncode = None

    def wait(self, timeout=10):
        """Wait for the process; returns (returncode or None on timeout, stdout, stderr)."""
        try:
            self.stdout, self.stderr = self.proc.communicate(timeout=timeout)
            self.returncode = self.proc.returncode
        except subprocess.TimeoutExpired:
            self.returncode = None
        return self.returncode, self.stdout, self.stderr

    def close(self):
        try:
            self.client.close()
        except OSError:
            pass
        if self.proc.poll() is None:
            _terminate(self.proc)
        else:
            try:
                self.proc.communicate(timeout=1)
            except (subprocess.TimeoutExpired, ValueError):
                pass
        if self.proc in _live_procs:
            _live_procs.remove(self.proc)


# ---------------------------------------------------------------------------
# target servers (threads)
# ---------------------------------------------------------------------------

def sha256(data):
    return hashlib.sha256(data).hexdigest()


def pattern_bytes(n):
    """n random bytes (not periodic, so lost, doubled or swapped chunks change a checksum)."""
    return os.urandom(n)


class _Record:
    """What a target saw on one connection."""

    def __init__(self, peer):
        self.peer = peer
        self.data = bytearray()          # bytes received (unless hashing only)
        self.nbytes = 0                  # bytes received
        self.sha256 = None               # of received bytes, when the handler hashes
        self.sent = 0
        self.eof = False                 # saw EOF from the client side
        self.events = []                 # (monotonic time, text)
        self.error = None
        self.done = False

    def event(self, text):
        self.events.append((time.monotonic(), text))

    def __repr__(self):
        return ('<conn peer=%s recv=%d sent=%d eof=%s err=%s events=%s>'
                % (self.peer, self.nbytes, self.sent, self.eof, self.error,
                   [e for _, e in self.events]))


class Target:
    """A TCP server in a thread; handler(conn, record, target) serves each connection in its own thread.

    .port, .host, .addr; .records (one _Record per accepted connection);
    wait_conns(n), wait_done(n).  Stopped at the end of the test.
    """

    def __init__(self, handler, host='127.0.0.1', port=0, backlog=64):
        fam = socket.AF_INET6 if ':' in host else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(backlog)
        self.sock.settimeout(0.1)
        self.host = host
        self.port = self.sock.getsockname()[1]
        self.handler = handler
        self.records = []
        self.cond = threading.Condition()
        self.stopping = threading.Event()
        self._conns = []
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()
        defer(self.close)

    @property
    def addr(self):
        return (self.host, self.port)

    def _loop(self):
        while not self.stopping.is_set():
            try:
                c, a = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            rec = _Record(a)
            rec.event('accept')
            with self.cond:
                self.records.append(rec)
                self._conns.append(c)
                self.cond.notify_all()
            threading.Thread(target=self._serve, args=(c, rec), daemon=True).start()

    def _serve(self, c, rec):
        c.settimeout(30)
        try:
            self.handler(c, rec, self)
        except Exception as e:
            rec.error = '%s: %s' % (type(e).__name__, e)
            rec.event('error %s' % rec.error)
        finally:
            try:
                c.close()
            except OSError:
                pass
            with self.cond:
                rec.done = True
                self.cond.notify_all()

    def wait_conns(self, n=1, timeout=5):
        with self.cond:
            self.cond.wait_for(lambda: len(self.records) >= n, timeout)
            return len(self.records) >= n

    def wait_done(self, n=1, timeout=10):
        with self.cond:
            f = lambda: len(self.records) >= n and all(r.done for r in self.records[:n])
            self.cond.wait_for(f, timeout)
            return f()

    def close(self):
        self.stopping.set()
        try:
            self.sock.close()
        except OSError:
            pass
        with self.cond:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.thread.join(2)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def _recv_until_eof(c, rec, keep=True, hasher=None, stop=None):
    while True:
        if stop is not None and stop.is_set():
            return
        try:
            d = c.recv(1 << 20)
        except socket.timeout:
            if stop is not None:
                continue
            raise
        if not d:
            rec.eof = True
            rec.event('eof')
            return
        rec.nbytes += len(d)
        if hasher is not None:
            hasher.update(d)
        if keep:
            rec.data += d


def h_echo(c, rec, target):
    """Echo everything; on EOF from the client, finish sending and close."""
    while True:
        d = c.recv(1 << 16)
        if not d:
            rec.eof = True
            rec.event('eof')
            break
        rec.data += d
        rec.nbytes += len(d)
        c.sendall(d)
        rec.sent += len(d)
    c.shutdown(socket.SHUT_WR)


def h_sink(c, rec, target):
    """Read until EOF, hashing (data kept only up to 1 MiB)."""
    h = hashlib.sha256()
    while True:
        d = c.recv(1 << 20)
        if not d:
            rec.eof = True
            rec.event('eof')
            break
        h.update(d)
        rec.nbytes += len(d)
        if len(rec.data) < (1 << 20):
            rec.data += d[:(1 << 20) - len(rec.data)]
    rec.sha256 = h.hexdigest()


def h_source(data):
    """Send data, shut down writing, then read until EOF."""
    def handler(c, rec, target):
        c.sendall(data)
        rec.sent = len(data)
        c.shutdown(socket.SHUT_WR)
        rec.event('sent-eof')
        _recv_until_eof(c, rec)
    return handler


def h_duplex(data):
    """Send data (then shut down writing) while reading and hashing until EOF, at the same time."""
    def handler(c, rec, target):
        def sender():
            try:
                view = memoryview(data)
                for off in range(0, len(data), 1 << 20):
                    c.sendall(view[off:off + (1 << 20)])
                    rec.sent += len(view[off:off + (1 << 20)])
                c.shutdown(socket.SHUT_WR)
                rec.event('sent-eof')
            except OSError as e:
                rec.error = 'send: %s' % e
        t = threading.Thread(target=sender, daemon=True)
        t.start()
        h = hashlib.sha256()
        _recv_until_eof(c, rec, keep=False, hasher=h)
        rec.sha256 = h.hexdigest()
        t.join(60)
    return handler


def h_read_then_reply(reply):
    """Read until EOF (client half-closed), then send reply and close."""
    def handler(c, rec, target):
        _recv_until_eof(c, rec)
        time.sleep(0.1)
        c.sendall(reply)
        rec.sent = len(reply)
        rec.event('replied')
    return handler


def h_send_then_read(first):
    """Send first, shut down writing (the client sees EOF), then read until EOF."""
    def handler(c, rec, target):
        c.sendall(first)
        rec.sent = len(first)
        c.shutdown(socket.SHUT_WR)
        rec.event('sent-eof')
        _recv_until_eof(c, rec)
    return handler


def h_silent(c, rec, target):
    """Accept, never send; read (and record) until EOF or the test ends."""
    c.settimeout(0.2)
    _recv_until_eof(c, rec, stop=target.stopping)


class Blackhole:
    """An address where connect() hangs: a listener with a full accept queue that never accepts.

    Linux drops the SYN of a connection that does not fit the accept queue,
    so the connecting side retransmits until its own timeout.
    """

    def __init__(self, host='127.0.0.1'):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((host, 0))
        self.sock.listen(0)
        self.host = host
        self.port = self.sock.getsockname()[1]
        self.fillers = []
        defer(self.close)
        for _ in range(8):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.settimeout(0.3)
            try:
                s.connect((host, self.port))
            except socket.timeout:
                s.close()
                return  # queue is full: the next SYN is dropped
            self.fillers.append(s)
        raise RuntimeError('could not fill the accept queue of the blackhole listener')

    @property
    def addr(self):
        return (self.host, self.port)

    def close(self):
        for s in self.fillers:
            s.close()
        self.sock.close()


class HttpServer:
    """http.server on loopback in a thread, serving GET /file with body."""

    def __init__(self, body, host='127.0.0.1'):
        outer = self
        self.body = body
        self.requests = []

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.0'

            def do_GET(self):
                outer.requests.append((self.client_address, self.path, self.headers.get('Host')))
                if self.path != '/file':
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header('Content-Type', 'application/octet-stream')
                self.send_header('Content-Length', str(len(outer.body)))
                self.end_headers()
                self.wfile.write(outer.body)

            def log_message(self, *a):
                pass

        cls = http.server.ThreadingHTTPServer
        if ':' in host:
            class V6(http.server.ThreadingHTTPServer):
                address_family = socket.AF_INET6
            cls = V6
        self.httpd = cls((host, 0), H)
        self.httpd.daemon_threads = True
        self.host = host
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={'poll_interval': 0.1},
                                       daemon=True)
        self.thread.start()
        defer(self.close)

    def close(self):
        if self.thread.is_alive():
            self.httpd.shutdown()
            self.httpd.server_close()
            self.thread.join(2)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


# ---------------------------------------------------------------------------
# raw SOCKS5 client
# ---------------------------------------------------------------------------

CMD_CONNECT, CMD_BIND, CMD_UDP = 1, 2, 3
ATYP_IPV4, ATYP_DOMAIN, ATYP_IPV6 = 1, 3, 4
REPLY_NAMES = {0: 'succeeded', 1: 'general failure', 2: 'not allowed by ruleset',
               3: 'network unreachable', 4: 'host unreachable', 5: 'connection refused',
               6: 'TTL expired', 7: 'command not supported', 8: 'address type not supported'}


def greeting(methods=(0,)):
    return bytes([5, len(methods)]) + bytes(methods)


def req_ipv4(host, port, cmd=CMD_CONNECT):
    return bytes([5, cmd, 0, ATYP_IPV4]) + socket.inet_pton(socket.AF_INET, host) + struct.pack('>H', port)


def req_ipv6(host, port, cmd=CMD_CONNECT):
    return bytes([5, cmd, 0, ATYP_IPV6]) + socket.inet_pton(socket.AF_INET6, host) + struct.pack('>H', port)


def req_domain(name, port, cmd=CMD_CONNECT):
    n = name.encode() if isinstance(name, str) else name
    return bytes([5, cmd, 0, ATYP_DOMAIN, len(n)]) + n + struct.pack('>H', port)


def request(host, port, cmd=CMD_CONNECT):
    """A request with the ATYP chosen from host (IPv4 literal, IPv6 literal, else a name)."""
    try:
        ipaddress.IPv4Address(host)
        return req_ipv4(host, port, cmd)
    except ValueError:
        pass
    try:
        ipaddress.IPv6Address(host)
        return req_ipv6(host, port, cmd)
    except ValueError:
        return req_domain(host, port, cmd)


class Reply:
    def __init__(self, raw, ver, rep, rsv, atyp, addr, port):
        self.raw, self.ver, self.rep, self.rsv = raw, ver, rep, rsv
        self.atyp, self.addr, self.port = atyp, addr, port

    def __repr__(self):
        return '<Reply ver=%d rep=%d (%s) atyp=%d bnd=%s:%s raw=%s>' % (
            self.ver, self.rep, REPLY_NAMES.get(self.rep, '?'), self.atyp, self.addr,
            self.port, self.raw.hex())


class RawClient:
    """A TCP client with exact control over the bytes; every read is bounded by a timeout."""

    def __init__(self, addr, source=None, timeout=5.0):
        host, port = addr
        fam = socket.AF_INET6 if ':' in host else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.sock.settimeout(timeout)
        if source:
            self.sock.bind((source, 0))
        self.sock.connect((host, port))
        self.eof = False
        defer(self.close)

    @classmethod
    def from_socket(cls, sock, timeout=5.0):
        """Wrap an already connected socket."""
        self = cls.__new__(cls)
        self.sock = sock
        self.timeout = timeout
        self.sock.settimeout(timeout)
        self.eof = False
        defer(self.close)
        return self

    def send(self, data):
        self.sock.sendall(data)

    def send_slowly(self, data, delay=0.05):
        """One byte per write, with a pause between writes."""
        for i in range(len(data)):
            self.sock.sendall(data[i:i + 1])
            time.sleep(delay)

    def recv_exact(self, n, timeout=None):
        """Exactly n bytes; raises EOFError (with the partial bytes as .args[1]) or socket.timeout."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        buf = bytearray()
        while len(buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout('timed out after %d of %d bytes: %r' % (len(buf), n, bytes(buf)))
            self.sock.settimeout(left)
            d = self.sock.recv(n - len(buf))
            if not d:
                self.eof = True
                raise EOFError('EOF after %d of %d bytes' % (len(buf), n), bytes(buf))
            buf += d
        self.sock.settimeout(self.timeout)
        return bytes(buf)

    def recv_until_eof(self, timeout=None, limit=1 << 30, hasher=None):
        """Read until EOF. Returns (data, how): how is 'eof', 'reset' or 'timeout'.

        With hasher, bytes are hashed and not kept (data is then their count).
        """
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        buf = bytearray()
        count = 0
        while count < limit:
            left = deadline - time.monotonic()
            if left <= 0:
                return (count if hasher else bytes(buf)), 'timeout'
            self.sock.settimeout(left)
            try:
                d = self.sock.recv(1 << 20)
            except socket.timeout:
                return (count if hasher else bytes(buf)), 'timeout'
            except ConnectionResetError:
                return (count if hasher else bytes(buf)), 'reset'
            if not d:
                self.eof = True
                return (count if hasher else bytes(buf)), 'eof'
            count += len(d)
            if hasher is not None:
                hasher.update(d)
            else:
                buf += d
        return (count if hasher else bytes(buf)), 'limit'

    def wait_closed(self, timeout=None):
        """(bytes received before the close, how, seconds waited)."""
        t0 = time.monotonic()
        data, how = self.recv_until_eof(timeout)
        return data, how, time.monotonic() - t0

    def greet(self, methods=(0,)):
        self.send(greeting(methods))
        return self.recv_exact(2)

    def read_reply(self, timeout=None):
        head = self.recv_exact(4, timeout)
        ver, rep, rsv, atyp = head
        if atyp == ATYP_IPV4:
            body = self.recv_exact(6, timeout)
            addr = socket.inet_ntop(socket.AF_INET, body[:4])
        elif atyp == ATYP_IPV6:
            body = self.recv_exact(18, timeout)
            addr = socket.inet_ntop(socket.AF_INET6, body[:16])
        elif atyp == ATYP_DOMAIN:
            ln = self.recv_exact(1, timeout)
            body = ln + self.recv_exact(ln[0] + 2, timeout)
            addr = body[1:-2].decode('latin-1')
        else:
            raise ValueError('reply with unknown ATYP %d: %r' % (atyp, head))
        port = struct.unpack('>H', body[-2:])[0]
        return Reply(head + body, ver, rep, rsv, atyp, addr, port)

    def shutdown_wr(self):
        self.sock.shutdown(socket.SHUT_WR)

    def local(self):
        return self.sock.getsockname()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def socks_connect(proxy_addr, host, port, source=None, timeout=5.0, data=b''):
    """Greeting + CONNECT (separate writes, then data if any); returns (client, method reply, Reply)."""
    c = RawClient(proxy_addr, source=source, timeout=timeout)
    m = c.greet()
    c.send(request(host, port))
    r = c.read_reply()
    if data:
        c.send(data)
    return c, m, r


# ---------------------------------------------------------------------------
# rules files and logs
# ---------------------------------------------------------------------------

DEFAULT_RULES = '''\
client pass { from: 127.0.0.0/8 to: 0/0 log: error }
client pass { from: ::1/128 to: 0/0 log: error }
client block { from: 0/0 to: 0/0 log: connect error }
socks pass { from: 0/0 to: 0/0 command: connect log: connect disconnect error }
'''


def conf_text(logoutput, negotiate=2, connect=5, io=0, rules=DEFAULT_RULES, extra=''):
    """A whole rules file: header (log, users, methods, timeouts) + extra + rules."""
    return ('logoutput: %s\n'
            'user.privileged: root\n'
            'user.unprivileged: nobody\n'
            'clientmethod: none\n'
            'socksmethod: none\n'
            'timeout.negotiate: %s\n'
            'timeout.connect: %s\n'
            'timeout.io: %s\n'
            '%s'
            '%s' % (logoutput, negotiate, connect, io, extra, rules))


def make_conf(directory, text=None, name='sockd.conf', **kw):
    """Write a rules file in directory; text defaults to conf_text(directory/sockd.log, **kw).

    Returns (conf path, log path).
    """
    log = os.path.join(directory, 'sockd.log')
    if text is None:
        text = conf_text(log, **kw)
    path = os.path.join(directory, name)
    with open(path, 'w') as f:
        f.write(text)
    os.chmod(path, 0o644)
    return path, log


def render_template(template, directory, name=None, **subs):
    """Copy t/conf/TEMPLATE into directory replacing @KEY@ with subs (LOG defaults to directory/sockd.log).

    Returns (conf path, log path).
    """
    log = os.path.join(directory, 'sockd.log')
    subs.setdefault('LOG', log)
    with open(os.path.join(CONFDIR, template)) as f:
        text = f.read()
    for k, v in subs.items():
        text = text.replace('@%s@' % k, str(v))
    left = re.findall(r'@[A-Z_]+@', text)
    if left:
        raise ValueError('template %s: no value for %s' % (template, left))
    path = os.path.join(directory, name or re.sub(r'\.in$', '', template))
    with open(path, 'w') as f:
        f.write(text)
    os.chmod(path, 0o644)
    return path, log


def line_of(path, needle):
    """1-based number of the first line of file path containing needle."""
    with open(path) as f:
        for i, line in enumerate(f, 1):
            if needle in line:
                return i
    raise ValueError('%r not in %s' % (needle, path))


def read_log(path):
    try:
        with open(path, 'rb') as f:
            return f.read().decode('utf-8', 'replace')
    except OSError:
        return ''


def log_lines(path, pattern=None):
    lines = read_log(path).splitlines()
    if pattern is None:
        return lines
    return [l for l in lines if re.search(pattern, l)]


def wait_log(path, pattern, timeout=5, count=1):
    """Wait until count lines of the log match pattern; returns the matching lines (maybe fewer)."""
    got = wait_for(lambda: (lambda m: m if len(m) >= count else None)(log_lines(path, pattern)),
                   timeout, 0.05)
    return got or log_lines(path, pattern)


# ---------------------------------------------------------------------------
# runner
# ---------------------------------------------------------------------------

_tests = []


def test(fn):
    """Register a test function (run in definition order by main())."""
    _tests.append(fn)
    return fn


def _watchdog(signum, frame):
    with _tap_lock:
        _out('Bail out!  %s ran for more than its time limit' % os.path.basename(sys.argv[0]))
    for p in list(_live_procs):
        try:
            _terminate(p, grace=0.5)
        except Exception:
            _killpg(p.pid, signal.SIGKILL)
    _cleanup_all()
    os._exit(255)


def _on_term(signum, frame):
    _watchdog(signum, frame)


def main(time_limit=90, need_binary=True, only=None):
    """Enter the namespace, run the @test functions, print the plan, exit with the failure count."""
    enter_netns()
    signal.signal(signal.SIGALRM, _watchdog)
    signal.signal(signal.SIGTERM, _on_term)
    signal.alarm(time_limit)
    if need_binary and not os.access(SESSION_BIN, os.X_OK):
        bail_out('%s is not built (run make, or set SOCKD_BUILD)' % SESSION_BIN)
    if only is None and os.environ.get('SOCKD_TEST_ONLY'):
        only = os.environ['SOCKD_TEST_ONLY'].split(',')
    for fn in _tests:
        if only and fn.__name__ not in only:
            continue
        note('--- %s' % fn.__name__)
        mark = len(_cleanups)
        t0 = time.monotonic()
        try:
            fn()
        except Exception:
            ok(False, '%s: ran to the end without an exception' % fn.__name__,
               traceback.format_exc())
        finally:
            _run_cleanups(mark)
        if VERBOSE:
            note('%s took %.2f s' % (fn.__name__, time.monotonic() - t0))
    signal.alarm(0)
    _cleanup_all()
    done_testing()
    sys.stdout.flush()
    sys.exit(min(_state['failed'], 254))
