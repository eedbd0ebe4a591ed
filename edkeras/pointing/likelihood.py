"""The likelihood of a burst: ln L(n̂) = Σ_e ln Σ_i w_ei P_i(cos θ_e | E_e) for trial supernova directions n̂.

Per-event class weights w_ei (ES, CC) come from :func:`classification_weights`: the expected
fractions, a classifier's ES probability, or the true interaction (perfect classification).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from edkeras.core.errors import PointingError
from edkeras.pointing.acceptance import Z_MIN, harmonic_degrees, real_harmonics
from edkeras.pointing.tables import COMPONENTS, LikelihoodTable

__all__ = ['BurstLikelihood', 'classification_weights']


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
    ES table of :func:`edkeras.pointing.fitting.build_table` carries the map, its CC table not).
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
