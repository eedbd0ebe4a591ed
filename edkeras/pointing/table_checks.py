"""Is a likelihood table right for held-out events? Mean log-likelihood, PIT values and their check, methods compared."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from edkeras.core.errors import TableError
from edkeras.pointing.fitting import (
    _event_cosines,
    build_table,
    reference_cosines,
)
from edkeras.pointing.rows import (
    METHODS,
    _energy_edges,
)
from edkeras.pointing.tables import DEFAULT_ENERGY_EDGES, LikelihoodTable

__all__ = [
    "compare_methods",
    "mean_log_likelihood",
    "pit_check",
    "pit_values",
]


def mean_log_likelihood(
    table: LikelihoodTable, cos: Any, energy: Any, kappa: Any = None, interaction: Any = None
) -> float:
    """Mean ln P(cos θ | E …) per event: the held-out score of a table (higher is better)."""
    return float(np.mean(table.logpdf(cos, energy, kappa, interaction)))


def pit_values(table: LikelihoodTable, cos: Any, energy: Any, kappa: Any = None) -> np.ndarray:
    """Probability integral transform u = F(cos θ | E): uniform on [0, 1] when the table is right."""
    return table.cdf(cos, energy, kappa)


def pit_check(u: Any, levels: Sequence[float] = (0.5, 0.68, 0.9)) -> dict[str, Any]:
    """Is the PIT uniform? Kolmogorov–Smirnov test and the coverage of forward cones.

    Coverage at level q: the share of events with u ≥ 1 − q, i.e. whose cos θ lies in
    the forward region that the table says holds q of the probability. A right table
    gives q (within binomial errors).

    Args:
        u: PIT values.
        levels: probabilities q to check.

    Returns:
        ``{"n", "ks_statistic", "p_value", "coverage": {q: observed}, "coverage_error": {q: σ}}``.
    """
    from scipy import stats

    x = np.asarray(u, dtype=np.float64).ravel()
    if len(x) == 0:
        raise TableError("pit_check: expected at least one PIT value; received none")
    ks = stats.kstest(x, "uniform")
    cov = {float(q): float(np.mean(x >= 1.0 - q)) for q in levels}
    err = {float(q): float(np.sqrt(q * (1 - q) / len(x))) for q in levels}
    return {
        "n": len(x),
        "ks_statistic": float(ks.statistic),
        "p_value": float(ks.pvalue),
        "coverage": cov,
        "coverage_error": err,
    }


def compare_methods(
    calibration: Any,
    heldout: Any,
    methods: Sequence[str] = METHODS,
    **options: Any,
) -> dict[str, dict[str, Any]]:
    """Fit a table per method on ``calibration``, score each on ``heldout`` predictions.

    Args:
        calibration: Predictions (or list) to fit on.
        heldout: Predictions to score (events outside the energy range are skipped).
        methods: methods to compare.
        **options: :func:`~edkeras.pointing.fitting.fit_table` options shared by all methods.

    Returns:
        ``{method: {"mean_log_likelihood", "n", "pit": pit_check(...), "by_energy": {"lo-hi":
        {"mean_log_likelihood", "n"}}}}`` (``by_energy``: per bin of the table's reconstructed energy, MeV).

    The tables compared describe the predictions as they are (sense ``"predicted"``), so
    that every held-out event is scored by one row, whatever its flip probability.
    """
    options = {k: v for k, v in options.items() if k != "sense"}
    reference = options.get("reference", "neutrino")
    cos = reference_cosines(heldout, reference)  # without a response map; refitted per table below
    if heldout.energies is None:
        raise TableError(f"{heldout.path or 'held-out predictions'}: key 'energies' is missing")
    e = heldout.energies
    edges = _energy_edges(options.get("energy_edges", DEFAULT_ENERGY_EDGES))
    kap = heldout.kappa_equivalent if options.get("kappa_bins") else None
    use = np.isfinite(cos) & np.isfinite(e) & (e >= edges[0]) & (e < edges[-1])
    if kap is not None:
        use &= np.isfinite(kap)
    if not use.any():
        raise TableError("compare_methods: no held-out event inside the table's energy range")
    inter = None if heldout.interaction is None else heldout.interaction[use]
    out: dict[str, dict[str, Any]] = {}
    for m in methods:
        table = build_table(calibration, method=m, sense="predicted", **options)
        if table.response is not None:
            cos = (_event_cosines if table.components else reference_cosines)(heldout, reference, table.response)
        kk = None if kap is None else kap[use]
        c, ee = cos[use], e[use]
        by_energy = {}
        for lo, hi in itertools.pairwise(edges):
            b = (ee >= lo) & (ee < hi)
            if b.any():
                by_energy[f"{lo:g}-{hi:g}"] = {
                    "mean_log_likelihood": mean_log_likelihood(
                        table, c[b], ee[b], None if kk is None else kk[b], None if inter is None else inter[b]
                    ),
                    "n": int(b.sum()),
                }
        out[m] = {
            "mean_log_likelihood": mean_log_likelihood(table, c, ee, kk, inter),
            "n": int(use.sum()),
            "pit": pit_check(pit_values(table, c, ee, kk)),
            "by_energy": by_energy,
        }
    return out
