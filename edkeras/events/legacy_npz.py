"""Read the earlier system's per-plane NPZ files: find them, check them, decode their event ids.

Method notes: ``docs/methods.md``, section ``edkeras.events.legacy_npz``.

Example:
    >>> from edkeras.events.legacy_convert import convert_npz
    >>> result = convert_npz(["old_data/"], "data/legacy.h5", image_shape=(128, 32))
    >>> print(result.summary())
"""

from __future__ import annotations

import os
import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edkeras.core.detector import PLANES
from edkeras.core.errors import ARCHIVE_ERRORS, InputError

__all__ = [
    "METADATA_COLUMNS",
    "LegacyNpzError",
    "LegacyPlaneFile",
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


