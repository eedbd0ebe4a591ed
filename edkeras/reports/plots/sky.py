"""Figures of the pointing chain: the burst likelihood on the sky, and likelihood-table bins.

* :func:`skymap_figure` — Mollweide map of a burst fit's likelihood in the detector
  frame (longitude = atan2(y, x), latitude = arcsin z), with the fitted direction, the
  68 % / 90 % regions (cones of the same solid angle) and the true direction when known,
  and a zoom on the fit with the 68 % / 90 % contours (Wilks, or calibrated thresholds).
* :func:`table_bins_figure` — every energy bin of a likelihood table: the data
  (histogram of cos θ, shown against θ) over the fitted row.

matplotlib is imported inside the functions; with no display the Agg backend is used.

Example:
    >>> fig = skymap_figure(fit, true_direction=[0, 0, 1])
    >>> fig.savefig("sky.png")
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from edkeras.core.vmf import orthonormal_basis

__all__ = ["direction_to_lonlat", "skymap_figure", "table_bins_figure"]


def _pyplot() -> Any:
    import matplotlib

    if not os.environ.get("DISPLAY") and not os.environ.get("MPLBACKEND"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def direction_to_lonlat(v: Any) -> tuple[np.ndarray, np.ndarray]:
    """Longitude atan2(y, x) ∈ (−π, π] and latitude arcsin z ∈ [−π/2, π/2] (radians) of unit vectors."""
    a = np.atleast_2d(np.asarray(v, dtype=np.float64))
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    return np.arctan2(a[:, 1], a[:, 0]), np.arcsin(np.clip(a[:, 2], -1.0, 1.0))


def _circle(center: np.ndarray, radius_deg: float, n: int = 200) -> np.ndarray:

    c = np.asarray(center, dtype=np.float64)
    c = c / np.linalg.norm(c)
    e1, e2 = orthonormal_basis(c)
    r = np.radians(radius_deg)
    phi = np.linspace(0.0, 2.0 * np.pi, n)
    return np.cos(r) * c + np.sin(r) * (np.cos(phi)[:, None] * e1 + np.sin(phi)[:, None] * e2)


def _plot_path(ax: Any, pts: np.ndarray, **kw: Any) -> None:
    """Plot a closed path on a Mollweide axis, breaking it where it crosses the ±180° seam."""
    lon, lat = direction_to_lonlat(pts)
    breaks = np.flatnonzero(np.abs(np.diff(lon)) > np.pi) + 1
    first = True
    for seg_lon, seg_lat in zip(np.split(lon, breaks), np.split(lat, breaks)):
        ax.plot(seg_lon, seg_lat, **(kw if first else {k: v for k, v in kw.items() if k != "label"}))
        first = False


def _tangent_deg(points: np.ndarray, center: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Azimuthal-equidistant offsets (degrees) of ``points`` around ``center``."""

    e1, e2 = orthonormal_basis(center)
    ang = np.degrees(np.arctan2(np.linalg.norm(np.cross(points, center), axis=1), points @ center))
    phi = np.arctan2(points @ e2, points @ e1)
    return ang * np.cos(phi), ang * np.sin(phi)


