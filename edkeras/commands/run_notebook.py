"""``edkeras run NOTEBOOK [-p NAME VALUE ...]``: execute a phase notebook into an HTML report."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from edkeras.reports.notebooks import find_notebook, notebook_parameters, run_notebook

__all__ = ["HELP", "configure", "parse_value", "run"]

HELP = "execute a phase notebook with papermill into its run folder and reports/NAME.html"


def parse_value(text: str) -> Any:
    """A parameter value from the command line: JSON (numbers, true/false, lists), Python's
    True/False/None, else the string itself."""
    special = {"True": True, "False": False, "None": None}
    if text in special:
        return special[text]
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("notebook", help="notebook name (e.g. v21_uncertainty) or path")
    parser.add_argument(
        "-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
        help="set a parameter of the notebook's 'parameters' cell (repeatable)",
    )
    parser.add_argument("--show-code", action="store_true", help="keep code cells in the HTML report")
    parser.add_argument("--report-dir", default=None, help="where the HTML goes (default reports/)")
    parser.add_argument("--runs-dir", default=None, help="where run folders live (default runs/)")
    parser.add_argument("--list-parameters", action="store_true", help="print the notebook's parameters and exit")


def run(args: argparse.Namespace) -> int:

    if args.list_parameters:
        for k, v in notebook_parameters(find_notebook(args.notebook)).items():
            print(f"{k} = {v!r}")
        return 0
    params = {name: parse_value(value) for name, value in args.parameter}
    result = run_notebook(
        args.notebook, params, report_dir=args.report_dir, runs_dir=args.runs_dir, show_code=args.show_code
    )
    print(f"executed: {result.executed}")
    print(f"report:   {result.html}")
    print(f"time:     {result.seconds:.1f} s")
    if not result.ok:
        print(f"edkeras run: error: {result.notebook.name} failed: {result.error} (the report shows where)",
              file=sys.stderr)
        return 1
    return 0
