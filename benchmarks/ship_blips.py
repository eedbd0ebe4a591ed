"""Fit the blip combination of an ES/CC classifier and measure what the blips add.

The classifier network (`pretrained:es_cc` by default) sees the image window only. This
script simulates two independent balanced ES + CC samples with the production model's
detector-response spread — a calibration sample and a test sample, seeds apart from every
training file — takes the network's ES probability (equal priors) on both, fits
:mod:`edkeras.reco.blip_combination` on the calibration sample alone and reports the ES/CC
separation on the test sample for the network alone, the blips alone and the two joined
(AUC, CC share passing at 50/70/90 % ES efficiency). It prints one JSON object. With
``--ship`` it writes ``blips.json`` beside the shipped classifier and adds the figures to its
model card.

Example (2-core CPU, a few minutes):
    python benchmarks/ship_blips.py --events 20000 --ship
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.train_production import RESPONSE_SPREAD  # noqa: E402


def _sample(path: Path, n: int, seed: int, workers: int) -> Path:
    from edkeras.core.schema import from_dict
    from edkeras.events.sim import SimConfig, simulate_to_file

    if not path.exists():
        cfg = from_dict(SimConfig, {"channel": "mix", "es_fraction": 0.5, "response": RESPONSE_SPREAD})
        simulate_to_file(path, n, seed=seed, config=cfg, workers=workers, progress=False)
    return path


def blips_only(blips: np.ndarray, blip_energy: np.ndarray) -> np.ndarray:
    """A score from the blips alone (fewer and weaker blips: more ES-like)."""
    return -(np.minimum(blips, 4) + 0.01 * np.log1p(blip_energy))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--classifier", default="pretrained:es_cc")
    p.add_argument("--events", type=int, default=20000, help="events of each sample (calibration, test)")
    p.add_argument("--seed", type=int, default=20261210, help="calibration seed; the test sample uses seed + 1")
    p.add_argument("--data-dir", default="data")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--ship", action="store_true", help="write blips.json beside the (shipped) classifier")
    args = p.parse_args(argv)

    from edkeras.events.eventfile import open_events
    from edkeras.reco.blip_combination import FILE_NAME, apply_combination, fit_combination, save_combination
    from edkeras.reco.evaluate import classifier_es_probability
    from edkeras.reco.metrics import es_cc_separation
    from edkeras.reco.pretrained import resolve_run_dir, write_card_markdown

    t0 = time.time()
    data = Path(args.data_dir)
    data.mkdir(parents=True, exist_ok=True)
    files = {k: _sample(data / f"blips_{k}_{args.events}_seed{s}.h5", args.events, s, args.workers)
             for k, s in (("calibration", args.seed), ("test", args.seed + 1))}
    t_sim = time.time() - t0
    fields = {}
    for k, f in files.items():
        with open_events(f) as ev:
            fields[k] = {n: ev.field(n) for n in ("blips", "blip_energy", "interaction", "reco_energy")}
        fields[k]["network"] = classifier_es_probability(args.classifier, f, blips=False)
    cal, test = fields["calibration"], fields["test"]
    params = fit_combination(cal["network"], cal["blips"], cal["blip_energy"], cal["interaction"])
    params["fitted_on"] = {"events": args.events, "seed": args.seed, "classifier": args.classifier,
                           "response_spread": RESPONSE_SPREAD}
    joined = apply_combination(params, test["network"], test["blips"], test["blip_energy"])
    y = test["interaction"]
    es, cc = y == 1, y == 0
    result = {
        "classifier": args.classifier,
        "test": {"events": args.events, "seed": args.seed + 1},
        "network": es_cc_separation(test["network"], y),
        "blips_only": es_cc_separation(blips_only(test["blips"], test["blip_energy"]), y),
        "network_and_blips": es_cc_separation(joined, y),
        "weights": dict(zip(params["features"], params["weights"])),
        "blips_at_least_one": {"es": float((test["blips"][es] >= 1).mean()), "cc": float((test["blips"][cc] >= 1).mean())},
        "blips_mean": {"es": float(test["blips"][es].mean()), "cc": float(test["blips"][cc].mean())},
        "seconds": {"simulate": round(t_sim, 1), "total": round(time.time() - t0, 1)},
    }
    params["test"] = {k: result[k] for k in ("test", "network", "network_and_blips")}
    if args.ship:
        folder = resolve_run_dir(args.classifier)
        save_combination(params, folder / FILE_NAME)
        card_path = folder / "card.json"
        if card_path.exists():
            card = json.loads(card_path.read_text())
            card.setdefault("metrics", {})["simulated_test_es_cc_with_blips"] = {
                "sample": f"{args.events} balanced ES + CC events, simulation seed {args.seed + 1} (the blip weights "
                          f"were fitted on {args.events} others, seed {args.seed})",
                "network_alone": result["network"],
                "network_and_blips": result["network_and_blips"],
                "command": f"python benchmarks/ship_blips.py --events {args.events} --seed {args.seed} --ship",
            }
            card_path.write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n")
            write_card_markdown(folder)
        result["shipped"] = str(folder / FILE_NAME)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
