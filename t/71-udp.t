#!/usr/bin/python3
"""UDP ASSOCIATE, with t/conf/udp.conf.in.

- PySocks (python3-socks) UDP through the proxy to a UDP echo server;
- the raw client: the exact reply and RFC 1928 section 7 headers both
  ways, a large datagram, IPv6 and name destinations, the client's
  announced address and the port fixed by its first datagram;
- dropped, never relayed: datagrams from another address or port,
  fragments (FRAG != 0), blocked destinations (udpassociate rules, by
  address and by port), unresolvable names, 0.0.0.0 (which Linux would
  deliver to this host), answers from a blocked remote (udpreply rules);
  the debug log counts them;
- the relay socket closes with the control connection (ICMP port
  unreachable within a second), and after timeout.io.udp of silence;
- udp.portrange, also when a destination rule comes before the one that
  sets it, and when every port of the range is taken;
- refusals (02) at ASSOCIATE time;
- sockd-check -C command=udpassociate|udpreply gives the verdicts the live
  session applied.
"""
import os
import random
import re
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
from sockdtest import *  # noqa: F401,F403

CHECK = os.path.join(BUILD, 'sockd-check', 'sockd-check')
# quiet time after which a datagram that did not come is taken as dropped
QUIET = 0.3


class UdpEcho:
    """A UDP server in a thread: records (data, source) and answers b'echo:' + data."""

    def __init__(self, host='127.0.0.1', port=0):
        fam = socket.AF_INET6 if ':' in host else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_DGRAM)
        self.sock.bind((host, port))
        self.sock.settimeout(0.1)
        self.host = host
        self.port = self.sock.getsockname()[1]
        self.seen = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()
        defer(self.close)

    @property
    def addr(self):
        return (self.host, self.port)

    def _loop(self):
        while not self.stop.is_set():
            try:
                data, src = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            self.seen.append((data, src[:2]))
            try:
                self.sock.sendto(b'echo:' + data, src)
            except OSError:
                pass

    def payloads(self):
        return [d for d, _ in self.seen]

    def close(self):
        self.stop.set()
        self.thread.join(2)
        self.sock.close()


def udp_header(host, port, frag=0):
    """RSV RSV FRAG ATYP DST.ADDR DST.PORT (ATYP from host: IPv4, IPv6 or a name)."""
    return bytes([0, 0, frag]) + request(host, port)[3:]


def parse_header(d):
    """(frag, atyp, host, port, payload) of a datagram from the relay."""
    frag, atyp = d[2], d[3]
    if atyp == 1:
        host, rest = socket.inet_ntop(socket.AF_INET, d[4:8]), d[8:]
    elif atyp == 4:
        host, rest = socket.inet_ntop(socket.AF_INET6, d[4:20]), d[20:]
    elif atyp == 3:
        n = d[4]
        host, rest = d[5:5 + n].decode('latin-1'), d[5 + n:]
    else:
        return frag, atyp, None, None, d
    return frag, atyp, host, struct.unpack('>H', rest[:2])[0], rest[2:]


class Assoc:
    """A UDP ASSOCIATE: the control connection, the reply and a client UDP socket."""

    def __init__(self, srv, announce=None, source=None, udp_source=None, udp=None):
        self.ctl = RawClient(srv.addr, source=source)
        host = srv.host
        fam = socket.AF_INET6 if ':' in host else socket.AF_INET
        if udp is None:
            udp = socket.socket(fam, socket.SOCK_DGRAM)
            udp.bind((udp_source or self.ctl.local()[0], 0))
            defer(udp.close)
        self.udp = udp
        self.udp.settimeout(3)
        self.method = self.ctl.greet()
        if announce is None:
            announce = ('::' if fam == socket.AF_INET6 else '0.0.0.0', 0)
        self.ctl.send(request(announce[0], announce[1], CMD_UDP))
        self.reply = self.ctl.read_reply()
        self.relay = (self.reply.addr, self.reply.port)

    def send(self, host, port, payload, frag=0, sock=None):
        (sock or self.udp).sendto(udp_header(host, port, frag) + payload, self.relay)

    def recv(self, timeout=3, sock=None):
        """The next datagram for the client, or None after timeout."""
        s = sock or self.udp
        s.settimeout(timeout)
        try:
            d, src = s.recvfrom(70000)
        except socket.timeout:
            return None
        return d, src[:2]

    def roundtrip(self, host, port, payload, timeout=3):
        self.send(host, port, payload)
        return self.recv(timeout)

    def close(self):
        self.ctl.close()


