"""Model builders: every builder × head builds, trains a step, saves and reloads identically.

Tiny images (32 × 16) and widths keep this fast; one test builds the real-size baseline_v15
(128 × 32) to check its parameter count against the earlier system's 11.0 M, without
training it.
"""

from __future__ import annotations

import io

import keras
import numpy as np
import pytest
import tensorflow as tf

from edkeras.core.errors import InputError
from edkeras.reco.keras_metrics import AngularErrorDeg, VMFConeCoverage
from edkeras.reco.losses import get_loss, multitask_losses
from edkeras.reco.models import (
    HEADS,
    REGISTRY,
    build_model,
    builder_options,
    count_flops,
    plane_attention_model,
    summary_table,
)

SHAPE = (32, 16)
_np = keras.ops.convert_to_numpy
N = 4


def _tiny(name: str) -> dict:
    opts = {"input_shape": SHAPE, "filters": 4, "depth": 1, "dense_units": 8}
    if name == "attention_v19":
        opts.update(token_dim=8, num_heads=2)
    return opts


def _data(rng: np.random.Generator, n: int = N, shape: tuple[int, int] = SHAPE) -> dict[str, np.ndarray]:
    x = {
        f"view_{p}": (rng.random((n, *shape)) * (rng.random((n, *shape)) > 0.7) * 300).astype(np.float32)
        for p in "uvx"
    }
    x["energy"] = rng.uniform(5, 70, (n, 1)).astype(np.float32)
    return x


def _directions(rng: np.random.Generator, n: int = N) -> np.ndarray:
    d = rng.normal(size=(n, 3)).astype(np.float32)
    return d / np.linalg.norm(d, axis=1, keepdims=True)


