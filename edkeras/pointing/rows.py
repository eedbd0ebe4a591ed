"""One row of a likelihood table: the density of cos θ in one bin, by histogram, reflected KDE, vMF, mixture or a
Gaussian in cos θ (the proposal's "Gaussian on cosine", truncated to [−1, 1]); smoothing across ln E."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from edkeras.core import vmf
from edkeras.core.errors import TableError

__all__ = ['FLOOR', 'METHODS', 'PARAM_NAMES', 'cosine_edges', 'fit_row', 'kde_reflected']


FLOOR = 1e-4
"""Smallest density value in a table (DUNE's analysis floors its tables at 1e-4)."""


METHODS = ("histogram", "kde", "vmf", "mixture", "gaussian")


PARAM_NAMES: dict[str, tuple[str, ...]] = {
    "histogram": (),
    "kde": ("bandwidth",),
    "vmf": ("kappa",),
    "mixture": ("w_forward", "kappa_forward", "w_backward", "kappa_backward", "w_flat"),
    "gaussian": ("mu", "sigma"),
}

_GAUSSIAN_MU = (-3.0, 3.0)
_GAUSSIAN_SIGMA = (1e-3, 10.0)
"""Bounds of the truncated Gaussian's centre and width in cos θ (a centre beyond ±1 is a peak at the edge)."""


_KAPPA_RANGE = (0.05, 1e5)
"""Bounds on the concentrations of the mixture's peaks."""


def cosine_edges(n_bins: int = 100, spacing: str = "angle") -> np.ndarray:
    """Edges of the cos θ bins, ascending from −1 to 1.

    Args:
        n_bins: number of bins.
        spacing: ``"angle"`` (equal steps in θ: 180°/n_bins each) or ``"cos"`` (equal in cos θ).

    Returns:
        (n_bins + 1,) edges, exactly −1 and 1 at the ends.
    """
    if int(n_bins) < 2:
        raise TableError(f"cosine bins: expected at least 2 bins; received {n_bins}")
    if spacing == "angle":
        edges = np.cos(np.linspace(np.pi, 0.0, int(n_bins) + 1))
    elif spacing == "cos":
        edges = np.linspace(-1.0, 1.0, int(n_bins) + 1)
    else:
        raise TableError(f"cosine bin spacing must be 'angle' or 'cos'; received {spacing!r}")
    edges[0], edges[-1] = -1.0, 1.0
    return edges


def _energy_edges(edges: Sequence[float]) -> np.ndarray:
    e = np.asarray([float(x) for x in edges], dtype=np.float64)
    if e.ndim != 1 or len(e) < 2 or np.any(np.isnan(e)) or np.any(np.diff(e) <= 0) or e[0] < 0:
        raise TableError(
            f"energy bins: expected at least two increasing edges >= 0 (MeV); received {list(edges)}"
        )
    return e


def _bin_average_from_cdf(cdf_at_edges: np.ndarray, edges: np.ndarray) -> np.ndarray:
    return np.diff(cdf_at_edges) / np.diff(edges)


def kde_reflected(t: Any, edges: np.ndarray, adaptive: bool = True) -> tuple[np.ndarray, float]:
    """Reflected, adaptive Gaussian KDE of cos θ samples, integrated over each bin.

    Each sample t_i gets a kernel of width h_i and its mirror images 2 − t_i and −2 − t_i
    (reflection at +1 and −1), so no probability leaks out of [−1, 1] and a flat sample
    stays flat at the edges. h0 is Silverman's rule, 0.9·min(σ, IQR/1.34)·n^(−1/5); with
    ``adaptive`` the widths are h_i = h0·(f̃(t_i)/g)^(−½) (Abramson), f̃ the reflected
    fixed-width pilot estimate and g its geometric mean over the samples, clipped to
    [h0/10, 5·h0] and ≤ 0.5.

    Args:
        t: samples of cos θ.
        edges: ascending bin edges from −1 to 1.
        adaptive: use Abramson's adaptive widths (else the fixed width h0).

    Returns:
        (bin-averaged density (n_bins,), h0).
    """
    from scipy.ndimage import gaussian_filter1d
    from scipy.special import ndtr

    x = np.clip(np.asarray(t, dtype=np.float64), -1.0, 1.0)
    n = len(x)
    if n == 0:
        raise TableError("kde: expected at least one sample; received none")
    sd = float(np.std(x))
    iqr = float(np.subtract(*np.percentile(x, [75, 25])))
    spread = min(sd, iqr / 1.34) if iqr > 0 else sd
    h0 = float(np.clip(0.9 * max(spread, 1e-4) * n ** (-0.2), 1e-5, 0.5))
    h = np.full(n, h0)
    if adaptive and n > 1:
        grid_n = 8192
        hist, _ = np.histogram(x, bins=grid_n, range=(-1.0, 1.0))
        dx = 2.0 / grid_n
        pilot = gaussian_filter1d(hist.astype(np.float64), sigma=max(h0 / dx, 0.5), mode="reflect")
        pilot /= pilot.sum() * dx
        centres = -1.0 + dx * (np.arange(grid_n) + 0.5)
        f = np.maximum(np.interp(x, centres, pilot), 1e-12)
        g = np.exp(np.mean(np.log(f)))
        h = np.clip(h0 * (f / g) ** -0.5, h0 / 10.0, min(5.0 * h0, 0.5))
    cdf = np.zeros(len(edges))
    chunk = max(1, 2_000_000 // len(edges))
    for s in range(0, n, chunk):
        xs, hs = x[s : s + chunk, None], h[s : s + chunk, None]
        cdf += ndtr((edges[None, :] - xs) / hs).sum(axis=0)
        near_top = (1.0 - xs[:, 0]) < 8.0 * hs[:, 0]
        if near_top.any():
            cdf += ndtr((edges[None, :] - (2.0 - xs[near_top])) / hs[near_top]).sum(axis=0)
        near_bottom = (xs[:, 0] + 1.0) < 8.0 * hs[:, 0]
        if near_bottom.any():
            cdf += ndtr((edges[None, :] - (-2.0 - xs[near_bottom])) / hs[near_bottom]).sum(axis=0)
    row = _bin_average_from_cdf(cdf / n, edges)
    row = np.maximum(row, 0.0)
    return row / np.sum(row * np.diff(edges)), h0


def _log_cos_pdf_positive(t: np.ndarray, kappa: float) -> np.ndarray:
    """log[κ e^{κ(t−1)} / (1 − e^{−2κ})] for κ > 0 (the forward vMF cos θ density), fast."""
    return math.log(kappa) + kappa * (t - 1.0) - math.log(-math.expm1(-2.0 * kappa))


def _fit_mixture(t: np.ndarray, max_iter: int = 300, tol: float = 2e-6, n_bins: int = 8192) -> np.ndarray:
    """EM fit of forward vMF + backward vMF + flat to cos θ samples.

    Above ``n_bins`` samples the EM runs on a histogram in θ with ``n_bins`` bins
    (0.022° wide, far below any peak width the concentration bounds allow), so its cost
    does not grow with the sample.

    Returns [w_forward, kappa_forward, w_backward, kappa_backward, w_flat].
    """
    lo, hi = _KAPPA_RANGE
    if len(t) > n_bins:
        counts, edges = np.histogram(np.arccos(np.clip(t, -1.0, 1.0)), bins=n_bins, range=(0.0, np.pi))
        keep = counts > 0
        x = np.cos(0.5 * (edges[1:] + edges[:-1]))[keep]
        wt = counts[keep].astype(np.float64)
    else:
        x, wt = np.asarray(t, dtype=np.float64), np.ones(len(t))
    n = float(wt.sum())
    pos = x > 0
    mean_pos = float(wt[pos] @ x[pos] / wt[pos].sum()) if pos.any() else 0.5
    kf = float(np.clip(vmf.kappa_from_mean_cos(max(mean_pos, 0.3)), lo, hi))
    kb = 5.0
    w = np.array([0.6, 0.1, 0.3])
    prev = -np.inf
    for _ in range(max_iter):
        logs = np.stack(
            [
                math.log(w[0]) + _log_cos_pdf_positive(x, kf),
                math.log(w[1]) + _log_cos_pdf_positive(-x, kb),
                np.full(len(x), math.log(w[2] * 0.5)),
            ]
        )
        top = logs.max(axis=0)
        comp = np.exp(logs - top)
        total = comp.sum(axis=0)
        ll = float(wt @ (np.log(total) + top))
        resp = comp / total * wt
        sums = resp.sum(axis=1)
        w = np.maximum(sums / n, 1e-9)
        w /= w.sum()
        rf = float(resp[0] @ x) / max(float(sums[0]), 1e-300)
        rb = -float(resp[1] @ x) / max(float(sums[1]), 1e-300)
        kf = min(max(vmf.kappa_from_mean_cos(min(max(rf, 0.0), 1.0)), lo), hi)
        kb = min(max(vmf.kappa_from_mean_cos(min(max(rb, 0.0), 1.0)), lo), hi)
        if ll - prev < tol * n:
            break
        prev = ll
    return np.array([w[0], kf, w[1], kb, w[2]])


def _row_from_params(method: str, params: np.ndarray, edges: np.ndarray) -> np.ndarray:
    if method == "vmf":
        cdf = vmf.cos_cdf(edges, params[0])
    elif method == "mixture":
        wf, kf, wb, kb, w0 = params
        cdf = wf * vmf.cos_cdf(edges, kf) + wb * vmf.cos_cdf(edges, -kb) + w0 * (edges + 1.0) / 2.0
    elif method == "gaussian":
        cdf = _truncated_normal_mass(edges, params[0], params[1])
    else:
        raise TableError(f"no parametric form for method {method!r}")
    row = np.maximum(_bin_average_from_cdf(cdf, edges), 0.0)
    return row / np.sum(row * np.diff(edges))


def fit_row(t: Any, method: str, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fit one row P(cos θ) to samples ``t`` with ``method``; no floor, no smoothing.

    Args:
        t: cos θ samples.
        method: one of :data:`METHODS`.
        edges: ascending cos θ bin edges from −1 to 1.

    Returns:
        (bin-averaged density (n_bins,) integrating to 1, parameters (see ``PARAM_NAMES``)).

    Example:
        >>> row, (kappa,) = fit_row(vmf.sample_cos(30.0, 5000, rng), "vmf", cosine_edges())
    """
    x = np.clip(np.asarray(t, dtype=np.float64), -1.0, 1.0)
    if len(x) == 0:
        raise TableError(f"fit_row({method}): expected at least one sample; received none")
    if method == "histogram":
        counts, _ = np.histogram(x, bins=edges)
        return counts / (len(x) * np.diff(edges)), np.zeros(0)
    if method == "kde":
        row, h0 = kde_reflected(x, edges)
        return row, np.array([h0])
    if method == "vmf":
        params = np.array([vmf.kappa_from_mean_cos(float(np.mean(x)))])
        return _row_from_params(method, params, edges), params
    if method == "mixture":
        params = _fit_mixture(x)
        return _row_from_params(method, params, edges), params
    if method == "gaussian":
        params = _fit_truncated_gaussian(x)
        return _row_from_params(method, params, edges), params
    raise TableError(f"likelihood method must be one of {list(METHODS)}; received {method!r}")


def _truncated_normal_mass(x: np.ndarray, mu: float, sigma: float) -> np.ndarray:
    """P(−1 ≤ c ≤ x) of a normal (μ, σ), unnormalised; from the nearer tail, so a peak beyond ±1 keeps its shape."""
    from scipy.special import ndtr

    z, a = (np.asarray(x, dtype=np.float64) - mu) / sigma, (-1.0 - mu) / sigma
    return ndtr(-a) - ndtr(-z) if mu < 0 else ndtr(z) - ndtr(a)


def _fit_truncated_gaussian(t: np.ndarray) -> np.ndarray:
    """Maximum-likelihood (μ, σ) of a normal density in cos θ truncated to [−1, 1]."""
    from scipy.optimize import minimize

    def nll(q: np.ndarray) -> float:
        mu, sigma = _from_free("gaussian", q)
        log_z = np.log(max(float(_truncated_normal_mass(np.array(1.0), mu, sigma)), 1e-300))
        return float(np.sum(0.5 * ((t - mu) / sigma) ** 2) + len(t) * (np.log(sigma) + log_z))

    start = np.array([float(np.mean(t)), max(float(np.std(t)), 0.05)])
    res = minimize(nll, _to_free("gaussian", start), method="Nelder-Mead", options={"xatol": 1e-6, "fatol": 1e-8})
    return _from_free("gaussian", res.x)


def _local_linear(x: np.ndarray, y: np.ndarray, weight: np.ndarray, width: float) -> np.ndarray:
    """Local-linear regression of rows y (m, d) on x (m,), evaluated at each x_j with weights > 0."""
    out = np.array(y, dtype=np.float64, copy=True)
    ok = weight > 0
    if ok.sum() < 2:
        return out
    xs, ys, ws = x[ok], y[ok], weight[ok]
    for j in np.flatnonzero(ok):
        k = ws * np.exp(-0.5 * ((xs - x[j]) / width) ** 2)
        dx = xs - x[j]
        s0, s1, s2 = k.sum(), (k * dx).sum(), (k * dx * dx).sum()
        det = s0 * s2 - s1 * s1
        if det <= 1e-12 * max(s0 * s2, 1e-300):
            out[j] = (k[:, None] * ys).sum(axis=0) / s0
            continue
        t0 = (k[:, None] * ys).sum(axis=0)
        t1 = (k[:, None] * dx[:, None] * ys).sum(axis=0)
        out[j] = (s2 * t0 - s1 * t1) / det
    return out


def _to_free(method: str, p: np.ndarray) -> np.ndarray:
    if method == "vmf":
        return np.arcsinh(p)
    if method == "gaussian":
        mu, sigma = np.moveaxis(np.asarray(p, dtype=np.float64), -1, 0)
        return np.stack([mu, np.log(np.maximum(sigma, _GAUSSIAN_SIGMA[0]))], axis=-1)
    wf, kf, wb, kb, w0 = np.moveaxis(p, -1, 0)
    w0 = np.maximum(w0, 1e-9)
    return np.stack(
        [np.log(np.maximum(wf, 1e-9) / w0), np.log(kf), np.log(np.maximum(wb, 1e-9) / w0), np.log(kb)],
        axis=-1,
    )


def _from_free(method: str, q: np.ndarray) -> np.ndarray:
    if method == "vmf":
        return np.sinh(q)
    if method == "gaussian":
        mu, log_sigma = np.moveaxis(np.asarray(q, dtype=np.float64), -1, 0)
        return np.stack([np.clip(mu, *_GAUSSIAN_MU), np.clip(np.exp(log_sigma), *_GAUSSIAN_SIGMA)], axis=-1)
    a, lkf, b, lkb = np.moveaxis(q, -1, 0)
    z = np.stack([a, b, np.zeros_like(a)], axis=-1)
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    w = z / z.sum(axis=-1, keepdims=True)
    lo, hi = _KAPPA_RANGE
    kf, kb = np.clip(np.exp(lkf), lo, hi), np.clip(np.exp(lkb), lo, hi)
    return np.stack([w[..., 0], kf, w[..., 1], kb, w[..., 2]], axis=-1)


def _apply_floor(rows: np.ndarray, floor: float) -> np.ndarray:
    return (1.0 - 2.0 * floor) * rows + floor
