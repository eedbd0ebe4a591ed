"""Supernova burst pointing: the sky direction that best explains a burst of electron directions.

A burst is N events (predicted electron direction d_e, reconstructed energy E_e, and
optionally the predicted concentration κ_e and the ES probability). For a trial
supernova direction n̂ every event has cos θ_e = d_e · n̂, and the likelihood is that of
DUNE's analysis,

    ln L(n̂) = Σ_e ln Σ_i w_ei P_i(cos θ_e | E_e [, κ_e]),

with one table P_i per event class (ES, CC) and per-event weights w_ei: the expected
fractions f_i (DUNE), combined with a classifier's ES probability when there is one, or
a one-hot choice from the true interaction ("perfect classification"). With one table
the inner sum has a single term. Tables with a detector-response map measure cos θ_e from
m̂(n̂) instead of n̂, and tables with an acceptance divide each P_i by its normalisation
Z_i(n̂) (:mod:`edkeras.pointing.acceptance`): the likelihood of the reconstructed directions,
not only of their angles.

The maximum is found by a coarse scan over the whole sky (HEALPix pixel centres when
``healpy`` is installed, else a Fibonacci lattice of about as many points — the default,
and the path the tests exercise) followed by a Nelder–Mead search in the tangent plane at
the best few lattice points. Confidence regions come from Wilks' theorem with 2 degrees
of freedom: the region {n̂ : ln L_max − ln L(n̂) ≤ −ln(1 − CL)} (ΔlnL = 1.139 at 68 %,
2.303 at 90 %), mapped on a fine local lattice around the best fit; its size is quoted
as the radius of the cone of equal solid angle. The tests check that these regions
cover the truth at the stated rate for correctly-modelled bursts. For reconstructions the
tables are only approximately the events' density and Wilks' regions come out too small;
thresholds calibrated on simulated bursts (:func:`region_thresholds`) replace them. A
second local maximum at least 60° away and within 25 in ln L — the flipped solution of
backwards-reconstructed electrons — is reported with the fit.

"Pointing resolution" is the angle holding 68 % of bursts around the true direction
(:func:`pointing_resolution`), as in DUNE's papers. Bursts are drawn from a large sample
simulated at a few fixed supernova directions (``resample``, exact in distribution),
simulated fresh (``direct``), or drawn from any sample and rotated to random directions
(``rotate``: only valid when the reconstruction errors do not depend on the orientation in
the detector, which the full-simulation test shows is false for the classical baseline).

Example:
    >>> fit = fit_burst(pred.predictions, pred.energies, table)
    >>> fit.direction, fit.region_radius_deg[0.68]
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edkeras.core.errors import PointingError
from edkeras.core.sphere import fibonacci_lattice, random_directions, rotate_to
from edkeras.core.vmf import orthonormal_basis
from edkeras.events.eventfile import EventBatch
from edkeras.events.sim import SimConfig, simulate
from edkeras.pointing.acceptance import Z_MIN, harmonic_degrees, real_harmonics
from edkeras.pointing.tables import COMPONENTS, LikelihoodTable
from edkeras.reco.metrics import bootstrap_ci, containment_angle
from edkeras.reco.predictions import Predictions

__all__ = [
    "CALIBRATED",
    "METHODS",
    "WILKS_2DOF",
    "BurstFit",
    "BurstLikelihood",
    "BurstPlan",
    "ResolutionResult",
    "classification_weights",
    "delta_log_likelihood",
    "direction_groups",
    "fit_burst",
    "flips_for",
    "plan_bursts",
    "pointing_resolution",
    "region_thresholds",
    "resolution_vs_events",
    "simulator_generator",
    "sky_lattice",
]

WILKS_2DOF = "Wilks' theorem, 2 degrees of freedom: region ln L_max - ln L <= -ln(1 - CL)"
"""How the confidence regions are made by default."""

CALIBRATED = "calibrated on simulated bursts: region ln L_max - ln L <= the CL quantile of its value at the truth"
"""How the confidence regions are made with ``region_thresholds`` (see :func:`region_thresholds`)."""

_START_MARGIN = 25.0
"""Lattice maxima more than this below the best in ln L are not refined."""

SECONDARY_MIN_DEG = 60.0
"""A second local maximum is reported when it lies at least this far from the best fit …"""

SECONDARY_MAX_DELTA = 25.0
"""… and at most this far below it in ln L (a lower one is no competing solution)."""

DEFAULT_LATTICE = 3072
"""Coarse-scan points (HEALPix nside 16; spacing ≈ 3.7°)."""


def delta_log_likelihood(cl: float) -> float:
    """ΔlnL of a 2-parameter confidence region at level ``cl`` (Wilks): −ln(1 − cl)."""
    if not 0.0 < cl < 1.0:
        raise PointingError(f"confidence level must be in (0, 1); received {cl}")
    return float(-np.log1p(-cl))


# --------------------------------------------------------------------------- lattices


def sky_lattice(n: int = DEFAULT_LATTICE, use_healpy: bool = True) -> tuple[np.ndarray, str]:
    """The coarse-scan points: HEALPix pixel centres when healpy is importable, else Fibonacci.

    Args:
        n: approximate number of points (HEALPix takes nside = the power of two with
            12·nside² closest to n).
        use_healpy: allow healpy.

    Returns:
        ((M, 3) unit vectors, "healpix nside=…" or "fibonacci").
    """
    if use_healpy:
        try:
            import healpy  # type: ignore[import-not-found]
        except ImportError:
            pass
        else:  # pragma: no cover - healpy is optional and not installed in CI
            nside = int(2 ** max(0, round(np.log2(np.sqrt(max(n, 12) / 12.0)))))
            x, y, z = healpy.pix2vec(nside, np.arange(12 * nside * nside))
            return np.stack([x, y, z], axis=1), f"healpix nside={nside}"
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


def classification_weights(
    n: int,
    *,
    mode: str = "mixed",
    es_fraction: float | None = None,
    es_probability: Any = None,
    interaction: Any = None,
    classifier_prior: float = 0.5,
) -> np.ndarray:
    """Per-event weights of the ES and CC tables, columns (ES, CC), rows summing to 1.

    * ``mode="mixed"`` (DUNE's f_i): with the expected ES fraction f and a classifier's ES
      probability p, w_ES ∝ f·p/π and w_CC ∝ (1 − f)(1 − p)/(1 − π), π being the ES share
      the classifier was trained with (``classifier_prior``, 0.5 for balanced training):
      Bayes' rule with the classifier output read as a likelihood ratio. Without a
      classifier, w = (f, 1 − f) for every event, exactly DUNE's −ln L = −Σ ln Σ_i f_i P_i.
    * ``mode="classifier"``: ``"mixed"`` with the classifier's ES probability required
      (an error without one, so that a study never falls back to f alone unnoticed).
    * ``mode="perfect"``: one-hot from the true ``interaction`` (1 ES, 0 CC).

    Args:
        n: number of events.
        mode: ``"mixed"``, ``"classifier"`` or ``"perfect"``.
        es_fraction: expected ES share of the burst (mixed mode).
        es_probability: (n,) classifier ES probabilities, or None.
        interaction: (n,) true interaction codes (perfect mode).
        classifier_prior: ES share of the classifier's training sample.

    Returns:
        (n, 2) weights.
    """
    if mode == "perfect":
        if interaction is None:
            raise PointingError(
                "perfect classification needs the true interaction of every event; received none"
            )
        it = np.asarray(interaction).ravel()
        if it.shape != (n,) or not np.all(np.isin(it, (0, 1))):
            raise PointingError(
                "perfect classification needs interaction 1 (ES) or 0 (CC) for every event; "
                f"received codes {sorted(set(np.unique(it).tolist()))}"
            )
        return np.stack([it == 1, it == 0], axis=1).astype(np.float64)
    if mode not in ("mixed", "classifier"):
        raise PointingError(f"classification mode must be 'mixed', 'classifier' or 'perfect'; received {mode!r}")
    if mode == "classifier" and es_probability is None:
        raise PointingError(
            "classification 'classifier' needs each event's ES probability (es_probability; "
            "edkeras evaluate --classifier RUN writes it); received none"
        )
    if es_fraction is None or not 0.0 < float(es_fraction) < 1.0:
        raise PointingError(f"{mode} classification needs an ES fraction in (0, 1); received {es_fraction}")
    f = float(es_fraction)
    if es_probability is None:
        return np.tile([f, 1.0 - f], (n, 1))
    p = np.clip(np.asarray(es_probability, dtype=np.float64).ravel(), 0.0, 1.0)
    if p.shape != (n,):
        raise PointingError(f"es_probability must have shape ({n},); received {p.shape}")
    a = f * p / classifier_prior
    b = (1.0 - f) * (1.0 - p) / (1.0 - classifier_prior)
    s = np.maximum(a + b, 1e-300)
    return np.stack([a / s, b / s], axis=1)


class BurstLikelihood:
    """ln L(n̂) of one burst, fast and vectorised over many trial directions.

    Each table row an event uses is resampled once onto a uniform grid of ``n_grid`` + 1
    points in cos θ (linear interpolation of the table between its bin centres); with ES
    and CC tables, events with the same rows and weights share one pre-mixed row. Two
    evaluations share those grids:

    * the default (scan, region maps, :meth:`BurstFit.contains`) takes the nearest grid
      point in float32 — a matrix product, one gather and a sum per event and direction;
      with 8192 intervals the cos θ step is 2.4e-4 (1.3° at θ = 0, 0.01° at 90°). Trial
      directions go in blocks of 32: small enough to stay in cache, and small products
      do not start BLAS threads (which on a shared 2-core machine cost more than they give);
    * ``exact=True`` (the local optimiser) interpolates linearly in float64, so the
      function it climbs is continuous.

    Args:
        directions: (N, 3) predicted electron directions (normalised here).
        energies: (N,) reconstructed energies, MeV.
        tables: one table, or ``{"es": table, "cc": table}`` (with ``weights``).
        kappa: (N,) predicted κ for tables with κ bins (ignored otherwise).
        weights: (N, 2) weights of the ES and CC tables (see :func:`classification_weights`);
            required with two tables.
        flip_probability: (N,) the network's P(sense wrong), for tables built with
            ``sense="oriented"`` (required by them, refused by others): each event's density
            is (1 − f)·P(cos θ) + f·P(−cos θ), f calibrated by the table.
        n_grid: grid intervals in cos θ.

    A table with a detector-response map (``LikelihoodTable.response``) measures cos θ from
    m̂(n̂) instead of n̂: every trial direction is mapped through it first, per table (the
    ES table of :func:`edkeras.pointing.tables.build_table` carries the map, its CC table not).
    Tables with an acceptance (``LikelihoodTable.acceptance``, one for all tables) divide
    each event's density by its row's normalisation Z(n̂) (:mod:`edkeras.pointing.acceptance`), so
    that the fit does not favour the directions the reconstruction prefers anyway.
    """

    _MAX_COMBINED_ROWS = 256
    """Most distinct (rows, weights) combinations merged into one table (8 MB of float32)."""

    def __init__(
        self,
        directions: Any,
        energies: Any,
        tables: LikelihoodTable | Mapping[str, LikelihoodTable],
        kappa: Any = None,
        weights: Any = None,
        flip_probability: Any = None,
        n_grid: int = 8192,
    ) -> None:
        d = np.asarray(directions, dtype=np.float64)
        if d.ndim != 2 or d.shape[1] != 3 or len(d) == 0:
            raise PointingError(f"burst directions must have shape (N>0, 3); received {d.shape}")
        norms = np.linalg.norm(d, axis=1)
        bad = ~np.isfinite(norms) | (norms == 0)
        if bad.any():
            raise PointingError(
                f"burst: event index {int(np.flatnonzero(bad)[0])} has a zero or non-finite direction"
            )
        self.directions = d / norms[:, None]
        self._d32 = self.directions.astype(np.float32)
        e = np.asarray(energies, dtype=np.float64).ravel()
        if e.shape != (len(d),):
            raise PointingError(f"burst energies must have shape ({len(d)},); received {e.shape}")
        self.n_grid = int(n_grid)
        if isinstance(tables, LikelihoodTable):
            comp_tables = [tables]
            w = None
        else:
            names = [k for k in ("es", "cc") if k in tables]
            if sorted(names) != sorted(tables) or not names:
                raise PointingError(
                    f"tables must be a LikelihoodTable or a dict with keys 'es', 'cc'; received {list(tables)}"
                )
            comp_tables = [tables[k] for k in names]
            if weights is None:
                raise PointingError(
                    "two tables (ES and CC) need per-event weights; see classification_weights"
                )
            w = np.asarray(weights, dtype=np.float64)
            if w.shape != (len(d), 2) or not np.all(np.isfinite(w)) or np.any(w < 0):
                raise PointingError(
                    f"weights must be finite, >= 0, of shape ({len(d)}, 2) (ES, CC); received {w.shape}"
                )
            w = w[:, [list(COMPONENTS).index(k) for k in names]]
        flips = self._flips(comp_tables, flip_probability, len(d))
        maps = [t.response for t in comp_tables]
        shared = all(_same_response(m, maps[0]) for m in maps[1:])
        self._maps = [maps[0]] if shared else maps
        accs = [t.acceptance for t in comp_tables]
        if not all(_same_acceptance(a, accs[0]) for a in accs[1:]):
            raise PointingError("the ES and CC tables carry different acceptances; a burst needs one g(d) for all")
        self.acceptance = accs[0]
        grid = np.linspace(-1.0, 1.0, self.n_grid + 1)
        fines: list[np.ndarray] = []
        inverses: list[np.ndarray] = []
        # per table: a_ℓm·λ_ℓ of each row used (Z of row u at m̂(n̂) = 1 + B[u] · Y(m̂(n̂)))
        weighted: list[np.ndarray] = []
        for table in comp_tables:
            rows, idx = table.row_index(e, kappa)
            used, inverse = np.unique(idx, return_inverse=True)
            fines.append(np.stack([table.interpolate(rows, np.full(len(grid), r), grid) for r in used]))
            inverses.append(inverse.ravel().astype(np.int64))
            if self.acceptance is not None:
                weighted.append(self.acceptance.weighted(table.moments(rows[used], self.acceptance.l_max)))
        if flips is not None:
            # the flipped peak of every table: its rows reversed in cos θ (the grid is symmetric),
            # Legendre moments × (−1)^ℓ, weights × f; the unflipped ones × (1 − f)
            w = np.ones((len(d), 1)) if w is None else w
            w = np.concatenate([w * (1.0 - flips)[:, None], w * flips[:, None]], axis=1)
            fines = fines + [f[:, ::-1] for f in fines]
            inverses = inverses + inverses
            if self.acceptance is not None:
                parity = (-1.0) ** harmonic_degrees(self.acceptance.l_max)
                weighted = weighted + [b * parity for b in weighted]
            if not shared:
                self._maps = self._maps + self._maps
        one_hot = w is not None and bool(np.all(np.sum(w > 0, axis=1) == 1))
        if w is not None and shared and (self.acceptance is None or one_hot):
            # Events sharing their rows and weights (no classifier: constant weights; perfect
            # classification: one-hot) share one combined row Σ_i w_i P_i: one table, one gather.
            # With an acceptance each row has its own Z(n̂), so only one-hot weights combine.
            keys = np.column_stack([*inverses, w])
            combos, inverse = np.unique(keys, axis=0, return_inverse=True)
            if len(combos) <= self._MAX_COMBINED_ROWS:
                combined = np.zeros((len(combos), len(grid)))
                for k, fine in enumerate(fines):
                    combined += combos[:, len(fines) + k, None] * fine[combos[:, k].astype(np.int64)]
                if self.acceptance is not None:
                    comp = np.argmax(combos[:, len(fines) :], axis=1)
                    row = combos[np.arange(len(combos)), comp].astype(np.int64)
                    weighted = [np.stack([weighted[c][r] for c, r in zip(comp, row)])]
                fines, inverses, w = [np.maximum(combined, 1e-300)], [inverse.ravel().astype(np.int64)], None
        self._weighted = weighted
        # events per row of each (remaining) table: Σ_i ln Z_i = Σ_u n_u ln Z_u when rows are not mixed
        self._row_counts = [np.bincount(inv, minlength=len(f)).astype(np.float64) for inv, f in zip(inverses, fines)]
        self._inverses = inverses
        self.weights = w
        self._w32 = None if w is None else w.astype(np.float32)
        self._pdf64 = [f.ravel() for f in fines]
        self._pdf32 = [f.astype(np.float32) for f in self._pdf64]
        self._offset = [inv * (self.n_grid + 1) for inv in inverses]
        self._off32 = [o.astype(np.int32)[:, None] for o in self._offset]
        self._log32 = np.log(self._pdf32[0]) if w is None else None

    def __len__(self) -> int:
        return len(self.directions)

    @staticmethod
    def _flips(tables: Sequence[LikelihoodTable], flip_probability: Any, n: int) -> np.ndarray | None:
        """Calibrated P(sense wrong) per event for oriented tables; None for the others."""
        oriented = [t.sense == "oriented" for t in tables]
        if any(oriented) and not all(oriented):
            raise PointingError("the ES and CC tables must both be oriented (sense) or both not")
        if not oriented[0]:
            if flip_probability is not None:
                raise PointingError(
                    "flip probabilities were given, but the tables were built with sense 'predicted' "
                    "(their rows already hold the flips); build them with sense 'oriented'"
                )
            return None
        if flip_probability is None:
            raise PointingError(
                "the tables were built with sense 'oriented': the burst needs each event's "
                "flip probability (predictions key 'flip_probability', an axial-head model)"
            )
        f = np.asarray(flip_probability, dtype=np.float64).ravel()
        if f.shape != (n,) or not np.all((f >= 0) & (f <= 1)):
            raise PointingError(f"flip probabilities must be {n} values in [0, 1]; received shape {f.shape}")
        return tables[0].calibrated_flip(f)

    def _exact(self, c: np.ndarray, k: int) -> np.ndarray:
        pos = (c + 1.0) * (0.5 * self.n_grid)
        i = np.clip(pos.astype(np.int64), 0, self.n_grid - 1)
        frac = pos - i
        flat_idx = self._offset[k][:, None] + i
        lo = self._pdf64[k][flat_idx]
        return lo + (self._pdf64[k][flat_idx + 1] - lo) * frac

    def _nearest_index(self, c32: np.ndarray) -> np.ndarray:
        """Grid index (without row offset) of the nearest grid point to each cos θ (in place on c32)."""
        c32 += np.float32(1.0)
        c32 *= np.float32(0.5 * self.n_grid)
        c32 += np.float32(0.5)
        i = c32.astype(np.int32)
        np.clip(i, 0, self.n_grid, out=i)
        return i

    def __call__(self, points: Any, exact: bool = False, chunk: int = 32) -> np.ndarray | float:
        """ln L at trial directions ``points`` ((M, 3) or (3,); normalised here)."""
        p = np.asarray(points, dtype=np.float64)
        single = p.ndim == 1
        p = np.atleast_2d(p)
        p = p / np.linalg.norm(p, axis=1, keepdims=True)
        # the trial directions as each table measures from them (one entry: shared by all)
        ps = [p if m is None else m(p) for m in self._maps]
        ps32 = [q.astype(np.float32) for q in ps]
        n_comp = len(self._pdf64)

        def trial(k: int) -> int:
            return k if len(ps) > 1 else 0

        # Z of every row used, at every trial direction: (rows, M) per table
        z = None
        if self.acceptance is not None:
            ys = [real_harmonics(q, self.acceptance.l_max) for q in ps]
            z = [np.maximum(1.0 + self._weighted[k] @ ys[trial(k)].T, Z_MIN) for k in range(n_comp)]
        out = np.empty(len(p))
        for s in range(0, len(p), chunk):
            sl = slice(s, s + chunk)
            if exact:
                cs = [np.clip(self.directions @ q[sl].T, -1.0, 1.0) for q in ps]
                if self.weights is None:
                    like = self._exact(cs[0], 0)
                else:
                    like = sum(
                        self.weights[:, k, None]
                        * self._exact(cs[trial(k)], k)
                        / (1.0 if z is None else z[k][self._inverses[k], sl])
                        for k in range(n_comp)
                    )
                out[sl] = np.sum(np.log(np.maximum(like, 1e-300)), axis=0)
            else:
                idx = [self._nearest_index(self._d32 @ q[sl].T) for q in ps32]
                if self._log32 is not None:
                    i = idx[0]
                    i += self._off32[0]
                    out[sl] = self._log32[i].sum(axis=0, dtype=np.float64)
                else:
                    like = self._pdf32[0][idx[0] + self._off32[0]]
                    like *= self._w32[:, 0, None]
                    if z is not None:
                        like /= z[0][self._inverses[0], sl].astype(np.float32)
                    for k in range(1, n_comp):
                        term = self._pdf32[k][idx[trial(k)] + self._off32[k]]
                        term *= self._w32[:, k, None]
                        if z is not None:
                            term /= z[k][self._inverses[k], sl].astype(np.float32)
                        like += term
                    np.maximum(like, np.float32(1e-30), out=like)
                    out[sl] = np.log(like).sum(axis=0, dtype=np.float64)
            if z is not None and self.weights is None:
                out[sl] -= self._row_counts[0] @ np.log(z[0][:, sl])
        return float(out[0]) if single else out


def _same_response(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is b
    return a.degree == b.degree and np.array_equal(a.coefficients, b.coefficients)


def _same_acceptance(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is b
    return a.l_max == b.l_max and np.array_equal(a.coefficients, b.coefficients)


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
    use_healpy: bool = True,
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
        weights: (N, 2) ES/CC weights (:func:`classification_weights`).
        flip_probability: (N,) P(sense wrong) for tables with sense "oriented" (see
            :class:`BurstLikelihood`).
        n_lattice: coarse-scan size (when ``lattice`` is None).
        lattice: explicit (M, 3) scan directions.
        n_starts: local searches started from the best lattice points (at least 1.5 lattice
            spacings apart, and within 25 in ln L of the best one).
        levels: confidence levels of the regions.
        n_local: points of the local lattice that maps the regions.
        use_healpy: use HEALPix for the scan when healpy is importable.
        n_grid: cos θ grid of the likelihood evaluation.
        region_thresholds: {CL: ΔlnL} calibrated on simulated bursts (:func:`region_thresholds`)
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
        lattice, kind = sky_lattice(n_lattice, use_healpy)
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


@dataclass
class BurstPlan:
    """Which events make each burst, and where each burst's supernova is.

    Sharing a plan lets several prediction sets of the same events (true directions, the
    classical baseline, networks) be pointed on the same bursts.

    Attributes:
        indices: (n_bursts, n_events) event indices into the large sample.
        directions: (n_bursts, 3) supernova directions (for ``rotate``; for ``resample`` the
            direction the burst's events were simulated with).
        spins: (n_bursts,) rotation angles about the supernova direction (``rotate``).
    """

    indices: np.ndarray
    directions: np.ndarray
    spins: np.ndarray


def direction_groups(nu_directions: Any, decimals: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Group events by their (fixed) supernova direction.

    Args:
        nu_directions: (N, 3) neutrino directions.
        decimals: rounding used to decide that two directions are the same.

    Returns:
        (labels (N,), directions (K, 3)) — the K distinct directions.
    """
    nu = np.asarray(nu_directions, dtype=np.float64)
    if nu.ndim != 2 or nu.shape[1] != 3 or not np.all(np.isfinite(nu)):
        raise PointingError("direction groups need finite nu_directions of shape (N, 3)")
    dirs, labels = np.unique(np.round(nu, decimals), axis=0, return_inverse=True)
    dirs = dirs / np.linalg.norm(dirs, axis=1, keepdims=True)
    return labels.ravel(), dirs


def plan_bursts(
    n_sample: int,
    n_events: int | Mapping[int, int],
    n_bursts: int,
    rng: np.random.Generator,
    interaction: Any = None,
    groups: Any = None,
    group_directions: Any = None,
) -> BurstPlan:
    """Draw the events and supernova directions of ``n_bursts`` bursts.

    Args:
        n_sample: size of the large predicted sample.
        n_events: events per burst, or ``{1: n_ES, 0: n_CC}`` drawn from those classes
            (needs ``interaction``).
        n_bursts: number of bursts.
        rng: numpy Generator.
        interaction: (n_sample,) interaction codes.
        groups: (n_sample,) direction-group labels (:func:`direction_groups`): each burst
            takes one group (chosen uniformly) and draws only from it (``resample``).
        group_directions: (K, 3) the groups' directions (required with ``groups``).

    Returns:
        A :class:`BurstPlan`. Events are drawn without replacement within a burst when the
        pool is large enough, else with replacement.
    """
    counts: list[tuple[int | None, int]]
    if isinstance(n_events, Mapping):
        if interaction is None:
            raise PointingError(
                "n_events per interaction needs the sample's interaction codes; received none"
            )
        counts = [(int(code), int(k)) for code, k in n_events.items()]
    else:
        counts = [(None, int(n_events))]
    it = None if interaction is None else np.asarray(interaction).ravel()
    labels = np.zeros(n_sample, dtype=np.int64) if groups is None else np.asarray(groups).ravel()
    n_groups = int(labels.max()) + 1
    pools: dict[tuple[int, int | None], np.ndarray] = {}
    for g in range(n_groups):
        for code, k in counts:
            sel = labels == g if code is None else (labels == g) & (it == code)
            pools[g, code] = np.flatnonzero(sel)
            if k > 0 and len(pools[g, code]) == 0:
                raise PointingError(
                    f"no event with interaction {code} in direction group {g} of the sample to draw {k} from"
                )
    chosen = rng.integers(0, n_groups, n_bursts)
    idx = np.empty((n_bursts, sum(k for _, k in counts)), dtype=np.int64)
    for b in range(n_bursts):
        parts = []
        for code, k in counts:
            if k > 0:
                pool = pools[int(chosen[b]), code]
                parts.append(rng.choice(pool, size=k, replace=k > len(pool)))
        idx[b] = np.concatenate(parts)
    directions = random_directions(n_bursts, rng)
    if groups is not None:
        if group_directions is None:
            raise PointingError("plan_bursts: groups need group_directions")
        directions = np.asarray(group_directions, dtype=np.float64)[chosen]
    return BurstPlan(indices=idx, directions=directions, spins=rng.uniform(0.0, 2.0 * np.pi, n_bursts))


@dataclass
class ResolutionResult:
    """Pointing resolution from many simulated bursts.

    Attributes:
        n_events: events per burst.
        n_bursts: bursts fitted.
        errors_deg: (n_bursts,) angle between fitted and true supernova direction.
        theta68: angle holding 68 % of the bursts (the pointing resolution), degrees.
        theta68_ci: its bootstrap 68 % interval.
        coverage: {CL: share of bursts whose CL region holds the true direction}.
        region_radius_median: {CL: median equal-area region radius}, degrees.
        method: "resample", "rotate" or "direct".
        seconds_per_fit: mean fit time.
        delta_at_truth: (n_bursts,) ln L_max − ln L at the true direction (what
            :func:`region_thresholds` calibrates on).
        approximation: how the regions were made (Wilks or calibrated thresholds).
        secondary_delta: (n_bursts,) ln L_max − ln L at the burst's second local maximum
            ≥ 60° away (:attr:`BurstFit.secondary_delta`), NaN where it has none.
    """

    n_events: int
    n_bursts: int
    errors_deg: np.ndarray
    theta68: float
    theta68_ci: tuple[float, float]
    coverage: dict[float, float]
    region_radius_median: dict[float, float]
    method: str
    seconds_per_fit: float
    delta_at_truth: np.ndarray = field(default_factory=lambda: np.zeros(0))
    approximation: str = WILKS_2DOF
    secondary_delta: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def competing_share(self, delta: float) -> float:
        """Share of bursts with a second local maximum ≥ 60° away at most ``delta`` below the best."""
        return float(np.mean(np.nan_to_num(self.secondary_delta, nan=np.inf) <= delta))

    def coverage_with(self, thresholds: Mapping[float, float]) -> dict[float, float]:
        """{CL: share of these bursts whose region with ΔlnL ``thresholds[CL]`` holds the truth}.

        The same count :meth:`BurstFit.contains` makes, without refitting: for thresholds from
        :func:`region_thresholds` of *other* bursts, this is their held-out coverage.
        """
        return {float(cl): float(np.mean(self.delta_at_truth <= v)) for cl, v in thresholds.items()}

    def summary(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {
            "approximation": self.approximation,
            "n_events": self.n_events,
            "n_bursts": self.n_bursts,
            "theta68_deg": self.theta68,
            "theta68_ci": list(self.theta68_ci),
            "coverage": {f"{k:g}": v for k, v in self.coverage.items()},
            "region_radius_median_deg": {f"{k:g}": v for k, v in self.region_radius_median.items()},
            "method": self.method,
            "seconds_per_fit": self.seconds_per_fit,
        }


def _burst_inputs(pred: Any, idx: Any = None) -> dict[str, Any]:
    sel = slice(None) if idx is None else idx

    def get(name: str) -> np.ndarray | None:
        v = getattr(pred, name, None)
        return None if v is None else np.asarray(v)[sel]

    out = {
        "directions": np.asarray(pred.predictions)[sel],
        "energies": get("energies"),
        "kappa": get("kappa"),
        "interaction": get("interaction"),
        "es_probability": get("es_probability"),
        "flip_probability": get("flip_probability"),
        "nu": get("nu_directions"),
    }
    if out["energies"] is None:
        raise PointingError("burst: the predictions have no 'energies' (reconstructed energy)")
    return out


def _fit_one(
    inputs: dict[str, Any],
    tables: LikelihoodTable | Mapping[str, LikelihoodTable],
    classification: str,
    es_fraction: float | None,
    use_kappa: bool,
    fit_options: Mapping[str, Any],
) -> BurstFit:
    weights = None
    if not isinstance(tables, LikelihoodTable):
        weights = classification_weights(
            len(inputs["directions"]),
            mode=classification,
            es_fraction=es_fraction,
            # "mixed" is the expected fractions alone even where the events carry a classifier's output
            es_probability=inputs["es_probability"] if classification == "classifier" else None,
            interaction=inputs["interaction"],
        )
    return fit_burst(
        inputs["directions"],
        inputs["energies"],
        tables,
        kappa=inputs["kappa"] if use_kappa else None,
        weights=weights,
        flip_probability=flips_for(tables, inputs["flip_probability"]),
        **fit_options,
    )


def flips_for(tables: LikelihoodTable | Mapping[str, LikelihoodTable], flips: Any) -> Any:
    """The events' flip probabilities where the tables use them (sense "oriented"), else None."""
    first = tables if isinstance(tables, LikelihoodTable) else next(iter(tables.values()))
    return flips if first.sense == "oriented" else None


METHODS = ("resample", "rotate", "direct")
"""Ways :func:`pointing_resolution` makes bursts."""


def pointing_resolution(
    predictions: Any,
    tables: LikelihoodTable | Mapping[str, LikelihoodTable],
    n_events: int | Mapping[int, int],
    n_bursts: int,
    rng: np.random.Generator,
    method: str = "resample",
    *,
    generator: Callable[[np.ndarray, Any, np.random.Generator], Any] | None = None,
    directions: Any = None,
    plan: BurstPlan | None = None,
    classification: str = "mixed",
    es_fraction: float | None = None,
    use_kappa: bool = True,
    levels: Sequence[float] = (0.68, 0.90),
    progress: bool = False,
    **fit_options: Any,
) -> ResolutionResult:
    """Pointing resolution: fit many bursts and take the angle holding 68 % of them.

    Three ways to make the bursts:

    * ``"resample"`` (default, fast and exact in distribution): ``predictions`` holds events
      simulated (and reconstructed) with the supernova at one or a few fixed directions;
      each burst takes one of those directions and draws ``n_events`` of its events. The
      bursts are then what fresh simulation at those directions gives (re-used events
      correlate bursts a little: keep the sample several times larger than a burst).
      Average over orientations by simulating at several directions.
    * ``"rotate"``: draws from a large sample and rotates every event by the rotation
      taking its neutrino direction to a random supernova direction (:func:`rotate_to`).
      This keeps each event's angle to the neutrino but **assumes that the reconstruction
      errors do not depend on the orientation in the detector**. It agrees with fresh
      bursts for such (isotropic) error models (``tests/test_pointing.py``); for the
      classical reconstruction of simulated events it does not (coherent,
      orientation-dependent biases; the slow test there), so do not use it for detector
      predictions.
    * ``"direct"``: each burst is made fresh by ``generator(direction, n_events, rng)``
      (e.g. :func:`simulator_generator`), which returns a Predictions-like object; the
      directions are drawn isotropically, or uniformly from ``directions``.

    Args:
        predictions: the large predicted sample (``resample``, ``rotate``).
        tables: a table or ``{"es": …, "cc": …}``.
        n_events: events per burst, or ``{1: n_ES, 0: n_CC}``.
        n_bursts: number of bursts.
        rng: numpy Generator.
        method: one of :data:`METHODS`.
        generator: burst maker for ``direct``.
        directions: (K, 3) supernova directions for ``direct`` (default isotropic).
        plan: a :class:`BurstPlan` to reuse (``resample``/``rotate``); drawn when None.
        classification: ``"mixed"`` (expected fractions), ``"classifier"`` (with the events'
            ``es_probability``) or ``"perfect"`` (with two tables).
        es_fraction: expected ES share (mixed, classifier); defaults to the burst's true share.
        use_kappa: pass κ to tables with κ bins.
        levels: confidence levels whose coverage is counted.
        progress: show a tqdm bar.
        **fit_options: passed to :func:`fit_burst` (e.g. ``n_lattice``).

    Returns:
        A :class:`ResolutionResult`.
    """

    if method not in METHODS:
        raise PointingError(f"pointing_resolution method must be one of {list(METHODS)}; received {method!r}")
    if method == "direct" and generator is None:
        raise PointingError("method 'direct' needs a generator(direction, n_events, rng)")
    if method in ("resample", "rotate"):
        if getattr(predictions, "nu_directions", None) is None:
            raise PointingError(f"method {method!r} needs the sample's 'nu_directions'")
        if plan is None:
            groups = group_dirs = None
            if method == "resample":
                groups, group_dirs = direction_groups(predictions.nu_directions)
                smallest = int(np.bincount(groups).min())
                per_burst = sum(n_events.values()) if isinstance(n_events, Mapping) else int(n_events)
                if smallest < 2 * per_burst:
                    raise PointingError(
                        f"method 'resample' needs events simulated at fixed supernova directions, at least "
                        f"2 × {per_burst} per direction; the sample has {len(group_dirs)} distinct directions, "
                        f"the smallest with {smallest} events (simulate at a few fixed directions, or use 'direct')"
                    )
            plan = plan_bursts(
                len(predictions.predictions),
                n_events,
                n_bursts,
                rng,
                getattr(predictions, "interaction", None),
                groups=groups,
                group_directions=group_dirs,
            )
        n_bursts = len(plan.indices)
    fixed = None if directions is None else np.asarray(directions, dtype=np.float64).reshape(-1, 3)
    if fit_options.get("region_thresholds"):
        levels = tuple(float(cl) for cl in fit_options["region_thresholds"])
    errors = np.empty(n_bursts)
    delta = np.empty(n_bursts)
    second = np.full(n_bursts, np.nan)
    covered = {float(cl): np.zeros(n_bursts, dtype=bool) for cl in levels}
    radii = {float(cl): np.empty(n_bursts) for cl in levels}
    seconds = 0.0
    it: Any = range(n_bursts)
    if progress:
        from tqdm import tqdm

        it = tqdm(it, desc=f"bursts ({method})", unit="burst")
    n_per = 0
    for b in it:
        if method == "rotate":
            truth = plan.directions[b]
            inputs = _burst_inputs(predictions, plan.indices[b])
            inputs["directions"] = rotate_to(inputs["directions"], inputs["nu"], truth, plan.spins[b])
        elif method == "resample":
            inputs = _burst_inputs(predictions, plan.indices[b])
            nu = inputs["nu"] / np.linalg.norm(inputs["nu"], axis=1, keepdims=True)
            truth = nu[0]
            if np.max(np.linalg.norm(nu - truth, axis=1)) > 1e-4:
                raise PointingError(
                    f"resample: burst {b} mixes events of different supernova directions; "
                    "make the plan with direction groups (plan_bursts(..., groups=...))"
                )
        else:
            if fixed is None:
                truth = random_directions(1, rng)[0]
            else:
                truth = fixed[rng.integers(0, len(fixed))]
                truth = truth / np.linalg.norm(truth)
            inputs = _burst_inputs(generator(truth, n_events, rng))
        n_per = len(inputs["directions"])
        frac = es_fraction
        if frac is None and not isinstance(tables, LikelihoodTable) and classification in ("mixed", "classifier"):
            if inputs["interaction"] is None:
                raise PointingError(f"{classification} classification needs es_fraction or the events' interaction codes")
            frac = float(np.clip(np.mean(inputs["interaction"] == 1), 1e-3, 1 - 1e-3))
        fit = _fit_one(inputs, tables, classification, frac, use_kappa, {"levels": levels, **fit_options})
        seconds += fit.seconds
        errors[b] = fit.angle_to_deg(truth)
        delta[b] = fit.delta_at(truth)
        if fit.secondary_delta is not None:
            second[b] = fit.secondary_delta
        for cl in covered:
            covered[cl][b] = fit.contains(truth, cl)
            radii[cl][b] = fit.region_radius_deg[cl]
    theta68 = containment_angle(errors, 0.68)
    ci = bootstrap_ci(errors, lambda x: containment_angle(x, 0.68), n_boot=500, cl=0.68, seed=0)
    return ResolutionResult(
        n_events=n_per,
        n_bursts=n_bursts,
        errors_deg=errors,
        theta68=float(theta68),
        theta68_ci=(float(ci[0]), float(ci[1])),
        coverage={cl: float(v.mean()) for cl, v in covered.items()},
        region_radius_median={cl: float(np.median(v)) for cl, v in radii.items()},
        method=method,
        seconds_per_fit=seconds / max(n_bursts, 1),
        delta_at_truth=delta,
        approximation=CALIBRATED if fit_options.get("region_thresholds") else WILKS_2DOF,
        secondary_delta=second,
    )


def region_thresholds(
    calibration: ResolutionResult | Sequence[ResolutionResult] | Any, levels: Sequence[float] = (0.68, 0.90)
) -> dict[float, float]:
    """ΔlnL thresholds that make regions hold the truth at their level, from calibration bursts.

    Wilks' −ln(1 − CL) assumes the likelihood is the true density of the events. The tables
    are averages over all supernova directions and energies, and what is left of a
    reconstruction's detector-frame bias after the response map is not in them, so for
    reconstructions the Wilks regions are too small (the pointing notebook measured 68 %
    regions holding the truth in 0–20 % of bursts). Taking the CL quantile of ln L_max − ln L
    at the true direction over simulated bursts makes regions that hold the truth in a
    share CL of such bursts — on average over the directions simulated, so calibrate on
    supernova directions spread over the sky and **not** on the bursts whose coverage is
    then quoted. The thresholds hold for bursts like the calibration ones (the same event
    counts and classification): where a leftover bias dominates, ΔlnL at the truth grows
    with the number of events.

    Args:
        calibration: a :class:`ResolutionResult` (or several, pooled) of calibration bursts,
            or an array of ln L_max − ln L at the truth.
        levels: confidence levels.

    Returns:
        {CL: ΔlnL threshold} for :func:`fit_burst` / :func:`pointing_resolution`
        (``region_thresholds=``) and ``edkeras point --region-threshold``.

    Raises:
        PointingError: fewer than 10 calibration bursts, or a level outside (0, 1).
    """
    if isinstance(calibration, ResolutionResult):
        values = calibration.delta_at_truth
    elif isinstance(calibration, Sequence) and calibration and isinstance(calibration[0], ResolutionResult):
        values = np.concatenate([r.delta_at_truth for r in calibration])
    else:
        values = np.asarray(calibration, dtype=np.float64).ravel()
    values = values[np.isfinite(values)]
    if len(values) < 10:
        raise PointingError(f"region_thresholds needs at least 10 calibration bursts; received {len(values)}")
    out = {}
    for cl in levels:
        delta_log_likelihood(cl)  # checks the level
        # conservative: never below Wilks' value (the quantile of a few dozen bursts is noisy)
        out[float(cl)] = float(max(np.quantile(np.maximum(values, 0.0), cl), delta_log_likelihood(cl)))
    return out


def simulator_generator(
    predict: Callable[[Any], Any] | None = None,
    config: Any = None,
) -> Callable[[np.ndarray, int | Mapping[int, int], np.random.Generator], Any]:
    """A burst maker for ``pointing_resolution(method="direct")`` built on :mod:`edkeras.events.sim`.

    Each call simulates a fresh burst with the supernova at ``direction`` and reconstructs
    it with ``predict``.

    Args:
        predict: callable(EventBatch) → (N, 3) directions, or (N, 4) with κ in column 3
            (a wrapped Keras model, the classical baseline …); None uses the true electron
            directions (the statistical floor).
        config: a :class:`edkeras.events.sim.SimConfig` (its ``direction`` is replaced per burst;
            default: ``SimConfig(channel="mix", es_fraction=0.1)``).

    Returns:
        generator(direction, n_events, rng) → Predictions, where ``n_events`` is a count
        (the config's channel mix) or ``{1: n_ES, 0: n_CC}``.
    """
    from dataclasses import replace as dc_replace

    def make(direction: np.ndarray, n_events: int | Mapping[int, int], rng: np.random.Generator) -> Any:

        base = config if config is not None else SimConfig(channel="mix", es_fraction=0.1)
        d = tuple(float(x) for x in np.asarray(direction, dtype=np.float64).ravel())
        if isinstance(n_events, Mapping):
            parts = [
                simulate(
                    int(k),
                    seed=int(rng.integers(2**31)),
                    config=dc_replace(base, channel="es" if code == 1 else "cc", direction=d),
                )
                for code, k in n_events.items()
                if k > 0
            ]
            batch = EventBatch.concatenate(parts)
        else:
            batch = simulate(
                int(n_events), seed=int(rng.integers(2**31)), config=dc_replace(base, direction=d)
            )
        out = np.asarray(batch.direction if predict is None else predict(batch), dtype=np.float64)
        energy = np.where(np.isfinite(batch.reco_energy), batch.reco_energy, batch.energy)
        return Predictions(
            predictions=out[:, :3],
            kappa=out[:, 3] if out.shape[1] == 4 else None,
            energies=energy.astype(np.float64),
            true_directions=batch.direction.astype(np.float64),
            interaction=batch.interaction,
            nu_directions=batch.nu_direction.astype(np.float64),
        )

    return make


def resolution_vs_events(
    predictions: Any,
    tables: LikelihoodTable | Mapping[str, LikelihoodTable],
    n_events_list: Sequence[int],
    n_bursts: int,
    rng: np.random.Generator,
    **options: Any,
) -> list[ResolutionResult]:
    """:func:`pointing_resolution` for each burst size in ``n_events_list`` (expect θ68 ∝ 1/√N)."""
    return [pointing_resolution(predictions, tables, n, n_bursts, rng, **options) for n in n_events_list]
