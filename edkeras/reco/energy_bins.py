"""Direction resolution against energy and interaction type, as tables (proposal 5a/5b).

Method notes: ``docs/methods.md``, section ``edkeras.reco.energy_bins``.

Example:
    >>> from edkeras.reco.energy_bins import resolution_table, format_markdown, PROPOSAL_EDGES
    >>> rows = resolution_table(errors_deg, reco_energy, PROPOSAL_EDGES, interaction=inter,
    ...                         by_interaction=True, n_boot=500)
    >>> print(format_markdown(rows, title="compact, test split"))
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from edkeras.core.errors import InputError
from edkeras.reco.metrics import resolution_summary
from edkeras.reco.predictions import load_predictions

__all__ = [
    "ENERGY_KINDS",
    "INTERACTION_NAMES",
    "LIKELIHOOD_EDGES",
    "PROPOSAL_EDGES",
    "bin_label",
    "format_comparison",
    "format_markdown",
    "resolution_table",
    "tables_from_predictions",
]

PROPOSAL_EDGES: tuple[float, ...] = (-math.inf, 20.0, 40.0, math.inf)
"""The proposal's energy bins (MeV): < 20, 20–40, ≥ 40."""

LIKELIHOOD_EDGES: tuple[float, ...] = (5.0, 10.0, 15.0, 20.0, 30.0, 50.0, math.inf)
"""The likelihood bins (MeV): 5–10, 10–15, 15–20, 20–30, 30–50, 50+."""

INTERACTION_NAMES: dict[int, str] = {1: "ES", 0: "CC"}
"""Interaction codes of the event and predictions files."""

ENERGY_KINDS = ("reconstructed", "true")

_STATS = ("theta68", "median", "mean", "flip_fraction")


def bin_label(lo: float, hi: float) -> str:
    """A short label of the energy bin [lo, hi) in MeV: ``"<20"``, ``"20–40"``, ``"50+"``."""
    if not np.isfinite(lo) or lo <= 0:
        return f"<{hi:g}" if np.isfinite(hi) else "all"
    if not np.isfinite(hi):
        return f"{lo:g}+"
    return f"{lo:g}–{hi:g}"


def _check_edges(edges: Sequence[float]) -> np.ndarray:
    e = np.asarray(edges, dtype=np.float64).ravel()
    if e.size < 2 or np.any(np.isnan(e)) or not np.all(np.diff(e) > 0):
        raise InputError(f"energy bins: expected at least two increasing edges (MeV); received {list(e)}")
    return e


def _summary(errors: np.ndarray, n_boot: int, seed: int, cl: float, min_events: int) -> dict[str, Any]:

    if errors.size >= max(int(min_events), 1):
        return resolution_summary(errors, n_boot=n_boot, seed=seed, cl=cl)
    out: dict[str, Any] = {"n": int(errors.size)}
    for key in _STATS:
        out[key] = math.nan
        out[f"{key}_ci"] = (math.nan, math.nan)
    return out


