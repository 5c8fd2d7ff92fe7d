#!/usr/bin/python3
"""The relaying process has dropped root for good (/proc/PID/status).

While a session relays, every sockd-session process under the activator
(systemd-socket-activate, its --inetd mode, and xinetd) must have:
Uid and Gid all four fields non-zero (those of user.unprivileged: nobody),
no supplementary group 0, CapEff/CapPrm/CapAmb zero, NoNewPrivs 1, and not
be dumpable (the files in its /proc/PID then stay owned by root).
"""
import os
import pwd
import sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
from sockdtest import *  # noqa: F401,F403

NOBODY = pwd.getpwnam('nobody')


def check_relaying_process(act, what, target_host='127.0.0.1', request_host=None):
    target = Target(h_echo, host=target_host)
    c, m, rep = socks_connect(act.addr, request_host or target_host, target.port)
    is_(rep.rep, 0, '%s: CONNECT succeeds' % what)
    c.send(b'hold')
    is_(c.recv_exact(4), b'hold', '%s: relaying' % what)
    pids = wait_for(act.sessions, 5)
    ok(pids, '%s: found the sockd-session process under the activator' % what,
       'descendants: %r' % descendants(act.pid))
    for pid in pids or []:
        st = proc_status(pid)
        if st is None:
            ok(False, '%s: pid %d still running' % (what, pid))
            continue
        uids = st.get('Uid', '').split()
        gids = st.get('Gid', '').split()
        is_(len(uids), 4, '%s [%d]: Uid has 4 fields' % (what, pid), st.get('Uid'))
        ok(uids and all(u != '0' for u in uids), '%s [%d]: no uid 0 (Uid: %s)' % (what, pid, st.get('Uid')))
        ok(uids and all(u == str(NOBODY.pw_uid) for u in uids),
           '%s [%d]: all uids are nobody\'s (%d)' % (what, pid, NOBODY.pw_uid), st.get('Uid'))
        ok(gids and all(g != '0' for g in gids), '%s [%d]: no gid 0 (Gid: %s)' % (what, pid, st.get('Gid')))
        ok(gids and all(g == str(NOBODY.pw_gid) for g in gids),
           '%s [%d]: all gids are nobody\'s group (%d)' % (what, pid, NOBODY.pw_gid), st.get('Gid'))
        ok('0' not in st.get('Groups', '').split(),
           '%s [%d]: no supplementary group 0 (Groups: %s)' % (what, pid, st.get('Groups')))
        for cap in ('CapEff', 'CapPrm', 'CapAmb'):
            ok(st.get(cap) is not None and int(st.get(cap), 16) == 0,
               '%s [%d]: %s is zero (%s)' % (what, pid, cap, st.get(cap)))
        is_(st.get('NoNewPrivs'), '1', '%s [%d]: NoNewPrivs 1' % (what, pid))
        try:
            # files (not the directory) of a non-dumpable task belong to root
            owner = os.stat('/proc/%d/status' % pid).st_uid
        except OSError:
            owner = None
        is_(owner, 0, '%s [%d]: not dumpable (/proc/%d/status owned by root)' % (what, pid, pid))
        # descriptors: 0-2 (never the client), the client, the target,
        # four pipe ends, log files, the syslog socket; nothing else
        try:
            fds = {int(f): os.readlink('/proc/%d/fd/%s' % (pid, f))
                   for f in os.listdir('/proc/%d/fd' % pid)}
        except OSError:
            fds = {}
        pipes = [f for f, t in fds.items() if t.startswith('pipe:')]
        socks = [f for f, t in fds.items() if t.startswith('socket:') and f > 2]
        others = [t for f, t in fds.items() if f > 2 and not t.startswith(('pipe:', 'socket:'))
                  and not t.endswith('.log')]
        is_(len(pipes), 4, '%s [%d]: four pipe ends' % (what, pid), fds)
        ok(len(socks) <= 3, '%s [%d]: client, target and at most a syslog socket' % (what, pid),
           fds)
        is_(others, [], '%s [%d]: no other open files' % (what, pid), fds)
    c.shutdown_wr()
    data, how = c.recv_until_eof(5)
    is_(how, 'eof', '%s: session ends' % what)


