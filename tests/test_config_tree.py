"""One config tree per command (``train``, ``distill``, ``evaluate``; the others in test_config_tree_*.py):
defaults < YAML (--config) < CRACKSAM_<COMMAND>__* variables < --set < flags, all through one validation
path; checked with --print-config, without training."""

from __future__ import annotations

from pathlib import Path

import pytest

from cracksam.cli.main import main

from ._config_cli import refused, resolved

_REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    import os

    for name in list(os.environ):
        if name.startswith(("CRACKSAM_TRAIN__", "CRACKSAM_DISTILL__", "CRACKSAM_EVALUATE__", "CRACKSAM_SERVE__")):
            monkeypatch.delenv(name)


def test_a_flag_overrides_the_yaml_and_the_yaml_the_defaults(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("optim:\n  lr: 0.01\nbatch_size: 3\n")
    got = resolved(capsys, "train", "-c", str(cfg), "--lr", "0.002")
    assert got["optim"]["lr"] == 0.002 and got["batch_size"] == 3
    assert got["optim"]["warmup_iters"] == 300  # untouched keys keep the dataclass default


def test_a_boolean_switched_off_in_yaml_is_turned_back_on(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data:\n  augment: false\nprogress: false\n")
    assert resolved(capsys, "train", "-c", str(cfg))["data"]["augment"] is False
    assert resolved(capsys, "train", "-c", str(cfg), "--augment")["data"]["augment"] is True
    assert resolved(capsys, "train", "-c", str(cfg), "--set", "data.augment=true")["data"]["augment"] is True
    assert resolved(capsys, "train", "--no-augment")["data"]["augment"] is False
    assert resolved(capsys, "train", "-c", str(cfg), "--progress")["progress"] is True


def test_an_env_var_sets_a_nested_key_and_set_then_a_flag_win(monkeypatch, capsys):
    monkeypatch.setenv("CRACKSAM_TRAIN__MODEL__DELTA__LORA__RANK", "8")
    monkeypatch.setenv("CRACKSAM_TRAIN__OPTIM__LR", "1e-3")  # YAML reads 1e-3 as text; a float field takes it
    got = resolved(capsys, "train")
    assert got["model"]["delta"]["lora"]["rank"] == 8 and got["optim"]["lr"] == 0.001
    assert resolved(capsys, "train", "--set", "model.delta.lora.rank=2")["model"]["delta"]["lora"]["rank"] == 2
    got = resolved(capsys, "train", "--set", "model.delta.lora.rank=2", "--rank", "3")
    assert got["model"]["delta"]["lora"]["rank"] == 3
    # Another command's variables are not this one's.
    monkeypatch.setenv("CRACKSAM_DISTILL__BATCH_SIZE", "5")
    assert resolved(capsys, "train")["batch_size"] == 8


def test_set_takes_lists_and_creates_an_optional_section(capsys):
    got = resolved(capsys, "train", "--set", "model.delta.lora.targets=[q, k, v]", "--targets", "q,k")
    assert got["model"]["delta"]["lora"]["targets"] == ["q", "k"]  # the flag, comma-split, wins
    assert resolved(capsys, "train")["network"] is None
    got = resolved(capsys, "train", "--set", "network.arch=unet_mobilenetv3_small", "--image-size", "64")
    assert got["network"]["arch"] == "unet_mobilenetv3_small"
    assert got["network"]["image_size"] == 64 and got["model"]["image_size"] == 64  # --image-size: both
    got = resolved(capsys, "distill", "--set", "distill.teacher=runs/t/best", "--kd-weight", "2")
    assert got["distill"]["teacher"] == "runs/t/best" and got["distill"]["weight"] == 2.0
    assert got["distill"]["temperature"] == 3.0


@pytest.mark.parametrize("where", ["yaml", "set", "env"])
def test_an_unknown_key_is_named_by_its_dotted_path(where, tmp_path, monkeypatch, capsys):
    argv = ["train"]
    if where == "yaml":
        cfg = tmp_path / "c.yaml"
        cfg.write_text("model:\n  delta:\n    lora:\n      rnk: 3\n")
        argv += ["-c", str(cfg)]
    elif where == "set":
        argv += ["--set", "model.delta.lora.rnk=3"]
    else:
        monkeypatch.setenv("CRACKSAM_TRAIN__MODEL__DELTA__LORA__RNK", "3")
    err = refused(capsys, *argv)
    assert "unknown key model.delta.lora.rnk" in err and "model.delta.lora.rank" in err, err
    assert {"yaml": "c.yaml", "set": "--set", "env": "CRACKSAM_TRAIN__MODEL__DELTA__LORA__RNK"}[where] in err


def test_a_wrong_type_names_the_key_and_where_it_came_from(tmp_path, monkeypatch, capsys):
    err = refused(capsys, "train", "--set", "optim.lr=fast")
    assert "optim.lr (--set optim.lr): expected a number" in err
    err = refused(capsys, "train", "--delta", "prefix")
    assert "model.delta.kind (--delta)" in err and "'lora'" in err
    cfg = tmp_path / "c.yaml"
    cfg.write_text("batch_size: many\n")
    assert "batch_size (c.yaml): expected an integer" in refused(capsys, "train", "-c", str(cfg))
    assert "KEY=VALUE" in refused(capsys, "train", "--set", "optim.lr")


def test_resume_refuses_an_option_that_would_change_the_run(tmp_path, capsys):
    from cracksam.config import save_yaml
    from cracksam.training.config import TrainConfig

    out = tmp_path / "run"
    save_yaml(TrainConfig(out_dir=str(out), batch_size=4), out / "config.yaml")
    err = refused(capsys, "train", "--resume", "--out", str(out), "--lr", "0.1", "--set", "epochs=3")
    assert "--lr" in err and "--set epochs" in err and "--resume" in err
    assert len([ln for ln in err.splitlines() if ln.strip()]) == 1
    # The command line the run was started with, and --out / --progress, are fine.
    got = resolved(capsys, "train", "--resume", "--out", str(out), "--batch-size", "4", "--lr", "4e-4",
                    "--no-progress")
    assert got["progress"] is False


def test_distill_needs_a_teacher_and_init_from_refuses_shape_options(capsys):
    assert "distill needs a teacher" in refused(capsys, "distill", "--arch", "unet_mobilenetv3_small")
    err = refused(capsys, "train", "--init-from", "default", "--rank", "2", "--set", "model.backbone=tiny")
    assert "--rank, --set model.backbone cannot be combined with --init-from" in err


def test_help_config_lists_every_key_with_type_default_and_flag(capsys):
    assert main(["train", "--help-config"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert "int" in rows["model.delta.lora.rank"] and "--rank" in rows["model.delta.lora.rank"]
    assert "network.arch" in rows and "distill.temperature" in rows and "loss.cldice" in rows
    assert "0.0004" in rows["optim.lr"]


def test_evaluate_options_reach_the_protocol_config(tmp_path, monkeypatch, capsys):
    cfg = tmp_path / "e.yaml"
    cfg.write_text("test: [data/a]\nconditions: [clean]\nbatch_size: 2\n")
    monkeypatch.setenv("CRACKSAM_EVALUATE__METRIC", "f1")
    monkeypatch.setenv("CRACKSAM_EVALUATE__BATCH_SIZE", "3")
    got = resolved(capsys, "evaluate", "-c", str(cfg), "--threshold", "0.3", "--set", "visualize=2",
                    "--blur-sweep", "1,5", "--no-progress")
    assert got["test"] == ["data/a"] and got["conditions"] == ["clean"] and got["batch_size"] == 3
    assert got["metric"] == "f1" and got["threshold"] == 0.3 and got["visualize"] == 2
    assert got["blur_kernels"] == [1, 5] and got["progress"] is False and got["device"] == "cpu"
    assert "--metric must be" in refused(capsys, "evaluate", "--test", "x", "--metric", "dice")
    assert "unknown key metrik" in refused(capsys, "evaluate", "--test", "x", "--set", "metrik=f1")
    assert "--mm-per-px only applies with --measure" in refused(capsys, "evaluate", "--test", "x", "--mm-per-px", "1")


@pytest.mark.parametrize("path", sorted(str(p.relative_to(_REPO)) for p in
                                        [*_REPO.glob("configs/*.yaml"), *_REPO.glob("configs/experiments/*.yaml")]))
def test_every_committed_training_config_loads(path):
    """The bundled model's recipe and each experiment's config still parse against the training config
    (a renamed or removed option would otherwise surface only when someone reruns the experiment)."""
    from cracksam.config import load_yaml
    from cracksam.training.config import TrainConfig

    config = load_yaml(TrainConfig, _REPO / path)
    assert config.max_iters and config.out_dir
