"""DUNE trigger-primitive dumps (``triggerAnaDumpTPs`` ROOT files) to canonical three-plane images.

A trigger primitive (TP) is one pulse above threshold on one wire: channel, start time,
samples over threshold, time to peak, peak and integral ADC. The DUNE online chain
(``triggerAnaDumpTPs``) writes them, with the simulation truth, into ROOT trees. This
module reads those files with uproot, in chunks, and turns every event into the three
canonical-frame images of DESIGN.md §3:

1. **Truth** (simulation): the primary electron (``pdg == 11``, ``process == 'primary'``,
   ``mother == 0``) gives the direction p/|p|, the kinetic energy and the vertex; the
   generator's final state in ``mctruths`` tells ES (an outgoing neutrino) from CC (a
   potassium nucleus, Z = 19); the incoming neutrino gives the supernova direction.
2. **Clustering** per APA and readout plane (U, V, and each X face), with the public
   pipeline's rules as defaults: TPs with fewer than 2 samples over threshold are dropped;
   two TPs join when their channels differ by at most 2 (on U and V also across the wrap
   799 → 0 of the wrapped induction wires) and the number of empty ticks between one
   pulse's end and the other's start is at most 3; a cluster has at least 2 TPs.
3. **Main cluster**: the X cluster of largest ADC sum in the event (``charge``, usable on
   data) or the largest one holding a TP back-tracked to the primary electron (``truth``).
4. **Plane matching**: U and V clusters of the same APA that overlap the main cluster in
   time, and whose wires cross at the main cluster's z (a U wire at ``w_U`` and a V wire
   at ``w_V`` meet at z = (w_U + w_V) / (2 cos α), known modulo the wrap period).
5. **Geometry from the data** (:func:`fit_geometry`): per APA, readout plane and drift side,
   the channel is fitted against the back-tracked positions (``bt_y, bt_z`` of TPs and
   ``y, z`` of ``simides``): which canonical wire coordinate the plane measures, which way
   the channel numbers run along it, the channel of ``w = 0``; which x side each X face
   reads; and x against tick. In the DUNE 1x2x2 simulation this finds that the physical U
   plane measures ``w_U`` only on the +x side; on the −x side of the APA (after the wires
   wrap round the frame) the physical U wires measure ``w_V`` and the physical V wires
   ``w_U``; and that the channel numbers of the upper APAs run the other way.
   The canonical U image is therefore drawn from whichever physical plane measures
   ``w_U`` on the electron's side. The fitted table is stored in the output and can be
   saved and reused on data without back-tracking (``--geometry-table``).
6. **Images**: a window of real consecutive wires × ticks centred on the matched cluster's
   charge-weighted centre; every TP in the window is drawn as a "pentagon" pulse by
   :mod:`edkeras.events.tpimage` (the code that draws simulated events too), so that its pixel
   sum equals its ``adc_integral``; rows are flipped where ticks run against +x, columns
   where channels run against ``w_p``.
7. **Reconstructed energy**: the X image's ADC sum divided by the collection plane's
   ADC/MeV, measured from the file (slope through 0 of Σadc of the electron's TPs against
   its deposited energy, per plane) or taken from the geometry table or from
   :data:`DEFAULT_ADC_PER_MEV`.

Example:
    >>> from edkeras.events.tpstream import TPStreamOptions, ingest_tpstream
    >>> result = ingest_tpstream(["es.root"], "es.h5", TPStreamOptions(main_cluster="charge"))
    >>> print(result.summary())
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from edkeras.core.detector import ALPHA_DEG, PITCH, PLANES, Geometry, wire_coordinate
from edkeras.core.errors import InputError
from edkeras.core.files import write_text
from edkeras.events.eventfile import EventBatch, EventFileWriter
from edkeras.events.tpimage import MIN_SOT, THRESHOLD_ADC, draw_tps, pulse_samples

__all__ = [
    "CHANNELS_PER_APA",
    "CLOCK_PER_TICK",
    "DEFAULT_ADC_PER_MEV",
    "ROOT_DIR",
    "THRESHOLD_ADC",
    "EventTruth",
    "GeometryTable",
    "IngestResult",
    "PlaneGeometry",
    "TPEvent",
    "TPStreamOptions",
    "cluster_tps",
    "draw_tps",
    "fit_geometry",
    "ingest_tpstream",
    "pulse_samples",
    "read_tpstream",
]

ROOT_DIR = "triggerAnaDumpTPs"
"""Top directory of a TP dump."""

CLOCK_PER_TICK = 32
"""``time_start`` counts 16 ns clock ticks; one TPC tick (500 ns) is 32 of them."""

CHANNELS_PER_APA = 2560
"""Channel map (REAL_TP_STATS.md): per APA, local U 0–799, V 800–1599, X 1600–2079 and
2080–2559 (two faces); channel number = APA · 2560 + local channel."""

INDUCTION_WIRES = 800
"""Channels per induction plane; the wrapped wires repeat with this period on each face."""

X_FACES: tuple[tuple[int, int], tuple[int, int]] = ((1600, 2080), (2080, 2560))
"""Local channel ranges [first, last + 1) of the two X faces."""


DEFAULT_ADC_PER_MEV: dict[str, float] = {"U": 677.0, "V": 564.0, "X": 3996.0}
"""ADC per MeV per readout plane, used when neither the file nor a table gives a measurement.

