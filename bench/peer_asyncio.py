#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""asyncio contender: loop.create_connection(), K in flight, each transport
closed as soon as it connects.

  peer_asyncio.py [-d delay_ms] [-t max_seconds] HOST PORT N K WORKLOAD

With -d the connect uses happy_eyeballs_delay=delay_ms/1000 (RFC 8305
racing, contender "asyncio-he"); without it addresses are tried one after
another (contender "asyncio").  A numeric HOST skips getaddrinfo (asyncio
recognises IP literals); a name goes through the default executor.
Prints one JSON result line, like the C peers (bench/bench_common.h)."""
import argparse
import asyncio
import json
import resource
import sys
import time


def cpu_s():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


async def run(a):
    loop = asyncio.get_running_loop()
    kwargs = {}
    if a.d is not None:
        kwargs["happy_eyeballs_delay"] = a.d / 1000.0
    state = {"started": 0, "done": 0}

    async def worker():
        while state["started"] < a.n:
            state["started"] += 1
            transport, _ = await loop.create_connection(
                asyncio.Protocol, a.host, int(a.port), **kwargs)
            transport.close()
            state["done"] += 1

    workers = [asyncio.ensure_future(worker()) for _ in range(min(a.k, a.n))]
    try:
        await asyncio.wait_for(asyncio.gather(*workers), timeout=a.t)
    except asyncio.TimeoutError:
        print(f"asyncio: time bound of {a.t}s hit after {state['done']} connects",
              file=sys.stderr)
        sys.exit(1)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("-d", type=int, default=None)
    p.add_argument("-t", type=int, default=60)
    p.add_argument("host")
    p.add_argument("port")
    p.add_argument("n", type=int)
    p.add_argument("k", type=int)
    p.add_argument("workload")
    a = p.parse_args()
    if a.n < 1 or a.k < 1:
        p.error("N and K must be >= 1")
    cpu0, t0 = cpu_s(), time.monotonic()
    asyncio.run(run(a))
    wall, cpu = time.monotonic() - t0, cpu_s() - cpu0
    res = {"contender": "asyncio-he" if a.d is not None else "asyncio",
           "workload": a.workload, "n": a.n, "k": min(a.k, a.n)}
    if a.workload.startswith("he"):
        res["time_to_connect_ms"] = round(wall * 1e3 / a.n, 3)
    else:
        res["connects_per_s"] = round(a.n / wall, 1)
    res["cpu_us_per_connect"] = round(cpu * 1e6 / a.n, 2)
    print(json.dumps(res, separators=(",", ":")), flush=True)


if __name__ == "__main__":
    main()
