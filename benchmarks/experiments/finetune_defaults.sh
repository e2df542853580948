#!/usr/bin/env bash
# The learning rate `train --init-from` uses by default (issue 27 point 6), chosen on a small set as a user
# would fine-tune: 100 photos of aiglern_crops (French road pavement, never in the bundled model's training),
# split 70/15/15 by cracksam, 80 steps of batch 8, warm-up 10, the bundled model as the start; validation
# IoU of each learning rate after training (the start model's score is the same for all).
#   bash benchmarks/experiments/finetune_defaults.sh [LR ...]      (default: 3e-5 1e-4 3e-4 1e-3)
set -euo pipefail
cd "$(dirname "$0")/../.."
lrs=("$@"); [ ${#lrs[@]} -eq 0 ] && lrs=(3e-5 1e-4 3e-4 1e-3)
SET=/tmp/cracksam-ft-small   # links to the shared files, never copied into the repository
rm -rf "$SET"; mkdir -p "$SET/images" "$SET/masks"
for img in $(ls ../shared/datasets/aiglern_crops/images | sort | head -100); do
  stem=${img%.*}
  ln -s "$(realpath ../shared/datasets/aiglern_crops/images/$img)" "$SET/images/$img"
  ln -s "$(realpath ../shared/datasets/aiglern_crops/masks/$stem.png)" "$SET/masks/$stem.png"
done
mkdir -p runs/ft-defaults
for lr in "${lrs[@]}"; do
  out=runs/ft-defaults/lr$lr
  rm -rf "$out"
  cracksam train --init-from default --data "$SET" --lr "$lr" --warmup 10 --max-iters 80 --batch-size 8 \
    --workers 0 --no-progress --out "$out" > "$out.json" 2> "$out.log" || { echo "lr $lr failed"; continue; }
  python - "$out" "$lr" <<'PY'
import csv, glob, sys
out, lr = sys.argv[1], sys.argv[2]
rows = [r for f in sorted(glob.glob(f"{out}/logs/*/metrics.csv")) for r in csv.DictReader(open(f))]
start = next(float(r["val/start_iou"]) for r in rows if r.get("val/start_iou"))
trained = [(int(r["step"]), float(r["val/iou"])) for r in rows if r.get("val/iou")]
print(f"lr {lr}: start {start:.4f}, after training " + ", ".join(f"step {s + 1}: {v:.4f}" for s, v in trained))
PY
done