def resolution_table(
    errors_deg: Any,
    energies: Any,
    edges: Sequence[float] = LIKELIHOOD_EDGES,
    *,
    energy_kind: str = "reconstructed",
    interaction: Any = None,
    by_interaction: bool = False,
    include_total: bool = True,
    n_boot: int = 1000,
    seed: int = 0,
    cl: float = 0.68,
    min_events: int = 1,
) -> list[dict[str, Any]]:
    """θ68, median, mean and flip fraction with bootstrap CIs in energy bins.

    Args:
        errors_deg: (N,) angular errors in degrees.
        energies: (N,) energy in MeV used for binning (NaN events fall in no bin).
        edges: increasing bin edges in MeV (±inf allowed); a bin holds lo ≤ E < hi.
        energy_kind: ``"reconstructed"`` or ``"true"``: which energy ``energies`` is; it is
            written into every row so that a table says what it was binned in.
        interaction: (N,) 1 = ES, 0 = CC, −1 unknown (needed with ``by_interaction``).
        by_interaction: add rows for ES and for CC events (after the rows of all events).
        include_total: add an ``"all"`` row (every event, whatever its energy) per group.
        n_boot, seed, cl: bootstrap settings (:func:`edkeras.reco.metrics.resolution_summary`).
        min_events: bins with fewer events get NaN statistics (the row is kept).

    Returns:
        One dict per (interaction group, bin), with keys ``energy, interaction, bin, lo,
        hi, n, theta68, theta68_ci, median, median_ci, mean, mean_ci, flip_fraction,
        flip_fraction_ci``.

    Raises:
        InputError: mismatched lengths, bad edges, an unknown ``energy_kind``, or
            ``by_interaction`` without ``interaction``.
    """
    err = np.asarray(errors_deg, dtype=np.float64).ravel()
    en = np.asarray(energies, dtype=np.float64).ravel()
    if en.shape != err.shape:
        raise InputError(
            f"resolution_table: energies must have one value per event ({err.size}); received {en.size}"
        )
    if energy_kind not in ENERGY_KINDS:
        raise InputError(
            f"resolution_table: energy_kind must be one of {ENERGY_KINDS}; received {energy_kind!r}"
        )
    e = _check_edges(edges)
    groups: list[tuple[str, np.ndarray]] = [("all", np.ones(err.size, dtype=bool))]
    if by_interaction:
        if interaction is None:
            raise InputError(
                "resolution_table: by_interaction=True needs the interaction array; received None"
            )
        inter = np.asarray(interaction).ravel()
        if inter.shape != err.shape:
            raise InputError(
                f"resolution_table: interaction must have one value per event ({err.size}); received {inter.size}"
            )
        groups += [(name, inter == code) for code, name in INTERACTION_NAMES.items()]
    rows: list[dict[str, Any]] = []
    for gname, gmask in groups:
        for i in range(e.size - 1):
            lo, hi = float(e[i]), float(e[i + 1])
            inside = gmask & (en >= lo) & (en < hi)
            rows.append(
                {
                    "energy": energy_kind,
                    "interaction": gname,
                    "bin": bin_label(lo, hi),
                    "lo": lo,
                    "hi": hi,
                    **_summary(err[inside], n_boot, seed, cl, min_events),
                }
            )
        if include_total:
            rows.append(
                {
                    "energy": energy_kind,
                    "interaction": gname,
                    "bin": "all",
                    "lo": -math.inf,
                    "hi": math.inf,
                    **_summary(err[gmask], n_boot, seed, cl, min_events),
                }
            )
    return rows


def tables_from_predictions(
    predictions: Any,
    edges: Sequence[float] = LIKELIHOOD_EDGES,
    *,
    energy: str = "reconstructed",
    by_interaction: bool = True,
    **kwargs: Any,
) -> list[dict[str, Any]]:
    """:func:`resolution_table` of a predictions file or :class:`~edkeras.reco.predictions.Predictions`.

    Args:
        predictions: a path to a ``.npz`` predictions file, or a ``Predictions`` object.
        edges: bin edges in MeV.
        energy: ``"reconstructed"`` (the file's ``energies``) or ``"true"``
            (``true_energies``).
        by_interaction: add ES and CC rows when the file knows the interaction types.
        **kwargs: passed to :func:`resolution_table` (``n_boot``, ``seed``, …).

    Raises:
        InputError: the file lacks the truth (no angular errors) or the requested energy.
    """

    p = predictions if hasattr(predictions, "predictions") else load_predictions(predictions)
    where = str(getattr(p, "path", None) or "predictions")
    if energy not in ENERGY_KINDS:
        raise InputError(f"{where}: energy must be one of {ENERGY_KINDS}; received {energy!r}")
    err = p.angular_errors
    if err is None or not np.isfinite(err).any():
        raise InputError(
            f"{where}: no angular errors (the true directions are unknown); cannot bin resolution"
        )
    en = p.energies if energy == "reconstructed" else p.true_energies
    key = "energies" if energy == "reconstructed" else "true_energies"
    if en is None:
        raise InputError(f"{where}: key '{key}' is missing; expected the {energy} energy (MeV) per event")
    known = np.isfinite(err)
    inter = p.interaction
    split_inter = by_interaction and inter is not None and bool(np.isin(inter, (0, 1)).any())
    return resolution_table(
        err[known],
        np.asarray(en)[known],
        edges,
        energy_kind=energy,
        interaction=None if inter is None else np.asarray(inter)[known],
        by_interaction=split_inter,
        **kwargs,
    )


