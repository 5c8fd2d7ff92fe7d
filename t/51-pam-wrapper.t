#!/usr/bin/python3
"""PAM stacks under pam_wrapper (no change to /etc): pam_matrix and friends.

Each session runs with LD_PRELOAD=libpam_wrapper.so, PAM_WRAPPER=1 and
PAM_WRAPPER_SERVICE_DIR pointing at service files written by the test:
 - pam_matrix: good and wrong password, the account phase refusing a user
   whose passdb service differs; a service without a file is refused even
   though an "other" file that permits everything exists (no fallback);
   a socks rule with pam.servicename: only takes that service's users;
 - pam_set_items rewriting PAM_USER: the mapped name is the one rules
   (user:) and logs see;
 - pam.address allowing and refusing by client address (pam_succeed_if,
   pam_listfile), as a socks method (05 FF) and as a client method (closed
   before any SOCKS byte);
 - pam.session: yes with pam_exec: open and close each observed exactly
   once, close only after the relay ended, by a root parent, also when the
   connection ends between login and relay; without it no extra process
   and no session;
 - method enforcement: 05 FF, SOCKS4 5B, user:/group: rules;
 - bad RFC 1929 input, each refused with a logged reason, and no password
   in any log; a stack that sends info and error messages: they are logged,
   and only the RFC replies reach the client;
 - sockd-check -C gives the live session's verdict and rule line, for
   pam.username users and for a client let in by clientmethod pam.address.
"""
import glob
import os
import re
import shutil
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
from sockdtest import *  # noqa: E402,F403

CHECK = os.path.join(BUILD, 'sockd-check', 'sockd-check')
MULTIARCH = 'x86_64-linux-gnu'
for _cand in ('/usr/lib/%s' % MULTIARCH, '/usr/lib64', '/usr/lib'):
    if os.path.exists(os.path.join(_cand, 'libpam_wrapper.so')):
        LIBDIR = _cand
        break
else:
    LIBDIR = None
WRAPPER_MODS = os.path.join(LIBDIR or '/usr/lib', 'pam_wrapper')
for _cand in ('/usr/lib/%s/security' % MULTIARCH, '/lib/%s/security' % MULTIARCH,
              '/usr/lib64/security', '/usr/lib/security'):
    if os.path.exists(os.path.join(_cand, 'pam_permit.so')):
        SYSMODS = _cand
        break
else:
    SYSMODS = None

MATRIX = os.path.join(WRAPPER_MODS, 'pam_matrix.so')
SET_ITEMS = os.path.join(WRAPPER_MODS, 'pam_set_items.so')


def sysmod(name):
    return os.path.join(SYSMODS or '/lib/security', name)


def secret():
    return 'Pw-' + os.urandom(8).hex()


PW = {'alice': secret(), 'bob': secret(), 'carol': secret(), 'daemon': secret()}
ALL_SECRETS = list(PW.values())


def _pam_dirs():
    return set(glob.glob('/tmp/pam.?'))


def _clean_pam_dirs(before):
    """Remove the /tmp/pam.X directories pam_wrapper left behind during this test."""
    for d in _pam_dirs() - before:
        pid = None
        try:
            with open(os.path.join(d, 'pid')) as f:
                pid = int(f.read().strip() or 0)
        except (OSError, ValueError):
            pass
        if pid and pid_alive(pid):
            continue
        shutil.rmtree(d, ignore_errors=True)


