"""HEALPix sky maps of a burst fit: probability per pixel in equatorial coordinates, credible areas, FITS.

The map is the burst likelihood over the sky (a flat prior on the supernova's position),
evaluated at HEALPix pixel centres (NESTED ordering, ICRS): the whole sky at nside 64, then
only the pixels within reach of the maximum are refined down to a pixel a quarter of the 68 %
radius across (a flat map at the final nside; pixels far from the maximum keep their parent's
value). The FITS file follows the LIGO/Virgo/KAGRA convention (a ``PROB`` column; ``ORDERING``,
``NSIDE``, ``COORDSYS = 'C'``, ``DATE-OBS``, ``OBJECT``, ``INSTRUME``, ``CREATOR`` cards), so
``healpy.read_map`` and ``ligo.skymap`` read it.

Credible regions: where the fit carries ΔlnL thresholds calibrated on simulated bursts, the
region of level CL is {ln L_max − ln L ≤ threshold(CL)}; otherwise the smallest set of pixels
holding probability CL. The FITS header's ``CREDREG`` card says which.

Tempering: the likelihood of a burst is built from tables averaged over directions and
energies, so it is narrower than the true spread of the fits (the alert's coverage benchmark
measured it). With a temperature T calibrated on simulated bursts
(:func:`~edkeras.pointing.resolution.burst_temperature`, stored with the tables) the map is
p ∝ exp(−ΔlnL / T): the same shape and peak, wider by about √T, so that the map itself — and
every credible region a telescope computes from its ``PROB`` column — holds the supernova as
often as it says. The ``LNLTEMP`` card records T.

Example:
    >>> m = burst_skymap(fit, "2026-12-06T22:00:00")
    >>> m.area_deg2[0.9], m.write("skymap.fits")
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import healpy as hp
import numpy as np
from astropy.time import Time

from edkeras import __version__
from edkeras.core.errors import PointingError
from edkeras.core.files import atomic_path
from edkeras.pointing.burst import CALIBRATED, BurstFit
from edkeras.pointing.sky import (
    DUNE_FAR_DETECTOR,
    DetectorSite,
    parse_time,
    radec_to_detector,
    supernova_radec,
)

__all__ = ["COARSE_NSIDE", "MAX_NSIDE", "SkyMap", "burst_skymap", "choose_nside", "fit_radec"]

COARSE_NSIDE = 64
"""The whole-sky scan of the map (pixels ≈ 0.9° across)."""

MAX_NSIDE = 1024
"""The finest pixels a map refines to (≈ 0.06° across)."""

REFINE_DELTA = 25.0
"""Pixels with ln L_max − ln L below this are refined (their probability is at least e⁻²⁵ of the peak's)."""


def choose_nside(radius_68_deg: float) -> int:
    """The smallest power-of-two nside whose pixels are at most a quarter of the 68 % radius across."""
    if not math.isfinite(radius_68_deg) or radius_68_deg <= 0:
        return COARSE_NSIDE
    target = hp.nside2resol(1, arcmin=False) * 180.0 / math.pi * 4.0 / float(radius_68_deg)
    nside = 2 ** math.ceil(math.log2(max(target, 1.0)))
    return int(min(max(nside, COARSE_NSIDE), MAX_NSIDE))


@dataclass
class SkyMap:
    """A burst's probability map on the sky (HEALPix NESTED, ICRS) and its credible regions.

    Attributes:
        prob: (12 nside²,) probability per pixel, summing to 1.
        delta: (12 nside²,) ln L_max − ln L per pixel.
        nside: the map's resolution.
        time: the burst's UTC time.
        regions: ``"calibrated dlnL"`` or ``"probability"`` (see the module notes).
        thresholds: CL → ΔlnL of the regions where calibrated.
        object_name: the OBJECT card.
        temperature: T of the tempered map p ∝ exp(−ΔlnL / T) (1: the likelihood as it is).
    """

    prob: np.ndarray
    delta: np.ndarray
    nside: int
    time: Time
    regions: str
    thresholds: dict[float, float] = field(default_factory=dict)
    object_name: str = "DUNE supernova burst"
    temperature: float = 1.0

    @property
    def pixel_area_deg2(self) -> float:
        return float(hp.nside2pixarea(self.nside, degrees=True))

    @cached_property
    def _ranked(self) -> tuple[np.ndarray, np.ndarray]:
        """Pixels by falling probability and their cumulative probability (sorted once per map)."""
        order = np.argsort(self.prob)[::-1]
        return order, np.cumsum(self.prob[order])

    def region(self, cl: float) -> np.ndarray:
        """Boolean mask of the pixels in the credible region of level ``cl``."""
        if self.regions == "calibrated dlnL" and float(cl) in self.thresholds:
            return self.delta <= self.thresholds[float(cl)]
        order, cum = self._ranked
        n = int(np.searchsorted(cum, float(cl))) + 1
        mask = np.zeros(self.prob.size, dtype=bool)
        mask[order[:n]] = True
        return mask

    @cached_property
    def area_deg2(self) -> dict[float, float]:
        """Area of the 68 % and 90 % credible regions (deg²)."""
        return {cl: float(self.region(cl).sum()) * self.pixel_area_deg2 for cl in (0.68, 0.9)}

    @property
    def radius_deg(self) -> dict[float, float]:
        """Radius of the cone of the same solid angle as each credible region (deg)."""
        return {cl: math.degrees(math.acos(max(-1.0, 1.0 - a * (math.pi / 180.0) ** 2 / (2.0 * math.pi))))
                for cl, a in self.area_deg2.items()}

    @property
    def peak_radec(self) -> tuple[float, float]:
        """RA and Dec (deg) of the most probable pixel's centre."""
        theta, phi = hp.pix2ang(self.nside, int(np.argmax(self.prob)), nest=True)
        return math.degrees(phi), 90.0 - math.degrees(theta)

    def write(self, path: str | os.PathLike) -> Path:
        """Write the map as a LIGO/Virgo-style HEALPix FITS file, atomically."""
        header = [
            ("DATE-OBS", self.time.isot, "UTC time of the burst"),
            ("OBJECT", self.object_name[:68], "what the map locates"),
            ("INSTRUME", "DUNE", "the neutrino detector"),
            ("CREATOR", f"edkeras {__version__}", "the software"),
            ("CREDREG", self.regions, "how credible regions are defined"),
            ("LNLTEMP", float(self.temperature), "map = exp(-dlnL / LNLTEMP); 1 = raw likelihood"),
        ]
        header += [(f"DLNL{round(100 * cl)}", float(v), f"calibrated dlnL of the {cl:.0%} region")
                   for cl, v in self.thresholds.items()]
        path = Path(path)
        with atomic_path(path) as tmp:
            hp.write_map(str(tmp), self.prob, nest=True, coord="C", column_names=["PROB"],
                         column_units="pix-1", extra_header=header, overwrite=True, dtype=np.float64)
        return path


def burst_skymap(
    fit: BurstFit,
    time: Any,
    site: DetectorSite = DUNE_FAR_DETECTOR,
    nside: int | None = None,
    object_name: str = "DUNE supernova burst",
    temperature: float = 1.0,
) -> SkyMap:
    """The sky map of a burst fit at the burst's ``time`` (ISO 8601 UTC).

    Args:
        fit: a :func:`~edkeras.pointing.burst.fit_burst` result (with its likelihood attached).
        time: the burst's time.
        site: where the detector is and how its axes lie.
        nside: the final resolution; None: :func:`choose_nside` of the fit's 68 % radius.
        object_name: the OBJECT card of the FITS file.
        temperature: T > 0 of the tempered map p ∝ exp(−ΔlnL / T) (see the module notes).
    """
    if not (math.isfinite(temperature) and temperature > 0):
        raise PointingError(f"burst_skymap: temperature must be a positive number; received {temperature!r}")
    if fit.loglike is None:
        raise PointingError("burst_skymap: the fit has no likelihood attached")
    t = parse_time(time)
    r68 = fit.region_radius_deg.get(0.68, math.nan) * math.sqrt(temperature)  # tempering widens by about √T
    final = choose_nside(r68) if nside is None else int(nside)
    if final < 1 or final & (final - 1) or final > MAX_NSIDE:
        raise PointingError(f"burst_skymap: nside must be a power of two up to {MAX_NSIDE}; received {nside!r}")
    level = min(COARSE_NSIDE, final)
    ll = _loglike_at_pixels(fit, level, np.arange(hp.nside2npix(level)), t, site)
    while level < final:
        near = np.flatnonzero(ll.max() - ll < REFINE_DELTA * temperature)
        children = (4 * near[:, None] + np.arange(4)).ravel()  # NESTED: pixel i's children are 4i … 4i + 3
        level *= 2
        ll = np.repeat(ll, 4)  # every pixel's children inherit its value ...
        ll[children] = _loglike_at_pixels(fit, level, children, t, site)  # ... unless refined
    delta = ll.max() - ll
    prob = np.exp(-delta / temperature)
    prob /= prob.sum()
    calibrated = fit.approximation == CALIBRATED
    thresholds = {float(cl): float(v) for cl, v in fit.delta_log_likelihood.items()} if calibrated else {}
    return SkyMap(prob, delta, level, t, "calibrated dlnL" if calibrated else "probability", thresholds, object_name,
                  float(temperature))


def _loglike_at_pixels(fit: BurstFit, nside: int, pixels: np.ndarray, time: Time, site: DetectorSite) -> np.ndarray:
    """ln L of the burst for a supernova at the centres of ``pixels`` (NESTED, ICRS)."""
    theta, phi = hp.pix2ang(nside, pixels, nest=True)
    position = radec_to_detector(np.degrees(phi), 90.0 - np.degrees(theta), time, site)
    return np.asarray(fit.loglike(-position), dtype=np.float64)  # the neutrinos travel away from the position


def fit_radec(fit: BurstFit, time: Any, site: DetectorSite = DUNE_FAR_DETECTOR) -> tuple[float, float]:
    """RA and Dec (deg) of the supernova's position for a burst fit (its best neutrino direction reversed)."""
    ra, dec = supernova_radec(fit.direction, time, site)
    return float(ra[0]), float(dec[0])
