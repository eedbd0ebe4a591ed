"""Every phase notebook at one learning budget, on the same data and test events: one row per proposal item.

    python benchmarks/phases.py                       # run what is missing, then write the tables
    python benchmarks/phases.py --only v21_uncertainty likelihood
    python benchmarks/phases.py --render              # rewrite phases.md and the README summary from the JSON

Each entry runs one notebook with ``edkeras run``'s code (papermill, HTML beside its run in
``<runs-dir>/<entry>/``) at the stated budget: the embedded default data set (``data =
"synthetic"``), ``--events`` events split 70/15/15 by event id (split seed 0: the same test events for
every entry), ``--epochs`` epochs for every training, seed 0. The entries run in order (the
``baseline_v15`` reference and the v21 run come first: later entries read them), and the JSON is
rewritten after each one. A finished entry whose parameters are unchanged is not run again, so
an interrupted run resumes at the entry it was in; ``--force`` reruns.

Output: ``<runs-dir>/phases.json`` (budget, one record per entry: parameters, wall seconds, the
notebook's ``summary.json``, the row), ``benchmarks/phases.md`` (the table) and the block of
README.md between ``<!-- phases:begin -->`` and ``<!-- phases:end -->`` (generated, never typed).
The JSON goes to stdout at the end, as every benchmark's does.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import shutil
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edkeras.core.files import write_text
from edkeras.events.eventfile import INTERACTION_CODES
from edkeras.reco.metrics import resolution_summary
from edkeras.reco.predictions import load_predictions
from edkeras.reports.notebooks import run_notebook
from edkeras.studies.phase import LEARNING_PASSES
from edkeras.studies.verdicts import compare

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- phases:begin -->", "<!-- phases:end -->"
SEED_SPREAD_DEG = 2.9
"""Test θ68 spread between two training seeds of ``compact`` at 42,000 passes (benchmarks/README.md): a
difference this small between two single-seed runs is not attributed to what differs between them."""
@dataclass(frozen=True)
class Entry:
    """One row: a notebook run with its own parameters, the proposal item it answers and how to read it."""

    name: str
    notebook: str
    item: str
    question: str
    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    target: str = "—"
    source: str = ""
    """Another entry whose run this row reads (no run of its own)."""


ENTRIES: tuple[Entry, ...] = (  # in the order they run: later entries read earlier runs
    Entry("00_dataset", "00_dataset", "data", "Are the events what the analysis expects?", "dataset"),
    Entry("v15_baseline", "v15_baseline", "1 (reference)", "How good is the earlier system's CNN (narrowed to 1/4 width) on these events?",
          "reference", target="earlier system: median 30.4° (not the same events)"),
    Entry("v21_uncertainty", "v21_uncertainty", "4a", "Does a vMF uncertainty head keep the direction and give a calibrated uncertainty?",
          "uncertainty", target="predicted/actual θ68 within ±20 %; θ68 < 20° (final)"),
    Entry("energy_analysis", "energy_analysis", "5a", "Is the resolution worse at low energy (< 20, 20–40, > 40 MeV)?", "energy",
          target="expected: worse at low energy"),
    Entry("likelihood", "likelihood", "7", "Which P(cos θ | E) row model describes held-out events best?", "likelihood",
          {"source_runs": ["v21_uncertainty"]}),
    Entry("v21_gaussian", "v21_uncertainty", "4a (σ form)", "The proposal's own form: angle/σ² + log σ² (Gaussian angular NLL)",
          "uncertainty", {"loss": "gaussian_angular_nll"}, target="predicted/actual θ68 within ±20 %"),
    Entry("augmentation", "augmentation", "3a", "Does the mirror augmentation help `compact`?", "twin"),
    Entry("augmentation_noise", "augmentation", "3a (noise, gain)", "Do electronics noise and gain scaling help `compact`?", "twin",
          {"mirror": False, "noise_adc": 2.0, "gain_sigma": 0.1, "plane_gain_sigma": 0.05}),
    Entry("augmentation_mixup", "augmentation", "3b", "Does mix-up (SLERP of the directions) help `compact`?", "twin",
          {"mirror": False, "mixup_alpha": 0.2}),
    Entry("focal_loss", "focal_loss", "4b", "Does a focal angular loss (γ = 1.5, energy-balanced α) help?", "twin"),
    Entry("multitask", "multitask", "4c", "Do energy and ES/CC as auxiliary tasks improve the direction?", "twin"),
    Entry("v22_energy_conditioned", "v22_energy_conditioned", "5b", "Does the reconstructed energy as an input help?", "twin"),
    Entry("v22_separate_models", "v22_energy_conditioned", "5b (separate models)",
          "Do separate models per energy bin (< 10, 10–20, ≥ 20 MeV) beat one model?", "separate", source="v22_energy_conditioned"),
    Entry("ensembles_seeds", "ensembles", "6a", "Does an ensemble of 3 seeds beat its members, and is its spread a calibrated uncertainty?",
          "ensemble", {"method": "seeds"}, target="uncertainty within ±20 %"),
    Entry("ensembles_bootstrap", "ensembles", "6a (bootstrap)", "The same with 3 bootstrap resamples of the training split",
          "ensemble", {"method": "bootstrap"}, target="uncertainty within ±20 %"),
    Entry("ensembles_kfold", "ensembles", "6b", "The same with 5 folds (each member trains on 4)", "ensemble",
          {"method": "kfold"}, target="uncertainty within ±20 %"),
    Entry("v18_residual", "v18_residual", "2a", "Does a deeper residual network beat v15?", "architecture"),
    Entry("v20_multiscale", "v20_multiscale", "2c", "Do multi-scale (3×3, 5×5, 7×7) features beat v15?", "architecture"),
    Entry("v19_attention", "v19_attention", "2b", "Does cross-plane attention beat v15?", "architecture"),
    Entry("augmentation_v15", "augmentation", "3a on v15", "Does the mirror augmentation help `baseline_v15`, the earlier system's CNN?", "twin",
          {"model": "baseline_v15"}),
    Entry("pointing", "pointing", "7 (pointing)", "How well does a 10 kpc burst point with this budget's network?", "pointing",
          {"source_runs": ["v21_uncertainty"]}, target="DUNE: 3.4° (perfect classification)"),
    Entry("v17_hyperopt", "v17_hyperopt", "1", "Does a hyperparameter search (Hyperband) beat v15's fixed settings?", "v17",
          target="20–30 % better than v15; θ68 < 22°"),
    Entry("leaderboard", "leaderboard", "final", "Which model is best (chosen on validation), and does it reach the final target?",
          "leaderboard", target="θ68 < 20°"),
)

_THAN = {"better": "better than", "worse": "worse than", "compatible": "compatible with"}
_TWIN_WORDS = {"better": "helps", "worse": "hurts", "compatible": "no significant change"}


def _ci(value: Any, ci: Sequence[float] | None, digits: int = 1, unit: str = "°") -> str:
    if value is None or not math.isfinite(float(value)):
        return "—"
    text = f"{float(value):.{digits}f}{unit}"
    if ci is not None and len(ci) == 2 and all(c is not None for c in ci):
        text += f" [{float(ci[0]):.{digits}f}, {float(ci[1]):.{digits}f}]"
    return text


def _direction(s: Mapping[str, Any]) -> str:
    flips = s.get("test_flip_fraction")
    fci = s.get("test_flip_fraction_ci")
    flip_text = "—" if flips is None else _ci(100 * flips, None if fci is None else [100 * c for c in fci], 1, " %")
    return (f"θ68 {_ci(s['test_theta68'], s.get('test_theta68_ci'))}, median {_ci(s.get('test_median'), s.get('test_median_ci'))}, "
            f"flips {flip_text} ({s['test_n']} test events)")


def _vs(s: Mapping[str, Any], ref: Mapping[str, Any] | None, label: str) -> tuple[str, str]:
    if not ref:
        return f"{label}: missing", "—"
    verdict = compare(s["test_theta68"], s["test_theta68_ci"], ref["theta68"], ref["theta68_ci"])
    return f"{label} {_ci(ref['theta68'], ref['theta68_ci'])}", f"{_THAN[verdict]} {label} ({s['test_theta68'] - ref['theta68']:+.1f}°)"


def _refs(s: Mapping[str, Any]) -> tuple[Mapping | None, Mapping | None]:
    refs = s.get("references") or {}
    return refs.get("baseline_v15"), refs.get("classical")


def _row_reference(s: Mapping[str, Any]) -> dict[str, str]:
    _, classical = _refs(s)
    ref, verdict = _vs(s, classical, "classical")
    return {"answer": _direction(s), "reference": ref, "verdict": verdict}


def _row_architecture(s: Mapping[str, Any]) -> dict[str, str]:
    base, classical = _refs(s)
    ref, verdict = _vs(s, base, "v15")
    cref, _ = _vs(s, classical, "classical")
    return {"answer": _direction(s), "reference": f"{ref}; {cref}", "verdict": verdict}


def _row_twin(s: Mapping[str, Any]) -> dict[str, str]:
    twin = s["twin"]
    verdict = compare(s["test_theta68"], s["test_theta68_ci"], twin["test_theta68"], twin["test_theta68_ci"])
    delta = s["test_theta68"] - twin["test_theta68"]
    base, _ = _refs(s)
    vs_base = "" if not base or s.get("model") == "baseline_v15" else f"; v15 {_ci(base['theta68'], base['theta68_ci'])}"
    return {
        "answer": _direction(s),
        "reference": f"without it ({twin['run']}): θ68 {_ci(twin['test_theta68'], twin['test_theta68_ci'])}{vs_base}",
        "verdict": f"{_TWIN_WORDS[verdict]} ({delta:+.1f}°; one seed" + (
            f", inside the {SEED_SPREAD_DEG}° seed spread)" if verdict != "compatible" and abs(delta) <= SEED_SPREAD_DEG else ")"),
    }


def _row_uncertainty(s: Mapping[str, Any]) -> dict[str, str]:
    row = _row_architecture(s)
    cal = s.get("calibration") or {}
    ratio, rec = cal.get("ratio"), cal.get("ratio_recalibrated")
    parts = []
    if ratio is not None:
        parts.append(f"predicted/actual θ68 {ratio:.2f}" + (f", {rec:.2f} after recalibration on validation" if rec is not None else ""))
        ok = rec if rec is not None else ratio
        row["verdict"] += f"; uncertainty {'met' if abs(ok - 1) <= 0.2 else 'not met'}"
    row["answer"] += "; " + "; ".join(parts) if parts else ""
    return row


def _row_v17(s: Mapping[str, Any]) -> dict[str, str]:
    row = _row_architecture(s)
    base, _ = _refs(s)
    tuning = s.get("tuning") or {}
    plan = (f"rungs of {tuning.get('min_epochs_per_trial')} to {tuning.get('epochs_per_trial')} epochs"
            if tuning.get("algorithm") == "hyperband" else f"{tuning.get('epochs_per_trial')} epochs each")
    best = tuning.get("best_value")
    row["answer"] += (f"; {tuning.get('trials_completed')} trials ({tuning.get('algorithm')}, {plan}); the best trial "
                      + (f"(validation θ68 {best:.1f}° in the search) " if best is not None else "")
                      + f"retrained for the budget's {s.get('epochs_run')} epochs: {_settings(tuning.get('best_hyperparameters'))}")
    if base:
        gain = 1 - s["test_theta68"] / base["theta68"]
        row["verdict"] += f"; {100 * gain:+.0f} % against v15 (target 20–30 %): {'met' if gain >= 0.2 else 'not met'}"
    row["verdict"] += f"; < 22°: {'met' if s['test_theta68_ci'][1] < 22 else 'not met'}"
    return row


def _settings(hps: Mapping[str, Any] | None) -> str:
    """Searched settings as ``key = value`` (floats to 3 significant digits)."""
    return ", ".join(f"{k.split('.')[-1]} = {v:.3g}" if isinstance(v, float) else f"{k.split('.')[-1]} = {v}"
                     for k, v in (hps or {}).items()) or "—"


def _row_ensemble(s: Mapping[str, Any]) -> dict[str, str]:
    cals = s.get("calibration") or {}

    def cal_text(key: str) -> tuple[str, bool]:
        c = cals.get(key) or {}
        ratio = c.get("ratio")
        if ratio is None:
            return "—", False
        return f"predicted/actual θ68 {ratio:.2f}, 68 % cone holds {100 * c['coverage_68']:.0f} %", abs(ratio - 1) <= 0.2

    spread, spread_ok = cal_text("spread, recalibrated")
    both, both_ok = cal_text("members' κ + spread, recalibrated")
    return {
        "answer": (f"ensemble θ68 {_ci(s['ensemble_theta68'], s.get('ensemble_theta68_ci'))} ({s['members']} members, {s['method']}); "
                   f"uncertainty after recalibration on validation — the members' spread: {spread}; their κ and spread: {both}"),
        "reference": f"members: mean θ68 {s['member_theta68_mean']:.1f}°; the validation-chosen one {s['member_theta68'][s['chosen_member_on_val']]:.1f}°",
        "verdict": (f"{_THAN[s['ensemble_vs_chosen_member']]} the chosen member ({-s['gain_vs_chosen_member_deg']:+.1f}°); "
                    f"uncertainty from the spread {'met' if spread_ok else 'not met'}, from κ and spread {'met' if both_ok else 'not met'}"),
    }


def _row_separate(s: Mapping[str, Any]) -> dict[str, str]:
    sep = s["separate_models"]
    return {
        "answer": f"θ68 {_ci(sep['theta68'], sep['theta68_ci'])} ({len(sep['runs'])} models, {sep['test_n']} test events)",
        "reference": f"one model without energy input on the same events: θ68 {_ci(sep['single_model_theta68'], sep['single_model_theta68_ci'])}",
        "verdict": f"{_THAN[sep['verdict']]} one model ({sep['theta68'] - sep['single_model_theta68']:+.1f}°; one seed)",
    }


def _row_dataset(s: Mapping[str, Any]) -> dict[str, str]:
    return {
        "answer": (f"{s['n_events']} events, {100 * s['es_fraction']:.0f} % ES; ES electron–neutrino angle median "
                   f"{s['es_angle_to_nu_median_deg']:.1f}°; {100 * s['tp_share_within_30pct']:.0f} % of the TP medians within ±30 % of real"),
        "reference": f"{s['real_events_ingested']} real DUNE ES events",
        "verdict": f"doctor: {s['doctor_status']}",
    }


def _row_energy(s: Mapping[str, Any]) -> dict[str, str]:
    bins = s.get("theta68_by_proposal_bin") or {}
    return {
        "answer": ", ".join(f"{k} MeV: {v:.1f}°" for k, v in bins.items() if v is not None) + f" (θ68, {s['source_run']})",
        "reference": "classical, bins of the likelihood tables: " + ", ".join(
            f"{k}: {v:.1f}°" for k, v in (s.get("classical_theta68_by_energy") or {}).items() if v is not None),
        "verdict": f"low energies {s['low_vs_high_energy']}",
    }


def _row_likelihood(s: Mapping[str, Any]) -> dict[str, str]:
    lnl = s["mean_log_likelihood"]
    best = s["best_method"]
    return {
        "answer": "held-out mean ln P per event: " + ", ".join(f"{m} {v:.3f}" for m, v in lnl.items())
                  + f" ({s['n_heldout']} held-out validation events of {s['source_run']})",
        "reference": f"histogram {lnl.get('histogram', float('nan')):.3f}",
        "verdict": f"best table method: {best} (its 68 % coverage {s['coverage_68'][best]:.2f})" + (
            "; best per energy bin: " + ", ".join(f"{b} MeV {m}" for b, m in s["best_method_by_energy"].items())
            if s.get("best_method_by_energy") else ""),
    }


def _row_pointing(s: Mapping[str, Any]) -> dict[str, str]:
    t = s["pointing_theta68_deg"]
    ci = s["pointing_theta68_ci"]
    return {
        "answer": (f"network {_ci(t['network'], ci.get('network'))} over {s['n_bursts']} bursts of {s['n_es']} ES + {s['n_cc']} CC "
                   f"({s['classification']} classification, {s['supernova_directions']} directions)"),
        "reference": f"classical {_ci(t['classical'], ci.get('classical'))}; true directions {t['true directions']:.2f}°",
        "verdict": _vs_pointing(t, ci),
    }


def _vs_pointing(t: Mapping[str, float], ci: Mapping[str, Sequence[float]]) -> str:
    v = compare(t["network"], ci["network"], t["classical"], ci["classical"])
    return f"{_THAN[v]} classical ({t['network'] - t['classical']:+.1f}°); DUNE 3.4°: {'met' if ci['network'][1] < 3.4 else 'not met'}"


def _row_leaderboard(s: Mapping[str, Any]) -> dict[str, str]:
    cls = s.get("classical_theta68") or {}
    return {
        "answer": (f"production model (chosen on validation among {s['n_runs']} runs): {s['production']}, test θ68 "
                   f"{_ci(s['production_test_theta68'], s.get('production_test_theta68_ci'))}"),
        "reference": f"classical on the same test events {cls['A']:.1f}°" if "A" in cls else "classical: —",
        "verdict": (f"{_THAN.get(s['production_vs_classical'], s['production_vs_classical'])} classical; "
                    f"< 20°: {'met' if s['production_test_theta68_ci'][1] < 20 else 'not met'}"),
    }


ROWS: dict[str, Callable[[Mapping[str, Any]], dict[str, str]]] = {
    "dataset": _row_dataset, "reference": _row_reference, "architecture": _row_architecture, "twin": _row_twin,
    "uncertainty": _row_uncertainty, "v17": _row_v17, "ensemble": _row_ensemble, "energy": _row_energy,
    "likelihood": _row_likelihood, "separate": _row_separate, "pointing": _row_pointing, "leaderboard": _row_leaderboard,
}


def display_order() -> list[Entry]:
    """The entries in the proposal's order (data first, the final leaderboard last)."""
    def key(e: Entry) -> int:
        m = re.match(r"\d+", e.item)
        return -1 if e.item == "data" else 99 if e.item == "final" else int(m.group()) if m else 50
    return sorted(ENTRIES, key=key)


