"""One training path end to end on tiny files: the run folder, held-out test, resume, determinism,
evaluate, leaderboard, strict errors."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
from conftest import random_batch

from edkeras.core.errors import InputError
from edkeras.core.schema import ConfigError, from_dict, save_json, to_dict
from edkeras.events.eventfile import write_events
from edkeras.reco.config import RunConfig
from edkeras.reco.runs import RUN_FILES, leaderboard, prepare_run

SHAPE = (32, 16)
N = 96


def _config(files, name="tiny", **sections) -> RunConfig:
    base = {
        "name": name,
        "data": {"files": [str(f) for f in files], "val_fraction": 0.2, "test_fraction": 0.2, "split_seed": 3},
        "model": {"name": "compact", "options": {"filters": 4, "depth": 1, "dense_units": 8}},
        "training": {"epochs": 3, "batch_size": 16, "seed": 5, "bootstrap_samples": 50, "mixed_precision": False},
        "augmentation": {"mirror": True},
    }
    for key, value in sections.items():
        base[key] = {**base.get(key, {}), **value}
    return from_dict(RunConfig, base)


def _history(run_dir):
    with open(run_dir / "history.csv", newline="") as fh:
        return list(csv.DictReader(fh))


class Interrupt(Exception):
    """Stands for a killed job."""


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two runs of one config and seed on two files that differ only in their test events.

    A is trained in one go through the CLI; B is interrupted after its second epoch and
    resumed. If the test split influenced training, or the resume differed from an
    uninterrupted run, or training were not reproducible, B's history would differ from A's.
    """
    import keras

    from edkeras.cli import main
    from edkeras.reco.event_index import index_events
    from edkeras.reco.run_data import prepare_data
    from edkeras.reco.training import train

    root = tmp_path_factory.mktemp("training")
    batch = random_batch(N, shape=SHAPE, seed=21)
    file_a = write_events(root / "a" / "events.h5", batch, source={"generator": "tests"})
    cfg = _config([file_a])
    # B: the same file name and ids (so the same split), but the test events replaced
    test_pos = prepare_data(cfg.data).selected["test"]
    other = random_batch(N, shape=SHAPE, seed=99)
    for name in ("U", "V", "X", "direction", "energy", "reco_energy", "interaction"):
        getattr(batch, name)[test_pos] = getattr(other, name)[test_pos]
    file_b = write_events(root / "b" / "events.h5", batch, source={"generator": "tests"})
    assert index_events([file_b]).file_names[0] == "events.h5"

    cfg_path = save_json(cfg, root / "tiny.json")
    runs_dir = root / "runs"
    assert main(["train", str(cfg_path), "--runs", str(runs_dir), "--quiet", "--set", "training.seed=5"]) == 0

    class StopAfterSecondEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise Interrupt("killed")

    cfg_b = _config([file_b], name="tiny_b")
    run_b = runs_dir / "tiny_b"
    with pytest.raises(Interrupt):
        train(cfg_b, run_b, verbose=0, callbacks=[StopAfterSecondEpoch()])
    interrupted = {
        "files": sorted(p.name for p in run_b.iterdir()),
        "history_rows": len(_history(run_b)),
        "state": prepare_run(run_b, to_dict(cfg_b)),
    }
    res_b = train(cfg_b, run_b, verbose=0)
    return {
        "root": root, "runs": runs_dir, "cfg": cfg, "cfg_path": cfg_path, "file_a": file_a, "file_b": file_b,
        "a": runs_dir / "tiny", "b": res_b, "interrupted": interrupted,
    }


