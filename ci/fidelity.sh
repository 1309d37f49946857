#!/usr/bin/env bash
# The fidelity check, after ci/liveness.sh: each scenario the simulator supports runs again in simulated
# time and is compared with its real run (OUT/NAME/report.json): for every fault, did finality halt in
# both or in neither; did both end finalizing; do both agree on safety. Exits 1 if any scenario tells
# a different story simulated, 2 if there was nothing to compare.
#
#   ci/fidelity.sh [FOLDER] [OUT]          FAULTLINE=path/to/faultline (default .build/release/faultline)
#   SEEDS=5 (default): simulated seeds per scenario; the real outcome must be among theirs
set -uo pipefail
cd "$(dirname "$0")/.."
FOLDER=${1:-Topologies}
OUT=${2:-ci-out}
FAULTLINE=${FAULTLINE:-.build/release/faultline}
SEEDS=${SEEDS:-5}

agreed=0
differed=()
skipped=0
for file in "$FOLDER"/*.toml; do
    if ! grep -q '^\[scenario\]' "$file"; then continue; fi
    name=$(basename "$file" .toml)
    real="$OUT/$name/report.json"
    if [ ! -f "$real" ]; then echo "--- $name: no real run in $OUT (skipped)"; skipped=$((skipped + 1)); continue; fi
    log="$OUT/$name.fidelity.log"
    "$FAULTLINE" simulate "$file" --compare "$real" --seeds "$SEEDS" --out "$OUT/$name/simulated" --runs "$OUT/.simulated-runs" > "$log" 2>&1
    code=$?
    case $code in
        0) agreed=$((agreed + 1)); echo "--- $name: agrees ($(grep -c '^  = ' "$log") checks)"; grep '^  ~ ' "$log" ;;
        2) skipped=$((skipped + 1)); echo "--- $name: skipped: $(grep -m1 -v '^simulating' "$log" | sed 's/^faultline: //' | cut -c1-200)" ;;
        *) differed+=("$name"); echo "--- $name: DIFFERS (exit $code)"; grep -E '^  [=~✘] |^fidelity' "$log" ;;
    esac
done
echo "fidelity: $agreed scenarios agree with their real runs, ${#differed[@]} differ, $skipped not simulated"
if [ ${#differed[@]} -gt 0 ]; then echo "DIFFERS: ${differed[*]}"; exit 1; fi
if [ "$agreed" -eq 0 ]; then echo "nothing was compared"; exit 2; fi
