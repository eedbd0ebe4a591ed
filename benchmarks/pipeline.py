"""Is the streaming dataset the bottleneck? Training speed from disk against memory, and memory use.

Two measurements in one process, on one simulated event file (3 × 128 × 32 images):

1. **Streaming** — one training epoch of :class:`edkeras.reco.dataset.EventDataset` over the
   whole file (no model): events/s, and the resident memory (``VmRSS``) before, during
   (sampled every batch) and at the end, against the file's uncompressed size. Flat memory
   means the peak does not grow with the file; what does grow is the per-event label
   arrays, reported in bytes per event for an honest extrapolation to 200,000 events.
2. **Training** — the ``compact`` model trained on the same training events (the train
   split of the first ``--train-events`` / 0.7 events) fed (a) from in-memory numpy arrays
   (``model.fit(x, y, shuffle=True)``), (b) streamed from the file, and (c) through the same
   dataset with ``cache=True`` (separates the dataset's own cost from reading the file);
   alternating rounds of timed epochs, each after a warm-up epoch. Reported as samples per
   wall-clock second and per CPU second of the whole process (all threads): on a shared
   machine the wall-clock numbers follow the neighbours' load, while samples per CPU second
   measure what the pipeline costs when the cores are the bottleneck, as on a 2-core CPU. The result is the ratio of the median samples/s
   (disk / memory); the requirement is ≥ 0.9.

Usage:
    python benchmarks/pipeline.py [--quick | --full] [--events N] [--train-events M]
        [--batch 64] [--rounds 2] [--epochs-per-round 2] [--readers R]

Default: a 20,000-event file (simulated once into ``data/``, then reused); ``--full`` uses
200,000 events; ``--quick``: 3,000 events, 1,024 training events, short rounds.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

__all__ = ["main"]


def _rss_mb() -> float:
    """Current resident memory of this process, MB (Linux /proc)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def _event_file(n: int, seed: int) -> Path:
    """A simulated event file of ``n`` events under data/ (generated once)."""
    from edkeras.events.default import data_dir
    from edkeras.events.sim import SimConfig, simulate_to_file

    path = data_dir() / f"bench_n{n}_seed{seed}.h5"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        simulate_to_file(path, n, seed=seed, config=SimConfig(), workers=os.cpu_count() or 1, progress=True)
    return path


