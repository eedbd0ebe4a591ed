"""Event displays: the three wire-plane images of one electron with its projected direction.

Each panel shows one plane in physical units — the wire coordinate w_p = r·e_p (cm) across,
the drift coordinate x (cm) up — so that angles on the page are true angles in the
(w_p, x) plane. The true (and predicted) 3-D direction is drawn as its projection
(d·e_p, d_x) from the vertex (when its position and the window origin are known) or from
the charge-weighted centre of the image; a foreshortened arrow means the track leaves the
plane of the page.

Example:
    >>> ev = open_events("events.h5").read(slice(0, 1))
    >>> fig = draw_event({p: ev.images[p][0] for p in "UVX"}, direction=ev.direction[0],
    ...                  window_origin=ev.window_origin[0], vertex=ev.vertex[0])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from edkeras.core.detector import DRIFT_PER_TICK, PITCH, PLANES, plane_unit_vector, project_direction

__all__ = ["draw_event"]

_KEYS = {"U": ("U", "view_u"), "V": ("V", "view_v"), "X": ("X", "view_x")}


def _plane_image(images: Mapping[str, np.ndarray], plane: str) -> np.ndarray:
    for key in _KEYS[plane]:
        if key in images:
            img = np.asarray(images[key], dtype=np.float64)
            img = img.reshape(img.shape[-2:]) if img.ndim > 2 and np.prod(img.shape[:-2]) == 1 else img
            if img.ndim != 2:
                raise ValueError(f"draw_event: plane {plane} must be one (T, C) image; received shape {img.shape}")
            return img
    raise KeyError(f"draw_event: images need planes U, V, X (or view_u, view_v, view_x); received {sorted(images)}")


def draw_event(
    images: Mapping[str, np.ndarray],
    direction: np.ndarray | None = None,
    predicted: np.ndarray | None = None,
    window_origin: np.ndarray | None = None,
    vertex: np.ndarray | None = None,
    ax: Sequence[Any] | None = None,
    title: str | None = None,
    arrow_cm: float = 4.0,
    cmap: str = "viridis",
) -> Any:
    """Draw the U, V and X images of one event with the projected direction(s).

    Args:
        images: ``{"U": (T, C), "V": …, "X": …}`` (or ``view_u`` … keys), ADC.
        direction: true 3-D direction (3,) or None.
        predicted: predicted 3-D direction (3,) or None.
        window_origin: (3, 2) tick and channel of pixel [0, 0] per plane (U, V, X); without
            it the axes start at 0.
        vertex: (3,) vertex in cm; used as the arrows' origin when ``window_origin`` is known
            and the vertex is finite, else the charge-weighted centre of each image is used.
        ax: three matplotlib axes to draw into (default: a new 1 × 3 figure).
        title: figure title.
        arrow_cm: length of a fully in-plane arrow, cm.
        cmap: colour map of the ADC.

    Returns:
        The matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        fig, axes = plt.subplots(1, 3, figsize=(13, 5), constrained_layout=True)
    else:
        axes = list(ax)
        if len(axes) != 3:
            raise ValueError(f"draw_event: ax must hold 3 axes (U, V, X); received {len(axes)}")
        fig = axes[0].figure
    origin = None if window_origin is None else np.asarray(window_origin, dtype=np.float64).reshape(3, 2)
    vtx = None if vertex is None else np.asarray(vertex, dtype=np.float64).reshape(3)
    use_vertex = origin is not None and vtx is not None and bool(np.isfinite(vtx).all())
    for i, plane in enumerate(PLANES):
        a = axes[i]
        img = _plane_image(images, plane)
        n_t, n_c = img.shape
        t0, c0 = (origin[i] if origin is not None else (0.0, 0.0))
        x0, w0 = t0 * DRIFT_PER_TICK, c0 * PITCH[plane]
        extent = (w0, w0 + n_c * PITCH[plane], x0, x0 + n_t * DRIFT_PER_TICK)
        shown = np.ma.masked_less_equal(img, 0.0)
        im = a.imshow(shown, origin="lower", extent=extent, aspect="equal", cmap=cmap, interpolation="nearest")
        fig.colorbar(im, ax=a, shrink=0.8, label="ADC")
        if use_vertex:
            anchor = np.array([vtx @ plane_unit_vector(plane), vtx[0]])
        else:
            total = img.sum()
            rows = (np.arange(n_t) + 0.5) * DRIFT_PER_TICK + x0
            cols = (np.arange(n_c) + 0.5) * PITCH[plane] + w0
            if total > 0:
                anchor = np.array([(img.sum(axis=0) @ cols) / total, (img.sum(axis=1) @ rows) / total])
            else:
                anchor = np.array([(extent[0] + extent[1]) / 2, (extent[2] + extent[3]) / 2])
        # the true direction in red, the prediction in black: both visible on the white empty
        # pixels and on the colour map of the charge
        for d, colour, label in ((direction, "red", "true"), (predicted, "black", "predicted")):
            if d is None:
                continue
            d = np.asarray(d, dtype=np.float64).reshape(3)
            norm = np.linalg.norm(d)
            if not np.isfinite(norm) or norm == 0:
                continue
            dx, dw = project_direction(d / norm, plane)
            end = anchor + arrow_cm * np.array([dw, dx])
            a.annotate("", xy=tuple(end), xytext=tuple(anchor),
                       arrowprops={"arrowstyle": "-|>", "color": colour, "lw": 2.0, "mutation_scale": 14})
            a.plot([], [], color=colour, lw=2, label=label)
        a.plot(*anchor, marker="o", ms=4, color="red" if use_vertex else "grey", ls="none")
        a.set_xlim(extent[0], extent[1])
        a.set_ylim(extent[2], extent[3])
        a.set_xlabel(f"w_{plane} (cm)")
        a.set_ylabel("x, drift (cm)")
        a.set_title(f"plane {plane}")
        if direction is not None or predicted is not None:
            a.legend(loc="upper right", fontsize=8, framealpha=0.6)
    if title:
        fig.suptitle(title)
    return fig
