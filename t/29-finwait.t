#!/usr/bin/python3
"""timeout.tcp_fin_wait bounds the half-closed state: the client has shut
down writing, the target never closes, the session ends after the limit."""
import fcntl
import os
import socket
import struct
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



def h_never_read(c, rec, target):
    """Accept and hold the connection without reading a byte."""
    target.stopping.wait(20)


def recv_queue_of(local, peer):
    """Bytes waiting unread in the receive queue of the TCP socket LOCAL
    (host, port) connected to PEER, from /proc/net/tcp (IPv4 loopback)."""
    def hexaddr(a):
        return '%s:%04X' % (struct.pack('<I', struct.unpack('!I', socket.inet_aton(a[0]))[0])
                            .hex().upper(), a[1])
    want = (hexaddr(local), hexaddr(peer))
    for line in open('/proc/net/tcp').read().split('\n')[1:]:
        f = line.split()
        if len(f) > 4 and (f[1], f[2]) == want:
            return int(f[4].split(':')[1], 16)
    return None


@test
def fin_wait_counts_while_the_pipe_is_stuck():
    # The target never reads.  The client writes until the session's pipe
    # is full and the session stops reading (bytes pile up unread in its
    # receive queue), then closes with nothing unsent: its FIN reaches the
    # session behind bytes the session cannot take.  That is the half-
    # closed state as well: timeout.tcp_fin_wait must end it.
    d = tmpdir()
    conf, log = make_conf(d, extra='timeout.tcp_fin_wait: 1\n')
    t = Target(h_never_read)
    with Server(conf) as s:
        c, m, r = socks_connect(s.addr, '127.0.0.1', t.port)
        is_(r.rep, 0, 'CONNECT succeeds')
        sock = c.sock
        sock.setblocking(False)
        local, peer = sock.getpeername(), sock.getsockname()
        chunk, written, piled, outq = b'x' * 16384, 0, 0, 0
        t0 = time.monotonic()
        while time.monotonic() - t0 < 20 and written < (256 << 20):
            try:
                written += sock.send(chunk)
            except BlockingIOError:
                pass
            for _ in range(50):   # each piece through to the session first
                outq = struct.unpack('i', fcntl.ioctl(sock, 0x5411, b'\0' * 4))[0]  # SIOCOUTQ
                if not outq:
                    break
                time.sleep(0.01)
            piled = recv_queue_of(local, peer) or 0
            if outq or piled >= 65536:
                break
        ok(piled >= 65536 and outq == 0,
           'the session stopped reading: %d bytes unread in its queue, none unsent here '
           '(%d written)' % (piled, written), 'outq=%d' % outq)
        sock.setblocking(True)
        sock.shutdown(socket.SHUT_WR)
        t1 = time.monotonic()
        codes = s.wait_exit_codes(1, timeout=6)
        took = time.monotonic() - t1
        ok(codes and took <= 4, 'the session ended %.1f s after the client\'s FIN' % took,
           s.stderr()[-1500:])
        text = wait_for(lambda: 'tcp_fin_wait' in open(log).read() and open(log).read(), 3) or ''
        like(text, r'reason="timeout\.tcp_fin_wait expired"', 'the end line says why')


main()
