"""The alert of a burst: a GCN-notice-style record of where the supernova is, how sure, from what.

:func:`alert_record` gathers the burst fit, its sky map and the site into the JSON that
``edkeras alert`` writes as ``alert.json`` (format in ``docs/formats.md``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from edkeras import __version__
from edkeras.pointing.burst import BurstFit
from edkeras.pointing.sky import DetectorSite
from edkeras.pointing.skymap import SkyMap, fit_radec

__all__ = ["ALERT_FORMAT", "alert_record"]

ALERT_FORMAT = "edkeras-alert"


def alert_record(
    fit: BurstFit,
    sky: SkyMap,
    site: DetectorSite,
    *,
    n_es_expected: float | None,
    classification: str,
    sources: Mapping[str, Any],
    temperature_events: int = 0,
    warnings: Sequence[str] = (),
) -> dict[str, Any]:
    """The alert: time, position (RA, Dec), error radii and areas, events, site, what made it.

    Args:
        fit: the burst fit.
        sky: its sky map.
        site: the detector site used.
        n_es_expected: the expected number of ES events (ES share × events), if one was used.
        classification: how ES and CC events were told apart, in words.
        sources: model, classifier and tables identifiers, input files.
        temperature_events: events per burst the map's temperature was calibrated on (0: none).
        warnings: what a reader of the alert must know (e.g. a burst far from the calibration's size).
    """
    ra, dec = fit_radec(fit, sky.time, site)
    return {
        "format": ALERT_FORMAT,
        "version": 1,
        "time_utc": sky.time.isot,
        "position": {"ra_deg": ra, "dec_deg": dec, "frame": "ICRS",
                     "what": "the supernova's position (opposite to the neutrinos' direction)"},
        "map_peak": {"ra_deg": sky.peak_radec[0], "dec_deg": sky.peak_radec[1]},
        "error_radius_deg": {f"{cl:g}": r for cl, r in sky.radius_deg.items()},
        "credible_area_deg2": {f"{cl:g}": a for cl, a in sky.area_deg2.items()},
        "credible_regions": sky.regions,
        "likelihood_temperature": {"T": float(sky.temperature), "calibrated_for_events": int(temperature_events)},
        "detector_direction": [float(x) for x in np.asarray(fit.direction, dtype=np.float64)],
        "events": {"n": int(fit.n_events), "expected_es": n_es_expected, "classification": classification},
        "site": site.to_dict(),
        "sources": dict(sources),
        "software": f"edkeras {__version__}",
        "fit_seconds": float(fit.seconds),
        "warnings": list(warnings),
    }
