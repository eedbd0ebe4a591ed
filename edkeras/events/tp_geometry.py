"""The wire geometry of DUNE's far-detector APAs, fitted from the back-tracked positions of trigger primitives.

Each readout plane (U, V, and each X face) of an APA gets a channel axis in the y–z plane:
:func:`fit_geometry` finds it from TPs whose true position is known; a
:class:`GeometryTable` holds it and is saved beside an ingested file.

Method notes: ``docs/methods.md``, section ``edkeras.events.tpstream``.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from edkeras.core.detector import ALPHA_DEG, PITCH, PLANES, wire_coordinate
from edkeras.core.errors import InputError
from edkeras.core.files import write_text
from edkeras.events.tpstream import (
    _NO_BT,
    DEFAULT_ADC_PER_MEV,
    DEFAULT_OPTIONS,
    ROOT_DIR,
    SIMIDE_BRANCHES,
    TPStreamOptions,
    _event_keys,
    _find_tp_tree,
    _groups,
    _names,
    _open_root,
    _read_truth,
    _ttree,
    read_tpstream,
)

__all__ = ['CHANNELS_PER_APA', 'INDUCTION_WIRES', 'MIN_SPREAD_CM', 'X_FACES', 'GeometryTable', 'PlaneGeometry', 'fit_geometry']


CHANNELS_PER_APA = 2560
"""Channel map (REAL_TP_STATS.md): per APA, local U 0–799, V 800–1599, X 1600–2079 and
2080–2559 (two faces); channel number = APA · 2560 + local channel."""


INDUCTION_WIRES = 800
"""Channels per induction plane; the wrapped wires repeat with this period on each face."""


X_FACES: tuple[tuple[int, int], tuple[int, int]] = ((1600, 2080), (2080, 2560))
"""Local channel ranges [first, last + 1) of the two X faces."""


MIN_SPREAD_CM = 1.0  # minor-axis spread in y-z needed to report a free wire-angle fit


_COS_A = math.cos(math.radians(ALPHA_DEG))


_AXIS_ANGLE = {"U": -ALPHA_DEG, "V": ALPHA_DEG, "X": 0.0}
"""Angle θ of each canonical wire-coordinate axis e = (0, sin θ, cos θ) in the y–z plane."""


@dataclass(frozen=True)
class PlaneGeometry:
    """How one readout plane of one APA maps channels and ticks, for charge drifting from one side.

    The wire coordinate measured by this plane is ``w = r · e_axis`` (cm) with ``e_axis`` the
    canonical unit vector of docs/formats.md §1.3; channels are consecutive wires:
    ``local channel ≡ c0 + step · w / pitch`` (mod ``period`` for the wrapped induction wires).

    Args:
        apa: APA number (channel // 2560).
        view: readout plane, ``"U"``, ``"V"`` (readout_view 0, 1) or ``"X"``.
        face: X face 0 (local channels 1600–2079) or 1 (2080–2559); ``None`` for U and V.
        side: −1 when the charge drifted from x < 0, +1 from x > 0.
        axis: the canonical wire coordinate this plane measures on that side (U, V or X).
        step: +1 when channel numbers increase with ``w_axis``, −1 when they decrease.
        c0: local channel at ``w_axis = 0`` (mod ``period``).
        pitch: wire pitch, cm.
        period: 800 for wrapped induction planes, ``None`` for X.
        x_of_tick: (a, b): x = a + b · tick (cm; TPC ticks); ``b < 0`` means rows are flipped.
        rms: residual of the channel fit, channels.
        n_points: back-tracked points used.
        angle_deg: fitted wire-coordinate angle θ, e = (0, sin θ, cos θ) (None when too few
            points for a free fit); −35.71 is ``e_U``, +35.71 ``e_V``, 0 ``e_X``.
    """

    apa: int
    view: str
    face: int | None
    side: int
    axis: str
    step: int
    c0: float
    pitch: float
    period: int | None
    x_of_tick: tuple[float, float]
    rms: float
    n_points: int
    angle_deg: float | None = None

    @property
    def row_step(self) -> int:
        """+1 when tick increases with +x (rows in tick order), −1 when rows are flipped."""
        return 1 if self.x_of_tick[1] >= 0 else -1

    def wire_units(self, local_channel: np.ndarray) -> np.ndarray:
        """Wire coordinate in pitches, ``w / pitch`` (in [0, period) for wrapped planes)."""
        u = self.step * (np.asarray(local_channel, dtype=np.float64) - self.c0)
        return np.mod(u, self.period) if self.period else u

    def channel_of(self, w_cm: np.ndarray) -> np.ndarray:
        """Local channel (float) reading wire coordinate ``w_cm``; wrapped into the plane's block."""
        ch = self.c0 + self.step * np.asarray(w_cm, dtype=np.float64) / self.pitch
        if self.period:
            block = _view_block(self.view)[0]
            ch = block + np.mod(ch - block, self.period)
        return ch

    def tick_of_x(self, x: np.ndarray) -> np.ndarray:
        a, b = self.x_of_tick
        return (np.asarray(x, dtype=np.float64) - a) / b


@dataclass(frozen=True)
class GeometryTable:
    """Per APA, plane and drift side geometry, plus the ADC/MeV calibration, fitted from data.

    Args:
        planes: one :class:`PlaneGeometry` per (APA, readout plane, side) that was measured.
        adc_per_mev: ADC per MeV per readout plane (U, V, X).
        calibration: how ``adc_per_mev`` was obtained (method, events, per-plane fit).
        provenance: files, command and point counts the table was made from.
    """

    planes: tuple[PlaneGeometry, ...]
    adc_per_mev: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_ADC_PER_MEV))
    calibration: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)

    def lookup(self, apa: int, side: int, axis: str) -> PlaneGeometry | None:
        """The plane of ``apa`` measuring canonical coordinate ``axis`` for charge from ``side``."""
        for p in self.planes:
            if p.apa == apa and p.side == side and p.axis == axis:
                return p
        return None

    def x_face(self, apa: int, face: int) -> PlaneGeometry | None:
        """The X face ``face`` (0 or 1) of ``apa``, which carries the side it reads."""
        for p in self.planes:
            if p.apa == apa and p.view == "X" and p.face == face:
                return p
        return None

    def to_dict(self) -> dict[str, Any]:
        planes = []
        for p in self.planes:
            d = asdict(p)
            d["x_of_tick"] = list(p.x_of_tick)
            planes.append(d)
        return {
            "format": "edkeras-tp-geometry",
            "version": 1,
            "planes": planes,
            "adc_per_mev": dict(self.adc_per_mev),
            "calibration": self.calibration,
            "provenance": self.provenance,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "geometry table") -> GeometryTable:
        if not isinstance(data, dict) or data.get("format") != "edkeras-tp-geometry":
            raise InputError(f"{where}: not an edkeras TP geometry table (format 'edkeras-tp-geometry' expected)")
        names = {f.name for f in fields(PlaneGeometry)}
        planes = []
        for i, d in enumerate(data.get("planes", [])):
            unknown = set(d) - names
            missing = {f.name for f in fields(PlaneGeometry) if f.name != "angle_deg"} - set(d)
            if unknown or missing:
                raise InputError(
                    f"{where}: planes[{i}] has unknown keys {sorted(unknown)} / lacks {sorted(missing)}; "
                    f"valid keys: {sorted(names)}"
                )
            d = dict(d)
            d["x_of_tick"] = tuple(float(v) for v in d["x_of_tick"])
            planes.append(PlaneGeometry(**d))
        if not planes:
            raise InputError(f"{where}: holds no planes")
        adc = {k: float(v) for k, v in data.get("adc_per_mev", DEFAULT_ADC_PER_MEV).items()}
        if set(adc) != set(PLANES):
            raise InputError(f"{where}: adc_per_mev must have keys U, V, X; received {sorted(adc)}")
        return cls(tuple(planes), adc, dict(data.get("calibration", {})), dict(data.get("provenance", {})))

    def save(self, path: str | os.PathLike) -> Path:
        """Write the table as JSON (atomically)."""

        return write_text(path, json.dumps(self.to_dict(), indent=1, sort_keys=True))

    @classmethod
    def load(cls, path: str | os.PathLike) -> GeometryTable:
        path = Path(path)
        if not path.exists():
            raise InputError(f"{path}: no such geometry table")
        try:
            data = json.loads(path.read_text())
        except (ValueError, UnicodeDecodeError) as e:
            raise InputError(f"{path}: geometry table is not valid JSON ({e})") from None
        return cls.from_dict(data, where=str(path))

    def pixel_of(
        self, apa: int, side: int, axis: str, points: np.ndarray, origin: Sequence[int]
    ) -> np.ndarray:
        """Fractional (row, column) of 3-D points in an ingested image (to draw a vertex or a track).

        Args:
            apa, side: the event's APA and drift side (``source['events']`` of the event file).
            axis: canonical plane ``"U"``, ``"V"`` or ``"X"``.
            points: (..., 3) positions, cm.
            origin: the event's ``window_origin`` row for this plane: (tick, global channel).

        Returns:
            (..., 2) float (row, column); pixel (r, c) covers [r, r + 1) × [c, c + 1) in these
            units (centres at r + ½, c + ½). Wrapped planes give the column nearest the window.
        """

        g = self.lookup(apa, side, axis)
        if g is None:
            raise InputError(f"geometry table: APA {apa} side {side:+d} has no plane measuring {axis}")
        pts = np.asarray(points, dtype=np.float64)
        tick = g.tick_of_x(pts[..., 0])
        row = (tick - origin[0]) * g.row_step + 0.5
        ch = g.channel_of(wire_coordinate(pts, axis))
        col = g.step * (ch - (int(origin[1]) % CHANNELS_PER_APA))
        if g.period:
            col = _wrap(col, g.period)
        return np.stack([row, col + 0.5], axis=-1)

    def describe(self) -> str:
        """One line per (APA, side): which physical plane feeds each canonical image, and the steps."""
        lines = []
        for apa in sorted({p.apa for p in self.planes}):
            for side in (-1, 1):
                parts = []
                for axis in PLANES:
                    p = self.lookup(apa, side, axis)
                    if p is None:
                        parts.append(f"{axis}<-?")
                    else:
                        src = p.view if p.face is None else f"X{p.face}"
                        parts.append(f"{axis}<-{src}(ch{'+' if p.step > 0 else '-'},rows{'+' if p.row_step > 0 else '-'})")
                lines.append(f"APA {apa} x{'<' if side < 0 else '>'}0: " + " ".join(parts))
        return "\n".join(lines)


