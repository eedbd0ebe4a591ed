"""Spherical mean, ensemble spread, membership, and the saved Keras ensemble."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from edkeras.core import vmf
from edkeras.core.errors import InputError
from edkeras.reco.ensembles import (
    bootstrap_membership,
    combine_members,
    kappa_from_resultant,
    kfold_membership,
    mean_resultant_length,
    spherical_mean,
    spread_kappa,
)

S2 = np.sqrt(0.5)


def test_spherical_mean_known_answers() -> None:
    np.testing.assert_allclose(spherical_mean([[1, 0, 0], [0, 1, 0]]), [S2, S2, 0.0])
    # rows are normalised first: a long vector does not dominate
    np.testing.assert_allclose(spherical_mean([[5, 0, 0], [0, 0.1, 0]]), [S2, S2, 0.0])
    # weights (e.g. κ): (3·x̂ + ŷ)/|…|
    np.testing.assert_allclose(
        spherical_mean([[1, 0, 0], [0, 1, 0]], [3.0, 1.0]), np.array([3, 1, 0]) / np.sqrt(10)
    )
    # (M, N, 3) with per-event weights, and the member axis second
    d = np.array([[[1, 0, 0], [0, 0, 1]], [[0, 1, 0], [0, 0, 1]]], dtype=float)  # (M=2, N=2, 3)
    out = spherical_mean(d, weights=[[1.0, 1.0], [0.0, 5.0]])
    np.testing.assert_allclose(out, [[1, 0, 0], [0, 0, 1]], atol=1e-12)
    np.testing.assert_allclose(spherical_mean(np.swapaxes(d, 0, 1), axis=1), spherical_mean(d))
    # identical members: the mean is the member
    u = np.array([0.2, -0.3, 0.9]) / np.linalg.norm([0.2, -0.3, 0.9])
    np.testing.assert_allclose(spherical_mean(np.stack([u, u, u])), u)


def test_spherical_mean_antipodal() -> None:
    anti = np.array([[[1.0, 0, 0], [0, 0, 1]], [[-1.0, 0, 0], [0, 0, 1]]])  # event 0 cancels
    with pytest.raises(InputError, match="event 0 has no mean direction"):
        spherical_mean(anti)
    nan = spherical_mean(anti, on_degenerate="nan")
    assert np.isnan(nan[0]).all() and np.allclose(nan[1], [0, 0, 1])
    np.testing.assert_allclose(spherical_mean(anti, on_degenerate="first")[0], [1, 0, 0])
    # unequal weights break the tie towards the heavier member
    np.testing.assert_allclose(spherical_mean([[1, 0, 0], [-1, 0, 0]], [2.0, 1.0]), [1, 0, 0])
    with pytest.raises(InputError, match="on_degenerate"):
        spherical_mean(anti, on_degenerate="zero")


def test_spread_kappa_matches_the_scatter() -> None:
    for k in (1.0, 10.0, 100.0, 1000.0):
        assert kappa_from_resultant(vmf.mean_cos(k)) == pytest.approx(k, rel=0.05)
    assert kappa_from_resultant(1.0) == 1e6
    rng = np.random.default_rng(0)
    members = vmf.sample([0, 0, 1], 50.0, 4000, rng).reshape(400, 10, 3).transpose(1, 0, 2)  # M=10, N=400
    r = mean_resultant_length(members)
    assert r.shape == (400,)
    k = spread_kappa(members)
    # for M members from a vMF(κ), 2κM(1 − R̄) ~ χ²(2(M − 1)), so E[1/κ̂] ≈ E[1 − R̄] = (M − 1)/(Mκ)
    assert np.mean(1.0 / k) == pytest.approx(9 / (10 * 50.0), rel=0.05)
    # the spread does not depend on the frame (swap two axes: a reflection)
    np.testing.assert_allclose(spread_kappa(members[:, :, [0, 2, 1]]), k, rtol=1e-9)
    with pytest.raises(InputError, match="at least 2 members"):
        spread_kappa(members[:1])


def test_combine_members_modes() -> None:
    a = np.array([[1.0, 0, 0, 10.0]])
    b = np.array([[0.0, 1, 0, 30.0]])
    only_dir = combine_members([a[:, :3], b[:, :3]])
    assert only_dir.shape == (1, 4)  # auto → spread κ for direction members
    np.testing.assert_allclose(only_dir[0, :3], [S2, S2, 0])
    r = np.sqrt(0.5)
    np.testing.assert_allclose(only_dir[0, 3], kappa_from_resultant(r))
    assert combine_members([a[:, :3], b[:, :3]], kappa="none").shape == (1, 3)
    members = combine_members([a, b], kappa="members")
    assert members[0, 3] == pytest.approx(20.0)
    comb = combine_members([a, b])  # auto → combined
    assert comb[0, 3] == pytest.approx(1.0 / (0.5 * (1 / 10 + 1 / 30) + 1 / kappa_from_resultant(r)))
    weighted = combine_members([a, b], weighting="kappa", kappa="none")
    np.testing.assert_allclose(weighted[0], np.array([10, 30, 0]) / np.sqrt(1000))
    with pytest.raises(InputError, match="needs vMF members"):
        combine_members([a[:, :3], b[:, :3]], weighting="kappa")
    with pytest.raises(InputError, match="at least 2 members"):
        combine_members([a])


def test_bootstrap_membership() -> None:
    ids = np.arange(1000, 1500)
    m = bootstrap_membership(ids, 4, seed=3)
    again = bootstrap_membership(ids[::-1], 4, seed=3)
    assert len(m) == 4
    for x, y in zip(m, again):
        np.testing.assert_array_equal(x.train_ids, y.train_ids)
        assert x.seed == y.seed
    for x in m:
        assert x.train_ids.size == 500
        assert np.isin(x.train_ids, ids).all()
        assert np.unique(x.train_ids).size < 500  # with replacement
        np.testing.assert_array_equal(np.union1d(np.unique(x.train_ids), x.holdout_ids), ids)
        assert 0.3 < x.holdout_ids.size / 500 < 0.44  # ≈ 1/e out of bag
    assert not np.array_equal(m[0].train_ids, m[1].train_ids)
    assert len({x.seed for x in m}) == 4
    other = bootstrap_membership(ids, 4, seed=4)
    assert not np.array_equal(other[0].train_ids, m[0].train_ids)
    with pytest.raises(InputError, match="unique"):
        bootstrap_membership([1, 1, 2], 2)


def test_kfold_membership() -> None:
    ids = np.arange(103)
    folds = kfold_membership(ids, 5, seed=1)
    holdouts = np.concatenate([f.holdout_ids for f in folds])
    np.testing.assert_array_equal(np.sort(holdouts), ids)  # a partition
    for f in folds:
        assert np.intersect1d(f.train_ids, f.holdout_ids).size == 0
        np.testing.assert_array_equal(np.union1d(f.train_ids, f.holdout_ids), ids)
        assert f.holdout_ids.size in (20, 21)
    np.testing.assert_array_equal(kfold_membership(ids, 5, seed=1)[2].holdout_ids, folds[2].holdout_ids)
    assert not np.array_equal(kfold_membership(ids, 5, seed=2)[0].holdout_ids, folds[0].holdout_ids)
    with pytest.raises(InputError, match="k must be"):
        kfold_membership(ids, 1)


# ----------------------------------------------------------------------------- Keras

SHAPE = (16, 8)
HAVE_MODELS = importlib.util.find_spec("edkeras.reco.models") is not None


def _tiny_member(head: str, seed: int):
    """A member from edkeras.reco.models.build_model (or a stand-in with the same names)."""
    import keras

    keras.utils.set_random_seed(seed)
    if HAVE_MODELS:
        from edkeras.reco.models import build_model

        return build_model("compact", head=head, input_shape=SHAPE, filters=4, depth=1, dense_units=8)
    inputs = {n: keras.Input(SHAPE, name=n) for n in ("view_u", "view_v", "view_x")}
    h = keras.layers.Concatenate()([keras.layers.Flatten()(t) for t in inputs.values()])
    d = keras.layers.UnitNormalization(name="direction" if head == "direction" else "unit")(
        keras.layers.Dense(3)(h)
    )
    if head == "vmf":
        k = keras.layers.Dense(1, activation="softplus")(h)
        d = keras.layers.Concatenate(name="direction")([d, k])
    return keras.Model(inputs, {"direction": d}, name="tiny")


def _inputs(n: int = 5) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        name: (rng.random((n, *SHAPE)) * 200).astype("float32") for name in ("view_u", "view_v", "view_x")
    }


def test_ensemble_predicts_saves_and_reloads(tmp_path) -> None:
    import keras

    from edkeras.reco.ensemble_model import Ensemble, build_ensemble, load_ensemble

    members = [_tiny_member("vmf", s) for s in range(3)]
    x = _inputs()
    member_out = [np.asarray(m(x, training=False)["direction"]) for m in members]
    ens = build_ensemble(members, weighting="kappa")
    assert isinstance(ens, Ensemble) and len(ens.members) == 3
    assert [m.name for m in ens.members] == ["member_0", "member_1", "member_2"]
    out = np.asarray(ens(x, training=False)["direction"])
    assert out.shape == (5, 4)
    np.testing.assert_allclose(out, combine_members(member_out, weighting="kappa"), rtol=2e-5, atol=2e-6)
    path = tmp_path / "ensemble.keras"
    ens.save(path)
    again = load_ensemble(path)
    assert isinstance(again, Ensemble)
    np.testing.assert_array_equal(np.asarray(again(x, training=False)["direction"]), out)
    assert again.combiner.get_config()["kappa"] == "combined"
    # plain keras.saving.load_model in safe mode reads it too (classes are registered)
    plain = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(np.asarray(plain(x, training=False)["direction"]), out)


def test_ensemble_of_direction_heads_and_errors() -> None:
    from edkeras.reco.ensemble_model import build_ensemble

    members = [_tiny_member("direction", s) for s in range(2)]
    x = _inputs(3)
    member_out = [np.asarray(m(x, training=False)["direction"]) for m in members]
    spread = np.asarray(build_ensemble(members)(x, training=False)["direction"])
    assert spread.shape == (3, 4)
    np.testing.assert_allclose(spread, combine_members(member_out), rtol=2e-5, atol=2e-6)
    plain = np.asarray(build_ensemble(members, kappa="none")(x, training=False)["direction"])
    np.testing.assert_allclose(np.linalg.norm(plain, axis=1), 1.0, atol=1e-6)
    with pytest.raises(InputError, match="needs vMF members"):
        build_ensemble(members, weighting="kappa")
    with pytest.raises(InputError, match="at least 2 members"):
        build_ensemble(members[:1])


@pytest.mark.skipif(not HAVE_MODELS, reason="edkeras.reco.models is not in the tree yet")
def test_ensemble_of_multitask_members_averages_energy() -> None:
    from edkeras.reco.ensemble_model import build_ensemble

    members = [_tiny_member("multitask", s) for s in range(2)]
    x = _inputs(4)
    outs = [m(x, training=False) for m in members]
    ens_out = build_ensemble(members, kappa="none")(x, training=False)
    assert set(ens_out) == {"direction", "energy", "interaction"}
    np.testing.assert_allclose(
        ens_out["energy"], 0.5 * (np.asarray(outs[0]["energy"]) + np.asarray(outs[1]["energy"])), rtol=1e-5
    )


def test_members_train_on_a_bootstrap_resample_or_all_folds_but_one(tmp_path):
    """data.train_subset: k-fold members leave out disjoint folds; a bootstrap member repeats events; val/test stay."""
    from conftest import random_batch

    from edkeras.core.schema import ConfigError, from_dict
    from edkeras.events.eventfile import write_events
    from edkeras.reco.config import RunConfig
    from edkeras.reco.run_data import prepare_data
    from edkeras.studies.phase import member_config

    path = write_events(tmp_path / "e.h5", random_batch(200, shape=(32, 16), seed=1), source={"generator": "tests"})
    base = from_dict(RunConfig, {"data": {"files": [str(path)]}})
    full = prepare_data(base.data)
    folds = [prepare_data(member_config(base, "kfold", i, 4, seed=7).data) for i in range(4)]
    left_out = [np.setdiff1d(full.selected["train"], f.selected["train"]) for f in folds]
    assert sorted(np.concatenate(left_out).tolist()) == sorted(full.selected["train"].tolist())  # a partition
    for f in folds:
        assert np.array_equal(f.selected["val"], full.selected["val"]) and np.array_equal(f.selected["test"], full.selected["test"])
        assert len(np.unique(f.selected["train"])) == len(f.selected["train"]) < len(full.selected["train"])
    boot = [prepare_data(member_config(base, "bootstrap", i, 3, seed=7).data).selected["train"] for i in range(2)]
    assert len(boot[0]) == len(full.selected["train"]) and len(np.unique(boot[0])) < len(boot[0])  # repeats
    assert np.isin(boot[0], full.selected["train"]).all() and not np.array_equal(boot[0], boot[1])
    assert member_config(base, "seeds", 1, 3) == base
    with pytest.raises(ConfigError, match="data.train_member"):
        member_config(base, "kfold", 4, 4)


@pytest.mark.parametrize("readers", [0, None])
def test_a_bootstrap_member_reads_the_images_of_its_own_events(tmp_path, readers):
    """Repeated rows: every image the dataset and the event file give back belongs to the event of its label."""
    from conftest import random_batch

    from edkeras.core.schema import from_dict
    from edkeras.events.eventfile import open_events, write_events
    from edkeras.reco.config import RunConfig
    from edkeras.reco.dataset import EventDataset
    from edkeras.reco.run_data import prepare_data
    from edkeras.studies.phase import member_config

    batch = random_batch(200, shape=(32, 16), seed=1)
    for plane in "UVX":
        getattr(batch, plane)[:, 0, 0] = batch.event_id  # each image names its event
    path = write_events(tmp_path / "e.h5", batch, source={"generator": "tests"})
    data = prepare_data(member_config(from_dict(RunConfig, {"data": {"files": [str(path)]}}), "bootstrap", 0, 3).data)
    train = data.subset("train")
    assert len(np.unique(data.selected["train"])) < len(data.selected["train"])
    ds = EventDataset(train, 16, readers=readers)
    seen_ids, seen_images = [], []
    for i in range(len(ds)):
        x, _ = ds[i]
        seen_images.append(np.asarray(x["view_u"]).reshape(len(x["view_u"]), -1)[:, 0])
    seen_ids = ds.labels("event_id")
    ds.close()
    np.testing.assert_array_equal(np.concatenate(seen_images), seen_ids)
    with open_events(path) as ev:
        rows = np.sort(train.row)
        np.testing.assert_array_equal(ev.read(rows).U[:, 0, 0], ev.read(rows).event_id)
        assert len(ev.read(rows)) == len(rows)
