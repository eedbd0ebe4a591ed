"""A classical (non-ML) electron-direction reconstruction on the canonical images.

Method notes: ``docs/methods.md``, section ``edkeras.reco.classical``.

Example:
    >>> from edkeras.reco.classical import classical_directions
    >>> d = classical_directions(batch)               # an EventBatch, or {"U": ..., "V": ..., "X": ...}
    >>> fit = fit_classical(batch)                     # the same, with diagnostics
    >>> fit.ok.mean(), fit.head_tail_score[:5]
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edkeras.core.detector import PLANES, Geometry
from edkeras.core.errors import InputError
from edkeras.events.eventfile import EventBatch, EventFile, open_events
from edkeras.reco.head_tail import HEAD_TAIL_FEATURES, HeadTailModel, _head_tail_features, _sigmoid
from edkeras.reco.predictions import save_predictions

__all__ = [
    "DEFAULT_HEAD_TAIL",
    "ClassicalFit",
    "classical_directions",
    "fit_classical",
    "plane_vectors",
    "save_classical_predictions",
]


_INPUT_ALIASES = {"U": ("U", "view_u"), "V": ("V", "view_v"), "X": ("X", "view_x")}
_MIN_PLANE_WEIGHT = 1e-3
"""Planes whose axis weight (anisotropy²) is below this are not used for the 3-D solve."""


DEFAULT_HEAD_TAIL = HeadTailModel(
    weights=(1.46, -2.54, 7.85, -2.84),
    energy_weights=(-1.83, -3.21, 7.86, -14.9),
    n_fit=7986,
    accuracy=0.761,
)
"""Default head–tail weights: :func:`fit_head_tail_model` on 8,000 simulated electrons,
``simulate(8000, seed=1001, config=SimConfig(gun=True, energy_range_mev=(5, 70)))``
(isotropic, flat in energy, every transport process on, default readout, no noise).
On independent simulated events the sense is right for ≈ 74 % of gun electrons and ≈ 72 %
of ES electrons (≈ 63 % for CC, whose de-excitation γ blips confuse it)."""


@dataclass
class ClassicalFit:
    """Result of :func:`fit_classical` for N events.

    Attributes:
        direction: (N, 3) unit directions (failed events: an isotropic random direction,
            or NaN when ``fill_failed="nan"``).
        ok: (N,) True where at least two planes gave a usable axis.
        head_tail_score: (N,) the head–tail score of the chosen sense (≥ 0 after the
            choice; 0 where head–tail was not decided, e.g. ``head_tail=False``).
        plane_weight: (N, 3) axis weights (anisotropy²) of U, V, X used in the 3-D solve.
        features: (N, 4) head–tail features (:data:`HEAD_TAIL_FEATURES`) along ``direction``.
        charge_x: (N,) total X-plane charge (ADC), the energy proxy.
    """

    direction: np.ndarray
    ok: np.ndarray
    head_tail_score: np.ndarray
    plane_weight: np.ndarray
    features: np.ndarray
    charge_x: np.ndarray

    def __len__(self) -> int:
        return int(self.direction.shape[0])


def plane_vectors(geometry: Geometry | None = None) -> dict[str, np.ndarray]:
    """Unit vectors e_p of the wire coordinate of each plane for ``geometry``'s wire angle.

    Args:
        geometry: readout geometry (default: DUNE far detector, α = 35.71°).

    Returns:
        ``{"U": e_U, "V": e_V, "X": e_X}``, each (3,) in the detector frame.
    """
    g = geometry or Geometry()
    a = np.deg2rad(g.alpha_deg)
    return {
        "U": np.array([0.0, -np.sin(a), np.cos(a)]),
        "V": np.array([0.0, np.sin(a), np.cos(a)]),
        "X": np.array([0.0, 0.0, 1.0]),
    }


def _images_from(batch_or_images: Any) -> dict[str, np.ndarray]:
    """The three plane images (N, T, C) from an EventBatch, an EventFile read, or a mapping."""
    if hasattr(batch_or_images, "images") and isinstance(batch_or_images.images, Mapping):
        src: Mapping[str, Any] = batch_or_images.images
    elif isinstance(batch_or_images, Mapping):
        src = batch_or_images
    else:
        raise InputError(
            "classical baseline: expected an EventBatch or a mapping of plane images "
            f"(keys U, V, X or view_u, view_v, view_x); received {type(batch_or_images).__name__}"
        )
    out: dict[str, np.ndarray] = {}
    for plane, names in _INPUT_ALIASES.items():
        key = next((k for k in names if k in src), None)
        if key is None:
            raise InputError(
                f"classical baseline: plane {plane} is missing; expected one of the keys {names}; "
                f"received keys {sorted(map(str, src))}"
            )
        img = np.asarray(src[key])
        if img.ndim == 4 and img.shape[-1] == 1:
            img = img[..., 0]
        if img.ndim == 2:
            img = img[None]
        if img.ndim != 3:
            raise InputError(
                f"classical baseline: images of plane {plane} ('{key}') must be (N, T, C); received shape {img.shape}"
            )
        out[plane] = img
    shapes = {p: v.shape for p, v in out.items()}
    if len({s[0] for s in shapes.values()}) != 1:
        raise InputError(f"classical baseline: the planes hold different numbers of events: {shapes}")
    return out


def _axis_fit(q: np.ndarray, xs: np.ndarray, ws: np.ndarray) -> dict[str, np.ndarray]:
    """Charge-weighted centroid and principal axis of images q (N, T, C) in cm.

    Returns a dict of (N,) arrays: total charge ``Q``, centroid ``mx, mw``, axis angle
    ``phi`` (axis = (cos φ, sin φ) in (x, w)), ``anisotropy`` in [0, 1].
    """
    qsum = q.sum(axis=(1, 2))
    safe = np.where(qsum > 0, qsum, 1.0)
    qx = q.sum(axis=2)
    qw = q.sum(axis=1)
    mx = qx @ xs / safe
    mw = qw @ ws / safe
    # central moments computed around a fixed origin first (coordinates are a few cm: no cancellation)
    sxx = qx @ (xs * xs) / safe - mx * mx
    sww = qw @ (ws * ws) / safe - mw * mw
    sxw = np.einsum("ntc,t,c->n", q, xs, ws, optimize=True) / safe - mx * mw
    sxx = np.maximum(sxx, 0.0)
    sww = np.maximum(sww, 0.0)
    phi = 0.5 * np.arctan2(2.0 * sxw, sxx - sww)
    half_diff = np.hypot(0.5 * (sxx - sww), sxw)
    trace = sxx + sww
    aniso = np.where(trace > 0, 2.0 * half_diff / np.where(trace > 0, trace, 1.0), 0.0)
    aniso = np.where(qsum > 0, np.clip(aniso, 0.0, 1.0), 0.0)
    return {
        "Q": qsum,
        "mx": mx,
        "mw": mw,
        "phi": phi,
        "anisotropy": aniso,
        "sxx": sxx,
        "sww": sww,
        "sxw": sxw,
    }


def _covariance_axis(
    fits: dict[str, dict[str, np.ndarray]], evec: dict[str, np.ndarray], geometry: Geometry
) -> np.ndarray:
    """Principal axis of the 3-D charge covariance Σ fitted to the three planes' 2-D covariances.

    Every plane sees the same ionisation, so its 2×2 covariance is the projection
    S_p = P_p Σ P_pᵀ with P_p = [[1, 0, 0], [0, e_p,y, e_p,z]]: nine linear equations for
    the six entries of Σ, solved by least squares per event (after removing the pixel
    quantisation variance pitch²/12 and tick²/12). Unlike the axis ratios, this uses how
    *long* the track looks on each plane, which fixes the direction of tracks parallel to
    the wire planes (constant x), where every plane shows a flat line.

    Returns:
        (N, 3) unit vectors (sign arbitrary).
    """
    n_ev = next(iter(fits.values()))["phi"].shape[0]
    rows, rhs, wts = [], [], []
    for p in PLANES:
        f = fits[p]
        e = evec[p]
        present = (f["Q"] > 0).astype(np.float64)
        # unknowns: Σxx, Σxy, Σxz, Σyy, Σyz, Σzz
        rows += [
            [1.0, 0, 0, 0, 0, 0],
            [0, e[1], e[2], 0, 0, 0],
            [0, 0, 0, e[1] ** 2, 2 * e[1] * e[2], e[2] ** 2],
        ]
        rhs += [
            f["sxx"] - geometry.drift_per_tick**2 / 12.0,
            f["sxw"],
            f["sww"] - geometry.pitch[p] ** 2 / 12.0,
        ]
        wts += [present, present, present]
    a = np.asarray(rows, dtype=np.float64)  # (9, 6)
    b = np.stack(rhs, axis=1)  # (N, 9)
    w = np.stack(wts, axis=1)  # (N, 9)
    ata = np.einsum("ki,nk,kj->nij", a, w, a)
    atb = np.einsum("ki,nk,nk->ni", a, w, b)
    sol = np.einsum("nij,nj->ni", np.linalg.pinv(ata), atb)
    sig = np.empty((n_ev, 3, 3))
    sig[:, 0, 0], sig[:, 0, 1], sig[:, 0, 2] = sol[:, 0], sol[:, 1], sol[:, 2]
    sig[:, 1, 1], sig[:, 1, 2], sig[:, 2, 2] = sol[:, 3], sol[:, 4], sol[:, 5]
    sig[:, 1, 0], sig[:, 2, 0], sig[:, 2, 1] = sol[:, 1], sol[:, 2], sol[:, 4]
    _, vecs = np.linalg.eigh(sig)
    return vecs[:, :, -1]


def _solve_3d(
    fits: dict[str, dict[str, np.ndarray]],
    evec: dict[str, np.ndarray],
    geometry: Geometry,
    covariance_weight: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares 3-D direction from the planes' 2-D axes.

    Minimises Σ_p w_p (n_p · d)² + ε |d × d_Σ|² over unit d, where d_Σ is the axis of
    the fitted 3-D covariance (:func:`_covariance_axis`) and ε = ``covariance_weight`` ×
    Σ_p w_p. The small ε only matters where the axis ratios leave a direction undetermined
    (tracks at nearly constant drift coordinate).

    Returns ``(d, ok, weights)``: (N, 3) unit vectors (sign arbitrary), (N,) bool, (N, 3).
    """
    n_ev = next(iter(fits.values()))["phi"].shape[0]
    m = np.zeros((n_ev, 3, 3))
    weights = np.zeros((n_ev, 3))
    for i, p in enumerate(PLANES):
        f = fits[p]
        w = f["anisotropy"] ** 2
        w = np.where(w >= _MIN_PLANE_WEIGHT, w, 0.0)
        weights[:, i] = w
        c, s = np.cos(f["phi"]), np.sin(f["phi"])
        e = evec[p]
        normal = np.stack([s, -c * e[1], -c * e[2]], axis=1)
        m += w[:, None, None] * normal[:, :, None] * normal[:, None, :]
    ok = (weights > 0).sum(axis=1) >= 2
    if covariance_weight > 0:
        dc = _covariance_axis(fits, evec, geometry)
        eps = covariance_weight * weights.sum(axis=1)
        m += eps[:, None, None] * (np.eye(3)[None] - dc[:, :, None] * dc[:, None, :])
    _, vecs = np.linalg.eigh(m)
    d = vecs[:, :, 0]
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    return d, ok, weights


