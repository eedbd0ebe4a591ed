"""What the phase notebooks share: one config recipe, train-or-load, the test events, the classical fit on them.

Method notes: ``docs/methods.md``, section ``edkeras.studies.phase``.

Example:
    >>> from edkeras.studies import phase, verdicts
    >>> cfg = phase.phase_config("v21_uncertainty", "synthetic", 6000, 10, 0, False, head="vmf")
    >>> result = phase.train_or_load(cfg, force=True, runs_dir="runs")
    >>> refs = verdicts.reference_results(cfg, "runs", run_dir=result.run_dir)
    >>> print(verdicts.conclusion(phase.summarise_run(result), refs, target_deg=20.0))
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from edkeras.core.errors import InputError
from edkeras.core.files import jsonable
from edkeras.core.schema import from_dict, to_dict
from edkeras.events.eventfile import EventBatch, open_events
from edkeras.reco.classical import classical_directions
from edkeras.reco.config import DataConfig, RunConfig
from edkeras.reco.dataset import EventDataset
from edkeras.reco.models import build_model, model_summary, plane_attention_model
from edkeras.reco.predictions import load_predictions, save_predictions
from edkeras.reco.run_data import prepare_data
from edkeras.reco.runs import is_finished, read_json
from edkeras.reco.training import RunResult, train
from edkeras.reports.plots.events import draw_event

__all__ = [
    "CPU_OPTIONS",
    "ENSEMBLE_METHODS",
    "FOCAL_ENERGY_EDGES",
    "ISOTROPIC_THETA68",
    "LEARNING_PASSES",
    "SCALES",
    "SMOKE_EPOCHS",
    "SMOKE_EVENTS",
    "SMOKE_OPTIONS",
    "V15_TRAINING",
    "classical_predictions",
    "data_key",
    "describe_config",
    "describe_members",
    "energy_balanced_alpha",
    "energy_bin_configs",
    "event_displays",
    "member_config",
    "predict_split",
    "read_split",
    "summarise_run",
    "train_or_load",
]

LEARNING_PASSES = 42_000
"""Training-sample passes at which every entry of the learning curve had learnt (``compact``, ES
θ68 61–64° at 42,000 passes; benchmarks/README.md, "What a training budget buys"): v17's
smallest Hyperband rung and the phases benchmark's budget stay above it."""

ISOTROPIC_THETA68 = math.degrees(math.acos(1.0 - 2.0 * 0.68))
"""θ68 of directions guessed at random (isotropic): 111.1°. A network must beat it to know anything."""

SCALES = ("cpu", "full")
"""``cpu``: the narrower widths of :data:`CPU_OPTIONS`; ``full``: the builders' own sizes."""

V15_TRAINING: dict[str, Any] = {"clipnorm": 0.5, "schedule": "plateau"}
"""How the earlier system trained v15 (Adam with gradient clipping, learning rate halved on a
validation plateau): the v15_baseline notebook's recipe, and the one v17's search starts from."""

SMOKE_EVENTS = 300
"""Events of a smoke run (at most): enough for a train, a validation and a test split."""

SMOKE_EPOCHS = 1

CPU_OPTIONS: dict[str, dict[str, Any]] = {
    # 1/4 of v15's widths (16·2^i filters instead of 64·2^i): 92 MFLOPs and 1.9 M parameters
    # per event instead of 1.39 GFLOPs and 11.0 M; the dense trunk (2 × 256) is kept.
    "baseline_v15": {"filters": 16},
    "residual_v18": {"filters": 16},
    "attention_v19": {"filters": 16},
    "multiscale_v20": {"filters": 12},
}
"""Builder options of ``scale="cpu"`` (a 2-core CPU trains each at ≥ 1/3 the speed of
``compact``); builders not listed keep their defaults."""

SMOKE_OPTIONS: dict[str, dict[str, Any]] = {
    "compact": {"filters": 8, "dense_units": 16},
    "baseline_v15": {"filters": 4, "dense_units": 16},
    "residual_v18": {"filters": 8, "depth": 2, "dense_units": 16},
    "attention_v19": {"filters": 8, "token_dim": 16, "num_heads": 2, "dense_units": 16},
    "multiscale_v20": {"filters": 4, "depth": 2, "dense_units": 16},
}
"""Tiny widths of smoke runs; any other builder gets ``filters=8, dense_units=16``."""

