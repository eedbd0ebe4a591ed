"""Read DUNE trigger-primitive dumps (``triggerAnaDumpTPs`` ROOT files): the TPs and the simulation truth, event by event.

Method notes: ``docs/methods.md``, section ``edkeras.events.tpstream``.

Example:
    >>> from edkeras.events.tp_ingest import ingest_tpstream
    >>> from edkeras.events.tpstream import TPStreamOptions
    >>> result = ingest_tpstream(["es.root"], "es.h5", TPStreamOptions(main_cluster="charge"))
    >>> print(result.summary())
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edkeras.core.detector import PLANES
from edkeras.core.errors import InputError
from edkeras.events.tpimage import MIN_SOT, THRESHOLD_ADC, draw_tps, pulse_samples

__all__ = [
    "CLOCK_PER_TICK",
    "DEFAULT_ADC_PER_MEV",
    "DEFAULT_OPTIONS",
    "ROOT_DIR",
    "THRESHOLD_ADC",
    "EventTruth",
    "TPEvent",
    "TPStreamOptions",
    "draw_tps",
    "pulse_samples",
    "read_tpstream",
]

ROOT_DIR = "triggerAnaDumpTPs"
"""Top directory of a TP dump."""

CLOCK_PER_TICK = 32
"""``time_start`` counts 16 ns clock ticks; one TPC tick (500 ns) is 32 of them."""


DEFAULT_ADC_PER_MEV: dict[str, float] = {"U": 677.0, "V": 564.0, "X": 3996.0}
"""ADC per MeV per readout plane, used when neither the file nor a table gives a measurement.

From ``shared/physics/REAL_TP_STATS.md`` (ES column): slope through 0 of Σ adc_integral of the
TPs back-tracked to the primary electron against the electron's deposited energy on that
plane (``simides`` energy, = (edep + shower_edep)/3 of ``mcparticles``), DUNE 1x2x2 ES
simulation (``tests/test_tpstream.py`` re-measures them with
:func:`~edkeras.events.tp_geometry.fit_geometry` when the file is present).
"""

ELECTRON_MASS_MEV = 0.51099895
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


DEFAULT_OPTIONS = TPStreamOptions()
"""The public pipeline's settings."""


# --------------------------------------------------------------------------------------
# geometry


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


# --------------------------------------------------------------------------------------
# geometry fit


# --------------------------------------------------------------------------------------
# per-event processing


# --------------------------------------------------------------------------------------
# ingest