def test_run_folder_holds_every_file(runs):
    from edkeras.reco.metrics import containment_angle
    from edkeras.reco.predictions import load_predictions

    a = runs["a"]
    for name in (*RUN_FILES, "split.npz"):
        assert (a / name).is_file(), name
    assert not (a / "backup").exists() and not (a / "checkpoint.json").exists()
    assert json.loads((a / "config.json").read_text()) == json.loads(json.dumps(to_dict(runs["cfg"])))
    env = json.loads((a / "env.json").read_text())
    assert env["seed"] == 5 and env["keras_backend"] == "tensorflow" and env["versions"]["keras"]
    assert {"host", "python", "git", "created"} <= set(env)
    hist = _history(a)
    assert [int(r["epoch"]) for r in hist] == [0, 1, 2]
    assert all(float(r["augmented_events"]) == 48 for r in hist)  # 58 training events, 3 batches of 16
    m = json.loads((a / "metrics.json").read_text())
    val_curve = [float(r["val_angular_error_deg"]) for r in hist]
    assert m["chosen_on"] == "val" and m["monitor"] == "val_angular_error_deg"
    assert m["best_epoch"] == int(np.argmin(val_curve)) and m["best_value"] == pytest.approx(min(val_curve))
    assert m["events"] == {"train": 58, "val": 19, "test": 19}
    split = np.load(a / "split.npz")
    for part in ("val", "test"):
        block = m[part]
        assert block["split"] == part and block["n"] == 19
        assert [(b["lo"], b["hi"]) for b in block["by_energy"]] == [
            (5, 10), (10, 15), (15, 20), (20, 30), (30, 50), (50, None)]
        assert [b["hi"] for b in block["by_energy_coarse"]] == [20, 40, None]
        assert sum(b["n"] for b in block["by_energy_coarse"]) == 19
        assert block["by_interaction"]["es"]["n"] + block["by_interaction"]["cc"]["n"] == 19
        pred = load_predictions(a / f"predictions_{part}.npz")
        assert (str(pred.split), str(pred.run)) == (part, "tiny")
        assert sorted(pred.event_id.tolist()) == sorted(split[f"{part}_event_id"].tolist())
        assert block["overall"]["theta68"] == pytest.approx(containment_angle(pred.angular_errors), rel=1e-5)
        lo, hi = block["overall"]["theta68_ci"]
        assert lo <= block["overall"]["theta68"] <= hi


def test_test_split_never_chooses_the_model_and_training_is_reproducible(runs):
    """B's training and validation are identical to A's; only its test numbers differ."""
    a, b = runs["a"], runs["b"]
    ma = json.loads((a / "metrics.json").read_text())
    assert _history(a) == _history(b.run_dir)  # every loss, metric and val value, epoch by epoch
    assert b.best_epoch == ma["best_epoch"]
    assert b.metrics["val"] == ma["val"]  # same config and seed → same metrics
    assert b.metrics["test"]["overall"]["theta68"] != ma["test"]["overall"]["theta68"]


def test_interrupted_run_resumes_where_it_stopped(runs):
    seen = runs["interrupted"]
    assert "backup" in seen["files"] and "metrics.json" not in seen["files"]
    assert seen["history_rows"] == 2 and seen["state"] == "resume"
    b = runs["b"]
    assert b.resumed and b.epochs_run == 3
    assert b.metrics["timing"]["epochs_this_session"] == 1
    assert not (b.run_dir / "backup").exists()


def test_finished_run_is_not_overwritten(runs, capsys):
    from edkeras.cli import main
    from edkeras.reco.training import train

    before = (runs["a"] / "metrics.json").read_text()
    with pytest.raises(FileExistsError, match="holds a finished run; pass --force"):
        train(runs["cfg"], runs["a"], verbose=0)
    assert main(["train", str(runs["cfg_path"]), "--runs", str(runs["runs"]), "--quiet"]) == 1
    assert "finished run; pass --force" in capsys.readouterr().err
    assert (runs["a"] / "metrics.json").read_text() == before


