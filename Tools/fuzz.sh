#!/usr/bin/env bash
# Runs the libFuzzer targets of Tools/Fuzz (the parsers of peers' bytes, users' files and JSON-RPC
# bodies) for a bounded time each, from seed corpora the targets write themselves (real signed
# messages, real requests) or, for the file parsers, the outage library in Topologies/.
#
#   Tools/fuzz.sh [SECONDS]            default 30 s per target; corpora in .faultline/fuzz/<target>
#   Tools/fuzz.sh 600 FuzzParts        one target
#   JOBS=1 Tools/fuzz.sh               one target at a time (default: one per core)
#
# A crash leaves its input as .faultline/fuzz/crash-<target>-*; turn it into a unit test that replays
# it. Exits non-zero if a target crashed.
set -uo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-30}
shift || true
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then TARGETS=(FuzzWire FuzzParts FuzzFiles FuzzRPC); fi
if ! [[ "$SECONDS_EACH" =~ ^[1-9][0-9]*$ ]]; then echo "SECONDS must be a positive whole number, got '$SECONDS_EACH'" >&2; exit 2; fi
(cd Tools/Fuzz && swift build -c debug --sanitize=fuzzer) || exit 2
# One target per core at once (JOBS to change it): each is one libFuzzer process on one core. Each one's lines
# are printed together, in the order of TARGETS, once all have ended.
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 1)}
if ! [[ "$JOBS" =~ ^[1-9][0-9]*$ ]]; then echo "JOBS must be a positive whole number, got '$JOBS'" >&2; exit 2; fi
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
fuzz_one() { # TARGET: runs it, writes its lines to $logs/TARGET.log and its exit code to $logs/TARGET.code
    local target=$1 corpus=.faultline/fuzz/$1 max_len=4096
    mkdir -p "$corpus"
    if [ "$target" = FuzzFiles ]; then
        # The outage library is the seed corpus of the file parsers (files up to a few KiB).
        cp -n Topologies/*.toml "$corpus/" 2>/dev/null || true
        max_len=16384
    fi
    {
        echo "=== $target for $SECONDS_EACH s (corpus $corpus)"
        FAULTLINE_FUZZ_SEEDS=$corpus SWIFT_BACKTRACE=enable=no Tools/Fuzz/.build/debug/$target "$corpus" \
            -max_total_time="$SECONDS_EACH" -max_len="$max_len" -print_final_stats=1 \
            -artifact_prefix=".faultline/fuzz/crash-$target-" 2>&1 \
            | grep -E "^#[0-9]+ +(INITED|DONE)|^stat::number_of_executed_units|^stat::peak_rss|cov:|ERROR|SUMMARY|Fatal error|precondition|Test unit written" \
            | grep -vE "(NEW|REDUCE|pulse) +cov:" | tail -8
        echo "${PIPESTATUS[0]}" > "$logs/$target.code"
    } > "$logs/$target.log" 2>&1
}
running=0
for target in "${TARGETS[@]}"; do
    if [ "$running" -ge "$JOBS" ]; then wait -n; running=$((running - 1)); fi
    fuzz_one "$target" &
    running=$((running + 1))
done
wait
status=0
for target in "${TARGETS[@]}"; do
    cat "$logs/$target.log"
    code=$(cat "$logs/$target.code" 2>/dev/null || echo 1)
    echo "--- $target: exit $code"
    if [ "$code" -ne 0 ]; then status=1; fi
done
exit $status
