"""Image statistics of two event files side by side, at matched true energy.

Method notes: ``docs/methods.md``, section ``edkeras.events.compare``.

Example:
    >>> report = compare_event_files("real_es.h5", "sim_es.h5")
    >>> print(format_comparison(report))
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from edkeras.core.detector import PLANES
from edkeras.core.errors import InputError
from edkeras.events.eventfile import open_events

__all__ = [
    "STATISTICS",
    "Comparison",
    "compare_batches",
    "compare_event_files",
    "format_comparison",
    "image_statistics",
    "matched_indices",
]

STATISTICS: dict[str, str] = {
    "pixels": "pixels over threshold",
    "pulses": "pulses (runs of lit ticks on a channel)",
    "pulse_samples": "ticks per pulse, median",
    "adc_median": "ADC per lit pixel, median",
    "adc_p90": "ADC per lit pixel, 90th percentile",
    "ticks": "ticks spanned by the main cluster",
    "channels": "channels spanned by the main cluster",
    "adc_per_mev": "window ADC sum per MeV of true energy",
    "other_clusters": "clusters besides the main one",
    "x_offset": "|charge-centre row − X's|, rows (how the planes' windows line up in time)",
}
"""Per-plane statistics (name → what it is)."""

MEAN_STATISTICS = frozenset({"other_clusters"})
"""Statistics compared by their mean (mostly 0 per event: the median says nothing)."""

_LINK = np.ones((7, 5), dtype=bool)  # lit pixels within 3 ticks and 2 channels are one cluster


def image_statistics(images: np.ndarray, energy: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Per-event statistics of one plane's images (N, T, C); NaN where undefined.

    Args:
        images: (N, T, C) ADC images (0 = below threshold).
        energy: (N,) true energy in MeV for ``adc_per_mev`` (NaN without it).

    Returns:
        one (N,) array per name of :data:`STATISTICS`, and ``row_centre`` (the charge-weighted
        mean row); ``x_offset`` needs the X plane's images and is NaN here
        (:func:`compare_batches` fills it).
    """
    images = np.asarray(images, dtype=np.float32)
    n = images.shape[0]
    out = {k: np.full(n, np.nan) for k in STATISTICS}
    profile = images.sum(axis=2, dtype=np.float64)  # ADC per row
    total = profile.sum(axis=1)
    rows = np.arange(images.shape[1]) + 0.5
    out["row_centre"] = np.where(total > 0, (profile * rows).sum(axis=1) / np.where(total > 0, total, 1.0), np.nan)
    for i in range(n):
        img = images[i]
        lit = img > 0
        n_lit = int(lit.sum())
        out["pixels"][i] = n_lit
        if n_lit == 0:
            out["other_clusters"][i] = 0
            continue
        vals = img[lit]
        edges = np.diff(np.pad(lit, ((1, 1), (0, 0))).astype(np.int8), axis=0)  # +1 at a run's start, −1 after its end
        t_start, c_start = np.nonzero(edges == 1)
        t_end, c_end = np.nonzero(edges == -1)
        o_start, o_end = np.lexsort((t_start, c_start)), np.lexsort((t_end, c_end))
        out["pulses"][i] = len(t_start)
        out["pulse_samples"][i] = float(np.median(t_end[o_end] - t_start[o_start]))
        out["adc_median"][i] = float(np.median(vals))
        out["adc_p90"][i] = float(np.percentile(vals, 90))
        grown, n_cl = ndimage.label(ndimage.binary_dilation(lit, structure=_LINK))
        lab = np.where(lit, grown, 0)
        sums = ndimage.sum(img, lab, index=np.arange(1, n_cl + 1))
        present = np.bincount(lab[lit], minlength=n_cl + 1)[1:] > 0
        main = int(np.argmax(np.where(present, sums, -1.0))) + 1
        rows, cols = np.nonzero(lab == main)
        out["ticks"][i] = rows.max() - rows.min() + 1
        out["channels"][i] = cols.max() - cols.min() + 1
        out["other_clusters"][i] = int(present.sum()) - 1
        if energy is not None and np.isfinite(energy[i]) and energy[i] > 0:
            out["adc_per_mev"][i] = float(vals.sum()) / float(energy[i])
    return out


def matched_indices(reference: np.ndarray, other: np.ndarray, k: int = 20) -> np.ndarray:
    """Indices into ``other``: for each reference energy, its ``k`` nearest in ``other``.

    Each reference event gets the same weight (``k`` partners, repeats allowed across
    reference events), so the matched sample has the reference's energy distribution.
    """
    reference = np.asarray(reference, dtype=np.float64)
    other = np.asarray(other, dtype=np.float64)
    k = min(int(k), other.size)
    dist = np.abs(other[None, :] - reference[:, None])
    return np.argsort(dist, axis=1, kind="stable")[:, :k].ravel()


