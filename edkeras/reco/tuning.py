"""Hyperparameter search for the direction network (proposal item 1, v17), on the one training path.

Method notes: ``docs/methods.md``, section ``edkeras.reco.tuning``.

Example:
    >>> from edkeras.reco.config import load_run_config
    >>> from edkeras.reco.tuning import TuningConfig, tune
    >>> result = tune(load_run_config("configs/compact.json"), TuningConfig(algorithm="random", n_trials=4))
    >>> result.best["hyperparameters"], result.run.metrics["test"]["overall"]["theta68"]
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import keras
import keras_tuner

from edkeras.core.errors import InputError
from edkeras.core.files import write_json
from edkeras.core.schema import ConfigError, apply_overrides, to_dict
from edkeras.reco.config import AugmentConfig, TrainingConfig, load_run_config
from edkeras.reco.hypermodel import RunHyperModel, tuner_class
from edkeras.reco.models import builder_options
from edkeras.reco.run_data import prepare_data
from edkeras.reco.runs import check_run_name, is_finished, read_json, runs_dir
from edkeras.reco.search_space import (
    ParamSpec,
    TuningConfig,
    _check_spec_shape,
    _config_error,
    _scalar_type,
    default_search_space,
)
from edkeras.reco.training import distribution_strategy, gpu_present, train
from edkeras.reco.trials import _read_logs, _write_trials, best_trial, trial_table

if TYPE_CHECKING:  # imported for annotations only: edkeras.reco.config may import this module
    from edkeras.reco.config import RunConfig
    from edkeras.reco.training import RunResult

__all__ = [
    "SearchResult",
    "TuneResult",
    "load_tune_config",
    "project_name",
    "resolve_search_space",
    "search",
    "tune",
    "tuner_role",
]


# Training keys that a search must not vary, and why.
_NOT_TUNABLE: dict[str, str] = {
    "epochs": "trials run tuning.epochs_per_trial epochs",
    "early_stopping_patience": "trials do not stop early",
    "monitor": "the search is scored by tuning.objective",
    "strategy": "a device setting, not a hyperparameter",
    "mixed_precision": "a device setting, not a hyperparameter",
    "deterministic": "a device setting, not a hyperparameter",
    "bootstrap_samples": "it only sets the confidence intervals of metrics.json",
    "loss_options": "it is a mapping; tune its scalar settings through the loss choice instead",
}
_FIXED_MODEL_OPTIONS = ("input_shape", "head", "energy_conditioning")


def load_tune_config(
    path: str | os.PathLike, overrides: typing.Iterable[str] = (), name: str | None = None
) -> tuple[RunConfig, TuningConfig]:
    """Read the run config of ``edkeras tune`` (its ``tuning`` section included), strictly.

    ``overrides`` are ``key=value`` strings (``tuning.n_trials=20`` for the search).

    Returns:
        The run config and its tuning section.

    Raises:
        ConfigError: naming the file and the key.
    """

    cfg = load_run_config(Path(path), list(overrides), name=name)
    return cfg, cfg.tuning


# =========================================================================== resolving keys
def _target_type(tp: Any) -> str | None:
    """``bool``/``int``/``float``/``str`` of a config annotation, or None if not a scalar."""
    origin = typing.get_origin(tp)
    if origin is Literal:
        kinds = {_scalar_type(a) for a in typing.get_args(tp)}
        return kinds.pop() if len(kinds) == 1 else None
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        kinds = {_target_type(a) for a in args}
        return kinds.pop() if len(kinds) == 1 else None
    return {bool: "bool", int: "int", float: "float", str: "str"}.get(tp)


def _tunable_keys(config: RunConfig) -> dict[str, str]:
    """Canonical key (``--set`` form) → value type of every key a search may vary."""

    keys: dict[str, str] = {}
    try:
        options = builder_options(config.model.name)
    except InputError as e:
        raise _config_error(f"model.name: {e}") from None
    for opt, default in options.items():
        if opt in _FIXED_MODEL_OPTIONS:
            continue
        t = _scalar_type(default)
        if t is not None:
            keys[f"model.options.{opt}"] = t
    for section, cls in (("training", TrainingConfig), ("augmentation", AugmentConfig)):
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if section == "training" and f.name in _NOT_TUNABLE:
                continue
            t = _target_type(hints[f.name])
            if t is not None:
                keys[f"{section}.{f.name}"] = t
    return keys


def _canonical_key(key: str, keys: dict[str, str]) -> str:
    """The canonical name of a search-space key, or ConfigError naming it and listing the valid ones."""
    where = f"tuning.search_space: key '{key}'"
    parts = key.split(".")
    if parts[0] == "training" and len(parts) == 2 and parts[1] in _NOT_TUNABLE:
        raise _config_error(f"{where} is not tunable ({_NOT_TUNABLE[parts[1]]})")
    if len(parts) == 1 and parts[0] in _NOT_TUNABLE and f"model.options.{parts[0]}" not in keys:
        raise _config_error(f"{where} is not tunable ({_NOT_TUNABLE[parts[0]]})")
    if parts[0] == "data":
        raise _config_error(f"{where}: data keys are not tunable (every trial must be scored on the same split)")
    if parts[0] == "model" and len(parts) == 2 and parts[1] in ("name", "head"):
        raise _config_error(f"{where}: model.{parts[1]} is fixed for a search (run one search per model)")
    if len(parts) >= 2 and parts[0] == "model" and parts[-1] in _FIXED_MODEL_OPTIONS:
        raise _config_error(f"{where}: '{parts[-1]}' is set by the data and model.head, not searched")
    candidates: list[str]
    if len(parts) == 1:
        candidates = [k for k in keys if k.split(".")[-1] == key]
    elif parts[0] == "model" and len(parts) == 2:
        candidates = [f"model.options.{parts[1]}"] if f"model.options.{parts[1]}" in keys else []
    else:
        candidates = [key] if key in keys else []
    if len(candidates) == 1:
        return candidates[0]
    if len(candidates) > 1:
        raise _config_error(f"{where} is ambiguous; write one of {', '.join(candidates)}")
    short = sorted({k.split(".")[-1] for k in keys})
    near = difflib.get_close_matches(key.split(".")[-1], short, n=1)
    hint = f" (did you mean '{near[0]}'?)" if near else ""
    raise _config_error(f"{where} is unknown{hint}; valid keys: {', '.join(sorted(keys))}")


def _check_value(config: RunConfig, key: str, canonical: str, value_type: str, value: Any) -> Any:
    """``value`` converted to the key's type and accepted by the run config, else ConfigError."""

    where = f"tuning.search_space.{key}"
    vt = _scalar_type(value)
    if value_type == "float" and vt == "int":
        value = float(value)
    elif vt != value_type:
        raise _config_error(f"{where}: {canonical} takes a {value_type} value; received {value!r}")
    if canonical.startswith(("training.", "augmentation.")):
        try:
            apply_overrides(config, [f"{canonical}={json.dumps(value)}"], where=where)
        except ConfigError as e:
            msg = str(e)
            raise _config_error(msg if msg.startswith(where) else f"{where}: {msg}") from None
    return value


