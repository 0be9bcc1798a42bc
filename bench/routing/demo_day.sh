#!/usr/bin/env bash
# Plans the demo network's day (the one `doorstep demo` plans: seven clinicians, 24 visits and
# ten care homes with more residents due than the three pharmacists can see) from the command
# line, twenty seeds at 0.1 s and at 1 s, and prints each budget's median plan beside the plan
# found in 10 s with seed 1. Run from anywhere; about 40 seconds.
#
# Environment: SEEDS (default 20), OUT (default target/bench-routing: the day's problem is
# written there as demo-day.json).
set -euo pipefail
cd "$(dirname "$0")/../.."

cargo build --release -q -p doorstep-cli
bin=target/release/doorstep
out="${OUT:-target/bench-routing}"
mkdir -p "$out"
day="$out/demo-day.json"
"$bin" demo-data --problem >"$day"

# One line per plan: cost, residents and visits deferred, minutes of travel, and the cost
# without its immediate-delay term. The day's two immediate calls may both be seen from 08:00
# and the paramedic nearest both can go to only one first, so every plan sees the other a few
# minutes past the soonest anyone could (were it the only call) and carries that, at the
# lateness weight, as a near-constant that would flatten a ratio; plans are compared without it.
# 10**7 is that weight per second (`weights::LATENESS` in core/routing/src/plan.rs, and the
# plan schema's table in docs/plan-schema.md).
plan() { # time limit, seed
    "$bin" plan "$day" --time-limit "$1" --seed "$2" | python3 -c '
import json, sys
s = json.load(sys.stdin)["summary"]
delay = s["immediate_delay_seconds"]
print(s["cost"], s["unserved_routine"], s["travel_seconds"] / 60, delay, s["cost"] - 10**7 * delay)'
}

reference=$(plan 10 1)
echo "## demo network's day: $(python3 -c "import json; p = json.load(open('$day')); print(len(p['clinicians']), 'clinicians,', len(p['visits']), 'visits,', sum(len(h['residents']) for h in p['care_homes']), 'residents due in', len(p['care_homes']), 'care homes')")"
echo
echo "| budget | median cost (millions) | immediate delay s (median) | cost without it (millions) | ÷ 10 s plan's | routine work deferred (median) | travel min (median) |"
echo "|---|---|---|---|---|---|---|"
for limit in 0.1 1; do
    for seed in $(seq 1 "${SEEDS:-20}"); do plan "$limit" "$seed"; done | python3 -c '
import statistics, sys
rows = [list(map(float, line.split())) for line in sys.stdin]
ref = float(sys.argv[2].split()[4])
med = lambda k: statistics.median(r[k] for r in rows)
print(f"| {sys.argv[1]} s | {med(0) / 1e6:.1f} | {med(3):.0f} | {med(4) / 1e6:.1f} | {med(4) / ref:.3f} | {med(1):.0f} | {med(2):.0f} |")' "$limit" "$reference"
done
python3 -c '
import sys
cost, deferred, travel, delay, without = map(float, sys.argv[1].split())
print(f"| 10 s (seed 1) | {cost / 1e6:.1f} | {delay:.0f} | {without / 1e6:.1f} | 1 | {deferred:.0f} | {travel:.0f} |")' "$reference"
