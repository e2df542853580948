#!/usr/bin/env bash
# Table B.1-style comparison: one student, same data and schedule, without and with channel-wise
# distillation; evaluated on test / noisy 1 (dim) / noisy 2 (blurry) / unseen.  Needs ../shared.
#
# TEACHER defaults to the bundled default model's training run.  Where SAM weights are available,
# pass a real CrackSAM teacher instead, e.g. TEACHER=runs/cracksam-vit-b/best TEACHER_BASE=vit_b
# (or its ONNX/OpenVINO export, which is faster on a CPU).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/kd}
TEACHER=${TEACHER:-runs/default-model/best}
cracksam train -c configs/kd_student.yaml --out "$OUT/student-plain"
cracksam distill -c configs/kd_student.yaml --teacher "$TEACHER" ${TEACHER_BASE:+--teacher-base "$TEACHER_BASE"} \
  --out "$OUT/student-kd"
D=../shared/datasets
cracksam evaluate -m "$OUT/student-plain/best" --name "student" -m "$OUT/student-kd/best" --name "student + CWD" \
  -m "$TEACHER" --name "teacher" \
  --test $D/cfd --test $D/cracksc --test $D/crack500_crops --test-split test --unseen $D/aiglern_crops \
  --out "$OUT/eval"
