"""Typed dotted overrides of a config tree (mmengine-style ``--set a.b.c=value``).

A command's options come from one dataclass tree.  :func:`resolve` starts from a YAML file's mapping
(or nothing: the dataclass defaults), applies assignments in order of precedence -- environment
variables ``CRACKSAM_<COMMAND>__<DOTTED__PATH>``, then ``--set`` items, then the command's short
flags -- and builds the dataclass once with :func:`~cracksam.config.from_dict`, so types, Literals
and ``__post_init__`` checks run on the merged tree through one path.  Each key is checked against
the tree before it is applied: an unknown one is an error naming the whole dotted key and its close
matches.  An optional section that is None by default (``network``, ``distill``) is created by
setting one of its keys.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import re
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, Union, get_args, get_origin

import yaml

from cracksam.config import from_dict
from cracksam.errors import ConfigError

T = TypeVar("T")

ENV_PREFIX = "CRACKSAM_"


@dataclass(frozen=True)
class Assignment:
    """``key`` (dotted) gets ``value`` from ``source`` (``--set``, a variable, a flag, a file);
    ``text``: the value is a string still to be read as YAML (``--set`` and the environment)."""

    key: str
    value: Any
    source: str
    text: bool = False


def _strip_optional(tp: Any) -> Any:
    if get_origin(tp) in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def _section(tp: Any) -> type | None:
    """The dataclass a field holds (also when optional), or None for a leaf."""
    tp = _strip_optional(tp)
    return tp if dataclasses.is_dataclass(tp) and isinstance(tp, type) else None


def _is_mapping(tp: Any) -> bool:
    tp = _strip_optional(tp)
    if get_origin(tp) in (Union, types.UnionType):
        return any(_is_mapping(a) for a in get_args(tp))
    return tp is dict or get_origin(tp) is dict


def _fields(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init}


def leaf_type(cls: type, key: str, source: str = "") -> Any:
    """The type of dotted ``key`` in dataclass ``cls``; raises :class:`ConfigError` naming the key
    and its close matches when it does not exist."""
    parts = key.split(".")
    if not key or any(not p for p in parts):
        raise ConfigError(f"{_from(source)}{key!r} is not a dotted config key (e.g. optim.lr)")
    current: type | None = cls
    tp: Any = cls
    for i, part in enumerate(parts):
        if current is None:
            if _is_mapping(tp):  # a free mapping (data.weighting: {name: weight}): any key
                return Any
            raise ConfigError(f"{_from(source)}unknown key {key}: {'.'.join(parts[:i])} is a value, not a section")
        fields = _fields(current)
        if part not in fields:
            prefix = ".".join(parts[:i])
            names = [f"{prefix}.{n}" if prefix else n for n in fields]
            close = difflib.get_close_matches(key, all_keys(cls), n=3, cutoff=0.75)
            hint = f"did you mean {' or '.join(close)}?" if close else f"allowed here: {', '.join(names)}"
            raise ConfigError(f"{_from(source)}unknown key {key} ({hint})")
        tp = fields[part]
        current = _section(tp)
    return tp


def all_keys(cls: type, prefix: str = "") -> list[str]:
    """Every dotted leaf key of ``cls`` (optional sections included)."""
    keys = []
    for name, tp in _fields(cls).items():
        sub = _section(tp)
        key = f"{prefix}{name}"
        keys.extend(all_keys(sub, key + ".") if sub is not None else [key])
    return keys


def _from(source: str) -> str:
    return f"{source}: " if source else ""


def parse_text(text: str, tp: Any, where: str) -> Any:
    """A command-line or environment string as a value of type ``tp``: read as YAML (numbers,
    true/false, null, [lists], {mappings}), except that a string field keeps the text as typed
    (``--set out_dir=2024``) and a number YAML leaves as text (``1e-3``) is read as one."""
    accepted = _accepted(tp)
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        if accepted & {str, Path}:
            return text
        raise ConfigError(f"{where}: {text!r} is not a valid value ({str(exc).splitlines()[0]})") from None
    if isinstance(value, (bool, int, float)) and accepted & {str, Path} and not accepted & {bool, int, float}:
        return text.strip()
    if isinstance(value, str) and float in accepted:
        try:
            return float(value)
        except ValueError:
            pass
    return value


def _accepted(tp: Any) -> set[Any]:
    """The plain types a field accepts (``int | None`` -> {int, NoneType})."""
    if tp is Any:
        return set()
    if get_origin(tp) in (Union, types.UnionType):
        return set().union(*(_accepted(a) for a in get_args(tp)))
    if get_origin(tp) is typing.Literal:
        return {type(a) for a in get_args(tp)}
    return {tp}


def set_items(items: Iterable[str]) -> list[Assignment]:
    """``--set key=value`` items (repeatable), in the order given."""
    out = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE with a dotted key, e.g. --set optim.lr=1e-4")
        out.append(Assignment(key.strip(), value, f"--set {key.strip()}", text=True))
    return out


def env_items(command: str, environ: Mapping[str, str]) -> list[Assignment]:
    """``CRACKSAM_<COMMAND>__A__B=value`` variables as assignments of ``a.b`` (sorted by name, so
    the result does not depend on the environment's order)."""
    prefix = f"{ENV_PREFIX}{command.upper()}__"
    out = []
    for name in sorted(environ):
        if name.startswith(prefix) and len(name) > len(prefix):
            key = ".".join(part.lower() for part in name[len(prefix):].split("__"))
            out.append(Assignment(key, environ[name], name, text=True))
    return out


def yaml_items(data: Mapping[str, Any], source: str, prefix: str = "") -> list[Assignment]:
    """A YAML mapping's leaves as assignments (so a typo in a file is named like one on the command
    line); a mapping is only walked into where the tree has a section."""
    out = []
    for k, v in data.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.extend(yaml_items(v, source, key + "."))
        else:
            out.append(Assignment(key, v, source))
    return out


def _assign(data: dict[str, Any], parts: Sequence[str], value: Any) -> None:
    node = data
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):  # absent, or an optional section that is None: create it
            child = node[part] = {}
        node = child
    node[parts[-1]] = value


