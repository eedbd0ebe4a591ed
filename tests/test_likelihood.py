"""Likelihood tables: normalisation and floor, KDE edges, ML fits, smoothing, validation, files."""

from __future__ import annotations

import numpy as np
import pytest

from edkeras import pointing as L
from edkeras.cli import main as cli_main
from edkeras.core import vmf
from edkeras.core.errors import InputError, TableError
from edkeras.reco.predictions import Predictions, load_predictions, save_predictions


def _sample(n, rng, kappa_of_e=lambda e: 4.0 + 1.5 * e, flip=0.05, flat=0.2):
    """cos θ from a forward vMF whose κ grows with energy, plus flips and a flat part."""
    e = rng.uniform(5, 70, n)
    t = vmf.sample_cos(kappa_of_e(e), None, rng)
    f = rng.random(n) < flip
    t[f] = -t[f]
    u = rng.random(n) < flat
    t[u] = rng.uniform(-1, 1, u.sum())
    return t, e


def _integrals(rows, edges):
    return np.sum(rows * np.diff(edges), axis=-1)


@pytest.mark.parametrize("method", L.METHODS)
def test_rows_integrate_to_one_no_zeros(method):
    rng = np.random.default_rng(0)
    t, e = _sample(3000, rng)
    inter = (rng.random(3000) < 0.5).astype(int)
    kappa = rng.uniform(1, 100, 3000)
    table = L.fit_table(t, e, kappa=kappa, kappa_bins=2, interaction=inter, method=method, min_events=30)
    assert set(table.components) == {"es", "cc"}
    for tab in (table, *table.components.values()):
        for rows in (tab.pdf_2d, tab.pdf_3d):
            np.testing.assert_allclose(_integrals(rows, tab.cosine_bin_edges), 1.0, atol=1e-9)
            assert rows.min() >= tab.floor * (1 - 1e-12) and tab.floor == L.FLOOR
    # a histogram of few events has empty bins: the floor must still hold
    sparse = L.fit_table(t[:60], e[:60], method="histogram", min_events=5)
    assert sparse.pdf_2d.min() == pytest.approx(L.FLOOR)
    np.testing.assert_allclose(_integrals(sparse.pdf_2d, sparse.cosine_bin_edges), 1.0, atol=1e-12)


def test_energy_bins_and_cos_bins():
    edges = L.cosine_edges(100, "angle")
    assert edges[0] == -1 and edges[-1] == 1 and np.all(np.diff(edges) > 0)
    np.testing.assert_allclose(np.diff(np.degrees(np.arccos(edges[::-1]))), 1.8)
    rng = np.random.default_rng(1)
    t, e = _sample(2000, rng)
    e[:10] = 2.0  # below 5 MeV: not used
    table = L.fit_table(t, e, method="vmf")
    np.testing.assert_array_equal(table.energy_bins[:, 0], [5, 10, 15, 20, 30, 50])
    assert table.energy_bins[-1, 1] == np.inf
    assert table.n_events_per_bin.sum() == 1990
    custom = L.fit_table(t, e, method="vmf", energy_edges=[5, 20, 70])
    assert custom.pdf_2d.shape == (2, 100)
    with pytest.raises(InputError, match="energy bins"):
        L.fit_table(t, e, energy_edges=[10, 5])


def test_kde_reflection_keeps_uniform_flat_at_edges():
    rng = np.random.default_rng(2)
    t = rng.uniform(-1, 1, 20000)
    edges = L.cosine_edges(100, "cos")
    row, h0 = L.kde_reflected(t, edges)
    assert 0.01 < h0 < 0.2  # the edges are several bandwidths wide, so a missing reflection shows
    centres = 0.5 * (edges[1:] + edges[:-1])
    near_top, near_bottom = row[centres > 0.96], row[centres < -0.96]
    # true density 1/2 everywhere; without reflection the edge bins would drop toward 1/4
    assert near_top.mean() == pytest.approx(0.5, abs=0.03)
    assert near_bottom.mean() == pytest.approx(0.5, abs=0.03)
    assert row[0] > 0.44 and row[-1] > 0.44
    assert np.sum(row * np.diff(edges)) == pytest.approx(1.0, abs=1e-12)


