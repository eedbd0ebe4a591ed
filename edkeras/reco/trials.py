"""The trials of a hyperparameter search: the per-process logs merged into one table, the best trial."""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edkeras.core.files import atomic_path, write_json
from edkeras.reco.search_space import (
    ParamSpec,
)

if TYPE_CHECKING:  # imported for annotations only: edkeras.reco.config may import this module
    pass

__all__ = ['best_trial', 'trial_table']


# =========================================================================== trial table
def _read_logs(project_dir: Path) -> dict[str, list[dict[str, Any]]]:
    runs: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(project_dir.glob("log_*.jsonl")):
        for line in path.read_text().splitlines():
            if line.strip():
                e = json.loads(line)
                runs.setdefault(str(e["trial_id"]), []).append(e)
    return runs


def trial_table(project_dir: str | os.PathLike, objective: str | None = None) -> list[dict[str, Any]]:
    """One row per trial of a keras-tuner project folder (read from the folder, any role).

    Args:
        project_dir: ``runs/<name>/tuner/<project>``.
        objective: the objective's name (default: the one found in the trials).

    Returns:
        Rows sorted by trial id: ``trial_id, status, objective, value, best_epoch,
        tuner_id, seconds, hyperparameters`` (dict; keras-tuner's own ``tuner/…`` entries
        of Hyperband left out) and ``message`` (last line of an error).
    """
    pdir = Path(project_dir)
    logs = _read_logs(pdir)
    rows = []
    for path in pdir.glob("trial_*/trial.json"):
        t = json.loads(path.read_text())
        tid = str(t["trial_id"])
        metrics = t.get("metrics", {}).get("metrics", {})
        name = objective or next(iter(metrics), None)
        value = t.get("score")
        if value is None and name in metrics:
            obs = [v for o in metrics[name]["observations"] for v in o["value"] if v is not None]
            value = min(obs) if obs else None
        runs = logs.get(tid, [])
        hps = {k: v for k, v in t.get("hyperparameters", {}).get("values", {}).items() if not k.startswith("tuner/")}
        message = t.get("message")
        rows.append({
            "trial_id": tid,
            "status": t.get("status"),
            "objective": name,
            "value": value if value is None or math.isfinite(value) else None,
            "best_epoch": t.get("best_step"),
            "tuner_id": ",".join(r["tuner_id"] for r in runs) or None,
            "seconds": sum(r["seconds"] for r in runs) if runs else None,
            "hyperparameters": hps,
            "message": message.strip().splitlines()[-1] if message else None,
        })
    rows.sort(key=lambda r: (len(r["trial_id"]), r["trial_id"]))
    return rows


def best_trial(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The completed trial with the smallest objective value (ties: the earliest), or None."""
    done = [r for r in rows if r["status"] == "COMPLETED" and r["value"] is not None]
    if not done:
        return None
    return min(done, key=lambda r: (r["value"], len(r["trial_id"]), r["trial_id"]))


def _write_trials(run_dir: Path, rows: list[dict[str, Any]], space: dict[str, ParamSpec]) -> None:

    write_json(run_dir / "trials.json", rows)
    hp_cols = list(space)
    extra = sorted({k for r in rows for k in r["hyperparameters"]} - set(hp_cols))
    cols = ["trial_id", "status", "objective", "value", "best_epoch", "tuner_id", "seconds", *hp_cols, *extra, "message"]

    with atomic_path(run_dir / "trials.csv") as tmp, open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        for r in rows:
            w.writerow({**{k: v for k, v in r.items() if k != "hyperparameters"}, **r["hyperparameters"]})
