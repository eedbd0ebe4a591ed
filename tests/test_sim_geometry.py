"""Geometry of the simulated readout: wire projections, the mirror group, windows, event display.

The mirror proof: an event is simulated once; its drifted 3-D charge (every random number
already drawn: transport, scattering, photons) is reflected in x, y and/or z and read out
again. The images must equal :func:`edkeras.reco.augment.mirror_event` applied to the
original images. Tolerance: 0.01 ADC per pixel (y and z mirrors are bit-exact; the x
mirror reverses the time axis, so the float32 FFT convolution adds its terms in another
order: measured differences ≤ 5e-4 ADC on pixels of up to ~3,000 ADC), and a pixel may
appear on one side only if its value lies within that tolerance of the threshold. The
window origins must transform exactly (integers).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from edkeras.core.detector import DRIFT_PER_TICK, PITCH, PLANES, plane_unit_vector, project_direction
from edkeras.events.sim import ReadoutConfig, SimConfig, TransportConfig, simulate_block
from edkeras.events.sim.readout import Charges, mirror_charges, read_out
from edkeras.reco.augment import MIRRORS, mirror_event

TOL_ADC = 0.01

# Noise TPs are random positions, not part of the mirrored 3-D charge: off for the mirror proofs.
QUIET = ReadoutConfig(noise_tp_rate_induction=0.0, noise_tp_rate_collection=0.0)

STRAIGHT = TransportConfig(
    multiple_scattering=False, single_scatter_tail=False, bremsstrahlung=False, delta_rays=False,
    photons=False, loss_fluctuations=False,
)


@pytest.fixture(scope="module")
def mixed_block():
    cfg = SimConfig(block_size=48, readout=QUIET)
    batch, det = simulate_block(48, cfg, np.random.default_rng(11))
    return cfg, batch, det


def _assert_images_equal(got: dict, expect: dict, cfg: SimConfig) -> None:
    for p in PLANES:
        thr = cfg.readout.threshold_collection if p == "X" else cfg.readout.threshold_induction
        diff = np.abs(got[p].astype(np.float64) - expect[p])
        bad = diff > TOL_ADC
        # a pixel read out on one side only must sit at the threshold (rounding decides it)
        edge = np.abs(np.maximum(got[p], expect[p]) - thr) <= TOL_ADC
        assert not (bad & ~edge).any(), f"plane {p}: max difference {diff.max():.3g} ADC"
        assert (got[p] > 0).sum() > 100  # the comparison is not between empty images


def test_readout_reproduces_the_batch(mixed_block):
    cfg, batch, det = mixed_block
    images, origin = read_out(det.charges, len(batch), cfg)
    for p in PLANES:
        np.testing.assert_array_equal(images[p], batch.images[p])
    np.testing.assert_array_equal(origin, batch.window_origin)


@pytest.mark.parametrize("flips", MIRRORS[1:], ids=lambda f: "".join(a for a, s in zip("xyz", f) if s))
def test_mirrored_event_gives_mirrored_images(mixed_block, flips):
    cfg, batch, det = mixed_block
    n_t, n_c = cfg.image_shape
    images, origin = read_out(det.charges, len(batch), cfg)
    m_images, m_origin = read_out(mirror_charges(det.charges, *flips), len(batch), cfg)
    expect, d_expect = mirror_event(images, batch.direction, *flips)
    _assert_images_equal(m_images, expect, cfg)
    fx, fy, fz = flips
    np.testing.assert_array_equal(d_expect, batch.direction * np.where(flips, -1, 1))
    # window origins: rows −o − T under x; U ↔ V under y or z; columns −o − C under z
    ex_origin = origin.copy()
    if fy != fz:
        ex_origin[:, [0, 1]] = ex_origin[:, [1, 0]]
    if fx:
        ex_origin[:, :, 0] = -ex_origin[:, :, 0] - n_t
    if fz:
        ex_origin[:, :, 1] = -ex_origin[:, :, 1] - n_c
    np.testing.assert_array_equal(m_origin, ex_origin)


def _rotate_x(charges: Charges, psi_deg: float) -> Charges:
    c, s = np.cos(np.radians(psi_deg)), np.sin(np.radians(psi_deg))
    rot = np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    return Charges(charges.event, charges.pos @ rot.T, charges.electrons, charges.primary)


def test_rotations_are_not_image_symmetries(mixed_block):
    """A rotation about the drift axis is realised by no image operation of the group,
    except the 180° one, which is the composition of the y and z mirrors."""
    cfg, batch, det = mixed_block
    images, _ = read_out(det.charges, len(batch), cfg)
    half, _ = read_out(_rotate_x(det.charges, 180.0), len(batch), cfg)
    expect, _ = mirror_event(images, batch.direction, False, True, True)
    for p in PLANES:
        np.testing.assert_allclose(half[p], expect[p], atol=1.0)  # rotation matrix rounding moves charge by ~1e-14 cm
    for psi in (20.0, 35.71, 90.0):
        rotated, _ = read_out(_rotate_x(det.charges, psi), len(batch), cfg)
        total = sum(rotated[p].sum() for p in PLANES)
        for g in MIRRORS:
            cand, _ = mirror_event(images, batch.direction, *g)
            mismatch = sum(np.abs(rotated[p] - cand[p]).sum() for p in PLANES) / total
            assert mismatch > 0.3, f"rotation by {psi}° matched mirror {g}"


def _straight_block(direction, energy=10.0, n=6, seed=0, **kw):
    cfg = SimConfig(gun=True, direction=direction, energy_range_mev=(energy, energy + 1e-3), transport=STRAIGHT,
                    block_size=n, **kw)
    return simulate_block(n, cfg, np.random.default_rng(seed))


@pytest.mark.parametrize("direction", [(0.5, 0.4, 0.77), (-0.3, -0.3, 0.9), (0.45, 0.15, -0.88), (0.25, 0.05, 0.97)])
def test_straight_track_slope_matches_wire_projection(direction):
    """Each channel's time centre (the charge-weighted centre of the collection pulse, the
    mid-point of the lit span of the positive induction lobe) lies on the projected track: fit time against wire
    coordinate and compare the slope with d_x / (d·e_p). Tolerance 2° (diffusion sharing
    charge with the neighbouring wire biases the end channels a little)."""
    batch, _det = _straight_block(direction, energy=20.0)
    d = np.asarray(direction) / np.linalg.norm(direction)
    for p in PLANES:
        dx, dw = project_direction(d, p)
        expect = np.degrees(np.arctan(dx / dw))  # line angle in the (w, x) plane, mod 180°
        img = batch.images[p].astype(np.float64)
        n, n_t, n_c = img.shape
        x_cm = (np.arange(n_t) + 0.5) * DRIFT_PER_TICK
        w_cm = (np.arange(n_c) + 0.5) * PITCH[p]
        for i in range(n):
            col_sum = img[i].sum(axis=0)
            hit = col_sum > 0.02 * col_sum.max()
            assert hit.sum() >= 6  # a track over several wires (fewer: the end wires dominate)
            if p == "X":
                t_centre = (img[i] * x_cm[:, None]).sum(axis=0)[hit] / col_sum[hit]
            else:  # the mid-point of the channel's lit span (the lobe)
                lit = img[i] > 0
                first = np.argmax(lit, axis=0)
                last = n_t - 1 - np.argmax(lit[::-1], axis=0)
                t_centre = (0.5 * (x_cm[first] + x_cm[last]))[hit]
            slope = np.polyfit(w_cm[hit], t_centre, 1, w=np.sqrt(col_sum[hit]))[0]
            got = np.degrees(np.arctan(slope))
            delta = abs(got - expect) % 180.0
            delta = min(delta, 180.0 - delta)
            # induction: 4° (a channel's time is known only to the extent of its TP, ~8 ticks
            # of the positive lobe; measured up to 2.6° on U; the TPs over both lobes of the
            # earlier model needed 6°). A wrong wire angle or sign is off by tens of degrees.
            tol = 2.0 if p == "X" else 4.0
            assert delta < tol, f"plane {p}: image line at {got:.1f}°, projection predicts {expect:.1f}°"


def test_window_is_centred_on_the_charge_and_holds_the_vertex():
    batch, det = _straight_block((0.3, 0.5, 0.81), n=8, seed=3)
    n_t, n_c = 128, 32
    for ip, p in enumerate(PLANES):
        img = batch.images[p].astype(np.float64)
        for i in range(len(batch)):
            w = img[i] / img[i].sum()
            c_row = (w.sum(axis=1) * (np.arange(n_t) + 0.5)).sum()
            c_col = (w.sum(axis=0) * (np.arange(n_c) + 0.5)).sum()
            # the window is centred on the plane's own TPs (the ingest's rule); the charge
            # centre of the image lies within a pixel or two of the window's centre
            if p == "X":
                assert abs(c_row - n_t / 2) < 1.5 and abs(c_col - n_c / 2) < 1.5
            else:
                assert abs(c_row - n_t / 2) < 2 and abs(c_col - n_c / 2) < 2.5
            v = det.interactions.vertex[i]
            row = v[0] / DRIFT_PER_TICK - batch.window_origin[i, ip, 0]
            col = v @ plane_unit_vector(p) / PITCH[p] - batch.window_origin[i, ip, 1]
            assert 0 <= row < n_t and 0 <= col < n_c
            # the vertex is at the track's start: the charge lies downstream of it
            proj = project_direction(batch.direction[i], p)
            ahead = (((np.arange(n_t)[:, None] + 0.5) - row) * DRIFT_PER_TICK * proj[0]
                     + ((np.arange(n_c)[None, :] + 0.5) - col) * PITCH[p] * proj[1])
            assert (w * ahead).sum() > 0.5 * np.sum(proj**2) * 4.4 * 0.5  # half-way along a 4.4 cm track


def test_draw_event_arrows_follow_the_projection():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from edkeras.reports.plots.events import draw_event

    batch, _det = _straight_block((0.5, 0.4, 0.77), n=1)
    pred = np.array([0.0, 0.6, 0.8])
    fig = draw_event({p: batch.images[p][0] for p in PLANES}, direction=batch.direction[0], predicted=pred,
                     window_origin=batch.window_origin[0], vertex=batch.vertex[0], title="test")
    try:
        image_axes = [a for a in fig.axes if a.images]
        assert len(image_axes) == 3
        for a, p in zip(image_axes, PLANES):
            arrows = [t for t in a.texts if hasattr(t, "xyann")]
            assert len(arrows) == 2
            for arrow, d in zip(arrows, (batch.direction[0], pred)):
                start, end = np.array(arrow.xyann), np.array(arrow.xy)
                dx, dw = project_direction(d / np.linalg.norm(d), p)
                np.testing.assert_allclose(end - start, 4.0 * np.array([dw, dx]), atol=1e-5)
            v = batch.vertex[0]
            np.testing.assert_allclose(arrows[0].xyann, (v @ plane_unit_vector(p), v[0]), atol=1e-4)
            x0 = batch.window_origin[0, PLANES.index(p), 0] * DRIFT_PER_TICK
            assert a.get_ylim() == pytest.approx((x0, x0 + 128 * DRIFT_PER_TICK))
    finally:
        plt.close(fig)
    with pytest.raises(KeyError, match="planes"):
        draw_event({"U": batch.images["U"][0]})


def test_image_shape_and_odd_windows():
    batch, _ = _straight_block((0.5, 0.4, 0.77), n=2, image_shape=(65, 17))
    assert batch.U.shape == (2, 65, 17)
    cfg = dataclasses.replace(SimConfig(readout=QUIET), image_shape=(65, 17), block_size=8)
    b2, det = simulate_block(8, cfg, np.random.default_rng(1))
    images, _origin = read_out(det.charges, 8, cfg)
    m, _mo = read_out(mirror_charges(det.charges, True, False, True), 8, cfg)
    expect, _ = mirror_event(images, b2.direction, True, False, True)
    _assert_images_equal(m, expect, cfg)
