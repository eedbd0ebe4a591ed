"""Fault injection at volume: kills at random moments and broken inputs of every kind; prints JSON counts.

Two parts (the short, fixed cases are ``tests/test_faults.py``):

* **kills** — ``simulate``, ``train``, ``tune``, ``run`` (a smoke notebook), ``likelihood`` and
  ``ingest-tpstream`` (when the real DUNE file is there) are started as subprocesses and sent SIGKILL or SIGTERM after a random
  delay within their normal run time, then run again. Counted: tracebacks (in the killed
  run's stderr after SIGTERM, and in the rerun's), half-written outputs (a file under its
  final name that does not read whole), lost completed epochs (a rerun that resumes from an
  epoch before the newest complete backup), and reruns that fail.
* **inputs** — copies of one good file of each kind (event file, predictions, tables, model,
  config, ROOT) cut short at a random length, with random bytes changed, emptied, or
  swapped for a file of another kind, each given to the commands that read that kind.
  Counted: tracebacks, exit codes other than 1, messages that do not name the file, and
  outputs left behind. Backups: a training interrupted after two epochs gets its newest
  backup slot cut short, corrupted, emptied or deleted; the rerun must finish.

Usage:
    python benchmarks/faults.py [--kills 50] [--inputs 100] [--seed 0] [--work DIR] [--jobs run,train]

Prints one JSON object: per part the number of cases and of each failure, with the first
few failing cases spelt out.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
REAL = ROOT.parent / "shared" / "data" / "test_es_tpstream.root"
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "MPLBACKEND": "Agg"}


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "edkeras.cli", *args]


def _reads_whole(path: Path, kind: str) -> bool:
    from edkeras.core.errors import InputError

    try:
        if kind == "events":
            from edkeras.events.eventfile import open_events

            with open_events(path) as ev:
                ev.read(slice(None))
        elif kind == "predictions":
            from edkeras.reco.predictions import load_predictions

            load_predictions(path)
        elif kind == "tables":
            from edkeras.pointing.tables import load_table

            load_table(path)
        return True
    except (InputError, OSError):
        return False


def _prepare(work: Path) -> dict[str, Path]:
    """One good file of each kind, and the commands the kills run."""
    work.mkdir(parents=True, exist_ok=True)
    files = {"events": work / "events.h5", "config": work / "tiny.json"}
    if not files["events"].exists():
        subprocess.run(_cli("simulate", "--events", "400", "--seed", "3", "--out", str(files["events"])),
                       check=True, env=ENV, capture_output=True)
    from edkeras.core.schema import save_json

    save_json({"name": "tiny", "data": {"files": [str(files["events"])]},
               "model": {"options": {"filters": 4, "depth": 1, "dense_units": 8}},
               "training": {"epochs": 4, "batch_size": 32, "bootstrap_samples": 20,
                            "early_stopping_patience": None}}, files["config"])
    files["tune_config"] = work / "tune.json"
    save_json({"name": "tuned", "data": {"files": [str(files["events"])]},
               "model": {"options": {"filters": 4, "depth": 1, "dense_units": 8}},
               "training": {"epochs": 2, "batch_size": 32, "bootstrap_samples": 20},
               "tuning": {"algorithm": "random", "n_trials": 2, "epochs_per_trial": 1,
                          "search_space": {"training.learning_rate": {"values": [0.001, 0.003]}}}},
              files["tune_config"])
    run = work / "runs" / "tiny"
    if not (run / "metrics.json").exists():
        subprocess.run(_cli("train", str(files["config"]), "--runs", str(work / "runs"), "--quiet"),
                       check=True, env=ENV, capture_output=True)
    files["model"] = run / "model.keras"
    files["predictions"] = run / "predictions_val.npz"
    files["tables"] = work / "tables.npz"
    if not files["tables"].exists():
        subprocess.run(_cli("likelihood", str(files["predictions"]), "--out", str(files["tables"]),
                            "--min-events", "5"), check=True, env=ENV, capture_output=True)
    files["run"] = run
    return files


def kills(files: dict[str, Path], work: Path, n: int, rng: np.random.Generator,
          only: list[str] | None = None) -> dict[str, Any]:
    jobs: list[tuple[str, Any]] = [
        ("simulate", lambda out: (_cli("simulate", "--events", "3000", "--out", str(out), "--force"), out, "events")),
        ("likelihood", lambda out: (_cli("likelihood", str(files["predictions"]), "--out", str(out), "--force",
                                         "--min-events", "5"), out, "tables")),
        ("train", None),
        ("tune", None),
        ("run", None),
    ]
    if REAL.exists():
        jobs.append(("ingest-tpstream", lambda out: (_cli("ingest-tpstream", str(REAL), "--out", str(out), "--force"),
                                                     out, "events")))
    if only:
        unknown = sorted(set(only) - {name for name, _ in jobs})
        if unknown:
            raise SystemExit(f"faults.py: --jobs: unknown job {unknown[0]!r}; jobs: {', '.join(n for n, _ in jobs)}")
        jobs = [j for j in jobs if j[0] in only]
    counts = {"cases": 0, "tracebacks": 0, "half_written": 0, "lost_epochs": 0, "rerun_failed": 0}
    bad: list[str] = []
    durations: dict[str, float] = {}
    for i in range(n):
        name, make = jobs[i % len(jobs)]
        case = work / f"kill_{i}"
        shutil.rmtree(case, ignore_errors=True)
        case.mkdir(parents=True)
        if name == "train":
            cmd, out, kind = _cli("train", str(files["config"]), "--runs", str(case), "--quiet"), case / "tiny", "run"
        elif name == "tune":
            cmd, out, kind = _cli("tune", str(files["tune_config"]), "--runs", str(case), "--quiet"), case / "tuned", "run"
        elif name == "run":
            cmd = _cli("run", "00_dataset", "-p", "smoke", "True", "--runs-dir", str(case / "runs"),
                       "--report-dir", str(case / "reports"))
            out, kind = case / "reports" / "00_dataset.html", "html"
        else:
            cmd, out, kind = make(case / ("out.npz" if name == "likelihood" else "out.h5"))
        if name not in durations:  # how long the job takes when left alone
            t0 = time.time()
            subprocess.run(cmd, env=ENV, capture_output=True)
            durations[name] = time.time() - t0
            shutil.rmtree(case, ignore_errors=True)
            case.mkdir(parents=True)
        sig = signal.SIGKILL if rng.random() < 0.5 else signal.SIGTERM
        proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(float(rng.uniform(0.3, max(durations[name], 0.6))))
        done_before = 0
        if name == "train":
            backups = list((out / "backup").glob("epoch-*")) if (out / "backup").is_dir() else []
            done_before = max((int(p.name.split("-")[1]) for p in backups), default=0)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=300)
        counts["cases"] += 1
        label = f"{name} #{i} {sig.name}"
        finished = proc.returncode == 0 or (kind == "run" and (out / "metrics.json").exists())
        if finished:  # it had finished (its last file written) before the signal came: nothing to recover
            counts["finished_before_kill"] = counts.get("finished_before_kill", 0) + 1
            shutil.rmtree(case, ignore_errors=True)
            continue
        if "Traceback" in err:
            counts["tracebacks"] += 1
            tail = [x for x in err.strip().splitlines() if x.strip()][-3:]
            bad.append(f"{label}: traceback when killed: {' | '.join(tail)}"[:500])
        if kind not in ("run", "html") and out.exists() and not _reads_whole(out, kind):
            counts["half_written"] += 1
            bad.append(f"{label}: {out.name} under its final name does not read whole")
        if kind == "html" and out.exists() and not out.read_text(errors="replace").rstrip().endswith("</html>"):
            counts["half_written"] += 1
            bad.append(f"{label}: {out.name} under its final name is cut short")
        again = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=600)
        if "Traceback" in again.stderr:
            counts["tracebacks"] += 1
            tail = [x for x in again.stderr.strip().splitlines() if x.strip()][-3:]
            bad.append(f"{label}: traceback in the rerun: {' | '.join(tail)}"[:500])
        if again.returncode != 0:
            counts["rerun_failed"] += 1
            bad.append(f"{label}: rerun exit {again.returncode}: {again.stderr.strip().splitlines()[-1:]}")
        if name == "train" and "resuming run" in again.stderr:
            resumed_from = int(again.stderr.split("from epoch ")[1].split()[0])
            if resumed_from < done_before:
                counts["lost_epochs"] += done_before - resumed_from
                bad.append(f"{label}: resumed from epoch {resumed_from}, {done_before} were complete")
        elif name == "train" and done_before and again.returncode == 0 and (out / "metrics.json").exists():
            pass  # finished in the killed run already
        shutil.rmtree(case, ignore_errors=True)
    return {**counts, "seconds_unkilled": {k: round(v, 1) for k, v in durations.items()}, "failures": bad[:10]}


def _damaged(data: bytes, how: str, rng: np.random.Generator) -> bytes | None:
    """``data`` cut short, with random bytes changed, or emptied; None for any other ``how``."""
    if how == "truncate":
        return data[: int(rng.integers(1, max(len(data) - 1, 2)))]
    if how == "garbage":
        b = bytearray(data)
        for pos in rng.integers(0, len(b), int(rng.integers(1, 200))):
            b[pos] = int(rng.integers(0, 256))
        return bytes(b)
    if how == "empty":
        return b""
    return None


def _backup_case(files: dict[str, Path], case: Path, how: str, rng: np.random.Generator) -> str | None:
    """Interrupt a training after its second epoch, damage its newest backup slot (``how``), rerun.

    The rerun must finish (exit 0) without a traceback, resuming from a complete epoch.
    Returns a problem, or None.
    """
    code = (
        "import keras\n"
        "from edkeras.reco.config import load_run_config\n"
        "from edkeras.reco.training import train\n"
        "class Stop(keras.callbacks.Callback):\n"
        "    def on_epoch_end(self, epoch, logs=None):\n"
        "        if epoch == 1: raise SystemExit(3)\n"
        f"train(load_run_config({str(files['config'])!r}), {str(case / 'tiny')!r}, verbose=0, callbacks=[Stop()])\n"
    )
    subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, timeout=300)
    slots = sorted((case / "tiny" / "backup").glob("epoch-*"))
    if not slots:
        return "no backup slot was written"
    target = slots[-1] / ("state.weights.h5" if rng.random() < 0.7 else "epoch.json")
    damaged = _damaged(target.read_bytes(), how, rng)
    if damaged is None:
        shutil.rmtree(slots[-1])  # the slot lost entirely
    else:
        target.write_bytes(damaged)
    again = subprocess.run(_cli("train", str(files["config"]), "--runs", str(case), "--quiet"),
                           env=ENV, capture_output=True, text=True, timeout=600)
    if "Traceback" in again.stderr:
        return "Traceback: " + " | ".join(again.stderr.strip().splitlines()[-2:])
    if again.returncode != 0:
        return f"rerun exit {again.returncode}: {again.stderr.strip().splitlines()[-1:]}"
    return None


def inputs(files: dict[str, Path], work: Path, n: int, rng: np.random.Generator) -> dict[str, Any]:
    from edkeras.cli import main

    readers: dict[str, Any] = {
        "events": lambda p: ["doctor", str(p)],
        "events_evaluate": lambda p: ["evaluate", str(files["run"]), "--data", str(p)],
        "predictions": lambda p: ["likelihood", str(p), "--out", str(work / "in_out.npz")],
        "tables": lambda p: ["point", str(files["predictions"]), "--tables", str(p)],
        "config": lambda p: ["train", str(p), "--runs", str(work / "in_runs")],
        "model": None,
    }
    sources = {"events": files["events"], "events_evaluate": files["events"], "predictions": files["predictions"],
               "tables": files["tables"], "config": files["config"], "model": files["model"]}
    if REAL.exists():
        readers["root"] = lambda p: ["ingest-tpstream", str(p), "--out", str(work / "in_out.h5")]
        sources["root"] = REAL
    readers["backup"] = None
    sources["backup"] = files["config"]  # (unused: the backup case damages a run's own slots)
    kinds = list(readers)
    counts = {"cases": 0, "tracebacks": 0, "wrong_exit": 0, "file_not_named": 0, "output_left": 0}
    bad: list[str] = []
    import contextlib
    import io

    for i in range(n):
        kind = kinds[i % len(kinds)]
        how = ["truncate", "garbage", "empty", "wrong_kind"][(i // len(kinds)) % 4]
        case = work / f"input_{i}"
        shutil.rmtree(case, ignore_errors=True)
        case.mkdir(parents=True)
        src = sources[kind]
        target = case / f"bad{src.suffix}"
        damaged = _damaged(src.read_bytes(), how, rng)
        if damaged is None:  # wrong kind: a good file of another kind
            other = sources[kinds[(kinds.index(kind) + 1 + int(rng.integers(0, len(kinds) - 1))) % len(kinds)]]
            damaged = other.read_bytes()
        target.write_bytes(damaged)
        if kind == "backup":
            label = f"backup {how} #{i}"
            counts["cases"] += 1
            problem = _backup_case(files, case, how, rng)
            if problem:
                counts["tracebacks" if "Traceback" in problem else "wrong_exit"] += 1
                bad.append(f"{label}: {problem}"[:500])
            shutil.rmtree(case, ignore_errors=True)
            continue
        if kind == "model":
            run = case / "run"
            shutil.copytree(files["run"], run)
            shutil.copy(target, run / "model.keras")
            argv, named = ["evaluate", str(run), "--data", str(files["events"])], "model.keras"
        else:
            argv, named = readers[kind](target), target.name
        for leftover in (work / "in_out.npz", work / "in_out.h5"):
            leftover.unlink(missing_ok=True)
        err, out = io.StringIO(), io.StringIO()
        counts["cases"] += 1
        label = f"{kind} {how} #{i}"
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
                rc = main(argv)
        except BaseException as e:
            counts["tracebacks"] += 1
            bad.append(f"{label}: {type(e).__name__}: {e}"[:300])
            continue
        text = err.getvalue() + out.getvalue()
        if rc == 0:
            # garbage that missed everything the reader needs is allowed to succeed, whole
            continue
        if rc != 1:
            counts["wrong_exit"] += 1
            bad.append(f"{label}: exit {rc}")
        if named not in text:
            counts["file_not_named"] += 1
            bad.append(f"{label}: message does not name {named}: {text.strip()[-200:]}")
        for leftover in (work / "in_out.npz", work / "in_out.h5"):
            if leftover.exists():
                counts["output_left"] += 1
                bad.append(f"{label}: {leftover.name} written by a failed command")
        shutil.rmtree(case, ignore_errors=True)
    return {**counts, "failures": bad[:10]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kills", type=int, default=50)
    p.add_argument("--inputs", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work", default="runs/faults")
    p.add_argument("--jobs", default="", help="kill only these jobs, comma-separated (e.g. run,train); default all")
    args = p.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    work = Path(args.work).resolve()
    t0 = time.time()
    files = _prepare(work)
    out = {"inputs": inputs(files, work, args.inputs, rng), "kills": kills(files, work, args.kills, rng,
                                                                        [j for j in args.jobs.split(",") if j])}
    out["seconds"] = round(time.time() - t0, 1)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
