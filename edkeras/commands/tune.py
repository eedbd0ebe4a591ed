"""``edkeras tune CONFIG``: hyperparameter search, then the best trial retrained and tested once.

The config is one JSON file: the run config plus a ``tuning`` section
(:class:`edkeras.reco.search_space.TuningConfig`); unknown keys in either are errors. The search
lives in ``runs/<name>/tuner/``; an interrupted search resumes when the same command is
run again. With ``KERASTUNER_TUNER_ID``, ``KERASTUNER_ORACLE_IP`` and
``KERASTUNER_ORACLE_PORT`` set, the process is the chief (``KERASTUNER_TUNER_ID=chief``:
serves the search, then retrains the best trial) or a worker (runs trials only); see
``docs/distributed_tuning.md``.

Example:
    edkeras tune configs/v17_hyperopt.json --set tuning.n_trials=20 --set tuning.algorithm=random
"""

from __future__ import annotations

import argparse
from pathlib import Path

from edkeras.reco.runs import runs_dir

__all__ = ["HELP", "configure", "run"]

HELP = "Search hyperparameters with keras-tuner (Bayesian, Hyperband or random), then retrain the best trial."


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``edkeras tune``."""
    parser.add_argument("config", help="run config with a 'tuning' section (JSON); unknown keys are errors")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a key, e.g. tuning.n_trials=20 or training.batch_size=32 (repeatable)")
    parser.add_argument("--name", help="run name (the folder under --runs); default: the config's name")
    parser.add_argument("--runs", metavar="DIR", help="folder of run folders (default: runs/ of the repository)")
    parser.add_argument("--force", action="store_true",
                        help="redo a finished tuned run: start the search afresh and retrain (chief or single)")
    parser.add_argument("--quiet", action="store_true", help="no Keras progress bars inside trials")


def run(args: argparse.Namespace) -> int:
    """Load the config, search (or join a distributed search), retrain the best trial, print the result."""
    # here, not at the top: TensorFlow loads only when the command runs
    from edkeras.reco.tuning import load_tune_config, tune, tuner_role
    config, tuning = load_tune_config(args.config, args.overrides, name=args.name)
    root = Path(args.runs) if args.runs else runs_dir()
    role = tuner_role()
    result = tune(config, tuning, root / config.name, force=args.force,
                  verbose=0 if args.quiet else "auto", progress=True)
    s = result.search
    if role == "worker":
        print(f"worker {s.project_dir.name}: ran trials {', '.join(s.trials_run) or '(none)'}; "
              f"the chief retrains the best trial")
        return 0
    best = result.best or {}
    print(f"search {s.project_dir}: {sum(r['status'] == 'COMPLETED' for r in s.trials)} of "
          f"{len(s.trials)} trials completed")
    print(f"best trial {best.get('trial_id')}: {tuning.objective} = {best.get('value'):.2f} deg (validation)  "
          f"{best.get('hyperparameters')}")
    if result.run is not None:
        for split in ("val", "test"):
            m = result.run.metrics[split]["overall"]
            lo, hi = m["theta68_ci"]
            print(f"{split:>4}: theta68 = {m['theta68']:.2f} deg [{lo:.2f}, {hi:.2f}]  median = {m['median']:.2f} deg "
                  f"(n = {m['n']})")
        print(f"run: {result.run_dir}  (trials.csv, tuning.json, best_config.json)")
    return 0
