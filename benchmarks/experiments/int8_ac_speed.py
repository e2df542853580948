"""The bundled model's attached INT8 (accuracy control) against its float OpenVINO exports, one run,
interleaved: median latency at 448x448 and at 2048x1568 (one native window of a 4032x3024 photo),
2 threads, batch 1 (issue 26 point 5: INT8 >= 1.3x the best float runtime).
    python int8_ac_speed.py OUT.json"""
import json, statistics, subprocess, sys, time
import numpy as np
from cracksam.inference.backends import OpenVINOBackend
from cracksam.models.default import resolve_model_path

model = resolve_model_path("default")
subprocess.run(["cracksam", "export", "-m", "default", "--targets", "openvino-fp32,openvino-fp16",
                "--out", "/tmp/int8-ac-speed"], check=True)
files = {"openvino-fp32": "/tmp/int8-ac-speed/model_fp32.xml", "openvino-fp16": "/tmp/int8-ac-speed/model_fp16.xml",
         "openvino-int8 (attached, accuracy control)": str(model / "int8" / "model_int8.xml")}
backends = {name: OpenVINOBackend(path, threads=2) for name, path in files.items()}
rng = np.random.default_rng(0)
rows = {}
for shape, runs in (((448, 448), 20), ((1568, 2048), 5)):
    x = rng.uniform(0, 255, (1, 3, *shape)).astype(np.float32)
    times = {n: [] for n in backends}
    for b in backends.values():
        b.run(x)
    for _ in range(runs):
        for n, b in backends.items():
            t0 = time.perf_counter(); b.run(x); times[n].append(time.perf_counter() - t0)
    rows[f"{shape[1]}x{shape[0]}"] = {n: statistics.median(t) * 1000 for n, t in times.items()}
    print(shape, {n: round(v, 1) for n, v in rows[f"{shape[1]}x{shape[0]}"].items()}, flush=True)
json.dump({"ms_median": rows, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}, open(sys.argv[1], "w"),
          indent=1)
