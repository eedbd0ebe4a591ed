"""Tests of the trigger-primitive reader (``edkeras.events.tpstream``, ``edkeras ingest-tpstream``).

(a) A synthetic ``triggerAnaDumpTPs`` file, written here with uproot, holds straight tracks
    on known channels of two APAs built in opposite orientations (channel numbers running
    the other way, X faces reading the other sides), one crossing the U wrap 799 → 0 and
    one next to brighter decoy clusters. The test computes every expected pixel from its
    own constants, not from the module.
(b) The real 10-event DUNE ES file (``tests/conftest.REAL_TP_FILE``), when present.
(c) Bad input: missing trees or branches, non-ROOT files; skipped events are counted.
"""

from __future__ import annotations

import math
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot
from conftest import REAL_TP_FILE

from edkeras.cli import main as cli_main
from edkeras.core.detector import PITCH, PLANES, project_direction
from edkeras.core.errors import InputError
from edkeras.events.eventfile import open_events
from edkeras.events.tp_geometry import GeometryTable, fit_geometry
from edkeras.events.tp_ingest import cluster_tps, ingest_tpstream
from edkeras.events.tpstream import TPStreamOptions, pulse_samples

# ----------------------------------------------------------------------------------------
# the synthetic detector (the test's own constants)

ALPHA = math.radians(35.71)
E_AXIS = {"U": np.array([0.0, -math.sin(ALPHA), math.cos(ALPHA)]),
          "V": np.array([0.0, math.sin(ALPHA), math.cos(ALPHA)]),
          "X": np.array([0.0, 0.0, 1.0])}
DRIFT = 0.08  # cm per tick
T0 = 300  # tick of x = ±4.5 cm on X
VIEW_DELAY = {"U": 12, "V": 6, "X": 0}  # induction planes see the charge earlier
BLOCK = {"U": 800 * 0, "V": 800}
# (apa, readout view, side) -> (canonical axis measured, step, c0); local = c0 + step*w/pitch
INDUCTION = {
    (0, "U", 1): ("U", -1, 750.3), (0, "V", 1): ("V", 1, 1149.0),
    (0, "U", -1): ("V", 1, 749.6), (0, "V", -1): ("U", -1, 1150.2),
    # APA 1 is built the other way round: every channel direction reversed
    (1, "U", 1): ("U", 1, 349.4), (1, "V", 1): ("V", -1, 1550.0),
    (1, "U", -1): ("V", -1, 755.0), (1, "V", -1): ("U", 1, 1144.5),
}
# (apa, side) -> (X face, step, c0): APA 0 face 1 reads +x; APA 1 has its faces swapped and z reversed
XFACE = {(0, 1): (1, 1, 2080.0), (0, -1): (0, 1, 1600.0),
         (1, 1): (0, -1, 2079.0 + 230 / 0.479), (1, -1): (1, -1, 2559.0 + 230 / 0.479)}
ADC_PER_MEV = {"U": 700.0, "V": 600.0, "X": 4000.0}
TRACK_LENGTH = 6.0


def plane_for(apa: int, side: int, axis: str) -> tuple[str, int, float]:
    """(readout view, step, c0) of the plane measuring canonical ``axis`` on (apa, side)."""
    if axis == "X":
        _face, step, c0 = XFACE[(apa, side)]
        return "X", step, c0
    for (a, view, s), (ax, step, c0) in INDUCTION.items():
        if a == apa and s == side and ax == axis:
            return view, step, c0
    raise AssertionError("incomplete test geometry")


def channel_of(apa: int, side: int, view: str, pts: np.ndarray) -> np.ndarray:
    """Local channel (the nearest wire) of points on readout plane ``view`` for charge from ``side``."""
    if view == "X":
        _, step, c0 = XFACE[(apa, side)]
        return np.rint(c0 + step * pts[..., 2] / 0.479).astype(np.int64)
    axis, step, c0 = INDUCTION[(apa, view, side)]
    ch = np.rint(c0 + step * (pts @ E_AXIS[axis]) / 0.4667).astype(np.int64)
    return BLOCK[view] + np.mod(ch - BLOCK[view], 800)  # the wrapped wires repeat every 800


