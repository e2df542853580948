"""``predict`` and ``stream`` as one config tree each: defaults < YAML (--config) <
CRACKSAM_RUNTIME < CRACKSAM_<COMMAND>__* < --set < flags, one validation path; checked with
--print-config, so no model is opened."""

from __future__ import annotations

import os

import pytest

from cracksam.cli.main import main

from ._config_cli import refused, resolved


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for name in list(os.environ):
        if name.startswith(("CRACKSAM_PREDICT__", "CRACKSAM_STREAM__")) or name == "CRACKSAM_RUNTIME":
            monkeypatch.delenv(name)




# -- predict ----------------------------------------------------------------------------------

def test_predict_yaml_values_are_overridden_by_flags_and_inputs_by_arguments(tmp_path, capsys):
    cfg = tmp_path / "p.yaml"
    cfg.write_text("inputs: [a.jpg, photos/]\npredictor:\n  threshold: 0.7\n  batch_size: 2\nout: yaml_out\n"
                   "measure: true\nmm_per_px: 0.2\n")
    got = resolved(capsys, "predict", "-c", str(cfg))
    assert got["inputs"] == ["a.jpg", "photos/"] and got["predictor"]["threshold"] == 0.7
    assert got["out"] == "yaml_out" and got["measure"] is True and got["mm_per_px"] == 0.2
    assert got["predictor"]["tile_overlap"] == 0.25  # untouched keys keep the dataclass default
    got = resolved(capsys, "predict", "b.jpg", "-c", str(cfg), "--threshold", "0.4", "--overlap", "0.5",
                    "-o", "flag_out", "--set", "predictor.batch_size=8")
    assert got["inputs"] == ["b.jpg"] and got["out"] == "flag_out"
    assert got["predictor"]["threshold"] == 0.4 and got["predictor"]["tile_overlap"] == 0.5
    assert got["predictor"]["batch_size"] == 8
    assert got["predictor"]["window_overlap"] is None  # native windows' own default (64 px)
    got = resolved(capsys, "predict", "--window-overlap", "96", "--window", "1024")
    assert (got["predictor"]["window_overlap"], got["predictor"]["window"]) == (96, 1024)


def test_predict_booleans_switch_both_ways(tmp_path, capsys):
    cfg = tmp_path / "p.yaml"
    cfg.write_text("overlay: true\nprogress: false\npredictor:\n  trust: true\n")
    got = resolved(capsys, "predict", "-c", str(cfg))
    assert got["overlay"] is True and got["progress"] is False and got["predictor"]["trust"] is True
    got = resolved(capsys, "predict", "-c", str(cfg), "--no-overlay", "--progress", "--no-trust")
    assert got["overlay"] is False and got["progress"] is True and got["predictor"]["trust"] is False
    got = resolved(capsys, "predict", "--overlay", "--prob", "--measure", "--report", "--json", "--no-progress",
                    "--allow-random-base")
    assert all(got[k] is True for k in ("overlay", "prob", "measure", "report", "json"))
    assert got["progress"] is False and got["predictor"]["allow_random_base"] is True


def test_predict_env_vars_set_nested_keys_and_the_old_runtime_variable_ranks_below(monkeypatch, capsys):
    monkeypatch.setenv("CRACKSAM_PREDICT__PREDICTOR__THRESHOLD", "0.3")
    monkeypatch.setenv("CRACKSAM_PREDICT__MAX_PIXELS", "1000")
    got = resolved(capsys, "predict")
    assert got["predictor"]["threshold"] == 0.3 and got["max_pixels"] == 1000
    assert got["predictor"]["runtime"] == "auto"
    monkeypatch.setenv("CRACKSAM_RUNTIME", "torch")  # the older variable still works
    assert resolved(capsys, "predict")["predictor"]["runtime"] == "torch"
    monkeypatch.setenv("CRACKSAM_PREDICT__PREDICTOR__RUNTIME", "openvino")  # ranked above it
    assert resolved(capsys, "predict")["predictor"]["runtime"] == "openvino"
    assert resolved(capsys, "predict", "--runtime", "onnxruntime")["predictor"]["runtime"] == "onnxruntime"
    assert resolved(capsys, "predict", "--threshold", "0.6")["predictor"]["threshold"] == 0.6
    monkeypatch.setenv("CRACKSAM_RUNTIME", "bogus")
    monkeypatch.delenv("CRACKSAM_PREDICT__PREDICTOR__RUNTIME")
    assert "unknown runtime 'bogus'" in refused(capsys, "predict")


