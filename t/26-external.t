#!/usr/bin/python3
"""external: and external.rotation choose the source address of outgoing
connections, and the reply's BND.ADDR names it."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
from sockdtest import *  # noqa: E402,F403

RULES = ('client pass { from: 0/0 to: 0/0 }\n'
         'socks pass { from: 0/0 to: 0/0 log: connect disconnect error }\n')


def peer_seen(target):
    target.wait_conns(1)
    return target.records[-1].peer[0]


@test
def external_address_is_the_source():
    d = tmpdir()
    conf, log = make_conf(d, extra='external: 127.0.0.2\n', rules=RULES)
    t = Target(h_echo)
    with Server(conf) as s:
        c, m, r = socks_connect(s.addr, '127.0.0.1', t.port)
        is_(r.rep, 0, 'CONNECT succeeds')
        is_(r.addr, '127.0.0.2', 'BND.ADDR is the external address')
        is_(peer_seen(t), '127.0.0.2', 'the target sees the external address')
        c.send(b'ping')
        is_(c.recv_exact(4), b'ping', 'data flows')
        c.close()


@test
def no_external_of_the_family():
    d = tmpdir()
    conf, log = make_conf(d, extra='external: 127.0.0.2\n', rules=RULES)
    t = Target(h_echo, host='::1')
    with Server(conf) as s:
        c, m, r = socks_connect(s.addr, '::1', t.port)
        is_(r.rep, 8, 'IPv6 destination without an IPv6 external: reply 08')
        c.close()
    is_(len(t.records), 0, 'the target saw no connection')


@test
def same_same_rotation():
    d = tmpdir()
    r = run(['ip', 'addr', 'add', '127.0.0.5/32', 'dev', 'lo'])
    conf, log = make_conf(d, extra='external.rotation: same-same\n', rules=RULES)
    t = Target(h_echo)
    with Server(conf, host='127.0.0.5') as s:
        c, m, r = socks_connect(s.addr, '127.0.0.1', t.port)
        is_(r.rep, 0, 'CONNECT succeeds')
        is_(peer_seen(t), '127.0.0.5', 'same-same: the source is the address the client reached')
        c.close()


main()