class Stack:
    """A pam_wrapper service directory, a pam_matrix passdb, and servers using them."""

    def __init__(self):
        defer(_clean_pam_dirs, _pam_dirs())
        self.dir = tmpdir('sockd-pam-')
        self.services = os.path.join(self.dir, 'services')
        os.mkdir(self.services)
        os.chmod(self.services, 0o755)
        self.passdb = os.path.join(self.dir, 'passdb')
        self.write(self.passdb, ''.join('%s:%s:%s\n' % (u, PW[u], s) for u, s in
                                        (('alice', 'sockd'), ('bob', 'elsewhere'),
                                         ('carol', 'sockd2'), ('daemon', 'sockd'))))
        matrix = 'auth required %s passdb=%s\naccount required %s passdb=%s\n' % (
            MATRIX, self.passdb, MATRIX, self.passdb)
        self.service('sockd', matrix)
        self.service('sockd2', matrix)
        # what Linux-PAM would fall back to for a service without a file
        self.service('other', 'auth required %s\naccount required %s\n'
                     % (sysmod('pam_permit.so'), sysmod('pam_permit.so')))

    @staticmethod
    def write(path, text, mode=0o644):
        with open(path, 'w') as f:
            f.write(text)
        os.chmod(path, mode)

    def service(self, name, text):
        self.write(os.path.join(self.services, name), text)

    def env(self, **extra):
        e = {'LD_PRELOAD': 'libpam_wrapper.so', 'PAM_WRAPPER': '1',
             'PAM_WRAPPER_SERVICE_DIR': self.services}
        e.update(extra)
        return e

    def conf(self, body, socksmethod='pam.username', clientmethod='none', extra='', name=None):
        d = tmpdir()
        log = os.path.join(d, 'sockd.log')
        text = ('logoutput: %s\n'
                'user.privileged: root\n'
                'user.unprivileged: nobody\n'
                'clientmethod: %s\n'
                'socksmethod: %s\n'
                'timeout.negotiate: 5\n'
                'timeout.connect: 5\n'
                'timeout.io: 0\n'
                '%s%s' % (log, clientmethod, socksmethod, extra, body))
        return make_conf(d, text, name=name or 'sockd.conf')

    def server(self, conf, **env):
        return Server(conf, env=self.env(**env))


def rfc1929(user, pw):
    u = user.encode() if isinstance(user, str) else user
    p = pw.encode() if isinstance(pw, str) else pw
    return bytes([1, len(u)]) + u + bytes([len(p)]) + p


def login(addr, user, pw, source=None, methods=(2,)):
    """Greeting + RFC 1929; returns (client, method reply, status or exception text)."""
    c = RawClient(addr, source=source)
    m = c.greet(methods)
    if m != b'\x05\x02':
        return c, m, None
    c.send(rfc1929(user, pw))
    try:
        st = c.recv_exact(2)
    except (EOFError, OSError) as e:
        st = repr(e)
    return c, m, st


def login_connect(addr, user, pw, port, source=None):
    """Log in and CONNECT to 127.0.0.1:port; returns (client, status, Reply or None)."""
    c, m, st = login(addr, user, pw, source=source)
    if st != b'\x01\x00':
        return c, st, None
    c.send(req_ipv4('127.0.0.1', port))
    try:
        return c, st, c.read_reply()
    except (EOFError, OSError, ValueError):
        return c, st, None


def no_secret_in_logs(paths, what):
    text = ''.join(read_log(p) for p in paths)
    leaked = [s for s in ALL_SECRETS if s in text]
    ok(not leaked, '%s: no password appears in any log' % what, 'found %r' % leaked)


def last_match(log, pattern, after):
    """Wait for a line matching pattern beyond the first `after` ones; return it or ''."""
    lines = wait_log(log, pattern, count=after + 1)
    return lines[-1] if len(lines) > after else ''


def client_port(c):
    return c.local()[1]


# ---------------------------------------------------------------------------