@pytest.mark.parametrize("where", ["yaml", "set", "env"])
def test_predict_an_unknown_key_is_named_by_its_dotted_path(where, tmp_path, monkeypatch, capsys):
    argv = ["predict"]
    if where == "yaml":
        cfg = tmp_path / "p.yaml"
        cfg.write_text("predictor:\n  treshold: 0.3\n")
        argv += ["-c", str(cfg)]
    elif where == "set":
        argv += ["--set", "predictor.treshold=0.3"]
    else:
        monkeypatch.setenv("CRACKSAM_PREDICT__PREDICTOR__TRESHOLD", "0.3")
    err = refused(capsys, *argv)
    assert "unknown key predictor.treshold" in err and "predictor.threshold" in err, err
    assert {"yaml": "p.yaml", "set": "--set", "env": "CRACKSAM_PREDICT__PREDICTOR__TRESHOLD"}[where] in err


def test_predict_checks_run_once_whichever_way_a_value_came(tmp_path, monkeypatch, capsys):
    msg = "--mm-per-px only applies with --measure or --report"
    assert msg in refused(capsys, "predict", "--mm-per-px", "0.1")
    assert msg in refused(capsys, "predict", "--set", "mm_per_px=0.1")
    cfg = tmp_path / "p.yaml"
    cfg.write_text("mm_per_px: 0.1\nmeasure: true\n")
    assert resolved(capsys, "predict", "-c", str(cfg))["mm_per_px"] == 0.1
    assert msg in refused(capsys, "predict", "-c", str(cfg), "--no-measure")
    assert "--min-length only applies" in refused(capsys, "predict", "--min-length", "3")
    both = refused(capsys, "predict", "--min-length", "3", "--mm-per-px", "0.1")
    assert "--mm-per-px and --min-length only apply with" in both
    assert "--max-pixels must be >= 1, got 0" in refused(capsys, "predict", "--max-pixels", "0")
    monkeypatch.setenv("CRACKSAM_PREDICT__MAX_PIXELS", "-5")
    assert "--max-pixels must be >= 1, got -5" in refused(capsys, "predict")
    monkeypatch.delenv("CRACKSAM_PREDICT__MAX_PIXELS")
    assert "--mm-per-px must be a positive number" in refused(capsys, "predict", "--measure", "--mm-per-px", "-1")
    assert "--engine must be one of plain, ray" in refused(capsys, "predict", "--set", "engine=spark")
    assert "--address and --workers only apply with --engine ray" in refused(capsys, "predict", "--workers", "2")
    assert "--workers must be >= 1" in refused(capsys, "predict", "--engine", "ray", "--workers", "0")
    assert "--threads must be >= 1" in refused(capsys, "predict", "--threads", "0")
    assert "--mode" in refused(capsys, "predict", "--mode", "zoom")
    assert "predictor.batch_size (--set predictor.batch_size): expected an integer" in refused(
        capsys, "predict", "--set", "predictor.batch_size=many")