_SMOKE_DEFAULT = {"filters": 8, "dense_units": 16}

_KEY_FIELDS = (
    "files",
    "synthetic_events",
    "synthetic_seed",
    "n_events",
    "val_fraction",
    "test_fraction",
    "split_seed",
    "split_by",
    "energy_min",
    "energy_max",
    "interaction",
)
"""The data-config fields that decide which events are the test events."""

_HEAD_LOSS = {"vmf": "vmf_nll", "axial": "axial_sense"}
"""The loss a head trains with unless one is given (the others: ``angular``)."""


# ============================================================================ configs
def _files(data: str | os.PathLike | Sequence[str | os.PathLike]) -> list[str]:
    items = [data] if isinstance(data, (str, os.PathLike)) else list(data)
    if not items:
        raise InputError("phase_config: data must be 'synthetic' or event file(s); received an empty list")
    return [str(f) for f in items]


ENSEMBLE_METHODS = ("seeds", "bootstrap", "kfold")
"""How ensemble members differ: only by their seed, or also by a bootstrap resample or k-fold share of the training split."""


def member_config(config: RunConfig, method: str, member: int, n_members: int, seed: int = 0) -> RunConfig:
    """Member ``member`` of an ensemble of ``n_members``: ``config`` with its training events chosen by ``method``.

    ``seeds``: the same training events (members differ by their seed only); ``bootstrap``: a
    resample with repeats; ``kfold``: all but one of ``n_members`` folds. The resamples and folds
    depend on ``seed`` alone, so every member of one ensemble shares them.
    """
    if method not in ENSEMBLE_METHODS:
        raise InputError(f"ensemble method must be one of {', '.join(ENSEMBLE_METHODS)}; received {method!r}")
    if method == "seeds":
        return config
    return replace(config, data=replace(config.data, train_subset=method, train_member=int(member),
                                        train_members=int(n_members), train_subset_seed=int(seed)))


def describe_members(method: str, n_members: int) -> str:
    """What the members of an ensemble of ``method`` train on, in words."""
    return {"seeds": "the same training events", "bootstrap": "a bootstrap resample of the training split each",
            "kfold": f"all but one of {n_members} folds of the training split each"}[method]