def entry_parameters(entry: Entry, events: int, epochs: int, smoke: bool) -> dict[str, Any]:
    """The notebook parameters of ``entry`` at the budget (the shared ones, then the entry's own)."""
    params: dict[str, Any] = {"data": "synthetic", "n_events": events, "epochs": epochs, "seed": 0, "run_name": entry.name,
                              "smoke": smoke, "force": True}
    if entry.notebook == "00_dataset":
        params["epochs"] = 0
    params.update(entry.params)
    return params


def build_row(entry: Entry, records: Mapping[str, Any]) -> dict[str, str]:
    """The table row of ``entry`` from the JSON records of all entries, or a row saying what is missing."""
    record = records.get(entry.source or entry.name, {})
    base = {"entry": entry.name, "item": entry.item, "question": entry.question, "target": entry.target}
    if record.get("status") != "done":
        why = record.get("error") or "not run yet"
        return {**base, "answer": f"— ({why})", "reference": "—", "verdict": "not measured"}
    try:
        return {**base, **ROWS[entry.kind](record["summary"])}
    except (KeyError, TypeError, IndexError, ValueError) as e:  # a notebook's summary and this reader drifted apart
        return {**base, "answer": f"— (summary lacks {e})", "reference": "—", "verdict": "not measured", "error": "row"}


