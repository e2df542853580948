"""Settings of ``cracksam serve``: one frozen dataclass, filled from flags or environment variables.

Every field has an environment variable (:data:`ENV_VARS`) so the service can be configured the
same way in a container (``CRACKSAM_PORT=9000``) as on the command line (``--port 9000``); the
command line wins.  Nothing here imports FastAPI or torch, so the CLI can read settings cheaply.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any

from cracksam.config import help_meta
from cracksam.errors import ConfigError
from cracksam.inference_modes import check_mode, check_scale
from cracksam.threads import default_threads, default_workers

if TYPE_CHECKING:
    from cracksam.inference.options import PredictOptions

MIB = 1024 * 1024
#: 64 Mpx in flight: one 7000x7000 photo (~0.9 GB through decode, inference and encoding) at a time,
#: or many phone photos; bounded memory whatever is uploaded.
DEFAULT_INFLIGHT_PIXELS = 64_000_000

#: Field -> environment variable(s) read by :meth:`ServiceSettings.from_env` (first one set wins).
ENV_VARS: dict[str, tuple[str, ...]] = {
    "host": ("CRACKSAM_HOST",),
    "port": ("CRACKSAM_PORT",),
    "model": ("CRACKSAM_MODEL",),
    "base": ("CRACKSAM_BASE",),
    "device": ("CRACKSAM_DEVICE", "CRACKSAM_BACKEND"),
    "threads": ("CRACKSAM_THREADS",),
    "runtime": ("CRACKSAM_RUNTIME",),
    "workers": ("CRACKSAM_CONCURRENCY", "CRACKSAM_WORKERS"),  # --concurrency; CRACKSAM_WORKERS: the old name
    "mode": ("CRACKSAM_MODE",),
    "scale": ("CRACKSAM_SCALE",),
    "tile_overlap": ("CRACKSAM_TILE_OVERLAP",),
    "batch_size": ("CRACKSAM_BATCH_SIZE",),
    "threshold": ("CRACKSAM_THRESHOLD",),
    "max_upload_mb": ("CRACKSAM_MAX_UPLOAD_MB",),
    "max_pixels": ("CRACKSAM_MAX_PIXELS",),
    "timeout_s": ("CRACKSAM_TIMEOUT_S",),
    "max_pending": ("CRACKSAM_MAX_PENDING",),
    "model_id": ("CRACKSAM_MODEL_ID",),
    "trust": ("CRACKSAM_TRUST",),
    "max_inflight_upload_mb": ("CRACKSAM_MAX_INFLIGHT_UPLOAD_MB",),
    "max_inflight_pixels": ("CRACKSAM_MAX_INFLIGHT_PIXELS",),
    "client_upload_share": ("CRACKSAM_CLIENT_UPLOAD_SHARE",),
    "upload_idle_timeout_s": ("CRACKSAM_UPLOAD_IDLE_TIMEOUT_S",),
    "max_connections": ("CRACKSAM_MAX_CONNECTIONS",),
    "max_connections_per_client": ("CRACKSAM_MAX_CONNECTIONS_PER_CLIENT",),
    "header_timeout_s": ("CRACKSAM_HEADER_TIMEOUT_S",),
    "keep_alive_s": ("CRACKSAM_KEEP_ALIVE_S",),
    "log_level": ("CRACKSAM_LOG_LEVEL",),
}

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class ServiceSettings:
    """How the service loads its model and which requests it accepts.

    The limits exist because the service reads untrusted uploads: ``max_upload_mb`` bounds the
    bytes read (checked from ``Content-Length`` and again while the body streams in),
    ``max_pixels`` bounds the decoded image (checked from the image header, before decoding, so
    a small file that expands to gigabytes -- a decompression bomb -- is refused cheaply) and
    ``timeout_s`` bounds the time one request may take.  ``workers`` inference jobs run at once;
    ``max_pending`` more may wait before the service answers 503 (busy) instead of queueing
    without bound.

    Across requests: ``max_inflight_upload_mb`` bounds the upload bytes held at once (uploads are
    spooled to a temporary file, not kept in memory) and ``max_inflight_pixels`` the decoded pixels
    being processed at once (an image's whole-image arrays -- RGB, logits, probabilities, mask --
    cost ~20 bytes per pixel, on top of one forward pass per worker, which is capped at one
    2048x2048 window: :data:`~cracksam.service.served_model.PASS_PIXELS`); past either the service
    answers 503 with ``Retry-After``.  One client address may hold only ``client_upload_share`` of the
    upload budget, and an upload body that stalls for ``upload_idle_timeout_s`` is answered 408 and
    its bytes freed, so one client's stalled uploads cannot lock the others out.  At the
    connection level ``max_connections`` (all clients) and ``max_connections_per_client`` (one IP
    address; 0: no per-client cap) bound open sockets, ``header_timeout_s`` closes a connection
    whose request headers have not all arrived in time (slow-header attacks) and ``keep_alive_s``
    one that sits idle between requests.
    """

    host: str = "127.0.0.1"  # loopback: exposing the service is a deliberate choice (--host 0.0.0.0)
    port: int = 8000
    model: str | None = None  # None: the bundled default model
    base: str | None = None  # SAM base checkpoint for a delta checkpoint
    allow_random_base: bool = False
    device: str = "cpu"
    threads: int | None = None  # None: the cores shared among the workers (see cpu_threads)
    # torch here (a library default that never writes a cache); `cracksam serve` defaults to auto:
    # the fastest parity-checked export (cracksam.deployment.runtime_cache).
    runtime: str = "torch"
    workers: int = field(default_factory=default_workers)  # 2, at most one per core
    mode: str | None = None  # None: the model's own inference default (native / resize)
    scale: float | None = None  # None: the model's own (1 for conventional networks)
    tile_overlap: float = 0.25
    batch_size: int = 4
    threshold: float = 0.5
    max_upload_mb: float = 50.0
    max_pixels: int = 50_000_000
    timeout_s: float = 60.0
    max_pending: int = 32
    model_id: str | None = None  # None: derived from the model files' content
    trust: bool = False  # load checkpoint folders without checksums (--trust)
    max_inflight_upload_mb: float | None = None  # None: 256 MiB, or max_upload_mb when larger
    max_inflight_pixels: int | None = None  # None: DEFAULT_INFLIGHT_PIXELS, or max_pixels when larger
    client_upload_share: float = field(default=0.25, metadata=help_meta(
        "Fraction of the in-flight upload budget (max_inflight_upload_mb) one client address may hold at once, "
        "in (0, 1]; one upload of max_upload_mb always fits; 503 client_upload_budget past it.  Behind a reverse "
        "proxy every client has the proxy's address: set 1 there (no per-client cap)."))
    upload_idle_timeout_s: float = field(default=5.0, metadata=help_meta(
        "Seconds an upload's body may go without a byte arriving before it is answered 408 upload_stalled and "
        "its share of the upload budget freed."))
    max_connections: int = 256
    max_connections_per_client: int = 32
    header_timeout_s: float = 10.0
    keep_alive_s: float = 5.0
    log_level: str = "info"

    @property
    def cpu_threads(self) -> int:
        """Threads per inference: ``threads``, or the cores shared among ``workers`` so that
        concurrent requests never oversubscribe them (workers x threads <= cores)."""
        return self.threads if self.threads is not None else default_threads(self.workers)

    def predict_options(self) -> PredictOptions:
        """How the service opens its model (:func:`cracksam.inference.predictor.open_predictor`)."""
        from cracksam.inference.options import PredictOptions

        return PredictOptions(model=self.model, base=self.base, device=self.device, threads=self.cpu_threads,
                              allow_random_base=self.allow_random_base, trust=self.trust, runtime=self.runtime,
                              mode=self.mode, scale=self.scale, tile_overlap=self.tile_overlap,
                              batch_size=self.batch_size, threshold=self.threshold)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * MIB)

    @property
    def inflight_upload_bytes(self) -> int:
        """The budget of upload bytes held at once: one upload at the byte limit always fits."""
        mb = self.max_inflight_upload_mb if self.max_inflight_upload_mb is not None else max(256.0, self.max_upload_mb)
        return int(mb * MIB)

    @property
    def client_upload_bytes(self) -> int:
        """One client address's share of :attr:`inflight_upload_bytes`; one upload at the byte limit always fits."""
        return max(int(self.client_upload_share * self.inflight_upload_bytes), self.max_upload_bytes)

    @property
    def inflight_pixels(self) -> int:
        """The decoded-pixel budget: one image at the pixel limit always fits."""
        if self.max_inflight_pixels is not None:
            return self.max_inflight_pixels
        return max(DEFAULT_INFLIGHT_PIXELS, self.max_pixels)

    def validated(self) -> ServiceSettings:
        """``self`` after checking every value; raises :class:`ConfigError` naming the bad one."""
        if not self.host:
            raise ConfigError("host must not be empty")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be in 0..65535, got {self.port}")
        if self.runtime not in ("auto", "torch", "onnxruntime", "openvino"):
            raise ConfigError(f"runtime must be auto, torch, onnxruntime or openvino, got {self.runtime!r}")
        if self.mode is not None:
            check_mode(self.mode)
        if self.scale is not None:
            check_scale(self.scale)
        if not 0.0 <= self.tile_overlap < 1.0:
            raise ConfigError(f"tile overlap must be in [0, 1), got {self.tile_overlap}")
        if not 0.0 < self.threshold < 1.0:
            raise ConfigError(f"threshold must be in (0, 1), got {self.threshold}")
        for name in ("workers", "batch_size", "max_pixels"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name.replace('_', ' ')} must be >= 1, got {getattr(self, name)}")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"threads must be >= 1, got {self.threads}")
        if self.max_pending < 0:
            raise ConfigError(f"max pending must be >= 0, got {self.max_pending}")
        for name in ("max_connections",):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name.replace('_', ' ')} must be >= 1, got {getattr(self, name)}")
        if self.max_connections_per_client < 0:
            raise ConfigError(f"max connections per client must be >= 0 (0: no cap), got "
                              f"{self.max_connections_per_client}")
        if self.max_inflight_pixels is not None and self.max_inflight_pixels < self.max_pixels:
            raise ConfigError(f"max inflight pixels ({self.max_inflight_pixels}) must be >= max pixels "
                              f"({self.max_pixels}), or an image at the limit could never be processed")
        if self.max_inflight_upload_mb is not None and self.max_inflight_upload_mb < self.max_upload_mb:
            raise ConfigError(f"max inflight upload ({self.max_inflight_upload_mb:g} MiB) must be >= max upload "
                              f"({self.max_upload_mb:g} MiB), or an upload at the limit could never be received")
        if not (math.isfinite(self.client_upload_share) and 0.0 < self.client_upload_share <= 1.0):
            raise ConfigError(f"client upload share must be in (0, 1] (1: no per-client cap), got "
                              f"{self.client_upload_share}")
        for name in ("max_upload_mb", "timeout_s", "header_timeout_s", "keep_alive_s", "max_inflight_upload_mb",
                     "upload_idle_timeout_s"):
            value = getattr(self, name)
            if value is None:
                continue
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"{name.replace('_', ' ')} must be a positive number, got {value}")
        if self.max_upload_bytes < 1:
            raise ConfigError(f"max upload must be at least 1 byte, got {self.max_upload_mb} MiB")
        levels = ("critical", "error", "warning", "info", "debug", "trace")
        if self.log_level.lower() not in levels:
            raise ConfigError(f"log level must be one of {'/'.join(levels)}, got {self.log_level!r}")
        return self

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> ServiceSettings:
        """Settings from ``CRACKSAM_*`` environment variables (:data:`ENV_VARS`), then ``overrides``
        (keyword arguments that are not None), validated."""
        types = {f.name: f.type for f in fields(cls)}
        values: dict[str, Any] = {name: value for name, (value, _var) in env_settings(environ).items()}
        values.update({k: v for k, v in overrides.items() if v is not None})
        unknown = set(values) - set(types)
        if unknown:
            raise ConfigError(f"unknown service settings: {', '.join(sorted(unknown))}")
        return replace(cls(), **values).validated()


def env_settings(environ: Mapping[str, str] | None = None) -> dict[str, tuple[Any, str]]:
    """Field -> (value, variable) for the :data:`ENV_VARS` set in ``environ`` (first one set wins)."""
    environ = os.environ if environ is None else environ
    types = {f.name: f.type for f in fields(ServiceSettings)}
    values: dict[str, tuple[Any, str]] = {}
    for name, variables in ENV_VARS.items():
        for var in variables:
            raw = environ.get(var)
            if raw is not None and raw.strip() != "":
                values[name] = (_parse(raw.strip(), str(types[name]), var), var)
                break
    return values


def _parse(raw: str, type_name: str, var: str) -> Any:
    """An environment string as the field's type (the annotations are strings: ``"int | None"``)."""
    base = type_name.replace(" | None", "").strip()
    try:
        if base == "int":
            return int(raw)
        if base == "float":
            return float(raw)
        if base == "bool":
            low = raw.lower()
            if low in _TRUE or low in _FALSE:
                return low in _TRUE
            raise ValueError(raw)
    except ValueError:
        raise ConfigError(f"{var}={raw!r}: expected {'true/false' if base == 'bool' else 'a number'}") from None
    return raw
