"""``edkeras alert INPUT... --model MODEL --tables TABLES --time ISO8601 --out DIR``: a burst to an alert.

Example:
    edkeras alert burst.root --model pretrained:compact_vmf --classifier pretrained:es_cc \\
        --tables pretrained:compact_vmf --time 2026-12-06T22:00:00 --out alerts/sn1
"""

from __future__ import annotations

import argparse

__all__ = ["HELP", "configure", "run"]

HELP = "From a burst (TP dumps or an event file) to alert.json, a HEALPix sky map (FITS) and its picture."

def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``edkeras alert``."""
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="TP dumps (.root) or one event file (.h5)")
    parser.add_argument("--model", required=True, help="a finished run folder or pretrained:NAME (directions)")
    parser.add_argument("--classifier", help="a multitask run or pretrained:NAME giving each event's ES probability")
    parser.add_argument("--tables", required=True, help="likelihood tables .npz or pretrained:NAME (built for --model)")
    parser.add_argument("--time", required=True, help="the burst's UTC time, ISO 8601 (e.g. 2026-12-06T22:00:00)")
    parser.add_argument("--es-fraction", type=float, default=272 / (272 + 3150), metavar="F",
                        help="expected ES share of the burst (default 0.079: 272 ES + 3,150 CC at 10 kpc)")
    parser.add_argument("--out", dest="out_dir", required=True, metavar="DIR",
                        help="folder for alert.json, skymap.fits, skymap.png (written whole, then renamed)")
    parser.add_argument("--force", action="store_true", help="replace an existing output folder")


def run(args: argparse.Namespace) -> int:
    """Write the alert; print where the supernova is."""
    # here, not at the top: TensorFlow, astropy and healpy load only when the command runs
    from edkeras.reports.alert import write_alert

    record = write_alert(args.inputs, model=args.model, tables=args.tables, time_utc=args.time, out=args.out_dir,
                         classifier=args.classifier, es_fraction=args.es_fraction, force=args.force)
    p = record["position"]
    print(f"{args.out_dir}/alert.json: RA {p['ra_deg']:.2f}°, Dec {p['dec_deg']:+.2f}° at {record['time_utc']} UTC; "
          f"90 % area {record['credible_area_deg2']['0.9']:.0f} deg² ({record['events']['n']} events)")
    return 0
