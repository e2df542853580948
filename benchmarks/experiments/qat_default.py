"""Quantisation-aware fine-tuning (NNCF, PyTorch) of the bundled model, for its INT8 parity (issue 16).

    python qat_default.py train OUT --steps N [--lr 1e-4]     # resumable: run again to continue
    python qat_default.py export OUT                           # OUT/int8_qdq.onnx (dynamic H/W) + OUT/fp32/

Starts from the bundled weights, inserts NNCF's INT8 fake quantisers (symmetric per-channel weights,
per-tensor activations, calibrated on 16 training batches of native-scale crops), then trains weights and
quantiser scales with the bundled model's own data pipeline and loss.  Saves the fine-tuned fp32 weights
as a cracksam model folder and the QDQ ONNX graph of the fake-quantised model.
"""
import argparse, json, sys, time, os
from pathlib import Path
import torch, nncf
from cracksam.config import load_yaml
from cracksam.training.config import TrainConfig
from cracksam.training.trainer import _load_samples
from cracksam.training.datamodule import CrackDataModule
from cracksam.training.losses import CrackLoss
from cracksam.models.io import load_model
from cracksam.models.default import default_model_path

torch.set_num_threads(2)
ROOT = Path("/work/main")


def data():
    cfg = load_yaml(TrainConfig, ROOT / "configs/default_model.yaml")
    train, val = _load_samples(cfg)
    return cfg, CrackDataModule(train, val, cfg)


def calibration(dm, n=16):
    it = iter(dm.train_dataloader())
    return [next(it)["image"] for _ in range(n)]


def wrap(model, calib, preset="performance"):
    preset = nncf.QuantizationPreset.MIXED if preset == "mixed" else nncf.QuantizationPreset.PERFORMANCE
    return nncf.quantize(model, nncf.Dataset(calib), subset_size=len(calib) * calib[0].shape[0],
                         preset=preset, fast_bias_correction=True)


def build(out):
    cfg, dm = data()
    model = load_model(default_model_path()).train()
    torch.manual_seed(0)
    q = wrap(model, calibration(dm))
    return cfg, dm, q


def train(out: Path, steps: int, lr: float):
    out.mkdir(parents=True, exist_ok=True)
    cfg, dm, q = build(out)
    q.train()
    opt = torch.optim.AdamW(q.parameters(), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, 1 - s / steps))
    step = 0
    ck = out / "last.pt"
    if ck.exists():
        state = torch.load(ck, weights_only=True)
        q.load_state_dict(state["model"]); opt.load_state_dict(state["opt"]); sched.load_state_dict(state["sched"])
        step = state["step"]
        print("resumed at", step, flush=True)
    loss_fn = CrackLoss(ce_weight=0.2, dice="crack")
    t0 = time.time(); log = open(out / "log.txt", "a")
    while step < steps:
        dm.config.seed = 1000 + step  # a fresh data order after a resume
        for batch in dm.train_dataloader():
            logits = q(batch["image"])
            loss, ce, dice = loss_fn(logits, batch["mask"])
            opt.zero_grad(); loss.backward(); opt.step(); sched.step(); step += 1
            if step % 10 == 0:
                line = f"step {step} loss {loss.item():.4f} ce {ce.item():.4f} dice {dice.item():.4f} {time.time()-t0:.0f}s"
                print(line, flush=True); log.write(line + "\n"); log.flush()
            if step % 50 == 0 or step == steps:
                tmp = out / "last.pt.tmp"
                torch.save({"model": q.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(), "step": step}, tmp)
                os.replace(tmp, ck)
            if step >= steps:
                break


def export(out: Path):
    """OUT/model: the fine-tuned float weights with their quantisers (cracksam's QAT folder format),
    OUT/int8.xml: its INT8 IR through the product's export (cracksam.deployment.export_qat)."""
    from cracksam.models.io import save_trained
    from cracksam.deployment.export_qat import export_openvino_qat
    cfg, dm, q = build(out)
    state = torch.load(out / "last.pt", weights_only=True)
    q.load_state_dict(state["model"]); q.eval()
    folder = save_trained(q, out / "model", extra={"qat_steps": state["step"]})
    export_openvino_qat(folder, out / "int8.xml", dynamic_shape=True)
    print("exported", folder, flush=True)


def agree(src: Path, out: Path, steps: int, lr: float, weight: float, float_stem: bool):
    """Continue QAT from model folder ``src`` with an agreement term: BCE of the fake-quantised
    crack logit against the float model's probability (same weights, quantisers off, no gradient),
    so training also shrinks what INT8 changes at the output.  ``float_stem``: the stem activation's
    quantiser (and the decoder input that shares it) stays off, i.e. float."""
    import torch.nn.functional as F
    from cracksam.models.quantizers import load_quantized, HOOK_PREFIX
    from cracksam.models.io import save_trained
    from cracksam.deployment.export_qat import export_openvino_qat
    out.mkdir(parents=True, exist_ok=True)
    cfg, dm = data()
    if src is None:  # a fresh start from the bundled weights, asymmetric activations (NNCF's "mixed")
        model = load_model(default_model_path()).train()
        torch.manual_seed(0)
        q = wrap(model, calibration(dm), preset="mixed").train()
    else:
        q = load_quantized(src).train()
    flags = {n: b for n, b in q.named_buffers() if n.startswith(HOOK_PREFIX) and n.endswith(".enabled")}
    keep_off = {n for n in flags if float_stem and "act1/" in n}
    def quantisers(on):
        for n, b in flags.items():
            b.fill_(1 if on and n not in keep_off else 0)
    quantisers(True)
    opt = torch.optim.AdamW(q.parameters(), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, 1 - s / steps))
    loss_fn = CrackLoss(ce_weight=0.2, dice="crack")
    step, t0, log = 0, time.time(), open(out / "log.txt", "a")
    while step < steps:
        dm.config.seed = 5000 + step
        for batch in dm.train_dataloader():
            x = batch["image"]
            quantisers(False)
            with torch.no_grad():
                f = q(x)
            quantisers(True)
            logits = q(x)
            task, ce, dice = loss_fn(logits, batch["mask"])
            target = torch.sigmoid(f[:, 1] - f[:, 0])
            agreement = F.binary_cross_entropy_with_logits(logits[:, 1] - logits[:, 0], target)
            loss = task + weight * agreement
            opt.zero_grad(); loss.backward(); opt.step(); sched.step(); step += 1
            if step % 10 == 0:
                line = f"step {step} task {task.item():.4f} agree {agreement.item():.4f} {time.time()-t0:.0f}s"
                print(line, flush=True); log.write(line + "\n"); log.flush()
            if step >= steps:
                break
    q.eval()
    quantisers(True)
    folder = save_trained(q, out / "model", extra={"qat_agreement_steps": steps})
    export_openvino_qat(folder, out / "int8.xml", dynamic_shape=True)
    print("saved", folder, flush=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd"); ap.add_argument("out", type=Path)
    ap.add_argument("--steps", type=int, default=500); ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--src", type=Path); ap.add_argument("--weight", type=float, default=1.0)
    ap.add_argument("--float-stem", action="store_true")
    a = ap.parse_args()
    if a.cmd == "agree":
        agree(a.src, a.out, a.steps, a.lr, a.weight, a.float_stem)
    else:
        train(a.out, a.steps, a.lr) if a.cmd == "train" else export(a.out)
