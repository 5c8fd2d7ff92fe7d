#!/usr/bin/python3
"""SOCKS5 CONNECT end to end through systemd-socket-activate --accept.

Real clients (curl socks5:// and socks5h://, ncat) and the raw client:
IPv4, IPv6 and name targets, the reply codes for failures (04, 05, 03),
unsupported commands (07), a bad address type (08), no acceptable method,
the bound address in the success reply, greeting+request+data in one
write, and a greeting sent one byte at a time.
"""
import os
import re
import sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
from sockdtest import *  # noqa: F401,F403


def proxy(host='127.0.0.1', **kw):
    d = tmpdir()
    conf, log = make_conf(d, **kw)
    return Server(conf, host=host), log


@test
def curl_socks5():
    body = os.urandom(100000)
    http = HttpServer(body)
    srv, log = proxy()
    r = run(['curl', '-sS', '--max-time', '10', '-o', '-', '-x', 'socks5://127.0.0.1:%d' % srv.port,
             'http://127.0.0.1:%d/file' % http.port])
    is_(r.returncode, 0, 'curl socks5:// exits 0', r.stderr.decode(errors='replace'))
    ok(r.stdout == body, 'curl socks5:// gets the whole body (%d bytes)' % len(body),
       'got %d bytes' % len(r.stdout))
    pas = wait_log(log, r'\bpass\b.*dest=127\.0\.0\.1\.%d\b' % http.port)
    ok(pas, 'log has a pass line with dest=127.0.0.1.%d' % http.port, read_log(log))
    end = wait_log(log, r'\bend\b.*bytes_to_client=(\d+)')
    ok(end, 'log has an end line with bytes_to_client', read_log(log))
    if end:
        n = int(re.search(r'bytes_to_client=(\d+)', end[0]).group(1))
        cmp_ok(n, '>', len(body), 'end line counts the body and headers sent to the client')
    is_(srv.wait_exit_codes(1), [0], 'the session exited 0 after relaying', srv.stderr())


@test
def curl_socks5h_name():
    body = b'hello through a name\n' * 100
    http = HttpServer(body)
    srv, log = proxy()
    r = run(['curl', '-sS', '--max-time', '10', '-o', '-', '-x', 'socks5h://127.0.0.1:%d' % srv.port,
             'http://localhost:%d/file' % http.port])
    is_(r.returncode, 0, 'curl socks5h:// (name resolved by the proxy) exits 0',
        r.stderr.decode(errors='replace'))
    ok(r.stdout == body, 'curl socks5h:// gets the body')
    ok(http.requests and http.requests[0][2] == 'localhost:%d' % http.port,
       'the HTTP server saw Host: localhost', repr(http.requests))
    ok(wait_log(log, r'\bpass\b.*dest=127\.0\.0\.1\.%d\b' % http.port),
       'log: pass with dest=127.0.0.1 (localhost resolved by /etc/hosts)', read_log(log))


@test
def ncat_socks5():
    echo = Target(h_echo)
    srv, log = proxy()
    data = b'ncat line one\nncat line two\n' * 50
    r = run(['ncat', '--proxy', '127.0.0.1:%d' % srv.port, '--proxy-type', 'socks5',
             '-w', '5', '127.0.0.1', str(echo.port)], input=data)
    is_(r.returncode, 0, 'ncat --proxy-type socks5 exits 0', r.stderr.decode(errors='replace'))
    ok(r.stdout == data, 'ncat gets its data echoed back through the proxy',
       'got %d bytes, expected %d' % (len(r.stdout), len(data)))
    ok(echo.wait_done(1) and bytes(echo.records[0].data) == data, 'the target got the data once')
    ok(echo.records and echo.records[0].eof, 'ncat\'s EOF on stdin reached the target')


@test
def ncat_socks5_remote_dns():
    echo = Target(h_echo)
    srv, log = proxy()
    data = b'remote dns\n'
    r = run(['ncat', '--proxy', '127.0.0.1:%d' % srv.port, '--proxy-type', 'socks5',
             '--proxy-dns', 'remote', '-w', '5', 'localhost', str(echo.port)], input=data)
    is_(r.returncode, 0, 'ncat --proxy-dns remote exits 0', r.stderr.decode(errors='replace'))
    is_(r.stdout, data, 'ncat (name sent to the proxy) gets the echo')


