#!/usr/bin/python3
"""GSSAPI (RFC 1961, SOCKS5 method 01) against a throwaway MIT KDC on loopback.

One realm (SOCKD.TEST) for the whole file, with rcmd/localhost and
rcmd/127.0.0.1 in a keytab, users alice, alice/admin (maps to no local
name) and alice/ops (mapped to bob by an auth_to_local rule), each with a
ticket in a private ccache.  The client is t/lib/kdc.py's GssClient
(python3-gssapi) or raw bytes:
 - levels clear, integrity and confidentiality with RFC framing: 1 MiB
   each way verified byte for byte, early data in the request token first
   and once, a token of exactly 65535 bytes, the principal in the log;
 - NEC framing with clientcompatibility: necgssapi, and the same raw
   1-byte protection message refused without it;
 - no ticket, wrong service (client and server side), wrong keytab (from
   another KDC, missing), a level the rule forbids, level 3, a context
   without replay/sequence detection: each refused with 01 FF and logged;
 - bad input in the context and protection phases (zero-length and
   65535-byte tokens, a short token then close or silence until
   timeout.negotiate, wrong version, wrong mtyp, client abort) and in the
   data phase (tampered, duplicated, reordered tokens, a level-2 token
   without confidentiality, bad framing, a zero-length token, a bad request
   token): the session ends, nothing of the bad token reaches the target,
   no crash, memory bounded, also while a target does not read;
 - user: rules match the local name (alice, bob via auth_to_local), a
   principal that maps to nothing gets reply 02 (wrapped under protection);
 - the replay cache (KRB5RCACHEDIR) is shared: files appear there, and an
   AP-REQ replayed to a new session is refused.
"""
import hashlib
import os
import re
import shutil
import socket
import struct
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
from sockdtest import *  # noqa: E402,F401,F403
from kdc import Kdc, GssClient, REALM  # noqa: E402

ABORT = b'\x01\xff'
ALL_LEVELS = 'clear integrity confidentiality'

# --------------------------------------------------------------------------
# the realm: one KDC for the whole file, inside the test's network namespace
# --------------------------------------------------------------------------

enter_netns()


class Realm:
    pass


def _realm():
    r = Realm()
    r.dir = tempfile.mkdtemp(prefix='sockd-krb-')
    os.chmod(r.dir, 0o755)
    if os.environ.get('SOCKD_TEST_KEEP') == '1':
        diag('keeping %s' % r.dir)
    else:
        defer(shutil.rmtree, r.dir, True)
    try:
        import gssapi  # noqa: F401
    except ImportError as e:
        bail_out('python3-gssapi is not installed: %s' % e)
    for tool in ('krb5kdc', 'kdb5_util', 'kadmin.local', 'kinit'):
        if not shutil.which(tool, path=os.environ.get('PATH', '') + ':/usr/sbin:/sbin'):
            bail_out('%s not found (install krb5-kdc, krb5-admin-server, krb5-user)' % tool)
    os.environ['PATH'] = os.environ.get('PATH', '') + ':/usr/sbin:/sbin'
    try:
        k = Kdc(r.dir, auth_to_local=['RULE:[2:$1/$2@$0](^alice/ops@SOCKD.TEST$)s/^.*$/bob/'])
    except Exception as e:
        bail_out('cannot start a KDC: %s' % e)
    defer(k.stop)
    r.kdc = k
    r.keytab = os.path.join(r.dir, 'sockd.keytab')
    k.add_service(r.keytab)
    # host/localhost exists in the realm, but not in the server's keytab
    k.add_service(os.path.join(r.dir, 'host.keytab'), service='host', hosts=('localhost',))
    r.cc = {}
    for name in ('alice', 'alice/admin', 'alice/ops'):
        k.add_user(name)
        r.cc[name] = k.kinit(name, os.path.join(r.dir, 'cc_' + name.replace('/', '_')))
    # python-gssapi reads these at first use
    os.environ['KRB5_CONFIG'] = k.conf
    os.environ['KRB5CCNAME'] = r.cc['alice']
    r.env = {'KRB5_CONFIG': k.conf, 'KRB5RCACHEDIR': k.rcache}
    return r


R = _realm()
import gssapi  # noqa: E402
import gssapi.exceptions  # noqa: E402

# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

SOCKS_PASS = 'socks pass { from: 0/0 to: 0/0 command: connect log: connect disconnect error }\n'


def gserver(client_opts='', socks=SOCKS_PASS, negotiate=5, io=0, keytab=None, enctype=None):
    """A server whose client rule selects gssapi; returns (Server, log path)."""
    d = tmpdir()
    opts = 'gssapi.keytab: %s' % (keytab or 'FILE:' + R.keytab)
    if enctype:
        opts += ' gssapi.enctype: %s' % enctype
    if client_opts:
        opts += ' ' + client_opts
    rules = ('client pass { from: 127.0.0.0/8 to: 0/0 %s log: connect error }\n'
             'client block { from: 0/0 to: 0/0 log: connect error }\n' % opts) + socks
    text = conf_text(os.path.join(d, 'sockd.log'), negotiate=negotiate, io=io, rules=rules)
    text = text.replace('socksmethod: none\n', 'socksmethod: gssapi\n')
    conf, log = make_conf(d, text)
    return Server(conf, env=R.env), log


