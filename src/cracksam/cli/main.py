"""The ``cracksam`` command.

Each sub-command lives in its own module exposing ``register(app)``; this module only wires them
together and turns :class:`~cracksam.errors.CrackSAMError` into ``error: ...`` and exit code 2
so that users never see a traceback for bad input.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import typer

from cracksam import __version__
from cracksam.errors import CrackSAMError, CrackSAMWarning

if TYPE_CHECKING:
    # Typer builds its commands from its own vendored copy of click, not the installed ``click``.
    from typer._click import Command, Parameter

_ROOT_HELP = ("Crack segmentation of photos: a small bundled U-Net by default, and CrackSAM (fine-tuned Segment "
              "Anything) models.")
app = typer.Typer(
    name="cracksam",
    help=_ROOT_HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Click's plain help: it wraps words within the terminal width, where rich's option tables cut
    # them ("<stem>_overlay.pn…") and leave a help column of ~20 characters at 80 columns.
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"cracksam {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    # No docstring: it would replace the Typer(help=...) text in ``cracksam --help``.
    return None


def _register_all() -> None:
    # Each command module keeps its heavy imports (torch, lightning, onnx) inside the command, so
    # registering them all costs little.
    from cracksam.cli import bench, evaluate, export, info, measure, predict, report, serve, stream, train

    for module in (info, train, evaluate, predict, export, bench, measure, report, serve, stream):
        module.register(app)


_register_all()

# Typer shows Python annotations as metavars (``<bool>`` on a flag, ``<list[Path]>``); users read
# the value they type instead: nothing for a flag, INT, FLOAT, TEXT, PATH, or the choices.
_METAVARS = {int: "INT", float: "FLOAT", str: "TEXT"}


def _metavar(param: Parameter) -> str | None:
    desc = getattr(param, "type_descriptor", None)
    if desc is None:
        return None
    if desc.is_choice and desc.choices:
        return "|".join(str(c) for c in desc.choices)
    if desc.is_path:
        return "PATH"
    annotation = desc.annotation
    if desc.is_list:
        inner = [a for a in getattr(annotation, "__args__", ()) if a is not type(None)]
        annotation = inner[0] if inner else str
        if getattr(annotation, "__name__", "") in ("Path", "PosixPath"):
            return "PATH"
    if annotation is bool:
        return "" if param.param_type_name == "option" else "BOOL"
    return _METAVARS.get(annotation, "VALUE")


def _readable_metavars(command: Command) -> Command:
    from typer._click import Context

    commands = getattr(command, "commands", {})
    for cmd in (command, *commands.values()):
        # The --help flag is made (and cached) per command; it is a flag like the others.
        help_option = cmd.get_help_option(Context(cmd))
        for param in (*cmd.params, *([help_option] if help_option is not None else [])):
            if param.metavar is None:
                text = _metavar(param)
                if text is not None:
                    param.metavar = text
            if param.param_type_name == "argument":
                # An argument's name column already shows its metavar; the type column would repeat it.
                param.display_type_rich = lambda ctx: None
    return command


# The command list of ``cracksam --help``: click cuts a longer first sentence with "..." to fit 80 columns.
SHORT_HELP = {
    "info": "Parameter counts and input size of a model.",
    "train": "Fine-tune a model on your photos (CrackSAM or --arch).",
    "distill": "Train a small student from a --teacher model.",
    "evaluate": "Score models on test, noisy and unseen sets.",
    "predict": "Segment cracks in photos (masks, overlays, report).",
    "export": "Export to ONNX / OpenVINO, checked against PyTorch.",
    "bench": "Time each runtime and precision against PyTorch.",
    "measure": "Crack length, width, area of binary masks.",
    "report": "Crack types, severity and an HTML report of results.",
    "serve": "Serve segmentation over HTTP, with a web page.",
    "stream": "Segment a video, stream or camera.",
}


def cli_command() -> Command:
    """The click command behind ``cracksam`` (what :func:`main` runs), with readable metavars."""
    command = _readable_metavars(typer.main.get_command(app))
    for name, sub in getattr(command, "commands", {}).items():
        sub.short_help = SHORT_HELP.get(name, sub.short_help)
    return command


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


def _caches_in_the_cache() -> None:
    """matplotlib's font cache and config folder (~/.cache/matplotlib, ~/.config/matplotlib) go
    under $CRACKSAM_CACHE, the one cache cracksam documents; a MPLCONFIGDIR of the user's is kept.
    Only for the ``cracksam`` program: a Python session importing cracksam keeps its own settings."""
    cache = os.environ.get("CRACKSAM_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "cracksam")
    os.environ.setdefault("MPLCONFIGDIR", os.path.join(cache, "matplotlib"))


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 some inputs failed, 2 bad usage or input).
    ``argv`` None: the ``cracksam`` program itself, reading ``sys.argv`` (tests pass ``argv``)."""
    if argv is None:
        _caches_in_the_cache()
    with _one_line_warnings():
        return _run(argv)


def _run(argv: list[str] | None) -> int:
    try:
        # standalone mode lets click print its own usage errors (exit 2) and exit via SystemExit.
        cli_command().main(args=argv, prog_name="cracksam")
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
