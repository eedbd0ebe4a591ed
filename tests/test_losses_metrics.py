"""Losses and metrics against numpy on known vectors (0°, 90°, 180°), gradients, vMF normalisation."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from edkeras.core.errors import InputError
from edkeras.reco import keras_metrics as KM
from edkeras.reco import metrics as M
from edkeras.reco.losses import (
    LOSSES,
    angular,
    cosine,
    focal_alpha_weights,
    focal_angular,
    gaussian_angular_nll,
    get_loss,
    multitask_losses,
    vmf_nll,
)

_np = keras.ops.convert_to_numpy

# Known pairs: 0°, 90°, 180°, 60°, and a non-unit prediction at 0°.
TRUE = np.array([[0, 0, 1], [1, 0, 0], [0, 1, 0], [1, 0, 0], [0, 0, 1]], np.float32)
PRED = np.array([[0, 0, 1], [0, 1, 0], [0, -1, 0], [0.5, math.sqrt(3) / 2, 0], [0, 0, 250]], np.float32)
ANGLES_DEG = np.array([0.0, 90.0, 180.0, 60.0, 0.0])


def _rand_unit(rng: np.random.Generator, n: int) -> np.ndarray:
    d = rng.normal(size=(n, 3))
    return d / np.linalg.norm(d, axis=1, keepdims=True)


def _sample_vmf(rng: np.random.Generator, mu: np.ndarray, kappa: float, n: int) -> np.ndarray:
    """Exact vMF sampling on S² (inverse CDF of w = cos θ), rotated to mean ``mu``."""
    u = rng.random(n)
    w = 1.0 + np.log(u + (1.0 - u) * np.exp(-2.0 * kappa)) / kappa
    phi = rng.uniform(0, 2 * np.pi, n)
    s = np.sqrt(np.clip(1 - w**2, 0, None))
    local = np.stack([s * np.cos(phi), s * np.sin(phi), w], axis=1)
    # rotation taking z to mu
    z = np.array([0.0, 0.0, 1.0])
    v = np.cross(z, mu)
    c = float(mu @ z)
    if np.linalg.norm(v) < 1e-12:
        return local if c > 0 else -local
    vx = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    r = np.eye(3) + vx + vx @ vx / (1 + c)
    return local @ r.T


# ------------------------------------------------------------------ numpy metrics


def test_angular_error_deg_known_pairs() -> None:
    np.testing.assert_allclose(M.angular_error_deg(PRED, TRUE), ANGLES_DEG, atol=1e-5)
    # Tiny angles are resolved (arccos of a rounded cosine would give 0 here).
    t = np.array([[1.0, 0, 0]])
    p = np.array([[1.0, 1e-9, 0]])
    assert M.angular_error_deg(p, t)[0] == pytest.approx(np.degrees(1e-9), rel=1e-6)
    with pytest.raises(InputError, match="same shape"):
        M.angular_error_deg(PRED[:2], TRUE)
    with pytest.raises(InputError, match="non-zero"):
        M.angular_error_deg([[0, 0, 0]], [[1, 0, 0]])
    with pytest.raises(InputError, match=r"\(N, 3\)"):
        M.angular_error_deg(np.zeros((3, 2)), np.zeros((3, 2)))


def test_containment_angle_uniform_and_isotropic() -> None:
    assert M.containment_angle(np.linspace(0, 100, 1001), 0.68) == pytest.approx(68.0)
    assert M.containment_angle(np.linspace(0, 100, 1001), 0.9) == pytest.approx(90.0)
    # Isotropic predictions: cos θ uniform in [-1, 1], so θ68 = arccos(1 - 2·0.68) = 111.1°.
    rng = np.random.default_rng(0)
    err = M.angular_error_deg(_rand_unit(rng, 40000), _rand_unit(rng, 40000))
    expected = np.degrees(np.arccos(1 - 2 * 0.68))
    assert M.containment_angle(err) == pytest.approx(expected, abs=0.6)
    # It is the arccos of the 32nd percentile of cos θ, not of the 68th (the known mistake).
    cos = np.cos(np.radians(err))
    assert M.containment_angle(err) == pytest.approx(np.degrees(np.arccos(np.quantile(cos, 0.32))), abs=0.05)
    wrong = np.degrees(np.arccos(np.quantile(cos, 0.68)))
    assert abs(M.containment_angle(err) - wrong) > 40
    with pytest.raises(InputError, match="fraction"):
        M.containment_angle(err, 1.2)
    with pytest.raises(InputError, match="within"):
        M.containment_angle([10.0, 200.0])
    with pytest.raises(InputError, match="empty"):
        M.containment_angle([])


def test_flip_fraction_and_summary() -> None:
    err = np.array([0.0, 10.0, 150.0, 155.0, 180.0])  # cos < -0.9 beyond 154.16°
    assert M.flip_fraction(err) == pytest.approx(2 / 5)
    s = M.resolution_summary(err, n_boot=200, seed=1)
    assert set(s) == {
        "n", "theta68", "theta68_ci", "median", "median_ci", "mean", "mean_ci", "flip_fraction", "flip_fraction_ci",
    }  # fmt: skip
    assert s["n"] == 5 and s["median"] == 150.0 and s["mean"] == pytest.approx(99.0)
    assert s["flip_fraction"] == pytest.approx(0.4)
    assert s["theta68"] == pytest.approx(np.quantile(err, 0.68))
    for key in ("theta68", "median", "mean", "flip_fraction"):
        lo, hi = s[f"{key}_ci"]
        assert lo <= s[key] <= hi


def test_es_cc_separation() -> None:
    truth = np.array([1] * 50 + [0] * 50 + [-1] * 5)
    rng = np.random.default_rng(3)
    perfect = np.where(truth == 1, rng.uniform(0.6, 1, truth.size), rng.uniform(0, 0.4, truth.size))
    s = M.es_cc_separation(perfect, truth)
    assert (s["n_es"], s["n_cc"], s["auc"], s["accuracy"]) == (50, 50, 1.0, 1.0)
    assert s["cc_pass"] == {"0.5": 0.0, "0.7": 0.0, "0.9": 0.0}
    assert M.es_cc_separation(1 - perfect, truth)["auc"] == 0.0  # a reversed classifier
    # ties count half: a constant output is a coin toss, and every CC event passes any cut
    flat = M.es_cc_separation(np.full(truth.size, 0.3), truth)
    assert flat["auc"] == 0.5 and flat["cc_pass"]["0.9"] == 1.0
    noisy = M.es_cc_separation(rng.uniform(size=20000), rng.integers(0, 2, 20000))
    assert abs(noisy["auc"] - 0.5) < 0.02 and abs(noisy["cc_pass"]["0.7"] - 0.7) < 0.03
    with pytest.raises(InputError, match="needs ES and CC events; received 50 ES and 0 CC"):
        M.es_cc_separation(perfect[:50], truth[:50])
    with pytest.raises(InputError, match="finite values"):
        M.es_cc_separation(np.full(truth.size, np.nan), truth)


def test_bootstrap_ci_width_matches_standard_error() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(10.0, 2.0, 2000)
    lo, hi = M.bootstrap_ci(x, np.mean, n_boot=1000, cl=0.68, seed=3)
    assert lo < np.mean(x) < hi
    assert (hi - lo) / 2 == pytest.approx(2.0 / math.sqrt(2000), rel=0.15)
    lo95, hi95 = M.bootstrap_ci(x, np.mean, n_boot=1000, cl=0.95, seed=3)
    assert hi95 - lo95 > 1.6 * (hi - lo)
    assert M.bootstrap_ci(x, np.mean, n_boot=100, seed=7) == M.bootstrap_ci(x, np.mean, n_boot=100, seed=7)
    with pytest.raises(InputError, match="n_boot"):
        M.bootstrap_ci(x, np.mean, n_boot=1)


def test_resolution_by_bin() -> None:
    rng = np.random.default_rng(2)
    energy = rng.uniform(5, 70, 600)
    err = np.clip(600.0 / energy + rng.normal(0, 2, 600), 0, 180)  # worse at low energy
    rows = M.resolution_by_bin(err, energy, [5, 20, 40, 70, 100], n_boot=50)
    assert [(r["lo"], r["hi"]) for r in rows] == [(5, 20), (20, 40), (40, 70), (70, 100)]
    assert sum(r["n"] for r in rows) == 600
    inside = (energy >= 20) & (energy < 40)
    assert rows[1]["n"] == inside.sum()
    assert rows[1]["median"] == pytest.approx(np.median(err[inside]))
    assert rows[0]["theta68"] > rows[2]["theta68"]
    assert rows[3]["n"] == 0 and math.isnan(rows[3]["theta68"])
    with pytest.raises(InputError, match="increasing"):
        M.resolution_by_bin(err, energy, [5, 5])


def test_vmf_cone_cos_holds_its_probability() -> None:
    for kappa in (1e-3, 1.0, 100.0, 1e4):
        for f in (0.68, 0.9):
            c = float(M.vmf_cone_cos(kappa, f))
            # P(cos >= c) by numerical integration of the density of cos θ.
            cs = np.linspace(c, 1.0, 200001)
            dens = kappa / (1 - np.exp(-2 * kappa)) * np.exp(kappa * (cs - 1))
            assert np.trapezoid(dens, cs) == pytest.approx(f, rel=2e-3)


# ------------------------------------------------------------------ losses


def test_losses_against_numpy_known_pairs() -> None:
    theta = np.radians(ANGLES_DEG)
    np.testing.assert_allclose(_np(cosine(TRUE, PRED)), 1 - np.cos(theta), atol=1e-6)
    np.testing.assert_allclose(_np(angular(TRUE, PRED)), theta, atol=2e-6)
    np.testing.assert_allclose(
        _np(focal_angular(TRUE, PRED, gamma=2.0)), (theta / np.pi) ** 2 * theta, atol=5e-6
    )
    np.testing.assert_allclose(_np(focal_angular(TRUE, PRED, gamma=0.0)), theta, atol=2e-6)
    for kappa in (1e-3, 1.0, 100.0, 1e4):
        pred4 = np.concatenate([PRED, np.full((5, 1), kappa, np.float32)], axis=1)
        log_c = math.log(kappa) - math.log(2 * math.pi) - math.log1p(-math.exp(-2 * kappa))
        expected = -(log_c + kappa * (np.cos(theta) - 1))
        np.testing.assert_allclose(_np(vmf_nll(TRUE, pred4, angular_weight=0.0, kappa_floor=0.0)), expected, rtol=1e-5, atol=1e-4)
    sigma = 0.3
    pred4 = np.concatenate([PRED, np.full((5, 1), sigma, np.float32)], axis=1)
    np.testing.assert_allclose(
        _np(gaussian_angular_nll(TRUE, pred4)), theta**2 / sigma**2 + np.log(sigma**2), rtol=2e-6, atol=1e-5
    )
    pred4k = np.concatenate([PRED, np.full((5, 1), 2 / sigma**2, np.float32)], axis=1)  # the vMF κ of this σ
    np.testing.assert_allclose(
        _np(gaussian_angular_nll(TRUE, pred4k, scale="kappa")),
        theta**2 / sigma**2 + np.log(sigma**2),
        rtol=2e-6,
        atol=1e-4,
    )


def test_focal_alpha_by_energy_bin() -> None:
    edges, alpha = [5.0, 15.0, 40.0, 70.0], [3.0, 1.0, 0.5]
    energy = np.array([3.0, 10.0, 20.0, 60.0, 90.0], np.float32)
    w = focal_alpha_weights(energy, edges, alpha)
    np.testing.assert_array_equal(w, [3.0, 3.0, 1.0, 0.5, 0.5])
    y_true = np.concatenate([TRUE, energy[:, None]], axis=1)
    theta = np.radians(ANGLES_DEG)
    got = _np(focal_angular(y_true, PRED, gamma=1.0, alpha=alpha, energy_edges=edges))
    np.testing.assert_allclose(got, w * (theta / np.pi) * theta, atol=2e-6)
    loss = get_loss("focal_angular", gamma=1.0, alpha=alpha, energy_edges=edges)
    assert float(loss(y_true, PRED)) == pytest.approx(float(np.mean(w * theta**2 / np.pi)), rel=1e-5)
    # Through sample_weight instead: same number with a (N, 3) y_true.
    plain = get_loss("focal_angular", gamma=1.0)
    assert float(plain(TRUE, PRED, sample_weight=w)) == pytest.approx(float(loss(y_true, PRED)), rel=1e-5)
    with pytest.raises(InputError, match=r"\(N, 4\)"):
        loss(TRUE, PRED)
    with pytest.raises(InputError, match="one per energy bin"):
        get_loss("focal_angular", alpha=[1.0], energy_edges=edges)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_gradients_finite_at_0_and_180_degrees(name: str) -> None:
    # Rows: exactly 0°, exactly 180°, 1e-4 rad, π - 1e-4 rad.
    t = np.array([[0, 0, 1], [0, 0, 1], [0, 0, 1], [0, 0, 1]], np.float32)
    p = np.array([[0, 0, 1], [0, 0, -1], [1e-4, 0, 1], [1e-4, 0, -1]], np.float32)
    if name in ("vmf_nll", "gaussian_angular_nll"):
        p = np.concatenate([p, np.array([[1e-3], [1.0], [100.0], [1e4]], np.float32)], axis=1)
        if name == "gaussian_angular_nll":
            p[:, 3] = [1e-2, 0.1, 1.0, 3.0]
    if name == "axial_sense":  # direction, sense logit, sense vector (exactly at and near both poles)
        p = np.concatenate([p, np.array([[3.0], [-3.0], [0.0], [20.0]], np.float32), p], axis=1)
    var = tf.Variable(p)
    loss = get_loss(name)
    with tf.GradientTape() as tape:
        per_event = LOSSES[name]._fn(t, var)
        total = loss(t, var)
    grad = tape.gradient(total, var).numpy()
    assert np.all(np.isfinite(per_event.numpy()))
    assert np.all(np.isfinite(grad)), grad
    assert np.isfinite(float(total))
    # Near (not at) 180°, the angle-based losses push the prediction away from the wrong pole.
    if name in ("angular", "focal_angular", "cosine"):
        assert grad[3, 0] < 0  # moving +x reduces the 179.99° error → descending means -grad > 0
    if name == "axial_sense":  # the axis term is 0 at both poles: the sign of the axis is free
        axis = LOSSES[name]._fn(t, var, sense_weight=0.0, direction_weight=0.0).numpy()
        assert axis[0] == pytest.approx(0.0, abs=1e-5) and axis[1] == pytest.approx(0.0, abs=1e-5)


def test_vmf_nll_density_integrates_to_one_over_the_sphere() -> None:
    mu = np.array([0.0, 0.0, 1.0], np.float32)
    for kappa in (1e-3, 1.0, 100.0, 1e4):
        # The density depends on u = 1 - cos θ only; dΩ = 2π du. Grid dense where e^{-κu} varies.
        u = np.unique(
            np.concatenate([np.linspace(0, min(2.0, 60.0 / kappa), 20001), np.linspace(0, 2.0, 20001)])
        )
        cos = 1.0 - u
        sin = np.sqrt(np.clip(1 - cos**2, 0, None))
        y_true = np.stack([sin, np.zeros_like(sin), cos], axis=1).astype(np.float32)
        y_pred = np.tile(np.append(mu, kappa).astype(np.float32), (u.size, 1))
        density = np.exp(-_np(vmf_nll(y_true, y_pred, angular_weight=0.0, kappa_floor=0.0)).astype(np.float64))
        assert 2 * np.pi * np.trapezoid(density, u) == pytest.approx(1.0, rel=2e-3), kappa


def test_loss_classes_reduce_and_round_trip() -> None:
    rng = np.random.default_rng(4)
    t = _rand_unit(rng, 16).astype(np.float32)
    p = _rand_unit(rng, 16).astype(np.float32)
    p4 = np.concatenate([p, rng.uniform(0.5, 50, (16, 1)).astype(np.float32)], axis=1)
    for name in LOSSES:
        loss = get_loss(name, **({"gamma": 1.5} if name == "focal_angular" else {}))
        y_pred = p4 if name in ("vmf_nll", "gaussian_angular_nll") else p
        if name == "axial_sense":  # direction, sense logit, sense vector
            y_pred = np.concatenate([p4[:, :3], rng.normal(0, 3, (16, 1)).astype(np.float32), p[::-1]], axis=1)
        expected = float(np.mean(_np(LOSSES[name]._fn(t, y_pred, **loss._options))))
        assert float(loss(t, y_pred)) == pytest.approx(expected, rel=1e-5)
        clone = keras.losses.deserialize(keras.losses.serialize(loss))
        assert type(clone) is type(loss) and clone.get_config() == loss.get_config()
        assert float(clone(t, y_pred)) == pytest.approx(expected, rel=1e-5)
    with pytest.raises(InputError, match="unknown loss 'mse'.*angular"):
        get_loss("mse")
    with pytest.raises(InputError, match="unknown option 'gama'.*gamma"):
        get_loss("focal_angular", gama=2)
    with pytest.raises(InputError, match="'gamma'"):
        get_loss("focal_angular", gamma=-1)
    with pytest.raises(InputError, match="'scale'"):
        get_loss("gaussian_angular_nll", scale="sd")
    with pytest.raises(InputError, match=r"\(N, 4\)"):
        vmf_nll(t, p, angular_weight=0.0, kappa_floor=0.0)
    mt = multitask_losses("cosine", energy_weight=0.5)
    assert set(mt["loss"]) == {"direction", "energy", "interaction"}
    assert mt["loss_weights"] == {"direction": 1.0, "energy": 0.5, "interaction": 0.2}
    with pytest.raises(InputError, match="needs"):
        multitask_losses("vmf_nll")
    with pytest.raises(InputError, match="energy_weight"):
        multitask_losses(energy_weight=-1)


# ------------------------------------------------------------------ Keras metrics


def test_keras_angular_metric_matches_numpy() -> None:
    np.testing.assert_allclose(_np(KM.keras_angular_error_deg(TRUE, PRED)), ANGLES_DEG, atol=1e-3)
    metric = KM.AngularErrorDeg()
    assert metric.name == "angular_error_deg"
    pred4 = np.concatenate([PRED, np.ones((5, 1), np.float32)], axis=1)  # κ column is ignored
    metric.update_state(TRUE, pred4)
    assert float(metric.result()) == pytest.approx(ANGLES_DEG.mean(), abs=1e-3)
    clone = KM.AngularErrorDeg.from_config(metric.get_config())
    assert clone.name == "angular_error_deg"


def test_vmf_coverage_is_calibrated_for_true_vmf_samples() -> None:
    rng = np.random.default_rng(8)
    n = 4000
    mu = _rand_unit(rng, 1)[0]
    for kappa in (2.0, 50.0):
        true = _sample_vmf(rng, mu, kappa, n).astype(np.float32)
        pred = np.tile(np.append(mu, kappa).astype(np.float32), (n, 1))
        for f in (0.68, 0.9):
            metric = KM.VMFConeCoverage(f)
            assert metric.name == f"vmf_coverage_{round(100 * f)}"
            metric.update_state(true, pred)
            assert float(metric.result()) == pytest.approx(f, abs=3 * math.sqrt(f * (1 - f) / n) + 0.005)
        # Over-confident κ (×10) covers far less than nominal.
        over = pred.copy()
        over[:, 3] *= 10
        assert float(np.mean(_np(KM.keras_vmf_cone_coverage(true, over, 0.68)))) < 0.4
    with pytest.raises(InputError, match="fraction"):
        KM.VMFConeCoverage(68)


def test_agrees_with_numpy_vmf_module() -> None:
    """The Keras vMF NLL and cone agree with edkeras.core.vmf (the likelihood side's numpy vMF)."""
    from edkeras.core import vmf

    theta = np.radians(ANGLES_DEG)
    for kappa in (1e-3, 1.0, 100.0, 1e4):
        pred4 = np.concatenate([PRED, np.full((5, 1), kappa, np.float32)], axis=1)
        expected = -(vmf.log_normaliser(kappa) + kappa * np.cos(theta))
        np.testing.assert_allclose(_np(vmf_nll(TRUE, pred4, angular_weight=0.0, kappa_floor=0.0)), expected, rtol=1e-5, atol=1e-4)
        for f in (0.68, 0.9):
            assert float(M.vmf_cone_cos(kappa, f)) == pytest.approx(float(vmf.cone_cos(kappa, f)), abs=1e-9)


def test_vmf_angular_weight_keeps_the_direction_gradient_when_kappa_is_small() -> None:
    """At κ → 0 the pure NLL gives (almost) no gradient on the direction: the collapse the
    added λ·θ term prevents. The class defaults to λ = 1; the function's λ = 0 is the pure NLL."""
    t = tf.constant([[0.0, 0.0, 1.0]])
    theta = 0.7
    for weight, expect_grad in ((0.0, False), (1.0, True)):
        p = tf.Variable([[math.sin(theta), 0.0, math.cos(theta), 1e-3]])
        with tf.GradientTape() as tape:
            loss = vmf_nll(t, p, angular_weight=weight, kappa_floor=0.0)
        g = tape.gradient(loss, p).numpy()[0, :3]
        assert np.all(np.isfinite(g))
        assert bool(np.linalg.norm(g) > 0.5) == expect_grad
    p = np.array([[math.sin(theta), 0.0, math.cos(theta), 5.0]], np.float32)
    np.testing.assert_allclose(
        _np(vmf_nll(t, p, angular_weight=2.0, kappa_floor=0.0)) - _np(vmf_nll(t, p, angular_weight=0.0, kappa_floor=0.0)), 2.0 * theta, rtol=1e-5
    )
    assert get_loss("vmf_nll").get_config()["angular_weight"] == 1.0
    with pytest.raises(InputError, match="angular_weight"):
        get_loss("vmf_nll", angular_weight=-1)


def test_vmf_head_learns_kappa_that_ranks_events() -> None:
    """The vmf head learns a κ that follows each event's own noise, on its natural scale: a
    toy where the true direction is a known function of the input plus vMF noise whose
    κ_true (1 or 30) is also an input. (This toy learns its directions at once; it does not
    reproduce the collapse of a CNN whose directions stay random for the first epochs.)"""
    from edkeras.core import vmf as V
    from edkeras.reco.models.heads import attach_head

    rng = np.random.default_rng(0)
    n = 6000
    x = rng.normal(size=(n, 3))
    mean = x / np.linalg.norm(x, axis=1, keepdims=True)
    sharp = rng.random(n) < 0.5
    k_true = np.where(sharp, 30.0, 1.0)
    t = V.sample(mean, k_true, None, rng)
    inputs = np.column_stack([x, sharp.astype(float)]).astype(np.float32)
    keras.utils.set_random_seed(0)
    inp = keras.Input((4,))
    h = keras.layers.Dense(64, activation="relu")(inp)
    h = keras.layers.Dense(64, activation="relu")(h)
    model = keras.Model(inp, attach_head(h, "vmf"))
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss={"direction": get_loss("vmf_nll")})
    model.fit(inputs, {"direction": t.astype(np.float32)}, epochs=12, batch_size=64, verbose=0)
    kappa = model.predict(inputs[:2000], verbose=0)["direction"][:, 3]
    s = sharp[:2000]
    # maximum-likelihood κ of each class is its κ_true (the direction is learnt well);
    # require the order and the right scale within a factor of 3
    assert np.median(kappa[s]) > 5 * np.median(kappa[~s])
    assert 10.0 < np.median(kappa[s]) < 90.0
    assert 0.33 < np.median(kappa[~s]) < 3.0


