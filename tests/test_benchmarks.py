"""Tests of the quality benchmark and its oracle (``benchmarks/quality.py``, ``benchmarks/oracle.py``).

The oracle must return the true direction on straight tracks, use only the primary
electron's deposits along its first L cm, and ride on a data set identical to what
``edkeras simulate`` writes; ``quality.py --smoke`` must produce every entry it was asked
for, measured on the same test events, with finite θ68.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from conftest import load_benchmark

oracle = load_benchmark("oracle")
quality = load_benchmark("quality")


def _angles(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    from edkeras.reco.metrics import angular_error_deg

    return angular_error_deg(a, b)


# ----------------------------------------------------------------------------- oracle
def test_oracle_uses_primary_deposits_within_the_path_length() -> None:
    # event 0: primary along +x for 1 cm (steps of 0.1 cm), then turning to +y; a heavy
    # secondary deposit along +z that must be ignored. event 1: primary along -z only.
    xs = np.arange(1, 11) * 0.1
    turn = np.stack([np.full(10, 1.0), np.arange(1, 11) * 0.1, np.zeros(10)], axis=1)
    pos0 = np.concatenate([np.stack([xs, 0 * xs, 0 * xs], axis=1), turn, [[0.0, 0.0, 0.5]]])
    prim0 = np.r_[np.ones(20, bool), False]
    en0 = np.r_[np.ones(20), 100.0]
    pos1 = np.stack([0 * xs, 0 * xs, -xs], axis=1) + np.array([5.0, 5.0, 5.0])
    event = np.r_[np.zeros(21, int), np.ones(10, int)]
    pos = np.concatenate([pos0, pos1])
    energy = np.r_[en0, np.ones(10)]
    primary = np.r_[prim0, np.ones(10, bool)]
    vertex = np.array([[0.0, 0.0, 0.0], [5.0, 5.0, 5.0]])
    d1, n1 = oracle.oracle_directions(event, pos, energy, primary, vertex, 1.0 + 1e-9)
    np.testing.assert_allclose(d1, [[1, 0, 0], [0, 0, -1]], atol=1e-12)
    assert list(n1) == [10, 10]
    d2, n2 = oracle.oracle_directions(event, pos, energy, primary, vertex, 2.0 + 1e-9)
    assert n2[0] == 20 and d2[0, 1] > 0.2 and d2[0, 2] == 0.0  # the turn counts, the secondary never
    # an event with no deposit has no direction
    d3, n3 = oracle.oracle_directions(event[:21], pos[:21], energy[:21], primary[:21], np.zeros((2, 3)), 1.0)
    assert n3[1] == 0 and np.isnan(d3[1]).all()
    with pytest.raises(ValueError, match="length_cm"):
        oracle.oracle_directions(event, pos, energy, primary, vertex, 0.0)


def test_oracle_is_exact_on_straight_gun_tracks_and_degrades_with_scattering() -> None:
    from edkeras.events.sim import SimConfig, TransportConfig, simulate_block

    straight = TransportConfig(
        multiple_scattering=False,
        single_scatter_tail=False,
        loss_fluctuations=False,
        bremsstrahlung=False,
        delta_rays=False,
        photons=False,
    )
    cfg = SimConfig(gun=True, energy_range_mev=(5.0, 50.0), transport=straight)
    batch, det = simulate_block(40, cfg, *oracle.block_rngs(1, 0)[:2])
    dep = det.deposits
    for length in oracle.ORACLE_LENGTHS_CM:
        d, n = oracle.oracle_directions(dep.event, dep.pos, dep.energy, dep.primary, batch.vertex, length)
        assert (n > 0).all()
        assert _angles(d, batch.direction).max() < 0.01
    # full physics: scattering bends the first centimetres, more over 2 cm than over 1 cm
    batch, det = simulate_block(200, SimConfig(channel="es"), *oracle.block_rngs(2, 0)[:2])
    dep = det.deposits
    med = {}
    for length in (1.0, 2.0):
        d, _ = oracle.oracle_directions(dep.event, dep.pos, dep.energy, dep.primary, batch.vertex, length)
        med[length] = float(np.median(_angles(d, batch.direction)))
    assert 2.0 < med[1.0] < med[2.0] < 40.0


def test_simulate_with_oracle_writes_the_file_edkeras_simulate_writes(tmp_path: Path) -> None:
    from edkeras.events.eventfile import open_events
    from edkeras.events.sim import SimConfig, simulate

    cfg = SimConfig(channel="es", block_size=16)
    path = tmp_path / "es.h5"
    arrays = oracle.simulate_with_oracle(path, 40, seed=3, config=cfg)
    ref = simulate(40, seed=3, config=cfg)
    with open_events(path) as f:
        got = f.read()
        source = f.source
    for p in "UVX":
        np.testing.assert_array_equal(getattr(got, p), getattr(ref, p))
    np.testing.assert_array_equal(got.direction, ref.direction)
    np.testing.assert_array_equal(got.event_id, ref.event_id)
    assert source["seed"] == 3 and source["n_events"] == 40 and source["config"]["channel"] == "es"
    saved = oracle.read_oracle(path)
    np.testing.assert_array_equal(saved["event_id"], ref.event_id)
    for length in oracle.ORACLE_LENGTHS_CM:
        key = oracle.oracle_key(length)
        np.testing.assert_array_equal(saved[key], arrays[key])
        assert saved[key].shape == (40, 3) and np.isfinite(saved[key]).all()
    with pytest.raises(FileExistsError):
        oracle.simulate_with_oracle(path, 40, seed=3, config=cfg)


# ----------------------------------------------------------------------------- quality
def test_parse_spec() -> None:
    from edkeras.core.errors import InputError

    s = quality.parse_spec("residual_v18+mirror+vmf")
    assert (s.kind, s.builder, s.mirror, s.vmf) == ("network", "residual_v18", True, True)
    assert quality.parse_spec("oracle").kind == "oracle"
    for bad in ("resnet", "compact+flip", "compact+mirror+mirror", "baseline_v15+mirror"):
        with pytest.raises(InputError):
            quality.parse_spec(bad)


def test_run_config_gives_every_network_the_same_budget(tmp_path: Path) -> None:
    b = quality.Budget(
        n_train=4000,
        n_val=1000,
        n_test=5000,
        epochs=4,
        batch_size=64,
        learning_rate=1e-3,
        seed=0,
        data_seed=1,
        scale="cpu",
        v15_scale=0.25,
        smoke=False,
        n_boot=100,
        ensemble_seeds=3,
        oracle_lengths=(1.0, 2.0),
    )
    f = tmp_path / "d.h5"
    v15 = quality.run_config(quality.parse_spec("baseline_v15"), b, f)
    cm = quality.run_config(quality.parse_spec("compact+mirror+vmf"), b, f, seed=2)
    for c in (v15, cm):
        assert c.training.epochs == 4 and c.training.early_stopping_patience is None
        assert c.data.files == (str(f),) and c.data.test_fraction == 0.5 and c.data.val_fraction == 0.1
    assert v15.training.clipnorm == 0.5 and v15.training.loss == "angular" and not v15.augmentation.mirror
    assert v15.model.options == {"filters": 16}
    assert cm.model.head == "vmf" and cm.training.loss == "vmf_nll" and cm.augmentation.mirror
    assert cm.name == "compact+mirror+vmf.s2" and cm.training.seed == 2


def test_quality_smoke_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, md = tmp_path / "q.json", tmp_path / "q.md"
    rc = quality.main(
        [
            "--smoke",
            "--models",
            "classical",
            "compact",
            "ensemble",
            "oracle",
            "--runs-dir",
            str(tmp_path / "runs"),
            "--data-dir",
            str(tmp_path / "data"),
            "--out",
            str(out),
            "--markdown",
            str(md),
        ]
    )
    assert rc == 0
    printed = json.loads(capsys.readouterr().out)  # stdout holds the JSON and nothing else
    saved = json.loads(out.read_text())
    assert printed["entries"] == saved["entries"]
    names = [e["name"] for e in saved["entries"]]
    assert names == ["classical", "classical+ht", "compact", "ensemble", "oracle_1cm", "oracle_2cm"]
    assert saved["data"]["events"] == {"train": 240, "val": 60, "test": 200}
    for e in saved["entries"]:
        assert math.isfinite(e["theta68"]) and 0.0 <= e["theta68"] <= 180.0, e["name"]
        lo, hi = e["theta68_ci"]
        assert lo <= e["theta68"] <= hi
        assert e["n"] == 200  # the same test events for every entry
        assert sum(e["by_energy"]["n"]) == 200
        assert 0.0 <= e["flip_fraction"] <= 1.0
    by = {e["name"]: e for e in saved["entries"]}
    assert by["ensemble"]["members"] == ["compact", "compact.s1"]
    assert by["compact"]["params"] > 0 and by["compact"]["epochs_run"] == 1
    # the oracle knows the truth: far better than an untrained tiny network or the classical fit
    assert by["oracle_1cm"]["theta68"] < 30.0 < by["compact"]["theta68"]
    text = md.read_text()
    assert "| oracle_1cm |" in text and "| ensemble |" in text and "per bin of reconstructed energy" in text
    # a second call reuses the finished runs (no retraining) and gives the same numbers
    rc = quality.main(
        [
            "--smoke",
            "--models",
            "compact",
            "--runs-dir",
            str(tmp_path / "runs"),
            "--data-dir",
            str(tmp_path / "data"),
        ]
    )
    again = json.loads(capsys.readouterr().out)
    assert rc == 0 and again["entries"][0]["theta68"] == by["compact"]["theta68"]


def test_learning_curve_smoke_run_same_test_events_and_reuse(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lc = load_benchmark("learning_curve")
    args = ["--pool-events", "300", "--entries", "vmf:1", "axial:1::batch_size=32", "--data-dir", str(tmp_path / "d"),
            "--runs-dir", str(tmp_path / "runs"), "--bootstrap", "20", "--out", str(tmp_path / "lc.json"),
            "--markdown", str(tmp_path / "lc.md")]
    assert lc.main(args) == 0
    first = json.loads(capsys.readouterr().out)
    vmf, axial = first["entries"]
    assert vmf["n_train"] == axial["n_train"] == 210 and vmf["sample_passes"] == 210
    assert vmf["test_all"]["n"] == axial["test_all"]["n"] == 45  # the same test events
    assert axial["changes"] == {"batch_size": 32} and "sense" in axial and "sense" not in vmf
    assert 0.0 <= axial["es_sense_wrong"] <= 1.0 and axial["es_axis_median"] <= 90.0
    table = (tmp_path / "lc.md").read_text().splitlines()
    assert len(table) == 4 and table[2].startswith("| `vmf:1` | 210 |")
    assert lc.main(args) == 0  # finished runs are reused, not retrained
    again = json.loads(capsys.readouterr().out)
    assert again["entries"][0]["test_es"] == vmf["test_es"] and again["entries"][0]["train_wall_s"] is None
    with pytest.raises(SystemExit, match="unknown key 'lr'"):
        lc.parse_entry("vmf:2::lr=0.1")
    with pytest.raises(SystemExit, match="head must be"):
        lc.parse_entry("kappa:2")


@pytest.mark.slow
def test_fault_injection_benchmark_smoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    faults = load_benchmark("faults")
    assert faults.main(["--kills", "3", "--inputs", "8", "--work", str(tmp_path / "f")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["inputs"]["cases"] == 8 and out["kills"]["cases"] == 3
    for part in ("inputs", "kills"):
        counts = ("tracebacks", "half_written", "lost_epochs", "rerun_failed", "wrong_exit", "file_not_named",
                  "output_left")  # not "finished_before_kill": a signal that came too late is no fault
        bad = {k: v for k, v in out[part].items() if k in counts and v}
        assert not bad, (part, bad, out[part]["failures"])


def test_pointing_bias_splits_a_known_bias_from_the_scatter(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A direction whose events are all turned by 6° is fitted 6° off (bias), the untouched one is not."""
    from edkeras.core.sphere import fibonacci_lattice
    from edkeras.reco.predictions import save_predictions

    bench = load_benchmark("pointing_bias")
    rng = np.random.default_rng(3)

    def events(nu: np.ndarray, turn_deg: float = 0.0) -> dict:
        n = len(nu)
        es = np.arange(n) % 2 == 1
        d = np.where(es[:, None], 12.0 * nu + rng.normal(size=(n, 3)), rng.normal(size=(n, 3)))
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        a = np.radians(turn_deg)  # a rotation about z by turn_deg
        d = d @ np.array([[np.cos(a), np.sin(a), 0], [-np.sin(a), np.cos(a), 0], [0, 0, 1]])
        return {"predictions": d, "energies": rng.uniform(8, 40, n), "nu_directions": nu, "interaction": es.astype(int)}

    iso = fibonacci_lattice(8000)[rng.permutation(8000)]
    cal = save_predictions(tmp_path / "cal.npz", **events(iso))
    a, b = np.array([1.0, 0.0, 0.0]), np.array([0.0, 0.0, 1.0])  # the turn about z moves a, not b
    pa, pb = events(np.tile(a, (1600, 1)), turn_deg=6.0), events(np.tile(b, (1600, 1)))
    pool = save_predictions(tmp_path / "pool.npz", **{k: np.concatenate([pa[k], pb[k]]) for k in pa})
    assert bench.main(["--pool", str(pool), "--calibration", str(cal), "--bursts", "12", "--es", "150",
                       "--cc", "150", "--degrees", "1"]) == 0
    out = json.loads(capsys.readouterr().out)["tables"]["degree 1"]
    by_dir = {tuple(np.round(d["direction"])): d for d in out["per_direction"]}
    turned, kept = by_dir[(1.0, 0.0, 0.0)], by_dir[(0.0, 0.0, 1.0)]
    assert 4.5 < turned["bias_deg"] < 7.5 and kept["bias_deg"] < 2.0
    assert turned["scatter_rms_deg"] < 4.0 and out["theta68"] > 4.0
