"""Tests of ``benchmarks/phases.py``: one row per proposal item, generated tables, resumable runs.

The rows must say what the notebooks measured (a worse run reads "worse", a met target "met"),
the README block must be rewritten from the JSON and nothing else in the README touched, an
entry already done with the same parameters must not run again, and a JSON of another budget
must be refused. The slow test runs one notebook for real in smoke mode.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import load_benchmark

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


phases = load_benchmark("phases")
ENTRY = {e.name: e for e in phases.ENTRIES}


def _run(t68: float, ci: tuple[float, float], **extra: Any) -> dict[str, Any]:
    return {"run": "r", "model": "compact", "test_theta68": t68, "test_theta68_ci": list(ci), "test_median": t68 * 0.7,
            "test_median_ci": [t68 * 0.69, t68 * 0.71], "test_flip_fraction": 0.01, "test_flip_fraction_ci": [0.008, 0.012],
            "test_n": 1800, **extra}


REFS = {"baseline_v15": {"theta68": 50.0, "theta68_ci": [49.0, 51.0]}, "classical": {"theta68": 90.0, "theta68_ci": [88.0, 92.0]}}


def _done(summary: dict[str, Any]) -> dict[str, Any]:
    return {"status": "done", "summary": summary, "params": {}}


def test_every_notebook_has_a_row_and_every_kind_a_reader() -> None:
    notebooks = {p.stem for p in (BENCH.parent / "notebooks").glob("*.ipynb")}
    assert {e.notebook for e in phases.ENTRIES} == notebooks
    assert {e.kind for e in phases.ENTRIES} <= set(phases.ROWS)
    assert len({e.name for e in phases.ENTRIES}) == len(phases.ENTRIES)
    order = [e.name for e in phases.ENTRIES]
    # later entries read earlier runs: the v15 reference first among trainings, v21 before its readers
    assert order.index("v15_baseline") < min(order.index(n) for n in order if n not in ("00_dataset", "v15_baseline"))
    for reader in ("energy_analysis", "likelihood", "pointing"):
        assert order.index("v21_uncertainty") < order.index(reader)
    assert order[-1] == "leaderboard"


def test_rows_report_what_was_measured() -> None:
    worse = phases.build_row(ENTRY["v18_residual"], {"v18_residual": _done(_run(60.0, (59.0, 61.0), references=REFS))})
    assert worse["verdict"].startswith("worse than v15") and "+10.0°" in worse["verdict"]
    assert "θ68 60.0° [59.0, 61.0]" in worse["answer"] and "flips 1.0 % [0.8, 1.2]" in worse["answer"]
    same = phases.build_row(ENTRY["v18_residual"], {"v18_residual": _done(_run(50.5, (49.5, 51.5), references=REFS))})
    assert same["verdict"].startswith("compatible with v15")

    twin = _run(55.0, (54.0, 56.0), run="augmentation_none")
    helps = phases.build_row(ENTRY["augmentation"], {"augmentation": _done(_run(52.0, (51.0, 53.0), references=REFS, twin=twin))})
    assert helps["verdict"].startswith("helps (-3.0°") and "augmentation_none" in helps["reference"]

    tuned = _run(39.0, (38.0, 40.0), references=REFS, tuning={"algorithm": "hyperband", "trials_completed": 8,
                                                                "min_epochs_per_trial": 5, "epochs_per_trial": 15})
    row = phases.build_row(ENTRY["v17_hyperopt"], {"v17_hyperopt": _done(tuned)})
    assert "+22 % against v15 (target 20–30 %): met" in row["verdict"] and "< 22°: not met" in row["verdict"]

    unc = _run(45.0, (44.0, 46.0), references=REFS, calibration={"ratio": 1.35, "ratio_recalibrated": 1.05})
    row = phases.build_row(ENTRY["v21_uncertainty"], {"v21_uncertainty": _done(unc)})
    assert row["verdict"].endswith("uncertainty met") and "1.35" in row["answer"]


def test_a_small_difference_between_single_seed_runs_is_not_credited() -> None:
    twin = _run(55.0, (54.8, 55.2), run="augmentation_none")
    row = phases.build_row(ENTRY["augmentation"], {"augmentation": _done(_run(53.0, (52.8, 53.2), references=REFS, twin=twin))})
    assert row["verdict"] == f"helps (-2.0°; one seed, inside the {phases.SEED_SPREAD_DEG}° seed spread)"


def test_reference_anatomy_reads_es_and_cc_by_their_codes(tmp_path: Path) -> None:
    from edkeras.events.eventfile import INTERACTION_CODES
    from edkeras.reco.predictions import save_predictions

    run = tmp_path / "v15_baseline"
    run.mkdir()
    truth = np.tile([0.0, 0.0, 1.0], (8, 1))
    inter = np.array([INTERACTION_CODES["es"]] * 4 + [INTERACTION_CODES["cc"]] * 4)
    backwards = np.array([0.0, 0.0, -1.0])
    # the classical fit gets the sense of every CC event wrong, the network none
    classical = np.where((inter == INTERACTION_CODES["cc"])[:, None], backwards, truth)
    save_predictions(run / "classical_predictions_test.npz", predictions=classical, true_directions=truth, interaction=inter)
    save_predictions(run / "predictions_test.npz", predictions=truth, true_directions=truth, interaction=inter)
    rows = {(r["reconstruction"], r["events"]): r for r in phases.reference_anatomy(tmp_path)}
    assert rows[("classical", "CC")]["sense_wrong"] == 1.0 and rows[("classical", "ES")]["sense_wrong"] == 0.0
    assert rows[("classical", "all")]["n"] == 8 and rows[("baseline_v15", "CC")]["sense_wrong"] == 0.0
    assert "100 % of CC" in phases._anatomy_text(list(rows.values()))
    assert phases.reference_anatomy(tmp_path / "nothing") is None


def test_a_row_from_another_entry_and_missing_rows() -> None:
    sep = {"separate_models": {"theta68": 58.0, "theta68_ci": [57.0, 59.0], "runs": ["a", "b", "c"], "test_n": 1790,
                               "single_model_theta68": 55.0, "single_model_theta68_ci": [54.0, 56.0], "verdict": "worse"}}
    records = {"v22_energy_conditioned": _done(sep)}
    row = phases.build_row(ENTRY["v22_separate_models"], records)
    assert row["verdict"].startswith("worse than one model (+3.0°") and "3 models" in row["answer"]
    missing = phases.build_row(ENTRY["pointing"], records)
    assert missing["verdict"] == "not measured" and "not run yet" in missing["answer"]
    failed = phases.build_row(ENTRY["pointing"], {"pointing": {"status": "failed", "error": "ValueError: boom"}})
    assert "boom" in failed["answer"] and failed["verdict"] == "not measured"
    lacking = phases.build_row(ENTRY["pointing"], {"pointing": _done({"n_es": 272})})
    assert "summary lacks" in lacking["answer"]


def test_readme_block_is_generated_and_the_rest_kept(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# top\n\nintro\n\n{phases.BEGIN}\nold text\n{phases.END}\n\n## after\nkept\n")
    doc = {"budget": {"events": 12000, "epochs": 6, "sample_passes": 50400, "test_events": 1800, "machine": "2 CPU cores"},
           "json": "runs/x.json",
           "entries": {"v18_residual": _done(_run(60.0, (59.0, 61.0), references=REFS))}}
    assert phases.update_readme(readme, phases.readme_block(doc))
    text = readme.read_text()
    assert text.startswith("# top\n\nintro\n\n") and text.endswith("\n\n## after\nkept\n") and "old text" not in text
    assert "**2a**" in text and "worse than v15" in text and text.count(phases.BEGIN) == 1
    assert "θ68 60.0° [59.0, 61.0], median 42.0°" in text and "the same 1,800 test events for every row" in text
    plain = tmp_path / "plain.md"
    plain.write_text("no markers\n")
    assert not phases.update_readme(plain, phases.readme_block(doc)) and plain.read_text() == "no markers\n"


def test_done_entries_are_not_rerun_and_another_budget_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    ran: list[str] = []

    clock = iter(range(10, 100))

    def fake_run(entry: Any, params: Any, runs_dir: Path) -> dict[str, Any]:
        ran.append(entry.name)
        return {"status": "done", "params": json.loads(json.dumps(params)), "seconds": 1.0,
                "finished": f"2026-12-07T10:00:{next(clock):02d}",
                "summary": _run(60.0, (59.0, 61.0), references=REFS)}

    monkeypatch.setattr(phases, "run_entry", fake_run)
    args = ["--runs-dir", str(tmp_path / "runs"), "--markdown", str(tmp_path / "phases.md"), "--readme", ""]
    assert phases.main([*args, "--only", "v18_residual", "v20_multiscale"]) == 0
    assert ran == ["v18_residual", "v20_multiscale"]
    assert phases.main([*args, "--only", "v18_residual"]) == 0
    assert ran == ["v18_residual", "v20_multiscale"]  # done with the same parameters: kept
    assert phases.main([*args, "--only", "v18_residual", "--force"]) == 0
    assert ran[-1] == "v18_residual" and len(ran) == 3
    md = (tmp_path / "phases.md").read_text()
    assert "| 2a |" in md and "worse than v15" in md and "not measured" in md
    # a rerun of the v15 reference makes every row that reads it stale: rerun, the others kept
    assert phases.main([*args, "--only", "v15_baseline", "v18_residual"]) == 0
    assert ran[3:] == ["v15_baseline", "v18_residual"]
    doc = json.loads((tmp_path / "runs" / "phases.json").read_text())
    assert doc["entries"]["v20_multiscale"]["finished"] < doc["entries"]["v15_baseline"]["finished"]
    assert not phases._is_done(ENTRY["v20_multiscale"], doc["entries"], doc["entries"]["v20_multiscale"]["params"])
    assert phases.main([*args, "--render"]) == 0 and len(ran) == 5  # render runs nothing
    # a summary the row cannot read (a notebook and its reader drifted apart) fails the run
    assert phases.main([*args, "--only", "00_dataset"]) == 1
    assert "rows of 00_dataset cannot be read" in capsys.readouterr().err
    assert phases.main([*args, "--epochs", "3"]) == 2  # the JSON holds another budget
    assert "another budget" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        phases.main([*args, "--only", "v99_nothing"])


@pytest.mark.slow
def test_phases_smoke_runs_a_notebook(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = phases.main(["--smoke", "--only", "v15_baseline", "--runs-dir", str(tmp_path / "runs"),
                      "--markdown", str(tmp_path / "phases.md"), "--readme", ""])
    assert rc == 0
    doc = json.loads((tmp_path / "runs" / "phases.json").read_text())
    rec = doc["entries"]["v15_baseline"]
    assert rec["status"] == "done" and rec["params"]["smoke"] is True and 0 < rec["summary"]["test_theta68"] <= 180
    assert Path(rec["html"]).exists()
    assert "| 1 (reference) |" in (tmp_path / "phases.md").read_text()
