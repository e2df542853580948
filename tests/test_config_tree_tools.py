"""``measure``, ``report``, ``export`` and ``bench`` as one config tree each: defaults <
YAML (--config) < CRACKSAM_<COMMAND>__* < --set < flags, one validation path; checked with
--print-config, so nothing is read or run."""

from __future__ import annotations

import os

import pytest

from cracksam.cli.main import main

from ._config_cli import refused, resolved


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for name in list(os.environ):
        if name.startswith(("CRACKSAM_MEASURE__", "CRACKSAM_REPORT__", "CRACKSAM_EXPORT__", "CRACKSAM_BENCH__")):
            monkeypatch.delenv(name)




# -- measure ----------------------------------------------------------------------------------

def test_measure_yaml_values_are_overridden_by_flags_and_masks_by_arguments(tmp_path, capsys):
    cfg = tmp_path / "m.yaml"
    cfg.write_text("masks: [masks/]\nmm_per_px: 0.2\nmin_length: 4\nout: yaml_out\njson: true\n")
    got = resolved(capsys, "measure", "-c", str(cfg))
    assert got["masks"] == ["masks/"] and got["mm_per_px"] == 0.2 and got["min_length"] == 4
    assert got["out"] == "yaml_out" and got["json"] is True and got["threshold"] is None
    got = resolved(capsys, "measure", "a.png", "-c", str(cfg), "--mm-per-px", "0.5", "-o", "flag_out",
                    "--no-json", "--set", "threshold=0.5")
    assert got["masks"] == ["a.png"] and got["mm_per_px"] == 0.5 and got["out"] == "flag_out"
    assert got["json"] is False and got["threshold"] == 0.5 and got["min_length"] == 4


def test_measure_env_vars_set_keys_below_flags(monkeypatch, capsys):
    monkeypatch.setenv("CRACKSAM_MEASURE__MIN_LENGTH", "3")
    monkeypatch.setenv("CRACKSAM_MEASURE__REF_POINTS", "0,0,10,0")
    monkeypatch.setenv("CRACKSAM_MEASURE__REF_LENGTH_MM", "5")
    got = resolved(capsys, "measure", "a.png")
    assert got["min_length"] == 3 and got["ref_points"] == "0,0,10,0" and got["ref_length_mm"] == 5
    assert resolved(capsys, "measure", "a.png", "--min-length", "7")["min_length"] == 7


@pytest.mark.parametrize("where", ["yaml", "set", "env"])
def test_measure_an_unknown_key_is_named(where, tmp_path, monkeypatch, capsys):
    argv = ["measure", "a.png"]
    if where == "yaml":
        cfg = tmp_path / "m.yaml"
        cfg.write_text("min_lenght: 3\n")
        argv += ["-c", str(cfg)]
    elif where == "set":
        argv += ["--set", "min_lenght=3"]
    else:
        monkeypatch.setenv("CRACKSAM_MEASURE__MIN_LENGHT", "3")
    err = refused(capsys, *argv)
    assert "unknown key min_lenght" in err and "min_length" in err, err
    assert {"yaml": "m.yaml", "set": "--set", "env": "CRACKSAM_MEASURE__MIN_LENGHT"}[where] in err


def test_measure_checks_run_once_whichever_way_a_value_came(monkeypatch, capsys):
    assert "--min-length must be >= 0 px, got -1" in refused(capsys, "measure", "a.png", "--min-length", "-1")
    assert "--min-length must be >= 0 px, got -1" in refused(capsys, "measure", "--set", "min_length=-1")
    monkeypatch.setenv("CRACKSAM_MEASURE__THRESHOLD", "1.5")
    assert "--threshold must be a fraction in (0, 1)" in refused(capsys, "measure", "a.png")
    monkeypatch.delenv("CRACKSAM_MEASURE__THRESHOLD")
    assert "mutually exclusive" in refused(capsys, "measure", "a.png", "--mm-per-px", "0.1",
                                            "--set", "ref_points=0,0,1,1", "--ref-length-mm", "2")
    assert "go together" in refused(capsys, "measure", "a.png", "--ref-length-mm", "2")
    assert "--ref-points must be four numbers" in refused(capsys, "measure", "a.png", "--ref-points", "1,2",
                                                           "--ref-length-mm", "2")
    assert "--mm-per-px must be a positive number" in refused(capsys, "measure", "a.png", "--mm-per-px", "0")
    assert main(["measure"]) == 2  # without --print-config a missing MASK is a usage error (one line)
    assert "missing MASK" in capsys.readouterr().err