def _centre(stat: str) -> Any:
    """The centre of a statistic: the mean for counts of rare things, else the median."""
    return np.mean if stat in MEAN_STATISTICS else np.median


def _centre_ci(values: np.ndarray, rng: np.random.Generator, stat: str, n_boot: int = 1000
               ) -> tuple[float, float, float]:
    """Median (mean for counts of rare things) with its 68 % bootstrap interval."""
    v = values[np.isfinite(values)]
    if v.size == 0:
        return math.nan, math.nan, math.nan
    centre = _centre(stat)
    boots = centre(v[rng.integers(0, v.size, size=(n_boot, v.size))], axis=1)
    return float(centre(v)), float(np.percentile(boots, 16)), float(np.percentile(boots, 84))


def _ratio_ci(u: np.ndarray, v: np.ndarray, rng: np.random.Generator, stat: str, n_boot: int = 1000
              ) -> tuple[float, float, float]:
    """centre(U) / centre(V) of the same events, with a 68 % bootstrap interval that resamples
    events (U and V of an event together)."""
    ok = np.isfinite(u) & np.isfinite(v)
    u, v = u[ok], v[ok]
    if u.size == 0:
        return math.nan, math.nan, math.nan
    centre = _centre(stat)
    idx = rng.integers(0, u.size, size=(n_boot, u.size))
    with np.errstate(divide="ignore", invalid="ignore"):
        full = centre(u) / centre(v)
        boots = centre(u[idx], axis=1) / centre(v[idx], axis=1)
    boots = boots[np.isfinite(boots)]
    if not math.isfinite(full) or boots.size == 0:
        return math.nan, math.nan, math.nan
    return float(full), float(np.percentile(boots, 16)), float(np.percentile(boots, 84))


@dataclass
class Comparison:
    """The result of :func:`compare_batches`: ``rows`` (one dict per plane and statistic),
    ``asymmetry`` (U/V ratios per file), the sample sizes and the tolerance."""

    reference: str
    other: str
    n_reference: int
    n_other: int
    n_matched: int
    tolerance: float
    rows: list[dict[str, Any]]
    asymmetry: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {"reference": self.reference, "other": self.other, "n_reference": self.n_reference,
                "n_other": self.n_other, "n_matched": self.n_matched, "tolerance": self.tolerance,
                "interval": "68 % bootstrap interval of the median (mean for other_clusters)", "rows": self.rows,
                "uv_asymmetry": self.asymmetry}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, allow_nan=False)  # NaN already None (_clean)

    @property
    def n_differ(self) -> int:
        return sum(r["verdict"] == "differs" for r in self.rows)

    @property
    def n_asymmetry_differ(self) -> int:
        return sum(a["verdict"] == "differs" for a in self.asymmetry)


def _clean(x: float) -> float | None:
    return None if not math.isfinite(x) else round(float(x), 4)


def _verdict(a: tuple[float, float, float], b: tuple[float, float, float], tolerance: float) -> str:
    if not (math.isfinite(a[0]) and math.isfinite(b[0])):
        return "n/a"
    if a[0] == b[0] or (a[0] != 0 and abs(b[0] / a[0] - 1.0) <= tolerance):
        return "agree"
    if max(a[1], b[1]) <= min(a[2], b[2]):  # 68 % intervals overlap
        return "agree"
    return "differs"