def tick_float(view: str, x: np.ndarray) -> np.ndarray:
    return T0 + (np.abs(x) - 4.5) / DRIFT - VIEW_DELAY[view]


def unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


# event number -> (apa, side, vertex, direction, electron track id, kinetic energy MeV, kind)
EVENTS = {
    1: (0, 1, (120.0, 50.0, 60.0), (0.5, 0.5, 0.7), 2, 12.0, "es"),
    2: (0, -1, (-140.0, -80.0, 150.0), (-0.4, 0.6, -0.65), 2, 15.0, "es"),
    3: (1, 1, (200.0, 20.0, 300.0), (-0.6, -0.45, 0.62), 7, 9.0, "es"),
    4: (1, -1, (-90.0, 100.0, 400.0), (0.55, -0.5, -0.6), 2, 20.0, "es"),
    5: (0, 1, (150.0, 180.4, 100.0), (0.3, -0.6, 0.74), 2, 11.0, "es"),  # crosses U channel 799 -> 0
    6: (1, 1, (170.0, -60.0, 350.0), (0.2, 0.6, 0.75), 2, 14.0, "es"),  # next to decoys
    7: (0, 1, (60.0, -30.0, 120.0), (0.5, -0.5, 0.7), 2, 10.0, "no_electron"),
    8: (0, 1, (80.0, 0.0, 100.0), (0.0, 0.6, 0.8), 2, 10.0, "noise_only"),
    9: (1, -1, (-200.0, -150.0, 260.0), (-0.5, -0.5, 0.7), 2, 25.0, "cc"),
}
NU_DIR = unit((0.3, -0.2, 0.93))


def _track_points(vertex, direction, length=TRACK_LENGTH, step=0.01) -> np.ndarray:
    s = np.arange(0.0, length, step) + step / 2
    return np.asarray(vertex) + s[:, None] * unit(direction)


def _tps_of_points(apa, side, view, pts, energy_per_point, bt_id, adc_scale=1.0):
    """One TP per hit channel: the ticks its points span; ADC = K_view * deposited energy."""
    ch = channel_of(apa, side, view, pts)
    tk = tick_float(view, pts[:, 0])
    rows = []
    for c in np.unique(ch):
        m = ch == c
        start = int(np.floor(tk[m].min()))
        sot = max(int(np.floor(tk[m].max())) + 1 - start, 2)
        adc = ADC_PER_MEV[view] * energy_per_point * m.sum() * adc_scale
        rows.append({
            "channel": apa * 2560 + int(c), "time_start": start * 32, "samples_over_threshold": sot,
            "samples_to_peak": sot // 2, "adc_integral": round(adc), "adc_peak": round(1.5 * adc / sot),
            "readout_view": {"U": 0, "V": 1, "X": 2}[view],
            "bt_primary_track_id": bt_id, "bt_x": pts[m, 0].mean(), "bt_y": pts[m, 1].mean(),
            "bt_z": pts[m, 2].mean(),
        })
    return rows


def _noise_tps(rng, n=30):
    rows = []
    for _ in range(n):
        rows.append({
            "channel": int(rng.integers(0, 2 * 2560)), "time_start": int(rng.integers(0, 6000)) * 32,
            "samples_over_threshold": 1, "samples_to_peak": 0, "adc_integral": int(rng.integers(60, 200)),
            "adc_peak": 70, "readout_view": 0, "bt_primary_track_id": -99999,
            "bt_x": -99999.0, "bt_y": -99999.0, "bt_z": -99999.0,
        })
    return rows


