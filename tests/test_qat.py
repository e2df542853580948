"""Quantisation-aware training: quantisers inserted, trained, saved beside the float weights, checked
on load, and turned into an INT8 OpenVINO export that computes what was trained."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

pytest.importorskip("nncf")
pytest.importorskip("openvino")

from torch import nn  # noqa: E402

from cracksam.data.synthetic import make_dataset, synthetic_pair  # noqa: E402
from cracksam.deployment.export import parity_report  # noqa: E402
from cracksam.deployment.export_qat import export_openvino_qat  # noqa: E402
from cracksam.deployment.pipeline import export_all  # noqa: E402
from cracksam.deployment.runtime_cache import build_entry  # noqa: E402
from cracksam.errors import CheckpointError, ConfigError, CrackSAMError  # noqa: E402
from cracksam.inference.backends import OpenVINOBackend, TorchBackend  # noqa: E402
from cracksam.models import SegModel, SegModelConfig, save_trained  # noqa: E402
from cracksam.models.io import load_model  # noqa: E402
from cracksam.models.quantizers import (  # noqa: E402
    HOOK_PREFIX,
    QUANTIZERS_JSON,
    QUANTIZERS_TENSORS,
    has_quantizers,
    load_quantized,
)
from cracksam.models.segmodels import _ARCHS, ArchSpec, register_architecture  # noqa: E402
from cracksam.training.config import DataConfig, TrainConfig  # noqa: E402
from cracksam.training.qat import (  # noqa: E402
    QATConfig,
    agreement_loss,
    calibration_batches,
    insert_quantizers,
    keep_float,
    quantizers_off,
)
from tests._convnet import DarkConvNet  # noqa: E402

SIZE = 64


class _DarkUNet(DarkConvNet):
    """DarkConvNet with a U-Net's skip: the last convolution sees both the first and the second
    layer's features, concatenated.  NNCF then shares one quantiser between the two inputs of the
    concatenation, as in the bundled model's decoder (saving has to cope with shared tensors)."""

    def __init__(self) -> None:
        super().__init__()
        c3 = self.c3
        self.c3 = nn.Conv2d(16, 2, 1)
        with torch.no_grad():
            self.c3.weight.zero_()
            self.c3.weight[:, 8:] = c3.weight
            self.c3.bias.copy_(c3.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.c1(x))
        return self.c3(torch.cat([h, torch.relu(self.c2(h))], dim=1))


@pytest.fixture(scope="module")
def dark_arch():
    name = "test_qat_dark"
    register_architecture(ArchSpec(name, lambda pretrained, size: _DarkUNet(), "test only", multiple=8))
    yield name
    _ARCHS.pop(name, None)


def _images(n: int, seed: int, h: int = SIZE, w: int = SIZE) -> np.ndarray:
    return np.stack([synthetic_pair((h, w), seed=seed + i)[0] for i in range(n)]).transpose(0, 3, 1, 2) \
        .astype(np.float32).copy()


@pytest.fixture(scope="module")
def qat(dark_arch, tmp_path_factory):
    """A QAT model after one optimiser step (weights and quantiser scales moved off their
    calibrated start), its saved folder, and test images."""
    torch.manual_seed(0)
    model = SegModel(SegModelConfig(arch=dark_arch, image_size=SIZE)).eval()
    batches = [torch.from_numpy(_images(2, 10 * i)) for i in range(3)]
    q = insert_quantizers(model, batches)
    opt = torch.optim.SGD(q.parameters(), lr=0.05)
    x = torch.from_numpy(_images(4, 100))
    q.train()
    (q(x)[:, 1] - q(x)[:, 0]).mean().backward()
    opt.step()
    q.eval()
    folder = save_trained(q, tmp_path_factory.mktemp("qat") / "model")
    return q, folder, x


def test_insert_quantizers_hooks_int8_fake_quantisers_into_the_network(qat):
    q, _, x = qat
    assert has_quantizers(q)
    scales = [k for k in q.state_dict() if k.startswith(HOOK_PREFIX) and k.endswith(".scale")]
    assert len(scales) >= 4  # the three convolutions' weights and their inputs
    plain = load_model(qat[1]).eval()
    with torch.no_grad():
        a, b = q(x), plain(x)
    # Fake quantisation changes the logits, but only by rounding: the two are close, not equal.
    assert not torch.equal(a, b)
    assert (a - b).abs().mean() < 0.1
    assert ((a[:, 1] > a[:, 0]) == (b[:, 1] > b[:, 0])).float().mean() > 0.97


