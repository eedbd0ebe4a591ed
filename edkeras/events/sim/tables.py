"""Physical constants and tables of liquid argon used by the simulator, with their sources.

Every number here comes from ``shared/physics/REFERENCE.md`` (ESTAR-method stopping powers,
XCOM attenuation lengths, the bremsstrahlung-photon counts, LArSoft detector constants)
unless a comment says otherwise. The interpolation helpers work on whole numpy arrays, so
the transport can call them once per step for every electron of a block.

Below 1 MeV (where the table stops but slow electrons, delta rays and Compton electrons
still travel a millimetre or two) the collision stopping power is the Bethe formula for
electrons (ICRU-37 form, I = 188 eV, no density effect), scaled by < 1 % so that it meets
the table at 1 MeV.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "BREMS_COUNT_ENERGY",
    "BREMS_COUNT_GT_1MEV",
    "CSDA_TABLE_CM",
    "DENSITY",
    "ELECTRON_MASS",
    "ESTAR_ENERGY",
    "K_BETHE",
    "N_ATOMS",
    "R_E_CM",
    "S_COL_TABLE",
    "S_RAD_TABLE",
    "W_ION_MEV",
    "X0_CM",
    "Z_AR",
    "attenuation_length",
    "collision_stopping",
    "csda_range",
    "pair_fraction",
    "radiative_stopping",
    "stopping_log",
]

ELECTRON_MASS = 0.51099895
"""Electron mass, MeV."""

DENSITY = 1.396
"""Liquid-argon density, g/cm³ (LArSoft ``larproperties.fcl``)."""

X0_CM = 14.0
"""Radiation length, cm (19.55 g/cm², PDG)."""

Z_AR = 18
A_AR = 39.948

W_ION_MEV = 23.6e-6
"""Mean energy per ionisation electron, MeV (42,370 electrons per MeV)."""

K_BETHE = 0.307075 / 2.0 * Z_AR / A_AR * DENSITY
"""2π N_A r_e² m_e c² Z/A ρ in MeV/cm (≈ 0.0966): the Bethe / Møller prefactor."""

N_ATOMS = DENSITY * 6.02214076e23 / A_AR
"""Argon atoms per cm³."""

R_E_CM = 2.8179403e-13
"""Classical electron radius, cm."""

# ESTAR method for liquid argon (REFERENCE.md): T (MeV), S_col, S_rad (MeV cm²/g), CSDA range (cm).
ESTAR_ENERGY = np.array([1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 50.0, 70.0])
S_COL_TABLE = np.array([1.369, 1.381, 1.473, 1.555, 1.600, 1.631, 1.671, 1.718, 1.747])
S_RAD_TABLE = np.array([0.027, 0.056, 0.160, 0.357, 0.568, 0.787, 1.240, 2.176, 3.136])
CSDA_TABLE_CM = np.array([0.43, 0.93, 2.33, 4.36, 6.11, 7.68, 10.37, 14.61, 17.89])

# Mean number of bremsstrahlung photons with k > 1 MeV over the whole track (REFERENCE.md).
BREMS_COUNT_ENERGY = np.array([5.0, 10.0, 20.0, 30.0, 50.0, 70.0])
BREMS_COUNT_GT_1MEV = np.array([0.06, 0.27, 0.83, 1.4, 2.6, 3.7])

# Photon attenuation length in LAr (NIST XCOM, REFERENCE.md); the 0.1 and 0.2 MeV points
# (photo-absorption and Compton, XCOM μ/ρ ≈ 0.188 and 0.123 cm²/g) extend it downwards.
_PHOTON_E = np.array([0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 100.0])
_PHOTON_LAMBDA = np.array([3.8, 5.8, 9.0, 12.4, 17.6, 25.6, 29.2, 29.6, 29.2, 27.0])
# Share of pair production in the interactions (REFERENCE.md "dominant" row: ~20 % at 5 MeV,
# Compton ≈ pair at 10 MeV, pair dominant above).
_PAIR_E = np.array([1.022, 2.0, 5.0, 10.0, 15.0, 20.0, 100.0])
_PAIR_FRAC = np.array([0.0, 0.02, 0.2, 0.5, 0.62, 0.7, 0.9])


def _bethe_electron(t: np.ndarray, i_mev: float = 188e-6) -> np.ndarray:
    """Collision stopping power of electrons (ICRU-37 / Rohrlich–Carlson), MeV cm²/g."""
    tau = t / ELECTRON_MASS
    beta2 = 1.0 - 1.0 / (tau + 1.0) ** 2
    f = 1.0 - beta2 + (tau**2 / 8.0 - (2.0 * tau + 1.0) * np.log(2.0)) / (tau + 1.0) ** 2
    arg = tau**2 * (tau + 2.0) / (2.0 * (i_mev / ELECTRON_MASS) ** 2)
    return 0.307075 / 2.0 * Z_AR / A_AR / beta2 * (np.log(arg) + f)


def _build_grid() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Log-energy grid 10 keV – 200 MeV with S_col, S_rad (MeV/cm) and CSDA range (cm)."""
    low = np.geomspace(0.01, 1.0, 41)[:-1]
    scale = S_COL_TABLE[0] / _bethe_electron(np.array([1.0]))[0]
    s_col_low = _bethe_electron(low) * scale
    # Radiative stopping power below 1 MeV: ∝ T (Bethe–Heitler at low energy), tiny anyway.
    s_rad_low = S_RAD_TABLE[0] * low
    high = np.array([100.0, 200.0])
    # Above 70 MeV: extrapolate log-log from the last two table points.
    def _extrap(tab: np.ndarray) -> np.ndarray:
        slope = np.log(tab[-1] / tab[-2]) / np.log(ESTAR_ENERGY[-1] / ESTAR_ENERGY[-2])
        return tab[-1] * (high / ESTAR_ENERGY[-1]) ** slope
    e = np.concatenate([low, ESTAR_ENERGY, high])
    s_col = np.concatenate([s_col_low, S_COL_TABLE, _extrap(S_COL_TABLE)]) * DENSITY
    s_rad = np.concatenate([s_rad_low, S_RAD_TABLE, _extrap(S_RAD_TABLE)]) * DENSITY
    # CSDA range by integrating 1/S_tot in log energy (trapezoid), from 10 keV (~1 µm) up.
    inv = 1.0 / (s_col + s_rad)
    integrand = inv * e
    loge = np.log(e)
    r = np.concatenate([[0.0], np.cumsum(0.5 * (integrand[1:] + integrand[:-1]) * np.diff(loge))])
    r += 0.01 / (s_col[0] + s_rad[0]) / 1.7  # range of the first 10 keV (power-law estimate)
    return np.log(e), np.log(s_col), np.log(s_rad), np.log(r)


