#!/usr/bin/python3
"""bench/report.py WORKDIR: turns bench/run's raw figures into RESULTS.md.

raw.tsv: round, test, peer, metric, value (one line per figure per round).
Every cell is the median over the rounds with the min-max beside it; every
ratio is median(peer) / median(Dante) of the same run (for times and CPU,
lower is better; for rates, higher is better).
"""
import collections
import glob
import os
import re
import statistics
import sys

W = sys.argv[1]
raw = collections.defaultdict(list)          # (test, peer, metric) -> [values]
for line in open(os.path.join(W, 'raw.tsv')):
    parts = line.rstrip('\n').split('\t')
    if len(parts) != 5 or parts[4] == '':
        continue
    rnd, test, peer, metric, value = parts
    try:
        raw[(test, peer, metric)].append(float(value))
    except ValueError:
        pass
meta = {}
for line in open(os.path.join(W, 'meta.txt')):
    k, _, v = line.rstrip('\n').partition('\t')
    meta[k] = v


def med(test, peer, metric):
    v = raw.get((test, peer, metric))
    return statistics.median(v) if v else None


def rng(test, peer, metric):
    v = raw.get((test, peer, metric))
    return (min(v), max(v), len(v)) if v else None


def fmt(x):
    if x is None:
        return 'n/a'
    a = abs(x)
    if a == 0:
        return '0'
    if a >= 1000:
        return '{:,.0f}'.format(x).replace(',', ' ')
    if a >= 100:
        return '%.0f' % x
    if a >= 10:
        return '%.1f' % x
    if a >= 1:
        return '%.2f' % x
    if a >= 0.01:
        return '%.3f' % x
    return '%.2g' % x


def cell(test, peer, metric):
    m = med(test, peer, metric)
    if m is None:
        return 'n/a'
    lo, hi, n = rng(test, peer, metric)
    if n == 1:
        return fmt(m)
    return '%s (%s–%s)' % (fmt(m), fmt(lo), fmt(hi))


def ratio(test, peer, metric, ref='dante'):
    a, b = med(test, peer, metric), med(test, ref, metric)
    if a is None or b is None or b == 0:
        return 'n/a'
    return '%.2f×' % (a / b)


def errors(test, peer):
    v = raw.get((test, peer, 'errors'))
    return int(sum(v)) if v else 0


NAMES = {'sockd': 'sockd-session', 'sockd-log': 'sockd-session, logging',
         'minrelay': 'minimal splice relay', 'dante': 'Dante', 'microsocks': 'microsocks',
         'direct': 'direct (no proxy)', 'sockd-pam': 'sockd-session pam.username',
         'dante-pam': 'Dante pam.username', 'sockd-gss': 'sockd-session GSSAPI'}

out = []
w = out.append


def table(header, rows):
    w('| ' + ' | '.join(header) + ' |')
    w('|' + '|'.join('---' for _ in header) + '|')
    for r in rows:
        w('| ' + ' | '.join(r) + ' |')
    w('')


def rounds_of(test, peer, metric):
    v = raw.get((test, peer, metric))
    return len(v) if v else 0


# ---------------------------------------------------------------------------
w('# sockd-session benchmark results')
w('')
w('Written by `make bench` (`bench/run`, then `bench/report.py`); issue 7 is the '
  'specification. Do not edit by hand: run `make bench` again.')
w('')
w('- Date: %s; wall time of the measured part: %s s' % (meta.get('date', '?'),
                                                          meta.get('wall_seconds', '?')))
w('- Machine: %s CPUs, %s, %s RAM, AES-NI: %s; kernel %s; %s; load average at the end: %s'
  % (meta.get('nproc'), meta.get('cpu'), meta.get('mem'),
     'yes' if meta.get('cpu_flags_aes') == 'aes' else 'no', meta.get('kernel'), meta.get('os'),
     meta.get('loadavg')))
w('- Peers: sockd-session %s under `systemd-socket-activate --accept`, its rules compiled '
  '(`sockd-check --compile`, as `sockd.socket` does when it starts); Dante (danted) %s; '
  'microsocks %s; the minimal splice relay of issue 7 (bench/minrelay.c: SOCKS5 none + '
  'CONNECT + splice, no rules, no privilege drop, libc only) under the same spawner; '
  'direct = the load generator talks to the target server without a proxy. '
  'MIT krb5 %s, Linux-PAM %s.' % (meta.get('sockd_commit'), meta.get('dante'),
                                   meta.get('microsocks'), meta.get('krb5'), meta.get('pam')))
