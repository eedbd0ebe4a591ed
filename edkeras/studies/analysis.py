"""What the analysis notebooks share: finding the run to analyse, held-out halves, simulated
burst samples, and the few tables and figures that two of them draw.

Method notes: ``docs/methods.md``, section ``edkeras.studies.analysis``.

Example:
    >>> from edkeras.studies import analysis as pa, phase
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

import keras
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
from edkeras.reco.ensemble_model import build_ensemble, load_ensemble
from edkeras.reco.evaluate import classifier_es_probabilities, evaluate
from edkeras.reco.metrics import angular_error_deg
from edkeras.reco.predictions import Predictions, load_predictions
from edkeras.reco.pretrained import PREFIX, SHIPPED_DIR, pretrained_dir
from edkeras.studies.phase import data_key, read_split, train_or_load

__all__ = [
    "WINDOW_ONLY",
    "SourceRun",
    "align_by_event_id",
    "burst_fit",
    "choose_production",
    "collapse_note",
    "find_run",
    "member_stack",
    "model_inputs",
    "quality_rows",
    "response_rows",
    "simulated_sample",
    "source_run",
    "split_predictions",
    "test_set_groups",
    "truth_predictions",
]

WINDOW_ONLY = "network, classifier on the window only"
"""Key of :func:`simulated_sample`'s result: the network's predictions with the classifier's
probability from the image window alone, when the classifier also joins the blips round the event."""

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
                   angular_errors=np.zeros(len(t)), kappa=None, sigma=None, flip_probability=None, run="truth", model="",
                   path=None)


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
    if all(p.kappa_equivalent is not None for p in preds):
        return np.stack([np.column_stack([p.predictions, p.kappa_equivalent]) for p in preds])
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
    mirror_average: bool = False,
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
            classification; :func:`edkeras.reco.evaluate.classifier_es_probability`). When the
            classifier joins the blips round each event, the result also holds ``WINDOW_ONLY``:
            the network's predictions with the probability of the window alone.
        mirror_average: the network's directions averaged over each event's eight mirror
            images (``evaluate(mirror_average=True)``; 8 × the prediction time).

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
        evaluate(run_dir, events, out=path, mirror_average=mirror_average)
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

        es_p = classifier_es_probabilities(classifier, events)
        window = es_p["window"]
        result = {k: replace(p, es_probability=es_p.get("with_blips", window)) for k, p in result.items()}
        if "with_blips" in es_p and "network" in result:  # the same classifier without the blips, for comparison
            result[WINDOW_ONLY] = replace(result["network"], es_probability=window)
    return {k: result[k] for k in ("truth", "classical", "network", WINDOW_ONLY) if k in result}


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


def burst_fit(
    pred: Any, tables: Any, plan: Any, b: int, classification: str = "perfect", use_kappa: bool = True,
    method: str = "resample", **fit_options: Any,
) -> tuple[Any, np.ndarray]:
    """Fit burst ``b`` of a :class:`~edkeras.pointing.resolution.BurstPlan` (the same burst the resolution study fits).

    Args:
        pred: the large predicted sample (with ``nu_directions`` and ``energies``).
        tables: a :class:`~edkeras.pointing.tables.LikelihoodTable` or ``{"es": …, "cc": …}``.
        plan: the burst plan.
        b: which burst.
        classification: ``"perfect"``, ``"mixed"`` or ``"classifier"`` (two tables only; see
            :func:`edkeras.pointing.likelihood.classification_weights`).
        use_kappa: pass the events' κ (tables with κ bins use it).
        method: ``"resample"`` (the events were simulated with the supernova at the plan's
            direction: used as they are) or ``"rotate"`` (events rotated so that their
            neutrino direction becomes the plan's direction, :func:`edkeras.core.sphere.rotate_to`).
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




def tp_agreement(
    table: Mapping[str, Mapping[str, Mapping[str, float]]],
    window_only: Sequence[str] = ("main_cluster_share", "other_clusters"),
    tolerance: float = 0.3,
) -> tuple[dict[str, float], float, str]:
    """How close simulated trigger-primitive medians are to real ones.

    ``window_only`` rows are left out: the real medians count the whole event, an image one window.

    Returns:
        (``quantity/plane`` → simulated/real, the share within ±``tolerance``, the farthest key).
    """
    ratios = {f"{q}/{p}": v["sim"] / v["real"] for q, row in table.items() for p, v in row.items()
              if v["real"] and q not in window_only}
    finite = {k: r for k, r in ratios.items() if np.isfinite(r)}
    if not finite:
        raise InputError("tp_agreement: no comparable simulated/real median")
    within = float(np.mean([abs(r - 1.0) <= tolerance for r in finite.values()]))
    return ratios, within, max(finite, key=lambda k: abs(finite[k] - 1.0))


def check_saved_ensemble(
    run_dirs: Sequence[Path], config: RunConfig, expected: np.ndarray, path: Path, kappa: str = "spread",
) -> tuple[tuple[int, ...], float]:
    """Save the ensemble of ``run_dirs``' models to ``path``, reload it, and predict the test split of ``config``.

    Args:
        expected: (N, 3) spherical means of the members' saved test predictions, in test order.

    Returns:
        (shape of the reloaded ensemble's output, largest angle in degrees from ``expected``).
    """
    members = [keras.saving.load_model(Path(d) / "model.keras", compile=False) for d in run_dirs]
    build_ensemble(members, kappa=kappa).save(path)
    batch = read_split(config, "test")
    out = load_ensemble(path).predict(model_inputs(batch, energy=config.data.energy_input), verbose=0)["direction"]
    if out.shape[0] != len(expected):
        raise InputError(f"{path}: the ensemble predicted {out.shape[0]} test events; expected {len(expected)}")
    return tuple(out.shape), float(np.max(angular_error_deg(out[:, :3], expected)))