def udp_proxy(io_udp=30, host='127.0.0.1', blocked_port=None, ranges=None):
    d = tmpdir()
    lo = ranges[0] if ranges else 20000
    lo2 = ranges[1] if ranges else 21000
    conf, log = render_template('udp.conf.in', d, IO_UDP=io_udp,
                                BLOCKED_PORT=blocked_port or 1,
                                LO=lo, HI=lo + 9, LO2=lo2, HI2=lo2 + 9)
    return Server(conf, host=host), conf, log


def rule_line(conf, tag):
    return line_of(conf, '[%s]' % tag)


def rule_re(conf, tag):
    return r'rule=\S*%s:%d\b' % (re.escape(os.path.basename(conf)), rule_line(conf, tag))


def dropped_count(log, client, timeout=5):
    """The 'udp datagrams dropped=N' the session logs at the end (0 when it logs none)."""
    end = wait_log(log, r'\bend\b.*client=%s\.%d ' % (re.escape(client[0]), client[1]), timeout)
    m = [re.search(r'dropped=(\d+)', l) for l in log_lines(log, r'client=%s\.%d udp datagrams dropped'
                                                          % (re.escape(client[0]), client[1]))]
    return int(m[0].group(1)) if m and m[0] else (0 if end else None)


def check(conf, **kv):
    spec = ','.join('%s=%s' % (k, v) for k, v in kv.items())
    r = run([CHECK, '-f', conf, '-C', spec])
    first = r.stdout.decode(errors='replace').split('\n')[0]
    m = re.match(r'^(pass|block) (?:(?:client|socks)-rule #\d+ \S+:(\d+)|default)', first)
    if not m:
        return None, first + r.stderr.decode(errors='replace')
    return m.group(1), m.group(2) or 'default'


def udp_bound(port):
    for path in ('/proc/net/udp', '/proc/net/udp6'):
        try:
            with open(path) as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        if any(int(l.split()[1].rsplit(':', 1)[1], 16) == port for l in lines):
            return True
    return False


def ok_reply(host, port):
    atyp = 4 if ':' in host else 1
    fam = socket.AF_INET6 if ':' in host else socket.AF_INET
    return bytes([5, 0, 0, atyp]) + socket.inet_pton(fam, host) + struct.pack('>H', port)


# ---------------------------------------------------------------------------

@test
def pysocks_udp():
    try:
        import socks
    except ImportError:
        skip('python3-socks (PySocks) not installed', 6)
        return
    echo = UdpEcho()
    srv, conf, log = udp_proxy()
    s = socks.socksocket(socket.AF_INET, socket.SOCK_DGRAM)
    defer(s.close)
    s.set_proxy(socks.SOCKS5, '127.0.0.1', srv.port)
    s.settimeout(5)
    got = []
    for msg in (b'first datagram', b'second datagram ' + os.urandom(1000)):
        s.sendto(msg, ('127.0.0.1', echo.port))
        try:
            got.append(s.recvfrom(70000))
        except (socket.timeout, OSError) as e:
            got.append(repr(e))
    is_(got[0], (b'echo:first datagram', ('127.0.0.1', echo.port)),
        'PySocks UDP: the echo answer comes back, from the echo\'s address')
    ok(isinstance(got[1], tuple) and got[1][0].startswith(b'echo:second datagram '),
       'a second, larger datagram too', repr(got[1])[:200])
    is_(echo.payloads()[:2], [b'first datagram', got[1][0][5:] if isinstance(got[1], tuple) else None],
        'the echo server got the payloads without the SOCKS header')
    pas = wait_log(log, r'\bpass\b.*command=udpassociate\b')
    ok(pas, 'log: pass command=udpassociate', read_log(log))
    s.close()
    end = wait_log(log, r'\bend\b.*bytes_from_client=')
    like(end[0] if end else '', r'bytes_from_client=%d\b.*bytes_to_client=%d\b'
         % (sum(len(p) for p in echo.payloads()), sum(len(p) + 5 for p in echo.payloads())),
         'log: end line counts the payload bytes both ways', read_log(log))
    is_(srv.wait_exit_codes(1), [0], 'the session exits 0 when PySocks closes the socket', srv.stderr())


