"""``edkeras evaluate RUN_DIR --data FILE``: apply a finished run's model to any event file.

Example:
    edkeras evaluate runs/compact --data data/other.h5 --out other_predictions.npz
    edkeras evaluate pretrained:compact_vmf --data data/real_es.h5
    edkeras evaluate pretrained:compact_vmf --data data/real_es.h5 --mirror-average
    edkeras evaluate pretrained:compact_vmf --classifier pretrained:es_cc --data burst.h5 --out burst.npz
"""

from __future__ import annotations

import argparse
import json

from edkeras.core.files import jsonable

__all__ = ["HELP", "configure", "run"]

HELP = "Apply a run's model to an event file; print the resolution (where the truth is known), save predictions."


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``edkeras evaluate``."""
    parser.add_argument("run_dir", help="a finished run folder (config.json, model.keras), or pretrained:NAME "
                        "for a shipped model (edkeras models lists them)")
    parser.add_argument("--data", required=True, metavar="FILE", help="event file (HDF5, edkeras-events)")
    parser.add_argument("--out", metavar="PRED.npz", help="write the predictions here (docs/formats.md §2)")
    parser.add_argument(
        "--classifier", metavar="RUN",
        help="a multitask run (or pretrained:NAME) whose ES probability goes into the predictions "
        "(es_probability, for equal priors): edkeras point then weighs each event's ES and CC tables by it",
    )
    parser.add_argument(
        "--mirror-average", action="store_true",
        help="average each event's direction over its eight mirror images (exact detector symmetries; "
        "8 x the prediction time); such predictions are pointed only with tables built from mirror-averaged "
        "predictions (their model identity ends in +mirror8)",
    )
    parser.add_argument("--force", action="store_true", help="overwrite --out")
    parser.add_argument("--batch-size", type=int, default=256, help="events per prediction batch")
    parser.add_argument("--json", action="store_true", help="print the full result as JSON")


def run(args: argparse.Namespace) -> int:
    """Predict, print θ68 with its interval (or only the counts when there is no truth)."""
    # here, not at the top: TensorFlow loads only when the command runs
    from edkeras.reco.evaluate import evaluate

    result = evaluate(args.run_dir, args.data, out=args.out, batch_size=args.batch_size, classifier=args.classifier,
                      mirror_average=args.mirror_average)
    if args.json:
        print(json.dumps(jsonable(result), indent=2))
        return 0
    print(f"{result['data']}: {result['n_events']} events, {result['n_with_truth']} with a true direction")
    m = result["metrics"]
    if m is not None:
        s = m["overall"]
        lo, hi = s["theta68_ci"]
        print(f"theta68 = {s['theta68']:.2f} deg [{lo:.2f}, {hi:.2f}]  median = {s['median']:.2f} deg  "
              f"flips = {s['flip_fraction']:.3f}")
        sep = m.get("interaction", {})
        if "auc" in sep:
            print(f"ES/CC: AUC = {sep['auc']:.3f}; CC passing at 50/70/90 % ES efficiency: "
                  + " / ".join(f"{100 * v:.1f} %" for v in sep["cc_pass"].values()))
    if result["predictions"]:
        print(f"predictions: {result['predictions']}")
    return 0