def reference_anatomy(runs_dir: Path) -> list[dict[str, Any]] | None:
    """θ68, axis error and wrong-sense share of the two references, per interaction, on the shared test events.

    Read from the ``v15_baseline`` entry's run (its test predictions and the classical fit's on the
    same events); None before that entry ran. The axis error is min(θ, 180° − θ); "sense wrong"
    counts θ > 90°.
    """
    run = runs_dir / "v15_baseline"
    files = {"classical": run / "classical_predictions_test.npz", "baseline_v15": run / "predictions_test.npz"}
    if not all(f.exists() for f in files.values()):
        return None
    rows = []
    for name, f in files.items():
        p = load_predictions(f)
        for code, label in ((INTERACTION_CODES["es"], "ES"), (INTERACTION_CODES["cc"], "CC"), (None, "all")):
            sel = np.ones(len(p), bool) if code is None else p.interaction == code
            a = p.angular_errors[sel]
            axis = np.minimum(a, 180.0 - a)
            r = resolution_summary(a, n_boot=200)
            rows.append({"reconstruction": name, "events": label, "n": int(sel.sum()), "theta68": r["theta68"],
                         "theta68_ci": list(r["theta68_ci"]), "axis_median": float(np.median(axis)),
                         "axis_theta68": float(np.quantile(axis, 0.68)), "sense_wrong": float(np.mean(a > 90.0))})
    return rows


