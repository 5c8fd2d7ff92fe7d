#!/usr/bin/python3
"""BIND (SOCKS5 CMD 2 and SOCKS4 CD 2), with t/conf/bind.conf.in.

- the raw client checks both replies byte for byte, data both ways, each
  half-close, and that exactly one connection is accepted;
- Dante's socksify (proxyprotocol socks_v5 and socks_v4) around a small C
  program that calls listen() and accept() (compiled here: socksify does
  not catch accept4, which CPython's socket.accept() uses);
- refusals: a bindreply rule blocks the peer's address, a bindreply rule
  blocks by the client (to:), a peer other than the one the client named,
  no bind rule, a bind rule blocking the client, the requested port;
  refused peers get nothing and the client gets nothing of theirs;
- a name in the BIND request (08), timeout.io while waiting for the peer,
  the client going away while waiting, client data sent before the peer
  comes (kept for the peer, as CONNECT keeps early data), IPv6, external:
  and external.rotation: same-same;
- SOCKS4 BIND (5A twice; 5B when the peer is refused);
- sockd-check -C command=bind|bindreply (and version=4) gives the verdict
  and the rule the live session logged.
"""
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
from sockdtest import *  # noqa: F401,F403

CHECK = os.path.join(BUILD, 'sockd-check', 'sockd-check')
FAIL_REPLY = {code: bytes([5, code, 0, 1, 0, 0, 0, 0, 0, 0]) for code in range(1, 9)}


def bind_proxy(io=5, host='127.0.0.1', extra=''):
    d = tmpdir()
    conf, log = render_template('bind.conf.in', d, IO=io, EXTRA=extra)
    return Server(conf, host=host), conf, log


def rule_line(conf, tag):
    return line_of(conf, '[%s]' % tag)


def rule_re(conf, tag):
    return r'rule=\S*%s:%d\b' % (re.escape(os.path.basename(conf)), rule_line(conf, tag))


def addr_bytes(host):
    fam = socket.AF_INET6 if ':' in host else socket.AF_INET
    return socket.inet_pton(fam, host)


def ok_reply(host, port):
    """The exact SOCKS5 success reply naming host:port."""
    atyp = 4 if ':' in host else 1
    return bytes([5, 0, 0, atyp]) + addr_bytes(host) + struct.pack('>H', port)


def socks5_bind(srv, host='0.0.0.0', port=0, source=None):
    """Greeting + BIND; returns (client, method reply, first Reply)."""
    c = RawClient(srv.addr, source=source)
    m = c.greet()
    c.send(request(host, port, CMD_BIND))
    return c, m, c.read_reply()


def peer_connect(addr, source='127.0.0.1', timeout=5):
    fam = socket.AF_INET6 if ':' in addr[0] else socket.AF_INET
    p = socket.socket(fam, socket.SOCK_STREAM)
    defer(p.close)
    p.settimeout(timeout)
    p.bind((source, 0))
    p.connect(tuple(addr))
    return p


def recv_all(sock, n, timeout=5):
    sock.settimeout(timeout)
    buf = bytearray()
    while len(buf) < n:
        d = sock.recv(n - len(buf))
        if not d:
            break
        buf += d
    return bytes(buf)


def peer_drain(p, timeout=3):
    """(bytes the peer received until its connection ended, how it ended)."""
    p.settimeout(timeout)
    buf = bytearray()
    try:
        while True:
            d = p.recv(65536)
            if not d:
                return bytes(buf), 'eof'
            buf += d
    except socket.timeout:
        return bytes(buf), 'timeout'
    except ConnectionResetError:
        return bytes(buf), 'reset'


def connect_refused(addr, timeout=2):
    fam = socket.AF_INET6 if ':' in addr[0] else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(tuple(addr))
        return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
    finally:
        s.close()


def logged(log, client, timeout=5):
    """(pass|block, rule line or 'default') the session logged for client (host, port)."""
    pat = re.compile(r'\binfo: (pass|block) client=%s\.%d .*?rule=(?:\S+:(\d+)|(default))'
                     % (re.escape(client[0]), client[1]))
    line = wait_for(lambda: next((m for m in map(pat.search, log_lines(log)) if m), None),
                    timeout, 0.05)
    if not line:
        return None, None
    return line.group(1), line.group(2) or line.group(3)