def test_kde_adaptive_resolves_sharp_forward_peak():
    rng = np.random.default_rng(3)
    t = vmf.sample_cos(200.0, 20000, rng)
    edges = L.cosine_edges(100, "angle")
    row, _ = L.kde_reflected(t, edges)
    exact = np.diff(vmf.cos_cdf(edges, 200.0)) / np.diff(edges)
    peak = exact > 1.0
    # within 15 % of the exact bin averages over the peak (a fixed wide kernel misses by far more)
    assert np.max(np.abs(row[peak] / exact[peak] - 1)) < 0.15


@pytest.mark.parametrize("kappa", [3.0, 40.0, 800.0])
def test_vmf_fit_recovers_kappa(kappa):
    rng = np.random.default_rng(4)
    x = vmf.sample([0.0, 0.6, 0.8], kappa, 20000, rng)
    t = x @ np.array([0.0, 0.6, 0.8])
    _, (k,) = L.fit_row(t, "vmf", L.cosine_edges())
    assert k == pytest.approx(kappa, rel=0.03)  # σ(κ̂)/κ ≈ 1/√n = 0.7 %


def test_mixture_fit_recovers_peaks_and_flat():
    rng = np.random.default_rng(5)
    n = 30000
    kind = rng.choice(3, size=n, p=[0.6, 0.08, 0.32])
    t = np.where(
        kind == 0,
        vmf.sample_cos(30.0, n, rng),
        np.where(kind == 1, -vmf.sample_cos(15.0, n, rng), rng.uniform(-1, 1, n)),
    )
    _, p = L.fit_row(t, "mixture", L.cosine_edges())
    wf, kf, wb, kb, w0 = p
    assert wf == pytest.approx(0.6, abs=0.02)
    assert wb == pytest.approx(0.08, abs=0.015)
    assert w0 == pytest.approx(0.32, abs=0.02)
    assert kf == pytest.approx(30.0, rel=0.07)
    assert kb == pytest.approx(15.0, rel=0.25)


def test_smoothing_of_parameters_beats_raw_bins():
    """κ(E) = 3·E^0.8 is smooth in ln E; with 60 events a bin the smoothed κ is closer to it."""
    edges = [5, 7, 9, 11, 14, 17, 20, 25, 30, 40, 50, 70]
    err_raw, err_smooth = [], []
    for seed in range(6):
        rng = np.random.default_rng(100 + seed)
        e = np.exp(rng.uniform(np.log(5), np.log(70), 660))
        t = vmf.sample_cos(3.0 * e**0.8, None, rng)
        raw = L.fit_table(t, e, method="vmf", energy_edges=edges, smoothing="none", n_cos=20)
        smooth = L.fit_table(t, e, method="vmf", energy_edges=edges, smoothing="params", n_cos=20)
        ie = np.searchsorted(np.array(edges)[1:-1], e, side="right")
        med = np.array([np.median(e[ie == b]) for b in range(len(edges) - 1)])
        truth = np.log(3.0 * med**0.8)
        err_raw.append(np.mean((np.log(raw.params[:, 0]) - truth) ** 2))
        err_smooth.append(np.mean((np.log(smooth.params[:, 0]) - truth) ** 2))
        assert "parameters smoothed" in smooth.smoothing_method
    assert np.mean(err_smooth) < 0.7 * np.mean(err_raw)


def test_underpopulated_bin_takes_pooled_fit():
    rng = np.random.default_rng(6)
    t, e = _sample(500, rng)
    e[e > 50] = 40.0  # empty last bin
    table = L.fit_table(t, e, method="vmf")
    assert table.pooled_bins[-1] and not table.pooled_bins[0]
    assert np.isnan(table.params[-1]).all()
    pooled_row, _ = L.fit_row(t, "vmf", table.cosine_bin_edges)
    np.testing.assert_allclose(table.pdf_2d[-1], (1 - 2 * table.floor) * pooled_row + table.floor)