def _fit_chunk(
    images: dict[str, np.ndarray],
    geometry: Geometry,
    *,
    threshold: float,
    model: HeadTailModel | None,
    corridor_cm: float,
    start_fraction: float | None,
    covariance_weight: float,
) -> tuple[np.ndarray, ...]:
    """Fit one chunk. Returns d, ok, score, plane weights, features, X-plane charge, sign applied."""
    evec = plane_vectors(geometry)
    qs: dict[str, np.ndarray] = {}
    coords: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    fits: dict[str, dict[str, np.ndarray]] = {}
    for p in PLANES:
        q = np.asarray(images[p], dtype=np.float64)
        q = np.where(np.isfinite(q) & (q > threshold), q, 0.0)
        t_len, c_len = q.shape[1:]
        xs = (np.arange(t_len) + 0.5) * geometry.drift_per_tick
        ws = (np.arange(c_len) + 0.5) * geometry.pitch[p]
        qs[p], coords[p] = q, (xs, ws)
        fits[p] = _axis_fit(q, xs, ws)
    d, ok, weights = _solve_3d(fits, evec, geometry, covariance_weight)
    n_ev = d.shape[0]
    feats = np.zeros((n_ev, len(HEAD_TAIL_FEATURES)))
    hsum = np.zeros(n_ev)
    geo: dict[str, dict[str, np.ndarray]] = {}
    for p in PLANES:
        u = np.stack([d[:, 0], d @ evec[p]], axis=1)
        f, geo[p] = _head_tail_features(qs[p], *coords[p], fits[p], u, corridor_cm)
        h = fits[p]["anisotropy"] * np.linalg.norm(u, axis=1)
        feats += h[:, None] * f
        hsum += h
    feats /= np.maximum(hsum, 1e-12)[:, None]
    q_x = fits["X"]["Q"]
    score = np.zeros(n_ev)
    sign = np.ones(n_ev)
    if model is not None:
        score = model.score(feats, q_x)
        sign = np.where(score < 0, -1.0, 1.0)
        d = d * sign[:, None]
        feats = feats * sign[:, None]
        score = score * sign
        flip = sign < 0
        for p in PLANES:  # the along-axis coordinate of the reversed axis runs the other way
            g = geo[p]
            g["t"] = np.where(flip[:, None, None], -g["t"], g["t"])
            lo, hi = g["lo"].copy(), g["hi"].copy()
            g["lo"] = np.where(flip, -hi, lo)
            g["hi"] = np.where(flip, -lo, hi)
    if start_fraction is not None:
        frac = float(start_fraction)
        start_fits: dict[str, dict[str, np.ndarray]] = {}
        for p in PLANES:
            g = geo[p]
            cut = g["lo"] + frac * (g["hi"] - g["lo"])
            keep = (g["t"] <= cut[:, None, None]) & (np.abs(g["n"]) <= 3.0 * corridor_cm)
            keep |= ~g["good"][:, None, None]
            start_fits[p] = _axis_fit(qs[p] * keep, *coords[p])
        d2, ok2, w2 = _solve_3d(start_fits, evec, geometry, covariance_weight)
        d2 = d2 * np.where(np.sum(d2 * d, axis=1) < 0, -1.0, 1.0)[:, None]
        use = ok2 & ok
        d = np.where(use[:, None], d2, d)
        weights = np.where(use[:, None], w2, weights)
    return d, ok, score, weights, feats, q_x, sign


