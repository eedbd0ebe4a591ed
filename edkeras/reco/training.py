"""The one training path: a run config in, a finished run folder out (docs/formats.md §4).

Method notes: ``docs/methods.md``, section ``edkeras.reco.training``.

Example:
    >>> from edkeras.reco.config import load_run_config
    >>> from edkeras.reco.training import train
    >>> result = train(load_run_config("configs/compact.json", ["training.epochs=3"]))
    >>> result.metrics["test"]["overall"]["theta68"]
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from edkeras.core.errors import InputError
from edkeras.core.files import atomic_path, jsonable, write_json
from edkeras.core.memory import hold_freed_memory
from edkeras.core.schema import ConfigError, to_dict
from edkeras.events.splits import save_split
from edkeras.reco.callbacks import (
    Checkpoint,
    EarlyStop,
    EpochBackup,
    EpochSeeds,
    LastEpoch,
    LearningRate,
    restore_backup,
)
from edkeras.reco.config import RunConfig, uncertainty_output
from edkeras.reco.dataset import EpochSync, EventDataset
from edkeras.reco.evaluation import (
    _save_split_predictions,
    evaluation_metrics,
    predict_arrays,
)
from edkeras.reco.keras_metrics import AngularErrorDeg, VMFConeCoverage
from edkeras.reco.losses import get_loss, multitask_losses
from edkeras.reco.models import build_model, builder_options
from edkeras.reco.multi_worker import barrier, is_chief, multi_worker_strategy
from edkeras.reco.pretrained import copy_initial_weights, initial_weights_file
from edkeras.reco.run_data import prepare_data
from edkeras.reco.runs import check_run_name, environment, model_identity, prepare_run, run_lock, runs_dir

__all__ = [
    "RunResult",
    "build_run_model",
    "check_run_config",
    "compile_model",
    "distribution_strategy",
    "energy_in_target",
    "gpu_present",
    "train",
]




# =========================================================================== model
def build_run_model(config: RunConfig, image_shape: tuple[int, int]) -> Any:
    """Build the (uncompiled) model of ``config`` for images of ``image_shape``.

    Raises:
        ConfigError: unknown builder, unknown option (named, valid ones listed), an
            ``input_shape`` option that differs from the files' image shape.
    """

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

    m, t = config.model, config.training
    _check_model_names(m)
    if m.initial_weights:
        initial_weights_file(m.initial_weights)
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


    t = config.training
    if t.optimizer == "adamw":
        opt = keras.optimizers.AdamW(learning_rate=t.learning_rate, weight_decay=t.weight_decay, clipnorm=t.clipnorm)
    else:
        opt = keras.optimizers.Adam(learning_rate=t.learning_rate, clipnorm=t.clipnorm)
    metrics: list[Any] = [AngularErrorDeg()]
    if uncertainty_output(config) == "kappa":  # the cones of κ; a σ output has no vMF cones
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


def _copy_chief_state(chief_dir: Path, scratch: Path) -> bool:
    """Copy what a resume reads (backup, history, checkpoint) from the chief's run folder into a
    non-chief worker's scratch folder; return whether the chief's folder holds a backup.

    The worker then restores, truncates its history and checks its checkpoint by the same
    rules as the chief, so both go on from the same epoch with the same weights."""
    for name in ("history.csv", "checkpoint.json", "model.keras"):
        # the chief may be dropping a checkpoint of a lost epoch; the worker then drops it too
        with contextlib.suppress(FileNotFoundError):
            shutil.copy2(chief_dir / name, scratch / name)
    if not (chief_dir / "backup").is_dir():
        return False
    shutil.copytree(chief_dir / "backup", scratch / "backup", dirs_exist_ok=True)
    return True


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

    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def _as_float(text: str | None) -> float:
    try:
        return float(text) if text not in (None, "") else math.nan
    except ValueError:
        return math.nan


def _callbacks(
    config: RunConfig, run_dir: Path, train_ds: Any, history: list[dict[str, str]], checkpoint_best: float | None,
    validate: bool = True,
) -> dict[str, Any]:
    """The Keras callbacks of a run, restored to the state of the epochs already in ``history``.

    ``checkpoint_best`` is the validation score of the model already in ``model.keras``
    (None: no checkpoint yet); a later epoch replaces it only if it does better. Without
    ``validate`` (a refit on train+val) every epoch replaces it: the last one is kept.
    """
    t = config.training
    monitor = _monitor_key(config)
    prior = [_as_float(r.get(monitor)) for r in history]
    last_lr = _as_float(history[-1].get("learning_rate")) if history else math.nan
    cbs: dict[str, Any] = {
        "seeds": EpochSeeds(),
        "sync": EpochSync(train_ds),
        "lr": LearningRate(t, resume_rate=last_lr),
        "nan": keras.callbacks.TerminateOnNaN(),
        "checkpoint": Checkpoint(
            run_dir, monitor, mode="min", save_best_only=True, initial_value_threshold=checkpoint_best, verbose=0,
        ) if validate else LastEpoch(run_dir),
    }
    if t.schedule == "plateau":
        cbs["plateau"] = keras.callbacks.ReduceLROnPlateau(
            monitor=monitor, mode="min", factor=t.plateau_factor, patience=t.plateau_patience,
            min_lr=t.min_learning_rate, verbose=0,
        )
    if t.early_stopping_patience is not None:
        cbs["early_stopping"] = EarlyStop(prior, monitor=monitor, mode="min", patience=t.early_stopping_patience, verbose=0)
    cbs["csv"] = keras.callbacks.CSVLogger(str(run_dir / "history.csv"), append=True)
    cbs["backup"] = EpochBackup(run_dir)
    return cbs


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
    if config.training.strategy == "multi_worker":
        return multi_worker_strategy()
    if keras.backend.backend() != "tensorflow":
        raise ConfigError(
            f"training.strategy: 'mirrored' needs the tensorflow backend; received backend {keras.backend.backend()!r}"
        )
    import tensorflow as tf

    return tf.distribute.MirroredStrategy()


def _scope(strategy: Any) -> Any:
    """The strategy's scope, or no context for the default single device (strategy None)."""
    return strategy.scope() if strategy is not None else contextlib.nullcontext()


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
        wrote_run: False for a worker of a multi-worker run other than the chief: it
            trained its share, and the chief evaluated and wrote the run (``metrics`` empty).
    """

    run_dir: Path
    config: RunConfig
    metrics: dict[str, Any]
    best_epoch: int
    epochs_run: int
    resumed: bool
    wrote_run: bool = True


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
        run_dir: the run folder (default ``runs/<config.name>``, see :func:`edkeras.reco.runs.runs_dir`).
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

    check_run_name(config.name)
    run_dir = Path(run_dir) if run_dir is not None else runs_dir() / config.name
    strategy = distribution_strategy(config)
    if not is_chief(strategy):  # a worker of a multi-worker run: its files go to a scratch folder
        scratch = Path(tempfile.mkdtemp(prefix=f"edkeras-{config.name}-worker-"))
        try:
            with run_lock(scratch):
                return _train_locked(config, scratch, False, resume, callbacks, verbose, strategy, chief_dir=run_dir)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    with run_lock(run_dir):  # one process per run folder
        return _train_locked(config, run_dir, force, resume, callbacks, verbose, strategy)


def _train_locked(
    config: RunConfig, run_dir: Path, force: bool, resume: bool, callbacks: Sequence[Any], verbose: int | str,
    strategy: Any, chief_dir: Path | None = None,
) -> RunResult:
    """:func:`train` in a locked ``run_dir``; ``chief_dir``: the chief's run folder (a
    non-chief worker of a multi-worker run, whose ``run_dir`` is a scratch folder)."""
    import keras

    hold_freed_memory()  # each step's buffers stay in the process: twice the steps per second on a CPU
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
                f"{t.strategy} strategy"
            )
        with _scope(strategy):
            model = build_run_model(config, data.index.image_shape)
            if config.model.initial_weights:  # fine-tuning (a resume then restores its own checkpoint)
                copy_initial_weights(model, config.model.initial_weights)
            compile_model(model, config)
            if t.strategy == "multi_worker":  # every worker creates its variables (collective ops) in one order
                model.optimizer.build(model.trainable_variables)

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
        if t.strategy == "multi_worker":
            barrier(strategy)  # the chief has settled its folder (new or resumed) …
            if chief_dir is not None:  # … and the other workers resume from its state too
                resumed = _copy_chief_state(chief_dir, run_dir)
        if resumed:  # the optimizer's slots are built here, inside the strategy's scope
            with _scope(strategy):
                done = restore_backup(model, run_dir / "backup")
        else:
            done = 0
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
        if chief_dir is not None:  # the chief evaluates and writes the run
            train_ds.close()
            val_ds.close()
            return RunResult(chief_dir, config, {}, -1, len(history), resumed, wrote_run=False)
        if not ckpt.exists() or not (run_dir / "model.keras").exists():
            raise InputError(
                f"{run_dir}: no epoch gave a finite validation {_monitor_key(config)} (diverged?); nothing to evaluate"
            )
        best_epoch = int(json.loads(ckpt.read_text())["epoch"])

        best = keras.saving.load_model(run_dir / "model.keras", compile=False)
        identity = model_identity(run_dir / "model.keras")
        results: dict[str, Any] = {}
        for split in ("val", "test"):
            ds = val_ds if split == "val" else EventDataset(data.subset("test"), max(t.batch_size, 128), **ds_opts)
            predicted = predict_arrays(best, ds, config.model.head, uncertainty_output(config))
            labels = {k: ds.labels(k) for k in ("direction", "energy", "interaction", "nu_direction", "reco_energy", "event_id")}
            _save_split_predictions(
                run_dir / f"predictions_{split}.npz", predicted, labels, split, config.name, model=identity
            )
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


