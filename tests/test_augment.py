"""Augmentation: the mirror group, gain, noise, mix-up (edkeras.reco.augment).

The proof that the mirrors are symmetries of the *simulated detector* (same random numbers,
mirrored event read out) is in tests/test_sim_geometry.py; here the group structure, the
agreement of the image operations with the wire projections, and the batch augmentations.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from edkeras.core.detector import project_direction
from edkeras.core.schema import ConfigError, from_dict
from edkeras.reco.augment import MIRRORS, AugmentConfig, augment_batch, mirror_event, slerp


def _batch(n: int = 16, shape: tuple[int, int] = (12, 6), seed: int = 0):
    rng = np.random.default_rng(seed)
    inputs = {k: (rng.random((n, *shape)) * (rng.random((n, *shape)) > 0.6) * 500).astype(np.float32)
              for k in ("view_u", "view_v", "view_x")}
    inputs["energy"] = rng.uniform(5, 50, (n, 1)).astype(np.float32)
    d = rng.normal(size=(n, 3))
    targets = {
        "direction": (d / np.linalg.norm(d, axis=1, keepdims=True)).astype(np.float32),
        "energy": rng.uniform(5, 50, (n, 1)).astype(np.float32),
        "interaction": rng.integers(0, 2, (n, 1)).astype(np.float32),
    }
    return inputs, targets


def test_mirror_group_has_eight_distinct_elements_and_closes():
    assert len(MIRRORS) == 8 and len(set(MIRRORS)) == 8
    assert MIRRORS[0] == (False, False, False)
    inputs, targets = _batch(1)
    imgs = {p: inputs[k][0] for p, k in zip("UVX", ("view_u", "view_v", "view_x"))}
    d = targets["direction"][0]
    for g, h in itertools.product(MIRRORS, MIRRORS):
        once, d1 = mirror_event(imgs, d, *g)
        twice, d2 = mirror_event(once, d1, *h)
        composed = tuple(a != b for a, b in zip(g, h))  # the group is (Z2)^3
        direct, d3 = mirror_event(imgs, d, *composed)
        for p in "UVX":
            np.testing.assert_array_equal(twice[p], direct[p])
        np.testing.assert_array_equal(d2, d3)
    # every non-identity element changes a generic event
    for g in MIRRORS[1:]:
        _out, dd = mirror_event(imgs, d, *g)
        assert not np.array_equal(dd, d)


def test_mirror_event_image_operations():
    rng = np.random.default_rng(1)
    u, v, x = (rng.random((2, 5, 4)) for _ in range(3))
    d = np.array([[0.2, 0.3, 0.9], [-0.5, 0.1, 0.4]])
    imgs = {"U": u, "V": v, "X": x, "other": np.arange(3)}
    out, dd = mirror_event(imgs, d, True, False, False)
    np.testing.assert_array_equal(out["U"], u[:, ::-1, :])
    np.testing.assert_array_equal(out["X"], x[:, ::-1, :])
    np.testing.assert_array_equal(dd, d * [-1, 1, 1])
    out, dd = mirror_event(imgs, d, False, True, False)
    np.testing.assert_array_equal(out["U"], v)
    np.testing.assert_array_equal(out["V"], u)
    np.testing.assert_array_equal(out["X"], x)
    np.testing.assert_array_equal(dd, d * [1, -1, 1])
    out, dd = mirror_event(imgs, d, False, False, True)
    np.testing.assert_array_equal(out["U"], v[:, :, ::-1])
    np.testing.assert_array_equal(out["V"], u[:, :, ::-1])
    np.testing.assert_array_equal(out["X"], x[:, :, ::-1])
    np.testing.assert_array_equal(dd, d * [1, 1, -1])
    np.testing.assert_array_equal(out["other"], np.arange(3))
    # inputs untouched; view_* keys work too
    np.testing.assert_array_equal(imgs["U"], u)
    out2, _ = mirror_event({"view_u": u, "view_v": v, "view_x": x}, d, False, True, False)
    np.testing.assert_array_equal(out2["view_u"], v)
    with pytest.raises(KeyError, match="planes"):
        mirror_event({"U": u}, d, True, False, False)


@pytest.mark.parametrize("flips", MIRRORS)
def test_mirror_table_agrees_with_wire_projections(flips):
    """The projected label on each plane transforms as the images do (docs/formats.md §1.3 table)."""
    rng = np.random.default_rng(2)
    d = rng.normal(size=(50, 3))
    sign = np.array([-1.0 if f else 1.0 for f in flips])
    d_m = d * sign
    fx, fy, fz = flips
    swap = fy != fz
    for p in "UVX":
        src = {"U": "V", "V": "U", "X": "X"}[p] if swap else p
        expect = project_direction(d, src).copy()
        if fx:
            expect[:, 0] *= -1  # rows flipped
        if fz:
            expect[:, 1] *= -1  # columns flipped
        np.testing.assert_allclose(project_direction(d_m, p), expect, atol=1e-12)


def test_augment_mirror_applies_group_elements_and_respects_axes():
    inputs, targets = _batch(64)
    rng = np.random.default_rng(3)
    out_in, out_t = augment_batch(inputs, targets, rng, AugmentConfig(mirror=True))
    seen = set()
    for i in range(64):
        imgs = {k: inputs[k][i] for k in ("view_u", "view_v", "view_x")}
        match = []
        for g in MIRRORS:
            m, d = mirror_event(imgs, targets["direction"][i], *g)
            if all(np.array_equal(m[k], out_in[k][i]) for k in imgs) and np.array_equal(d, out_t["direction"][i]):
                match.append(g)
        assert match, f"event {i} is not a mirror image of its input"
        seen.update(match)
    assert len(seen) == 8  # all elements are used (64 events, p = 1/8 each)
    np.testing.assert_array_equal(out_in["energy"], inputs["energy"])  # mirrors keep energies
    # Only x allowed: columns and U/V never change.
    out_in, out_t = augment_batch(inputs, targets, np.random.default_rng(4), AugmentConfig(mirror=True, mirror_axes=("x",)))
    np.testing.assert_array_equal(out_t["direction"][:, 1:], targets["direction"][:, 1:])
    flipped = out_t["direction"][:, 0] != targets["direction"][:, 0]
    assert 0 < flipped.sum() < 64
    np.testing.assert_array_equal(out_in["view_u"][flipped], inputs["view_u"][flipped][:, ::-1, :])
    np.testing.assert_array_equal(out_in["view_u"][~flipped], inputs["view_u"][~flipped])


def test_augment_does_not_modify_inputs_and_is_reproducible():
    inputs, targets = _batch(8)
    before = {k: v.copy() for k, v in {**inputs, **targets}.items()}
    cfg = AugmentConfig(mirror=True, noise_adc=5.0, gain_sigma=0.1, plane_gain_sigma=0.05, mixup_alpha=0.4)
    a = augment_batch(inputs, targets, np.random.default_rng(7), cfg)
    b = augment_batch(inputs, targets, np.random.default_rng(7), cfg)
    for k, v in {**inputs, **targets}.items():
        np.testing.assert_array_equal(v, before[k])
    for da, db in zip(a, b):
        for k in da:
            np.testing.assert_array_equal(da[k], db[k])
    off_in, _off_t = augment_batch(inputs, targets, np.random.default_rng(7), AugmentConfig())
    for k in inputs:
        np.testing.assert_array_equal(off_in[k], inputs[k])


def test_gain_scales_planes_and_energy_labels():
    inputs, targets = _batch(32)
    cfg = AugmentConfig(gain_sigma=0.1, plane_gain_sigma=0.05)
    out_in, out_t = augment_batch(inputs, targets, np.random.default_rng(5), cfg)
    ratios = {}
    for k in ("view_u", "view_v", "view_x"):
        on = inputs[k] > 0
        r = np.where(on, out_in[k] / np.where(on, inputs[k], 1), np.nan).reshape(32, -1)
        per_event = np.nanmedian(r, axis=1)
        np.testing.assert_allclose(np.nanmax(r, axis=1), per_event, rtol=1e-5)  # one factor per event and plane
        np.testing.assert_array_equal(out_in[k][~on], 0)
        ratios[k] = per_event
    assert np.std(np.log(ratios["view_x"])) > 0.03
    assert not np.allclose(ratios["view_u"], ratios["view_x"])  # planes differ
    # reconstructed energy follows the X plane's charge
    np.testing.assert_allclose(out_in["energy"][:, 0] / inputs["energy"][:, 0], ratios["view_x"], rtol=1e-5)
    overall = out_t["energy"][:, 0] / targets["energy"][:, 0]
    assert np.std(overall) > 0.03
    np.testing.assert_array_equal(out_t["direction"], targets["direction"])
    _, t_fixed = augment_batch(inputs, targets, np.random.default_rng(5), AugmentConfig(gain_sigma=0.1, scale_energy_label=False))
    np.testing.assert_array_equal(t_fixed["energy"], targets["energy"])


def test_noise_only_on_read_out_pixels():
    inputs, targets = _batch(64, shape=(32, 16))
    out_in, _ = augment_batch(inputs, targets, np.random.default_rng(6), AugmentConfig(noise_adc=10.0))
    for k in ("view_u", "view_v", "view_x"):
        on = inputs[k] > 30  # far from 0, so the clip at 0 does not act
        diff = (out_in[k] - inputs[k])[on]
        assert abs(diff.std() - 10.0) < 0.5 and abs(diff.mean()) < 0.5
        np.testing.assert_array_equal(out_in[k][inputs[k] == 0], 0)
        assert (out_in[k] >= 0).all()


def test_slerp_endpoints_midpoint_and_edges():
    a = np.array([[1.0, 0, 0], [0, 0, 1], [1, 0, 0], [0, 1, 0]])
    b = np.array([[0.0, 1, 0], [0, 0, 1], [-1, 0, 0], [0, 1, 1e-9]])
    np.testing.assert_allclose(slerp(a, b, np.zeros(4)), a, atol=1e-9)
    np.testing.assert_allclose(slerp(a[:1], b[:1], np.ones(1)), b[:1], atol=1e-12)
    mid = slerp(a, b, np.full(4, 0.5))
    np.testing.assert_allclose(mid[0], [np.sqrt(0.5), np.sqrt(0.5), 0], atol=1e-12)  # great circle, 45°
    np.testing.assert_allclose(mid[1], [0, 0, 1], atol=1e-12)  # identical vectors (0°)
    assert np.isfinite(mid[2]).all() and abs(np.linalg.norm(mid[2]) - 1) < 1e-12  # antipodal (180°): an endpoint
    np.testing.assert_allclose(np.linalg.norm(slerp(a, b, np.full(4, 0.3)), axis=1), 1.0, atol=1e-12)
    # the angle to a grows linearly with t
    t = np.linspace(0, 1, 5)
    s = slerp(np.repeat(a[:1], 5, 0), np.repeat(b[:1], 5, 0), t)
    np.testing.assert_allclose(np.degrees(np.arccos(np.clip(s @ a[0], -1, 1))), 90 * t, atol=1e-6)


def test_mixup_blends_images_and_slerps_directions():
    inputs, targets = _batch(40)
    out_in, out_t = augment_batch(inputs, targets, np.random.default_rng(8), AugmentConfig(mixup_alpha=0.4))
    d_in, d_out = targets["direction"].astype(np.float64), out_t["direction"].astype(np.float64)
    np.testing.assert_allclose(np.linalg.norm(d_out, axis=1), 1.0, atol=1e-5)
    for i in range(40):
        # find the partner and λ from the energy input blend, then check images and direction
        e_i, e_o = inputs["energy"][i, 0], out_in["energy"][i, 0]
        found = False
        for j in range(40):
            if j == i or inputs["energy"][j, 0] == e_i:
                continue
            lam = (e_o - inputs["energy"][j, 0]) / (e_i - inputs["energy"][j, 0])
            if not (-1e-4 <= lam <= 1 + 1e-4):
                continue
            blend = lam * inputs["view_x"][i] + (1 - lam) * inputs["view_x"][j]
            if np.allclose(out_in["view_x"][i], blend, rtol=1e-4, atol=1e-2):
                expect = slerp(d_in[i:i + 1], d_in[j:j + 1], np.array([1 - lam]))[0]
                np.testing.assert_allclose(d_out[i], expect, atol=2e-3)
                found = True
                break
        assert found or np.allclose(out_in["view_x"][i], inputs["view_x"][i], atol=1e-2), f"event {i} is no blend"
    assert "not a physical event" in " ".join(augment_batch.__doc__.split())


def test_config_is_strict():
    assert AugmentConfig().active is False
    assert AugmentConfig(mirror=True).active is True
    with pytest.raises(ConfigError, match="mirror_axes"):
        AugmentConfig(mirror_axes=("x", "w"))
    with pytest.raises(ConfigError, match="noise_adc"):
        AugmentConfig(noise_adc=-1.0)
    with pytest.raises(ConfigError, match="unknown key 'rotate'"):
        from_dict(AugmentConfig, {"rotate": True})
    cfg = from_dict(AugmentConfig, {"mirror": True, "mirror_axes": ["y", "z"]})
    assert cfg.mirror_axes == ("y", "z")
