"""Calibration maths on synthetic von Mises–Fisher samples with known κ."""

from __future__ import annotations

import numpy as np
import pytest

from edkeras.core import vmf
from edkeras.core.errors import InputError
from edkeras.reco.calibration import (
    calibration_by_energy,
    calibration_summary,
    calibration_table,
    coverage,
    kappa_from_sigma,
    predicted_cone_deg,
    selection_curve,
    sigma_cone_deg,
)
from edkeras.reco.metrics import angular_error_deg, containment_angle
from edkeras.reco.recalibration import (
    KappaCalibration,
    fit_kappa_calibration,
    fit_kappa_isotonic,
    fit_kappa_power,
)


def vmf_events(n: int, seed: int, kmin: float = 2.0, kmax: float = 2000.0) -> tuple[np.ndarray, np.ndarray]:
    """True κ (log-uniform) and the angular errors of truths drawn from vMF(prediction, κ)."""
    rng = np.random.default_rng(seed)
    kappa = np.exp(rng.uniform(np.log(kmin), np.log(kmax), n))
    mu = rng.normal(size=(n, 3))
    mu /= np.linalg.norm(mu, axis=1, keepdims=True)
    truth = vmf.sample(mu, kappa, None, rng)
    return kappa, angular_error_deg(mu, truth)


@pytest.fixture(scope="module")
def sample_a() -> tuple[np.ndarray, np.ndarray]:
    return vmf_events(20000, seed=11)


@pytest.fixture(scope="module")
def sample_b() -> tuple[np.ndarray, np.ndarray]:
    return vmf_events(20000, seed=12)


def _pull(cov: dict, f: int) -> float:
    return abs(cov[f"coverage_{f}"] - f / 100) / cov[f"coverage_{f}_err"]


def test_calibrated_kappa_has_nominal_coverage(sample_a) -> None:
    kappa, err = sample_a
    cov = coverage(err, kappa=kappa)
    assert cov["n"] == 20000
    assert _pull(cov, 68) < 3.5
    assert _pull(cov, 90) < 3.5
    np.testing.assert_allclose(cov["coverage_68_err"], np.sqrt(0.68 * 0.32 / 20000))


def test_calibration_table_of_a_calibrated_model(sample_a) -> None:
    kappa, err = sample_a
    rows = calibration_table(err, kappa=kappa, n_bins=5, n_boot=50)
    assert [r["n"] for r in rows] == [4000] * 5
    cones = [r["predicted_theta68"] for r in rows]
    assert cones == sorted(cones)
    for r in rows:
        assert r["within_20pct"]
        assert abs(r["ratio"] - 1.0) < 0.08
        assert abs(r["coverage_68"] - 0.68) < 4 * r["coverage_68_err"]
        assert r["theta68_ci"][0] <= r["theta68"] <= r["theta68_ci"][1]
    summary = calibration_summary(err, kappa=kappa, n_bins=5, n_boot=0)
    assert summary["ratio"] == pytest.approx(1.0, abs=0.03)
    assert summary["share_within_20pct"] == 1.0


def test_overconfident_kappa_is_detected(sample_a) -> None:
    kappa, err = sample_a
    cov = coverage(err, kappa=3.0 * kappa)
    assert cov["coverage_68"] < 0.68 - 20 * cov["coverage_68_err"]
    rows = calibration_table(err, kappa=3.0 * kappa, n_bins=5, n_boot=0)
    assert not any(r["within_20pct"] for r in rows)
    # the cone of 3κ is 1/√3 of the cone of κ (large κ): ratio ≈ 0.58 in every bin
    for r in rows:
        assert 0.5 < r["ratio"] < 0.66
    summary = calibration_summary(err, kappa=3.0 * kappa, n_bins=5, n_boot=0)
    assert summary["share_within_20pct"] == 0.0
    assert summary["ratio"] < 0.7


