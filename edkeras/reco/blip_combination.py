"""The ES/CC probability from the classifier network and the blips round the event.

The classifier network sees the 10 × 15 cm window; the de-excitation γ rays of a νe capture
mostly land outside it. :mod:`edkeras.events.blips` counts them on the collection plane
over ±30 cm. This module joins the two in a logistic regression,

    logit P(ES) = w₀ + w₁ · logit p + w₂ · min(blips, 4) + w₃ · ln(1 + blip energy / MeV),

with p the network's ES probability for equal priors. It is fitted on a calibration sample
of simulated ES and CC events (never a test sample) with the two classes weighted equally,
so its output is again the ES probability for equal priors, which is what a predictions
file's ``es_probability`` means. The fitted weights live beside the classifier as
``blips.json``; :func:`edkeras.reco.evaluate.classifier_es_probability` applies them to
every event whose file carries the blip fields.

Example:
    >>> params = fit_combination(p_net, blips, blip_energy, interaction)
    >>> p = apply_combination(params, p_net, blips, blip_energy)
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from edkeras.core.errors import InputError
from edkeras.core.files import atomic_path

__all__ = ["FILE_NAME", "FORMAT", "apply_combination", "fit_combination", "load_combination", "save_combination"]

FILE_NAME = "blips.json"
FORMAT = "edkeras-blip-combination"
FEATURES = ("intercept", "logit_network", "blips_capped_4", "log1p_blip_energy_mev")
_EPS = 1e-7


def _design(p_network: np.ndarray, blips: np.ndarray, blip_energy: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p_network, dtype=np.float64), _EPS, 1 - _EPS)
    return np.column_stack([np.ones(p.size), np.log(p / (1 - p)),
                            np.minimum(np.asarray(blips, dtype=np.float64), 4.0),
                            np.log1p(np.maximum(np.asarray(blip_energy, dtype=np.float64), 0.0))])


def fit_combination(
    p_network: np.ndarray, blips: np.ndarray, blip_energy: np.ndarray, interaction: np.ndarray,
    ridge: float = 1e-3, iterations: int = 50,
) -> dict[str, Any]:
    """Fit the weights on labelled events (ES = 1, CC = 0), the two classes weighted equally.

    Raises:
        InputError: no ES or no CC event, or an event without blip fields.
    """
    y = np.asarray(interaction)
    keep = (y == 0) | (y == 1)
    bad = keep & ~(np.isfinite(blips) & np.isfinite(blip_energy) & np.isfinite(p_network))
    if bad.any():
        raise InputError(f"fit_combination: {int(bad.sum())} labelled events have no blip fields or no "
                         "network probability (simulate the calibration sample with this version)")
    y = y[keep].astype(np.float64)
    n_es, n_cc = int(y.sum()), int(y.size - y.sum())
    if n_es == 0 or n_cc == 0:
        raise InputError(f"fit_combination: the calibration sample holds {n_es} ES and {n_cc} CC events; both needed")
    x = _design(np.asarray(p_network)[keep], np.asarray(blips)[keep], np.asarray(blip_energy)[keep])
    sw = np.where(y == 1, 0.5 / n_es, 0.5 / n_cc)
    w = np.zeros(x.shape[1])
    for _ in range(iterations):  # Newton's method on the weighted log-likelihood
        p = 1.0 / (1.0 + np.exp(-(x @ w)))
        grad = x.T @ (sw * (p - y)) + ridge * w
        hess = (x * (sw * p * (1 - p))[:, None]).T @ x + ridge * np.eye(x.shape[1])
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    return {"format": FORMAT, "version": 1, "features": list(FEATURES), "weights": [float(v) for v in w],
            "n_es": n_es, "n_cc": n_cc}


def apply_combination(params: dict[str, Any], p_network: np.ndarray, blips: np.ndarray, blip_energy: np.ndarray
                      ) -> np.ndarray:
    """The combined ES probability (equal priors); events without blip fields keep ``p_network``."""
    p_network = np.asarray(p_network, dtype=np.float64)
    known = np.isfinite(blips) & np.isfinite(blip_energy)
    z = _design(p_network, np.where(known, blips, 0.0), np.where(known, blip_energy, 0.0)) @ np.asarray(
        params["weights"], dtype=np.float64)
    return np.where(known, 1.0 / (1.0 + np.exp(-z)), p_network)


def save_combination(params: dict[str, Any], path: str | os.PathLike) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(params, indent=2) + "\n")
    return path


def load_combination(path: str | os.PathLike) -> dict[str, Any]:
    """Read ``blips.json``; a damaged or foreign file is one clear error."""
    path = Path(path)
    try:
        params = json.loads(path.read_text())
        ok = (params.get("format") == FORMAT and params.get("features") == list(FEATURES)
              and len(params.get("weights", [])) == len(FEATURES)
              and all(np.isfinite(float(v)) for v in params["weights"]))
    except (OSError, ValueError, TypeError, AttributeError) as e:
        raise InputError(f"{path}: cannot be read as a blip combination ({e})") from None
    if not ok:
        raise InputError(f"{path}: not an {FORMAT} file with the weights of {list(FEATURES)}")
    return params