def test_pdf_is_vectorised_and_uses_sub_tables_and_kappa():
    rng = np.random.default_rng(7)
    n = 6000
    inter = (rng.random(n) < 0.5).astype(int)
    kappa_pred = rng.uniform(2, 200, n)
    e = rng.uniform(5, 70, n)
    # ES: peaked with the predicted κ; CC: isotropic
    t = np.where(inter == 1, vmf.sample_cos(kappa_pred, None, rng), rng.uniform(-1, 1, n))
    table = L.fit_table(t, e, kappa=kappa_pred, kappa_bins=3, interaction=inter, method="mixture")
    es, cc = table.component("es"), table.component("cc")
    c = np.array([0.995, 0.995, -0.5])
    en = np.array([12.0, 12.0, 12.0])
    p = table.pdf(c, en, interaction=np.array([1, 0, 1]))
    assert p[0] > 5 * p[1]  # ES peaked, CC flat at cos θ ≈ 1
    assert p[1] == pytest.approx(0.5, rel=0.2)
    # sharper rows for more confident events (3-D table, ES)
    kap = np.array([20.0, 100.0, 190.0])
    peak = es.pdf(np.full(3, 0.999), np.full(3, 20.0), kappa=kap)
    assert peak[0] < peak[1] < peak[2]
    with pytest.raises(InputError, match="no 'xx'"):
        table.component("xx")
    assert cc.interaction == "cc"


def test_validation_helpers_tell_right_from_wrong():
    rng = np.random.default_rng(8)
    t_cal, e_cal = _sample(8000, rng)
    t_val, e_val = _sample(4000, rng)
    good = L.fit_table(t_cal, e_cal, method="mixture")
    wrong = L.fit_table(vmf.sample_cos(200.0, 8000, rng), e_cal, method="vmf")
    assert L.mean_log_likelihood(good, t_val, e_val) > L.mean_log_likelihood(wrong, t_val, e_val) + 0.5
    pit = L.pit_check(L.pit_values(good, t_val, e_val))
    for q, cov in pit["coverage"].items():
        assert cov == pytest.approx(q, abs=4 * pit["coverage_error"][q] + 0.01)
    bad = L.pit_check(L.pit_values(wrong, t_val, e_val))
    assert bad["p_value"] < 1e-6 and abs(bad["coverage"][0.68] - 0.68) > 0.1


def test_compare_methods_scores_every_method():
    rng = np.random.default_rng(9)

    def preds(n):
        t, e = _sample(n, rng)
        nu = np.tile([0.0, 0.0, 1.0], (n, 1))
        phi = rng.uniform(0, 2 * np.pi, n)
        s = np.sqrt(1 - t**2)
        return Predictions(
            predictions=np.stack([s * np.cos(phi), s * np.sin(phi), t], 1), energies=e, nu_directions=nu
        )

    out = L.compare_methods(preds(3000), preds(1500), methods=("histogram", "vmf", "mixture"))
    assert set(out) == {"histogram", "vmf", "mixture"}
    # the data are a mixture: the mixture beats a single vMF on held-out events
    assert out["mixture"]["mean_log_likelihood"] > out["vmf"]["mean_log_likelihood"]
    # per energy bin: the bins hold every scored event once, and their event-weighted mean is the overall one
    for m, score in out.items():
        bins = score["by_energy"]
        assert sum(b["n"] for b in bins.values()) == score["n"] and len(bins) >= 3
        mean = sum(b["n"] * b["mean_log_likelihood"] for b in bins.values()) / score["n"]
        assert mean == pytest.approx(score["mean_log_likelihood"], rel=1e-9), m


