"""Hyperparameter search: strict search spaces, resumable keras-tuner projects, retraining, distribution.

Default suite (tiny images (32, 16), a 4-filter compact model, 1 epoch per trial): strict
configs and search spaces, and a search of 1 trial resumed to 2 then retrained (one shared
fixture). Slow (each a minute or more on a busy 2-core machine): training and tuning under
MirroredStrategy over two logical CPU devices (subprocesses), the distributed chief + two
workers, Hyperband, Bayesian optimisation.
"""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import keras_tuner
import numpy as np
import pytest
from conftest import random_batch

from edkeras.core.schema import ConfigError, from_dict, to_dict
from edkeras.events.eventfile import write_events
from edkeras.reco.config import RunConfig
from edkeras.reco.search_space import PRESETS, TuningConfig, default_search_space, tuning_from_dict
from edkeras.reco.trials import best_trial, trial_table
from edkeras.reco.tuning import load_tune_config, project_name, resolve_search_space, search, tune, tuner_role

REPO = Path(__file__).resolve().parents[1]
SPACE = {
    "learning_rate": {"min": 1e-3, "max": 1e-2, "log": True},
    "filters": {"values": [4, 6]},
    "augmentation.mirror": {"values": [True, False]},
}


def _run_dict(events: Path, name: str = "tiny") -> dict:
    return {
        "name": name,
        "data": {"files": [str(events)], "val_fraction": 0.25, "test_fraction": 0.25},
        "model": {"name": "compact", "options": {"filters": 4, "depth": 1, "dense_units": 8}},
        "training": {"epochs": 1, "batch_size": 16, "bootstrap_samples": 10, "early_stopping_patience": None},
    }


