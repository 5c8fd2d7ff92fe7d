#!/usr/bin/python3
"""sockd-check: -t, -T, -C, --test, lint, and hostile rules files."""
import glob
import os
import resource
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
from sockdtest import *  # noqa: E402,F403

CHECK = os.path.join(BUILD, 'sockd-check', 'sockd-check')
CONF = os.path.join(CONFDIR, 'check.conf')


def limit_memory():
    # hostile files must be handled in bounded memory: 64 MiB file cap
    # plus the parser's own structures stay far below this
    resource.setrlimit(resource.RLIMIT_AS, (512 << 20, 512 << 20))


# ASan reserves terabytes of address space: no RLIMIT_AS under it
SANITIZED = 'sanitizers=' in run([SESSION_BIN, '-vv']).stdout.decode()


def check(*args, timeout=15, env=None):
    r = run([CHECK] + list(args), timeout=timeout, env=env,
            preexec_fn=None if SANITIZED else limit_memory)
    return r.returncode, r.stdout.decode(errors='replace'), r.stderr.decode(errors='replace')


def repo_confs():
    """Every rules file in the repository that is meant to load."""
    files = glob.glob(os.path.join(SRCDIR, 'conf', '*.conf'))
    files += glob.glob(os.path.join(SRCDIR, 'conf', 'examples', '*.conf'))
    files += [f for f in glob.glob(os.path.join(CONFDIR, '*.conf'))
              if 'error' not in os.path.basename(f)]
    return sorted(files)


@test
def syntax_check_of_every_conf():
    files = repo_confs()
    ok(len(files) >= 3, 'found rules files to check (%d)' % len(files))
    for f in files:
        rc, out, err = check('-f', f, '-t')
        is_(rc, 0, '-t accepts %s' % os.path.relpath(f, SRCDIR), err)


@test
def canonical_form_is_a_fixpoint():
    d = tmpdir()
    for f in repo_confs():
        rc, t1, err = check('-f', f, '-T')
        is_(rc, 0, '-T loads %s' % os.path.basename(f), err)
        p1 = os.path.join(d, 'once.conf')
        with open(p1, 'w') as fh:
            fh.write(t1)
        rc, t2, err = check('-f', p1, '-T')
        ok(rc == 0 and t1 == t2, '-T of -T is the same (%s)' % os.path.basename(f), err)
    # and the dumped file decides the same
    rc, dumped, _ = check('-f', CONF, '-T')
    p = os.path.join(d, 'dumped.conf')
    with open(p, 'w') as fh:
        fh.write(dumped)
    with open(os.path.join(CONFDIR, 'check.cases')) as fh:
        specs = [l.split()[1] for l in fh if l.strip() and not l.startswith('#')]
    same = 0
    for s in specs:
        a = check('-f', CONF, '-C', s)
        b = check('-f', p, '-C', s)
        va = a[1].split('\n')[0].split(' ')[:3]
        vb = b[1].split('\n')[0].split(' ')[:3]
        if a[0] == b[0] and va == vb:
            same += 1
        else:
            diag('differs: %s: %s / %s' % (s, a[1], b[1]))
    is_(same, len(specs), 'the canonical form decides every case the same')


@test
def decision_table():
    rc, out, err = check('-f', CONF, '--test', os.path.join(CONFDIR, 'check.cases'))
    is_(rc, 0, '--test: every case of check.cases holds', out + err)
    like(out, r'(?m)^\d+ passed, 0 failed$', 'summary line')


