"""Figures of direction resolution: cos θ with the 68 % line, errors, energy dependence,
calibration of κ, and selection by uncertainty.

Every function draws onto ``ax`` when given (so figures can be composed) or makes its own
figure, and returns the :class:`matplotlib.figure.Figure`. Figures are made without
pyplot's global state (``matplotlib.figure.Figure``), so loops do not leak memory; a
notebook shows a returned figure as usual.

The 68 % line is drawn where it belongs: at cos θ68, i.e. the **32nd** percentile of
cos θ (68 % of events lie to its right), never the 68th.

Example:
    >>> from edkeras.reports.plots.resolution import plot_cos_theta, plot_resolution_vs_energy
    >>> fig = plot_cos_theta(pred.angular_errors, label="compact")
    >>> fig.savefig("cos.png")
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from edkeras.core.errors import InputError
from edkeras.reco.metrics import containment_angle, flip_fraction

__all__ = [
    "plot_angular_error",
    "plot_calibration",
    "plot_cos_theta",
    "plot_resolution_vs_energy",
    "plot_selection_curve",
]


def _axes(ax: Any, ncols: int = 1, size: tuple[float, float] = (6.0, 4.0)) -> tuple[Any, list[Any]]:
    """The figure and axes to draw on: ``ax`` (a single Axes or a list) or a new Figure."""
    if ax is not None:
        axes = list(ax) if isinstance(ax, (list, tuple, np.ndarray)) else [ax]
        if len(axes) != ncols:
            raise InputError(f"plot: expected {ncols} axes; received {len(axes)}")
        return axes[0].figure, axes
    from matplotlib.figure import Figure

    fig = Figure(figsize=(size[0] * ncols, size[1]), layout="constrained")
    return fig, [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]


def _errors(errors_deg: Any) -> np.ndarray:
    err = np.asarray(errors_deg, dtype=np.float64).ravel()
    err = err[np.isfinite(err)]
    if err.size == 0:
        raise InputError("plot: no finite angular errors to plot")
    return np.clip(err, 0.0, 180.0)


def _series(data: Any) -> dict[str, Sequence[Mapping[str, Any]]]:
    """Normalise ``rows`` or ``{name: rows}`` to a dict of named row lists."""
    if isinstance(data, Mapping):
        return {str(k): list(v) for k, v in data.items()}
    rows = list(data)
    if not rows:
        raise InputError("plot: no rows to plot")
    return {"": rows}


def plot_cos_theta(
    errors_deg: Any, *, ax: Any = None, bins: int = 100, label: str | None = None, log: bool = False
) -> Any:
    """Histogram of cos θ (θ = angle between predicted and true direction) with the 68 % line.

    Args:
        errors_deg: angular errors in degrees.
        ax: Axes to draw on (default: a new figure).
        bins: number of bins over [−1, 1].
        label: legend label of the histogram.
        log: logarithmic y axis (shows the flipped peak at −1).

    Returns:
        The figure. The dashed line is at cos θ68, the 32nd percentile of cos θ.
    """

    err = _errors(errors_deg)
    cos = np.cos(np.radians(err))
    theta68 = containment_angle(err, 0.68)
    fig, (a,) = _axes(ax)
    h = a.hist(cos, bins=np.linspace(-1.0, 1.0, int(bins) + 1), histtype="step", label=label or "events")
    color = h[2][0].get_edgecolor()
    a.axvline(
        np.cos(np.radians(theta68)),
        color=color,
        linestyle="--",
        label=f"68 % of events: θ68 = {theta68:.1f}° (flips {100 * flip_fraction(err):.1f} %)",
    )
    a.set_xlabel("cos θ (predicted · true)")
    a.set_ylabel("events")
    a.set_xlim(-1.0, 1.0)
    if log:
        a.set_yscale("log")
    a.legend(loc="upper left", fontsize="small")
    return fig


def plot_angular_error(
    errors_deg: Any, *, ax: Any = None, bins: int = 90, label: str | None = None, max_deg: float = 180.0
) -> Any:
    """Histogram of the angular error (degrees) with the median and θ68 marked.

    Args:
        errors_deg: angular errors in degrees.
        ax: Axes to draw on.
        bins: number of bins over [0, ``max_deg``].
        label: legend label.
        max_deg: upper end of the x axis.
    """

    err = _errors(errors_deg)
    fig, (a,) = _axes(ax)
    h = a.hist(err, bins=np.linspace(0.0, max_deg, int(bins) + 1), histtype="step", label=label or "events")
    color = h[2][0].get_edgecolor()
    med = float(np.median(err))
    t68 = containment_angle(err, 0.68)
    a.axvline(med, color=color, linestyle=":", label=f"median {med:.1f}°")
    a.axvline(t68, color=color, linestyle="--", label=f"θ68 {t68:.1f}°")
    a.set_xlabel("angular error θ (degrees)")
    a.set_ylabel("events")
    a.set_xlim(0.0, max_deg)
    a.legend(fontsize="small")
    return fig


def _ci_err(values: np.ndarray, cis: list[Any]) -> np.ndarray:
    lo = np.array([c[0] for c in cis], dtype=np.float64)
    hi = np.array([c[1] for c in cis], dtype=np.float64)
    return np.vstack([np.clip(values - lo, 0, None), np.clip(hi - values, 0, None)])


def plot_resolution_vs_energy(tables: Any, *, ax: Any = None, flips: bool = True) -> Any:
    """θ68 (and the flip fraction) with confidence intervals in energy bins.

    Args:
        tables: rows of :func:`edkeras.reco.energy_bins.resolution_table`, or a mapping
            name → rows to compare models. Rows of the ``"all"`` bin are left out; rows of
            different interaction groups become separate series.
        ax: one Axes (``flips=False``) or two.
        flips: add a second panel with the flip fraction.

    Returns:
        The figure; the x axis names the energy used (reconstructed or true).
    """
    series = _series(tables)
    fig, axes = _axes(ax, 2 if flips else 1)
    labels: list[str] = []
    energy_kinds: set[str] = set()
    n_series = sum(len({r.get("interaction", "all") for r in rows}) for rows in series.values())
    k = 0
    for name, rows in series.items():
        rows = [r for r in rows if r.get("bin") != "all"]
        for group in dict.fromkeys(r.get("interaction", "all") for r in rows):
            sub = [r for r in rows if r.get("interaction", "all") == group]
            if not labels:
                labels = [str(r.get("bin")) for r in sub]
            elif [str(r.get("bin")) for r in sub] != labels:
                raise InputError("plot_resolution_vs_energy: the tables use different energy bins")
            energy_kinds |= {str(r.get("energy", "reconstructed")) for r in sub}
            x = np.arange(len(sub)) + (k - (n_series - 1) / 2) * 0.08
            tag = " ".join(t for t in (name, "" if group == "all" and n_series == 1 else str(group)) if t)
            t68 = np.array([r["theta68"] for r in sub], dtype=np.float64)
            axes[0].errorbar(
                x,
                t68,
                yerr=_ci_err(t68, [r["theta68_ci"] for r in sub]),
                marker="o",
                capsize=3,
                label=tag or None,
            )
            if flips:
                ff = 100 * np.array([r["flip_fraction"] for r in sub], dtype=np.float64)
                cis = [(100 * r["flip_fraction_ci"][0], 100 * r["flip_fraction_ci"][1]) for r in sub]
                axes[1].errorbar(x, ff, yerr=_ci_err(ff, cis), marker="s", capsize=3, label=tag or None)
            k += 1
    energy = "/".join(sorted(energy_kinds)) or "reconstructed"
    for a in axes:
        a.set_xticks(np.arange(len(labels)), labels)
        a.set_xlabel(f"{energy} energy (MeV)")
        if any(line.get_label() and not line.get_label().startswith("_") for line in a.get_lines()):
            a.legend(fontsize="small")
    axes[0].set_ylabel("θ68 (degrees)")
    axes[0].set_ylim(bottom=0)
    if flips:
        axes[1].set_ylabel("flip fraction, cos θ < −0.9 (%)")
        axes[1].set_ylim(bottom=0)
    return fig


def plot_calibration(tables: Any, *, ax: Any = None, tolerance: float = 0.2) -> Any:
    """Reliability plot of per-event uncertainties: predicted 68 % cone against actual θ68.

    Left: actual θ68 (with CI) against the predicted θ68 per bin of predicted uncertainty; the diagonal is perfect calibration, the band the proposal's ±20 % target
    (|predicted/actual − 1| ≤ ``tolerance``). Right: coverage of the 68 % and 90 % cones per bin.

    Args:
        tables: rows of :func:`edkeras.reco.calibration.calibration_table`, or
            name → rows (e.g. ``{"raw": ..., "recalibrated": ...}``).
        ax: two Axes, or None.
        tolerance: half-width of the target band.
    """
    series = _series(tables)
    fig, (a, b) = _axes(ax, 2)
    top = 0.0
    for name, rows in series.items():
        rows = [r for r in rows if r["n"] > 0]
        pred = np.array([r["predicted_theta68"] for r in rows], dtype=np.float64)
        act = np.array([r["theta68"] for r in rows], dtype=np.float64)
        top = max(top, float(np.nanmax(np.concatenate([pred, act]))) if pred.size else 0.0)
        a.errorbar(
            pred,
            act,
            yerr=_ci_err(act, [r["theta68_ci"] for r in rows]),
            marker="o",
            capsize=3,
            label=name or None,
        )
        line = b.plot(pred, [r["coverage_68"] for r in rows], marker="o", label=f"{name} 68 % cone".strip())[
            0
        ]
        b.plot(
            pred,
            [r["coverage_90"] for r in rows],
            marker="s",
            linestyle="--",
            color=line.get_color(),
            label=f"{name} 90 % cone".strip(),
        )
    grid = np.linspace(0.0, top * 1.05 if top > 0 else 1.0, 50)
    a.plot(grid, grid, color="black", linewidth=0.8, label="perfect")
    a.fill_between(
        grid,
        grid / (1 + tolerance),
        grid / (1 - tolerance),
        color="grey",
        alpha=0.2,
        label=f"±{100 * tolerance:.0f} %",
    )
    a.set_xlabel("predicted θ68 in bin (degrees)")
    a.set_ylabel("actual θ68 in bin (degrees)")
    a.set_xlim(0, grid[-1])
    a.set_ylim(0, grid[-1] / (1 - tolerance))
    a.legend(fontsize="small")
    b.axhline(0.68, color="black", linewidth=0.8)
    b.axhline(0.90, color="black", linewidth=0.8, linestyle="--")
    b.set_xlabel("predicted θ68 in bin (degrees)")
    b.set_ylabel("coverage (share inside own cone)")
    b.set_ylim(0.0, 1.0)
    b.legend(fontsize="small")
    return fig


def plot_selection_curve(curves: Any, *, ax: Any = None) -> Any:
    """θ68 of the best x % of events ranked by predicted uncertainty, with its CI band.

    Args:
        curves: rows of :func:`edkeras.reco.calibration.selection_curve`, or name → rows.
        ax: Axes to draw on.
    """
    series = _series(curves)
    fig, (a,) = _axes(ax)
    for name, rows in series.items():
        f = 100 * np.array([r["fraction"] for r in rows], dtype=np.float64)
        t = np.array([r["theta68"] for r in rows], dtype=np.float64)
        line = a.plot(f, t, marker="o", label=name or None)[0]
        lo = np.array([r["theta68_ci"][0] for r in rows], dtype=np.float64)
        hi = np.array([r["theta68_ci"][1] for r in rows], dtype=np.float64)
        if np.isfinite(lo).all() and np.isfinite(hi).all():
            a.fill_between(f, lo, hi, color=line.get_color(), alpha=0.2)
    a.set_xlabel("events kept, most confident first (%)")
    a.set_ylabel("θ68 of kept events (degrees)")
    a.set_xlim(0, 100)
    a.set_ylim(bottom=0)
    if len(series) > 1 or next(iter(series)):
        a.legend(fontsize="small")
    return fig
