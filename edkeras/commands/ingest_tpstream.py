"""``edkeras ingest-tpstream``: DUNE trigger-primitive dumps (ROOT) to an event file.

Example:
    edkeras ingest-tpstream sim_es_*.root --out data/es.h5 --save-geometry-table data/geometry.json
    edkeras ingest-tpstream run_data.root --out data/run.h5 --no-truth \\
        --geometry-table data/geometry.json
"""

from __future__ import annotations

import argparse

from edkeras.core.errors import InputError
from edkeras.events.tp_geometry import fit_geometry
from edkeras.events.tp_ingest import ingest_tpstream
from edkeras.events.tpstream import TPStreamOptions

__all__ = ["HELP", "configure", "run"]

HELP = "turn DUNE trigger-primitive dumps (triggerAnaDumpTPs ROOT files) into an event file (canonical frame)"


def configure(parser: argparse.ArgumentParser) -> None:

    d = TPStreamOptions()
    parser.add_argument("inputs", nargs="+", metavar="FILE.root", help="TP dumps written by triggerAnaDumpTPs")
    parser.add_argument("--out", required=True, metavar="FILE", help="event file to write (HDF5)")
    parser.add_argument(
        "--main-cluster", choices=("charge", "truth"), default=d.main_cluster,
        help="main X cluster: largest ADC sum (charge, usable on data) or the largest holding a TP "
        "back-tracked to the primary electron (truth) (default: %(default)s)",
    )
    parser.add_argument(
        "--image-shape", nargs=2, type=int, default=d.image_shape, metavar=("T", "C"),
        help="image shape (ticks, channels) (default: %(default)s)",
    )
    parser.add_argument(
        "--geometry-table", metavar="JSON",
        help="reuse a geometry/calibration table (made from simulation) instead of fitting one from "
        "the inputs' back-tracking; needed for data",
    )
    parser.add_argument("--save-geometry-table", metavar="JSON", help="also write the table used to JSON")
    parser.add_argument("--no-truth", action="store_true",
                        help="the inputs have no simulation truth (data): keep every event, truth unknown")
    parser.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    g = parser.add_argument_group("clustering and matching")
    g.add_argument("--min-sot", type=int, default=d.min_sot, metavar="N",
                   help="drop TPs with fewer samples over threshold (default: %(default)s)")
    g.add_argument("--max-channel-gap", type=int, default=d.max_channel_gap, metavar="N",
                   help="largest channel difference inside a cluster, across the U/V wrap (default: %(default)s)")
    g.add_argument("--max-time-gap", type=int, default=d.max_time_gap, metavar="TICKS",
                   help="most empty ticks between joined pulses (default: %(default)s)")
    g.add_argument("--min-cluster-tps", type=int, default=d.min_cluster_tps, metavar="N",
                   help="fewest TPs in a cluster (default: %(default)s)")
    g.add_argument("--match-time-tolerance", type=int, default=d.match_time_tolerance, metavar="TICKS",
                   help="U/V clusters must overlap the main cluster's ticks widened by this (default: %(default)s)")
    g.add_argument("--match-z-tolerance", type=float, default=d.match_z_tolerance, metavar="CM",
                   help="largest z distance of the U-V wire crossing from the main cluster (default: %(default)s)")
    g.add_argument("--adc-per-mev", nargs=3, type=float, metavar=("U", "V", "X"),
                   help="ADC per MeV per plane (default: measured from the inputs, else from the table)")
    g.add_argument("--tp-tree", metavar="NAME", help="TP tree in triggerAnaDumpTPs/TriggerPrimitives "
                   "(default: the only tpmakerTPC__* tree)")
    g.add_argument("--chunk-entries", type=int, default=d.chunk_entries, metavar="N",
                   help="TP-tree entries read at a time (default: %(default)s)")


def _root_errors() -> tuple[type[BaseException], ...]:
    """What reading a damaged ROOT file raises below uproot's checks."""
    import struct
    import zlib

    import uproot

    return (zlib.error, struct.error, OSError, EOFError, KeyError, IndexError, ValueError,
            uproot.deserialization.DeserializationError)


def run(args: argparse.Namespace) -> int:
    import sys


    options = TPStreamOptions(
        min_sot=args.min_sot,
        max_channel_gap=args.max_channel_gap,
        max_time_gap=args.max_time_gap,
        min_cluster_tps=args.min_cluster_tps,
        main_cluster=args.main_cluster,
        image_shape=tuple(args.image_shape),
        match_time_tolerance=args.match_time_tolerance,
        match_z_tolerance=args.match_z_tolerance,
        truth=not args.no_truth,
        tp_tree=args.tp_tree,
        adc_per_mev=dict(zip("UVX", args.adc_per_mev)) if args.adc_per_mev else None,
        chunk_entries=args.chunk_entries,
    )

    command = "edkeras ingest-tpstream " + " ".join(sys.argv[2:] if len(sys.argv) > 2 else [])
    geometry = args.geometry_table
    if geometry is None and args.no_truth:
        raise InputError("--no-truth needs --geometry-table JSON (the geometry cannot be fitted without truth)")
    root_errors = _root_errors()  # imported before the work: an except clause must not import (a
    # SIGTERM during that import left a half-initialised uproot and a traceback)
    try:
        if geometry is None:
            geometry = fit_geometry(args.inputs, options, command=command, progress=True)
        result = ingest_tpstream(
            args.inputs, args.out, options, geometry=geometry, overwrite=args.force, progress=True, command=command
        )
    except InputError:
        raise
    except root_errors as e:  # uproot's and zlib's errors for a damaged basket or header
        names = ", ".join(str(p) for p in args.inputs)
        raise InputError(f"{names}: damaged ROOT data ({type(e).__name__}: "
                         f"{str(e).strip().splitlines()[0] if str(e).strip() else 'no detail'})") from None
    if args.save_geometry_table:
        result.geometry.save(args.save_geometry_table)
    print(result.geometry.describe())
    print(result.summary())
    return 0
