#!/usr/bin/python3
"""A short fixed fuzz run of every libFuzzer target, under ASan+UBSan: the
SOCKS decoders (whole = byte by byte), the rules parser (parse, dump,
parse: same text) and the compiled-image loader (damaged images refused or
used safely; intact ones say what the text says).  Long campaigns are `make fuzz`."""
import os
import shutil
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
from sockdtest import *  # noqa: E402,F403

RUNS = {'fuzz_socks': 200000, 'fuzz_rules': 20000, 'fuzz_image': 10000}


@test
def fuzz_targets():
    if not shutil.which('clang'):
        bail_out('clang is not installed (t/deps.sh test installs it)')
    r = run(['make', '-s', '-C', SRCDIR, 'fuzz-build'], timeout=300)
    is_(r.returncode, 0, 'fuzz targets build', (r.stdout + r.stderr).decode()[-2000:])
    seeds = {'fuzz_socks': [os.path.join(SRCDIR, 'fuzz', 'corpus', 'socks')],
             'fuzz_rules': [os.path.join(SRCDIR, 'conf'), CONFDIR],
             'fuzz_image': [os.path.join(SRCDIR, 'conf'), CONFDIR]}
    for name, runs in RUNS.items():
        work = tmpdir()
        argv = [os.path.join(SRCDIR, 'build-fuzz', name), '-runs=%d' % runs, '-seed=1']
        if name in ('fuzz_rules', 'fuzz_image'):
            argv.append('-dict=' + os.path.join(SRCDIR, 'fuzz', 'rules.dict'))
        r = run(argv + [work] + seeds[name], timeout=300)
        out = r.stderr.decode(errors='replace')
        ok(r.returncode == 0 and 'Done %d runs' % runs in out,
           '%s: %d inputs, no crash, no sanitizer report' % (name, runs), out[-3000:])


main()
