"""Conventions every command shares: option names (the models' own, runtime names = export target
names), device default, --json, -o, --workers, readable help with defaults."""

from __future__ import annotations

import re
import warnings

import pytest

from cracksam.cli.main import cli_command, main

COMMANDS = ["info", "train", "distill", "evaluate", "predict", "export", "bench", "measure", "report", "serve",
            "stream"]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_shows_readable_metavars(command, capsys):
    assert main([command, "--help"]) == 0
    text = capsys.readouterr().out
    python_types = re.findall(r"<(?:bool|str|int|float|path|list\[[^\]]*\])>", text)
    assert not python_types, python_types


def test_every_option_has_help_and_every_output_command_has_dash_o():
    group = cli_command()
    missing = [f"{name} {p.opts[0]}" for name, cmd in group.commands.items() for p in cmd.params
               if p.param_type_name == "option" and not p.hidden and not (p.help or "").strip()]
    assert not missing, missing
    for name in ("train", "distill", "evaluate", "predict", "export", "bench", "measure", "report", "stream"):
        opts = {o for p in group.commands[name].params for o in p.opts}
        assert "-o" in opts, name


def test_train_help_defaults_match_the_config():
    from cracksam.training.config import TrainConfig

    cfg = TrainConfig()
    helps = {p.opts[0]: p.help for p in cli_command().commands["train"].params if p.param_type_name == "option"}
    lr = f"{cfg.optim.lr:.0e}".replace("e-0", "e-")  # 4e-4
    expected = {"--epochs": cfg.epochs, "--batch-size": cfg.batch_size, "--lr": lr,
                "--warmup": cfg.optim.warmup_iters, "--checkpoint-every": cfg.checkpoint_every,
                "--workers": cfg.data.num_workers, "--rank": cfg.model.delta.lora.rank,
                "--image-size": cfg.model.image_size, "--out": cfg.out_dir}
    for option, value in expected.items():
        assert f"default {value}" in helps[option], (option, helps[option])


def test_device_defaults_to_cpu_in_every_inference_command():
    from dataclasses import fields

    from cracksam.evaluation.protocol import ProtocolConfig
    from cracksam.inference.options import PredictOptions

    group = cli_command()
    from cracksam.service.settings import ServiceSettings

    # The flags are aliases of the commands' configs (unset by default): the default is the config's.
    for name, cls in (("evaluate", ProtocolConfig), ("serve", ServiceSettings), ("predict", PredictOptions),
                      ("stream", PredictOptions)):
        assert next(p for p in group.commands[name].params if p.name == "device").default is None
        assert next(f.default for f in fields(cls) if f.name == "device") == "cpu"


def test_serve_concurrency_and_its_deprecated_alias(monkeypatch):
    from cracksam.cli.serve import _concurrency
    from cracksam.errors import ConfigError, CrackSAMWarning
    from cracksam.service.settings import ServiceSettings

    assert _concurrency(3, None) == 3
    with pytest.warns(CrackSAMWarning, match="--concurrency"):
        assert _concurrency(None, 2) == 2
    with pytest.raises(ConfigError, match="disagree"):
        _concurrency(1, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _concurrency(None, None) is None
    assert ServiceSettings.from_env({"CRACKSAM_CONCURRENCY": "1"}).workers == 1
    assert ServiceSettings.from_env({"CRACKSAM_WORKERS": "1"}).workers == 1  # the old variable still works
    opts = {o for p in cli_command().commands["serve"].params for o in p.opts}
    assert {"--concurrency", "--workers"} <= opts


def test_runtime_names_are_export_target_names():
    from cracksam.inference.backends import TARGETS, TorchBackend, target_name
    from cracksam.inference.predictor import Predictor

    from ._models import DarknessModel

    for name, (runtime, precision) in TARGETS.items():
        # variants of one runtime and precision (onnx-fused, onnx-int8-static) share the plain name
        assert TARGETS[target_name(runtime, precision)] == (runtime, precision), name
    assert target_name("onnxruntime", "fp32") == "onnx" and target_name("onnxruntime", "int8") == "onnx-int8"
    assert target_name("torch", "fp32") == "torch"
    assert target_name("torch", "fp16") == "torch-fp16"
    # The model card (summary.json, /v1/model) names the backend the same way.
    assert Predictor(TorchBackend(DarknessModel(64))).describe()["backend"] == "torch"


def test_bench_json_prints_to_stdout_and_o_writes_a_file(tiny_full_ckpt, tmp_path, capsys):
    import json

    report = tmp_path / "b.json"
    argv = ["bench", "-m", str(tiny_full_ckpt), "--backends", "torch", "--iterations", "1", "--warmup", "0",
            "--threads", "1"]
    assert main([*argv, "--json", "-o", str(report)]) == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert doc == json.loads(report.read_text()) and doc["results"][0]["backend"] == "torch"
    assert "threads 1" in captured.err  # the table moved to stderr
    assert not captured.err.rstrip().endswith(",")


@pytest.fixture
def tiny_full_ckpt(tmp_path):
    from cracksam.models import CrackSAMConfig, DeltaConfig, build_cracksam, export_full

    return export_full(build_cracksam(CrackSAMConfig("tiny", 64, DeltaConfig("lora"))), tmp_path / "full")


def test_distill_help_is_its_own(capsys):
    assert main(["distill", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "distillation" in text and "Fine-tune CrackSAM" not in text


def test_cli_option_names_are_the_models_names():
    # cli.options copies these names so that it need not import torch; they must not drift.
    from cracksam.cli.options import BACKBONE_NAMES, DELTA_NAMES
    from cracksam.models.backbones import BACKBONES
    from cracksam.models.deltas import DELTA_KINDS

    assert BACKBONE_NAMES == tuple(BACKBONES) and DELTA_NAMES == DELTA_KINDS
