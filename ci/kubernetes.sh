#!/usr/bin/env bash
# Beyond one machine, proven offline: every scenario of the library exported for Kubernetes with Chaos
# Mesh (`faultline export kubernetes`), each export checked by Tools/kubernetes/validate.py (built-in
# kinds against Kubernetes 1.31's schema in strict mode with kubernetes-validate, Chaos Mesh objects
# against our v1alpha1 schema, the cross-object checks), the checker shown to catch planted mistakes,
# and five exports rehearsed on this machine from their files alone (`faultline rehearse kubernetes`:
# pods in network namespaces, the Workflow's faults by the kernel, the spam and the reports from the
# collector Job).
# Needs python3 with pip (kubernetes-validate is installed if missing) and, for the rehearsals, root.
#
#   ci/kubernetes.sh [OUT]        FAULTLINE=path/to/faultline to skip the build
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-ci-out/kubernetes}
FAULTLINE=${FAULTLINE:-}
if [ -z "$FAULTLINE" ]; then
    swift build -c release || exit 2
    FAULTLINE=.build/release/faultline
fi
if ! python3 -c "import kubernetes_validate, jsonschema, yaml" 2>/dev/null; then
    python3 -m pip install --quiet kubernetes-validate 2>&1 | tail -1
    python3 -c "import kubernetes_validate, jsonschema, yaml" || { echo "kubernetes-validate could not be installed" >&2; exit 2; }
fi
rm -rf "$OUT"
mkdir -p "$OUT/export"
failed=0
count=0
for file in Topologies/*.toml; do
    name=$(basename "$file" .toml)
    if ! "$FAULTLINE" export kubernetes "$file" --out "$OUT/export/$name" > "$OUT/export/$name.log" 2>&1; then
        echo "export $name: failed"; cat "$OUT/export/$name.log"; failed=1; continue
    fi
    if ! python3 Tools/kubernetes/validate.py "$OUT/export/$name" >> "$OUT/export/$name.log" 2>&1; then
        echo "validate $name: failed"; cat "$OUT/export/$name.log"; failed=1; continue
    fi
    count=$((count + 1))
done
echo "exported and validated $count scenarios (Kubernetes 1.31 strict, Chaos Mesh v1alpha1)"

# The checker must be able to fail: each planted mistake is caught and named.
plant() { # NAME PYTHON-EDIT EXPECTED-TEXT
    local dir="$OUT/planted/$1"
    rm -rf "$dir"; mkdir -p "$OUT/planted"; cp -r "$OUT/export/partition-halves" "$dir"
    python3 - "$dir" "$2" <<'PY'
import sys, yaml
folder, edit = sys.argv[1], sys.argv[2]
exec(edit)
PY
    if python3 Tools/kubernetes/validate.py "$dir" > "$dir.log" 2>&1; then
        echo "planted mistake '$1' was not caught"; failed=1
    elif ! grep -q -- "$3" "$dir.log"; then
        echo "planted mistake '$1' was caught but not named ($3):"; cat "$dir.log"; failed=1
    else
        echo "planted mistake '$1' caught: $(grep -m1 -- "$3" "$dir.log")"
    fi
}
plant unknown-field "
p = folder + '/validator.yaml'; docs = list(yaml.safe_load_all(open(p)))
docs[1]['spec']['template']['spec']['containers'][0]['imagePullPolcy'] = 'Always'
yaml.safe_dump_all(docs, open(p, 'w'))" "imagePullPolcy"
plant chaos-action "
p = folder + '/workflow.yaml'; wf = yaml.safe_load(open(p))
[t for t in wf['spec']['templates'] if t['templateType'] == 'NetworkChaos'][0]['networkChaos']['action'] = 'partitionn'
yaml.safe_dump(wf, open(p, 'w'))" "partitionn"
plant missing-pod "
p = folder + '/workflow.yaml'; wf = yaml.safe_load(open(p))
[t for t in wf['spec']['templates'] if t['templateType'] == 'NetworkChaos'][0]['networkChaos']['selector']['pods']['faultline'].append('validator-9')
yaml.safe_dump(wf, open(p, 'w'))" "validator-9"
plant dangling-child "
p = folder + '/workflow.yaml'; wf = yaml.safe_load(open(p))
wf['spec']['templates'][0]['children'].append('nowhere')
yaml.safe_dump(wf, open(p, 'w'))" "nowhere"
plant short-deadline "
p = folder + '/workflow.yaml'; wf = yaml.safe_load(open(p))
wf['spec']['templates'][0]['deadline'] = '2s'
yaml.safe_dump(wf, open(p, 'w'))" "shorter than its children"

# Five exports run here from their files alone; their reports must pass as local runs do.
if [ "$(id -u)" = "0" ] && command -v nft >/dev/null && command -v ip >/dev/null && command -v unshare >/dev/null; then
    for name in partition-halves region-outage vote-starvation rolling-restart upgrade-at-height-mistakes; do
        if "$FAULTLINE" rehearse kubernetes "$OUT/export/$name" --out "$OUT/rehearsal/$name" \
            --work "$OUT/rehearsal-work/$name" > "$OUT/rehearsal-$name.log" 2>&1; then
            echo "rehearsal $name: passed ($(grep -c '' "$OUT/rehearsal-$name.log") lines of log)"
        else
            echo "rehearsal $name: FAILED"; cat "$OUT/rehearsal-$name.log"; failed=1
        fi
    done
else
    echo "rehearsals skipped: they need root, iproute2, nftables and unshare"
fi
exit $failed
