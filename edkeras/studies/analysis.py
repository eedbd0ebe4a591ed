"""What the analysis notebooks share: finding the run to analyse, held-out halves, simulated
burst samples, and the few tables and figures that two of them draw.

The analysis notebooks (``00_dataset``, ``energy_analysis``, ``ensembles``, ``likelihood``,
``pointing``, ``leaderboard``) do not train a model of their own unless they must: they
read the predictions of a finished run (by default the ``v21_uncertainty`` run, then the
``v15_baseline`` run) and train a small one through the one training path
(:func:`edkeras.studies.phase.train_or_load`) only when none is there. Everything here is numpy
and matplotlib; Keras is imported only where a model is run (:func:`simulated_sample`).

The rules of held-out evaluation hold here too: a likelihood table is fitted on one part of
the **validation** split and scored on the other (:func:`split_predictions`), never on the
test split; the production model is chosen on validation θ68 and reported on test
(:func:`choose_production`).

Example:
    >>> from edkeras import phase, phase_analysis as pa
    >>> fallback = phase.phase_config("analysis_vmf", "synthetic", 6000, 8, 0, False, head="vmf")
    >>> src = pa.source_run("runs", ["v21_uncertainty", "v15_baseline"], fallback)
    >>> fit_half, heldout_half = pa.split_predictions(src.predictions("val"), 0.5, seed=0)
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from edkeras.core.errors import InputError
from edkeras.core.schema import load_json
from edkeras.core.sphere import rotate_to
from edkeras.events.eventfile import EventFileWriter, open_events
from edkeras.events.sim import SimConfig, simulate
from edkeras.events.sim.generate import source_record
from edkeras.events.splits import event_hash
from edkeras.pointing.resolution import _burst_inputs, _fit_one
from edkeras.reco.classical import save_classical_predictions
from edkeras.reco.config import RunConfig
from edkeras.reco.evaluate import classifier_es_probability, evaluate
from edkeras.reco.models.pretrained import PREFIX, SHIPPED_DIR, pretrained_dir
from edkeras.reco.predictions import Predictions, load_predictions
from edkeras.reports.plots.events import draw_event
from edkeras.studies.phase import data_key, train_or_load

__all__ = [
    "SourceRun",
    "align_by_event_id",
    "burst_fit",
    "choose_production",
    "collapse_note",
    "dataset_figure",
    "event_pair_figure",
    "find_run",
    "markdown_table",
    "member_stack",
    "model_inputs",
    "pit_figure",
    "quality_rows",
    "resolution_vs_events_figure",
    "response_rows",
    "show",
    "simulated_sample",
    "source_run",
    "split_predictions",
    "test_set_groups",
    "theta68_figure",
    "tp_comparison_markdown",
    "truth_predictions",
    "with_legends",
]

_NEEDED = ("config.json", "metrics.json", "predictions_val.npz", "predictions_test.npz")


# ============================================================================ runs
def find_run(runs_dir: str | os.PathLike, names: Sequence[str]) -> Path | None:
    """The first of ``names`` that is a finished run folder under ``runs_dir`` (with its predictions), or None.

    Args:
        runs_dir: where run folders live.
        names: run names in order of preference (e.g. ``["v21_uncertainty", "v15_baseline"]``);
            ``pretrained:NAME`` is a model shipped with the package (it has no predictions of
            its own: the analysis simulates what it needs).

    Returns:
        The run folder, or None when none of them is finished.
    """

    for name in names:
        if name.startswith(PREFIX):  # a shipped model: always there (an unknown name is an error)
            return pretrained_dir(name[len(PREFIX):])
        d = Path(runs_dir) / name
        if all((d / f).exists() for f in _NEEDED):
            return d
    return None


@dataclass(frozen=True)
class SourceRun:
    """The run an analysis notebook reads.

    Attributes:
        run_dir: the run folder.
        config: its :class:`~edkeras.reco.config.RunConfig` (from ``config.json``).
        trained: True when this notebook had to train it (no preferred run was there).
    """

    run_dir: Path
    config: Any
    trained: bool

    @property
    def name(self) -> str:
        return self.run_dir.name

    @property
    def head(self) -> str:
        return str(self.config.model.head)

    @property
    def shipped(self) -> bool:
        """Whether this is a model shipped with the package (no validation or test predictions)."""

        return self.run_dir.resolve().parent == SHIPPED_DIR.resolve()

    def predictions(self, split: str) -> Any:
        """The run's :class:`~edkeras.reco.predictions.Predictions` of ``split`` (``val`` or ``test``)."""

        if self.shipped:
            raise InputError(f"pretrained:{self.name}: a shipped model carries no {split} predictions; "
                             "simulate a calibration sample instead (simulated_sample)")
        if split not in ("val", "test"):
            raise InputError(f"SourceRun.predictions: split must be 'val' or 'test'; received {split!r}")
        return load_predictions(self.run_dir / f"predictions_{split}.npz")

    def describe(self) -> str:
        """One Markdown sentence: which run, which model, trained here or found."""
        m = self.config.model
        if self.shipped:
            return (f"Source: the shipped model **`pretrained:{self.name}`** (model `{m.name}`, head `{m.head}`, loss "
                    f"`{self.config.training.loss}`; its card: `edkeras models`).")
        how = ("the analysis fallback run, trained through the one training path because no preferred run was found"
               if self.trained else "found in the runs folder")
        return f"Source run **`{self.name}`**: model `{m.name}`, head `{m.head}`, loss `{self.config.training.loss}`; {how}."