def skymap_figure(
    fit: Any,
    true_direction: Any = None,
    title: str | None = None,
    zoom: bool = True,
) -> Any:
    """Sky map of a burst fit: the whole sky (Mollweide) and a zoom on the best fit.

    The whole-sky panel colours the coarse-scan lattice by √(2 ΔlnL) (about the number of
    "sigmas" from the best fit; clipped at its 95th percentile). The zoom panel shows
    ΔlnL on the local lattice around the fit in degrees (azimuthal-equidistant offsets),
    with the 68 % and 90 % contours (Wilks' or the fit's calibrated thresholds).

    Args:
        fit: a :class:`edkeras.pointing.burst.BurstFit`.
        true_direction: (3,) the true supernova direction, or None.
        title: figure title (default: events and 68 % radius).
        zoom: add the zoom panel.

    Returns:
        The matplotlib Figure.
    """
    plt = _pyplot()
    fig = plt.figure(figsize=(13, 5) if zoom else (9, 5))
    ax = fig.add_axes([0.02, 0.12, 0.6, 0.78] if zoom else [0.05, 0.12, 0.9, 0.78], projection="mollweide")
    lon, lat = direction_to_lonlat(fit.lattice)
    sig = np.sqrt(2.0 * np.clip(fit.log_likelihood - fit.log_likelihood_map, 0.0, None))
    vmax = max(float(np.percentile(sig, 95)), 1.0)
    sc = ax.scatter(lon, lat, c=np.minimum(sig, vmax), s=10, cmap="magma", vmin=0.0, vmax=vmax, linewidths=0)
    fig.colorbar(
        sc,
        ax=ax,
        orientation="horizontal",
        fraction=0.05,
        pad=0.08,
        label=r"$\sqrt{2\,(\ln L_{\max} - \ln L)}$  (detector frame: lon = atan2(y, x), lat = asin z)",
    )
    colours = {0.68: "cyan", 0.9: "lime"}
    for cl in sorted(fit.region_radius_deg):
        r = fit.region_radius_deg[cl]
        _plot_path(
            ax,
            _circle(fit.direction, r),
            color=colours.get(cl, "white"),
            lw=1.5,
            label=f"{cl:.0%} region (r = {r:.2f}°)",
        )
    flon, flat = direction_to_lonlat(fit.direction)
    ax.plot(flon, flat, marker="*", ms=14, color="red", mec="white", ls="none", label="fit")
    if true_direction is not None:
        tlon, tlat = direction_to_lonlat(true_direction)
        ax.plot(
            tlon,
            tlat,
            marker="x",
            ms=11,
            mew=2.5,
            color="deepskyblue",
            ls="none",
            label=f"true ({fit.angle_to_deg(true_direction):.2f}° away)",
        )
    ax.grid(True, alpha=0.4)
    ax.legend(loc="lower left", fontsize=8, framealpha=0.85)
    if zoom:
        zx = fig.add_axes([0.68, 0.16, 0.3, 0.7])
        x, y = _tangent_deg(fit.local_points, fit.direction)
        dl = np.clip(fit.log_likelihood - fit.local_log_likelihood, 0.0, None)
        top = max(3.0 * max(fit.delta_log_likelihood.values()), 1.0)
        tc = zx.tricontourf(x, y, np.minimum(dl, top), levels=20, cmap="magma")
        levels = sorted(fit.delta_log_likelihood.values())
        zx.tricontour(
            x,
            y,
            dl,
            levels=levels,
            colors=[colours.get(cl, "white") for cl in sorted(fit.delta_log_likelihood)],
        )
        fig.colorbar(tc, ax=zx, label=r"$\ln L_{\max} - \ln L$")
        zx.plot(0, 0, marker="*", ms=14, color="red", mec="white", ls="none")
        if true_direction is not None:
            t = np.asarray(true_direction, dtype=np.float64)
            tx, ty = _tangent_deg(t[None, :] / np.linalg.norm(t), fit.direction)
            zx.plot(tx, ty, marker="x", ms=11, mew=2.5, color="deepskyblue", ls="none")
        zx.set_aspect("equal")
        zx.set_xlabel("offset from fit (deg)")
        zx.set_ylabel("offset from fit (deg)")
        how = "calibrated ΔlnL" if fit.approximation.startswith("calibrated") else "Wilks, 2 dof"
        zx.set_title(f"zoom: 68 % and 90 % contours ({how})", fontsize=9)
    fig.suptitle(
        title or f"Burst of {fit.n_events} events: 68 % radius {fit.region_radius_deg.get(0.68, np.nan):.2f}°"
    )
    return fig


def table_bins_figure(table: Any, cos: Any, energy: Any, max_angle_deg: float = 180.0) -> Any:
    """Every energy bin of a likelihood table: data histogram over the fitted density.

    Shown against θ (degrees), as the density per degree (P(cos θ)·sin θ·π/180), so the
    forward peak is visible.

    Args:
        table: a :class:`edkeras.pointing.tables.LikelihoodTable`.
        cos: cos θ of the data events (same reference as the table).
        energy: their reconstructed energies, MeV.
        max_angle_deg: upper end of the θ axis.

    Returns:
        The matplotlib Figure.
    """
    plt = _pyplot()
    c = np.clip(np.asarray(cos, dtype=np.float64), -1.0, 1.0)
    e = np.asarray(energy, dtype=np.float64)
    n_e = len(table.energy_bins)
    ncol = min(3, n_e)
    nrow = int(np.ceil(n_e / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 3.2 * nrow), squeeze=False)
    theta_edges = np.degrees(np.arccos(table.cosine_bin_edges[::-1]))
    theta_mid = np.linspace(0.0, max_angle_deg, 400)
    for b, (lo, hi) in enumerate(table.energy_bins):
        ax = axes.flat[b]
        sel = (e >= lo) & (e < hi)
        theta = np.degrees(np.arccos(c[sel]))
        if sel.any():
            ax.hist(
                theta,
                bins=theta_edges,
                density=True,
                histtype="step",
                color="black",
                label=f"data ({sel.sum()})",
            )
        ec = np.full(len(theta_mid), np.sqrt(lo * hi) if np.isfinite(hi) else lo * 1.25)
        dens = table.pdf(np.cos(np.radians(theta_mid)), ec) * np.sin(np.radians(theta_mid)) * np.pi / 180.0
        ax.plot(theta_mid, dens, color="C1", label=table.method)
        ax.set_xlim(0, max_angle_deg)
        ax.set_title(f"{lo:g}–{hi:g} MeV", fontsize=9)
        ax.set_xlabel(r"$\theta$ (deg)")
        ax.set_ylabel("density per degree")
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[n_e:]:
        ax.set_visible(False)
    fig.suptitle(f"P(cos θ | E), reference: {table.reference}; {table.smoothing_method}", fontsize=9)
    fig.tight_layout()
    return fig
