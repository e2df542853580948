"""The config-tree tests' two probes: a command's resolved tree (``--print-config``), or its refusal."""

from __future__ import annotations

import yaml

from cracksam.cli.main import main


def resolved(capsys, *argv: str) -> dict:
    assert main([*argv, "--print-config"]) == 0, capsys.readouterr().err
    return yaml.safe_load(capsys.readouterr().out)


def refused(capsys, *argv: str) -> str:
    assert main([*argv, "--print-config"]) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return captured.err
