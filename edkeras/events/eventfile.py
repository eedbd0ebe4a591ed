"""The event file (HDF5), format ``edkeras-events`` version 1 (docs/formats.md §1).

One file holds N events: three canonical-frame images per event and the truth where it
is known. Unknown truth is stored as NaN (floats) and −1 (``interaction``), so every
dataset always exists and has N rows.

Writing goes to a temporary name (:mod:`edkeras.core.files`) and is renamed to ``path`` only when the writer is
closed without error, so a crash never leaves a file that looks complete.

Example:
    >>> with EventFileWriter("events.h5", image_shape=(128, 32), source={"generator": "x"}) as w:
    ...     w.append(batch)                       # an EventBatch, as often as needed
    >>> ev = open_events("events.h5")
    >>> len(ev), ev.image_shape
    >>> b = ev.read(slice(0, 64))                 # an EventBatch of 64 events
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from edkeras.core.detector import PLANES, Geometry
from edkeras.core.errors import InputError
from edkeras.core.files import remove_stale_temporaries, temporary_name

__all__ = [
    "FORMAT",
    "HDF5_LOCK",
    "INTERACTION_CODES",
    "OPTIONAL_FIELDS",
    "VERSION",
    "EventBatch",
    "EventFile",
    "EventFileError",
    "EventFileWriter",
    "open_events",
    "write_events",
]


def _h5py_lock():
    """h5py's own global lock, which every high-level h5py call holds."""
    from h5py import _objects

    return getattr(_objects, "phil", None) or threading.RLock()


HDF5_LOCK = _h5py_lock()
"""Held around every HDF5 call that edkeras makes on an event file: opening, reading,
closing. The HDF5 library is not thread-safe, and the streaming dataset reads in background
threads. This is h5py's own global lock (``phil``), not a lock of ours: h5py's low-level
``DatasetID.read_direct_chunk`` (h5py 3.14) does not take it, so a chunk read under a
separate lock still ran beside any other thread's h5py call (a writer, Keras saving
weights) and corrupted HDF5's state: "no VOL object wrap context", a segmentation fault,
or "double free or corruption" at exit (``tests/test_dataset.py`` races the two).
Decompression happens outside the lock, so the lock costs no parallelism."""

FORMAT = "edkeras-events"
VERSION = 1
CHUNK_EVENTS = 64

INTERACTION_CODES: dict[str, int] = {"es": 1, "cc": 0}
"""The ``truth/interaction`` codes: ν–e elastic scattering 1, νe capture on argon 0 (−1: unknown)."""


class EventFileError(InputError):
    """An event file (or a batch for one) is not what docs/formats.md §1 says it must be."""


# Per-event fields besides the images: name -> (HDF5 path, trailing shape, dtype, fill for unknown)
_FIELDS: dict[str, tuple[str, tuple[int, ...], Any, Any]] = {
    "direction": ("truth/direction", (3,), np.float32, np.nan),
    "energy": ("truth/energy", (), np.float32, np.nan),
    "interaction": ("truth/interaction", (), np.int8, -1),
    "nu_direction": ("truth/nu_direction", (3,), np.float32, np.nan),
    "nu_energy": ("truth/nu_energy", (), np.float32, np.nan),
    "vertex": ("truth/vertex", (3,), np.float32, np.nan),
    "reco_energy": ("reco/energy", (), np.float32, np.nan),
    "event_id": ("meta/event_id", (), np.int64, None),
    "window_origin": ("meta/window_origin", (3, 2), np.int32, 0),
    "blips": ("reco/blips", (), np.float32, np.nan),
    "blip_energy": ("reco/blip_energy", (), np.float32, np.nan),
}
OPTIONAL_FIELDS = frozenset({"blips", "blip_energy"})
"""Fields added within version 1: a file written before them reads them as unknown (NaN)."""


