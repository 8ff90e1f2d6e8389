#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A small hostile DNS responder for the reliability lab (loopback only).

Answers A/AAAA queries from records given on the command line, and misbehaves
on request: delays AAAA (or A) answers, drops queries, answers NXDOMAIN or
SERVFAIL.  UDP only (what c-ares and glibc use for these small answers).

  dnsd.py --listen 127.0.0.1 --port 53 --ready FILE \
          --record lab.test=127.0.0.1 --record lab.test=::1 \
          [--delay-aaaa MS] [--delay-a MS] [--drop NAME] [--drop-aaaa NAME]
          [--nxdomain NAME] [--servfail NAME] [--servfail-aaaa NAME] [--log FILE]

Names not in any list get NXDOMAIN.  Every query is logged (time, name, type,
what was done) to --log, so tests can check what the resolver asked.
It refuses to bind anything but a loopback address.
"""
import argparse
import ipaddress
import socket
import struct
import sys
import threading
import time

QTYPE_A, QTYPE_AAAA = 1, 28
RCODE_NXDOMAIN, RCODE_SERVFAIL = 3, 2


def parse_query(pkt):
    if len(pkt) < 12:
        return None
    qid, flags, qd, _an, _ns, _ar = struct.unpack("!HHHHHH", pkt[:12])
    if qd < 1 or flags & 0x8000:
        return None
    off, labels = 12, []
    while True:
        if off >= len(pkt):
            return None
        n = pkt[off]
        off += 1
        if n == 0:
            break
        if n & 0xC0 or off + n > len(pkt):
            return None
        labels.append(pkt[off:off + n].decode("ascii", "replace").lower())
        off += n
    if off + 4 > len(pkt):
        return None
    qtype, qclass = struct.unpack("!HH", pkt[off:off + 4])
    question = pkt[12:off + 4]
    return qid, flags, ".".join(labels), qtype, qclass, question


def build_answer(qid, qflags, question, rcode, rdatas, qtype):
    # QR, opcode copied, AA, RD copied, RA.
    flags = 0x8000 | (qflags & 0x7800) | 0x0400 | (qflags & 0x0100) | 0x0080 | rcode
    out = struct.pack("!HHHHHH", qid, flags, 1, len(rdatas), 0, 0) + question
    for rd in rdatas:
        out += struct.pack("!HHHIH", 0xC00C, qtype, 1, 5, len(rd)) + rd
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=53)
    ap.add_argument("--ready")
    ap.add_argument("--log")
    ap.add_argument("--record", action="append", default=[])
    ap.add_argument("--delay-aaaa", type=int, default=0)
    ap.add_argument("--delay-a", type=int, default=0)
    ap.add_argument("--drop", action="append", default=[])
    ap.add_argument("--drop-aaaa", action="append", default=[])
    ap.add_argument("--nxdomain", action="append", default=[])
    ap.add_argument("--servfail", action="append", default=[])
    ap.add_argument("--servfail-aaaa", action="append", default=[])
    a = ap.parse_args()

    if not ipaddress.ip_address(a.listen).is_loopback:
        sys.exit("dnsd.py: refusing to listen on a non-loopback address")
    zone = {}
    for r in a.record:
        name, _, ip = r.partition("=")
        addr = ipaddress.ip_address(ip)
        if not (addr.is_loopback or addr.is_private):
            sys.exit("dnsd.py: records must be loopback or namespace-local addresses")
        zone.setdefault(name.lower(), []).append(addr)

    fam = socket.AF_INET6 if ":" in a.listen else socket.AF_INET
    sock = socket.socket(fam, socket.SOCK_DGRAM)
    sock.bind((a.listen, a.port))
    log = open(a.log, "a", buffering=1) if a.log else None
    lock = threading.Lock()
    t0 = time.monotonic()

    def note(name, qtype, what):
        if log:
            with lock:
                log.write("%.3f %s %s %s\n" % (time.monotonic() - t0, name,
                                               {1: "A", 28: "AAAA"}.get(qtype, qtype), what))

    def send(data, peer):
        with lock:
            sock.sendto(data, peer)

    if a.ready:
        with open(a.ready, "w") as f:
            f.write("%d\n" % sock.getsockname()[1])

    while True:
        pkt, peer = sock.recvfrom(4096)
        q = parse_query(pkt)
        if not q:
            continue
        qid, qflags, name, qtype, _qclass, question = q
        if name in a.drop or (qtype == QTYPE_AAAA and name in a.drop_aaaa):
            note(name, qtype, "dropped")
            continue
        if name in a.servfail or (qtype == QTYPE_AAAA and name in a.servfail_aaaa):
            note(name, qtype, "SERVFAIL")
            send(build_answer(qid, qflags, question, RCODE_SERVFAIL, [], qtype), peer)
            continue
        if name in a.nxdomain or name not in zone:
            note(name, qtype, "NXDOMAIN")
            send(build_answer(qid, qflags, question, RCODE_NXDOMAIN, [], qtype), peer)
            continue
        want = {QTYPE_A: 4, QTYPE_AAAA: 6}.get(qtype)
        rdatas = [ad.packed for ad in zone[name] if ad.version == want]
        reply = build_answer(qid, qflags, question, 0, rdatas, qtype)
        delay = a.delay_aaaa if qtype == QTYPE_AAAA else a.delay_a if qtype == QTYPE_A else 0
        if delay:
            note(name, qtype, "answer in %d ms" % delay)
            threading.Timer(delay / 1000.0, send, (reply, peer)).start()
        else:
            note(name, qtype, "answered")
            send(reply, peer)


if __name__ == "__main__":
    main()