def greet(srv, timeout=5):
    c = RawClient(srv.addr, timeout=timeout)
    port_of(c)
    m = c.greet((1,))
    if m != b'\x05\x01':
        raise AssertionError('method reply %r, expected 05 01' % m)
    return c


def open_gss(srv, level, who='alice', nec=False, target='rcmd@localhost', flags=None):
    """Greeting, context, protection level; returns (RawClient, GssClient)."""
    c = greet(srv)
    g = GssClient(c.sock, target=target, nec=nec, ccache=R.cc[who], flags=flags)
    g.establish()
    got = g.protect(level)
    if got != level:
        raise AssertionError('server answered level %r to %r' % (got, level))
    return c, g


class Plain:
    """The client's view of what the server sends after protection: plaintext, token by token.

    .encrypted: the set of confidentiality flags of the tokens seen."""

    def __init__(self, g):
        self.g = g
        self.buf = bytearray()
        self.encrypted = set()
        self.tokens = 0

    def _fill(self):
        if self.g.level == 0:
            d = self.g.sock.recv(1 << 16)
            self.buf += d
            return bool(d)
        hdr = b''
        while len(hdr) < 4:
            d = self.g.sock.recv(4 - len(hdr))
            if not d:
                if hdr:
                    raise EOFError('EOF inside a token header %r' % hdr)
                return False
            hdr += d
        ver, mtyp, n = struct.unpack('!BBH', hdr)
        if ver != 1 or mtyp != 3:
            raise AssertionError('server sent a message %r, expected mtyp 3' % hdr)
        r = self.g.ctx.unwrap(self.g.recv_exact(n))
        self.encrypted.add(r.encrypted)
        self.tokens += 1
        self.buf += r.message
        return True

    def exact(self, n):
        while len(self.buf) < n:
            if not self._fill():
                raise EOFError('EOF after %d of %d bytes' % (len(self.buf), n))
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def reply(self):
        head = self.exact(4)
        body = self.exact({1: 6, 4: 18}.get(head[3], 0))
        return head + body

    def drain(self, hasher):
        """Read until EOF; returns the byte count."""
        n = 0
        while True:
            if self.buf:
                hasher.update(self.buf)
                n += len(self.buf)
                self.buf.clear()
            if not self._fill():
                return n


def send_request(c, g, host, port, early=b''):
    """The SOCKS request (plus early data) as one token, or raw at level 0."""
    data = req_ipv4(host, port) + early
    if g.level == 0:
        c.send(data)
    else:
        c.send(g.wrap_msg(data))


def rest(c, timeout=5):
    """Bytes until EOF (or reset / timeout): (data, how)."""
    return c.recv_until_eof(timeout)


def port_of(c):
    if not hasattr(c, 'port'):
        c.port = c.local()[1]
    return c.port


def line_for(log, c, what, timeout=5):
    """The log line of kind what (pass, block, end) for client c."""
    got = wait_log(log, r'info: %s client=127\.0\.0\.1\.%d ' % (what, port_of(c)), timeout)
    return got[-1] if got else ''


def vm_peak_kib(pids, field='VmHWM'):
    best = 0
    for p in pids:
        st = proc_status(p) or {}
        v = st.get(field, '0 kB').split()[0]
        best = max(best, int(v))
    return best


def no_signal(codes):
    return codes and all(c in (0, 1) for c in codes)


def h_stall(c, rec, target):
    """Accept and never read (the session's writes to the target block)."""
    target.stopping.wait(30)


def flip(msg, at):
    b = bytearray(msg)
    b[at] ^= 0x01
    return bytes(b)


# --------------------------------------------------------------------------
# 1. levels, RFC framing, 1 MiB each way
# --------------------------------------------------------------------------

def transfer(level, what):
    up, down = os.urandom(1 << 20), os.urandom(1 << 20)
    tgt = Target(h_duplex(down))
    srv, log = gserver(enctype=ALL_LEVELS)
    c, g = open_gss(srv, level)
    is_(g.level, level, '%s: the server agrees to level %d' % (what, level))
    early = b'EARLY:' + os.urandom(8).hex().encode()
    send_request(c, g, '127.0.0.1', tgt.port, early)
    p = Plain(g)
    rep = p.reply()
    is_(rep[:2], b'\x05\x00', '%s: reply 00 (succeeded)' % what, rep.hex())
    if level:
        # the first token as big as the framing allows: exactly 65535 bytes
        first = g.ctx.get_wrap_size_limit(65535, level == 2)
        chunks = [up[:first]] + [up[i:i + 32768] for i in range(first, len(up), 32768)]
        msgs = [g.wrap_msg(x) for x in chunks]
        is_(len(msgs[0]) - 4, 65535, '%s: the client sends one 65535-byte token' % what)
        wire = b''.join(msgs)
    else:
        wire = up
    errors = []

    def sender():
        try:
            c.sock.sendall(wire)
            c.sock.shutdown(socket.SHUT_WR)
        except OSError as e:
            errors.append(e)
    t = threading.Thread(target=sender, daemon=True)
    t.start()
    h = hashlib.sha256()
    n = p.drain(h)
    t.join(20)
    ok(not errors, '%s: the client sent 1 MiB' % what, repr(errors))
    ok(tgt.wait_done(1, 20), '%s: the target connection ended' % what)
    rec = tgt.records[0] if tgt.records else None
    is_(rec and rec.nbytes, len(early) + len(up),
        '%s: the target received early data + 1 MiB' % what, repr(rec))
    is_(rec and rec.sha256, sha256(early + up),
        '%s: early data first and once, then 1 MiB byte for byte (sha256)' % what)
    is_(n, len(down), '%s: the client received 1 MiB' % what)
    is_(h.hexdigest(), sha256(down), '%s: the 1 MiB to the client byte for byte (sha256)' % what)
    if level:
        is_(p.encrypted, {level == 2},
            '%s: every token to the client is %s' % (what, 'encrypted' if level == 2
                                                      else 'integrity-only'))
    pas = line_for(log, c, 'pass')
    like(pas, r'method=gssapi user=alice@SOCKD\.TEST .*dest=127\.0\.0\.1\.%d' % tgt.port,
         '%s: the pass line names the principal' % what, read_log(log))
    end = line_for(log, c, 'end')
    like(end, r'user=alice@SOCKD\.TEST .*bytes_from_client=%d bytes_to_client=%d .*'
              r'reason="both sides closed"' % (len(early) + len(up), len(down)),
         '%s: the end line counts the plaintext both ways' % what, read_log(log))
    is_(srv.wait_exit_codes(1), [0], '%s: the session exits 0' % what, srv.stderr())


