"""Figure of :func:`edkeras.events.compare.compare_batches`: simulated / real, per plane and statistic."""

from __future__ import annotations

from typing import Any

import numpy as np

from edkeras.events.compare import STATISTICS

__all__ = ["comparison_figure"]


def comparison_figure(comparison: Any, tolerance: float | None = None) -> Any:
    """Three panels (U, V, X): the ratio other / reference of each statistic's median.

    The error bar spans the two 68 % intervals combined (other's interval over the
    reference median, widened by the reference's relative interval); the grey band is the
    agreement tolerance (± 15 % by default). Statistics the reference cannot measure are left out.
    """
    import matplotlib.pyplot as plt


    tol = comparison.tolerance if tolerance is None else tolerance
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.8), sharey=True, constrained_layout=True)
    names = list(STATISTICS)
    y = np.arange(len(names))
    for ax, plane in zip(axes, "UVX"):
        ax.axvspan(1 - tol, 1 + tol, color="0.88", zorder=0)
        ax.axvline(1.0, color="0.5", lw=0.8)
        for i, stat in enumerate(names):
            row = next((r for r in comparison.rows if r["plane"] == plane and r["statistic"] == stat), None)
            if row is None:  # not measured on this plane (x_offset on X)
                continue
            ref, oth = row["reference"], row["other"]
            if not ref or oth is None:
                continue
            rlo, rhi = (v if v is not None else ref for v in row["reference_interval"])
            olo, ohi = (v if v is not None else oth for v in row["other_interval"])
            ratio = oth / ref
            rel = np.hypot((ohi - olo) / 2 / max(oth, 1e-12), (rhi - rlo) / 2 / max(ref, 1e-12))
            colour = "tab:red" if row["verdict"] == "differs" else "tab:blue"
            ax.errorbar(ratio, i, xerr=ratio * rel, fmt="o", color=colour, capsize=3)
        ax.set_title(f"plane {plane}")
        ax.set_xlabel(f"{comparison.other.split('/')[-1]} / {comparison.reference.split('/')[-1]}")
        ax.set_xlim(0.3, 2.2)
    axes[0].set_yticks(y, [STATISTICS[n] for n in names], fontsize=8)
    axes[0].invert_yaxis()
    fig.suptitle("medians at matched true energy (red: outside the tolerance and the intervals)", fontsize=10)
    return fig