@test
def raw_headers_and_reply():
    echo = UdpEcho()
    srv, conf, log = udp_proxy()
    a = Assoc(srv)
    is_(a.method, b'\x05\x00', 'method reply')
    is_(a.reply.raw, ok_reply('127.0.0.1', a.reply.port),
        'reply: 05 00 00 01 127.0.0.1 PORT (a relay on the address the client connected to)',
        repr(a.reply))
    ok(a.reply.port and udp_bound(a.reply.port), 'a UDP socket is bound on the relay port')
    got = a.roundtrip('127.0.0.1', echo.port, b'exact header')
    is_(got and got[0], udp_header('127.0.0.1', echo.port) + b'echo:exact header',
        'answer: 00 00 00 01 127.0.0.1 ECHOPORT + payload (exact bytes)')
    is_(got and got[1], a.relay, 'the answer comes from the relay address')
    is_(echo.seen[:1], [(b'exact header', ('127.0.0.1', echo.seen[0][1][1] if echo.seen else 0))],
        'the echo got the payload alone')
    big = os.urandom(30000)
    got = a.roundtrip('127.0.0.1', echo.port, big)
    ok(got and got[0] == udp_header('127.0.0.1', echo.port) + b'echo:' + big,
       'a 30000-byte datagram both ways, intact')
    a.close()
    is_(srv.wait_exit_codes(1), [0], 'the session exits 0 when the control connection closes',
        srv.stderr())
    like(read_log(log), r'\bend\b.*reason="client closed the control connection"',
         'log: end, the client closed the control connection')


@test
def ipv6_destination():
    echo6 = UdpEcho('::1')
    srv, conf, log = udp_proxy()
    a = Assoc(srv)
    got = a.roundtrip('::1', echo6.port, b'to six')
    is_(got and got[0], udp_header('::1', echo6.port) + b'echo:to six',
        'IPv4 client, IPv6 destination ([udp-v6]): answer with ATYP 4 ::1 header')
    is_(echo6.payloads(), [b'to six'], 'the IPv6 echo got it')


@test
def ipv6_client():
    echo = UdpEcho()
    echo6 = UdpEcho('::1')
    srv, conf, log = udp_proxy(host='::1')
    a = Assoc(srv)
    is_(a.reply.raw, ok_reply('::1', a.reply.port), 'IPv6 control connection: relay on ::1',
        repr(a.reply))
    got = a.roundtrip('::1', echo6.port, b'v6 to v6')
    is_(got and got[0], udp_header('::1', echo6.port) + b'echo:v6 to v6', 'to ::1 and back')
    got = a.roundtrip('127.0.0.1', echo.port, b'v6 to v4')
    is_(got and got[0], udp_header('127.0.0.1', echo.port) + b'echo:v6 to v4', 'to 127.0.0.1 and back')


@test
def name_destination():
    # localhost may resolve to 127.0.0.1 and ::1: listen on both, same port
    echo = UdpEcho()
    try:
        echo6 = UdpEcho('::1', echo.port)
    except OSError:
        echo6 = None
    srv, conf, log = udp_proxy()
    a = Assoc(srv)
    got = a.roundtrip('localhost', echo.port, b'by name')
    ok(got is not None, 'a datagram to "localhost" (ATYP 3) is answered')
    if got:
        frag, atyp, host, port, payload = parse_header(got[0])
        ok((atyp, host) in ((1, '127.0.0.1'), (4, '::1')) and port == echo.port,
           'the answer\'s header names the address that answered, not the name',
           repr(got[0][:30]))
        is_(payload, b'echo:by name', 'payload')
    # an unresolvable name: dropped, and the association still works
    a.send('no-such-host.invalid', 9, b'nowhere')
    got = a.roundtrip('127.0.0.1', echo.port, b'after the bad name')
    is_(got and got[0], udp_header('127.0.0.1', echo.port) + b'echo:after the bad name',
        'after an unresolvable name the association still relays')
    client = a.ctl.local()
    a.close()
    is_(dropped_count(log, client), 1, 'debug log: 1 datagram dropped (the unresolvable name)',
        read_log(log))