def check(conf, **kv):
    """sockd-check -C: (pass|block, rule line or 'default')."""
    spec = ','.join('%s=%s' % (k, v) for k, v in kv.items())
    r = run([CHECK, '-f', conf, '-C', spec])
    first = r.stdout.decode(errors='replace').split('\n')[0]
    m = re.match(r'^(pass|block) (?:(?:client|socks)-rule #\d+ \S+:(\d+)|default)', first)
    if not m:
        return None, first + r.stderr.decode(errors='replace')
    return m.group(1), m.group(2) or 'default'


# ---------------------------------------------------------------------------
# SOCKS5 BIND with the raw client
# ---------------------------------------------------------------------------

@test
def raw_bind_relay_and_half_close():
    srv, conf, log = bind_proxy()
    c, m, r1 = socks5_bind(srv)
    is_(m, b'\x05\x00', 'method reply 05 00')
    ok(r1.port != 0, 'first reply names a port', repr(r1))
    is_(r1.raw, ok_reply('127.0.0.1', r1.port),
        'first reply: 05 00 00 01 127.0.0.1 PORT (the address the client connected to)', repr(r1))
    spid = srv.wait_session_pid()
    ok(spid and listening_inode(r1.port, spid), 'the session itself listens on the BND port')
    p = peer_connect((r1.addr, r1.port))
    pl = p.getsockname()
    r2 = c.read_reply()
    is_(r2.raw, ok_reply(pl[0], pl[1]), 'second reply: 05 00 00 01 with the peer\'s address and port',
        repr(r2))
    ok(connect_refused((r1.addr, r1.port)), 'exactly one connection: a second peer is refused')

    up, down = os.urandom(200000), os.urandom(150000)
    t = threading.Thread(target=c.send, args=(up,), daemon=True)
    t.start()
    got_up = recv_all(p, len(up))
    t.join(5)
    ok(got_up == up, 'client -> peer: %d bytes intact' % len(up), 'peer got %d bytes' % len(got_up))
    t = threading.Thread(target=p.sendall, args=(down,), daemon=True)
    t.start()
    got_down = c.recv_exact(len(down))
    t.join(5)
    ok(got_down == down, 'peer -> client: %d bytes intact' % len(down))

    # the peer half-closes: the client sees EOF and can still send
    p.shutdown(socket.SHUT_WR)
    data, how = c.recv_until_eof(5)
    is_((data, how), (b'', 'eof'), 'peer half-close: the client sees EOF')
    c.send(b'after the peer finished')
    is_(recv_all(p, 23), b'after the peer finished', 'the client still reaches the half-closed peer')
    c.shutdown_wr()
    rest, how = peer_drain(p)
    is_((rest, how), (b'', 'eof'), 'client half-close: the peer sees EOF')
    p.close()
    is_(srv.wait_exit_codes(1), [0], 'the session exits 0', srv.stderr())
    pas = wait_log(log, r'\bpass\b.*command=bind\b')
    like(pas[0] if pas else '', rule_re(conf, 'bind-v4'), 'log: pass command=bind names [bind-v4]',
         read_log(log))
    like(pas[0] if pas else '', r'bound=127\.0\.0\.1\.%d\b' % r1.port, 'log: bound= the BIND port')
    end = wait_log(log, r'\bend\b.*bytes_from_client=')
    like(end[0] if end else '', r'bytes_from_client=%d\b.*bytes_to_client=%d\b' % (len(up) + 23, len(down)),
         'log: end line counts both directions', read_log(log))


@test
def second_half_close_order():
    # the client half-closes first this time
    srv, conf, log = bind_proxy()
    c, m, r1 = socks5_bind(srv)
    p = peer_connect((r1.addr, r1.port))
    r2 = c.read_reply()
    is_(r2.rep, 0, 'second reply 00', repr(r2))
    c.send(b'question')
    c.shutdown_wr()
    is_(peer_drain(p), (b'question', 'eof'), 'the peer gets the data then EOF')
    p.sendall(b'answer after EOF')
    p.shutdown(socket.SHUT_WR)
    is_(c.recv_until_eof(5), (b'answer after EOF', 'eof'),
        'the peer answers after the client\'s EOF; the client gets it then EOF')
    is_(srv.wait_exit_codes(1), [0], 'the session exits 0', srv.stderr())


