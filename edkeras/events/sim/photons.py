"""Photon transport in liquid argon: bremsstrahlung and de-excitation γ become blips.

Method notes: ``docs/methods.md``, section ``edkeras.events.sim.photons``.
"""

from __future__ import annotations

import numpy as np

from edkeras.core.sphere import deflect, isotropic
from edkeras.events.sim.config import TransportConfig
from edkeras.events.sim.tables import ELECTRON_MASS, attenuation_length, csda_range, pair_fraction
from edkeras.events.sim.transport import Deposits, Electrons, Photons, point_dedx

__all__ = ["PHOTO_ABSORPTION_MEV", "emit_isotropic", "sample_klein_nishina", "transport_photons"]

PHOTO_ABSORPTION_MEV = 0.1
"""Photons below this energy are absorbed where they interact."""


def emit_isotropic(rng: np.random.Generator, event: np.ndarray, energy: np.ndarray, vertex: np.ndarray) -> Photons:
    """Photons of ``energy`` from the vertices of their events, isotropic (de-excitation γ)."""
    n = energy.size
    return Photons(event.astype(np.int64), vertex[event].astype(np.float64), isotropic(rng, n), energy.astype(np.float64))


def sample_klein_nishina(rng: np.random.Generator, e: np.ndarray) -> np.ndarray:
    """Draw ε = E′/E of Compton scattering at photon energies ``e`` (MeV)."""
    kappa = e / ELECTRON_MASS
    eps0 = 1.0 / (1.0 + 2.0 * kappa)
    a1 = -np.log(eps0)
    a2 = 0.5 * (1.0 - eps0**2)
    eps = np.empty_like(e)
    todo = np.arange(e.size)
    while todo.size:
        r = rng.random((3, todo.size))
        e0, k, l1, l2 = eps0[todo], kappa[todo], a1[todo], a2[todo]
        first = r[0] * (l1 + l2) < l1
        ee = np.where(first, np.exp(-l1 * r[1]), np.sqrt(e0**2 + (1.0 - e0**2) * r[1]))
        onecost = (1.0 - ee) / (k * ee)
        sint2 = onecost * (2.0 - onecost)
        g = 1.0 - ee * sint2 / (1.0 + ee**2)
        ok = r[2] <= g
        eps[todo[ok]] = ee[ok]
        todo = todo[~ok]
    return eps


def transport_photons(
    photons: Photons, rng: np.random.Generator, config: TransportConfig, max_interactions: int = 30
) -> tuple[Deposits, Electrons]:
    """Follow photons until they are absorbed (or have interacted ``max_interactions`` times).

    Returns:
        (on-the-spot deposits, electrons above ``secondary_cut_mev`` to transport).
    """
    if len(photons) == 0:
        return Deposits.empty(), Electrons.empty()
    ev = photons.event.astype(np.int64)
    pos = photons.pos.astype(np.float64).copy()
    d = photons.dir.astype(np.float64).copy()
    e = photons.energy.astype(np.float64).copy()
    deps: list[Deposits] = []
    elec: list[Electrons] = []

    def _spot(evs: np.ndarray, where: np.ndarray, energy: np.ndarray) -> None:
        deps.append(Deposits(evs, where, energy, point_dedx(energy), np.zeros(energy.size, dtype=bool)))

    def _electrons(evs: np.ndarray, where: np.ndarray, dirs: np.ndarray, energy: np.ndarray) -> None:
        fast = energy >= config.secondary_cut_mev
        if fast.any():
            elec.append(Electrons(evs[fast], where[fast], dirs[fast], energy[fast]))
        if (~fast).any():
            _spot(evs[~fast], where[~fast], energy[~fast])

    for _ in range(max_interactions):
        if e.size == 0:
            break
        pos = pos + d * rng.exponential(attenuation_length(e))[:, None]
        u = rng.random(e.size)
        absorb = e < PHOTO_ABSORPTION_MEV
        pair = (~absorb) & (e > 2 * ELECTRON_MASS) & (u < pair_fraction(e))
        compton = ~(absorb | pair)
        if absorb.any():
            _spot(ev[absorb], pos[absorb], e[absorb])
        new_ph: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        if pair.any():
            kin = e[pair] - 2 * ELECTRON_MASS
            share = rng.random(kin.size)
            for part in (share, 1.0 - share):
                _electrons(ev[pair], pos[pair], d[pair], kin * part)
            # annihilation of the positron (the second share) where its range ends
            end = pos[pair] + d[pair] * (0.6 * csda_range(np.maximum(kin * (1.0 - share), 1e-3)))[:, None]
            back = isotropic(rng, kin.size)
            m = ev[pair]
            new_ph.append((np.concatenate([m, m]), np.concatenate([end, end]), np.concatenate([back, -back]),
                           np.full(2 * kin.size, ELECTRON_MASS)))
        if compton.any():
            sel = np.flatnonzero(compton)
            eg = e[sel]
            eps = sample_klein_nishina(rng, eg)
            cos_g = 1.0 - (1.0 - eps) / (eg / ELECTRON_MASS * eps)
            d_new = deflect(d[sel], cos_g, rng.uniform(0, 2 * np.pi, sel.size))
            p_e = eg[:, None] * d[sel] - (eg * eps)[:, None] * d_new
            norm = np.linalg.norm(p_e, axis=1, keepdims=True)
            d_e = np.where(norm > 0, p_e / np.maximum(norm, 1e-300), d[sel])
            _electrons(ev[sel], pos[sel], d_e, eg * (1.0 - eps))
            d[sel] = d_new
            e[sel] = eg * eps
        keep = compton
        ev, pos, d, e = ev[keep], pos[keep], d[keep], e[keep]
        for a_ev, a_pos, a_d, a_e in new_ph:
            ev, pos = np.concatenate([ev, a_ev]), np.concatenate([pos, a_pos])
            d, e = np.concatenate([d, a_d]), np.concatenate([e, a_e])
    if e.size:  # photons still alive after max_interactions: absorb (negligible energy)
        _spot(ev, pos, e)
    return Deposits.concatenate(deps), Electrons.concatenate(elec)
