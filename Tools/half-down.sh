#!/usr/bin/env bash
# Two of four validators down is not +2/3 of stake: finality stops, and resumes when they return.
set -euo pipefail
FAULTLINE=${FAULTLINE:-.build/release/faultline}

$FAULTLINE up Topologies/quickstart.toml
$FAULTLINE fault kill v3
$FAULTLINE fault kill v4
sleep 2
echo "--- v3 and v4 down: heights stop moving (note the growing 'last commit' age):"
$FAULTLINE status
sleep 2
$FAULTLINE status
$FAULTLINE fault restart v3
$FAULTLINE fault restart v4
sleep 2
echo "--- both back: finality resumes"
$FAULTLINE status
$FAULTLINE down
