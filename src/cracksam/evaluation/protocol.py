"""The whole zero-shot protocol in one call: Table 7 and the blur sweep for several models."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from cracksam.config import atomic_write_text
from cracksam.errors import ConfigError
from cracksam.evaluation.report import Column, blur_sweep_plot, build_table, write_table
from cracksam.evaluation.runner import EvalModel, PassResult, eval_backend, evaluate_samples
from cracksam.evaluation.selection import SPLIT_CHOICES, describe_selection, scored_sets, select_samples
from cracksam.inference.backends import TorchBackend
from cracksam.inference.options import PredictOptions
from cracksam.inference_modes import check_options
from cracksam.models.cracksam import CrackSAMConfig, build_cracksam, count_parameters
from cracksam.models.io import read_checkpoint_config
from cracksam.models.segmodels import SegModelConfig, build_segmodel

METRIC_LABELS = {"iou": "IoU", "f1": "F1", "precision": "Precision", "recall": "Recall"}
CONDITION_LABELS = {"clean": "test", "dim": "noisy 1 (dim)", "blurry": "noisy 2 (blurry)"}


def condition_label(condition: str, split: str) -> str:
    """A column's name: the paper's ("test", "noisy 1 (dim)", ...), except that clean images of the
    validation or training split are named for their split, so a table chosen on ``val`` never says "test"."""
    if condition == "clean" and split in ("val", "train"):
        return split
    return CONDITION_LABELS.get(condition, condition)


def load_eval_model(
    path: str | Path,
    base: str | None = None,
    allow_random_base: bool = False,
    device: str = "cpu",
    name: str | None = None,
    trust: bool = False,
) -> EvalModel:
    """A checkpoint folder (CrackSAM, or a student/baseline; a training run folder is its ``best/``,
    ``default`` the bundled model) or an exported ``.onnx`` / ``.xml`` as an :class:`EvalModel`;
    parameter counts are those of training (CrackSAM: frozen encoder + trainable part; a student:
    all trained), for an export those of the model config it carries."""
    from cracksam.inference.backend_torch import check_torch_device
    from cracksam.inference.predictor import open_predictor
    from cracksam.models.default import resolve_model_path

    path = resolve_model_path(path)
    if path.is_file() and path.suffix.lower() in (".onnx", ".xml"):
        return _exported_eval_model(path, device, name)
    check_torch_device(device)  # before loading: no GPU is one error line, not a traceback
    meta = read_checkpoint_config(path, trust=trust)
    config = meta["model_config"]
    backend = open_predictor(PredictOptions(model=str(path), base=base, device=device, trust=trust, runtime="torch",
                                            allow_random_base=allow_random_base)).backend  # the one door
    assert isinstance(backend, TorchBackend)  # a checkpoint folder with runtime torch
    model = backend.model
    folder = path if path.is_dir() else path.parent
    label = name or (folder.parent.name if folder.name == "best" else folder.name)
    if isinstance(config, SegModelConfig):
        total = sum(p.numel() for p in model.parameters())
        return EvalModel(label, model, config.arch, total, _trained_count(meta, total), str(folder))
    counts = count_parameters(build_cracksam(config, device="meta"))
    return EvalModel(label, model, config.backbone, counts.total, counts.trainable, str(folder))


def _trained_count(meta: dict, total: int) -> int:
    """Parameters training changed: a network trained with an encoder delta (frozen encoder + LoRA) is
    saved with the LoRA folded in, so its tensors count as many as a whole network's; its record
    says how many were trained (LoRA factors, decoder, head)."""
    delta = meta.get("encoder_delta")
    trained = delta.get("trainable_parameters") if isinstance(delta, dict) else None
    return trained if isinstance(trained, int) and 0 < trained else total


def _exported_eval_model(path: Path, device: str, name: str | None) -> EvalModel:
    """An ONNX / OpenVINO file, opened as `cracksam predict` opens it (same device mapping); the
    runner scores it through the same Predictor as a PyTorch model."""
    from cracksam.inference.predictor import open_predictor

    backend = open_predictor(PredictOptions(model=str(path), device=device)).backend  # the one door: its own runtime
    config = getattr(backend, "model_config", None)
    backbone, total, trainable = f"{backend.name}-{backend.precision}", 0, 0
    if isinstance(config, SegModelConfig):
        try:
            net = build_segmodel(config, device="meta", load_pretrained=False)
        except (RuntimeError, NotImplementedError):  # builders that read tensor values need real ones
            net = build_segmodel(config, load_pretrained=False)
        backbone, total = config.arch, sum(p.numel() for p in net.parameters())
        trainable = total
    elif isinstance(config, CrackSAMConfig):
        counts = count_parameters(build_cracksam(config, device="meta"))
        backbone, total, trainable = config.backbone, counts.total, counts.trainable
    return EvalModel(name or path.stem, backend, backbone, total, trainable, str(path))


@dataclass
class ProtocolConfig:
    test: list[str] = field(default_factory=list)
    unseen: list[str] = field(default_factory=list)
    conditions: list[str] = field(default_factory=lambda: ["clean", "dim", "blurry"])
    blur_kernels: list[int] = field(default_factory=list)
    test_split: str = "auto"  # auto: the test split of a folder with split files, else all its images
    unseen_split: str = "all"
    ratios: tuple[float, float, float] = (0.7, 0.15, 0.15)
    split_seed: int = 0
    threshold: float = 0.5
    mode: str | None = None  # None: each model's own inference default (as `cracksam predict` runs it)
    scale: float | None = None
    reduction: str = "dataset"
    metric: str = "iou"
    batch_size: int = 4
    workers: int = 0
    visualize: int = 0
    device: str = "cpu"
    progress: bool = True
    measure: bool = False  # crack length / width of predictions vs truth (clean and unseen passes)
    mm_per_px: float | None = None
    mask_threshold: float | None = None  # None: two-level masks only; see cracksam.data.io.read_mask

    def __post_init__(self) -> None:
        if not self.test and not self.unseen:
            raise ConfigError("nothing to evaluate: give --test and/or --unseen datasets")
        for flag, value in (("--test-split", self.test_split), ("--unseen-split", self.unseen_split)):
            if value not in SPLIT_CHOICES:
                raise ConfigError(f"{flag} must be one of {', '.join(SPLIT_CHOICES)}; got {value!r}")
        if self.reduction not in ("dataset", "image"):
            raise ConfigError(f"--reduction must be dataset or image, got {self.reduction!r}")
        if self.metric not in ("iou", "f1", "precision", "recall"):
            raise ConfigError(f"--metric must be iou, f1, precision or recall, got {self.metric!r}")
        if not 0.0 < self.threshold < 1.0:
            raise ConfigError(f"--threshold must be in (0, 1), got {self.threshold}")
        check_options(self.mode, self.scale)
        bad = [k for k in self.blur_kernels if k < 1 or k % 2 == 0]
        if bad:
            raise ConfigError(f"blur kernel sizes must be odd and >= 1, got {bad}")
        if self.batch_size < 1:
            raise ConfigError("--batch-size must be >= 1")
        if self.mm_per_px is not None and not self.measure:
            raise ConfigError("--mm-per-px only applies with --measure; add --measure (or drop it)")
        if self.mm_per_px is not None and not self.mm_per_px > 0:
            raise ConfigError(f"--mm-per-px must be a positive number, got {self.mm_per_px}")
        from cracksam.data.io import check_mask_threshold

        check_mask_threshold(self.mask_threshold, "--mask-threshold")


def _per_dataset_table(results: Sequence[PassResult], reduction: str, split: str = "test") -> str:
    """Markdown: every metric per model, dataset and condition, for passes that pooled several sets
    (each set scored on its own, plus the pooled row)."""
    lines = [
        f"Precision / recall / F1 / IoU of the crack class per dataset ({reduction}-level); "
        "F1@2px: F1 with a 2-pixel matching tolerance; clDice: centre-line Dice",
        "",
        "| model | dataset | condition | images | Precision | Recall | F1 | IoU | F1@2px | clDice |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    key = "dataset_level" if reduction == "dataset" else "image_level"
    found = False
    for r in results:
        if "per_dataset" not in r.extra:
            continue
        found = True
        entries = [*r.extra["per_dataset"].items(), (f"all ({r.dataset})", {"n_images": r.n_images,
                                                                           key: getattr(r, key)})]
        for name, e in entries:
            m = e[key]
            keys = ("precision", "recall", "f1", "iou", "f1_tol2", "cldice")
            scores = " | ".join(f"{m[k]:.4f}" if k in m else "–" for k in keys)
            lines.append(f"| {r.model} | {name} | {condition_label(r.condition, split)} | "
                         f"{e['n_images']} | {scores} |")
    return "\n".join(lines) + "\n" if found else ""


def inference_for(model: EvalModel, cfg: ProtocolConfig) -> dict[str, Any]:
    """How ``model`` is run: ``cfg.mode`` / ``cfg.scale`` where given, else the model's own defaults
    (those of ``cracksam predict``); raises ConfigError for a combination that cannot run."""
    from cracksam.inference.predictor import Predictor

    predictor = Predictor(eval_backend(model, cfg.device), mode=cfg.mode, scale=cfg.scale)
    return {"mode": predictor.mode, "scale": predictor.scale, "inference": predictor.inference_summary()}


def run_protocol(models: Sequence[EvalModel], cfg: ProtocolConfig, out_dir: str | Path) -> dict[str, Any]:
    """Evaluate every model on the test sets (each condition), the blur sweep and the unseen sets;
    write ``table.{md,csv,json}``, ``blur_sweep.{png,json}`` and visuals into ``out_dir``.  Each
    model is run with its own inference mode and scale unless ``cfg`` overrides them; what was used
    is recorded per pass (``inference`` in results.json) and per model (``inference`` in table.json
    and the returned summary)."""
    from cracksam.data import get_corruption

    for c in cfg.conditions:
        try:
            get_corruption(c)  # unknown names fail before any model runs
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    out = Path(out_dir)
    test = select_samples(cfg.test, cfg.test_split, cfg) if cfg.test else []
    test_name = "+".join(Path(t).name for t in cfg.test)
    unseen = {Path(u).name: select_samples([u], cfg.unseen_split, cfg) for u in cfg.unseen}
    columns = [Column(condition_label(c, cfg.test_split), test_name, c) for c in cfg.conditions] if test else []
    columns += [Column(name, name, "clean") for name in unseen]

    inference = {m.name: inference_for(m, cfg) for m in models}  # a bad --mode/--scale fails before any pass
    out.mkdir(parents=True, exist_ok=True)  # only now that the datasets and options were accepted
    results: list[PassResult] = []
    common: dict[str, Any] = dict(
        threshold=cfg.threshold,
        batch_size=cfg.batch_size,
        device=cfg.device,
        num_workers=cfg.workers,
        visualize=cfg.visualize,
        visual_dir=out / "visuals",
        progress=cfg.progress,
    )
    sweep: dict[str, list[float]] = {}
    measured: dict[str, Any] = {"measure": cfg.measure, "mm_per_px": cfg.mm_per_px}
    for model in models:
        how = {"mode": inference[model.name]["mode"], "scale": inference[model.name]["scale"]}
        passes: list[PassResult] = []
        for cond in cfg.conditions if test else []:
            passes.append(evaluate_samples(model, test, cond, test_name, **common, **measured, **how))
        for name, samples in unseen.items():
            passes.append(evaluate_samples(model, samples, "clean", name, **common, **measured, **how))
        if cfg.blur_kernels and test:
            values = []
            for k in cfg.blur_kernels:
                r = evaluate_samples(model, test, f"blur:{k}", test_name, **{**common, "visualize": 0}, **how)
                passes.append(r)
                values.append((r.dataset_level if cfg.reduction == "dataset" else r.image_level)[cfg.metric])
            sweep[model.name] = values
        for r in passes:
            r.extra["inference"] = dict(how)
        results.extend(passes)

    scored = scored_sets(cfg, test, unseen)  # images scored per set, and which split
    caption = (
        f"{METRIC_LABELS[cfg.metric]} of the crack class, threshold "
        f"{cfg.threshold}, {cfg.reduction}-level; test = "
        + (f"{describe_selection(cfg.test, cfg.test_split)} ({len(test)} images); " if test else "-; ")
        + "images scored: " + ", ".join(f"{e['dataset']} {e['images']}" for e in scored) + "; "
        + (f"unseen sets: {describe_selection(cfg.unseen, cfg.unseen_split)}; " if cfg.unseen else "")
        + "inference: " + ", ".join(f"{name} {how['mode']} x{how['scale']:g}" for name, how in inference.items())
    )
    header, rows, doc = build_table(models, columns, results, cfg.metric, cfg.reduction)
    doc["caption"] = caption
    doc["inference"] = inference
    doc["scored"] = scored
    files = write_table(out, "table", header, rows, doc, caption)
    summary: dict[str, Any] = {"table": [str(p) for p in files], "header": header, "rows": rows,
                               "inference": inference, "scored": doc["scored"]}
    if sweep:
        png = blur_sweep_plot(
            out / "blur_sweep.png",
            cfg.blur_kernels,
            sweep,
            METRIC_LABELS[cfg.metric],
            f"{METRIC_LABELS[cfg.metric]} vs blur kernel ({describe_selection(cfg.test, cfg.test_split)})",
        )

        atomic_write_text(
            out / "blur_sweep.json",
            json.dumps(
                {"kernels": cfg.blur_kernels, "metric": cfg.metric, "reduction": cfg.reduction, "curves": sweep},
                indent=2,
            ),
        )
        summary["blur_sweep"] = str(png)
        summary["sweep"] = sweep
    atomic_write_text(out / "results.json", json.dumps([r.to_dict() for r in results], indent=2))
    per_set = _per_dataset_table(results, cfg.reduction, cfg.test_split)
    if per_set:
        atomic_write_text(out / "per_dataset.md", per_set)
        summary["per_dataset"] = str(out / "per_dataset.md")
    if cfg.measure:
        rows = [
            [
                r.model,
                r.dataset,
                r.condition,
                str(r.extra["measurement"]["n_cracks_true"]),
                str(r.extra["measurement"]["n_cracks_pred"]),
                _fmt(r.extra["measurement"]["length_relative_error"], pct=True),
                _fmt(r.extra["measurement"]["mean_width_abs_error_px"]),
                _fmt(r.extra["measurement"]["max_width_abs_error_px"]),
            ]
            for r in results
            if "measurement" in r.extra
        ]
        header = [
            "model",
            "dataset",
            "condition",
            "cracks (truth)",
            "cracks (predicted)",
            "length error",
            "mean-width |error| (px)",
            "max-width |error| (px)",
        ]
        doc = {"rows": [r.to_dict() for r in results if "measurement" in r.extra]}
        summary["measurement"] = [
            str(p)
            for p in write_table(
                out,
                "measurement",
                header,
                rows,
                doc,
                "Crack measurement on predicted vs true masks (length: total over the set; widths: mean per image "
                "where both masks have a crack)",
            )
        ]
    return summary


def _fmt(value: float | None, pct: bool = False) -> str:
    if value is None:
        return "–"
    return f"{100 * value:+.1f} %" if pct else f"{value:.2f}"


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"