def test_evaluate_any_file(runs, capsys, tmp_path):
    from edkeras.cli import main
    from edkeras.reco.evaluate import evaluate
    from edkeras.reco.predictions import load_predictions

    out = tmp_path / "all.npz"
    res = evaluate(runs["a"], runs["file_a"], out=out, batch_size=32)
    assert res["n_events"] == N and res["n_with_truth"] == N and res["metrics"]["n"] == N
    allp = load_predictions(out)
    test = load_predictions(runs["a"] / "predictions_test.npz")
    rows = {int(e): i for i, e in enumerate(allp.event_id)}
    np.testing.assert_allclose(allp.predictions[[rows[int(e)] for e in test.event_id]], test.predictions, atol=1e-5)
    assert main(["evaluate", str(runs["a"]), "--data", str(runs["file_a"]), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["metrics"]["overall"]["theta68"] == pytest.approx(
        res["metrics"]["overall"]["theta68"])
    wrong = write_events(tmp_path / "wide.h5", random_batch(4, shape=(32, 8)), source={})
    with pytest.raises(InputError, match=r"wide.h5: image shape \(32, 8\); the model of .* takes \(32, 16\)"):
        evaluate(runs["a"], wrong)
    with pytest.raises(InputError, match="not a finished run folder"):
        evaluate(tmp_path, runs["file_a"])
    # an unfinished run (no metrics.json yet) and a truncated model are named, not tracebacks
    unfinished = tmp_path / "unfinished"
    shutil.copytree(runs["a"], unfinished)
    (unfinished / "metrics.json").unlink()
    with pytest.raises(InputError, match="the run is not finished .* Run the same 'edkeras train' command again"):
        evaluate(unfinished, runs["file_a"])
    truncated = tmp_path / "truncated"
    shutil.copytree(runs["a"], truncated)
    data = (truncated / "model.keras").read_bytes()
    (truncated / "model.keras").write_bytes(data[: len(data) // 3])
    with pytest.raises(InputError, match=r"truncated/model.keras: cannot be loaded as a Keras model"):
        evaluate(truncated, runs["file_a"])
    assert main(["evaluate", str(truncated), "--data", str(runs["file_a"])]) == 1
    assert "cannot be loaded" in capsys.readouterr().err


def test_es_cc_classifier_run_and_evaluate_with_it(runs, capsys, tmp_path):
    """A multitask run chosen on the ES/CC loss; its ES probability (for equal priors) joins another model's predictions."""
    from edkeras.cli import main
    from edkeras.reco.evaluate import _load_finished_run, _predict_file, classifier_es_probability, evaluate
    from edkeras.reco.predictions import load_predictions
    from edkeras.reco.training import train

    cfg = _config([runs["file_a"]], name="es_cc", model={"head": "multitask"},
                  training={"monitor": "val_interaction_loss", "interaction_loss_weight": 1.0, "epochs": 2})
    clf = tmp_path / "es_cc"
    train(cfg, clf, verbose=0)
    metrics = json.loads((clf / "metrics.json").read_text())
    assert metrics["monitor"] == "val_interaction_loss" and "val_interaction_auc" in _history(clf)[0]
    sep = metrics["test"]["interaction"]
    assert 0.0 <= sep["auc"] <= 1.0 and set(sep["cc_pass"]) == {"0.5", "0.7", "0.9"}
    # the output is turned into the probability for equal priors: the odds are divided by the prior odds
    counts = metrics["val"]["by_interaction"]
    prior = counts["es"]["n"] / (counts["es"]["n"] + counts["cc"]["n"])
    rd, rc, model = _load_finished_run(clf)
    raw = np.clip(_predict_file(rd, rc, model, runs["file_a"], 32)[0]["es_probability"], 1e-7, 1 - 1e-7)
    p = classifier_es_probability(clf, runs["file_a"], 32)
    np.testing.assert_allclose(p / (1 - p), raw / (1 - raw) * (1 - prior) / prior, rtol=1e-6)
    counts["es"]["n"], counts["cc"]["n"] = 1, 3  # a classifier trained on 25 % ES
    (clf / "metrics.json").write_text(json.dumps(metrics))
    p25 = classifier_es_probability(clf, runs["file_a"], 32)
    np.testing.assert_allclose(p25 / (1 - p25), raw / (1 - raw) * 3, rtol=1e-6)
    # with blips.json beside the classifier, the blips round each event join its probability
    from edkeras.events.eventfile import open_events
    from edkeras.reco.blip_combination import FEATURES, FORMAT, save_combination

    with open_events(runs["file_a"]) as ev:
        b = ev.read()
    b.blips = (np.arange(len(b)) % 6).astype(np.float32)
    b.blip_energy = 1.5 * b.blips
    with_blips = write_events(tmp_path / "blips.h5", b, source={"generator": "tests"})
    save_combination({"format": FORMAT, "features": list(FEATURES), "weights": [0.0, 1.0, -2.0, 0.5]},
                     clf / "blips.json")
    pb = classifier_es_probability(clf, with_blips, 32)
    expect = np.log(p25 / (1 - p25)) - 2.0 * np.minimum(b.blips, 4) + 0.5 * np.log1p(b.blip_energy)
    np.testing.assert_allclose(np.log(pb / (1 - pb)), expect, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(classifier_es_probability(clf, with_blips, 32, blips=False), p25, rtol=1e-6)
    capsys.readouterr()
    np.testing.assert_allclose(classifier_es_probability(clf, runs["file_a"], 32), p25, rtol=1e-6)
    assert f"{len(b)} of {len(b)} events have no blip fields" in capsys.readouterr().err
    (clf / "blips.json").write_text("{damaged")
    with pytest.raises(InputError, match="blips.json: cannot be read as a blip combination"):
        classifier_es_probability(clf, with_blips, 32)
    (clf / "blips.json").unlink()
    # direction from one run, ES/CC from the other, in one predictions file
    out = tmp_path / "with_es.npz"
    res = evaluate(runs["a"], runs["file_a"], out=out, batch_size=32, classifier=clf)
    pred = load_predictions(out)
    np.testing.assert_allclose(pred.es_probability, p25, rtol=1e-6)
    np.testing.assert_allclose(pred.predictions, load_predictions(
        evaluate(runs["a"], runs["file_a"], out=tmp_path / "plain.npz")["predictions"]).predictions, atol=1e-6)
    assert res["classifier"] == str(clf) and "auc" in res["metrics"]["interaction"]
    assert main(["evaluate", str(runs["a"]), "--data", str(runs["file_a"]), "--classifier", str(clf)]) == 0
    assert "ES/CC: AUC = " in capsys.readouterr().out
    with pytest.raises(InputError, match="the classifier must be a run of the multitask head .* head is 'direction'"):
        evaluate(runs["a"], runs["file_a"], classifier=runs["a"])
    del metrics["val"]
    (clf / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(InputError, match="no ES and CC counts of the validation split"):
        classifier_es_probability(clf, runs["file_a"])


def test_leaderboard_ranks_by_test_theta68(runs, capsys):
    from edkeras.cli import main

    rows = leaderboard(runs["runs"])
    assert sorted(r["name"] for r in rows) == ["tiny", "tiny_b"]
    assert [r["rank"] for r in rows] == [1, 2]
    thetas = [r["test_theta68"] for r in rows]
    assert thetas == sorted(thetas)
    assert all(r["test_theta68_ci"][0] <= r["test_theta68"] <= r["test_theta68_ci"][1] for r in rows)
    assert main(["leaderboard", "--runs", str(runs["runs"]), "--json"]) == 0
    assert [r["name"] for r in json.loads(capsys.readouterr().out)] == [r["name"] for r in rows]
    assert main(["leaderboard", "--runs", str(runs["runs"])]) == 0
    assert "tiny_b" in capsys.readouterr().out


def test_plot_training_curves(runs):
    from edkeras.reports.plots.training import plot_history

    fig = plot_history(runs["a"])
    axes = fig.get_axes()
    assert len(axes) == 3
    best = json.loads((runs["a"] / "metrics.json").read_text())["best_epoch"]
    assert any(line.get_xdata()[0] == best + 1 for line in axes[1].get_lines() if line.get_linestyle() == "--")
    assert len(axes[1].get_lines()[0].get_xdata()) == 3


def test_strict_errors_before_training(runs, tmp_path):
    from edkeras.reco.training import train

    f = runs["file_a"]
    with pytest.raises(ConfigError, match=r"model.options.filterz: unknown option of model 'compact'; valid options: "):
        train(_config([f], model={"options": {"filterz": 4}}), tmp_path / "r1", verbose=0)
    with pytest.raises(ConfigError, match=r"model.name: .*unknown builder 'nope'"):
        train(_config([f], model={"name": "nope"}), tmp_path / "r2", verbose=0)
    with pytest.raises(ConfigError, match=r"model.options.input_shape: \[64, 16\] differs from the image shape"):
        train(_config([f], model={"options": {"input_shape": [64, 16]}}), tmp_path / "r3", verbose=0)
    with pytest.raises(InputError, match=r"data.files: no such event file"):
        train(_config([tmp_path / "missing.h5"]), tmp_path / "r4", verbose=0)
    with pytest.raises(InputError, match=r"the train split holds no events after the filters \(energy_min=1000.0"):
        train(_config([f], data={"energy_min": 1000.0}), tmp_path / "r5", verbose=0)
    with pytest.raises(ConfigError, match=r"training.loss_options: .*unknown option 'gama'"):
        train(_config([f], training={"loss": "focal_angular", "loss_options": {"gama": 2}}), tmp_path / "r6", verbose=0)
    # none of these wrote a run: the corrected config runs under the same name at once
    for k in range(1, 7):
        assert not (tmp_path / f"r{k}" / "config.json").exists()
    assert train(_config([f], training={"epochs": 1}), tmp_path / "r1", verbose=0).epochs_run == 1


@pytest.mark.parametrize(("key", "row", "value", "message"), [
    ("truth/direction", 5, [0.0, 0.0, 0.0], r"bad.h5: event id \d+ .*true direction .* is zero or partly NaN"),
    ("truth/direction", 7, [0.0, np.nan, 1.0], r"is zero or partly NaN"),
    ("truth/energy", 3, -2.0, r"energy is -2.0; expected an energy >= 0 MeV"),
    ("meta/event_id", 9, None, r"event id 2 appears twice in bad.h5"),
])
def test_bad_truth_is_refused_before_the_first_epoch(key, row, value, message, tmp_path):
    """What doctor rejects, train rejects too, naming the file and event, before any epoch or file
    (the file is edited behind the writer's back, as another tool might have written it)."""
    import h5py

    from edkeras.reco.training import train

    f = write_events(tmp_path / "bad.h5", random_batch(N, shape=SHAPE, seed=31), source={"generator": "tests"})
    with h5py.File(f, "r+") as h5:
        h5[key][row] = h5["meta/event_id"][2] if value is None else value
    with pytest.raises(InputError, match=message):
        train(_config([f]), tmp_path / "run", verbose=0)
    assert not (tmp_path / "run" / "config.json").exists()


def test_prepare_run_protects_folders(tmp_path):
    cfg = {"name": "x", "training": {"epochs": 1}}
    d = tmp_path / "run"
    assert prepare_run(d, cfg) == "new"
    (d / "config.json").write_text(json.dumps(cfg))
    (d / "notes.txt").write_text("mine")
    assert prepare_run(d, cfg) == "resume"
    with pytest.raises(FileExistsError, match="unfinished run \\(a different config\\)"):
        prepare_run(d, {**cfg, "name": "y"})
    (d / "metrics.json").write_text("{}")
    (d / "model.keras").write_text("")
    with pytest.raises(FileExistsError, match="holds a finished run; pass --force"):
        prepare_run(d, cfg)
    assert prepare_run(d, cfg, force=True) == "new"
    assert sorted(p.name for p in d.iterdir()) == ["notes.txt"]  # only the run's own files removed
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "thesis.tex").write_text("")
    with pytest.raises(InputError, match="not a run folder"):
        prepare_run(other, cfg, force=True)
    assert (other / "thesis.tex").exists()
    shutil.rmtree(d)


@pytest.mark.slow
def test_mirrored_strategy_on_two_logical_cpus(runs, tmp_path):
    """``training.strategy=mirrored`` trains over two devices (the CPU split in two, in a fresh process)."""
    import subprocess
    import sys

    script = f"""
import json, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from edkeras.reco.config import load_run_config
from edkeras.reco.training import train
cfg = load_run_config({str(runs["cfg_path"])!r}, ["training.strategy=mirrored", "training.epochs=1"], name="mirrored")
r = train(cfg, {str(tmp_path / "mirrored")!r}, verbose=0)
print(json.dumps({{"theta68": r.metrics["test"]["overall"]["theta68"]}}))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    env = json.loads((tmp_path / "mirrored" / "env.json").read_text())
    assert env["strategy"] == "mirrored" and env["replicas"] == 2
    assert json.loads(done.stdout.strip().splitlines()[-1])["theta68"] > 0
    assert (tmp_path / "mirrored" / "metrics.json").exists()


def test_refit_on_train_and_val_keeps_the_last_epoch(runs, tmp_path):
    from edkeras.reco.training import train

    file_a = runs["file_a"]
    cfg = _config([file_a], name="refit", training={"epochs": 2, "fit_on": "train+val", "early_stopping_patience": None})
    res = train(cfg, run_dir=tmp_path / "refit", verbose=0)
    n = res.metrics["events"]
    assert res.best_epoch == 1 and res.epochs_run == 2  # the last epoch, not one chosen on validation
    assert res.metrics["fit_on"] == "train+val" and res.metrics["val"]["seen_in_training"] is True
    assert res.metrics["test"]["n"] == n["test"]
    history = _history(res.run_dir)
    assert [row.get("val_loss") for row in history] == [None, None] or all(
        row["val_loss"] == "NA" for row in history
    )  # no validation during the refit
    with pytest.raises(ConfigError, match="training.early_stopping_patience: must be null with fit_on"):
        _config([file_a], training={"fit_on": "train+val"})
    with pytest.raises(ConfigError, match="training.schedule: must be 'constant' or 'cosine' with fit_on"):
        _config([file_a], training={"fit_on": "train+val", "early_stopping_patience": None, "schedule": "plateau"})


@pytest.mark.parametrize("scale", ["sigma", "kappa"])
def test_a_gaussian_head_stores_what_it_learnt(runs, tmp_path, scale):
    """gaussian_angular_nll trains column 3 as σ (default) or as κ: the files store it under that name only."""
    from edkeras.reco.config import uncertainty_output
    from edkeras.reco.evaluate import evaluate
    from edkeras.reco.predictions import load_predictions
    from edkeras.reco.training import train

    cfg = _config([runs["file_a"]], name=f"gauss_{scale}", model={"head": "vmf"},
                  training={"epochs": 1, "loss": "gaussian_angular_nll", "loss_options": {"scale": scale}})
    assert uncertainty_output(cfg) == scale
    res = train(cfg, run_dir=tmp_path / cfg.name, verbose=0)
    other = "kappa" if scale == "sigma" else "sigma"
    assert f"{scale}_coverage" in res.metrics["test"] and f"{other}_coverage" not in res.metrics["test"]
    for path in (res.run_dir / "predictions_val.npz",
                 evaluate(res.run_dir, runs["file_a"], out=tmp_path / "p.npz") and tmp_path / "p.npz"):
        pred = load_predictions(path)
        stored = getattr(pred, scale)
        assert stored is not None and getattr(pred, other) is None and np.all(stored >= 0)
        expected = stored if scale == "kappa" else 2.0 / np.maximum(stored, 1e-6) ** 2
        np.testing.assert_allclose(pred.kappa_equivalent, np.clip(expected, 0, 1e6))
        assert set(np.load(path).files) >= {scale} and other not in np.load(path).files


def test_a_run_folder_in_use_is_refused(runs, tmp_path):
    """Two trainings into one folder: the second gets a clear error naming the holder, and writes nothing."""
    from edkeras.reco.runs import LOCK_FILE, RunInUse, run_lock
    from edkeras.reco.training import train

    cfg = _config([runs["file_a"]], name="locked", training={"epochs": 1})
    folder = tmp_path / "locked"
    with run_lock(folder):
        with pytest.raises(RunInUse, match=r"locked: in use by pid \d+ on .* since"):
            train(cfg, folder, verbose=0)
        assert sorted(p.name for p in folder.iterdir()) == [LOCK_FILE]
    res = train(cfg, folder, verbose=0)  # free again: trains
    assert res.epochs_run == 1 and (folder / "metrics.json").exists()


def test_a_run_killed_while_writing_its_backup_resumes_from_the_older_one(runs, tmp_path, capsys):
    """Two backups are kept: with the newest one cut short (a kill or a full disk while it was
    written), the torn last history row and a damaged checkpoint, the rerun resumes from the older
    backup and finishes; nothing needs --force."""
    import keras

    from edkeras.reco.training import train

    cfg = _config([runs["file_a"]], name="torn", training={"epochs": 3, "early_stopping_patience": None})
    run = tmp_path / "torn"

    class StopAfterSecondEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise Interrupt("killed")

    with pytest.raises(Interrupt):
        train(cfg, run, verbose=0, callbacks=[StopAfterSecondEpoch()])
    slots = sorted(p.name for p in (run / "backup").iterdir())
    assert slots == ["epoch-00001", "epoch-00002"]
    newest = run / "backup" / "epoch-00002" / "state.weights.h5"
    newest.write_bytes(newest.read_bytes()[:1000])
    history = (run / "history.csv").read_text()
    (run / "history.csv").write_text(history + "2,0.5,")  # a row cut off mid-line
    (run / "checkpoint.json").write_text('{"epoch": 0, "val')
    res = train(cfg, run, verbose=0)
    err = capsys.readouterr().err
    assert "backup" in err and "epoch-00002 cannot be read" in err and "resuming run torn from epoch 1" in err
    assert res.resumed and res.epochs_run == 3 and res.metrics["timing"]["epochs_this_session"] == 2
    assert [int(r["epoch"]) for r in _history(run)] == [0, 1, 2]
    assert not (run / "backup").exists() and (run / "metrics.json").exists()


@pytest.mark.parametrize(("loss", "options"), [("vmf_nll", {}), ("gaussian_angular_nll", {}),
                                           ("gaussian_angular_nll", {"scale": "kappa"})])
def test_the_stored_uncertainty_grows_with_the_actual_error(tmp_path, loss, options):
    """Half the events carry a bright block and one known direction, half are noise with random directions.

    A network that learnt its uncertainty stores a smaller one (larger κ, smaller σ) for the first
    half; read the wrong way (σ as κ) the order flips and the rank correlation turns negative.
    """
    from scipy.stats import spearmanr

    from edkeras.reco.predictions import load_predictions
    from edkeras.reco.training import train

    batch = random_batch(240, shape=SHAPE, seed=3)
    clean = np.random.default_rng(0).random(240) < 0.5
    batch.direction[clean] = [0.0, 0.6, 0.8]
    for plane in "UVX":
        getattr(batch, plane)[clean, 10:22, 4:12] = 800.0
    path = write_events(tmp_path / "events.h5", batch, source={"generator": "tests"})
    cfg = _config([path], name="unc", model={"head": "vmf"}, augmentation={"mirror": False},
                  data={"val_fraction": 0.25, "test_fraction": 0.25},
                  training={"epochs": 8, "learning_rate": 0.01, "loss": loss, "loss_options": options,
                            "monitor": "val_loss", "early_stopping_patience": None})
    train(cfg, run_dir=tmp_path / "run", verbose=0)
    pred = load_predictions(tmp_path / "run" / "predictions_test.npz")
    spread = 1.0 / pred.kappa_equivalent  # ∝ σ² either way
    rho = spearmanr(spread, pred.angular_errors)[0]
    is_clean = np.abs(pred.true_directions @ np.array([0.0, 0.6, 0.8]) - 1.0) < 1e-6
    assert rho > 0.3, rho
    assert np.median(spread[is_clean]) < np.median(spread[~is_clean])
