"""Fault injection: kills at run time and broken or wrong files for every kind the project reads.

Each case expects one line on stderr naming the file, a non-zero status, no traceback, no
half-written output under a final name, and (for kills) a rerun that resumes from the last
complete epoch. The long variant (≥ 50 kills, ≥ 100 inputs) is still to come; these are
the kinds, one or a few cases each.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import REAL_TP_FILE, random_batch

from edkeras.cli import main
from edkeras.core.schema import save_json
from edkeras.events.eventfile import write_events
from edkeras.reco.predictions import save_predictions


def _one_line_error(capsys, *names: str) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err, err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("edkeras "), err
    for n in names:
        assert n in err, (n, err)
    return err


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """One good file of every kind: events, predictions, tables, config, model (a tiny finished run)."""
    root = tmp_path_factory.mktemp("faults")
    events = write_events(root / "events.h5", random_batch(64, shape=(32, 16), seed=8), source={})
    rng = np.random.default_rng(0)
    d = rng.normal(size=(2000, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    pred = save_predictions(root / "pred.npz", predictions=d, energies=rng.uniform(6, 50, 2000),
                            nu_directions=np.tile([0.0, 0.0, 1.0], (2000, 1)), split="val")
    assert main(["likelihood", str(pred), "--out", str(root / "tables.npz")]) == 0
    config = save_json({"name": "tiny", "data": {"files": [str(events)]},
                        "model": {"options": {"filters": 4, "depth": 1, "dense_units": 8}},
                        "training": {"epochs": 1, "batch_size": 16, "bootstrap_samples": 20}}, root / "tiny.json")
    assert main(["train", str(config), "--runs", str(root / "runs"), "--quiet"]) == 0
    return {"root": root, "events": events, "pred": pred, "tables": root / "tables.npz", "config": config,
            "run": root / "runs" / "tiny"}


def _damage(src: Path, dst: Path, how: str) -> Path:
    data = src.read_bytes()
    if how == "truncate":
        dst.write_bytes(data[: len(data) // 2])
    elif how == "garbage":
        rng = np.random.default_rng(1)
        b = bytearray(data)
        for pos in rng.integers(len(b) // 4, len(b), 40):
            b[pos] = (b[pos] + 1 + rng.integers(0, 254)) % 256
        dst.write_bytes(bytes(b))
    elif how == "empty":
        dst.write_bytes(b"")
    return dst


@pytest.mark.parametrize("how", ["truncate", "garbage", "empty"])
def test_damaged_event_file(files, tmp_path, capsys, how):
    bad = _damage(files["events"], tmp_path / "bad.h5", how)
    assert main(["doctor", str(bad)]) != 0
    out = capsys.readouterr()
    assert "Traceback" not in out.err + out.out and "bad.h5" in out.err + out.out
    assert main(["evaluate", str(files["run"]), "--data", str(bad)]) == 1
    _one_line_error(capsys, "bad.h5")


@pytest.mark.parametrize("how", ["truncate", "garbage", "empty"])
def test_damaged_predictions_and_tables(files, tmp_path, capsys, how):
    bad_pred = _damage(files["pred"], tmp_path / "bad.npz", how)
    assert main(["likelihood", str(bad_pred), "--out", str(tmp_path / "t.npz")]) == 1
    _one_line_error(capsys, "bad.npz")
    assert not (tmp_path / "t.npz").exists()
    bad_tables = _damage(files["tables"], tmp_path / "badt.npz", how)
    assert main(["point", str(files["pred"]), "--tables", str(bad_tables)]) == 1
    _one_line_error(capsys, "badt.npz")


def test_files_of_the_wrong_kind(files, tmp_path, capsys):
    assert main(["point", str(files["events"]), "--tables", str(files["tables"])]) == 1  # events as predictions
    _one_line_error(capsys, "events.h5")
    assert main(["point", str(files["pred"]), "--tables", str(files["pred"])]) == 1  # predictions as tables
    _one_line_error(capsys, "pred.npz")
    assert main(["evaluate", str(files["run"]), "--data", str(files["pred"])]) == 1  # predictions as events
    _one_line_error(capsys, "pred.npz")
    assert main(["train", str(files["events"]), "--runs", str(tmp_path)]) == 1  # an event file as config
    _one_line_error(capsys, "events.h5")


@pytest.mark.parametrize("how", ["truncate", "garbage", "empty"])
def test_damaged_config_and_model(files, tmp_path, capsys, how):
    bad = _damage(files["config"], tmp_path / "bad.json", how)
    assert main(["train", str(bad), "--runs", str(tmp_path / "runs")]) == 1
    _one_line_error(capsys, "bad.json")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    run = tmp_path / "run"
    shutil.copytree(files["run"], run)
    _damage(files["run"] / "model.keras", run / "model.keras", how)
    assert main(["evaluate", str(run), "--data", str(files["events"])]) == 1
    _one_line_error(capsys, "model.keras")


@pytest.mark.skipif(not REAL_TP_FILE.exists(), reason="the real DUNE file is not here")
@pytest.mark.parametrize("how", ["truncate", "garbage"])
def test_damaged_root_file(tmp_path, capsys, how):
    bad = _damage(REAL_TP_FILE, tmp_path / "bad.root", how)
    rc = main(["ingest-tpstream", str(bad), "--out", str(tmp_path / "e.h5")])
    if rc == 0:  # garbage that missed every basket the reader needs: the output must be whole
        assert (tmp_path / "e.h5").exists()
        return
    assert rc == 1
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and "bad.root" in err.splitlines()[-1]
    assert not (tmp_path / "e.h5").exists()


def test_sigterm_during_training_then_resume(files, tmp_path):
    """A batch system's kill (SIGTERM) after the first epoch: one line, status 143; the rerun
    resumes from the last complete epoch and finishes."""
    cfg = json.loads(files["config"].read_text())
    cfg["name"] = "killed"
    cfg["training"].update(epochs=30, early_stopping_patience=None)  # long enough that the signal lands mid-run
    config = save_json(cfg, tmp_path / "killed.json")
    from edkeras.reco.config import load_run_config

    config = save_json(load_run_config(config), tmp_path / "killed.json")
    runs = tmp_path / "runs"
    cmd = [sys.executable, "-m", "edkeras.cli", "train", str(config), "--runs", str(runs), "--quiet"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
    backup = runs / "killed" / "backup"
    deadline = time.time() + 240
    while time.time() < deadline and not (backup.is_dir() and any(backup.glob("epoch-*"))):
        time.sleep(0.05)
    # Rarely (about 1 suite run in 6 on the 2-core machine, never in isolation) the first SIGTERM is not
    # seen and the run trains on; a batch system repeats its signal before its SIGKILL, so this does too.
    for _ in range(10):
        proc.send_signal(signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=3)
            break
        except subprocess.TimeoutExpired:
            continue
    else:
        proc.kill()
        _, err = proc.communicate()
    lines = [x for x in err.splitlines() if x.startswith("edkeras")]
    assert proc.returncode == 143, err[-2000:]
    assert "Traceback" not in err and lines[-1] == "edkeras train: terminated (SIGTERM); what was complete is kept"
    done = max(int(p.name.split("-")[1]) for p in backup.glob("epoch-*"))
    assert done >= 1 and not (runs / "killed" / "metrics.json").exists()
    again = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"resuming run killed from epoch {done}" in again.stderr
    metrics = json.loads((runs / "killed" / "metrics.json").read_text())
    assert metrics["epochs_run"] == 30 and metrics["timing"]["epochs_this_session"] == 30 - done


def test_nan_pixels_are_refused_by_train_and_evaluate(files, tmp_path, capsys):
    """doctor rejects NaN pixels; so do train (before any epoch ends) and evaluate, naming the event."""
    import h5py

    bad = tmp_path / "nan.h5"
    shutil.copy(files["events"], bad)
    with h5py.File(bad, "r+") as h5:
        img = h5["images/V"][17]
        img[3, 4] = np.nan
        h5["images/V"][17] = img
        event_id = int(h5["meta/event_id"][17])
    assert main(["evaluate", str(files["run"]), "--data", str(bad)]) == 1
    _one_line_error(capsys, "nan.h5", f"event id {event_id} (row 17): plane V has 1 NaN or infinite pixels")
    cfg = json.loads(files["config"].read_text())
    cfg["data"]["files"] = [str(bad)]
    config = save_json(cfg, tmp_path / "nan.json")
    assert main(["train", str(config), "--runs", str(tmp_path / "runs"), "--quiet"]) == 1
    _one_line_error(capsys, "nan.h5", f"event id {event_id}")


def test_leaderboard_names_runs_it_cannot_rank(files, tmp_path, capsys):
    runs = tmp_path / "runs"
    for name in ("good", "bad_metrics", "cut_model"):
        shutil.copytree(files["run"], runs / name)
    (runs / "bad_metrics" / "metrics.json").write_text('{"test": {"overall": {"theta')
    model = runs / "cut_model" / "model.keras"
    model.write_bytes(model.read_bytes()[:2000])
    assert main(["leaderboard", "--runs", str(runs), "--json"]) == 0
    out = capsys.readouterr()
    assert [r["name"] for r in json.loads(out.out)] == ["good"]
    assert "bad_metrics not ranked: metrics.json cannot be read" in out.err
    assert "cut_model not ranked: model.keras is cut short" in out.err


def test_random_damage_of_event_files_never_gives_a_traceback(files, tmp_path, capsys):
    """Random bytes anywhere in an event file (header, link tables, heaps, chunks): every reader
    either reads what is intact or says in one line that the file is damaged (an h5py
    RuntimeError from a corrupted link table was a traceback)."""
    data = files["events"].read_bytes()
    rng = np.random.default_rng(36)
    for k in range(12):
        b = bytearray(data)
        for pos in rng.integers(0, len(b) if k % 2 else 4096, int(rng.integers(1, 200))):
            b[pos] = int(rng.integers(0, 256))
        bad = tmp_path / f"bad{k}.h5"
        bad.write_bytes(bytes(b))
        for argv in (["doctor", str(bad)], ["evaluate", str(files["run"]), "--data", str(bad)]):
            rc = main(argv)
            out = capsys.readouterr()
            assert "Traceback" not in out.err + out.out
            if rc != 0 and argv[0] == "evaluate":
                assert rc == 1 and f"bad{k}.h5" in out.err and len(out.err.strip().splitlines()) == 1


@pytest.mark.skipif(not REAL_TP_FILE.exists(), reason="the real DUNE file is not here")
def test_random_damage_of_a_root_file_never_gives_a_traceback(tmp_path, capsys):
    """Bytes changed in compressed baskets reach zlib below uproot's checks (Error -3 while
    decompressing was a traceback): one line naming the file, or a whole output."""
    data = REAL_TP_FILE.read_bytes()
    rng = np.random.default_rng(69)
    for k in range(6):
        b = bytearray(data)
        for pos in rng.integers(len(b) // 10, len(b), int(rng.integers(20, 200))):
            b[pos] = int(rng.integers(0, 256))
        bad = tmp_path / f"bad{k}.root"
        bad.write_bytes(bytes(b))
        out = tmp_path / f"e{k}.h5"
        rc = main(["ingest-tpstream", str(bad), "--out", str(out)])
        err = capsys.readouterr().err
        assert "Traceback" not in err
        if rc != 0:
            assert rc == 1 and f"bad{k}.root" in err.strip().splitlines()[-1] and not out.exists()
