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
    ra0, dec0 = sky.peak_radec
    fig = plt.figure(figsize=(12, 5))
    hp.mollview(shown, nest=True, coord="C", fig=fig.number, sub=(1, 2, 1), cbar=False, cmap="viridis",
                title=f"{sky.time.isot} UTC: 90 % and 68 % regions (RA/Dec)", min=0, max=2, badcolor="white")
    hp.graticule(dpar=30, dmer=60, alpha=0.3)
    plane = SkyCoord(l=np.linspace(0, 360, 721), b=np.zeros(721), unit="deg", frame=Galactic()).icrs
    hp.projplot(plane.ra.deg, plane.dec.deg, "k-", lonlat=True, lw=0.8, alpha=0.6)
    if mark is not None:
        hp.projplot(mark[0], mark[1], "r*", lonlat=True, ms=12)
    radius = max(3.0, 3.0 * sky.radius_deg[0.9])
    reso = 60.0 * 2.0 * radius / 400.0  # arcmin per pixel of a 400-pixel-wide zoom
    hp.gnomview(np.log10(np.maximum(sky.prob, 1e-300)), nest=True, coord="C", rot=(ra0, dec0), xsize=400,
                reso=reso, fig=fig.number, sub=(1, 2, 2), title="zoom: log10 probability per pixel",
                min=float(np.log10(sky.prob.max())) - 6.0, max=float(np.log10(sky.prob.max())), unit="log10 p")
    if mark is not None:
        hp.projplot(mark[0], mark[1], "r*", lonlat=True, ms=12)
        if label:
            hp.projtext(mark[0], mark[1], f"  {label}", lonlat=True, color="r")
    plt.close(fig)
    return fig