@test
def client_data_before_the_peer_arrives():
    # like CONNECT (data sent with the request is relayed), bytes the client
    # sends after the first reply wait in the socket for the peer; they are
    # not "the client closing"
    srv, conf, log = bind_proxy()
    c, m, r1 = socks5_bind(srv)
    is_(r1.rep, 0, 'first reply 00', repr(r1))
    c.send(b'EARLY')
    time.sleep(0.2)
    try:
        p = peer_connect((r1.addr, r1.port))
        r2 = c.read_reply()
    except (OSError, EOFError, ValueError) as e:
        p, r2 = None, e
    ok(isinstance(r2, Reply) and r2.rep == 0,
       'data from the client before the peer came does not end the BIND: second reply 00',
       repr(r2), read_log(log))
    if p is not None and isinstance(r2, Reply) and r2.rep == 0:
        is_(recv_all(p, 5, timeout=3), b'EARLY', 'the peer gets the early bytes')
    else:
        ok(False, 'the peer gets the early bytes')
    unlike(read_log(log), r'client closed while waiting', 'the log does not say the client closed')


@test
def expected_peer_named():
    srv, conf, log = bind_proxy()
    # the client names the peer's address (port 0: any port)
    c, m, r1 = socks5_bind(srv, '127.0.0.6', 0)
    is_(r1.raw, ok_reply('127.0.0.1', r1.port), 'BIND naming 127.0.0.6:0: first reply 00', repr(r1))
    p = peer_connect((r1.addr, r1.port), source='127.0.0.6')
    r2 = c.read_reply()
    is_(r2.raw, ok_reply('127.0.0.6', p.getsockname()[1]), 'the named peer 127.0.0.6 is accepted')
    p.sendall(b'hi')
    is_(c.recv_exact(2), b'hi', 'relayed')


@test
def other_peer_than_named_is_refused():
    srv, conf, log = bind_proxy()
    c, m, r1 = socks5_bind(srv, '127.0.0.1', 0)
    is_(r1.rep, 0, 'BIND naming 127.0.0.1: first reply 00', repr(r1))
    p = peer_connect((r1.addr, r1.port), source='127.0.0.6')
    p.sendall(b'peer data that must not reach the client')
    r2 = c.read_reply()
    is_(r2.raw, FAIL_REPLY[2], 'a peer from 127.0.0.6: second reply 05 02 (exact bytes)', repr(r2))
    try:
        c.send(b'client data that must not reach the peer')
    except OSError:
        pass
    is_(c.wait_closed(5)[:2], (b'', 'eof'), 'then the client connection closes, with no peer data')
    data, how = peer_drain(p)
    ok(data == b'' and how in ('eof', 'reset'), 'the refused peer receives nothing and is closed',
       '%r %s' % (data, how))
    lines = wait_log(log, r'\bblock\b.*not the peer the client named')
    ok(lines, 'log: block, not the peer the client named', read_log(log))
    like(lines[0] if lines else '', rule_re(conf, 'bind-v4'), 'the block line names the bind rule')
    is_(srv.wait_exit_codes(1), [1], 'the session exits 1', srv.stderr())


@test
def bindreply_blocked_peer_never_relayed():
    srv, conf, log = bind_proxy()
    c, m, r1 = socks5_bind(srv)
    is_(r1.rep, 0, 'first reply 00', repr(r1))
    p = peer_connect((r1.addr, r1.port), source='127.0.0.5')
    p.sendall(b'SECRET FROM THE BLOCKED PEER')
    r2 = c.read_reply()
    is_(r2.raw, FAIL_REPLY[2], 'peer 127.0.0.5 ([bindreply-block]): second reply 05 02', repr(r2))
    try:
        c.send(b'client data after the refusal')
    except OSError:
        pass
    data, how, _ = c.wait_closed(5)
    ok(data == b'' and how in ('eof', 'reset'), 'the client receives none of the peer\'s data, then EOF',
       '%r %s' % (data, how))
    data, how = peer_drain(p)
    ok(data == b'' and how in ('eof', 'reset'), 'the blocked peer receives nothing and is closed',
       '%r %s' % (data, how))
    lines = wait_log(log, r'\bblock\b.*bindreply from 127\.0\.0\.5')
    ok(lines, 'log: block, bindreply from 127.0.0.5', read_log(log))
    like(lines[0] if lines else '', rule_re(conf, 'bindreply-block'), 'it names [bindreply-block]')
    unlike(read_log(log), r'\bpass\b.*command=bind', 'no pass line: nothing was relayed')
    is_(srv.wait_exit_codes(1), [1], 'the session exits 1', srv.stderr())


