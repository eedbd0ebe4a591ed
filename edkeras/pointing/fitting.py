"""Fit a likelihood table to predictions: rows per energy bin, smoothing in ln E, response map, acceptance, head–tail calibration."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from edkeras.core.errors import AcceptanceError, TableError
from edkeras.pointing.acceptance import PRIOR_SIGMA, Acceptance, fit_acceptance, real_harmonics
from edkeras.pointing.response import (
    MIRROR_SIGNS,
    Response,
    calibration_events,
    fit_response,
    refine_response,
)
from edkeras.pointing.rows import (
    FLOOR,
    METHODS,
    PARAM_NAMES,
    _apply_floor,
    _energy_edges,
    _from_free,
    _local_linear,
    _row_from_params,
    _to_free,
    cosine_edges,
    fit_row,
)
from edkeras.pointing.tables import (
    COMPONENTS,
    DEFAULT_ENERGY_EDGES,
    REFERENCES,
    SENSES,
    SMOOTHINGS,
    LikelihoodTable,
)
from edkeras.reco.predictions import Predictions, single_model

__all__ = [
    "build_table",
    "fit_table",
    "fit_table_acceptance",
    "flip_calibration",
    "reference_cosines",
    "refine_response",
    "with_acceptance",
    "with_response",
]


def _rep_energy(e: np.ndarray, lo: float, hi: float) -> float:
    if len(e):
        return float(np.median(e))
    return float(np.sqrt(lo * hi)) if np.isfinite(hi) and lo > 0 else float(lo * 1.25 if lo > 0 else 1.0)


def _smoothing_kind(smoothing: str, method: str) -> str:
    if smoothing not in SMOOTHINGS:
        raise TableError(f"smoothing must be one of {list(SMOOTHINGS)}; received {smoothing!r}")
    if smoothing == "auto":
        return {"histogram": "none", "kde": "rows", "vmf": "params", "mixture": "params", "gaussian": "params"}[method]
    if smoothing == "params" and method not in ("vmf", "mixture", "gaussian"):
        raise TableError(f"smoothing 'params' needs a parametric method (vmf, mixture, gaussian); received {method!r}")
    return smoothing


def _fit_energy_bins(
    t: np.ndarray,
    e: np.ndarray,
    energy_edges: np.ndarray,
    cos_edges: np.ndarray,
    method: str,
    smoothing: str,
    width: float,
    min_events: int,
    pooled: tuple[np.ndarray, np.ndarray] | None,
    fallback_rows: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rows (n_E, n_cos), counts, params, pooled mask for samples (t, e); before the floor."""
    n_e = len(energy_edges) - 1
    n_par = len(PARAM_NAMES[method])
    ie = np.searchsorted(energy_edges[1:-1], e, side="right")
    rows = np.zeros((n_e, len(cos_edges) - 1))
    params = np.full((n_e, n_par), np.nan)
    counts = np.bincount(ie, minlength=n_e)[:n_e]
    x = np.zeros(n_e)
    for b in range(n_e):
        sel = ie == b
        x[b] = np.log(max(_rep_energy(e[sel], energy_edges[b], energy_edges[b + 1]), 1e-3))
        if counts[b] >= min_events:
            rows[b], params[b] = fit_row(t[sel], method, cos_edges)
    ok = counts >= min_events
    weight = np.where(ok, counts, 0).astype(np.float64)
    if smoothing == "params" and ok.sum() >= 2:
        free = _local_linear(
            x, np.where(ok[:, None], _to_free(method, np.where(ok[:, None], params, 1.0)), 0.0), weight, width
        )
        params[ok] = _from_free(method, free[ok])
        for b in np.flatnonzero(ok):
            rows[b] = _row_from_params(method, params[b], cos_edges)
    elif smoothing == "rows" and ok.sum() >= 2:
        sm = np.maximum(_local_linear(x, rows, weight, width), 0.0)
        rows[ok] = sm[ok] / np.sum(sm[ok] * np.diff(cos_edges), axis=1, keepdims=True)
    pooled_mask = ~ok
    if pooled_mask.any():
        if fallback_rows is not None:
            rows[pooled_mask] = fallback_rows[pooled_mask]
        else:
            if pooled is None:
                pooled = fit_row(t, method, cos_edges)
            rows[pooled_mask] = pooled[0]
    return rows, counts, params, pooled_mask