w('- Parameters: `%s`' % meta.get('params'))
w('- Proxy CPU: %s, all processes of the peer including exited sessions. Kernel memory: %s.'
  % (meta.get('cpu_method'), meta.get('kmem_method')))
w('- Loopback only, in a private network namespace; load generator, target server and '
  'proxy share the same %s CPUs. Sinks discard with `recv(MSG_TRUNC)` (no copy), so the '
  'proxy gets as much CPU as possible. Every run of the load generator connects from a '
  '127/8 source address of its own and asks for a target address of its own, so no run '
  'waits on the TIME_WAIT sockets of the runs before it. systemd-socket-activate runs with '
  '`SYSTEMD_LOG_LEVEL=warning` (it logs five lines per connection otherwise).' % meta.get('nproc'))
if meta.get('cpu_busy_s'):
    busy, ours = float(meta['cpu_busy_s']), float(meta.get('cpu_ours_s', 0))
    wall = float(meta.get('wall_seconds', 1)) or 1
    n = float(meta.get('nproc', 1))
    w('- Other load on the machine: during the measured part the CPUs were busy %.0f s, %.0f s '
      'of it ours (harness and peers); others used %.0f s, %.0f %% of the machine\'s %.0f '
      'CPU-seconds; hypervisor steal %s s. Load average at the start: %s.'
      % (busy, ours, max(0, busy - ours), 100 * max(0, busy - ours) / (wall * n), wall * n,
         meta.get('cpu_steal_s', '?'), meta.get('loadavg_start', '?')))
w('- Cells: median over the rounds (min–max). Ratios: median of the peer / median of Dante '
  'in the same run.')
w('- On loopback a sender runs the receiver\'s TCP processing in its own system call '
  '(softirq on the sending CPU): "proxy CPU" includes the TCP receive work for the proxy\'s '
  'peers, for every proxy alike.')
w('')
w('**Scaled down from issue 7** to fit ~20 minutes on 2 cores: bulk transfers of %s instead '
  'of 4 GiB (both ways: %s each way), 32 streams of %s each; %s connections per run; '
  'authenticated tests with %s connections and %s rounds; GSSAPI protection-level '
  'transfers of %s; %s rounds of everything else.'
  % (re.search(r'BULK=(\S+)', meta.get('params', '')).group(1),
     re.search(r'BULK=(\S+)', meta.get('params', '')).group(1),
     re.search(r'BULK32=(\S+)', meta.get('params', '')).group(1),
     re.search(r'CONNS=(\S+)', meta.get('params', '')).group(1),
     re.search(r'AUTH_CONNS=(\S+)', meta.get('params', '')).group(1),
     re.search(r'AUTH_ROUNDS=(\S+)', meta.get('params', '')).group(1),
     re.search(r'GSS_BULK=(\S+)', meta.get('params', '')).group(1),
     re.search(r'ROUNDS=(\S+)', meta.get('params', '')).group(1)))
w('')

# ---- headline ----------------------------------------------------------------
w('## Headline')
w('')


def hrow(what, test, metric, target=None, check=None, peer='sockd', ref='dante'):
    m, d = med(test, peer, metric), med(test, ref, metric)
    r = ratio(test, peer, metric, ref)
    verdict = ''
    if check and m is not None:
        ok = check(m, d)
        verdict = '' if ok is None else ('met' if ok else '**not met**')
    return [what, cell(test, peer, metric), cell(test, ref, metric), r,
            target or '', verdict]


