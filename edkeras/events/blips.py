"""Blips round the event: the other charge clusters on the collection plane near the electron.

A νe capture on ⁴⁰Ar leaves ⁴⁰K in an excited state whose de-excitation γ rays (a few MeV in
all) Compton-scatter 10–30 cm from the vertex; an ES electron has only its own
bremsstrahlung photons. The 128 × 32 image window (10 × 15 cm) misses most of those
blips, so they are counted here over a larger box on the collection plane (X), from trigger
primitives, by the same rules for real and simulated events:

- the X-plane TPs of the event's APA face are clustered (:func:`cluster_tps`, channels within
  2, at most 3 empty ticks between pulses, single-TP clusters kept);
- the main cluster is the electron's (the largest ADC sum, or the one holding the TPs the
  ingest chose);
- a **blip** is any other cluster whose ADC-weighted centre lies within ±``BOX_TICKS`` ticks
  (30 cm of drift) and ±``BOX_CHANNELS`` wires (30 cm) of the main cluster's centre and whose
  charge is at least ``BLIP_MIN_MEV`` (1.0 MeV on the file's calibrated scale). The
  calibration (ADC per MeV of an electron track, averaged over the drift) reads the largest
  ³⁹Ar charge — the 0.565 MeV β end point, deposited at the anode, where no charge is lost to
  attachment — as 0.89 MeV, so the radiological background alone never makes a blip.

Each event gets two numbers, ``blips`` (the count) and ``blip_energy`` (their summed charge
in MeV, with the file's own ADC-per-MeV calibration of X). Real dumps: DUNE's full simulation
shows a median of 0.5 clusters besides the main one on X for ES and 2 for CC
(``physics/REAL_TP_STATS.md``).

Example:
    >>> lab = cluster_tps(np.array([5, 6, 40]), np.array([0, 2, 0]), np.array([3, 5, 4]))
    >>> lab
    array([ 0,  0, -1])
"""

from __future__ import annotations

import numpy as np

__all__ = ["BLIP_MIN_MEV", "BOX_CHANNELS", "BOX_TICKS", "best_per_event", "blip_features", "charge_tps", "cluster_tps"]

BOX_TICKS = 375
"""Half-height of the box round the main cluster, ticks (375 × 0.08 cm = 30 cm of drift)."""
BOX_CHANNELS = 63
"""Half-width of the box, X wires (63 × 0.479 cm = 30 cm)."""
BLIP_MIN_MEV = 1.0
"""Smallest charge of a blip, MeV on the calibrated scale (³⁹Ar reaches at most 0.89 of it)."""
MAX_CHANNEL_GAP = 2
MAX_TIME_GAP = 3


def cluster_tps(
    channel: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
    *,
    period: int | None = None,
    max_channel_gap: int = MAX_CHANNEL_GAP,
    max_time_gap: int = MAX_TIME_GAP,
    min_tps: int = 2,
) -> np.ndarray:
    """Cluster TPs of one plane: connected components of "near in channel and in time".

    Two TPs are neighbours when ``|Δchannel| <= max_channel_gap`` (modulo ``period`` when
    given: the wrapped U/V wires, where channel 799 neighbours 0) and at most
    ``max_time_gap`` empty ticks separate one pulse from the other
    (``max(start) - min(end) <= max_time_gap`` with ``end`` exclusive).

    Args:
        channel: (n,) channel numbers (local to the plane when ``period`` is used).
        start, end: (n,) first tick and one past the last tick of each pulse.
        period: wrap period of the channel numbers, or ``None``.
        max_channel_gap, max_time_gap: neighbour rules.
        min_tps: clusters with fewer TPs are dissolved.

    Returns:
        (n,) int labels 0..k−1 (clusters in order of their first TP in time), −1 for TPs in no cluster.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    channel = np.asarray(channel, dtype=np.int64)
    start = np.asarray(start, dtype=np.int64)
    end = np.asarray(end, dtype=np.int64)
    n = channel.size
    labels = np.full(n, -1, dtype=np.int64)
    if n == 0:
        return labels
    order = np.argsort(start, kind="stable")
    s, e, c = start[order], end[order], channel[order]
    hi = np.searchsorted(s, e + max_time_gap, side="right")
    counts = np.maximum(hi - np.arange(n) - 1, 0)
    ii = np.repeat(np.arange(n), counts)
    jj = ii + 1 + (np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts))
    dc = np.abs(c[ii] - c[jj])
    if period:
        dc = np.minimum(dc % period, period - dc % period)
    keep = dc <= max_channel_gap
    graph = coo_matrix((np.ones(int(keep.sum())), (ii[keep], jj[keep])), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    sizes = np.bincount(comp)
    good = sizes[comp] >= min_tps
    # number clusters by their first TP in time (comp is in sorted order already)
    _, first = np.unique(comp, return_index=True)
    rank = np.full(first.size, -1, dtype=np.int64)
    kept_comps = [k for k in np.argsort(first) if sizes[k] >= min_tps]
    rank[kept_comps] = np.arange(len(kept_comps))
    labels[order] = np.where(good, rank[comp], -1)
    return labels


def best_per_event(owner: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Indices of the highest-scoring cluster of each event that has one (``owner``: each
    cluster's event), in event order; ties go to the lower index."""
    order = np.lexsort((-np.asarray(score), owner))
    return order[np.r_[True, owner[order][1:] != owner[order][:-1]]]