def _anatomy_text(rows: Sequence[Mapping[str, Any]] | None) -> str:
    if not rows:
        return ""
    r = {(x["reconstruction"], x["events"]): x for x in rows}
    c_es, c_cc, v_es = r[("classical", "ES")], r[("classical", "CC")], r[("baseline_v15", "ES")]
    return (f"The classical fit finds the track's axis almost as well as `baseline_v15` (median axis error on ES events "
            f"{c_es['axis_median']:.1f}° against {v_es['axis_median']:.1f}°) but chooses the wrong sense for "
            f"{100 * c_es['sense_wrong']:.0f} % of ES and {100 * c_cc['sense_wrong']:.0f} % of CC events (the network: "
            f"{100 * v_es['sense_wrong']:.0f} % of ES): its θ68 ({c_es['theta68']:.1f}° ES, {c_cc['theta68']:.1f}° CC) is "
            "set by that head–tail choice, not by its axis: with a third or more of the senses wrong, the 68 % containment "
            "angle falls among the backward events, and small changes of the wrong-sense share move it by tens of degrees "
            "between samples and channels.")


def markdown(doc: Mapping[str, Any]) -> str:
    """``benchmarks/phases.md``: the budget, then one row per entry."""
    b = doc["budget"]
    done = [r for r in doc["entries"].values() if r.get("status") == "done"]
    seconds = sum(r.get("seconds", 0) for r in done)
    lines = [
        "# Every proposal item at one budget",
        "",
        f"Generated by `python benchmarks/phases.py` (do not edit; `--render` rewrites it from `{doc['json']}`).",
        "",
        f"**Budget.** The embedded default data set (simulated ES+CC events of the TP imaging path), {b['events']:,} events "
        f"split 70/15/15 by event id (split seed 0): {b['train_events']:,} training events, the same "
        f"{b['test_events']:,} test events for every row; {b['epochs']} epochs per training "
        f"({b['sample_passes']:,} training-sample passes, above the {LEARNING_PASSES:,} at which networks learn), seed 0; "
        f"`scale = \"cpu\"` widths. The test split chooses nothing (epochs, trials, tables, members are chosen on validation).",
        "",
        f"**Where.** {b['machine']}; {len(done)} of {sum(1 for e in ENTRIES if not e.source)} entries measured, {seconds / 3600:.1f} h of wall time "
        f"(first {b.get('started', '?')}, last {b.get('updated', '?')}).",
        "",
        "Intervals are 68 % bootstrap intervals; \"better\"/\"worse\" only when two intervals do not overlap. "
        f"\"One seed\": a difference up to {SEED_SPREAD_DEG}° is inside the seed spread measured for `compact` at 42,000 passes.",
        "",
        *([f"**The references.** {_anatomy_text(doc.get('reference_anatomy'))}", ""] if doc.get("reference_anatomy") else []),
        "| item | question | answer (test split) | reference on the same events | proposal's target | verdict | entry |",
        "|---|---|---|---|---|---|---|",
    ]
    for e in display_order():
        r = {k: v.replace("|", "\\|") for k, v in build_row(e, doc["entries"]).items()}
        lines.append(f"| {r['item']} | {r['question']} | {r['answer']} | {r['reference']} | {r['target']} | {r['verdict']} | "
                     f"`{e.name}` ({e.notebook}) |")
    return "\n".join(lines) + "\n"