rows = [
    hrow('Bulk 1 stream down, GiB/s', 'bulk_down', 'gibps', '≥ 1.7× Dante',
         lambda m, d: d and m >= 1.7 * d),
    hrow('Bulk 1 stream up, GiB/s', 'bulk_up', 'gibps', '≥ 1.7× Dante',
         lambda m, d: d and m >= 1.7 * d),
    hrow('Bulk 1 stream both ways, GiB/s (sum)', 'bulk_both', 'gibps', '≥ 1.7× Dante',
         lambda m, d: d and m >= 1.7 * d),
    hrow('Bulk 32 streams down, GiB/s', 'bulk_32', 'gibps', '≥ 1.7× Dante',
         lambda m, d: d and m >= 1.7 * d),
    hrow('CPU s/GiB, 1 stream down', 'bulk_down', 'cpu_s_per_gib', '≤ 0.5× Dante',
         lambda m, d: d and m <= 0.5 * d),
    hrow('CPU s/GiB, 32 streams', 'bulk_32', 'cpu_s_per_gib', '≤ 0.5× Dante',
         lambda m, d: d and m <= 0.5 * d),
    hrow('Connections/s, 16 at a time', 'conn_c16', 'cps'),
    hrow('Connections/s, 16 at a time, vs the minimal relay', 'conn_c16', 'cps',
         '≥ 0.9× minimal relay', lambda m, d: d and m >= 0.9 * d, ref='minrelay'),
    hrow('Latency p50 ms, 16 at a time', 'conn_c16', 'p50_ms'),
    hrow('Latency p99 ms, 16 at a time', 'conn_c16', 'p99_ms'),
    hrow('CPU ms per connection, 16 at a time', 'conn_c16', 'cpu_ms_per_conn'),
    hrow('PSS KB per idle session, 1 000 sessions', 'idle_1000', 'pss_kb_per_session',
         '≤ 100 KB and ≤ 0.45× Dante', lambda m, d: d and m <= 100 and m <= 0.45 * d),
    hrow('PSS KB per idle session, 200 sessions', 'idle_200', 'pss_kb_per_session',
         '≤ 100 KB and ≤ 0.45× Dante', lambda m, d: d and m <= 100 and m <= 0.45 * d),
    hrow('Kernel memory KB per idle session, 1 000', 'idle_1000', 'kmem_kb_per_session'),
    hrow('PAM (yescrypt) connections/s, 16 at a time', 'pam_yescrypt_c16', 'cps',
         peer='sockd-pam', ref='dante-pam'),
    hrow('PAM (SHA-512 crypt) connections/s, 16 at a time', 'pam_sha512_c16', 'cps',
         peer='sockd-pam', ref='dante-pam'),
]
rl = med('rules_10000', 'rules-image', 'median_ms')
rows.append(['Rules: load + match 10 000 rules (compiled image), ms',
             cell('rules_10000', 'rules-image', 'median_ms'),
             'text: ' + cell('rules_10000', 'rules-text', 'median_ms'), '', '≤ 1 ms',
             '' if rl is None else ('met' if rl <= 1 else '**not met**')])
for label, rk, hk in (('in a new process', 'rules-image', 'handshake-new-process'),
                      ('warm (repeated in one process)', 'rules-image-warm', 'handshake')):
    r_ = med('rules_10000', rk, 'median_ms')
    h_ = med('rules_10000', hk, 'median_us')
    rows.append(['Rules: 10 000 rules from the image vs a loopback TCP handshake, %s, µs' % label,
                 '' if r_ is None else '%.0f' % (r_ * 1000),
                 cell('rules_10000', hk, 'median_us'),
                 '%.1f×' % (r_ * 1000 / h_) if r_ and h_ else '',
                 'well under a handshake (issue 3)',
                 '' if not (r_ and h_) else ('met' if r_ * 1000 < h_ / 2 else '**not met**')])
for c in (1, 16):
    rows.append(['GSSAPI (confidentiality) connections/s, %d at a time' % c,
                 cell('gss_c%d' % c, 'sockd-gss', 'cps'), 'no GSSAPI in Debian\'s Dante', '', '', ''])
for lv, name in ((0, 'clear'), (1, 'integrity'), (2, 'confidentiality')):
    rows.append(['GSSAPI %s, 1 stream down, GiB/s' % name,
                 cell('gss_bulk_d_l%d' % lv, 'sockd-gss', 'gibps'), '', '', '', ''])
table(['Figure', 'sockd-session', 'reference (Dante unless said)', 'ratio', 'target (issue 7)',
       'verdict'], rows)

# ---- bulk ----------------------------------------------------------------------
w('## Bulk throughput')
w('')
w('One CONNECT per stream; the target sends (down), receives (up) or both at once. GiB/s '
  'of payload (both ways: the sum of the two directions); CPU seconds of all the '
  'peer\'s processes per GiB moved.')
w('')
for test, title in (('bulk_up', '1 stream, up (client → target)'),
                    ('bulk_down', '1 stream, down (target → client)'),
                    ('bulk_both', '1 stream, both ways at once'),
                    ('bulk_32', '32 concurrent streams, down')):
    w('### ' + title)
    w('')
    rows = []
    for p in ('sockd', 'dante', 'microsocks', 'direct'):
        e = errors(test, p)
        rows.append([NAMES[p] + (' (%d failed runs)' % e if e else ''), cell(test, p, 'gibps'),
                     ratio(test, p, 'gibps'), cell(test, p, 'cpu_s_per_gib'),
                     ratio(test, p, 'cpu_s_per_gib')])
    table(['Peer', 'GiB/s', '× Dante', 'CPU s/GiB', '× Dante'], rows)

