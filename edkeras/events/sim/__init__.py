"""Fast Monte Carlo of supernova-neutrino electrons in a DUNE-like liquid-argon TPC.

ν–e elastic scattering and νe–⁴⁰Ar capture from a pinched Fermi–Dirac spectrum (or a
particle gun), electron transport with collision loss, multiple scattering,
bremsstrahlung and delta rays, photon blips, recombination, drift, diffusion and a
trigger-primitive-like readout of the U, V and X planes into 128 × 32 canonical-frame
windows (docs/formats.md §1.3). Vectorised over blocks of events: thousands of events per second
on one core.

Example:
    >>> from edkeras.events.sim import SimConfig, simulate, simulate_to_file
    >>> batch = simulate(500, seed=0, config=SimConfig(channel="es"))
    >>> simulate_to_file("data/mix.h5", 5000, seed=1, workers=2)
"""

from __future__ import annotations

from edkeras.events.sim.config import ReadoutConfig, SimConfig, TransportConfig
from edkeras.events.sim.generate import BlockDetails, simulate, simulate_block, simulate_to_file

__all__ = [
    "BlockDetails",
    "ReadoutConfig",
    "SimConfig",
    "TransportConfig",
    "simulate",
    "simulate_block",
    "simulate_to_file",
]
