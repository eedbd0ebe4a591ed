"""Real DUNE events beside simulated ones: the network and the classical fit on both, at matched energy.

The simulation is where a network learns; real trigger-primitive dumps are where it must
work. :func:`real_event_comparison` applies a run's model and the classical fit to real
events (a ``triggerAnaDumpTPs`` ROOT file, ingested once into ``data/``, or an event file)
and sets them beside the run's own simulated test events of the same interaction type,
matched to the real events in true energy (each real event's ``k`` nearest). It is what the
main job's report and the training notebooks show when the real file is present.

Example:
    >>> cmp = real_event_comparison("runs/v21_uncertainty", test, classical)
    >>> print(cmp["markdown"])
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from edkeras.core.errors import InputError
from edkeras.events.compare import matched_indices
from edkeras.events.default import data_dir
from edkeras.events.eventfile import open_events
from edkeras.events.tp_ingest import ingest_tpstream
from edkeras.reco.classical import classical_directions
from edkeras.reco.evaluate import evaluate
from edkeras.reco.metrics import resolution_summary
from edkeras.reco.predictions import load_predictions

__all__ = ["default_real_file", "real_event_comparison", "real_event_file"]


def default_real_file() -> Path | None:
    """``shared/data/test_es_tpstream.root`` beside the checkout, when it is there."""
    path = Path(__file__).resolve().parents[3] / "shared" / "data" / "test_es_tpstream.root"
    return path if path.is_file() else None


def real_event_file(real: str | os.PathLike | None = "auto") -> Path | None:
    """An event file of real events: ``"auto"`` (the shared ES file, if present), a ROOT dump
    (ingested once into the data folder) or an event file; None when ``"auto"`` finds nothing.

    Raises:
        InputError: a named file that does not exist.
    """
    if real is None or real == "":
        return None
    if real == "auto":
        root = default_real_file()
        if root is None:
            return None
    else:
        root = Path(real)
        if not root.is_file():
            raise InputError(f"{root}: no such file (real events: a TP dump .root or an event file .h5)")
        if root.suffix != ".root":
            return root

    folder = data_dir()
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"real_{root.stem}.h5"
    if not out.exists() or out.stat().st_mtime < root.stat().st_mtime:
        ingest_tpstream([root], out, overwrite=True, progress=False)
    return out


def _summary(errors: np.ndarray, n_boot: int, seed: int) -> dict[str, Any]:

    if errors.size == 0:
        return {"n": 0, "median": None, "median_ci": None, "theta68": None, "theta68_ci": None}
    s = resolution_summary(errors, n_boot=n_boot, seed=seed)
    return {k: s[k] for k in ("n", "median", "median_ci", "theta68", "theta68_ci")}


def real_event_comparison(run_dir: str | os.PathLike, test: Any, classical: Any, real: str | os.PathLike | None = "auto",
                          *, k: int = 20, n_boot: int = 1000, seed: int = 0) -> dict[str, Any] | None:
    """Network and classical fit on real events and on energy-matched simulated test events.

    Args:
        run_dir: the run (or ``pretrained:NAME``) whose model is applied to the real events.
        test: the run's test :class:`~edkeras.reco.predictions.Predictions` (simulated).
        classical: the classical fit's Predictions of the same test events.
        real: see :func:`real_event_file`.
        k: simulated events matched to each real event in true energy.

    Returns:
        None when there are no real events; else ``{"file", "rows", "markdown",
        "real_over_sim_median"}`` — rows for network/classical × real/simulated, each with n,
        median and θ68 and their 68 % bootstrap intervals.
    """

    path = real_event_file(real)
    if path is None:
        return None
    with open_events(path) as f:
        batch = f.read()
    known = np.isfinite(np.asarray(batch.direction, dtype=np.float64)).all(axis=1) & np.isfinite(batch.energy)
    if not known.any():
        raise InputError(f"{path}: no event with a true direction and energy; the comparison needs the truth")

    tmp = Path(path).with_name(f".{Path(path).stem}_pred_{os.getpid()}.npz")
    try:
        evaluate(run_dir, path, out=tmp)
        real_pred = load_predictions(tmp)
    finally:
        tmp.unlink(missing_ok=True)
    d_cl = classical_directions(batch)
    truth = np.asarray(batch.direction, dtype=np.float64)
    real_cl = np.degrees(np.arccos(np.clip((d_cl * truth).sum(axis=1), -1.0, 1.0)))[known]
    real_net = np.asarray(real_pred.angular_errors, dtype=np.float64)[known]
    kinds = set(np.asarray(batch.interaction)[known].tolist()) - {-1}
    sim_ok = np.isfinite(np.asarray(test.true_energies, dtype=np.float64))
    if kinds and test.interaction is not None:
        sim_ok &= np.isin(np.asarray(test.interaction), sorted(kinds))
    sim_idx = np.flatnonzero(sim_ok)
    if sim_idx.size == 0:
        raise InputError("real_event_comparison: no simulated test event of the real events' interaction type")
    pick = sim_idx[matched_indices(np.asarray(batch.energy, dtype=np.float64)[known],
                                   np.asarray(test.true_energies, dtype=np.float64)[sim_idx], k=k)]
    sim_net = np.asarray(test.angular_errors, dtype=np.float64)[pick]
    sim_cl = np.asarray(classical.angular_errors, dtype=np.float64)[pick]
    what = "ES" if kinds == {1} else "CC" if kinds == {0} else "ES+CC"
    rows = [
        {"name": "network", "events": f"real ({Path(path).name})", **_summary(real_net, n_boot, seed)},
        {"name": "classical", "events": f"real ({Path(path).name})", **_summary(real_cl, n_boot, seed)},
        {"name": "network", "events": f"simulated test {what}, energy-matched", **_summary(sim_net, n_boot, seed)},
        {"name": "classical", "events": f"simulated test {what}, energy-matched", **_summary(sim_cl, n_boot, seed)},
    ]
    ratio = rows[0]["median"] / rows[2]["median"] if rows[2]["median"] else None

    def fmt(v: Any, ci: Any) -> str:
        return "—" if v is None else f"{v:.1f} [{ci[0]:.1f}, {ci[1]:.1f}]"

    lines = ["| reconstruction | events | n | median (°) | θ68 (°) |", "|---|---|---|---|---|"]
    lines += [f"| {r['name']} | {r['events']} | {r['n']} | {fmt(r['median'], r['median_ci'])} | "
              f"{fmt(r['theta68'], r['theta68_ci'])} |" for r in rows]
    text = "\n".join(lines) + (
        f"\n\nReal {what} events from `{Path(path).name}` (DUNE's full simulation, trigger-primitive dump) beside the "
        f"simulated test events of the same type matched in true energy ({k} per real event). The network's real/simulated "
        f"median ratio is {ratio:.2f} (1 = it transfers; the target is ≤ 1.15). With {int(known.sum())} real events "
        "the intervals are wide: a check, not a measurement." if ratio is not None else "")
    return {"file": str(path), "rows": rows, "markdown": text, "real_over_sim_median": ratio}
