"""What a trained model says about a split: its predictions and the metrics of metrics.json."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from edkeras.core.errors import InputError
from edkeras.core.memory import hold_freed_memory
from edkeras.events.eventfile import INTERACTION_CODES
from edkeras.reco.augment import MIRRORS, mirror_event
from edkeras.reco.calibration import sigma_cone_deg
from edkeras.reco.metrics import (
    angular_error_deg,
    es_cc_separation,
    resolution_by_bin,
    resolution_summary,
    sense_calibration,
    vmf_cone_cos,
)
from edkeras.reco.predictions import MIRROR_TAG, save_predictions

__all__ = ['COARSE_ENERGY_EDGES', 'ENERGY_EDGES', 'MIRROR_TAG', 'combine_mirror_views', 'evaluation_metrics', 'mirrored_predictions', 'predict_arrays']

ENERGY_EDGES: tuple[float, ...] = (5.0, 10.0, 15.0, 20.0, 30.0, 50.0, math.inf)
"""Reconstructed-energy bins (MeV) of the metrics."""


COARSE_ENERGY_EDGES: tuple[float, ...] = (0.0, 20.0, 40.0, math.inf)
"""Coarse bins: below 20, 20–40, above 40 MeV."""


# =========================================================================== evaluation
def predict_arrays(
    model: Any, dataset: Any, head: str, uncertainty: str | None = "kappa", mirror_average: bool = False
) -> dict[str, np.ndarray]:
    """Predictions of ``model`` on an evaluation dataset, as float64 arrays.

    ``uncertainty`` names the vmf head's column 3 (:func:`edkeras.reco.config.uncertainty_output`):
    ``"kappa"`` or ``"sigma"``; it is returned under that key. ``mirror_average``: average
    the predictions over the eight mirror images of each event (see :func:`_mirror_averaged`).
    """
    hold_freed_memory()  # as in edkeras.reco.training.train
    if mirror_average:
        out = _mirror_averaged(model, dataset, head, uncertainty)
    else:
        out = model.predict(dataset, verbose=0)
    if not isinstance(out, dict):
        out = {"direction": out}
    res = {"direction": np.asarray(out["direction"], dtype=np.float64)}
    if head == "vmf":
        res["sigma" if uncertainty == "sigma" else "kappa"] = res["direction"][:, 3]
        res["direction"] = res["direction"][:, :3]
    if head == "axial":
        # P(sense wrong) = sigmoid(−|s|), written with exp(−|s|) so it cannot overflow
        q = np.exp(-np.abs(res["direction"][:, 3]))  # columns 4–6 (the sense vector) are not kept
        res["flip_probability"] = q / (1.0 + q)
        res["direction"] = res["direction"][:, :3]
    if head == "multitask":
        res["energy"] = np.asarray(out["energy"], dtype=np.float64).reshape(-1)
        res["es_probability"] = np.asarray(out["interaction"], dtype=np.float64).reshape(-1)
    return res


def mirrored_predictions(model: Any, inputs: dict[str, np.ndarray]) -> np.ndarray:
    """The model's outputs for the eight mirror images of a batch, directions mirrored back.

    Returns an array (8, B, K) in the order of :data:`edkeras.reco.augment.MIRRORS`: columns
    0–2 are the unit directions in the original event's frame, the other columns (κ or σ of
    a vmf head) as the model gave them.
    """
    views = []
    for flips in MIRRORS:
        out = model.predict_on_batch(mirror_event(inputs, np.zeros(3), *flips)[0])
        out = np.array(out["direction"] if isinstance(out, dict) else out, dtype=np.float64)
        out[:, :3] /= np.linalg.norm(out[:, :3], axis=1, keepdims=True)
        out[:, :3] *= np.array([-1.0 if f else 1.0 for f in flips])  # mirrored back
        views.append(out)
    return np.stack(views)


def combine_mirror_views(views: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted mean direction of mirror views (M, B, ≥3) with weights (M, B, 1); the identity view first.

    Returns the unit directions (B, 3) and which events cancelled (their views sum to
    nothing: a mirror-symmetric, e.g. empty, event), which keep the identity view's direction.
    """
    total = (views[:, :, :3] * weights).sum(axis=0)
    norm = np.linalg.norm(total, axis=1, keepdims=True)
    cancelled = norm <= 1e-6 * weights.sum(axis=0)
    return np.where(cancelled, views[0, :, :3], total / np.where(cancelled, 1.0, norm)), cancelled[:, 0]


