"""From per-event directions to the supernova: likelihood tables, detector acceptance, the burst fit.

The stages, in the order data flows through them:

* :mod:`~edkeras.pointing.rows` — one row of a table: the density of cos θ in one bin;
* :mod:`~edkeras.pointing.response` — the detector-response map m(s);
* :mod:`~edkeras.pointing.acceptance` — the detector acceptance g(d);
* :mod:`~edkeras.pointing.tables` — :class:`LikelihoodTable`, its file;
* :mod:`~edkeras.pointing.fitting` — a table fitted to predictions;
* :mod:`~edkeras.pointing.table_checks` — a table checked on held-out events;
* :mod:`~edkeras.pointing.likelihood` — the likelihood of a burst;
* :mod:`~edkeras.pointing.burst` — its maximum and confidence regions;
* :mod:`~edkeras.pointing.resolution` — pointing resolution over simulated bursts.

Every public name of these modules is also importable from ``edkeras.pointing``.
"""

from __future__ import annotations

from edkeras.core.errors import AcceptanceError, PointingError, ResponseMapError, TableError
from edkeras.core.sphere import fibonacci_lattice, rotate_to
from edkeras.pointing.acceptance import (
    G_FLOOR,
    Z_MIN,
    Acceptance,
    fit_acceptance,
    harmonic_degrees,
    legendre_moments,
    real_harmonics,
)
from edkeras.pointing.burst import (
    CALIBRATED,
    WILKS_2DOF,
    BurstFit,
    delta_log_likelihood,
    fit_burst,
    sky_lattice,
)
from edkeras.pointing.fitting import (
    build_table,
    fit_table,
    fit_table_acceptance,
    flip_calibration,
    reference_cosines,
    refine_response,
    with_acceptance,
    with_response,
)
from edkeras.pointing.likelihood import (
    BurstLikelihood,
    classification_weights,
)
from edkeras.pointing.resolution import (
    BURST_SAMPLING,
    BurstPlan,
    ResolutionResult,
    burst_temperature,
    direction_groups,
    flips_for,
    plan_bursts,
    pointing_resolution,
    region_thresholds,
    resolution_vs_events,
    simulator_generator,
)
from edkeras.pointing.response import (
    Response,
    fit_response,
)
from edkeras.pointing.rows import (
    FLOOR,
    METHODS,
    PARAM_NAMES,
    cosine_edges,
    fit_row,
    kde_reflected,
)
from edkeras.pointing.table_checks import (
    compare_methods,
    mean_log_likelihood,
    pit_check,
    pit_values,
)
from edkeras.pointing.tables import (
    DEFAULT_ENERGY_EDGES,
    REFERENCES,
    SMOOTHINGS,
    LikelihoodTable,
    load_table,
    save_table,
)

__all__ = [
    "BURST_SAMPLING",
    "CALIBRATED",
    "DEFAULT_ENERGY_EDGES",
    "FLOOR",
    "G_FLOOR",
    "METHODS",
    "PARAM_NAMES",
    "REFERENCES",
    "SMOOTHINGS",
    "WILKS_2DOF",
    "Z_MIN",
    "Acceptance",
    "AcceptanceError",
    "BurstFit",
    "BurstLikelihood",
    "BurstPlan",
    "LikelihoodTable",
    "PointingError",
    "ResolutionResult",
    "Response",
    "ResponseMapError",
    "TableError",
    "build_table",
    "burst_temperature",
    "classification_weights",
    "compare_methods",
    "cosine_edges",
    "delta_log_likelihood",
    "direction_groups",
    "fibonacci_lattice",
    "fit_acceptance",
    "fit_burst",
    "fit_response",
    "fit_row",
    "fit_table",
    "fit_table_acceptance",
    "flip_calibration",
    "flips_for",
    "harmonic_degrees",
    "kde_reflected",
    "legendre_moments",
    "load_table",
    "mean_log_likelihood",
    "pit_check",
    "pit_values",
    "plan_bursts",
    "pointing_resolution",
    "real_harmonics",
    "reference_cosines",
    "refine_response",
    "region_thresholds",
    "resolution_vs_events",
    "rotate_to",
    "save_table",
    "simulator_generator",
    "sky_lattice",
    "with_acceptance",
    "with_response",
]
