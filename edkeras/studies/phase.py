"""What the phase notebooks share: one config recipe, train-or-load, the references, the verdict.

Every training notebook of the improvement plan (``v15_baseline`` … ``v22_energy_conditioned``)
answers one question of the proposal the same way: build a run config from its parameters,
train (or reload) the run, look at the held-out **test** events, and close with a sentence
that puts the measured θ68 next to the references on the **same test events**:

* ``baseline_v15`` — the earlier system's CNN, trained by the ``v15_baseline`` notebook on
  the same data (same files, event cap, split fractions and split seed);
* the classical (non-ML) reconstruction of :mod:`edkeras.reco.classical`, recomputed
  here on the test events (a few seconds);
* the proposal's own target where it has one (v17: θ68 < 22°, final: < 20°; v21: predicted
  uncertainty within 20 % of the actual error).

Sizes. ``smoke=True`` gives a run that exercises every code path in seconds (a few hundred
events, one epoch, a few-thousand-parameter model): its numbers mean nothing. Otherwise
``scale="cpu"`` keeps the proposal's architectures but narrows the slow ones so that a
2-core CPU trains them in minutes (stated in every report by :func:`describe_config`),
and ``scale="full"`` builds them at their published size for a GPU (``baseline_v15`` =
the earlier 11 M-parameter model).

Example:
    >>> from edkeras import phase
    >>> cfg = phase.phase_config("v21_uncertainty", "synthetic", 6000, 10, 0, False, head="vmf")
    >>> result = phase.train_or_load(cfg, force=True, runs_dir="runs")
    >>> refs = phase.reference_results(cfg, "runs", run_dir=result.run_dir)
    >>> print(phase.conclusion(phase.summarise_run(result), refs, target_deg=20.0))
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edkeras.core.errors import InputError
from edkeras.core.schema import from_dict, to_dict
from edkeras.events.eventfile import EventBatch, open_events
from edkeras.reco.classical import classical_directions
from edkeras.reco.config import DataConfig, RunConfig
from edkeras.reco.dataset import EventDataset
from edkeras.reco.metrics import resolution_summary
from edkeras.reco.models import build_model, model_summary, plane_attention_model
from edkeras.reco.predictions import load_predictions, save_predictions
from edkeras.reco.run_data import prepare_data
from edkeras.reco.runs import is_finished, list_runs, read_json
from edkeras.reco.search_space import TuningConfig
from edkeras.reco.training import RunResult, train
from edkeras.reports.notebooks import project_root
from edkeras.reports.plots.events import draw_event

__all__ = [
    "CPU_OPTIONS",
    "CPU_SEARCH_SPACE",
    "FOCAL_ENERGY_EDGES",
    "ISOTROPIC_THETA68",
    "SCALES",
    "SMOKE_EPOCHS",
    "SMOKE_EVENTS",
    "SMOKE_OPTIONS",
    "SMOKE_SEARCH_SPACE",
    "calibration_markdown",
    "classical_predictions",
    "compare",
    "conclusion",
    "data_key",
    "describe_config",
    "energy_balanced_alpha",
    "event_displays",
    "find_baseline",
    "plot_energy_and_type",
    "plot_plane_weights",
    "plot_trials",
    "predict_split",
    "read_split",
    "reference_results",
    "summarise_run",
    "train_or_load",
    "trials_markdown",
    "tuning_settings",
]

ISOTROPIC_THETA68 = math.degrees(math.acos(1.0 - 2.0 * 0.68))
"""θ68 of directions guessed at random (isotropic): 111.1°. A network must beat it to know anything."""

SCALES = ("cpu", "full")
"""``cpu``: the narrower widths of :data:`CPU_OPTIONS`; ``full``: the builders' own sizes."""

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
        if saved != _jsonish(to_dict(config)):
            raise FileExistsError(
                f"{run_dir}: holds a finished run of another config; set force = True to retrain it"
            )
        metrics = read_json(run_dir / "metrics.json")
        return RunResult(run_dir, config, metrics, int(metrics["best_epoch"]), int(metrics["epochs_run"]), False)
    return train(config, run_dir=run_dir, force=force, verbose=2)


def _jsonish(obj: Any) -> Any:
    import json

    return json.loads(json.dumps(obj))


