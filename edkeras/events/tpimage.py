"""Trigger primitives to images: the one imaging path of real and simulated events.

A trigger primitive (TP) is one pulse above threshold on one wire: first tick, samples over
threshold (``sot``), samples to peak (``stp``), peak ADC and ADC integral. DUNE's TP maker
writes them; :mod:`edkeras.events.tpstream` reads them from DUNE dumps and
:mod:`edkeras.events.sim.tps` makes them from simulated waveforms. Both then draw the images here,
so simulated and real events differ only in physics and detector response, never in how a
pixel is made.

Every TP is drawn as a "pentagon" pulse (flat base at the threshold, linear rise to the peak
sample, linear fall back; :func:`pulse_samples`), scaled so that its pixel sum equals its
ADC integral. TPs with fewer than :data:`MIN_SOT` samples over threshold are dropped first
(the public pipeline's rule: noise TPs have one sample).
"""

from __future__ import annotations

import numpy as np

__all__ = ["MIN_SOT", "THRESHOLD_ADC", "draw_tp_images", "draw_tps", "pulse_samples", "time_centres"]

THRESHOLD_ADC: dict[str, float] = {"U": 70.0, "V": 70.0, "X": 60.0}
"""TP-maker thresholds per readout plane (REAL_TP_STATS.md): the base of the pentagon pulse."""

MIN_SOT = 2
"""TPs with fewer samples over threshold are not drawn (noise TPs have 1)."""