@test
def bindreply_blocked_by_client_address():
    # [bindreply-to-block]: to: is our client (127.0.0.9), whoever connects
    srv, conf, log = bind_proxy()
    c, m, r1 = socks5_bind(srv, source='127.0.0.9')
    is_(r1.rep, 0, 'client 127.0.0.9 ([bind-v4-9]): first reply 00', repr(r1))
    p = peer_connect((r1.addr, r1.port), source='127.0.0.1')
    p.sendall(b'x')
    r2 = c.read_reply()
    is_(r2.raw, FAIL_REPLY[2], 'bindreply rule with to: 127.0.0.9: second reply 05 02', repr(r2))
    is_(peer_drain(p)[0], b'', 'the peer receives nothing')
    lines = wait_log(log, r'\bblock\b.*bindreply from')
    like(lines[0] if lines else '', rule_re(conf, 'bindreply-to-block'),
         'the block line names [bindreply-to-block]', read_log(log))


def bind_refused(srv, what, source=None, host='0.0.0.0', port=0, code=2):
    c = RawClient(srv.addr, source=source)
    is_(c.greet(), b'\x05\x00', '%s: method reply' % what)
    c.send(request(host, port, CMD_BIND))
    try:
        r = c.read_reply()
        is_(r.raw, FAIL_REPLY[code], '%s: reply 05 %02d (exact bytes)' % (what, code), repr(r))
    except (EOFError, OSError, ValueError) as e:
        ok(False, '%s: reply 05 %02d' % (what, code), 'no reply: %r' % (e,))
    data, how, _ = c.wait_closed(5)
    ok(data == b'' and how in ('eof', 'reset'), '%s: then closed' % what, '%r %s' % (data, how))
    return c


@test
def bind_not_allowed():
    srv, conf, log = bind_proxy()
    bind_refused(srv, 'client 127.0.0.4 (no bind rule)', source='127.0.0.4')
    lines = wait_log(log, r'\bblock\b.*client=127\.0\.0\.4\.')
    like(lines[0] if lines else '', r'rule=default\b', 'log: block rule=default', read_log(log))
    bind_refused(srv, 'client 127.0.0.3 ([bind-from-block])', source='127.0.0.3')
    lines = wait_log(log, r'\bblock\b.*client=127\.0\.0\.3\.')
    like(lines[0] if lines else '', rule_re(conf, 'bind-from-block'), 'log names [bind-from-block]')
    bind_refused(srv, 'BIND naming 127.0.0.1 port 1 ([bind-port-block])', host='127.0.0.1', port=1)
    lines = wait_log(log, r'\bblock\b.*client=127\.0\.0\.1\.')
    like(lines[0] if lines else '', rule_re(conf, 'bind-port-block'), 'log names [bind-port-block]')
    is_(srv.wait_exit_codes(3), [1, 1, 1], 'the sessions exit 1', srv.stderr())
    # deny by default: the rules of the other tests pass "command: connect" only
    d = tmpdir()
    conf2, log2 = make_conf(d)
    srv2 = Server(conf2)
    bind_refused(srv2, 'rules without command: bind')


@test
def bind_with_a_name():
    srv, conf, log = bind_proxy()
    bind_refused(srv, 'BIND naming the peer by name (ATYP 3)', host='localhost', port=0, code=8)


@test
def timeout_waiting_for_the_peer():
    srv, conf, log = bind_proxy(io=2)
    c, m, r1 = socks5_bind(srv)
    is_(r1.rep, 0, 'first reply 00', repr(r1))
    t0 = time.monotonic()
    try:
        r2 = c.read_reply(timeout=8)
    except (EOFError, OSError, ValueError) as e:
        r2 = e
    waited = time.monotonic() - t0
    ok(isinstance(r2, Reply) and r2.rep not in (0,), 'no peer: a failure reply', repr(r2))
    cmp_ok(waited, '>=', 1.5, 'not before timeout.io (2 s)')
    cmp_ok(waited, '<=', 5, 'not much after timeout.io (2 s)')
    data, how, _ = c.wait_closed(3)
    ok(data == b'' and how in ('eof', 'reset'), 'then closed', '%r %s' % (data, how))
    ok(connect_refused((r1.addr, r1.port)), 'the BIND port no longer listens')
    like(read_log(log), r'no connection before timeout\.io', 'log says why')


