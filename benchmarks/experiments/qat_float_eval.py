"""A QAT model (optionally with the quantisers ``qat_greedy.py`` chose left in float), saved as a
cracksam model folder and exported to OpenVINO INT8 by the product (``export_openvino_qat``); then
- agreement of its INT8 masks with the float PyTorch model of the same weights: strict mask IoU on the
  cfd/cracksc validation windows (where choices are made) and test windows (for the report), and the
  2-px tolerance F1 of the INT8 mask against the float mask (the field's tolerance rule, applied to
  the two models instead of model and truth);
- accuracy against the ground truth on the cfd/cracksc test photos (whole photos at their own size):
  dataset-level crack IoU and 2-px tolerance F1 of the float model, its INT8 export and the bundled model;
- speed of OpenVINO fp32 and INT8 at 448² and 1568×2048 (2 threads).

    python qat_float_eval.py QAT_MODEL_DIR OUT_DIR [--greedy GREEDY.json [--steps K]]
"""
import argparse, json, statistics, tempfile, time
from pathlib import Path
import numpy as np, torch, openvino as ov
from cracksam.config import load_yaml
from cracksam.training.config import TrainConfig
from cracksam.training.qat import keep_float
from cracksam.data.splits import load_split
from cracksam.deployment.pipeline import load_network_tiles
from cracksam.deployment.export import parity_report
from cracksam.deployment.export_qat import export_openvino_qat
from cracksam.deployment.export_onnx import export_onnx
from cracksam.inference.backends import TorchBackend
from cracksam.models.io import load_model, save_trained
from cracksam.models.quantizers import load_quantized
from cracksam.models.default import default_model_path
from cracksam.data.io import read_image
from cracksam.data.masks import read_mask
from cracksam.evaluation.thin_metrics import tolerance_counts, tolerance_f1_from_counts

torch.set_num_threads(2)
core = ov.Core()


class OV:
    name, precision, image_size = "ov", "int8", 448

    def __init__(self, path):
        self.r = core.compile_model(str(path), "CPU", {"INFERENCE_NUM_THREADS": 2, "PERFORMANCE_HINT": "LATENCY"}).create_infer_request()

    def run(self, x):
        return np.concatenate([self.r.infer({0: x[i:i + 1]})[0].copy() for i in range(len(x))])


def ms(b, shape, reps):
    x = np.random.default_rng(0).integers(0, 255, shape).astype(np.float32)
    b.run(x); t = []
    for _ in range(reps):
        t0 = time.perf_counter(); b.run(x); t.append(time.perf_counter() - t0)
    return statistics.median(t) * 1000


def samples(split):
    d = load_yaml(TrainConfig, "/work/main/configs/default_model.yaml").data
    return [s for s in load_split(d.train, split, tuple(d.ratios), d.split_seed, d.split_source)
            if s.dataset in ("cfd", "cracksc")]


def windows(split, limit):
    return load_network_tiles([str(s.image) for s in samples(split)], 448, 1.0, limit=limit)[0]


def crack(backend, x):
    y = backend.run(x)
    return y[:, 1] > y[:, 0]  # softmax crack probability > 0.5


def tolerant_agreement(ref, cand, x, bs=8):
    """2-px tolerance F1 of ``cand``'s crack masks against ``ref``'s, pooled over ``x``."""
    counts = np.zeros(4, np.int64)
    for i in range(0, len(x), bs):
        for a, b in zip(crack(ref, x[i:i + bs]), crack(cand, x[i:i + bs])):
            counts += tolerance_counts(b, a)[0]
    return float(tolerance_f1_from_counts(counts)["f1"])


def accuracy(backends, split="test"):
    """Dataset-level crack IoU and 2-px tolerance F1 (pooled counts) per set, whole photos padded to
    a multiple of 32 by reflection as training's validation does."""
    out = {k: {} for k in backends}
    for s in samples(split):
        im = read_image(s.image).astype(np.float32)
        truth = read_mask(s.mask, threshold=s.mask_threshold) > 0
        h, w = im.shape[:2]
        x = np.pad(im, ((0, (-h) % 32), (0, (-w) % 32), (0, 0)), mode="reflect").transpose(2, 0, 1)[None].copy()
        for k, b in backends.items():
            pred = crack(b, x)[0, :h, :w]
            c = out[k].setdefault(s.dataset, np.zeros(7, np.int64))
            c[:3] += [np.count_nonzero(pred & truth), np.count_nonzero(pred & ~truth), np.count_nonzero(~pred & truth)]
            c[3:] += tolerance_counts(pred, truth)[0]
    rows = {}
    for k, sets in out.items():
        rows[k] = {ds: {"iou": float(c[0] / max(1, c[:3].sum())),
                        "tol_f1": float(tolerance_f1_from_counts(c[3:])["f1"])} for ds, c in sets.items()}
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model"); ap.add_argument("out", type=Path); ap.add_argument("--greedy")
    ap.add_argument("--steps", type=int); ap.add_argument("--test-windows", type=int, default=256)
    a = ap.parse_args()
    names = [p["off"] for p in json.load(open(a.greedy))["path"][1:]][: a.steps] if a.greedy else []
    q = load_quantized(a.model)
    off = keep_float(q, [n + ".enabled" for n in names]) if names else []
    a.out.mkdir(parents=True, exist_ok=True)
    folder = save_trained(q.eval(), a.out / "model", extra={"float_quantizers_from": a.greedy, "float_added": names})
    export_openvino_qat(folder, a.out / "int8.xml", dynamic_shape=True)
    ref = TorchBackend(load_model(folder).eval(), threads=2)
    int8 = OV(a.out / "int8.xml")
    row = {"float_added": names, "n_off_total": len(off)}
    for split, limit in (("val", 64), ("test", a.test_windows)):
        p = parity_report(ref, int8, windows(split, limit))
        row[split] = {k: p[k] for k in ("n_images", "mask_iou", "logit_cosine", "crack_fraction")}
        if split == "test":
            row[split]["tolerance_f1_2px"] = tolerant_agreement(ref, int8, windows(split, limit))
        print(split, row[split], flush=True)
    bundled = TorchBackend(load_model(default_model_path()).eval(), threads=2)
    row["test_accuracy"] = accuracy({"float": ref, "int8": int8, "bundled": bundled})
    print(json.dumps(row["test_accuracy"]), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        export_onnx(load_model(folder).eval(), Path(tmp) / "f.onnx", dynamic_shape=True)
        f32 = OV(Path(tmp) / "f.onnx")
        for label, b in (("fp32", f32), ("int8", int8)):
            row[label] = {"ms_448": ms(b, (1, 3, 448, 448), 15), "ms_1568x2048": ms(b, (1, 3, 1568, 2048), 3)}
            print(label, row[label], flush=True)
    row["speedup_448"] = row["fp32"]["ms_448"] / row["int8"]["ms_448"]
    json.dump(row, open(a.out / "eval.json", "w"), indent=1)
    print(json.dumps({k: row[k] for k in ("val", "test", "speedup_448")}), flush=True)


if __name__ == "__main__":
    main()
