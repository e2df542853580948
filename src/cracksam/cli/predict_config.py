"""The config tree of ``cracksam predict``: the predictor's options and what is written where.

Every option of the command is a key here (``predictor.threshold``, ``measure``, ``engine`` ...),
reachable from ``--config``, ``CRACKSAM_PREDICT__<KEY>`` variables, ``--set`` and the short flags
(:mod:`cracksam.cli.tree`).  The checks that need no file run once, in ``__post_init__``, whichever
way a value came; their messages name the flag.  Light: no torch, no numpy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cracksam.config import help_meta
from cracksam.errors import ConfigError
from cracksam.inference.options import PredictOptions
from cracksam.inference_modes import check_options
from cracksam.threads import check_threads

if TYPE_CHECKING:
    from cracksam.survey.outputs import ImageOptions

DEFAULT_MAX_PIXELS = 100_000_000  # 100 MP: above any phone or drone camera, below a decompression bomb
MIN_LENGTH = 10.0  # px: shorter skeleton branches are noise, not cracks
# Copy of cracksam.survey.engine.ENGINES (that module imports the survey rows and numpy).
ENGINES = ("plain", "ray")


@dataclass(frozen=True)
class PredictConfig:
    """``cracksam predict``: the images, the predictor, the outputs, and the survey engine."""

    inputs: list[str] = field(default_factory=list, metadata=help_meta(
        "Image files, folders or glob patterns (the command's INPUT arguments replace these)."))
    predictor: PredictOptions = field(default_factory=PredictOptions, metadata=help_meta("The model and how it runs."))
    out: str = field(default="predictions", metadata=help_meta("Output folder."))
    overlay: bool = field(default=False, metadata=help_meta("Also write <stem>_overlay.png."))
    prob: bool = field(default=False, metadata=help_meta(
        "Also write the crack probability map <stem>_prob.png (0-255)."))
    max_pixels: int = field(default=DEFAULT_MAX_PIXELS, metadata=help_meta("Refuse images with more pixels than this."))
    measure: bool = field(default=False, metadata=help_meta("Measure crack length/width/area on each mask."))
    mm_per_px: float | None = field(default=None, metadata=help_meta(
        "Pixel size in mm (with measure or report); None: lengths in pixels."))
    min_length: float | None = field(default=None, metadata=help_meta(
        f"Shortest crack kept by measure / report, px (None: {MIN_LENGTH:g})."))
    report: bool = field(default=False, metadata=help_meta(
        "Also inspect the masks: crack types, severity, HTML report, COCO/GeoJSON/CSV in OUT/report."))
    json: bool = field(default=False, metadata=help_meta("Print the summary as JSON."))
    progress: bool = field(default=True, metadata=help_meta("Show a progress bar."))
    engine: str = field(default="plain", metadata=help_meta(
        "plain: this process; ray: Ray Data actors (local, or a cluster with address)."))
    address: str | None = field(default=None, metadata=help_meta(
        "Ray cluster (auto, ray://head:10001); None: local.  Only with engine ray."))
    workers: int | None = field(default=None, metadata=help_meta(
        "Ray workers, each loading the model once (None: one per CPU / threads).  Only with engine ray."))
    manifest: str | None = field(default=None, metadata=help_meta(
        "CSV/Parquet: one image path per row (column path/image/file); other columns are carried to the table."))
    path_column: str | None = field(default=None, metadata=help_meta("The manifest's image path column."))
    table: bool = field(default=False, metadata=help_meta("Write results.parquet (resumable) with the plain engine."))
    csv: bool = field(default=False, metadata=help_meta("Also write the results table as results.csv."))

    def __post_init__(self) -> None:
        p = self.predictor
        check_options(p.mode, p.scale)
        check_threads(p.threads)
        if not (self.measure or self.report) and (self.mm_per_px is not None or self.min_length is not None):
            named = [o for o, v in (("--mm-per-px", self.mm_per_px), ("--min-length", self.min_length))
                     if v is not None]
            verb = "only applies" if len(named) == 1 else "only apply"
            raise ConfigError(f"{' and '.join(named)} {verb} with --measure or --report; add one (or drop them)")
        if self.max_pixels < 1:
            raise ConfigError(f"--max-pixels must be >= 1, got {self.max_pixels}")
        if self.mm_per_px is not None and (self.mm_per_px <= 0 or not math.isfinite(self.mm_per_px)):
            raise ConfigError(f"--mm-per-px must be a positive number, got {self.mm_per_px}")
        if self.engine not in ENGINES:
            raise ConfigError(f"--engine must be one of {', '.join(ENGINES)}, got {self.engine!r}")
        if self.engine != "ray" and (self.address is not None or self.workers is not None):
            raise ConfigError("--address and --workers only apply with --engine ray")
        if self.workers is not None and self.workers < 1:
            raise ConfigError(f"--workers must be >= 1, got {self.workers}")

    @property
    def survey(self) -> bool:
        """Whether the run is a survey (the results table, resumable; :mod:`cracksam.cli.survey`)."""
        return (self.engine != "plain" or self.manifest is not None or self.table or self.csv
                or self.path_column is not None)

    @property
    def min_length_px(self) -> float:
        return MIN_LENGTH if self.min_length is None else self.min_length

    def image_options(self, model_id: str = "model") -> ImageOptions:
        """What is written per photo (:func:`cracksam.survey.outputs.write_outputs`), plain run or survey."""
        from pathlib import Path

        from cracksam.survey.outputs import ImageOptions

        return ImageOptions(out=str(Path(self.out)), threshold=self.predictor.threshold, overlay=self.overlay,
                            prob=self.prob, measure=self.measure, mm_per_px=self.mm_per_px,
                            min_length=self.min_length_px, max_pixels=self.max_pixels, model_id=model_id)


__all__ = ["DEFAULT_MAX_PIXELS", "ENGINES", "MIN_LENGTH", "PredictConfig"]
