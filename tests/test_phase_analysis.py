"""Helpers of the analysis notebooks (edkeras.studies.analysis): runs, held-out halves, tables, figures."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from edkeras.core.errors import InputError
from edkeras.core.schema import to_dict
from edkeras.reco.config import RunConfig
from edkeras.reco.predictions import Predictions, save_predictions
from edkeras.reports import markdown
from edkeras.reports.plots import studies as study_plots
from edkeras.studies import analysis as pa


def _pred(n=50, seed=0, first_id=0, kappa=False):
    rng = np.random.default_rng(seed)
    t = rng.normal(size=(n, 3))
    t /= np.linalg.norm(t, axis=1, keepdims=True)
    p = t + 0.2 * rng.normal(size=(n, 3))
    return Predictions(
        predictions=p / np.linalg.norm(p, axis=1, keepdims=True), true_directions=t,
        energies=rng.uniform(5, 60, n), interaction=rng.integers(0, 2, n).astype(np.int8),
        nu_directions=t, event_id=np.arange(first_id, first_id + n, dtype=np.int64),
        kappa=rng.uniform(1, 50, n) if kappa else None, split="val",
    )


def _fake_run(root, name, finished=True):
    d = root / name
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps(to_dict(RunConfig(name=name))))
    for split in ("val", "test"):
        p = _pred(seed=1 if split == "val" else 2)
        save_predictions(d / f"predictions_{split}.npz", predictions=p.predictions, true_directions=p.true_directions,
                         energies=p.energies, event_id=p.event_id, split=split, run=name)
    if finished:
        (d / "metrics.json").write_text("{}")
    return d


# ----------------------------------------------------------------------------- runs
def test_find_run_takes_first_finished_in_order(tmp_path):
    _fake_run(tmp_path, "v15_baseline")
    _fake_run(tmp_path, "v21_uncertainty", finished=False)
    assert pa.find_run(tmp_path, ["v21_uncertainty", "v15_baseline"]) == tmp_path / "v15_baseline"
    assert pa.find_run(tmp_path, ["v21_uncertainty"]) is None
    assert pa.find_run(tmp_path / "nowhere", ["v15_baseline"]) is None


def test_source_run_found_is_not_trained(tmp_path):
    _fake_run(tmp_path, "v21_uncertainty")
    # the fallback would have to train; a found run must never reach it
    src = pa.source_run(tmp_path, ["v21_uncertainty"], fallback=None)
    assert src.trained is False
    assert src.name == "v21_uncertainty"
    assert src.config.name == "v21_uncertainty"
    assert len(src.predictions("test")) == 50
    assert "found" in src.describe()
    with pytest.raises(InputError, match="split"):
        src.predictions("train")


def test_source_run_reuses_an_identical_fallback_run(tmp_path, monkeypatch):
    import edkeras.studies.phase

    def no_training(*args, **kwargs):
        raise AssertionError("the identical finished fallback run must be reused, not retrained")

    monkeypatch.setattr(edkeras.studies.phase, "train", no_training)
    fallback = RunConfig(name="analysis_vmf")
    d = _fake_run(tmp_path, "analysis_vmf", finished=False)
    (d / "metrics.json").write_text(json.dumps({"best_epoch": 0, "epochs_run": 1}))
    src = pa.source_run(tmp_path, ["v21_uncertainty"], fallback)
    assert src.trained is True and src.run_dir == d
    assert "fallback" in src.describe()
    with pytest.raises(AssertionError, match="reused"):  # force: retrain it
        pa.source_run(tmp_path, ["v21_uncertainty"], fallback, force=True)


# ----------------------------------------------------------------------------- predictions
def test_truth_predictions_has_zero_error_and_no_kappa():
    p = _pred(kappa=True)
    t = pa.truth_predictions(p)
    assert np.allclose(t.predictions, p.true_directions)
    assert np.all(t.angular_errors == 0)
    assert t.kappa is None and t.run == "truth"
    assert np.array_equal(t.event_id, p.event_id)
    with pytest.raises(InputError, match="true_directions"):
        pa.truth_predictions(Predictions(predictions=p.predictions))


def test_split_predictions_partitions_by_event_id_independent_of_order():
    p = _pred(n=101)
    a, b = pa.split_predictions(p, 0.3, seed=4)
    assert len(a) == 30 and len(b) == 71
    assert set(a.event_id).isdisjoint(b.event_id)
    assert set(a.event_id) | set(b.event_id) == set(p.event_id)
    shuffled = p.select(np.random.default_rng(0).permutation(101))
    a2, _ = pa.split_predictions(shuffled, 0.3, seed=4)
    assert set(a2.event_id) == set(a.event_id)  # same events whatever the file order
    a3, _ = pa.split_predictions(p, 0.3, seed=5)
    assert set(a3.event_id) != set(a.event_id)  # the seed matters
    with pytest.raises(InputError, match="fraction"):
        pa.split_predictions(p, 1.0)


def test_align_by_event_id_matches_rows():
    a = _pred(n=20, seed=0, first_id=0)
    b = _pred(n=20, seed=1, first_id=10).select(np.arange(19, -1, -1))  # ids 29..10, reversed
    x, y = pa.align_by_event_id([a, b])
    assert list(x.event_id) == list(range(10, 20))
    assert np.array_equal(x.event_id, y.event_id)
    i = int(np.flatnonzero(np.asarray(b.event_id) == 12)[0])
    assert np.allclose(y.predictions[2], b.predictions[i])
    with pytest.raises(InputError, match="no event"):
        pa.align_by_event_id([_pred(n=5, first_id=0), _pred(n=5, first_id=100)])


def test_model_inputs_names_and_energy_shape():
    from types import SimpleNamespace

    b = SimpleNamespace(U=np.ones((2, 4, 3)), V=np.zeros((2, 4, 3)), X=np.ones((2, 4, 3)), reco_energy=np.array([5.0, 9.0]))
    x = pa.model_inputs(b, energy=True)
    assert set(x) == {"view_u", "view_v", "view_x", "energy"}
    assert x["energy"].shape == (2, 1) and x["view_u"].dtype == np.float32
    assert "energy" not in pa.model_inputs(b)


def test_simulated_sample_at_fixed_directions_without_network(tmp_path):
    from edkeras.pointing.resolution import direction_groups

    sky = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    out = pa.simulated_sample(None, 12, seed=3, out_dir=tmp_path, directions=sky)
    assert list(out) == ["truth", "classical"]
    assert len(out["truth"]) == len(out["classical"]) == 24
    assert np.unique(out["truth"].event_id).size == 24
    assert np.array_equal(out["truth"].event_id, out["classical"].event_id)
    assert np.allclose(out["truth"].predictions, out["classical"].true_directions)
    assert np.all(np.isfinite(out["classical"].angular_errors))
    labels, dirs = direction_groups(out["truth"].nu_directions)
    assert np.allclose(np.sort(dirs, axis=0), np.sort(sky, axis=0), atol=1e-5)
    assert np.bincount(labels).tolist() == [12, 12]


def test_simulated_sample_with_a_blip_classifier_keeps_its_window_only_probability(tmp_path):
    """The shipped classifier joins the blips; the sample also carries its window-only probability, for comparison."""
    from edkeras.reco.evaluate import classifier_es_probability

    out = pa.simulated_sample("pretrained:compact_vmf", 64, seed=3, out_dir=tmp_path, classical=False,
                              classifier="pretrained:es_cc")
    assert list(out) == ["truth", "network", pa.WINDOW_ONLY]
    net, window = out["network"], out[pa.WINDOW_ONLY]
    np.testing.assert_array_equal(net.predictions, window.predictions)
    events = next(tmp_path.glob("sample_*.h5"))
    np.testing.assert_allclose(window.es_probability, classifier_es_probability("pretrained:es_cc", events, blips=False),
                               rtol=1e-6)
    np.testing.assert_allclose(net.es_probability, classifier_es_probability("pretrained:es_cc", events), rtol=1e-6)
    assert not np.allclose(net.es_probability, window.es_probability, atol=1e-3)


# ----------------------------------------------------------------------------- tables
def test_markdown_table_formats_numbers_pairs_and_missing():
    text = markdown.markdown_table(
        [{"a": 1.23456, "b": (1.0, 2.5), "c": None, "d": 3}, {"a": math.nan, "b": "x", "c": True, "d": 4}],
        {"a": "A", "b": "B", "c": "C", "d": "D"}, digits=1,
    )
    lines = text.splitlines()
    assert lines[0] == "| A | B | C | D |"
    assert lines[2] == "| 1.2 | [1.0, 2.5] | — | 3 |"
    assert lines[3] == "| — | x | yes | 4 |"
    with pytest.raises(InputError):
        markdown.markdown_table([], {"a": "A"})


def test_tp_comparison_markdown_ratio():
    table = {"adc_per_mev": {"U": {"sim": 700.0, "real": 677.0}, "X": {"sim": 3900.0, "real": 3996.0}}}
    text = markdown.tp_comparison_markdown(table)
    row = text.splitlines()[2]
    assert row.startswith("| adc per mev |")
    assert "1.03" in row and "0.98" in row  # 700/677 and 3900/3996


def test_quality_rows_finds_nested_entries():
    obj = {"date": "x", "models": [{"name": "compact", "theta68": 40.0, "theta68_ci": [38, 42], "n": 5000},
                                   {"model": "classical", "theta68": 90.0}],
           "oracle": {"theta68": 5.0, "by_energy": [{"theta68": 9.0}]}}
    rows = pa.quality_rows(obj)
    assert [r["entry"] for r in rows] == ["compact", "classical", "oracle", "oracle/by_energy[0]"]
    assert rows[0]["theta68_ci"] == [38, 42] and rows[0]["n"] == 5000
    assert pa.quality_rows({"nothing": 1}) == []


def test_choose_production_uses_validation_not_test():
    rows = [
        {"name": "a", "val_theta68": 30.0, "test_theta68": 20.0, "test_theta68_ci": [19, 21]},
        {"name": "b", "val_theta68": 25.0, "test_theta68": 28.0, "test_theta68_ci": [27, 29]},
        {"name": "c", "val_theta68": None, "test_theta68": 10.0},
    ]
    assert pa.choose_production(rows)["name"] == "b"
    assert pa.choose_production([rows[2]]) is None
    tie = [{"name": "x", "val_theta68": 25.0, "test_theta68_ci": [20, 30]},
           {"name": "y", "val_theta68": 25.0, "test_theta68_ci": [24, 26]}]
    assert pa.choose_production(tie)["name"] == "y"


# ----------------------------------------------------------------------------- figures
def test_dataset_figure_panels():
    rng = np.random.default_rng(0)
    n = 60
    it = np.array([1] * 30 + [0] * 30)
    fig = study_plots.dataset_figure(rng.uniform(5, 50, n), rng.uniform(5, 50, n), it, rng.uniform(-1, 1, n))
    axes = fig.get_axes()
    assert len(axes) == 3
    labels = [t.get_text() for t in axes[0].get_legend().get_texts()]
    assert labels == ["ES (30)", "CC (30)"]
    with pytest.raises(InputError):
        study_plots.dataset_figure(np.ones(3), np.ones(2), np.ones(3), np.ones(3))


def test_pit_figure_uniform_is_flat():
    u = np.random.default_rng(1).random(4000)
    fig = study_plots.pit_figure({"kde": u, "peaked": u**3}, bins=10)
    ax = fig.get_axes()[0]
    steps = [p for p in ax.patches if type(p).__name__ == "Polygon"]
    flat_y, peaked_y = (p.get_xy()[:, 1] for p in steps[:2])
    assert np.all(np.abs(flat_y[(flat_y > 0)] - 1.0) < 0.15)  # uniform PIT: every bin near density 1
    assert peaked_y.max() > 2.0  # a wrong table piles PIT values up
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["kde", "peaked", "flat ±1σ"]
    with pytest.raises(InputError):
        study_plots.pit_figure({})


def test_theta68_figure_orders_and_highlights():
    entries = [{"name": "slow", "theta68": 50.0, "theta68_ci": [45, 55]},
               {"name": "best", "theta68": 20.0, "theta68_ci": [18, 22]},
               {"name": "broken", "theta68": math.nan}]
    fig = study_plots.theta68_figure(entries, highlight="best")
    ax = fig.get_axes()[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["slow", "best"]  # best (smallest) at the top
    colors = [line.get_color() for line in ax.get_lines() if line.get_marker() == "o"]
    assert colors == ["C0", "C3"]


def test_resolution_vs_events_figure_guide_scales_as_inverse_sqrt():
    from types import SimpleNamespace

    res = [SimpleNamespace(n_events=n, theta68=t, theta68_ci=(t * 0.9, t * 1.1)) for n, t in ((25, 8.0), (100, 4.0))]
    fig = study_plots.resolution_vs_events_figure({"truth": res})
    ax = fig.get_axes()[0]
    guide = next(line for line in ax.get_lines() if line.get_linestyle() == ":")
    assert np.allclose(guide.get_ydata(), [8.0, 4.0])  # 4 · √(100/25) = 8
    assert ax.get_xscale() == "log"


def test_member_stack_with_and_without_kappa():
    a, b = _pred(n=10, seed=0, kappa=True), _pred(n=10, seed=1, kappa=True)
    s = pa.member_stack([a, b])
    assert s.shape == (2, 10, 4)
    assert np.allclose(s[1, :, 3], b.kappa) and np.allclose(s[0, :, :3], a.predictions)
    assert pa.member_stack([a, _pred(n=10, seed=2)]).shape == (2, 10, 3)  # one member without κ: directions only
    with pytest.raises(InputError, match="aligned"):
        pa.member_stack([a, _pred(n=10, first_id=5)])


def test_test_set_groups_by_data_settings(tmp_path):
    for name, events in (("a", 3000), ("b", 3000), ("c", 500)):
        d = tmp_path / name
        d.mkdir()
        cfg = to_dict(RunConfig(name=name))
        cfg["data"]["synthetic_events"] = events
        cfg["training"]["seed"] = len(name)  # training settings do not change the test events
        (d / "config.json").write_text(json.dumps(cfg))
    groups = pa.test_set_groups(tmp_path, ["c", "a", "b", "missing"])
    assert groups["A"] == ["a", "b"]
    assert sorted(groups.values()) == [["a", "b"], ["c"], ["missing"]]


@pytest.mark.parametrize("method", ["resample", "rotate"])
def test_burst_fit_finds_the_supernova_direction(method):
    from edkeras.core import vmf
    from edkeras.pointing.fitting import fit_table
    from edkeras.pointing.resolution import direction_groups, plan_bursts

    rng = np.random.default_rng(3)
    n = 2000
    if method == "resample":  # the supernova at two fixed directions
        sky = np.array([[0.0, 0.0, 1.0], [0.6, 0.8, 0.0]])
        nu = sky[np.arange(n) % 2]
    else:  # a new direction per event, to be rotated
        nu = rng.normal(size=(n, 3))
        nu /= np.linalg.norm(nu, axis=1, keepdims=True)
    d = vmf.sample(nu, np.full(n, 20.0), None, rng)
    e = rng.uniform(6, 40, n)
    table = fit_table(np.sum(d * nu, axis=1), e, method="vmf", reference="neutrino")
    pred = Predictions(predictions=d, energies=e, nu_directions=nu, interaction=np.ones(n, np.int8))
    if method == "resample":
        groups, dirs = direction_groups(nu)
        plan = plan_bursts(n, 200, 3, rng, groups=groups, group_directions=dirs)
    else:
        plan = plan_bursts(n, 200, 3, rng)
    for b in range(3):
        fit, truth = pa.burst_fit(pred, table, plan, b, method=method, n_lattice=768, n_local=300)
        # 200 events of a vMF(20) (θ68 ≈ 19°): the fit lands within a few degrees of the truth
        assert fit.angle_to_deg(truth) < 4.0
        assert np.allclose(truth, plan.directions[b])
    with pytest.raises(InputError, match="method"):
        pa.burst_fit(pred, table, plan, 0, method="direct")


def test_event_pair_figure_has_two_rows_of_planes():
    from conftest import random_batch

    top, bottom = random_batch(3, seed=0), random_batch(4, seed=1)
    fig = study_plots.event_pair_figure(top, 2, bottom, 0, labels=("real", "sim"))
    titles = [a.get_title() for a in fig.get_axes() if a.get_title()]
    assert len(titles) == 6
    assert titles[0] == "real · plane U" and titles[5] == "sim · plane X"
    assert "MeV true" in titles[1] and "MeV true" in titles[4]  # the energies are named once per row


def test_show_displays_a_png(monkeypatch):
    from IPython import display as ipd
    from matplotlib.figure import Figure

    shown = []
    monkeypatch.setattr(ipd, "display", lambda obj: shown.append(obj))
    fig = Figure()
    fig.add_subplot().plot([0, 1])
    study_plots.show(fig)
    assert len(shown) == 1 and shown[0].data[:8] == b"\x89PNG\r\n\x1a\n"


def test_with_legends_adds_errorbar_labels_once():
    from matplotlib.figure import Figure

    fig = Figure()
    a, b = fig.subplots(1, 2)
    a.errorbar([1, 2], [3, 4], yerr=[0.1, 0.1], label="network")
    b.plot([0, 1])  # unlabelled: no legend
    study_plots.with_legends(fig)
    assert [t.get_text() for t in a.get_legend().get_texts()] == ["network"]
    assert b.get_legend() is None
    study_plots.with_legends(fig)  # a second call keeps the one legend
    assert len([c for c in a.get_children() if type(c).__name__ == "Legend"]) == 1


def test_collapse_note_flags_one_direction_only():
    spread = _pred(n=400)
    assert pa.collapse_note(spread) == ""
    const = Predictions(predictions=np.tile([0.6, -0.6, 0.5], (400, 1)) + 0.01 * np.random.default_rng(0).normal(size=(400, 3)),
                        run="v21")
    note = pa.collapse_note(const)
    assert "`v21`" in note and "R̄ = 1.00" in note