@dataclass
class EventBatch:
    """A block of events in memory, with the arrays of docs/formats.md §1.

    Only ``U``, ``V``, ``X`` and ``event_id`` are required when building one; every other
    field left as ``None`` is filled with "unknown" (NaN, or −1 for ``interaction``, or 0
    for ``window_origin``) by :meth:`filled`.

    Args:
        U, V, X: images (N, T, C) float32, canonical frame, ≥ 0.
        event_id: (N,) int64, unique within a file.
        direction: (N, 3) true electron unit direction.
        energy: (N,) true electron kinetic energy, MeV.
        interaction: (N,) 1 = ES, 0 = CC, −1 unknown.
        nu_direction: (N, 3) neutrino direction.
        nu_energy: (N,) MeV.
        vertex: (N, 3) cm.
        reco_energy: (N,) charge-based energy, MeV.
        window_origin: (N, 3, 2) tick and channel of pixel [0, 0] for U, V, X.
        blips: (N,) other charge clusters of ≥ 1 MeV within 30 cm on the collection
            plane (:mod:`edkeras.events.blips`).
        blip_energy: (N,) their summed charge, MeV.
    """

    U: np.ndarray
    V: np.ndarray
    X: np.ndarray
    event_id: np.ndarray
    direction: np.ndarray | None = None
    energy: np.ndarray | None = None
    interaction: np.ndarray | None = None
    nu_direction: np.ndarray | None = None
    nu_energy: np.ndarray | None = None
    vertex: np.ndarray | None = None
    reco_energy: np.ndarray | None = None
    window_origin: np.ndarray | None = None
    blips: np.ndarray | None = None
    blip_energy: np.ndarray | None = None

    def __len__(self) -> int:
        return int(np.shape(self.event_id)[0])

    @property
    def images(self) -> dict[str, np.ndarray]:
        return {"U": self.U, "V": self.V, "X": self.X}

    def filled(self) -> EventBatch:
        """A copy with every field present, cast to the file's dtypes."""
        n = len(self)
        out: dict[str, Any] = {p: np.asarray(getattr(self, p), dtype=np.float32) for p in PLANES}
        for name, (_, shape, dtype, fill) in _FIELDS.items():
            value = getattr(self, name)
            if value is None:
                if fill is None:
                    raise EventFileError(f"batch: '{name}' is required; received None")
                value = np.full((n, *shape), fill, dtype=dtype)
            out[name] = np.asarray(value, dtype=dtype)
        return EventBatch(**out)

    def select(self, index: Any) -> EventBatch:
        """Events ``index`` (slice, integer array or boolean mask) as a new batch."""
        return EventBatch(
            **{f.name: (None if getattr(self, f.name) is None else getattr(self, f.name)[index])
               for f in fields(self)}
        )

    def validate(self, image_shape: tuple[int, int] | None = None, where: str = "batch") -> None:
        """Check shapes, lengths and finiteness; raise :class:`EventFileError` naming the problem.

        Args:
            image_shape: expected (T, C); ``None`` takes the shape of ``U``.
            where: what to call the data in messages (e.g. the file name).
        """
        b = self.filled()
        n = len(b)
        shape = tuple(image_shape) if image_shape is not None else tuple(np.shape(b.U)[1:])
        for p in PLANES:
            img = b.images[p]
            if img.shape != (n, *shape):
                raise EventFileError(
                    f"{where}: images/{p} must have shape {(n, *shape)} (N, T, C); received {img.shape}"
                )
            bad = ~np.isfinite(img).reshape(n, -1).all(axis=1)
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise EventFileError(
                    f"{where}: event {int(b.event_id[i])} has NaN or inf pixels on plane {p}"
                )
            neg = (img.reshape(n, -1) < 0).any(axis=1)
            if neg.any():
                i = int(np.flatnonzero(neg)[0])
                raise EventFileError(
                    f"{where}: event {int(b.event_id[i])} has negative pixels on plane {p}; "
                    "pixels are ADC-like charge >= 0"
                )
        for name, (path, fshape, _, _) in _FIELDS.items():
            arr = getattr(b, name)
            if arr.shape != (n, *fshape):
                raise EventFileError(
                    f"{where}: {path} must have shape {(n, *fshape)}; received {arr.shape}"
                )
        d = b.direction.astype(np.float64)
        known = np.isfinite(d).all(axis=1)
        norms = np.linalg.norm(d[known], axis=1)
        off = np.abs(norms - 1.0) > 1e-3
        if off.any():
            i = int(np.flatnonzero(known)[np.flatnonzero(off)[0]])
            raise EventFileError(
                f"{where}: event {int(b.event_id[i])} has a non-unit truth direction "
                f"(|d| = {norms[off][0]:.4g}); expected a unit vector or NaN for unknown"
            )
        bad_int = ~np.isin(b.interaction, (-1, 0, 1))
        if bad_int.any():
            i = int(np.flatnonzero(bad_int)[0])
            raise EventFileError(
                f"{where}: event {int(b.event_id[i])} has interaction {int(b.interaction[i])}; "
                "expected 1 (ES), 0 (CC) or -1 (unknown)"
            )

    @staticmethod
    def concatenate(batches: list[EventBatch]) -> EventBatch:
        """Join batches (all fields filled) along the event axis."""
        filled = [b.filled() for b in batches]
        return EventBatch(
            **{f.name: np.concatenate([getattr(b, f.name) for b in filled]) for f in fields(EventBatch)}
        )


