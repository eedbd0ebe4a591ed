"""Training curves of a run: loss, mean angular error and learning rate per epoch.

Reads a run's ``history.csv`` (the Keras ``CSVLogger`` file written by
:func:`edkeras.reco.training.train`) and draws training against validation, with the epoch
whose model was kept (chosen on validation, never on test) marked. A widening gap between
the training and the validation curves is over-fitting; validation flat while training
still falls means more epochs will not help.

Like the other plotting modules, it draws onto ``ax`` when given, else makes its own
figure, and returns the :class:`matplotlib.figure.Figure` (no pyplot global state).

Example:
    >>> from edkeras.reports.plots.training import plot_history
    >>> plot_history("runs/compact").savefig("runs/compact/training.png")
"""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from edkeras.core.errors import InputError

__all__ = ["plot_history", "read_history"]


def read_history(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The columns of a ``history.csv`` (or of the one in a run folder) as float arrays.

    Raises:
        InputError: no such file, or a file without an ``epoch`` column or rows.
    """
    p = Path(path)
    if p.is_dir():
        p = p / "history.csv"
    if not p.exists():
        raise InputError(f"{p}: no such history file")
    with open(p, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or "epoch" not in rows[0]:
        raise InputError(f"{p}: expected a CSV history with an 'epoch' column and at least one row")

    def num(text: str | None) -> float:
        try:
            return float(text) if text not in (None, "") else math.nan
        except ValueError:
            return math.nan

    return {k: np.array([num(r.get(k)) for r in rows]) for k in rows[0]}


def _best_epoch(run_dir: Path) -> int | None:
    for name in ("metrics.json", "checkpoint.json"):
        f = run_dir / name
        if f.exists():
            try:
                data = json.loads(f.read_text())
            except json.JSONDecodeError:
                continue
            key = "best_epoch" if name == "metrics.json" else "epoch"
            if data.get(key) is not None:
                return int(data[key])
    return None


def plot_history(run: str | os.PathLike, ax: Any = None, title: str | None = None) -> Any:
    """Loss, mean angular error (training and validation) and learning rate against epoch.

    Args:
        run: a run folder or its ``history.csv``.
        ax: three Axes to draw on (loss, angle, learning rate), or None for a new figure.
        title: figure title (default: the run's name).

    Returns:
        The figure.
    """
    p = Path(run)
    run_dir = p if p.is_dir() else p.parent
    h = read_history(p)
    epoch = h["epoch"] + 1  # shown 1-based, as Keras prints it
    if ax is not None:
        axes = list(ax)
        if len(axes) != 3:
            raise InputError(f"plot_history: expected 3 axes; received {len(axes)}")
        fig = axes[0].figure
    else:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(13.0, 3.8), layout="constrained")
        axes = [fig.add_subplot(1, 3, i + 1) for i in range(3)]
    angle = next((k for k in h if k.endswith("angular_error_deg") and not k.startswith("val_")), None)
    for a, key, label in ((axes[0], "loss", "loss"), (axes[1], angle, "mean angular error (deg)")):
        if key is None or key not in h:
            a.set_visible(False)
            continue
        a.plot(epoch, h[key], "o-", ms=3, label="training")
        if f"val_{key}" in h:
            a.plot(epoch, h[f"val_{key}"], "s-", ms=3, label="validation")
        a.set_xlabel("epoch")
        a.set_ylabel(label)
    best = _best_epoch(run_dir)
    if best is not None:
        for a in axes[:2]:
            a.axvline(best + 1, color="0.5", ls="--", lw=1, label=f"kept (epoch {best + 1}, on validation)")
    for a in axes[:2]:
        if a.get_visible():
            a.legend(fontsize="small")
    if "learning_rate" in h:
        axes[2].plot(epoch, h["learning_rate"], "o-", ms=3, color="C2")
        axes[2].set_yscale("log")
        axes[2].set_xlabel("epoch")
        axes[2].set_ylabel("learning rate")
    else:
        axes[2].set_visible(False)
    fig.suptitle(title if title is not None else run_dir.name)
    return fig
