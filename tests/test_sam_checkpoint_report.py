"""What loading an official SAM checkpoint tells the user (``LoadReport``) and how each tensor of
the file is sorted (kept, resized, cut to the mask tokens, unused, missing): the paths of
``models/sam_checkpoint.py`` that the round-trip tests do not reach (mutation testing, docs/testing.md)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from cracksam.errors import CheckpointError
from cracksam.models import build_cracksam
from cracksam.models.sam_checkpoint import (
    LoadReport,
    adapt_state_dict,
    detect_backbone,
    load_sam_checkpoint,
    read_state_dict,
    resolve_checkpoint,
)


def _official_layout(model) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items() if ".adapter." not in k and ".lora_" not in k}


def test_summary_lists_each_kind_with_counts_and_caps_long_lists_at_eight():
    report = LoadReport(path="sam.pth")
    assert report.summary() == "loaded sam.pth"  # nothing else happened: one line
    report.resized = ["a", "b"]
    report.truncated = ["t"]
    report.missing = [f"m{i}" for i in range(3)]
    report.unexpected = [f"u{i}" for i in range(10)]
    assert report.summary().splitlines() == [
        "loaded sam.pth",
        "  resized to the input size: 2 tensors",
        "  cut to the CrackSAM mask tokens: 1 tensors",
        "  missing (left at random init): m0, m1, m2",
        "  unused: u0, u1, u2, u3, u4, u5, u6, u7 ... (10 in all)",
    ]
    # Exactly eight names: all shown, no "in all" tail; nine: the tail appears.
    assert LoadReport("p", missing=[f"m{i}" for i in range(8)]).summary().endswith("m7")
    nine = LoadReport("p", missing=[f"m{i}" for i in range(9)]).summary()
    assert nine.endswith("m7 ... (9 in all)") and "m8" not in nine
    assert LoadReport("p", unexpected=[f"u{i}" for i in range(8)]).summary().endswith("u7")


def test_adapt_sorts_every_tensor_of_an_official_file(tiny_config):
    model = build_cracksam(tiny_config("lora", image_size=64)).eval()
    official = _official_layout(model)
    target = model.state_dict()
    # What an official file has on top: a 4-token decoder, a 1024-px position grid, foreign keys.
    tokens = official["mask_decoder.mask_tokens.weight"]
    official["mask_decoder.mask_tokens.weight"] = torch.cat([tokens, torch.randn(2, tokens.shape[1])])
    pos = official["image_encoder.pos_embed"]
    official["image_encoder.pos_embed"] = torch.randn(1, pos.shape[1] * 2, pos.shape[2] * 2, pos.shape[3])
    rel = [k for k in official if k.endswith(".rel_pos_h")]
    for key in rel:  # global blocks: a longer table (more tokens at 1024 px)
        official[key] = torch.randn(official[key].shape[0] * 2 + 1, official[key].shape[1])
    num = model.mask_decoder.num_mask_tokens
    extra_mlp = f"mask_decoder.output_hypernetworks_mlps.{num}.layers.0.weight"
    official[extra_mlp] = torch.zeros(3, 3)
    official["some_other_net.weight"] = torch.zeros(1)
    official["image_encoder.not_in_model"] = torch.zeros(1)

    report = LoadReport(path="x.pth")
    out = adapt_state_dict(official, model, report)
    assert report.truncated == ["mask_decoder.mask_tokens.weight"]
    torch.testing.assert_close(out["mask_decoder.mask_tokens.weight"], tokens)
    assert "image_encoder.pos_embed" in report.resized and set(rel) <= set(report.resized)
    assert len(report.resized) == 1 + len(rel)
    assert set(report.unexpected) == {extra_mlp, "some_other_net.weight", "image_encoder.not_in_model"}
    for key, value in out.items():
        assert value.shape == target[key].shape, key
    assert "some_other_net.weight" not in out and extra_mlp not in out
    # Hypernetwork MLPs below the model's token count are kept, not reported.
    kept = f"mask_decoder.output_hypernetworks_mlps.{num - 1}.layers.0.weight"
    assert kept in out and kept not in report.unexpected


@pytest.mark.parametrize(
    "key, shape",
    [
        ("image_encoder.pos_embed", (1, 8, 8, 5)),  # channels differ: cannot be resized
        ("mask_decoder.mask_tokens.weight", (1, None)),  # fewer tokens than the model: cannot be cut
        ("image_encoder.patch_embed.proj.bias", (7,)),  # any other mismatch
    ],
)
def test_adapt_refuses_a_shape_it_cannot_adapt_naming_the_key(tiny_config, key, shape):
    model = build_cracksam(tiny_config("lora", image_size=64)).eval()
    official = _official_layout(model)
    want = official[key].shape
    shape = tuple(want[i] if s is None else s for i, s in enumerate(shape))
    official[key] = torch.zeros(shape)
    with pytest.raises(CheckpointError, match=re.escape(f"x.pth: {key} has shape {tuple(shape)}")):
        adapt_state_dict(official, model, LoadReport(path="x.pth"))


def test_load_reports_missing_base_weights_but_not_the_deltas(tmp_path, tiny_config):
    model = build_cracksam(tiny_config("adapter+lora", image_size=64)).eval()
    official = _official_layout(model)
    dropped = "mask_decoder.iou_token.weight"
    del official[dropped]
    path = tmp_path / "sam.pth"
    torch.save(official, path)
    report = load_sam_checkpoint(model, path)
    assert report.missing == [dropped]  # delta weights are never in official files: not reported
    assert report.path == str(path) and report.unexpected == [] and report.resized == []


def test_state_dict_wrappers_are_unwrapped_and_empty_dicts_refused(tmp_path, tiny_config):
    model = build_cracksam(tiny_config("lora", image_size=64))
    sd = _official_layout(model)
    for wrapper in ("state_dict", "model"):
        path = tmp_path / f"{wrapper}.pth"
        torch.save({wrapper: sd, "epoch": torch.tensor(3)}, path)
        assert read_state_dict(path).keys() == sd.keys()
    empty = tmp_path / "empty.pth"
    torch.save({}, empty)
    with pytest.raises(CheckpointError, match="does not hold a state dict"):
        read_state_dict(empty)
    mixed = tmp_path / "mixed.pth"
    torch.save({"w": torch.zeros(1), "note": "text"}, mixed)
    with pytest.raises(CheckpointError, match="does not hold a state dict"):
        read_state_dict(mixed)
    with pytest.raises(CheckpointError, match="not found"):
        read_state_dict(tmp_path / "absent.pth")


def test_detect_backbone_counts_blocks(tiny_config):
    model = build_cracksam(tiny_config("lora", image_size=64))
    sd = _official_layout(model)
    embed, depth = detect_backbone(sd)
    assert embed == model.image_encoder.patch_embed.proj.weight.shape[0]
    assert depth == len(model.image_encoder.blocks)
    with pytest.raises(KeyError):
        detect_backbone({"x": torch.zeros(1)})


def test_resolve_checkpoint_refuses_folders_and_missing_files(tmp_path, monkeypatch):
    with pytest.raises(CheckpointError, match="not a file"):
        resolve_checkpoint(tmp_path)
    with pytest.raises(CheckpointError, match="absent.pth: checkpoint file not found"):
        resolve_checkpoint(tmp_path / "absent.pth")
    # An existing file named like a backbone is a path, not a download.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "vit_b").write_bytes(b"x")
    monkeypatch.setattr("cracksam.models.sam_checkpoint.download_official", lambda name: pytest.fail("downloaded"))
    assert resolve_checkpoint("vit_b") == tmp_path.joinpath("vit_b").relative_to(tmp_path)


def test_summary_tail_starts_at_nine_unused_names():
    """Mutant killed: the unused list's cap ``> 8`` moved to ``> 9``."""
    nine = LoadReport("p", unexpected=[f"u{i}" for i in range(9)]).summary()
    assert nine.endswith("u7 ... (9 in all)") and "u8" not in nine


