"""Read the earlier system's per-plane NPZ files and turn them into an edkeras event file.

The earlier code base stored each wire plane of a data set in its own NumPy archive,
``<base>_planeU.npz``, ``<base>_planeV.npz``, ``<base>_planeX.npz``, either side by side in
one folder or in sub-folders ``U/``, ``V/``, ``X/`` of one folder. Each archive holds

- ``images``: float32 (N, 128, 32) (older sets (N, 128, 16)); axis 0 time tick, axis 1 channel;
- ``metadata``: float32 (N, 14) with the columns of :data:`METADATA_COLUMNS`.

The rows of the three planes are **not** aligned: the three images of one electron are
found by the key (event, match_id) within the files of one base name (column 0 and
column 13). This module does that matching and writes what it finds with
:class:`~edkeras.events.eventfile.EventFileWriter`:

================  ==========================================================================
event file        taken from (the X-plane row of the matched triplet)
================  ==========================================================================
direction         p/|p| of columns 7–9 (px, py, pz)
vertex            columns 4–6 (x, y, z, cm)
reco_energy       column 10 (cluster energy, MeV: ADC sum / 3600 on the collection plane)
interaction       column 3 (1 ES, 0 CC)
energy            unknown (NaN): column 11 holds the true particle energy, but its unit is
                  inconsistent in the earlier code base (NOTES.md), so it is not trusted
window_origin     unknown (0): the earlier files do not say where the window sat
event_id          ``base_index * B + event * M + match_id`` (decimal digits; ``B``, ``M`` and
                  the list of bases are in the file's ``source`` attribute, see
                  :func:`decode_event_id`)
================  ==========================================================================

What is dropped, and counted (in :attr:`ConversionResult.counts` and ``source["counts"]``):
rows with match_id −1 (never matched across planes); rows whose key appears twice in one
plane file (ambiguous); rows whose key is missing on another plane (no partner); matched
events with zero momentum on any plane (no direction); whole files whose image shape is not
the requested one ("dimension filtering"), and with them the rest of their base.

**Pixels are copied as they are (raw ADC).** They are *not* in the canonical frame of
DESIGN.md §3: the channel axis of these images holds only the channels that were hit (it
is not metric: one column is not one wire pitch), and on half of the APAs the rows (and
possibly the columns) run the opposite way to the label's axes. ``edkeras doctor`` measures
this (orientation check by vertex region); a model trained on such a file learns the mix.

Example:
    >>> result = convert_npz(["old_data/"], "data/legacy.h5", image_shape=(128, 32))
    >>> print(result.summary())
"""

from __future__ import annotations

import os
import re
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edkeras.core.detector import PLANES
from edkeras.core.errors import ARCHIVE_ERRORS, InputError
from edkeras.events.eventfile import EventBatch, EventFileWriter

__all__ = [
    "METADATA_COLUMNS",
    "ConversionResult",
    "LegacyNpzError",
    "LegacyPlaneFile",
    "convert_npz",
    "decode_event_id",
    "find_plane_files",
    "read_plane_file",
]

METADATA_COLUMNS: tuple[str, ...] = (
    "event", "is_marley", "is_main_track", "is_es_interaction",
    "x", "y", "z", "px", "py", "pz",
    "cluster_energy", "true_energy", "plane", "match_id",
)
"""The 14 metadata columns of the earlier files, in order (NOTES.md)."""

_COL = {name: i for i, name in enumerate(METADATA_COLUMNS)}
_PLANE_CODE = {"U": 0, "V": 1, "X": 2}
_NAME_RE = re.compile(r"^(?P<base>.+)_plane(?P<plane>[UVX])\.npz$")
# Columns that must be finite for a row to be usable at all.
_REQUIRED_FINITE = ("event", "is_es_interaction", "px", "py", "pz", "plane", "match_id")
# Columns that describe the true particle: equal on the three planes of one electron.
_TRUTH_COLS = [_COL[c] for c in ("is_es_interaction", "x", "y", "z", "px", "py", "pz")]


class LegacyNpzError(InputError):
    """A file of the earlier system is not what NOTES.md says it must be."""


@dataclass
class LegacyPlaneFile:
    """One plane file, read and checked.

    Args:
        path: the ``.npz`` file.
        plane: ``"U"``, ``"V"`` or ``"X"``.
        images: (N, T, C) float32, raw ADC.
        metadata: (N, 14) float64.
    """

    path: Path
    plane: str
    images: np.ndarray
    metadata: np.ndarray

    @property
    def keys(self) -> np.ndarray:
        """(N, 2) int64 (event, match_id) of every row."""
        return self.metadata[:, [_COL["event"], _COL["match_id"]]].astype(np.int64)


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


# ----------------------------------------------------------------------------- discovery