def _stream(path: Path, batch: int, buffer: int, readers: int | None) -> dict[str, Any]:
    """One training epoch over the whole file without a model: speed and memory."""
    from edkeras.reco.dataset import EventDataset
    from edkeras.reco.event_index import index_events

    rss0 = _rss_mb()
    index = index_events([path])
    ds = EventDataset(index, batch, training=True, seed=0, shuffle_buffer=buffer, readers=readers)
    label_bytes = sum(ds.labels(k).nbytes for k in ("event_id", "direction", "energy", "interaction",
                                                     "nu_direction", "reco_energy"))
    index_bytes = index.file.nbytes + index.row.nbytes + ds.epoch_order(0).nbytes * 2
    rss_setup = _rss_mb()
    samples = []
    t0 = time.perf_counter()
    for i in range(ds.steps_per_epoch):
        ds[i]
        if i % max(ds.steps_per_epoch // 50, 1) == 0:
            samples.append(_rss_mb())
    seconds = time.perf_counter() - t0
    samples.append(_rss_mb())
    t, c = index.image_shape
    n = len(index)
    quarter = len(samples) // 4
    return {
        "events": n,
        "events_per_second": ds.steps_per_epoch * batch / seconds,
        "file_mb": path.stat().st_size / 2**20,
        "uncompressed_images_mb": n * 3 * t * c * 4 / 2**20,
        "rss_before_mb": rss0,
        "rss_after_index_mb": rss_setup,
        "rss_peak_while_streaming_mb": max(samples),
        "rss_growth_mb": max(samples) - rss0,
        "rss_first_quarter_max_mb": max(samples[: max(quarter, 1)]),
        "rss_last_quarter_max_mb": max(samples[-max(quarter, 1) :]),
        "label_and_index_bytes_per_event": (label_bytes + index_bytes) / n,
        "shuffle_buffer": buffer,
        "readers": ds.readers,
    }


def _train_speed(
    path: Path, n_train: int, batch: int, rounds: int, epochs: int, readers: int | None
) -> dict[str, Any]:
    import keras

    from edkeras.events.splits import split_events
    from edkeras.reco.dataset import EpochSync, EventDataset
    from edkeras.reco.event_index import index_events
    from edkeras.reco.keras_metrics import AngularErrorDeg
    from edkeras.reco.losses import get_loss
    from edkeras.reco.models import build_model

    index = index_events([path])
    first = index.select(np.arange(min(len(index), int(n_train / 0.7) + 1)))
    split = split_events(first.file_names, first.field("event_id"), 0.15, 0.15, seed=0)
    train_idx = first.select(split.train[:n_train])
    n = len(train_idx)
    disk = EventDataset(train_idx, batch, training=True, seed=0, readers=readers)
    cached = EventDataset(train_idx, batch, training=True, seed=0, cache=True, readers=readers)
    steps = disk.steps_per_epoch
    memory_ds = EventDataset(train_idx, n, cache=True)
    x, y = memory_ds[0]
    memory_ds.close()

    keras.utils.set_random_seed(0)
    model = build_model("compact", input_shape=index.image_shape)
    model.compile(keras.optimizers.Adam(1e-3), loss={"direction": get_loss("angular")},
                  metrics={"direction": [AngularErrorDeg()]})

    class Timer(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.times: list[float] = []

            self.cpu: list[float] = []

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self._t, self._c = time.perf_counter(), time.process_time()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            self.times.append(time.perf_counter() - self._t)
            self.cpu.append(time.process_time() - self._c)

    speeds: dict[str, list[float]] = {"memory": [], "cached": [], "disk": []}
    per_cpu: dict[str, list[float]] = {"memory": [], "cached": [], "disk": []}
    epoch = 0
    for _ in range(rounds):
        for source in ("memory", "disk", "cached"):
            timer = Timer()
            if source == "memory":
                model.fit(x, y, batch_size=batch, steps_per_epoch=steps, epochs=epochs + 1, shuffle=True,
                          verbose=0, callbacks=[timer])
            else:
                ds = disk if source == "disk" else cached
                model.fit(ds, steps_per_epoch=steps, epochs=epoch + epochs + 1, initial_epoch=epoch,
                          shuffle=False, verbose=0, callbacks=[EpochSync(ds), timer])
                epoch += epochs + 1
            speeds[source] += [steps * batch / s for s in timer.times[1:]]  # the first epoch warms up
            per_cpu[source] += [steps * batch / s for s in timer.cpu[1:]]
    med = {k: float(np.median(v)) for k, v in speeds.items()}
    med_cpu = {k: float(np.median(v)) for k, v in per_cpu.items()}
    return {
        "model": "compact",
        "training_events": n,
        "batch_size": batch,
        "steps_per_epoch": steps,
        "memory_samples_per_second": speeds["memory"],
        "disk_samples_per_second": speeds["disk"],
        "cached_samples_per_second": speeds["cached"],
        "median_memory": med["memory"],
        "median_disk": med["disk"],
        "median_cached": med["cached"],
        "ratio_disk_over_memory": med["disk"] / med["memory"],
        "ratio_cached_over_memory": med["cached"] / med["memory"],
        "samples_per_cpu_second": med_cpu,
        "ratio_disk_over_memory_cpu": med_cpu["disk"] / med_cpu["memory"],
        "ratio_cached_over_memory_cpu": med_cpu["cached"] / med_cpu["memory"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="3,000 events, short rounds")
    size.add_argument("--full", action="store_true", help="200,000 events")
    parser.add_argument("--events", type=int, help="events in the streamed file (default 20,000)")
    parser.add_argument("--train-events", type=int, help="training events for the speed ratio (default 2,048)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--buffer", type=int, default=1024, help="shuffle buffer (events)")
    parser.add_argument("--rounds", type=int, help="alternating memory/disk rounds (default 2)")
    parser.add_argument("--epochs-per-round", type=int, help="timed epochs per round (default 2)")
    parser.add_argument("--seed", type=int, default=7, help="simulation seed of the file")
    parser.add_argument("--readers", type=int, help="reader threads of the dataset (default: its own)")
    args = parser.parse_args(argv)
    n = args.events or (3000 if args.quick else 200_000 if args.full else 20_000)
    n_train = args.train_events or (1024 if args.quick else 2048)
    rounds = args.rounds or 2
    epochs = args.epochs_per_round or (1 if args.quick else 2)

    import keras

    path = _event_file(n, args.seed)
    stream = _stream(path, args.batch, args.buffer, args.readers)  # first: before any array is loaded in memory
    training = _train_speed(path, n_train, args.batch, rounds, epochs, args.readers)
    per_event = stream["label_and_index_bytes_per_event"]
    out = {
        "benchmark": "pipeline",
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "backend": keras.backend.backend()},
        "file": str(path),
        "stream": stream,
        "training": training,
        "ratio_disk_over_memory": training["ratio_disk_over_memory"],
        "ratio_disk_over_memory_cpu": training["ratio_disk_over_memory_cpu"],
        "meets_0.9": training["ratio_disk_over_memory"] >= 0.9,
        "extrapolation_200k": {
            "uncompressed_images_gb": 200_000 * 3 * 128 * 32 * 4 / 2**30,
            "label_and_index_mb": 200_000 * per_event / 2**20,
            "expected_rss_growth_mb": stream["rss_growth_mb"] + (200_000 - stream["events"]) * per_event / 2**20,
            "note": "images stream in windows of shuffle_buffer events (at most two held); only the "
                    "per-event labels and indices grow with the file",
        },
    }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
