#!/usr/bin/python3
"""Logging: log: per rule decides what is written, errorlog takes errors only,
client-supplied bytes are escaped."""
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
from sockdtest import *  # noqa: E402,F403


def connect_once(s, host, port, data=b'hi'):
    c, m, r = socks_connect(s.addr, host, port)
    if r.rep == 0:
        c.send(data)
        c.recv_exact(len(data))
    c.close()
    return r.rep


@test
def log_keywords_decide():
    d = tmpdir()
    t = Target(h_echo)
    rules = ('client pass { from: 0/0 to: 0/0 }\n'
             'socks pass { from: 0/0 to: 0/0 port = %d }\n'
             'socks block { from: 0/0 to: 0/0 }\n' % t.port)
    conf, log = make_conf(d, rules=rules)
    with Server(conf) as s:
        is_(connect_once(s, '127.0.0.1', t.port), 0, 'relayed')
        is_(connect_once(s, '127.0.0.1', 1), 2, 'blocked')
        s.wait_exit_codes(2)
    text = open(log).read() if os.path.exists(log) else ''
    unlike(text, r'info: pass ', 'a rule without log: connect writes no pass line')
    unlike(text, r'info: end ', 'a rule without log: disconnect writes no end line')
    unlike(text, r'info: block ', 'a block rule without log: writes nothing')


@test
def errorlog_gets_errors_only():
    d = tmpdir()
    errlog = os.path.join(d, 'errors.log')
    conf, log = make_conf(d, rules='client pass { from: 0/0 to: 0/0 }\n'
                          'socks pass { from: 0/0 to: 0/0 log: connect disconnect }\n')
    text = open(conf).read().replace('user.unprivileged: nobody',
                                     'user.unprivileged: no-such-user-here')
    text = 'errorlog: %s\n' % errlog + text
    with open(conf, 'w') as fh:
        fh.write(text)
    t = Target(h_echo)
    with Server(conf) as s:
        c = RawClient(s.addr)
        c.send(b'\x05\x01\x00')
        c.recv_until_eof(timeout=5)
        c.close()
        is_(s.wait_exit_codes(1), [4], 'a missing unprivileged user: exit 4')
    like(open(errlog).read(), r'error: user\.unprivileged: no user "no-such-user-here"',
         'errorlog has the error')
    like(open(log).read(), r'error: user\.unprivileged', 'logoutput has it too')


@test
def client_bytes_are_escaped():
    d = tmpdir()
    conf, log = make_conf(d, rules='client pass { from: 0/0 to: 0/0 }\n'
                          'socks pass { from: 0/0 to: 0/0 log: connect disconnect error }\n')
    t = Target(h_echo)
    with Server(conf) as s:
        c = RawClient(s.addr)
        # SOCKS4 with a user id full of control bytes and quotes
        c.send(b'\x04\x01' + t.port.to_bytes(2, 'big') + bytes([127, 0, 0, 1]) +
               b'ev"il\x1b[31m\n\\\x00')
        rep = c.recv_exact(8)
        is_(rep[1], 0x5a, 'SOCKS4 CONNECT granted')
        c.close()
        s.wait_exit_codes(1)
    text = wait_for(lambda: 'socks4_userid' in open(log).read() and open(log).read(), 5) or ''
    like(text, r'socks4_userid="ev\\x22il\\x1b\[31m\\x0a\\x5c"', 'user id logged escaped')
    ok('\x1b' not in text and '\n\\' not in text, 'no raw control bytes in the log')


@test
def dual_stack_listener_logs_plain_ipv4():
    # systemd's ListenStream=1080 is a dual-stack socket: an IPv4 client
    # arrives as ::ffff:127.0.0.1 and must be logged (and matched) as IPv4
    d = tmpdir()
    conf, log = make_conf(d, rules='client pass { from: 127.0.0.0/8 to: 0/0 }\n'
                          'socks pass { from: 127.0.0.0/8 to: 0/0 log: connect }\n')
    t = Target(h_echo)
    with Server(conf, host='::') as s:
        c = RawClient(('127.0.0.1', s.port))
        c.send(b'\x05\x01\x00')
        is_(c.recv_exact(2), b'\x05\x00', 'IPv4 client of a dual-stack listener: method none')
        c.send(b'\x05\x01\x00\x01' + bytes([127, 0, 0, 1]) + t.port.to_bytes(2, 'big'))
        is_(c.recv_exact(10)[1], 0, 'CONNECT granted by the IPv4 rules')
        c.close()
        s.wait_exit_codes(1)
    text = wait_for(lambda: 'pass client=' in open(log).read() and open(log).read(), 5) or ''
    like(text, r'pass client=127\.0\.0\.1\.\d+ local=127\.0\.0\.1\.\d+ ', 'logged as plain IPv4')
    unlike(text, r'ffff', 'no IPv4-mapped form in the log')


