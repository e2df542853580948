"""Survey engines side by side: ``cracksam predict`` (plain), ``--table`` (plain, results table) and
``--engine ray`` on the same images, same model, same runtime and the same total CPU threads.

Each engine runs as its own ``cracksam predict`` process into a fresh output folder.  Measured:
wall-clock time of the whole command (start-up included: interpreter, model, Ray), images/s from
it, the summed per-image compute time (``seconds`` in the results table / summary), and peak memory:
the largest summed resident memory (RSS) of the command's whole process tree (for Ray: driver,
raylet, GCS and every worker), sampled every 0.1 s.  Every engine's masks are compared with the plain
predict's (byte for byte).

    python benchmarks/bench_survey.py [--images 500] [--size 320x480] [--threads 2] [--model default]
        [--source FOLDER] [--no-write]

Without ``--source``, synthetic crack images are written (cycled through ``--images``).  Results go to
``benchmarks/results/survey.json`` and the ``bench_survey`` section of ``RESULTS.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import psutil
from common import command_line, machine, today, write_section

from cracksam.data.synthetic import synthetic_pair

BATCH = 4  # images per forward pass / per Ray batch (predict's default)


def _images(folder: Path, n: int, size: tuple[int, int], source: Path | None) -> None:
    folder.mkdir(parents=True)
    files = sorted(p for p in source.iterdir() if p.suffix.lower() in {".jpg", ".png"}) if source else []
    for i in range(n):
        if files:
            shutil.copy(files[i % len(files)], folder / f"frame{i:05d}{files[i % len(files)].suffix}")
        else:
            rgb, _ = synthetic_pair(size, seed=i % 50)
            cv2.imwrite(str(folder / f"frame{i:05d}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def _tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def _run(args: list[str]) -> dict[str, Any]:
    """Run ``cracksam predict ARGS``: wall seconds, peak process-tree RSS, exit code."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "cracksam.cli.main", "predict", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak, ps = 0, psutil.Process(proc.pid)
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, _tree_rss(ps))
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    stop.set()
    sampler.join()
    return {"rc": proc.returncode, "wall_s": time.perf_counter() - start, "peak_rss_mb": peak / 2**20,
            "stdout": out, "stderr": err[-2000:]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=500)
    ap.add_argument("--size", default="320x480", help="HxW of synthetic images")
    ap.add_argument("--threads", type=int, default=2, help="total CPU threads of every engine")
    ap.add_argument("--model", default="default")
    ap.add_argument("--runtime", default="torch",
                    help="the same runtime for every engine (plain predict's default, auto, may pick an export)")
    ap.add_argument("--source", type=Path, help="folder of real images to cycle through")
    ap.add_argument("--no-write", action="store_true")
    a = ap.parse_args()
    h, w = (int(v) for v in a.size.split("x"))
    t = a.threads
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _images(root / "in", a.images, (h, w), a.source)
        common = [str(root / "in"), "--model", a.model, "--no-progress", "--json", "--batch-size", str(BATCH),
                  "--runtime", a.runtime]
        engines = {
            "plain predict": ["--threads", str(t)],
            "plain --table": ["--table", "--threads", str(t)],
            f"ray, 1 worker x {t} threads": ["--engine", "ray", "--workers", "1", "--threads", str(t)],
        }
        if t > 1:
            engines[f"ray, {t} workers x 1 thread"] = ["--engine", "ray", "--workers", str(t), "--threads", "1"]
        results: dict[str, Any] = {}
        for name, extra in engines.items():
            out = root / name.replace(" ", "_").replace(",", "")
            r = _run([*common, *extra, "--out", str(out)])
            if r["rc"] != 0:
                raise SystemExit(f"{name}: exit {r['rc']}\n{r['stderr']}")
            summary = json.loads(r.pop("stdout"))
            r.pop("stderr")
            r["images_per_s"] = a.images / r["wall_s"]
            # Steady state: after start-up (plain: model loaded; survey: first batch of rows back).
            if "results" in summary:
                r["steady_images_per_s"] = a.images / summary["total_seconds"]
            else:
                first = summary["seconds_to_first_rows"]
                r["steady_images_per_s"] = (a.images - BATCH) / (summary["total_seconds"] - first)
                r["startup_s"] = first
            if "results" in summary:
                r["compute_s"] = sum(x["seconds"] for x in summary["results"])
            else:
                import pyarrow.parquet as pq

                r["compute_s"] = float(sum(pq.read_table(out / "results.parquet", columns=["seconds"])
                                           .column("seconds").to_pylist()))
            masks = sorted(p.name for p in out.glob("*_mask.png"))
            base = root / "plain_predict"
            r["masks_equal_plain"] = len(masks) == a.images and all(
                (out / m).read_bytes() == (base / m).read_bytes() for m in masks)
            results[name] = r
            print(f"{name}: {r['images_per_s']:.2f} images/s, peak {r['peak_rss_mb']:.0f} MB", flush=True)
    plain = results["plain predict"]["images_per_s"]
    steady = results["plain predict"]["steady_images_per_s"]
    rows = "\n".join(
        f"| {n} | {r['wall_s']:.1f} | {r['images_per_s']:.2f} | {100 * (plain / r['images_per_s'] - 1):+.0f} % | "
        f"{r['steady_images_per_s']:.2f} | {100 * (steady / r['steady_images_per_s'] - 1):+.0f} % | "
        f"{r['compute_s'] / a.images * 1000:.0f} | {r['peak_rss_mb']:.0f} | "
        f"{'yes' if r['masks_equal_plain'] else 'NO'} |"
        for n, r in results.items()
    )
    load = os.getloadavg()[0]
    reduced = (f"\n**Reduced run**: {a.images} images instead of the issue's 500, {t} thread(s), because this "
               "2-core machine was shared with other jobs (load average ~10) while it ran; rerun with the defaults "
               "on a quiet machine for the real figures.\n" if a.images < 500 else "")
    body = f"""## Survey engines: plain predict vs Ray (`benchmarks/bench_survey.py`, issue 18)

- Command: `{command_line()}`
- Machine: {machine()}; load average at the end {load:.1f} (shared with other jobs)
- Date: {today()}
- {a.images} images {"from " + str(a.source) if a.source else f"(synthetic, {h}x{w})"}, model `{a.model}`,
  runtime `{a.runtime}`, {t} CPU thread(s) in total per engine, batch {BATCH}. *wall*: the whole command,
  start-up included (interpreter, model, for Ray the local instance and its workers); *steady*: after
  start-up (plain predict: its loop over the images; table engines: after the first batch of rows came back).

| engine | wall (s) | images/s | time vs plain | steady images/s | steady time vs plain | compute/image (ms) \
| peak RSS, tree (MB) | masks = plain |
|---|---:|---:|---:|---:|---:|---:|---:|---|
{rows}
{reduced}"""
    print(body)
    if not a.no_write:
        out = Path(__file__).with_name("results") / "survey.json"
        out.parent.mkdir(exist_ok=True)
        doc = {"images": a.images, "threads": t, "runtime": a.runtime, "results": results}
        out.write_text(json.dumps(doc, indent=2) + "\n")
        write_section("bench_survey", body)


if __name__ == "__main__":
    main()
