"""The run config: one strict schema for every run (data, model, training, augmentation, tuning).

The format is described in ``docs/formats.md``; :func:`load_run_config` reads it.
"""

from __future__ import annotations

import json
import os
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

from edkeras.core.schema import ConfigError, apply_overrides, load_json
from edkeras.reco.augment import AugmentConfig
from edkeras.reco.search_space import TuningConfig

__all__ = [
    "AugmentConfig", "DataConfig", "ModelConfig", "RunConfig", "TrainingConfig", "TuningConfig", "load_run_config",
    "uncertainty_output",
]

_KAPPA_LOSSES = ("vmf_nll", "gaussian_angular_nll")
_AXIAL_LOSSES = ("axial_sense",)


def _require(ok: bool, key: str, expected: str, value: Any) -> None:
    if not ok:
        raise ConfigError(f"{key}: must be {expected}; received {value!r}")


@dataclass(frozen=True)
class DataConfig:
    """Which events a run reads, and how they are split, filtered and fed.

    Attributes:
        files: event files; ``"synthetic"`` stands for the embedded default
            (:func:`edkeras.events.default.default_dataset` with ``synthetic_events``, ``synthetic_seed``).
        synthetic_events, synthetic_seed: size and seed of the default file.
        n_events: use at most this many events (the first ones, in file order, after the
            filters); ``null`` for all. The split of an event never depends on it.
        val_fraction, test_fraction: shares of validation and test events.
        split_seed: seed of the split (independent of the training seed).
        split_by: ``"event"`` (by event id) or ``"file"`` (whole source files).
        energy_min, energy_max: keep events with reconstructed energy in [min, max) MeV.
        interaction: ``"all"``, ``"es"`` or ``"cc"``.
        cache: hold the selected events in memory (else they stream from disk).
        energy_input: feed the reconstructed energy to the model (energy conditioning, v22).
        shuffle_buffer: events shuffled together in memory while streaming.
        train_subset: ``"all"`` (the whole training split), ``"bootstrap"`` (a resample with
            repeats) or ``"kfold"`` (all folds but one): ensemble member ``train_member`` of
            ``train_members`` trains on its share of the training split
            (:mod:`edkeras.reco.ensembles`); validation and test never change.
        train_member, train_members: which member, of how many (k for ``kfold``).
        train_subset_seed: seed of the resamples or folds (the same for every member of one ensemble).
    """

    files: tuple[str, ...] = ("synthetic",)
    synthetic_events: int = 6000
    synthetic_seed: int = 1234
    n_events: int | None = None
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    split_seed: int = 0
    split_by: Literal["event", "file"] = "event"
    energy_min: float | None = None
    energy_max: float | None = None
    interaction: Literal["all", "es", "cc"] = "all"
    cache: bool = False
    energy_input: bool = False
    shuffle_buffer: int = 1024
    train_subset: Literal["all", "bootstrap", "kfold"] = "all"
    train_member: int = 0
    train_members: int = 5
    train_subset_seed: int = 0

    def __post_init__(self) -> None:
        _require(len(self.files) > 0, "data.files", "a non-empty list of event files or 'synthetic'", list(self.files))
        _require(self.synthetic_events >= 1, "data.synthetic_events", "an integer >= 1", self.synthetic_events)
        _require(self.n_events is None or self.n_events >= 3, "data.n_events", "null or an integer >= 3", self.n_events)
        for key in ("val_fraction", "test_fraction"):
            v = getattr(self, key)
            _require(0.0 < v < 1.0, f"data.{key}", "a number in (0, 1)", v)
        _require(
            self.val_fraction + self.test_fraction < 1.0,
            "data.val_fraction + data.test_fraction",
            "< 1 (events must be left for training)",
            self.val_fraction + self.test_fraction,
        )
        if self.energy_min is not None and self.energy_max is not None:
            _require(self.energy_max > self.energy_min, "data.energy_max", f"> energy_min ({self.energy_min})", self.energy_max)
        _require(self.shuffle_buffer >= 1, "data.shuffle_buffer", "an integer >= 1", self.shuffle_buffer)
        _require(self.train_members >= 2, "data.train_members", "an integer >= 2", self.train_members)
        _require(0 <= self.train_member < self.train_members, "data.train_member",
                 f"an integer in [0, train_members = {self.train_members})", self.train_member)


