"""``edkeras compare REFERENCE.h5 OTHER.h5``: image statistics side by side at matched true energy.

Per plane: pixels over threshold, ADC per lit pixel (median, 90th percentile), ticks and
channels of the main cluster, ADC per MeV, other clusters in the window, and the U–V
asymmetry; each with a 68 % bootstrap interval and a verdict. Exit status 0 (a
comparison is a measurement, not a check).

Example:
    edkeras ingest-tpstream ../shared/data/test_es_tpstream.root --out data/real_es.h5
    edkeras simulate --events 3000 --channel es --out data/sim_es.h5
    edkeras compare data/real_es.h5 data/sim_es.h5
"""

from __future__ import annotations

import argparse

from edkeras.core.errors import InputError
from edkeras.events.compare import compare_event_files, format_comparison

__all__ = ["HELP", "configure", "run"]

HELP = "compare the images of two event files (real vs simulated) per plane at matched true energy"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("reference", metavar="REFERENCE.h5", help="the reference event file (e.g. real events)")
    parser.add_argument("other", metavar="OTHER.h5", help="the event file to compare with it (e.g. simulated)")
    parser.add_argument("--json", action="store_true", help="print the comparison as JSON")
    parser.add_argument("--matched", type=int, default=20, metavar="K",
                        help="events of OTHER nearest in true energy to each reference event (default 20)")
    parser.add_argument("--tolerance", type=float, default=0.15,
                        help="relative difference of medians still called 'agree' (default 0.15)")
    parser.add_argument("--max-events", type=int, default=20000, metavar="N", help="events read from each file")


def run(args: argparse.Namespace) -> int:

    if args.matched < 1:
        raise InputError(f"--matched must be >= 1; received {args.matched}")
    if not 0 < args.tolerance < 1:
        raise InputError(f"--tolerance must lie in (0, 1); received {args.tolerance}")
    if args.max_events < 1:
        raise InputError(f"--max-events must be >= 1; received {args.max_events}")
    c = compare_event_files(args.reference, args.other, k=args.matched, tolerance=args.tolerance,
                            max_events=args.max_events)
    print(c.to_json() if args.json else format_comparison(c))
    return 0
