"""Groups of quantisers switched off together in a QAT model (fake-quantised PyTorch), mask IoU against
its float weights on the 64 cfd/cracksc validation windows.  Usage: python qat_groups.py QAT_MODEL_DIR"""
import sys, json, numpy as np, torch
sys.path.insert(0, "/work/main/benchmarks/experiments")
from qat_greedy import crack_logit, iou
from cracksam.config import load_yaml
from cracksam.training.config import TrainConfig
from cracksam.training.trainer import _load_samples
from cracksam.deployment.pipeline import load_network_tiles
from cracksam.models.io import load_model
from cracksam.models.quantizers import load_quantized, HOOK_PREFIX
torch.set_num_threads(2)
cfg = load_yaml(TrainConfig, "/work/main/configs/default_model.yaml")
_, val = _load_samples(cfg)
windows, _ = load_network_tiles([str(s.image) for s in val if s.dataset in ("cfd", "cracksc")], 448, 1.0, limit=64)
d = sys.argv[1]
ref = crack_logit(load_model(d).eval(), windows)
q = load_quantized(d).eval()
flags = {n: b for n, b in q.named_buffers() if n.startswith(HOOK_PREFIX) and n.endswith(".enabled")}
already = {n for n, b in flags.items() if int(b) == 0}
W = lambda n: "pre_hooks" in n and "__1." in n
sets = {
 "base": lambda n: False,
 "decoder interpolate all": lambda n: "decoder/interpolate" in n,
 "decoder interpolate 2": lambda n: "decoder/interpolate/2_" in n,
 "decoder interpolate 2,3,4": lambda n: any(f"decoder/interpolate/{i}_" in n for i in (2,3,4)),
 "decoder acts all": lambda n: "decoder" in n and not W(n),
 "decoder acts blocks 3,4 + interp": lambda n: "decoder" in n and not W(n) and (any(f"/{i}__" in n for i in (3,4)) or "interpolate" in n),
 "encoder acts": lambda n: "encoder" in n and not W(n),
 "all acts": lambda n: not W(n),
 "decoder concat inputs (pre_hooks cat)": lambda n: "decoder" in n and "cat" in n,
}
out = {}
for k, f in sets.items():
    for n, b in flags.items():
        b.fill_(0 if (n in already or f(n)) else 1)
    off = sum(int(b) == 0 for b in flags.values())
    out[k] = (off, round(iou(ref, crack_logit(q, windows)), 4))
    print(k, out[k], flush=True)
print([n for n in flags if "decoder" in n and not W(n)])
