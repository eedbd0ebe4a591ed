"""The ``tuning`` section of a run config: the search algorithm, the objective and the search space, checked strictly.

Keras-free, so that :mod:`edkeras.reco.config` can hold it as a section of the run schema.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from edkeras.core.schema import ConfigError, from_dict

if TYPE_CHECKING:  # imported for annotations only: edkeras.reco.config may import this module
    pass

__all__ = ['ALGORITHMS', 'OBJECTIVES', 'PRESETS', 'ParamSpec', 'TuningConfig', 'default_search_space', 'tuning_from_dict']


ALGORITHMS: tuple[str, ...] = ("bayesian", "hyperband", "random")
"""Search algorithms: keras-tuner's BayesianOptimization, Hyperband and RandomSearch."""


OBJECTIVES: tuple[str, ...] = ("val_theta68", "val_angular_error_deg")
"""Objectives (minimised): θ68 or mean angular error (degrees) on the validation split."""


_DEFAULT_LOSSES: dict[str, list[str]] = {
    "direction": ["angular", "cosine", "focal_angular"],
    "vmf": ["vmf_nll", "gaussian_angular_nll"],
    "axial": ["axial_sense"],
    "multitask": ["angular", "cosine"],
}


PRESETS: dict[str, dict[str, Any]] = {
    "proposal_v17": {
        # The proposal's v17: 50 trials × 20 epochs on the full-size baseline_v15 network
        # (run config: model.name "baseline_v15", 200k events). A GPU setting: on a 2-core
        # CPU one trial of baseline_v15 takes hours.
        "algorithm": "bayesian",
        "n_trials": 50,
        "epochs_per_trial": 20,
        "objective": "val_theta68",
        "search_space": {
            "learning_rate": {"min": 1e-4, "max": 3e-3, "log": True},
            "filters": {"values": [32, 64]},
            "depth": {"values": [3, 4]},
            "dense_units": {"values": [128, 256, 512]},
            "dense_layers": {"values": [1, 2]},
            "dropout": {"min": 0.1, "max": 0.5, "step": 0.1},
            "batch_size": {"values": [64, 128, 256]},
            "loss": {"values": ["angular", "cosine"]},
            "augmentation.mirror": {"values": [True, False]},
        },
    },
}
"""Named presets: each fills the :class:`TuningConfig` fields left at their defaults."""


_SPEC_KEYS = ("values", "min", "max", "step", "log", "value")


def _config_error(message: str) -> Exception:

    return ConfigError(message)


# =========================================================================== search-space specs
@dataclass(frozen=True)
class ParamSpec:
    """One searched hyperparameter: the run-config key it sets and the values it may take.

    Attributes:
        name: the config key in ``--set`` form (``training.learning_rate``,
            ``model.options.filters``, ``augmentation.mirror``); also the keras-tuner name.
        kind: ``choice`` (one of ``values``), ``int`` / ``float`` (a range ``low``..``high``
            with optional ``step`` and ``log`` sampling) or ``fixed`` (one value).
        values: the choices (``choice``) or the one value (``fixed``).
        low, high, step, log: the range (``int``, ``float``).
        value_type: ``bool``, ``int``, ``float`` or ``str``: what the config key takes.
    """

    name: str
    kind: Literal["choice", "int", "float", "fixed"]
    values: tuple[Any, ...] = ()
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False
    value_type: str = "float"

    def declare(self, hp: Any) -> Any:
        """Declare this hyperparameter on ``hp`` (a ``keras_tuner.HyperParameters``) and return its value.

        Boolean choices use ``hp.Boolean`` (keras-tuner turns ``True``/``False`` in a
        ``Choice`` into 1/0); values are returned as the config key's type.
        """
        if self.kind == "fixed":
            v = hp.Fixed(self.name, self.values[0])
        elif self.kind == "choice" and self.value_type == "bool":
            v = hp.Boolean(self.name, default=bool(self.values[0])) if len(self.values) > 1 else hp.Fixed(
                self.name, bool(self.values[0])
            )
        elif self.kind == "choice":
            v = hp.Choice(self.name, list(self.values))
        elif self.kind == "int":
            v = hp.Int(
                self.name, int(self.low), int(self.high), step=int(self.step) if self.step else None,
                sampling="log" if self.log else "linear",
            )
        else:
            v = hp.Float(self.name, float(self.low), float(self.high), step=self.step, sampling="log" if self.log else "linear")
        return self.cast(v)

    def cast(self, value: Any) -> Any:
        """``value`` as the config key's type (bool, int, float or str)."""
        return {"bool": bool, "int": int, "float": float, "str": str}[self.value_type](value)

    def to_dict(self) -> dict[str, Any]:
        """The spec in config form (``values`` / ``min``, ``max``, ``step``, ``log`` / ``value``)."""
        if self.kind == "choice":
            return {"values": list(self.values)}
        if self.kind == "fixed":
            return {"value": self.values[0]}
        out: dict[str, Any] = {"min": self.low, "max": self.high}
        if self.step is not None:
            out["step"] = self.step
        if self.log:
            out["log"] = True
        return out


