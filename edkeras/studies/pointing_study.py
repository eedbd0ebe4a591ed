"""The pointing study of ``notebooks/pointing.ipynb``: tables, simulated bursts, resolution, calibrated regions.

Each function is one step of the notebook, in its order; the notebook shows what they return.
The random generator ``rng`` is passed through in that order, so a seed gives the same bursts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import norm

from edkeras.core.errors import InputError
from edkeras.events.sim import SimConfig, simulate_to_file
from edkeras.pointing import (
    BurstPlan,
    LikelihoodTable,
    ResolutionResult,
    build_table,
    delta_log_likelihood,
    direction_groups,
    load_table,
    plan_bursts,
    pointing_resolution,
    region_thresholds,
    save_table,
)
from edkeras.pointing.sky import nu_direction_from_radec, radec_separation_deg
from edkeras.reco.pretrained import PREFIX, resolve_tables
from edkeras.reports.alert import write_alert
from edkeras.reports.markdown import markdown_table
from edkeras.studies import analysis as pa
from edkeras.studies.phase import classical_predictions

__all__ = [
    "CLASSIFICATIONS",
    "PointingTables",
    "SimulatedPool",
    "calibrate_regions",
    "check_classification",
    "headline",
    "pointing_tables",
    "resolution_markdown",
    "resolution_study",
    "simulate_pool",
    "star_alert",
    "study_size",
    "summary",
]

CLASSIFICATIONS = ("perfect", "classifier", "mixed")
NETWORK_TABLES = ("auto", "calibration")
"""The network row's tables: a shipped model's own ("auto", a run's are always the study's) or the study's."""
"""How bursts tell ES from CC: the truth, the events' ES probability, or the expected fractions alone."""

_MODE_LABELS = {"perfect": "perfect ES/CC", "classifier": "ES/CC classifier", "mixed": "expected fractions only"}


def study_size(smoke: bool, **full: Any) -> dict[str, Any]:
    """The sizes of the study: ``full`` (the notebook's parameters) or the smoke run's tiny ones."""
    if not smoke:
        return dict(full)
    return {"k": 2, "per_direction": 100, "bursts": 4, "per_size": 3, "es": min(full["es"], 20),
            "cc": min(full["cc"], 60), "sizes": [10, 30], "calibration": 400 if full["calibration"] else 0,
            "degree": min(full["degree"], 1), "acc": min(full["acc"], 2), "cal_dirs": min(full["cal_dirs"], 2),
            "symmetric": full["symmetric"], "network_tables": full["network_tables"]}


def check_classification(classification: str, classifier: str) -> None:
    """Refuse an unknown classification mode, or ``classifier`` mode without a classifier."""
    if classification not in CLASSIFICATIONS:
        raise InputError(f"classification must be one of {', '.join(CLASSIFICATIONS)}; received {classification!r}")
    if classification == "classifier" and not classifier:
        raise InputError("classification 'classifier' needs the parameter classifier (a multitask run or pretrained:NAME)")


def sample_key(name: str) -> str:
    """Which reconstruction of a simulated sample a table (or result) row uses."""
    return "truth" if name == "true directions" else "classical" if name.startswith("classical") else "network"


@dataclass
class PointingTables:
    """The likelihood tables of the study, by row name, and what they were fitted on."""

    tables: dict[str, LikelihoodTable]
    fits: dict[str, list[Any]]
    n_validation: int
    mirror_average: bool = False
    network_from: str = ""
    """Where the network's tables come from: "" (this study's events) or the shipped tables' spec."""

    @property
    def for_bursts(self) -> dict[str, Any]:
        """The tables as the burst fit takes them: a {class: table} dict where a table has ES and CC parts."""
        return {name: dict(t.components) if t.components else t for name, t in self.tables.items()}

    def describe(self, src: Any, size: Mapping[str, Any], table_method: str) -> str:
        """One paragraph on the tables: source, events, response map and acceptance, classes."""
        n_fit = sum(len(p) for p in self.fits["network"])
        calibration = f" + {size['calibration']} simulated at isotropic supernova directions" if size["calibration"] else ""
        kinds = ", ".join(f"{k} ({'ES + CC' if isinstance(v, dict) else 'one class'})" for k, v in self.for_bursts.items())
        text = (f"{src.describe()} Tables ({table_method}, reference: neutrino) from {n_fit} events ({self.n_validation} "
                f"validation{calibration}), response map of degree {size['degree']} and acceptance of degree "
                f"{size['acc']} for the reconstructions unless marked otherwise: {kinds}.")
        if size["symmetric"]:
            text += (" Response maps and acceptances respect the detector's eight mirror images (`mirror_symmetric`: "
                     "each event informs them at all eight, with an eighth of the coefficients).")
        if self.network_from:
            text += (f" The row *network* uses the tables shipped with the model (`{self.network_from}`, as `edkeras point` "
                     "and `edkeras alert` do; built on their own calibration sample); its variants use this study's.")
        if self.mirror_average:
            text += (" The network's directions, in the tables and in every burst below, are averaged over each event's "
                     "eight mirror images (`mirror_average`).")
        contrast = {k: t.acceptance.contrast() for k, t in self.tables.items() if t.acceptance is not None}
        if contrast:
            text += ("\n\nAcceptance contrast max g / min g over the sky (1 = the reconstruction puts its directions evenly "
                     "over the sky; the fit keeps g ≥ 0.1): " + ", ".join(f"{k} {v:.1f}" for k, v in contrast.items()) + ".")
        return text


