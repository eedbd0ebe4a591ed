"""Speed of the simulator (default ES + CC mix, 128 × 32 windows) and its fidelity table.

Measures, in one run: events/s in memory on one core (wall clock and CPU time of this
process), events/s into an event file with 1 and with 2 worker processes (wall clock, and
events per CPU-second of the parent and its workers together),
the ratio of the one-core rate to the 500 events/s target, and — unless ``--no-table`` —
the simulated medians of ES events next to the real DUNE medians of REAL_TP_STATS.md
(ES with ⟨E_ν⟩ = 20 MeV, whose electron-energy median matches the real sample's 14 MeV,
in 512 × 128 windows so that nothing is clipped). Prints one JSON object.

The machine may be shared: the CPU-time rate is the one-core figure least disturbed by
other jobs; compare wall-clock rates only within one run.

Usage:
    python benchmarks/simulate.py [--quick] [--events N] [--no-table]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

__all__ = ["fidelity_table", "main"]

TARGET_EVENTS_PER_S = 500.0


def fidelity_table(n_events: int = 400, seed: int = 5) -> dict:
    """Simulated vs real medians for ES events (see the module docstring)."""
    from edkeras.events.sim import SimConfig, simulate_block
    from edkeras.events.sim.validation import compare_with_real, tp_statistics

    cfg = SimConfig(channel="es", mean_energy_mev=20.0, image_shape=(512, 128), block_size=n_events)
    batch, det = simulate_block(n_events, cfg, np.random.default_rng(seed))
    table = compare_with_real(tp_statistics(batch.images), det.deposited_energy)
    straight = det.primary_tracks.straight_length
    table["straight_length_cm_per_mev"] = {
        "primary": {"sim": float(np.median(straight / batch.energy)), "real": "0.25-0.29"}
    }
    table["straight_length_cm"] = {"primary": {"sim": float(np.median(straight)), "real": 4.2}}
    table["electron_energy_mev"] = {"primary": {"sim": float(np.median(batch.energy)), "real": 14.0}}
    return {"config": "channel=es, mean_energy_mev=20, image_shape=512x128", "n_events": n_events, "table": table}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer events (a few seconds)")
    parser.add_argument("--events", type=int, default=None, help="events per measurement")
    parser.add_argument("--no-table", action="store_true", help="skip the fidelity table")
    args = parser.parse_args(argv)
    n = args.events or (1024 if args.quick else 4096)

    from edkeras.events.sim import SimConfig, simulate, simulate_to_file

    config = SimConfig()
    simulate(64, seed=99, config=config)  # warm-up (imports, caches)
    w0, c0 = time.perf_counter(), time.process_time()
    simulate(n, seed=1, config=config)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    result = {
        "benchmark": "simulate",
        "events": n,
        "config": f"default (mix, es_fraction 0.5, 128x32, block_size {config.block_size})",
        "events_per_s_1core_wall": round(n / wall, 1),
        "events_per_s_1core_cpu": round(n / cpu, 1),
        "target_events_per_s": TARGET_EVENTS_PER_S,
        "ratio_to_target_wall": round(n / wall / TARGET_EVENTS_PER_S, 2),
        "ratio_to_target_cpu": round(n / cpu / TARGET_EVENTS_PER_S, 2),
    }
    with tempfile.TemporaryDirectory() as tmp:
        for workers in (1, 2):
            path = Path(tmp) / f"w{workers}.h5"
            t, c = time.perf_counter(), time.process_time()
            kids = resource.getrusage(resource.RUSAGE_CHILDREN)
            simulate_to_file(path, n, seed=1, config=config, workers=workers)
            wall = time.perf_counter() - t
            k2 = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = time.process_time() - c + (k2.ru_utime - kids.ru_utime) + (k2.ru_stime - kids.ru_stime)
            result[f"events_per_s_file_{workers}workers_wall"] = round(n / wall, 1)
            # CPU seconds of this process and its workers: events per CPU-second (× workers
            # = the rate on an otherwise idle machine with that many free cores)
            result[f"events_per_cpu_s_file_{workers}workers"] = round(n / cpu, 1)
    result["load_average_1min"] = round(os.getloadavg()[0], 2)
    result["cpu_count"] = os.cpu_count()
    if not args.no_table:
        result["fidelity_es"] = fidelity_table(200 if args.quick else 400)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
