"""Run folders: everything one training run leaves behind, and the leaderboard over them.

Method notes: ``docs/methods.md``, section ``edkeras.reco.runs``.

Example:
    >>> from edkeras.reco.runs import leaderboard
    >>> for row in leaderboard("runs"):
    ...     print(row["name"], row["test_theta68"], row["test_theta68_ci"])
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import edkeras
from edkeras.core.errors import InputError
from edkeras.core.files import jsonable

__all__ = [
    "LOCK_FILE",
    "RUN_FILES",
    "RunInUse",
    "RunInfo",
    "check_run_name",
    "environment",
    "is_finished",
    "leaderboard",
    "list_runs",
    "model_identity",
    "prepare_run",
    "read_json",
    "run_lock",
    "run_problem",
    "runs_dir",
]

RUN_FILES: tuple[str, ...] = (
    "config.json",
    "env.json",
    "history.csv",
    "metrics.json",
    "predictions_val.npz",
    "predictions_test.npz",
    "model.keras",
)
"""Files every finished run folder holds (docs/formats.md §4)."""

_OWNED = (*RUN_FILES, "split.npz", "training.png", "backup")
"""What a run writes; ``force`` removes exactly these and nothing else."""

_COMPANIONS = ("summary.json", "classical_predictions_test.npz", "tuner", "trials.csv", "trials.json",
               "tuning.json", "best_config.json")
"""What may share a run folder without being the run's: a notebook's executed copy
(``*.ipynb``) and summary, a search's tuner folder and trial tables. They are neither
required nor removed by ``force``."""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


def model_identity(model_file: str | os.PathLike) -> str:
    """``sha256:`` and the first 16 hex digits of the SHA-256 of a ``model.keras`` file.

    Predictions carry it and likelihood tables copy it, so a burst is never pointed with the
    tables of another model (``docs/formats.md`` §2, §3).
    """
    digest = hashlib.sha256()
    with open(model_file, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return "sha256:" + digest.hexdigest()[:16]


def runs_dir() -> Path:
    """Where run folders go: ``$EDKERAS_RUNS_DIR`` or ``<repository>/runs``."""
    env = os.environ.get("EDKERAS_RUNS_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "runs"


def check_run_name(name: str) -> str:
    """Return ``name`` if it is a plain folder name (letters, digits, ``._+-``), else raise InputError."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise InputError(
            f"run name must be a plain folder name (letters, digits, '.', '_', '+', '-'); received {name!r}"
        )
    return name


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file; a missing or broken file raises InputError naming it."""
    p = Path(path)
    try:
        return json.loads(p.read_text())
    except FileNotFoundError:
        raise InputError(f"{p}: no such file") from None
    except json.JSONDecodeError as e:
        raise InputError(f"{p}: not valid JSON ({e.msg} at line {e.lineno})") from None
    except (UnicodeDecodeError, IsADirectoryError):
        raise InputError(f"{p}: not a JSON text file") from None


def is_finished(run_dir: str | os.PathLike) -> bool:
    """Whether ``run_dir`` holds a finished run (its ``metrics.json`` exists)."""
    return (Path(run_dir) / "metrics.json").exists()


def _remove_owned(run_dir: Path) -> None:
    for name in _OWNED:
        p = run_dir / name
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()


def _is_companion(p: Path) -> bool:
    return p.name.startswith(".") or p.suffix == ".ipynb" or p.name in _COMPANIONS


class RunInUse(InputError):
    """Another process holds the run folder's lock."""


LOCK_FILE = ".lock"
"""The advisory lock of a run folder (a companion file: never part of the run)."""


@contextlib.contextmanager
def run_lock(run_dir: str | os.PathLike) -> Iterator[Path]:
    """Hold the run folder's advisory lock (``flock``) while a process writes the run.

    A second process (or a second ``train`` in the same process) on the same folder gets
    :class:`RunInUse` naming the holder's host, pid and start time, instead of both mixing
    their output in one folder. The lock dies with its process, so a killed run never
    leaves the folder locked.
    """
    d = Path(run_dir)
    d.mkdir(parents=True, exist_ok=True)
    path = d / LOCK_FILE
    with open(path, "a+") as fh:  # closing it releases the lock
        try:
            import fcntl
        except ImportError:  # not POSIX: no advisory locks; run unguarded
            fcntl = None  # type: ignore[assignment]
        if fcntl is not None:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.seek(0)
                holder = fh.read().strip() or "another process"
                raise RunInUse(
                    f"{d}: in use by {holder}; wait for it to end, or train under another --name"
                ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} on {socket.gethostname()} since "
                 f"{datetime.now().isoformat(timespec='seconds')}\n")
        fh.flush()
        yield path


def prepare_run(
    run_dir: str | os.PathLike, config: dict, force: bool = False, resume: bool = True, dry_run: bool = False
) -> str:
    """Make ``run_dir`` ready for a run of ``config``; say whether it starts anew or resumes.

    Args:
        run_dir: the run folder (created if missing).
        config: the complete config as a dict (what ``config.json`` holds).
        force: replace a finished run, or an unfinished one of another config.
        resume: continue an unfinished run of the same config from its backup.
        dry_run: only decide (and raise what would be raised); touch nothing.

    Returns:
        ``"new"`` or ``"resume"``.

    Raises:
        FileExistsError: a finished run without ``force``; an unfinished run of a different
            config (or with ``resume=False``) without ``force``.
        InputError: ``run_dir`` holds files but is not a run folder (nothing is removed).
    """
    d = Path(run_dir)
    if d.exists() and not d.is_dir():
        raise InputError(f"{d}: exists and is not a folder")
    if d.exists() and any(not _is_companion(p) for p in d.iterdir()):
        cfg_file = d / "config.json"
        if not cfg_file.exists():
            raise InputError(f"{d}: holds files but no config.json; not a run folder, refusing to write into it")
        if is_finished(d):
            if not force:
                raise FileExistsError(f"{d}: holds a finished run; pass --force to overwrite it")
        else:
            same = read_json(cfg_file) == json.loads(json.dumps(jsonable(config)))
            if resume and same:
                return "resume"
            if not force:
                why = "a different config" if not same else "resume=False"
                raise FileExistsError(
                    f"{d}: holds an unfinished run ({why}); pass --force to start it again"
                )
        if not dry_run:
            _remove_owned(d)
    if not dry_run:
        d.mkdir(parents=True, exist_ok=True)
    return "new"


