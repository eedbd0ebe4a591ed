"""``edkeras convert-npz``: turn the earlier system's per-plane NPZ files into an event file.

Example:
    edkeras convert-npz old_data/ more/run7_planeU.npz more/run7_planeV.npz \\
        more/run7_planeX.npz --out data/legacy.h5 --image-shape 128 32
"""

from __future__ import annotations

import argparse

from edkeras.events.legacy_convert import convert_npz

__all__ = ["HELP", "configure", "run"]

HELP = "convert the earlier system's per-plane NPZ files (<base>_plane{U,V,X}.npz) into an event file"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "inputs", nargs="+", metavar="INPUT",
        help="plane files or folders holding them (flat, or in U/ V/ X/ sub-folders; searched recursively)",
    )
    parser.add_argument("--out", required=True, metavar="FILE", help="event file to write (HDF5)")
    parser.add_argument(
        "--image-shape", nargs=2, type=int, default=(128, 32), metavar=("T", "C"),
        help="image shape to keep (ticks, channels); files of another shape are skipped and counted "
        "(default: 128 32)",
    )
    parser.add_argument("--force", action="store_true", help="overwrite FILE if it exists")


def run(args: argparse.Namespace) -> int:

    result = convert_npz(
        args.inputs, args.out, image_shape=tuple(args.image_shape), overwrite=args.force, progress=True
    )
    print(result.summary())
    return 0
