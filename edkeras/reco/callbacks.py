"""The Keras callbacks of a training run: learning-rate schedule, seeds, checkpoints, backups.

Each survives an interruption: a resumed run continues with the schedule, the early-stopping
count and the random-layer seeds an uninterrupted run would have had.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
from pathlib import Path
from typing import Any

import keras
import numpy as np

from edkeras.core.files import atomic_path, write_json

__all__ = [
    "BACKUPS_KEPT", "Checkpoint", "EarlyStop", "EpochBackup", "EpochSeeds", "LastEpoch", "LearningRate",
    "learning_rate_at", "restore_backup", "save_backup",
]


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


class LearningRate(keras.callbacks.Callback):
    """The run config's warm-up and cosine schedule, per epoch; the rate is logged as ``learning_rate``.

    Args:
        training: the ``training`` section of a run config.
        resume_rate: the rate a resumed run ended on (the plateau schedule's reduced rate);
            NaN for a fresh run.
    """

    def __init__(self, training: Any, resume_rate: float = math.nan) -> None:
        super().__init__()
        self.training = training
        self.resume_rate = float(resume_rate)
        self._first = True

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        lr = learning_rate_at(self.training, epoch)
        if lr is None and self._first and math.isfinite(self.resume_rate):
            lr = self.resume_rate
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
    """Best-only ``run_dir/model.keras`` on the validation ``monitor``; ``checkpoint.json`` records its epoch."""

    def __init__(self, run_dir: str | Path, monitor: str, **kwargs: Any) -> None:
        super().__init__(str(Path(run_dir) / "model.keras"), monitor=monitor, **kwargs)
        self.run_dir = Path(run_dir)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        before = self.best
        super().on_epoch_end(epoch, logs)
        if self.best is not None and (before is None or self.best != before):
            write_json(self.run_dir / "checkpoint.json", {"epoch": epoch, "monitor": self.monitor, "value": float(self.best)})


class EarlyStop(keras.callbacks.EarlyStopping):
    """EarlyStopping whose best value and patience count survive a resume.

    Args:
        prior: the monitored value of each epoch already done (NaN where missing).
    """

    def __init__(self, prior: list[float], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.prior = [float(v) for v in prior]

    def on_train_begin(self, logs: dict | None = None) -> None:
        super().on_train_begin(logs)
        if any(math.isfinite(v) for v in self.prior):
            j = int(np.nanargmin(np.asarray(self.prior, dtype=float)))
            self.best, self.best_epoch, self.wait = self.prior[j], j, len(self.prior) - 1 - j


class LastEpoch(keras.callbacks.Callback):
    """Keep the model of the last epoch in ``run_dir/model.keras`` (a refit on train+val chooses nothing)."""

    def __init__(self, run_dir: str | Path) -> None:
        super().__init__()
        self.run_dir = Path(run_dir)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.model.save(self.run_dir / "model.keras")
        loss = float((logs or {}).get("loss", math.nan))
        write_json(self.run_dir / "checkpoint.json", {"epoch": epoch, "monitor": "last epoch", "value": loss})


class EpochBackup(keras.callbacks.Callback):
    """After every epoch, the model and optimizer state into ``run_dir/backup/`` (see :func:`save_backup`);
    removed when the run ends normally."""

    def __init__(self, run_dir: str | Path) -> None:
        super().__init__()
        self.run_dir = Path(run_dir)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        save_backup(self.model, self.run_dir / "backup", epoch + 1)

    def on_train_end(self, logs: dict | None = None) -> None:
        shutil.rmtree(self.run_dir / "backup", ignore_errors=True)


BACKUPS_KEPT = 2
"""Epoch backups kept in a run's ``backup/`` folder (the newest complete one is resumed from)."""


def save_backup(model: Any, backup_dir: Path, epochs_done: int) -> Path:
    """Write the weights (with the optimizer's state) and the epoch count as ``backup_dir/epoch-NNNNN``.

    The slot is written into a temporary folder and renamed into place, so a kill at any
    moment leaves only complete slots (and a temporary folder that is ignored); the
    :data:`BACKUPS_KEPT` newest slots are kept.
    """

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
