#!/usr/bin/env python3
"""Median gap to the best-known DIMACS distance per Solomon class, solvers side by side.

Reads the CSV that ../shared/bench/peers.py writes (its gaps come from its own independent
check of every solution) and prints one markdown table per time limit: a row per class (C1, C2,
R1, R2, RC1, RC2) and one for all instances, a column per solver, each cell the median gap in
per cent, the mean in brackets, and the number of feasible runs when not all were feasible.
Under each table, instance by instance: on how many doorstep found a shorter, equal or longer
solution than each peer in the same run, and how many iterations PyVRP made per class: the
machine's speed while that class ran (these machines are shared, and their speed moves by
up to about a half within a run; a time-limited gap moves with it, the peer's as much as ours).

Given several CSVs (the same set run again, or with other seeds), it prints each, then one table
of every run's class medians side by side with their median.
"""

import csv
import re
import statistics
import sys
from collections import defaultdict

CLASSES = ["C1", "C2", "R1", "R2", "RC1", "RC2"]


def instance_class(name: str) -> str:
    """C101 -> C1, RC208 -> RC2, R1_2_1 -> R1."""
    letters = name.rstrip("0123456789_").split("_")[0].rstrip("0123456789")
    return letters + name[len(letters)]


def load(path: str) -> list:
    with open(path) as fh:
        return list(csv.DictReader(fh))


def solvers_of(rows: list) -> list:
    """The solvers in `rows`, doorstep first."""
    return sorted({r["solver"] for r in rows}, key=lambda s: (s != "doorstep", s))


def class_medians(rows: list, limit: float, solver: str) -> dict:
    """Median gap per class (and "all") of `solver`'s feasible runs at `limit`."""
    groups = defaultdict(list)
    for r in rows:
        if float(r["time_limit_s"]) == limit and r["solver"] == solver and r["gap_pct_vs_bks"]:
            for key in (instance_class(r["instance"]), "all"):
                groups[key].append(float(r["gap_pct_vs_bks"]))
    return {cls: statistics.median(g) for cls, g in groups.items()}


def speed(rows: list, limit: float) -> str:
    """PyVRP's median iterations per class at `limit`, from the notes peers.py keeps."""
    groups = defaultdict(list)
    for r in rows:
        m = re.search(r"iters=(\d+)", r.get("notes") or "")
        if float(r["time_limit_s"]) == limit and r["solver"] == "pyvrp" and m:
            groups[instance_class(r["instance"])].append(int(m.group(1)))
    cells = [f"{cls} {statistics.median(groups[cls]):.0f}" for cls in CLASSES if cls in groups]
    return "PyVRP iterations, median per class: " + ", ".join(cells) if cells else ""


def runs(paths: list) -> None:
    """Each run's median gap per class, per solver and limit, and the median of the runs."""
    tables = [load(p) for p in paths]
    for limit in sorted({float(r["time_limit_s"]) for t in tables for r in t}):
        print(f"\n{len(paths)} runs at {limit:g} s: median gap % per class, run by run; median of the runs\n")
        header = " | ".join(f"run {k + 1}" for k in range(len(paths)))
        print(f"| solver | class | {header} | median |")
        print("|---|---|" + "---|" * (len(paths) + 1))
        for solver in solvers_of(tables[0]):
            medians = [class_medians(t, limit, solver) for t in tables]
            for cls in CLASSES + ["all"]:
                got = [m[cls] for m in medians if cls in m]
                if len(got) == len(paths):
                    cells = " | ".join(f"{g:.2f}" for g in got)
                    print(f"| {solver} | {cls} | {cells} | {statistics.median(got):.2f} |")


def main(paths: list) -> int:
    for path in paths:
        if len(paths) > 1:
            print(f"\n### {path}")
        table(load(path))
    if len(paths) > 1:
        runs(paths)
    return 0


def table(rows: list) -> None:
    """The tables of one run (see the module's doc)."""
    solvers = solvers_of(rows)
    limits = sorted({float(r["time_limit_s"]) for r in rows})
    for limit in limits:
        print(f"\nTime limit {limit:g} s: median gap % to BKS (feasible runs / runs when short)\n")
        print("| class | " + " | ".join(solvers) + " |")
        print("|---|" + "---|" * len(solvers))
        groups = defaultdict(list)
        for r in rows:
            if float(r["time_limit_s"]) == limit:
                groups[(r["solver"], instance_class(r["instance"]))].append(r)
                groups[(r["solver"], "all")].append(r)
        for cls in CLASSES + ["all"]:
            cells = []
            for solver in solvers:
                group = groups.get((solver, cls), [])
                gaps = [float(r["gap_pct_vs_bks"]) for r in group if r["gap_pct_vs_bks"]]
                feasible = sum(r["feasible"] == "True" for r in group)
                cell = (
                    f"{statistics.median(gaps):.2f} ({statistics.mean(gaps):.2f})" if gaps else "-"
                )
                if group and feasible < len(group):
                    cell += f" ({feasible}/{len(group)})"
                cells.append(cell if group else "")
            if any(cells):
                print(f"| {cls} | " + " | ".join(cells) + " |")
        print()
        for peer in solvers:
            if peer != "doorstep":
                print(head_to_head(rows, limit, peer))
        if witness := speed(rows, limit):
            print(witness)


def head_to_head(rows: list, limit: float, peer: str) -> str:
    """Instance by instance at `limit`: doorstep shorter, equal or longer than `peer`."""
    cost = defaultdict(dict)
    for r in rows:
        if float(r["time_limit_s"]) == limit and r["feasible"] == "True":
            cost[r["instance"]][r["solver"]] = float(r["distance"])
    better = equal = worse = 0
    behind = []
    for name, by in sorted(cost.items()):
        if "doorstep" in by and peer in by:
            d, p = by["doorstep"], by[peer]
            if abs(d - p) < 0.05:
                equal += 1
            elif d < p:
                better += 1
            else:
                worse += 1
                behind.append(name)
    tail = f" ({', '.join(behind)})" if behind else ""
    return f"doorstep vs {peer}: shorter on {better}, equal on {equal}, longer on {worse}{tail}"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
