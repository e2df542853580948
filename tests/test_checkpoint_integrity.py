"""Our checkpoint folders: checksums of both files, bounds on every number, byte-stable weights."""

from __future__ import annotations

import json
import struct
import warnings
from pathlib import Path

import pytest
import torch

from cracksam.cli.main import app, main
from cracksam.errors import CheckpointError, CrackSAMWarning
from cracksam.models import load_model
from cracksam.models.default import DEFAULT_MODEL_DIR
from cracksam.models.integrity import config_digest, sha256_file
from cracksam.models.io import CONFIG_NAME, WEIGHTS_NAME, read_checkpoint_config, save_trained
from cracksam.models.segmodels import SegModelConfig, build_segmodel
from cracksam.service.served_model import model_id_for


def _model(seed: int = 0):
    torch.manual_seed(seed)
    return build_segmodel(SegModelConfig(arch="unet_mobilenetv3_small", image_size=64)).eval()


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    return save_trained(_model(), tmp_path_factory.mktemp("ckpt") / "m")


def _copy(src: Path, dst: Path) -> Path:
    dst.mkdir(parents=True)
    for name in (CONFIG_NAME, WEIGHTS_NAME):
        (dst / name).write_bytes((src / name).read_bytes())
    return dst


def _edit(folder: Path, rehash: bool = True, drop: tuple[str, ...] = (), **changes) -> None:
    """Change config.json; ``rehash`` recomputes config_sha256 so only the change itself is tested."""
    meta = json.loads((folder / CONFIG_NAME).read_text())
    for key in drop:
        meta.pop(key, None)
    for key, value in changes.items():
        target = meta
        *parents, last = key.split("__")
        for p in parents:
            target = target[p]
        target[last] = value
    if rehash and "config_sha256" in meta:
        meta["config_sha256"] = config_digest(meta)
    (folder / CONFIG_NAME).write_text(json.dumps(meta, indent=2))


def _flip_tensor_bytes(path: Path) -> None:
    data = bytearray(path.read_bytes())
    (length,) = struct.unpack("<Q", data[:8])
    for i in range(8 + length + 100, len(data), 997):  # inside the tensor data, not the header
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


# -- checksums ------------------------------------------------------------------------------------


def test_saved_config_carries_both_checksums_and_the_trained_size(saved):
    meta = json.loads((saved / CONFIG_NAME).read_text())
    assert meta["format_version"] == 2
    assert meta["weights_sha256"] == sha256_file(saved / WEIGHTS_NAME)
    assert meta["config_sha256"] == config_digest(meta)
    assert meta["trained_image_size"] == 64


def test_flipped_weights_without_checksum_are_refused_unless_trusted(saved, tmp_path):
    bad = _copy(saved, tmp_path / "bad")
    _flip_tensor_bytes(bad / WEIGHTS_NAME)
    _edit(bad, drop=("weights_sha256",))
    with pytest.raises(CheckpointError, match=r"no weights_sha256.*--trust"):
        load_model(bad)
    with pytest.warns(CrackSAMWarning, match="unverified"):
        assert load_model(bad, trust=True) is not None  # old files still open when the user vouches


def test_a_wrong_weights_checksum_is_refused_even_when_trusted(saved, tmp_path):
    bad = _copy(saved, tmp_path / "bad")
    _flip_tensor_bytes(bad / WEIGHTS_NAME)
    for trust in (False, True):
        with pytest.raises(CheckpointError, match="does not match the checksum"):
            load_model(bad, trust=trust)


def test_an_edited_config_is_refused(saved, tmp_path):
    bad = _copy(saved, tmp_path / "bad")
    _edit(bad, rehash=False, model__image_size=128)
    for trust in (False, True):
        with pytest.raises(CheckpointError, match="does not match its config_sha256"):
            read_checkpoint_config(bad, trust=trust)


def test_reformatting_the_config_keeps_its_checksum(saved, tmp_path):
    ok = _copy(saved, tmp_path / "ok")
    meta = json.loads((ok / CONFIG_NAME).read_text())
    (ok / CONFIG_NAME).write_text(json.dumps(dict(reversed(list(meta.items())))))  # other order, no indent
    assert read_checkpoint_config(ok)["model_config"].image_size == 64


def test_a_config_without_its_checksum_needs_trust(saved, tmp_path):
    old = _copy(saved, tmp_path / "old")
    _edit(old, drop=("config_sha256",))
    with pytest.raises(CheckpointError, match=r"no config_sha256.*--trust"):
        read_checkpoint_config(old)
    with pytest.warns(CrackSAMWarning):
        assert read_checkpoint_config(old, trust=True)["kind"] == "full"