@pytest.fixture(scope="module")
def events(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """120 random events of (32, 16) images (unphysical; the pipeline is under test, not the physics)."""
    path = tmp_path_factory.mktemp("tuning_data") / "tiny.h5"
    return write_events(path, random_batch(120, shape=(32, 16), seed=3), source={"generator": "tests"})


@pytest.fixture(scope="module")
def run_config(events: Path) -> RunConfig:
    return from_dict(RunConfig, _run_dict(events))


@pytest.fixture(autouse=True)
def _no_distribution(monkeypatch: pytest.MonkeyPatch) -> None:
    for k in ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT"):
        monkeypatch.delenv(k, raising=False)


# ------------------------------------------------------------------ config and search space (no training)
def test_tuning_config_defaults_preset_and_strict_keys() -> None:
    t = TuningConfig()
    assert (t.algorithm, t.n_trials, t.epochs_per_trial, t.objective, t.retrain_on, t.executions_per_trial) == (
        "bayesian", 10, 3, "val_theta68", "train", 1
    )
    v17 = TuningConfig(preset="proposal_v17")
    assert (v17.n_trials, v17.epochs_per_trial, v17.algorithm) == (50, 20, "bayesian")
    assert v17.search_space == PRESETS["proposal_v17"]["search_space"]
    # a field given explicitly wins over the preset; the expanded config round-trips
    assert TuningConfig(preset="proposal_v17", n_trials=5).n_trials == 5
    assert tuning_from_dict(to_dict(v17)) == v17
    with pytest.raises(ConfigError, match=r"unknown key 'n_trial'.*did you mean 'n_trials'"):
        tuning_from_dict({"n_trial": 3})
    with pytest.raises(ConfigError, match=r"tuning.objective"):
        tuning_from_dict({"objective": "val_loss"})
    with pytest.raises(ConfigError, match=r"tuning.n_trials: must be an integer >= 1"):
        TuningConfig(n_trials=0)
    with pytest.raises(ConfigError, match=r"search_space.dropout: 'max' must be > 'min'"):
        TuningConfig(search_space={"dropout": {"min": 0.5, "max": 0.1}})
    with pytest.raises(ConfigError, match=r"search_space.filters: unknown key 'choices'"):
        TuningConfig(search_space={"filters": {"choices": [8, 16]}})
    with pytest.raises(ConfigError, match=r"log sampling needs 'min' > 0"):
        TuningConfig(search_space={"learning_rate": {"min": 0, "max": 1e-2, "log": True}})


def test_search_space_keys_checked_against_run_config(run_config: RunConfig) -> None:
    space = resolve_search_space(run_config, TuningConfig(search_space={
        "learning_rate": {"min": 1e-4, "max": 1e-2, "log": True},
        "model.filters": {"values": [4, 8]},
        "dropout": {"min": 0, "max": 0.4, "step": 0.1},
        "batch_size": {"values": [16, 32]},
        "loss": {"values": ["angular", "cosine"]},
        "augmentation.mirror": {"values": [True, False]},
    }))
    assert list(space) == sorted([
        "training.learning_rate", "model.options.filters", "model.options.dropout", "training.batch_size",
        "training.loss", "augmentation.mirror",
    ])
    assert space["training.learning_rate"].kind == "float" and space["training.learning_rate"].log
    assert space["model.options.dropout"].kind == "float"  # ints given for a float option
    assert space["training.batch_size"].values == (16, 32)
    assert space["augmentation.mirror"].value_type == "bool"

    def bad(spec: dict, pattern: str) -> None:
        with pytest.raises(ConfigError, match=pattern):
            resolve_search_space(run_config, TuningConfig(search_space=spec))

    bad({"filtres": {"values": [4, 8]}}, r"key 'filtres' is unknown \(did you mean 'filters'\?\); valid keys: .*model.options.filters")
    bad({"augmentation.mirrors": {"values": [True]}}, r"key 'augmentation.mirrors' is unknown")
    bad({"epochs": {"values": [1, 2]}}, r"key 'epochs' is not tunable \(trials run tuning.epochs_per_trial")
    bad({"data.n_events": {"values": [10]}}, r"data keys are not tunable")
    bad({"loss": {"values": ["angular", "vmf_nll"]}}, r"search_space.loss: .*vmf_nll.*does not fit model.head")
    bad({"loss": {"values": ["angular", "huber"]}}, r"search_space.loss.*must be one of")
    bad({"batch_size": {"values": [16, 2.5]}}, r"search_space.batch_size: training.batch_size takes a int value; received 2.5")
    bad({"batch_size": {"values": [0, 16]}}, r"training.batch_size: must be an integer >= 1")
    bad({"filters": {"values": ["wide"]}}, r"model.options.filters takes a int value")
    bad({"loss": {"min": 1, "max": 2}}, r"a range \(min, max\) needs a numeric key; training.loss is str")
    bad({"filters": {"values": [4]}, "model.options.filters": {"values": [8]}}, r"which another key already sets")


def test_default_space_fits_each_head(events: Path) -> None:
    for head, loss in (("direction", "angular"), ("vmf", "vmf_nll"), ("multitask", "angular")):
        d = _run_dict(events)
        d["model"]["head"], d["training"]["loss"] = head, loss
        space = resolve_search_space(from_dict(RunConfig, d), TuningConfig())
        assert set(space["training.loss"].values) == set(default_search_space(head)["loss"]["values"])
        assert {"training.learning_rate", "model.options.filters", "augmentation.mirror"} <= set(space)


def test_project_name_changes_with_the_space_not_with_n_trials(run_config: RunConfig) -> None:
    base = TuningConfig(algorithm="random", search_space=SPACE)
    name = project_name(run_config, base)
    assert name.startswith("random-") and len(name) == len("random-") + 12
    assert project_name(run_config, TuningConfig(algorithm="random", search_space=SPACE, n_trials=50)) == name
    renamed = from_dict(RunConfig, {**to_dict(run_config), "name": "other"})
    assert project_name(renamed, base) == name  # the run's name is not part of the search
    wider = {**SPACE, "filters": {"values": [4, 6, 8]}}
    changed = {
        project_name(run_config, TuningConfig(algorithm="random", search_space=wider)),
        project_name(run_config, TuningConfig(algorithm="random", search_space=SPACE, objective="val_angular_error_deg")),
        project_name(run_config, TuningConfig(algorithm="random", search_space=SPACE, epochs_per_trial=2)),
        project_name(from_dict(RunConfig, {**to_dict(run_config), "data": {**to_dict(run_config)["data"], "split_seed": 7}}), base),
    }
    assert name not in changed and len(changed) == 4
    # bare and dotted spellings of the same space are the same search
    dotted = {"training.learning_rate": SPACE["learning_rate"], "model.options.filters": SPACE["filters"],
              "augmentation.mirror": SPACE["augmentation.mirror"]}
    assert project_name(run_config, TuningConfig(algorithm="random", search_space=dotted)) == name


def test_load_tune_config_splits_and_checks_both_parts(tmp_path: Path, events: Path) -> None:
    path = tmp_path / "tune.json"
    path.write_text(json.dumps({**_run_dict(events), "tuning": {"algorithm": "random", "n_trials": 3}}))
    cfg, tuning = load_tune_config(path, ["tuning.n_trials=4", "training.batch_size=8"], name="renamed")
    assert (tuning.algorithm, tuning.n_trials) == ("random", 4)
    assert (cfg.name, cfg.training.batch_size) == ("renamed", 8)
    path.write_text(json.dumps({**_run_dict(events), "tuning": {"n_trails": 3}}))
    with pytest.raises(ConfigError, match=r"tune.json.tuning: unknown key 'n_trails'"):
        load_tune_config(path)
    path.write_text(json.dumps({**_run_dict(events), "hyperopt": {"enabled": True}}))
    with pytest.raises(ConfigError, match=r"tune.json: unknown key 'hyperopt'"):
        load_tune_config(path)


def test_cli_reports_a_bad_search_space_key_in_one_line(tmp_path: Path, events: Path, capsys: pytest.CaptureFixture) -> None:
    from edkeras.cli import main

    path = tmp_path / "tune.json"
    path.write_text(json.dumps({**_run_dict(events), "tuning": {"algorithm": "random", "search_space": {
        "dropout_rate": {"min": 0.1, "max": 0.3}}}}))
    assert main(["tune", str(path), "--runs", str(tmp_path / "runs")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("edkeras tune: error: tuning.search_space: key 'dropout_rate' is unknown")
    assert "did you mean 'dropout'" in err[0]
    assert not (tmp_path / "runs").exists()  # nothing written


def test_distributed_role_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from edkeras.core.errors import InputError

    assert tuner_role() == "single"
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    with pytest.raises(InputError, match="KERASTUNER_ORACLE_PORT, KERASTUNER_TUNER_ID"):
        tuner_role()
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "8000")
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "chief")
    assert tuner_role() == "chief"
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "tuner1")
    assert tuner_role() == "worker"