# -- report -----------------------------------------------------------------------------------

def test_report_yaml_values_are_overridden_by_flags_and_booleans_switch_both_ways(tmp_path, capsys):
    cfg = tmp_path / "r.yaml"
    cfg.write_text("folder: predictions\nseverity: concrete\ndirection: 0\ntolerance: 20\nprogress: false\n"
                   "json: true\n")
    got = resolved(capsys, "report", "-c", str(cfg))
    assert got["folder"] == "predictions" and got["severity"] == "concrete" and got["direction"] == 0
    assert got["tolerance"] == 20 and got["progress"] is False and got["json"] is True
    assert got["short_length"] == 50.0  # untouched keys keep the dataclass default
    got = resolved(capsys, "report", "masks", "-c", str(cfg), "--tolerance", "10", "--progress", "--no-json",
                    "--set", "severity=pixels", "-o", "survey")
    assert got["folder"] == "masks" and got["tolerance"] == 10 and got["progress"] is True
    assert got["json"] is False and got["severity"] == "pixels" and got["out"] == "survey"
    assert resolved(capsys, "report", "masks", "--no-progress")["progress"] is False


def test_report_env_vars_set_keys_below_flags(monkeypatch, capsys):
    monkeypatch.setenv("CRACKSAM_REPORT__SHORT_LENGTH", "80")
    monkeypatch.setenv("CRACKSAM_REPORT__MM_PER_PX", "0.5")
    got = resolved(capsys, "report", "predictions")
    assert got["short_length"] == 80 and got["mm_per_px"] == 0.5
    assert resolved(capsys, "report", "predictions", "--short-length", "5")["short_length"] == 5
    monkeypatch.setenv("CRACKSAM_MEASURE__MIN_LENGTH", "3")  # another command's variable
    assert resolved(capsys, "report", "predictions")["min_length"] == 10


@pytest.mark.parametrize("where", ["yaml", "set", "env"])
def test_report_an_unknown_key_is_named(where, tmp_path, monkeypatch, capsys):
    argv = ["report", "predictions"]
    if where == "yaml":
        cfg = tmp_path / "r.yaml"
        cfg.write_text("tolerence: 20\n")
        argv += ["-c", str(cfg)]
    elif where == "set":
        argv += ["--set", "tolerence=20"]
    else:
        monkeypatch.setenv("CRACKSAM_REPORT__TOLERENCE", "20")
    err = refused(capsys, *argv)
    assert "unknown key tolerence" in err and "tolerance" in err, err
    assert {"yaml": "r.yaml", "set": "--set", "env": "CRACKSAM_REPORT__TOLERENCE"}[where] in err


def test_report_checks_run_once_whichever_way_a_value_came(monkeypatch, capsys):
    msg = "--tolerance must be between 0 and 45 degrees, got 50"
    assert msg in refused(capsys, "report", "p", "--tolerance", "50")
    assert msg in refused(capsys, "report", "p", "--set", "tolerance=50")
    monkeypatch.setenv("CRACKSAM_REPORT__DIRECTION", ".nan")
    assert "--direction must be a finite number" in refused(capsys, "report", "p")
    monkeypatch.delenv("CRACKSAM_REPORT__DIRECTION")
    assert "--short-length must be >= 0 px" in refused(capsys, "report", "p", "--short-length", "-1")
    assert "--min-length must be >= 0 px" in refused(capsys, "report", "p", "--min-length", "-1")
    assert "go together" in refused(capsys, "report", "p", "--ref-points", "1,2,3,4")
    assert main(["report"]) == 2  # without --print-config a missing FOLDER is a usage error (one line)
    assert "missing FOLDER" in capsys.readouterr().err


