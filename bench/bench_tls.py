#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""bench_tls: TLS on loopback, ioasync against the hand-written OpenSSL
client (the limit), GLib's GTlsConnection, Go's crypto/tls and Python
asyncio's ssl -- all against one server (bench/tls_server.c, OpenSSL).

  bench_tls                      one round; JSON result lines (scripts/bench)
  bench_tls --runs R [--results bench/RESULTS.md] [--quick]
                                 R rounds, contenders interleaved; a table of
                                 medians with ratios to raw (and a section of
                                 RESULTS.md)

Workloads (TLS 1.3, ECDSA P-256 certificate from a CA made here, verified
for "localhost" by every contender):
  tls k=1 / tls k=100   full handshakes (the server issues no tickets), each
                        connection: handshake, "ping" -> "pong", close_notify
  tls-resume k=1        the same with tickets: every contender that keeps a
                        session resumes (raw, ioasync, go)
  tls bulk              one connection reads 256 MiB (MB/s)
  tls idle              heap bytes per idle TLS connection after its
                        handshake (raw, ioasync), mallinfo2 before/after
The server runs on CPU 0, clients on CPU 1 (taskset), when there are two.
Every subprocess has a timeout; nothing leaves 127.0.0.1.
"""
import argparse
import datetime
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("IOA_BENCH_SRC") or os.path.normpath(os.path.join(HERE, "..", "..", "..",
                                                                        "bench"))
TIMEOUT = 120


def log(msg):
    print("bench_tls: " + msg, file=sys.stderr, flush=True)


def pki(tmp):
    def ossl(*a):
        subprocess.run(["openssl"] + list(a), check=True, capture_output=True, timeout=60)
    ca, cakey = os.path.join(tmp, "ca.pem"), os.path.join(tmp, "ca.key")
    ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", cakey, "-out", ca, "-days", "2", "-subj", "/CN=bench CA",
         "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign")
    key, csr, pem, ext = (os.path.join(tmp, x) for x in ("l.key", "l.csr", "l.pem", "l.ext"))
    with open(ext, "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n")
    ossl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
         "-out", csr, "-subj", "/CN=localhost")
    ossl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", cakey, "-CAcreateserial", "-out", pem,
         "-days", "2", "-extfile", ext)
    return ca, pem, key


def pinned(cpu, cmd):
    if (os.cpu_count() or 1) >= 2 and shutil.which("taskset"):
        return ["taskset", "-c", str(cpu)] + cmd
    return cmd


class Server:
    def __init__(self, pem, key, tickets):
        cmd = [os.path.join(HERE, "tls_server"), "-t", "900"] + (["--tickets"] if tickets else [])
        self.p = subprocess.Popen(pinned(0, cmd + [pem, key]), stdout=subprocess.PIPE, text=True)
        line = self.p.stdout.readline().split()
        if len(line) != 2 or line[0] != "ready":
            raise SystemExit("bench_tls: tls_server did not start")
        self.port = line[1]

    def close(self):
        self.p.terminate()
        self.p.wait(timeout=10)


def contenders():
    out = []
    exe = lambda p: os.path.isfile(p) and os.access(p, os.X_OK)
    for name, binary in (("raw", "tlspeer_raw"), ("ioasync", "tlspeer_ioa"),
                         ("glib", "tlspeer_glib"), ("go", "tlspeer_go")):
        path = os.path.join(HERE, binary)
        if exe(path):
            out.append((name, [path]))
        else:
            log("%s not built: %s skipped" % (binary, name))
    py = os.path.join(SRC, "tlspeer_asyncio.py")
    if os.path.exists(py):
        out.append(("asyncio", [sys.executable, py]))
    return out


MODES = {"raw": "hs resume bulk idle", "ioasync": "hs resume bulk idle", "go": "hs resume bulk",
         "glib": "hs bulk", "asyncio": "hs bulk"}


def workloads(quick):
    n = 300 if quick else 2000
    slow = 100 if quick else 500
    mib = 32 if quick else 256
    return [  # label, mode, n (fast clients), n (slow: python, glib), k, tickets
        ("tls k=1", "hs", n, slow, 1, False),
        ("tls k=100", "hs", n, slow, 100, False),
        ("tls-resume k=1", "resume", n, slow, 1, True),
        ("tls bulk", "bulk", mib, mib, 1, False),
        ("tls idle", "idle", 1000, 1000, 1000, False),
    ]


def one_round(quick, ca, servers):
    results = []
    for label, mode, n, n_slow, k, tickets in workloads(quick):
        port = servers[tickets].port
        for name, argv in contenders():
            if mode not in MODES.get(name, "").split():
                continue
            count = n_slow if name in ("asyncio", "glib") else n
            cmd = pinned(1, argv + [mode, port, str(count), str(k), ca, label])
            try:
                r = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                log("%s [%s]: timed out" % (name, label))
                continue
            lines = [l for l in r.stdout.splitlines() if l.startswith("{")]
            if r.returncode != 0 or not lines:
                log("%s [%s]: exit %d: %s" % (name, label, r.returncode,
                                              (r.stderr.strip().splitlines() or ["?"])[-1]))
                continue
            for l in lines:
                print(l, flush=True)
                results.append(json.loads(l))
    return results


def table(all_results, runs):
    samples = {}
    order = []
    for res in all_results:
        for key, val in res.items():
            if key in ("contender", "workload"):
                continue
            k = (res["contender"], res["workload"], key)
            if k not in samples:
                samples[k] = []
                order.append(k)
            samples[k].append(float(val))
    rows = []
    for c, w, m in order:
        v = samples[(c, w, m)]
        med = statistics.median(v)
        raw = samples.get(("raw", w, m))
        ratio = "%.2f" % (med / statistics.median(raw)) if raw else "-"
        rows.append([c, w, m, "%.1f" % med, "%.1f" % min(v), "%.1f" % max(v), str(len(v)), ratio])
    head = ["contender", "workload", "metric", "median", "min", "max", "runs", "/raw"]
    return head, rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=0)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--results", default=None)
    args = ap.parse_args()
    quick = args.quick or os.environ.get("IOA_BENCH_QUICK") == "1"
    if not shutil.which("openssl"):
        raise SystemExit("bench_tls: the openssl command is needed for the test CA")
    tmp = tempfile.mkdtemp(prefix="ioa-bench-tls-")
    try:
        ca, pem, key = pki(tmp)
        servers = {False: Server(pem, key, False), True: Server(pem, key, True)}
        try:
            load = os.getloadavg()[0]
            results = []
            for rnd in range(max(args.runs, 1)):
                if args.runs:
                    log("round %d/%d" % (rnd + 1, args.runs))
                results += one_round(quick, ca, servers)
        finally:
            for s in servers.values():
                s.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if not args.runs:
        return 0
    head, rows = table(results, args.runs)
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
    fmt = lambda r: "  ".join(x.ljust(widths[i]) if i < 3 else x.rjust(widths[i])
                              for i, x in enumerate(r))
    print("\n".join([fmt(head)] + [fmt(r) for r in rows]))
    if args.results:
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        cmd = "build/release/bench/bench_tls --runs %d%s --results %s" % (
            args.runs, " --quick" if quick else "", args.results)
        md = ["## TLS (bench_tls)", "", "Command: `%s`  " % cmd, "Date: %s  " % stamp,
              "Load average (1 min) at the start: %.2f  " % load,
              "Versions: %s" % subprocess.run(["openssl", "version"], capture_output=True,
                                              text=True).stdout.strip(), "",
              "Median/min/max of the runs; /raw = median / the hand-written OpenSSL client's "
              "median for the same workload and metric. handshakes_per_s and bulk_mb_s: higher "
              "is better; idle_bytes_per_conn: lower is better. See bench/bench_tls.py for "
              "the workloads.", "",
              "| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
        md += ["| " + " | ".join(r) + " |" for r in rows]
        text = open(args.results).read() if os.path.exists(args.results) else ""
        start, end = "<!-- tls -->", "<!-- /tls -->"
        block = start + "\n" + "\n".join(md) + "\n" + end
        if start in text and end in text:
            text = re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: block, text,
                          flags=re.S)
        else:
            text = text.rstrip("\n") + "\n\n" + block + "\n"
        with open(args.results, "w") as f:
            f.write(text)
        log("wrote " + args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
