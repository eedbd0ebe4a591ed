"""Where burst pointing loses its degrees: the fit's bias per supernova direction against its scatter.

A pointing sample (events simulated at a few fixed supernova directions, as ``notebooks/pointing.ipynb``
writes them: ``runs/NAME/sample_n…x…_seed…_network.npz``) is cut into bursts of 272 ES + 3,150 CC
events (perfect ES/CC classification, the notebook's plan for the same seed), and every burst is
fitted with tables built from the calibration predictions given (the notebook's settings: KDE,
neutrino reference, acceptance of degree 4, ES and CC sub-tables), once per response-map degree.
For each supernova direction: the angle between the mean fitted direction and the truth (the
**bias**, what more bursts do not average away) and the rms angle of the fits around their mean
(the **scatter**, statistical). A pointing θ68 well above the scatter is made by the biases.
Choose table settings on a sample whose figures you will not quote. Prints one JSON object.

Usage (benchmarks/README.md, 2026-12-07):
    python benchmarks/pointing_bias.py --pool runs/pointing_ft0/sample_n8000x3_seed30000_network.npz \\
        --calibration runs/pointing_ft0/sample_n6000x1_seed20000_network.npz --degrees 2
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pool", required=True, help="network predictions of a fixed-direction pointing sample")
    ap.add_argument("--calibration", nargs="+", default=[], help="predictions the tables are built from")
    ap.add_argument("--tables", nargs="+", default=[],
                    help="tables files or pretrained:NAME to fit with as they are (besides those built)")
    ap.add_argument("--es-probability",
                    help=".npy of a classifier's ES probability per pool event: adds fits with that classifier")
    ap.add_argument("--degrees", type=int, nargs="+", default=[2], help="response-map degrees to compare")
    ap.add_argument("--mirror-symmetric", action="store_true",
                    help="response map and acceptance that respect the detector's eight mirror images")
    ap.add_argument("--halves", action="store_true",
                    help="also build the tables from each random half of the calibration events and report, per "
                         "direction, how far apart the two halves' mean fits are (the map's noise, not its form)")
    ap.add_argument("--bursts", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0, help="the burst plan's seed (the notebook's seed)")
    ap.add_argument("--es", type=int, default=272)
    ap.add_argument("--cc", type=int, default=3150)
    args = ap.parse_args(argv)

    from edkeras.pointing import build_table, classification_weights, direction_groups, fit_burst, plan_bursts
    from edkeras.pointing.tables import load_table
    from edkeras.reco.metrics import angular_error_deg
    from edkeras.reco.predictions import load_predictions
    from edkeras.reco.pretrained import resolve_tables

    if not args.calibration and not args.tables:
        ap.error("give --calibration predictions to build tables from, or --tables to fit with")
    pool = load_predictions(args.pool)
    cal = [load_predictions(p) for p in args.calibration]
    modes = {"perfect": None}
    if args.es_probability:
        p_es = np.load(args.es_probability)
        if p_es.shape != (len(pool),):
            raise SystemExit(f"{args.es_probability}: shape {p_es.shape}, expected ({len(pool)},) (one per pool event)")
        modes["classifier"] = p_es
    groups, dirs = direction_groups(pool.nu_directions)
    plan = plan_bursts(len(pool), {1: args.es, 0: args.cc}, args.bursts, np.random.default_rng(args.seed),
                       pool.interaction, groups=groups, group_directions=dirs)
    out = {"pool": args.pool, "calibration": args.calibration,
           "calibration_es_events": int(sum(int(np.sum(c.interaction == 1)) for c in cal)),
           "es_probability": args.es_probability,
           "bursts": args.bursts, "es": args.es, "cc": args.cc, "mirror_symmetric": args.mirror_symmetric,
           "tables": {}}
    setups = [(f"degree {d}", d, None) for d in (args.degrees if cal else [])]
    setups += [(spec, None, load_table(resolve_tables(spec))) for spec in args.tables]
    for name, degree, table in setups:
        t0 = time.time()
        if table is None:
            table = build_table(cal, method="kde", reference="neutrino", response_degree=degree, acceptance_degree=4,
                                mirror_symmetric=args.mirror_symmetric)
        t_build = time.time() - t0
        def fits(table: Any, p_es: Any = None, mode: str = "perfect") -> np.ndarray:
            tables = {"es": table.component("es"), "cc": table.component("cc")}
            out = []
            for idx in plan.indices:
                w = classification_weights(len(idx), mode=mode, interaction=pool.interaction[idx],
                                           es_fraction=args.es / (args.es + args.cc),
                                           es_probability=None if p_es is None else p_es[idx])
                out.append(fit_burst(pool.predictions[idx], pool.energies[idx], tables, weights=w).direction)
            return np.asarray(out)

        for mode, p_es in modes.items():
            out["tables"][name if mode == "perfect" else f"{name}, {mode}"] = _bias_summary(
                fits(table, p_es, mode), plan.directions, dirs, angular_error_deg, t_build)
        if args.halves and degree is not None:
            rng = np.random.default_rng(1)
            picks = [rng.random(len(c)) < 0.5 for c in cal]
            means = [_mean_fits(fits(build_table([c.select(m == half) for c, m in zip(cal, picks)], method="kde",
                                                 reference="neutrino", response_degree=degree, acceptance_degree=4,
                                                 mirror_symmetric=args.mirror_symmetric)), plan.directions, dirs)
                     for half in (True, False)]
            apart = angular_error_deg(means[0], means[1])
            out["tables"][name]["halves_apart_deg"] = [round(float(a), 2) for a in apart]
            out["tables"][name]["halves_apart_mean_deg"] = float(np.mean(apart))
    print(json.dumps(out, indent=1))
    return 0


def _mean_fits(fits: np.ndarray, truth: np.ndarray, dirs: np.ndarray) -> np.ndarray:
    """(K, 3) the mean fitted direction of each supernova direction's bursts, normalised."""
    sel = [np.all(np.isclose(truth, s, atol=1e-6), axis=1) for s in dirs]
    means = np.array([fits[m].mean(axis=0) for m in sel if m.any()])
    return means / np.linalg.norm(means, axis=1, keepdims=True)


def _bias_summary(fits: np.ndarray, truth: np.ndarray, dirs: np.ndarray, angle: Any, t_build: float) -> dict[str, Any]:
    """θ68 of the fits, and per supernova direction the bias of their mean and their scatter about it."""
    err = angle(fits, truth)
    per_direction = []
    for s in dirs:
        sel = np.all(np.isclose(truth, s, atol=1e-6), axis=1)
        if not sel.any():
            continue
        mean = np.broadcast_to(fits[sel].mean(axis=0), fits[sel].shape)
        per_direction.append({"direction": np.round(s, 3).tolist(), "bursts": int(sel.sum()),
                              "bias_deg": float(angle(mean[:1], s[None])[0]),
                              "scatter_rms_deg": float(np.sqrt(np.mean(angle(fits[sel], mean) ** 2)))})
    return {"theta68": float(np.quantile(err, 0.68)), "median_error": float(np.median(err)),
            "mean_bias_deg": float(np.mean([d["bias_deg"] for d in per_direction])),
            "mean_scatter_deg": float(np.mean([d["scatter_rms_deg"] for d in per_direction])),
            "per_direction": per_direction, "build_seconds": round(t_build, 1)}


if __name__ == "__main__":
    raise SystemExit(main())