# -- export -----------------------------------------------------------------------------------

def test_export_yaml_values_are_overridden_by_flags_and_booleans_switch_both_ways(tmp_path, capsys):
    cfg = tmp_path / "e.yaml"
    cfg.write_text("model: runs/cfd/best\ntargets: [onnx, openvino-int8]\ncalib: [photos]\nopset: 18\n"
                   "dynamic_shape: true\ntrust: true\n")
    got = resolved(capsys, "export", "-c", str(cfg))
    assert got["model"] == "runs/cfd/best" and got["targets"] == ["onnx", "openvino-int8"]
    assert got["calib"] == ["photos"] and got["opset"] == 18 and got["dynamic_shape"] is True and got["trust"]
    assert got["calib_size"] == 64 and got["out"] == "export"  # untouched keys keep the dataclass default
    got = resolved(capsys, "export", "-c", str(cfg), "--targets", "onnx-fused, openvino-fp32", "--opset", "17",
                    "--no-dynamic-shape", "--no-trust", "--calib", "a", "--calib", "b", "--set", "calib_size=8")
    assert got["targets"] == ["onnx-fused", "openvino-fp32"] and got["opset"] == 17
    assert got["dynamic_shape"] is False and got["trust"] is False
    assert got["calib"] == ["a", "b"] and got["calib_size"] == 8


def test_export_env_vars_set_keys_below_flags(monkeypatch, capsys):
    monkeypatch.setenv("CRACKSAM_EXPORT__MIN_IOU", "0.9")
    monkeypatch.setenv("CRACKSAM_EXPORT__TARGETS", "[onnx-int8]")
    got = resolved(capsys, "export")
    assert got["min_iou"] == 0.9 and got["targets"] == ["onnx-int8"]
    assert resolved(capsys, "export", "--min-iou", "0.5")["min_iou"] == 0.5


@pytest.mark.parametrize("where", ["yaml", "set", "env"])
def test_export_an_unknown_key_is_named(where, tmp_path, monkeypatch, capsys):
    argv = ["export"]
    if where == "yaml":
        cfg = tmp_path / "e.yaml"
        cfg.write_text("calib_sise: 8\n")
        argv += ["-c", str(cfg)]
    elif where == "set":
        argv += ["--set", "calib_sise=8"]
    else:
        monkeypatch.setenv("CRACKSAM_EXPORT__CALIB_SISE", "8")
    err = refused(capsys, *argv)
    assert "unknown key calib_sise" in err and "calib_size" in err, err
    assert {"yaml": "e.yaml", "set": "--set", "env": "CRACKSAM_EXPORT__CALIB_SISE"}[where] in err


def test_export_checks_run_once_whichever_way_a_value_came(monkeypatch, capsys):
    assert "--opset must be >= 17, got 16" in refused(capsys, "export", "--opset", "16")
    assert "--opset must be >= 17, got 16" in refused(capsys, "export", "--set", "opset=16")
    monkeypatch.setenv("CRACKSAM_EXPORT__MIN_IOU", "2")
    assert "--min-iou must be in [0, 1], got 2.0" in refused(capsys, "export")
    monkeypatch.delenv("CRACKSAM_EXPORT__MIN_IOU")
    assert "unknown export target(s) ['bogus']" in refused(capsys, "export", "--targets", "onnx,bogus")
    assert "unknown export target(s) ['bogus']" in refused(capsys, "export", "--set", "targets=[bogus]")
    assert "unknown export target(s) ''" in refused(capsys, "export", "--targets", "")
    assert "--threads must be >= 1" in refused(capsys, "export", "--threads", "0")


