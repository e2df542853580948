#!/usr/bin/env bash
# Train and evaluate the default model (see MODEL_CARD.md).  Needs ../shared/datasets.
# On 2 idle CPU cores about 1.6 s per step of 8 crops (256 px): the 2,000 steps of
# configs/default_model.yaml take about 60 minutes (validation every 500 steps included).  Resumable: run it again after a crash or Ctrl-C
# and it continues from runs/default-model/checkpoints/last.ckpt.
# Ship the result with:  cp runs/default-model/best/{config.json,weights.safetensors} src/cracksam/weights/default/
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${RUN:-runs/default-model}
if [ -f "$RUN/checkpoints/last.ckpt" ]; then
  cracksam train -c configs/default_model.yaml --out "$RUN" --resume
else
  cracksam train -c configs/default_model.yaml --out "$RUN"
fi
# Model card figures: dataset-level scores on each set's test split, clean and corrupted, and
# zero-shot on aiglern_crops (never trained on); scored the way `predict` runs the model (native).
D=../shared/datasets
cracksam evaluate -m "$RUN/best" --name default \
  --test $D/cfd --test $D/cracksc --test $D/crack500_crops --test $D/deepcrack_crops \
  --test $D/gaps384_crops --test $D/shadowcrack_crops --unseen $D/aiglern_crops \
  --out "$RUN/eval"