def test_the_saved_folder_is_a_float_checkpoint_with_its_quantisers_beside_it(qat):
    q, folder, _ = qat
    weights = load_file(str(folder / "weights.safetensors"))
    assert weights and not any(k.startswith(HOOK_PREFIX) for k in weights)
    quant = load_file(str(folder / QUANTIZERS_TENSORS))
    assert quant and all(k.startswith(HOOK_PREFIX) for k in quant)
    meta = json.loads((folder / "config.json").read_text())
    assert meta["num_tensors"] == len(weights)
    # The float weights are the trained ones (the SGD step), not the starting ones.
    trained = {k: v for k, v in q.state_dict().items() if not k.startswith(HOOK_PREFIX)}
    for k, v in load_model(folder).state_dict().items():
        assert torch.equal(v, trained[k]), k
    assert not torch.equal(trained["net.c1.weight"], DarkConvNet().c1.weight)
    # The concatenation's two inputs share one quantiser: saved under both names, loaded as one.
    record = json.loads((folder / QUANTIZERS_JSON).read_text())
    assert any(len(c["hook_names_in_model"]) > 1 for c in record["nncf_config"]["compression_state"])


def test_load_quantized_rebuilds_the_trained_fake_quantised_model(qat):
    q, folder, x = qat
    restored = load_quantized(folder)
    for k, v in q.state_dict().items():
        assert torch.equal(restored.state_dict()[k], v), k
    with torch.no_grad():
        assert torch.equal(restored(x), q(x))


def test_a_float_model_saved_over_a_qat_folder_drops_the_quantisers(qat, dark_arch, tmp_path):
    folder = tmp_path / "m"
    shutil.copytree(qat[1], folder)
    save_trained(SegModel(SegModelConfig(arch=dark_arch, image_size=SIZE)), folder)
    assert not (folder / QUANTIZERS_JSON).exists() and not (folder / QUANTIZERS_TENSORS).exists()
    with pytest.raises(CheckpointError, match="not trained with --qat"):
        load_quantized(folder)


def _copy(qat, tmp_path):
    folder = tmp_path / "m"
    shutil.copytree(qat[1], folder)
    return folder, json.loads((folder / QUANTIZERS_JSON).read_text())


def test_damaged_tensors_are_refused(qat, tmp_path):
    folder, _ = _copy(qat, tmp_path)
    data = bytearray((folder / QUANTIZERS_TENSORS).read_bytes())
    data[-3] ^= 0xFF
    (folder / QUANTIZERS_TENSORS).write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="does not match the checksum"):
        load_quantized(folder)
    (folder / QUANTIZERS_TENSORS).unlink()
    with pytest.raises(CheckpointError, match="missing"):
        load_quantized(folder)


def test_quantisers_of_other_weights_are_refused(qat, tmp_path):
    folder, record = _copy(qat, tmp_path)
    record["weights_sha256"] = "0" * 64
    (folder / QUANTIZERS_JSON).write_text(json.dumps(record))
    with pytest.raises(CheckpointError, match="trained with other weights"):
        load_quantized(folder)


def test_a_record_naming_other_code_is_refused_before_anything_is_imported(qat, tmp_path):
    folder, record = _copy(qat, tmp_path)
    record["nncf_config"]["compression_state"][0]["module_path"] = "os"
    (folder / QUANTIZERS_JSON).write_text(json.dumps(record))
    with pytest.raises(CheckpointError, match="only NNCF's INT8 quantisers"):
        load_quantized(folder)
    (folder / QUANTIZERS_JSON).write_text("{not json")
    with pytest.raises(CheckpointError, match="cannot read it"):
        load_quantized(folder)


def test_the_openvino_qat_export_computes_what_was_trained(qat, tmp_path):
    q, folder, _ = qat
    xml = export_openvino_qat(folder, tmp_path / "int8.xml")
    backend = OpenVINOBackend(xml, threads=1)
    assert backend.precision == "int8" and backend.dynamic
    images = _images(6, 200)
    fake = parity_report(TorchBackend(load_quantized(folder), threads=1), backend, images)
    assert fake["mask_iou"] >= 0.98 and fake["logit_cosine"] >= 0.98
    float_ref = parity_report(TorchBackend(load_model(folder), threads=1), backend, images)
    assert float_ref["mask_iou"] >= 0.9
    # Native resolution: a size other than the training one, any multiple of 8.
    wide = _images(1, 300, 72, 112)
    with torch.no_grad():
        expected = q(torch.from_numpy(wide)).numpy()
    got = backend.run(wide)
    assert got.shape == expected.shape
    assert np.mean((got[:, 1] > got[:, 0]) == (expected[:, 1] > expected[:, 0])) > 0.99


