"""Trained models shipped with the package, each with a model card.

Method notes: ``docs/methods.md``, section ``edkeras.reco.pretrained``.

Example:
    >>> from edkeras.reco.pretrained import load_pretrained, list_pretrained
    >>> [m["name"] for m in list_pretrained()]
    ['compact_vmf']
    >>> model = load_pretrained("compact_vmf")
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from edkeras.core.errors import InputError
from edkeras.core.files import atomic_path, write_text

__all__ = [
    "PREFIX",
    "SHIPPED_DIR",
    "TABLES_FILE",
    "card_markdown",
    "copy_initial_weights",
    "deflate_keras_file",
    "initial_weights_file",
    "list_pretrained",
    "load_pretrained",
    "model_card",
    "pretrained_dir",
    "pretrained_tables",
    "resolve_run_dir",
    "resolve_tables",
    "separation_summary",
    "ship_run",
    "write_card_markdown",
]

SHIPPED_DIR = Path(__file__).resolve().parent / "models" / "shipped"
PREFIX = "pretrained:"
_NEEDED = ("card.json", "config.json", "model.keras")
TABLES_FILE = "tables.npz"
"""The shipped likelihood tables' file name in a model's folder."""


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

    # here, not at the top: the cards and tables of this module are read without TensorFlow
    import edkeras.reco.models  # noqa: F401  (registers the layers, losses and metrics the saved model names)

    path = pretrained_dir(name) / "model.keras"
    model_card(name)
    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as e:  # a truncated or foreign file: say which and what to do
        raise InputError(f"pretrained:{name}: {path} cannot be loaded ({type(e).__name__}: {e}); "
                         "reinstall edkeras") from None


def deflate_keras_file(path: str | os.PathLike) -> Path:
    """Rewrite a ``.keras`` archive with its members zip-deflated (Keras stores them uncompressed).

    The weights and config are byte for byte the same; ``compact_vmf`` shrinks from 1.11 MB to
    0.88 MB. Run it on a model before shipping it.
    """
    import zipfile


    path = Path(path)
    with zipfile.ZipFile(path) as zin:
        members = [(i.filename, zin.read(i.filename)) for i in zin.infolist()]
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for name, data in members:
            z.writestr(name, data)
    return path


def ship_run(run_dir: str | os.PathLike, name: str, card: dict[str, Any], shipped_dir: str | os.PathLike | None = None) -> Path:
    """Copy a finished run into the package as shipped model ``name``, with its card.

    ``config.json`` and ``metrics.json`` are copied; ``model.keras`` is saved again without the
    optimizer's state (a third of the size; the weights are the same) and deflated;
    ``card.json`` (``format``/``name`` filled in) and ``card.md`` are written. Every file goes
    to a temporary name first, so an interrupted call leaves the old model whole.

    Raises:
        InputError: ``run_dir`` is not a finished run.
    """
    import shutil


    src = Path(run_dir)
    for need in ("config.json", "metrics.json", "model.keras"):
        if not (src / need).is_file():
            raise InputError(f"{src}: no {need}; only a finished run can be shipped")
    folder = Path(shipped_dir or SHIPPED_DIR) / name
    folder.mkdir(parents=True, exist_ok=True)
    import keras

    # here, not at the top: the cards and tables of this module are read without TensorFlow
    import edkeras.reco.models  # noqa: F401  (registers the layers, losses and metrics the saved model names)

    for f in ("config.json", "metrics.json"):
        with atomic_path(folder / f) as tmp:
            shutil.copyfile(src / f, tmp)
    model = keras.saving.load_model(src / "model.keras", compile=False)
    with atomic_path(folder / "model.keras") as tmp:
        named = tmp.with_name(tmp.name + ".keras")  # Keras insists on the suffix
        model.save(named)
        named.rename(tmp)
    deflate_keras_file(folder / "model.keras")
    card = {"name": name, "format": "edkeras-model-card", "version": 1, **card}
    write_text(folder / "card.json", json.dumps(card, indent=2) + "\n")
    write_text(folder / "card.md", card_markdown(card))
    return folder


def resolve_run_dir(spec: str | os.PathLike) -> Path:
    """A run folder from ``spec``: ``pretrained:NAME`` gives the shipped folder, anything else is a path."""
    text = os.fspath(spec)
    if text.startswith(PREFIX):
        name = text[len(PREFIX):]
        model_card(name)
        return pretrained_dir(name)
    return Path(text)


def initial_weights_file(spec: str) -> Path:
    """The ``.keras`` file named by ``model.initial_weights``: ``pretrained:NAME``, a run folder
    (its ``model.keras``) or the file itself; an error says what is missing."""
    path = resolve_run_dir(spec)
    if path.is_dir():
        path = path / "model.keras"
    if not path.is_file():
        raise InputError(f"model.initial_weights: {path} does not exist; expected pretrained:NAME, a finished run "
                         "folder or a .keras file")
    return path


def copy_initial_weights(model: Any, spec: str) -> Path:
    """Set the weights of ``model`` to those of the model named by ``spec`` (same architecture).

    Raises:
        InputError: the file cannot be loaded, or its weights differ from the model's in number
            or shape (the first mismatch named).
    """
    import keras

    # here, not at the top: the cards and tables of this module are read without TensorFlow
    import edkeras.reco.models  # noqa: F401  (registers what the saved model names)

    path = initial_weights_file(spec)
    try:
        source = keras.saving.load_model(path, compile=False)
    except Exception as e:
        raise InputError(f"model.initial_weights: {path} cannot be loaded as a Keras model ({type(e).__name__}: "
                         f"{str(e).strip().splitlines()[0] if str(e).strip() else 'no detail'})") from None
    have, want = source.weights, model.weights
    if len(have) != len(want):
        raise InputError(f"model.initial_weights: {path} holds {len(have)} weight tensors, the model of this run "
                         f"{len(want)}; the architecture (model.name, head, options) must be the same")
    for a, b in zip(have, want):
        if tuple(a.shape) != tuple(b.shape):
            raise InputError(f"model.initial_weights: {path}: weight {b.path} has shape {tuple(a.shape)} there and "
                             f"{tuple(b.shape)} in this run; the architecture must be the same")
    model.set_weights(source.get_weights())
    return path


def pretrained_tables(name: str) -> Path:
    """The likelihood tables shipped beside model ``name`` (an error says when it has none)."""
    path = pretrained_dir(name) / TABLES_FILE
    if not path.is_file():
        with_tables = [n for n in _names() if (SHIPPED_DIR / n / TABLES_FILE).is_file()]
        raise InputError(f"pretrained:{name}: ships no likelihood tables ({path} is missing); models with "
                         f"tables: {', '.join(with_tables) or 'none'}")
    return path


def resolve_tables(spec: str | os.PathLike) -> Path:
    """A tables file from ``spec``: ``pretrained:NAME`` gives the model's shipped tables, anything else is a path."""
    text = os.fspath(spec)
    if text.startswith(PREFIX):
        return pretrained_tables(text[len(PREFIX):])
    return Path(text)