def test_files_are_read_weights_only_on_the_device_asked_for(tmp_path, monkeypatch):
    """``torch.load`` always gets ``weights_only=True`` (a checkpoint can never run code) and the
    caller's ``map_location``; ``load_sam_checkpoint`` hands its own ``map_location`` down."""
    import cracksam.models.sam_checkpoint as sc

    path = tmp_path / "w.pth"
    torch.save({"w": torch.zeros(2)}, path)
    calls = []
    real = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: calls.append(k) or real(*a, **k))
    read_state_dict(path, map_location="meta")
    assert calls[-1]["weights_only"] is True and calls[-1]["map_location"] == "meta"
    seen = []
    monkeypatch.setattr(sc, "read_state_dict", lambda p, m: seen.append(m) or {"x": torch.zeros(1)})
    with pytest.raises(CheckpointError, match="not a SAM checkpoint .*load_delta"):
        sc.load_sam_checkpoint(object(), path, map_location="meta", spec=sc.get_backbone("tiny"))
    assert seen == ["meta"]


@pytest.mark.parametrize(
    "exc, says, not_says",
    [
        (RuntimeError("PytorchStreamReader failed reading zip archive: failed finding central directory"),
         "truncated or corrupt", None),
        (RuntimeError("failed finding central directory"), "truncated or corrupt", None),
        (RuntimeError("not a zip archive"), "truncated or corrupt", None),
        (EOFError(), "truncated or corrupt (EOFError)", None),
        (RuntimeError("unsupported storage type\nsecond line"), "cannot read checkpoint: unsupported storage type",
         "truncated"),
        (KeyError("x"), "not a PyTorch checkpoint (KeyError: 'x')", None),
    ],
)
def test_each_read_failure_is_named_for_what_it_is(tmp_path, monkeypatch, exc, says, not_says):
    """Mutants killed: the truncation test's ``or`` turned into ``and`` / its words changed, and the
    exception's type name dropped from the message."""
    path = tmp_path / "w.pth"
    path.write_bytes(b"x")

    def fail(*a, **k):
        raise exc

    monkeypatch.setattr(torch, "load", fail)
    with pytest.raises(CheckpointError) as info:
        read_state_dict(path)
    assert says in str(info.value) and str(info.value).startswith(f"{path}: ")
    assert "second line" not in str(info.value)
    if not_says:
        assert not_says not in str(info.value)


