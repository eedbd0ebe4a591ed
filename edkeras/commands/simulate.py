"""``edkeras simulate``: simulate supernova-electron events into an event file.

Example:
    edkeras simulate --events 5000 --out data/mix.h5 --seed 1 --workers 2
    edkeras simulate --events 2000 --out data/es.h5 --channel es --direction 0 0 1
    edkeras simulate --events 1000 --out data/gun.h5 --gun --energy-range 10 20
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from edkeras.core.errors import InputError
from edkeras.core.schema import load_json
from edkeras.events.sim import SimConfig, simulate_to_file

HELP = "Simulate DUNE-like supernova electron events (ES, CC or a particle gun) into an event file."


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", type=int, required=True, metavar="N", help="number of events")
    parser.add_argument("--out", type=Path, required=True, metavar="FILE", help="output event file (.h5)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--channel", choices=("es", "cc", "mix"), default=None,
                        help="interaction: es, cc or mix (default: from --config, else mix)")
    parser.add_argument("--es-fraction", type=float, default=None, metavar="F",
                        help="share of ES events in the mix (default 0.5)")
    parser.add_argument("--energy-range", type=float, nargs=2, default=None, metavar=("A", "B"),
                        help="electron kinetic-energy window, MeV (default 5 70)")
    parser.add_argument("--direction", type=float, nargs=3, default=None, metavar=("X", "Y", "Z"),
                        help="the neutrinos' fixed direction of travel, truth/nu_direction (the supernova lies opposite); with --gun the electrons' direction")
    parser.add_argument("--gun", action="store_true", help="particle gun: flat energy, isotropic (or --direction)")
    parser.add_argument("--noise", type=float, default=None, metavar="ADC", help="white noise RMS in ADC (default 0)")
    parser.add_argument("--workers", type=int, default=1, metavar="N", help="processes (same output for any N)")
    parser.add_argument("--config", type=Path, default=None, metavar="JSON",
                        help="SimConfig as JSON (command-line options override it)")
    parser.add_argument("--force", action="store_true", help="replace an existing output file")


def run(args: argparse.Namespace) -> int:

    config = load_json(SimConfig, args.config) if args.config is not None else SimConfig()
    changes: dict = {}
    if args.channel is not None:
        changes["channel"] = args.channel
    if args.es_fraction is not None:
        changes["es_fraction"] = float(args.es_fraction)
    if args.energy_range is not None:
        changes["energy_range_mev"] = (float(args.energy_range[0]), float(args.energy_range[1]))
    if args.direction is not None:
        changes["direction"] = tuple(float(v) for v in args.direction)
    if args.gun:
        changes["gun"] = True
    if args.noise is not None:
        changes["noise_adc"] = float(args.noise)
    config = dataclasses.replace(config, **changes)  # __post_init__ re-validates (ConfigError)
    if args.events < 1:
        raise InputError(f"--events: must be >= 1; received {args.events}")
    if args.workers < 1:
        raise InputError(f"--workers: must be >= 1; received {args.workers}")
    if args.seed < 0:
        raise InputError(f"--seed: must be >= 0; received {args.seed}")
    path = simulate_to_file(args.out, args.events, seed=args.seed, config=config, workers=args.workers,
                            overwrite=args.force, progress=True)
    print(f"wrote {args.events} events to {path}")
    return 0
