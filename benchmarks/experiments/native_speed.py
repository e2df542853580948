"""4032x3024 photo, bundled model, ONNX Runtime dynamic export: window layouts and in-flight, one run.
Usage: python native_speed.py OUT.json   (PYTHONPATH decides which code runs)"""
import sys, json, time, statistics, os
sys.path.insert(0, "/work/main/benchmarks")
from bench_runtimes import photo
from cracksam.deployment.runtime_cache import open_predictor
from cracksam.inference.options import PredictOptions
import numpy as np
image = photo(3024, 4032)
configs = json.loads(sys.argv[2])
rows = []
for cfg in configs:
    p = open_predictor(PredictOptions(threads=2, runtime="onnxruntime", **cfg))
    p.predict_one(image)
    t = []
    for _ in range(3):
        t0 = time.perf_counter(); p.predict_one(image); t.append(time.perf_counter() - t0)
    rows.append({**cfg, "seconds": statistics.median(t), "all": t, "summary": p.inference_summary()})
    print(rows[-1], flush=True)
json.dump(rows, open(sys.argv[1], "w"), indent=1)
