"""Neutrino interactions that make a supernova electron: ν–e scattering and νe capture on ⁴⁰Ar.

Method notes: ``docs/methods.md``, section ``edkeras.events.sim.interactions``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edkeras.core.errors import InputError
from edkeras.core.sphere import deflect, isotropic, normalise
from edkeras.events.sim.config import SimConfig
from edkeras.events.sim.spectrum import sample_energy
from edkeras.events.sim.tables import ELECTRON_MASS

__all__ = [
    "CC_LEVELS",
    "CC_Q_MEV",
    "K40_GAMMAS",
    "Interactions",
    "cc_angle_cos",
    "es_cos_theta",
    "es_dsigma_dt",
    "es_total",
    "sample_interactions",
]

SIN2_W = 0.231
G_L = 0.5 + SIN2_W
G_R = SIN2_W

CC_Q_MEV = 1.504
"""T_e = E_ν − CC_Q_MEV − E_x for νe ⁴⁰Ar → e⁻ ⁴⁰K* (REFERENCE.md)."""

CC_LEVELS: tuple[tuple[float, float, str], ...] = (
    (4.384, 4.00, "F"),
    (2.290, 1.64, "GT"),
    (2.730, 1.49, "GT"),
    (3.840, 0.44, "GT"),
    (4.508, 0.86, "GT"),
    (7.952, 0.97, "GT"),
)
"""(E_x MeV, strength B(F) or B(GT), type) of the ⁴⁰K levels reached (REFERENCE.md)."""

K40_GAMMAS: dict[float, tuple[tuple[float, float, float], ...]] = {
    0.800: ((0.770, 1.0, 0.030),),
    0.891: ((0.891, 1.0, 0.0),),
    1.644: ((1.614, 0.804, 0.030), (0.843, 0.196, 0.800)),
    1.959: ((1.159, 0.823, 0.800), (1.929, 0.177, 0.030)),
    2.047: ((1.247, 0.403, 0.800), (2.018, 0.300, 0.030), (2.047, 0.297, 0.0)),
    2.104: ((1.304, 0.28, 0.800), (2.074, 0.72, 0.030)),
    2.290: ((0.646, 0.563, 1.644), (1.490, 0.326, 0.800), (0.331, 0.079, 1.959), (0.186, 0.032, 2.104)),
    2.419: ((1.619, 0.76, 0.800), (2.389, 0.24, 0.030)),
    2.730: ((1.087, 0.841, 1.644), (0.311, 0.101, 2.419), (1.930, 0.058, 0.800)),
    3.840: ((3.040, 0.42, 0.800), (1.881, 0.34, 1.959), (2.197, 0.24, 1.644)),
    4.384: ((2.094, 0.758, 2.290), (1.653, 0.242, 2.730)),
    4.508: ((3.708, 0.664, 0.800), (2.461, 0.124, 2.047), (2.404, 0.113, 2.104), (2.864, 0.099, 1.644)),
}
"""⁴⁰K level (MeV) → γ branches (E_γ, branching, final level); levels not listed emit nothing."""

_MAX_PROPOSALS_PER_EVENT = 20_000

_APA_Y = (-303.0, 303.0)
_APA_Z = (0.0, 231.6)


@dataclass
class Interactions:
    """Sampled primary vertices of a block of events (per-event arrays of length n).

    ``gamma_event``/``gamma_energy`` list the de-excitation photons (any number per event).
    """

    interaction: np.ndarray
    nu_energy: np.ndarray
    nu_direction: np.ndarray
    energy: np.ndarray
    direction: np.ndarray
    vertex: np.ndarray
    excitation: np.ndarray
    gamma_event: np.ndarray
    gamma_energy: np.ndarray

    def __len__(self) -> int:
        return int(self.energy.shape[0])


def es_dsigma_dt(t: np.ndarray, e_nu: np.ndarray) -> np.ndarray:
    """dσ/dT of ν_e–e scattering in units of 2G_F² m_e/π (zero above T_max)."""
    t = np.asarray(t, dtype=np.float64)
    e_nu = np.asarray(e_nu, dtype=np.float64)
    tmax = 2.0 * e_nu**2 / (ELECTRON_MASS + 2.0 * e_nu)
    v = G_L**2 + G_R**2 * (1.0 - t / e_nu) ** 2 - G_L * G_R * ELECTRON_MASS * t / e_nu**2
    return np.where((t >= 0) & (t <= tmax), v, 0.0)


def es_total(e_nu: np.ndarray, t_lo: float, t_hi: float) -> np.ndarray:
    """∫ dσ/dT dT over T in [t_lo, min(t_hi, T_max)], in units of 2G_F² m_e/π · MeV."""
    e = np.asarray(e_nu, dtype=np.float64)
    tmax = 2.0 * e**2 / (ELECTRON_MASS + 2.0 * e)
    a = np.full_like(e, t_lo)
    b = np.minimum(t_hi, tmax)
    ok = b > a
    b = np.where(ok, b, a)
    val = (
        G_L**2 * (b - a)
        + G_R**2 * e / 3.0 * ((1.0 - a / e) ** 3 - (1.0 - b / e) ** 3)
        - G_L * G_R * ELECTRON_MASS * (b**2 - a**2) / (2.0 * e**2)
    )
    return np.where(ok, val, 0.0)


def es_cos_theta(t: np.ndarray, e_nu: np.ndarray) -> np.ndarray:
    """Cosine of the ES electron angle to the neutrino: (1 + m_e/E)·√(T/(T + 2m_e)), clipped to 1."""
    c = (1.0 + ELECTRON_MASS / e_nu) * np.sqrt(t / (t + 2.0 * ELECTRON_MASS))
    return np.clip(c, -1.0, 1.0)


def cc_angle_cos(rng: np.random.Generator, a: np.ndarray) -> np.ndarray:
    """Draw cos θ from (1 + a cos θ)/2 on [−1, 1] by inverting its CDF (|a| ≤ 1)."""
    u = rng.random(a.shape[0])
    safe = np.abs(a) > 1e-6
    a_s = np.where(safe, a, 1.0)
    # a c²/4 + c/2 + (1/2 − a/4 − u) = 0
    disc = 0.25 - a_s * (0.5 - a_s / 4.0 - u)
    c = (-0.5 + np.sqrt(np.maximum(disc, 0.0))) / (a_s / 2.0)
    return np.clip(np.where(safe, c, 2.0 * u - 1.0), -1.0, 1.0)


def _proposals(n_missing: int, accepted: int, tried: int, n: int, config: SimConfig, what: str) -> int:
    """How many neutrino energies to propose next; refuse a window the spectrum hardly reaches."""
    if tried > _MAX_PROPOSALS_PER_EVENT * max(n, 50):
        lo, hi = config.energy_range_mev
        raise InputError(
            f"energy_range_mev [{lo}, {hi}]: the {what} spectrum (mean_energy_mev {config.mean_energy_mev}, "
            f"pinch_alpha {config.pinch_alpha}) puts a share < {max(accepted, 1) / tried:.1e} of its events "
            "there; widen the window, raise mean_energy_mev, or use the particle gun"
        )
    rate = (accepted + 1) / (tried + 1)
    return int(min(max(2 * n_missing / rate, 64), 1_000_000))


def _vertices(rng: np.random.Generator, n: int, config: SimConfig) -> np.ndarray:
    lo, hi = config.readout.drift_range_cm
    side = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    x = side * rng.uniform(lo, hi, n)
    y = rng.uniform(*_APA_Y, n)
    z = rng.uniform(*_APA_Z, n)
    return np.stack([x, y, z], axis=1)


def _nu_directions(rng: np.random.Generator, n: int, config: SimConfig) -> np.ndarray:
    if config.direction is not None:
        d = normalise(np.asarray(config.direction, dtype=np.float64)[None, :])
        return np.repeat(d, n, axis=0)
    return isotropic(rng, n)


def _sample_es(rng: np.random.Generator, n: int, config: SimConfig) -> tuple[np.ndarray, np.ndarray]:
    """(E_ν, T) for n ES events inside the energy window."""
    t_lo, t_hi = config.energy_range_mev
    c = G_L**2 + G_R**2 / 3.0  # σ(E)/E ≤ c: acceptance bound
    e_out, t_out = np.empty(0), np.empty(0)
    tried = 0
    while e_out.size < n:
        m = _proposals(n - e_out.size, e_out.size, tried, n, config, "ES")
        tried += m
        e = sample_energy(rng, m, config.mean_energy_mev, config.pinch_alpha, extra_power=1)
        acc = rng.random(m) * c * e < es_total(e, t_lo, t_hi)
        e = e[acc]
        # T from dσ/dT on [t_lo, min(t_hi, T_max)]: uniform proposal, dσ/dT decreasing in T.
        tmax = np.minimum(t_hi, 2.0 * e**2 / (ELECTRON_MASS + 2.0 * e))
        t = np.empty_like(e)
        todo = np.arange(e.size)
        while todo.size:
            tt = rng.uniform(t_lo, tmax[todo])
            ok = rng.random(todo.size) * es_dsigma_dt(np.full(todo.size, t_lo), e[todo]) <= es_dsigma_dt(tt, e[todo])
            t[todo[ok]] = tt[ok]
            todo = todo[~ok]
        e_out = np.concatenate([e_out, e])
        t_out = np.concatenate([t_out, t])
    return e_out[:n], t_out[:n]


def _sample_cc(rng: np.random.Generator, n: int, config: SimConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(E_ν, level index, T) for n CC events inside the energy window."""
    t_lo, t_hi = config.energy_range_mev
    ex = np.array([lv[0] for lv in CC_LEVELS])
    strength = np.array([lv[1] for lv in CC_LEVELS])
    e_out, l_out = np.empty(0), np.empty(0, dtype=np.int64)
    tried = 0
    while e_out.size < n:
        m = _proposals(n - e_out.size, e_out.size, tried, n, config, "CC")
        tried += m
        e = sample_energy(rng, m, config.mean_energy_mev, config.pinch_alpha, extra_power=2)
        t = e[:, None] - CC_Q_MEV - ex[None, :]
        ee = t + ELECTRON_MASS
        pe = np.sqrt(np.clip(ee**2 - ELECTRON_MASS**2, 0.0, None))
        w = np.where((t >= t_lo) & (t <= t_hi), strength * pe * ee, 0.0)
        tot = w.sum(axis=1)
        acc = rng.random(m) * e**2 * strength.sum() < tot
        e, w, tot = e[acc], w[acc], tot[acc]
        cum = np.cumsum(w, axis=1)
        level = (cum < (rng.random(e.size) * tot)[:, None]).sum(axis=1)
        e_out = np.concatenate([e_out, e])
        l_out = np.concatenate([l_out, np.minimum(level, len(CC_LEVELS) - 1)])
    e_out, l_out = e_out[:n], l_out[:n]
    return e_out, l_out, e_out - CC_Q_MEV - ex[l_out]


