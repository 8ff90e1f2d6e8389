#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""examples/https_get against openssl s_server -www on 127.0.0.1, with a test
CA made here (cli_test.py's TlsPki): the page arrives with the CA given; the
system store alone refuses the test certificate (exit 1, X509's reason).

Usage: example_https_test.py PATH/https_get      (exit 77 = skipped)
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cli_test  # noqa: E402  (TlsPki, SServer, expect, Skip)


def main():
    binary = sys.argv[1]
    try:
        pki = cli_test.TlsPki()
    except cli_test.Skip as e:
        print("example_https_test: skipped: %s" % e)
        return 77
    try:
        srv = cli_test.SServer(pki.leaf)
        try:
            r = subprocess.run([binary, "localhost", str(srv.port), pki.ca], capture_output=True,
                               timeout=30)
            cli_test.expect(r.returncode == 0, "exit 0 with the test CA", r.stderr)
            cli_test.expect(r.stdout.startswith(b"HTTP/1.0 200 ok"), "the page", r.stdout)
            r = subprocess.run([binary, "localhost", str(srv.port)], capture_output=True,
                               timeout=30)
            err = r.stderr.decode("utf-8", "replace")
            cli_test.expect(r.returncode == 1, "exit 1 without it", err)
            cli_test.expect("unable to get local issuer certificate" in err, "the reason", err)
        finally:
            srv.close()
    finally:
        pki.close()
    print("PASS example_https_get")
    return 0


if __name__ == "__main__":
    sys.exit(main())