def pointing_tables(
    src: Any, out_dir: Path, size: Mapping[str, Any], *, seed: int, pool_es_fraction: float, table_method: str,
    kappa_bins: int, smoke: bool, mirror_average: bool = False,
) -> PointingTables:
    """Tables of the true directions, the classical fit and the network, from validation and a calibration sample.

    The true electron directions are no reconstruction: they get no response map and no acceptance.
    With ``mirror_average`` the network's directions are averaged over the eight mirror images of
    each event, and the tables come from the calibration sample alone (a run's validation
    predictions are plain ones).
    """
    # a shipped model has no validation split of its own
    val = None if src.shipped or mirror_average else src.predictions("val")
    if val is None and not size["calibration"]:
        why = "mirror averaging" if mirror_average and not src.shipped else "a shipped model"
        raise InputError(f"{src.name}: {why} needs calibration_events > 0 (the tables then come from a calibration sample)")
    fits: dict[str, list[Any]] = {"true directions": [], "classical": [], "network": []}
    if val is not None:
        fits = {"true directions": [pa.truth_predictions(val)],
                "classical": [classical_predictions(src.config, out_dir / "classical_predictions_val.npz", split="val")],
                "network": [val]}
    if size["calibration"]:  # supernova directions spread over the sky, so that the response map can be fitted
        cal = pa.simulated_sample(src.run_dir, size["calibration"], seed=20_000 + seed, out_dir=out_dir,
                                  sim_config=SimConfig(es_fraction=pool_es_fraction), mirror_average=mirror_average)
        for name in fits:
            fits[name].append(cal[sample_key(name)])
    if size["network_tables"] not in NETWORK_TABLES:
        raise InputError(f"network_tables must be one of {', '.join(NETWORK_TABLES)}; received {size['network_tables']!r}")
    # a shipped model points with its shipped tables, as edkeras point and alert do (they hold plain directions)
    shipped = size["network_tables"] == "auto" and src.shipped and not mirror_average
    options = {"method": table_method, "reference": "neutrino", "min_events": 5 if smoke else 20}
    recon = {"response_degree": size["degree"], "acceptance_degree": size["acc"], "mirror_symmetric": size["symmetric"]}
    tables = {name: load_table(resolve_tables(f"{PREFIX}{src.name}")) if shipped and name == "network"
              else build_table(p, **({} if name == "true directions" else recon), **options) for name, p in fits.items()}
    for name in ("classical", "network"):
        if size["acc"]:
            tables[f"{name}, no acceptance"] = build_table(fits[name], response_degree=size["degree"],
                                                           mirror_symmetric=size["symmetric"], **options)
        tables[f"{name}, no response map"] = build_table(fits[name], **options)
    if kappa_bins and fits["network"][0].kappa_equivalent is not None:
        tables["network, κ-weighted"] = build_table(fits["network"], kappa_bins=kappa_bins, **recon, **options)
    return PointingTables(tables, fits, 0 if val is None else len(val), mirror_average,
                          f"{PREFIX}{src.name}" if shipped else "")


