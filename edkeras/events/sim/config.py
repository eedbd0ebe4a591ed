"""Settings of the fast Monte Carlo, as strict frozen dataclasses.

Method notes: ``docs/methods.md``, section ``edkeras.events.sim.config``.

Example:
    >>> from edkeras.core.schema import from_dict
    >>> cfg = from_dict(SimConfig, {"channel": "es", "readout": {"threshold_collection": 50}})
    >>> cfg.readout.threshold_collection
    50.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from edkeras.core.schema import ConfigError

__all__ = ["BackgroundConfig", "ReadoutConfig", "ResponseSpread", "SimConfig", "TransportConfig"]


@dataclass(frozen=True)
class TransportConfig:
    """Electron and photon transport (defaults: everything on).

    Args:
        max_step_cm: longest electron step (cm); ~ one drift tick (0.08 cm).
        step_range_fraction: a step is at most this fraction of the residual CSDA range.
        min_step_cm: shortest step (cm).
        stop_energy_mev: electrons below this kinetic energy deposit the rest on the spot.
        multiple_scattering: Highland Gaussian core of multiple Coulomb scattering.
        single_scatter_tail: add single Rutherford scatters beyond 3.5 θ0 (the tail the
            Highland core lacks).
        loss_fluctuations: Gamma-distributed collision loss per step (restricted Bohr width)
            instead of the mean.
        bremsstrahlung: emit photons above ``brems_cut_mev`` as particles (below it the
            radiated energy is deposited locally); off: all radiative loss is local.
        brems_cut_mev: lowest bremsstrahlung photon energy followed as a particle.
        delta_rays: emit knock-on electrons above ``delta_cut_mev`` as particles.
        delta_cut_mev: lowest delta-ray energy followed as a particle.
        secondary_cut_mev: secondary electrons (delta, Compton, pair) below this energy
            deposit on the spot (range < 1 mm).
        photons: follow photons (Compton, pair, absorption); off: photon energy is lost.
        max_generations: electron → photon → electron rounds followed; what is left after
            the last round is deposited on the spot.
    """

    max_step_cm: float = 0.1
    step_range_fraction: float = 0.1
    min_step_cm: float = 0.01
    stop_energy_mev: float = 0.1
    multiple_scattering: bool = True
    single_scatter_tail: bool = True
    loss_fluctuations: bool = True
    bremsstrahlung: bool = True
    brems_cut_mev: float = 0.2
    delta_rays: bool = True
    delta_cut_mev: float = 1.0
    secondary_cut_mev: float = 0.3
    photons: bool = True
    max_generations: int = 4

    def __post_init__(self) -> None:
        for name in ("max_step_cm", "step_range_fraction", "min_step_cm", "stop_energy_mev",
                     "brems_cut_mev", "delta_cut_mev", "secondary_cut_mev"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ConfigError(f"transport.{name}: must be a positive number; received {v!r}")
        if self.min_step_cm > self.max_step_cm:
            raise ConfigError(
                f"transport.min_step_cm ({self.min_step_cm}) must not exceed max_step_cm ({self.max_step_cm})"
            )
        if self.max_generations < 1:
            raise ConfigError(f"transport.max_generations: must be >= 1; received {self.max_generations}")


@dataclass(frozen=True)
class ReadoutConfig:
    """Drift, charge and electronics of a DUNE-like horizontal-drift APA.

    Args:
        drift_velocity_cm_per_us: 0.16 cm/µs at 500 V/cm.
        electron_lifetime_us: 3 ms (DUNE FD simulation).
        diffusion_long_cm2_per_s: D_L (LArSoft default 6.2).
        diffusion_trans_cm2_per_s: D_T (LArSoft default 16.3).
        recombination_alpha: modified-box α (ArgoNeuT 0.930).
        recombination_beta_cm_per_mev: modified-box β/(ρ E) at 500 V/cm (0.304 cm/MeV).
        min_dedx_mev_per_cm: dE/dx floor for the box model (as LArSoft: 1 MeV/cm).
        gain_collection: ADC per drifted electron on X (pulse integral).
        gain_induction: ADC scale of the bipolar U/V response per drifted electron.
            With ``shaping_induction_ticks`` fitted to the real TP dumps: samples over
            threshold and ADC per TP of the electron's U/V TPs between the ES file's and
            the CC table's (``physics/REAL_TP_STATS.md``; ``docs/methods.md``).
        threshold_collection: ADC; samples below it are not read out (TP threshold, X).
        threshold_induction: ADC; the same on U and V.
        shaping_collection_ticks: σ of the Gaussian collection response, ticks.
        shaping_induction_ticks: σ of the Gaussian whose time derivative is the induction
            response, ticks.
        reco_adc_per_mev: calibration of the charge-based reconstructed energy (X plane).
        drift_range_cm: distance of the vertex from the anode, drawn uniformly in it.
        induction_lobes: which lobes of the bipolar U/V pulse make TPs. ``"positive"``:
            DUNE's TP maker (the simple-threshold algorithm of the TP dumps) compares the
            signed, pedestal-subtracted sample with the threshold, so only the first
            (positive) lobe is seen. ``"both"``: the threshold is applied to |signal| and the
            zero crossing is bridged (``induction_bridge_ticks``); the simulator's model
            until December 2026, with ``gain_induction`` 0.095 and ``shaping_induction_ticks`` 1.5
            (its windows were centred on the charge; they are now centred on each plane's TPs
            in either case, so older files are not reproduced pixel for pixel).
        induction_bridge_ticks: with ``induction_lobes="both"``, an induction TP continues
            across at most this many samples below threshold (the zero crossing).
        noise_tp_rate_induction, noise_tp_rate_collection: noise TPs per channel and tick
            (real dumps: 368 U, 360 V, 522 X over 4 APAs × 6,000 ticks,
            ``physics/REAL_TP_STATS.md``); most have one sample over threshold and are dropped.
    """

    drift_velocity_cm_per_us: float = 0.16
    electron_lifetime_us: float = 3000.0
    diffusion_long_cm2_per_s: float = 6.2
    diffusion_trans_cm2_per_s: float = 16.3
    recombination_alpha: float = 0.930
    recombination_beta_cm_per_mev: float = 0.304
    min_dedx_mev_per_cm: float = 1.0
    gain_collection: float = 0.212
    gain_induction: float = 0.135
    threshold_collection: float = 60.0
    threshold_induction: float = 70.0
    shaping_collection_ticks: float = 3.0
    shaping_induction_ticks: float = 3.5
    reco_adc_per_mev: float = 3900.0
    drift_range_cm: tuple[float, float] = (10.0, 359.4)
    induction_lobes: Literal["positive", "both"] = "positive"
    induction_bridge_ticks: int = 2
    noise_tp_rate_induction: float = 1.9e-5
    noise_tp_rate_collection: float = 2.3e-5

    def __post_init__(self) -> None:
        for name in ("noise_tp_rate_induction", "noise_tp_rate_collection"):
            v = getattr(self, name)
            if not (math.isfinite(v) and 0 <= v < 0.01):
                raise ConfigError(f"readout.{name}: must be a rate in [0, 0.01) per channel and tick; received {v!r}")
        for name in ("drift_velocity_cm_per_us", "electron_lifetime_us", "recombination_alpha",
                     "min_dedx_mev_per_cm", "gain_collection", "gain_induction",
                     "shaping_collection_ticks", "shaping_induction_ticks", "reco_adc_per_mev"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ConfigError(f"readout.{name}: must be a positive number; received {v!r}")
        for name in ("diffusion_long_cm2_per_s", "diffusion_trans_cm2_per_s",
                     "recombination_beta_cm_per_mev", "threshold_collection", "threshold_induction"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise ConfigError(f"readout.{name}: must be a number >= 0; received {v!r}")
        if not (isinstance(self.induction_bridge_ticks, int) and 0 <= self.induction_bridge_ticks <= 10):
            raise ConfigError(f"readout.induction_bridge_ticks: must be an integer in [0, 10]; "
                              f"received {self.induction_bridge_ticks!r}")
        if self.induction_lobes not in ("positive", "both"):
            raise ConfigError(f"readout.induction_lobes: must be 'positive' or 'both'; received {self.induction_lobes!r}")
        lo, hi = self.drift_range_cm
        if not (0 <= lo < hi):
            raise ConfigError(f"readout.drift_range_cm: expected [lo, hi] with 0 <= lo < hi; received {[lo, hi]}")


@dataclass(frozen=True)
class BackgroundConfig:
    """Other activity in the window: radiological decays.

    Args:
        ar39_bq_per_kg: ³⁹Ar β activity of natural argon (≈ 1 Bq/kg; 0 = off). The decays
            are drawn over the whole drift length behind the window's wires during the
            window's time (a decay at drift distance x appears x / v later), as single
            point deposits (β range < 1 mm) with the allowed β spectrum of Q = 0.565 MeV.
        box_half_cm: (y, z) half-widths of the region round the event in which decays are
            drawn; it must cover the wires of all three windows (X wires are vertical, U and
            V wires at ±35.7°).
    """

    ar39_bq_per_kg: float = 1.0
    box_half_cm: tuple[float, float] = (300.0, 230.0)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.ar39_bq_per_kg) and 0 <= self.ar39_bq_per_kg <= 1000):
            raise ConfigError(f"background.ar39_bq_per_kg: must lie in [0, 1000]; received {self.ar39_bq_per_kg!r}")
        if not all(math.isfinite(v) and v > 0 for v in self.box_half_cm):
            raise ConfigError(f"background.box_half_cm: expected two positive numbers; received {self.box_half_cm!r}")


@dataclass(frozen=True)
class ResponseSpread:
    """Per-event randomisation of the detector response (domain randomisation for training).

    Each event and plane draws independent log-normal factors exp(σ·N(0, 1)) on the gain,
    the threshold and the shaping width, so that a network trained on the simulation does
    not learn one exact response that real data need not have. All 0 (off) by default.

    Args:
        gain_sigma: σ of ln(gain factor).
        threshold_sigma: σ of ln(threshold factor).
        shaping_sigma: σ of ln(shaping-width factor).
    """

    gain_sigma: float = 0.0
    threshold_sigma: float = 0.0
    shaping_sigma: float = 0.0

    def __post_init__(self) -> None:
        for name in ("gain_sigma", "threshold_sigma", "shaping_sigma"):
            v = getattr(self, name)
            if not (math.isfinite(v) and 0 <= v <= 1):
                raise ConfigError(f"response.{name}: must lie in [0, 1]; received {v!r}")

    @property
    def active(self) -> bool:
        return self.gain_sigma > 0 or self.threshold_sigma > 0 or self.shaping_sigma > 0


@dataclass(frozen=True)
class SimConfig:
    """What to simulate and how.

    Args:
        channel: ``"es"`` (ν–e elastic scattering), ``"cc"`` (νe–⁴⁰Ar charged current) or
            ``"mix"`` (each event ES with probability ``es_fraction``).
        es_fraction: share of ES events in ``"mix"`` (0.5: balanced for training; a real
            burst has about one ES per ten CC).
        mean_energy_mev: ⟨E_νe⟩ of the pinched Fermi–Dirac spectrum.
        pinch_alpha: pinching parameter α.
        energy_range_mev: electron kinetic-energy window [lo, hi]; events outside are not
            generated (the spectrum is truncated); in gun mode energies are flat in it.
        gun: particle gun: one electron per event, flat in energy, isotropic (or
            ``direction``); no neutrino truth (interaction −1).
        direction: the neutrinos' fixed direction of travel, ``truth/nu_direction`` (physics
            mode; the supernova's position on the sky is its opposite), or the electron
            direction (gun mode), normalised; ``None``: isotropic, a new one per event.
        noise_adc: RMS of white electronics noise added to the waveforms before the
            threshold (0 = off).
        image_shape: (ticks, channels) of each plane's window.
        block_size: events simulated together in lock-step; the output for a seed depends
            on it (recorded in the file), not on the number of workers.
        transport: :class:`TransportConfig`.
        readout: :class:`ReadoutConfig`.
        background: :class:`BackgroundConfig` (³⁹Ar).
        response: :class:`ResponseSpread` (per-event detector-response randomisation).
    """

    channel: Literal["es", "cc", "mix"] = "mix"
    es_fraction: float = 0.5
    mean_energy_mev: float = 11.0
    pinch_alpha: float = 2.5
    energy_range_mev: tuple[float, float] = (5.0, 70.0)
    gun: bool = False
    direction: tuple[float, float, float] | None = None
    noise_adc: float = 0.0
    image_shape: tuple[int, int] = (128, 32)
    block_size: int = 512
    transport: TransportConfig = field(default_factory=TransportConfig)
    readout: ReadoutConfig = field(default_factory=ReadoutConfig)
    background: BackgroundConfig = field(default_factory=BackgroundConfig)
    response: ResponseSpread = field(default_factory=ResponseSpread)

    def __post_init__(self) -> None:
        if self.channel not in ("es", "cc", "mix"):
            raise ConfigError(f"channel: must be 'es', 'cc' or 'mix'; received {self.channel!r}")
        if not (0.0 <= self.es_fraction <= 1.0):
            raise ConfigError(f"es_fraction: must lie in [0, 1]; received {self.es_fraction!r}")
        if not (self.mean_energy_mev > 0 and self.pinch_alpha > -1):
            raise ConfigError(
                f"mean_energy_mev must be > 0 and pinch_alpha > -1; received "
                f"{self.mean_energy_mev!r}, {self.pinch_alpha!r}"
            )
        lo, hi = self.energy_range_mev
        if not (0.5 <= lo < hi <= 200.0):
            raise ConfigError(
                f"energy_range_mev: expected [lo, hi] MeV with 0.5 <= lo < hi <= 200; received {[lo, hi]}"
            )
        if self.direction is not None:
            n = math.sqrt(sum(c * c for c in self.direction))
            if not (math.isfinite(n) and n > 0):
                raise ConfigError(f"direction: must be a non-zero vector; received {list(self.direction)}")
        if not (math.isfinite(self.noise_adc) and self.noise_adc >= 0):
            raise ConfigError(f"noise_adc: must be >= 0; received {self.noise_adc!r}")
        t, c = self.image_shape
        if t < 2 or c < 2:
            raise ConfigError(f"image_shape: expected (ticks, channels) >= (2, 2); received {[t, c]}")
        if self.block_size < 1:
            raise ConfigError(f"block_size: must be >= 1; received {self.block_size}")