@test
def raw_ipv4_and_bound_address():
    echo = Target(h_echo)
    srv, log = proxy()
    c = RawClient(srv.addr)
    is_(c.greet(), b'\x05\x00', 'method reply 05 00 (no authentication)')
    c.send(req_ipv4('127.0.0.1', echo.port))
    rep = c.read_reply()
    is_((rep.ver, rep.rep, rep.rsv), (5, 0, 0), 'reply: version 5, succeeded, rsv 0', repr(rep))
    ok(echo.wait_conns(1), 'the target saw one connection')
    peer = echo.records[0].peer if echo.records else None
    is_((rep.atyp, rep.addr, rep.port), (1, peer[0], peer[1]) if peer else None,
        'BND.ADDR/BND.PORT are the outgoing socket\'s local address', repr(rep))
    c.send(b'ping')
    is_(c.recv_exact(4), b'ping', 'data relayed both ways')
    c.shutdown_wr()
    data, how = c.recv_until_eof(5)
    is_((data, how), (b'', 'eof'), 'EOF after the target closes')
    ok(wait_log(log, r'\bend\b.*bytes_from_client=4\b.*bytes_to_client=4\b'),
       'end line: bytes_from_client=4 bytes_to_client=4', read_log(log))


@test
def raw_ipv6_target():
    echo = Target(h_echo, host='::1')
    srv, log = proxy()
    c = RawClient(srv.addr)
    is_(c.greet(), b'\x05\x00', 'method reply')
    c.send(req_ipv6('::1', echo.port))
    rep = c.read_reply()
    is_(rep.rep, 0, 'CONNECT to [::1] succeeds', repr(rep))
    is_(rep.atyp, 4, 'BND address is IPv6', repr(rep))
    ok(echo.wait_conns(1), 'the IPv6 target saw the connection')
    if echo.records:
        is_((rep.addr, rep.port), tuple(echo.records[0].peer[:2]), 'BND matches the target\'s peer')
    c.send(b'six')
    is_(c.recv_exact(3), b'six', 'data relayed over IPv6')
    ok(wait_log(log, r'\bpass\b.*dest=\S*::1\S*'), 'log: pass with the IPv6 destination', read_log(log))


@test
def ipv6_listener_and_client():
    echo = Target(h_echo)
    srv, log = proxy(host='::1')
    c = RawClient(srv.addr)
    is_(c.greet(), b'\x05\x00', 'proxy on [::1]: method reply')
    c.send(req_ipv4('127.0.0.1', echo.port))
    is_(c.read_reply().rep, 0, 'client on ::1 reaches an IPv4 target')
    c.send(b'x' * 1000)
    is_(c.recv_exact(1000), b'x' * 1000, 'data relayed')
    ok(wait_log(log, r'\bpass\b.*client=\S*::1'), 'log: client=::1...', read_log(log))


@test
def name_target():
    echo = Target(h_echo)
    srv, log = proxy()
    c = RawClient(srv.addr)
    c.greet()
    c.send(req_domain('localhost', echo.port))
    rep = c.read_reply()
    is_(rep.rep, 0, 'CONNECT to localhost (ATYP 3) succeeds', repr(rep))
    ok(echo.wait_conns(1), 'the target on 127.0.0.1 saw the connection')
    c.send(b'name')
    is_(c.recv_exact(4), b'name', 'data relayed')


def refused_case(req, code, what, target=None, closed=('eof',)):
    srv, log = proxy()
    c = RawClient(srv.addr)
    is_(c.greet(), b'\x05\x00', '%s: method reply' % what)
    c.send(req)
    try:
        rep = c.read_reply()
    except (EOFError, OSError, ValueError) as e:
        ok(False, '%s: reply %02d' % (what, code), 'no reply: %r' % (e,))
        return srv, log
    is_(rep.rep, code, '%s: reply %02d (%s)' % (what, code, REPLY_NAMES[code]), repr(rep))
    is_(rep.ver, 5, '%s: reply version 5' % what)
    data, how, _ = c.wait_closed(5)
    ok(data == b'' and how in closed, '%s: then the connection is closed' % what,
       'got %r, %s' % (data, how))
    if target is not None:
        is_(len(target.records), 0, '%s: the target saw no connection' % what)
    is_(srv.wait_exit_codes(1), [1], '%s: the session exits 1' % what, srv.stderr())
    return srv, log


@test
def unresolvable_name():
    refused_case(req_domain('no-such-host.invalid', 80), 4, 'unresolvable name')


@test
def refused_port():
    port = free_port()
    refused_case(req_ipv4('127.0.0.1', port), 5, 'closed port')


