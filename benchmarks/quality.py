"""Quality at a fixed budget: every reconstruction on the same simulated test events, side by side.

One simulated data set (ES events of the supernova spectrum, 128 × 32, fixed seeds) is
split once into training, validation and test events (exact counts, split seed 0). Every
network is trained through :func:`edkeras.reco.training.train` (the one training path, via
:func:`edkeras.studies.phase.train_or_load`) on the **same training events for the same number of
epochs** (no early stopping, so the budget is equal; the checkpoint is the best epoch on
the validation split), and every entry is measured on the **same test events**, which
choose nothing: θ68 (68 % containment), median, mean and flip fraction (cos θ < −0.9),
each with a bootstrap 68 % confidence interval, overall and per reconstructed-energy bin.

Entries (``--models``; default: all):

* ``classical`` — the non-ML line fit with head–tail features
  (:func:`edkeras.reco.classical.fit_classical`, head–tail weights fitted on independent
  gun electrons), and ``classical+ht`` — the same with head–tail weights refitted on this
  data set's **training** events;
* ``baseline_v15`` — the earlier system's CNN trained as it was (angular loss, Adam with
  clipnorm 0.5, reduce-LR-on-plateau, checkpoint on the validation loss, no augmentation).
  Its full size (11 M parameters) trains at ~6 samples/s on a 2-core CPU, so on a CPU it is
  narrowed by ``--v15-scale`` (default 0.25: 16·2^i filters instead of 64·2^i) and the
  table says so; at full size on a GPU or with ``--v15-scale 1``;
* ``<builder>`` and ``<builder>+mirror`` for ``compact``, ``residual_v18``,
  ``attention_v19``, ``multiscale_v20`` — without and with the exact mirror augmentation
  (angular loss, Adam, cosine learning-rate decay); ``<builder>+mirror+vmf`` (default
  ``compact+mirror+vmf``) — the v21 head (direction + κ, von Mises–Fisher NLL);
  ``--scale cpu`` (default without a GPU) uses the narrower widths of
  :data:`edkeras.studies.phase.CPU_OPTIONS`, as the phase notebooks do;
* ``ensemble`` — of the network entries listed before it, the one with the best
  **validation** θ68, retrained with
  ``--ensemble-seeds`` − 1 more seeds, members combined by the spherical mean;
* ``oracle`` — ``oracle_1cm``, ``oracle_2cm``: the direction from the true vertex to the
  energy-weighted centroid of the primary electron's true deposits along its first 1 (2)
  cm of path (see ``benchmarks/oracle.py``): the information limit of the images, roughly.

Outputs: one JSON object on stdout (and ``--out``; rewritten after every entry, so an
interrupted run keeps what it measured) with one mapping per entry under ``entries``
(``name``, ``theta68``, ``theta68_ci``, ``median``, ``flip_fraction``, ``n``, …; per-bin
figures as columns under ``by_energy``), and a Markdown table (``--markdown``). Finished
runs of the same config in ``--runs-dir`` are reused (``--force`` retrains).

Usage:
    python benchmarks/quality.py [--smoke] [--models compact compact+mirror ...]
        [--n-train 4000 --n-val 1000 --n-test 5000] [--epochs 4] [--v15-scale 0.25]
        [--scale auto|cpu|full] [--ensemble-seeds 3] [--runs-dir DIR] [--data-dir DIR]
        [--out FILE.json] [--markdown FILE.md] [--force]

Default budget: 4,000 training, 1,000 validation and 5,000 test events, 4 epochs, batch 64
(the CPU widths; see ``benchmarks/README.md`` for its wall time on this machine).
``--smoke``: 240/60/200 events, 1 epoch, tiny widths, 50 bootstrap samples — the test
suite's mode; its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import importlib.util
import json
import math
import os
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

__all__ = [
    "BUILDERS",
    "DEFAULT_MODELS",
    "Spec",
    "entry_metrics",
    "main",
    "markdown_table",
    "parse_spec",
    "run_quality",
]

BUILDERS: tuple[str, ...] = ("baseline_v15", "compact", "residual_v18", "attention_v19", "multiscale_v20")
"""The builders this benchmark compares."""

DEFAULT_MODELS: tuple[str, ...] = (
    "classical",
    "baseline_v15",
    "compact",
    "compact+mirror",
    "residual_v18",
    "residual_v18+mirror",
    "attention_v19",
    "attention_v19+mirror",
    "multiscale_v20",
    "multiscale_v20+mirror",
    "compact+mirror+vmf",
    "ensemble",
    "oracle",
)
"""Every entry, in the order they are run (the ensemble chooses among the networks before it)."""

SPECIAL = ("classical", "ensemble", "oracle")

SMOKE_SIZES = {"n_train": 240, "n_val": 60, "n_test": 200}

_HERE = Path(__file__).resolve().parent


def _load_oracle_module() -> Any:
    """``benchmarks/oracle.py`` (``benchmarks`` is not a package)."""
    name = "edkeras_benchmarks_oracle"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, _HERE / "oracle.py")
    mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[name] = mod
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


# =========================================================================== entries
@dataclass(frozen=True)
class Spec:
    """One ``--models`` item: a special entry, or a builder with its flags.

    Attributes:
        name: as given (``compact+mirror+vmf``).
        kind: ``network``, ``classical``, ``ensemble`` or ``oracle``.
        builder: the registered builder (networks).
        mirror: train with the mirror augmentation.
        vmf: the v21 head (``vmf``, loss ``vmf_nll``).
    """

    name: str
    kind: str
    builder: str | None = None
    mirror: bool = False
    vmf: bool = False


def parse_spec(text: str) -> Spec:
    """Parse ``classical``, ``ensemble``, ``oracle`` or ``<builder>[+mirror][+vmf]``.

    Raises:
        InputError: an unknown builder or flag (the valid ones are listed).
    """
    from edkeras.core.errors import InputError

    if text in SPECIAL:
        return Spec(text, text)
    builder, *flags = text.split("+")
    if builder not in BUILDERS:
        raise InputError(
            f"--models: unknown entry {text!r}; valid: {', '.join(SPECIAL)}, or one of "
            f"{', '.join(BUILDERS)} followed by +mirror and/or +vmf"
        )
    bad = [f for f in flags if f not in ("mirror", "vmf")] or (
        [flags[0]] if len(set(flags)) != len(flags) else []
    )
    if bad:
        raise InputError(
            f"--models: unknown or repeated flag {bad[0]!r} in {text!r}; valid flags: +mirror, +vmf"
        )
    if builder == "baseline_v15" and flags:
        raise InputError(
            f"--models: {text!r}: baseline_v15 is trained as the earlier system did (no augmentation, "
            "direction head); give it without flags"
        )
    return Spec(text, "network", builder, "mirror" in flags, "vmf" in flags)


@dataclass
class Budget:
    """The data set and the training budget shared by every entry."""

    n_train: int
    n_val: int
    n_test: int
    epochs: int
    batch_size: int
    learning_rate: float
    seed: int
    data_seed: int
    scale: str
    v15_scale: float
    smoke: bool
    n_boot: int
    ensemble_seeds: int
    oracle_lengths: tuple[float, ...]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n_events(self) -> int:
        return self.n_train + self.n_val + self.n_test


def _model_options(spec: Spec, budget: Budget) -> dict[str, Any]:
    from edkeras.studies.phase import CPU_OPTIONS, SMOKE_OPTIONS

    assert spec.builder is not None
    if budget.smoke:
        return dict(SMOKE_OPTIONS.get(spec.builder, {"filters": 8, "dense_units": 16}))
    if spec.builder == "baseline_v15":
        return {} if budget.v15_scale == 1.0 else {"filters": max(1, round(64 * budget.v15_scale))}
    return dict(CPU_OPTIONS.get(spec.builder, {})) if budget.scale == "cpu" else {}


def run_config(spec: Spec, budget: Budget, data_file: Path, seed: int | None = None) -> Any:
    """The :class:`edkeras.reco.config.RunConfig` of a network entry (seed: the training seed)."""
    from edkeras.core.schema import from_dict
    from edkeras.reco.config import RunConfig

    seed = budget.seed if seed is None else seed
    n = budget.n_events
    training: dict[str, Any] = {
        "epochs": budget.epochs,
        "batch_size": budget.batch_size,
        "seed": int(seed),
        "early_stopping_patience": None,  # the same epochs for every model
        "bootstrap_samples": 50,  # metrics.json's own intervals; this script recomputes them
    }
    if spec.builder == "baseline_v15":  # as the earlier system: its loss, optimiser and schedule
        training.update(
            loss="angular",
            optimizer="adam",
            learning_rate=1e-3,
            clipnorm=0.5,
            schedule="plateau",
            monitor="val_loss",
        )
    else:
        training.update(
            loss="vmf_nll" if spec.vmf else "angular",
            optimizer="adam",
            learning_rate=budget.learning_rate,
            schedule="cosine",
        )
    name = spec.name if seed == budget.seed else f"{spec.name}.s{seed}"
    raw = {
        "name": name,
        "data": {
            "files": [str(data_file)],
            "val_fraction": budget.n_val / n,
            "test_fraction": budget.n_test / n,
            "split_seed": 0,
            "cache": True,
        },
        "model": {
            "name": spec.builder,
            "head": "vmf" if spec.vmf else "direction",
            "options": _model_options(spec, budget),
        },
        "training": training,
        "augmentation": {"mirror": spec.mirror},
    }
    return from_dict(RunConfig, raw, where=f"quality entry {spec.name}")


# =========================================================================== metrics
def entry_metrics(
    errors_deg: np.ndarray, reco_energy: np.ndarray, n_boot: int, seed: int = 0
) -> dict[str, Any]:
    """Overall and per-energy-bin resolution of one entry.

    Args:
        errors_deg: (N,) angular errors, degrees.
        reco_energy: (N,) reconstructed energies, MeV (bins: 0 and :data:`edkeras.reco.evaluation.ENERGY_EDGES`,
            so that every event, also one reconstructed below 5 MeV, falls in a bin).
        n_boot, seed: bootstrap of the 68 % intervals.

    Returns:
        The keys of :func:`edkeras.reco.metrics.resolution_summary` (intervals as lists) and
        ``by_energy``: ``{"lo": [...], "hi": [...], "n": [...], "theta68": [...], ...}``
        (one column per statistic, one value per bin; NaN for an empty bin).
    """
    from edkeras.reco.evaluation import ENERGY_EDGES
    from edkeras.reco.metrics import resolution_by_bin, resolution_summary

    out = {
        k: (list(v) if isinstance(v, tuple) else v)
        for k, v in resolution_summary(errors_deg, n_boot=n_boot, seed=seed).items()
    }
    rows = resolution_by_bin(errors_deg, reco_energy, (0.0, *ENERGY_EDGES), n_boot=n_boot, seed=seed)
    cols: dict[str, list[Any]] = {}
    for row in rows:
        for k, v in row.items():
            cols.setdefault(k, []).append(list(v) if isinstance(v, tuple) else v)
    out["by_energy"] = {"variable": "reco_energy (MeV)", **cols}
    return out


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, Path):
        return str(obj)
    return obj


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


# =========================================================================== markdown
def _fmt(v: Any, digits: int = 1, scale: float = 1.0) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    return f"{float(v) * scale:.{digits}f}"


def _fmt_ci(value: Any, ci: Any, digits: int = 1, scale: float = 1.0) -> str:
    if value is None:
        return "—"
    if not ci or ci[0] is None:
        return _fmt(value, digits, scale)
    return f"{_fmt(value, digits, scale)} [{_fmt(ci[0], digits, scale)}, {_fmt(ci[1], digits, scale)}]"


def markdown_table(result: dict[str, Any]) -> str:
    """The overall table and the per-energy-bin θ68 table of a quality result (Markdown)."""
    entries = result.get("entries", [])
    lines = [
        "| entry | what | params | best epoch / run | train ev/s | wall s | θ68 (°) [68 % CI] | median (°) "
        "| flips (%) | val θ68 (°) |",
        "|---|---|---:|---:|---:|---:|---|---|---|---:|",
    ]
    for e in entries:
        params = f"{e['params']:,}" if e.get("params") else "—"
        ep = f"{e['best_epoch'] + 1} / {e['epochs_run']}" if e.get("epochs_run") else "—"
        lines.append(
            f"| {e['name']} | {e.get('what', '')} | {params} | {ep} | {_fmt(e.get('train_samples_per_second'), 0)} | "
            f"{_fmt(e.get('seconds'), 0)} | "
            f"{_fmt_ci(e.get('theta68'), e.get('theta68_ci'))} | {_fmt_ci(e.get('median'), e.get('median_ci'))} | "
            f"{_fmt_ci(e.get('flip_fraction'), e.get('flip_fraction_ci'), 1, 100.0)} | {_fmt(e.get('val_theta68'))} |"
        )
    out = "\n".join(lines)
    if entries and entries[0].get("by_energy"):
        be = entries[0]["by_energy"]
        heads = [
            f"{_fmt(lo, 0)}–{_fmt(hi, 0) if hi is not None else '∞'}" for lo, hi in zip(be["lo"], be["hi"])
        ]
        rows = [
            "| entry | " + " | ".join(heads) + " |",
            "|---|" + "---:|" * len(heads),
            "| test events | " + " | ".join(str(n) for n in be["n"]) + " |",
        ]
        for e in entries:
            b = e.get("by_energy") or {}
            rows.append(f"| {e['name']} | " + " | ".join(_fmt(v) for v in b.get("theta68", [])) + " |")
        out += "\n\nθ68 (°) per bin of reconstructed energy (MeV), same test events:\n\n" + "\n".join(rows)
    return out + "\n"


# =========================================================================== data
def prepare_dataset(budget: Budget, data_dir: Path, log: Any) -> tuple[Path, dict[str, np.ndarray]]:
    """Simulate (or reuse) the ES data set with its oracle directions."""
    from edkeras.events.eventfile import open_events
    from edkeras.events.sim import SimConfig

    oracle = _load_oracle_module()
    config = SimConfig(channel="es")
    path = data_dir / f"quality_es_n{budget.n_events}_seed{budget.data_seed}.h5"
    if path.exists() and oracle.oracle_path(path).exists():
        with open_events(path) as f:
            ok = len(f) == budget.n_events
        if ok:
            print(f"quality: reusing {path}", file=log)
            return path, oracle.read_oracle(path)
    data_dir.mkdir(parents=True, exist_ok=True)
    print(f"quality: simulating {budget.n_events} ES events (seed {budget.data_seed}) into {path}", file=log)
    arrays = oracle.simulate_with_oracle(
        path,
        budget.n_events,
        budget.data_seed,
        config,
        lengths_cm=budget.oracle_lengths,
        overwrite=True,
        progress=True,
    )
    return path, arrays


# =========================================================================== main work
class _Quality:
    """State of one benchmark run (the test events, the entries measured so far)."""

    def __init__(
        self, budget: Budget, runs_dir: Path, data_dir: Path, force: bool, out: Path | None, log: Any
    ) -> None:
        self.budget, self.runs_dir, self.data_dir, self.force, self.out, self.log = (
            budget,
            runs_dir,
            data_dir,
            force,
            out,
            log,
        )
        self.entries: list[dict[str, Any]] = []
        self.networks: dict[str, dict[str, Any]] = {}  # name -> {"result", "spec", "val", "test"}
        self.notes: list[str] = []
        self.t0 = time.perf_counter()

    # ------------------------------------------------------------------ data
    def setup(self) -> None:
        from edkeras.core.errors import InputError
        from edkeras.events.eventfile import open_events
        from edkeras.reco.config import DataConfig
        from edkeras.reco.run_data import prepare_data

        b = self.budget
        self.data_file, self.oracle = prepare_dataset(b, self.data_dir, self.log)
        n = b.n_events
        data = prepare_data(
            DataConfig(
                files=(str(self.data_file),),
                val_fraction=b.n_val / n,
                test_fraction=b.n_test / n,
                split_seed=0,
            )
        )
        counts = data.counts()
        want = {"train": b.n_train, "val": b.n_val, "test": b.n_test}
        if counts != want:
            raise InputError(f"quality: the split gave {counts}; expected {want}")
        self.rows = {k: np.asarray(data.index.row[data.selected[k]]) for k in want}
        with open_events(self.data_file) as f:
            self.test = f.read(self.rows["test"])
        self.test_ids = np.asarray(self.test.event_id)
        self.reco = np.asarray(self.test.reco_energy, dtype=np.float64)
        self.truth = np.asarray(self.test.direction, dtype=np.float64)

    def _aligned(self, event_id: np.ndarray, values: np.ndarray, what: str) -> np.ndarray:
        """``values`` (per event of ``event_id``) in the order of the test events."""
        from edkeras.core.errors import InputError

        pos = {int(e): i for i, e in enumerate(np.asarray(event_id))}
        missing = [int(e) for e in self.test_ids if int(e) not in pos]
        if missing:
            raise InputError(f"quality: {what} lacks test event {missing[0]} (of {len(missing)} missing)")
        return np.asarray(values)[[pos[int(e)] for e in self.test_ids]]

    # ------------------------------------------------------------------ entries
    def add(
        self,
        name: str,
        kind: str,
        what: str,
        directions: np.ndarray,
        seconds: float,
        mask: np.ndarray | None = None,
        **info: Any,
    ) -> None:
        """Measure ``directions`` (N, 3) on the test events and record the entry."""
        from edkeras.reco.metrics import angular_error_deg

        keep = np.ones(len(self.truth), dtype=bool) if mask is None else mask
        err = angular_error_deg(directions[keep], self.truth[keep])
        m = entry_metrics(err, self.reco[keep], self.budget.n_boot, seed=0)
        entry = {"name": name, "kind": kind, "what": what, **m, "seconds": round(seconds, 2), **info}
        self.entries.append(entry)
        print(
            f"quality: {name}: θ68 = {m['theta68']:.1f}° (median {m['median']:.1f}°, n = {m['n']})",
            file=self.log,
        )
        self.write()

    def classical(self) -> None:
        from edkeras.events.eventfile import open_events
        from edkeras.reco.classical import fit_classical, fit_head_tail_model

        t = time.perf_counter()
        fit = fit_classical(self.test)
        self.add(
            "classical",
            "classical",
            "line fits + head–tail (weights from independent gun events)",
            fit.direction,
            time.perf_counter() - t,
            fit_ok_fraction=float(fit.ok.mean()),
        )
        t = time.perf_counter()
        with open_events(self.data_file) as f:
            train = f.read(self.rows["train"])
        model = fit_head_tail_model(train)
        del train
        fit = fit_classical(self.test, head_tail=model)
        self.add(
            "classical+ht",
            "classical",
            f"the same, head–tail weights fitted on the {self.budget.n_train} training events",
            fit.direction,
            time.perf_counter() - t,
            fit_ok_fraction=float(fit.ok.mean()),
            head_tail_train_accuracy=model.accuracy,
        )

    def oracle_entries(self) -> None:
        ids = self.oracle["event_id"]
        for L in self.budget.oracle_lengths:
            key = _load_oracle_module().oracle_key(L)
            if key not in self.oracle:
                self.notes.append(f"{key}: not in the data set's oracle file (simulated with other lengths)")
                continue
            d = self._aligned(ids, self.oracle[key], key)
            ok = np.isfinite(d).all(axis=1)
            self.add(
                key,
                "oracle",
                f"true vertex → centroid of the primary electron's true deposits, first {L:g} cm (truth)",
                np.where(ok[:, None], d, 0.0),
                0.0,
                mask=ok,
                n_without_deposits=int((~ok).sum()),
            )

    def _train(self, spec: Spec, seed: int | None = None) -> dict[str, Any]:
        """Train (or reuse) one network run; its val and test predictions aligned to the test events."""
        import keras

        from edkeras.reco.models import build_model, model_summary
        from edkeras.reco.predictions import load_predictions
        from edkeras.studies.phase import train_or_load

        config = run_config(spec, self.budget, self.data_file, seed)
        t = time.perf_counter()
        with contextlib.redirect_stdout(self.log):  # Keras prints progress to stdout; stdout is for the JSON
            result = train_or_load(config, force=self.force, runs_dir=self.runs_dir)
        seconds = time.perf_counter() - t
        test = load_predictions(result.run_dir / "predictions_test.npz")
        val = load_predictions(result.run_dir / "predictions_val.npz")
        pred = np.asarray(test.predictions, dtype=np.float64)
        kappa = None if test.kappa_equivalent is None else self._aligned(test.event_id, test.kappa_equivalent, config.name)
        m = config.model
        summary = model_summary(
            build_model(m.name, head=m.head, input_shape=self.test.U.shape[1:], **m.options)
        )
        keras.backend.clear_session()
        metrics = result.metrics
        return {
            "config": config,
            "run_dir": result.run_dir,
            "test": self._aligned(test.event_id, pred, config.name),
            "kappa": kappa,
            "val_pred": np.asarray(val.predictions, dtype=np.float64),
            "val_true": np.asarray(val.true_directions, dtype=np.float64),
            "val_theta68": metrics["val"]["overall"]["theta68"],
            "info": {
                "run": config.name,
                "run_dir": str(result.run_dir),
                "builder": m.name,
                "head": m.head,
                "loss": config.training.loss,
                "options": dict(m.options),
                "augmentation": "mirror" if config.augmentation.mirror else None,
                "params": summary["params"],
                "flops_per_event": summary["flops_per_event"],
                "epochs_run": int(metrics["epochs_run"]),
                "best_epoch": int(metrics["best_epoch"]),
                "train_samples_per_second": metrics.get("timing", {}).get("train_samples_per_second"),
                "val_theta68": metrics["val"]["overall"]["theta68"],
                "kappa_coverage": metrics["test"].get("kappa_coverage"),
            },
            "seconds": seconds,
        }

    def network(self, spec: Spec) -> None:
        run = self._train(spec)
        self.networks[spec.name] = {"spec": spec, **run}
        self.add(
            spec.name,
            "network",
            self._describe(spec, run["info"]),
            run["test"],
            run["seconds"],
            **run["info"],
        )

    def _describe(self, spec: Spec, info: dict[str, Any]) -> str:
        opts = ", ".join(f"{k}={v}" for k, v in info["options"].items())
        if spec.builder == "baseline_v15":
            width = (
                "full size"
                if self.budget.v15_scale == 1.0 and not self.budget.smoke
                else (f"**narrowed** ({opts}; full = filters 64)")
            )
            return (
                f"earlier system's CNN, {width}; angular loss, Adam clipnorm 0.5, plateau LR, no augmentation"
            )
        parts = [spec.builder or ""]
        if opts:
            parts.append(f"({opts})")
        parts.append("+ mirror augmentation" if spec.mirror else "no augmentation")
        if spec.vmf:
            parts.append("+ v21 vMF head (vmf_nll)")
        return " ".join(parts)

    def ensemble(self) -> None:
        from edkeras.reco.ensembles import spherical_mean
        from edkeras.reco.metrics import angular_error_deg, containment_angle

        if not self.networks:
            self.notes.append("ensemble: skipped (no network entry in --models to choose the best from)")
            return
        best = min(self.networks, key=lambda k: self.networks[k]["val_theta68"])
        k = self.budget.ensemble_seeds
        base = self.networks[best]
        t = time.perf_counter()
        members = [base] + [self._train(base["spec"], seed=self.budget.seed + i) for i in range(1, k)]
        test = spherical_mean(np.stack([m["test"][:, :3] for m in members]), on_degenerate="first")
        val = spherical_mean(np.stack([m["val_pred"][:, :3] for m in members]), on_degenerate="first")
        val_theta68 = containment_angle(angular_error_deg(val, base["val_true"]))
        self.add(
            "ensemble",
            "ensemble",
            f"spherical mean of {k} seeds of {best} (best validation θ68 of the networks above)",
            test,
            time.perf_counter() - t,
            members=[m["info"]["run"] for m in members],
            best_single=best,
            val_theta68=val_theta68,
            member_val_theta68=[m["val_theta68"] for m in members],
            params=sum(m["info"]["params"] for m in members),
        )

    # ------------------------------------------------------------------ output
    def result(self) -> dict[str, Any]:
        b = self.budget
        import keras

        from edkeras.reco.training import gpu_present

        return _jsonable(
            {
                "benchmark": "quality",
                "date": _dt.date.today().isoformat(),
                "host": platform.node(),
                "cpu_count": os.cpu_count(),
                "device": "gpu" if gpu_present() else "cpu",
                "backend": keras.backend.backend(),
                "smoke": b.smoke,
                "data": {
                    "file": str(self.data_file),
                    "channel": "es",
                    "spectrum": "pinched Fermi–Dirac, <E_nu> = 11 MeV (SimConfig defaults), electrons 5–70 MeV",
                    "image_shape": list(self.test.U.shape[1:]),
                    "simulation_seed": b.data_seed,
                    "split_seed": 0,
                    "events": {"train": b.n_train, "val": b.n_val, "test": b.n_test},
                },
                "budget": {
                    "epochs": b.epochs,
                    "batch_size": b.batch_size,
                    "learning_rate": b.learning_rate,
                    "seed": b.seed,
                    "early_stopping": None,
                    "checkpoint": "best validation epoch (val angular error; baseline_v15: val loss)",
                    "scale": b.scale,
                    "v15_scale": b.v15_scale,
                    "ensemble_seeds": b.ensemble_seeds,
                    "bootstrap_samples": b.n_boot,
                    "recipe": "angular loss (vmf_nll for +vmf), Adam, cosine decay; baseline_v15: angular, "
                    "Adam clipnorm 0.5, reduce-LR-on-plateau",
                },
                "entries": self.entries,
                "best_network_by_val": min(self.networks, key=lambda k: self.networks[k]["val_theta68"])
                if self.networks
                else None,
                "notes": self.notes,
                "seconds": round(time.perf_counter() - self.t0, 1),
            }
        )

    def write(self) -> None:
        if self.out is not None:
            _write_atomic(self.out, json.dumps(self.result(), indent=2) + "\n")


def run_quality(
    models: Sequence[str],
    budget: Budget,
    runs_dir: Path,
    data_dir: Path,
    force: bool = False,
    out: Path | None = None,
    log: Any = None,
) -> dict[str, Any]:
    """Run the benchmark; returns the JSON-ready result (also written to ``out`` after every entry).

    Args:
        models: entries (see :data:`DEFAULT_MODELS` and :func:`parse_spec`).
        budget: data set and training budget.
        runs_dir: where the training runs go.
        data_dir: where the simulated data set (and its oracle file) go.
        force: retrain finished runs.
        out: JSON file rewritten after each entry.
        log: stream for progress (default: stderr).
    """
    specs = [parse_spec(m) for m in models]
    q = _Quality(budget, Path(runs_dir), Path(data_dir), force, out, log or sys.stderr)
    q.setup()
    for spec in specs:
        if spec.kind == "classical":
            q.classical()
        elif spec.kind == "oracle":
            q.oracle_entries()
        elif spec.kind == "network":
            q.network(spec)
        else:  # the ensemble: the best of the networks measured before it in the list
            q.ensemble()
    if budget.scale == "cpu" and not budget.smoke and any(s.kind == "network" for s in specs):
        q.notes.append(
            "scale cpu: residual_v18, attention_v19, multiscale_v20 use edkeras.studies.phase.CPU_OPTIONS widths"
        )
    result = q.result()
    q.write()
    return result


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, run, print the JSON; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny data, 1 epoch, tiny widths (tests)")
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS), help="entries (default: all)")
    parser.add_argument("--n-train", type=int, default=4000)
    parser.add_argument("--n-val", type=int, default=1000)
    parser.add_argument("--n-test", type=int, default=5000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=1e-3, help="peak rate of the edkeras models")
    parser.add_argument("--seed", type=int, default=0, help="training seed (ensemble members: seed+1, …)")
    parser.add_argument("--data-seed", type=int, default=20261128, help="simulation seed of the data set")
    parser.add_argument(
        "--scale",
        choices=("auto", "cpu", "full"),
        default="auto",
        help="widths: cpu (edkeras.studies.phase.CPU_OPTIONS), full (builder defaults); auto: full on a GPU",
    )
    parser.add_argument(
        "--v15-scale",
        type=float,
        default=None,
        help="baseline_v15 width as a fraction of 64 filters (default 0.25 on a CPU, 1 on a GPU)",
    )
    parser.add_argument("--ensemble-seeds", type=int, default=3)
    parser.add_argument("--oracle-lengths", type=float, nargs="+", default=None, metavar="CM")
    parser.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples of the intervals")
    parser.add_argument("--runs-dir", type=Path, default=None, help="default /tmp/edkeras-quality/runs")
    parser.add_argument("--data-dir", type=Path, default=None, help="default /tmp/edkeras-quality/data")
    parser.add_argument("--out", type=Path, default=None, help="write the JSON here too")
    parser.add_argument("--markdown", type=Path, default=None, help="write the Markdown table here")
    parser.add_argument("--force", action="store_true", help="retrain runs already finished in --runs-dir")
    parser.add_argument(
        "--render", type=Path, default=None, metavar="JSON", help="only write the Markdown of a saved result"
    )
    args = parser.parse_args(argv)
    if args.render is not None:
        table = markdown_table(json.loads(args.render.read_text()))
        if args.markdown is not None:
            _write_atomic(args.markdown, table)
        print(table, end="")
        return 0

    from edkeras.core.errors import InputError
    from edkeras.reco.training import gpu_present

    oracle = _load_oracle_module()
    root = Path("/tmp/edkeras-quality") / ("smoke" if args.smoke else "")
    sizes = (
        dict(SMOKE_SIZES)
        if args.smoke
        else {"n_train": args.n_train, "n_val": args.n_val, "n_test": args.n_test}
    )
    gpu = gpu_present()
    scale = ("full" if gpu else "cpu") if args.scale == "auto" else args.scale
    v15 = args.v15_scale if args.v15_scale is not None else (1.0 if scale == "full" else 0.25)
    try:
        for key, v in sizes.items():
            if v < 1:
                raise InputError(f"--{key.replace('_', '-')}: must be >= 1; received {v}")
        if not 0 < v15 <= 1:
            raise InputError(f"--v15-scale: must be in (0, 1]; received {v15}")
        if args.epochs < 1 or args.ensemble_seeds < 2 or args.n_boot < 10:
            raise InputError(
                f"--epochs must be >= 1, --ensemble-seeds >= 2, --n-boot >= 10; received "
                f"{args.epochs}, {args.ensemble_seeds}, {args.n_boot}"
            )
        for m in args.models:
            parse_spec(m)
        budget = Budget(
            **sizes,
            epochs=1 if args.smoke else args.epochs,
            batch_size=32 if args.smoke else args.batch_size,
            learning_rate=args.learning_rate,
            seed=args.seed,
            data_seed=args.data_seed,
            scale=scale,
            v15_scale=v15,
            smoke=args.smoke,
            n_boot=50 if args.smoke else args.n_boot,
            ensemble_seeds=2 if args.smoke else args.ensemble_seeds,
            oracle_lengths=tuple(args.oracle_lengths or oracle.ORACLE_LENGTHS_CM),
        )
        result = run_quality(
            args.models,
            budget,
            args.runs_dir or root / "runs",
            args.data_dir or root / "data",
            force=args.force,
            out=args.out,
        )
    except (InputError, FileExistsError) as e:
        print(f"quality.py: error: {e}", file=sys.stderr)
        return 1
    if args.markdown is not None:
        _write_atomic(args.markdown, markdown_table(result))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
