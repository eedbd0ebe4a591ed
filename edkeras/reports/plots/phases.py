"""Figures of single phases: search trials, the attention planes' weights, energy and interaction type of the multitask head."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ['plot_energy_and_type', 'plot_plane_weights', 'plot_trials']


def plot_trials(rows: Sequence[Mapping[str, Any]], x: str = "learning_rate") -> Any:
    """Objective of each trial in order (left) and against one hyperparameter (right)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11.0, 3.8), layout="constrained")
    a, b = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    done = [r for r in rows if r["value"] is not None]
    if not done:
        a.text(0.5, 0.5, "no completed trial", ha="center", transform=a.transAxes)
        return fig
    objective = done[0].get("objective") or "objective"
    values = np.array([r["value"] for r in done], dtype=np.float64)
    a.plot(np.arange(1, values.size + 1), values, "o", label="trial")
    a.plot(np.arange(1, values.size + 1), np.minimum.accumulate(values), "-", label="best so far")
    a.set_xlabel("trial (in order run)")
    a.set_ylabel(f"{objective} (validation)")
    a.legend(fontsize="small")
    key = next((k for k in done[0]["hyperparameters"] if k == x or k.endswith("." + x)), x)
    xs = [r["hyperparameters"].get(key) for r in done]
    if all(isinstance(v, (int, float)) for v in xs):
        b.plot(xs, values, "o")
        b.set_xscale("log" if key.endswith("learning_rate") else "linear")
        b.set_xlabel(key)
        b.set_ylabel(f"{objective} (validation)")
    else:
        b.set_visible(False)
    return fig


def plot_plane_weights(weights: Any, energies: Any, edges: Sequence[float] = (0.0, 10.0, 20.0, 30.0, 50.0, 1e9)) -> Any:
    """Attention share of each plane: its distribution (left) and its mean per energy bin (right)."""
    from matplotlib.figure import Figure

    w = np.asarray(weights, dtype=np.float64).reshape(-1, 3)
    e = np.asarray(energies, dtype=np.float64).ravel()
    fig = Figure(figsize=(11.0, 3.8), layout="constrained")
    a, b = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    bins = np.linspace(0.0, 1.0, 41)
    centres = np.arange(len(edges) - 1)
    labels = [f"{lo:g}–{hi:g}" if hi < 1e8 else f"{lo:g}+" for lo, hi in itertools.pairwise(edges)]
    for k, plane in enumerate("UVX"):
        a.hist(w[:, k], bins=bins, histtype="step", label=f"plane {plane} (mean {w[:, k].mean():.2f})")
        means = [w[(e >= lo) & (e < hi), k].mean() if np.any((e >= lo) & (e < hi)) else np.nan
                 for lo, hi in itertools.pairwise(edges)]
        b.plot(centres, means, "o-", label=f"plane {plane}")
    a.axvline(1 / 3, color="0.5", ls=":", lw=1)
    a.set_xlabel("share of the pooling attention")
    a.set_ylabel("test events")
    a.legend(fontsize="small")
    b.axhline(1 / 3, color="0.5", ls=":", lw=1, label="equal shares")
    b.set_xticks(centres, labels)
    b.set_xlabel("reconstructed energy (MeV)")
    b.set_ylabel("mean attention share")
    b.set_ylim(0.0, 1.0)
    b.legend(fontsize="small")
    return fig


def plot_energy_and_type(predicted_energy: Any, true_energy: Any, es_probability: Any, interaction: Any) -> Any:
    """Multitask outputs: predicted against true energy (left), ES probability by true type (right)."""
    from matplotlib.figure import Figure

    pe, te = np.asarray(predicted_energy, dtype=np.float64).ravel(), np.asarray(true_energy, dtype=np.float64).ravel()
    p, t = np.asarray(es_probability, dtype=np.float64).ravel(), np.asarray(interaction).ravel()
    fig = Figure(figsize=(11.0, 4.0), layout="constrained")
    a, b = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    a.plot(te, pe, ".", ms=3, alpha=0.6)
    top = float(np.nanmax(np.concatenate([te, pe]))) * 1.05 if te.size else 1.0
    a.plot([0, top], [0, top], color="black", lw=0.8, label="predicted = true")
    a.set_xlabel("true electron energy (MeV)")
    a.set_ylabel("predicted energy (MeV)")
    a.legend(fontsize="small")
    bins = np.linspace(0.0, 1.0, 21)
    for code, name in ((1, "ES"), (0, "CC")):
        if np.any(t == code):
            b.hist(p[t == code], bins=bins, histtype="step", label=f"true {name} ({int(np.sum(t == code))})")
    b.set_xlabel("predicted probability of ES")
    b.set_ylabel("test events")
    b.legend(fontsize="small")
    return fig
