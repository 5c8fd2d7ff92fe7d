#!/usr/bin/python3
"""debian/: dpkg-buildpackage -b builds the binary package from a copy of
the tree; lintian finds no error; installing creates the unprivileged user
and enables nothing; purging removes it again."""
import os
import pwd
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
from sockdtest import *  # noqa: E402,F403


def have(*progs):
    return all(shutil.which(p) for p in progs)


@test
def build_lint_install_purge():
    if not have('dpkg-buildpackage', 'dh', 'lintian'):
        bail_out('dpkg-dev, debhelper or lintian missing (t/deps.sh test installs them)')
    if shutil.which('dpkg-query') and run(['dpkg-query', '-W', 'sockd-session']).returncode == 0:
        skip('a sockd-session package is installed on this machine: not touching it', 8)
        return
    d = tmpdir()
    src = os.path.join(d, 'sockd-session')
    files = subprocess.run(['git', '-C', SRCDIR, 'ls-files', '-co', '--exclude-standard'],
                           capture_output=True, text=True).stdout.split()
    for f in files:
        if os.path.isfile(os.path.join(SRCDIR, f)):
            os.makedirs(os.path.dirname(os.path.join(src, f)), exist_ok=True)
            shutil.copy2(os.path.join(SRCDIR, f), os.path.join(src, f))
    r = run(['dpkg-buildpackage', '-us', '-uc', '-b'], timeout=600, cwd=src)
    is_(r.returncode, 0, 'dpkg-buildpackage -us -uc -b', (r.stdout + r.stderr).decode()[-2000:])
    debs = [f for f in os.listdir(d) if f.startswith('sockd-session_') and f.endswith('.deb')]
    is_(len(debs), 1, 'one binary package')
    if not debs:
        return
    deb = os.path.join(d, debs[0])
    r = run(['lintian', '--tag-display-limit', '0', deb], timeout=300)
    tags = [l for l in r.stdout.decode().split('\n') if l[:2] in ('E:', 'W:')]
    ok(not [t for t in tags if t.startswith('E:')], 'lintian: no errors', '\n'.join(tags))
    diag('lintian tags left: %s' % ('; '.join(tags) or 'none'))
    contents = run(['dpkg', '-c', deb]).stdout.decode()
    for f in ('./usr/sbin/sockd-session', './usr/sbin/sockd-check', './etc/sockd.conf',
              './etc/pam.d/sockd', './lib/systemd/system/sockd@.service',
              './usr/share/man/man5/sockd.conf.5.gz'):
        ok(f in contents, 'the package has ' + f)
    defer(run, ['dpkg', '--purge', 'sockd-session'], 120)
    r = run(['dpkg', '-i', deb], timeout=120)
    is_(r.returncode, 0, 'dpkg -i', (r.stdout + r.stderr).decode()[-1500:])
    try:
        pwd.getpwnam('sockd')
        made = True
    except KeyError:
        made = False
    ok(made, 'postinst created the system user sockd')
    ok(not os.path.exists('/etc/systemd/system/sockets.target.wants/sockd.socket'),
       'nothing enabled')
    r = run(['dpkg', '--purge', 'sockd-session'], timeout=120)
    is_(r.returncode, 0, 'dpkg --purge')
    try:
        pwd.getpwnam('sockd')
        gone = False
    except KeyError:
        gone = True
    ok(gone, 'purge removed the user')


main()
