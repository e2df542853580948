"""ms per Mpx of the bundled model's dynamic ONNX export at several input sizes (2 threads)."""
import sys, time, json, statistics
import numpy as np
from cracksam.deployment.runtime_cache import open_predictor
from cracksam.inference.options import PredictOptions
p = open_predictor(PredictOptions(threads=2, runtime="onnxruntime"))
b = p.backend
res = {}
for h, w, n in [(448, 448, 1), (448, 448, 4), (1024, 1024, 1), (1568, 2048, 1), (2048, 2048, 1), (3040, 4032, 1)]:
    x = np.random.default_rng(0).integers(0, 255, (n, 3, h, w)).astype(np.float32)
    b.run(x)
    t = []
    for _ in range(3):
        t0 = time.perf_counter(); b.run(x); t.append(time.perf_counter() - t0)
    ms_per_mpx = statistics.median(t) * 1000 / (n * h * w / 1e6)
    res[f"{n}x{h}x{w}"] = ms_per_mpx
    print(n, h, w, f"{ms_per_mpx:.0f} ms/Mpx", flush=True)
json.dump(res, open("/work/exp/window_rate.json", "w"), indent=1)