# ---- connections -------------------------------------------------------------------
w('## Connection rate and latency')
w('')
w('Each connection: greeting (method none), CONNECT to 127.0.0.1, a 32-byte echo through '
  'the target, close. Latency: connect() to the echo back; CONNECT reply: connect() to '
  'the reply. sockd-session, logging: `log: connect disconnect` to a file '
  '(`logoutput: FILE`); the others log nothing per connection.')
w('')
for c in (1, 16, 64):
    test = 'conn_c%d' % c
    w('### %d at a time' % c)
    w('')
    rows = []
    for p in ('sockd', 'sockd-log', 'minrelay', 'dante', 'microsocks', 'direct'):
        e = errors(test, p)
        rows.append([NAMES[p] + (' (%d errors)' % e if e else ''), cell(test, p, 'cps'),
                     ratio(test, p, 'cps'), cell(test, p, 'p50_ms'), cell(test, p, 'p99_ms'),
                     cell(test, p, 'reply_p50_ms'), cell(test, p, 'reply_p99_ms'),
                     cell(test, p, 'cpu_ms_per_conn'), ratio(test, p, 'cpu_ms_per_conn')])
    table(['Peer', 'conn/s', '× Dante', 'p50 ms', 'p99 ms', 'CONNECT reply p50 ms',
           'reply p99 ms', 'CPU ms/conn', '× Dante'], rows)
a, b = med('conn_c16', 'sockd', 'cps'), med('conn_c16', 'sockd-log', 'cps')
if a and b:
    ca, cb = med('conn_c16', 'sockd', 'cpu_ms_per_conn'), med('conn_c16', 'sockd-log', 'cpu_ms_per_conn')
    w('Logging cost at 16 at a time: `log: connect disconnect` to a file gives %.2f× the '
      'connection rate without logging%s (the difference is within the run-to-run spread '
      'unless the min–max ranges above do not overlap).'
      % (b / a, ', at %.2f× the CPU per connection' % (cb / ca) if ca and cb else ''))
    w('')

# ---- memory -------------------------------------------------------------------------
w('## Memory per idle session')
w('')
w('N relayed sessions opened (greeting, CONNECT, a header to the target) and held idle. '
  'PSS: the sum of `Pss` in /proc/PID/smaps_rollup over all the peer\'s processes, '
  'divided by N ("total"), and the growth over the idle peer divided by N ("marginal"). '
  'Kernel memory: growth of the peer\'s memcg kernel memory divided by N (sockets, '
  'pipes, task structures, page tables, kernel stacks of the proxy side only). Dante and '
  'microsocks are restarted before each of these measurements: a daemon keeps the memory '
  'an earlier test made it grow.')
w('')
for n in (200, 1000):
    test = 'idle_%d' % n
    w('### %d sessions' % n)
    w('')
    rows = []
    peers = ['sockd', 'minrelay', 'dante', 'microsocks']
    if n == 200:
        peers += ['sockd-pam', 'sockd-gss']
    for p in peers:
        if not raw.get((test, p, 'pss_kb_per_session')) and not errors(test, p):
            continue
        e = errors(test, p)
        rows.append([NAMES[p] + (' (%d sessions failed)' % e if e else ''),
                     cell(test, p, 'pss_kb_per_session'), ratio(test, p, 'pss_kb_per_session'),
                     cell(test, p, 'pss_kb_marginal'), cell(test, p, 'kmem_kb_per_session'),
                     ratio(test, p, 'kmem_kb_per_session'), cell(test, p, 'processes')])
    table(['Peer', 'PSS KB/session (total)', '× Dante', 'PSS KB/session (marginal)',
           'kernel KB/session', '× Dante', 'processes'], rows)
w('The PAM session authenticated with SHA-512 crypt; the GSSAPI session at protection '
  'level 2 (confidentiality).')
w('')

# ---- startup ------------------------------------------------------------------------
w('## Start-up')
w('')
w('`loadgen spawn`: the SOCKS5 greeting is already waiting on the connection; the load '
  'generator forks and execs the program as systemd would (connection on fd 3, '
  '`LISTEN_FDS=1`, `LISTEN_PID`) and times fork → method reply (the first byte the session '
  'sends). One connection at a time. Configurations: no auth; `socksmethod: pam.username`; '
  '`socksmethod: gssapi` (the greeting offers the matching method).')