@test
def one_decision_output():
    rc, out, _ = check('-f', CONF, '-C',
                       'from=127.0.0.3,laddr=127.0.0.1,lport=1080,to=127.0.0.1,port=9')
    is_(rc, 1, 'block exits 1')
    like(out.split('\n')[0], r'^block socks-rule #2 \S*check\.conf:16$', 'first line names rule and line')
    like(out, r'client-rule #2 \S+:10 passes the client', 'explains the client rule')
    rc, out, _ = check('-f', CONF, '-C',
                       'from=127.0.0.3,laddr=127.0.0.1,lport=1080,to=127.0.0.1,port=80')
    is_(rc, 0, 'pass exits 0')
    like(out.split('\n')[0], r'^pass socks-rule #8 \S*check\.conf:23$', 'pass line')
    rc, out, _ = check('-f', CONF, '-C',
                       'from=127.0.0.3,laddr=127.0.0.1,lport=1080,to=127.0.0.1,port=25')
    like(out.split('\n')[0], r'^block default', 'no match: default')
    rc, out, _ = check('-f', CONF, '-C',
                       'from=127.0.0.3,laddr=127.0.0.1,lport=1080,to=10.1.2.3,port=80,user=alice')
    is_(rc, 1, 'user= with method none blocks')
    like(out, r'unverified claim', '... and says the claim is unverified')
    rc, out, _ = check('-f', CONF, '-C',
                       'from=127.0.0.3,laddr=127.0.0.1,lport=1080,to=www.example.com,'
                       'addrs=198.51.100.1+198.51.100.2,port=1500')
    like(out, r'blocks 198\.51\.100\.1 for www\.example\.com.*\n.*blocks 198\.51\.100\.2',
         'every address of a name is decided')


@test
def interface_names():
    d = tmpdir()
    conf = os.path.join(d, 'lo.conf')
    with open(conf, 'w') as fh:
        fh.write('socksmethod: none\nclient pass { from: 0/0 to: 0/0 }\n'
                 'socks block { from: 0/0 to: lo }\nsocks pass { from: 0/0 to: 0/0 }\n')
    rc, out, _ = check('-f', conf, '-C', 'from=10.0.0.1,to=127.0.0.53,port=80')
    is_(rc, 1, 'to: lo covers the whole loopback network', out)
    rc, out, _ = check('-f', conf, '-C', 'from=10.0.0.1,to=::1,port=80')
    is_(rc, 1, 'to: lo covers ::1', out)
    rc, out, _ = check('-f', conf, '-C', 'from=10.0.0.1,to=198.51.100.1,port=80')
    is_(rc, 0, 'other addresses pass', out)
    rc, out, err = check('-f', conf, '-t')
    ok('passes connections to 127.0.0.1' not in err, 'lint knows lo blocks loopback', err)


@test
def reply_commands():
    d = tmpdir()
    conf = os.path.join(d, 'r.conf')
    with open(conf, 'w') as fh:
        fh.write('socksmethod: none\nclient pass { from: 0/0 to: 0/0 }\n'
                 'socks block { from: 192.0.2.66/32 to: 0/0 command: bindreply udpreply }\n'
                 'socks pass { from: 0/0 to: 10.0.0.0/8 command: bind bindreply udpassociate udpreply }\n')
    base = 'from=10.0.0.5,fromport=4000,laddr=10.0.0.1,lport=1080,port=2000,'
    rc, out, _ = check('-f', conf, '-C', base + 'to=192.0.2.66,command=bindreply')
    ok(rc == 1 and 'socks-rule #1' in out, 'bindreply: from: matches the remote peer (to=)', out)
    rc, out, _ = check('-f', conf, '-C', base + 'to=192.0.2.67,command=bindreply')
    ok(rc == 0 and 'socks-rule #2' in out, 'bindreply: to: matches the client (from=)', out)
    rc, out, _ = check('-f', conf, '-C', base + 'to=192.0.2.66,command=udpreply')
    is_(rc, 1, 'udpreply from a blocked remote')
    rc, out, _ = check('-f', conf, '-C', base + 'to=10.9.9.9,command=bind')
    is_(rc, 0, 'bind to the named peer passes')
    rc, out, _ = check('-f', conf, '-C', base + 'to=10.9.9.9,command=connect')
    is_(rc, 1, 'connect is not allowed by a bind rule')
    rc, out, err = check('-f', conf, '-C', base + 'to=10.9.9.9,command=udpreply,protocol=tcp')
    is_(rc, 2, 'protocol= contradicting command= is an error')


