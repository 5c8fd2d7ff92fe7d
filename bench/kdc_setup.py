#!/usr/bin/python3
"""A throwaway KDC for the benchmark (t/lib/kdc.py): service keys for
rcmd/localhost and rcmd/127.0.0.1 in a keytab, a user with a ticket.
Prints shell assignments; krb5kdc keeps running (its pid is KDC_PID_)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 't', 'lib'))
from kdc import Kdc  # noqa: E402

d = sys.argv[1]
k = Kdc(d)
try:
    keytab = os.path.join(d, 'sockd.keytab')
    k.add_service(keytab)
    k.add_user('benchuser')
    cc = k.kinit('benchuser', os.path.join(d, 'ccache'))
except Exception:
    k.stop()
    raise
print('KRB5_CONFIG=%s\nKRB5RCACHEDIR=%s\nKRB5CCNAME=%s\nKEYTAB=%s\nKDC_PID_=%d'
      % (k.conf, k.rcache, cc, keytab, k.proc.pid))