# -- bounds ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("key, value, message", [
    ("model__image_size", 16384, r"model.image_size = 16384 is out of range \[16, 2048\]"),
    ("model__image_size", 64.5, "must be an integer"),
    ("trained_image_size", 4096, "trained_image_size = 4096 is out of range"),
    ("num_tensors", -1, "num_tensors = -1 is out of range"),
    ("val_iou", 3.0, "val_iou = 3.0 is out of range"),
    ("model__inference_scale", 1e9, "inference_scale"),
    ("format_version", "2", "format_version must be an integer"),
])
def test_numbers_out_of_bounds_are_refused_before_anything_is_built(saved, tmp_path, monkeypatch, key, value,
                                                                      message):
    bad = _copy(saved, tmp_path / "bad")
    _edit(bad, **{key: value})
    monkeypatch.setattr("cracksam.models.io.build_segmodel", lambda *_a: pytest.fail("built a model"))
    with pytest.raises(CheckpointError, match=message):
        load_model(bad)


def test_non_finite_numbers_are_refused(saved, tmp_path):
    bad = _copy(saved, tmp_path / "bad")
    text = (bad / CONFIG_NAME).read_text().replace('"trained_image_size": 64', '"trained_image_size": NaN')
    (bad / CONFIG_NAME).write_text(text)
    with pytest.raises(CheckpointError, match="NaN"):
        read_checkpoint_config(bad, trust=True)


def test_tensor_count_must_match_the_config(saved, tmp_path):
    bad = _copy(saved, tmp_path / "bad")
    _edit(bad, num_tensors=3)
    with pytest.raises(CheckpointError, match="holds .* tensors, config.json says 3"):
        load_model(bad)


def test_running_at_another_size_than_trained_warns(saved, tmp_path):
    other = _copy(saved, tmp_path / "other")
    _edit(other, trained_image_size=448)
    with pytest.warns(CrackSAMWarning, match="trained at 448 px but the model runs at 64 px"):
        model = load_model(other)
    assert model.trained_image_size == 448
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_model(saved)  # same size: silent


def test_export_of_a_loaded_model_keeps_the_trained_size(saved, tmp_path):
    other = _copy(saved, tmp_path / "other")
    _edit(other, trained_image_size=448)
    with pytest.warns(CrackSAMWarning):
        model = load_model(other)
    again = save_trained(model, tmp_path / "again")
    assert json.loads((again / CONFIG_NAME).read_text())["trained_image_size"] == 448


# -- deterministic bytes --------------------------------------------------------------------------


def test_identical_weights_give_identical_bytes_and_model_ids(tmp_path):
    # safetensors writes its metadata map in hash order, which varies from one save to the next.
    model = _model()
    folders = [save_trained(model, tmp_path / f"m{i}") for i in range(8)]
    weights = {(f / WEIGHTS_NAME).read_bytes() for f in folders}
    assert len(weights) == 1
    header_len = struct.unpack("<Q", next(iter(weights))[:8])[0]
    header = next(iter(weights))[8 : 8 + header_len].decode().rstrip()
    assert header == json.dumps(json.loads(header), sort_keys=True, separators=(",", ":"))
    ids = {model_id_for({"card": 1}, f) for f in folders}
    assert len({i.split("-", 1)[1] for i in ids}) == 1
    assert load_model(folders[0]) is not None  # the rewritten header still reads


# -- the bundled model and the command line ----------------------------------------------------------


def test_bundled_default_model_is_verified(monkeypatch):
    meta = read_checkpoint_config(DEFAULT_MODEL_DIR)
    assert meta["config_sha256"] == config_digest({k: v for k, v in meta.items() if k != "model_config"})
    assert meta["weights_sha256"] == sha256_file(Path(DEFAULT_MODEL_DIR) / WEIGHTS_NAME)
    assert meta["trained_image_size"] == meta["model_config"].image_size


def test_every_command_that_loads_a_model_has_the_trust_flag():
    import typer.main

    group = typer.main.get_command(app)
    for name in ("predict", "evaluate", "export", "bench", "stream", "serve", "info"):
        params = {p.name for p in group.commands[name].params}
        assert "trust" in params, name


def test_cli_refuses_an_old_folder_in_one_line_and_trust_opens_it(saved, tmp_path, capsys):
    old = _copy(saved, tmp_path / "old")
    _edit(old, drop=("config_sha256", "weights_sha256"))
    assert main(["info", "--model", str(old)]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "--trust" in err and "Traceback" not in err
    assert main(["info", "--model", str(old), "--trust", "--json"]) == 0
