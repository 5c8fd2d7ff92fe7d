#!/usr/bin/python3
"""make install / uninstall into a DESTDIR: every file in place, the unit
names the installed binary, an existing sockd.conf is never replaced."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
from sockdtest import *  # noqa: E402,F403

FILES = ['usr/sbin/sockd-session', 'usr/sbin/sockd-check', 'etc/pam.d/sockd', 'etc/sockd.conf',
         'usr/share/man/man5/sockd.conf.5', 'usr/share/man/man8/sockd-session.8',
         'usr/share/man/man8/sockd-check.8', 'lib/systemd/system/sockd.socket',
         'lib/systemd/system/sockd@.service']


def make(*args):
    return run(['make', '-s', '-C', SRCDIR] + list(args), timeout=300)


@test
def install_and_uninstall():
    d = tmpdir()
    args = ['DESTDIR=' + d, 'PREFIX=/usr', 'UNITDIR=/lib/systemd/system']
    r = make('install', *args)
    is_(r.returncode, 0, 'make install', (r.stdout + r.stderr).decode()[-1500:])
    for f in FILES:
        ok(os.path.isfile(os.path.join(d, f)), 'installed: ' + f)
    ok(os.access(os.path.join(d, 'usr/sbin/sockd-session'), os.X_OK), 'sockd-session is executable')
    unit = open(os.path.join(d, 'lib/systemd/system/sockd@.service')).read()
    like(unit, r'ExecStart=-?/usr/sbin/sockd-session ', 'the unit runs the installed binary')
    unlike(unit, r'/usr/local/', 'no /usr/local path left in the unit')
    sock = open(os.path.join(d, 'lib/systemd/system/sockd.socket')).read()
    like(sock, r'ExecStartPre=-/usr/sbin/sockd-check -f /etc/sockd.conf --compile',
         'the socket compiles the rules with the installed sockd-check')
    conf = os.path.join(d, 'etc/sockd.conf')
    with open(conf, 'w') as fh:
        fh.write('# mine\n')
    r = make('install', *args)
    is_(open(conf).read(), '# mine\n', 'an existing sockd.conf is kept')
    r = make('uninstall', *args)
    is_(r.returncode, 0, 'make uninstall')
    left = sorted(os.path.relpath(os.path.join(root, f), d)
                  for root, _, files in os.walk(d) for f in files)
    is_(left, ['etc/sockd.conf'], 'uninstall leaves only the rules file (configuration)')


main()