def fit_table(
    cos: Any,
    energy: Any,
    *,
    kappa: Any = None,
    interaction: Any = None,
    method: str = "kde",
    reference: str = "neutrino",
    energy_edges: Sequence[float] = DEFAULT_ENERGY_EDGES,
    n_cos: int = 100,
    cos_spacing: str = "angle",
    kappa_bins: int = 0,
    smoothing: str = "auto",
    smoothing_width: float = 0.3,
    floor: float = FLOOR,
    min_events: int = 20,
    per_interaction: bool = True,
) -> LikelihoodTable:
    """Fit a :class:`LikelihoodTable` to arrays of cos θ and reconstructed energy.

    Args:
        cos: (N,) cos θ between reconstructed electron and reference direction.
        energy: (N,) reconstructed energy, MeV. Events below the lowest edge are not used.
        kappa: (N,) predicted κ (needed for ``kappa_bins > 0``).
        interaction: (N,) 1 ES, 0 CC, −1 unknown; with ``per_interaction`` and at least
            ``min_events`` of both ES and CC, ES and CC sub-tables are fitted too.
        method: one of :data:`METHODS`.
        reference: ``"neutrino"`` or ``"electron"`` (recorded; the cosines are the caller's).
        energy_edges: energy bin edges, MeV (last may be inf).
        n_cos: number of cos θ bins.
        cos_spacing: ``"angle"`` (equal in θ) or ``"cos"``.
        kappa_bins: number of κ bins (equally populated quantiles); 0 for none.
        smoothing: ``"auto"``, ``"none"``, ``"params"`` (vmf, mixture) or ``"rows"``.
        smoothing_width: Gaussian kernel width in ln E.
        floor: smallest density value.
        min_events: fewest events to fit a bin on its own.
        per_interaction: fit ES and CC sub-tables when both are present.

    Returns:
        The table.
    """
    if method not in METHODS:
        raise TableError(f"likelihood method must be one of {list(METHODS)}; received {method!r}")
    if reference not in REFERENCES:
        raise TableError(f"likelihood reference must be one of {list(REFERENCES)}; received {reference!r}")
    if not 0.0 < float(floor) < 0.5:
        raise TableError(f"floor must be in (0, 0.5); received {floor}")
    kind = _smoothing_kind(smoothing, method)
    t = np.clip(np.asarray(cos, dtype=np.float64).ravel(), -1.0, 1.0)
    e = np.asarray(energy, dtype=np.float64).ravel()
    if e.shape != t.shape:
        raise TableError(
            f"fit_table: cos and energy must have the same length; received {t.shape}, {e.shape}"
        )
    edges_e = _energy_edges(energy_edges)
    use = np.isfinite(t) & np.isfinite(e) & (e >= edges_e[0]) & (e < edges_e[-1])
    k = None
    if kappa_bins:
        if kappa is None:
            raise TableError(
                "fit_table: kappa_bins > 0 needs the predicted kappa of every event; received none"
            )
        k = np.asarray(kappa, dtype=np.float64).ravel()
        if k.shape != t.shape:
            raise TableError(f"fit_table: kappa must have shape {t.shape}; received {k.shape}")
        use &= np.isfinite(k)
    it = None if interaction is None else np.asarray(interaction).ravel()
    if use.sum() == 0:
        raise TableError(
            f"fit_table: no event with finite cos θ and energy in [{edges_e[0]}, {edges_e[-1]}) MeV"
        )
    cos_edges = cosine_edges(n_cos, cos_spacing)
    kappa_edges = None
    if kappa_bins:
        inner = np.quantile(k[use], np.linspace(0, 1, int(kappa_bins) + 1)[1:-1])
        kappa_edges = np.concatenate([[0.0], inner, [np.inf]])
        if np.any(np.diff(kappa_edges) <= 0):
            raise TableError(f"fit_table: predicted kappa has too few distinct values for {kappa_bins} bins")
    smoothing_method = {
        "none": f"{method}, no smoothing across energy",
        "params": f"{method}; parameters smoothed in ln E (local-linear, Gaussian width {smoothing_width})",
        "rows": f"{method}; rows smoothed in ln E (local-linear, Gaussian width {smoothing_width})",
    }[kind]
    if method == "kde":
        smoothing_method = smoothing_method.replace("kde", "kde (reflected at ±1, adaptive bandwidth)", 1)

    def one(sel: np.ndarray, label: str) -> LikelihoodTable:
        ts, es = t[sel], e[sel]
        pooled = fit_row(ts, method, cos_edges)
        rows, counts, params, pooled_mask = _fit_energy_bins(
            ts, es, edges_e, cos_edges, method, kind, smoothing_width, min_events, pooled
        )
        pdf3 = n3 = p3 = None
        if kappa_edges is not None:
            ks = k[sel]
            ik = np.searchsorted(kappa_edges[1:-1], ks, side="right")
            n_k = len(kappa_edges) - 1
            pdf3 = np.zeros((len(edges_e) - 1, n_k, len(cos_edges) - 1))
            n3 = np.zeros((len(edges_e) - 1, n_k), dtype=np.int64)
            p3 = np.full((len(edges_e) - 1, n_k, len(PARAM_NAMES[method])), np.nan)
            for b in range(n_k):
                s = ik == b
                r, c, p, _ = _fit_energy_bins(
                    ts[s],
                    es[s],
                    edges_e,
                    cos_edges,
                    method,
                    kind,
                    smoothing_width,
                    min_events,
                    None,
                    fallback_rows=rows,
                )
                pdf3[:, b], n3[:, b], p3[:, b] = r, c, p
            pdf3 = _apply_floor(pdf3, floor)
        return LikelihoodTable(
            cosine_bin_edges=cos_edges,
            energy_edges=edges_e,
            pdf_2d=_apply_floor(rows, floor),
            n_events_per_bin=counts.astype(np.int64),
            params=params,
            param_names=PARAM_NAMES[method],
            method=method,
            reference=reference,
            smoothing_method=smoothing_method,
            floor=float(floor),
            pooled_bins=pooled_mask,
            kappa_edges=kappa_edges,
            pdf_3d=pdf3,
            n_events_per_bin_3d=n3,
            params_3d=p3,
            interaction=label,
        )

    main = one(use, "all")
    comps: dict[str, LikelihoodTable] = {}
    if per_interaction and it is not None:
        if it.shape != t.shape:
            raise TableError(f"fit_table: interaction must have shape {t.shape}; received {it.shape}")
        if all(np.sum(use & (it == code)) >= min_events for code in COMPONENTS.values()):
            comps = {name: one(use & (it == code), name) for name, code in COMPONENTS.items()}
    return replace(main, components=comps)