@test
def every_log_file_kept_after_the_drop():
    # the most log descriptors there may be (stderr that is the journal and
    # seven files, eight errorlog files), the journal's socket and a compiled
    # image: the session keeps every one when it closes what it does not
    # need (a slot short once wrote past its array: UBSan aborts the
    # sanitizer build), so the end lines, written after the privilege drop,
    # reach every file
    import socket as S
    d = tmpdir()
    os.chmod(d, 0o755)
    jpath = os.path.join(d, 'journal.sock')
    j = S.socket(S.AF_UNIX, S.SOCK_DGRAM)
    j.bind(jpath)
    defer(j.close)
    os.chmod(jpath, 0o666)
    outs = [os.path.join(d, 'out%d.log' % i) for i in range(7)]
    errs = [os.path.join(d, 'err%d.log' % i) for i in range(8)]
    conf = os.path.join(d, 'sockd.conf')
    with open(conf, 'w') as f:
        f.write(conf_text('stderr ' + ' '.join(outs),
                          extra='errorlog: %s\n' % ' '.join(errs),
                          rules='client pass { from: 0/0 to: 0/0 }\n'
                                'socks pass { from: 0/0 to: 0/0 log: connect disconnect }\n'))
    r = run([os.path.join(BUILD, 'sockd-check', 'sockd-check'), '-f', conf, '--compile'])
    is_(r.returncode, 0, 'rules compiled', r.stderr)
    errfile = os.path.join(d, 'stderr')
    script = ('exec 2>>%s; JOURNAL_STREAM=$(stat -c %%d:%%i %s); export JOURNAL_STREAM; '
              'exec %s -f %s' % (errfile, errfile, SESSION_BIN, conf))
    t = Target(h_echo)
    with Server(conf, binary='/bin/sh', args=['-c', script],
                env={'SOCKD_JOURNAL_SOCKET': jpath}) as s:
        is_(connect_once(s, '127.0.0.1', t.port), 0, 'relayed with 15 log files and the journal')
        is_(s.wait_exit_codes(1), [0], 'the session ends cleanly')
    missing = [o for o in outs if not re.search(r'info: end ', read_log(o) or '')]
    ok(not missing, 'all seven logoutput files have the end line', ' '.join(missing))


@test
def time_zone_only_for_stamped_logs():
    # the time zone is read (~0.2 ms a session) only when a target stamps
    # its lines with local time; "logoutput: /dev/null" turns logging off
    for target, want in (('/dev/null', False), ('FILE', True)):
        d = tmpdir()
        logfile = os.path.join(d, 'sockd.log')
        conf = os.path.join(d, 'sockd.conf')
        with open(conf, 'w') as f:
            f.write(conf_text(logfile if target == 'FILE' else target,
                              rules='client pass { from: 0/0 to: 0/0 }\n'
                                    'socks pass { from: 0/0 to: 0/0 log: connect }\n'))
        trace = os.path.join(d, 'trace')
        t = Target(h_echo)
        # --inetd: the socket is fd 0 (LISTEN_PID would name strace)
        with Server(conf, inetd=True, binary='/usr/bin/strace',
                    args=['-f', '-qq', '-e', 'trace=openat', '-o', trace, SESSION_BIN,
                          '-f', conf]) as s:
            is_(connect_once(s, '127.0.0.1', t.port), 0, 'logoutput %s: relayed' % target)
            s.wait_exit_codes(1)
        with open(trace) as f:
            opened = f.read()
        if want:
            like(opened, r'localtime|zoneinfo', 'a log file: the time zone is read for its stamps')
            like(read_log(logfile), r'^\w{3} [ \d]\d \d\d:\d\d:\d\d sockd-session\[\d+\]: ',
                 'and the lines are stamped')
        else:
            unlike(opened, r'localtime|zoneinfo', 'logoutput /dev/null: the time zone is never read')


