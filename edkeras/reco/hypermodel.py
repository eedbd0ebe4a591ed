"""The Keras side of a hyperparameter search: the keras-tuner hypermodel of a run config, its tuners.

The search itself (spaces, trial tables, the retraining of the best trial) is
:mod:`edkeras.reco.tuning`; the ``tuning`` config section is :mod:`edkeras.reco.search_space`.
"""

from __future__ import annotations

import json
import math
import os
import socket
import time
from pathlib import Path
from typing import Any

import keras
import keras_tuner
import numpy as np

from edkeras.core.memory import hold_freed_memory
from edkeras.core.schema import ConfigError, apply_overrides
from edkeras.reco.callbacks import LearningRate
from edkeras.reco.dataset import EpochSync, EventDataset
from edkeras.reco.evaluation import predict_arrays
from edkeras.reco.metrics import angular_error_deg, containment_angle
from edkeras.reco.search_space import ParamSpec
from edkeras.reco.training import build_run_model, compile_model, energy_in_target

__all__ = ["RunHyperModel", "ValidationResolution", "tuner_class"]


class ValidationResolution(keras.callbacks.Callback):
    """At each epoch end: predict the validation split, log ``val_theta68`` and ``val_angular_error_deg``.

    θ68 is a quantile, not a mean over batches, so it is computed from the predictions
    of the whole validation split (numpy :func:`edkeras.reco.metrics.containment_angle`).
    Place it before the callbacks that read these logs (the tuner's).

    Args:
        dataset: an evaluation :class:`edkeras.reco.dataset.EventDataset` (not augmented).
        head: the model head (``direction``, ``vmf``, ``axial`` or ``multitask``).
    """

    def __init__(self, dataset: Any, head: str) -> None:
        super().__init__()
        self.dataset = dataset
        self.head = head
        self.truth = np.asarray(dataset.labels("direction"), dtype=np.float64)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:

        predicted = predict_arrays(self.model, self.dataset, self.head)["direction"]
        if logs is None:
            return
        if not np.isfinite(predicted).all():
            logs["val_theta68"] = logs["val_angular_error_deg"] = float("nan")
            return
        err = angular_error_deg(predicted, self.truth)
        logs["val_theta68"] = float(containment_angle(err, 0.68))
        logs["val_angular_error_deg"] = float(np.mean(err))

class RunHyperModel(keras_tuner.HyperModel):
    """The search space over one run config, built and trained on the one training path.

    Fixed choices live in ``__init__``: the run config (its ``training.epochs`` set to
    the epochs per trial), the searched keys, and the events of the **training** and
    **validation** splits only (the test split is not given to the search at all).

    Args:
        config: the run config every trial starts from.
        space: canonical key → :class:`ParamSpec` (from :func:`~edkeras.reco.tuning.resolve_search_space`).
        train_index, val_index: the :class:`edkeras.reco.event_index.EventIndex` of the
            training and validation events.
        image_shape: (T, C) of the event files.
    """

    def __init__(
        self, config: Any, space: dict[str, ParamSpec], train_index: Any, val_index: Any,
        image_shape: tuple[int, int], name: str = "edkeras_run",
    ) -> None:
        super().__init__(name=name, tunable=True)
        self.config = config
        self.space = dict(space)
        self.train_index = train_index
        self.val_index = val_index
        self.image_shape = tuple(int(s) for s in image_shape)

    def trial_config(self, hp: Any) -> Any:
        """The run config of a trial: the base config with the trial's values applied."""

        values = {key: spec.declare(hp) for key, spec in self.space.items()}
        try:
            return apply_overrides(self.config, [f"{k}={json.dumps(v)}" for k, v in values.items()], where="trial")
        except ConfigError as e:  # a combination the config rejects: record the trial as failed
            raise keras_tuner.errors.FailedTrialError(str(e)) from None

    def build(self, hp: Any) -> Any:
        """Build and compile the trial's model with :func:`edkeras.reco.training.build_run_model`."""

        cfg = self.trial_config(hp)
        keras.utils.set_random_seed(cfg.training.seed)
        model = build_run_model(cfg, self.image_shape)
        compile_model(model, cfg)
        return model

    def datasets(self, cfg: Any) -> tuple[Any, Any]:
        """(training, validation) :class:`EventDataset` of a trial config, as :func:`edkeras.reco.training.train` makes them."""

        t = cfg.training
        opts = {
            "head": cfg.model.head,
            "energy_input": cfg.data.energy_input,
            "cache": cfg.data.cache,
            "energy_in_target": energy_in_target(cfg),
        }
        train_ds = EventDataset(
            self.train_index, t.batch_size, training=True, seed=t.seed, augment=cfg.augmentation,
            shuffle_buffer=cfg.data.shuffle_buffer, **opts,
        )
        val_ds = EventDataset(self.val_index, max(t.batch_size, 128), **opts)
        return train_ds, val_ds

    def fit(self, hp: Any, model: Any, *args: Any, **kwargs: Any) -> Any:
        """Train on the training split; score on the validation split; forward the tuner's kwargs.

        ``kwargs`` carry the tuner's ``callbacks`` (which read ``val_theta68`` at each
        epoch end, so the validation callback is placed before them), ``epochs`` and,
        for Hyperband, ``initial_epoch``.
        """

        cfg = self.trial_config(hp)
        t = cfg.training
        train_ds, val_ds = self.datasets(cfg)
        callbacks = [
            EpochSync(train_ds),
            ValidationResolution(val_ds, cfg.model.head),
            LearningRate(t),
            keras.callbacks.TerminateOnNaN(),
        ]
        if t.schedule == "plateau":
            callbacks.append(keras.callbacks.ReduceLROnPlateau(
                monitor="val_angular_error_deg", mode="min", factor=t.plateau_factor,
                patience=t.plateau_patience, min_lr=t.min_learning_rate, verbose=0,
            ))
        callbacks += list(kwargs.pop("callbacks", []) or [])
        kwargs.setdefault("epochs", t.epochs)
        kwargs.pop("shuffle", None)
        hold_freed_memory()  # as in edkeras.reco.training.train
        try:
            return model.fit(
                train_ds, *args, steps_per_epoch=train_ds.steps_per_epoch, shuffle=False,
                callbacks=callbacks, **kwargs,
            )
        finally:
            train_ds.close()
            val_ds.close()