def readme_block(doc: Mapping[str, Any]) -> str:
    """The README's summary: one line per item (generated from the same JSON)."""
    b = doc["budget"]
    lines = [BEGIN, "",
             f"*Generated by `python benchmarks/phases.py` from `{doc['json']}` ({b['events']:,} events, the same "
             f"{b['test_events']:,} test events for every row, {b['epochs']} epochs = {b['sample_passes']:,} passes per training, "
             f"{b['machine']}); answers are test θ68 with 68 % intervals; the full table: "
             "[`benchmarks/phases.md`](benchmarks/phases.md).*", ""]
    if doc.get("reference_anatomy"):
        lines += [_anatomy_text(doc["reference_anatomy"]), ""]
    for e in display_order():
        r = build_row(e, doc["entries"])
        short = re.sub(r" \(\d+ test events\)", "", r["answer"].split("; ")[0])
        lines.append(f"- **{r['item']}** — {r['question']} {short} → **{r['verdict']}**.")
    return "\n".join([*lines, "", END])


def update_readme(path: Path, block: str) -> bool:
    """Replace the README's generated block (atomically); false when the markers are missing."""
    text = path.read_text()
    if BEGIN not in text or END not in text:
        return False
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    write_text(path, head + block + tail)
    return True


def depends_on(entry: Entry) -> list[str]:
    """The entries whose runs ``entry`` reads: the v15 reference (every training), the v21 run (its readers), all (leaderboard)."""
    if entry.name == "leaderboard":
        return [e.name for e in ENTRIES if e.name != entry.name and not e.source]
    deps = [] if entry.name in ("00_dataset", "v15_baseline") else ["v15_baseline"]
    if "v21_uncertainty" in entry.params.get("source_runs", []) or entry.notebook == "energy_analysis":
        deps.append("v21_uncertainty")
    return deps


