"""Fine-tuning (``train --init-from``): the bundled model or any of ours as the start, with its
architecture and weights; a fine-tune that does no harm: the start model is scored on validation
before any step and kept as best/ until a trained model beats it, fine-tuning defaults for the
learning rate and warm-up where the user set none, and only the config sections the run uses.

The no-harm tests' "training" is a patched optimiser step that sets the weights to a known state, so whether
a step helps or hurts is certain, and each run takes seconds (a tiny network, 64 px images, no
DataLoader workers)."""

from __future__ import annotations

import csv
import json
import re

import cv2
import numpy as np
import pytest
import torch
import yaml

from cracksam.cli.main import main
from cracksam.data import load_split
from cracksam.data.synthetic import make_dataset
from cracksam.errors import ConfigError
from cracksam.models import load_model
from cracksam.models.default import default_model_path
from cracksam.models.io import save_trained
from cracksam.models.segmodels import _ARCHS, ArchSpec, SegModel, SegModelConfig, register_architecture
from tests._convnet import DarkConvNet

SIZE = 64
RATIOS = [0.5, 0.5, 0.0]  # 4 of 8 images validate: more batches than a default sanity check's 2


@pytest.fixture(scope="module")
def dark_arch():
    name = "test_finetune_dark"
    register_architecture(ArchSpec(name, lambda pretrained, size: DarkConvNet(), "test only", multiple=8))
    yield name
    _ARCHS.pop(name, None)  # the registry tests list every network


def _good(arch: str) -> list[torch.Tensor]:
    """DarkConvNet's weights: dark pixels are cracks, some IoU on the synthetic set."""
    return [p.detach().clone() for p in SegModel(SegModelConfig(arch=arch, image_size=SIZE)).parameters()]


def _blind(arch: str) -> list[torch.Tensor]:
    """Weights that call every pixel background (IoU 0): all zero but the last bias."""
    weights = [torch.zeros_like(p) for p in _good(arch)]
    weights[-1] = torch.tensor([4.0, -4.0])
    return weights


def _save(arch: str, weights: list[torch.Tensor], folder) -> object:
    model = SegModel(SegModelConfig(arch=arch, image_size=SIZE))
    with torch.no_grad():
        for p, w in zip(model.parameters(), weights, strict=True):
            p.copy_(w)
    return save_trained(model, folder)


def _steps_set_weights(monkeypatch, weights: list[torch.Tensor]) -> None:
    """Every optimiser step computes the loss (Lightning checks that its closure ran), then sets the
    trained weights to ``weights``."""

    def step(self, closure=None):
        if closure is not None:
            with torch.enable_grad():
                closure()
        with torch.no_grad():
            for p, w in zip(self.param_groups[0]["params"], weights, strict=True):
                p.copy_(w)

    monkeypatch.setattr(torch.optim.AdamW, "step", step)


def _run(tmp_path, start, data, *extra: str):
    """Two steps, each validated; the run folder."""
    out = tmp_path / "run"
    argv = ["train", "--init-from", str(start), "--data", str(data), "--set", f"data.ratios={RATIOS}",
            "--crop", "32", "--batch-size", "2", "--max-iters", "2", "--val-every-n-steps", "1",
            "--accelerator", "cpu", "--workers", "0", "--no-progress", "--out", str(out), *extra]
    assert main(argv) == 0
    return out


def _cli_summary(printed: str) -> dict:
    return json.loads(printed[printed.rindex('{\n  "run"'):])


def _logged(out, name: str) -> list[float]:
    with open(out / "logs" / "part0" / "metrics.csv") as fh:
        return [float(r[name]) for r in csv.DictReader(fh) if r.get(name)]