@pytest.mark.parametrize("method", ["power", "isotonic"])
def test_recalibration_fitted_on_one_sample_fixes_another(sample_a, sample_b, method) -> None:
    ka, ea = sample_a
    kb, eb = sample_b
    cal = fit_kappa_calibration(3.0 * ka, ea, method=method)
    assert cal.log_likelihood > cal.log_likelihood_raw
    fixed = coverage(eb, kappa=cal.apply(3.0 * kb))
    assert _pull(fixed, 68) < 4.0
    assert _pull(fixed, 90) < 4.0
    rows = calibration_table(eb, kappa=cal.apply(3.0 * kb), n_bins=5, n_boot=0)
    assert all(r["within_20pct"] for r in rows)
    # monotone: the ranking of events by κ is kept
    k_sorted = np.sort(3.0 * kb)
    assert np.all(np.diff(cal.apply(k_sorted)) >= 0)


def test_power_law_recovers_scale_and_exponent(sample_a) -> None:
    kappa, err = sample_a
    scaled = fit_kappa_power(3.0 * kappa, err, fit_exponent=False)
    assert scaled.b == 1.0
    assert scaled.a == pytest.approx(1 / 3, rel=0.05)
    tilted = fit_kappa_power(5.0 * kappa**0.7, err)
    # κ = (κ'/5)^(1/0.7): a = 5^(−1/0.7), b = 1/0.7
    assert tilted.b == pytest.approx(1 / 0.7, rel=0.05)
    assert tilted.a == pytest.approx(5.0 ** (-1 / 0.7), rel=0.3)


def test_calibration_round_trips_through_a_dict(sample_a) -> None:
    kappa, err = sample_a
    for cal in (
        fit_kappa_power(kappa[:2000], err[:2000]),
        fit_kappa_isotonic(kappa[:2000], err[:2000], n_bins=8),
    ):
        again = KappaCalibration.from_dict(cal.to_dict())
        np.testing.assert_allclose(again.apply(kappa[:100]), cal.apply(kappa[:100]))
    with pytest.raises(InputError, match="unknown key 'scale'"):
        KappaCalibration.from_dict({"method": "power", "scale": 2.0})
    with pytest.raises(InputError, match="method"):
        fit_kappa_calibration(kappa, err, method="spline")


def test_calibration_by_energy_finds_the_bad_bin(sample_a) -> None:
    kappa, err = sample_a
    energy = np.random.default_rng(5).uniform(5, 40, kappa.size)
    claimed = np.where(energy >= 20, 3.0 * kappa, kappa)
    rows = calibration_by_energy(err, energy, kappa=claimed, edges=(5, 20, 40), n_boot=0)
    assert [r["bin"] for r in rows] == ["5–20", "20–40"]
    assert rows[0]["energy"] == "reconstructed"
    assert rows[0]["within_20pct"] and not rows[1]["within_20pct"]
    assert rows[0]["n"] + rows[1]["n"] == kappa.size
    # κ spans three decades in an energy bin: the median cone is the wrong yardstick there
    assert rows[0]["median_cone68"] < 0.8 * rows[0]["predicted_theta68"]


def test_gaussian_sigma_model() -> None:
    """θ from a 2-D Gaussian with per-axis σ_a has E[θ²] = 2σ_a²: σ = √2 σ_a is calibrated."""
    rng = np.random.default_rng(3)
    sig_axis = np.exp(rng.uniform(np.log(0.01), np.log(0.2), 20000))
    theta = np.hypot(rng.normal(0, sig_axis), rng.normal(0, sig_axis))
    err = np.degrees(theta)
    sigma = np.sqrt(2.0) * sig_axis
    cov = coverage(err, sigma=sigma)
    assert _pull(cov, 68) < 3.5 and _pull(cov, 90) < 3.5
    assert coverage(err, sigma=sigma / 2)["coverage_68"] < 0.4
    # half-normal cone at 68 % is σ·√2·erfinv(0.68) = 0.994 σ
    np.testing.assert_allclose(sigma_cone_deg(1.0, 0.68, model="half_normal", unit="deg"), 0.9945, atol=1e-3)
    # the vMF with the equivalent κ = 2/σ² has nearly the same cones for small σ
    np.testing.assert_allclose(
        predicted_cone_deg(kappa=kappa_from_sigma(np.array([0.02, 0.05]))),
        sigma_cone_deg(np.array([0.02, 0.05])),
        rtol=0.02,
    )
    sel = selection_curve(err, sigma=sigma, fractions=[0.2, 1.0], n_boot=0)
    assert sel[0]["theta68"] < 0.5 * sel[1]["theta68"]


