"""Detector frame ⇄ sky: checked against an independent alt-az computation and by round trips."""

from __future__ import annotations

import math
from datetime import datetime, timezone

import numpy as np
import pytest

from edkeras.core.errors import InputError
from edkeras.pointing.sky import (
    DUNE_FAR_DETECTOR,
    DetectorSite,
    detector_to_radec,
    nu_direction_from_radec,
    parse_time,
    radec_to_detector,
    supernova_radec,
)

BETELGEUSE = (88.792939, 7.407064)  # ICRS (J2000) RA, Dec in degrees
VEGA = (279.234735, 38.783689)
TIMES = ["2026-12-06T22:00:00", "2024-03-01T04:30:00", "2031-07-14T12:00:00"]


def _independent_altaz(ra0: float, dec0: float, when: str, lat: float, lon: float) -> tuple[float, float]:
    """Altitude and azimuth (degrees) by textbook formulas (Meeus): precession to date, GMST, hour angle.

    Nutation and aberration are left out (each < 0.006°), so this agrees with astropy to ~0.02°.
    """
    t = datetime.fromisoformat(when).replace(tzinfo=timezone.utc)
    jd = 2440587.5 + t.timestamp() / 86400.0
    T = (jd - 2451545.0) / 36525.0
    zeta = math.radians((2306.2181 * T + 0.30188 * T**2 + 0.017998 * T**3) / 3600.0)
    z = math.radians((2306.2181 * T + 1.09468 * T**2 + 0.018203 * T**3) / 3600.0)
    theta = math.radians((2004.3109 * T - 0.42665 * T**2 - 0.041833 * T**3) / 3600.0)
    a0, d0 = math.radians(ra0), math.radians(dec0)
    A = math.cos(d0) * math.sin(a0 + zeta)
    B = math.cos(theta) * math.cos(d0) * math.cos(a0 + zeta) - math.sin(theta) * math.sin(d0)
    C = math.sin(theta) * math.cos(d0) * math.cos(a0 + zeta) + math.cos(theta) * math.sin(d0)
    ra, dec = math.atan2(A, B) + z, math.asin(C)
    gmst = 280.46061837 + 360.98564736629 * (jd - 2451545.0) + 0.000387933 * T**2 - T**3 / 38710000.0
    h = math.radians((gmst + lon) % 360.0) - ra
    phi = math.radians(lat)
    alt = math.asin(math.sin(phi) * math.sin(dec) + math.cos(phi) * math.cos(dec) * math.cos(h))
    az = math.atan2(-math.cos(dec) * math.sin(h), math.sin(dec) * math.cos(phi) - math.cos(dec) * math.sin(phi) * math.cos(h))
    return math.degrees(alt), math.degrees(az) % 360.0


def _expected_detector_vector(alt: float, az: float, azimuth_z: float) -> np.ndarray:
    """y up, z horizontal at azimuth ``azimuth_z``, x = y × z: written out, not taken from the module."""
    a, h, A = math.radians(az), math.radians(alt), math.radians(azimuth_z)
    east, north, up = math.cos(h) * math.sin(a), math.cos(h) * math.cos(a), math.sin(h)
    x = -math.cos(A) * east + math.sin(A) * north  # x = (−cos A, sin A, 0) in (east, north, up)
    z = math.sin(A) * east + math.cos(A) * north  # z = (sin A, cos A, 0)
    return np.array([x, up, z])


def _angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, float).ravel(), np.asarray(b, float).ravel()
    return math.degrees(math.atan2(np.linalg.norm(np.cross(a, b)), float(a @ b)))


@pytest.mark.parametrize("star", [BETELGEUSE, VEGA])
@pytest.mark.parametrize("when", TIMES[:2])
def test_a_known_star_maps_to_the_detector_vector_computed_independently(star, when):
    site = DUNE_FAR_DETECTOR
    alt, az = _independent_altaz(*star, when, site.latitude_deg, site.longitude_deg)
    expected = _expected_detector_vector(alt, az, site.azimuth_deg)
    got = radec_to_detector(*star, when)[0]
    assert _angle_deg(got, expected) < 0.1
    ra, dec = detector_to_radec(expected, when)
    assert _angle_deg(radec_to_detector(ra, dec, when)[0], expected) < 1e-6
    sep = math.degrees(math.acos(min(1.0, math.sin(math.radians(dec[0])) * math.sin(math.radians(star[1]))
                                     + math.cos(math.radians(dec[0])) * math.cos(math.radians(star[1]))
                                     * math.cos(math.radians(ra[0] - star[0])))))
    assert sep < 0.1