TP_TYPES = {
    "Event": np.uint32, "Run": np.uint32, "SubRun": np.uint32, "channel": np.uint32,
    "samples_over_threshold": np.uint16, "time_start": np.uint64, "samples_to_peak": np.uint16,
    "adc_integral": np.uint32, "adc_peak": np.uint16, "readout_view": np.int32,
    "bt_primary_track_id": np.int32, "bt_x": np.float64, "bt_y": np.float64, "bt_z": np.float64,
}


def write_synthetic(path: Path, *, truth: bool = True, bt: bool = True, simides: bool = True,
                    drop_tp_branch: str | None = None, drop_trees: tuple[str, ...] = ()) -> dict:
    """Write the synthetic TP dump; return the TP rows per event (for expectations)."""
    rng = np.random.default_rng(5)
    tps, parts, truths, ides = [], [], [], []
    per_event: dict[int, list[dict]] = {}
    for ev, (apa, side, vtx, d, tid, ke, kind) in EVENTS.items():
        d = unit(d)
        pts = _track_points(vtx, d)
        e_pp = ke / len(pts)  # all of the kinetic energy deposited, evenly
        rows = []
        if kind != "noise_only":
            for view in ("U", "V", "X"):
                rows += _tps_of_points(apa, side, view, pts, e_pp, tid)
                ch = channel_of(apa, side, view, pts)
                ides.append({"Event": np.full(len(pts), ev), "channel": apa * 2560 + ch,
                             "energy": np.full(len(pts), e_pp), "trackID": np.full(len(pts), tid),
                             "x": pts[:, 0], "y": pts[:, 1], "z": pts[:, 2]})
        if ev == 6:  # decoys: brighter U and V clusters 40 cm away in w, same ticks; no back-tracking
            for view, axis in (("U", "U"), ("V", "V")):
                shifted = pts + 40.0 * E_AXIS[axis]
                for r in _tps_of_points(apa, side, view, shifted, e_pp, -99999, adc_scale=10.0):
                    r.update(bt_x=-99999.0, bt_y=-99999.0, bt_z=-99999.0)
                    rows.append(r)
            # a brighter X blob on the other APA (not the electron)
            blob = _track_points((-100.0, 0.0, 100.0), (1.0, 0.0, 0.2), length=3.0)
            for r in _tps_of_points(0, -1, "X", blob, 3 * ke / len(blob), -99999):
                r.update(bt_x=-99999.0, bt_y=-99999.0, bt_z=-99999.0)
                rows.append(r)
        per_event[ev] = list(rows)
        rows += _noise_tps(rng)
        for r in rows:
            r["Event"] = ev
        tps += rows
        # truth
        if kind != "no_electron":
            e_tot = (ke + 0.511) / 1000.0
            p = math.sqrt(e_tot**2 - (0.511e-3) ** 2)
            parts.append({"Event": ev, "pdg": 11, "mother": 0, "process": "primary", "g4_track_id": tid,
                          "x": vtx[0], "y": vtx[1], "z": vtx[2], "px": p * d[0], "py": p * d[1],
                          "pz": p * d[2], "energy": e_tot, "edep": 3 * ke, "shower_edep": 0.0})
        parts.append({"Event": ev, "pdg": 12, "mother": 0, "process": "primary", "g4_track_id": 1,
                      "x": vtx[0], "y": vtx[1], "z": vtx[2], "px": 0.01, "py": 0.0, "pz": 0.0,
                      "energy": 0.01, "edep": 0.0, "shower_edep": 0.0})
        e_nu = (ke + 5.0) / 1000.0
        final = [(12, 1)] if kind != "cc" else [(1000190400, 1)]
        for pdg, status in [(12, 0), (11, 0), (11, 1), *final]:
            mom = e_nu * NU_DIR if (pdg, status) == (12, 0) else np.zeros(3)
            truths.append({"Event": ev, "pdg": pdg, "status_code": status, "px": mom[0], "py": mom[1],
                           "pz": mom[2], "energy": e_nu if (pdg, status) == (12, 0) else 0.001})

    def columns(rows, types):
        out = {}
        for k, t in types.items():
            if t == "string":
                out[k] = ak.Array([str(r[k]) for r in rows])
            else:
                out[k] = np.array([r.get(k, 0) for r in rows], dtype=t)
        return out

    tp_types = dict(TP_TYPES)
    if not bt:
        for k in ("bt_primary_track_id", "bt_x", "bt_y", "bt_z"):
            tp_types.pop(k)
    if drop_tp_branch:
        tp_types.pop(drop_tp_branch)
    for r in tps:
        r["Run"], r["SubRun"] = 1, 0
    for r in parts + truths:
        r["Run"], r["SubRun"] = 1, 0
    p_types = {"Event": np.uint32, "Run": np.uint32, "SubRun": np.uint32, "pdg": np.int32, "mother": np.int32,
               "process": "string", "g4_track_id": np.int32, "x": np.float64, "y": np.float64,
               "z": np.float64, "px": np.float64, "py": np.float64, "pz": np.float64, "energy": np.float64,
               "edep": np.float64, "shower_edep": np.float64}
    t_types = {"Event": np.uint32, "Run": np.uint32, "SubRun": np.uint32, "pdg": np.int32,
               "status_code": np.int32, "px": np.float64, "py": np.float64, "pz": np.float64,
               "energy": np.float64}
    base = "triggerAnaDumpTPs"
    with uproot.recreate(path) as f:
        trees = {f"{base}/TriggerPrimitives/tpmakerTPC__TriggerAnaTree1x2x2": (tp_types, tps)}
        if truth:
            trees[f"{base}/mcparticles"] = (p_types, parts)
            trees[f"{base}/mctruths"] = (t_types, truths)
        if simides and truth:
            cat = {k: np.concatenate([i[k] for i in ides]) for k in ides[0]}
            n = len(cat["channel"])
            sim = {"Event": cat["Event"].astype(np.uint32), "Run": np.ones(n, np.uint32),
                   "SubRun": np.zeros(n, np.uint32), "channel": cat["channel"].astype(np.uint32),
                   "energy": cat["energy"].astype(np.float32), "trackID": cat["trackID"].astype(np.int32),
                   "x": cat["x"].astype(np.float32), "y": cat["y"].astype(np.float32),
                   "z": cat["z"].astype(np.float32)}
            t = f.mktree(f"{base}/simides", {k: v.dtype for k, v in sim.items()})
            t.extend(sim)
        for name, (types, rows) in trees.items():
            if any(name.endswith(d) for d in drop_trees):
                continue
            t = f.mktree(name, {k: ("string" if v == "string" else v) for k, v in types.items()})
            t.extend(columns(rows, types))
    return per_event


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> tuple[Path, dict]:
    path = tmp_path_factory.mktemp("tp") / "synthetic.root"
    return path, write_synthetic(path)