@test
def level_confidentiality():
    transfer(2, 'confidentiality')


@test
def level_integrity():
    transfer(1, 'integrity')


@test
def level_clear():
    transfer(0, 'clear')


@test
def clear_needs_clear_in_enctype():
    srv, log = gserver()          # default gssapi.enctype: integrity confidentiality
    c = greet(srv)
    g = GssClient(c.sock, ccache=R.cc['alice'])
    g.establish()
    g.send_msg(2, g.ctx.wrap(b'\x00', False).message)
    data, how = rest(c)
    is_(data, ABORT, 'level 0 under the default gssapi.enctype: 01 FF', how)
    ok(how in ('eof', 'reset'), 'and the connection is closed', how)
    like(line_for(log, c, 'block'), r'method=gssapi .*protection level 0 is not allowed',
         'logged: level 0 not allowed', read_log(log))
    is_(srv.wait_exit_codes(1), [1], 'the session exits 1', srv.stderr())


# --------------------------------------------------------------------------
# 2. NEC framing
# --------------------------------------------------------------------------

@test
def nec_framing():
    tgt = Target(h_echo)
    srv, log = gserver(client_opts='clientcompatibility: necgssapi')
    for level in (2, 1):
        c, g = open_gss(srv, level, nec=True)
        is_(g.level, level, 'NEC: raw 1-byte level %d answered raw' % level)
        blob = os.urandom(200000)
        send_request(c, g, '127.0.0.1', tgt.port, blob[:1000])
        p = Plain(g)
        is_(p.reply()[:2], b'\x05\x00', 'NEC level %d: reply 00' % level)
        c.send(b''.join(g.wrap_msg(blob[i:i + 30000]) for i in range(1000, len(blob), 30000)))
        c.shutdown_wr()
        got = p.exact(len(blob))
        ok(got == blob, 'NEC level %d: 200 kB echoed byte for byte' % level)
        like(line_for(log, c, 'pass'), r'method=gssapi user=alice@SOCKD\.TEST ',
             'NEC level %d: pass line with the principal' % level, read_log(log))
    # an RFC client on a necgssapi rule still works
    c, g = open_gss(srv, 2)
    send_request(c, g, '127.0.0.1', tgt.port, b'rfc')
    p = Plain(g)
    is_(p.reply()[:2], b'\x05\x00', 'necgssapi rule: an RFC-framed client still works')
    is_(p.exact(3), b'rfc', 'necgssapi rule: RFC client data echoed')
    c.close()
    ok(no_signal(srv.wait_exit_codes(3)), 'no session died of a signal', srv.stderr())


@test
def nec_refused_without_necgssapi():
    tgt = Target(h_echo)
    srv, log = gserver()
    c = greet(srv)
    g = GssClient(c.sock, ccache=R.cc['alice'], nec=True)
    g.establish()
    g.send_msg(2, b'\x02')        # raw, unwrapped: NEC style
    data, how = rest(c)
    is_(data, ABORT, 'a raw 1-byte level without necgssapi: 01 FF', how)
    ok(how in ('eof', 'reset'), 'and the connection is closed', how)
    like(line_for(log, c, 'block'), r'method=gssapi .*reason="gssapi \(service rcmd, keytab '
         r'FILE:[^)]*\): .*protection', 'logged as a protection-level failure', read_log(log))
    is_(srv.wait_exit_codes(1), [1], 'the session exits 1', srv.stderr())
    is_(len(tgt.records), 0, 'the target saw no connection')


# --------------------------------------------------------------------------
# 3. negative cases
# --------------------------------------------------------------------------

