#!/usr/bin/env bash
# Drive a live cluster from a shell script: kill -9 one validator under load, watch the other three
# keep finalizing, restart it and watch it catch up. Run from the repository root after
# `swift build -c release` (or set FAULTLINE=.build/debug/faultline).
set -euo pipefail
FAULTLINE=${FAULTLINE:-.build/release/faultline}
NODE=${1:-v2}

$FAULTLINE up Topologies/quickstart.toml
$FAULTLINE load --duration 12 --rate 300 > /tmp/faultline-load.log 2>&1 &
LOAD=$!
sleep 2
$FAULTLINE fault kill "$NODE"
sleep 3
echo "--- $NODE is down; the others keep finalizing:"
$FAULTLINE status
$FAULTLINE fault restart "$NODE"
sleep 3
echo "--- $NODE restarted and caught up from its peers:"
$FAULTLINE status
wait $LOAD || true
$FAULTLINE down
