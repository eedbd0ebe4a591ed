"""The alert's sky map: probability in equatorial coordinates (Mollweide), credible regions, galactic plane, a zoom."""

from __future__ import annotations

from typing import Any

import healpy as hp
import matplotlib.pyplot as plt
import numpy as np
from astropy.coordinates import Galactic, SkyCoord

from edkeras.pointing.skymap import SkyMap

__all__ = ["alert_figure"]


def alert_figure(sky: SkyMap, mark: tuple[float, float] | None = None, label: str = "") -> Any:
    """Mollweide map of the credible regions (68 %, 90 %) over the probability, with the galactic plane and a zoom.

    Args:
        sky: the burst's sky map.
        mark: (RA, Dec) in degrees to mark (a known source).
        label: the marked point's name.
    """
    level = np.zeros(sky.prob.size)
    level[sky.region(0.9)] = 1.0
    level[sky.region(0.68)] = 2.0
    shown = np.where(level > 0, level, np.nan)
    fig = plt.figure(figsize=(12, 5))
    hp.mollview(shown, nest=True, coord="C", fig=fig.number, sub=(1, 2, 1), cbar=False, cmap="viridis",
                title=f"{sky.time.isot} UTC: 90 % and 68 % regions (RA/Dec)", min=0, max=2, badcolor="white")
    hp.graticule(dpar=30, dmer=60, alpha=0.3)
    plane = SkyCoord(l=np.linspace(0, 360, 721), b=np.zeros(721), unit="deg", frame=Galactic()).icrs
    hp.projplot(plane.ra.deg, plane.dec.deg, "k-", lonlat=True, lw=0.8, alpha=0.6)
    if mark is not None:
        hp.projplot(mark[0], mark[1], "r*", lonlat=True, ms=12)
    _zoom(fig.add_subplot(1, 2, 2), sky, level, mark, label)
    plt.close(fig)
    return fig


def _zoom(ax: Any, sky: SkyMap, level: np.ndarray, mark: tuple[float, float] | None, label: str) -> None:
    """Gnomonic zoom on the map's peak: probability per pixel, the 68 % and 90 % contours, the mark."""
    ra0, dec0 = sky.peak_radec
    half = max(3.0, 2.5 * sky.radius_deg[0.9])  # degrees from the centre to the edge
    n = 300
    proj = hp.projector.GnomonicProj(rot=(ra0, dec0, 0.0), coord="C", flipconv="astro", xsize=n, ysize=n,
                                     reso=60.0 * 2.0 * half / n)

    def pix(x: Any, y: Any, z: Any) -> Any:
        return hp.vec2pix(sky.nside, x, y, z, nest=True)

    prob = np.asarray(proj.projmap(sky.prob, pix), dtype=float)
    lev = np.asarray(proj.projmap(level, pix), dtype=float)
    extent = np.degrees(proj.get_extent())
    im = ax.imshow(prob / prob.max(), origin="lower", extent=extent, cmap="Blues")
    xs = np.linspace(extent[0], extent[1], n)
    ys = np.linspace(extent[2], extent[3], n)
    cs = ax.contour(xs, ys, lev, levels=[0.5, 1.5], colors=["tab:orange", "tab:red"], linewidths=1.2)
    ax.clabel(cs, fmt={0.5: "90 %", 1.5: "68 %"}, fontsize=8)
    ax.plot(0.0, 0.0, "k+", ms=10)
    if mark is not None:
        mx, my = np.degrees(proj.ang2xy(mark[0], mark[1], lonlat=True))
        ax.plot(mx, my, "r*", ms=14)
        if label:
            ax.annotate(f" {label}", (mx, my), color="r")
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_xlabel("degrees from the peak (east to the left)")
    ax.set_ylabel("degrees from the peak (north up)")
    ax.set_title(f"zoom on RA {ra0:.1f}°, Dec {dec0:+.1f}°: 68 % r = {sky.radius_deg[0.68]:.1f}°, "
                 f"90 % area {sky.area_deg2[0.9]:.0f} deg²", fontsize=9)
    ax.figure.colorbar(im, ax=ax, fraction=0.046, label="probability per pixel / its maximum")
