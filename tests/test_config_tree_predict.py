"""``predict`` and ``stream`` as one config tree each (issue 15): defaults < YAML (--config) <
CRACKSAM_RUNTIME < CRACKSAM_<COMMAND>__* < --set < flags, one validation path; checked with
--print-config, so no model is opened."""

from __future__ import annotations

import os

import pytest
import yaml

from cracksam.cli.main import main


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for name in list(os.environ):
        if name.startswith(("CRACKSAM_PREDICT__", "CRACKSAM_STREAM__")) or name == "CRACKSAM_RUNTIME":
            monkeypatch.delenv(name)


def _resolved(capsys, *argv: str) -> dict:
    assert main([*argv, "--print-config"]) == 0, capsys.readouterr().err
    return yaml.safe_load(capsys.readouterr().out)


def _refused(capsys, *argv: str) -> str:
    assert main([*argv, "--print-config"]) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return captured.err


# -- predict ----------------------------------------------------------------------------------

def test_predict_yaml_values_are_overridden_by_flags_and_inputs_by_arguments(tmp_path, capsys):
    cfg = tmp_path / "p.yaml"
    cfg.write_text("inputs: [a.jpg, photos/]\npredictor:\n  threshold: 0.7\n  batch_size: 2\nout: yaml_out\n"
                   "measure: true\nmm_per_px: 0.2\n")
    got = _resolved(capsys, "predict", "-c", str(cfg))
    assert got["inputs"] == ["a.jpg", "photos/"] and got["predictor"]["threshold"] == 0.7
    assert got["out"] == "yaml_out" and got["measure"] is True and got["mm_per_px"] == 0.2
    assert got["predictor"]["tile_overlap"] == 0.25  # untouched keys keep the dataclass default
    got = _resolved(capsys, "predict", "b.jpg", "-c", str(cfg), "--threshold", "0.4", "--overlap", "0.5",
                    "-o", "flag_out", "--set", "predictor.batch_size=8")
    assert got["inputs"] == ["b.jpg"] and got["out"] == "flag_out"
    assert got["predictor"]["threshold"] == 0.4 and got["predictor"]["tile_overlap"] == 0.5
    assert got["predictor"]["batch_size"] == 8


def test_predict_booleans_switch_both_ways(tmp_path, capsys):
    cfg = tmp_path / "p.yaml"
    cfg.write_text("overlay: true\nprogress: false\npredictor:\n  trust: true\n")
    got = _resolved(capsys, "predict", "-c", str(cfg))
    assert got["overlay"] is True and got["progress"] is False and got["predictor"]["trust"] is True
    got = _resolved(capsys, "predict", "-c", str(cfg), "--no-overlay", "--progress", "--no-trust")
    assert got["overlay"] is False and got["progress"] is True and got["predictor"]["trust"] is False
    got = _resolved(capsys, "predict", "--overlay", "--prob", "--measure", "--report", "--json", "--no-progress",
                    "--allow-random-base")
    assert all(got[k] is True for k in ("overlay", "prob", "measure", "report", "json"))
    assert got["progress"] is False and got["predictor"]["allow_random_base"] is True


def test_predict_env_vars_set_nested_keys_and_the_old_runtime_variable_ranks_below(monkeypatch, capsys):
    monkeypatch.setenv("CRACKSAM_PREDICT__PREDICTOR__THRESHOLD", "0.3")
    monkeypatch.setenv("CRACKSAM_PREDICT__MAX_PIXELS", "1000")
    got = _resolved(capsys, "predict")
    assert got["predictor"]["threshold"] == 0.3 and got["max_pixels"] == 1000
    assert got["predictor"]["runtime"] == "auto"
    monkeypatch.setenv("CRACKSAM_RUNTIME", "torch")  # the older variable still works
    assert _resolved(capsys, "predict")["predictor"]["runtime"] == "torch"
    monkeypatch.setenv("CRACKSAM_PREDICT__PREDICTOR__RUNTIME", "openvino")  # ranked above it
    assert _resolved(capsys, "predict")["predictor"]["runtime"] == "openvino"
    assert _resolved(capsys, "predict", "--runtime", "onnxruntime")["predictor"]["runtime"] == "onnxruntime"
    assert _resolved(capsys, "predict", "--threshold", "0.6")["predictor"]["threshold"] == 0.6
    monkeypatch.setenv("CRACKSAM_RUNTIME", "bogus")
    monkeypatch.delenv("CRACKSAM_PREDICT__PREDICTOR__RUNTIME")
    assert "unknown runtime 'bogus'" in _refused(capsys, "predict")


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
    err = _refused(capsys, *argv)
    assert "unknown key predictor.treshold" in err and "predictor.threshold" in err, err
    assert {"yaml": "p.yaml", "set": "--set", "env": "CRACKSAM_PREDICT__PREDICTOR__TRESHOLD"}[where] in err


def test_predict_checks_run_once_whichever_way_a_value_came(tmp_path, monkeypatch, capsys):
    msg = "--mm-per-px only apply with --measure or --report"
    assert msg in _refused(capsys, "predict", "--mm-per-px", "0.1")
    assert msg in _refused(capsys, "predict", "--set", "mm_per_px=0.1")
    cfg = tmp_path / "p.yaml"
    cfg.write_text("mm_per_px: 0.1\nmeasure: true\n")
    assert _resolved(capsys, "predict", "-c", str(cfg))["mm_per_px"] == 0.1
    assert msg in _refused(capsys, "predict", "-c", str(cfg), "--no-measure")
    assert "--min-length only apply" in _refused(capsys, "predict", "--min-length", "3")
    assert "--max-pixels must be >= 1, got 0" in _refused(capsys, "predict", "--max-pixels", "0")
    monkeypatch.setenv("CRACKSAM_PREDICT__MAX_PIXELS", "-5")
    assert "--max-pixels must be >= 1, got -5" in _refused(capsys, "predict")
    monkeypatch.delenv("CRACKSAM_PREDICT__MAX_PIXELS")
    assert "--mm-per-px must be a positive number" in _refused(capsys, "predict", "--measure", "--mm-per-px", "-1")
    assert "--engine must be one of plain, ray" in _refused(capsys, "predict", "--set", "engine=spark")
    assert "--address and --workers only apply with --engine ray" in _refused(capsys, "predict", "--workers", "2")
    assert "--workers must be >= 1" in _refused(capsys, "predict", "--engine", "ray", "--workers", "0")
    assert "--threads must be >= 1" in _refused(capsys, "predict", "--threads", "0")
    assert "--mode" in _refused(capsys, "predict", "--mode", "zoom")
    assert "predictor.batch_size (--set predictor.batch_size): expected an integer" in _refused(
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