@dataclass(frozen=True)
class ModelConfig:
    """Which registered model builder, which head, and the builder's options.

    ``options`` are checked against :func:`edkeras.reco.models.builder_options` when the model
    is built (an unknown option is an error naming it). ``input_shape`` comes from the event
    files and ``energy_conditioning`` from ``data.energy_input``; ``head`` is set here.

    ``initial_weights`` starts training from the weights of another model of the same
    architecture instead of a random initialisation (fine-tuning, e.g. a shipped model on a
    new simulator version): ``pretrained:NAME``, a finished run folder or a ``.keras`` file.
    A resumed run restores its own checkpoint instead.
    """

    name: str = "compact"
    head: Literal["direction", "vmf", "axial", "multitask"] = "direction"
    options: dict = field(default_factory=dict)
    initial_weights: str | None = None

    def __post_init__(self) -> None:
        _require(bool(self.name), "model.name", "a registered builder name", self.name)
        _require(self.initial_weights is None or (isinstance(self.initial_weights, str) and bool(self.initial_weights)),
                 "model.initial_weights", "pretrained:NAME, a run folder or a .keras file", self.initial_weights)
        for key, where in (("head", "model.head"), ("energy_conditioning", "data.energy_input")):
            if key in self.options:
                raise ConfigError(f"model.options.{key}: set it with {where}, not as a builder option")


