"""Tests of edkeras.studies.phase: the configs, references and verdicts the phase notebooks rely on."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from edkeras.core.errors import InputError
from edkeras.core.files import write_json
from edkeras.core.schema import ConfigError, to_dict
from edkeras.reports import markdown
from edkeras.reports.plots import phases as phase_plots
from edkeras.studies import phase, search, verdicts


# ----------------------------------------------------------------------------- configs
def test_phase_config_defaults_and_cpu_scale():
    cfg = phase.phase_config("v15", "synthetic", 3000, 8, 3, False, model="baseline_v15")
    assert cfg.name == "v15"
    assert list(cfg.data.files) == ["synthetic"]
    assert cfg.data.synthetic_events == 3000 and cfg.data.n_events is None
    assert cfg.training.epochs == 8 and cfg.training.seed == 3
    assert cfg.training.loss == "angular" and cfg.model.head == "direction"
    assert cfg.model.options == {"filters": 16}  # the honestly labelled CPU width
    full = phase.phase_config("v15", "synthetic", 3000, 8, 3, False, model="baseline_v15", scale="full")
    assert full.model.options == {}  # the builder's published size


def test_phase_config_smoke_is_tiny():
    cfg = phase.phase_config("x", "synthetic", 3000, 50, 0, True, model="attention_v19", options={"num_heads": 4})
    assert cfg.data.synthetic_events == phase.SMOKE_EVENTS
    assert cfg.training.epochs == phase.SMOKE_EPOCHS
    assert cfg.model.options["filters"] == 8 and cfg.model.options["num_heads"] == 2
    small = phase.phase_config("x", "synthetic", 120, 50, 0, True)
    assert small.data.synthetic_events == 120  # smoke never asks for more events than given


def test_phase_config_vmf_head_gets_vmf_loss_and_overrides_apply():
    cfg = phase.phase_config(
        "v21", head="vmf", training={"learning_rate": 3e-4}, augmentation={"mirror": True},
        data_options={"energy_input": True},
    )
    assert cfg.training.loss == "vmf_nll"
    assert cfg.training.learning_rate == pytest.approx(3e-4)
    assert cfg.augmentation.mirror is True
    assert cfg.data.energy_input is True


def test_phase_config_event_file_caps_events(tmp_path):
    f = tmp_path / "ev.h5"
    cfg = phase.phase_config("r", str(f), 500, 2, 0, False)
    assert list(cfg.data.files) == [str(f)] and cfg.data.n_events == 500
    assert phase.phase_config("r", [str(f)], None, 2, 0, False).data.n_events is None


def test_phase_config_rejects_bad_input():
    with pytest.raises(InputError, match="scale"):
        phase.phase_config("r", scale="huge")
    with pytest.raises(InputError, match="n_events"):
        phase.phase_config("r", n_events=2)
    with pytest.raises(InputError, match="synthetic"):
        phase.phase_config("r", "synthetic", None)
    with pytest.raises(ConfigError, match="learning_rat"):
        phase.phase_config("r", training={"learning_rat": 1e-3})


# ----------------------------------------------------------------------------- data keys
def test_data_key_ignores_model_and_seed_but_not_the_events(tmp_path):
    a = phase.phase_config("a", "synthetic", 3000, 5, 0, False)
    b = phase.phase_config("b", "synthetic", 3000, 9, 7, False, model="baseline_v15", data_options={"energy_input": True})
    assert phase.data_key(a) == phase.data_key(b)
    assert phase.data_key(a) == phase.data_key(json.loads(json.dumps(to_dict(a))))  # a config.json
    assert phase.data_key(a) != phase.data_key(phase.phase_config("c", "synthetic", 2000, 5, 0, False))
    assert phase.data_key(a) != phase.data_key(phase.phase_config("d", data_options={"split_seed": 1}))
    rel = phase.phase_config("e", "ev.h5", 100, 1, 0, False)
    assert phase.data_key(rel)["files"] == [str(Path("ev.h5").resolve())]
    assert "synthetic_events" not in phase.data_key(rel)


# ----------------------------------------------------------------------------- verdicts
def test_compare():
    assert verdicts.compare(20.0, (19.0, 21.0), 30.0, (29.0, 31.0)) == "better"
    assert verdicts.compare(40.0, (39.0, 41.0), 30.0, (29.0, 31.0)) == "worse"
    assert verdicts.compare(30.5, (29.5, 31.5), 30.0, (29.0, 31.0)) == "compatible"
    assert verdicts.compare(20.0, (float("nan"), float("nan")), 30.0, (29.0, 31.0)) == "better"


def _metrics(t68=20.0, ci=(19.0, 21.0), **extra):
    return {"run": "v21", "test_theta68": t68, "test_theta68_ci": list(ci), "test_n": 450, **extra}


def _ref(t68, ci, **extra):
    return {"name": "x", "n": 450, "theta68": t68, "theta68_ci": list(ci), "median": 1.0, "flip_fraction": 0.0, **extra}


def test_conclusion_states_result_references_and_target():
    refs = {"baseline_v15": _ref(30.0, (29.0, 31.0), run="v15_baseline"), "classical": _ref(19.5, (18.0, 22.0))}
    text = verdicts.conclusion(_metrics(), refs, target_deg=22.0)
    lines = text.splitlines()
    assert "20.0° [19.0, 21.0]" in lines[0] and "450" in lines[0]
    assert "`v15_baseline`" in lines[1] and "**better**" in lines[1] and "Δθ68 = -10.0°" in lines[1]
    assert "classical" in lines[2] and "compatible" in lines[2]
    assert "< 22°" in lines[3] and "**met**" in lines[3]
    central = verdicts.conclusion(_metrics(21.0, (19.0, 23.0)), refs, target_deg=22.0)
    assert "central value only" in central
    assert "**not met**" in verdicts.conclusion(_metrics(25.0, (24.0, 26.0)), refs, target_deg=22.0)
    assert "target" not in verdicts.conclusion(_metrics(), refs)


def test_conclusion_flags_a_network_no_better_than_random():
    refs = {"baseline_v15": None, "classical": None}
    assert abs(phase.ISOTROPIC_THETA68 - 111.1) < 0.05
    bad = verdicts.conclusion(_metrics(105.0, (98.0, 112.0)), refs, calibration={"ratio": 1.0})
    assert "No better than a random guess" in bad and "nothing is known" in bad
    good = verdicts.conclusion(_metrics(60.0, (55.0, 65.0)), refs, calibration={"ratio": 1.0})
    assert "random" not in good


def test_conclusion_without_baseline_says_how_to_make_it_and_flags_smoke():
    refs = {"baseline_v15": None, "baseline_v15_missing": "make it with `edkeras run v15_baseline`", "classical": None}
    text = verdicts.conclusion(_metrics(smoke=True, data=["synthetic"]), refs)
    assert text.startswith("*Smoke run")
    assert "not available" in text and "edkeras run v15_baseline" in text
    assert "simulated events" in text


def test_conclusion_calibration_target():
    refs = {"baseline_v15": None, "classical": None}
    text = verdicts.conclusion(_metrics(), refs, calibration={"ratio": 0.6, "share_within_20pct": 0.25, "ratio_recalibrated": 1.05})
    line = next(x for x in text.splitlines() if "Uncertainty" in x)
    assert "0.60" in line and "**not met**" in line and "25%" in line and "1.05 (met)" in line
    ok = verdicts.conclusion(_metrics(), refs, calibration={"ratio": 1.15})
    assert "**met**" in next(x for x in ok.splitlines() if "Uncertainty" in x)


def test_calibration_markdown():
    rows = [
        {"bin": "5–10", "n": 12, "predicted_theta68": 30.0, "theta68": 25.0, "ratio": 1.2, "coverage_68": 0.7,
         "coverage_90": 0.95},
        {"bin": "50+", "n": 0},
    ]
    text = markdown.calibration_markdown(rows, title="t")
    assert "| 5–10 | 12 | 30.0° | 25.0° | 1.20 | 0.70 | 0.95 |" in text
    assert "| 50+ | 0 | — |" in text and text.startswith("**t**")


# ----------------------------------------------------------------------------- runs on disk
def _fake_run(root: Path, name: str, config, theta68: float, finished: bool = True) -> Path:
    d = root / name
    d.mkdir(parents=True)
    write_json(d / "config.json", to_dict(config))
    if finished:
        overall = {"n": 450, "theta68": theta68, "theta68_ci": [theta68 - 1, theta68 + 1], "median": theta68 / 2,
                   "median_ci": [0, 1], "mean": theta68, "mean_ci": [0, 1], "flip_fraction": 0.03,
                   "flip_fraction_ci": [0.02, 0.04]}
        write_json(d / "metrics.json", {
            "best_epoch": 4, "epochs_run": 6, "events": {"train": 2100, "val": 450, "test": 450},
            "timing": {"fit_seconds_this_session": 12.0, "train_samples_per_second": 900.0},
            "test": {"overall": overall, "kappa_coverage": {"cone68": 0.6, "cone90": 0.88}},
            "val": {"overall": {**overall, "theta68": theta68 + 2}},
        })
    return d


def test_find_baseline_and_reference_results(tmp_path):
    me = phase.phase_config("v21", "synthetic", 3000, 5, 0, False, head="vmf")
    v15 = phase.phase_config("v15_baseline", "synthetic", 3000, 5, 0, False, model="baseline_v15")
    _fake_run(tmp_path, "v15_other", v15, 41.0)
    _fake_run(tmp_path, "v15_baseline", v15, 40.0)
    _fake_run(tmp_path, "v15_small", phase.phase_config("v15_small", "synthetic", 1000, 5, 0, False, model="baseline_v15"), 10.0)
    _fake_run(tmp_path, "v15_unfinished", v15, 5.0, finished=False)
    found = verdicts.find_baseline(me, tmp_path)
    assert found is not None and found.name == "v15_baseline"
    refs = verdicts.reference_results(me, tmp_path, classical=False)
    b = refs["baseline_v15"]
    assert b["run"] == "v15_baseline" and b["theta68"] == 40.0 and b["theta68_ci"] == [39.0, 41.0]
    assert b["model_options"] == {"filters": 16}
    assert refs["classical"] is None
    other = phase.phase_config("v21", "synthetic", 500, 5, 0, False, head="vmf")
    none = verdicts.reference_results(other, tmp_path, classical=False)
    assert none["baseline_v15"] is None
    assert "edkeras run v15_baseline" in none["baseline_v15_missing"] and "-p n_events 500" in none["baseline_v15_missing"]


def test_summarise_run_reads_the_test_split(tmp_path):
    cfg = phase.phase_config("v21", head="vmf")
    d = _fake_run(tmp_path, "v21", cfg, 33.0)
    metrics = json.loads((d / "metrics.json").read_text())
    s = phase.summarise_run(SimpleNamespace(config=cfg, metrics=metrics, run_dir=d))
    assert s["test_theta68"] == 33.0 and s["val_theta68"] == 35.0
    assert s["test_theta68_ci"] == [32.0, 34.0]
    assert s["n_events"] == 3000 and s["test_n"] == 450 and s["best_epoch"] == 4
    assert s["test_kappa_coverage"] == {"cone68": 0.6, "cone90": 0.88}
    json.dumps(s)  # JSON-ready


def test_train_or_load_reloads_a_finished_run_of_the_same_config(tmp_path):
    cfg = phase.phase_config("v21", head="vmf")
    _fake_run(tmp_path, "v21", cfg, 33.0)
    result = phase.train_or_load(cfg, force=False, runs_dir=tmp_path)
    assert result.metrics["test"]["overall"]["theta68"] == 33.0 and result.best_epoch == 4
    changed = phase.phase_config("v21", head="vmf", epochs=11)
    with pytest.raises(FileExistsError, match="force"):
        phase.train_or_load(changed, force=False, runs_dir=tmp_path)


def test_run_folder_accepts_a_notebook_copy_but_not_foreign_files(tmp_path):
    from edkeras.core.errors import InputError
    from edkeras.reco.runs import prepare_run

    cfg = to_dict(phase.phase_config("v21", head="vmf"))
    nb = tmp_path / "v21"
    nb.mkdir()
    (nb / "v21_uncertainty.ipynb").write_text("{}")  # what `edkeras run` writes before the run exists
    (nb / "summary.json").write_text("{}")
    assert prepare_run(nb, cfg) == "new"
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="holds files but no config.json"):
        prepare_run(other, cfg)
    assert (other / "notes.txt").read_text() == "mine"


# ----------------------------------------------------------------------------- test events
def test_read_split_and_classical_predictions_follow_the_run_order(small_event_file, tmp_path):
    from edkeras.reco.run_data import prepare_data

    cfg = phase.phase_config("r", str(small_event_file), None, 1, 0, False)
    expected = prepare_data(cfg.data).subset("test").field("event_id")
    assert expected.size > 2
    batch = phase.read_split(cfg, "test")
    np.testing.assert_array_equal(batch.event_id, expected)
    picked = phase.read_split(cfg, "test", [2, 0])
    np.testing.assert_array_equal(picked.event_id, expected[[2, 0]])
    np.testing.assert_array_equal(picked.U[0], batch.U[2])
    pred = phase.classical_predictions(cfg, tmp_path / "classical.npz", chunk=2)
    np.testing.assert_array_equal(pred.event_id, expected)
    assert pred.angular_errors.shape == expected.shape and np.all((pred.angular_errors >= 0) & (pred.angular_errors <= 180))
    np.testing.assert_allclose(np.linalg.norm(pred.predictions, axis=1), 1.0, atol=1e-6)
    with pytest.raises(InputError, match="split"):
        phase.read_split(cfg, "holdout")


def test_reference_results_computes_the_classical_baseline(small_event_file, tmp_path):
    cfg = phase.phase_config("r", str(small_event_file), None, 1, 0, False, training={"bootstrap_samples": 20})
    refs = verdicts.reference_results(cfg, tmp_path / "runs")
    c = refs["classical"]
    assert Path(c["predictions"]) == tmp_path / "runs" / "r" / "classical_predictions_test.npz"
    assert c["n"] == len(phase.read_split(cfg, "test")) and 0 < c["theta68"] <= 180
    assert c["theta68_ci"][0] <= c["theta68"] <= c["theta68_ci"][1]


def test_event_displays_show_the_requested_events(small_event_file, tmp_path):
    from edkeras.reco.predictions import load_predictions

    cfg = phase.phase_config("r", str(small_event_file), None, 1, 0, False)
    pred = phase.classical_predictions(cfg, tmp_path / "p.npz")
    figs = phase.event_displays(cfg, load_predictions(tmp_path / "p.npz"), quantiles=(0.0, 0.99))
    worst = int(pred.event_id[int(np.argmax(pred.angular_errors))])
    best = int(pred.event_id[int(np.argmin(pred.angular_errors))])
    assert len(figs) == 2
    assert f"test event {best} " in figs[0]._suptitle.get_text()
    assert f"test event {worst} " in figs[1]._suptitle.get_text()
    assert len(figs[0].axes) >= 3


def test_describe_config_states_size_and_reduced_width():
    cfg = phase.phase_config("v15", "synthetic", 3000, 8, 0, True, model="baseline_v15")
    text = phase.describe_config(cfg, "cpu")
    assert "`baseline_v15`" in text and "parameters" in text and "held-out test split" in text
    assert "reduced width" in text
    assert "reduced width" not in phase.describe_config(cfg, "full")


# ----------------------------------------------------------------------------- phase-specific helpers
def test_tuning_settings():
    smoke = search.tuning_settings("cpu", True)
    assert smoke.n_trials == 2 and smoke.epochs_per_trial == 1 and "filters" not in smoke.search_space
    cpu = search.tuning_settings("cpu", False, "random", 6, 2)
    assert (cpu.algorithm, cpu.n_trials, cpu.epochs_per_trial) == ("random", 6, 2)
    assert cpu.search_space["filters"] == {"values": [8, 16]}
    full = search.tuning_settings("full", False, "bayesian", 50, 20)
    assert full.preset == "proposal_v17" and full.search_space["filters"] == {"values": [32, 64]}
    with pytest.raises(InputError, match="scale"):
        search.tuning_settings("tiny", False)


def test_tuning_settings_start_hyperband_where_networks_learn():
    # 8,400 training events: 5 epochs pass 42,000 events, the longest rung is 3 × 5, one bracket is 6 + 2 trials
    hb = search.tuning_settings("cpu", False, n_train=8400)
    assert (hb.algorithm, hb.min_epochs_per_trial, hb.epochs_per_trial, hb.n_trials) == ("hyperband", 5, 15, 8)
    assert 5 * 8400 >= phase.LEARNING_PASSES > 4 * 8400
    small = search.tuning_settings("cpu", False, n_train=4200)
    assert (small.min_epochs_per_trial, small.epochs_per_trial, small.n_trials) == (10, 30, 11)  # 8 × 10, then 3 × 30
    given = search.tuning_settings("cpu", False, "hyperband", 4, 9, 3)
    assert (given.n_trials, given.epochs_per_trial, given.min_epochs_per_trial) == (4, 9, 3)
    rnd = search.tuning_settings("cpu", False, "random", 6, 0, n_train=8400)
    assert (rnd.epochs_per_trial, rnd.min_epochs_per_trial) == (5, 1)  # every trial trains to the threshold
    with pytest.raises(InputError, match="algorithm 'random' has none"):
        search.tuning_settings("cpu", False, "random", 6, 2, 3)
    with pytest.raises(InputError, match="pass n_train"):
        search.tuning_settings("cpu", False)
    with pytest.raises(InputError, match="needs n_trials"):
        search.tuning_settings("cpu", False, "bayesian", 0, 4)


def test_energy_bin_configs_split_the_energy_range_of_one_run():
    cfg = phase.phase_config("v22", "synthetic", 6000, 4, 0, False)
    bins = phase.energy_bin_configs(cfg, [10, 20.5])
    assert [b.name for b in bins] == ["v22_e0-10", "v22_e10-20.5", "v22_e20.5-inf"]
    assert [(b.data.energy_min, b.data.energy_max) for b in bins] == [(None, 10.0), (10.0, 20.5), (20.5, None)]
    assert all(b.data.split_seed == cfg.data.split_seed and b.model == cfg.model and b.training == cfg.training for b in bins)
    for bad in ([], [20, 10], [10, float("nan")]):
        with pytest.raises(InputError, match="increasing list of finite"):
            phase.energy_bin_configs(cfg, bad)
    with pytest.raises(InputError, match="already keeps only"):
        phase.energy_bin_configs(bins[1], [15])
    capped = phase.phase_config("v22", ["a.h5"], 6000, 4, 0, False)
    with pytest.raises(InputError, match="caps data.n_events at 6000"):
        phase.energy_bin_configs(capped, [10])


def _trial(tid, value, lr, status="COMPLETED"):
    return {"trial_id": tid, "status": status, "objective": "val_theta68", "value": value,
            "hyperparameters": {"training.learning_rate": lr, "model.options.filters": 16}}


def test_trials_markdown_and_plot():
    rows = [_trial("0", 80.0, 1e-3), _trial("1", 70.5, 3e-4), _trial("2", None, 1e-2, "FAILED")]
    text = markdown.trials_markdown(rows, best_id="1").splitlines()
    assert "val_theta68" in text[0] and "training.learning_rate" in text[0]
    assert text[2].startswith("| 1 **(best)** | COMPLETED | 70.50 |")
    assert text[3].startswith("| 0 |") and text[4].startswith("| 2 | FAILED | — |")
    fig = phase_plots.plot_trials(rows)
    left, right = fig.axes
    assert list(left.lines[1].get_ydata()) == [80.0, 70.5]  # best so far
    assert right.get_visible() and right.get_xlabel() == "training.learning_rate" and right.get_xscale() == "log"
    assert markdown.trials_markdown([]) == "*No trials.*"


def test_energy_balanced_alpha_weights_rare_bins_up(small_event_file):
    from edkeras.reco.run_data import prepare_data

    cfg = phase.phase_config("r", str(small_event_file), None, 1, 0, False)
    edges = (5.0, 30.0, 100.0)
    alpha = phase.energy_balanced_alpha(cfg, edges)
    e = prepare_data(cfg.data).subset("train").field("energy")
    counts = np.array([np.sum(e < 30.0), np.sum(e >= 30.0)])
    assert len(alpha) == 2
    assert np.dot(alpha, counts) / counts.sum() == pytest.approx(1.0, abs=1e-3)  # mean weight 1
    assert (alpha[0] > alpha[1]) == (counts[0] < counts[1])
    assert alpha[0] * counts[0] == pytest.approx(alpha[1] * counts[1], rel=1e-3)  # each bin weighs the same


def test_plane_weight_and_multitask_figures():
    rng = np.random.default_rng(0)
    w = rng.dirichlet([4.0, 1.0, 1.0], size=200)
    fig = phase_plots.plot_plane_weights(w, rng.uniform(5, 60, 200))
    hist, means = fig.axes
    labels = [t.get_text() for t in hist.get_legend().get_texts()]
    assert labels[0] == f"plane U (mean {w[:, 0].mean():.2f})" and len(means.lines) >= 3
    e = rng.uniform(5, 60, 100)
    fig2 = phase_plots.plot_energy_and_type(e * 1.1, e, rng.random(100), rng.integers(0, 2, 100))
    scatter, probs = fig2.axes
    np.testing.assert_allclose(scatter.lines[0].get_xdata(), e)
    assert len(probs.patches) == 2  # one step histogram per true type


@pytest.mark.slow
def test_predict_split_gives_outputs_in_the_predictions_order(small_event_file, tmp_path):
    from edkeras.reco.models import build_model
    from edkeras.reco.run_data import prepare_data

    cfg = phase.phase_config("att", str(small_event_file), None, 1, 0, True, model="attention_v19")
    run_dir = tmp_path / "att"
    run_dir.mkdir()
    model = build_model("attention_v19", head="direction", **cfg.model.options)
    model.save(run_dir / "model.keras")
    result = SimpleNamespace(run_dir=run_dir, config=cfg)
    n_test = len(prepare_data(cfg.data).subset("test"))
    out = phase.predict_split(result, "test")
    assert out["direction"].shape == (n_test, 3)
    np.testing.assert_allclose(np.linalg.norm(out["direction"], axis=1), 1.0, atol=1e-5)
    w = phase.predict_split(result, "test", outputs="plane_weights")["plane_weights"]
    assert w.shape == (n_test, 3)
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-5)