def _view_of_local(local: np.ndarray) -> np.ndarray:
    """Readout plane index per local channel: 0 U, 1 V, 2 X face 0, 3 X face 1."""
    local = np.asarray(local)
    return np.select([local < 800, local < 1600, local < 2080], [0, 1, 2], 3)


def _view_block(view: str) -> tuple[int, int]:
    return {"U": (0, 800), "V": (800, 1600), "X": (1600, 2560)}[view]


def _fit_channel_axis(
    local: np.ndarray, y: np.ndarray, z: np.ndarray, view: str
) -> tuple[str, int, float, float, float | None, float]:
    """Choose (axis, step, c0) that best explains ``local ≡ c0 + step·w_axis/pitch``.

    Returns (axis, step, c0, rms, free-fit angle or None, rms ratio best/second-best axis).
    """
    pitch = PITCH[view]
    period = INDUCTION_WIRES if view in ("U", "V") else None
    candidates = ("U", "V") if period else ("X",)

    def score(theta_deg: float, step: int) -> tuple[float, float]:
        th = math.radians(theta_deg)
        w = y * math.sin(th) + z * math.cos(th)
        r = local - step * w / pitch
        if period:
            c0 = np.angle(np.exp(2j * np.pi * r / period).mean()) * period / (2 * np.pi)
            dev = np.mod(r - c0 + period / 2, period) - period / 2
            c0 = c0 + np.median(dev)
            dev = np.mod(r - c0 + period / 2, period) - period / 2
            c0 = c0 % period + _view_block(view)[0] - (_view_block(view)[0] % period)
        else:
            c0 = float(np.median(r))
            dev = r - c0
        return float(np.sqrt(np.mean(dev**2))), float(c0)

    results = []
    for axis in candidates:
        for step in (1, -1):
            rms, c0 = score(_AXIS_ANGLE[axis], step)
            results.append((rms, axis, step, c0))
    results.sort()
    best = results[0]
    other = [r for r in results if r[1] != best[1]]
    ratio = other[0][0] / max(best[0], 1e-9) if other else float("inf")
    angle = None
    # a free angle needs points spread in two dimensions (one straight track fixes no angle)
    if local.size >= 20 and np.sqrt(np.linalg.eigvalsh(np.cov(np.stack([y, z])))[0]) >= MIN_SPREAD_CM:
        angle = _free_angle(local, y, z, pitch, period)
    return best[1], best[2], best[3], best[0], angle, ratio


