#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""ioa-connect demo: local listeners, then the waterfall of three connects.

Usage: scripts/demo.py PATH/TO/ioa-connect      (scripts/demo builds it first)

(a) "localhost" resolving to ::1 and 127.0.0.1, where [::1]:P refuses and
    127.0.0.1:P accepts (same port): the Happy Eyeballs race.
(b) an address list whose first attempts fail, then one that works.
(a') the same race with the answers from a DNS server of our own on
    127.0.0.1 (--dns-server; c-ares asks nobody else), AAAA 20 ms after A.
(c) an attempt that can only time out: a loopback listener whose backlog is
    full (listen(fd, 0), filled, never accepted), with --attempt-timeout.

Nothing leaves the machine: every address is 127.0.0.1 or ::1.  For (a) the
demo runs in a private network namespace with its own /etc/hosts (so
"localhost" has both addresses even where the system file lists only
127.0.0.1) and a resolv.conf pointing at 127.0.0.1 inside that namespace.
"""
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading

BOLD = "\033[1m" if sys.stdout.isatty() else ""
PLAIN = "\033[0m" if sys.stdout.isatty() else ""


def banner(text):
    print("\n%s==== %s%s" % (BOLD, text, PLAIN), flush=True)


def show_cmd(args):
    print("$ " + " ".join(a if a and " " not in a else repr(a) for a in args), flush=True)


def run_tool(args, stdin=b""):
    show_cmd(["ioa-connect"] + args[1:])
    p = subprocess.run(args, input=stdin, stdout=subprocess.PIPE, timeout=60)
    if p.stdout:
        print("(stdout) " + p.stdout.decode("utf-8", "replace"), flush=True)
    print("exit status %d" % p.returncode, flush=True)
    return p.returncode


class ReplyServer:
    """Reads until EOF, replies "got N bytes: ..." and closes."""

    def __init__(self, family, host, port=0):
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.stopping = False
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        self.sock.settimeout(0.2)
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            c.settimeout(10)
            try:
                data = b""
                while True:
                    chunk = c.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                c.sendall(b"got %d bytes: %s" % (len(data), data.strip()))
            except OSError:
                pass
            c.close()

    def close(self):
        self.stopping = True
        self.sock.close()


def closed_port(family, host):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.bind((host, 0))
    port = s.getsockname()[1]
    s.close()
    return port


class BlackHole:
    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(0)
        self.port = self.sock.getsockname()[1]
        self.fillers = []
        for _ in range(8):
            c = socket.socket()
            c.setblocking(False)
            c.connect_ex(("127.0.0.1", self.port))
            self.fillers.append(c)
            if not select.select([], [c], [], 1.0)[1]:
                return  # this one hangs: the queue is full
        raise RuntimeError("could not fill the listen backlog")

    def close(self):
        for c in self.fillers:
            c.close()
        self.sock.close()


def have_ipv6():
    try:
        s = socket.socket(socket.AF_INET6)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


def part_a_inside(binary):
    """Runs with "localhost" = ::1 and 127.0.0.1: IPv4 listener only."""
    srv = ReplyServer(socket.AF_INET, "127.0.0.1")
    try:
        # Same port on ::1 refuses: nothing listens there.
        code = run_tool([binary, "-v", "-z", "localhost", str(srv.port)])
    finally:
        srv.close()
    return code


def part_a(binary, here):
    banner("(a) Happy Eyeballs: localhost = [::1] (refuses) and 127.0.0.1 (accepts), same port")
    if not have_ipv6():
        print("no ::1 on this machine: skipped")
        return True
    tmp = tempfile.mkdtemp(prefix="ioa-demo-")
    try:
        hosts = os.path.join(tmp, "hosts")
        resolv = os.path.join(tmp, "resolv.conf")
        with open(hosts, "w") as f:
            f.write("127.0.0.1 localhost\n::1 localhost\n")
        with open(resolv, "w") as f:
            f.write("nameserver 127.0.0.1\n")
        probe = ["unshare", "-n", "-m", "sh", "-c", "ip link set lo up"]
        if shutil.which("unshare") and subprocess.run(
                probe, stderr=subprocess.DEVNULL, timeout=30).returncode == 0:
            script = ('ip link set lo up && mount --bind "$1" /etc/hosts && '
                      'mount --bind "$2" /etc/resolv.conf && exec python3 "$3" --part-a "$4"')
            print("(in a private network namespace whose /etc/hosts maps localhost to ::1 "
                  "and 127.0.0.1)", flush=True)
            p = subprocess.run(["unshare", "-n", "-m", "sh", "-c", script, "sh", hosts, resolv,
                                here, binary], timeout=120)
            return p.returncode == 0
        print("no private network namespace here: using the system /etc/hosts instead")
        with open("/etc/hosts") as f:
            lines = [l.split("#")[0].split() for l in f]
        names6 = any(l and l[0] == "::1" and "localhost" in l[1:] for l in lines)
        names4 = any(l and l[0] == "127.0.0.1" and "localhost" in l[1:] for l in lines)
        if not names4:
            print("/etc/hosts has no 127.0.0.1 localhost entry: skipped (no system DNS lookups)")
            return True
        if not names6:
            print("note: /etc/hosts maps localhost to 127.0.0.1 only, so there is no race")
        return part_a_inside(binary) == 0
    finally:
        shutil.rmtree(tmp)


def part_a_dns(binary):
    """(a') the same race with answers from a DNS server of our own on
    127.0.0.1 (c-ares asks only it): A first, AAAA 20 ms later, within the
    50 ms resolution delay, so IPv6 is still tried first."""
    banner("(a') the same race, names from our own DNS server on 127.0.0.1 "
           "(AAAA answered 20 ms after A)")
    if not have_ipv6():
        print("no ::1 on this machine: skipped")
        return True
    sys.dont_write_bytecode = True  # keep the source tree clean
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test"))
    import cli_test
    srv = ReplyServer(socket.AF_INET, "127.0.0.1")
    dns = cli_test.DnsServer({"demo.ioa.test": {1: ["127.0.0.1"], 28: ["::1"]}}, aaaa_delay=0.02)
    try:
        code = run_tool([binary, "-v", "-z", "--dns-server", "127.0.0.1:%d" % dns.port,
                         "demo.ioa.test", str(srv.port)])
    finally:
        srv.close()
        dns.close()
    if code == 64:
        print("(this build has no c-ares backend: skipped)")
        return True
    return code == 0


def part_b(binary):
    banner("(b) an address list where the first attempts fail")
    srv = ReplyServer(socket.AF_INET, "127.0.0.1")
    try:
        addrs = ["127.0.0.1:%d" % closed_port(socket.AF_INET, "127.0.0.1")]
        if have_ipv6():
            addrs.append("[::1]:%d" % closed_port(socket.AF_INET6, "::1"))
        addrs.append("127.0.0.1:%d" % srv.port)
        args = [binary, "-v"]
        for a in addrs:
            args += ["--addr", a]
        code = run_tool(args, stdin=b"hello from ioa-connect\n")
    finally:
        srv.close()
    return code == 0


def part_c(binary):
    banner("(c) an attempt that can only time out (full-backlog listener on 127.0.0.1)")
    bh = BlackHole()
    srv = ReplyServer(socket.AF_INET, "127.0.0.1")
    try:
        code1 = run_tool([binary, "-v", "-z", "--attempt-timeout", "0.5",
                          "--addr", "127.0.0.1:%d" % bh.port])
        banner("(c') the same black hole in a Happy Eyeballs race: the next address wins")
        code2 = run_tool([binary, "-v", "-z", "--race", "--attempt-delay", "100",
                          "--addr", "127.0.0.1:%d" % bh.port, "--addr", "127.0.0.1:%d" % srv.port])
    finally:
        bh.close()
        srv.close()
    return code1 == 1 and code2 == 0


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--part-a":
        return 0 if part_a_inside(sys.argv[2]) == 0 else 1
    if len(sys.argv) != 2:
        print(__doc__)
        return 64
    binary = os.path.abspath(sys.argv[1])
    here = os.path.abspath(__file__)
    ok = [part_a(binary, here), part_a_dns(binary), part_b(binary), part_c(binary)]
    banner("demo %s" % ("finished: every outcome as expected" if all(ok)
                        else "FAILED: see above (parts a, a', b, c = %r)" % ok))
    return 0 if all(ok) else 1


if __name__ == "__main__":
    sys.exit(main())