@dataclass(frozen=True)
class TrainingConfig:
    """Loss, optimiser, schedule, stopping, seed and devices of a run.

    Attributes:
        loss: direction loss (``vmf_nll`` / ``gaussian_angular_nll`` need the ``vmf`` head,
            ``axial_sense`` the ``axial`` head).
        loss_options: keyword options of the loss (e.g. ``{"gamma": 2}`` for focal_angular;
            ``alpha`` + ``energy_edges`` weigh energy bins by the true energy).
        energy_loss_weight, interaction_loss_weight: multitask head only.
        optimizer: ``adam`` or ``adamw`` (decoupled weight decay ``weight_decay``).
        learning_rate, clipnorm: peak learning rate; gradient-norm clipping (null: none).
        schedule: ``constant``, ``cosine`` (decay per epoch to ``min_learning_rate``) or
            ``plateau`` (× ``plateau_factor`` after ``plateau_patience`` epochs without
            validation improvement).
        warmup_epochs: linear warm-up from learning_rate / (warmup_epochs + 1).
        batch_size, epochs: as in Keras.
        early_stopping_patience: epochs without improvement of ``monitor`` on the
            validation split before stopping (null: never stop early).
        monitor: the validation quantity that chooses the checkpoint and stops early
            (``val_interaction_loss``: the ES/CC cross-entropy of the multitask head, for a
            run trained as an ES/CC classifier).
        fit_on: ``train`` (the validation split chooses the epoch), or ``train+val`` for a
            final refit on both with a fixed number of epochs (e.g. the best trial of a
            search): nothing is then chosen on validation, its metrics are flagged as seen
            in training, and early stopping and ``plateau`` are refused.
        seed: weights initialisation, shuffling, augmentation, dropout.
        deterministic: ask the backend for deterministic ops (same metrics on rerun).
        mixed_precision: ``"auto"`` (on when a GPU is present), true or false.
        strategy: ``default`` (one device), ``mirrored`` (all local devices) or
            ``multi_worker`` (several machines, configured by ``TF_CONFIG``; see
            :mod:`edkeras.reco.multi_worker`).
        bootstrap_samples: resamples of the confidence intervals in ``metrics.json``.
    """

    loss: Literal["cosine", "angular", "focal_angular", "vmf_nll", "gaussian_angular_nll", "axial_sense"] = "angular"
    loss_options: dict = field(default_factory=dict)
    energy_loss_weight: float = 0.1
    interaction_loss_weight: float = 0.2
    optimizer: Literal["adam", "adamw"] = "adam"
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    clipnorm: float | None = None
    schedule: Literal["constant", "cosine", "plateau"] = "constant"
    warmup_epochs: int = 0
    min_learning_rate: float = 0.0
    plateau_factor: float = 0.5
    plateau_patience: int = 3
    batch_size: int = 64
    epochs: int = 20
    early_stopping_patience: int | None = 5
    monitor: Literal["val_angular_error_deg", "val_loss", "val_interaction_loss"] = "val_angular_error_deg"
    fit_on: Literal["train", "train+val"] = "train"
    seed: int = 0
    deterministic: bool = True
    mixed_precision: bool | Literal["auto"] = "auto"
    strategy: Literal["default", "mirrored", "multi_worker"] = "default"
    bootstrap_samples: int = 1000

    def __post_init__(self) -> None:
        _require(self.bootstrap_samples >= 10, "training.bootstrap_samples", "an integer >= 10", self.bootstrap_samples)
        _require(self.learning_rate > 0, "training.learning_rate", "> 0", self.learning_rate)
        _require(self.weight_decay >= 0, "training.weight_decay", ">= 0", self.weight_decay)
        if self.optimizer == "adam" and self.weight_decay > 0:
            raise ConfigError(
                f"training.weight_decay: {self.weight_decay} given with optimizer 'adam'; "
                "use optimizer 'adamw' for decoupled weight decay"
            )
        _require(self.clipnorm is None or self.clipnorm > 0, "training.clipnorm", "null or > 0", self.clipnorm)
        _require(self.warmup_epochs >= 0, "training.warmup_epochs", "an integer >= 0", self.warmup_epochs)
        _require(
            0 <= self.min_learning_rate < self.learning_rate,
            "training.min_learning_rate", f"in [0, learning_rate={self.learning_rate})", self.min_learning_rate,
        )
        _require(0 < self.plateau_factor < 1, "training.plateau_factor", "a number in (0, 1)", self.plateau_factor)
        _require(self.plateau_patience >= 1, "training.plateau_patience", "an integer >= 1", self.plateau_patience)
        _require(self.batch_size >= 1, "training.batch_size", "an integer >= 1", self.batch_size)
        _require(self.epochs >= 1, "training.epochs", "an integer >= 1", self.epochs)
        _require(
            self.early_stopping_patience is None or self.early_stopping_patience >= 1,
            "training.early_stopping_patience", "null or an integer >= 1", self.early_stopping_patience,
        )
        if self.fit_on == "train+val":
            _require(
                self.early_stopping_patience is None, "training.early_stopping_patience",
                "null with fit_on 'train+val' (no validation split is left to stop on)", self.early_stopping_patience,
            )
            _require(
                self.schedule != "plateau", "training.schedule",
                "'constant' or 'cosine' with fit_on 'train+val' (plateau needs a validation split)", self.schedule,
            )
        _require(self.energy_loss_weight >= 0, "training.energy_loss_weight", ">= 0", self.energy_loss_weight)
        _require(
            self.interaction_loss_weight >= 0, "training.interaction_loss_weight", ">= 0", self.interaction_loss_weight
        )


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a run; ``config.json`` of a run folder is its complete form.

    Example:
        >>> cfg = from_dict(RunConfig, {"name": "v15", "model": {"name": "baseline_v15"}})
        >>> cfg.training.loss, cfg.data.files
        ('angular', ('synthetic',))
    """

    name: str = "run"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    augmentation: AugmentConfig = field(default_factory=AugmentConfig)
    tuning: TuningConfig = field(default_factory=TuningConfig)

    def __post_init__(self) -> None:
        import re

        _require(
            bool(re.match(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$", self.name)),
            "name", "a plain folder name (letters, digits, '.', '_', '+', '-')", self.name,
        )
        fits = {"vmf": _KAPPA_LOSSES, "axial": _AXIAL_LOSSES}.get(
            self.model.head, ("cosine", "angular", "focal_angular")
        )
        if self.training.loss not in fits:
            fits = ", ".join(fits)
            raise ConfigError(
                f"training.loss: {self.training.loss!r} does not fit model.head {self.model.head!r}; "
                f"use one of {fits}"
            )
        if self.training.monitor == "val_interaction_loss" and self.model.head != "multitask":
            raise ConfigError(
                f"training.monitor: 'val_interaction_loss' needs model.head 'multitask' (the ES/CC output); "
                f"model.head is {self.model.head!r}"
            )


def uncertainty_output(config: RunConfig) -> str | None:
    """What the direction output's column 3 means: ``"kappa"`` (vMF κ), ``"sigma"`` (radians) or None.

    The ``vmf`` head's fourth output is trained as κ by ``vmf_nll`` and by
    ``gaussian_angular_nll`` with ``scale: "kappa"``, as σ by ``gaussian_angular_nll`` with its
    default ``scale: "sigma"``; predictions files store it under that name (``docs/formats.md`` §2).
    """
    if config.model.head != "vmf":
        return None
    if config.training.loss == "gaussian_angular_nll":
        return "kappa" if config.training.loss_options.get("scale", "sigma") == "kappa" else "sigma"
    return "kappa"


def load_run_config(
    path: str | os.PathLike | None = None, overrides: typing.Iterable[str] = (), name: str | None = None
) -> RunConfig:
    """Read a run config (JSON) strictly, apply ``--set`` overrides and an optional new name.

    Args:
        path: the JSON file; ``None`` starts from the defaults.
        overrides: ``key.sub=value`` strings (see :func:`apply_overrides`).
        name: replaces ``name`` (the run folder's name).

    Raises:
        ConfigError: naming the file and the key.
    """
    where = str(path) if path is not None else "config"
    try:
        cfg = load_json(RunConfig, path) if path is not None else RunConfig()
        overrides = list(overrides)
        if name is not None:
            overrides.append(f"name={json.dumps(name)}")
        if overrides:
            cfg = apply_overrides(cfg, overrides)
    except ConfigError as e:
        if str(e).startswith(where):
            raise
        raise ConfigError(f"{where}: {e}") from None
    return cfg
