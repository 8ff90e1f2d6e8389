#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Tests that run the built ioa-connect binary (issue 8).

Usage: cli_test.py --bin PATH/ioa-connect NAME   (runs test_NAME)
       cli_test.py --bin PATH/ioa-connect --all

Standard library only.  Every server is started here, on 127.0.0.1, ::1 or
unix sockets; names are numeric or "localhost" (resolved from /etc/hosts
with no family restriction, so the system DNS server is never asked).  A
"black hole" is a listen(fd, 0) socket whose backlog is filled and never
accepted: further SYNs are dropped, so attempts can only time out.  Every
subprocess and every wait is bounded.  Exit 77 = skipped.
"""
import argparse
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

BIN = None
RUN_TIMEOUT = 20  # seconds, per subprocess
SKIP = 77


class Skip(Exception):
    pass


# ------------------------------------------------------------------ helpers

def run(args, stdin=b"", timeout=RUN_TIMEOUT, env=None):
    """Run ioa-connect; returns (exit code, stdout bytes, stderr text)."""
    p = subprocess.run([BIN] + list(args), input=stdin, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout, env=env)
    err = p.stderr.decode("utf-8", "replace")
    sanitizer_clean(err)
    return p.returncode, p.stdout, err


def sanitizer_clean(err):
    """Under the asan and tsan presets a sanitizer report must fail the test even when
    the exit status happens to be the expected one."""
    for marker in ("AddressSanitizer", "LeakSanitizer", "ThreadSanitizer", "runtime error:"):
        expect(marker not in err, "no sanitizer report", err)


def expect(cond, what, *context):
    if not cond:
        msg = "FAILED: " + what
        for c in context:
            text = c if isinstance(c, str) else repr(c)
            if len(text) > 3000:  # a runaway output must not flood the log
                text = text[:3000] + "... (%d more characters)" % (len(text) - 3000)
            msg += "\n--- context ---\n" + text
        raise AssertionError(msg)


EVENT_KEYS = {
    "resolved": {"addrs"},
    "attempt": {"addr", "local"},
    "connected": {"addr", "local"},
    "connect_error": {"syscall", "errno", "message"},
    "resolve_error": {"errno", "message"},
    "warning": {"message"},
    "filter": {"what", "family", "kept", "dropped"},
    "io_error": {"syscall", "errno", "message"},
    "handshake": {"addr", "local"},
    "tls_handshake": {"version", "cipher", "alpn", "resumed", "verify"},
}


def check_event(ev, line):
    expect(isinstance(ev, dict), "event is an object", line)
    expect(isinstance(ev.get("t"), float) and ev["t"] >= 0, "t is a non-negative number", line)
    kind = ev.get("event")
    if kind == "fail":
        expect(ev.get("syscall") in ("socket", "bind", "connect", "setsockopt", "tls"),
               "fail has a known syscall", line)
        if ev["syscall"] == "socket":
            for k in ("family", "socktype", "protocol"):
                expect(k in ev, "socket fail has " + k, line)
            expect(isinstance(ev["protocol"], int), "protocol is a number", line)
        else:
            expect(isinstance(ev.get("addr"), str), "fail has addr", line)
        need = {"errno", "message"}
    else:
        expect(kind in EVENT_KEYS, "known event type", line)
        need = EVENT_KEYS[kind]
    for k in need:
        expect(k in ev, "%s has %s" % (kind, k), line)
    if "errno" in ev:
        expect(isinstance(ev["errno"], str) and ev["errno"].isupper() or
               ev["errno"].startswith("IOA_"), "errno is a symbolic name", line)
        expect(isinstance(ev["message"], str) and ev["message"], "message is text", line)
    for k in ("addr", "local"):
        if k in ev and not (kind == "resolved" and k == "local"):
            expect(ev[k] is None or isinstance(ev[k], str), k + " is a string or null", line)
    if kind == "resolved":
        expect(ev.get("local", True) is True, "resolved.local, when present, is true", line)
        expect(all(isinstance(a, str) for a in ev["addrs"]), "addrs are strings", line)


def events(stderr):
    """Every stderr line must be one JSON event; returns the list."""
    out = []
    last_t = 0.0
    for line in stderr.splitlines():
        try:
            ev = json.loads(line)
        except ValueError as e:
            raise AssertionError("stderr line is not JSON (%s): %r\nall:\n%s" % (e, line, stderr))
        check_event(ev, line)
        expect(ev["t"] >= last_t, "t never goes backwards", stderr)
        last_t = ev["t"]
        out.append(ev)
    return out


def of(evs, kind):
    return [e for e in evs if e["event"] == kind]


def have_ipv6():
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


def closed_port(family=socket.AF_INET):
    host = "127.0.0.1" if family == socket.AF_INET else "::1"
    s = socket.socket(family, socket.SOCK_STREAM)
    s.bind((host, 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Server:
    """A TCP or unix stream listener served by a thread.

    behaviour: "reply_after_eof": read until EOF, then send b"got:" + data
    and close (proves the client half-closed);  "hold": accept and keep;
    "reset": accept and close with an RST."""

    def __init__(self, family=socket.AF_INET, host="127.0.0.1", path=None,
                 behaviour="reply_after_eof", socktype=socket.SOCK_STREAM):
        self.sock = socket.socket(family, socktype)
        if family == socket.AF_UNIX:
            self.sock.bind(path)
        else:
            self.sock.bind((host, 0))
        self.sock.listen(16)
        self.port = None if family == socket.AF_UNIX else self.sock.getsockname()[1]
        self.behaviour = behaviour
        self.accepted = 0
        self.received = []
        self.held = []
        self.stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        self.sock.settimeout(0.1)
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            self.accepted += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn):
        conn.settimeout(RUN_TIMEOUT)
        try:
            if self.behaviour == "hold":
                self.held.append(conn)
                return
            if self.behaviour == "reset":
                import struct
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                time.sleep(0.2)
                conn.close()
                return
            data = b""
            while True:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
            self.received.append(data)
            conn.sendall(b"got:" + data)
            conn.close()
        except OSError:
            conn.close()

    def close(self):
        self.stop = True
        self.thread.join(2)
        self.sock.close()
        for c in self.held:
            c.close()


class BlackHole:
    """A loopback listener whose full backlog silently drops new SYNs."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(0)
        self.port = self.sock.getsockname()[1]
        self.fillers = []
        # Connect until one filler stays pending (1 s is far beyond a loopback
        # handshake even on a loaded machine): then the queue is full.
        for _ in range(8):
            c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            c.setblocking(False)
            c.connect_ex(("127.0.0.1", self.port))
            self.fillers.append(c)
            _, w, _ = select.select([], [c], [], 1.0)
            if not w:
                return
        raise Skip("could not fill the listen backlog")

    def close(self):
        for c in self.fillers:
            c.close()
        self.sock.close()


def accepted_nothing(srv, wait=0.3):
    time.sleep(wait)
    return srv.accepted == 0


def tmpdir():
    return tempfile.mkdtemp(prefix="ioa-cli-")


