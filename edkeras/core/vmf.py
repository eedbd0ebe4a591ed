"""The von Mises–Fisher distribution on the 2-sphere, in numpy.

Method notes: ``docs/methods.md``, section ``edkeras.core.vmf``.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = sample([0, 0, 1], kappa=100.0, n=1000, rng=rng)
    >>> round(cone_angle_deg(100.0, 0.68), 2)
    8.66
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from edkeras.core.errors import InputError, check_fraction

__all__ = [
    "cone_angle_deg",
    "cone_cos",
    "cos_cdf",
    "cos_logpdf",
    "cos_pdf",
    "kappa_from_cone_deg",
    "kappa_from_mean_cos",
    "kappa_from_sigma",
    "log_normaliser",
    "mean_cos",
    "orthonormal_basis",
    "sample",
    "sample_cos",
]

_SMALL_KAPPA = 1e-8
"""Below this |κ| the formulas take their isotropic limit."""


def _kappa(kappa: Any, allow_negative: bool = False) -> np.ndarray:
    k = np.asarray(kappa, dtype=np.float64)
    if not np.all(np.isfinite(k)):
        raise InputError(f"vmf: kappa must be finite; received {k.ravel()[~np.isfinite(k.ravel())][:3]}")
    if not allow_negative and np.any(k < 0):
        raise InputError(f"vmf: kappa must be >= 0; received min {float(k.min()):.4g}")
    return k


def _log_2sinh_over_kappa(k: np.ndarray) -> np.ndarray:
    """log(2 sinh|κ| / |κ|) (→ log 2 at κ = 0), stable for any κ."""
    a = np.abs(k)
    safe = np.maximum(a, _SMALL_KAPPA)
    # 2 sinh a = e^a (1 − e^{−2a}) = e^a · (−expm1(−2a))
    val = safe + np.log(-np.expm1(-2.0 * safe)) - np.log(safe)
    return np.where(a < _SMALL_KAPPA, np.log(2.0) + a * a / 6.0, val)


def log_normaliser(kappa: Any) -> np.ndarray | float:
    """log C3(κ), the log normalisation of the vMF on S²: C3 = κ / (4π sinh κ).

    Stable for κ from 0 (isotropic: C3 = 1/(4π)) to 1e4 and beyond (no overflow).

    Args:
        kappa: concentration(s) ≥ 0, any shape.

    Returns:
        log C3(κ), same shape (a float for a scalar input).

    Example:
        >>> bool(np.isclose(log_normaliser(0.0), -np.log(4 * np.pi)))
        True
    """
    k = _kappa(kappa)
    out = -np.log(2.0 * np.pi) - _log_2sinh_over_kappa(k)
    return float(out) if out.ndim == 0 else out


def cos_logpdf(cos: Any, kappa: Any) -> np.ndarray:
    """log of the density of t = cos θ: log[κ e^{κ t} / (2 sinh κ)] on [−1, 1].

    κ may be negative here (a backward-peaked exponential); κ = 0 gives log ½.
    ``cos`` is clipped into [−1, 1]. Arguments broadcast.
    """
    k = _kappa(kappa, allow_negative=True)
    t = np.clip(np.asarray(cos, dtype=np.float64), -1.0, 1.0)
    a = np.abs(k)
    # κ t − log(2 sinh|κ|/|κ|) with the sign handled by using |κ| and t' = sign(κ) t:
    ts = np.where(k < 0, -t, t)
    return a * ts - _log_2sinh_over_kappa(k)


def cos_pdf(cos: Any, kappa: Any) -> np.ndarray:
    """Density of t = cos θ (angle to the mean direction) for a vMF on S².

    p(t) = κ e^{κ t} / (2 sinh κ) on [−1, 1]; it integrates to 1 over t. Stable for
    κ up to 1e4 and beyond; κ = 0 gives the flat ½; negative κ (allowed here, used by
    the likelihood tables for backward-peaked samples) mirrors the density, p(t; −κ) = p(−t; κ).

    Args:
        cos: cos θ values (clipped into [−1, 1]).
        kappa: concentration(s); broadcasts with ``cos``.

    Returns:
        The density values, float64.

    Example:
        >>> float(cos_pdf(0.3, 0.0))
        0.5
    """
    return np.exp(cos_logpdf(cos, kappa))


def cos_cdf(cos: Any, kappa: Any) -> np.ndarray:
    """P(cos θ ≤ t) for the density :func:`cos_pdf` (any real κ). Arguments broadcast."""
    k = _kappa(kappa, allow_negative=True)
    t = np.clip(np.asarray(cos, dtype=np.float64), -1.0, 1.0)
    a = np.maximum(np.abs(k), _SMALL_KAPPA)
    # For κ > 0: 1 − F(t) = expm1(κ(t − 1)) / expm1(−2κ)
    upper_pos = np.expm1(a * (t - 1.0)) / np.expm1(-2.0 * a)
    # For κ < 0: F(t) = P(−t' ≥ ...) = 1 − F_{|κ|}(−t) = expm1(|κ|(−t − 1)) / expm1(−2|κ|)
    lower_neg = np.expm1(a * (-t - 1.0)) / np.expm1(-2.0 * a)
    flat = (t + 1.0) / 2.0
    out = np.where(k < 0, lower_neg, 1.0 - upper_pos)
    return np.clip(np.where(np.abs(k) < _SMALL_KAPPA, flat, out), 0.0, 1.0)


def cone_cos(kappa: Any, fraction: float = 0.68) -> np.ndarray:
    """cos of the half-angle of the cone around μ holding ``fraction`` of the probability.

    Solves P(cos θ ≥ c) = fraction exactly: c = 1 + log1p(fraction · expm1(−2κ)) / κ.
    """
    f = check_fraction(fraction, "vmf fraction")
    k = _kappa(kappa)
    safe = np.maximum(k, _SMALL_KAPPA)
    c = 1.0 + np.log1p(f * np.expm1(-2.0 * safe)) / safe
    return np.clip(np.where(k < _SMALL_KAPPA, 1.0 - 2.0 * f, c), -1.0, 1.0)


def cone_angle_deg(kappa: Any, fraction: float = 0.68) -> np.ndarray | float:
    """Half-angle (degrees) of the cone around μ holding ``fraction`` of the probability.

    For large κ this tends to √(−2 ln(1 − fraction)/κ) radians (1.51/√κ rad at 68 %);
    κ = 0 gives the isotropic cone arccos(1 − 2·fraction) (111.0° at 68 %).

    Args:
        kappa: concentration(s) ≥ 0.
        fraction: probability inside the cone, in (0, 1).

    Returns:
        The angle in degrees (a float for a scalar κ).

    Example:
        >>> round(float(cone_angle_deg(0.0, 0.5)), 6)
        90.0
    """
    out = np.degrees(np.arccos(cone_cos(kappa, fraction)))
    return float(out) if np.ndim(out) == 0 else out


def kappa_from_cone_deg(angle_deg: Any, fraction: float = 0.68) -> np.ndarray | float:
    """The κ whose ``fraction`` cone has half-angle ``angle_deg`` (inverse of :func:`cone_angle_deg`).

    Solved by bisection in log κ over [1e−8, 1e8] (monotonic), to relative precision
    ≈ 1e−12. Angles at or above the isotropic cone arccos(1 − 2·fraction) give κ = 0.

    Args:
        angle_deg: cone half-angle(s) in degrees, in (0, 180].
        fraction: probability inside the cone, in (0, 1).

    Returns:
        κ (a float for a scalar angle).

    Raises:
        InputError: an angle that is not in (0°, 180°].

    Example:
        >>> round(float(kappa_from_cone_deg(cone_angle_deg(50.0))), 6)
        50.0
    """
    f = check_fraction(fraction, "vmf fraction")
    ang = np.asarray(angle_deg, dtype=np.float64)
    if np.any(~np.isfinite(ang)) or np.any(ang <= 0) or np.any(ang > 180):
        raise InputError(
            f"kappa_from_cone_deg: angle must be in (0, 180] degrees; received {ang.ravel()[:5]}"
        )
    target = np.cos(np.radians(ang))
    lo = np.full(ang.shape, np.log(1e-8))
    hi = np.full(ang.shape, np.log(1e8))
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        c = cone_cos(np.exp(mid), f)
        # larger κ → larger cone cos (narrower cone)
        too_wide = c < target
        lo = np.where(too_wide, mid, lo)
        hi = np.where(too_wide, hi, mid)
    k = np.exp(0.5 * (lo + hi))
    k = np.where(target <= 1.0 - 2.0 * f, 0.0, k)
    return float(k) if k.ndim == 0 else k


def mean_cos(kappa: Any) -> np.ndarray:
    """E[cos θ] = coth κ − 1/κ (the mean resultant length; odd in κ, 0 at κ = 0)."""
    k = _kappa(kappa, allow_negative=True)
    a = np.maximum(np.abs(k), 1e-4)
    # coth a − 1/a = (1 + e^{−2a})/(1 − e^{−2a}) − 1/a
    val = (1.0 + np.exp(-2.0 * a)) / (-np.expm1(-2.0 * a)) - 1.0 / a
    small = np.abs(k) / 3.0 - np.abs(k) ** 3 / 45.0
    val = np.where(np.abs(k) < 1e-4, small, val)
    return np.sign(k) * val


def _mean_cos_derivative(k: np.ndarray) -> np.ndarray:
    """d/dκ (coth κ − 1/κ) = 1/κ² − 1/sinh²κ for κ > 0 (→ 1/3 at 0)."""
    a = np.maximum(k, 1e-3)
    e = np.exp(-2.0 * a)
    val = 1.0 / (a * a) - 4.0 * e / np.expm1(-2.0 * a) ** 2
    return np.where(k < 1e-3, 1.0 / 3.0 - k * k / 15.0, val)


def kappa_from_mean_cos(rbar: Any) -> np.ndarray | float:
    """Maximum-likelihood κ of :func:`cos_pdf` given the sample mean of cos θ.

    Inverts E[cos θ] = coth κ − 1/κ (signed: a negative mean gives a negative κ), starting
    from Banerjee's approximation κ ≈ r(3 − r²)/(1 − r²) and polishing with safeguarded
    Newton steps to ≈ 1e−12 relative. Means of ±1 within 1e−12 are capped at |κ| ≈ 1e12.

    Args:
        rbar: sample mean(s) of cos θ, in [−1, 1].

    Returns:
        κ (a float for a scalar input).

    Example:
        >>> round(float(kappa_from_mean_cos(mean_cos(25.0))), 6)
        25.0
    """
    r = np.asarray(rbar, dtype=np.float64)
    if np.any(~np.isfinite(r)) or np.any(np.abs(r) > 1.0 + 1e-12):
        raise InputError(f"kappa_from_mean_cos: mean cos must be in [-1, 1]; received {r.ravel()[:5]}")
    if r.ndim == 0:
        return _kappa_from_mean_cos_scalar(float(r))
    a = np.clip(np.abs(r), 0.0, 1.0 - 1e-12)
    k = a * (3.0 - a * a) / (1.0 - a * a)
    for _ in range(30):
        step = (mean_cos(k) - a) / _mean_cos_derivative(k)
        new = np.clip(k - step, 0.25 * k, 4.0 * k + 1e-12)
        done = np.all(np.abs(new - k) <= 1e-13 * np.maximum(new, 1e-300))
        k = new
        if done:
            break
    k = np.where(a == 0, 0.0, k)
    k = np.sign(r) * k
    return float(k) if k.ndim == 0 else k


def _kappa_from_mean_cos_scalar(r: float) -> float:
    """Scalar :func:`kappa_from_mean_cos` in plain floats (fast inside fitting loops)."""
    a = min(abs(r), 1.0 - 1e-12)
    if a == 0.0:
        return 0.0
    k = a * (3.0 - a * a) / (1.0 - a * a)
    for _ in range(30):
        if k < 1e-4:
            mean, deriv = k / 3.0 - k**3 / 45.0, 1.0 / 3.0 - k * k / 15.0
        else:
            em = math.expm1(-2.0 * k)
            mean = (1.0 + math.exp(-2.0 * k)) / (-em) - 1.0 / k
            deriv = (
                1.0 / (k * k) - 4.0 * math.exp(-2.0 * k) / (em * em) if k > 1e-3 else 1.0 / 3.0 - k * k / 15.0
            )
        new = min(max(k - (mean - a) / deriv, 0.25 * k), 4.0 * k + 1e-12)
        if abs(new - k) <= 1e-13 * new:
            k = new
            break
        k = new
    return math.copysign(k, r)


def sample_cos(kappa: Any, n: int | None, rng: np.random.Generator) -> np.ndarray:
    """Exact samples of t = cos θ from :func:`cos_pdf` by inverting its CDF.

    t = 1 + log1p(u · expm1(−2κ)) / κ with u uniform on [0, 1) (any real κ; negative κ
    samples the mirrored density).

    Args:
        kappa: concentration, scalar (with ``n``) or array (one sample per entry, ``n=None``).
        n: number of samples for a scalar κ, or None.
        rng: numpy Generator.

    Returns:
        Samples in [−1, 1].
    """
    k = _kappa(kappa, allow_negative=True)
    size = k.shape if n is None else (int(n),) if k.ndim == 0 else None
    if size is None:
        if k.shape != (int(n),):
            raise InputError(f"sample_cos: kappa of shape {k.shape} needs n=None or n={k.shape[0]}")
        size = k.shape
    u = rng.random(size)
    a = np.maximum(np.abs(k), _SMALL_KAPPA)
    t = 1.0 + np.log1p(u * np.expm1(-2.0 * a)) / a
    t = np.where(np.abs(k) < _SMALL_KAPPA, 1.0 - 2.0 * u, t)
    t = np.where(k < 0, -t, t)
    return np.clip(t, -1.0, 1.0)


def orthonormal_basis(mu: Any) -> tuple[np.ndarray, np.ndarray]:
    """Two unit vectors e1, e2 with (e1, e2, μ) right-handed and orthonormal, for each row of μ.

    Args:
        mu: (3,) or (N, 3) unit vectors.

    Returns:
        e1, e2 of the same shape as ``mu``.
    """
    m = np.asarray(mu, dtype=np.float64)
    m2 = np.atleast_2d(m)
    # helper axis: the coordinate axis least aligned with μ
    helper = np.zeros_like(m2)
    helper[np.arange(len(m2)), np.argmin(np.abs(m2), axis=1)] = 1.0
    e1 = np.cross(helper, m2)
    e1 /= np.linalg.norm(e1, axis=1, keepdims=True)
    e2 = np.cross(m2, e1)
    return (e1[0], e2[0]) if m.ndim == 1 else (e1, e2)


def _unit_rows(mu: Any, what: str) -> np.ndarray:
    m = np.asarray(mu, dtype=np.float64)
    if m.shape[-1] != 3:
        raise InputError(f"vmf.sample: {what} must have a last axis of length 3; received shape {m.shape}")
    norm = np.linalg.norm(m, axis=-1, keepdims=True)
    if np.any(~np.isfinite(norm)) or np.any(norm == 0):
        raise InputError(f"vmf.sample: {what} must be finite non-zero vectors")
    return m / norm


def sample(mu: Any, kappa: Any, n: int | None, rng: np.random.Generator) -> np.ndarray:
    """Exact samples of the vMF on S² with mean direction(s) μ and concentration(s) κ.

    cos θ is drawn by inverting its CDF (:func:`sample_cos`), the azimuth uniformly.

    Args:
        mu: (3,) mean direction (normalised here), or (N, 3) one per sample.
        kappa: scalar, or (N,) one per sample; ≥ 0.
        n: number of samples; with (N, 3) ``mu`` or (N,) ``kappa`` it must be N or None.
        rng: numpy Generator.

    Returns:
        (n, 3) unit vectors.

    Example:
        >>> x = sample([1, 0, 0], 1e4, 5, np.random.default_rng(1))
        >>> bool(np.all(x[:, 0] > 0.99))
        True
    """
    m = _unit_rows(mu, "mu")
    k = _kappa(kappa)
    sizes = {int(n)} if n is not None else set()
    if m.ndim == 2:
        sizes.add(m.shape[0])
    if k.ndim == 1:
        sizes.add(k.shape[0])
    if len(sizes) != 1:
        raise InputError(
            f"vmf.sample: inconsistent sizes (n={n}, mu {m.shape}, kappa {k.shape}); expected one N"
        )
    size = sizes.pop()
    kk = np.broadcast_to(k, (size,)) if k.ndim <= 1 else None
    if kk is None:
        raise InputError(f"vmf.sample: kappa must be a scalar or (N,); received shape {k.shape}")
    mm = np.broadcast_to(m, (size, 3))
    t = sample_cos(np.array(kk), None, rng)
    phi = rng.uniform(0.0, 2.0 * np.pi, size)
    s = np.sqrt(np.clip(1.0 - t * t, 0.0, 1.0))
    e1, e2 = orthonormal_basis(mm)
    out = t[:, None] * mm + (s * np.cos(phi))[:, None] * e1 + (s * np.sin(phi))[:, None] * e2
    return out / np.linalg.norm(out, axis=1, keepdims=True)


_KAPPA_MIN, _KAPPA_MAX = 1e-3, 1e6
"""The range of κ that conversions from σ return (as the calibration and ensemble code clip)."""


def kappa_from_sigma(sigma: Any, *, unit: str = "rad") -> np.ndarray:
    """Equivalent vMF concentration of a Rayleigh σ (σ² = E[θ²]): κ = 2/σ² (σ in radians).

    For large κ, E[θ²] ≈ 2(1 − E[cos θ]) ≈ 2/κ, which this inverts.
    """
    s = np.asarray(sigma, dtype=np.float64)
    if unit == "deg":
        s = np.radians(s)
    elif unit != "rad":
        raise InputError(f"kappa_from_sigma: unit must be 'rad' or 'deg'; received {unit!r}")
    if np.any(~np.isfinite(s)) or np.any(s <= 0):
        raise InputError("kappa_from_sigma: sigma must be finite and > 0")
    return np.clip(2.0 / (s * s), _KAPPA_MIN, _KAPPA_MAX)
