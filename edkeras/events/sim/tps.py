"""The simulated trigger-primitive maker: waveforms to TPs, as DUNE's hit finder does per channel.

On each channel, every run of consecutive samples at or above the threshold is one TP: its
first tick, samples over threshold, samples from the start to the largest sample, the peak
ADC and the ADC integral (the sum of the samples of the run). DUNE's simple-threshold TP
maker compares the signed, pedestal-subtracted sample with the threshold, so on the
induction planes only the positive lobe of a bipolar pulse makes a TP
(``readout.induction_lobes = "positive"``); the earlier model, TPs of |signal| with the zero
crossing between the lobes bridged, stays available (``"both"``). Noise TPs are added at the
rate measured in the real dumps. The images are then drawn from the TPs by
:mod:`edkeras.events.tpimage`, the code that draws real DUNE events.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["TPs", "find_tps", "noise_tps"]


@dataclass
class TPs:
    """Trigger primitives of a block of events: one entry per TP.

    ``event`` index, ``tick`` (first sample, row of the waveform grid, in time order),
    ``channel`` (column), ``sot``, ``stp``, ``peak``, ``adc`` (integral).
    """

    event: np.ndarray
    tick: np.ndarray
    channel: np.ndarray
    sot: np.ndarray
    stp: np.ndarray
    peak: np.ndarray
    adc: np.ndarray

    def __len__(self) -> int:
        return int(self.event.size)

    @staticmethod
    def concatenate(parts: list[TPs]) -> TPs:
        return TPs(*(np.concatenate([getattr(p, f) for p in parts]) for f in
                     ("event", "tick", "channel", "sot", "stp", "peak", "adc")))


def _bridge(over: np.ndarray, gap: int) -> np.ndarray:
    """``over`` (…, T) with runs of at most ``gap`` False samples between two True ones filled."""
    if gap <= 0:
        return over
    t = over.shape[-1]
    before = np.zeros_like(over)
    after = np.zeros_like(over)
    for k in range(1, gap + 1):
        before[..., k:] |= over[..., : t - k]
        after[..., : t - k] |= over[..., k:]
    return over | (before & after)


def find_tps(signal: np.ndarray, threshold: float | np.ndarray, bridge: int = 0) -> TPs:
    """TPs of waveforms ``signal`` (n, ticks, channels), time running along axis 1.

    Args:
        signal: ADC samples (signed; |signal| for the earlier two-lobe induction model).
        threshold: ADC, one value or one per event (n,).
        bridge: a TP continues across at most this many samples below threshold (the
            zero crossing between the two lobes of |signal|, ``induction_lobes = "both"``).
    """
    n, n_t, n_c = signal.shape
    thr = np.asarray(threshold, dtype=signal.dtype)
    thr = thr.reshape(-1, 1, 1) if thr.ndim else thr
    by_channel = np.ascontiguousarray(signal.transpose(0, 2, 1))  # (n, C, T): runs are contiguous
    over = _bridge(by_channel >= thr, bridge)
    padded = np.zeros((n, n_c, n_t + 2), dtype=np.int8)
    padded[:, :, 1:-1] = over
    step = np.diff(padded, axis=2)
    ev, ch, t0 = np.nonzero(step == 1)
    t1 = np.nonzero(step == -1)[2]
    sot = (t1 - t0).astype(np.int64)
    values = by_channel[over].astype(np.float64)  # same (event, channel, tick) order as the runs
    if sot.size == 0:
        e = np.empty(0, dtype=np.int64)
        return TPs(e, e, e, e, e, np.empty(0), np.empty(0))
    offsets = np.cumsum(sot) - sot
    adc = np.add.reduceat(values, offsets)
    peak = np.maximum.reduceat(values, offsets)
    owner = np.repeat(np.arange(sot.size), sot)
    # the first sample within 1e-3 ADC of the peak: the two lobes of |signal| (induction_lobes
    # "both") are equally high, and float rounding must not decide which one holds the peak
    at_peak = np.flatnonzero(values >= peak[owner] - 1e-3)
    _, first = np.unique(owner[at_peak], return_index=True)
    stp = at_peak[first] - offsets
    return TPs(ev.astype(np.int64), t0.astype(np.int64), ch.astype(np.int64), sot, stp.astype(np.int64), peak, adc)


def noise_tps(rng: np.random.Generator, n_events: int, n_ticks: int, n_channels: int, rate: float,
              threshold: float | np.ndarray, p_more: float = 0.1) -> TPs:
    """Noise TPs, Poisson with ``rate`` per channel and tick over each event's grid.

    Their samples over threshold are 1 + a geometric count with P(≥ 2) = ``p_more`` (the
    real median is 1; those are dropped before drawing), the peak ``threshold`` + an
    exponential of 10 ADC.
    """
    counts = rng.poisson(rate * n_ticks * n_channels, size=n_events)
    m = int(counts.sum())
    event = np.repeat(np.arange(n_events, dtype=np.int64), counts)
    tick = rng.integers(0, n_ticks, size=m)
    channel = rng.integers(0, n_channels, size=m)
    sot = rng.geometric(1.0 - p_more, size=m).astype(np.int64)
    thr = np.asarray(threshold, dtype=np.float64)
    thr = thr[event] if thr.ndim else np.full(m, float(thr))
    peak = thr + rng.exponential(10.0, size=m)
    stp = (rng.random(m) * sot).astype(np.int64)
    adc = 0.5 * (peak + thr) * sot
    return TPs(event, tick, channel, sot, stp, peak, adc)