@test
def group_from_the_system_database():
    d = tmpdir()
    conf = os.path.join(d, 'g.conf')
    with open(conf, 'w') as fh:
        fh.write('socksmethod: username\nclient pass { from: 0/0 to: 0/0 }\n'
                 'socks pass { from: 0/0 to: 0/0 group: root }\n')
    rc, out, _ = check('-f', conf, '-C', 'from=10.0.0.1,to=10.0.0.2,port=1,method=username,user=root')
    is_(rc, 0, 'root is in group root (primary group, from the system)', out)
    rc, out, _ = check('-f', conf, '-C', 'from=10.0.0.1,to=10.0.0.2,port=1,method=username,user=nobody')
    is_(rc, 1, 'nobody is not in group root', out)


@test
def missing_facts_are_errors():
    for spec, fact in [('from=127.0.0.3,to=127.0.0.1,port=80', 'laddr='),
                       ('from=127.0.0.3,laddr=127.0.0.1,to=127.0.0.1,port=80', 'lport='),
                       ('from=127.0.0.3,laddr=127.0.0.1,lport=1080,to=127.0.0.1', 'port='),
                       ('from=127.0.0.3,laddr=127.0.0.1,lport=1080,to=10.0.0.1,port=80,method=username',
                        'user='),
                       ('laddr=127.0.0.1,to=127.0.0.1', 'from=')]:
        rc, out, err = check('-f', CONF, '-C', spec)
        ok(rc == 2 and fact in err, 'missing %s is an error naming it' % fact, err)
    for spec in ['from=1.2.3', 'from=1.2.3.4,port=70000', 'from=1.2.3.4,method=magic',
                 'from=1.2.3.4,bogus=1', 'from=1.2.3.4,to=a%b', 'from=1.2.3.4,version=4,method=username']:
        rc, out, err = check('-f', CONF, '-C', spec)
        ok(rc == 2 and 'SPEC' in err, 'bad SPEC %s: exit 2' % spec, err)


@test
def failing_cases_fail():
    d = tmpdir()
    cases = os.path.join(d, 'bad.cases')
    with open(cases, 'w') as fh:
        fh.write('# one right, two wrong\n'
                 'pass from=127.0.0.3,laddr=127.0.0.1,lport=1080,to=127.0.0.1,port=80\n'
                 'pass from=127.0.0.3,laddr=127.0.0.1,lport=1080,to=127.0.0.1,port=9\n'
                 'block from=127.0.0.3,laddr=127.0.0.1,lport=1080,to=127.0.0.1,port=9 @17\n')
    rc, out, err = check('-f', CONF, '--test', cases)
    is_(rc, 1, '--test with failing cases exits 1')
    like(out, r'(?m)^1 passed, 2 failed$', 'counts them')
    like(out, r'FAIL \S+:3: pass', 'names the failing case line')


@test
def syntax_errors():
    rc, out, err = check('-f', os.path.join(CONFDIR, 'syntax-error.conf'), '-t')
    is_(rc, 2, 'a broken file exits 2')
    like(err, r'syntax-error\.conf:\d+(:\d+)?: error: ', 'file:line: error: message')


def write(d, name, data, mode='w'):
    p = os.path.join(d, name)
    with open(p, mode) as fh:
        fh.write(data)
    return p


@test
def hostile_files():
    d = tmpdir()
    head = 'socksmethod: none\nclient pass { from: 0/0 to: 0/0 }\n'
    files = {
        '100 000 braces': write(d, 'braces.conf', head + 'socks pass ' + '{' * 100000 + '\n'),
        '10 MB line': write(d, 'long.conf', head + 'socks pass { log: ' + 'x' * (10 << 20) + ' }\n'),
        'NUL bytes': write(d, 'nul.conf', (head + 'socks pass {\0 }\n').encode(), 'wb'),
        'binary noise': write(d, 'noise.conf', bytes(range(256)) * 64, 'wb'),
        'unterminated rule': write(d, 'open.conf', head + 'socks pass { from: 0/0\n'),
        'a directory': d,
        '/dev/zero': '/dev/zero',
    }
    fifo = os.path.join(d, 'fifo.conf')
    os.mkfifo(fifo)
    files['a FIFO'] = fifo
    for name, path in files.items():
        t0 = time.monotonic()
        rc, out, err = check('-f', path, '-t', timeout=20)
        took = time.monotonic() - t0
        ok(rc == 2 and 'error' in err and took < 10,
           '%s: clean error in %.2f s' % (name, took), err[:300])
        like(err.split('\n')[0], r'^\S+(:\d+)*: error: ', '%s: file:line: message' % name)


