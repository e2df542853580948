#!/usr/bin/env bash
# Train and evaluate the default model (see MODEL_CARD.md).  Needs ../shared/datasets.
# Two stages (MODEL_CARD.md): configs/default_model.yaml from ImageNet weights, then
# configs/default_model_stage2.yaml from stage 1's best with the degradation augmentation.
# On 2 idle CPU cores about 1.6 s per step of 8 crops (256 px): stage 1's 2,000 steps take about
# 60 minutes (validation every 500 steps included), stage 2's 1,200 about 35.  Resumable: run it again after a crash or Ctrl-C
# and each stage continues from its checkpoints/last.ckpt (a finished stage is skipped).
# Ship the result with:  cp runs/default-model-s2/best/{config.json,weights.safetensors} src/cracksam/weights/default/
set -euo pipefail
cd "$(dirname "$0")/.."
stage() {  # config, run folder
  if [ -f "$2/best/weights.safetensors" ] && [ -f "$2/done" ]; then return; fi
  if [ -f "$2/checkpoints/last.ckpt" ]; then
    cracksam train -c "$1" --out "$2" --resume
  else
    cracksam train -c "$1" --out "$2"
  fi
  touch "$2/done"
}
# stage 2's config names runs/default-model/best as its init_from
stage configs/default_model.yaml runs/default-model
RUN=runs/default-model-s2
stage configs/default_model_stage2.yaml "$RUN"
# Model card figures: dataset-level scores on each set's test split, clean and corrupted, and
# zero-shot on aiglern_crops (never trained on); scored the way `predict` runs the model (native).
# --test-split test: cfd and cracksc have no split files, and evaluate's default (auto) would score
# them whole, training images included; their test split is drawn by seed as training draws it.
D=../shared/datasets
cracksam evaluate -m "$RUN/best" --name default --test-split test \
  --test $D/cfd --test $D/cracksc --test $D/crack500_crops --test $D/deepcrack_crops \
  --test $D/gaps384_crops --test $D/shadowcrack_crops --unseen $D/aiglern_crops \
  --out "$RUN/eval"