_LOGE, _LOG_SCOL, _LOG_SRAD, _LOG_RANGE = _build_grid()
# The integrated range reproduces the tabulated CSDA range to within ~2 % (checked in tests);
# we use the table itself where it exists by rescaling the integrated curve piecewise.
_RANGE_CORR = np.interp(
    _LOGE, np.log(ESTAR_ENERGY), np.log(CSDA_TABLE_CM) - np.interp(np.log(ESTAR_ENERGY), _LOGE, _LOG_RANGE)
)
_LOG_RANGE = _LOG_RANGE + _RANGE_CORR


def collision_stopping(t: np.ndarray) -> np.ndarray:
    """Mean collision energy loss of an electron of kinetic energy ``t`` (MeV), in MeV/cm."""
    return np.exp(np.interp(np.log(np.maximum(t, 0.01)), _LOGE, _LOG_SCOL))


def radiative_stopping(t: np.ndarray) -> np.ndarray:
    """Mean radiative (bremsstrahlung) energy loss at kinetic energy ``t`` (MeV), in MeV/cm."""
    return np.exp(np.interp(np.log(np.maximum(t, 0.01)), _LOGE, _LOG_SRAD))


def csda_range(t: np.ndarray) -> np.ndarray:
    """CSDA range (path length) of an electron of kinetic energy ``t`` (MeV), in cm."""
    return np.exp(np.interp(np.log(np.maximum(t, 0.01)), _LOGE, _LOG_RANGE))


def stopping_log(log_t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(S_col, S_rad in MeV/cm, CSDA range in cm) at log kinetic energies (one call per step)."""
    lt = np.maximum(log_t, _LOGE[0])
    return (np.exp(np.interp(lt, _LOGE, _LOG_SCOL)), np.exp(np.interp(lt, _LOGE, _LOG_SRAD)),
            np.exp(np.interp(lt, _LOGE, _LOG_RANGE)))


def attenuation_length(e: np.ndarray) -> np.ndarray:
    """Photon attenuation length (cm) at energy ``e`` (MeV), log-log interpolated."""
    le = np.log(np.clip(e, _PHOTON_E[0], _PHOTON_E[-1]))
    return np.exp(np.interp(le, np.log(_PHOTON_E), np.log(_PHOTON_LAMBDA)))


def pair_fraction(e: np.ndarray) -> np.ndarray:
    """Share of pair production among photon interactions at energy ``e`` (MeV)."""
    return np.interp(e, _PAIR_E, _PAIR_FRAC, left=0.0)
