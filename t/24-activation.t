#!/usr/bin/python3
"""Activation: inetd-style fd 0, xinetd, refusing what is not a connected TCP socket, exit codes.

- systemd-socket-activate --accept --inetd (connection on fds 0 and 1);
- xinetd -dontfork (connection on fds 0, 1 and 2): a CONNECT, a refused
  request and a rules file that does not load, each with the rules
  logging to stderr, and the client receives exactly the SOCKS bytes:
  nothing written to stdout/stderr reaches it;
- LISTEN_FDS/LISTEN_PID for another process are ignored (fd 0 is used);
- fd 0 a pipe, /dev/null, a UNIX socket, a listening TCP socket, a UDP
  socket, and LISTEN_FDS=1 with fd 3 a pipe: exit 3, a message on
  stderr, nothing on stdout, nothing written to the UNIX socket;
- the exit codes of the interface: 0 relayed, 1 refused, 2 rules file,
  4 privilege drop failed (no such user, or root as user.unprivileged),
  64 usage.
"""
import os
import re
import socket
import subprocess
import sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
from sockdtest import *  # noqa: F401,F403

STDERR_CONF = os.path.join(CONFDIR, 'stderr.conf')
SYNTAX_CONF = os.path.join(CONFDIR, 'syntax-error.conf')


def exact_connect_exchange(c, target_port, payload, what):
    """Greeting, CONNECT, payload echoed, half-close, EOF: and not one byte more."""
    c.send(greeting())
    is_(c.recv_exact(2), b'\x05\x00', '%s: method reply is exactly 05 00' % what)
    c.send(req_ipv4('127.0.0.1', target_port))
    rep = c.read_reply()
    is_((rep.ver, rep.rep, rep.rsv, rep.atyp, rep.addr), (5, 0, 0, 1, '127.0.0.1'),
        '%s: reply 00 with an IPv4 BND address' % what, repr(rep))
    c.send(payload)
    c.shutdown_wr()
    rest, how = c.recv_until_eof(timeout=5)
    is_(how, 'eof', '%s: EOF at the end' % what)
    ok(rest == payload, '%s: exactly the echoed data and nothing else follows the reply' % what,
       'got %r' % rest[:300])


@test
def inetd_mode():
    echo = Target(h_echo)
    d = tmpdir()
    conf, log = make_conf(d)
    srv = Server(conf, inetd=True)
    c = RawClient(srv.addr)
    exact_connect_exchange(c, echo.port, b'inetd mode payload', '--inetd')
    ok(wait_log(log, r'\bpass\b.*dest=127\.0\.0\.1\.%d' % echo.port), 'log: pass line', read_log(log))
    is_(srv.wait_exit_codes(1), [0], 'session exits 0', srv.stderr())


@test
def inetd_mode_logging_to_stderr():
    # fd 1 is the client socket here: nothing may be written to it
    echo = Target(h_echo)
    srv = Server(STDERR_CONF, inetd=True)
    c = RawClient(srv.addr)
    exact_connect_exchange(c, echo.port, b'stderr conf', '--inetd, logoutput: stderr')
    ok(wait_for(lambda: re.search(r'\bend\b', srv.stderr()), 5),
       'the log lines went to the activator\'s stderr', srv.stderr())


@test
def xinetd_connect():
    echo = Target(h_echo)
    d = tmpdir()
    conf, log = make_conf(d)
    x = Xinetd(conf)
    c = RawClient(x.addr)
    exact_connect_exchange(c, echo.port, b'through xinetd', 'xinetd')
    ok(wait_log(log, r'\bpass\b.*dest=127\.0\.0\.1\.%d' % echo.port), 'log: pass line', read_log(log))


@test
def xinetd_stderr_never_reaches_client():
    echo = Target(h_echo)
    x = Xinetd(STDERR_CONF)
    c = RawClient(x.addr)
    exact_connect_exchange(c, echo.port, b'logoutput: stderr under xinetd',
                           'xinetd, logoutput: stderr')
    # a refused request: the reply, then EOF, nothing else
    blocked = Target(h_echo, host='127.0.0.4')
    c = RawClient(x.addr)
    c.send(greeting() + req_ipv4('127.0.0.4', blocked.port))
    try:
        got = c.recv_exact(12)
    except (EOFError, OSError) as e:
        got = repr(e)
    is_(got[:4] if isinstance(got, bytes) else got, b'\x05\x00\x05\x02',
        'xinetd, refused request: 05 00 then reply 02')
    rest, how = c.recv_until_eof(timeout=5)
    ok(rest == b'' and how in ('eof', 'reset'), 'xinetd, refused request: nothing after the reply',
       'got %r %s' % (rest[:300], how))


@test
def xinetd_rules_error_sends_nothing():
    x = Xinetd(SYNTAX_CONF)
    c = RawClient(x.addr)
    try:
        c.send(greeting())
    except OSError:
        pass
    data, how, _ = c.wait_closed(5)
    ok(data == b'' and how in ('eof', 'reset'),
       'xinetd, rules file with a syntax error: the client receives nothing (not the error message)',
       'got %r %s' % (data[:300], how))


@test
def foreign_listen_pid_ignored():
    echo = Target(h_echo)
    s = DirectSession(STDERR_CONF, env={'LISTEN_FDS': '1', 'LISTEN_PID': '1'})
    exact_connect_exchange(s.raw, echo.port, b'fd 0', 'LISTEN_PID of another process')
    rc, out, err = s.wait(10)
    is_(rc, 0, 'exit 0', err)