def reference_cosines(pred: Any, reference: str = "neutrino", response: Response | None = None) -> np.ndarray:
    """cos θ between each predicted direction and the reference (neutrino or true electron).

    Args:
        pred: a :class:`edkeras.reco.predictions.Predictions`.
        reference: ``"neutrino"`` (``nu_directions``) or ``"electron"`` (``true_directions``).
        response: measure from m̂(reference) instead (a table's :class:`Response`).

    Returns:
        (N,) cos θ, NaN where the reference is unknown.

    Raises:
        TableError: the predictions have no such reference key.
    """
    ref = _reference_directions(pred, reference)
    if response is not None:
        ref = response(ref)
    return np.clip(np.sum(pred.predictions * ref, axis=1), -1.0, 1.0)


def _reference_directions(pred: Any, reference: str) -> np.ndarray:
    key = {"neutrino": "nu_directions", "electron": "true_directions"}.get(reference)
    if key is None:
        raise TableError(f"likelihood reference must be one of {list(REFERENCES)}; received {reference!r}")
    ref = getattr(pred, key)
    where = str(pred.path) if getattr(pred, "path", None) else "predictions"
    if ref is None:
        raise TableError(f"{where}: key '{key}' is missing; reference {reference!r} needs it")
    return np.asarray(ref, dtype=np.float64)


