#!/usr/bin/python3
"""sockd-check and sockd-session agree: every case of t/conf/check.cases that
a real client can make here (method none, addresses not names) is run through
sockd-check -C and through a real sockd-session with the same rules file; the
verdict and the deciding rule (file:line) must be the same.  Then again with
the rules compiled (sockd-check --compile): the session takes the image, and
the answers stay the same."""
import os
import re
import shutil
import socket
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
from sockdtest import *  # noqa: E402,F403

CHECK = os.path.join(BUILD, 'sockd-check', 'sockd-check')
CONF = os.path.join(CONFDIR, 'check.conf')
# addresses the cases use, given to lo inside this test's own namespace
EXTRA_ADDRS = ['198.51.100.7/32', '10.1.2.3/32', '192.0.2.1/32', '192.0.2.5/32']


def parse_cases():
    cases = []
    with open(os.path.join(CONFDIR, 'check.cases')) as fh:
        for n, line in enumerate(fh, 1):
            line = line.split('#')[0].strip()
            if not line:
                continue
            spec = line.split()[1]
            kv = dict(p.split('=', 1) for p in spec.split(','))
            cases.append((n, spec, kv))
    return cases


def check_verdict(conf, spec):
    r = run([CHECK, '-f', conf, '-C', spec])
    first = r.stdout.decode().split('\n')[0]
    m = re.match(r'^(pass|block) (?:(?:client|socks)-rule #\d+ \S+:(\d+)|default)', first)
    return (m.group(1), m.group(2) or 'default') if m else (None, first)


def socks_request(kv):
    to, port = kv['to'], int(kv['port'])
    if kv.get('version') == '4':
        return b'\x04\x01' + struct.pack('!H', port) + socket.inet_aton(to) + b'agree\x00'
    if ':' in to:
        addr = b'\x04' + socket.inet_pton(socket.AF_INET6, to)
    else:
        addr = b'\x01' + socket.inet_aton(to)
    return b'\x05\x01\x00' + addr + struct.pack('!H', port)


def real_verdict(kv):
    """Returns 'pass' or 'block' as a client sees it, and the client's source port."""
    fam = socket.AF_INET6 if ':' in kv['laddr'] else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(5)
    s.bind((kv['from'], 0))
    s.connect((kv['laddr'], int(kv['lport'])))
    sport = s.getsockname()[1]
    try:
        if kv.get('version') == '4':
            s.sendall(socks_request(kv))
            rep = s.recv(8)
            return ('pass' if len(rep) == 8 and rep[1] == 0x5a else 'block'), sport
        s.sendall(b'\x05\x01\x00')
        m = s.recv(2)
        if m != b'\x05\x00':
            return 'block', sport
        s.sendall(socks_request(kv))
        rep = s.recv(4)
        return ('pass' if len(rep) == 4 and rep[1] == 0 else 'block'), sport
    except (ConnectionError, socket.timeout):
        return 'block', sport
    finally:
        s.close()


def logged_rule(server, client, sport):
    """The rule line the session logged for this client (or 'default')."""
    host = client
    pat = re.compile(r'client=%s\.%d .*?rule=(?:\S+:(\d+)|(default))' % (re.escape(host), sport))
    text = wait_for(lambda: pat.search(server.stderr()) and server.stderr(), 5) or ''
    m = pat.search(text)
    return (m.group(1) or m.group(2)) if m else None


