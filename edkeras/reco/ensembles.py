"""Ensembles of direction networks (proposal 6a, 6b), in numpy: spherical mean, spread, membership.

Method notes: ``docs/methods.md``, section ``edkeras.reco.ensembles``.

Example:
    >>> from edkeras.reco.ensembles import bootstrap_membership
    >>> from edkeras.reco.ensemble_model import build_ensemble, load_ensemble
    >>> members = bootstrap_membership(train_ids, n_members=5, seed=1)   # who trains on what
    >>> ens = build_ensemble([model_0, model_1, model_2], weighting="kappa")
    >>> ens.save("runs/ens/model.keras"); ens2 = load_ensemble("runs/ens/model.keras")
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edkeras.core.errors import InputError
from edkeras.core.vmf import _KAPPA_MAX, _KAPPA_MIN

__all__ = [
    "KAPPA_MODES",
    "WEIGHTINGS",
    "Membership",
    "bootstrap_membership",
    "combine_members",
    "kappa_from_resultant",
    "kfold_membership",
    "mean_resultant_length",
    "spherical_mean",
    "spread_kappa",
]

WEIGHTINGS = ("uniform", "kappa")
"""How members are weighted in the spherical mean."""

KAPPA_MODES = ("auto", "none", "spread", "members", "combined")
"""What κ an ensemble outputs: ``none`` (direction only, (N, 3)); ``spread`` (from R̄);
``members`` (mean of the members' κ); ``combined`` (1/κ = mean 1/κ_i + 1/κ_spread);
``auto`` = ``combined`` for vMF members, ``spread`` otherwise."""


_RBAR_MAX = 1.0 - 1e-7



# --------------------------------------------------------------------------- numpy part


def _member_stack(directions: Any, axis: int) -> np.ndarray:
    """Members as (M, N, D) with D ≥ 3, from any array with the member axis ``axis``."""
    arr = np.asarray(directions, dtype=np.float64)
    if arr.ndim == 2:
        arr = arr[:, None, :] if axis == 0 else arr[None]
        axis = 0
    if arr.ndim != 3 or arr.shape[-1] < 3:
        raise InputError(
            f"ensemble: expected member directions of shape (M, N, 3) (or (M, N, 4) with κ); "
            f"received shape {np.shape(directions)}"
        )
    if axis not in (0, 1, -3, -2):
        raise InputError(f"ensemble: the member axis must be 0 or 1; received {axis}")
    arr = np.moveaxis(arr, axis, 0)
    norms = np.linalg.norm(arr[..., :3], axis=-1)
    if np.any(~np.isfinite(norms)) or np.any(norms == 0):
        raise InputError("ensemble: member directions must be finite non-zero vectors")
    return arr


def _weights(weights: Any, shape: tuple[int, int]) -> np.ndarray:
    if weights is None:
        return np.ones(shape)
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim == 1 and w.shape[0] == shape[0]:
        w = np.broadcast_to(w[:, None], shape)
    try:
        w = np.broadcast_to(w, shape)
    except ValueError:
        raise InputError(
            f"ensemble: weights must broadcast to (M, N) = {shape}; received shape {np.shape(weights)}"
        ) from None
    if np.any(~np.isfinite(w)) or np.any(w < 0) or np.any(w.sum(axis=0) <= 0):
        raise InputError("ensemble: weights must be finite, >= 0 and not all zero for an event")
    return w


def _resultant(stack: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    unit = stack[..., :3] / np.linalg.norm(stack[..., :3], axis=-1, keepdims=True)
    res = (w[..., None] * unit).sum(axis=0) / w.sum(axis=0)[:, None]
    return res, unit


def spherical_mean(
    directions: Any,
    weights: Any = None,
    *,
    axis: int = 0,
    on_degenerate: str = "raise",
    min_resultant: float = 1e-6,
) -> np.ndarray:
    """Normalised (weighted) mean of unit vectors: the ensemble direction per event.

    Args:
        directions: member directions, (M, N, 3) with the member axis ``axis`` (rows need
            not be unit: each is normalised first; extra columns such as κ are ignored).
            A (M, 3) array is one event.
        weights: None (equal), (M,) per member, or (M, N) per member and event (e.g. κ).
        axis: the member axis (0 or 1).
        on_degenerate: what to do where the weighted vectors cancel (R̄ < ``min_resultant``,
            e.g. antipodal members): ``"raise"`` (InputError naming the event), ``"nan"``,
            or ``"first"`` (the first member's direction, as the Keras layer does).
        min_resultant: threshold on R̄ = |Σ w u| / Σ w.

    Returns:
        (N, 3) unit vectors ((3,) for a single (M, 3) event).

    Example:
        >>> spherical_mean([[1, 0, 0], [0, 1, 0]])
        array([0.70710678, 0.70710678, 0.        ])
    """
    single = np.ndim(directions) == 2 and axis == 0
    stack = _member_stack(directions, axis)
    w = _weights(weights, stack.shape[:2])
    res, unit = _resultant(stack, w)
    r = np.linalg.norm(res, axis=1)
    bad = r < min_resultant
    out = res / np.where(bad, 1.0, r)[:, None]
    if bad.any():
        if on_degenerate == "raise":
            i = int(np.flatnonzero(bad)[0])
            raise InputError(
                f"spherical_mean: event {i} has no mean direction (members cancel: R̄ = {r[i]:.2e} < "
                f"{min_resultant:g}); pass on_degenerate='nan' or 'first' to accept such events"
            )
        if on_degenerate == "nan":
            out[bad] = np.nan
        elif on_degenerate == "first":
            out[bad] = unit[0, bad]
        else:
            raise InputError(
                f"spherical_mean: on_degenerate must be 'raise', 'nan' or 'first'; received {on_degenerate!r}"
            )
    return out[0] if single else out


def mean_resultant_length(directions: Any, weights: Any = None, *, axis: int = 0) -> np.ndarray:
    """R̄ = |Σ w_i u_i| / Σ w_i per event: 1 when members agree, → 0 when they scatter."""
    stack = _member_stack(directions, axis)
    res, _ = _resultant(stack, _weights(weights, stack.shape[:2]))
    return np.linalg.norm(res, axis=1)


def kappa_from_resultant(rbar: Any) -> np.ndarray:
    """Equivalent vMF κ of a mean resultant length: R̄(3 − R̄²)/(1 − R̄²), clipped to [1e−3, 1e6].

    The Banerjee et al. (2005) approximation to the inverse of E[cos θ] = coth κ − 1/κ on the
    2-sphere; the same formula is used in the Keras layer so that both agree.
    """
    r = np.clip(np.asarray(rbar, dtype=np.float64), 0.0, _RBAR_MAX)
    return np.clip(r * (3.0 - r * r) / (1.0 - r * r), _KAPPA_MIN, _KAPPA_MAX)


def spread_kappa(directions: Any, weights: Any = None, *, axis: int = 0) -> np.ndarray:
    """Ensemble spread as an equivalent concentration κ (uncalibrated; see the module docstring).

    Args:
        directions: (M, N, 3) member directions (member axis ``axis``), M ≥ 2.
        weights: optional member weights, as in :func:`spherical_mean`.

    Returns:
        (N,) κ in [1e−3, 1e6]: large when the members agree.
    """
    stack = _member_stack(directions, axis)
    if stack.shape[0] < 2:
        raise InputError(f"spread_kappa: the spread needs at least 2 members; received {stack.shape[0]}")
    return kappa_from_resultant(mean_resultant_length(stack, weights))


def combine_members(
    member_outputs: Sequence[Any] | Any,
    *,
    weighting: str = "uniform",
    kappa: str = "auto",
    min_resultant: float = 1e-6,
) -> np.ndarray:
    """Combine members' direction outputs exactly as :class:`~edkeras.reco.ensemble_model.SphericalMean` does, in numpy.

    Useful to combine saved predictions of separately evaluated members.

    Args:
        member_outputs: M arrays (N, 3) (direction heads) or (N, 4) (vMF heads: κ in column 3).
        weighting: ``"uniform"`` or ``"kappa"`` (vMF members only).
        kappa: one of :data:`KAPPA_MODES`.
        min_resultant: degenerate events (members cancel) take the first member's direction.

    Returns:
        (N, 3), or (N, 4) with κ in column 3 unless ``kappa="none"``.
    """
    stack = _member_stack(np.stack([np.asarray(m, dtype=np.float64) for m in member_outputs]), 0)
    has_kappa = stack.shape[-1] >= 4
    mode = _check_modes(weighting, kappa, has_kappa, stack.shape[0])
    w = stack[..., 3] if weighting == "kappa" else None
    mean = spherical_mean(stack, w, on_degenerate="first", min_resultant=min_resultant)
    if mode == "none":
        return mean
    r = mean_resultant_length(stack, w)
    k_spread = np.where(r < min_resultant, _KAPPA_MIN, kappa_from_resultant(r))
    if mode == "spread":
        k = k_spread
    else:
        member_k = np.clip(stack[..., 3], _KAPPA_MIN, _KAPPA_MAX)
        k = (
            member_k.mean(axis=0)
            if mode == "members"
            else 1.0 / ((1.0 / member_k).mean(axis=0) + 1.0 / k_spread)
        )
    return np.concatenate([mean, np.clip(k, _KAPPA_MIN, _KAPPA_MAX)[:, None]], axis=1)


def _check_modes(weighting: str, kappa: str, has_kappa: bool, n_members: int) -> str:
    if weighting not in WEIGHTINGS:
        raise InputError(f"ensemble: weighting must be one of {WEIGHTINGS}; received {weighting!r}")
    if kappa not in KAPPA_MODES:
        raise InputError(f"ensemble: kappa must be one of {KAPPA_MODES}; received {kappa!r}")
    if n_members < 2:
        raise InputError(f"ensemble: needs at least 2 members; received {n_members}")
    mode = ("combined" if has_kappa else "spread") if kappa == "auto" else kappa
    if not has_kappa and (weighting == "kappa" or mode in ("members", "combined")):
        raise InputError(
            f"ensemble: weighting={weighting!r} / kappa={mode!r} needs vMF members (direction output "
            "(N, 4) with κ in column 3); these members output (N, 3)"
        )
    return mode


@dataclass(frozen=True)
class Membership:
    """Which events train one ensemble member.

    Attributes:
        member: member index.
        seed: the member's own seed (weights initialisation, shuffling), derived from the
            ensemble seed.
        train_ids: event ids training this member (a bootstrap sample has repeats).
        holdout_ids: event ids it never saw (out-of-bag events, or the held-out fold).
    """

    member: int
    seed: int
    train_ids: np.ndarray
    holdout_ids: np.ndarray


def _ids(event_ids: Any) -> np.ndarray:
    ids = np.asarray(event_ids).ravel()
    if ids.size == 0:
        raise InputError("ensemble membership: no event ids given")
    if ids.dtype.kind not in "iu":
        raise InputError(f"ensemble membership: event ids must be integers; received dtype {ids.dtype}")
    if np.unique(ids).size != ids.size:
        raise InputError("ensemble membership: event ids must be unique")
    return np.sort(ids)


def _member_seeds(seed: int, n: int) -> list[int]:
    return [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(int(seed)).spawn(n)]


def bootstrap_membership(
    event_ids: Any, n_members: int, *, seed: int = 0, sample_fraction: float = 1.0
) -> list[Membership]:
    """Bootstrap resamples (with replacement) of the training event ids, one per member.

    Args:
        event_ids: the training split's event ids (never validation or test ids).
        n_members: number of members (≥ 1).
        seed: ensemble seed; the same seed gives the same resamples and member seeds.
        sample_fraction: resample size as a fraction of the events (1.0: classic bootstrap).

    Returns:
        One :class:`Membership` per member; ``train_ids`` sorted, with repeats;
        ``holdout_ids`` the out-of-bag ids (≈ 37 % for ``sample_fraction=1``).
    """
    ids = _ids(event_ids)
    n_members = int(n_members)
    if n_members < 1:
        raise InputError(f"bootstrap_membership: n_members must be >= 1; received {n_members}")
    if not 0 < sample_fraction <= 10:
        raise InputError(
            f"bootstrap_membership: sample_fraction must be in (0, 10]; received {sample_fraction}"
        )
    size = max(1, round(sample_fraction * ids.size))
    out = []
    for i, s in enumerate(_member_seeds(seed, n_members)):
        rng = np.random.default_rng(s)
        train = np.sort(ids[rng.integers(0, ids.size, size)])
        out.append(Membership(member=i, seed=s, train_ids=train, holdout_ids=np.setdiff1d(ids, train)))
    return out


def kfold_membership(event_ids: Any, k: int, *, seed: int = 0) -> list[Membership]:
    """k-fold split of the training event ids: member i trains on all folds but fold i.

    Args:
        event_ids: the training split's event ids.
        k: number of folds (2 ≤ k ≤ number of events).
        seed: seed of the shuffle that assigns events to folds.

    Returns:
        k :class:`Membership` objects; the ``holdout_ids`` of the members partition the ids.
    """
    ids = _ids(event_ids)
    k = int(k)
    if not 2 <= k <= ids.size:
        raise InputError(
            f"kfold_membership: k must be between 2 and the number of events ({ids.size}); received {k}"
        )
    rng = np.random.default_rng(np.random.SeedSequence(int(seed)).generate_state(1)[0])
    folds = np.array_split(rng.permutation(ids), k)
    seeds = _member_seeds(seed, k)
    return [
        Membership(
            member=i,
            seed=seeds[i],
            train_ids=np.sort(np.concatenate(folds[:i] + folds[i + 1 :])),
            holdout_ids=np.sort(folds[i]),
        )
        for i in range(k)
    ]
