"""HEALPix sky maps of a burst: the supernova where the map says, probabilities that sum to 1, a LIGO-style FITS file."""

from __future__ import annotations

import math

import healpy as hp
import numpy as np
import pytest
from astropy.io import fits

from edkeras.core import vmf
from edkeras.core.errors import PointingError
from edkeras.pointing import build_table, fit_burst
from edkeras.pointing.sky import nu_direction_from_radec
from edkeras.pointing.skymap import burst_skymap, choose_nside, fit_radec
from edkeras.reco.predictions import load_predictions, save_predictions

BETELGEUSE = (88.792939, 7.407064)
WHEN = "2026-12-06T22:00:00"


def _sep_deg(a: tuple[float, float], b: tuple[float, float]) -> float:
    (ra1, d1), (ra2, d2) = (np.radians(a), np.radians(b))
    c = math.sin(d1) * math.sin(d2) + math.cos(d1) * math.cos(d2) * math.cos(ra1 - ra2)
    return math.degrees(math.acos(min(1.0, max(-1.0, c))))


@pytest.fixture(scope="module")
def burst(tmp_path_factory):
    """A table from isotropic supernova directions, and a 400-event burst from Betelgeuse at WHEN."""
    rng = np.random.default_rng(7)
    tmp = tmp_path_factory.mktemp("sky")
    n = 20000
    nu = rng.normal(size=(n, 3))
    nu /= np.linalg.norm(nu, axis=1, keepdims=True)
    kappa = 4.0
    dirs = np.array([vmf.sample(v, kappa, 1, rng)[0] for v in nu])
    cal = load_predictions(save_predictions(tmp / "cal.npz", predictions=dirs, energies=rng.uniform(6, 40, n),
                                            nu_directions=nu, split="val"))
    table = build_table(cal, method="kde")
    nu_star = nu_direction_from_radec(*BETELGEUSE, WHEN)[0]
    events = vmf.sample(nu_star, kappa, 400, rng)
    return table, events, rng.uniform(6, 40, 400)


def test_the_map_points_at_the_star_and_sums_to_one(burst):
    table, events, energies = burst
    fit = fit_burst(events, energies, table)
    m = burst_skymap(fit, WHEN, object_name="Betelgeuse test burst")
    assert abs(m.prob.sum() - 1.0) < 1e-6 and np.all(m.prob >= 0)
    assert m.prob.size == hp.nside2npix(m.nside)
    r68 = fit.region_radius_deg[0.68]
    assert hp.nside2resol(m.nside, arcmin=True) / 60.0 <= r68 / 4.0 or m.nside == 1024
    # the most probable pixel and the fit's own direction agree, and sit near the star, not at its antipode
    assert _sep_deg(m.peak_radec, fit_radec(fit, WHEN)) < 2 * hp.nside2resol(m.nside, arcmin=True) / 60.0
    assert _sep_deg(m.peak_radec, BETELGEUSE) < 3 * r68
    star = hp.ang2pix(m.nside, BETELGEUSE[0], BETELGEUSE[1], lonlat=True, nest=True)
    anti = hp.ang2pix(m.nside, BETELGEUSE[0] + 180.0, -BETELGEUSE[1], lonlat=True, nest=True)
    assert m.region(0.9)[star] and m.prob[anti] < 1e-12
    # a likelihood near a 2-D Gaussian: the probability regions match the fit's Wilks regions
    for cl in (0.68, 0.9):
        assert m.area_deg2[cl] == pytest.approx(math.pi * fit.region_radius_deg[cl] ** 2, rel=0.25)
    assert m.area_deg2[0.68] < m.area_deg2[0.9] and m.regions == "probability"


def test_the_fits_file_is_what_healpy_and_gw_tools_read(burst, tmp_path):
    table, events, energies = burst
    m = burst_skymap(fit_burst(events, energies, table), WHEN, nside=128)
    path = m.write(tmp_path / "skymap.fits")
    back = hp.read_map(str(path), nest=True)
    np.testing.assert_allclose(back, m.prob, rtol=0, atol=1e-15)
    with fits.open(path) as f:
        head = f[1].header
        assert head["TTYPE1"] == "PROB" and head["ORDERING"] == "NESTED" and head["NSIDE"] == 128
        assert head["COORDSYS"] == "C" and head["DATE-OBS"].startswith("2026-12-06T22:00:00")
        assert head["INSTRUME"] == "DUNE" and head["CREATOR"].startswith("edkeras") and head["OBJECT"]
        assert head["CREDREG"] == "probability"
    assert not list(tmp_path.glob("*.tmp*"))  # written under a temporary name, then renamed


