"""``edkeras models``: the trained models shipped with the package and their cards.

Example:
    edkeras models
    edkeras models --json
    edkeras evaluate pretrained:compact_vmf --data data/real_es.h5
"""

from __future__ import annotations

import argparse

from edkeras.reco.pretrained import list_pretrained, separation_summary

__all__ = ["HELP", "configure", "run"]

HELP = "list the trained models shipped with edkeras (use one as pretrained:NAME wherever a run folder is accepted)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the model cards as JSON")


def _fmt(m: dict | None) -> str:
    if not m:
        return "n/a"
    lo, hi = m.get("theta68_ci", [None, None])
    ci = f" [{lo:.1f}, {hi:.1f}]" if lo is not None else ""
    return f"theta68 {m['theta68']:.1f}{ci} deg, median {m['median']:.1f} deg" + (
        f", flips {m['flip_fraction']:.3f}" if "flip_fraction" in m else "")


def run(args: argparse.Namespace) -> int:
    import json


    cards = list_pretrained()
    if args.json:
        print(json.dumps(cards, indent=2))
        return 0
    if not cards:
        print("no shipped models")
        return 0
    for c in cards:
        mod, data, met = c["model"], c["training_data"], c["metrics"]
        print(f"pretrained:{c['name']}  ({mod['builder']} + {mod['head']} head, {mod['parameters']:,} parameters)")
        print(f"  trained on {data['events']:,} simulated events ({data['channel']}), "
              f"{c['budget']['sample_passes']:,} sample passes; {c['budget']['hardware']}")
        if c.get("role") == "es_cc_classifier":

            print(f"  ES/CC classifier, simulated test: {separation_summary(met.get('simulated_test_es_cc'))}")
            print(f"  use: edkeras evaluate MODEL --classifier pretrained:{c['name']} --data FILE")
        else:
            print(f"  simulated ES test: {_fmt(met.get('simulated_test_es'))}")
        real = met.get("real_es_file")
        if real:
            print(f"  real ES events ({real['network']['n']}): network {_fmt(real['network'])}; "
                  f"classical {_fmt(real['classical_fit_same_events'])}")
        tables = c.get("tables")
        if tables:
            print(f"  likelihood tables: --tables pretrained:{c['name']} ({tables['summary']})")
        for limit in c.get("limits", []):
            print(f"  limit: {limit}")
    return 0