def resolve_search_space(config: RunConfig, tuning: TuningConfig) -> dict[str, ParamSpec]:
    """Check the search space strictly against ``config`` and return canonical specs.

    Keys may be bare (``filters``, ``learning_rate``) when they name one key of the run
    config, or dotted (``model.options.filters``, ``model.filters``,
    ``training.batch_size``, ``augmentation.mirror``). Every value (each choice, the ends
    of each range) is checked against the key's type and the run config's own rules.

    Returns:
        Canonical key → :class:`ParamSpec`, sorted by key.

    Raises:
        ConfigError: an unknown, ambiguous or untunable key (named, valid keys listed), or
            a value the run config rejects.
    """
    space = tuning.search_space if tuning.search_space is not None else default_search_space(config.model.head)
    keys = _tunable_keys(config)
    out: dict[str, ParamSpec] = {}
    for key, spec in space.items():
        _check_spec_shape(key, spec)
        canonical = _canonical_key(key, keys)
        if canonical in out:
            raise _config_error(f"tuning.search_space: key '{key}' sets {canonical}, which another key already sets")
        vtype = keys[canonical]
        if "values" in spec:
            values = tuple(_check_value(config, key, canonical, vtype, v) for v in spec["values"])
            out[canonical] = ParamSpec(canonical, "choice", values=values, value_type=vtype)
        elif "value" in spec:
            value = _check_value(config, key, canonical, vtype, spec["value"])
            out[canonical] = ParamSpec(canonical, "fixed", values=(value,), value_type=vtype)
        else:
            if vtype not in ("int", "float"):
                raise _config_error(f"tuning.search_space.{key}: a range (min, max) needs a numeric key; {canonical} is {vtype}")
            lo = _check_value(config, key, canonical, vtype, spec["min"])
            hi = _check_value(config, key, canonical, vtype, spec["max"])
            step = spec.get("step")
            if vtype == "int" and step is not None and _scalar_type(step) != "int":
                raise _config_error(f"tuning.search_space.{key}.step: {canonical} is an integer; received step {step!r}")
            out[canonical] = ParamSpec(
                canonical, vtype, low=lo, high=hi, step=step, log=bool(spec.get("log", False)), value_type=vtype
            )
    return dict(sorted(out.items()))


