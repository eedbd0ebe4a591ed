"""``training.strategy: "multi_worker"``: one run trained by two workers on 127.0.0.1.

Each worker is an ``edkeras train`` process with its own ``TF_CONFIG``. The run the two
workers leave must be the run that one process trains with two replicas of the same config
(``mirrored`` on two logical CPUs: the same global batch split in two halves, the same
per-replica batch-normalisation statistics, the gradients averaged), written once, by the
chief.
"""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import random_batch

from edkeras.core.schema import ConfigError
from edkeras.events.eventfile import write_events
from edkeras.reco.multi_worker import read_tf_config

REPO = Path(__file__).resolve().parents[1]


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _config(tmp_path: Path, events: Path, strategy: str) -> Path:
    cfg = {
        "name": "mw",
        "data": {"files": [str(events)], "val_fraction": 0.25, "test_fraction": 0.25},
        "model": {"name": "compact", "options": {"filters": 4, "depth": 1, "dense_units": 8, "dropout": 0.0}},
        # fit_on train+val keeps the last epoch: on random events the validation scores of the epochs are
        # near ties that rounding may order either way, and the comparison is of training, not of that choice
        "training": {"epochs": 3, "batch_size": 16, "bootstrap_samples": 10, "early_stopping_patience": None,
                     "strategy": strategy, "mixed_precision": False, "fit_on": "train+val"},
    }
    path = tmp_path / f"{strategy}.json"
    path.write_text(json.dumps(cfg))
    return path


_TWO_LOGICAL_CPUS = (
    "import sys, tensorflow as tf; cpu = tf.config.list_physical_devices('CPU')[0]; "
    "tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2); "
)


_INTERRUPTED = (
    "import sys, keras; from pathlib import Path; from edkeras.reco.config import load_run_config; "
    "from edkeras.reco.training import train\n"
    "class Stop(keras.callbacks.Callback):\n"
    "    def on_epoch_end(self, epoch, logs=None):\n"
    "        if epoch == 0: raise KeyboardInterrupt('stopped after the first epoch')\n"
    "cfg = load_run_config(sys.argv[1], [])\n"
    "train(cfg, Path(sys.argv[3]) / cfg.name, callbacks=[Stop()], verbose=0)\n"
)