def phase_config(
    name: str,
    data: str | os.PathLike | Sequence[str | os.PathLike] = "synthetic",
    n_events: int | None = 6000,
    epochs: int = 10,
    seed: int = 0,
    smoke: bool = False,
    *,
    model: str = "compact",
    head: str = "direction",
    loss: str | None = None,
    scale: str = "cpu",
    options: Mapping[str, Any] | None = None,
    training: Mapping[str, Any] | None = None,
    augmentation: Mapping[str, Any] | None = None,
    data_options: Mapping[str, Any] | None = None,
) -> RunConfig:
    """The run config of a phase notebook from its parameters.

    Args:
        name: the run's name (its folder under ``runs_dir``).
        data: ``"synthetic"`` (the embedded default, simulated on first use with
            ``n_events`` events) or one or more event files (``n_events`` then caps the
            events used; ``None`` uses all).
        n_events: number of events.
        epochs: training epochs (early stopping on validation may stop sooner).
        seed: training seed (weights, shuffling, augmentation). The **split** seed stays
            fixed, so every phase is tested on the same events.
        smoke: tiny run: at most :data:`SMOKE_EVENTS` events, :data:`SMOKE_EPOCHS` epoch,
            :data:`SMOKE_OPTIONS` widths, 100 bootstrap samples.
        model, head: registered builder and head (``direction``, ``vmf``, ``axial``, ``multitask``).
        loss: direction loss; default ``vmf_nll`` for the vmf head, ``axial_sense`` for the axial head, else ``angular``.
        scale: ``"cpu"`` (:data:`CPU_OPTIONS`) or ``"full"`` (the builder's defaults).
        options: further builder options (override the scale's; smoke widths override both).
        training, augmentation, data_options: further keys of those config sections.

    Returns:
        A checked :class:`~edkeras.reco.config.RunConfig` (unknown keys raise ConfigError).

    Raises:
        InputError: an unknown scale, a bad ``n_events``; ConfigError for bad keys.
    """
    if scale not in SCALES:
        raise InputError(f"phase_config: scale must be one of {', '.join(SCALES)}; received {scale!r}")
    if n_events is not None and (isinstance(n_events, bool) or not isinstance(n_events, int) or n_events < 3):
        raise InputError(f"phase_config: n_events must be an integer >= 3 or None; received {n_events!r}")
    files = _files(data)
    synthetic = files == ["synthetic"]
    if smoke:
        n_events = min(n_events or SMOKE_EVENTS, SMOKE_EVENTS)
        epochs = SMOKE_EPOCHS
    if synthetic and n_events is None:
        raise InputError("phase_config: data 'synthetic' needs n_events (how many events to simulate)")
    model_options = dict(CPU_OPTIONS.get(model, {})) if scale == "cpu" else {}
    model_options.update(options or {})
    if smoke:
        model_options.update(SMOKE_OPTIONS.get(model, _SMOKE_DEFAULT))
    data_section: dict[str, Any] = {"files": files}
    if synthetic:
        data_section["synthetic_events"] = int(n_events)  # type: ignore[arg-type]
    else:
        data_section["n_events"] = n_events
    data_section.update(data_options or {})
    training_section: dict[str, Any] = {
        "loss": loss or _HEAD_LOSS.get(head, "angular"),
        "epochs": int(epochs),
        "seed": int(seed),
    }
    if smoke:
        training_section.update(bootstrap_samples=100, batch_size=32)
    training_section.update(training or {})
    raw = {
        "name": name,
        "data": data_section,
        "model": {"name": model, "head": head, "options": model_options},
        "training": training_section,
        "augmentation": dict(augmentation or {}),
    }
    return from_dict(RunConfig, raw, where=f"notebook {name}")


def describe_config(config: RunConfig, scale: str | None = None) -> str:
    """One paragraph (Markdown) saying what is trained on what, with the model's size.

    Builds the model once to count its parameters and FLOPs (imports Keras).
    """

    m = config.model
    s = model_summary(build_model(m.name, head=m.head, energy_conditioning=config.data.energy_input, **m.options))
    d = config.data
    events = (
        f"{d.synthetic_events} simulated events (embedded default, seed {d.synthetic_seed})"
        if list(d.files) == ["synthetic"]
        else f"{'all' if d.n_events is None else d.n_events} events of {', '.join(d.files)}"
    )
    opts = ", ".join(f"{k}={v}" for k, v in m.options.items()) or "builder defaults"
    size = ""
    if scale == "cpu" and m.name in CPU_OPTIONS:
        size = " — **reduced width for a CPU** (`scale=\"cpu\"`); `scale=\"full\"` builds the published size"
    t = config.training
    return (
        f"**Run `{config.name}`**: model `{m.name}` (head `{m.head}`; {opts}{size}), "
        f"{s['params']:,} parameters, {s['flops_per_event'] / 1e6:.1f} MFLOPs per event; "
        f"loss `{t.loss}`, {t.epochs} epochs at most (batch {t.batch_size}, learning rate {t.learning_rate:g}, "
        f"seed {t.seed}); data: {events}, split {1 - d.val_fraction - d.test_fraction:.0%} train / "
        f"{d.val_fraction:.0%} validation / {d.test_fraction:.0%} test (split seed {d.split_seed}); "
        f"the epoch is chosen on validation, every number below is on the held-out test split."
    )


