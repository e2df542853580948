#!/usr/bin/env bash
# Train and evaluate the default model (see MODEL_CARD.md).  Needs ../shared/datasets and the [pretrained] extra.
# One run of configs/default_model.yaml: the ImageNet encoder frozen with LoRA deltas, the decoder trained,
# the degradation augmentation from the first step.  On 2 idle CPU cores about 1.4 s per step of 8 crops
# (256 px): its 2,000 steps take about 50 minutes (validation every 500 steps included).  Resumable: run it
# again after a crash or Ctrl-C and it continues from checkpoints/last.ckpt (a finished run is skipped).
# (The two-stage model it replaced: configs/experiments/bundled_v2_lite0_stage{1,2}.yaml.)
# Ship the result with:  cp runs/default-model/best/{config.json,weights.safetensors} src/cracksam/weights/default/
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=runs/default-model
if [ ! -f "$RUN/done" ]; then
  if [ -f "$RUN/checkpoints/last.ckpt" ]; then
    cracksam train -c configs/default_model.yaml --out "$RUN" --resume
  else
    cracksam train -c configs/default_model.yaml --out "$RUN"
  fi
  touch "$RUN/done"
fi
# Model card figures: dataset-level scores on each set's test split, clean and corrupted, and
# zero-shot on aiglern_crops (never trained on); scored the way `predict` runs the model (native).
# --test-split test: cfd and cracksc have no split files, and evaluate's default (auto) would score
# them whole, training images included; their test split is drawn by seed as training draws it.
D=../shared/datasets
cracksam evaluate -m "$RUN/best" --name default --test-split test \
  --test $D/cfd --test $D/cracksc --test $D/crack500_crops --test $D/deepcrack_crops \
  --test $D/gaps384_crops --test $D/shadowcrack_crops --unseen $D/aiglern_crops \
  --out "$RUN/eval"