def _free_angle(local: np.ndarray, y: np.ndarray, z: np.ndarray, pitch: float, period: int | None) -> float:
    """Angle θ (degrees) of e = (0, sin θ, cos θ) that best explains the channels (reported only).

    Scans θ in 1° steps, then 0.05° around the best; the score is the spread of
    ``channel ∓ w/pitch`` (circular for wrapped planes), so no offset needs fitting.
    """
    if local.size > 2000:  # a fixed subset is plenty for a reported angle
        sub = np.random.default_rng(0).choice(local.size, 2000, replace=False)
        local, y, z = local[sub], y[sub], z[sub]

    def spread(theta_deg: np.ndarray) -> np.ndarray:
        th = np.radians(theta_deg)[:, None]
        w = (y[None, :] * np.sin(th) + z[None, :] * np.cos(th)) / pitch
        out = []
        for sign in (1, -1):
            r = local[None, :] - sign * w
            if period:
                out.append(1.0 - np.abs(np.exp(2j * np.pi * r / period).mean(axis=1)))
            else:
                out.append(r.std(axis=1))
        return np.minimum(*out)

    coarse = np.arange(-89.5, 90.0, 1.0)
    best = coarse[int(np.argmin(spread(coarse)))]
    fine = best + np.arange(-1.0, 1.0001, 0.05)
    return round(float(fine[int(np.argmin(spread(fine)))]), 2)


