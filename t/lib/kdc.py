"""A throwaway MIT KDC on loopback, and an RFC 1961 (SOCKS5 GSSAPI) client.

Kdc(tmpdir) creates a realm in the directory, starts krb5kdc on a free
loopback port and gives every Kerberos-using process a private KRB5_CONFIG
(installing krb5 writes an /etc/krb5.conf that points at public KDCs).
"""
import os
import socket
import struct
import subprocess
import time

REALM = 'SOCKD.TEST'


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class Kdc:
    def __init__(self, d, auth_to_local=None):
        self.dir = d
        self.port = _free_port()
        self.conf = os.path.join(d, 'krb5.conf')
        self.kdcconf = os.path.join(d, 'kdc.conf')
        self.rcache = os.path.join(d, 'rcache')
        os.makedirs(self.rcache, exist_ok=True)
        os.chmod(self.rcache, 0o1777)
        a2l = ''.join('\t\tauth_to_local = %s\n' % r for r in (auth_to_local or []))
        if a2l:
            a2l += '\t\tauth_to_local = DEFAULT\n'
        with open(self.conf, 'w') as f:
            f.write('[libdefaults]\n\tdefault_realm = %s\n\tdns_lookup_kdc = false\n'
                    '\tdns_lookup_realm = false\n\tdns_canonicalize_hostname = false\n'
                    '\trdns = false\n\tudp_preference_limit = 1\n'
                    '[realms]\n\t%s = {\n\t\tkdc = 127.0.0.1:%d\n%s\t}\n'
                    % (REALM, REALM, self.port, a2l))
        with open(self.kdcconf, 'w') as f:
            f.write('[kdcdefaults]\n\tkdc_listen = 127.0.0.1:%d\n\tkdc_tcp_listen = 127.0.0.1:%d\n'
                    '[realms]\n\t%s = {\n\t\tdatabase_name = %s/principal\n'
                    '\t\tkey_stash_file = %s/stash\n\t\tacl_file = %s/kadm5.acl\n\t}\n'
                    '[logging]\n\tkdc = FILE:%s/kdc.log\n'
                    % (self.port, self.port, REALM, d, d, d, d))
        os.chmod(self.conf, 0o644)
        self.env = dict(os.environ, KRB5_CONFIG=self.conf, KRB5_KDC_PROFILE=self.kdcconf,
                        KRB5RCACHEDIR=self.rcache, KRB5CCNAME='FILE:%s/ccache' % d)
        self._run(['kdb5_util', 'create', '-s', '-r', REALM, '-P', 'masterpw'])
        self.proc = subprocess.Popen(['krb5kdc', '-n', '-r', REALM], env=self.env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(('127.0.0.1', self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError('krb5kdc does not listen')

    def _run(self, argv, input=None):
        r = subprocess.run(argv, env=self.env, input=input, capture_output=True, text=True,
                           timeout=30)
        if r.returncode != 0:
            raise RuntimeError('%s: %s %s' % (' '.join(argv), r.stdout, r.stderr))
        return r

    def kadmin(self, q):
        return self._run(['kadmin.local', '-r', REALM, '-q', q])

    def add_service(self, keytab, service='rcmd', hosts=('localhost', '127.0.0.1')):
        for h in hosts:
            self.kadmin('addprinc -randkey %s/%s' % (service, h))
            self.kadmin('ktadd -k %s %s/%s' % (keytab, service, h))
        os.chmod(keytab, 0o600)

    def add_user(self, name, password='userpw'):
        self.kadmin('addprinc -pw %s %s' % (password, name))

    def kinit(self, name, ccache, password='userpw'):
        env = dict(self.env, KRB5CCNAME='FILE:' + ccache)
        r = subprocess.run(['kinit', name], env=env, input=password + '\n',
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise RuntimeError('kinit %s: %s' % (name, r.stderr))
        return 'FILE:' + ccache

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class GssClient:
    """RFC 1961 on a connected socket, with python3-gssapi.

    Use in a process whose environment has KRB5_CONFIG and KRB5CCNAME set
    (gssapi reads them at first use)."""

    def __init__(self, sock, target='rcmd@localhost', nec=False, ccache=None, flags=None):
        """ccache: take the initiator's credentials from this ccache (e.g.
        'FILE:/path', a nonexistent one for "no ticket") instead of the
        default one; flags: the gssapi.RequirementFlag set to request
        (default mutual, replay, sequence, integrity, confidentiality)."""
        import gssapi
        self.gssapi = gssapi
        self.sock = sock
        self.nec = nec
        self.sent = []          # the mtyp 1 tokens sent, in order
        name = gssapi.Name(target, gssapi.NameType.hostbased_service)
        f = gssapi.RequirementFlag
        if flags is None:
            flags = (f.mutual_authentication | f.replay_detection | f.out_of_sequence_detection
                     | f.integrity | f.confidentiality)
        creds = None
        if ccache is not None:
            creds = gssapi.Credentials(usage='initiate', store={'ccache': ccache})
        self.ctx = gssapi.SecurityContext(name=name, usage='initiate', flags=flags, creds=creds)
        self.level = None

    def recv_exact(self, n):
        buf = b''
        while len(buf) < n:
            d = self.sock.recv(n - len(buf))
            if not d:
                raise EOFError('EOF after %d of %d bytes' % (len(buf), n))
            buf += d
        return buf

    def send_msg(self, mtyp, token):
        self.sock.sendall(struct.pack('!BBH', 1, mtyp, len(token)) + token)

    def recv_msg(self, mtyp):
        hdr = self.recv_exact(2)
        if hdr == b'\x01\xff':
            raise RuntimeError('server aborted GSSAPI')
        ver, t = hdr
        (n,) = struct.unpack('!H', self.recv_exact(2))
        if ver != 1 or t != mtyp:
            raise RuntimeError('unexpected message %r type %d' % (ver, t))
        return self.recv_exact(n)

    def establish(self):
        token = self.ctx.step()
        while True:
            self.sent.append(token)
            self.send_msg(1, token)
            if self.ctx.complete:
                break
            token = self.ctx.step(self.recv_msg(1))
            if self.ctx.complete and not token:
                break
            if not token:
                token = b''

    def protect(self, level):
        if self.nec:
            self.send_msg(2, bytes([level]))
            got = self.recv_msg(2)
            self.level = got[0]
        else:
            w = self.ctx.wrap(bytes([level]), False).message
            self.send_msg(2, w)
            got = self.ctx.unwrap(self.recv_msg(2)).message
            self.level = got[0]
        return self.level

    def send_data(self, data):
        if self.level == 0:
            self.sock.sendall(data)
            return
        for i in range(0, len(data), 32768):
            self.send_msg(3, self.ctx.wrap(data[i:i + 32768], self.level == 2).message)

    def wrap_msg(self, data, conf=None):
        """One whole mtyp 3 message (header + token) for data; conf defaults to level == 2."""
        if conf is None:
            conf = self.level == 2
        tok = self.ctx.wrap(data, conf).message
        return struct.pack('!BBH', 1, 3, len(tok)) + tok

    def recv_data(self):
        """One token's plaintext (level > 0), or one recv (level 0); b'' at EOF."""
        if self.level == 0:
            return self.sock.recv(65536)
        try:
            hdr = self.recv_exact(4)
        except EOFError:
            return b''
        (n,) = struct.unpack('!H', hdr[2:])
        tok = self.recv_exact(n)
        r = self.ctx.unwrap(tok)
        if self.level == 2 and not r.encrypted:
            raise RuntimeError('level 2 token without confidentiality')
        return r.message