def source_run(
    runs_dir: str | os.PathLike, names: Sequence[str], fallback: Any, force: bool = False
) -> SourceRun:
    """The first finished run of ``names``, or the run of ``fallback`` (trained now unless already there).

    The fallback run is shared: several analysis notebooks may name the same fallback
    config, and the first one trains it; the others reuse it when its saved config is the
    same (a different config under that name is retrained).

    Args:
        runs_dir: where run folders live.
        names: preferred run names, in order.
        fallback: a :class:`~edkeras.reco.config.RunConfig` trained (into ``runs_dir/<its name>``)
            when none of ``names`` is finished.
        force: retrain the fallback run even when an identical finished one is there.

    Returns:
        A :class:`SourceRun`.
    """

    found = find_run(runs_dir, names)
    if found is not None:
        return SourceRun(found, load_json(RunConfig, found / "config.json"), False)

    try:
        result = train_or_load(fallback, force=force, runs_dir=runs_dir)
    except FileExistsError:  # a finished run of another config under the fallback's name
        result = train_or_load(fallback, force=True, runs_dir=runs_dir)
    return SourceRun(Path(result.run_dir), result.config, True)


# ============================================================================ predictions
def truth_predictions(pred: Any) -> Any:
    """The same events with the **true** electron directions as "predictions" (the statistical floor).

    Args:
        pred: a :class:`~edkeras.reco.predictions.Predictions` with ``true_directions``.

    Returns:
        A copy whose ``predictions`` are the true directions (angular errors 0, no κ, no flip
        probability), run ``"truth"``.
    """
    if pred.true_directions is None:
        raise InputError(f"{pred.path or 'predictions'}: no 'true_directions'; the truth reference needs them")
    t = np.asarray(pred.true_directions, dtype=np.float64)
    return replace(pred, predictions=t / np.linalg.norm(t, axis=1, keepdims=True),
                   angular_errors=np.zeros(len(t)), kappa=None, flip_probability=None, run="truth", path=None)


def split_predictions(pred: Any, fraction: float = 0.5, seed: int = 0) -> tuple[Any, Any]:
    """Split predictions into two parts by a seeded hash of the event id (order-independent).

    Used to fit a likelihood table on one part of the validation split and score it on the
    other: the test split is never touched.

    Args:
        pred: a :class:`~edkeras.reco.predictions.Predictions` with ``event_id``.
        fraction: share of events in the first part (0 < fraction < 1).
        seed: the hash seed.

    Returns:
        (first part, second part); every event is in exactly one.
    """

    if not 0.0 < float(fraction) < 1.0:
        raise InputError(f"split_predictions: fraction must be in (0, 1); received {fraction!r}")
    if pred.event_id is None:
        raise InputError(f"{pred.path or 'predictions'}: no 'event_id'; cannot split by event")
    ids = np.asarray(pred.event_id)
    n = ids.size
    if n < 2:
        raise InputError(f"split_predictions: need at least 2 events to split; received {n}")
    order = np.argsort(event_hash(["predictions"] * n, ids, int(seed)), kind="stable")
    k = min(max(round(float(fraction) * n), 1), n - 1)
    first = np.zeros(n, dtype=bool)
    first[order[:k]] = True
    return pred.select(first), pred.select(~first)