@dataclass
class SimulatedPool:
    """Events simulated at fixed supernova directions, reconstructed three ways, grouped by direction."""

    pool: dict[str, Any]
    groups: np.ndarray
    directions: np.ndarray

    def sample(self, name: str) -> Any:
        """The predictions of row ``name`` (true directions, classical fit or network)."""
        return self.pool[sample_key(name)]

    @property
    def truth(self) -> Any:
        return self.pool["truth"]

    def plan(self, counts: Mapping[int, int], n_bursts: int, rng: np.random.Generator) -> BurstPlan:
        """Bursts of ``counts`` ({1: ES, 0: CC}) events, each from one supernova direction of the pool."""
        return plan_bursts(len(self.truth), dict(counts), n_bursts, rng, self.truth.interaction, groups=self.groups,
                           group_directions=self.directions)

    def cc_per_direction(self) -> int:
        """The fewest CC events any supernova direction of the pool holds."""
        cc = self.truth.interaction == 0
        return int(min(np.sum((self.groups == g) & cc) for g in range(len(self.directions))))

    def describe(self, src_name: str, seed: int, size: Mapping[str, Any]) -> str:
        """What was simulated, how bursts are drawn, and a caution when bursts must share their CC events."""
        n_es = int(np.sum(self.truth.interaction == 1))
        text = (f"{len(self.truth)} events simulated (seeds from {seed}) at {len(self.directions)} supernova directions, "
                f"{n_es} of them ES, reconstructed by the network `{src_name}` and by the classical fit. A burst takes one "
                f"direction and draws {size['es']} ES + {size['cc']} CC of its events (CC with replacement when a burst needs "
                "more than the sample holds: CC events carry almost no direction information, ES events are not repeated "
                "within a burst while the sample holds enough). " + pa.collapse_note(self.pool["network"]))
        cc = self.cc_per_direction()
        if cc < 1.5 * size["cc"]:
            text += (
                f"\n\n**Caution:** each burst draws {size['cc']} CC events from the {cc} CC events of its direction, so "
                f"every CC event appears {size['cc'] / max(cc, 1):.1f} times per burst on average and all bursts of one "
                "direction share nearly the same CC events. With perfect classification that costs little (the CC table "
                "is nearly flat); with a classifier, the few CC events it takes for ES are then the same in every burst of "
                "a direction and pull them all the same way, so the classifier rows measure those few events more than "
                "the classifier. Raise `events_per_direction` (or lower `pool_es_fraction`) until the sample holds about "
                "twice the CC events of a burst per direction.")
        return text


def simulate_pool(
    src: Any, out_dir: Path, directions: np.ndarray, n_events: int, *, seed: int, pool_es_fraction: float,
    classifier: str, mirror_average: bool = False,
) -> SimulatedPool:
    """Simulate ``n_events`` per supernova direction, reconstructed by the network (and classifier) and the classical fit.

    ``mirror_average``: the network's directions averaged over each event's eight mirror images.
    """
    pool = pa.simulated_sample(src.run_dir, n_events, seed=seed, out_dir=out_dir, directions=directions,
                               sim_config=SimConfig(es_fraction=pool_es_fraction), classifier=classifier or None,
                               mirror_average=mirror_average)
    groups, group_dirs = direction_groups(pool["truth"].nu_directions)
    return SimulatedPool(pool, groups, group_dirs)