def agree(conf, args=None):
    """Runs every comparable case against sockd-check and a real session on
    CONF; returns the servers' logs."""
    servers, targets = {}, {}
    compared = 0
    for n, spec, kv in parse_cases():
        if kv.get('method', 'none') != 'none' or 'addrs' in kv or \
                kv.get('command', 'connect') != 'connect':
            continue   # needs authentication, names or BIND: not here yet
        want = check_verdict(conf, spec)
        key = (kv['laddr'], int(kv['lport']))
        if key not in servers:
            servers[key] = Server(conf, host=key[0], port=key[1], args=args)
        tkey = (kv['to'], int(kv['port']))
        if tkey not in targets:
            targets[tkey] = Target(h_echo, host=tkey[0], port=tkey[1])
        got, sport = real_verdict(kv)
        line = logged_rule(servers[key], kv['from'], sport)
        ok(want[0] == got and want[1] == line,
           'case line %d: sockd-check says %s at %s, the session did %s at %s'
           % (n, want[0], want[1], got, line), servers[key].stderr()[-2000:])
        compared += 1
    cmp_ok(compared, '>=', 12, 'compared %d cases' % compared)
    return ''.join(s.stderr() for s in servers.values())


@test
def check_and_session_agree():
    for a in EXTRA_ADDRS:
        r = run(['ip', 'addr', 'add', a, 'dev', 'lo'])
        is_(r.returncode, 0, 'address %s on lo (private namespace)' % a, r.stderr)
    agree(CONF)


def agree_from_image(conf):
    """Compiles CONF and runs the agreement from its image."""
    r = run([CHECK, '-f', conf, '--compile'])
    is_(r.returncode, 0, 'sockd-check --compile', r.stderr)
    return agree(conf, args=['-d', '-f', conf])


@test
def agree_from_compiled_image():
    conf = os.path.join(tmpdir(), 'check.conf')
    shutil.copy(CONF, conf)
    logs = agree_from_image(conf)
    like(logs, r'rules: %s\.compiled' % re.escape(conf),
         'the sessions took the compiled image')
    unlike(logs, r'not used', 'no session fell back to the text')


@test
def agree_from_large_compiled_image():
    # an image too large to be read whole at start: the session reads the
    # rules it needs one by one, after it has dropped its privileges and
    # closed what it does not need (the image's descriptor must stay)
    conf = os.path.join(tmpdir(), 'check.conf')
    with open(CONF) as fh:
        text = fh.read()
    with open(conf, 'w') as fh:
        fh.write(text + ''.join('socks block { from: 203.0.113.%d/32 to: 0/0 }\n'
                                % i for i in range(200)))
    logs = agree_from_image(conf)
    cmp_ok(os.path.getsize(conf + '.compiled'), '>', 100000, 'a large image')
    like(logs, r'rules: %s\.compiled' % re.escape(conf),
         'the sessions took the compiled image')
    unlike(logs, r'not used', 'no session fell back: every rule read as needed')


@test
def relay_after_the_image_fell_back():
    # a client decision that visits more than 64 rules reads the whole
    # image instead, and stops reading rule by rule; the image's descriptor
    # is closed then, once: the session closes what it does not need and
    # its next socket may take that number, which freeing the rules must
    # not close again (the relay would lose its target)
    d = tmpdir()
    conf = os.path.join(d, 'many.conf')
    log = os.path.join(d, 'sockd.log')
    with open(conf, 'w') as fh:
        fh.write(conf_text(log, rules=''.join(
            'client block { from: 0/0 port = 1 to: 0/0 }\n' for _ in range(80))
            + 'client pass { from: 0/0 to: 0/0 }\n'
            'socks pass { from: 0/0 to: 0/0 log: connect disconnect }\n'))
    r = run([CHECK, '-f', conf, '--compile'])
    is_(r.returncode, 0, 'sockd-check --compile', r.stderr)
    t = Target(h_echo)
    with Server(conf, args=['-d', '-f', conf]) as srv:
        c, m, rep = socks_connect(srv.addr, '127.0.0.1', t.port)
        is_(rep.rep, 0, 'CONNECT granted by client-rule 81 (after 80 visited)')
        c.send(b'through')
        is_(c.recv_exact(7), b'through', 'and the relay carries data both ways')
        c.close()
        srv.wait_exit_codes(1)
        is_(srv.exit_codes(), [0], 'the session ends cleanly')
    logs = read_log(log)
    like(logs, r'rules: \S+many\.conf\.compiled', 'the session took the image')
    unlike(logs, r'not used', 'reading it whole is not a problem to report')


main()
