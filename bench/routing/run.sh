#!/usr/bin/env bash
# Benchmarks the round optimiser (run from anywhere; paths are relative to the repository root).
#
#   bench/routing/run.sh            all 56 Solomon and all 60 Gehring-Homberger 200 instances at
#                                   1 s and 10 s, doorstep beside PyVRP in the same run (about 45
#                                   minutes), then the network-day timings (about two minutes),
#                                   the network day beside VROOM, OR-Tools and (without breaks)
#                                   PyVRP (bench/routing/network_day_peers.py, about ten minutes)
#                                   and the demo network's day (bench/routing/demo_day.sh, about
#                                   forty seconds)
#   bench/routing/run.sh --quick    three instances at 0.5 s, a short network day and the day
#                                   without breaks at 0.1 s beside every peer: proves the
#                                   benchmark still works
#
# Environment: SOLVERS (default "doorstep pyvrp"; add vroom ortools-gls for more peers),
# INSTANCES (default "solomon homberger200": each set is run and summarised on its own; a set
# may also be a list of names such as "C1_2_1 R2_2_5", run as one), LIMITS (default "1 10"),
# SEEDS (default "0": one run per set; "0 1 2", or "0 0 0" for the same search timed again,
# runs each set once per entry, one CSV each, then a table of every run's class medians and
# their median), OUT (default target/bench-routing: one CSV per set there), NETWORK_DAY (0 skips the
# network-day timings and the demo network's day), PEERS_VENV (default /tmp/peers-venv: a virtual environment outside the
# repository with ../shared/bench/requirements-peers.txt).
set -euo pipefail
cd "$(dirname "$0")/../.."

quick=0
[[ "${1:-}" == "--quick" ]] && quick=1
venv="${PEERS_VENV:-/tmp/peers-venv}"
peers=../shared/bench/peers.py
out="${OUT:-target/bench-routing}"
mkdir -p "$out"

if [[ ! -x "$venv/bin/python" ]]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q -r ../shared/bench/requirements-peers.txt
fi

# Two builds: with --example in the same command, cargo builds only that example and would
# leave a stale doorstep binary in place.
cargo build --release -q -p doorstep-cli
cargo build --release -q -p doorstep-routing --example network_day

run_set() { # name, instances...
    local name=$1 seeds=(${SEEDS:-0}) csvs=() k csv
    shift
    for k in "${!seeds[@]}"; do
        csv="$out/$name.csv"
        (( ${#seeds[@]} > 1 )) && csv="$out/$name-run$((k + 1)).csv"
        # shellcheck disable=SC2086  # word splitting of the lists is intended
        DOORSTEP_BIN=target/release/doorstep "$venv/bin/python" "$peers" \
            --instances "$@" --time-limits $limits --solvers ${SOLVERS:-doorstep pyvrp} \
            --seed "${seeds[k]}" --out "$csv" >/dev/null
        csvs+=("$csv")
    done
    echo
    echo "## $name (${csvs[*]})"
    python3 bench/routing/summarise.py "${csvs[@]}"
}

if (( quick )); then
    limits="0.5"
    run_set quick C101 R101 RC201
elif [[ -n "${INSTANCES:-}" && "$INSTANCES" != "solomon homberger200" ]]; then
    limits="${LIMITS:-1 10}"
    # One whole set keeps its own name; a list of instances is "custom".
    name=custom
    [[ -d "../shared/bench/instances/$INSTANCES" ]] && name=$INSTANCES
    # shellcheck disable=SC2086
    run_set "$name" $INSTANCES
else
    limits="${LIMITS:-1 10}"
    run_set solomon solomon
    run_set homberger200 homberger200
fi

if [[ "${NETWORK_DAY:-1}" == "0" ]]; then
    exit 0
elif (( quick )); then
    target/release/examples/network_day --quick
    target/release/examples/network_day --write-day "$out/network-day.json"
    "$venv/bin/python" bench/routing/network_day_peers.py --day "$out/network-day.json" \
        --doorstep target/release/doorstep --out "$out" --limits 0.1 --seeds 1 \
        --reference-limit 1 --no-breaks --solvers doorstep pyvrp vroom ortools-gls
else
    target/release/examples/network_day
    echo
    target/release/examples/network_day --write-day "$out/network-day.json"
    echo "## network day beside the peers that can state it"
    "$venv/bin/python" bench/routing/network_day_peers.py --day "$out/network-day.json" \
        --doorstep target/release/doorstep --out "$out"
    echo
    echo "## the same day without breaks, PyVRP too"
    "$venv/bin/python" bench/routing/network_day_peers.py --day "$out/network-day.json" \
        --doorstep target/release/doorstep --out "$out" --no-breaks \
        --solvers doorstep pyvrp vroom ortools-gls
    echo
    OUT="$out" bench/routing/demo_day.sh
fi
