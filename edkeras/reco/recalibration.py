"""Recalibration of a network's per-event κ on the validation split: a power law or an isotonic map, chosen by held-out likelihood.

Method notes: ``docs/methods.md``, section ``edkeras.reco.calibration``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import isotonic_regression

from edkeras.core.errors import InputError
from edkeras.core.schema import record_from_dict
from edkeras.core.vmf import _KAPPA_MAX, _KAPPA_MIN, cos_logpdf, kappa_from_mean_cos, mean_cos
from edkeras.reco.calibration import _errors

__all__ = ['KappaCalibration', 'fit_kappa_calibration', 'fit_kappa_isotonic', 'fit_kappa_power']


@dataclass(frozen=True)
class KappaCalibration:
    """A monotone map κ → κ' fitted on validation events (:func:`fit_kappa_calibration`).

    Attributes:
        method: ``"power"`` (κ' = a κ^b) or ``"isotonic"`` (piecewise-linear in log κ).
        a, b: the power-law parameters (``power``).
        log_kappa_in, log_kappa_out: the isotonic knots (``isotonic``), non-decreasing.
        n_fit: number of events it was fitted on.
        log_likelihood: mean vMF log-likelihood per event at the fit (before: ``log_likelihood_raw``).
    """

    method: str
    a: float = 1.0
    b: float = 1.0
    log_kappa_in: tuple[float, ...] = field(default_factory=tuple)
    log_kappa_out: tuple[float, ...] = field(default_factory=tuple)
    n_fit: int = 0
    log_likelihood: float = math.nan
    log_likelihood_raw: float = math.nan

    def apply(self, kappa: Any) -> np.ndarray:
        """The recalibrated κ' for κ (any shape), clipped into [1e−3, 1e6]."""
        k = np.asarray(kappa, dtype=np.float64)
        if np.any(~np.isfinite(k)) or np.any(k < 0):
            raise InputError("KappaCalibration.apply: kappa must be finite and >= 0")
        lk = np.log(np.clip(k, _KAPPA_MIN, _KAPPA_MAX))
        if self.method == "power":
            out = np.exp(np.log(self.a) + self.b * lk)
        elif self.method == "isotonic":
            out = np.exp(np.interp(lk, self.log_kappa_in, self.log_kappa_out))
        else:
            raise InputError(
                f"KappaCalibration: unknown method {self.method!r}; expected 'power' or 'isotonic'"
            )
        return np.clip(out, _KAPPA_MIN, _KAPPA_MAX)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (for ``metrics.json`` or a run folder)."""
        return {
            "method": self.method,
            "a": self.a,
            "b": self.b,
            "log_kappa_in": list(self.log_kappa_in),
            "log_kappa_out": list(self.log_kappa_out),
            "n_fit": self.n_fit,
            "log_likelihood": self.log_likelihood,
            "log_likelihood_raw": self.log_likelihood_raw,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> KappaCalibration:
        """Inverse of :meth:`to_dict`; unknown keys and wrong types are refused."""
        return record_from_dict(cls, dict(data), where="KappaCalibration")


def _fit_inputs(kappa: Any, errors_deg: Any) -> tuple[np.ndarray, np.ndarray]:
    err = _errors(errors_deg)
    k = np.asarray(kappa, dtype=np.float64).ravel()
    if k.size != err.size:
        raise InputError(f"kappa calibration: {k.size} kappa values for {err.size} errors")
    if np.any(~np.isfinite(k)) or np.any(k < 0):
        raise InputError("kappa calibration: kappa must be finite and >= 0")
    return np.clip(k, _KAPPA_MIN, _KAPPA_MAX), np.cos(np.radians(err))


def _mean_loglik(cos: np.ndarray, kappa: np.ndarray) -> float:

    return float(np.mean(cos_logpdf(cos, kappa)))


def fit_kappa_power(kappa: Any, errors_deg: Any, *, fit_exponent: bool = True) -> KappaCalibration:
    """Fit κ' = a κ^b by maximum vMF likelihood of the true directions (validation events).

    The log-likelihood of event i is log p(cos θ_i | κ'_i) = κ' cos θ − log(2 sinh κ'/κ');
    its derivative in κ' is cos θ − (coth κ' − 1/κ'), so the fit makes the mean cos θ of
    the events match the model's on average (L-BFGS-B with the analytic gradient).

    Args:
        kappa: (N,) predicted κ on validation events.
        errors_deg: (N,) actual angular errors of those events.
        fit_exponent: fit b too (else b = 1: a pure scale).

    Returns:
        A ``KappaCalibration(method="power")``.
    """
    from scipy.optimize import minimize


    k, cos = _fit_inputs(kappa, errors_deg)
    lk = np.log(k)

    def nll(params: np.ndarray) -> tuple[float, np.ndarray]:
        log_a = params[0]
        b = params[1] if fit_exponent else 1.0
        kp = np.clip(np.exp(log_a + b * lk), _KAPPA_MIN, _KAPPA_MAX)

        ll = cos_logpdf(cos, kp)
        dll_dk = cos - mean_cos(kp)
        g_log_a = -np.mean(dll_dk * kp)
        grad = [g_log_a] + ([-np.mean(dll_dk * kp * lk)] if fit_exponent else [])
        return -float(np.mean(ll)), np.asarray(grad)

    x0 = np.array([0.0, 1.0]) if fit_exponent else np.array([0.0])
    bounds = [(-20.0, 20.0), (0.05, 5.0)] if fit_exponent else [(-20.0, 20.0)]
    res = minimize(nll, x0, jac=True, method="L-BFGS-B", bounds=bounds)
    a = float(np.exp(res.x[0]))
    b = float(res.x[1]) if fit_exponent else 1.0
    cal = KappaCalibration(method="power", a=a, b=b, n_fit=int(k.size))
    return KappaCalibration(
        method="power",
        a=a,
        b=b,
        n_fit=int(k.size),
        log_likelihood=_mean_loglik(cos, cal.apply(k)),
        log_likelihood_raw=_mean_loglik(cos, k),
    )


def fit_kappa_isotonic(kappa: Any, errors_deg: Any, *, n_bins: int = 20) -> KappaCalibration:
    """Fit a monotone (non-decreasing) map κ → κ' by isotonic regression of the mean cos θ.

    Events are sorted by κ and split into ``n_bins`` equal-count groups; each group's mean
    cos θ is made non-decreasing by pool-adjacent-violators (weighted by group size), turned
    into κ by inverting E[cos θ] = coth κ − 1/κ (:func:`edkeras.core.vmf.kappa_from_mean_cos`),
    and the map interpolates log κ' linearly in log κ between the groups' median κ.

    Args:
        kappa: (N,) predicted κ on validation events.
        errors_deg: (N,) their actual angular errors.
        n_bins: number of groups (≥ 2; fewer if there are fewer events).

    Returns:
        A ``KappaCalibration(method="isotonic")``.
    """

    k, cos = _fit_inputs(kappa, errors_deg)
    n_bins = max(2, min(int(n_bins), k.size))
    order = np.argsort(k, kind="stable")
    groups = np.array_split(order, n_bins)
    mean_cos = np.array([cos[g].mean() for g in groups])
    sizes = np.array([g.size for g in groups], dtype=np.float64)
    iso = isotonic_regression(mean_cos, weights=sizes).x
    k_out = np.clip(np.asarray(kappa_from_mean_cos(np.clip(iso, 1e-6, 1.0 - 1e-9))), _KAPPA_MIN, _KAPPA_MAX)
    lk_in = np.log(np.array([np.median(k[g]) for g in groups]))
    # equal medians (ties) would break interpolation: keep the knots strictly increasing
    lk_in = np.maximum.accumulate(lk_in + np.arange(lk_in.size) * 1e-12)
    lk_out = np.maximum.accumulate(np.log(k_out))
    cal = KappaCalibration(
        method="isotonic",
        log_kappa_in=tuple(lk_in.tolist()),
        log_kappa_out=tuple(lk_out.tolist()),
        n_fit=int(k.size),
    )
    return KappaCalibration(
        method="isotonic",
        log_kappa_in=cal.log_kappa_in,
        log_kappa_out=cal.log_kappa_out,
        n_fit=int(k.size),
        log_likelihood=_mean_loglik(cos, cal.apply(k)),
        log_likelihood_raw=_mean_loglik(cos, k),
    )


def fit_kappa_calibration(
    kappa: Any, errors_deg: Any, *, method: str = "power", **options: Any
) -> KappaCalibration:
    """Fit a recalibration of κ on validation events; apply it to test events with ``.apply``.

    Args:
        kappa: (N,) predicted κ (validation split only: never the test split).
        errors_deg: (N,) actual angular errors of the same events.
        method: ``"power"`` (:func:`fit_kappa_power`; option ``fit_exponent``) or
            ``"isotonic"`` (:func:`fit_kappa_isotonic`; option ``n_bins``).

    Returns:
        A :class:`KappaCalibration`.
    """
    if method == "power":
        return fit_kappa_power(kappa, errors_deg, **options)
    if method == "isotonic":
        return fit_kappa_isotonic(kappa, errors_deg, **options)
    raise InputError(f"fit_kappa_calibration: method must be 'power' or 'isotonic'; received {method!r}")
