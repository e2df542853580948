"""Official SAM checkpoint loading and CrackSAM's own checkpoint format."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from segment_anything import build_sam_vit_b

from cracksam.cli.main import main
from cracksam.errors import CheckpointError
from cracksam.models import backbones as backbones_mod
from cracksam.models import (
    build_cracksam,
    export_full,
    load_model,
    load_sam_checkpoint,
    save_delta,
)
from cracksam.models.io import WEIGHTS_NAME, apply_delta_checkpoint
from cracksam.models.sam_checkpoint import _resize_pos_embed, _resize_rel_pos, download_official, read_state_dict


def _linear_reference(table: np.ndarray, length: int) -> np.ndarray:
    """(L, D) -> (length, D) linear interpolation with half-pixel centres (``align_corners=False``),
    written with ``np.interp`` (which holds the end values outside the table, as PyTorch clamps)."""
    n = table.shape[0]
    at = (np.arange(length) + 0.5) * n / length - 0.5
    return np.stack([np.interp(at, np.arange(n), table[:, d]) for d in range(table.shape[1])], axis=1)


def _base_state_dict(model) -> dict[str, torch.Tensor]:
    """The base weights of a CrackSAM model in the official key layout (no delta keys)."""
    return {k: v for k, v in model.state_dict().items() if ".adapter." not in k and ".lora_" not in k}


def _perturb_trainable(model, seed=1):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn(p.shape, generator=g) * 0.1)


@pytest.fixture
def tiny_base(tmp_path, tiny_config):
    """A tiny CrackSAM, and its base saved as an official-layout .pth file."""
    model = build_cracksam(tiny_config("adapter+lora")).eval()
    path = tmp_path / "sam_tiny.pth"
    torch.save(_base_state_dict(model), path)
    return model, path


# -- our own checkpoints ------------------------------------------------------------------------


def test_delta_checkpoint_round_trips(tmp_path, tiny_base, images64):
    model, base_path = tiny_base
    _perturb_trainable(model)
    out = save_delta(model, tmp_path / "ckpt", base=str(base_path))
    files = sorted(p.name for p in out.iterdir())
    assert files == ["config.json", WEIGHTS_NAME]
    meta = json.loads((out / "config.json").read_text())
    assert meta["kind"] == "delta" and meta["model"]["backbone"] == "tiny"
    assert meta["model"]["delta"]["kind"] == "adapter+lora" and meta["model"]["pixel_norm"] == "sam"
    assert meta["model"]["class_names"] == ["background", "crack"]
    # Only the trainable part is saved, keyed by name.
    from safetensors.torch import load_file

    saved = load_file(out / WEIGHTS_NAME)
    assert set(saved) == set(model.trainable_state_dict())
    assert not any(k.startswith("image_encoder.blocks.0.attn.qkv.weight") for k in saved)

    restored = load_model(out)  # uses the recorded base
    with torch.no_grad():
        torch.testing.assert_close(restored(images64), model(images64), atol=0, rtol=0)
    # Passing the .safetensors file instead of its folder works too.
    again = load_model(out / WEIGHTS_NAME, base_checkpoint=base_path)
    with torch.no_grad():
        torch.testing.assert_close(again(images64), model(images64), atol=0, rtol=0)


def test_full_export_round_trips_with_lora_merged(tmp_path, tiny_base, images64):
    model, _ = tiny_base
    _perturb_trainable(model)
    out = export_full(model, tmp_path / "full")
    meta = json.loads((out / "config.json").read_text())
    assert meta["kind"] == "full" and meta["lora_merged"] is True
    restored = load_model(out)
    assert not any(".lora_" in k for k in restored.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(restored(images64), model(images64), atol=1e-5, rtol=1e-5)
    # The source model is left unmerged.
    assert any(".lora_" in k for k in model.state_dict())


def test_delta_checkpoint_checks_config_against_model(tmp_path, tiny_base, tiny_config):
    model, _ = tiny_base
    out = save_delta(model, tmp_path / "ckpt")
    other = build_cracksam(tiny_config("lora"))
    with pytest.raises(CheckpointError, match="does not fit this model.*delta"):
        apply_delta_checkpoint(other, out)
    bigger = build_cracksam(tiny_config("adapter+lora", image_size=96))
    with pytest.raises(CheckpointError, match="image_size"):
        apply_delta_checkpoint(bigger, out)


def test_delta_checkpoint_needs_a_base(tmp_path, tiny_base):
    model, _ = tiny_base
    out = save_delta(model, tmp_path / "ckpt")  # no base recorded
    with pytest.raises(CheckpointError, match="needs its SAM base"):
        load_model(out)
    assert load_model(out, allow_random_base=True) is not None


def test_base_of_wrong_backbone_is_refused(tmp_path, tiny_base, tiny_config):
    model, base_path = tiny_base
    out = save_delta(model, tmp_path / "ckpt", base=str(base_path))
    sd = torch.load(base_path, weights_only=True)
    sd["image_encoder.patch_embed.proj.weight"] = torch.zeros(48, 3, 16, 16)
    wrong = tmp_path / "wrong.pth"
    torch.save(sd, wrong)
    with pytest.raises(CheckpointError, match=r"wrong\.pth.*embed 48.*backbone is tiny"):
        load_model(out, base_checkpoint=wrong)


def test_corrupt_delta_files_are_reported(tmp_path, tiny_base):
    model, _ = tiny_base
    out = save_delta(model, tmp_path / "ckpt")
    weights = out / WEIGHTS_NAME
    weights.write_bytes(weights.read_bytes()[:-10])
    with pytest.raises(CheckpointError, match="checksum"):
        load_model(out, allow_random_base=True)
    (out / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="unreadable checkpoint config"):
        load_model(out, allow_random_base=True)
    with pytest.raises(CheckpointError, match="not a CrackSAM checkpoint folder"):
        load_model(tmp_path, allow_random_base=True)
    with pytest.raises(CheckpointError, match="not found"):
        load_model(tmp_path / "nowhere")


def test_save_is_atomic_on_failure(tmp_path, tiny_base, monkeypatch):
    model, _ = tiny_base
    out = save_delta(model, tmp_path / "ckpt")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    _perturb_trainable(model)

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("cracksam.models.layout.save_file", boom)
    with pytest.raises(OSError):
        save_delta(model, out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # old checkpoint intact, no temp files


# -- official SAM checkpoints -------------------------------------------------------------------


@pytest.fixture(scope="module")
def vit_b_checkpoint(tmp_path_factory):
    """An official-layout ViT-B file (1024 px, 4 mask tokens) with random weights."""
    torch.manual_seed(0)
    sam = build_sam_vit_b()
    # rel-pos tables and pos-embed are zero-initialised in SAM; give them values so resizing shows.
    with torch.no_grad():
        sam.image_encoder.pos_embed.normal_()
        for blk in sam.image_encoder.blocks:
            blk.attn.rel_pos_h.normal_()
            blk.attn.rel_pos_w.normal_()
    path = tmp_path_factory.mktemp("sam") / "sam_vit_b_test.pth"
    torch.save(sam.state_dict(), path)
    return path, sam.state_dict()


def test_official_vit_b_loads_at_448_with_embeddings_resized(vit_b_checkpoint):
    path, official = vit_b_checkpoint
    model = build_cracksam(__import__("cracksam.models", fromlist=["CrackSAMConfig"]).CrackSAMConfig("vit_b"))
    report = load_sam_checkpoint(model, path)
    assert report.missing == []
    sd = model.state_dict()
    pos = sd["image_encoder.pos_embed"]
    assert pos.shape == (1, 28, 28, 768)
    reference = F.interpolate(official["image_encoder.pos_embed"].permute(0, 3, 1, 2), size=(28, 28),
                              mode="bilinear", align_corners=False).permute(0, 2, 3, 1)
    torch.testing.assert_close(pos, reference)
    for i in (2, 5, 8, 11):  # global blocks: 2*64-1 -> 2*28-1, values interpolated linearly
        for axis in ("h", "w"):
            key = f"image_encoder.blocks.{i}.attn.rel_pos_{axis}"
            assert sd[key].shape == (55, 64) and key in report.resized
            np.testing.assert_allclose(sd[key].numpy(), _linear_reference(official[key].numpy(), 55), atol=1e-4)
    for i in (0, 1, 3):  # window blocks keep 2*14-1 and their values
        key = f"image_encoder.blocks.{i}.attn.rel_pos_w"
        torch.testing.assert_close(sd[key], official[key])
    torch.testing.assert_close(sd["mask_decoder.mask_tokens.weight"], official["mask_decoder.mask_tokens.weight"][:2])
    assert "mask_decoder.output_hypernetworks_mlps.3.layers.0.weight" in report.unexpected
    torch.testing.assert_close(sd["image_encoder.blocks.4.attn.qkv.weight"],
                               official["image_encoder.blocks.4.attn.qkv.weight"])
    with torch.no_grad():
        out = model(torch.rand(1, 3, 448, 448) * 255)
    assert out.shape == (1, 2, 448, 448) and torch.isfinite(out).all()


def test_rel_pos_and_pos_embed_resizing_interpolate_the_values():
    """Table *values* against an independent NumPy interpolation, not just shapes.  Mutants
    killed: ``_resize_rel_pos`` with ``mode="nearest"`` (or ``align_corners=True``), and
    ``_resize_pos_embed`` with ``nearest`` or height and width swapped."""
    # Tolerance 1e-4: the resizing runs in float32; a nearest or misaligned sample is off by ~1.
    g = torch.Generator().manual_seed(0)
    table = torch.randn(127, 6, generator=g, dtype=torch.float64)
    for length in (55, 27, 127, 201):  # shrink (448 and 224 px from 1024), same length, grow
        got = _resize_rel_pos(table, length)
        assert got.shape == (length, 6) and got.dtype == torch.float64
        np.testing.assert_allclose(got.numpy(), _linear_reference(table.numpy(), length), atol=1e-4)
    half = _resize_rel_pos(table.half(), 55)
    assert half.dtype == torch.float16  # the checkpoint's dtype is kept
    # A linear ramp stays a ramp with the same ends' slope (nearest would give steps).
    ramp = torch.arange(127, dtype=torch.float32)[:, None].repeat(1, 2)
    np.testing.assert_allclose(np.diff(_resize_rel_pos(ramp, 55)[:, 0].numpy()), 127 / 55, rtol=1e-5)
    # pos_embed: bilinear = linear along rows, then along columns (separable), on a non-square grid.
    pos = torch.randn(1, 8, 12, 3, generator=g, dtype=torch.float64)
    got = _resize_pos_embed(pos, 5)
    assert got.shape == (1, 5, 5, 3) and got.dtype == torch.float64
    for c in range(3):
        rows = _linear_reference(pos[0, :, :, c].numpy(), 5)  # (5, 12): along h
        want = _linear_reference(rows.T, 5).T  # (5, 5): along w
        np.testing.assert_allclose(got[0, :, :, c].numpy(), want, atol=1e-4)


def test_official_checkpoint_into_wrong_backbone(vit_b_checkpoint, tiny_config):
    path, _ = vit_b_checkpoint
    with pytest.raises(CheckpointError, match=r"sam_vit_b_test\.pth.*SAM vit_b.*backbone is tiny"):
        load_sam_checkpoint(build_cracksam(tiny_config()), path)


class _Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


@pytest.mark.parametrize(
    "content, needle",
    [
        (b"", "empty"),
        (b"hello, I am a text file\n", "not a PyTorch checkpoint"),
        ("pickle", "other than tensors"),
        ("truncated", "truncated or corrupt"),
        ("not-a-dict", "does not hold a state dict"),
    ],
)
def test_bad_base_checkpoints_give_clear_errors(tmp_path, tiny_base, content, needle, capsys):
    model, base_path = tiny_base
    bad = tmp_path / "bad.pth"
    if content == "pickle":
        torch.save({"x": _Evil()}, bad)
    elif content == "truncated":
        data = base_path.read_bytes()
        bad.write_bytes(data[: len(data) // 2])
    elif content == "not-a-dict":
        torch.save([1, 2, 3], bad)
    else:
        bad.write_bytes(content)
    with pytest.raises(CheckpointError, match=needle) as info:
        read_state_dict(bad)
    assert "bad.pth" in str(info.value)
    assert "this must never run" not in capsys.readouterr().out


def test_not_a_sam_checkpoint(tmp_path, tiny_base):
    model, _ = tiny_base
    path = tmp_path / "other.pth"
    torch.save({"weight": torch.zeros(3)}, path)
    with pytest.raises(CheckpointError, match="not a SAM checkpoint"):
        load_sam_checkpoint(model, path)
    with pytest.raises(CheckpointError, match="not found"):
        load_sam_checkpoint(model, tmp_path / "missing.pth")


def test_download_checks_md5_and_uses_cache(tmp_path, monkeypatch, tiny_base):
    _, base_path = tiny_base
    md5 = hashlib.md5(base_path.read_bytes()).hexdigest()
    spec = backbones_mod.BACKBONES["tiny"]
    monkeypatch.setitem(
        backbones_mod.BACKBONES, "tiny",
        type(spec)(**{**spec.__dict__, "checkpoint_url": base_path.as_uri(), "checkpoint_md5": md5}),
    )
    cache = tmp_path / "cache"
    got = download_official("tiny", cache, progress=False)
    assert got.read_bytes() == base_path.read_bytes() and got.parent == cache

    # Cached: no second download.
    def no_network(*a, **k):
        raise AssertionError("downloaded again")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    assert download_official("tiny", cache, progress=False) == got

    monkeypatch.undo()
    monkeypatch.setitem(
        backbones_mod.BACKBONES, "tiny",
        type(spec)(**{**spec.__dict__, "checkpoint_url": base_path.as_uri(), "checkpoint_md5": "0" * 32}),
    )
    with pytest.raises(CheckpointError, match="does not match its published MD5"):
        download_official("tiny", tmp_path / "cache2", progress=False)
    assert list((tmp_path / "cache2").iterdir()) == []
    monkeypatch.setitem(
        backbones_mod.BACKBONES, "tiny",
        type(spec)(**{**spec.__dict__, "checkpoint_url": (tmp_path / "absent.pth").as_uri()}),
    )
    with pytest.raises(CheckpointError, match="could not download"):
        download_official("tiny", tmp_path / "cache3", progress=False)


def test_info_cli_reads_checkpoint_folders(tmp_path, tiny_base, capsys):
    model, _ = tiny_base
    out = save_delta(model, tmp_path / "ckpt")
    assert main(["info", "--model", str(out), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["model"]["backbone"] == "tiny"
    assert payload["trainable_parameters"] == sum(p.numel() for p in model.parameters() if p.requires_grad)
    (out / WEIGHTS_NAME).unlink()
    assert main(["info", "--model", str(out)]) == 2
    assert "not a CrackSAM checkpoint folder" in capsys.readouterr().err
    assert main(["info", "--model", "no_such_model"]) == 2
    assert "unknown model" in capsys.readouterr().err


def test_sam_checkpoint_names_resolve_to_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("CRACKSAM_CACHE", str(tmp_path))
    fake = tmp_path / "sam_vit_b_01ec64.pth"
    fake.write_bytes(b"x")
    from cracksam.models.sam_checkpoint import resolve_checkpoint

    assert resolve_checkpoint("vit_b") == fake
    assert Path(resolve_checkpoint(str(fake))) == fake


# -- a training checkpoint given as a model (predict -m run/checkpoints/last.ckpt) ----------------------


def _run_checkpoint(folder, seed=0):
    from cracksam.models import SegModelConfig, build_segmodel
    from cracksam.models.run_checkpoint import MODEL_KEY, model_record

    torch.manual_seed(seed)
    model = build_segmodel(SegModelConfig("unet_mobilenetv3_small", image_size=64))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "last.ckpt"
    torch.save({"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()}, "loops": {},
                "global_step": 3, MODEL_KEY: model_record(model, None)}, path)
    return path, model


def test_checkpoint_model_folder_never_replaces_a_users_folder(tmp_path, monkeypatch):
    from cracksam.models import load_model
    from cracksam.models.run_checkpoint import model_folder

    monkeypatch.setenv("CRACKSAM_CACHE", str(tmp_path / "cache"))
    path, model = _run_checkpoint(tmp_path / "run" / "checkpoints")
    users = path.with_name("last.model")
    users.mkdir()
    (users / "notes.txt").write_text("mine")
    folder = model_folder(path)
    assert (users / "notes.txt").read_text() == "mine" and sorted(p.name for p in users.iterdir()) == ["notes.txt"]
    assert folder.parent == tmp_path / "cache" / "checkpoint-models"
    loaded = load_model(folder)
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in model.state_dict().items())
    assert model_folder(path) == folder  # reused while the checkpoint is unchanged


def test_checkpoint_model_folder_of_a_read_only_run_goes_to_the_cache(tmp_path, monkeypatch):
    import tempfile

    from cracksam.models.run_checkpoint import model_folder

    monkeypatch.setenv("CRACKSAM_CACHE", str(tmp_path / "cache"))
    path, _ = _run_checkpoint(tmp_path / "run" / "checkpoints")
    real = tempfile.mkdtemp

    def read_only(*args, dir=None, **kwargs):
        if dir is not None and Path(dir) == path.parent:
            raise PermissionError(13, "Read-only file system", str(dir))
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkdtemp", read_only)
    folder = model_folder(path)
    assert folder.parent == tmp_path / "cache" / "checkpoint-models" and (folder / "config.json").is_file()
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.ckpt"]
    # Where the run folder can be written, the folder goes beside the checkpoint (as before).
    monkeypatch.setattr(tempfile, "mkdtemp", real)
    other, _ = _run_checkpoint(tmp_path / "run2", seed=1)
    assert model_folder(other) == other.with_name("last.model")