@test
def client_leaves_while_waiting():
    srv, conf, log = bind_proxy(io=0)
    c, m, r1 = socks5_bind(srv)
    is_(r1.rep, 0, 'first reply 00 (timeout.io 0: no limit on the wait)', repr(r1))
    c.close()
    gone = wait_for(lambda: connect_refused((r1.addr, r1.port), timeout=0.5), 1.5, 0.05)
    ok(gone, 'the BIND port is closed within a second of the client leaving')
    ok(srv.wait_no_sessions(3), 'the session ended')


@test
def bind_ipv6():
    srv, conf, log = bind_proxy(host='::1')
    c, m, r1 = socks5_bind(srv, '::', 0)
    is_(r1.raw, ok_reply('::1', r1.port), 'IPv6: first reply 05 00 00 04 ::1 PORT', repr(r1))
    p = peer_connect((r1.addr, r1.port), source='::1')
    r2 = c.read_reply()
    is_(r2.raw, ok_reply('::1', p.getsockname()[1]), 'second reply names the IPv6 peer', repr(r2))
    c.send(b'six')
    is_(recv_all(p, 3), b'six', 'relayed over IPv6')
    like(read_log(log), rule_re(conf, 'bind-v6'), 'log names [bind-v6]')


@test
def bind_on_the_external_address():
    srv, conf, log = bind_proxy(extra='external: 127.0.0.10')
    c, m, r1 = socks5_bind(srv)
    is_((r1.rep, r1.addr), (0, '127.0.0.10'), 'external: 127.0.0.10: BIND listens there', repr(r1))
    p = peer_connect((r1.addr, r1.port))
    is_(c.read_reply().rep, 0, 'the peer is accepted')
    srv2, conf2, log2 = bind_proxy(host='127.0.0.11',
                                   extra='external: 127.0.0.10\nexternal.rotation: same-same')
    c2, m2, r2 = socks5_bind(srv2)
    is_((r2.rep, r2.addr), (0, '127.0.0.11'),
        'external.rotation: same-same: BIND listens on the address the client reached', repr(r2))


# ---------------------------------------------------------------------------
# SOCKS4 BIND
# ---------------------------------------------------------------------------

def socks4_bind(srv, expected='127.0.0.1', port=0, userid=b'bind4'):
    """SOCKS4 BIND naming the expected peer; returns (client, the first 8-byte reply)."""
    c = RawClient(srv.addr)
    c.send(b'\x04\x02' + struct.pack('>H', port) + socket.inet_aton(expected) + userid + b'\0')
    return c, c.recv_exact(8)


def s4_reply(ok_, host='0.0.0.0', port=0):
    return b'\x00' + (b'\x5a' if ok_ else b'\x5b') + struct.pack('>H', port) + socket.inet_aton(host)


@test
def socks4_bind_relay():
    srv, conf, log = bind_proxy()
    c, r1 = socks4_bind(srv)
    port = struct.unpack('>H', r1[2:4])[0]
    is_(r1, s4_reply(True, '127.0.0.1', port), 'SOCKS4 BIND: first reply 00 5A PORT 127.0.0.1')
    p = peer_connect(('127.0.0.1', port))
    r2 = c.recv_exact(8)
    is_(r2, s4_reply(True, '127.0.0.1', p.getsockname()[1]), 'second reply 00 5A with the peer')
    c.send(b'four')
    is_(recv_all(p, 4), b'four', 'client -> peer')
    p.sendall(b'back')
    is_(c.recv_exact(4), b'back', 'peer -> client')
    p.close()
    is_(c.recv_until_eof(5), (b'', 'eof'), 'the peer\'s close reaches the client')
    pas = wait_log(log, r'\bpass\b.*version=4.*command=bind\b')
    like(pas[0] if pas else '', rule_re(conf, 'bind-v4'), 'log: pass version=4 command=bind [bind-v4]',
         read_log(log))


