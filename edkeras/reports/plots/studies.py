"""Figures of the analysis notebooks: event pairs, datasets, PIT histograms, θ68 against a setting, pointing against burst size."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from edkeras.core.errors import InputError
from edkeras.reports.plots.events import draw_event

__all__ = ['dataset_figure', 'event_pair_figure', 'pit_figure', 'resolution_vs_events_figure', 'show', 'theta68_figure', 'with_legends']


# ============================================================================ figures
def show(fig: Any, dpi: int = 100) -> None:
    """Display a figure once in a notebook (as a PNG) and release it from pyplot.

    The PNG is rendered here, so the figure appears in the executed notebook and its HTML
    export whatever the kernel's matplotlib backend is (a plain ``Figure`` made without
    pyplot has no inline formatter), and pyplot does not show it a second time.
    """
    import io

    import matplotlib.pyplot as plt
    from IPython.display import Image, display

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    display(Image(data=buf.getvalue(), format="png"))


def with_legends(fig: Any, **kwargs: Any) -> Any:
    """Add a legend to every axis of ``fig`` that has labelled artists (error-bar series included); returns ``fig``."""
    for a in fig.axes:
        handles, labels = a.get_legend_handles_labels()
        if handles and a.get_legend() is None:
            a.legend(handles, labels, **{"fontsize": "small", **kwargs})
    return fig


def _figure(ncols: int = 1, size: tuple[float, float] = (6.0, 4.0)) -> tuple[Any, list[Any]]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(size[0] * ncols, size[1]), layout="constrained")
    return fig, [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]


def event_pair_figure(top: Any, i: int, bottom: Any, j: int, labels: tuple[str, str] = ("real", "simulated")) -> Any:
    """Two events one above the other (three planes each, true direction in red), e.g. real over simulated.

    The arrows start at each image's charge-weighted centre (not the vertex): the window
    origins of ingested and simulated files are comparable in ticks and wires, not always
    in detector centimetres, and the comparison is about the images.

    Args:
        top, bottom: :class:`~edkeras.events.eventfile.EventBatch` objects.
        i, j: the event index in each.
        labels: the row names.

    Returns:
        A matplotlib Figure (2 × 3 panels).
    """
    from matplotlib.figure import Figure


    fig = Figure(figsize=(13.0, 9.0), layout="constrained")
    axes = fig.subplots(2, 3)
    for row, (batch, k, label) in enumerate(((top, i, labels[0]), (bottom, j, labels[1]))):
        b = batch.select(slice(k, k + 1)).filled()
        draw_event({p: b.images[p][0] for p in "UVX"}, direction=b.direction[0], ax=axes[row])
        kind = {1: "ES", 0: "CC"}.get(int(b.interaction[0]), "?")
        for a, p in zip(axes[row], "UVX"):
            a.set_title(f"{label} · plane {p}", fontsize=10)
        axes[row][1].set_title(
            f"{label} · plane V\n{kind}, {float(b.energy[0]):.1f} MeV true, {float(b.reco_energy[0]):.1f} MeV reco",
            fontsize=10,
        )
    return fig


def dataset_figure(energy: Any, reco_energy: Any, interaction: Any, cos_e_nu: Any) -> Any:
    """Three panels of a data set: true energy by interaction, reconstructed vs true energy, cos(e, ν) by interaction.

    Args:
        energy: (N,) true electron kinetic energy, MeV.
        reco_energy: (N,) reconstructed (charge) energy, MeV.
        interaction: (N,) 1 ES, 0 CC, −1 unknown.
        cos_e_nu: (N,) cos of the angle between electron and neutrino (NaN when unknown).

    Returns:
        A matplotlib Figure.
    """
    e = np.asarray(energy, np.float64)
    r = np.asarray(reco_energy, np.float64)
    it = np.asarray(interaction)
    c = np.asarray(cos_e_nu, np.float64)
    if not (e.shape == r.shape == it.shape == c.shape):
        raise InputError("dataset_figure: energy, reco_energy, interaction and cos_e_nu need one value per event")
    fig, (a, b, d) = _figure(3, (5.0, 4.0))
    groups = [(name, it == code) for code, name in ((1, "ES"), (0, "CC"), (-1, "unknown")) if np.any(it == code)]
    finite = e[np.isfinite(e)]
    top = float(finite.max()) if finite.size else 1.0
    bins = np.linspace(0.0, max(top, 1.0), 40)
    for name, m in groups:
        a.hist(e[m & np.isfinite(e)], bins=bins, histtype="step", label=f"{name} ({int(m.sum())})")
    a.set_xlabel("true electron kinetic energy (MeV)")
    a.set_ylabel("events")
    a.legend(fontsize="small")
    ok = np.isfinite(e) & np.isfinite(r)
    b.plot(e[ok], r[ok], ".", ms=2, alpha=0.5)
    lim = max(float(np.nanmax(np.concatenate([e[ok], r[ok]]))) if ok.any() else 1.0, 1.0)
    b.plot([0, lim], [0, lim], color="black", lw=0.8, label="reco = true")
    b.set_xlabel("true energy (MeV)")
    b.set_ylabel("reconstructed energy, X-plane charge (MeV)")
    b.legend(fontsize="small")
    for name, m in groups:
        cm = m & np.isfinite(c)
        if cm.any():
            d.hist(c[cm], bins=np.linspace(-1, 1, 41), histtype="step", density=True, label=name)
    d.set_xlabel("cos(electron, neutrino)")
    d.set_ylabel("density")
    if d.get_legend_handles_labels()[0]:
        d.legend(fontsize="small", loc="upper left")
    return fig


def pit_figure(pits: Mapping[str, Any], bins: int = 20) -> Any:
    """Histograms of probability-integral-transform values per method (flat when a table is right).

    Args:
        pits: method name → PIT values in [0, 1].
        bins: number of bins.

    Returns:
        A matplotlib Figure with the ±1σ band of a flat histogram.
    """
    if not pits:
        raise InputError("pit_figure: no PIT values given")
    fig, (a,) = _figure(1, (7.0, 4.0))
    edges = np.linspace(0.0, 1.0, bins + 1)
    n = None
    for name, u in pits.items():
        x = np.asarray(u, np.float64).ravel()
        n = x.size
        a.hist(x, bins=edges, density=True, histtype="step", lw=1.5, label=name)
    if n:
        sd = math.sqrt(bins * (1 - 1 / bins) / n)  # density units: relative σ of a bin count
        a.axhspan(1 - sd, 1 + sd, color="grey", alpha=0.2, label="flat ±1σ")
    a.axhline(1.0, color="black", lw=0.8)
    a.set_xlabel("PIT u = F(cos θ | E) of held-out events")
    a.set_ylabel("density")
    a.set_xlim(0, 1)
    a.legend(fontsize="small")
    return fig


def theta68_figure(
    entries: Sequence[Mapping[str, Any]], highlight: str | None = None, xlabel: str = "θ68 (degrees)"
) -> Any:
    """Horizontal θ68 bars with their intervals: one line per entry (``name``, ``theta68``, ``theta68_ci``).

    Args:
        entries: dicts with ``name``, ``theta68`` and optionally ``theta68_ci`` (lo, hi).
        highlight: name of the entry drawn in red (e.g. the production model).
        xlabel: the axis label.

    Returns:
        A matplotlib Figure, smallest θ68 on top.
    """
    rows = [e for e in entries if e.get("theta68") is not None and math.isfinite(float(e["theta68"]))]
    if not rows:
        raise InputError("theta68_figure: no entry with a finite theta68")
    rows = sorted(rows, key=lambda e: float(e["theta68"]), reverse=True)
    fig, (a,) = _figure(1, (7.0, 0.45 * len(rows) + 1.5))
    y = np.arange(len(rows))
    t = np.array([float(e["theta68"]) for e in rows])
    ci = np.array([e.get("theta68_ci") or (v, v) for e, v in zip(rows, t)], dtype=np.float64)
    err = np.vstack([np.clip(t - ci[:, 0], 0, None), np.clip(ci[:, 1] - t, 0, None)])
    colors = ["C3" if e.get("name") == highlight else "C0" for e in rows]
    for i in range(len(rows)):
        a.errorbar(t[i], y[i], xerr=err[:, i : i + 1], fmt="o", color=colors[i], capsize=3)
    a.set_yticks(y, [str(e.get("name")) for e in rows])
    a.set_xlabel(xlabel)
    a.set_xlim(left=0)
    a.grid(axis="x", alpha=0.3)
    return fig


def resolution_vs_events_figure(results: Mapping[str, Sequence[Any]]) -> Any:
    """Pointing resolution (θ68 of bursts) against the number of events, log–log, with a 1/√N guide.

    Args:
        results: reference name → :class:`~edkeras.pointing.resolution.ResolutionResult` list (one per burst size).

    Returns:
        A matplotlib Figure.
    """
    if not results:
        raise InputError("resolution_vs_events_figure: no results given")
    fig, (a,) = _figure(1, (7.0, 4.5))
    for name, res in results.items():
        n = np.array([r.n_events for r in res], dtype=np.float64)
        t = np.array([r.theta68 for r in res], dtype=np.float64)
        lo = np.array([r.theta68_ci[0] for r in res], dtype=np.float64)
        hi = np.array([r.theta68_ci[1] for r in res], dtype=np.float64)
        line = a.errorbar(n, t, yerr=np.vstack([np.clip(t - lo, 0, None), np.clip(hi - t, 0, None)]),
                          marker="o", capsize=3, label=name)
        if len(n) and np.isfinite(t[-1]) and t[-1] > 0:
            guide = t[-1] * np.sqrt(n[-1] / n)
            a.plot(n, guide, ls=":", color=line[0].get_color(), lw=1)
    a.set_xscale("log")
    a.set_yscale("log")
    a.set_xlabel("events per burst")
    a.set_ylabel("pointing resolution: θ68 of bursts (degrees)")
    a.grid(True, which="both", alpha=0.3)
    a.legend(fontsize="small", title="dotted: ∝ 1/√N", title_fontsize="small")
    return fig
