"""The short flags of a :class:`~cracksam.inference.options.PredictOptions` section, shared by
``predict`` and ``stream`` (each command's tree holds it as ``predictor``), and the older
``CRACKSAM_RUNTIME`` variable, ranked just below ``CRACKSAM_<COMMAND>__PREDICTOR__RUNTIME``.

Flags default to None (unset): the defaults are the dataclass's (see :mod:`cracksam.cli.tree`).
Nothing here imports torch.
"""

from __future__ import annotations

from collections.abc import Mapping

import typer

from cracksam.cli.options import MODEL_HELP, RANDOM_BASE_HELP, RUNTIME_ENV, RUNTIME_HELP, TRUST_HELP
from cracksam.cli.tree import Alias
from cracksam.inference_modes import DEFAULT_WINDOW, DEFAULT_WINDOW_OVERLAP, MODE_HELP, SCALE_HELP
from cracksam.overrides import Assignment


def predictor_aliases(*, window: bool = True, batches: bool = True,
                      threshold: tuple[str, ...] = ("predictor.threshold",)) -> dict[str, Alias]:
    """The flags of the ``predictor`` section.  ``window`` / ``batches``: whether the command has
    ``--window`` / ``--overlap``, ``--batch-size``, ``--in-flight`` (``stream`` runs one frame at a
    time and has none); ``threshold``: the keys ``--threshold`` sets."""
    aliases: dict[str, Alias] = {
        "model": Alias("predictor.model", str | None, typer.Option(
            None, "--model", "-m", help=MODEL_HELP)),
        "base": Alias("predictor.base", str | None, typer.Option(
            None, "--base", help="SAM base checkpoint for a delta checkpoint.")),
        "allow_random_base": Alias("predictor.allow_random_base", bool | None, typer.Option(
            None, "--allow-random-base/--no-allow-random-base", help=RANDOM_BASE_HELP)),
        "trust": Alias("predictor.trust", bool | None, typer.Option(
            None, "--trust/--no-trust", help=TRUST_HELP)),
        "mode": Alias("predictor.mode", str | None, typer.Option(None, "--mode", help=MODE_HELP)),
        "scale": Alias("predictor.scale", float | None, typer.Option(None, "--scale", help=SCALE_HELP)),
    }
    if window:
        aliases["window"] = Alias("predictor.window", int | None, typer.Option(
            None, "--window", help="Native mode: largest side run in one forward pass, window size above it "
            f"(default {DEFAULT_WINDOW})."))
        aliases["window_overlap"] = Alias("predictor.window_overlap", int | None, typer.Option(
            None, "--window-overlap", help="Native mode: least overlap of those windows, px "
            f"(default {DEFAULT_WINDOW_OVERLAP})."))
        aliases["overlap"] = Alias("predictor.tile_overlap", float | None, typer.Option(
            None, "--overlap", help="Tile mode: window overlap fraction (default 0.25)."))
    aliases["threshold"] = Alias(threshold, float | None, typer.Option(
        None, "--threshold", help="Crack probability threshold (default 0.5)."))
    if batches:
        aliases["batch_size"] = Alias("predictor.batch_size", int | None, typer.Option(
            None, "--batch-size", help="Images or windows per forward pass (default 4)."))
    aliases["device"] = Alias("predictor.device", str | None, typer.Option(
        None, "--device", help="cpu (default) or cuda (PyTorch), CPU/GPU (OpenVINO)."))
    aliases["threads"] = Alias("predictor.threads", int | None, typer.Option(
        None, "--threads", help="CPU threads of the runtime (default: every core)."))
    aliases["runtime"] = Alias("predictor.runtime", str | None, typer.Option(
        None, "--runtime", help=f"{RUNTIME_HELP} [env {RUNTIME_ENV}, CRACKSAM_<COMMAND>__PREDICTOR__RUNTIME]"))
    if batches:
        aliases["in_flight"] = Alias("predictor.in_flight", int | None, typer.Option(
            None, "--in-flight", help="Batches of windows run at once (throughput mode; default 1)."))
    return aliases


def runtime_env_alias(environ: Mapping[str, str]) -> list[Assignment]:
    """``CRACKSAM_RUNTIME`` as ``predictor.runtime`` (an empty value is unset, as click read it)."""
    value = environ.get(RUNTIME_ENV)
    return [Assignment("predictor.runtime", value, RUNTIME_ENV, text=True)] if value else []
