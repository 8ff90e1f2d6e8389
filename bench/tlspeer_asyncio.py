#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Python asyncio's ssl in bench_tls: k tasks share n connections, the same
CA file and server name as tlspeer_raw.

  tlspeer_asyncio.py MODE PORT N K CAFILE LABEL    (MODE: hs | bulk)
"""
import asyncio
import json
import ssl
import sys
import time


async def one(port, ctx, req):
    r, w = await asyncio.open_connection("127.0.0.1", port, ssl=ctx,
                                         server_hostname="localhost")
    w.write(req)
    got = 0
    while True:
        b = await r.read(65536)
        if not b:
            break
        got += len(b)
    w.close()
    try:
        await w.wait_closed()
    except (ssl.SSLError, ConnectionError):
        pass
    return got


async def main():
    mode, port, n, k, cafile, label = sys.argv[1:7]
    port, n, k = int(port), int(n), int(k)
    ctx = ssl.create_default_context(cafile=cafile)
    t0 = time.monotonic()
    if mode == "bulk":
        got = await one(port, ctx, b"bulk %d\n" % n)
        print(json.dumps({"contender": "asyncio", "workload": label,
                          "bulk_mb_s": round(got / 1e6 / (time.monotonic() - t0), 1)}))
        return
    left = [n]

    async def worker():
        while left[0] > 0:
            left[0] -= 1
            await one(port, ctx, b"ping\n")
    await asyncio.gather(*(worker() for _ in range(k)))
    print(json.dumps({"contender": "asyncio", "workload": label,
                      "handshakes_per_s": round(n / (time.monotonic() - t0), 1)}))


if __name__ == "__main__":
    asyncio.run(main())