def find_plane_files(inputs: Iterable[str | os.PathLike]) -> dict[tuple[Path, str], dict[str, Path]]:
    """Group the plane files under ``inputs`` by (folder, base name).

    A folder is searched recursively for ``*_plane[UVX].npz``. A file sitting in a
    sub-folder named after its plane (``data/U/run1_planeU.npz``) belongs to the folder
    above it (``data``), so the flat and the ``U/ V/ X/`` layouts give the same groups.

    Args:
        inputs: files and folders.

    Returns:
        ``{(folder, base): {"U": path, "V": path, "X": path}}`` sorted by folder and base.

    Raises:
        LegacyNpzError: an input does not exist or is not a plane file, no plane files were
            found, a base lacks a plane, or two files claim the same base and plane.
    """
    files: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(q for q in p.rglob("*_plane?.npz") if _NAME_RE.match(q.name))
            if not found:
                raise LegacyNpzError(f"{p}: no '<base>_plane{{U,V,X}}.npz' files in this folder")
            files.extend(found)
        elif p.is_file():
            if not _NAME_RE.match(p.name):
                raise LegacyNpzError(
                    f"{p}: not a plane file; expected a name '<base>_planeU.npz', '_planeV.npz' or '_planeX.npz'"
                )
            files.append(p)
        else:
            raise LegacyNpzError(f"{p}: no such file or folder")
    if not files:
        raise LegacyNpzError("no input files given; expected plane files or folders holding them")
    groups: dict[tuple[Path, str], dict[str, Path]] = {}
    for f in dict.fromkeys(q.resolve() for q in files):
        m = _NAME_RE.match(f.name)
        assert m is not None
        base, plane = m["base"], m["plane"]
        folder = f.parent.parent if f.parent.name == plane else f.parent
        slot = groups.setdefault((folder, base), {})
        if plane in slot:
            raise LegacyNpzError(
                f"{f}: base '{base}' in {folder} already has a plane {plane} file ({slot[plane]}); "
                "expected one file per base and plane"
            )
        slot[plane] = f
    for (folder, base), slot in groups.items():
        missing = [p for p in PLANES if p not in slot]
        if missing:
            have = ", ".join(str(slot[p]) for p in PLANES if p in slot)
            raise LegacyNpzError(
                f"base '{base}' in {folder}: plane file(s) {', '.join(f'{base}_plane{p}.npz' for p in missing)} "
                f"missing (looked flat and in U/ V/ X/); found only {have}"
            )
    return dict(sorted(groups.items(), key=lambda kv: (str(kv[0][0]), kv[0][1])))


# ----------------------------------------------------------------------------- reading


def _open_npz(path: Path) -> np.lib.npyio.NpzFile:
    try:
        return np.load(path, allow_pickle=False)
    except ARCHIVE_ERRORS as e:
        raise LegacyNpzError(f"{path}: not a readable NPZ archive ({e})") from None


def _check_keys(path: Path, npz: np.lib.npyio.NpzFile) -> None:
    missing = [k for k in ("images", "metadata") if k not in npz.files]
    if missing:
        raise LegacyNpzError(
            f"{path}: key(s) {', '.join(repr(k) for k in missing)} missing; expected 'images' and "
            f"'metadata'; found {sorted(npz.files)}"
        )


def _images_shape(path: Path) -> tuple[int, ...]:
    """Shape of the ``images`` array of an NPZ file, read from its header only."""
    try:
        with zipfile.ZipFile(path) as zf, zf.open("images.npy") as fh:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, _, _ = np.lib.format.read_array_header_1_0(fh)
            elif version == (2, 0):
                shape, _, _ = np.lib.format.read_array_header_2_0(fh)
            else:  # a header version without a public reader: load the array
                raise KeyError
            return tuple(int(s) for s in shape)
    except KeyError:
        pass
    except ARCHIVE_ERRORS as e:
        raise LegacyNpzError(f"{path}: not a readable NPZ archive ({e})") from None
    with _open_npz(path) as npz:
        _check_keys(path, npz)
        return tuple(npz["images"].shape)


def _row_label(meta: np.ndarray, i: int) -> str:
    try:
        return f"row {i} (event {int(meta[i, 0])}, match_id {int(meta[i, 13])})"
    except (ValueError, OverflowError, IndexError):
        return f"row {i}"


