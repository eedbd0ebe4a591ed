"""The detector-response map m(s) of a reconstruction: where its directions cluster for a supernova at s."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edkeras.core.errors import ResponseMapError, TableError
from edkeras.core.sphere import monomials

__all__ = ['Response', 'fit_response']


@dataclass(frozen=True)
class Response:
    """Where a reconstruction's directions cluster for a true direction s: m̂(s) = m(s)/|m(s)|.

    ``m(s) = coefficients.T @ monomials(s)``, a polynomial of ``degree`` ≥ 1 in
    (s_x, s_y, s_z), fitted by :func:`fit_response`.

    Attributes:
        degree: polynomial degree (≥ 1).
        coefficients: (n_monomials, 3).
    """

    degree: int
    coefficients: np.ndarray

    @staticmethod
    def monomials(s: Any, degree: int) -> np.ndarray:
        """(N, n_monomials) 1, x, y, z, x², …: every monomial of total degree ≤ ``degree``."""
        return monomials(s, degree)

    def __call__(self, s: Any) -> np.ndarray:
        """(N, 3) unit vectors m̂(s) for (N, 3) or (3,) directions s (s itself where |m(s)| = 0)."""
        s = np.atleast_2d(np.asarray(s, dtype=np.float64))
        m = self.monomials(s, self.degree) @ self.coefficients
        n = np.linalg.norm(m, axis=1, keepdims=True)
        ok = n[:, 0] > 1e-12
        out = s / np.linalg.norm(s, axis=1, keepdims=True)
        out[ok] = m[ok] / n[ok]
        return out


def fit_response(predicted: Any, reference: Any, degree: int = 2, where: str = "predictions") -> Response:
    """Least-squares polynomial map m(s) ≈ E[predicted | reference s] (see the module notes).

    Args:
        predicted: (N, 3) reconstructed unit directions.
        reference: (N, 3) true directions s (the neutrino's for pointing), spread over the sky.
        degree: polynomial degree ≥ 1 (1: a 3 × 3 matrix and an offset).
        where: what to name in errors.

    Raises:
        ResponseMapError: too few events (fewer than 20 per free coefficient) or a sample
            that does not span the sky.
        TableError: a degree below 1.
    """
    degree = int(degree)
    if degree < 1:
        raise TableError(f"fit_response: degree must be >= 1; received {degree}")
    d = np.asarray(predicted, dtype=np.float64).reshape(-1, 3)
    r = np.asarray(reference, dtype=np.float64).reshape(-1, 3)
    ok = np.all(np.isfinite(d), axis=1) & np.all(np.isfinite(r), axis=1)
    d, r = d[ok], r[ok]
    phi = Response.monomials(r, degree)
    # On the unit sphere x² + y² + z² = 1, so the monomials of degree ≤ n span only (n + 1)²
    # independent functions (the spherical harmonics up to ℓ = n); lstsq takes the
    # minimum-norm solution of the redundant ones.
    n_free = (degree + 1) ** 2
    need = 20 * n_free
    if len(d) < need:
        raise ResponseMapError(
            f"{where}: a degree-{degree} response map has {n_free} free coefficients per axis and needs at "
            f"least {need} ES events with known directions; received {len(d)} (use a larger calibration "
            "sample or a lower response degree)"
        )
    coef, _, rank, _ = np.linalg.lstsq(phi, d, rcond=None)
    if rank < n_free:
        raise ResponseMapError(
            f"{where}: the reference directions do not span the sky (rank {rank} < {n_free}); "
            "a response map needs events from many directions (an isotropic calibration sample)"
        )
    return Response(degree=degree, coefficients=coef)