def test_save_load_round_trip_with_earlier_keys(tmp_path):
    rng = np.random.default_rng(10)
    t, e = _sample(3000, rng)
    inter = (rng.random(3000) < 0.4).astype(int)
    table = L.fit_table(
        t, e, kappa=rng.uniform(1, 50, 3000), kappa_bins=2, interaction=inter, method="mixture"
    )
    path = L.save_table(table, tmp_path / "tables.npz")
    raw = np.load(path)
    earlier = {
        "pdf_2d",
        "cosine_bin_edges",
        "cosine_bin_centers",
        "energy_bins",
        "n_events_per_bin",
        "smoothing_method",
    }
    assert earlier <= set(raw.files)
    assert {
        "method",
        "reference",
        "params",
        "floor",
        "kappa_bins",
        "pdf_3d",
        "pdf_2d_es",
        "pdf_3d_cc",
    } <= set(raw.files)
    assert raw["energy_bins"].shape == (6, 2) and str(raw["method"]) == "mixture"
    back = L.load_table(path)
    np.testing.assert_allclose(back.pdf_2d, table.pdf_2d)
    np.testing.assert_allclose(back.component("cc").pdf_3d, table.component("cc").pdf_3d)
    np.testing.assert_allclose(back.params, table.params)
    assert back.param_names == table.param_names and back.reference == "neutrino"
    c = rng.uniform(-1, 1, 50)
    en = rng.uniform(5, 70, 50)
    np.testing.assert_allclose(
        back.pdf(c, en, interaction=inter[:50]), table.pdf(c, en, interaction=inter[:50])
    )
    with pytest.raises(FileExistsError):
        L.save_table(table, path)


def test_reads_earlier_cosine_energy_pdf(tmp_path):
    """The earlier file: raw histograms (18 energy bins, 100 cos bins), zeros included."""
    rng = np.random.default_rng(11)
    edges = np.linspace(-1, 1, 101)
    ebins = np.stack([np.r_[np.arange(2, 70, 4)[:17], 70][:18], np.r_[np.arange(6, 74, 4)[:17], 74][:18]], 1)
    counts = rng.poisson(3.0, size=(18, 100)).astype(float)
    counts[:, :5] = 0
    np.savez(
        tmp_path / "cosine_energy_pdf.npz",
        pdf_2d=counts,
        cosine_bin_edges=edges,
        cosine_bin_centers=0.5 * (edges[1:] + edges[:-1]),
        energy_bins=ebins,
        n_events_per_bin=counts.sum(1),
        smoothing_method=np.asarray("none"),
    )
    table = L.load_table(tmp_path / "cosine_energy_pdf.npz")
    np.testing.assert_allclose(_integrals(table.pdf_2d, edges), 1.0)
    assert table.pdf_2d.min() >= L.FLOOR and table.method == "legacy histogram"
    assert np.isfinite(table.logpdf([-0.99, 0.5], [3.0, 80.0])).all()


def test_bad_table_files(tmp_path):
    np.savez(tmp_path / "t.npz", pdf_2d=np.ones((2, 3)), cosine_bin_edges=np.linspace(-1, 1, 4))
    with pytest.raises(InputError, match=r"t\.npz.*'energy_bins'"):
        L.load_table(tmp_path / "t.npz")
    np.savez(
        tmp_path / "s.npz",
        pdf_2d=np.ones((2, 5)),
        cosine_bin_edges=np.linspace(-1, 1, 4),
        energy_bins=np.array([[5.0, 10], [10, 20]]),
    )
    with pytest.raises(InputError, match=r"s\.npz.*'pdf_2d'"):
        L.load_table(tmp_path / "s.npz")


def test_build_table_reference_keys():
    rng = np.random.default_rng(12)
    n = 400
    truth = vmf.sample([0, 0, 1.0], 0.0, n, rng)
    pred = Predictions(
        predictions=vmf.sample(truth, 50.0, None, rng), true_directions=truth, energies=rng.uniform(5, 60, n)
    )
    t_el = L.reference_cosines(pred, "electron")
    assert np.median(t_el) > 0.95  # predictions scatter around the electron by κ = 50
    with pytest.raises(InputError, match="'nu_directions'"):
        L.build_table(pred, reference="neutrino")
    tab = L.build_table(pred, reference="electron", method="vmf")
    assert tab.reference == "electron"


def _burst_sample(n, seed):
    """``n`` directions at the sampled angles to a supernova along +z, their energies and the supernova direction."""
    t, e = _sample(n, np.random.default_rng(seed))
    return np.stack([np.sqrt(1 - t**2), np.zeros(n), t], 1), e, np.tile([0.0, 0, 1], (n, 1))