# =========================================================================== project name
def _hashed_run_config(config: RunConfig) -> dict[str, Any]:
    """The parts of the run config that change what a trial means (not its name or final epochs)."""

    d = to_dict(config)
    d.pop("name", None)
    d.pop("tuning", None)
    training = dict(d.get("training", {}))
    for k in ("epochs", "early_stopping_patience", "bootstrap_samples"):
        training.pop(k, None)
    d["training"] = training
    return d


def project_name(config: RunConfig, tuning: TuningConfig, space: dict[str, ParamSpec] | None = None) -> str:
    """``<algorithm>-<hash>``: the keras-tuner project of this search.

    The hash covers the search space (resolved), the objective, the epochs and executions
    per trial and the run config (except its name, final epochs, early stopping and
    bootstrap size), so a changed space or model starts a fresh search, while more
    ``n_trials`` continue the same one.
    """
    space = resolve_search_space(config, tuning) if space is None else space
    payload = {
        "search_space": {k: s.to_dict() for k, s in space.items()},
        "objective": tuning.objective,
        "algorithm": tuning.algorithm,
        "epochs_per_trial": tuning.epochs_per_trial,
        "executions_per_trial": tuning.executions_per_trial,
        "run": _hashed_run_config(config),
    }
    if tuning.min_epochs_per_trial != 1:  # another plan is another search (1 keeps the hashes of older searches)
        payload["min_epochs_per_trial"] = tuning.min_epochs_per_trial
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()
    return f"{tuning.algorithm}-{digest[:12]}"


def tuner_role() -> Literal["single", "chief", "worker"]:
    """``chief``/``worker`` in keras-tuner's distributed mode (from the KERASTUNER_* variables), else ``single``.

    Raises:
        InputError: ``KERASTUNER_ORACLE_IP`` set without ``KERASTUNER_ORACLE_PORT`` or
            ``KERASTUNER_TUNER_ID``.
    """
    if "KERASTUNER_ORACLE_IP" not in os.environ:
        return "single"
    missing = [k for k in ("KERASTUNER_ORACLE_PORT", "KERASTUNER_TUNER_ID") if not os.environ.get(k)]
    if missing:
        raise InputError(
            f"distributed tuning: KERASTUNER_ORACLE_IP is set but {', '.join(missing)} is not; "
            "set all three (chief: KERASTUNER_TUNER_ID=chief; workers: tuner0, tuner1, ...)"
        )
    return "chief" if "chief" in os.environ["KERASTUNER_TUNER_ID"] else "worker"


