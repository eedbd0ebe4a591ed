"""Which events a dataset reads: an index over event files (file, row, labels), built without loading the images."""

from __future__ import annotations

import os
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from edkeras.core.errors import InputError
from edkeras.events.eventfile import open_events

_SHUFFLE, _DEFLATE = 2, 1  # HDF5 filter ids

__all__ = ['EventIndex', 'index_events']


def _codec(ds: h5py.Dataset) -> tuple[int, ...] | None:
    """The filter pipeline of ``ds`` when this module can decode its chunks (shuffle, gzip), else None."""
    if ds.chunks is None:
        return None
    plist = ds.id.get_create_plist()
    filters = tuple(int(plist.get_filter(i)[0]) for i in range(plist.get_nfilters()))
    return filters if set(filters) <= {_SHUFFLE, _DEFLATE} else None


def _damaged(what: str, e: Exception) -> InputError:
    return InputError(f"{what}: cannot be read ({type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else 'no detail'}); "
                      "the file is damaged (edkeras doctor FILE shows which events); regenerate or copy it again")


def _decode_into(
    raw: bytes, filters: tuple[int, ...], mask: int, chunk: tuple[int, ...], dtype: Any,
    local: np.ndarray, out: np.ndarray, where: np.ndarray, what: str = "a chunk",
) -> None:
    """Undo a chunk's filters (last first; bit i of ``mask`` = filter i skipped) and write rows.

    Gives the bytes HDF5 would give (``tests/test_dataset.py`` compares with h5py). A chunk
    that does not decode raises :class:`InputError` naming ``what`` (file, plane, rows).
    """
    try:
        buf = np.frombuffer(raw, dtype=np.uint8)
        for i in reversed(range(len(filters))):
            if mask & (1 << i):
                continue
            if filters[i] == _DEFLATE:
                buf = np.frombuffer(zlib.decompress(buf), dtype=np.uint8)
            else:  # byte shuffle: all first bytes, then all second bytes, …
                buf = np.ascontiguousarray(buf.reshape(np.dtype(dtype).itemsize, -1).T).reshape(-1)
        arr = buf.view(dtype).reshape(chunk)
    except (zlib.error, ValueError) as e:
        raise _damaged(what, e) from None
    out[where] = arr[local]


class EventIndex:
    """Which events (file and row) a dataset is made of; reads their per-event fields.

    Build one with :func:`index_events`, then :meth:`select` the positions of a split.

    Attributes:
        files: the event files (paths).
        file: (N,) int32 index into ``files`` of each event.
        row: (N,) int64 row of each event in its file.
        image_shape: (T, C) shared by every file.
    """

    def __init__(self, files: Sequence[Path], file: np.ndarray, row: np.ndarray, image_shape: tuple[int, int]):
        self.files = tuple(Path(f) for f in files)
        self.file = np.asarray(file, dtype=np.int32)
        self.row = np.asarray(row, dtype=np.int64)
        self.image_shape = tuple(int(s) for s in image_shape)
        if self.file.shape != self.row.shape:
            raise ValueError("EventIndex: file and row arrays differ in length")

    def __len__(self) -> int:
        return int(self.row.size)

    def __repr__(self) -> str:
        return f"EventIndex(n={len(self)}, files={[f.name for f in self.files]}, image_shape={self.image_shape})"

    def select(self, positions: Any) -> EventIndex:
        """The events at ``positions`` (integer array or boolean mask), in that order."""
        pos = np.asarray(positions)
        if pos.dtype == bool:
            pos = np.flatnonzero(pos)
        return EventIndex(self.files, self.file[pos], self.row[pos], self.image_shape)

    @property
    def file_names(self) -> np.ndarray:
        """(N,) base name of the source file of each event (what the split hash uses)."""
        names = np.array([f.name for f in self.files], dtype=object)
        return names[self.file]

    def field(self, name: str) -> np.ndarray:
        """A per-event field (``direction``, ``reco_energy``, ``event_id``, …) in index order."""
        first = None
        out = None
        for k, path in enumerate(self.files):
            mine = np.flatnonzero(self.file == k)
            if mine.size == 0:
                continue
            with open_events(path) as ev:
                column = ev.field(name)
            if out is None:
                first = column
                out = np.empty((len(self), *column.shape[1:]), dtype=column.dtype)
            out[mine] = column[self.row[mine]]
        if out is None:  # empty index: the field's shape from the first file
            with open_events(self.files[0]) as ev:
                first = ev.field(name, slice(0, 0))
            out = np.empty((0, *first.shape[1:]), dtype=first.dtype)
        return out

    def describe(self, i: int) -> str:
        """``file.h5 event 17`` for messages."""
        with open_events(self.files[self.file[i]]) as ev:
            eid = int(ev.field("event_id", slice(int(self.row[i]), int(self.row[i]) + 1))[0])
        return f"{self.files[self.file[i]]} event {eid}"


def index_events(files: Sequence[str | os.PathLike]) -> EventIndex:
    """Every event of the given event files, in file order (only ids are read).

    Raises:
        InputError: no files, a file that is not a valid event file (named), or files with
            different image shapes.
    """
    paths = [Path(f) for f in files]
    if not paths:
        raise InputError("index_events: expected at least one event file; received none")
    shape = None
    file_idx, rows = [], []
    for k, p in enumerate(paths):
        with open_events(p) as ev:
            if shape is None:
                shape = ev.image_shape
            elif ev.image_shape != shape:
                raise InputError(
                    f"{p}: image shape {ev.image_shape} differs from {paths[0]} {shape}; "
                    "one run reads files of one image shape"
                )
            n = len(ev)
        file_idx.append(np.full(n, k, dtype=np.int32))
        rows.append(np.arange(n, dtype=np.int64))
    return EventIndex(paths, np.concatenate(file_idx), np.concatenate(rows), shape)
