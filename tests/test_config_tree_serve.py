"""``serve`` as one config tree: the service's own variables (CRACKSAM_PORT, ...) < CRACKSAM_SERVE__*
< --set < flags, one validation path; the upload settings (``--client-upload-share``,
``--upload-idle-timeout-s``) like the other limits, and a bad value is one error line.  Checked with
--print-config, so no server starts."""

from __future__ import annotations

import pytest

from cracksam.cli.main import main

from ._config_cli import refused, resolved


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    import os

    for name in list(os.environ):
        if name.startswith("CRACKSAM_"):
            monkeypatch.delenv(name)


def test_serve_settings_come_from_env_set_and_flags_in_that_order(monkeypatch, capsys):
    from dataclasses import fields

    from cracksam.service.settings import ServiceSettings

    monkeypatch.delenv("CRACKSAM_RUNTIME", raising=False)
    monkeypatch.setenv("CRACKSAM_PORT", "9000")  # the service's own variables still work, lowest
    monkeypatch.setenv("CRACKSAM_TRUST", "1")
    monkeypatch.setenv("CRACKSAM_SERVE__MAX_PENDING", "3")
    got = resolved(capsys, "serve", "--overlap", "0.5", "--concurrency", "1")
    assert (got["port"], got["trust"], got["max_pending"]) == (9000, True, 3)
    assert got["tile_overlap"] == 0.5 and got["workers"] == 1
    assert got["runtime"] == "auto"  # the command's default; the library's is torch
    assert next(f.default for f in fields(ServiceSettings) if f.name == "runtime") == "torch"
    monkeypatch.setenv("CRACKSAM_SERVE__PORT", "9100")
    assert resolved(capsys, "serve")["port"] == 9100
    assert resolved(capsys, "serve", "--set", "port=9200")["port"] == 9200
    assert resolved(capsys, "serve", "--set", "port=9200", "--port", "9300")["port"] == 9300
    assert "port must be in 0..65535" in refused(capsys, "serve", "--port", "70000")
    assert "unknown key max_pendng (did you mean max_pending?)" in refused(capsys, "serve", "--set", "max_pendng=1")
    assert "header_timeout_s (--set header_timeout_s): expected a number" in refused(
        capsys, "serve", "--set", "header_timeout_s=soon")


def test_the_flags_reach_the_settings_over_env_and_set(monkeypatch, capsys):
    got = resolved(capsys, "serve")
    assert (got["client_upload_share"], got["upload_idle_timeout_s"]) == (0.25, 5.0)
    got = resolved(capsys, "serve", "--client-upload-share", "0.5", "--upload-idle-timeout-s", "2.5")
    assert (got["client_upload_share"], got["upload_idle_timeout_s"]) == (0.5, 2.5)
    monkeypatch.setenv("CRACKSAM_CLIENT_UPLOAD_SHARE", "0.75")
    monkeypatch.setenv("CRACKSAM_UPLOAD_IDLE_TIMEOUT_S", "7")
    got = resolved(capsys, "serve", "--set", "client_upload_share=0.6")
    assert (got["client_upload_share"], got["upload_idle_timeout_s"]) == (0.6, 7.0)
    got = resolved(capsys, "serve", "--set", "client_upload_share=0.6", "--client-upload-share", "1",
                   "--upload-idle-timeout-s", "3")
    assert (got["client_upload_share"], got["upload_idle_timeout_s"]) == (1.0, 3.0)


@pytest.mark.parametrize(("argv", "message"), [
    (["--client-upload-share", "1.5"], "client upload share must be in (0, 1]"),
    (["--client-upload-share", "0"], "client upload share must be in (0, 1]"),
    (["--upload-idle-timeout-s", "-1"], "upload idle timeout s must be a positive number"),
])
def test_a_bad_value_is_one_error_line(argv, message, capsys):
    err = refused(capsys, "serve", *argv)
    assert message in err
    assert len(err.strip().splitlines()) == 1, err


def test_a_value_that_is_no_number_is_a_usage_error_naming_the_flag(capsys):
    # As for every numeric flag: click's usage error (exit 2), which names the flag.
    err = refused(capsys, "serve", "--upload-idle-timeout-s", "soon")
    assert "Invalid value for '--upload-idle-timeout-s'" in err


def test_the_help_names_both_flags_with_their_defaults(monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["serve", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--client-upload-share FLOAT Share of the in-flight upload budget" in text
    assert "(default 0.25) [env CRACKSAM_CLIENT_UPLOAD_SHARE, CRACKSAM_SERVE__CLIENT_UPLOAD_SHARE]" in text
    assert "--upload-idle-timeout-s FLOAT Seconds an upload body may send nothing" in text
    assert "(default 5.0) [env CRACKSAM_UPLOAD_IDLE_TIMEOUT_S" in text
