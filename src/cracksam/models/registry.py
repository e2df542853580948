"""One registry of named models, in the style of timm's ``register_model`` / ``create_model``.

Model modules register into it (CrackSAM variants in :mod:`cracksam.models.cracksam`, conventional
networks through :func:`cracksam.models.segmodels.register_architecture` in :mod:`~cracksam.models.zoo`
and :mod:`~cracksam.models.zoo_thin`); this module imports none of them, so there is no import cycle.
:mod:`cracksam.models` imports every registering module, so any ``import cracksam.models.<x>`` sees
the whole registry.

* CrackSAM variants are named ``cracksam_<backbone>_<delta>`` (e.g. ``cracksam_vit_h_lora``);
  keyword arguments override fields of :class:`~cracksam.models.cracksam.CrackSAMConfig`.
* Conventional networks (students, baselines) carry their architecture name (e.g.
  ``hrnet_w18_fcn``); keyword arguments override fields of
  :class:`~cracksam.models.segmodels.SegModelConfig` (``image_size``, ``pretrained``).

Every model maps (B, 3, S, S) RGB in 0..255 to (B, 2, S, S) logits and has ``config.image_size``.
Each entry carries its metadata (:class:`ModelEntry`), so listing models builds none.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cracksam.errors import ConfigError

FAMILIES = ("cracksam", "segmodel")


@dataclass(frozen=True)
class ModelEntry:
    """A registered model name and what is known about it without building it.

    ``build(device=None, **overrides)`` returns the model (random weights).  ``family``:
    ``cracksam`` (SAM + a delta) or ``segmodel`` (a conventional network).  ``role``: ``cracksam``,
    ``student`` or ``baseline``.  ``delta``: the delta kind of a CrackSAM variant (``lora``,
    ``adapter+lora``...); ``None`` for conventional networks, which are trained whole.
    ``params_m``: the parameter count in millions where one is known without building (the
    paper's figure); ``cracksam info --model NAME`` counts exactly.  ``input_multiple``: the input
    side must be a multiple of it.  ``spec``: the family's own build description (an
    :class:`~cracksam.models.segmodels.ArchSpec` for conventional networks).
    """

    name: str
    build: Callable[..., Any]
    family: str
    role: str
    backbone: str
    description: str
    delta: str | None = None
    params_m: float | None = None
    default_image_size: int = 448
    default_inference_mode: str = "native"
    input_multiple: int = 32
    spec: Any = None

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"model {self.name!r}: family must be one of {FAMILIES}, got {self.family!r}")

    def metadata(self) -> dict[str, object]:
        """The entry as plain data (what ``cracksam info --list-models --json`` prints)."""
        return {"name": self.name, "family": self.family, "role": self.role, "backbone": self.backbone,
                "delta": self.delta, "description": self.description, "params_m": self.params_m,
                "paper_params_m": self.params_m, "default_image_size": self.default_image_size,
                "default_inference_mode": self.default_inference_mode, "multiple": self.input_multiple}


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(entry: ModelEntry, *, replace: bool = False) -> ModelEntry:
    """Add ``entry``; a name registered twice is a programming error unless ``replace``."""
    if entry.name in _REGISTRY and not replace:
        raise ValueError(f"model {entry.name!r} registered twice")
    _REGISTRY[entry.name] = entry
    return entry


def unregister_model(name: str) -> ModelEntry | None:
    """Remove a name (tests register throw-away architectures)."""
    return _REGISTRY.pop(name, None)


def list_models(pattern: str = "", *, family: str | None = None, role: str | None = None) -> list[str]:
    """Registered names containing ``pattern``, optionally of one family / role, sorted."""
    return sorted(n for n, e in _REGISTRY.items()
                  if pattern in n and (family is None or e.family == family) and (role is None or e.role == role))


def model_entry(name: str) -> ModelEntry:
    """The entry of ``name``; an unknown name is a :class:`ConfigError` listing the known ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown model {name!r}; known: {', '.join(list_models())}") from None


def is_model(name: str) -> bool:
    return name in _REGISTRY


def create_model(name: str, **kwargs: Any) -> Any:
    """Build a registered model (random weights, or ImageNet encoder weights with
    ``pretrained=True`` for conventional networks; load our checkpoints with ``load_model``)."""
    return model_entry(name).build(**kwargs)


# The name this package used before the registry carried metadata; kept for existing callers.
create = create_model
