"""``edkeras doctor``: check an event file; exit status 1 when a check fails.

Example:
    edkeras doctor data/events.h5
    edkeras doctor data/events.h5 --json > doctor.json
"""

from __future__ import annotations

import argparse

from edkeras.core.errors import InputError
from edkeras.events.doctor import check_event_file, format_report

__all__ = ["HELP", "configure", "run"]

HELP = "check an event file (pixels, truth, ids, energies, image orientation); exit 1 when a check fails"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="event file (HDF5)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON (for machines)")
    parser.add_argument(
        "--chunk", type=int, default=512, metavar="N", help="events read at a time (default: 512)"
    )


def run(args: argparse.Namespace) -> int:

    if args.chunk < 1:
        raise InputError(f"--chunk must be >= 1; received {args.chunk}")
    report = check_event_file(args.file, chunk_events=args.chunk, progress=not args.json)
    print(report.to_json() if args.json else format_report(report))
    return 1 if report.status == "fail" else 0
