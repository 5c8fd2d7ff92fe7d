#!/usr/bin/python3
"""Rules decide: client rules (client address, local address) and socks rules.

Uses t/conf/rules.conf.in (line numbers found by its [tag] comments):
- a client rule that blocks 127.0.0.2: the connection is closed before
  any byte is sent, and the log names the rule;
- a client rule on the local address the client connected to;
- no client rule at all: blocked by default (rule=default);
- socks rules: blocked by port, by client address, and by no matching rule
  (default): reply 02, the target sees no connection, the log names the rule;
- a rules file with a syntax error: the connection is closed without a
  reply and the message names FILE:LINE.
"""
import os
import re
import sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
from sockdtest import *  # noqa: F401,F403


def rules_proxy(blocked_port, host='127.0.0.1'):
    d = tmpdir()
    conf, log = render_template('rules.conf.in', d, BLOCKED_PORT=blocked_port)
    return Server(conf, host=host), conf, log


def rule_re(conf, tag):
    """rule=FILE:LINE for the line carrying [tag] (loosely: the file's basename is enough)."""
    return r'rule=\S*%s:%d\b' % (re.escape(os.path.basename(conf)), line_of(conf, '[%s]' % tag))


def expect_closed_silently(c, what):
    data, how, waited = c.wait_closed(5)
    ok(data == b'' and how in ('eof', 'reset'), '%s: connection closed without any byte' % what,
       'got %r then %s after %.1f s' % (data, how, waited))


@test
def client_blocked_by_source_address():
    echo = Target(h_echo)
    srv, conf, log = rules_proxy(free_port())
    c = RawClient(srv.addr, source='127.0.0.2')
    # send a full request anyway: none of it may be answered or relayed
    try:
        c.send(greeting() + req_ipv4('127.0.0.1', echo.port) + b'data')
    except OSError:
        pass
    expect_closed_silently(c, 'client 127.0.0.2')
    is_(len(echo.records), 0, 'client 127.0.0.2: the target saw no connection')
    lines = wait_log(log, r'\bblock\b.*client=127\.0\.0\.2\b')
    ok(lines, 'log: a block line for client=127.0.0.2', read_log(log))
    like(lines[0] if lines else '', rule_re(conf, 'client-from'),
         'the block line names the client rule file:line')
    is_(srv.wait_exit_codes(1), [1], 'the session exits 1', srv.stderr())
    # the same proxy still serves an allowed client
    c2, m, rep = socks_connect(srv.addr, '127.0.0.1', echo.port, source='127.0.0.1')
    is_(rep.rep, 0, 'client 127.0.0.1 on the same proxy: CONNECT succeeds')
    ok(wait_log(log, r'\bpass\b.*client=127\.0\.0\.1\.'), 'log: pass line for 127.0.0.1')


@test
def client_blocked_by_local_address():
    echo = Target(h_echo)
    d = tmpdir()
    conf, log = render_template('rules.conf.in', d, BLOCKED_PORT=free_port())
    srv = Server(conf, host='127.0.0.5')
    c = RawClient(srv.addr, source='127.0.0.1')
    try:
        c.send(greeting())
    except OSError:
        pass
    expect_closed_silently(c, 'connection to local address 127.0.0.5')
    lines = wait_log(log, r'\bblock\b.*local=127\.0\.0\.5\b')
    ok(lines, 'log: a block line with local=127.0.0.5', read_log(log))
    like(lines[0] if lines else '', rule_re(conf, 'client-to'), 'it names the [client-to] rule')
    is_(len(echo.records), 0, 'the target saw no connection')


@test
def client_blocked_by_default():
    d = tmpdir()
    log = os.path.join(d, 'sockd.log')
    conf, _ = make_conf(d, text=conf_text(log, rules='socks pass { from: 0/0 to: 0/0 }\n'))
    srv = Server(conf)
    c = RawClient(srv.addr)
    try:
        c.send(greeting())
    except OSError:
        pass
    expect_closed_silently(c, 'no client rule')
    lines = wait_log(log, r'\bblock\b')
    ok(lines, 'log: a block line', read_log(log))
    like(lines[0] if lines else '', r'rule=default\b', 'it says rule=default')


@test
def client_passed_ipv6():
    echo = Target(h_echo, host='::1')
    srv, conf, log = rules_proxy(free_port(), host='::1')
    c, m, rep = socks_connect(srv.addr, '::1', echo.port)
    is_(rep.rep, 0, 'client ::1 to target ::1 passes ([client-v6], [socks-v6])')
    c.send(b'v6')
    is_(c.recv_exact(2), b'v6', 'relayed')
    lines = wait_log(log, r'\bpass\b')
    like(lines[0] if lines else '', rule_re(conf, 'socks-v6'), 'pass line names the [socks-v6] rule')