@test
def matrix_passwords_accounts_and_missing_service():
    st = Stack()
    body = b'matrix\n' * 30
    http = HttpServer(body)
    conf, log = st.conf(
        'client pass { from: 127.0.0.1/32 to: 0/0 log: connect error }\n'
        'client pass { from: 127.0.0.3/32 to: 0/0 pam.servicename: nosuch log: connect error }\n'
        'client pass { from: 127.0.0.4/32 to: 0/0 pamservicename: sockd2 log: connect error }\n'
        'socks pass { from: 0/0 to: 0/0 pam.servicename: sockd log: connect disconnect error }\n'
        'socks block { from: 0/0 to: 0/0 log: connect error }\n')
    srv = st.server(conf)
    url = 'http://127.0.0.1:%d/file' % http.port

    r = run(['curl', '-sS', '--max-time', '10', '-o', '-', '-x',
             'socks5h://alice:%s@127.0.0.1:%d' % (PW['alice'], srv.port), url])
    is_(r.returncode, 0, 'alice with her password (default service sockd): curl exits 0',
        r.stderr.decode(errors='replace'))
    ok(r.stdout == body, 'curl gets the body')
    ok(wait_log(log, r'info: pass .*method=pam\.username user=alice rule=%s:%d '
                % (re.escape(conf), line_of(conf, 'socks pass'))),
       'log: pass, method=pam.username user=alice, the pam.servicename: sockd rule', read_log(log))

    r = run(['curl', '-sS', '--max-time', '10', '-o', '-', '-x',
             'socks5://alice:%s@127.0.0.1:%d' % (PW['bob'], srv.port), url])
    like(r.stderr, r'User was rejected by the SOCKS5 server \(1 1\)',
         'alice with a wrong password: curl is rejected with 01 01')
    ok(last_match(log, r"info: block .*method=pam\.username user=- .*reason=\"pam\.username user "
                  r"'alice' service sockd: pam_authenticate: ", 0),
       'log: block with the pam_authenticate error', read_log(log))

    n = len(log_lines(log, r'info: block '))
    c, m, status = login(srv.addr, 'bob', PW['bob'])
    is_(status, b'\x01\x01', 'bob, right password, passdb service "elsewhere": 01 01 (account phase)')
    data, how, _ = c.wait_closed(5)
    is_((data, how), (b'', 'eof'), 'then the connection is closed')
    like(last_match(log, r'info: block ', n), r"user 'bob' service sockd: pam_acct_mgmt: ",
         'log: refused by pam_acct_mgmt')

    n = len(log_lines(log, r'info: block '))
    c, m, status = login(srv.addr, 'alice', PW['alice'], source='127.0.0.3')
    is_(status, b'\x01\x01', 'service without a file ("other" permits all): 01 01, no fallback')
    like(last_match(log, r'info: block ', n), r'service nosuch: PAM service \\?"nosuch\\?" has no file',
         'log: the service has no file')

    n = len(log_lines(log, r'info: block '))
    c, st2, rep = login_connect(srv.addr, 'carol', PW['carol'], http.port, source='127.0.0.4')
    is_(st2, b'\x01\x00', 'carol authenticated by service sockd2 (pamservicename:): 01 00')
    is_(rep and rep.rep, 2, 'but the socks rule with pam.servicename: sockd does not take her: 02')
    like(last_match(log, r'info: block ', n),
         r'user=carol rule=%s:%d ' % (re.escape(conf), line_of(conf, 'socks block')),
         'log: carol blocked by the next rule')
    is_(len(http.requests), 1, 'the target saw only the good request')
    no_secret_in_logs([log, srv.stderr_path], 'pam_matrix')


@test
def rewritten_pam_user():
    st = Stack()
    st.service('rewrite', 'auth required %s passdb=%s\nauth required %s\naccount required %s\n'
               % (MATRIX, st.passdb, SET_ITEMS, sysmod('pam_permit.so')))
    echo = Target(h_echo)
    conf, log = st.conf(
        'client pass { from: 0/0 to: 0/0 pam.servicename: rewrite log: connect error }\n'
        'socks block { from: 0/0 to: 0/0 user: alice log: connect error }\n'
        'socks pass { from: 0/0 to: 0/0 user: mapped-alice log: connect disconnect error }\n')
    srv = st.server(conf, PAM_USER='mapped-alice')   # pam_set_items sets PAM_USER from it
    c, status, rep = login_connect(srv.addr, 'alice', PW['alice'], echo.port)
    is_(status, b'\x01\x00', 'alice logs in through a stack that maps her to mapped-alice')
    is_(rep and rep.rep, 0, 'the user: mapped-alice rule passes (not the user: alice block rule)',
        repr(rep))
    c.send(b'mapped')
    is_(c.recv_exact(6), b'mapped', 'relayed')
    c.close()
    ok(wait_log(log, r'info: pass .*user=mapped-alice rule=%s:%d ' %
                (re.escape(conf), line_of(conf, 'user: mapped-alice'))),
       'log: pass with user=mapped-alice and that rule', read_log(log))
    ok(wait_log(log, r'info: end .*user=mapped-alice '), 'log: end line with user=mapped-alice')
    unlike(read_log(log), r'user=alice\b', 'the unmapped name is not used for the session')


