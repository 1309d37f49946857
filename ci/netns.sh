#!/usr/bin/env bash
# The network scenarios of the library again, with every node in a network namespace of its own and
# the kernel making the link faults (nftables drops and loss, tc bandwidth): the verdicts must be the
# ones the node layer reaches (ci/liveness.sh). Needs root, iproute2 and nftables (installed with
# apt-get if missing, as CI runs as root).
#
#   ci/netns.sh [OUT]            FAULTLINE=path/to/faultline to skip the build; JOBS as in ci/liveness.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-ci-out/netns}
if [ "$(id -u)" != "0" ]; then echo "ci/netns.sh needs root (network namespaces, veth pairs, a bridge)" >&2; exit 2; fi
if ! command -v nft >/dev/null || ! command -v ip >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nftables iproute2 || exit 2
fi
# Partitions (both halves, a minority), loss with delay (delay falls back to the node layer where the
# kernel has no netem, and the report says so), and the two region outages (kills of namespaced nodes).
SCENARIOS="Topologies/partition-halves.toml Topologies/partition-minority.toml Topologies/lossy-links.toml
Topologies/region-outage.toml Topologies/region-outage-minority.toml" \
RUN_ARGS="--network netns --layer kernel" ci/liveness.sh Topologies "$OUT"
