"""The 4032x3024 photo through the Predictor (native windows) with the QAT INT8 IR and with the bundled
model's fp32 OpenVINO export, one after the other (2 threads).  Usage: python qat_photo.py INT8.xml FP.xml"""
import sys, time, statistics
sys.path.insert(0, "/work/main/benchmarks")
from bench_runtimes import photo
from cracksam.inference.backends import open_backend
from cracksam.inference.predictor import Predictor
image = photo(3024, 4032)
for xml in sys.argv[1:]:
    p = Predictor(open_backend(xml, threads=2))
    p.predict_one(image)
    t = []
    for _ in range(3):
        t0 = time.perf_counter(); p.predict_one(image); t.append(time.perf_counter() - t0)
    print(xml, f"{statistics.median(t):.2f} s", [round(x, 2) for x in t], p.inference_summary(), flush=True)