def test_cli_refuses_test_split(tmp_path, capsys):
    pred, e, nu = _burst_sample(300, 13)
    path = save_predictions(
        tmp_path / "test.npz", predictions=pred, energies=e, nu_directions=nu, split="test"
    )
    assert cli_main(["likelihood", str(path), "--out", str(tmp_path / "t.npz")]) == 1
    assert "split is 'test'" in capsys.readouterr().err and not (tmp_path / "t.npz").exists()
    assert (
        cli_main(
            ["likelihood", str(path), "--out", str(tmp_path / "t.npz"), "--allow-test", "--method", "vmf"]
        )
        == 0
    )
    assert "warning" in capsys.readouterr().err
    assert L.load_table(tmp_path / "t.npz").method == "vmf"


def test_a_table_keeps_the_identity_of_the_model_it_was_fitted_for(tmp_path):
    """``model`` goes predictions → table → file; predictions of two models make a table of none."""
    n = 400
    pred, e, nu = _burst_sample(n, 3)
    a = load_predictions(save_predictions(tmp_path / "a.npz", predictions=pred, energies=e, nu_directions=nu,
                                          interaction=np.repeat([0, 1], n // 2), model="sha256:aaaaaaaaaaaaaaaa"))
    b = load_predictions(save_predictions(tmp_path / "b.npz", predictions=pred, energies=e, nu_directions=nu,
                                          interaction=np.repeat([0, 1], n // 2), model="sha256:bbbbbbbbbbbbbbbb"))
    table = L.load_table(L.save_table(L.build_table(a, method="vmf", min_events=20), tmp_path / "t.npz"))
    assert table.model == "sha256:aaaaaaaaaaaaaaaa" and table.component("es").model == table.model
    table.check_model("sha256:aaaaaaaaaaaaaaaa")
    table.check_model("")  # unknown identities are not checked
    with pytest.raises(TableError, match="built for the predictions of model sha256:aaaa.*from model sha256:bbbb"):
        table.component("cc").check_model(b.model)
    assert L.build_table([a, b], method="vmf").model == ""
    # a burst calibration travels with the table; half of one is refused
    from dataclasses import replace

    hot = replace(table, burst_temperature=2.5, burst_temperature_events=3422)
    back = L.load_table(L.save_table(hot, tmp_path / "hot.npz"))
    assert (back.burst_temperature, back.burst_temperature_events) == (2.5, 3422)
    assert (table.burst_temperature, table.burst_temperature_events) == (1.0, 0)
    data = dict(np.load(tmp_path / "hot.npz"))
    del data["burst_temperature_events"]
    np.savez(tmp_path / "half.npz", **data)
    with pytest.raises(TableError, match="'burst_temperature' and 'burst_temperature_events' go together"):
        L.load_table(tmp_path / "half.npz")


@pytest.mark.parametrize(("mu", "sigma"), [(0.8, 0.2), (1.2, 0.3), (-0.5, 0.5)])
def test_gaussian_on_cosine_recovers_a_truncated_normal(mu, sigma):
    """The proposal's "Gaussian on cosine": a normal in cos θ cut to [−1, 1], its centre may lie beyond +1."""
    rng = np.random.default_rng(4)
    x = rng.normal(mu, sigma, 100_000)
    x = x[(x >= -1) & (x <= 1)][:20_000]
    edges = L.cosine_edges(100, "cos")
    row, (m, s) = L.fit_row(x, "gaussian", edges)
    assert m == pytest.approx(mu, abs=0.03) and s == pytest.approx(sigma, rel=0.05)
    counts, _ = np.histogram(x, bins=edges)
    expected = row * np.diff(edges) * len(x)
    assert np.sum((counts - expected) ** 2 / np.maximum(expected, 1.0)) / len(edges) < 2.0  # the shape, not just moments
    table = L.build_table(Predictions(predictions=np.stack([np.sqrt(1 - x**2), 0 * x, x], 1), energies=np.full(len(x), 12.0),
                                      nu_directions=np.tile([0.0, 0, 1], (len(x), 1))), method="gaussian")
    assert table.param_names == ("mu", "sigma") and table.method == "gaussian"