def test_detect_backbone_names_the_key_it_needs():
    with pytest.raises(KeyError, match="image_encoder.patch_embed.proj.weight"):
        detect_backbone({"x": torch.zeros(1)})


def test_cache_dir_default_and_override(tmp_path, monkeypatch):
    from cracksam.models.sam_checkpoint import cache_dir

    monkeypatch.delenv("CRACKSAM_CACHE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache_dir() == tmp_path / ".cache" / "cracksam"
    monkeypatch.setenv("CRACKSAM_CACHE", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"


def test_download_makes_nested_folders_passes_progress_and_refuses_backbones_without_a_file(tmp_path, monkeypatch):
    """Mutants killed: ``mkdir`` without ``parents`` or ``exist_ok``, ``progress`` not handed to the
    downloader, the no-URL message dropped."""
    import cracksam.models.sam_checkpoint as sc
    from cracksam.models import backbones as backbones_mod

    spec = backbones_mod.BACKBONES["tiny"]
    with pytest.raises(CheckpointError, match="backbone 'tiny' has no official checkpoint to download"):
        sc.download_official("tiny", tmp_path)
    monkeypatch.setitem(backbones_mod.BACKBONES, "tiny", type(spec)(**{
        **spec.__dict__, "checkpoint_url": "https://example.invalid/sam_tiny.pth", "checkpoint_md5": None}))
    got = []

    def fake_download(url, dst, progress=True):
        got.append(progress)
        Path(dst).write_bytes(b"weights")

    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    nested = tmp_path / "a" / "b"
    assert sc.download_official("tiny", nested, progress=False).read_bytes() == b"weights"
    assert got == [False]
    existing = tmp_path / "existing"
    existing.mkdir()
    assert sc.download_official("tiny", existing, progress=True).parent == existing
    assert got == [False, True]
    assert sorted(p.name for p in existing.iterdir()) == ["sam_tiny.pth"]  # no .part left behind
