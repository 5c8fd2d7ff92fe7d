#!/usr/bin/python3
"""Deadlines: timeout.negotiate (one total deadline), timeout.io (idle relay), timeout.connect.

- partial greeting / nothing at all: closed after timeout.negotiate, not before;
- a request trickled one byte at a time: still closed at the one total
  deadline (a per-read timeout would never fire);
- the negotiation deadline no longer applies once relaying;
- timeout.io: an idle relay is closed (both sides see EOF), traffic keeps it open;
- timeout.connect: a target that never answers the SYN gives reply 06.
"""
import os
import select
import sys
import time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
from sockdtest import *  # noqa: F401,F403

NEG = 2       # timeout.negotiate used here
SLACK = 2.0   # allowed lateness
EARLY = 0.5   # allowed earliness


def proxy(**kw):
    d = tmpdir()
    conf, log = make_conf(d, **kw)
    return Server(conf), log


def check_window(elapsed, timeout, what):
    ok(timeout - EARLY <= elapsed <= timeout + SLACK,
       '%s: closed after %.2f s (window %.1f..%.1f)' % (what, elapsed, timeout - EARLY, timeout + SLACK))


@test
def negotiation_partial_greeting():
    srv, log = proxy(negotiate=NEG)
    c = RawClient(srv.addr, timeout=NEG + SLACK + 3)
    t0 = time.monotonic()
    c.send(b'\x05')            # version, no method count
    data, how = c.recv_until_eof(timeout=NEG + SLACK + 3)
    elapsed = time.monotonic() - t0
    ok(data == b'' and how in ('eof', 'reset'), 'partial greeting: closed with no byte sent',
       '%r %s' % (data, how))
    check_window(elapsed, NEG, 'partial greeting')
    ok(wait_log(log, r'\bblock\b.*client=127\.0\.0\.1\.'), 'log: a block line for the client',
       read_log(log))
    is_(srv.wait_exit_codes(1), [1], 'session exits 1', srv.stderr())


@test
def negotiation_silent_client():
    srv, log = proxy(negotiate=NEG)
    c = RawClient(srv.addr)
    t0 = time.monotonic()
    data, how = c.recv_until_eof(timeout=NEG + SLACK + 3)
    elapsed = time.monotonic() - t0
    ok(data == b'' and how in ('eof', 'reset'), 'silent client: closed with no byte sent',
       '%r %s' % (data, how))
    check_window(elapsed, NEG, 'silent client')


@test
def negotiation_one_total_deadline():
    srv, log = proxy(negotiate=NEG)
    c = RawClient(srv.addr)
    t0 = time.monotonic()
    is_(c.greet(), b'\x05\x00', 'greeting answered')
    # a name request of 262 bytes, one byte every 0.3 s: never complete in time
    req = req_domain('a' * 255, 80)
    closed_at, how = None, None
    for i in range(len(req)):
        if time.monotonic() - t0 > NEG + SLACK + 3:
            break
        r, _, _ = select.select([c.sock], [], [], 0.3)
        if r:
            try:
                d = c.sock.recv(100)
            except ConnectionResetError:
                d, how = b'', 'reset'
            if not d:
                closed_at, how = time.monotonic() - t0, how or 'eof'
                break
            ok(False, 'no reply to an incomplete request', repr(d))
            break
        try:
            c.sock.send(req[i:i + 1])
        except OSError:
            closed_at, how = time.monotonic() - t0, 'send failed'
            break
    ok(closed_at is not None, 'a request trickled byte by byte is cut off (%s)' % how,
       'still open after %.1f s' % (time.monotonic() - t0))
    if closed_at is not None:
        check_window(closed_at, NEG, 'trickled request (deadline counted from the connection)')


@test
def negotiation_deadline_ends_when_relaying():
    echo = Target(h_echo)
    srv, log = proxy(negotiate=1, io=0)
    c, m, rep = socks_connect(srv.addr, '127.0.0.1', echo.port)
    is_(rep.rep, 0, 'CONNECT succeeds')
    time.sleep(2.5)
    try:
        c.send(b'still here')
        got = c.recv_exact(10, timeout=3)
    except (OSError, EOFError) as e:
        got = repr(e)
    is_(got, b'still here', 'relay idle for 2.5 s with timeout.negotiate: 1 and timeout.io: 0 is still open')


@test
def idle_timeout():
    target = Target(h_silent)
    srv, log = proxy(io=1)
    c, m, rep = socks_connect(srv.addr, '127.0.0.1', target.port)
    is_(rep.rep, 0, 'CONNECT succeeds')
    t0 = time.monotonic()
    data, how = c.recv_until_eof(timeout=6)
    elapsed = time.monotonic() - t0
    ok(data == b'' and how == 'eof', 'idle relay: the client gets EOF', '%r %s' % (data, how))
    check_window(elapsed, 1, 'idle relay with timeout.io: 1')
    ok(wait_for(lambda: target.records and target.records[0].eof, 3),
       'the target side is closed too', repr(target.records))
    ok(wait_log(log, r'\bend\b.*client=127\.0\.0\.1\.'), 'log: an end line', read_log(log))


@test
def traffic_keeps_relay_open():
    echo = Target(h_echo)
    srv, log = proxy(io=1)
    c, m, rep = socks_connect(srv.addr, '127.0.0.1', echo.port)
    is_(rep.rep, 0, 'CONNECT succeeds')
    t0 = time.monotonic()
    good = True
    while time.monotonic() - t0 < 2.5:
        try:
            c.send(b'k')
            if c.recv_exact(1, timeout=2) != b'k':
                good = False
        except (OSError, EOFError) as e:
            good = False
            diag('closed after %.2f s: %r' % (time.monotonic() - t0, e))
            break
        time.sleep(0.3)
    ok(good, 'a byte every 0.3 s keeps a timeout.io: 1 relay open for 2.5 s')
    t1 = time.monotonic()
    data, how = c.recv_until_eof(timeout=6)
    ok(how == 'eof', 'then idle: closed', how)
    check_window(time.monotonic() - t1, 1, 'idle after traffic')


@test
def connect_timeout():
    hole = Blackhole()
    srv, log = proxy(connect=1)
    c = RawClient(srv.addr, timeout=8)
    is_(c.greet(), b'\x05\x00', 'method reply')
    t0 = time.monotonic()
    c.send(req_ipv4('127.0.0.1', hole.port))
    try:
        rep = c.read_reply(timeout=7)
        elapsed = time.monotonic() - t0
        is_(rep.rep, 6, 'target that never answers: reply 06 (TTL expired / timeout)', repr(rep))
        check_window(elapsed, 1, 'connect with timeout.connect: 1')
    except (EOFError, OSError, ValueError) as e:
        ok(False, 'target that never answers: reply 06', repr(e))
    data, how, _ = c.wait_closed(3)
    is_((data, how), (b'', 'eof'), 'then closed')


main(time_limit=80)
