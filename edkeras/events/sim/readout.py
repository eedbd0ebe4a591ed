"""From energy deposits to trigger-primitive-like images on the U, V and X planes.

Method notes: ``docs/methods.md``, section ``edkeras.events.sim.readout``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft
from scipy.special import ndtr

from edkeras.core.detector import DRIFT_PER_TICK, PITCH, PLANES, plane_unit_vector
from edkeras.events.blips import MAX_TIME_GAP, best_per_event, blip_features, charge_tps, cluster_tps
from edkeras.events.sim.config import ReadoutConfig, SimConfig
from edkeras.events.sim.tables import W_ION_MEV
from edkeras.events.sim.tps import TPs, find_tps, noise_tps
from edkeras.events.sim.transport import Deposits
from edkeras.events.tpimage import MIN_SOT, draw_tp_images, time_centres

__all__ = ["Charges", "collection_blips", "drift_charge", "mirror_charges", "read_out", "recombination", "response_factors"]


@dataclass
class Charges:
    """Drifted ionisation charge: event index, position (cm), electrons reaching the anode,
    and whether the primary electron made it."""

    event: np.ndarray
    pos: np.ndarray
    electrons: np.ndarray
    primary: np.ndarray

    def __len__(self) -> int:
        return int(self.electrons.shape[0])


def recombination(dedx: np.ndarray, config: ReadoutConfig) -> np.ndarray:
    """Surviving fraction of ionisation electrons, modified box model, at dE/dx (MeV/cm)."""
    xi = config.recombination_beta_cm_per_mev * np.maximum(dedx, config.min_dedx_mev_per_cm)
    if config.recombination_beta_cm_per_mev == 0:
        return np.ones_like(xi)
    return np.log(config.recombination_alpha + xi) / xi


def drift_charge(deposits: Deposits, config: ReadoutConfig) -> Charges:
    """Electrons from each deposit that reach the anode (recombination and lifetime)."""
    t_us = np.abs(deposits.pos[:, 0]) / config.drift_velocity_cm_per_us
    n_e = deposits.energy / W_ION_MEV * recombination(deposits.dedx, config) * np.exp(-t_us / config.electron_lifetime_us)
    return Charges(deposits.event, deposits.pos, n_e, deposits.primary)


def mirror_charges(charges: Charges, flip_x: bool, flip_y: bool, flip_z: bool) -> Charges:
    """The same charges reflected in x, y and/or z (the mirror test's 3-D operation)."""
    sign = np.array([-1.0 if flip_x else 1.0, -1.0 if flip_y else 1.0, -1.0 if flip_z else 1.0])
    return Charges(charges.event, charges.pos * sign, charges.electrons, charges.primary)


def _event_centre(ev: np.ndarray, coord: np.ndarray, w_primary: np.ndarray, w_all: np.ndarray, n: int) -> np.ndarray:
    """Charge-weighted mean of ``coord`` per event (primary charge; all charge as fallback)."""
    wp = np.bincount(ev, weights=w_primary, minlength=n)
    wa = np.bincount(ev, weights=w_all, minlength=n)
    cp = np.bincount(ev, weights=w_primary * coord, minlength=n)
    ca = np.bincount(ev, weights=w_all * coord, minlength=n)
    return np.where(wp > 0, cp / np.where(wp > 0, wp, 1.0), np.where(wa > 0, ca / np.where(wa > 0, wa, 1.0), 0.0))


def _negative_side(charges: Charges, n: int) -> np.ndarray:
    """Per event: whether its charge centre lies at x < 0 (read by the APA face looking to −x,
    where time runs along −x)."""
    ev, q = charges.event.astype(np.int64), charges.electrons
    return _event_centre(ev, charges.pos[:, 0], q * charges.primary, q, n) < 0


def _window_rows(tps: TPs, n: int, thr: np.ndarray, side: np.ndarray, grid_rows: int, n_t: int) -> np.ndarray:
    """Per event, the first grid row of the plane's window: centred on its largest TP cluster.

    The rule of the ingest of real events (:mod:`edkeras.events.tp_ingest`): TPs with at
    least ``MIN_SOT`` samples are clustered by the neighbour rules of
    :func:`edkeras.events.blips.cluster_tps`, and the window is centred on the charge-weighted
    time (:func:`edkeras.events.tpimage.time_centres`) of the cluster with the largest ADC
    sum, each plane on its own. (An induction TP holds only the positive lobe, which comes
    before the charge passes the wire: a window centred on the charge would show U and V
    displaced from X, real ones do not.) Rows of the grid run along +x; ``tps.tick`` runs
    along time, against the rows on the −x side. Events without a cluster keep the window
    centred on the grid; a centre is never moved by more than the grid's margins.
    """
    margin2 = grid_rows - n_t
    row0 = np.full(n, margin2 // 2, dtype=np.int64)
    keep = np.flatnonzero(tps.sot >= MIN_SOT)
    if keep.size == 0:
        return row0
    # each event on a time span of its own: TPs of different events never neighbour, and the
    # search for neighbours in time stays within one event
    end = tps.tick[keep] + tps.sot[keep]
    shift = tps.event[keep] * (int(end.max()) + MAX_TIME_GAP + 1)
    labels = cluster_tps(tps.channel[keep], tps.tick[keep] + shift, end + shift)
    inside = labels >= 0
    if not inside.any():
        return row0
    sel, lab = keep[inside], labels[inside]
    k = int(lab.max()) + 1
    adc = np.bincount(lab, weights=tps.adc[sel], minlength=k)
    owner = np.zeros(k, dtype=np.int64)
    owner[lab] = tps.event[sel]
    first = best_per_event(owner, adc)  # per event, its largest cluster
    tc = time_centres(lab, k, tps.tick[sel], tps.sot[sel], tps.stp[sel], tps.peak[sel], tps.adc[sel],
                      thr[tps.event[sel]])[first]
    e = owner[first]
    centre = np.where(side[e], grid_rows - tc, tc)  # in grid rows (pixel centres at row + ½)
    row0[e] = np.clip(np.rint(centre - n_t / 2.0).astype(np.int64), 0, margin2)  # mirror-symmetric for odd n_t too
    return row0


def response_factors(config: SimConfig, n_events: int, rng: np.random.Generator | None
                     ) -> dict[str, np.ndarray]:
    """Per-plane, per-event factors (3, n) on the gain, threshold and shaping width.

    Each is exp(σ·N(0, 1)) with σ from ``config.response`` (log-normal, median 1), drawn
    independently for U, V and X; all ones when the spreads are 0.
    """
    spread = config.response
    out = {}
    for name in ("gain", "threshold", "shaping"):
        sigma = getattr(spread, f"{name}_sigma")
        if sigma > 0:
            if rng is None:
                raise ValueError(f"read_out: response.{name}_sigma > 0 needs a response_rng")
            out[name] = np.exp(sigma * rng.standard_normal((3, n_events)))
        else:
            out[name] = np.ones((3, n_events))
    return out


def read_out(
    charges: Charges,
    n_events: int,
    config: SimConfig,
    noise_rng: np.random.Generator | None = None,
    response_rng: np.random.Generator | None = None,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Images of a block of events and their window origins.

    Args:
        charges: drifted charge of all events (``event`` in [0, n_events)).
        n_events: events in the block.
        config: image shape, readout constants and noise.
        noise_rng: random stream for the electronics noise and the noise TPs (needed when
            ``config.noise_adc`` > 0 or a noise-TP rate is set).
        response_rng: random stream for the per-event detector response
            (``config.response``; needed when any of its spreads is > 0).

    Returns:
        ({"U", "V", "X"}: float32 (n, T, C) ADC images ≥ 0, window_origin int32 (n, 3, 2)).
    """
    rc = config.readout
    n_t, n_c = config.image_shape
    n = int(n_events)
    ev = charges.event.astype(np.int64)
    q = charges.electrons
    qp = q * charges.primary
    x = charges.pos[:, 0]
    u = x / DRIFT_PER_TICK

    # Drift-dependent diffusion (per deposit for the transverse sharing, per event in time).
    t_s = np.abs(x) / rc.drift_velocity_cm_per_us * 1e-6
    sigma_t_cm = np.sqrt(2.0 * rc.diffusion_trans_cm2_per_s * t_s)
    ev_abs_x = _event_centre(ev, np.abs(x), qp, q, n)
    sigma_l_ticks = np.sqrt(2.0 * rc.diffusion_long_cm2_per_s * ev_abs_x / rc.drift_velocity_cm_per_us * 1e-6) / DRIFT_PER_TICK
    side = _negative_side(charges, n)  # time runs along −x for these events

    c_row = _event_centre(ev, u, qp, q, n)
    origin_row = np.rint(c_row - n_t / 2.0).astype(np.int64)
    sig_max = max(rc.shaping_collection_ticks, rc.shaping_induction_ticks)
    sig_max = float(np.sqrt(sig_max**2 + (sigma_l_ticks.max() if n else 0.0) ** 2))
    margin = int(np.ceil(5.0 * sig_max)) + 1
    length = scipy.fft.next_fast_len(n_t + 2 * margin, real=True)
    row = np.floor(u).astype(np.int64) - origin_row[ev] + margin
    grid_rows = n_t + 2 * margin  # the window and its margins: mirror-symmetric about the window
    in_rows = (row >= 0) & (row < grid_rows)  # charge beyond would break the x mirror of long TPs

    freq = scipy.fft.rfftfreq(length)
    factors = response_factors(config, n, response_rng)
    images: dict[str, np.ndarray] = {}
    origin = np.zeros((n, 3, 2), dtype=np.int64)
    for ip, plane in enumerate(PLANES):
        v = charges.pos @ plane_unit_vector(plane) / PITCH[plane]
        c_col = _event_centre(ev, v, qp, q, n)
        origin_col = np.rint(c_col - n_c / 2.0).astype(np.int64)
        origin[:, ip, 1] = origin_col
        j = np.floor(v)
        sv = np.maximum(sigma_t_cm / PITCH[plane], 1e-9)
        lo = ndtr((j - v) / sv)  # share below the wire's lower edge → wire j − 1
        hi = ndtr((j + 1.0 - v) / sv)  # share below the upper edge
        col0 = j.astype(np.int64) - origin_col[ev]
        flats, weights = [], []
        for dcol, share in ((-1, lo), (0, hi - lo), (1, 1.0 - hi)):
            col = col0 + dcol
            ok = in_rows & (col >= 0) & (col < n_c)
            flats.append((ev[ok] * length + row[ok]) * n_c + col[ok])
            weights.append(q[ok] * share[ok])
        grid = np.bincount(np.concatenate(flats), weights=np.concatenate(weights), minlength=n * length * n_c)
        grid = grid.reshape(n, length, n_c).astype(np.float32)

        collection = plane == "X"
        sig_shape = (rc.shaping_collection_ticks if collection else rc.shaping_induction_ticks) * factors["shaping"][ip]
        sig = np.sqrt(sig_shape**2 + sigma_l_ticks**2)[:, None]
        h = np.exp(-2.0 * np.pi**2 * freq[None, :] ** 2 * sig**2)
        if not collection:
            h = h * (2j * np.pi * freq[None, :] * sig)
        h = np.where(side[:, None], np.conj(h), h).astype(np.complex64)  # reversed time response on the −x side
        spec = scipy.fft.rfft(grid, axis=1)
        wave = scipy.fft.irfft(spec * h[:, :, None], n=length, axis=1)[:, :grid_rows, :]
        gain = (rc.gain_collection if collection else rc.gain_induction) * factors["gain"][ip]
        adc = wave * gain.astype(np.float32)[:, None, None]
        if config.noise_adc > 0:
            if noise_rng is None:
                raise ValueError("read_out: noise_adc > 0 needs a noise_rng")
            adc = adc + noise_rng.standard_normal(adc.shape, dtype=np.float32) * np.float32(config.noise_adc)
        both_lobes = not collection and rc.induction_lobes == "both"
        if both_lobes:
            adc = np.abs(adc)
        # the TP maker runs along time: on the −x side time runs against the rows
        adc[side] = adc[side, ::-1]
        thr = (rc.threshold_collection if collection else rc.threshold_induction) * factors["threshold"][ip]
        tps = find_tps(adc, thr, bridge=rc.induction_bridge_ticks if both_lobes else 0)
        rate = rc.noise_tp_rate_collection if collection else rc.noise_tp_rate_induction
        if rate > 0:
            if noise_rng is None:
                raise ValueError("read_out: noise TPs (readout.noise_tp_rate_*) need a noise_rng")
            tps = TPs.concatenate([tps, noise_tps(noise_rng, n, grid_rows, n_c, rate, thr)])
        row0 = _window_rows(tps, n, thr, side, grid_rows, n_t)
        origin[:, ip, 0] = origin_row + row0 - margin
        # grid row g is tick g on the +x side and tick grid_rows − 1 − g on the −x side
        images[plane] = draw_tp_images(tps.event, tps.tick, tps.channel, tps.sot, tps.stp, tps.peak, tps.adc,
                                       n_events=n, tick_origin=np.where(side, grid_rows - 1 - row0, row0),
                                       row_step=np.where(side, -1, 1), shape=(n_t, n_c), threshold=thr[tps.event])
    return images, origin.astype(np.int32)


def collection_blips(charges: Charges, n_events: int, config: SimConfig) -> tuple[np.ndarray, np.ndarray]:
    """``blips`` and ``blip_energy`` of each event from its drifted charge (:mod:`edkeras.events.blips`).

    The charge on the event's side of the anode (the APA face that reads it) becomes
    collection-plane TPs by :func:`edkeras.events.blips.charge_tps` (wire = floor(w_X / pitch),
    tick = floor(|x| / 0.08 cm), the collection gain, threshold and shaping width), which
    :func:`edkeras.events.blips.blip_features` clusters as it does real TPs. The ³⁹Ar decays
    are drawn over the window's time span only; alone they never reach a blip's 1 MeV.
    """
    rc = config.readout
    n = int(n_events)
    ev = charges.event.astype(np.int64)
    q = charges.electrons
    x = charges.pos[:, 0]
    side = _negative_side(charges, n)
    same = (x < 0) == side[ev]
    tick = np.floor(np.abs(x[same]) / DRIFT_PER_TICK)
    wire = np.floor(charges.pos[same] @ plane_unit_vector("X") / PITCH["X"])
    tps = charge_tps(ev[same], tick, wire, q[same], gain=rc.gain_collection, threshold=rc.threshold_collection,
                     sigma_ticks=rc.shaping_collection_ticks)
    return blip_features(tps["event"], tps["start"], tps["end"], tps["channel"], tps["adc"], n_events=n,
                         adc_per_mev=rc.reco_adc_per_mev)