@test
def pam_address_as_socks_method():
    st = Stack()
    # PAM_USER and PAM_RUSER are "rhostusr", as in Dante
    st.service('addr', 'auth required %s rhost in 127.0.0.1:127.0.0.5\n'
               'auth required %s user = rhostusr ruser = rhostusr\naccount required %s\n'
               % (sysmod('pam_succeed_if.so'), sysmod('pam_succeed_if.so'),
                  sysmod('pam_permit.so')))
    echo = Target(h_echo)
    conf, log = st.conf(
        'client pass { from: 127.0.0.0/8 to: 0/0 pam.servicename: addr log: connect error }\n'
        'socks pass { from: 0/0 to: 0/0 log: connect disconnect error }\n',
        socksmethod='pam.address')
    srv = st.server(conf)
    c = RawClient(srv.addr, source='127.0.0.1')
    is_(c.greet((0,)), b'\x05\x00', 'from 127.0.0.1 (allowed by rhost): 05 00')
    c.send(req_ipv4('127.0.0.1', echo.port))
    is_(c.read_reply().rep, 0, 'CONNECT succeeds')
    c.send(b'addr')
    is_(c.recv_exact(4), b'addr', 'relayed')
    c.close()
    ok(wait_log(log, r'info: pass client=127\.0\.0\.1\.\d+ .*method=pam\.address '),
       'log: pass with method=pam.address', read_log(log))

    c = RawClient(srv.addr, source='127.0.0.3')
    try:
        m = c.greet((0, 2))
    except (EOFError, OSError) as e:
        m = repr(e)
    is_(m, b'\x05\xff', 'from 127.0.0.3 (refused by rhost): 05 FF')
    data, how, _ = c.wait_closed(5)
    is_((data, how), (b'', 'eof'), 'then the connection is closed')
    is_(len(echo.records), 1, 'the target saw only the allowed client')
    ok(wait_log(log, r'info: block client=127\.0\.0\.3\.\d+ .*method=pam\.address .*'
                r'reason="pam\.address service addr: pam_authenticate: '),
       'log: block with the PAM reason', read_log(log))
    is_(sorted(srv.wait_exit_codes(2) or []), [0, 1], 'exit codes: 0 relayed, 1 refused')


@test
def pam_address_as_client_method():
    st = Stack()
    hosts = os.path.join(st.dir, 'hosts.allow')
    st.write(hosts, '127.0.0.1\n')
    st.service('addrlist', 'auth required %s item=rhost sense=allow file=%s onerr=fail\n'
               'account required %s\n' % (sysmod('pam_listfile.so'), hosts,
                                          sysmod('pam_permit.so')))
    echo = Target(h_echo)
    conf, log = st.conf(
        'client pass { from: 127.0.0.0/8 to: 0/0 clientmethod: pam.address\n'
        '              pam.servicename: addrlist log: connect error }\n'
        'socks pass { from: 0/0 to: 0/0 clientmethod: pam.address log: connect disconnect error }\n',
        socksmethod='none', clientmethod='none pam.address')
    srv = st.server(conf)
    c, m, rep = socks_connect(srv.addr, '127.0.0.1', echo.port, source='127.0.0.1')
    is_((m, rep.rep), (b'\x05\x00', 0), 'from 127.0.0.1 (listed): method none, CONNECT succeeds')
    c.send(b'listed')
    is_(c.recv_exact(6), b'listed', 'relayed')
    c.close()
    ok(wait_log(log, r'info: pass client=127\.0\.0\.1\.\d+ .*rule=%s:%d '
                % (re.escape(conf), line_of(conf, 'socks pass'))),
       'log: pass by the socks rule that requires clientmethod pam.address', read_log(log))
    # sockd-check cannot run PAM; for a client PAM lets in it must give the same answer
    spec = 'from=127.0.0.1,laddr=127.0.0.1,lport=%d,to=127.0.0.1,port=%d' % (srv.port, echo.port)
    r = run([CHECK, '-f', conf, '-C', spec])
    like(r.stdout, r'\Apass socks-rule #1 %s:%d' % (re.escape(conf), line_of(conf, 'socks pass')),
         'sockd-check -C agrees: the socks rule with clientmethod: pam.address passes a client '
         'whose client rule has only pam.address', r.stderr)

    c = RawClient(srv.addr, source='127.0.0.3')
    # send nothing: PAM decides before a SOCKS byte is read
    data, how, _ = c.wait_closed(5)
    ok(data == b'' and how in ('eof', 'reset'),
       'from 127.0.0.3 (not listed): closed before any SOCKS byte, nothing sent',
       'got %r %s' % (data, how))
    ok(wait_log(log, r'info: block client=127\.0\.0\.3\.\d+ .*reason="clientmethod pam\.address '
                r'service addrlist: pam_authenticate: '),
       'log: block with the PAM reason', read_log(log))
    is_(len(echo.records), 1, 'the target saw only the listed client')


