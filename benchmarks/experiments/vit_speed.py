"""ViT-B + LoRA at 448: ORT fp32 profile by op type; INT8 latency and cosine (new float policy vs all)."""
import sys, json, time, statistics, collections
from pathlib import Path
import numpy as np, onnxruntime as ort, cv2
src = Path("/tmp/cracksam-bench-runtimes/vit_b_lora/model.onnx")
work = Path("/work/exp/vit")
imgs = sorted(Path("/work/shared/datasets/cfd/images").glob("*"))[:4]
x = np.stack([cv2.resize(cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB), (448, 448)) for p in imgs]).astype(np.float32)
x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
def sess(path, profile=False):
    so = ort.SessionOptions(); so.intra_op_num_threads = 2; so.inter_op_num_threads = 1
    if profile:
        so.enable_profiling = True; so.profile_file_prefix = str(work / "prof")
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
def lat(s, n=5):
    name = s.get_inputs()[0].name
    s.run(None, {name: x[:1]})
    t = []
    for _ in range(n):
        t0 = time.perf_counter(); s.run(None, {name: x[:1]}); t.append(time.perf_counter() - t0)
    return statistics.median(t)
mode = sys.argv[1]
if mode == "profile":
    s = sess(Path(sys.argv[2]) if len(sys.argv) > 2 else src, True); name = s.get_inputs()[0].name
    for _ in range(3): s.run(None, {name: x[:1]})
    prof = s.end_profiling()
    ev = json.load(open(prof))
    by = collections.Counter(); total = 0
    for e in ev:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            by[e["args"]["op_name"]] += e["dur"]; total += e["dur"]
    for k, v in by.most_common(15):
        print(f"{k:24s} {v/3/1000:8.1f} ms/run {100*v/total:5.1f} %")
    print("total node time per run", total / 3 / 1000, "ms")
else:
    out = {}
    for label, path in [(p.split("=")[0], p.split("=")[1]) for p in sys.argv[2:]]:
        s = sess(path); out[label] = lat(s) * 1000; print(label, f"{out[label]:.0f} ms", flush=True); del s
    json.dump(out, open(work / "speed.json", "w"), indent=1)