def fit_classical(
    batch_or_images: Any,
    geometry: Geometry | None = None,
    *,
    threshold: float = 0.0,
    head_tail: bool | HeadTailModel = True,
    corridor_cm: float = 1.0,
    start_fraction: float | None = None,
    covariance_weight: float = 0.2,
    fill_failed: str = "isotropic",
    seed: int = 0,
    chunk_size: int = 256,
) -> ClassicalFit:
    """Classical direction fit of every event, with diagnostics (see the module docstring).

    Args:
        batch_or_images: an :class:`~edkeras.events.eventfile.EventBatch`, or a mapping with the
            three plane images (N, T, C) (or one event (T, C)) under ``U, V, X`` or
            ``view_u, view_v, view_x``, in the canonical frame.
        geometry: readout geometry (pitches, drift per tick, wire angle); default DUNE FD.
        threshold: pixels with charge ≤ ``threshold`` (ADC) are ignored (noise suppression).
        head_tail: ``True`` chooses the sense of the direction with
            :data:`DEFAULT_HEAD_TAIL`; a :class:`HeadTailModel` (e.g. from
            :func:`fit_head_tail_model`) uses that one; ``False`` keeps whatever sign the
            eigen-solver returned (only the axis is meaningful).
        corridor_cm: half-width of the track core around the fitted axis, cm.
        start_fraction: if set (e.g. 0.5), refit the axis on the first fraction of the
            track (after the head–tail choice), where the initial direction is least bent.
        covariance_weight: strength of the 3-D covariance term (see :func:`_solve_3d`).
        fill_failed: direction given to events with fewer than two usable planes:
            ``"isotropic"`` (a seeded random unit vector: "no information") or ``"nan"``.
        seed: seed of the isotropic fill.
        chunk_size: events processed at a time (memory ≈ chunk × T × C × 100 bytes).

    Returns:
        A :class:`ClassicalFit`.

    Raises:
        InputError: images missing or of the wrong shape; a bad option value.
    """
    images = _images_from(batch_or_images)
    g = geometry or Geometry()
    if fill_failed not in ("isotropic", "nan"):
        raise InputError(
            f"classical baseline: fill_failed must be 'isotropic' or 'nan'; received {fill_failed!r}"
        )
    if start_fraction is not None and not 0.0 < float(start_fraction) <= 1.0:
        raise InputError(f"classical baseline: start_fraction must be in (0, 1]; received {start_fraction!r}")
    if not corridor_cm > 0:
        raise InputError(f"classical baseline: corridor_cm must be > 0; received {corridor_cm!r}")
    if isinstance(head_tail, HeadTailModel):
        model: HeadTailModel | None = head_tail
    elif isinstance(head_tail, bool):
        model = DEFAULT_HEAD_TAIL if head_tail else None
    else:
        raise InputError(
            f"classical baseline: head_tail must be true, false or a HeadTailModel; received {head_tail!r}"
        )
    chunk_size = max(int(chunk_size), 1)
    n = images["U"].shape[0]
    parts = []
    for start in range(0, n, chunk_size):
        sl = slice(start, min(n, start + chunk_size))
        parts.append(
            _fit_chunk(
                {p: images[p][sl] for p in PLANES},
                g,
                threshold=float(threshold),
                model=model,
                corridor_cm=float(corridor_cm),
                start_fraction=None if start_fraction is None else float(start_fraction),
                covariance_weight=float(covariance_weight),
            )
        )
    nf = len(HEAD_TAIL_FEATURES)
    if parts:
        d, ok, score, weights, feats, q_x, _ = (np.concatenate(x) for x in zip(*parts))
    else:
        d, ok, score = np.zeros((0, 3)), np.zeros(0, bool), np.zeros(0)
        weights, feats, q_x = np.zeros((0, 3)), np.zeros((0, nf)), np.zeros(0)
    if not ok.all():
        bad = ~ok
        if fill_failed == "nan":
            d[bad] = np.nan
        else:
            rng = np.random.default_rng(seed)
            r = rng.normal(size=(int(bad.sum()), 3))
            d[bad] = r / np.linalg.norm(r, axis=1, keepdims=True)
        score[bad] = 0.0
    return ClassicalFit(
        direction=d, ok=ok, head_tail_score=score, plane_weight=weights, features=feats, charge_x=q_x
    )


