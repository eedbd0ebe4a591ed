"""Keras metrics of direction networks: the mean angular error and the vMF cone coverage.

The per-sample functions are on ``keras.ops`` (every backend); the metric classes wrap them.
Their numpy twins are in :mod:`edkeras.reco.metrics`.

Method notes: ``docs/methods.md``, section ``edkeras.reco.metrics``.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from edkeras.core.errors import check_fraction

__all__ = ["AngularErrorDeg", "VMFConeCoverage", "keras_angular_error_deg", "keras_vmf_cone_coverage"]


def _unit(x: Any) -> Any:
    return x / ops.sqrt(ops.sum(ops.square(x), axis=-1, keepdims=True) + 1e-12)

def keras_angular_error_deg(y_true: Any, y_pred: Any) -> Any:
    """Per-sample angle between ``y_pred[..., :3]`` and ``y_true[..., :3]``, degrees (keras.ops).

    Works for (N, 3) direction and (N, 4) vMF predictions (column 3, κ, is ignored).
    Computed as ``atan2(|p × t|, p · t)``: exact at 0° and 180°.
    """
    t = _unit(ops.cast(y_true[..., :3], "float32"))
    p = _unit(ops.cast(y_pred[..., :3], "float32"))
    cross = ops.sqrt(ops.sum(ops.square(ops.cross(p, t)), axis=-1))
    dot = ops.sum(p * t, axis=-1)
    return ops.arctan2(cross, dot) * (180.0 / np.pi)

def keras_vmf_cone_coverage(y_true: Any, y_pred: Any, fraction: float = 0.68) -> Any:
    """1 where the true direction lies inside the predicted vMF cone holding ``fraction``, else 0.

    ``y_pred`` is (N, 4): unit direction and κ > 0 in column 3 (see :func:`~edkeras.reco.metrics.vmf_cone_cos`).
    """
    t = _unit(ops.cast(y_true[..., :3], "float32"))
    p = _unit(ops.cast(y_pred[..., :3], "float32"))
    kappa = ops.maximum(ops.cast(y_pred[..., 3], "float32"), 1e-6)
    one_minus_cos = 1.0 - ops.sum(p * t, axis=-1)
    cone = -ops.log1p(fraction * ops.expm1(-2.0 * kappa)) / kappa
    return ops.cast(one_minus_cos <= cone, "float32")

@keras.saving.register_keras_serializable(package="edkeras")
class AngularErrorDeg(keras.metrics.MeanMetricWrapper):
    """Mean angle between predicted and true directions, in degrees.

    Example:
        >>> model.compile(loss=get_loss("angular"), metrics=[AngularErrorDeg()])
    """

    def __init__(self, name: str = "angular_error_deg", dtype: Any = None) -> None:
        super().__init__(fn=keras_angular_error_deg, name=name, dtype=dtype)
        self._direction = "down"

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype}

@keras.saving.register_keras_serializable(package="edkeras")
class VMFConeCoverage(keras.metrics.MeanMetricWrapper):
    """Share of events whose true direction lies in the predicted vMF cone holding ``fraction``.

    Args:
        fraction: probability content of the cone (0.68 or 0.90 usually).
        name: defaults to ``vmf_coverage_68`` / ``vmf_coverage_90``.
    """

    def __init__(self, fraction: float = 0.68, name: str | None = None, dtype: Any = None) -> None:
        fraction = check_fraction(fraction, "VMFConeCoverage fraction")
        if name is None:
            name = f"vmf_coverage_{round(100 * fraction)}"
        super().__init__(fn=keras_vmf_cone_coverage, name=name, dtype=dtype, fraction=fraction)
        self.fraction = fraction

    def get_config(self) -> dict[str, Any]:
        return {"fraction": self.fraction, "name": self.name, "dtype": self.dtype}