# =========================================================================== search and tune
@dataclass
class SearchResult:
    """What :func:`search` returns.

    Attributes:
        role: ``single``, ``chief`` or ``worker``.
        project_dir: the keras-tuner project folder.
        space: the resolved search space.
        trials: :func:`trial_table` of the folder after this process's search.
        best: the best completed trial's row (None if none completed).
        trials_run: ids of the trials this process ran (none for a chief).
    """

    role: str
    project_dir: Path
    space: dict[str, ParamSpec]
    trials: list[dict[str, Any]]
    best: dict[str, Any] | None
    trials_run: list[str] = field(default_factory=list)


@dataclass
class TuneResult:
    """What :func:`tune` returns: the search, and (chief or single process) the retrained run."""

    search: SearchResult
    run_dir: Path
    best_config: Any = None
    run: RunResult | None = None

    @property
    def best(self) -> dict[str, Any] | None:
        """The best trial's row (see :func:`trial_table`)."""
        return self.search.best


def _check_retrain(config: RunConfig, tuning: TuningConfig) -> None:
    """A refit on train+val needs a schedule that does not watch the validation split."""
    if tuning.retrain_on == "train+val" and config.training.schedule == "plateau":
        raise _config_error(
            "tuning.retrain_on: 'train+val' cannot retrain with training.schedule 'plateau' (it needs a "
            "validation split); use 'constant' or 'cosine', or retrain_on 'train'"
        )


def search(
    config: RunConfig,
    tuning: TuningConfig,
    run_dir: str | os.PathLike | None = None,
    *,
    overwrite: bool = False,
    verbose: int | str = 0,
    progress: bool = False,
) -> SearchResult:
    """Run (or resume, or join) the hyperparameter search; no retraining.

    Trials train on the training split and are scored on the validation split; the test
    split is never loaded. In distributed mode the chief serves the oracle until every
    trial is done, and each worker runs trials until none is left.

    Args:
        config: the run config every trial starts from.
        tuning: the search settings.
        run_dir: the run folder (default ``runs/<config.name>``); the search lives in
            ``<run_dir>/tuner/<project_name>``.
        overwrite: start this project afresh (never on a worker).
        verbose: Keras ``fit`` verbosity inside trials.
        progress: show a tqdm bar over this process's trials.

    Returns:
        A :class:`SearchResult`.

    Raises:
        ConfigError: a bad search space or run config.
        InputError: bad event files, incomplete KERASTUNER_* variables, or keras-tuner's
            Bayesian optimisation without scikit-learn.
    """


    if config.training.strategy == "multi_worker":
        raise ConfigError(
            "training.strategy: 'multi_worker' trains one run over several machines; a search spreads its trials "
            "over machines with its own workers (docs/distributed_tuning.md): use 'default' or 'mirrored'"
        )
    role = tuner_role()
    space = resolve_search_space(config, tuning)
    check_run_name(config.name)
    rd = Path(run_dir) if run_dir is not None else runs_dir() / config.name
    project = project_name(config, tuning, space)

    base = apply_overrides(config, [f"training.epochs={tuning.epochs_per_trial}"], where="tuning.epochs_per_trial")
    t = base.training
    if t.deterministic and keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    data = prepare_data(base.data)  # indexes the files; only train and val are handed on
    hypermodel = RunHyperModel(base, space, data.subset("train"), data.subset("val"), data.index.image_shape)
    kwargs: dict[str, Any] = {
        "hypermodel": hypermodel,
        "objective": keras_tuner.Objective(tuning.objective, "min"),
        "seed": t.seed + 1,  # keras-tuner draws a random seed for seed=0
        "directory": str(rd / "tuner"),
        "project_name": project,
        "overwrite": bool(overwrite) and role != "worker",
        "executions_per_trial": tuning.executions_per_trial,
        "distribution_strategy": distribution_strategy(base),
    }
    if tuning.algorithm == "hyperband":
        kwargs.update(max_epochs=tuning.epochs_per_trial, factor=3, hyperband_iterations=None)
    else:
        kwargs["max_trials"] = tuning.n_trials
    old_policy = keras.config.dtype_policy()
    mixed = gpu_present() if t.mixed_precision == "auto" else bool(t.mixed_precision)
    bar = None
    try:
        if mixed:
            keras.config.set_dtype_policy("mixed_float16")
        (rd / "tuner").mkdir(parents=True, exist_ok=True)
        try:
            tuner = tuner_class(tuning.algorithm)(**kwargs)
        except ImportError as e:
            raise InputError(
                f"tuning.algorithm: {tuning.algorithm!r} cannot start ({e}); install scikit-learn for "
                "'bayesian', or use 'random' or 'hyperband'"
            ) from None
        if tuning.algorithm == "hyperband":
            tuner.oracle.max_trials = tuning.n_trials  # Hyperband's own budget is epochs; cap the trials too
            _set_smallest_rung(tuner.oracle, tuning.min_epochs_per_trial)
        project_dir = Path(tuner.project_dir)
        before = {k: len(v) for k, v in _read_logs(project_dir).items()}
        if progress and role != "chief":
            from tqdm.auto import tqdm

            done = sum(1 for r in trial_table(project_dir) if r["status"] in ("COMPLETED", "FAILED"))
            bar = tqdm(total=tuning.n_trials, initial=min(done, tuning.n_trials), desc=f"{tuner.tuner_id} {project}", unit="trial")
            tuner.progress = bar
        try:
            tuner.search(epochs=tuning.epochs_per_trial, verbose=verbose)
        except RuntimeError as e:  # keras-tuner stops after max_consecutive_failed_trials failures
            if "consecutive failures" not in str(e):
                raise
            last = [line for line in str(e).strip().splitlines() if line.strip()][-1]
            raise InputError(f"{project_dir}: 3 trials in a row failed; the last one: {last}") from None
    finally:
        keras.config.set_dtype_policy(old_policy)
        if bar is not None:
            bar.close()
    after = _read_logs(project_dir)
    mine = tuner.tuner_id
    ran = [
        tid for tid, entries in after.items()
        for e in entries[before.get(tid, 0):] if e["tuner_id"] == mine and e["pid"] == os.getpid()
    ]
    rows = trial_table(project_dir, tuning.objective)
    return SearchResult(role, project_dir, space, rows, best_trial(rows), sorted(ran, key=lambda s: (len(s), s)))


