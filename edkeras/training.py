"""The one training path: a run config in, a finished run folder out (DESIGN.md §7).

:func:`train` does, in this order and nothing else:

1. **data** — the event files (``"synthetic"`` = the embedded default), one seeded split
   of all their events by event id or by file (:mod:`edkeras.data.splits`, saved as
   ``split.npz``), then the filters (reconstructed energy, interaction) and the event cap;
2. **model** — ``edkeras.models.build_model(name, head=…, energy_conditioning=…,
   input_shape=<the files' image shape>, **options)``, compiled with the loss of
   :func:`edkeras.losses.get_loss` (or ``multitask_losses``) and the angular-error metric;
3. **fit** — streaming training batches (augmented, see :mod:`edkeras.data.augment`);
   callbacks: learning-rate schedule (warm-up, cosine, plateau), ``TerminateOnNaN``,
   best-only checkpoint ``model.keras`` chosen on the **validation** split, early stopping
   on the validation split, ``CSVLogger`` (``history.csv``), epoch backups (the two newest,
   written atomically: an interrupted run resumes where it stopped, with the same shuffling
   and the same checkpoint and early-stopping state), the Keras progress bar;
4. **evaluation** — the chosen model predicts the validation and the test split, once:
   ``predictions_val.npz``, ``predictions_test.npz`` and ``metrics.json`` (θ68, median,
   mean, flip fraction with bootstrap CIs, overall, per reconstructed-energy bin and per
   interaction, each block saying which split it comes from).

The test split is built only after training ends: no callback, checkpoint or stopping
decision can see it. The same config and seed on the same machine give the same metrics
(seeded weights, shuffling and augmentation; deterministic TensorFlow ops).

Example:
    >>> from edkeras.config import load_run_config
    >>> from edkeras.training import train
    >>> result = train(load_run_config("configs/compact.json", ["training.epochs=3"]))
    >>> result.metrics["test"]["overall"]["theta68"]
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edkeras.config import ConfigError, DataConfig, RunConfig, load_json, to_dict
from edkeras.data.splits import SPLIT_NAMES, Split, save_split, split_events
from edkeras.errors import InputError

__all__ = [
    "BACKUPS_KEPT",
    "COARSE_ENERGY_EDGES",
    "ENERGY_EDGES",
    "RunData",
    "RunResult",
    "build_run_model",
    "check_run_config",
    "classifier_es_probability",
    "compile_model",
    "distribution_strategy",
    "energy_in_target",
    "evaluate",
    "evaluation_metrics",
    "gpu_present",
    "learning_rate_at",
    "predict_arrays",
    "prepare_data",
    "restore_backup",
    "save_backup",
    "train",
]

ENERGY_EDGES: tuple[float, ...] = (5.0, 10.0, 15.0, 20.0, 30.0, 50.0, math.inf)
"""Reconstructed-energy bins (MeV) of the metrics."""

COARSE_ENERGY_EDGES: tuple[float, ...] = (0.0, 20.0, 40.0, math.inf)
"""Coarse bins: below 20, 20–40, above 40 MeV."""

_INTERACTIONS = {"es": 1, "cc": 0}


# =========================================================================== data
@dataclass
class RunData:
    """The events of a run: all events of its files, their split, and what is used of each.

    Attributes:
        files: the event files.
        index: every event of the files (an :class:`edkeras.data.dataset.EventIndex`).
        split: the split of *all* events (so an event's split never depends on filters).
        selected: positions into ``index`` per split, after the filters and the cap.
    """

    files: list[Path]
    index: Any
    split: Split
    selected: dict[str, np.ndarray]

    def subset(self, name: str) -> Any:
        """The :class:`EventIndex` of split ``name`` (``train``, ``val`` or ``test``)."""
        return self.index.select(self.selected[name])

    def counts(self) -> dict[str, int]:
        """Events used per split."""
        return {k: int(v.size) for k, v in self.selected.items()}


def _resolve_files(data: DataConfig) -> list[Path]:
    from edkeras.data.default import default_dataset

    out: list[Path] = []
    for f in data.files:
        if f == "synthetic":
            out.append(default_dataset(n_events=data.synthetic_events, seed=data.synthetic_seed))
        else:
            p = Path(f).expanduser()
            if not p.exists():
                raise InputError(f"data.files: no such event file {str(p)!r}")
            out.append(p)
    return out


def prepare_data(data: DataConfig) -> RunData:
    """Index the files, split all events, then apply the filters and the cap per split.

    Raises:
        InputError: a missing file, or a split left empty by the filters.
    """
    from edkeras.data.dataset import index_events

    files = _resolve_files(data)
    index = index_events(files)
    split = split_events(
        index.file_names, index.field("event_id"), data.val_fraction, data.test_fraction, data.split_seed, data.split_by
    )
    keep = np.ones(len(index), dtype=bool)
    if data.energy_min is not None or data.energy_max is not None:
        e = index.field("reco_energy").astype(np.float64)
        lo = -np.inf if data.energy_min is None else data.energy_min
        hi = np.inf if data.energy_max is None else data.energy_max
        keep &= np.isfinite(e) & (e >= lo) & (e < hi)
    if data.interaction != "all":
        keep &= index.field("interaction") == _INTERACTIONS[data.interaction]
    if data.n_events is not None:
        kept = np.flatnonzero(keep)
        keep[kept[data.n_events :]] = False
    selected = {k: split[k][keep[split[k]]] for k in SPLIT_NAMES}
    for k, v in selected.items():
        if v.size == 0:
            raise InputError(
                f"data: the {k} split holds no events after the filters (energy_min={data.energy_min}, "
                f"energy_max={data.energy_max}, interaction={data.interaction!r}, n_events={data.n_events}) "
                f"of {', '.join(map(str, files))}"
            )
    _check_labels(index, np.concatenate([selected[k] for k in SPLIT_NAMES]))
    return RunData(files, index, split, selected)


def _check_labels(index: Any, used: np.ndarray) -> None:
    """The truth a run trains and is scored on, checked as ``edkeras doctor`` checks it: every
    direction a non-zero vector (or all NaN: unknown), no negative or infinite energy (unique
    event ids are checked by the split). Found here, before the first epoch, instead of when
    the predictions are saved after the last."""

    def where(i: int) -> str:
        return f"{index.files[int(index.file[i])]}: event id {int(ids[i])} (index {int(index.row[i])})"

    ids = index.field("event_id")
    d = np.asarray(index.field("direction"), dtype=np.float64)[used]
    norm = np.linalg.norm(d, axis=1)
    bad = (np.isfinite(norm) & (norm < 1e-9)) | (np.isnan(d).any(axis=1) & ~np.isnan(d).all(axis=1))
    if bad.any():
        raise InputError(f"{where(used[np.flatnonzero(bad)[0]])}: true direction {d[np.flatnonzero(bad)[0]]} "
                         "is zero or partly NaN; expected a non-zero vector (or all NaN when unknown)")
    for name in ("energy", "reco_energy"):
        e = np.asarray(index.field(name), dtype=np.float64)[used]
        bad = np.isinf(e) | (e < 0)
        if bad.any():
            raise InputError(f"{where(used[np.flatnonzero(bad)[0]])}: {name} is {e[np.flatnonzero(bad)[0]]}; "
                             "expected an energy >= 0 MeV (or NaN when unknown)")


# =========================================================================== model
def build_run_model(config: RunConfig, image_shape: tuple[int, int]) -> Any:
    """Build the (uncompiled) model of ``config`` for images of ``image_shape``.

    Raises:
        ConfigError: unknown builder, unknown option (named, valid ones listed), an
            ``input_shape`` option that differs from the files' image shape.
    """
    from edkeras.models import build_model

    m = config.model
    _check_model_names(m)
    options = dict(m.options)
    shape = tuple(int(s) for s in image_shape)
    if "input_shape" in options:
        given = options.pop("input_shape")
        if not isinstance(given, (list, tuple)) or tuple(given) != shape:
            raise ConfigError(
                f"model.options.input_shape: {given!r} differs from the image shape of the event files {list(shape)}"
            )
    try:
        return build_model(m.name, head=m.head, energy_conditioning=config.data.energy_input, input_shape=shape, **options)
    except InputError as e:
        raise ConfigError(f"model.options: {e}") from None


def _check_model_names(m: Any) -> None:
    """The builder is registered and every option is one of its own (ConfigError naming it)."""
    from edkeras.models import builder_options

    try:
        valid = builder_options(m.name)
    except InputError as e:
        raise ConfigError(f"model.name: {e}") from None
    for key in m.options:
        if key not in valid:
            raise ConfigError(
                f"model.options.{key}: unknown option of model {m.name!r}; valid options: "
                f"{', '.join(k for k in valid if k not in ('head', 'energy_conditioning'))}"
            )


def check_run_config(config: RunConfig) -> None:
    """What can be checked before any data is read: the builder and its option names, the loss
    and its options, that the event files exist. :func:`train` runs it before touching the
    run folder.

    Raises:
        ConfigError: an unknown builder, option or loss option (named, with the valid ones).
        InputError: a missing event file.
    """
    from edkeras.losses import get_loss, multitask_losses

    m, t = config.model, config.training
    _check_model_names(m)
    try:
        if m.head == "multitask":
            multitask_losses(t.loss, energy_weight=t.energy_loss_weight,
                             interaction_weight=t.interaction_loss_weight, **t.loss_options)
        else:
            get_loss(t.loss, **t.loss_options)
    except InputError as e:
        raise ConfigError(f"training.loss_options: {e}") from None
    for f in config.data.files:
        if f != "synthetic" and not Path(f).expanduser().exists():
            raise InputError(f"data.files: no such event file {str(Path(f).expanduser())!r}")


def _monitor_key(config: RunConfig) -> str:
    if config.training.monitor == "val_angular_error_deg" and config.model.head == "multitask":
        return "val_direction_angular_error_deg"
    return config.training.monitor


def energy_in_target(config: RunConfig) -> bool:
    """Whether the loss needs the true energy beside the direction (energy-weighted focal loss)."""
    return config.training.loss == "focal_angular" and config.training.loss_options.get("alpha") is not None


def compile_model(model: Any, config: RunConfig) -> None:
    """Compile ``model`` with the loss, optimiser, schedule and metrics of ``config.training``."""
    import keras

    from edkeras.losses import get_loss, multitask_losses
    from edkeras.metrics import AngularErrorDeg, VMFConeCoverage

    t = config.training
    if t.optimizer == "adamw":
        opt = keras.optimizers.AdamW(learning_rate=t.learning_rate, weight_decay=t.weight_decay, clipnorm=t.clipnorm)
    else:
        opt = keras.optimizers.Adam(learning_rate=t.learning_rate, clipnorm=t.clipnorm)
    metrics: list[Any] = [AngularErrorDeg()]
    if config.model.head == "vmf":
        metrics += [VMFConeCoverage(0.68), VMFConeCoverage(0.90)]
    try:
        if config.model.head == "multitask":
            losses = multitask_losses(
                t.loss,
                energy_weight=t.energy_loss_weight,
                interaction_weight=t.interaction_loss_weight,
                **t.loss_options,
            )
        else:
            losses = {"loss": {"direction": get_loss(t.loss, **t.loss_options)}}
    except InputError as e:
        raise ConfigError(f"training.loss_options: {e}") from None
    out_metrics: dict[str, list[Any]] = {"direction": metrics}
    if config.model.head == "multitask":
        out_metrics["interaction"] = [keras.metrics.AUC(name="auc")]
    model.compile(optimizer=opt, metrics=out_metrics, **losses)


# =========================================================================== callbacks
def _read_history(path: Path) -> list[dict[str, str]]:
    """The rows of ``history.csv``; a row cut off by a kill (missing fields, no epoch) is dropped."""
    if not path.exists():
        return []
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [r for r in rows if None not in r.values() and str(r.get("epoch", "")).isdigit()]


def _checkpoint_value(ckpt: Path, model_path: Path, done: int) -> float | None:
    """The validation value of the checkpoint a resumed run keeps (None: none is kept).

    The checkpoint is dropped (``checkpoint.json`` and ``model.keras``) when it belongs to an
    epoch after the backup's, or when either file cannot be read whole.
    """
    value = None
    if ckpt.exists() and model_path.exists():
        try:
            record = json.loads(ckpt.read_text())
            if int(record["epoch"]) < done:
                import keras

                keras.saving.load_model(model_path, compile=False)  # readable whole?
                value = float(record["value"])
        except Exception as e:
            print(f"edkeras train: note: the checkpoint in {ckpt.parent} cannot be read ({type(e).__name__}); "
                  "dropped, the best epoch is chosen among the epochs still to run", file=sys.stderr)
    if value is None:
        ckpt.unlink(missing_ok=True)
        model_path.unlink(missing_ok=True)
    return value


def _write_history(path: Path, rows: list[dict[str, str]]) -> None:
    if not rows:
        path.unlink(missing_ok=True)
        return
    from edkeras.atomic import atomic_path

    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def _as_float(text: str | None) -> float:
    try:
        return float(text) if text not in (None, "") else math.nan
    except ValueError:
        return math.nan


def learning_rate_at(t: Any, epoch: int) -> float | None:
    """The scheduled learning rate of ``epoch`` (None: leave it to ReduceLROnPlateau)."""
    if epoch < t.warmup_epochs:
        return t.learning_rate * (epoch + 1) / (t.warmup_epochs + 1)
    if t.schedule == "cosine":
        span = max(t.epochs - t.warmup_epochs, 1)
        frac = min((epoch - t.warmup_epochs) / span, 1.0)
        return t.min_learning_rate + (t.learning_rate - t.min_learning_rate) * 0.5 * (1 + math.cos(math.pi * frac))
    if t.schedule == "constant" or epoch == t.warmup_epochs:
        return t.learning_rate
    return None


def _callbacks(
    config: RunConfig, run_dir: Path, train_ds: Any, history: list[dict[str, str]], checkpoint_best: float | None,
    validate: bool = True,
) -> dict[str, Any]:
    """The Keras callbacks of a run, restored to the state of the epochs already in ``history``.

    ``checkpoint_best`` is the validation score of the model already in ``model.keras``
    (None: no checkpoint yet); a later epoch replaces it only if it does better. Without
    ``validate`` (a refit on train+val) every epoch replaces it: the last one is kept.
    """
    import keras

    from edkeras.data.dataset import EpochSync

    t = config.training
    monitor = _monitor_key(config)
    prior = [_as_float(r.get(monitor)) for r in history]
    finite = [v for v in prior if math.isfinite(v)]
    last_lr = _as_float(history[-1].get("learning_rate")) if history else math.nan

    class LearningRate(keras.callbacks.Callback):
        """Warm-up and cosine per epoch; on resume, the plateau-reduced rate of the last epoch."""

        def __init__(self) -> None:
            super().__init__()
            self._first = True

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            lr = learning_rate_at(t, epoch)
            if lr is None and self._first and math.isfinite(last_lr):
                lr = last_lr
            self._first = False
            if lr is not None:
                self.model.optimizer.learning_rate.assign(lr)

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            if logs is not None:
                logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))

    class EpochSeeds(keras.callbacks.Callback):
        """Re-seed the model's random layers (dropout…) from (their seed, epoch) at each epoch start.

        Keras does not save the random-generator states in a backup, so without this a
        resumed run would draw other dropout masks than an uninterrupted one.
        """

        def on_train_begin(self, logs: dict | None = None) -> None:
            self._states = [v for v in self.model.variables if v.name == "seed_generator_state"]
            self._base = [int(keras.ops.convert_to_numpy(v)[0]) for v in self._states]

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            for v, base in zip(self._states, self._base):
                seed = (base * 1_000_003 + (epoch + 1) * 7_919) % 2_147_483_647
                v.assign(np.array([seed, 0], dtype=keras.backend.standardize_dtype(v.dtype)))

    class Checkpoint(keras.callbacks.ModelCheckpoint):
        """Best-only checkpoint on the validation monitor; records the epoch it holds."""

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            before = self.best
            super().on_epoch_end(epoch, logs)
            if self.best is not None and (before is None or self.best != before):
                from edkeras.runs import write_json

                write_json(run_dir / "checkpoint.json", {"epoch": epoch, "monitor": monitor, "value": float(self.best)})

    class EarlyStop(keras.callbacks.EarlyStopping):
        """EarlyStopping whose best value and patience count survive a resume."""

        def on_train_begin(self, logs: dict | None = None) -> None:
            super().on_train_begin(logs)
            if finite:
                j = int(np.nanargmin(np.asarray(prior, dtype=float)))
                self.best, self.best_epoch, self.wait = prior[j], j, len(prior) - 1 - j

    class LastEpoch(keras.callbacks.Callback):
        """Keep the model of the last epoch (a refit on train+val chooses nothing)."""

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            from edkeras.runs import write_json

            self.model.save(run_dir / "model.keras")
            loss = float((logs or {}).get("loss", math.nan))
            write_json(run_dir / "checkpoint.json", {"epoch": epoch, "monitor": "last epoch", "value": loss})

    cbs: dict[str, Any] = {
        "seeds": EpochSeeds(),
        "sync": EpochSync(train_ds),
        "lr": LearningRate(),
        "nan": keras.callbacks.TerminateOnNaN(),
        "checkpoint": Checkpoint(
            str(run_dir / "model.keras"), monitor=monitor, mode="min", save_best_only=True,
            initial_value_threshold=checkpoint_best, verbose=0,
        ) if validate else LastEpoch(),
    }
    if t.schedule == "plateau":
        cbs["plateau"] = keras.callbacks.ReduceLROnPlateau(
            monitor=monitor, mode="min", factor=t.plateau_factor, patience=t.plateau_patience,
            min_lr=t.min_learning_rate, verbose=0,
        )
    if t.early_stopping_patience is not None:
        cbs["early_stopping"] = EarlyStop(monitor=monitor, mode="min", patience=t.early_stopping_patience, verbose=0)
    cbs["csv"] = keras.callbacks.CSVLogger(str(run_dir / "history.csv"), append=True)

    class EpochBackup(keras.callbacks.Callback):
        """After every epoch, the model and optimizer state into ``backup/`` (see :func:`save_backup`);
        removed when the run ends normally."""

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            save_backup(self.model, run_dir / "backup", epoch + 1)

        def on_train_end(self, logs: dict | None = None) -> None:
            shutil.rmtree(run_dir / "backup", ignore_errors=True)

    cbs["backup"] = EpochBackup()
    return cbs


BACKUPS_KEPT = 2
"""Epoch backups kept in a run's ``backup/`` folder (the newest complete one is resumed from)."""


def save_backup(model: Any, backup_dir: Path, epochs_done: int) -> Path:
    """Write the weights (with the optimizer's state) and the epoch count as ``backup_dir/epoch-NNNNN``.

    The slot is written into a temporary folder and renamed into place, so a kill at any
    moment leaves only complete slots (and a temporary folder that is ignored); the
    :data:`BACKUPS_KEPT` newest slots are kept.
    """
    from edkeras.atomic import atomic_path

    backup_dir = Path(backup_dir)
    final = backup_dir / f"epoch-{int(epochs_done):05d}"
    shutil.rmtree(final, ignore_errors=True)
    with atomic_path(final) as tmp:
        tmp.mkdir()
        model.save_weights(tmp / "state.weights.h5")
        (tmp / "epoch.json").write_text(json.dumps({"epoch": int(epochs_done)}))
    for old in sorted(backup_dir.glob("epoch-*"))[:-BACKUPS_KEPT]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def restore_backup(model: Any, backup_dir: Path) -> int:
    """Load the newest backup slot that reads whole into ``model``; return its epoch count (0: none).

    A slot that cannot be read (a file cut short by a crash of the disk, say) is skipped
    with a note and the older one is tried; when none reads, the model keeps its fresh
    initial state and the run starts again from epoch 0.
    """
    import keras

    backup_dir = Path(backup_dir)
    slots = sorted(backup_dir.glob("epoch-*"), reverse=True) if backup_dir.is_dir() else []
    if not slots:
        return 0
    if model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    fresh = [keras.ops.convert_to_numpy(v) for v in model.variables]
    fresh_opt = [keras.ops.convert_to_numpy(v) for v in model.optimizer.variables] if model.optimizer else []
    for slot in slots:
        try:
            epoch = int(json.loads((slot / "epoch.json").read_text())["epoch"])
            model.load_weights(slot / "state.weights.h5")
            return epoch
        except Exception as e:  # a damaged slot: say so, try the older one
            print(f"edkeras train: note: backup {slot} cannot be read ({type(e).__name__}); trying an older one",
                  file=sys.stderr)
    for v, value in zip(model.variables, fresh):
        v.assign(value)
    for v, value in zip(model.optimizer.variables if model.optimizer else [], fresh_opt):
        v.assign(value)
    print(f"edkeras train: note: no backup in {backup_dir} can be read; starting again from epoch 0", file=sys.stderr)
    return 0


# =========================================================================== evaluation
def predict_arrays(model: Any, dataset: Any, head: str) -> dict[str, np.ndarray]:
    """Predictions of ``model`` on an evaluation dataset, as float64 arrays."""
    out = model.predict(dataset, verbose=0)
    if not isinstance(out, dict):
        out = {"direction": out}
    res = {"direction": np.asarray(out["direction"], dtype=np.float64)}
    if head == "vmf":
        res["kappa"] = res["direction"][:, 3]
        res["direction"] = res["direction"][:, :3]
    if head == "axial":
        # P(sense wrong) = sigmoid(−|s|), written with exp(−|s|) so it cannot overflow
        q = np.exp(-np.abs(res["direction"][:, 3]))  # columns 4–6 (the sense vector) are not kept
        res["flip_probability"] = q / (1.0 + q)
        res["direction"] = res["direction"][:, :3]
    if head == "multitask":
        res["energy"] = np.asarray(out["energy"], dtype=np.float64).reshape(-1)
        res["es_probability"] = np.asarray(out["interaction"], dtype=np.float64).reshape(-1)
    return res


def evaluation_metrics(
    predicted: dict[str, np.ndarray], labels: dict[str, np.ndarray], split: str, n_boot: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """Resolution of predicted directions against the truth: overall, per energy bin, per interaction.

    Args:
        predicted: ``direction`` (N, 3) and optionally ``kappa``, ``energy``, ``es_probability``,
            ``flip_probability``.
        labels: ``direction`` (N, 3) truth, ``reco_energy``, ``interaction``, ``energy``.
        split: the split's name, recorded in every block.
        n_boot, seed: bootstrap of the confidence intervals (68 % CL).

    Returns:
        ``{"split", "n", "overall", "by_energy", "by_energy_coarse", "by_interaction"}``
        (bins of reconstructed energy, MeV), plus ``kappa_coverage`` (vMF head) and
        ``energy``/``interaction`` blocks (multitask head).
    """
    from edkeras.metrics import (
        angular_error_deg,
        es_cc_separation,
        resolution_by_bin,
        resolution_summary,
        sense_calibration,
        vmf_cone_cos,
    )

    err = angular_error_deg(predicted["direction"], labels["direction"])
    reco = np.asarray(labels["reco_energy"], dtype=np.float64)
    out: dict[str, Any] = {
        "split": split,
        "n": int(err.size),
        "overall": resolution_summary(err, n_boot=n_boot, seed=seed),
        "energy_variable": "reco_energy (MeV)",
        "by_energy": resolution_by_bin(err, reco, ENERGY_EDGES, n_boot=n_boot, seed=seed),
        "by_energy_coarse": resolution_by_bin(err, reco, COARSE_ENERGY_EDGES, n_boot=n_boot, seed=seed),
        "by_interaction": {},
    }
    for name, code in _INTERACTIONS.items():
        mask = np.asarray(labels["interaction"]) == code
        out["by_interaction"][name] = (
            resolution_summary(err[mask], n_boot=n_boot, seed=seed) if mask.any() else {"n": 0}
        )
    if "kappa" in predicted:
        cos = np.cos(np.radians(err))
        out["kappa_coverage"] = {
            f"cone{int(f * 100)}": float(np.mean(cos >= vmf_cone_cos(np.maximum(predicted["kappa"], 1e-6), f)))
            for f in (0.68, 0.90)
        }
    if "flip_probability" in predicted:
        out["sense"] = sense_calibration(predicted["flip_probability"], err)
    if "energy" in predicted:
        rel = predicted["energy"] / np.asarray(labels["energy"], dtype=np.float64) - 1.0
        out["energy"] = {"relative_bias_median": float(np.median(rel)), "relative_resolution_mad": float(
            np.median(np.abs(rel - np.median(rel))) * 1.4826)}
    if "es_probability" in predicted:
        truth = np.asarray(labels["interaction"])
        if np.any(truth == 1) and np.any(truth == 0):
            out["interaction"] = es_cc_separation(predicted["es_probability"], truth)
        else:
            out["interaction"] = {"accuracy": float(np.mean((predicted["es_probability"] >= 0.5) == (truth == 1)))}
    return out


def _save_split_predictions(
    path: Path, predicted: dict[str, np.ndarray], labels: dict[str, np.ndarray], split: str, run: str, truth: bool = True
) -> Path:
    from edkeras.io.predictions import save_predictions

    return save_predictions(
        path,
        predictions=predicted["direction"],
        true_directions=labels["direction"] if truth else None,
        energies=labels["reco_energy"],
        true_energies=labels["energy"] if truth else None,
        interaction=labels["interaction"],
        nu_directions=labels["nu_direction"] if truth else None,
        event_id=labels["event_id"],
        kappa=predicted.get("kappa"),
        es_probability=predicted.get("es_probability"),
        flip_probability=predicted.get("flip_probability"),
        split=split,
        run=run,
    )


# =========================================================================== devices
def gpu_present() -> bool:
    """Whether the Keras backend (TensorFlow, JAX or PyTorch) sees a GPU."""
    import keras

    backend = keras.backend.backend()
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            return bool(tf.config.list_physical_devices("GPU"))
        if backend == "jax":
            import jax

            return any(d.platform == "gpu" for d in jax.devices())
        if backend == "torch":
            import torch

            return bool(torch.cuda.is_available())
    except Exception:  # a backend that cannot list devices: assume none
        return False
    return False


def distribution_strategy(config: RunConfig) -> Any:
    """The ``tf.distribute`` strategy of ``training.strategy`` (None for the default single device)."""
    import keras

    if config.training.strategy == "default":
        return None
    if keras.backend.backend() != "tensorflow":
        raise ConfigError(
            f"training.strategy: 'mirrored' needs the tensorflow backend; received backend {keras.backend.backend()!r}"
        )
    import tensorflow as tf

    return tf.distribute.MirroredStrategy()


def _eval_batch(n: int, batch_size: int, replicas: int) -> int:
    """Evaluation batch size: at least 128, and with several replicas a multiple of them that
    the first batch fills (Keras's MirroredStrategy cannot split an uneven first batch)."""
    size = max(batch_size, 128)
    if replicas > 1:
        size = max(min(size, n) // replicas * replicas, replicas)
    return size


# =========================================================================== train
@dataclass
class RunResult:
    """What :func:`train` returns.

    Attributes:
        run_dir: the run folder.
        config: the config the run used.
        metrics: the content of ``metrics.json``.
        best_epoch: the epoch (0-based, as in ``history.csv``) whose model was kept.
        epochs_run: epochs in ``history.csv``.
        resumed: whether this call continued an interrupted run.
    """

    run_dir: Path
    config: RunConfig
    metrics: dict[str, Any]
    best_epoch: int
    epochs_run: int
    resumed: bool


def train(
    config: RunConfig,
    run_dir: str | os.PathLike | None = None,
    force: bool = False,
    resume: bool = True,
    *,
    callbacks: Sequence[Any] = (),
    verbose: int | str = "auto",
) -> RunResult:
    """Train, choose the epoch on validation, evaluate on validation and test; write the run folder.

    Args:
        config: the run config.
        run_dir: the run folder (default ``runs/<config.name>``, see :func:`edkeras.runs.runs_dir`).
        force: overwrite a finished run (or an unfinished one of another config).
        resume: continue an unfinished run of the same config from its backup.
        callbacks: extra Keras callbacks (called after the run's own at each epoch end).
        verbose: Keras ``fit`` verbosity (``"auto"`` shows the progress bar).

    Returns:
        A :class:`RunResult`.

    Raises:
        ConfigError: a config that cannot be built (unknown model option, bad loss option…).
        FileExistsError: ``run_dir`` holds a finished run and ``force`` is false.
        InputError: bad event files; no epoch gave a finite validation score.
        RunInUse: another process is training into ``run_dir`` (its advisory lock is held).
    """
    from edkeras.runs import check_run_name, run_lock, runs_dir

    check_run_name(config.name)
    run_dir = Path(run_dir) if run_dir is not None else runs_dir() / config.name
    with run_lock(run_dir):  # one process per run folder
        return _train_locked(config, run_dir, force, resume, callbacks, verbose)


def _train_locked(
    config: RunConfig, run_dir: Path, force: bool, resume: bool, callbacks: Sequence[Any], verbose: int | str
) -> RunResult:
    import keras

    from edkeras.data.dataset import EventDataset
    from edkeras.runs import environment, jsonable, prepare_run, write_json

    cfg_dict = to_dict(config)
    check_run_config(config)
    # decide (and fail) now, but write nothing into the folder before the data and the model
    # are built: a config that cannot run leaves no stray run behind to block its corrected rerun
    prepare_run(run_dir, cfg_dict, force=force, resume=resume, dry_run=True)
    t = config.training

    old_policy = keras.config.dtype_policy()  # restored at the end (clear_session resets it)
    keras.backend.clear_session()
    keras.utils.set_random_seed(t.seed)
    if t.deterministic and keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    mixed = gpu_present() if t.mixed_precision == "auto" else bool(t.mixed_precision)
    try:
        if mixed:
            keras.config.set_dtype_policy("mixed_float16")
        strategy = distribution_strategy(config)
        replicas = 1 if strategy is None else int(strategy.num_replicas_in_sync)
        data = prepare_data(config.data)
        ds_opts = {
            "head": config.model.head,
            "energy_input": config.data.energy_input,
            "cache": config.data.cache,
            "energy_in_target": energy_in_target(config),
        }
        if t.batch_size % replicas:
            raise ConfigError(
                f"training.batch_size: {t.batch_size} must be a multiple of the {replicas} replicas of the "
                "mirrored strategy"
            )
        if strategy is not None:
            with strategy.scope():
                model = build_run_model(config, data.index.image_shape)
                compile_model(model, config)
        else:
            model = build_run_model(config, data.index.image_shape)
            compile_model(model, config)

        resumed = prepare_run(run_dir, cfg_dict, force=force, resume=resume) == "resume"
        write_json(run_dir / "config.json", cfg_dict)
        save_split(run_dir / "split.npz", data.split, data.index.file_names, data.index.field("event_id"))
        env_path = run_dir / "env.json"
        if resumed and env_path.exists():
            env = json.loads(env_path.read_text())
            env.setdefault("resumed", []).append(environment(t.seed)["created"])
        else:
            env = environment(
                t.seed,
                mixed_precision=mixed,
                strategy=t.strategy,
                replicas=replicas,
                data_files=[str(f) for f in data.files],
                events=data.counts(),
            )
        write_json(env_path, env)

        refit = t.fit_on == "train+val"  # a final refit: nothing is chosen on validation
        fit_index = (
            data.index.select(np.concatenate([data.selected["train"], data.selected["val"]]))
            if refit else data.subset("train")
        )
        train_ds = EventDataset(
            fit_index, t.batch_size, training=True, seed=t.seed,
            augment=config.augmentation, shuffle_buffer=config.data.shuffle_buffer, **ds_opts,
        )
        val_ds = EventDataset(data.subset("val"), _eval_batch(data.counts()["val"], t.batch_size, replicas), **ds_opts)

        # Resume: keep the epochs the backup holds; a checkpoint of a later (lost) epoch, or one
        # that cannot be read whole, is dropped.
        history_path, ckpt = run_dir / "history.csv", run_dir / "checkpoint.json"
        done = restore_backup(model, run_dir / "backup") if resumed else 0
        if resumed:
            print(f"edkeras train: resuming run {config.name} from epoch {done}", file=sys.stderr)
        history = [r for r in _read_history(history_path) if int(r["epoch"]) < done]
        _write_history(history_path, history)
        ckpt_best = _checkpoint_value(ckpt, run_dir / "model.keras", done)
        cbs = _callbacks(config, run_dir, train_ds, history, ckpt_best, validate=not refit)

        t0 = time.perf_counter()
        try:
            model.fit(
                train_ds,
                steps_per_epoch=train_ds.steps_per_epoch,
                validation_data=None if refit else val_ds,
                epochs=t.epochs,
                initial_epoch=done,
                shuffle=False,
                callbacks=[*cbs.values(), *callbacks],
                verbose=verbose,
            )
        except BaseException:
            # interrupted: the backup stays for the resume; close what Keras would have closed
            csv_file = getattr(cbs["csv"], "csv_file", None)
            if csv_file is not None and not csv_file.closed:
                csv_file.close()
            train_ds.close()
            val_ds.close()
            raise
        seconds = time.perf_counter() - t0
        history = _read_history(history_path)
        if not ckpt.exists() or not (run_dir / "model.keras").exists():
            raise InputError(
                f"{run_dir}: no epoch gave a finite validation {_monitor_key(config)} (diverged?); nothing to evaluate"
            )
        best_epoch = int(json.loads(ckpt.read_text())["epoch"])

        best = keras.saving.load_model(run_dir / "model.keras", compile=False)
        results: dict[str, Any] = {}
        for split in ("val", "test"):
            ds = val_ds if split == "val" else EventDataset(data.subset("test"), max(t.batch_size, 128), **ds_opts)
            predicted = predict_arrays(best, ds, config.model.head)
            labels = {k: ds.labels(k) for k in ("direction", "energy", "interaction", "nu_direction", "reco_energy", "event_id")}
            _save_split_predictions(run_dir / f"predictions_{split}.npz", predicted, labels, split, config.name)
            results[split] = evaluation_metrics(predicted, labels, split, n_boot=t.bootstrap_samples, seed=t.seed)
            ds.close()
        train_ds.close()

        n_epochs_session = len([r for r in history if int(r["epoch"]) >= done])
        augmented = sum(_as_float(r.get("augmented_events")) for r in history if r.get("augmented_events"))
        metrics = {
            "run": config.name,
            "monitor": "last epoch" if refit else _monitor_key(config),
            "chosen_on": "fixed epochs, fitted on train+val" if refit else "val",
            "fit_on": t.fit_on,
            "best_epoch": best_epoch,
            "best_value": float(json.loads(ckpt.read_text())["value"]),
            "epochs_run": len(history),
            "stopped_early": len(history) < t.epochs,
            "events": data.counts(),
            "split": {"by": data.split.by, "seed": data.split.seed, "val_fraction": data.split.val_fraction,
                      "test_fraction": data.split.test_fraction, "file": "split.npz"},
            "augmentation": {"config": to_dict(config.augmentation), "events_augmented": int(augmented)},
            "timing": {
                "fit_seconds_this_session": seconds,
                "epochs_this_session": n_epochs_session,
                "train_samples_per_second": (n_epochs_session * train_ds.steps_per_epoch * t.batch_size / seconds)
                if seconds > 0 and n_epochs_session else None,
            },
            "val": {**results["val"], "seen_in_training": refit},
            "test": results["test"],
        }
        metrics = jsonable(metrics)  # what metrics.json holds: lists, null for NaN
        write_json(run_dir / "metrics.json", metrics)  # last: marks the run finished
        ckpt.unlink(missing_ok=True)
        return RunResult(run_dir, config, metrics, best_epoch, len(history), resumed)
    finally:
        keras.config.set_dtype_policy(old_policy)


# =========================================================================== evaluate
def evaluate(
    run_dir: str | os.PathLike, data_file: str | os.PathLike, out: str | os.PathLike | None = None,
    batch_size: int = 256, classifier: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Apply a finished run's model to any event file; metrics where the truth is known.

    Args:
        run_dir: a run folder with ``config.json`` and ``model.keras``, or
            ``pretrained:NAME`` for a model shipped with the package.
        data_file: an event file of the same image shape.
        out: write the predictions there (DESIGN.md §5; ``split`` = the file's name).
        batch_size: events per prediction batch.
        classifier: a finished run (or ``pretrained:NAME``) of the multitask head whose ES
            probability replaces the model's own ``es_probability`` (see
            :func:`classifier_es_probability`): direction from one network, ES/CC from
            another, in one predictions file for ``edkeras point``.

    Returns:
        ``{"run", "data", "n_events", "n_with_truth", "metrics", "classifier"}`` (``metrics``
        as in ``metrics.json`` for a split, or None when no event has a true direction).

    Raises:
        InputError: no run there, a file that is not an event file, an image shape that
            the model was not built for, a classifier run without an ES/CC output.
    """
    rd, config, model = _load_finished_run(run_dir)
    predicted, labels = _predict_file(rd, config, model, data_file, batch_size)
    if classifier is not None:
        predicted["es_probability"] = classifier_es_probability(classifier, data_file, batch_size)
    has_truth = np.isfinite(labels["direction"]).all(axis=1)
    name = Path(data_file).name
    if out is not None:
        _save_split_predictions(Path(out), predicted, labels, name, config.name, truth=bool(has_truth.any()))
    metrics = None
    if has_truth.any():
        sub_p = {k: v[has_truth] for k, v in predicted.items()}
        sub_l = {k: v[has_truth] for k, v in labels.items()}
        metrics = evaluation_metrics(
            sub_p, sub_l, name, n_boot=config.training.bootstrap_samples, seed=config.training.seed
        )
    return {
        "run": config.name,
        "data": str(data_file),
        "n_events": len(labels["event_id"]),
        "n_with_truth": int(has_truth.sum()),
        "predictions": None if out is None else str(out),
        "metrics": metrics,
        "classifier": None if classifier is None else str(classifier),
    }


def classifier_es_probability(
    classifier: str | os.PathLike, data_file: str | os.PathLike, batch_size: int = 256
) -> np.ndarray:
    """The ES probability of every event of ``data_file`` from a classifier run, for equal priors.

    A classifier is a finished run of the multitask head (its ``interaction`` output). Its
    output p is P(ES | event) for the ES share π of its training sample; it is returned as
    p' = (p/π) / (p/π + (1 − p)/(1 − π)), the probability for equal priors, which is what
    :func:`edkeras.pointing.classification_weights` reads (``classifier_prior=0.5``) and
    what a predictions file's ``es_probability`` means. π is taken from the classifier's
    validation split (``metrics.json``), which is drawn like its training split.

    Raises:
        InputError: not a finished run, not a multitask run, no ES/CC counts in its metrics.
    """
    rd, config, model = _load_finished_run(classifier)
    if config.model.head != "multitask":
        raise InputError(
            f"{rd}: the classifier must be a run of the multitask head (an ES probability output); "
            f"this run's head is {config.model.head!r}"
        )
    try:
        counts = json.loads((rd / "metrics.json").read_text())["val"]["by_interaction"]
        n_es, n_cc = int(counts["es"]["n"]), int(counts["cc"]["n"])
    except (KeyError, TypeError, ValueError, OSError) as e:
        raise InputError(f"{rd / 'metrics.json'}: no ES and CC counts of the validation split ({e}); "
                         "cannot tell the classifier's training prior") from None
    if n_es == 0 or n_cc == 0:
        raise InputError(f"{rd}: its validation split holds {n_es} ES and {n_cc} CC events; a classifier needs both")
    prior = n_es / (n_es + n_cc)
    p = np.clip(_predict_file(rd, config, model, data_file, batch_size)[0]["es_probability"], 1e-7, 1 - 1e-7)
    a, b = p / prior, (1.0 - p) / (1.0 - prior)
    return a / (a + b)


def _load_finished_run(run_dir: str | os.PathLike) -> tuple[Path, RunConfig, Any]:
    """A finished run's folder, config and model (``pretrained:NAME`` resolved)."""
    import keras

    import edkeras.models  # noqa: F401  (registers the custom layers for load_model)
    from edkeras.models.pretrained import resolve_run_dir

    rd = resolve_run_dir(run_dir)
    for need in ("config.json", "model.keras"):
        if not (rd / need).exists():
            raise InputError(f"{rd}: no {need}; not a finished run folder")
    if not (rd / "metrics.json").exists():
        raise InputError(
            f"{rd}: the run is not finished (no metrics.json: still training, or interrupted); its model.keras "
            "is an intermediate checkpoint. Run the same 'edkeras train' command again to finish it (it resumes)"
        )
    config = load_json(RunConfig, rd / "config.json")
    try:
        model = keras.saving.load_model(rd / "model.keras", compile=False)
    except Exception as e:  # a truncated or foreign file: say which, not "file not found"
        raise InputError(f"{rd / 'model.keras'}: cannot be loaded as a Keras model ({type(e).__name__}: "
                         f"{str(e).strip().splitlines()[0] if str(e).strip() else 'no detail'})") from None
    return rd, config, model


def _predict_file(
    rd: Path, config: RunConfig, model: Any, data_file: str | os.PathLike, batch_size: int
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The model's predictions and the file's labels, in the file's event order."""
    from edkeras.data.dataset import EventDataset, index_events

    index = index_events([data_file])
    want = tuple(int(s) for s in model.get_layer("view_u").output.shape[1:]) if _has_layer(model, "view_u") else None
    if want is not None and want != index.image_shape:
        raise InputError(
            f"{data_file}: image shape {index.image_shape}; the model of {rd} takes {want}"
        )
    ds = EventDataset(index, batch_size, head=config.model.head, energy_input=config.data.energy_input, targets=False)
    try:
        predicted = predict_arrays(model, ds, config.model.head)
        labels = {k: ds.labels(k) for k in ("direction", "energy", "interaction", "nu_direction", "reco_energy", "event_id")}
    finally:
        ds.close()
    return predicted, labels


def _has_layer(model: Any, name: str) -> bool:
    try:
        model.get_layer(name)
    except ValueError:
        return False
    return True
