"""``edkeras point``: fit the supernova direction of the burst made of all events in a predictions file.

Example:
    edkeras point burst.npz --tables tables.npz --json --skymap sky.png
    edkeras point burst.npz --tables es.npz --tables-cc cc.npz --es-fraction 0.08
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from edkeras.core.errors import InputError
from edkeras.pointing.burst import delta_log_likelihood, fit_burst
from edkeras.pointing.likelihood import classification_weights
from edkeras.pointing.resolution import flips_for
from edkeras.pointing.tables import LikelihoodTable, load_table
from edkeras.reco.predictions import load_predictions
from edkeras.reco.pretrained import resolve_tables
from edkeras.reports.plots.sky import skymap_figure

__all__ = ["HELP", "configure", "run"]

HELP = "Fit the supernova direction of a burst (all events of a predictions file) with likelihood tables."


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``edkeras point``."""
    parser.add_argument("predictions", help="predictions .npz: the burst")
    parser.add_argument(
        "--tables", required=True,
        help="likelihood table .npz (the ES table in mixed mode), or pretrained:NAME for a shipped model's tables",
    )
    parser.add_argument("--tables-cc", metavar="FILE", help="CC likelihood table .npz (mixed ES/CC burst)")
    parser.add_argument(
        "--es-fraction",
        type=float,
        metavar="F",
        help="expected ES share of the burst (mixed mode: with ES/CC tables, and by default whenever the "
        "predictions carry an ES probability; default: from the file's labels)",
    )
    parser.add_argument(
        "--perfect-classification",
        action="store_true",
        help="give each event the table of its true interaction (needs 'interaction')",
    )
    parser.add_argument(
        "--no-kappa", action="store_true", help="ignore predicted kappa even if the table has kappa bins"
    )
    parser.add_argument(
        "--lattice", type=int, default=3072, help="points of the coarse sky scan (default 3072)"
    )
    parser.add_argument(
        "--region-threshold",
        action="append",
        default=[],
        metavar="CL=DELTA",
        help="ΔlnL of the CL region calibrated on simulated bursts (edkeras.pointing.resolution.region_thresholds; "
        "the pointing notebook prints them), e.g. --region-threshold 0.68=6.1 --region-threshold 0.9=14; "
        "default: the tables' burst calibration, T × -ln(1 - CL) with the temperature T they carry (the regions "
        "of edkeras alert's map), else Wilks' theorem, -ln(1 - CL)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--skymap", metavar="PNG", help="write a Mollweide sky map")


def _tables(args: argparse.Namespace, has_es_probability: bool = False) -> tuple[object, str]:
    """The table(s) to point with: ES and CC tables when the burst is to be classified, else one table."""
    main = load_table(resolve_tables(args.tables))
    if args.tables_cc:
        cc = load_table(resolve_tables(args.tables_cc))
        es_t = main.component("es") if "es" in main.components else main.component("all")
        cc_t = cc.component("cc") if "cc" in cc.components else cc.component("all")
        return {"es": es_t, "cc": cc_t}, "ES and CC tables from two files"
    if args.perfect_classification or args.es_fraction is not None or (has_es_probability and main.components):
        if not main.components:
            raise InputError(
                f"{args.tables}: has no ES/CC sub-tables; give --tables-cc, or drop "
                "--perfect-classification/--es-fraction to point with the one table"
            )
        return {"es": main.component("es"), "cc": main.component("cc")}, "ES and CC sub-tables"
    return main.component("all"), "one table"


def _outside_energy_bins(energies: Any, tables: Any) -> str:
    """'' when every energy lies in the tables' bins; else what lies outside, in words."""
    import numpy as np

    first = tables if not isinstance(tables, dict) else next(iter(tables.values()))
    lo, hi = float(first.energy_edges[0]), float(first.energy_edges[-1])
    e = np.asarray(energies, dtype=np.float64)
    below, above = int(np.sum(e < lo)), int(np.sum(e >= hi))
    parts = [f"{below} below {lo:g} MeV"] * bool(below) + [f"{above} at or above {hi:g} MeV"] * bool(above)
    return f"{below + above} of {len(e)} events outside the tables' energy bins ({', '.join(parts)})" if parts else ""


def _thresholds(items: list[str]) -> dict[float, float]:

    out: dict[float, float] = {}
    for item in items:
        cl, sep, value = item.partition("=")
        try:
            level, delta = float(cl), float(value)
        except ValueError:
            level = delta = float("nan")
        if not sep or not 0.0 < level < 1.0 or not delta > 0.0:
            raise InputError(
                f"--region-threshold must be CL=DELTA with 0 < CL < 1 and DELTA > 0 (e.g. 0.68=6.1); received {item!r}"
            )
        out[level] = delta
    return out