def _inputs_of(model: keras.Model, x: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    names = {t.name for t in model.inputs}
    return {k: v for k, v in x.items() if k in names}


CASES = [(name, head) for name in sorted(REGISTRY) for head in HEADS]


def _targets(rng: np.random.Generator, head: str) -> dict[str, np.ndarray]:
    y = {"direction": _directions(rng)}
    if head == "multitask":
        y["energy"] = rng.uniform(5, 70, (N, 1)).astype(np.float32)
        y["interaction"] = np.ones((N, 1), np.float32)
    return y


def _losses(head: str) -> dict:
    if head == "multitask":
        return multitask_losses("angular")
    return {"loss": {"direction": get_loss({"vmf": "vmf_nll", "axial": "axial_sense"}.get(head, "angular"))}}


@pytest.mark.parametrize(("name", "head"), CASES)
def test_build_train_save_reload(name: str, head: str, tmp_path) -> None:
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    # Exercise energy conditioning and shared branches on some heads of every builder.
    conditioning = head != "direction"
    shared = head == "vmf"
    model = build_model(
        name, head=head, energy_conditioning=conditioning, shared_branches=shared, **_tiny(name)
    )
    x = _inputs_of(model, _data(rng))
    assert set(x) == {"view_u", "view_v", "view_x"} | ({"energy"} if conditioning else set())
    assert model.name == name

    out = model(x, training=False)
    width = {"vmf": 4, "axial": 7}.get(head, 3)
    assert out["direction"].shape == (N, width)
    np.testing.assert_allclose(np.linalg.norm(_np(out["direction"])[:, :3], axis=1), 1.0, atol=1e-5)
    if head == "vmf":
        assert np.all(_np(out["direction"])[:, 3] > 0)
    if head == "multitask":
        assert set(out) == {"direction", "energy", "interaction"}
        assert out["energy"].shape == (N, 1) and np.all(_np(out["energy"]) > 0)
        p = _np(out["interaction"])
        assert p.shape == (N, 1) and np.all((p >= 0) & (p <= 1))
    else:
        assert set(out) == {"direction"}

    # One training step (plain GradientTape: the eager Keras fit loop is slow on a busy CPU;
    # the compile/fit path is tested per head in test_compiled_training_and_reload).
    y = _targets(rng, head)
    spec = _losses(head)
    weights = spec.get("loss_weights", {})
    before = [_np(w) for w in model.trainable_weights]
    with tf.GradientTape() as tape:
        pred = model(x, training=True)
        total = sum(weights.get(k, 1.0) * loss(y[k], pred[k]) for k, loss in spec["loss"].items())
    grads = tape.gradient(total, model.trainable_weights)
    assert np.isfinite(float(total))
    assert all(g is not None and np.all(np.isfinite(_np(g))) for g in grads)
    keras.optimizers.SGD(0.1).apply(grads, model.trainable_weights)
    changed = [not np.array_equal(b, _np(w)) for b, w in zip(before, model.trainable_weights)]
    assert sum(changed) >= len(changed) - 3, "a training step left most weights unchanged"

    path = tmp_path / f"{name}_{head}.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    a, b = model(x, training=False), reloaded(x, training=False)
    for key in a:
        np.testing.assert_array_equal(_np(a[key]), _np(b[key]))


@pytest.mark.parametrize("head", HEADS)
def test_compiled_training_and_reload(head: str, tmp_path) -> None:
    keras.utils.set_random_seed(1)
    rng = np.random.default_rng(1)
    model = build_model("compact", head=head, **_tiny("compact"))
    x = _inputs_of(model, _data(rng))
    metrics = {}
    if head != "multitask":
        metrics = {
            "direction": [AngularErrorDeg()]
            + ([VMFConeCoverage(0.68), VMFConeCoverage(0.9)] if head == "vmf" else [])
        }
    model.compile(optimizer=keras.optimizers.Adam(1e-2), metrics=metrics, run_eagerly=True, **_losses(head))
    kernel = model.get_layer("direction_raw").kernel
    before = _np(kernel)
    logs = model.train_on_batch(x, _targets(rng, head), return_dict=True)
    assert np.isfinite(logs["loss"])
    assert not np.allclose(before, _np(kernel)), "one training step did not change the output layer"
    if head == "multitask":
        assert {"direction_loss", "energy_loss", "interaction_loss"} <= set(logs)
    else:
        assert 0.0 <= logs["angular_error_deg"] <= 180.0
    if head == "vmf":
        assert 0.0 <= logs["vmf_coverage_68"] <= logs["vmf_coverage_90"] <= 1.0
    path = tmp_path / "compiled.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)  # losses and metrics deserialise
    a, b = model.predict_on_batch(x), reloaded.predict_on_batch(x)
    assert (
        set(a) == set(b) == ({"direction", "energy", "interaction"} if head == "multitask" else {"direction"})
    )
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


def test_baseline_v15_is_the_earlier_11M_model() -> None:
    model = build_model("baseline_v15")  # 128 × 32, not trained
    assert model.count_params() == pytest.approx(11.0e6, rel=0.005)
    assert model.get_layer("fuse_planes").output.shape[-1] == 24576
    for plane in "uvx":
        filters = [model.get_layer(f"{plane}_conv{i}").filters for i in range(1, 5)]
        assert filters == [64, 128, 256, 512]
        assert model.get_layer(f"{plane}_conv1").kernel_size == (3, 3)
    assert [model.get_layer(f"dense_{i}").units for i in (1, 2)] == [256, 256]
    assert [model.get_layer(f"dropout_{i}").rate for i in (1, 2)] == [0.3, 0.3]
    assert model.get_layer("direction_raw").units == 3


def test_shared_branches_share_weights() -> None:
    separate = build_model("compact", **_tiny("compact"))
    shared = build_model("compact", shared_branches=True, **_tiny("compact"))
    branch = sum(np.prod(w.shape) for w in separate.weights if w.path.startswith("u_"))
    assert branch > 0
    assert separate.count_params() - shared.count_params() == 2 * branch


def test_energy_conditioning_uses_the_energy() -> None:
    rng = np.random.default_rng(1)
    model = build_model("compact", energy_conditioning=True, **_tiny("compact"))
    x = _data(rng)
    # Make the energy path matter: large weights on its embedding.
    emb = model.get_layer("energy_embedding")
    emb.kernel.assign(np.full(emb.kernel.shape, 3.0, np.float32))
    low = _np(model({**x, "energy": np.full((N, 1), 5.0, np.float32)})["direction"])
    high = _np(model({**x, "energy": np.full((N, 1), 60.0, np.float32)})["direction"])
    assert not np.allclose(low, high)


def test_attention_reports_plane_weights(tmp_path) -> None:
    rng = np.random.default_rng(2)
    model = build_model("attention_v19", **_tiny("attention_v19"))
    x = _inputs_of(model, _data(rng))
    w = _np(plane_attention_model(model)(x))
    assert w.shape == (N, 3)
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-5)
    assert np.all(w > 0)
    # Cross-plane: attention runs over the tokens of all three planes at once.
    mha = model.get_layer("cross_plane1_attention")
    tokens_per_plane = model.get_layer("u_tokens").output.shape[1]
    assert mha.output.shape[1] == 3 * tokens_per_plane
    path = tmp_path / "att.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(w, _np(plane_attention_model(reloaded)(x)))
    with pytest.raises(InputError, match="plane_weights"):
        plane_attention_model(build_model("compact", **_tiny("compact")))