class EventFileWriter:
    """Write an event file in chunks; the file appears under its name only when complete.

    Args:
        path: output file.
        image_shape: (T, C) of every plane image.
        geometry: readout geometry (default DUNE FD values with ``image_shape``).
        source: JSON-serialisable description of where the events came from (generator,
            its config and seed, or the converted files).
        overwrite: replace an existing ``path`` (only at the final rename).
        compression: HDF5 compression filter (``"gzip"`` or ``"lzf"`` or ``None``).

    Raises:
        EventFileError: on any malformed batch, naming the event; duplicate event ids.
        FileExistsError: when ``path`` exists and ``overwrite`` is false.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        image_shape: tuple[int, int] = (128, 32),
        geometry: Geometry | None = None,
        source: dict | None = None,
        overwrite: bool = False,
        compression: str | None = "gzip",
    ) -> None:
        self.path = Path(path)
        if self.path.exists() and not overwrite:
            raise FileExistsError(f"{self.path}: exists; pass overwrite=True (--force) to replace it")
        self.image_shape = tuple(int(s) for s in image_shape)
        self.geometry = geometry or Geometry(image_shape=self.image_shape)
        if tuple(self.geometry.image_shape) != self.image_shape:
            raise EventFileError(
                f"{self.path}: geometry.image_shape {self.geometry.image_shape} differs from "
                f"image_shape {self.image_shape}"
            )
        self.source = source or {}
        self.path.parent.mkdir(parents=True, exist_ok=True)

        remove_stale_temporaries(self.path)  # left by killed writers of this file
        self._tmp = temporary_name(self.path)
        self._h5 = h5py.File(self._tmp, "w")
        self._n = 0
        self._ids: set[int] = set()
        opts: dict[str, Any] = {}
        if compression == "gzip":
            opts = {"compression": "gzip", "compression_opts": 4, "shuffle": True}
        elif compression is not None:
            opts = {"compression": compression}
        t, c = self.image_shape
        for p in PLANES:
            self._h5.create_dataset(
                f"images/{p}", shape=(0, t, c), maxshape=(None, t, c), dtype=np.float32,
                chunks=(CHUNK_EVENTS, t, c), **opts,
            )
        for hpath, shape, dtype, _ in _FIELDS.values():
            self._h5.create_dataset(
                hpath, shape=(0, *shape), maxshape=(None, *shape), dtype=dtype,
                chunks=(max(CHUNK_EVENTS, 1024), *shape),
            )

    def __len__(self) -> int:
        return self._n

    def append(self, batch: EventBatch) -> None:
        """Validate and append a batch of events."""
        batch.validate(self.image_shape, where=str(self.path))
        b = batch.filled()
        ids = b.event_id.tolist()
        if len(set(ids)) != len(ids) or self._ids.intersection(ids):
            dup = next(i for i in ids if ids.count(i) > 1 or i in self._ids)
            raise EventFileError(f"{self.path}: duplicate event_id {dup}; ids must be unique within a file")
        self._ids.update(ids)
        n0, n1 = self._n, self._n + len(b)
        for p in PLANES:
            ds = self._h5[f"images/{p}"]
            ds.resize(n1, axis=0)
            ds[n0:n1] = b.images[p]
        for name, (hpath, _, _, _) in _FIELDS.items():
            ds = self._h5[hpath]
            ds.resize(n1, axis=0)
            ds[n0:n1] = getattr(b, name)
        self._n = n1

    def close(self) -> Path:
        """Write the attributes, close, and rename into place. Returns the final path."""
        if self._h5 is None:
            return self.path
        a = self._h5.attrs
        a["format"] = FORMAT
        a["version"] = VERSION
        a["planes"] = ",".join(PLANES)
        a["image_shape"] = np.array(self.image_shape, dtype=np.int64)
        a["geometry"] = self.geometry.to_json()
        a["source"] = json.dumps(self.source, sort_keys=True, default=str)
        a["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self._h5.close()
        self._h5 = None
        os.replace(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        """Close and delete the temporary file (nothing appears under ``path``)."""
        if self._h5 is not None:
            self._h5.close()
            self._h5 = None
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> EventFileWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_events(path: str | os.PathLike, batch: EventBatch, **writer_kwargs: Any) -> Path:
    """Write one in-memory batch as a complete event file (see :class:`EventFileWriter`)."""
    shape = tuple(np.shape(batch.U)[1:])
    with EventFileWriter(path, image_shape=writer_kwargs.pop("image_shape", shape), **writer_kwargs) as w:
        w.append(batch)
    return Path(path)


H5_ERRORS: tuple[type[BaseException], ...] = (OSError, RuntimeError, KeyError, ValueError)
"""What h5py raises for a damaged file (a cut-short chunk, a corrupted link table or heap)."""


def _describe(index: Any) -> str:
    if isinstance(index, slice):
        return f"{index.start or 0}..{'end' if index.stop is None else index.stop - 1}"
    idx = np.asarray(index).ravel()
    return f"{int(idx[0])}..{int(idx[-1])}" if idx.size else "(none)"


class EventFile:
    """An open, validated event file. Use :func:`open_events`.

    Reading never loads the whole file: :meth:`read` takes a slice or sorted indices.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise EventFileError(f"{self.path}: no such event file")
        with HDF5_LOCK:
            try:
                self._h5 = h5py.File(self.path, "r")
            except H5_ERRORS as e:
                raise EventFileError(f"{self.path}: not a readable HDF5 file ({e})") from None
            try:
                self._check()
            except EventFileError:
                self._h5.close()
                raise
            except H5_ERRORS as e:  # a damaged header or link table: h5py's own errors
                self._h5.close()
                raise EventFileError(f"{self.path}: damaged HDF5 structure ({type(e).__name__}: {e})") from None
            except Exception:
                self._h5.close()
                raise

    def _fail(self, what: str) -> None:
        raise EventFileError(f"{self.path}: {what}")

    def _check(self) -> None:
        a = self._h5.attrs
        fmt = a.get("format")
        if fmt != FORMAT:
            self._fail(f"attribute format is {fmt!r}; expected {FORMAT!r} (is this an edkeras event file?)")
        if int(a.get("version", -1)) != VERSION:
            self._fail(f"format version {a.get('version')!r} is not supported; expected {VERSION}")
        for key in ("planes", "image_shape", "geometry", "source", "created"):
            if key not in a:
                self._fail(f"root attribute '{key}' is missing")
        if str(a["planes"]) != ",".join(PLANES):
            self._fail(f"planes attribute is {a['planes']!r}; expected 'U,V,X'")
        self.image_shape = tuple(int(s) for s in a["image_shape"])
        if len(self.image_shape) != 2:
            self._fail(f"image_shape attribute must be (T, C); received {self.image_shape}")
        n = None
        for p in PLANES:
            key = f"images/{p}"
            if key not in self._h5:
                self._fail(f"dataset /{key} is missing (every file has U, V and X images)")
            shape = self._h5[key].shape
            if len(shape) != 3 or tuple(shape[1:]) != self.image_shape:
                self._fail(f"/{key} has shape {shape}; expected (N, {self.image_shape[0]}, {self.image_shape[1]})")
            if n is None:
                n = shape[0]
            elif shape[0] != n:
                self._fail(f"/{key} holds {shape[0]} events; /images/U holds {n}")
        for name, (hpath, fshape, _, _) in _FIELDS.items():
            if hpath not in self._h5:
                if name in OPTIONAL_FIELDS:
                    continue
                self._fail(f"dataset /{hpath} is missing")
            shape = self._h5[hpath].shape
            if tuple(shape) != (n, *fshape):
                self._fail(f"/{hpath} has shape {shape}; expected {(n, *fshape)}")
        self._n = int(n)
        try:
            self.geometry = Geometry.from_json(str(a["geometry"]))
            self.source = json.loads(str(a["source"]))
        except (ValueError, TypeError) as e:
            self._fail(f"geometry or source attribute is not valid JSON ({e})")
        self.created = str(a["created"])

    def __len__(self) -> int:
        return self._n

    @property
    def event_id(self) -> np.ndarray:
        with HDF5_LOCK:
            return self._h5["meta/event_id"][:]

    def field(self, name: str, index: Any = slice(None)) -> np.ndarray:
        """One per-event field (``"direction"``, ``"reco_energy"``, …) or plane image (``"U"``…)."""
        if name not in _FIELDS and name not in PLANES:
            raise KeyError(f"unknown field {name!r}; valid: {sorted(_FIELDS) + list(PLANES)}")
        path = f"images/{name}" if name in PLANES else _FIELDS[name][0]
        with HDF5_LOCK:
            if name in OPTIONAL_FIELDS and path not in self._h5:
                return self._unknown(name, index)
            try:
                return self._h5[path][index]
            except H5_ERRORS as e:  # a damaged compressed chunk
                raise EventFileError(f"{self.path}: {path} cannot be read ({e}); the file is damaged") from None

    def _unknown(self, name: str, index: Any) -> np.ndarray:
        """An optional field absent from this (older) file: its fill value for events ``index``."""
        _, shape, dtype, fill = _FIELDS[name]
        return np.full((len(self), *shape), fill, dtype=dtype)[index]

    def read(self, index: Any = slice(None)) -> EventBatch:
        """Events ``index`` (a slice, or integer indices in any order, repeats allowed) as an :class:`EventBatch`."""
        if not isinstance(index, slice):
            index = np.asarray(index)
            if index.dtype == bool:
                index = np.flatnonzero(index)
            if index.size and np.any(np.diff(np.sort(index)) == 0):  # repeats: read each event once
                unique, inverse = np.unique(index, return_inverse=True)
                return self.read(unique).select(inverse)
            if index.size and (np.any(np.diff(index) <= 0)):
                order = np.argsort(index)
                inv = np.empty_like(order)
                inv[order] = np.arange(order.size)
                return self.read(index[order]).select(inv)
        with HDF5_LOCK:
            try:
                out = {p: self._h5[f"images/{p}"][index] for p in PLANES}
                for name, (hpath, _, _, _) in _FIELDS.items():
                    if name in OPTIONAL_FIELDS and hpath not in self._h5:
                        out[name] = self._unknown(name, index)
                        continue
                    out[name] = self._h5[hpath][index]
            except H5_ERRORS as e:  # a damaged compressed chunk
                raise EventFileError(f"{self.path}: events {_describe(index)} cannot be read ({e}); the file is "
                                     "damaged (edkeras doctor FILE)") from None
        return EventBatch(**out)

    def has_truth(self) -> bool:
        """Whether any event has a known truth direction."""
        with HDF5_LOCK:
            d = self._h5["truth/direction"][:]
        return bool(np.isfinite(d).all(axis=1).any())

    def close(self) -> None:
        with HDF5_LOCK:
            self._h5.close()

    def __enter__(self) -> EventFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"EventFile({str(self.path)!r}, n={self._n}, image_shape={self.image_shape})"


def open_events(path: str | os.PathLike) -> EventFile:
    """Open and validate an event file; raise :class:`EventFileError` naming what is wrong."""
    return EventFile(path)
