#!/usr/bin/python3
"""Authentication against the real system: pam_unix and the password database.

A throwaway system user (useradd --system, chpasswd) and throwaway
/etc/pam.d files, removed at the end of every test even when it fails.
Methods pam.username (pam_unix through a service named with
pam.servicename:) and username (shadow + crypt): good and wrong password,
unknown user, locked (usermod -L), expired (chage -E 0 and -E 1),
must-change (chage -d 0), each with curl socks5://user:pass@; group: and user: rules
with the user's primary and supplementary groups; ncat --proxy-auth and
proxychains4 as other real clients; a failing login that waits for
pam_unix's ~2 s delay does not slow a concurrent good login.  No password
ever reaches a log.
"""
import os
import re
import shutil
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
from sockdtest import *  # noqa: E402,F403

PAMD = '/etc/pam.d'
_seq = [0]


def unique(prefix='sockdt'):
    """A name nobody else uses: prefix + our pid + a counter (at most 32 bytes)."""
    _seq[0] += 1
    return '%s%d%s' % (prefix, os.getpid(), 'abcdefghijklmnopqrstuvwxyz'[_seq[0] % 26])


def new_password():
    return 'Pw-' + os.urandom(8).hex()


def sh(cmd, input=None):
    r = run(cmd, timeout=20, input=input)
    if r.returncode != 0:
        raise RuntimeError('%s failed (%s): %s' % (' '.join(cmd), r.returncode,
                                                   (r.stderr or b'').decode(errors='replace')))
    return r


def _remove_user(name, group):
    # both may fail harmlessly when creation stopped half way
    run(['userdel', name], timeout=20)
    if group:
        run(['groupdel', group], timeout=20)
    r = run(['getent', 'passwd', name])
    if r.returncode == 0:
        diag('could not remove the test user %s' % name)


def system_user(supplementary_group=False):
    """A throwaway system user with a password (and maybe a supplementary group of its own).

    Returns (name, password, supplementary group or None); removed when the test ends.
    """
    name = unique()
    group = unique('sockdg') if supplementary_group else None
    defer(_remove_user, name, group)
    if group:
        sh(['groupadd', '--system', group])
    sh(['useradd', '--system', '--no-create-home', '--shell', '/usr/sbin/nologin',
        '--user-group'] + (['--groups', group] if group else []) + [name])
    pw = new_password()
    sh(['chpasswd'], input=('%s:%s\n' % (name, pw)).encode())
    return name, pw, group


