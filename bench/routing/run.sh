#!/usr/bin/env bash
# Benchmarks the round optimiser (run from anywhere; paths are relative to the repository root).
#
#   bench/routing/run.sh            all 56 Solomon instances at 1 s and 10 s, doorstep beside
#                                   PyVRP in the same run (about 20 minutes on 2 cores), then
#                                   the network-day timings
#   bench/routing/run.sh --quick    three instances at 0.5 s and a short network day: proves the
#                                   benchmark still works (CI)
#
# Environment: SOLVERS (default "doorstep pyvrp"; add vroom ortools-gls for more peers),
# INSTANCES (default "solomon"; e.g. "C1_2_1 R2_2_5" for Gehring-Homberger 200), LIMITS
# (default "1 10"), CSV (default target/bench-routing/vrptw.csv), NETWORK_DAY (0 skips the
# network-day timings), PEERS_VENV (default /tmp/peers-venv: a virtual environment outside the
# repository with ../shared/bench/requirements-peers.txt).
set -euo pipefail
cd "$(dirname "$0")/../.."

quick=0
[[ "${1:-}" == "--quick" ]] && quick=1
venv="${PEERS_VENV:-/tmp/peers-venv}"
peers=../shared/bench/peers.py
out=target/bench-routing
mkdir -p "$out"

if [[ ! -x "$venv/bin/python" ]]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q -r ../shared/bench/requirements-peers.txt
fi

cargo build --release -q -p doorstep-cli -p doorstep-routing --example network_day

if (( quick )); then
    instances="C101 R101 RC201"
    limits="0.5"
else
    instances="${INSTANCES:-solomon}"
    limits="${LIMITS:-1 10}"
fi
# shellcheck disable=SC2086  # word splitting of the lists is intended
DOORSTEP_BIN=target/release/doorstep "$venv/bin/python" "$peers" \
    --instances $instances --time-limits $limits --solvers ${SOLVERS:-doorstep pyvrp} \
    --out "${CSV:-$out/vrptw.csv}" >/dev/null
python3 bench/routing/summarise.py "${CSV:-$out/vrptw.csv}"

if [[ "${NETWORK_DAY:-1}" == "0" ]]; then
    exit 0
elif (( quick )); then
    target/release/examples/network_day --quick
else
    target/release/examples/network_day
fi