def _fmt(value: float, ci: Sequence[float], digits: int, scale: float = 1.0) -> str:
    if value is None or not np.isfinite(value):
        return "—"
    lo, hi = ci
    if np.isfinite(lo) and np.isfinite(hi):
        return f"{value * scale:.{digits}f} [{lo * scale:.{digits}f}, {hi * scale:.{digits}f}]"
    return f"{value * scale:.{digits}f}"


def format_markdown(rows: Sequence[Mapping[str, Any]], *, title: str | None = None, digits: int = 1) -> str:
    """A Markdown table of :func:`resolution_table` rows; the header names the energy used.

    Args:
        rows: rows of :func:`resolution_table`.
        title: optional line above the table.
        digits: decimals of angles and percentages.

    Returns:
        The table as text (angles in degrees, flip fraction in %, CIs in brackets).
    """
    if not rows:
        raise InputError("format_markdown: no rows to format")
    kinds = sorted({str(r.get("energy", "reconstructed")) for r in rows})
    energy = "/".join(kinds)
    lines = []
    if title:
        lines += [f"**{title}**", ""]
    lines.append(f"| interaction | {energy} energy (MeV) | n | θ68 (°) | median (°) | flip fraction (%) |")
    lines.append("|---|---|---:|---|---|---|")
    for r in rows:
        lines.append(
            f"| {r.get('interaction', 'all')} | {r.get('bin', bin_label(r['lo'], r['hi']))} | {int(r['n'])} "
            f"| {_fmt(r['theta68'], r['theta68_ci'], digits)} | {_fmt(r['median'], r['median_ci'], digits)} "
            f"| {_fmt(r['flip_fraction'], r['flip_fraction_ci'], digits, 100.0)} |"
        )
    return "\n".join(lines)


def format_comparison(
    tables: Mapping[str, Sequence[Mapping[str, Any]]], *, metric: str = "theta68", digits: int = 1
) -> str:
    """Side-by-side Markdown comparison of several models' tables (e.g. with/without energy input).

    Rows are matched by (interaction, bin); the tables must come from the same binning.

    Args:
        tables: model name → rows of :func:`resolution_table`.
        metric: ``theta68``, ``median``, ``mean`` or ``flip_fraction``.
        digits: decimals.

    Returns:
        Markdown with one column per model (value and CI).
    """
    if metric not in _STATS:
        raise InputError(f"format_comparison: metric must be one of {_STATS}; received {metric!r}")
    if not tables:
        raise InputError("format_comparison: no tables given")
    names = list(tables)
    keys = [(r["interaction"], r["bin"]) for r in tables[names[0]]]
    index = {n: {(r["interaction"], r["bin"]): r for r in rows} for n, rows in tables.items()}
    for n in names[1:]:
        if set(index[n]) != set(keys):
            raise InputError(f"format_comparison: table {n!r} has different bins from {names[0]!r}")
    energy = "/".join(
        sorted({str(r.get("energy", "reconstructed")) for rows in tables.values() for r in rows})
    )
    scale = 100.0 if metric == "flip_fraction" else 1.0
    unit = "%" if metric == "flip_fraction" else "°"
    lines = [
        f"| interaction | {energy} energy (MeV) | "
        + " | ".join(f"{n}: {metric} ({unit})" for n in names)
        + " |",
        "|---|---|" + "---|" * len(names),
    ]
    for k in keys:
        cells = [_fmt(index[n][k][metric], index[n][k][f"{metric}_ci"], digits, scale) for n in names]
        lines.append(f"| {k[0]} | {k[1]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