def build_table(
    predictions: Any,
    response_degree: int = 0,
    response_iterations: int = 2,
    acceptance_degree: int = 0,
    sense: str = "auto",
    mirror_symmetric: bool = False,
    **options: Any,
) -> LikelihoodTable:
    """Fit a table from one or more predictions files' contents (never the test split).

    Args:
        predictions: a :class:`~edkeras.reco.predictions.Predictions` or a list of them.
        response_degree: 0 (cos θ from the reference itself) or the degree of the
            detector-response map fitted on the ES events (all events when none is ES) and
            stored in the table (see the module notes).
        response_iterations: refinements of the map by :func:`refine_response` (each fits
            the table anew); 0 keeps the least-squares map of the mean direction.
        acceptance_degree: 0 (none) or the highest spherical-harmonic degree of the
            reconstruction's detector-frame acceptance g(d), fitted on all events with the
            table held fixed (:func:`fit_table_acceptance`); a burst fit then includes the
            likelihood's normalisation Z(s) (:mod:`edkeras.pointing.acceptance`). Needs a sample whose
            supernova directions span the sky.
        sense: ``"predicted"``, ``"oriented"`` (rows of the directions turned to their true
            sense, with the calibration of the predictions' ``flip_probability``; see the
            module notes) or ``"auto"``: oriented when the predictions carry flip probabilities.
        mirror_symmetric: a response map and an acceptance that respect the detector's eight
            mirror images (:func:`~edkeras.pointing.response.mirror_mask`): far fewer coefficients
            to fit from the same calibration events (``docs/methods.md``).
        **options: the keyword arguments of :func:`fit_table` (``reference`` chooses the key).

    Returns:
        The table.
    """

    parts = [predictions] if isinstance(predictions, Predictions) else list(predictions)
    pred = Predictions.concatenate(parts) if len(parts) > 1 else parts[0]
    reference = options.get("reference", "neutrino")
    if pred.energies is None:
        raise TableError(f"{pred.path or 'predictions'}: key 'energies' (reconstructed energy) is missing")
    kappa = pred.kappa_equivalent if options.get("kappa_bins") else None
    if options.get("kappa_bins") and kappa is None:
        raise TableError(f"{pred.path or 'predictions'}: key 'kappa' (or 'sigma') is missing; --kappa-bins needs it")
    where = str(pred.path or "predictions")
    pred, sense, calibration = _orient(pred, sense, where)

    def fit(response: Response | None) -> LikelihoodTable:
        cos = reference_cosines(pred, reference, response)
        table = fit_table(cos, pred.energies, kappa=kappa, interaction=pred.interaction, **options)
        if response is not None and table.components:
            # ES and CC sub-tables: only ES events are measured from the map (see with_response)
            split = fit_table(
                _event_cosines(pred, reference, response),
                pred.energies,
                kappa=kappa,
                interaction=pred.interaction,
                **options,
            )
            table = replace(table, components=split.components)
        table = with_response(table, response)
        if acceptance_degree:
            acc = fit_table_acceptance(
                table,
                pred.predictions,
                _reference_directions(pred, reference),
                pred.energies,
                kappa=kappa,
                interaction=pred.interaction,
                l_max=acceptance_degree,
                where=where,
                mirror_symmetric=mirror_symmetric,
            )
            table = with_acceptance(table, acc)
        return _with_sense(table, sense, calibration, model)

    model = single_model(pred.model)  # predictions of several models make tables of no single model
    if not response_degree:
        return fit(None)
    ref = _reference_directions(pred, reference)
    sel = np.ones(len(ref), dtype=bool)
    if pred.interaction is not None and np.any(pred.interaction == 1):
        sel = pred.interaction == 1
    response = fit_response(pred.predictions[sel], ref[sel], response_degree, where, mirror_symmetric)
    table = fit(response)
    for _ in range(int(response_iterations)):
        response = refine_response(
            table,
            pred.predictions[sel],
            ref[sel],
            pred.energies[sel],
            kappa=None if kappa is None else kappa[sel],
            interaction=None if pred.interaction is None else pred.interaction[sel],
            mirror_symmetric=mirror_symmetric,
        )
        table = fit(response)
    return table