def pulse_samples(
    sot: np.ndarray, stp: np.ndarray, peak: np.ndarray, integral: np.ndarray, threshold: float | np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw TPs as "pentagon" pulses whose sample sum equals ``adc_integral``.

    The pentagon has a flat base at ``threshold``, rises linearly to ``adc_peak`` at sample
    ``samples_to_peak`` and falls linearly back to ``threshold`` at the end of the pulse
    (vertices (0, 0), (0, thr), (stp + ½, peak), (sot, thr), (sot, 0)); sample k takes the
    value at its centre k + ½, and the samples are then scaled to sum to the integral
    (so pixel sums equal ADC sums exactly). A one-sample pulse is a single value.

    Args:
        sot, stp, peak, integral: per-TP samples over threshold, samples to peak, peak ADC,
            ADC integral.
        threshold: base of the pentagon, ADC (a scalar, or one value per TP).

    Returns:
        ``(owner, k, value)``: for every sample, the TP it belongs to, its index in the pulse
        (0 = first tick) and its ADC value.
    """
    sot = np.maximum(np.asarray(sot, dtype=np.int64), 1)
    n = sot.size
    owner = np.repeat(np.arange(n), sot)
    first = np.cumsum(sot) - sot
    k = np.arange(owner.size) - first[owner]
    s = sot[owner].astype(np.float64)
    p = np.clip(np.asarray(stp, dtype=np.float64)[owner], 0, s - 1) + 0.5
    c = k + 0.5
    tri = np.where(c <= p, c / p, (s - c) / np.maximum(s - p, 0.5))
    thr = np.asarray(threshold, dtype=np.float64)
    thr = thr[owner] if thr.ndim else thr
    height = np.maximum(np.asarray(peak, dtype=np.float64)[owner] - thr, 0.0)
    value = thr + height * np.clip(tri, 0.0, 1.0)
    total = np.bincount(owner, weights=value, minlength=n)
    integral = np.asarray(integral, dtype=np.float64)
    scale = np.divide(integral, total, out=np.zeros(n), where=total > 0)
    return owner, k, value * scale[owner]


def time_centres(group: np.ndarray, n_groups: int, tick: np.ndarray, sot: np.ndarray, stp: np.ndarray,
                 peak: np.ndarray, adc: np.ndarray, threshold: float | np.ndarray) -> np.ndarray:
    """Charge-weighted mean time of groups of TPs (clusters), in ticks; NaN for an empty group.

    Each TP is spread over its samples as it is drawn (:func:`pulse_samples`); sample k of a
    TP that starts at tick t counts at t + k + ½. The ingest centres a real event's window on
    its clusters this way, and the simulation centres its windows by the same rule.

    Args:
        group: (n,) group index of each TP, in [0, n_groups).
        n_groups: number of groups.
        tick, sot, stp, peak, adc: the TPs; threshold: pentagon base (scalar or per TP).
    """
    group = np.asarray(group, dtype=np.int64)
    adc = np.asarray(adc, dtype=np.float64)
    owner, k, value = pulse_samples(sot, stp, peak, adc, threshold)
    within = np.bincount(owner, weights=value * (k + 0.5), minlength=group.size)
    num = np.bincount(group, weights=np.asarray(tick, dtype=np.float64) * adc + within, minlength=n_groups)
    den = np.bincount(group, weights=adc, minlength=n_groups)
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def draw_tp_images(
    event: np.ndarray,
    tick: np.ndarray,
    column: np.ndarray,
    sot: np.ndarray,
    stp: np.ndarray,
    peak: np.ndarray,
    adc: np.ndarray,
    *,
    n_events: int,
    tick_origin: np.ndarray | int,
    row_step: np.ndarray | int,
    shape: tuple[int, int],
    threshold: float | np.ndarray,
    min_sot: int = MIN_SOT,
) -> np.ndarray:
    """Images (n_events, T, C) of many events' TPs; samples outside a window are dropped.

    Args:
        event: (n,) event index of each TP, in [0, n_events).
        tick: first tick of each pulse; ``column``: its column (may fall outside the window).
        sot, stp, peak, adc: the TP's samples over threshold, samples to peak, peak and integral.
        tick_origin: tick of row 0, per event (or one for all).
        row_step: +1 (row = tick − origin) or −1 (row = origin − tick, time running against
            +x), per event (or one for all).
        shape: (T, C); threshold: pentagon base, ADC (scalar or per TP).
        min_sot: TPs with fewer samples over threshold are not drawn.
    """
    n_t, n_c = shape
    out = np.zeros(int(n_events) * n_t * n_c, dtype=np.float64)
    sot = np.asarray(sot, dtype=np.int64)
    keep = sot >= min_sot
    if keep.any():
        event = np.asarray(event, dtype=np.int64)[keep]
        thr = np.asarray(threshold, dtype=np.float64)
        thr = thr[keep] if thr.ndim else thr
        owner, k, value = pulse_samples(sot[keep], np.asarray(stp)[keep], np.asarray(peak)[keep],
                                        np.asarray(adc)[keep], thr)
        ev = event[owner]
        t = np.asarray(tick, dtype=np.int64)[keep][owner] + k
        origin = np.broadcast_to(np.asarray(tick_origin, dtype=np.int64), (int(n_events),))
        step = np.broadcast_to(np.asarray(row_step, dtype=np.int64), (int(n_events),))
        row = (t - origin[ev]) * step[ev]
        col = np.asarray(column, dtype=np.int64)[keep][owner]
        ok = (row >= 0) & (row < n_t) & (col >= 0) & (col < n_c)
        flat = (ev[ok] * n_t + row[ok]) * n_c + col[ok]
        out += np.bincount(flat, weights=value[ok], minlength=out.size)
    return out.reshape(int(n_events), n_t, n_c).astype(np.float32)


def draw_tps(
    tick: np.ndarray,
    column: np.ndarray,
    sot: np.ndarray,
    stp: np.ndarray,
    peak: np.ndarray,
    adc: np.ndarray,
    *,
    tick_origin: int,
    row_step: int,
    shape: tuple[int, int],
    threshold: float,
    min_sot: int = 1,
) -> np.ndarray:
    """Image (T, C) of one event's TPs (:func:`draw_tp_images` for a single event)."""
    tick = np.asarray(tick)
    return draw_tp_images(np.zeros(tick.size, dtype=np.int64), tick, column, sot, stp, peak, adc, n_events=1,
                          tick_origin=tick_origin, row_step=row_step, shape=shape, threshold=threshold,
                          min_sot=min_sot)[0]