@test
def pam_session_open_close():
    st = Stack()
    events = os.path.join(st.dir, 'events')
    script = os.path.join(st.dir, 'session.sh')
    st.write(script, '#!/bin/sh\necho "$PAM_TYPE $PAM_USER $PAM_RHOST" >> %s\n' % events, 0o755)
    st.service('sess', 'auth required %s passdb=%s\naccount required %s\n'
               'session required %s %s\n'
               % (MATRIX, st.passdb, sysmod('pam_permit.so'), sysmod('pam_exec.so'), script))
    echo = Target(h_echo)
    conf, log = st.conf(
        'client pass { from: 127.0.0.1/32 to: 0/0 pam.servicename: sess pam.session: yes\n'
        '              log: connect error }\n'
        'client pass { from: 127.0.0.3/32 to: 0/0 pam.servicename: sess log: connect error }\n'
        'socks pass { from: 0/0 to: 0/0 log: connect disconnect error }\n')
    srv = st.server(conf)

    def lines():
        return read_log(events).splitlines()

    # with pam.session: yes (in the client rule)
    c, status, rep = login_connect(srv.addr, 'alice', PW['alice'], echo.port, source='127.0.0.1')
    ok(status == b'\x01\x00' and rep and rep.rep == 0, 'pam.session: yes: login and CONNECT',
       repr((status, rep)))
    c.send(b'held')
    is_(c.recv_exact(4), b'held', 'relaying')
    is_(wait_for(lambda: lines() or None, 3), ['open_session alice 127.0.0.1'],
        'while relaying: one open_session (user alice, rhost 127.0.0.1), no close yet')
    pids = wait_for(lambda: (lambda p: p if len(p) == 2 else None)(srv.sessions()), 3) or \
        srv.sessions()
    is_(len(pids), 2, 'while relaying: two sockd-session processes (root parent + relay)',
        repr(pids))
    uids = sorted(proc_status(p).get('Uid', '').split()[0] for p in pids if proc_status(p))
    ok(len(uids) == 2 and uids[0] == '0' and uids[1] != '0',
       'the parent that will close the session is root, the relay is not', repr(uids))
    time.sleep(0.3)
    is_(lines(), ['open_session alice 127.0.0.1'], 'still no close_session while the relay runs')
    c.shutdown_wr()
    data, how = c.recv_until_eof(5)
    c.close()
    is_(how, 'eof', 'relay ended')
    ok(wait_for(lambda: len(lines()) >= 2, 5), 'close_session ran after the relay ended')
    ok(srv.wait_no_sessions(5), 'both processes are gone')
    time.sleep(0.2)
    is_(lines(), ['open_session alice 127.0.0.1', 'close_session alice 127.0.0.1'],
        'open and close each exactly once, in that order')
    end = wait_log(log, r'info: end ')
    ok(end, 'log: the relay logged its end')
    is_(srv.wait_exit_codes(1), [0], 'the session (the root parent) exits 0', srv.stderr())

    # without pam.session: no session, no extra process
    c, status, rep = login_connect(srv.addr, 'alice', PW['alice'], echo.port, source='127.0.0.3')
    ok(status == b'\x01\x00' and rep and rep.rep == 0, 'without pam.session: login and CONNECT')
    c.send(b'solo')
    is_(c.recv_exact(4), b'solo', 'relaying')
    time.sleep(0.2)
    pids = srv.sessions()
    is_(len(pids), 1, 'without pam.session: one sockd-session process under the activator',
        repr(pids))
    c.close()
    ok(srv.wait_no_sessions(5), 'session gone')
    is_(len(lines()), 2, 'without pam.session: pam_exec saw no session')

    # a session opened at login is closed however the connection ends after it
    base = len(lines())
    c, m, status = login(srv.addr, 'alice', PW['alice'], source='127.0.0.1')
    is_(status, b'\x01\x00', 'pam.session: logged in')
    c.send(req_ipv4('127.0.0.1', echo.port, cmd=0x09))
    rep = c.read_reply()
    is_(rep.rep, 7, 'then a request with command 0x09: 07')
    c.close()
    ok(srv.wait_no_sessions(5), 'session gone')
    time.sleep(0.2)
    is_(lines()[base:], ['open_session alice 127.0.0.1', 'close_session alice 127.0.0.1'],
        'a refused request after login: the PAM session is still closed, once')
    base = len(lines())
    c, m, status = login(srv.addr, 'alice', PW['alice'], source='127.0.0.1')
    is_(status, b'\x01\x00', 'pam.session: logged in')
    c.close()                               # gone before the request
    ok(srv.wait_no_sessions(5), 'session gone')
    time.sleep(0.2)
    is_(lines()[base:], ['open_session alice 127.0.0.1', 'close_session alice 127.0.0.1'],
        'the client leaving before its request: the PAM session is still closed, once')


