"""Ingest DUNE trigger-primitive dumps into an event file: clusters, the main cluster, plane matching, images.

The rules (cluster joining, main-cluster choice, U/V matching, window placement) are those of
DUNE's public pipeline; they are described in ``docs/formats.md`` (inputs from other systems).

Method notes: ``docs/methods.md``, section ``edkeras.events.tpstream``.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edkeras.core.detector import PITCH, PLANES, Geometry
from edkeras.core.errors import InputError
from edkeras.events.blips import blip_features, cluster_tps
from edkeras.events.eventfile import EventBatch, EventFileWriter
from edkeras.events.tp_geometry import (
    _COS_A,
    CHANNELS_PER_APA,
    INDUCTION_WIRES,
    GeometryTable,
    PlaneGeometry,
    _view_block,
    _view_of_local,
    _wrap,
    fit_geometry,
)
from edkeras.events.tpimage import THRESHOLD_ADC, draw_tps, time_centres
from edkeras.events.tpstream import (
    DEFAULT_OPTIONS,
    TPEvent,
    TPStreamOptions,
    _find_tp_tree,
    _open_root,
    _ttree,
    read_tpstream,
)

__all__ = [
    "IngestResult",
    "cluster_tps",
    "ingest_tpstream",
]


@dataclass
class _Cluster:
    apa: int
    pid: int  # 0 U, 1 V, 2 X face 0, 3 X face 1
    index: np.ndarray  # into the event's filtered TPs
    adc: float
    t0: int
    t1: int


def _centre(tps: dict[str, np.ndarray], idx: np.ndarray, plane: PlaneGeometry, threshold: float
            ) -> tuple[float, float]:
    """Charge-weighted centre (tick, wire units) of TPs ``idx`` on ``plane``, wrap-safe."""
    tc = float(time_centres(np.zeros(idx.size, dtype=np.int64), 1, tps["tick"][idx], tps["sot"][idx], tps["stp"][idx],
                            tps["peak"][idx], tps["adc"][idx], threshold)[0])
    q = tps["adc"][idx]
    qs = max(q.sum(), 1e-12)
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
    blips: float = float("nan")
    blip_energy: float = float("nan")


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
    face = np.flatnonzero((apa == main.apa) & (pid == main.pid))
    blips, blip_energy = blip_features(
        np.zeros(face.size, dtype=np.int64), tps["tick"][face], tps["tick"][face] + tps["sot"][face], local[face],
        tps["adc"][face], n_events=1, adc_per_mev=adc_per_mev["X"], main=np.isin(face, main.index))
    return _EventResult(images, origin, reco, info, float(blips[0]), float(blip_energy[0]))


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
    options: TPStreamOptions = DEFAULT_OPTIONS,
    *,
    geometry: GeometryTable | str | os.PathLike | None = None,
    overwrite: bool = False,
    progress: bool = True,
    command: str | None = None,
    flush_events: int = 256,
) -> IngestResult:
    """Turn TP dumps into an event file (docs/formats.md §1) in the canonical frame.

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
            blips=np.array([r.blips for _, _, r in buf]),
            blip_energy=np.array([r.blip_energy for _, _, r in buf]),
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