def charge_tps(
    event: np.ndarray, tick: np.ndarray, channel: np.ndarray, charge: np.ndarray, *,
    gain: float, threshold: float, sigma_ticks: float,
) -> dict[str, np.ndarray]:
    """Collection-plane TPs of point charges, with the pulse shape approximated.

    On each (event, channel) the charges are taken in time order; a gap of more than
    2 × ``2σ`` ticks ends one pulse and starts the next. A pulse spans its charges' ticks
    widened by 2σ on each side (where a Gaussian pulse of σ ``sigma_ticks`` stays above
    about 1/8 of its height), its ADC integral is ``gain`` × its charge, and pulses whose
    peak as a single point charge, integral / (√(2π) σ), stays below ``threshold`` are dropped.
    This is what the blip count needs (charges of ≥ 1 MeV lie ~8× above threshold); the
    images of the window are made from full waveforms (:mod:`edkeras.events.sim.tps`).

    Returns:
        ``{"event", "start", "end", "channel", "adc"}`` (end exclusive).
    """
    e = np.asarray(event, dtype=np.int64)
    t = np.asarray(tick, dtype=np.int64)
    c = np.asarray(channel, dtype=np.int64)
    q = np.asarray(charge, dtype=np.float64)
    empty = {k: np.empty(0, dtype=np.int64) for k in ("event", "start", "end", "channel")}
    if e.size == 0:
        return {**empty, "adc": np.empty(0)}
    order = np.lexsort((t, c, e))
    e, t, c, q = e[order], t[order], c[order], q[order]
    w = max(round(2.0 * sigma_ticks), 1)
    new = np.ones(e.size, dtype=bool)
    new[1:] = (e[1:] != e[:-1]) | (c[1:] != c[:-1]) | (t[1:] - t[:-1] > 2 * w)
    starts = np.flatnonzero(new)
    adc = np.add.reduceat(q, starts) * gain
    keep = adc >= threshold * np.sqrt(2.0 * np.pi) * sigma_ticks
    ends = np.append(starts[1:], e.size) - 1
    return {"event": e[starts][keep], "start": (t[starts] - w)[keep], "end": (t[ends] + w + 1)[keep],
            "channel": c[starts][keep], "adc": adc[keep]}


def blip_features(
    event: np.ndarray, start: np.ndarray, end: np.ndarray, channel: np.ndarray, adc: np.ndarray, *,
    n_events: int, adc_per_mev: float, main: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``blips`` and ``blip_energy`` (MeV) of each event from its collection-plane TPs.

    Args:
        event: (m,) event index in [0, n_events) of each TP (one APA face per event).
        start, end: first tick and one past the last of each TP.
        channel: wire number of each TP (consecutive wires differ by 1).
        adc: ADC integral of each TP.
        n_events: events.
        adc_per_mev: the X plane's ADC per MeV of deposited energy.
        main: (m,) bool, the TPs of the electron's cluster, or None (the largest cluster).

    Returns:
        (blips, blip_energy), float32 (n_events,); NaN for an event without any TP.
    """
    n = int(n_events)
    event = np.asarray(event, dtype=np.int64)
    start = np.asarray(start, dtype=np.int64)
    end = np.asarray(end, dtype=np.int64)
    adc = np.asarray(adc, dtype=np.float64)
    blips = np.full(n, np.nan, dtype=np.float32)
    energy = np.full(n, np.nan, dtype=np.float32)
    if event.size == 0:
        return blips, energy
    # events apart in time, so that clusters never join across them
    span = int(end.max() - start.min()) + MAX_TIME_GAP + 2
    t0 = start - start.min() + event * span
    lab = cluster_tps(channel, t0, t0 + (end - start), min_tps=1)
    k = int(lab.max()) + 1
    c_event = np.zeros(k, dtype=np.int64)
    c_event[lab] = event
    c_adc = np.bincount(lab, weights=adc, minlength=k)
    c_tick = np.bincount(lab, weights=adc * 0.5 * (start + end), minlength=k) / np.maximum(c_adc, 1e-12)
    c_chan = np.bincount(lab, weights=adc * channel, minlength=k) / np.maximum(c_adc, 1e-12)
    if main is None:
        score = c_adc
    else:  # the cluster holding most of the chosen TPs' charge
        score = np.bincount(lab, weights=adc * np.asarray(main, dtype=bool), minlength=k)
    best = best_per_event(c_event, score)
    main_of = np.full(n, -1, dtype=np.int64)
    main_of[c_event[best]] = best
    m = main_of[c_event]
    near = ((np.arange(k) != m) & (np.abs(c_tick - c_tick[m]) <= BOX_TICKS)
            & (np.abs(c_chan - c_chan[m]) <= BOX_CHANNELS) & (c_adc >= BLIP_MIN_MEV * adc_per_mev))
    has = main_of >= 0
    blips[has] = np.bincount(c_event[near], minlength=n)[has]
    energy[has] = (np.bincount(c_event[near], weights=c_adc[near], minlength=n) / adc_per_mev)[has]
    return blips, energy
