#!/usr/bin/python3
"""timeout.tcp_fin_wait bounds the half-closed state: the client has shut
down writing, the target never closes, the session ends after the limit."""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
from sockdtest import *  # noqa: E402,F403


def h_hold(c, rec, target):
    """Read until EOF, then keep the connection open, silent."""
    c.settimeout(0.2)
    got = 0
    while not target.stopping.is_set():
        try:
            d = c.recv(65536)
        except OSError:
            continue
        if not d:
            break
        got += len(d)
    rec.recv = got
    target.stopping.wait(10)


@test
def half_closed_session_ends():
    d = tmpdir()
    conf, log = make_conf(d, extra='timeout.tcp_fin_wait: 1\n')
    t = Target(h_hold)
    with Server(conf) as s:
        c, m, r = socks_connect(s.addr, '127.0.0.1', t.port)
        is_(r.rep, 0, 'CONNECT succeeds')
        c.send(b'last words')
        c.shutdown_wr()
        t0 = time.monotonic()
        data, how = c.recv_until_eof(6)
        took = time.monotonic() - t0
        ok(how == 'eof' and 0.7 <= took <= 3, 'closed %.2f s after the half-close' % took)
        text = wait_for(lambda: 'tcp_fin_wait' in open(log).read() and open(log).read(), 5) or ''
        like(text, r'reason="timeout\.tcp_fin_wait expired"', 'the end line says why')
        is_(wait_for(lambda: t.records and getattr(t.records[0], 'recv', None), 3), 10,
            'the target got the last words')


@test
def without_fin_wait_it_stays():
    d = tmpdir()
    conf, log = make_conf(d)
    t = Target(h_hold)
    with Server(conf) as s:
        c, m, r = socks_connect(s.addr, '127.0.0.1', t.port)
        c.shutdown_wr()
        data, how = c.recv_until_eof(2)
        is_(how, 'timeout', 'with timeout.tcp_fin_wait 0 the half-closed session lives on')


main()