def _independent_iou(model_dir, data) -> float:
    """Pooled IoU of the crack class over the run's validation images, counted here in NumPy."""
    model = load_model(model_dir).eval()
    tp = fp = fn = 0
    for sample in load_split([str(data)], "val", RATIOS):
        rgb = cv2.cvtColor(cv2.imread(str(sample.image)), cv2.COLOR_BGR2RGB)
        truth = cv2.imread(str(sample.mask), cv2.IMREAD_GRAYSCALE) > 0
        with torch.no_grad():
            logits = model(torch.from_numpy(rgb).permute(2, 0, 1)[None].float())
        pred = (logits.softmax(dim=1)[0, 1] >= 0.5).numpy()
        tp += int(np.sum(pred & truth))
        fp += int(np.sum(pred & ~truth))
        fn += int(np.sum(~pred & truth))
    return tp / (tp + fp + fn)


def _same_weights(a, b) -> bool:
    x, y = load_model(a).state_dict(), load_model(b).state_dict()
    return x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


def test_a_fine_tune_whose_steps_only_hurt_keeps_the_start_model_as_best(dark_arch, tmp_path, monkeypatch, capsys):
    data = make_dataset(tmp_path / "own", n=8, size=(SIZE, SIZE))
    start = _save(dark_arch, _good(dark_arch), tmp_path / "start")
    _steps_set_weights(monkeypatch, _blind(dark_arch))
    out = _run(tmp_path, start, data)
    captured = capsys.readouterr()
    summary = _cli_summary(captured.out)

    # The start model was scored on the whole validation set before the first step ...
    expected = _independent_iou(start, data)
    assert expected > 0.05
    assert summary["start_val_iou"] == pytest.approx(expected, abs=1e-6)
    assert "start model (step 0, before any training step): validation iou" in captured.err
    assert _logged(out, "val/start_iou") == [pytest.approx(expected, abs=1e-6)]  # in the run's log too
    assert _logged(out, "val/iou") == [0.0, 0.0]  # every step made it worse
    # ... and is still best/: the same weights, and its record says so.
    assert summary["best_val_iou"] == pytest.approx(expected, abs=1e-6)
    meta = json.loads((out / "best" / "config.json").read_text())
    assert meta["step"] == 0 and meta["start_model"] is True
    assert _same_weights(out / "best", start)


def test_a_fine_tune_that_helps_replaces_the_start_model(dark_arch, tmp_path, monkeypatch, capsys):
    data = make_dataset(tmp_path / "own", n=8, size=(SIZE, SIZE))
    start = _save(dark_arch, _blind(dark_arch), tmp_path / "start")
    _steps_set_weights(monkeypatch, _good(dark_arch))
    out = _run(tmp_path, start, data)
    summary = _cli_summary(capsys.readouterr().out)
    assert summary["start_val_iou"] == 0.0
    assert summary["best_val_iou"] > 0.05
    meta = json.loads((out / "best" / "config.json").read_text())
    assert meta["step"] == 1 and "start_model" not in meta
    assert _same_weights(out / "best", _save(dark_arch, _good(dark_arch), tmp_path / "good"))


def test_the_run_config_holds_only_the_sections_the_run_uses(dark_arch, tmp_path, monkeypatch, capsys):
    data = make_dataset(tmp_path / "own", n=8, size=(SIZE, SIZE))
    start = _save(dark_arch, _good(dark_arch), tmp_path / "start")
    _steps_set_weights(monkeypatch, _good(dark_arch))
    out = _run(tmp_path, start, data, "--lr", "3e-4")
    assert "fine-tuning defaults: optim.warmup_iters 10" in capsys.readouterr().err
    saved = yaml.safe_load((out / "config.yaml").read_text())
    # A conventional network: no CrackSAM `model` section; no null optional sections.
    assert saved["network"]["arch"] == dark_arch
    assert {"model", "distill", "qat"}.isdisjoint(saved)
    assert saved["optim"]["lr"] == 3e-4 and saved["optim"]["warmup_iters"] == 10
    # The trimmed file reads back as the run's config, and --resume with the same command accepts it.
    assert main(["train", "--resume", "--init-from", str(start), "--data", str(data), "--image-size", "64",
                 "--set", f"data.ratios={RATIOS}", "--out", str(out), "--print-config"]) == 0


