#!/usr/bin/python3
"""SOCKS4 and SOCKS4a CONNECT, with t/conf/socks4.conf.in.

- real clients: curl socks4:// and socks4a://, socat SOCKS4: and SOCKS4A:,
  ncat --proxy-type socks4;
- the raw client: the exact 8-byte replies (5A with the bound address,
  5B with zeros), the request and data in one write, the user-id bounded
  (255 bytes pass, 256 without a NUL are refused, a user-id or a SOCKS4a
  host name that never ends is refused or cut off by timeout.negotiate),
  SOCKS4a's 0.0.0.x + name resolved by the server, DSTIP 0.0.0.0 (not 4a:
  a literal address, never connected to), unknown commands (5B);
- SOCKS4 has method none: a client rule that lists only username refuses
  it, and a proxyprotocol: socks_v5 rule does not apply to it;
- sockd-check -C version=4 (and 5) gives the verdict and the rule the live
  session logged.
"""
import os
import re
import shutil
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
from sockdtest import *  # noqa: F401,F403

CHECK = os.path.join(BUILD, 'sockd-check', 'sockd-check')
REJECT = b'\x00\x5b' + bytes(6)


def s4_proxy(v5_port=1, blocked_port=1, negotiate=5):
    d = tmpdir()
    conf, log = render_template('socks4.conf.in', d, V5_PORT=v5_port, BLOCKED_PORT=blocked_port,
                                NEGOTIATE=negotiate)
    return Server(conf), conf, log


def rule_line(conf, tag):
    return line_of(conf, '[%s]' % tag)


def rule_re(conf, tag):
    return r'rule=\S*%s:%d\b' % (re.escape(os.path.basename(conf)), rule_line(conf, tag))


def s4_request(host, port, cmd=1, userid=b'tester', name=None):
    """SOCKS4 (host an IPv4 literal) or, with name, SOCKS4a (host 0.0.0.x)."""
    req = b'\x04' + bytes([cmd]) + struct.pack('>H', port) + socket.inet_aton(host) + userid + b'\0'
    if name is not None:
        req += (name.encode() if isinstance(name, str) else name) + b'\0'
    return req


def s4_reply(host, port):
    return b'\x00\x5a' + struct.pack('>H', port) + socket.inet_aton(host)


def s4(srv, req, source=None):
    """Send a SOCKS4 request; returns (client, the 8-byte reply or the exception)."""
    c = RawClient(srv.addr, source=source)
    c.send(req)
    try:
        return c, c.recv_exact(8)
    except (EOFError, OSError) as e:
        return c, e


def refused(c, rep, what, target=None, closed=('eof', 'reset')):
    is_(rep, REJECT, '%s: reply 00 5B 00 00 00 00 00 00' % what)
    data, how, _ = c.wait_closed(3)
    ok(data == b'' and how in closed, '%s: then closed' % what, '%r %s' % (data, how))
    if target is not None:
        ok(not target.wait_conns(1, timeout=0.3), '%s: the target saw no connection' % what,
           repr(target.records))


def block_line(log, client, timeout=5):
    pat = r'\bblock\b.*client=%s\.%d ' % (re.escape(client[0]), client[1])
    lines = wait_log(log, pat, timeout)
    return lines[0] if lines else ''


# ---------------------------------------------------------------------------
# real clients
# ---------------------------------------------------------------------------