def _best_overrides(result: SearchResult, tuning: TuningConfig) -> list[str]:
    best = result.best
    assert best is not None
    out = []
    for key, spec in result.space.items():
        if key in best["hyperparameters"]:
            out.append(f"{key}={json.dumps(spec.cast(best['hyperparameters'][key]))}")
    if tuning.retrain_on == "train+val":
        out += [
            'training.fit_on="train+val"', "training.early_stopping_patience=null",
            f"training.epochs={int(best['best_epoch'] or 0) + 1}",
        ]
    return out


def hyperband_plan(max_epochs: int, min_epochs: int = 1, factor: int = 3) -> list[tuple[int, int]]:
    """The first bracket of the Hyperband search keras-tuner runs: ``[(trials, epochs), …]`` per rung.

    Computed by keras-tuner's own oracle, re-planned from ``min_epochs`` as :func:`search` does.
    Every entry counts against ``n_trials`` (a continued trial is a new trial), so
    ``sum(trials)`` is the cap that runs exactly one bracket of successive halving.

    Example:
        >>> hyperband_plan(15, 5)
        [(6, 5), (2, 15)]
    """
    oracle = keras_tuner.oracles.HyperbandOracle(keras_tuner.Objective("val_theta68", "min"), max_epochs=max_epochs,
                                                 factor=factor)
    _set_smallest_rung(oracle, min_epochs)
    b = oracle._brackets[0]["bracket_num"]
    return [(oracle._get_size(b, r), oracle._get_epochs(b, r)) for r in range(b + 1)]


