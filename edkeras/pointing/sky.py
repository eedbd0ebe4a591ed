"""From the detector frame to the sky: right ascension and declination of a supernova at a UTC time.

The detector frame of edkeras (``docs/formats.md`` §1.3) is fixed to the DUNE far detector:
y is up (the local vertical), z is the horizontal projection of the neutrino beam's
direction from Fermilab to the site, x = y × z completes the right-handed frame.
:class:`DetectorSite` holds the site and that orientation; the transformations go through
astropy's ``AltAz`` frame to ICRS.

Two directions are kept apart everywhere: the **neutrino direction** (where the neutrinos
travel: ``truth/nu_direction``, a burst fit's ``direction``) and the supernova's
**position** on the sky, its opposite. An alert gives the position.

Example:
    >>> ra, dec = supernova_radec(fit.direction, "2026-12-06T22:00:00")
    >>> nu = nu_direction_from_radec(88.79, 7.41, "2026-12-06T22:00:00")   # Betelgeuse
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

import astropy.units as u
import erfa
import numpy as np
from astropy.coordinates import ICRS, AltAz, EarthLocation, SkyCoord
from astropy.time import Time
from astropy.utils import iers
from astropy.utils.exceptions import AstropyWarning

from edkeras.core.errors import InputError
from edkeras.reco.metrics import angular_error_deg

__all__ = [
    "DUNE_FAR_DETECTOR",
    "DetectorSite",
    "detector_to_radec",
    "nu_direction_from_radec",
    "parse_time",
    "radec_separation_deg",
    "radec_to_detector",
    "supernova_radec",
]


def _great_circle_bearing(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Initial bearing (degrees from north through east) of the great circle from point 1 to point 2."""
    p1, p2, dl = math.radians(lat1), math.radians(lat2), math.radians(lon2 - lon1)
    y = math.sin(dl) * math.cos(p2)
    x = math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl)
    return math.degrees(math.atan2(y, x)) % 360.0


@dataclass(frozen=True)
class DetectorSite:
    """Where the detector is and how its axes lie.

    Attributes:
        name: what the alert calls the site.
        latitude_deg, longitude_deg, height_m: geodetic position (WGS84; east longitude positive).
        beam_source_latitude_deg, beam_source_longitude_deg: where the beam comes from (the
            LBNF target at Fermilab); z points along the beam's horizontal projection at the site.
        beam_azimuth_deg: z's azimuth (from north through east) given directly; None: the final
            bearing of the great circle from the beam source to the site (on a sphere: the
            error against the ellipsoid is far below the degrees of a burst's region).

    The default positions are approximate (the 4850-ft level of the Sanford Underground Research
    Facility in Lead, South Dakota, and the LBNF target hall); a shift of 0.01° in any of the four
    coordinates moves the azimuth by less than 0.05°.
    """

    name: str = "DUNE far detector, Sanford Underground Research Facility, Lead, South Dakota"
    latitude_deg: float = 44.3517
    longitude_deg: float = -103.7520
    height_m: float = 120.0
    beam_source_latitude_deg: float = 41.8320
    beam_source_longitude_deg: float = -88.2570
    beam_azimuth_deg: float | None = None

    def __post_init__(self) -> None:
        for key in ("latitude_deg", "beam_source_latitude_deg"):
            if not -90.0 <= float(getattr(self, key)) <= 90.0:
                raise InputError(f"DetectorSite.{key}: must be in [-90, 90]; received {getattr(self, key)!r}")

    @property
    def azimuth_deg(self) -> float:
        """Azimuth of the detector's z axis, degrees from north through east."""
        if self.beam_azimuth_deg is not None:
            return float(self.beam_azimuth_deg) % 360.0
        back = _great_circle_bearing(self.latitude_deg, self.longitude_deg,
                                     self.beam_source_latitude_deg, self.beam_source_longitude_deg)
        return (back + 180.0) % 360.0

    @property
    def location(self) -> EarthLocation:
        return EarthLocation(lat=self.latitude_deg * u.deg, lon=self.longitude_deg * u.deg, height=self.height_m * u.m)

    def axes_enu(self) -> np.ndarray:
        """(3, 3) rows: the detector's x, y, z axes in local (east, north, up) components."""
        a = math.radians(self.azimuth_deg)
        z = np.array([math.sin(a), math.cos(a), 0.0])
        y = np.array([0.0, 0.0, 1.0])
        return np.stack([np.cross(y, z), y, z])

    def to_dict(self) -> dict[str, Any]:
        """The site as the alert records it, with the azimuth actually used."""
        return {**asdict(self), "z_axis_azimuth_deg": self.azimuth_deg}


DUNE_FAR_DETECTOR = DetectorSite()
"""The default site: the DUNE far detector at SURF, z along the LBNF beam."""


def parse_time(time: Any) -> Time:
    """A UTC instant from an ISO 8601 string (or an astropy ``Time``); an :class:`InputError` otherwise."""
    if isinstance(time, Time):
        return time
    text = str(time).strip().removesuffix("Z")
    try:
        with _astropy_quiet():
            return Time(text, format="isot", scale="utc")
    except ValueError:
        raise InputError(f"time {time!r}: expected ISO 8601 UTC, e.g. 2026-12-06T22:00:00") from None