def empty_ccache(path, principal='alice'):
    """A FILE ccache (format 0x0504) naming principal, with no tickets at all."""
    def cs(b):
        return struct.pack('!I', len(b)) + b
    comps = principal.encode().split(b'/')
    with open(path, 'wb') as f:
        f.write(b'\x05\x04' + struct.pack('!H', 0) + struct.pack('!II', 1, len(comps))
                + cs(REALM.encode()) + b''.join(cs(x) for x in comps))
    return 'FILE:' + path


@test
def no_ticket():
    tgt = Target(h_echo)
    srv, log = gserver()
    cases = [('no ccache', 'FILE:' + os.path.join(R.dir, 'cc_nobody')),
             ('an empty ccache', empty_ccache(os.path.join(R.dir, 'cc_empty')))]
    for what, cc in cases:
        c = greet(srv)
        err = None
        try:
            g = GssClient(c.sock, ccache=cc)
            g.establish()
        except gssapi.exceptions.GSSError as e:
            err = e
        ok(err is not None, '%s: the client cannot start a context' % what, repr(err))
        like(str(err), r'(?i)credential|cache', '%s: the client error is about credentials' % what)
        c.close()
        blk = line_for(log, c, 'block')
        like(blk, r'method=gssapi .*client closed after 0 bytes',
             '%s: logged: the client closed before any token' % what, read_log(log))
    is_(srv.wait_exit_codes(2), [1, 1], 'the sessions exit 1 when the client goes away',
        srv.stderr())
    unlike(read_log(log), r'info: pass ', 'no pass line')
    is_(len(tgt.records), 0, 'the target saw nothing')


def refused_in_context(srv, log, what, reason_re, target='rcmd@localhost'):
    """The client sends its AP-REQ; the server answers 01 FF (after at most one
    mtyp 1 error token, which tells the client why) and closes."""
    c = greet(srv)
    g = GssClient(c.sock, target=target, ccache=R.cc['alice'])
    g.send_msg(1, g.ctx.step())
    data, how = rest(c)
    err = None
    if data[:2] == b'\x01\x01' and len(data) >= 4:
        n = struct.unpack('!H', data[2:4])[0]
        tok, data = data[4:4 + n], data[4 + n:]
        try:
            g.ctx.step(tok)
        except gssapi.exceptions.GSSError as e:
            err = e
        ok(err is not None, '%s: the mtyp 1 token the server sends is a Kerberos error' % what,
           'the client accepted it: %r' % tok)
    is_(data, ABORT, '%s: the server answers 01 FF' % what, how)
    ok(how in ('eof', 'reset'), '%s: then closes' % what, how)
    like(line_for(log, c, 'block'), r'method=gssapi .*reason="gssapi \(service \S+, keytab '
         r'[^)]*\): .*' + reason_re, '%s: logged with the Kerberos reason' % what, read_log(log))
    return c, err


@test
def wrong_service_client_side():
    tgt = Target(h_echo)
    srv, log = gserver()
    # host/localhost is in the realm (the client gets a ticket) but not in the keytab
    c, err = refused_in_context(srv, log, 'client asks for host@localhost',
                                r'gss_accept_sec_context: .*not found in keytab',
                                target='host@localhost')
    like(str(err), r"isn't for us|not found", 'the client learns the ticket was not for the server')
    is_(srv.wait_exit_codes(1), [1], 'the session exits 1', srv.stderr())
    is_(len(tgt.records), 0, 'the target saw nothing')


@test
def wrong_service_server_side():
    tgt = Target(h_echo)
    srv, log = gserver(client_opts='gssapi.servicename: other')
    refused_in_context(srv, log, 'gssapi.servicename: other',
                       r'acquiring acceptor credentials: .*No key table entry found matching other')
    like(read_log(log), r'service other,', 'the log names the service other')
    is_(srv.wait_exit_codes(1), [1], 'the session exits 1', srv.stderr())
    is_(len(tgt.records), 0, 'the target saw nothing')


@test
def wrong_keytab():
    tgt = Target(h_echo)
    d = tmpdir()
    # the same names from another KDC: other keys
    other = Kdc(os.path.join(d))
    try:
        kt2 = os.path.join(d, 'other.keytab')
        other.add_service(kt2)
    finally:
        other.stop()
    srv, log = gserver(keytab='FILE:' + kt2)
    refused_in_context(srv, log, 'keytab from another KDC',
                       r'gss_accept_sec_context: .*cannot decrypt ticket')
    like(read_log(log), r'keytab FILE:%s\)' % re.escape(kt2), 'the log names the keytab')
    srv2, log2 = gserver(keytab='FILE:/nonexistent/sockd.keytab')
    refused_in_context(srv2, log2, 'missing keytab file',
                       r"acquiring acceptor credentials: .*Key table file '/nonexistent/sockd\.keytab' "
                       r"not found")
    like(read_log(log2), r'keytab FILE:/nonexistent/sockd\.keytab\)', 'the log names the keytab')
    is_(srv.wait_exit_codes(1), [1], 'the session exits 1 (other keytab)', srv.stderr())
    is_(srv2.wait_exit_codes(1), [1], 'the session exits 1 (missing keytab)', srv2.stderr())
    is_(len(tgt.records), 0, 'the target saw nothing')