@test
def other_sources_dropped():
    echo = UdpEcho()
    srv, conf, log = udp_proxy()
    a = Assoc(srv)
    stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    defer(stranger.close)
    stranger.bind(('127.0.0.7', 0))
    # before the client's first datagram: a stranger must not take the association
    a.send('127.0.0.1', echo.port, b'from 127.0.0.7', sock=stranger)
    got = a.roundtrip('127.0.0.1', echo.port, b'from the client')
    is_(got and got[0], udp_header('127.0.0.1', echo.port) + b'echo:from the client',
        'the client\'s datagram is relayed')
    ok(b'from 127.0.0.7' not in echo.payloads(), 'the datagram from 127.0.0.7 was not relayed',
       repr(echo.payloads()))
    is_(a.recv(QUIET, sock=stranger), None, 'the stranger gets nothing back')
    # the first datagram fixed the client's port: the same IP, another port, is dropped
    other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    defer(other.close)
    other.bind(('127.0.0.1', 0))
    a.send('127.0.0.1', echo.port, b'same IP other port', sock=other)
    got = a.roundtrip('127.0.0.1', echo.port, b'again from the client')
    ok(got is not None, 'the client still gets answers')
    ok(b'same IP other port' not in echo.payloads(),
       'after the first datagram, another port of the client\'s IP is dropped', repr(echo.payloads()))
    is_(a.recv(QUIET, sock=other), None, 'and gets nothing back')
    client = a.ctl.local()
    a.close()
    is_(dropped_count(log, client), 2, 'debug log: 2 datagrams dropped', read_log(log))


@test
def announced_address_fixes_the_port():
    echo = UdpEcho()
    srv, conf, log = udp_proxy()
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    defer(u.close)
    u.bind(('127.0.0.1', 0))
    a = Assoc(srv, announce=u.getsockname(), udp=u)
    is_(a.reply.rep, 0, 'ASSOCIATE announcing 127.0.0.1:PORT: reply 00', repr(a.reply))
    other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    defer(other.close)
    other.bind(('127.0.0.1', 0))
    a.send('127.0.0.1', echo.port, b'not the announced port', sock=other)
    got = a.roundtrip('127.0.0.1', echo.port, b'announced port')
    is_(got and got[0], udp_header('127.0.0.1', echo.port) + b'echo:announced port',
        'the announced port is relayed')
    ok(b'not the announced port' not in echo.payloads(),
       'a first datagram from another port than the announced one is dropped', repr(echo.payloads()))
    # the name form ("0"), as PySocks sends it
    a2 = Assoc(srv, announce=('0', 0))
    is_(a2.reply.rep, 0, 'ASSOCIATE announcing the name "0": reply 00', repr(a2.reply))
    got = a2.roundtrip('127.0.0.1', echo.port, b'name form')
    ok(got is not None, 'and it relays')


@test
def fragments_dropped():
    echo = UdpEcho()
    srv, conf, log = udp_proxy()
    a = Assoc(srv)
    ok(a.roundtrip('127.0.0.1', echo.port, b'whole') is not None, 'an unfragmented datagram is relayed')
    a.send('127.0.0.1', echo.port, b'fragment 1', frag=1)
    a.send('127.0.0.1', echo.port, b'fragment 0x81', frag=0x81)
    a.udp.sendto(b'\x00\x01\x00' + udp_header('127.0.0.1', echo.port)[3:] + b'bad rsv', a.relay)
    a.udp.sendto(b'\x00\x00', a.relay)
    got = a.roundtrip('127.0.0.1', echo.port, b'whole again')
    is_(got and got[0], udp_header('127.0.0.1', echo.port) + b'echo:whole again',
        'the next whole datagram is relayed, and it is the first answer')
    is_(echo.payloads(), [b'whole', b'whole again'],
        'FRAG 1, FRAG 0x81, a non-zero RSV and a truncated header were not relayed')
    client = a.ctl.local()
    a.close()
    is_(dropped_count(log, client), 4, 'debug log: 4 datagrams dropped', read_log(log))


