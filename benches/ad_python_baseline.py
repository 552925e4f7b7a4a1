#!/usr/bin/env python3
"""Baseline for the credwheel-ad bench: a plain python ldap3 loop of unicodePwd
replaces against the lab's AD, the way a script would rotate passwords.

    python3 benches/ad_python_baseline.py pooled|new N DN

pooled: one verified LDAPS connection bound as Administrator, N modifies.
new:    N times: a new verified LDAPS connection, bind, modify, unbind.
Prints one JSON line: {"mode", "n", "seconds", "ops_per_s"} (timing excludes
interpreter start-up). Needs `pip install ldap3` and the lab's environment
(`eval "$(bash tools/lab env)"`). Passwords are random and never printed.
"""
import json
import os
import secrets
import ssl
import string
import sys
import time

from ldap3 import MODIFY_REPLACE, Connection, Server, Tls

ALPHABET = string.ascii_letters + string.digits + "-"


def password():
    # 20 characters with each class present (meets AD complexity).
    while True:
        p = "".join(secrets.choice(ALPHABET) for _ in range(20))
        if any(c.islower() for c in p) and any(c.isupper() for c in p) and any(c.isdigit() for c in p):
            return p


def main():
    mode, n, dn = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    tls = Tls(ca_certs_file=os.environ["CREDWHEEL_AD_CA"], validate=ssl.CERT_REQUIRED)
    server = Server(os.environ["CREDWHEEL_AD_URL"], use_ssl=True, tls=tls)
    user = os.environ["CREDWHEEL_AD_ADMIN_DN"]
    pw = os.environ["CREDWHEEL_AD_ADMIN_PASSWORD"]

    def modify(conn):
        value = ('"%s"' % password()).encode("utf-16-le")
        if not conn.modify(dn, {"unicodePwd": [(MODIFY_REPLACE, [value])]}):
            raise SystemExit("modify failed: %s" % conn.result)

    start = time.perf_counter()
    if mode == "pooled":
        conn = Connection(server, user=user, password=pw, auto_bind=True)
        start = time.perf_counter()
        for _ in range(n):
            modify(conn)
        elapsed = time.perf_counter() - start
        conn.unbind()
    elif mode == "new":
        for _ in range(n):
            conn = Connection(server, user=user, password=pw, auto_bind=True)
            modify(conn)
            conn.unbind()
        elapsed = time.perf_counter() - start
    else:
        raise SystemExit("mode must be pooled or new")
    print(json.dumps({"mode": mode, "n": n, "seconds": elapsed, "ops_per_s": n / elapsed}))


if __name__ == "__main__":
    main()
