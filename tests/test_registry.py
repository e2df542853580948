"""The one model registry: metadata for every entry, ``create_model`` for every name, no cycle."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from cracksam.cli.main import main
from cracksam.errors import ConfigError
from cracksam.inference_modes import MODES
from cracksam.models import registry
from cracksam.models.backbones import BACKBONES
from cracksam.models.deltas import DELTA_KINDS
from cracksam.models.segmodels import ArchSpec, get_architecture, list_architectures, register_architecture

# Heavy networks are built on the meta device (no memory, no initialisation); the rest on the CPU
# at their smallest legal size.  Builders that read tensor values while constructing cannot use meta.
_CPU_UNSAFE_ON_META = {"segformer_mit_b5"}


def _registered_by_tests(name: str) -> bool:
    """Other test files register toy networks (without backbone metadata) for the whole session."""
    entry = registry.model_entry(name)
    build = getattr(entry.spec, "build", entry.build)
    return getattr(build, "__module__", "").startswith("tests")


def test_every_entry_has_complete_metadata():
    names = [n for n in registry.list_models() if not _registered_by_tests(n)]
    archs = [a for a in list_architectures() if not _registered_by_tests(a)]
    assert len(names) == len(BACKBONES) * len(DELTA_KINDS) + len(archs)
    for name in names:
        entry = registry.model_entry(name)
        assert entry.name == name
        assert entry.family in registry.FAMILIES
        assert entry.backbone, name
        assert entry.description, name
        assert entry.default_inference_mode in MODES
        assert entry.default_image_size % entry.input_multiple == 0, name
        meta = entry.metadata()
        assert set(meta) >= {"family", "backbone", "delta", "params_m", "default_image_size",
                             "default_inference_mode"}
        json.dumps(meta)  # plain data


def test_cracksam_metadata_comes_from_the_registration_not_the_name():
    entry = registry.model_entry("cracksam_vit_h_adapter_lora")
    assert (entry.family, entry.backbone, entry.delta) == ("cracksam", "vit_h", "adapter+lora")
    assert entry.default_inference_mode == "resize" and entry.input_multiple == 16
    seg = registry.model_entry("hrnet_w18_fcn")
    assert (seg.family, seg.role, seg.backbone, seg.delta) == ("segmodel", "student", "hrnet_w18", None)
    assert seg.params_m == 9.6 and seg.default_inference_mode == "native"
    assert seg.spec is get_architecture("hrnet_w18_fcn")
    assert registry.list_models(family="segmodel") == list_architectures()
    assert registry.list_models(role="baseline") == list_architectures("baseline")


@pytest.mark.parametrize("name", registry.list_models("cracksam_tiny_"))
def test_create_model_builds_each_cracksam_variant(name):
    entry = registry.model_entry(name)
    model = registry.create_model(name, image_size=32)
    assert model.config.backbone == entry.backbone == "tiny"
    assert model.config.delta.kind == entry.delta
    assert model.config.image_size == 32


@pytest.mark.parametrize("name", [n for n in registry.list_models("cracksam_") if not n.startswith("cracksam_tiny")])
def test_create_model_builds_each_large_cracksam_variant_on_meta(name):
    model = registry.create_model(name, device="meta", image_size=64)
    assert model.config.backbone == registry.model_entry(name).backbone


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in _CPU_UNSAFE_ON_META else n
                                  for n in list_architectures()])
def test_create_model_builds_each_conventional_network(name):
    entry = registry.model_entry(name)
    size = max(entry.input_multiple, 32)
    device = None if name in _CPU_UNSAFE_ON_META else "meta"
    try:
        model = registry.create_model(name, image_size=size, device=device)
    except ImportError as exc:  # an optional library of one architecture
        pytest.skip(f"{name}: {exc}")
    assert model.config.arch == name and model.config.image_size == size
    assert model.input_multiple == entry.input_multiple


def test_create_model_rejects_unknown_names_and_options():
    with pytest.raises(ConfigError, match="unknown model 'nope'"):
        registry.create_model("nope")
    with pytest.raises(ConfigError, match="has no option 'depth'"):
        registry.create_model("unet", depth=3)
    with pytest.raises(ConfigError, match="CrackSAM has no option 'depth'"):
        registry.create_model("cracksam_tiny_lora", depth=3)
    assert registry.create is registry.create_model  # the old name keeps working


def test_register_architecture_enters_the_one_registry():
    from cracksam.models import segmodels

    name = "test_registry_probe"
    register_architecture(ArchSpec(name, lambda pretrained, size: None, "probe", multiple=8, backbone="probe"))
    try:
        assert registry.model_entry(name).backbone == "probe"
        assert name in segmodels._ARCHS and name in list_architectures()
        with pytest.raises(ValueError, match="registered twice"):
            register_architecture(ArchSpec(name, lambda pretrained, size: None, "probe"))
    finally:
        segmodels._ARCHS.pop(name, None)
    assert name not in registry.list_models()
    with pytest.raises(ConfigError, match="unknown architecture"):
        get_architecture(name)


def test_registry_imports_no_model_module():
    """The registry is imported by model modules, never the reverse (the old cycle:
    segmodels -> zoo -> segmodels)."""
    tree = ast.parse(Path(registry.__file__).read_text())
    imported = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module]
    imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert imported and not [m for m in imported if m.startswith("cracksam.models")]


def test_info_list_models_reads_the_metadata(capsys, monkeypatch):
    from cracksam.models import segmodels

    # A registered name whose description does not follow the naming scheme: info must show the
    # entry's own metadata, not a delta recovered by slicing the name.
    name = "test_registry_listed"
    register_architecture(ArchSpec(name, lambda pretrained, size: None, "listed probe", role="baseline",
                                   multiple=8, backbone="probe_encoder"))
    try:
        assert main(["info", "--list-models", "--json"]) == 0
        rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
        assert rows[name]["backbone"] == "probe_encoder" and rows[name]["role"] == "baseline"
        assert rows["cracksam_vit_b_adapter_lora"]["delta"] == "adapter+lora"
        assert rows["cracksam_vit_b_adapter_lora"]["default_inference_mode"] == "resize"
        assert rows["unet"]["default_inference_mode"] == "native" and rows["unet"]["delta"] is None
        assert main(["info", "--list-models"]) == 0
        out = capsys.readouterr().out
        assert "probe_encoder" in out and "adapter+lora" in out
    finally:
        segmodels._ARCHS.pop(name, None)