def test_export_all_builds_the_qat_target_and_refuses_it_below_its_floor(qat, tmp_path):
    _, folder, _ = qat
    model = load_model(folder).eval()
    samples = _images(4, 400)
    run = export_all(model, tmp_path / "ok", ["openvino-int8-qat"], samples, model_dir=folder)
    (result,) = run.results
    assert result.passed and result.path.name == "model_int8_qat.xml" and result.path.is_file()
    assert result.parity["candidate_precision"] == "int8" and result.min_iou == 0.97
    refused = export_all(model, tmp_path / "no", ["openvino-int8-qat"], samples, min_iou={"int8": 1.01},
                         model_dir=folder)
    assert not refused.results[0].passed
    assert not refused.results[0].path.exists() and not refused.results[0].path.with_suffix(".bin").exists()
    with pytest.raises(CrackSAMError, match="trained with --qat"):
        export_all(model, tmp_path / "none", ["openvino-int8-qat"], samples)


def test_the_runtime_cache_offers_the_qat_int8_export_only_for_qat_models(qat, dark_arch, tmp_path):
    _, folder, _ = qat
    manifest = build_entry(load_model(folder).eval(), tmp_path / "qat", threads=1, model_dir=folder)
    names = {c["name"]: c for c in manifest["candidates"]}
    assert names["openvino-int8"]["precision"] == "int8" and names["openvino-int8"]["file"] == "model_int8_qat.xml"
    assert names["openvino-int8"]["passed"] == (names["openvino-int8"]["mask_iou"] >= 0.97)
    # Damaged quantisers: no INT8 candidate, the reason recorded, the float exports still made.
    damaged = tmp_path / "damaged"
    shutil.copytree(folder, damaged)
    (damaged / QUANTIZERS_TENSORS).write_bytes(b"\0" * 64)
    manifest = build_entry(load_model(damaged).eval(), tmp_path / "damaged-cache", threads=1, model_dir=damaged)
    assert "does not match the checksum" in manifest["skipped"]["openvino-int8"]
    assert {c["name"] for c in manifest["candidates"]} == {"onnxruntime", "openvino"}
    plain = save_trained(SegModel(SegModelConfig(arch=dark_arch, image_size=SIZE)), tmp_path / "plain")
    manifest = build_entry(load_model(plain).eval(), tmp_path / "plain-cache", threads=1, model_dir=plain)
    assert "openvino-int8" not in {c["name"] for c in manifest["candidates"]}


def _switches(model):
    return {n: int(b.item()) for n, b in model.named_buffers() if n.endswith(".enabled")}


def test_keep_float_leaves_chosen_quantisers_off_through_save_and_export(qat, tmp_path):
    _, folder, x = qat
    q = load_quantized(folder)
    with torch.no_grad():
        before = q(x)
    off = keep_float(q, ["net/relu/"])  # the quantiser the concatenation's two inputs share
    assert off and all("net/relu/" in n for n in off)
    assert all(v == (0 if n in off else 1) for n, v in _switches(q).items())
    with torch.no_grad():
        after = q(x)
    assert not torch.equal(before, after)  # that activation is no longer rounded
    saved = save_trained(q, tmp_path / "m")
    restored = load_quantized(saved)
    assert _switches(restored) == _switches(q)
    with torch.no_grad():
        assert torch.equal(restored(x), after)
    backend = OpenVINOBackend(export_openvino_qat(saved, tmp_path / "i.xml"), threads=1)
    report = parity_report(TorchBackend(restored, threads=1), backend, _images(4, 500))
    assert report["mask_iou"] >= 0.98
    with pytest.raises(ConfigError, match="matches no quantiser"):
        keep_float(q, ["no/such/layer"])


def test_quantizers_off_runs_the_float_weights_and_restores_every_switch(qat):
    _, folder, x = qat
    q = load_quantized(folder)
    keep_float(q, ["net/relu/"])
    switches = _switches(q)
    with torch.no_grad():
        with quantizers_off(q):
            assert set(_switches(q).values()) == {0}
            inside = q(x)
        expected = load_model(folder).eval()(x)
    assert torch.equal(inside, expected)
    assert _switches(q) == switches  # the one kept float stays off, the others are back on


def test_agreement_loss_grows_with_what_quantisation_flips():
    torch.manual_seed(0)
    reference = torch.randn(2, 2, 8, 8) * 3
    same = agreement_loss(reference.clone().requires_grad_(), reference)
    flipped = reference.clone()
    flipped[:, 1], flipped[:, 0] = reference[:, 0], reference[:, 1]
    assert agreement_loss(flipped, reference) > same + 0.5
    candidate = reference.clone().requires_grad_()
    agreement_loss(candidate, reference).backward()
    assert candidate.grad is not None and candidate.grad.abs().max() < 1e-6  # agreeing already: nothing to learn


def test_qat_config_is_checked():
    with pytest.raises(ConfigError, match="conventional networks"):
        TrainConfig(qat=QATConfig())
    with pytest.raises(ConfigError, match="calibration_batches must be >= 1"):
        QATConfig(calibration_batches=0)
    with pytest.raises(ConfigError, match="agreement must be >= 0"):
        QATConfig(agreement=-0.1)
    assert not TrainConfig(qat=QATConfig(enabled=False)).quantization_aware


