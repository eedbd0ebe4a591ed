"""Predictions files (.npz): what a trained network said about each event (docs/formats.md §2).

Method notes: ``docs/methods.md``, section ``edkeras.reco.predictions``.

Example:
    >>> save_predictions("p.npz", predictions=pred, true_directions=truth, split="val", run="r1")
    >>> p = load_predictions("p.npz")
    >>> p.angular_errors.mean(), p.split
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from edkeras.core.errors import ARCHIVE_ERRORS, InputError
from edkeras.core.files import atomic_path
from edkeras.core.vmf import kappa_from_sigma
from edkeras.reco.metrics import angular_error_deg

__all__ = ["MIRROR_TAG", "Predictions", "PredictionsError", "load_predictions", "save_predictions", "single_model"]

MIRROR_TAG = "+mirror8"
"""Appended to a model's identity when its predictions are averaged over the mirror group
(tables built from plain predictions then refuse them, and the other way round)."""


def single_model(identity: str) -> str:
    """``identity`` when it names one model (plain or ``MIRROR_TAG`` predictions), "" when it
    joins several (``Predictions.concatenate`` of different models gives "a+b")."""
    return identity if "+" not in identity.removesuffix(MIRROR_TAG) else ""

_STRINGS = ("split", "run", "model")
"""The string scalars of a predictions file."""

_PER_EVENT: dict[str, tuple[tuple[int, ...], Any]] = {
    "predictions": ((3,), np.float64),
    "true_directions": ((3,), np.float64),
    "energies": ((), np.float64),
    "true_energies": ((), np.float64),
    "angular_errors": ((), np.float64),
    "interaction": ((), np.int8),
    "nu_directions": ((3,), np.float64),
    "event_id": ((), np.int64),
    "kappa": ((), np.float64),
    "sigma": ((), np.float64),
    "es_probability": ((), np.float64),
    "flip_probability": ((), np.float64),
}
"""Per-event keys: trailing shape and the dtype they are read as."""

_DIRECTION_KEYS = ("predictions", "true_directions", "nu_directions")

_META_COLUMN_ES = 3
"""Earlier system's metadata column holding is_es_interaction (1 ES, 0 CC)."""


class PredictionsError(InputError):
    """A predictions file (or arrays for one) is not what docs/formats.md §2 says it must be."""


