"""The von Mises–Fisher helpers: normalisation, exact sampling, cones, stability over κ 1e-3…1e4."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, stats

from edkeras.core import vmf
from edkeras.core.errors import InputError

KAPPAS = [1e-3, 0.1, 1.0, 10.0, 100.0, 1e3, 1e4]


@pytest.mark.parametrize("kappa", KAPPAS)
def test_log_normaliser_matches_direct_formula_and_is_finite(kappa):
    got = vmf.log_normaliser(kappa)
    assert np.isfinite(got)
    if kappa < 500:  # where the direct formula does not overflow
        assert got == pytest.approx(np.log(kappa / (4 * np.pi * np.sinh(kappa))), rel=1e-12, abs=1e-12)
    else:  # large κ: log C3 → log κ − log 2π − κ
        assert got == pytest.approx(np.log(kappa) - np.log(2 * np.pi) - kappa, rel=1e-12)


def test_log_normaliser_isotropic_limit():
    assert vmf.log_normaliser(0.0) == pytest.approx(-np.log(4 * np.pi), abs=1e-14)


@pytest.mark.parametrize("kappa", KAPPAS)
def test_cos_pdf_integrates_to_one(kappa):
    # integrate in u = 1 − cos θ on a log grid so that κ = 1e4 (width 1e-4) is resolved
    u = np.concatenate([[0.0], np.geomspace(1e-9, 2.0, 20001)])
    p = vmf.cos_pdf(1.0 - u, kappa)
    assert np.all(np.isfinite(p)) and np.all(p >= 0)
    assert integrate.trapezoid(p, u) == pytest.approx(1.0, abs=2e-4)


def test_cos_pdf_negative_kappa_mirrors_and_zero_is_flat():
    t = np.linspace(-1, 1, 11)
    np.testing.assert_allclose(vmf.cos_pdf(t, -7.0), vmf.cos_pdf(-t, 7.0), rtol=1e-13)
    np.testing.assert_allclose(vmf.cos_pdf(t, 0.0), 0.5)


@pytest.mark.parametrize("kappa", [1e-3, 1.0, 30.0, 1e4])
def test_sampled_cosines_follow_the_cdf(kappa):
    rng = np.random.default_rng(3)
    x = vmf.sample([0.3, -0.2, 0.9], kappa, 4000, rng)
    assert x.shape == (4000, 3)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-12)
    mu = np.array([0.3, -0.2, 0.9]) / np.linalg.norm([0.3, -0.2, 0.9])
    t = x @ mu
    # exact CDF of cos θ; a wrong sampler fails this at this size
    assert stats.kstest(t, lambda c: vmf.cos_cdf(c, kappa)).pvalue > 1e-3
    assert np.mean(t) == pytest.approx(float(vmf.mean_cos(kappa)), abs=4 * np.std(t) / np.sqrt(4000) + 1e-9)


def test_sample_azimuth_is_uniform_about_mu():
    rng = np.random.default_rng(4)
    mu = np.array([0.0, 0.0, 1.0])
    x = vmf.sample(mu, 5.0, 4000, rng)
    phi = np.arctan2(x[:, 1], x[:, 0])
    assert stats.kstest(phi, "uniform", args=(-np.pi, 2 * np.pi)).pvalue > 1e-3


def test_sample_one_mean_per_row():
    rng = np.random.default_rng(5)
    mus = np.array([[1.0, 0, 0], [0, -1.0, 0], [0, 0, 1.0]])
    x = vmf.sample(mus, 1e4, None, rng)
    assert np.all(np.sum(x * mus, axis=1) > 0.99)


@pytest.mark.parametrize("kappa", KAPPAS)
@pytest.mark.parametrize("fraction", [0.5, 0.68, 0.9])
def test_cone_angle_holds_fraction_and_inverts(kappa, fraction):
    ang = vmf.cone_angle_deg(kappa, fraction)
    c = np.cos(np.radians(ang))
    assert 1.0 - vmf.cos_cdf(c, kappa) == pytest.approx(fraction, rel=1e-6)
    assert vmf.kappa_from_cone_deg(ang, fraction) == pytest.approx(kappa, rel=1e-6)


def test_cone_angle_limits():
    assert vmf.cone_angle_deg(0.0, 0.5) == pytest.approx(90.0)
    # large κ: θ ≈ √(−2 ln(1 − f)/κ)
    assert vmf.cone_angle_deg(1e4, 0.68) == pytest.approx(
        np.degrees(np.sqrt(-2 * np.log(0.32) / 1e4)), rel=1e-3
    )
    assert vmf.kappa_from_cone_deg(120.0, 0.68) == 0.0  # wider than isotropic


def test_kappa_from_mean_cos_inverts_mean_cos_both_signs():
    k = np.array([-300.0, -2.0, 1e-3, 0.5, 8.0, 1e3, 1e4])
    np.testing.assert_allclose(vmf.kappa_from_mean_cos(vmf.mean_cos(k)), k, rtol=1e-8)
    assert vmf.kappa_from_mean_cos(0.0) == 0.0


def test_bad_inputs_raise():
    with pytest.raises(InputError):
        vmf.log_normaliser(-1.0)
    with pytest.raises(InputError):
        vmf.cone_angle_deg(10.0, 1.5)
    with pytest.raises(InputError):
        vmf.kappa_from_cone_deg(0.0)
    with pytest.raises(InputError):
        vmf.sample([0, 0, 0], 1.0, 3, np.random.default_rng(0))
