"""Every command's ``--help`` fits 80 columns without cutting words, and the
``--set`` example of each command is a key of that command's own config."""

from __future__ import annotations

import re

import pytest
import yaml

from cracksam.cli.main import cli_command, main

COMMANDS = sorted(cli_command().commands)
WITH_SET = [name for name, cmd in cli_command().commands.items() if any("--set" in p.opts for p in cmd.params)]


def _help(argv: list[str], monkeypatch, capsys) -> str:
    monkeypatch.setenv("COLUMNS", "80")  # click and rich both size themselves from it
    assert main([*argv, "--help"]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("command", ["", *COMMANDS])
def test_help_fits_80_columns_without_cut_words(command, monkeypatch, capsys):
    text = _help([command] if command else [], monkeypatch, capsys)
    assert "…" not in text
    too_long = [line for line in text.splitlines() if len(line) > 80]
    assert not too_long, too_long


def test_the_root_help_lists_every_command_with_a_whole_description(monkeypatch, capsys):
    text = _help([], monkeypatch, capsys)
    for command in COMMANDS:
        (line,) = [x for x in text.splitlines() if x.startswith(f"  {command} ")]
        assert not line.endswith("..."), line


@pytest.mark.parametrize("command", [c for c in WITH_SET if c not in ("evaluate", "distill")])
def test_the_set_example_is_a_key_of_the_command(command, monkeypatch, capsys):
    text = " ".join(_help([command], monkeypatch, capsys).split())  # the help as one line
    example = re.search(r"e\.g\. --set (\S+)", text)
    assert example, command
    # --print-config resolves the key without running anything: an unknown key is refused (exit 2).
    assert main([command, "--set", example.group(1), "--print-config"]) == 0, capsys.readouterr().err
    key, value = example.group(1).split("=", 1)
    resolved = yaml.safe_load(capsys.readouterr().out)
    for part in key.split("."):
        resolved = resolved[part]
    expected = yaml.safe_load(value)
    assert resolved == (float(expected) if isinstance(resolved, float) else expected)  # YAML reads 1e-4 as text


@pytest.mark.parametrize(("command", "needs"), [("evaluate", ["--test", "data"]), ("distill", ["--teacher", "t"])])
def test_the_set_example_of_commands_that_need_an_input_is_their_key(command, needs, monkeypatch, capsys):
    # These refuse to print a config that would do nothing; the example still has to be their key.
    text = " ".join(_help([command], monkeypatch, capsys).split())
    example = re.search(r"e\.g\. --set (\S+)", text)
    assert example, command
    assert main([command, *needs, "--set", example.group(1), "--print-config"]) == 0, capsys.readouterr().err
