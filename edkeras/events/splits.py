"""Train / validation / test splits by event id (or by source file), seeded and machine-independent.

Method notes: ``docs/methods.md``, section ``edkeras.events.splits``.

Example:
    >>> ids = np.arange(1000)
    >>> s = split_events(["a.h5"] * 1000, ids, val_fraction=0.15, test_fraction=0.15, seed=7)
    >>> [len(s.train), len(s.val), len(s.test)]
    [700, 150, 150]
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edkeras.core.errors import InputError
from edkeras.core.files import atomic_path

__all__ = ["SPLIT_NAMES", "Split", "event_hash", "load_split", "save_split", "split_events"]

SPLIT_NAMES: tuple[str, str, str] = ("train", "val", "test")
"""The three splits, in the order they are stored."""

_MASK64 = (1 << 64) - 1


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser on a uint64 array (wrapping arithmetic, identical on every machine)."""
    x = np.asarray(x, dtype=np.uint64).copy()
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


def _name_hash(name: str) -> int:
    """A 64-bit integer from a file's base name (sha256, little endian)."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "little")


def event_hash(file_names: Sequence[str] | np.ndarray, event_ids: Any, seed: int) -> np.ndarray:
    """The split hash of each event: splitmix64 of (seed, base name of its file, event id).

    Args:
        file_names: (N,) the source file of each event (only the base name counts, so
            moving the files does not change the split).
        event_ids: (N,) integer event ids (unique within a file).
        seed: the split seed.

    Returns:
        (N,) uint64 hashes.
    """
    ids = np.asarray(event_ids).astype(np.int64).view(np.uint64)
    names = np.asarray([os.path.basename(str(f)) for f in file_names], dtype=object)
    if names.shape != ids.shape:
        raise InputError(f"event_hash: {names.shape[0]} file names for {ids.shape[0]} event ids")
    if names.size == 0:
        return np.zeros(0, dtype=np.uint64)
    uniq, inverse = np.unique(names, return_inverse=True)
    fh = np.array([_name_hash(str(u)) for u in uniq], dtype=np.uint64)[inverse]
    s = _mix(np.full(ids.shape, int(seed) & _MASK64, dtype=np.uint64))
    return _mix(_mix(ids ^ s) ^ _mix(fh ^ s))


@dataclass(frozen=True)
class Split:
    """Positions (into the list of events the split was made from) of train, val and test.

    Attributes:
        train, val, test: sorted int64 positions.
        by: ``"event"`` or ``"file"``.
        seed: the split seed.
        val_fraction, test_fraction: the requested fractions.
    """

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    by: str
    seed: int
    val_fraction: float
    test_fraction: float

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in SPLIT_NAMES:
            raise KeyError(f"unknown split {name!r}; valid: {', '.join(SPLIT_NAMES)}")
        return getattr(self, name)

    def counts(self) -> dict[str, int]:
        """Number of events per split."""
        return {k: len(self[k]) for k in SPLIT_NAMES}


def _check_fractions(val_fraction: float, test_fraction: float) -> None:
    for key, f in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 < float(f) < 1.0:
            raise InputError(f"split: {key} must be in (0, 1); received {f}")
    if val_fraction + test_fraction >= 1.0:
        raise InputError(
            f"split: val_fraction + test_fraction must be < 1 to leave training events; "
            f"received {val_fraction} + {test_fraction}"
        )


def split_events(
    file_names: Sequence[str] | np.ndarray,
    event_ids: Any,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = 0,
    by: str = "event",
) -> Split:
    """Split events into train / val / test, seeded and independent of order and machine.

    Args:
        file_names: (N,) source file of each event (its base name enters the hash).
        event_ids: (N,) event ids; (file name, event id) must be unique.
        val_fraction, test_fraction: shares of validation and test events (each in (0, 1),
            sum < 1). With ``by="event"`` the counts are exact (rounded); with
            ``by="file"`` whole files are taken until each share is reached.
        seed: the split seed.
        by: ``"event"`` or ``"file"``.

    Returns:
        A :class:`Split` of positions into the given arrays.

    Raises:
        InputError: bad fractions, duplicate (file, event id) pairs, too few events or
            files to fill the three splits, unknown ``by``.
    """
    _check_fractions(val_fraction, test_fraction)
    names = np.asarray([os.path.basename(str(f)) for f in file_names], dtype=object)
    ids = np.asarray(event_ids).astype(np.int64)
    n = ids.size
    if names.shape != ids.shape:
        raise InputError(f"split: {names.size} file names for {n} event ids")
    if by == "event":
        h = event_hash(names, ids, seed)
        order = np.lexsort((ids, h))
        # duplicates would get the same hash: check them where they sit next to each other
        same = (h[order][1:] == h[order][:-1]) & (ids[order][1:] == ids[order][:-1])
        same &= names[order][1:] == names[order][:-1]
        if same.any():
            i = order[1:][same][0]
            raise InputError(f"split: event id {int(ids[i])} appears twice in {names[i]}; ids must be unique per file")
        n_test = round(n * test_fraction)
        n_val = round(n * val_fraction)
        if min(n_test, n_val) < 1 or n - n_test - n_val < 1:
            raise InputError(
                f"split: {n} events are too few for val_fraction={val_fraction} and "
                f"test_fraction={test_fraction} (each split needs at least one event)"
            )
        parts = {"test": order[:n_test], "val": order[n_test : n_test + n_val], "train": order[n_test + n_val :]}
    elif by == "file":
        uniq, inverse, counts = np.unique(names, return_inverse=True, return_counts=True)
        if uniq.size < 3:
            raise InputError(
                f"split: split_by 'file' needs at least 3 source files (train, val, test); "
                f"received {uniq.size}: {', '.join(map(str, uniq))}"
            )
        fh = _mix(np.array([_name_hash(str(u)) for u in uniq], dtype=np.uint64) ^ _mix(
            np.full(uniq.size, int(seed) & _MASK64, dtype=np.uint64)))
        forder = np.lexsort((uniq.astype(str), fh))
        assign = np.empty(uniq.size, dtype=object)
        pos = 0
        for name, frac in (("test", test_fraction), ("val", val_fraction)):
            got = 0
            while pos < uniq.size - 1 and (got == 0 or got < frac * n):
                if got > 0 and got + counts[forder[pos]] / 2 > frac * n:
                    break  # the next file would overshoot more than it helps
                assign[forder[pos]] = name
                got += counts[forder[pos]]
                pos += 1
        if pos >= uniq.size:
            raise InputError(f"split: {uniq.size} files leave none for training; use more files or split_by 'event'")
        assign[forder[pos:]] = "train"
        if not (assign == "val").any():
            raise InputError(f"split: {uniq.size} files are too few to give val and test a file each and train the rest")
        per_event = assign[inverse]
        parts = {k: np.flatnonzero(per_event == k) for k in SPLIT_NAMES}
    else:
        raise InputError(f"split: split_by must be 'event' or 'file'; received {by!r}")
    return Split(
        train=np.sort(parts["train"]).astype(np.int64),
        val=np.sort(parts["val"]).astype(np.int64),
        test=np.sort(parts["test"]).astype(np.int64),
        by=by,
        seed=int(seed),
        val_fraction=float(val_fraction),
        test_fraction=float(test_fraction),
    )


def save_split(
    path: str | os.PathLike, split: Split, file_names: Sequence[str] | np.ndarray, event_ids: Any
) -> Path:
    """Record a split (its parameters and the file and event id of every event) in a ``.npz``.

    Args:
        path: output file (written to a temporary name and renamed).
        split: the split.
        file_names, event_ids: the (N,) arrays the split was made from.

    Returns:
        The path written. Keys: ``by``, ``seed``, ``val_fraction``, ``test_fraction``,
        ``files`` (the distinct base names) and, per split ``s``, ``s_file`` (index into
        ``files``) and ``s_event_id``.
    """
    p = Path(path)
    names = np.asarray([os.path.basename(str(f)) for f in file_names])
    ids = np.asarray(event_ids).astype(np.int64)
    uniq, inverse = np.unique(names, return_inverse=True)
    arrays: dict[str, Any] = {
        "by": np.asarray(split.by),
        "seed": np.asarray(split.seed),
        "val_fraction": np.asarray(split.val_fraction),
        "test_fraction": np.asarray(split.test_fraction),
        "files": uniq.astype(str),
    }
    for k in SPLIT_NAMES:
        arrays[f"{k}_file"] = inverse[split[k]].astype(np.int32)
        arrays[f"{k}_event_id"] = ids[split[k]]

    with atomic_path(p) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    return p


def load_split(path: str | os.PathLike) -> dict[str, Any]:
    """Read a split file: ``{"by", "seed", "val_fraction", "test_fraction", "train": [(file, id)…]…}``.

    Returns:
        The parameters, and for each split a dict ``{"file": (n,) str, "event_id": (n,) int64}``.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such split file")
    with np.load(p, allow_pickle=False) as z:
        files = z["files"]
        out: dict[str, Any] = {
            "by": str(z["by"]),
            "seed": int(z["seed"]),
            "val_fraction": float(z["val_fraction"]),
            "test_fraction": float(z["test_fraction"]),
        }
        for k in SPLIT_NAMES:
            out[k] = {"file": files[z[f"{k}_file"]], "event_id": z[f"{k}_event_id"]}
    return out
