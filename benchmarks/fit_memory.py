"""Training speed with freed memory held in the process, against glibc's default of handing it back.

``edkeras.core.memory.hold_freed_memory`` (called by ``train``) stops glibc from returning each
training step's freed buffers to the kernel. This benchmark trains the main job's network
(``compact``, vMF head, mirror augmentation, batch 64) with ``edkeras.reco.training.train`` on
the same simulated events twice, each in a fresh process: once as edkeras runs (held), once with
``EDKERAS_RETURN_FREED_MEMORY=1`` (glibc's default). For each it reports samples/s over the
steps after the first ``--skip`` (tracing excluded), minor page faults per step, the user and
system CPU time per step, and the peak resident memory. Prints one JSON object; the speed-up
is the ratio of the two samples/s of this one run.

Usage:
    python benchmarks/fit_memory.py [--events 3500] [--steps 40] [--skip 5]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def child(pool: str, steps: int, skip: int, run_dir: str) -> dict:
    """Train in this process and measure the steps after ``skip``."""
    import keras

    from edkeras.reco.training import train
    from edkeras.studies import phase

    class Meter(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
            if batch == skip:
                self.t0, self.cpu0 = time.perf_counter(), os.times()
                self.faults0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            if batch == steps - 1:
                n = steps - skip
                dt, cpu = time.perf_counter() - self.t0, os.times()
                self.result = {
                    "samples_per_s": round(n * 64 / dt, 1),
                    "page_faults_per_step": round((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - self.faults0) / n),
                    "user_cpu_s_per_step": round((cpu.user - self.cpu0.user) / n, 3),
                    "system_cpu_s_per_step": round((cpu.system - self.cpu0.system) / n, 3),
                }

    config = phase.phase_config(
        "fit_memory", pool, None, 1, 0, False, model="compact", head="vmf", scale="cpu",
        augmentation={"mirror": True}, training={"batch_size": 64, "bootstrap_samples": 10},
        data_options={"val_fraction": 0.1, "test_fraction": 0.05},
    )
    meter = Meter()
    train(config, run_dir=run_dir, force=True, verbose=0, callbacks=[meter])
    out = dict(meter.result)
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=3500, help="simulated ES+CC events (85 %% train)")
    ap.add_argument("--steps", type=int, default=40, help="training steps measured to (batch 64)")
    ap.add_argument("--skip", type=int, default=5, help="first steps left out (tracing)")
    ap.add_argument("--child", nargs=2, metavar=("POOL", "RUN_DIR"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child[0], args.steps, args.skip, args.child[1])))
        return 0
    if args.steps <= args.skip or (args.events * 0.85) // 64 < args.steps:
        ap.error(f"--steps must exceed --skip and fit in one epoch of {int(args.events * 0.85) // 64} steps")
    from edkeras.events.sim import simulate_to_file

    out: dict = {"benchmark": "fit_memory", "events": args.events, "steps": args.steps, "skip": args.skip,
                 "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="edkeras-fit-memory-") as tmp:
        pool = Path(tmp) / "pool.h5"
        simulate_to_file(pool, args.events, seed=20261207)
        for setting, env_value in (("held", None), ("returned", "1")):
            env = dict(os.environ)
            env.pop("EDKERAS_RETURN_FREED_MEMORY", None)
            if env_value:
                env["EDKERAS_RETURN_FREED_MEMORY"] = env_value
            cmd = [sys.executable, __file__, "--steps", str(args.steps), "--skip", str(args.skip),
                   "--child", str(pool), str(Path(tmp) / setting)]
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                print(done.stderr[-3000:], file=sys.stderr)
                return done.returncode
            out[setting] = json.loads(done.stdout.strip().splitlines()[-1])
    out["speedup_held_over_returned"] = round(out["held"]["samples_per_s"] / out["returned"]["samples_per_s"], 2)
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