@pytest.fixture(scope="module")
def ingested(synthetic, tmp_path_factory):
    path, _ = synthetic
    out = tmp_path_factory.mktemp("tpout") / "syn.h5"
    result = ingest_tpstream([path], out, TPStreamOptions(), progress=False, command="test")
    return result, open_events(out)


def _event_index(ef, event: int) -> int:
    return ef.source["events"]["event"].index(event)


def _centroid(img: np.ndarray) -> np.ndarray:
    r, c = np.nonzero(img)
    q = img[r, c]
    return np.array([np.average(r + 0.5, weights=q), np.average(c + 0.5, weights=q)])


def _principal_slope_sign(img: np.ndarray, pitch: float, drift: float = DRIFT) -> float:
    r, c = np.nonzero(img)
    q = img[r, c]
    cov = np.cov(np.stack([r * drift, c * pitch]), aweights=q)
    v = np.linalg.eigh(cov)[1][:, -1]
    return float(np.sign(v[0] * v[1]))


# ----------------------------------------------------------------------------------------
# (a) synthetic file


def test_cluster_rules_and_wrap():
    # channels 798, 799, 0, 1 touch across the wrap only when the period is given
    ch = np.array([798, 799, 0, 1, 400])
    start = np.array([10, 11, 12, 13, 10])
    end = start + 3
    wrapped = cluster_tps(ch, start, end, period=800)
    assert len(set(wrapped[:4])) == 1 and wrapped[0] >= 0 and wrapped[4] == -1
    flat = cluster_tps(ch, start, end)
    assert flat[0] == flat[1] != flat[2] == flat[3]
    # time gap: 3 empty ticks join, 4 do not; channel gap 2 joins, 3 does not
    assert cluster_tps(np.array([5, 5]), np.array([0, 6]), np.array([3, 9]))[0] == 0
    assert (cluster_tps(np.array([5, 5]), np.array([0, 7]), np.array([3, 10])) == -1).all()
    assert (cluster_tps(np.array([5, 8]), np.array([0, 0]), np.array([3, 3])) == -1).all()
    assert (cluster_tps(np.array([5, 7]), np.array([0, 0]), np.array([3, 3])) == 0).all()


