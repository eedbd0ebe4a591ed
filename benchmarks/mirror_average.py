"""Which mirror average to use: a model's predictions over subsets of the mirror group, plain and κ-weighted.

Predicts every event of an event file as each of its eight mirror images
(``edkeras.reco.evaluation.mirrored_predictions``), mirrors the directions back, and scores five ways of
combining them on the events' true directions: the plain prediction (identity only), the
mean of all eight, the κ-weighted mean of all eight (what ``edkeras evaluate --mirror-average``
does), the mean over the x and z mirrors (four) and over the x mirror (two). ES and all events,
θ68, median (68 % bootstrap interval) and flips. Run it on a selection sample, never on the
test events whose figures you will quote. Prints one JSON object.

Usage (benchmarks/README.md, 2026-12-07):
    python benchmarks/mirror_average.py --model pretrained:compact_vmf --data data/select_mix_20261212.h5
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

COMBINATIONS = {  # name: (mirror indices into MIRRORS, κ-weighted)
    "plain": ([0], False),
    "mean8": (list(range(8)), False),
    "kappa8": (list(range(8)), True),
    "mean4_xz": ([0, 1, 4, 5], False),
    "mean2_x": ([0, 4], False),
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="pretrained:compact_vmf", help="a finished vmf run folder or pretrained:NAME")
    ap.add_argument("--data", required=True, help="event file with true directions (a selection sample)")
    ap.add_argument("--n-boot", type=int, default=200)
    args = ap.parse_args(argv)

    from edkeras.reco.dataset import EventDataset
    from edkeras.reco.evaluate import _load_finished_run
    from edkeras.reco.evaluation import combine_mirror_views, mirrored_predictions
    from edkeras.reco.event_index import index_events
    from edkeras.reco.metrics import angular_error_deg, resolution_summary

    _, config, model = _load_finished_run(args.model)
    if config.model.head != "vmf":
        raise SystemExit(f"mirror_average: {args.model} has head {config.model.head!r}; this compares κ weights (vmf)")
    ds = EventDataset(index_events([args.data]), 256, head="vmf")
    true, interaction = ds.labels("direction"), ds.labels("interaction")
    t0 = time.perf_counter()
    preds = np.concatenate([mirrored_predictions(model, ds[b][0]) for b in range(len(ds))], axis=1)
    seconds = time.perf_counter() - t0
    ds.close()

    result: dict = {"benchmark": "mirror_average", "model": args.model, "data": args.data, "events": len(true),
                    "predict_seconds_8_mirrors": round(seconds, 1), "combinations": {}}
    for name, (which, weighted) in COMBINATIONS.items():
        w = preds[which, :, 3:4] if weighted else np.ones((len(which), len(true), 1))
        direction, cancelled = combine_mirror_views(preds[which], w)
        err = angular_error_deg(direction, true)
        row: dict = {"cancelled_events": int(cancelled.sum())}
        for label, mask in (("es", interaction == 1), ("all", np.ones(len(true), bool))):
            s = resolution_summary(err[mask], n_boot=args.n_boot)
            row[label] = {"n": s["n"], "theta68": round(s["theta68"], 2), "median": round(s["median"], 2),
                          "median_ci": [round(v, 2) for v in s["median_ci"]], "flips": round(s["flip_fraction"], 4)}
        result["combinations"][name] = row
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
