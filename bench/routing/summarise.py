#!/usr/bin/env python3
"""Median gap to the best-known DIMACS distance per Solomon class, solvers side by side.

Reads the CSV that ../shared/bench/peers.py writes (its gaps come from its own independent
check of every solution) and prints one markdown table per time limit: a row per class (C1, C2,
R1, R2, RC1, RC2) and one for all instances, a column per solver, each cell the median gap in
per cent, the mean in brackets, and the number of feasible runs when not all were feasible.
Under each table, instance by instance: on how many doorstep found a shorter, equal or longer
solution than each peer in the same run.
"""

import csv
import statistics
import sys
from collections import defaultdict

CLASSES = ["C1", "C2", "R1", "R2", "RC1", "RC2"]


def instance_class(name: str) -> str:
    """C101 -> C1, RC208 -> RC2, R1_2_1 -> R1."""
    letters = name.rstrip("0123456789_").split("_")[0].rstrip("0123456789")
    return letters + name[len(letters)]


def main(path: str) -> int:
    with open(path) as fh:
        rows = list(csv.DictReader(fh))
    solvers = sorted({r["solver"] for r in rows}, key=lambda s: (s != "doorstep", s))
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
    return 0


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
    sys.exit(main(sys.argv[1]))