def classical_directions(
    batch_or_images: Any, geometry: Geometry | None = None, **options: Any
) -> np.ndarray:
    """Classical 3-D electron directions (N, 3), unit vectors, for every event.

    Args:
        batch_or_images: an EventBatch, or a mapping of the three plane images (see
            :func:`fit_classical`).
        geometry: readout geometry; default DUNE far detector.
        **options: options of :func:`fit_classical` (``threshold``, ``start_fraction``, …).

    Returns:
        (N, 3) float64 unit vectors.

    Example:
        >>> d = classical_directions({"U": u, "V": v, "X": x})
    """
    return fit_classical(batch_or_images, geometry, **options).direction


def save_classical_predictions(
    events: Any,
    path: str | os.PathLike[str],
    *,
    geometry: Geometry | None = None,
    indices: Any = None,
    split: str = "",
    run: str = "classical",
    chunk_size: int = 1024,
    progress: bool = True,
    **options: Any,
) -> Path:
    """Run the classical reconstruction on an event file (or batch) and write a predictions file.

    The file is written by :func:`edkeras.reco.predictions.save_predictions` with the
    truth, the reconstructed energy (``energies``), interaction type and event ids of the
    events, so that the baseline sits beside every model in the same analyses.

    Args:
        events: path of an event file, an open :class:`~edkeras.events.eventfile.EventFile`, or
            an :class:`~edkeras.events.eventfile.EventBatch`.
        path: output ``.npz``.
        geometry: default: the event file's geometry (DUNE FD for a batch).
        indices: sorted event indices to reconstruct (e.g. the test split); default all.
        split, run: recorded in the file.
        chunk_size: events read at a time.
        progress: show a progress bar.
        **options: options of :func:`fit_classical`.

    Returns:
        The path written.
    """

    close = False
    if isinstance(events, (str, os.PathLike)):
        events = open_events(events)
        close = True
    try:
        if isinstance(events, EventFile):
            geometry = geometry or events.geometry
            idx = np.arange(len(events)) if indices is None else np.asarray(indices)
            chunks = [idx[i : i + chunk_size] for i in range(0, len(idx), chunk_size)]
            iterator: Any = chunks
            if progress:
                from tqdm.auto import tqdm

                iterator = tqdm(chunks, desc="classical baseline", unit="chunk")
            parts = []
            for c in iterator:
                b = events.read(c)
                parts.append((b, classical_directions(b, geometry, **options)))
            if parts:
                batch = EventBatch.concatenate([b for b, _ in parts])
                pred = np.concatenate([d for _, d in parts])
            else:
                raise InputError(f"{events.path}: no events selected for the classical baseline")
        elif isinstance(events, EventBatch):
            batch = (events if indices is None else events.select(np.asarray(indices))).filled()
            pred = classical_directions(batch, geometry, **options)
        else:
            raise InputError(
                f"save_classical_predictions: expected an event file path, EventFile or EventBatch; "
                f"received {type(events).__name__}"
            )
    finally:
        if close:
            events.close()
    return save_predictions(
        path,
        predictions=pred,
        true_directions=batch.direction,
        energies=batch.reco_energy,
        true_energies=batch.energy,
        interaction=batch.interaction,
        nu_directions=batch.nu_direction,
        event_id=batch.event_id,
        split=split,
        run=run,
        model="classical",
    )