def _set_smallest_rung(oracle: Any, min_epochs: int) -> None:
    """Let a fresh Hyperband oracle start its brackets at ``min_epochs`` instead of 1.

    keras-tuner fixes ``min_epochs = 1`` in ``HyperbandOracle.__init__`` and plans its
    brackets from it; a resumed search keeps the plan it saved (its state holds
    ``min_epochs``), so only an oracle with no trial yet is re-planned.
    """
    if not isinstance(oracle, keras_tuner.oracles.HyperbandOracle):  # a worker's client: the chief plans
        return
    if oracle.trials or oracle.min_epochs == min_epochs:
        return
    oracle.min_epochs = min_epochs
    oracle._current_bracket = oracle._get_num_brackets() - 1
    oracle._brackets = []
    oracle._start_new_bracket()


def tune(
    config: RunConfig,
    tuning: TuningConfig | None = None,
    run_dir: str | os.PathLike | None = None,
    force: bool = False,
    *,
    verbose: int | str = "auto",
    progress: bool = False,
) -> TuneResult:
    """Search, then retrain the best trial once through :func:`edkeras.reco.training.train` and evaluate it on test.

    A worker (distributed mode) only runs trials and returns. The chief, or a single
    process, writes ``trials.csv``, ``trials.json``, ``tuning.json`` and
    ``best_config.json`` into the run folder, then trains the best config there
    (``metrics.json`` with validation and test blocks). An interrupted search resumes where
    it stopped; an interrupted retraining resumes from its backup.

    Args:
        config: the run config.
        tuning: the search settings; None reads ``config.tuning``.
        run_dir: the run folder (default ``runs/<config.name>``).
        force: redo a finished tuned run: the search starts afresh and the run is retrained.
        verbose: Keras ``fit`` verbosity (trials and the final training).
        progress: a tqdm bar over the trials.

    Returns:
        A :class:`TuneResult`.

    Raises:
        ConfigError: bad tuning or run config; no ``tuning`` given or in the config.
        FileExistsError: the run folder holds a finished run and ``force`` is false.
        InputError: bad data; no trial completed.
    """

    if tuning is None:
        tuning = config.tuning
    _check_retrain(config, tuning)
    check_run_name(config.name)
    rd = Path(run_dir) if run_dir is not None else runs_dir() / config.name
    role = tuner_role()
    if role != "worker" and is_finished(rd) and not force:
        raise FileExistsError(f"{rd}: holds a finished run; pass --force to search and retrain again")
    result = search(config, tuning, rd, overwrite=force and role != "worker", verbose=verbose, progress=progress)
    if role == "worker":
        return TuneResult(result, rd)

    _write_trials(rd, result.trials, result.space)
    if result.best is None:
        bad = [r for r in result.trials if r["message"]]
        why = f"; last error: {bad[-1]['message']}" if bad else ""
        raise InputError(f"{result.project_dir}: no trial completed with a finite {tuning.objective}{why}")
    overrides = _best_overrides(result, tuning)
    best_cfg = apply_overrides(config, overrides, where="best trial")
    best = result.best
    write_json(rd / "best_config.json", to_dict(best_cfg))
    write_json(rd / "tuning.json", {
        "tuning": to_dict(tuning),
        "search_space": {k: s.to_dict() for k, s in result.space.items()},
        "project": result.project_dir.name,
        "project_dir": str(result.project_dir),
        "objective": {"name": tuning.objective, "direction": "min", "split": "val"},
        "trials": {s: sum(r["status"] == s for r in result.trials) for s in ("COMPLETED", "FAILED", "INVALID", "RUNNING")},
        "best_trial": best,
        "overrides": overrides,
        "retrain_on": tuning.retrain_on,
    })
    cfg_file = rd / "config.json"
    retrain_force = force
    if cfg_file.exists() and not is_finished(rd) and read_json(cfg_file) != read_json(rd / "best_config.json"):
        retrain_force = True  # an unfinished retraining of an earlier best trial: start it again
    run = train(best_cfg, run_dir=rd, force=retrain_force, resume=True, verbose=verbose)
    return TuneResult(result, rd, best_cfg, run)
