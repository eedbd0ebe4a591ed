"""Supernova burst pointing: the sky direction that best explains a burst of electron directions.

:func:`fit_burst` maximises the burst likelihood ln L(n̂) = Σ_e ln Σ_i w_ei P_i(cos θ_e | E_e)
(one likelihood table per event class, per-event class weights from
:func:`~edkeras.pointing.likelihood.classification_weights`) by a scan over the sky and a local search, and maps the
confidence regions (Wilks' theorem, or thresholds calibrated on simulated bursts). The
method is described in ``docs/methods.md`` (section ``edkeras.pointing.likelihood``).

Example:
    >>> fit = fit_burst(pred.predictions, pred.energies, table)
    >>> fit.direction, fit.region_radius_deg[0.68]
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edkeras.core.errors import PointingError
from edkeras.core.sphere import fibonacci_lattice
from edkeras.core.vmf import orthonormal_basis
from edkeras.pointing.likelihood import BurstLikelihood
from edkeras.pointing.tables import LikelihoodTable

__all__ = [
    "CALIBRATED",
    "WILKS_2DOF",
    "BurstFit",
    "delta_log_likelihood",
    "fit_burst",
    "sky_lattice",
]

WILKS_2DOF = "Wilks' theorem, 2 degrees of freedom: region ln L_max - ln L <= -ln(1 - CL)"
"""How the confidence regions are made by default."""

CALIBRATED = "calibrated on simulated bursts: region ln L_max - ln L <= the CL quantile of its value at the truth"
"""How the confidence regions are made with ``region_thresholds`` (see :func:`~edkeras.pointing.resolution.region_thresholds`)."""

_START_MARGIN = 25.0
"""Lattice maxima more than this below the best in ln L are not refined."""

SECONDARY_MIN_DEG = 60.0
"""A second local maximum is reported when it lies at least this far from the best fit …"""

SECONDARY_MAX_DELTA = 25.0
"""… and at most this far below it in ln L (a lower one is no competing solution)."""

DEFAULT_LATTICE = 3072
"""Coarse-scan points (as many as HEALPix nside 16; spacing ≈ 3.7°)."""


def delta_log_likelihood(cl: float) -> float:
    """ΔlnL of a 2-parameter confidence region at level ``cl`` (Wilks): −ln(1 − cl)."""
    if not 0.0 < cl < 1.0:
        raise PointingError(f"confidence level must be in (0, 1); received {cl}")
    return float(-np.log1p(-cl))


# --------------------------------------------------------------------------- lattices


def sky_lattice(n: int = DEFAULT_LATTICE) -> tuple[np.ndarray, str]:
    """The coarse-scan points: a Fibonacci lattice of ``n`` points (as even as HEALPix, for any n).

    Returns:
        ((n, 3) unit vectors, "fibonacci").
    """
    return fibonacci_lattice(n), "fibonacci"


def _cap_lattice(center: np.ndarray, radius: float, n: int) -> np.ndarray:
    """n Fibonacci points uniform in solid angle inside the cap of angular ``radius`` around ``center``."""

    i = np.arange(n) + 0.5
    cz = 1.0 - (1.0 - np.cos(radius)) * i / n
    r = np.sqrt(np.clip(1.0 - cz * cz, 0.0, 1.0))
    phi = np.pi * (1.0 + np.sqrt(5.0)) * i
    e1, e2 = orthonormal_basis(center)
    return cz[:, None] * center + (r * np.cos(phi))[:, None] * e1 + (r * np.sin(phi))[:, None] * e2


# --------------------------------------------------------------------------- the likelihood


# --------------------------------------------------------------------------- the fit


@dataclass
class BurstFit:
    """Result of a burst fit.

    Attributes:
        direction: (3,) best-fit supernova direction (unit vector, detector frame).
        log_likelihood: ln L at ``direction``.
        lattice: (M, 3) coarse-scan directions; ``log_likelihood_map``: (M,) ln L there.
        local_points, local_log_likelihood: the fine lattice around the best fit used for
            the regions, and ln L there.
        region_radius_deg: {CL: radius (deg) of the cone with the solid angle of the region}.
        region_max_deg: {CL: largest angle from ``direction`` of a local point in the region}.
        delta_log_likelihood: {CL: ΔlnL threshold}.
        approximation: how the regions were made (Wilks, 2 dof).
        lattice_kind: "fibonacci" or "healpix nside=…".
        n_events: events in the burst.
        seconds: time the fit took.
        loglike: the burst likelihood (callable on directions).
        secondary_direction: the best local maximum at least 60° from ``direction`` and at
            most 25 below it in ln L (a flipped solution), or None.
        secondary_delta: ln L_max − ln L at it (small: the burst cannot tell the two apart).
    """

    direction: np.ndarray
    log_likelihood: float
    lattice: np.ndarray
    log_likelihood_map: np.ndarray
    local_points: np.ndarray
    local_log_likelihood: np.ndarray
    region_radius_deg: dict[float, float]
    region_max_deg: dict[float, float]
    delta_log_likelihood: dict[float, float]
    approximation: str
    lattice_kind: str
    n_events: int
    seconds: float
    loglike: BurstLikelihood | None = field(default=None, repr=False)
    secondary_direction: np.ndarray | None = None
    secondary_delta: float | None = None

    def angle_to_deg(self, direction: Any) -> float:
        """Angle between the fitted and a given direction, degrees."""
        v = np.asarray(direction, dtype=np.float64)
        v = v / np.linalg.norm(v)
        return float(np.degrees(np.arctan2(np.linalg.norm(np.cross(self.direction, v)), self.direction @ v)))

    def contains(self, direction: Any, cl: float = 0.68) -> bool:
        """Whether ``direction`` lies inside the CL region (ln L_max − ln L ≤ ΔlnL(CL))."""
        threshold = self.delta_log_likelihood.get(float(cl))
        return bool(self.delta_at(direction) <= (delta_log_likelihood(cl) if threshold is None else threshold))

    def delta_at(self, direction: Any) -> float:
        """ln L_max − ln L at ``direction`` (the fast evaluation the regions are mapped with)."""
        if self.loglike is None:
            raise PointingError("this fit has no likelihood attached")
        return self.log_likelihood - float(self.loglike(np.asarray(direction, float)))

    def summary(self) -> dict[str, Any]:
        """JSON-ready summary (direction, polar angles, regions)."""
        x, y, z = self.direction
        return {
            "direction": [float(x), float(y), float(z)],
            "theta_deg": float(np.degrees(np.arccos(np.clip(z, -1.0, 1.0)))),
            "phi_deg": float(np.degrees(np.arctan2(y, x))),
            "log_likelihood": float(self.log_likelihood),
            "n_events": int(self.n_events),
            "region_radius_deg": {f"{k:g}": float(v) for k, v in self.region_radius_deg.items()},
            "region_max_deg": {f"{k:g}": float(v) for k, v in self.region_max_deg.items()},
            "approximation": self.approximation,
            "lattice": self.lattice_kind,
            "fit_seconds": float(self.seconds),
            "secondary": None
            if self.secondary_direction is None
            else {
                "direction": [float(v) for v in self.secondary_direction],
                "angle_deg": self.angle_to_deg(self.secondary_direction),
                "delta_log_likelihood": float(self.secondary_delta),
            },
        }


def _tangent_point(center: np.ndarray, e1: np.ndarray, e2: np.ndarray, ab: np.ndarray) -> np.ndarray:
    v = center + ab[0] * e1 + ab[1] * e2
    return v / np.linalg.norm(v)


def _refine(loglike: BurstLikelihood, start: np.ndarray, step: float) -> tuple[np.ndarray, float]:
    from scipy.optimize import minimize


    e1, e2 = orthonormal_basis(start)
    simplex = np.array([[0.0, 0.0], [step, 0.0], [0.0, step]])
    res = minimize(
        lambda ab: -float(loglike(_tangent_point(start, e1, e2, ab), exact=True)),
        np.zeros(2),
        method="Nelder-Mead",
        options={"initial_simplex": simplex, "xatol": 1e-5, "fatol": 1e-5, "maxiter": 300},
    )
    best = _tangent_point(start, e1, e2, res.x)
    return best, -float(res.fun)


def _angles(points: np.ndarray, center: np.ndarray) -> np.ndarray:
    cross = np.linalg.norm(np.cross(points, center), axis=1)
    return np.arctan2(cross, points @ center)


def fit_burst(
    directions: Any,
    energies: Any,
    tables: LikelihoodTable | Mapping[str, LikelihoodTable],
    *,
    kappa: Any = None,
    weights: Any = None,
    flip_probability: Any = None,
    n_lattice: int = DEFAULT_LATTICE,
    lattice: np.ndarray | None = None,
    n_starts: int = 3,
    levels: Sequence[float] = (0.68, 0.90),
    n_local: int = 1200,
    n_grid: int = 8192,
    region_thresholds: Mapping[float, float] | None = None,
) -> BurstFit:
    """Maximum-likelihood supernova direction of one burst, with its confidence regions.

    Args:
        directions: (N, 3) predicted electron directions.
        energies: (N,) reconstructed energies, MeV.
        tables: a :class:`~edkeras.pointing.tables.LikelihoodTable`, or ``{"es": …, "cc": …}``
            with ``weights``.
        kappa: (N,) predicted κ (used by tables with κ bins).
        weights: (N, 2) ES/CC weights (:func:`~edkeras.pointing.likelihood.classification_weights`).
        flip_probability: (N,) P(sense wrong) for tables with sense "oriented" (see
            :class:`BurstLikelihood`).
        n_lattice: coarse-scan size (when ``lattice`` is None).
        lattice: explicit (M, 3) scan directions.
        n_starts: local searches started from the best lattice points (at least 1.5 lattice
            spacings apart, and within 25 in ln L of the best one).
        levels: confidence levels of the regions.
        n_local: points of the local lattice that maps the regions.
        n_grid: cos θ grid of the likelihood evaluation.
        region_thresholds: {CL: ΔlnL} calibrated on simulated bursts (:func:`~edkeras.pointing.resolution.region_thresholds`)
            instead of Wilks' −ln(1 − CL); its levels replace ``levels``.

    Returns:
        A :class:`BurstFit`.
    """
    import scipy.optimize  # noqa: F401  (imported before the clock starts: a one-time cost)

    t0 = time.perf_counter()
    loglike = BurstLikelihood(
        directions, energies, tables, kappa=kappa, weights=weights, flip_probability=flip_probability, n_grid=n_grid
    )
    if lattice is None:
        lattice, kind = sky_lattice(n_lattice)
    else:
        lattice = np.asarray(lattice, dtype=np.float64)
        lattice = lattice / np.linalg.norm(lattice, axis=1, keepdims=True)
        kind = "given"
    spacing = float(np.sqrt(4.0 * np.pi / len(lattice)))
    lmap = loglike(lattice)
    order = np.argsort(lmap)[::-1]
    starts: list[np.ndarray] = []
    for j in order:
        if len(starts) >= n_starts or lmap[j] < lmap[order[0]] - _START_MARGIN:
            break
        if all(np.arccos(np.clip(lattice[j] @ s, -1.0, 1.0)) > 1.5 * spacing for s in starts):
            starts.append(lattice[j])
    best_dir, best_exact = starts[0], float(loglike(starts[0], exact=True))
    for s in starts:
        d, ll = _refine(loglike, s, 0.5 * spacing)
        if ll > best_exact:
            best_dir, best_exact = d, ll
    secondary, secondary_delta = _secondary(loglike, lattice, lmap, best_dir, best_exact, spacing)
    # Map the regions on a local lattice (fast evaluation, like the scan); grow the cap until
    # the largest region fits inside, shrink it once if the region is much smaller.
    if region_thresholds:
        deltas = {float(cl): float(v) for cl, v in region_thresholds.items()}
        for cl, v in deltas.items():
            delta_log_likelihood(cl)  # checks the level
            if not np.isfinite(v) or v <= 0:
                raise PointingError(f"region threshold for CL {cl:g} must be a positive ΔlnL; received {v}")
    else:
        deltas = {float(cl): delta_log_likelihood(cl) for cl in levels}
    dmax = max(deltas.values())
    near = lattice[lmap >= lmap.max() - dmax]
    radius = max(2.0 * spacing, 1.3 * (float(_angles(near, best_dir).max()) + spacing))
    radius = min(radius, np.pi)
    shrunk = False
    for _ in range(12):
        pts = _cap_lattice(best_dir, radius, n_local)
        lpts = loglike(pts)
        best_ll = max(float(loglike(best_dir)), float(lpts.max()))
        ang = _angles(pts, best_dir)
        inside = best_ll - lpts <= dmax
        r_in = float(ang[inside].max()) if inside.any() else 0.0
        if r_in > 0.85 * radius and radius < np.pi:
            radius = min(np.pi, 2.0 * radius)
            continue
        if r_in < 0.25 * radius and not shrunk:
            radius, shrunk = max(2.0 * r_in, 1e-4), True
            continue
        break
    cap_area = 2.0 * np.pi * (1.0 - np.cos(radius))
    r_eq: dict[float, float] = {}
    r_max: dict[float, float] = {}
    for cl, dl in deltas.items():
        ins = best_ll - lpts <= dl
        area = cap_area * ins.mean()
        r_eq[cl] = float(np.degrees(np.arccos(np.clip(1.0 - area / (2.0 * np.pi), -1.0, 1.0))))
        r_max[cl] = float(np.degrees(ang[ins].max())) if ins.any() else 0.0
    return BurstFit(
        direction=best_dir,
        log_likelihood=best_ll,
        lattice=lattice,
        log_likelihood_map=lmap,
        local_points=pts,
        local_log_likelihood=lpts,
        region_radius_deg=r_eq,
        region_max_deg=r_max,
        delta_log_likelihood=deltas,
        approximation=CALIBRATED if region_thresholds else WILKS_2DOF,
        lattice_kind=kind,
        n_events=len(loglike),
        seconds=time.perf_counter() - t0,
        loglike=loglike,
        secondary_direction=secondary,
        secondary_delta=secondary_delta,
    )


def _secondary(
    loglike: BurstLikelihood, lattice: np.ndarray, lmap: np.ndarray, best: np.ndarray, best_ll: float, spacing: float
) -> tuple[np.ndarray | None, float | None]:
    """The best local maximum at least SECONDARY_MIN_DEG from ``best``, and ln L_max − ln L there.

    Flipped electrons give a burst likelihood a second peak on the far side of the sky (for
    the classical reconstruction near the antipode of m̂(s)); a telescope needs to know when
    it is nearly as high as the first. The best lattice point that far away is refined; a
    search that climbs back towards the main peak means there is no second maximum, and one
    more than SECONDARY_MAX_DELTA below the best is not a competitor (None for both).
    """
    far = _angles(lattice, best) > np.radians(SECONDARY_MIN_DEG)
    if not far.any():
        return None, None
    j = np.flatnonzero(far)[int(np.argmax(lmap[far]))]
    d, ll = _refine(loglike, lattice[j], 0.5 * spacing)
    if _angles(d[None], best)[0] <= np.radians(SECONDARY_MIN_DEG) or not 0.0 < best_ll - ll <= SECONDARY_MAX_DELTA:
        return None, None
    return d, float(best_ll - ll)


# --------------------------------------------------------------------------- burst resolution


