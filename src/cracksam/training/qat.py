"""Quantisation-aware training (QAT) of a conventional network, for an INT8 export that keeps its masks.

Post-training INT8 of the bundled model flips too many thin-crack pixels: 7.6 % of its crack pixels
have a logit margin under 0.5, and a fixed activation range errs by a few tenths of a logit
(benchmarks/RESULTS.md, "Why the bundled model's INT8 was refused").  With QAT the network trains
with NNCF's INT8 fake quantisers in its graph (symmetric per-channel weights, per-tensor
activations; ranges calibrated on training batches, then trained with the weights), so it learns
weights whose decisions survive INT8.  The quantisers are saved beside the float weights
(:mod:`cracksam.models.quantizers`); ``cracksam export``/``bench`` (target ``openvino-int8-qat``)
and ``predict --runtime auto`` turn them into an OpenVINO INT8 model, checked against the float
model like every export.  Validation during a QAT run scores the fake-quantised network, so
``best/`` is chosen for what INT8 will do.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from cracksam.config import help_meta
from cracksam.errors import ConfigError
from cracksam.models.quantizers import HOOK_PREFIX, _nncf, has_quantizers

CONVENTIONAL_ONLY = ("qat (--qat) is for conventional networks: give --arch or --init-from one; CrackSAM's INT8 "
                     "export is post-training (cracksam export --targets onnx-int8)")


@dataclass
class QATConfig:
    """``qat`` section of a training config: train with INT8 fake quantisers (conventional networks)."""

    enabled: bool = field(default=True, metadata=help_meta("train with INT8 fake quantisers (set by --qat)"))
    calibration_batches: int = field(default=16, metadata=help_meta(
        "training batches whose activations set the quantisers' starting ranges"))
    float_layers: list[str] = field(default_factory=list, metadata=help_meta(
        "quantisers left in float, by part of their NNCF hook name (e.g. 'encoder/model/act1/': the stem "
        "activation, the one that costs the bundled model most agreement)"))
    agreement: float = field(default=0.0, metadata=help_meta(
        "weight of the agreement term: the fake-quantised output against the float one of the same weights "
        "(what the INT8 export's parity check measures)"))

    def __post_init__(self) -> None:
        if self.calibration_batches < 1:
            raise ConfigError(f"qat.calibration_batches must be >= 1, got {self.calibration_batches}")
        if not self.agreement >= 0:
            raise ConfigError(f"qat.agreement must be >= 0, got {self.agreement}")


def calibration_batches(loader: Iterable[dict[str, torch.Tensor]], count: int) -> list[torch.Tensor]:
    """The first ``count`` image batches of ``loader`` ((B, 3, H, W) float RGB 0..255)."""
    batches = []
    for batch in loader:
        batches.append(batch["image"])
        if len(batches) >= count:
            break
    if not batches:
        raise ConfigError("QAT needs training images to calibrate its quantisers; the training set gave none")
    return batches


def insert_quantizers(model: torch.nn.Module, batches: list[torch.Tensor]) -> torch.nn.Module:
    """``model`` with NNCF's INT8 fake quantisers hooked in (in place; returned), their ranges set
    from ``batches``.  The quantisers are trainable: an optimiser built afterwards trains them
    with the weights.  Refused for CrackSAM: its frozen ViT is what QAT would need to change."""
    from cracksam.models.cracksam import CrackSAM

    if isinstance(model, CrackSAM):
        raise ConfigError(CONVENTIONAL_ONLY)
    if has_quantizers(model):
        raise ConfigError("this model already carries quantisers")
    nncf = _nncf()
    was_training = model.training
    model.eval()  # calibration must not move batch-norm statistics
    # NNCF's progress bar goes to stdout, which carries train's JSON result: send it to stderr.
    with torch.no_grad(), redirect_stdout(sys.stderr):
        model = nncf.quantize(model, nncf.Dataset(batches), subset_size=len(batches),
                              preset=nncf.QuantizationPreset.PERFORMANCE, fast_bias_correction=True)
    return model.train(was_training)


def _switches(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Each quantiser's ``enabled`` flag (a buffer, saved with the quantisers), by hook name."""
    return {name: buf for name, buf in model.named_buffers()
            if name.startswith(HOOK_PREFIX) and name.endswith(".enabled")}


def keep_float(model: torch.nn.Module, patterns: Iterable[str]) -> list[str]:
    """Switch off (for good: the flag is saved, and the INT8 export then leaves that tensor in float)
    every quantiser whose hook name contains one of ``patterns``; returns their names.  A pattern
    that matches nothing is an error, so a renamed layer is not silently quantised."""
    switches, off = _switches(model), []
    for pattern in patterns:
        hit = [name for name in switches if pattern in name]
        if not hit:
            raise ConfigError(f"qat.float_layers: {pattern!r} matches no quantiser of this network")
        off += hit
    for name in off:
        switches[name].fill_(0)
    return sorted(set(off))


@contextmanager
def quantizers_off(model: torch.nn.Module) -> Iterator[None]:
    """Inside: ``model`` computes with its float weights only (every quantiser off); after: each
    quantiser as it was (those kept float stay off)."""
    switches = _switches(model)
    saved = {name: buf.clone() for name, buf in switches.items()}
    try:
        for buf in switches.values():
            buf.fill_(0)
        yield
    finally:
        for name, buf in switches.items():
            buf.copy_(saved[name])


def agreement_loss(quantized: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """BCE of the fake-quantised crack logit (l1 - l0) against the float model's crack probability:
    what INT8 changes at the output, weighted where it flips masks (near p = 0.5).  (B, 2, H, W) each;
    ``reference`` carries no gradient."""
    target = torch.sigmoid(reference[:, 1] - reference[:, 0]).detach()
    return F.binary_cross_entropy_with_logits(quantized[:, 1] - quantized[:, 0], target)
