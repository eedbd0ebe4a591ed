"""Strict configuration: JSON ↔ frozen dataclasses, where every key is used or rejected.

Method notes: ``docs/methods.md``, section ``edkeras.core.schema``.

Example:
    >>> @dataclass(frozen=True)
    ... class Optim:
    ...     lr: float = 1e-3
    >>> from_dict(Optim, {"lr": 0.01})
    Optim(lr=0.01)
    >>> from_dict(Optim, {"learning_rate": 0.01})
    Traceback (most recent call last):
    ConfigError: config: unknown key 'learning_rate'; valid keys: lr
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from edkeras.core.errors import InputError
from edkeras.core.files import write_text

__all__ = [
    "ConfigError",
    "apply_overrides",
    "from_dict",
    "load_json",
    "record_from_dict",
    "save_json",
    "to_dict",
]

T = TypeVar("T")


class ConfigError(InputError):
    """A config key is unknown, missing, or has the wrong type or value."""


def _fmt_type(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " | ".join(_fmt_type(a) for a in get_args(tp))
    if origin is not None:
        args = ", ".join(_fmt_type(a) for a in get_args(tp))
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def _convert(tp: Any, value: Any, where: str) -> Any:
    """Check ``value`` against the annotation ``tp`` and convert it (lists → tuples…)."""
    if tp is dict:
        tp = dict[str, Any]
    elif tp in (list, tuple):
        tp = tp[Any, ...] if tp is tuple else list[Any]
    origin = get_origin(tp)
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        return from_dict(tp, value, where)
    if origin is Literal:
        if value in get_args(tp):
            return value
        raise ConfigError(f"{where}: must be one of {_fmt_type(tp)}; received {value!r}")
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise ConfigError(f"{where}: must be {_fmt_type(tp)}; received null")
        for a in args:
            if a is type(None):
                continue
            try:
                return _convert(a, value, where)
            except ConfigError:
                continue
        raise ConfigError(f"{where}: must be {_fmt_type(tp)}; received {value!r}")
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: must be a list ({_fmt_type(tp)}); received {value!r}")
        args = get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(
                    f"{where}: must be a list of {len(args)} ({_fmt_type(tp)}); received {value!r}"
                )
            return tuple(_convert(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
        item = args[0] if args else Any
        conv = [_convert(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(conv) if origin is tuple else conv
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: must be an object ({_fmt_type(tp)}); received {value!r}")
        kt, vt = get_args(tp) or (Any, Any)
        return {_convert(kt, k, where): _convert(vt, v, f"{where}.{k}") for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: must be true or false; received {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: must be an integer; received {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{where}: must be a number; received {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{where}: must be a string; received {value!r}")
    raise TypeError(f"{where}: unsupported annotation {tp!r} in a config dataclass")


def from_dict(cls: type[T], data: Any, where: str = "config") -> T:
    """Build the frozen dataclass ``cls`` from a mapping, strictly.

    Args:
        cls: a dataclass type; fields may be nested dataclasses, ``Literal``, tuples,
            lists, dicts, optionals and the scalar types.
        data: the mapping (e.g. parsed JSON).
        where: the name used in messages (a file name, or ``config.training``).

    Returns:
        An instance of ``cls``; keys not given take their defaults.

    Raises:
        ConfigError: for an unknown key (named, with the nearest valid key and the list
            of valid keys), a missing required key, or a value of the wrong type.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: must be an object with keys; received {data!r}")
    hints = get_type_hints(cls)
    flds = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in data if k not in flds]
    if unknown:
        k = unknown[0]
        near = difflib.get_close_matches(str(k), list(flds), n=1)
        hint = f" (did you mean '{near[0]}'?)" if near else ""
        raise ConfigError(f"{where}: unknown key '{k}'{hint}; valid keys: {', '.join(flds)}")
    kwargs = {}
    for name, f in flds.items():
        if name in data:
            kwargs[name] = _convert(hints[name], data[name], f"{where}.{name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{where}: required key '{name}' is missing")
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as e:
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(f"{where}: {e}") from None


def to_dict(obj: Any) -> Any:
    """The complete, JSON-ready dict of a config dataclass (defaults included)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.init}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): to_dict(v) for k, v in obj.items()}
    if isinstance(obj, Path):
        return str(obj)
    return obj


def load_json(cls: type[T], path: str | os.PathLike) -> T:
    """Read a JSON config file into ``cls`` (errors name the file and the key)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such config file") from None
    except IsADirectoryError:
        raise ConfigError(f"{p}: is a folder; expected a JSON config file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: not a text file; expected a JSON config (is it an event or model file?)") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{p}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
    return from_dict(cls, data, where=str(p))


def save_json(obj: Any, path: str | os.PathLike) -> Path:
    """Write the complete config (defaults included) atomically."""

    return write_text(path, json.dumps(to_dict(obj), indent=2, sort_keys=False) + "\n")


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text  # a bare string such as compact or es


def apply_overrides(obj: T, overrides: typing.Iterable[str], where: str = "--set") -> T:
    """Apply ``key.sub=value`` overrides (values parsed as JSON, else strings), strictly.

    Example:
        >>> apply_overrides(cfg, ["training.epochs=3", "model.name=compact"])
    """
    data = to_dict(obj)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"{where}: expected key=value; received {item!r}")
        key, text = item.split("=", 1)
        parts = key.strip().split(".")
        node = data
        for i, part in enumerate(parts[:-1]):
            if not isinstance(node, dict) or part not in node:
                valid = ", ".join(node) if isinstance(node, dict) else "(none)"
                raise ConfigError(
                    f"{where}: unknown key '{'.'.join(parts[: i + 1])}'; valid keys: {valid}"
                )
            node = node[part]
        if not isinstance(node, dict):
            raise ConfigError(f"{where}: '{'.'.join(parts[:-1])}' is not a section")
        if parts[-1] not in node and not _accepts_new_keys(obj, parts[:-1]):
            near = difflib.get_close_matches(parts[-1], list(node), n=1)
            hint = f" (did you mean '{near[0]}'?)" if near else ""
            raise ConfigError(f"{where}: unknown key '{key}'{hint}; valid keys: {', '.join(node)}")
        node[parts[-1]] = _parse_value(text)
    return from_dict(type(obj), data, where=where)


def _accepts_new_keys(obj: Any, path: list[str]) -> bool:
    """Whether the field at ``path`` is a free-form dict (its keys are checked elsewhere)."""
    node = obj
    for part in path:
        node = getattr(node, part, None) if not isinstance(node, dict) else node.get(part)
    return isinstance(node, dict)


def record_from_dict(cls: type[T], data: Any, where: str) -> T:
    """:func:`from_dict` for a record written by :func:`edkeras.core.files.write_json`: null is NaN in float fields.

    (``write_json`` stores NaN as null; a config never does, so :func:`from_dict` keeps refusing null.)
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping; received {type(data).__name__}")
    hints = get_type_hints(cls)
    fixed = {k: (math.nan if v is None and hints.get(k) is float else v) for k, v in data.items()}
    return from_dict(cls, fixed, where=where)