class DnsServer:
    """A tiny DNS server on 127.0.0.1 (UDP) for --dns-server tests: answers
    A/AAAA from a table, NXDOMAIN for other names, optional AAAA delay."""

    def __init__(self, table, aaaa_delay=0.0):
        import struct
        self.struct = struct
        self.table = table  # name -> {1: [ipv4...], 28: [ipv6...]}
        self.aaaa_delay = aaaa_delay
        self.queries = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _answer(self, q, peer):
        st = self.struct
        qid, flags = st.unpack("!HH", q[:4])
        i, labels = 12, []
        while q[i] != 0:
            labels.append(q[i + 1:i + 1 + q[i]].decode("ascii", "replace"))
            i += 1 + q[i]
        qtype, qclass = st.unpack("!HH", q[i + 1:i + 5])
        question = q[12:i + 5]
        name = ".".join(labels).lower()
        self.queries.append((name, qtype))
        rcode, answers = 0, []
        if name not in self.table:
            rcode = 3
        else:
            fam = socket.AF_INET if qtype == 1 else socket.AF_INET6 if qtype == 28 else None
            for ip in self.table[name].get(qtype, []) if fam else []:
                rdata = socket.inet_pton(fam, ip)
                answers.append(st.pack("!HHHIH", 0xC00C, qtype, 1, 60, len(rdata)) + rdata)
        hdr = st.pack("!HHHHHH", qid, 0x8180 | (flags & 0x0100) | rcode, 1, len(answers), 0, 0)
        reply = hdr + question + b"".join(answers)
        if qtype == 28 and self.aaaa_delay:
            threading.Timer(self.aaaa_delay, self._send, (reply, peer)).start()
        else:
            self._send(reply, peer)

    def _send(self, reply, peer):
        try:
            self.sock.sendto(reply, peer)
        except OSError:
            pass

    def _serve(self):
        self.sock.settimeout(0.1)
        while not self.stop:
            try:
                q, peer = self.sock.recvfrom(4096)
            except (socket.timeout, OSError):
                continue
            try:
                self._answer(q, peer)
            except (IndexError, ValueError):
                pass  # not a query we understand: no reply

    def close(self):
        self.stop = True
        self.thread.join(2)
        self.sock.close()


def need_cares():
    code, out, err = run(["--dns-server", "127.0.0.1:1", "-z", "127.0.0.1", "1"])
    if code == 64 and "c-ares" in err:
        raise Skip("built without c-ares")


# ------------------------------------------------------------------ tests

def test_help():
    code, out, err = run(["--help"])
    expect(code == 0, "--help exits 0", err)
    text = out.decode()
    for opt in ("--addr", "-4, -6", "--socktype", "--protocol", "--local ", "--local-host",
                "--local-service", "--sequential", "--attempt-delay", "--attempt-timeout",
                "--timeout", "-z", "-v", "--trace json"):
        expect(opt in text, "help mentions " + opt, text)
    code, out, err = run(["-h"])
    expect(code == 0 and b"Usage" in out, "-h prints usage", err)


def exit_statuses_in(text):
    """The exit statuses a help text or man page lists ("  130  interrupted")."""
    import re
    sect = text.split("Exit status", 1)[-1] if "Exit status" in text else text
    return set(int(m) for m in re.findall(r"^\s*(\d{1,3})\s{2,}\S", sect, re.M))


def test_help_exit_statuses():
    # --help lists every status the code can return, and the man page the same.
    code, out, err = run(["--help"])
    listed = exit_statuses_in(out.decode())
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools", "ioa_connect.c")
    import re
    with open(src) as f:
        defined = set(int(v) for v in re.findall(r"#define EXIT_[A-Z_]+ (\d+)", f.read()))
    expect(defined and listed == defined, "--help lists exactly the EXIT_* statuses %r"
           % sorted(defined), out.decode())
    man = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "doc", "man",
                       "ioa-connect.1")
    with open(man) as f:
        page = f.read()
    sect = page.split(".SH EXIT STATUS", 1)[1].split(".SH ", 1)[0]
    in_man = set(int(v) for v in re.findall(r"^\.IP (\d+)", sect, re.M))
    expect(in_man == defined, "ioa-connect(1) lists the same statuses", sect)


