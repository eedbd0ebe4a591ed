"""Smoke test of every phase notebook: executed with papermill (``smoke=True``), checked on what it measured.

Each notebook in ``notebooks/`` runs through :func:`edkeras.reports.notebooks.run_notebook` with tiny
data, a tiny model and one epoch, in a temporary runs/reports/data folder shared by the
notebooks of this module (run in the order of the proposal's phases, so that later
notebooks find the ``baseline_v15`` run of ``v15_baseline``, as in real use). The test
then reads the ``summary.json`` the notebook wrote — θ68 values must be angles in
(0°, 180°], the event count the one asked for — and the HTML report, which must hold
figures and no stack trace.

Slow (tens of seconds per notebook on a CPU): marked ``slow``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import load_benchmark

from edkeras.reports.notebooks import notebook_parameters, run_notebook

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"

ORDER = (
    "00_dataset", "v15_baseline", "v17_hyperopt", "v18_residual", "v19_attention", "v20_multiscale",
    "augmentation", "v21_uncertainty", "focal_loss", "multitask", "energy_analysis",
    "v22_energy_conditioned", "ensembles", "likelihood", "pointing", "leaderboard",
)
"""docs/cli.md's notebooks, in the order of the phases."""

TRAINING_PHASES = (
    "v15_baseline", "v17_hyperopt", "v18_residual", "v19_attention", "v20_multiscale", "augmentation",
    "v21_uncertainty", "focal_loss", "multitask", "v22_energy_conditioned",
)
"""Notebooks that train a run through :mod:`edkeras.studies.phase` (their summary has a fixed form)."""

REQUIRED_PARAMETERS = ("data", "n_events", "epochs", "seed", "run_name", "smoke")
SMOKE_EVENTS = 300


def _notebooks() -> list[str]:
    found = sorted(p.stem for p in NOTEBOOK_DIR.glob("*.ipynb"))
    return [n for n in ORDER if n in found] + [n for n in found if n not in ORDER]


def _theta68_values(obj: Any, path: str = "") -> Iterator[tuple[str, float]]:
    """Every number stored under a key naming a θ68 (not its interval), anywhere in the summary."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            key = f"{path}.{k}" if path else str(k)
            if "theta68" in str(k) and not str(k).endswith("_ci") and isinstance(v, (int, float)) and not isinstance(v, bool):
                yield key, float(v)
            else:
                yield from _theta68_values(v, key)
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _theta68_values(v, f"{path}[{i}]")


def _unrendered_figures(executed: Path) -> list[int]:
    """Cells whose output shows a matplotlib figure only as ``<Figure size …>`` text (no PNG)."""
    import nbformat

    nb = nbformat.read(str(executed), as_version=4)
    bad = []
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if str(data.get("text/plain", "")).startswith("<Figure size") and "image/png" not in data:
                bad.append(i)
    return bad


def _stderr_outputs(executed: Path) -> list[tuple[int, str]]:
    """(cell, first line) of every stderr stream in an executed notebook: what the report would show in red."""
    import nbformat

    nb = nbformat.read(str(executed), as_version=4)
    return [(i, str(out.get("text", "")).strip().splitlines()[0][:100] if str(out.get("text", "")).strip() else "")
            for i, cell in enumerate(nb.cells) for out in cell.get("outputs", [])
            if out.get("output_type") == "stream" and out.get("name") == "stderr"]


def test_stderr_outputs_are_found(tmp_path: Path):
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    bar = new_output("stream", name="stderr", text="simulate: 100%|##########| 6/6\n")
    said = new_output("stream", name="stdout", text="hello\n")
    nb = new_notebook(cells=[new_code_cell("a", outputs=[said]), new_code_cell("b", outputs=[bar])])
    nbformat.write(nb, str(tmp_path / "x.ipynb"))
    assert _stderr_outputs(tmp_path / "x.ipynb") == [(1, "simulate: 100%|##########| 6/6")]


def test_theta68_values_finds_nested_angles():
    found = dict(_theta68_values({"test_theta68": 30.0, "test_theta68_ci": [29, 31], "refs": [{"theta68": 50}], "n": 3}))
    assert found == {"test_theta68": 30.0, "refs[0].theta68": 50.0}


def test_unrendered_figures_are_found(tmp_path: Path):
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    shown = new_output("display_data", data={"image/png": "iVBOR", "text/plain": "<Figure size 600x400 with 1 Axes>"})
    text_only = new_output("display_data", data={"text/plain": "<Figure size 600x400 with 1 Axes>"})
    nb = new_notebook(cells=[new_code_cell("a", outputs=[shown]), new_code_cell("b", outputs=[text_only])])
    nbformat.write(nb, str(tmp_path / "x.ipynb"))
    assert _unrendered_figures(tmp_path / "x.ipynb") == [1]


def test_every_design_notebook_is_listed_in_order():
    assert set(TRAINING_PHASES) <= set(ORDER) and len(set(ORDER)) == len(ORDER)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One folder for data, runs and reports of all notebooks of this module (the kernels inherit the env)."""
    root = tmp_path_factory.mktemp("notebooks")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EDKERAS_DATA_DIR", str(root / "data"))
        mp.setenv("EDKERAS_RUNS_DIR", str(root / "runs"))
        mp.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
        yield root