w('')
rows = []
for test, name in (('spawn_noauth', 'sockd-session, no auth'),
                   ('spawn_pam', 'sockd-session, pam.username config'),
                   ('spawn_gss', 'sockd-session, GSSAPI config'),
                   ('spawn_minrelay', 'minimal splice relay')):
    rows.append([name, cell(test, 'spawn', 'p50_ms'), cell(test, 'spawn', 'p90_ms'),
                 cell(test, 'spawn', 'min_ms')])
table(['Program', 'fork → first byte, p50 ms', 'p90 ms', 'fastest ms'], rows)


def ldstats(prefix):
    files = sorted(glob.glob(os.path.join(W, 'ld', prefix + '.*')))
    if not files:
        return None
    text = open(files[-1]).read()
    res = {}
    for key, pat in (('total', r'total startup time in dynamic loader:\s*([\d,]+)'),
                     ('reloc_time', r'time needed for relocation:\s*([\d,]+)'),
                     ('load_time', r'time needed to load objects:\s*([\d,]+)'),
                     ('relocs', r'number of relocations:\s*(\d+)'),
                     ('cached', r'number of relocations from cache:\s*(\d+)'),
                     ('relative', r'number of relative relocations:\s*(\d+)')):
        m = re.search(pat, text)
        res[key] = m.group(1).replace(',', '') if m else '?'
    return res


rows = []
mhz = float(meta.get('cpu_mhz') or 0)


def us(cycles):
    try:
        return '%s (%.0f µs)' % (cycles, float(cycles) / mhz) if mhz else cycles
    except ValueError:
        return cycles


for prefix, name in (('noauth', 'sockd-session'), ('minrelay', 'minimal splice relay')):
    st_ = ldstats(prefix)
    if st_:
        rows.append([name, us(st_['total']), us(st_['reloc_time']), us(st_['load_time']),
                     st_['relocs'], st_['relative'], st_['cached']])
if rows:
    w('`LD_DEBUG=statistics` at start (one exec; cycles of the time-stamp counter, µs at the '
      'nominal %s MHz). The loader\'s own count leaves out what glibc does before it counts '
      '(CPU feature and cache probing, see below).' % meta.get('cpu_mhz', '?'))
    w('')
    table(['Program', 'cycles in ld.so', 'relocation', 'loading objects', 'relocations',
           'relative relocations', 'from cache'], rows)

w('### The exec floor of this machine')
w('')
w('`loadgen execloop`: fork + exec + exit + wait, 300 times per round, µs each. nolibc: a '
  'static program without libc (one `exit` system call); noop: `int main(void) {return 0;}` '
  'with glibc, static and dynamic; the minimal relay and `sockd-session -v` (exit right after '
  'the arguments). CPUID: one CPUID instruction (leaf 2) in a loop; in a virtual machine '
  'each one exits to the hypervisor, and glibc\'s start-up (static or dynamic) issues '
  'dozens of them to learn the CPU\'s features and cache sizes.')
w('')
rows = []
for name, label in (('nolibc', 'static, no libc'), ('noop_static', 'glibc static no-op'),
                    ('noop_dynamic', 'glibc dynamic no-op'), ('minrelay', 'minimal splice relay'),
                    ('sockd_version', 'sockd-session -v')):
    rows.append([label, cell('execfloor', name, 'us_per_exec')])
rows.append(['one CPUID instruction', cell('execfloor', 'cpuid', 'us')])
table(['Program', 'µs per fork+exec+exit'], rows)
a, b, c = (med('execfloor', 'noop_static', 'us_per_exec'), med('execfloor', 'nolibc', 'us_per_exec'),
           med('execfloor', 'cpuid', 'us'))
if a and b and c:
    w('glibc\'s start-up costs %.0f µs per exec here over a program without libc, the time of '
      '%.0f CPUID instructions at %.1f µs each.' % (a - b, (a - b) / c, c))
    w('')

w('Shared objects mapped by one live, authenticated, relaying session (/proc/PID/maps), '
  'and that session\'s own PSS/RSS:')
w('')
rows = []
for f, name in (('libs.noauth', 'no auth'), ('libs.pam', 'pam.username (pam_unix)'),
                ('libs.gss', 'GSSAPI (krb5)'), ('libs.minrelay', 'minimal splice relay')):
    path = os.path.join(W, f)
    if not os.path.exists(path):
        continue
    lines = open(path).read().splitlines()
    if not lines:
        continue
    libs = lines[0].split()
    kv = dict(l.split('=', 1) for l in lines[1:] if '=' in l)
    rows.append([name, str(len(libs)), ' '.join('`%s`' % l for l in libs),
                 kv.get('pss_kb', '?'), kv.get('rss_kb', '?')])
