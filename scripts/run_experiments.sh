#!/usr/bin/env bash
# Thin-crack experiments of issue 11, one after another (never two at once on a small CPU).
# Each run is resumable: rerunning this script continues an interrupted run and skips finished ones.
#   bash scripts/run_experiments.sh [NAME ...]     (default: every configs/experiments/*.yaml)
set -uo pipefail
cd "$(dirname "$0")/.."
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
    for f in configs/experiments/*.yaml; do names+=("$(basename "$f" .yaml)"); done
fi
for name in "${names[@]}"; do
    out="runs/exp/$name"
    if [ -f "$out/done.json" ]; then echo "$name: done"; continue; fi
    start=$(date +%s)
    if [ -f "$out/checkpoints/last.ckpt" ]; then
        cracksam train --config "configs/experiments/$name.yaml" --resume --out "$out" > "$out/train.json" 2> "$out/train.log"
    else
        mkdir -p "$out"
        cracksam train --config "configs/experiments/$name.yaml" > "$out/train.json" 2> "$out/train.log"
    fi
    rc=$?
    end=$(date +%s)
    if [ $rc -eq 0 ]; then
        python - "$out" $((end - start)) <<'PY'
import json, sys
out, secs = sys.argv[1], int(sys.argv[2])
info = json.load(open(f"{out}/train.json"))
info["wall_s"] = secs
json.dump(info, open(f"{out}/done.json", "w"), indent=2)
PY
        echo "$name: finished in $((end - start)) s"
    else
        echo "$name: failed (rc $rc), see $out/train.log"
    fi
done
