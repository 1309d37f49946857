#!/usr/bin/env bash
# The liveness job to copy into your CI: runs every scenario in a folder (default Topologies/),
# collects report.json, junit.xml and report.html per scenario under $OUT, and exits non-zero if any
# expectation failed (1) or a file was malformed (2).
#
#   ci/liveness.sh [FOLDER] [OUT]          FAULTLINE=path/to/faultline to skip the build
#   JOBS=3 ci/liveness.sh                  scenarios side by side, three at a time (default 1)
#
# With JOBS > 1, scenarios marked `exclusive = true` in [scenario] (those that load the machine on
# purpose: spam at k× the verification rate, airdrop bursts) run first, alone; the others then run
# JOBS at a time. Each scenario's output goes to $OUT/NAME.log and is printed when it finishes.
set -uo pipefail
cd "$(dirname "$0")/.."
FOLDER=${1:-Topologies}
OUT=${2:-ci-out}
FAULTLINE=${FAULTLINE:-}
JOBS=${JOBS:-1}
if ! [[ "$JOBS" =~ ^[1-9][0-9]*$ ]]; then echo "JOBS must be a positive whole number, got '$JOBS'" >&2; exit 2; fi
if [ -z "$FAULTLINE" ]; then
    swift build -c release || exit 2
    FAULTLINE=.build/release/faultline
fi
mkdir -p "$OUT"
start=$(date +%s)

exclusive=()
shared=()
for file in "$FOLDER"/*.toml; do
    if ! grep -q '^\[scenario\]' "$file"; then continue; fi
    if [ "$JOBS" -gt 1 ] && grep -Eq '^exclusive *= *true' "$file"; then exclusive+=("$file"); else shared+=("$file"); fi
done

# One scenario: its output in $OUT/NAME.log, its exit code in $OUT/NAME.code.
run_one() {
    local file=$1 name t0 code
    name=$(basename "$file" .toml)
    t0=$(date +%s)
    "$FAULTLINE" run "$file" --out "$OUT/$name" 2>&1 | grep -v '^ *[0-9.]*/[0-9]*s ' > "$OUT/$name.log"
    code=${PIPESTATUS[0]}
    echo "$code" > "$OUT/$name.code"
    { echo "=== $name"; cat "$OUT/$name.log"; echo "--- $name: exit $code in $(( $(date +%s) - t0 )) s"; }
}

for file in "${exclusive[@]}"; do run_one "$file"; done
running=0
for file in "${shared[@]}"; do
    if [ "$running" -ge "$JOBS" ]; then wait -n; running=$((running - 1)); fi
    # Each job prints its whole log at once when it finishes, so outputs never interleave mid-scenario.
    ( out=$(run_one "$file"); printf '%s\n' "$out" ) &
    running=$((running + 1))
done
wait

status=0
for file in "${exclusive[@]}" "${shared[@]}"; do
    name=$(basename "$file" .toml)
    code=$(cat "$OUT/$name.code" 2>/dev/null || echo 2)
    if [ "$code" -ne 0 ] && [ "$status" -ne 2 ]; then status=$code; fi
    if [ "$code" -ne 0 ]; then echo "FAILED: $name (exit $code, log $OUT/$name.log)"; fi
done
echo "library finished in $(( $(date +%s) - start )) s with JOBS=$JOBS; JUnit files: $OUT/*/junit.xml"
exit $status