table(['Config', 'objects', 'mapped shared objects', 'PSS KB', 'RSS KB'], rows)
ldd = os.path.join(W, 'ldd.sockd')
if os.path.exists(ldd):
    w('`ldd sockd-session`: ' + '; '.join(l.strip().split(' ')[0]
                                           for l in open(ldd) if l.strip()) +
      ' (libpam and libgssapi_krb5 are opened with dlopen on first use).')
    w('')

# ---- authentication -----------------------------------------------------------------
w('## Authentication')
w('')
w('pam.username through pam_unix (`auth required pam_unix.so nodelay`, `account required '
  'pam_unix.so`) in a throwaway /etc/pam.d service, against two throwaway users: one '
  'hashed with yescrypt (Debian 12\'s default for passwd, prefix `%s`), one with SHA-512 '
  'crypt (prefix `%s`, 5 000 rounds). Dante with the same PAM service. GSSAPI: RFC 1961 '
  'with MIT krb5 against a throwaway KDC on loopback (ticket already in the client\'s '
  'cache; enctypes: %s), protection level 2 (confidentiality) for the request and the '
  'echo. %s connections per run.'
  % (meta.get('hash_yescrypt', '?'), meta.get('hash_sha512', '?'),
     meta.get('gss_enctypes', '?').strip(';') or '?',
     re.search(r'AUTH_CONNS=(\S+)', meta.get('params', '')).group(1)))
w('')
rows = []
for test, name in (('pam_yescrypt', 'pam.username, yescrypt'),
                   ('pam_sha512', 'pam.username, SHA-512 crypt'),
                   ('gss', 'GSSAPI, confidentiality')):
    for c in (1, 16):
        t = '%s_c%d' % (test, c)
        peers = ['sockd-gss'] if test == 'gss' else ['sockd-pam', 'dante-pam']
        for p in peers:
            if not raw.get((t, p, 'cps')):
                continue
            e = errors(t, p)
            rows.append(['%s, %d at a time' % (name, c), NAMES[p] + (' (%d errors)' % e if e else ''),
                         cell(t, p, 'cps'),
                         ratio(t, p, 'cps', 'dante-pam') if test != 'gss' else '',
                         cell(t, p, 'p50_ms'), cell(t, p, 'p99_ms'),
                         cell(t, p, 'cpu_ms_per_conn'),
                         ratio(t, p, 'cpu_ms_per_conn', 'dante-pam') if test != 'gss' else ''])
table(['Test', 'Peer', 'conn/s', '× Dante', 'p50 ms', 'p99 ms', 'CPU ms/conn', '× Dante'], rows)

w('### What GSSAPI protection costs')
w('')
w('One stream of %s through sockd-session with GSSAPI at each protection level: clear '
  '(level 0: the splice relay), integrity (1: gss_wrap without encryption), '
  'confidentiality (2: encrypted). The client unwraps/wraps too, on the same CPUs.'
  % re.search(r'GSS_BULK=(\S+)', meta.get('params', '')).group(1))
w('')
rows = []
for d, dn in (('d', 'down'), ('u', 'up')):
    base = med('gss_bulk_%s_l0' % d, 'sockd-gss', 'gibps')
    for lv, name in ((0, 'clear'), (1, 'integrity'), (2, 'confidentiality')):
        t = 'gss_bulk_%s_l%d' % (d, lv)
        m = med(t, 'sockd-gss', 'gibps')
        rows.append([dn, name, cell(t, 'sockd-gss', 'gibps'),
                     '%.2f×' % (m / base) if m and base else 'n/a',
                     cell(t, 'sockd-gss', 'cpu_s_per_gib')])
table(['Direction', 'Level', 'GiB/s', '× clear', 'proxy CPU s/GiB'], rows)

# ---- rules ------------------------------------------------------------------------------
w('## Rules engine')
w('')
w('bench/rules_load.c: load a generated rules file and decide one connection that only the '
  'last rule matches (the per-connection work before the first byte), from the text '
  '(parse) and from its compiled image (sockd-check --compile), each sample in a new '
  'process as a session is, page cache warm, 50 samples per round; the median of each '
  'round, then the median (min–max) over the rounds.')
w('')
rows = []
for n in (100, 1000, 10000):
    rows.append(['{:,}'.format(n).replace(',', ' '),
                 cell('rules_%d' % n, 'rules-text', 'median_ms'),
                 cell('rules_%d' % n, 'rules-image', 'median_ms'),
                 cell('rules_%d' % n, 'rules-image', 'min_ms'),
                 cell('rules_%d' % n, 'rules-text-warm', 'median_ms'),
                 cell('rules_%d' % n, 'rules-image-warm', 'median_ms')])
