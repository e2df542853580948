"""The model behind the service: loading it once, naming it, and running it from many threads.

Thread safety of the runtimes (checked against their documentation and code):

* **PyTorch** (:class:`TorchBackend`): an ``nn.Module`` in eval mode under ``inference_mode``
  keeps no per-call state (CrackSAM, the SAM parts and the test models write no attributes in
  ``forward``), so concurrent calls are safe.  Each call uses torch's intra-op thread pool.
* **ONNX Runtime** (:class:`OnnxRuntimeBackend`): ``InferenceSession.run`` is documented as safe
  to call from several threads at once.
* **OpenVINO** (:class:`OpenVINOBackend`): the backend holds *one* ``InferRequest``, which must
  not be used by two threads at once.  :class:`ThreadLocalOpenVINO` gives each worker thread its
  own request from the shared compiled model (OpenVINO's documented way to run in parallel).
* Anything else (a custom backend): calls are serialised with a lock (:class:`LockedBackend`);
  slower, but never wrong.

The Predictor's own pre-processing (an albumentations ``Resize``) computes its parameters per
call, so it is shared safely too; the service's concurrency test checks the whole chain.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from cracksam.inference.backend_torch import check_input
from cracksam.inference.backends import OnnxRuntimeBackend, OpenVINOBackend, TorchBackend
from cracksam.inference.predictor import Predictor
from cracksam.inference.protocol import Backend
from cracksam.models.identity import model_id_for
from cracksam.service.settings import ServiceSettings

log = logging.getLogger("cracksam.service")

T = TypeVar("T")

THREAD_SAFE_BACKENDS: tuple[type, ...] = (TorchBackend, OnnxRuntimeBackend)


class _Delegating:
    """Forwards attribute reads (name, precision, image_size, model_config, path, ...) to ``inner``
    so a wrapped backend still produces the same model card."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, item: str) -> Any:
        return getattr(self.inner, item)


class LockedBackend(_Delegating):
    """A backend of unknown thread safety, called by one thread at a time."""

    def __init__(self, inner: Backend) -> None:
        super().__init__(inner)
        self._lock = threading.Lock()

    def run(self, x: np.ndarray) -> np.ndarray:
        with self._lock:
            return self.inner.run(x)


class ThreadLocalOpenVINO(_Delegating):
    """An :class:`OpenVINOBackend` whose calls use one ``InferRequest`` per calling thread, all
    created from the backend's compiled model (weights are shared, requests are cheap)."""

    def __init__(self, inner: OpenVINOBackend) -> None:
        super().__init__(inner)
        self._local = threading.local()

    def run(self, x: np.ndarray) -> np.ndarray:
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self.inner.compiled.create_infer_request()
        # The backend's own check: a dynamic-shape IR runs a photo at its own size, as predict does.
        x = check_input(x, int(self.inner.image_size), self.inner.multiple if self.inner.dynamic else None)
        result = request.infer({0: x})
        return np.array(result[self.inner.compiled.outputs[0]], dtype=np.float32, copy=True)


def thread_safe(predictor: Predictor) -> Predictor:
    """``predictor`` itself when its backend may be called concurrently, else a shallow copy whose
    backend is wrapped so that concurrent calls are correct (see the module docstring)."""
    backend = predictor.backend
    if isinstance(backend, THREAD_SAFE_BACKENDS) or isinstance(backend, (LockedBackend, ThreadLocalOpenVINO)):
        return predictor
    safe = copy.copy(predictor)
    safe.backend = ThreadLocalOpenVINO(backend) if isinstance(backend, OpenVINOBackend) else LockedBackend(backend)
    return safe


class Cancelled(Exception):
    """The client of a job went away, so its remaining forward passes were skipped."""


_job = threading.local()


@contextmanager
def cancellable(event: threading.Event) -> Iterator[None]:
    """Forward passes run by this thread inside the block stop (:class:`Cancelled`) once ``event`` is set."""
    _job.event = event
    try:
        yield
    finally:
        _job.event = None


def check_cancelled() -> None:
    event = getattr(_job, "event", None)
    if event is not None and event.is_set():
        raise Cancelled("the client went away")


