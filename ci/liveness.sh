#!/usr/bin/env bash
# The liveness job to copy into your CI: runs every scenario in a folder (default Topologies/),
# collects report.json, junit.xml and report.html per scenario under $OUT, and exits non-zero if any
# expectation failed (1) or a file was malformed (2).
#
#   ci/liveness.sh [FOLDER] [OUT]          FAULTLINE=path/to/faultline to skip the build
set -uo pipefail
cd "$(dirname "$0")/.."
FOLDER=${1:-Topologies}
OUT=${2:-ci-out}
FAULTLINE=${FAULTLINE:-}
if [ -z "$FAULTLINE" ]; then
    swift build -c release || exit 2
    FAULTLINE=.build/release/faultline
fi
mkdir -p "$OUT"
status=0
start=$(date +%s)
for file in "$FOLDER"/*.toml; do
    name=$(basename "$file" .toml)
    if ! grep -q '^\[scenario\]' "$file"; then continue; fi
    echo "=== $name"
    t0=$(date +%s)
    "$FAULTLINE" run "$file" --out "$OUT/$name" | grep -v '^ *[0-9.]*/[0-9]*s ' 
    code=${PIPESTATUS[0]}
    echo "--- $name: exit $code in $(( $(date +%s) - t0 )) s"
    if [ "$code" -ne 0 ] && [ "$status" -ne 2 ]; then status=$code; fi
done
echo "library finished in $(( $(date +%s) - start )) s; JUnit files: $OUT/*/junit.xml"
exit $status