table(['Rules', 'text: load + decide, median ms', 'image: load + decide, median ms',
       'image: fastest ms', 'text, warm, ms', 'image, warm, ms'], rows)
w('')
w('Warm: the same work repeated in the tool\'s own process (code, libc, page cache and '
  'heap warm), as the warm handshake below is measured.')
w('')
w('For scale (issue 3 names it as the yardstick): a TCP handshake on loopback '
  '(connect + accept, back to back in the same tool after a warm-up) took %s µs; the first '
  'handshake of a new process, as a session meets it, %s µs.'
  % (cell('rules_10000', 'handshake', 'median_us'),
     cell('rules_10000', 'handshake-new-process', 'median_us')))
w('')
w('From the image a session reads only the rules its client can match, through the '
  "image's index (rules/conf_index.h), so the time hardly grows with the number of rules; "
  'what remains is fixed cost of a new process touching code and memory for the first '
  'time (page faults, ~10-20 µs each on this VM).')

# ---- strace -ff: system calls per connection, by process ----------------------
sdir = os.path.join(W, 'strace')
sfiles = sorted(glob.glob(os.path.join(sdir, 't.*')))
if sfiles:
    buckets = {'spawner': collections.Counter(), 'child': collections.Counter(),
               'session': collections.Counter()}
    nsess = 0
    for f in sfiles:
        lines = open(f, errors='replace').read().splitlines()
        is_session = any(re.match(r'^execve\("[^"]*/sockd-session"', l) for l in lines)
        bucket = 'child' if is_session else 'spawner'
        if is_session:
            nsess += 1
        for l in lines:
            m = re.match(r'^(\w+)\(', l)
            if not m:
                continue
            if is_session and re.match(r'^execve\("[^"]*/sockd-session"', l):
                bucket = 'session'
            buckets[bucket][m.group(1)] += 1
    if nsess:
        w('## System calls per connection')
        w('')
        w('`strace -ff` over a separate sockd-session instance under systemd-socket-activate, '
          '%d no-auth connections one at a time (%d session processes seen); calls per '
          'connection in the spawner (accept, fork, reaping), in its child before `execve` '
          '(signal and descriptor set-up), and in sockd-session from `execve` to exit (ld.so, '
          'rules, negotiation, privilege drop, sandbox, connect, relay). Top 30.'
          % (int(re.search(r'STRACE_CONNS=(\d+)', meta.get('params', '')).group(1)), nsess))
        w('')
        allk = collections.Counter()
        for b in buckets.values():
            allk.update(b)
        rows = []
        for name, _ in allk.most_common(30):
            rows.append([name] + ['%.1f' % (buckets[b][name] / nsess) if buckets[b][name] else ''
                                  for b in ('spawner', 'child', 'session')]
                        + ['%.1f' % (allk[name] / nsess)])
        rows.append(['**all**'] + ['%.1f' % (sum(buckets[b].values()) / nsess)
                                   for b in ('spawner', 'child', 'session')]
                    + ['%.1f' % (sum(allk.values()) / nsess)])
        table(['system call', 'spawner', 'child before exec', 'sockd-session', 'total'], rows)

# ---- perf: where the CPU of a connection goes -----------------------------------------
def perf_rows(path, children):
    res = []
    if not os.path.exists(path):
        return res
    for line in open(path, errors='replace'):
        if children:
            m = re.match(r'^\s*([\d.]+)%\s+([\d.]+)%\s+(\S+)\s+\[(.)\]\s+(.+?)\s*$', line)
            if m:
                res.append((m.group(3), None, m.group(5), float(m.group(1)), float(m.group(2))))
        else:
            m = re.match(r'^\s*([\d.]+)%\s+(\S+)\s+(\S+)\s+\[(.)\]\s+(.+?)\s*$', line)
            if m:
                res.append((m.group(2), m.group(3), m.group(5), float(m.group(1)), None))
    return res