def flip_calibration(flip_probability: Any, wrong: Any, max_knots: int = 64) -> np.ndarray:
    """Isotonic map raw → calibrated P(sense wrong), as (2, K) knots for ``np.interp``.

    Args:
        flip_probability: (N,) the network's P(sense wrong).
        wrong: (N,) whether each event's sense is wrong (dot product with the truth < 0).
        max_knots: the fitted steps are averaged in at most this many quantile groups of f.
    """
    from scipy.optimize import isotonic_regression

    f = np.asarray(flip_probability, dtype=np.float64).ravel()
    y = np.asarray(wrong, dtype=np.float64).ravel()
    order = np.argsort(f, kind="stable")
    fit = isotonic_regression(y[order]).x
    groups = np.array_split(np.arange(len(f)), min(int(max_knots), len(f)))
    x = np.array([f[order][g].mean() for g in groups])
    v = np.array([fit[g].mean() for g in groups])
    x, first = np.unique(x, return_index=True)
    return np.stack([x, v[first]])


def _orient(pred: Any, sense: str, where: str) -> tuple[Any, str, np.ndarray | None]:
    """The predictions as the table sees them: turned to their true sense when ``sense`` says so."""
    if sense not in SENSES:
        raise TableError(f"likelihood sense must be one of {list(SENSES)}; received {sense!r}")
    flips = pred.flip_probability
    if sense == "auto":
        sense = "predicted" if flips is None else "oriented"
    if sense == "predicted":
        return pred, sense, None
    if flips is None:
        raise TableError(
            f"{where}: key 'flip_probability' is missing; sense 'oriented' needs the head-tail "
            "probabilities of an axial-head model"
        )
    truth = _reference_directions(pred, "electron")
    dot = np.sum(pred.predictions * truth, axis=1)
    if not np.all(np.isfinite(dot)):
        i = int(np.flatnonzero(~np.isfinite(dot))[0])
        raise TableError(f"{where}: event index {i} has no true electron direction; sense 'oriented' needs it")
    wrong = dot < 0
    turned = np.where(wrong[:, None], -pred.predictions, pred.predictions)
    return replace(pred, predictions=turned), sense, flip_calibration(flips, wrong)


def _with_sense(
    table: LikelihoodTable, sense: str, calibration: np.ndarray | None, model: str = ""
) -> LikelihoodTable:
    """The table and its sub-tables with their sense, flip calibration and model identity."""
    comps = {k: replace(c, sense=sense, flip_calibration=calibration, model=model) for k, c in table.components.items()}
    return replace(table, sense=sense, flip_calibration=calibration, components=comps, model=model)