def test_calibration_takes_the_first_batches_and_refuses_none():
    loader = [{"image": torch.full((1, 3, 8, 8), float(i))} for i in range(5)]
    got = calibration_batches(loader, 3)
    assert [int(b[0, 0, 0, 0]) for b in got] == [0, 1, 2]
    with pytest.raises(ConfigError, match="gave none"):
        calibration_batches([], 3)


def test_a_qat_training_run_saves_its_quantisers_with_best(dark_arch, tmp_path, monkeypatch):
    from cracksam.training.trainer import fit

    root = make_dataset(tmp_path / "syn", n=8, size=(64, 64))
    cfg = TrainConfig(network=SegModelConfig(arch=dark_arch, image_size=SIZE),
                      data=DataConfig(train=[str(root)], num_workers=0, augment=False, crop=32),
                      batch_size=2, max_iters=3, checkpoint_every=2, out_dir=str(tmp_path / "run"), progress=False,
                      qat=QATConfig(calibration_batches=2, float_layers=["net/relu/"], agreement=0.5))
    result = fit(cfg)
    assert result.best_dir is not None and (result.best_dir / QUANTIZERS_JSON).is_file()
    restored = load_quantized(result.best_dir)
    assert has_quantizers(restored)
    assert {n: v for n, v in _switches(restored).items() if "net/relu/" in n} == \
        {n: 0 for n in _switches(restored) if "net/relu/" in n}
    with open(result.out_dir / "logs" / "part0" / "metrics.csv") as fh:
        assert "train/agreement" in fh.readline()
    # The resumable checkpoint holds the quantisers too (a resumed run continues training them).
    ckpt = torch.load(result.out_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert any(HOOK_PREFIX in k for k in ckpt["state_dict"])
    # The agreement term is part of the loss: the same run without it trains other weights.
    import dataclasses

    plain = fit(dataclasses.replace(cfg, out_dir=str(tmp_path / "plain"),
                                    qat=QATConfig(calibration_batches=2, float_layers=["net/relu/"])))
    other = torch.load(plain.out_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert other.keys() == ckpt["state_dict"].keys()
    assert not all(torch.equal(other[k], v) for k, v in ckpt["state_dict"].items())
    # Fine-tuning that model with --qat keeps its trained quantisers instead of calibrating new ones.
    import cracksam.training.trainer as trainer

    def no_calibration(*args, **kwargs):
        raise AssertionError("a QAT model being fine-tuned must keep its quantisers")

    monkeypatch.setattr(trainer, "insert_quantizers", no_calibration)
    again = fit(TrainConfig(network=SegModelConfig(arch=dark_arch, image_size=SIZE), init_from=str(result.best_dir),
                            data=DataConfig(train=[str(root)], num_workers=0, augment=False, crop=32),
                            batch_size=2, max_iters=1, out_dir=str(tmp_path / "again"), progress=False,
                            qat=QATConfig()))
    assert (again.best_dir / QUANTIZERS_JSON).is_file()


def test_nncf_gets_time_to_build_its_kernels_unless_the_user_said_otherwise(monkeypatch):
    from cracksam.models.quantizers import _nncf

    monkeypatch.delenv("NNCF_EXTENSION_LOAD_TIMEOUT", raising=False)
    _nncf()
    import os

    assert os.environ["NNCF_EXTENSION_LOAD_TIMEOUT"] == "600"  # NNCF's own 60 s fails a first build on 2 cores
    monkeypatch.setenv("NNCF_EXTENSION_LOAD_TIMEOUT", "0")
    _nncf()
    assert os.environ["NNCF_EXTENSION_LOAD_TIMEOUT"] == "0"


def test_export_refuses_the_qat_target_for_a_model_without_quantisers(tmp_path, capsys):
    from cracksam.cli.main import main

    out = tmp_path / "export"
    rc = main(["export", "--targets", "openvino-int8-qat", "--out", str(out)])  # the bundled model: float only
    assert rc == 2
    assert "openvino-int8-qat needs a model trained with --qat" in capsys.readouterr().err
    assert not out.exists()


def test_calibration_writes_nothing_on_stdout(dark_arch, capfd):
    """``train`` prints its result as JSON on stdout; NNCF's log lines and progress bar go to stderr."""
    import logging

    model = SegModel(SegModelConfig(arch=dark_arch, image_size=SIZE)).eval()
    insert_quantizers(model, [torch.from_numpy(_images(2, 7))])
    logging.getLogger("nncf").info("a line NNCF logs")
    out, err = capfd.readouterr()
    assert out == ""
    assert "a line NNCF logs" in err
