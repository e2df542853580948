"""Severity of a crack from its width: named, configurable sets of width bands.

Built-in schemes (``--severity NAME``), with the source of their limits:

* ``astm-d6433`` (asphalt pavement, the default): ASTM D6433-20, *Standard Practice for Roads and
  Parking Lots Pavement Condition Index Surveys*, longitudinal & transverse cracking: low = mean
  width of a non-filled crack < 10 mm (3/8 in), medium = 10 to 76 mm (3 in), high > 76 mm.  Only the
  width part of the definition: the standard also looks at crack filler and the cracking around
  the crack, which a mask does not show.
* ``concrete`` (reinforced / prestressed concrete): EN 1992-1-1:2004 (Eurocode 2) Table 7.1N,
  recommended limits of the maximum crack width w_max: 0.2 mm (prestressed members, exposure
  XC2-XC4) and 0.3 mm (reinforced members, XC2-XS3); ACI 224R-01 Table 4.1 gives 0.30 mm for
  humid air or soil.  low = max width <= 0.2 mm, medium = 0.2-0.3 mm, high > 0.3 mm.
* ``pixels``: used when no pixel size is known (widths in px: < 3, 3-8, > 8).  These are
  cracksam's own bands for ranking cracks within one survey; no standard grades widths in pixels,
  and every output that uses them says so.

A custom scheme is a JSON or YAML file: ``{"name": ..., "unit": "mm" | "px", "width": "mean" |
"median" | "max", "closed": "left" | "right", "bands": [{"label": "low", "upper": 0.1}, ...,
{"label": "high"}], "source": "..."}``; bands in increasing order, the last without ``upper``.
``closed`` says which end of each interval belongs to it: ``left`` = [a, b), ``right`` = (a, b].
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cracksam.errors import ConfigError
from cracksam.measurement import Crack

__all__ = ["SCHEMES", "Band", "Grade", "SeverityScheme", "effective_scheme", "grade", "load_scheme",
           "severity_basis", "severity_headline"]


@dataclass(frozen=True)
class Band:
    label: str
    upper: float | None  # None: open-ended (the last band)


@dataclass(frozen=True)
class SeverityScheme:
    name: str
    unit: str  # "mm" or "px"
    width: str  # which width statistic: "mean", "median" or "max"
    bands: tuple[Band, ...]
    source: str
    closed: str = "left"

    def __post_init__(self) -> None:
        where = f"severity scheme {self.name!r}"
        if self.unit not in ("mm", "px"):
            raise ConfigError(f"{where}: unit must be 'mm' or 'px', got {self.unit!r}")
        if self.width not in ("mean", "median", "max"):
            raise ConfigError(f"{where}: width must be 'mean', 'median' or 'max', got {self.width!r}")
        if self.closed not in ("left", "right"):
            raise ConfigError(f"{where}: closed must be 'left' or 'right', got {self.closed!r}")
        if len(self.bands) < 1:
            raise ConfigError(f"{where}: needs at least one band")
        labels = [b.label for b in self.bands]
        if len(set(labels)) != len(labels) or not all(isinstance(x, str) and x for x in labels):
            raise ConfigError(f"{where}: band labels must be distinct non-empty strings, got {labels}")
        uppers = [b.upper for b in self.bands[:-1]]
        if self.bands[-1].upper is not None:
            raise ConfigError(f"{where}: the last band must be open-ended (no 'upper')")
        if any(u is None or not math.isfinite(u) or u <= 0 for u in uppers):
            raise ConfigError(f"{where}: every band but the last needs a positive 'upper', got {uppers}")
        if any(b <= a for a, b in zip(uppers, uppers[1:], strict=False)):  # type: ignore[operator]
            raise ConfigError(f"{where}: band limits must increase, got {uppers}")

    @property
    def labels(self) -> list[str]:
        return [b.label for b in self.bands]

    def describe(self) -> list[str]:
        """Each band as text, e.g. ``low: mean width < 10 mm``."""
        out, lower = [], None
        lt, ge = ("<", ">=") if self.closed == "left" else ("<=", ">")
        for band in self.bands:
            w = f"{self.width} width"
            if band.upper is None:
                text = f"{w} {ge} {lower:g} {self.unit}" if lower is not None else f"any {w}"
            elif lower is None:
                text = f"{w} {lt} {band.upper:g} {self.unit}"
            else:
                low = "<=" if self.closed == "left" else "<"
                text = f"{lower:g} {self.unit} {low} {w} {lt} {band.upper:g} {self.unit}"
            out.append(f"{band.label}: {text}")
            lower = band.upper
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "unit": self.unit, "width": self.width, "closed": self.closed,
                "bands": [{"label": b.label, "upper": b.upper} for b in self.bands],
                "source": self.source, "rules": self.describe()}


def _bands(*items: tuple[str, float | None]) -> tuple[Band, ...]:
    return tuple(Band(label, upper) for label, upper in items)


SCHEMES: dict[str, SeverityScheme] = {
    "astm-d6433": SeverityScheme(
        "astm-d6433", "mm", "mean", _bands(("low", 10.0), ("medium", 76.0), ("high", None)),
        "ASTM D6433-20, longitudinal & transverse cracking severity levels (width part only): "
        "low < 10 mm (3/8 in), medium 10-76 mm (3 in), high > 76 mm; filler condition and "
        "surrounding cracking are not seen by a mask", closed="left"),
    "concrete": SeverityScheme(
        "concrete", "mm", "max", _bands(("low", 0.2), ("medium", 0.3), ("high", None)),
        "EN 1992-1-1:2004 Table 7.1N recommended w_max: 0.2 mm (prestressed, XC2-XC4), 0.3 mm "
        "(reinforced, XC2-XS3); ACI 224R-01 Table 4.1: 0.30 mm (humid air, soil)", closed="right"),
    "pixels": SeverityScheme(
        "pixels", "px", "mean", _bands(("low", 3.0), ("medium", 8.0), ("high", None)),
        "no standard: cracksam's own pixel bands, for ranking the cracks of one survey when no pixel "
        "size is known", closed="left"),
}
DEFAULT_SCHEME = "astm-d6433"


def load_scheme(spec: str | SeverityScheme | None) -> SeverityScheme:
    """A built-in scheme by name, a scheme object, or a JSON/YAML file describing one."""
    if spec is None:
        return SCHEMES[DEFAULT_SCHEME]
    if isinstance(spec, SeverityScheme):
        return spec
    if spec in SCHEMES:
        return SCHEMES[spec]
    path = Path(spec)
    if not path.is_file():
        raise ConfigError(f"--severity {spec!r}: neither a built-in scheme ({', '.join(SCHEMES)}) nor a file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--severity {spec}: cannot read the scheme ({exc})") from None
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"--severity {spec}: not valid YAML ({str(exc).splitlines()[0]})") from None
    else:
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise ConfigError(f"--severity {spec}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("bands"), list):
        raise ConfigError(f"--severity {spec}: expected an object with a 'bands' list")
    unknown = set(doc) - {"name", "unit", "width", "closed", "bands", "source"}
    if unknown:
        raise ConfigError(f"--severity {spec}: unknown key(s) {sorted(unknown)}")
    try:
        bands = tuple(Band(str(b["label"]), None if b.get("upper") is None else float(b["upper"]))
                      for b in doc["bands"])
    except (TypeError, KeyError, ValueError):
        raise ConfigError(f"--severity {spec}: bands need a 'label' and (but the last) a numeric 'upper'") from None
    return SeverityScheme(str(doc.get("name", path.stem)), str(doc.get("unit", "mm")), str(doc.get("width", "mean")),
                          bands, str(doc.get("source", f"user scheme {path.name}")), str(doc.get("closed", "left")))


def effective_scheme(scheme: SeverityScheme, mm_per_px: float | None) -> tuple[SeverityScheme, str | None]:
    """The scheme that can be applied: a mm scheme falls back to ``pixels`` without a pixel size,
    with the note saying so."""
    if scheme.unit == "mm" and mm_per_px is None:
        return SCHEMES["pixels"], (f"no pixel size known: severity graded in pixel bands (scheme 'pixels', no "
                                   f"standard); {scheme.name!r} needs millimetres: give --mm-per-px or "
                                   "reference points")
    return scheme, None


def severity_basis(scheme: SeverityScheme, mm_per_px: float | None) -> str | None:
    """What a grade of ``scheme`` (the scheme applied) rests on, when it is not a width in mm: pixel
    bands are no standard and say nothing about real widths, so a grade in them is never shown bare."""
    if scheme.unit != "px":
        return None
    return "pixel bands; no scale given" if mm_per_px is None else "pixel bands"


def severity_headline(label: str | None, scheme: SeverityScheme, mm_per_px: float | None) -> str:
    """A severity as a headline: ``high``, ``high (pixel bands; no scale given)`` or ``none``."""
    basis = severity_basis(scheme, mm_per_px)
    if label is None:
        return "none"
    return f"{label} ({basis})" if basis else label


@dataclass(frozen=True)
class Grade:
    label: str
    rank: int  # 0 = the lowest band
    width: float  # the width graded, in ``unit``
    unit: str


def grade(crack: Crack, scheme: SeverityScheme) -> Grade:
    """The band of ``crack``'s width; a mm scheme needs the crack's ``*_mm`` widths (use
    :func:`effective_scheme` first)."""
    value = getattr(crack, f"{scheme.width}_width_{scheme.unit}")
    if value is None:
        raise ConfigError(f"severity scheme {scheme.name!r} grades in mm but the crack has no mm widths")
    for rank, band in enumerate(scheme.bands):
        if band.upper is None:
            return Grade(band.label, rank, float(value), scheme.unit)
        # A width on a limit belongs where ``closed`` says, despite float error (6 px x 0.05 mm
        # reads 0.30000000000000004 mm): compare within a relative 1e-9.
        eps = 1e-9 * max(abs(band.upper), 1.0)
        if (value < band.upper - eps) if scheme.closed == "left" else (value <= band.upper + eps):
            return Grade(band.label, rank, float(value), scheme.unit)
    raise AssertionError("unreachable: the last band is open-ended")  # pragma: no cover
