"""Stream events from event files into Keras, without loading the files whole.

Method notes: ``docs/methods.md``, section ``edkeras.reco.dataset``.

Example:
    >>> from edkeras.reco.event_index import index_events
    >>> index = index_events(["events.h5"])
    >>> train = EventDataset(index.select(split.train), batch_size=64, training=True, seed=1)
    >>> val = EventDataset(index.select(split.val), batch_size=256)
    >>> model.fit(train, steps_per_epoch=train.steps_per_epoch, validation_data=val,
    ...           epochs=10, shuffle=False, callbacks=[EpochSync(train)])
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import h5py
import keras
import numpy as np

from edkeras.core.detector import PLANES
from edkeras.core.errors import InputError
from edkeras.events.eventfile import H5_ERRORS, HDF5_LOCK, open_events
from edkeras.reco.augment import augment_batch
from edkeras.reco.event_index import EventIndex, _codec, _damaged, _decode_into

__all__ = [
    "INPUT_NAMES",
    "EpochSync",
    "EventDataset",
]

INPUT_NAMES: dict[str, str] = {"U": "view_u", "V": "view_v", "X": "view_x"}
"""Model input name of each plane."""

_LABEL_FIELDS = ("event_id", "direction", "energy", "interaction", "nu_direction", "reco_energy")




class EventDataset(keras.utils.PyDataset):
    """A Keras dataset streaming the events of an :class:`EventIndex` (see the module doc).

    Args:
        index: the events (e.g. ``index.select(split.train)``).
        batch_size: events per batch.
        head: ``direction``, ``vmf``, ``axial`` or ``multitask`` (which targets to give).
        energy_input: add the ``energy`` input (reconstructed MeV, (B, 1)).
        targets: give targets (False: inputs only, for files without truth).
        training: shuffle per epoch, repeat forever, drop the last partial batch (when
            there are at least ``batch_size`` events), augment.
        seed: seed of the shuffling and of the augmentation.
        augment: an :class:`edkeras.reco.augment.AugmentConfig` (applied to training batches
            only, when one of its augmentations is on) or None.
        cache: read the selected events into memory once.
        shuffle_buffer: events per shuffling window (memory ≈ 2 windows × 48 kB/event).
        energy_in_target: give the ``direction`` target as (B, 4) with the true energy
            (MeV) in column 3 (for ``focal_angular`` with energy-bin weights ``alpha``).
        readers: threads that decompress chunks while the next window is read ahead during
            training (default: half the CPUs, 1 to 8; 0 = read in the calling thread, no
            read-ahead). A 2-core CPU gains nothing from more; a GPU host needs them.

    Raises:
        InputError: an event without the truth the targets need (named by file and event
            id), or without a positive reconstructed energy when ``energy_input``.
    """

    def __init__(
        self,
        index: EventIndex,
        batch_size: int = 64,
        *,
        head: str = "direction",
        energy_input: bool = False,
        targets: bool = True,
        training: bool = False,
        seed: int = 0,
        augment: Any = None,
        cache: bool = False,
        shuffle_buffer: int = 1024,
        energy_in_target: bool = False,
        readers: int | None = None,
    ) -> None:
        super().__init__(workers=1, use_multiprocessing=False, max_queue_size=10)
        if len(index) == 0:
            raise InputError(f"EventDataset: no events selected from {[str(f) for f in index.files]}")
        if int(batch_size) < 1:
            raise InputError(f"EventDataset: batch_size must be >= 1; received {batch_size}")
        if head not in ("direction", "vmf", "axial", "multitask"):
            raise InputError(f"EventDataset: head must be direction, vmf, axial or multitask; received {head!r}")
        self.index = index
        self.batch_size = int(batch_size)
        self.head = head
        self.energy_input = bool(energy_input)
        self.targets = bool(targets)
        self.training = bool(training)
        self.seed = int(seed)
        active = augment is not None and getattr(augment, "active", True)
        self.augment = augment if (self.training and active) else None
        self.shuffle_buffer = max(int(shuffle_buffer), 1)
        self.energy_in_target = bool(energy_in_target)
        self.start_epoch = 0
        n = len(index)
        self.n_events = n
        if self.training and n >= self.batch_size:
            self.steps_per_epoch = n // self.batch_size
        else:
            self.steps_per_epoch = -(-n // self.batch_size)
        self.readers = max(1, min(8, (os.cpu_count() or 2) // 2)) if readers is None else max(int(readers), 0)
        self._lock = threading.RLock()
        self._h5: dict[int, h5py.File] = {}
        self._pools: dict[str, ThreadPoolExecutor] = {}
        self._pid = os.getpid()
        self._labels = self._load_labels()
        self._codecs: dict[int, tuple[int, ...] | None] = {}
        self._blocks = self._make_blocks()
        self._plans: OrderedDict[int, dict[str, Any]] = OrderedDict()
        self._windows: OrderedDict[tuple[int, int], dict[str, np.ndarray]] = OrderedDict()
        self._checked_epoch: int | None = None  # pixels are checked in the first epoch read (it holds every event)
        self._pending: dict[tuple[int, int], Future] = {}
        self._augmented: dict[int, dict[int, int]] = {}
        self._cache: dict[str, np.ndarray] | None = None
        if cache:
            self._cache = self._read_all()

    # ------------------------------------------------------------------ set-up
    def _load_labels(self) -> dict[str, np.ndarray]:
        labels = {name: self.index.field(name) for name in _LABEL_FIELDS}
        if self.targets:
            bad = ~np.isfinite(labels["direction"]).all(axis=1)
            if bad.any():
                raise InputError(
                    f"{self.index.describe(int(np.flatnonzero(bad)[0]))}: no true direction "
                    f"({int(bad.sum())} events without truth); training and metrics need the truth"
                )
            if self.head == "multitask" or self.energy_in_target:
                bad = ~np.isfinite(labels["energy"])
                if self.head == "multitask":
                    bad |= ~np.isin(labels["interaction"], (0, 1))
                if bad.any():
                    raise InputError(
                        f"{self.index.describe(int(np.flatnonzero(bad)[0]))}: the targets need the true "
                        "energy (and for the multitask head the interaction, 0 or 1); this event has none"
                    )
        if self.energy_input:
            e = labels["reco_energy"]
            bad = ~(np.isfinite(e) & (e > 0))
            if bad.any():
                raise InputError(
                    f"{self.index.describe(int(np.flatnonzero(bad)[0]))}: energy_input needs a reconstructed "
                    f"energy > 0 MeV; received {float(e[bad][0])}"
                )
        return labels

    def _chunk_rows(self, k: int) -> int:
        """Rows per HDF5 chunk of file ``k`` (the unit of decompression); notes its codec."""
        ds = self._file(k)["images/U"]
        self._codecs[k] = _codec(ds)
        return int(ds.chunks[0]) if ds.chunks else 64

    def _make_blocks(self) -> list[np.ndarray]:
        """Positions of the selected events grouped by file chunk, each block sorted by row."""
        idx = self.index
        order = np.lexsort((idx.row, idx.file))
        blocks: list[np.ndarray] = []
        self._block_rows: dict[int, int] = {}
        for k in np.unique(idx.file):
            mine = order[idx.file[order] == k]
            rows_per_block = max(self._chunk_rows(int(k)), 1)
            self._block_rows[int(k)] = rows_per_block
            key = idx.row[mine] // rows_per_block
            cuts = np.flatnonzero(np.diff(key)) + 1
            blocks.extend(np.split(mine, cuts))
        return blocks

    def _file(self, k: int) -> h5py.File:
        """The open HDF5 file ``k`` (validated by :func:`~edkeras.reco.event_index.index_events`); reopened after a fork."""
        with self._lock:
            if self._pid != os.getpid():  # a forked copy must not share HDF5 handles or threads
                self._h5, self._pools, self._pending, self._pid = {}, {}, {}, os.getpid()
            if k not in self._h5:
                with HDF5_LOCK:
                    self._h5[k] = h5py.File(self.index.files[k], "r")
            return self._h5[k]

    def _pool(self, name: str, workers: int) -> ThreadPoolExecutor:
        with self._lock:
            self._file(int(self.index.file[0]))  # resets the pools after a fork
            if name not in self._pools:
                self._pools[name] = ThreadPoolExecutor(workers, thread_name_prefix=f"edkeras-{name}")
            return self._pools[name]

    def _fill_block(self, block: np.ndarray, out: dict[str, np.ndarray], where: np.ndarray) -> list[Future]:
        """Write the images of one block into ``out[plane][where]``.

        A block is one HDF5 chunk of one file. Its compressed bytes are read here (HDF5
        allows one reader at a time) and, with ``readers`` > 0 and a gzip/shuffle codec,
        decompressed by the reader threads (zlib runs without Python's lock, so they work in
        parallel); the futures are returned. Otherwise h5py reads it directly.
        """
        k = int(self.index.file[block[0]])
        rows = self.index.row[block]
        h5 = self._file(k)
        codec = self._codecs.get(k)
        futures: list[Future] = []
        if codec is not None and self.readers > 0:
            chunk = self._block_rows[k]
            r0 = int(rows[0]) // chunk * chunk
            local = rows - r0
            for p in PLANES:
                what = f"{self.index.files[k]}: images/{p} rows {r0}..{r0 + chunk - 1}"
                with HDF5_LOCK:
                    ds = h5[f"images/{p}"]
                    try:
                        mask, raw = ds.id.read_direct_chunk((r0, 0, 0))
                    except H5_ERRORS as e:
                        raise _damaged(what, e) from None
                futures.append(
                    self._pool("readers", self.readers).submit(
                        _decode_into, raw, codec, mask, ds.chunks, ds.dtype, local, out[p], where, what
                    )
                )
            return futures
        r0, r1 = int(rows[0]), int(rows[-1]) + 1
        local = rows - r0
        for p in PLANES:
            with HDF5_LOCK:
                try:
                    img = h5[f"images/{p}"][r0:r1]
                except H5_ERRORS as e:
                    raise _damaged(f"{self.index.files[k]}: images/{p} rows {r0}..{r1 - 1}", e) from None
            # the block as read only when its rows are r0 … r1 − 1 once each (a bootstrap member repeats rows)
            whole = local.size == r1 - r0 and bool(np.all(np.diff(local) == 1))
            out[p][where] = img if whole else img[local]
        return futures

    def _read_all(self) -> dict[str, np.ndarray]:
        t, c = self.index.image_shape
        out = {p: np.empty((self.n_events, t, c), dtype=np.float32) for p in PLANES}
        futures: list[Future] = []
        for block in self._blocks:
            futures += self._fill_block(block, out, block)
        for f in futures:
            f.result()
        self._check_finite(out, np.arange(self.n_events))
        return out

    def _check_finite(self, imgs: dict[str, np.ndarray], positions: np.ndarray) -> None:
        """Refuse NaN or infinite pixels (as ``edkeras doctor`` does), naming the file and event.

        ``positions[r]`` is the index position of image row ``r``.
        """
        for p in PLANES:
            bad = ~np.isfinite(imgs[p]).all(axis=(1, 2))
            if bad.any():
                r = int(np.flatnonzero(bad)[0])
                pos = int(positions[r])
                path, row = self.index.files[int(self.index.file[pos])], int(self.index.row[pos])
                with open_events(path) as ev:
                    event_id = int(ev.field("event_id", row))
                n = int(np.sum(~np.isfinite(imgs[p][r])))
                raise InputError(
                    f"{path}: event id {event_id} (row {row}): plane {p} has {n} NaN or infinite pixels; "
                    f"expected finite ADC values ({int(bad.sum())} such events in this read; edkeras doctor {path})"
                )

    # ------------------------------------------------------------------ epoch plans
    def _plan(self, epoch: int) -> dict[str, Any]:
        """Block order, windows and within-window permutations of one epoch."""
        with self._lock:
            if epoch in self._plans:
                return self._plans[epoch]
            nb = len(self._blocks)
            if self.training:
                block_order = np.random.default_rng([self.seed, epoch, 1]).permutation(nb)
            else:
                block_order = np.arange(nb)
            sizes = np.array([self._blocks[b].size for b in block_order])
            windows: list[np.ndarray] = []
            start, acc = 0, 0
            for j, s in enumerate(sizes):
                acc += s
                if acc >= self.shuffle_buffer or j == nb - 1:
                    windows.append(block_order[start : j + 1])
                    start, acc = j + 1, 0
            positions, perms = [], []
            for w, blocks in enumerate(windows):
                pos = np.concatenate([self._blocks[b] for b in blocks])
                if self.training:
                    perm = np.random.default_rng([self.seed, epoch, 2, w]).permutation(pos.size)
                else:
                    perm = np.arange(pos.size)
                positions.append(pos)
                perms.append(perm)
            bounds = np.concatenate([[0], np.cumsum([p.size for p in positions])])
            order = np.concatenate([pos[perm] for pos, perm in zip(positions, perms)])
            plan = {"windows": windows, "perms": perms, "bounds": bounds, "order": order}
            self._plans[epoch] = plan
            while len(self._plans) > 3:
                self._plans.popitem(last=False)
            return plan

    def epoch_order(self, epoch: int = 0) -> np.ndarray:
        """Positions (into ``index``) of the events of ``epoch`` in the order they are served.

        For training, batch ``s`` of the epoch is ``epoch_order(epoch)[s*B:(s+1)*B]``.
        """
        return self._plan(epoch)["order"].copy()

    def _load_window(self, epoch: int, w: int) -> dict[str, np.ndarray]:
        """Read window ``w`` of ``epoch``: each event goes straight to its shuffled place."""
        plan = self._plan(epoch)
        blocks = [self._blocks[b] for b in plan["windows"][w]]
        perm = plan["perms"][w]
        dest = np.empty_like(perm)
        dest[perm] = np.arange(perm.size)
        t, c = self.index.image_shape
        imgs = {p: np.empty((perm.size, t, c), dtype=np.float32) for p in PLANES}
        futures: list[Future] = []
        start = 0
        for block in blocks:
            futures += self._fill_block(block, imgs, dest[start : start + block.size])
            start += block.size
        for f in futures:
            f.result()
        with self._lock:
            if self._checked_epoch is None:
                self._checked_epoch = epoch
            first = epoch == self._checked_epoch
        if first:  # later epochs read the same events again
            positions = np.empty(perm.size, dtype=np.int64)
            positions[dest] = np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.int64)
            self._check_finite(imgs, positions)
        return imgs

    def _next_window(self, epoch: int, w: int) -> tuple[int, int] | None:
        if w + 1 < len(self._plan(epoch)["windows"]):
            return epoch, w + 1
        return (epoch + 1, 0) if self.training else None

    def _window(self, epoch: int, w: int) -> dict[str, np.ndarray]:
        """Images of window ``w`` of ``epoch`` in served order; the next window is read ahead.

        At most two windows are kept and one is being read: memory does not grow with the file.
        """
        key = (epoch, w)
        with self._lock:
            imgs = self._windows.get(key)
            if imgs is not None:
                self._windows.move_to_end(key)
            future = self._pending.pop(key, None)
        if imgs is None:
            imgs = future.result() if future is not None else self._load_window(epoch, w)
            with self._lock:
                self._windows[key] = imgs
                while len(self._windows) > 2:
                    self._windows.popitem(last=False)
        nxt = self._next_window(epoch, w)
        if self.readers > 0 and nxt is not None:
            with self._lock:
                if nxt not in self._windows and nxt not in self._pending:
                    self._pending[nxt] = self._pool("ahead", 1).submit(self._load_window, *nxt)
        return imgs

    # ------------------------------------------------------------------ Keras interface
    def __len__(self) -> int:
        """Batches per epoch."""
        return self.steps_per_epoch

    @property
    def num_batches(self) -> int | None:
        """``None`` (repeat forever) for training, else the batches of one pass."""
        return None if self.training else self.steps_per_epoch

    def locate(self, index: int) -> tuple[int, int]:
        """(epoch, batch within the epoch) of the global batch ``index``."""
        if self.training:
            return self.start_epoch + index // self.steps_per_epoch, index % self.steps_per_epoch
        if not 0 <= index < self.steps_per_epoch:
            raise IndexError(f"batch {index} out of range (0..{self.steps_per_epoch - 1})")
        return 0, index

    def __getitem__(self, index: int) -> tuple[Any, ...]:
        epoch, step = self.locate(int(index))
        plan = self._plan(epoch)
        a = step * self.batch_size
        b = min(a + self.batch_size, self.n_events)
        pos = plan["order"][a:b]
        if self._cache is not None:  # one gather, as from in-memory arrays
            pieces = [{p: self._cache[p][pos] for p in PLANES}]
        else:
            bounds = plan["bounds"]
            w0 = int(np.searchsorted(bounds, a, side="right")) - 1
            w1 = int(np.searchsorted(bounds, b - 1, side="right")) - 1
            pieces = []
            for w in range(w0, w1 + 1):
                imgs = self._window(epoch, w)
                lo, hi = max(a, bounds[w]) - bounds[w], min(b, bounds[w + 1]) - bounds[w]
                pieces.append({p: imgs[p][lo:hi] for p in PLANES})
        inputs: dict[str, np.ndarray] = {
            INPUT_NAMES[p]: (pieces[0][p] if len(pieces) == 1 else np.concatenate([q[p] for q in pieces]))
            for p in PLANES
        }
        if self.energy_input:
            inputs["energy"] = self._labels["reco_energy"][pos].astype(np.float32)[:, None]
        if not self.targets:
            return (inputs,)
        targets = self.batch_targets(pos)
        if self.augment is not None:

            rng = np.random.default_rng([self.seed, epoch, step, 3])
            inputs, targets = augment_batch(inputs, targets, rng, self.augment)
            with self._lock:
                self._augmented.setdefault(epoch, {})[step] = int(b - a)
        if self.energy_in_target:
            true_e = self._labels["energy"][pos].astype(np.float32)[:, None]
            targets["direction"] = np.concatenate([targets["direction"][:, :3], true_e], axis=1)
        return inputs, targets

    def batch_targets(self, positions: np.ndarray) -> dict[str, np.ndarray]:
        """Targets of the events at ``positions``, by model output name."""
        out = {"direction": self._labels["direction"][positions].astype(np.float32)}
        if self.head == "multitask":
            out["energy"] = self._labels["energy"][positions].astype(np.float32)[:, None]
            out["interaction"] = self._labels["interaction"][positions].astype(np.float32)[:, None]
        return out

    def labels(self, name: str) -> np.ndarray:
        """A per-event field of the selected events in index order (the order of evaluation).

        ``name`` is one of ``event_id, direction, energy, interaction, nu_direction, reco_energy``.
        """
        return self._labels[name]

    def augmented_events(self, epoch: int) -> int:
        """Number of training events passed through the augmentation in ``epoch``."""
        with self._lock:
            return int(sum(self._augmented.get(epoch, {}).values()))

    def close(self) -> None:
        """Stop the reader threads and close the files (the dataset reopens them if used again)."""
        with self._lock:
            pools, self._pools = self._pools, {}
            pending, self._pending = self._pending, {}
        for f in pending.values():
            f.cancel()
        for pool in pools.values():
            pool.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            for h5 in self._h5.values():
                with HDF5_LOCK:
                    h5.close()
            self._h5 = {}
            self._windows.clear()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # interpreter shutdown: nothing left to close
            self.close()


class EpochSync(keras.callbacks.Callback):
    """Tell a training :class:`EventDataset` which epoch ``fit`` starts at; log augmentation counts.

    On the first epoch of each ``fit`` call the dataset's ``start_epoch`` is set (so a run
    resumed at epoch k shuffles epoch k as an uninterrupted run would); at each epoch end
    ``augmented_events`` (events passed through the augmentation) is added to the logs, so
    that the CSV history records it.
    """

    def __init__(self, dataset: EventDataset) -> None:
        super().__init__()
        self.dataset = dataset
        self._first = True

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._first = True

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        if self._first:
            self.dataset.start_epoch = int(epoch)
            self._first = False

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is not None:
            logs["augmented_events"] = float(self.dataset.augmented_events(epoch))