def refused_level(srv, log, level, what, reason_re):
    c = greet(srv)
    g = GssClient(c.sock, ccache=R.cc['alice'])
    g.establish()
    g.send_msg(2, g.ctx.wrap(bytes([level]), False).message)
    data, how = rest(c)
    is_(data, ABORT, '%s: 01 FF' % what, how)
    ok(how in ('eof', 'reset'), '%s: then closed' % what, how)
    like(line_for(log, c, 'block'), r'method=gssapi .*' + reason_re,
         '%s: logged' % what, read_log(log))


@test
def forbidden_levels():
    tgt = Target(h_echo)
    srv, log = gserver(enctype='confidentiality')
    refused_level(srv, log, 1, 'level 1 under gssapi.enctype: confidentiality',
                  r'protection level 1 is not allowed')
    refused_level(srv, log, 0, 'level 0 under gssapi.enctype: confidentiality',
                  r'protection level 0 is not allowed')
    srv2, log2 = gserver(enctype=ALL_LEVELS)
    refused_level(srv2, log2, 3, 'level 3 (per-message)', r'protection level 3 is not allowed')
    refused_level(srv2, log2, 0xff, 'level 255', r'protection level 255 is not allowed')
    # a level that is allowed, but the context lacks replay and sequence detection
    f = gssapi.RequirementFlag
    c = greet(srv2)
    g = GssClient(c.sock, ccache=R.cc['alice'],
                  flags=f.mutual_authentication | f.integrity | f.confidentiality)
    g.establish()
    g.send_msg(2, g.ctx.wrap(b'\x01', False).message)
    data, how = rest(c)
    is_(data, ABORT, 'a context without replay/sequence detection: level 1 refused with 01 FF')
    like(line_for(log2, c, 'block'), r'lacks integrity, replay or sequence',
         'logged: the context lacks the flags', read_log(log2))
    ok(no_signal(srv.wait_exit_codes(2)) and srv.exit_codes() == [1, 1],
       'the sessions exit 1', srv.stderr())
    ok(srv2.wait_exit_codes(3) == [1, 1, 1], 'the sessions exit 1', srv2.stderr())
    is_(len(tgt.records), 0, 'the target saw nothing')


# --------------------------------------------------------------------------
# 4. bad input
# --------------------------------------------------------------------------

@test
def bad_input_context_phase():
    tgt = Target(h_echo)
    srv, log = gserver(negotiate=2)
    cases = [
        ('a zero-length mtyp 1 token', b'\x01\x01\x00\x00'),
        ('a 65535-byte garbage mtyp 1 token', b'\x01\x01\xff\xff' + os.urandom(65535)),
        ('wrong version byte', b'\x05\x01\x00\x04abcd'),
        ('version 0', b'\x00\x01\x00\x04abcd'),
        ('mtyp 2 instead of 1', b'\x01\x02\x00\x04abcd'),
        ('mtyp 3 instead of 1', b'\x01\x03\x00\x04abcd'),
        ('client abort (01 FF) instead of a token', ABORT),
    ]
    n = 0
    for what, raw in cases:
        c = greet(srv)
        t0 = time.monotonic()
        c.send(raw)
        data, how = rest(c)
        dt = time.monotonic() - t0
        ok(data in (b'', ABORT) and how in ('eof', 'reset'),
           '%s: 01 FF (at most) and closed' % what, repr((data[:20], how)))
        cmp_ok(dt, '<', 1.5, '%s: refused at once, not by timeout' % what)
        like(line_for(log, c, 'block'), r'method=gssapi .*reason="gssapi ',
             '%s: a block line with the reason' % what, read_log(log))
        n += 1
    # a length header with fewer bytes behind it, then close
    c = greet(srv)
    c.send(b'\x01\x01\x00\x40' + b'x' * 10)
    c.shutdown_wr()
    data, how = rest(c)
    ok(data in (b'', ABORT) and how in ('eof', 'reset'), 'a short token then EOF: closed',
       repr((data, how)))
    like(line_for(log, c, 'block'), r'GSSAPI: client closed after \d+ bytes',
         'a short token then EOF: logged', read_log(log))
    n += 1
    codes = srv.wait_exit_codes(n)
    ok(codes and codes == [1] * n, 'every session exits 1 (no signal)', repr(codes), srv.stderr())
    is_(len(tgt.records), 0, 'the target saw nothing')


@test
def short_token_then_silence():
    tgt = Target(h_echo)
    srv, log = gserver(negotiate=2)
    c = greet(srv)
    t0 = time.monotonic()
    # promise a 65535-byte token, send most of it, then nothing
    c.send(b'\x01\x01\xff\xff' + os.urandom(60000))
    pids = srv.sessions()
    time.sleep(0.5)
    hwm = vm_peak_kib(pids)
    data, how = rest(c, timeout=6)
    dt = time.monotonic() - t0
    ok(how in ('eof', 'reset'), 'the session closes a stalled token', repr((data, how)))
    ok(1.5 <= dt <= 4.5, 'after timeout.negotiate (2 s)', 'took %.2f s' % dt)
    like(line_for(log, c, 'block'), r'timeout\.negotiate expired after \d+ bytes',
         'logged: timeout.negotiate expired', read_log(log))
    ok(0 < hwm < 64 * 1024, 'memory bounded while waiting (VmHWM %d kB)' % hwm)
    is_(srv.wait_exit_codes(1), [1], 'the session exits 1', srv.stderr())
    is_(len(tgt.records), 0, 'the target saw nothing')