def socks_refused(srv, target_host, target_port, target, source=None, what=''):
    c = RawClient(srv.addr, source=source)
    is_(c.greet(), b'\x05\x00', '%s: method reply' % what)
    c.send(req_ipv4(target_host, target_port) + b'must not be relayed')
    try:
        rep = c.read_reply()
        is_(rep.rep, 2, '%s: reply 02 (not allowed by ruleset)' % what, repr(rep))
    except (EOFError, OSError, ValueError) as e:
        ok(False, '%s: reply 02 (not allowed by ruleset)' % what, 'no reply: %r' % (e,))
    data, how, _ = c.wait_closed(5)
    ok(data == b'' and how in ('eof', 'reset'), '%s: then closed' % what, '%r %s' % (data, how))
    ok(not target.wait_conns(1, timeout=0.3), '%s: the target saw no connection' % what,
       repr(target.records))


@test
def socks_blocked_by_port():
    blocked = Target(h_echo)
    allowed = Target(h_echo)
    srv, conf, log = rules_proxy(blocked.port)
    socks_refused(srv, '127.0.0.1', blocked.port, blocked, what='port %d' % blocked.port)
    lines = wait_log(log, r'\bblock\b.*dest=\S*%d|\bblock\b.*%d' % (blocked.port, blocked.port))
    if not lines:
        lines = wait_log(log, r'\bblock\b')
    ok(lines, 'log: block line', read_log(log))
    like(lines[0] if lines else '', rule_re(conf, 'socks-port'), 'it names the [socks-port] rule')
    c, m, rep = socks_connect(srv.addr, '127.0.0.1', allowed.port)
    is_(rep.rep, 0, 'another port on the same address passes')
    lines = wait_log(log, r'\bpass\b')
    like(lines[0] if lines else '', rule_re(conf, 'socks-v4'), 'pass line names the [socks-v4] rule')


@test
def socks_blocked_by_client_address():
    echo = Target(h_echo)
    srv, conf, log = rules_proxy(free_port())
    socks_refused(srv, '127.0.0.1', echo.port, echo, source='127.0.0.3', what='client 127.0.0.3')
    lines = wait_log(log, r'\bblock\b.*client=127\.0\.0\.3\b')
    ok(lines, 'log: block line for client=127.0.0.3', read_log(log))
    like(lines[0] if lines else '', rule_re(conf, 'socks-from'), 'it names the [socks-from] rule')


@test
def socks_blocked_by_default():
    other = Target(h_echo, host='127.0.0.4')
    srv, conf, log = rules_proxy(free_port())
    socks_refused(srv, '127.0.0.4', other.port, other, what='127.0.0.4 (no socks rule)')
    lines = wait_log(log, r'\bblock\b')
    ok(lines, 'log: block line', read_log(log))
    like(lines[0] if lines else '', r'rule=default\b', 'it says rule=default')


@test
def socks_blocked_name_target():
    # the rules apply to the address the name resolves to
    blocked = Target(h_echo)
    srv, conf, log = rules_proxy(blocked.port)
    c = RawClient(srv.addr)
    c.greet()
    c.send(req_domain('localhost', blocked.port))
    rep = c.read_reply()
    is_(rep.rep, 2, 'localhost:<blocked port> by name: reply 02', repr(rep))
    ok(not blocked.wait_conns(1, timeout=0.3), 'the target saw no connection')


@test
def syntax_error_closes_without_reply():
    conf = os.path.join(CONFDIR, 'syntax-error.conf')
    line = line_of(conf, '[syntax-error]')
    echo = Target(h_echo)
    srv = Server(conf)
    c = RawClient(srv.addr)
    try:
        c.send(greeting() + req_ipv4('127.0.0.1', echo.port))
    except OSError:
        pass
    expect_closed_silently(c, 'rules file with a syntax error')
    is_(len(echo.records), 0, 'the target saw no connection')
    codes = srv.wait_exit_codes(1)
    is_(codes, [2], 'the session exits 2 (rules file cannot be loaded)', srv.stderr())
    like(srv.stderr(), r'syntax-error\.conf:%d\b' % line,
         'stderr names syntax-error.conf:%d' % line)


@test
def missing_rules_file():
    d = tmpdir()
    srv = Server(os.path.join(d, 'does-not-exist.conf'))
    c = RawClient(srv.addr)
    try:
        c.send(greeting())
    except OSError:
        pass
    expect_closed_silently(c, 'missing rules file')
    is_(srv.wait_exit_codes(1), [2], 'the session exits 2', srv.stderr())
    like(srv.stderr(), r'does-not-exist\.conf', 'stderr names the file')


main(time_limit=60)
