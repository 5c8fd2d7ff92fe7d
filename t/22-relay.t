#!/usr/bin/python3
"""The relay: volume, checksums, half-close, draining, small segments.

- 64 MiB each way at the same time, sha256 on both ends, and the byte
  counts on the log's end line;
- half-close: the client's shutdown(SHUT_WR) reaches the target as EOF
  while target->client keeps flowing, and the other way round;
- every byte is delivered before the close (sender closes right after a
  large write, in both directions);
- thousands of tiny segments while the reader is slow (the pipe holds many
  small buffers: the relay must keep moving data out).
"""
import hashlib
import os
import re
import socket
import sys
import threading
import time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
from sockdtest import *  # noqa: F401,F403

MiB = 1 << 20


def proxy(**kw):
    d = tmpdir()
    conf, log = make_conf(d, **kw)
    return Server(conf), log


def end_counts(log, timeout=10):
    lines = wait_log(log, r'\bend\b.*bytes_from_client=\d+', timeout)
    if not lines:
        return None
    m1 = re.search(r'bytes_from_client=(\d+)', lines[-1])
    m2 = re.search(r'bytes_to_client=(\d+)', lines[-1])
    return (int(m1.group(1)), int(m2.group(1)) if m2 else None)


@test
def sixty_four_mib_each_way():
    n = 64 * MiB
    up = pattern_bytes(n)      # client -> target
    down = pattern_bytes(n)    # target -> client
    target = Target(h_duplex(down))
    srv, log = proxy()
    c, m, rep = socks_connect(srv.addr, '127.0.0.1', target.port, timeout=30)
    is_(rep.rep, 0, 'CONNECT succeeds')
    send_err = []

    def sender():
        try:
            view = memoryview(up)
            for off in range(0, n, MiB):
                c.sock.sendall(view[off:off + MiB])
            c.shutdown_wr()
        except OSError as e:
            send_err.append(e)
    t0 = time.monotonic()
    th = threading.Thread(target=sender, daemon=True)
    th.start()
    h = hashlib.sha256()
    count, how = c.recv_until_eof(timeout=60, hasher=h)
    th.join(30)
    took = time.monotonic() - t0
    note('64 MiB each way in %.2f s' % took)
    ok(not th.is_alive() and not send_err, 'client sent 64 MiB and shut down writing', repr(send_err))
    is_(how, 'eof', 'client reached EOF')
    is_(count, n, 'client received 64 MiB')
    ok(h.hexdigest() == sha256(down), 'client: sha256 of target->client data matches')
    ok(target.wait_done(1, timeout=30), 'target finished')
    r = target.records[0] if target.records else None
    is_(r and r.nbytes, n, 'target received 64 MiB', repr(r))
    ok(r and r.sha256 == sha256(up), 'target: sha256 of client->target data matches')
    ok(r and r.eof, 'target saw the client\'s EOF')
    is_(r and r.error, None, 'no error on the target side')
    is_(end_counts(log), (n, n), 'log end line: bytes_from_client=%d bytes_to_client=%d' % (n, n),
        read_log(log))
    is_(srv.wait_exit_codes(1, 10), [0], 'session exits 0', srv.stderr())


@test
def half_close_client_first():
    # client sends, then shutdown(SHUT_WR); the target sees EOF and only then
    # answers with a lot of data, which must still reach the client
    answer = pattern_bytes(4 * MiB)
    target = Target(h_read_then_reply(answer))
    srv, log = proxy()
    c, m, rep = socks_connect(srv.addr, '127.0.0.1', target.port, timeout=10)
    is_(rep.rep, 0, 'CONNECT succeeds')
    question = b'question-' + os.urandom(100000)
    c.send(question)
    c.shutdown_wr()
    ok(wait_for(lambda: target.records and target.records[0].eof, 5),
       'the client\'s shutdown(SHUT_WR) reached the target as EOF', repr(target.records))
    got, how = c.recv_until_eof(timeout=15)
    is_(how, 'eof', 'client gets EOF after the answer')
    ok(got == answer, 'client got the whole answer (%d bytes) sent after its half-close' % len(answer),
       'got %d bytes' % len(got))
    r = target.records[0] if target.records else None
    ok(r and bytes(r.data) == question, 'target got the whole question')
    ok(r and [e for _, e in r.events].index('eof') < [e for _, e in r.events].index('replied'),
       'target saw EOF before it answered', repr(r))
    is_(end_counts(log), (len(question), len(answer)), 'log end line counts both directions',
        read_log(log))


@test
def half_close_target_first():
    # the target sends, then shutdown(SHUT_WR); the client sees EOF, then
    # sends a lot of data, which must still reach the target
    first = pattern_bytes(2 * MiB)
    target = Target(h_send_then_read(first))
    srv, log = proxy()
    c, m, rep = socks_connect(srv.addr, '127.0.0.1', target.port, timeout=10)
    is_(rep.rep, 0, 'CONNECT succeeds')
    got, how = c.recv_until_eof(timeout=10)
    is_(how, 'eof', 'the target\'s shutdown(SHUT_WR) reached the client as EOF')
    ok(got == first, 'client got all %d bytes before the EOF' % len(first), 'got %d' % len(got))
    later = pattern_bytes(3 * MiB)
    try:
        c.send(later)
        c.shutdown_wr()
        sent = True
    except OSError as e:
        sent = False
        diag('send after EOF failed: %r' % e)
    ok(sent, 'client can still send after receiving EOF')
    ok(target.wait_done(1, timeout=15), 'target finished reading')
    r = target.records[0] if target.records else None
    is_(r and r.nbytes, len(later), 'target got every byte sent after its half-close', repr(r))
    ok(r and bytes(r.data) == later, 'and they are the right bytes')
    ok(r and r.eof, 'target saw the client\'s EOF')
    rest, how = c.recv_until_eof(timeout=5)
    is_((rest, how), (b'', 'eof'), 'client connection ends cleanly')
    is_(srv.wait_exit_codes(1, 10), [0], 'session exits 0', srv.stderr())