@test
def bad_input_protection_phase():
    tgt = Target(h_echo)
    srv, log = gserver(negotiate=2, enctype=ALL_LEVELS)
    cases = [
        ('a zero-length mtyp 2', lambda g: b'\x01\x02\x00\x00'),
        ('a garbage mtyp 2 token', lambda g: b'\x01\x02\x00\x20' + os.urandom(32)),
        ('mtyp 1 instead of 2', lambda g: b'\x01\x01\x00\x01\x02'),
        ('mtyp 3 instead of 2', lambda g: g.wrap_msg(b'\x02', False)),
        ('the level wrapped with confidentiality',
         lambda g: (lambda t: struct.pack('!BBH', 1, 2, len(t)) + t)(
             g.ctx.wrap(b'\x02', True).message)),
        ('two bytes of level', lambda g: (lambda t: struct.pack('!BBH', 1, 2, len(t)) + t)(
            g.ctx.wrap(b'\x02\x02', False).message)),
    ]
    for what, make in cases:
        c = greet(srv)
        g = GssClient(c.sock, ccache=R.cc['alice'])
        g.establish()
        c.send(make(g))
        data, how = rest(c)
        ok(data in (b'', ABORT) and how in ('eof', 'reset'),
           '%s: 01 FF (at most) and closed' % what, repr((data[:20], how)))
        like(line_for(log, c, 'block'), r'method=gssapi .*reason="gssapi ',
             '%s: a block line with the reason' % what, read_log(log))
    codes = srv.wait_exit_codes(len(cases))
    ok(codes and codes == [1] * len(cases), 'every session exits 1', repr(codes), srv.stderr())
    is_(len(tgt.records), 0, 'the target saw nothing')


def data_phase_case(srv, log, tgt, idx, level, what, bad, expect_after=b'',
                    reason=r'bad GSSAPI token from client'):
    """Connect, relay GOOD, then send bad(g); the session must end and the target see
    exactly GOOD + expect_after (the good part of what was sent)."""
    c, g = open_gss(srv, level)
    send_request(c, g, '127.0.0.1', tgt.port)
    p = Plain(g)
    is_(p.reply()[:2], b'\x05\x00', '%s: reply 00' % what)
    c.send(g.wrap_msg(b'GOOD'))
    ok(tgt.wait_conns(idx + 1) and
       wait_for(lambda: bytes(tgt.records[idx].data) == b'GOOD', 5),
       '%s: a good token is relayed first' % what)
    c.send(bad(g))
    data, how = rest(c)
    ok(how in ('eof', 'reset'), '%s: the session ends' % what, repr((data[:40], how)))
    ok(tgt.wait_done(idx + 1, 5), '%s: the target connection is closed' % what)
    rec = tgt.records[idx]
    is_(bytes(rec.data), b'GOOD' + expect_after,
        '%s: nothing of the bad token reached the target' % what)
    like(line_for(log, c, 'end'), r'method=gssapi .*reason="%s"' % reason,
         '%s: the end line gives the reason' % what, read_log(log))


