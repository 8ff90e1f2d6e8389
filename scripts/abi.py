#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""ABI XML helpers for scripts/abi (the files abidw writes).

Usage: scripts/abi.py COMMAND ARGS...
  functions FILE             the public functions (ELF symbols), one a line
  trim BASE NEW OUT          NEW with every growable struct cut back to its
                             size in BASE, written to OUT; prints each struct
                             that grew ("NAME OLD NEW member...")
  mutate SRC DST OP ARGS...  a changed copy, for scripts/abi selftest:
      roundtrip                      read and written back, no change
      remove-function NAME           the symbol and its declaration gone
      add-function NAME NEW          a copy of NAME's declaration, called NEW
      grow-struct NAME               one size_t-sized member more at the end
      retype-member STRUCT MEMBER    MEMBER's type becomes another of its size
      set-attr ATTR VALUE            a corpus attribute (soname) changed
      cut                            the first half of the file only

What may grow (README, "Versioning"): a struct whose first member is
size_t struct_size (its _init() records the caller's size, so the library
never reads past what the caller has), and the library-filled structs in
GROWABLE_TOO.  abidiff cannot be told "appended members only": its
has_data_member_inserted_at = end suppression also hides a changed member
type when nothing was appended (libabigail 2.2).  So trim removes just the
appended members from the new dump and abidiff compares what is left,
where any other change to such a struct still shows.
"""
import copy
import sys
import xml.etree.ElementTree as ET

# Filled by the library up to a size the caller gives (ioa_resolver_get_stats_size)
# or only ever lent to a callback by pointer (ioa_resolve_result): appending
# members breaks no caller.  ioa_attempt_failure is not here: ioa_connect_failures()
# hands out an array of them, so its size is the array's stride.
GROWABLE_TOO = {"ioa_resolver_stats", "ioa_resolve_result"}


def load(path):
    try:
        return ET.parse(path)
    except (OSError, ET.ParseError) as e:
        sys.exit(f"abi.py: cannot read {path}: {e}")


def structs(root, name=None):
    """Struct definitions (not declarations), by name if given."""
    for e in root.iter("class-decl"):
        if e.get("is-declaration-only") == "yes" or e.get("size-in-bits") is None:
            continue
        if name is None or e.get("name") == name:
            yield e


def growable(root):
    names = set()
    for e in structs(root):
        first = e.find("data-member/var-decl")
        if first is not None and first.get("name") == "struct_size":
            names.add(e.get("name"))
    return names | GROWABLE_TOO


def trim(base_path, new_path, out_path):
    base, new = load(base_path), load(new_path)
    old_size = {}
    for e in structs(base.getroot()):
        if e.get("name") in growable(base.getroot()):
            old_size[e.get("name")] = int(e.get("size-in-bits"))
    grown = {}
    for e in structs(new.getroot()):
        name = e.get("name")
        if name not in old_size or int(e.get("size-in-bits")) <= old_size[name]:
            continue  # not growable, or not grown: abidiff judges it as it is
        cut = old_size[name]
        appended = [m for m in e.findall("data-member")
                    if int(m.get("layout-offset-in-bits", "0")) >= cut]
        for m in appended:
            e.remove(m)
        grown[name] = (cut, int(e.get("size-in-bits")),
                       [m.find("var-decl").get("name") for m in appended])
        e.set("size-in-bits", str(cut))
    new.write(out_path)
    for name in sorted(grown):
        cut, size, members = grown[name]
        print(name, cut, size, *members)


def mutate(src, dst, op, args):
    if op == "cut":
        with open(src, encoding="utf-8") as f:
            text = f.read()
        with open(dst, "w", encoding="utf-8") as f:
            f.write(text[:len(text) // 2])
        return
    tree = load(src)
    root = tree.getroot()
    parent = {c: p for p in root.iter() for c in p}

    def function_parts(name):
        parts = [e for e in root.iter()
                 if (e.tag == "elf-symbol" and e.get("name") == name)
                 or (e.tag == "function-decl" and e.get("elf-symbol-id") == name)]
        if len(parts) < 2:
            sys.exit(f"abi.py: no function {name} (symbol and declaration) in {src}")
        return parts

    def the_struct(name):
        found = list(structs(root, name))
        if not found:
            sys.exit(f"abi.py: no struct {name} in {src}")
        return found

    if op == "roundtrip":
        pass
    elif op == "remove-function":
        for e in function_parts(args[0]):
            parent[e].remove(e)
    elif op == "add-function":
        name, new_name = args
        for e in function_parts(name):
            c = copy.deepcopy(e)
            for k in ("name", "mangled-name", "elf-symbol-id"):
                if c.get(k) == name:
                    c.set(k, new_name)
            p = parent[e]
            p.insert(list(p).index(e) + 1, c)
    elif op == "grow-struct":
        for e in the_struct(args[0]):
            size = int(e.get("size-in-bits"))
            # size_t is the first member's type in a growable struct; any
            # pointer-sized type does for the others
            t = e.find("data-member/var-decl").get("type-id")
            m = ET.SubElement(e, "data-member",
                              {"access": "public", "layout-offset-in-bits": str(size)})
            ET.SubElement(m, "var-decl", {"name": "abi_selftest", "type-id": t,
                                          "visibility": "default"})
            e.set("size-in-bits", str(size + 64))
    elif op == "retype-member":
        sname, member = args
        for e in the_struct(sname):
            members = [v for v in e.iterfind("data-member/var-decl")]
            target = [v for v in members if v.get("name") == member]
            if not target:
                sys.exit(f"abi.py: struct {sname} has no member {member}")
            # another member's type of a different kind: a change abidiff must see
            other = [v.get("type-id") for v in members
                     if v.get("type-id") != target[0].get("type-id")]
            if not other:
                sys.exit(f"abi.py: struct {sname} has no member of another type")
            target[0].set("type-id", other[0])
    elif op == "set-attr":
        root.set(args[0], args[1])
    else:
        sys.exit(f"abi.py: unknown mutation {op}")
    tree.write(dst)


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    cmd, args = argv[1], argv[2:]
    if cmd == "functions" and len(args) == 1:
        for e in load(args[0]).getroot().iterfind("elf-function-symbols/elf-symbol"):
            print(e.get("name"))
    elif cmd == "trim" and len(args) == 3:
        trim(*args)
    elif cmd == "mutate" and len(args) >= 3:
        mutate(args[0], args[1], args[2], args[3:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