def journal_run(debug=False):
    """One relayed connection with stderr being "the journal" (a fake
    journal socket); returns the entries received and the plain stderr."""
    import socket as S
    d = tmpdir()
    jpath = os.path.join(d, 'journal.sock')
    j = S.socket(S.AF_UNIX, S.SOCK_DGRAM)
    j.bind(jpath)
    j.settimeout(2)
    defer(j.close)
    os.chmod(jpath, 0o666)
    conf, log = make_conf(d, text=conf_text('stderr', rules='client pass { from: 0/0 to: 0/0 }\n'
                                            'socks pass { from: 0/0 to: 0/0 log: connect disconnect }\n'))
    errfile = os.path.join(d, 'stderr')
    if debug:  # the session then logs at debug which rules it loaded
        r = run([os.path.join(BUILD, 'sockd-check', 'sockd-check'), '-f', conf, '--compile'])
        is_(r.returncode, 0, 'rules compiled', r.stderr)
    # stderr is "the journal" when JOURNAL_STREAM names it, as systemd sets it
    script = ('exec 2>>%s; JOURNAL_STREAM=$(stat -c %%d:%%i %s); export JOURNAL_STREAM; '
              'exec %s %s-f %s' % (errfile, errfile, SESSION_BIN, '-d ' if debug else '', conf))
    t = Target(h_echo)
    with Server(conf, binary='/bin/sh', args=['-c', script],
                env={'SOCKD_JOURNAL_SOCKET': jpath}) as s:
        is_(connect_once(s, '127.0.0.1', t.port), 0, 'relayed with the journal as stderr')
        s.wait_exit_codes(1)
    entries = []
    try:
        while len(entries) < 50:
            entries.append(dict(l.split('=', 1) for l in j.recv(65536).decode().split('\n') if '=' in l))
    except OSError:
        pass
    return entries, open(errfile).read()


@test
def journal_structured_fields():
    entries, stderr = journal_run()
    is_(len(entries), 2, 'two journal entries: start and end')
    e = entries[0] if entries else {}
    is_(e.get('SOCKD_EVENT'), 'pass', 'SOCKD_EVENT=pass')
    like(e.get('SOCKD_CLIENT', ''), r'^127\.0\.0\.1\.\d+$', 'SOCKD_CLIENT')
    is_(e.get('SOCKD_METHOD'), 'none', 'SOCKD_METHOD')
    like(e.get('SOCKD_RULE', ''), r'sockd\.conf:\d+$', 'SOCKD_RULE names file:line')
    is_(e.get('SYSLOG_IDENTIFIER'), 'sockd-session', 'SYSLOG_IDENTIFIER')
    is_(e.get('PRIORITY'), '6', 'PRIORITY info')
    like(e.get('MESSAGE', ''), r'^pass client=', 'MESSAGE is the readable line')
    e = entries[1] if len(entries) > 1 else {}
    is_(e.get('SOCKD_BYTES_FROM_CLIENT'), '2', 'SOCKD_BYTES_FROM_CLIENT on the end entry')
    ok('SOCKD_DURATION_MS' in e and e.get('SOCKD_REASON'), 'duration and reason fields')
    is_(stderr.count('info: pass'), 0, 'no plain duplicate on stderr')


@test
def journal_debug_once():
    # -d under systemd: debug entries go to the journal like the rest, and
    # nothing is written a second time as plain stderr lines
    entries, stderr = journal_run(debug=True)
    ok(any(e.get('PRIORITY') == '7' and e.get('MESSAGE', '').startswith('rules: ')
           for e in entries), 'debug entries reach the journal', [e.get('MESSAGE') for e in entries])
    ok(any(e.get('SOCKD_EVENT') == 'pass' for e in entries), 'and the pass entry')
    is_(stderr, '', 'nothing on plain stderr: every line once')

main()
