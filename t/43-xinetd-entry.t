#!/usr/bin/python3
"""The shipped xinetd entry (conf/xinetd.d/sockd) works as written: xinetd
reads it (with only the binary, rules file and port changed for the test)
and a real client gets through."""
import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
from sockdtest import *  # noqa: E402,F403


@test
def shipped_entry_serves():
    if not shutil.which('xinetd'):
        bail_out('xinetd is not installed (t/deps.sh test installs it)')
    d = tmpdir()
    conf, log = make_conf(d)
    port = free_port()
    entry = open(os.path.join(SRCDIR, 'conf', 'xinetd.d', 'sockd')).read()
    entry = entry.replace('/usr/local/sbin/sockd-session', SESSION_BIN)
    entry = entry.replace('-f /etc/sockd.conf', '-f ' + conf)
    entry = re.sub(r'(?m)^(\s*port\s*=\s*)1080\b', r'\g<1>%d' % port, entry)
    main_conf = os.path.join(d, 'xinetd.conf')
    with open(main_conf, 'w') as fh:
        fh.write('defaults\n{\n\tlog_type = FILE %s/xinetd.log\n}\n%s' % (d, entry))
    p = subprocess.Popen(['xinetd', '-dontfork', '-f', main_conf, '-pidfile',
                          os.path.join(d, 'pid')], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    defer(lambda: (p.kill(), p.wait()))
    ok(wait_for(lambda: listening_inode(port, p.pid), 10), 'xinetd listens on the entry\'s port')
    http = HttpServer(b'through the shipped entry')
    r = run(['curl', '-sS', '--max-time', '10', '-x', 'socks5h://127.0.0.1:%d' % port,
             'http://localhost:%d/file' % http.port])
    is_(r.returncode, 0, 'curl through the shipped xinetd entry', r.stderr)
    is_(r.stdout, b'through the shipped entry', 'the body arrives')
    ok(wait_for(lambda: os.path.exists(log) and 'info: pass' in open(log).read(), 5),
       'the session logged the relay')


main()