def fit_geometry(
    paths: Sequence[str | os.PathLike],
    options: TPStreamOptions = DEFAULT_OPTIONS,
    *,
    min_points: int = 5,
    max_rms: float = 1.5,
    command: str | None = None,
    progress: bool = False,
) -> GeometryTable:
    """Fit the channel and tick geometry, and the ADC/MeV per plane, from back-tracked simulation.

    Points: every back-tracked TP (``bt_x, bt_y, bt_z`` against its channel and peak tick)
    and the ``simides`` (true ionisation position against channel) when present. Per APA,
    readout plane and drift side (sign of x) the channel is fitted as ``c0 + step·w/pitch``
    for each candidate wire coordinate (U and V axes for induction planes, modulo 800;
    X for collection) and both directions; the best is kept when it fits to ``max_rms``
    channels and (U/V) beats the other axis clearly. Each X face gets the side most of its
    points lie on. x against tick is fitted per side with one slope and an intercept per
    readout plane (all APAs share the cathode geometry).

    The ADC/MeV per plane is the slope through 0 of Σ adc_integral of the TPs back-tracked
    to the primary electron (|bt_primary_track_id| = its track id) against its deposited
    energy on that plane (``simides`` energy of its track; when ``simides`` is absent,
    (edep + shower_edep)/3 of ``mcparticles``, which sums the three planes), over events with
    deposits on every plane; without the truth trees, or with fewer than 3 such events, the
    table carries :data:`DEFAULT_ADC_PER_MEV` and says so in ``calibration``.

    Args:
        paths: simulation TP dumps with back-tracking.
        options: reading options.
        min_points: fewest points for a plane/side fit.
        max_rms: largest accepted channel residual (channels).
        command: the command line to record (default: ``sys.argv``).
        progress: show a tqdm bar.

    Returns:
        the :class:`GeometryTable`.

    Raises:
        InputError: no back-tracked TP in the files, or an X face seen on both sides.
    """
    from tqdm.auto import tqdm

    pts: dict[str, list[np.ndarray]] = {k: [] for k in ("channel", "x", "y", "z", "tick", "is_tp")}
    calib: dict[tuple, dict[str, float]] = {}  # (file, run, subrun, event) -> sums
    n_sim = 0
    total = 0
    with_truth = True  # the calibration needs the truth trees; the channel map only back-tracking
    for path in paths:
        f = _open_root(path)
        total += _ttree(f, Path(path), _find_tp_tree(f, Path(path), options.tp_tree), "trigger primitives").num_entries
        have = {k.split(";")[0] for k in _names(f)}
        with_truth &= {f"{ROOT_DIR}/mcparticles", f"{ROOT_DIR}/mctruths"} <= have
    opts = replace(options, truth=with_truth, main_cluster="charge")
    bar = tqdm(total=total, unit="TP", desc="geometry fit", disable=not progress, leave=False)
    try:
        for ev in read_tpstream(paths, opts, progress=bar, need_bt=True):
            t = ev.tps
            m = t["bt_x"] > _NO_BT
            if m.any():
                pts["channel"].append(t["channel"][m])
                for c in "xyz":
                    pts[c].append(t[f"bt_{c}"][m])
                pts["tick"].append((t["tick"] + t["stp"])[m].astype(np.float64))
                pts["is_tp"].append(np.ones(int(m.sum()), bool))
            if ev.truth is not None:
                e = (np.abs(t["bt_id"]) == ev.truth.track_id) & m
                view = _view_of_local(t["channel"] % CHANNELS_PER_APA)
                key = (ev.file_index, ev.run, ev.subrun, ev.event)
                calib[key] = {p: float(t["adc"][e & (np.minimum(view, 2) == i)].sum()) for i, p in enumerate(PLANES)}
    finally:
        bar.close()
    deposits: dict[tuple, dict[str, float]] = {}
    for fi, path in enumerate(paths):
        f = _open_root(path)
        path = Path(path)
        truth = _read_truth(f, path) if with_truth else {}
        try:
            st = f[f"{ROOT_DIR}/simides"]
            has_sim = set(SIMIDE_BRANCHES) <= _names(st)
        except Exception:
            has_sim = False
        if has_sim:
            every = max(1, math.ceil(st.num_entries / max(options.max_geometry_points, 1)))
            for a in st.iterate(list(SIMIDE_BRANCHES), step_size=options.chunk_entries, library="np"):
                sel = slice(None, None, every)
                pts["channel"].append(a["channel"][sel].astype(np.int64))
                for c in "xyz":
                    pts[c].append(a[c][sel].astype(np.float64))
                pts["tick"].append(np.full(len(a["channel"][sel]), np.nan))
                pts["is_tp"].append(np.zeros(len(a["channel"][sel]), bool))
                n_sim += len(a["channel"][sel])
                keys = _event_keys(a)
                view = np.minimum(_view_of_local(a["channel"] % CHANNELS_PER_APA), 2)
                for k, idx in _groups(keys):
                    tr = truth.get(k)
                    if tr is None:
                        continue
                    idx = idx[np.abs(a["trackID"][idx]) == tr.track_id]
                    d = deposits.setdefault((fi, *k), dict.fromkeys(PLANES, 0.0))
                    for i, p in enumerate(PLANES):
                        d[p] += float(a["energy"][idx[view[idx] == i]].sum())
        elif with_truth:
            pt = f[f"{ROOT_DIR}/mcparticles"]
            if {"edep", "shower_edep"} <= _names(pt):
                p = pt.arrays(["Event", "Run", "SubRun", "g4_track_id", "edep", "shower_edep"], library="np")
                keys = _event_keys(p)
                for i in range(len(keys)):
                    k = tuple(keys[i].tolist())
                    tr = truth.get(k)
                    if tr is not None and int(p["g4_track_id"][i]) == tr.track_id:
                        e = float(p["edep"][i] + p["shower_edep"][i]) / 3.0
                        deposits[(fi, *k)] = dict.fromkeys(PLANES, e)
    arr = {k: (np.concatenate(v) if v else np.zeros(0)) for k, v in pts.items()}
    if not arr["is_tp"].any():
        raise InputError(
            f"{', '.join(map(str, paths))}: no back-tracked TP (bt_x != -99999); the geometry cannot be fitted "
            "from these files; pass a table made from simulation with --geometry-table"
        )
    ch = arr["channel"].astype(np.int64)
    apa, local = ch // CHANNELS_PER_APA, ch % CHANNELS_PER_APA
    pid = _view_of_local(local)
    side = np.where(arr["x"] < 0, -1, 1)
    ok = np.isfinite(arr["x"]) & np.isfinite(arr["y"]) & np.isfinite(arr["z"])

    # tick -> x: per side, one slope, one intercept per readout view (U, V, X)
    drift: dict[int, dict[str, Any]] = {}
    for s in (-1, 1):
        m = arr["is_tp"] & ok & (side == s)
        if m.sum() < 3:
            continue
        v = np.minimum(pid[m], 2)
        cols = [arr["tick"][m]] + [(v == i).astype(np.float64) for i in range(3)]
        use = [0] + [i + 1 for i in range(3) if (v == i).any()]
        a_mat = np.stack([cols[i] for i in use], 1)
        coef, *_ = np.linalg.lstsq(a_mat, arr["x"][m], rcond=None)
        intercept = {PLANES[u - 1]: float(c) for u, c in zip(use[1:], coef[1:])}
        mean_int = float(np.mean(list(intercept.values())))
        drift[s] = {"slope": float(coef[0]), "intercept": {p: intercept.get(p, mean_int) for p in PLANES},
                    "n_points": int(m.sum()), "tick_span": float(np.ptp(arr["tick"][m]))}

    planes: list[PlaneGeometry] = []
    rejected: list[dict[str, Any]] = []
    for a in np.unique(apa[ok]).tolist():
        for p in range(4):
            view = PLANES[min(p, 2)]
            face = p - 2 if p >= 2 else None
            mp = ok & (apa == a) & (pid == p)
            sides = (-1, 1)
            if face is not None and mp.any():
                frac = float(np.mean(side[mp] > 0))
                if 0.1 < frac < 0.9 and mp.sum() >= 2 * min_points:
                    raise InputError(
                        f"APA {a} X face {face}: back-tracked points lie on both sides of the APA "
                        f"({frac:.0%} at x > 0); expected one side per collection face"
                    )
                sides = (1,) if frac >= 0.5 else (-1,)
            for s in sides:
                m = mp & (side == s)
                if face is not None:
                    m = mp
                n = int(m.sum())
                if n < min_points or s not in drift:
                    if n:
                        rejected.append({"apa": a, "view": view, "face": face, "side": s, "n_points": n,
                                         "why": "too few points" if n < min_points else "no drift fit"})
                    continue
                axis, step, c0, rms, angle, ratio = _fit_channel_axis(
                    local[m].astype(np.float64), arr["y"][m], arr["z"][m], view
                )
                if rms > max_rms or (view != "X" and ratio < 1.5):
                    rejected.append({"apa": a, "view": view, "face": face, "side": s, "n_points": n,
                                     "why": f"ambiguous or poor fit (rms {rms:.2f} ch, other axis ratio {ratio:.2f})"})
                    continue
                planes.append(PlaneGeometry(
                    apa=int(a), view=view, face=face, side=s, axis=axis, step=step, c0=round(c0, 3),
                    pitch=PITCH[view], period=INDUCTION_WIRES if view != "X" else None,
                    x_of_tick=(round(drift[s]["intercept"][view], 4), round(drift[s]["slope"], 6)),
                    rms=round(rms, 3), n_points=n, angle_deg=angle,
                ))
    # calibration
    n_ev, sums = 0, np.zeros((3, 2))
    per_event = []
    for key, adc in calib.items():
        dep = deposits.get(key)
        if dep is None or not all(dep[p] > 0 for p in PLANES):
            continue
        n_ev += 1
        for i, p in enumerate(PLANES):
            sums[i] += (adc[p] * dep[p], dep[p] ** 2)
        per_event.append({"adc": adc, "deposit_mev": dep})
    if n_ev >= 3:
        adc_per_mev = {p: round(float(sums[i, 0] / sums[i, 1]), 1) for i, p in enumerate(PLANES)}
        method = ("slope through 0 of sum adc_integral of TPs back-tracked to the primary electron vs its "
                  "deposited energy per plane (" + ("simides" if n_sim else "mcparticles (edep+shower_edep)/3") + ")")
    else:
        adc_per_mev = dict(DEFAULT_ADC_PER_MEV)
        method = f"default (REAL_TP_STATS.md, ES slopes): only {n_ev} events with deposits on every plane"
    table = GeometryTable(
        planes=tuple(planes),
        adc_per_mev=adc_per_mev,
        calibration={"method": method, "n_events": n_ev},
        provenance={
            "files": [str(Path(p).resolve()) for p in paths],
            "command": command if command is not None else " ".join(sys.argv),
            "n_tp_points": int(arr["is_tp"].sum()),
            "n_simide_points": n_sim,
            "drift": {str(s): d for s, d in drift.items()},
            "not_measured": rejected,
        },
    )
    return table


def _wrap(d: np.ndarray, period: float | None) -> np.ndarray:
    if not period:
        return d
    return np.mod(d + period / 2, period) - period / 2
