"""The head–tail choice of the classical fit: which end of a fitted track axis the electron started from ("brems flipping").

A logistic model on charge-profile features of the three planes, fitted on events with known
truth (:func:`~edkeras.reco.classical.fit_head_tail_model`) and applied by :func:`edkeras.reco.classical.fit_classical`.

Method notes: ``docs/methods.md``, section ``edkeras.reco.classical``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from edkeras.core.errors import InputError
from edkeras.core.schema import record_from_dict

__all__ = [
    "HeadTailModel",
]


@dataclass(frozen=True)
class HeadTailModel:
    """A linear head–tail decision: score = Σ_j (w_j + v_j z) F_j, reverse the axis if < 0.

    F_j are the plane-averaged :data:`HEAD_TAIL_FEATURES`, z = ln(E_X / ``reference_mev``)
    with E_X = (X-plane charge) / ``adc_per_mev_x``, so that the weight of a feature may
    change with the electron's energy (a short, curly track and a showering one end
    differently).

    Attributes:
        weights: w_j, one per feature.
        energy_weights: v_j, one per feature.
        adc_per_mev_x: ADC per MeV on the X plane (≈ 3,900 in the simulation and in DUNE TPs).
        reference_mev: energy at which z = 0.
        n_fit: events it was fitted on (0: set by hand).
        accuracy: share of those events whose sense it chose right.
    """

    weights: tuple[float, ...]
    energy_weights: tuple[float, ...]
    adc_per_mev_x: float = 3900.0
    reference_mev: float = 20.0
    n_fit: int = 0
    accuracy: float = float("nan")

    def __post_init__(self) -> None:
        nf = len(HEAD_TAIL_FEATURES)
        if len(self.weights) != nf or len(self.energy_weights) != nf:
            raise InputError(
                f"HeadTailModel: weights and energy_weights need {nf} numbers each ({', '.join(HEAD_TAIL_FEATURES)}); "
                f"received {len(self.weights)} and {len(self.energy_weights)}"
            )

    def design(self, features: np.ndarray, charge_x: np.ndarray) -> np.ndarray:
        """The regression inputs [F, F·z] (N, 2F)."""
        e_x = np.maximum(np.asarray(charge_x, dtype=np.float64), 1e-9) / self.adc_per_mev_x
        z = np.log(e_x / self.reference_mev)
        return np.concatenate([features, features * z[:, None]], axis=1)

    def score(self, features: np.ndarray, charge_x: np.ndarray) -> np.ndarray:
        """The decision score (N,); positive keeps the axis as it is."""
        return self.design(features, charge_x) @ np.concatenate([self.weights, self.energy_weights])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "weights": list(self.weights),
            "energy_weights": list(self.energy_weights),
            "adc_per_mev_x": self.adc_per_mev_x,
            "reference_mev": self.reference_mev,
            "n_fit": self.n_fit,
            "accuracy": self.accuracy,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HeadTailModel:
        """Inverse of :meth:`to_dict`; unknown keys and wrong types are refused."""
        return record_from_dict(cls, dict(data), where="HeadTailModel")


def _weighted_quantiles(t: np.ndarray, w: np.ndarray, fractions: tuple[float, ...]) -> list[np.ndarray]:
    """Per-row weighted quantiles of t (N, P) with weights w (N, P) ≥ 0 (NaN where no weight)."""
    order = np.argsort(t, axis=1)
    ts = np.take_along_axis(t, order, axis=1)
    cw = np.cumsum(np.take_along_axis(w, order, axis=1), axis=1)
    total = cw[:, -1:]
    has = total[:, 0] > 0
    cw = cw / np.where(total > 0, total, 1.0)
    out = []
    for f in fractions:
        idx = np.argmax(cw >= f, axis=1)
        out.append(np.where(has, ts[np.arange(len(ts)), idx], np.nan))
    return out


def _head_tail_features(
    q: np.ndarray,
    xs: np.ndarray,
    ws: np.ndarray,
    fit: dict[str, np.ndarray],
    u: np.ndarray,
    corridor_cm: float,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Head–tail features of one plane for the oriented projected axis u (N, 2) (not unit).

    Every feature changes sign when u is reversed (see :data:`HEAD_TAIL_FEATURES`).

    Returns ``(features (N, 4), geometry)`` where geometry holds the along-axis coordinate
    ``t`` (N, T, C), the perpendicular distance ``n``, and the track extent ``lo, hi``.
    """
    n_ev = q.shape[0]
    length = np.linalg.norm(u, axis=1)
    uhat = u / np.where(length > 0, length, 1.0)[:, None]
    dx = xs[None, :, None] - fit["mx"][:, None, None]
    dw = ws[None, None, :] - fit["mw"][:, None, None]
    t = dx * uhat[:, 0, None, None] + dw * uhat[:, 1, None, None]
    n = -dx * uhat[:, 1, None, None] + dw * uhat[:, 0, None, None]
    core = np.abs(n) <= corridor_cm
    qcore = q * core
    lo, hi = _weighted_quantiles(t.reshape(n_ev, -1), qcore.reshape(n_ev, -1), (0.05, 0.95))
    ext = hi - lo
    good = np.isfinite(ext) & (ext > 0)
    lo = np.where(good, lo, 0.0)
    hi = np.where(good, hi, 0.0)
    ext = np.where(good, ext, 1.0)
    mid = 0.5 * (lo + hi)
    b = (slice(None), None, None)
    qtot = np.maximum(fit["Q"], 1e-12)
    first = (qcore * (t < (lo + ext / 3.0)[b])).sum(axis=(1, 2))
    last = (qcore * (t > (hi - ext / 3.0)[b])).sum(axis=(1, 2))
    f_profile = (last - first) / np.maximum(last + first, 1e-12)
    off = q * ~core
    f_displaced = ((off * (t > mid[b])).sum(axis=(1, 2)) - (off * (t < mid[b])).sum(axis=(1, 2))) / qtot
    wide = q * (np.abs(n) <= 3.0 * corridor_cm)
    late_w = wide * (t > mid[b])
    early_w = wide * (t <= mid[b])
    r_late = np.sqrt((late_w * n * n).sum(axis=(1, 2)) / np.maximum(late_w.sum(axis=(1, 2)), 1e-12))
    r_early = np.sqrt((early_w * n * n).sum(axis=(1, 2)) / np.maximum(early_w.sum(axis=(1, 2)), 1e-12))
    f_spread = (r_late - r_early) / np.maximum(r_late + r_early, 1e-12)
    beyond_end = (q * (t > (hi + corridor_cm)[b])).sum(axis=(1, 2))
    before_start = (q * (t < (lo - corridor_cm)[b])).sum(axis=(1, 2))
    f_beyond = (beyond_end - before_start) / qtot
    feats = np.stack([f_profile, f_displaced, f_spread, f_beyond], axis=1)
    feats = np.where((good & (length > 0))[:, None], feats, 0.0)
    return feats, {"t": t, "n": n, "lo": lo, "hi": hi, "good": good}


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


HEAD_TAIL_FEATURES: tuple[str, ...] = ("profile", "displaced", "spread", "beyond")
"""Head–tail features, each positive when the axis points from the start to the end of
the track in the picture it describes (see the module docstring)."""
