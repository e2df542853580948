"""``cracksam info``: "@ 448" only for models that resize the photo to 448 (CrackSAM, resize-mode
networks), a native-resolution model at the photo's own size; parameter counts read from config.json
without torch, equal to the built model's and the checkpoint's."""

from __future__ import annotations

import json
import shutil

import pytest

from cracksam.cli.main import main
from cracksam.errors import CheckpointError

NATIVE = "runs at the photo's own size"


@pytest.mark.parametrize("argv", [["info"], ["info", "-m", "unet_efficientnet_lite0"]])
def test_info_says_a_native_model_runs_at_the_photos_size(argv, monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "200")  # one line per sentence
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert NATIVE in out and "trained on 448×448 crops" in out
    assert "@ 448" not in out
    # The parameter table, read from config.json ("info") or counted on the built network: the same
    # rows, total and trainable, in millions and exactly (3,787,298 for the bundled Lite0).
    rows = [line.split("│")[1:4] for line in out.splitlines() if line.startswith("│")]
    assert [[cell.strip() for cell in row] for row in rows] == [["total", "3.8", "3,787,298"],
                                                              ["trainable", "3.8", "3,787,298"]]


def test_info_keeps_at_448_for_cracksam_and_resize_models(monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["info", "--backbone", "tiny", "--delta", "lora"]) == 0
    assert "CrackSAM tiny @ 448" in capsys.readouterr().out
    from cracksam.cli.options import how_it_runs

    assert how_it_runs("resize", 448) == "@ 448"
    assert "384×384 windows" in how_it_runs("tile", 384)


def test_info_from_config_json_counts_as_the_built_model(monkeypatch, capsys):
    assert main(["info", "--json"]) == 0
    recorded = json.loads(capsys.readouterr().out)
    monkeypatch.setattr("cracksam.cli.light_models.light_segmodel_meta", lambda *a: None)  # build the network
    assert main(["info", "--json"]) == 0
    built = json.loads(capsys.readouterr().out)
    assert recorded["model"] == built["model"]
    assert recorded["total_parameters"] == built["total_parameters"] == built["trainable_parameters"]
    assert recorded["trainable_parameters"] == built["trainable_parameters"]


def test_info_without_torch_still_refuses_an_edited_config(tmp_path, capsys):
    from cracksam.cli.light_models import light_segmodel_meta
    from cracksam.models.default import default_model_path

    folder = shutil.copytree(default_model_path(), tmp_path / "m")
    meta = json.loads((folder / "config.json").read_text())
    meta["num_parameters"] += 1
    (folder / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="config_sha256"):
        light_segmodel_meta(str(folder), trust=False)
    assert main(["info", "--model", str(folder)]) == 2
    assert "config_sha256" in capsys.readouterr().err


def test_the_light_reader_knows_the_checkpoint_format():
    from cracksam.cli import light_models
    from cracksam.models import io

    assert light_models._KNOWN_FORMAT == io.FORMAT_VERSION


def test_checkpoint_and_info_count_parameters_alike(tmp_path, capsys):
    from cracksam.models import SegModelConfig, build_segmodel, save_trained

    net = build_segmodel(SegModelConfig("unet_mobilenetv3_small", image_size=64))
    ckpt = save_trained(net, tmp_path / "student")
    meta = json.loads((ckpt / "config.json").read_text())
    assert main(["info", "--model", str(ckpt), "--json"]) == 0
    counted = json.loads(capsys.readouterr().out)["total_parameters"]
    buffers = sum(b.numel() for b in net.buffers())
    assert buffers > 0  # batch-norm statistics: stored, but not parameters
    assert meta["num_parameters"] == counted == sum(p.numel() for p in net.parameters())
    assert meta["num_buffer_values"] == sum(t.numel() for t in net.state_dict().values()) - counted
