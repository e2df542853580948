"""`cracksam serve --client-upload-share` and `--upload-idle-timeout-s`: flags of the two upload
settings like the other limits (env < --set < flag), and a bad value is one error line."""

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
