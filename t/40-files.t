#!/usr/bin/python3
"""The files beside the code: man pages lint clean and name every keyword the
parser knows; the systemd units verify; the default rules load."""
import glob
import os
import re
import shutil
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
from sockdtest import *  # noqa: E402,F403

MAN = sorted(glob.glob(os.path.join(SRCDIR, 'man', '*.[0-9]')))


@test
def man_pages_lint_clean():
    is_(len(MAN), 3, 'three man pages')
    for m in MAN:
        r = run(['mandoc', '-Tlint', '-W', 'warning', m])
        ok(r.returncode == 0 and not r.stdout.strip(), 'mandoc -Tlint: %s' % os.path.basename(m),
           r.stdout.decode() + r.stderr.decode())


def parser_keywords():
    """Every keyword string the parser compares a keyword against."""
    src = open(os.path.join(SRCDIR, 'rules', 'conf_parse.c')).read()
    words = set(re.findall(r'strcmp\(k, "([a-z][a-z0-9._-]*)"\)', src))
    words |= set(re.findall(r'strncmp\(k, "([a-z][a-z0-9._-]*)"', src))
    return sorted(words)


@test
def every_keyword_is_documented():
    r = run(['mandoc', '-Tascii', os.path.join(SRCDIR, 'man', 'sockd.conf.5')])
    text = re.sub(r'.\x08', '', r.stdout.decode())
    words = parser_keywords()
    cmp_ok(len(words), '>', 40, 'found the parser keywords (%d)' % len(words))
    missing = [w for w in words if w not in text]
    is_(missing, [], 'every keyword appears in sockd.conf(5)')


@test
def units_verify():
    if not shutil.which('systemd-analyze'):
        skip('systemd-analyze is not installed', 1)
        return
    d = tmpdir()
    for name in ('sockd.socket', 'sockd@.service'):
        text = open(os.path.join(SRCDIR, 'units', name)).read()
        # the unit names the installed path; verify against the built one
        text = text.replace('/usr/local/sbin/sockd-session', SESSION_BIN)
        text = text.replace('/usr/local/sbin/sockd-check',
                            os.path.join(BUILD, 'sockd-check', 'sockd-check'))
        with open(os.path.join(d, name), 'w') as fh:
            fh.write(text)
    # the Documentation= man: links are checked with man(1): give it ours
    for m in MAN:
        sec = os.path.join(d, 'man', 'man' + m[-1])
        os.makedirs(sec, exist_ok=True)
        shutil.copy(m, sec)
    env = clean_env({'MANPATH': os.path.join(d, 'man')})
    r = run(['systemd-analyze', 'verify', os.path.join(d, 'sockd.socket'),
             os.path.join(d, 'sockd@.service')], env=env, timeout=60)
    out = (r.stdout + r.stderr).decode()
    ok(r.returncode == 0 and not out, 'systemd-analyze verify: no warnings', out)
    r = run(['systemd-analyze', 'security', '--offline=true',
             os.path.join(d, 'sockd@.service')], env=env, timeout=60)
    m = re.search(r'Overall exposure level for \S+: ([0-9.]+)', (r.stdout + r.stderr).decode())
    ok(m and float(m.group(1)) <= 2.5, 'systemd-analyze security: exposure %s <= 2.5'
       % (m.group(1) if m else '?'), (r.stdout + r.stderr).decode()[-1500:])
    # the fast-start drop-in example: valid, and the exposure it claims
    example = os.path.join(SRCDIR, 'units', 'sockd@.service.d', 'fast-start.conf.example')
    merged = os.path.join(d, 'merged', 'sockd@.service')
    os.makedirs(os.path.dirname(merged))
    drop = open(example).read()
    with open(merged, 'w') as fh:
        fh.write(open(os.path.join(d, 'sockd@.service')).read() +
                 drop.split('[Service]', 1)[1])
    r = run(['systemd-analyze', 'verify', os.path.join(d, 'sockd.socket'), merged],
            env=env, timeout=60)
    out = (r.stdout + r.stderr).decode()
    ok(r.returncode == 0 and 'fast-start' not in out and 'Unknown' not in out,
       'the fast-start drop-in verifies', out)
    r = run(['systemd-analyze', 'security', '--offline=true', merged], env=env, timeout=60)
    m = re.search(r'Overall exposure level for \S+: ([0-9.]+)', (r.stdout + r.stderr).decode())
    claim = re.search(r'exposure: ([0-9.]+) with this drop-in', drop)
    ok(m and claim and m.group(1) == claim.group(1),
       'its exposure is the %s it states' % (claim.group(1) if claim else '?'),
       m.group(1) if m else '')


@test
def default_rules_load():
    r = run([os.path.join(BUILD, 'sockd-check', 'sockd-check'), '-f',
             os.path.join(SRCDIR, 'conf', 'sockd.conf'), '-t'])
    is_(r.returncode, 0, 'conf/sockd.conf loads', r.stderr)
    r = run([os.path.join(BUILD, 'sockd-check', 'sockd-check'), '-f',
             os.path.join(SRCDIR, 'conf', 'sockd.conf'), '-C',
             'from=192.0.2.7,laddr=192.0.2.1,lport=1080,to=198.51.100.1,port=443'])
    is_(r.returncode, 1, 'the default rules refuse a client from another host')
    r = run([os.path.join(BUILD, 'sockd-check', 'sockd-check'), '-f',
             os.path.join(SRCDIR, 'conf', 'sockd.conf'), '-C',
             'from=127.0.0.1,laddr=127.0.0.1,lport=1080,to=169.254.169.254,port=80'])
    is_(r.returncode, 1, 'the default rules refuse the metadata address')


main()