def _cascade(rng: np.random.Generator, excitation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """γ cascade of ⁴⁰K* from each event's level: (event index, γ energy) of all photons."""
    levels = sorted(K40_GAMMAS)
    ev_out, eg_out = [], []
    current = excitation.copy()
    idx = np.arange(excitation.size)
    for _ in range(8):
        live = np.isin(np.round(current, 3), levels)
        if not live.any():
            break
        idx, current = idx[live], current[live]
        u = rng.random(idx.size)
        new = np.zeros_like(current)
        for lv in levels:
            sel = np.flatnonzero(np.round(current, 3) == lv)
            if sel.size == 0:
                continue
            branches = K40_GAMMAS[lv]
            prob = np.cumsum([b[1] for b in branches])
            prob /= prob[-1]
            k = np.minimum(np.searchsorted(prob, u[sel], side="right"), len(branches) - 1)
            eg = np.array([b[0] for b in branches])[k]
            new[sel] = np.array([b[2] for b in branches])[k]
            ev_out.append(idx[sel])
            eg_out.append(eg)
        current = new
    if not ev_out:
        return np.empty(0, dtype=np.int64), np.empty(0)
    ev = np.concatenate(ev_out)
    eg = np.concatenate(eg_out)
    order = np.argsort(ev, kind="stable")
    return ev[order], eg[order]


def sample_interactions(rng: np.random.Generator, n: int, config: SimConfig) -> Interactions:
    """Draw ``n`` primary electrons (and CC de-excitation photons) for a block of events.

    Args:
        rng: numpy Generator (the block's own stream).
        n: number of events.
        config: what to simulate (channel, spectrum, energy window, gun, direction).

    Returns:
        :class:`Interactions` with per-event truth and the de-excitation photons.
    """
    vertex = _vertices(rng, n, config)
    t_lo, t_hi = config.energy_range_mev
    if config.gun:
        energy = rng.uniform(t_lo, t_hi, n)
        if config.direction is not None:
            direction = np.repeat(normalise(np.asarray(config.direction, float)[None, :]), n, axis=0)
        else:
            direction = isotropic(rng, n)
        nan3 = np.full((n, 3), np.nan)
        return Interactions(
            interaction=np.full(n, -1, dtype=np.int8), nu_energy=np.full(n, np.nan), nu_direction=nan3,
            energy=energy, direction=direction, vertex=vertex, excitation=np.zeros(n),
            gamma_event=np.empty(0, dtype=np.int64), gamma_energy=np.empty(0),
        )
    if config.channel == "es":
        is_es = np.ones(n, dtype=bool)
    elif config.channel == "cc":
        is_es = np.zeros(n, dtype=bool)
    else:
        is_es = rng.random(n) < config.es_fraction
    nu_dir = _nu_directions(rng, n, config)
    nu_e = np.empty(n)
    energy = np.empty(n)
    cos_t = np.empty(n)
    excitation = np.zeros(n)
    i_es, i_cc = np.flatnonzero(is_es), np.flatnonzero(~is_es)
    if i_es.size:
        e, t = _sample_es(rng, i_es.size, config)
        nu_e[i_es], energy[i_es] = e, t
        cos_t[i_es] = es_cos_theta(t, e)
    if i_cc.size:
        e, level, t = _sample_cc(rng, i_cc.size, config)
        nu_e[i_cc], energy[i_cc] = e, t
        ee = t + ELECTRON_MASS
        beta = np.sqrt(1.0 - (ELECTRON_MASS / ee) ** 2)
        fermi = np.array([lv[2] == "F" for lv in CC_LEVELS])[level]
        a = np.where(fermi, beta, -beta / 3.0)
        cos_t[i_cc] = cc_angle_cos(rng, a)
        excitation[i_cc] = np.array([lv[0] for lv in CC_LEVELS])[level]
    phi = rng.uniform(0.0, 2.0 * np.pi, n)
    direction = normalise(deflect(nu_dir, cos_t, phi))
    g_ev, g_e = _cascade(rng, excitation)
    return Interactions(
        interaction=is_es.astype(np.int8), nu_energy=nu_e, nu_direction=nu_dir, energy=energy,
        direction=direction, vertex=vertex, excitation=excitation, gamma_event=g_ev, gamma_energy=g_e,
    )