@test
def method_enforcement():
    st = Stack()
    t_user, t_group, t_any = Target(h_echo), Target(h_echo), Target(h_echo)
    conf, log = st.conf(
        'client pass { from: 127.0.0.1/32 to: 0/0 socksmethod: pam.username log: connect error }\n'
        'client pass { from: 127.0.0.0/8 to: 0/0 log: connect error }\n'
        'socks pass { from: 0/0 to: 127.0.0.1/32 port = %d user: alice log: connect error }\n'
        'socks pass { from: 0/0 to: 127.0.0.1/32 port = %d group: daemon log: connect error }\n'
        'socks pass { from: 0/0 to: 127.0.0.1/32 port = %d socksmethod: pam.username '
        'log: connect error }\n' % (t_user.port, t_group.port, t_any.port),
        socksmethod='none pam.username')
    srv = st.server(conf)

    c = RawClient(srv.addr, source='127.0.0.1')
    is_(c.greet((0,)), b'\x05\xff', 'only method 00 offered to a client rule requiring '
        'pam.username: 05 FF')
    data, how, _ = c.wait_closed(5)
    is_((data, how), (b'', 'eof'), 'then closed')
    ok(wait_log(log, r'info: block client=127\.0\.0\.1\.\d+ .*reason="client offered no acceptable'),
       'log: no acceptable method', read_log(log))

    c = RawClient(srv.addr, source='127.0.0.1')
    c.send(b'\x04\x01' + t_any.port.to_bytes(2, 'big') + bytes([127, 0, 0, 1]) + b'alice\x00')
    is_(c.recv_exact(8)[1], 0x5b, 'SOCKS4 to a client rule without none: 5B')

    c = RawClient(srv.addr, source='127.0.0.3')
    is_(c.greet((2, 0)), b'\x05\x00', 'the server\'s order decides: none first for 127.0.0.3')
    c.send(req_ipv4('127.0.0.1', t_any.port))
    is_(c.read_reply().rep, 2, 'method none to a socks rule requiring pam.username: 02')

    for target, what in ((t_any, 'socksmethod: pam.username'), (t_user, 'user: alice')):
        c = RawClient(srv.addr, source='127.0.0.3')
        c.send(b'\x04\x01' + target.port.to_bytes(2, 'big') + bytes([127, 0, 0, 1]) +
               b'alice\x00')
        is_(c.recv_exact(8)[1], 0x5b, 'SOCKS4 (user id alice) never passes the %s rule: 5B' % what)

    cases = [('alice', t_user, 0), ('alice', t_group, 2), ('alice', t_any, 0),
             ('daemon', t_group, 0), ('daemon', t_user, 2)]
    for user, target, want in cases:
        c, status, rep = login_connect(srv.addr, user, PW[user], target.port, source='127.0.0.3')
        is_(status, b'\x01\x00', '%s logs in (offered 02 only)' % user)
        is_(rep and rep.rep, want, '%s to the %s rule: %02d' % (
            user, {t_user: 'user: alice', t_group: 'group: daemon',
                   t_any: 'socksmethod: pam.username'}[target], want), repr(rep))
        c.close()
    is_([len(t.records) for t in (t_user, t_group, t_any)], [1, 1, 1],
        'each target saw exactly its permitted connection')


