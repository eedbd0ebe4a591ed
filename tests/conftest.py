"""Shared fixtures. Tests are fast by default; anything over a few seconds is marked slow."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

from edkeras.events.eventfile import EventBatch, write_events

SHARED = Path(__file__).resolve().parents[2] / "shared"
REAL_TP_FILE = SHARED / "data" / "test_es_tpstream.root"


def random_batch(n: int = 8, shape: tuple[int, int] = (128, 32), seed: int = 0, first_id: int = 0) -> EventBatch:
    """A batch of random (unphysical) events with full truth, for I/O tests."""
    rng = np.random.default_rng(seed)
    d = rng.normal(size=(n, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    nu = rng.normal(size=(n, 3))
    nu /= np.linalg.norm(nu, axis=1, keepdims=True)
    imgs = {p: (rng.random((n, *shape)) * (rng.random((n, *shape)) > 0.95) * 500).astype(np.float32) for p in "UVX"}
    return EventBatch(
        **imgs,
        event_id=np.arange(first_id, first_id + n),
        direction=d,
        energy=rng.uniform(5, 70, n),
        interaction=rng.integers(0, 2, n),
        nu_direction=nu,
        nu_energy=rng.uniform(5, 70, n),
        vertex=rng.uniform(-100, 100, (n, 3)),
        reco_energy=rng.uniform(5, 70, n),
        window_origin=rng.integers(0, 1000, (n, 3, 2)),
    )


@pytest.fixture
def small_event_file(tmp_path: Path) -> Path:
    """A complete 40-event file of random events (128 × 32)."""
    return write_events(tmp_path / "events.h5", random_batch(40), source={"generator": "tests"})


def load_benchmark(name: str) -> Any:
    """``benchmarks/<name>.py`` as a module (once per session; registered so that its dataclasses work)."""
    key = f"edkeras_benchmarks_{name}"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[key] = mod
        spec.loader.exec_module(mod)
    return sys.modules[key]