def _read_metadata(path: Path, plane: str, npz: np.lib.npyio.NpzFile) -> np.ndarray:
    meta = npz["metadata"]
    if meta.ndim != 2 or meta.shape[1] != len(METADATA_COLUMNS):
        raise LegacyNpzError(
            f"{path}: 'metadata' must have shape (N, {len(METADATA_COLUMNS)}) (columns of NOTES.md); "
            f"received {meta.shape}"
        )
    if not np.issubdtype(meta.dtype, np.number):
        raise LegacyNpzError(f"{path}: 'metadata' must be numeric; received dtype {meta.dtype}")
    meta = meta.astype(np.float64)
    for name in _REQUIRED_FINITE:
        bad = ~np.isfinite(meta[:, _COL[name]])
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise LegacyNpzError(f"{path}: {_row_label(meta, i)}: metadata column '{name}' is not finite")
    for name in ("event", "match_id"):
        col = meta[:, _COL[name]]
        bad = (col != np.round(col)) | (col < (0 if name == "event" else -1))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise LegacyNpzError(
                f"{path}: row {i}: metadata column '{name}' must be a whole number "
                f"{'>= 0' if name == 'event' else '>= 0 or -1'}; received {col[i]!r}"
            )
    code = _PLANE_CODE[plane]
    bad = meta[:, _COL["plane"]] != code
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise LegacyNpzError(
            f"{path}: {_row_label(meta, i)}: metadata column 'plane' is {meta[i, _COL['plane']]:g}; "
            f"expected {code} in a plane{plane} file"
        )
    bad = ~np.isin(meta[:, _COL["is_es_interaction"]], (0.0, 1.0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise LegacyNpzError(
            f"{path}: {_row_label(meta, i)}: metadata column 'is_es_interaction' is "
            f"{meta[i, _COL['is_es_interaction']]:g}; expected 1 (ES) or 0 (CC)"
        )
    return meta


def read_plane_file(path: str | os.PathLike, plane: str | None = None, *, images: bool = True) -> LegacyPlaneFile:
    """Read and check one plane file of the earlier system.

    Args:
        path: ``<base>_plane{U,V,X}.npz``.
        plane: expected plane; ``None`` takes it from the file name.
        images: also load (and check) the images; ``False`` reads the metadata only and
            leaves ``images`` as an empty (0, T, C) array.

    Returns:
        a :class:`LegacyPlaneFile`.

    Raises:
        LegacyNpzError: unreadable archive, missing keys, metadata not (N, 14), images not
            (N, T, C), row counts that differ, NaN/inf or negative pixels, non-finite or
            non-integer keys, a plane column that contradicts the file name.
    """
    path = Path(path)
    if plane is None:
        m = _NAME_RE.match(path.name)
        if m is None:
            raise LegacyNpzError(f"{path}: cannot tell the plane; expected a name '<base>_plane{{U,V,X}}.npz'")
        plane = m["plane"]
    with _open_npz(path) as npz:
        _check_keys(path, npz)
        meta = _read_metadata(path, plane, npz)
        if images:
            img = npz["images"]
        else:
            shape = _images_shape(path)
            img = np.zeros((0, *shape[1:]), dtype=np.float32)
    if img.ndim != 3:
        raise LegacyNpzError(f"{path}: 'images' must have shape (N, T, C); received {img.shape}")
    if images:
        if img.shape[0] != meta.shape[0]:
            raise LegacyNpzError(
                f"{path}: 'images' holds {img.shape[0]} rows but 'metadata' holds {meta.shape[0]}; expected equal"
            )
        if not np.issubdtype(img.dtype, np.number):
            raise LegacyNpzError(f"{path}: 'images' must be numeric; received dtype {img.dtype}")
        img = img.astype(np.float32, copy=False)
        flat = img.reshape(len(img), -1)
        bad = ~np.isfinite(flat).all(axis=1)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise LegacyNpzError(
                f"{path}: {_row_label(meta, i)}: image has NaN or inf pixels ({int(bad.sum())} rows affected)"
            )
        neg = (flat < 0).any(axis=1)
        if neg.any():
            i = int(np.flatnonzero(neg)[0])
            raise LegacyNpzError(
                f"{path}: {_row_label(meta, i)}: image has negative pixels (min {flat[i].min():g}); "
                "expected raw ADC >= 0"
            )
    return LegacyPlaneFile(path=path, plane=plane, images=img, metadata=meta)


# ----------------------------------------------------------------------------- matching


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


def _digits(n: int) -> int:
    return len(str(max(int(n), 0)))


def _id_multipliers(max_event: int, max_match: int) -> tuple[int, int]:
    """(B, M): event_id = base_index * B + event * M + match_id, as decimal digit fields."""
    m = 10 ** _digits(max_match)
    b = 10 ** _digits(max_event * m + m - 1)
    return b, m


def decode_event_id(event_id: int | np.ndarray, source: dict[str, Any]) -> tuple[Any, Any, Any]:
    """Recover (base, event, match_id) from event ids of a converted file.

    Args:
        event_id: one id or an array of ids.
        source: the event file's ``source`` attribute (``open_events(path).source``).

    Returns:
        ``(base, event, match_id)``: base is ``"<folder>/<base name>"`` (a string, or an
        array of strings for array input).

    Example:
        >>> ev = open_events("legacy.h5")
        >>> decode_event_id(ev.event_id[:3], ev.source)
    """
    scheme = source.get("event_id")
    if not isinstance(scheme, dict) or "base_multiplier" not in scheme:
        raise InputError("source: no 'event_id' scheme; was this file written by convert-npz?")
    b, m = int(scheme["base_multiplier"]), int(scheme["event_multiplier"])
    ids = np.asarray(event_id, dtype=np.int64)
    labels = np.array([f"{x['folder']}/{x['base']}" for x in source["bases"]], dtype=object)
    base_idx, rest = np.divmod(ids, b)
    event, match = np.divmod(rest, m)
    if ids.ndim == 0:
        return str(labels[int(base_idx)]), int(event), int(match)
    return labels[base_idx], event, match


# ----------------------------------------------------------------------------- conversion


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