def test_vmf_kappa_floor_is_a_wall_only_below_the_floor() -> None:
    """Above κ₀ the loss is the NLL (+ λθ); below it the gradient on ln κ pushes κ up even
    for random directions (cos θ = 0), where the NLL alone pushes it down."""
    t = tf.constant([[0.0, 0.0, 1.0]])
    side = [1.0, 0.0, 0.0]  # cos θ = 0: what an untrained network predicts on average
    for log_kappa, floor, pushes_up in ((math.log(1e-3), 0.1, True), (math.log(1e-3), 0.0, False)):
        z = tf.Variable(log_kappa)
        with tf.GradientTape() as tape:
            p = tf.concat([tf.constant([side]), tf.reshape(tf.exp(z), (1, 1))], axis=1)
            loss = vmf_nll(t, p, kappa_floor=floor, angular_weight=0.0)
        g = float(tape.gradient(loss, z))
        assert (g < -1.0) if pushes_up else (g > 0)
    p = np.array([[0.0, 0.6, 0.8, 2.0]], np.float32)
    np.testing.assert_allclose(_np(vmf_nll(t, p, kappa_floor=0.1, angular_weight=0.0)), _np(vmf_nll(t, p, angular_weight=0.0, kappa_floor=0.0)), rtol=1e-6)
    assert get_loss("vmf_nll").get_config()["kappa_floor"] == 0.1
    with pytest.raises(InputError, match="kappa_floor"):
        get_loss("vmf_nll", kappa_floor=-0.1)


def test_vmf_head_starts_with_the_same_small_kappa_for_every_event() -> None:
    """At initialisation κ is 0.3 for every event, in training mode too (batch-normalised
    features): a Glorot kernel spread it from 0.01 to the 1e4 clip, and κ·(1 − cos θ) of
    random directions then swamped the angle's gradient (≈ 1,000×, measured)."""
    from edkeras.reco.models import build_model

    keras.utils.set_random_seed(0)
    model = build_model("compact", head="vmf", input_shape=(128, 32), filters=8)
    rng = np.random.default_rng(0)
    x = {f"view_{p}": rng.gamma(0.3, 40.0, (32, 128, 32)).astype(np.float32) for p in "uvx"}
    out = model(x, training=True)
    kappa = np.asarray(out["direction"])[:, 3]
    np.testing.assert_allclose(kappa, 0.3, rtol=1e-5)