@test
def systemd_socket_activate():
    d = tmpdir()
    conf, log = make_conf(d)
    check_relaying_process(Server(conf), 'socket-activate')


@test
def systemd_socket_activate_name_target():
    d = tmpdir()
    conf, log = make_conf(d)
    check_relaying_process(Server(conf), 'socket-activate, name target', request_host='localhost')


@test
def systemd_socket_activate_ipv6():
    d = tmpdir()
    conf, log = make_conf(d)
    check_relaying_process(Server(conf, host='::1'), 'socket-activate on ::1', target_host='::1')


@test
def inetd_mode():
    d = tmpdir()
    conf, log = make_conf(d)
    check_relaying_process(Server(conf, inetd=True), '--inetd')


@test
def xinetd():
    d = tmpdir()
    conf, log = make_conf(d)
    check_relaying_process(Xinetd(conf), 'xinetd')



NSS_WRAPPER = '/usr/lib/x86_64-linux-gnu/libnss_wrapper.so'


def nss_only_user_server(d, user):
    """A Server whose sessions see, through NSS (nss_wrapper), a user
    "sockdnss" (uid/gid 42424) that /etc/passwd does not have."""
    with open(os.path.join(d, 'passwd'), 'w') as fh:
        fh.write('sockdnss:x:42424:42424:nss only:/nonexistent:/usr/sbin/nologin\n')
    with open(os.path.join(d, 'group'), 'w') as fh:
        fh.write('sockdnss:x:42424:\n')
    for f in ('passwd', 'group'):
        os.chmod(os.path.join(d, f), 0o644)
    conf, log = make_conf(d, text=conf_text(os.path.join(d, 'sockd.log'))
                          .replace('user.unprivileged: nobody', 'user.unprivileged: ' + user))
    env = {'LD_PRELOAD': NSS_WRAPPER, 'NSS_WRAPPER_PASSWD': os.path.join(d, 'passwd'),
           'NSS_WRAPPER_GROUP': os.path.join(d, 'group')}
    return Server(conf, env=env), log


@test
def unprivileged_user_from_nss():
    # user.unprivileged is read from /etc/passwd first; a user that only
    # NSS knows (LDAP, sssd: here nss_wrapper) is still found
    if not os.path.exists(NSS_WRAPPER):
        skip('libnss-wrapper is not installed (t/deps.sh test installs it)', 3)
        return
    ok(not [l for l in open('/etc/passwd') if l.startswith('sockdnss:')],
       'the user is not in /etc/passwd')
    d = tmpdir()
    s, log = nss_only_user_server(d, 'sockdnss')
    target = Target(h_echo)
    c, m, rep = socks_connect(s.addr, '127.0.0.1', target.port)
    is_(rep.rep, 0, 'NSS-only user.unprivileged: CONNECT succeeds')
    c.send(b'hold')
    is_(c.recv_exact(4), b'hold', 'relaying')
    pids = wait_for(s.sessions, 5) or []
    st = proc_status(pids[0]) if pids else {}
    is_((st or {}).get('Uid', '').split(), ['42424'] * 4, 'runs as the NSS user (uid 42424)')
    is_((st or {}).get('Gid', '').split(), ['42424'] * 4, 'and its group')
    c.close()
    s2, log2 = nss_only_user_server(tmpdir(), 'sockdnobody')
    c = RawClient(s2.addr)
    c.send(b'\x05\x01\x00')
    data, how = c.recv_until_eof(5)
    ok(how in ('eof', 'reset') and data == b'', 'a user neither has: closed before any reply',
       data, how)
    is_(s2.wait_exit_codes(1), [4], 'exit status 4 (privilege drop)')
    like(open(log2).read(), r'user\.unprivileged: no user "sockdnobody"', 'and logged')


main(time_limit=60)
