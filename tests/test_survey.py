"""Survey mode of ``cracksam predict``: results table, manifests, resumption, interruption, Ray.

The Ray tests share one local Ray instance (2 CPUs, started once for the module) and are slow on
a small machine (worker start-up); the rest run the same code in this process.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest

from cracksam.cli.main import main
from cracksam.inference.options import PredictOptions
from cracksam.survey.rows import TIMING_COLUMNS

from ._models import DarknessModel

pq = pytest.importorskip("pyarrow.parquet")

N_GOOD = 6


@pytest.fixture(scope="module")
def dark_onnx(tmp_path_factory) -> Path:
    """A fixed model (dark pixels are cracks) as ONNX: deterministic, quick to open in every worker."""
    from cracksam.deployment.export import export_onnx

    return export_onnx(DarknessModel(64), tmp_path_factory.mktemp("model") / "dark.onnx")


def _survey(root: Path, n: int = N_GOOD) -> tuple[Path, list[dict]]:
    """``n`` road images with a dark crack, one corrupt file, and a CSV manifest with extra columns."""
    folder = root / "frames"
    folder.mkdir(parents=True)
    rows = []
    for i in range(n):
        img = np.full((48 + 8 * i, 80, 3), 190, np.uint8)
        cv2.line(img, (0, 5 + 3 * i), (79, 40), (20, 20, 20), 1 + i % 3)
        cv2.imwrite(str(folder / f"f{i:03d}.png"), img)
        rows.append({"path": f"frames/f{i:03d}.png", "chainage_m": 100 * i, "lat": 52.0 + i / 1000,
                     "camera": f"cam{i % 2}"})
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    rows.insert(2, {"path": "frames/broken.png", "chainage_m": 999, "lat": 0.5, "camera": "camX"})
    manifest = root / "manifest.csv"
    with manifest.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return manifest, rows


def _rows(out: Path) -> list[dict]:
    return pq.read_table(out / "results.parquet").to_pylist()


def _comparable(rows: list[dict], out: Path) -> list[dict]:
    """Rows without timings and with the mask path relative to its folder, sorted by path."""
    keep = []
    for r in rows:
        r = {k: v for k, v in r.items() if k not in TIMING_COLUMNS}
        r["mask"] = r["mask"] and str(Path(r["mask"]).relative_to(out))
        keep.append(r)
    return sorted(keep, key=lambda r: r["path"])


def _predict(args: list[str], dark_onnx: Path) -> int:
    return main(["predict", "--model", str(dark_onnx), "--no-progress", *args])


def test_plain_table_carries_columns_records_errors_and_matches_predict(tmp_path, dark_onnx, capsys):
    manifest, written = _survey(tmp_path)
    out = tmp_path / "out"
    assert _predict(["--manifest", str(manifest), "--out", str(out), "--csv", "--measure"], dark_onnx) == 1
    err = capsys.readouterr().err
    assert "broken.png" in err
    rows = _rows(out)
    assert [r["path"] for r in rows] == [w["path"] for w in written]  # manifest order, each image once
    for r, w in zip(rows, written, strict=True):
        # Carried through with their types (numbers stay numbers).
        assert (r["chainage_m"], r["lat"], r["camera"]) == (w["chainage_m"], pytest.approx(w["lat"]), w["camera"])
    bad = rows[2]
    assert bad["status"] == "error" and "broken.png" in bad["error"] and bad["mask"] is None
    good = [r for r in rows if r["status"] == "ok"]
    assert len(good) == N_GOOD and all(r["error"] is None and r["crack_pixels"] > 0 for r in good)
    assert len({r["model_id"] for r in rows}) == 1 and rows[0]["model_id"].startswith("dark-")
    assert all(r["crack_fraction"] == r["crack_pixels"] / (r["width"] * r["height"]) for r in good)
    assert all(r["n_cracks"] is not None for r in good) and sum(r["n_cracks"] for r in good) >= N_GOOD // 2
    assert max(r["total_length_px"] for r in good) > 40  # --measure's totals are columns
    assert all((out / r["measure_report"]).is_file() for r in good) and bad["n_cracks"] is None
    assert (out / "results.csv").read_text().count("\n") == len(rows) + 1
    assert not (out / "results.parts").exists() and not list(out.glob(".*.tmp"))
    # The same masks as the plain predict over the folder.
    classic = tmp_path / "classic"
    assert _predict([str(tmp_path / "frames"), "--out", str(classic)], dark_onnx) == 1
    for r in good:
        name = Path(r["mask"]).name
        assert (out / name).read_bytes() == (classic / name).read_bytes(), name
        assert cv2.imread(r["mask"], cv2.IMREAD_UNCHANGED).shape == (r["height"], r["width"])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["images"] == N_GOOD and summary["failed"] == 1 and summary["table_rows"] == N_GOOD + 1


def test_rerun_skips_done_images_and_redoes_changed_ones(tmp_path, dark_onnx, capsys):
    manifest, written = _survey(tmp_path)
    out = tmp_path / "out"
    args = ["--manifest", str(manifest), "--out", str(out), "--json"]
    _predict(args, dark_onnx)
    first = {r["path"]: r for r in _rows(out)}
    capsys.readouterr()
    _predict(args, dark_onnx)
    summary = json.loads(capsys.readouterr().out)
    assert summary["processed"] == 0 and summary["skipped"] == N_GOOD + 1
    changed = tmp_path / "frames" / "f001.png"
    st = changed.stat()
    os.utime(changed, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # same bytes, new mtime: done again
    _predict(args, dark_onnx)
    summary = json.loads(capsys.readouterr().out)
    assert summary["processed"] == 1 and summary["skipped"] == N_GOOD
    rows = _rows(out)
    assert sorted(r["path"] for r in rows) == sorted(w["path"] for w in written)  # still one row per image
    again = {r["path"]: r for r in rows}["frames/f001.png"]
    assert again["mtime_ns"] == st.st_mtime_ns + 10**9 and again["key"] != first["frames/f001.png"]["key"]


def test_interrupt_keeps_the_table_whole_and_rerun_finishes(tmp_path, dark_onnx):
    from cracksam.inference.predictor import Predictor
    from cracksam.survey.engine import SurveyJob, run_survey
    from cracksam.survey.manifest import collect_inputs
    from cracksam.survey.rows import ImageOptions

    manifest, written = _survey(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    spec = PredictOptions(model=str(dark_onnx), runtime="torch", batch_size=1)
    job = SurveyJob(spec, ImageOptions(out=str(out), model_id="m"), collect_inputs([], manifest),
                    batch_size=1, part_rows=2)

    class CtrlC(Predictor):
        calls = 0

        def predict(self, images):
            CtrlC.calls += 1
            if CtrlC.calls == 4:  # the user presses Ctrl-C during the 4th good image
                raise KeyboardInterrupt
            return super().predict(images)

    result = run_survey(job, predictor=CtrlC.from_path(spec.model, batch_size=1))
    assert result.interrupted and result.processed == 4  # 3 good + the broken one (it never reaches predict)
    assert len(_rows(out)) == 4 and not (out / "results.parts").exists()
    result = run_survey(job)
    assert not result.interrupted and (result.skipped, result.processed) == (4, N_GOOD + 1 - 4)
    assert sorted(r["path"] for r in _rows(out)) == sorted(w["path"] for w in written)


def test_survey_options_are_checked(tmp_path, dark_onnx, capsys):
    manifest, _ = _survey(tmp_path)
    out = ["--out", str(tmp_path / "o")]
    no_path = tmp_path / "no_path.csv"
    no_path.write_text("frame,lat\na.png,1\n")
    clash = tmp_path / "clash.csv"
    clash.write_text("path,status\nframes/f000.png,x\n")
    for args, needle in [
        (["--manifest", str(no_path)], "--path-column"),
        (["--manifest", str(no_path), "--path-column", "image"], "not a column"),
        (["--manifest", str(tmp_path / "missing.csv")], "file not found"),
        (["--manifest", str(clash)], "status"),
        (["--manifest", str(manifest), str(tmp_path / "frames")], "not both"),
        (["--manifest", str(manifest), "--workers", "2"], "--engine ray"),
        (["--manifest", str(manifest), "--engine", "spark"], "--engine"),
        (["--manifest", str(manifest), "--engine", "ray", "--workers", "0"], "--workers"),
    ]:
        assert _predict(args + out, dark_onnx) == 2, args
        assert needle in capsys.readouterr().err, args


def test_engine_ray_without_ray_says_how_to_install(tmp_path, dark_onnx, capsys, monkeypatch):
    manifest, _ = _survey(tmp_path)
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as if it were not installed
    monkeypatch.setitem(sys.modules, "ray.data", None)
    rc = _predict(["--manifest", str(manifest), "--engine", "ray", "--out", str(tmp_path / "o")], dark_onnx)
    err = capsys.readouterr().err
    assert rc == 2 and 'pip install "cracksam[distributed]"' in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


# -- Ray ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ray_address():
    """One local Ray instance with 2 CPUs for the module; drivers in other processes join it."""
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    src = str(Path(__file__).resolve().parents[1] / "src")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)
    os.environ.setdefault("RAY_worker_niceness", "0")  # as the engine's own local start (ray_engine._start)
    context = ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield context.address_info["gcs_address"]
    ray.shutdown()


@pytest.mark.slow
def test_ray_gives_the_plain_engines_rows_and_masks(tmp_path, dark_onnx, ray_address, capsys):
    manifest, _ = _survey(tmp_path)
    plain, on_ray = tmp_path / "plain", tmp_path / "ray"
    common = ["--manifest", str(manifest), "--batch-size", "2", "--threads", "1"]
    assert _predict([*common, "--out", str(plain)], dark_onnx) == 1
    assert _predict([*common, "--out", str(on_ray), "--engine", "ray", "--workers", "2"], dark_onnx) == 1
    assert "broken.png" in capsys.readouterr().err
    a, b = _rows(plain), _rows(on_ray)
    assert len(b) == N_GOOD + 1 and [r["status"] for r in b].count("error") == 1
    assert _comparable(a, plain) == _comparable(b, on_ray)  # carried columns, measurements, keys: all equal
    for r in a:
        if r["mask"]:
            name = Path(r["mask"]).name
            assert (plain / name).read_bytes() == (on_ray / name).read_bytes(), name


_KILLED_DRIVER = textwrap.dedent("""
    import os, signal, sys
    from cracksam.inference.options import PredictOptions
    from cracksam.survey.engine import SurveyJob, run_survey
    from cracksam.survey.manifest import collect_inputs
    from cracksam.survey.rows import ImageOptions

    model, manifest, out, address = sys.argv[1:]
    job = SurveyJob(PredictOptions(model=model, runtime="torch", batch_size=1), ImageOptions(out=out, model_id="m"),
                    collect_inputs([], manifest), batch_size=1, part_rows=3, part_seconds=3600)
    seen = []

    def on_rows(rows):
        seen.extend(rows)
        if len(seen) >= 5:  # 3 rows in a table part, 2 only in memory (their masks written)
            os.kill(os.getpid(), signal.SIGKILL)

    run_survey(job, "ray", ray_options={"address": address, "workers": 2, "threads": 1}, on_rows=on_rows)
