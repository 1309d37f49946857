#!/usr/bin/env bash
# A cluster smoke job to copy into your CI: builds, runs the quickstart demo for a few seconds and
# fails (non-zero exit) if any node crashed or the nodes disagree on a block.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release
.build/release/faultline demo Topologies/quickstart.toml --duration "${DURATION:-5}"