def _is_done(entry: Entry, records: Mapping[str, Any], params: Mapping[str, Any]) -> bool:
    """Done with the same parameters, and after every run it reads (else its references are stale)."""
    record = records.get(entry.name)
    if not record or record.get("status") != "done" or record.get("params") != json.loads(json.dumps(params)):
        return False
    return all(records.get(d, {}).get("finished", "") <= record.get("finished", "") for d in depends_on(entry))


def run_entry(entry: Entry, params: Mapping[str, Any], runs_dir: Path) -> dict[str, Any]:
    """Execute one notebook; its record (``status`` done or failed, ``seconds``, ``summary``)."""
    t0 = time.perf_counter()
    res = run_notebook(entry.notebook, dict(params), runs_dir=runs_dir, report_dir=runs_dir / entry.name, progress=False)
    rec: dict[str, Any] = {"params": json.loads(json.dumps(params)), "seconds": round(time.perf_counter() - t0, 1),
                           "html": str(res.html), "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}
    if res.ok and res.summary is not None:
        rec.update(status="done", summary=res.summary)
    else:
        lines = (res.error or "").strip().splitlines() or ["the notebook wrote no summary.json"]
        rec.update(status="failed", error=lines[-1][:300])
    return rec


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=12_000, help="events of the shared data set (70 %% train)")
    ap.add_argument("--epochs", type=int, default=6, help="epochs of every training")
    ap.add_argument("--runs-dir", type=Path, default=ROOT / "runs" / "phases")
    ap.add_argument("--markdown", type=Path, default=ROOT / "benchmarks" / "phases.md")
    ap.add_argument("--readme", type=Path, default=ROOT / "README.md", help="README whose generated block is rewritten ('' : none)")
    ap.add_argument("--only", nargs="+", metavar="ENTRY", help="run these entries (the tables keep the others' records)")
    ap.add_argument("--force", action="store_true", help="rerun entries already done with the same parameters")
    ap.add_argument("--render", action="store_true", help="run nothing: rewrite the Markdown and the README block")
    ap.add_argument("--smoke", action="store_true", help="the notebooks' smoke mode (tiny data and models: the test suite)")
    args = ap.parse_args(argv)

    names = [e.name for e in ENTRIES]
    unknown = sorted(set(args.only or []) - set(names))
    if unknown:
        ap.error(f"--only: unknown entry {unknown[0]!r}; entries: {', '.join(names)}")
    runs_dir = args.runs_dir.resolve()
    runs_dir.mkdir(parents=True, exist_ok=True)
    json_path = runs_dir / "phases.json"
    doc: dict[str, Any] = json.loads(json_path.read_text()) if json_path.exists() else {"entries": {}}
    n_test = n_val = round(args.events * 0.15)  # edkeras.events.splits: exact counts, test and val rounded
    n_train = args.events - n_test - n_val
    budget = {"events": args.events, "epochs": args.epochs, "train_events": n_train,
              "test_events": n_test, "sample_passes": n_train * args.epochs,
              "smoke": args.smoke, "machine": _machine()}
    old = doc.get("budget", {})
    if old and any(old.get(k) != budget[k] for k in ("events", "epochs", "smoke")) and not args.render:
        print(f"phases: {json_path} holds another budget ({old.get('events')} events, {old.get('epochs')} epochs); "
              "use another --runs-dir", file=sys.stderr)
        return 2
    if not args.render:
        doc["budget"] = {**old, **budget, "started": old.get("started", time.strftime("%Y-%m-%dT%H:%M"))}
    elif not old:
        print(f"phases: {json_path} holds no run to render", file=sys.stderr)
        return 2
    doc["json"] = os.path.relpath(json_path, ROOT) if json_path.is_relative_to(ROOT) else str(json_path)
    if budget["sample_passes"] < LEARNING_PASSES and not args.smoke and not args.render:
        print(f"phases: warning: {budget['sample_passes']:,} passes per training is below the {LEARNING_PASSES:,} at which "
              "networks learn; rows will compare noise", file=sys.stderr)

    def save() -> None:
        if not args.render:  # a render elsewhere must not relabel where and when the numbers were measured
            doc["budget"]["updated"] = time.strftime("%Y-%m-%dT%H:%M")
        write_text(json_path, json.dumps(doc, indent=1) + "\n")
        write_text(args.markdown, markdown(doc))
        if str(args.readme) and args.readme.name and args.readme.exists() and not update_readme(args.readme, readme_block(doc)):
            print(f"phases: {args.readme} has no {BEGIN} … {END} block; not updated", file=sys.stderr)

    if not args.render:
        for entry in ENTRIES:
            if entry.source or (args.only and entry.name not in args.only):
                continue
            params = entry_parameters(entry, args.events, args.epochs, args.smoke)
            if not args.force and _is_done(entry, doc["entries"], params):
                print(f"phases: {entry.name}: done before, kept", file=sys.stderr)
                continue
            print(f"phases: {entry.name}: running {entry.notebook} {params}", file=sys.stderr, flush=True)
            rec = run_entry(entry, params, runs_dir)
            doc["entries"][entry.name] = rec
            if entry.name == "v15_baseline" or "reference_anatomy" not in doc:  # read from the reference's run
                doc["reference_anatomy"] = reference_anatomy(runs_dir)
            print(f"phases: {entry.name}: {rec['status']} in {rec['seconds']:.0f} s"
                  + (f" ({rec['error']})" if rec["status"] != "done" else ""), file=sys.stderr, flush=True)
            save()
    save()
    rows = [build_row(e, doc["entries"]) for e in ENTRIES]
    print(json.dumps({"budget": doc["budget"], "rows": rows}, indent=1))
    broken = [r["entry"] for r in rows if r.get("error")]
    if broken:
        print(f"phases: the rows of {', '.join(broken)} cannot be read from their notebooks' summaries", file=sys.stderr)
        return 1
    if args.render:
        return 0
    return 0 if all(doc["entries"].get(e.name, {}).get("status") == "done" for e in ENTRIES
                    if not e.source and (not args.only or e.name in args.only)) else 1


def _machine() -> str:
    gpu = shutil.which("nvidia-smi") is not None
    return f"{os.cpu_count()} CPU cores ({platform.machine()}){', a GPU' if gpu else ', no GPU'}"


if __name__ == "__main__":
    sys.exit(main())
