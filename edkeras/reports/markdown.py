"""Markdown tables for the reports: one generic builder and the tables the notebooks print."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from edkeras.core.errors import InputError

__all__ = ["calibration_markdown", "markdown_table", "tp_comparison_markdown", "trials_markdown"]


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


def markdown_table(
    rows: Sequence[Mapping[str, Any]], columns: Mapping[str, str], digits: int = 2, right: Sequence[str] = (),
    title: str | None = None,
) -> str:
    """A Markdown table: one row per mapping, ``columns`` = {key: header}.

    Floats get ``digits`` decimals, pairs of numbers print as ``[lo, hi]``, None and NaN as "—",
    strings as they are. Columns named in ``right`` are right-aligned; ``title`` goes above in bold.
    """
    if not rows:
        raise InputError("markdown_table: no rows to format")
    lines = [f"**{title}**", ""] if title else []
    lines += ["| " + " | ".join(columns.values()) + " |",
              "|" + "".join("---:|" if k in right else "---|" for k in columns)]
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
    columns = {"quantity": "quantity"}
    for p in planes:
        columns |= {f"{p}_sim": f"{p} sim", f"{p}_real": f"{p} real", f"{p}_ratio": f"{p} sim/real"}
    rows = []
    for q, per_plane in table.items():
        row: dict[str, Any] = {"quantity": q.replace("_", " ")}
        for p in planes:
            s, r = float(per_plane[p]["sim"]), float(per_plane[p]["real"])
            row |= {f"{p}_sim": s, f"{p}_real": r, f"{p}_ratio": s / r if r and math.isfinite(s) else math.nan}
        rows.append(row)
    return markdown_table(rows, columns, digits=2, right=list(columns)[1:])


def calibration_markdown(rows: Sequence[Mapping[str, Any]], title: str | None = None) -> str:
    """A Markdown table of calibration rows (:func:`edkeras.reco.calibration.calibration_by_energy`)."""
    out = []
    for r in rows:
        label = r["bin"] if "bin" in r else f"{r['lo']:.1f}–{r['hi']:.1f}"
        n = int(r["n"] or 0)
        out.append({"bin": label, "n": n} if not n else {
            "bin": label, "n": n, "predicted": f"{r['predicted_theta68']:.1f}°", "actual": f"{r['theta68']:.1f}°",
            "ratio": r["ratio"], "c68": r["coverage_68"], "c90": r["coverage_90"]})
    columns = {"bin": "bin", "n": "n", "predicted": "predicted θ68", "actual": "actual θ68",
               "ratio": "predicted / actual", "c68": "68 % cone coverage", "c90": "90 % cone coverage"}
    return markdown_table(out, columns, digits=2, right=list(columns)[1:], title=title)


def trials_markdown(rows: Sequence[Mapping[str, Any]], best_id: str | None = None) -> str:
    """A Markdown table of hyperparameter-search trials (:func:`edkeras.reco.trials.trial_table`), best first."""
    if not rows:
        return "*No trials.*"
    keys = list(dict.fromkeys(k for r in rows for k in r["hyperparameters"]))
    ordered = sorted(rows, key=lambda r: (r["value"] is None, r["value"] if r["value"] is not None else 0.0))
    objective = next((r["objective"] for r in rows if r.get("objective")), "objective")
    out = []
    for r in ordered:
        mark = " **(best)**" if best_id is not None and r["trial_id"] == best_id else ""
        hps = {f"hp_{k}": (f"{v:.3g}" if isinstance(v, float) else v)
               for k, v in ((k, r["hyperparameters"].get(k)) for k in keys)}
        out.append({"trial": f"{r['trial_id']}{mark}", "status": r["status"], "value": r["value"], **hps})
    columns = {"trial": "trial", "status": "status", "value": f"{objective} (validation)"} | {f"hp_{k}": k for k in keys}
    return markdown_table(out, columns, digits=2, right=list(columns)[2:])
