"""A burst to an alert: reconstruct every event, fit the burst, map it on the sky, write the files.

What ``edkeras alert`` runs (``docs/cli.md``); the files are described in ``docs/formats.md`` §10.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from edkeras.core.errors import InputError
from edkeras.core.files import atomic_path, write_json
from edkeras.events.tp_ingest import ingest_tpstream
from edkeras.pointing import classification_weights, fit_burst, flips_for, load_table
from edkeras.pointing.alert import alert_record
from edkeras.pointing.sky import DUNE_FAR_DETECTOR, DetectorSite, parse_time
from edkeras.pointing.skymap import burst_skymap
from edkeras.pointing.tables import LikelihoodTable
from edkeras.reco.evaluate import evaluate
from edkeras.reco.predictions import MIRROR_TAG, load_predictions
from edkeras.reco.pretrained import resolve_run_dir, resolve_tables
from edkeras.reco.runs import model_identity
from edkeras.reports.plots.skymap import alert_figure

__all__ = ["EXPECTED_ES_SHARE", "write_alert"]

EXPECTED_ES_SHARE = 272 / (272 + 3150)
"""ES share of a burst at 10 kpc in 40 kt (272 ES + 3,150 CC; shared/physics/REFERENCE.md)."""


class _Stages:
    """A progress bar over the alert's stages, each stage's time printed as it ends (with ``progress``) and kept."""

    def __init__(self, n: int, progress: bool) -> None:
        self.bar = tqdm(total=n, desc="edkeras alert", unit="stage", file=sys.stderr,
                        disable=None if progress else True, leave=False)
        self.progress = progress
        self.seconds: dict[str, float] = {}
        self.t0 = time.perf_counter()

    def done(self, name: str, what: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = round(now - self.t0, 3)
        if self.progress:
            tqdm.write(f"edkeras alert: {what} ({now - self.t0:.1f} s)", file=sys.stderr)
        self.bar.update(1)
        self.t0 = now

    def close(self) -> None:
        self.bar.close()


def _calibration_warnings(table: LikelihoodTable, n_events: int) -> list[str]:
    """Why the map's credible regions may not hold the supernova as often as they say."""
    n_cal = table.burst_temperature_events
    if not n_cal:
        return ["the tables carry no burst calibration: the map is the raw likelihood, whose credible regions "
                "can be too small (calibrate with benchmarks/alert_coverage.py --calibrate)"]
    if not 0.5 <= n_events / n_cal <= 2.0:
        return [f"the map's temperature T = {table.burst_temperature:.2f} was calibrated on bursts of {n_cal} "
                f"events; this burst has {n_events}, so its credible regions are less certain"]
    return []


