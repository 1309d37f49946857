#!/usr/bin/env bash
# Drive a live cluster with faults from a plain shell script, then build the report of that run:
# its picture shows each fault window and the halts it caused.
set -euo pipefail
FAULTLINE=${FAULTLINE:-.build/release/faultline}

$FAULTLINE up Topologies/quickstart.toml
$FAULTLINE load --rate 200 --duration 24 > /dev/null &
LOAD=$!
sleep 2
$FAULTLINE fault partition v1,v2 v3,v4          # 2|2: finality halts
sleep 3
$FAULTLINE fault heal
sleep 2
$FAULTLINE fault kill region=us-east-1          # v1 and v2 share a region label: halts again
sleep 3
$FAULTLINE fault restart region=us-east-1
sleep 2
$FAULTLINE fault drop precommit --from v2 --to v4
$FAULTLINE fault delay 80 --jitter 40           # slower blocks, still live
sleep 4
$FAULTLINE fault heal
wait $LOAD || true
$FAULTLINE down
$FAULTLINE report || true                       # writes report.html next to the run's files
echo "open $(readlink .faultline/current)/report.html"
