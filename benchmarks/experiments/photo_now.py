"""The 4032×3024 cfd mosaic of ``bench_runtimes.py`` through the Predictor (bundled model, native
resolution), PyTorch eager and ``--runtime auto`` one after the other, median of 3 (issue 16, fourth
pass: the photo target re-measured on its own, without the 24-minute full run).
    python photo_now.py OUT.json"""
import json, os, statistics, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from bench_runtimes import photo
from cracksam.deployment.runtime_cache import open_predictor
from cracksam.inference.options import PredictOptions

image = photo(3024, 4032)
rows = []
t_start = time.time()
load_before = os.getloadavg()
for runtime in ("torch", "auto"):
    p = open_predictor(PredictOptions(threads=2, runtime=runtime, in_flight=1))
    p.predict_one(image)
    times = []
    for _ in range(3):
        t0 = time.perf_counter(); p.predict_one(image); times.append(time.perf_counter() - t0)
    rows.append({"runtime": p.runtime_info["runtime"], "seconds": statistics.median(times), "runs": times,
                 "info": p.runtime_info})
    print(rows[-1]["runtime"], rows[-1]["seconds"], times, flush=True)
json.dump({"rows": rows, "load_before": load_before, "load_after": os.getloadavg(),
           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(t_start))}, open(sys.argv[1], "w"), indent=1, default=str)