def h_send_eof_then_slow_read(first, delay):
    """Send first and EOF at once, but start reading only after delay seconds."""
    def handler(c, rec, target):
        c.sendall(first)
        rec.sent = len(first)
        c.shutdown(socket.SHUT_WR)
        rec.event('sent-eof')
        time.sleep(delay)
        h = hashlib.sha256()
        _recv_until_eof_hash(c, rec, h)
        rec.sha256 = h.hexdigest()
    return handler


def _recv_until_eof_hash(c, rec, h):
    while True:
        d = c.recv(1 << 20)
        if not d:
            rec.eof = True
            rec.event('eof')
            return
        rec.nbytes += len(d)
        h.update(d)


@test
def both_half_closed_with_data_queued():
    # Both sides have sent their EOF while client->target data still waits
    # in the relay (the target reads late): all of it must still arrive.
    n = 4 * MiB
    up = pattern_bytes(n)
    target = Target(h_send_eof_then_slow_read(b'bye', 1.0))
    srv, log = proxy()
    c, m, rep = socks_connect(srv.addr, '127.0.0.1', target.port, timeout=20)
    is_(rep.rep, 0, 'CONNECT succeeds')
    errs = []

    def sender():
        try:
            c.sock.sendall(up)
            c.shutdown_wr()
        except OSError as e:
            errs.append(e)
    th = threading.Thread(target=sender, daemon=True)
    th.start()
    got, how = c.recv_until_eof(timeout=10)
    is_((got, how), (b'bye', 'eof'), 'client got the target\'s data and EOF')
    th.join(20)
    ok(not th.is_alive() and not errs, 'client sent %d bytes and its EOF' % n, repr(errs))
    ok(target.wait_done(1, timeout=15), 'target finished reading')
    r = target.records[0] if target.records else None
    is_(r and r.nbytes, n, 'target got all %d bytes queued in the relay' % n, repr(r))
    ok(r and r.sha256 == sha256(up), 'sha256 matches')
    ok(r and r.eof and r.error is None, 'target saw a clean EOF, no reset', repr(r))
    is_(end_counts(log), (n, 3), 'log end line counts every byte', read_log(log))


def h_send_and_close(data):
    def handler(c, rec, target):
        c.sendall(data)
        rec.sent = len(data)
        c.close()
        rec.event('closed')
    return handler


@test
def drained_before_close_target_to_client():
    data = pattern_bytes(8 * MiB)
    target = Target(h_send_and_close(data))
    srv, log = proxy()
    c, m, rep = socks_connect(srv.addr, '127.0.0.1', target.port, timeout=10)
    is_(rep.rep, 0, 'CONNECT succeeds')
    time.sleep(0.3)  # the target has written everything and closed before we read
    got, how = c.recv_until_eof(timeout=15)
    is_(how, 'eof', 'EOF at the end')
    ok(got == data, 'all 8 MiB the target wrote before closing reached the client',
       'got %d bytes' % len(got))


@test
def drained_before_close_client_to_target():
    data = pattern_bytes(8 * MiB)
    target = Target(h_sink)
    srv, log = proxy()
    c, m, rep = socks_connect(srv.addr, '127.0.0.1', target.port, timeout=10)
    is_(rep.rep, 0, 'CONNECT succeeds')
    c.send(data)
    c.close()
    ok(target.wait_done(1, timeout=15), 'target finished')
    r = target.records[0] if target.records else None
    is_(r and r.nbytes, len(data), 'target got all bytes the client wrote before close()', repr(r))
    ok(r and r.sha256 == sha256(data), 'sha256 matches')


def h_small_writes(chunks):
    def handler(c, rec, target):
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for ch in chunks:
            c.sendall(ch)
            rec.sent += len(ch)
        c.shutdown(socket.SHUT_WR)
        rec.event('sent-eof')
        h = hashlib.sha256()
        c.settimeout(20)
        while True:
            d = c.recv(65536)
            if not d:
                rec.eof = True
                break
            rec.nbytes += len(d)
            h.update(d)
        rec.sha256 = h.hexdigest()
    return handler


@test
def many_small_segments():
    rnd = os.urandom(30000)
    chunks = [os.urandom(1 + rnd[i] % 97) for i in range(20000)]
    down = b''.join(chunks)
    target = Target(h_small_writes(chunks))
    srv, log = proxy()
    c, m, rep = socks_connect(srv.addr, '127.0.0.1', target.port, timeout=20)
    is_(rep.rep, 0, 'CONNECT succeeds')
    # do not read for a while: the relay's pipe fills with many tiny buffers
    time.sleep(1.0)
    # and send tiny segments the other way meanwhile
    up = os.urandom(200000)
    for off in range(0, len(up), 50):
        c.sock.sendall(up[off:off + 50])
    c.shutdown_wr()
    h = hashlib.sha256()
    count, how = c.recv_until_eof(timeout=20, hasher=h)
    is_((count, how), (len(down), 'eof'), 'client got all %d bytes of 20000 tiny segments' % len(down))
    ok(h.hexdigest() == sha256(down), 'sha256 matches')
    ok(target.wait_done(1, timeout=10), 'target finished')
    r = target.records[0] if target.records else None
    is_(r and r.nbytes, len(up), 'target got all 4000 small client segments', repr(r))
    ok(r and r.sha256 == sha256(up), 'sha256 matches')


main(time_limit=100)
