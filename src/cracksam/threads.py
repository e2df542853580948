"""CPU thread defaults shared by every command and the HTTP service (imports nothing heavy).

PyTorch, ONNX Runtime and OpenVINO each default to one thread per core.  Several inferences at
once (``serve``'s workers) that each do so oversubscribe the cores, and on a busy machine even one
inference with every core waits on the others' work: measured on a loaded 2-core machine, ``bench``
took 1606 ms per image with 2 threads and 178 ms with 1.  Defaults therefore keep
``workers x threads <= cores`` and are passed to the runtime explicitly, so every runtime uses the
same figure and commands can show it.
"""

from __future__ import annotations

import os

from cracksam.errors import ConfigError


def cpu_cores() -> int:
    """Logical CPUs this process may use (its affinity mask where the OS has one)."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS and Windows have no affinity mask
        n = 0
    return max(1, min(n or os.cpu_count() or 1, os.cpu_count() or n or 1))


def default_workers(limit: int = 2) -> int:
    """Concurrent inferences of the service when none is named: ``limit``, at most one per core."""
    return max(1, min(limit, cpu_cores()))


def default_threads(workers: int = 1) -> int:
    """Threads per runtime when none is named: the cores shared among ``workers``, at least one."""
    return max(1, cpu_cores() // max(1, workers))


def check_threads(threads: int | None, option: str = "--threads") -> int | None:
    """``threads`` unchanged when None (a default is picked) or >= 1; a one-line error otherwise
    (0 reaches the runtimes, which answer with a traceback)."""
    if threads is not None and (isinstance(threads, bool) or threads < 1):
        raise ConfigError(f"{option} must be >= 1, got {threads}")
    return threads


def resolve_threads(threads: int | None, workers: int = 1, option: str = "--threads") -> int:
    """The threads a command runs with: ``threads`` checked, else :func:`default_threads`."""
    checked = check_threads(threads, option)
    return checked if checked is not None else default_threads(workers)


__all__ = ["check_threads", "cpu_cores", "default_threads", "default_workers", "resolve_threads"]