def test_normalization_none_differs_from_log1p() -> None:
    rng = np.random.default_rng(3)
    x = _data(rng)
    del x["energy"]
    a = build_model("compact", normalization="log1p", **_tiny("compact")).get_layer("adc_norm_u")(
        x["view_u"][..., None]
    )
    b = build_model("compact", normalization="none", **_tiny("compact")).get_layer("adc_norm_u")(
        x["view_u"][..., None]
    )
    np.testing.assert_allclose(_np(a), np.log1p(x["view_u"][..., None] / 100.0), rtol=1e-5)
    np.testing.assert_allclose(_np(b), x["view_u"][..., None] / 100.0, rtol=1e-5)


def test_builder_options_and_strict_errors() -> None:
    for name in REGISTRY:
        opts = builder_options(name)
        for key in (
            "input_shape",
            "head",
            "energy_conditioning",
            "dropout",
            "shared_branches",
            "normalization",
        ):
            assert key in opts
        assert opts["input_shape"] == (128, 32) and opts["head"] == "direction"
        assert opts["normalization"] == "log1p" and opts["energy_conditioning"] is False
    with pytest.raises(InputError, match=r"unknown option 'dropout_rate'.*valid options:.*dropout"):
        build_model("compact", dropout_rate=0.1)
    with pytest.raises(InputError, match="unknown builder 'resnet'.*compact"):
        build_model("resnet")
    with pytest.raises(InputError, match="'head'.*got 'gaussian'"):
        build_model("compact", head="gaussian")
    with pytest.raises(InputError, match="'normalization'"):
        build_model("compact", normalization="sqrt")
    with pytest.raises(InputError, match="'input_shape'"):
        build_model("compact", input_shape=(128,))
    with pytest.raises(InputError, match="'dropout'"):
        build_model("compact", dropout=1.5)
    with pytest.raises(InputError, match="'filters'"):
        build_model("residual_v18", filters=0)
    with pytest.raises(InputError, match="'shared_branches'"):
        build_model("compact", shared_branches="yes")
    with pytest.raises(InputError, match="'input_shape'"):
        build_model("baseline_v15", input_shape=(8, 8))  # 4 poolings need >= 16
    with pytest.raises(InputError, match="'token_dim'.*multiple"):
        build_model("attention_v19", token_dim=10, num_heads=4)
    with pytest.raises(InputError, match="unknown option 'token_dim'"):
        build_model("compact", token_dim=8)


def test_count_flops_by_hand_and_summary_table() -> None:
    inp = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, padding="same")(inp)
    out = keras.layers.Dense(2)(keras.layers.Flatten()(x))
    model = keras.Model(inp, out)
    # conv: 2·(8·8·4)·(3·3·1) + bias 8·8·4; dense: 2·256·2 + 2
    assert count_flops(model) == 2 * 256 * 9 + 256 + 2 * 256 * 2 + 2
    buf = io.StringIO()
    rows = summary_table(["compact", "baseline_v15"], input_shape=SHAPE, file=buf)
    text = buf.getvalue()
    assert "compact" in text and "baseline_v15" in text
    assert [r["builder"] for r in rows] == ["compact", "baseline_v15"]
    assert all(r["params"] > 0 and r["flops_per_event"] > 0 for r in rows)
    # Shared branches reuse weights, not compute: FLOPs are the same.
    m1 = build_model("compact", **_tiny("compact"))
    m2 = build_model("compact", shared_branches=True, **_tiny("compact"))
    assert count_flops(m1) == count_flops(m2)
