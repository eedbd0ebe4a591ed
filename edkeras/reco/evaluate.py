"""Apply a finished run (or a shipped model) to any event file: predictions, metrics and ES probabilities."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

import edkeras.reco.models  # noqa: F401  (registers the layers, losses and metrics a saved model names)
from edkeras.core.errors import InputError
from edkeras.core.schema import load_json
from edkeras.events.eventfile import open_events
from edkeras.reco.blip_combination import FILE_NAME, apply_combination, load_combination
from edkeras.reco.config import RunConfig, uncertainty_output
from edkeras.reco.dataset import EventDataset
from edkeras.reco.evaluation import (
    MIRROR_TAG,
    _save_split_predictions,
    evaluation_metrics,
    predict_arrays,
)
from edkeras.reco.event_index import index_events
from edkeras.reco.pretrained import resolve_run_dir
from edkeras.reco.runs import model_identity

__all__ = ['classifier_es_probabilities', 'classifier_es_probability', 'evaluate']


# =========================================================================== evaluate
def evaluate(
    run_dir: str | os.PathLike, data_file: str | os.PathLike, out: str | os.PathLike | None = None,
    batch_size: int = 256, classifier: str | os.PathLike | None = None, mirror_average: bool = False,
) -> dict[str, Any]:
    """Apply a finished run's model to any event file; metrics where the truth is known.

    Args:
        run_dir: a run folder with ``config.json`` and ``model.keras``, or
            ``pretrained:NAME`` for a model shipped with the package.
        data_file: an event file of the same image shape.
        out: write the predictions there (docs/formats.md §2; ``split`` = the file's name).
        batch_size: events per prediction batch.
        classifier: a finished run (or ``pretrained:NAME``) of the multitask head whose ES
            probability replaces the model's own ``es_probability`` (see
            :func:`classifier_es_probability`): direction from one network, ES/CC from
            another, in one predictions file for ``edkeras point``.
        mirror_average: average each event's direction over its eight mirror images
            (:func:`edkeras.reco.evaluation.predict_arrays`; 8 × the prediction time). The
            predictions' model identity gets ``+mirror8``, so that only tables built from
            mirror-averaged predictions point them.

    Returns:
        ``{"run", "data", "n_events", "n_with_truth", "metrics", "classifier", "mirror_average"}`` (``metrics``
        as in ``metrics.json`` for a split, or None when no event has a true direction).

    Raises:
        InputError: no run there, a file that is not an event file, an image shape that
            the model was not built for, a classifier run without an ES/CC output.
    """
    rd, config, model = _load_finished_run(run_dir)
    predicted, labels = _predict_file(rd, config, model, data_file, batch_size, mirror_average)
    if classifier is not None:
        predicted["es_probability"] = classifier_es_probability(classifier, data_file, batch_size)
    has_truth = np.isfinite(labels["direction"]).all(axis=1)
    name = Path(data_file).name
    if out is not None:
        _save_split_predictions(Path(out), predicted, labels, name, config.name, truth=bool(has_truth.any()),
                                model=model_identity(rd / "model.keras") + (MIRROR_TAG if mirror_average else ""))
    metrics = None
    if has_truth.any():
        sub_p = {k: v[has_truth] for k, v in predicted.items()}
        sub_l = {k: v[has_truth] for k, v in labels.items()}
        metrics = evaluation_metrics(
            sub_p, sub_l, name, n_boot=config.training.bootstrap_samples, seed=config.training.seed
        )
    return {
        "run": config.name,
        "data": str(data_file),
        "n_events": len(labels["event_id"]),
        "n_with_truth": int(has_truth.sum()),
        "predictions": None if out is None else str(out),
        "metrics": metrics,
        "classifier": None if classifier is None else str(classifier),
        "mirror_average": bool(mirror_average),
    }


def classifier_es_probability(
    classifier: str | os.PathLike, data_file: str | os.PathLike, batch_size: int = 256, blips: bool = True
) -> np.ndarray:
    """The ES probability of every event of ``data_file`` from a classifier run, for equal priors.

    A classifier is a finished run of the multitask head (its ``interaction`` output). Its
    output p is P(ES | event) for the ES share π of its training sample; it is returned as
    p' = (p/π) / (p/π + (1 − p)/(1 − π)), the probability for equal priors, which is what
    :func:`edkeras.pointing.likelihood.classification_weights` reads (``classifier_prior=0.5``) and
    what a predictions file's ``es_probability`` means. π is taken from the classifier's
    validation split (``metrics.json``), which is drawn like its training split.

    When the classifier folder holds ``blips.json`` (:mod:`edkeras.reco.blip_combination`) and
    ``blips`` is true, the network's probability is joined with the blips round each event
    (the file's ``reco/blips`` and ``reco/blip_energy``); events without them keep the
    network's probability, and a line says how many.

    Raises:
        InputError: not a finished run, not a multitask run, no ES/CC counts in its metrics.
    """
    p = classifier_es_probabilities(classifier, data_file, batch_size, blips=blips)
    return p.get("with_blips", p["window"])


def classifier_es_probabilities(
    classifier: str | os.PathLike, data_file: str | os.PathLike, batch_size: int = 256, blips: bool = True
) -> dict[str, np.ndarray]:
    """``{"window": the network's probability, "with_blips": joined with the blips}`` (equal priors).

    ``"with_blips"`` is present when the classifier has ``blips.json`` and ``blips`` is true;
    see :func:`classifier_es_probability`.
    """
    rd, config, model = _load_finished_run(classifier)
    if config.model.head != "multitask":
        raise InputError(
            f"{rd}: the classifier must be a run of the multitask head (an ES probability output); "
            f"this run's head is {config.model.head!r}"
        )
    try:
        counts = json.loads((rd / "metrics.json").read_text())["val"]["by_interaction"]
        n_es, n_cc = int(counts["es"]["n"]), int(counts["cc"]["n"])
    except (KeyError, TypeError, ValueError, OSError) as e:
        raise InputError(f"{rd / 'metrics.json'}: no ES and CC counts of the validation split ({e}); "
                         "cannot tell the classifier's training prior") from None
    if n_es == 0 or n_cc == 0:
        raise InputError(f"{rd}: its validation split holds {n_es} ES and {n_cc} CC events; a classifier needs both")
    prior = n_es / (n_es + n_cc)
    p = np.clip(_predict_file(rd, config, model, data_file, batch_size)[0]["es_probability"], 1e-7, 1 - 1e-7)
    a, b = p / prior, (1.0 - p) / (1.0 - prior)
    out = {"window": a / (a + b)}
    if not (blips and (rd / FILE_NAME).exists()):
        return out
    params = load_combination(rd / FILE_NAME)
    with open_events(data_file) as ev:
        n_blips, blip_energy = ev.field("blips"), ev.field("blip_energy")
    missing = int((~(np.isfinite(n_blips) & np.isfinite(blip_energy))).sum())
    if missing:
        print(f"{data_file}: {missing} of {n_blips.size} events have no blip fields (a file written before "
              "they existed, or not simulated or ingested by edkeras); their ES probability is the network's alone",
              file=sys.stderr)
    out["with_blips"] = apply_combination(params, out["window"], n_blips, blip_energy)
    return out


def _load_finished_run(run_dir: str | os.PathLike) -> tuple[Path, RunConfig, Any]:
    """A finished run's folder, config and model (``pretrained:NAME`` resolved)."""
    import keras


    rd = resolve_run_dir(run_dir)
    for need in ("config.json", "model.keras"):
        if not (rd / need).exists():
            raise InputError(f"{rd}: no {need}; not a finished run folder")
    if not (rd / "metrics.json").exists():
        raise InputError(
            f"{rd}: the run is not finished (no metrics.json: still training, or interrupted); its model.keras "
            "is an intermediate checkpoint. Run the same 'edkeras train' command again to finish it (it resumes)"
        )
    config = load_json(RunConfig, rd / "config.json")
    try:
        model = keras.saving.load_model(rd / "model.keras", compile=False)
    except Exception as e:  # a truncated or foreign file: say which, not "file not found"
        raise InputError(f"{rd / 'model.keras'}: cannot be loaded as a Keras model ({type(e).__name__}: "
                         f"{str(e).strip().splitlines()[0] if str(e).strip() else 'no detail'})") from None
    return rd, config, model


def _predict_file(
    rd: Path, config: RunConfig, model: Any, data_file: str | os.PathLike, batch_size: int, mirror_average: bool = False
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The model's predictions and the file's labels, in the file's event order."""

    index = index_events([data_file])
    want = tuple(int(s) for s in model.get_layer("view_u").output.shape[1:]) if _has_layer(model, "view_u") else None
    if want is not None and want != index.image_shape:
        raise InputError(
            f"{data_file}: image shape {index.image_shape}; the model of {rd} takes {want}"
        )
    ds = EventDataset(index, batch_size, head=config.model.head, energy_input=config.data.energy_input, targets=False)
    try:
        predicted = predict_arrays(model, ds, config.model.head, uncertainty_output(config), mirror_average)
        labels = {k: ds.labels(k) for k in ("direction", "energy", "interaction", "nu_direction", "reco_energy", "event_id")}
    finally:
        ds.close()
    return predicted, labels


def _has_layer(model: Any, name: str) -> bool:
    try:
        model.get_layer(name)
    except ValueError:
        return False
    return True
