"""Timing a backend: the one loop that times ``backend.run`` (``cracksam bench`` and the runtime
cache behind ``--runtime auto``, which keeps the fastest export), and throughput with several
requests in flight."""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np

__all__ = ["time_backend", "time_throughput"]


def time_backend(backend: Any, batch: np.ndarray, iterations: int = 10, warmup: int = 2) -> dict[str, float]:
    """Latency of ``backend.run(batch)`` (median, p90, min, in ms) and throughput (images/s)."""
    for _ in range(warmup):
        backend.run(batch)
    times = []
    for _ in range(iterations):
        t0 = time.perf_counter()
        backend.run(batch)
        times.append(time.perf_counter() - t0)
    times.sort()
    median = statistics.median(times)
    p90 = times[min(len(times) - 1, int(round(0.9 * (len(times) - 1))))]
    return {
        "latency_ms_median": median * 1000,
        "latency_ms_p90": p90 * 1000,
        "latency_ms_min": times[0] * 1000,
        "images_per_s": batch.shape[0] / median,
        "iterations": iterations,
        "batch": int(batch.shape[0]),
    }


def time_throughput(backend: Any, batch: np.ndarray, in_flight: int = 2, requests: int = 8,
                    warmup: int = 1) -> dict[str, float]:
    """Throughput with ``in_flight`` requests of ``batch`` running at once (``requests`` in all,
    as for the tiles of a big photo or a folder of photos): images/s over the wall-clock time."""
    from cracksam.inference.inflight import run_many

    batches = [batch] * max(1, int(requests))
    for _ in range(warmup):
        run_many(backend, batches[: max(1, in_flight)], in_flight)
    t0 = time.perf_counter()
    run_many(backend, batches, in_flight)
    seconds = time.perf_counter() - t0
    return {"throughput_images_per_s": len(batches) * batch.shape[0] / seconds, "in_flight": in_flight,
            "throughput_requests": len(batches)}