@test
def bad_input_data_phase():
    tgt = Target(h_sink)
    srv, log = gserver(enctype=ALL_LEVELS)
    cases = []

    def tamper(g):
        m = g.wrap_msg(b'BAD-DATA' * 4)
        return flip(m, len(m) // 2)
    cases.append((2, 'level 2: a tampered token', tamper, b'', None))

    def tamper_plain(g):
        m = g.wrap_msg(b'BAD-DATA' * 4)
        at = m.index(b'BAD-DATA')       # integrity only: the plaintext is in the token
        return flip(m, at)
    cases.append((1, 'level 1: a token with a flipped plaintext byte', tamper_plain, b'', None))

    def tamper_mic(g):
        return flip(g.wrap_msg(b'BAD-DATA'), -1)
    cases.append((1, 'level 1: a token with a flipped checksum byte', tamper_mic, b'', None))

    def dup(g):
        m = g.wrap_msg(b'ONCE')
        return m + m
    cases.append((2, 'level 2: the same token twice', dup, b'ONCE', None))
    cases.append((1, 'level 1: the same token twice', dup, b'ONCE', None))

    def reorder(g):
        a, b = g.wrap_msg(b'FIRST'), g.wrap_msg(b'SECOND')
        return b + a
    cases.append((2, 'level 2: tokens out of order', reorder, b'', None))

    def noconf(g):
        return g.wrap_msg(b'PLAINTEXT', False)
    cases.append((2, 'level 2: a token without confidentiality', noconf, b'', None))

    def zero(g):
        return b'\x01\x03\x00\x00'
    cases.append((2, 'level 2: a zero-length mtyp 3 token', zero, b'',
                  r'bad GSSAPI (token|framing) from client'))

    def badver(g):
        m = g.wrap_msg(b'BADVERSION')
        return b'\x02' + m[1:]
    cases.append((2, 'level 2: a token with version 2', badver, b'',
                  r'bad GSSAPI framing from client'))

    def badmtyp(g):
        m = g.wrap_msg(b'BADMTYP')
        return m[:1] + b'\x01' + m[2:]
    cases.append((2, 'level 2: a data token as mtyp 1', badmtyp, b'',
                  r'bad GSSAPI framing from client'))

    def garbage(g):
        return b'\x01\x03\xff\xff' + os.urandom(65535)
    cases.append((1, 'level 1: a 65535-byte garbage token', garbage, b'', None))

    def abort(g):
        return ABORT
    cases.append((2, 'level 2: the client sends 01 FF', abort, b'', r'client aborted GSSAPI'))

    for idx, (level, what, bad, after, reason) in enumerate(cases):
        data_phase_case(srv, log, tgt, idx, level, what, bad, after,
                        reason or r'bad GSSAPI token from client')
    codes = srv.wait_exit_codes(len(cases))
    ok(no_signal(codes) and len(codes) == len(cases), 'no session died of a signal (exit 0 or 1)',
       repr(codes), srv.stderr())


@test
def bad_request_token():
    tgt = Target(h_sink)
    srv, log = gserver(enctype=ALL_LEVELS)
    # a tampered request token: no connection to the target
    c, g = open_gss(srv, 2)
    c.send(flip(g.wrap_msg(req_ipv4('127.0.0.1', tgt.port) + b'early'), -3))
    data, how = rest(c)
    ok(how in ('eof', 'reset'), 'a tampered request token: closed', repr((data, how)))
    ok(line_for(log, c, 'block'), 'a tampered request token: a block line', read_log(log))
    # a plain SOCKS request where a token must be
    c, g = open_gss(srv, 1)
    c.send(req_ipv4('127.0.0.1', tgt.port))
    data, how = rest(c)
    ok(how in ('eof', 'reset'), 'a raw request under integrity: closed', repr((data, how)))
    ok(line_for(log, c, 'block'), 'a raw request under integrity: a block line', read_log(log))
    # a token whose plaintext is not a whole request
    c, g = open_gss(srv, 2)
    c.send(g.wrap_msg(b'\x05\x01\x00'))
    p = Plain(g)
    try:
        rep = p.reply()
    except (EOFError, OSError) as e:
        rep = repr(e)
    ok(isinstance(rep, bytes) and rep[:2] == b'\x05\x01' or rep == b'' or 'EOF' in str(rep),
       'a truncated request in its token: failure reply (wrapped) or close', repr(rep))
    ok(line_for(log, c, 'block'), 'a truncated request: a block line', read_log(log))
    codes = srv.wait_exit_codes(3)
    ok(no_signal(codes) and len(codes) == 3, 'no session died of a signal', repr(codes))
    is_(len(tgt.records), 0, 'the target saw no connection')


@test
def memory_bounded_when_target_stalls():
    tgt = Target(h_stall)
    srv, log = gserver()
    c, g = open_gss(srv, 2)
    send_request(c, g, '127.0.0.1', tgt.port)
    p = Plain(g)
    is_(p.reply()[:2], b'\x05\x00', 'reply 00')
    chunk = g.ctx.get_wrap_size_limit(65535, True)
    blob = os.urandom(chunk)
    msgs = [g.wrap_msg(blob) for _ in range(320)]   # ~20 MiB
    sent = [0]

    def sender():
        c.sock.settimeout(1.0)
        try:
            for m in msgs:
                c.sock.sendall(m)
                sent[0] += len(m)
        except OSError:
            pass
    t = threading.Thread(target=sender, daemon=True)
    t.start()
    t.join(15)
    pids = srv.sessions()
    hwm = vm_peak_kib(pids)
    cmp_ok(sent[0], '<', sum(map(len, msgs)), 'the client is held back (%d bytes taken)' % sent[0])
    ok(0 < hwm < 64 * 1024, 'the session buffers a bounded amount (VmHWM %d kB)' % hwm)
    c.close()


@test
def half_close_and_io_timeout():
    # the client half-closes; the target answers only after EOF: the answer still arrives
    answer = os.urandom(300000)
    tgt = Target(h_read_then_reply(answer))
    srv, log = gserver(io=1)
    c, g = open_gss(srv, 2)
    send_request(c, g, '127.0.0.1', tgt.port, b'question')
    p = Plain(g)
    is_(p.reply()[:2], b'\x05\x00', 'half-close: reply 00')
    c.shutdown_wr()
    h = hashlib.sha256()
    n = p.drain(h)
    ok(n == len(answer) and h.hexdigest() == sha256(answer),
       'half-close: the answer sent after the client\'s EOF arrives whole (%d bytes)' % n)
    ok(tgt.wait_done(1) and bytes(tgt.records[0].data) == b'question' and tgt.records[0].eof,
       'half-close: the target got the data, then EOF', repr(tgt.records))
    like(line_for(log, c, 'end'), r'reason="both sides closed"', 'half-close: a clean end',
         read_log(log))
    # an idle protected session ends after timeout.io
    tgt2 = Target(h_silent)
    c, g = open_gss(srv, 1)
    send_request(c, g, '127.0.0.1', tgt2.port)
    p = Plain(g)
    is_(p.reply()[:2], b'\x05\x00', 'idle: reply 00')
    t0 = time.monotonic()
    data, how = rest(c, timeout=5)
    dt = time.monotonic() - t0
    ok(how in ('eof', 'reset') and 0.5 <= dt <= 3.5,
       'idle: the session ends after timeout.io (1 s)', '%s after %.2f s' % (how, dt))
    like(line_for(log, c, 'end'), r'reason="timeout\.io expired"', 'idle: logged', read_log(log))
    is_(srv.wait_exit_codes(2), [0, 0], 'the sessions exit 0', srv.stderr())


# --------------------------------------------------------------------------
# 5. user: rules
# --------------------------------------------------------------------------

@test
def user_rules():
    tgt = Target(h_echo)
    socks = ('socks pass { from: 0/0 to: 0/0 command: connect socksmethod: gssapi user: alice '
             'log: connect disconnect error }\n'
             'socks pass { from: 0/0 to: 0/0 command: connect socksmethod: gssapi user: bob '
             'log: connect disconnect error }\n'
             'socks block { from: 0/0 to: 0/0 log: connect error }\n')
    srv, log = gserver(socks=socks, enctype=ALL_LEVELS)
    # alice@SOCKD.TEST maps to alice
    c, g = open_gss(srv, 2, who='alice')
    send_request(c, g, '127.0.0.1', tgt.port, b'hi alice')
    p = Plain(g)
    is_(p.reply()[:2], b'\x05\x00', 'user: alice passes alice@SOCKD.TEST')
    is_(p.exact(8), b'hi alice', 'alice: data relayed')
    like(line_for(log, c, 'pass'), r'user=alice@SOCKD\.TEST .*socks-rule=#1\b',
         'alice: pass by the first socks rule', read_log(log))
    c.close()
    # alice/ops@SOCKD.TEST maps to bob by the auth_to_local rule
    c, g = open_gss(srv, 1, who='alice/ops')
    send_request(c, g, '127.0.0.1', tgt.port, b'hi bob')
    p = Plain(g)
    is_(p.reply()[:2], b'\x05\x00', 'user: bob passes alice/ops@SOCKD.TEST (auth_to_local)')
    is_(p.exact(6), b'hi bob', 'alice/ops: data relayed')
    like(line_for(log, c, 'pass'), r'user=alice/ops@SOCKD\.TEST .*socks-rule=#2\b',
         'alice/ops: the log names the principal, pass by the user: bob rule', read_log(log))
    c.close()
    # alice/admin@SOCKD.TEST maps to no local name: no user: rule matches
    for level in (2, 1, 0):
        c, g = open_gss(srv, level, who='alice/admin')
        send_request(c, g, '127.0.0.1', tgt.port, b'never')
        p = Plain(g)
        try:
            rep = p.reply()
        except (EOFError, OSError) as e:
            rep = repr(e)
        is_(rep[:2] if isinstance(rep, bytes) else rep, b'\x05\x02',
            'alice/admin (unmapped), level %d: reply 02%s' % (level, ' (wrapped)' if level else ''))
        if level:
            is_(p.encrypted, {level == 2}, 'level %d: the reply came as a level-%d token'
                % (level, level))
        data, how = rest(c)
        ok(how in ('eof', 'reset'), 'alice/admin, level %d: then closed' % level, how)
        like(line_for(log, c, 'block'), r'user=alice/admin@SOCKD\.TEST ',
             'alice/admin, level %d: block line names the principal' % level, read_log(log))
    is_(len(tgt.records), 2, 'the target saw only alice and alice/ops')
    ok(no_signal(srv.wait_exit_codes(5)), 'no session died of a signal', srv.stderr())


# --------------------------------------------------------------------------
# 6. the replay cache
# --------------------------------------------------------------------------

@test
def replay_cache_shared():
    tgt = Target(h_echo)
    srv, log = gserver()
    c, g = open_gss(srv, 2)
    send_request(c, g, '127.0.0.1', tgt.port, b'x')
    p = Plain(g)
    is_(p.reply()[:2], b'\x05\x00', 'a session succeeds')
    c.close()
    ok(wait_for(lambda: os.listdir(R.kdc.rcache), 5),
       'the replay cache has files in KRB5RCACHEDIR', repr(os.listdir(R.kdc.rcache)))
    # the same AP-REQ to a new session (a new process): the shared cache refuses it
    apreq = g.sent[0]
    c2 = greet(srv)
    c2.send(struct.pack('!BBH', 1, 1, len(apreq)) + apreq)
    data, how = rest(c2)
    ok(data.endswith(ABORT) and how in ('eof', 'reset'),
       'a replayed AP-REQ to a new session: (error token,) 01 FF, closed', repr((data, how)))
    # RFC 1964 token id 03 00 after the krb5 OID: KRB_ERROR (an AP-REP would be 02 00)
    ok(not data.startswith(b'\x01\x01') or
       b'\x2a\x86\x48\x86\xf7\x12\x01\x02\x02\x03\x00' in data[:40],
       'no AP-REP: what comes before 01 FF is a KRB-ERROR token', data.hex())
    like(line_for(log, c2, 'block'), r'gss_accept_sec_context: .*Request is a replay',
         'logged as a replay', read_log(log))
    unlike('\n'.join(log_lines(log, r'info: pass client=127\.0\.0\.1\.%d ' % port_of(c2))),
           r'pass', 'no pass for the replayed AP-REQ')
    is_(len(tgt.records), 1, 'the target saw only the first session')


main(time_limit=120)
