"""What a training budget buys: θ68, median and flips against sample passes, on fixed test events.

One simulated ES+CC pool (the main job's mix, default 30,000 events, fixed seed) is split
once (70/15/15, split seed 0), so every entry trains on the same 21,000 events and is
measured on the same 4,500 test events, which choose nothing (the checkpoint is the best
epoch on validation; no early stopping, so the budget is what it says). The budget is
counted in **sample passes** = epochs × training events.

Entries are ``HEAD:EPOCHS[:SEED][:KEY=VALUE,...]`` on the ``compact`` builder (the shipped
model's), for example ``vmf:2`` (v21's vMF head, 2 epochs = 42 k passes) or
``axial:10:1:batch_size=256`` (the axis + sense head, seed 1, batch 256). The keys are
``batch_size``, ``learning_rate``, ``warmup_epochs`` (training) and ``normalization``
(``log1p`` or ``none``: the model's input scaling). Every entry prints the test metrics
overall and for ES events, with 68 % bootstrap intervals, wall time and samples/s, and
the direction's two halves for ES events: the axis (the sign-free angle, median and 68 %)
and the share of events whose sense is wrong (error > 90°).

Outputs: one JSON object on stdout (and ``--out``, rewritten after every entry; finished
runs in ``--runs-dir`` are reused unless ``--force``, so an interrupted benchmark resumes)
and a Markdown table
(``--markdown``). The wall time and samples/s are those of the ``fit`` itself (recorded
in the run's ``metrics.json``, so a reused run keeps them).

Usage (the CPU figures of benchmarks/README.md):
    python benchmarks/learning_curve.py --entries vmf:2 vmf:2:1 axial:2 axial:2:1 \\
        vmf:2::normalization=none vmf:2:1:normalization=none vmf:2::warmup_epochs=1 \\
        vmf:2:1:warmup_epochs=1 vmf:2::batch_size=256 vmf:2:1:batch_size=256 vmf:10 axial:10 \\
        --out runs/learning_curve.json --markdown runs/learning_curve.md
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TRAINING_KEYS = ("batch_size", "learning_rate", "warmup_epochs")
MODEL_KEYS = ("normalization",)


def parse_entry(text: str) -> dict[str, Any]:
    """``HEAD:EPOCHS[:SEED][:KEY=VALUE,...]`` → a dict (errors name the entry)."""
    parts = text.split(":")
    if len(parts) < 2 or len(parts) > 4:
        raise SystemExit(f"learning_curve: entry {text!r} must be HEAD:EPOCHS[:SEED][:KEY=VALUE,...]")
    head, epochs = parts[0], parts[1]
    if head not in ("vmf", "axial", "direction"):
        raise SystemExit(f"learning_curve: entry {text!r}: head must be vmf, axial or direction")
    seed = int(parts[2]) if len(parts) > 2 and parts[2] else 0
    changes: dict[str, Any] = {}
    for item in (parts[3].split(",") if len(parts) > 3 and parts[3] else []):
        key, _, value = item.partition("=")
        if key not in TRAINING_KEYS + MODEL_KEYS:
            raise SystemExit(f"learning_curve: entry {text!r}: unknown key {key!r}; valid: {TRAINING_KEYS + MODEL_KEYS}")
        changes[key] = value if key == "normalization" else (int(value) if key != "learning_rate" else float(value))
    return {"entry": text, "head": head, "epochs": int(epochs), "seed": seed, "changes": changes}


def run_entry(spec: dict[str, Any], pool: Path, runs_dir: Path, n_boot: int, force: bool = False) -> dict[str, Any]:
    from edkeras.reco.metrics import resolution_summary
    from edkeras.reco.predictions import load_predictions
    from edkeras.studies import phase

    changes = spec["changes"]
    tag = "_".join(f"{k}-{v}" for k, v in sorted(changes.items()))
    name = f"lc_{spec['head']}_e{spec['epochs']}_s{spec['seed']}" + (f"_{tag}" if tag else "")
    config = phase.phase_config(
        name, str(pool), None, spec["epochs"], spec["seed"], False, model="compact", head=spec["head"],
        scale="full", augmentation={"mirror": True},
        options={k: v for k, v in changes.items() if k in MODEL_KEYS},
        training={"schedule": "cosine", "early_stopping_patience": None, "bootstrap_samples": n_boot,
                  **{k: v for k, v in changes.items() if k in TRAINING_KEYS}},
        data_options={"cache": True},
    )
    t0 = time.time()
    with contextlib.redirect_stdout(sys.stderr):  # Keras's progress lines: stdout holds the JSON only
        result = phase.train_or_load(config, force=force, runs_dir=runs_dir)
    wall = time.time() - t0
    run_dir = Path(runs_dir) / name
    test = load_predictions(run_dir / "predictions_test.npz")
    es = test.interaction == 1
    m = result.metrics
    n_train = int(m["events"]["train"])
    timing = m.get("timing", {})
    out = {
        **spec,
        "run": name,
        "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch,
        "n_train": n_train,
        "sample_passes": n_train * int(result.epochs_run),
        "train_wall_s": round(wall, 1) if wall > 5 else None,  # None: a finished run reused
        "fit_s": timing.get("fit_seconds_this_session"),
        "samples_per_s": timing.get("train_samples_per_second"),
        "test_all": resolution_summary(test.angular_errors, n_boot=n_boot),
        "test_es": resolution_summary(test.angular_errors[es], n_boot=n_boot),
    }
    # the two halves of a direction: the axis (sign-free angle) and the sense (hemisphere)
    cos = np.sum(test.predictions * test.true_directions, axis=1)
    axis = np.degrees(np.arccos(np.clip(np.abs(cos), 0.0, 1.0)))
    out["es_axis_median"] = float(np.median(axis[es]))
    out["es_axis_theta68"] = float(np.quantile(axis[es], 0.68))
    out["es_sense_wrong"] = float(np.mean(cos[es] < 0))
    if test.flip_probability is not None:
        from edkeras.reco.metrics import sense_calibration

        out["sense"] = sense_calibration(test.flip_probability, test.angular_errors)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--entries", nargs="+", default=["vmf:2", "axial:2"])
    p.add_argument("--pool-events", type=int, default=30000)
    p.add_argument("--data-dir", default="data")
    p.add_argument("--runs-dir", default="runs/learning_curve")
    p.add_argument("--bootstrap", type=int, default=300)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--out", default=None)
    p.add_argument("--markdown", default=None)
    p.add_argument("--force", action="store_true", help="retrain finished runs (default: reuse them)")
    args = p.parse_args(argv)
    specs = [parse_entry(e) for e in args.entries]

    from edkeras.events.sim import simulate_to_file

    pool = Path(args.data_dir) / f"learning_curve_pool_{args.pool_events}.h5"
    if not pool.exists():
        pool.parent.mkdir(parents=True, exist_ok=True)
        simulate_to_file(pool, args.pool_events, seed=20261206, workers=args.workers)
    import keras

    results: dict[str, Any] = {"pool": str(pool), "backend": keras.backend.backend(), "entries": []}
    for spec in specs:
        r = run_entry(spec, pool, Path(args.runs_dir), args.bootstrap, force=args.force)
        results["entries"].append(r)
        print(json.dumps({k: r[k] for k in ("entry", "sample_passes", "train_wall_s")}
                         | {"es_theta68": r["test_es"]["theta68"], "all_theta68": r["test_all"]["theta68"]}),
              file=sys.stderr, flush=True)
        if args.out:
            tmp = Path(args.out).with_suffix(".tmp")
            tmp.write_text(json.dumps(results, indent=1, default=str))
            os.replace(tmp, args.out)
    print(json.dumps(results, default=str))
    if args.markdown:
        Path(args.markdown).write_text(markdown(results))
    return 0


def _ci(s: dict[str, Any], key: str) -> str:
    lo, hi = s.get(f"{key}_ci", (None, None))
    return f"{s[key]:.1f} [{lo:.1f}, {hi:.1f}]" if lo is not None else f"{s[key]:.1f}"


def markdown(results: dict[str, Any]) -> str:
    """The table of benchmarks/README.md."""
    rows = ["| entry | sample passes | ES θ68 | ES median | ES flips | ES axis median / θ68 | ES sense wrong | all θ68 "
            "| all median | fit s | samples/s |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results["entries"]:
        es, al = r["test_es"], r["test_all"]
        sps = r.get("samples_per_s") or float("nan")
        rows.append(
            f"| `{r['entry']}` | {r['sample_passes']:,} | {_ci(es, 'theta68')} | {_ci(es, 'median')} | "
            f"{100 * es['flip_fraction']:.1f} % | {r['es_axis_median']:.1f}° / {r['es_axis_theta68']:.1f}° | "
            f"{100 * r['es_sense_wrong']:.1f} % | {_ci(al, 'theta68')} | {_ci(al, 'median')} | "
            f"{r['fit_s'] or float('nan'):.0f} | {sps:.0f} |"
        )
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