flat = perf_rows(os.path.join(W, 'perf.self.txt'), False)
inc = perf_rows(os.path.join(W, 'perf.children.txt'), True)
COMMS = ('systemd-socket-', '(activate)', 'sockd-session')
if flat and meta.get('perf_cpu_us_per_conn'):
    per_conn = float(meta['perf_cpu_us_per_conn'])
    selfc = collections.Counter()
    for comm, dso, sym, pct_, _ in flat:
        if comm in COMMS:
            selfc[comm] += pct_
    total = sum(selfc.values())

    def incl(comm, *syms):
        best = 0.0
        for c, _, sym, ch, _ in inc:
            if c == comm and any(sym == x or sym.startswith(x + '.') for x in syms):
                best = max(best, ch)
        return best

    def flat_sum(comm, pred):
        return sum(p_ for c, d, sym, p_, _ in flat if c == comm and pred(d, sym))

    PROBE = re.compile(r'^(intel_check_word|handle_intel|handle_amd|handle_zhaoxin|get_common_indices|'
                       r'get_common_cache_info|update_active|init_cpu_features|init_cacheinfo|'
                       r'dl_init_cacheinfo|get_extended_indices|cpu_features)')
    probe = flat_sum('sockd-session', lambda d, sym: 'ld-linux' in d and PROBE.match(sym))
    ldso = flat_sum('sockd-session', lambda d, sym: 'ld-linux' in d) - probe
    binary = flat_sum('sockd-session', lambda d, sym: d == 'sockd-session')
    libc = flat_sum('sockd-session', lambda d, sym: d.startswith('libc'))
    kern = flat_sum('sockd-session', lambda d, sym: d == '[kernel.kallsyms]')
    user_other = max(0.0, selfc['sockd-session'] - kern - probe - ldso - binary - libc)
    fork_ = incl('systemd-socket-', 'kernel_clone', '__do_sys_clone')
    exec_child = incl('(activate)', '__x64_sys_execve', 'do_execveat_common')
    exec_sess = incl('sockd-session', '__x64_sys_execve', 'do_execveat_common')
    seccomp = incl('sockd-session', 'do_seccomp')
    faults = incl('sockd-session', 'asm_exc_page_fault')
    exit_ = incl('sockd-session', '__x64_sys_exit_group', 'do_group_exit')
    kern_other = max(0.0, kern - exec_sess - seccomp - faults - exit_)
    rows_ = [
        ('spawner: fork (copying systemd-socket-activate\'s address space)', fork_),
        ('spawner: the rest (accept, reaping, event loop)', selfc['systemd-socket-'] - fork_),
        ('spawner\'s child: execve (dropping the forked address space, loading the ELF)', exec_child),
        ('spawner\'s child: the rest (copy-on-write faults, signal and descriptor set-up)',
         selfc['(activate)'] - exec_child),
        ('sockd-session, kernel: end of execve', exec_sess),
        ('sockd-session, kernel: page faults', faults),
        ('sockd-session, kernel: seccomp filter installation', seccomp),
        ('sockd-session, kernel: exit (address space teardown)', exit_),
        ('sockd-session, kernel: the rest (sockets, TCP, connect, splice, files, privilege drop)',
         kern_other),
        ('sockd-session, ld.so: glibc CPU feature / cache probing (CPUID)', probe),
        ('sockd-session, ld.so: the rest (loading, relocation, symbol lookup)', ldso),
        ('sockd-session, its own code (rules, negotiation, logging)', binary),
        ('sockd-session, libc', libc),
        ('sockd-session, other user code', user_other),
    ]
    w('## Where the CPU time of a connection goes')
    w('')
    w('`perf record -a -g` while %s no-auth connections run 16 at a time through sockd-session; '
      'the samples of the spawner (`systemd-socket-`), of its child before exec (`(activate)`) '
      'and of sockd-session, split by symbol (system-call shares are inclusive of what they '
      'call). µs per connection = share × the CPU per connection the cgroup measured in the '
      'same run (%.0f µs). perf in a VM samples with a timer: time with interrupts off lands '
      'on the instruction that turns them back on, which is still inside the same system call.'
      % (meta.get('perf_conns', '3000'), per_conn))
    w('')
    rows = [[name, '%.1f %%' % (100 * v / total), '%.0f' % (per_conn * v / total)]
            for name, v in rows_]
    rows.append(['**all**', '100 %', '%.0f' % per_conn])
    table(['Part', 'share of the proxy\'s CPU', 'µs per connection'], rows)

# ---- raw ------------------------------------------------------------------------------------
w('## Raw figures')
w('')
w('<details><summary>Every value of every round (test, peer, metric: values in round order)'
  '</summary>')
w('')
w('```')
for (test, peer, metric), v in sorted(raw.items()):
    w('%-18s %-12s %-20s %s' % (test, peer, metric, ' '.join(fmt(x) for x in v)))
w('```')
w('')
w('</details>')
print('\n'.join(out))