@test
def blocked_destinations_dropped():
    echo = UdpEcho()
    blocked_port = UdpEcho()
    nine = UdpEcho('127.0.0.9')
    srv, conf, log = udp_proxy(blocked_port=blocked_port.port)
    a = Assoc(srv)
    a.send('127.0.0.9', nine.port, b'to 127.0.0.9')
    a.send('127.0.0.1', blocked_port.port, b'to the blocked port')
    got = a.roundtrip('127.0.0.1', echo.port, b'allowed')
    is_(got and got[0], udp_header('127.0.0.1', echo.port) + b'echo:allowed',
        'an allowed destination is relayed (and its answer is the first one)')
    is_(nine.payloads(), [], '127.0.0.9 ([udp-to-block]) got nothing')
    is_(blocked_port.payloads(), [], 'the blocked port ([udp-port-block]) got nothing')
    is_(a.recv(QUIET), None, 'nothing else comes back')
    client = a.ctl.local()
    a.close()
    is_(dropped_count(log, client), 2, 'debug log: 2 datagrams dropped', read_log(log))


@test
def decided_under_the_sandbox_from_a_large_image():
    # each datagram is decided under the UDP sandbox, where nothing can be
    # read: a compiled image too large to be read whole at start is read
    # whole before the sandbox, and decides as the text does
    echo = UdpEcho()
    blocked_port = UdpEcho()
    srv, conf, log = udp_proxy(blocked_port=blocked_port.port)
    with open(conf, 'a') as fh:
        fh.write(''.join('socks block { from: 203.0.113.%d/32 to: 0/0 }\n' % i
                         for i in range(200)))
    r = run([CHECK, '-f', conf, '--compile'])
    is_(r.returncode, 0, 'compiled', r.stderr)
    a = Assoc(srv)
    a.send('127.0.0.1', blocked_port.port, b'to the blocked port')
    got = a.roundtrip('127.0.0.1', echo.port, b'allowed')
    is_(got and got[0], udp_header('127.0.0.1', echo.port) + b'echo:allowed',
        'an allowed destination is relayed')
    is_(blocked_port.payloads(), [], 'the blocked port got nothing')
    client = a.ctl.local()
    a.close()
    is_(dropped_count(log, client), 1, 'one datagram dropped', read_log(log))
    logs = read_log(log)
    like(logs, r'rules: \S+\.compiled\b', 'the session took the image')
    unlike(logs, r'not used|SIGSYS|sandbox', 'and never fell back or broke the sandbox')


@test
def unspecified_destination_dropped():
    # 0.0.0.0 is no destination (Linux would deliver it to this host), even
    # under a rule with to: 0/0 ([udp-range], client 127.0.0.4)
    echo = UdpEcho()
    srv, conf, log = udp_proxy()
    a = Assoc(srv, source='127.0.0.4')
    a.send('0.0.0.0', echo.port, b'to 0.0.0.0')
    got = a.roundtrip('127.0.0.1', echo.port, b'to 127.0.0.1')
    is_(got and got[0], udp_header('127.0.0.1', echo.port) + b'echo:to 127.0.0.1',
        'the datagram to 127.0.0.1 is relayed, and its answer is the first one')
    ok(b'to 0.0.0.0' not in echo.payloads(), 'the datagram to 0.0.0.0 reached no one',
       repr(echo.payloads()))


@test
def blocked_reply_source_dropped():
    echo = UdpEcho()
    eight = UdpEcho('127.0.0.8')
    srv, conf, log = udp_proxy()
    a = Assoc(srv)
    a.send('127.0.0.8', eight.port, b'to 127.0.0.8')
    ok(wait_for(lambda: eight.payloads(), 2), 'the datagram to 127.0.0.8 is relayed ([udp-v4])')
    time.sleep(0.1)
    got = a.roundtrip('127.0.0.1', echo.port, b'to 127.0.0.1')
    is_(got and got[0], udp_header('127.0.0.1', echo.port) + b'echo:to 127.0.0.1',
        'the answer from 127.0.0.1 comes back (and is the first one)')
    is_(a.recv(QUIET), None, 'the answer from 127.0.0.8 ([udpreply-block]) never reaches the client')
    client = a.ctl.local()
    a.close()
    is_(dropped_count(log, client), 1, 'debug log: 1 datagram dropped', read_log(log))


