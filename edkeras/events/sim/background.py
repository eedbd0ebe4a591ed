"""Radiological background in the window: ³⁹Ar β decays.

Natural argon carries ³⁹Ar at about 1 Bq/kg (β⁻, Q = 0.565 MeV). A window of T ticks sees
the decays of the whole drift length behind its wires that happen during T ticks (a decay
at drift distance x arrives x / v later), so the expected number in a box of area A (y × z)
round the event is activity × ρ × L_drift × A × T · 0.5 µs. The β range (< 1 mm) is below a
wire pitch: each decay is one point deposit. The decays are placed at drift distances
inside the window's time span, which is where they appear.
"""

from __future__ import annotations

import numpy as np

from edkeras.core.detector import DRIFT_PER_TICK
from edkeras.events.sim.config import SimConfig
from edkeras.events.sim.transport import Deposits, point_dedx

__all__ = ["AR39_Q_MEV", "LAR_DENSITY_KG_PER_CM3", "ar39_deposits", "sample_ar39_energy"]

AR39_Q_MEV = 0.565
LAR_DENSITY_KG_PER_CM3 = 1.396e-3
DRIFT_LENGTH_CM = 359.4
TICK_S = 0.5e-6
_ME = 0.51099895


def sample_ar39_energy(rng: np.random.Generator, n: int) -> np.ndarray:
    """Kinetic energies (MeV) from the allowed β spectrum p·E·(Q − T)² (Fermi function left out)."""
    t = np.linspace(0.0, AR39_Q_MEV, 2001)
    e = t + _ME
    pdf = np.sqrt(np.maximum(e**2 - _ME**2, 0.0)) * e * (AR39_Q_MEV - t) ** 2
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (pdf[1:] + pdf[:-1]) * np.diff(t))])
    return np.interp(rng.random(n) * cdf[-1], cdf, t)


def ar39_deposits(rng: np.random.Generator, centre: np.ndarray, config: SimConfig, margin_ticks: int = 40
                  ) -> Deposits:
    """³⁹Ar decays round each event's charge centre ``centre`` (n, 3), as point deposits."""
    bg = config.background
    n = centre.shape[0]
    if bg.ar39_bq_per_kg <= 0 or n == 0:
        return Deposits.empty()
    span_ticks = config.image_shape[0] + 2 * margin_ticks
    hy, hz = bg.box_half_cm
    mu = bg.ar39_bq_per_kg * LAR_DENSITY_KG_PER_CM3 * DRIFT_LENGTH_CM * (2 * hy) * (2 * hz) * span_ticks * TICK_S
    counts = rng.poisson(mu, size=n)
    m = int(counts.sum())
    event = np.repeat(np.arange(n, dtype=np.int64), counts)
    half_x = 0.5 * span_ticks * DRIFT_PER_TICK
    pos = centre[event] + np.column_stack([
        rng.uniform(-half_x, half_x, m), rng.uniform(-hy, hy, m), rng.uniform(-hz, hz, m)])
    # stay on the event's side of the anode (x = 0)
    side = np.sign(centre[event, 0])
    pos[:, 0] = side * np.maximum(np.abs(pos[:, 0]) * (np.sign(pos[:, 0]) == side), 0.05)
    energy = sample_ar39_energy(rng, m)
    return Deposits(event, pos, energy, point_dedx(energy), np.zeros(m, dtype=bool))