def resolution_study(
    pool: SimulatedPool, tables: PointingTables, size: Mapping[str, Any], rng: np.random.Generator, *,
    classification: str, classifier: str, synthetic_auc: Sequence[float], seed: int, fit_options: Mapping[str, Any],
) -> tuple[dict[str, ResolutionResult], BurstPlan]:
    """Pointing θ68 of every table on the same full bursts, then the variants on the same bursts.

    Variants: ES events only (what the CC events add or cost), the other classification modes, the
    classifier without the blips round the event (when it joins them), and
    classifiers of given AUCs drawn from the truth (scores z ~ N(±d/2, 1), AUC = Φ(d/√2), the exact
    equal-prior probability sigmoid(d·z)): what a better classifier would buy.
    """
    burst_tables = tables.for_bursts

    def resolve(name: str, sample: Any, plan: BurstPlan, mode: str, use_kappa: bool | None = None) -> ResolutionResult:
        kappa = "κ" in name if use_kappa is None else use_kappa
        return pointing_resolution(sample, burst_tables[name], None, 0, rng, method="resample", plan=plan,
                                   classification=mode, use_kappa=kappa, **fit_options)

    plan = pool.plan({1: size["es"], 0: size["cc"]}, size["bursts"], rng)
    results = {name: resolve(name, pool.sample(name), plan, classification) for name in tables.tables}
    plan_es = pool.plan({1: size["es"]}, size["bursts"], rng)
    for name in ("classical", "network"):
        results[f"{name}, ES events only"] = resolve(name, pool.sample(name), plan_es, classification, use_kappa=True)
    others = [m for m in CLASSIFICATIONS if m != classification and (m != "classifier" or classifier)]
    for name in ("classical", "network") + (("network, κ-weighted",) if "network, κ-weighted" in tables.tables else ()):
        for m in others:
            results[f"{name}, {_MODE_LABELS[m]}"] = resolve(name, pool.sample(name), plan, m)
    if pa.WINDOW_ONLY in pool.pool and classifier:  # the same classifier without the blips round the event
        results["network, ES/CC classifier on the window only (no blips)"] = resolve(
            "network", pool.pool[pa.WINDOW_ONLY], plan, "classifier", use_kappa=False)
    is_es = pool.truth.interaction == 1
    for auc in synthetic_auc:
        d = np.sqrt(2.0) * norm.ppf(auc)
        z = np.where(is_es, d / 2, -d / 2) + np.random.default_rng(40_000 + seed).normal(size=is_es.size)
        drawn = replace(pool.sample("network"), es_probability=1.0 / (1.0 + np.exp(-d * z)))
        results[f"network, a classifier of AUC {auc:g} (drawn)"] = resolve("network", drawn, plan, "classifier", use_kappa=True)
    return results, plan


def resolution_markdown(results: Mapping[str, ResolutionResult]) -> str:
    """The pointing table: θ68 with its interval, Wilks' coverage, region radius and time per fit."""
    rows = [{"name": k, "t68": r.theta68, "ci": r.theta68_ci, "c68": r.coverage[0.68], "c90": r.coverage[0.9],
             "radius": r.region_radius_median[0.68], "s": r.seconds_per_fit} for k, r in results.items()]
    return markdown_table(rows, {"name": "directions", "t68": "pointing θ68 (°)", "ci": "68 % interval",
                                 "c68": "68 % region coverage", "c90": "90 % region coverage",
                                 "radius": "median 68 % radius (°)", "s": "s per fit"})


def headline(results: Mapping[str, ResolutionResult], size: Mapping[str, Any], classification: str) -> str:
    """The paragraph under the pointing figure: the network against the floor, the classical fit and DUNE."""
    r = {k: v.theta68 for k, v in results.items()}
    net = results["network"]
    no_acceptance = (f"Without the acceptance's normalisation the network gives {r['network, no acceptance']:.1f}°. "
                     if "network, no acceptance" in r else "")
    return (
        f"With {size['es']} ES + {size['cc']} CC events and {classification} classification the network points to "
        f"**{net.theta68:.1f}°** (68 % of bursts; interval {net.theta68_ci[0]:.1f}–{net.theta68_ci[1]:.1f}°; without the "
        f"response map {r['network, no response map']:.1f}°); the true electron directions give {r['true directions']:.1f}° "
        f"(the floor set by ES kinematics and the event count), the classical reconstruction {r['classical']:.1f}° "
        f"(without the map {r['classical, no response map']:.1f}°). Without the CC events the network gives "
        f"{r['network, ES events only']:.1f}° and the classical fit {r['classical, ES events only']:.1f}°. {no_acceptance}"
        "Where the ES-only figure is the better one, the CC events do not add information but pull the fit. "
        "DUNE's published analysis: 3.4°. The coverage columns check Wilks' regions: a region that holds the truth in "
        "68 % of bursts is honest (the next section calibrates them)."
    )


