#!/usr/bin/env bash
# Mixed versions from a shell script (Topologies/README.md, "Mixed validator versions"): restart one validator on a
# version-2 binary under load and watch it stop on the first state root mismatch while the others go on; put it back on
# version 1 but on another fork id and watch every peer refuse it at the handshake (log line and /metrics counter); put
# it back on fork 0 and watch it re-execute its last block and catch up. Run from the repository root after `swift build
# -c release` (or set FAULTLINE=.build/debug/faultline).
set -euo pipefail
FAULTLINE=${FAULTLINE:-.build/release/faultline}
NODE=${1:-v4}

$FAULTLINE up Topologies/quickstart.toml
RUN=$(readlink .faultline/current)
$FAULTLINE load --duration 14 --rate 300 > /tmp/faultline-load.log 2>&1 &
LOAD=$!
sleep 1
$FAULTLINE fault upgrade "$NODE" --version 2
sleep 2
echo "--- $NODE on v2 rules (no upgrade plan): it stopped on the first block with fees; the others go on:"
$FAULTLINE status
$FAULTLINE fault upgrade "$NODE" --version 1 --fork-id 1
sleep 2
echo "--- $NODE back on v1 rules but on fork id 1: refused at the handshake:"
$FAULTLINE status
PORT=$(python3 -c "import json,sys; print(next(n['controlPort'] for n in json.load(open(sys.argv[1]))['nodes'] if n['name']=='v1'))" "$RUN/run.json")
curl -s -H "Authorization: Bearer $(cat "$RUN/token")" "http://127.0.0.1:$PORT/metrics" | grep -E '^faultline_(handshake_refused_total|peers_refused)'
grep 'handshake: refusing' "$RUN/nodes/v1/node.log" | tail -1
$FAULTLINE fault upgrade "$NODE" --version 1 --fork-id 0
sleep 3
echo "--- $NODE on fork 0 again: accepted, its last block re-executed under v1 rules, caught up:"
$FAULTLINE status
wait $LOAD || true
$FAULTLINE down