def response_rows(samples: Mapping[str, Any], tables: Mapping[str, Any], groups: Any, group_dirs: Any) -> list[dict]:
    """Where each reconstruction's ES directions cluster, per fixed supernova direction.

    For every supernova direction s of the sample and every named reconstruction: the angle
    from s to the mean predicted direction of its ES events (the bias a plain cos θ table
    cannot absorb), and from the table's response m̂(s) to that mean (what is left after the
    map; "—" without a map). The statistical error of a mean of n directions with mean
    resultant length R̄ is about √((1 − R̄²)/(2n))/R̄ radians per axis.

    Args:
        samples: {name: Predictions} of the same events.
        tables: {name: LikelihoodTable or {"es": …, "cc": …}}; the response is read from it.
        groups: (N,) index of each event's supernova direction; group_dirs: (K, 3).
    """
    rows = []
    for name, pred in samples.items():
        t = tables[name]
        resp = (t.get("es") if isinstance(t, Mapping) else t).response
        d = np.asarray(pred.predictions, dtype=np.float64)
        es = np.ones(len(d), dtype=bool) if pred.interaction is None else pred.interaction == 1
        for k, s in enumerate(np.asarray(group_dirs, dtype=np.float64)):
            sel = es & (np.asarray(groups) == k)
            if not sel.any():
                continue
            mean = d[sel].mean(axis=0)
            rbar = float(np.linalg.norm(mean))
            m = mean / max(rbar, 1e-12)
            row = {"name": name, "direction": "(" + ", ".join(f"{x:+.2f}" for x in s) + ")", "n": int(sel.sum()),
                   "rbar": rbar, "bias": float(np.degrees(np.arccos(np.clip(m @ s, -1, 1)))),
                   "left": None, "stat": float(np.degrees(np.sqrt(max(1 - rbar**2, 0) / (2 * sel.sum())) / max(rbar, 1e-12)))}
            if resp is not None:
                row["left"] = float(np.degrees(np.arccos(np.clip(m @ resp(s)[0], -1, 1))))
            rows.append(row)
    return rows


def collapse_note(pred: Any, threshold: float = 0.5) -> str:
    """A Markdown warning when a model's predicted directions all point one way (a collapsed model), else "".

    The mean resultant length R̄ = |mean of the unit predictions| is ≈ 0 for directions spread
    over the sphere (as the electrons are) and → 1 when the model predicts one direction for
    every event, whatever the images; a burst fit then finds that direction, not the supernova.

    Args:
        pred: :class:`~edkeras.reco.predictions.Predictions`.
        threshold: R̄ above which the warning is given.
    """
    d = np.asarray(pred.predictions, dtype=np.float64)
    d = d / np.linalg.norm(d, axis=1, keepdims=True)
    rbar = float(np.linalg.norm(d.mean(axis=0)))
    if rbar <= threshold:
        return ""
    return (
        f"**Warning: the predictions of `{pred.run or 'this model'}` all point nearly the same way** (mean resultant "
        f"length R̄ = {rbar:.2f}; directions spread over the sphere give R̄ ≈ 0): the model has collapsed to one "
        "direction whatever the images, so its results below measure that direction, not the electrons'."
    )


def align_by_event_id(preds: Sequence[Any]) -> list[Any]:
    """The events common to every predictions set, in the order of the first one.

    Args:
        preds: :class:`~edkeras.reco.predictions.Predictions` with ``event_id`` (e.g. ensemble
            members evaluated on the same test split).

    Returns:
        One Predictions per input, restricted to the common events, rows aligned.

    Raises:
        InputError: a set without event ids, or no common event.
    """
    if not preds:
        raise InputError("align_by_event_id: no predictions given")
    for i, p in enumerate(preds):
        if p.event_id is None:
            raise InputError(f"align_by_event_id: predictions {i} have no 'event_id'")
    common = np.asarray(preds[0].event_id)
    for p in preds[1:]:
        common = common[np.isin(common, np.asarray(p.event_id))]
    if common.size == 0:
        raise InputError("align_by_event_id: the predictions share no event")
    out = []
    for p in preds:
        ids = np.asarray(p.event_id)
        pos = {int(e): j for j, e in enumerate(ids)}
        out.append(p.select(np.array([pos[int(e)] for e in common], dtype=np.int64)))
    return out


