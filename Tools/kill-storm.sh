#!/usr/bin/env bash
# Crash safety from a shell script: start a cluster under load, SIGKILL its validators at random
# moments KILLS times over SECONDS (one down at a time, 10% of kills also tear the victim's block
# store tail), then stop it. `faultline down` prints the durability and signing lines and exits 1
# if any node lost a committed block, any torn tail went undetected, any validator signed two
# values for one height/round/step, or nodes disagree. Run from the repository root after
# `swift build -c release` (or set FAULTLINE=.build/debug/faultline).
set -euo pipefail
FAULTLINE=${FAULTLINE:-.build/release/faultline}
KILLS=${1:-120}
SECONDS_=${2:-80}

$FAULTLINE up Topologies/quickstart.toml
$FAULTLINE load --duration $((SECONDS_ + 5)) --rate 300 > /tmp/faultline-load.log 2>&1 &
LOAD=$!
$FAULTLINE fault kill-storm all --count "$KILLS" --seconds "$SECONDS_" --down-ms 600 --torn-percent 10 \
    | awk 'NR % 20 == 0 || /kill storm/'
wait $LOAD || true
$FAULTLINE status
$FAULTLINE down
