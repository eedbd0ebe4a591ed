"""Build the likelihood tables shipped beside a shipped model, on a fresh calibration sample.

The calibration sample is simulated with a seed that neither the model's training file
nor any test file used, at isotropic supernova directions (so that the detector-response
map and the acceptance can be fitted); the shipped model predicts it through
``edkeras evaluate``; the tables are fitted with the pointing notebook's settings (KDE,
response map of degree 3 and acceptance of degree 4, both mirror-symmetric; ES and CC sub-tables). They are written
to ``edkeras/reco/models/shipped/NAME/tables.npz`` and the model card gains a ``tables`` block;
``card.md`` (the card's Markdown section) is rewritten from ``card.json``. With
``--mirror-average`` the calibration sample's directions are averaged over each event's eight
mirror images, and the tables' model identity ends in ``+mirror8``: they then point only
mirror-averaged predictions (``edkeras evaluate --mirror-average``; ``edkeras alert`` averages by
itself when its tables say so). Prints one JSON object.

Example (the tables shipped with compact_vmf; ``--predictions`` reuses the sample of an earlier run):
    python benchmarks/ship_tables.py --name compact_vmf --events 20000 --seed 20261207 \\
        --predictions runs/ship_tables/sample_n20000x1_seed20261207_network.npz
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--name", default="compact_vmf")
    p.add_argument("--events", type=int, default=20000)
    p.add_argument("--seed", type=int, default=20261207)
    p.add_argument("--work-dir", default="runs/ship_tables")
    p.add_argument("--response-degree", type=int, default=3)
    p.add_argument("--mirror-symmetric", action=argparse.BooleanOptionalAction, default=True,
                   help="response map and acceptance with the detector's eight mirror images as symmetries")
    p.add_argument("--predictions",
                   help="the calibration sample's network predictions, already made by an earlier run of this "
                        "script with the same --events, --seed and --mirror-average (tables rebuilt, nothing simulated)")
    p.add_argument("--acceptance-degree", type=int, default=4)
    p.add_argument("--method", default="kde")
    p.add_argument("--mirror-average", action="store_true",
                   help="tables of mirror-averaged directions (their model identity ends in +mirror8)")
    args = p.parse_args(argv)

    from edkeras.pointing.fitting import build_table
    from edkeras.pointing.tables import save_table
    from edkeras.reco.predictions import MIRROR_TAG, load_predictions
    from edkeras.reco.pretrained import TABLES_FILE, model_card, pretrained_dir, write_card_markdown
    from edkeras.reco.runs import model_identity
    from edkeras.studies.analysis import simulated_sample

    folder = pretrained_dir(args.name)
    card = model_card(args.name)
    if args.seed == card["training_data"].get("seed"):
        raise SystemExit(f"ship_tables: seed {args.seed} is the training file's seed; use another")
    t0 = time.time()
    if args.predictions:
        pred = load_predictions(args.predictions)
        expected = model_identity(folder / "model.keras") + (MIRROR_TAG if args.mirror_average else "")
        name = f"sample_n{args.events}x1_seed{args.seed}_network.npz"  # as simulated_sample names it
        if pred.model != expected or len(pred) != args.events or Path(args.predictions).name != name:
            raise SystemExit(f"ship_tables: {args.predictions} holds {len(pred)} events of model {pred.model}; "
                             f"expected {name} with {args.events} events of model {expected}")
    else:
        pred = simulated_sample(folder, args.events, seed=args.seed, out_dir=args.work_dir, classical=False,
                                mirror_average=args.mirror_average)["network"]
    t_sample = time.time() - t0
    table = build_table(pred, method=args.method, reference="neutrino", response_degree=args.response_degree,
                        acceptance_degree=args.acceptance_degree, mirror_symmetric=args.mirror_symmetric)
    path = save_table(table, folder / TABLES_FILE, overwrite=True)
    comps = ", ".join(["all", *table.components])
    summary = (f"{args.method}, reference neutrino, {len(table.energy_bins)} energy bins, tables {comps}, "
               f"response map degree {args.response_degree}, acceptance degree {args.acceptance_degree}"
               + (" (both mirror-symmetric)" if args.mirror_symmetric else "") + ", "
               f"sense {table.sense}; fitted on {len(pred):,} isotropic calibration events (seed {args.seed})"
               + ("; directions averaged over each event's eight mirror images" if args.mirror_average else ""))
    card["tables"] = {
        "file": TABLES_FILE,
        "summary": summary,
        "calibration_sample": {"events": len(pred), "seed": args.seed, "directions": "isotropic",
                               "simulation": "edkeras.events.sim defaults (mix of ES and CC)",
                               "used_for_training_or_testing": False},
        "method": args.method, "response_degree": args.response_degree,
        "acceptance_degree": args.acceptance_degree, "mirror_symmetric": args.mirror_symmetric,
        "sense": table.sense, "model": table.model,
        "mirror_average": args.mirror_average,
        "events_per_energy_bin": table.n_events_per_bin.tolist(),
        "created": datetime.date.today().isoformat(),
        "command": "python benchmarks/ship_tables.py " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    card["limits"] = [x for x in card.get("limits", []) if "not shipped yet" not in x]
    (folder / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    write_card_markdown(folder)
    out = {"tables": str(path), "events": len(pred), "sample_seconds": round(t_sample, 1),
           "total_seconds": round(time.time() - t0, 1), "summary": summary}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
