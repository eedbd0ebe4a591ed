"""How well directions are reconstructed: angular error, 68 % containment, flips, with errors.

Method notes: ``docs/methods.md``, section ``edkeras.reco.metrics``.

Example:
    >>> import numpy as np
    >>> from edkeras.reco.metrics import angular_error_deg, resolution_summary
    >>> err = angular_error_deg(np.array([[0, 0, 1.0]]), np.array([[0, 1.0, 0]]))
    >>> float(err[0])
    90.0
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from edkeras.core.errors import InputError, check_fraction

__all__ = [
    "FLIP_COS",
    "angular_error_deg",
    "bootstrap_ci",
    "containment_angle",
    "es_cc_separation",
    "flip_fraction",
    "resolution_by_bin",
    "resolution_summary",
    "sense_calibration",
    "vmf_cone_cos",
]

FLIP_COS = -0.9
"""An event is "flipped" when cos θ < FLIP_COS (θ > 154.16°)."""



# --------------------------------------------------------------------------- numpy part


def _as_vectors(a: Any, what: str) -> np.ndarray:
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] < 3:
        raise InputError(f"{what}: expected an (N, 3) array of directions, got shape {np.shape(a)}")
    return arr[:, :3]


def _as_errors(errors_deg: Any, what: str = "errors_deg") -> np.ndarray:
    err = np.asarray(errors_deg, dtype=np.float64).ravel()
    if err.size == 0:
        raise InputError(f"{what}: expected at least one angular error, got an empty array")
    if not np.all(np.isfinite(err)):
        raise InputError(
            f"{what}: expected finite angles in degrees, got {int(np.sum(~np.isfinite(err)))} NaN/inf"
        )
    if err.min() < 0.0 or err.max() > 180.0 + 1e-9:
        raise InputError(
            f"{what}: expected angles in degrees within [0, 180], got range [{err.min():.4g}, {err.max():.4g}]"
        )
    return err


def angular_error_deg(pred: Any, true: Any) -> np.ndarray:
    """Angle between predicted and true directions, per event, in degrees.

    Rows need not be unit vectors: both are normalised. The angle is computed as
    ``atan2(|p × t|, p · t)``, which is accurate at 0° and 180° (where ``arccos`` of a
    rounded cosine loses precision) and always lies in [0°, 180°].

    Args:
        pred: (N, 3) predicted directions (extra columns, e.g. κ in column 3, are ignored).
        true: (N, 3) true directions.

    Returns:
        (N,) float64 angles in degrees.

    Raises:
        InputError: shapes do not match, or a row has zero length or is not finite.

    Example:
        >>> angular_error_deg([[1, 0, 0]], [[-2, 0, 0]])
        array([180.])
    """
    p = _as_vectors(pred, "pred")
    t = _as_vectors(true, "true")
    if p.shape != t.shape:
        raise InputError(
            f"angular_error_deg: pred and true must have the same shape, got {p.shape} and {t.shape}"
        )
    pn = np.linalg.norm(p, axis=1)
    tn = np.linalg.norm(t, axis=1)
    bad = ~(np.isfinite(pn) & np.isfinite(tn) & (pn > 0) & (tn > 0))
    if np.any(bad):
        raise InputError(
            f"angular_error_deg: expected non-zero finite vectors, got {int(bad.sum())} bad rows "
            f"(first at row {int(np.argmax(bad))})"
        )
    p = p / pn[:, None]
    t = t / tn[:, None]
    cross = np.linalg.norm(np.cross(p, t), axis=1)
    dot = np.clip(np.sum(p * t, axis=1), -1.0, 1.0)
    return np.degrees(np.arctan2(cross, dot))


def containment_angle(errors_deg: Any, fraction: float = 0.68) -> float:
    """The angle holding ``fraction`` of the events (θ68 for ``fraction=0.68``).

    θ68 is the angle such that 68 % of events have θ ≤ θ68: the 68th percentile of θ,
    which is the arccos of the **32nd** percentile of cos θ (cos decreases with θ).
    Taking the 68th percentile of cos θ instead is a known mistake: it returns the angle
    that only 32 % of events stay *within*, a far too optimistic "resolution" (the earlier
    system's tables are suspect on this point). Linear interpolation between order
    statistics is done in θ.

    Args:
        errors_deg: angular errors in degrees, in [0, 180].
        fraction: share of events inside the cone, in (0, 1).

    Returns:
        The containment angle in degrees.

    Example:
        >>> containment_angle(np.linspace(0, 100, 101), 0.68)
        68.0
    """
    err = _as_errors(errors_deg)
    fraction = check_fraction(fraction, "containment_angle fraction")
    return float(np.quantile(err, fraction))


def flip_fraction(errors_deg: Any) -> float:
    """Share of events that came out reversed (cos θ < −0.9, i.e. θ > 154.16°).

    Args:
        errors_deg: angular errors in degrees.

    Returns:
        A fraction in [0, 1].
    """
    err = _as_errors(errors_deg)
    return float(np.mean(np.cos(np.radians(err)) < FLIP_COS))


FLIP_PROBABILITY_EDGES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
"""Bins of predicted P(sense wrong) in :func:`sense_calibration`."""


def sense_calibration(flip_probability: Any, errors_deg: Any) -> dict[str, Any]:
    """Whether predicted head–tail probabilities come true: predicted against observed, per bin.

    The sense of an event is wrong when its angular error exceeds 90° (the believed
    direction points into the wrong hemisphere of the true one).

    Args:
        flip_probability: (N,) predicted P(sense wrong), in [0, 0.5] for the axial head.
        errors_deg: (N,) angular errors in degrees.

    Returns:
        ``{"predicted_mean", "observed", "bins": [{"lo", "hi", "n", "predicted", "observed"}]}``:
        a calibrated head has ``predicted ≈ observed`` in every bin.
    """
    f = np.asarray(flip_probability, dtype=np.float64).ravel()
    err = _as_errors(errors_deg)
    if f.shape != err.shape or not np.all(np.isfinite(f)) or np.any((f < 0) | (f > 1)):
        raise InputError(
            f"sense_calibration: flip_probability must be {err.shape} values in [0, 1]; received shape {f.shape}"
        )
    wrong = err > 90.0
    bins = []
    edges = FLIP_PROBABILITY_EDGES
    for lo, hi in itertools.pairwise(edges):
        sel = (f >= lo) & ((f < hi) if hi < edges[-1] else (f <= 1.0))
        n = int(sel.sum())
        bins.append({
            "lo": lo, "hi": hi, "n": n,
            "predicted": float(f[sel].mean()) if n else None,
            "observed": float(wrong[sel].mean()) if n else None,
        })
    return {"predicted_mean": float(f.mean()), "observed": float(wrong.mean()), "bins": bins}


def es_cc_separation(es_probability: Any, interaction: Any, efficiencies: Sequence[float] = (0.5, 0.7, 0.9)) -> dict[str, Any]:
    """How well an ES probability separates ES (1) from CC (0) events.

    Args:
        es_probability: (N,) predicted P(ES).
        interaction: (N,) true codes (1 ES, 0 CC; other codes are left out).
        efficiencies: ES efficiencies at which the CC share passing the cut is given.

    Returns:
        ``{"n_es", "n_cc", "auc", "accuracy", "cc_pass": {"0.5": …}}``: AUC is the probability that
        a random ES event scores above a random CC one (ties count half); ``cc_pass[e]`` is the
        share of CC events at or above the cut that keeps the fraction ``e`` of ES events.
    """
    p = np.asarray(es_probability, dtype=np.float64).ravel()
    t = np.asarray(interaction).ravel()
    if p.shape != t.shape or not np.all(np.isfinite(p)):
        raise InputError(
            f"es_cc_separation: es_probability must be {t.shape} finite values; received shape {p.shape}"
        )
    es, cc = p[t == 1], p[t == 0]
    if not len(es) or not len(cc):
        raise InputError(f"es_cc_separation: needs ES and CC events; received {len(es)} ES and {len(cc)} CC")
    from scipy.stats import rankdata

    ranks = rankdata(np.concatenate([es, cc]))
    auc = (ranks[: len(es)].sum() - len(es) * (len(es) + 1) / 2) / (len(es) * len(cc))
    sel = np.isin(t, (0, 1))
    return {
        "n_es": len(es), "n_cc": len(cc), "auc": float(auc),
        "accuracy": float(np.mean((p[sel] >= 0.5) == (t[sel] == 1))),
        "cc_pass": {f"{e:g}": float(np.mean(cc >= np.quantile(es, 1.0 - e))) for e in efficiencies},
    }


def bootstrap_ci(
    values: Any,
    statistic: Callable[[np.ndarray], float],
    n_boot: int = 1000,
    cl: float = 0.68,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval of ``statistic(values)``.

    Our own loop, not ``scipy.stats.bootstrap``: the resamples must stay those of ``seed`` across
    scipy versions, so that every interval the reports quote is reproduced exactly.

    Events are resampled with replacement ``n_boot`` times; the interval is the central
    ``cl`` range of the resampled statistics.

    Args:
        values: 1-D sample (e.g. angular errors in degrees).
        statistic: function of a 1-D array returning a number (e.g. ``np.median``).
        n_boot: number of bootstrap resamples (≥ 10).
        cl: confidence level, e.g. 0.68 or 0.95.
        seed: seed of the resampling, so that intervals are reproducible.

    Returns:
        ``(lo, hi)``.

    Example:
        >>> lo, hi = bootstrap_ci(np.arange(100.0), np.mean, n_boot=200)
        >>> lo < 49.5 < hi
        True
    """
    vals = np.asarray(values, dtype=np.float64).ravel()
    if vals.size == 0:
        raise InputError("bootstrap_ci: expected a non-empty sample, got an empty array")
    if int(n_boot) < 10:
        raise InputError(f"bootstrap_ci: expected n_boot >= 10, got {n_boot}")
    cl = check_fraction(cl, "bootstrap_ci cl")
    rng = np.random.default_rng(seed)
    stats = np.empty(int(n_boot))
    for i in range(int(n_boot)):
        stats[i] = statistic(vals[rng.integers(0, vals.size, vals.size)])
    lo, hi = np.quantile(stats, [(1.0 - cl) / 2.0, (1.0 + cl) / 2.0])
    return float(lo), float(hi)


def resolution_summary(
    errors_deg: Any, n_boot: int = 1000, seed: int = 0, cl: float = 0.68, fraction: float = 0.68
) -> dict[str, Any]:
    """θ68, median, mean and flip fraction of a set of angular errors, each with a bootstrap CI.

    Args:
        errors_deg: angular errors in degrees.
        n_boot: bootstrap resamples per interval.
        seed: bootstrap seed.
        cl: confidence level of the intervals.
        fraction: containment fraction of ``theta68`` (0.68 unless you need another).

    Returns:
        ``{"n", "theta68", "theta68_ci", "median", "median_ci", "mean", "mean_ci",
        "flip_fraction", "flip_fraction_ci"}``; angles in degrees, intervals as
        ``(lo, hi)`` tuples.
    """
    err = _as_errors(errors_deg)
    fraction = check_fraction(fraction, "resolution_summary fraction")
    stats: dict[str, Callable[[np.ndarray], float]] = {
        "theta68": lambda e: float(np.quantile(e, fraction)),
        "median": lambda e: float(np.median(e)),
        "mean": lambda e: float(np.mean(e)),
        "flip_fraction": lambda e: float(np.mean(np.cos(np.radians(e)) < FLIP_COS)),
    }
    out: dict[str, Any] = {"n": int(err.size)}
    for key, fn in stats.items():
        out[key] = fn(err)
        out[f"{key}_ci"] = bootstrap_ci(err, fn, n_boot=n_boot, cl=cl, seed=seed)
    return out


def resolution_by_bin(
    errors_deg: Any,
    values: Any,
    edges: Sequence[float],
    n_boot: int = 1000,
    seed: int = 0,
    cl: float = 0.68,
    min_events: int = 1,
) -> list[dict[str, Any]]:
    """:func:`resolution_summary` in bins of another quantity (e.g. energy in MeV).

    A bin holds ``lo <= value < hi`` (the last bin includes its upper edge). Bins with
    fewer than ``min_events`` events are returned with ``n`` and ``lo, hi`` only and the
    other keys set to NaN, so that a table keeps one row per bin.

    Args:
        errors_deg: (N,) angular errors in degrees.
        values: (N,) the binning quantity.
        edges: increasing bin edges (at least two).
        n_boot, seed, cl: as in :func:`resolution_summary`.
        min_events: bins with fewer events get NaN statistics.

    Returns:
        One dict per bin: ``lo, hi`` and the keys of :func:`resolution_summary`.

    Example:
        >>> rows = resolution_by_bin([10.0, 20.0, 30.0], [5.0, 15.0, 25.0], [0, 10, 30], n_boot=20)
        >>> [r["n"] for r in rows]
        [1, 2]
    """
    err = _as_errors(errors_deg)
    vals = np.asarray(values, dtype=np.float64).ravel()
    if vals.shape != err.shape:
        raise InputError(f"resolution_by_bin: values must match errors_deg, got {vals.shape} and {err.shape}")
    e = np.asarray(edges, dtype=np.float64).ravel()
    if e.size < 2 or not np.all(np.diff(e) > 0):
        raise InputError(f"resolution_by_bin: expected at least two increasing edges, got {list(e)}")
    rows: list[dict[str, Any]] = []
    nan_ci = (float("nan"), float("nan"))
    for i in range(e.size - 1):
        lo, hi = float(e[i]), float(e[i + 1])
        inside = (vals >= lo) & ((vals < hi) if i < e.size - 2 else (vals <= hi))
        n = int(inside.sum())
        if n >= max(int(min_events), 1):
            row = resolution_summary(err[inside], n_boot=n_boot, seed=seed, cl=cl)
        else:
            row = {"n": n}
            for key in ("theta68", "median", "mean", "flip_fraction"):
                row[key] = float("nan")
                row[f"{key}_ci"] = nan_ci
        rows.append({"lo": lo, "hi": hi, **row})
    return rows


def vmf_cone_cos(kappa: Any, fraction: float = 0.68) -> np.ndarray:
    """cos of the half-angle of the cone holding ``fraction`` of a von Mises–Fisher on S².

    For the vMF on the sphere, P(cos θ ≥ c) = (1 − e^{−κ(1−c)}) / (1 − e^{−2κ}), so
    1 − c = −log1p(f · expm1(−2κ)) / κ, stable from κ → 0 (uniform: c = 1 − 2f) to large κ.

    Args:
        kappa: concentration(s) κ > 0.
        fraction: probability inside the cone.

    Returns:
        cos of the cone half-angle, same shape as ``kappa``.
    """
    k = np.asarray(kappa, dtype=np.float64)
    if np.any(~np.isfinite(k)) or np.any(k <= 0):
        raise InputError("vmf_cone_cos: expected finite kappa > 0")
    fraction = check_fraction(fraction, "vmf_cone_cos fraction")
    one_minus_c = -np.log1p(fraction * np.expm1(-2.0 * k)) / k
    return np.clip(1.0 - one_minus_c, -1.0, 1.0)
