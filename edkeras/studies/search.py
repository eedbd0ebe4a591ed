"""The v17 search of the phase notebooks: its space on a CPU, and a plan that starts where networks learn.

Method notes: ``docs/methods.md``, section ``edkeras.reco.tuning``.

Example:
    >>> from edkeras.studies import phase, search
    >>> cfg = phase.phase_config("v17_hyperopt", "synthetic", 12000, 6, 0, False, model="baseline_v15")
    >>> search.tuning_settings("cpu", False, n_train=8400).n_trials   # 6 trials of 5 epochs, the best 2 to 15
    8
"""

from __future__ import annotations

import math
from typing import Any

from edkeras.core.errors import InputError
from edkeras.reco.config import RunConfig
from edkeras.reco.run_data import prepare_data
from edkeras.reco.search_space import TuningConfig
from edkeras.reco.tuning import hyperband_plan
from edkeras.studies.phase import LEARNING_PASSES, SCALES

__all__ = ["CPU_SEARCH_SPACE", "SMOKE_SEARCH_SPACE", "training_events", "tuning_settings"]

CPU_SEARCH_SPACE: dict[str, dict[str, Any]] = {
    "learning_rate": {"min": 1e-4, "max": 3e-3, "log": True},
    "filters": {"values": [8, 16]},
    "dense_units": {"values": [128, 256]},
    "dropout": {"min": 0.1, "max": 0.5, "step": 0.1},
    "batch_size": {"values": [32, 64]},
    "augmentation.mirror": {"values": [True, False]},
}
"""v17's search space at ``scale="cpu"``: around ``baseline_v15`` at the CPU width."""

SMOKE_SEARCH_SPACE: dict[str, dict[str, Any]] = {
    "learning_rate": {"min": 1e-4, "max": 3e-3, "log": True},
    "dropout": {"values": [0.1, 0.3]},
}


def training_events(config: RunConfig) -> int:
    """How many events ``config`` trains on (its training split after filters and cap; simulates the default data on first use)."""
    return prepare_data(config.data).counts()["train"]


def tuning_settings(
    scale: str, smoke: bool, algorithm: str = "hyperband", n_trials: int = 0, epochs_per_trial: int = 0,
    min_epochs_per_trial: int = 0, n_train: int | None = None,
) -> Any:
    """The v17 search: :data:`CPU_SEARCH_SPACE` (cpu), the proposal's preset (full) or two tiny trials (smoke).

    Zeros are filled from where networks learn (:data:`LEARNING_PASSES`, which needs ``n_train``,
    the training events): ``min_epochs_per_trial`` (Hyperband's smallest rung; with another
    algorithm it must stay 0) = enough epochs for that many passes; ``epochs_per_trial`` = 3 ×
    that rung (Hyperband: the longest rung; random/bayesian: every trial trains to the
    learning threshold); ``n_trials`` (Hyperband) = one bracket of successive halving, its
    first-rung trials and their continuations (:func:`edkeras.reco.tuning.hyperband_plan`).

    Returns:
        An :class:`edkeras.reco.search_space.TuningConfig`.

    Raises:
        InputError: an unknown scale, a smallest rung with another algorithm, a zero that
            needs ``n_train`` without it, or ``n_trials = 0`` with random or bayesian.
    """

    if scale not in SCALES:
        raise InputError(f"tuning_settings: scale must be one of {', '.join(SCALES)}; received {scale!r}")
    if smoke:
        return TuningConfig(algorithm="random", n_trials=2, epochs_per_trial=1, search_space=dict(SMOKE_SEARCH_SPACE))
    hyperband = algorithm == "hyperband"
    if min_epochs_per_trial and not hyperband:
        raise InputError(f"tuning_settings: min_epochs_per_trial ({min_epochs_per_trial}) is Hyperband's smallest rung; "
                         f"algorithm {algorithm!r} has none (leave it 0)")
    rung = min_epochs_per_trial
    if (hyperband and not rung) or not epochs_per_trial:
        if not n_train:
            raise InputError("tuning_settings: a rung or epochs_per_trial of 0 is set from the training events; pass n_train")
        rung = rung or max(1, math.ceil(LEARNING_PASSES / n_train))
    longest = epochs_per_trial or (3 * rung if hyperband else rung)
    if not n_trials:
        if not hyperband:
            raise InputError(f"tuning_settings: algorithm {algorithm!r} needs n_trials >= 1; received 0")
        n_trials = sum(trials for trials, _ in hyperband_plan(longest, rung))
    kwargs: dict[str, Any] = {"algorithm": algorithm, "n_trials": n_trials, "epochs_per_trial": longest,
                              "min_epochs_per_trial": rung if hyperband else 1}
    if scale == "full":
        return TuningConfig(**kwargs, preset="proposal_v17")
    return TuningConfig(**kwargs, search_space=dict(CPU_SEARCH_SPACE))