@dataclass
class Predictions:
    """The contents of a predictions file; absent keys are ``None``.

    Attributes:
        predictions: (N, 3) predicted unit directions (normalised on load).
        true_directions: (N, 3) true electron directions (rows of NaN where unknown).
        energies: (N,) reconstructed energy, MeV.
        true_energies: (N,) true electron kinetic energy, MeV.
        angular_errors: (N,) degrees between prediction and truth.
        interaction: (N,) int8, 1 = ES, 0 = CC, −1 unknown.
        nu_directions: (N, 3) neutrino (supernova) directions.
        event_id: (N,) int64.
        kappa: (N,) predicted von Mises–Fisher concentration.
        sigma: (N,) predicted angular σ in radians (a Gaussian head, σ² = E[θ²]); readers that
            need a concentration take :attr:`kappa_equivalent`.
        es_probability: (N,) predicted probability that the event is ES.
        flip_probability: (N,) predicted probability that the direction's sense is wrong.
        metadata: the earlier system's (N, 14) metadata, when read from such a file.
        split: which split the events come from ("train", "val", "test", or "").
        run: the run that made the predictions ("" if unknown).
        model: the identity of the model file that made them (``sha256:`` and 16 hex digits of
            ``model.keras``, ``classical`` for the classical fit; "" if unknown). Likelihood
            tables record it, so a burst is never pointed with tables of another model.
        path: the file read (None when built in memory).
    """

    predictions: np.ndarray
    true_directions: np.ndarray | None = None
    energies: np.ndarray | None = None
    true_energies: np.ndarray | None = None
    angular_errors: np.ndarray | None = None
    interaction: np.ndarray | None = None
    nu_directions: np.ndarray | None = None
    event_id: np.ndarray | None = None
    kappa: np.ndarray | None = None
    sigma: np.ndarray | None = None
    es_probability: np.ndarray | None = None
    flip_probability: np.ndarray | None = None
    metadata: np.ndarray | None = None
    split: str = ""
    run: str = ""
    model: str = ""
    path: Path | None = None

    @property
    def kappa_equivalent(self) -> np.ndarray | None:
        """κ, or from a Gaussian head's σ the vMF κ of the same E[θ²], 2/σ² (None when neither is known)."""
        if self.kappa is not None:
            return self.kappa
        if self.sigma is None:
            return None
        return kappa_from_sigma(np.maximum(self.sigma, 1e-6))

    def __len__(self) -> int:
        return int(self.predictions.shape[0])

    def select(self, index: Any) -> Predictions:
        """Events ``index`` (slice, integer array or boolean mask) as a new :class:`Predictions`."""
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            out[f.name] = v[index] if isinstance(v, np.ndarray) else v
        return Predictions(**out)

    @staticmethod
    def concatenate(parts: list[Predictions]) -> Predictions:
        """Join several predictions along the event axis; a key absent from any part is dropped.

        ``split``, ``run`` and ``model`` are kept when all parts agree, else joined with ``+``.
        """
        if not parts:
            raise PredictionsError("Predictions.concatenate: expected at least one part; received none")
        out: dict[str, Any] = {}
        for f in fields(Predictions):
            vals = [getattr(p, f.name) for p in parts]
            if f.name in _STRINGS:
                uniq = list(dict.fromkeys(vals))
                out[f.name] = "+".join(uniq)
            elif f.name == "path":
                out[f.name] = None
            elif all(isinstance(v, np.ndarray) for v in vals):
                if f.name == "metadata" and len({v.shape[1:] for v in vals}) != 1:
                    out[f.name] = None
                else:
                    out[f.name] = np.concatenate(vals)
            else:
                out[f.name] = None
        return Predictions(**out)