def test_calibrated_thresholds_define_the_regions(burst, tmp_path):
    table, events, energies = burst
    wilks = burst_skymap(fit_burst(events, energies, table), WHEN, nside=128)
    fit = fit_burst(events, energies, table, region_thresholds={0.68: 4.0, 0.9: 9.0})
    m = burst_skymap(fit, WHEN, nside=128)
    assert m.regions == "calibrated dlnL" and m.thresholds == {0.68: 4.0, 0.9: 9.0}
    assert np.array_equal(m.region(0.9), m.delta <= 9.0)
    assert m.area_deg2[0.9] > 2 * wilks.area_deg2[0.9]  # ΔlnL 9 against Wilks' 2.3
    with fits.open(m.write(tmp_path / "cal.fits")) as f:
        assert f[1].header["CREDREG"] == "calibrated dlnL"
        assert f[1].header["DLNL90"] == 9.0


def test_a_tempered_map_is_wider_by_root_t_with_the_same_peak(burst, tmp_path):
    """exp(−ΔlnL / T): a near-Gaussian peak keeps its place and its regions grow in area by about T."""
    table, events, energies = burst
    fit = fit_burst(events, energies, table)
    raw = burst_skymap(fit, WHEN, nside=256)
    hot = burst_skymap(fit, WHEN, nside=256, temperature=4.0)
    assert abs(hot.prob.sum() - 1.0) < 1e-6 and hot.peak_radec == raw.peak_radec
    for cl in (0.68, 0.9):
        assert hot.area_deg2[cl] / raw.area_deg2[cl] == pytest.approx(4.0, rel=0.2)
    # near the peak (where both maps are refined) the tempered map is exp(−ΔlnL / T) of the raw one
    near = raw.delta < 20.0
    np.testing.assert_allclose(np.log(hot.prob.max() / hot.prob[near]), raw.delta[near] / 4.0, rtol=1e-9, atol=1e-9)
    with fits.open(hot.write(tmp_path / "hot.fits")) as f:
        assert f[1].header["LNLTEMP"] == 4.0
    with pytest.raises(PointingError, match="temperature must be a positive number"):
        burst_skymap(fit, WHEN, temperature=0.0)


def test_burst_temperature_recovers_the_spread_of_delta_at_the_truth():
    """ΔlnL at the truth of a 2-D Gaussian likelihood too narrow by T0 is T0 × Exp(1): T comes back as T0."""
    from edkeras.pointing import burst_temperature

    rng = np.random.default_rng(2)
    for t0 in (1.0, 2.5, 6.0):
        t = burst_temperature(t0 * rng.exponential(size=4000))
        assert t == pytest.approx(t0, rel=0.08)
    assert burst_temperature(0.2 * rng.exponential(size=500)) == 1.0  # never sharper than the likelihood
    with pytest.raises(PointingError, match="at least 10 calibration bursts"):
        burst_temperature([1.0, 2.0, np.nan])


def test_nside_choice_and_bad_nside():
    assert choose_nside(5.0) == 64 and choose_nside(1.0) == 256 and choose_nside(0.01) == 1024
    assert choose_nside(float("nan")) == 64
    with pytest.raises(PointingError, match="power of two"):
        burst_skymap(fit_burst(np.tile([0.0, 0.0, 1.0], (5, 1)), np.full(5, 20.0), _flat_table()), WHEN, nside=100)


def _flat_table():
    rng = np.random.default_rng(1)
    n = 3000
    d = rng.normal(size=(n, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    from edkeras.reco.predictions import Predictions

    return build_table(Predictions(predictions=d, energies=rng.uniform(6, 40, n), nu_directions=np.tile([0, 0, 1.0], (n, 1))),
                       method="histogram")
