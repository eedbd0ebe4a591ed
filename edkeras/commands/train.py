"""``edkeras train CONFIG``: train one run from a strict JSON config into ``runs/<name>/``.

Example:
    edkeras train configs/compact.json --set training.epochs=5 --set model.head=vmf \\
        --set training.loss=vmf_nll --name compact_vmf
"""

from __future__ import annotations

import argparse
from pathlib import Path

from edkeras.reco.config import load_run_config
from edkeras.reco.runs import runs_dir

__all__ = ["HELP", "configure", "run"]

HELP = "Train a model from a run config (JSON); the run folder gets the model, history, predictions and metrics."


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``edkeras train``."""
    parser.add_argument("config", help="run config (JSON); unknown keys are errors")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. training.epochs=5 (repeatable; checked like the file)")
    parser.add_argument("--name", help="run name (the folder under --runs); default: the config's name")
    parser.add_argument("--runs", metavar="DIR", help="folder of run folders (default: runs/ of the repository)")
    parser.add_argument("--force", action="store_true", help="overwrite a finished run of the same name")
    parser.add_argument("--no-resume", action="store_true",
                        help="do not continue an interrupted run (with --force: start it again)")
    parser.add_argument("--quiet", action="store_true", help="no Keras progress bar")


def run(args: argparse.Namespace) -> int:
    """Load the config, train, print the validation and test θ68."""
    # here, not at the top: TensorFlow loads only when the command runs
    from edkeras.reco.training import train
    config = load_run_config(args.config, args.overrides, name=args.name)
    root = Path(args.runs) if args.runs else runs_dir()
    result = train(config, root / config.name, force=args.force, resume=not args.no_resume,
                   verbose=0 if args.quiet else "auto")
    if not result.wrote_run:
        print(f"worker done ({result.epochs_run} epochs): the chief evaluates and writes the run {result.run_dir}")
        return 0
    for split in ("val", "test"):
        s = result.metrics[split]["overall"]
        lo, hi = s["theta68_ci"]
        print(f"{split:>4}: theta68 = {s['theta68']:.2f} deg [{lo:.2f}, {hi:.2f}]  median = {s['median']:.2f} deg  "
              f"flips = {s['flip_fraction']:.3f}  (n = {s['n']})")
    print(f"run: {result.run_dir}  (best epoch {result.best_epoch}, chosen on validation)")
    return 0