def lookup(data: Mapping[str, Any] | None, key: str) -> Any:
    """The value at dotted ``key`` of a plain mapping (None where a section is missing)."""
    node: Any = data
    for part in key.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def apply(cls: type, data: dict[str, Any], assignments: Iterable[Assignment]) -> dict[str, Any]:
    """``data`` (not changed) with ``assignments`` applied in order, each key checked against ``cls``."""
    data = copy.deepcopy(data)
    for a in assignments:
        if "?." in a.key:  # "network?.image_size": only where that optional section is set
            section, _, rest = a.key.partition("?.")
            if not isinstance(lookup(data, section), dict):
                continue
            a = dataclasses.replace(a, key=f"{section}.{rest}")
        tp = leaf_type(cls, a.key, a.source if not a.source.startswith("--set") else "--set")
        value = parse_text(a.value, tp, a.source) if a.text else a.value
        if _is_mapping(tp) or _section(tp) is not None or not isinstance(value, dict):
            _assign(data, a.key.split("."), value)
        else:
            raise ConfigError(f"{a.source}: {a.key} takes a value, not a mapping")
    return data


def build(cls: type[T], data: dict[str, Any], sources: Mapping[str, str] | None = None) -> T:
    """``from_dict(cls, data)``; an error names the dotted key and, where known, where its value came
    from (``optim.lr (--lr): expected a number``)."""
    try:
        return from_dict(cls, data, where="config")
    except ConfigError as exc:
        raise ConfigError(_with_sources(str(exc), sources or {})) from None


def _with_sources(message: str, sources: Mapping[str, str]) -> str:
    def name(match: re.Match[str]) -> str:
        key = match.group(1)
        plain = re.sub(r"\[\d+\]", "", key)
        parts = plain.split(".")
        for n in range(len(parts), 0, -1):
            source = sources.get(".".join(parts[:n]))
            if source is not None:
                return f"{key} ({source})"
        return key

    return re.sub(r"\bconfig\.([A-Za-z_][\w.\[\]]*[\w\]])", name, message)


def resolve(
    cls: type[T],
    *,
    command: str,
    base: dict[str, Any] | None = None,
    base_source: str = "",
    environ: Mapping[str, str] | None = None,
    env_aliases: Sequence[Assignment] = (),
    sets: Sequence[str] = (),
    flags: Sequence[Assignment] = (),
) -> tuple[T, list[Assignment]]:
    """The config of ``command``: defaults < ``base`` (a YAML file's mapping) < ``env_aliases``
    (a command's older, shorter variables such as ``CRACKSAM_PORT``) < environment
    (``CRACKSAM_<COMMAND>__...``) < ``--set`` items < ``flags``; returns it with the assignments
    made on top of the defaults (to name them, e.g. on ``--resume``)."""
    from_file = yaml_items(base, base_source) if base else []
    for a in from_file:  # checked like the others, so a typo in a file is named by its dotted key
        leaf_type(cls, a.key, a.source)
    given = [*env_aliases, *env_items(command, environ or {}), *set_items(sets), *flags]
    # The file's mapping is the start (its lists and mappings stay whole); the rest goes on top.
    data = apply(cls, dict(base or {}), given)
    sources = {a.key: a.source for a in [*from_file, *given]}
    return build(cls, data, sources), [*from_file, *given]


def describe(cls: type, defaults: Any = None, prefix: str = "") -> list[tuple[str, str, str, str]]:
    """(dotted key, type, default, help) of every leaf of ``cls``; help from the field's
    ``metadata["help"]``.  ``defaults``: an instance whose values are shown (None: the fields')."""
    rows = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        tp = hints[f.name]
        key = f"{prefix}{f.name}"
        sub = _section(tp)
        if defaults is not None:
            value = getattr(defaults, f.name)
        elif f.default is not dataclasses.MISSING:
            value = f.default
        elif f.default_factory is not dataclasses.MISSING:
            value = f.default_factory()
        else:
            value = dataclasses.MISSING
        if sub is not None:
            rows.extend(describe(sub, value if dataclasses.is_dataclass(value) else None, key + "."))
            continue
        shown = "(required)" if value is dataclasses.MISSING else _show(value)
        rows.append((key, _type_name(tp), shown, f.metadata.get("help", "")))
    return rows


def _show(value: Any) -> str:
    if isinstance(value, Path):
        value = str(value)
    if isinstance(value, tuple):
        value = list(value)
    return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip().removesuffix("...").strip()


def _type_name(tp: Any) -> str:
    if get_origin(tp) in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in get_args(tp))
    if get_origin(tp) is typing.Literal:
        return "|".join(str(a) for a in get_args(tp))
    if tp is type(None):
        return "null"
    if get_origin(tp) is not None:
        args = ", ".join(_type_name(a) for a in get_args(tp))
        return f"{get_origin(tp).__name__}[{args}]"
    return getattr(tp, "__name__", str(tp))