@test
def socks4_bind_blocked_peer():
    srv, conf, log = bind_proxy()
    c, r1 = socks4_bind(srv, expected='127.0.0.5')
    port = struct.unpack('>H', r1[2:4])[0]
    is_(r1[:2], b'\x00\x5a', 'SOCKS4 BIND naming 127.0.0.5: first reply 5A', r1.hex())
    p = peer_connect(('127.0.0.1', port), source='127.0.0.5')
    p.sendall(b'blocked')
    r2 = c.recv_exact(8)
    is_(r2, s4_reply(False), 'peer 127.0.0.5 blocked by [bindreply-block]: second reply 00 5B 0 0')
    is_(c.wait_closed(5)[:2], (b'', 'eof'), 'then closed, nothing relayed')
    is_(peer_drain(p)[0], b'', 'the peer receives nothing')


# ---------------------------------------------------------------------------
# Dante's socksify
# ---------------------------------------------------------------------------

ACCEPT_C = r'''
/* bind(0.0.0.0:0), listen(), print what getsockname() says, accept() ONE
 * connection with plain accept() (socksify does not catch accept4), print
 * the peer, echo until EOF, print the byte count. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	char buf[4096];
	ssize_t n;
	size_t total = 0;
	int s = socket(AF_INET, SOCK_STREAM, 0);

	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 1) < 0 ||
	    getsockname(s, (struct sockaddr *)&a, &len) < 0) {
		printf("ERROR listen %s\n", strerror(errno));
		return 2;
	}
	printf("LISTEN %s %u\n", inet_ntoa(a.sin_addr), ntohs(a.sin_port));
	fflush(stdout);
	len = sizeof(a);
	int c = accept(s, (struct sockaddr *)&a, &len);
	if (c < 0) {
		printf("ERROR accept %s\n", strerror(errno));
		return 3;
	}
	printf("PEER %s %u\n", inet_ntoa(a.sin_addr), ntohs(a.sin_port));
	fflush(stdout);
	while ((n = read(c, buf, sizeof(buf))) > 0) {
		total += (size_t)n;
		if (write(c, buf, (size_t)n) != n)
			return 4;
	}
	printf("READ %zu\n", total);
	close(c);
	return 0;
}
'''


def build_accept_program():
    cc = shutil.which('cc') or shutil.which('gcc')
    if not cc:
        return None, 'no C compiler'
    d = tmpdir()
    src = os.path.join(d, 'accept1.c')
    with open(src, 'w') as f:
        f.write(ACCEPT_C)
    exe = os.path.join(d, 'accept1')
    r = run([cc, '-O0', '-o', exe, src], timeout=30)
    if r.returncode != 0:
        return None, r.stderr.decode(errors='replace')
    return exe, None


def socksify_conf(d, port, proxyprotocol='socks_v5'):
    # one keyword per line: Dante's client parser is picky about that
    path = os.path.join(d, 'socks.conf')
    with open(path, 'w') as f:
        f.write('route {\n'
                '\tfrom: 0.0.0.0/0 to: 0.0.0.0/0 via: 127.0.0.1 port = %d\n'
                '\tprotocol: tcp\n'
                '\tproxyprotocol: %s\n'
                '\tmethod: none\n'
                '\tcommand: bind connect\n'
                '}\n' % (port, proxyprotocol))
    return path


def run_socksified(exe, srv, proxyprotocol, peer_source, payload):
    """Run exe under socksify; connect a peer to the address it printed.

    Returns (LISTEN (host, port) or None, peer's received bytes and end, program output, rc).
    """
    d = tmpdir()
    sc = socksify_conf(d, srv.port, proxyprotocol)
    env = clean_env({'SOCKS_CONF': sc, 'SOCKS_AUTOADD_LANROUTES': 'no'})
    proc = subprocess.Popen(['socksify', exe], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, start_new_session=True)
    defer(lambda: proc.poll() is None and os.killpg(proc.pid, 9))
    lines = []
    got = {}

    def reader():
        for line in proc.stdout:
            lines.append(line.decode(errors='replace').strip())
    t = threading.Thread(target=reader, daemon=True)
    t.start()
    listen = wait_for(lambda: next((l for l in lines if l.startswith(('LISTEN', 'ERROR'))), None), 10)
    addr = None
    if listen and listen.startswith('LISTEN'):
        _, host, port = listen.split()
        addr = (host, int(port))
        try:
            p = peer_connect(addr, source=peer_source)
            p.sendall(payload)
            p.shutdown(socket.SHUT_WR)
            got['peer'] = peer_drain(p, 5)
        except OSError as e:
            got['peer'] = (b'', repr(e))
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.wait(5)
    t.join(2)
    err = proc.stderr.read().decode(errors='replace')
    return addr, got.get('peer'), lines, proc.returncode, err