def _summary(m: dict[str, Any] | None) -> str:
    if not m:
        return "—"
    lo, hi = m.get("theta68_ci", [None, None])
    ci = f" [{lo:.1f}, {hi:.1f}]" if lo is not None else ""
    flips = f", flips {100 * m['flip_fraction']:.2f} %" if m.get("flip_fraction") is not None else ""
    return f"θ68 {m['theta68']:.1f}°{ci}, median {m['median']:.1f}°{flips} ({m.get('n', '?')} events)"


def separation_summary(m: dict[str, Any] | None) -> str:
    """One line of an ES/CC classifier's held-out separation (:func:`edkeras.reco.metrics.es_cc_separation`)."""
    if not m:
        return "—"
    passes = " / ".join(f"{100 * v:.1f} %" for v in m["cc_pass"].values())
    effs = " / ".join(f"{100 * float(e):g}" for e in m["cc_pass"])
    return (f"AUC {m['auc']:.3f}; CC events passing at {effs} % ES efficiency: {passes} "
            f"({m['n_es']} ES, {m['n_cc']} CC events)")


def card_markdown(card: dict[str, Any]) -> str:
    """The Markdown section of a model card (``card.md``), written from its JSON."""
    mod, data, budget, met = card["model"], card["training_data"], card["budget"], card.get("metrics", {})
    lines = [
        f"# Model card: `pretrained:{card['name']}`",
        "",
        f"*{mod['builder']}* builder with the *{mod['head']}* head ({mod['parameters']:,} parameters), "
        f"loss `{mod.get('loss', '?')}`; inputs {mod.get('inputs', '?')}; outputs {mod.get('outputs', '?')}.",
        "",
        "## Training data",
        "",
        f"- {data['events']:,} events simulated by {data['generator']}; channel: {data['channel']}; seed {data['seed']}",
        f"- detector-response spread: {data.get('response_spread') or 'none'}",
        f"- split: {data.get('split')}",
        "",
        "## Budget",
        "",
        f"- {budget['sample_passes']:,} sample passes ({budget['epochs_run']} epochs, batch {budget['batch_size']}, "
        f"learning rate {budget['learning_rate']}); epoch chosen on {budget['chosen_on']}",
        f"- {budget['hardware']}, {budget['train_seconds']} s of training",
        f"- command: `{budget['command']}`",
        "",
        "## Held-out metrics (" + str(met.get("interval", "")) + ")",
        "",
    ]
    for key, value in met.items():
        if isinstance(value, dict) and "theta68" in value:
            lines.append(f"- {key.replace('_', ' ')}: {_summary(value)}")
        elif isinstance(value, dict) and "auc" in value:
            lines.append(f"- {key.replace('_', ' ')}: {separation_summary(value)}")
        elif isinstance(value, str) and key != "interval":
            lines.append(f"- {key.replace('_', ' ')}: {value}")
        elif isinstance(value, dict) and "network_and_blips" in value:
            lines.append(f"- {key.replace('_', ' ')} ({value.get('sample', '')}): network alone "
                         f"{separation_summary(value['network_alone'])}; with the blips round the event (`blips.json`) "
                         f"{separation_summary(value['network_and_blips'])}. Command: `{value.get('command', '?')}`")
        elif isinstance(value, dict) and "network" in value:
            lines.append(f"- {key.replace('_', ' ')}: network {_summary(value['network'])}; classical fit "
                         f"{_summary(value.get('classical_fit_same_events'))}")
    tables = card.get("tables")
    if card.get("role") != "es_cc_classifier":  # a classifier has no direction, so no tables
        lines += ["", "## Likelihood tables", ""]
        if tables:
            lines += [f"`{tables['file']}`: {tables['summary']}. Command: `{tables['command']}`.",
                      f"Use: `edkeras point PREDICTIONS.npz --tables pretrained:{card['name']}`."]
        else:
            lines.append("None shipped: build them with `edkeras likelihood` on a calibration sample.")
    if card.get("use"):
        lines += ["", "## Use", ""] + [f"- {x}" for x in card["use"]]
    lines += ["", "## Known limits", ""] + [f"- {x}" for x in card.get("limits", [])]
    return "\n".join(lines) + "\n"


def write_card_markdown(folder: str | os.PathLike) -> Path:
    """Rewrite ``card.md`` of a shipped model's folder from its ``card.json``."""
    folder = Path(folder)
    card = json.loads((folder / "card.json").read_text())

    return write_text(folder / "card.md", card_markdown(card))
