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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pool", required=True, help="network predictions of a fixed-direction pointing sample")
    ap.add_argument("--calibration", nargs="+", required=True, help="predictions the tables are built from")
    ap.add_argument("--degrees", type=int, nargs="+", default=[2], help="response-map degrees to compare")
    ap.add_argument("--bursts", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0, help="the burst plan's seed (the notebook's seed)")
    ap.add_argument("--es", type=int, default=272)
    ap.add_argument("--cc", type=int, default=3150)
    args = ap.parse_args(argv)

    from edkeras.pointing import build_table, classification_weights, direction_groups, fit_burst, plan_bursts
    from edkeras.reco.metrics import angular_error_deg
    from edkeras.reco.predictions import load_predictions

    pool = load_predictions(args.pool)
    cal = [load_predictions(p) for p in args.calibration]
    groups, dirs = direction_groups(pool.nu_directions)
    plan = plan_bursts(len(pool), {1: args.es, 0: args.cc}, args.bursts, np.random.default_rng(args.seed),
                       pool.interaction, groups=groups, group_directions=dirs)
    out = {"pool": args.pool, "calibration": args.calibration,
           "calibration_es_events": int(sum(int(np.sum(c.interaction == 1)) for c in cal)),
           "bursts": args.bursts, "es": args.es, "cc": args.cc, "tables": {}}
    for degree in args.degrees:
        t0 = time.time()
        table = build_table(cal, method="kde", reference="neutrino", response_degree=degree, acceptance_degree=4)
        t_build = time.time() - t0
        tables = {"es": table.component("es"), "cc": table.component("cc")}
        fits = []
        for idx in plan.indices:
            w = classification_weights(len(idx), mode="perfect", interaction=pool.interaction[idx])
            fits.append(fit_burst(pool.predictions[idx], pool.energies[idx], tables, weights=w).direction)
        fits = np.asarray(fits)
        err = angular_error_deg(fits, plan.directions)
        per_direction = []
        for s in dirs:
            sel = np.all(np.isclose(plan.directions, s, atol=1e-6), axis=1)
            if not sel.any():
                continue
            mean = np.broadcast_to(fits[sel].mean(axis=0), fits[sel].shape)
            per_direction.append({"direction": np.round(s, 3).tolist(), "bursts": int(sel.sum()),
                                  "bias_deg": float(angular_error_deg(mean[:1], s[None])[0]),
                                  "scatter_rms_deg": float(np.sqrt(np.mean(angular_error_deg(fits[sel], mean) ** 2)))})
        out["tables"][f"degree {degree}"] = {
            "theta68": float(np.quantile(err, 0.68)), "median_error": float(np.median(err)),
            "mean_bias_deg": float(np.mean([d["bias_deg"] for d in per_direction])),
            "mean_scatter_deg": float(np.mean([d["scatter_rms_deg"] for d in per_direction])),
            "per_direction": per_direction, "build_seconds": round(t_build, 1)}
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