@test
def unreachable_network():
    # only lo exists in the test namespace: 10.0.0.0/8 has no route
    refused_case(req_ipv4('10.255.255.1', 80), 3, 'no route to network')


@test
def unsupported_commands():
    echo = Target(h_echo)
    for cmd, name in ((0x00, 'command 0x00'), (0x04, 'command 0x04'), (0x09, 'command 0x09'),
                      (0xff, 'command 0xff')):
        refused_case(req_ipv4('127.0.0.1', echo.port, cmd=cmd), 7, name, target=echo)


@test
def bind_and_udp_need_a_rule():
    # deny by default: the rules here pass "command: connect" only
    echo = Target(h_echo)
    for cmd, name in ((CMD_BIND, 'BIND'), (CMD_UDP, 'UDP ASSOCIATE')):
        refused_case(req_ipv4('127.0.0.1', echo.port, cmd=cmd), 2,
                     name + ' without a pass rule for it', target=echo)


@test
def bad_address_type():
    echo = Target(h_echo)
    # The server cannot know how long an address of an unknown type is, so
    # it may leave bytes unread and close with an RST: both closes are fine.
    refused_case(bytes([5, 1, 0, 5, 127]), 8, 'ATYP 0x05 (one address byte)',
                 target=echo, closed=('eof', 'reset'))
    refused_case(bytes([5, 1, 0, 5, 127, 0, 0, 1]) + echo.port.to_bytes(2, 'big'), 8,
                 'ATYP 0x05 (with an address and port)', target=echo, closed=('eof', 'reset'))
    refused_case(bytes([5, 1, 0, 0, 127, 0, 0, 1]) + echo.port.to_bytes(2, 'big'), 8,
                 'ATYP 0x00', target=echo, closed=('eof', 'reset'))


@test
def no_acceptable_method():
    srv, log = proxy()
    c = RawClient(srv.addr)
    c.send(greeting((0x02, 0x80)))
    try:
        reply = c.recv_exact(2)
    except (EOFError, OSError) as e:
        reply = repr(e)
    is_(reply, b'\x05\xff', 'only username/password and a private method offered: 05 FF')
    data, how, _ = c.wait_closed(5)
    is_((data, how), (b'', 'eof'), 'then the connection is closed')


@test
def everything_in_one_write():
    echo = Target(h_echo)
    srv, log = proxy()
    c = RawClient(srv.addr)
    payload = b'FIRST-DATA-' + os.urandom(3000) + b'-END'
    c.send(greeting() + req_ipv4('127.0.0.1', echo.port) + payload)
    is_(c.recv_exact(2), b'\x05\x00', 'method reply')
    is_(c.read_reply().rep, 0, 'CONNECT succeeds')
    got = c.recv_exact(len(payload))
    ok(got == payload, 'the data sent with the request comes back from the echo target')
    c.shutdown_wr()
    rest, how = c.recv_until_eof(5)
    is_((rest, how), (b'', 'eof'), 'nothing more (the data was not relayed twice)')
    ok(echo.wait_done(1), 'target connection finished')
    ok(echo.records and bytes(echo.records[0].data) == payload,
       'the target received the early data exactly once',
       echo.records and 'target got %d bytes, expected %d' % (len(echo.records[0].data), len(payload)))


@test
def greeting_one_byte_at_a_time():
    echo = Target(h_echo)
    srv, log = proxy()
    c = RawClient(srv.addr)
    c.send_slowly(greeting((0x02, 0x00)), 0.05)
    is_(c.recv_exact(2), b'\x05\x00', 'greeting in 1-byte writes: method 00 chosen')
    c.send_slowly(req_ipv4('127.0.0.1', echo.port), 0.03)
    is_(c.read_reply().rep, 0, 'request in 1-byte writes: CONNECT succeeds')
    c.send(b'after')
    is_(c.recv_exact(5), b'after', 'data relayed')
    c.close()
    ok(echo.wait_done(1) and bytes(echo.records[0].data) == b'after', 'the target got only the data')


@test
def domain_request_one_byte_at_a_time():
    echo = Target(h_echo)
    srv, log = proxy()
    c = RawClient(srv.addr)
    c.send_slowly(greeting() + req_domain('localhost', echo.port), 0.02)
    is_(c.recv_exact(2), b'\x05\x00', 'method reply')
    is_(c.read_reply().rep, 0, 'name request in 1-byte writes: CONNECT succeeds')


main(time_limit=100)