def test_cracksam_runs_keep_their_model_section(tmp_path):
    from cracksam.models import CrackSAMConfig
    from cracksam.models.deltas import DeltaConfig
    from cracksam.training.config import TrainConfig
    from cracksam.training.run_config import used_sections

    used = used_sections(TrainConfig(model=CrackSAMConfig("tiny", 64, DeltaConfig("lora"))))
    assert used["model"]["backbone"] == "tiny"
    assert {"network", "distill", "qat"}.isdisjoint(used)


def _printed_optim(capsys, *argv: str) -> dict:
    assert main(["train", *argv, "--print-config"]) == 0
    return yaml.safe_load(capsys.readouterr().out)["optim"]


def test_fine_tuning_defaults_apply_only_where_nothing_set_them(dark_arch, tmp_path, capsys):
    from cracksam.training.init_from import FINETUNE_DEFAULTS

    data = make_dataset(tmp_path / "d", n=4, size=(SIZE, SIZE))
    start = _save(dark_arch, _good(dark_arch), tmp_path / "start")
    lr, warmup = FINETUNE_DEFAULTS["optim.lr"], FINETUNE_DEFAULTS["optim.warmup_iters"]
    assert lr != 4e-4 and warmup < 300  # its own values, not the from-scratch defaults
    base = ["--init-from", str(start), "--data", str(data)]
    tuned = _printed_optim(capsys, *base)
    assert (tuned["lr"], tuned["warmup_iters"]) == (lr, warmup)
    assert _printed_optim(capsys, "--data", str(data))["lr"] == 4e-4  # from scratch: unchanged
    given = _printed_optim(capsys, *base, "--lr", "3e-4", "--set", "optim.warmup_iters=5")
    assert (given["lr"], given["warmup_iters"]) == (3e-4, 5)
    config = tmp_path / "my.yaml"
    config.write_text("optim:\n  lr: 0.002\n")
    from_file = _printed_optim(capsys, "-c", str(config), *base)
    assert (from_file["lr"], from_file["warmup_iters"]) == (0.002, warmup)
    # A section given whole is the user's: its keys keep what the mapping says or their defaults.
    whole = _printed_optim(capsys, *base, "--set", "optim={lr: 0.002}")
    assert (whole["lr"], whole["warmup_iters"]) == (0.002, 300)
    # The flags' help names the same values (written out there: the CLI module does not import training).
    from cracksam.cli.train import ALIASES

    assert float(re.search(r"; (\S+) with --init-from", ALIASES["lr"].option.help).group(1)) == lr
    assert int(re.search(r"; (\d+) with --init-from", ALIASES["warmup"].option.help).group(1)) == warmup


# --- train --init-from: the bundled model or any of ours as the start ---------------------------


def _params(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.named_parameters()}


def test_init_from_default_takes_the_bundled_architecture_and_weights():
    from cracksam.training.config import TrainConfig
    from cracksam.training.init_from import apply_init_from
    from cracksam.training.trainer import _build_model

    cfg = TrainConfig(init_from="default")
    apply_init_from(cfg)
    bundled = load_model(default_model_path())
    assert cfg.network is not None and cfg.network.arch == bundled.config.arch and not cfg.network.pretrained
    model = _build_model(cfg)
    mine, theirs = _params(model), _params(bundled)
    assert mine.keys() == theirs.keys()
    assert all(torch.equal(mine[k], theirs[k]) for k in theirs)


def test_init_from_refuses_a_different_arch_and_shape_flags(tmp_path, capsys):
    from cracksam.models.segmodels import SegModelConfig
    from cracksam.training.config import TrainConfig
    from cracksam.training.init_from import apply_init_from

    cfg = TrainConfig(init_from="default", network=SegModelConfig(arch="unet"))
    with pytest.raises(ConfigError, match="--arch"):
        apply_init_from(cfg)
    rc = main(["train", "--init-from", "default", "--delta", "lora", "--data", str(tmp_path), "--print-config"])
    assert rc == 2 and "--delta" in capsys.readouterr().err