def _angles_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle between rows (unit or not), degrees; NaN where either row is unknown."""
    known = np.isfinite(a).all(axis=1) & np.isfinite(b).all(axis=1)
    out = np.full(len(a), np.nan)
    if known.any():

        out[known] = angular_error_deg(a[known], b[known])
    return out


def _check_per_event(name: str, value: Any, n: int, where: str) -> np.ndarray:
    shape, dtype = _PER_EVENT[name]
    try:
        arr = np.asarray(value)
    except Exception as e:  # pragma: no cover - numpy refuses only exotic objects
        raise PredictionsError(f"{where}: key '{name}' could not be read as an array ({e})") from e
    if arr.shape != (n, *shape):
        raise PredictionsError(f"{where}: key '{name}' must have shape {(n, *shape)}; received {arr.shape}")
    if arr.dtype.kind not in "biuf":
        raise PredictionsError(f"{where}: key '{name}' must be numeric; received dtype {arr.dtype}")
    arr = arr.astype(dtype)
    if name in _DIRECTION_KEYS:
        finite = np.isfinite(arr).all(axis=1)
        if name == "predictions" and not finite.all():
            i = int(np.flatnonzero(~finite)[0])
            raise PredictionsError(f"{where}: key 'predictions' has a NaN or inf row at event index {i}")
        norms = np.linalg.norm(np.where(finite[:, None], arr, 1.0), axis=1)
        zero = finite & (norms == 0)
        if zero.any():
            i = int(np.flatnonzero(zero)[0])
            raise PredictionsError(
                f"{where}: key '{name}' has a zero-length direction at event index {i}; "
                "expected a non-zero vector (or NaN for unknown truth)"
            )
        arr = np.where(finite[:, None], arr / norms[:, None], np.nan)
    if name == "interaction" and not np.isin(arr, (-1, 0, 1)).all():
        i = int(np.flatnonzero(~np.isin(arr, (-1, 0, 1)))[0])
        raise PredictionsError(
            f"{where}: key 'interaction' is {int(arr[i])} at event index {i}; expected 1 (ES), 0 (CC) or -1"
        )
    if name in ("es_probability", "flip_probability") and np.any(~((arr >= 0) & (arr <= 1))):
        i = int(np.flatnonzero(~((arr >= 0) & (arr <= 1)))[0])
        raise PredictionsError(f"{where}: key '{name}' is {arr[i]} at event index {i}; expected a value in [0, 1]")
    if name in ("kappa", "sigma") and np.any(~(arr >= 0)):
        i = int(np.flatnonzero(~(arr >= 0))[0])
        raise PredictionsError(f"{where}: key '{name}' is {arr[i]} at event index {i}; expected >= 0")
    return arr


def _build(data: dict[str, Any], where: str, path: Path | None) -> Predictions:
    if "predictions" not in data:
        raise PredictionsError(f"{where}: key 'predictions' is missing; found keys {sorted(data)}")
    pred = np.asarray(data["predictions"])
    if pred.ndim != 2 or pred.shape[1] not in (3, 4):
        raise PredictionsError(
            f"{where}: key 'predictions' must have shape (N, 3) (or (N, 4) with kappa); received {pred.shape}"
        )
    if pred.shape[1] == 4 and "kappa" not in data:
        # a vMF head's raw output: direction and κ in column 3
        data = {**data, "kappa": pred[:, 3]}
    if pred.shape[1] == 4:
        data = {**data, "predictions": pred[:, :3]}
    n = pred.shape[0]
    values: dict[str, Any] = {}
    for name in _PER_EVENT:
        if data.get(name) is not None:
            values[name] = _check_per_event(name, data[name], n, where)
    meta = data.get("metadata")
    if meta is not None:
        meta = np.asarray(meta)
        if meta.ndim != 2 or meta.shape[0] != n:
            raise PredictionsError(
                f"{where}: key 'metadata' must have shape (N={n}, k); received {meta.shape}"
            )
        if "interaction" not in values and meta.shape[1] == 14:
            es = meta[:, _META_COLUMN_ES]
            inter = np.where(es == 1, 1, np.where(es == 0, 0, -1)).astype(np.int8)
            values["interaction"] = inter
    if "angular_errors" not in values and "true_directions" in values:
        values["angular_errors"] = _angles_deg(values["predictions"], values["true_directions"])
    strings = {}
    for key in _STRINGS:
        v = data.get(key, "")
        v = np.asarray(v)
        if v.ndim != 0 or v.dtype.kind not in "US":
            raise PredictionsError(
                f"{where}: key '{key}' must be a string scalar; received {v.dtype} {v.shape}"
            )
        item = v.item()
        strings[key] = item.decode() if isinstance(item, bytes) else str(item)
    return Predictions(**values, metadata=meta, path=path, **strings)


def save_predictions(
    path: str | os.PathLike[str],
    *,
    predictions: Any,
    true_directions: Any = None,
    energies: Any = None,
    true_energies: Any = None,
    interaction: Any = None,
    nu_directions: Any = None,
    event_id: Any = None,
    kappa: Any = None,
    sigma: Any = None,
    es_probability: Any = None,
    flip_probability: Any = None,
    split: str = "",
    run: str = "",
    model: str = "",
) -> Path:
    """Write a predictions file (docs/formats.md §2) atomically; compute ``angular_errors`` from the truth.

    The arrays are checked (shapes, zero-length directions, interaction codes) before
    anything is written; the file is written to a temporary name and renamed, so a
    crash never leaves a partial file under ``path``. Directions are stored normalised.

    Args:
        path: output ``.npz`` file (replaced if it exists).
        predictions: (N, 3) predicted directions, or (N, 4) from a vMF head (κ in column 3).
        true_directions: (N, 3) true electron directions (NaN rows for unknown).
        energies: (N,) reconstructed energy, MeV.
        true_energies: (N,) true electron energy, MeV.
        interaction: (N,) 1 = ES, 0 = CC, −1 unknown.
        nu_directions: (N, 3) neutrino directions.
        event_id: (N,) event ids.
        kappa: (N,) predicted vMF concentration.
        sigma: (N,) predicted angular σ in radians (Gaussian head).
        es_probability: (N,) predicted ES probability (multitask classifier).
        flip_probability: (N,) predicted P(sense wrong) (axial head).
        split: "train", "val", "test" or "".
        run: run name.
        model: the model's identity (:func:`edkeras.reco.runs.model_identity`).

    Returns:
        The path written.

    Raises:
        PredictionsError: an array with the wrong shape, a zero-length direction, a bad code.
    """
    path = Path(path)
    given = {
        "predictions": predictions,
        "true_directions": true_directions,
        "energies": energies,
        "true_energies": true_energies,
        "interaction": interaction,
        "nu_directions": nu_directions,
        "event_id": event_id,
        "kappa": kappa,
        "sigma": sigma,
        "es_probability": es_probability,
        "flip_probability": flip_probability,
        "split": str(split),
        "run": str(run),
        "model": str(model),
    }
    p = _build({k: v for k, v in given.items() if v is not None}, f"save_predictions({path.name})", None)
    arrays: dict[str, np.ndarray] = {}
    for name in _PER_EVENT:
        v = getattr(p, name)
        if v is not None:
            arrays[name] = v.astype(np.float32) if v.dtype == np.float64 else v
    arrays["split"] = np.asarray(p.split)
    arrays["run"] = np.asarray(p.run)
    if p.model:
        arrays["model"] = np.asarray(p.model)

    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    return path


def load_predictions(path: str | os.PathLike[str]) -> Predictions:
    """Read a predictions file: edkeras's own or the earlier system's ``val_predictions.npz``.

    Directions are normalised; ``angular_errors`` is computed when absent and the truth is
    known; for the earlier files, ``interaction`` is taken from metadata column 3
    (is_es_interaction) when the metadata has its 14 columns. Object (pickled) arrays are
    refused.

    Args:
        path: the ``.npz`` file.

    Returns:
        A :class:`Predictions`.

    Raises:
        PredictionsError: a missing file, an unreadable file, or a key with the wrong shape or
            content (the message names the file and the key, or the event index).
    """
    path = Path(path)
    where = str(path)
    if not path.is_file():
        raise PredictionsError(f"{where}: no such predictions file")
    with open(path, "rb") as fh:  # opened here: np.load leaks its handle when the archive is cut short
        return _build(_read_npz(fh, where), where, path)


def _read_npz(fh: Any, where: str) -> dict[str, Any]:
    try:
        npz = np.load(fh, allow_pickle=False)
    except ARCHIVE_ERRORS as e:
        raise PredictionsError(f"{where}: not a readable .npz file ({type(e).__name__}: {e})") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise PredictionsError(f"{where}: expected an .npz archive of named arrays; received a single array")
    data: dict[str, Any] = {}
    with npz:
        for key in npz.files:
            try:
                data[key] = npz[key]
            except ValueError as e:
                if "pickle" in str(e).lower():
                    raise PredictionsError(
                        f"{where}: key '{key}' holds pickled objects, which are not read; expected a numeric array"
                    ) from None
                raise PredictionsError(f"{where}: key '{key}' cannot be read ({e}); the file is damaged") from None
            except ARCHIVE_ERRORS as e:
                raise PredictionsError(
                    f"{where}: key '{key}' cannot be read ({type(e).__name__}: {e}); the file is damaged"
                ) from None
    return data
