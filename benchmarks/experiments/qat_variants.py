"""INT8 OpenVINO exports of a QAT model with groups of its quantisers switched off (those layers stay
float): parity with the float weights on the cfd/cracksc validation windows, and speed at 448² and at a
1568×2048 window (2 threads).  Usage: python qat_variants.py QAT_MODEL_DIR OUT.json"""
import json, sys, time, statistics, tempfile
from pathlib import Path
import numpy as np, torch, openvino as ov
from cracksam.config import load_yaml
from cracksam.training.config import TrainConfig
from cracksam.training.trainer import _load_samples
from cracksam.deployment.pipeline import load_network_tiles
from cracksam.deployment.export import parity_report
from cracksam.inference.backends import TorchBackend
from cracksam.models.io import load_model
from cracksam.models.quantizers import load_quantized, HOOK_PREFIX

torch.set_num_threads(2)
cfg = load_yaml(TrainConfig, "/work/main/configs/default_model.yaml")
_, val = _load_samples(cfg)
windows, _ = load_network_tiles([str(s.image) for s in val if s.dataset in ("cfd", "cracksc")], 448, 1.0, limit=64)
d = sys.argv[1]
ref = TorchBackend(load_model(d).eval(), threads=2)
core = ov.Core()
W = lambda n: "pre_hooks" in n and "__1." in n
dec = lambda n: "decoder" in n or "segmentation_head" in n
class OV:
    name, precision, image_size = "ov", "int8", 448
    def __init__(self, m): self.r = core.compile_model(m, "CPU", {"INFERENCE_NUM_THREADS": 2, "PERFORMANCE_HINT": "LATENCY"}).create_infer_request()
    def run(self, x): return np.concatenate([self.r.infer({0: x[i:i+1]})[0].copy() for i in range(len(x))])
def ms(b, shape, reps):
    x = np.random.default_rng(0).integers(0, 255, shape).astype(np.float32)
    b.run(x); t = []
    for _ in range(reps):
        t0 = time.perf_counter(); b.run(x); t.append(time.perf_counter() - t0)
    return statistics.median(t) * 1000
rows = {}
fp = core.convert_model if False else None
with tempfile.TemporaryDirectory() as tmp:
    from cracksam.deployment.export_onnx import export_onnx
    export_onnx(load_model(d).eval(), Path(tmp) / "f.onnx", dynamic_shape=True)
    f32 = OV(core.read_model(str(Path(tmp) / "f.onnx")))
    rows["fp32 (OpenVINO)"] = {"ms_448": ms(f32, (1, 3, 448, 448), 15), "ms_1568x2048": ms(f32, (1, 3, 1568, 2048), 3)}
    print(rows, flush=True)
    for label, pick in [("all INT8", lambda n: False), ("stem activation float", lambda n: "act1/" in n),
                        ("encoder activations float", lambda n: not W(n) and not dec(n) and "/div/" not in n),
                        ("stem + hardswish float", lambda n: "hardswish" in n)]:
        q = load_quantized(d)
        for n, b in q.named_buffers():
            if n.startswith(HOOK_PREFIX) and n.endswith(".enabled"):
                b.fill_(0 if pick(n) else 1)
        with torch.no_grad():
            ir = ov.convert_model(q, example_input=torch.zeros(1, 3, 448, 448), input=[(ov.PartialShape([-1, 3, -1, -1]), ov.Type.f32)])
        b = OV(ir)
        p = parity_report(ref, b, windows)
        rows[label] = {"mask_iou": p["mask_iou"], "cos": p["logit_cosine"], "ms_448": ms(b, (1, 3, 448, 448), 15),
                       "ms_1568x2048": ms(b, (1, 3, 1568, 2048), 3)}
        print(label, rows[label], flush=True)
json.dump(rows, open(sys.argv[2], "w"), indent=1)