From ``shared/physics/REAL_TP_STATS.md`` (ES column): slope through 0 of Σ adc_integral of the
TPs back-tracked to the primary electron against the electron's deposited energy on that
plane (``simides`` energy, = (edep + shower_edep)/3 of ``mcparticles``), DUNE 1x2x2 ES
simulation. :func:`fit_geometry` reproduces 677.3 / 564.2 / 3995.9 on the shipped
``test_es_tpstream.root``. (The earlier pipeline's 900 / 900 / 3600 are 10–40 % off.)
"""

ELECTRON_MASS_MEV = 0.51099895
MIN_SPREAD_CM = 1.0  # minor-axis spread in y-z needed to report a free wire-angle fit
_NO_BT = -99998.0  # back-tracked coordinates are -99999 for noise TPs
_NEUTRINOS = (12, 14, 16)

TP_BRANCHES = (
    "Event", "Run", "SubRun", "channel", "time_start", "samples_over_threshold",
    "samples_to_peak", "adc_integral", "adc_peak",
)
BT_BRANCHES = ("bt_primary_track_id", "bt_x", "bt_y", "bt_z")
MCPARTICLE_BRANCHES = (
    "Event", "Run", "SubRun", "pdg", "mother", "process", "g4_track_id",
    "x", "y", "z", "px", "py", "pz", "energy",
)
MCTRUTH_BRANCHES = ("Event", "Run", "SubRun", "pdg", "status_code", "px", "py", "pz", "energy")
SIMIDE_BRANCHES = ("Event", "Run", "SubRun", "channel", "energy", "trackID", "x", "y", "z")

_COS_A = math.cos(math.radians(ALPHA_DEG))
_AXIS_ANGLE = {"U": -ALPHA_DEG, "V": ALPHA_DEG, "X": 0.0}
"""Angle θ of each canonical wire-coordinate axis e = (0, sin θ, cos θ) in the y–z plane."""


# --------------------------------------------------------------------------------------
# options


@dataclass(frozen=True)
class TPStreamOptions:
    """Everything that decides how a TP dump becomes images (recorded in the output's ``source``).

    Args:
        min_sot: drop TPs with fewer samples over threshold (noise TPs have 1).
        max_channel_gap: two TPs join a cluster when their channels differ by at most this
            (on U/V measured across the wrap, modulo 800).
        max_time_gap: ... and at most this many empty TPC ticks separate one pulse's end
            from the other's start (overlapping pulses always qualify).
        min_cluster_tps: a cluster needs at least this many TPs.
        main_cluster: ``"charge"`` (largest ADC sum among X clusters; usable on data) or
            ``"truth"`` (largest X cluster holding a TP back-tracked to the primary electron).
        image_shape: (ticks, channels) of each image.
        match_time_tolerance: U/V clusters must overlap the main cluster's tick range widened
            by this many ticks on each side (the induction planes see the charge ≈ 6–12 ticks
            earlier than X).
        match_z_tolerance: cm; a U/V pair is consistent when its wire crossing lies within this
            distance in z of the main cluster's charge centre (modulo the wrap period).
        truth: read ``mcparticles``/``mctruths`` and skip events without a primary electron;
            ``False`` for data without simulation truth (truth is then stored as unknown).
        tp_tree: name of the TP tree inside ``triggerAnaDumpTPs/TriggerPrimitives`` (``None``:
            the only ``tpmakerTPC__*`` tree there).
        adc_per_mev: ADC per MeV per readout plane (keys U, V, X); ``None``: measured from the
            files when they carry truth, else from the geometry table, else
            :data:`DEFAULT_ADC_PER_MEV`.
        chunk_entries: TP-tree entries read at a time.
        max_geometry_points: simides used per file for the geometry fit (evenly subsampled).
    """

    min_sot: int = MIN_SOT
    max_channel_gap: int = 2
    max_time_gap: int = 3
    min_cluster_tps: int = 2
    main_cluster: str = "charge"
    image_shape: tuple[int, int] = (128, 32)
    match_time_tolerance: int = 20
    match_z_tolerance: float = 3.0
    truth: bool = True
    tp_tree: str | None = None
    adc_per_mev: dict[str, float] | None = None
    chunk_entries: int = 500_000
    max_geometry_points: int = 200_000

    def __post_init__(self) -> None:
        if self.main_cluster not in ("charge", "truth"):
            raise InputError(f"main_cluster must be 'charge' or 'truth'; received {self.main_cluster!r}")
        if self.main_cluster == "truth" and not self.truth:
            raise InputError("main_cluster 'truth' needs the simulation truth; received truth=False")
        shape = tuple(int(s) for s in self.image_shape)
        if len(shape) != 2 or min(shape) < 2:
            raise InputError(f"image_shape must be (ticks, channels), both >= 2; received {self.image_shape}")
        object.__setattr__(self, "image_shape", shape)
        for name in ("min_sot", "max_channel_gap", "max_time_gap", "min_cluster_tps",
                     "match_time_tolerance", "chunk_entries", "max_geometry_points"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < 0:
                raise InputError(f"option {name} must be an integer >= 0; received {value!r}")
        if self.min_cluster_tps < 1 or self.chunk_entries < 1:
            raise InputError("options min_cluster_tps and chunk_entries must be >= 1")
        if not self.match_z_tolerance > 0:
            raise InputError(f"match_z_tolerance must be > 0 cm; received {self.match_z_tolerance!r}")
        if self.adc_per_mev is not None and (
            set(self.adc_per_mev) != set(PLANES) or not all(v > 0 for v in self.adc_per_mev.values())
        ):
            raise InputError(
                f"adc_per_mev must give a positive factor for each of U, V, X; received {self.adc_per_mev}"
            )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["image_shape"] = list(self.image_shape)
        return d


# --------------------------------------------------------------------------------------
# geometry


@dataclass(frozen=True)
class PlaneGeometry:
    """How one readout plane of one APA maps channels and ticks, for charge drifting from one side.

    The wire coordinate measured by this plane is ``w = r · e_axis`` (cm) with ``e_axis`` the
    canonical unit vector of DESIGN.md §3; channels are consecutive wires:
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


# --------------------------------------------------------------------------------------
# reading


@dataclass
class EventTruth:
    """Simulation truth of one event (units: cm, MeV)."""

    direction: np.ndarray
    energy: float
    vertex: np.ndarray
    track_id: int
    interaction: int = -1
    nu_direction: np.ndarray = field(default_factory=lambda: np.full(3, np.nan))
    nu_energy: float = float("nan")


@dataclass
class TPEvent:
    """The TPs of one event and its truth.

    ``tps`` holds equal-length arrays: ``channel`` (global), ``tick`` (TPC ticks of the first
    sample), ``sot``, ``stp``, ``adc``, ``peak``, and when back-tracking is present
    ``bt_id``, ``bt_x``, ``bt_y``, ``bt_z``.
    """

    file: str
    file_index: int
    run: int
    subrun: int
    event: int
    tps: dict[str, np.ndarray]
    truth: EventTruth | None = None
    truth_status: str = "ok"  # ok | no_primary_electron | not_read


def _open_root(path: str | os.PathLike) -> Any:
    import uproot

    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such ROOT file")
    try:
        return uproot.open(path)
    except Exception as e:  # uproot raises several kinds for non-ROOT input
        raise InputError(f"{path}: not a readable ROOT file ({type(e).__name__}: {e})") from None


def _names(obj: Any) -> set[str]:
    """Key or branch names of an uproot directory or tree."""
    return set(obj.keys())


def _ttree(f: Any, path: Path, name: str, what: str, hint: str = "") -> Any:
    try:
        obj = f[name]
    except Exception:
        have = sorted({k.split(";")[0] for k in _names(f)})
        raise InputError(
            f"{path}: tree '{name}' ({what}) is missing; found {have[:12]}{hint}"
        ) from None
    if not hasattr(obj, "num_entries"):
        raise InputError(f"{path}: '{name}' is a {type(obj).__name__}, expected a TTree ({what})")
    return obj


def _check_branches(tree: Any, path: Path, name: str, required: Sequence[str], hint: str = "") -> None:
    have = set(tree.keys())
    missing = [b for b in required if b not in have]
    if missing:
        raise InputError(f"{path}: tree '{name}' lacks branches {missing}; expected {list(required)}{hint}")


def _find_tp_tree(f: Any, path: Path, tp_tree: str | None) -> str:
    base = f"{ROOT_DIR}/TriggerPrimitives"
    if tp_tree:
        return tp_tree if tp_tree.startswith(ROOT_DIR) else f"{base}/{tp_tree}"
    try:
        d = f[base]
    except Exception:
        have = sorted({k.split(";")[0] for k in _names(f)})
        raise InputError(
            f"{path}: directory '{base}' (the TP tree) is missing; expected a triggerAnaDumpTPs dump, found {have[:12]}"
        ) from None
    names = sorted({k.split(";")[0] for k, c in d.classnames().items() if c == "TTree" and "/" not in k})
    cand = [n for n in names if n.startswith("tpmakerTPC__")] or names
    if len(cand) != 1:
        raise InputError(
            f"{path}: expected one TP tree 'tpmakerTPC__*' in '{base}'; found {names}; choose one with --tp-tree"
        )
    return f"{base}/{cand[0]}"


def _event_keys(a: dict[str, np.ndarray]) -> np.ndarray:
    return np.stack([a["Run"].astype(np.int64), a["SubRun"].astype(np.int64), a["Event"].astype(np.int64)], 1)


def _groups(keys: np.ndarray) -> Iterator[tuple[tuple[int, int, int], np.ndarray]]:
    """(key, row indices) for every distinct row of ``keys`` (n, 3), in key order."""
    if len(keys) == 0:
        return
    order = np.lexsort(keys.T[::-1])
    k = keys[order]
    cut = np.flatnonzero((np.diff(k, axis=0) != 0).any(axis=1)) + 1
    for idx in np.split(order, cut):
        yield tuple(keys[idx[0]].tolist()), idx


def _read_truth(f: Any, path: Path) -> dict[tuple[int, int, int], EventTruth | None]:
    """Truth per (run, subrun, event): the primary electron and the generator final state.

    Events listed in ``mcparticles`` without a primary electron map to ``None``.
    """
    hint = "; pass --no-truth (truth=False) for files without simulation truth"
    pname, tname = f"{ROOT_DIR}/mcparticles", f"{ROOT_DIR}/mctruths"
    pt = _ttree(f, path, pname, "simulated particles", hint)
    tt = _ttree(f, path, tname, "generator truth", hint)
    _check_branches(pt, path, pname, MCPARTICLE_BRANCHES, hint)
    _check_branches(tt, path, tname, MCTRUTH_BRANCHES, hint)
    out: dict[tuple[int, int, int], EventTruth | None] = {}
    p = pt.arrays(list(MCPARTICLE_BRANCHES), library="np")
    keys = _event_keys(p)
    for k in map(tuple, np.unique(keys, axis=0).tolist()):
        out[k] = None
    cand = np.flatnonzero((p["pdg"] == 11) & (p["mother"] == 0))
    for i in cand:
        if str(p["process"][i]) != "primary":
            continue
        k = tuple(keys[i].tolist())
        energy = float(p["energy"][i]) * 1000.0 - ELECTRON_MASS_MEV
        prev = out.get(k)
        if prev is not None and prev.energy >= energy:
            continue
        mom = np.array([p["px"][i], p["py"][i], p["pz"][i]], dtype=np.float64)
        norm = float(np.linalg.norm(mom))
        if not norm > 0:
            continue
        out[k] = EventTruth(
            direction=mom / norm,
            energy=energy,
            vertex=np.array([p["x"][i], p["y"][i], p["z"][i]], dtype=np.float64),
            track_id=int(p["g4_track_id"][i]),
        )
    t = tt.arrays(list(MCTRUTH_BRANCHES), library="np")
    for k, idx in _groups(_event_keys(t)):
        tr = out.get(k)
        if tr is None:
            out.setdefault(k, None)
            continue
        pdg, status = t["pdg"][idx], t["status_code"][idx]
        final = status == 1
        nu_out = bool((final & np.isin(np.abs(pdg), _NEUTRINOS)).any())
        potassium = bool((final & (pdg > 1_000_000_000) & ((pdg // 10_000) % 1000 == 19)).any())
        tr.interaction = 1 if nu_out and not potassium else 0 if potassium and not nu_out else -1
        nu_in = idx[(status == 0) & np.isin(np.abs(pdg), _NEUTRINOS)]
        if nu_in.size:
            j = nu_in[0]
            mom = np.array([t["px"][j], t["py"][j], t["pz"][j]], dtype=np.float64)
            if np.linalg.norm(mom) > 0:
                tr.nu_direction = mom / np.linalg.norm(mom)
            tr.nu_energy = float(t["energy"][j]) * 1000.0
    return out


def _tp_arrays(a: dict[str, np.ndarray], bt: bool) -> dict[str, np.ndarray]:
    d = {
        "channel": a["channel"].astype(np.int64),
        "tick": (a["time_start"].astype(np.int64) // CLOCK_PER_TICK),
        "sot": a["samples_over_threshold"].astype(np.int64),
        "stp": a["samples_to_peak"].astype(np.int64),
        "adc": a["adc_integral"].astype(np.float64),
        "peak": a["adc_peak"].astype(np.float64),
    }
    if bt:
        d["bt_id"] = a["bt_primary_track_id"].astype(np.int64)
        for c in "xyz":
            d[f"bt_{c}"] = a[f"bt_{c}"].astype(np.float64)
    return d


def read_tpstream(
    paths: Sequence[str | os.PathLike],
    options: TPStreamOptions = TPStreamOptions(),
    progress: Any = None,
    need_bt: bool = False,
) -> Iterator[TPEvent]:
    """Yield the events of one or many TP dumps, reading the TP tree in chunks.

    Args:
        paths: ROOT files written by ``triggerAnaDumpTPs``.
        options: reading options (``truth``, ``tp_tree``, ``chunk_entries``).
        progress: an object with ``update(n_entries)`` (a tqdm bar) or ``None``.
        need_bt: require the back-tracking branches (``bt_*``).

    Returns:
        an iterator of :class:`TPEvent`, in file order; events with truth but no TP at all
        come last in their file, with empty ``tps``.

    Raises:
        InputError: missing file, tree or branch (named), or TPs of one event not contiguous.
    """
    for fi, path in enumerate(paths):
        path = Path(path)
        f = _open_root(path)
        tname = _find_tp_tree(f, path, options.tp_tree)
        tree = _ttree(f, path, tname, "trigger primitives")
        _check_branches(tree, path, tname, TP_BRANCHES)
        bt = set(BT_BRANCHES) <= _names(tree)
        if (need_bt or options.main_cluster == "truth") and not bt:
            _check_branches(tree, path, tname, TP_BRANCHES + BT_BRANCHES,
                            " (back-tracking is needed to fit the geometry or choose the main cluster by truth;"
                            " pass --geometry-table and --main-cluster charge for data)")
        truth = _read_truth(f, path) if options.truth else {}
        seen: set[tuple[int, int, int]] = set()
        branches = list(TP_BRANCHES) + (list(BT_BRANCHES) if bt else [])

        for a in _chunks_by_event(tree, branches, options.chunk_entries, progress):
            keys = _event_keys(a)
            if len(keys) == 0:
                continue
            change = np.flatnonzero((np.diff(keys, axis=0) != 0).any(axis=1)) + 1
            for s, e in zip(np.concatenate([[0], change]), np.concatenate([change, [len(keys)]])):
                k = tuple(keys[s].tolist())
                if k in seen:
                    raise InputError(
                        f"{path}: TPs of run {k[0]} subrun {k[1]} event {k[2]} are not contiguous in '{tname}'; "
                        "expected the TP tree grouped by event"
                    )
                seen.add(k)
                sub = {n: v[s:e] for n, v in a.items()}
                yield _make_event(path, fi, k, _tp_arrays(sub, bt), truth, options)
        for k in sorted(set(truth) - seen):
            empty = _tp_arrays({b: np.zeros(0, dtype=np.int64) for b in branches}, bt)
            yield _make_event(path, fi, k, empty, truth, options)


def _chunks_by_event(tree: Any, branches: list[str], step: int, progress: Any
                     ) -> Iterator[dict[str, np.ndarray]]:
    """Chunks of the TP tree cut at event boundaries (the last event of a chunk waits for the next)."""
    carry: dict[str, np.ndarray] | None = None
    for a in tree.iterate(branches, step_size=step, library="np"):
        n = len(a["Event"])
        if carry is not None:
            a = {k: np.concatenate([carry[k], a[k]]) for k in a}
        keys = _event_keys(a)
        last_start = int(np.flatnonzero((keys != keys[-1]).any(axis=1)).max(initial=-1) + 1) if n else 0
        carry = {k: v[last_start:] for k, v in a.items()}
        yield {k: v[:last_start] for k, v in a.items()}
        if progress is not None:
            progress.update(n)
    if carry is not None:
        yield carry


def _make_event(path: Path, fi: int, k: tuple[int, int, int], tps: dict[str, np.ndarray],
                truth: dict, options: TPStreamOptions) -> TPEvent:
    if not options.truth:
        return TPEvent(str(path), fi, *k, tps, None, "not_read")
    tr = truth.get(k)
    return TPEvent(str(path), fi, *k, tps, tr, "ok" if tr is not None else "no_primary_electron")


# --------------------------------------------------------------------------------------
# clustering and drawing


def _view_of_local(local: np.ndarray) -> np.ndarray:
    """Readout plane index per local channel: 0 U, 1 V, 2 X face 0, 3 X face 1."""
    local = np.asarray(local)
    return np.select([local < 800, local < 1600, local < 2080], [0, 1, 2], 3)


def _view_block(view: str) -> tuple[int, int]:
    return {"U": (0, 800), "V": (800, 1600), "X": (1600, 2560)}[view]


def cluster_tps(
    channel: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
    *,
    period: int | None = None,
    max_channel_gap: int = 2,
    max_time_gap: int = 3,
    min_tps: int = 2,
) -> np.ndarray:
    """Cluster TPs of one plane: connected components of "near in channel and in time".

    Two TPs are neighbours when ``|Δchannel| <= max_channel_gap`` (modulo ``period`` when
    given: the wrapped U/V wires, where channel 799 neighbours 0) and at most
    ``max_time_gap`` empty ticks separate one pulse from the other
    (``max(start) - min(end) <= max_time_gap`` with ``end`` exclusive).

    Args:
        channel: (n,) channel numbers (local to the plane when ``period`` is used).
        start, end: (n,) first tick and one past the last tick of each pulse.
        period: wrap period of the channel numbers, or ``None``.
        max_channel_gap, max_time_gap: neighbour rules.
        min_tps: clusters with fewer TPs are dissolved.

    Returns:
        (n,) int labels 0..k−1 (clusters in order of their first TP in time), −1 for TPs in no cluster.

    Example:
        >>> cluster_tps(np.array([5, 6, 40]), np.array([0, 2, 0]), np.array([3, 5, 4]))
        array([ 0,  0, -1])
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    channel = np.asarray(channel, dtype=np.int64)
    start = np.asarray(start, dtype=np.int64)
    end = np.asarray(end, dtype=np.int64)
    n = channel.size
    labels = np.full(n, -1, dtype=np.int64)
    if n == 0:
        return labels
    order = np.argsort(start, kind="stable")
    s, e, c = start[order], end[order], channel[order]
    hi = np.searchsorted(s, e + max_time_gap, side="right")
    counts = np.maximum(hi - np.arange(n) - 1, 0)
    ii = np.repeat(np.arange(n), counts)
    jj = ii + 1 + (np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts))
    dc = np.abs(c[ii] - c[jj])
    if period:
        dc = np.minimum(dc % period, period - dc % period)
    keep = dc <= max_channel_gap
    graph = coo_matrix((np.ones(int(keep.sum())), (ii[keep], jj[keep])), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    sizes = np.bincount(comp)
    good = sizes[comp] >= min_tps
    # number clusters by their first TP in time (comp is in sorted order already)
    _, first = np.unique(comp, return_index=True)
    rank = np.empty_like(first)
    kept_comps = [k for k in np.argsort(first) if sizes[k] >= min_tps]
    rank[:] = -1
    rank[kept_comps] = np.arange(len(kept_comps))
    lab_sorted = np.where(good, rank[comp], -1)
    labels[order] = lab_sorted
    return labels


# --------------------------------------------------------------------------------------
# geometry fit


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
    options: TPStreamOptions = TPStreamOptions(),
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


# --------------------------------------------------------------------------------------
# per-event processing


@dataclass
class _Cluster:
    apa: int
    pid: int  # 0 U, 1 V, 2 X face 0, 3 X face 1
    index: np.ndarray  # into the event's filtered TPs
    adc: float
    t0: int
    t1: int


def _wrap(d: np.ndarray, period: float | None) -> np.ndarray:
    if not period:
        return d
    return np.mod(d + period / 2, period) - period / 2


def _centre(tps: dict[str, np.ndarray], idx: np.ndarray, plane: PlaneGeometry, threshold: float
            ) -> tuple[float, float]:
    """Charge-weighted centre (tick, wire units) of TPs ``idx`` on ``plane``, wrap-safe."""
    owner, k, value = pulse_samples(tps["sot"][idx], tps["stp"][idx], tps["peak"][idx], tps["adc"][idx], threshold)
    w = np.bincount(owner, weights=value * (k + 0.5), minlength=idx.size)
    q = tps["adc"][idx]
    qs = max(q.sum(), 1e-12)
    tc = float((tps["tick"][idx] * q + w).sum() / qs)
    u = plane.wire_units(tps["channel"][idx] % CHANNELS_PER_APA)
    ref = u[int(np.argmax(q))]
    uc = float(ref + (_wrap(u - ref, plane.period) * q).sum() / qs)
    return tc, uc


@dataclass
class _EventResult:
    images: dict[str, np.ndarray]
    origin: np.ndarray  # (3, 2)
    reco_energy: float
    info: dict[str, Any]


def _process_event(ev: TPEvent, geo: GeometryTable, options: TPStreamOptions, adc_per_mev: dict[str, float]
                   ) -> _EventResult | str:
    """Images of one event, or the reason it is skipped."""
    if options.truth and ev.truth is None:
        return "no_primary_electron"
    t = ev.tps
    keep = t["sot"] >= options.min_sot
    tps = {k: v[keep] for k, v in t.items()}
    n = tps["channel"].size
    apa = tps["channel"] // CHANNELS_PER_APA
    local = tps["channel"] % CHANNELS_PER_APA
    pid = _view_of_local(local)
    # cluster every (APA, plane) at once, groups shifted apart in time so they never touch;
    # induction planes with the modular channel distance (their wires wrap: 799 neighbours 0)
    group = apa * 4 + pid
    span = int(tps["tick"].max(initial=0) + tps["sot"].max(initial=0) + options.max_time_gap + 2)
    labels = np.full(n, -1, dtype=np.int64)
    for is_ind in (True, False):
        m = (pid < 2) == is_ind
        if not m.any():
            continue
        lab = cluster_tps(
            local[m] % INDUCTION_WIRES if is_ind else local[m],
            tps["tick"][m] + group[m] * span, tps["tick"][m] + tps["sot"][m] + group[m] * span,
            period=INDUCTION_WIRES if is_ind else None, max_channel_gap=options.max_channel_gap,
            max_time_gap=options.max_time_gap, min_tps=options.min_cluster_tps,
        )
        base = labels.max(initial=-1) + 1
        labels[m] = np.where(lab >= 0, lab + base, -1)
    clusters: list[_Cluster] = []
    for lab in np.unique(labels[labels >= 0]).tolist():
        idx = np.flatnonzero(labels == lab)
        clusters.append(_Cluster(int(apa[idx[0]]), int(pid[idx[0]]), idx, float(tps["adc"][idx].sum()),
                                 int(tps["tick"][idx].min()), int((tps["tick"][idx] + tps["sot"][idx]).max())))
    xcl = [c for c in clusters if c.pid >= 2]
    if options.main_cluster == "truth":
        tid = ev.truth.track_id
        xcl = [c for c in xcl if (np.abs(tps["bt_id"][c.index]) == tid).any()]
    if not xcl:
        return "no_x_cluster"
    main = max(xcl, key=lambda c: c.adc)
    xface = geo.x_face(main.apa, main.pid - 2)
    if xface is None:
        return "no_geometry"
    side = xface.side
    src = {p: geo.lookup(main.apa, side, p) for p in ("U", "V")}
    if src["U"] is None or src["V"] is None:
        return "no_geometry"
    src["X"] = xface

    # match U and V to the main cluster
    tc_x, uc_x = _centre(tps, main.index, xface, THRESHOLD_ADC["X"])
    z_x = uc_x * xface.pitch
    lo, hi = main.t0 - options.match_time_tolerance, main.t1 + options.match_time_tolerance
    cand: dict[str, list[tuple[_Cluster, float, float]]] = {}
    for p in ("U", "V"):
        pv = PLANES.index(src[p].view)
        cand[p] = []
        for c in clusters:
            if c.apa == main.apa and c.pid == pv and min(c.t1, hi) > max(c.t0, lo):
                tc, uc = _centre(tps, c.index, src[p], THRESHOLD_ADC[src[p].view])
                cand[p].append((c, tc, uc))
    pz = INDUCTION_WIRES * PITCH["U"] / (2 * _COS_A)
    best, best_score, best_dz = None, -1.0, float("nan")
    for cu, _, uu in cand["U"]:
        for cv, _, uv in cand["V"]:
            z_uv = (uu * src["U"].pitch + uv * src["V"].pitch) / (2 * _COS_A)
            dz = float(_wrap(np.array(z_uv - z_x), pz))
            if abs(dz) <= options.match_z_tolerance:
                score = cu.adc / adc_per_mev[src["U"].view] + cv.adc / adc_per_mev[src["V"].view]
                if score > best_score:
                    best, best_score, best_dz = (cu, cv), score, dz
    chosen: dict[str, tuple[_Cluster, float, float] | None] = {}
    if best is not None:
        uv_match = "space"
        for p, c in zip(("U", "V"), best):
            chosen[p] = next(x for x in cand[p] if x[0] is c)
    else:
        uv_match = "time" if (cand["U"] or cand["V"]) else "none"
        for p in ("U", "V"):
            chosen[p] = max(cand[p], key=lambda x: x[0].adc) if cand[p] else None
    chosen["X"] = (main, tc_x, uc_x)

    shape = options.image_shape
    images: dict[str, np.ndarray] = {}
    origin = np.zeros((3, 2), dtype=np.int64)
    info: dict[str, Any] = {"apa": main.apa, "side": side, "uv_match": uv_match,
                            "dz_cm": None if math.isnan(best_dz) else round(best_dz, 2)}
    for i, p in enumerate(PLANES):
        g = src[p]
        sel = (apa == main.apa) & ((pid == PLANES.index(g.view)) if g.view != "X" else (pid == main.pid))
        block0 = _view_block(g.view)[0]
        if chosen[p] is None:
            images[p] = np.zeros(shape, dtype=np.float32)
            origin[i] = (-1, -1)
            continue
        _, tc, uc = chosen[p]
        # column 0 = the wire half a window below the centre along w_p
        u0 = round(uc) - shape[1] // 2
        ch0 = round(g.c0 + g.step * u0)
        if g.period:
            ch0 = block0 + (ch0 - block0) % g.period
        idx = np.flatnonzero(sel)
        dch = local[idx] - ch0
        col = g.step * dch
        if g.period:
            col = np.mod(col, g.period)
        row_step = g.row_step
        t0 = round(tc) - row_step * (shape[0] // 2)
        images[p] = draw_tps(
            tps["tick"][idx], col, tps["sot"][idx], tps["stp"][idx], tps["peak"][idx], tps["adc"][idx],
            tick_origin=t0, row_step=row_step, shape=shape, threshold=THRESHOLD_ADC[g.view],
        )
        origin[i] = (t0, main.apa * CHANNELS_PER_APA + ch0)
    info["views"] = [src[p].view if src[p].face is None else f"X{src[p].face}" for p in PLANES]
    info["row_step"] = [src[p].row_step for p in PLANES]
    info["col_step"] = [src[p].step for p in PLANES]
    reco = float(images["X"].sum()) / adc_per_mev["X"]
    return _EventResult(images, origin, reco, info)


# --------------------------------------------------------------------------------------
# ingest


@dataclass
class IngestResult:
    """What :func:`ingest_tpstream` did: the output, the counts and the geometry it used."""

    path: Path
    n_read: int
    n_written: int
    counts: dict[str, int]
    geometry: GeometryTable
    adc_per_mev: dict[str, float]

    def summary(self) -> str:
        skipped = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in self.counts.items() if k.startswith("skipped"))
        return (
            f"{self.path}: wrote {self.n_written} of {self.n_read} events ({skipped}); "
            f"U/V matched in space {self.counts['uv_match_space']}, by time only {self.counts['uv_match_time']}, "
            f"not found {self.counts['uv_match_none']}; ADC/MeV U {self.adc_per_mev['U']:.0f} "
            f"V {self.adc_per_mev['V']:.0f} X {self.adc_per_mev['X']:.0f}"
        )


def ingest_tpstream(
    paths: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    options: TPStreamOptions = TPStreamOptions(),
    *,
    geometry: GeometryTable | str | os.PathLike | None = None,
    overwrite: bool = False,
    progress: bool = True,
    command: str | None = None,
    flush_events: int = 256,
) -> IngestResult:
    """Turn TP dumps into an event file (DESIGN.md §4) in the canonical frame.

    Args:
        paths: ROOT files (``triggerAnaDumpTPs``).
        out: event file to write.
        options: clustering, matching and image options.
        geometry: a :class:`GeometryTable` or a JSON file of one; ``None`` fits it from the
            files' back-tracking (:func:`fit_geometry`).
        overwrite: replace ``out`` if it exists.
        progress: show tqdm bars.
        command: command line to record (default ``sys.argv``).
        flush_events: events buffered before each write.

    Returns:
        an :class:`IngestResult`; its counts are also stored in the file's ``source``.

    Raises:
        InputError: bad input file, tree or branch, or no event could be written.
        FileExistsError: ``out`` exists and ``overwrite`` is false.
    """
    from tqdm.auto import tqdm

    paths = [Path(p) for p in paths]
    if not paths:
        raise InputError("ingest-tpstream: no input file given; expected one or more .root files")
    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out}: exists; pass --force to replace it")
    command = command if command is not None else " ".join(sys.argv)
    if geometry is None:
        geo = fit_geometry(paths, options, command=command, progress=progress)
        geo_from = "fitted from the input files"
    elif isinstance(geometry, GeometryTable):
        geo, geo_from = geometry, "given"
    else:
        geo, geo_from = GeometryTable.load(geometry), str(geometry)
    adc_per_mev = dict(options.adc_per_mev or geo.adc_per_mev)

    counts = {"skipped_no_primary_electron": 0, "skipped_no_x_cluster": 0, "skipped_no_geometry": 0,
              "uv_match_space": 0, "uv_match_time": 0, "uv_match_none": 0}
    events: dict[str, list] = {k: [] for k in ("file", "run", "subrun", "event", "apa", "side", "views",
                                               "row_step", "col_step", "uv_match", "dz_cm")}
    total = 0
    for path in paths:
        f = _open_root(path)
        total += _ttree(f, path, _find_tp_tree(f, path, options.tp_tree), "trigger primitives").num_entries
    buf: list[tuple[int, TPEvent, _EventResult]] = []
    n_read = 0
    shape = options.image_shape

    def flush(writer: EventFileWriter) -> None:
        if not buf:
            return
        imgs = {p: np.stack([r.images[p] for _, _, r in buf]) for p in PLANES}
        unknown3 = np.full(3, np.nan)

        def tr(ev: TPEvent, name: str, default: Any) -> Any:
            return default if ev.truth is None else getattr(ev.truth, name)

        batch = EventBatch(
            **imgs,
            event_id=np.array([i for i, _, _ in buf], dtype=np.int64),
            direction=np.stack([tr(ev, "direction", unknown3) for _, ev, _ in buf]),
            energy=np.array([tr(ev, "energy", np.nan) for _, ev, _ in buf]),
            interaction=np.array([tr(ev, "interaction", -1) for _, ev, _ in buf]),
            nu_direction=np.stack([tr(ev, "nu_direction", unknown3) for _, ev, _ in buf]),
            nu_energy=np.array([tr(ev, "nu_energy", np.nan) for _, ev, _ in buf]),
            vertex=np.stack([tr(ev, "vertex", unknown3) for _, ev, _ in buf]),
            reco_energy=np.array([r.reco_energy for _, _, r in buf]),
            window_origin=np.stack([r.origin for _, _, r in buf]),
        )
        writer.append(batch)
        buf.clear()

    writer = EventFileWriter(out, image_shape=shape, geometry=Geometry(image_shape=shape),
                             source={}, overwrite=overwrite)
    bar = tqdm(total=total, unit="TP", desc="ingest-tpstream", disable=not progress)
    try:
        for ev in read_tpstream(paths, options, progress=bar):
            event_id = n_read
            n_read += 1
            res = _process_event(ev, geo, options, adc_per_mev)
            if isinstance(res, str):
                counts[f"skipped_{res}"] += 1
                continue
            counts[f"uv_match_{res.info['uv_match']}"] += 1
            for k, v in (("file", ev.file_index), ("run", ev.run), ("subrun", ev.subrun), ("event", ev.event)):
                events[k].append(v)
            for k in ("apa", "side", "views", "row_step", "col_step", "uv_match", "dz_cm"):
                events[k].append(res.info[k])
            buf.append((event_id, ev, res))
            if len(buf) >= flush_events:
                flush(writer)
        flush(writer)
        n_written = len(writer)
        if n_written == 0:
            raise InputError(
                f"{', '.join(map(str, paths))}: no event could be written ({n_read} read; "
                + ", ".join(f"{k} {v}" for k, v in counts.items() if k.startswith("skipped")) + ")"
            )
        writer.source = {
            "generator": "edkeras ingest-tpstream",
            "command": command,
            "files": [str(p.resolve()) for p in paths],
            "options": options.to_dict(),
            "geometry_table_from": geo_from,
            "geometry_table": geo.to_dict(),
            "adc_per_mev": adc_per_mev,
            "reco_energy": "sum of the X image (ADC) / adc_per_mev['X'] (deposited-energy scale)",
            "n_read": n_read,
            "n_written": n_written,
            "counts": counts,
            "events": events,
            "conventions": (
                "window_origin[p] = (tick of row 0, global channel of column 0); row r is tick "
                "origin + row_step*r; column c is channel origin + col_step*c (U/V wrapped modulo 800 "
                "in the plane's block); views[p] = readout plane drawn as canonical plane p "
                "(on the -x side the physical V plane measures w_U and U measures w_V)"
            ),
        }
        writer.close()
    except BaseException:
        writer.abort()
        raise
    finally:
        bar.close()
    return IngestResult(out, n_read, n_written, counts, geo, adc_per_mev)
