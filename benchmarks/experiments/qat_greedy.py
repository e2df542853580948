"""Which quantisers of a QAT model to leave in float so that its INT8 masks agree with its float
masks: a greedy search on the cfd/cracksc *validation* windows (issue 16, fourth pass).

    python qat_greedy.py QAT_MODEL_DIR OUT.json [--goal 0.975] [--probe 32]

1. Each activation quantiser still on is switched off alone; its gain in mask IoU (fake-quantised
   PyTorch model against the float model of the same weights) is measured on the first ``--probe``
   windows.
2. Quantisers are then switched off in order of that gain, one at a time, on all 64 windows, until the
   mask IoU reaches ``--goal``.  The trajectory (IoU after each step) and the chosen names go to OUT.json.
Weight quantisers are left alone: switching all 45 off moved the IoU by 0.002 (RESULTS.md, third pass).
"""
import argparse, json, time
import numpy as np, torch
from cracksam.config import load_yaml
from cracksam.training.config import TrainConfig
from cracksam.training.trainer import _load_samples
from cracksam.deployment.pipeline import load_network_tiles
from cracksam.models.io import load_model
from cracksam.models.quantizers import load_quantized, HOOK_PREFIX

torch.set_num_threads(2)


def crack_logit(model, x, bs=8):
    out = []
    with torch.no_grad():
        for i in range(0, len(x), bs):
            y = model(torch.from_numpy(x[i:i + bs]))
            out.append((y[:, 1] - y[:, 0]).numpy())
    return np.concatenate(out)


def iou(a, b):
    ma, mb = a >= 0, b >= 0  # softmax crack probability >= 0.5
    return float(np.count_nonzero(ma & mb) / max(1, np.count_nonzero(ma | mb)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model"); ap.add_argument("out")
    ap.add_argument("--goal", type=float, default=0.975); ap.add_argument("--probe", type=int, default=32)
    a = ap.parse_args()
    cfg = load_yaml(TrainConfig, "/work/main/configs/default_model.yaml")
    _, val = _load_samples(cfg)
    windows, _ = load_network_tiles([str(s.image) for s in val if s.dataset in ("cfd", "cracksc")], 448, 1.0, limit=64)
    ref = crack_logit(load_model(a.model).eval(), windows)
    q = load_quantized(a.model).eval()
    flags = {n[:-len(".enabled")]: b for n, b in q.named_buffers() if n.startswith(HOOK_PREFIX) and n.endswith(".enabled")}
    weight = lambda n: "pre_hooks" in n and "__1" in n
    already = {n for n, b in flags.items() if int(b) == 0}
    candidates = [n for n, b in flags.items() if int(b) == 1 and not weight(n)]
    print(len(flags), "quantisers,", len(already), "already float,", len(candidates), "activation candidates", flush=True)

    def score(off, n_win=None):
        for n, b in flags.items():
            b.fill_(0 if n in off or n in already else 1)
        w = windows if n_win is None else windows[:n_win]
        r = ref if n_win is None else ref[:n_win]
        return iou(r, crack_logit(q, w))

    t0 = time.time()
    base_probe = score(set(), a.probe)
    gains = {}
    for i, n in enumerate(candidates):
        gains[n] = score({n}, a.probe) - base_probe
        print(f"{i + 1}/{len(candidates)} {gains[n]:+.4f} {n} {time.time() - t0:.0f}s", flush=True)
    order = sorted(candidates, key=lambda n: -gains[n])
    start = score(set())
    path, off = [{"off": None, "iou": start}], set()
    print("all 64 windows, start", round(start, 4), flush=True)
    for n in order:
        if path[-1]["iou"] >= a.goal or gains[n] <= 0:
            break
        off.add(n)
        path.append({"off": n, "iou": score(off)})
        print(len(off), round(path[-1]["iou"], 4), n, flush=True)
    json.dump({"model": a.model, "already_float": sorted(already), "probe_windows": a.probe,
               "probe_base": base_probe, "gains": gains, "path": path, "float": sorted(off),
               "seconds": time.time() - t0}, open(a.out, "w"), indent=1)


if __name__ == "__main__":
    main()