# ============================================================================ runs
def train_or_load(config: RunConfig, force: bool = True, runs_dir: str | os.PathLike = "runs") -> Any:
    """Train ``config`` into ``runs_dir/<name>``, or reload that run when it is finished and ``force`` is false.

    Args:
        config: the run config.
        force: retrain and overwrite the run folder (notebooks default to true: re-running a
            notebook re-runs its phase).
        runs_dir: where run folders live.

    Returns:
        An :class:`edkeras.reco.training.RunResult`.

    Raises:
        FileExistsError: a finished run of a *different* config is there and ``force`` is false.
    """

    run_dir = Path(runs_dir) / config.name
    if not force and is_finished(run_dir):
        saved = read_json(run_dir / "config.json")
        if saved != jsonable(to_dict(config)):
            raise FileExistsError(
                f"{run_dir}: holds a finished run of another config; set force = True to retrain it"
            )
        metrics = read_json(run_dir / "metrics.json")
        return RunResult(run_dir, config, metrics, int(metrics["best_epoch"]), int(metrics["epochs_run"]), False)
    return train(config, run_dir=run_dir, force=force, verbose=2)


def summarise_run(result: Any) -> dict[str, Any]:
    """The figures a notebook records for a run (JSON-ready; test split unless named ``val_``).

    Args:
        result: an :class:`edkeras.reco.training.RunResult` (or anything with ``config``,
            ``metrics``, ``run_dir``).

    Returns:
        ``run, model, head, loss, model_options, data, n_events, events, epochs_run,
        best_epoch, test_n, test_theta68, test_theta68_ci, test_median, test_median_ci,
        test_mean, test_flip_fraction, test_flip_fraction_ci, val_theta68, fit_seconds,
        train_samples_per_second`` and, for the vmf head, ``test_kappa_coverage`` (κ output) or ``test_sigma_coverage`` (σ output).
    """
    m, cfg = result.metrics, result.config
    test, val = m["test"]["overall"], m["val"]["overall"]
    events = {k: int(v) for k, v in m["events"].items()}
    out: dict[str, Any] = {
        "run": cfg.name,
        "run_dir": str(result.run_dir),
        "model": cfg.model.name,
        "head": cfg.model.head,
        "loss": cfg.training.loss,
        "model_options": dict(cfg.model.options),
        "data": list(cfg.data.files),
        "n_events": sum(events.values()),
        "events": events,
        "epochs_run": int(m["epochs_run"]),
        "best_epoch": int(m["best_epoch"]),
        "test_n": int(test["n"]),
        "val_theta68": val["theta68"],
        "fit_seconds": m.get("timing", {}).get("fit_seconds_this_session"),
        "train_samples_per_second": m.get("timing", {}).get("train_samples_per_second"),
    }
    for key in ("theta68", "median", "mean", "flip_fraction"):
        out[f"test_{key}"] = test[key]
        if f"{key}_ci" in test:
            out[f"test_{key}_ci"] = list(test[f"{key}_ci"])
    if "kappa_coverage" in m["test"]:
        out["test_kappa_coverage"] = dict(m["test"]["kappa_coverage"])
    if "sigma_coverage" in m["test"]:
        out["test_sigma_coverage"] = dict(m["test"]["sigma_coverage"])
    return out


def energy_bin_configs(config: RunConfig, edges: Sequence[float]) -> list[RunConfig]:
    """The proposal's alternative to an energy input: one model per bin of reconstructed energy.

    Returns ``config`` restricted to [−∞, e₁), [e₁, e₂), …, [e_k, ∞) MeV of reconstructed energy
    (``data.energy_min`` / ``energy_max``), each named ``<name>_e<lo>-<hi>``. The split is drawn
    before the filter, so together their test events are ``config``'s test events with a finite
    reconstructed energy, and together they train on its training events once.

    Raises:
        InputError: edges not finite and increasing, a config already filtered in energy, or a
            capped event count (``data.n_events``), which would cap each bin rather than the whole set.
    """
    e = [float(x) for x in edges]
    if not e or not all(math.isfinite(x) for x in e) or any(b <= a for a, b in itertools.pairwise(e)):
        raise InputError(f"energy_bin_configs: edges must be a non-empty increasing list of finite energies (MeV); "
                         f"received {list(edges)!r}")
    if config.data.energy_min is not None or config.data.energy_max is not None:
        raise InputError(
            f"energy_bin_configs: {config.name} already keeps only [{config.data.energy_min}, {config.data.energy_max}) MeV; "
            "the bins split the whole energy range"
        )
    if config.data.n_events is not None:
        raise InputError(
            f"energy_bin_configs: {config.name} caps data.n_events at {config.data.n_events}, which would cap each energy "
            "bin instead of the whole set; use the whole file (n_events None) or a file of the size wanted"
        )
    bounds = [None, *e, None]
    out = []
    for lo, hi in itertools.pairwise(bounds):
        name = f"{config.name}_e{'0' if lo is None else f'{lo:g}'}-{'inf' if hi is None else f'{hi:g}'}"
        out.append(replace(config, name=name, data=replace(config.data, energy_min=lo, energy_max=hi)))
    return out