@pytest.mark.slow
@pytest.mark.parametrize("name", _notebooks())
def test_notebook_smoke(name: str, workspace: Path) -> None:
    defaults = notebook_parameters(NOTEBOOK_DIR / f"{name}.ipynb")
    missing = [p for p in REQUIRED_PARAMETERS if p not in defaults]
    assert not missing, f"{name}: parameters cell lacks {missing}"
    assert defaults["smoke"] is False, f"{name}: smoke must default to False"
    params: dict[str, Any] = {"smoke": True, "n_events": SMOKE_EVENTS}
    result = run_notebook(name, params, report_dir=workspace / "reports", runs_dir=workspace / "runs", progress=False)

    html = result.html.read_text(encoding="utf-8")
    assert result.ok, f"{name} failed: {result.error}"
    assert "Traceback" not in html
    assert "<img" in html, f"{name}: the report holds no figure"
    unrendered = _unrendered_figures(result.executed)
    assert not unrendered, f"{name}: figures shown as text, not images, in cells {unrendered}"
    noise = _stderr_outputs(result.executed)
    assert not noise, f"{name}: the report shows stderr (progress bars, library logs): {noise}"

    summary = result.summary
    assert isinstance(summary, dict) and summary, f"{name}: no summary.json written (save_summary not called)"
    thetas = list(_theta68_values(summary))
    assert thetas or "n_events" in summary, f"{name}: summary records neither a θ68 nor n_events: {sorted(summary)}"
    for key, value in thetas:
        assert math.isfinite(value) and 0.0 < value <= 180.0, f"{name}: {key} = {value} is not an angle in (0, 180]"
    if "n_events" in summary:
        assert summary["n_events"] == SMOKE_EVENTS, f"{name}: n_events {summary['n_events']} != {SMOKE_EVENTS} asked"
    if "smoke" in summary:
        assert summary["smoke"] is True

    if name in TRAINING_PHASES:
        events = summary["events"]
        assert sum(events.values()) == SMOKE_EVENTS and min(events.values()) > 0
        assert summary["test_n"] == events["test"]
        lo, hi = summary["test_theta68_ci"]
        assert lo <= summary["test_theta68"] <= hi
        assert summary["epochs_run"] == 1
        classical = summary["references"]["classical"]
        assert classical["n"] == summary["test_n"]  # the classical baseline on the same test events
        baseline = summary["references"]["baseline_v15"]
        if name != "v15_baseline" and (workspace / "runs" / "v15_baseline" / "metrics.json").exists():
            assert baseline is not None and baseline["run"] == "v15_baseline"
            assert baseline["n"] == summary["test_n"]
        if name == "v21_uncertainty":
            cal = summary["calibration"]
            assert 0.0 <= cal["coverage_68"] <= 1.0 and cal["ratio"] > 0

    # benchmarks/phases.py reads this summary into its row(s): a key it reads must still be written
    phases = load_benchmark("phases")
    records = {name: {"status": "done", "summary": summary}}
    for entry in phases.ENTRIES:
        if entry.notebook == name:
            row = phases.build_row(entry, {entry.source or entry.name: records[name]})
            assert "error" not in row, f"{name}: phases row {entry.name} cannot read the summary: {row['answer']}"