@test
def socksify_bind():
    if not shutil.which('socksify'):
        skip('socksify (dante-client) not installed', 16)
        return
    exe, why = build_accept_program()
    if not exe:
        skip('cannot compile the accept() program: %s' % why, 16)
        return
    for proto, version in (('socks_v5', 5), ('socks_v4', 4)):
        srv, conf, log = bind_proxy()
        payload = os.urandom(50000)
        addr, peer, out, rc, err = run_socksified(exe, srv, proto, '127.0.0.1', payload)
        ok(addr and addr[0] == '127.0.0.1' and addr[1] != 0,
           'socksify %s: getsockname() gives the proxy\'s BIND address' % proto, out, err)
        listening = wait_log(log, r'bind listening on 127\.0\.0\.1\.(\d+)')
        ok(addr and listening and listening[0].endswith('.%d' % addr[1]),
           '%s: it is the port the session listened on' % proto, read_log(log))
        is_(peer, (payload, 'eof'),
            '%s: the peer gets its %d bytes echoed back through the proxy' % (proto, len(payload)))
        ok(any(re.match(r'PEER 127\.0\.0\.1 \d+$', l) for l in out),
           '%s: accept() returned the peer\'s address (from the second reply)' % proto, out)
        ok('READ %d' % len(payload) in out, '%s: the program read every byte' % proto, out)
        is_(rc, 0, '%s: the socksified program exits 0' % proto, err)
        pas = wait_log(log, r'\bpass\b.*version=%d\b.*command=bind\b' % version)
        like(pas[0] if pas else '', rule_re(conf, 'bind-v4'),
             '%s: log: pass version=%d command=bind [bind-v4]' % (proto, version), read_log(log))
        is_(srv.wait_exit_codes(1), [0], '%s: the session exits 0' % proto, srv.stderr())


@test
def socksify_bind_blocked_peer():
    if not shutil.which('socksify'):
        skip('socksify (dante-client) not installed', 5)
        return
    exe, why = build_accept_program()
    if not exe:
        skip('cannot compile the accept() program: %s' % why, 5)
        return
    srv, conf, log = bind_proxy(io=3)
    addr, peer, out, rc, err = run_socksified(exe, srv, 'socks_v5', '127.0.0.5', b'blocked peer data')
    ok(addr, 'socksify: the program listened through the proxy', out, err)
    ok(peer and peer[0] == b'', 'the blocked peer (127.0.0.5) receives nothing', repr(peer))
    # Dante's accept() then returns a dead socket named 0.0.0.0:0 that reads EOF
    ok(not any(re.match(r'PEER 127\.0\.0\.5 ', l) for l in out),
       'accept() never names the blocked peer', out)
    ok(not any(re.match(r'READ [1-9]', l) for l in out),
       'the program reads none of the blocked peer\'s data', out)
    lines = wait_log(log, r'\bblock\b.*bindreply from 127\.0\.0\.5')
    like(lines[0] if lines else '', rule_re(conf, 'bindreply-block'),
         'log: block names [bindreply-block]', read_log(log))


# ---------------------------------------------------------------------------
# sockd-check agrees with the session
# ---------------------------------------------------------------------------

def live_bind(srv, log, source, expect=('0.0.0.0', 0), peer_source=None):
    """One BIND, optionally with a peer; returns (pass|block, logged rule line)."""
    c = RawClient(srv.addr, source=source)
    c.greet()
    c.send(request(expect[0], expect[1], CMD_BIND))
    client = c.local()
    try:
        r1 = c.read_reply()
    except (EOFError, OSError, ValueError):
        return 'block', logged(log, client)[1]
    if r1.rep != 0:
        return 'block', logged(log, client)[1]
    if peer_source is None:
        c.close()
        return 'pass', None
    p = peer_connect((r1.addr, r1.port), source=peer_source)
    try:
        r2 = c.read_reply()
    except (EOFError, OSError, ValueError):
        r2 = None
    verdict = 'pass' if r2 is not None and r2.rep == 0 else 'block'
    p.close()
    c.close()
    return verdict, logged(log, client)[1]


