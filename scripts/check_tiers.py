#!/usr/bin/env python3
"""Fails when a module of `src/` imports a module of its own or a higher tier.

The tiers are the table in ARCHITECTURE.md ("Tiers"); this script reads them from there, so
the document and the check cannot drift apart. Every `crate::…` path in code counts (use lines,
signatures, calls, grouped `use crate::{a, b::{c, d}}`), as do `super::` paths that climb out of
a top-level module. Comments and string literals are ignored.

Usage: scripts/check_tiers.py [--graph] [--self-test]   (exit status 1 on a violation)

`--self-test` first runs the check on a small made-up crate with one upward import, a grouped
one and a `super::` one, and fails unless all three are reported.
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent

TOKEN = re.compile(
    r'//[^\n]*|/\*.*?\*/|r(#*)".*?"\1|b?"(?:\\.|[^"\\])*"|b?\'(?:\\.|[^\'\\])\'',
    re.S,
)


def strip(text):
    """Blank out comments and string/char literals, keeping line numbers."""
    return TOKEN.sub(lambda m: "\n" * m.group(0).count("\n") + " ", text)


def read_tiers(root):
    """The tier table of ARCHITECTURE.md: rows `| <tier> | `mod`, `mod` | …`."""
    tiers = {}
    in_table = False
    for line in (root / "ARCHITECTURE.md").read_text().splitlines():
        if line.startswith("## "):
            in_table = line.strip() == "## Tiers"
            continue
        if not in_table:
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and cells[0].isdigit():
            for name in re.findall(r"`([a-z_]+)`", cells[1]):
                tiers[name] = int(cells[0])
    if not tiers:
        sys.exit("check_tiers: no tier table found under '## Tiers' in ARCHITECTURE.md")
    return tiers


def module_path(path, src):
    """`src/a/b/mod.rs` -> ["a", "b"]; `src/a/c.rs` -> ["a", "c"]; `src/lib.rs` -> []."""
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] in ("mod", "lib"):
        parts.pop()
    return parts


def group_heads(text, start):
    """First segments of the items in a `{…}` use group starting at text[start] == '{'."""
    heads, depth, item, i = [], 0, "", start
    while i < len(text):
        ch = text[i]
        if ch == "{":
            depth += 1
            if depth == 1:
                item = ""
                i += 1
                continue
        elif ch == "}":
            depth -= 1
            if depth == 0:
                heads.append(item)
                break
        elif ch == "," and depth == 1:
            heads.append(item)
            item = ""
            i += 1
            continue
        if depth == 1:
            item += ch
        i += 1
    out = []
    for h in heads:
        m = re.match(r"\s*([A-Za-z_][A-Za-z0-9_]*)", h)
        if m and m.group(1) != "self":
            out.append(m.group(1))
    return out


def targets(text, mod):
    """(line, top-level module) for every path into another top-level module."""
    found = []
    for m in re.finditer(r"\$?\bcrate::", text):
        line = text.count("\n", 0, m.start()) + 1
        rest = text[m.end():]
        if rest.startswith("{"):
            for head in group_heads(text, m.end()):
                found.append((line, head))
        else:
            h = re.match(r"[A-Za-z_][A-Za-z0-9_]*", rest)
            if h:
                found.append((line, h.group(0)))
    for m in re.finditer(r"\b((?:super::)+)([A-Za-z_][A-Za-z0-9_]*|\{)", text):
        ups = m.group(1).count("super::")
        if ups < len(mod):
            continue  # stays inside the file's top-level module
        line = text.count("\n", 0, m.start()) + 1
        if m.group(2) == "{":
            for head in group_heads(text, m.end(2) - 1):
                found.append((line, head))
        else:
            found.append((line, m.group(2)))
    return found


def check(root, graph=False):
    """The problems found in the crate at `root` (its src/ and ARCHITECTURE.md)."""
    src = root / "src"
    tiers = read_tiers(root)
    problems, edges = [], set()
    tops = set()
    for path in sorted(src.rglob("*.rs")):
        mod = module_path(path, src)
        if not mod:
            continue  # lib.rs declares the modules and re-exports upward
        top = mod[0]
        tops.add(top)
        if top not in tiers:
            problems.append(f"{path.relative_to(root)}: module `{top}` has no tier in ARCHITECTURE.md")
            continue
        text = strip(path.read_text())
        for line, target in targets(text, mod):
            if target == top or target not in tiers:
                continue
            edges.add((top, target))
            if tiers[target] >= tiers[top]:
                problems.append(
                    f"{path.relative_to(root)}:{line}: `{top}` (tier {tiers[top]}) imports "
                    f"`{target}` (tier {tiers[target]}); a module may import lower tiers only"
                )
    for name in sorted(set(tiers) - tops):
        problems.append(f"ARCHITECTURE.md names `{name}`, which is not a module of src/")
    if graph:
        for a, b in sorted(edges):
            print(f"{a} (tier {tiers.get(a)}) -> {b} (tier {tiers.get(b)})")
    return sorted(set(problems)), tops, edges


def self_test():
    """The check must catch a plain, a grouped and a `super::` upward import."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        root = pathlib.Path(tmp)
        (root / "src" / "core").mkdir(parents=True)
        (root / "src" / "layer").mkdir()
        (root / "ARCHITECTURE.md").write_text(
            "## Tiers\n| tier | modules |\n|---|---|\n| 0 | `core` |\n| 1 | `layer` |\n"
        )
        (root / "src" / "lib.rs").write_text("mod core;\nmod layer;\n")
        (root / "src" / "layer" / "mod.rs").write_text("use crate::core::A; // fine\n")
        (root / "src" / "core" / "mod.rs").write_text(
            'use crate::layer::B;\nuse crate::{x, layer::C};\nfn f() { let s = "crate::layer"; }\n'
        )
        (root / "src" / "core" / "deep.rs").write_text("fn g() { super::super::layer::D; }\n")
        problems, _, _ = check(root)
    caught = sorted(p.split(":")[0] + ":" + p.split(":")[1] for p in problems)
    expected = ["src/core/deep.rs:1", "src/core/mod.rs:1", "src/core/mod.rs:2"]
    if caught != expected:
        print(f"check_tiers self-test failed: expected {expected}, got {problems}")
        return False
    return True


def main():
    if "--self-test" in sys.argv and not self_test():
        return 1
    problems, tops, edges = check(ROOT, "--graph" in sys.argv)
    for p in problems:
        print(p)
    if problems:
        print(f"check_tiers: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"check_tiers: {len(tops)} top-level modules, {len(edges)} edges, all downward")
    return 0


if __name__ == "__main__":
    sys.exit(main())