@test
def curl_socks4_and_4a():
    body = os.urandom(60000)
    http = HttpServer(body)
    srv, conf, log = s4_proxy()
    r = run(['curl', '-sS', '--max-time', '10', '-o', '-', '-x', 'socks4://127.0.0.1:%d' % srv.port,
             'http://127.0.0.1:%d/file' % http.port])
    is_(r.returncode, 0, 'curl socks4:// exits 0', r.stderr.decode(errors='replace'))
    ok(r.stdout == body, 'curl socks4:// gets the body', 'got %d bytes' % len(r.stdout))
    pas = wait_log(log, r'\bpass\b.*version=4\b.*dest=127\.0\.0\.1\.%d\b' % http.port)
    like(pas[0] if pas else '', rule_re(conf, 'socks-connect'),
         'log: pass version=4 names [socks-connect]', read_log(log))
    r = run(['curl', '-sS', '--max-time', '10', '-o', '-', '-x', 'socks4a://127.0.0.1:%d' % srv.port,
             'http://localhost:%d/file' % http.port])
    is_(r.returncode, 0, 'curl socks4a:// (name resolved by the proxy) exits 0',
        r.stderr.decode(errors='replace'))
    ok(r.stdout == body, 'curl socks4a:// gets the body')
    ok(wait_log(log, r'\bpass\b.*version=4\b.*name=localhost\b'), 'log: pass version=4 with name=localhost',
       read_log(log))


@test
def socat_socks4_and_4a():
    if not shutil.which('socat'):
        skip('socat not installed', 4)
        return
    echo = Target(h_echo)
    srv, conf, log = s4_proxy()
    data = b'socat through SOCKS4\n' * 200
    for kind, host in (('SOCKS4', '127.0.0.1'), ('SOCKS4A', 'localhost')):
        r = run(['socat', '-T', '5', '-', '%s:127.0.0.1:%s:%d,socksport=%d'
                 % (kind, host, echo.port, srv.port)], input=data)
        is_(r.returncode, 0, 'socat %s: exits 0' % kind, r.stderr.decode(errors='replace'))
        ok(r.stdout == data, 'socat %s: the data comes back from the echo target' % kind,
           'got %d bytes of %d' % (len(r.stdout), len(data)))
    ok(wait_log(log, r'\bpass\b.*version=4\b.*name=localhost\b'), 'log: socat SOCKS4A sent the name',
       read_log(log))


@test
def ncat_socks4():
    echo = Target(h_echo)
    srv, conf, log = s4_proxy()
    data = b'ncat socks4 line\n' * 100
    r = run(['ncat', '--proxy', '127.0.0.1:%d' % srv.port, '--proxy-type', 'socks4',
             '-w', '5', '127.0.0.1', str(echo.port)], input=data)
    is_(r.returncode, 0, 'ncat --proxy-type socks4 exits 0', r.stderr.decode(errors='replace'))
    ok(r.stdout == data, 'ncat gets its data echoed back', 'got %d bytes' % len(r.stdout))
    ok(wait_log(log, r'\bpass\b.*version=4\b'), 'log: pass version=4', read_log(log))


# ---------------------------------------------------------------------------
# the raw client
# ---------------------------------------------------------------------------

@test
def raw_reply_and_data_in_one_write():
    echo = Target(h_echo)
    srv, conf, log = s4_proxy()
    payload = b'EARLY-' + os.urandom(2000)
    c, rep = s4(srv, s4_request('127.0.0.1', echo.port, userid=b'alice') + payload)
    ok(echo.wait_conns(1), 'the target saw the connection')
    peer = echo.records[0].peer if echo.records else ('0.0.0.0', 0)
    is_(rep, s4_reply(peer[0], peer[1]), 'reply 00 5A with the outgoing socket\'s address (exact)')
    is_(c.recv_exact(len(payload)), payload, 'the data sent with the request is relayed, once')
    c.shutdown_wr()
    is_(c.recv_until_eof(5), (b'', 'eof'), 'then EOF')
    lines = wait_log(log, r'\bpass\b.*version=4\b')
    like(lines[0] if lines else '', r'socks4_userid="alice"', 'log: the user-id is logged (not trusted)')
    like(lines[0] if lines else '', r'method=none\b', 'log: method=none')


