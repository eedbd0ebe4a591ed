"""Training losses for electron directions: cosine, angle, focal angle, vMF and Gaussian likelihoods.

Method notes: ``docs/methods.md``, section ``edkeras.reco.losses``.

Example:
    >>> from edkeras.reco.losses import get_loss
    >>> model.compile(optimizer="adam", loss={"direction": get_loss("vmf_nll")})
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from edkeras.core.errors import InputError

__all__ = [
    "LOSSES",
    "VMFNLL",
    "AngularLoss",
    "AxialSenseLoss",
    "CosineLoss",
    "FocalAngularLoss",
    "GaussianAngularNLL",
    "angular",
    "axial_sense",
    "cosine",
    "focal_alpha_weights",
    "focal_angular",
    "gaussian_angular_nll",
    "get_loss",
    "multitask_losses",
    "vmf_nll",
]

_EPS = 1e-12
_LOG_2PI = math.log(2.0 * math.pi)
_register = keras.saving.register_keras_serializable(package="edkeras")


def _unit(x: Any) -> Any:
    x = ops.cast(x, "float32")
    return x / ops.sqrt(ops.sum(ops.square(x), axis=-1, keepdims=True) + _EPS)


def _pair(y_true: Any, y_pred: Any) -> tuple[Any, Any]:
    return _unit(y_true[..., :3]), _unit(y_pred[..., :3])


def _angle(t: Any, p: Any) -> Any:
    """Angle between unit vectors, safe at 0 and π (|cross| gets ε inside the sqrt)."""
    cross = ops.sqrt(ops.sum(ops.square(ops.cross(p, t)), axis=-1) + _EPS)
    return ops.arctan2(cross, ops.sum(p * t, axis=-1))


def _column3(y_pred: Any, what: str) -> Any:
    if y_pred.shape[-1] is not None and y_pred.shape[-1] < 4:
        raise InputError(
            f"{what}: y_pred must be (N, 4) with the positive parameter in column 3, got {y_pred.shape}"
        )
    return ops.cast(y_pred[..., 3], "float32")


def cosine(y_true: Any, y_pred: Any) -> Any:
    """Per-event 1 − cos θ between ``y_pred[..., :3]`` and ``y_true[..., :3]`` (range [0, 2])."""
    t, p = _pair(y_true, y_pred)
    return 1.0 - ops.sum(p * t, axis=-1)


def angular(y_true: Any, y_pred: Any) -> Any:
    """Per-event angle θ in radians, ``atan2(|p × t|, p · t)``; finite value and gradient at 0 and π.

    The ε = 1e-12 inside the square root of |p × t|² biases θ by ≤ 1e-6 rad at θ = 0.
    """
    t, p = _pair(y_true, y_pred)
    return _angle(t, p)


def focal_angular(
    y_true: Any,
    y_pred: Any,
    gamma: float = 2.0,
    alpha: Sequence[float] | None = None,
    energy_edges: Sequence[float] | None = None,
) -> Any:
    """Per-event focal angular loss α(E) · (θ/π)^γ · θ (radians).

    Args:
        y_true: (N, 3) directions, or (N, 4) with the energy (MeV) in column 3 when
            ``alpha`` is given.
        y_pred: (N, 3) or (N, 4) predictions (column 3 ignored).
        gamma: focusing exponent ≥ 0 (0 gives the plain angular loss).
        alpha: one weight per energy bin (``len(energy_edges) - 1`` values), or ``None``.
        energy_edges: increasing bin edges in MeV; energies outside go to the first or
            last bin.
    """
    t, p = _pair(y_true, y_pred)
    theta = _angle(t, p)
    loss = ops.power(theta / math.pi, gamma) * theta
    if alpha is None:
        return loss
    if y_true.shape[-1] is not None and y_true.shape[-1] < 4:
        raise InputError(
            f"focal_angular: with alpha, y_true must be (N, 4) = direction and energy (MeV), got {y_true.shape}"
        )
    inner = ops.convert_to_tensor(np.asarray(energy_edges, dtype="float32")[1:-1])
    energy = ops.cast(y_true[..., 3], "float32")
    index = ops.sum(ops.cast(energy[..., None] >= inner, "int32"), axis=-1)
    weights = ops.take(ops.convert_to_tensor(np.asarray(alpha, dtype="float32")), index)
    return weights * loss


def focal_alpha_weights(energies: Any, energy_edges: Sequence[float], alpha: Sequence[float]) -> np.ndarray:
    """Per-event α weights from energy bins, for ``fit(..., sample_weight=...)`` (numpy).

    Energies below the first edge get the first bin's α, above the last edge the last's.

    Example:
        >>> focal_alpha_weights([3.0, 12.0, 80.0], [5, 10, 70], [2.0, 1.0])
        array([2., 1., 1.], dtype=float32)
    """
    edges, a = _check_alpha(alpha, energy_edges)
    idx = np.searchsorted(edges[1:-1], np.asarray(energies, dtype=np.float64), side="right")
    return a[idx].astype(np.float32)


def _check_alpha(alpha: Any, energy_edges: Any) -> tuple[np.ndarray, np.ndarray]:
    if energy_edges is None:
        raise InputError("focal_angular: 'alpha' needs 'energy_edges' (MeV), got none")
    edges = np.asarray(energy_edges, dtype=np.float64).ravel()
    a = np.asarray(alpha, dtype=np.float64).ravel()
    if edges.size < 2 or not np.all(np.diff(edges) > 0):
        raise InputError(
            f"focal_angular: 'energy_edges' must be at least two increasing values, got {list(edges)}"
        )
    if a.size != edges.size - 1 or not np.all(a >= 0):
        raise InputError(
            f"focal_angular: 'alpha' must hold {edges.size - 1} non-negative weights (one per energy bin), "
            f"got {list(a)}"
        )
    return edges, a


def vmf_nll(y_true: Any, y_pred: Any, angular_weight: float = 1.0, kappa_floor: float = 0.1) -> Any:
    """Per-event −log p(t | μ, κ) of the von Mises–Fisher density on the unit sphere S².

    p(t) = κ / (4π sinh κ) · exp(κ μ·t), so
    −log p = −log κ + log 2π + log(1 − e^{−2κ}) + κ (1 − μ·t),
    with log(1 − e^{−2κ}) = log(−expm1(−2κ)) (accurate for small κ, where the first and
    third terms tend to log 2 together) and 1 − μ·t = |μ − t|²/2 (accurate at small
    angles, where large κ needs it). Stable for κ from 1e-3 to 1e4 in float32.

    Two optional terms keep training out of the uniform density while the directions are
    still random (the gradient on μ is ∝ κ, so the likelihood alone can push κ → 0 and stall):
    ``angular_weight`` λ adds λ·θ (radians), which does not depend on κ; ``kappa_floor`` κ₀
    adds (ln κ₀ − ln κ)² where κ < κ₀, a wall that keeps κ within reach. Both off (0) give
    the pure negative log-likelihood.

    Args:
        y_true: (N, 3) true directions.
        y_pred: (N, 4): direction and κ > 0 in column 3.
        angular_weight: λ ≥ 0 of the added angular term (default 1; 0: none).
        kappa_floor: κ₀ ≥ 0 of the wall (default 0.1; 0: none).
    """
    t, p = _pair(y_true, y_pred)
    kappa = ops.maximum(_column3(y_pred, "vmf_nll"), 1e-6)
    one_minus_cos = 0.5 * ops.sum(ops.square(p - t), axis=-1)
    nll = -ops.log(kappa) + _LOG_2PI + ops.log(-ops.expm1(-2.0 * kappa)) + kappa * one_minus_cos
    if angular_weight:
        nll = nll + angular_weight * _angle(t, p)
    if kappa_floor:
        nll = nll + ops.square(ops.relu(math.log(kappa_floor) - ops.log(kappa)))
    return nll


def gaussian_angular_nll(y_true: Any, y_pred: Any, scale: str = "sigma", floor: float = 1e-4) -> Any:
    """Per-event θ²/σ² + log σ² (the proposal's Gaussian angular likelihood, θ in radians).

    Args:
        y_true: (N, 3) true directions.
        y_pred: (N, 4): direction and the positive column 3, read as σ in radians
            (``scale="sigma"``) or as a vMF concentration κ with σ² = 2/κ (``scale="kappa"``:
            the loss is minimal at σ² = E[θ²], which is 2/κ for a vMF of large κ, so the
            trained κ is the vMF κ that coverage, tables and predictions files read;
            :func:`edkeras.reco.calibration.kappa_from_sigma` is the same conversion).
        scale: ``"sigma"`` or ``"kappa"``.
        floor: smallest σ² (keeps log σ² finite).
    """
    t, p = _pair(y_true, y_pred)
    theta = _angle(t, p)
    c3 = _column3(y_pred, "gaussian_angular_nll")
    if scale == "sigma":
        var = ops.maximum(ops.square(c3), floor)
    elif scale == "kappa":
        var = ops.maximum(2.0 / ops.maximum(c3, 1e-12), floor)
    else:
        raise InputError(f"gaussian_angular_nll: 'scale' must be 'sigma' or 'kappa', got {scale!r}")
    return ops.square(theta) / var + ops.log(var)


AXIS_LOSSES = ("angle", "sin2")
"""Sign-free axis terms of :func:`axial_sense`."""


def axial_sense(
    y_true: Any, y_pred: Any, axis_loss: str = "angle", sense_weight: float = 1.0, direction_weight: float = 1.0
) -> Any:
    """Per-event axis error, head–tail (sense) cross-entropy and sense-vector angle, for the ``axial`` head.

    The track's axis is learnt without its sign: ``axis_loss="angle"`` is the angle between
    the axes, min(θ, π − θ) in radians (``atan2(|d × t|, |d · t|)``), ``"sin2"`` is
    1 − cos²θ (the Watson form). An event whose sense the network gets wrong then still
    teaches the axis, instead of pulling the direction across the sphere. The sense is a
    separate binary question: with the raw axis ``a = sgn(s) · d``, the label is
    ``a · t > 0`` and the loss the cross-entropy of sigmoid(s), ``softplus(s) − label · s``.
    The sense vector v̂ (columns 4–6, when present) is also trained as a direction, by its
    angle to the truth: the signed-direction signal that teaches the shared layers what
    decides the sense.

    Args:
        y_true: (N, 3) true directions.
        y_pred: (N, 4) or (N, 7): the believed direction d (axis turned by the sense), the
            sense logit s in column 3, and the sense vector's direction in columns 4–6 (see
            :class:`edkeras.reco.models.layers.SenseDirection`).
        axis_loss: ``"angle"`` or ``"sin2"``.
        sense_weight: w ≥ 0 of the cross-entropy.
        direction_weight: weight ≥ 0 of the sense vector's angle (ignored for (N, 4)).
    """
    if axis_loss not in AXIS_LOSSES:
        raise InputError(f"axial_sense: 'axis_loss' must be one of {', '.join(AXIS_LOSSES)}, got {axis_loss!r}")
    t, d = _pair(y_true, y_pred)
    s = _column3(y_pred, "axial_sense")
    c = ops.sum(d * t, axis=-1)
    if axis_loss == "angle":
        cross = ops.sqrt(ops.sum(ops.square(ops.cross(d, t)), axis=-1) + _EPS)
        axis = ops.arctan2(cross, ops.abs(c))
    else:
        axis = 1.0 - ops.square(c)
    label = ops.cast(ops.where(s >= 0.0, c, -c) > 0.0, "float32")
    sense = ops.softplus(s) - label * s
    loss = axis + sense_weight * sense
    if direction_weight and y_pred.shape[-1] is not None and y_pred.shape[-1] >= 7:
        loss = loss + direction_weight * _angle(t, _unit(y_pred[..., 4:7]))
    return loss


class _EdkerasLoss(keras.losses.Loss):
    """Base of the registered losses: calls the per-event function with the stored options."""

    _fn: Any = None
    _default_name = ""

    def __init__(
        self, reduction: str = "sum_over_batch_size", name: str | None = None, dtype: Any = None, **kw: Any
    ):
        super().__init__(name=name or self._default_name, reduction=reduction, dtype=dtype)
        self._options = kw

    def call(self, y_true: Any, y_pred: Any) -> Any:
        return type(self)._fn(y_true, y_pred, **self._options)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), **self._options}


@_register
class CosineLoss(_EdkerasLoss):
    """Mean of 1 − cos θ (see :func:`cosine`)."""

    _fn = staticmethod(cosine)
    _default_name = "cosine"


@_register
class AngularLoss(_EdkerasLoss):
    """Mean angle in radians (see :func:`angular`)."""

    _fn = staticmethod(angular)
    _default_name = "angular"


@_register
class FocalAngularLoss(_EdkerasLoss):
    """Mean of α(E)·(θ/π)^γ·θ (see :func:`focal_angular`).

    Args:
        gamma: focusing exponent ≥ 0.
        alpha: per-energy-bin weights (y_true then carries energy in column 3), or None.
        energy_edges: bin edges in MeV (with ``alpha``).
    """

    _fn = staticmethod(focal_angular)
    _default_name = "focal_angular"

    def __init__(
        self,
        gamma: float = 2.0,
        alpha: Sequence[float] | None = None,
        energy_edges: Sequence[float] | None = None,
        reduction: str = "sum_over_batch_size",
        name: str | None = None,
        dtype: Any = None,
    ) -> None:
        if isinstance(gamma, bool) or not isinstance(gamma, (int, float)) or gamma < 0:
            raise InputError(f"focal_angular: 'gamma' must be a number >= 0, got {gamma!r}")
        if alpha is not None:
            edges, a = _check_alpha(alpha, energy_edges)
            alpha, energy_edges = [float(v) for v in a], [float(v) for v in edges]
        elif energy_edges is not None:
            raise InputError("focal_angular: 'energy_edges' given without 'alpha'")
        super().__init__(
            reduction=reduction,
            name=name,
            dtype=dtype,
            gamma=float(gamma),
            alpha=alpha,
            energy_edges=energy_edges,
        )


@_register
class VMFNLL(_EdkerasLoss):
    """Mean von Mises–Fisher negative log-likelihood (see :func:`vmf_nll`).

    Args:
        angular_weight: λ of the added λ·θ term that keeps directions learning while κ is
            small (default 1; 0 for the pure NLL, which can collapse to the uniform density).
        kappa_floor: κ₀ of the wall that keeps κ from sinking out of reach while the
            directions are still random (default 0.1; 0: none).
    """

    _fn = staticmethod(vmf_nll)
    _default_name = "vmf_nll"

    def __init__(
        self,
        angular_weight: float = 1.0,
        kappa_floor: float = 0.1,
        reduction: str = "sum_over_batch_size",
        name: str | None = None,
        dtype: Any = None,
    ) -> None:
        for key, v in (("angular_weight", angular_weight), ("kappa_floor", kappa_floor)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
                raise InputError(f"vmf_nll: {key!r} must be a number >= 0, got {v!r}")
        super().__init__(
            reduction=reduction,
            name=name,
            dtype=dtype,
            angular_weight=float(angular_weight),
            kappa_floor=float(kappa_floor),
        )


@_register
class GaussianAngularNLL(_EdkerasLoss):
    """Mean of θ²/σ² + log σ² (see :func:`gaussian_angular_nll`).

    Args:
        scale: column 3 of y_pred is ``"sigma"`` (radians) or ``"kappa"`` (σ² = 2/κ).
        floor: smallest σ².
    """

    _fn = staticmethod(gaussian_angular_nll)
    _default_name = "gaussian_angular_nll"

    def __init__(
        self,
        scale: str = "sigma",
        floor: float = 1e-4,
        reduction: str = "sum_over_batch_size",
        name: str | None = None,
        dtype: Any = None,
    ) -> None:
        if scale not in ("sigma", "kappa"):
            raise InputError(f"gaussian_angular_nll: 'scale' must be 'sigma' or 'kappa', got {scale!r}")
        if isinstance(floor, bool) or not isinstance(floor, (int, float)) or floor <= 0:
            raise InputError(f"gaussian_angular_nll: 'floor' must be a number > 0, got {floor!r}")
        super().__init__(reduction=reduction, name=name, dtype=dtype, scale=scale, floor=float(floor))


@_register
class AxialSenseLoss(_EdkerasLoss):
    """Mean of the axis error, w × the sense cross-entropy and the sense vector's angle (see :func:`axial_sense`).

    Args:
        axis_loss: ``"angle"`` (default) or ``"sin2"``.
        sense_weight: w ≥ 0 (default 1).
        direction_weight: weight ≥ 0 of the sense vector's angle (default 1).
    """

    _fn = staticmethod(axial_sense)
    _default_name = "axial_sense"

    def __init__(
        self,
        axis_loss: str = "angle",
        sense_weight: float = 1.0,
        direction_weight: float = 1.0,
        reduction: str = "sum_over_batch_size",
        name: str | None = None,
        dtype: Any = None,
    ) -> None:
        if axis_loss not in AXIS_LOSSES:
            raise InputError(f"axial_sense: 'axis_loss' must be one of {', '.join(AXIS_LOSSES)}, got {axis_loss!r}")
        for key, v in (("sense_weight", sense_weight), ("direction_weight", direction_weight)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
                raise InputError(f"axial_sense: {key!r} must be a number >= 0, got {v!r}")
        super().__init__(
            reduction=reduction, name=name, dtype=dtype, axis_loss=axis_loss, sense_weight=float(sense_weight),
            direction_weight=float(direction_weight),
        )


LOSSES: dict[str, type[_EdkerasLoss]] = {
    "cosine": CosineLoss,
    "angular": AngularLoss,
    "focal_angular": FocalAngularLoss,
    "vmf_nll": VMFNLL,
    "gaussian_angular_nll": GaussianAngularNLL,
    "axial_sense": AxialSenseLoss,
}
"""Loss name → registered loss class."""


def get_loss(name: str, **kwargs: Any) -> keras.losses.Loss:
    """The direction loss ``name`` with options ``kwargs`` (e.g. ``gamma`` for ``focal_angular``).

    Raises:
        InputError: unknown name (lists the valid ones), unknown option (lists the valid
            options of that loss) or bad value.
    """
    if name not in LOSSES:
        raise InputError(f"loss: unknown loss {name!r}; valid losses: {', '.join(LOSSES)}")
    cls = LOSSES[name]
    valid = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "kw")]
    unknown = sorted(set(kwargs) - set(valid))
    if unknown:
        raise InputError(f"loss {name!r}: unknown option {unknown[0]!r}; valid options: {', '.join(valid)}")
    return cls(**kwargs)


def multitask_losses(
    direction: str = "angular",
    *,
    direction_weight: float = 1.0,
    energy_weight: float = 0.1,
    interaction_weight: float = 0.2,
    **direction_options: Any,
) -> dict[str, dict[str, Any]]:
    """``loss`` and ``loss_weights`` for the multitask head, for ``model.compile(**...)``.

    Direction: the loss ``direction`` (any name of :data:`LOSSES` that takes (N, 3)
    predictions); energy: mean squared log error (relative error in MeV); interaction:
    binary cross-entropy on the ES probability (give events of unknown interaction,
    −1 in the event file, ``sample_weight`` 0 — or drop them).

    Example:
        >>> model.compile(optimizer="adam", **multitask_losses("angular", energy_weight=0.05))
    """
    weights = {"direction": direction_weight, "energy": energy_weight, "interaction": interaction_weight}
    for key, w in weights.items():
        if isinstance(w, bool) or not isinstance(w, (int, float)) or w < 0:
            raise InputError(f"multitask_losses: '{key}_weight' must be a number >= 0, got {w!r}")
    if direction in ("vmf_nll", "gaussian_angular_nll", "axial_sense"):
        raise InputError(
            f"multitask_losses: the multitask head predicts (N, 3) directions; {direction!r} needs (N, 4)"
        )
    return {
        "loss": {
            "direction": get_loss(direction, **direction_options),
            "energy": keras.losses.MeanSquaredLogarithmicError(name="energy_msle"),
            "interaction": keras.losses.BinaryCrossentropy(name="interaction_bce"),
        },
        "loss_weights": {k: float(v) for k, v in weights.items()},
    }