def calibrate_regions(
    src: Any, out_dir: Path, tables: PointingTables, results: Mapping[str, ResolutionResult], size: Mapping[str, Any],
    rng: np.random.Generator, *, seed: int, pool_es_fraction: float, classification: str, classifier: str,
    fit_options: Mapping[str, Any],
) -> tuple[dict[str, dict[str, Any]], str]:
    """ΔlnL thresholds of the 68 % and 90 % regions from bursts at other supernova directions, and their coverage.

    The network's directions are mirror-averaged when the ``tables`` were built so.

    Returns:
        (name → {thresholds, coverage, cal_theta68, second}, a Markdown report); empty without
        calibration directions.
    """
    if not size["cal_dirs"]:
        return {}, ""
    v = np.random.default_rng(30_000 + seed).normal(size=(size["cal_dirs"], 3))
    cal = simulate_pool(src, out_dir, v / np.linalg.norm(v, axis=1, keepdims=True), size["per_direction"],
                        seed=30_000 + seed, pool_es_fraction=pool_es_fraction, classifier=classifier,
                        mirror_average=tables.mirror_average)
    cal_plan = cal.plan({1: size["es"], 0: size["cc"]}, max(size["bursts"], 10), rng)
    burst_tables = tables.for_bursts
    calibrated = {}
    for name in tables.tables:
        res = pointing_resolution(cal.sample(name), burst_tables[name], None, 0, rng, method="resample", plan=cal_plan,
                                  classification=classification, use_kappa="κ" in name, **fit_options)
        th = region_thresholds(res)
        calibrated[name] = {"thresholds": th, "coverage": results[name].coverage_with(th), "cal_theta68": res.theta68,
                            "second": results[name].competing_share(th[0.9])}
    rows = [{"name": k, "t68": c["cal_theta68"], "d68": c["thresholds"][0.68], "d90": c["thresholds"][0.9],
             "w68": results[k].coverage[0.68], "c68": c["coverage"][0.68], "w90": results[k].coverage[0.9],
             "c90": c["coverage"][0.9], "second": c["second"]} for k, c in calibrated.items()]
    table = markdown_table(rows, {"name": "directions", "t68": "θ68 on the calibration directions (°)",
                                  "d68": "68 % ΔlnL", "d90": "90 % ΔlnL", "w68": "68 % coverage, Wilks",
                                  "c68": "68 % coverage, calibrated", "w90": "90 % coverage, Wilks",
                                  "c90": "90 % coverage, calibrated",
                                  "second": "bursts with a 2nd maximum ≥ 60° away inside the 90 % ΔlnL"})
    text = (
        f"{len(cal.truth)} events simulated at {len(cal.directions)} other supernova directions (seeds from "
        f"{30_000 + seed}), {len(cal_plan.indices)} bursts of the same size. Wilks' thresholds are "
        f"{delta_log_likelihood(0.68):.2f} (68 %) and {delta_log_likelihood(0.9):.2f} (90 %); a calibrated threshold far "
        "above them says the likelihood is much sharper than the scatter of the fits. Coverage is counted on the "
        f"{size['bursts']} bursts of the section above (binomial σ ≈ {np.sqrt(0.68 * 0.32 / size['bursts']):.2f}); "
        "with a few calibration directions the thresholds are an average over them, not a guarantee for every direction. "
        "The last column counts bursts whose likelihood has a second local maximum at least 60° from the best fit (a "
        "flipped solution) within the 90 % threshold: there the 90 % region has a second island, which `edkeras point` "
        "reports.")
    return calibrated, table + "\n\n" + text