def member_stack(preds: Sequence[Any]) -> np.ndarray:
    """Ensemble members' outputs as one array (M, N, 3), or (M, N, 4) with κ in column 3 when every member has κ.

    The members must be aligned (same events, same order; see :func:`align_by_event_id`).
    """
    if not preds:
        raise InputError("member_stack: no members given")
    ids = [np.asarray(p.event_id) for p in preds if p.event_id is not None]
    if len({len(p) for p in preds}) != 1 or any(not np.array_equal(ids[0], i) for i in ids[1:]):
        raise InputError("member_stack: the members are not aligned (align them with align_by_event_id)")
    if all(p.kappa is not None for p in preds):
        return np.stack([np.column_stack([p.predictions, p.kappa]) for p in preds])
    return np.stack([np.asarray(p.predictions, np.float64) for p in preds])


def model_inputs(batch: Any, energy: bool = False) -> dict[str, np.ndarray]:
    """The Keras inputs of an :class:`~edkeras.events.eventfile.EventBatch` (``view_u``, ``view_v``, ``view_x``, ``energy``)."""
    out = {"view_u": np.asarray(batch.U, np.float32), "view_v": np.asarray(batch.V, np.float32),
           "view_x": np.asarray(batch.X, np.float32)}
    if energy:
        out["energy"] = np.asarray(batch.reco_energy, np.float32).reshape(-1, 1)
    return out


