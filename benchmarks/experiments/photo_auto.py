"""The 4032x3024 cfd mosaic of ``bench_runtimes.py`` through the Predictor as ``predict`` opens it (bundled
model, native resolution, 2 threads): PyTorch eager, then ``--runtime auto`` (which runtime it picked and
why), median of 3 after one warm-up run (issue 26: photo <= 3 s).  Use a fresh $CRACKSAM_CACHE to include
the first-use export.
    python photo_auto.py OUT.json"""
import json, os, statistics, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from bench_runtimes import photo
from cracksam.deployment.runtime_cache import select_backend
from cracksam.inference.options import PredictOptions
from cracksam.inference.predictor import open_predictor

image = photo(3024, 4032)
rows = []
t_start = time.time()
for runtime in ("torch", "auto"):
    p = open_predictor(PredictOptions(threads=2, runtime=runtime, in_flight=1), choose_runtime=select_backend)
    p.predict_one(image)
    times = []
    for _ in range(3):
        t0 = time.perf_counter(); p.predict_one(image); times.append(time.perf_counter() - t0)
    rows.append({"runtime": p.runtime_info["runtime"], "precision": p.runtime_info.get("precision"),
                 "seconds": statistics.median(times), "runs": times, "info": p.runtime_info})
    print(rows[-1]["runtime"], rows[-1]["precision"], rows[-1]["seconds"], times, flush=True)
json.dump({"rows": rows, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(t_start))}, open(sys.argv[1], "w"),
          indent=1, default=str)
