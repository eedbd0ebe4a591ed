"""What a phase notebook compares against and concludes: the reference results, the comparison of two θ68 with their intervals, the verdict."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from edkeras.core.errors import InputError
from edkeras.reco.config import RunConfig
from edkeras.reco.metrics import resolution_summary
from edkeras.reco.runs import list_runs
from edkeras.reports.notebooks import project_root
from edkeras.studies.phase import ISOTROPIC_THETA68, classical_predictions, data_key

__all__ = ['compare', 'conclusion', 'find_baseline', 'reference_results']


def find_baseline(config: RunConfig, runs_dir: str | os.PathLike = "runs", model: str = "baseline_v15") -> Any:
    """The finished ``model`` run on the same test events as ``config`` (a :class:`edkeras.reco.runs.RunInfo`), or None.

    Prefers the run named ``v15_baseline`` (the notebook's), then the newest.
    """

    key = data_key(config)
    found = []
    for run in list_runs(runs_dir):
        cfg = run.config or {}
        if not run.finished or run.name == config.name or cfg.get("model", {}).get("name") != model:
            continue
        try:
            same = data_key(cfg) == key
        except InputError:
            continue
        if same:
            found.append(run)
    if not found:
        return None
    found.sort(key=lambda r: (r.name != "v15_baseline", -(r.path / "metrics.json").stat().st_mtime))
    return found[0]


def _ref_entry(name: str, summary: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "n": int(summary["n"]),
        "theta68": float(summary["theta68"]),
        "theta68_ci": [float(x) for x in summary["theta68_ci"]],
        "median": float(summary["median"]),
        "flip_fraction": float(summary["flip_fraction"]),
        **extra,
    }


def reference_results(
    config: RunConfig,
    runs_dir: str | os.PathLike = "runs",
    *,
    run_dir: str | os.PathLike | None = None,
    baseline: bool = True,
    classical: bool = True,
    n_boot: int | None = None,
) -> dict[str, Any]:
    """The references of a phase on the same test events: ``baseline_v15`` (from disk) and the classical fit.

    Args:
        config: the phase's run config.
        runs_dir: where to look for the ``baseline_v15`` run.
        run_dir: where to write the classical predictions (``classical_predictions_test.npz``);
            default ``runs_dir/<config.name>``.
        baseline: look for the ``baseline_v15`` run (false in the notebook that makes it).
        classical: compute the classical baseline (a few seconds per thousand events).
        n_boot: bootstrap samples of its CIs (default: the config's).

    Returns:
        ``{"data_key", "baseline_v15": entry or None, "baseline_v15_missing": how to make
        it (when None), "classical": entry or None}``; an entry holds ``name, n, theta68,
        theta68_ci, median, flip_fraction`` (and ``run``, ``path``, ``model_options`` for
        the baseline, ``predictions`` for the classical).
    """

    out: dict[str, Any] = {"data_key": data_key(config), "baseline_v15": None, "classical": None}
    run = find_baseline(config, runs_dir) if baseline else None
    if run is not None:
        out["baseline_v15"] = _ref_entry(
            "baseline_v15", run.test_summary(), run=run.name, path=str(run.path),
            model_options=(run.config or {}).get("model", {}).get("options", {}),
        )
    elif baseline:
        d = config.data
        how = [f"-p data {d.files[0]!r}" if list(d.files) != ["synthetic"] else ""]
        n = d.synthetic_events if list(d.files) == ["synthetic"] else d.n_events
        how.append(f"-p n_events {n}" if n is not None else "")

        if Path(runs_dir).resolve() != (project_root() / "runs").resolve():
            how.append(f"-p runs_dir {runs_dir}")
        out["baseline_v15_missing"] = (
            f"no finished baseline_v15 run on these test events in {runs_dir}; make it with "
            f"`{' '.join(['edkeras run v15_baseline', *(h for h in how if h)])}`"
        )
    if classical:
        target = Path(run_dir) if run_dir is not None else Path(runs_dir) / config.name
        target.mkdir(parents=True, exist_ok=True)
        pred = classical_predictions(config, target / "classical_predictions_test.npz")
        nb = n_boot if n_boot is not None else config.training.bootstrap_samples
        summary = resolution_summary(pred.angular_errors, n_boot=nb, seed=config.training.seed)
        out["classical"] = _ref_entry("classical", summary, predictions=str(pred.path))
    return out


# ============================================================================ verdicts
def compare(value: float, ci: Sequence[float], ref: float, ref_ci: Sequence[float]) -> str:
    """``"better"``, ``"worse"`` or ``"compatible"``: θ68 against a reference by their 68 % intervals.

    Smaller θ68 is better; "better"/"worse" only when the two intervals do not overlap.
    """
    lo, hi = float(ci[0]), float(ci[1])
    rlo, rhi = float(ref_ci[0]), float(ref_ci[1])
    if not all(math.isfinite(x) for x in (lo, hi, rlo, rhi)):
        return "better" if value < ref else "worse" if value > ref else "compatible"
    if hi < rlo:
        return "better"
    if lo > rhi:
        return "worse"
    return "compatible"


def _fmt_ci(value: float, ci: Sequence[float]) -> str:
    return f"{value:.1f}° [{float(ci[0]):.1f}, {float(ci[1]):.1f}]"


_WORDS = {
    "better": "**better**",
    "worse": "**worse**",
    "compatible": "**compatible** (the 68 % intervals overlap)",
}


def conclusion(
    metrics: Mapping[str, Any],
    references: Mapping[str, Any],
    target_deg: float | None = None,
    *,
    calibration: Mapping[str, Any] | None = None,
    calibration_tolerance: float = 0.2,
    others: Mapping[str, Mapping[str, Any]] | None = None,
) -> str:
    """The closing statement of a phase notebook (Markdown): the result against references and target.

    Args:
        metrics: :func:`~edkeras.studies.phase.summarise_run` output (``test_theta68``, ``test_theta68_ci``,
            ``test_n``, ``run``; ``smoke`` and ``data`` are used when present).
        references: :func:`reference_results` output.
        target_deg: the proposal's θ68 target for this phase, if it has one.
        calibration: ``{"ratio": predicted/actual θ68, "share_within_20pct": …}`` (and
            optionally ``ratio_recalibrated``) for the uncertainty target of v21.
        calibration_tolerance: the proposal's 20 %.
        others: label → :func:`~edkeras.studies.phase.summarise_run` output of further runs on the same test
            events (e.g. the same model without augmentation), compared like the references.

    Returns:
        Markdown text: one bullet per comparison.
    """
    t68, ci = float(metrics["test_theta68"]), metrics["test_theta68_ci"]
    lines = [
        f"**{metrics.get('run', 'this run')}**: θ68 = {_fmt_ci(t68, ci)} on {int(metrics['test_n'])} held-out "
        "test events (68 % bootstrap interval)."
    ]
    if metrics.get("smoke"):
        lines.insert(0, "*Smoke run (tiny data and model, one epoch): the numbers only show that the code runs.*")
    informative = float(ci[1]) < ISOTROPIC_THETA68
    if not informative:
        lines.append(
            f"- **No better than a random guess**: directions drawn at random give θ68 = {ISOTROPIC_THETA68:.1f}°, "
            "inside or below this run's interval — the network has not learnt the direction (too few events or "
            "epochs for this model and loss)."
        )
    compared: list[tuple[str, Mapping[str, Any] | None, str | None]] = [
        (f"the {label}", {"theta68": o["test_theta68"], "theta68_ci": o["test_theta68_ci"], "run": o.get("run")}, None)
        for label, o in (others or {}).items()
    ]
    compared += [
        ("the earlier system's CNN `baseline_v15`", references.get("baseline_v15"), references.get("baseline_v15_missing")),
        ("the classical line fit with head–tail choice", references.get("classical"), None),
    ]
    for label, ref, missing in compared:
        if ref is None:
            if missing:
                lines.append(f"- Against {label}: not available — {missing}.")
            continue
        verdict = compare(t68, ci, ref["theta68"], ref["theta68_ci"])
        where = f" (run `{ref['run']}`)" if ref.get("run") else ""
        lines.append(
            f"- Against {label}{where} on the same test events: {_fmt_ci(ref['theta68'], ref['theta68_ci'])} → "
            f"this run is {_WORDS[verdict]}, Δθ68 = {t68 - ref['theta68']:+.1f}°."
        )
    if target_deg is not None:
        if ci[1] < target_deg:
            verdict = f"**met** (the whole interval lies below {target_deg:g}°)"
        elif t68 < target_deg:
            verdict = f"met by the central value only (the interval reaches {float(ci[1]):.1f}°)"
        else:
            verdict = "**not met**"
        lines.append(f"- The proposal's target θ68 < {target_deg:g}°: {verdict}.")
    if calibration is not None:
        r = float(calibration["ratio"])
        ok = abs(r - 1.0) <= calibration_tolerance
        text = (
            f"- Uncertainty (target: predicted within {calibration_tolerance:.0%} of the actual error): "
            f"predicted θ68 / actual θ68 = {r:.2f} over all test events → **{'met' if ok else 'not met'}**"
        )
        if calibration.get("share_within_20pct") is not None:
            text += f"; {float(calibration['share_within_20pct']):.0%} of events lie in uncertainty bins within ±{calibration_tolerance:.0%}"
        if calibration.get("ratio_recalibrated") is not None:
            rr = float(calibration["ratio_recalibrated"])
            text += (
                f"; after recalibrating κ on the validation split: {rr:.2f} "
                f"({'met' if abs(rr - 1.0) <= calibration_tolerance else 'not met'})"
            )
        if not informative:
            text += " — but for a direction no better than random, a calibrated κ only says that nothing is known"
        lines.append(text + ".")
    data = metrics.get("data")
    if data == ["synthetic"] or data == "synthetic":
        lines.append(
            "- These are simulated events of edkeras's own simulator: the proposal's targets were set on the "
            "earlier system's (optimistic, see NOTES) numbers on DUNE simulation, so they orient, they do not judge."
        )
    return "\n".join(lines)
