"""Trained models shipped with the package, each with a model card.

A shipped model is a folder ``edkeras/models/shipped/<NAME>/`` laid out like a finished run
folder (``config.json``, ``model.keras``, ``metrics.json``) plus ``card.json``: what it was
trained on (simulation version, response spread, events, seed), the budget, the held-out
metrics with intervals and the known limits. Wherever a run folder is accepted,
``pretrained:NAME`` names a shipped model (``edkeras evaluate pretrained:compact_vmf
--data FILE``).

Example:
    >>> from edkeras.models import load_pretrained, list_pretrained
    >>> [m["name"] for m in list_pretrained()]
    ['compact_vmf']
    >>> model = load_pretrained("compact_vmf")
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from edkeras.errors import InputError

__all__ = ["PREFIX", "SHIPPED_DIR", "list_pretrained", "load_pretrained", "model_card", "pretrained_dir",
           "resolve_run_dir"]

SHIPPED_DIR = Path(__file__).resolve().parent / "shipped"
PREFIX = "pretrained:"
_NEEDED = ("card.json", "config.json", "model.keras")


def _names() -> list[str]:
    if not SHIPPED_DIR.is_dir():
        return []
    return sorted(p.name for p in SHIPPED_DIR.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))


def pretrained_dir(name: str) -> Path:
    """The folder of shipped model ``name``; an unknown name lists the available ones."""
    names = _names()
    if name not in names:
        raise InputError(f"pretrained:{name}: no such shipped model; available: {', '.join(names) or 'none'}")
    folder = SHIPPED_DIR / name
    for need in _NEEDED:
        if not (folder / need).is_file():
            raise InputError(f"pretrained:{name}: {folder / need} is missing; the package install is incomplete "
                             "(reinstall edkeras)")
    return folder


def model_card(name: str) -> dict[str, Any]:
    """The model card (``card.json``) of shipped model ``name``."""
    path = pretrained_dir(name) / "card.json"
    try:
        card = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"pretrained:{name}: {path} is damaged ({e}); reinstall edkeras") from None
    if not isinstance(card, dict) or card.get("format") != "edkeras-model-card":
        raise InputError(f"pretrained:{name}: {path} is not an edkeras model card (format 'edkeras-model-card')")
    return card


def list_pretrained() -> list[dict[str, Any]]:
    """Every shipped model's card (name, model, training data, budget, metrics, limits)."""
    return [model_card(n) for n in _names()]


def load_pretrained(name: str) -> Any:
    """The Keras model of shipped model ``name`` (uncompiled, ready for ``predict``)."""
    import keras

    import edkeras.models  # noqa: F401  (registers the custom objects)

    path = pretrained_dir(name) / "model.keras"
    model_card(name)
    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as e:  # a truncated or foreign file: say which and what to do
        raise InputError(f"pretrained:{name}: {path} cannot be loaded ({type(e).__name__}: {e}); "
                         "reinstall edkeras") from None


def resolve_run_dir(spec: str | os.PathLike) -> Path:
    """A run folder from ``spec``: ``pretrained:NAME`` gives the shipped folder, anything else is a path."""
    text = os.fspath(spec)
    if text.startswith(PREFIX):
        name = text[len(PREFIX):]
        model_card(name)
        return pretrained_dir(name)
    return Path(text)
