"""Analyses of reconstructed directions: the classical baseline, calibration of per-event
uncertainties, and resolution against energy.

The modules are numpy-only (no TensorFlow at import):

* :mod:`edkeras.analysis.baselines` — a classical (non-ML) reconstruction on the same
  canonical images: a charge-weighted line fit per plane, the 3-D direction from the three
  projections, and a head–tail choice from the charge profile ("brems flipping").
* :mod:`edkeras.analysis.calibration` — predicted cones (vMF κ or Gaussian σ) against the
  actual angular errors; coverage; post-hoc recalibration of κ; selection by uncertainty.
* :mod:`edkeras.analysis.energy` — θ68, median and flip fraction in energy bins and by
  interaction type, as tables.
"""

from __future__ import annotations

__all__ = ["baselines", "calibration", "energy"]
