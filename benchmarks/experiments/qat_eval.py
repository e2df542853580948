"""Parity and validation IoU of QAT INT8 against fp32 (issue 16).  Usage:
    python qat_eval.py OUT.json QAT_DIR [QAT_DIR...]      (QAT_DIR from qat_default.py export)

Parity: mask IoU / logit cosine of each INT8 model against the fp32 PyTorch model of the same weights,
on 448-px native-scale windows of the cfd and cracksc *validation* photos (the bench uses cfd photos).
Accuracy: dataset-level crack IoU of every validation image at its own size (padded to a multiple of
32 by reflection, as training's validation does), mean of the six sets and pooled.
"""
import json, os, sys, time, tempfile
from pathlib import Path
import numpy as np, torch, openvino as ov
from cracksam.config import load_yaml
from cracksam.training.config import TrainConfig
from cracksam.training.trainer import _load_samples
from cracksam.deployment.pipeline import load_network_tiles
from cracksam.deployment.export import parity_report
from cracksam.deployment.export_onnx import export_onnx
from cracksam.deployment.quantize import quantize_int8
from cracksam.inference.backends import TorchBackend
from cracksam.models.io import load_model
from cracksam.models.default import default_model_path
from cracksam.data.io import read_image
from cracksam.data.masks import read_mask
from cracksam.deployment.runtime_cache import _samples

torch.set_num_threads(2)
core = ov.Core()


class OV:
    def __init__(self, xml, name):
        m = core.compile_model(str(xml), "CPU", {"INFERENCE_NUM_THREADS": 2, "INFERENCE_PRECISION_HINT": "f32"})
        self.req, self.name, self.precision, self.image_size = m.create_infer_request(), name, "int8", 448

    def run(self, x):
        return np.concatenate([self.req.infer({0: x[i:i + 1]})[0].copy() for i in range(len(x))])


cfg = load_yaml(TrainConfig, "/work/main/configs/default_model.yaml")
train, val = _load_samples(cfg)
files = [str(s.image) for s in val if s.dataset in ("cfd", "cracksc")]
windows, where = load_network_tiles(files, 448, 1.0, limit=64)
calib_files = [str(s.image) for s in train if s.dataset == "cracksc"][:16]
calib, _ = load_network_tiles(calib_files, 448, 1.0, limit=32)
print(where, flush=True)


def val_iou(backend):
    sets = {}
    for s in val:
        im = read_image(s.image).astype(np.float32)
        truth = read_mask(s.mask, threshold=s.mask_threshold) > 0
        h, w = im.shape[:2]
        ph, pw = (-h) % 32, (-w) % 32
        x = np.pad(im, ((0, ph), (0, pw), (0, 0)), mode="reflect").transpose(2, 0, 1)[None].copy()
        logits = backend.run(x)[0, :, :h, :w]
        pred = logits[1] > logits[0]
        c = sets.setdefault(s.dataset, [0, 0, 0])
        c[0] += int((pred & truth).sum()); c[1] += int((pred & ~truth).sum()); c[2] += int((~pred & truth).sum())
    per = {k: tp / max(tp + fp + fn, 1) for k, (tp, fp, fn) in sets.items()}
    tp, fp, fn = (sum(v[i] for v in sets.values()) for i in range(3))
    return {"mean_of_sets": float(np.mean(list(per.values()))), "pooled": tp / (tp + fp + fn), "per_set": per}


def ptq(model, tmp, name):
    onnx = Path(tmp) / f"{name}.onnx"
    export_onnx(model, onnx, dynamic_shape=True)
    xml = Path(tmp) / f"{name}_int8.xml"
    quantize_int8(onnx, xml, calib, model_type=None)
    return OV(xml, f"ptq-{name}")


rows = {}
with tempfile.TemporaryDirectory() as tmp:
    base = load_model(default_model_path()).eval()
    ref = TorchBackend(base, threads=2)
    lean = os.environ.get("LEAN") == "1"  # only the QAT INT8 rows (the bundled ones are in eval600.json)
    if not lean:
        rows["bundled fp32"] = {"val": val_iou(ref)}
        cand = ptq(base, tmp, "bundled")
        rows["bundled PTQ (NNCF)"] = {"parity": parity_report(ref, cand, windows), "val": val_iou(cand)}
    print(json.dumps(rows, indent=1), flush=True)
    for d in sys.argv[2:]:
        d = Path(d)
        fp = load_model(d / "model").eval()
        r = TorchBackend(fp, threads=2)
        q = OV(d / "int8.xml", f"qat-{d.name}")
        if not lean:
            rows[f"{d.name} fp32"] = {"val": val_iou(r)}
        rows[f"{d.name} QAT int8"] = {"parity": parity_report(r, q, windows), "val": val_iou(q),
                                     "parity_vs_bundled": parity_report(ref, q, windows),
                                     "parity_synthetic": parity_report(r, q, _samples(448))}
        if not lean:
            p = ptq(fp, tmp, d.name)
            rows[f"{d.name} PTQ of QAT fp32"] = {"parity": parity_report(r, p, windows)}
        print(json.dumps({k: v for k, v in rows.items() if k.startswith(d.name)}, indent=1), flush=True)
json.dump(rows, open(sys.argv[1], "w"), indent=1)
