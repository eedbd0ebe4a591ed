"""Predictions files: round trip, the earlier system's files, and clear errors on bad input."""

from __future__ import annotations

import numpy as np
import pytest

from edkeras.core.errors import InputError
from edkeras.reco.predictions import Predictions, load_predictions, save_predictions


def _unit(rng, n):
    v = rng.normal(size=(n, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_round_trip_all_keys_and_angular_errors(tmp_path):
    rng = np.random.default_rng(0)
    n = 50
    truth = _unit(rng, n)
    pred = truth + 0.3 * rng.normal(size=(n, 3))
    pred[0] = truth[0]  # 0°
    pred[1] = -truth[1]  # 180°
    path = save_predictions(
        tmp_path / "p.npz",
        predictions=pred * 3.0,  # not unit: stored normalised
        true_directions=truth,
        energies=rng.uniform(5, 50, n),
        true_energies=rng.uniform(5, 50, n),
        interaction=rng.integers(0, 2, n),
        nu_directions=np.tile([0.0, 0.0, 1.0], (n, 1)),
        event_id=np.arange(100, 100 + n),
        kappa=rng.uniform(1, 100, n),
        split="val",
        run="r1",
    )
    assert path.exists() and not list(tmp_path.glob("*.tmp-*"))
    raw = np.load(path)
    assert {
        "predictions",
        "true_directions",
        "energies",
        "true_energies",
        "angular_errors",
        "interaction",
        "nu_directions",
        "event_id",
        "kappa",
        "split",
        "run",
    } <= set(raw.files)
    p = load_predictions(path)
    assert p.split == "val" and p.run == "r1" and len(p) == n
    np.testing.assert_allclose(np.linalg.norm(p.predictions, axis=1), 1.0, atol=1e-6)
    expected = np.degrees(
        np.arccos(np.clip(np.sum(pred / np.linalg.norm(pred, axis=1, keepdims=True) * truth, 1), -1, 1))
    )
    np.testing.assert_allclose(p.angular_errors, expected, atol=1e-3)
    assert p.angular_errors[0] == pytest.approx(0.0, abs=1e-3)
    assert p.angular_errors[1] == pytest.approx(180.0, abs=1e-3)
    np.testing.assert_array_equal(p.event_id, np.arange(100, 100 + n))


def test_vmf_head_output_splits_kappa(tmp_path):
    rng = np.random.default_rng(1)
    out = np.concatenate([_unit(rng, 5), rng.uniform(1, 9, (5, 1))], axis=1)
    p = load_predictions(save_predictions(tmp_path / "p.npz", predictions=out))
    assert p.predictions.shape == (5, 3)
    np.testing.assert_allclose(p.kappa, out[:, 3], rtol=1e-6)


def test_reads_earlier_val_predictions(tmp_path):
    """The earlier files: predictions, true_directions, energies (reco), metadata (N, 14)."""
    rng = np.random.default_rng(2)
    n = 20
    meta = np.zeros((n, 14), dtype=np.float32)
    meta[:, 3] = np.r_[np.ones(12), np.zeros(8)]  # is_es_interaction
    truth = _unit(rng, n)
    np.savez(
        tmp_path / "val_predictions.npz",
        predictions=(truth + 0.1).astype(np.float32),
        true_directions=truth.astype(np.float32),
        energies=rng.uniform(5, 70, n).astype(np.float32),
        metadata=meta,
    )
    p = load_predictions(tmp_path / "val_predictions.npz")
    assert p.split == "" and p.metadata.shape == (n, 14)
    np.testing.assert_array_equal(p.interaction, np.r_[np.ones(12), np.zeros(8)].astype(np.int8))
    assert p.angular_errors is not None and np.all(p.angular_errors >= 0)
    assert p.nu_directions is None and p.kappa is None


def test_unknown_truth_rows_give_nan_errors(tmp_path):
    rng = np.random.default_rng(3)
    truth = _unit(rng, 4)
    truth[2] = np.nan
    p = load_predictions(
        save_predictions(tmp_path / "p.npz", predictions=_unit(rng, 4), true_directions=truth)
    )
    assert np.isnan(p.angular_errors[2]) and np.isfinite(p.angular_errors[[0, 1, 3]]).all()


def test_zero_length_direction_names_event_index(tmp_path):
    pred = np.eye(3)[[0, 1, 2, 0]].astype(float)
    pred[2] = 0.0
    with pytest.raises(InputError, match="event index 2"):
        save_predictions(tmp_path / "p.npz", predictions=pred)
    np.savez(tmp_path / "bad.npz", predictions=pred)
    with pytest.raises(InputError, match=r"bad\.npz.*event index 2"):
        load_predictions(tmp_path / "bad.npz")
    assert not (tmp_path / "p.npz").exists()


def test_bad_files_name_file_and_key(tmp_path):
    np.savez(tmp_path / "nokey.npz", foo=np.zeros(3))
    with pytest.raises(InputError, match=r"nokey\.npz.*'predictions'"):
        load_predictions(tmp_path / "nokey.npz")
    np.savez(tmp_path / "shape.npz", predictions=np.ones((4, 3)), energies=np.ones(5))
    with pytest.raises(InputError, match=r"shape\.npz.*'energies'"):
        load_predictions(tmp_path / "shape.npz")
    np.savez(
        tmp_path / "obj.npz", predictions=np.ones((2, 3)), metadata=np.array([{"a": 1}, None], dtype=object)
    )
    with pytest.raises(InputError, match=r"obj\.npz.*'metadata'"):
        load_predictions(tmp_path / "obj.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError, match=r"junk\.npz"):
        load_predictions(tmp_path / "junk.npz")
    with pytest.raises(InputError, match="no such"):
        load_predictions(tmp_path / "missing.npz")
    np.savez(tmp_path / "code.npz", predictions=np.ones((2, 3)), interaction=np.array([1, 7]))
    with pytest.raises(InputError, match=r"'interaction'.*event index 1"):
        load_predictions(tmp_path / "code.npz")


def test_select_and_concatenate():
    rng = np.random.default_rng(4)
    a = Predictions(predictions=_unit(rng, 3), energies=np.ones(3), split="val", run="a")
    b = Predictions(
        predictions=_unit(rng, 2), energies=np.full(2, 2.0), kappa=np.ones(2), split="val", run="b"
    )
    c = Predictions.concatenate([a, b])
    assert len(c) == 5 and c.kappa is None and c.split == "val" and c.run == "a+b"
    np.testing.assert_array_equal(c.energies, [1, 1, 1, 2, 2])
    assert len(c.select(c.energies > 1)) == 2