def tuner_class(algorithm: str) -> type:
    """The keras-tuner class of ``algorithm``, with every trial logged (see :class:`_TrialLog`)."""
    base = {
        "random": keras_tuner.RandomSearch,
        "bayesian": keras_tuner.BayesianOptimization,
        "hyperband": keras_tuner.Hyperband,
    }[algorithm]
    return type(f"Logged{base.__name__}", (_TrialLog, base), {})


class _TrialLog:
    """Mixin for a keras-tuner Tuner: append one line per trial run to ``log_<tuner id>.jsonl``.

    Each process writes its own file in the (shared) project folder, so the log shows who
    ran which trial and that no trial ran twice. A tqdm bar counts this process's trials.
    """

    progress: Any = None

    def on_trial_begin(self, trial: Any) -> None:
        self._trial_t0 = time.time()
        self._trial_objective = None
        super().on_trial_begin(trial)  # type: ignore[misc]

    def run_trial(self, trial: Any, *args: Any, **kwargs: Any) -> Any:
        results = super().run_trial(trial, *args, **kwargs)  # type: ignore[misc]
        name = self.oracle.objective.name  # type: ignore[attr-defined]
        best = []
        for r in results if isinstance(results, list) else [results]:
            hist = getattr(r, "history", None)
            if isinstance(hist, dict) and hist.get(name):
                vals = [v for v in hist[name] if v is not None and math.isfinite(v)]
                if vals:
                    best.append(min(vals))
        self._trial_objective = float(sum(best) / len(best)) if best else None
        return results

    def on_trial_end(self, trial: Any) -> None:
        status = str(getattr(trial.status, "value", trial.status))
        entry = {
            "trial_id": trial.trial_id,
            "tuner_id": self.tuner_id,  # type: ignore[attr-defined]
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "status": status,
            "objective": getattr(self, "_trial_objective", None),
            "seconds": round(time.time() - getattr(self, "_trial_t0", time.time()), 3),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "message": (trial.message or "").strip().splitlines()[-1] if trial.message else None,
        }
        path = Path(self.project_dir) / f"log_{self.tuner_id}.jsonl"  # type: ignore[attr-defined]
        with open(path, "a") as fh:
            fh.write(json.dumps(entry) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        super().on_trial_end(trial)  # type: ignore[misc]
        if self.progress is not None:
            self.progress.update(1)
            self.progress.set_postfix_str(f"trial {trial.trial_id}: {status}")
