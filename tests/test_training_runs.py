"""What a training run refuses and leaves: no silent random SAM encoder (train and distill without a
base), hints naming real files and flags; a run shorter than one epoch leaves a usable best/, and the
run folder and its last.ckpt are taken wherever a model is."""

from __future__ import annotations

import json
import re

import pytest
import torch

from cracksam.cli.main import main
from cracksam.data.synthetic import make_dataset
from cracksam.errors import CheckpointError
from cracksam.models import CrackSAMConfig, DeltaConfig, build_cracksam, load_model, save_delta


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("runs") / "syn", n=12, size=(80, 80))


@pytest.mark.parametrize("backbone", ["vit_b", "vit_h"])
def test_train_without_base_on_a_sam_backbone_is_refused(data, tmp_path, capsys, backbone):
    out = tmp_path / "run"
    assert main(["train", "--data", str(data), "--backbone", backbone, "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "--allow-random-base" in err and "--base" in err and "Traceback" not in err
    assert not out.exists()  # refused before anything is written


def test_distill_without_arch_is_refused(data, tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["distill", "--data", str(data), "--teacher", str(tmp_path / "teacher"), "--out", str(out)])
    assert rc == 2
    err = capsys.readouterr().err
    assert "--arch" in err and "--allow-random-base" in err
    assert not out.exists()


def test_the_opt_in_and_the_tiny_test_backbone_pass_the_check():
    from cracksam.errors import ConfigError
    from cracksam.training.config import TrainConfig
    from cracksam.training.trainer import check_random_base

    with pytest.raises(ConfigError, match="--allow-random-base"):
        check_random_base(TrainConfig())
    check_random_base(TrainConfig(), allow_random_base=True)
    check_random_base(TrainConfig(base_checkpoint="vit_b"))
    check_random_base(TrainConfig(model=CrackSAMConfig("tiny", image_size=64)))  # has no official weights


def test_base_hints_name_real_files_and_flags(tmp_path, monkeypatch):
    from cracksam.models.sam_checkpoint import download_official

    tiny = save_delta(build_cracksam(CrackSAMConfig("tiny", 64, DeltaConfig("lora"))), tmp_path / "tiny")
    with pytest.raises(CheckpointError, match="--allow-random-base") as info:
        load_model(tiny)
    assert "sam_tiny" not in str(info.value)

    def offline(*_args, **_kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr("torch.hub.download_url_to_file", offline)
    with pytest.raises(CheckpointError, match="network is unreachable") as info:
        download_official("vit_b", directory=tmp_path / "cache", progress=False)
    assert "--base" in str(info.value) and "--checkpoint" not in str(info.value)


def test_a_run_shorter_than_one_epoch_leaves_a_usable_best(data, tmp_path, capsys):
    out = tmp_path / "short"
    # About 8 training samples at batch 2: 4 steps per epoch, so 2 steps never reach the epoch's end.
    argv = ["train", "--data", str(data), "--backbone", "tiny", "--image-size", "64", "--delta", "lora",
            "--max-iters", "2", "--batch-size", "2", "--workers", "0", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    summary = json.loads(printed[printed.rindex('{\n  "run"'):])
    assert summary["steps"] == 2 and summary["best"] == str(out / "best")
    assert json.loads((out / "best" / "config.json").read_text())["step"] == 2
    # The run folder is accepted wherever a model is taken: it stands for its best/.
    image = next((data / "images").iterdir())
    rc = main(["predict", str(image), "-m", str(out), "--allow-random-base", "--out", str(tmp_path / "p"),
               "--no-progress"])
    assert rc == 0
    summary = json.loads((tmp_path / "p" / "summary.json").read_text())
    assert summary["model_path"] == str(out / "best") and re.fullmatch(r"best-[0-9a-f]{12}", summary["model_id"])
    assert summary["cracksam_version"]
    assert main(["info", "--model", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["model"]["backbone"] == "tiny"
    # The resumable checkpoint is taken too: its latest weights, as a model folder beside it.
    last = out / "checkpoints" / "last.ckpt"
    rc = main(["predict", str(image), "-m", str(last), "--allow-random-base", "--out", str(tmp_path / "q"),
               "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    summary = json.loads((tmp_path / "q" / "summary.json").read_text())
    assert summary["model_path"] == str(out / "checkpoints" / "last.model")
    meta = json.loads((out / "checkpoints" / "last.model" / "config.json").read_text())
    assert meta["step"] == 2 and meta["from_checkpoint"] == str(last)
    # Same final weights as best/ here (the last step is the only validation).
    best_w, last_w = (load_model(p, allow_random_base=True).trainable_state_dict() for p in (out / "best", last))
    assert all(torch.equal(best_w[k], last_w[k]) for k in best_w)
    # A damaged checkpoint given as a model is one error naming it.
    last.write_bytes(last.read_bytes()[:500])
    rc = main(["predict", str(image), "-m", str(last), "--out", str(tmp_path / "r")])
    assert rc == 2 and f"{last}: damaged checkpoint" in capsys.readouterr().err