def write_alert(
    inputs: Sequence[str | Path], *, model: str, tables: str, time_utc: str, out: str | Path,
    classifier: str | None = None, es_fraction: float = EXPECTED_ES_SHARE, force: bool = False,
    site: DetectorSite = DUNE_FAR_DETECTOR, progress: bool = True,
    mark: tuple[float, float] | None = None, label: str = "",
) -> dict[str, Any]:
    """Write ``alert.json``, ``skymap.fits``, ``skymap.png`` (and the predictions) into the folder ``out``.

    Args:
        inputs: TP dumps (``.root``) or one event file.
        model: a finished run or ``pretrained:NAME`` giving the directions.
        tables: likelihood tables (``.npz`` or ``pretrained:NAME``) built for ``model``; tables
            built from mirror-averaged predictions (model identity ending ``+mirror8``) make
            the events' directions mirror-averaged too.
        time_utc: the burst's time, ISO 8601 UTC.
        out: the output folder (written under a temporary name, then renamed).
        classifier: a multitask run or ``pretrained:NAME`` giving each event's ES probability.
        es_fraction: the expected ES share of the burst.
        force: replace an existing ``out``.
        site: the detector's site and orientation.
        progress: print each stage's time and the warnings to stderr, with a progress bar on a
            terminal (the record keeps both regardless).
        mark: (RA, Dec) in degrees of a known source to mark on ``skymap.png`` (a simulated burst's star).
        label: the marked source's name.

    Returns:
        The alert record.
    """
    when = parse_time(time_utc)
    if not 0.0 < es_fraction < 1.0:
        raise InputError(f"--es-fraction must be strictly between 0 and 1; received {es_fraction}")
    out = Path(out)
    if out.exists() and not force:
        raise FileExistsError(f"--out {out}: exists; pass --force to replace it")
    inputs = [Path(p) for p in inputs]
    roots = [p for p in inputs if p.suffix == ".root"]
    if (roots and len(roots) != len(inputs)) or (not roots and len(inputs) != 1):
        raise InputError("INPUT: give TP dumps (.root) or one event file, not a mix")
    table = load_table(resolve_tables(tables))
    mirror = table.model.endswith(MIRROR_TAG)  # tables of mirror-averaged predictions point only such predictions
    model_file = resolve_run_dir(model) / "model.keras"
    if model_file.is_file():  # refused before any event is reconstructed (a missing model is evaluate's to report)
        table.check_model(model_identity(model_file) + (MIRROR_TAG if mirror else ""), where=f"--tables {tables}")
    stages = _Stages(4 + bool(roots), progress)
    with closing(stages), atomic_path(out) as tmp:
        tmp.mkdir(parents=True)
        events = inputs[0]
        if roots:
            events = ingest_tpstream(roots, tmp / "events.h5", progress=progress, command="edkeras alert").path
            stages.done("ingest", f"ingested {len(roots)} TP dump(s)")
        evaluate(model, events, out=tmp / "predictions.npz", classifier=classifier, mirror_average=mirror)
        pred = load_predictions(tmp / "predictions.npz")
        if len(pred) == 0:
            raise InputError(f"{events}: the burst holds no event")
        bad = ~np.isfinite(pred.energies)
        if bad.any():
            raise InputError(f"{events}: event index {int(np.flatnonzero(bad)[0])} has no finite reconstructed energy "
                             f"({int(bad.sum())} such events); a burst needs every event's energy")
        stages.done("reconstruct", f"reconstructed {len(pred)} events" + (", mirror-averaged" if mirror else ""))
        lo, hi = float(table.energy_edges[0]), float(table.energy_edges[-1])
        if not ((pred.energies >= lo) & (pred.energies < hi)).any():
            raise InputError(f"{tables}: no event of the burst lies in the tables' energy range [{lo:g}, {hi:g}) MeV")
        if table.components:
            burst_tables = {"es": table.component("es"), "cc": table.component("cc")}
            mode = "classifier" if pred.es_probability is not None else "mixed"
            weights = classification_weights(len(pred), mode=mode, es_fraction=es_fraction,
                                              es_probability=pred.es_probability)
            how = (f"ES/CC tables weighted by the expected ES share {es_fraction:.3f}"
                   + (" and each event's ES probability" if mode == "classifier" else ""))
        else:
            burst_tables, weights, how = table.component("all"), None, "one table for all events"
        fit = fit_burst(pred.predictions, pred.energies, burst_tables, kappa=pred.kappa_equivalent, weights=weights,
                        flip_probability=flips_for(burst_tables, pred.flip_probability))
        stages.done("fit", "fitted the burst")
        warnings = _calibration_warnings(table, len(pred))
        for w in warnings if progress else ():
            tqdm.write(f"edkeras alert: warning: {w}", file=sys.stderr)
        sky = burst_skymap(fit, when, site, temperature=table.burst_temperature)
        sky.write(tmp / "skymap.fits")
        alert_figure(sky, mark=mark, label=label).savefig(tmp / "skymap.png", dpi=110)
        stages.done("map", f"sky map at nside {sky.nside}")
        record = alert_record(fit, sky, site, n_es_expected=es_fraction * len(pred),
                              classification=how, sources={"inputs": [str(p) for p in inputs], "model": model,
                                                           "classifier": classifier, "tables": tables,
                                                           "model_identity": pred.model or None,
                                                           "tables_model_identity": table.model or None,
                                                           "mirror_average": mirror},
                              temperature_events=table.burst_temperature_events, warnings=warnings)
        record["stage_seconds"] = dict(stages.seconds)
        write_json(tmp / "alert.json", record)
        stages.done("write", "wrote alert.json")
        if out.exists():
            shutil.rmtree(out)
    return record