@pytest.mark.parametrize("when", TIMES)
def test_round_trip_is_exact(when):
    v = np.random.default_rng(3).normal(size=(500, 3))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    ra, dec = detector_to_radec(v, when)
    assert np.max(np.abs(radec_to_detector(ra, dec, when) - v)) < 1e-9


def test_position_is_opposite_to_the_neutrino_direction():
    when = TIMES[0]
    nu = nu_direction_from_radec(*BETELGEUSE, when)
    assert np.allclose(nu, -radec_to_detector(*BETELGEUSE, when))
    ra, dec = supernova_radec(nu, when)
    assert abs(ra[0] - BETELGEUSE[0]) < 1e-7 and abs(dec[0] - BETELGEUSE[1]) < 1e-7


def test_the_axes_y_up_z_along_the_beam_x_completing_the_frame():
    site = DUNE_FAR_DETECTOR
    x, y, z = site.axes_enu()
    np.testing.assert_allclose(np.cross(x, y), z, atol=1e-15)
    np.testing.assert_allclose(y, [0, 0, 1])
    # the beam's horizontal direction at the site, from the chord Fermilab → site on a sphere
    def ecef(lat, lon):
        la, lo = math.radians(lat), math.radians(lon)
        return np.array([math.cos(la) * math.cos(lo), math.cos(la) * math.sin(lo), math.sin(la)])
    here, src = ecef(site.latitude_deg, site.longitude_deg), ecef(site.beam_source_latitude_deg, site.beam_source_longitude_deg)
    beam = here - src
    la, lo = math.radians(site.latitude_deg), math.radians(site.longitude_deg)
    east = np.array([-math.sin(lo), math.cos(lo), 0.0])
    north = np.array([-math.sin(la) * math.cos(lo), -math.sin(la) * math.sin(lo), math.cos(la)])
    azimuth = math.degrees(math.atan2(beam @ east, beam @ north)) % 360.0
    assert abs(azimuth - site.azimuth_deg) < 1e-6
    assert 270.0 < site.azimuth_deg < 290.0  # west-north-west, away from Fermilab
    # the zenith: altitude 90°, declination near the latitude
    _, dec = detector_to_radec([0.0, 1.0, 0.0], TIMES[0])
    assert abs(dec[0] - site.latitude_deg) < 0.5


def test_a_configured_azimuth_turns_the_frame():
    turned = DetectorSite(beam_azimuth_deg=DUNE_FAR_DETECTOR.azimuth_deg + 90.0)
    v = radec_to_detector(*VEGA, TIMES[0])[0]
    w = radec_to_detector(*VEGA, TIMES[0], site=turned)[0]
    assert abs(v[1] - w[1]) < 1e-9  # the altitude does not change
    # z turned 90° east: the new z axis is the old −x, the new x axis the old z
    np.testing.assert_allclose([w[0], w[2]], [v[2], -v[0]], atol=1e-9)


@pytest.mark.parametrize("bad", ["", "yesterday", "2026-13-01T00:00:00", "2026-12-06 25:00"])
def test_a_bad_time_is_one_clear_error(bad):
    with pytest.raises(InputError, match="expected ISO 8601 UTC"):
        parse_time(bad)


def test_bad_vectors_and_coordinates_are_refused():
    with pytest.raises(InputError, match="finite and non-zero"):
        detector_to_radec([0.0, 0.0, 0.0], TIMES[0])
    with pytest.raises(InputError, match=r"\(N, 3\)"):
        detector_to_radec([1.0, 0.0], TIMES[0])
    with pytest.raises(InputError, match="Dec"):
        radec_to_detector(10.0, 95.0, TIMES[0])