def _mirror_averaged(model: Any, dataset: Any, head: str, uncertainty: str | None = "kappa") -> dict[str, np.ndarray]:
    """The model's direction averaged over the mirror group (docs/methods.md, ``edkeras.reco.evaluation``).

    Each event is shown to the model as its eight mirror images (:func:`mirrored_predictions`,
    exact symmetries of the detector); the eight directions, mirrored back, are summed,
    weighted by their κ (vmf head; by 1/σ² where column 3 is a σ), then normalised. Column 3
    returned is the mean of the eight. The result is exactly equivariant: a mirrored event
    gets the mirrored direction. An event whose images are symmetric (an empty one) sums to
    zero; it keeps the plain prediction. Heads other than ``vmf`` and ``direction`` are refused.
    """
    if head not in ("vmf", "direction"):
        raise InputError(f"mirror averaging needs a vmf or direction head; this model's head is {head!r}")
    batches: list[np.ndarray] = []
    for b in range(len(dataset)):
        item = dataset[b]
        views = mirrored_predictions(model, item[0] if isinstance(item, tuple) else item)
        if head == "vmf":
            w = views[:, :, 3:4] if uncertainty != "sigma" else 1.0 / np.maximum(views[:, :, 3:4], 1e-6) ** 2
        else:
            w = np.ones_like(views[:, :, :1])
        direction, _ = combine_mirror_views(views, w)
        batches.append(np.concatenate([direction, views[:, :, 3:4].mean(axis=0)], axis=1) if head == "vmf" else direction)
    return {"direction": np.concatenate(batches)}


def evaluation_metrics(
    predicted: dict[str, np.ndarray], labels: dict[str, np.ndarray], split: str, n_boot: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """Resolution of predicted directions against the truth: overall, per energy bin, per interaction.

    Args:
        predicted: ``direction`` (N, 3) and optionally ``kappa``, ``energy``, ``es_probability``,
            ``flip_probability``.
        labels: ``direction`` (N, 3) truth, ``reco_energy``, ``interaction``, ``energy``.
        split: the split's name, recorded in every block.
        n_boot, seed: bootstrap of the confidence intervals (68 % CL).

    Returns:
        ``{"split", "n", "overall", "by_energy", "by_energy_coarse", "by_interaction"}``
        (bins of reconstructed energy, MeV), plus ``kappa_coverage`` (vMF head) and
        ``energy``/``interaction`` blocks (multitask head).
    """

    err = angular_error_deg(predicted["direction"], labels["direction"])
    reco = np.asarray(labels["reco_energy"], dtype=np.float64)
    out: dict[str, Any] = {
        "split": split,
        "n": int(err.size),
        "overall": resolution_summary(err, n_boot=n_boot, seed=seed),
        "energy_variable": "reco_energy (MeV)",
        "by_energy": resolution_by_bin(err, reco, ENERGY_EDGES, n_boot=n_boot, seed=seed),
        "by_energy_coarse": resolution_by_bin(err, reco, COARSE_ENERGY_EDGES, n_boot=n_boot, seed=seed),
        "by_interaction": {},
    }
    for name, code in INTERACTION_CODES.items():
        mask = np.asarray(labels["interaction"]) == code
        out["by_interaction"][name] = (
            resolution_summary(err[mask], n_boot=n_boot, seed=seed) if mask.any() else {"n": 0}
        )
    if "kappa" in predicted:
        cos = np.cos(np.radians(err))
        out["kappa_coverage"] = {
            f"cone{int(f * 100)}": float(np.mean(cos >= vmf_cone_cos(np.maximum(predicted["kappa"], 1e-6), f)))
            for f in (0.68, 0.90)
        }
    if "sigma" in predicted:  # a Gaussian head's σ (radians): its Rayleigh cones
        sigma = np.maximum(np.abs(predicted["sigma"]), 1e-6)
        out["sigma_coverage"] = {f"cone{int(f * 100)}": float(np.mean(err <= sigma_cone_deg(sigma, f)))
                                 for f in (0.68, 0.90)}
    if "flip_probability" in predicted:
        out["sense"] = sense_calibration(predicted["flip_probability"], err)
    if "energy" in predicted:
        rel = predicted["energy"] / np.asarray(labels["energy"], dtype=np.float64) - 1.0
        out["energy"] = {"relative_bias_median": float(np.median(rel)), "relative_resolution_mad": float(
            np.median(np.abs(rel - np.median(rel))) * 1.4826)}
    if "es_probability" in predicted:
        truth = np.asarray(labels["interaction"])
        if np.any(truth == 1) and np.any(truth == 0):
            out["interaction"] = es_cc_separation(predicted["es_probability"], truth)
        else:
            out["interaction"] = {"accuracy": float(np.mean((predicted["es_probability"] >= 0.5) == (truth == 1)))}
    return out


def _save_split_predictions(
    path: Path, predicted: dict[str, np.ndarray], labels: dict[str, np.ndarray], split: str, run: str, truth: bool = True,
    model: str = "",
) -> Path:

    return save_predictions(
        path,
        predictions=predicted["direction"],
        true_directions=labels["direction"] if truth else None,
        energies=labels["reco_energy"],
        true_energies=labels["energy"] if truth else None,
        interaction=labels["interaction"],
        nu_directions=labels["nu_direction"] if truth else None,
        event_id=labels["event_id"],
        kappa=predicted.get("kappa"),
        sigma=predicted.get("sigma"),
        es_probability=predicted.get("es_probability"),
        flip_probability=predicted.get("flip_probability"),
        split=split,
        run=run,
        model=model,
    )
