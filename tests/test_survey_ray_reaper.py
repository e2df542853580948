"""Local Ray ends with its driver: after ``predict --engine ray`` is SIGKILLed,
no process it started -- the raylet's ``ray::DashboardAgent`` and ``ray::RuntimeEnvAgent`` included,
which Ray itself leaves for about a minute -- is left running.  The watcher finds them two ways, each
tested on its own: by the mark in their environment (which Ray's renaming must leave readable), and
by descent from a marked process (for a child started with an environment of its own)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from .test_survey import _survey, dark_onnx  # noqa: F401  (the fixture)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the watcher reads /proc (Linux)")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended
    except OSError:
        return False


def _wait_gone(pids: list[int], seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not any(_alive(p) for p in pids):
            return []
        time.sleep(0.1)
    return [p for p in pids if _alive(p)]


_WATCHED = textwrap.dedent("""
    import json, os, signal, subprocess, sys, time
    from cracksam.survey.ray_reaper import MARKER, NOENV, Watcher, marked

    driver_died = sys.argv[1] == "1"
    os.environ.pop(NOENV, None)
    watcher = Watcher.start(poll_s=0.1)
    out = {"started": watcher is not None and os.environ.get(MARKER) == watcher.token
           and os.environ.get(NOENV) == "1"}
    ours = [subprocess.Popen(["sleep", "60"]) for _ in range(2)]  # started marked, as Ray's are
    # A marked process's child with an environment of its own (as ctypes.util starts ldconfig): the
    # watcher knows it by its descent, recorded while this "driver" lives.
    parent = subprocess.Popen(["sh", "-c", "env -i sleep 60 & echo $!; exec sleep 60"], stdout=subprocess.PIPE,
                              text=True)
    grandchild = int(parent.stdout.readline())
    watcher.unmark()
    out["unmarked"] = MARKER not in os.environ and NOENV not in os.environ
    other = subprocess.Popen(["sleep", "60"])  # started after: not ours to end
    time.sleep(1.5)  # for the watcher to record its processes (every 0.1 s here), and sh's child to exec
    out["marked"] = sorted(marked(watcher.token)) == sorted(p.pid for p in [*ours, parent])

    def alive(pid):
        try:
            with open(f"/proc/{pid}/stat") as fh:
                return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    # The driver's death is the pipe's end without "stop"; a normal end says "stop" first.
    watcher.stop(kill=driver_died)
    out["ours"] = [p.wait(timeout=5) if driver_died else p.poll() for p in [*ours, parent]]
    deadline = time.monotonic() + 5
    while driver_died and alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    out["grandchild"] = alive(grandchild)
    out["other"] = other.poll()
    out["watcher"] = watcher.proc.returncode
    for p in [*ours, parent, other]:
        p.kill()
        p.wait()
    if alive(grandchild):
        os.kill(grandchild, signal.SIGKILL)
    print(json.dumps(out))
""")


@pytest.mark.parametrize("driver_died", [True, False])
def test_the_watcher_ends_only_its_marked_processes_and_only_when_the_driver_dies(driver_died):
    # In a process of its own: setting and unsetting an environment variable is not thread-safe in C,
    # and the test process holds the threads of every runtime the suite loaded before (it crashed there).
    run = subprocess.run([sys.executable, "-c", _WATCHED, "1" if driver_died else "0"], capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0, run.stderr[-2000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["started"] and out["unmarked"] and out["marked"]
    assert out["ours"] == ([-signal.SIGKILL] * 3 if driver_died else [None] * 3)
    assert out["grandchild"] == (not driver_died)
    assert out["other"] is None
    assert out["watcher"] == 0


_DRIVER = textwrap.dedent("""
    import os, signal, sys, time
    from cracksam.inference.options import PredictOptions
    from cracksam.survey.engine import SurveyJob, run_survey
    from cracksam.survey.manifest import collect_inputs
    from cracksam.survey.rows import ImageOptions

    model, manifest, out = sys.argv[1:]
    job = SurveyJob(PredictOptions(model=model, runtime="torch", batch_size=1), ImageOptions(out=out, model_id="m"),
                    collect_inputs([], manifest), batch_size=1)

    def on_rows(rows):
        print("rows", flush=True)
        time.sleep(1.5)  # for the test to see every process of this Ray instance
        os.kill(os.getpid(), signal.SIGKILL)

    run_survey(job, "ray", ray_options={"workers": 1, "threads": 1}, on_rows=on_rows)  # Ray started here
""")


def _rays(name: str) -> bool:
    return name in ("raylet", "gcs_server") or name.startswith("ray::")


def _marked_whole(pid: int) -> bool | None:
    """Whether the process's environment reads back whole (not written over by its title) with the
    mark; None when it shows none (the process is ending, or being exec'ed)."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            environ = fh.read()
    except OSError:
        return None
    return not environ.startswith(b"\0") and b"\0CRACKSAM_RAY_RUN=" in b"\0" + environ if environ else None


@pytest.mark.slow
def test_no_ray_process_outlives_a_sigkilled_driver(tmp_path, dark_onnx):  # noqa: F811
    pytest.importorskip("ray.data")
    psutil = pytest.importorskip("psutil")
    manifest, _ = _survey(tmp_path, n=4)
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)}
    driver = subprocess.Popen([sys.executable, "-c", _DRIVER, str(dark_onnx), str(manifest), str(tmp_path / "out")],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seen: dict[int, str] = {}
    marks: dict[int, bool] = {}  # Ray's processes: marked, as last seen
    deadline = time.monotonic() + 300
    while driver.poll() is None and time.monotonic() < deadline:
        try:
            children = psutil.Process(driver.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            break
        for child in children:
            try:
                seen[child.pid] = child.name()  # the latest: agents rename themselves once started
            except psutil.NoSuchProcess:
                continue
            if _rays(seen[child.pid]) and (whole := _marked_whole(child.pid)) is not None:
                marks[child.pid] = whole
        time.sleep(0.1)
    if driver.poll() is None:
        driver.kill()
    stderr = driver.stderr.read().decode(errors="replace") if driver.stderr else ""
    assert driver.wait() == -signal.SIGKILL, stderr[-2000:]
    names = set(seen.values())
    assert {"raylet", "gcs_server", "ray::DashboardAgent", "ray::RuntimeEnvAgent"} <= names, names
    # The first identification on its own: the agents rename themselves with setproctitle, which wrote
    # over the environment, mark included, in about half the runs until SPT_NOENV was set for them.
    assert [seen[p] for p, ok in marks.items() if not ok] == []
    left = _wait_gone(list(seen), 10)
    assert left == [], {p: seen[p] for p in left}  # Ray alone leaves its two agents for about a minute