def _git_commit() -> dict[str, Any] | None:
    repo = Path(__file__).resolve().parents[2]
    if not (repo / ".git").exists():
        return None
    try:
        head = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": head, "dirty": bool(dirty)}


def _version(module: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(module)
    except Exception:  # not installed
        return None


def environment(seed: int | None = None, **extra: Any) -> dict[str, Any]:
    """What ``env.json`` records: versions, backend, devices, host, seed, git commit, time.

    TensorFlow is asked for its devices only if it is already imported (this function
    never imports it).
    """

    env: dict[str, Any] = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "command": sys.argv,
        "seed": seed,
        "edkeras": getattr(edkeras, "__version__", None),
        "versions": {m: _version(m) for m in ("numpy", "keras", "tensorflow", "jax", "torch", "h5py", "scipy")},
        "keras_backend": os.environ.get("KERAS_BACKEND"),
        "git": _git_commit(),
    }
    if "keras" in sys.modules:
        import keras

        env["keras_backend"] = keras.backend.backend()
    if "tensorflow" in sys.modules:
        tf = sys.modules["tensorflow"]
        try:
            env["devices"] = [f"{d.device_type}:{d.name}" for d in tf.config.list_logical_devices()]
        except Exception:  # a TensorFlow without devices API: record nothing
            env["devices"] = None
    env.update(extra)
    return env


@dataclass(frozen=True)
class RunInfo:
    """One run folder as the leaderboard sees it."""

    name: str
    path: Path
    finished: bool
    config: dict | None
    metrics: dict | None

    def test_summary(self) -> dict | None:
        """The overall test-split summary (θ68 etc.), or None."""
        try:
            return self.metrics["test"]["overall"]  # type: ignore[index]
        except (TypeError, KeyError):
            return None

    def val_summary(self) -> dict | None:
        """The overall validation-split summary, or None."""
        try:
            return self.metrics["val"]["overall"]  # type: ignore[index]
        except (TypeError, KeyError):
            return None


def list_runs(root: str | os.PathLike | None = None) -> list[RunInfo]:
    """Every run folder under ``root`` (default :func:`runs_dir`), sorted by name."""
    r = Path(root) if root is not None else runs_dir()
    if not r.exists():
        return []
    out = []
    for d in sorted(p for p in r.iterdir() if p.is_dir() and (p / "config.json").exists()):
        try:
            cfg = read_json(d / "config.json")
        except InputError:
            cfg = None
        metrics = None
        if is_finished(d):
            try:
                metrics = read_json(d / "metrics.json")
            except InputError:
                metrics = None
        out.append(RunInfo(d.name, d, metrics is not None, cfg, metrics))
    return out


def run_problem(run: RunInfo) -> str | None:
    """Why a run folder that looks finished cannot be ranked (None: it can)."""
    import zipfile

    if not is_finished(run.path):
        return None
    if run.metrics is None:
        return "metrics.json cannot be read"
    model = run.path / "model.keras"
    if not model.exists():
        return "model.keras is missing"
    if not zipfile.is_zipfile(model):
        return "model.keras is cut short or not a Keras archive"
    return None


def leaderboard(root: str | os.PathLike | None = None, skipped: list[tuple[str, str]] | None = None) -> list[dict[str, Any]]:
    """Finished runs ranked by **test** θ68 (smallest first), with confidence intervals.

    Args:
        root: the folder of run folders.
        skipped: if given, receives ``(name, why)`` of every finished-looking run that cannot
            be ranked (a damaged ``metrics.json``, a missing or cut-short model) — never
            dropped silently.

    Returns:
        One dict per run: ``rank, name, model, head, loss, n_test, test_theta68,
        test_theta68_ci, test_median, test_median_ci, test_flip_fraction, val_theta68,
        best_epoch, path``.
    """
    rows = []
    for run in list_runs(root):
        problem = run_problem(run)
        if problem is not None:
            if skipped is not None:
                skipped.append((run.name, problem))
            continue
        test = run.test_summary()
        if not run.finished or not test or test.get("theta68") is None:
            continue
        cfg = run.config or {}
        val = run.val_summary() or {}
        rows.append(
            {
                "name": run.name,
                "model": cfg.get("model", {}).get("name"),
                "head": cfg.get("model", {}).get("head"),
                "loss": cfg.get("training", {}).get("loss"),
                "n_test": test.get("n"),
                "test_theta68": test.get("theta68"),
                "test_theta68_ci": test.get("theta68_ci"),
                "test_median": test.get("median"),
                "test_median_ci": test.get("median_ci"),
                "test_flip_fraction": test.get("flip_fraction"),
                "val_theta68": val.get("theta68"),
                "best_epoch": (run.metrics or {}).get("best_epoch"),
                "path": str(run.path),
            }
        )
    rows.sort(key=lambda r: (r["test_theta68"], r["name"]))
    for i, r in enumerate(rows, 1):
        r["rank"] = i
    return [{"rank": r.pop("rank"), **r} for r in rows]