def _remove_file(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def pam_service(text):
    """A throwaway /etc/pam.d service; returns its name. Removed when the test ends."""
    name = unique('sockdt-svc')
    path = os.path.join(PAMD, name)
    defer(_remove_file, path)
    with open(path, 'x') as f:
        f.write(text)
    os.chmod(path, 0o644)
    return name


UNIX_NODELAY = ('auth     required  pam_unix.so nodelay\n'
                'account  required  pam_unix.so\n')
UNIX_DELAY = ('auth     required  pam_unix.so\n'
              'account  required  pam_unix.so\n')


def header(log, socksmethod, extra=''):
    return ('logoutput: %s\n'
            'user.privileged: root\n'
            'user.unprivileged: nobody\n'
            'clientmethod: none\n'
            'socksmethod: %s\n'
            'timeout.negotiate: 10\n'
            'timeout.connect: 5\n'
            'timeout.io: 0\n'
            '%s' % (log, socksmethod, extra))


def pam_server(service, extra_rules=''):
    """A proxy whose clients must log in with pam.username through SERVICE."""
    d = tmpdir()
    log = os.path.join(d, 'sockd.log')
    text = header(log, 'pam.username username') + (
        'client pass { from: 127.0.0.0/8 to: 0/0 socksmethod: pam.username\n'
        '              pam.servicename: %s log: connect error }\n'
        '%s'
        'socks pass { from: 0/0 to: 0/0 pam.servicename: %s command: connect\n'
        '             log: connect disconnect error }\n' % (service, extra_rules, service))
    conf, log = make_conf(d, text)
    return Server(conf), conf, log


def passwd_server(extra_rules=''):
    """A proxy whose clients must log in with username (the password database)."""
    d = tmpdir()
    log = os.path.join(d, 'sockd.log')
    text = header(log, 'username pam.username') + (
        'client pass { from: 127.0.0.0/8 to: 0/0 socksmethod: username log: connect error }\n'
        '%s'
        'socks pass { from: 0/0 to: 0/0 command: connect log: connect disconnect error }\n'
        % extra_rules)
    conf, log = make_conf(d, text)
    return Server(conf), conf, log


def curl(port, user, pw, url, scheme='socks5'):
    return run(['curl', '-sS', '--max-time', '10', '-o', '-', '-x',
                '%s://%s:%s@127.0.0.1:%d' % (scheme, user, pw, port), url], timeout=15)


def rfc1929(user, pw):
    u = user.encode() if isinstance(user, str) else user
    p = pw.encode() if isinstance(pw, str) else pw
    return bytes([1, len(u)]) + u + bytes([len(p)]) + p


def no_secret_in_logs(paths, secrets, what):
    text = ''.join(read_log(p) for p in paths)
    leaked = [s for s in secrets if s and s in text]
    ok(not leaked, '%s: no password appears in the logs' % what,
       'found %r' % leaked)


def _err(r):
    return (r.stderr or b'').decode(errors='replace')


# ---------------------------------------------------------------------------


@test
def pam_unix_and_passwd_accounts():
    name, pw, _ = system_user()
    svc = pam_service(UNIX_NODELAY)
    body = b'through pam_unix\n' * 64
    http = HttpServer(body)
    url = 'http://127.0.0.1:%d/file' % http.port
    psrv, pconf, plog = pam_server(svc)
    usrv, uconf, ulog = passwd_server()
    servers = (('pam.username', psrv, plog), ('username', usrv, ulog))
    blocks = {'pam.username': 0, 'username': 0}
    wrong = new_password()

    goods = [0]

    def good(what):
        goods[0] += 1
        for method, srv, log in servers:
            n = len(http.requests)
            pat = (r'info: pass client=127\.0\.0\.1\.\d+ .*method=%s user=%s rule=\S+:\d+ '
                   % (re.escape(method), name))
            before = len(log_lines(log, pat))
            r = curl(srv.port, name, pw, url)
            is_(r.returncode, 0, '%s, %s: curl with the right password exits 0' % (what, method),
                _err(r))
            ok(r.stdout == body, '%s, %s: curl gets the body' % (what, method))
            is_(len(http.requests), n + 1, '%s, %s: the target saw the request' % (what, method))
            ok(len(wait_log(log, pat, count=before + 1)) == before + 1,
               '%s, %s: log has a pass line with user=%s' % (what, method, name), read_log(log))

    def refused(what, user, password, reasons):
        for method, srv, log in servers:
            n = len(http.requests)
            before = len(log_lines(log, r'info: block .*method=%s ' % re.escape(method)))
            r = curl(srv.port, user, password, url)
            is_(r.returncode, 97, '%s, %s: curl fails with exit code 97 (proxy refused)'
                % (what, method), _err(r))
            like(_err(r), r'rejected by the SOCKS5 server \(1 1\)',
                 '%s, %s: curl reports the 01 01 reply' % (what, method))
            is_(len(http.requests), n, '%s, %s: the target saw nothing' % (what, method))
            blocks[method] += 1
            pat = r'info: block .*method=%s ' % re.escape(method)
            lines = wait_log(log, pat, count=before + 1)
            last = lines[-1] if len(lines) > before else ''
            like(last, r"user '%s'" % re.escape(user),
                 '%s, %s: the block line names the user' % (what, method), read_log(log))
            like(last, reasons[method], '%s, %s: the block line gives the reason' % (what, method))

    good('fresh account')
    refused('wrong password', name, wrong,
            {'pam.username': r'service %s: pam_authenticate: Authentication failure' % svc,
             'username': r'wrong password'})
    refused('unknown user', unique('nouser'), pw,
            {'pam.username': r'pam_authenticate: (Authentication failure|User not known)',
             'username': r'unknown user'})

    states = [
        ('locked (usermod -L)', ['usermod', '-L', name], ['usermod', '-U', name],
         {'pam.username': r'pam_authenticate: Authentication failure',
          'username': r'account locked'}),
        ('expired (chage -E 0)', ['chage', '-E', '0', name], ['chage', '-E', '-1', name],
         {'pam.username': r'pam_acct_mgmt: User account has expired',
          'username': r'account expired'}),
        ('expired (chage -E 1)', ['chage', '-E', '1', name], ['chage', '-E', '-1', name],
         {'pam.username': r'pam_acct_mgmt: User account has expired',
          'username': r'account expired'}),
        ('must change the password (chage -d 0)', ['chage', '-d', '0', name],
         ['chage', '-d', time.strftime('%Y-%m-%d'), name],
         {'pam.username': r'pam_acct_mgmt \(the password must be changed',
          'username': r'password must be changed'}),
    ]
    for what, apply, undo, reasons in states:
        sh(apply)
        refused(what, name, pw, reasons)
        sh(undo)
        good('after undoing %s' % what)
    no_secret_in_logs([plog, ulog, psrv.stderr_path, usrv.stderr_path], [pw, wrong],
                      'pam_unix and username')
    total = goods[0] + blocks['pam.username']
    codes = psrv.wait_exit_codes(total) or psrv.exit_codes()
    is_((sorted(codes).count(0), sorted(codes).count(1), len(codes)),
        (goods[0], blocks['pam.username'], total),
        'pam.username sessions: the refused ones exit 1, the relayed ones 0', repr(codes))


@test
def user_and_group_rules():
    name, pw, supp = system_user(supplementary_group=True)
    svc = pam_service(UNIX_NODELAY)
    t = {k: Target(h_echo) for k in ('user', 'other_user', 'primary', 'supp', 'root_group')}
    rules = ('socks pass { from: 0/0 to: 127.0.0.1/32 port = %d user: %s log: connect error }\n'
             'socks pass { from: 0/0 to: 127.0.0.1/32 port = %d user: root daemon log: connect error }\n'
             'socks pass { from: 0/0 to: 127.0.0.1/32 port = %d group: %s log: connect error }\n'
             'socks pass { from: 0/0 to: 127.0.0.1/32 port = %d group: %s log: connect error }\n'
             'socks pass { from: 0/0 to: 127.0.0.1/32 port = %d group: root log: connect error }\n'
             'socks block { from: 0/0 to: 0/0 log: connect error }\n'
             % (t['user'].port, name, t['other_user'].port, t['primary'].port, name,
                t['supp'].port, supp, t['root_group'].port))
    psrv, pconf, plog = pam_server(svc, rules)
    usrv, uconf, ulog = passwd_server(rules)
    expect = {'user': 0, 'other_user': 2, 'primary': 0, 'supp': 0, 'root_group': 2}
    for method, srv, conf in (('pam.username', psrv, pconf), ('username', usrv, uconf)):
        for key, rep in expect.items():
            c = RawClient(srv.addr)
            is_(c.greet((0, 2)), b'\x05\x02', '%s: method 02 chosen over 00' % method)
            c.send(rfc1929(name, pw))
            is_(c.recv_exact(2), b'\x01\x00', '%s: %s logs in' % (method, name))
            c.send(req_ipv4('127.0.0.1', t[key].port))
            r = c.read_reply()
            is_(r.rep, rep, '%s: %s rule -> reply %02d' % (method, key, rep), repr(r))
            if r.rep == 0:
                c.send(b'grp')
                is_(c.recv_exact(3), b'grp', '%s: %s: relayed' % (method, key))
            c.close()
    # a client without authentication never satisfies user:/group:, even when it claims a name
    d = tmpdir()
    log = os.path.join(d, 'sockd.log')
    conf, log = make_conf(d, header(log, 'none') +
                          'client pass { from: 0/0 to: 0/0 }\n' + rules)
    with Server(conf) as s:
        c, m, r = socks_connect(s.addr, '127.0.0.1', t['user'].port)
        is_(r.rep, 2, 'method none: a user: rule does not match (02)')
        c.close()
        c = RawClient(s.addr)
        c.send(b'\x04\x01' + t['user'].port.to_bytes(2, 'big') + bytes([127, 0, 0, 1]) +
               name.encode() + b'\x00')
        rep = c.recv_exact(8)
        is_(rep[1], 0x5b, 'SOCKS4 with user id %s: the user: rule does not match (5B)' % name)
    ok(all(not t[k].records for k in ('other_user', 'root_group')),
       'blocked targets saw no connection')


@test
def ncat_proxy_auth():
    name, pw, _ = system_user()
    svc = pam_service(UNIX_NODELAY)
    echo = Target(h_echo)
    srv, conf, log = pam_server(svc)
    data = b'ncat through pam_unix\n' * 20
    r = run(['ncat', '--proxy', '127.0.0.1:%d' % srv.port, '--proxy-type', 'socks5',
             '--proxy-auth', '%s:%s' % (name, pw), '-w', '5', '127.0.0.1', str(echo.port)],
            input=data)
    is_(r.returncode, 0, 'ncat --proxy-auth with the right password exits 0', _err(r))
    is_(r.stdout, data, 'ncat gets its data echoed through the proxy')
    ok(wait_log(log, r'info: pass .*method=pam\.username user=%s ' % name),
       'log: pass with user=%s' % name, read_log(log))
    wrong = new_password()
    r = run(['ncat', '--proxy', '127.0.0.1:%d' % srv.port, '--proxy-type', 'socks5',
             '--proxy-auth', '%s:%s' % (name, wrong), '-w', '5', '127.0.0.1', str(echo.port)],
            input=b'nope\n')
    isnt(r.returncode, 0, 'ncat with a wrong password fails', _err(r))
    is_(len(echo.records), 1, 'the target saw only the good connection')
    ok(wait_log(log, r'info: block .*pam_authenticate'), 'log: block line for the wrong password')
    no_secret_in_logs([log, srv.stderr_path], [pw, wrong], 'ncat')


@test
def proxychains4_user_pass():
    if not shutil.which('proxychains4'):
        skip('proxychains4 is not installed (t/deps.sh test)', 6)
        return
    name, pw, _ = system_user()
    svc = pam_service(UNIX_NODELAY)
    body = b'proxychains body\n' * 10
    http = HttpServer(body)
    srv, conf, log = pam_server(svc)
    d = tmpdir()

    def chain(password):
        pc = os.path.join(d, 'proxychains-%s.conf' % password[:6])
        with open(pc, 'w') as f:
            f.write('strict_chain\nquiet_mode\ntcp_read_time_out 5000\n'
                    'tcp_connect_time_out 5000\n[ProxyList]\n'
                    'socks5 127.0.0.1 %d %s %s\n' % (srv.port, name, password))
        return run(['proxychains4', '-f', pc, 'curl', '-sS', '--max-time', '10', '-o', '-',
                    'http://127.0.0.1:%d/file' % http.port], timeout=15)

    r = chain(pw)
    is_(r.returncode, 0, 'proxychains4 curl with user/pass exits 0', _err(r))
    ok(r.stdout == body, 'proxychains4 curl gets the body')
    ok(wait_log(log, r'info: pass .*method=pam\.username user=%s .*dest=127\.0\.0\.1\.%d'
                % (name, http.port)),
       'log: the request went through the proxy as %s' % name, read_log(log))
    wrong = new_password()
    r = chain(wrong)
    isnt(r.returncode, 0, 'proxychains4 with a wrong password: curl fails', _err(r))
    is_(len(http.requests), 1, 'the target saw only the good request')
    no_secret_in_logs([log, srv.stderr_path], [pw, wrong], 'proxychains4')


@test
def failed_login_delay_does_not_slow_others():
    name, pw, _ = system_user()
    svc = pam_service(UNIX_DELAY)           # pam_unix without nodelay: ~2 s per failure
    body = b'fast\n'
    http = HttpServer(body)
    srv, conf, log = pam_server(svc)
    bad = {}
    wrong = 'definitely-' + new_password()

    def bad_login():
        c = RawClient(srv.addr, timeout=10)
        c.greet((2,))
        bad['sent'] = time.monotonic()
        c.send(rfc1929(name, wrong))
        try:
            bad['reply'] = c.recv_exact(2, timeout=10)
        except (EOFError, OSError) as e:
            bad['reply'] = repr(e)
        bad['done'] = time.monotonic()
        c.close()

    th = threading.Thread(target=bad_login, daemon=True)
    th.start()
    wait_for(lambda: 'sent' in bad, 5)
    time.sleep(0.3)                          # the bad login is now inside PAM's delay
    t0 = time.monotonic()
    r = curl(srv.port, name, pw, 'http://127.0.0.1:%d/file' % http.port)
    t_good = time.monotonic() - t0
    good_done = time.monotonic()
    th.join(12)
    is_(r.returncode, 0, 'the good login succeeds while a bad one waits', _err(r))
    cmp_ok(t_good, '<', 1.0, 'the good login (curl, whole request) takes well under 1 s')
    is_(bad.get('reply'), b'\x01\x01', 'the bad login gets 01 01')
    ok('done' in bad and bad['done'] > good_done,
       'the bad login was still pending when the good one completed',
       repr(bad), 'good done at %.3f' % good_done)
    if 'done' in bad:
        cmp_ok(bad['done'] - bad['sent'], '>=', 1.0,
               'the bad login did wait for the PAM delay (so the test means something)')
    ok(wait_log(log, r'info: block .*pam_authenticate: Authentication failure'),
       'log: the bad login is logged', read_log(log))
    no_secret_in_logs([log, srv.stderr_path], [pw, wrong], 'PAM delay')


main(time_limit=80)