@test
def bad_rfc1929_input():
    st = Stack()
    conf, log = st.conf('client pass { from: 0/0 to: 0/0 log: connect error }\n'
                        'socks pass { from: 0/0 to: 0/0 log: connect error }\n')
    srv = st.server(conf)
    long_pw = 'L' + os.urandom(127).hex()[:254]
    ALL_SECRETS.append(long_pw)
    pw = PW['alice']
    cases = [
        # what, bytes, expected status (None: just a close), log reason pattern
        ('ULEN 0', b'\x01\x00', b'\x01\x01', r'bad username/password message: [^"]*empty'),
        ('PLEN 0', b'\x01\x05alice\x00', b'\x01\x01', r'bad username/password message: [^"]*empty'),
        ('ULEN 255 and PLEN 255', rfc1929('u' * 255, long_pw), b'\x01\x01',
         r"pam\.username user 'u{60}' service sockd: pam_authenticate: "),
        ('NUL inside the name', rfc1929(b'ali\x00ce', pw), b'\x01\x01',
         r'bad username/password message: [^"]*NUL'),
        ('escape byte inside the name', rfc1929(b'ali\x1b[31mce', pw), b'\x01\x01',
         r'bad username/password message: [^"]*control byte'),
        ('sub-negotiation version 05', b'\x05\x05', b'\x01\x01',
         r'bad username/password message: [^"]*version'),
        ('truncated, then close', b'\x01\x05ali', None,
         r'client closed during the username/password'),
    ]
    for what, msg, want, reason in cases:
        n = len(log_lines(log, r'info: block '))
        c = RawClient(srv.addr)
        is_(c.greet((2,)), b'\x05\x02', '%s: method 02' % what)
        c.send(msg)
        if want is None:
            c.shutdown_wr()
        data, how, _ = c.wait_closed(5)
        if want is None:
            is_(data, b'', '%s: nothing sent back, connection closed (%s)' % (what, how))
        else:
            is_(data, want, '%s: %s, then closed (%s)' % (what, want.hex(' '), how))
        ok(how in ('eof', 'reset'), '%s: closed, not left hanging' % what, how)
        line = last_match(log, r'info: block ', n)
        like(line, r'method=pam\.username .*reason="[^"]*(%s)' % reason,
             '%s: logged with a reason' % what)
        ok('\x1b' not in line and '\x00' not in line, '%s: the log line has no raw bytes' % what)
    c, m, status = login(srv.addr, 'alice', pw)
    is_(status, b'\x01\x00', 'a good login still works after all that')
    c.close()
    codes = srv.wait_exit_codes(len(cases), 5) or srv.exit_codes()
    is_(codes[:len(cases)], [1] * len(cases), 'every refused session exited 1')
    no_secret_in_logs([log, srv.stderr_path], 'bad input')