# -- bench ------------------------------------------------------------------------------------

def test_bench_yaml_values_are_overridden_by_flags_and_booleans_switch_both_ways(tmp_path, capsys):
    cfg = tmp_path / "b.yaml"
    cfg.write_text("model: [runs/cfd/best, export/model.onnx]\nbackends: [torch, onnx]\nthreads: 2\n"
                   "in_flight: 1\njson: true\nallow_random_base: true\n")
    got = resolved(capsys, "bench", "-c", str(cfg))
    assert got["model"] == ["runs/cfd/best", "export/model.onnx"] and got["backends"] == ["torch", "onnx"]
    assert got["threads"] == 2 and got["in_flight"] == 1 and got["json"] is True and got["allow_random_base"]
    assert got["iterations"] == 10 and got["export_dir"] == "bench-export"  # untouched: the defaults
    got = resolved(capsys, "bench", "-c", str(cfg), "-m", "a", "--backends", "openvino-fp16", "--threads", "4",
                    "--no-json", "--no-allow-random-base", "--set", "iterations=3", "-o", "b.json")
    assert got["model"] == ["a"] and got["backends"] == ["openvino-fp16"] and got["threads"] == 4
    assert got["json"] is False and got["allow_random_base"] is False and got["iterations"] == 3
    assert got["out"] == "b.json"


def test_bench_env_vars_set_keys_below_flags(monkeypatch, capsys):
    monkeypatch.setenv("CRACKSAM_BENCH__WARMUP", "0")
    monkeypatch.setenv("CRACKSAM_BENCH__BACKENDS", "[torch]")
    got = resolved(capsys, "bench")
    assert got["warmup"] == 0 and got["backends"] == ["torch"]
    assert resolved(capsys, "bench", "--warmup", "5")["warmup"] == 5
    monkeypatch.setenv("CRACKSAM_EXPORT__THREADS", "3")  # another command's variable
    assert resolved(capsys, "bench")["threads"] is None


@pytest.mark.parametrize("where", ["yaml", "set", "env"])
def test_bench_an_unknown_key_is_named(where, tmp_path, monkeypatch, capsys):
    argv = ["bench"]
    if where == "yaml":
        cfg = tmp_path / "b.yaml"
        cfg.write_text("iteration: 3\n")
        argv += ["-c", str(cfg)]
    elif where == "set":
        argv += ["--set", "iteration=3"]
    else:
        monkeypatch.setenv("CRACKSAM_BENCH__ITERATION", "3")
    err = refused(capsys, *argv)
    assert "unknown key iteration" in err and "iterations" in err, err
    assert {"yaml": "b.yaml", "set": "--set", "env": "CRACKSAM_BENCH__ITERATION"}[where] in err


def test_bench_checks_run_once_whichever_way_a_value_came(monkeypatch, capsys):
    msg = "--batch, --iterations and --in-flight must be >= 1 and --warmup >= 0"
    assert msg in refused(capsys, "bench", "--batch", "0")
    assert msg in refused(capsys, "bench", "--set", "in_flight=0")
    monkeypatch.setenv("CRACKSAM_BENCH__WARMUP", "-1")
    assert msg in refused(capsys, "bench")
    monkeypatch.delenv("CRACKSAM_BENCH__WARMUP")
    assert "unknown backend(s) ['bogus']" in refused(capsys, "bench", "--backends", "torch,bogus")
    assert "unknown backend(s) ''" in refused(capsys, "bench", "--backends", ",")
    assert "--threads must be >= 1" in refused(capsys, "bench", "--set", "threads=0")


def test_bench_default_backends_match_its_help():
    from cracksam.cli.bench_config import DEFAULT_BACKENDS, BenchConfig

    assert BenchConfig().default_backends and tuple(BenchConfig().backends) == DEFAULT_BACKENDS
    assert not BenchConfig(backends=["torch"]).default_backends
