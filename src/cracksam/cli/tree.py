"""Commands whose options are one config tree (``train``, ``distill``, ``evaluate``, ``serve``,
``predict``, ``stream``, ``measure``, ``report``, ``export``, ``bench``).

Each such command declares its short flags as :class:`Alias` entries -- a flag and the dotted key
it sets -- and gets ``--config``, ``--set KEY=VALUE``, ``--print-config`` and ``--help-config``
from here.  Flags default to None (unset), so the defaults live in the dataclass only, and every
value reaches the config through :func:`cracksam.overrides.resolve`:

    dataclass defaults < YAML (--config) < CRACKSAM_<COMMAND>__<KEY> variables < --set < flags

Nothing here imports torch (``cracksam --help`` must stay fast); the config classes are passed in.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from cracksam.overrides import Assignment, describe, resolve


@dataclass(frozen=True)
class Alias:
    """A short flag for one config key (or several: the first is always set, a ``section?.key``
    only where that optional section is set).  ``convert`` turns the flag's value into the
    config's (``--targets q,v`` -> ``["q", "v"]``); a converted None means "not given"."""

    dest: str | tuple[str, ...]
    annotation: Any
    option: Any  # typer.Option(None, "--flag", help=...)
    convert: Callable[[Any], Any] | None = None

    @property
    def keys(self) -> tuple[str, ...]:
        return (self.dest,) if isinstance(self.dest, str) else self.dest

    def flag(self, value: Any = True) -> str:
        """The flag as typed: ``--no-augment`` for a False boolean pair."""
        decl = next((d for d in self.option.param_decls or () if d.startswith("--")), None)
        if decl is None:  # a positional argument (predict's INPUT): named by its metavar
            return self.option.metavar or self.keys[0]
        if "/" in decl:
            on, off = decl.split("/")
            return on if value else off
        return decl


def switch(key: str, flags: str, text: str) -> Alias:
    """A boolean flag pair (``--overlay/--no-overlay``) for ``key``: a YAML file that turns it on
    can be turned back off on the command line, and the other way round."""
    return Alias(key, bool | None, typer.Option(None, flags, help=text))


def as_strs(values: Sequence[Any] | None) -> list[str] | None:
    return [str(v) for v in values] if values else None


def comma_list(text: str | None) -> list[str] | None:
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


def as_str(value: Any) -> str | None:
    return None if value is None else str(value)


def set_option(example: str) -> tuple[Any, Any]:
    """``--set KEY=VALUE`` whose help shows ``example``, a key of the command's own config."""
    return (list[str] | None, typer.Option(
        None, "--set", metavar="KEY=VALUE", help=f"Set any config key by its dotted name, e.g. --set {example} "
        "(repeatable; values read as YAML; see --help-config)."))


COMMON: dict[str, tuple[Any, Any]] = {
    "config": (Path | None, typer.Option(
        None, "--config", "-c", help="YAML config file (see --print-config); flags, --set and CRACKSAM_<COMMAND>__* "
        "variables go on top.")),
    "set_items": set_option("optim.lr=1e-4"),  # train's; the other commands pass their own example
    "print_config": (bool, typer.Option(False, "--print-config", help="Print the resolved config as YAML and exit.")),
    "help_config": (bool, typer.Option(
        False, "--help-config", help="List every config key (dotted) with its type, default and help, and exit.")),
}


def make_command(name: str, doc: str, params: Mapping[str, tuple[Any, Any]],
                 body: Callable[..., None]) -> Callable[..., None]:
    """A typer command function named ``name`` taking ``params`` (name -> (annotation, typer.Option)),
    which calls ``body(**values)``: several commands can share one table of options."""
    def command(**values: Any) -> None:
        body(**values)

    command.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=opt, annotation=ann)
         for n, (ann, opt) in params.items()])
    command.__annotations__ = {n: ann for n, (ann, _) in params.items()}
    command.__name__ = command.__qualname__ = name
    command.__doc__ = doc
    return command


def alias_params(aliases: Mapping[str, Alias]) -> dict[str, tuple[Any, Any]]:
    return {n: (a.annotation, a.option) for n, a in aliases.items()}


def command_params(aliases: Mapping[str, Alias], set_example: str) -> dict[str, tuple[Any, Any]]:
    """The parameters of a command made only of its config tree's flags, in this order: the flags
    (``aliases``), ``--config``, ``--set`` (its help showing ``set_example``), ``--print-config``,
    ``--help-config``."""
    return {**alias_params(aliases), "config": COMMON["config"], "set_items": set_option(set_example),
            "print_config": COMMON["print_config"], "help_config": COMMON["help_config"]}


def flag_assignments(aliases: Mapping[str, Alias], values: Mapping[str, Any]) -> list[Assignment]:
    """The flags given (not None, not an empty list), as assignments in the table's order."""
    out: list[Assignment] = []
    for name, alias in aliases.items():
        value = values.get(name)
        if value is None or (isinstance(value, (list, tuple)) and not value):
            continue
        converted = alias.convert(value) if alias.convert else value
        if converted is None:
            continue
        out.extend(Assignment(key, converted, alias.flag(value)) for key in alias.keys)
    return out


def resolve_tree(cls: type, command: str, aliases: Mapping[str, Alias], values: Mapping[str, Any],
                 environ: Mapping[str, str] | None = None, defaults: Mapping[str, Any] | None = None,
                 env_aliases: Sequence[Assignment] = ()) -> tuple[Any, list[Assignment]]:
    """The command's config from its YAML file, the environment, ``--set`` and the flags in
    ``values``; ``--help-config`` lists the keys and exits.  ``defaults``: where the command's
    default differs from the library's (``serve --runtime auto``), under the YAML file."""
    from cracksam.config import read_yaml_mapping

    if values.get("help_config"):
        typer.echo(config_listing(cls, aliases))
        raise typer.Exit()
    path = values.get("config")
    base = {**(defaults or {}), **(read_yaml_mapping(path) if path else {})}
    return resolve(cls, command=command, base=base, base_source=Path(path).name if path else "",
                   environ=os.environ if environ is None else environ, env_aliases=env_aliases,
                   sets=values.get("set_items") or (), flags=flag_assignments(aliases, values))


def config_listing(cls: type, aliases: Mapping[str, Alias]) -> str:
    """Every dotted key of ``cls``: type, default, help (the field's, else its flag's)."""
    flags: dict[str, Alias] = {}
    for alias in aliases.values():
        for key in alias.keys:
            flags.setdefault(key.replace("?", ""), alias)
    rows = []
    for key, tp, default, text in describe(cls):
        flag = flags.get(key)
        if flag is not None:
            text = f"{flag.flag()}: {text or flag.option.help or ''}".rstrip(": ")
        rows.append((key, tp, default, text))
    width = max(len(r[0]) for r in rows)
    type_width = min(28, max(len(r[1]) for r in rows))
    return "\n".join(f"{k:<{width}}  {t:<{type_width}}  {d:<12}  {h}".rstrip() for k, t, d, h in rows)


def print_config(cfg: Any) -> None:
    import yaml

    from cracksam.config import to_dict

    typer.echo(yaml.safe_dump(to_dict(cfg), sort_keys=False))