def test_best_trial_ignores_failed_and_missing() -> None:
    rows = [
        {"trial_id": "0", "status": "COMPLETED", "value": 40.0},
        {"trial_id": "1", "status": "FAILED", "value": None},
        {"trial_id": "2", "status": "COMPLETED", "value": 35.5},
        {"trial_id": "3", "status": "INVALID", "value": 1.0},
    ]
    assert best_trial(rows)["trial_id"] == "2"
    assert best_trial(rows[1:2]) is None


def test_hypermodel_sees_train_and_val_only(run_config: RunConfig) -> None:
    import keras_tuner as kt

    from edkeras.reco.hypermodel import RunHyperModel
    from edkeras.reco.run_data import prepare_data

    space = resolve_search_space(run_config, TuningConfig(search_space=SPACE))
    data = prepare_data(run_config.data)
    hm = RunHyperModel(run_config, space, data.subset("train"), data.subset("val"), data.index.image_shape)
    ids = data.index.field("event_id")
    seen = set(ids[data.selected["train"]]) | set(ids[data.selected["val"]])
    assert set(hm.train_index.field("event_id")) | set(hm.val_index.field("event_id")) == seen
    assert not seen & set(ids[data.selected["test"]])
    hp = kt.HyperParameters()
    hp.values.update({"augmentation.mirror": True, "model.options.filters": 6, "training.learning_rate": 0.005})
    cfg = hm.trial_config(hp)
    assert (cfg.augmentation.mirror, cfg.model.options["filters"], cfg.training.learning_rate) == (True, 6, 0.005)
    train_ds, val_ds = hm.datasets(cfg)
    assert train_ds.augment is not None and train_ds.training  # training batches augmented
    assert val_ds.augment is None and not val_ds.training      # validation not
    train_ds.close()
    val_ds.close()


def test_search_refuses_a_model_option_the_builder_rejects(run_config: RunConfig, tmp_path: Path) -> None:
    from edkeras.core.errors import InputError

    with pytest.raises(InputError, match=r"model.options: .*'filters' must be an integer >= 1"):
        search(run_config, TuningConfig(algorithm="random", n_trials=1, search_space={"filters": {"value": 0}}), tmp_path)
    assert not list(tmp_path.glob("tuner/*/trial_*"))  # no trial ran


