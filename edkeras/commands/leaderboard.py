"""``edkeras leaderboard``: finished runs ranked by their **test** θ68, with confidence intervals.

Example:
    edkeras leaderboard --runs runs --json
"""

from __future__ import annotations

import argparse
import sys

from edkeras.reco.runs import leaderboard, runs_dir

__all__ = ["HELP", "configure", "format_table", "run"]

HELP = "List finished runs ranked by test-split theta68 (the angle containing 68 percent of events), with CIs."


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``edkeras leaderboard``."""
    parser.add_argument("--runs", metavar="DIR", help="folder of run folders (default: runs/ of the repository)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")


def _num(v: object, fmt: str = ".2f") -> str:
    return "-" if v is None else format(v, fmt)


def format_table(rows: list[dict]) -> str:
    """The leaderboard as a plain-text table."""
    head = f"{'#':>3}  {'run':<24} {'model':<14} {'head':<9} {'test θ68 [68% CI]':<26} {'median':>7} {'flips':>6} {'val θ68':>8} {'n_test':>7}"
    lines = [head, "-" * len(head)]
    for r in rows:
        ci = r["test_theta68_ci"] or [None, None]
        theta = f"{_num(r['test_theta68'])} [{_num(ci[0])}, {_num(ci[1])}]"
        lines.append(
            f"{r['rank']:>3}  {r['name']:<24} {r['model']!s:<14} {r['head']!s:<9} {theta:<26} "
            f"{_num(r['test_median']):>7} {_num(r['test_flip_fraction'], '.3f'):>6} {_num(r['val_theta68']):>8} "
            f"{_num(r['n_test'], 'd'):>7}"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Print the leaderboard."""
    import json


    root = args.runs or runs_dir()
    skipped: list[tuple[str, str]] = []
    rows = leaderboard(root, skipped=skipped)
    for name, why in skipped:
        print(f"edkeras leaderboard: note: {name} not ranked: {why}", file=sys.stderr)
    if args.json:
        print(json.dumps(rows, indent=2))
    elif not rows:
        print(f"no finished runs under {root}")
    else:
        print(format_table(rows))
    return 0