@test
def check_agrees():
    if not os.access(CHECK, os.X_OK):
        skip('sockd-check is not built', 1)
        return
    srv, conf, log = bind_proxy()
    L = lambda tag: str(rule_line(conf, tag))
    base = dict(laddr='127.0.0.1', lport=srv.port)
    # (what, sockd-check facts, live scenario, expected verdict, expected rule line)
    cases = [
        ('bind from 127.0.0.1', dict(base, **{'from': '127.0.0.1', 'to': '0.0.0.0', 'port': 0,
                                             'command': 'bind'}),
         dict(source='127.0.0.1', peer_source='127.0.0.1'), 'pass', L('bind-v4')),
        ('bind from 127.0.0.3', dict(base, **{'from': '127.0.0.3', 'to': '0.0.0.0', 'port': 0,
                                             'command': 'bind'}),
         dict(source='127.0.0.3'), 'block', L('bind-from-block')),
        ('bind from 127.0.0.4', dict(base, **{'from': '127.0.0.4', 'to': '0.0.0.0', 'port': 0,
                                             'command': 'bind'}),
         dict(source='127.0.0.4'), 'block', 'default'),
        ('bind to port 1', dict(base, **{'from': '127.0.0.1', 'to': '127.0.0.1', 'port': 1,
                                        'command': 'bind'}),
         dict(source='127.0.0.1', expect=('127.0.0.1', 1)), 'block', L('bind-port-block')),
        ('bindreply peer 127.0.0.5', dict(base, **{'from': '127.0.0.1', 'to': '127.0.0.5',
                                                  'port': 40000, 'command': 'bindreply'}),
         dict(source='127.0.0.1', peer_source='127.0.0.5'), 'block', L('bindreply-block')),
        ('bindreply client 127.0.0.9', dict(base, **{'from': '127.0.0.9', 'to': '127.0.0.1',
                                                    'port': 40000, 'command': 'bindreply'}),
         dict(source='127.0.0.9', peer_source='127.0.0.1'), 'block', L('bindreply-to-block')),
        ('bindreply peer 127.0.0.6', dict(base, **{'from': '127.0.0.1', 'to': '127.0.0.6',
                                                  'port': 40000, 'command': 'bindreply'}),
         dict(source='127.0.0.1', peer_source='127.0.0.6'), 'pass', L('bindreply-pass')),
    ]
    for what, facts, live, verdict, line in cases:
        want = check(conf, **facts)
        is_(want, (verdict, line), '%s: sockd-check says %s at line %s' % (what, verdict, line))
        got = live_bind(srv, log, **live)
        if facts['command'] == 'bindreply' and got[0] == 'pass':
            # the relay's pass line names the bind rule; the bindreply rule is not logged
            got = (got[0], want[1])
        is_(got, want, '%s: the live session did what sockd-check says' % what,
            read_log(log)[-1500:])

    # SOCKS4 BIND, and its bindreply
    for what, peer, kind, line in (('version=4 bind', '127.0.0.1', 'bind', L('bind-v4')),
                                   ('version=4 bindreply peer 127.0.0.5', '127.0.0.5', 'bindreply',
                                    L('bindreply-block'))):
        facts = dict(base, **{'from': '127.0.0.1', 'command': kind, 'version': 4})
        facts.update({'to': '127.0.0.1', 'port': 0} if kind == 'bind' else {'to': peer, 'port': 40000})
        want = check(conf, **facts)
        is_(want, ('pass' if kind == 'bind' else 'block', line), '%s: sockd-check' % what)
        c, r1 = socks4_bind(srv, expected='0.0.0.0')
        client = c.local()
        got_v = 'block'
        if r1[1] == 0x5a:
            p = peer_connect(('127.0.0.1', struct.unpack('>H', r1[2:4])[0]), source=peer)
            try:
                r2 = c.recv_exact(8)
            except (EOFError, OSError):
                r2 = b''
            p.close()
            got_v = 'pass' if r2[1:2] == b'\x5a' else 'block'
        c.close()
        got = logged(log, client)
        # the bind's pass line names the bind rule, a bindreply block the bindreply rule
        is_((got_v, got[1]), want, '%s: the live SOCKS4 session agrees' % what, read_log(log)[-1500:])


main(time_limit=60)
