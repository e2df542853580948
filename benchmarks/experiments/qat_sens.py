"""Which quantisers of a QAT model cost the most agreement with its float weights: the fake-quantised
PyTorch model with groups of quantisers switched off, mask IoU against the float model on the 448-px
native windows of the cfd/cracksc validation photos.  Usage: python qat_sens.py QAT_MODEL_DIR OUT.json"""
import json, sys
import numpy as np, torch
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
q = load_quantized(d)
hooks = {}
for name, buf in q.named_buffers():
    if name.startswith(HOOK_PREFIX) and name.endswith(".enabled"):
        hooks[name] = buf
names = list(hooks)
print(len(names), "quantisers", flush=True)
def run(off):
    for n in names:
        hooks[n].fill_(0 if n in off else 1)
    r = parity_report(ref, TorchBackend(q, threads=2), windows)
    return round(r["mask_iou"], 4), round(r["logit_cosine"], 5)
W = lambda n: "pre_hooks" in n and "__1." in n  # a weight quantiser
dec = lambda n: "decoder" in n or "segmentation_head" in n
groups = {
    "all on": [],
    "weights off": [n for n in names if W(n)],
    "activations off": [n for n in names if not W(n)],
    "encoder off": [n for n in names if not dec(n) and "/div/" not in n],
    "decoder + head off": [n for n in names if dec(n)],
    "input quantiser off": [n for n in names if "/div/" in n],
    "head off (its weight and input)": [n for n in names if "segmentation_head" in n or "conv2/2/relu_/4__" in n],
}
enc_act = [n for n in names if not W(n) and not dec(n) and "/div/" not in n]
for key in ("/se/", "se/gate", "se/mul", "hardswish", "relu", "batch_norm", "/add/", "act1", "conv_stem"):
    groups[f"encoder activations with {key} off"] = [n for n in enc_act if key in n]
groups["encoder activations except SE off"] = [n for n in enc_act if "/se/" not in n]
for i in range(5):
    groups[f"decoder block {i} off"] = [n for n in names if "decoder" in n and (f"/{i}__" in n)]
rows = {}
for k, off in groups.items():
    rows[k] = {"n_off": len(off), "iou_cos": run(set(off))}
    print(k, rows[k], flush=True)
rows["names"] = names
json.dump(rows, open(sys.argv[2], "w"), indent=1)