def compare_batches(reference: Any, other: Any, *, names: tuple[str, str] = ("reference", "other"),
                    k: int = 20, tolerance: float = 0.15, seed: int = 0) -> Comparison:
    """Compare the images of two :class:`~edkeras.events.eventfile.EventBatch` es at matched energy.

    Raises:
        InputError: different image shapes, or no true energy in either sample.
    """
    ra, oa = names
    if reference.U.shape[1:] != other.U.shape[1:]:
        raise InputError(f"compare: {ra} has images {reference.U.shape[1:]} but {oa} has "
                         f"{other.U.shape[1:]}; both files need the same image shape")
    e_ref = np.asarray(reference.energy if reference.energy is not None else np.full(len(reference), np.nan),
                       dtype=np.float64)
    e_oth = np.asarray(other.energy if other.energy is not None else np.full(len(other), np.nan),
                       dtype=np.float64)
    for name, e in ((ra, e_ref), (oa, e_oth)):
        if not np.isfinite(e).any():
            raise InputError(f"compare: {name} has no true energy (/truth/energy is NaN for every event); "
                             "matching in energy needs it")
    ref_ok = np.flatnonzero(np.isfinite(e_ref))
    oth_ok = np.flatnonzero(np.isfinite(e_oth))
    match = oth_ok[matched_indices(e_ref[ref_ok], e_oth[oth_ok], k=k)]
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    stats = {(who, p): image_statistics(b.images[p][sel], e[sel])
             for who, b, sel, e in (("reference", reference, ref_ok, e_ref), ("other", other, match, e_oth))
             for p in PLANES}
    for (who, _plane), st in stats.items():
        st["x_offset"] = np.abs(st["row_centre"] - stats[(who, "X")]["row_centre"])
    for p in PLANES:
        s_ref, s_oth = stats[("reference", p)], stats[("other", p)]
        for stat in STATISTICS:
            if p == "X" and stat == "x_offset":
                continue
            a = _centre_ci(s_ref[stat], rng, stat)
            b = _centre_ci(s_oth[stat], rng, stat)
            ratio = b[0] / a[0] if (math.isfinite(a[0]) and a[0] != 0 and math.isfinite(b[0])) else math.nan
            rows.append({"plane": p, "statistic": stat, "reference": _clean(a[0]),
                         "reference_interval": [_clean(a[1]), _clean(a[2])], "other": _clean(b[0]),
                         "other_interval": [_clean(b[1]), _clean(b[2])], "ratio": _clean(ratio),
                         "verdict": _verdict(a, b, tolerance)})
    asym = []
    for stat in STATISTICS:
        entry: dict[str, Any] = {"statistic": stat}
        ratios = {who: _ratio_ci(stats[(who, "U")][stat], stats[(who, "V")][stat], rng, stat)
                  for who in ("reference", "other")}
        for who, r in ratios.items():
            entry[who], entry[f"{who}_interval"] = _clean(r[0]), [_clean(r[1]), _clean(r[2])]
        entry["verdict"] = _verdict(ratios["reference"], ratios["other"], tolerance)
        asym.append(entry)
    return Comparison(ra, oa, int(ref_ok.size), int(oth_ok.size), int(match.size), float(tolerance), rows, asym)


def compare_event_files(reference: str | Path, other: str | Path, *, k: int = 20, tolerance: float = 0.15,
                        max_events: int = 20000, seed: int = 0) -> Comparison:
    """:func:`compare_batches` of two event files (at most ``max_events`` read from each)."""

    batches = []
    for path in (reference, other):
        with open_events(path) as f:
            n = min(len(f), int(max_events))
            if n == 0:
                raise InputError(f"{path}: holds no events; compare needs at least one")
            batches.append(f.read(slice(0, n)))
    return compare_batches(batches[0], batches[1], names=(str(reference), str(other)), k=k,
                           tolerance=tolerance, seed=seed)


def format_comparison(c: Comparison) -> str:
    """A plain-text table of a :class:`Comparison`."""
    lines = [f"reference: {c.reference} ({c.n_reference} events)",
             f"other:     {c.other} ({c.n_other} events, {c.n_matched} energy-matched draws)",
             f"medians with 68 % bootstrap intervals; 'agree' = within {c.tolerance:.0%} or intervals overlap",
             "",
             f"{'plane':5} {'statistic':16} {'reference':>24} {'other':>24} {'ratio':>6}  verdict"]

    def fmt(v: Any, iv: list[Any]) -> str:
        if v is None:
            return "n/a"
        lo, hi = (f"{x:.4g}" if x is not None else "?" for x in iv)
        return f"{v:.4g} [{lo}, {hi}]"

    for r in c.rows:
        ratio = "n/a" if r["ratio"] is None else f"{r['ratio']:.2f}"
        lines.append(f"{r['plane']:5} {r['statistic']:16} {fmt(r['reference'], r['reference_interval']):>24} "
                     f"{fmt(r['other'], r['other_interval']):>24} {ratio:>6}  {r['verdict']}")
    lines.append("")
    lines.append("U/V asymmetry (U median / V median; events resampled with both planes):")
    for a in c.asymmetry:
        lines.append(f"U/V   {a['statistic']:16} {fmt(a['reference'], a['reference_interval']):>24} "
                     f"{fmt(a['other'], a['other_interval']):>24} {'':>6}  {a['verdict']}")
    lines.append("")
    lines.append(f"{c.n_differ} of {len(c.rows)} statistics differ; "
                 f"{c.n_asymmetry_differ} of {len(c.asymmetry)} U/V asymmetries differ")
    return "\n".join(lines)
