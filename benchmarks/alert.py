"""Benchmark: a 3,000-event burst from an event file to the alert files (``edkeras alert``), per stage.

A burst shaped like 10 kpc in 40 kt (272 ES + 3,150 CC scaled to ``--events``) is simulated with
its neutrinos coming from Betelgeuse at a fixed time, then ``edkeras.reports.alert.write_alert``
runs with ``pretrained:compact_vmf`` (directions), ``pretrained:es_cc`` (ES probability) and the
shipped tables: network inference, the burst fit, the HEALPix map and the files. Target (issue
#17): ≤ 30 s for 3,000 events on the 2-core CPU, network inference included. Simulation time is
reported apart. One JSON object on stdout.

Usage: ``python benchmarks/alert.py [--events 3000] [--seed 0]``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

BETELGEUSE = (88.792939, 7.407064)
WHEN = "2026-12-06T22:00:00"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from edkeras.events.sim import SimConfig, simulate_to_file
    from edkeras.pointing.sky import nu_direction_from_radec, radec_separation_deg
    from edkeras.reports.alert import write_alert

    es_share = 272 / (272 + 3150)
    with tempfile.TemporaryDirectory() as tmp:
        events = Path(tmp) / "burst.h5"
        nu = nu_direction_from_radec(*BETELGEUSE, WHEN)[0]
        t0 = time.perf_counter()
        simulate_to_file(events, args.events, seed=args.seed, progress=False,
                         config=SimConfig(channel="mix", es_fraction=es_share, direction=tuple(nu)))
        t_sim = time.perf_counter() - t0
        stages = io.StringIO()
        t0 = time.perf_counter()
        with contextlib.redirect_stderr(stages):
            record = write_alert([events], model="pretrained:compact_vmf", classifier="pretrained:es_cc",
                                 tables="pretrained:compact_vmf", time_utc=WHEN, out=Path(tmp) / "alert",
                                 es_fraction=es_share)
        t_alert = time.perf_counter() - t0
    pos = record["position"]
    separation = float(radec_separation_deg(pos["ra_deg"], pos["dec_deg"], *BETELGEUSE)[0])
    print(json.dumps({
        "events": args.events, "seed": args.seed, "cpus": os.cpu_count(),
        "simulate_seconds": round(t_sim, 2), "alert_seconds": round(t_alert, 2), "target_seconds": 30,
        "stage_seconds": record["stage_seconds"],
        "stages": [line for line in stages.getvalue().splitlines() if line.startswith("edkeras alert:")],
        "separation_from_source_deg": round(separation, 2),
        "error_radius_deg": record["error_radius_deg"], "credible_area_deg2": record["credible_area_deg2"],
        "classification": record["events"]["classification"],
    }, indent=1))


if __name__ == "__main__":
    main()