@contextmanager
def _astropy_quiet() -> Iterator[None]:
    """Offline astropy: no IERS download, stale or missing Earth-rotation predictions accepted.

    Beyond the bundled IERS tables UT1 − UTC is unknown; it stays within ±0.9 s, i.e. within
    0.004° of right ascension, far below a burst's region. Times beyond the leap-second table
    make ERFA warn of a "dubious year", and polar motion falls back to its mean (arcseconds);
    these warnings are expected here and silenced.
    """
    with iers.conf.set_temp("auto_download", False), iers.conf.set_temp("auto_max_age", None), \
            iers.conf.set_temp("iers_degraded_accuracy", "ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", erfa.ErfaWarning)
        warnings.simplefilter("ignore", iers.IERSWarning)
        warnings.filterwarnings("ignore", message="Tried to get polar motions", category=AstropyWarning)
        yield


def _altaz(time: Any, site: DetectorSite) -> AltAz:
    return AltAz(obstime=parse_time(time), location=site.location)


def _unit_rows(vectors: Any, what: str) -> np.ndarray:
    v = np.atleast_2d(np.asarray(vectors, dtype=np.float64))
    if v.ndim != 2 or v.shape[1] != 3:
        raise InputError(f"{what}: expected (N, 3) or (3,) vectors; received shape {np.shape(vectors)}")
    norm = np.linalg.norm(v, axis=1, keepdims=True)
    if not np.all(np.isfinite(v)) or np.any(norm == 0):
        raise InputError(f"{what}: every vector must be finite and non-zero")
    return v / norm


def detector_to_radec(vectors: Any, time: Any, site: DetectorSite = DUNE_FAR_DETECTOR) -> tuple[np.ndarray, np.ndarray]:
    """(RA, Dec) in degrees (ICRS) of the sky points the detector-frame unit ``vectors`` point to, at ``time``."""
    v = _unit_rows(vectors, "detector_to_radec")
    east, north, up = (v @ site.axes_enu()).T
    alt = np.degrees(np.arcsin(np.clip(up, -1.0, 1.0)))
    az = np.degrees(np.arctan2(east, north)) % 360.0
    with _astropy_quiet():
        sky = SkyCoord(alt=alt * u.deg, az=az * u.deg, frame=_altaz(time, site)).transform_to(ICRS())
    return np.asarray(sky.ra.deg, dtype=np.float64), np.asarray(sky.dec.deg, dtype=np.float64)


def radec_to_detector(ra_deg: Any, dec_deg: Any, time: Any, site: DetectorSite = DUNE_FAR_DETECTOR) -> np.ndarray:
    """(N, 3) detector-frame unit vectors pointing to the sky points (RA, Dec) (degrees, ICRS) at ``time``."""
    ra, dec = np.atleast_1d(np.asarray(ra_deg, dtype=np.float64)), np.atleast_1d(np.asarray(dec_deg, dtype=np.float64))
    if ra.shape != dec.shape or not (np.all(np.isfinite(ra)) and np.all(np.abs(dec) <= 90.0)):
        raise InputError("radec_to_detector: RA and Dec must be finite, of one shape, with |Dec| <= 90°")
    with _astropy_quiet():
        local = SkyCoord(ra=ra * u.deg, dec=dec * u.deg, frame=ICRS()).transform_to(_altaz(time, site))
        alt, az = np.radians(local.alt.deg), np.radians(local.az.deg)
    enu = np.stack([np.cos(alt) * np.sin(az), np.cos(alt) * np.cos(az), np.sin(alt)], axis=1)
    return enu @ site.axes_enu().T


def radec_separation_deg(ra1_deg: Any, dec1_deg: Any, ra2_deg: Any, dec2_deg: Any) -> np.ndarray:
    """Angle in degrees between sky positions (RA, Dec in degrees), vectorised; accurate at 0° and 180°."""

    def unit(ra: Any, dec: Any) -> np.ndarray:
        ra, dec = np.radians(np.atleast_1d(np.asarray(ra, dtype=np.float64))), np.radians(np.atleast_1d(dec))
        return np.stack(np.broadcast_arrays(np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)), axis=-1)

    a, b = np.broadcast_arrays(unit(ra1_deg, dec1_deg), unit(ra2_deg, dec2_deg))
    return angular_error_deg(a, b)


def supernova_radec(nu_direction: Any, time: Any, site: DetectorSite = DUNE_FAR_DETECTOR) -> tuple[np.ndarray, np.ndarray]:
    """The supernova's position (RA, Dec in degrees) for neutrinos travelling along ``nu_direction`` (detector frame)."""
    return detector_to_radec(-_unit_rows(nu_direction, "supernova_radec"), time, site)


def nu_direction_from_radec(ra_deg: Any, dec_deg: Any, time: Any, site: DetectorSite = DUNE_FAR_DETECTOR) -> np.ndarray:
    """(N, 3) detector-frame direction in which a supernova's neutrinos travel, for its position (RA, Dec)."""
    return -radec_to_detector(ra_deg, dec_deg, time, site)
