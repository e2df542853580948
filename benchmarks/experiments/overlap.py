"""Native windows vs one whole-image pass of the bundled model: how much overlap do windows need?"""
import sys, json
sys.path.insert(0, "/work/main/benchmarks")
import numpy as np, torch
torch.set_num_threads(1)
from bench_runtimes import photo
from cracksam.inference.predictor import Predictor
img = photo(1536, 2048)
whole = Predictor.from_path(None, mode="native", window=2048).logits([img])[0]
mw = whole[1] > whole[0]
res = {}
for ov in [0, 16, 32, 64, 128, 256]:
    p = Predictor.from_path(None, mode="native", window=1024, window_overlap=ov)
    lg = p.logits([img])[0]
    m = lg[1] > lg[0]
    res[ov] = {"mask_iou_vs_whole": float((m & mw).sum() / max(1, (m | mw).sum())), "max_abs_logit_diff": float(np.abs(lg - whole).max()),
               "p99_abs_diff": float(np.percentile(np.abs(lg - whole), 99.9)), "crack_px_whole": int(mw.sum())}
    print(ov, res[ov], flush=True)
json.dump(res, open("/work/exp/overlap.json", "w"), indent=1)