def test_predict_help_config_lists_the_nested_keys_with_their_flags(capsys):
    assert main(["predict", "--help-config"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert "--threshold" in rows["predictor.threshold"] and "0.5" in rows["predictor.threshold"]
    assert "--overlap" in rows["predictor.tile_overlap"] and "--max-pixels" in rows["max_pixels"]
    assert "INPUT" in rows["inputs"]


def test_the_copied_names_match_the_survey_engine():
    from cracksam.cli.predict_config import ENGINES as copied
    from cracksam.survey.engine import ENGINES

    assert copied == ENGINES


# -- stream -----------------------------------------------------------------------------------

def test_stream_yaml_values_are_overridden_by_flags(tmp_path, capsys):
    cfg = tmp_path / "s.yaml"
    cfg.write_text("source: 0\nstream:\n  every: 5\n  out_video: yaml.mp4\n  scene_cut: 0\n"
                   "predictor:\n  threshold: 0.7\n  device: cuda\n")
    got = resolved(capsys, "stream", "-c", str(cfg))
    assert got["source"] == 0 and got["stream"]["every"] == 5 and got["stream"]["out_video"] == "yaml.mp4"
    assert got["stream"]["scene_cut"] is None  # 0 turns the detection off, in a file as on the command line
    assert got["predictor"]["threshold"] == 0.7 and got["predictor"]["device"] == "cuda"
    assert got["stream"]["timeout_s"] == 10.0  # untouched keys keep the dataclass default
    got = resolved(capsys, "stream", "road.mp4", "-c", str(cfg), "-n", "2", "-o", "flag.mp4", "--threshold", "0.4",
                    "--scene-cut", "0.5", "--timeout", "3", "--set", "predictor.device=cpu")
    assert got["source"] == "road.mp4" and got["stream"]["every"] == 2 and got["stream"]["out_video"] == "flag.mp4"
    assert got["stream"]["scene_cut"] == 0.5 and got["stream"]["timeout_s"] == 3.0
    assert got["predictor"]["threshold"] == 0.4 and got["stream"]["threshold"] == 0.4  # --threshold: both
    assert got["predictor"]["device"] == "cpu"


def test_stream_booleans_switch_both_ways(tmp_path, capsys):
    cfg = tmp_path / "s.yaml"
    cfg.write_text("json: true\nprogress: false\npredictor:\n  allow_random_base: true\n")
    got = resolved(capsys, "stream", "-c", str(cfg))
    assert got["json"] is True and got["progress"] is False and got["predictor"]["allow_random_base"] is True
    got = resolved(capsys, "stream", "-c", str(cfg), "--no-json", "--progress", "--no-allow-random-base")
    assert got["json"] is False and got["progress"] is True and got["predictor"]["allow_random_base"] is False
    got = resolved(capsys, "stream", "v.mp4", "--json", "--no-progress", "--trust")
    assert got["json"] is True and got["progress"] is False and got["predictor"]["trust"] is True


def test_stream_env_vars_and_the_old_runtime_variable(monkeypatch, capsys):
    monkeypatch.setenv("CRACKSAM_STREAM__PREDICTOR__THRESHOLD", "0.3")
    monkeypatch.setenv("CRACKSAM_STREAM__STREAM__MAX_FRAMES", "12")
    monkeypatch.setenv("CRACKSAM_STREAM__SOURCE", "http://cam/video.mjpg")
    got = resolved(capsys, "stream")
    assert got["predictor"]["threshold"] == 0.3 and got["stream"]["max_frames"] == 12
    assert got["source"] == "http://cam/video.mjpg" and got["predictor"]["runtime"] == "auto"
    monkeypatch.setenv("CRACKSAM_RUNTIME", "torch")
    assert resolved(capsys, "stream")["predictor"]["runtime"] == "torch"
    monkeypatch.setenv("CRACKSAM_STREAM__PREDICTOR__RUNTIME", "onnxruntime")  # ranked above it
    assert resolved(capsys, "stream")["predictor"]["runtime"] == "onnxruntime"
    assert resolved(capsys, "stream", "--runtime", "openvino")["predictor"]["runtime"] == "openvino"
    monkeypatch.setenv("CRACKSAM_PREDICT__PREDICTOR__THRESHOLD", "0.9")  # another command's variable
    assert resolved(capsys, "stream")["predictor"]["threshold"] == 0.3


@pytest.mark.parametrize("where", ["yaml", "set", "env"])
def test_stream_an_unknown_key_is_named_by_its_dotted_path(where, tmp_path, monkeypatch, capsys):
    argv = ["stream", "v.mp4"]
    if where == "yaml":
        cfg = tmp_path / "s.yaml"
        cfg.write_text("stream:\n  evry: 3\n")
        argv += ["-c", str(cfg)]
    elif where == "set":
        argv += ["--set", "stream.evry=3"]
    else:
        monkeypatch.setenv("CRACKSAM_STREAM__STREAM__EVRY", "3")
    err = refused(capsys, *argv)
    assert "unknown key stream.evry" in err and "stream.every" in err, err
    assert {"yaml": "s.yaml", "set": "--set", "env": "CRACKSAM_STREAM__STREAM__EVRY"}[where] in err


def test_stream_checks_run_once_whichever_way_a_value_came(monkeypatch, capsys):
    assert "--every must be >= 1, got 0" in refused(capsys, "stream", "v.mp4", "--every", "0")
    assert "--every must be >= 1, got 0" in refused(capsys, "stream", "v.mp4", "--set", "stream.every=0")
    monkeypatch.setenv("CRACKSAM_STREAM__STREAM__FPS", "0")
    assert "--fps must be in (0, 1000]" in refused(capsys, "stream", "v.mp4")
    monkeypatch.delenv("CRACKSAM_STREAM__STREAM__FPS")
    assert "--threshold must be in (0, 1), got 1.5" in refused(capsys, "stream", "v.mp4", "--threshold", "1.5")
    assert "--threshold must be in (0, 1), got 2.0" in refused(capsys, "stream", "--set", "predictor.threshold=2")
    assert "--scene-cut must be in (0, 1]" in refused(capsys, "stream", "v.mp4", "--scene-cut", "1.5")
    assert "--codec must be a four-character code" in refused(capsys, "stream", "v.mp4", "--codec", "h264x")
    assert "--threads must be >= 1" in refused(capsys, "stream", "v.mp4", "--threads", "0")
    assert "stream.out_video (--set stream.out_video): expected a path" in refused(
        capsys, "stream", "--set", "stream.out_video=[a, b]")
    # Without --print-config a missing SOURCE is a usage error too (exit 2, one line).
    assert main(["stream", "--no-progress"]) == 2
    assert "missing SOURCE" in capsys.readouterr().err


def test_stream_help_config_lists_both_sections_with_their_flags(capsys):
    assert main(["stream", "--help-config"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert "--every" in rows["stream.every"] and "--timeout" in rows["stream.timeout_s"]
    assert "--threshold" in rows["predictor.threshold"] and "SOURCE" in rows["source"]
    assert "--frames-dir" in rows["stream.frames_dir"] and "0.3" in rows["stream.scene_cut"]