def run(args: argparse.Namespace) -> int:
    """Fit the burst; print the direction and its regions (text or JSON); optionally draw the sky map."""
    import json

    import numpy as np


    pred = load_predictions(args.predictions)
    if pred.energies is None:
        raise InputError(
            f"{args.predictions}: key 'energies' (reconstructed energy) is missing; pointing needs it"
        )
    bad = ~np.isfinite(pred.energies)
    if bad.any():
        raise InputError(
            f"{args.predictions}: event index {int(np.flatnonzero(bad)[0])} has a non-finite reconstructed energy "
            f"({int(bad.sum())} such events); a burst needs every event's energy"
        )
    tables, how = _tables(args, has_es_probability=pred.es_probability is not None)
    for name, t in tables.items() if isinstance(tables, dict) else [("all", tables)]:
        source = args.tables_cc if name == "cc" and args.tables_cc else args.tables
        t.check_model(pred.model, where=f"{source} with {args.predictions}")
    weights = None
    mode = "single table"
    if not isinstance(tables, LikelihoodTable):
        if args.perfect_classification:
            mode = "perfect classification"
            weights = classification_weights(len(pred), mode="perfect", interaction=pred.interaction)
        else:
            frac = args.es_fraction
            if frac is None:
                if pred.interaction is None or np.any(pred.interaction < 0):
                    raise InputError(
                        f"{args.predictions}: --es-fraction is needed (the expected ES share of the burst: the file's "
                        "interaction labels are missing or unknown)"
                    )
                frac = float(np.mean(pred.interaction == 1))
            if not 0.0 < frac < 1.0:
                raise InputError(f"--es-fraction must be strictly between 0 and 1; received {frac}")
            mode = f"mixed (ES fraction {frac:.3g}" + (
                ", classifier ES probability)" if pred.es_probability is not None else ")"
            )
            weights = classification_weights(
                len(pred), mode="mixed", es_fraction=frac, es_probability=pred.es_probability
            )
    outside = _outside_energy_bins(pred.energies, tables)
    if outside:
        print(f"edkeras point: note: {outside} — they use the nearest bin's row", file=sys.stderr)
    thresholds = _thresholds(args.region_threshold)
    main = tables["es"] if isinstance(tables, dict) else tables
    if not thresholds and main.burst_temperature_events:  # the tables' calibration, as edkeras alert's map uses it
        thresholds = {cl: main.burst_temperature * delta_log_likelihood(cl) for cl in (0.68, 0.9)}
        how += f"; regions tempered by T = {main.burst_temperature:.2f} (calibrated on bursts of " \
               f"{main.burst_temperature_events} events)"
    fit = fit_burst(
        pred.predictions,
        pred.energies,
        tables,
        kappa=None if args.no_kappa else pred.kappa_equivalent,
        weights=weights,
        flip_probability=flips_for(tables, pred.flip_probability),
        n_lattice=args.lattice,
        **({"region_thresholds": thresholds} if thresholds else {}),
    )
    summary = fit.summary()
    summary.update({"predictions": str(args.predictions), "tables": how, "mode": mode,
                    "energy_outside_table": outside or None})
    truth = None
    if pred.nu_directions is not None and np.all(np.isfinite(pred.nu_directions)):
        nu = pred.nu_directions
        if np.max(np.linalg.norm(nu - nu[0], axis=1)) < 1e-4:
            truth = nu[0]
            summary["true_direction"] = [float(x) for x in truth]
            summary["error_deg"] = fit.angle_to_deg(truth)
            for cl in fit.delta_log_likelihood:
                summary[f"truth_in_{round(100 * cl):d}"] = fit.contains(truth, cl)
    if args.skymap:

        fig = skymap_figure(fit, true_direction=truth)
        fig.savefig(args.skymap, dpi=120)
        summary["skymap"] = str(args.skymap)
    if args.json:
        print(json.dumps(summary, indent=None))
    else:
        d = summary["direction"]
        print(f"{args.predictions}: {fit.n_events} events, {mode}")
        print(
            f"  direction (x, y, z) = ({d[0]:+.4f}, {d[1]:+.4f}, {d[2]:+.4f});  "
            f"theta = {summary['theta_deg']:.2f} deg, phi = {summary['phi_deg']:.2f} deg"
        )
        print(
            "  "
            + ", ".join(f"{100 * cl:g} % region radius {r:.2f} deg" for cl, r in fit.region_radius_deg.items())
            + f" ({fit.approximation})"
        )
        if truth is not None:
            inside = ", ".join(
                f"inside {100 * cl:g} %: {summary[f'truth_in_{round(100 * cl):d}']}" for cl in fit.delta_log_likelihood
            )
            print(f"  true direction {summary['error_deg']:.2f} deg away ({inside})")
        if fit.secondary_direction is not None:
            sec = summary["secondary"]
            inside = [f"{100 * cl:g} %" for cl, v in fit.delta_log_likelihood.items() if sec["delta_log_likelihood"] <= v]
            print(
                f"  second local maximum {sec['angle_deg']:.1f} deg away, ln L lower by {sec['delta_log_likelihood']:.2f}"
                + (f" (within the {' and '.join(inside)} threshold: the burst does not exclude it)" if inside else "")
            )
        print(f"  fit took {fit.seconds:.2f} s")
    return 0