def star_alert(
    src: Any, out_dir: Path, star: str, radec: Sequence[float], when: str, size: Mapping[str, Any], *, seed: int,
    tables: PointingTables, classifier: str,
) -> tuple[dict[str, Any], Path, str]:
    """A burst of ``size['es']`` ES + ``size['cc']`` CC events from a named star at ``when``, through ``edkeras alert``.

    A shipped model points with its own tables (with their burst calibration); a run of this
    study, or mirror-averaged directions, with the network tables fitted above (no burst
    calibration: the alert says so; mirror-averaged tables make the alert mirror-average too).

    Returns:
        The alert record, its folder (``alert.json``, ``skymap.fits``, ``skymap.png`` with the
        star marked) and one paragraph saying where the map puts the supernova.
    """
    ra, dec = (float(x) for x in radec)
    n = int(size["es"]) + int(size["cc"])
    share = int(size["es"]) / n
    events = out_dir / "star_burst.h5"
    nu = nu_direction_from_radec(ra, dec, when)[0]
    simulate_to_file(events, n, seed=30_000 + seed, progress=False, overwrite=True,
                     config=SimConfig(channel="mix", es_fraction=share, direction=tuple(float(x) for x in nu)))
    table_source = f"pretrained:{src.name}"
    if not src.shipped or tables.mirror_average:
        table_source = str(out_dir / "network_tables.npz")
        save_table(tables.tables["network"], table_source, overwrite=True)
    folder = out_dir / "alert"
    record = write_alert([events], model=str(src.run_dir), tables=table_source, time_utc=when, out=folder,
                         classifier=classifier or None, es_fraction=share, force=True, progress=False,
                         mark=(ra, dec), label=star)
    p = record["position"]
    sep = float(radec_separation_deg(p["ra_deg"], p["dec_deg"], ra, dec)[0])
    temp = record["likelihood_temperature"]
    text = (f"{star} (RA {ra:.2f}°, Dec {dec:+.2f}°) at {record['time_utc']} UTC: {record['events']['n']} events "
            f"({size['es']} ES + {size['cc']} CC expected; {record['events']['classification']}). The alert puts the "
            f"supernova at RA {p['ra_deg']:.2f}°, Dec {p['dec_deg']:+.2f}°, **{sep:.1f}° from {star}**; 68 % region "
            f"{record['credible_area_deg2']['0.68']:.0f} deg² (radius {record['error_radius_deg']['0.68']:.1f}°), 90 % "
            f"region {record['credible_area_deg2']['0.9']:.0f} deg² (radius {record['error_radius_deg']['0.9']:.1f}°); "
            f"map temperature T = {temp['T']:.2f}"
            + (f" (calibrated on bursts of {temp['calibrated_for_events']} events)" if temp["calibrated_for_events"] else "")
            + f". Tables: `{table_source}`. Files in `{folder}`."
            + "".join(f"\n\n**Warning:** {w}." for w in record["warnings"]))
    return record, folder, text


def summary(
    *, smoke: bool, src: Any, pool: SimulatedPool, tables: PointingTables, size: Mapping[str, Any], classification: str,
    table_method: str, results: Mapping[str, ResolutionResult], calibrated: Mapping[str, Mapping[str, Any]],
    vs_n: Mapping[str, Sequence[ResolutionResult]], slope: Mapping[str, float], classifier: str,
    separation: Any, response: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """The study's figures for ``summary.json``."""
    tables_from = ("calibration" if tables.n_validation == 0 else "val + calibration") if size["calibration"] else "val"
    bias: dict[str, list[dict[str, Any]]] = {r["name"]: [] for r in response}
    for r in response:
        bias[r["name"]].append({"raw": r["bias"], "after_map": r["left"], "n": r["n"]})
    return {
        "smoke": smoke, "source_run": src.name, "fallback_used": src.trained,
        "collapsed_model": bool(pa.collapse_note(pool.pool["network"])), "n_es": size["es"], "n_cc": size["cc"],
        "n_bursts": size["bursts"], "classification": classification, "table_method": table_method, "method": "resample",
        "tables_from": tables_from, "calibration_events": size["calibration"], "response_degree": size["degree"],
        "acceptance_degree": size["acc"], "mirror_symmetric": size["symmetric"], "network_tables_from": tables.network_from or "study",
        "mirror_average": tables.mirror_average, "sample_events": len(pool.truth), "supernova_directions": len(pool.directions),
        "network_pointing_theta68": results["network"].theta68,
        "truth_pointing_theta68": results["true directions"].theta68,
        "classical_pointing_theta68": results["classical"].theta68,
        "pointing_theta68_deg": {k: r.theta68 for k, r in results.items()},
        "pointing_theta68_ci": {k: list(r.theta68_ci) for k, r in results.items()},
        "coverage_68": {k: r.coverage[0.68] for k, r in results.items()},
        "coverage_90": {k: r.coverage[0.9] for k, r in results.items()},
        "seconds_per_fit": {k: r.seconds_per_fit for k, r in results.items()},
        "region_thresholds": {k: {f"{cl:g}": v for cl, v in c["thresholds"].items()} for k, c in calibrated.items()},
        "calibrated_coverage": {k: {f"{cl:g}": v for cl, v in c["coverage"].items()} for k, c in calibrated.items()},
        "second_maximum_within_90": {k: c["second"] for k, c in calibrated.items()},
        "theta68_vs_events": {k: {str(r.n_events): r.theta68 for r in res} for k, res in vs_n.items()},
        "slope_vs_events": dict(slope), "dune_reference_deg": 3.4,
        "classifier": classifier or None, "classifier_separation": separation,
        "mean_direction_bias_deg": bias,
    }