def test_pulse_area_and_shape():
    owner, _k, value = pulse_samples(np.array([5, 1, 8]), np.array([2, 0, 7]), np.array([300, 90, 500]),
                                     np.array([1000, 77, 2400]), threshold=60.0)
    sums = np.bincount(owner, weights=value)
    np.testing.assert_allclose(sums, [1000, 77, 2400])
    first = value[owner == 0]
    assert np.argmax(first) == 2 and first[0] < first[2] and first[4] < first[2]
    assert np.argmax(value[owner == 2]) == 7  # peak on the last sample


def test_time_centres_weigh_each_sample_of_each_cluster():
    from edkeras.events.tpimage import time_centres

    # cluster 0: a symmetric 3-sample pulse at ticks 10-12 (centre 11.5) and one sample at tick
    # 20 (centre 20.5) carrying half as much; cluster 1: empty; cluster 2: one sample at tick 4
    tc = time_centres(np.array([0, 0, 2]), 3, tick=np.array([10, 20, 4]), sot=np.array([3, 1, 1]),
                      stp=np.array([1, 0, 0]), peak=np.array([200.0, 100.0, 90.0]),
                      adc=np.array([400.0, 200.0, 90.0]), threshold=60.0)
    assert tc[0] == pytest.approx((11.5 * 400 + 20.5 * 200) / 600)
    assert np.isnan(tc[1]) and tc[2] == pytest.approx(4.5)


def test_geometry_fit_recovers_constructed_channel_map(synthetic):
    path, _ = synthetic
    geo = fit_geometry([path], command="test")
    # planes crossed by tracks in several directions get a free wire-angle fit; one straight track fixes none
    assert sum(g.angle_deg is not None for g in geo.planes) >= 4
    for (apa, view, side), (axis, step, c0) in INDUCTION.items():
        g = geo.lookup(apa, side, axis)
        assert g is not None and g.view == view and g.step == step, (apa, view, side, g)
        assert abs(g.c0 - c0) < 0.3 and g.rms < 0.5
        if g.angle_deg is not None:  # the free fit finds the wire angle of the axis it measures
            assert abs(g.angle_deg - {"U": -35.71, "V": 35.71}[axis]) < 1.0
    for (apa, side), (face, step, c0) in XFACE.items():
        g = geo.x_face(apa, face)
        assert g.side == side and g.step == step and abs(g.c0 - c0) < 0.3
        assert g.row_step == side  # x grows with tick on the +x side only
        assert abs(abs(g.x_of_tick[1]) - DRIFT) < 1e-3
    for p, k in ADC_PER_MEV.items():
        assert geo.adc_per_mev[p] == pytest.approx(k, rel=0.01)
    # round trip through JSON
    assert GeometryTable.from_dict(geo.to_dict()) == geo