@test
def chatty_stack_reaches_only_the_log():
    st = Stack()
    st.service('chatty', 'auth required %s num_lines=3 info error\nauth required %s passdb=%s\n'
               'account required %s\n' % (os.path.join(WRAPPER_MODS, 'pam_chatty.so'), MATRIX,
                                           st.passdb, sysmod('pam_permit.so')))
    echo = Target(h_echo)
    conf, log = st.conf('client pass { from: 0/0 to: 0/0 pam.servicename: chatty '
                        'log: connect error }\n'
                        'socks pass { from: 0/0 to: 0/0 log: connect error }\n')
    # --inetd: the connection is also stdout, where a careless write would land
    srv = Server(conf, inetd=True, env=st.env())
    c = RawClient(srv.addr)
    c.send(greeting((2,)) + rfc1929('alice', PW['alice']) + req_ipv4('127.0.0.1', echo.port))
    is_(c.recv_exact(2), b'\x05\x02', 'method 02')
    is_(c.recv_exact(2), b'\x01\x00', 'a stack that sends info and error messages: 01 00')
    rep = c.read_reply()
    is_(rep.rep, 0, 'then the CONNECT reply, nothing in between', repr(rep))
    c.send(b'quiet')
    is_(c.recv_exact(5), b'quiet', 'and only the relayed bytes after it')
    c.close()
    msgs = wait_log(log, r'pam: user=alice message="', count=6)
    is_(len(msgs), 6, 'the module\'s 3 info and 3 error messages are logged', read_log(log))


@test
def sockd_check_agrees():
    st = Stack()
    t1, t2 = Target(h_echo), Target(h_echo)
    conf, log = st.conf(
        'client pass { from: 127.0.0.1/32 to: 0/0 log: connect error }\n'
        'client pass { from: 127.0.0.4/32 to: 0/0 pam.servicename: sockd2 log: connect error }\n'
        'socks block { from: 0/0 to: 0/0 port = %d user: daemon log: connect error }\n'
        'socks pass { from: 0/0 to: 0/0 port = %d user: alice daemon pam.servicename: sockd\n'
        '             log: connect error }\n'
        'socks pass { from: 0/0 to: 0/0 port = %d group: daemon log: connect error }\n'
        'socks pass { from: 0/0 to: 0/0 port = %d user: carol log: connect error }\n'
        % (t2.port, t1.port, t2.port, t2.port), name='agree.conf')
    srv = st.server(conf)
    cases = [('127.0.0.1', 'alice', t1), ('127.0.0.1', 'alice', t2), ('127.0.0.1', 'daemon', t1),
             ('127.0.0.1', 'daemon', t2), ('127.0.0.4', 'carol', t1), ('127.0.0.4', 'carol', t2)]
    for src, user, target in cases:
        spec = ('from=%s,laddr=127.0.0.1,lport=%d,to=127.0.0.1,port=%d,method=pam.username,user=%s'
                % (src, srv.port, target.port, user))
        r = run([CHECK, '-f', conf, '-C', spec])
        first = r.stdout.decode(errors='replace').split('\n')[0]
        m = re.match(r'^(pass|block) (?:(?:client|socks)-rule #\d+ (\S+):(\d+)|(default))', first)
        want = (m.group(1), m.group(3) or 'default') if m else (None, first)
        c, status, rep = login_connect(srv.addr, user, PW[user], target.port, source=src)
        sport = client_port(c)
        c.close()
        live = 'pass' if rep is not None and rep.rep == 0 else 'block'
        line = wait_log(log, r'info: (pass|block) client=%s\.%d ' % (re.escape(src), sport))
        lm = re.search(r'rule=(?:\S+:(\d+)|(default))', line[0]) if line else None
        live_rule = (lm.group(1) or lm.group(2)) if lm else None
        is_((live, live_rule), want, '%s from %s to port %d: the session and sockd-check -C say '
            '%s (rule %s)' % (user, src, target.port, want[0], want[1]), 'spec: %s' % spec,
            'sockd-check: %s' % first, 'log: %s' % (line[0] if line else read_log(log)))


if 'sanitizers=' in run([SESSION_BIN, '-vv']).stdout.decode():
    # pam_wrapper loads libpam with RTLD_DEEPBIND, which ASan refuses
    print('1..0 # SKIP pam_wrapper cannot run under AddressSanitizer (RTLD_DEEPBIND)')
    sys.exit(0)
if LIBDIR is None or SYSMODS is None or not os.path.exists(MATRIX):
    print('1..0 # SKIP libpam-wrapper or the PAM modules are not installed (t/deps.sh test)')
    sys.exit(0)
main(time_limit=80)
