#!/usr/bin/python3
"""Logging: log: per rule decides what is written, errorlog takes errors only,
client-supplied bytes are escaped."""
import os
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


main()