def test_images_orientation_and_position_as_constructed(ingested, synthetic):
    result, ef = ingested
    _, per_event = synthetic
    b = ef.read()
    geo = result.geometry
    for ev, (apa, side, vtx, d, _, _, kind) in EVENTS.items():
        if kind in ("no_electron", "noise_only") or ev == 6:
            continue
        i = _event_index(ef, ev)
        d = unit(d)
        assert ef.source["events"]["apa"][i] == apa and ef.source["events"]["side"][i] == side
        for j, p in enumerate(PLANES):
            view, step, c0 = plane_for(apa, side, p)
            img = b.images[p][i]
            t_org, ch_org = b.window_origin[i, j]
            # where the vertex must sit, from the test's own geometry
            vt = tick_float(view, np.array(vtx[0]))
            vrow = (vt - t_org) * side + 0.5
            vch = c0 + step * (np.asarray(vtx) @ E_AXIS[p]) / PITCH[p]
            dcol = step * (vch - (ch_org % 2560))
            vcol = (np.mod(dcol + 400, 800) - 400 if view != "X" else dcol) + 0.5
            fitted = geo.pixel_of(apa, side, p, np.asarray(vtx), (t_org, ch_org))
            assert abs(fitted[0] - vrow) < 1.0 and abs(fitted[1] - vcol) < 0.3  # 1 tick = 0.08 cm
            # the charge centre lies half a track length along the projected direction
            proj = project_direction(d, p)
            expect = np.array([vrow, vcol]) + 0.5 * TRACK_LENGTH * proj / np.array([DRIFT, PITCH[p]])
            got = _centroid(img)
            # the window is centred on the (single) cluster's charge centre
            assert abs(got[0] - img.shape[0] / 2) < 1.5 and abs(got[1] - img.shape[1] / 2) < 1.0, (ev, p, got)
            assert abs(got[0] - expect[0]) < 3.0 and abs(got[1] - expect[1]) < 1.0, (ev, p, got, expect)
            assert _principal_slope_sign(img, PITCH[p]) == np.sign(proj[0] * proj[1]), (ev, p)
            # every TP of that plane lies in the window: the pixel sum is their ADC sum
            expected_adc = sum(r["adc_integral"] for r in per_event[ev]
                               if r["channel"] // 2560 == apa and r["readout_view"] == "UVX".index(view))
            assert img.sum() == pytest.approx(expected_adc, rel=1e-5), (ev, p)


def test_wrap_event_is_one_contiguous_track(ingested):
    _, ef = ingested
    i = _event_index(ef, 5)
    b = ef.read([i])
    ch_org = int(b.window_origin[0, 0, 1]) % 2560
    img = b.U[0]
    cols = np.flatnonzero(img.sum(axis=0) > 0)
    # the window straddles the wrap (channels ... 798, 799, 0, 1 ...) and the track has no gap
    chans = {(ch_org - c) % 800 for c in cols}  # U on APA 0, +x: channels run against w_U (step -1)
    assert {799, 0} <= chans
    assert np.all(np.diff(cols) == 1)
    # one cluster across the wrap: the window is centred on the whole track, not on one half
    assert abs(_centroid(img)[1] - img.shape[1] / 2) < 1.0
    assert ef.source["events"]["uv_match"][i] == "space"


def test_matching_prefers_space_consistent_clusters_over_brighter_decoys(ingested, synthetic, tmp_path):
    path, per_event = synthetic
    result, ef = ingested
    # charge mode: the brighter X blob (APA 0, no back-tracking) is the main cluster
    i = _event_index(ef, 6)
    assert ef.source["events"]["apa"][i] == 0
    # truth mode: the electron's cluster on APA 1, and the U/V clusters that cross at its z,
    # not the ten-times brighter decoys 40 cm away
    out = tmp_path / "truth.h5"
    ingest_tpstream([path], out, TPStreamOptions(main_cluster="truth"), progress=False,
                    geometry=result.geometry, command="test")
    with open_events(out) as tf:
        j = _event_index(tf, 6)
        assert tf.source["events"]["apa"][j] == 1 and tf.source["events"]["uv_match"][j] == "space"
        b = tf.read([j])
        for p, view in (("U", 0), ("V", 1)):
            true_adc = sum(r["adc_integral"] for r in per_event[6]
                           if r["channel"] // 2560 == 1 and r["readout_view"] == view
                           and r["bt_primary_track_id"] == 2)
            assert b.images[p][0].sum() == pytest.approx(true_adc, rel=1e-5)


def test_truth_counts_and_source(ingested):
    result, ef = ingested
    assert result.counts["skipped_no_primary_electron"] == 1  # event 7
    assert result.counts["skipped_no_x_cluster"] == 1  # event 8: noise TPs only
    assert result.n_read == 9 and result.n_written == 7 == len(ef)
    assert ef.source["counts"] == result.counts
    b = ef.read()
    events = ef.source["events"]["event"]
    assert 7 not in events and 8 not in events
    for k, ev in enumerate(events):
        _apa, _side, vtx, d, _, ke, kind = EVENTS[ev]
        np.testing.assert_allclose(b.direction[k], unit(d), atol=1e-5)
        np.testing.assert_allclose(b.vertex[k], vtx, atol=1e-3)
        assert b.energy[k] == pytest.approx(ke, abs=1e-3)
        assert b.interaction[k] == (0 if kind == "cc" else 1)
        np.testing.assert_allclose(b.nu_direction[k], NU_DIR, atol=1e-5)
        assert b.nu_energy[k] == pytest.approx(ke + 5.0, abs=1e-3)
        if ev != 6:  # all deposited charge lies in the X window: reco energy = deposited energy
            assert b.reco_energy[k] == pytest.approx(ke, rel=0.01)
    assert ef.source["geometry_table"]["format"] == "edkeras-tp-geometry"
    assert ef.source["options"]["max_time_gap"] == 3


def test_data_without_truth_reuses_geometry_table(synthetic, ingested, tmp_path):
    _, ef = ingested
    data = tmp_path / "data.root"
    write_synthetic(data, truth=False, bt=False)
    table = tmp_path / "geo.json"
    GeometryTable.from_dict(ef.source["geometry_table"]).save(table)
    with pytest.raises(InputError, match="geometry"):
        ingest_tpstream([data], tmp_path / "x.h5", TPStreamOptions(truth=False), progress=False)
    out = tmp_path / "data.h5"
    res = ingest_tpstream([data], out, TPStreamOptions(truth=False), geometry=table, progress=False)
    assert res.counts["skipped_no_x_cluster"] == 1 and res.n_written == 8  # event 7 kept: no truth needed
    with open_events(out) as df:
        bd = df.read()
        assert np.isnan(bd.direction).all() and (bd.interaction == -1).all()
        bs = ef.read()
        for k, ev in enumerate(ef.source["events"]["event"]):
            j = df.source["events"]["event"].index(ev)
            for p in PLANES:  # same TPs, same table: the same images
                np.testing.assert_array_equal(bd.images[p][j], bs.images[p][k])


def test_cli_ingest_and_errors(synthetic, tmp_path, capsys):
    path, _ = synthetic
    out = tmp_path / "cli.h5"
    geo = tmp_path / "geo.json"
    rc = cli_main(["ingest-tpstream", str(path), "--out", str(out), "--image-shape", "64", "16",
                   "--save-geometry-table", str(geo), "--max-time-gap", "4"])
    assert rc == 0 and out.exists() and geo.exists()
    text = capsys.readouterr().out
    assert "wrote 7 of 9 events" in text and "no primary electron 1" in text
    with open_events(out) as ef:
        assert ef.image_shape == (64, 16) and ef.source["options"]["max_time_gap"] == 4
    assert cli_main(["ingest-tpstream", str(path), "--out", str(out)]) == 1  # exists, no --force
    assert "exists" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------
# (c) bad input


def test_missing_trees_and_branches_are_named(tmp_path):
    no_truth = tmp_path / "no_particles.root"
    write_synthetic(no_truth, drop_trees=("mcparticles",))
    with pytest.raises(InputError, match="mcparticles"):
        ingest_tpstream([no_truth], tmp_path / "a.h5", progress=False)
    no_adc = tmp_path / "no_adc.root"
    write_synthetic(no_adc, drop_tp_branch="adc_integral")
    with pytest.raises(InputError, match="adc_integral"):
        ingest_tpstream([no_adc], tmp_path / "b.h5", progress=False)
    not_root = tmp_path / "junk.root"
    not_root.write_text("this is not ROOT")
    with pytest.raises(InputError, match="not a readable ROOT file"):
        ingest_tpstream([not_root], tmp_path / "c.h5", progress=False)
    empty = tmp_path / "empty.root"
    with uproot.recreate(empty) as f:
        f.mktree("other", {"x": np.int32}).extend({"x": np.arange(2, dtype=np.int32)})
    with pytest.raises(InputError, match="TriggerPrimitives"):
        ingest_tpstream([empty], tmp_path / "d.h5", progress=False)
    assert not list(tmp_path.glob("*.h5"))  # nothing half-written
    with pytest.raises(InputError, match="main_cluster"):
        TPStreamOptions(main_cluster="biggest")


# ----------------------------------------------------------------------------------------
# (b) the real DUNE ES file


@pytest.mark.skipif(not REAL_TP_FILE.exists(), reason="real TP file not present")
def test_real_es_file_orientation(tmp_path):
    out = tmp_path / "es.h5"
    result = ingest_tpstream([REAL_TP_FILE], out, progress=False, command="test")
    assert result.n_written == 10 and result.n_read == 10
    for p, ref in {"U": 677.0, "V": 564.0, "X": 3996.0}.items():  # REAL_TP_STATS.md slopes
        assert result.adc_per_mev[p] == pytest.approx(ref, rel=0.01)
    ef = open_events(out)
    b = ef.read()
    assert np.isfinite(b.direction).all() and (b.interaction == 1).all()
    geo = GeometryTable.from_dict(ef.source["geometry_table"])
    apas = np.array(ef.source["events"]["apa"])
    sides = np.array(ef.source["events"]["side"])
    assert set(apas.tolist()) == {0, 1, 2, 3} and set(sides.tolist()) == {-1, 1}
    # what the fit finds in DUNE 1x2x2: on the -x side the wrapped physical V wires measure w_U,
    # and the upper APAs (1, 3) number their induction channels the other way from the lower (0, 2)
    for g in geo.planes:
        if g.view != "X":
            assert (g.axis == g.view) == (g.side == 1)
    assert geo.lookup(0, 1, "U").step == geo.lookup(2, 1, "U").step == -geo.lookup(1, 1, "U").step
    assert geo.lookup(3, 1, "U").step == geo.lookup(1, 1, "U").step
    slope_ok = np.zeros((len(b), 3), bool)
    offset_ok = np.zeros((len(b), 3), bool)
    for i in range(len(b)):
        for j, p in enumerate(PLANES):
            img = b.images[p][i]
            proj = project_direction(b.direction[i], p)
            slope_ok[i, j] = _principal_slope_sign(img, PITCH[p]) == np.sign(proj[0] * proj[1])
            vpix = geo.pixel_of(apas[i], sides[i], p, b.vertex[i], b.window_origin[i, j])
            offset = (_centroid(img) - vpix) * np.array([DRIFT, PITCH[p]])
            offset_ok[i, j] = offset @ proj > 0
    per_plane = slope_ok.mean(axis=0)
    print("slope-sign agreement per plane U, V, X:", per_plane,
          "per APA:", {a: slope_ok[apas == a].mean() for a in range(4)},
          "offset agreement:", offset_ok.mean(axis=0))
    assert (per_plane >= 0.7).all()  # measured 0.9, 0.8, 0.7 (chance 0.5)
    for a in range(4):  # every APA, both orientations, above chance
        assert slope_ok[apas == a].mean() > 0.6
    assert (offset_ok.mean(axis=0) >= 0.9).all()  # measured 1.0 on every plane
    ef.close()