class CancellableBackend(_Delegating):
    """Checks before every forward pass (each batch of tiles or windows) whether the request's
    client is still there; a job whose client went away stops at the next tile instead of
    computing a whole 7000x7000 photo for nobody."""

    def run(self, x: np.ndarray) -> np.ndarray:
        check_cancelled()
        return self.inner.run(x)


#: Most input pixels in one forward pass of the service: one 2048x2048 window.  A conventional
#: network holds ~270 bytes of activations per input pixel, so the predictor's default batch of four
#: 2048-px windows (native mode on a large photo) took ~5 GB for one request; capped, a pass
#: takes ~1.1 GB whatever is uploaded, and a worker never holds more than one.
PASS_PIXELS = 2048 * 2048


def service_predictor(predictor: Predictor) -> Predictor:
    """``predictor`` made safe to share between threads (:func:`thread_safe`), cancellable, and
    with as many windows per forward pass as fit :data:`PASS_PIXELS`."""
    safe = copy.copy(thread_safe(predictor))
    safe.backend = CancellableBackend(safe.backend)
    side = safe.window if safe.mode == "native" and safe.dynamic else safe.image_size
    safe.batch_size = max(1, min(safe.batch_size, PASS_PIXELS // (side * side)))
    return safe


@dataclass(frozen=True)
class LoadedModel:
    """A ready predictor and the id the service reports for it."""

    predictor: Predictor
    model_id: str


def load_service_model(settings: ServiceSettings) -> LoadedModel:
    """Open the model named by ``settings`` (the bundled default when none) as a thread-safe
    predictor.  Raises :class:`~cracksam.errors.CrackSAMError` for a missing or bad model."""
    from cracksam.deployment.runtime_cache import describe_choice, select_backend
    from cracksam.inference.predictor import open_predictor

    # The one door: None / "default" is the bundled model, a run folder its best/.
    predictor = open_predictor(settings.predict_options(), select_backend)
    path = predictor.model_path
    # One forward pass before declaring the model ready: a model that loads but cannot run fails
    # here (reported by /health and `cracksam serve`), and the first request pays no warm-up.
    predictor.predict_one(np.zeros((32, 32, 3), np.uint8))
    logging.getLogger("cracksam.service").info(describe_choice(predictor.runtime_info))
    model_id = settings.model_id or model_id_for(predictor.describe(), path)
    return LoadedModel(service_predictor(predictor), model_id)


class Busy(Exception):
    """More jobs are waiting than the service allows (``max_pending``)."""


class JobRunner:
    """Runs blocking jobs (decode, inference, encoding) in a bounded thread pool, so the event loop
    keeps answering (health checks, other uploads) while a model computes.

    ``workers`` jobs run at once; up to ``max_pending`` more wait.  A job that outlives its
    timeout cannot be killed (Python threads cannot be); the caller gets
    :class:`asyncio.TimeoutError`, the job finishes in the background and keeps counting as
    pending until then, so a stream of slow requests leads to 503 (busy), not to unbounded work.

    Micro-batching (running concurrent requests as one batch) is not done: each request is one
    forward pass.  Correctness first; on CPU a batch gains little over parallel single calls.
    """

    def __init__(self, workers: int, max_pending: int) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cracksam-infer")
        self._limit = workers + max_pending
        self._active = 0
        self._lock = threading.Lock()
        self.done = 0  # jobs that ran to the end (or failed on their input)
        self.cancelled = 0  # jobs skipped or stopped because their client went away

    @property
    def active(self) -> int:
        """Jobs submitted and not finished (running or waiting)."""
        return self._active

    def _release(self, future: Future[Any] | None) -> None:
        with self._lock:
            self._active -= 1
            exc = future.exception() if future is not None and not future.cancelled() else None
            if isinstance(exc, Cancelled):
                self.cancelled += 1
            elif future is not None:
                self.done += 1

    async def run(self, fn: Callable[[], T], timeout: float) -> T:
        with self._lock:
            if self._active >= self._limit:
                raise Busy(f"{self._active} requests are being processed or waiting (limit {self._limit})")
            self._active += 1
        try:
            future = self._pool.submit(fn)
        except BaseException:
            self._release(None)
            raise
        future.add_done_callback(self._release)
        return await asyncio.wait_for(asyncio.wrap_future(future), timeout)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