@test
def lint_warnings():
    d = tmpdir()
    conf = write(d, 'lint.conf',
                 'socksmethod: none pam.username\n'
                 'client pass { from: 0/0 to: 0/0 }\n'
                 'socks pass { from: 10.0.0.0/8 to: 0/0 port = 443 }\n'
                 'socks pass { from: 10.1.0.0/16 to: 0/0 port = 443 }\n'
                 'socks pass { from: 0/0 to: 0/0 socksmethod: pam.username\n'
                 '  pam.servicename: nosuchservice gssapi.enctype: clear }\n')
    env = clean_env({'SOCKD_CHECK_PAMDIR': d})
    rc, out, err = check('-f', conf, '-t', env=env)
    is_(rc, 0, 'warnings alone exit 0')
    like(err, r'lint\.conf:4: warning: socks-rule #2 can never match: socks-rule #1 at line 3',
         'shadowed rule')
    like(err, r'lint\.conf:2: warning: client-rule #1 lets every address', 'open client rule')
    like(err, r'lint\.conf:5: warning: PAM service "nosuchservice" has no file', 'missing PAM service')
    like(err, r'passes connections to 127\.0\.0\.1', 'loopback destinations allowed')
    like(err, r'gssapi\.enctype clear', 'gssapi clear')
    rc, out, err = check('-f', conf, '-t', '--strict', env=env)
    is_(rc, 2, '--strict makes warnings fatal')
    kt = os.path.join(d, 'sockd.keytab')
    write(d, 'sockd.keytab', 'not really a keytab')
    os.chmod(kt, 0o644)
    conf = write(d, 'kt.conf', 'socksmethod: gssapi\n'
                 'client pass { from: 127.0.0.0/8 to: 0/0 gssapi.keytab: FILE:%s }\n' % kt)
    rc, out, err = check('-f', conf, '-t')
    like(err, r'kt\.conf:2: warning: gssapi\.keytab \S+ should be owned by root with mode 0600 '
         r'\(or 0640\), not uid 0 mode 0644', 'a world-readable keytab is flagged')
    os.chmod(kt, 0o600)
    rc, out, err = check('-f', conf, '-t')
    unlike(err, r'gssapi\.keytab', 'a root-only keytab is fine')
    conf = write(d, 'ext.conf', 'socksmethod: none\nexternal: 203.0.113.77\n'
                 'client pass { from: 127.0.0.0/8 to: 0/0 }\n')
    rc, out, err = check('-f', conf, '-t')
    ok(rc == 0 and '203.0.113.77 is not an address of this host' in err,
       'external address missing here: a warning only', err)



