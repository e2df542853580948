"""The ``cracksam`` command.

Each sub-command lives in its own module exposing ``register(app)``; this module only wires them
together and turns :class:`~cracksam.errors.CrackSAMError` into ``error: ...`` and exit code 2
so that users never see a traceback for bad input.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import typer

from cracksam import __version__
from cracksam.errors import CrackSAMError, CrackSAMWarning

app = typer.Typer(
    name="cracksam",
    help="Crack segmentation with the Segment Anything Model (CrackSAM).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"cracksam {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    """Crack segmentation with the Segment Anything Model (CrackSAM)."""


def _register_all() -> None:
    # Each command module keeps its heavy imports (torch, lightning, onnx) inside the command, so
    # registering them all costs little.
    from cracksam.cli import evaluate, export, info, measure, predict, report, serve, stream, train

    for module in (info, train, evaluate, predict, export, measure, report, serve, stream):
        module.register(app)


_register_all()


@contextmanager
def _one_line_warnings() -> Iterator[None]:
    """Our own warnings (:class:`CrackSAMWarning`) as ``warning: ...`` lines: Python's default
    format adds the file, line number and source line, which reads like a crash."""
    previous = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):  # warnings.showwarning signature
        if issubclass(category, CrackSAMWarning):
            typer.secho(f"warning: {message}", fg=typer.colors.YELLOW, err=True)
        else:
            previous(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = previous


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 some inputs failed, 2 bad usage or input)."""
    with _one_line_warnings():
        return _run(argv)


def _run(argv: list[str] | None) -> int:
    try:
        # standalone mode lets click print its own usage errors (exit 2) and exit via SystemExit.
        app(args=argv, prog_name="cracksam")
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except CrackSAMError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        return 2
    except KeyboardInterrupt:
        typer.secho("interrupted", err=True)
        return 130
    except OSError as exc:  # disk full, permissions, a path that is a file: no traceback for those
        where = f"{exc.filename}: " if exc.filename else ""
        typer.secho(f"error: {where}{exc.strerror or exc}", fg=typer.colors.RED, err=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
