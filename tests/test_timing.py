"""The one timing loop (``cracksam.deployment.timing.time_backend``), used by ``cracksam bench``
and by the runtime cache's ms per image, on a fake clock."""

from __future__ import annotations

import time

import numpy as np
import pytest

from cracksam.deployment import runtime_cache
from cracksam.deployment.timing import time_backend


class Clocked:
    """A backend whose runs take the given seconds on a fake clock, in turn."""

    def __init__(self, monkeypatch, seconds: list[float]) -> None:
        self.now, self.seconds, self.calls = 100.0, list(seconds), 0
        monkeypatch.setattr(time, "perf_counter", lambda: self.now)

    def run(self, x: np.ndarray) -> np.ndarray:
        self.now += self.seconds[self.calls]
        self.calls += 1
        return x


def test_time_backend_warms_up_then_reports_median_p90_min_and_rate(monkeypatch):
    backend = Clocked(monkeypatch, [9.0, 9.0, 0.004, 0.001, 0.003, 0.002, 0.010])
    t = time_backend(backend, np.zeros((2, 3, 4, 4), np.float32), iterations=5, warmup=2)
    assert backend.calls == 7  # the two warm-up runs are not timed
    assert t["latency_ms_median"] == pytest.approx(3.0)
    assert t["latency_ms_p90"] == pytest.approx(10.0) and t["latency_ms_min"] == pytest.approx(1.0)
    assert t["images_per_s"] == pytest.approx(2 / 0.003)
    assert (t["iterations"], t["batch"]) == (5, 2)


def test_the_runtime_cache_times_with_the_same_loop(monkeypatch):
    """ms per image as before the loops were one: one warm-up run, the median of three, per image."""
    backend = Clocked(monkeypatch, [9.0, 0.006, 0.002, 0.004])
    assert runtime_cache._ms_per_image(backend, np.zeros((2, 3, 4, 4), np.float32)) == pytest.approx(2.0)
    assert backend.calls == 4
    used = []

    def spy(*args, **kwargs):
        used.append(kwargs)
        return time_backend(*args, **kwargs)

    monkeypatch.setattr(runtime_cache, "time_backend", spy)
    runtime_cache._ms_per_image(Clocked(monkeypatch, [1.0] * 4), np.zeros((1, 3, 4, 4), np.float32))
    assert used == [{"iterations": 3, "warmup": 1}]
