"""Train the production network: simulate with the detector-response spread, train, evaluate.

One script for a GPU (large budget, minutes) and a CPU (small budget; rerun to resume: the
event files are kept and ``edkeras.reco.training.train`` resumes an interrupted run). It
prints one JSON line with the budget, wall times and the held-out metrics, on the
simulated test split and, when ``--real`` names an ingested real event file, on real
events (never used for any choice: the epoch is chosen on validation).

Example (the H200 run quoted in benchmarks/README.md):
    KERAS_BACKEND=jax python benchmarks/train_production.py --events 150000 --epochs 40 --time-limit 270 \\
        --batch-size 256 --learning-rate 0.002 --workers 16 --out runs/production --real data/real_es.h5
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESPONSE_SPREAD = {"gain_sigma": 0.15, "threshold_sigma": 0.10, "shaping_sigma": 0.15}
"""Domain randomisation of the training sample: ±15 % gain (the real-versus-simulated
ADC/MeV differ by up to 12–22 % on U/V), ±10 % threshold, ±15 % pulse width."""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=20000)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--learning-rate", type=float, default=1e-3)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--out", default="runs/production")
    p.add_argument("--data-dir", default="data")
    p.add_argument("--real", default=None, help="ingested real event file to evaluate on (optional)")
    p.add_argument("--scale", choices=("cpu", "full"), default="full")
    p.add_argument("--no-spread", action="store_true", help="train without the detector-response spread")
    p.add_argument("--head", choices=("vmf", "axial"), default="vmf",
                   help="vmf (direction + κ; the shipped compact_vmf) or axial (axis + sense, two-peak tables)")
    p.add_argument("--initial-weights", default=None, metavar="MODEL",
                   help="fine-tune: start from this model's weights (pretrained:NAME, a run folder or a .keras file)")
    p.add_argument("--seed", type=int, default=20261204, help="simulation seed of the training sample")
    p.add_argument("--time-limit", type=float, default=None, metavar="S",
                   help="stop training after the epoch that ends past S seconds (the epoch is still chosen on validation)")
    args = p.parse_args(argv)

    from edkeras.core.schema import from_dict, to_dict
    from edkeras.events.sim import SimConfig, simulate_to_file

    t0 = time.time()
    data_dir = Path(args.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    spread = {} if args.no_spread else RESPONSE_SPREAD
    sim_cfg = from_dict(SimConfig, {"channel": "mix", "response": spread})
    # the simulator's settings are part of the name: a file of an earlier simulator version is not reused
    version = hashlib.sha256(json.dumps(to_dict(sim_cfg), sort_keys=True).encode()).hexdigest()[:8]
    train_file = data_dir / f"production_{args.events}_{args.seed}_{version}.h5"
    if not train_file.exists():
        simulate_to_file(train_file, args.events, seed=args.seed, config=sim_cfg, workers=args.workers)
    t_sim = time.time() - t0

    from edkeras.reco.evaluate import evaluate
    from edkeras.reco.training import train
    from edkeras.studies import phase

    config = phase.phase_config(
        "production", str(train_file), None, args.epochs, 0, False, model="compact", head=args.head,
        scale=args.scale, augmentation={"mirror": True},
        training={"batch_size": args.batch_size, "learning_rate": args.learning_rate, "schedule": "cosine",
                  "min_learning_rate": args.learning_rate / 20, "early_stopping_patience": 4,
                  "bootstrap_samples": 300},
        data_options={"cache": True},
    )
    if args.initial_weights:
        config = dataclasses.replace(config, model=dataclasses.replace(config.model, initial_weights=args.initial_weights))
    import keras

    class TimeLimit(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if args.time_limit is not None and time.time() - t1 > args.time_limit:
                self.model.stop_training = True

    t1 = time.time()
    result = train(config, run_dir=args.out, verbose=2, callbacks=[TimeLimit()])
    t_train = time.time() - t1
    out = {
        "head": args.head, "events": args.events, "epochs_run": result.epochs_run, "best_epoch": result.best_epoch,
        "batch_size": args.batch_size, "sample_passes": result.epochs_run * int(args.events * 0.7),
        "simulate_s": round(t_sim, 1), "train_s": round(t_train, 1), "response_spread": spread,
        "backend": os.environ.get("KERAS_BACKEND", "tensorflow"), "initial_weights": args.initial_weights,
        "train_file": str(train_file), "learning_rate": args.learning_rate,
        "test": result.metrics.get("test", {}).get("overall"), "val": result.metrics.get("val", {}).get("overall"),
    }
    if args.real and Path(args.real).exists():
        real = evaluate(args.out, args.real, out=Path(args.out) / "predictions_real.npz")["metrics"]
        out["real"] = real["overall"]
    (Path(args.out) / "production_summary.json").write_text(json.dumps(out, indent=2, default=str))
    print(json.dumps(out, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