@test
def userid_bounds():
    echo = Target(h_echo)
    srv, conf, log = s4_proxy(negotiate=2)
    c, rep = s4(srv, s4_request('127.0.0.1', echo.port, userid=b'u' * 255))
    is_(rep[:2] if isinstance(rep, bytes) else rep, b'\x00\x5a', 'a user-id of 255 bytes + NUL: 5A')
    c.close()
    # 300 bytes and no NUL, the connection kept open: refused at once
    t0 = time.monotonic()
    c, rep = s4(srv, s4_request('127.0.0.1', echo.port, userid=b'')[:-1] + b'v' * 300)
    ok(rep == REJECT or isinstance(rep, (EOFError, ConnectionResetError)),
       'a 300-byte user-id without NUL: 5B or closed', repr(rep))
    cmp_ok(time.monotonic() - t0, '<', 1.5, 'without waiting for timeout.negotiate')
    data, how, _ = c.wait_closed(3)
    ok(data == b'' and how in ('eof', 'reset'), 'and closed', '%r %s' % (data, how))
    # 100 bytes and no NUL: the server waits for more, until timeout.negotiate
    t0 = time.monotonic()
    c, rep = s4(srv, s4_request('127.0.0.1', echo.port, userid=b'')[:-1] + b'w' * 100)
    ok(rep == REJECT or isinstance(rep, (EOFError, ConnectionResetError)),
       'a 100-byte user-id that never ends: 5B or closed', repr(rep))
    cmp_ok(time.monotonic() - t0, '<', 4, 'within timeout.negotiate (2 s) and a margin')
    ok(not echo.wait_conns(2, timeout=0.3), 'no connection to the target for the bad user-ids',
       repr(echo.records))
    # the user-id ended by closing the connection
    c = RawClient(srv.addr)
    c.send(s4_request('127.0.0.1', echo.port, userid=b'')[:-1] + b'x' * 50)
    c.shutdown_wr()
    data, how, waited = c.wait_closed(4)
    ok(data in (b'', REJECT) and how in ('eof', 'reset'),
       'a user-id cut off by the client\'s EOF: closed (no 5A)', '%r %s' % (data, how))
    ok(not echo.wait_conns(2, timeout=0.2), 'no connection to the target')


@test
def socks4a_names():
    echo = Target(h_echo)
    srv, conf, log = s4_proxy()
    c, rep = s4(srv, s4_request('0.0.0.1', echo.port, name='localhost'))
    is_(rep[:2] if isinstance(rep, bytes) else rep, b'\x00\x5a', 'SOCKS4a 0.0.0.1 + localhost: 5A')
    c.send(b'4a')
    is_(c.recv_exact(2), b'4a', 'relayed to the name\'s address')
    ok(wait_log(log, r'\bpass\b.*dest=127\.0\.0\.1\.%d\b.*name=localhost\b' % echo.port),
       'log: dest=127.0.0.1 name=localhost (resolved by the server)', read_log(log))
    c, rep = s4(srv, s4_request('0.0.0.255', echo.port, name='localhost'))
    is_(rep[:2] if isinstance(rep, bytes) else rep, b'\x00\x5a', 'SOCKS4a with 0.0.0.255: 5A')
    c, rep = s4(srv, s4_request('0.0.0.1', echo.port, name='no-such-host.invalid'))
    refused(c, rep, 'SOCKS4a with an unresolvable name')
    # a host name that never ends: 300 bytes without NUL
    c, rep = s4(srv, s4_request('0.0.0.1', echo.port) + b'h' * 300)
    ok(rep == REJECT or isinstance(rep, (EOFError, ConnectionResetError)),
       'SOCKS4a host name of 300 bytes without NUL: 5B or closed', repr(rep))
    is_(len(echo.records), 2, 'only the two good requests reached the target')
    lines = log_lines(log, r'\bpass\b.*dest=0\.0\.0\.')
    is_(lines, [], 'never a connection to 0.0.0.x')