def fit_table_acceptance(
    table: LikelihoodTable,
    predicted: Any,
    reference: Any,
    energy: Any,
    kappa: Any = None,
    interaction: Any = None,
    l_max: int = 4,
    where: str = "predictions",
    mirror_symmetric: bool = False,
) -> Acceptance:
    """The reconstruction's detector-frame acceptance g(d), fitted with ``table`` held fixed.

    Every event's row and the direction it is measured from (m̂(s) for tables with a response
    map, s for a CC sub-table) are those a burst fit uses; see :mod:`edkeras.pointing.acceptance`.

    Args:
        table: the table (its sub-tables are used for events of their type).
        predicted, reference: (N, 3) reconstructed and true (neutrino) directions; the
            reference directions must span the sky (an isotropic calibration sample).
        energy, kappa, interaction: per event, as :meth:`LikelihoodTable.pdf` takes them.
        l_max: highest harmonic degree.
        where: what to name in errors.
        mirror_symmetric: g(Md) = g(d) for the eight mirror images M (every event is counted at
            all eight, the prior kept at the strength of the events themselves).

    Raises:
        AcceptanceError: too few events, or reference directions that do not span the sky.
    """
    d, r, e, k, it = calibration_events(table, predicted, reference, energy, kappa, interaction)
    n_coef = (int(l_max) + 1) ** 2 - 1
    if len(d) < 10 * n_coef:
        raise AcceptanceError(
            f"{where}: an acceptance of degree {l_max} has {n_coef} coefficients and needs at least "
            f"{10 * n_coef} events with known directions; received {len(d)}"
        )
    y = real_harmonics(r, l_max)
    if np.linalg.matrix_rank(y.T @ y / len(y), tol=1e-3) < n_coef:
        raise AcceptanceError(
            f"{where}: the reference directions do not span the sky well enough for an acceptance of "
            f"degree {l_max}; it needs events from many directions (an isotropic calibration sample)"
        )
    mapped, lam, _ = table.event_terms(r, e, k, it, l_max)
    if not mirror_symmetric:
        return fit_acceptance(d, mapped, lam, l_max)
    n = len(MIRROR_SIGNS)
    d, mapped = ((MIRROR_SIGNS[:, None] * v[None]).reshape(-1, 3) for v in (d, mapped))
    return fit_acceptance(d, mapped, np.tile(lam, (n, 1)), l_max, prior_sigma=PRIOR_SIGMA / np.sqrt(n))


def with_acceptance(table: LikelihoodTable, acceptance: Acceptance | None) -> LikelihoodTable:
    """``table`` and its sub-tables carrying ``acceptance`` (one g for all event classes)."""
    comps = {k: replace(c, acceptance=acceptance) for k, c in table.components.items()}
    return replace(table, acceptance=acceptance, components=comps)


def with_response(table: LikelihoodTable, response: Response | None) -> LikelihoodTable:
    """``table`` carrying ``response``, and its ES sub-table; a CC sub-table stays without.

    Why not CC: the map describes where **ES** electrons cluster. CC electrons are almost
    isotropic about the neutrino, and their table measured from s itself is nearly flat,
    so the thousands of CC events of a burst add almost nothing — as they should. Measured
    from m̂(s) instead, the CC table picks up the reconstruction's own detector-frame
    preferences (a network that puts most directions near ±x meets an m̂(s) that the map
    has also pulled towards ±x) and 3,000 CC events then vote for a false direction (toy
    in ``tests/test_pointing.py``: CC rows max/min 3.5 from m̂(s), 1.45 from s). On the
    simulated 10 kpc bursts of a badly initialised v21 network: 91° with the map on CC,
    67° without it, 14.8° without the CC events. (The well-trained v21 network points at
    10.6° with this rule.) A network whose directions prefer detector axes makes the
    normalisation ∫ g(d) f(d·m̂(s)) dΩ_d of the likelihood depend on s (measured for that
    network: 0.38–1.02 for ES, ±2 % for CC, which 3,150 CC events multiply): tables with an
    acceptance (``build_table(acceptance_degree=…)``, :mod:`edkeras.pointing.acceptance`) put that term
    into the burst likelihood.
    """
    comps = {
        k: replace(c, response=None if k == "cc" else response) for k, c in table.components.items()
    }
    return replace(table, response=response, components=comps)


def _event_cosines(pred: Any, reference: str, response: Response | None) -> np.ndarray:
    """cos θ per event as a split table measures it: CC events from s, the others from m̂(s)."""
    ref = _reference_directions(pred, reference)
    mapped = ref if response is None else response(ref)
    if response is not None and pred.interaction is not None:
        cc = np.asarray(pred.interaction).ravel() == COMPONENTS["cc"]
        mapped[cc] = ref[cc]
    return np.clip(np.sum(pred.predictions * mapped, axis=1), -1.0, 1.0)
