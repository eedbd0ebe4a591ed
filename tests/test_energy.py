"""Resolution tables in energy bins and by interaction type, and their figures."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from edkeras.core.errors import InputError
from edkeras.reco.energy_bins import (
    LIKELIHOOD_EDGES,
    PROPOSAL_EDGES,
    bin_label,
    format_comparison,
    format_markdown,
    resolution_table,
    tables_from_predictions,
)
from edkeras.reco.metrics import containment_angle


@pytest.fixture
def events() -> dict[str, np.ndarray]:
    """Errors that shrink with energy (θ ∝ 300/E), a known flip share at low energy."""
    rng = np.random.default_rng(0)
    n = 3000
    energy = rng.uniform(2.0, 70.0, n)
    err = np.clip(rng.exponential(300.0 / energy), 0.0, 150.0)
    flipped = (energy < 20) & (rng.random(n) < 0.1)
    err[flipped] = 170.0
    inter = rng.integers(0, 2, n)
    return {"err": err, "energy": energy, "inter": inter, "flipped": flipped}


def test_bin_labels() -> None:
    assert [bin_label(a, b) for a, b in itertools.pairwise(PROPOSAL_EDGES)] == ["<20", "20–40", "40+"]
    assert [bin_label(a, b) for a, b in itertools.pairwise(LIKELIHOOD_EDGES)] == [
        "5–10",
        "10–15",
        "15–20",
        "20–30",
        "30–50",
        "50+",
    ]


def test_proposal_bins(events) -> None:
    rows = resolution_table(events["err"], events["energy"], PROPOSAL_EDGES, n_boot=50)
    assert [r["bin"] for r in rows] == ["<20", "20–40", "40+", "all"]
    assert all(r["energy"] == "reconstructed" and r["interaction"] == "all" for r in rows)
    e = events["energy"]
    masks = [e < 20, (e >= 20) & (e < 40), e >= 40, np.ones_like(e, bool)]
    for r, m in zip(rows, masks):
        assert r["n"] == int(m.sum())
        assert r["theta68"] == pytest.approx(containment_angle(events["err"][m], 0.68))
        assert r["theta68_ci"][0] <= r["theta68"] <= r["theta68_ci"][1]
    # resolution improves with energy; flips only below 20 MeV
    assert rows[0]["theta68"] > rows[1]["theta68"] > rows[2]["theta68"]
    assert rows[0]["flip_fraction"] == pytest.approx(events["flipped"][masks[0]].mean())
    assert rows[1]["flip_fraction"] == 0.0


def test_likelihood_bins_edges_and_low_energy(events) -> None:
    err = np.array([10.0, 20.0, 30.0, 40.0, 50.0])
    energy = np.array([4.9, 5.0, 9.99, 10.0, 80.0])
    rows = resolution_table(err, energy, LIKELIHOOD_EDGES, n_boot=10, include_total=False)
    assert [r["n"] for r in rows] == [2, 1, 0, 0, 0, 1]  # lo <= E < hi; 4.9 MeV in no bin
    assert math.isnan(rows[2]["theta68"])
    assert rows[5]["median"] == 50.0


def test_by_interaction(events) -> None:
    rows = resolution_table(
        events["err"],
        events["energy"],
        PROPOSAL_EDGES,
        interaction=events["inter"],
        by_interaction=True,
        n_boot=20,
    )
    groups = [r["interaction"] for r in rows]
    assert groups == ["all"] * 4 + ["ES"] * 4 + ["CC"] * 4
    es_all = next(r for r in rows if r["interaction"] == "ES" and r["bin"] == "all")
    assert es_all["n"] == int((events["inter"] == 1).sum())
    with pytest.raises(InputError, match="interaction"):
        resolution_table(events["err"], events["energy"], by_interaction=True)


def test_tables_from_predictions_use_reconstructed_energy(tmp_path) -> None:
    from edkeras.reco.predictions import save_predictions

    rng = np.random.default_rng(1)
    n = 400
    true = rng.normal(size=(n, 3))
    pred = true + 0.2 * rng.normal(size=(n, 3))
    reco = np.where(np.arange(n) < 100, 12.0, 45.0)  # reconstructed: 100 events at 12 MeV
    true_e = np.full(n, 25.0)  # true: all at 25 MeV
    path = save_predictions(
        tmp_path / "p.npz",
        predictions=pred,
        true_directions=true,
        energies=reco,
        true_energies=true_e,
        interaction=rng.integers(0, 2, n),
        split="test",
    )
    rows = tables_from_predictions(path, PROPOSAL_EDGES, n_boot=10)
    assert rows[0]["energy"] == "reconstructed"
    assert [r["n"] for r in rows if r["interaction"] == "all"] == [100, 0, 300, 400]
    rows_true = tables_from_predictions(path, PROPOSAL_EDGES, energy="true", n_boot=10, by_interaction=False)
    assert [r["n"] for r in rows_true] == [0, 400, 0, 400]
    assert "true energy (MeV)" in format_markdown(rows_true)
    no_energy = save_predictions(tmp_path / "q.npz", predictions=pred, true_directions=true)
    with pytest.raises(InputError, match="'energies' is missing"):
        tables_from_predictions(no_energy)


def test_markdown(events) -> None:
    rows = resolution_table(events["err"], events["energy"], PROPOSAL_EDGES, n_boot=20)
    text = format_markdown(rows, title="test model")
    lines = text.splitlines()
    assert lines[0] == "**test model**"
    assert "reconstructed energy (MeV)" in lines[2]
    assert len(lines) == 4 + len(rows)
    assert f"{rows[0]['theta68']:.1f} [" in lines[4]
    assert f"{100 * rows[0]['flip_fraction']:.1f} [" in lines[4]
    other = resolution_table(events["err"] * 0.5, events["energy"], PROPOSAL_EDGES, n_boot=20)
    comp = format_comparison({"no energy": rows, "with energy": other})
    assert "no energy: theta68" in comp and "with energy: theta68" in comp
    assert f"{other[0]['theta68']:.1f}" in comp.splitlines()[2]
    with pytest.raises(InputError, match="different bins"):
        format_comparison({"a": rows, "b": resolution_table(events["err"], events["energy"], n_boot=10)})


def test_energy_plots(events) -> None:
    from edkeras.reports.plots.resolution import plot_angular_error, plot_cos_theta, plot_resolution_vs_energy

    err = events["err"]
    fig = plot_cos_theta(err)
    ax = fig.axes[0]
    line = next(ln for ln in ax.lines if ln.get_linestyle() == "--")
    # the 68 % line is at the 32nd percentile of cos θ, i.e. cos θ68 (68 % of events to its right)
    x68 = line.get_xdata()[0]
    assert x68 == pytest.approx(np.cos(np.radians(containment_angle(err, 0.68))))
    assert np.mean(np.cos(np.radians(err)) >= x68) == pytest.approx(0.68, abs=0.002)
    fig = plot_angular_error(err)
    assert any(ln.get_xdata()[0] == pytest.approx(np.median(err)) for ln in fig.axes[0].lines)
    rows = resolution_table(
        err, events["energy"], LIKELIHOOD_EDGES, interaction=events["inter"], by_interaction=True, n_boot=20
    )
    fig = plot_resolution_vs_energy(rows)
    t68_ax, flip_ax = fig.axes[:2]
    assert [t.get_text() for t in t68_ax.get_xticklabels()] == [
        "5–10",
        "10–15",
        "15–20",
        "20–30",
        "30–50",
        "50+",
    ]
    first = t68_ax.lines[0].get_ydata()
    np.testing.assert_allclose(first, [r["theta68"] for r in rows[:6]])
    assert "reconstructed energy" in t68_ax.get_xlabel()
    np.testing.assert_allclose(flip_ax.lines[0].get_ydata(), [100 * r["flip_fraction"] for r in rows[:6]])