@test
def dstip_zero_is_not_socks4a():
    # 0.0.0.0 is a literal address (4a is 0.0.0.x with x != 0), and no
    # destination: Linux would "connect" to it on this host, past a rule
    # that blocks the port on 127.0.0.1 ([socks-port]) since [socks-connect]
    # passes 0/0
    blocked = Target(h_echo)
    srv, conf, log = s4_proxy(blocked_port=blocked.port)
    c, rep = s4(srv, s4_request('127.0.0.1', blocked.port))
    refused(c, rep, 'SOCKS4 to 127.0.0.1:<blocked port>', target=blocked)
    c, rep = s4(srv, s4_request('0.0.0.0', blocked.port))
    refused(c, rep, 'SOCKS4 to 0.0.0.0:<blocked port>', target=blocked)
    c, rep = s4(srv, s4_request('0.0.0.0', blocked.port, name='localhost'))
    refused(c, rep, 'SOCKS4 to 0.0.0.0 followed by a host name (still not 4a)', target=blocked)
    unlike(read_log(log), r'\bpass\b.*dest=0\.0\.0\.0\.', 'log: no pass line for 0.0.0.0')


@test
def unknown_commands():
    echo = Target(h_echo)
    srv, conf, log = s4_proxy()
    for cmd in (3, 0, 9, 0xff):
        c, rep = s4(srv, s4_request('127.0.0.1', echo.port, cmd=cmd))
        refused(c, rep, 'SOCKS4 command %d' % cmd)
    ok(not echo.wait_conns(1, timeout=0.3), 'the target saw no connection')
    like(read_log(log), r'\bblock\b.*command 0x03 is not supported', 'log: command 0x03 is not supported')


@test
def client_rule_demanding_username():
    echo = Target(h_echo)
    srv, conf, log = s4_proxy()
    c, rep = s4(srv, s4_request('127.0.0.1', echo.port), source='127.0.0.2')
    client = c.local()
    refused(c, rep, 'SOCKS4 from 127.0.0.2 (client rule: socksmethod username)', target=echo)
    like(block_line(log, client), rule_re(conf, 'client-username'), 'log: block names [client-username]',
         read_log(log))
    c = RawClient(srv.addr, source='127.0.0.2')
    is_(c.greet((0, 2)), b'\x05\x02', 'SOCKS5 from 127.0.0.2 offering none and username: username chosen')
    c = RawClient(srv.addr, source='127.0.0.2')
    is_(c.greet((0,)), b'\x05\xff', 'SOCKS5 from 127.0.0.2 offering only none: 05 FF')
    c, rep = s4(srv, s4_request('0.0.0.1', echo.port, name='localhost'), source='127.0.0.2')
    refused(c, rep, 'SOCKS4a from 127.0.0.2', target=echo)


@test
def proxyprotocol_socks_v5_rule():
    v5 = Target(h_echo)
    blocked = Target(h_echo)
    srv, conf, log = s4_proxy(v5_port=v5.port, blocked_port=blocked.port)
    c, rep = s4(srv, s4_request('127.0.0.1', v5.port))
    client = c.local()
    refused(c, rep, 'SOCKS4 to the port of a proxyprotocol: socks_v5 rule', target=v5)
    like(block_line(log, client), rule_re(conf, 'v5-only-else'),
         'log: [v5-only] skipped for SOCKS4, [v5-only-else] blocks', read_log(log))
    c, rep = s4(srv, s4_request('0.0.0.1', v5.port, name='localhost'))
    refused(c, rep, 'SOCKS4a to the same port', target=v5)
    c, m, r = socks_connect(srv.addr, '127.0.0.1', v5.port)
    is_(r.rep, 0, 'SOCKS5 to the same port: succeeds ([v5-only])', repr(r))
    ok(wait_log(log, r'\bpass\b.*version=5\b.*' + rule_re(conf, 'v5-only')), 'log names [v5-only]',
       read_log(log))
    c, rep = s4(srv, s4_request('127.0.0.1', blocked.port))
    client = c.local()
    refused(c, rep, 'SOCKS4 to a blocked port', target=blocked)
    like(block_line(log, client), rule_re(conf, 'socks-port'), 'log names [socks-port]')


