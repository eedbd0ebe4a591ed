"""Markdown tables for the reports: one generic builder and the tables the notebooks print."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from edkeras.core.errors import InputError

__all__ = ['markdown_table', 'tp_comparison_markdown']


# ============================================================================ tables
def _cell(v: Any, digits: int) -> str:
    if v is None:
        return "—"
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return f"{int(v)}"
    if isinstance(v, (float, np.floating)):
        return "—" if not math.isfinite(float(v)) else f"{float(v):.{digits}f}"
    if isinstance(v, (list, tuple)) and len(v) == 2 and all(isinstance(x, (int, float, np.number)) for x in v):
        return f"[{_cell(v[0], digits)}, {_cell(v[1], digits)}]"
    return str(v)


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Mapping[str, str], digits: int = 2) -> str:
    """A Markdown table: one row per mapping, ``columns`` = {key: header}.

    Floats get ``digits`` decimals, pairs of numbers print as ``[lo, hi]``, None and NaN as "—".
    """
    if not rows:
        raise InputError("markdown_table: no rows to format")
    lines = ["| " + " | ".join(columns.values()) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        lines.append("| " + " | ".join(_cell(r.get(k), digits) for k in columns) + " |")
    return "\n".join(lines)


def tp_comparison_markdown(table: Mapping[str, Mapping[str, Mapping[str, float]]]) -> str:
    """The simulated-vs-real trigger-primitive medians of :func:`edkeras.events.sim.validation.compare_with_real` as Markdown.

    One row per quantity; per plane the simulated value, the real one and their ratio.
    """
    if not table:
        raise InputError("tp_comparison_markdown: empty comparison table")
    planes = list(next(iter(table.values())))
    head = "| quantity | " + " | ".join(f"{p} sim | {p} real | {p} sim/real" for p in planes) + " |"
    lines = [head, "|---|" + "---:|" * (3 * len(planes))]
    for q, per_plane in table.items():
        cells = []
        for p in planes:
            s, r = per_plane[p]["sim"], per_plane[p]["real"]
            ratio = s / r if r and math.isfinite(s) else math.nan
            cells += [_cell(float(s), 2), _cell(float(r), 2), _cell(ratio, 2)]
        lines.append(f"| {q.replace('_', ' ')} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def calibration_markdown(rows: Sequence[Mapping[str, Any]], title: str | None = None) -> str:
    """A Markdown table of calibration rows (:func:`edkeras.reco.calibration.calibration_by_energy`)."""
    lines = [f"**{title}**", ""] if title else []
    lines += [
        "| bin | n | predicted θ68 | actual θ68 | predicted / actual | 68 % cone coverage | 90 % cone coverage |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        label = r["bin"] if "bin" in r else f"{r['lo']:.1f}–{r['hi']:.1f}"
        if not r["n"]:
            lines.append(f"| {label} | 0 | — | — | — | — | — |")
            continue
        lines.append(
            f"| {label} | {int(r['n'])} | {r['predicted_theta68']:.1f}° | {r['theta68']:.1f}° | {r['ratio']:.2f} "
            f"| {r['coverage_68']:.2f} | {r['coverage_90']:.2f} |"
        )
    return "\n".join(lines)


def trials_markdown(rows: Sequence[Mapping[str, Any]], best_id: str | None = None) -> str:
    """A Markdown table of hyperparameter-search trials (:func:`edkeras.reco.trials.trial_table`), best first."""
    if not rows:
        return "*No trials.*"
    keys = list(dict.fromkeys(k for r in rows for k in r["hyperparameters"]))
    ordered = sorted(rows, key=lambda r: (r["value"] is None, r["value"] if r["value"] is not None else 0.0))
    objective = next((r["objective"] for r in rows if r.get("objective")), "objective")
    lines = [f"| trial | status | {objective} (validation) | " + " | ".join(keys) + " |",
             "|---|---|---:|" + "---:|" * len(keys)]
    for r in ordered:
        value = "—" if r["value"] is None else f"{r['value']:.2f}"
        mark = " **(best)**" if best_id is not None and r["trial_id"] == best_id else ""
        hps = " | ".join(_fmt_value(r["hyperparameters"].get(k)) for k in keys)
        lines.append(f"| {r['trial_id']}{mark} | {r['status']} | {value} | {hps} |")
    return "\n".join(lines)


def _fmt_value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    return "—" if v is None else str(v)