def summarise_run(result: Any) -> dict[str, Any]:
    """The figures a notebook records for a run (JSON-ready; test split unless named ``val_``).

    Args:
        result: an :class:`edkeras.reco.training.RunResult` (or anything with ``config``,
            ``metrics``, ``run_dir``).

    Returns:
        ``run, model, head, loss, model_options, data, n_events, events, epochs_run,
        best_epoch, test_n, test_theta68, test_theta68_ci, test_median, test_median_ci,
        test_mean, test_flip_fraction, test_flip_fraction_ci, val_theta68, fit_seconds,
        train_samples_per_second`` and, for the vmf head, ``test_kappa_coverage``.
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
        event_id=b.event_id, split=split, run="classical",
    )
    return load_predictions(path)


def find_baseline(config: RunConfig, runs_dir: str | os.PathLike = "runs", model: str = "baseline_v15") -> Any:
    """The finished ``model`` run on the same test events as ``config`` (a :class:`edkeras.reco.runs.RunInfo`), or None.

    Prefers the run named ``v15_baseline`` (the notebook's), then the newest.
    """

    key = data_key(config)
    found = []
    for run in list_runs(runs_dir):
        cfg = run.config or {}
        if not run.finished or run.name == config.name or cfg.get("model", {}).get("name") != model:
            continue
        try:
            same = data_key(cfg) == key
        except InputError:
            continue
        if same:
            found.append(run)
    if not found:
        return None
    found.sort(key=lambda r: (r.name != "v15_baseline", -(r.path / "metrics.json").stat().st_mtime))
    return found[0]


def _ref_entry(name: str, summary: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "n": int(summary["n"]),
        "theta68": float(summary["theta68"]),
        "theta68_ci": [float(x) for x in summary["theta68_ci"]],
        "median": float(summary["median"]),
        "flip_fraction": float(summary["flip_fraction"]),
        **extra,
    }


def reference_results(
    config: RunConfig,
    runs_dir: str | os.PathLike = "runs",
    *,
    run_dir: str | os.PathLike | None = None,
    baseline: bool = True,
    classical: bool = True,
    n_boot: int | None = None,
) -> dict[str, Any]:
    """The references of a phase on the same test events: ``baseline_v15`` (from disk) and the classical fit.

    Args:
        config: the phase's run config.
        runs_dir: where to look for the ``baseline_v15`` run.
        run_dir: where to write the classical predictions (``classical_predictions_test.npz``);
            default ``runs_dir/<config.name>``.
        baseline: look for the ``baseline_v15`` run (false in the notebook that makes it).
        classical: compute the classical baseline (a few seconds per thousand events).
        n_boot: bootstrap samples of its CIs (default: the config's).

    Returns:
        ``{"data_key", "baseline_v15": entry or None, "baseline_v15_missing": how to make
        it (when None), "classical": entry or None}``; an entry holds ``name, n, theta68,
        theta68_ci, median, flip_fraction`` (and ``run``, ``path``, ``model_options`` for
        the baseline, ``predictions`` for the classical).
    """

    out: dict[str, Any] = {"data_key": data_key(config), "baseline_v15": None, "classical": None}
    run = find_baseline(config, runs_dir) if baseline else None
    if run is not None:
        out["baseline_v15"] = _ref_entry(
            "baseline_v15", run.test_summary(), run=run.name, path=str(run.path),
            model_options=(run.config or {}).get("model", {}).get("options", {}),
        )
    elif baseline:
        d = config.data
        how = [f"-p data {d.files[0]!r}" if list(d.files) != ["synthetic"] else ""]
        n = d.synthetic_events if list(d.files) == ["synthetic"] else d.n_events
        how.append(f"-p n_events {n}" if n is not None else "")

        if Path(runs_dir).resolve() != (project_root() / "runs").resolve():
            how.append(f"-p runs_dir {runs_dir}")
        out["baseline_v15_missing"] = (
            f"no finished baseline_v15 run on these test events in {runs_dir}; make it with "
            f"`{' '.join(['edkeras run v15_baseline', *(h for h in how if h)])}`"
        )
    if classical:
        target = Path(run_dir) if run_dir is not None else Path(runs_dir) / config.name
        target.mkdir(parents=True, exist_ok=True)
        pred = classical_predictions(config, target / "classical_predictions_test.npz")
        nb = n_boot if n_boot is not None else config.training.bootstrap_samples
        summary = resolution_summary(pred.angular_errors, n_boot=nb, seed=config.training.seed)
        out["classical"] = _ref_entry("classical", summary, predictions=str(pred.path))
    return out


# ============================================================================ verdicts
def compare(value: float, ci: Sequence[float], ref: float, ref_ci: Sequence[float]) -> str:
    """``"better"``, ``"worse"`` or ``"compatible"``: θ68 against a reference by their 68 % intervals.

    Smaller θ68 is better; "better"/"worse" only when the two intervals do not overlap.
    """
    lo, hi = float(ci[0]), float(ci[1])
    rlo, rhi = float(ref_ci[0]), float(ref_ci[1])
    if not all(math.isfinite(x) for x in (lo, hi, rlo, rhi)):
        return "better" if value < ref else "worse" if value > ref else "compatible"
    if hi < rlo:
        return "better"
    if lo > rhi:
        return "worse"
    return "compatible"


def _fmt_ci(value: float, ci: Sequence[float]) -> str:
    return f"{value:.1f}° [{float(ci[0]):.1f}, {float(ci[1]):.1f}]"


_WORDS = {
    "better": "**better**",
    "worse": "**worse**",
    "compatible": "**compatible** (the 68 % intervals overlap)",
}


def conclusion(
    metrics: Mapping[str, Any],
    references: Mapping[str, Any],
    target_deg: float | None = None,
    *,
    calibration: Mapping[str, Any] | None = None,
    calibration_tolerance: float = 0.2,
    others: Mapping[str, Mapping[str, Any]] | None = None,
) -> str:
    """The closing statement of a phase notebook (Markdown): the result against references and target.

    Args:
        metrics: :func:`summarise_run` output (``test_theta68``, ``test_theta68_ci``,
            ``test_n``, ``run``; ``smoke`` and ``data`` are used when present).
        references: :func:`reference_results` output.
        target_deg: the proposal's θ68 target for this phase, if it has one.
        calibration: ``{"ratio": predicted/actual θ68, "share_within_20pct": …}`` (and
            optionally ``ratio_recalibrated``) for the uncertainty target of v21.
        calibration_tolerance: the proposal's 20 %.
        others: label → :func:`summarise_run` output of further runs on the same test
            events (e.g. the same model without augmentation), compared like the references.

    Returns:
        Markdown text: one bullet per comparison.
    """
    t68, ci = float(metrics["test_theta68"]), metrics["test_theta68_ci"]
    lines = [
        f"**{metrics.get('run', 'this run')}**: θ68 = {_fmt_ci(t68, ci)} on {int(metrics['test_n'])} held-out "
        "test events (68 % bootstrap interval)."
    ]
    if metrics.get("smoke"):
        lines.insert(0, "*Smoke run (tiny data and model, one epoch): the numbers only show that the code runs.*")
    informative = float(ci[1]) < ISOTROPIC_THETA68
    if not informative:
        lines.append(
            f"- **No better than a random guess**: directions drawn at random give θ68 = {ISOTROPIC_THETA68:.1f}°, "
            "inside or below this run's interval — the network has not learnt the direction (too few events or "
            "epochs for this model and loss)."
        )
    compared: list[tuple[str, Mapping[str, Any] | None, str | None]] = [
        (f"the {label}", {"theta68": o["test_theta68"], "theta68_ci": o["test_theta68_ci"], "run": o.get("run")}, None)
        for label, o in (others or {}).items()
    ]
    compared += [
        ("the earlier system's CNN `baseline_v15`", references.get("baseline_v15"), references.get("baseline_v15_missing")),
        ("the classical line fit with head–tail choice", references.get("classical"), None),
    ]
    for label, ref, missing in compared:
        if ref is None:
            if missing:
                lines.append(f"- Against {label}: not available — {missing}.")
            continue
        verdict = compare(t68, ci, ref["theta68"], ref["theta68_ci"])
        where = f" (run `{ref['run']}`)" if ref.get("run") else ""
        lines.append(
            f"- Against {label}{where} on the same test events: {_fmt_ci(ref['theta68'], ref['theta68_ci'])} → "
            f"this run is {_WORDS[verdict]}, Δθ68 = {t68 - ref['theta68']:+.1f}°."
        )
    if target_deg is not None:
        if ci[1] < target_deg:
            verdict = f"**met** (the whole interval lies below {target_deg:g}°)"
        elif t68 < target_deg:
            verdict = f"met by the central value only (the interval reaches {float(ci[1]):.1f}°)"
        else:
            verdict = "**not met**"
        lines.append(f"- The proposal's target θ68 < {target_deg:g}°: {verdict}.")
    if calibration is not None:
        r = float(calibration["ratio"])
        ok = abs(r - 1.0) <= calibration_tolerance
        text = (
            f"- Uncertainty (target: predicted within {calibration_tolerance:.0%} of the actual error): "
            f"predicted θ68 / actual θ68 = {r:.2f} over all test events → **{'met' if ok else 'not met'}**"
        )
        if calibration.get("share_within_20pct") is not None:
            text += f"; {float(calibration['share_within_20pct']):.0%} of events lie in uncertainty bins within ±{calibration_tolerance:.0%}"
        if calibration.get("ratio_recalibrated") is not None:
            rr = float(calibration["ratio_recalibrated"])
            text += (
                f"; after recalibrating κ on the validation split: {rr:.2f} "
                f"({'met' if abs(rr - 1.0) <= calibration_tolerance else 'not met'})"
            )
        if not informative:
            text += " — but for a direction no better than random, a calibrated κ only says that nothing is known"
        lines.append(text + ".")
    data = metrics.get("data")
    if data == ["synthetic"] or data == "synthetic":
        lines.append(
            "- These are simulated events of edkeras's own simulator: the proposal's targets were set on the "
            "earlier system's (optimistic, see NOTES) numbers on DUNE simulation, so they orient, they do not judge."
        )
    return "\n".join(lines)


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


def calibration_markdown(rows: Sequence[Mapping[str, Any]], title: str | None = None) -> str:
    """A Markdown table of calibration rows (:func:`edkeras.reco.calibration.calibration_by_energy`)."""
    lines = [f"**{title}**", ""] if title else []
    lines += [
        "| bin | n | predicted θ68 | actual θ68 | predicted / actual | 68 % cone coverage | 90 % cone coverage |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        label = r["bin"] if "bin" in r else f"{r['lo']:.1f}–{r['hi']:.1f}"
        if not r["n"]:
            lines.append(f"| {label} | 0 | — | — | — | — | — |")
            continue
        lines.append(
            f"| {label} | {int(r['n'])} | {r['predicted_theta68']:.1f}° | {r['theta68']:.1f}° | {r['ratio']:.2f} "
            f"| {r['coverage_68']:.2f} | {r['coverage_90']:.2f} |"
        )
    return "\n".join(lines)


# ============================================================================ phase-specific helpers
CPU_SEARCH_SPACE: dict[str, dict[str, Any]] = {
    "learning_rate": {"min": 1e-4, "max": 3e-3, "log": True},
    "filters": {"values": [8, 16]},
    "dense_units": {"values": [128, 256]},
    "dropout": {"min": 0.1, "max": 0.5, "step": 0.1},
    "batch_size": {"values": [32, 64]},
    "augmentation.mirror": {"values": [True, False]},
}
"""v17's search space at ``scale="cpu"``: around ``baseline_v15`` at the CPU width."""

SMOKE_SEARCH_SPACE: dict[str, dict[str, Any]] = {
    "learning_rate": {"min": 1e-4, "max": 3e-3, "log": True},
    "dropout": {"values": [0.1, 0.3]},
}


def tuning_settings(
    scale: str, smoke: bool, algorithm: str = "random", n_trials: int = 6, epochs_per_trial: int = 2
) -> Any:
    """The v17 search: :data:`CPU_SEARCH_SPACE` (cpu), the proposal's preset (full) or two tiny trials (smoke).

    Returns:
        An :class:`edkeras.reco.tuning.TuningConfig`.
    """

    if scale not in SCALES:
        raise InputError(f"tuning_settings: scale must be one of {', '.join(SCALES)}; received {scale!r}")
    if smoke:
        return TuningConfig(algorithm="random", n_trials=2, epochs_per_trial=1, search_space=dict(SMOKE_SEARCH_SPACE))
    if scale == "full":
        return TuningConfig(algorithm=algorithm, n_trials=n_trials, epochs_per_trial=epochs_per_trial, preset="proposal_v17")
    return TuningConfig(
        algorithm=algorithm, n_trials=n_trials, epochs_per_trial=epochs_per_trial, search_space=dict(CPU_SEARCH_SPACE)
    )


def trials_markdown(rows: Sequence[Mapping[str, Any]], best_id: str | None = None) -> str:
    """A Markdown table of hyperparameter-search trials (:func:`edkeras.reco.tuning.trial_table`), best first."""
    if not rows:
        return "*No trials.*"
    keys = list(dict.fromkeys(k for r in rows for k in r["hyperparameters"]))
    ordered = sorted(rows, key=lambda r: (r["value"] is None, r["value"] if r["value"] is not None else 0.0))
    objective = next((r["objective"] for r in rows if r.get("objective")), "objective")
    lines = [f"| trial | status | {objective} (validation) | " + " | ".join(keys) + " |",
             "|---|---|---:|" + "---:|" * len(keys)]
    for r in ordered:
        value = "—" if r["value"] is None else f"{r['value']:.2f}"
        mark = " **(best)**" if best_id is not None and r["trial_id"] == best_id else ""
        hps = " | ".join(_fmt_value(r["hyperparameters"].get(k)) for k in keys)
        lines.append(f"| {r['trial_id']}{mark} | {r['status']} | {value} | {hps} |")
    return "\n".join(lines)


def _fmt_value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    return "—" if v is None else str(v)


def plot_trials(rows: Sequence[Mapping[str, Any]], x: str = "learning_rate") -> Any:
    """Objective of each trial in order (left) and against one hyperparameter (right)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11.0, 3.8), layout="constrained")
    a, b = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    done = [r for r in rows if r["value"] is not None]
    if not done:
        a.text(0.5, 0.5, "no completed trial", ha="center", transform=a.transAxes)
        return fig
    objective = done[0].get("objective") or "objective"
    values = np.array([r["value"] for r in done], dtype=np.float64)
    a.plot(np.arange(1, values.size + 1), values, "o", label="trial")
    a.plot(np.arange(1, values.size + 1), np.minimum.accumulate(values), "-", label="best so far")
    a.set_xlabel("trial (in order run)")
    a.set_ylabel(f"{objective} (validation)")
    a.legend(fontsize="small")
    key = next((k for k in done[0]["hyperparameters"] if k == x or k.endswith("." + x)), x)
    xs = [r["hyperparameters"].get(key) for r in done]
    if all(isinstance(v, (int, float)) for v in xs):
        b.plot(xs, values, "o")
        b.set_xscale("log" if key.endswith("learning_rate") else "linear")
        b.set_xlabel(key)
        b.set_ylabel(f"{objective} (validation)")
    else:
        b.set_visible(False)
    return fig


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


def plot_plane_weights(weights: Any, energies: Any, edges: Sequence[float] = (0.0, 10.0, 20.0, 30.0, 50.0, 1e9)) -> Any:
    """Attention share of each plane: its distribution (left) and its mean per energy bin (right)."""
    from matplotlib.figure import Figure

    w = np.asarray(weights, dtype=np.float64).reshape(-1, 3)
    e = np.asarray(energies, dtype=np.float64).ravel()
    fig = Figure(figsize=(11.0, 3.8), layout="constrained")
    a, b = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    bins = np.linspace(0.0, 1.0, 41)
    centres = np.arange(len(edges) - 1)
    labels = [f"{lo:g}–{hi:g}" if hi < 1e8 else f"{lo:g}+" for lo, hi in itertools.pairwise(edges)]
    for k, plane in enumerate("UVX"):
        a.hist(w[:, k], bins=bins, histtype="step", label=f"plane {plane} (mean {w[:, k].mean():.2f})")
        means = [w[(e >= lo) & (e < hi), k].mean() if np.any((e >= lo) & (e < hi)) else np.nan
                 for lo, hi in itertools.pairwise(edges)]
        b.plot(centres, means, "o-", label=f"plane {plane}")
    a.axvline(1 / 3, color="0.5", ls=":", lw=1)
    a.set_xlabel("share of the pooling attention")
    a.set_ylabel("test events")
    a.legend(fontsize="small")
    b.axhline(1 / 3, color="0.5", ls=":", lw=1, label="equal shares")
    b.set_xticks(centres, labels)
    b.set_xlabel("reconstructed energy (MeV)")
    b.set_ylabel("mean attention share")
    b.set_ylim(0.0, 1.0)
    b.legend(fontsize="small")
    return fig


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


def plot_energy_and_type(predicted_energy: Any, true_energy: Any, es_probability: Any, interaction: Any) -> Any:
    """Multitask outputs: predicted against true energy (left), ES probability by true type (right)."""
    from matplotlib.figure import Figure

    pe, te = np.asarray(predicted_energy, dtype=np.float64).ravel(), np.asarray(true_energy, dtype=np.float64).ravel()
    p, t = np.asarray(es_probability, dtype=np.float64).ravel(), np.asarray(interaction).ravel()
    fig = Figure(figsize=(11.0, 4.0), layout="constrained")
    a, b = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    a.plot(te, pe, ".", ms=3, alpha=0.6)
    top = float(np.nanmax(np.concatenate([te, pe]))) * 1.05 if te.size else 1.0
    a.plot([0, top], [0, top], color="black", lw=0.8, label="predicted = true")
    a.set_xlabel("true electron energy (MeV)")
    a.set_ylabel("predicted energy (MeV)")
    a.legend(fontsize="small")
    bins = np.linspace(0.0, 1.0, 21)
    for code, name in ((1, "ES"), (0, "CC")):
        if np.any(t == code):
            b.hist(p[t == code], bins=bins, histtype="step", label=f"true {name} ({int(np.sum(t == code))})")
    b.set_xlabel("predicted probability of ES")
    b.set_ylabel("test events")
    b.legend(fontsize="small")
    return fig
