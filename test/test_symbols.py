#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The library exports exactly its documented API.

The documented API is every function declared IOA_EXPORT in the public
headers.  The shared library must export all of them and nothing else (the
fault injector's ioa__fault_* hooks are allowed: fault builds export them for
the tests).  Every global symbol the static library defines must be part of
that API or carry the internal prefix ioa__, so a program linking
libioasync.a statically can never collide with a name it did not ask for.
Every documented function is also named in a man page under doc/man/: a
*_size function through its inline wrapper without the suffix (what callers
use), and a STRUCT_init_size through STRUCT, whose _init() the convention in
ioa_common(3) describes.
"""
import glob
import os
import re
import subprocess
import sys


def declared(include_dir, lead):
    """The ioa_ functions the public headers declare after lead (a regex):
    lead <type> [*]name(   -- the type may span a few tokens."""
    names = set()
    for path in glob.glob(os.path.join(include_dir, "ioasync", "*.h")):
        text = open(path, encoding="utf-8").read()
        for m in re.finditer(lead + r"\s+[^;(]*?\b(ioa_\w+)\s*\(", text):
            names.add(m.group(1))
    return names


def documented(include_dir):
    return declared(include_dir, r"IOA_EXPORT")


def man_text(include_dir):
    man_dir = os.path.join(os.path.dirname(os.path.abspath(include_dir)), "doc", "man")
    text = ""
    for path in glob.glob(os.path.join(man_dir, "*.[0-9]")):
        text += open(path, encoding="utf-8").read()
    # troff escapes that may sit inside a name: \- for '-', font changes
    return re.sub(r"\\f[BIRP]", "", text)


def nm(args, lib):
    out = subprocess.run(["nm"] + args + [lib], check=True, capture_output=True,
                         text=True).stdout
    syms = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 2 or parts[-2] in ("U", "w", "v"):
            continue
        name = parts[-1]
        if name.startswith("__") or name.startswith("."):
            continue  # compiler and sanitizer artefacts
        syms.add(name)
    return syms


def main():
    include_dir, shared, static = sys.argv[1:4]
    api = documented(include_dir)
    if len(api) < 50:
        print(f"only {len(api)} IOA_EXPORT declarations found: is the parser broken?")
        return 1
    errors = []
    exported = nm(["-D", "--defined-only"], shared)
    for s in sorted(exported - api):
        if not s.startswith("ioa__fault_"):
            errors.append(f"{os.path.basename(shared)} exports undocumented symbol {s}")
    for s in sorted(api - exported):
        errors.append(f"documented function {s} is not exported by {os.path.basename(shared)}")
    for s in sorted(nm(["-g", "--defined-only"], static)):
        if s not in api and not s.startswith("ioa__"):
            errors.append(f"{os.path.basename(static)} defines global {s}: neither API nor ioa__")
    pages = man_text(include_dir)
    if not pages:
        errors.append("no man pages found next to " + include_dir)
    for s in sorted(api):
        if s.endswith("_init_size"):
            name = s[:-len("_init_size")]
        elif s.endswith("_size"):
            name = s[:-len("_size")]
        else:
            name = s
        if not re.search(r"\b" + re.escape(name) + r"\b", pages):
            errors.append(f"documented function {s} is not named in any man page (doc/man/)")
    for e in errors:
        print(e)
    print(f"{len(api)} documented functions, {len(exported)} exported symbols checked")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