def _scalar_type(v: Any) -> str | None:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "str"
    return None


def _check_spec_shape(key: str, spec: Any) -> None:
    """Check the structure of one spec (no run config needed); raise ConfigError naming ``key``."""
    where = f"tuning.search_space.{key}"
    if not isinstance(spec, dict):
        raise _config_error(
            f"{where}: must be an object such as {{\"values\": [...]}} or {{\"min\": a, \"max\": b}}; received {spec!r}"
        )
    unknown = [k for k in spec if k not in _SPEC_KEYS]
    if unknown:
        raise _config_error(f"{where}: unknown key '{unknown[0]}'; valid keys: {', '.join(_SPEC_KEYS)}")
    forms = [("values" in spec), ("min" in spec or "max" in spec), ("value" in spec)]
    if sum(forms) != 1:
        raise _config_error(
            f"{where}: give exactly one of 'values' (a list), 'min' + 'max' (a range) or 'value' (fixed); "
            f"received keys {sorted(spec)}"
        )
    if "values" in spec:
        vals = spec["values"]
        if not isinstance(vals, (list, tuple)) or not vals:
            raise _config_error(f"{where}.values: must be a non-empty list; received {vals!r}")
        types = {_scalar_type(v) for v in vals}
        if None in types:
            raise _config_error(f"{where}.values: must hold numbers, strings or true/false; received {list(vals)!r}")
        if len(set(map(json.dumps, vals))) != len(vals):
            raise _config_error(f"{where}.values: holds a value twice; received {list(vals)!r}")
        if ("step" in spec) or ("log" in spec):
            raise _config_error(f"{where}: 'step' and 'log' belong to a range (min, max), not to 'values'")
    elif "value" in spec:
        if _scalar_type(spec["value"]) is None:
            raise _config_error(f"{where}.value: must be a number, string or true/false; received {spec['value']!r}")
    else:
        for k in ("min", "max"):
            if k not in spec:
                raise _config_error(f"{where}: a range needs both 'min' and 'max'; '{k}' is missing")
            if _scalar_type(spec[k]) not in ("int", "float") or not math.isfinite(spec[k]):
                raise _config_error(f"{where}.{k}: must be a finite number; received {spec[k]!r}")
        if not spec["max"] > spec["min"]:
            raise _config_error(f"{where}: 'max' must be > 'min'; received min={spec['min']!r}, max={spec['max']!r}")
        if "log" in spec and not isinstance(spec["log"], bool):
            raise _config_error(f"{where}.log: must be true or false; received {spec['log']!r}")
        if spec.get("log") and spec["min"] <= 0:
            raise _config_error(f"{where}: log sampling needs 'min' > 0; received min={spec['min']!r}")
        if "step" in spec and spec["step"] is not None:
            if _scalar_type(spec["step"]) not in ("int", "float") or not spec["step"] > 0:
                raise _config_error(f"{where}.step: must be a number > 0; received {spec['step']!r}")
            if spec.get("log"):
                raise _config_error(f"{where}: give either 'step' or 'log', not both")


def default_search_space(head: str = "direction") -> dict[str, dict[str, Any]]:
    """The default search space for a model head (used when ``search_space`` is null).

    Learning rate (log), filters, depth, dense width, dropout, batch size, the losses that
    fit the head, and the mirror augmentation on or off.

    Example:
        >>> default_search_space("vmf")["loss"]
        {'values': ['vmf_nll', 'gaussian_angular_nll']}
    """
    if head not in _DEFAULT_LOSSES:
        raise _config_error(f"model.head: must be one of {', '.join(_DEFAULT_LOSSES)}; received {head!r}")
    return {
        "learning_rate": {"min": 1e-4, "max": 1e-2, "log": True},
        "filters": {"values": [16, 32, 48]},
        "depth": {"values": [2, 3, 4]},
        "dense_units": {"values": [64, 128, 256]},
        "dropout": {"min": 0.0, "max": 0.4, "step": 0.1},
        "batch_size": {"values": [32, 64, 128]},
        "loss": {"values": list(_DEFAULT_LOSSES[head])},
        "augmentation.mirror": {"values": [True, False]},
    }


