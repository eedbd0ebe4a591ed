"""``edkeras likelihood``: fit P(cos θ | E) tables from predictions files (never the test split).

Example:
    edkeras likelihood runs/r1/predictions_val.npz --out tables.npz --method mixture \\
        --validate runs/r1/predictions_cal.npz
"""

from __future__ import annotations

import argparse
import sys

from edkeras.core.errors import AcceptanceError, InputError, ResponseMapError
from edkeras.pointing.fitting import build_table
from edkeras.pointing.rows import FLOOR, METHODS
from edkeras.pointing.table_checks import compare_methods
from edkeras.pointing.tables import DEFAULT_ENERGY_EDGES, REFERENCES, SENSES, SMOOTHINGS, save_table
from edkeras.reco.predictions import load_predictions

__all__ = ["HELP", "configure", "run"]

HELP = "Fit likelihood tables P(cos θ | E) from predictions files (validation or calibration, never test)."


def _edge(text: str) -> float:
    try:
        return float(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"energy bin edge must be a number or inf; received {text!r}") from e


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``edkeras likelihood``."""

    parser.add_argument("predictions", nargs="+", help="predictions .npz files (joined)")
    parser.add_argument("--out", required=True, help="output table .npz")
    parser.add_argument("--method", choices=METHODS, default="kde", help="density estimate (default kde)")
    parser.add_argument(
        "--reference",
        choices=REFERENCES,
        default="neutrino",
        help="angle to the neutrino (pointing; default) or to the true electron",
    )
    parser.add_argument(
        "--energy-bins",
        nargs="+",
        type=_edge,
        default=list(DEFAULT_ENERGY_EDGES),
        metavar="EDGE",
        help="reconstructed-energy bin edges in MeV (default 5 10 15 20 30 50 inf)",
    )
    parser.add_argument(
        "--kappa-bins",
        type=int,
        default=0,
        metavar="N",
        help="also tabulate in N bins of predicted kappa (3-D table)",
    )
    parser.add_argument(
        "--sense",
        choices=SENSES,
        default="auto",
        help="'oriented': rows of directions turned to their true sense, the burst weighing the two "
        "peaks by each event's flip probability (axial head); 'predicted': rows of the predictions "
        "as they are; 'auto' (default): oriented when the predictions carry flip probabilities",
    )
    parser.add_argument("--cos-bins", type=int, default=100, help="number of cos θ bins (default 100)")
    parser.add_argument(
        "--cos-spacing",
        choices=("angle", "cos"),
        default="angle",
        help="bins equal in angle (default) or in cos θ",
    )
    parser.add_argument("--smoothing", choices=SMOOTHINGS, default="auto", help="smoothing across energy")
    parser.add_argument("--floor", type=float, default=FLOOR, help=f"smallest density (default {FLOOR:g})")
    parser.add_argument("--min-events", type=int, default=20, help="fewest events to fit a bin on its own")
    parser.add_argument(
        "--no-per-interaction",
        action="store_true",
        help="do not fit separate ES and CC tables when both are present",
    )
    parser.add_argument(
        "--validate",
        metavar="HELDOUT.npz",
        help="score every method on these held-out predictions (mean ln L, PIT coverage)",
    )
    parser.add_argument(
        "--allow-test",
        action="store_true",
        help="accept a file whose split is 'test' (tables must not be fitted on the test split)",
    )
    parser.add_argument(
        "--response-degree",
        default="auto",
        metavar="N",
        help="degree of the detector-response map fitted on the ES events, so that bursts point at the "
        "supernova and not at the reconstruction's bias in the detector frame: 1 (a 3x3 matrix and an offset, "
        "needs >= 80 ES events from many directions), 2 (>= 180), 3 (>= 320), 0 (none: cos θ from the "
        "reference itself, as the earlier tables); default auto: 1 when the input allows it, else 0 with a note",
    )
    parser.add_argument(
        "--acceptance-degree",
        default="auto",
        metavar="L",
        help="highest spherical-harmonic degree of the reconstruction's detector-frame acceptance g(d), "
        "so that the burst likelihood carries its normalisation Z(s) and the fit is not drawn to the "
        "directions the reconstruction prefers anyway: 1-4 (4 needs >= 240 events from many directions), "
        "0 (none, as the earlier tables); default auto: 4 when the input allows it, else 0 with a note",
    )
    parser.add_argument(
        "--mirror-symmetric",
        action="store_true",
        help="response map and acceptance that respect the detector's eight mirror images (sign flips of x, y, "
        "z; exact for simulated events): an eighth of the coefficients from the same events; a symmetric map "
        "has odd degree, so use --response-degree 1 or 3",
    )
    parser.add_argument("--force", action="store_true", help="overwrite --out")


def _degree(value: str, option: str, auto: int, highest: int) -> int:
    """A ``--…-degree`` value: ``auto`` or an integer 0 … ``highest``."""

    if value == "auto":
        return auto
    try:
        degree = int(value)
    except ValueError:
        degree = -1
    if not 0 <= degree <= highest:
        allowed = ", ".join(str(i) for i in range(highest)) + f" or {highest}"
        raise InputError(f"--{option} must be auto, {allowed}; received {value!r}")
    return degree


def _check_split(pred: object, allow_test: bool) -> None:

    if "test" in str(pred.split).split("+"):
        if not allow_test:
            raise InputError(
                f"{pred.path}: split is 'test'; likelihood tables are never fitted or chosen on the test "
                "split (use validation or a calibration sample, or --allow-test to override)"
            )
        print(
            f"edkeras likelihood: warning: using {pred.path} from the test split (--allow-test); "
            "numbers measured on that split are no longer held out",
            file=sys.stderr,
        )


def run(args: argparse.Namespace) -> int:
    """Fit, save, optionally validate; print a short summary."""
    from pathlib import Path

    import numpy as np
    from tqdm import tqdm


    out = Path(args.out)  # an existing --out without --force is refused by the CLI before any work
    parts = []
    for p in tqdm(
        args.predictions, desc="reading predictions", unit="file", disable=len(args.predictions) < 3
    ):
        pred = load_predictions(p)
        _check_split(pred, args.allow_test)
        parts.append(pred)
    options = {
        "method": args.method,
        "reference": args.reference,
        "energy_edges": args.energy_bins,
        "n_cos": args.cos_bins,
        "cos_spacing": args.cos_spacing,
        "kappa_bins": args.kappa_bins,
        "smoothing": args.smoothing,
        "floor": args.floor,
        "min_events": args.min_events,
        "per_interaction": not args.no_per_interaction,
        "response_degree": _degree(args.response_degree, "response-degree", auto=1, highest=3),
        "acceptance_degree": _degree(args.acceptance_degree, "acceptance-degree", auto=4, highest=4),
        "sense": args.sense,
        "mirror_symmetric": args.mirror_symmetric,
    }
    # "auto" falls back to plain tables, with a note, where the input cannot carry a map or an
    # acceptance (one supernova direction, too few events); an explicit degree is an error then
    table = None
    while table is None:
        try:
            table = build_table(parts, **options)
        except (ResponseMapError, AcceptanceError) as e:
            key, what = ("acceptance", "acceptance") if isinstance(e, AcceptanceError) else ("response", "response map")
            if getattr(args, f"{key}_degree") != "auto" or not options[f"{key}_degree"]:
                raise
            print(f"edkeras likelihood: note: no {what} ({e})", file=sys.stderr)
            options[f"{key}_degree"] = 0
    save_table(table, out, overwrite=args.force)
    n_in = sum(len(p) for p in parts)
    n_used = int(table.n_events_per_bin.sum())
    if n_used < n_in:
        e = np.concatenate([np.asarray(p.energies, dtype=np.float64) for p in parts])
        lo, hi = float(table.energy_edges[0]), float(table.energy_edges[-1])
        print(
            f"edkeras likelihood: note: {n_in - n_used} of {n_in} events not tabulated: "
            f"{int(np.sum(~np.isfinite(e)))} without a finite energy, {int(np.sum(e < lo))} below {lo:g} MeV, "
            f"{int(np.sum(e >= hi))} at or above {hi:g} MeV, the rest without a finite reference direction",
            file=sys.stderr,
        )
    comps = ", ".join(["all", *table.components]) if table.components else "all"
    print(
        f"{out}: {args.method} table, reference {args.reference}, {len(table.energy_bins)} energy bins "
        f"({int(table.n_events_per_bin.sum())} events), tables: {comps}"
        + (f", {args.kappa_bins} kappa bins" if args.kappa_bins else "")
        + (f", response map of degree {table.response.degree}" if table.response is not None else "")
        + (f", acceptance of degree {table.acceptance.l_max}" if table.acceptance is not None else "")
        + (", senses oriented (two-peak rows weighted by the flip probability)" if table.sense == "oriented" else "")
    )
    if args.validate:
        held = load_predictions(args.validate)
        _check_split(held, args.allow_test)
        opts = {k: v for k, v in options.items() if k not in ("method", "acceptance_degree", "sense")}
        scores = compare_methods(parts, held, **opts)
        print(f"held-out check on {args.validate} ({next(iter(scores.values()))['n']} events):")
        for m, s in scores.items():
            cov = s["pit"]["coverage"]
            mark = "  <- written" if m == args.method else ""
            print(
                f"  {m:10s} mean ln L = {s['mean_log_likelihood']:+.4f}   PIT coverage "
                + " ".join(f"{q:.0%}:{v:.3f}" for q, v in cov.items())
                + f"   KS p = {s['pit']['p_value']:.3g}{mark}"
            )
        best = max(scores, key=lambda m: scores[m]["mean_log_likelihood"])
        print(f"  best held-out mean ln L: {best}")
    return 0
