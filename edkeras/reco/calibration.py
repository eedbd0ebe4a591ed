"""Is the per-event uncertainty of a direction network honest? Predicted cones, coverage, calibration tables, selection.

Method notes: ``docs/methods.md``, section ``edkeras.reco.calibration``.

Example:
    >>> from edkeras.reco.calibration import coverage, calibration_table
    >>> from edkeras.reco.recalibration import fit_kappa_calibration
    >>> coverage(val_err, kappa=val_kappa)["coverage_68"]
    >>> cal = fit_kappa_calibration(val_kappa, val_err, method="power")   # validation only
    >>> calibration_table(test_err, kappa=cal.apply(test_kappa))
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from edkeras.core.errors import InputError, check_fraction
from edkeras.core.vmf import cone_angle_deg, cos_cdf, kappa_from_sigma
from edkeras.reco.energy_bins import LIKELIHOOD_EDGES, bin_label
from edkeras.reco.metrics import bootstrap_ci, flip_fraction

__all__ = [
    "SIGMA_MODELS",
    "calibration_by_energy",
    "calibration_summary",
    "calibration_table",
    "coverage",
    "kappa_from_sigma",
    "predicted_cone_deg",
    "selection_curve",
    "sigma_cone_deg",
]

SIGMA_MODELS = ("rayleigh", "half_normal")
"""How a Gaussian σ is read: θ Rayleigh with σ² = E[θ²] (2-D Gaussian on the sphere, the
default), or θ half-normal with scale σ."""

# ------------------------------------------------------------------ predicted cones


def sigma_cone_deg(
    sigma: Any, fraction: float = 0.68, *, model: str = "rayleigh", unit: str = "rad"
) -> np.ndarray:
    """Half-angle (degrees) of the cone holding ``fraction`` of a Gaussian angular error σ.

    Args:
        sigma: predicted σ (> 0), per event.
        fraction: probability inside the cone, in (0, 1).
        model: ``"rayleigh"``: θ is the length of a 2-D Gaussian tangent vector with
            E[θ²] = σ² (cone = σ √(−ln(1 − f))); ``"half_normal"``: θ ~ |N(0, σ²)|
            (cone = σ √2 erf⁻¹(f)).
        unit: ``"rad"`` or ``"deg"``, the unit of ``sigma``.

    Returns:
        Cone half-angles in degrees (capped at 180°).
    """
    from scipy.special import erfinv

    s = np.asarray(sigma, dtype=np.float64)
    f = check_fraction(fraction, "calibration fraction")
    if np.any(~np.isfinite(s)) or np.any(s <= 0):
        raise InputError("sigma_cone_deg: sigma must be finite and > 0")
    if unit not in ("rad", "deg"):
        raise InputError(f"sigma_cone_deg: unit must be 'rad' or 'deg'; received {unit!r}")
    s_deg = np.degrees(s) if unit == "rad" else s
    if model == "rayleigh":
        cone = s_deg * math.sqrt(-math.log1p(-f))
    elif model == "half_normal":
        cone = s_deg * math.sqrt(2.0) * float(erfinv(f))
    else:
        raise InputError(f"sigma_cone_deg: model must be one of {SIGMA_MODELS}; received {model!r}")
    return np.minimum(cone, 180.0)


def predicted_cone_deg(
    *,
    kappa: Any = None,
    sigma: Any = None,
    fraction: float = 0.68,
    sigma_model: str = "rayleigh",
    sigma_unit: str = "rad",
) -> np.ndarray:
    """Predicted cone half-angle (degrees) holding ``fraction``, from κ (vMF) or σ (Gaussian).

    Exactly one of ``kappa`` and ``sigma`` must be given.
    """
    if (kappa is None) == (sigma is None):
        raise InputError(
            "calibration: give exactly one of kappa (vMF) or sigma (Gaussian); received "
            f"{'both' if kappa is not None else 'neither'}"
        )
    if kappa is not None:

        k = np.asarray(kappa, dtype=np.float64).ravel()
        if np.any(~np.isfinite(k)) or np.any(k < 0):
            raise InputError("calibration: kappa must be finite and >= 0")
        return np.atleast_1d(cone_angle_deg(k, fraction))
    return np.atleast_1d(sigma_cone_deg(np.ravel(sigma), fraction, model=sigma_model, unit=sigma_unit))


# ------------------------------------------------------------------ helpers


def _errors(errors_deg: Any, n: int | None = None, what: str = "errors_deg") -> np.ndarray:
    err = np.asarray(errors_deg, dtype=np.float64).ravel()
    if err.size == 0:
        raise InputError(f"calibration: {what} is empty; expected one angular error per event")
    if np.any(~np.isfinite(err)) or err.min() < 0 or err.max() > 180.0 + 1e-9:
        raise InputError(f"calibration: {what} must be finite angles in [0, 180] degrees")
    if n is not None and err.size != n:
        raise InputError(f"calibration: {what} has {err.size} values; expected {n} (one per event)")
    return np.minimum(err, 180.0)


def _key(fraction: float) -> str:
    return f"{round(100 * fraction)}"


def _uncertainty(kappa: Any, sigma: Any, n: int, sigma_model: str, sigma_unit: str) -> dict[str, Any]:
    """The per-event uncertainty as a closure giving cones, and a 'confidence' (higher = better)."""
    if (kappa is None) == (sigma is None):
        raise InputError(
            "calibration: give exactly one of kappa (vMF) or sigma (Gaussian); received "
            f"{'both' if kappa is not None else 'neither'}"
        )
    arr = np.asarray(kappa if kappa is not None else sigma, dtype=np.float64).ravel()
    if arr.size != n:
        raise InputError(
            f"calibration: {'kappa' if kappa is not None else 'sigma'} has {arr.size} values; expected {n}"
        )

    def cones(fraction: float, index: Any = slice(None)) -> np.ndarray:
        if kappa is not None:
            return predicted_cone_deg(kappa=arr[index], fraction=fraction)
        return predicted_cone_deg(
            sigma=arr[index], fraction=fraction, sigma_model=sigma_model, sigma_unit=sigma_unit
        )

    def cdf(theta_deg: float, index: Any = slice(None)) -> np.ndarray:
        """Per-event predicted P(θ ≤ theta_deg)."""
        if kappa is not None:

            return 1.0 - cos_cdf(np.cos(np.radians(theta_deg)), arr[index])
        s = arr[index] if sigma_unit == "deg" else np.degrees(arr[index])
        if sigma_model == "rayleigh":
            return -np.expm1(-((theta_deg / s) ** 2))
        from scipy.special import erf

        return erf(theta_deg / (s * np.sqrt(2.0)))

    confidence = arr if kappa is not None else -arr
    return {
        "cones": cones,
        "cdf": cdf,
        "confidence": confidence,
        "name": "kappa" if kappa is not None else "sigma",
        "values": arr,
    }


def _mixture_quantile(u: dict[str, Any], index: Any, fraction: float) -> float:
    """The angle holding ``fraction`` of the events' *predicted* distributions together.

    For a group of events with different κ, this (not the median of their cones) is what
    the group's actual θ68 should equal: it solves mean_i P(θ ≤ t | κ_i) = fraction.
    """
    lo, hi = 0.0, 180.0
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        if float(np.mean(u["cdf"](mid, index))) < fraction:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def _coverage_entry(err: np.ndarray, cone: np.ndarray, fraction: float) -> dict[str, float]:
    n = err.size
    if n == 0:
        return {"coverage": math.nan, "coverage_err": math.nan}
    p = float(np.mean(err <= cone))
    return {"coverage": p, "coverage_err": math.sqrt(fraction * (1.0 - fraction) / n)}


# ------------------------------------------------------------------ coverage and tables


def coverage(
    errors_deg: Any,
    *,
    kappa: Any = None,
    sigma: Any = None,
    fractions: Sequence[float] = (0.68, 0.90),
    sigma_model: str = "rayleigh",
    sigma_unit: str = "rad",
) -> dict[str, Any]:
    """Share of events whose true direction lies inside their own predicted cone.

    Args:
        errors_deg: (N,) actual angular errors, degrees.
        kappa: (N,) predicted vMF concentrations, or
        sigma: (N,) predicted Gaussian σ (see :func:`sigma_cone_deg`).
        fractions: nominal cone contents to check.

    Returns:
        ``{"n": N, "coverage_68": …, "coverage_68_err": …, "coverage_90": …, …}`` where
        ``_err`` is the binomial standard error √(f(1 − f)/N) of a calibrated model's
        coverage, so ``|coverage − f| / err`` is a pull.
    """
    err = _errors(errors_deg)
    u = _uncertainty(kappa, sigma, err.size, sigma_model, sigma_unit)
    out: dict[str, Any] = {"n": int(err.size)}
    for f in fractions:
        f = check_fraction(f, "calibration fraction")
        c = _coverage_entry(err, u["cones"](f), f)
        out[f"coverage_{_key(f)}"] = c["coverage"]
        out[f"coverage_{_key(f)}_err"] = c["coverage_err"]
    return out


def _bin_rows(
    err: np.ndarray,
    u: dict[str, Any],
    masks: list[tuple[dict[str, Any], np.ndarray]],
    n_boot: int,
    seed: int,
    tolerance: float,
) -> list[dict[str, Any]]:

    cone68 = u["cones"](0.68)
    cone90 = u["cones"](0.90)
    rows = []
    for head, m in masks:
        n = int(m.sum())
        row: dict[str, Any] = {**head, "n": n}
        if n == 0:
            row.update(
                predicted_theta68=math.nan,
                median_cone68=math.nan,
                theta68=math.nan,
                theta68_ci=(math.nan, math.nan),
                ratio=math.nan,
                ratio_ci=(math.nan, math.nan),
                coverage_68=math.nan,
                coverage_90=math.nan,
                coverage_68_err=math.nan,
                coverage_90_err=math.nan,
                within_20pct=False,
            )
            rows.append(row)
            continue
        e = err[m]
        pred = _mixture_quantile(u, m, 0.68)
        theta = float(np.quantile(e, 0.68))
        if n_boot and n > 1:
            lo, hi = bootstrap_ci(e, lambda x: float(np.quantile(x, 0.68)), n_boot=n_boot, seed=seed)
        else:
            lo, hi = math.nan, math.nan
        ratio = pred / theta if theta > 0 else math.inf
        ratio_ci = (pred / hi if hi > 0 else math.inf, pred / lo if lo > 0 else math.inf)
        c68 = _coverage_entry(e, cone68[m], 0.68)
        c90 = _coverage_entry(e, cone90[m], 0.90)
        row.update(
            predicted_theta68=pred,
            median_cone68=float(np.median(cone68[m])),
            theta68=theta,
            theta68_ci=(lo, hi),
            ratio=ratio,
            ratio_ci=ratio_ci,
            coverage_68=c68["coverage"],
            coverage_68_err=c68["coverage_err"],
            coverage_90=c90["coverage"],
            coverage_90_err=c90["coverage_err"],
            within_20pct=bool(abs(ratio - 1.0) <= tolerance),
        )
        rows.append(row)
    return rows


def calibration_table(
    errors_deg: Any,
    *,
    kappa: Any = None,
    sigma: Any = None,
    n_bins: int = 10,
    edges: Sequence[float] | None = None,
    n_boot: int = 200,
    seed: int = 0,
    tolerance: float = 0.2,
    sigma_model: str = "rayleigh",
    sigma_unit: str = "rad",
) -> list[dict[str, Any]]:
    """Predicted 68 % cone against actual θ68, in bins of predicted uncertainty (the reliability table).

    Args:
        errors_deg: (N,) actual angular errors, degrees.
        kappa / sigma: the per-event prediction (exactly one).
        n_bins: number of equal-count bins of the predicted 68 % cone (ignored with ``edges``).
        edges: explicit bin edges of the predicted 68 % cone, degrees.
        n_boot, seed: bootstrap of the actual θ68 per bin (0 disables the CI).
        tolerance: the proposal's 20 %: ``within_20pct = |ratio − 1| ≤ tolerance``.

    Returns:
        One dict per bin: ``lo, hi`` (predicted 68 % cone range, °), ``n``,
        ``predicted_theta68`` (the bin's predicted θ68, see the module docstring),
        ``median_cone68``, ``theta68`` (actual) and ``theta68_ci``, ``ratio`` = predicted /
        actual and ``ratio_ci``, ``coverage_68``, ``coverage_90`` (with binomial ``_err``),
        ``within_20pct``.
    """
    err = _errors(errors_deg)
    u = _uncertainty(kappa, sigma, err.size, sigma_model, sigma_unit)
    cone68 = u["cones"](0.68)
    if edges is None:
        n_bins = int(n_bins)
        if n_bins < 1:
            raise InputError(f"calibration_table: n_bins must be >= 1; received {n_bins}")
        e = np.unique(np.quantile(cone68, np.linspace(0.0, 1.0, n_bins + 1)))
        if e.size < 2:
            e = np.array([cone68.min(), cone68.max() + 1e-9])
    else:
        e = np.asarray(edges, dtype=np.float64).ravel()
        if e.size < 2 or not np.all(np.diff(e) > 0):
            raise InputError(
                f"calibration_table: edges must be at least two increasing values; received {list(e)}"
            )
    masks = []
    for i in range(e.size - 1):
        lo, hi = float(e[i]), float(e[i + 1])
        last = i == e.size - 2
        m = (cone68 >= lo) & ((cone68 <= hi) if last else (cone68 < hi))
        masks.append(({"lo": lo, "hi": hi}, m))
    return _bin_rows(err, u, masks, n_boot, seed, tolerance)


def calibration_by_energy(
    errors_deg: Any,
    energies: Any,
    *,
    kappa: Any = None,
    sigma: Any = None,
    edges: Sequence[float] = LIKELIHOOD_EDGES,
    energy_kind: str = "reconstructed",
    n_boot: int = 200,
    seed: int = 0,
    tolerance: float = 0.2,
    sigma_model: str = "rayleigh",
    sigma_unit: str = "rad",
) -> list[dict[str, Any]]:
    """Coverage and the predicted/actual ratio in energy bins (lo ≤ E < hi, MeV).

    Rows are those of :func:`calibration_table` with ``lo, hi`` the energy range, plus
    ``bin`` (label) and ``energy`` (which energy was used: reconstructed by default).
    """
    err = _errors(errors_deg)
    en = np.asarray(energies, dtype=np.float64).ravel()
    if en.size != err.size:
        raise InputError(f"calibration_by_energy: energies has {en.size} values; expected {err.size}")
    u = _uncertainty(kappa, sigma, err.size, sigma_model, sigma_unit)
    e = np.asarray(edges, dtype=np.float64).ravel()
    if e.size < 2 or not np.all(np.diff(e) > 0):
        raise InputError(f"calibration_by_energy: edges must be increasing (MeV); received {list(e)}")
    masks = []
    for i in range(e.size - 1):
        lo, hi = float(e[i]), float(e[i + 1])
        masks.append(
            ({"energy": energy_kind, "bin": bin_label(lo, hi), "lo": lo, "hi": hi}, (en >= lo) & (en < hi))
        )
    return _bin_rows(err, u, masks, n_boot, seed, tolerance)


def calibration_summary(
    errors_deg: Any,
    *,
    kappa: Any = None,
    sigma: Any = None,
    energies: Any = None,
    energy_edges: Sequence[float] = LIKELIHOOD_EDGES,
    n_bins: int = 10,
    n_boot: int = 200,
    seed: int = 0,
    tolerance: float = 0.2,
    sigma_model: str = "rayleigh",
    sigma_unit: str = "rad",
) -> dict[str, Any]:
    """Everything about calibration in one dict (for a notebook or ``metrics.json``).

    Returns:
        ``coverage`` (:func:`coverage`), ``ratio`` (predicted θ68 / actual θ68 over all
        events), ``table`` (:func:`calibration_table`), ``by_energy``
        (:func:`calibration_by_energy`, when ``energies`` is given), ``share_within_20pct``
        (event-weighted share of uncertainty bins meeting the 20 % target), ``target``.
    """
    err = _errors(errors_deg)
    kw = {"kappa": kappa, "sigma": sigma, "sigma_model": sigma_model, "sigma_unit": sigma_unit}
    u = _uncertainty(kappa, sigma, err.size, sigma_model, sigma_unit)
    theta = float(np.quantile(err, 0.68))
    predicted = _mixture_quantile(u, slice(None), 0.68)
    table = calibration_table(err, n_bins=n_bins, n_boot=n_boot, seed=seed, tolerance=tolerance, **kw)
    n_in = sum(r["n"] for r in table if r["within_20pct"])
    out: dict[str, Any] = {
        "coverage": coverage(err, **kw),
        "predicted_theta68": predicted,
        "theta68": theta,
        "ratio": predicted / theta if theta > 0 else math.inf,
        "table": table,
        "share_within_20pct": n_in / err.size,
        "target": f"|predicted theta68 / actual theta68 - 1| <= {tolerance:g} per bin",
    }
    if energies is not None:
        out["by_energy"] = calibration_by_energy(
            err, energies, edges=energy_edges, n_boot=n_boot, seed=seed, tolerance=tolerance, **kw
        )
    return out


# ------------------------------------------------------------------ recalibration


# ------------------------------------------------------------------ selection


def selection_curve(
    errors_deg: Any,
    *,
    kappa: Any = None,
    sigma: Any = None,
    fractions: Sequence[float] | None = None,
    n_boot: int = 200,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """θ68 of the best x % of events ranked by predicted uncertainty (largest κ / smallest σ).

    Args:
        errors_deg: (N,) actual angular errors.
        kappa / sigma: the per-event prediction (exactly one).
        fractions: kept fractions (default 0.1, 0.2, …, 1.0).
        n_boot, seed: bootstrap of θ68 per point (0 disables).

    Returns:
        One dict per fraction: ``fraction, n, threshold`` (the loosest κ — or σ — kept),
        ``theta68, theta68_ci, median, flip_fraction``.
    """

    err = _errors(errors_deg)
    u = _uncertainty(kappa, sigma, err.size, "rayleigh", "rad")
    fr = np.linspace(0.1, 1.0, 10) if fractions is None else np.asarray(fractions, dtype=np.float64).ravel()
    if fr.size == 0 or np.any(~(fr > 0)) or np.any(fr > 1):
        raise InputError(f"selection_curve: fractions must lie in (0, 1]; received {list(fr)}")
    order = np.argsort(-u["confidence"], kind="stable")
    rows = []
    for f in fr:
        n = max(1, round(f * err.size))
        keep = order[:n]
        e = err[keep]
        theta = float(np.quantile(e, 0.68))
        ci = (
            bootstrap_ci(e, lambda x: float(np.quantile(x, 0.68)), n_boot=n_boot, seed=seed)
            if n_boot and n > 1
            else (math.nan, math.nan)
        )
        rows.append(
            {
                "fraction": float(f),
                "n": int(n),
                "threshold": float(u["values"][keep[-1]]),
                "theta68": theta,
                "theta68_ci": ci,
                "median": float(np.median(e)),
                "flip_fraction": flip_fraction(e),
            }
        )
    return rows