def test_selection_curve(sample_a) -> None:
    kappa, err = sample_a
    rows = selection_curve(err, kappa=kappa, fractions=[0.1, 0.5, 1.0], n_boot=20)
    assert [r["n"] for r in rows] == [2000, 10000, 20000]
    t = [r["theta68"] for r in rows]
    assert t[0] < t[1] < t[2]
    assert rows[2]["theta68"] == pytest.approx(containment_angle(err, 0.68))
    assert rows[0]["threshold"] >= rows[1]["threshold"] >= rows[2]["threshold"] == pytest.approx(kappa.min())
    # an uninformative κ (shuffled) selects nothing better than the whole sample
    shuffled = np.random.default_rng(0).permutation(kappa)
    flat = selection_curve(err, kappa=shuffled, fractions=[0.1, 1.0], n_boot=0)
    assert flat[0]["theta68"] > 0.8 * flat[1]["theta68"]


def test_edges_and_bad_input() -> None:
    err = np.array([0.0, 180.0, 90.0])
    kappa = np.array([10.0, 10.0, 0.0])
    cov = coverage(err, kappa=kappa)
    # 0° is inside every cone, 180° inside none but the isotropic one (κ = 0 → 111°)
    assert cov["coverage_68"] == pytest.approx(2 / 3)
    with pytest.raises(InputError, match=r"\[0, 180\]"):
        coverage([190.0], kappa=[1.0])
    with pytest.raises(InputError, match="exactly one"):
        coverage(err, kappa=kappa, sigma=kappa)
    with pytest.raises(InputError, match="expected 3"):
        coverage(err, kappa=[1.0, 2.0])
    with pytest.raises(InputError, match="kappa"):
        coverage(err, kappa=[1.0, -2.0, 1.0])


def test_calibration_plots(sample_a) -> None:
    from edkeras.reports.plots.resolution import plot_calibration, plot_selection_curve

    kappa, err = sample_a
    raw = calibration_table(err, kappa=3 * kappa, n_bins=4, n_boot=20)
    fixed = calibration_table(err, kappa=kappa, n_bins=4, n_boot=20)
    fig = plot_calibration({"raw": raw, "recalibrated": fixed})
    a, b = fig.axes[:2]
    x, y = a.lines[0].get_data()
    np.testing.assert_allclose(x, [r["predicted_theta68"] for r in raw])
    np.testing.assert_allclose(y, [r["theta68"] for r in raw])
    assert {line.get_ydata()[0] for line in b.lines if len(line.get_ydata()) == 2} >= {0.68, 0.90}
    fig2 = plot_selection_curve(selection_curve(err, kappa=kappa, n_boot=20))
    f, t = fig2.axes[0].lines[0].get_data()
    np.testing.assert_allclose(f, np.linspace(10, 100, 10))
    assert t[0] < t[-1]


def test_kappa_calibration_round_trips_through_its_json_file(tmp_path):
    """write_json stores NaN as null; reading the record back gives NaN again, and bad types are refused."""
    import json
    import math

    from edkeras.core.files import write_json
    from edkeras.core.schema import ConfigError
    from edkeras.reco.recalibration import KappaCalibration

    cal = KappaCalibration("power", a=2.0, b=0.5)  # log-likelihoods left NaN
    write_json(tmp_path / "cal.json", cal.to_dict())
    again = KappaCalibration.from_dict(json.loads((tmp_path / "cal.json").read_text()))
    assert again.a == 2.0 and again.b == 0.5 and math.isnan(again.log_likelihood)
    with pytest.raises(ConfigError, match="KappaCalibration.a: must be a number"):
        KappaCalibration.from_dict({"method": "power", "a": "two"})
