"""The detector-response map m(s) of a reconstruction: where its directions cluster for a supernova at s."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edkeras.core.errors import ResponseMapError, TableError
from edkeras.core.sphere import fibonacci_lattice, monomial_powers, monomials
from edkeras.reco.augment import MIRRORS

__all__ = ['MIRROR_SIGNS', 'Response', 'calibration_events', 'fit_response', 'mirror_mask', 'refine_response']

MIRROR_SIGNS = np.array([[-1.0 if flip else 1.0 for flip in flips] for flips in MIRRORS])
"""(8, 3) the detector's mirror images as sign flips of (x, y, z), in the order of ``MIRRORS``."""


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


def mirror_mask(degree: int) -> np.ndarray:
    """(n_monomials, 3) True where a coefficient keeps the map mirror-equivariant.

    The detector's eight mirror images (sign flips of x, y, z; :data:`edkeras.reco.augment.MIRRORS`)
    are exact symmetries of the simulated events, so the true map obeys m(Ms) = M m(s) for each
    flip M: m_x may hold only monomials x^a y^b z^c with a odd and b, c even (likewise m_y, m_z).
    Such a map has odd total degree, so an even degree adds nothing to the odd one below it.
    """
    odd = np.array(monomial_powers(degree)) % 2 == 1
    return np.stack([odd[:, j] & ~np.delete(odd, j, axis=1).any(axis=1) for j in range(3)], axis=1)


def fit_response(
    predicted: Any, reference: Any, degree: int = 2, where: str = "predictions", mirror_symmetric: bool = False
) -> Response:
    """Least-squares polynomial map m(s) ≈ E[predicted | reference s] (see the module notes).

    Args:
        predicted: (N, 3) reconstructed unit directions.
        reference: (N, 3) true directions s (the neutrino's for pointing), spread over the sky.
        degree: polynomial degree ≥ 1 (1: a 3 × 3 matrix and an offset).
        where: what to name in errors.
        mirror_symmetric: keep only the coefficients of :func:`mirror_mask` (a degree-3 map has
            12 instead of 48; each event then informs the map at all eight mirror images of its s).

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
    mask = mirror_mask(degree) if mirror_symmetric else np.ones((phi.shape[1], 3), dtype=bool)
    # independent functions per axis on the sphere, counted on a dense lattice
    n_free = int(np.linalg.matrix_rank(monomials(fibonacci_lattice(1000), degree)[:, mask[:, 0]]))
    need = 20 * n_free
    if len(d) < need:
        raise ResponseMapError(
            f"{where}: a degree-{degree} response map has {n_free} free coefficients per axis and needs at "
            f"least {need} ES events with known directions; received {len(d)} (use a larger calibration "
            "sample or a lower response degree)"
        )
    coef = np.zeros(mask.shape)
    rank = n_free
    for j in range(3):
        coef[mask[:, j], j], _, rank_j, _ = np.linalg.lstsq(phi[:, mask[:, j]], d[:, j], rcond=None)
        rank = min(rank, int(rank_j))
    if rank < n_free:
        raise ResponseMapError(
            f"{where}: the reference directions do not span the sky (rank {rank} < {n_free}); "
            "a response map needs events from many directions (an isotropic calibration sample)"
        )
    return Response(degree=degree, coefficients=coef)


def calibration_events(
    table: Any, predicted: Any, reference: Any, energy: Any, kappa: Any, interaction: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """(d, s, E, κ, interaction) of the events a table (a LikelihoodTable) can use: finite, in its energy range."""
    d = np.asarray(predicted, dtype=np.float64).reshape(-1, 3)
    r = np.asarray(reference, dtype=np.float64).reshape(-1, 3)
    e = np.asarray(energy, dtype=np.float64).ravel()
    k = None if kappa is None else np.asarray(kappa, dtype=np.float64).ravel()
    use = np.all(np.isfinite(d), axis=1) & np.all(np.isfinite(r), axis=1) & np.isfinite(e)
    use &= (e >= table.energy_edges[0]) & (e < table.energy_edges[-1])
    if k is not None:
        use &= np.isfinite(k)
    it = None if interaction is None else np.asarray(interaction).ravel()[use]
    return d[use], r[use], e[use], None if k is None else k[use], it


def refine_response(
    table: Any,
    predicted: Any,
    reference: Any,
    energy: Any,
    kappa: Any = None,
    interaction: Any = None,
    mirror_symmetric: bool = False,
) -> Response:
    """The response map that maximises the table's own likelihood of a calibration sample.

    The least-squares map follows the **mean** predicted direction, but a burst fit finds the
    direction whose m̂(s) maximises Σ ln P(d·m̂(s)): for a cloud of predictions squeezed
    along one axis that is not the mean. Maximising the mean ln P(d_i · m̂(s_i) | E_i) over
    the map's coefficients (with the table held fixed; Powell's method, the table being
    piecewise linear) makes m̂ the centre the burst fit will look for. On a toy
    reconstruction (vMF κ = 4 around s, then y·0.25 and z·0.6; 300-event bursts) the
    burst error fell from 18.5° (no map) and 10° (least squares) to 2.8°, the statistical
    error of such bursts (``tests/test_pointing.py``). A table with an acceptance
    maximises ln P − ln Z(s), the likelihood the burst fit uses.

    Args:
        table: a :class:`~edkeras.pointing.tables.LikelihoodTable` carrying the current map in ``table.response``.
        predicted, reference: (N, 3) reconstructed and true (neutrino) directions.
        energy: (N,) reconstructed energies, MeV; events outside the table's range are not used.
        kappa, interaction: per event, as :meth:`LikelihoodTable.pdf` takes them.
        mirror_symmetric: move only the coefficients of :func:`~edkeras.pointing.response.mirror_mask`.

    Returns:
        The refined map (same degree).
    """
    from scipy.optimize import minimize

    if table.response is None:
        raise TableError("refine_response: the table carries no response map to refine")
    d, r, e, k, it = calibration_events(table, predicted, reference, energy, kappa, interaction)
    degree = table.response.degree
    phi = Response.monomials(r, degree)
    shape = table.response.coefficients.shape
    acc = table.acceptance
    l_max = 0 if acc is None else acc.l_max
    _, lam, density = table.event_terms(r, e, k, it, l_max)  # the rows stay fixed while the map moves
    norm_z = None if acc is None else acc.per_event(lam)

    free = mirror_mask(degree) if mirror_symmetric else np.ones(shape, dtype=bool)
    start = table.response.coefficients

    def nll(c_free: np.ndarray) -> float:
        c = np.zeros(shape)
        c[free] = c_free
        m = phi @ c
        m /= np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)
        value = -float(np.mean(np.log(density(np.einsum("ij,ij->i", d, m)))))
        if norm_z is not None:
            value += float(np.mean(np.log(norm_z(m))))
        return value

    res = minimize(nll, start[free], method="Powell", options={"xtol": 1e-3, "ftol": 1e-6})
    coefficients = np.zeros(shape)
    coefficients[free] = res.x
    return Response(degree=degree, coefficients=coefficients)
