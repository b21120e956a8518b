#!/usr/bin/env python3
"""Prints a Markdown table of the latest criterion results (median per request, ratio to the
echo baseline of the same run). Usage: cargo bench --bench layers && python3 scripts/bench_table.py"""
import json
import pathlib
import sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "target/criterion/per_request")
rows = {}
for est in sorted(root.glob("**/new/estimates.json")):
    name = str(est.parent.parent.relative_to(root))
    data = json.loads(est.read_text())
    rows[name] = (data["median"]["point_estimate"], data["median"]["confidence_interval"])
base = rows.get("echo_baseline", (None,))[0]
print("| benchmark | median | 95% CI | overhead vs echo | ratio vs echo |")
print("|---|---|---|---|---|")
order = lambda n: (n.split("/")[0], int(n.split("/")[1]) if "/" in n and n.split("/")[1].isdigit() else -1)
for name in sorted(rows, key=order):
    med, ci = rows[name]
    over = f"{med - base:.0f} ns" if base and name != "echo_baseline" else "—"
    ratio = f"{med / base:.2f}×" if base else "—"
    print(f"| {name} | {med:.0f} ns | {ci['lower_bound']:.0f}–{ci['upper_bound']:.0f} ns | {over} | {ratio} |")
for kind in ("api_key", "bearer"):
    one, big = rows.get(f"{kind}/1"), rows.get(f"{kind}/100000")
    if one and big:
        print(f"\n{kind}: 100,000 credentials / 1 credential = {big[0] / one[0]:.2f}×", end="")
print()