# ---------------------------------------------------------------------------
# sockd-check agrees
# ---------------------------------------------------------------------------

def check(conf, **kv):
    spec = ','.join('%s=%s' % (k, v) for k, v in kv.items())
    r = run([CHECK, '-f', conf, '-C', spec])
    first = r.stdout.decode(errors='replace').split('\n')[0]
    m = re.match(r'^(pass|block) (?:(?:client|socks)-rule #\d+ \S+:(\d+)|default)', first)
    if not m:
        return None, first + r.stderr.decode(errors='replace')
    return m.group(1), m.group(2) or 'default'


def logged(log, client, timeout=5):
    pat = re.compile(r'\binfo: (pass|block) client=%s\.%d .*?rule=(?:\S+:(\d+)|(default))'
                     % (re.escape(client[0]), client[1]))
    m = wait_for(lambda: next((m for m in map(pat.search, log_lines(log)) if m), None), timeout, 0.05)
    return (m.group(1), m.group(2) or m.group(3)) if m else (None, None)


@test
def check_agrees():
    v5 = Target(h_echo)
    blocked = Target(h_echo)
    echo = Target(h_echo)
    srv, conf, log = s4_proxy(v5_port=v5.port, blocked_port=blocked.port)
    L = lambda tag: str(rule_line(conf, tag))
    base = {'laddr': '127.0.0.1', 'lport': srv.port}
    cases = [
        # what, facts, source, request, expected
        ('v4 to the socks_v5-only port', {'from': '127.0.0.1', 'to': '127.0.0.1', 'port': v5.port,
                                          'version': 4},
         '127.0.0.1', s4_request('127.0.0.1', v5.port), ('block', L('v5-only-else'))),
        ('v5 to the socks_v5-only port', {'from': '127.0.0.1', 'to': '127.0.0.1', 'port': v5.port,
                                          'version': 5},
         '127.0.0.1', None, ('pass', L('v5-only'))),
        ('v4 to an open port', {'from': '127.0.0.1', 'to': '127.0.0.1', 'port': echo.port,
                                'version': 4},
         '127.0.0.1', s4_request('127.0.0.1', echo.port), ('pass', L('socks-connect'))),
        ('v4a by name', {'from': '127.0.0.1', 'to': 'localhost', 'addrs': '127.0.0.1',
                         'port': echo.port, 'version': 4},
         '127.0.0.1', s4_request('0.0.0.1', echo.port, name='localhost'), ('pass', L('socks-connect'))),
        ('v4 to the blocked port', {'from': '127.0.0.1', 'to': '127.0.0.1', 'port': blocked.port,
                                    'version': 4},
         '127.0.0.1', s4_request('127.0.0.1', blocked.port), ('block', L('socks-port'))),
        ('v4 from 127.0.0.2', {'from': '127.0.0.2', 'to': '127.0.0.1', 'port': echo.port,
                               'version': 4},
         '127.0.0.2', s4_request('127.0.0.1', echo.port), ('block', L('client-username'))),
    ]
    for what, facts, source, req, want in cases:
        got_check = check(conf, **dict(base, **facts))
        is_(got_check, want, '%s: sockd-check' % what)
        if req is None:
            c, m, r = socks_connect(srv.addr, facts['to'], facts['port'], source=source)
            verdict = 'pass' if r.rep == 0 else 'block'
        else:
            c, rep = s4(srv, req, source=source)
            verdict = 'pass' if isinstance(rep, bytes) and rep[1] == 0x5a else 'block'
        client = c.local()
        c.close()
        is_(logged(log, client), got_check, '%s: the live session did the same (%s)' % (what, verdict),
            read_log(log)[-1500:])
        is_(verdict, got_check[0], '%s: the client saw %s' % (what, verdict))


main(time_limit=60)