def _train(config: Path, runs: Path, tf_config: dict | None = None, interrupt: bool = False) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    env.update(TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="", KERAS_BACKEND="tensorflow",
               TMPDIR=str(runs.parent / "scratch"))
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
    cli = (_TWO_LOGICAL_CPUS if tf_config is None else "import sys; ") + "from edkeras.cli import main; sys.exit(main())"
    if interrupt:  # train() with a callback that stops the run after its first epoch, as a pre-emption would
        return subprocess.Popen([sys.executable, "-c", _INTERRUPTED, str(config), "--runs", str(runs)],
                                env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.Popen([sys.executable, "-c", cli, "train", str(config), "--runs", str(runs), "--quiet"],
                            env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(proc: subprocess.Popen, timeout: float = 400, ok: bool = True) -> str:
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"a worker did not finish in {timeout} s: {err[-2000:]}")
    if ok:
        assert proc.returncode == 0, err[-3000:]
    else:
        assert proc.returncode != 0 and "stopped after the first epoch" in err, err[-3000:]
    return err


def _weights(model_path: Path) -> list[np.ndarray]:
    import keras

    import edkeras.reco.models  # noqa: F401  (registers the custom layers)

    return [np.asarray(w) for w in keras.saving.load_model(model_path, compile=False).get_weights()]


def _losses(run_dir: Path) -> list[float]:
    with open(run_dir / "history.csv") as fh:
        return [float(r["loss"]) for r in csv.DictReader(fh)]


@pytest.mark.slow
def test_two_workers_train_the_run_of_one_process(tmp_path: Path) -> None:
    """Stopped after its first epoch and started again, as a pre-empted cluster job."""
    events = write_events(tmp_path / "tiny.h5", random_batch(96, shape=(32, 16), seed=3), source={"generator": "tests"})
    (tmp_path / "scratch").mkdir()
    config = _config(tmp_path, events, "multi_worker")
    for interrupt in (True, False):
        cluster = {"worker": [f"127.0.0.1:{p}" for p in _free_ports(2)]}
        workers = [_train(config, tmp_path / "runs", {"cluster": cluster, "task": {"type": "worker", "index": i}},
                          interrupt=interrupt) for i in range(2)]
        errs = [_finish(proc, ok=not interrupt) for proc in workers]
    assert all("resuming run mw from epoch 1" in err for err in errs)  # both workers took the chief's backup
    single = _train(_config(tmp_path, events, "mirrored"), tmp_path / "single")
    _finish(single)

    run, ref = tmp_path / "runs" / "mw", tmp_path / "single" / "mw"
    metrics = json.loads((run / "metrics.json").read_text())
    assert json.loads((run / "env.json").read_text())["replicas"] == 2
    assert metrics["epochs_run"] == 3
    assert list((tmp_path / "scratch").iterdir()) == []  # the other worker's scratch folder is gone
    # same losses, same kept epoch, same weights as one process with two replicas
    np.testing.assert_allclose(_losses(run), _losses(ref), rtol=1e-4)
    assert metrics["best_epoch"] == json.loads((ref / "metrics.json").read_text())["best_epoch"] == 2
    for a, b in zip(_weights(run / "model.keras"), _weights(ref / "model.keras")):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize(("value", "needle"), [
    (None, "it is not set"),
    ("{cluster", "not JSON"),
    ('{"cluster": {}, "task": {"type": "worker", "index": 0}}', "no cluster with workers"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "ps", "index": 0}}', "task is not one of"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 1}}', "outside its worker list"),
])
def test_a_bad_tf_config_is_one_clear_error(monkeypatch: pytest.MonkeyPatch, value: str | None, needle: str) -> None:
    if value is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", value)
    with pytest.raises(ConfigError, match=needle) as info:
        read_tf_config()
    assert "TF_CONFIG" in str(info.value) and "multi_worker" in str(info.value)


def test_a_search_refuses_the_multi_worker_strategy(tmp_path: Path) -> None:
    from edkeras.core.schema import from_dict
    from edkeras.reco.config import RunConfig
    from edkeras.reco.search_space import TuningConfig
    from edkeras.reco.tuning import search

    cfg = json.loads(_config(tmp_path, tmp_path / "none.h5", "multi_worker").read_text())
    with pytest.raises(ConfigError, match="multi_worker.*search"):
        search(from_dict(RunConfig, cfg), TuningConfig(algorithm="random", n_trials=1), tmp_path / "s")


def test_a_worker_takes_the_chiefs_resume_state(tmp_path: Path) -> None:
    from edkeras.reco.training import _copy_chief_state

    chief, scratch = tmp_path / "chief", tmp_path / "scratch"
    chief.mkdir()
    scratch.mkdir()
    assert _copy_chief_state(chief, scratch) is False  # a new run: nothing to resume
    (chief / "backup" / "epoch-0003").mkdir(parents=True)
    (chief / "backup" / "epoch-0003" / "epoch.json").write_text('{"epoch": 3}')
    (chief / "history.csv").write_text("epoch,loss\n0,1.0\n")
    (chief / "checkpoint.json").write_text('{"epoch": 1, "value": 40.0}')
    assert _copy_chief_state(chief, scratch) is True
    assert (scratch / "backup" / "epoch-0003" / "epoch.json").read_text() == '{"epoch": 3}'
    assert (scratch / "history.csv").read_text() == "epoch,loss\n0,1.0\n"
    assert (scratch / "checkpoint.json").exists() and not (scratch / "model.keras").exists()
