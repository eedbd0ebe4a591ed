"""The axial head (axis + head–tail sense), its loss, and the two-peak likelihood of the burst fit."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import random_batch

from edkeras import pointing as L
from edkeras import pointing as P
from edkeras.cli import main as cli_main
from edkeras.core import vmf
from edkeras.core.schema import ConfigError, from_dict
from edkeras.events.eventfile import write_events
from edkeras.reco.config import RunConfig
from edkeras.reco.metrics import sense_calibration
from edkeras.reco.predictions import Predictions, load_predictions, save_predictions

# --------------------------------------------------------------------------- the loss


def test_axial_sense_loss_separates_axis_and_sense():
    from edkeras.reco.losses import axial_sense, get_loss

    t = np.tile([[0.0, 0.0, 1.0]], (5, 1)).astype("float32")
    y = np.array(
        [
            [0, 0, 1, 8],  # right axis, sure of the right sense
            [0, 0, -1, -8],  # right axis, raw axis +z but believed −z: sure of the wrong sense
            [0, 0, -1, 8],  # right axis, raw axis −z believed: wrong sense, sure
            [1, 0, 0, 0],  # axis at 90°, no idea of the sense
            [0, 0.6, 0.8, 0],  # axis at 36.9°, no idea
        ],
        dtype="float32",
    )
    loss = np.asarray(axial_sense(t, y))
    bce = np.log1p(np.exp(-8.0))
    assert loss[0] == pytest.approx(bce, abs=1e-3)
    assert loss[1] == pytest.approx(8.0 + bce, abs=1e-3) and loss[2] == pytest.approx(8.0 + bce, abs=1e-3)
    assert loss[3] == pytest.approx(np.pi / 2 + np.log(2), abs=1e-3)
    assert loss[4] == pytest.approx(np.arccos(0.8) + np.log(2), abs=1e-3)
    # the axis term does not see the sign of the direction; the sense term does
    flipped = y.copy()
    flipped[:, :3] *= -1
    flipped[:, 3] *= -1  # the same raw axis, the opposite belief
    axis_only = np.asarray(axial_sense(t, y, sense_weight=0.0))
    assert np.allclose(np.asarray(axial_sense(t, flipped, sense_weight=0.0)), axis_only, atol=1e-5)
    assert np.allclose(np.asarray(axial_sense(t, flipped))[:3], loss[[1, 0, 0]], atol=1e-4)
    sin2 = np.asarray(axial_sense(t, y, axis_loss="sin2"))
    assert sin2[4] == pytest.approx(0.36 + np.log(2), abs=1e-3)
    with pytest.raises(Exception, match="axis_loss"):
        get_loss("axial_sense", axis_loss="cos")
    with pytest.raises(Exception, match="sense_weight"):
        get_loss("axial_sense", sense_weight=-1)
    # with the sense vector (columns 4–6) its angle to the truth is added
    with_v = np.concatenate([y, np.tile([[0.0, 0.6, 0.8]], (5, 1)).astype("float32")], axis=1)
    assert np.allclose(np.asarray(axial_sense(t, with_v)), loss + np.arccos(0.8), atol=1e-4)
    assert np.allclose(np.asarray(axial_sense(t, with_v, direction_weight=0.0)), loss, atol=1e-5)


def test_sense_direction_layer_turns_the_axis_and_keeps_the_axis_free_of_the_sense_gradient():
    import keras
    import tensorflow as tf

    from edkeras.reco.models.layers import SenseDirection

    axis = tf.constant([[0.0, 0.0, 1.0], [0.6, 0.8, 0.0]])
    sense = tf.constant([[0.0, 0.0, -3.0], [1.0, 0.0, 0.0]])
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(axis)
        tape.watch(sense)
        out = SenseDirection()([axis, sense])
        logit_sum = keras.ops.sum(out[:, 3])
    out = np.asarray(out)
    assert np.allclose(out[0], [0, 0, -1, -3, 0, 0, -1]) and np.allclose(out[1], [0.6, 0.8, 0, 0.6, 1, 0, 0])
    assert np.allclose(tape.gradient(logit_sum, axis), 0.0)  # the sense loss cannot move the axis
    assert np.allclose(tape.gradient(logit_sum, sense), np.asarray(axis))


def test_config_pairs_the_axial_head_with_its_loss():
    base = {"name": "a", "model": {"name": "compact", "head": "axial"}}
    cfg = from_dict(RunConfig, {**base, "training": {"loss": "axial_sense"}})
    assert cfg.model.head == "axial"
    with pytest.raises(ConfigError, match="does not fit model.head 'axial'; use one of axial_sense"):
        from_dict(RunConfig, {**base, "training": {"loss": "vmf_nll"}})
    with pytest.raises(ConfigError, match="does not fit model.head 'vmf'"):
        from_dict(RunConfig, {"name": "b", "model": {"head": "vmf"}, "training": {"loss": "axial_sense"}})


def test_training_an_axial_run_writes_flip_probabilities(tmp_path):
    """One training path: the axial head trains, saves, and its predictions carry P(sense wrong)."""
    from edkeras.reco.evaluate import evaluate
    from edkeras.reco.training import train

    batch = random_batch(80, shape=(32, 16), seed=4)
    events = write_events(tmp_path / "events.h5", batch, source={"generator": "tests"})
    cfg = from_dict(RunConfig, {
        "name": "axial",
        "data": {"files": [str(events)], "val_fraction": 0.25, "test_fraction": 0.25},
        "model": {"name": "compact", "head": "axial", "options": {"filters": 4, "depth": 1, "dense_units": 8}},
        "training": {"loss": "axial_sense", "epochs": 2, "batch_size": 16, "bootstrap_samples": 20,
                     "mixed_precision": False},
        "augmentation": {"mirror": True},
    })
    res = train(cfg, run_dir=tmp_path / "run", verbose=0)
    test = load_predictions(tmp_path / "run" / "predictions_test.npz")
    assert test.flip_probability is not None and test.kappa is None
    assert np.all((test.flip_probability >= 0) & (test.flip_probability <= 0.5))
    assert np.allclose(np.linalg.norm(test.predictions, axis=1), 1.0, atol=1e-5)
    sense = res.metrics["test"]["sense"]
    assert sum(b["n"] for b in sense["bins"]) == len(test)
    again = evaluate(tmp_path / "run", events, out=tmp_path / "again.npz")
    p = load_predictions(tmp_path / "again.npz")
    assert p.flip_probability is not None and "sense" in again["metrics"]


def test_sense_calibration_counts_wrong_hemispheres():
    f = np.array([0.05, 0.05, 0.45, 0.45, 0.45, 0.45])
    err = np.array([10.0, 100.0, 170.0, 20.0, 95.0, 30.0])
    out = sense_calibration(f, err)
    assert out["observed"] == pytest.approx(3 / 6)
    assert out["bins"][0]["observed"] == pytest.approx(0.5) and out["bins"][0]["n"] == 2
    assert out["bins"][4]["observed"] == pytest.approx(0.5) and out["bins"][4]["predicted"] == pytest.approx(0.45)
    with pytest.raises(Exception, match="flip_probability"):
        sense_calibration(np.array([0.1, 1.2]), np.array([1.0, 2.0]))


# --------------------------------------------------------------------------- tables and bursts

SN = np.array([0.3, -0.5, 0.81]) / np.linalg.norm([0.3, -0.5, 0.81])


def _axial_events(n, rng, nu=SN, report=lambda f: f):
    """Electrons around the neutrino (vMF κ 8), axes around the electrons (κ 60), the sense wrong
    with a per-event probability f ~ U(0, 0.5) that the "network" reports as ``report(f)``."""
    e = vmf.sample(nu, 8.0, n, rng)
    axis = np.stack([vmf.sample(v, 60.0, 1, rng)[0] for v in e])
    f = rng.uniform(0.0, 0.5, n)
    wrong = rng.random(n) < f
    d = np.where(wrong[:, None], -axis, axis)
    return Predictions(
        predictions=d, true_directions=e, energies=rng.uniform(8, 40, n), nu_directions=np.tile(nu, (n, 1)),
        interaction=np.ones(n, dtype=np.int8), flip_probability=report(f),
    )


def test_oriented_table_calibrates_the_flip_probability_and_round_trips(tmp_path):
    rng = np.random.default_rng(3)
    half = _axial_events(20000, rng, report=lambda f: f / 2)  # the network is over-confident by 2×
    table = L.build_table(half, method="kde", per_interaction=False)
    assert table.sense == "oriented"
    for f in (0.05, 0.1, 0.2):
        assert table.calibrated_flip(f)[0] == pytest.approx(2 * f, abs=0.05)
    # the rows hold no backward peak: every direction was turned to its true sense
    assert table.pdf(np.array([-0.95]), np.array([20.0]))[0] < 0.05 * table.pdf(np.array([0.95]), np.array([20.0]))[0]
    plain = L.build_table(half, method="kde", per_interaction=False, sense="predicted")
    assert plain.sense == "predicted" and plain.flip_calibration is None
    assert plain.pdf(np.array([-0.95]), np.array([20.0]))[0] > 0.2 * plain.pdf(np.array([0.95]), np.array([20.0]))[0]
    path = L.save_table(table, tmp_path / "t.npz")
    back = L.load_table(path)
    assert back.sense == "oriented" and np.allclose(back.flip_calibration, table.flip_calibration)
    assert L.load_table(L.save_table(plain, tmp_path / "p.npz")).sense == "predicted"
    # broken files and inputs
    with np.load(path) as z:
        data = dict(z)
    np.savez(tmp_path / "bad.npz", **{**data, "sense": np.asarray("sideways")})
    with pytest.raises(L.TableError, match="key 'sense'"):
        L.load_table(tmp_path / "bad.npz")
    np.savez(tmp_path / "bad2.npz", **{**data, "flip_calibration": np.zeros((2, 3))})
    with pytest.raises(L.TableError, match="flip_calibration"):
        L.load_table(tmp_path / "bad2.npz")
    no_flips = Predictions(predictions=half.predictions, energies=half.energies, nu_directions=half.nu_directions)
    with pytest.raises(L.TableError, match="'flip_probability' is missing"):
        L.build_table(no_flips, sense="oriented")
    no_truth = Predictions(predictions=half.predictions, energies=half.energies, nu_directions=half.nu_directions,
                           flip_probability=half.flip_probability)
    with pytest.raises(L.TableError, match="true_directions"):
        L.build_table(no_truth)


def test_burst_likelihood_weighs_the_two_peaks_by_the_flip_probability():
    rng = np.random.default_rng(5)
    table = L.build_table(_axial_events(20000, rng), method="kde", per_interaction=False)
    burst = _axial_events(6, rng)
    f = burst.flip_probability
    like = P.BurstLikelihood(burst.predictions, burst.energies, table, flip_probability=f)
    trial = np.array([0.2, 0.4, -0.89])
    trial /= np.linalg.norm(trial)
    c = burst.predictions @ trial
    g = table.calibrated_flip(f)
    by_hand = np.sum(np.log((1 - g) * table.pdf(c, burst.energies) + g * table.pdf(-c, burst.energies)))
    assert like(trial, exact=True) == pytest.approx(by_hand, rel=2e-3)
    assert like(trial) == pytest.approx(by_hand, rel=5e-3)
    # the tables and the inputs must agree on how flips are treated
    with pytest.raises(P.PointingError, match="needs each event's flip probability"):
        P.BurstLikelihood(burst.predictions, burst.energies, table)
    plain = L.build_table(_axial_events(5000, rng), method="kde", per_interaction=False, sense="predicted")
    with pytest.raises(P.PointingError, match="sense 'predicted'"):
        P.BurstLikelihood(burst.predictions, burst.energies, plain, flip_probability=f)
    with pytest.raises(P.PointingError, match="flip probabilities must be 6 values"):
        P.BurstLikelihood(burst.predictions, burst.energies, table, flip_probability=f[:3])


def test_per_event_flip_probabilities_sharpen_the_burst_likelihood():
    """Events that know their sense weigh more: ln L(truth) − ln L(5° away) of one large burst is
    larger with the two-peak rows than with rows that average the flips of all events."""
    rng = np.random.default_rng(8)
    cal = _axial_events(20000, rng)
    oriented = L.build_table(cal, method="kde", per_interaction=False)
    plain = L.build_table(cal, method="kde", per_interaction=False, sense="predicted")
    burst = _axial_events(4000, rng)
    off = []
    for k in range(8):  # 8 directions 5° from the truth
        axis = np.cross(SN, [np.cos(k), np.sin(k), 0.3])
        axis /= np.linalg.norm(axis)
        off.append(np.cos(np.radians(5)) * SN + np.sin(np.radians(5)) * axis)
    off = np.array(off)
    two_peak = P.BurstLikelihood(burst.predictions, burst.energies, oriented, flip_probability=burst.flip_probability)
    one_row = P.BurstLikelihood(burst.predictions, burst.energies, plain)
    gain_two = two_peak(SN, exact=True) - np.mean(two_peak(off, exact=True))
    gain_one = one_row(SN, exact=True) - np.mean(one_row(off, exact=True))
    # measured ratios 1.09–1.26 over 4 seeds (f ~ U(0, 0.5)); rows that ignore f give 1
    assert gain_two > 1.05 * gain_one > 0


def test_cli_likelihood_and_point_with_flip_probabilities(tmp_path, capsys):
    rng = np.random.default_rng(9)
    cal = _axial_events(6000, rng)
    burst = _axial_events(300, rng)
    fields = ("predictions", "true_directions", "energies", "nu_directions", "interaction", "flip_probability")
    cal_path = save_predictions(tmp_path / "cal.npz", split="val", **{k: getattr(cal, k) for k in fields})
    burst_path = save_predictions(tmp_path / "burst.npz", split="burst", **{k: getattr(burst, k) for k in fields})
    assert cli_main(["likelihood", str(cal_path), "--out", str(tmp_path / "t.npz"), "--no-per-interaction"]) == 0
    assert "senses oriented" in capsys.readouterr().out
    assert cli_main(["point", str(burst_path), "--tables", str(tmp_path / "t.npz"), "--lattice", "768",
                     "--json"]) == 0
    fit = json.loads(capsys.readouterr().out)
    direction = np.asarray(fit["direction"])
    assert np.degrees(np.arccos(np.clip(direction @ SN, -1, 1))) < 10.0
    assert load_predictions(burst_path).flip_probability is not None


def test_ensembles_refuse_axial_members():
    from edkeras.core.errors import InputError
    from edkeras.reco.ensemble_model import build_ensemble
    from edkeras.reco.models import build_model

    members = [build_model("compact", head="axial", input_shape=(32, 16), filters=4, depth=1, dense_units=8)
               for _ in range(2)]
    with pytest.raises(InputError, match="not the axial head"):
        build_ensemble(members)