@test
def compiled_image():
    d = tmpdir()
    conf = os.path.join(d, 'check.conf')
    with open(CONF) as src, open(conf, 'w') as dst:
        dst.write(src.read())
    rc, text_dump, _ = check('-f', conf, '-T')
    rc, out, err = check('-f', conf, '--compile')
    ok(rc == 0 and out.startswith(conf + '.compiled: 5 client rules, 8 socks rules'),
       '--compile writes FILE.compiled and says what it holds', out, err)
    st = os.stat(conf + '.compiled')
    is_(st.st_mode & 0o777, os.stat(conf).st_mode & 0o644,
        'the image is readable as the rules file is, writable by its owner only')
    rc, img_dump, err = check('-f', conf, '-T')
    ok(rc == 0 and img_dump == text_dump and 'not used' not in err,
       '-T from the image is the text\'s canonical form', err)
    rc, out, err = check('-f', conf, '-t')
    ok(rc == 0 and '.compiled' not in err, '-t: a current image raises nothing', err)
    with open(CONFDIR + '/check.cases') as fh:
        specs = [l.split()[1] for l in fh if l.strip() and not l.startswith('#')]
    rc, out, err = check('-f', conf, '--test', CONFDIR + '/check.cases')
    ok(rc == 0 and out.rstrip().endswith('%d passed, 0 failed' % len(specs)),
       '--test: every case passes from the image', out[-500:])

    # an edit makes the image stale: the text decides, and -t says so
    with open(conf, 'a') as fh:
        fh.write('socks block { from: 0/0 to: 0/0 }\n')
    rc, out, err = check('-f', conf, '-C', specs[0])
    like(err, r'check\.conf\.compiled: note: not used: out of date',
         '-C names the stale image it did not use')
    rc, out, err = check('-f', conf, '-T')
    ok(out != text_dump and out.count('socks block') > text_dump.count('socks block'),
       '-T shows the edited text, not the stale image')
    rc, out, err = check('-f', conf, '-t')
    like(err, r'check\.conf\.compiled: warning: not used by sockd-session: out of date.*'
         r'--compile', '-t warns about the stale image and says what to run')
    rc, out, err = check('-f', conf, '-t', '--strict')
    is_(rc, 2, '-t --strict fails on a stale image')
    # a foreign image (not sockd's) is refused and named
    with open(conf + '.compiled', 'wb') as fh:
        fh.write(b'\0' * 200)
    rc, out, err = check('-f', conf, '-t')
    like(err, r'not used by sockd-session: not a sockd rules image', 'a foreign image is named')
    # a rules file with errors is not compiled, and says why
    bad = write(d, 'bad.conf', 'socks pass {\n')
    rc, out, err = check('-f', bad, '--compile')
    ok(rc == 2 and 'bad.conf:' in err and not os.path.exists(bad + '.compiled'),
       '--compile of a broken file: its errors, no image', err)
    # the image cannot be written (a directory is in its place): an error
    blocked = write(d, 'b.conf', 'socksmethod: none\nclient pass { from: 0/0 to: 0/0 }\n')
    os.mkdir(blocked + '.compiled')
    rc, out, err = check('-f', blocked, '--compile')
    ok(rc == 2 and 'b.conf.compiled' in err, '--compile that cannot write: an error naming it', err)
    ok(not [f for f in os.listdir(d) if '.compiled.' in f], 'no temporary file left behind')


@test
def compiled_image_interface_names():
    # a bare word is an interface when the host has one of that name, else
    # a host name: an image compiled before the interface existed (a tunnel
    # that comes up after boot) must not be used once it does, and back
    d = tmpdir()
    conf = write(d, 'if.conf', 'socksmethod: none\n'
                 'client pass { from: 0/0 to: 0/0 }\n'
                 'socks block { from: 0/0 to: sockdt0 }\n'
                 'socks pass { from: 0/0 to: 0/0 }\n')
    spec = 'from=127.0.0.1,to=192.0.2.77,port=22'
    run(['ip', 'link', 'del', 'sockdt0'])
    rc, out, err = check('-f', conf, '--compile')
    is_(rc, 0, 'compiled while sockdt0 is a host name', err)
    rc, out, err = check('-f', conf, '-C', spec)
    ok(rc == 0 and 'not used' not in err, 'the image is used while nothing changed', err)
    r = run(['ip', 'link', 'add', 'sockdt0', 'type', 'veth', 'peer', 'name', 'sockdt1'])
    is_(r.returncode, 0, 'interface sockdt0 appears (this test\'s own namespace)', r.stderr)
    run(['ip', 'addr', 'add', '192.0.2.77/32', 'dev', 'sockdt0'])
    defer(run, ['ip', 'link', 'del', 'sockdt0'])
    rc, out, err = check('-f', conf, '-C', spec)
    like(err, r'not used: "sockdt0" changed between interface and host name',
         'the image is not used once the word names an interface')
    ok(rc == 1 and out.startswith('block socks-rule #1'),
       'and the text decides: block by the interface rule', out)
    rc, out, err = check('-f', conf, '--compile')
    rc, out, err = check('-f', conf, '-C', spec)
    ok(rc == 1 and 'not used' not in err, 'compiled again: the image is used and blocks', err)
    run(['ip', 'link', 'del', 'sockdt0'])
    rc, out, err = check('-f', conf, '-C', spec)
    like(err, r'not used: "sockdt0" changed', 'the interface gone: not used again')
    is_(rc, 0, 'and the text passes again')


main()
