"""Events for training: splits, the streaming Keras dataset, augmentation, the default data.

* :mod:`edkeras.data.splits` — seeded train / val / test by event id or source file;
* :mod:`edkeras.data.dataset` — :class:`EventIndex` (which events, from which files) and
  :class:`EventDataset`, a ``keras.utils.PyDataset`` that streams events from event files
  without loading them whole;
* :mod:`edkeras.data.augment` — the mirror group of the three-plane geometry, noise, gain;
* :mod:`edkeras.data.default` — :func:`default_dataset`, the embedded synthetic event file.

Importing this package costs nothing: the Keras dataset is loaded on first access.
"""

from __future__ import annotations

from typing import Any

from edkeras.data.default import default_dataset
from edkeras.data.splits import Split, load_split, save_split, split_events

__all__ = [
    "EventDataset",
    "EventIndex",
    "Split",
    "default_dataset",
    "index_events",
    "load_split",
    "save_split",
    "split_events",
]

_LAZY = {"EventDataset", "EventIndex", "index_events"}


def __getattr__(name: str) -> Any:
    """Load :mod:`edkeras.data.dataset` (which imports Keras) on first access."""
    if name in _LAZY:
        from edkeras.data import dataset

        return getattr(dataset, name)
    raise AttributeError(f"module 'edkeras.data' has no attribute {name!r}")