def test_fine_tuning_the_bundled_model_starts_from_its_weights(tmp_path, capsys):
    data = make_dataset(tmp_path / "own", n=6, size=(64, 64))
    out = tmp_path / "ft"
    # A learning rate of 1e-12 leaves the weights where they started: the trained model must then
    # equal the bundled one (a random start would differ everywhere).
    argv = ["train", "--init-from", "default", "--data", str(data), "--crop", "32", "--max-iters", "1",
            "--batch-size", "2", "--lr", "1e-12", "--warmup", "0", "--workers", "0", "--out", str(out),
            "--no-progress"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    summary = json.loads(printed[printed.rindex('{\n  "run"'):])
    assert summary["best"] == str(out / "best")
    tuned, bundled = _params(load_model(out / "best")), _params(load_model(default_model_path()))
    assert max(float((tuned[k] - bundled[k]).abs().max()) for k in bundled) < 1e-6
    assert "init_from: default" in (out / "config.yaml").read_text()


def test_init_from_a_cracksam_delta_continues_its_delta_and_refuses_a_full_export(tmp_path):
    from cracksam.models import CrackSAMConfig, DeltaConfig, build_cracksam, export_full, save_delta
    from cracksam.training.config import TrainConfig
    from cracksam.training.init_from import apply_init_from
    from cracksam.training.trainer import _build_model

    net = build_cracksam(CrackSAMConfig("tiny", 64, DeltaConfig("lora")))
    with torch.no_grad():  # a delta that is not the zero-initialised one a fresh model has
        for p in net.parameters():
            if p.requires_grad:
                p.add_(0.01)
    delta = save_delta(net, tmp_path / "delta")
    cfg = TrainConfig(init_from=str(delta))
    apply_init_from(cfg)
    assert cfg.network is None and cfg.model.backbone == "tiny" and cfg.model.delta.kind == "lora"
    model = _build_model(cfg, allow_random_base=True)
    saved, mine = net.trainable_state_dict(), model.trainable_state_dict()
    assert saved.keys() == mine.keys() and all(torch.equal(saved[k], mine[k]) for k in saved)
    assert any(p.requires_grad for p in model.parameters())
    full = export_full(net, tmp_path / "full")
    with pytest.raises(ConfigError, match="full CrackSAM export"):
        apply_init_from(TrainConfig(init_from=str(full)))


def test_init_from_an_old_unchecksummed_folder_needs_trust(tmp_path, capsys):
    """A model folder written before checksums were required (format 1) is refused by --init-from
    unless --trust is given, as on every other command that loads a model."""
    import shutil
    import warnings

    from cracksam.training.config import TrainConfig
    from cracksam.training.init_from import apply_init_from, load_init_model

    old = tmp_path / "old"
    shutil.copytree(default_model_path(), old)
    meta = json.loads((old / "config.json").read_text())
    for key in ("config_sha256", "weights_sha256"):
        meta.pop(key, None)
    (old / "config.json").write_text(json.dumps(meta))
    data = make_dataset(tmp_path / "d", n=4, size=(64, 64))
    argv = ["train", "--init-from", str(old), "--data", str(data), "--print-config"]
    assert main(argv) == 2
    assert "--trust" in capsys.readouterr().err
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main([*argv, "--trust"]) == 0
        assert "init_trust: true" in capsys.readouterr().out
        cfg = TrainConfig(init_from=str(old), init_trust=True)
        apply_init_from(cfg)
        tuned, bundled = _params(load_init_model(cfg)), _params(load_model(default_model_path()))
    assert all(torch.equal(tuned[k], bundled[k]) for k in bundled)