# ============================================================================ test events
def data_key(config: RunConfig | DataConfig | Mapping[str, Any]) -> dict[str, Any]:
    """The data settings that decide the test events (files, event cap, split); equal keys, same events.

    Accepts a RunConfig, its DataConfig, or a config dict (e.g. a run's ``config.json``).
    Event-file paths are made absolute; ``"synthetic"`` stays as it is.
    """
    if isinstance(config, RunConfig):
        d: Any = to_dict(config.data)
    elif isinstance(config, DataConfig):
        d = to_dict(config)
    else:
        d = dict(config.get("data", config))
        d = to_dict(from_dict(DataConfig, d, where="data"))
    key = {k: d[k] for k in _KEY_FIELDS}
    key["files"] = [f if f == "synthetic" else str(Path(f).expanduser().resolve()) for f in d["files"]]
    if key["files"] != ["synthetic"]:
        key.pop("synthetic_events")
        key.pop("synthetic_seed")
    return key


def read_split(config: RunConfig, split: str = "test", positions: Any = None) -> Any:
    """The events of one split of ``config``'s data, in the order of the run's predictions file.

    Args:
        config: the run config (its data section decides files, split and cap).
        split: ``train``, ``val`` or ``test``.
        positions: which of the split's events (indices into the predictions file's order);
            default all.

    Returns:
        An :class:`edkeras.events.eventfile.EventBatch`.
    """

    if split not in ("train", "val", "test"):
        raise InputError(f"read_split: split must be train, val or test; received {split!r}")
    sub = prepare_data(config.data).subset(split)
    pos = np.arange(len(sub)) if positions is None else np.asarray(positions, dtype=np.int64).ravel()
    parts, where = [], []
    for k, path in enumerate(sub.files):
        mine = np.flatnonzero(sub.file[pos] == k)
        if mine.size:
            with open_events(path) as ev:
                parts.append(ev.read(sub.row[pos[mine]]))
            where.append(mine)
    if not parts:
        raise InputError(f"read_split: no {split} events selected")
    batch = EventBatch.concatenate(parts)
    order = np.empty(pos.size, dtype=np.int64)
    order[np.concatenate(where)] = np.arange(pos.size)
    return batch.select(order)


def classical_predictions(
    config: RunConfig, path: str | os.PathLike, split: str = "test", chunk: int = 2048
) -> Any:
    """Run the classical reconstruction on ``config``'s ``split`` events; write and return a predictions file.

    The events are those of the run's own predictions file, in the same order, so the
    classical baseline and the network are compared on identical events.

    Returns:
        The :class:`edkeras.reco.predictions.Predictions` written to ``path``.
    """

    n = len(prepare_data(config.data).subset(split))
    batches, dirs = [], []
    for start in range(0, n, chunk):
        b = read_split(config, split, np.arange(start, min(n, start + chunk)))
        batches.append(b)
        dirs.append(classical_directions(b))
    b = EventBatch.concatenate(batches).filled()
    save_predictions(
        path, predictions=np.concatenate(dirs), true_directions=b.direction, energies=b.reco_energy,
        true_energies=b.energy, interaction=b.interaction, nu_directions=b.nu_direction,
        event_id=b.event_id, split=split, run="classical", model="classical",
    )
    return load_predictions(path)