@test
def teardown_with_the_control_connection():
    echo = UdpEcho()
    srv, conf, log = udp_proxy()
    a = Assoc(srv)
    ok(a.roundtrip('127.0.0.1', echo.port, b'alive') is not None, 'the association relays')
    u = a.udp
    u.connect(a.relay)
    a.close()
    t0 = time.monotonic()

    def refused():
        try:
            u.send(udp_header('127.0.0.1', echo.port) + b'after close')
            u.settimeout(0.1)
            u.recv(100)
        except ConnectionRefusedError:
            return True
        except (socket.timeout, OSError):
            pass
        return False
    gone = wait_for(refused, 1.0, 0.05)
    ok(gone, 'within 1 s of the control connection closing the relay port is closed (ICMP)',
       'waited %.2f s' % (time.monotonic() - t0))
    ok(b'after close' not in echo.payloads(), 'nothing sent after the close was relayed')
    is_(srv.wait_exit_codes(1), [0], 'the session exits 0', srv.stderr())


@test
def idle_timeout():
    echo = UdpEcho()
    srv, conf, log = udp_proxy(io_udp=1)
    a = Assoc(srv)
    ok(a.roundtrip('127.0.0.1', echo.port, b'once') is not None, 'the association relays')
    t0 = time.monotonic()
    data, how = a.ctl.recv_until_eof(5)
    waited = time.monotonic() - t0
    ok(how in ('eof', 'reset') and data == b'', 'after timeout.io.udp (1 s) of silence the session '
       'closes the control connection', '%r %s' % (data, how))
    cmp_ok(waited, '>=', 0.8, 'not before 1 s')
    cmp_ok(waited, '<=', 3, 'not much after 1 s')
    like(read_log(log), r'\bend\b.*reason="timeout\.io\.udp expired"', 'log: end, timeout.io.udp expired')


@test
def portrange():
    lo = random.randrange(20000, 30000, 10)
    lo2 = lo + 5000
    echo = UdpEcho()
    srv, conf, log = udp_proxy(ranges=(lo, lo2))
    ports = []
    for i in range(3):
        a = Assoc(srv, source='127.0.0.4')
        ports.append(a.reply.port)
        if i == 0:
            ok(a.roundtrip('127.0.0.1', echo.port, b'in range') is not None,
               'an association on a port of the range relays')
        a.close()
    ok(all(lo <= p <= lo + 9 for p in ports),
       'client 127.0.0.4 ([udp-range] udp.portrange %d-%d): relay ports %s' % (lo, lo + 9, ports))
    like(read_log(log), rule_re(conf, 'udp-range'), 'log names [udp-range]')
    # the rule with the range comes after a rule that needs the destination
    a = Assoc(srv, source='127.0.0.6')
    ok(lo2 <= a.reply.port <= lo2 + 9,
       'client 127.0.0.6 ([udp-range-late], after a destination rule): relay port %d in %d-%d'
       % (a.reply.port, lo2, lo2 + 9))
    a.close()
    # every port of the range taken: a failure reply, not a port outside the range
    taken = []
    for p in range(lo, lo + 10):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        defer(s.close)
        try:
            s.bind(('127.0.0.1', p))
            taken.append(s)
        except OSError:
            pass
    c = RawClient(srv.addr, source='127.0.0.4')
    c.greet()
    c.send(req_ipv4('0.0.0.0', 0, CMD_UDP))
    try:
        r = c.read_reply()
    except (EOFError, OSError, ValueError) as e:
        r = e
    ok(isinstance(r, Reply) and r.rep == 1, 'the whole range in use: reply 01 (general failure)', repr(r))