# ------------------------------------------------------------------ a small search, resumed, then retrained
@pytest.fixture(scope="module")
def tuned(run_config: RunConfig, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Search 1 trial ("interrupted"), then ``tune`` the same search to 2 trials and retrain the best."""
    run_dir = tmp_path_factory.mktemp("tuned") / "tiny"
    tuning1 = TuningConfig(algorithm="random", n_trials=1, epochs_per_trial=1, search_space=SPACE)
    t0 = time.perf_counter()
    first = search(run_config, tuning1, run_dir)
    first_trial = json.loads((first.project_dir / "trial_0" / "trial.json").read_text())
    tuning2 = TuningConfig(algorithm="random", n_trials=2, epochs_per_trial=1, search_space=SPACE)
    result = tune(run_config, tuning2, run_dir, verbose=0)
    return {"first": first, "first_trial": first_trial, "result": result, "run_dir": run_dir,
            "tuning": tuning2, "seconds": time.perf_counter() - t0}


def test_interrupted_search_resumes_without_rerunning_trials(tuned: dict) -> None:
    first, result = tuned["first"], tuned["result"]
    assert first.trials_run == ["0"] and [r["status"] for r in first.trials] == ["COMPLETED"]
    assert result.search.project_dir == first.project_dir  # same space → same project, resumed
    assert result.search.trials_run == ["1"]  # only the missing trial ran in the second session
    rows = trial_table(first.project_dir)
    assert [r["trial_id"] for r in rows] == ["0", "1"] and all(r["status"] == "COMPLETED" for r in rows)
    log = [json.loads(line) for line in (first.project_dir / "log_tuner0.jsonl").read_text().splitlines()]
    assert [e["trial_id"] for e in log] == ["0", "1"]  # each trial ran once
    assert len({e["pid"] for e in log}) == 1  # (same pytest process, two sessions)
    # the completed trial's record was kept as it was
    kept = json.loads((first.project_dir / "trial_0" / "trial.json").read_text())
    assert kept["hyperparameters"]["values"] == tuned["first_trial"]["hyperparameters"]["values"]
    assert kept["score"] == tuned["first_trial"]["score"]


def test_search_writes_table_best_config_and_retrained_run(tuned: dict) -> None:
    run_dir, result = tuned["run_dir"], tuned["result"]
    assert result.search.project_dir.parent == run_dir / "tuner"
    with open(run_dir / "trials.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    assert [r["trial_id"] for r in table] == ["0", "1"]
    assert {"status", "value", "objective", "model.options.filters", "training.learning_rate", "augmentation.mirror"} <= set(table[0])
    values = [float(r["value"]) for r in table]
    assert all(0 <= v <= 180 for v in values) and {r["objective"] for r in table} == {"val_theta68"}
    assert json.loads((run_dir / "trials.json").read_text())[0]["trial_id"] == "0"
    best = result.best
    assert best["value"] == min(values)
    # the best trial's values are in the retrained run's config
    best_cfg = json.loads((run_dir / "best_config.json").read_text())
    assert best_cfg == json.loads((run_dir / "config.json").read_text())
    hp = best["hyperparameters"]
    assert best_cfg["model"]["options"]["filters"] == hp["model.options.filters"]
    assert best_cfg["training"]["learning_rate"] == pytest.approx(hp["training.learning_rate"])
    assert best_cfg["augmentation"]["mirror"] is bool(hp["augmentation.mirror"])
    assert best_cfg["training"]["epochs"] == 1  # the run config's epochs, not the trials'
    info = json.loads((run_dir / "tuning.json").read_text())
    assert info["best_trial"]["trial_id"] == best["trial_id"] and info["objective"]["split"] == "val"
    # retrained once through training.train: validation chooses, test is evaluated
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["chosen_on"] == "val" and metrics["test"]["split"] == "test"
    assert np.isfinite(metrics["test"]["overall"]["theta68"])
    assert result.run is not None and result.run.run_dir == run_dir
    # a finished tuned run is not redone without force (refused before any search)
    with pytest.raises(FileExistsError, match="pass --force"):
        tune(result.best_config, tuned["tuning"], run_dir)
    print(f"search 1 trial + resume to 2 + retrain: {tuned['seconds']:.1f} s")


# ------------------------------------------------------------------ MirroredStrategy over two logical CPUs
_MIRRORED_SCRIPT = textwrap.dedent('''
    import json, os, sys
    os.environ["KERAS_BACKEND"] = "tensorflow"
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
    import keras
    from edkeras.reco.config import RunConfig
    from edkeras.core.schema import from_dict
    from edkeras.reco.training import train

    mode, cfg_path, out_dir = sys.argv[1:4]
    cfg = from_dict(RunConfig, json.loads(open(cfg_path).read()))
    seen = {}

    def probe(model):
        seen.setdefault("replicas", []).append(model.distribute_strategy.num_replicas_in_sync)
        seen.setdefault("distributed_variables", []).append(
            isinstance(model.trainable_variables[0].value, tf.distribute.DistributedValues))

    class Probe(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            probe(self.model)

    if mode == "train":
        r = train(cfg, run_dir=out_dir, callbacks=[Probe()], verbose=0)
        seen["metrics"] = os.path.exists(os.path.join(out_dir, "metrics.json"))
    else:
        from edkeras.reco import tuning
        hm = tuning.RunHyperModel
        fit = hm.fit
        def spy(self, hp, model, *a, **k):
            probe(model)
            return fit(self, hp, model, *a, **k)
        hm.fit = spy
        t = tuning.TuningConfig(algorithm="random", n_trials=1, epochs_per_trial=1,
                                search_space={"filters": {"values": [4, 6]}})
        res = tuning.search(cfg, t, out_dir)
        seen["status"] = [r["status"] for r in res.trials]
    seen["logical_cpus"] = len(tf.config.list_logical_devices("CPU"))
    print("RESULT " + json.dumps(seen))
''')


def _run_mirrored(mode: str, events: Path, tmp_path: Path) -> dict:
    d = _run_dict(events, name="mirrored")
    d["training"]["strategy"] = "mirrored"
    cfg_path = tmp_path / "cfg.json"
    cfg_path.write_text(json.dumps(d))
    script = tmp_path / "mirrored.py"
    script.write_text(_MIRRORED_SCRIPT)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run(
        [sys.executable, str(script), mode, str(cfg_path), str(tmp_path / "run")],
        capture_output=True, text=True, timeout=600, env=env, cwd=REPO,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    return json.loads(lines[-1][len("RESULT "):])


@pytest.mark.slow
def test_training_honours_mirrored_strategy(events: Path, tmp_path: Path) -> None:
    seen = _run_mirrored("train", events, tmp_path)
    assert seen["logical_cpus"] == 2
    assert seen["replicas"] and set(seen["replicas"]) == {2}
    assert all(seen["distributed_variables"])  # the model was built inside the strategy's scope
    assert seen["metrics"]
    env = json.loads((tmp_path / "run" / "env.json").read_text())
    assert env["strategy"] == "mirrored"


@pytest.mark.slow
def test_tuning_trials_use_mirrored_strategy(events: Path, tmp_path: Path) -> None:
    seen = _run_mirrored("search", events, tmp_path)
    assert seen["status"] == ["COMPLETED"]
    assert set(seen["replicas"]) == {2} and all(seen["distributed_variables"])


# ------------------------------------------------------------------ other algorithms (slow)
@pytest.mark.slow
def test_hyperband_search_caps_trials(run_config: RunConfig, tmp_path: Path) -> None:
    tuning = TuningConfig(algorithm="hyperband", n_trials=3, epochs_per_trial=2, search_space=SPACE,
                          objective="val_angular_error_deg")
    res = search(run_config, tuning, tmp_path / "hb")
    assert len(res.trials) == 3 and all(r["status"] == "COMPLETED" for r in res.trials)
    assert all(r["objective"] == "val_angular_error_deg" and 0 <= r["value"] <= 180 for r in res.trials)
    raw = [json.loads(p.read_text()) for p in sorted(res.project_dir.glob("trial_*/trial.json"))]
    assert {t["hyperparameters"]["values"]["tuner/epochs"] for t in raw} <= {1, 2}


def test_hyperband_smallest_rung_is_min_epochs_per_trial() -> None:
    # keras-tuner plans 9 epochs / factor 3 as rungs of 1, 3, 9 epochs; with a smallest rung of 3
    # the first bracket trains 5 trials for 3 epochs and continues the best 2 (rounded up) to 9
    from keras_tuner.src.tuners.hyperband import HyperbandOracle

    from edkeras.reco.tuning import _set_smallest_rung

    oracle = HyperbandOracle(keras_tuner.Objective("val_theta68", "min"), max_epochs=9, factor=3)
    assert oracle._get_epochs(oracle._current_bracket, 0) == 1
    _set_smallest_rung(oracle, 3)
    first = oracle._brackets[0]["bracket_num"]
    assert [oracle._get_epochs(first, r) for r in range(first + 1)] == [3, 9]
    assert [oracle._get_size(first, r) for r in range(first + 1)] == [5, 2]
    with pytest.raises(ConfigError, match="min_epochs_per_trial.*only a 'hyperband'"):
        TuningConfig(algorithm="random", min_epochs_per_trial=3)
    with pytest.raises(ConfigError, match="min_epochs_per_trial: must be <= epochs_per_trial"):
        TuningConfig(algorithm="hyperband", epochs_per_trial=4, min_epochs_per_trial=5)


@pytest.mark.slow
def test_hyperband_search_starts_at_the_smallest_rung(run_config: RunConfig, tmp_path: Path) -> None:
    tuning = TuningConfig(algorithm="hyperband", n_trials=2, epochs_per_trial=9, min_epochs_per_trial=3,
                          search_space=SPACE)
    res = search(run_config, tuning, tmp_path / "hb3")
    raw = [json.loads(p.read_text()) for p in sorted(res.project_dir.glob("trial_*/trial.json"))]
    assert len(raw) == 2 and {t["hyperparameters"]["values"]["tuner/epochs"] for t in raw} == {3}


@pytest.mark.slow
def test_bayesian_search(run_config: RunConfig, tmp_path: Path) -> None:
    pytest.importorskip("sklearn", reason="keras-tuner's BayesianOptimization needs scikit-learn")
    tuning = TuningConfig(algorithm="bayesian", n_trials=2, epochs_per_trial=1, search_space=SPACE)
    res = search(run_config, tuning, tmp_path / "bo")
    assert [r["status"] for r in res.trials] == ["COMPLETED", "COMPLETED"]


# ------------------------------------------------------------------ distributed: a chief and two workers
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_distributed_search_chief_and_two_workers(events: Path, tmp_path: Path) -> None:
    n_trials = 4
    cfg = {**_run_dict(events, name="dist"), "tuning": {
        "algorithm": "random", "n_trials": n_trials, "epochs_per_trial": 1, "search_space": SPACE}}
    cfg_path = tmp_path / "dist.json"
    cfg_path.write_text(json.dumps(cfg))
    runs = tmp_path / "runs"
    port = str(_free_port())
    procs = {}
    t0 = time.perf_counter()
    for tid in ("chief", "tuner0", "tuner1"):
        env = {**os.environ, "KERASTUNER_TUNER_ID": tid, "KERASTUNER_ORACLE_IP": "127.0.0.1",
               "KERASTUNER_ORACLE_PORT": port, "TF_CPP_MIN_LOG_LEVEL": "2"}
        log = open(tmp_path / f"{tid}.log", "w")  # noqa: SIM115 (closed below)
        procs[tid] = (subprocess.Popen(
            [sys.executable, "-m", "edkeras.cli", "tune", str(cfg_path), "--runs", str(runs), "--quiet"],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO,
        ), log)
    try:
        codes = {tid: p.wait(timeout=900) for tid, (p, _) in procs.items()}
    finally:
        for p, log in procs.values():
            if p.poll() is None:
                p.kill()
            log.close()
    outputs = {tid: (tmp_path / f"{tid}.log").read_text() for tid in procs}
    assert codes == {"chief": 0, "tuner0": 0, "tuner1": 0}, outputs
    run_dir = runs / "dist"
    (project,) = list((run_dir / "tuner").iterdir())
    trial_dirs = sorted(project.glob("trial_*"))
    assert len(trial_dirs) == n_trials
    assert all(len(list(d.glob("trial.json"))) == 1 for d in trial_dirs)
    statuses = [json.loads((d / "trial.json").read_text())["status"] for d in trial_dirs]
    assert statuses.count("COMPLETED") == n_trials
    # who ran what: each worker's own log in the shared folder
    logs = {p.stem[len("log_"):]: [json.loads(x) for x in p.read_text().splitlines()] for p in project.glob("log_*.jsonl")}
    assert set(logs) == {"tuner0", "tuner1"}  # the chief ran no trial; both workers did
    ran = [e["trial_id"] for entries in logs.values() for e in entries]
    assert sorted(ran) == sorted(d.name[len("trial_"):] for d in trial_dirs)  # every trial once, none twice
    assert all(logs.values())
    # only the chief retrained: one run, the chief's
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert np.isfinite(metrics["test"]["overall"]["theta68"])
    with open(run_dir / "trials.csv", newline="") as fh:
        assert len(list(csv.DictReader(fh))) == n_trials
    assert "the chief retrains" in outputs["tuner0"] and "the chief retrains" in outputs["tuner1"]
    assert "test: theta68" in outputs["chief"]
    print(f"distributed chief + 2 workers, {n_trials} trials + retrain: {time.perf_counter() - t0:.1f} s")