def fit_head_tail_model(
    batch: Any,
    geometry: Geometry | None = None,
    *,
    l2: float = 1e-3,
    adc_per_mev_x: float = 3900.0,
    **fit_options: Any,
) -> HeadTailModel:
    """Fit the head–tail weights by logistic regression on events with a known direction.

    The label of an event is whether its fitted axis (before any head–tail choice) points
    along the true direction; the model is a logistic regression without intercept on the
    features and their products with z = ln(E_X / 20 MeV) (reversing the axis reverses every
    feature, so the decision must be odd in them). The objective (mean logistic loss + l2·|w|²)
    is minimised with scipy's L-BFGS here rather than by scikit-learn, so that the weights do not
    depend on another library's solver defaults. Fit on simulated or training events only —
    never on the events a result is quoted on.

    Args:
        batch: an EventBatch with ``direction`` (truth) known.
        geometry: readout geometry.
        l2: ridge penalty on the weights.
        adc_per_mev_x: X-plane ADC per MeV of the data (the energy proxy's scale).
        **fit_options: options of :func:`fit_classical` (``threshold``, ``corridor_cm``, …).

    Returns:
        A :class:`HeadTailModel`.
    """
    from scipy.optimize import minimize

    truth = getattr(batch, "direction", None)
    if truth is None or not np.isfinite(np.asarray(truth, dtype=np.float64)).all():
        raise InputError("fit_head_tail_model: every event needs a known true direction (batch.direction)")
    fit_options = {k: v for k, v in fit_options.items() if k != "head_tail"}
    fit = fit_classical(batch, geometry, head_tail=False, **fit_options)
    keep = fit.ok
    y = np.where(np.sum(fit.direction * np.asarray(truth, dtype=np.float64), axis=1) >= 0, 1.0, -1.0)[keep]
    probe = HeadTailModel(
        weights=(0.0,) * len(HEAD_TAIL_FEATURES),
        energy_weights=(0.0,) * len(HEAD_TAIL_FEATURES),
        adc_per_mev_x=adc_per_mev_x,
    )
    x = probe.design(fit.features[keep], fit.charge_x[keep])
    scale = np.maximum(x.std(axis=0), 1e-12)
    xs = x / scale

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        m = y * (xs @ w)
        val = np.mean(np.logaddexp(0.0, -m)) + l2 * float(w @ w)
        grad = -(xs * (y * _sigmoid(-m))[:, None]).mean(axis=0) + 2 * l2 * w
        return float(val), grad

    res = minimize(loss, np.zeros(xs.shape[1]), jac=True, method="L-BFGS-B")
    w = res.x / scale
    nf = len(HEAD_TAIL_FEATURES)
    return HeadTailModel(
        weights=tuple(float(v) for v in w[:nf]),
        energy_weights=tuple(float(v) for v in w[nf:]),
        adc_per_mev_x=adc_per_mev_x,
        n_fit=int(keep.sum()),
        accuracy=float(np.mean(y * (x @ w) > 0)),
    )