@test
def associate_refused():
    srv, conf, log = udp_proxy()
    c = RawClient(srv.addr, source='127.0.0.3')
    c.greet()
    c.send(req_ipv4('0.0.0.0', 0, CMD_UDP))
    r = c.read_reply()
    is_(r.raw, bytes([5, 2, 0, 1, 0, 0, 0, 0, 0, 0]), 'client 127.0.0.3 ([udp-from-block]): reply 05 02',
        repr(r))
    lines = wait_log(log, r'\bblock\b.*client=127\.0\.0\.3\.')
    like(lines[0] if lines else '', rule_re(conf, 'udp-from-block'), 'log names [udp-from-block]',
         read_log(log))
    d = tmpdir()
    conf2, log2 = make_conf(d)
    srv2 = Server(conf2)
    c = RawClient(srv2.addr)
    c.greet()
    c.send(req_ipv4('0.0.0.0', 0, CMD_UDP))
    r = c.read_reply()
    is_(r.rep, 2, 'rules without command: udpassociate: reply 02', repr(r))


@test
def check_agrees():
    echo = UdpEcho()
    blocked = UdpEcho()
    nine = UdpEcho('127.0.0.9')
    eight = UdpEcho('127.0.0.8')
    echo6 = UdpEcho('::1')
    srv, conf, log = udp_proxy(blocked_port=blocked.port)
    L = lambda tag: str(rule_line(conf, tag))
    base = {'laddr': '127.0.0.1', 'lport': srv.port}

    # udpassociate, per datagram: relayed or not
    a = Assoc(srv)
    frm = a.ctl.local()[0]
    for what, srvr, want in (('to 127.0.0.1', echo, ('pass', L('udp-v4'))),
                             ('to the blocked port', blocked, ('block', L('udp-port-block'))),
                             ('to 127.0.0.9', nine, ('block', L('udp-to-block'))),
                             ('to ::1', echo6, ('pass', L('udp-v6')))):
        got_check = check(conf, **dict(base, **{'from': frm, 'to': srvr.host, 'port': srvr.port,
                                               'command': 'udpassociate'}))
        is_(got_check, want, 'udpassociate %s: sockd-check' % what)
        tag = ('probe %s' % what).encode()
        a.send(srvr.host, srvr.port, tag)
        a.roundtrip('127.0.0.1', echo.port, b'sync')  # processed in order: the probe went first
        time.sleep(0.05)
        live = 'pass' if tag in srvr.payloads() else 'block'
        is_(live, got_check[0], 'udpassociate %s: the session %sed the datagram' % (what, live))
    # udpreply, per answer: delivered or not
    while a.recv(QUIET) is not None:
        pass
    for what, srvr, want in (('from 127.0.0.8', eight, ('block', L('udpreply-block'))),
                             ('from 127.0.0.1', echo, ('pass', L('udpreply-pass')))):
        got_check = check(conf, **dict(base, **{'from': frm, 'to': srvr.host, 'port': srvr.port,
                                               'command': 'udpreply'}))
        is_(got_check, want, 'udpreply %s: sockd-check (to= is the remote)' % what)
        a.send(srvr.host, srvr.port, b'reply probe')
        got = a.recv(1.0)
        live = 'pass' if got and parse_header(got[0])[2] == srvr.host else 'block'
        is_(live, got_check[0], 'udpreply %s: the session %sed the answer' % (what, live))
    a.close()
    # the association itself, refused with a rule line
    want = check(conf, **dict(base, **{'from': '127.0.0.3', 'to': '127.0.0.1', 'port': echo.port,
                                       'command': 'udpassociate'}))
    is_(want, ('block', L('udp-from-block')), 'udpassociate from 127.0.0.3: sockd-check')
    c = RawClient(srv.addr, source='127.0.0.3')
    c.greet()
    c.send(req_ipv4('0.0.0.0', 0, CMD_UDP))
    r = c.read_reply()
    lines = wait_log(log, r'\bblock\b.*client=127\.0\.0\.3\.%d ' % c.local()[1])
    m = re.search(r'rule=\S+:(\d+)', lines[0]) if lines else None
    is_(('pass' if r.rep == 0 else 'block', m and m.group(1)), want,
        'udpassociate from 127.0.0.3: the session refused it with the same rule')


main(time_limit=60)
