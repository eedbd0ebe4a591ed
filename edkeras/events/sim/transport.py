"""Electron transport in liquid argon, all electrons of a block stepped together.

Method notes: ``docs/methods.md``, section ``edkeras.events.sim.transport``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edkeras.core.sphere import deflect
from edkeras.events.sim.config import TransportConfig
from edkeras.events.sim.tables import (
    ELECTRON_MASS,
    K_BETHE,
    N_ATOMS,
    R_E_CM,
    X0_CM,
    Z_AR,
    csda_range,
    radiative_stopping,
    stopping_log,
)

__all__ = [
    "BREMS_SOFTENING",
    "Deposits",
    "Electrons",
    "Photons",
    "TrackStats",
    "brems_number_rate",
    "point_dedx",
    "transport_electrons",
]

BREMS_SOFTENING = 0.15
"""Exponent s of the y^(−s) softening of the bremsstrahlung spectrum (fitted to the table)."""

_RUTHERFORD = N_ATOMS * 4.0 * np.pi * Z_AR * (Z_AR + 1) * R_E_CM**2  # per cm, × (m/pβ)²/θc²


@dataclass
class Electrons:
    """Electrons to transport: event index, position (cm), unit direction, kinetic energy (MeV)."""

    event: np.ndarray
    pos: np.ndarray
    dir: np.ndarray
    energy: np.ndarray

    def __len__(self) -> int:
        return int(self.energy.shape[0])

    @staticmethod
    def empty() -> Electrons:
        return Electrons(np.empty(0, np.int64), np.empty((0, 3)), np.empty((0, 3)), np.empty(0))

    @staticmethod
    def concatenate(items: list[Electrons]) -> Electrons:
        items = [e for e in items if len(e)]
        if not items:
            return Electrons.empty()
        return Electrons(
            np.concatenate([e.event for e in items]), np.concatenate([e.pos for e in items]),
            np.concatenate([e.dir for e in items]), np.concatenate([e.energy for e in items]),
        )


@dataclass
class Photons(Electrons):
    """Photons to transport (same fields as :class:`Electrons`; ``energy`` is the photon energy)."""

    @staticmethod
    def empty() -> Photons:
        return Photons(np.empty(0, np.int64), np.empty((0, 3)), np.empty((0, 3)), np.empty(0))

    @staticmethod
    def concatenate(items: list[Electrons]) -> Photons:
        e = Electrons.concatenate(items)
        return Photons(e.event, e.pos, e.dir, e.energy)


@dataclass
class Deposits:
    """Energy deposits: event index, position (cm), energy (MeV), local dE/dx (MeV/cm), and
    whether the primary electron made them."""

    event: np.ndarray
    pos: np.ndarray
    energy: np.ndarray
    dedx: np.ndarray
    primary: np.ndarray

    def __len__(self) -> int:
        return int(self.energy.shape[0])

    @staticmethod
    def empty() -> Deposits:
        return Deposits(np.empty(0, np.int64), np.empty((0, 3)), np.empty(0), np.empty(0), np.empty(0, bool))

    @staticmethod
    def concatenate(items: list[Deposits]) -> Deposits:
        items = [d for d in items if len(d)]
        if not items:
            return Deposits.empty()
        return Deposits(
            np.concatenate([d.event for d in items]), np.concatenate([d.pos for d in items]),
            np.concatenate([d.energy for d in items]), np.concatenate([d.dedx for d in items]),
            np.concatenate([d.primary for d in items]),
        )


@dataclass
class TrackStats:
    """Per-electron summary of a transport call (index = input order)."""

    start: np.ndarray
    end: np.ndarray
    path: np.ndarray
    n_brems_gt1: np.ndarray = field(default_factory=lambda: np.empty(0))

    @property
    def straight_length(self) -> np.ndarray:
        """Start-to-end distance, cm."""
        return np.linalg.norm(self.end - self.start, axis=1)


def point_dedx(t: np.ndarray) -> np.ndarray:
    """Mean dE/dx (MeV/cm) of a slow electron stopping within one deposit: T / range(T)."""
    t = np.maximum(t, 1e-3)
    return t / csda_range(t)


def _brems_shape_exact(ymin: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For the softened spectrum f(y) = y^(−1−s)(4/3 − 4/3 y + y²) normalised to ∫y f dy = 1:
    (number of photons with y > ymin, energy fraction carried below ymin)."""
    s = BREMS_SOFTENING
    norm = 4 / 3 / (1 - s) - 4 / 3 / (2 - s) + 1 / (3 - s)
    n_above = (4 / 3 * (ymin ** (-s) - 1) / s - 4 / 3 * (1 - ymin ** (1 - s)) / (1 - s)
               + (1 - ymin ** (2 - s)) / (2 - s)) / norm
    e_below = (4 / 3 * ymin ** (1 - s) / (1 - s) - 4 / 3 * ymin ** (2 - s) / (2 - s)
               + ymin ** (3 - s) / (3 - s)) / norm
    return np.maximum(n_above, 0.0), np.clip(e_below, 0.0, 1.0)


