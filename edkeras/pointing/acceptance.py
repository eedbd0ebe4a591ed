"""Detector-frame acceptance of a reconstruction: where its directions go whatever the source.

Method notes: ``docs/methods.md``, section ``edkeras.pointing.acceptance``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from edkeras.core.errors import TableError
from edkeras.core.sphere import fibonacci_lattice, monomials

__all__ = [
    "G_FLOOR",
    "Z_MIN",
    "Acceptance",
    "fit_acceptance",
    "harmonic_degrees",
    "legendre_moments",
    "real_harmonics",
]

G_FLOOR = 0.1
"""Smallest acceptance allowed anywhere on the sky (the mean over the sky is 1).

A truncated harmonic series fitted to a reconstruction that rarely predicts some direction
(the network hedges y, so ±y are rare) can ring below 0 there, which no density does; a
burst fit would divide by a normalisation near 0 and be drawn to those directions. The fit
keeps g ≥ G_FLOOR on a lattice of 3,072 directions (a quadratic wall: measured ≥ 0.098 on a
reconstruction that never points near ±y).
"""

Z_MIN = 0.5 * G_FLOOR
"""Smallest normalisation used."""

PRIOR_SIGMA = 0.5
"""Width of the Gaussian prior on each harmonic coefficient a_ℓm."""


def harmonic_degrees(l_max: int) -> np.ndarray:
    """(K,) degree ℓ of each column of :func:`real_harmonics` (ℓ = 1 … l_max, 2ℓ + 1 each)."""
    return np.concatenate([np.full(2 * ell + 1, ell) for ell in range(1, int(l_max) + 1)]).astype(np.int64)


def real_harmonics(d: Any, l_max: int) -> np.ndarray:
    """Real orthonormal spherical harmonics Y_ℓm(d) for 1 ≤ ℓ ≤ l_max (ℓ = 0 left out).

    Evaluated as polynomials in (x, y, z) — one matrix product, no trigonometry — whose
    coefficients are fitted once per ``l_max`` to :func:`_harmonics_from_legendre` (exact: a
    harmonic of degree ℓ is a polynomial of degree ℓ on the sphere).

    Args:
        d: (N, 3) or (3,) directions (normalised here).
        l_max: highest degree.

    Returns:
        (N, (l_max + 1)² − 1), columns ordered by ℓ, then m = −ℓ … ℓ; ∫ Y_ℓm Y_ℓ'm' dΩ = δδ.
    """
    d = np.atleast_2d(np.asarray(d, dtype=np.float64))
    d = d / np.linalg.norm(d, axis=1, keepdims=True)
    return monomials(d, int(l_max)) @ _polynomial_coefficients(int(l_max))


@lru_cache(maxsize=8)
def _polynomial_coefficients(l_max: int) -> np.ndarray:

    p = fibonacci_lattice(max(2000, 40 * (l_max + 1) ** 2))
    coef, *_ = np.linalg.lstsq(monomials(p, l_max), _harmonics_from_legendre(p, l_max), rcond=None)
    coef.setflags(write=False)
    return coef


def _harmonics_from_legendre(d: np.ndarray, l_max: int) -> np.ndarray:
    """The definition: N_ℓm P_ℓ^|m|(cos θ) × (1, √2 cos mφ, √2 sin |m|φ) for m = 0, > 0, < 0."""
    from math import lgamma

    from scipy.special import lpmv

    ct = np.clip(d[:, 2], -1.0, 1.0)
    phi = np.arctan2(d[:, 1], d[:, 0])
    cols = []
    for ell in range(1, l_max + 1):
        for m in range(-ell, ell + 1):
            am = abs(m)
            norm = np.sqrt((2 * ell + 1) / (4 * np.pi) * np.exp(lgamma(ell - am + 1) - lgamma(ell + am + 1)))
            p = norm * lpmv(am, ell, ct)
            cols.append(p if m == 0 else np.sqrt(2.0) * p * (np.cos(am * phi) if m > 0 else np.sin(am * phi)))
    return np.column_stack(cols) if cols else np.zeros((len(d), 0))


def legendre_moments(grid: np.ndarray, rows: np.ndarray, l_max: int) -> np.ndarray:
    """λ_ℓ = ∫ f(t) P_ℓ(t) dt of densities sampled on a cos θ grid (trapezoid rule).

    Args:
        grid: (G,) ascending cos θ from −1 to 1.
        rows: (R, G) densities on the grid.
        l_max: highest degree.

    Returns:
        (R, l_max + 1); column 0 is the row's integral (1 for a table row).
    """
    from numpy.polynomial import legendre

    grid = np.asarray(grid, dtype=np.float64)
    rows = np.atleast_2d(np.asarray(rows, dtype=np.float64))
    p = np.stack([legendre.legval(grid, np.eye(l_max + 1)[ell]) for ell in range(l_max + 1)])  # (L+1, G)
    w = np.zeros_like(grid)
    dx = np.diff(grid)
    w[:-1] += 0.5 * dx
    w[1:] += 0.5 * dx
    return (rows * w) @ p.T


@dataclass(frozen=True)
class Acceptance:
    """g(d) = 1 + Σ a_ℓm Y_ℓm(d) for 1 ≤ ℓ ≤ ``l_max`` (see the module notes).

    Attributes:
        l_max: highest harmonic degree (≥ 1).
        coefficients: (K,) a_ℓm in the column order of :func:`real_harmonics`.
    """

    l_max: int
    coefficients: np.ndarray

    def __call__(self, d: Any) -> np.ndarray:
        """(N,) g at directions d (can dip below 0 far from where it was fitted)."""
        return 1.0 + real_harmonics(d, self.l_max) @ self.coefficients

    def weighted(self, moments: np.ndarray) -> np.ndarray:
        """(R, K) a_ℓm·λ_ℓ for rows with Legendre moments (R, ≥ l_max + 1)."""
        lam = np.asarray(moments, dtype=np.float64)[:, harmonic_degrees(self.l_max)]
        return lam * self.coefficients

    def normalisation(self, moments: np.ndarray, points: Any) -> np.ndarray:
        """(R, M) Z of rows with ``moments`` at the directions m̂(s) ``points`` (M, 3)."""
        y = real_harmonics(points, self.l_max)
        return np.maximum(1.0 + self.weighted(moments) @ y.T, Z_MIN)

    def per_event(self, moments: np.ndarray) -> Any:
        """Z of N events with row moments (N, ≥ l_max + 1) at one direction each: a function
        (N, 3) unit vectors → (N,), for callers that move the directions many times (the
        response-map refinement): the harmonics are folded into the monomials once."""
        v = self.weighted(moments) @ _polynomial_coefficients(self.l_max).T

        def z(points: np.ndarray) -> np.ndarray:
            return np.maximum(1.0 + np.einsum("ij,ij->i", monomials(points, self.l_max), v), Z_MIN)

        return z

    def contrast(self, n: int = 3072) -> float:
        """max g / min g over a Fibonacci lattice of n directions (1 = flat; min clipped at G_FLOOR / 2)."""

        g = self(fibonacci_lattice(n))
        return float(g.max() / max(g.min(), 0.5 * G_FLOOR))


def fit_acceptance(
    predicted: Any, mapped_reference: Any, moments: Any, l_max: int = 4, prior_sigma: float = PRIOR_SIGMA
) -> Acceptance:
    """Maximum-likelihood acceptance of a calibration sample with known source directions.

    Args:
        predicted: (N, 3) reconstructed directions d_j.
        mapped_reference: (N, 3) the direction each event's row is measured from: m̂(s_j)
            (or s_j for a table without a response map).
        moments: (N, ≥ l_max + 1) Legendre moments of each event's table row.
        l_max: highest harmonic degree.
        prior_sigma: width of the Gaussian prior on each coefficient.

    Returns:
        The fitted :class:`Acceptance`.
    """
    from scipy.optimize import minimize


    l_max = int(l_max)
    if l_max < 1:
        raise TableError(f"fit_acceptance: l_max must be >= 1; received {l_max}")
    d = np.asarray(predicted, dtype=np.float64).reshape(-1, 3)
    r = np.asarray(mapped_reference, dtype=np.float64).reshape(-1, 3)
    lam = np.asarray(moments, dtype=np.float64)
    ok = np.all(np.isfinite(d), axis=1) & np.all(np.isfinite(r), axis=1) & np.all(np.isfinite(lam), axis=1)
    d, r, lam = d[ok], r[ok], lam[ok]
    k = (l_max + 1) ** 2 - 1
    if len(d) < 10 * k:
        raise TableError(
            f"fit_acceptance: an acceptance of degree {l_max} has {k} coefficients and needs at least "
            f"{10 * k} events; received {len(d)}"
        )

    yd = real_harmonics(d, l_max)
    ym = real_harmonics(r, l_max) * lam[:, harmonic_degrees(l_max)]
    ysky = real_harmonics(fibonacci_lattice(3072), l_max)
    n = len(d)
    ridge = 1.0 / (prior_sigma**2 * n)
    wall = 100.0  # weight of the quadratic wall (per lattice direction) that keeps g >= G_FLOOR

    def objective(a: np.ndarray) -> tuple[float, np.ndarray]:
        g = 1.0 + yd @ a
        z = 1.0 + ym @ a
        below = np.maximum(G_FLOOR - (1.0 + ysky @ a), 0.0)
        gc, zc = np.maximum(g, 1e-6), np.maximum(z, Z_MIN)
        value = -np.mean(np.log(gc)) + np.mean(np.log(zc)) + 0.5 * ridge * (a @ a)
        value += 0.5 * wall * np.sum(below**2)
        grad = -(yd.T @ ((g > 1e-6) / gc)) / n + (ym.T @ ((z > Z_MIN) / zc)) / n + ridge * a
        grad -= wall * (ysky.T @ below)
        return float(value), grad

    res = minimize(objective, np.zeros(k), jac=True, method="L-BFGS-B")
    return Acceptance(l_max=l_max, coefficients=np.asarray(res.x, dtype=np.float64))