# ============================================================================ figures
def event_displays(config: RunConfig, predictions: Any, quantiles: Sequence[float] = (0.2, 0.5, 0.9)) -> list[Any]:
    """Event displays of test events at given quantiles of the angular error (good, typical, bad).

    Args:
        config: the run config (its data decide where the events are read from).
        predictions: the run's :class:`~edkeras.reco.predictions.Predictions` of the test split.
        quantiles: which events to show, by rank of their angular error.

    Returns:
        One matplotlib figure per event (three planes; true direction red, predicted white).
    """
    import matplotlib.pyplot as plt


    err = np.asarray(predictions.angular_errors, dtype=np.float64)
    order = np.argsort(err, kind="stable")
    picks = [int(order[min(int(q * err.size), err.size - 1)]) for q in quantiles]
    batch = read_split(config, predictions.split or "test", picks)
    if not np.array_equal(np.asarray(batch.event_id), np.asarray(predictions.event_id)[picks]):
        raise InputError("event_displays: the events read and the predictions are not the same events")
    figs = []
    for j, (q, i) in enumerate(zip(quantiles, picks)):
        b = batch.select(slice(j, j + 1)).filled()
        kind = {1: "ES", 0: "CC"}.get(int(b.interaction[0]), "unknown type")
        fig = draw_event(
            {p: b.images[p][0] for p in "UVX"}, direction=b.direction[0], predicted=predictions.predictions[i],
            window_origin=b.window_origin[0], vertex=b.vertex[0],
            title=f"test event {int(b.event_id[0])} ({kind}, {float(b.reco_energy[0]):.1f} MeV reconstructed): "
            f"error {err[i]:.1f}°, {round(100 * q)}th percentile",
        )
        plt.close(fig)  # shown by the caller with display(fig); pyplot must not keep it
        figs.append(fig)
    return figs


# ============================================================================ phase-specific helpers
def predict_split(result: Any, split: str = "test", outputs: str | None = None) -> dict[str, np.ndarray]:
    """Outputs of a finished run's model on a split, in the predictions-file order.

    Args:
        result: a :class:`edkeras.reco.training.RunResult` (``run_dir``, ``config``).
        split: ``val`` or ``test``.
        outputs: ``None`` for the model's own outputs, or ``"plane_weights"`` for the
            per-plane attention shares of an ``attention_v19`` model.

    Returns:
        Output name → array (``plane_weights``: (N, 3), order U, V, X).
    """
    import keras


    cfg = result.config
    model = keras.saving.load_model(Path(result.run_dir) / "model.keras", compile=False)
    if outputs == "plane_weights":
        model = plane_attention_model(model)
    ds = EventDataset(
        prepare_data(cfg.data).subset(split), 256, head=cfg.model.head, energy_input=cfg.data.energy_input, targets=False
    )
    try:
        out = model.predict(ds, verbose=0)
    finally:
        ds.close()
    if not isinstance(out, dict):
        out = {outputs or "direction": out}
    return {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}


FOCAL_ENERGY_EDGES: tuple[float, ...] = (5.0, 10.0, 15.0, 20.0, 30.0, 50.0, 100.0)
"""Energy bins (MeV, true energy) of the focal loss weights α; events outside go to the end bins."""


def energy_balanced_alpha(config: RunConfig, edges: Sequence[float] = FOCAL_ENERGY_EDGES) -> list[float]:
    """Focal-loss weights α per true-energy bin, inversely proportional to the **training** split's counts.

    Normalised so that the average weight over training events is 1; empty bins get 1.
    """

    e = np.asarray(prepare_data(config.data).subset("train").field("energy"), dtype=np.float64)
    ed = np.asarray(edges, dtype=np.float64)
    idx = np.clip(np.searchsorted(ed[1:-1], e, side="right"), 0, ed.size - 2)
    counts = np.bincount(idx, minlength=ed.size - 1).astype(np.float64)
    alpha = np.where(counts > 0, e.size / ((ed.size - 1) * np.maximum(counts, 1.0)), 1.0)
    norm = float(np.sum(alpha * counts) / max(e.size, 1))
    return [round(float(a / norm), 4) for a in alpha]