""")


@pytest.mark.slow
def test_driver_killed_mid_run_then_rerun_does_every_image_once(tmp_path, dark_onnx, ray_address):
    from cracksam.survey.engine import SurveyJob, run_survey
    from cracksam.survey.manifest import collect_inputs
    from cracksam.survey.rows import ImageOptions

    manifest, written = _survey(tmp_path, n=12)
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.run([sys.executable, "-c", _KILLED_DRIVER, str(dark_onnx), str(manifest), str(out),
                           ray_address], capture_output=True, text=True, timeout=600)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert not (out / "results.parquet").exists()  # killed before the end: only parts
    recorded = sum(pq.read_table(p).num_rows for p in (out / "results.parts").glob("part-*.parquet"))
    assert recorded == 3 and len(list(out.glob("*_mask.png"))) >= 5  # 2 rows were lost with the driver
    job = SurveyJob(PredictOptions(model=str(dark_onnx), runtime="torch", batch_size=1),
                    ImageOptions(out=str(out), model_id="m"), collect_inputs([], manifest), batch_size=1)
    result = run_survey(job, "ray", ray_options={"workers": 2, "threads": 1})
    assert (result.skipped, result.processed) == (recorded, len(written) - recorded)
    rows = _rows(out)
    assert sorted(r["path"] for r in rows) == sorted(w["path"] for w in written)  # every image exactly once
    assert [r["status"] for r in rows].count("ok") == len(written) - 1
    assert all((out / Path(r["mask"]).name).is_file() for r in rows if r["status"] == "ok")