def simulated_sample(
    run_dir: str | os.PathLike | None,
    n_events: int,
    seed: int,
    out_dir: str | os.PathLike,
    sim_config: Any = None,
    directions: Any = None,
    classical: bool = True,
    classifier: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Simulate a fresh sample, reconstruct it three ways, and return the predictions.

    With ``directions`` the supernova sits at each of those fixed directions in turn
    (``n_events`` events each, seeds ``seed``, ``seed + 1``, …): the sample that burst
    pointing draws whole bursts from (``pointing_resolution(method="resample")``). All
    events go into one event file ``out_dir/sample_….h5`` with unique event ids; the
    network's predictions come from :func:`edkeras.reco.evaluate.evaluate` (the run's own model),
    the classical ones from :func:`edkeras.reco.classical.save_classical_predictions`.

    Args:
        run_dir: a finished run whose model predicts the sample (None: no network).
        n_events: events to simulate (per direction when ``directions`` is given).
        seed: simulation seed (use one that no training file used).
        out_dir: folder for the event file and the predictions files.
        sim_config: a :class:`~edkeras.events.sim.SimConfig` (default: the default mix); its
            ``direction`` is replaced by each of ``directions``.
        directions: (K, 3) supernova directions, or None (the config's own: isotropic by default).
        classical: also run the classical reconstruction.
        classifier: an ES/CC classifier run (multitask head) or ``pretrained:NAME``: every
            reconstruction of the sample gets its ``es_probability`` (the same events, one
            classification; :func:`edkeras.reco.evaluate.classifier_es_probability`).

    Returns:
        ``{"truth": …, "classical": …, "network": …}`` Predictions of the same events in the
        same order (absent keys skipped).
    """
    from dataclasses import replace as dc_replace


    cfg = sim_config or SimConfig()
    if directions is None:
        configs = [cfg]
    else:
        d = np.asarray(directions, dtype=np.float64).reshape(-1, 3)
        configs = [dc_replace(cfg, direction=tuple(float(x) for x in row)) for row in d]
    n = int(n_events)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    events = out / f"sample_n{n}x{len(configs)}_seed{int(seed)}.h5"
    source = {"generator": "edkeras.studies.analysis.simulated_sample",
              "parts": [source_record(n, int(seed) + k, c) for k, c in enumerate(configs)]}
    with EventFileWriter(events, image_shape=cfg.image_shape, source=source, overwrite=True) as writer:
        for k, c in enumerate(configs):
            batch = simulate(n, seed=int(seed) + k, config=c)
            batch.event_id = np.asarray(batch.event_id) + k * n
            writer.append(batch)
    result: dict[str, Any] = {}
    if classical:
        path = save_classical_predictions(events, out / f"{events.stem}_classical.npz", split=events.name,
                                          progress=False)
        result["classical"] = load_predictions(path)
    if run_dir is not None:

        path = out / f"{events.stem}_network.npz"
        evaluate(run_dir, events, out=path)
        result["network"] = load_predictions(path)
    base = next((result[k] for k in ("network", "classical") if k in result), None)
    if base is None:
        with open_events(events) as ev:
            b = ev.read(slice(None))
        base = Predictions(predictions=b.direction.astype(np.float64), true_directions=b.direction,
                           energies=b.reco_energy, true_energies=b.energy, interaction=b.interaction,
                           nu_directions=b.nu_direction, event_id=b.event_id, split=events.name)
    result["truth"] = truth_predictions(base)
    for k, p in result.items():
        if not np.array_equal(np.asarray(p.event_id), np.asarray(base.event_id)):
            raise InputError(f"{events}: the {k} predictions are not in the order of the sample's events")
    if classifier is not None:

        es_p = classifier_es_probability(classifier, events)
        result = {k: replace(p, es_probability=es_p) for k, p in result.items()}
    return {k: result[k] for k in ("truth", "classical", "network") if k in result}


# ============================================================================ tables
def _cell(v: Any, digits: int) -> str:
    if v is None:
        return "—"
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return f"{int(v)}"
    if isinstance(v, (float, np.floating)):
        return "—" if not math.isfinite(float(v)) else f"{float(v):.{digits}f}"
    if isinstance(v, (list, tuple)) and len(v) == 2 and all(isinstance(x, (int, float, np.number)) for x in v):
        return f"[{_cell(v[0], digits)}, {_cell(v[1], digits)}]"
    return str(v)


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Mapping[str, str], digits: int = 2) -> str:
    """A Markdown table: one row per mapping, ``columns`` = {key: header}.

    Floats get ``digits`` decimals, pairs of numbers print as ``[lo, hi]``, None and NaN as "—".
    """
    if not rows:
        raise InputError("markdown_table: no rows to format")
    lines = ["| " + " | ".join(columns.values()) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        lines.append("| " + " | ".join(_cell(r.get(k), digits) for k in columns) + " |")
    return "\n".join(lines)


def tp_comparison_markdown(table: Mapping[str, Mapping[str, Mapping[str, float]]]) -> str:
    """The simulated-vs-real trigger-primitive medians of :func:`edkeras.events.sim.validation.compare_with_real` as Markdown.

    One row per quantity; per plane the simulated value, the real one and their ratio.
    """
    if not table:
        raise InputError("tp_comparison_markdown: empty comparison table")
    planes = list(next(iter(table.values())))
    head = "| quantity | " + " | ".join(f"{p} sim | {p} real | {p} sim/real" for p in planes) + " |"
    lines = [head, "|---|" + "---:|" * (3 * len(planes))]
    for q, per_plane in table.items():
        cells = []
        for p in planes:
            s, r = per_plane[p]["sim"], per_plane[p]["real"]
            ratio = s / r if r and math.isfinite(s) else math.nan
            cells += [_cell(float(s), 2), _cell(float(r), 2), _cell(ratio, 2)]
        lines.append(f"| {q.replace('_', ' ')} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def quality_rows(obj: Any, path: str = "") -> list[dict[str, Any]]:
    """Every entry of a benchmark JSON (any nesting) that holds a ``theta68``, with where it was.

    Args:
        obj: the parsed JSON (e.g. of ``benchmarks/quality.py``).

    Returns:
        ``[{"entry": "models/compact", "theta68": …, "theta68_ci": …, "median": …, "n": …}, …]``
        in the order met.
    """
    rows: list[dict[str, Any]] = []
    if isinstance(obj, Mapping):
        if isinstance(obj.get("theta68"), (int, float)):
            name = obj.get("name") or obj.get("model") or path or "(top level)"
            rows.append({"entry": str(name), "theta68": float(obj["theta68"]), "theta68_ci": obj.get("theta68_ci"),
                         "median": obj.get("median"), "flip_fraction": obj.get("flip_fraction"), "n": obj.get("n")})
        for k, v in obj.items():
            if isinstance(v, (Mapping, list)):
                rows += quality_rows(v, f"{path}/{k}" if path else str(k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            rows += quality_rows(v, f"{path}[{i}]")
    return rows


def test_set_groups(runs_dir: str | os.PathLike, names: Sequence[str]) -> dict[str, list[str]]:
    """Runs grouped by the data settings that decide their test events (:func:`edkeras.studies.phase.data_key`).

    Only runs of one group were measured on the same test events and can be ranked against
    each other (and against the classical baseline of that group) without a caveat.

    Args:
        runs_dir: where the run folders are.
        names: run names (e.g. the leaderboard's).

    Returns:
        ``{"A": [names…], "B": […]}``, the largest group first; a run whose config cannot be
        read forms a group of its own.
    """
    import json


    groups: dict[str, list[str]] = {}
    for name in names:
        try:
            cfg = json.loads((Path(runs_dir) / name / "config.json").read_text())
            key = json.dumps(data_key(cfg), sort_keys=True)
        except (OSError, ValueError, InputError):
            key = f"unreadable:{name}"
        groups.setdefault(key, []).append(name)
    ordered = sorted(groups.values(), key=lambda g: (-len(g), g[0]))
    return {_label(i): g for i, g in enumerate(ordered)}


def _label(i: int) -> str:
    letters = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        letters = chr(65 + r) + letters
    return letters


def choose_production(rows: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The production model among leaderboard rows: smallest **validation** θ68 (test only reports it).

    Choosing among runs is a hyperparameter choice, so it is made on the validation split,
    like the epoch; ties go to the smaller test interval width, then the name.

    Args:
        rows: rows of :func:`edkeras.reco.runs.leaderboard`.

    Returns:
        The chosen row, or None when no row has a finite validation θ68.
    """
    ok = [r for r in rows if isinstance(r.get("val_theta68"), (int, float)) and math.isfinite(r["val_theta68"])]
    if not ok:
        return None

    def width(r: Mapping[str, Any]) -> float:
        ci = r.get("test_theta68_ci") or (math.nan, math.nan)
        w = float(ci[1]) - float(ci[0])
        return w if math.isfinite(w) else math.inf

    return min(ok, key=lambda r: (float(r["val_theta68"]), width(r), str(r.get("name"))))


# ============================================================================ figures
def show(fig: Any, dpi: int = 100) -> None:
    """Display a figure once in a notebook (as a PNG) and release it from pyplot.

    The PNG is rendered here, so the figure appears in the executed notebook and its HTML
    export whatever the kernel's matplotlib backend is (a plain ``Figure`` made without
    pyplot has no inline formatter), and pyplot does not show it a second time.
    """
    import io

    import matplotlib.pyplot as plt
    from IPython.display import Image, display

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    display(Image(data=buf.getvalue(), format="png"))


def with_legends(fig: Any, **kwargs: Any) -> Any:
    """Add a legend to every axis of ``fig`` that has labelled artists (error-bar series included); returns ``fig``."""
    for a in fig.axes:
        handles, labels = a.get_legend_handles_labels()
        if handles and a.get_legend() is None:
            a.legend(handles, labels, **{"fontsize": "small", **kwargs})
    return fig


def _figure(ncols: int = 1, size: tuple[float, float] = (6.0, 4.0)) -> tuple[Any, list[Any]]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(size[0] * ncols, size[1]), layout="constrained")
    return fig, [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]


def event_pair_figure(top: Any, i: int, bottom: Any, j: int, labels: tuple[str, str] = ("real", "simulated")) -> Any:
    """Two events one above the other (three planes each, true direction in red), e.g. real over simulated.

    The arrows start at each image's charge-weighted centre (not the vertex): the window
    origins of ingested and simulated files are comparable in ticks and wires, not always
    in detector centimetres, and the comparison is about the images.

    Args:
        top, bottom: :class:`~edkeras.events.eventfile.EventBatch` objects.
        i, j: the event index in each.
        labels: the row names.

    Returns:
        A matplotlib Figure (2 × 3 panels).
    """
    from matplotlib.figure import Figure


    fig = Figure(figsize=(13.0, 9.0), layout="constrained")
    axes = fig.subplots(2, 3)
    for row, (batch, k, label) in enumerate(((top, i, labels[0]), (bottom, j, labels[1]))):
        b = batch.select(slice(k, k + 1)).filled()
        draw_event({p: b.images[p][0] for p in "UVX"}, direction=b.direction[0], ax=axes[row])
        kind = {1: "ES", 0: "CC"}.get(int(b.interaction[0]), "?")
        for a, p in zip(axes[row], "UVX"):
            a.set_title(f"{label} · plane {p}", fontsize=10)
        axes[row][1].set_title(
            f"{label} · plane V\n{kind}, {float(b.energy[0]):.1f} MeV true, {float(b.reco_energy[0]):.1f} MeV reco",
            fontsize=10,
        )
    return fig


def burst_fit(
    pred: Any, tables: Any, plan: Any, b: int, classification: str = "perfect", use_kappa: bool = True,
    method: str = "resample", **fit_options: Any,
) -> tuple[Any, np.ndarray]:
    """Fit burst ``b`` of a :class:`~edkeras.pointing.burst.BurstPlan` (the same burst the resolution study fits).

    Args:
        pred: the large predicted sample (with ``nu_directions`` and ``energies``).
        tables: a :class:`~edkeras.pointing.tables.LikelihoodTable` or ``{"es": …, "cc": …}``.
        plan: the burst plan.
        b: which burst.
        classification: ``"perfect"``, ``"mixed"`` or ``"classifier"`` (two tables only; see
            :func:`edkeras.pointing.burst.classification_weights`).
        use_kappa: pass the events' κ (tables with κ bins use it).
        method: ``"resample"`` (the events were simulated with the supernova at the plan's
            direction: used as they are) or ``"rotate"`` (events rotated so that their
            neutrino direction becomes the plan's direction, :func:`edkeras.pointing.burst.rotate_to`).
        **fit_options: options of :func:`~edkeras.pointing.burst.fit_burst`.

    Returns:
        (the :class:`~edkeras.pointing.burst.BurstFit`, the true supernova direction).
    """
    # the same burst inputs and table weights as pointing_resolution's fits (one implementation)

    if method not in ("resample", "rotate"):
        raise InputError(f"burst_fit: method must be 'resample' or 'rotate'; received {method!r}")
    idx = np.asarray(plan.indices[b])
    truth = np.asarray(plan.directions[b], np.float64)
    inputs = _burst_inputs(pred, idx)
    if method == "rotate":
        inputs["directions"] = rotate_to(inputs["directions"], inputs["nu"], truth, plan.spins[b])
    inter = inputs["interaction"]
    frac = None if inter is None else float(np.clip(np.mean(inter == 1), 1e-3, 1 - 1e-3))
    fit = _fit_one(inputs, tables, classification, frac, use_kappa, fit_options)
    return fit, truth


def dataset_figure(energy: Any, reco_energy: Any, interaction: Any, cos_e_nu: Any) -> Any:
    """Three panels of a data set: true energy by interaction, reconstructed vs true energy, cos(e, ν) by interaction.

    Args:
        energy: (N,) true electron kinetic energy, MeV.
        reco_energy: (N,) reconstructed (charge) energy, MeV.
        interaction: (N,) 1 ES, 0 CC, −1 unknown.
        cos_e_nu: (N,) cos of the angle between electron and neutrino (NaN when unknown).

    Returns:
        A matplotlib Figure.
    """
    e = np.asarray(energy, np.float64)
    r = np.asarray(reco_energy, np.float64)
    it = np.asarray(interaction)
    c = np.asarray(cos_e_nu, np.float64)
    if not (e.shape == r.shape == it.shape == c.shape):
        raise InputError("dataset_figure: energy, reco_energy, interaction and cos_e_nu need one value per event")
    fig, (a, b, d) = _figure(3, (5.0, 4.0))
    groups = [(name, it == code) for code, name in ((1, "ES"), (0, "CC"), (-1, "unknown")) if np.any(it == code)]
    finite = e[np.isfinite(e)]
    top = float(finite.max()) if finite.size else 1.0
    bins = np.linspace(0.0, max(top, 1.0), 40)
    for name, m in groups:
        a.hist(e[m & np.isfinite(e)], bins=bins, histtype="step", label=f"{name} ({int(m.sum())})")
    a.set_xlabel("true electron kinetic energy (MeV)")
    a.set_ylabel("events")
    a.legend(fontsize="small")
    ok = np.isfinite(e) & np.isfinite(r)
    b.plot(e[ok], r[ok], ".", ms=2, alpha=0.5)
    lim = max(float(np.nanmax(np.concatenate([e[ok], r[ok]]))) if ok.any() else 1.0, 1.0)
    b.plot([0, lim], [0, lim], color="black", lw=0.8, label="reco = true")
    b.set_xlabel("true energy (MeV)")
    b.set_ylabel("reconstructed energy, X-plane charge (MeV)")
    b.legend(fontsize="small")
    for name, m in groups:
        cm = m & np.isfinite(c)
        if cm.any():
            d.hist(c[cm], bins=np.linspace(-1, 1, 41), histtype="step", density=True, label=name)
    d.set_xlabel("cos(electron, neutrino)")
    d.set_ylabel("density")
    if d.get_legend_handles_labels()[0]:
        d.legend(fontsize="small", loc="upper left")
    return fig


def pit_figure(pits: Mapping[str, Any], bins: int = 20) -> Any:
    """Histograms of probability-integral-transform values per method (flat when a table is right).

    Args:
        pits: method name → PIT values in [0, 1].
        bins: number of bins.

    Returns:
        A matplotlib Figure with the ±1σ band of a flat histogram.
    """
    if not pits:
        raise InputError("pit_figure: no PIT values given")
    fig, (a,) = _figure(1, (7.0, 4.0))
    edges = np.linspace(0.0, 1.0, bins + 1)
    n = None
    for name, u in pits.items():
        x = np.asarray(u, np.float64).ravel()
        n = x.size
        a.hist(x, bins=edges, density=True, histtype="step", lw=1.5, label=name)
    if n:
        sd = math.sqrt(bins * (1 - 1 / bins) / n)  # density units: relative σ of a bin count
        a.axhspan(1 - sd, 1 + sd, color="grey", alpha=0.2, label="flat ±1σ")
    a.axhline(1.0, color="black", lw=0.8)
    a.set_xlabel("PIT u = F(cos θ | E) of held-out events")
    a.set_ylabel("density")
    a.set_xlim(0, 1)
    a.legend(fontsize="small")
    return fig


def theta68_figure(
    entries: Sequence[Mapping[str, Any]], highlight: str | None = None, xlabel: str = "θ68 (degrees)"
) -> Any:
    """Horizontal θ68 bars with their intervals: one line per entry (``name``, ``theta68``, ``theta68_ci``).

    Args:
        entries: dicts with ``name``, ``theta68`` and optionally ``theta68_ci`` (lo, hi).
        highlight: name of the entry drawn in red (e.g. the production model).
        xlabel: the axis label.

    Returns:
        A matplotlib Figure, smallest θ68 on top.
    """
    rows = [e for e in entries if e.get("theta68") is not None and math.isfinite(float(e["theta68"]))]
    if not rows:
        raise InputError("theta68_figure: no entry with a finite theta68")
    rows = sorted(rows, key=lambda e: float(e["theta68"]), reverse=True)
    fig, (a,) = _figure(1, (7.0, 0.45 * len(rows) + 1.5))
    y = np.arange(len(rows))
    t = np.array([float(e["theta68"]) for e in rows])
    ci = np.array([e.get("theta68_ci") or (v, v) for e, v in zip(rows, t)], dtype=np.float64)
    err = np.vstack([np.clip(t - ci[:, 0], 0, None), np.clip(ci[:, 1] - t, 0, None)])
    colors = ["C3" if e.get("name") == highlight else "C0" for e in rows]
    for i in range(len(rows)):
        a.errorbar(t[i], y[i], xerr=err[:, i : i + 1], fmt="o", color=colors[i], capsize=3)
    a.set_yticks(y, [str(e.get("name")) for e in rows])
    a.set_xlabel(xlabel)
    a.set_xlim(left=0)
    a.grid(axis="x", alpha=0.3)
    return fig


def resolution_vs_events_figure(results: Mapping[str, Sequence[Any]]) -> Any:
    """Pointing resolution (θ68 of bursts) against the number of events, log–log, with a 1/√N guide.

    Args:
        results: reference name → :class:`~edkeras.pointing.burst.ResolutionResult` list (one per burst size).

    Returns:
        A matplotlib Figure.
    """
    if not results:
        raise InputError("resolution_vs_events_figure: no results given")
    fig, (a,) = _figure(1, (7.0, 4.5))
    for name, res in results.items():
        n = np.array([r.n_events for r in res], dtype=np.float64)
        t = np.array([r.theta68 for r in res], dtype=np.float64)
        lo = np.array([r.theta68_ci[0] for r in res], dtype=np.float64)
        hi = np.array([r.theta68_ci[1] for r in res], dtype=np.float64)
        line = a.errorbar(n, t, yerr=np.vstack([np.clip(t - lo, 0, None), np.clip(hi - t, 0, None)]),
                          marker="o", capsize=3, label=name)
        if len(n) and np.isfinite(t[-1]) and t[-1] > 0:
            guide = t[-1] * np.sqrt(n[-1] / n)
            a.plot(n, guide, ls=":", color=line[0].get_color(), lw=1)
    a.set_xscale("log")
    a.set_yscale("log")
    a.set_xlabel("events per burst")
    a.set_ylabel("pointing resolution: θ68 of bursts (degrees)")
    a.grid(True, which="both", alpha=0.3)
    a.legend(fontsize="small", title="dotted: ∝ 1/√N", title_fontsize="small")
    return fig
