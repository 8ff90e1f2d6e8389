#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Every IOA_EXPORT function has a man page, as c-ares's functions do.

`man ioa_connect_cancel` must find something: either a page of that name in
doc/man/, or the link page the build makes for every name listed in a page's
NAME section (cmake/ioasync_manpages.cmake, which also writes names.txt: one
"name page" line per NAME entry).  A function listed in two NAME sections is a
mistake too: its link can point at one page only.

Usage: test_man_pages.py INCLUDE_DIR BUILT_MAN_DIR
"""
import collections
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_symbols import declared, documented  # noqa: E402  (the header parser)


def inline_functions(include_dir):
    """The public static inline functions (the _init wrappers): API too."""
    return declared(include_dir, r"static\s+inline")

# Functions exported before their pages' NAME sections listed them; the pages
# are being fixed.  Reported on every run; delete each name as its page lists it
# (a name still here once documented is reported too, so the list only shrinks).
PENDING = {"ioa_connect_params_init_size"}


def main():
    include_dir, man_dir = sys.argv[1:3]
    api = documented(include_dir) | inline_functions(include_dir)
    index = os.path.join(man_dir, "names.txt")
    pages = collections.defaultdict(list)
    with open(index, encoding="utf-8") as f:
        for line in f:
            name, page = line.split()
            pages[name].append(page)
    errors = []
    missing = sorted(fn for fn in api if fn not in pages)
    for fn in missing:
        msg = f"{fn}: in no man page's NAME section (so `man {fn}` finds nothing)"
        if fn in PENDING:
            print("pending: " + msg)
        else:
            errors.append(msg)
    for fn in sorted(PENDING - set(missing)):
        print(f"note: {fn} now has a page (or is gone): remove it from PENDING")
    for name, where in sorted(pages.items()):
        if len(set(where)) > 1:
            errors.append(f"{name}: listed in the NAME section of {', '.join(sorted(set(where)))}")
    for fn in sorted(api):
        if fn in pages and not os.path.exists(os.path.join(man_dir, "man3", fn + ".3")):
            errors.append(f"{fn}: listed in {pages[fn][0]} but {man_dir}/man3/{fn}.3 was not made")
    for e in errors:
        print(e)
    print(f"{len(api)} public functions (IOA_EXPORT and inline), {len(api) - len(missing)} with a man page, "
          f"{len(missing)} without")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
