#!/usr/bin/env bash
# Train, evaluate and package the default model (see MODEL_CARD.md).  Needs ../shared/datasets.
# About 1.5 h on 2 idle CPU cores (1.4 s per step measured); 149 s on an NVIDIA H200, where the
# bundled weights were trained (scripts/device_train_default.py).
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${RUN:-runs/default-model}
cracksam train -c configs/default_model.yaml --out "$RUN" ${RESUME:+--resume}
# Model card figures: dataset-level scores on each set's test split, clean and corrupted, and
# zero-shot on aiglern_crops (never trained on).
cracksam evaluate -m "$RUN/best" --name default \
  --test ../shared/datasets/cfd --test ../shared/datasets/cracksc --test ../shared/datasets/crack500_crops \
  --test ../shared/datasets/deepcrack_crops --test ../shared/datasets/gaps384_crops \
  --test ../shared/datasets/shadowcrack_crops --unseen ../shared/datasets/aiglern_crops \
  --out "$RUN/eval"
