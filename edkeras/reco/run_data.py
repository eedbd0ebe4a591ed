"""The events of a run: its event files resolved, indexed, split and checked for labels."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edkeras.core.errors import InputError
from edkeras.events.default import default_dataset
from edkeras.events.eventfile import INTERACTION_CODES
from edkeras.events.splits import SPLIT_NAMES, Split, split_events
from edkeras.reco.config import DataConfig
from edkeras.reco.ensembles import bootstrap_membership, kfold_membership
from edkeras.reco.event_index import index_events

__all__ = ['RunData', 'prepare_data']


# =========================================================================== data
@dataclass
class RunData:
    """The events of a run: all events of its files, their split, and what is used of each.

    Attributes:
        files: the event files.
        index: every event of the files (an :class:`edkeras.reco.event_index.EventIndex`).
        split: the split of *all* events (so an event's split never depends on filters).
        selected: positions into ``index`` per split, after the filters and the cap.
    """

    files: list[Path]
    index: Any
    split: Split
    selected: dict[str, np.ndarray]

    def subset(self, name: str) -> Any:
        """The :class:`~edkeras.reco.event_index.EventIndex` of split ``name`` (``train``, ``val`` or ``test``)."""
        return self.index.select(self.selected[name])

    def counts(self) -> dict[str, int]:
        """Events used per split."""
        return {k: int(v.size) for k, v in self.selected.items()}


def _resolve_files(data: DataConfig) -> list[Path]:

    out: list[Path] = []
    for f in data.files:
        if f == "synthetic":
            out.append(default_dataset(n_events=data.synthetic_events, seed=data.synthetic_seed))
        else:
            p = Path(f).expanduser()
            if not p.exists():
                raise InputError(f"data.files: no such event file {str(p)!r}")
            out.append(p)
    return out


def prepare_data(data: DataConfig) -> RunData:
    """Index the files, split all events, then apply the filters and the cap per split.

    Raises:
        InputError: a missing file, or a split left empty by the filters.
    """

    files = _resolve_files(data)
    index = index_events(files)
    split = split_events(
        index.file_names, index.field("event_id"), data.val_fraction, data.test_fraction, data.split_seed, data.split_by
    )
    keep = np.ones(len(index), dtype=bool)
    if data.energy_min is not None or data.energy_max is not None:
        e = index.field("reco_energy").astype(np.float64)
        lo = -np.inf if data.energy_min is None else data.energy_min
        hi = np.inf if data.energy_max is None else data.energy_max
        keep &= np.isfinite(e) & (e >= lo) & (e < hi)
    if data.interaction != "all":
        keep &= index.field("interaction") == INTERACTION_CODES[data.interaction]
    if data.n_events is not None:
        kept = np.flatnonzero(keep)
        keep[kept[data.n_events :]] = False
    selected = {k: split[k][keep[split[k]]] for k in SPLIT_NAMES}
    for k, v in selected.items():
        if v.size == 0:
            raise InputError(
                f"data: the {k} split holds no events after the filters (energy_min={data.energy_min}, "
                f"energy_max={data.energy_max}, interaction={data.interaction!r}, n_events={data.n_events}) "
                f"of {', '.join(map(str, files))}"
            )
    _check_labels(index, np.concatenate([selected[k] for k in SPLIT_NAMES]))
    if data.train_subset != "all":
        selected["train"] = member_positions(selected["train"], data)
    return RunData(files, index, split, selected)


def member_positions(train: np.ndarray, data: DataConfig) -> np.ndarray:
    """The training events of ensemble member ``data.train_member``: a bootstrap resample or all folds but one.

    The members of one ensemble (same ``train_subset_seed``) share the split; a ``kfold``
    member's held-out fold is the one it never sees, a ``bootstrap`` member repeats some events.
    """
    if data.train_subset == "bootstrap":
        members = bootstrap_membership(train, data.train_members, seed=data.train_subset_seed)
    else:
        members = kfold_membership(train, data.train_members, seed=data.train_subset_seed)
    return members[data.train_member].train_ids


def _check_labels(index: Any, used: np.ndarray) -> None:
    """The truth a run trains and is scored on, checked as ``edkeras doctor`` checks it: every
    direction a non-zero vector (or all NaN: unknown), no negative or infinite energy (unique
    event ids are checked by the split). Found here, before the first epoch, instead of when
    the predictions are saved after the last."""

    def where(i: int) -> str:
        return f"{index.files[int(index.file[i])]}: event id {int(ids[i])} (index {int(index.row[i])})"

    ids = index.field("event_id")
    d = np.asarray(index.field("direction"), dtype=np.float64)[used]
    norm = np.linalg.norm(d, axis=1)
    bad = (np.isfinite(norm) & (norm < 1e-9)) | (np.isnan(d).any(axis=1) & ~np.isnan(d).all(axis=1))
    if bad.any():
        raise InputError(f"{where(used[np.flatnonzero(bad)[0]])}: true direction {d[np.flatnonzero(bad)[0]]} "
                         "is zero or partly NaN; expected a non-zero vector (or all NaN when unknown)")
    for name in ("energy", "reco_energy"):
        e = np.asarray(index.field(name), dtype=np.float64)[used]
        bad = np.isinf(e) | (e < 0)
        if bad.any():
            raise InputError(f"{where(used[np.flatnonzero(bad)[0]])}: {name} is {e[np.flatnonzero(bad)[0]]}; "
                             "expected an energy >= 0 MeV (or NaN when unknown)")