# =========================================================================== TuningConfig
@dataclass(frozen=True)
class TuningConfig:
    """The ``tuning`` section of a config: how the hyperparameter search runs.

    Attributes:
        algorithm: ``bayesian`` (keras-tuner BayesianOptimization; needs scikit-learn),
            ``hyperband`` (``epochs_per_trial`` is its maximum epochs per model; the search
            stops after ``n_trials`` trials) or ``random``.
        n_trials: trials in the whole search (a resumed search continues up to this number).
        epochs_per_trial: training epochs of each trial.
        min_epochs_per_trial: ``hyperband`` only: the least epochs of its first rung. keras-tuner
            starts brackets at one epoch; a trial that short ranks noise when networks need
            several epochs to learn at all, so brackets whose first rung would train fewer
            epochs than this are not run (the first rung is then ``ceil(epochs_per_trial /
            3^k)`` ≥ this: 15 / 5 gives six trials of 5 epochs and the best two continued to
            15, 20 / 5 a first rung of 7; :func:`edkeras.reco.tuning.hyperband_plan`). 1:
            keras-tuner's own plan.
        objective: ``val_theta68`` (68 % containment angle on the validation split,
            computed from the validation predictions at every epoch end) or
            ``val_angular_error_deg`` (mean angle); both minimised. The test split is never used.
        search_space: config key → spec. Keys: a model option (``filters``, or
            ``model.options.filters``), a training key (``learning_rate``,
            ``training.batch_size``) or an augmentation key (``augmentation.mirror``).
            Specs: ``{"values": [...]}``, ``{"min": a, "max": b, "log": true}``,
            ``{"min": a, "max": b, "step": s}`` or ``{"value": v}``. ``null``: the
            default space of the model head (:func:`default_search_space`).
        retrain_on: ``train`` (the best trial is retrained on the training split with early
            stopping and checkpoint choice on validation) or ``train+val`` (on both; with no
            validation left, it trains for the best trial's number of epochs).
        executions_per_trial: trainings per trial (their objective is averaged).
        preset: ``null`` or ``proposal_v17`` (50 trials × 20 epochs, Bayesian, a space
            around the full-size ``baseline_v15``; a GPU setting). A preset fills every
            field left at its default.

    Example:
        >>> TuningConfig(preset="proposal_v17").n_trials
        50
    """

    algorithm: Literal["bayesian", "hyperband", "random"] = "bayesian"
    n_trials: int = 10
    epochs_per_trial: int = 3
    min_epochs_per_trial: int = 1
    objective: Literal["val_theta68", "val_angular_error_deg"] = "val_theta68"
    search_space: dict | None = None
    retrain_on: Literal["train", "train+val"] = "train"
    executions_per_trial: int = 1
    preset: Literal["proposal_v17"] | None = None

    def __post_init__(self) -> None:
        if self.preset is not None:
            if self.preset not in PRESETS:
                raise _config_error(f"tuning.preset: must be null or one of {', '.join(PRESETS)}; received {self.preset!r}")
            defaults = {f.name: f.default for f in dataclasses.fields(self)}
            for key, value in PRESETS[self.preset].items():
                if getattr(self, key) == defaults[key]:
                    object.__setattr__(self, key, json.loads(json.dumps(value)))
        if self.algorithm not in ALGORITHMS:
            raise _config_error(f"tuning.algorithm: must be one of {', '.join(ALGORITHMS)}; received {self.algorithm!r}")
        if self.objective not in OBJECTIVES:
            raise _config_error(f"tuning.objective: must be one of {', '.join(OBJECTIVES)}; received {self.objective!r}")
        for key in ("n_trials", "epochs_per_trial", "min_epochs_per_trial", "executions_per_trial"):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise _config_error(f"tuning.{key}: must be an integer >= 1; received {v!r}")
        if self.min_epochs_per_trial != 1:
            if self.algorithm != "hyperband":
                raise _config_error(
                    f"tuning.min_epochs_per_trial: only a 'hyperband' search has rungs; received "
                    f"{self.min_epochs_per_trial} with algorithm {self.algorithm!r} (leave it at 1)"
                )
            if self.min_epochs_per_trial > self.epochs_per_trial:
                raise _config_error(
                    f"tuning.min_epochs_per_trial: must be <= epochs_per_trial ({self.epochs_per_trial}); "
                    f"received {self.min_epochs_per_trial}"
                )
        if self.search_space is not None:
            if not isinstance(self.search_space, dict) or not self.search_space:
                raise _config_error(
                    f"tuning.search_space: must be null (the default space) or a non-empty object; "
                    f"received {self.search_space!r}"
                )
            for key, spec in self.search_space.items():
                _check_spec_shape(key, spec)


def tuning_from_dict(data: Any, where: str = "tuning") -> TuningConfig:
    """Build a :class:`TuningConfig` strictly from a mapping (unknown keys are errors naming them)."""

    try:
        return from_dict(TuningConfig, data, where=where)
    except ConfigError as e:
        msg = str(e)
        if not msg.startswith(where):
            msg = f"{where}: {msg}"
        raise ConfigError(msg) from None
