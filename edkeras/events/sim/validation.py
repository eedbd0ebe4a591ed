"""Trigger-primitive statistics of images, to compare simulated events with real DUNE data.

A *pulse* (the image analogue of a trigger primitive, TP) is a run of consecutive non-zero
samples in one channel of one plane; its length is the samples over threshold and its sum
the ADC integral. Pulses are clustered with the public DUNE pointing pipeline's rules
(REAL_TP_STATS.md) as the ingest applies them (:func:`edkeras.events.blips.cluster_tps`):
pulses with fewer than 2 samples dropped; two pulses join when their channels differ by at
most 2 and at most 3 empty ticks lie between them; clusters need ≥ 2 pulses; the *main
cluster* has the largest ADC sum.

:data:`REAL_ES_MEDIANS` holds the real ES medians of ``shared/physics/REAL_TP_STATS.md``
(10 events of the full DUNE simulation: each median is uncertain by tens of per cent).

Example:
    >>> stats = tp_statistics(batch.images)             # per plane: per-event arrays
    >>> table = compare_with_real(stats, deposited_energy)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edkeras.core.detector import PLANES
from edkeras.events.blips import MAX_TIME_GAP, best_per_event, cluster_tps

__all__ = ["REAL_ES_MEDIANS", "Pulses", "compare_with_real", "find_pulses", "plane_statistics", "tp_statistics"]

REAL_ES_MEDIANS: dict[str, dict[str, float]] = {
    "adc_per_mev": {"U": 677, "V": 564, "X": 3996},
    "tps_per_event": {"U": 9.5, "V": 7.5, "X": 6.5},
    "samples_over_threshold": {"U": 7.5, "V": 7, "X": 16},
    "adc_per_tp": {"U": 1030, "V": 923, "X": 5144},
    "main_cluster_channels": {"U": 4.5, "V": 3, "X": 4.5},
    "main_cluster_ticks": {"U": 21, "V": 14, "X": 38},
    "main_cluster_share": {"U": 0.72, "V": 0.76, "X": 0.83},
    "other_clusters": {"U": 1, "V": 1, "X": 0.5},
}
"""Real ES medians per plane (REAL_TP_STATS.md, "Per-event numbers")."""


@dataclass
class Pulses:
    """Pulses of a stack of images: event, channel, first tick, samples over threshold, ADC sum."""

    event: np.ndarray
    channel: np.ndarray
    start: np.ndarray
    length: np.ndarray
    adc: np.ndarray


def find_pulses(images: np.ndarray) -> Pulses:
    """All pulses (runs of non-zero samples along time) of images (N, T, C)."""
    img = np.asarray(images)
    n, t, c = img.shape
    a = np.ascontiguousarray(np.transpose(img, (0, 2, 1))).reshape(n * c, t)
    on = a > 0
    prev = np.zeros_like(on)
    prev[:, 1:] = on[:, :-1]
    first = on & ~prev
    rs, ts = np.nonzero(first)  # row-major: pulses in (event, channel, time) order
    starts_flat = first[on]  # one flag per non-zero sample, in the same order
    run = np.cumsum(starts_flat) - 1
    adc = np.bincount(run, weights=a[on].astype(np.float64), minlength=rs.size)
    length = np.bincount(run, minlength=rs.size)
    return Pulses(event=rs // c, channel=rs % c, start=ts, length=length, adc=adc)


def plane_statistics(images: np.ndarray) -> dict[str, np.ndarray]:
    """Per-event TP statistics of one plane (images (N, T, C)).

    Returns:
        dict of per-event arrays: ``tps`` (pulses), ``adc`` (total), ``main_channels``,
        ``main_ticks`` (span of the main cluster), ``main_share`` (its share of the ADC),
        ``other_clusters``; and per-pulse arrays ``sot`` (samples over threshold) and
        ``pulse_adc``. Events without a cluster get NaN for the main-cluster entries.
    """
    p = find_pulses(images)
    n = np.shape(images)[0]
    out = {
        "tps": np.bincount(p.event, minlength=n).astype(float),
        "adc": np.bincount(p.event, weights=p.adc, minlength=n),
        "main_channels": np.full(n, np.nan),
        "main_ticks": np.full(n, np.nan),
        "main_share": np.full(n, np.nan),
        "other_clusters": np.zeros(n),
        "sot": p.length.astype(float),
        "pulse_adc": p.adc,
    }
    keep = p.length >= 2
    if not keep.any():
        return out
    ev, ch, st, adc = p.event[keep], p.channel[keep], p.start[keep], p.adc[keep]
    end = st + p.length[keep]
    shift = ev * (int(end.max()) + MAX_TIME_GAP + 1)  # each event on a time span of its own
    lab = cluster_tps(ch, st + shift, end + shift)  # the ingest's rules; clusters of >= 2 pulses
    inside = lab >= 0
    if not inside.any():
        return out
    lab, ev, ch, st, end, adc = lab[inside], ev[inside], ch[inside], st[inside], end[inside], adc[inside]
    k = int(lab.max()) + 1
    sums = np.bincount(lab, weights=adc, minlength=k)
    owner = np.zeros(k, dtype=np.int64)
    owner[lab] = ev
    main = best_per_event(owner, sums)  # per event, its largest cluster
    e = owner[main]
    first = np.full(k, np.iinfo(np.int64).max)
    last = np.full(k, np.iinfo(np.int64).min)
    np.minimum.at(first, lab, st)
    np.maximum.at(last, lab, end)
    width = int(ch.max()) + 1
    pairs = np.unique(lab * width + ch)
    channels = np.bincount(pairs // width, minlength=k)
    out["main_channels"][e] = channels[main]
    out["main_ticks"][e] = last[main] - first[main]
    out["main_share"][e] = sums[main] / out["adc"][e]
    out["other_clusters"][e] = np.bincount(owner, minlength=n)[e] - 1
    return out


def tp_statistics(images: dict[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    """:func:`plane_statistics` for each of U, V, X."""
    return {p: plane_statistics(images[p]) for p in PLANES}


def compare_with_real(
    stats: dict[str, dict[str, np.ndarray]], deposited_energy: np.ndarray
) -> dict[str, dict[str, dict[str, float]]]:
    """Simulated medians next to the real ES medians, per quantity and plane.

    ADC per MeV is the slope Σadc / Σ deposited energy over events (as the real "slope").

    Returns:
        {quantity: {plane: {"sim": value, "real": value}}}.
    """
    e = np.asarray(deposited_energy, dtype=float)
    table: dict[str, dict[str, dict[str, float]]] = {}
    for q in REAL_ES_MEDIANS:
        table[q] = {}
        for p in PLANES:
            s = stats[p]
            if q == "adc_per_mev":
                sim = float(s["adc"].sum() / e.sum())
            else:
                key = {"tps_per_event": "tps", "samples_over_threshold": "sot", "adc_per_tp": "pulse_adc",
                       "main_cluster_channels": "main_channels", "main_cluster_ticks": "main_ticks",
                       "main_cluster_share": "main_share", "other_clusters": "other_clusters"}[q]
                sim = float(np.nanmedian(s[key])) if np.isfinite(s[key]).any() else float("nan")
            table[q][p] = {"sim": sim, "real": float(REAL_ES_MEDIANS[q][p])}
    return table
