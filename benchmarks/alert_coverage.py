"""Benchmark: do the alert's credible regions hold the supernova as often as they say? (issue #17)

Each burst has its supernova at a random position on the sky (isotropic) and a random time
in 2027, so the direction in the detector frame is random too. A burst shaped like 10 kpc in
40 kt (``--events`` events, each ES with the probability 272 / (272 + 3,150)) is simulated with
its neutrinos coming from there and goes through ``edkeras.reports.alert.write_alert``
exactly as ``edkeras alert`` runs it: ``pretrained:compact_vmf`` directions,
``pretrained:es_cc`` ES probabilities, the shipped tables, the HEALPix map. For each burst
the true position's pixel is looked up in the map:

* inside the 68 % / 90 % region or not;
* the searched probability (the probability of all pixels at least as probable as the
  truth's: uniform on [0, 1] when the map is calibrated);
* ΔlnL = ln L_max − ln L at the truth (from which calibrated thresholds can be read).

Targets: the truth inside the 90 % region in 85–95 % of ≥ 100 bursts, inside the 68 % region
in 63–73 %. One line per burst is appended to ``WORK/bursts.jsonl`` (a rerun continues where it
stopped); the summary, with Clopper–Pearson 68 % intervals, is printed as JSON and written
to ``WORK/summary.json``.

With ``--calibrate OUT.npz`` the bursts are calibration bursts instead: the temperature T of
the tempered map p ∝ exp(−ΔlnL / T) that brings their ΔlnL at the truth to the levels
(``edkeras.pointing.burst_temperature``) is stored with a copy of ``--tables`` in ``OUT.npz``
(``--pool WORK...`` adds the bursts of earlier runs; each row's ΔlnL is taken back to the
untempered likelihood with the temperature its map had). Calibrate and measure coverage on
different seeds.

Usage: ``python benchmarks/alert_coverage.py [--bursts 100] [--events 3422] [--seed 0] [--tables T]
[--work runs/alert_coverage] [--calibrate OUT.npz]``.
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
os.environ.setdefault("TQDM_DISABLE", "1")

ES_SHARE = 272 / (272 + 3150)
LEVELS = (0.68, 0.9)


def one_burst(i: int, seed: int, n_events: int, tables: str, tmp: Path) -> dict:
    """Simulate burst ``i``, write its alert, and locate the true position in its ``skymap.fits``."""
    import shutil

    import healpy as hp
    import numpy as np
    from astropy.io import fits
    from astropy.time import Time, TimeDelta

    from edkeras.events.sim import SimConfig, simulate_to_file
    from edkeras.pointing.sky import nu_direction_from_radec, radec_separation_deg
    from edkeras.reports.alert import write_alert

    rng = np.random.default_rng([seed, i])
    ra = float(rng.uniform(0.0, 360.0))
    dec = float(np.degrees(np.arcsin(rng.uniform(-1.0, 1.0))))
    when = (Time("2027-01-01T00:00:00", scale="utc") + TimeDelta(rng.uniform(0.0, 365.0), format="jd")).isot
    nu = nu_direction_from_radec(ra, dec, when)[0]
    events = tmp / f"burst{i}.h5"
    simulate_to_file(events, n_events, seed=int(rng.integers(2**31)), progress=False,
                     config=SimConfig(channel="mix", es_fraction=ES_SHARE, direction=tuple(float(x) for x in nu)))
    t0 = time.perf_counter()
    with contextlib.redirect_stderr(io.StringIO()):
        record = write_alert([events], model="pretrained:compact_vmf", classifier="pretrained:es_cc",
                             tables=tables, time_utc=when, out=tmp / f"alert{i}", es_fraction=ES_SHARE,
                             progress=False)
    seconds = time.perf_counter() - t0
    # the map as a telescope reads it: one nside, probability per equal-area pixel, so ln L_max − ln L = ln(p_max / p)
    prob = hp.read_map(str(tmp / f"alert{i}" / "skymap.fits"), nest=True)
    header = fits.getheader(tmp / f"alert{i}" / "skymap.fits", 1)
    shutil.rmtree(tmp / f"alert{i}")
    events.unlink()
    nside = hp.npix2nside(len(prob))
    pix = int(hp.ang2pix(nside, ra, dec, lonlat=True, nest=True))
    searched = float(prob[prob >= prob[pix]].sum())
    delta = float(np.log(prob.max() / max(prob[pix], 1e-300)))
    if record["credible_regions"] == "probability":
        inside = {f"{cl:g}": searched <= cl for cl in LEVELS}
    else:
        # calibrated thresholds are in ΔlnL of the likelihood itself; the map's ln(p_max / p) is ΔlnL / T
        inside = {f"{cl:g}": delta * float(header["LNLTEMP"]) <= float(header[f"DLNL{round(100 * cl)}"])
                  for cl in LEVELS}
    p = record["position"]
    return {
        "burst": i, "ra_deg": ra, "dec_deg": dec, "time_utc": when, "n_events": record["events"]["n"],
        "separation_deg": float(radec_separation_deg(p["ra_deg"], p["dec_deg"], ra, dec)[0]),
        "delta_lnl_at_truth": delta, "searched_probability": searched, "inside": inside,
        "error_radius_deg": record["error_radius_deg"], "credible_area_deg2": record["credible_area_deg2"],
        "regions": record["credible_regions"], "nside": nside, "alert_seconds": round(seconds, 2),
        "temperature": record["likelihood_temperature"]["T"],
    }


def summarise(rows: list[dict]) -> dict:
    """Coverage at each level with Clopper–Pearson 68 % intervals; what calibrated ΔlnL regions would give."""
    import numpy as np
    from scipy.stats import binomtest

    n = len(rows)
    out: dict = {"bursts": n, "events_per_burst_median": float(np.median([r["n_events"] for r in rows]))}
    cover = {}
    for cl in LEVELS:
        k = sum(r["inside"][f"{cl:g}"] for r in rows)
        ci = binomtest(k, n).proportion_ci(0.68)
        cover[f"{cl:g}"] = {"inside": k, "fraction": k / n, "ci68": [ci.low, ci.high]}
    out["coverage"] = cover
    out["targets"] = {"0.68": [0.63, 0.73], "0.9": [0.85, 0.95]}
    out["within_targets"] = {k: v[0] <= cover[k]["fraction"] <= v[1] for k, v in out["targets"].items()}
    searched = np.sort([r["searched_probability"] for r in rows])
    out["searched_probability_quantiles"] = {q: float(np.quantile(searched, float(q))) for q in ("0.25", "0.5", "0.75")}
    sep = np.array([r["separation_deg"] for r in rows])
    out["separation_deg"] = {"median": float(np.median(sep)), "containment68": float(np.quantile(sep, 0.68))}
    out["error_radius_deg_median"] = {f"{cl:g}": float(np.median([r["error_radius_deg"][f"{cl:g}"] for r in rows]))
                                      for cl in LEVELS}
    delta = np.array([r["delta_lnl_at_truth"] for r in rows])
    out["delta_lnl_at_truth_quantiles"] = {f"{cl:g}": float(np.quantile(delta, cl)) for cl in LEVELS}
    out["wilks_delta_lnl"] = {f"{cl:g}": float(-np.log(1.0 - cl)) for cl in LEVELS}
    out["alert_seconds_median"] = float(np.median([r["alert_seconds"] for r in rows]))
    return out


def calibrate(rows: list[dict], tables: str, n_events: int, out: Path) -> dict:
    """Store T calibrated on these bursts with a copy of the tables; what the levels would hold on them."""
    from dataclasses import replace

    import numpy as np

    from edkeras.pointing import burst_temperature, load_table, save_table
    from edkeras.reco.pretrained import resolve_tables

    # ΔlnL of the likelihood itself: a tempered map's ln(p_max / p) is ΔlnL / T
    delta = np.array([r["delta_lnl_at_truth"] * r.get("temperature", 1.0) for r in rows])
    t = burst_temperature(delta, LEVELS)
    table = load_table(resolve_tables(tables))
    sizes = {r["n_events"] for r in rows}
    if len(sizes) > 1:
        raise SystemExit(f"alert_coverage: the calibration bursts differ in size ({sorted(sizes)}); pool bursts of one size")
    marks = {"burst_temperature": t, "burst_temperature_events": int(n_events)}
    table = replace(table, **marks, components={k: replace(c, **marks) for k, c in table.components.items()})
    save_table(table, out, overwrite=True)
    return {"temperature": t, "events_per_burst": int(n_events), "tables": str(out), "calibration_bursts": len(rows),
            "calibration_bursts_inside_at_T": {f"{cl:g}": float(np.mean(delta <= -t * np.log1p(-cl))) for cl in LEVELS}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bursts", type=int, default=100)
    parser.add_argument("--events", type=int, default=272 + 3150)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tables", default="pretrained:compact_vmf")
    parser.add_argument("--work", default="runs/alert_coverage")
    parser.add_argument("--calibrate", metavar="OUT.npz", help="store the calibrated temperature with the tables here")
    parser.add_argument("--pool", nargs="*", default=[], metavar="WORK",
                        help="with --calibrate: also the bursts of these earlier work folders (their seeds must differ)")
    args = parser.parse_args()

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    log = work / "bursts.jsonl"
    rows = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    done = {r["burst"] for r in rows}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.bursts):
            if i in done:
                continue
            row = one_burst(i, args.seed, args.events, args.tables, Path(tmp))
            with open(log, "a") as fh:
                fh.write(json.dumps(row) + "\n")
            rows.append(row)
    rows = [r for r in rows if r["burst"] < args.bursts]
    summary = {"seed": args.seed, "tables": args.tables, **summarise(rows)}
    if args.calibrate:
        pooled = rows + [json.loads(line) for w in args.pool for line in (Path(w) / "bursts.jsonl").read_text().splitlines()]
        summary["calibrated"] = calibrate(pooled, args.tables, args.events, Path(args.calibrate))
    (work / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