_LOG_Y = np.linspace(np.log(1e-7), 0.0, 2001)
_N_ABOVE, _E_BELOW = _brems_shape_exact(np.exp(_LOG_Y))


def _brems_shape_numbers(ymin: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Tabulated :func:`_brems_shape_exact` (interpolated in log y; < 1e-4 relative error)."""
    ly = np.log(ymin)
    return np.interp(ly, _LOG_Y, _N_ABOVE), np.interp(ly, _LOG_Y, _E_BELOW)


def brems_number_rate(t: np.ndarray, k_min: float) -> np.ndarray:
    """Photons with k > ``k_min`` emitted per cm by an electron of kinetic energy ``t`` (MeV)."""
    t = np.asarray(t, dtype=np.float64)
    ymin = np.clip(k_min / np.maximum(t, 1e-9), 1e-9, 1.0)
    n_above, _ = _brems_shape_numbers(ymin)
    return np.where(t > k_min, radiative_stopping(t) / np.maximum(t, 1e-9) * n_above, 0.0)


def _sample_brems_y(rng: np.random.Generator, ymin: np.ndarray) -> np.ndarray:
    """Draw y = k/T from y^(−1−s)(4/3 − 4/3 y + y²) on [ymin, 1] (power law × rejection)."""
    s = BREMS_SOFTENING
    y = np.empty_like(ymin)
    todo = np.arange(ymin.size)
    while todo.size:
        a = ymin[todo] ** (-s)
        u = rng.random(todo.size)
        yy = (a - u * (a - 1.0)) ** (-1.0 / s)  # inverse CDF of y^(−1−s) on [ymin, 1]
        ok = rng.random(todo.size) * (4 / 3) <= 4 / 3 - 4 / 3 * yy + yy**2
        y[todo[ok]] = yy[ok]
        todo = todo[~ok]
    return y


def transport_electrons(
    electrons: Electrons,
    rng: np.random.Generator,
    config: TransportConfig,
    primary: bool = False,
    allow_secondaries: bool = True,
) -> tuple[Deposits, Photons, Electrons, TrackStats]:
    """Step every electron until it stops.

    Args:
        electrons: the electrons (any mix of events).
        rng: the block's random stream.
        config: transport switches and step sizes.
        primary: mark the deposits as the primary electron's (for the window centre and
            track statistics).
        allow_secondaries: emit bremsstrahlung photons and delta rays as particles (when
            also switched on in ``config``); otherwise their energy is deposited locally.

    Returns:
        (deposits, bremsstrahlung photons, delta-ray electrons, per-electron track stats).
    """
    n = len(electrons)
    stats = TrackStats(start=electrons.pos.copy(), end=electrons.pos.copy(), path=np.zeros(n),
                       n_brems_gt1=np.zeros(n))
    if n == 0:
        return Deposits.empty(), Photons.empty(), Electrons.empty(), stats
    c = config
    brems_on = c.bremsstrahlung and allow_secondaries
    delta_on = c.delta_rays and allow_secondaries
    idx = np.arange(n)
    ev = electrons.event.astype(np.int64)
    pos = electrons.pos.astype(np.float64).copy()
    d = electrons.dir.astype(np.float64).copy()
    t = electrons.energy.astype(np.float64).copy()
    path = np.zeros(n)
    dep_ev, dep_pos, dep_e, dep_dedx = [], [], [], []
    ph_ev, ph_pos, ph_dir, ph_e = [], [], [], []
    de_ev, de_pos, de_dir, de_e = [], [], [], []

    while idx.size:
        m = idx.size
        rng_u = rng.random((4, m))
        s_col, s_rad, rng_cm = stopping_log(np.log(t))
        ds = np.clip(c.step_range_fraction * rng_cm, c.min_step_cm, c.max_step_cm)
        etot = t + ELECTRON_MASS
        beta2 = 1.0 - (ELECTRON_MASS / etot) ** 2

        # Hard delta rays (Møller, T_δ in [cut, T/2]).
        if delta_on:
            tmax_d = 0.5 * t
            can_d = tmax_d > c.delta_cut_mev
            rate_d = np.where(can_d, K_BETHE / beta2 * (1.0 / c.delta_cut_mev - 1.0 / np.maximum(tmax_d, 1e-9)), 0.0)
            hard_mean = np.where(can_d, K_BETHE / beta2 * np.log(np.maximum(tmax_d, 1e-9) / c.delta_cut_mev), 0.0)
            has_d = rng_u[0] < -np.expm1(-rate_d * ds)
        else:
            has_d = np.zeros(m, dtype=bool)
            hard_mean = 0.0
        soft_col = np.maximum(s_col - hard_mean, 0.2 * s_col)

        # Bremsstrahlung above the cut as photons, below it locally.
        if brems_on:
            ymin = np.clip(c.brems_cut_mev / t, 1e-9, 1.0)
            n_above, e_below = _brems_shape_numbers(ymin)
            rate_b = np.where(t > c.brems_cut_mev, s_rad / t * n_above, 0.0)
            soft_rad = s_rad * np.where(t > c.brems_cut_mev, e_below, 1.0)
            has_b = rng_u[1] < -np.expm1(-rate_b * ds)
        else:
            soft_rad = s_rad
            has_b = np.zeros(m, dtype=bool)

        mean_loss = soft_col * ds
        if c.loss_fluctuations:
            t_cut = np.minimum(c.delta_cut_mev if delta_on else 0.5 * t, 0.5 * t)
            var = K_BETHE * ds / beta2 * np.maximum(t_cut, 1e-6) * (1.0 - 0.5 * beta2)
            shape = mean_loss**2 / var
            col = rng.gamma(shape, var / mean_loss)
        else:
            col = mean_loss
        local = col + soft_rad * ds
        local = np.minimum(local, t)
        room = t - local

        # Discrete losses (only if energy is left for them).
        t_d = np.zeros(m)
        if has_d.any():
            sel = np.flatnonzero(has_d)
            inv_lo, inv_hi = 1.0 / c.delta_cut_mev, 1.0 / tmax_d[sel]
            t_d[sel] = 1.0 / (inv_lo - rng.random(sel.size) * (inv_lo - inv_hi))
            t_d = np.where(t_d <= room, t_d, 0.0)
            has_d = t_d > 0
        k = np.zeros(m)
        if has_b.any():
            sel = np.flatnonzero(has_b)
            k[sel] = _sample_brems_y(rng, ymin[sel]) * t[sel]
            k = np.where(k <= room - t_d, k, 0.0)
            has_b = k > 0

        # Deposit at the step midpoint, then move.
        mid = pos + d * (0.5 * ds)[:, None]
        dep_ev.append(ev)
        dep_pos.append(mid)
        dep_e.append(local)
        dep_dedx.append(col / ds)
        t_before = t
        pos = pos + d * ds[:, None]
        path = path + ds
        t = t - local - t_d - k

        if has_d.any():
            sel = np.flatnonzero(has_d)
            tp, td = t_before[sel], t_d[sel]
            cos_d = np.sqrt(td * (tp + 2 * ELECTRON_MASS) / (tp * (td + 2 * ELECTRON_MASS)))
            de_ev.append(ev[sel])
            de_pos.append(pos[sel])
            de_dir.append(deflect(d[sel], cos_d, rng.uniform(0, 2 * np.pi, sel.size)))
            de_e.append(td)
        if has_b.any():
            sel = np.flatnonzero(has_b)
            kk = k[sel]
            u = rng.random(sel.size)
            theta = np.minimum(ELECTRON_MASS / (t_before[sel] + ELECTRON_MASS) * np.sqrt(u / (1.0 - u + 1e-12)), np.pi)
            ph_ev.append(ev[sel])
            ph_pos.append(pos[sel])
            ph_dir.append(deflect(d[sel], np.cos(theta), rng.uniform(0, 2 * np.pi, sel.size)))
            ph_e.append(kk)
            stats.n_brems_gt1[idx[sel]] += kk > 1.0

        # Multiple scattering over the step at the mid-step energy.
        if c.multiple_scattering:
            t_mid = np.maximum(0.5 * (t_before + np.maximum(t, 0.0)), 1e-3)
            e_mid = t_mid + ELECTRON_MASS
            p_mid = np.sqrt(t_mid * (t_mid + 2 * ELECTRON_MASS))
            b2_mid = (p_mid / e_mid) ** 2
            # Highland's logarithm belongs to the whole scattering length, not to one step
            # (summing per-step ln(ds/X0) in quadrature underestimates the total angle by
            # ~20 %); it is evaluated at the residual range, the step enters through √ds.
            x_log = np.maximum(rng_cm, ds) / X0_CM
            theta0 = (13.6 / (p_mid * np.sqrt(b2_mid)) * np.sqrt(ds / X0_CM)
                      * np.maximum(1.0 + 0.038 * np.log(x_log / b2_mid), 0.2))
            theta = theta0 * np.sqrt(-2.0 * np.log(1.0 - rng_u[2]))  # space angle of a 2-D Gaussian
            if c.single_scatter_tail:
                th_c = np.minimum(3.5 * theta0, 0.9 * np.pi)
                pbeta = p_mid * np.sqrt(b2_mid)
                rate_t = _RUTHERFORD * (ELECTRON_MASS / pbeta) ** 2 * (1.0 / th_c**2 - 1.0 / np.pi**2)
                tail = rng_u[3] < -np.expm1(-rate_t * ds)
                if tail.any():
                    sel = np.flatnonzero(tail)
                    a, b = 1.0 / th_c[sel] ** 2, 1.0 / np.pi**2
                    theta[sel] = 1.0 / np.sqrt(a - rng.random(sel.size) * (a - b))
            theta = np.minimum(theta, np.pi)
            d = deflect(d, np.cos(theta), rng.uniform(0, 2 * np.pi, m))
            d /= np.linalg.norm(d, axis=1, keepdims=True)

        stop = t < c.stop_energy_mev
        if stop.any():
            sel = np.flatnonzero(stop)
            rest = np.maximum(t[sel], 0.0)
            dep_ev.append(ev[sel])
            dep_pos.append(pos[sel])
            dep_e.append(rest)
            dep_dedx.append(point_dedx(np.maximum(rest, c.stop_energy_mev)))
            stats.end[idx[sel]] = pos[sel]
            stats.path[idx[sel]] = path[sel]
            keep = ~stop
            idx, ev, pos, d, t, path = idx[keep], ev[keep], pos[keep], d[keep], t[keep], path[keep]

    deposits = Deposits(
        np.concatenate(dep_ev), np.concatenate(dep_pos), np.concatenate(dep_e), np.concatenate(dep_dedx),
        np.full(sum(a.size for a in dep_e), primary, dtype=bool),
    )
    photons = Photons(
        np.concatenate(ph_ev) if ph_ev else np.empty(0, np.int64),
        np.concatenate(ph_pos) if ph_pos else np.empty((0, 3)),
        np.concatenate(ph_dir) if ph_dir else np.empty((0, 3)),
        np.concatenate(ph_e) if ph_e else np.empty(0),
    )
    deltas = Electrons(
        np.concatenate(de_ev) if de_ev else np.empty(0, np.int64),
        np.concatenate(de_pos) if de_pos else np.empty((0, 3)),
        np.concatenate(de_dir) if de_dir else np.empty((0, 3)),
        np.concatenate(de_e) if de_e else np.empty(0),
    )
    return deposits, photons, deltas, stats
