"""Convert the earlier system's per-plane NPZ files into one edkeras event file, event by event, matched across planes.

Method notes: ``docs/methods.md``, section ``edkeras.events.legacy_npz``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edkeras.core.detector import PLANES
from edkeras.events.eventfile import EventBatch, EventFileWriter
from edkeras.events.legacy_npz import (
    _COL,
    _TRUTH_COLS,
    LegacyNpzError,
    LegacyPlaneFile,
    _id_multipliers,
    _images_shape,
    find_plane_files,
    read_plane_file,
)

__all__ = ['ConversionResult', 'convert_npz', 'format_counts']


@dataclass
class ConversionResult:
    """What :func:`convert_npz` wrote and what it dropped.

    Attributes:
        path: the event file written.
        n_events: events written.
        counts: every count of rows, events and files read, dropped or skipped (see
            :func:`convert_npz`).
        skipped_files: ``{"file", "shape", "reason"}`` for each file skipped.
        bases: per base: ``{"index", "folder", "base", "files", "events_written", ...}``.
        source: the ``source`` attribute written into the event file.
    """

    path: Path
    n_events: int
    counts: dict[str, int]
    skipped_files: list[dict[str, Any]] = field(default_factory=list)
    bases: list[dict[str, Any]] = field(default_factory=list)
    source: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        """The counts as readable lines (what ``edkeras convert-npz`` prints)."""
        return format_counts(self.counts, self.skipped_files, self.path)


def format_counts(counts: dict[str, int], skipped_files: Sequence[dict[str, Any]], path: Path | str) -> str:
    """Readable lines for the counts of a conversion."""
    c = counts
    lines = [
        f"wrote {c['events_written']} events to {path}",
        f"  plane files found: {c['files_found']} in {c['bases_found']} base names",
        f"  files skipped, image shape is not {tuple(c['image_shape'])}: {c['files_skipped_shape']}",
    ]
    lines += [f"      {s['file']}: shape {tuple(s['shape'])}" for s in skipped_files]
    lines += [
        f"  base names skipped because a plane file was skipped: {c['bases_skipped_shape']} "
        f"({c['rows_in_skipped_bases']} rows of their other planes not used)",
        f"  rows read (all planes, used files): {c['rows_read']}",
        f"  rows dropped, match_id -1 (not matched across planes): {c['rows_unmatched']}",
        f"  rows dropped, (event, match_id) repeated within one plane file: {c['rows_duplicate_key']}",
        f"  rows dropped, (event, match_id) missing on another plane: {c['rows_no_partner']}",
        f"  events matched on U, V and X: {c['events_matched']}",
        f"  events dropped, zero momentum (no direction): {c['events_zero_momentum']}",
        f"  events kept whose truth differs between planes (truth taken from X): "
        f"{c['events_truth_differs']}",
        f"  events written: {c['events_written']}",
    ]
    return "\n".join(lines)


@dataclass
class _Match:
    """Matched rows of one base: row indices into each plane file, sorted by key."""

    keys: np.ndarray  # (M, 2) int64 event, match_id
    rows: dict[str, np.ndarray]  # plane -> (M,) row index
    counts: dict[str, int]


def _match_base(meta: dict[str, np.ndarray]) -> _Match:
    """Match the rows of the three planes of one base by (event, match_id)."""
    counts = {"rows_read": 0, "rows_unmatched": 0, "rows_duplicate_key": 0, "rows_no_partner": 0}
    usable: dict[str, dict[tuple[int, int], int]] = {}
    for p in PLANES:
        m = meta[p]
        keys = m[:, [_COL["event"], _COL["match_id"]]].astype(np.int64)
        counts["rows_read"] += len(m)
        valid = keys[:, 1] != -1
        counts["rows_unmatched"] += int((~valid).sum())
        idx = np.flatnonzero(valid)
        _, inverse, n_of = np.unique(keys[idx], axis=0, return_inverse=True, return_counts=True)
        single = n_of[inverse.ravel()] == 1
        counts["rows_duplicate_key"] += int((~single).sum())
        usable[p] = {(int(k[0]), int(k[1])): int(r) for k, r in zip(keys[idx[single]], idx[single])}
    common = set(usable["U"]) & set(usable["V"]) & set(usable["X"])
    counts["rows_no_partner"] = sum(len(usable[p]) - len(common) for p in PLANES)
    ordered = sorted(common)
    keys = np.array(ordered, dtype=np.int64).reshape(-1, 2)
    rows = {p: np.array([usable[p][k] for k in ordered], dtype=np.int64) for p in PLANES}
    return _Match(keys=keys, rows=rows, counts=counts)


def _batch(
    files: dict[str, LegacyPlaneFile], match: _Match, sel: np.ndarray, base_index: int, b: int, m: int
) -> EventBatch:
    """Events ``sel`` (indices into the match) of one base as an EventBatch."""
    mx = files["X"].metadata[match.rows["X"][sel]]
    p = mx[:, [_COL["px"], _COL["py"], _COL["pz"]]]
    direction = p / np.linalg.norm(p, axis=1, keepdims=True)
    keys = match.keys[sel]
    return EventBatch(
        U=files["U"].images[match.rows["U"][sel]],
        V=files["V"].images[match.rows["V"][sel]],
        X=files["X"].images[match.rows["X"][sel]],
        event_id=base_index * b + keys[:, 0] * m + keys[:, 1],
        direction=direction,
        energy=None,
        interaction=mx[:, _COL["is_es_interaction"]].astype(np.int8),
        vertex=mx[:, [_COL["x"], _COL["y"], _COL["z"]]],
        reco_energy=mx[:, _COL["cluster_energy"]],
        window_origin=None,
    )


def _iter_chunks(n: int, size: int) -> Iterator[np.ndarray]:
    for start in range(0, n, size):
        yield np.arange(start, min(n, start + size))


def convert_npz(
    inputs: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    image_shape: tuple[int, int] = (128, 32),
    overwrite: bool = False,
    progress: bool = False,
    chunk_events: int = 1024,
) -> ConversionResult:
    """Convert the earlier system's per-plane NPZ files into one event file.

    Two passes: the first reads only metadata and image-file headers (matching, counts,
    event-id scheme), the second loads the images of one base at a time and appends the
    matched events, so memory holds one base, not the data set.

    Args:
        inputs: plane files and/or folders (searched recursively; flat or ``U/ V/ X/``).
        out: event file to write (temporary name, renamed when complete).
        image_shape: (T, C) to keep; plane files of another shape are skipped and counted.
        overwrite: replace ``out`` if it exists.
        progress: show a tqdm progress bar over base names.
        chunk_events: events per append.

    Returns:
        a :class:`ConversionResult`. ``counts`` holds ``files_found``, ``bases_found``,
        ``files_skipped_shape``, ``bases_skipped_shape``, ``rows_in_skipped_bases``,
        ``rows_read``, ``rows_unmatched`` (match_id −1), ``rows_duplicate_key``,
        ``rows_no_partner``, ``events_matched``, ``events_zero_momentum``,
        ``events_truth_differs`` (kept), ``events_written`` and ``image_shape``.

    Raises:
        LegacyNpzError: bad input (see :func:`find_plane_files`, :func:`read_plane_file`),
            or nothing left to write.
        FileExistsError: ``out`` exists and ``overwrite`` is false.
    """
    from tqdm.auto import tqdm

    out = Path(out)
    image_shape = (int(image_shape[0]), int(image_shape[1]))
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out}: exists; pass overwrite=True (--force) to replace it")
    groups = find_plane_files(inputs)
    counts: dict[str, Any] = {
        "image_shape": list(image_shape),
        "files_found": 3 * len(groups),
        "bases_found": len(groups),
        "files_skipped_shape": 0,
        "bases_skipped_shape": 0,
        "rows_in_skipped_bases": 0,
        "rows_read": 0,
        "rows_unmatched": 0,
        "rows_duplicate_key": 0,
        "rows_no_partner": 0,
        "events_matched": 0,
        "events_zero_momentum": 0,
        "events_truth_differs": 0,
        "events_written": 0,
    }
    skipped: list[dict[str, Any]] = []
    plans: list[tuple[tuple[Path, str], dict[str, Path], _Match, np.ndarray]] = []
    bases_info: list[dict[str, Any]] = []

    # Pass 1: headers and metadata only.
    for (folder, base), paths in tqdm(groups.items(), desc="matching", unit="base", disable=not progress):
        shapes = {p: _images_shape(paths[p]) for p in PLANES}
        for p in PLANES:
            if len(shapes[p]) != 3:
                raise LegacyNpzError(f"{paths[p]}: 'images' must have shape (N, T, C); received {shapes[p]}")
        wrong = [p for p in PLANES if tuple(shapes[p][1:]) != image_shape]
        if wrong:
            for p in wrong:
                skipped.append({"file": str(paths[p]), "shape": list(shapes[p][1:]),
                                "reason": f"image shape is not {image_shape}"})
            counts["files_skipped_shape"] += len(wrong)
            counts["bases_skipped_shape"] += 1
            for p in PLANES:
                if p not in wrong:
                    counts["rows_in_skipped_bases"] += shapes[p][0]
            continue
        meta = {p: read_plane_file(paths[p], p, images=False).metadata for p in PLANES}
        for p in PLANES:
            if shapes[p][0] != len(meta[p]):
                raise LegacyNpzError(
                    f"{paths[p]}: 'images' holds {shapes[p][0]} rows but 'metadata' holds "
                    f"{len(meta[p])}; expected equal"
                )
        match = _match_base(meta)
        for k, v in match.counts.items():
            counts[k] += v
        n = len(match.keys)
        counts["events_matched"] += n
        mom = np.stack([meta[p][match.rows[p]][:, [_COL["px"], _COL["py"], _COL["pz"]]] for p in PLANES])
        zero = (np.linalg.norm(mom, axis=2) == 0).any(axis=0)
        counts["events_zero_momentum"] += int(zero.sum())
        truth = np.stack([meta[p][match.rows[p]][:, _TRUTH_COLS] for p in PLANES])
        differs = ~np.isclose(truth, truth[2:3], rtol=1e-4, atol=1e-4, equal_nan=True).all(axis=(0, 2))
        counts["events_truth_differs"] += int((differs & ~zero).sum())
        keep = np.flatnonzero(~zero)
        plans.append(((folder, base), paths, match, keep))

    n_total = sum(len(k) for *_, k in plans)
    if n_total == 0:
        raise LegacyNpzError(
            "no events to write: "
            + "; ".join(f"{k} {v}" for k, v in counts.items() if k != "image_shape" and v)
            + (f" (image shape asked: {image_shape}; try --image-shape)" if counts["files_skipped_shape"] else "")
        )
    max_event = max(int(m.keys[k, 0].max()) for _, _, m, k in plans if len(k))
    max_match = max(int(m.keys[k, 1].max()) for _, _, m, k in plans if len(k))
    b_mult, m_mult = _id_multipliers(max_event, max_match)
    if len(plans) * b_mult >= np.iinfo(np.int64).max:
        raise LegacyNpzError(
            f"event ids do not fit int64: {len(plans)} bases, event numbers up to {max_event}, "
            f"match_id up to {max_match}"
        )

    for i, ((folder, base), paths, match, keep) in enumerate(plans):
        bases_info.append({
            "index": i, "folder": str(folder), "base": base,
            "files": {p: str(paths[p]) for p in PLANES},
            "events_matched": len(match.keys), "events_written": len(keep),
        })
    source: dict[str, Any] = {
        "converter": "edkeras.events.legacy_npz",
        "format": "earlier system per-plane NPZ (<base>_plane{U,V,X}.npz; images, metadata (N, 14))",
        "inputs": [str(Path(x)) for x in inputs],
        "image_shape": list(image_shape),
        "event_id": {
            "scheme": "event_id = base_index * base_multiplier + event * event_multiplier + match_id",
            "base_multiplier": b_mult,
            "event_multiplier": m_mult,
        },
        "bases": bases_info,
        "skipped_files": skipped,
        "counts": counts,
        "fields": {
            "direction": "p/|p| of metadata columns 7-9 of the X-plane row",
            "vertex": "metadata columns 4-6 (cm) of the X-plane row",
            "reco_energy": "metadata column 10 of the X-plane row (cluster ADC sum / 3600, MeV)",
            "interaction": "metadata column 3 (1 ES, 0 CC)",
            "energy": "unknown (NaN): column 11's unit is inconsistent in the earlier code base",
            "nu_direction": "unknown (NaN)",
            "window_origin": "unknown (0)",
        },
        "pixels": (
            "raw ADC as in the earlier files; NOT the canonical frame: the channel axis holds only "
            "hit channels (not metric) and rows/columns may be reversed on half of the APAs "
            "(run edkeras doctor)"
        ),
    }

    # Pass 2: images, one base at a time.
    with EventFileWriter(out, image_shape=image_shape, source=source, overwrite=overwrite) as writer:
        bar = tqdm(total=n_total, desc="converting", unit="ev", disable=not progress)
        for i, (_, paths, match, keep) in enumerate(plans):
            if not len(keep):
                continue
            files = {p: read_plane_file(paths[p], p) for p in PLANES}
            for sel in _iter_chunks(len(keep), chunk_events):
                writer.append(_batch(files, match, keep[sel], i, b_mult, m_mult))
                bar.update(len(sel))
            del files
        bar.close()
        counts["events_written"] = len(writer)
    return ConversionResult(
        path=out, n_events=counts["events_written"], counts=counts,
        skipped_files=skipped, bases=bases_info, source=source,
    )
