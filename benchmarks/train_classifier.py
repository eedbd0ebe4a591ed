"""Train the ES/CC classifier: a multitask network whose ES probability weighs the burst likelihood.

The shipped direction model (`pretrained:compact_vmf`) has no ES/CC output. This script
simulates a balanced ES + CC sample with the same detector-response spread as the
production model, trains the `compact` builder with the multitask head (direction, energy,
ES probability) and chooses the epoch on the validation ES/CC cross-entropy
(`training.monitor: val_interaction_loss`); the direction output only shares the features.
It prints one JSON line: the budget, the wall times and the held-out separation on the
simulated test split (AUC, CC share passing at 50/70/90 % ES efficiency; never used for any
choice). Rerun to resume: the event file is kept and the run resumes.

Example (the run shipped as `pretrained:es_cc`, 2-core CPU):
    python benchmarks/train_classifier.py --events 40000 --epochs 12 --out runs/es_cc --ship es_cc

With ``--ship NAME`` the finished run is copied into ``edkeras/reco/models/shipped/NAME`` with a
model card (a finished run is not trained again).
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

from benchmarks.train_production import RESPONSE_SPREAD  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=40000)
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--learning-rate", type=float, default=1e-3)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--out", default="runs/es_cc")
    p.add_argument("--data-dir", default="data")
    p.add_argument("--scale", choices=("cpu", "full"), default="cpu")
    p.add_argument("--seed", type=int, default=20261206, help="simulation seed of the training sample")
    p.add_argument("--energy-input", action="store_true",
                   help="give the network the reconstructed energy as an input (data.energy_input)")
    p.add_argument("--ship", metavar="NAME", help="copy the finished run into the package as pretrained:NAME")
    args = p.parse_args(argv)

    from edkeras.core.schema import from_dict
    from edkeras.events.sim import SimConfig, simulate_to_file
    from edkeras.reco.training import train
    from edkeras.studies import phase

    t0 = time.time()
    data_dir = Path(args.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    sim_cfg = from_dict(SimConfig, {"channel": "mix", "es_fraction": 0.5, "response": RESPONSE_SPREAD})
    train_file = data_dir / f"classifier_{args.events}_seed{args.seed}.h5"
    if not train_file.exists():
        simulate_to_file(train_file, args.events, seed=args.seed, config=sim_cfg, workers=args.workers)
    t_sim = time.time() - t0

    config = phase.phase_config(
        "es_cc", str(train_file), None, args.epochs, 0, False, model="compact", head="multitask",
        scale=args.scale, augmentation={"mirror": True},
        training={"batch_size": args.batch_size, "learning_rate": args.learning_rate, "schedule": "cosine",
                  "min_learning_rate": args.learning_rate / 20, "early_stopping_patience": 4,
                  "monitor": "val_interaction_loss", "interaction_loss_weight": 1.0,
                  "loss_options": {"direction_weight": 0.2}, "bootstrap_samples": 300},
        data_options={"energy_input": args.energy_input},
    )
    run_dir = Path(args.out)
    summary_path = run_dir / "classifier_summary.json"
    if (run_dir / "metrics.json").exists() and summary_path.exists():
        out = json.loads(summary_path.read_text())  # finished: only ship it
    else:
        t1 = time.time()
        result = train(config, run_dir=run_dir, verbose=2)
        t_train = time.time() - t1
        test = result.metrics.get("test", {})
        out = {
            "events": args.events, "epochs_run": result.epochs_run, "best_epoch": result.best_epoch,
            "batch_size": args.batch_size, "learning_rate": args.learning_rate,
            "sample_passes": result.epochs_run * int(args.events * 0.7),
            "simulate_s": round(t_sim, 1), "train_s": round(t_train, 1), "response_spread": RESPONSE_SPREAD,
            "backend": os.environ.get("KERAS_BACKEND", "tensorflow"), "seed": args.seed, "scale": args.scale,
            "energy_input": args.energy_input,
            "test_interaction": test.get("interaction"),
            "val_interaction": result.metrics.get("val", {}).get("interaction"),
            "split": result.metrics.get("split"),
        }
        from edkeras.core.files import write_text

        write_text(summary_path, json.dumps(out, indent=2, default=str))
    print(json.dumps(out, default=str))
    if args.ship:
        _ship(run_dir, args.ship, out, " ".join(["python", "benchmarks/train_classifier.py", *sys.argv[1:]]))
    return 0


def _ship(run_dir: Path, name: str, out: dict, command: str) -> None:
    import keras

    import edkeras.reco.models  # noqa: F401  (custom layers)
    from edkeras.reco.pretrained import ship_run
    from edkeras.reco.training import gpu_present

    model = keras.saving.load_model(run_dir / "model.keras", compile=False)
    hardware = "a GPU" if gpu_present() else f"CPU ({os.cpu_count()} cores)"
    card = {
        "role": "es_cc_classifier",
        "created": time.strftime("%Y-%m-%d"),
        "model": {"builder": "compact", "head": "multitask", "loss": "angular (weight 0.2) + energy MSLE (0.1) + "
                  "ES/CC cross-entropy (1.0)", "parameters": int(model.count_params()),
                  "inputs": "U, V, X images (128, 32), canonical frame, ADC"
                            + (" + the reconstructed energy (MeV)" if out.get("energy_input") else ""),
                  "outputs": "ES probability (interaction); its direction and energy outputs only share the "
                             "features and are not for use"},
        "training_data": {"generator": "edkeras.events.sim (trigger-primitive imaging path, 39Ar background, noise TPs)",
                          "channel": "mix (ES 50 %, CC 50 %)", "events": out["events"], "seed": out["seed"],
                          "response_spread": out["response_spread"], "split": out.get("split")},
        "budget": {"epochs_run": out["epochs_run"], "best_epoch_0based": out["best_epoch"],
                   "chosen_on": "val_interaction_loss", "sample_passes": out["sample_passes"],
                   "batch_size": out["batch_size"], "learning_rate": f"{out['learning_rate']}, cosine to 1/20",
                   "hardware": f"{hardware}, Keras {keras.__version__} ({out['backend']})",
                   "train_seconds": out["train_s"], "command": command},
        "metrics": {"interval": "held-out simulated test split; none of it chose anything",
                    "simulated_test_es_cc": out["test_interaction"]},
        "use": [f"edkeras evaluate pretrained:compact_vmf --classifier pretrained:{name} --data FILE --out PRED.npz "
                "puts its ES probability (for equal priors) into the predictions; edkeras point PRED.npz --tables "
                "pretrained:compact_vmf then weighs each event's ES and CC tables by it",
                f"edkeras run pointing -p classification classifier -p classifier pretrained:{name}"],
        "limits": ["Trained on simulation only; no real CC events were available to check it, and the real ES "
                   "windows hold fewer other clusters than the simulated ones (edkeras compare), so its CC "
                   "rejection on real events is not known.",
                   "It tells ES from CC mainly by the de-excitation photons' blips and the energy; it sees only "
                   "the 128 x 32 window around the electron."],
    }
    print(f"shipped: {ship_run(run_dir, name, card)}")


if __name__ == "__main__":
    raise SystemExit(main())