def run_with_stdin(stdin, conf=STDERR_CONF, pass_fds=(), argv=None, env=None):
    e = clean_env()
    for k in ('LISTEN_FDS', 'LISTEN_PID', 'LISTEN_FDNAMES'):
        e.pop(k, None)
    e.update(env or {})
    p = subprocess.Popen(argv or [SESSION_BIN, '-f', conf], stdin=stdin, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, pass_fds=pass_fds, env=e, start_new_session=True)
    try:
        out, err = p.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        return None, out, err
    return p.returncode, out, err


def expect_activation_error(res, what):
    rc, out, err = res
    is_(rc, 3, '%s: exit code 3' % what, 'stderr: %r' % err)
    ok(err.strip() != b'', '%s: an error message on stderr' % what)
    is_(out, b'', '%s: nothing on stdout' % what)
    note('%s: %s' % (what, err.decode(errors='replace').strip()))


@test
def stdin_pipe():
    r, w = os.pipe()
    try:
        res = run_with_stdin(r)
    finally:
        os.close(r)
        os.close(w)
    expect_activation_error(res, 'fd 0 is a pipe')


@test
def stdin_devnull():
    with open('/dev/null', 'rb') as f:
        expect_activation_error(run_with_stdin(f), 'fd 0 is /dev/null')


@test
def stdin_unix_socket():
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        res = run_with_stdin(b)
        b.close()
        expect_activation_error(res, 'fd 0 is a UNIX socket')
        a.settimeout(2)
        try:
            data = a.recv(1000)
        except socket.timeout:
            data = b'(still open)'
        is_(data, b'', 'nothing was written to the UNIX socket')
    finally:
        a.close()


@test
def stdin_listening_tcp_socket():
    l = socket.socket()
    l.bind(('127.0.0.1', 0))
    l.listen(1)
    try:
        expect_activation_error(run_with_stdin(l), 'fd 0 is a listening TCP socket')
    finally:
        l.close()


@test
def stdin_udp_socket():
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(('127.0.0.1', 0))
    u.connect(('127.0.0.1', free_port()))
    try:
        expect_activation_error(run_with_stdin(u), 'fd 0 is a connected UDP socket')
    finally:
        u.close()


@test
def listen_fds_pipe():
    r, w = os.pipe()
    try:
        with open('/dev/null', 'rb') as devnull:
            res = run_with_stdin(devnull, pass_fds=(r,), argv=[
                'sh', '-c', 'exec 3<&%d; LISTEN_FDS=1 LISTEN_PID=$$ exec "$0" -f "$1"' % r,
                SESSION_BIN, STDERR_CONF])
    finally:
        os.close(r)
        os.close(w)
    expect_activation_error(res, 'LISTEN_FDS=1 with fd 3 a pipe')


@test
def exit_code_relayed():
    echo = Target(h_echo)
    s = DirectSession(STDERR_CONF)
    exact_connect_exchange(s.raw, echo.port, b'direct', 'direct run')
    rc, out, err = s.wait(10)
    is_(rc, 0, 'relayed session: exit 0', err)
    is_(out, b'', 'nothing on stdout')
    like(err, r'\bpass\b', 'stderr has the pass line')
    like(err, r'\bend\b', 'stderr has the end line')


@test
def exit_code_refused():
    blocked = Target(h_echo, host='127.0.0.4')
    s = DirectSession(STDERR_CONF)
    s.raw.send(greeting() + req_ipv4('127.0.0.4', blocked.port))
    rc, out, err = s.wait(10)
    is_(rc, 1, 'refused request: exit 1', err)
    like(err, r'\bblock\b', 'stderr has the block line')
    s2 = DirectSession(os.path.join(CONFDIR, 'default-block.conf'))
    rc, out, err = s2.wait(10)
    is_(rc, 1, 'client blocked by default: exit 1', err)
    data, how, _ = s2.raw.wait_closed(2)
    is_(data, b'', 'nothing sent to the blocked client')


@test
def exit_code_rules_error():
    s = DirectSession(SYNTAX_CONF)
    rc, out, err = s.wait(10)
    is_(rc, 2, 'rules file with a syntax error: exit 2', err)
    line = line_of(SYNTAX_CONF, '[syntax-error]')
    like(err, r'syntax-error\.conf:%d\b' % line, 'stderr names syntax-error.conf:%d' % line)
    data, how, _ = s.raw.wait_closed(2)
    is_(data, b'', 'nothing sent to the client')
    d = tmpdir()
    s = DirectSession(os.path.join(d, 'missing.conf'))
    rc, out, err = s.wait(10)
    is_(rc, 2, 'missing rules file: exit 2', err)


def conf_with_unprivileged(user):
    d = tmpdir()
    text = open(STDERR_CONF).read().replace('user.unprivileged: nobody', 'user.unprivileged: %s' % user)
    conf, _ = make_conf(d, text=text)
    return conf


@test
def exit_code_privilege_drop_failed():
    echo = Target(h_echo)
    for user, what in (('no-such-user-sockd-test', 'user.unprivileged names no user'),
                       ('root', 'user.unprivileged: root')):
        s = DirectSession(conf_with_unprivileged(user))
        try:
            s.raw.send(greeting() + req_ipv4('127.0.0.1', echo.port))
        except OSError:
            pass
        rc, out, err = s.wait(10)
        is_(rc, 4, '%s: exit 4 (privilege drop failed)' % what, err)
        ok(err.strip() != b'', '%s: a message on stderr' % what)
        is_(len(echo.records), 0, '%s: the target saw no connection' % what)


@test
def exit_code_usage():
    with open('/dev/null', 'rb') as f:
        rc, out, err = run_with_stdin(f, argv=[SESSION_BIN, '--no-such-option'])
    is_(rc, 64, 'unknown option: exit 64', err)
    ok(err.strip() != b'', 'a usage message on stderr')


main(time_limit=80)