def test_stdout_closed_pipe():
    # `ioa-connect ... | head -c 10`: once the reader has gone, the next write
    # to stdout gets EPIPE (SIGPIPE is ignored): a quiet end, status 0.
    srv = Server()
    d = tmpdir()
    try:
        data = os.urandom(1 << 16) * 64  # 4 MiB back: far more than a pipe holds
        fn = os.path.join(d, "in")
        with open(fn, "wb") as f:
            f.write(data)
        with open(fn, "rb") as f:
            p = subprocess.Popen([BIN, "--addr", "127.0.0.1:%d" % srv.port], stdin=f,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            head = p.stdout.read(10)
            p.stdout.close()  # the reader goes away
            err = p.communicate(timeout=RUN_TIMEOUT)[1].decode("utf-8", "replace")
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        sanitizer_clean(err)
        expect(head == b"got:" + data[:6], "the first bytes arrived", head)
        expect(p.returncode == 0, "closed stdout: exit 0 (got %r)" % p.returncode, err)
        expect(err == "", "closed stdout: nothing on stderr", err)
    finally:
        srv.close()
        shutil.rmtree(d)


def test_version():
    code, out, err = run(["--version"])
    expect(code == 0 and out.startswith(b"ioa-connect"), "--version", out, err)
    code, out, err = run(["-V"])
    expect(code == 0 and out.startswith(b"ioa-connect"), "-V", out, err)


def test_usage_errors():
    srv = Server()
    a = "127.0.0.1:%d" % srv.port
    p = str(srv.port)
    cases = [
        (["--bogus", "127.0.0.1", p], "--bogus"),
        (["-x", "127.0.0.1", p], "-x"),
        (["--addr"], "--addr"),
        (["-t"], "-t"),
        (["--attempt-delay", "5", "--addr", a], "'5'"),
        (["--attempt-delay", "2001", "--addr", a], "'2001'"),
        (["--attempt-delay", "12ms", "--addr", a], "'12ms'"),
        (["--resolution-delay", "0", "--addr", a], "'0'"),
        (["--attempt-timeout", "-1", "--addr", a], "'-1'"),
        (["--timeout", "nan", "--addr", a], "'nan'"),
        (["--timeout", "", "--addr", a], "--timeout"),
        (["-q", "soon", "--addr", a], "'soon'"),
        (["-t", "bogus", "--addr", a], "'bogus'"),
        (["--protocol", "tcp", "--addr", a], "'tcp'"),
        (["--trace", "xml", "--addr", a], "'xml'"),
        (["--addr", "127.0.0.1"], "'127.0.0.1'"),
        (["--addr", "[::1:80"], "'[::1:80'"),
        (["--addr", "::1:80"], "'::1:80'"),
        (["--addr", "300.1.1.1:80"], "'300.1.1.1:80'"),
        (["--addr", "127.0.0.1:99999"], "'127.0.0.1:99999'"),
        (["--addr", "[fe80::1%ioa-no-such-if]:80"], "'[fe80::1%ioa-no-such-if]:80'"),
        (["--addr", a, "--local", "nonsense"], "'nonsense'"),
        (["--addr", a, "extra"], "'extra'"),
        (["127.0.0.1"], "SERVICE"),
        ([], "HOST"),
        (["127.0.0.1", p, "more"], "'more'"),
        (["", p], "HOST"),
        (["127.0.0.1", ""], "SERVICE"),
        (["-4", "-6", "127.0.0.1", p], "-4"),
        (["--sequential", "--race", "--addr", a], "--race"),
        (["-v", "--trace", "json", "--addr", a], "--trace"),
        (["--local", "127.0.0.1:0", "--local-host", "127.0.0.1", "--addr", a], "--local-host"),
        (["-6", "--addr", a], "-6"),
        (["--sequential=1", "--addr", a], "--sequential"),
        (["--dns-server", "127.0.0.1:53", "--addr", a], "--dns-server"),
        (["--dns-server", "", "127.0.0.1", p], "--dns-server"),
    ]
    try:
        for args, needle in cases:
            code, out, err = run(args)
            expect(code == 64, "exit 64 for %r" % (args,), err)
            expect(needle in err, "message for %r names %s" % (args, needle), err)
            expect(out == b"", "nothing on stdout for %r" % (args,), out)
        expect(accepted_nothing(srv), "no usage error reached the listener")
    finally:
        srv.close()


def test_unix_path_too_long():
    limit = 108  # sizeof(sun_path) on Linux
    path = "/tmp/" + "p" * 200 + ".sock"
    code, out, err = run(["--addr", "unix:" + path])
    expect(code == 64, "over-long unix path is a usage error", err)
    expect(path in err, "the whole path is shown, not truncated", err)
    names_limit = lambda e: str(limit) in e or str(limit - 1) in e  # with or without NUL
    expect(names_limit(err), "the message names the sun_path limit", err)
    code, out, err = run(["--local", "unix:" + path, "--addr", "unix:/tmp/x"])
    expect(code == 64 and names_limit(err), "--local path too long", err)


def test_stream_half_close():
    srv = Server()
    try:
        code, out, err = run(["--addr", "127.0.0.1:%d" % srv.port], stdin=b"hello\x00world")
        expect(code == 0, "exit 0", err)
        expect(out == b"got:hello\x00world", "server replied after our EOF (half-close)", out, err)
        expect(srv.received == [b"hello\x00world"], "server got the bytes", srv.received)
    finally:
        srv.close()


def test_stream_big_pipe():
    # 8 MiB through a pipe: the write queue reaches high water and stdin is
    # paused and resumed; nothing may be lost or reordered.
    srv = Server()
    try:
        data = os.urandom(1 << 16) * 128
        code, out, err = run(["--addr", "127.0.0.1:%d" % srv.port], stdin=data)
        expect(code == 0, "exit 0", err)
        expect(out == b"got:" + data, "8 MiB echoed intact", len(out))
    finally:
        srv.close()


def test_stdin_regular_file():
    srv = Server()
    d = tmpdir()
    try:
        data = bytes(range(256)) * 1000
        fn = os.path.join(d, "in")
        with open(fn, "wb") as f:
            f.write(data)
        with open(fn, "rb") as f:
            p = subprocess.run([BIN, "--addr", "127.0.0.1:%d" % srv.port], stdin=f,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               timeout=RUN_TIMEOUT)
        sanitizer_clean(p.stderr.decode("utf-8", "replace"))
        expect(p.returncode == 0, "exit 0", p.stderr)
        expect(p.stdout == b"got:" + data, "a regular-file stdin is copied whole", len(p.stdout))
    finally:
        srv.close()
        shutil.rmtree(d)


def test_zero_io():
    srv = Server(behaviour="hold")
    try:
        code, out, err = run(["-z", "--trace", "json", "--addr", "127.0.0.1:%d" % srv.port],
                             stdin=b"not sent")
        expect(code == 0, "-z exits 0 when connected", err)
        evs = events(err)
        expect(len(of(evs, "connected")) == 1, "one connected event", err)
        expect(out == b"", "-z copies nothing", out)
        deadline = time.time() + 5
        while srv.accepted == 0 and time.time() < deadline:
            time.sleep(0.02)
        expect(srv.accepted == 1, "the listener saw the connection")
    finally:
        srv.close()


def test_connected_json():
    srv = Server()
    try:
        code, out, err = run(["--trace", "json", "--addr", "127.0.0.1:%d" % srv.port], stdin=b"x")
        expect(code == 0, "exit 0", err)
        evs = events(err)
        att = of(evs, "attempt")
        expect(len(att) == 1 and att[0]["addr"] == "127.0.0.1:%d" % srv.port, "attempt", err)
        expect(att[0]["local"] is None, "no local address given: local is null", err)
        con = of(evs, "connected")
        expect(len(con) == 1 and con[0]["addr"] == "127.0.0.1:%d" % srv.port, "connected", err)
        expect(con[0]["local"].startswith("127.0.0.1:"), "connected.local is ours", err)
        expect(evs[-1]["event"] == "connected", "connected is the last connect event", err)
    finally:
        srv.close()


def test_refused_exit_1():
    port = closed_port()
    code, out, err = run(["--trace", "json", "--addr", "127.0.0.1:%d" % port])
    expect(code == 1, "refused: exit 1", err)
    evs = events(err)
    fails = of(evs, "fail")
    expect(len(fails) == 1 and fails[0]["syscall"] == "connect", "one connect fail", err)
    expect(fails[0]["errno"] == "ECONNREFUSED", "ECONNREFUSED", err)
    expect(fails[0]["addr"] == "127.0.0.1:%d" % port, "fail names the peer", err)
    ce = of(evs, "connect_error")
    expect(len(ce) == 1 and ce[0]["syscall"] == "connect" and ce[0]["errno"] == "ECONNREFUSED",
           "connect_error", err)
    code, out, err = run(["--addr", "127.0.0.1:%d" % port])
    expect(code == 1 and "Connection refused" in err, "plain message without a trace", err)


def test_first_attempts_fail():
    srv = Server()
    p1, p2 = closed_port(), closed_port()
    try:
        args = ["--trace", "json", "--addr", "127.0.0.1:%d" % p1, "--addr", "127.0.0.1:%d" % p2,
                "--addr", "127.0.0.1:%d" % srv.port]
        code, out, err = run(args, stdin=b"abc")
        expect(code == 0, "the third address connects", err)
        evs = events(err)
        fails = of(evs, "fail")
        expect([f["addr"] for f in fails] == ["127.0.0.1:%d" % p1, "127.0.0.1:%d" % p2],
               "both refused first, in order", err)
        expect(of(evs, "connected")[0]["addr"] == "127.0.0.1:%d" % srv.port, "connected", err)
        expect(out == b"got:abc", "data copied", out)
    finally:
        srv.close()


def test_verbose_waterfall():
    srv = Server()
    p1 = closed_port()
    try:
        code, out, err = run(["-v", "-z", "--addr", "127.0.0.1:%d" % p1,
                              "--addr", "127.0.0.1:%d" % srv.port])
        expect(code == 0, "exit 0", err)
        expect("timeline" in err and "legend" in err, "waterfall printed", err)
        rows = [l for l in err.splitlines() if "|" in l and ("127.0.0.1:" in l)]
        expect(len(rows) == 2, "one waterfall row per attempt", err)
        expect("x|" in rows[0].replace(" ", "") or "x" in rows[0].split("|")[1],
               "failed attempt marked x", err)
        expect("*" in rows[1].split("|")[1], "connected attempt marked *", err)
        expect("ECONNREFUSED" in rows[0] and "connected" in rows[1], "results shown", err)
        expect("attempt" in err and "fail" in err and "connected" in err, "live lines", err)
    finally:
        srv.close()


def test_verbose_resolve_row():
    srv = Server()
    try:
        code, out, err = run(["-v", "-z", "127.0.0.1", str(srv.port)])
        expect(code == 0, "exit 0", err)
        expect("resolving" in err and "resolved" in err, "resolution traced", err)
        rows = [l for l in err.splitlines() if "|" in l]
        expect(any(r.strip().startswith("resolve") and "#" in r for r in rows),
               "resolution has a # bar", err)
    finally:
        srv.close()


def test_resolve_mode_json():
    srv = Server()
    try:
        code, out, err = run(["--trace", "json", "-z", "127.0.0.1", str(srv.port)])
        expect(code == 0, "exit 0", err)
        evs = events(err)
        res = of(evs, "resolved")
        expect(res and "127.0.0.1:%d" % srv.port in res[0]["addrs"], "resolved event", err)
        expect(evs.index(res[0]) < evs.index(of(evs, "attempt")[0]), "resolved before attempt",
               err)
    finally:
        srv.close()


def hosts_has_localhost4():
    try:
        with open("/etc/hosts") as f:
            return any(l.split("#")[0].split()[:1] == ["127.0.0.1"] and
                       "localhost" in l.split("#")[0].split()[1:] for l in f)
    except OSError:
        return False


def test_localhost():
    # /etc/hosts has localhost; no family restriction, so files answer and
    # no name server is asked.  Without that line we do not try at all.
    if not hosts_has_localhost4():
        raise Skip("/etc/hosts has no '127.0.0.1 localhost' line")
    srv = Server()
    try:
        code, out, err = run(["--trace", "json", "-z", "localhost", str(srv.port)])
        evs = events(err)
        expect(code == 0, "localhost connects", err)
        expect(of(evs, "connected")[0]["addr"] == "127.0.0.1:%d" % srv.port, "to 127.0.0.1", err)
    finally:
        srv.close()


def test_resolve_error_service():
    code, out, err = run(["--trace", "json", "127.0.0.1", "ioa-no-such-service"])
    expect(code == 2, "unknown service: exit 2", err)
    evs = events(err)
    re_ = of(evs, "resolve_error")
    expect(len(re_) == 1 and re_[0]["errno"].startswith("EAI_"), "resolve_error EAI_*", err)
    expect(not of(evs, "attempt"), "no attempt after a resolve error", err)
    code, out, err = run(["127.0.0.1", "ioa-no-such-service"])
    expect(code == 2 and "resolve" in err, "plain message", err)


def test_resolve_error_bad_hostname():
    # Over 253 bytes: refused by the library before any lookup.
    code, out, err = run(["--trace", "json", "a" * 300, "80"])
    expect(code == 2, "invalid host name: exit 2", err)
    expect(of(events(err), "resolve_error"), "resolve_error event", err)


def test_resolve_error_numeric():
    # -n: AI_NUMERICHOST, so the name is refused without any lookup.
    code, out, err = run(["-n", "--trace", "json", "ioa-not-numeric", "80"])
    expect(code == 2, "-n with a name: exit 2", err)
    evs = events(err)
    expect(of(evs, "resolve_error")[0]["errno"] == "EAI_NONAME", "EAI_NONAME", err)


def test_host_and_service_zero():
    srv = Server()
    try:
        # "0" is a valid host (0.0.0.0, which Linux connects to locally).
        code, out, err = run(["-4", "-z", "--trace", "json", "0", str(srv.port)])
        expect(code == 0, "host '0' is valid", err)
        expect(of(events(err), "resolved")[0]["addrs"] == ["0.0.0.0:%d" % srv.port],
               "host 0 resolves to 0.0.0.0", err)
        # service "0" is valid too; connecting to port 0 is refused.
        code, out, err = run(["-z", "--trace", "json", "127.0.0.1", "0"])
        expect(code == 1, "service '0' resolves, then the connect is refused", err)
        evs = events(err)
        expect(of(evs, "resolved")[0]["addrs"] == ["127.0.0.1:0"], "port 0", err)
        expect(of(evs, "connect_error")[0]["errno"] == "ECONNREFUSED", "refused", err)
    finally:
        srv.close()


def test_family_hints():
    srv4 = Server()
    try:
        code, out, err = run(["-4", "-z", "--trace", "json", "127.0.0.1", str(srv4.port)])
        expect(code == 0, "-4 with an IPv4 literal", err)
    finally:
        srv4.close()


def test_family_hints_v6():
    if not have_ipv6():
        raise Skip("no ::1")
    srv6 = Server(family=socket.AF_INET6, host="::1")
    try:
        code, out, err = run(["-6", "-z", "--trace", "json", "::1", str(srv6.port)])
        expect(code == 0, "-6 with an IPv6 literal", err)
        expect(of(events(err), "connected")[0]["addr"] == "[::1]:%d" % srv6.port,
               "connected to [::1]", err)
    finally:
        srv6.close()


def test_family_filter_addr():
    srv = Server()
    try:
        args = ["-4", "-z", "--trace", "json", "--addr", "[::1]:%d" % closed_port(),
                "--addr", "127.0.0.1:%d" % srv.port]
        code, out, err = run(args)
        expect(code == 0, "exit 0", err)
        evs = events(err)
        flt = of(evs, "filter")
        expect(len(flt) == 1 and flt[0]["family"] == "inet", "filter event says -4", err)
        expect(len(flt[0]["dropped"]) == 1 and flt[0]["dropped"][0].startswith("[::1]"),
               "the IPv6 address is dropped", err)
        expect(all(a["addr"].startswith("127.0.0.1") for a in of(evs, "attempt")),
               "only IPv4 attempted", err)
        code, out, err = run(args[:2] + ["-v"] + args[4:])
        expect(code == 0 and "-4: keeping only inet" in err, "-v says so too", err)
    finally:
        srv.close()


def test_family_filter_local():
    if not have_ipv6():
        raise Skip("no ::1")
    srv = Server()
    try:
        code, out, err = run(["-4", "-z", "--trace", "json", "--local", "[::1]:0",
                              "--local", "127.0.0.1:0", "--addr", "127.0.0.1:%d" % srv.port])
        expect(code == 0, "exit 0", err)
        evs = events(err)
        flt = of(evs, "filter")
        expect(flt and flt[0]["what"] == "--local" and flt[0]["dropped"] == ["[::1]:0"],
               "-4 filters --local too", err)
        expect(of(evs, "attempt")[0]["local"] == "127.0.0.1:0", "only the IPv4 local", err)
    finally:
        srv.close()


def test_ipv6_addr():
    if not have_ipv6():
        raise Skip("no ::1")
    srv = Server(family=socket.AF_INET6, host="::1")
    try:
        code, out, err = run(["--addr", "[::1]:%d" % srv.port], stdin=b"six")
        expect(code == 0 and out == b"got:six", "IPv6 stream", out, err)
        code, out, err = run(["-6", "-z", "--trace", "json", "--addr", "127.0.0.1:1",
                              "--addr", "[::1]:%d" % srv.port])
        expect(code == 0, "-6 keeps [::1]", err)
        expect(of(events(err), "filter")[0]["family"] == "inet6", "filter inet6", err)
    finally:
        srv.close()


def test_fail_socket():
    # A raw socket with protocol 0 is refused by socket(2) itself.
    code, out, err = run(["--trace", "json", "-t", "raw", "--addr", "127.0.0.1:0"])
    expect(code == 1, "exit 1", err)
    evs = events(err)
    f = of(evs, "fail")
    expect(f and f[0]["syscall"] == "socket", "socket fail", err)
    expect(f[0]["family"] == "inet" and f[0]["socktype"] == "raw" and f[0]["protocol"] == 0,
           "socket fail names family/socktype/protocol", err)
    expect(of(evs, "connect_error")[0]["syscall"] == "socket", "connect_error from socket", err)


def test_fail_bind():
    srv = Server(behaviour="hold")
    busy = Server(behaviour="hold")
    try:
        args = ["--trace", "json", "-z", "--local", "127.0.0.1:%d" % busy.port,
                "--addr", "127.0.0.1:%d" % srv.port]
        code, out, err = run(args)
        expect(code == 1, "bind failure: exit 1", err)
        evs = events(err)
        f = of(evs, "fail")
        expect(f and f[0]["syscall"] == "bind" and f[0]["errno"] == "EADDRINUSE", "bind fail", err)
        expect(f[0]["addr"] == "127.0.0.1:%d" % busy.port, "bind fail names the local addr", err)
        att = of(evs, "attempt")
        expect(att and att[0]["local"] == "127.0.0.1:%d" % busy.port, "attempt.local", err)
        expect(of(evs, "connect_error")[0]["syscall"] == "bind", "connect_error bind", err)
        expect(accepted_nothing(srv), "nothing connected")
    finally:
        srv.close()
        busy.close()


def test_local_bind():
    srv = Server()
    try:
        code, out, err = run(["--trace", "json", "--local", "127.0.0.2:0",
                              "--addr", "127.0.0.1:%d" % srv.port], stdin=b"L")
        expect(code == 0 and out == b"got:L", "exit 0", out, err)
        evs = events(err)
        expect(of(evs, "connected")[0]["local"].startswith("127.0.0.2:"), "bound to 127.0.0.2", err)
    finally:
        srv.close()


def test_local_host_service():
    srv = Server()
    try:
        code, out, err = run(["--trace", "json", "-z", "--local-host", "127.0.0.2",
                              "--local-service", "0", "127.0.0.1", str(srv.port)])
        expect(code == 0, "exit 0", err)
        evs = events(err)
        loc = [e for e in of(evs, "resolved") if e.get("local")]
        expect(loc and loc[0]["addrs"] == ["127.0.0.2:0"], "local resolution traced", err)
        expect(of(evs, "connected")[0]["local"].startswith("127.0.0.2:"), "bound", err)
    finally:
        srv.close()


def test_sequential_order():
    sequential_order([])


def test_sequential_order_mismatched():
    if not have_ipv6():
        raise Skip("no ::1")
    sequential_order(["--addr", "[::1]:%d" % closed_port(socket.AF_INET6)])


def sequential_order(middle):
    # IO::Async's order: local-major pairs, family-mismatched pairs skipped
    # (middle: peers of another family, never paired with the inet locals).
    p1, p2 = closed_port(), closed_port()
    peers = ["127.0.0.1:%d" % p1, "127.0.0.1:%d" % p2]
    args = ["--trace", "json", "--sequential", "--local", "127.0.0.1:0", "--local", "127.0.0.2:0",
            "--addr", peers[0]] + middle + ["--addr", peers[1]]
    code, out, err = run(args)
    expect(code == 1, "all refused: exit 1", err)
    evs = events(err)
    pairs = [(a["local"], a["addr"]) for a in of(evs, "attempt")]
    want = [("127.0.0.1:0", peers[0]), ("127.0.0.1:0", peers[1]),
            ("127.0.0.2:0", peers[0]), ("127.0.0.2:0", peers[1])]
    expect(pairs == want, "local-major order %r" % (want,), err)
    expect(len(of(evs, "fail")) == 4, "four failures", err)


def test_attempt_timeout():
    bh = BlackHole()
    try:
        code, out, err = run(["--trace", "json", "--attempt-timeout", "0.3",
                              "--addr", "127.0.0.1:%d" % bh.port])
        expect(code == 1, "timed out: exit 1", err)
        evs = events(err)
        f = of(evs, "fail")
        expect(f and f[0]["syscall"] == "connect" and f[0]["errno"] == "ETIMEDOUT",
               "per-attempt timeout is a connect ETIMEDOUT", err)
    finally:
        bh.close()


def test_attempt_timeout_then_next():
    bh = BlackHole()
    srv = Server()
    try:
        code, out, err = run(["-v", "-z", "--sequential", "--attempt-timeout", "0.2",
                              "--addr", "127.0.0.1:%d" % bh.port,
                              "--addr", "127.0.0.1:%d" % srv.port])
        expect(code == 0, "the second address connects", err)
        rows = [l for l in err.splitlines() if "|" in l and "127.0.0.1:" in l]
        expect(len(rows) == 2 and "ETIMEDOUT" in rows[0] and "connected" in rows[1],
               "waterfall: timeout then connected", err)
    finally:
        bh.close()
        srv.close()


def test_overall_timeout():
    bh = BlackHole()
    try:
        code, out, err = run(["--trace", "json", "--timeout", "0.3",
                              "--addr", "127.0.0.1:%d" % bh.port])
        expect(code == 1, "overall timeout: exit 1", err)
        ce = of(events(err), "connect_error")
        expect(ce and ce[0]["errno"] == "ETIMEDOUT", "connect_error ETIMEDOUT", err)
    finally:
        bh.close()


def test_race():
    bh = BlackHole()
    srv = Server()
    try:
        code, out, err = run(["--trace", "json", "-z", "--race", "--attempt-delay", "50",
                              "--timeout", "10", "--addr", "127.0.0.1:%d" % bh.port,
                              "--addr", "127.0.0.1:%d" % srv.port])
        expect(code == 0, "the race is won by the live listener", err)
        evs = events(err)
        expect([a["addr"] for a in of(evs, "attempt")] ==
               ["127.0.0.1:%d" % bh.port, "127.0.0.1:%d" % srv.port],
               "second attempt started while the first hung", err)
        expect(of(evs, "connected")[0]["addr"] == "127.0.0.1:%d" % srv.port, "winner", err)
    finally:
        bh.close()
        srv.close()


def test_first_family_count():
    """RFC 8305's First Address Family Count orders a racing list: with 2,
    both IPv6 addresses before the first IPv4 one; with 1 they alternate."""
    if not have_ipv6():
        raise Skip("no ::1")
    srv = Server()
    p6, p4 = closed_port(socket.AF_INET6), closed_port()
    try:
        addrs = ["[::1]:%d" % p6, "[::1]:%d" % p6, "127.0.0.1:%d" % p4,
                 "127.0.0.1:%d" % srv.port]
        args = []
        for a in addrs:
            args += ["--addr", a]
        for count, order in (("2", [0, 1, 2, 3]), ("1", [0, 2, 1, 3])):
            code, out, err = run(["--trace", "json", "-z", "--race", "--first-family-count",
                                  count] + args)
            expect(code == 0, "the live IPv4 address wins", err)
            got = [a["addr"] for a in of(events(err), "attempt")]
            expect(got == [addrs[i] for i in order], "order with count " + count, err)
        code, out, err = run(["--first-family-count", "0"] + args)
        expect(code == 64 and "'0'" in err, "count 0 is a usage error", err)
        code, out, err = run(["-z", "--no-learned-delay", "--race"] + args)
        expect(code == 0, "--no-learned-delay accepted", err)
    finally:
        srv.close()


def test_resolution_delay_option():
    srv = Server()
    try:
        code, out, err = run(["-z", "--resolution-delay", "10", "--attempt-delay", "10",
                              "127.0.0.1", str(srv.port)])
        expect(code == 0, "delays accepted", err)
    finally:
        srv.close()


def test_protocol_option():
    srv = Server()
    try:
        code, out, err = run(["-z", "--protocol", "6", "--addr", "127.0.0.1:%d" % srv.port])
        expect(code == 0, "--protocol 6 (tcp) with stream", err)
        code, out, err = run(["-z", "--trace", "json", "--protocol", "17",
                              "--addr", "127.0.0.1:%d" % srv.port])
        expect(code == 1, "--protocol 17 (udp) with stream fails", err)
        f = of(events(err), "fail")
        expect(f and f[0]["syscall"] == "socket" and f[0]["protocol"] == 17, "socket fail", err)
    finally:
        srv.close()


def test_warning():
    srv = Server()
    try:
        # No socktype hint at all: the library warns, as IO::Async does.
        code, out, err = run(["-z", "--trace", "json", "-t", "unset", "127.0.0.1", str(srv.port)])
        evs = events(err)
        w = of(evs, "warning")
        expect(w and "socktype" in w[0]["message"], "missing-hint warning", err)
    finally:
        srv.close()


def test_sigint_cancels():
    bh = BlackHole()
    try:
        p = subprocess.Popen([BIN, "--trace", "json", "--addr", "127.0.0.1:%d" % bh.port],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        try:
            lines = []
            deadline = time.time() + RUN_TIMEOUT
            while time.time() < deadline:
                r, _, _ = select.select([p.stderr], [], [], 0.5)
                if r:
                    line = p.stderr.readline()
                    if not line:
                        break
                    lines.append(line.decode())
                    if '"attempt"' in lines[-1]:
                        break
            expect(any('"attempt"' in l for l in lines), "attempt started", "".join(lines))
            p.send_signal(signal.SIGINT)
            rest = p.communicate(timeout=RUN_TIMEOUT)[1].decode()
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        err = "".join(lines) + rest
        sanitizer_clean(err)
        expect(p.returncode == 130, "SIGINT: exit 130 (got %r)" % p.returncode, err)
        ce = of(events(err), "connect_error")
        expect(ce and ce[0]["errno"] == "ECANCELED", "cancel reported", err)
    finally:
        bh.close()


def test_sigint_while_copying():
    srv = Server(behaviour="hold")
    try:
        p = subprocess.Popen([BIN, "--addr", "127.0.0.1:%d" % srv.port], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            deadline = time.time() + RUN_TIMEOUT
            while srv.accepted == 0 and time.time() < deadline:
                time.sleep(0.02)
            expect(srv.accepted == 1, "connected")
            p.send_signal(signal.SIGINT)
            out, err = p.communicate(timeout=RUN_TIMEOUT)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        sanitizer_clean(err.decode("utf-8", "replace"))
        expect(p.returncode == 130, "exit 130 (got %r)" % p.returncode, err)
    finally:
        srv.close()


def test_io_error_reset():
    srv = Server(behaviour="reset")
    try:
        p = subprocess.Popen([BIN, "--trace", "json", "--addr", "127.0.0.1:%d" % srv.port],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        try:
            out, err = p.communicate(timeout=RUN_TIMEOUT)  # closes stdin: half-close
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        err = err.decode()
        sanitizer_clean(err)
        evs = events(err)
        # After our half-close the reset arrives while reading.
        expect(p.returncode == 1, "reset: exit 1 (got %r)" % p.returncode, err)
        io = of(evs, "io_error")
        expect(io and io[0]["errno"] == "ECONNRESET", "io_error ECONNRESET", err)
    finally:
        srv.close()


def test_dgram():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    got = []

    def echo():
        s.settimeout(0.2)
        deadline = time.time() + RUN_TIMEOUT
        while time.time() < deadline and len(got) < 3:
            try:
                data, peer = s.recvfrom(65536)
            except socket.timeout:
                continue
            got.append(data)
            s.sendto(b"echo:" + data, peer)

    t = threading.Thread(target=echo, daemon=True)
    t.start()
    try:
        code, out, err = run(["-t", "dgram", "-q", "1", "--addr", "127.0.0.1:%d" % port],
                             stdin=b"one\n\ntwo")
        t.join(RUN_TIMEOUT)
        expect(code == 0, "exit 0", err)
        expect(got == [b"one", b"", b"two"], "one packet per line (last without newline)", got)
        expect(out == b"echo:one\necho:\necho:two\n", "one line per packet", out)
    finally:
        s.close()


def test_dgram_refused():
    # A connected UDP socket learns of the closed port from ICMP: io_error.
    port = closed_port()
    code, out, err = run(["--trace", "json", "-t", "dgram", "-q", "5",
                          "--addr", "127.0.0.1:%d" % port], stdin=b"ping\n")
    expect(code == 1, "exit 1", err)
    io = of(events(err), "io_error")
    expect(io and io[0]["errno"] == "ECONNREFUSED", "io_error ECONNREFUSED", err)


def test_dgram_zero_io():
    port = closed_port()
    code, out, err = run(["-z", "--trace", "json", "-t", "dgram", "--addr", "127.0.0.1:%d" % port])
    expect(code == 0, "a datagram 'connect' only sets the peer", err)
    expect(of(events(err), "connected"), "connected", err)


def test_quit_after_stream():
    # -q: after stdin EOF, do not wait for a peer that never closes.
    srv = Server(behaviour="hold")
    try:
        code, out, err = run(["-q", "0.2", "--addr", "127.0.0.1:%d" % srv.port], stdin=b"x")
        expect(code == 0, "-q ends the copy", err)
    finally:
        srv.close()


def test_unix_stream():
    d = tmpdir()
    path = os.path.join(d, "s.sock")
    srv = Server(family=socket.AF_UNIX, path=path)
    try:
        code, out, err = run(["--trace", "json", "--addr", "unix:" + path], stdin=b"u")
        expect(code == 0 and out == b"got:u", "unix stream", out, err)
        con = of(events(err), "connected")[0]
        expect(con["addr"] == "unix:" + path, "connected.addr", err)
        expect(con["local"] is None or con["local"].startswith("unix:"), "local", err)
    finally:
        srv.close()
        shutil.rmtree(d)


def test_unix_abstract():
    name = "ioa-cli-test-%d" % os.getpid()
    srv = Server(family=socket.AF_UNIX, path="\0" + name)
    try:
        code, out, err = run(["--addr", "unix:@" + name], stdin=b"abs")
        expect(code == 0 and out == b"got:abs", "abstract unix", out, err)
    finally:
        srv.close()


def test_unix_missing_and_non_utf8():
    d = tmpdir()
    try:
        bad = os.fsencode(d) + b"/caf\xe9-\xff\x01.sock"
        code, out, err = run([b"--trace", b"json", b"--addr", b"unix:" + bad])
        expect(code == 1, "missing socket: exit 1", err)
        evs = events(err)  # every line parsed: non-UTF-8 came out valid
        f = of(evs, "fail")
        expect(f and f[0]["errno"] == "ENOENT", "ENOENT", err)
        expect("\ufffd" in f[0]["addr"] or "\\x" in f[0]["addr"],
               "invalid bytes replaced or escaped, never raw", err)
    finally:
        shutil.rmtree(d)


def test_hostile_bytes_in_names():
    # An abstract unix name with a quote, a backslash, a control byte and a
    # non-UTF-8 byte: JSON stays valid, -v never sends them raw.
    name = b"unix:@ioa-q\"b\\s\x01c\xff-%d" % os.getpid()
    code, out, err = run([b"--trace", b"json", b"-z", b"--addr", name])
    expect(code == 1, "nobody listens: exit 1", err)
    evs = events(err)
    addr = of(evs, "attempt")[0]["addr"]
    expect('"' in addr and "\\" in addr and "\x01" in addr and "\ufffd" in addr,
           "quote, backslash and control byte kept; invalid byte replaced", err)
    p = subprocess.run([BIN, b"-v", b"-z", b"--addr", name, b"--addr", b"127.0.0.1:%d" %
                        closed_port()], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=RUN_TIMEOUT)
    raw = p.stderr
    sanitizer_clean(raw.decode("utf-8", "replace"))
    expect(b"\x01" not in raw and b"\xff" not in raw, "no raw control/invalid bytes", raw)
    raw.decode("utf-8")  # the human trace is valid UTF-8
    rows = [l for l in raw.decode().splitlines() if l.count("|") >= 2]
    expect(len(rows) == 2, "one waterfall row per attempt", raw)
    cols = set(l.index("|") for l in rows)
    expect(len(cols) == 1, "waterfall bars aligned despite escapes", raw)


def test_dns_server_happy_eyeballs():
    # A name answered by our own DNS server with ::1 and 127.0.0.1; only
    # 127.0.0.1 listens, so [::1] is refused and IPv4 connects.
    if not have_ipv6():
        raise Skip("no ::1")
    need_cares()
    srv = Server()
    dns = DnsServer({"he.ioa.test": {1: ["127.0.0.1"], 28: ["::1"]}})
    try:
        code, out, err = run(["--dns-server", "127.0.0.1:%d" % dns.port, "--trace", "json",
                              "-z", "he.ioa.test", str(srv.port)])
        expect(code == 0, "connected", err)
        evs = events(err)
        got = [a for e in of(evs, "resolved") for a in e["addrs"]]
        expect(sorted(got) == sorted(["[::1]:%d" % srv.port, "127.0.0.1:%d" % srv.port]),
               "A and AAAA answers from our server", err)
        expect(of(evs, "connected")[0]["addr"] == "127.0.0.1:%d" % srv.port, "IPv4 won", err)
        for f in of(evs, "fail"):
            expect(f["addr"].startswith("[::1]") and f["errno"] == "ECONNREFUSED",
                   "only [::1] may fail (refused)", err)
        expect(set(q for q in dns.queries if q[0] == "he.ioa.test") == {("he.ioa.test", 1),
                                                                       ("he.ioa.test", 28)},
               "both A and AAAA were asked of our server", dns.queries)
    finally:
        srv.close()
        dns.close()


def test_dns_server_slow_aaaa():
    # AAAA arrives late: after the resolution delay the IPv4 answer is tried
    # alone and wins; IPv6 is never attempted.
    need_cares()
    srv = Server()
    dns = DnsServer({"slow.ioa.test": {1: ["127.0.0.1"], 28: ["::1"]}}, aaaa_delay=1.0)
    try:
        code, out, err = run(["--dns-server", "127.0.0.1:%d" % dns.port, "--trace", "json",
                              "--resolution-delay", "50", "-z", "slow.ioa.test", str(srv.port)])
        expect(code == 0, "connected", err)
        evs = events(err)
        att = of(evs, "attempt")
        expect(att and all(a["addr"].startswith("127.0.0.1") for a in att),
               "no IPv6 attempt before the connection", err)
    finally:
        srv.close()
        dns.close()


def test_dns_server_nxdomain():
    need_cares()
    dns = DnsServer({})
    try:
        code, out, err = run(["--dns-server", "127.0.0.1:%d" % dns.port, "--trace", "json",
                              "nx.ioa.test", "80"])
        expect(code == 2, "NXDOMAIN: exit 2", err)
        re_ = of(events(err), "resolve_error")
        expect(re_ and re_[0]["errno"] == "EAI_NONAME", "EAI_NONAME", err)
        expect(any(q[0] == "nx.ioa.test" for q in dns.queries), "our server was asked",
               dns.queries)
    finally:
        dns.close()


def test_seqpacket():
    d = tmpdir()
    path = os.path.join(d, "sp.sock")
    l = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    l.bind(path)
    l.listen(1)

    def serve():
        l.settimeout(RUN_TIMEOUT)
        try:
            c, _ = l.accept()
        except OSError:
            return
        c.settimeout(RUN_TIMEOUT)
        try:
            data = c.recv(65536)
            c.send(b"sp:" + data)
            time.sleep(0.5)
        except OSError:
            pass
        c.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        code, out, err = run(["-t", "seqpacket", "-q", "2", "--addr", "unix:" + path],
                             stdin=b"pkt\n")
        t.join(RUN_TIMEOUT)
        expect(code == 0 and out == b"sp:pkt\n", "seqpacket: packet per line", out, err)
    finally:
        l.close()
        shutil.rmtree(d)


def test_happy_eyeballs_localhost_netns():
    """(a) of the demo: localhost resolves to ::1 and 127.0.0.1 (from a private
    /etc/hosts in a private network namespace); ::1 refuses, 127.0.0.1 accepts."""
    if not shutil.which("unshare") or not have_ipv6():
        raise Skip("needs unshare and IPv6")
    d = tmpdir()
    try:
        hosts = os.path.join(d, "hosts")
        resolv = os.path.join(d, "resolv.conf")
        with open(hosts, "w") as f:
            f.write("127.0.0.1 localhost\n::1 localhost\n")
        with open(resolv, "w") as f:
            f.write("nameserver 127.0.0.1\n")  # inside the namespace: nowhere
        script = (
            "set -e; ip link set lo up; mount --bind %s /etc/hosts; mount --bind %s /etc/resolv.conf;"
            "exec python3 -c '%s' \"$1\"" % (hosts, resolv, NETNS_CHILD.replace("'", "'\\''")))
        p = subprocess.run(["unshare", "-n", "-m", "sh", "-c", script, "x", BIN],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=RUN_TIMEOUT)
        if p.returncode == SKIP or b"unshare failed" in p.stderr:
            raise Skip("cannot create a network namespace: " + p.stderr.decode()[-200:])
        if p.returncode != 0 and (b"Operation not permitted" in p.stderr and
                                   b"unshare" in p.stderr):
            raise Skip("unshare not permitted")
        err = p.stdout.decode()
        expect(p.returncode == 0, "connected to 127.0.0.1 after [::1] refused", err,
               p.stderr.decode())
        evs = events(err)
        addrs = of(evs, "resolved")
        allr = [a for e in addrs for a in e["addrs"]]
        expect(any(a.startswith("[::1]") for a in allr) and
               any(a.startswith("127.0.0.1") for a in allr), "both families resolved", err)
        f = [e for e in of(evs, "fail") if e["addr"].startswith("[::1]")]
        expect(f and f[0]["errno"] == "ECONNREFUSED", "[::1] refused", err)
        expect(of(evs, "connected")[0]["addr"].startswith("127.0.0.1:"), "IPv4 won", err)
    finally:
        shutil.rmtree(d)


# Runs inside the namespace: listen on 127.0.0.1:P only, run the tool against
# localhost P, print its JSON trace on stdout and exit with its status.
NETNS_CHILD = r"""
import socket, subprocess, sys
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(4)
port = l.getsockname()[1]
p = subprocess.run([sys.argv[1], "--trace", "json", "-z", "localhost", str(port)],
                   stderr=subprocess.PIPE, timeout=20)
sys.stdout.write(p.stderr.decode("utf-8", "replace"))
sys.exit(p.returncode)
"""


# ------------------------------------------------------------------ main

# ------------------------------------------------------------------ --tls

class TlsPki:
    """A test CA and leaves made with the openssl CLI, in a temporary
    directory (never committed): "leaf" for localhost, 127.0.0.1 and ::1,
    "wrong" for wrong.test only."""

    def __init__(self):
        if not shutil.which("openssl"):
            raise Skip("the openssl command is not installed")
        self.dir = tempfile.mkdtemp(prefix="ioa-cli-tls-")
        self.ca = self._path("ca.pem")
        self._openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                      "-nodes", "-keyout", self._path("ca.key"), "-out", self.ca, "-days", "2",
                      "-subj", "/CN=ioa-connect test CA",
                      "-addext", "basicConstraints=critical,CA:TRUE",
                      "-addext", "keyUsage=critical,keyCertSign")
        self.leaf = self._leaf("leaf", "localhost", "DNS:localhost,IP:127.0.0.1,IP:::1")
        self.wrong = self._leaf("wrong", "wrong.test", "DNS:wrong.test")

    def _path(self, name):
        return os.path.join(self.dir, name)

    def _openssl(self, *args):
        r = subprocess.run(["openssl"] + list(args), capture_output=True, timeout=RUN_TIMEOUT)
        expect(r.returncode == 0, "openssl " + args[0], r.stderr.decode("utf-8", "replace"))

    def _leaf(self, name, cn, san):
        key, csr, pem, ext = (self._path(name + s) for s in (".key", ".csr", ".pem", ".ext"))
        with open(ext, "w") as f:
            f.write("subjectAltName=%s\nbasicConstraints=CA:FALSE\n" % san)
        self._openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                      "-keyout", key, "-out", csr, "-subj", "/CN=" + cn)
        self._openssl("x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", self._path("ca.key"),
                      "-CAcreateserial", "-out", pem, "-days", "2", "-extfile", ext)
        return pem, key

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)


class SServer:
    """openssl s_server -www on 127.0.0.1 at a port picked here; ready once it
    accepts a connection (its output is not parsed: it may be buffered)."""

    def __init__(self, pem_key, alpn=None):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        args = ["openssl", "s_server", "-accept", "127.0.0.1:%d" % self.port, "-cert",
                pem_key[0], "-key", pem_key[1], "-www"]
        if alpn:
            args += ["-alpn", alpn]
        self.p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + RUN_TIMEOUT
        while time.monotonic() < deadline and self.p.poll() is None:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return  # s_server shrugs off a connection without a handshake
            except OSError:
                time.sleep(0.05)
        self.close()
        expect(False, "openssl s_server started on port %d" % self.port)

    def close(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait(timeout=RUN_TIMEOUT)


def with_tls(fn):
    pki = TlsPki()
    try:
        fn(pki)
    finally:
        pki.close()


def test_tls_https_get():
    """--tls against openssl s_server -www: verified for localhost, ALPN
    chosen, the handshake drawn as its own segment; the page on stdout."""
    def body(pki):
        srv = SServer(pki.leaf, alpn="http/1.1")
        try:
            code, out, err = run(["-v", "--tls", "--cafile", pki.ca, "--alpn", "h2,http/1.1",
                                  "localhost", str(srv.port)], stdin=b"GET / HTTP/1.0\r\n\r\n")
        finally:
            srv.close()
        expect(code == 0, "exit 0", err)
        expect(out.startswith(b"HTTP/1.0 200 ok"), "the page arrived", out, err)
        expect("TLSv1.3" in err and "ALPN http/1.1" in err, "version and ALPN shown", err)
        expect("verified for localhost" in err, "verification shown", err)
        expect("handshake 127.0.0.1:%d" % srv.port in err, "handshake line", err)
        row = [l for l in err.splitlines() if l.strip().startswith("127.0.0.1:")]
        expect(row and "~" in row[-1] and row[-1].rstrip().endswith("connected"),
               "the attempt's row has a handshake segment", err)
    with_tls(body)


def test_tls_json_trace():
    """--trace json: a handshake event for the attempt, then tls_handshake
    with version, cipher, ALPN, resumed and the verification result."""
    def body(pki):
        srv = SServer(pki.leaf)
        try:
            code, out, err = run(["--trace", "json", "--tls", "--cafile", pki.ca, "--addr",
                                  "127.0.0.1:%d" % srv.port], stdin=b"GET / HTTP/1.0\r\n\r\n")
        finally:
            srv.close()
        expect(code == 0, "exit 0", err)
        evs = events(err)
        kinds = [e["event"] for e in evs]
        expect("handshake" in kinds and "tls_handshake" in kinds, "TLS events", err)
        expect(kinds.index("handshake") < kinds.index("connected"), "handshake before connected",
               err)
        tls = [e for e in evs if e["event"] == "tls_handshake"][0]
        expect(tls["version"] == "TLSv1.3" and tls["cipher"].startswith("TLS_"), "version", err)
        expect(tls["alpn"] is None and tls["resumed"] is False, "no ALPN, not resumed", err)
        expect(tls["verify"] == "ok" and tls["server_name"] == "127.0.0.1", "verified by IP", err)
    with_tls(body)


def test_tls_verify_failure_exit_1():
    """A certificate for another name: exit 1 with X509's reason, and a
    "fail" event with syscall "tls" in JSON."""
    def body(pki):
        srv = SServer(pki.wrong)
        try:
            code, out, err = run(["--tls", "--cafile", pki.ca, "localhost", str(srv.port)])
            expect(code == 1, "exit 1", err)
            expect("cannot connect: tls: hostname mismatch" in err, "the reason", err)
            expect("IOA_ETLSVERIFY" in err, "the code's name", err)
            code, out, err = run(["--trace", "json", "--tls", "--cafile", pki.ca, "localhost",
                                  str(srv.port)])
            expect(code == 1, "exit 1 (json)", err)
            fails = [e for e in events(err) if e["event"] == "fail"]
            expect(fails and fails[-1]["syscall"] == "tls", "a tls fail event", err)
            expect(fails[-1]["errno"] == "IOA_ETLSVERIFY", "its code", err)
            expect("hostname mismatch" in fails[-1]["reason"], "its reason", err)
            # Untrusted: the system store knows nothing of this test CA.
            code, out, err = run(["--tls", "--addr", "127.0.0.1:%d" % srv.port])
            expect(code == 1 and "IOA_ETLSVERIFY" in err, "untrusted without --cafile", err)
            # --insecure connects anyway, and says it did not verify.
            code, out, err = run(["-v", "--tls", "--insecure", "localhost", str(srv.port)],
                                 stdin=b"GET / HTTP/1.0\r\n\r\n")
            expect(code == 0 and "NOT verified" in err, "--insecure", err)
        finally:
            srv.close()
    with_tls(body)


def test_tls_usage_errors():
    """TLS options are checked before anything connects (exit 64)."""
    cases = [
        (["--alpn", "h2", "localhost", "443"], "--alpn needs --tls"),
        (["--tls", "--tls-min", "1.1", "localhost", "443"], "not a TLS version"),
        (["--tls", "--cert", "/x.pem", "localhost", "443"], "--cert and --key go together"),
        (["--tls", "-t", "dgram", "localhost", "443"], "--tls needs stream sockets"),
        (["--tls", "--cafile", "/nonexistent/ca.pem", "localhost", "443"],
         "No such file or directory"),
        (["--tls", "--alpn", "h2,,x", "localhost", "443"], "alpn"),
    ]
    for args, needle in cases:
        code, out, err = run(args)
        expect(code == 64, "exit 64 for %r" % args, err)
        expect(needle in err, "message for %r" % args, err)



def main():
    global BIN
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("name", nargs="?")
    ap.add_argument("--all", action="store_true")
    a = ap.parse_args()
    BIN = a.bin
    names = sorted(n[5:] for n in globals() if n.startswith("test_")) if a.all else [a.name]
    status = 0
    for n in names:
        fn = globals().get("test_" + n)
        if fn is None:
            print("no such test: %s" % n)
            return 2
        try:
            fn()
            print("PASS %s" % n)
        except Skip as e:
            print("SKIP %s: %s" % (n, e))
            if not a.all:
                status = SKIP
        except (AssertionError, subprocess.TimeoutExpired) as e:
            print("FAIL %s: %s" % (n, e))
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
